//! A sequencer whose clock runs ahead cannot run ledger time ahead of the replicas' clocks:
//! replicas refuse its blocks once they are more than `BLOCK_TIME_AHEAD_MS_MAX` ahead.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use paychan_protocol::limits::BLOCK_TIME_AHEAD_MS_MAX;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Height and time of a node's newest block.
fn tip(api: &Api) -> Result<(u64, u64), String> {
    let h = api.height()?;
    let blocks = api.blocks(h)?;
    let t = blocks
        .last()
        .and_then(|b| b["time_ms"].as_u64())
        .ok_or("no block time")?;
    Ok((h, t))
}

#[test]
fn replicas_refuse_blocks_from_a_sequencer_whose_clock_runs_ahead() {
    // The sequencer's clock reads a minute ahead: each of its blocks steps ledger time the
    // largest step (500 ms) while only a block interval (200 ms) of real time passes.
    let net = Testnet::up_with(2, &["--test-clock-ahead-ms", "60000"]);
    let (seq, replica) = (net.api(0), net.api(1));
    wait_until(
        "the sequencer's ledger time to run 10 s ahead of real time",
        Duration::from_secs(40),
        || {
            let (h, t) = tip(&seq)?;
            (t > now_ms() + 10_000)
                .then_some(h)
                .ok_or(format!("height {h}, {} ms ahead", t as i64 - now_ms() as i64))
        },
    );
    // The replica took the blocks that were within the bound of its clock, and no later one.
    let (replica_height, replica_time) = tip(&replica).expect("replica tip");
    let now = now_ms();
    assert!(
        replica_time <= now + BLOCK_TIME_AHEAD_MS_MAX,
        "the replica applied a block {} ms ahead of its clock",
        replica_time - now
    );
    let (seq_height, _) = tip(&seq).expect("sequencer tip");
    assert!(
        seq_height > replica_height + 10,
        "replica at {replica_height}, sequencer at {seq_height}"
    );
    // The refusal cost the sequencer nothing but its replicas: they stay connected, since a
    // block from the future may be honest and merely early.
    assert!(
        replica
            .peers()
            .expect("peers")
            .contains(&net.peer_id(0).to_string()),
        "the replica keeps the sequencer as a peer"
    );
}

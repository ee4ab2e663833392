//! Catch-up against real node processes: a replica that was down catches up with the ledger
//! although the peers it knows first accept its block requests and never answer. It asks
//! several peers at once with a short timeout, so silent peers cost it one timeout, not one
//! each (issue 7: "stalls 10 s per silent peer").

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::runtime::Runtime;

/// Silent peers the restarted replica knows.
const SILENT: usize = 3;

/// A replica restarted with only silent peers to bootstrap from (it finds the sequencer through
/// them, by Kademlia) reaches the sequencer's tip within a bound far below what asking the
/// silent peers one after another (10 s each) would take, and it did ask them.
#[test]
fn a_restarted_replica_catches_up_past_silent_peers() {
    let rt = Runtime::new().expect("tokio runtime");
    let net = Testnet::up(2);
    let (seq, replica) = (net.api(0), net.api(1));
    wait_until("the replica follows the ledger", STEP, || {
        let h = replica.height()?;
        if h >= 2 {
            Ok(())
        } else {
            Err(format!("height {h}"))
        }
    });
    net.kill9(1);
    let down_at = seq.height().expect("height");

    // Silent peers that know the sequencer (so that the replica can find it through them).
    let silent: Vec<SilentPeer> = (0..SILENT).map(|_| rt.block_on(SilentPeer::start())).collect();
    for s in &silent {
        rt.block_on(bounded(
            "a silent peer dials the sequencer",
            s.handle.dial(net.p2p_addr(0)),
        ))
        .expect("the silent peer reaches the sequencer");
    }
    // The replica bootstraps from the silent peers only.
    let path = net.dir(1).join("config.toml");
    let mut config: toml::Table = toml::from_str(&std::fs::read_to_string(&path).expect("read config.toml"))
        .expect("config.toml parses");
    config.insert(
        "bootstrap".into(),
        toml::Value::Array(
            silent
                .iter()
                .map(|s| toml::Value::String(s.addr.to_string()))
                .collect(),
        ),
    );
    std::fs::write(&path, toml::to_string(&config).expect("config serialises")).expect("write config.toml");

    // The ledger moves on while the replica is down (heartbeat blocks every 500 ms).
    let target = wait_until("the sequencer moves on", STEP, || {
        let h = seq.height()?;
        if h >= down_at + 6 {
            Ok(h)
        } else {
            Err(format!("height {h}"))
        }
    });

    let started = Instant::now();
    net.restart(1);
    let replica = net.api(1);
    let bound = Duration::from_secs(12);
    wait_until("the restarted replica reaches the tip", bound, || {
        let h = replica.height()?;
        if h >= target {
            Ok(())
        } else {
            Err(format!("height {h} of {target}"))
        }
    });
    let took = started.elapsed();
    let asked: usize = silent.iter().map(SilentPeer::asked).sum();
    eprintln!(
        "caught up {} blocks in {took:?}; silent peers asked {asked} times",
        target - down_at
    );
    assert!(
        asked > 0,
        "no silent peer was asked for blocks: the test did not put them in the replica's way"
    );
    // Asking them one after another would have cost 10 s each.
    assert!(took < bound, "catch-up took {took:?} with {SILENT} silent peers");
    // Its blocks are the sequencer's.
    assert_eq!(
        hashes(&replica.blocks(target).expect("replica blocks")),
        hashes(&seq.blocks(target).expect("sequencer blocks"))
    );
}

//! Multi-process tests of payment channels: real `paychan` node processes on 127.0.0.1 (a fresh
//! `paychan testnet up` per test, always torn down by `common::Testnet`), driven through the CLI
//! and the control API, and, where a test must see or forge what travels on
//! `/paychan/channel/1`, by a peer of the test's own (`paychan_net::Net` with a funded client
//! key of the testnet, the testkit's channel-stream framing and a `paychan_channel::Channel` state
//! machine).
//! Every wait polls under a deadline; every child process is bounded in time.
//!
//! 1. Ten thousand payments each way on one channel, a cooperative close of it and a unilateral
//!    close of another channel answered by the counterparty: exact balances on every replica,
//!    and conservation.
//! 2. A stale unilateral close (no proofs at all) loses to the counterparty's watchtower, and a
//!    payer's own proof with a higher seq but a lower amount gains it nothing.
//! 3. A payee killed with SIGKILL in the middle of a 100,000-payment stream keeps, after its
//!    restart, at least everything the payer holds an acknowledgement for.
//! 4. A payer killed with SIGKILL (twice) never signs two different proofs with one seq: the test
//!    is the payee and records every proof it receives across the three runs of the payer.
//! 5. Invalid proofs (bad signature, wrong channel, wrong chain, wrong direction, decreasing
//!    amount, reused seq, broken prev link, overspend, memo mismatch, unknown channel, a burst
//!    whose second proof is broken) each get an `Error` frame and change nothing; the same stream then carries a valid payment, and the node keeps
//!    serving its other channels.

mod common;

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use paychan_channel::open::{accept_open, OpenAcceptance, OpenPolicy, OpenProposal};
use paychan_channel::{Channel, PersistedChannel};
use paychan_net::libp2p::futures::{AsyncReadExt, StreamExt};
use paychan_net::{IncomingStreams, NetHandle, PeerId};
use paychan_protocol::channel::{memo_hash, BalanceProof};
use paychan_protocol::crypto::BatchVerifier;
use paychan_protocol::ledger::{UnilateralClose, Update};
use paychan_protocol::limits::UNACKED_PROOFS_MAX;
use paychan_protocol::wire::{ChannelMsg, ErrorCode, PayItem};
use paychan_protocol::{ChannelId, Direction, Hash32, Keypair, Payment, PublicKey, SignedProof, Tx, Wire};
use paychan_testkit::frames::RawLink;
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

/// Bound on one payment job through the API or the CLI.
const PAY_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// 1. Payments both ways, cooperative close, answered unilateral close.
// ---------------------------------------------------------------------------------------------

/// Three nodes. Channel 1 (node-1 A, node-2 B) carries 10,000 payments each way at the same
/// time (node-1 through the CLI, node-2 through the API) and is closed cooperatively. Channel 2
/// (node-1 A, node-0 B) carries payments both ways and node-1 closes it with `--force`: its close
/// holds only node-0's proof, so the payout is right only if node-0 answers with node-1's newest
/// proof within the window. Every replica then shows exactly the expected balances, and every
/// node's ledger conserves value.
#[test]
fn payments_both_ways_then_cooperative_and_answered_unilateral_closes() {
    let started = Instant::now();
    let net = Testnet::up(3);
    let alloc = allocation(&net);
    let keys: Vec<PublicKey> = (0..3).map(|i| net.node_key(i).public()).collect();

    let ch1 = open_cli(&net, 1, 2, 1_000_000, 1_000_000);
    let ch2 = open_cli(&net, 1, 0, 500_000, 500_000);
    let (a1, a2) = (net.api(1), net.api(2));

    // 10,000 payments each way on channel 1, both directions at once.
    let pay_started = Instant::now();
    let cli = spawn_cli(
        &[
            "channel",
            "pay",
            &ch1,
            "--amount",
            "3",
            "--count",
            "10000",
            "--data-dir",
            &dir_str(&net, 1),
            "--json",
        ],
        PAY_TIMEOUT,
    );
    let api_job = {
        let (api, ch) = (a2.clone(), ch1.clone());
        std::thread::spawn(move || pay_api(&api, &ch, 2, 10_000))
    };
    let cli_out = cli.join().expect("the CLI thread");
    let api_out = api_job.join().expect("the API thread");
    let cli_out = cli_out.unwrap_or_else(|e| panic!("`channel pay` on node-1: {e}"));
    assert!(
        cli_out.status.success(),
        "`channel pay` on node-1 failed: {}",
        String::from_utf8_lossy(&cli_out.stderr)
    );
    let cli_json: Value = serde_json::from_slice(&cli_out.stdout).expect("`channel pay --json` prints JSON");
    assert_eq!(cli_json["count"], 10_000, "{cli_json}");
    let api_json = api_out.unwrap_or_else(|e| panic!("pay through node-2's API: {e}"));
    assert_eq!(api_json["count"], 10_000, "{api_json}");
    let pay_time = pay_started.elapsed();

    // Both views agree once every proof is acknowledged.
    let expect_view = |api: &Api, who: &str, sent: u64, received: u64, balance: u64| {
        wait_until(&format!("{who}'s view of channel 1"), STEP, || {
            let v = channel_view(api, &ch1)?;
            let got = (
                v["sent"].as_u64(),
                v["received"].as_u64(),
                v["unacked"].as_u64(),
                v["balance"].as_u64(),
            );
            if got == (Some(sent), Some(received), Some(0), Some(balance)) {
                Ok(())
            } else {
                Err(format!("{v}"))
            }
        })
    };
    expect_view(&a1, "node-1", 30_000, 20_000, 1_000_000 - 30_000 + 20_000);
    expect_view(&a2, "node-2", 20_000, 30_000, 1_000_000 + 30_000 - 20_000);
    // `channel list` shows the same.
    for (i, api) in [(1, &a1), (2, &a2)] {
        let listed = cli_json_ok(&["channel", "list", "--data-dir", &dir_str(&net, i), "--json"]);
        let listed = listed
            .as_array()
            .and_then(|l| l.iter().find(|c| c["id"] == ch1.as_str()))
            .cloned();
        assert_eq!(
            listed,
            channel_view(api, &ch1).ok(),
            "node-{i}: `channel list` agrees with the API"
        );
    }

    // Channel 2: node-1 pays node-0 7,000 in 1,000 payments, node-0 pays node-1 2,500 in 500.
    pay_api(&a1, &ch2, 7, 1_000).expect("node-1 pays on channel 2");
    pay_api(&net.api(0), &ch2, 5, 500).expect("node-0 pays on channel 2");

    // Cooperative close of channel 1 through the CLI (returns once paid out).
    let closed = cli_json_ok(&[
        "channel",
        "close",
        &ch1,
        "--data-dir",
        &dir_str(&net, 1),
        "--json",
    ]);
    assert_eq!(closed["closed"], true, "{closed}");
    wait_status(&a2, &ch1, "closed");

    // Unilateral close of channel 2 by node-1: it carries node-0's proof only.
    let height_before_close = net.api(0).height().expect("height");
    let force_started = Instant::now();
    let closed = cli_json_ok(&[
        "channel",
        "close",
        &ch2,
        "--force",
        "--data-dir",
        &dir_str(&net, 1),
        "--json",
    ]);
    assert_eq!(closed["closed"], true, "{closed}");
    let force_time = force_started.elapsed();
    wait_status(&net.api(0), &ch2, "closed");

    // The ledger shows the close, node-0's answer (an update) within the window, and the settle.
    let kinds = tx_kinds_after(&net.api(0), height_before_close);
    eprintln!("ledger after the forced close of channel 2: {kinds:?}");
    let close_at = kinds
        .iter()
        .position(|(_, k)| k == "unilateral_close")
        .expect("the unilateral close is on the ledger");
    let settle_at = kinds
        .iter()
        .position(|(_, k)| k == "settle")
        .expect("the settle is on the ledger");
    assert!(
        kinds[close_at..settle_at].iter().any(|(_, k)| k == "update"),
        "the counterparty answered the close with an update before the settle: {kinds:?}"
    );

    // Exact balances on every replica: without node-0's answer node-1 would have got 9,500 more.
    // node-1 proposed both opens and paid their fees to node-0, the sequencer; closes, the
    // update and the settle are free.
    let fees = net.open_fee(&ch1) + net.open_fee(&ch2);
    let expected = [
        ("node-0", keys[0], alloc + 7_000 - 2_500 + fees),
        ("node-1", keys[1], alloc - 30_000 + 20_000 - 7_000 + 2_500 - fees),
        ("node-2", keys[2], alloc + 30_000 - 20_000),
    ];
    expect_balances_everywhere(&net, &expected);
    eprintln!(
        "test 1: 2 x 10,000 payments (concurrent, both ways) in {pay_time:?}; forced close paid out in \
         {force_time:?}; balances {:?}; whole test {:?}",
        expected.iter().map(|(n, _, b)| (*n, *b)).collect::<Vec<_>>(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A stale close loses; a lower proof of the payer gains it nothing.
// ---------------------------------------------------------------------------------------------

/// X (node-1) pays Y (node-2) on two channels, and Y pays X a little on the first. Then, with
/// transactions the test builds and signs with X's `node.key` and submits through `POST /v1/tx`:
/// - channel 1: a unilateral close of X with no proofs at all (maximally stale for what Y
///   received), and during the window an update with X's own proof of a far higher seq and a far
///   lower transferred amount, submitted as early as the ledger takes it;
/// - channel 2: a unilateral close of X that itself carries such a proof of X, so that the ledger
///   certainly holds it before Y answers.
///
/// Y's node answers each close with its newest proof (and X's node answers channel 1 with Y's
/// payments, which X's stale close left out). The ledger keeps the highest transferred amount per
/// direction, never the highest seq, so both channels pay out exactly the honest balances.
#[test]
fn stale_close_loses_and_a_lower_own_proof_gains_nothing() {
    let started = Instant::now();
    let net = Testnet::up(3);
    let alloc = allocation(&net);
    let chain_id = net.genesis().chain_id();
    let (x, y) = (net.node_key(1), net.node_key(2));
    let (dep_x, dep_y) = (1_000_000u64, 500_000u64);
    let ch1 = open_cli(&net, 1, 2, dep_x, dep_y);
    let ch2 = open_cli(&net, 1, 2, dep_x, dep_y);
    let (ax, ay, a0) = (net.api(1), net.api(2), net.api(0));

    pay_api(&ax, &ch1, 10, 5_000).expect("X pays Y on channel 1");
    pay_api(&ay, &ch1, 3, 100).expect("Y pays X on channel 1");
    pay_api(&ax, &ch2, 10, 2_000).expect("X pays Y on channel 2");
    let (t1_xy, t1_yx, t2_xy) = (50_000u64, 300u64, 20_000u64);
    for (ch, t_xy, t_yx) in [(&ch1, t1_xy, t1_yx), (&ch2, t2_xy, 0)] {
        wait_until("both views to settle", STEP, || {
            let vx = channel_view(&ax, ch)?;
            let vy = channel_view(&ay, ch)?;
            let settled = vx["sent"] == t_xy
                && vx["received"] == t_yx
                && vy["received"] == t_xy
                && vx["unacked"] == 0
                && vy["unacked"] == 0;
            settled.then_some(()).ok_or(format!("X {vx}, Y {vy}"))
        });
        assert_eq!(
            channel_view(&ax, ch).unwrap()["holder_is_a"],
            true,
            "X proposed: it is A"
        );
    }
    let honest_x = (dep_x - t1_xy + t1_yx) + (dep_x - t2_xy);
    let honest_y = (dep_y + t1_xy - t1_yx) + (dep_y + t2_xy);

    // X's own proof: seq far above anything it signed, transferred far below what Y holds.
    let low_payment = Payment {
        amount: 10,
        reference: Hash32::ZERO,
    };
    let low_proof = |ch: &str| {
        BalanceProof {
            chain_id,
            channel_id: channel_id(ch),
            direction: Direction::AToB,
            seq: 1_000_000_000,
            transferred: low_payment.amount,
            prev: Hash32::ZERO,
            memo_hash: memo_hash(&[low_payment]),
        }
        .sign(&x)
    };
    let close = |ch: &str, proof_ab: Option<SignedProof>| {
        Tx::unilateral_close(
            UnilateralClose {
                chain_id,
                channel_id: channel_id(ch),
                closer: x.public(),
                proof_ab,
                proof_ba: None,
            },
            &x,
        )
    };
    let height_before_close = a0.height().expect("height");
    for tx in [close(&ch1, None), close(&ch2, Some(low_proof(&ch2)))] {
        let (status, body) = submit_tx(&a0, &tx);
        assert_eq!(status, 200, "X's close is a valid transaction: {body}");
    }

    // Channel 1: X's lower proof as an update, submitted in a tight loop against the sequencer
    // from the moment the ledger takes it (an update needs the close applied), racing Y's
    // watchtower.
    let low_update = Tx::Update(Update {
        chain_id,
        channel_id: channel_id(&ch1),
        proof_ab: Some(low_proof(&ch1)),
        proof_ba: None,
    });
    let deadline = Instant::now() + STEP;
    let low_outcome = loop {
        let (status, body) = submit_tx(&a0, &low_update);
        let text = body["error"].as_str().unwrap_or_default().to_owned();
        if status == 422 && text.contains("is not closing") && Instant::now() < deadline {
            continue;
        }
        break (status, text);
    };
    assert!(
        low_outcome.0 == 200 || low_outcome.1.contains("stale"),
        "X's lower proof is either taken (and then outbid) or refused as stale: {low_outcome:?}"
    );

    // Y's node answers both closes; both settle after the window.
    for ch in [&ch1, &ch2] {
        wait_until(
            "the channel to settle on Y's node",
            Duration::from_secs(40),
            || {
                let v = channel_view(&ay, ch)?;
                (v["status"] == "closed").then_some(()).ok_or(format!("{v}"))
            },
        );
    }
    // X proposed both opens and paid their fees.
    let fees = net.open_fee(&ch1) + net.open_fee(&ch2);
    let expected = [
        ("X (node-1)", x.public(), alloc - 2 * dep_x + honest_x - fees),
        ("Y (node-2)", y.public(), alloc - 2 * dep_y + honest_y),
    ];
    expect_balances_everywhere(&net, &expected);

    // What the ledger did.
    let kinds = tx_kinds_after(&a0, height_before_close);
    eprintln!("ledger from the closes to the settles: {kinds:?}");
    let updates = kinds.iter().filter(|(_, k)| k == "update").count();
    let settles = kinds.iter().filter(|(_, k)| k == "settle").count();
    assert_eq!(settles, 2, "{kinds:?}");
    let low_included = kinds.iter().any(|(id, _)| *id == low_update.id().to_hex());
    // Y's answer on each channel and X's node's answer (Y's payments) on channel 1, plus X's
    // lower proof if it reached a block before Y's answer.
    assert_eq!(updates, 3 + usize::from(low_included), "{kinds:?}");
    let low_fate = match (low_outcome.0, low_included) {
        (200, true) => "taken by the ledger, then outbid by Y's answer",
        (200, false) => "taken by the sequencer's pool, then replaced there by Y's higher answer",
        _ => "refused as stale: Y's answer was first",
    };
    eprintln!(
        "test 2: X's lower proof on channel 1 (seq 1e9, transferred 10): {low_fate}. Payouts X {}, Y {} \
         (honest), where X's stale close alone would have paid X {} and Y {} on channel 1, and X's \
         lower proof alone would have paid X {} on channel 2 instead of {}. Final balances X {}, Y {} \
         on every replica; whole test {:?}",
        honest_x,
        honest_y,
        dep_x,
        dep_y,
        dep_x - low_payment.amount,
        dep_x - t2_xy,
        expected[0].2,
        expected[1].2,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A payee killed mid-stream loses nothing it acknowledged.
// ---------------------------------------------------------------------------------------------

/// node-1 pays node-2 100,000 times (`channel pay --count 100000`, one pipelined job). node-2 is
/// SIGKILLed in the middle and restarted; the channel reestablishes; node-2 then closes
/// unilaterally.
///
/// "Acknowledged" is what the payer holds an ack for: the payee sends `Ack{seq}` only after the
/// proof is durable, and the payer drops acked proofs from its window. With one payment of 1 per
/// proof, the transferred total of the payer's newest acked proof is exactly
/// `sent - unacked` in its `channel list` (`unacked` = proofs in its window). That value, read
/// once the payer has seen the payee go away (so no ack is still in flight), is a lower bound of
/// everything the payee acknowledged. The invariant checked: the payee's durable `received` after
/// the restart, and its final payout minus its deposit, are at least that value.
#[test]
fn payee_killed_mid_stream_keeps_what_it_acknowledged() {
    let started = Instant::now();
    let net = Testnet::up(3);
    let alloc = allocation(&net);
    let (payer, payee) = (1usize, 2usize);
    const COUNT: u64 = 100_000;
    let (dep_payer, dep_payee) = (1_000_000u64, 1_000u64);
    let ch = open_cli(&net, payer, payee, dep_payer, dep_payee);
    let (ap, ae) = (net.api(payer), net.api(payee));
    // For comparison with its CPU use while the payee is down.
    let payer_cpu_idle = cpu_share(net.pid(payer), Duration::from_millis(500));

    let stream_started = Instant::now();
    let job = spawn_cli(
        &[
            "channel",
            "pay",
            &ch,
            "--amount",
            "1",
            "--count",
            &COUNT.to_string(),
            "--data-dir",
            &dir_str(&net, payer),
            "--json",
        ],
        PAY_TIMEOUT,
    );
    wait_until("the payee to hold 20,000 payments", STEP, || {
        let r = channel_view(&ae, &ch)?["received"].as_u64().unwrap_or(0);
        (r >= 20_000).then_some(()).ok_or(format!("received {r}"))
    });
    net.kill9(payee);
    let killed_after = stream_started.elapsed();

    // The payer's newest acked total, once it has seen the payee go and its acks are settled.
    let payee_peer = net.peer_id(payee).to_string();
    let mut last = None;
    let (sent_at_kill, unacked_at_kill) = wait_until("the payer to see the payee gone", STEP, || {
        if ap.peers()?.contains(&payee_peer) {
            return Err("still connected".into());
        }
        let v = channel_view(&ap, &ch)?;
        let now = (
            v["sent"].as_u64().unwrap_or(0),
            v["unacked"].as_u64().unwrap_or(0),
        );
        if last == Some(now) {
            Ok(now)
        } else {
            last = Some(now);
            Err(format!("payer view moving: {v}"))
        }
    });
    let acked_at_kill = sent_at_kill - unacked_at_kill;
    assert!(
        sent_at_kill < COUNT,
        "the payee was killed in the middle of the stream (payer had signed {sent_at_kill} of {COUNT})"
    );

    // While the payee is down the payer's job waits; measure what that costs the payer.
    let payer_cpu = cpu_share(net.pid(payer), Duration::from_millis(500));

    net.restart(payee);
    // The restarted payee's API listens on a new port.
    let ae = net.api(payee);
    let received_after_restart = channel_view(&ae, &ch).expect("the restored channel")["received"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        received_after_restart >= acked_at_kill,
        "after its restart the payee holds {received_after_restart}, less than the {acked_at_kill} the payer \
         holds an ack for"
    );

    // The stream resumes after reestablish (or fails); either way the job is bounded.
    let outcome = job.join().expect("the CLI thread");
    let resumed = matches!(&outcome, Ok(out) if out.status.success());
    let stream_time = stream_started.elapsed();
    let outcome_text = match &outcome {
        Ok(out) if out.status.success() => "completed".to_owned(),
        Ok(out) => format!("failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => e.clone(),
    };
    let (payer_sent, payee_received) = wait_until("both views to agree", STEP, || {
        let vp = channel_view(&ap, &ch)?;
        let ve = channel_view(&ae, &ch)?;
        if vp["unacked"] == 0 && vp["sent"] == ve["received"] {
            Ok((
                vp["sent"].as_u64().unwrap_or(0),
                ve["received"].as_u64().unwrap_or(0),
            ))
        } else {
            Err(format!("payer {vp}, payee {ve}"))
        }
    });
    assert!(payee_received >= acked_at_kill);
    if resumed {
        assert_eq!(payer_sent, COUNT, "a completed job paid every payment");
    }

    // The payee closes unilaterally with its newest proof; the payer has nothing to answer with.
    let closed = cli_json_ok(&[
        "channel",
        "close",
        &ch,
        "--force",
        "--data-dir",
        &dir_str(&net, payee),
        "--json",
    ]);
    assert_eq!(closed["closed"], true, "{closed}");
    let payout_payee = wait_until("the payee's payout on its replica", STEP, || {
        let b = ae.balance(&net.node_key(payee).public())?;
        let base = alloc - dep_payee;
        (b > base).then_some(b - base).ok_or(format!("balance {b}"))
    });
    assert!(
        payout_payee >= dep_payee + acked_at_kill,
        "payee payout {payout_payee} < deposit {dep_payee} + acknowledged {acked_at_kill}"
    );
    assert_eq!(
        payout_payee,
        dep_payee + payee_received,
        "the payee is paid its deposit plus its newest proof"
    );
    // The payer proposed the open and paid its fee.
    let expected = [
        (
            "payer (node-1)",
            net.node_key(payer).public(),
            alloc - payee_received - net.open_fee(&ch),
        ),
        (
            "payee (node-2)",
            net.node_key(payee).public(),
            alloc + payee_received,
        ),
    ];
    expect_balances_everywhere(&net, &expected);
    eprintln!(
        "test 3: payee killed {killed_after:?} into the stream; payer then had signed {sent_at_kill}, \
         {unacked_at_kill} unacked, so acknowledged >= {acked_at_kill}; payee held {received_after_restart} \
         right after its restart; the job {outcome_text} ({stream_time:?} in all); payer's CPU while the \
         payee was down: {:.0}% of a core (idle before the stream: {:.0}%); final: payee received {payee_received}, payout {payout_payee}; \
         whole test {:?}",
        payer_cpu * 100.0,
        payer_cpu_idle * 100.0,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A payer killed and restarted never signs two proofs with one seq.
// ---------------------------------------------------------------------------------------------

/// The test is the payee (`client-0`'s key on a `paychan_net::Net` of its own, acking through a
/// `paychan_channel::Channel` with in-memory persistence) of a channel node-2 (X) opens to it,
/// and it records every proof X sends, on every stream. X runs three times:
/// 1. it pays while the payee acks everything, and is SIGKILLed mid-stream;
/// 2. after a restart it pays again, the payee stops acking part-way (X fills its window of
///    unacked proofs and waits), and X is SIGKILLed again. The payee keeps only what it
///    persisted (it acks nothing else), so its Reestablish reports a proof older than the
///    newest it received: the seqs above it were signed and seen but are not resumable;
/// 3. after a second restart a payment job completes.
///
/// No seq may carry two different proofs; every proof must carry X's valid signature; each
/// restarted run must continue from the proof the payee reported.
#[test]
fn restarted_payer_never_signs_two_proofs_with_one_seq() {
    let started = Instant::now();
    let net = Testnet::up(3);
    let rt = runtime();
    const X: usize = 2;
    let x_key = net.node_key(X).public();
    let client = net.client_key(0);
    let chain_id = net.genesis().chain_id();
    let ax = || net.api(X);

    let peer = rt.block_on(TestPeer::start_with(client.clone()));
    let incoming = peer
        .handle
        .accept_channel_streams()
        .expect("accept channel streams");
    let payee = Arc::new(Payee::default());
    payee.ack.store(true, Ordering::SeqCst);
    payee.ledger_time_ms.store(
        ax().get("/v1/info").expect("info")["time_ms"]
            .as_u64()
            .unwrap_or(0),
        Ordering::SeqCst,
    );
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    rt.spawn(run_payee(
        client.clone(),
        chain_id,
        incoming,
        payee.clone(),
        cmd_rx,
    ));
    dial(&rt, &peer.handle, &net, X);

    // X proposes the channel to the test payee, which accepts; X submits the open.
    let (status, v) = ax()
        .post(
            "/v1/channels",
            &json!({"peer": client.public().to_hex(), "deposit": 10_000_000, "their_deposit": 0}),
        )
        .expect("open");
    assert_eq!(status, 200, "X opens a channel to the test payee: {v}");
    let ch = v["channel_id"].as_str().expect("channel id").to_owned();
    let (tx, rx) = oneshot::channel();
    cmd_tx.send(PayeeCmd::Confirm(tx)).expect("payee task");
    rt.block_on(bounded("the payee confirms the open", rx))
        .expect("confirmed");
    payee.wait_ready(1);

    // Run 1: acked throughout, killed mid-stream.
    let job = {
        let (api, ch) = (ax(), ch.clone());
        std::thread::spawn(move || pay_api(&api, &ch, 1, 1_000_000))
    };
    wait_until("run 1 to send 10,000 proofs", STEP, || {
        let n = payee.items();
        (n >= 10_000).then_some(()).ok_or(format!("{n} proofs"))
    });
    net.kill9(X);
    assert!(
        job.join().expect("pay thread").is_err(),
        "the pay call of a killed node fails"
    );
    let run1 = payee.items();

    // Run 2: after a restart; acks stop part-way, X fills its window, and is killed.
    net.restart(X);
    dial(&rt, &peer.handle, &net, X);
    payee.wait_ready(2);
    let job = {
        let (api, ch) = (ax(), ch.clone());
        std::thread::spawn(move || pay_api(&api, &ch, 1, 1_000_000))
    };
    wait_until("run 2 to send 2,000 proofs", STEP, || {
        let n = payee.items() - run1;
        (n >= 2_000).then_some(()).ok_or(format!("{n} proofs"))
    });
    payee.ack.store(false, Ordering::SeqCst);
    let mut last = 0;
    wait_until("X to fill its window of unacked proofs", STEP, || {
        let v = channel_view(&ax(), &ch)?;
        let n = payee.items();
        let stable = n == last;
        last = n;
        if v["unacked"].as_u64() == Some(UNACKED_PROOFS_MAX as u64) && stable {
            Ok(())
        } else {
            Err(format!("{v}, {n} proofs seen"))
        }
    });
    net.kill9(X);
    assert!(
        job.join().expect("pay thread").is_err(),
        "the pay call of a killed node fails"
    );
    let run2 = payee.items() - run1;
    // The payee persisted (and acked) nothing since acks stopped: on the next stream it comes
    // back from that durable state, as after a crash of its own.
    payee.ack.store(true, Ordering::SeqCst);

    // Run 3: after a second restart a job completes.
    net.restart(X);
    dial(&rt, &peer.handle, &net, X);
    payee.wait_ready(3);
    let done = pay_api(&ax(), &ch, 1, 5_000).expect("run 3 completes");
    assert_eq!(done["count"], 5_000);
    let run3 = payee.items() - run1 - run2;

    // Every proof observed, across the three runs.
    let log = payee.log.lock().unwrap();
    assert!(
        log.errors.is_empty(),
        "the payee refused something: {:?}",
        log.errors
    );
    let mut batch = BatchVerifier::new();
    for (_, p) in &log.items {
        p.queue(&x_key, &mut batch);
    }
    assert!(
        batch.verify().is_ok(),
        "every recorded proof carries X's valid signature"
    );
    let mut by_seq: BTreeMap<u64, SignedProof> = BTreeMap::new();
    let mut doubles = Vec::new();
    for (link, p) in &log.items {
        match by_seq.get(&p.proof.seq) {
            Some(q) if q != p => doubles.push((*link, p.proof.seq)),
            Some(_) => {}
            None => {
                by_seq.insert(p.proof.seq, *p);
            }
        }
    }
    assert!(
        doubles.is_empty(),
        "X signed two different proofs with one seq: (stream, seq) {:?}",
        &doubles[..doubles.len().min(10)]
    );
    // Per stream: seq range, and the first proof follows the one the payee reported.
    let mut ranges = Vec::new();
    for link in 1..=3u32 {
        let items: Vec<&SignedProof> = log
            .items
            .iter()
            .filter(|(l, _)| *l == link)
            .map(|(_, p)| p)
            .collect();
        assert!(!items.is_empty(), "stream {link} carried proofs");
        let first = items[0].proof;
        let reported = log
            .reported
            .iter()
            .find(|(l, _)| *l == link)
            .map(|(_, r)| *r)
            .expect("a Reestablish per stream");
        let prev = reported.map_or(ChannelId(Hash32::from_hex(&ch).unwrap()).0, |r| r.proof.hash());
        assert_eq!(
            first.prev, prev,
            "stream {link}: the first proof follows the reported one"
        );
        if let Some(r) = reported {
            assert!(first.seq > r.proof.seq && first.transferred > r.proof.transferred);
        }
        ranges.push((
            link,
            reported.map(|r| r.proof.seq),
            first.seq,
            items.last().unwrap().proof.seq,
            items.len(),
        ));
    }
    // Run 2's newest seen seq lies above what the payee reported for run 3: run 3 had to skip it.
    let (_, reported3, first3, _, _) = ranges[2];
    let (_, _, _, last2, _) = ranges[1];
    assert!(
        reported3 < Some(last2),
        "the payee reported a proof older than the newest it saw"
    );
    assert!(first3 > last2, "run 3 starts above every seq of run 2");
    // X's view and the payee's agree at the end.
    let v = channel_view(&ax(), &ch).expect("X's view");
    assert_eq!(v["unacked"], 0);
    assert_eq!(
        v["sent"].as_u64(),
        Some(payee.received.load(Ordering::SeqCst)),
        "{v}"
    );
    eprintln!(
        "test 4: proofs seen per run {run1} / {run2} / {run3} ({} in all, {} distinct seqs, no seq \
         signed twice); per stream (stream, reported seq, first seq, last seq, proofs): {ranges:?}; \
         X's final sent {}; whole test {:?}",
        log.items.len(),
        by_seq.len(),
        v["sent"],
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Invalid proofs get an Error frame and change nothing.
// ---------------------------------------------------------------------------------------------

/// The test (`client-1`'s key) opens a real channel with node-1 as party A and payer: it
/// negotiates the open itself over `/paychan/channel/1`, submits the `Tx::Open` through
/// `POST /v1/tx`, and makes one valid payment. Then it sends the next payment in corrupted forms;
/// each gets an `Error` frame with the right code, and node-1's view of the channel stays exactly
/// as it was. The valid payment then goes through on the same stream, and a payment on another
/// channel of node-1 succeeds.
#[test]
fn invalid_proofs_get_an_error_frame_and_change_nothing() {
    let started = Instant::now();
    let net = Testnet::up(3);
    let rt = runtime();
    const N: usize = 1;
    let chain_id = net.genesis().chain_id();
    let node_key = net.node_key(N).public();
    let client = net.client_key(1);
    let an = net.api(N);
    const DEPOSIT: u64 = 1_000;

    // Another channel of node-1, which must keep working.
    let other = open_cli(&net, N, 2, 100_000, 0);

    let peer = rt.block_on(TestPeer::start_with(client.clone()));
    dial(&rt, &peer.handle, &net, N);
    let mut link = rt.block_on(dial_link(&peer.handle, net.peer_id(N), chain_id));

    // Open: the test proposes, node-1 accepts, the test signs and submits.
    let now = an.get("/v1/info").expect("info")["time_ms"].as_u64().unwrap_or(0);
    let proposal = OpenProposal::new(
        chain_id,
        &client,
        node_key,
        DEPOSIT,
        0,
        random_hash(),
        now + 60_000,
    )
    .expect("proposal");
    link.send(proposal.message());
    let (open, sig_b) = match rt.block_on(link.next("OpenAccept")) {
        ChannelMsg::OpenAccept { open, sig_b } => (open, sig_b),
        other => panic!("expected OpenAccept, got {other:?}"),
    };
    let (signed, signed_msg) = proposal
        .on_accept(&client, &open, &sig_b)
        .expect("node-1's acceptance verifies");
    link.send(signed_msg);
    let (status, body) = submit_tx(&net.api(0), &Tx::Open(signed.clone()));
    assert!(
        status == 200 || body["error"].as_str().is_some_and(|e| e.contains("already")),
        "the open is submitted (or node-1's copy was first): {status} {body}"
    );
    let id = signed.open.channel_id();
    let ch_hex = id.to_string();
    let mut ch = Channel::new(signed, client.clone()).expect("channel");
    let mut durable = None;
    persist(&mut ch, &mut durable);
    link.send(
        ch.peer_connected()
            .expect("nothing to persist first: Reestablish"),
    );
    match rt.block_on(link.next("node-1's Reestablish")) {
        m @ ChannelMsg::Reestablish { .. } => {
            ch.handle_message(&m).expect("node-1's Reestablish");
        }
        other => panic!("expected Reestablish, got {other:?}"),
    }
    wait_status(&an, &ch_hex, "open");
    ch.on_open_confirmed().expect("confirmed");
    persist(&mut ch, &mut durable);

    // One valid payment, acked.
    let ref1 = random_hash();
    let p1 = ch.pay(100, ref1).expect("pay");
    link.send(pay_frame(id, p1, 100, ref1));
    let ack = rt.block_on(link.next("the ack of payment 1"));
    assert_eq!(
        ack,
        ChannelMsg::Ack {
            channel_id: id,
            direction: Direction::AToB,
            seq: p1.proof.seq,
            hash: p1.proof.hash()
        }
    );
    ch.handle_message(&ack).expect("ack");
    let before = wait_until("node-1 to show payment 1", STEP, || {
        let v = channel_view(&an, &ch_hex)?;
        (v["received"] == 100).then_some(v.clone()).ok_or(format!("{v}"))
    });

    // The next payment, valid, kept back; then corrupted copies of it.
    let ref2 = random_hash();
    let valid = ch.pay(50, ref2).expect("pay");
    let resign = |f: &dyn Fn(&mut BalanceProof)| {
        let mut body = valid.proof;
        f(&mut body);
        body.sign(&client)
    };
    let mut bad_sig = valid;
    bad_sig.signature.0[0] ^= 0x01;
    let over_amount = DEPOSIT + 1 - p1.proof.transferred;
    let overspend = {
        let mut body = valid.proof;
        body.transferred = DEPOSIT + 1;
        body.memo_hash = memo_hash(&[Payment {
            amount: over_amount,
            reference: ref2,
        }]);
        body.sign(&client)
    };
    // A burst is taken whole or not at all: the valid proof followed by one that breaks the chain.
    let broken_burst = {
        let ref3 = random_hash();
        let next = BalanceProof {
            seq: valid.proof.seq + 1,
            transferred: valid.proof.transferred + 50,
            prev: random_hash(),
            memo_hash: memo_hash(&[Payment {
                amount: 50,
                reference: ref3,
            }]),
            ..valid.proof
        }
        .sign(&client);
        let ChannelMsg::Pay {
            channel_id,
            mut items,
        } = pay_frame(id, valid, 50, ref2)
        else {
            unreachable!()
        };
        let ChannelMsg::Pay { items: more, .. } = pay_frame(id, next, 50, ref3) else {
            unreachable!()
        };
        items.extend(more);
        ChannelMsg::Pay { channel_id, items }
    };
    let variants: Vec<(&str, ChannelMsg, ErrorCode)> = vec![
        (
            "bad signature",
            pay_frame(id, bad_sig, 50, ref2),
            ErrorCode::BadSignature,
        ),
        (
            "wrong channel id in the proof",
            pay_frame(
                id,
                resign(&|b: &mut BalanceProof| b.channel_id = ChannelId(random_hash())),
                50,
                ref2,
            ),
            ErrorCode::Rejected,
        ),
        (
            "wrong chain id",
            pay_frame(
                id,
                resign(&|b: &mut BalanceProof| b.chain_id = random_hash()),
                50,
                ref2,
            ),
            ErrorCode::Rejected,
        ),
        (
            "wrong direction",
            pay_frame(
                id,
                resign(&|b: &mut BalanceProof| b.direction = Direction::BToA),
                50,
                ref2,
            ),
            ErrorCode::Rejected,
        ),
        (
            "decreasing amount",
            pay_frame(
                id,
                resign(&|b: &mut BalanceProof| b.transferred = p1.proof.transferred - 1),
                50,
                ref2,
            ),
            ErrorCode::Rejected,
        ),
        (
            "reused seq",
            pay_frame(id, resign(&|b: &mut BalanceProof| b.seq = p1.proof.seq), 50, ref2),
            ErrorCode::Rejected,
        ),
        (
            "broken prev link",
            pay_frame(
                id,
                resign(&|b: &mut BalanceProof| b.prev = random_hash()),
                50,
                ref2,
            ),
            ErrorCode::Rejected,
        ),
        (
            "overspend",
            pay_frame(id, overspend, over_amount, ref2),
            ErrorCode::Rejected,
        ),
        (
            "memo that does not match the amount",
            pay_frame(id, valid, 49, ref2),
            ErrorCode::Rejected,
        ),
        (
            "unknown channel id on the frame",
            pay_frame(ChannelId(random_hash()), valid, 50, ref2),
            ErrorCode::UnknownChannel,
        ),
        (
            "burst of the valid proof and a broken one after it",
            broken_burst,
            ErrorCode::Rejected,
        ),
    ];
    let mut answers = Vec::new();
    for (what, frame, code) in variants {
        let frame_id = match &frame {
            ChannelMsg::Pay { channel_id, .. } => *channel_id,
            _ => unreachable!(),
        };
        link.send(frame);
        match rt.block_on(link.next(what)) {
            ChannelMsg::Error {
                channel_id,
                code: got,
                text,
            } => {
                assert_eq!(
                    channel_id,
                    Some(frame_id),
                    "{what}: the error names the frame's channel"
                );
                assert_eq!(got, code, "{what}: error code ({text})");
                answers.push(format!("{what}: {got:?} \"{text}\""));
            }
            other => panic!("{what}: expected an Error frame, got {other:?}"),
        }
        let now = channel_view(&an, &ch_hex).expect("view");
        assert_eq!(now, before, "{what} changed node-1's view of the channel");
    }

    // The valid payment still goes through on the same stream.
    link.send(pay_frame(id, valid, 50, ref2));
    let ack = rt.block_on(link.next("the ack of the valid payment"));
    assert_eq!(
        ack,
        ChannelMsg::Ack {
            channel_id: id,
            direction: Direction::AToB,
            seq: valid.proof.seq,
            hash: valid.proof.hash()
        },
        "the valid payment is acked: nothing before it changed node-1's state"
    );
    ch.handle_message(&ack).expect("ack");
    let v = channel_view(&an, &ch_hex).expect("view");
    assert_eq!(
        (v["received"].as_u64(), v["status"].as_str()),
        (Some(150), Some("open")),
        "{v}"
    );

    // node-1 keeps serving its other channel.
    let paid = pay_api(&an, &other, 7, 100).expect("a payment on node-1's other channel");
    assert_eq!(paid["count"], 100);
    wait_until("node-2 to receive on the other channel", STEP, || {
        let v = channel_view(&net.api(2), &other)?;
        (v["received"] == 700).then_some(()).ok_or(format!("{v}"))
    });

    // The peer holds one live stream; node-1 keeps at most 4 channel streams of one peer, so of
    // 6 more (silent) streams 3 are closed at once while 3 wait for their greeting.
    let closed_at_once = rt.block_on(async {
        let mut streams = Vec::new();
        for _ in 0..6 {
            let s = bounded(
                "open a channel stream",
                peer.handle.open_channel_stream(net.peer_id(N)),
            )
            .await
            .expect("open a channel stream");
            streams.push(s);
        }
        let reads = streams.into_iter().map(|s| async move {
            let (mut read, _write) = s.split();
            let mut byte = [0u8; 1];
            // Well under the 10 s greeting timeout: a stream still open here was kept.
            matches!(
                tokio::time::timeout(Duration::from_secs(6), read.read(&mut byte)).await,
                Ok(Ok(0) | Err(_))
            )
        });
        paychan_net::libp2p::futures::future::join_all(reads)
            .await
            .into_iter()
            .filter(|c| *c)
            .count()
    });
    assert_eq!(
        closed_at_once, 3,
        "streams beyond the per-peer limit are closed at once"
    );
    // The live stream still works.
    let v = channel_view(&an, &ch_hex).expect("view");
    assert_eq!(v["status"].as_str(), Some("open"), "{v}");

    eprintln!(
        "test 5: every invalid proof got an Error frame and changed nothing:\n  {}\nwhole test {:?}",
        answers.join("\n  "),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers: CLI, API, ledger.
// ---------------------------------------------------------------------------------------------

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// What genesis gave every node (the same for each).
fn allocation(net: &Testnet) -> u64 {
    let g = net.genesis();
    let key = net.node_key(0).public();
    g.allocations
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, a)| *a)
        .expect("node-0 has an allocation")
}

/// `POST /v1/channels/{id}/pay` with a bound fit for long jobs.
fn pay_api(api: &Api, id: &str, amount: u64, count: u64) -> Result<Value, String> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(PAY_TIMEOUT))
        .build()
        .new_agent();
    let mut resp = agent
        .post(format!("{}/v1/channels/{id}/pay", api.base))
        .header("Authorization", format!("Bearer {}", api.token))
        .send_json(json!({"amount": amount, "count": count}))
        .map_err(|e| format!("pay: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("pay: {status} {body}"))
    }
}

/// `POST /v1/tx`: status and body.
fn submit_tx(api: &Api, tx: &Tx) -> (u16, Value) {
    api.post("/v1/tx", &json!({"tx": hex::encode(tx.to_bytes())}))
        .expect("POST /v1/tx")
}

/// Runs the CLI in the background under `timeout` (SIGKILL on expiry); join for the outcome.
fn spawn_cli(args: &[&str], timeout: Duration) -> std::thread::JoinHandle<Result<Output, String>> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let child = paychan()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(timeout) {
            Ok(out) => out.map_err(|e| e.to_string()),
            Err(_) => {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                Err(format!("paychan {args:?} did not finish within {timeout:?}"))
            }
        }
    })
}

/// Waits until every node's replica shows exactly `expected`, then checks that each node's
/// ledger conserves value (balances plus live deposits equal the genesis supply).
fn expect_balances_everywhere(net: &Testnet, expected: &[(&str, PublicKey, u64)]) {
    let supply: u64 = net.genesis().allocations.iter().map(|(_, a)| a).sum();
    for i in 0..net.n {
        let api = net.api(i);
        wait_until(
            &format!("node-{i}'s replica to show the expected balances"),
            STEP,
            || {
                for (name, key, want) in expected {
                    let got = api.balance(key)?;
                    if got != *want {
                        return Err(format!("{name}: {got}, expected {want}"));
                    }
                }
                Ok(())
            },
        );
        let st = api.status().expect("ledger status");
        assert_eq!(st["supply"].as_u64(), Some(supply), "node-{i}: {st}");
        assert_eq!(st["total_value"], st["supply"], "node-{i} conserves value: {st}");
    }
}

/// `(tx id, kind)` of every transaction in blocks above `height` (node `api`'s replica).
fn tx_kinds_after(api: &Api, height: u64) -> Vec<(String, String)> {
    let tip = api.height().expect("height");
    api.blocks(tip)
        .expect("blocks")
        .into_iter()
        .filter(|b| b["height"].as_u64().unwrap_or(0) > height)
        .flat_map(|b| b["txs"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_owned(),
                t["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Share of one core a process used over `window` (from /proc utime + stime).
fn cpu_share(pid: u32, window: Duration) -> f64 {
    let ticks = || -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = s.rsplit_once(") ")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    };
    let hz = 100.0; // USER_HZ on Linux
    let (Some(a), t0) = (ticks(), Instant::now()) else {
        return f64::NAN;
    };
    std::thread::sleep(window); // a measurement window, not a wait for a condition
    let Some(b) = ticks() else { return f64::NAN };
    (b - a) as f64 / hz / t0.elapsed().as_secs_f64()
}

fn channel_id(hex: &str) -> ChannelId {
    ChannelId(Hash32::from_hex(hex).expect("a channel id"))
}

fn random_hash() -> Hash32 {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    Hash32(b)
}

// ---------------------------------------------------------------------------------------------
// Helpers: a channel stream of the test's own.
// ---------------------------------------------------------------------------------------------

/// Dials node `i` from a test peer and waits for the connection.
fn dial(rt: &Runtime, handle: &NetHandle, net: &Testnet, i: usize) {
    let addr = net.p2p_addr(i);
    rt.block_on(bounded("the test peer dials the node", handle.dial(addr)))
        .expect("dial the node");
}

/// Opens a `/paychan/channel/1` stream to `node` and drives it as the dialer (the testkit's
/// `RawLink`: a 4-byte big-endian length and a postcard `Envelope {epoch, msg}` a frame; frames
/// of another epoch are dropped).
async fn dial_link(handle: &NetHandle, node: PeerId, chain_id: Hash32) -> RawLink {
    let stream = bounded("open a channel stream", handle.open_channel_stream(node))
        .await
        .expect("open a channel stream");
    RawLink::dial(stream, chain_id).await
}

/// A `Pay` frame of one proof paying one payment of `amount`.
fn pay_frame(channel_id: ChannelId, proof: SignedProof, amount: u64, reference: Hash32) -> ChannelMsg {
    ChannelMsg::Pay {
        channel_id,
        items: vec![PayItem {
            proof,
            payments: vec![Payment { amount, reference }],
        }],
    }
}

/// "Persists" a channel in memory: the snapshot becomes the durable state; returns what waited
/// for it (an Ack or a Reestablish).
fn persist(ch: &mut Channel, durable: &mut Option<PersistedChannel>) -> Option<ChannelMsg> {
    let snap = ch.snapshot();
    let msg = ch
        .persisted(&snap)
        .expect("a snapshot of the channel itself is accepted");
    *durable = Some(snap);
    msg
}

// ---------------------------------------------------------------------------------------------
// The test payee of test 4.
// ---------------------------------------------------------------------------------------------

/// What the test payee saw.
#[derive(Default)]
struct PayeeLog {
    /// Every proof received, with the number of the stream it came on (1, 2, ...).
    items: Vec<(u32, SignedProof)>,
    /// Per stream: the proof the payee reported in its Reestablish.
    reported: Vec<(u32, Option<SignedProof>)>,
    /// Refusals of the payee's state machine and protocol surprises (an honest payer causes none).
    errors: Vec<String>,
}

/// State shared between the payee task and the test thread.
#[derive(Default)]
struct Payee {
    log: Mutex<PayeeLog>,
    /// Whether the payee persists and acks what it receives.
    ack: AtomicBool,
    /// The stream whose Reestablish exchange completed last.
    ready_link: AtomicU32,
    /// Verified incoming total.
    received: AtomicU64,
    /// Ledger time for the open policy.
    ledger_time_ms: AtomicU64,
}

impl Payee {
    fn items(&self) -> usize {
        self.log.lock().unwrap().items.len()
    }

    fn wait_ready(&self, link: u32) {
        wait_until(&format!("stream {link} to reestablish"), STEP, || {
            let log = self.log.lock().unwrap();
            if !log.errors.is_empty() {
                panic!("the payee refused something: {:?}", log.errors);
            }
            let ready = self.ready_link.load(Ordering::SeqCst);
            (ready >= link)
                .then_some(())
                .ok_or(format!("ready stream {ready}"))
        })
    }
}

enum PayeeCmd {
    /// The open is on the ledger (the node said so).
    Confirm(oneshot::Sender<()>),
}

/// The payee: accepts the node's channel streams (the node always dials: it knows no address of
/// the test peer), takes the open, verifies and records every proof, persists in memory and
/// acks while `ack` is set. On every new stream it restarts from its durable state, so its
/// Reestablish reports exactly what it persisted.
async fn run_payee(
    key: Keypair,
    chain_id: Hash32,
    mut incoming: IncomingStreams,
    shared: Arc<Payee>,
    mut cmds: mpsc::UnboundedReceiver<PayeeCmd>,
) {
    let mut ch: Option<Channel> = None;
    let mut durable: Option<PersistedChannel> = None;
    let mut acceptance: Option<OpenAcceptance> = None;
    let mut link: Option<RawLink> = None;
    let mut link_no = 0u32;
    let error = |e: String| shared.log.lock().unwrap().errors.push(e);
    loop {
        tokio::select! {
            next = incoming.next() => {
                let Some((_, stream)) = next else { return };
                let new = match RawLink::accept(stream, chain_id).await {
                    Ok(l) => l,
                    Err(e) => {
                        error(format!("stream without a greeting: {e}"));
                        continue;
                    }
                };
                link_no += 1;
                if let Some(d) = &durable {
                    ch = Some(Channel::restore(d.clone(), key.clone()).expect("restore the payee"));
                }
                if let Some(c) = ch.as_mut() {
                    persist(c, &mut durable);
                    let reported = c.durable_incoming().copied();
                    shared.log.lock().unwrap().reported.push((link_no, reported));
                    match c.peer_connected() {
                        Some(m) => new.send(m),
                        None => error("a restored payee has nothing to persist first".into()),
                    }
                }
                link = Some(new);
            }
            msg = async {
                match link.as_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(msg) = msg else {
                    link = None;
                    if let Some(c) = ch.as_mut() {
                        c.peer_disconnected();
                    }
                    continue;
                };
                let Some(l) = link.as_ref() else { continue };
                match msg {
                    ChannelMsg::OpenPropose { open } => {
                        let policy = OpenPolicy {
                            chain_id,
                            now_ms: shared.ledger_time_ms.load(Ordering::SeqCst),
                            expiry_ms_min_ahead: 1_000,
                            expiry_ms_max_ahead: 3_600_000,
                            deposit_own_max: 0,
                            deposit_peer_min: 1,
                        };
                        match accept_open(&key, &open, &policy, random_hash()) {
                            Ok((acc, reply)) => {
                                acceptance = Some(acc);
                                l.send(reply);
                            }
                            Err(e) => error(format!("open refused: {e}")),
                        }
                    }
                    ChannelMsg::OpenSigned { channel_id, sig_a } => {
                        let Some(acc) = acceptance.take() else {
                            error("OpenSigned without a proposal".into());
                            continue;
                        };
                        match acc.on_signed(channel_id, &sig_a).map(|s| Channel::new(s, key.clone())) {
                            Ok(Ok(mut c)) => {
                                persist(&mut c, &mut durable);
                                shared.log.lock().unwrap().reported.push((link_no, None));
                                if let Some(m) = c.peer_connected() {
                                    l.send(m);
                                }
                                ch = Some(c);
                            }
                            other => error(format!("OpenSigned: {other:?}")),
                        }
                    }
                    ChannelMsg::Pay { ref items, .. } => {
                        let Some(c) = ch.as_mut() else { continue };
                        shared
                            .log
                            .lock()
                            .unwrap()
                            .items
                            .extend(items.iter().map(|i| (link_no, i.proof)));
                        match c.handle_message(&msg) {
                            Ok(_) => {
                                shared.received.store(c.transferred_in(), Ordering::SeqCst);
                                if shared.ack.load(Ordering::SeqCst) {
                                    if let Some(ack) = persist(c, &mut durable) {
                                        l.send(ack);
                                    }
                                }
                            }
                            Err(e) => error(format!("stream {link_no}: pay refused: {e}")),
                        }
                    }
                    m @ ChannelMsg::Reestablish { .. } => {
                        let Some(c) = ch.as_mut() else { continue };
                        match c.handle_message(&m) {
                            Ok(h) => {
                                for f in h.send {
                                    l.send(f);
                                }
                                if c.is_reestablished() {
                                    shared.ready_link.store(link_no, Ordering::SeqCst);
                                }
                            }
                            Err(e) => error(format!("stream {link_no}: reestablish refused: {e}")),
                        }
                    }
                    ChannelMsg::Hello { .. } => {}
                    other => error(format!("stream {link_no}: unexpected {other:?}")),
                }
            }
            cmd = cmds.recv() => match cmd {
                Some(PayeeCmd::Confirm(reply)) => {
                    if let Some(c) = ch.as_mut() {
                        if let Err(e) = c.on_open_confirmed() {
                            error(format!("confirm: {e}"));
                        }
                        persist(c, &mut durable);
                    }
                    let _ = reply.send(());
                }
                None => return,
            },
        }
    }
}

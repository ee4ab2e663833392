//! The ledger under a flood, against real `paychan` node processes (a local 3-node testnet on
//! 127.0.0.1: node-0 the sequencer, node-1 and node-2 witnesses): 60 funded accounts submit
//! valid, fee-paying transfers over `/paychan/ledger/1`, like outside clients, through every
//! node and as fast as each node's per-peer limits allow. Meanwhile an honest cooperative close
//! and a dispute update against a stale unilateral close each land within a few blocks of their
//! submission, and every node keeps its peers and bans nobody.
//!
//! A second test bursts transfers from a node's own account past the nonce window: the excess
//! is refused with 429 "too many pending", never a BadNonce, and what was accepted lands.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use paychan_ledger::mempool::NONCE_WINDOW;
use paychan_ledger::testkit::{keypair, TestNet};
use paychan_net::{NetHandle, PeerId};
use paychan_protocol::wire::{LedgerRequest, LedgerResponse, SubmitStatus};
use paychan_protocol::{Direction, Hash32, Keypair, PublicKey, Tx, Wire};
use serde_json::Value;

/// Spamming accounts.
const SPAMMERS: usize = 60;
/// What each spammer is funded with: far more than the flood's amounts and fees.
const SPAM_FUNDS: u64 = 10_000_000;
/// Blocks within which an honest close or dispute must land after its submission.
const LANDS_WITHIN: u64 = 5;
/// The witnesses' per-peer relay rate is 20/s (burst 40; node/src/node.rs): their spam peers
/// send twice that, so that the node's limit, not the test, is the bound.
const WITNESS_PEER_RATE: f64 = 40.0;
/// Spam peers per witness: together above the witness's total relay rate towards the sequencer.
const PEERS_PER_WITNESS: usize = 6;
/// The sequencer's per-peer request rate is 200/s (burst 400), and a peer that keeps sending
/// past its refusals is cut off: its spam peers send just under it.
const SEQUENCER_PEER_RATE: f64 = 190.0;
/// Spam peers of the sequencer.
const PEERS_OF_SEQUENCER: usize = 2;
/// The whole test's bound.
const TEST_BOUND: Duration = Duration::from_secs(90);

/// One testnet at a time: the two tests of this file share two cores with the nodes.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds transactions of the testnet's chain with the ledger's test kit.
fn kit(net: &Testnet) -> TestNet {
    let genesis = net.genesis();
    TestNet {
        chain_id: genesis.chain_id(),
        genesis,
        sequencer: keypair(0),
        witnesses: vec![],
        users: vec![],
    }
}

/// `POST /v1/tx` that must be accepted.
fn submit_http(api: &Api, tx: &Tx) {
    let body = serde_json::json!({ "tx": hex::encode(tx.to_bytes()) });
    match api.post("/v1/tx", &body) {
        Ok((200, v)) if v["status"] == "accepted" => {}
        other => panic!("submit {}: {other:?}", tx.id().to_hex()),
    }
}

/// The account's next nonce on node `api`'s replica.
fn nonce_of(api: &Api, account: &PublicKey) -> Result<u64, String> {
    api.get(&format!("/v1/accounts/{}", account.to_hex()))?["nonce"]
        .as_u64()
        .ok_or_else(|| "no nonce".into())
}

/// Blocks `from..=to` of node `api` (paged).
fn blocks_between(api: &Api, from: u64, to: u64) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut next = from.max(1);
    while next <= to {
        let limit = (to - next + 1).min(64);
        let page = api.get(&format!("/v1/ledger/blocks?from={next}&limit={limit}"))?;
        let page = page.as_array().ok_or("blocks is not an array")?.clone();
        if page.is_empty() {
            return Err(format!("no block {next}"));
        }
        next += page.len() as u64;
        out.extend(page);
    }
    Ok(out)
}

/// Waits until transaction `id` is in a block of node-0 at or after `from`; returns its height.
fn landed(net: &Testnet, what: &str, id: Hash32, from: u64) -> u64 {
    let api = net.api(0);
    let id = id.to_hex();
    let mut scanned = from.saturating_sub(1);
    wait_until(&format!("{what} to land"), STEP, || {
        let tip = api.height()?;
        for b in blocks_between(&api, scanned + 1, tip)? {
            let h = b["height"].as_u64().ok_or("no height")?;
            scanned = h;
            if b["txs"]
                .as_array()
                .is_some_and(|txs| txs.iter().any(|t| t["id"] == id.as_str()))
            {
                return Ok(h);
            }
        }
        Err(format!("not in blocks {from}..={tip}"))
    })
}

/// Submits one transaction over `/paychan/ledger/1` to `node` and expects it accepted at once.
async fn submit_p2p(handle: &NetHandle, node: PeerId, what: &str, tx: Tx) {
    let id = tx.id();
    match bounded(what, handle.request(node, LedgerRequest::Submit(Box::new(tx)))).await {
        Ok(LedgerResponse::Submitted { tx_id, status }) => {
            assert_eq!(tx_id, id, "{what}");
            assert_eq!(status, SubmitStatus::Accepted, "{what}");
        }
        other => panic!("{what}: {other:?}"),
    }
}

/// What the spam lanes saw.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    accepted: AtomicU64,
    /// Refused by a witness for its per-peer rate.
    peer_rate: AtomicU64,
    /// Refused by a witness for its total relay rate.
    relay_busy: AtomicU64,
    /// Refused for a nonce outside the window (the account has enough pending).
    window: AtomicU64,
    /// Refused by the network layer (rate, concurrency).
    net_refused: AtomicU64,
    /// Requests that failed (no answer, disconnect): must stay 0.
    failed: AtomicU64,
    /// Other refusals, by text: must stay empty.
    other: Mutex<BTreeMap<String, u64>>,
}

/// A token-bucket-free pacer: one send every `1 / rate` seconds for one peer, shared by its
/// lanes.
struct Pacer {
    next: tokio::sync::Mutex<tokio::time::Instant>,
    gap: Duration,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            gap: Duration::from_secs_f64(1.0 / rate),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What every spam lane shares.
struct Flood {
    kit: Arc<TestNet>,
    sink: PublicKey,
    stop: AtomicBool,
    tally: Tally,
}

/// One spammer account's lane: valid transfers with consecutive nonces, each retried until a
/// node takes it, paced by its peer's pacer.
async fn spam_lane(handle: NetHandle, node: PeerId, pacer: Arc<Pacer>, key: Keypair, flood: Arc<Flood>) {
    let (kit, sink, stop, tally) = (&flood.kit, flood.sink, &flood.stop, &flood.tally);
    let mut nonce = 0;
    while !stop.load(Ordering::Relaxed) {
        pacer.wait().await;
        let tx = kit.transfer(&key, sink, 1, nonce);
        tally.sent.fetch_add(1, Ordering::Relaxed);
        match handle.request(node, LedgerRequest::Submit(Box::new(tx))).await {
            Ok(LedgerResponse::Submitted { .. }) => {
                tally.accepted.fetch_add(1, Ordering::Relaxed);
                nonce += 1;
            }
            Ok(LedgerResponse::Error { text }) => {
                let counter = if text.contains("from this peer") {
                    &tally.peer_rate
                } else if text.contains("relay busy") {
                    &tally.relay_busy
                } else if text.contains("next nonce is") || text.contains("already pending") {
                    // A lagging replica's window, or the account's 16 pending: wait a block.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    &tally.window
                } else if text.contains("slow down") || text.contains("busy") {
                    &tally.net_refused
                } else {
                    *tally.other.lock().unwrap().entry(text).or_default() += 1;
                    continue;
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => {
                *tally
                    .other
                    .lock()
                    .unwrap()
                    .entry(format!("{other:?}"))
                    .or_default() += 1;
            }
            Err(e) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                *tally
                    .other
                    .lock()
                    .unwrap()
                    .entry(format!("request failed: {e}"))
                    .or_default() += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Waits until node `i` lists every other node as a peer.
fn wait_full_mesh(net: &Testnet, i: usize) {
    let want: Vec<String> = (0..net.n)
        .filter(|&j| j != i)
        .map(|j| net.peer_id(j).to_string())
        .collect();
    wait_until(&format!("node-{i} connected to every other node"), STEP, || {
        let peers = net.api(i).peers()?;
        match want.iter().find(|p| !peers.contains(p)) {
            None => Ok(()),
            Some(missing) => Err(format!("{missing} missing from {peers:?}")),
        }
    });
}

/// The node's open `/metrics` text.
fn metrics(api: &Api) -> String {
    let mut resp = agent()
        .get(format!("{}/metrics", api.base))
        .call()
        .expect("GET /metrics");
    resp.body_mut().read_to_string().expect("metrics text")
}

#[test]
fn sixty_spammers_at_the_limits_delay_no_close_and_no_dispute() {
    let _serial = serial();
    let started = Instant::now();
    let net = Testnet::up(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let kit = Arc::new(kit(&net));
    let seq_api = net.api(0);
    wait_full_mesh(&net, 0);

    // Fund the spammers from a funded client account, a nonce window at a time.
    let funder = net.client_key(0);
    let spammers: Vec<Keypair> = (0..SPAMMERS as u64).map(|i| keypair(70_000 + i)).collect();
    for (round, keys) in spammers.chunks(NONCE_WINDOW as usize).enumerate() {
        let first = round as u64 * NONCE_WINDOW;
        for (k, key) in keys.iter().enumerate() {
            submit_http(
                &seq_api,
                &kit.transfer(&funder, key.public(), SPAM_FUNDS, first + k as u64),
            );
        }
        let want = first + keys.len() as u64;
        wait_until("a funding round to land", STEP, || {
            match nonce_of(&seq_api, &funder.public())? {
                n if n >= want => Ok(()),
                n => Err(format!("funder nonce {n}, want {want}")),
            }
        });
    }

    // Two channels between honest parties A and B.
    let (a, b) = (net.client_key(1), net.client_key(2));
    let (open_coop, coop_id) = kit.open(&a, &b, (100_000, 100_000), 1, u64::MAX);
    let (open_dispute, dispute_id) = kit.open(&a, &b, (100_000, 100_000), 2, u64::MAX);
    let h0 = seq_api.height().unwrap();
    submit_http(&seq_api, &open_coop);
    submit_http(&seq_api, &open_dispute);
    let opened = landed(&net, "the first open", open_coop.id(), h0 + 1).max(landed(
        &net,
        "the second open",
        open_dispute.id(),
        h0 + 1,
    ));
    // Both witnesses know the channels before anything is relayed for them.
    for i in 1..3 {
        wait_until(&format!("node-{i} past the opens"), STEP, || {
            match net.api(i).height()? {
                h if h >= opened => Ok(()),
                h => Err(format!("at {h}")),
            }
        });
    }

    // The flood: every node's spam peers, each with its share of the accounts.
    let flood = Arc::new(Flood {
        kit: kit.clone(),
        sink: Keypair::generate().public(),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });
    let tally = &flood.tally;
    let mut plan: Vec<(usize, f64)> = vec![(0, SEQUENCER_PEER_RATE); PEERS_OF_SEQUENCER];
    for node in 1..3 {
        plan.extend(std::iter::repeat_n((node, WITNESS_PEER_RATE), PEERS_PER_WITNESS));
    }
    let peers: Vec<(TestPeer, usize, Arc<Pacer>)> = plan
        .iter()
        .map(|&(node, rate)| {
            let p = rt.block_on(TestPeer::start());
            let id = net.peer_id(node);
            assert_eq!(
                rt.block_on(bounded("a spam peer dials", p.handle.dial(net.p2p_addr(node)))),
                Ok(id)
            );
            (p, node, Arc::new(Pacer::new(rate)))
        })
        .collect();
    let sequencer = net.node_key(0).public();
    let fees_before = seq_api.balance(&sequencer).unwrap();
    let flood_from = seq_api.height().unwrap();
    let lanes: Vec<_> = spammers
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (p, node, pacer) = &peers[i % peers.len()];
            rt.spawn(spam_lane(
                p.handle.clone(),
                net.peer_id(*node),
                pacer.clone(),
                key.clone(),
                flood.clone(),
            ))
        })
        .collect();
    // Until the flood is at full strength: the witnesses refuse spam peers beyond their own
    // rate and beyond the relay's total rate, and the sequencer has taken a good deal of it.
    wait_until("the flood to reach the limits", STEP, || {
        let (accepted, peer_rate, busy) = (
            tally.accepted.load(Ordering::Relaxed),
            tally.peer_rate.load(Ordering::Relaxed),
            tally.relay_busy.load(Ordering::Relaxed),
        );
        if accepted >= 1_000 && peer_rate > 0 && busy > 0 {
            Ok(())
        } else {
            Err(format!(
                "{accepted} accepted, {peer_rate} per-peer refusals, {busy} relay busy"
            ))
        }
    });

    // (a) The cooperative close, submitted once through witness node-1 by an outside client.
    let honest = rt.block_on(TestPeer::start());
    for node in 1..3 {
        assert_eq!(
            rt.block_on(bounded(
                "the honest client dials",
                honest.handle.dial(net.p2p_addr(node))
            )),
            Ok(net.peer_id(node))
        );
    }
    let coop = kit.coop_close(&a, &b, coop_id, (90_000, 110_000));
    let submitted = seq_api.height().unwrap();
    rt.block_on(submit_p2p(
        &honest.handle,
        net.peer_id(1),
        "the cooperative close through node-1",
        coop.clone(),
    ));
    let at = landed(&net, "the cooperative close", coop.id(), submitted);
    println!("cooperative close: submitted at height {submitted}, in block {at}");
    assert!(
        at <= submitted + LANDS_WITHIN,
        "the cooperative close took {} blocks",
        at - submitted
    );

    // (b) A closes the other channel unilaterally with an old proof of its own payments to B
    // (300 where B holds 700), through witness node-2; B's update answers it there.
    let old = kit.proof(&a, dispute_id, Direction::AToB, 3, 300);
    let newest = kit.proof(&a, dispute_id, Direction::AToB, 7, 700);
    let stale = kit.unilateral_close(&a, dispute_id, Some(old), None);
    let submitted = seq_api.height().unwrap();
    rt.block_on(submit_p2p(
        &honest.handle,
        net.peer_id(2),
        "the stale unilateral close through node-2",
        stale.clone(),
    ));
    let closed = landed(&net, "the stale close", stale.id(), submitted);
    println!("stale unilateral close: submitted at height {submitted}, in block {closed}");
    assert!(
        closed <= submitted + LANDS_WITHIN,
        "the close took {} blocks",
        closed - submitted
    );
    // B sees the close on its node's replica, then answers.
    wait_until("node-2 to see the stale close", STEP, || {
        match net.api(2).height()? {
            h if h >= closed => Ok(()),
            h => Err(format!("at {h}")),
        }
    });
    let update = kit.update(dispute_id, Some(newest), None);
    let submitted = seq_api.height().unwrap();
    rt.block_on(submit_p2p(
        &honest.handle,
        net.peer_id(2),
        "the dispute update through node-2",
        update.clone(),
    ));
    let at = landed(&net, "the dispute update", update.id(), submitted);
    println!("dispute update: submitted at height {submitted}, in block {at}");
    assert!(
        at <= submitted + LANDS_WITHIN,
        "the dispute update took {} blocks",
        at - submitted
    );

    // The flood ran all along: stop it and look at what it did.
    flood.stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for lane in lanes {
            bounded("a spam lane stops", lane).await.expect("a spam lane");
        }
    });
    // What the sequencer took goes into blocks.
    let flood_to = wait_until("the sequencer's pool to drain", STEP, || {
        let status = seq_api.status()?;
        match status["pending"].as_u64() {
            Some(0) => status["height"].as_u64().ok_or_else(|| "no height".to_owned()),
            p => Err(format!("{p:?} pending")),
        }
    });
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "flood over blocks {flood_from}..={flood_to}: sent {}, accepted {}, per-peer refusals {}, \
         relay busy {}, window {}, network refusals {}, failed {}",
        load(&tally.sent),
        load(&tally.accepted),
        load(&tally.peer_rate),
        load(&tally.relay_busy),
        load(&tally.window),
        load(&tally.net_refused),
        load(&tally.failed),
    );
    let other = tally.other.lock().unwrap().clone();
    assert!(other.is_empty(), "unexpected answers to valid spam: {other:?}");
    assert_eq!(load(&tally.failed), 0, "a spam peer lost its node");
    assert!(
        load(&tally.peer_rate) > 0 && load(&tally.relay_busy) > 0,
        "the witnesses' limits never bound the spam peers"
    );
    let spam_in_blocks = blocks_between(&seq_api, flood_from + 1, flood_to)
        .unwrap()
        .iter()
        .flat_map(|b| b["txs"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["kind"] == "transfer")
        .count() as u64;
    // Each paid its fee to the sequencer (the smallest transfer's fee is a lower bound).
    let fee = net.fee(kit.transfer(&spammers[0], flood.sink, 1, 0).bytes().len() as u64);
    let fees = seq_api.balance(&sequencer).unwrap() - fees_before;
    println!("spam transfers in blocks: {spam_in_blocks}; fees earned by the sequencer: {fees}");
    assert!(
        fees >= spam_in_blocks * fee,
        "{fees} in fees for {spam_in_blocks} transfers"
    );
    assert!(
        spam_in_blocks >= load(&tally.accepted) && spam_in_blocks >= 1_000,
        "only {spam_in_blocks} spam transfers went into blocks"
    );

    // Every node still has every other one, and the spam peers theirs; nobody was banned or
    // cut off, and the ledger goes on.
    for i in 0..net.n {
        wait_full_mesh(&net, i);
    }
    for (p, node, _) in &peers {
        let theirs = net.api(*node).peers().unwrap();
        assert!(
            theirs.contains(&p.peer.to_string()),
            "a spam peer was dropped by node-{node}"
        );
    }
    for i in 0..net.n {
        let m = metrics(&net.api(i));
        let misbehaviour: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with("paychan_net_misbehaviour_total"))
            .collect();
        assert!(
            misbehaviour.is_empty(),
            "node-{i} saw misbehaviour: {misbehaviour:?}"
        );
        let log = std::fs::read_to_string(net.dir(i).join("node.log")).unwrap_or_default();
        for sign in ["banning it", "ignored our refusals"] {
            assert!(!log.contains(sign), "node-{i} log: {sign}");
        }
    }
    let h = seq_api.height().unwrap();
    for i in 0..net.n {
        wait_until(&format!("node-{i} past height {}", h + 1), STEP, || {
            match net.api(i).height()? {
                hi if hi > h + 1 => Ok(()),
                hi => Err(format!("at {hi}")),
            }
        });
    }
    assert!(
        started.elapsed() < TEST_BOUND,
        "the flood test took {:?}",
        started.elapsed()
    );
}

/// A burst of transfers from a node's own account (`POST /v1/transfer`, what `paychan
/// transfer` calls) larger than the nonce window, on the sequencer and on a witness: each is
/// accepted or refused with 429 "too many pending" (nothing signed, no nonce burnt), never a
/// BadNonce; what was accepted lands, with consecutive nonces; after a block, transfers go
/// through again.
#[test]
fn a_burst_of_own_transfers_is_queued_or_told_to_wait() {
    let _serial = serial();
    let net = Testnet::up(2);
    let sink = Keypair::generate().public();
    let mut total = 0;
    for i in 0..net.n {
        let api = net.api(i);
        let me = net.node_key(i).public();
        let nonce_before = nonce_of(&api, &me).unwrap();
        let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..2 * NONCE_WINDOW)
                .map(|_| {
                    let api = api.clone();
                    s.spawn(move || {
                        api.post(
                            "/v1/transfer",
                            &serde_json::json!({"to": sink.to_hex(), "amount": 1}),
                        )
                        .unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let accepted = answers.iter().filter(|(s, _)| *s == 200).count() as u64;
        let waits = answers.iter().filter(|(s, _)| *s == 429).count() as u64;
        println!("node-{i}: {accepted} accepted, {waits} told to wait");
        for (status, body) in &answers {
            match status {
                200 => assert_eq!(body["status"], "accepted", "{body}"),
                429 => assert!(body.to_string().contains("too many pending"), "node-{i}: {body}"),
                _ => panic!("node-{i}: a burst transfer answered {status} {body}"),
            }
        }
        assert!(
            waits > 0,
            "node-{i}: a burst of {} all accepted",
            2 * NONCE_WINDOW
        );
        assert!((1..=2 * NONCE_WINDOW).contains(&accepted));
        total += accepted;
        // Every accepted transfer lands: the nonces had no gap.
        wait_until(&format!("node-{i}'s burst to land"), STEP, || {
            match nonce_of(&api, &me)? {
                n if n == nonce_before + accepted => Ok(()),
                n => Err(format!("nonce {n}, want {}", nonce_before + accepted)),
            }
        });
        // Room again.
        api.transfer(&sink, 1).unwrap();
        total += 1;
        wait_until("the sink's balance", STEP, || {
            match net.api(0).balance(&sink)? {
                b if b == total => Ok(()),
                b => Err(format!("{b}, want {total}")),
            }
        });
    }
}

//! Adversarial peers against real `paychan` node processes (a local testnet on 127.0.0.1): a
//! rogue that gossips forged blocks, raw peers that break the `/paychan/ledger/1` framing, a
//! flooder beyond the per-peer limits, and an honest client that replays its submissions.
//! Throughout, honest peers keep being served and the network keeps making blocks.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use paychan_net::limits::{LEDGER_REQUESTS_PER_PEER_PER_S, LEDGER_REQUEST_BURST_PER_PEER};
use paychan_net::{NetEvent, PeerId, Topic, REFUSED_BUSY, REFUSED_MALFORMED, REFUSED_RATE_LIMITED};
use paychan_protocol::ledger::Transfer;
use paychan_protocol::wire::{parse_frame, GossipMsg, LedgerRequest, LedgerResponse, SubmitStatus};
use paychan_protocol::{merkle, Block, BlockHeader, Hash32, Keypair, Signature, Tx, Wire};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

/// One 4-node testnet for every adversary, one after the other; the test peers run on a tokio
/// runtime of the test's own while the test thread polls the nodes' APIs.
#[test]
fn adversaries_are_refused_and_cut_off_while_the_network_keeps_going() {
    let net = Testnet::up(4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let start_height = net.api(0).height().unwrap();

    rogue_blocks_are_rejected_and_the_rogue_cut_off(&net, &rt);
    ledger_protocol_abuse_is_refused_while_an_honest_client_is_served(&net, &rt);
    replayed_submissions_are_harmless(&net, &rt);
    forged_disputes_are_rejected_and_stale_ones_ignored(&net, &rt);
    network_keeps_going(&net, start_height);
}

#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// A well-formed next block signed with the rogue's own key (not the sequencer's).
    SignedByRogue,
    /// A well-formed next block with a signature of junk bytes.
    JunkSignature,
}

/// A block that is the valid next block of the node's tip in every respect but its signature.
fn forged_next_block(status: &Value, forgery: Forgery, rogue: &Keypair) -> Block {
    let hash = |k: &str| Hash32::from_hex(status[k].as_str().unwrap()).unwrap();
    let header = BlockHeader {
        chain_id: hash("chain_id"),
        height: status["height"].as_u64().unwrap() + 1,
        prev_hash: hash("block_hash"),
        time_ms: status["time_ms"].as_u64().unwrap() + 1,
        tx_root: merkle::root_from_leaf_hashes(&[]),
        log_size: status["log_size"].as_u64().unwrap(),
        log_root: hash("log_root"),
        state_root: hash("state_root"),
    };
    let signature = match forgery {
        Forgery::SignedByRogue => header.sign(rogue),
        Forgery::JunkSignature => Signature([0x5a; 64]),
    };
    Block {
        header,
        signature,
        txs: vec![],
    }
}

/// A test peer dials a node and gossips a forged next block on the blocks topic. The node never
/// applies it (its block at that height is the sequencer's), disconnects and bans the rogue
/// (the rogue sees the disconnect and cannot come back; `/v1/peers` does not list it).
fn rogue_blocks_are_rejected_and_the_rogue_cut_off(net: &Testnet, rt: &Runtime) {
    let sequencer = net.genesis().sequencer;
    for (target, forgery) in [(1, Forgery::SignedByRogue), (2, Forgery::JunkSignature)] {
        let api = net.api(target);
        let node = net.peer_id(target);
        let addr = net.p2p_addr(target);
        let mut rogue = rt.block_on(TestPeer::start());
        assert_eq!(
            rt.block_on(bounded("rogue dials", rogue.handle.dial(addr.clone()))),
            Ok(node)
        );
        // Publishing reaches the node once the rogue knows it subscribes to blocks.
        rt.block_on(rogue.wait_for("the node's blocks subscription", |e| {
            matches!(e, NetEvent::PeerSubscribed { peer, topic: Topic::Blocks } if peer == node).then_some(())
        }));
        wait_until("the node to list the rogue as a peer", STEP, || {
            let peers = api.peers()?;
            if peers.contains(&rogue.peer.to_string()) {
                Ok(())
            } else {
                Err(format!("{peers:?}"))
            }
        });

        let status = api.status().unwrap();
        let block = forged_next_block(&status, forgery, &rogue.key);
        assert!(block.header.verify(&sequencer, &block.signature).is_err());
        let forged_height = block.header.height;
        let forged_hash = block.header.hash().to_hex();
        rt.block_on(rogue.handle.publish(Topic::Blocks, &GossipMsg::Block(block)))
            .expect("the rogue publishes");

        // Cut off: the rogue observes the disconnect...
        rt.block_on(rogue.wait_for("the node disconnects the rogue", |e| {
            matches!(e, NetEvent::PeerDisconnected { peer } if peer == node).then_some(())
        }));
        // ...and cannot come back: the dial fails, or the node drops the connection at once.
        rt.block_on(async {
            match bounded("the rogue redials", rogue.handle.dial(addr.clone())).await {
                Ok(_) => {
                    rogue
                        .wait_for("the node drops the redial", |e| {
                            matches!(e, NetEvent::PeerDisconnected { peer } if peer == node).then_some(())
                        })
                        .await
                }
                Err(e) => assert!(e.is_retryable(), "{e}"),
            }
        });
        let rogue_id = rogue.peer.to_string();
        assert!(
            !api.peers().unwrap().contains(&rogue_id),
            "node-{target} still lists the rogue"
        );
        assert!(!rt
            .block_on(rogue.handle.connected_peers())
            .unwrap()
            .contains(&node));

        // The node never applied the forged block: its block at that height is the sequencer's.
        wait_until(
            &format!("node-{target} past height {forged_height}"),
            STEP,
            || {
                let h = api.height()?;
                if h >= forged_height {
                    Ok(())
                } else {
                    Err(format!("height {h}"))
                }
            },
        );
        let theirs = api.blocks(forged_height).unwrap();
        let seq = net.api(0).blocks(forged_height).unwrap();
        assert_ne!(hashes(&theirs)[forged_height as usize - 1], forged_hash);
        assert_eq!(
            hashes(&theirs),
            hashes(&seq),
            "node-{target} keeps the sequencer's blocks"
        );
        // Still connected to every honest node.
        let peers = api.peers().unwrap();
        for j in (0..4).filter(|j| *j != target) {
            assert!(
                peers.contains(&net.peer_id(j).to_string()),
                "node-{target} lost node-{j}"
            );
        }
        assert!(!peers.contains(&rogue_id));
    }
}

/// One honest request (`n` even: the genesis, odd: the first blocks), its answer checked.
async fn honest_ask(
    client: &paychan_net::NetHandle,
    node: PeerId,
    chain_id: Hash32,
    n: u32,
) -> Result<(), String> {
    let request = if n.is_multiple_of(2) {
        LedgerRequest::GetGenesis
    } else {
        LedgerRequest::GetBlocks { from: 1, limit: 4 }
    };
    match client.request(node, request.clone()).await {
        Ok(LedgerResponse::Genesis(g)) if g.chain_id() == chain_id => Ok(()),
        Ok(LedgerResponse::Blocks(b)) if !b.is_empty() && b[0].header.height == 1 => Ok(()),
        other => Err(format!("request {n} ({request:?}): {other:?}")),
    }
}

/// Asks `node` for the genesis and the first blocks every `every` until `stop`, checking every
/// answer. Returns how many answers it got, or the first failure.
async fn honest_client_loop(
    client: paychan_net::NetHandle,
    node: PeerId,
    chain_id: Hash32,
    stop: Arc<AtomicBool>,
    every: Duration,
) -> Result<u32, String> {
    let mut served = 0u32;
    while !stop.load(Ordering::Acquire) {
        honest_ask(&client, node, chain_id, served).await?;
        served += 1;
        tokio::time::sleep(every).await;
    }
    Ok(served)
}

/// A malformed frame and an oversized length prefix on `/paychan/ledger/1` get an error and a
/// disconnect (and a ban); a flood beyond the per-peer limit is refused; an honest client of
/// the same node is answered throughout.
fn ledger_protocol_abuse_is_refused_while_an_honest_client_is_served(net: &Testnet, rt: &Runtime) {
    let target = 3;
    let node = net.peer_id(target);
    let addr = net.p2p_addr(target);
    let api = net.api(target);
    let chain_id = net.genesis().chain_id();

    let honest = rt.block_on(TestPeer::start());
    assert_eq!(rt.block_on(honest.handle.dial(addr.clone())), Ok(node));
    let stop = Arc::new(AtomicBool::new(false));
    let honest_task = rt.spawn(honest_client_loop(
        honest.handle.clone(),
        node,
        chain_id,
        stop.clone(),
        Duration::from_millis(50),
    ));

    rt.block_on(async {
        // 1. A frame whose body is not a request: an error response, then a disconnect.
        let mut raw = raw_peer();
        let raw_id = *raw.local_peer_id();
        raw_connect(&mut raw, addr.clone()).await;
        let reply = raw_request_until_closed(&mut raw, node, vec![0, 0, 0, 3, 0xff, 0xff, 0xff])
            .await
            .expect("an error response to a malformed frame");
        let (_, body) = parse_frame(&reply, LedgerResponse::BYTES_MAX)
            .unwrap()
            .expect("a whole frame");
        match LedgerResponse::from_bytes(body).unwrap() {
            LedgerResponse::Error { text } => assert!(text.starts_with(REFUSED_MALFORMED), "{text}"),
            other => panic!("unexpected answer to a malformed frame: {other:?}"),
        }
        assert!(
            raw_redial_refused(&mut raw, addr.clone(), node).await,
            "the peer that sent a malformed frame is banned"
        );
        assert!(!api.peers().unwrap().contains(&raw_id.to_string()));
        honest_ask(&honest.handle, node, chain_id, 0)
            .await
            .expect("honest, after the malformed frame");

        // 2. A length prefix far over the limit with junk after it: refused from the prefix.
        let mut raw = raw_peer();
        raw_connect(&mut raw, addr.clone()).await;
        let mut oversized = u32::MAX.to_be_bytes().to_vec();
        oversized.extend_from_slice(&[0x55; 4096]);
        let reply = raw_request_until_closed(&mut raw, node, oversized)
            .await
            .expect("an error response to an oversized frame");
        let (_, body) = parse_frame(&reply, LedgerResponse::BYTES_MAX)
            .unwrap()
            .expect("a whole frame");
        match LedgerResponse::from_bytes(body).unwrap() {
            LedgerResponse::Error { text } => {
                assert!(text.starts_with(REFUSED_MALFORMED), "{text}");
                assert!(text.contains(&u32::MAX.to_string()), "{text}");
            }
            other => panic!("unexpected answer to an oversized frame: {other:?}"),
        }
        assert!(
            raw_redial_refused(&mut raw, addr.clone(), node).await,
            "the peer that sent an oversized frame is banned"
        );
        honest_ask(&honest.handle, node, chain_id, 1)
            .await
            .expect("honest, after the oversized frame");
    });

    // 3. A flood: batches of concurrent requests until the node refuses some.
    let flooder = rt.block_on(TestPeer::start());
    let flood_started = Instant::now();
    assert_eq!(rt.block_on(flooder.handle.dial(addr.clone())), Ok(node));
    let (ok, limited, busy, sent) = rt.block_on(async {
        let (mut ok, mut limited, mut busy, mut sent) = (0u32, 0u32, 0u32, 0u32);
        let mut honest_during_flood = 0u32;
        let deadline = Instant::now() + STEP;
        while limited == 0 {
            assert!(
                Instant::now() < deadline,
                "{sent} requests and none refused ({ok} answered)"
            );
            let batch: Vec<_> = (0..48)
                .map(|_| {
                    let h = flooder.handle.clone();
                    tokio::spawn(async move { h.request(node, LedgerRequest::GetGenesis).await })
                })
                .collect();
            // The honest client asks in the middle of every batch.
            let honest_blocks = honest_ask(&honest.handle, node, chain_id, 1);
            let honest_genesis = honest_ask(&honest.handle, node, chain_id, 0);
            let (b, g) = tokio::join!(honest_blocks, honest_genesis);
            b.and(g).expect("the honest client is answered during the flood");
            honest_during_flood += 2;
            for j in batch {
                sent += 1;
                match j.await.unwrap() {
                    Ok(LedgerResponse::Genesis(_)) => ok += 1,
                    Ok(LedgerResponse::Error { text }) if text == REFUSED_RATE_LIMITED => limited += 1,
                    Ok(LedgerResponse::Error { text }) if text == REFUSED_BUSY => busy += 1,
                    other => panic!("unexpected answer to the flood: {other:?}"),
                }
            }
        }
        eprintln!("honest requests answered during the flood: {honest_during_flood}");
        (ok, limited, busy, sent)
    });
    eprintln!(
        "flood: {sent} sent, {ok} answered, {limited} rate limited, {busy} busy in {:?}",
        flood_started.elapsed()
    );
    // Answered: at most the burst plus the sustained rate over the flood's time.
    let allowed = f64::from(LEDGER_REQUEST_BURST_PER_PEER)
        + f64::from(LEDGER_REQUESTS_PER_PEER_PER_S) * flood_started.elapsed().as_secs_f64()
        + 1.0;
    assert!(
        ok > 0 && f64::from(ok) <= allowed,
        "{ok} answered, {allowed} allowed"
    );
    let metrics = agent()
        .get(format!("{}/metrics", api.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    // The node's own counters agree: these refusals came from its per-peer limits.
    let counter = |kind: &str| -> u32 {
        let prefix = format!("paychan_net_ledger_inbound_requests_total{{kind=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(|v| v.trim().parse::<f64>().unwrap() as u32)
            .unwrap_or(0)
    };
    assert!(counter("rate_limited") >= limited, "{metrics}");
    assert!(counter("busy") >= busy, "{metrics}");
    assert_eq!(counter("malformed"), 2, "the two bad frames: {metrics}");

    // The honest client was answered throughout, and still is.
    stop.store(true, Ordering::Release);
    let served = rt
        .block_on(bounded("the honest client stops", honest_task))
        .unwrap()
        .expect("every honest request answered");
    assert!(served >= 1, "the honest client was served {served} times");
    assert!(api.peers().unwrap().contains(&honest.peer.to_string()));
}

/// Submitting one signed transfer twice, through the ledger protocol and through `POST /v1/tx`,
/// is harmless: Accepted, then AlreadyPending or AlreadyIncluded; it is applied once and the
/// client is not banned.
fn replayed_submissions_are_harmless(net: &Testnet, rt: &Runtime) {
    let target = 2;
    let node = net.peer_id(target);
    let api = net.api(target);
    let other_api = net.api(1);
    let genesis = net.genesis();
    let payer = net.client_key(1);
    let payee = net.client_key(2).public();
    let nonce = api
        .get(&format!("/v1/accounts/{}", payer.public().to_hex()))
        .unwrap()["nonce"]
        .as_u64()
        .unwrap();
    let (payer_before, payee_before) = (
        api.balance(&payer.public()).unwrap(),
        api.balance(&payee).unwrap(),
    );
    let transfer = |amount, nonce| {
        Tx::transfer(
            Transfer {
                chain_id: genesis.chain_id(),
                from: payer.public(),
                to: payee,
                amount,
                nonce,
            },
            &payer,
        )
    };
    let tx_a = transfer(77, nonce);
    let tx_b = transfer(88, nonce + 1);
    let replay = |s: &SubmitStatus| matches!(s, SubmitStatus::AlreadyPending | SubmitStatus::AlreadyIncluded);

    let client = rt.block_on(TestPeer::start());
    assert_eq!(rt.block_on(client.handle.dial(net.p2p_addr(target))), Ok(node));
    let submit = |tx: &Tx| -> SubmitStatus {
        match rt.block_on(
            client
                .handle
                .request(node, LedgerRequest::Submit(Box::new(tx.clone()))),
        ) {
            Ok(LedgerResponse::Submitted { tx_id, status }) => {
                assert_eq!(tx_id, tx.id());
                status
            }
            other => panic!("submit: {other:?}"),
        }
    };
    let post = |api: &Api, tx: &Tx| -> String {
        let (code, v) = api
            .post("/v1/tx", &json!({"tx": hex::encode(tx.to_bytes())}))
            .unwrap();
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["tx_id"], tx.id().to_hex());
        v["status"].as_str().unwrap().to_owned()
    };
    let replayed = |s: &str| s == "already_pending" || s == "already_included";

    // A: through the ledger protocol, then again, then through the API of another node.
    assert_eq!(submit(&tx_a), SubmitStatus::Accepted);
    let again = submit(&tx_a);
    assert!(replay(&again), "{again:?}");
    let s = post(&other_api, &tx_a);
    assert!(replayed(&s), "{s}");
    // B: through the API, then again, then through the ledger protocol.
    assert_eq!(post(&api, &tx_b), "accepted");
    let s = post(&api, &tx_b);
    assert!(replayed(&s), "{s}");
    let again = submit(&tx_b);
    assert!(replay(&again), "{again:?}");

    // Both land once; replays after that are AlreadyIncluded.
    let ids = [tx_a.id().to_hex(), tx_b.id().to_hex()];
    wait_until("both transfers in a block", STEP, || {
        let h = api.height()?;
        let all = tx_ids(&api.blocks(h)?);
        if ids.iter().all(|id| all.iter().filter(|x| *x == id).count() == 1) {
            Ok(())
        } else {
            Err(format!("not yet at height {h}"))
        }
    });
    assert_eq!(submit(&tx_a), SubmitStatus::AlreadyIncluded);
    assert_eq!(post(&api, &tx_b), "already_included");
    assert_eq!(post(&other_api, &tx_a), "already_included");
    // The payer also paid each transfer's fee (PROTOCOL.md §8.4), priced on its bytes.
    let fees = net.fee(tx_a.bytes().len() as u64) + net.fee(tx_b.bytes().len() as u64);
    assert_eq!(
        api.balance(&payer.public()).unwrap(),
        payer_before - 77 - 88 - fees
    );
    assert_eq!(api.balance(&payee).unwrap(), payee_before + 77 + 88);

    // Not an offence: the client is still connected and served.
    match rt.block_on(client.handle.request(node, LedgerRequest::GetGenesis)) {
        Ok(LedgerResponse::Genesis(g)) => assert_eq!(g.chain_id(), genesis.chain_id()),
        other => panic!("after the replays: {other:?}"),
    }
    assert!(api.peers().unwrap().contains(&client.peer.to_string()));
    assert!(rt
        .block_on(client.handle.connected_peers())
        .unwrap()
        .contains(&node));
}

/// A dispute update whose proof does not verify is provably invalid: the node rejects it and
/// cuts the sender off. Updates that are well signed but stale (the channel is not closing),
/// or for a channel the node does not know, are only ignored: their relay stays connected.
fn forged_disputes_are_rejected_and_stale_ones_ignored(net: &Testnet, rt: &Runtime) {
    use paychan_protocol::ledger::Update;
    use paychan_protocol::{BalanceProof, ChannelId, Direction};
    let target = 1;
    let api = net.api(target);
    let node = net.peer_id(target);
    let addr = net.p2p_addr(target);
    let chain_id = net.genesis().chain_id();

    // A channel on the ledger, opened by node-1 (party A, the payer of A to B) with node-2.
    let (code, v) = api
        .post(
            "/v1/channels",
            &json!({"peer": net.peer_id(2).to_string(), "deposit": 1_000, "their_deposit": 0}),
        )
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let channel_id = ChannelId(Hash32::from_hex(v["channel_id"].as_str().unwrap()).unwrap());
    let update = |channel_id: ChannelId, payer: &Keypair| {
        let proof = BalanceProof {
            chain_id,
            channel_id,
            direction: Direction::AToB,
            seq: 1,
            transferred: 1,
            prev: channel_id.0,
            memo_hash: Hash32([7; 32]),
        }
        .sign(payer);
        GossipMsg::Dispute(Box::new(Tx::Update(Update {
            chain_id,
            channel_id,
            proof_ab: Some(proof),
            proof_ba: None,
        })))
    };
    let join = |peer: &mut TestPeer| {
        assert_eq!(
            rt.block_on(bounded("dial the node", peer.handle.dial(addr.clone()))),
            Ok(node)
        );
        rt.block_on(peer.wait_for("the node's disputes subscription", |e| {
            matches!(e, NetEvent::PeerSubscribed { peer, topic: Topic::Disputes } if peer == node)
                .then_some(())
        }));
    };

    // The honest relay: a well-signed update of an open channel, and one of an unknown channel.
    let mut relay = rt.block_on(TestPeer::start());
    join(&mut relay);
    let unknown = ChannelId(Hash32([9; 32]));
    for msg in [
        update(channel_id, &net.node_key(target)),
        update(unknown, &relay.key),
    ] {
        rt.block_on(relay.handle.publish(Topic::Disputes, &msg))
            .expect("the relay publishes");
    }

    // The forger: the same update signed by a key that is not the payer's.
    let mut forger = rt.block_on(TestPeer::start());
    join(&mut forger);
    rt.block_on(
        forger
            .handle
            .publish(Topic::Disputes, &update(channel_id, &forger.key)),
    )
    .expect("the forger publishes");
    rt.block_on(forger.wait_for("the node disconnects the forger", |e| {
        matches!(e, NetEvent::PeerDisconnected { peer } if peer == node).then_some(())
    }));
    wait_until("the node to drop the forger", STEP, || {
        let peers = api.peers()?;
        if peers.contains(&forger.peer.to_string()) {
            Err(format!("{peers:?}"))
        } else {
            Ok(())
        }
    });
    assert!(
        api.peers().unwrap().contains(&relay.peer.to_string()),
        "the honest relay stays connected"
    );
    assert!(rt
        .block_on(relay.handle.connected_peers())
        .unwrap()
        .contains(&node));
}

/// After all that, the network still makes blocks, a transfer through a node that met a rogue
/// lands everywhere, and every replica agrees.
fn network_keeps_going(net: &Testnet, start_height: u64) {
    let to = net.node_key(3).public();
    let id = net.api(1).transfer(&to, 5).expect("a transfer after the attacks");
    let landed = wait_until("the transfer on every node", STEP, || {
        let mut heights = Vec::new();
        for i in 0..4 {
            let api = net.api(i);
            let h = api.height()?;
            if !tx_ids(&api.blocks(h)?).contains(&id) {
                return Err(format!("not on node-{i} at height {h}"));
            }
            heights.push(h);
        }
        Ok(*heights.iter().min().unwrap())
    });
    assert!(
        landed > start_height + 2,
        "heights kept increasing: {start_height} -> {landed}"
    );
    let reference = hashes(&net.api(0).blocks(landed).unwrap());
    for i in 1..4 {
        assert_eq!(hashes(&net.api(i).blocks(landed).unwrap()), reference, "node-{i}");
        let s = net.api(i).status().unwrap();
        assert_eq!(s["total_value"], s["supply"], "node-{i}: conservation");
    }
}

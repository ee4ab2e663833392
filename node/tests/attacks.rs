//! Attacks on the ledger's network path against real `paychan` node processes (a local 3-node
//! testnet on 127.0.0.1: node-0 the sequencer, node-1 and node-2 witnesses): junk submissions
//! pushed through a witness, and a forged block from the far future. Throughout, the sequencer
//! keeps its peers and the ledger keeps making blocks.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use paychan_net::{NetEvent, Topic};
use paychan_protocol::ledger::Transfer;
use paychan_protocol::wire::{GossipMsg, LedgerRequest, LedgerResponse, SubmitStatus};
use paychan_protocol::{merkle, Block, BlockHeader, Hash32, Keypair, Tx};
use tokio::runtime::Runtime;

#[test]
fn network_attacks_leave_the_ledger_running() {
    let net = Testnet::up(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    junk_through_a_witness_does_not_get_it_banned(&net, &rt);
    a_forged_block_from_the_far_future_cuts_its_sender_off(&net, &rt);
    every_node_keeps_its_peers_and_the_ledger_goes_on(&net);
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

/// 14.1: four peers with unfunded keys push junk transfers through witness node-1 as fast as
/// they can for a few seconds. The witness checks them against its own replica and relays none
/// of them, so the sequencer never refuses it, let alone bans it; an honest transfer through
/// the same witness right after is accepted and lands.
fn junk_through_a_witness_does_not_get_it_banned(net: &Testnet, rt: &Runtime) {
    wait_full_mesh(net, 0);
    let witness = net.peer_id(1);
    let addr = net.p2p_addr(1);
    let genesis = net.genesis();
    let chain_id = genesis.chain_id();
    let sink = Keypair::generate().public();

    let attackers: Vec<TestPeer> = (0..4).map(|_| rt.block_on(TestPeer::start())).collect();
    for a in &attackers {
        assert_eq!(
            rt.block_on(bounded("attacker dials", a.handle.dial(addr.clone()))),
            Ok(witness)
        );
    }
    let sent = Arc::new(AtomicU64::new(0));
    let relayed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(4);
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for a in &attackers {
            for lane in 0..8u64 {
                let handle = a.handle.clone();
                let key = a.key.clone();
                let (sent, relayed) = (sent.clone(), relayed.clone());
                tasks.spawn(async move {
                    let mut nonce = lane * 1_000_000;
                    while Instant::now() < deadline {
                        let tx = Tx::transfer(
                            Transfer {
                                chain_id,
                                from: key.public(),
                                to: sink,
                                amount: 1_000,
                                nonce,
                            },
                            &key,
                        );
                        nonce += 1;
                        sent.fetch_add(1, Ordering::Relaxed);
                        match handle.request(witness, LedgerRequest::Submit(Box::new(tx))).await {
                            Ok(LedgerResponse::Submitted { .. }) => {
                                relayed.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            // Cut off for ignoring the witness's own refusals: the attacker's
                            // problem, not the witness's.
                            Err(_) => break,
                        }
                    }
                });
            }
        }
        while tasks.join_next().await.is_some() {}
    });
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent > 1_000, "the attack sent only {sent} submissions");
    assert_eq!(
        relayed.load(Ordering::Relaxed),
        0,
        "no junk transfer may be accepted"
    );

    // The sequencer still has the witness, and the witness the sequencer.
    wait_full_mesh(net, 0);
    wait_full_mesh(net, 1);

    // An honest transfer through the same witness is relayed and lands.
    let payer = net.client_key(0);
    let api = net.api(1);
    let nonce = api
        .get(&format!("/v1/accounts/{}", payer.public().to_hex()))
        .unwrap()["nonce"]
        .as_u64()
        .unwrap();
    let tx = Tx::transfer(
        Transfer {
            chain_id,
            from: payer.public(),
            to: sink,
            amount: 5,
            nonce,
        },
        &payer,
    );
    let honest = rt.block_on(TestPeer::start());
    assert_eq!(
        rt.block_on(bounded("honest dials", honest.handle.dial(addr.clone()))),
        Ok(witness)
    );
    match rt.block_on(
        honest
            .handle
            .request(witness, LedgerRequest::Submit(Box::new(tx))),
    ) {
        Ok(LedgerResponse::Submitted { status, .. }) => assert_eq!(status, SubmitStatus::Accepted),
        other => panic!("honest submit through the witness: {other:?}"),
    }
    wait_until("the honest transfer to land", STEP, || {
        match net.api(0).balance(&sink)? {
            5 => Ok(()),
            b => Err(format!("sink holds {b}")),
        }
    });
}

/// 14.7: a peer gossips a block a thousand heights beyond the tip, signed with its own key. The
/// node checks the signature before it acts on the block, and cuts the sender off.
fn a_forged_block_from_the_far_future_cuts_its_sender_off(net: &Testnet, rt: &Runtime) {
    let target = 2;
    let api = net.api(target);
    let node = net.peer_id(target);
    let mut rogue = rt.block_on(TestPeer::start());
    assert_eq!(
        rt.block_on(bounded("rogue dials", rogue.handle.dial(net.p2p_addr(target)))),
        Ok(node)
    );
    rt.block_on(rogue.wait_for("the node's blocks subscription", |e| {
        matches!(e, NetEvent::PeerSubscribed { peer, topic: Topic::Blocks } if peer == node).then_some(())
    }));
    let status = api.status().unwrap();
    let hash = |k: &str| Hash32::from_hex(status[k].as_str().unwrap()).unwrap();
    let header = BlockHeader {
        chain_id: hash("chain_id"),
        height: status["height"].as_u64().unwrap() + 1_000,
        prev_hash: hash("block_hash"),
        time_ms: status["time_ms"].as_u64().unwrap() + 1,
        tx_root: merkle::root_from_leaf_hashes(&[]),
        log_size: status["log_size"].as_u64().unwrap(),
        log_root: hash("log_root"),
        state_root: hash("state_root"),
    };
    let block = Block {
        signature: header.sign(&rogue.key),
        header,
        txs: vec![],
    };
    rt.block_on(rogue.handle.publish(Topic::Blocks, &GossipMsg::Block(block)))
        .expect("the rogue publishes");
    rt.block_on(rogue.wait_for("the node disconnects the rogue", |e| {
        matches!(e, NetEvent::PeerDisconnected { peer } if peer == node).then_some(())
    }));
    let rogue_id = rogue.peer.to_string();
    wait_until("the node to drop the rogue from its peers", STEP, || {
        let peers = api.peers()?;
        if peers.contains(&rogue_id) {
            Err(format!("{peers:?}"))
        } else {
            Ok(())
        }
    });
}

/// After every attack: each node is connected to each other one, and blocks keep coming on
/// every node.
fn every_node_keeps_its_peers_and_the_ledger_goes_on(net: &Testnet) {
    for i in 0..net.n {
        wait_full_mesh(net, i);
    }
    let h = net.api(0).height().unwrap();
    for i in 0..net.n {
        wait_until(&format!("node-{i} past height {}", h + 1), STEP, || {
            let hi = net.api(i).height()?;
            if hi > h + 1 {
                Ok(())
            } else {
                Err(format!("at {hi}"))
            }
        });
    }
}

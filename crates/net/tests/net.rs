//! Multi-node tests in one process on 127.0.0.1 ephemeral ports. Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::{AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::PeerId;
use paychan_net::{
    peer_id_from_public_key, public_key_from_peer_id, FrameViolation, MessageAcceptance, Misbehaviour,
    NetError, NetEvent, PeerLimits, Topic, REFUSED_BUSY, REFUSED_MALFORMED, REFUSED_RATE_LIMITED,
};
use paychan_protocol::ledger::{Block, BlockHeader, Cosignature};
use paychan_protocol::wire::{
    parse_frame, write_frame, ChannelMsg, Envelope, ErrorCode, GossipMsg, LedgerResponse,
};
use paychan_protocol::{Hash32, Keypair, PublicKey, Signature, Wire};
use paychan_testkit::frames::read_envelope;

fn cosig(n: u8) -> GossipMsg {
    GossipMsg::Cosignature {
        block_hash: Hash32([n; 32]),
        cosignature: Cosignature {
            witness: PublicKey([n; 32]),
            timestamp_s: u64::from(n),
            signature: Signature([n; 64]),
        },
    }
}

fn block(height: u64, sequencer: &Keypair, valid: bool) -> Block {
    let header = BlockHeader {
        chain_id: Hash32([1; 32]),
        height,
        prev_hash: Hash32([2; 32]),
        time_ms: 1_000 * height,
        tx_root: Hash32::ZERO,
        log_size: 0,
        log_root: Hash32::ZERO,
        state_root: Hash32::ZERO,
    };
    let signature = if valid {
        header.sign(sequencer)
    } else {
        Signature([7; 64])
    };
    Block {
        header,
        signature,
        txs: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_the_paychan_key() {
    init_tracing();
    let a = node(11).await;
    let key = Keypair::from_seed([11; 32]).public();
    assert_eq!(peer_id_from_public_key(&key), Some(a.peer));
    assert_eq!(public_key_from_peer_id(&a.peer), Some(key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_ledger_requests() {
    init_tracing();
    let mut a = node(1).await;
    let b = node(2).await;
    let (b_handle, b_peer, _b_addr, _b_events) = b.serve();

    assert_eq!(bounded("dial", a.handle.dial(_b_addr.clone())).await, Ok(b_peer));
    a.wait_connected(b_peer).await;
    // Dialling a connected peer again answers at once, without a second connection.
    assert_eq!(bounded("redial", a.handle.dial(_b_addr)).await, Ok(b_peer));

    for n in 1..=5 {
        let res = bounded("request", a.handle.request(b_peer, query(n))).await;
        assert_eq!(res, Ok(answer(&query(n))));
    }
    assert_eq!(a.handle.connected_peers().await.unwrap(), vec![b_peer]);

    // The other way round: a answers too.
    let a_peer = a.peer;
    let (_a_handle, _, _, _a_events) = a.serve();
    let res = bounded("request back", b_handle.request(a_peer, query(9))).await;
    assert_eq!(res, Ok(answer(&query(9))));

    // libp2p's and our metrics are in the registry.
    let text = {
        let registry = b_handle.metrics_registry();
        let registry = registry.lock().unwrap();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    };
    assert!(text.contains("libp2p_swarm_connections"), "{text}");
    assert!(
        text.contains("paychan_net_ledger_inbound_requests_total{kind=\"accepted\"} 5"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_bootstrap_and_exchange_requests() {
    init_tracing();
    let a = node(21).await;
    let b = node(22).await;
    let (a_handle, a_peer, a_addr, mut a_events) = a.serve();
    let (b_handle, b_peer, b_addr, _b_events) = b.serve();
    bounded("a dials b", a_handle.dial(b_addr.clone())).await.unwrap();

    // c finds the network through a bootstrap peer (Kademlia) and dials a directly.
    let mut config = test_config();
    config.bootstrap = vec![b_addr.clone()];
    let mut c = node_with(23, config).await;
    c.wait_connected(b_peer).await;
    bounded("c dials a", c.handle.dial(a_addr.clone())).await.unwrap();
    let inbound = wait_on(&mut a_events, "a sees c", |e| match e {
        NetEvent::PeerConnected { peer, inbound, .. } if peer == c.peer => Some(inbound),
        _ => None,
    })
    .await;
    assert!(inbound, "c dialled a");
    let c_peer = c.peer;
    let (c_handle, _, _, _c_events) = c.serve();

    let handles = [(a_peer, &a_handle), (b_peer, &b_handle), (c_peer, &c_handle)];
    for (from, h) in handles {
        let mut peers = h.connected_peers().await.unwrap();
        peers.sort();
        let mut want: Vec<PeerId> = handles.iter().map(|(p, _)| *p).filter(|p| *p != from).collect();
        want.sort();
        assert_eq!(peers, want);
        for (to, _) in handles.iter().filter(|(p, _)| *p != from) {
            let res = bounded("request", h.request(*to, query(3))).await;
            assert_eq!(res, Ok(answer(&query(3))));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_published_by_one_reaches_the_others() {
    init_tracing();
    let mut a = node(31).await;
    let mut b = node(32).await;
    let mut c = node(33).await;
    a.handle.dial(b.addr.clone()).await.unwrap();
    a.handle.dial(c.addr.clone()).await.unwrap();
    b.handle.dial(c.addr.clone()).await.unwrap();

    // Publishing reaches the peers a knows to be subscribed.
    let mut subscribed = Vec::new();
    a.wait_for("b and c subscribe", |e| {
        if let NetEvent::PeerSubscribed {
            peer,
            topic: Topic::Checkpoints,
        } = e
        {
            subscribed.push(peer);
        }
        (subscribed.contains(&b.peer) && subscribed.contains(&c.peer)).then_some(())
    })
    .await;

    let msg = cosig(5);
    assert_eq!(
        a.handle.publish(Topic::Blocks, &msg).await,
        Err(NetError::WrongTopic(Topic::Blocks))
    );
    a.handle.publish(Topic::Checkpoints, &msg).await.unwrap();
    for n in [&mut b, &mut c] {
        let (id, source, got) = n
            .wait_for("gossip", |e| match e {
                NetEvent::Gossip {
                    msg_id,
                    source,
                    author,
                    topic,
                    msg,
                } => {
                    assert_eq!(author, Some(a.peer));
                    assert_eq!(topic, Topic::Checkpoints);
                    Some((msg_id, source, msg))
                }
                _ => None,
            })
            .await;
        assert_eq!(got, msg);
        n.handle
            .report_validation(id, source, MessageAcceptance::Accept)
            .await
            .unwrap();
    }
    // Content-addressed ids: the same message again is a duplicate.
    assert_eq!(
        a.handle.publish(Topic::Checkpoints, &msg).await,
        Err(NetError::DuplicateGossip)
    );
}

/// Waits until `peer` is in `node`'s mesh for `topic`. Mesh changes raise no event, so this
/// polls, every 20 ms, bounded.
async fn wait_mesh(node: &Node, topic: Topic, peer: PeerId) {
    bounded("mesh", async {
        while !node
            .handle
            .gossip_mesh_peers(topic)
            .await
            .unwrap()
            .contains(&peer)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_forwarded_only_after_the_node_accepts_it() {
    init_tracing();
    // A line: a - b - c. Whatever c gets from a went through b's validation.
    let a = node(41).await;
    let mut b = node(42).await;
    let mut c = node(43).await;
    a.handle.dial(b.addr.clone()).await.unwrap();
    b.handle.dial(c.addr.clone()).await.unwrap();
    wait_mesh(&b, Topic::Checkpoints, c.peer).await;
    wait_mesh(&b, Topic::Checkpoints, a.peer).await;
    wait_mesh(&a, Topic::Checkpoints, b.peer).await;

    let b_validates = async |b: &mut Node, acceptance: MessageAcceptance| {
        let (id, source, msg) = b
            .wait_for("b gets gossip", |e| match e {
                NetEvent::Gossip {
                    msg_id, source, msg, ..
                } => Some((msg_id, source, msg)),
                _ => None,
            })
            .await;
        b.handle.report_validation(id, source, acceptance).await.unwrap();
        msg
    };

    a.handle.publish(Topic::Checkpoints, &cosig(1)).await.unwrap();
    assert_eq!(b_validates(&mut b, MessageAcceptance::Accept).await, cosig(1));
    a.handle.publish(Topic::Checkpoints, &cosig(2)).await.unwrap();
    assert_eq!(b_validates(&mut b, MessageAcceptance::Reject).await, cosig(2));
    a.handle.publish(Topic::Checkpoints, &cosig(3)).await.unwrap();
    assert_eq!(b_validates(&mut b, MessageAcceptance::Accept).await, cosig(3));

    // c gets 1 and 3, in order, relayed by b, never the rejected 2.
    for want in [cosig(1), cosig(3)] {
        let (source, author, msg) = c
            .wait_for("c gets gossip", |e| match e {
                NetEvent::Gossip {
                    source, author, msg, ..
                } => Some((source, author, msg)),
                _ => None,
            })
            .await;
        assert_eq!((source, author, msg), (b.peer, Some(a.peer), want));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_block_is_rejected_and_its_sender_cut_off() {
    init_tracing();
    let sequencer = Keypair::from_seed([99; 32]);
    // rogue - b - c
    let mut rogue = node(51).await;
    let mut b = node(52).await;
    let mut c = node(53).await;
    rogue.handle.dial(b.addr.clone()).await.unwrap();
    b.handle.dial(c.addr.clone()).await.unwrap();
    rogue
        .wait_for("b subscribes", |e| {
            matches!(e, NetEvent::PeerSubscribed { peer, topic: Topic::Blocks } if peer == b.peer)
                .then_some(())
        })
        .await;
    b.wait_for("c subscribes", |e| {
        matches!(e, NetEvent::PeerSubscribed { peer, topic: Topic::Blocks } if peer == c.peer).then_some(())
    })
    .await;

    rogue
        .handle
        .publish(Topic::Blocks, &GossipMsg::Block(block(1, &sequencer, false)))
        .await
        .unwrap();

    // b's node logic: verify the sequencer's signature; a bad one is provably invalid.
    let (id, source) = b
        .wait_for("b gets the block", |e| match e {
            NetEvent::Gossip {
                msg_id,
                source,
                msg: GossipMsg::Block(blk),
                ..
            } => {
                assert!(blk.header.verify(&sequencer.public(), &blk.signature).is_err());
                Some((msg_id, source))
            }
            _ => None,
        })
        .await;
    assert_eq!(source, rogue.peer);
    b.handle
        .report_validation(id, source, MessageAcceptance::Reject)
        .await
        .unwrap();
    b.handle.ban(source).await.unwrap();

    rogue.wait_disconnected(b.peer).await;
    b.wait_disconnected(rogue.peer).await;

    // The rogue cannot come back.
    match bounded("rogue redials", rogue.handle.dial(b.addr.clone())).await {
        Ok(_) => rogue.wait_disconnected(b.peer).await,
        Err(e) => assert!(e.is_retryable(), "{e}"),
    }
    assert!(!b.handle.connected_peers().await.unwrap().contains(&rogue.peer));

    // c never saw the bad block: the first block it gets is b's valid one.
    let good = block(1, &sequencer, true);
    b.handle
        .publish(Topic::Blocks, &GossipMsg::Block(good.clone()))
        .await
        .unwrap();
    let first = c
        .wait_for("c gets a block", |e| match e {
            NetEvent::Gossip { msg, .. } => Some(msg),
            _ => None,
        })
        .await;
    assert_eq!(first, GossipMsg::Block(good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_cut_off_only_their_sender() {
    init_tracing();
    let b = node(61).await;
    let honest = node(62).await;
    let (_b_handle, b_peer, b_addr, mut b_events) = b.serve();
    honest.handle.dial(b_addr.clone()).await.unwrap();
    let mut served = 0u64;
    let mut honest_asks = async |honest: &Node| {
        served += 1;
        let res = bounded("honest request", honest.handle.request(b_peer, query(served))).await;
        assert_eq!(res, Ok(answer(&query(served))));
    };
    honest_asks(&honest).await;

    let mut raw = raw_peer();
    let raw_id = *raw.local_peer_id();

    // 1. A frame whose body is not a request: an error response, then a disconnect.
    raw_connect(&mut raw, b_addr.clone()).await;
    let reply = raw_request_until_closed(&mut raw, b_peer, vec![0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    let reply = reply.expect("an error response");
    let (_, body) = parse_frame(&reply, LedgerResponse::BYTES_MAX).unwrap().unwrap();
    match LedgerResponse::from_bytes(body).unwrap() {
        LedgerResponse::Error { text } => assert!(text.starts_with(REFUSED_MALFORMED), "{text}"),
        other => panic!("unexpected {other:?}"),
    }
    let what = wait_on(&mut b_events, "misbehaviour 1", |e| match e {
        NetEvent::Misbehaviour { peer, what } if peer == raw_id => Some(what),
        _ => None,
    })
    .await;
    assert!(
        matches!(what, Misbehaviour::BadRequest(FrameViolation::Malformed(_))),
        "{what:?}"
    );
    honest_asks(&honest).await;

    // 2. A length prefix far over the limit, with junk after it: refused from the prefix alone.
    raw_connect(&mut raw, b_addr.clone()).await;
    let mut oversized = u32::MAX.to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0x55; 4096]);
    let reply = raw_request_until_closed(&mut raw, b_peer, oversized).await;
    if let Ok(reply) = reply {
        let (_, body) = parse_frame(&reply, LedgerResponse::BYTES_MAX).unwrap().unwrap();
        assert!(matches!(
            LedgerResponse::from_bytes(body).unwrap(),
            LedgerResponse::Error { .. }
        ));
    }
    let what = wait_on(&mut b_events, "misbehaviour 2", |e| match e {
        NetEvent::Misbehaviour { peer, what } if peer == raw_id => Some(what),
        _ => None,
    })
    .await;
    assert!(
        matches!(what, Misbehaviour::BadRequest(FrameViolation::TooLarge { len, .. }) if len == u32::MAX as usize),
        "{what:?}"
    );

    // 3. A frame that stops short of its announced length.
    raw_connect(&mut raw, b_addr.clone()).await;
    let _ = raw_request_until_closed(&mut raw, b_peer, vec![0, 0, 1, 0, 1, 2, 3]).await;
    let what = wait_on(&mut b_events, "misbehaviour 3", |e| match e {
        NetEvent::Misbehaviour { peer, what } if peer == raw_id => Some(what),
        _ => None,
    })
    .await;
    assert!(
        matches!(what, Misbehaviour::BadRequest(FrameViolation::Truncated { .. })),
        "{what:?}"
    );

    // The honest peer was served throughout and is still connected.
    honest_asks(&honest).await;
    assert!(honest.handle.connected_peers().await.unwrap().contains(&b_peer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_banned_for_a_bad_frame_still_reads_why_and_stays_out() {
    init_tracing();
    let b = node(66).await;
    let (b_handle, b_peer, b_addr, mut b_events) = b.serve();
    let mut raw = raw_peer();
    let raw_id = *raw.local_peer_id();
    raw_connect(&mut raw, b_addr.clone()).await;

    // The node bans the peer as soon as it hears of the violation, as a paychan node does.
    let banner = tokio::spawn(async move {
        let what = wait_on(&mut b_events, "misbehaviour", |e| match e {
            NetEvent::Misbehaviour { peer, what } if peer == raw_id => Some(what),
            _ => None,
        })
        .await;
        b_handle.ban(raw_id).await.unwrap();
        (what, b_handle)
    });
    // The ban does not cut off the error response: the peer still learns why.
    let reply = raw_request_until_closed(&mut raw, b_peer, vec![0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .expect("an error response despite the ban");
    let (_, body) = parse_frame(&reply, LedgerResponse::BYTES_MAX).unwrap().unwrap();
    match LedgerResponse::from_bytes(body).unwrap() {
        LedgerResponse::Error { text } => assert!(text.starts_with(REFUSED_MALFORMED), "{text}"),
        other => panic!("unexpected {other:?}"),
    }
    let (what, b_handle) = bounded("ban", banner).await.unwrap();
    assert!(
        matches!(what, Misbehaviour::BadRequest(FrameViolation::Malformed(_))),
        "{what:?}"
    );

    // The ban holds once the connection has closed: a redial is refused.
    raw.dial(b_addr).unwrap();
    let refused = bounded("redial", async {
        let mut established = false;
        loop {
            match raw.select_next_some().await {
                SwarmEvent::OutgoingConnectionError { .. } => return true,
                SwarmEvent::ConnectionEstablished { .. } => established = true,
                SwarmEvent::ConnectionClosed { .. } if established => return true,
                _ => {}
            }
        }
    })
    .await;
    assert!(refused);
    assert!(!b_handle.connected_peers().await.unwrap().contains(&raw_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_rate_limit_is_refused_for_that_peer_only() {
    init_tracing();
    let limits = PeerLimits {
        ledger_requests_per_s: 10,
        ledger_request_burst: 20,
        ledger_requests_in_flight_max: 32,
        ledger_refusals_max: 30,
        ..PeerLimits::default()
    };
    let mut config = test_config();
    config.limits = limits;
    let b = node_with(71, config).await;
    let (_b_handle, b_peer, b_addr, mut b_events) = b.serve();
    let mut flooder = node(72).await;
    let honest = node(73).await;
    flooder.handle.dial(b_addr.clone()).await.unwrap();
    honest.handle.dial(b_addr.clone()).await.unwrap();

    // The honest peer asks steadily while the flood goes on.
    let honest_handle = honest.handle.clone();
    let honest_task = tokio::spawn(async move {
        for n in 0..15 {
            let res = honest_handle.request(b_peer, query(n)).await;
            assert_eq!(res, Ok(answer(&query(n))), "honest request {n}");
        }
    });

    let started = Instant::now();
    let (mut ok, mut limited) = (0u32, 0u32);
    let mut ended_by = None;
    bounded("flood", async {
        for n in 0..500 {
            match flooder.handle.request(b_peer, query(n)).await {
                Ok(LedgerResponse::Error { text }) if text == REFUSED_RATE_LIMITED => limited += 1,
                Ok(res) => {
                    assert_eq!(res, answer(&query(n)));
                    ok += 1
                }
                Err(e) => {
                    ended_by = Some(e);
                    break;
                }
            }
            if limited > limits.ledger_refusals_max {
                break;
            }
        }
    })
    .await;
    let elapsed_s = started.elapsed().as_secs_f64();
    assert!(ok >= limits.ledger_request_burst, "ok {ok}");
    let allowed =
        f64::from(limits.ledger_request_burst) + f64::from(limits.ledger_requests_per_s) * elapsed_s + 1.0;
    assert!(
        f64::from(ok) <= allowed,
        "ok {ok} > {allowed} after {elapsed_s} s"
    );
    assert!(limited >= 1);
    tracing::info!(ok, limited, ?ended_by, elapsed_s, "flood outcome");

    // Ignoring the refusals gets the flooder cut off.
    let what = wait_on(&mut b_events, "flooder cut off", |e| match e {
        NetEvent::Misbehaviour { peer, what } if peer == flooder.peer => Some(what),
        _ => None,
    })
    .await;
    assert_eq!(what, Misbehaviour::IgnoredRefusals);
    flooder.wait_disconnected(b_peer).await;

    bounded("honest requests", honest_task).await.unwrap();
    assert!(honest.handle.connected_peers().await.unwrap().contains(&b_peer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_answered_busy() {
    init_tracing();
    let mut config = test_config();
    config.limits.ledger_requests_in_flight_max = 4;
    let mut b = node_with(81, config).await;
    let a = node(82).await;
    a.handle.dial(b.addr.clone()).await.unwrap();

    let (results_tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..6 {
        let (h, tx, peer) = (a.handle.clone(), results_tx.clone(), b.peer);
        tokio::spawn(async move {
            let _ = tx.send((n, h.request(peer, query(n)).await));
        });
    }
    // b's node holds four requests unanswered.
    let mut held = Vec::new();
    while held.len() < 4 {
        let (request, responder) = b
            .wait_for("held request", |e| match e {
                NetEvent::LedgerRequest {
                    request, responder, ..
                } => Some((request, responder)),
                _ => None,
            })
            .await;
        held.push((request, responder));
    }
    // The other two are refused at once.
    for _ in 0..2 {
        let (_, res) = bounded("busy", results.recv()).await.unwrap();
        assert_eq!(
            res,
            Ok(LedgerResponse::Error {
                text: REFUSED_BUSY.into()
            })
        );
    }
    for (request, responder) in held {
        b.handle.respond(responder, answer(&request)).await.unwrap();
    }
    for _ in 0..4 {
        let (n, res) = bounded("answered", results.recv()).await.unwrap();
        assert_eq!(res, Ok(answer(&query(n))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_disconnects_and_refuses_reconnection() {
    init_tracing();
    let mut a = node(91).await;
    let mut b = node(92).await;
    b.handle.dial(a.addr.clone()).await.unwrap();
    a.wait_connected(b.peer).await;

    a.handle.ban(b.peer).await.unwrap();
    a.wait_disconnected(b.peer).await;
    b.wait_disconnected(a.peer).await;

    // b tries again: a refuses the connection once b's identity is known.
    match bounded("b redials", b.handle.dial(a.addr.clone())).await {
        Ok(_) => b.wait_disconnected(a.peer).await,
        Err(e) => assert!(matches!(e, NetError::Dial(_)), "{e}"),
    }
    // a refuses to dial b, and never reported b as connected again.
    assert!(matches!(
        a.handle.dial(b.addr.clone()).await,
        Err(NetError::Dial(_))
    ));
    assert!(a.handle.request(b.peer, query(1)).await.is_err());
    assert!(!a.handle.connected_peers().await.unwrap().contains(&b.peer));
    while let Ok(event) = a.events.try_recv() {
        assert!(
            !matches!(event, NetEvent::PeerConnected { peer, .. } if peer == b.peer),
            "banned peer connected"
        );
    }

    // Lifting the ban lets it back in.
    a.handle.unban(b.peer).await.unwrap();
    assert_eq!(
        bounded("dial after unban", a.handle.dial(b.addr.clone())).await,
        Ok(b.peer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_stream_carries_frames_both_ways() {
    init_tracing();
    let a = node(101).await;
    let b = node(102).await;
    a.handle.dial(b.addr.clone()).await.unwrap();

    let mut incoming = b.handle.accept_channel_streams().unwrap();
    assert_eq!(
        b.handle.accept_channel_streams().err(),
        Some(NetError::AlreadyAccepting)
    );

    let envelope = |epoch: u64, text: &str| Envelope {
        epoch,
        msg: ChannelMsg::Error {
            channel_id: None,
            code: ErrorCode::Other,
            text: text.into(),
        },
    };
    let server = tokio::spawn(async move {
        let (peer, mut stream) = incoming.next().await.unwrap();
        let mut out = Vec::new();
        for _ in 0..3 {
            let env = read_envelope(&mut stream).await.expect("an envelope");
            // Echo each frame back with the epoch + 1.
            write_frame(
                &Envelope {
                    epoch: env.epoch + 1,
                    ..env
                }
                .to_bytes(),
                &mut out,
            );
        }
        stream.write_all(&out).await.unwrap();
        stream.flush().await.unwrap();
        stream.close().await.unwrap();
        peer
    });

    let mut stream = bounded("open", a.handle.open_channel_stream(b.peer))
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in 0..3u64 {
        write_frame(&envelope(i * 10, &format!("frame {i}")).to_bytes(), &mut out);
    }
    stream.write_all(&out).await.unwrap();
    stream.flush().await.unwrap();
    for i in 0..3u64 {
        let got = bounded("echo", read_envelope(&mut stream))
            .await
            .expect("an envelope");
        assert_eq!(got, envelope(i * 10 + 1, &format!("frame {i}")));
    }
    assert_eq!(bounded("server", server).await.unwrap(), a.peer);
}

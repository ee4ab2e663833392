//! Attacks on the network layer, in one process on 127.0.0.1 ephemeral ports: block requests
//! that would amplify into megabytes, peers with free ids taking every connection slot, and
//! gossip floods. Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::*;
use paychan_net::{NetConfig, NetEvent, NetHandle, PeerId, SlotLimits, Topic, REFUSED_BUSY};
use paychan_protocol::ledger::{Block, BlockHeader, Cosignature};
use paychan_protocol::wire::{GossipMsg, LedgerRequest, LedgerResponse};
use paychan_protocol::{Hash32, Keypair, PublicKey, Signature, Wire};
use tokio::sync::mpsc;

fn block(height: u64, sequencer: &Keypair) -> Block {
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
    Block {
        signature: header.sign(sequencer),
        header,
        txs: vec![],
    }
}

fn cosig(n: u32) -> GossipMsg {
    let b = n.to_be_bytes();
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&b);
    GossipMsg::Cosignature {
        block_hash: Hash32(hash),
        cosignature: Cosignature {
            witness: PublicKey([3; 32]),
            timestamp_s: u64::from(n),
            signature: Signature([4; 64]),
        },
    }
}

/// Limits loose enough that only the byte budgets can refuse a steady asker.
fn unthrottled(mut config: NetConfig) -> NetConfig {
    config.limits.ledger_requests_per_s = 100_000;
    config.limits.ledger_request_burst = 100_000;
    config.limits.ledger_refusals_max = 1_000_000;
    config
}

/// A server whose node answers every `GetBlocks` with 64 blocks (about 16 KiB).
async fn block_server(config: NetConfig) -> (NetHandle, PeerId, libp2p::Multiaddr) {
    let Node {
        handle,
        mut events,
        peer,
        addr,
        ..
    } = node_with(101, config).await;
    let key = Keypair::from_seed([9; 32]);
    let blocks: Vec<Block> = (1..=64).map(|h| block(h, &key)).collect();
    let h = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetEvent::LedgerRequest { responder, .. } = event {
                let _ = h.respond(responder, LedgerResponse::Blocks(blocks.clone())).await;
            }
        }
    });
    (handle, peer, addr)
}

/// Asks `server` for blocks one request after another for `for_how_long`; returns the bytes of
/// blocks received and the number of busy refusals.
async fn hammer(client: NetHandle, server: PeerId, for_how_long: Duration) -> (u64, u64) {
    let deadline = Instant::now() + for_how_long;
    let (mut bytes, mut busy) = (0u64, 0u64);
    while Instant::now() < deadline {
        match client
            .request(server, LedgerRequest::GetBlocks { from: 1, limit: 64 })
            .await
        {
            Ok(r @ LedgerResponse::Blocks(_)) => bytes += r.to_bytes().len() as u64,
            Ok(LedgerResponse::Error { text }) if text == REFUSED_BUSY => busy += 1,
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    (bytes, busy)
}

/// 14.6: a peer that asks for blocks as fast as it can is served at most its byte budget
/// (burst plus rate, plus one response of overdraft), and is told "busy" for the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_requests_are_served_within_the_per_peer_byte_budget() {
    init_tracing();
    let mut config = unthrottled(test_config());
    config.limits.served_bytes_per_s = 20_000;
    config.limits.served_bytes_burst = 40_000;
    let (_server, server_peer, server_addr) = block_server(config).await;
    let client = node(102).await;
    client.handle.dial(server_addr).await.unwrap();
    let started = Instant::now();
    let (bytes, busy) = hammer(client.handle.clone(), server_peer, Duration::from_secs(2)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let one_response =
        LedgerResponse::Blocks((1..=64).map(|h| block(h, &Keypair::from_seed([9; 32]))).collect())
            .to_bytes()
            .len() as f64;
    let bound = 40_000.0 + 20_000.0 * elapsed + one_response;
    assert!(bytes > 0, "nothing was served");
    assert!(
        (bytes as f64) <= bound,
        "{bytes} bytes served in {elapsed:.2} s, the budget allows {bound:.0}"
    );
    assert!(busy > 0, "the asker was never told to wait");
}

/// 14.6: many peers together are served at most the node's total byte budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_requests_from_many_peers_are_served_within_the_total_byte_budget() {
    init_tracing();
    let mut config = unthrottled(test_config());
    config.served_bytes_total_per_s = 30_000;
    config.served_bytes_total_burst = 60_000;
    let (_server, server_peer, server_addr) = block_server(config).await;
    let mut clients = Vec::new();
    for seed in 103..107 {
        let c = node(seed).await;
        c.handle.dial(server_addr.clone()).await.unwrap();
        clients.push(c);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in &clients {
        tasks.spawn(hammer(c.handle.clone(), server_peer, Duration::from_secs(2)));
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.unwrap().0;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let one_response = 17_000.0;
    // Each asker may overdraw by one response.
    let bound = 60_000.0 + 30_000.0 * elapsed + clients.len() as f64 * one_response;
    assert!(total > 0);
    assert!(
        (total as f64) <= bound,
        "{total} bytes served in {elapsed:.2} s, the total budget allows {bound:.0}"
    );
}

/// Whether a dial from `from` to `addr` ends without a lasting connection to `server`.
async fn refused(from: &mut Node, addr: libp2p::Multiaddr, server: PeerId) -> bool {
    match bounded("dial resolves", from.handle.dial(addr)).await {
        Err(_) => true,
        Ok(_) => {
            // Established on our side; refused means the server drops it right away.
            tokio::time::timeout(Duration::from_secs(3), from.wait_disconnected(server))
                .await
                .is_ok()
        }
    }
}

async fn wait_peers(handle: &NetHandle, want: &[PeerId]) {
    bounded("the server lists its peers", async {
        loop {
            let peers = handle.connected_peers().await.unwrap();
            if want.iter().all(|p| peers.contains(p)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// 14.9: peers with free ids take every slot open to anyone, and one more is refused; a
/// reserved peer (a genesis witness) still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_peers_get_in_when_every_open_slot_is_taken() {
    init_tracing();
    let reserved = node(113).await;
    let mut config = test_config();
    config.slots = SlotLimits {
        inbound_max: 3,
        inbound_reserved: 1,
        per_ip_max: 100,
        loopback_exempt: true,
    };
    config.reserved_peers = vec![reserved.peer];
    let server = node_with(110, config).await;
    let (server_handle, server_peer, server_addr, _events) = server.serve();

    let a = node(111).await;
    let b = node(112).await;
    a.handle.dial(server_addr.clone()).await.unwrap();
    b.handle.dial(server_addr.clone()).await.unwrap();
    wait_peers(&server_handle, &[a.peer, b.peer]).await;

    let mut c = node(114).await;
    assert!(
        refused(&mut c, server_addr.clone(), server_peer).await,
        "a third free id got a slot"
    );
    reserved.handle.dial(server_addr.clone()).await.unwrap();
    wait_peers(&server_handle, &[a.peer, b.peer, reserved.peer]).await;
    assert!(!server_handle.connected_peers().await.unwrap().contains(&c.peer));
}

/// 14.9: with loopback not exempt, one IP gets `per_ip_max` connections and no more; reserved
/// peers are not counted against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_capped() {
    init_tracing();
    let reserved = node(124).await;
    let mut config = test_config();
    config.slots = SlotLimits {
        inbound_max: 64,
        inbound_reserved: 8,
        per_ip_max: 2,
        loopback_exempt: false,
    };
    config.reserved_peers = vec![reserved.peer];
    let server = node_with(120, config).await;
    let (server_handle, server_peer, server_addr, _events) = server.serve();
    let a = node(121).await;
    let b = node(122).await;
    a.handle.dial(server_addr.clone()).await.unwrap();
    b.handle.dial(server_addr.clone()).await.unwrap();
    wait_peers(&server_handle, &[a.peer, b.peer]).await;
    let mut c = node(123).await;
    assert!(
        refused(&mut c, server_addr.clone(), server_peer).await,
        "a third connection from one IP"
    );
    reserved.handle.dial(server_addr.clone()).await.unwrap();
    wait_peers(&server_handle, &[a.peer, b.peer, reserved.peer]).await;
}

async fn wait_subscribed(node: &mut Node, peer: PeerId, topic: Topic) {
    node.wait_for("subscription", |e| {
        matches!(e, NetEvent::PeerSubscribed { peer: p, topic: t } if p == peer && t == topic).then_some(())
    })
    .await
}

/// Counts the gossip events that reach `rx` until it has been quiet for `quiet`.
async fn count_gossip(rx: &mut mpsc::Receiver<NetEvent>, author: PeerId, quiet: Duration) -> (u64, bool) {
    let (mut from_author, mut block) = (0, false);
    while let Ok(Some(e)) = tokio::time::timeout(quiet, rx.recv()).await {
        if let NetEvent::Gossip { author: a, msg, .. } = e {
            if a == Some(author) {
                from_author += 1;
            }
            if matches!(msg, GossipMsg::Block(_)) {
                block = true;
            }
        }
    }
    (from_author, block)
}

/// 14.10: a peer that floods gossip gets at most its rate through to the node; the rest is
/// ignored at the door and charged to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_flood_is_cut_to_the_per_peer_rate() {
    init_tracing();
    let mut config = test_config();
    config.limits.gossip_msgs_per_s = 5;
    config.limits.gossip_msg_burst = 10;
    let mut server = node_with(130, config).await;
    let mut flooder = node(131).await;
    flooder.handle.dial(server.addr.clone()).await.unwrap();
    wait_subscribed(&mut flooder, server.peer, Topic::Checkpoints).await;
    server.wait_connected(flooder.peer).await;
    let started = Instant::now();
    for n in 0..200 {
        flooder
            .handle
            .publish(Topic::Checkpoints, &cosig(n))
            .await
            .unwrap();
    }
    let (through, _) = count_gossip(&mut server.events, flooder.peer, Duration::from_secs(1)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let bound = 10.0 + 5.0 * elapsed;
    assert!(through > 0);
    assert!(
        (through as f64) <= bound,
        "{through} flooded messages reached the node in {elapsed:.2} s; the rate allows {bound:.0}"
    );
}

/// 14.10: while a flood keeps the node's event queue full, a block from the sequencer (a
/// reserved peer) still reaches the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_from_the_sequencer_gets_through_a_full_event_queue() {
    init_tracing();
    let mut sequencer = node(141).await;
    let mut config = test_config();
    config.events_capacity = 16;
    config.limits.gossip_msgs_per_s = 100_000;
    config.limits.gossip_msg_burst = 100_000;
    config.reserved_peers = vec![sequencer.peer];
    let mut server = node_with(140, config).await;
    let mut flooder = node(142).await;
    flooder.handle.dial(server.addr.clone()).await.unwrap();
    sequencer.handle.dial(server.addr.clone()).await.unwrap();
    wait_subscribed(&mut flooder, server.peer, Topic::Checkpoints).await;
    wait_subscribed(&mut sequencer, server.peer, Topic::Blocks).await;
    // The node does not read its events while the flood fills the queue.
    for n in 0..100 {
        flooder
            .handle
            .publish(Topic::Checkpoints, &cosig(n))
            .await
            .unwrap();
    }
    let registry = server.handle.metrics_registry();
    bounded("gossip shed for lack of room", async {
        loop {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry.lock().unwrap()).unwrap();
            if text.contains("paychan_net_gossip_shed_total{kind=\"crowded\"}") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let key = Keypair::from_seed([141; 32]);
    sequencer
        .handle
        .publish(Topic::Blocks, &GossipMsg::Block(block(1, &key)))
        .await
        .unwrap();
    let (_, block_seen) = count_gossip(&mut server.events, flooder.peer, Duration::from_secs(1)).await;
    assert!(block_seen, "the sequencer's block was crowded out by the flood");
}

/// Kademlia lookups answered by `kad_liar` with `bad` addresses (one fake peer each) and one
/// fake peer at `fair`; the node under test bootstraps from the liar with `scope`. Waits until
/// the node has dialled `fair` (its listener accepts: the answers were read and acted on) and
/// refused `bad.len()` dials, then checks that `trap` (where some of the bad addresses lead if
/// dialled) saw no connection. Returns the refusal count.
async fn lookup_answers(
    seed: u8,
    scope: Option<paychan_net::DialScope>,
    bad: Vec<String>,
    fair: &tokio::net::TcpListener,
    fair_addr: String,
    trap: &tokio::net::TcpListener,
) -> u64 {
    let n_bad = bad.len() as u64;
    let fakes: Vec<(PeerId, libp2p::Multiaddr)> = bad
        .iter()
        .chain(std::iter::once(&fair_addr))
        .map(|a| (PeerId::random(), a.parse().unwrap()))
        .collect();
    let (liar, _liar_task) = kad_liar(fakes).await;
    let mut config = test_config();
    config.bootstrap = vec![liar];
    config.dial_scope = scope;
    let node = node_with(seed, config).await;
    bounded(
        "the node dials the address in its scope that a lookup named",
        fair.accept(),
    )
    .await
    .unwrap();
    bounded("every address outside the scope refused", async {
        while node.handle.dials_refused() < n_bad {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // The bad dials were refused synchronously, before the fair one was even tried or right
    // beside it; a socket opened to the trap would be in its backlog by now.
    let caught = tokio::time::timeout(Duration::from_millis(500), trap.accept()).await;
    assert!(
        caught.is_err(),
        "the node dialled an address outside its scope: {caught:?}"
    );
    node.handle.dials_refused()
}

/// Issue 8: a peer that answers Kademlia lookups with addresses anywhere (other hosts, an
/// unspecified address that leads back to this host, UDP, port 0) does not make a node that
/// listens on loopback dial them: every one is refused before a socket opens. A loopback
/// address it names is dialled, so the answers do reach the dialler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_answers_do_not_point_a_loopback_node_elsewhere() {
    init_tracing();
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fair = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (trap_port, fair_port) = (
        trap.local_addr().unwrap().port(),
        fair.local_addr().unwrap().port(),
    );
    let bad = vec![
        // Linux connects an unspecified address to the local host. TCP itself refuses
        // 0.0.0.0, not its IPv4-mapped IPv6 spelling: dialled, that one reaches the trap.
        format!("/ip4/0.0.0.0/tcp/{trap_port}"),
        format!("/ip6/::ffff:0.0.0.0/tcp/{trap_port}"),
        "/ip4/10.255.255.1/tcp/22".to_string(),
        "/ip4/192.0.2.1/tcp/80".to_string(),
        "/ip4/8.8.8.8/tcp/53".to_string(),
        "/ip4/255.255.255.255/tcp/7000".to_string(),
        "/ip6/2001:db8::1/tcp/443".to_string(),
    ];
    let fair_addr = format!("/ip4/127.0.0.1/tcp/{fair_port}");
    let refused = lookup_answers(150, None, bad, &fair, fair_addr, &trap).await;
    assert!(refused >= 7);
}

/// Issue 8, the other way round: a node whose scope excludes loopback still dials the
/// loopback bootstrap peer it was configured with, but not the loopback address a lookup
/// answer names (the trap's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_peer_is_dialled_outside_the_scope_but_nothing_a_lookup_names() {
    init_tracing();
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    // The fair peer is dialled with the scope `Any`; here it must not be: nothing may accept.
    let never = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fakes = vec![
        (
            PeerId::random(),
            format!("/ip4/127.0.0.1/tcp/{trap_port}").parse().unwrap(),
        ),
        (
            PeerId::random(),
            format!("/ip6/::ffff:127.0.0.1/tcp/{trap_port}").parse().unwrap(),
        ),
    ];
    let (liar, _liar_task) = kad_liar(fakes).await;
    let mut config = test_config();
    config.bootstrap = vec![liar.clone()];
    config.dial_scope = Some(paychan_net::DialScope::Remote);
    let node = node_with(151, config).await;
    // The configured peer is dialled (bootstrap) although it is on loopback.
    let peer = match liar.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => unreachable!(),
    };
    bounded("the node connects to its configured loopback peer", async {
        while !node.handle.connected_peers().await.unwrap().contains(&peer) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    bounded("both loopback addresses a lookup named refused", async {
        while node.handle.dials_refused() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let caught = tokio::time::timeout(Duration::from_millis(500), trap.accept()).await;
    assert!(
        caught.is_err(),
        "a lookup answer made the node dial loopback: {caught:?}"
    );
    drop(never);
}

//! An in-process harness: nodes on 127.0.0.1 ephemeral ports, a server task that answers
//! ledger requests, and a raw libp2p peer that writes arbitrary bytes on `/paychan/ledger/1`
//! (the workspace's testkit).

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use paychan_net::{Net, NetConfig, NetEvent, NetHandle};
use paychan_protocol::wire::{LedgerRequest, LedgerResponse};
use paychan_protocol::Hash32;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bound on every wait in the tests.
pub const STEP: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Runs a test body under a timeout.
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

#[derive(Debug)]
pub struct Node {
    pub handle: NetHandle,
    pub events: mpsc::Receiver<NetEvent>,
    pub task: JoinHandle<()>,
    pub peer: PeerId,
    /// Listen address with `/p2p/<peer>`.
    pub addr: Multiaddr,
}

pub fn test_config() -> NetConfig {
    let mut config = NetConfig::new("/ip4/127.0.0.1/tcp/0".parse().unwrap());
    config.gossip_heartbeat = Duration::from_millis(100);
    config.request_timeout = Duration::from_secs(5);
    config
}

pub async fn node(seed: u8) -> Node {
    node_with(seed, test_config()).await
}

pub async fn node_with(seed: u8, config: NetConfig) -> Node {
    let (handle, events, task) = Net::new([seed; 32], config).await.expect("network starts");
    let peer = handle.local_peer_id();
    let addrs = handle.listen_addrs().await.unwrap();
    let addr = addrs[0].clone().with(Protocol::P2p(peer));
    Node {
        handle,
        events,
        task,
        peer,
        addr,
    }
}

impl Node {
    /// Waits for the first event `f` maps to `Some`, dropping the others.
    pub async fn wait_for<T>(&mut self, what: &str, mut f: impl FnMut(NetEvent) -> Option<T>) -> T {
        bounded(what, async {
            loop {
                let event = self.events.recv().await.expect("event loop running");
                if let Some(v) = f(event) {
                    return v;
                }
            }
        })
        .await
    }

    pub async fn wait_connected(&mut self, peer: PeerId) {
        self.wait_for("peer connected", |e| match e {
            NetEvent::PeerConnected { peer: p, .. } if p == peer => Some(()),
            _ => None,
        })
        .await
    }

    pub async fn wait_disconnected(&mut self, peer: PeerId) {
        self.wait_for("peer disconnected", |e| match e {
            NetEvent::PeerDisconnected { peer: p } if p == peer => Some(()),
            _ => None,
        })
        .await
    }

    /// Spawns a task that answers every ledger request with [`answer`] and passes every other
    /// event on. Returns the node's handle and the other events.
    pub fn serve(self) -> (NetHandle, PeerId, Multiaddr, mpsc::UnboundedReceiver<NetEvent>) {
        let Node {
            handle,
            mut events,
            peer,
            addr,
            ..
        } = self;
        let (tx, rx) = mpsc::unbounded_channel();
        let h = handle.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::LedgerRequest {
                        request, responder, ..
                    } => {
                        let _ = h.respond(responder, answer(&request)).await;
                    }
                    other => {
                        let _ = tx.send(other);
                    }
                }
            }
        });
        (handle, peer, addr, rx)
    }
}

/// The server's deterministic answer: an inclusion "proof" echoing the request.
pub fn answer(request: &LedgerRequest) -> LedgerResponse {
    match request {
        LedgerRequest::GetInclusion { tx_id, size } => LedgerResponse::Inclusion {
            index: *size,
            size: *size,
            path: vec![*tx_id],
        },
        _ => LedgerResponse::Error {
            text: "unsupported in tests".into(),
        },
    }
}

pub fn query(n: u64) -> LedgerRequest {
    LedgerRequest::GetInclusion {
        tx_id: Hash32([n as u8; 32]),
        size: n,
    }
}

/// Waits for an event on an unbounded receiver (from [`Node::serve`]).
pub async fn wait_on<T>(
    rx: &mut mpsc::UnboundedReceiver<NetEvent>,
    what: &str,
    mut f: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    bounded(what, async {
        loop {
            let event = rx.recv().await.expect("server running");
            if let Some(v) = f(event) {
                return v;
            }
        }
    })
    .await
}

// ---- a raw peer that writes whatever bytes it is given on `/paychan/ledger/1` ----

// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use paychan_testkit::raw::{raw_connect, raw_request_until_closed, RawSwarm};

/// A raw peer whose requests fail after 5 s.
pub fn raw_peer() -> RawSwarm {
    paychan_testkit::raw::raw_peer(Duration::from_secs(5))
}

// ---- a Kademlia peer that answers lookups with whatever addresses it was given ----

/// The liar's behaviour: Kademlia, and connection limits that deny every dial of its own (kad
/// would otherwise bootstrap and dial the fakes itself, which the tests must not mistake for
/// the node's dials).
#[derive(libp2p::swarm::NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub struct Liar {
    no_dials: libp2p::connection_limits::Behaviour,
    kad: libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>,
}

pub type KadSwarm = Swarm<Liar>;

/// A peer that serves the paychan DHT and names `fakes` (peer, address) in every lookup answer,
/// whatever the addresses are. Its swarm runs on a task of its own; returns its `/p2p/` address.
pub async fn kad_liar(fakes: Vec<(PeerId, Multiaddr)>) -> (Multiaddr, JoinHandle<()>) {
    use futures::StreamExt;
    use libp2p::kad;
    use libp2p::swarm::SwarmEvent;

    let mut swarm: KadSwarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| {
            let local = key.public().to_peer_id();
            let mut config = kad::Config::new(StreamProtocol::new(paychan_net::KAD_PROTOCOL));
            // The liar only answers: no bootstrap of its own, which would dial the fakes.
            // Nor one when a peer enters its table (that happens only on inserts).
            config.set_periodic_bootstrap_interval(None);
            config.set_kbucket_inserts(kad::BucketInserts::Manual);
            Liar {
                no_dials: libp2p::connection_limits::Behaviour::new(
                    libp2p::connection_limits::ConnectionLimits::default().with_max_pending_outgoing(Some(0)),
                ),
                kad: kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), config),
            }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build();
    swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
    for (peer, addr) in fakes {
        swarm.behaviour_mut().kad.add_address(&peer, addr);
    }
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let addr = bounded("the liar listens", async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await;
    let addr = addr.with(Protocol::P2p(*swarm.local_peer_id()));
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (addr, task)
}

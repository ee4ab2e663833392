//! # paychan-net
//!
//! The libp2p layer of a paychan node: one event-loop task owns the swarm; the rest of the node
//! holds a cloneable [`NetHandle`] and reads [`NetEvent`]s (rust-libp2p's `file-sharing`
//! example shape).
//!
//! ## Layout
//! - [`Net::new`]: builds the swarm from the node's ed25519 seed, listens, spawns the loop.
//! - `behaviour`: the `#[derive(NetworkBehaviour)]` struct (block list, connection limits,
//!   identify, ping, Kademlia, gossipsub, `/paychan/ledger/1` request-response,
//!   `/paychan/channel/1` streams).
//! - `event_loop`: the task that owns the swarm; per-peer limits and misbehaviour handling.
//! - [`handle`]: [`NetHandle`], the commands it sends, [`LedgerResponder`].
//! - [`codec`]: the ledger codec (4-byte BE length + postcard, strict `Wire` decoding).
//! - [`identity`]: paychan `PublicKey` <-> libp2p `PeerId`.
//! - [`limits`]: every limit of this crate as a named constant.
//! - `rate`: the per-peer token bucket and byte budget.
//! - `slots`: inbound connection slots (a cap per IP, slots reserved for genesis peers).
//! - [`addrs`]: which addresses a peer may make us dial (identify, Kademlia, redials), and the
//!   transport wrapper that refuses every dial outside the dial scope before a socket opens.
//!
//! **Architecture invariant**: the event loop never waits on the node. Events go out with
//! `try_send`; when the node lags, gossip is ignored and requests are refused as busy, so pings,
//! gossip and other peers keep being served.
//!
//! **Architecture invariant**: a peer that sends bytes no honest peer would send (an oversized,
//! truncated or undecodable ledger frame, an undecodable gossip message, gossip on the wrong
//! topic) is disconnected and reported as [`NetEvent::Misbehaviour`]; whether to ban it is the
//! node's decision ([`NetHandle::ban`]). Nothing a peer sends panics the loop.

pub mod addrs;
mod behaviour;
pub mod codec;
mod event_loop;
pub mod handle;
pub mod identity;
pub mod limits;
pub mod rate;
mod slots;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use libp2p;
pub use libp2p::gossipsub::{MessageAcceptance, MessageId};
pub use libp2p::{Multiaddr, PeerId, Stream};
pub use libp2p_stream::IncomingStreams;
use paychan_protocol::wire::{GossipMsg, LedgerRequest, BLOCKS_TOPIC, CHECKPOINTS_TOPIC, DISPUTES_TOPIC};
use prometheus_client::registry::Registry;

pub use crate::addrs::DialScope;
pub use crate::codec::FrameViolation;
pub use crate::event_loop::Net;
pub use crate::handle::{LedgerResponder, NetHandle};
pub use crate::identity::{keypair_from_seed, peer_id_from_public_key, public_key_from_peer_id};
use crate::limits::*;
pub use crate::slots::{SlotDenied, SlotLimits};

/// Kademlia protocol id: a private DHT, so that paychan nodes never join (or answer for) the
/// public IPFS one.
pub const KAD_PROTOCOL: &str = "/paychan/kad/1";
/// Identify protocol version string: peers with another version are still served, but it shows
/// which protocol family a peer speaks.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/paychan/1";

/// Text of the error response to a request refused by the per-peer rate limit.
pub const REFUSED_RATE_LIMITED: &str = "rate limited";
/// Text of the error response to a request refused because the peer has too many requests in
/// flight, or the node is not keeping up.
pub const REFUSED_BUSY: &str = "busy";
/// Prefix of the error response to a frame that broke the codec's rules.
pub const REFUSED_MALFORMED: &str = "malformed request";

/// A gossipsub topic of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Blocks from the sequencer.
    Blocks,
    /// Checkpoints and witness cosignatures.
    Checkpoints,
    /// Dispute transactions.
    Disputes,
}

impl Topic {
    /// Every topic; a node subscribes to all of them.
    pub const ALL: [Topic; 3] = [Topic::Blocks, Topic::Checkpoints, Topic::Disputes];

    /// The topic name from `paychan_protocol::wire`.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Blocks => BLOCKS_TOPIC,
            Topic::Checkpoints => CHECKPOINTS_TOPIC,
            Topic::Disputes => DISPUTES_TOPIC,
        }
    }

    /// The only topic a message may travel on.
    pub fn of(msg: &GossipMsg) -> Topic {
        match msg {
            GossipMsg::Block(_) => Topic::Blocks,
            GossipMsg::Checkpoint(_) | GossipMsg::Cosignature { .. } | GossipMsg::SplitView(_) => {
                Topic::Checkpoints
            }
            GossipMsg::Dispute(_) => Topic::Disputes,
        }
    }

    pub(crate) fn ident(self) -> libp2p::gossipsub::IdentTopic {
        libp2p::gossipsub::IdentTopic::new(self.name())
    }

    pub(crate) fn from_hash(hash: &libp2p::gossipsub::TopicHash) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == hash.as_str())
    }
}

/// Per-peer limits on inbound ledger requests. Defaults are the constants in [`limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// Sustained requests per second (token-bucket refill).
    pub ledger_requests_per_s: u32,
    /// Burst of requests (token-bucket capacity).
    pub ledger_request_burst: u32,
    /// Requests handed to the node and not yet answered.
    pub ledger_requests_in_flight_max: u32,
    /// Refusals on one connection before the peer is disconnected.
    pub ledger_refusals_max: u32,
    /// Bytes of responses served per second, sustained (see [`rate::ByteBudget`]).
    pub served_bytes_per_s: u64,
    /// Bytes of responses served in a burst.
    pub served_bytes_burst: u64,
    /// Gossip messages not authored by a reserved peer, per second.
    pub gossip_msgs_per_s: u32,
    /// Burst of those.
    pub gossip_msg_burst: u32,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            ledger_requests_per_s: LEDGER_REQUESTS_PER_PEER_PER_S,
            ledger_request_burst: LEDGER_REQUEST_BURST_PER_PEER,
            ledger_requests_in_flight_max: LEDGER_REQUESTS_IN_FLIGHT_PER_PEER_MAX,
            ledger_refusals_max: LEDGER_REFUSALS_PER_CONNECTION_MAX,
            served_bytes_per_s: SERVED_BYTES_PER_PEER_PER_S,
            served_bytes_burst: SERVED_BYTES_BURST_PER_PEER,
            gossip_msgs_per_s: GOSSIP_MSGS_PER_PEER_PER_S,
            gossip_msg_burst: GOSSIP_MSG_BURST_PER_PEER,
        }
    }
}

/// How to run the network layer.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Address to listen on, e.g. `/ip4/0.0.0.0/tcp/7000` (tests: `/ip4/127.0.0.1/tcp/0`).
    pub listen: Multiaddr,
    /// Peers to dial and seed Kademlia with; each address must end in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Inbound ledger request limits per peer.
    pub limits: PeerLimits,
    /// Bytes of responses served to all peers together per second.
    pub served_bytes_total_per_s: u64,
    /// Bytes served to all peers together in a burst.
    pub served_bytes_total_burst: u64,
    /// Peers that matter to the ledger (the genesis sequencer and witnesses): they get the
    /// reserved inbound slots, are not counted against the per-IP cap, and the blocks and
    /// checkpoints they author keep a share of the event queue.
    pub reserved_peers: Vec<PeerId>,
    /// Inbound connection slots.
    pub slots: SlotLimits,
    /// What addresses peers may make us dial; `None`: from the listen address
    /// ([`DialScope::of_listen_addrs`]).
    pub dial_scope: Option<DialScope>,
    /// Time for one ledger request, either way.
    pub request_timeout: Duration,
    /// Gossipsub heartbeat; tests shorten it so that meshes form quickly.
    pub gossip_heartbeat: Duration,
    /// A connection with no stream open is closed after this long.
    pub idle_connection_timeout: Duration,
    /// Capacity of the event queue to the node.
    pub events_capacity: usize,
    /// Registry for libp2p's and this crate's metrics; a new one if `None`. The node's
    /// `/metrics` endpoint encodes it.
    pub registry: Option<Arc<Mutex<Registry>>>,
}

impl NetConfig {
    /// Defaults from [`limits`], listening on `listen`.
    pub fn new(listen: Multiaddr) -> Self {
        NetConfig {
            listen,
            bootstrap: Vec::new(),
            limits: PeerLimits::default(),
            served_bytes_total_per_s: SERVED_BYTES_TOTAL_PER_S,
            served_bytes_total_burst: SERVED_BYTES_BURST_TOTAL,
            reserved_peers: Vec::new(),
            slots: SlotLimits {
                inbound_max: CONNECTIONS_INBOUND_MAX,
                inbound_reserved: CONNECTIONS_INBOUND_RESERVED,
                per_ip_max: CONNECTIONS_PER_IP_MAX,
                loopback_exempt: true,
            },
            dial_scope: None,
            request_timeout: Duration::from_millis(LEDGER_REQUEST_TIMEOUT_MS),
            gossip_heartbeat: Duration::from_millis(GOSSIP_HEARTBEAT_MS),
            idle_connection_timeout: Duration::from_millis(IDLE_CONNECTION_TIMEOUT_MS),
            events_capacity: EVENTS_QUEUE_MAX,
            registry: None,
        }
    }
}

/// What a peer did wrong. Each is a protocol violation no honest peer commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// An inbound ledger request broke the codec's rules.
    BadRequest(FrameViolation),
    /// A response to our ledger request broke the codec's rules.
    BadResponse(FrameViolation),
    /// A gossip message did not decode as a `GossipMsg`.
    BadGossip(String),
    /// A gossip message arrived on a topic it does not belong to.
    GossipWrongTopic,
    /// The peer kept sending ledger requests after `ledger_refusals_max` refusals.
    IgnoredRefusals,
}

/// What the network layer tells the node.
// Events are moved once, through a bounded queue; boxing the large ones would cost an
// allocation per gossip message and request for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NetEvent {
    /// The first (and only) connection to a peer is up.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address as seen from here.
        addr: Multiaddr,
        /// Whether it dialled us.
        inbound: bool,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer subscribed to one of our topics (publishing to it can now reach it).
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A decoded gossip message, not yet propagated: the node must validate it and call
    /// [`NetHandle::report_validation`] with `msg_id` and `source`.
    Gossip {
        /// Gossipsub message id (a hash of topic and data).
        msg_id: MessageId,
        /// The peer that forwarded it to us: the one to penalise for an invalid message.
        source: PeerId,
        /// The peer that signed it as author (gossipsub strict mode guarantees it is set).
        author: Option<PeerId>,
        /// Its topic.
        topic: Topic,
        /// The message.
        msg: GossipMsg,
    },
    /// A decoded inbound ledger request; answer it with [`NetHandle::respond`].
    LedgerRequest {
        /// The requesting peer.
        peer: PeerId,
        /// The request.
        request: LedgerRequest,
        /// Where the answer goes.
        responder: LedgerResponder,
    },
    /// A peer broke the protocol and has been disconnected. Ban it with [`NetHandle::ban`] to
    /// refuse it for good.
    Misbehaviour {
        /// The peer.
        peer: PeerId,
        /// What it did.
        what: Misbehaviour,
    },
}

/// Errors of the network layer. [`NetError::is_retryable`] tells a transient failure (try again,
/// maybe another peer) from a violation or a local mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The request or stream timed out.
    #[error("timed out")]
    Timeout,
    /// The connection closed before an answer.
    #[error("connection closed")]
    ConnectionClosed,
    /// Dialling failed or was denied (a banned peer, a connection limit).
    #[error("dial failed: {0}")]
    Dial(String),
    /// An I/O failure on a stream.
    #[error("i/o: {0}")]
    Io(String),
    /// No peer is subscribed to the topic yet.
    #[error("no peer subscribed to the topic")]
    NoGossipPeers,
    /// Gossipsub could not publish now (e.g. every peer's queue is full).
    #[error("publish failed: {0}")]
    Publish(String),
    /// This exact message was published before (gossip ids are content hashes).
    #[error("message already published")]
    DuplicateGossip,
    /// The remote broke the protocol (e.g. an undecodable response); it has been disconnected.
    #[error("protocol violation by the remote: {0}")]
    Protocol(String),
    /// The remote does not speak the protocol.
    #[error("remote does not support the protocol")]
    UnsupportedProtocol,
    /// A message exceeds its encoded size limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A gossip message was given a topic it does not belong to.
    #[error("{0:?} messages do not travel on that topic")]
    WrongTopic(Topic),
    /// Bad configuration (e.g. a bootstrap address without `/p2p/`).
    #[error("configuration: {0}")]
    Config(String),
    /// Incoming channel streams are already being accepted by another receiver.
    #[error("channel streams are already accepted elsewhere")]
    AlreadyAccepting,
    /// The event loop has stopped.
    #[error("network event loop stopped")]
    Shutdown,
}

impl NetError {
    /// Whether trying again later (or with another peer) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NetError::Timeout
                | NetError::ConnectionClosed
                | NetError::Dial(_)
                | NetError::Io(_)
                | NetError::NoGossipPeers
                | NetError::Publish(_)
        )
    }
}

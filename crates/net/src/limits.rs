//! Per-peer and per-node limits of the networking layer, as named constants with units last.
//!
//! Sizes of protocol messages live in `paychan_protocol::limits` and the `Wire::BYTES_MAX` of
//! each type; the constants here bound what the network layer itself holds per peer. The
//! rate and concurrency limits are the defaults of [`crate::PeerLimits`], so a node (or a test)
//! can tighten them. Relationships are asserted at compile time at the bottom of this file.

use paychan_protocol::limits::BLOCK_BYTES_MAX;
use paychan_protocol::wire::{GossipMsg, LedgerRequest, LedgerResponse, LEDGER_RESPONSE_BYTES_MAX};
use paychan_protocol::Wire;

/// Bytes of the big-endian length prefix in front of every ledger request and response.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Established connections to one peer. One connection per peer (DESIGN, Networking): every
/// protocol shares it, and the per-connection limits below are per-peer limits.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 1;
/// Established inbound connections in total.
pub const CONNECTIONS_INBOUND_MAX: u32 = 1_024;
/// Of those, the slots only reserved peers (the genesis sequencer and witnesses) may take: an
/// attacker with free peer ids that fills every other slot does not lock them out.
pub const CONNECTIONS_INBOUND_RESERVED: u32 = 64;
/// Established inbound connections from one IP address (reserved peers not counted; loopback
/// exempt by default, since a local testnet runs every node on 127.0.0.1).
pub const CONNECTIONS_PER_IP_MAX: u32 = 8;
/// Established outbound connections in total.
pub const CONNECTIONS_OUTBOUND_MAX: u32 = 256;
/// Inbound connections still in their handshake.
pub const CONNECTIONS_PENDING_INBOUND_MAX: u32 = 64;
/// Outbound connections still dialling or in their handshake.
pub const CONNECTIONS_PENDING_OUTBOUND_MAX: u32 = 64;

/// Concurrent yamux substreams on one connection (all protocols together): the per-peer stream
/// limit, since a peer has one connection.
pub const STREAMS_PER_CONNECTION_MAX: usize = 256;
/// Concurrent `/paychan/ledger/1` substreams on one connection, inbound and outbound together
/// (request-response counts both in one pool). Outbound requests beyond it fail at once.
pub const LEDGER_STREAMS_PER_CONNECTION_MAX: usize = 64;

/// Inbound ledger requests of one peer handed to the node and not yet answered. Beyond it the
/// peer gets [`crate::REFUSED_BUSY`] at once.
pub const LEDGER_REQUESTS_IN_FLIGHT_PER_PEER_MAX: u32 = 32;
/// Sustained inbound ledger requests per peer (token-bucket refill rate).
pub const LEDGER_REQUESTS_PER_PEER_PER_S: u32 = 200;
/// Inbound ledger requests a peer may send in one burst (token-bucket capacity).
pub const LEDGER_REQUEST_BURST_PER_PEER: u32 = 400;
/// Requests refused (rate or concurrency) on one connection before the peer is disconnected as
/// abusive: a peer that keeps sending after this many refusals ignores them.
pub const LEDGER_REFUSALS_PER_CONNECTION_MAX: u32 = 1_000;
/// Bytes of ledger responses served to one peer per second, sustained (byte-budget refill).
/// Every response counts; requests other than submissions wait for a positive balance.
pub const SERVED_BYTES_PER_PEER_PER_S: u64 = 4 * 1024 * 1024;
/// Bytes served to one peer in a burst: two of the largest blocks.
pub const SERVED_BYTES_BURST_PER_PEER: u64 = 2 * BLOCK_BYTES_MAX as u64;
/// Bytes of ledger responses served to all peers together per second.
pub const SERVED_BYTES_TOTAL_PER_S: u64 = 32 * 1024 * 1024;
/// Bytes served to all peers together in a burst.
pub const SERVED_BYTES_BURST_TOTAL: u64 = 64 * 1024 * 1024;
/// Time for one ledger request: opening the substream, writing, and reading the response.
pub const LEDGER_REQUEST_TIMEOUT_MS: u64 = 10_000;

/// Time a peer cut off for a violation keeps its connection after its error response has been
/// sent, so that it can read why (closing at once can drop the response in flight).
pub const DISCONNECT_LINGER_MS: u64 = 250;

/// Time to open a `/paychan/channel/1` stream (dial if needed, negotiate). Short: the channel
/// manager retries, and a retry on a fresh attempt beats waiting on a stalled one.
pub const CHANNEL_STREAM_OPEN_TIMEOUT_MS: u64 = 3_000;

/// First wait before a lost peer that the node keeps connected (bootstrap peers, the
/// sequencer) is dialled again; each failure doubles it, up to the maximum.
pub const REDIAL_BACKOFF_MIN_MS: u64 = 250;
/// Longest wait between two dials of a lost peer that the node keeps connected.
pub const REDIAL_BACKOFF_MAX_MS: u64 = 5_000;
/// Addresses remembered per peer that the node keeps connected.
pub const REDIAL_ADDRS_PER_PEER_MAX: usize = 8;

/// Gossipsub envelope around the data (author, seqno, topic, signature, key), upper bound.
pub const GOSSIP_ENVELOPE_BYTES_MAX: usize = 16 * 1024;
/// Largest gossipsub RPC: the largest gossip message plus its envelope.
pub const GOSSIP_TRANSMIT_BYTES_MAX: usize = <GossipMsg as Wire>::BYTES_MAX + GOSSIP_ENVELOPE_BYTES_MAX;
/// Gossip messages queued for sending to one peer before further ones are dropped.
pub const GOSSIP_QUEUE_PER_PEER_MAX: usize = 1_024;
/// Gossip messages per second one peer may forward to us, sustained, counting only messages
/// not authored by a reserved peer (sequencer and witnesses author blocks, checkpoints and
/// cosignatures; everyone else only disputes). Beyond it they are ignored and the forwarder is
/// penalised.
pub const GOSSIP_MSGS_PER_PEER_PER_S: u32 = 50;
/// Burst of such gossip messages from one peer.
pub const GOSSIP_MSG_BURST_PER_PEER: u32 = 200;
/// Application-specific score one ignored gossip message costs its forwarder (weight 1): ten
/// take it below gossipsub's default gossip threshold (-10), eighty to the graylist (-80).
pub const GOSSIP_IGNORED_PENALTY: f64 = 1.0;
/// Half-life of those penalties.
pub const GOSSIP_PENALTY_HALF_LIFE_MS: u64 = 10_000;
/// Gossipsub heartbeat (mesh maintenance) interval.
pub const GOSSIP_HEARTBEAT_MS: u64 = 1_000;

/// Commands queued from handles to the event loop.
pub const COMMANDS_QUEUE_MAX: usize = 256;
/// Events queued from the event loop to the node. When full, gossip is ignored (not
/// propagated, not penalised) and requests are refused as busy: the loop never waits on the
/// node.
pub const EVENTS_QUEUE_MAX: usize = 1_024;

/// The share of the event queue (one part in this many) kept for blocks and checkpoints
/// authored by a reserved peer: once fewer places are free, any other gossip is ignored, so
/// that a flood cannot crowd them out.
pub const EVENTS_PRIORITY_SHARE_DIVISOR: usize = 4;
/// Addresses taken from one peer's identify report (after filtering).
pub const IDENTIFY_ADDRS_PER_PEER_MAX: usize = 8;
/// Addresses outside the dial scope that the node itself was told to dial once
/// (`NetHandle::dial`) and may dial again; the oldest is forgotten first. Bootstrap addresses
/// are kept apart and not counted.
pub const EXPLICIT_DIAL_ADDRS_MAX: usize = 64;

/// A connection with no stream open is closed after this long.
pub const IDLE_CONNECTION_TIMEOUT_MS: u64 = 60_000;
/// Time for `Net::new` to see its first listen address.
pub const LISTEN_TIMEOUT_MS: u64 = 5_000;

const _: () = assert!(CONNECTIONS_INBOUND_RESERVED < CONNECTIONS_INBOUND_MAX);
const _: () = assert!(CONNECTIONS_PER_IP_MAX < CONNECTIONS_INBOUND_MAX - CONNECTIONS_INBOUND_RESERVED);
// The largest block can always be served, and a whole response fits the total burst.
const _: () = assert!(BLOCK_BYTES_MAX as u64 <= SERVED_BYTES_BURST_PER_PEER);
const _: () = assert!(SERVED_BYTES_BURST_PER_PEER <= SERVED_BYTES_BURST_TOTAL);
const _: () = assert!(SERVED_BYTES_PER_PEER_PER_S <= SERVED_BYTES_TOTAL_PER_S);
const _: () = assert!(GOSSIP_MSGS_PER_PEER_PER_S <= GOSSIP_MSG_BURST_PER_PEER);
const _: () =
    assert!(EVENTS_PRIORITY_SHARE_DIVISOR > 1 && EVENTS_QUEUE_MAX / EVENTS_PRIORITY_SHARE_DIVISOR > 0);
const _: () = assert!(0 < REDIAL_BACKOFF_MIN_MS && REDIAL_BACKOFF_MIN_MS <= REDIAL_BACKOFF_MAX_MS);
// The node's own requests to a peer must still fit beside that peer's in-flight requests.
const _: () = assert!((LEDGER_REQUESTS_IN_FLIGHT_PER_PEER_MAX as usize) < LEDGER_STREAMS_PER_CONNECTION_MAX);
const _: () = assert!(LEDGER_STREAMS_PER_CONNECTION_MAX < STREAMS_PER_CONNECTION_MAX);
const _: () = assert!(LEDGER_REQUESTS_PER_PEER_PER_S <= LEDGER_REQUEST_BURST_PER_PEER);
const _: () = assert!(LEDGER_REQUEST_BURST_PER_PEER < LEDGER_REFUSALS_PER_CONNECTION_MAX);
// Both frame lengths fit the 4-byte prefix.
const _: () = assert!(<LedgerRequest as Wire>::BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(<LedgerResponse as Wire>::BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(<LedgerResponse as Wire>::BYTES_MAX == LEDGER_RESPONSE_BYTES_MAX);
// A whole block travels as one gossip message.
const _: () = assert!(BLOCK_BYTES_MAX <= <GossipMsg as Wire>::BYTES_MAX);
const _: () = assert!(GOSSIP_TRANSMIT_BYTES_MAX > <GossipMsg as Wire>::BYTES_MAX);

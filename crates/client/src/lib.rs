//! # paychan-client
//!
//! Channels over `/paychan/channel/1`: the [`ChannelManager`] drives every channel of one key
//! (open negotiation, pipelined payments, acks, reestablish, closes, answers to closes) over one
//! stream per peer, with group-commit persistence. A node runs one; a client program runs one
//! too, with a [`LedgerAccess`] of its own.
//!
//! ## Layout
//! - [`ledger`]: [`LedgerAccess`], what the manager needs from a ledger (a node's replica, or a
//!   client's verified view of a remote node).
//! - `link`: one stream per peer: the reader and writer tasks, epochs, framing.
//! - [`manager`]: the sans-I/O core that owns the channels ([`manager::core::Manager`]), the
//!   tokio driver that does its I/O, and the handle to it.
//! - [`remote`]: [`RemoteLedger`], a client's verified view of the ledger, pinned to one chain,
//!   fed by several sources it does not trust, with a freshness alarm.
//! - [`x402`]: the HTTP 402 headers of the `paychan-channel` scheme (gateway and payer).
//!
//! **Architecture invariant**: persist before you send. An ack, a reestablish, an
//! `OpenAccept`, an `OpenSigned`, a `CloseSign` and an open's submission leave only after the
//! batch they depend on is durable; a payer signs only within a durably reserved seq range
//! (the channel state machine enforces it; the core writes one snapshot per channel per batch,
//! one sync per batch, with one batch in flight while it keeps signing).
//!
//! **Architecture invariant**: the core never awaits, spawns, reads a clock or draws OS
//! randomness; only `manager::driver` and `link` touch tokio.

pub mod ledger;
mod link;
pub mod manager;
pub mod remote;
pub mod x402;

pub use ledger::{LedgerAccess, LedgerChannel};
pub use manager::{
    ChannelManager, ChannelTotals, ChannelView, ErrorKind, ManagerConfig, ManagerError, PayStats,
    ReceivedPayment,
};
pub use remote::{
    ChainPin, LedgerSource, PeerSource, RemoteConfig, RemoteError, RemoteLedger, SourceReport, SourceStatus,
};

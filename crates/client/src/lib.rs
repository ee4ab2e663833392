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
//! - [`manager`]: the actor that owns the channels and the handle to it.
//! - [`remote`]: [`RemoteLedger`], a client's verified view of the ledger, pinned to one chain,
//!   fed by several sources it does not trust, with a freshness alarm.
//!
//! **Architecture invariant**: persist before you send. An ack or a reestablish leaves only
//! after the snapshot it depends on is flushed; a payer signs only within a durably reserved
//! seq range (the channel state machine enforces it; the manager persists one snapshot per
//! channel per round, with one flush for all of them).

pub mod ledger;
mod link;
pub mod manager;
pub mod remote;

pub use ledger::{LedgerAccess, LedgerChannel};
pub use manager::{ChannelManager, ChannelView, ManagerConfig, ManagerError, PayStats};
pub use remote::{
    ChainPin, LedgerSource, PeerSource, RemoteConfig, RemoteError, RemoteLedger, SourceReport, SourceStatus,
};

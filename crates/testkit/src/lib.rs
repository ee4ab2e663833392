//! # paychan-testkit
//!
//! Test support shared by the tests of several crates of the workspace, so that one copy of
//! each helper exists and the copies cannot drift apart. A dev-dependency only
//! (`publish = false`); nothing here runs in a node.
//!
//! ## Layout
//! - [`json`]: field getters of the golden JSON vectors (hex, integers, lists), which panic with
//!   the field's name on a malformed file.
//! - [`spec`]: what the vector tests re-derive from PROTOCOL.md alone: the hand-written postcard
//!   writer [`spec::W`], RFC 6962 `MTH` ([`spec::mth`]) over SHA-256 taken directly from `sha2`,
//!   and the `Tx` variant names.
//! - [`diff`]: the first difference between a committed and a computed JSON value, and the
//!   pretty form the vector files are written in.
//! - [`fields`]: the JSON `fields` the vector files give of a genesis, a block header and a
//!   direction.
//! - [`doc`]: the ```` ```vector NAME ```` blocks of PROTOCOL.md (parse, compare with computed
//!   hex, rewrite on regeneration) and the `PAYCHAN_REGENERATE_VECTORS` switch.
//! - [`raw`] (feature `p2p`): a libp2p peer that writes arbitrary bytes on `/paychan/ledger/1`,
//!   to play a peer that breaks the ledger protocol's framing, and the drivers of its swarm.
//! - [`frames`] (feature `p2p`): channel-stream framing as PROTOCOL.md states it (a 4-byte
//!   big-endian length and a postcard `Envelope`), and [`frames::RawLink`], one channel stream
//!   driven by a test.
//!
//! The crate depends on `paychan-protocol` for the wire types only; the [`spec`] side never
//! calls the protocol crate's encoders or hashes, which it exists to check. It does not depend
//! on `paychan-net`, so `paychan-net`'s own tests can use it.

#![warn(missing_docs)]

pub mod diff;
pub mod doc;
pub mod fields;
#[cfg(feature = "p2p")]
pub mod frames;
pub mod json;
#[cfg(feature = "p2p")]
pub mod raw;
pub mod spec;

#[cfg(feature = "p2p")]
pub use wait::{bounded, STEP};

#[cfg(feature = "p2p")]
mod wait {
    use std::future::Future;
    use std::time::Duration;

    /// Bound on one wait of the network helpers (a connection, a response, a frame).
    pub const STEP: Duration = Duration::from_secs(20);

    /// Runs `f` under [`STEP`]; panics with `what` when it takes longer.
    pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
        match tokio::time::timeout(STEP, f).await {
            Ok(v) => v,
            Err(_) => panic!("timed out after {STEP:?}: {what}"),
        }
    }
}

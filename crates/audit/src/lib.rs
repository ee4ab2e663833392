//! # paychan-audit
//!
//! Verifies a ledger from its bytes, trusting no node: the genesis (pinned by chain id or by
//! the genesis itself), every block by replay under the ledger crate's own rules (signatures
//! checked in one batch per block), conservation of the supply after every block, every signed
//! checkpoint against the genesis witnesses and against the replayed block at its height, and
//! consistency between successive checkpoints. Also the ledger export file format.
//!
//! ## Layout
//! - [`auditor`]: the streaming [`Auditor`] and its [`Pin`].
//! - [`report`]: the [`Report`] and the [`Balances`] at the verified height.
//! - [`export`]: the export file ([`ExportWriter`], [`ExportReader`], [`audit_export`]).
//! - [`error`]: [`AuditError`], naming the first failure.
//! - [`score`]: the credit score of an account, from ledger history alone.
//!
//! **Architecture invariants**
//! - No rule is implemented here: blocks go through `LedgerState::apply_block_with`,
//!   checkpoints through `paychan_ledger::verify_checkpoint` and
//!   `verify_checkpoint_consistency`. The auditor accepts exactly what a replica accepts.
//! - No I/O of its own beyond the bytes or the `std::io::Read` it is handed; no async.
//! - Memory is the ledger state plus a bounded number of checkpoints ahead of the blocks:
//!   nothing is kept per block.

#![warn(missing_docs)]

pub mod auditor;
pub mod error;
pub mod export;
pub mod report;
pub mod score;

pub use auditor::{
    apply_block, apply_block_at_classified, apply_block_classified, Auditor, Pin, Refused,
    HELD_CHECKPOINTS_MAX,
};
pub use error::{AuditError, Check, ExportError};
pub use export::{
    audit_export, audit_records, AuditFailure, ExportEnd, ExportReader, ExportWriter, ReaderPosition, Record,
};
pub use report::{
    AccountRow, Balances, ChannelCounts, ChannelRow, CheckpointSummary, CreditLineRow, DebtRow, Report,
    TxCounts,
};
pub use score::{score, Factor, FirstSeen, Score};

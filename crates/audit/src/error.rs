//! Every way an audit fails, each naming the first failure: where (height, transaction,
//! cosignature, export byte), which check, and what was expected and found.

use paychan_ledger::{GenesisError, TxError};
use paychan_protocol::DecodeError;

/// The first failure an audit met. Nothing after it was verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The genesis breaks a genesis rule.
    #[error("genesis: {0}")]
    Genesis(GenesisError),
    /// The genesis is not the pinned one.
    #[error("genesis: chain id expected {expected} (pinned) found {found}")]
    NotPinned {
        /// The pinned chain id (hex).
        expected: String,
        /// The chain id of the genesis given (hex).
        found: String,
    },
    /// A block breaks a block rule (not one of its transactions).
    #[error("block {height}: {check}")]
    Block {
        /// Height of the block, as its position in the chain (the previous height plus one).
        height: u64,
        /// What failed.
        check: Check,
    },
    /// A transaction of a block breaks a transaction rule.
    #[error("block {height} tx {index}: {error}")]
    Tx {
        /// Height of the block.
        height: u64,
        /// Index of the transaction in the block.
        index: usize,
        /// The rule it breaks.
        error: TxError,
    },
    /// Balances plus live channel deposits differ from the genesis supply after a block. The
    /// ledger rules make this impossible; it is checked anyway, since an auditor trusts nothing.
    #[error(
        "block {height}: conservation: total value expected {expected} (the genesis supply) found {found}"
    )]
    Conservation {
        /// Height of the block.
        height: u64,
        /// The genesis supply.
        expected: u64,
        /// Balances plus live deposits.
        found: u128,
    },
    /// A signed checkpoint fails its own checks or disagrees with the replayed blocks.
    #[error("checkpoint at height {height}: {check}")]
    Checkpoint {
        /// The height the checkpoint claims.
        height: u64,
        /// What failed.
        check: Check,
    },
    /// The checkpoint the auditor had accepted before (its saved state) disagrees with what
    /// was verified: the ledger was rewritten or forked since.
    #[error("accepted checkpoint at height {height}: {check}")]
    Accepted {
        /// Height of the accepted checkpoint.
        height: u64,
        /// What failed.
        check: Check,
    },
    /// The export file is malformed at a byte offset.
    #[error("export byte {offset}: {error}")]
    Export {
        /// Offset of the first byte of the field that failed.
        offset: u64,
        /// What is wrong there.
        error: ExportError,
    },
}

/// One failed check of a block or checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Check {
    /// A field differs from the value the replay (or the rule) gives.
    #[error("{field} expected {expected} found {found}")]
    Mismatch {
        /// The field, by its protocol name (`state_root`, `log_size`, ...).
        field: &'static str,
        /// What the replay gives.
        expected: String,
        /// What the object says.
        found: String,
    },
    /// The sequencer's signature does not verify.
    #[error("sequencer signature does not verify")]
    SequencerSignature,
    /// A cosignature does not verify.
    #[error("cosignature {index} (witness {witness}) does not verify")]
    Cosignature {
        /// Position in the checkpoint's cosignatures.
        index: usize,
        /// Its witness key (hex).
        witness: String,
    },
    /// A cosignature is from a key the genesis does not name as a witness.
    #[error("cosignature {index} (key {key}) is not from a genesis witness")]
    NotAWitness {
        /// Position in the checkpoint's cosignatures.
        index: usize,
        /// The key (hex).
        key: String,
    },
    /// A witness cosigned twice.
    #[error("cosignature {index} (witness {witness}) repeats an earlier witness")]
    DuplicateWitness {
        /// Position of the repeat.
        index: usize,
        /// The witness key (hex).
        witness: String,
    },
    /// A rule with no single expected value (time steps, transaction counts, order).
    #[error("{0}")]
    Rule(String),
    /// Two checkpoints (or a checkpoint and the replayed log) are not consistent.
    #[error("not consistent with the checkpoint at height {older_height}: {detail}")]
    Inconsistent {
        /// Height of the older checkpoint.
        older_height: u64,
        /// Why.
        detail: String,
    },
    /// A checkpoint arrived after blocks past its height were replayed: its block hash can no
    /// longer be compared (the auditor keeps nothing per block).
    #[error("arrived after block {replayed} was replayed; checkpoints must come before or right after their block")]
    Late {
        /// Height replayed when it arrived.
        replayed: u64,
    },
    /// More checkpoints ahead of the blocks than the auditor holds.
    #[error("more than {max} checkpoints ahead of the blocks")]
    TooManyAhead {
        /// The limit.
        max: usize,
    },
    /// The accepted checkpoint is beyond what was verified.
    #[error("beyond the verified height {verified} (log size {log_size})")]
    Beyond {
        /// Verified height.
        verified: u64,
        /// Verified log size.
        log_size: u64,
    },
}

/// What is wrong with the bytes of an export file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The file does not start with the export magic.
    #[error("not a paychan ledger export (bad magic)")]
    BadMagic,
    /// A version this reader does not know.
    #[error("export version {found}, this reader knows version {known}")]
    UnknownVersion {
        /// The file's version.
        found: u16,
        /// The version known.
        known: u16,
    },
    /// A record kind byte that is not defined.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A record length above its kind's limit.
    #[error("record length {len} exceeds the limit of {max} bytes for a {kind} record")]
    TooLong {
        /// The kind's name.
        kind: &'static str,
        /// Declared length.
        len: u64,
        /// Limit.
        max: usize,
    },
    /// A record payload that does not decode canonically within its limits.
    #[error("{kind} record: {error}")]
    Decode {
        /// The kind's name.
        kind: &'static str,
        /// Why.
        error: DecodeError,
    },
    /// Records out of the required order.
    #[error("{0}")]
    Order(&'static str),
    /// The file ends before its end record.
    #[error("truncated: the file ends inside or before a record (no end record)")]
    Truncated,
    /// The end record's figures differ from the records read.
    #[error("end record: {field} expected {expected} found {found}")]
    EndMismatch {
        /// Which figure.
        field: &'static str,
        /// What the records give.
        expected: u64,
        /// What the end record says.
        found: u64,
    },
    /// Bytes after the end record.
    #[error("bytes after the end record")]
    TrailingBytes,
    /// Reading failed (the reader's error, as text).
    #[error("read failed: {0}")]
    Io(String),
}

//! The one error type of the store.

use paychan_protocol::{ChannelId, Direction};

/// Why a store operation failed.
///
/// Three kinds: [`StoreError::Io`] may go away if retried (see [`StoreError::is_retryable`]);
/// [`StoreError::Corrupt`] and [`StoreError::Backend`] mean the data directory needs a human;
/// the rest refuse a write that would break a store invariant and say nothing about the disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The operating system or the backend reported an I/O failure. The failed operation may
    /// or may not have taken effect; a failed [`flush`](crate::Store::flush) means nothing
    /// written since the last successful flush is known to be durable. Retrying is safe.
    #[error("i/o error: {0}")]
    Io(String),
    /// Bytes read back from storage do not decode, break a limit, or contradict their key.
    /// Never a panic: the caller decides whether to stop or to resync the record from peers.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which record, e.g. `block 17` or `peer record`.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A different block or checkpoint is already stored at this height. The stored one is
    /// kept; nothing was written.
    #[error("a different record is already stored at height {height}")]
    Conflict {
        /// The height of the refused record.
        height: u64,
    },
    /// A different genesis is already stored. The stored one is kept.
    #[error("a different genesis is already stored")]
    GenesisConflict,
    /// A block was offered whose height is not `tip + 1` (nor an identical copy of a stored
    /// block): blocks are stored without gaps.
    #[error("block {height} does not extend the tip {tip}")]
    NotNext {
        /// Height of the refused block.
        height: u64,
        /// The current tip (0: no block stored).
        tip: u64,
    },
    /// A seq reservation may only grow: going down could let a payer sign two proofs with
    /// one seq after a restart.
    #[error("seq reservation of {channel:?} {direction:?} would go down from {stored} to {requested}")]
    SeqRegress {
        /// The channel.
        channel: ChannelId,
        /// The direction.
        direction: Direction,
        /// The stored reservation.
        stored: u64,
        /// The refused, lower one.
        requested: u64,
    },
    /// The value breaks a limit of the store or of the protocol; it was not written (writing it
    /// would make it unreadable by the strict decoder).
    #[error("refused {what}: {reason}")]
    Invalid {
        /// What was refused.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Any other failure reported by the backend (e.g. a sled bug report); not retryable.
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// True for errors that may go away if the same operation is tried again (I/O errors).
    /// Everything else is either a refused write or damage that retrying will not fix.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Io(_))
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = core::result::Result<T, E>;

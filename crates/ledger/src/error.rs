//! Every way the ledger refuses an input, and what the caller should do about it.
//!
//! Each operation has its own precise type ([`TxError`], [`BlockError`], [`GenesisError`],
//! [`CheckpointError`], [`ProofError`]); [`Error`] unites them for callers that only pass errors
//! on. Every type answers [`class`](TxError::class) with an [`ErrorClass`], so that a node can
//! tell "try again later" from "harmless, drop it" from "this peer sent provably invalid data".

use paychan_protocol::merkle::MerkleError;
use paychan_protocol::{ChannelId, Hash32, PublicKey};

/// What a refusal means for the one who sent the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorClass {
    /// Not valid now, may be valid later (funds may arrive, a window may end, a missing block
    /// may be fetched, a full pool may drain). Keep or resubmit.
    Retryable,
    /// Never valid, but honest parties produce it in races (a stale proof, a used nonce, an
    /// expired open). Drop it; nobody is at fault.
    Rejected,
    /// Provably invalid: no honest party produces it (a bad signature, a foreign chain id, a
    /// block whose roots lie). The peer that sent it may be cut off.
    Violation,
}

/// Why a transaction was refused. An `Err` never changes the ledger.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TxError {
    /// The transaction, or a proof inside it, is bound to another ledger.
    #[error("bound to chain {got}, this ledger is {expected}")]
    WrongChain {
        /// This ledger's chain id.
        expected: Hash32,
        /// The chain id carried.
        got: Hash32,
    },
    /// A signature (of the sender, a party or a proof's payer) does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The transaction is already in the log.
    #[error("already included at log index {index}")]
    AlreadyIncluded {
        /// Its log index.
        index: u64,
    },
    /// The nonce is not the account's next nonce.
    #[error("nonce {got}, the account's next nonce is {expected}")]
    BadNonce {
        /// The account's next nonce.
        expected: u64,
        /// The nonce carried.
        got: u64,
    },
    /// The account cannot pay the amount.
    #[error("overdraft: {needed} needed, {available} available")]
    Overdraft {
        /// Amount to pay.
        needed: u64,
        /// Balance.
        available: u64,
    },
    /// A transfer or deposit of zero.
    #[error("amount must be positive")]
    ZeroAmount,
    /// A transfer to oneself.
    #[error("sender and recipient are the same account")]
    SelfTransfer,
    /// A channel open whose two parties are one key.
    #[error("a channel needs two distinct parties")]
    SameParties,
    /// A channel open whose deposits are both zero.
    #[error("a channel needs a positive total deposit")]
    EmptyChannel,
    /// An amount would exceed `u64`.
    #[error("amount overflow")]
    Overflow,
    /// The open was signed to be void after `expiry_ms`.
    #[error("open expired at {expiry_ms}, ledger time is {time_ms}")]
    Expired {
        /// Expiry of the open.
        expiry_ms: u64,
        /// Ledger time of the block.
        time_ms: u64,
    },
    /// A channel with this id exists (open or closed: ids are never reused).
    #[error("channel {0:?} already exists")]
    DuplicateChannel(ChannelId),
    /// No channel with this id (perhaps its open is not yet in a block).
    #[error("unknown channel {0:?}")]
    UnknownChannel(ChannelId),
    /// The signer is not a party of the channel.
    #[error("{0:?} is not a party of the channel")]
    NotAParty(PublicKey),
    /// The transaction needs an open channel.
    #[error("channel {0:?} is not open")]
    ChannelNotOpen(ChannelId),
    /// The transaction needs a closing channel (a unilateral close must come first).
    #[error("channel {0:?} is not closing")]
    ChannelNotClosing(ChannelId),
    /// The channel has been paid out.
    #[error("channel {0:?} is closed")]
    ChannelClosed(ChannelId),
    /// Cooperative-close balances that do not add up to the channel's deposits.
    #[error("balances sum to {sum}, the channel holds {total}")]
    BalanceMismatch {
        /// Sum of the proposed balances (saturated).
        sum: u64,
        /// Total deposits of the channel.
        total: u64,
    },
    /// A proof for another channel (another open between the same parties included).
    #[error("proof is for channel {got:?}, not {expected:?}")]
    WrongChannel {
        /// The channel of the transaction.
        expected: ChannelId,
        /// The channel the proof names.
        got: ChannelId,
    },
    /// A proof in the slot of the other direction.
    #[error("proof in the wrong direction slot")]
    WrongDirection,
    /// An update that carries no proof.
    #[error("update without proofs")]
    EmptyUpdate,
    /// A credit grant whose creditor and debtor are not the channel's two parties.
    #[error("a credit line's creditor and debtor must be the channel's two parties")]
    CreditParties,
    /// A grant of limit 0 for a line that was never granted.
    #[error("no credit line on channel {0} for that debtor")]
    NoCreditLine(ChannelId),
    /// A grant whose due time is before its expiry.
    #[error("due time {due_ms} before the line's expiry {expiry_ms}")]
    DueBeforeExpiry {
        /// The grant's expiry.
        expiry_ms: u64,
        /// The grant's due time.
        due_ms: u64,
    },
    /// A repayment of a channel that has no debt.
    #[error("no debt recorded for channel {0}")]
    NoDebt(ChannelId),
    /// A repayment larger than what is outstanding.
    #[error("repayment of {amount} exceeds the {outstanding} outstanding")]
    RepayTooMuch {
        /// What the repayment offers.
        amount: u64,
        /// What is owed.
        outstanding: u64,
    },
    /// An update that raises neither direction's transferred amount.
    #[error("stale proof: the ledger holds a proof with an equal or higher transferred amount")]
    StaleProof,
    /// An update after the challenge window.
    #[error("challenge window ended at {ends_ms}")]
    WindowClosed {
        /// End of the window (ledger time).
        ends_ms: u64,
    },
    /// A settle before the challenge window ends.
    #[error("challenge window open until {ends_ms}")]
    WindowOpen {
        /// End of the window (ledger time).
        ends_ms: u64,
    },
    /// The block was full; the transaction was not tried.
    #[error("block full")]
    BlockFull,
    /// Mempool: the account already has a pending transaction with this nonce.
    #[error("nonce {nonce} already pending")]
    NonceConflict {
        /// The nonce.
        nonce: u64,
    },
    /// Mempool: the account has its maximum of pending transactions.
    #[error("{account:?} has {limit} pending transactions")]
    PendingLimit {
        /// The account the transaction counts for.
        account: PublicKey,
        /// The limit.
        limit: u32,
    },
    /// Mempool: the pool is full.
    #[error("mempool full")]
    PoolFull,
    /// The fee payer cannot pay the transaction's fee on top of what the transaction itself
    /// takes from its balance (PROTOCOL.md §8.4, fees).
    #[error("{payer:?} cannot pay the fee of {fee}: {available} available after the transaction")]
    FeeUnpaid {
        /// Who pays the fee.
        payer: PublicKey,
        /// The fee.
        fee: u64,
        /// What the payer would have left for it.
        available: u64,
    },
    /// Mempool: a close of this channel is already pending.
    #[error("a close of channel {0:?} is already pending")]
    ClosePending(ChannelId),
}

impl TxError {
    /// What the refusal means for the submitter.
    pub fn class(&self) -> ErrorClass {
        use TxError::*;
        match self {
            // A nonce ahead of the account may become valid once the gap is filled.
            BadNonce { expected, got } if got > expected => ErrorClass::Retryable,
            Overdraft { .. } | UnknownChannel(_) | WindowOpen { .. } | BlockFull | PendingLimit { .. }
            | PoolFull | FeeUnpaid { .. } => ErrorClass::Retryable,
            AlreadyIncluded { .. }
            | BadNonce { .. }
            | NonceConflict { .. }
            | Overflow
            | Expired { .. }
            | DuplicateChannel(_)
            | ChannelNotOpen(_)
            | ChannelNotClosing(_)
            | ChannelClosed(_)
            // Two parties may sign close balances just before a deposit lands.
            | BalanceMismatch { .. }
            | StaleProof
            // A line can be ended or a debt repaid by another transaction just before.
            | NoCreditLine(_)
            | NoDebt(_)
            | RepayTooMuch { .. }
            | ClosePending(_)
            | WindowClosed { .. } => ErrorClass::Rejected,
            WrongChain { .. }
            | BadSignature
            | ZeroAmount
            | SelfTransfer
            | SameParties
            | EmptyChannel
            | NotAParty(_)
            | WrongChannel { .. }
            | WrongDirection
            | CreditParties
            | DueBeforeExpiry { .. }
            | EmptyUpdate => ErrorClass::Violation,
        }
    }
}

/// Why a block was refused. An `Err` never changes the ledger.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum BlockError {
    /// The header names another chain.
    #[error("block of chain {got}, this ledger is {expected}")]
    WrongChain {
        /// This ledger's chain id.
        expected: Hash32,
        /// The header's chain id.
        got: Hash32,
    },
    /// The height is not the next one.
    #[error("height {got}, expected {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The header's height.
        got: u64,
    },
    /// The header does not link to the last block.
    #[error("previous hash {got}, expected {expected}")]
    WrongPrevHash {
        /// Hash of the last block (the chain id before block 1).
        expected: Hash32,
        /// The header's previous hash.
        got: Hash32,
    },
    /// The sequencer's signature does not verify.
    #[error("invalid sequencer signature")]
    BadSignature,
    /// The block's time is before the previous block's.
    #[error("block time {got} is before the previous block's {prev}")]
    TimeBackwards {
        /// Previous block's time.
        prev: u64,
        /// This block's time.
        got: u64,
    },
    /// The block's time steps further than the genesis allows.
    #[error("block time {got} is more than {max_step} after {prev}")]
    TimeStepTooLarge {
        /// Previous block's time.
        prev: u64,
        /// This block's time.
        got: u64,
        /// Largest step.
        max_step: u64,
    },
    /// More transactions than the genesis allows.
    #[error("{count} transactions, at most {max}")]
    TooManyTxs {
        /// Transactions in the block.
        count: usize,
        /// The genesis limit.
        max: u32,
    },
    /// A dispute transaction after a non-dispute one.
    #[error("dispute transaction at index {index} after a non-dispute one")]
    DisputeAfterNonDispute {
        /// Index of the dispute.
        index: usize,
    },
    /// A transaction of the block is invalid at its position.
    #[error("transaction {index}: {error}")]
    Tx {
        /// Index in the block.
        index: usize,
        /// Why it is invalid.
        error: TxError,
    },
    /// The header's transaction root is not the root of its transactions.
    #[error("tx root mismatch")]
    TxRootMismatch,
    /// The header's log size is not the size after the block.
    #[error("log size {got}, expected {expected}")]
    LogSizeMismatch {
        /// Size after applying the block.
        expected: u64,
        /// The header's size.
        got: u64,
    },
    /// The header's log root is not the root after the block.
    #[error("log root mismatch")]
    LogRootMismatch,
    /// The header's state root is not the root after the block.
    #[error("state root mismatch")]
    StateRootMismatch,
    /// Building: the key given is not the genesis sequencer.
    #[error("{0:?} is not the sequencer of this ledger")]
    NotSequencer(PublicKey),
    /// A replica's clock rule, not a replay rule: the block's time is further ahead of the
    /// replica's own clock than `BLOCK_TIME_AHEAD_MS_MAX` allows.
    #[error("block time {time_ms} is {ahead_ms} ms ahead of this replica's clock (at most {max_ms})")]
    FromTheFuture {
        /// The block's time.
        time_ms: u64,
        /// How far ahead of the replica's clock it is.
        ahead_ms: u64,
        /// The bound.
        max_ms: u64,
    },
}

impl BlockError {
    /// What the refusal means for the peer that sent the block.
    pub fn class(&self) -> ErrorClass {
        match self {
            // A block from the future: fetch the missing ones first.
            BlockError::WrongHeight { expected, got } if got > expected => ErrorClass::Retryable,
            // An old block: we already have its height.
            BlockError::WrongHeight { .. } => ErrorClass::Rejected,
            BlockError::NotSequencer(_) => ErrorClass::Rejected,
            // Our clock may be behind: the same block may apply a few seconds later.
            BlockError::FromTheFuture { .. } => ErrorClass::Retryable,
            _ => ErrorClass::Violation,
        }
    }
}

/// Why a genesis is not acceptable.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum GenesisError {
    /// The network name is too long.
    #[error("network name of {len} bytes, at most {max}")]
    NetworkNameTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The unit's name or symbol is empty, too long, or holds a character it may not.
    #[error("unit {field} {value:?}: {reason}")]
    BadUnit {
        /// `name` or `symbol`.
        field: &'static str,
        /// What it is.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Too many witnesses.
    #[error("{count} witnesses, at most {max}")]
    TooManyWitnesses {
        /// Witnesses named.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A witness is named twice.
    #[error("witness {0:?} named twice")]
    DuplicateWitness(PublicKey),
    /// The sequencer is also a witness, so it could witness its own checkpoints.
    #[error("the sequencer cannot be a witness")]
    SequencerIsWitness,
    /// The threshold exceeds the number of witnesses, or is zero while there are witnesses.
    #[error("witness threshold {threshold} with {witnesses} witnesses")]
    BadThreshold {
        /// The threshold.
        threshold: u32,
        /// Witnesses named.
        witnesses: usize,
    },
    /// A period is zero.
    #[error("{0} must be positive")]
    ZeroPeriod(&'static str),
    /// The timing parameters do not nest: `block_interval <= heartbeat_interval <= max_time_step`
    /// must hold, or ledger time could not keep up with the heartbeat.
    #[error("need block_interval_ms <= heartbeat_interval_ms <= max_time_step_ms")]
    TimingOrder,
    /// `max_txs_per_block` is zero or above the protocol ceiling.
    #[error("max_txs_per_block {got} not in 1..={max}")]
    TxsPerBlock {
        /// The genesis value.
        got: u32,
        /// The protocol ceiling.
        max: usize,
    },
    /// `max_pending_per_account` is zero.
    #[error("max_pending_per_account must be positive")]
    ZeroPendingLimit,
    /// The challenge window spans too few time steps: after a sequencer outage it could pass
    /// in a handful of blocks, before a watchtower has reconnected.
    #[error("challenge_period_ms {challenge_period_ms} is under {steps_min} x max_time_step_ms {max_time_step_ms}")]
    ChallengeTooShort {
        /// The genesis window.
        challenge_period_ms: u64,
        /// The genesis largest step.
        max_time_step_ms: u64,
        /// Steps a window must span at least.
        steps_min: u64,
    },
    /// The fee of the largest transaction would not fit `u64`.
    #[error("tx_fee_min + tx_fee_per_byte x TX_BYTES_MAX overflows")]
    FeeOverflow,
    /// Too many allocations.
    #[error("{count} allocations, at most {max}")]
    TooManyAllocations {
        /// Allocations given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Allocation keys are not strictly increasing.
    #[error("allocation {index} is not after the previous key")]
    AllocationsNotSorted {
        /// Index of the offending allocation.
        index: usize,
    },
    /// An allocation of zero.
    #[error("allocation {index} is zero")]
    ZeroAllocation {
        /// Index of the offending allocation.
        index: usize,
    },
    /// The allocations sum to more than `u64::MAX`.
    #[error("allocations overflow u64")]
    SupplyOverflow,
}

/// Why a checkpoint, a cosignature or a consistency check was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint names another chain (or two checkpoints name different chains).
    #[error("checkpoint of chain {got}, expected {expected}")]
    WrongChain {
        /// Expected chain id.
        expected: Hash32,
        /// Chain id of the checkpoint.
        got: Hash32,
    },
    /// The sequencer's signature does not verify.
    #[error("invalid sequencer signature")]
    BadSequencerSignature,
    /// More cosignatures than the protocol allows.
    #[error("{count} cosignatures, at most {max}")]
    TooManyCosignatures {
        /// Cosignatures carried.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A cosigner that is not a genesis witness.
    #[error("{0:?} is not a witness")]
    NotAWitness(PublicKey),
    /// A witness cosigned twice.
    #[error("witness {0:?} appears twice")]
    DuplicateWitness(PublicKey),
    /// A cosignature that does not verify.
    #[error("invalid cosignature of {0:?}")]
    BadCosignature(PublicKey),
    /// The newer checkpoint has a lower height than the older one.
    #[error("height went from {older} to {newer}")]
    HeightRegressed {
        /// Older height.
        older: u64,
        /// Newer height.
        newer: u64,
    },
    /// Two different checkpoints for one height: the sequencer equivocated.
    #[error("two different checkpoints at height {height}")]
    Equivocation {
        /// The height.
        height: u64,
    },
    /// The consistency proof does not hold.
    #[error("inconsistent logs: {0}")]
    Inconsistent(MerkleError),
}

impl CheckpointError {
    /// What the refusal means for the peer that sent the checkpoint.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Violation
    }
}

/// Why an inclusion or consistency proof could not be produced.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ProofError {
    /// No transaction with this id is in the log.
    #[error("unknown transaction {0}")]
    UnknownTx(Hash32),
    /// The transaction is in the log, but not within the first `size` leaves.
    #[error("transaction at index {index} is not within a log of size {size}")]
    NotInPrefix {
        /// Its log index.
        index: u64,
        /// The size asked for.
        size: u64,
    },
    /// The sizes are out of range for this log.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// Any error of this crate.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Error {
    /// A genesis was refused.
    #[error("genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// A transaction was refused.
    #[error("transaction: {0}")]
    Tx(#[from] TxError),
    /// A block was refused.
    #[error("block: {0}")]
    Block(#[from] BlockError),
    /// A checkpoint was refused.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A proof could not be produced.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
}

impl Error {
    /// What the refusal means for whoever supplied the input.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Genesis(_) => ErrorClass::Violation,
            Error::Tx(e) => e.class(),
            Error::Block(e) => e.class(),
            Error::Checkpoint(e) => e.class(),
            // Asking for something the log does not have is not an offence.
            Error::Proof(_) => ErrorClass::Rejected,
        }
    }
}

/// A chain that failed to replay: the height of the first bad block (0 for the genesis) and
/// why.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("at height {height}: {error}")]
pub struct ChainError {
    /// Height the failing block should have had (its position), or 0 for the genesis.
    pub height: u64,
    /// The failure.
    pub error: Error,
}

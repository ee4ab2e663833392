//! # paychan-ledger
//!
//! The ledger rules as a pure, deterministic state machine: genesis validation, the nine
//! transaction kinds, block building (sequencer) and verification (replicas, auditors),
//! checkpoints and their witnessing, the mempool, and chain replay.
//!
//! ## Layout
//! - [`state`]: [`LedgerState`] (accounts, channels, credit, the transaction log) and the state root.
//! - [`tx`]: the transaction rules ([`LedgerState::apply_tx`], [`LedgerState::check_tx`]).
//! - [`block`]: [`LedgerState::produce_block`] / [`LedgerState::build_block`],
//!   [`LedgerState::apply_block`], [`verify_chain`], [`next_block_time`].
//! - [`checked`]: signatures checked ahead, in batches on every core ([`CheckedTx`],
//!   [`CheckedBlock`]).
//! - [`checkpoint`]: [`verify_checkpoint`], [`add_cosignature`],
//!   [`verify_checkpoint_consistency`].
//! - [`mempool`]: the sequencer's [`Mempool`].
//! - [`genesis`]: the genesis rules, [`validate_genesis`].
//! - [`error`]: every refusal, each with an [`ErrorClass`].
//! - `testkit` (feature `testkit`): funded test networks and transaction builders.
//!
//! **Architecture invariants**
//! - No I/O, no clock, no randomness, no async: time and keys are arguments. The same inputs
//!   give the same state, byte for byte, on every machine. Only [`checked`] uses threads
//!   (rayon), and its answers do not depend on them.
//! - Amounts are `u64` and every sum is checked; balances plus deposits of live channels equal
//!   the genesis supply after every transaction ([`LedgerState::total_value`]).
//! - No input panics. A refused transaction or block changes nothing. A panic here is a broken
//!   internal invariant, i.e. a bug.

#![warn(missing_docs)]

pub mod block;
pub mod checked;
pub mod checkpoint;
pub mod error;
pub mod genesis;
mod log;
pub mod mempool;
pub mod state;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tx;

pub use block::{next_block_time, verify_chain, BuiltBlock, Signatures};
pub use checked::{CheckedBlock, CheckedTx};
pub use checkpoint::{add_cosignature, verify_checkpoint, verify_checkpoint_consistency, CheckpointStatus};
pub use error::{
    BlockError, ChainError, CheckpointError, Error, ErrorClass, GenesisError, ProofError, TxError,
};
pub use genesis::validate_genesis;
pub use mempool::Mempool;
pub use state::{Account, ChannelEntry, ChannelStatus, CreditLine, Debt, InclusionProof, LedgerState};
pub use tx::{fee_for_len, fee_payer, tx_fee, TxEffect};

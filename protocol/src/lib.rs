//! # paychan-protocol
//!
//! Every type that crosses a process boundary or is hashed or signed, and the rules for its
//! bytes. PROTOCOL.md is the normative description; the golden vectors under `vectors/` and in
//! the tests hold this crate to it.
//!
//! ## Layout
//! - [`hash`]: `Hash32`, domain tags, tagged SHA-256.
//! - [`crypto`]: keys, signatures, the one validity rule (ZIP-215) for single and batch checks.
//! - [`codec`]: canonical postcard encoding; bounded, strict decoding.
//! - [`merkle`]: the RFC 6962 / RFC 9162 Merkle tree, proofs and their verification.
//! - [`channel`]: channel open, balance proofs, memos, cooperative close, payout rule.
//! - [`ledger`]: genesis, transactions, block headers, checkpoints, cosignatures.
//! - [`note`]: checkpoints as C2SP signed notes, cosignatures (v1), verifier keys, tlog-proof.
//! - [`wire`]: protocol ids, messages, framing, and the `Wire` decoding trait.
//! - [`limits`]: every limit as a named constant.
//!
//! **Architecture invariant**: this crate does no I/O, reads no clock and draws no randomness
//! except in [`crypto::Keypair::generate`], which a caller invokes explicitly.

pub mod channel;
pub mod codec;
pub mod crypto;
pub mod hash;
pub mod ledger;
pub mod limits;
pub mod merkle;
pub mod note;
mod pay_frame;
pub mod wire;

pub use channel::{BalanceProof, ChannelId, ChannelOpen, Direction, Payment, SignedProof};
pub use codec::DecodeError;
pub use crypto::{Keypair, PublicKey, Signature, SignatureError};
pub use hash::Hash32;
pub use ledger::{Block, BlockHeader, Checkpoint, Cosignature, Genesis, SignedCheckpoint, Tx, Unit};
pub use note::{parse_checkpoint_note, NoteError, TlogProof, VerifierKey};
pub use wire::Wire;

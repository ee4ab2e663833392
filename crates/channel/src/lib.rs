//! # paychan-channel
//!
//! The channel state machine, from one party's view: the **holder** (the party whose node
//! runs it) and the **counterparty**. Party A proposed the open; `Direction::AToB` means A
//! pays. Events go in (a payment to make, a message from the peer, a persist completed, a
//! connection change, a ledger event); updates to persist and messages to send come out.
//!
//! **Architecture invariant**: no I/O, no clock, no randomness of its own, no async. Salts,
//! keys and ledger time are passed in. Nothing a peer sends can make it panic: every refusal
//! is a [`ChannelError`] whose [`ErrorClass`] tells *retry* from *refused* from *protocol
//! violation*, and leaves the channel unchanged.
//!
//! ## Layout
//! - [`open`]: the three-message open negotiation, ending in a `SignedOpen`.
//! - [`Channel`]: one channel; pay (payer), receive (payee), acks, reestablish, closes.
//! - [`state`]: [`PersistedChannel`], what survives a restart.
//! - [`error`]: [`ChannelError`] and [`ErrorClass`].
//!
//! ## Life of a channel
//! 1. [`open::OpenProposal`] / [`open::accept_open`] produce a `SignedOpen`;
//!    [`Channel::new`] makes a channel in status `Pending`; the node persists its
//!    [`Channel::snapshot`] and calls [`Channel::on_open_confirmed`] once an applied block
//!    holds the open.
//! 2. On every connection: [`Channel::peer_connected`] gives the `Reestablish` to send;
//!    the peer's `Reestablish` goes to [`Channel::handle_message`] (or
//!    [`Channel::on_reestablish`]) and yields the proofs to retransmit.
//! 3. The payer calls [`Channel::pay`] / [`Channel::pay_many`] (or [`Channel::pay_run`] for
//!    a run of proofs whose signatures a [`ProofSigner`] may make on several threads) and
//!    sends each proof with its payments; the payee calls [`Channel::receive`] per burst, persists, and
//!    [`Channel::persisted`] returns the `Ack`, which the payer feeds to [`Channel::on_ack`].
//! 4. Close: [`Channel::propose_close`] / [`Channel::on_close_propose`] /
//!    [`Channel::on_close_sign`], or [`Channel::unilateral_close_tx`]; answer a close on the
//!    ledger with [`Channel::answer_close`].
//!
//! ## Persist before you send
//! The node persists by writing [`Channel::snapshot`] (a small fixed-size record; one write
//! can cover many channels and many bursts: group commit) and then calling
//! [`Channel::persisted`] with what it wrote. [`Channel::persist_needs`] says whether and how
//! urgently. Three things wait for durability:
//! - **Seq reservation** (payer): the holder signs only seqs up to the durable bound
//!   `seq_reserved`. The next bound (`+ SEQ_RESERVATION`) is requested when half of the
//!   current range is used, so in steady state the write happens in the background; if it is
//!   not durable in time, `pay` returns the retryable [`ChannelError::NeedsReservation`].
//! - **Incoming proofs** (payee): the newest proof of each verified burst is acked only once
//!   durable, so a payee can always settle at least what it acked.
//! - **Reestablish** (payee): see below.
//!
//! The newest acked own proof and status changes are stored lazily with the next snapshot.
//!
//! **Spending rule, durably**: the payer may raise its total only while
//! `deposit + received - transferred >= 0`, where *received* is the newest **durable**
//! incoming proof, not merely the newest verified one. Counting a verified but not yet
//! durable proof would let a crash of both parties leave the holder's signed total above
//! what it can prove it received (the peer's proof was lost with both memories) — a
//! negative balance. The verified proof becomes spendable one group commit later.
//!
//! ## Reestablish (BOLT 2 `channel_reestablish` style)
//! On every new connection and after a restore, each side sends
//! `Reestablish { newest_from_you }`: the newest proof it holds **durably** from the other.
//! The rule chosen: a holder first persists every verified incoming proof, and only then
//! sends its Reestablish ([`Channel::peer_connected`] returns `None` until
//! [`Channel::persisted`] returns the Reestablish). So what it reports is also its newest
//! verified proof, and the peer's next proof links to exactly that.
//!
//! - *Incoming side*: after sending its Reestablish, the holder accepts proofs that follow
//!   the reported one.
//! - *Outgoing side*, on the peer's Reestablish: the holder checks its own signature on the
//!   reported proof; a report older than what the peer already acked is a violation. A holder
//!   that did not restart counts everything up to the report as acked and retransmits its
//!   unacked proofs above it, in order. A restored holder continues from the newer of its
//!   stored acked proof and the reported one, in a *fresh* seq range above its stored
//!   reservation bound (and above the reported seq): the proofs it signed after the last
//!   durable point are lost to both sides, and their seqs are never signed again.
//! - Until the peer's Reestablish arrives the holder signs nothing (`NotReestablished`); a
//!   restored holder also takes no payments, since it cannot check the spending rule against
//!   its own unknown newest proof.
//!
//! ## Invariants the tests hold
//! - Balances from either view sum to the channel total; the payer's own balance is never
//!   negative; no payout is clamped when each side submits its newest proofs.
//! - A payer never signs two different proofs with one (channel, direction, seq).
//! - After any crash, a payee's durable incoming proof is at least what it acked.

pub mod channel;
pub mod error;
pub mod open;
pub mod state;
mod window;

pub use channel::{
    Acked, Channel, Handled, InlineSigner, PayRun, Payouts, PersistNeeds, ProofSigner, Received, VerifyMode,
    UNPERSISTED_BURSTS_MAX,
};
pub use error::{ChannelError, ErrorClass};
pub use state::{ChannelStatus, CloseState, PersistedChannel, PERSISTED_FORMAT_VERSION};

//! The crate's one error type, and the three things a caller can do about an error.

use paychan_protocol::channel::ChannelId;
use paychan_protocol::Hash32;

use crate::state::ChannelStatus;

/// What the caller should do about a [`ChannelError`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorClass {
    /// Nothing is wrong: try again once the condition clears (a persist completes, acks
    /// arrive, reestablish completes, the open is confirmed).
    Retry,
    /// The request does not fit the channel's state or the holder's own rules (not enough
    /// funds, channel closing, a bad argument, a persist callback that was never asked for).
    /// Not the peer's fault; retrying the same request will not help.
    Refused,
    /// The peer sent something the protocol forbids. The channel state is unchanged; the node
    /// may cut the peer off (a bad signature proves the peer is faulty or hostile).
    Violation,
}

/// Why the channel refused an event. Every error leaves the channel exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    // ----- Retry -----
    /// The payer holds [`paychan_protocol::limits::UNACKED_PROOFS_MAX`] unacknowledged proofs.
    #[error("{unacked} proofs wait for an ack: the window is full")]
    WindowFull {
        /// Proofs in flight.
        unacked: usize,
    },
    /// The next seq lies beyond the durably reserved bound. Persist [`crate::Channel::snapshot`]
    /// (or the bound alone) and call [`crate::Channel::reservation_persisted`] with `up_to`.
    #[error("the next seq is not durably reserved: persist the reservation up to {up_to}")]
    NeedsReservation {
        /// The bound to make durable.
        up_to: u64,
    },
    /// The Reestablish exchange of the current connection has not finished (or there is no
    /// connection, or the channel was restored and has not reestablished yet).
    #[error("the channel has not reestablished with its peer on this connection")]
    NotReestablished,
    /// Too many verified bursts wait to be persisted; persist before receiving more.
    #[error("{pending} verified bursts wait to be persisted")]
    PersistBacklog {
        /// Bursts waiting.
        pending: usize,
    },
    /// A cooperative close needs every outgoing proof acknowledged first.
    #[error("{unacked} outgoing proofs are not acknowledged yet")]
    UnackedProofs {
        /// Proofs in flight.
        unacked: usize,
    },
    /// The channel is not in a status that allows this; retryable only while it is
    /// [`ChannelStatus::Pending`] (the open is not in an applied block yet).
    #[error("the channel is {status}")]
    Status {
        /// The channel's status.
        status: ChannelStatus,
    },

    // ----- Refused -----
    /// The payer's spending rule: `deposit + received (durable) - transferred >= 0`.
    #[error("insufficient funds: {available} spendable, {amount} asked")]
    InsufficientFunds {
        /// What the holder may still pay.
        available: u64,
        /// What was asked.
        amount: u64,
    },
    /// A debtor's proofs go beyond its deposit + what the holder paid it + the credit line the
    /// holder extends: refused, not a violation (the debtor may not have seen the line lowered
    /// or expired yet).
    #[error("credit limit: transferred {transferred} exceeds deposit + received + line = {limit}")]
    CreditLimit {
        /// The total the proofs reach.
        transferred: u64,
        /// `deposit_peer + transferred_by_holder + line`.
        limit: u64,
    },
    /// A cooperative close records no debt, so it is refused while one party has paid on
    /// credit: close unilaterally and the settlement records the debt.
    #[error("{owed} paid on credit: a cooperative close would drop the debt; close unilaterally")]
    CreditInUse {
        /// What the debtor would owe.
        owed: u64,
    },
    /// An amount sum overflowed u64.
    #[error("amount overflow")]
    AmountOverflow,
    /// A proof must carry between 1 and `MEMO_PAYMENTS_MAX` payments.
    #[error("a proof carries 1..={max} payments, not {len}")]
    MemoLength {
        /// Payments given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The seq space of this direction is used up (after 2^64 proofs: never in practice).
    #[error("seq space exhausted")]
    SeqExhausted,
    /// The keypair is not a party of the channel, or the stored state belongs elsewhere.
    #[error("the keypair is not a party of this channel")]
    NotAParty,
    /// The open (proposed or given) breaks a rule or the holder's policy.
    #[error("open refused: {0}")]
    OpenRefused(&'static str),
    /// A persist callback reported something the channel never asked to persist.
    #[error("unexpected persist callback: {0}")]
    UnexpectedPersist(&'static str),
    /// Stored state cannot be restored.
    #[error("stored channel state is invalid: {0}")]
    BadStoredState(&'static str),
    /// There is no connection to send on.
    #[error("not connected to the peer")]
    NotConnected,
    /// A cooperative close proposal gives the holder less than its own view.
    #[error("close proposal offers {offered}, the holder's view is {expected}")]
    CloseUnacceptable {
        /// What the proposal gives the holder.
        offered: u64,
        /// What the holder's view gives it.
        expected: u64,
    },

    // ----- Violation -----
    /// A signature does not verify under the one validity rule.
    #[error("bad signature")]
    BadSignature,
    /// The object names another ledger.
    #[error("wrong chain id {got:?}")]
    WrongChain {
        /// The chain id received.
        got: Hash32,
    },
    /// The object names another channel.
    #[error("wrong channel {got:?}")]
    WrongChannel {
        /// The channel id received.
        got: ChannelId,
    },
    /// The proof is of the holder's own direction where the peer's was expected, or vice versa.
    #[error("wrong direction")]
    WrongDirection,
    /// A proof's seq is not above the previous one.
    #[error("seq {got} does not increase on {last}")]
    SeqNotIncreasing {
        /// The previous seq.
        last: u64,
        /// The seq received.
        got: u64,
    },
    /// A proof's transferred total is below the previous one.
    #[error("transferred {got} decreases from {last}")]
    AmountDecreased {
        /// The previous total.
        last: u64,
        /// The total received.
        got: u64,
    },
    /// A proof's `prev` is not the hash of the proof it follows.
    #[error("proof {seq} does not link to the previous proof")]
    BadPrevLink {
        /// The proof's seq.
        seq: u64,
    },
    /// A proof's memo does not match its payments, or its payments do not sum to its increase.
    #[error("proof {seq}: memo does not match its payments")]
    MemoMismatch {
        /// The proof's seq.
        seq: u64,
    },
    /// The peer paid more than its deposit plus what the holder has paid it.
    #[error("overspend: transferred {transferred} exceeds the peer's limit {limit}")]
    Overspend {
        /// The total received.
        transferred: u64,
        /// `deposit_peer + transferred_by_holder`.
        limit: u64,
    },
    /// A pay frame with no proofs or more than `PAY_PROOFS_MAX`.
    #[error("malformed burst: {0}")]
    BadBurst(&'static str),
    /// An ack names a proof the holder did not sign, or with a different hash.
    #[error("ack of seq {seq} matches no proof in flight")]
    BadAck {
        /// The acked seq.
        seq: u64,
    },
    /// The peer reports an older proof than one it already acknowledged: it lost data it
    /// promised was durable.
    #[error("peer reports seq {reported} below its ack of seq {acked}")]
    ReestablishBehind {
        /// Seq reported.
        reported: u64,
        /// Seq it had acknowledged.
        acked: u64,
    },
    /// The peer reports a proof that is not the holder's proof at that seq.
    #[error("reported proof {seq} is not the holder's proof at that seq")]
    ReestablishMismatch {
        /// Seq reported.
        seq: u64,
    },
    /// The other party's open differs from the proposal in more than B's salt.
    #[error("the accepted open is not the proposal")]
    OpenMismatch,
    /// A cooperative close whose balances do not sum to the channel total.
    #[error("close balances do not sum to the channel total")]
    CloseBalanceMismatch,
    /// A message that makes no sense in the channel's state.
    #[error("unexpected message: {0}")]
    UnexpectedMessage(&'static str),
}

impl ChannelError {
    /// Which of retry / refused / violation this is.
    pub fn class(&self) -> ErrorClass {
        use ChannelError::*;
        match self {
            WindowFull { .. } | NeedsReservation { .. } | NotReestablished | PersistBacklog { .. } => {
                ErrorClass::Retry
            }
            UnackedProofs { .. } => ErrorClass::Retry,
            Status { status } if *status == ChannelStatus::Pending => ErrorClass::Retry,
            Status { .. }
            | InsufficientFunds { .. }
            | CreditLimit { .. }
            | CreditInUse { .. }
            | AmountOverflow
            | MemoLength { .. }
            | SeqExhausted
            | NotAParty
            | OpenRefused(_)
            | UnexpectedPersist(_)
            | BadStoredState(_)
            | NotConnected
            | CloseUnacceptable { .. } => ErrorClass::Refused,
            BadSignature
            | WrongChain { .. }
            | WrongChannel { .. }
            | WrongDirection
            | SeqNotIncreasing { .. }
            | AmountDecreased { .. }
            | BadPrevLink { .. }
            | MemoMismatch { .. }
            | Overspend { .. }
            | BadBurst(_)
            | BadAck { .. }
            | ReestablishBehind { .. }
            | ReestablishMismatch { .. }
            | OpenMismatch
            | CloseBalanceMismatch
            | UnexpectedMessage(_) => ErrorClass::Violation,
        }
    }

    /// True if trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retry
    }

    /// True if the peer broke the protocol.
    pub fn is_violation(&self) -> bool {
        self.class() == ErrorClass::Violation
    }
}

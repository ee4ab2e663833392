//! [`Channel`]: one channel seen from one party (the holder), with its construction, restore,
//! accessors, persistence callbacks and connection events. The event handlers live in the
//! submodules: `pay` (payer side), `receive` (payee side), `reestablish`, `close` and `handle`.

mod close;
mod handle;
mod pay;
mod receive;
mod reestablish;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use paychan_protocol::channel::{settle_payouts, ChannelId, SignedOpen};
use paychan_protocol::limits::SEQ_RESERVATION;
use paychan_protocol::wire::{ChannelMsg, PayItem};
use paychan_protocol::{Direction, Hash32, Keypair, PublicKey, SignedProof};

use crate::error::ChannelError;
use crate::state::{ChannelStatus, CloseState, PersistedChannel, PERSISTED_FORMAT_VERSION};
use crate::window::Window;

pub use close::Payouts;
pub use handle::Handled;
pub use pay::{Acked, InlineSigner, PayRun, ProofSigner};
pub use receive::Received;

/// Most received bursts that may wait for persistence before `receive` asks the node to
/// persist first ([`ChannelError::PersistBacklog`]). One entry per burst, not per payment.
pub const UNPERSISTED_BURSTS_MAX: usize = 1024;

/// How [`Channel::receive`] checks signatures of a burst.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum VerifyMode {
    /// One signature check, on the newest proof of the burst: the prev-hash chain binds the
    /// earlier proofs to it, and only the newest proof is kept, acked and submitted.
    #[default]
    Newest,
    /// Every proof's signature, in one [`paychan_protocol::crypto::BatchVerifier`] batch (same
    /// validity rule as a single check). Costs more; useful when every proof is stored.
    All,
}

/// What the channel wants made durable. The node writes [`Channel::snapshot`] and reports it
/// with [`Channel::persisted`]; these flags say whether (and how urgently) to do so.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PersistNeeds {
    /// A seq reservation bound waits to be made durable. Signing stops once the current
    /// reservation is used up (it is requested when half of it is left).
    pub reservation: Option<u64>,
    /// The newest verified incoming proof is not durable yet: its ack (or a Reestablish)
    /// waits for it.
    pub incoming_seq: Option<u64>,
    /// A newer acked own proof could be stored. Lazy: nothing waits for it.
    pub acked_own_seq: Option<u64>,
    /// The status or close state changed.
    pub meta: bool,
}

impl PersistNeeds {
    /// True if anything differs from the last durable snapshot.
    pub fn any(&self) -> bool {
        self.reservation.is_some() || self.incoming_seq.is_some() || self.acked_own_seq.is_some() || self.meta
    }

    /// True if progress (signing, acking, reestablishing, a close) waits for a persist.
    pub fn urgent(&self) -> bool {
        self.reservation.is_some() || self.incoming_seq.is_some() || self.meta
    }
}

/// A close state as the channel holds it: nothing for [`CloseState::None`].
fn boxed_close(close: CloseState) -> Option<Box<CloseState>> {
    match close {
        CloseState::None => None,
        c => Some(Box::new(c)),
    }
}

/// Sets a kept proof, reusing its box. Proofs are kept boxed: most of a node's channels sit
/// idle, and a channel that never received or acked a proof then holds no room for three
/// (about 650 bytes of each channel's inline state).
fn keep<T>(slot: &mut Option<Box<T>>, value: T) {
    match slot {
        Some(b) => **b = value,
        None => *slot = Some(Box::new(value)),
    }
}

/// The holder's outgoing direction: the proofs it signs.
#[derive(Debug)]
struct Outgoing {
    /// Seq of the next proof.
    next_seq: u64,
    /// Transferred total of the newest signed proof.
    transferred: u64,
    /// Hash of the newest signed proof; the channel id before the first.
    last_hash: Hash32,
    /// Highest seq that may be signed: durably reserved.
    seq_durable: u64,
    /// A larger bound asked for and not yet reported durable.
    seq_requested: Option<u64>,
    /// Signed, not yet acknowledged.
    window: Window,
    /// Newest acknowledged proof and its hash.
    acked: Option<Box<(SignedProof, Hash32)>>,
    /// Seq of the acked proof the node last stored.
    acked_durable_seq: u64,
    /// Restored from storage and not reestablished since: the newest signed proof is unknown
    /// (only `acked` and the reservation bound are), so nothing may be signed or checked
    /// against it.
    restored: bool,
    /// The peer's Reestablish of the current connection arrived.
    ready: bool,
}

/// The holder's incoming direction: the proofs the counterparty signs.
#[derive(Debug)]
struct Incoming {
    /// Newest verified proof.
    newest: Option<Box<SignedProof>>,
    /// Its hash; the channel id before the first.
    hash: Hash32,
    /// Its seq (0 before the first).
    seq: u64,
    /// Its transferred total (0 before the first).
    transferred: u64,
    /// Newest durable proof: what the holder acks, reports and counts as received.
    durable: Option<Box<SignedProof>>,
    /// Newest proof of each verified burst that is not yet durable, with its hash.
    unpersisted: VecDeque<(SignedProof, Hash32)>,
    /// The holder's Reestablish of the current connection was sent.
    ready: bool,
}

/// One payment channel from the holder's point of view: a pure state machine.
///
/// It takes no action except when called: every method takes an event (a payment to make,
/// a message from the peer, a persist completed, a connection change) and returns what to
/// send or what to persist. It never does I/O, never reads a clock and draws no randomness.
/// Every error leaves it exactly as it was.
pub struct Channel {
    /// Also the source of the chain id and the counterparty's key (not kept twice: a node
    /// holds many channels).
    signed_open: SignedOpen,
    id: ChannelId,
    /// The holder's outgoing direction (A to B when the holder is A).
    out_dir: Direction,
    /// Shared by every channel of one key (a key is about 320 bytes; a node holds many channels).
    keypair: Arc<Keypair>,
    deposit_holder: u64,
    deposit_counterparty: u64,
    total: u64,
    status: ChannelStatus,
    /// The close in progress; `None` for [`CloseState::None`] (boxed: most channels never close
    /// while a node holds them, and the state of a close is about 200 bytes).
    closing: Option<Box<CloseState>>,
    /// Status or close state changed since the last durable snapshot.
    meta_dirty: bool,
    out: Outgoing,
    inc: Incoming,
    connected: bool,
    verify_mode: VerifyMode,
    /// Credit the counterparty extends to the holder (a line on the ledger, in force now):
    /// the holder may pay this much beyond its deposit and what it received. Not persisted:
    /// the node sets it from the ledger.
    credit_out: u64,
    /// Credit the holder extends to the counterparty, if a line is recorded: it accepts the
    /// counterparty's proofs up to its deposit + what the holder paid it + this much.
    credit_in: Option<u64>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("holder", &self.keypair.public())
            .field("out_dir", &self.out_dir)
            .field("status", &self.status)
            .field("out_next_seq", &self.out.next_seq)
            .field("out_transferred", &self.out.transferred)
            .field("unacked", &self.out.window.len())
            .field("in_seq", &self.inc.seq)
            .field("in_transferred", &self.inc.transferred)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

// A node moves channels between tasks and threads.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Channel>();
};

/// Resolves which party `keypair` is (its outgoing direction) and the deposits from its side;
/// the counterparty's key is then [`Channel::counterparty_key`], read from the open.
fn holder_side(open: &SignedOpen, keypair: &Keypair) -> Result<(Direction, u64, u64), ChannelError> {
    let o = &open.open;
    let me = keypair.public();
    if me == o.party_a && me != o.party_b {
        Ok((Direction::AToB, o.deposit_a, o.deposit_b))
    } else if me == o.party_b && me != o.party_a {
        Ok((Direction::BToA, o.deposit_b, o.deposit_a))
    } else {
        Err(ChannelError::NotAParty)
    }
}

/// The reservation bound that follows `from`: `from + SEQ_RESERVATION`, capped at u64::MAX.
fn next_bound(from: u64) -> u64 {
    from.saturating_add(SEQ_RESERVATION)
}

impl Channel {
    /// A new channel from the open both parties signed, in status
    /// [`ChannelStatus::Pending`]. Checks both signatures. The node persists
    /// [`Channel::snapshot`] (which carries the first seq reservation) right away.
    pub fn new(signed_open: SignedOpen, keypair: impl Into<Arc<Keypair>>) -> Result<Channel, ChannelError> {
        signed_open.verify().map_err(|_| ChannelError::BadSignature)?;
        let mut ch = Channel::build(signed_open, keypair, ChannelStatus::Pending, CloseState::None)?;
        ch.meta_dirty = true;
        ch.maybe_request_reservation();
        Ok(ch)
    }

    fn build(
        signed_open: SignedOpen,
        keypair: impl Into<Arc<Keypair>>,
        status: ChannelStatus,
        close: CloseState,
    ) -> Result<Channel, ChannelError> {
        let keypair = keypair.into();
        let (out_dir, deposit_holder, deposit_counterparty) = holder_side(&signed_open, &keypair)?;
        let total = signed_open
            .open
            .total()
            .ok_or(ChannelError::OpenRefused("deposits overflow"))?;
        let id = signed_open.open.channel_id();
        Ok(Channel {
            signed_open,
            id,
            out_dir,
            keypair,
            deposit_holder,
            deposit_counterparty,
            total,
            status,
            closing: boxed_close(close),
            meta_dirty: false,
            out: Outgoing {
                next_seq: 1,
                transferred: 0,
                last_hash: id.0,
                seq_durable: 0,
                seq_requested: None,
                window: Window::default(),
                acked: None,
                acked_durable_seq: 0,
                restored: false,
                ready: false,
            },
            inc: Incoming {
                newest: None,
                hash: id.0,
                seq: 0,
                transferred: 0,
                durable: None,
                unpersisted: VecDeque::new(),
                ready: false,
            },
            connected: false,
            verify_mode: VerifyMode::default(),
            credit_out: 0,
            credit_in: None,
        })
    }

    /// Rebuilds a channel after a restart from the last durable snapshot.
    ///
    /// The channel comes back disconnected and *must reestablish*: it signs nothing and
    /// accepts no payment until the Reestablish exchange of a new connection (see
    /// [`crate`]'s "Reestablish" section). Its next outgoing seq lies strictly above the
    /// stored reservation bound, so no seq that may have been signed before the restart is
    /// ever signed again.
    pub fn restore(
        persisted: PersistedChannel,
        keypair: impl Into<Arc<Keypair>>,
    ) -> Result<Channel, ChannelError> {
        if persisted.format != PERSISTED_FORMAT_VERSION {
            return Err(ChannelError::BadStoredState("unknown format version"));
        }
        let PersistedChannel {
            signed_open,
            status,
            seq_reserved,
            acked_own,
            incoming,
            close,
            ..
        } = persisted;
        let mut ch = Channel::build(signed_open, keypair, status, close)?;
        let in_dir = ch.out_dir.reverse();
        if let Some(p) = &acked_own {
            ch.check_ids(p, ch.out_dir)
                .map_err(|_| ChannelError::BadStoredState("acked proof"))?;
            if p.proof.seq > seq_reserved {
                return Err(ChannelError::BadStoredState("acked proof above the reservation"));
            }
            ch.out.transferred = p.proof.transferred;
            let hash = p.proof.hash();
            ch.out.last_hash = hash;
            keep(&mut ch.out.acked, (*p, hash));
            ch.out.acked_durable_seq = p.proof.seq;
        }
        if let Some(p) = &incoming {
            ch.check_ids(p, in_dir)
                .map_err(|_| ChannelError::BadStoredState("incoming proof"))?;
            keep(&mut ch.inc.newest, *p);
            ch.inc.hash = p.proof.hash();
            ch.inc.seq = p.proof.seq;
            ch.inc.transferred = p.proof.transferred;
            keep(&mut ch.inc.durable, *p);
        }
        ch.out.seq_durable = seq_reserved;
        ch.out.next_seq = seq_reserved.checked_add(1).ok_or(ChannelError::SeqExhausted)?;
        ch.out.restored = true;
        ch.maybe_request_reservation();
        Ok(ch)
    }

    // ----- identity and accessors -----

    /// The channel id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The chain id the channel lives on.
    pub fn chain_id(&self) -> Hash32 {
        self.signed_open.open.chain_id
    }

    /// The open both parties signed.
    pub fn signed_open(&self) -> &SignedOpen {
        &self.signed_open
    }

    /// The holder's key.
    pub fn holder_key(&self) -> PublicKey {
        self.keypair.public()
    }

    /// The counterparty's key.
    pub fn counterparty_key(&self) -> PublicKey {
        *self.counterparty()
    }

    /// The counterparty's key, borrowed from the open.
    fn counterparty(&self) -> &PublicKey {
        match self.out_dir {
            Direction::AToB => &self.signed_open.open.party_b,
            Direction::BToA => &self.signed_open.open.party_a,
        }
    }

    /// True if the holder is party A (the proposer of the open).
    pub fn holder_is_a(&self) -> bool {
        self.out_dir == Direction::AToB
    }

    /// The direction in which the holder pays.
    pub fn outgoing_direction(&self) -> Direction {
        self.out_dir
    }

    /// The direction in which the holder is paid.
    pub fn incoming_direction(&self) -> Direction {
        self.out_dir.reverse()
    }

    /// The channel's status.
    pub fn status(&self) -> ChannelStatus {
        self.status
    }

    /// The close in progress.
    pub fn close_state(&self) -> &CloseState {
        self.closing.as_deref().unwrap_or(&CloseState::None)
    }

    fn set_close(&mut self, close: CloseState) {
        self.closing = boxed_close(close);
    }

    /// True once the Reestablish exchange of the current connection is complete both ways.
    pub fn is_reestablished(&self) -> bool {
        self.connected && self.out.ready && self.inc.ready && !self.out.restored
    }

    /// Chooses how bursts are verified (not persisted; [`VerifyMode::Newest`] by default).
    pub fn set_verify_mode(&mut self, mode: VerifyMode) {
        self.verify_mode = mode;
    }

    /// The holder's deposit.
    pub fn holder_deposit(&self) -> u64 {
        self.deposit_holder
    }

    /// The counterparty's deposit.
    pub fn counterparty_deposit(&self) -> u64 {
        self.deposit_counterparty
    }

    /// Both deposits together: what the channel pays out in total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Transferred total of the holder's newest signed proof (all of it counts as paid).
    /// Until a restored channel reestablishes, this is only its newest stored acked proof.
    pub fn transferred_out(&self) -> u64 {
        self.out.transferred
    }

    /// Transferred total of the newest verified incoming proof.
    pub fn transferred_in(&self) -> u64 {
        self.inc.transferred
    }

    /// Transferred total of the newest durable incoming proof: what the spending rule counts.
    pub fn received_durable(&self) -> u64 {
        self.inc.durable.as_deref().map_or(0, |p| p.proof.transferred)
    }

    /// The newest verified incoming proof.
    pub fn newest_incoming(&self) -> Option<&SignedProof> {
        self.inc.newest.as_deref()
    }

    /// The newest durable incoming proof.
    pub fn durable_incoming(&self) -> Option<&SignedProof> {
        self.inc.durable.as_deref()
    }

    /// The newest outgoing proof the peer acknowledged.
    pub fn acked_outgoing(&self) -> Option<&SignedProof> {
        self.out.acked.as_deref().map(|(p, _)| p)
    }

    /// Seq of the next outgoing proof.
    pub fn next_seq(&self) -> u64 {
        self.out.next_seq
    }

    /// Outgoing proofs not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.out.window.len()
    }

    /// The unacknowledged outgoing proofs in seq order, as pay items (allocates).
    pub fn unacked_items(&self) -> Vec<PayItem> {
        self.out.window.items()
    }

    /// What the holder may still pay now: `deposit + received (durable) + credit - transferred`.
    pub fn spendable(&self) -> u64 {
        self.spend_limit().saturating_sub(self.out.transferred)
    }

    /// Highest outgoing total the spending rule allows: deposit + received (durable) + the
    /// credit line in force. Saturating is exact here: a limit above u64::MAX allows every
    /// u64 total.
    fn spend_limit(&self) -> u64 {
        self.deposit_holder
            .saturating_add(self.received_durable())
            .saturating_add(self.credit_out)
    }

    /// Highest incoming total the holder accepts: the counterparty's deposit + what the
    /// holder paid it + the line the holder extends to it.
    pub(super) fn receive_limit(&self) -> u64 {
        self.deposit_counterparty
            .saturating_add(self.out.transferred)
            .saturating_add(self.credit_in.unwrap_or(0))
    }

    /// Sets the credit lines in force on this channel, as the ledger records them (0 for an
    /// ended or expired line): `out` is what the counterparty lets the holder owe, `inc` what
    /// the holder lets the counterparty owe (`None`: no line). Lowering a line refuses payments
    /// beyond it from now on; what was paid stays paid.
    pub fn set_credit(&mut self, out: u64, inc: Option<u64>) {
        self.credit_out = out;
        self.credit_in = inc;
    }

    /// The credit lines in force: `(out, in)` as given to [`Channel::set_credit`].
    pub fn credit(&self) -> (u64, Option<u64>) {
        (self.credit_out, self.credit_in)
    }

    /// How far the holder's payments reach beyond its deposit and what it received (durably
    /// or not): what it would owe on credit if the channel settled now.
    pub fn credit_used_out(&self) -> u64 {
        self.out
            .transferred
            .saturating_sub(self.deposit_holder.saturating_add(self.inc.transferred))
    }

    /// How far the counterparty's verified payments reach beyond its deposit and what the
    /// holder paid it: what it would owe the holder on credit if the channel settled now.
    pub fn credit_used_in(&self) -> u64 {
        self.inc
            .transferred
            .saturating_sub(self.deposit_counterparty.saturating_add(self.out.transferred))
    }

    /// The balances from the holder's view: `(balance_a, balance_b)` with
    /// `balance_a = deposit_a - t_ab + t_ba` (newest signed outgoing, newest verified incoming),
    /// clamped to `0..=total` as the ledger does. Always `balance_a + balance_b == total()`.
    pub fn balances(&self) -> (u64, u64) {
        let o = &self.signed_open.open;
        let (t_ab, t_ba) = self.by_direction(self.out.transferred, self.inc.transferred);
        let (a, b) = settle_payouts(o.deposit_a, o.deposit_b, t_ab, t_ba);
        debug_assert_eq!(Some(self.total), a.checked_add(b));
        (a, b)
    }

    /// The holder's balance in its own view.
    pub fn holder_balance(&self) -> u64 {
        let (a, b) = self.balances();
        if self.holder_is_a() {
            a
        } else {
            b
        }
    }

    /// The counterparty's balance in the holder's view.
    pub fn counterparty_balance(&self) -> u64 {
        let (a, b) = self.balances();
        if self.holder_is_a() {
            b
        } else {
            a
        }
    }

    /// Orders an (outgoing, incoming) pair as (A to B, B to A).
    fn by_direction<T>(&self, out: T, inc: T) -> (T, T) {
        match self.out_dir {
            Direction::AToB => (out, inc),
            Direction::BToA => (inc, out),
        }
    }

    /// Checks that a proof is of this chain, this channel and direction `dir`.
    fn check_ids(&self, p: &SignedProof, dir: Direction) -> Result<(), ChannelError> {
        if p.proof.chain_id != self.chain_id() {
            return Err(ChannelError::WrongChain {
                got: p.proof.chain_id,
            });
        }
        if p.proof.channel_id != self.id {
            return Err(ChannelError::WrongChannel {
                got: p.proof.channel_id,
            });
        }
        if p.proof.direction != dir {
            return Err(ChannelError::WrongDirection);
        }
        Ok(())
    }

    fn check_channel_id(&self, id: ChannelId) -> Result<(), ChannelError> {
        if id != self.id {
            return Err(ChannelError::WrongChannel { got: id });
        }
        Ok(())
    }

    // ----- ledger events -----

    /// The node applied a block holding the open: the channel becomes usable.
    pub fn on_open_confirmed(&mut self) -> Result<(), ChannelError> {
        match self.status {
            ChannelStatus::Pending => {
                self.status = ChannelStatus::Open;
                self.meta_dirty = true;
                Ok(())
            }
            ChannelStatus::Open => Ok(()),
            status => Err(ChannelError::Status { status }),
        }
    }

    /// The node saw a close of this channel (cooperative or unilateral, by either party) in an
    /// applied block: no more payments either way.
    pub fn on_close_seen(&mut self) {
        if self.status != ChannelStatus::Closed && self.status != ChannelStatus::Closing {
            self.status = ChannelStatus::Closing;
            self.meta_dirty = true;
        }
    }

    /// The node saw the channel paid out (cooperative close applied, or settled).
    pub fn on_settled(&mut self) {
        if self.status != ChannelStatus::Closed {
            self.status = ChannelStatus::Closed;
            self.meta_dirty = true;
        }
    }

    // ----- persistence -----

    /// What differs from the last durable snapshot.
    pub fn persist_needs(&self) -> PersistNeeds {
        let acked_seq = self.out.acked.as_deref().map_or(0, |(p, _)| p.proof.seq);
        PersistNeeds {
            reservation: self.out.seq_requested,
            incoming_seq: self.inc.unpersisted.back().map(|(p, _)| p.proof.seq),
            acked_own_seq: (acked_seq > self.out.acked_durable_seq).then_some(acked_seq),
            meta: self.meta_dirty,
        }
    }

    /// Everything the channel wants durable now, including what waits to be persisted (the
    /// requested reservation, the newest verified incoming proof). Write it, sync, then call
    /// [`Channel::persisted`] with it. Never a heap allocation.
    pub fn snapshot(&self) -> PersistedChannel {
        PersistedChannel {
            format: PERSISTED_FORMAT_VERSION,
            signed_open: self.signed_open.clone(),
            status: self.status,
            seq_reserved: self.out.seq_requested.unwrap_or(self.out.seq_durable),
            acked_own: self.out.acked.as_deref().map(|(p, _)| *p),
            incoming: self.inc.newest.as_deref().copied(),
            close: self.close_state().clone(),
        }
    }

    /// Reports that `durable` (a snapshot taken from this channel) is now durable. Releases
    /// what waited for it: returns the `Ack` (or the `Reestablish` of a new connection) to
    /// send, if any.
    pub fn persisted(&mut self, durable: &PersistedChannel) -> Result<Option<ChannelMsg>, ChannelError> {
        if durable.signed_open != self.signed_open {
            return Err(ChannelError::UnexpectedPersist("snapshot of another channel"));
        }
        // Validate everything before changing anything.
        let reservation_ok = durable.seq_reserved <= self.out.seq_durable
            || self.out.seq_requested.is_some_and(|r| durable.seq_reserved <= r);
        if !reservation_ok {
            return Err(ChannelError::UnexpectedPersist("reservation never requested"));
        }
        let in_seq = durable.incoming.map(|p| p.proof.seq);
        if let Some(seq) = in_seq {
            self.find_unpersisted(seq)?;
        }
        self.reservation_persisted(durable.seq_reserved)?;
        if let Some(p) = durable.acked_own {
            self.out.acked_durable_seq = self.out.acked_durable_seq.max(p.proof.seq);
        }
        if durable.status == self.status && durable.close == *self.close_state() {
            self.meta_dirty = false;
        }
        match in_seq {
            Some(seq) => self.incoming_persisted(seq),
            None => Ok(None),
        }
    }

    /// Reports that the seq reservation bound `up_to` is durable: the holder may sign seqs up
    /// to it. A bound at or below the current one is a no-op.
    pub fn reservation_persisted(&mut self, up_to: u64) -> Result<(), ChannelError> {
        if up_to <= self.out.seq_durable {
            return Ok(());
        }
        match self.out.seq_requested {
            Some(r) if up_to <= r => {
                self.out.seq_durable = up_to;
                if up_to == r {
                    self.out.seq_requested = None;
                }
                self.maybe_request_reservation();
                Ok(())
            }
            _ => Err(ChannelError::UnexpectedPersist("reservation never requested")),
        }
    }

    /// Asks for the next reservation once half of the current one is used, so that in steady
    /// state the write happens in the background and signing never waits.
    fn maybe_request_reservation(&mut self) {
        if self.out.seq_requested.is_some() {
            return;
        }
        let last = self.out.next_seq.saturating_sub(1);
        let left = self.out.seq_durable.saturating_sub(last);
        if left < SEQ_RESERVATION / 2 {
            let bound = next_bound(self.out.seq_durable.max(last));
            if bound > self.out.seq_durable {
                self.out.seq_requested = Some(bound);
            }
        }
    }

    // ----- connection -----

    /// A new connection to the peer is up (also the first one). Both directions must
    /// reestablish on it. Returns the `Reestablish` to send, or `None` when verified incoming
    /// proofs must be persisted first: the Reestablish then comes from
    /// [`Channel::persisted`] / [`Channel::incoming_persisted`].
    pub fn peer_connected(&mut self) -> Option<ChannelMsg> {
        self.connected = true;
        self.out.ready = false;
        self.inc.ready = false;
        self.try_send_reestablish()
    }

    /// The connection to the peer is gone. Frames of it must not be delivered later (the
    /// connection epoch of the envelope guarantees it).
    pub fn peer_disconnected(&mut self) {
        self.connected = false;
        self.out.ready = false;
        self.inc.ready = false;
    }

    /// True if connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_channel() -> Channel {
        use crate::open::{accept_open, OpenPolicy, OpenProposal};
        let (ka, kb) = (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]));
        let chain_id = Hash32([3; 32]);
        let prop = OpenProposal::new(chain_id, &ka, kb.public(), 10, 10, Hash32([4; 32]), 100).unwrap();
        let policy = OpenPolicy {
            chain_id,
            now_ms: 0,
            expiry_ms_min_ahead: 0,
            expiry_ms_max_ahead: 1000,
            deposit_own_max: 10,
            deposit_peer_min: 0,
        };
        let (_, msg) = accept_open(&kb, prop.open(), &policy, Hash32([5; 32])).unwrap();
        let ChannelMsg::OpenAccept { open, sig_b } = msg else {
            panic!()
        };
        let (signed, _) = prop.on_accept(&ka, &open, &sig_b).unwrap();
        Channel::new(signed, ka).unwrap()
    }

    #[test]
    fn next_reservation_is_requested_when_half_is_used() {
        let mut ch = pending_channel();
        assert_eq!(ch.persist_needs().reservation, Some(SEQ_RESERVATION));
        ch.reservation_persisted(SEQ_RESERVATION).unwrap();
        assert_eq!(ch.persist_needs().reservation, None);
        // Just over half of the range left: nothing yet.
        ch.out.next_seq = SEQ_RESERVATION / 2;
        ch.maybe_request_reservation();
        assert_eq!(ch.out.seq_requested, None);
        // Less than half left: the next range is requested, in the background.
        ch.out.next_seq = SEQ_RESERVATION / 2 + 2;
        ch.maybe_request_reservation();
        assert_eq!(ch.out.seq_requested, Some(2 * SEQ_RESERVATION));
        assert_eq!(ch.snapshot().seq_reserved, 2 * SEQ_RESERVATION);
        // A partial report advances the bound and keeps the request.
        ch.reservation_persisted(SEQ_RESERVATION + 5).unwrap();
        assert_eq!(
            (ch.out.seq_durable, ch.out.seq_requested),
            (SEQ_RESERVATION + 5, Some(2 * SEQ_RESERVATION))
        );
    }

    #[test]
    fn reservation_bound_saturates() {
        assert_eq!(next_bound(u64::MAX - 1), u64::MAX);
        assert_eq!(next_bound(0), SEQ_RESERVATION);
    }
}

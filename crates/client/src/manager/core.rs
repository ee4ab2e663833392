//! The manager's logic as a synchronous state machine over every channel of one key.
//!
//! [`Manager::handle`] takes one [`Event`] (a peer's frame, a link change, a user's command, a
//! ledger change, a persist completion, a tick), [`Manager::poll`] signs what payment jobs
//! may sign and starts the next group commit; both leave [`Action`]s (persist this batch,
//! submit this transaction, answer this command, dial this peer, close this link) to be taken
//! with [`Manager::take_actions`], and frames for each peer to be taken with
//! [`Manager::take_frames`]. Nothing here awaits, spawns, reads a clock or draws randomness of
//! its own: time comes with every call, randomness from the seeded generator given at start,
//! the ledger through a [`LedgerView`]. So a whole network of managers runs in one thread,
//! replayable from a seed.
//!
//! **Persist before you send.** A frame whose safety depends on a write (the signature in an
//! `OpenAccept` or `OpenSigned`, a `CloseSign`) and an open's submission are held until the
//! batch holding that write is reported durable; acks and reestablishes come out of the channel
//! only once their snapshot is durable; a payer signs only within a durably reserved range. Per
//! peer, frames leave in the order they were made: a frame behind a held one waits too.

// Ordered maps throughout: the order in which the core walks its channels and peers decides
// the order of its actions, and a seeded run must replay exactly.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use paychan_channel::open::{accept_open, OpenPolicy, OpenProposal};
use paychan_channel::{
    Channel, ChannelError, ChannelStatus, CloseState, InlineSigner, PersistedChannel, ProofSigner,
};
use paychan_ledger::CreditLine;
use paychan_net::{peer_id_from_public_key, public_key_from_peer_id, PeerId};
use paychan_protocol::channel::{ChannelOpen, SignedOpen};
use paychan_protocol::codec::{decode, encode};
use paychan_protocol::ledger::Settle;
use paychan_protocol::limits::MEMO_PAYMENTS_MAX;
use paychan_protocol::wire::{ChannelMsg, ErrorCode, PayItem};
use paychan_protocol::{ChannelId, Direction, Hash32, Keypair, Payment, PublicKey, Signature, Tx};
use rand_core::RngCore;
use tracing::{debug, info, warn};

use super::limits::*;
use super::slots::Slots;
use super::{ChannelTotals, ChannelView, ManagerConfig, ManagerError, PayStats};
use crate::ledger::LedgerChannel;

/// What the core reads of the ledger. Reads only: submissions leave as [`Action::Submit`].
pub trait LedgerView {
    /// Chain id.
    fn chain_id(&self) -> Hash32;
    /// Ledger time of the newest block the view holds (ms).
    fn time_ms(&self) -> u64;
    /// Height of the newest block the view holds.
    fn height(&self) -> u64;
    /// Height of the newest witnessed checkpoint consistent with the view.
    fn witnessed_height(&self) -> u64;
    /// Whether the settlement of `id` ignored a valid update (it will never be witnessed).
    fn censored(&self, id: &ChannelId) -> bool;
    /// The channel's status on the ledger, if the ledger knows it.
    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel>;
    /// An account's balance.
    fn balance(&self, key: &PublicKey) -> u64;
    /// Opens that blocks above height `after` applied and that name `key` as a party, oldest
    /// first, with the height scanned up to (at most [`OPENS_SCAN_BLOCKS_MAX`] blocks a call).
    /// A view that cannot tell reports nothing, scanned up to its height.
    /// The fee the ledger charges for `tx` (0 where the view cannot tell).
    fn fee(&self, _tx: &Tx) -> u64 {
        0
    }
    /// The credit line of channel `id` whose debtor pays in direction `dir`, as the view's
    /// ledger records it (none where the view cannot tell).
    fn credit_line(&self, _id: &ChannelId, _dir: Direction) -> Option<CreditLine> {
        None
    }
    fn opens_naming(&self, _key: &PublicKey, _after: u64) -> OpensScan {
        OpensScan {
            scanned_to: self.height(),
            opens: Vec::new(),
        }
    }
}

/// What [`LedgerView::opens_naming`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpensScan {
    /// The height the scan reached: the next scan starts above it.
    pub scanned_to: u64,
    /// The opens found, oldest first.
    pub opens: Vec<SignedOpen>,
}

/// The metadata key of the height up to which ledger opens naming this key were adopted.
pub const ADOPTED_HEIGHT_KEY: &str = "channel-opens-adopted-height";

/// Identifies a command, so that its answer finds its caller.
pub type CommandId = u64;

/// A user's command.
#[derive(Debug, Clone)]
pub enum Command {
    /// Open a channel with `peer_key`; answered once a block holding the open is applied.
    Open {
        /// The counterparty.
        peer_key: PublicKey,
        /// Our deposit.
        deposit: u64,
        /// Theirs.
        their_deposit: u64,
    },
    /// Pay `amount` `count` times; answered once the last proof is acknowledged.
    Pay {
        /// The channel.
        id: ChannelId,
        /// Each payment's amount.
        amount: u64,
        /// How many payments.
        count: u64,
        /// Their reference.
        reference: Hash32,
        /// Payments in each signed proof (1 to `MEMO_PAYMENTS_MAX`).
        per_proof: usize,
    },
    /// Close cooperatively, or unilaterally with `force`; answered once the payout is witnessed.
    Close {
        /// The channel.
        id: ChannelId,
        /// Unilateral.
        force: bool,
    },
    /// List every channel.
    List,
    /// Count the channels by status and sum their balances and payments, without listing
    /// them.
    Totals,
    /// Payee: check a payment carried in an HTTP request (the proof's channel, the price, the
    /// request's reference) and hold it in flight; answered [`Response::HttpChecked`] at the
    /// end of the round ([`Manager::poll`]), with the other checks of the round.
    HttpCheck {
        /// The proof and its one payment.
        item: PayItem,
        /// The least it must add.
        price: u64,
        /// The request's reference.
        reference: Hash32,
    },
    /// Payee: the request of a checked payment is over. `answered`: take the payment,
    /// answered once durable; otherwise keep it uncharged for the payer's next request.
    HttpSettle {
        /// The checked proof.
        item: PayItem,
        /// Whether the upstream answered.
        answered: bool,
    },
    /// Payee: what channel `id` has received durably (its newest durable incoming proof's
    /// total); answered [`Response::Received`].
    Received {
        /// The channel.
        id: ChannelId,
    },
    /// Payer: sign one proof of `amount` and return it instead of sending it on the stream.
    SignDetached {
        /// The channel.
        id: ChannelId,
        /// The payment's amount.
        amount: u64,
        /// Its reference.
        reference: Hash32,
    },
}

/// The answer to a command.
#[derive(Debug, Clone)]
pub enum Response {
    /// The channel is open.
    Opened(ChannelId),
    /// The payment job is done.
    Paid(PayStats),
    /// The channel is paid out and witnessed.
    Closed,
    /// Every channel.
    Listed(Vec<ChannelView>),
    /// The channels counted and summed.
    Totals(ChannelTotals),
    /// The check of a payment carried in a request.
    HttpChecked(Result<HttpChecked, HttpRefusal>),
    /// The payment is durable (`charged`), or kept uncharged.
    HttpSettled {
        /// Whether it was taken.
        charged: bool,
    },
    /// A proof signed for a request.
    Signed(PayItem),
    /// What a channel received durably.
    Received(u64),
}

/// An input of the core.
#[derive(Debug, Clone)]
pub enum Event {
    /// A user's command.
    Command {
        /// Its id, echoed in the reply.
        id: CommandId,
        /// The command.
        command: Command,
    },
    /// A frame from a peer on the link of `epoch`.
    Frame {
        /// The peer.
        peer: PeerId,
        /// The link it came on.
        epoch: u64,
        /// The frame.
        msg: ChannelMsg,
    },
    /// A stream to `peer` is up, opened by `dialer`.
    LinkUp {
        /// The peer.
        peer: PeerId,
        /// The stream's epoch.
        epoch: u64,
        /// Who opened it.
        dialer: PeerId,
    },
    /// The stream of `epoch` to `peer` is gone.
    LinkDown {
        /// The peer.
        peer: PeerId,
        /// The stream's epoch.
        epoch: u64,
    },
    /// A dial asked for by [`Action::Dial`] failed.
    DialFailed(PeerId),
    /// A connection to `peer` is up (libp2p): streams to it may be opened now.
    PeerConnected(PeerId),
    /// The ledger view moved in a way not told channel by channel: look at every channel.
    LedgerChanged,
    /// One block was applied; `channels` are the ones its transactions name. The manager looks
    /// at those and at every channel that waits on the ledger.
    BlockApplied {
        /// Channels the block touched.
        channels: Vec<ChannelId>,
    },
    /// A batch asked for by [`Action::Persist`] was written and synced, or failed.
    Persisted {
        /// The batch.
        batch: u64,
        /// Whether it is durable.
        result: Result<(), String>,
    },
    /// The submission of channel `id`'s open failed (possibly only for now).
    OpenSubmitFailed {
        /// The channel.
        id: ChannelId,
        /// Why.
        why: String,
    },
    /// Time passed.
    Tick,
}

/// Writes to make durable together (one sync), then report with [`Event::Persisted`].
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Its id.
    pub id: u64,
    /// Channel records to put (shared with the manager, which reads them back when the batch is
    /// durable instead of holding a second copy of every snapshot).
    pub channels: Vec<(ChannelId, Arc<[u8]>)>,
    /// Channel records to delete.
    pub deletes: Vec<ChannelId>,
    /// Metadata to put (an empty value frees the key).
    pub meta: Vec<(String, Vec<u8>)>,
    /// Payments records to put: `(channel, first seq, record)`, one per received burst (see
    /// [`super::payments`]). Written before the channel records of the same batch.
    pub payments: Vec<(ChannelId, u64, Vec<u8>)>,
}

impl Batch {
    /// Nothing to write (the batch still has to be reported: frames may wait for it).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.deletes.is_empty()
            && self.meta.is_empty()
            && self.payments.is_empty()
    }
}

/// An output of the core.
// A transaction is large, but actions are made a few per event and moved once: boxing it
// would add an allocation per submission for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    /// Write and sync this batch, then report it.
    Persist(Batch),
    /// Submit a transaction; `open` names the channel whose open it is, whose failure is to be
    /// reported with [`Event::OpenSubmitFailed`].
    Submit {
        /// The transaction.
        tx: Tx,
        /// The channel, for an open.
        open: Option<ChannelId>,
    },
    /// Answer a command.
    Reply {
        /// The command.
        id: CommandId,
        /// Its answer.
        result: Result<Response, ManagerError>,
    },
    /// Open a stream to `peer`; report [`Event::LinkUp`] or [`Event::DialFailed`].
    Dial(PeerId),
    /// Close the stream of `epoch` to `peer` (replaced, or refused).
    CloseLink {
        /// The peer.
        peer: PeerId,
        /// The stream's epoch.
        epoch: u64,
    },
}

/// The metadata key prefix of acceptance slots: an open a peer proposed that this key signed
/// is written into a free slot before its `OpenAccept` leaves, so a restart still knows it.
/// Slots are reused, so the records a peer can make us keep stay bounded.
pub const ACCEPTANCE_SLOT_PREFIX: &str = "channel-acceptance/";

/// A capped exponential backoff for resending something until its effect is seen.
#[derive(Debug, Clone)]
struct Retry {
    /// When to send again; `None` while nothing was sent in this run.
    next_ms: Option<u64>,
    delay_ms: u64,
}

impl Retry {
    const fn new() -> Retry {
        Retry {
            next_ms: None,
            delay_ms: RESUBMIT_WAIT_FIRST_MS,
        }
    }

    fn due_or_unsent(&self, now_ms: u64) -> bool {
        self.next_ms.is_none_or(|t| now_ms >= t)
    }

    fn due(&self, now_ms: u64) -> bool {
        self.next_ms.is_some_and(|t| now_ms >= t)
    }

    fn sent(&mut self, now_ms: u64) {
        self.next_ms = Some(now_ms.saturating_add(self.delay_ms));
        self.delay_ms = (self.delay_ms.saturating_mul(2)).min(RESUBMIT_WAIT_MAX_MS);
    }
}

/// A payment job in progress.
#[derive(Debug)]
struct PayJob {
    amount: u64,
    reference: Hash32,
    /// Payments in each proof (the last proof of the job may carry fewer).
    per_proof: usize,
    /// Payments not signed yet.
    remaining: u64,
    /// Proofs signed.
    proofs: u64,
    count: u64,
    last_seq: u64,
    started_ms: u64,
    reply: CommandId,
}

#[derive(Debug)]
struct Slot {
    ch: Channel,
    peer: PeerId,
    /// The payment job in progress (boxed: a node holds many channels and pays on few).
    pay: Option<Box<PayJob>>,
    open_waiters: Vec<CommandId>,
    close_waiters: Vec<CommandId>,
    /// What a close has sent and seen; `None` until a close starts (see [`Slot::close`]).
    close: Option<Box<CloseTrack>>,
    /// Write the snapshot in the next batch even if the channel reports nothing new.
    force_persist: bool,
    /// A snapshot of this channel is in the batch in flight.
    in_flight: bool,
    /// When the open goes to the ledger again (while it is not on the ledger).
    open_retry: Retry,
    /// When the unacknowledged proofs go to the peer again: set when the peer refused a
    /// burst for a passing reason, cleared when they are resent or the link goes.
    resend_at_ms: Option<u64>,
    /// Wait before the next resend; it doubles after each resend without an ack between.
    resend_wait_ms: u64,
    /// Payments this key signed on the channel since the manager started.
    payments_sent: u64,
    /// Payments received (in verified proofs) since the manager started.
    payments_received: u64,
}

/// A slot's record of a close: kept apart and boxed because most channels a node holds never
/// close while it runs (about 140 bytes a channel otherwise).
#[derive(Debug, Clone)]
struct CloseTrack {
    /// Ledger best amounts last answered, and the ledger time of that answer.
    answered: Option<(u64, u64, u64)>,
    /// Ledger time at which a settle was last submitted.
    settle_sent_ms: Option<u64>,
    /// The cooperative close last submitted, and the ledger time of that submission.
    coop_sent: Option<(paychan_protocol::channel::CoopClose, u64)>,
    /// Ledger height at which the payout was first seen.
    closed_at: Option<u64>,
    /// When the close transaction of the current state goes to the ledger again.
    close_retry: Retry,
    /// Since when our close proposal waits for the peer's signature (this run).
    proposed_at_ms: Option<u64>,
    /// When our close proposal goes to the peer again.
    proposal_retry: Retry,
    /// Our close proposal waited longer than `coop_close_wait`; it is no longer resent.
    proposal_expired: bool,
}

/// The record of a slot whose close has not started: what [`Slot::close`] reads then.
static CLOSE_NOT_STARTED: CloseTrack = CloseTrack {
    answered: None,
    settle_sent_ms: None,
    coop_sent: None,
    closed_at: None,
    close_retry: Retry::new(),
    proposed_at_ms: None,
    proposal_retry: Retry::new(),
    proposal_expired: false,
};

impl Slot {
    /// The close record, read: [`CLOSE_NOT_STARTED`] while the slot has none.
    fn close(&self) -> &CloseTrack {
        self.close.as_deref().unwrap_or(&CLOSE_NOT_STARTED)
    }

    /// The close record, to change: made (from [`CLOSE_NOT_STARTED`]) on the first change, so
    /// that reading and changing behave as if every slot had one.
    fn close_mut(&mut self) -> &mut CloseTrack {
        self.close
            .get_or_insert_with(|| Box::new(CLOSE_NOT_STARTED.clone()))
    }

    /// Whether the channel waits on the ledger (its open, a close, a window's end, a payout to
    /// be witnessed), so that every block and tick must look at it; an open channel learns
    /// only from a block that names it.
    fn follows_ledger(&self) -> bool {
        match self.ch.status() {
            // A line expires with ledger time, not with a block that names the channel.
            ChannelStatus::Open => self.ch.credit() != (0, None),
            ChannelStatus::Closed => !self.close_waiters.is_empty() || self.pay.is_some(),
            ChannelStatus::Pending | ChannelStatus::ShuttingDown | ChannelStatus::Closing => true,
        }
    }

    fn new(ch: Channel, peer: PeerId) -> Slot {
        Slot {
            ch,
            peer,
            pay: None,
            open_waiters: vec![],
            close_waiters: vec![],
            close: None,
            force_persist: false,
            in_flight: false,
            open_retry: Retry::new(),
            resend_at_ms: None,
            resend_wait_ms: RESEND_WAIT_FIRST_MS,
            payments_sent: 0,
            payments_received: 0,
        }
    }

    fn durable(&self) -> bool {
        !self.force_persist && !self.in_flight && !self.ch.persist_needs().any()
    }
}

/// An open this key proposed.
#[derive(Debug)]
struct Proposed {
    proposal: OpenProposal,
    reply: CommandId,
    at_ms: u64,
}

/// An open a peer proposed and this key signed, kept in acceptance slot `slot`.
#[derive(Debug, Clone)]
struct Accepted {
    peer: PeerId,
    open: ChannelOpen,
    sig_b: Signature,
    slot: usize,
    at_ms: u64,
}

/// A live stream as the core sees it.
#[derive(Debug, Clone, Copy)]
struct LinkState {
    epoch: u64,
    dialer: PeerId,
    since_ms: u64,
}

/// What waits for a batch: `tag` is the batch whose durability it needs (0: none).
#[derive(Debug)]
struct HeldFrame {
    tag: u64,
    msg: ChannelMsg,
}

#[derive(Debug, Default)]
struct InFlight {
    id: u64,
    /// The encoded snapshot of each channel in the batch (the batch's own bytes, shared).
    snaps: Vec<(ChannelId, Arc<[u8]>)>,
    meta: Vec<(String, Vec<u8>)>,
    deletes: Vec<ChannelId>,
    payments: Vec<(ChannelId, u64, Vec<u8>)>,
}

/// A test-only fault: release held frames before their batch is durable. The simulation
/// shows that it catches this (acks of proofs a crash then loses).
#[cfg(feature = "planted-bugs")]
pub static PLANTED_ACK_BEFORE_DURABLE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The channel manager's logic for one key.
pub struct Manager {
    /// Ledger opens naming this key are adopted up to this height.
    adopted_height: u64,
    /// The adopted height last written: it is written with each adoption and at least every
    /// [`ADOPTED_HEIGHT_WRITE_EVERY`] blocks, not with every block (a restart scans again from it).
    adopted_written: u64,
    /// Shared with every channel of this key.
    keypair: Arc<Keypair>,
    me: PeerId,
    chain_id: Hash32,
    config: ManagerConfig,
    rng: Box<dyn RngCore + Send>,
    /// Makes the signatures of each run of proofs (the driver may give one that uses several
    /// threads; the core only hands it bodies and takes signatures back, in order).
    signer: Arc<dyn ProofSigner>,
    now_ms: u64,
    /// When every channel was last looked at against the ledger.
    full_pass_ms: Option<u64>,
    channels: Slots<Slot>,
    links: BTreeMap<PeerId, LinkState>,
    /// Dials in flight, with when each was asked for.
    dialing: BTreeMap<PeerId, u64>,
    /// Open proposals waiting for a stream to their peer, with when they were queued.
    queued: BTreeMap<PeerId, Vec<(u64, ChannelMsg)>>,
    proposals: BTreeMap<(PeerId, Hash32), Proposed>,
    acceptances: BTreeMap<ChannelId, Accepted>,
    /// Acceptance slots in use.
    slots_used: Vec<bool>,
    proposing: BTreeSet<ChannelId>,
    /// Frames ready for each peer's link.
    outbox: BTreeMap<PeerId, VecDeque<ChannelMsg>>,
    /// Frames for each peer that wait for a batch (or for a frame before them that does).
    held: BTreeMap<PeerId, VecDeque<HeldFrame>>,
    /// Submissions that wait for a batch.
    held_submits: Vec<(u64, Tx, Option<ChannelId>)>,
    /// Metadata to write in the next batch.
    meta_pending: Vec<(String, Vec<u8>)>,
    /// Channel records to delete in the next batch.
    deletes_pending: Vec<ChannelId>,
    /// Payments records of received bursts, for the next batch (the acks of those bursts wait
    /// for it, like the channel records).
    payments_pending: Vec<(ChannelId, u64, Vec<u8>)>,
    /// The batch that the next writes go into.
    next_batch: u64,
    /// Something waits for `next_batch`: issue it even if nothing else is dirty.
    batch_wanted: bool,
    in_flight: Option<InFlight>,
    actions: Vec<Action>,
    /// Payments carried in HTTP requests.
    http: HttpState,
    /// A test-only fault: report each batch durable as soon as it is asked for, before it is
    /// written, so acks leave for proofs a crash then loses. The simulation shows it catches it.
    #[cfg(feature = "planted-bugs")]
    planted_ack_before_durable: bool,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("me", &self.me)
            .field("channels", &self.channels.len())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager for `keypair` that restores the channel records and metadata read from its
    /// store. `rng` gives every salt; `now_ms` is the driver's monotonic clock.
    pub fn restore(
        keypair: Keypair,
        chain_id: Hash32,
        config: ManagerConfig,
        rng: Box<dyn RngCore + Send>,
        records: Vec<(ChannelId, Vec<u8>)>,
        meta: Vec<(String, Vec<u8>)>,
        now_ms: u64,
    ) -> Result<Manager, ManagerError> {
        let me = peer_id_from_public_key(&keypair.public())
            .ok_or_else(|| ManagerError::Storage("the key is not a libp2p identity".into()))?;
        let keypair = Arc::new(keypair);
        let mut channels = Slots::default();
        for (id, bytes) in records {
            let persisted: PersistedChannel = decode(&bytes, PERSISTED_BYTES_MAX)
                .map_err(|e| ManagerError::Storage(format!("{id}: {e}")))?;
            let ch = Channel::restore(persisted, keypair.clone())?;
            let Some(peer) = peer_id_from_public_key(&ch.counterparty_key()) else {
                continue;
            };
            channels.insert(id, Slot::new(ch, peer));
        }
        let proposing = channels
            .iter()
            .filter(|(_, s)| matches!(s.ch.close_state(), CloseState::Proposed { .. }))
            .map(|(id, _)| *id)
            .collect();
        let adopted_height = meta
            .iter()
            .find(|(k, _)| k == ADOPTED_HEIGHT_KEY)
            .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        let mut m = Manager {
            adopted_height,
            adopted_written: adopted_height,
            keypair,
            me,
            chain_id,
            config,
            rng,
            signer: Arc::new(InlineSigner),
            now_ms,
            full_pass_ms: None,
            channels,
            links: BTreeMap::new(),
            dialing: BTreeMap::new(),
            queued: BTreeMap::new(),
            proposals: BTreeMap::new(),
            acceptances: BTreeMap::new(),
            slots_used: vec![false; ACCEPTANCES_MAX],
            proposing,
            outbox: BTreeMap::new(),
            held: BTreeMap::new(),
            held_submits: Vec::new(),
            meta_pending: Vec::new(),
            deletes_pending: Vec::new(),
            payments_pending: Vec::new(),
            next_batch: 1,
            batch_wanted: false,
            in_flight: None,
            actions: Vec::new(),
            http: HttpState::default(),
            #[cfg(feature = "planted-bugs")]
            planted_ack_before_durable: false,
        };
        for (key, value) in meta {
            let Some(n) = key.strip_prefix(ACCEPTANCE_SLOT_PREFIX) else {
                continue;
            };
            let Ok(slot) = n.parse::<usize>() else { continue };
            if slot >= ACCEPTANCES_MAX || value.is_empty() {
                continue;
            }
            let Ok((peer_key, open, sig_b)) =
                decode::<(PublicKey, ChannelOpen, Signature)>(&value, ACCEPTANCE_RECORD_BYTES_MAX)
            else {
                warn!(%key, "unreadable acceptance record; freeing it");
                m.meta_pending.push((key, Vec::new()));
                continue;
            };
            let Some(peer) = peer_id_from_public_key(&peer_key) else {
                continue;
            };
            let id = open.channel_id();
            if m.channels.contains_key(&id) {
                m.meta_pending.push((key, Vec::new()));
                continue;
            }
            m.slots_used[slot] = true;
            m.acceptances.insert(
                id,
                Accepted {
                    peer,
                    open,
                    sig_b,
                    slot,
                    at_ms: now_ms,
                },
            );
        }
        info!(
            channels = m.channels.len(),
            acceptances = m.acceptances.len(),
            "channels restored"
        );
        Ok(m)
    }

    /// Plants the test-only fault of [`Manager`]'s `planted_ack_before_durable`.
    #[cfg(feature = "planted-bugs")]
    pub fn plant_ack_before_durable(&mut self) {
        self.planted_ack_before_durable = true;
    }

    /// This key's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.me
    }

    /// The epoch of the stream in use to `peer`.
    pub fn link_epoch(&self, peer: &PeerId) -> Option<u64> {
        self.links.get(peer).map(|l| l.epoch)
    }

    /// Takes the actions made so far.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Peers with frames ready.
    pub fn peers_with_frames(&self) -> Vec<PeerId> {
        self.outbox
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Moves up to `max` ready frames for `peer` into `out`, oldest first.
    pub fn take_frames(&mut self, peer: &PeerId, max: usize, out: &mut Vec<ChannelMsg>) {
        if let Some(q) = self.outbox.get_mut(peer) {
            let n = max.min(q.len());
            out.extend(q.drain(..n));
        }
    }

    /// Frames ready for `peer`.
    pub fn frames_len(&self, peer: &PeerId) -> usize {
        self.outbox.get(peer).map_or(0, VecDeque::len)
    }

    /// Whether a payment job could sign more now (the driver polls again without waiting).
    pub fn has_pay_work(&self) -> bool {
        self.channels
            .paying()
            .filter_map(|id| self.channels.get(id))
            .any(|s| {
                s.pay.as_ref().is_some_and(|j| j.remaining > 0)
                    && self.links.contains_key(&s.peer)
                    && self.outbox_len(&s.peer) < OUTBOX_PAY_PAUSE_FRAMES
            })
    }

    /// Every channel id with its newest durable view: for checks from outside (tests, the
    /// simulation).
    pub fn channel_ids(&self) -> Vec<ChannelId> {
        self.channels.keys().copied().collect()
    }

    /// The channel state machine of `id`, read only.
    pub fn channel(&self, id: &ChannelId) -> Option<&Channel> {
        self.channels.get(id).map(|s| &s.ch)
    }

    /// Acceptances waiting for the peer's signature.
    pub fn acceptances_len(&self) -> usize {
        self.acceptances.len()
    }

    /// Opens this key proposed that wait for the peer's answer.
    pub fn proposals_len(&self) -> usize {
        self.proposals.len()
    }

    fn outbox_len(&self, peer: &PeerId) -> usize {
        self.outbox.get(peer).map_or(0, VecDeque::len) + self.held.get(peer).map_or(0, VecDeque::len)
    }

    fn reply(&mut self, id: CommandId, result: Result<Response, ManagerError>) {
        self.actions.push(Action::Reply { id, result });
    }

    /// Queues `msg` for `peer`'s current link; with `durable`, it waits for the next batch.
    /// Frames for a peer without a link are dropped (the reestablish of the next link, the
    /// resend schedules and the peer's own retries cover them).
    fn push(&mut self, peer: PeerId, msg: ChannelMsg, durable: bool) {
        if !self.links.contains_key(&peer) {
            return;
        }
        if self.outbox_len(&peer) >= OUTBOX_FRAMES_MAX {
            warn!(%peer, "the peer does not read its frames; closing its link");
            if let Some(l) = self.links.get(&peer).copied() {
                self.link_gone(peer, l.epoch);
                self.actions.push(Action::CloseLink { peer, epoch: l.epoch });
            }
            return;
        }
        let held = self.held.entry(peer).or_default();
        if durable {
            self.batch_wanted = true;
            held.push_back(HeldFrame {
                tag: self.next_batch,
                msg,
            });
        } else if !held.is_empty() {
            held.push_back(HeldFrame { tag: 0, msg });
        } else {
            self.outbox.entry(peer).or_default().push_back(msg);
        }
    }

    fn reject(&mut self, peer: PeerId, channel_id: Option<ChannelId>, code: ErrorCode, text: String) {
        // Cut at a character boundary: a peer's bytes can end up in the text.
        let text = paychan_protocol::wire::error_text(text);
        self.push(
            peer,
            ChannelMsg::Error {
                channel_id,
                code,
                text,
            },
            false,
        );
    }

    fn random_hash(&mut self) -> Hash32 {
        let mut b = [0u8; 32];
        self.rng.fill_bytes(&mut b);
        Hash32(b)
    }

    /// Takes one event.
    pub fn handle(&mut self, event: Event, now_ms: u64, ledger: &dyn LedgerView) {
        self.now_ms = self.now_ms.max(now_ms);
        match event {
            Event::Command { id, command } => self.on_command(id, command, ledger),
            Event::Frame { peer, epoch, msg } => {
                if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
                    self.on_message(peer, msg, ledger);
                }
            }
            Event::LinkUp { peer, epoch, dialer } => self.on_link_up(peer, epoch, dialer),
            Event::LinkDown { peer, epoch } => {
                if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
                    debug!(%peer, "channel stream down");
                    self.link_gone(peer, epoch);
                }
            }
            Event::DialFailed(peer) => self.on_dial_failed(peer),
            Event::PeerConnected(peer) => {
                if self.channels.values().any(|s| s.peer == peer) {
                    self.dial(peer);
                }
            }
            Event::LedgerChanged => self.on_ledger_changed(ledger),
            Event::BlockApplied { channels } => self.on_block_applied(&channels, ledger),
            Event::Persisted { batch, result } => self.on_persisted(batch, result),
            Event::OpenSubmitFailed { id, why } => {
                // Never drop a pending open on a failed submission: it may have reached the
                // ledger anyway, or the failure may pass. It is submitted again on a backoff
                // and is void only once its expiry has passed without the ledger holding it.
                warn!(channel = %id, %why, "submitting the open failed; it is submitted again");
            }
            Event::Tick => self.on_tick(ledger),
        }
        self.resend_due();
    }

    /// Sends again the unacknowledged proofs of every channel whose resend is due.
    fn resend_due(&mut self) {
        let now = self.now_ms;
        let due: Vec<(ChannelId, PeerId)> = self
            .channels
            .iter()
            .filter(|(_, s)| s.resend_at_ms.is_some_and(|t| now >= t))
            .map(|(id, s)| (*id, s.peer))
            .collect();
        for (id, peer) in due {
            let Some(slot) = self.channels.get_mut(&id) else {
                continue;
            };
            slot.resend_at_ms = None;
            slot.resend_wait_ms = slot.resend_wait_ms.saturating_mul(2).min(RESEND_WAIT_MAX_MS);
            let frames = slot.ch.retransmit();
            debug!(channel = %id, frames = frames.len(), "sending unacknowledged proofs again");
            for m in frames {
                self.push(peer, m, false);
            }
        }
    }

    fn link_gone(&mut self, peer: PeerId, epoch: u64) {
        if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
            self.links.remove(&peer);
            self.outbox.remove(&peer);
            self.held.remove(&peer);
            for (_, s) in self.channels.iter_mut_where(|_, s| s.peer == peer) {
                s.ch.peer_disconnected();
                s.resend_at_ms = None;
            }
        }
    }

    fn on_command(&mut self, id: CommandId, command: Command, ledger: &dyn LedgerView) {
        match command {
            Command::Open {
                peer_key,
                deposit,
                their_deposit,
            } => self.cmd_open(id, peer_key, deposit, their_deposit, ledger),
            Command::Pay {
                id: channel,
                amount,
                count,
                reference,
                per_proof,
            } => {
                let now = self.now_ms;
                if !(1..=MEMO_PAYMENTS_MAX).contains(&per_proof) {
                    return self.reply(
                        id,
                        Err(ManagerError::Channel(ChannelError::MemoLength {
                            len: per_proof,
                            max: MEMO_PAYMENTS_MAX,
                        })),
                    );
                }
                let Some(slot) = self.channels.get_mut(&channel) else {
                    return self.reply(id, Err(ManagerError::UnknownChannel(channel)));
                };
                let superseded = slot.pay.take();
                if count == 0 {
                    // Nothing to pay, but only on a channel that could be paid on.
                    let ok = matches!(slot.ch.status(), ChannelStatus::Open);
                    let status = slot.ch.status();
                    if let Some(job) = superseded {
                        slot.pay = Some(job);
                    }
                    return self.reply(
                        id,
                        if ok {
                            Ok(Response::Paid(PayStats {
                                count: 0,
                                proofs: 0,
                                amount: 0,
                                elapsed_ms: 0,
                                per_second: 0.0,
                            }))
                        } else {
                            Err(ManagerError::Channel(ChannelError::Status { status }))
                        },
                    );
                }
                slot.pay = Some(Box::new(PayJob {
                    amount,
                    reference,
                    per_proof,
                    remaining: count,
                    proofs: 0,
                    count,
                    last_seq: 0,
                    started_ms: now,
                    reply: id,
                }));
                if let Some(job) = superseded {
                    self.reply(
                        job.reply,
                        Err(ManagerError::Refused("superseded by a newer payment job".into())),
                    );
                }
            }
            Command::Close { id: channel, force } => self.cmd_close(id, channel, force),
            Command::List => {
                let list = self
                    .channels
                    .iter()
                    .map(|(cid, s)| slot_view(cid, s, ledger))
                    .collect();
                self.reply(id, Ok(Response::Listed(list)));
            }
            Command::Totals => {
                // Folded one view at a time: a node with many channels never holds them all
                // as views (a list of 10,000 is megabytes that the allocator then keeps).
                let mut t = ChannelTotals::default();
                for (cid, s) in self.channels.iter() {
                    t.add(&slot_view(cid, s, ledger));
                }
                self.reply(id, Ok(Response::Totals(t)));
            }
            c @ (Command::HttpCheck { .. }
            | Command::HttpSettle { .. }
            | Command::SignDetached { .. }
            | Command::Received { .. }) => self.on_http_command(id, c),
        }
    }

    fn on_dial_failed(&mut self, peer: PeerId) {
        self.dialing.remove(&peer);
        let now = self.now_ms;
        // Proposals waiting for this stream are retried on the next ticks, and fail once they
        // have waited longer than OPEN_STREAM_WAIT_MS.
        let expired: Vec<ChannelMsg> = match self.queued.get_mut(&peer) {
            Some(q) => {
                let (old, keep): (Vec<_>, Vec<_>) = q
                    .drain(..)
                    .partition(|(since, _)| now.saturating_sub(*since) > OPEN_STREAM_WAIT_MS);
                *q = keep;
                old.into_iter().map(|(_, m)| m).collect()
            }
            None => Vec::new(),
        };
        self.queued.retain(|_, q| !q.is_empty());
        for msg in expired {
            if let ChannelMsg::OpenPropose { open } = msg {
                if let Some(p) = self.proposals.remove(&(peer, open.salt_a)) {
                    self.reply(
                        p.reply,
                        Err(ManagerError::Unreachable("cannot open a channel stream".into())),
                    );
                }
            }
        }
    }

    fn on_tick(&mut self, ledger: &dyn LedgerView) {
        self.expire_opens();
        let peers: BTreeSet<PeerId> = self
            .channels
            .values()
            .filter(|s| !matches!(s.ch.status(), ChannelStatus::Closed))
            .map(|s| s.peer)
            .chain(self.queued.iter().filter(|(_, q)| !q.is_empty()).map(|(p, _)| *p))
            .collect();
        for peer in peers {
            if !self.links.contains_key(&peer) {
                self.dial(peer);
            }
        }
        if self
            .full_pass_ms
            .is_none_or(|t| self.now_ms >= t.saturating_add(FULL_PASS_MS))
        {
            self.on_ledger_changed(ledger);
        } else {
            // Retries and windows that come due with time, for the channels that wait on it.
            self.on_block_applied(&[], ledger);
        }
    }

    /// Forgets acceptances whose peer did not sign in time (freeing their slots), and fails our
    /// proposals that got no answer in time.
    fn expire_opens(&mut self) {
        let now = self.now_ms;
        let stale: Vec<ChannelId> = self
            .acceptances
            .iter()
            .filter(|(_, a)| now.saturating_sub(a.at_ms) > ACCEPTANCE_TTL_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.forget_acceptance(&id);
        }
        let stale: Vec<_> = self
            .proposals
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.at_ms) > PROPOSAL_TTL_MS)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(p) = self.proposals.remove(&k) {
                self.reply(
                    p.reply,
                    Err(ManagerError::Unreachable(
                        "the peer did not answer the open".into(),
                    )),
                );
            }
        }
    }

    fn forget_acceptance(&mut self, id: &ChannelId) -> Option<Accepted> {
        let a = self.acceptances.remove(id)?;
        self.slots_used[a.slot] = false;
        self.meta_pending
            .push((format!("{ACCEPTANCE_SLOT_PREFIX}{}", a.slot), Vec::new()));
        Some(a)
    }

    fn dial(&mut self, peer: PeerId) {
        let now = self.now_ms;
        if self.links.contains_key(&peer) {
            return;
        }
        // A dial whose outcome never came (the stream died before it was up, say) does not
        // block the peer for good: after DIAL_WAIT_MS it is asked for again.
        if self
            .dialing
            .get(&peer)
            .is_some_and(|since| now.saturating_sub(*since) < DIAL_WAIT_MS)
        {
            return;
        }
        self.dialing.insert(peer, now);
        self.actions.push(Action::Dial(peer));
    }

    /// A new stream to `peer`. When two streams race (they came up within LINK_RACE_MS), both
    /// sides keep the one opened by the smaller peer id; otherwise the newer one replaces the
    /// older: the peer opened it because it lost the old one.
    fn on_link_up(&mut self, peer: PeerId, epoch: u64, dialer: PeerId) {
        let now = self.now_ms;
        if dialer == self.me {
            self.dialing.remove(&peer);
        }
        let preferred = self.me.min(peer);
        if let Some(old) = self.links.get(&peer).copied() {
            let racing = now.saturating_sub(old.since_ms) < LINK_RACE_MS;
            if racing && old.dialer == preferred && dialer != preferred {
                debug!(%peer, "keeping the stream opened by the smaller peer id");
                self.actions.push(Action::CloseLink { peer, epoch });
                return;
            }
            self.link_gone(peer, old.epoch);
            self.actions.push(Action::CloseLink {
                peer,
                epoch: old.epoch,
            });
        }
        debug!(%peer, epoch, "channel stream up");
        self.links.insert(
            peer,
            LinkState {
                epoch,
                dialer,
                since_ms: now,
            },
        );
        let mut greetings = Vec::new();
        for (_, s) in self.channels.iter_mut_where(|_, s| s.peer == peer) {
            s.ch.peer_disconnected();
            if let Some(msg) = s.ch.peer_connected() {
                greetings.push(msg);
            }
        }
        for msg in greetings {
            self.push(peer, msg, false);
        }
        for (_, msg) in self.queued.remove(&peer).unwrap_or_default() {
            self.push(peer, msg, false);
        }
        // A close proposal the peer may have missed goes out again on the new stream.
        for id in &self.proposing {
            if let Some(s) = self.channels.get_mut(id).filter(|s| s.peer == peer) {
                s.close_mut().proposal_retry = Retry::new();
            }
        }
    }

    /// Sends every close proposal the peer has not signed, once it is durable and the stream is
    /// up, again on a backoff until the peer signs; expires one that waited longer than
    /// `coop_close_wait` (in this run).
    fn drive_proposals(&mut self) {
        if self.proposing.is_empty() {
            return;
        }
        let now = self.now_ms;
        let wait_ms = self.config.coop_close_wait.as_millis() as u64;
        let mut out = Vec::new();
        let mut replies = Vec::new();
        let (channels, links) = (&mut self.channels, &self.links);
        self.proposing.retain(|id| {
            let Some(slot) = channels.get_mut(id) else {
                return false;
            };
            let (close, sig) = match slot.ch.close_state() {
                CloseState::Proposed { close, sig } if slot.ch.status() == ChannelStatus::ShuttingDown => {
                    (*close, *sig)
                }
                // Signed by both, closed unilaterally or paid out: the ledger path takes over.
                _ => return false,
            };
            let since = *slot.close_mut().proposed_at_ms.get_or_insert(now);
            if now.saturating_sub(since) > wait_ms {
                warn!(channel = %id, "the peer did not sign the cooperative close in time");
                slot.close_mut().proposal_expired = true;
                for w in slot.close_waiters.drain(..) {
                    replies.push((w, ManagerError::CloseExpired { secs: wait_ms / 1000 }));
                }
                return false;
            }
            // Persist before you send: the proposal carries our signature.
            if slot.durable()
                && links.contains_key(&slot.peer)
                && slot.close().proposal_retry.due_or_unsent(now)
            {
                slot.close_mut().proposal_retry.sent(now);
                out.push((slot.peer, ChannelMsg::ClosePropose { close, sig }));
            }
            true
        });
        for (w, e) in replies {
            self.reply(w, Err(e));
        }
        for (peer, msg) in out {
            self.push(peer, msg, false);
        }
    }

    fn cmd_open(
        &mut self,
        reply: CommandId,
        peer_key: PublicKey,
        deposit: u64,
        their_deposit: u64,
        ledger: &dyn LedgerView,
    ) {
        let Some(peer) = peer_id_from_public_key(&peer_key) else {
            return self.reply(reply, Err(ManagerError::Unreachable("not an ed25519 key".into())));
        };
        self.expire_opens();
        let of_peer = self.proposals.keys().filter(|(p, _)| *p == peer).count();
        let queued: usize = self.queued.values().map(Vec::len).sum();
        if of_peer >= PROPOSALS_PER_PEER_MAX || self.proposals.len() >= PROPOSALS_MAX || queued >= QUEUED_MAX
        {
            return self.reply(
                reply,
                Err(ManagerError::Busy("too many opens waiting for an answer".into())),
            );
        }
        let salt = self.random_hash();
        let expiry = ledger.time_ms().saturating_add(self.config.open_expiry_ms);
        let proposal = match OpenProposal::new(
            self.chain_id,
            &self.keypair,
            peer_key,
            deposit,
            their_deposit,
            salt,
            expiry,
        ) {
            Ok(p) => p,
            Err(e) => return self.reply(reply, Err(e.into())),
        };
        // The proposer pays the open's fee on top of its deposit: an open it cannot pay for
        // would be refused by the ledger after the peer signed it. The fee depends on the
        // length only, so placeholder signatures (of the same length) price it without signing.
        let sample = Tx::Open(SignedOpen {
            open: proposal.open().clone(),
            sig_a: Signature([0; 64]),
            sig_b: Signature([0; 64]),
        });
        let fee = ledger.fee(&sample);
        let available = ledger.balance(&self.keypair.public());
        if deposit.saturating_add(fee) > available {
            return self.reply(
                reply,
                Err(ManagerError::Funds(format!(
                    "the account holds {available}: it cannot lock {deposit} and pay the open's fee of {fee}"
                ))),
            );
        }
        let msg = proposal.message();
        self.proposals.insert(
            (peer, salt),
            Proposed {
                proposal,
                reply,
                at_ms: self.now_ms,
            },
        );
        if self.links.contains_key(&peer) {
            self.push(peer, msg, false);
        } else {
            // The proposal goes out once the stream is up.
            self.queued.entry(peer).or_default().push((self.now_ms, msg));
            self.dial(peer);
        }
    }

    fn cmd_close(&mut self, reply: CommandId, id: ChannelId, force: bool) {
        let now = self.now_ms;
        let Some(slot) = self.channels.get_mut(&id) else {
            return self.reply(reply, Err(ManagerError::UnknownChannel(id)));
        };
        if matches!(slot.ch.status(), ChannelStatus::Closed) {
            return self.reply(reply, Ok(Response::Closed));
        }
        // A cooperative close records no debt: what was paid on credit settles only through a
        // unilateral close (PROTOCOL.md, credit).
        let on_credit = slot.ch.credit_used_out() > 0 || slot.ch.credit_used_in() > 0;
        let force = force || (on_credit && slot.ch.status() == ChannelStatus::Open);
        if force {
            match slot.ch.unilateral_close_tx() {
                Ok(tx) => {
                    slot.force_persist = true;
                    slot.close_waiters.push(reply);
                    slot.close_mut().close_retry.sent(now);
                    self.actions.push(Action::Submit { tx, open: None });
                }
                Err(e) => self.reply(reply, Err(e.into())),
            }
            return;
        }
        let proposed_before = matches!(slot.ch.close_state(), CloseState::Proposed { .. })
            && slot.ch.status() == ChannelStatus::ShuttingDown;
        // The proposal leaves once it is durable (drive_proposals), and again until the peer
        // signs; closing again re-arms an expired one.
        let proposed = if proposed_before {
            Ok(())
        } else {
            slot.ch.propose_close().map(|_| ())
        };
        match proposed {
            Ok(()) => {
                slot.force_persist |= !proposed_before;
                slot.close_waiters.push(reply);
                let close = slot.close_mut();
                close.proposed_at_ms = Some(now);
                close.proposal_retry = Retry::new();
                close.proposal_expired = false;
                self.proposing.insert(id);
            }
            Err(e) => self.reply(reply, Err(e.into())),
        }
    }

    /// A channel that will never open: fail its waiters and forget it.
    fn fail_open(&mut self, id: &ChannelId, error: ManagerError, ledger: &dyn LedgerView) {
        let pending = self
            .channels
            .get(id)
            .is_some_and(|s| s.ch.status() == ChannelStatus::Pending);
        if !pending || ledger.channel(id).is_some() {
            return;
        }
        if let Some(mut slot) = self.channels.remove(id) {
            for w in slot.open_waiters.drain(..) {
                self.reply(w, Err(error.clone()));
            }
            if let Some(job) = slot.pay.take() {
                self.reply(job.reply, Err(error.clone()));
            }
            self.deletes_pending.push(*id);
            self.batch_wanted = true;
        }
    }

    fn on_open_propose(&mut self, peer: PeerId, open: ChannelOpen, ledger: &dyn LedgerView) {
        if public_key_from_peer_id(&peer) != Some(open.party_a) {
            return self.reject(
                peer,
                None,
                ErrorCode::Rejected,
                "party A is not the sender".into(),
            );
        }
        // Refuse what will be refused anyway before signing anything: too many opens of this
        // peer (or in total) waiting, or a deposit A cannot fund.
        self.expire_opens();
        let pending = |s: &&Slot| s.ch.status() == ChannelStatus::Pending && !s.ch.holder_is_a();
        let of_peer = self.acceptances.values().filter(|a| a.peer == peer).count()
            + self
                .channels
                .values()
                .filter(pending)
                .filter(|s| s.peer == peer)
                .count();
        let total = self.acceptances.len() + self.channels.values().filter(pending).count();
        let free_slot = self.slots_used.iter().position(|u| !u);
        if of_peer >= ACCEPTANCES_PER_PEER_MAX || total >= ACCEPTANCES_MAX || free_slot.is_none() {
            return self.reject(
                peer,
                None,
                ErrorCode::Busy,
                "too many opens waiting for a signature".into(),
            );
        }
        if ledger.balance(&open.party_a) < open.deposit_a {
            return self.reject(
                peer,
                None,
                ErrorCode::Rejected,
                "party A cannot fund its deposit".into(),
            );
        }
        let me = self.keypair.public();
        let policy = OpenPolicy {
            chain_id: self.chain_id,
            now_ms: ledger.time_ms(),
            expiry_ms_min_ahead: 1_000,
            expiry_ms_max_ahead: 3_600_000,
            deposit_own_max: ledger.balance(&me).min(self.config.accept_deposit_max),
            deposit_peer_min: self.config.accept_peer_deposit_min,
        };
        let salt_b = self.random_hash();
        match accept_open(&self.keypair, &open, &policy, salt_b) {
            Ok((acceptance, msg)) => {
                let slot = free_slot.unwrap_or(0);
                let id = acceptance.channel_id();
                let (open, sig_b) = match &msg {
                    ChannelMsg::OpenAccept { open, sig_b } => (open.clone(), *sig_b),
                    _ => return,
                };
                // Persist before you send: the acceptance carries our signature, so a restart
                // must still know it (and count it against the caps).
                self.slots_used[slot] = true;
                let record = encode(&(open.party_a, open.clone(), sig_b));
                self.meta_pending
                    .push((format!("{ACCEPTANCE_SLOT_PREFIX}{slot}"), record));
                self.acceptances.insert(
                    id,
                    Accepted {
                        peer,
                        open,
                        sig_b,
                        slot,
                        at_ms: self.now_ms,
                    },
                );
                self.push(peer, msg, true);
            }
            Err(e) => self.reject(peer, None, ErrorCode::Rejected, e.to_string()),
        }
    }

    fn on_message(&mut self, peer: PeerId, msg: ChannelMsg, ledger: &dyn LedgerView) {
        let now = self.now_ms;
        match msg {
            ChannelMsg::Hello { chain_id } => {
                if chain_id != self.chain_id {
                    self.reject(peer, None, ErrorCode::Rejected, "another chain".into());
                    if let Some(l) = self.links.get(&peer).copied() {
                        self.link_gone(peer, l.epoch);
                        self.actions.push(Action::CloseLink { peer, epoch: l.epoch });
                    }
                }
            }
            ChannelMsg::OpenPropose { open } => self.on_open_propose(peer, open, ledger),
            ChannelMsg::OpenAccept { open, sig_b } => {
                let Some(Proposed { proposal, reply, .. }) = self.proposals.remove(&(peer, open.salt_a))
                else {
                    return self.reject(peer, None, ErrorCode::Rejected, "no such proposal".into());
                };
                match proposal.on_accept(&self.keypair, &open, &sig_b) {
                    Ok((signed, msg)) => {
                        let tx = Tx::Open(signed.clone());
                        match self.add_channel(signed, peer) {
                            Ok(id) => {
                                // Our signature and the open's submission wait until the
                                // channel is durable: a restart must know every channel that
                                // can lock our funds.
                                self.push(peer, msg, true);
                                self.greet_new(id, peer);
                                if let Some(slot) = self.channels.get_mut(&id) {
                                    slot.open_waiters.push(reply);
                                    slot.open_retry.sent(now);
                                }
                                self.held_submits.push((self.next_batch, tx, Some(id)));
                            }
                            Err(e) => self.reply(reply, Err(e)),
                        }
                    }
                    Err(e) => {
                        self.reply(reply, Err(e.clone().into()));
                        self.reject(peer, None, ErrorCode::Rejected, e.to_string());
                    }
                }
            }
            ChannelMsg::OpenSigned { channel_id, sig_a } => {
                let known = self.acceptances.get(&channel_id).map(|a| a.peer);
                match known {
                    None => {
                        return self.reject(
                            peer,
                            Some(channel_id),
                            ErrorCode::UnknownChannel,
                            "no such open".into(),
                        )
                    }
                    Some(from) if from != peer => {
                        return self.reject(
                            peer,
                            Some(channel_id),
                            ErrorCode::Rejected,
                            "not your open".into(),
                        )
                    }
                    Some(_) => {}
                }
                let Some(a) = self.acceptances.get(&channel_id) else {
                    return;
                };
                let signed = SignedOpen {
                    open: a.open.clone(),
                    sig_a,
                    sig_b: a.sig_b,
                };
                if signed.verify().is_err() {
                    return self.reject(
                        peer,
                        Some(channel_id),
                        ErrorCode::BadSignature,
                        "bad signature of A".into(),
                    );
                }
                self.forget_acceptance(&channel_id);
                let tx = Tx::Open(signed.clone());
                if let Ok(id) = self.add_channel(signed, peer) {
                    self.greet_new(id, peer);
                    if let Some(slot) = self.channels.get_mut(&id) {
                        slot.open_retry.sent(now);
                    }
                    self.batch_wanted = true;
                    self.held_submits.push((self.next_batch, tx, Some(id)));
                }
            }
            ChannelMsg::Error {
                channel_id,
                code,
                text,
            } => {
                warn!(%peer, ?channel_id, ?code, %text, "peer reported an error");
                if let Some(slot) = channel_id
                    .filter(|_| code == ErrorCode::Busy)
                    .and_then(|id| self.channels.get_mut(&id))
                    .filter(|s| s.peer == peer && s.ch.unacked_len() > 0)
                {
                    // The peer refused a burst for now (its channel is still pending, its
                    // writes lag): every later burst fails to link, so the unacknowledged
                    // window goes again, once per wait.
                    slot.resend_at_ms
                        .get_or_insert(now.saturating_add(slot.resend_wait_ms));
                }
                if channel_id.is_none() {
                    // An open we proposed may have been refused: fail its waiter.
                    let refused: Vec<_> = self
                        .proposals
                        .keys()
                        .filter(|(p, _)| *p == peer)
                        .copied()
                        .collect();
                    for k in refused {
                        if let Some(p) = self.proposals.remove(&k) {
                            self.reply(p.reply, Err(ManagerError::Refused(text.clone())));
                        }
                    }
                }
            }
            other => self.on_channel_message(peer, other, ledger),
        }
    }

    fn on_channel_message(&mut self, peer: PeerId, msg: ChannelMsg, ledger: &dyn LedgerView) {
        let now = self.now_ms;
        let Some(id) = super::channel_of(&msg) else { return };
        let Some(slot) = self.channels.get_mut(&id) else {
            return self.reject(
                peer,
                Some(id),
                ErrorCode::UnknownChannel,
                "unknown channel".into(),
            );
        };
        if slot.peer != peer {
            return self.reject(
                peer,
                Some(id),
                ErrorCode::UnknownChannel,
                "not your channel".into(),
            );
        }
        let is_close_propose = matches!(msg, ChannelMsg::ClosePropose { .. });
        let newest_before = slot.ch.newest_incoming().map_or(0, |p| p.proof.seq);
        match slot.ch.handle_message(&msg) {
            Ok(handled) => {
                if let (Some(r), ChannelMsg::Pay { items, .. }) = (&handled.received, &msg) {
                    // Each payment of the burst's new proofs is stored with the burst.
                    slot.payments_received += r.payments as u64;
                    let runs = super::payments::runs_of(items, newest_before);
                    if let Some(first) = runs.first() {
                        self.payments_pending.push((id, first.first_seq, encode(&runs)));
                    }
                }
                if handled.acked.is_some() {
                    slot.resend_wait_ms = RESEND_WAIT_FIRST_MS;
                }
                // An ack, or a Reestablish whose report covers the job's last proof, ends it.
                let done = finish_pay_if_acked(slot, now);
                let mut submit = None;
                if let Some(signed) = handled.coop_close {
                    slot.force_persist = true;
                    let lnow = ledger.time_ms();
                    let repeat = slot.close().coop_sent.as_ref().is_some_and(|(close, at)| {
                        *close == signed.close && lnow < at.saturating_add(RESUBMIT_MS)
                    });
                    if !repeat {
                        let close = slot.close_mut();
                        close.coop_sent = Some((signed.close, lnow));
                        close.close_retry.sent(now);
                        submit = Some(Tx::CoopClose(signed));
                    }
                }
                if let Some((w, stats)) = done {
                    self.reply(w, Ok(Response::Paid(stats)));
                }
                if let Some(tx) = submit {
                    self.actions.push(Action::Submit { tx, open: None });
                }
                // Our CloseSign is a signature over the final balances: it waits for the
                // snapshot that records it.
                for m in handled.send {
                    let durable = is_close_propose && matches!(m, ChannelMsg::CloseSign { .. });
                    self.push(peer, m, durable);
                }
            }
            Err(e) => {
                let code = match e {
                    ChannelError::BadSignature => ErrorCode::BadSignature,
                    ref e if e.is_retryable() => ErrorCode::Busy,
                    _ => ErrorCode::Rejected,
                };
                debug!(%peer, %e, "channel message refused");
                self.reject(peer, Some(id), code, e.to_string());
            }
        }
    }

    /// Takes up every open on the ledger that names this key and that this manager does not
    /// know: a peer that took our `OpenAccept` and submitted the open itself, without ever
    /// sending `OpenSigned`, has locked our deposit, so the channel must be listed, watched and
    /// closable like any other. The scan follows the ledger block by block; its height is
    /// persisted with the adopted channels.
    fn adopt_ledger_opens(&mut self, ledger: &dyn LedgerView) {
        if ledger.height() <= self.adopted_height {
            return;
        }
        let me = self.keypair.public();
        let scan = ledger.opens_naming(&me, self.adopted_height);
        let mut adopted = false;
        for signed in scan.opens {
            let id = signed.open.channel_id();
            let known = self.channels.contains_key(&id);
            let live = matches!(
                ledger.channel(&id),
                Some(LedgerChannel::Open | LedgerChannel::Closing { .. })
            );
            let ours = signed.open.party_a == me || signed.open.party_b == me;
            if known || !live || !ours || signed.open.chain_id != self.chain_id {
                continue;
            }
            let them = if signed.open.party_a == me {
                signed.open.party_b
            } else {
                signed.open.party_a
            };
            let Some(peer) = peer_id_from_public_key(&them) else {
                continue;
            };
            match self.add_channel(signed, peer) {
                Ok(id) => {
                    warn!(channel = %id, %peer, "adopted an open the ledger holds that the peer never completed with us");
                    self.forget_acceptance(&id);
                    adopted = true;
                    // The peer may have greeted this channel on the stream that is up, and we
                    // refused it as unknown: a new stream greets every channel again.
                    if let Some(l) = self.links.get(&peer).copied() {
                        self.link_gone(peer, l.epoch);
                        self.actions.push(Action::CloseLink { peer, epoch: l.epoch });
                        self.dial(peer);
                    }
                }
                Err(e) => {
                    warn!(channel = %id, %e, "an open on the ledger names this key but cannot be taken up")
                }
            }
        }
        if scan.scanned_to > self.adopted_height {
            self.adopted_height = scan.scanned_to;
        }
        let stale = self.adopted_height >= self.adopted_written.saturating_add(ADOPTED_HEIGHT_WRITE_EVERY);
        if (adopted || stale) && self.adopted_height > self.adopted_written {
            self.adopted_written = self.adopted_height;
            self.meta_pending.retain(|(k, _)| k != ADOPTED_HEIGHT_KEY);
            self.meta_pending.push((
                ADOPTED_HEIGHT_KEY.to_string(),
                self.adopted_height.to_be_bytes().to_vec(),
            ));
        }
    }

    fn add_channel(&mut self, signed: SignedOpen, peer: PeerId) -> Result<ChannelId, ManagerError> {
        let id = signed.open.channel_id();
        if self.channels.contains_key(&id) {
            return Ok(id);
        }
        let ch = Channel::new(signed, self.keypair.clone())?;
        let mut slot = Slot::new(ch, peer);
        slot.force_persist = true;
        self.channels.insert(id, slot);
        info!(channel = %id, %peer, "channel signed by both parties");
        Ok(id)
    }

    /// Greets on a new channel when the stream is already up.
    fn greet_new(&mut self, id: ChannelId, peer: PeerId) {
        if !self.links.contains_key(&peer) {
            return;
        }
        let msg = self.channels.get_mut(&id).and_then(|s| s.ch.peer_connected());
        if let Some(msg) = msg {
            self.push(peer, msg, false);
        }
    }

    /// Follows the ledger: confirms opens, answers closes (the watchtower), settles when a
    /// window ends, reports payouts, and submits again what the ledger has not applied.
    fn on_ledger_changed(&mut self, ledger: &dyn LedgerView) {
        self.full_pass_ms = Some(self.now_ms);
        self.follow_ledger(ledger, None);
    }

    /// [`Manager::on_ledger_changed`] for the channels a block touched and those that wait on
    /// the ledger ([`Slot::follows_ledger`]); an open channel the block did not name has nothing
    /// to learn from it.
    fn on_block_applied(&mut self, touched: &[ChannelId], ledger: &dyn LedgerView) {
        let only: BTreeSet<ChannelId> = touched
            .iter()
            .filter(|id| self.channels.contains_key(id))
            .copied()
            .chain(
                self.channels
                    .iter()
                    .filter(|(_, s)| s.follows_ledger())
                    .map(|(id, _)| *id),
            )
            .collect();
        self.follow_ledger(ledger, Some(&only));
    }

    fn follow_ledger(&mut self, ledger: &dyn LedgerView, only: Option<&BTreeSet<ChannelId>>) {
        self.adopt_ledger_opens(ledger);
        let lnow = ledger.time_ms();
        let now = self.now_ms;
        let mut to_submit = Vec::new();
        let mut replies: Vec<(CommandId, Result<Response, ManagerError>)> = Vec::new();
        let mut void = Vec::new();
        let held_open: BTreeSet<ChannelId> = self.held_submits.iter().filter_map(|(_, _, o)| *o).collect();
        for (id, slot) in self
            .channels
            .iter_mut_where(|id, _| only.is_none_or(|o| o.contains(id)))
        {
            let Some(on_ledger) = ledger.channel(id) else {
                if slot.ch.status() == ChannelStatus::Pending {
                    if lnow > slot.ch.signed_open().open.expiry_ms {
                        void.push(*id);
                    } else if !held_open.contains(id) && slot.durable() && slot.open_retry.due_or_unsent(now)
                    {
                        // Lost with a mempool, refused for now, or never sent before a restart.
                        slot.open_retry.sent(now);
                        to_submit.push((Tx::Open(slot.ch.signed_open().clone()), Some(*id)));
                    }
                }
                continue;
            };
            match on_ledger {
                LedgerChannel::Open => {
                    set_credit(&mut slot.ch, id, lnow, ledger);
                    if slot.ch.status() == ChannelStatus::Pending && slot.ch.on_open_confirmed().is_ok() {
                        info!(channel = %id, "channel open on the ledger");
                        slot.force_persist = true;
                        for w in slot.open_waiters.drain(..) {
                            replies.push((w, Ok(Response::Opened(*id))));
                        }
                    }
                    if slot.close().close_retry.due_or_unsent(now) {
                        let coop = slot.ch.coop_close_tx();
                        let unilateral = match slot.ch.status() {
                            ChannelStatus::Closing => slot.ch.unilateral_close_tx().ok(),
                            _ => None,
                        };
                        let coop = coop.filter(|_| {
                            matches!(
                                slot.ch.status(),
                                ChannelStatus::ShuttingDown | ChannelStatus::Closing
                            )
                        });
                        if coop.is_some() || unilateral.is_some() {
                            slot.close_mut().close_retry.sent(now);
                            debug!(channel = %id, "submitting our close again");
                            to_submit.extend(coop.into_iter().chain(unilateral).map(|t| (t, None)));
                        }
                    }
                }
                LedgerChannel::Closing {
                    window_end_ms,
                    best_ab,
                    best_ba,
                } => {
                    slot.ch.on_close_seen();
                    let moved = slot
                        .close()
                        .answered
                        .is_none_or(|(ab, ba, _)| (ab, ba) != (best_ab, best_ba));
                    if moved {
                        slot.close_mut().close_retry = Retry::new();
                    }
                    let due = slot.close().close_retry.due(now);
                    let stale = moved
                        || due
                        || slot
                            .close()
                            .answered
                            .is_some_and(|(_, _, at)| lnow >= at.saturating_add(RESUBMIT_MS));
                    if stale && lnow < window_end_ms {
                        slot.close_mut().answered = Some((best_ab, best_ba, lnow));
                        if let Some(update) = slot.ch.answer_close(best_ab, best_ba) {
                            info!(channel = %id, "answering a close with a newer proof");
                            slot.close_mut().close_retry.sent(now);
                            to_submit.push((update, None));
                        }
                    }
                    let resend = due
                        || slot
                            .close()
                            .settle_sent_ms
                            .is_none_or(|t| lnow >= t.saturating_add(RESUBMIT_MS));
                    if lnow >= window_end_ms && resend {
                        let close = slot.close_mut();
                        close.settle_sent_ms = Some(lnow);
                        close.close_retry.sent(now);
                        to_submit.push((
                            Tx::Settle(Settle {
                                chain_id: self.chain_id,
                                channel_id: *id,
                            }),
                            None,
                        ));
                    }
                }
                LedgerChannel::Closed { .. } => {
                    if slot.ch.status() != ChannelStatus::Closed {
                        slot.ch.on_settled();
                        slot.force_persist = true;
                        info!(channel = %id, "channel paid out");
                    }
                    // A payout counts only once a witnessed checkpoint covers it.
                    let closed_at = *slot.close_mut().closed_at.get_or_insert(ledger.height());
                    if ledger.witnessed_height() >= closed_at {
                        for w in slot.close_waiters.drain(..) {
                            replies.push((w, Ok(Response::Closed)));
                        }
                    } else if ledger.censored(id) {
                        warn!(channel = %id, "the payout will never be witnessed: an update was censored");
                        for w in slot.close_waiters.drain(..) {
                            replies.push((
                                w,
                                Err(ManagerError::Ledger(
                                    "settled without a valid update (censorship): the settlement is not witnessed"
                                        .into(),
                                )),
                            ));
                        }
                    }
                    if let Some(job) = slot.pay.take() {
                        replies.push((job.reply, Err(ManagerError::Refused("channel closed".into()))));
                    }
                }
            }
        }
        for (id, result) in replies {
            self.reply(id, result);
        }
        for (tx, open) in to_submit {
            self.actions.push(Action::Submit { tx, open });
        }
        for id in void {
            self.fail_open(
                &id,
                ManagerError::Ledger("the open expired before the ledger included it".into()),
                ledger,
            );
        }
    }

    /// Signs runs of proofs with `signer` from now on (by default on the calling thread).
    pub fn set_signer(&mut self, signer: Arc<dyn ProofSigner>) {
        self.signer = signer;
    }

    /// Answers the round's HTTP checks (their signatures in one batch), signs what payment
    /// jobs may sign, resends close proposals that are due, and starts the next group commit
    /// if none is in flight. Returns how many proofs it signed.
    pub fn poll(&mut self, now_ms: u64) -> usize {
        self.now_ms = self.now_ms.max(now_ms);
        self.http_check_round();
        let signed = self.sign_round();
        self.drive_proposals();
        self.start_batch();
        signed
    }

    /// Signs the next chunk of every payment job whose peer's queue has room.
    fn sign_round(&mut self) -> usize {
        let now = self.now_ms;
        let mut signed = 0;
        let mut frames = Vec::new();
        let mut replies = Vec::new();
        // Only channels that may have a job: a pass over every channel would make each round
        // of one paying channel cost in proportion to all the channels that exist.
        let paying: Vec<ChannelId> = self.channels.paying().copied().collect();
        for id in &paying {
            let Some(slot) = self.channels.get_mut(id) else {
                continue;
            };
            let Some(job) = slot.pay.as_mut().filter(|j| j.remaining > 0) else {
                // Listed again when it is next lent mutably (a new job is set through a loan).
                self.channels.not_paying(id);
                continue;
            };
            if !self.links.contains_key(&slot.peer) {
                continue;
            }
            let queued = self.outbox.get(&slot.peer).map_or(0, VecDeque::len)
                + self.held.get(&slot.peer).map_or(0, VecDeque::len);
            if queued >= OUTBOX_PAY_PAUSE_FRAMES {
                continue;
            }
            let payment = Payment {
                amount: job.amount,
                reference: job.reference,
            };
            let per_proof = job.per_proof as u64;
            let mut items = Vec::new();
            let mut failed = None;
            // Whole proofs first, as one run; then the job's last, shorter proof.
            let whole = job.remaining / per_proof;
            let mut runs = Vec::new();
            if whole > 0 {
                runs.push((job.per_proof, usize::try_from(whole).unwrap_or(usize::MAX)));
            }
            if job.remaining % per_proof > 0 {
                runs.push(((job.remaining % per_proof) as usize, 1));
            }
            // One round is one pay frame: it must fit the frame size with these memos.
            let round_max =
                ROUND_SIGNATURES_MAX.min(paychan_protocol::limits::pay_items_per_frame(job.per_proof));
            for (size, proofs) in runs {
                let room = round_max.saturating_sub(items.len());
                if room == 0 {
                    break;
                }
                let payments = vec![payment; size];
                match slot.ch.pay_run(&payments, proofs.min(room), self.signer.as_ref()) {
                    Ok(run) => {
                        let n = run.proofs.len();
                        job.remaining -= (n * size) as u64;
                        slot.payments_sent += (n * size) as u64;
                        job.proofs += n as u64;
                        if let Some(last) = run.proofs.last() {
                            job.last_seq = last.proof.seq;
                        }
                        items.extend(run.proofs.into_iter().map(|proof| PayItem {
                            proof,
                            payments: payments.clone(),
                        }));
                        if let Some(e) = run.stopped {
                            if !e.is_retryable() {
                                failed = Some(e);
                            }
                            break;
                        }
                    }
                    Err(e) if e.is_retryable() => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                if let Some(job) = slot.pay.take() {
                    replies.push((job.reply, Err(e.into())));
                }
            }
            signed += items.len();
            if !items.is_empty() {
                frames.push((
                    slot.peer,
                    ChannelMsg::Pay {
                        channel_id: *id,
                        items,
                    },
                ));
            }
            // A job whose proofs were all acked already (none left to sign) finishes here.
            if let Some((w, stats)) = finish_pay_if_acked(slot, now) {
                replies.push((w, Ok(Response::Paid(stats))));
            }
        }
        for (w, r) in replies {
            self.reply(w, r);
        }
        for (peer, msg) in frames {
            self.push(peer, msg, false);
        }
        signed
    }

    /// Group commit: one snapshot per channel that needs it and the pending metadata, as one
    /// batch, while no other batch is in flight.
    fn start_batch(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let mut batch = Batch {
            id: self.next_batch,
            ..Batch::default()
        };
        let mut snaps = Vec::new();
        // A channel's state changes only while it is lent mutably, so only the channels lent
        // since the last batch can need a snapshot (in id order, as a pass over all was).
        for id in self.channels.take_touched() {
            let Some(slot) = self.channels.get_mut_unrecorded(&id) else {
                continue;
            };
            if !slot.ch.persist_needs().any() && !slot.force_persist {
                continue;
            }
            let bytes: Arc<[u8]> = encode(&slot.ch.snapshot()).into();
            batch.channels.push((id, Arc::clone(&bytes)));
            slot.force_persist = false;
            slot.in_flight = true;
            snaps.push((id, bytes));
        }
        batch.meta = std::mem::take(&mut self.meta_pending);
        batch.deletes = std::mem::take(&mut self.deletes_pending);
        batch.payments = std::mem::take(&mut self.payments_pending);
        if batch.is_empty() && !self.batch_wanted {
            return;
        }
        self.batch_wanted = false;
        self.next_batch += 1;
        self.in_flight = Some(InFlight {
            id: batch.id,
            snaps,
            meta: batch.meta.clone(),
            deletes: batch.deletes.clone(),
            payments: batch.payments.clone(),
        });
        #[cfg(feature = "planted-bugs")]
        if self.planted_ack_before_durable {
            // The planted bug: report the batch durable before it is written.
            self.actions.push(Action::Persist(batch.clone()));
            self.on_persisted(batch.id, Ok(()));
            return;
        }
        self.actions.push(Action::Persist(batch));
    }

    fn on_persisted(&mut self, batch: u64, result: Result<(), String>) {
        let Some(flight) = self.in_flight.take_if(|f| f.id == batch) else {
            return;
        };
        match result {
            Ok(()) => {
                let mut out = Vec::new();
                for (id, bytes) in &flight.snaps {
                    if let Some(slot) = self.channels.get_mut(id) {
                        slot.in_flight = false;
                        // The manager encoded these bytes itself; they decode.
                        let snap = match decode::<PersistedChannel>(bytes, PERSISTED_BYTES_MAX) {
                            Ok(snap) => snap,
                            Err(e) => {
                                warn!(channel = %id, %e, "own snapshot does not decode");
                                continue;
                            }
                        };
                        match slot.ch.persisted(&snap) {
                            Ok(Some(msg)) => out.push((slot.peer, msg)),
                            Ok(None) => {}
                            Err(e) => warn!(channel = %id, %e, "persist report refused"),
                        }
                    }
                }
                // Release what waited for this batch, per peer in order.
                for (peer, held) in self.held.iter_mut() {
                    let outbox = self.outbox.entry(*peer).or_default();
                    while held.front().is_some_and(|h| h.tag <= batch) {
                        if let Some(h) = held.pop_front() {
                            outbox.push_back(h.msg);
                        }
                    }
                }
                self.held.retain(|_, h| !h.is_empty());
                let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_submits)
                    .into_iter()
                    .partition(|(t, _, _)| *t <= batch);
                self.held_submits = wait;
                for (_, tx, open) in ready {
                    self.actions.push(Action::Submit { tx, open });
                }
                for (peer, msg) in out {
                    self.push(peer, msg, false);
                }
                self.http_persisted(batch);
            }
            Err(e) => {
                // Nothing of it is durable: write it all again in the next batch, and what
                // waited for it waits for that one.
                warn!(batch, %e, "persisting failed; retrying");
                for (id, _) in &flight.snaps {
                    if let Some(slot) = self.channels.get_mut(id) {
                        slot.in_flight = false;
                        slot.force_persist = true;
                    }
                }
                let mut meta = flight.meta;
                meta.append(&mut self.meta_pending);
                self.meta_pending = meta;
                self.deletes_pending.extend(flight.deletes);
                let mut payments = flight.payments;
                payments.append(&mut self.payments_pending);
                self.payments_pending = payments;
                let next = self.next_batch;
                for held in self.held.values_mut() {
                    for h in held.iter_mut().filter(|h| h.tag == batch) {
                        h.tag = next;
                    }
                }
                for (t, _, _) in self.held_submits.iter_mut().filter(|(t, _, _)| *t == batch) {
                    *t = next;
                }
                self.http_persist_failed(batch);
                self.batch_wanted = true;
            }
        }
    }
}

/// The answer to a payment job once its last proof is acknowledged.
/// Sets the credit lines of an open channel from the ledger: a line is in force while ledger
/// time has not passed its expiry (PROTOCOL.md, credit: lines).
fn set_credit(ch: &mut Channel, id: &ChannelId, lnow: u64, ledger: &dyn LedgerView) {
    let in_force = |l: CreditLine| if lnow <= l.expiry_ms { l.limit } else { 0 };
    let out_dir = if ch.holder_is_a() {
        Direction::AToB
    } else {
        Direction::BToA
    };
    let out = ledger.credit_line(id, out_dir).map_or(0, in_force);
    let inc = ledger.credit_line(id, out_dir.reverse()).map(in_force);
    if ch.credit() != (out, inc) {
        debug!(channel = %id, credit_out = out, credit_in = ?inc, "credit lines in force");
        ch.set_credit(out, inc);
    }
}

/// A slot as [`Command::List`] shows it.
fn slot_view(cid: &ChannelId, s: &Slot, ledger: &dyn LedgerView) -> ChannelView {
    let mut v = super::view(cid, &s.ch, ledger.channel(cid));
    v.payments_sent = s.payments_sent;
    v.payments_received = s.payments_received;
    if s.close().proposal_expired && s.ch.status() == ChannelStatus::ShuttingDown {
        v.status = "close_expired".into();
    }
    v
}

fn finish_pay_if_acked(slot: &mut Slot, now_ms: u64) -> Option<(CommandId, PayStats)> {
    let done = slot.pay.as_ref().is_some_and(|j| {
        j.remaining == 0
            && slot
                .ch
                .acked_outgoing()
                .is_some_and(|p| p.proof.seq >= j.last_seq)
    });
    if !done {
        return None;
    }
    let job = slot.pay.take()?;
    let elapsed_ms = now_ms.saturating_sub(job.started_ms);
    Some((
        job.reply,
        PayStats {
            count: job.count,
            proofs: job.proofs,
            amount: job.amount.saturating_mul(job.count),
            elapsed_ms,
            per_second: job.count as f64 / (elapsed_ms as f64 / 1000.0).max(1e-3),
        },
    ))
}

#[path = "core_http.rs"]
mod http;
use self::http::HttpState;
pub use self::http::{HttpChecked, HttpRefusal, HttpRefusalKind};

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

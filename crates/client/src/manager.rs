//! The channel manager: one actor task owns every channel of one key and the stream to each
//! peer; the rest of the program holds a cloneable [`ChannelManager`] handle.
//!
//! Each round of the actor: take every input that is waiting (commands, inbound frames, link
//! changes, ledger changes), sign the next chunk of any payment job, persist one snapshot per
//! channel that needs it with a single flush for all (group commit), and only then release what
//! waited for durability (acks, reestablishes).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paychan_channel::open::{accept_open, OpenAcceptance, OpenPolicy, OpenProposal};
use paychan_channel::{Channel, ChannelError, ChannelStatus, CloseState, PersistedChannel};
use paychan_net::{peer_id_from_public_key, public_key_from_peer_id, NetHandle, PeerId};
use paychan_protocol::codec::{decode, encode};
use paychan_protocol::ledger::Settle;
use paychan_protocol::limits::PAY_PROOFS_MAX;
use paychan_protocol::wire::{ChannelMsg, ErrorCode, PayItem};
use paychan_protocol::{ChannelId, Hash32, Keypair, Payment, PublicKey, Tx};
use paychan_store::Store;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::ledger::{LedgerAccess, LedgerChannel};
use crate::link::{self, Link};

/// Inputs waiting for the actor.
const INBOX_MAX: usize = 4096;
/// Inputs taken per round before the actor signs and persists.
const ROUND_INPUTS_MAX: usize = 1024;
/// Proofs signed per channel per round, so that acks and other channels are served between.
const ROUND_SIGNATURES_MAX: usize = 256;
const _: () = assert!(ROUND_SIGNATURES_MAX <= PAY_PROOFS_MAX);

/// Ledger time after which an answer to a close or a settle that the ledger has not applied is
/// submitted again.
const RESUBMIT_MS: u64 = 2_000;

/// First wait before a close transaction the ledger has not applied yet (a cooperative close,
/// a unilateral close, an answer to a close, a settle) is submitted again; it doubles after each
/// submission up to [`CLOSE_RESUBMIT_MAX`]. A close proposal the peer has not signed is resent
/// on the same schedule.
const CLOSE_RESUBMIT_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between two submissions of a close transaction.
const CLOSE_RESUBMIT_MAX: Duration = Duration::from_secs(30);

/// How long an open proposal waits for a stream to its peer before it fails (the stream is
/// retried every tick meanwhile).
const OPEN_STREAM_WAIT: Duration = Duration::from_secs(8);
/// Opens a peer proposed that wait, per peer and in total: accepted (signed by this key) and
/// waiting for the peer's signature, or signed by both and not yet on the ledger. A proposal
/// beyond either cap is refused before signing.
const ACCEPTANCES_PER_PEER_MAX: usize = 8;
const ACCEPTANCES_MAX: usize = 1_024;
/// How long an acceptance waits for the peer's signature before it is forgotten.
const ACCEPTANCE_TTL: Duration = Duration::from_secs(60);
/// Opens this key proposed that wait for the peer's answer, per peer and in total.
const PROPOSALS_PER_PEER_MAX: usize = 8;
const PROPOSALS_MAX: usize = 256;
/// How long an open we proposed waits for the peer's answer once sent.
const PROPOSAL_TTL: Duration = Duration::from_secs(30);
const _: () = assert!(ACCEPTANCES_PER_PEER_MAX <= ACCEPTANCES_MAX);
const _: () = assert!(PROPOSALS_PER_PEER_MAX <= PROPOSALS_MAX);
const _: () = assert!(OPEN_STREAM_WAIT.as_secs() < PROPOSAL_TTL.as_secs());
/// Largest encoded persisted channel accepted back from the store.
const PERSISTED_BYTES_MAX: usize = 16 * 1024;

/// How the manager behaves.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// How long after the current ledger time an open we propose stays includable.
    pub open_expiry_ms: u64,
    /// The most this key locks in a channel a peer proposes (also capped by its balance).
    pub accept_deposit_max: u64,
    /// How long a cooperative close we proposed waits for the peer's signature (resent on
    /// every reconnect and on a backoff meanwhile) before it expires: the close command then
    /// fails and the channel shows `close_expired`, to be closed again or with `force`.
    pub coop_close_wait: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            open_expiry_ms: 120_000,
            accept_deposit_max: u64::MAX,
            coop_close_wait: Duration::from_secs(600),
        }
    }
}

/// Errors of the manager's commands.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManagerError {
    /// No channel with that id.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
    /// The peer's key is not a libp2p identity, or it could not be reached.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The peer refused.
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// The channel state machine refused.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The ledger refused or could not be reached.
    #[error("ledger: {0}")]
    Ledger(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Too much is waiting already (opens waiting for an answer); try again later.
    #[error("busy: {0}")]
    Busy(String),
    /// The manager stopped.
    #[error("channel manager stopped")]
    Stopped,
    /// The peer did not sign our cooperative close in time.
    #[error("the peer did not sign the cooperative close within {secs} s: close again, or close with force")]
    CloseExpired {
        /// How long the proposal waited.
        secs: u64,
    },
}

/// A channel as [`ChannelManager::list`] shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    /// Channel id (hex).
    pub id: String,
    /// Counterparty account (hex).
    pub counterparty: String,
    /// Status of the channel.
    pub status: String,
    /// Whether this key proposed the channel (party A).
    pub holder_is_a: bool,
    /// This key's deposit.
    pub deposit: u64,
    /// The counterparty's deposit.
    pub their_deposit: u64,
    /// This key's balance in the channel: once the ledger has paid the channel out, the
    /// ledger's payout to this key (then `payout`), otherwise the off-chain balance.
    pub balance: u64,
    /// The counterparty's balance in the channel (its payout once paid out).
    pub their_balance: u64,
    /// The ledger's payout to this key, once the channel is paid out.
    pub payout: Option<u64>,
    /// This key's off-chain balance, once the channel is paid out: what the payout should be.
    pub expected: Option<u64>,
    /// How much less than `expected` the ledger paid this key (0 when it paid in full).
    pub shortfall: Option<u64>,
    /// Cumulative amount paid.
    pub sent: u64,
    /// Cumulative amount received (verified).
    pub received: u64,
    /// Signed proofs the counterparty has not acknowledged yet.
    pub unacked: usize,
}

/// What a payment job did.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PayStats {
    /// Payments made (each one signed proof).
    pub count: u64,
    /// Sum paid.
    pub amount: u64,
    /// Wall time from the first signature to the last ack (ms).
    pub elapsed_ms: u64,
    /// Payments per second over that time.
    pub per_second: f64,
}

type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

/// Inputs of the actor: commands from handles, and events from links.
#[derive(Debug)]
pub(crate) enum Input {
    Open {
        peer_key: PublicKey,
        deposit: u64,
        their_deposit: u64,
        reply: Reply<ChannelId>,
    },
    Pay {
        id: ChannelId,
        amount: u64,
        count: u64,
        reference: Hash32,
        reply: Reply<PayStats>,
    },
    Close {
        id: ChannelId,
        force: bool,
        reply: Reply<()>,
    },
    List {
        reply: oneshot::Sender<Vec<ChannelView>>,
    },
    LedgerChanged,
    PeerConnected(PeerId),
    LinkUp {
        peer: PeerId,
        link: Link,
    },
    LinkDown {
        peer: PeerId,
        epoch: u64,
    },
    DialFailed(PeerId),
    OpenRefused {
        id: ChannelId,
        why: String,
    },
    Inbound {
        peer: PeerId,
        epoch: u64,
        msg: ChannelMsg,
    },
}

/// A cloneable handle on the manager.
#[derive(Debug, Clone)]
pub struct ChannelManager {
    inbox: mpsc::Sender<Input>,
}

impl ChannelManager {
    /// Restores the channels kept in `store`, accepts incoming channel streams and starts the
    /// actor on the current tokio runtime.
    pub fn start(
        keypair: Keypair,
        net: NetHandle,
        store: Arc<dyn Store>,
        ledger: Arc<dyn LedgerAccess>,
        config: ManagerConfig,
    ) -> Result<ChannelManager, ManagerError> {
        let (tx, rx) = mpsc::channel(INBOX_MAX);
        let me = net.local_peer_id();
        let chain_id = ledger.chain_id();
        let mut channels = HashMap::new();
        for (id, bytes) in store
            .channels()
            .map_err(|e| ManagerError::Storage(e.to_string()))?
        {
            let persisted: PersistedChannel = decode(&bytes, PERSISTED_BYTES_MAX)
                .map_err(|e| ManagerError::Storage(format!("{id}: {e}")))?;
            let ch = Channel::restore(persisted, keypair.clone())?;
            let Some(peer) = peer_id_from_public_key(&ch.counterparty_key()) else {
                continue;
            };
            channels.insert(id, Slot::new(ch, peer));
        }
        // A close proposal kept across the restart is sent again once the peer is back.
        let proposing = channels
            .iter()
            .filter(|(_, s)| matches!(s.ch.close_state(), CloseState::Proposed { .. }))
            .map(|(id, _)| *id)
            .collect();
        info!(channels = channels.len(), "channels restored");
        let mut incoming = net
            .accept_channel_streams()
            .map_err(|e| ManagerError::Unreachable(e.to_string()))?;
        let inbox = tx.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            let slots = link::StreamSlots::default();
            while let Some((peer, stream)) = incoming.next().await {
                let Some(slot) = slots.acquire(peer) else {
                    debug!(%peer, "too many channel streams from one peer; closing the new one");
                    drop(stream);
                    continue;
                };
                link::start_accepted(peer, stream, chain_id, inbox.clone(), slot);
            }
        });
        let actor = Actor {
            keypair,
            me,
            chain_id,
            net,
            store,
            ledger,
            config,
            inbox: tx.clone(),
            channels,
            links: HashMap::new(),
            dialing: HashSet::new(),
            queued: HashMap::new(),
            proposals: HashMap::new(),
            acceptances: HashMap::new(),
            proposing,
        };
        tokio::spawn(actor.run(rx));
        Ok(ChannelManager { inbox: tx })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Input) -> Result<T, ManagerError> {
        let (tx, rx) = oneshot::channel();
        self.inbox
            .send(make(tx))
            .await
            .map_err(|_| ManagerError::Stopped)?;
        rx.await.map_err(|_| ManagerError::Stopped)?
    }

    /// Opens a channel with `peer_key`, locking `deposit` of ours and `their_deposit` of theirs;
    /// returns once a block holding the open is applied.
    pub async fn open(
        &self,
        peer_key: PublicKey,
        deposit: u64,
        their_deposit: u64,
    ) -> Result<ChannelId, ManagerError> {
        self.ask(|reply| Input::Open {
            peer_key,
            deposit,
            their_deposit,
            reply,
        })
        .await
    }

    /// Pays `amount` `count` times, each payment its own signed proof, pipelined; returns once
    /// the counterparty has acknowledged (persisted) the last one.
    pub async fn pay(
        &self,
        id: ChannelId,
        amount: u64,
        count: u64,
        reference: Hash32,
    ) -> Result<PayStats, ManagerError> {
        self.ask(|reply| Input::Pay {
            id,
            amount,
            count,
            reference,
            reply,
        })
        .await
    }

    /// Closes cooperatively, or unilaterally with `force`; returns once the payout is covered by a
    /// witnessed checkpoint (an error if the settlement was obtained by censorship).
    pub async fn close(&self, id: ChannelId, force: bool) -> Result<(), ManagerError> {
        self.ask(|reply| Input::Close { id, force, reply }).await
    }

    /// Every channel with its balances.
    pub async fn list(&self) -> Result<Vec<ChannelView>, ManagerError> {
        let (tx, rx) = oneshot::channel();
        self.inbox
            .send(Input::List { reply: tx })
            .await
            .map_err(|_| ManagerError::Stopped)?;
        rx.await.map_err(|_| ManagerError::Stopped)
    }

    /// Tells the manager that the ledger view moved (a block was applied).
    pub fn ledger_changed(&self) {
        let _ = self.inbox.try_send(Input::LedgerChanged);
    }

    /// Tells the manager that a libp2p connection to `peer` is up.
    pub fn peer_connected(&self, peer: PeerId) {
        let _ = self.inbox.try_send(Input::PeerConnected(peer));
    }
}

/// A payment job in progress.
#[derive(Debug)]
struct PayJob {
    amount: u64,
    reference: Hash32,
    remaining: u64,
    count: u64,
    last_seq: u64,
    started: Instant,
    reply: Reply<PayStats>,
}

#[derive(Debug)]
struct Slot {
    ch: Channel,
    peer: PeerId,
    pay: Option<PayJob>,
    open_waiters: Vec<Reply<ChannelId>>,
    close_waiters: Vec<Reply<()>>,
    /// Ledger best amounts last answered, and the ledger time of that answer.
    answered: Option<(u64, u64, u64)>,
    /// Ledger time at which a settle was last submitted.
    settle_sent_ms: Option<u64>,
    /// The cooperative close last submitted, and the ledger time of that submission: a peer
    /// repeating its proposal gets the same answer, not another submission.
    coop_sent: Option<(paychan_protocol::channel::CoopClose, u64)>,
    /// Write the snapshot in the next round even if the channel reports nothing new.
    force_persist: bool,
    /// Ledger height at which the payout was first seen.
    closed_at: Option<u64>,
    /// When the close transaction of the current state goes to the ledger again.
    close_retry: Retry,
    /// Since when our close proposal waits for the peer's signature (this run).
    proposed_at: Option<Instant>,
    /// When our close proposal goes to the peer again.
    proposal_retry: Retry,
    /// Our close proposal waited longer than `coop_close_wait`; it is no longer resent.
    proposal_expired: bool,
}

/// A capped exponential backoff for resending something until its effect is seen.
#[derive(Debug)]
struct Retry {
    /// When to send again; `None` while nothing was sent in this run.
    next: Option<Instant>,
    delay: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry {
            next: None,
            delay: CLOSE_RESUBMIT_FIRST,
        }
    }

    /// Nothing was sent yet, or the wait is over.
    fn due_or_unsent(&self) -> bool {
        self.next.is_none_or(|t| Instant::now() >= t)
    }

    /// Something was sent and the wait is over.
    fn due(&self) -> bool {
        self.next.is_some_and(|t| Instant::now() >= t)
    }

    /// It was sent now: wait, then twice as long next time.
    fn sent(&mut self) {
        self.next = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(CLOSE_RESUBMIT_MAX);
    }
}

impl Slot {
    fn new(ch: Channel, peer: PeerId) -> Slot {
        Slot {
            ch,
            peer,
            pay: None,
            open_waiters: vec![],
            close_waiters: vec![],
            answered: None,
            settle_sent_ms: None,
            coop_sent: None,
            force_persist: false,
            closed_at: None,
            close_retry: Retry::new(),
            proposed_at: None,
            proposal_retry: Retry::new(),
            proposal_expired: false,
        }
    }
}

struct Actor {
    keypair: Keypair,
    me: PeerId,
    chain_id: Hash32,
    net: NetHandle,
    store: Arc<dyn Store>,
    ledger: Arc<dyn LedgerAccess>,
    config: ManagerConfig,
    inbox: mpsc::Sender<Input>,
    channels: HashMap<ChannelId, Slot>,
    links: HashMap<PeerId, Link>,
    dialing: HashSet<PeerId>,
    /// Messages waiting for a stream to their peer (open proposals), with when they were queued.
    queued: HashMap<PeerId, Vec<(Instant, ChannelMsg)>>,
    /// Opens this key proposed, waiting for the peer's answer (bounded, expiring).
    proposals: HashMap<(PeerId, Hash32), Proposed>,
    /// Opens peers proposed that this key signed, waiting for their signature (bounded,
    /// expiring).
    acceptances: HashMap<ChannelId, Accepted>,
    /// Channels whose cooperative close we proposed and the peer has not signed yet.
    proposing: HashSet<ChannelId>,
}

/// An open this key proposed.
#[derive(Debug)]
struct Proposed {
    proposal: OpenProposal,
    reply: Reply<ChannelId>,
    at: Instant,
}

/// An open a peer proposed and this key signed.
#[derive(Debug)]
struct Accepted {
    peer: PeerId,
    acceptance: OpenAcceptance,
    at: Instant,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.on_ledger_changed();
        let mut progress = false;
        loop {
            // Keep signing without waiting only while the last round made progress; a job that
            // cannot sign now (window full, link down, not reestablished) waits for an input.
            if progress {
                tokio::task::yield_now().await;
            } else {
                tokio::select! {
                    input = rx.recv() => match input {
                        Some(i) => self.on_input(i).await,
                        None => return,
                    },
                    _ = tick.tick() => self.on_tick(),
                }
            }
            for _ in 0..ROUND_INPUTS_MAX {
                match rx.try_recv() {
                    Ok(i) => self.on_input(i).await,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let signed_now = self.sign_round().await;
            let persisted = self.persist_round().await;
            self.drive_proposals().await;
            // A persist may have unblocked signing (a seq reservation became durable).
            progress = signed_now > 0 || (persisted && self.has_pay_work());
        }
    }

    async fn send(&self, peer: PeerId, msg: ChannelMsg) {
        if let Some(link) = self.links.get(&peer) {
            let _ = link.tx.send(msg).await;
        }
    }

    async fn on_input(&mut self, input: Input) {
        match input {
            Input::Open {
                peer_key,
                deposit,
                their_deposit,
                reply,
            } => self.cmd_open(peer_key, deposit, their_deposit, reply).await,
            Input::Pay {
                id,
                amount,
                count,
                reference,
                reply,
            } => {
                let Some(slot) = self.channels.get_mut(&id) else {
                    let _ = reply.send(Err(ManagerError::UnknownChannel(id)));
                    return;
                };
                if let Some(job) = slot.pay.take() {
                    let _ = job.reply.send(Err(ManagerError::Refused(
                        "superseded by a newer payment job".into(),
                    )));
                }
                if count == 0 {
                    let _ = reply.send(Ok(PayStats {
                        count: 0,
                        amount: 0,
                        elapsed_ms: 0,
                        per_second: 0.0,
                    }));
                    return;
                }
                slot.pay = Some(PayJob {
                    amount,
                    reference,
                    remaining: count,
                    count,
                    last_seq: 0,
                    started: Instant::now(),
                    reply,
                });
            }
            Input::Close { id, force, reply } => self.cmd_close(id, force, reply).await,
            Input::List { reply } => {
                let ledger = &self.ledger;
                let _ = reply.send(
                    self.channels
                        .iter()
                        .map(|(id, s)| {
                            let mut v = view(id, &s.ch, ledger.channel(id));
                            if s.proposal_expired && s.ch.status() == ChannelStatus::ShuttingDown {
                                v.status = "close_expired".into();
                            }
                            v
                        })
                        .collect(),
                );
            }
            Input::LedgerChanged => self.on_ledger_changed(),
            Input::PeerConnected(peer) => {
                if self.channels.values().any(|s| s.peer == peer) {
                    self.dial(peer);
                }
            }
            Input::DialFailed(peer) => {
                self.dialing.remove(&peer);
                // Proposals waiting for this stream are retried on the next ticks, and fail
                // once they have waited longer than OPEN_STREAM_WAIT.
                let expired: Vec<ChannelMsg> = match self.queued.get_mut(&peer) {
                    Some(q) => {
                        let (old, keep): (Vec<_>, Vec<_>) = q
                            .drain(..)
                            .partition(|(since, _)| since.elapsed() > OPEN_STREAM_WAIT);
                        *q = keep;
                        old.into_iter().map(|(_, m)| m).collect()
                    }
                    None => Vec::new(),
                };
                for msg in expired {
                    if let ChannelMsg::OpenPropose { open } = msg {
                        if let Some(Proposed { reply, .. }) = self.proposals.remove(&(peer, open.salt_a)) {
                            let _ = reply.send(Err(ManagerError::Unreachable(
                                "cannot open a channel stream".into(),
                            )));
                        }
                    }
                }
            }
            Input::OpenRefused { id, why } => self.fail_open(&id, ManagerError::Ledger(why)),
            Input::LinkUp { peer, link } => self.on_link_up(peer, link).await,
            Input::LinkDown { peer, epoch } => {
                if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
                    debug!(%peer, "channel stream down");
                    self.links.remove(&peer);
                    for s in self.channels.values_mut().filter(|s| s.peer == peer) {
                        s.ch.peer_disconnected();
                    }
                }
            }
            Input::Inbound { peer, epoch, msg } => {
                if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
                    self.on_message(peer, msg).await;
                }
            }
        }
    }

    fn on_tick(&mut self) {
        self.expire_opens();
        let peers: HashSet<PeerId> = self
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
        self.on_ledger_changed();
    }

    /// Forgets acceptances whose peer did not sign in time, and fails our proposals that got no
    /// answer in time.
    fn expire_opens(&mut self) {
        self.acceptances.retain(|_, a| a.at.elapsed() <= ACCEPTANCE_TTL);
        let stale: Vec<_> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.at.elapsed() > PROPOSAL_TTL)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(p) = self.proposals.remove(&k) {
                let _ = p.reply.send(Err(ManagerError::Unreachable(
                    "the peer did not answer the open".into(),
                )));
            }
        }
    }

    fn dial(&mut self, peer: PeerId) {
        if self.links.contains_key(&peer) || !self.dialing.insert(peer) {
            return;
        }
        let net = self.net.clone();
        let inbox = self.inbox.clone();
        let (me, chain_id) = (self.me, self.chain_id);
        tokio::spawn(async move {
            match net.open_channel_stream(peer).await {
                Ok(stream) => {
                    let link = link::start_dialed(me, peer, stream, chain_id, inbox.clone());
                    let _ = inbox.send(Input::LinkUp { peer, link }).await;
                }
                Err(e) => {
                    warn!(%peer, %e, "cannot open a channel stream; will retry");
                    let _ = inbox.send(Input::DialFailed(peer)).await;
                }
            }
        });
    }

    /// A new stream to `peer`. When two streams race, both sides keep the one opened by the
    /// smaller peer id; otherwise the newer one replaces the older.
    async fn on_link_up(&mut self, peer: PeerId, link: Link) {
        if link.dialer == self.me {
            self.dialing.remove(&peer);
        }
        let preferred = self.me.min(peer);
        if let Some(old) = self.links.get(&peer) {
            if old.dialer == preferred && link.dialer != preferred {
                debug!(%peer, "keeping the stream opened by the smaller peer id");
                return;
            }
        }
        debug!(%peer, epoch = link.epoch, "channel stream up");
        self.links.insert(peer, link);
        let mut greetings = Vec::new();
        for s in self.channels.values_mut().filter(|s| s.peer == peer) {
            s.ch.peer_disconnected();
            if let Some(msg) = s.ch.peer_connected() {
                greetings.push(msg);
            }
        }
        for msg in greetings {
            self.send(peer, msg).await;
        }
        for (_, msg) in self.queued.remove(&peer).unwrap_or_default() {
            self.send(peer, msg).await;
        }
        // A close proposal the peer may have missed goes out again on the new stream.
        for id in &self.proposing {
            if let Some(s) = self.channels.get_mut(id).filter(|s| s.peer == peer) {
                s.proposal_retry = Retry::new();
            }
        }
        self.drive_proposals().await;
    }

    /// Sends every close proposal the peer has not signed, once it is durable and the stream is
    /// up, again on a backoff until the peer signs; expires one that waited longer than
    /// `coop_close_wait` (in this run).
    async fn drive_proposals(&mut self) {
        if self.proposing.is_empty() {
            return;
        }
        let wait = self.config.coop_close_wait;
        let mut out = Vec::new();
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
            let since = *slot.proposed_at.get_or_insert_with(Instant::now);
            if since.elapsed() > wait {
                warn!(channel = %id, "the peer did not sign the cooperative close in time");
                slot.proposal_expired = true;
                for w in slot.close_waiters.drain(..) {
                    let _ = w.send(Err(ManagerError::CloseExpired { secs: wait.as_secs() }));
                }
                return false;
            }
            // Persist before you send: the proposal carries our signature.
            let durable = !slot.force_persist && !slot.ch.persist_needs().any();
            if durable && links.contains_key(&slot.peer) && slot.proposal_retry.due_or_unsent() {
                slot.proposal_retry.sent();
                out.push((slot.peer, ChannelMsg::ClosePropose { close, sig }));
            }
            true
        });
        for (peer, msg) in out {
            self.send(peer, msg).await;
        }
    }

    async fn cmd_open(
        &mut self,
        peer_key: PublicKey,
        deposit: u64,
        their_deposit: u64,
        reply: Reply<ChannelId>,
    ) {
        let Some(peer) = peer_id_from_public_key(&peer_key) else {
            let _ = reply.send(Err(ManagerError::Unreachable("not an ed25519 key".into())));
            return;
        };
        self.expire_opens();
        let of_peer = self.proposals.keys().filter(|(p, _)| *p == peer).count();
        if of_peer >= PROPOSALS_PER_PEER_MAX || self.proposals.len() >= PROPOSALS_MAX {
            let _ = reply.send(Err(ManagerError::Busy(
                "too many opens waiting for an answer".into(),
            )));
            return;
        }
        let salt = random_hash();
        let expiry = self.ledger.time_ms().saturating_add(self.config.open_expiry_ms);
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
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let msg = proposal.message();
        self.proposals.insert(
            (peer, salt),
            Proposed {
                proposal,
                reply,
                at: Instant::now(),
            },
        );
        if self.links.contains_key(&peer) {
            self.send(peer, msg).await;
        } else {
            // The proposal goes out once the stream is up; the actor does not wait for it.
            self.queued.entry(peer).or_default().push((Instant::now(), msg));
            self.dial(peer);
        }
    }

    async fn cmd_close(&mut self, id: ChannelId, force: bool, reply: Reply<()>) {
        let Some(slot) = self.channels.get_mut(&id) else {
            let _ = reply.send(Err(ManagerError::UnknownChannel(id)));
            return;
        };
        if matches!(slot.ch.status(), ChannelStatus::Closed) {
            let _ = reply.send(Ok(()));
            return;
        }
        if force {
            match slot.ch.unilateral_close_tx() {
                Ok(tx) => {
                    slot.force_persist = true;
                    slot.close_waiters.push(reply);
                    slot.close_retry.sent();
                    self.submit(tx);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            }
            return;
        }
        let proposed_before = matches!(slot.ch.close_state(), CloseState::Proposed { .. })
            && slot.ch.status() == ChannelStatus::ShuttingDown;
        // The proposal leaves once it is durable (drive_proposals, after this round's persist),
        // and again until the peer signs; closing again re-arms an expired one.
        let proposed = if proposed_before {
            Ok(())
        } else {
            slot.ch.propose_close().map(|_| ())
        };
        match proposed {
            Ok(()) => {
                slot.force_persist |= !proposed_before;
                slot.close_waiters.push(reply);
                slot.proposed_at = Some(Instant::now());
                slot.proposal_retry = Retry::new();
                slot.proposal_expired = false;
                self.proposing.insert(id);
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Submits an open; if the ledger refuses it, the channel never opens: its waiters fail.
    fn submit_open(&self, id: ChannelId, tx: Tx) {
        let ledger = self.ledger.clone();
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            if let Err(why) = ledger.submit(tx).await {
                warn!(channel = %id, %why, "the ledger refused the open");
                let _ = inbox.send(Input::OpenRefused { id, why }).await;
            }
        });
    }

    /// A channel that will never open: fail its waiters and forget it.
    fn fail_open(&mut self, id: &ChannelId, error: ManagerError) {
        let pending = self
            .channels
            .get(id)
            .is_some_and(|s| s.ch.status() == ChannelStatus::Pending);
        if !pending || self.ledger.channel(id).is_some() {
            return;
        }
        if let Some(mut slot) = self.channels.remove(id) {
            for w in slot.open_waiters.drain(..) {
                let _ = w.send(Err(error.clone()));
            }
            if let Err(e) = self.store.delete_channel(id) {
                warn!(channel = %id, %e, "cannot delete a void channel");
            }
        }
    }

    fn submit(&self, tx: Tx) {
        let ledger = self.ledger.clone();
        tokio::spawn(async move {
            if let Err(e) = ledger.submit(tx).await {
                warn!(%e, "ledger submission failed");
            }
        });
    }

    async fn on_message(&mut self, peer: PeerId, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Hello { chain_id } => {
                if chain_id != self.chain_id {
                    self.reject(peer, None, ErrorCode::Rejected, "another chain".into())
                        .await;
                    self.links.remove(&peer);
                }
            }
            ChannelMsg::OpenPropose { open } => {
                if public_key_from_peer_id(&peer) != Some(open.party_a) {
                    return self
                        .reject(
                            peer,
                            None,
                            ErrorCode::Rejected,
                            "party A is not the sender".into(),
                        )
                        .await;
                }
                // Refuse what will be refused anyway before signing anything: too many opens
                // of this peer (or in total) waiting, or a deposit A cannot fund.
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
                if of_peer >= ACCEPTANCES_PER_PEER_MAX || total >= ACCEPTANCES_MAX {
                    return self
                        .reject(
                            peer,
                            None,
                            ErrorCode::Busy,
                            "too many opens waiting for a signature".into(),
                        )
                        .await;
                }
                if self.ledger.balance(&open.party_a) < open.deposit_a {
                    return self
                        .reject(
                            peer,
                            None,
                            ErrorCode::Rejected,
                            "party A cannot fund its deposit".into(),
                        )
                        .await;
                }
                let me = self.keypair.public();
                let policy = OpenPolicy {
                    chain_id: self.chain_id,
                    now_ms: self.ledger.time_ms(),
                    expiry_ms_min_ahead: 1_000,
                    expiry_ms_max_ahead: 3_600_000,
                    deposit_own_max: self.ledger.balance(&me).min(self.config.accept_deposit_max),
                    deposit_peer_min: 0,
                };
                match accept_open(&self.keypair, &open, &policy, random_hash()) {
                    Ok((acceptance, reply)) => {
                        self.acceptances.insert(
                            acceptance.channel_id(),
                            Accepted {
                                peer,
                                acceptance,
                                at: Instant::now(),
                            },
                        );
                        self.send(peer, reply).await;
                    }
                    Err(e) => self.reject(peer, None, ErrorCode::Rejected, e.to_string()).await,
                }
            }
            ChannelMsg::OpenAccept { open, sig_b } => {
                let Some(Proposed { proposal, reply, .. }) = self.proposals.remove(&(peer, open.salt_a))
                else {
                    return self
                        .reject(peer, None, ErrorCode::Rejected, "no such proposal".into())
                        .await;
                };
                match proposal.on_accept(&self.keypair, &open, &sig_b) {
                    Ok((signed, msg)) => {
                        self.send(peer, msg).await;
                        let tx = Tx::Open(signed.clone());
                        match self.add_channel(signed, peer) {
                            Ok(id) => {
                                if let Some(slot) = self.channels.get_mut(&id) {
                                    slot.open_waiters.push(reply);
                                }
                                self.submit_open(id, tx);
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.clone().into()));
                        self.reject(peer, None, ErrorCode::Rejected, e.to_string()).await;
                    }
                }
            }
            ChannelMsg::OpenSigned { channel_id, sig_a } => {
                let Some(Accepted {
                    peer: from,
                    acceptance,
                    ..
                }) = self.acceptances.remove(&channel_id)
                else {
                    return self
                        .reject(
                            peer,
                            Some(channel_id),
                            ErrorCode::UnknownChannel,
                            "no such open".into(),
                        )
                        .await;
                };
                if from != peer {
                    return self
                        .reject(
                            peer,
                            Some(channel_id),
                            ErrorCode::Rejected,
                            "not your open".into(),
                        )
                        .await;
                }
                match acceptance.on_signed(channel_id, &sig_a) {
                    Ok(signed) => {
                        let tx = Tx::Open(signed.clone());
                        if let Ok(id) = self.add_channel(signed, peer) {
                            self.submit_open(id, tx);
                        }
                    }
                    Err(e) => {
                        self.reject(peer, Some(channel_id), ErrorCode::BadSignature, e.to_string())
                            .await
                    }
                }
            }
            ChannelMsg::Error {
                channel_id,
                code,
                text,
            } => {
                warn!(%peer, ?channel_id, ?code, %text, "peer reported an error");
                if channel_id.is_none() {
                    // An open we proposed may have been refused: fail its waiter.
                    let refused: Vec<_> = self
                        .proposals
                        .keys()
                        .filter(|(p, _)| *p == peer)
                        .copied()
                        .collect();
                    for k in refused {
                        if let Some(Proposed { reply, .. }) = self.proposals.remove(&k) {
                            let _ = reply.send(Err(ManagerError::Refused(text.clone())));
                        }
                    }
                }
            }
            other => {
                let Some(id) = channel_of(&other) else { return };
                let Some(slot) = self.channels.get_mut(&id) else {
                    return self
                        .reject(
                            peer,
                            Some(id),
                            ErrorCode::UnknownChannel,
                            "unknown channel".into(),
                        )
                        .await;
                };
                if slot.peer != peer {
                    return self
                        .reject(
                            peer,
                            Some(id),
                            ErrorCode::UnknownChannel,
                            "not your channel".into(),
                        )
                        .await;
                }
                match slot.ch.handle_message(&other) {
                    Ok(handled) => {
                        if handled.acked.is_some() {
                            finish_pay_if_acked(slot);
                        }
                        if let Some(signed) = handled.coop_close {
                            slot.force_persist = true;
                            let now = self.ledger.time_ms();
                            let repeat = slot.coop_sent.as_ref().is_some_and(|(close, at)| {
                                *close == signed.close && now < at.saturating_add(RESUBMIT_MS)
                            });
                            if !repeat {
                                slot.coop_sent = Some((signed.close, now));
                                slot.close_retry.sent();
                                self.submit(Tx::CoopClose(signed));
                            }
                        }
                        for m in handled.send {
                            self.send(peer, m).await;
                        }
                    }
                    Err(e) => {
                        let code = match e {
                            ChannelError::BadSignature => ErrorCode::BadSignature,
                            ref e if e.is_retryable() => ErrorCode::Busy,
                            _ => ErrorCode::Rejected,
                        };
                        debug!(%peer, %e, "channel message refused");
                        self.reject(peer, Some(id), code, e.to_string()).await;
                    }
                }
            }
        }
    }

    async fn reject(&self, peer: PeerId, channel_id: Option<ChannelId>, code: ErrorCode, text: String) {
        // Cut at a character boundary: a peer's bytes can end up in the text.
        let text = paychan_protocol::wire::error_text(text);
        self.send(
            peer,
            ChannelMsg::Error {
                channel_id,
                code,
                text,
            },
        )
        .await;
    }

    fn add_channel(
        &mut self,
        signed: paychan_protocol::channel::SignedOpen,
        peer: PeerId,
    ) -> Result<ChannelId, ManagerError> {
        let id = signed.open.channel_id();
        let ch = Channel::new(signed, self.keypair.clone())?;
        let mut slot = Slot::new(ch, peer);
        slot.force_persist = true;
        if self.links.contains_key(&peer) {
            // The stream is already up: greet on this channel at once.
            if let Some(msg) = slot.ch.peer_connected() {
                let link = self.links[&peer].tx.clone();
                tokio::spawn(async move {
                    let _ = link.send(msg).await;
                });
            }
        }
        self.channels.insert(id, slot);
        info!(channel = %id, %peer, "channel signed by both parties");
        Ok(id)
    }

    /// Follows the ledger: confirms opens, answers closes (the watchtower), settles when a
    /// window ends, and reports payouts.
    fn on_ledger_changed(&mut self) {
        let now = self.ledger.time_ms();
        let mut to_submit = Vec::new();
        let mut void = Vec::new();
        for (id, slot) in self.channels.iter_mut() {
            let Some(on_ledger) = self.ledger.channel(id) else {
                if slot.ch.status() == ChannelStatus::Pending && now > slot.ch.signed_open().open.expiry_ms {
                    void.push(*id);
                }
                continue;
            };
            match on_ledger {
                LedgerChannel::Open => {
                    if slot.ch.status() == ChannelStatus::Pending && slot.ch.on_open_confirmed().is_ok() {
                        info!(channel = %id, "channel open on the ledger");
                        for w in slot.open_waiters.drain(..) {
                            let _ = w.send(Ok(*id));
                        }
                    }
                    // A close of ours the ledger has not applied: lost with a mempool, refused
                    // by an unreachable sequencer, or never sent before a restart. Submit it
                    // again on a backoff until the ledger shows the channel closing or closed.
                    if slot.close_retry.due_or_unsent() {
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
                            slot.close_retry.sent();
                            debug!(channel = %id, "submitting our close again");
                            to_submit.extend(coop.into_iter().chain(unilateral));
                        }
                    }
                }
                LedgerChannel::Closing {
                    window_end_ms,
                    best_ab,
                    best_ba,
                } => {
                    slot.ch.on_close_seen();
                    // Answer each ledger state of the close, and again every RESUBMIT_MS of ledger
                    // time while the window is open and the ledger still lacks the answer (a
                    // submission can be lost; resubmitting is harmless).
                    // The same holds in wall time on a backoff, for a ledger whose time stalls.
                    let moved = slot
                        .answered
                        .is_none_or(|(ab, ba, _)| (ab, ba) != (best_ab, best_ba));
                    if moved {
                        slot.close_retry = Retry::new();
                    }
                    let due = slot.close_retry.due();
                    let stale = moved
                        || due
                        || slot
                            .answered
                            .is_some_and(|(_, _, at)| now >= at.saturating_add(RESUBMIT_MS));
                    if stale && now < window_end_ms {
                        slot.answered = Some((best_ab, best_ba, now));
                        if let Some(update) = slot.ch.answer_close(best_ab, best_ba) {
                            info!(channel = %id, "answering a close with a newer proof");
                            slot.close_retry.sent();
                            to_submit.push(update);
                        }
                    }
                    let resend = due
                        || slot
                            .settle_sent_ms
                            .is_none_or(|t| now >= t.saturating_add(RESUBMIT_MS));
                    if now >= window_end_ms && resend {
                        slot.settle_sent_ms = Some(now);
                        slot.close_retry.sent();
                        to_submit.push(Tx::Settle(Settle {
                            chain_id: self.chain_id,
                            channel_id: *id,
                        }));
                    }
                }
                LedgerChannel::Closed { .. } => {
                    if slot.ch.status() != ChannelStatus::Closed {
                        slot.ch.on_settled();
                        slot.force_persist = true;
                        info!(channel = %id, "channel paid out");
                    }
                    // A payout counts only once a witnessed checkpoint covers it.
                    let closed_at = *slot.closed_at.get_or_insert(self.ledger.height());
                    if self.ledger.witnessed_height() >= closed_at {
                        for w in slot.close_waiters.drain(..) {
                            let _ = w.send(Ok(()));
                        }
                    } else if self.ledger.censored(id) {
                        warn!(channel = %id, "the payout will never be witnessed: an update was censored");
                        for w in slot.close_waiters.drain(..) {
                            let _ = w.send(Err(ManagerError::Ledger(
                                "settled without a valid update (censorship): the settlement is not witnessed"
                                    .into(),
                            )));
                        }
                    }
                    if let Some(job) = slot.pay.take() {
                        let _ = job
                            .reply
                            .send(Err(ManagerError::Refused("channel closed".into())));
                    }
                }
            }
        }
        for tx in to_submit {
            self.submit(tx);
        }
        for id in void {
            self.fail_open(
                &id,
                ManagerError::Ledger("the open expired before the ledger included it".into()),
            );
        }
    }

    /// Signs the next chunk of every payment job and sends it as pay frames. Returns how many
    /// proofs it signed.
    async fn sign_round(&mut self) -> usize {
        let mut signed = 0;
        let mut frames = Vec::new();
        for (id, slot) in self.channels.iter_mut() {
            let Some(job) = slot.pay.as_mut() else { continue };
            if job.remaining == 0 || !self.links.contains_key(&slot.peer) {
                continue;
            }
            let mut items = Vec::new();
            let mut failed = None;
            while job.remaining > 0 && items.len() < ROUND_SIGNATURES_MAX {
                match slot.ch.pay(job.amount, job.reference) {
                    Ok(proof) => {
                        job.remaining -= 1;
                        job.last_seq = proof.proof.seq;
                        items.push(PayItem {
                            proof,
                            payments: vec![Payment {
                                amount: job.amount,
                                reference: job.reference,
                            }],
                        });
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
                    let _ = job.reply.send(Err(e.into()));
                }
            }
            signed += items.len();
            if !items.is_empty() {
                // One round's proofs always fit one frame (asserted below): move, don't copy.
                frames.push((
                    slot.peer,
                    ChannelMsg::Pay {
                        channel_id: *id,
                        items,
                    },
                ));
            }
        }
        for (peer, msg) in frames {
            self.send(peer, msg).await;
        }
        signed
    }

    fn has_pay_work(&self) -> bool {
        self.channels
            .values()
            .any(|s| s.pay.as_ref().is_some_and(|j| j.remaining > 0))
    }

    /// Group commit: one snapshot per channel that needs it, one flush, then release what
    /// waited for durability. Returns whether it wrote anything.
    async fn persist_round(&mut self) -> bool {
        let mut written = Vec::new();
        for (id, slot) in self.channels.iter_mut() {
            let needs = slot.ch.persist_needs();
            if !needs.any() && !slot.force_persist {
                continue;
            }
            let snap = slot.ch.snapshot();
            if let Err(e) = self.store.put_channel(id, &encode(&snap)) {
                warn!(channel = %id, %e, "cannot store the channel");
                continue;
            }
            slot.force_persist = false;
            written.push((*id, snap));
        }
        if written.is_empty() {
            return false;
        }
        if let Err(e) = self.store.flush() {
            // Nothing is acknowledged until it is durable: try again next round.
            warn!(%e, "flush failed");
            return false;
        }
        let mut out = Vec::new();
        for (id, snap) in written {
            if let Some(slot) = self.channels.get_mut(&id) {
                match slot.ch.persisted(&snap) {
                    Ok(Some(msg)) => out.push((slot.peer, msg)),
                    Ok(None) => {}
                    Err(e) => warn!(channel = %id, %e, "persist report refused"),
                }
            }
        }
        for (peer, msg) in out {
            self.send(peer, msg).await;
        }
        true
    }
}

/// Replies to a payment job once its last proof is acknowledged.
fn finish_pay_if_acked(slot: &mut Slot) {
    let done = slot.pay.as_ref().is_some_and(|j| {
        j.remaining == 0
            && slot
                .ch
                .acked_outgoing()
                .is_some_and(|p| p.proof.seq >= j.last_seq)
    });
    if done {
        if let Some(job) = slot.pay.take() {
            let elapsed = job.started.elapsed();
            let _ = job.reply.send(Ok(PayStats {
                count: job.count,
                amount: job.amount.saturating_mul(job.count),
                elapsed_ms: elapsed.as_millis() as u64,
                per_second: job.count as f64 / elapsed.as_secs_f64().max(1e-9),
            }));
        }
    }
}

fn channel_of(msg: &ChannelMsg) -> Option<ChannelId> {
    match msg {
        ChannelMsg::Pay { channel_id, .. }
        | ChannelMsg::Ack { channel_id, .. }
        | ChannelMsg::Reestablish { channel_id, .. }
        | ChannelMsg::CloseSign { channel_id, .. }
        | ChannelMsg::OpenSigned { channel_id, .. } => Some(*channel_id),
        ChannelMsg::ClosePropose { close, .. } => Some(close.channel_id),
        ChannelMsg::Error { channel_id, .. } => *channel_id,
        ChannelMsg::OpenPropose { .. } | ChannelMsg::OpenAccept { .. } | ChannelMsg::Hello { .. } => None,
    }
}

/// A channel as listed. Once the ledger has paid it out, the balances are the ledger's payouts
/// and the off-chain view is kept beside them as `expected`, so that a settlement below it shows.
fn view(id: &ChannelId, ch: &Channel, on_ledger: Option<LedgerChannel>) -> ChannelView {
    let paid = match on_ledger {
        Some(LedgerChannel::Closed { payout_a, payout_b }) if ch.holder_is_a() => Some((payout_a, payout_b)),
        Some(LedgerChannel::Closed { payout_a, payout_b }) => Some((payout_b, payout_a)),
        _ => None,
    };
    let expected = ch.holder_balance();
    let (balance, their_balance) = paid.unwrap_or((expected, ch.counterparty_balance()));
    ChannelView {
        id: id.to_string(),
        counterparty: ch.counterparty_key().to_hex(),
        status: ch.status().as_str().to_owned(),
        holder_is_a: ch.holder_is_a(),
        deposit: ch.holder_deposit(),
        their_deposit: ch.counterparty_deposit(),
        balance,
        their_balance,
        payout: paid.map(|(ours, _)| ours),
        expected: paid.map(|_| expected),
        shortfall: paid.map(|(ours, _)| expected.saturating_sub(ours)),
        sent: ch.transferred_out(),
        received: ch.transferred_in(),
        unacked: ch.unacked_len(),
    }
}

fn random_hash() -> Hash32 {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    Hash32(b)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use paychan_net::{Net, NetConfig};
    use paychan_store::MemStore;

    use super::*;

    /// A ledger the test sets by hand.
    struct FakeLedger {
        chain_id: Hash32,
        time_ms: u64,
        balances: Mutex<HashMap<PublicKey, u64>>,
        channels: Mutex<HashMap<ChannelId, LedgerChannel>>,
        submitted: std::sync::atomic::AtomicUsize,
    }

    impl LedgerAccess for FakeLedger {
        fn chain_id(&self) -> Hash32 {
            self.chain_id
        }
        fn time_ms(&self) -> u64 {
            self.time_ms
        }
        fn height(&self) -> u64 {
            10
        }
        fn witnessed_height(&self) -> u64 {
            10
        }
        fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
            self.channels.lock().unwrap().get(id).copied()
        }
        fn balance(&self, key: &PublicKey) -> u64 {
            self.balances.lock().unwrap().get(key).copied().unwrap_or(0)
        }
        fn submit(&self, _tx: Tx) -> crate::ledger::BoxFuture<'_, Result<(), String>> {
            self.submitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::pin(async { Ok(()) })
        }
    }

    const CHAIN: Hash32 = Hash32([5; 32]);
    const NOW_MS: u64 = 1_000_000;

    /// An actor for key `me` over a fake ledger and a memory store, with a link to `peer` whose
    /// outgoing messages the test reads.
    async fn actor_with_link(
        me: &Keypair,
        peer: &Keypair,
    ) -> (Actor, Arc<FakeLedger>, PeerId, mpsc::Receiver<ChannelMsg>) {
        let ledger = Arc::new(FakeLedger {
            chain_id: CHAIN,
            time_ms: NOW_MS,
            balances: Mutex::new(HashMap::from([
                (me.public(), 1_000_000),
                (peer.public(), 1_000_000),
            ])),
            channels: Mutex::new(HashMap::new()),
            submitted: Default::default(),
        });
        let listen = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        let (net, _events, _loop) = Net::new(me.seed(), NetConfig::new(listen)).await.unwrap();
        let (inbox, _rx) = mpsc::channel(INBOX_MAX);
        let mut actor = Actor {
            keypair: me.clone(),
            me: net.local_peer_id(),
            chain_id: CHAIN,
            net,
            store: Arc::new(MemStore::new()),
            ledger: ledger.clone(),
            config: ManagerConfig::default(),
            inbox,
            channels: HashMap::new(),
            links: HashMap::new(),
            dialing: HashSet::new(),
            queued: HashMap::new(),
            proposals: HashMap::new(),
            acceptances: HashMap::new(),
            proposing: HashSet::new(),
        };
        let peer_id = peer_id_from_public_key(&peer.public()).unwrap();
        let (tx, rx) = mpsc::channel(20_000);
        actor.links.insert(
            peer_id,
            Link {
                epoch: 1,
                dialer: peer_id,
                tx,
            },
        );
        (actor, ledger, peer_id, rx)
    }

    fn proposal(from: &Keypair, to: &Keypair, i: u64, deposit_a: u64) -> ChannelMsg {
        let mut salt = [0u8; 32];
        salt[..8].copy_from_slice(&i.to_be_bytes());
        OpenProposal::new(
            CHAIN,
            from,
            to.public(),
            deposit_a,
            10,
            Hash32(salt),
            NOW_MS + 60_000,
        )
        .unwrap()
        .message()
    }

    /// Signatures made for the peer: each `OpenAccept` carries one.
    fn acceptances_sent(rx: &mut mpsc::Receiver<ChannelMsg>) -> (usize, usize) {
        let (mut accepted, mut refused) = (0, 0);
        while let Ok(msg) = rx.try_recv() {
            match msg {
                ChannelMsg::OpenAccept { .. } => accepted += 1,
                ChannelMsg::Error { .. } => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        (accepted, refused)
    }

    #[tokio::test]
    async fn a_flood_of_proposals_from_one_peer_is_capped_before_signing() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, _ledger, peer, mut rx) = actor_with_link(&me, &them).await;
        for i in 0..10_000 {
            actor.on_message(peer, proposal(&them, &me, i, 10)).await;
        }
        let (signed, refused) = acceptances_sent(&mut rx);
        assert_eq!(signed, ACCEPTANCES_PER_PEER_MAX, "signatures made");
        assert_eq!(
            refused,
            10_000 - ACCEPTANCES_PER_PEER_MAX,
            "the rest refused, unsigned"
        );
        assert_eq!(
            actor.acceptances.len(),
            ACCEPTANCES_PER_PEER_MAX,
            "acceptances kept"
        );
    }

    #[tokio::test]
    async fn a_proposal_the_ledger_would_refuse_is_not_signed() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, _ledger, peer, mut rx) = actor_with_link(&me, &them).await;
        // A cannot fund its deposit.
        actor.on_message(peer, proposal(&them, &me, 0, 2_000_000)).await;
        assert_eq!(acceptances_sent(&mut rx), (0, 1));
        assert!(actor.acceptances.is_empty());
    }

    #[tokio::test]
    async fn acceptances_expire_and_free_their_slots() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, _ledger, peer, mut rx) = actor_with_link(&me, &them).await;
        for i in 0..ACCEPTANCES_PER_PEER_MAX as u64 {
            actor.on_message(peer, proposal(&them, &me, i, 10)).await;
        }
        assert_eq!(acceptances_sent(&mut rx), (ACCEPTANCES_PER_PEER_MAX, 0));
        // Backdate them past their lifetime.
        for a in actor.acceptances.values_mut() {
            a.at = Instant::now()
                .checked_sub(ACCEPTANCE_TTL + Duration::from_secs(1))
                .unwrap();
        }
        actor.on_tick();
        assert!(actor.acceptances.is_empty(), "expired acceptances are dropped");
        actor.on_message(peer, proposal(&them, &me, 99_999, 10)).await;
        assert_eq!(acceptances_sent(&mut rx), (1, 0));
    }

    #[tokio::test]
    async fn opens_signed_but_not_yet_on_the_ledger_count_against_the_cap() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, _ledger, peer, mut rx) = actor_with_link(&me, &them).await;
        // `them` proposed and signed these; none is on the ledger yet.
        for salt in 0..ACCEPTANCES_PER_PEER_MAX as u8 {
            channel_salted(&mut actor, &them, &me, peer, salt);
        }
        actor.on_message(peer, proposal(&them, &me, 0, 10)).await;
        assert_eq!(acceptances_sent(&mut rx), (0, 1), "refused before signing");
        assert!(actor.acceptances.is_empty());
    }

    #[tokio::test]
    async fn a_repeated_close_proposal_is_not_submitted_again_and_again() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, ledger, peer, mut rx) = actor_with_link(&me, &them).await;
        let id = channel_with(&mut actor, &me, &them, peer);
        ledger.channels.lock().unwrap().insert(id, LedgerChannel::Open);
        actor.on_ledger_changed();
        let mut theirs = Channel::new(actor.channels[&id].ch.signed_open().clone(), them.clone()).unwrap();
        theirs.on_open_confirmed().unwrap();
        let propose = theirs.propose_close().unwrap();
        let before = ledger.submitted.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..1_000 {
            actor.on_message(peer, propose.clone()).await;
        }
        // Let the submission tasks run.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let submitted = ledger.submitted.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert_eq!(submitted, 1, "one submission of the cooperative close");
        let signs = std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|m| matches!(m, ChannelMsg::CloseSign { .. }))
            .count();
        assert!(signs >= 1, "the proposal is answered");
    }

    #[tokio::test]
    async fn own_proposals_are_capped() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, _ledger, _peer, _rx) = actor_with_link(&me, &them).await;
        let mut refused = 0;
        let mut waiting = Vec::new();
        for _ in 0..PROPOSALS_PER_PEER_MAX + 3 {
            let (reply, rx) = oneshot::channel();
            actor.cmd_open(them.public(), 10, 10, reply).await;
            waiting.push(rx);
        }
        for mut rx in waiting {
            if let Ok(Err(ManagerError::Busy(_))) = rx.try_recv() {
                refused += 1;
            }
        }
        assert_eq!(refused, 3);
        assert_eq!(actor.proposals.len(), PROPOSALS_PER_PEER_MAX);
    }

    /// A channel of `me` (party A, deposit 100) with `them` (party B, deposit 50).
    fn channel_with(actor: &mut Actor, me: &Keypair, them: &Keypair, peer: PeerId) -> ChannelId {
        channel_salted(actor, me, them, peer, 9)
    }

    fn channel_salted(actor: &mut Actor, me: &Keypair, them: &Keypair, peer: PeerId, salt: u8) -> ChannelId {
        let open = paychan_protocol::channel::ChannelOpen {
            chain_id: CHAIN,
            party_a: me.public(),
            party_b: them.public(),
            deposit_a: 100,
            deposit_b: 50,
            salt_a: Hash32([8; 32]),
            salt_b: Hash32([salt; 32]),
            expiry_ms: NOW_MS + 60_000,
        };
        let signed = paychan_protocol::channel::SignedOpen {
            sig_a: open.sign(me),
            sig_b: open.sign(them),
            open,
        };
        actor.add_channel(signed, peer).unwrap()
    }

    async fn list(actor: &mut Actor) -> Vec<ChannelView> {
        let (reply, rx) = oneshot::channel();
        actor.on_input(Input::List { reply }).await;
        rx.await.unwrap()
    }

    #[tokio::test]
    async fn a_settlement_below_our_view_lists_the_payout_and_the_shortfall() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        let (mut actor, ledger, peer, _rx) = actor_with_link(&me, &them).await;
        let id = channel_with(&mut actor, &me, &them, peer);
        ledger.channels.lock().unwrap().insert(id, LedgerChannel::Open);
        actor.on_ledger_changed();
        let before = list(&mut actor).await;
        assert_eq!((before[0].balance, before[0].their_balance), (100, 50));
        // Off chain nothing was paid, yet the ledger paid A only 60 of its 100.
        ledger.channels.lock().unwrap().insert(
            id,
            LedgerChannel::Closed {
                payout_a: 60,
                payout_b: 90,
            },
        );
        actor.on_ledger_changed();
        let after = list(&mut actor).await;
        let v = &after[0];
        assert_eq!(v.status, "closed");
        assert_eq!((v.balance, v.their_balance), (60, 90), "the ledger's payout");
        assert_eq!(v.payout, Some(60));
        assert_eq!(v.expected, Some(100), "our off-chain view");
        assert_eq!(v.shortfall, Some(40));
        // Before the payout nothing is flagged.
        assert_eq!(
            (before[0].payout, before[0].expected, before[0].shortfall),
            (None, None, None)
        );
    }

    #[tokio::test]
    async fn a_payout_in_full_has_no_shortfall_and_b_sees_its_own_share() {
        let me = Keypair::from_seed([1; 32]);
        let them = Keypair::from_seed([2; 32]);
        // `them` is B of the channel here: its share is payout_b.
        let (mut actor, ledger, peer, _rx) = actor_with_link(&them, &me).await;
        let id = channel_with(&mut actor, &me, &them, peer);
        ledger.channels.lock().unwrap().insert(
            id,
            LedgerChannel::Closed {
                payout_a: 80,
                payout_b: 70,
            },
        );
        actor.on_ledger_changed();
        let v = &list(&mut actor).await[0];
        assert!(!v.holder_is_a);
        assert_eq!((v.balance, v.their_balance), (70, 80));
        assert_eq!((v.payout, v.expected, v.shortfall), (Some(70), Some(50), Some(0)));
    }
}

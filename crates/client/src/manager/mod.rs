//! The channel manager: a synchronous core ([`core::Manager`]) that holds every channel of
//! one key, and a thin tokio driver ([`driver`]) that does its I/O: streams to peers,
//! submissions to the ledger, and one persister thread doing group commit off the runtime.
//! The rest of the program holds a cloneable [`ChannelManager`] handle.
//!
//! ## Layout
//! - [`core`]: the state machine: events in, actions and frames out. No await, spawn, clock
//!   or OS randomness; a whole network of them runs in one thread (the simulation).
//! - `driver`: the actor task around the core, and the persister thread.
//! - [`limits`]: every cap and expiry of the manager.

pub mod core;
mod driver;
pub mod limits;
pub mod payments;
mod signer;
mod slots;

pub use self::core::{HttpChecked, HttpRefusal, HttpRefusalKind, OpensScan};
pub use self::limits::OPENS_SCAN_BLOCKS_MAX;
pub use self::payments::ReceivedPayment;
pub use self::signer::ParallelSigner;

use std::sync::Arc;
use std::time::Duration;

use paychan_channel::{Channel, ChannelError};
use paychan_net::{NetHandle, PeerId};
use paychan_protocol::wire::{ChannelMsg, PayItem};
use paychan_protocol::{ChannelId, Hash32, Keypair, PublicKey};
use paychan_store::Store;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::ledger::{LedgerAccess, LedgerChannel};
use crate::link::Link;

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
    /// The least a peer that proposes a channel must lock of its own. With the default (1), a
    /// peer with no balance cannot make this key lock funds.
    pub accept_peer_deposit_min: u64,
    /// Threads that sign a payment job's proofs (the driver's and `sign_threads - 1` of a pool
    /// of its own). The default is every core the OS reports: signing is the payment path's
    /// cost, and a proof's signature does not depend on the one before.
    pub sign_threads: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            open_expiry_ms: 120_000,
            accept_deposit_max: limits::ACCEPT_DEPOSIT_MAX_DEFAULT,
            coop_close_wait: Duration::from_secs(600),
            accept_peer_deposit_min: 1,
            sign_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
    /// The account cannot pay for what was asked (a deposit and its fee).
    #[error("insufficient funds: {0}")]
    Funds(String),
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

/// What a caller can do about a [`ManagerError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing is wrong with the request: try again later (the peer or the ledger is away, the
    /// manager is busy, storage failed for now).
    Retry,
    /// The request itself does not fit (unknown channel, funds, state, the peer said no):
    /// retrying the same request will not help.
    Refused,
    /// The peer broke the protocol.
    Violation,
}

impl ManagerError {
    /// What a caller can do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ManagerError::Unreachable(_)
            | ManagerError::Ledger(_)
            | ManagerError::Storage(_)
            | ManagerError::Busy(_)
            | ManagerError::Stopped
            | ManagerError::CloseExpired { .. } => ErrorKind::Retry,
            ManagerError::UnknownChannel(_) | ManagerError::Refused(_) | ManagerError::Funds(_) => {
                ErrorKind::Refused
            }
            ManagerError::Channel(e) => match e.class() {
                paychan_channel::ErrorClass::Retry => ErrorKind::Retry,
                paychan_channel::ErrorClass::Refused => ErrorKind::Refused,
                paychan_channel::ErrorClass::Violation => ErrorKind::Violation,
            },
        }
    }
}

/// Every channel of a manager counted and summed ([`ChannelManager::totals`]): what a status
/// page or a metrics scrape needs, without a list of every channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelTotals {
    /// Channels by [`ChannelView::status`].
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// Sum of [`ChannelView::balance`] over the channels not closed.
    pub balance_not_closed: u64,
    /// Sum of [`ChannelView::payments_sent`].
    pub payments_sent: u64,
    /// Sum of [`ChannelView::payments_received`].
    pub payments_received: u64,
    /// Sum of [`ChannelView::sent`].
    pub sent: u64,
    /// Sum of [`ChannelView::received`].
    pub received: u64,
}

impl ChannelTotals {
    /// Adds one channel.
    pub fn add(&mut self, v: &ChannelView) {
        match self.by_status.get_mut(v.status.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.by_status.insert(v.status.clone(), 1);
            }
        }
        if v.status != "closed" {
            self.balance_not_closed = self.balance_not_closed.saturating_add(v.balance);
        }
        self.payments_sent = self.payments_sent.saturating_add(v.payments_sent);
        self.payments_received = self.payments_received.saturating_add(v.payments_received);
        self.sent = self.sent.saturating_add(v.sent);
        self.received = self.received.saturating_add(v.received);
    }

    /// Channels of every status.
    pub fn count(&self) -> u64 {
        self.by_status.values().sum()
    }
}

/// A channel as [`ChannelManager::list`] shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Seq of the newest proof this key signed and still holds (unacknowledged, else the newest
    /// acknowledged). Proofs are numbered from 1, and a restart skips the rest of a seq
    /// reservation, so this counts proofs only until the first restart.
    pub newest_seq_sent: u64,
    /// Seq of the newest proof received from the counterparty.
    pub newest_seq_received: u64,
    /// Payments this key made on the channel since the node started (a proof carries 1 to 64).
    pub payments_sent: u64,
    /// Payments received since the node started; every received payment is stored and
    /// listed by `ChannelManager::payments`.
    pub payments_received: u64,
    /// What this key may still pay: deposit + received (durable) + credit - sent.
    pub spendable: u64,
    /// The credit line the counterparty extends to this key, in force now (0: none).
    pub credit_limit: u64,
    /// The credit line this key extends to the counterparty, in force now (none: no line).
    pub their_credit_limit: Option<u64>,
    /// What this key has paid on credit (beyond its deposit and what it received): the debt a
    /// settlement now would record.
    pub owed: u64,
    /// What the counterparty has paid on this key's credit.
    pub their_owed: u64,
}

/// What a payment job did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayStats {
    /// Payments made.
    pub count: u64,
    /// Signed proofs that carried them (`count` when each payment is its own proof).
    pub proofs: u64,
    /// Sum paid.
    pub amount: u64,
    /// Wall time from the first signature to the last ack (ms).
    pub elapsed_ms: u64,
    /// Payments per second over that time.
    pub per_second: f64,
}

type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

/// Inputs of the driver: commands from handles, and events from links, the ledger and the
/// persister.
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
        per_proof: usize,
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
    /// A command answered with the core's own response (the HTTP payment commands).
    Core {
        command: core::Command,
        reply: Reply<core::Response>,
    },
    LedgerChanged,
    BlockApplied {
        channels: Vec<ChannelId>,
    },
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
    OpenSubmitFailed {
        id: ChannelId,
        why: String,
    },
    Inbound {
        peer: PeerId,
        epoch: u64,
        msg: ChannelMsg,
    },
    Persisted {
        batch: u64,
        result: Result<(), String>,
    },
}

/// A cloneable handle on the manager.
#[derive(Clone)]
pub struct ChannelManager {
    inbox: mpsc::Sender<Input>,
    /// Read directly for the payments list (the persister writes it; reads need no core).
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for ChannelManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelManager").finish_non_exhaustive()
    }
}

/// Most payments one [`ChannelManager::payments`] call returns.
pub const PAYMENTS_PAGE_MAX: usize = 10_000;

impl ChannelManager {
    /// Restores the channels kept in `store`, accepts incoming channel streams and starts the
    /// driver on the current tokio runtime (and its persister thread).
    pub fn start(
        keypair: Keypair,
        net: NetHandle,
        store: Arc<dyn Store>,
        ledger: Arc<dyn LedgerAccess>,
        config: ManagerConfig,
    ) -> Result<ChannelManager, ManagerError> {
        let inbox = driver::start(keypair, net, store.clone(), ledger, config)?;
        Ok(ChannelManager { inbox, store })
    }

    /// The payments received on channel `id` in proofs of seq `from_seq` or above, in seq and
    /// memo order, at most `limit` (capped at [`PAYMENTS_PAGE_MAX`]). Each was stored in the
    /// group commit that made its proof durable, before the proof was acked.
    pub fn payments(
        &self,
        id: ChannelId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<payments::ReceivedPayment>, ManagerError> {
        payments::list(self.store.as_ref(), id, from_seq, limit)
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
        self.pay_buffered(id, amount, count, reference, 1).await
    }

    /// Like [`ChannelManager::pay`], with up to `per_proof` payments (1 to
    /// `MEMO_PAYMENTS_MAX`) in each signed proof: one signature covers them all, and the proof's
    /// memo commits to each payment's amount and reference. The payee stores each payment.
    pub async fn pay_buffered(
        &self,
        id: ChannelId,
        amount: u64,
        count: u64,
        reference: Hash32,
        per_proof: usize,
    ) -> Result<PayStats, ManagerError> {
        self.ask(|reply| Input::Pay {
            id,
            amount,
            count,
            reference,
            per_proof,
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

    /// Every channel counted by status, its balances and payments summed: [`ChannelManager::list`]
    /// folded in the manager, without a view of every channel in memory at once.
    pub async fn totals(&self) -> Result<ChannelTotals, ManagerError> {
        let command = core::Command::Totals;
        match self.ask(|reply| Input::Core { command, reply }).await? {
            core::Response::Totals(t) => Ok(t),
            _ => Err(ManagerError::Refused(
                "internal: answer of another command".into(),
            )),
        }
    }

    /// Payee: checks a payment carried in an HTTP request paying at least `price`, with the
    /// request's `reference`, and holds it in flight until [`ChannelManager::http_settle`].
    pub async fn http_check(
        &self,
        item: PayItem,
        price: u64,
        reference: Hash32,
    ) -> Result<Result<HttpChecked, HttpRefusal>, ManagerError> {
        let command = core::Command::HttpCheck {
            item,
            price,
            reference,
        };
        match self.ask(|reply| Input::Core { command, reply }).await? {
            core::Response::HttpChecked(r) => Ok(r),
            _ => Err(ManagerError::Refused(
                "internal: answer of another command".into(),
            )),
        }
    }

    /// Payee: ends the request of a checked payment. With `answered`, takes the payment and
    /// returns once it is durable (settleable); otherwise keeps it uncharged for the payer's
    /// next request. Returns whether it was charged.
    pub async fn http_settle(&self, item: PayItem, answered: bool) -> Result<bool, ManagerError> {
        let command = core::Command::HttpSettle { item, answered };
        match self.ask(|reply| Input::Core { command, reply }).await? {
            core::Response::HttpSettled { charged } => Ok(charged),
            _ => Err(ManagerError::Refused(
                "internal: answer of another command".into(),
            )),
        }
    }

    /// Payee: what channel `id` has received durably (settleable).
    pub async fn received(&self, id: ChannelId) -> Result<u64, ManagerError> {
        let command = core::Command::Received { id };
        match self.ask(|reply| Input::Core { command, reply }).await? {
            core::Response::Received(r) => Ok(r),
            _ => Err(ManagerError::Refused(
                "internal: answer of another command".into(),
            )),
        }
    }

    /// Payer: signs one payment of `amount` with `reference` on channel `id` and returns it
    /// instead of sending it on the stream (it is carried in a request; the ack comes on the
    /// stream).
    pub async fn sign_detached(
        &self,
        id: ChannelId,
        amount: u64,
        reference: Hash32,
    ) -> Result<PayItem, ManagerError> {
        let command = core::Command::SignDetached {
            id,
            amount,
            reference,
        };
        match self.ask(|reply| Input::Core { command, reply }).await? {
            core::Response::Signed(item) => Ok(item),
            _ => Err(ManagerError::Refused(
                "internal: answer of another command".into(),
            )),
        }
    }

    /// Tells the manager that the ledger view moved: it looks at every channel.
    pub fn ledger_changed(&self) {
        let _ = self.inbox.try_send(Input::LedgerChanged);
    }

    /// Tells the manager that a block was applied that names `channels`: it looks at those and
    /// at the channels that wait on the ledger. If the inbox is full the event is not queued and
    /// the manager's periodic full pass makes up for it; a ledger owner that knows it dropped
    /// events (a lagging subscription) says [`ChannelManager::ledger_changed`] instead.
    pub fn block_applied(&self, channels: Vec<ChannelId>) {
        let _ = self.inbox.try_send(Input::BlockApplied { channels });
    }

    /// Tells the manager that a libp2p connection to `peer` is up.
    pub fn peer_connected(&self, peer: PeerId) {
        let _ = self.inbox.try_send(Input::PeerConnected(peer));
    }
}

impl From<crate::link::LinkEvent> for Input {
    fn from(e: crate::link::LinkEvent) -> Input {
        use crate::link::LinkEvent;
        match e {
            LinkEvent::Up { peer, link } => Input::LinkUp { peer, link },
            LinkEvent::Down { peer, epoch } => Input::LinkDown { peer, epoch },
            LinkEvent::Inbound { peer, epoch, msg } => Input::Inbound { peer, epoch, msg },
        }
    }
}

pub(crate) fn channel_of(msg: &ChannelMsg) -> Option<ChannelId> {
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
pub(crate) fn view(id: &ChannelId, ch: &Channel, on_ledger: Option<LedgerChannel>) -> ChannelView {
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
        newest_seq_sent: if ch.unacked_len() > 0 {
            ch.next_seq().saturating_sub(1)
        } else {
            ch.acked_outgoing().map_or(0, |p| p.proof.seq)
        },
        newest_seq_received: ch.newest_incoming().map_or(0, |p| p.proof.seq),
        payments_sent: 0,
        payments_received: 0,
        spendable: ch.spendable(),
        credit_limit: ch.credit().0,
        their_credit_limit: ch.credit().1,
        owed: ch.credit_used_out(),
        their_owed: ch.credit_used_in(),
    }
}

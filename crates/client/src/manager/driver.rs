//! The thin tokio driver around [`Manager`]: it turns handle calls and link, ledger and
//! persister events into [`Event`]s, and does the core's [`Action`]s. Nothing in its loop
//! awaits a peer: frames go to a link only as far as its queue has room (`try_send` within
//! `capacity()`), the rest waits in the core, whose per-peer queue is bounded. The one
//! persister thread writes each batch and syncs once (group commit) off the runtime, while
//! the core keeps signing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paychan_net::{NetHandle, PeerId};
use paychan_protocol::ChannelId;
use paychan_store::Store;
use rand_core::SeedableRng;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::core::{Action, Batch, Command, CommandId, Event, LedgerView, Manager, Response};
use super::limits::{INBOX_MAX, ROUND_INPUTS_MAX};
use super::{ChannelView, Input, ManagerConfig, ManagerError, PayStats, Reply};
use crate::ledger::{LedgerAccess, LedgerChannel};
use crate::link::{self, Link};

/// How often the core gets a tick.
const TICK: Duration = Duration::from_secs(1);
/// How soon the driver looks again at a link whose queue was full.
const BLOCKED_RETRY: Duration = Duration::from_millis(2);

/// The ledger's reads, for the core.
struct Reads<'a>(&'a dyn LedgerAccess);

impl LedgerView for Reads<'_> {
    fn chain_id(&self) -> paychan_protocol::Hash32 {
        self.0.chain_id()
    }
    fn time_ms(&self) -> u64 {
        self.0.time_ms()
    }
    fn height(&self) -> u64 {
        self.0.height()
    }
    fn witnessed_height(&self) -> u64 {
        self.0.witnessed_height()
    }
    fn censored(&self, id: &ChannelId) -> bool {
        self.0.censored(id)
    }
    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
        self.0.channel(id)
    }
    fn balance(&self, key: &paychan_protocol::PublicKey) -> u64 {
        self.0.balance(key)
    }
    fn fee(&self, tx: &paychan_protocol::Tx) -> u64 {
        self.0.fee(tx)
    }
    fn opens_naming(&self, key: &paychan_protocol::PublicKey, after: u64) -> super::OpensScan {
        self.0.opens_naming(key, after)
    }
    fn credit_line(
        &self,
        id: &ChannelId,
        dir: paychan_protocol::Direction,
    ) -> Option<paychan_ledger::CreditLine> {
        self.0.credit_line(id, dir)
    }
}

/// Who waits for a command's answer.
enum Waiter {
    Open(Reply<ChannelId>),
    Pay(Reply<PayStats>),
    Close(Reply<()>),
    List(oneshot::Sender<Vec<ChannelView>>),
    Core(Reply<Response>),
}

struct Driver {
    core: Manager,
    me: PeerId,
    chain_id: paychan_protocol::Hash32,
    net: NetHandle,
    ledger: Arc<dyn LedgerAccess>,
    inbox: mpsc::Sender<Input>,
    links: HashMap<PeerId, Link>,
    waiters: HashMap<CommandId, Waiter>,
    next_command: CommandId,
    persister: std::sync::mpsc::Sender<Batch>,
    started: Instant,
    frames: Vec<paychan_protocol::wire::ChannelMsg>,
}

/// Restores the core from `store`, starts the persister thread, the acceptor of incoming
/// channel streams and the driver task. Returns the driver's inbox.
pub(super) fn start(
    keypair: paychan_protocol::Keypair,
    net: NetHandle,
    store: Arc<dyn Store>,
    ledger: Arc<dyn LedgerAccess>,
    config: ManagerConfig,
) -> Result<mpsc::Sender<Input>, ManagerError> {
    let (tx, rx) = mpsc::channel(INBOX_MAX);
    let me = net.local_peer_id();
    let chain_id = ledger.chain_id();
    let records = store
        .channels()
        .map_err(|e| ManagerError::Storage(e.to_string()))?;
    let meta = store
        .meta_entries()
        .map_err(|e| ManagerError::Storage(e.to_string()))?
        .into_iter()
        .filter(|(k, _)| k.starts_with(super::core::ACCEPTANCE_SLOT_PREFIX))
        .collect();
    let rng = rand_chacha::ChaCha20Rng::from_rng(rand_core::OsRng)
        .map_err(|e| ManagerError::Storage(format!("no randomness: {e}")))?;
    let signer = super::ParallelSigner::new(config.sign_threads)
        .map_err(|e| ManagerError::Storage(format!("no signing threads: {e}")))?;
    let mut core = Manager::restore(keypair, chain_id, config, Box::new(rng), records, meta, 0)?;
    core.set_signer(std::sync::Arc::new(signer));
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
    let persister = spawn_persister(store, tx.clone())?;
    let driver = Driver {
        core,
        me,
        chain_id,
        net,
        ledger,
        inbox: tx.clone(),
        links: HashMap::new(),
        waiters: HashMap::new(),
        next_command: 1,
        persister,
        started: Instant::now(),
        frames: Vec::new(),
    };
    tokio::spawn(driver.run(rx));
    Ok(tx)
}

/// The persister: writes each batch, syncs once, reports. Its own thread, so that a slow sync
/// never holds the runtime.
fn spawn_persister(
    store: Arc<dyn Store>,
    inbox: mpsc::Sender<Input>,
) -> Result<std::sync::mpsc::Sender<Batch>, ManagerError> {
    let (tx, rx) = std::sync::mpsc::channel::<Batch>();
    std::thread::Builder::new()
        .name("paychan-persister".into())
        .spawn(move || {
            while let Ok(batch) = rx.recv() {
                let result = write_batch(&*store, &batch);
                if inbox
                    .blocking_send(Input::Persisted {
                        batch: batch.id,
                        result,
                    })
                    .is_err()
                {
                    return;
                }
            }
        })
        .map_err(|e| ManagerError::Storage(format!("cannot start the persister: {e}")))?;
    Ok(tx)
}

/// Writes one batch and syncs it.
pub(crate) fn write_batch(store: &dyn Store, batch: &Batch) -> Result<(), String> {
    for (id, first_seq, record) in &batch.payments {
        store
            .put_payments(id, *first_seq, record)
            .map_err(|e| e.to_string())?;
    }
    for (id, bytes) in &batch.channels {
        store.put_channel(id, bytes).map_err(|e| e.to_string())?;
    }
    for id in &batch.deletes {
        store.delete_channel(id).map_err(|e| e.to_string())?;
    }
    for (key, value) in &batch.meta {
        store.put_meta(key, value).map_err(|e| e.to_string())?;
    }
    store.flush().map_err(|e| e.to_string())
}

impl Driver {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn handle(&mut self, event: Event) {
        let now = self.now_ms();
        let ledger = self.ledger.clone();
        self.core.handle(event, now, &Reads(&*ledger));
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.handle(Event::LedgerChanged);
        let mut progress = false;
        let mut blocked = false;
        loop {
            // Keep signing without waiting only while the last round made progress; a job that
            // cannot sign now (window full, link queue full, not reestablished) waits for an
            // input, or for the link's queue to drain.
            if progress {
                tokio::task::yield_now().await;
            } else {
                tokio::select! {
                    input = rx.recv() => match input {
                        Some(i) => self.on_input(i),
                        None => return,
                    },
                    _ = tick.tick() => self.handle(Event::Tick),
                    _ = tokio::time::sleep(BLOCKED_RETRY), if blocked => {}
                }
            }
            for _ in 0..ROUND_INPUTS_MAX {
                match rx.try_recv() {
                    Ok(i) => self.on_input(i),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let now = self.now_ms();
            let signed = self.core.poll(now);
            self.do_actions();
            blocked = self.send_frames();
            progress = signed > 0;
        }
    }

    fn on_input(&mut self, input: Input) {
        let event = match input {
            Input::Open {
                peer_key,
                deposit,
                their_deposit,
                reply,
            } => self.command(
                Command::Open {
                    peer_key,
                    deposit,
                    their_deposit,
                },
                Waiter::Open(reply),
            ),
            Input::Pay {
                id,
                amount,
                count,
                reference,
                per_proof,
                reply,
            } => self.command(
                Command::Pay {
                    id,
                    amount,
                    count,
                    reference,
                    per_proof,
                },
                Waiter::Pay(reply),
            ),
            Input::Close { id, force, reply } => {
                self.command(Command::Close { id, force }, Waiter::Close(reply))
            }
            Input::List { reply } => self.command(Command::List, Waiter::List(reply)),
            Input::Core { command, reply } => self.command(command, Waiter::Core(reply)),
            Input::LedgerChanged => Event::LedgerChanged,
            Input::BlockApplied { channels } => Event::BlockApplied { channels },
            Input::PeerConnected(peer) => Event::PeerConnected(peer),
            Input::LinkUp { peer, link } => {
                let (epoch, dialer) = (link.epoch, link.dialer);
                self.handle(Event::LinkUp { peer, epoch, dialer });
                if self.core.link_epoch(&peer) == Some(epoch) {
                    self.links.insert(peer, link);
                }
                // Otherwise the link drops here: its writer ends and its reader closes the stream.
                return self.do_actions();
            }
            Input::LinkDown { peer, epoch } => {
                if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
                    self.links.remove(&peer);
                }
                Event::LinkDown { peer, epoch }
            }
            Input::DialFailed(peer) => Event::DialFailed(peer),
            Input::OpenSubmitFailed { id, why } => Event::OpenSubmitFailed { id, why },
            Input::Inbound { peer, epoch, msg } => Event::Frame { peer, epoch, msg },
            Input::Persisted { batch, result } => Event::Persisted { batch, result },
        };
        self.handle(event);
        self.do_actions();
    }

    fn command(&mut self, command: Command, waiter: Waiter) -> Event {
        let id = self.next_command;
        self.next_command += 1;
        self.waiters.insert(id, waiter);
        Event::Command { id, command }
    }

    fn do_actions(&mut self) {
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                match action {
                    Action::Persist(batch) if batch.is_empty() => {
                        // Nothing to write: durable at once.
                        self.handle(Event::Persisted {
                            batch: batch.id,
                            result: Ok(()),
                        });
                    }
                    Action::Persist(batch) => {
                        if self.persister.send(batch).is_err() {
                            warn!("the persister stopped");
                        }
                    }
                    Action::Submit { tx, open } => {
                        let ledger = self.ledger.clone();
                        let inbox = self.inbox.clone();
                        tokio::spawn(async move {
                            if let Err(why) = ledger.submit(tx).await {
                                warn!(%why, "ledger submission failed");
                                if let Some(id) = open {
                                    let _ = inbox.send(Input::OpenSubmitFailed { id, why }).await;
                                }
                            }
                        });
                    }
                    Action::Reply { id, result } => self.reply(id, result),
                    Action::Dial(peer) => self.dial(peer),
                    Action::CloseLink { peer, epoch } => {
                        if self.links.get(&peer).is_some_and(|l| l.epoch == epoch) {
                            self.links.remove(&peer);
                        }
                    }
                }
            }
        }
    }

    fn reply(&mut self, id: CommandId, result: Result<Response, ManagerError>) {
        let Some(waiter) = self.waiters.remove(&id) else {
            return;
        };
        let mismatch = || ManagerError::Refused("internal: answer of another command".into());
        match waiter {
            Waiter::Open(w) => {
                let _ = w.send(result.and_then(|r| match r {
                    Response::Opened(id) => Ok(id),
                    _ => Err(mismatch()),
                }));
            }
            Waiter::Pay(w) => {
                let _ = w.send(result.and_then(|r| match r {
                    Response::Paid(s) => Ok(s),
                    _ => Err(mismatch()),
                }));
            }
            Waiter::Close(w) => {
                let _ = w.send(result.and_then(|r| match r {
                    Response::Closed => Ok(()),
                    _ => Err(mismatch()),
                }));
            }
            Waiter::List(w) => {
                if let Ok(Response::Listed(v)) = result {
                    let _ = w.send(v);
                }
            }
            Waiter::Core(w) => {
                let _ = w.send(result);
            }
        }
    }

    fn dial(&mut self, peer: PeerId) {
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

    /// Moves ready frames into each link's queue as far as it has room. Returns whether some
    /// peer's frames wait for room.
    fn send_frames(&mut self) -> bool {
        let mut blocked = false;
        for peer in self.core.peers_with_frames() {
            let room = self.links.get(&peer).map_or(usize::MAX, |l| l.tx.capacity());
            self.frames.clear();
            self.core.take_frames(&peer, room, &mut self.frames);
            let Some(link) = self.links.get(&peer) else {
                // No stream in the driver: the core closed it already; the frames go.
                continue;
            };
            for msg in self.frames.drain(..) {
                if link.tx.try_send(msg).is_err() {
                    break;
                }
            }
            blocked |= self.core.frames_len(&peer) > 0;
        }
        blocked
    }
}

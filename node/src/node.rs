//! The running node: wires the store, the ledger replica, the network and the control API.
//!
//! One task (`Node::run`) reads network events and, on the sequencer, the block timer. Block
//! application is serialised by the ledger lock: a block is verified and applied to the replica,
//! persisted and flushed, and only then acknowledged to gossip (so it propagates) or gossiped
//! (on the sequencer). Catch-up runs in a task of its own, one at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use paychan_ledger::{ErrorClass, LedgerState, Mempool};
use paychan_net::limits::{
    LEDGER_REQUESTS_IN_FLIGHT_PER_PEER_MAX, LEDGER_REQUESTS_PER_PEER_PER_S, LEDGER_REQUEST_BURST_PER_PEER,
};
use paychan_net::rate::TokenBucket;
use paychan_net::{
    peer_id_from_public_key, LedgerResponder, MessageAcceptance, MessageId, Misbehaviour, Multiaddr, Net,
    NetConfig, NetEvent, NetHandle, PeerId, Topic,
};
use paychan_protocol::ledger::Checkpoint;
use paychan_protocol::wire::{
    GossipMsg, LedgerRequest, LedgerResponse, SplitView, SubmitStatus, BLOCKS_PER_RESPONSE_MAX,
    LEDGER_RESPONSE_BYTES_MAX,
};
use paychan_protocol::{Block, Cosignature, Genesis, Hash32, Keypair, PublicKey, SignedCheckpoint, Tx, Wire};
use paychan_store::{SledStore, Store};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn, Instrument};

use crate::config::{Config, DataDir};
pub use crate::evidence::CensorshipReport;
use crate::evidence::HeldUpdate;

/// What this node does in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Orders transactions into blocks.
    Sequencer,
    /// Keeps a verified replica and cosigns checkpoints.
    Witness,
    /// Keeps a verified replica.
    Replica,
}

/// The node's shared state, behind [`NodeHandle`].
#[derive(Debug)]
struct Shared {
    keypair: Keypair,
    genesis: Genesis,
    chain_id: Hash32,
    role: Role,
    peer_id: PeerId,
    sequencer_peer: Option<PeerId>,
    net: NetHandle,
    store: Arc<SledStore>,
    /// The ledger replica and its single writer.
    replica: crate::replica::Replica,
    mempool: Mutex<Mempool>,
    /// Checkpoints seen but not yet cosigned because the replica is behind, by height.
    pending_checkpoints: Mutex<BTreeMap<u64, SignedCheckpoint>>,
    /// Block hash -> height of recent checkpoints, to place gossiped cosignatures.
    checkpoint_heights: Mutex<HashMap<Hash32, u64>>,
    catching_up: AtomicBool,
    listen_addrs: Vec<Multiaddr>,
    /// TEST ONLY switch: the sequencer drops dispute updates.
    drop_updates: bool,
    /// TEST ONLY switch: transfers the sequencer still drops (answering them as accepted).
    drop_transfers: std::sync::atomic::AtomicU32,
    /// TEST ONLY switch: how far ahead of the real clock the sequencer's clock runs.
    clock_ahead_ms: u64,
    /// Valid dispute updates this node holds, received within their challenge window: the
    /// evidence a witness checks settlements against.
    /// Persisted under [`HELD_META_KEY`] before it is acted on.
    held_updates: Mutex<HashMap<paychan_protocol::ChannelId, HeldUpdate>>,
    /// Settlements that ignored a held update the sequencer could have included (persisted
    /// under [`CENSORSHIP_META_KEY`]). No checkpoint from the lowest reported height on gets
    /// this witness's cosignature.
    censorship: Mutex<Vec<CensorshipReport>>,
    /// Two different blocks signed by the sequencer at one height (persisted under
    /// [`DOUBLE_BLOCK_META_PREFIX`]): the sequencer's key equivocated; cosigning stops.
    double_blocks: Mutex<Vec<DoubleBlock>>,
    /// Double blocks recorded since start (Prometheus `paychan_double_blocks_total`).
    double_block_counter: prometheus_client::metrics::counter::Counter,
    /// TEST ONLY switch: the sequencer signs a second block at one height, once.
    double_block: AtomicBool,
    /// The channel manager (set once at start).
    channels: std::sync::OnceLock<paychan_client::ChannelManager>,
    /// The last account nonce this node used for its own transactions, with the replica's
    /// height then, so that a burst of them gets consecutive nonces even where no mempool
    /// counts them (off the sequencer).
    last_nonce: Mutex<Option<(u64, u64)>>,
    /// TEST ONLY switch: the sequencer signs and gossips a second, different checkpoint for one
    /// log size, once (cleared when done).
    equivocate: AtomicBool,
    /// Recent checkpoints validly signed by the sequencer, by height: what a new one is checked
    /// against for a split view.
    recent_checkpoints: Mutex<BTreeMap<u64, SignedCheckpoint>>,
    /// A witness's newest cosigned checkpoint (persisted under [`COSIGNED_META_KEY`]).
    cosigned: Mutex<Option<SignedCheckpoint>>,
    /// Split views seen, with what makes each one (persisted under [`SPLIT_VIEW_META_PREFIX`]).
    split_views: Mutex<SplitViews>,
    /// Split views recorded since start (Prometheus `paychan_split_views_total`).
    split_view_counter: prometheus_client::metrics::counter::Counter,
    /// What this node relays for its peers (off the sequencer), and at what rate.
    relay: Mutex<Relay>,
    /// Relayed submissions in flight to the sequencer.
    relay_slots: tokio::sync::Semaphore,
    /// Sequencer: transactions waiting for [`admit`] (None elsewhere).
    admission: Option<mpsc::Sender<Admit>>,
    /// This node's own transactions until the ledger shows them ([`resubmit_own`]).
    own_pending: Mutex<crate::resubmit::OwnPending>,
}

/// Submissions one peer may have this node check and relay per second (token-bucket refill).
const RELAY_SUBMITS_PER_PEER_PER_S: u32 = 20;
/// Submissions one peer may send in one burst.
const RELAY_SUBMIT_BURST_PER_PEER: u32 = 40;
/// Non-dispute submissions relayed to the sequencer per second, all peers together: half the
/// sequencer's per-peer request rate, so that a relay never meets the sequencer's refusals
/// (and their disconnect) whatever its own peers send.
const RELAY_SUBMITS_PER_S: u32 = LEDGER_REQUESTS_PER_PEER_PER_S / 2;
/// Burst of non-dispute submissions relayed, all peers together.
const RELAY_SUBMIT_BURST: u32 = LEDGER_REQUEST_BURST_PER_PEER / 2;
/// Closes and disputes (cooperative and unilateral closes, updates, settles) relayed per second,
/// all peers together: a budget of their own, so that spam never takes it (the sequencer's
/// mempool keeps them a room of their own too).
const RELAY_DISPUTES_PER_S: u32 = LEDGER_REQUESTS_PER_PEER_PER_S / 10;
/// Burst of closes and disputes relayed.
const RELAY_DISPUTE_BURST: u32 = LEDGER_REQUEST_BURST_PER_PEER / 10;
/// Relayed submissions waiting for the sequencer's answer at once: below the sequencer's
/// per-peer in-flight limit, so that a relay is never refused as busy for its peers' traffic.
const RELAY_IN_FLIGHT_MAX: usize = LEDGER_REQUESTS_IN_FLIGHT_PER_PEER_MAX as usize / 2;
// What a relay sends the sequencer, its own requests (catch-up) included, stays within the
// sequencer's limits for one peer.
const _: () = assert!(RELAY_SUBMITS_PER_S + RELAY_DISPUTES_PER_S < LEDGER_REQUESTS_PER_PEER_PER_S);
const _: () = assert!(RELAY_SUBMIT_BURST + RELAY_DISPUTE_BURST < LEDGER_REQUEST_BURST_PER_PEER);
const _: () = assert!(RELAY_IN_FLIGHT_MAX < LEDGER_REQUESTS_IN_FLIGHT_PER_PEER_MAX as usize);
const _: () = assert!(RELAY_SUBMITS_PER_PEER_PER_S <= RELAY_SUBMITS_PER_S);

/// The rates a relay enforces: per inbound peer, and in total towards the sequencer. A peer's
/// bucket is dropped when it disconnects (so the map is bounded by the connection limits).
#[derive(Debug)]
struct Relay {
    started: std::time::Instant,
    per_peer: HashMap<PeerId, TokenBucket>,
    submits: TokenBucket,
    disputes: TokenBucket,
}

impl Relay {
    fn new() -> Relay {
        Relay {
            started: std::time::Instant::now(),
            per_peer: HashMap::new(),
            submits: TokenBucket::new(RELAY_SUBMITS_PER_S, RELAY_SUBMIT_BURST, Duration::ZERO),
            disputes: TokenBucket::new(RELAY_DISPUTES_PER_S, RELAY_DISPUTE_BURST, Duration::ZERO),
        }
    }

    /// Takes a token from `peer`'s own bucket.
    fn peer_allows(&mut self, peer: PeerId) -> bool {
        let now = self.started.elapsed();
        self.per_peer
            .entry(peer)
            .or_insert_with(|| {
                TokenBucket::new(RELAY_SUBMITS_PER_PEER_PER_S, RELAY_SUBMIT_BURST_PER_PEER, now)
            })
            .try_take(now)
    }

    /// Takes a token from the total budget of the transaction's kind: closes and disputes have
    /// their own, which transfers, deposits and opens never take.
    fn total_allows(&mut self, tx: &Tx) -> bool {
        let now = self.started.elapsed();
        if relay_reserved(tx) {
            self.disputes.try_take(now)
        } else {
            self.submits.try_take(now)
        }
    }
}

/// Whether a relay forwards `tx` on the budget kept for closes and disputes: a close that waits
/// behind spam can be as costly as a dispute that does (a channel stays locked, or a stale close
/// settles), and both are bounded by the live channels, each paid for by its open's fee.
fn relay_reserved(tx: &Tx) -> bool {
    tx.is_dispute() || matches!(tx, Tx::CoopClose(_) | Tx::UnilateralClose { .. })
}

/// Text of the refusal of a peer's submission beyond its own relay rate.
pub const RELAY_REFUSED_PEER_RATE: &str = "too many submissions from this peer; slow down";
/// Text of the refusal of a submission beyond the relay's total rate towards the sequencer.
pub const RELAY_REFUSED_BUSY: &str = "relay busy; try again or submit elsewhere";

/// Split views on record, each with what makes it one.
type SplitViews = Vec<(SplitView, String)>;

/// Store meta key of a witness's newest cosigned checkpoint (postcard `SignedCheckpoint`).
pub const COSIGNED_META_KEY: &str = "witness/cosigned-checkpoint";
/// Store meta key prefix of split-view evidence (postcard `SplitView`), then a 4-digit index.
pub const SPLIT_VIEW_META_PREFIX: &str = "alarm/split-view/";
/// Store meta key of the held dispute updates (JSON list of channel id and hold).
pub const HELD_META_KEY: &str = "censorship/held";
/// Store meta key of the censorship reports (JSON list).
pub const CENSORSHIP_META_KEY: &str = "censorship/reports";
/// Store meta key prefix of double-block evidence (JSON [`DoubleBlock`]), then a 4-digit index.
pub const DOUBLE_BLOCK_META_PREFIX: &str = "alarm/double-block/";
/// Most double blocks kept as evidence (one is enough to stop cosigning).
const DOUBLE_BLOCKS_MAX: usize = 16;
/// Most split views kept as evidence (one is enough to stop cosigning).
const SPLIT_VIEWS_MAX: usize = 16;
/// How many recent signed checkpoints are kept to check new ones against.
const RECENT_CHECKPOINTS: usize = 256;

/// A cloneable handle on the running node, used by the control API.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

/// Node identity and position, as `GET /v1/info` reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NodeInfo {
    /// libp2p peer id.
    pub peer_id: String,
    /// Ledger account (hex ed25519 key).
    pub account: String,
    /// Role in the ledger.
    pub role: Role,
    /// Chain id (hex).
    pub chain_id: String,
    /// Height of the replica.
    pub height: u64,
    /// Ledger time of the replica's tip (ms).
    pub time_ms: u64,
    /// p2p addresses with `/p2p/<id>`.
    pub p2p_addrs: Vec<String>,
}

/// The replica's ledger position, as `GET /v1/ledger/status` reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LedgerStatus {
    /// Chain id (hex).
    pub chain_id: String,
    /// Height.
    pub height: u64,
    /// Ledger time (ms).
    pub time_ms: u64,
    /// Hash of the tip block (the chain id at height 0).
    pub block_hash: String,
    /// State root after the tip.
    pub state_root: String,
    /// Size of the transaction log.
    pub log_size: u64,
    /// Root of the transaction log.
    pub log_root: String,
    /// Transactions waiting at this node (sequencer only; 0 elsewhere).
    pub pending: usize,
    /// Genesis supply.
    pub supply: u64,
    /// Balances plus deposits locked in live channels: always equals `supply`.
    pub total_value: u64,
    /// The unit every amount counts (from genesis).
    #[schema(value_type = crate::api::UnitView)]
    pub unit: paychan_protocol::Unit,
}

/// How many checkpoints below the newest one `witnessed_height` looks at: cosignatures of the
/// newest may still be on their way.
const WITNESS_LOOKBACK: u64 = 8;

impl LedgerStatus {
    /// The status of a replica, with `pending` transactions waiting.
    pub fn of(l: &LedgerState, pending: usize) -> LedgerStatus {
        LedgerStatus {
            chain_id: l.chain_id().to_hex(),
            height: l.height(),
            time_ms: l.time_ms(),
            block_hash: l.last_block_hash().to_hex(),
            state_root: l.state_root().to_hex(),
            log_size: l.log_size(),
            log_root: l.log_root().to_hex(),
            pending,
            supply: l.genesis_supply(),
            total_value: l.total_value(),
            unit: l.genesis().unit.clone(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The sequencer's peer id, derived from the genesis key.
fn sequencer_peer(genesis: &Genesis) -> Option<PeerId> {
    peer_id_from_public_key(&genesis.sequencer)
}

/// A started node: its network is up and its channel manager runs; [`Started::run`] drives it.
pub struct Started {
    /// The handle the API layers serve.
    pub handle: NodeHandle,
    events: mpsc::Receiver<NetEvent>,
    net_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").finish_non_exhaustive()
    }
}

/// Restores the replica from `dir`'s database, starts the network and the channel manager.
pub async fn start(dir: &DataDir, config: &Config) -> Result<Started> {
    let keypair = dir.keypair()?;
    let genesis = dir.genesis()?;
    let store = Arc::new(dir.open_store(config)?);
    store
        .put_genesis(&genesis)
        .context("the database holds another genesis")?;
    let ledger = replay(&genesis, store.as_ref())?;
    info!(height = ledger.height(), chain_id = %genesis.chain_id(), "replica restored from the database");

    let role = if keypair.public() == genesis.sequencer {
        Role::Sequencer
    } else if config.witness && genesis.witnesses.contains(&keypair.public()) {
        Role::Witness
    } else {
        Role::Replica
    };
    let listen = listen_addr(dir, config)?;
    let (net, events, net_task) = start_net(config, listen.clone(), &keypair, &genesis).await?;
    let peer_id = net.local_peer_id();
    let bound = net.listen_addrs().await?;
    remember_listen_addr(dir, &listen, &bound)?;
    let listen_addrs: Vec<Multiaddr> = bound.into_iter().map(|a| a.with(libp2p_p2p(peer_id))).collect();
    if let Some(addr) = listen_addrs.first() {
        std::fs::write(dir.p2p_addr_path(), addr.to_string())?;
    }
    let mempool = Mempool::new(&genesis);
    let (admission, admission_rx) = if role == Role::Sequencer {
        let (tx, rx) = mpsc::channel(ADMIT_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (cosigned, split_views) = load_witness_records(store.as_ref(), &genesis, &ledger)?;
    let (held_updates, censorship, double_blocks) = load_evidence(store.as_ref(), &genesis)?;
    let double_block_counter = prometheus_client::metrics::counter::Counter::default();
    net.metrics_registry().lock().expect("metrics lock").register(
        "paychan_double_blocks",
        "Heights at which the sequencer signed two different blocks, recorded since start",
        double_block_counter.clone(),
    );
    let split_view_counter = prometheus_client::metrics::counter::Counter::default();
    net.metrics_registry().lock().expect("metrics lock").register(
        "paychan_split_views",
        "Split views of the sequencer (two inconsistent signed checkpoints) recorded since start",
        split_view_counter.clone(),
    );
    // What this node signed and the ledger did not show yet, as the last run left it.
    let own_pending = crate::resubmit::OwnPending::restore(&store.meta_entries()?);
    if !own_pending.is_empty() {
        info!(
            count = own_pending.len(),
            "own transactions to send again until the ledger shows them"
        );
    }
    let shared = Arc::new(Shared {
        chain_id: genesis.chain_id(),
        sequencer_peer: sequencer_peer(&genesis),
        genesis,
        keypair,
        role,
        peer_id,
        net,
        store,
        replica: crate::replica::Replica::new(ledger),
        mempool: Mutex::new(mempool),
        pending_checkpoints: Mutex::new(BTreeMap::new()),
        checkpoint_heights: Mutex::new(HashMap::new()),
        catching_up: AtomicBool::new(false),
        listen_addrs,
        last_nonce: Mutex::new(None),
        channels: std::sync::OnceLock::new(),
        drop_updates: config.test_drop_updates && role == Role::Sequencer,
        drop_transfers: std::sync::atomic::AtomicU32::new(if role == Role::Sequencer {
            config.test_drop_transfers
        } else {
            0
        }),
        clock_ahead_ms: if role == Role::Sequencer {
            config.test_clock_ahead_ms
        } else {
            0
        },
        held_updates: Mutex::new(held_updates),
        censorship: Mutex::new(censorship),
        double_blocks: Mutex::new(double_blocks),
        double_block_counter,
        double_block: AtomicBool::new(config.test_double_block && role == Role::Sequencer),
        equivocate: AtomicBool::new(config.test_equivocate && role == Role::Sequencer),
        recent_checkpoints: Mutex::new(BTreeMap::new()),
        cosigned: Mutex::new(cosigned),
        split_views: Mutex::new(split_views),
        split_view_counter: split_view_counter.clone(),
        relay: Mutex::new(Relay::new()),
        relay_slots: tokio::sync::Semaphore::new(RELAY_IN_FLIGHT_MAX),
        admission,
        own_pending: Mutex::new(own_pending),
    });
    if let Some(rx) = admission_rx {
        tokio::spawn(admit(Arc::downgrade(&shared), rx));
    }
    tokio::spawn(resubmit_own(Arc::downgrade(&shared), shared.replica.subscribe()));
    if shared.drop_updates {
        warn!("TEST SWITCH: this sequencer drops dispute updates");
    }
    let drop_transfers = shared.drop_transfers.load(Ordering::Relaxed);
    if drop_transfers > 0 {
        warn!(
            drop_transfers,
            "TEST SWITCH: this sequencer drops the first transfers it is offered"
        );
    }
    if shared.equivocate.load(Ordering::Relaxed) {
        warn!("TEST SWITCH: this sequencer will sign two checkpoints for one log size");
    }
    if shared.double_block.load(Ordering::Relaxed) {
        warn!("TEST SWITCH: this sequencer will sign two blocks at one height");
    }
    if !shared.double_blocks.lock().expect("double block lock").is_empty() {
        tracing::error!("DOUBLE BLOCK evidence on record: this node cosigns nothing");
    }
    if !shared.censorship.lock().expect("censorship lock").is_empty() {
        tracing::error!("CENSORSHIP evidence on record: this node refuses checkpoints from its height on");
    }
    if !shared.split_views.lock().expect("split view lock").is_empty() {
        tracing::error!("SPLIT VIEW evidence on record: this node cosigns nothing");
    }
    let handle = NodeHandle {
        shared: shared.clone(),
    };
    info!(%peer_id, ?role, account = %shared.keypair.public(), "node started");

    let events_for_manager = shared.replica.subscribe();
    let manager = paychan_client::ChannelManager::start(
        shared.keypair.clone(),
        shared.net.clone(),
        shared.store.clone(),
        Arc::new(NodeLedger(handle.clone())),
        paychan_client::ManagerConfig::default(),
    )?;
    let _ = shared.channels.set(manager.clone());
    // The watchtower follows the replica's events: each block brings the manager to the
    // channels it touched. A lagging subscription (events dropped) asks for a full pass.
    tokio::spawn(forward_ledger_events(events_for_manager, manager));
    if config.credit.policy != crate::credit_policy::Policy::None {
        info!(policy = ?config.credit.policy, max_limit = config.credit.max_limit, "credit policy: this node grants lines to the parties of its channels");
        tokio::spawn(crate::credit_policy::run(handle.clone(), config.credit.clone()));
    }
    if let Some(seq) = shared.sequencer_peer.filter(|p| *p != peer_id) {
        // The ledger stops for a node that loses its sequencer: dial it again whenever it goes.
        shared.net.keep_connected(seq).await?;
    }
    Ok(Started {
        handle,
        events,
        net_task,
    })
}

impl Started {
    /// Runs the node until `shutdown`, then stops the network and flushes the store.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<()> {
        let Started {
            handle,
            events,
            net_task,
        } = self;
        let result = event_loop(handle.clone(), events, shutdown).await;
        info!("shutting down");
        let _ = handle.shared.net.shutdown().await;
        let _ = net_task.await;
        handle.shared.store.flush().context("final flush")?;
        result
    }
}

/// Hands every block event of the replica to the channel manager, until the replica is gone.
async fn forward_ledger_events(
    mut events: tokio::sync::broadcast::Receiver<crate::replica::LedgerEvent>,
    manager: paychan_client::ChannelManager,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(ev) => manager.block_applied(ev.channels),
            Err(RecvError::Lagged(missed)) => {
                debug!(
                    missed,
                    "the manager missed block events; it looks at every channel"
                );
                manager.ledger_changed();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// A transaction offered to the sequencer's mempool, and where its answer goes.
type Admit = (
    Tx,
    tokio::sync::oneshot::Sender<Result<SubmitStatus, paychan_ledger::TxError>>,
);
/// Offers waiting for admission at most; a submitter waits for room beyond it.
const ADMIT_QUEUE: usize = 4_096;
/// Offers admitted as one group at most.
const ADMIT_GROUP_MAX: usize = 1_024;

/// The sequencer's admission: takes every offer waiting (up to [`ADMIT_GROUP_MAX`]), checks
/// their own signatures off the async threads, in batches on every core
/// ([`paychan_ledger::CheckedTx::check_all`]), then offers each to the mempool in arrival
/// order and answers it. Offers that arrive while a group is checked form the next group, so
/// a lone offer waits for one check and a flood is checked at the batch rate. The answers are
/// those of [`Mempool::submit`] one by one. Ends with the node.
async fn admit(shared: std::sync::Weak<Shared>, mut queue: mpsc::Receiver<Admit>) {
    let mut group = Vec::with_capacity(ADMIT_GROUP_MAX);
    while queue.recv_many(&mut group, ADMIT_GROUP_MAX).await > 0 {
        let (txs, answers): (Vec<Tx>, Vec<_>) = group.drain(..).unzip();
        let Ok(checked) =
            tokio::task::spawn_blocking(move || paychan_ledger::CheckedTx::check_all(txs)).await
        else {
            return;
        };
        let Some(s) = shared.upgrade() else { return };
        let ledger = s.replica.read();
        let mut pool = s.mempool.lock().expect("mempool lock");
        for (tx, answer) in checked.into_iter().zip(answers) {
            let _ = answer.send(pool.submit_checked(tx, &ledger));
        }
    }
}

/// Sends this node's own transactions again while the ledger does not show them: after each
/// block, those [`crate::resubmit::OwnPending::due`] names are submitted again; one the rules
/// refuse for good (its nonce used, its funds gone) is no longer tracked, one that cannot be
/// sent now is tried again later. Ends with the node.
async fn resubmit_own(
    shared: std::sync::Weak<Shared>,
    mut events: tokio::sync::broadcast::Receiver<crate::replica::LedgerEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        let Some(shared) = shared.upgrade() else { return };
        let due = {
            let ledger = shared.replica.read();
            shared.own_pending.lock().expect("own pending lock").due(&ledger)
        };
        // A slot freed here and lost in a crash only means one send too many after a restart,
        // which the rules refuse; no flush.
        for slot in due.freed {
            free_own_slot(&*shared.store, slot);
        }
        let node = NodeHandle { shared };
        for (id, tx) in due.resend {
            match node.submit(tx).await {
                Ok(_) => info!(tx = %id, "own transaction sent again: the ledger does not show it yet"),
                Err(SubmitError::Rejected(why)) => {
                    warn!(tx = %id, %why, "own transaction refused for good; no longer sent again");
                    let slot = node
                        .shared
                        .own_pending
                        .lock()
                        .expect("own pending lock")
                        .forget(&id);
                    if let Some(slot) = slot {
                        free_own_slot(&*node.shared.store, slot);
                    }
                }
                Err(e) => {
                    debug!(tx = %id, error = %e, "own transaction not sent again now; tried after the next blocks")
                }
            }
        }
    }
}

/// Frees slot `slot` of the tracker of own transactions in the store.
fn free_own_slot(store: &dyn Store, slot: usize) {
    if let Err(e) = store.put_meta(&crate::resubmit::slot_key(slot), &[]) {
        warn!(slot, error = %e, "could not free a slot of the own-transaction tracker");
    }
}

fn libp2p_p2p(peer: PeerId) -> paychan_net::libp2p::multiaddr::Protocol<'static> {
    paychan_net::libp2p::multiaddr::Protocol::P2p(peer)
}

/// The p2p listen address: the config's, except that a port 0 there means the port this node
/// bound on its first start (kept in `p2p.listen`), so that peers that know the node find it
/// again after a restart.
fn listen_addr(dir: &DataDir, config: &Config) -> Result<Multiaddr> {
    let listen: Multiaddr = config
        .listen
        .parse()
        .with_context(|| format!("listen address {}", config.listen))?;
    if !has_port_zero(&listen) {
        return Ok(listen);
    }
    match std::fs::read_to_string(dir.listen_path()) {
        Ok(text) => text.trim().parse().with_context(|| {
            format!(
                "{} is not a multiaddr (delete it to listen on a fresh port)",
                dir.listen_path().display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(listen),
        Err(e) => Err(e).with_context(|| format!("read {}", dir.listen_path().display())),
    }
}

fn has_port_zero(addr: &Multiaddr) -> bool {
    use paychan_net::libp2p::multiaddr::Protocol;
    addr.iter().any(|p| matches!(p, Protocol::Tcp(0)))
}

/// Keeps the port the node bound for a listen address with port 0.
fn remember_listen_addr(dir: &DataDir, listen: &Multiaddr, bound: &[Multiaddr]) -> Result<()> {
    use paychan_net::libp2p::multiaddr::Protocol;
    if !has_port_zero(listen) {
        return Ok(());
    }
    let port = bound.iter().flat_map(|a| a.iter()).find_map(|p| match p {
        Protocol::Tcp(port) if port != 0 => Some(port),
        _ => None,
    });
    let Some(port) = port else { return Ok(()) };
    let kept: Multiaddr = listen
        .iter()
        .map(|p| match p {
            Protocol::Tcp(0) => Protocol::Tcp(port),
            other => other,
        })
        .collect();
    std::fs::write(dir.listen_path(), kept.to_string())
        .with_context(|| format!("write {}", dir.listen_path().display()))
}

async fn start_net(
    config: &Config,
    listen: Multiaddr,
    keypair: &Keypair,
    genesis: &Genesis,
) -> Result<(NetHandle, mpsc::Receiver<NetEvent>, tokio::task::JoinHandle<()>)> {
    let mut net_config = NetConfig::new(listen);
    // The peers the ledger cannot do without get the reserved connection slots and a share of
    // the event queue for what they author.
    net_config.reserved_peers = std::iter::once(&genesis.sequencer)
        .chain(&genesis.witnesses)
        .filter_map(peer_id_from_public_key)
        .collect();
    for b in &config.bootstrap {
        net_config
            .bootstrap
            .push(b.parse().with_context(|| format!("bootstrap address {b}"))?);
    }
    Ok(Net::new(keypair.seed(), net_config).await?)
}

/// Rebuilds the replica from the stored blocks, verifying each one again.
pub fn replay(genesis: &Genesis, store: &dyn Store) -> Result<LedgerState> {
    // The auditor's replay (every rule, signatures in batches, conservation after each block):
    // what a node trusts of its own disk is what an auditor would accept of it.
    crate::audit_cmd::replay_store(genesis, store)
}

/// A witness's newest cosigned checkpoint and the split views on record, from the store.
fn load_witness_records(
    store: &dyn Store,
    genesis: &Genesis,
    ledger: &LedgerState,
) -> Result<(Option<SignedCheckpoint>, SplitViews)> {
    let cosigned = match store.meta(COSIGNED_META_KEY)? {
        Some(b) => {
            Some(SignedCheckpoint::from_bytes(&b).map_err(|e| anyhow!("stored cosigned checkpoint: {e}"))?)
        }
        None => None,
    };
    let mut views = Vec::new();
    for (key, value) in store.meta_entries()? {
        if !key.starts_with(SPLIT_VIEW_META_PREFIX) {
            continue;
        }
        let view = SplitView::from_bytes(&value).map_err(|e| anyhow!("stored split view {key}: {e}"))?;
        let why = match split_view_of(genesis, &view, ledger) {
            Inconsistency::Proven(why) => why,
            _ => "recorded before a restart".to_string(),
        };
        views.push((view, why));
    }
    Ok((cosigned, views))
}

/// The held updates, censorship reports and double blocks on record, from the store.
#[allow(clippy::type_complexity)]
fn load_evidence(
    store: &dyn Store,
    genesis: &Genesis,
) -> Result<(
    HashMap<paychan_protocol::ChannelId, HeldUpdate>,
    Vec<CensorshipReport>,
    Vec<DoubleBlock>,
)> {
    let held: Vec<(paychan_protocol::ChannelId, HeldUpdate)> = match store.meta(HELD_META_KEY)? {
        Some(b) => serde_json::from_slice(&b).context("stored held updates")?,
        None => vec![],
    };
    let reports: Vec<CensorshipReport> = match store.meta(CENSORSHIP_META_KEY)? {
        Some(b) => serde_json::from_slice(&b).context("stored censorship reports")?,
        None => vec![],
    };
    let mut doubles = Vec::new();
    for (key, value) in store.meta_entries()? {
        if !key.starts_with(DOUBLE_BLOCK_META_PREFIX) {
            continue;
        }
        let d: DoubleBlock = serde_json::from_slice(&value).with_context(|| format!("stored {key}"))?;
        if !d.verifies(genesis) {
            bail!("stored {key} is not two blocks signed by the sequencer at one height");
        }
        doubles.push(d);
    }
    Ok((held.into_iter().collect(), reports, doubles))
}

/// Whether two checkpoints can both be true.
#[derive(Debug, PartialEq, Eq)]
enum Inconsistency {
    /// They cannot: a split view, and why.
    Proven(String),
    /// They are consistent (or the same checkpoint).
    Consistent,
    /// This node cannot tell yet (its replica is behind, or neither matches it).
    Unknown,
}

/// Checks two checkpoints of one chain against each other and this node's verified replica:
/// same height and different checkpoints, same log size and different roots, a log that
/// shrinks as the height grows, or no valid consistency proof from the older to the newer
/// (the proof comes from the replica, and counts when one of the two matches the replica).
fn inconsistency(a: &Checkpoint, b: &Checkpoint, ledger: &LedgerState) -> Inconsistency {
    if a == b {
        return Inconsistency::Consistent;
    }
    if a.height == b.height {
        return Inconsistency::Proven(format!("two different checkpoints at height {}", a.height));
    }
    if a.log_size == b.log_size && a.log_root != b.log_root {
        return Inconsistency::Proven(format!("two roots for log size {}", a.log_size));
    }
    let (older, newer) = if a.height < b.height { (a, b) } else { (b, a) };
    if newer.log_size < older.log_size {
        return Inconsistency::Proven(format!(
            "the log shrinks from {} at height {} to {} at height {}",
            older.log_size, older.height, newer.log_size, newer.height
        ));
    }
    if newer.log_size > ledger.log_size() {
        return Inconsistency::Unknown;
    }
    let path = if older.log_size == 0 {
        Ok(vec![])
    } else {
        ledger.consistency_proof(older.log_size, newer.log_size)
    };
    let Ok(path) = path else {
        return Inconsistency::Unknown;
    };
    if paychan_ledger::verify_checkpoint_consistency(older, newer, &path).is_ok() {
        return Inconsistency::Consistent;
    }
    let log = ledger.log();
    let matches = |c: &Checkpoint| log.root_at(c.log_size).is_ok_and(|r| r == c.log_root);
    if matches(older) || matches(newer) {
        Inconsistency::Proven(format!(
            "no consistency proof from log size {} (height {}) to {} (height {})",
            older.log_size, older.height, newer.log_size, newer.height
        ))
    } else {
        Inconsistency::Unknown
    }
}

/// Checks gossiped or stored evidence: both checkpoints are of this chain and signed by the
/// sequencer, and they are inconsistent.
fn split_view_of(genesis: &Genesis, view: &SplitView, ledger: &LedgerState) -> Inconsistency {
    let chain_id = ledger.chain_id();
    for c in [&view.first, &view.second] {
        if c.checkpoint.chain_id != chain_id
            || c.checkpoint
                .verify_sequencer(&genesis.sequencer, &c.signature)
                .is_err()
        {
            return Inconsistency::Consistent;
        }
    }
    inconsistency(&view.first.checkpoint, &view.second.checkpoint, ledger)
}

async fn event_loop(
    node: NodeHandle,
    mut events: mpsc::Receiver<NetEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let g = &node.shared.genesis;
    let mut block_tick = tokio::time::interval(Duration::from_millis(g.block_interval_ms.max(1)));
    block_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sync_tick = tokio::time::interval(Duration::from_millis(g.heartbeat_interval_ms.max(500)));
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let is_sequencer = node.shared.role == Role::Sequencer;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            ev = events.recv() => match ev {
                Some(ev) => node.on_event(ev).await,
                None => return Err(anyhow!("network layer stopped")),
            },
            _ = block_tick.tick(), if is_sequencer => node.maybe_produce_block().await?,
            _ = sync_tick.tick(), if !is_sequencer => node.spawn_catch_up(None),
        }
    }
}

impl NodeHandle {
    /// Identity and position.
    pub fn info(&self) -> NodeInfo {
        let s = &self.shared;
        let ledger = s.replica.read();
        NodeInfo {
            peer_id: s.peer_id.to_string(),
            account: s.keypair.public().to_hex(),
            role: s.role,
            chain_id: s.chain_id.to_hex(),
            height: ledger.height(),
            time_ms: ledger.time_ms(),
            p2p_addrs: s.listen_addrs.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The replica's position.
    pub fn ledger_status(&self) -> LedgerStatus {
        let pending = self.shared.mempool.lock().expect("mempool lock").len();
        LedgerStatus::of(&self.shared.replica.read(), pending)
    }

    /// The channel manager.
    pub fn channels(&self) -> &paychan_client::ChannelManager {
        self.shared
            .channels
            .get()
            .expect("the channel manager starts before the API")
    }

    /// This node's account.
    pub fn keypair_public(&self) -> PublicKey {
        self.shared.keypair.public()
    }

    /// One event per block the replica applies, in height order.
    pub fn subscribe_ledger(&self) -> tokio::sync::broadcast::Receiver<crate::replica::LedgerEvent> {
        self.shared.replica.subscribe()
    }

    /// Read access to the replica.
    pub fn with_ledger<T>(&self, f: impl FnOnce(&LedgerState) -> T) -> T {
        f(&self.shared.replica.read())
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.shared.store.as_ref()
    }

    /// Transactions pending in this node's pool.
    pub fn mempool_len(&self) -> usize {
        self.shared.mempool.lock().expect("mempool lock").len()
    }

    /// The network handle.
    pub fn net(&self) -> &NetHandle {
        &self.shared.net
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.shared.genesis
    }

    /// Submits a transaction: into the mempool on the sequencer; elsewhere checked against this
    /// node's replica (signature, nonce window, funds) and only then forwarded to the sequencer.
    pub async fn submit(&self, tx: Tx) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let s = &self.shared;
        if tx.chain_id() != s.chain_id {
            return Err(SubmitError::Rejected("transaction is for another chain".into()));
        }
        if s.role == Role::Sequencer {
            let id = tx.id();
            if s.drop_updates && matches!(tx, Tx::Update(_)) {
                warn!(tx = %id, "TEST SWITCH: dropping a dispute update");
                return Ok((id, SubmitStatus::Accepted));
            }
            if matches!(tx, Tx::Transfer { .. })
                && s.drop_transfers
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
            {
                warn!(tx = %id, "TEST SWITCH: dropping a transfer");
                return Ok((id, SubmitStatus::Accepted));
            }
            let (answer, answered) = tokio::sync::oneshot::channel();
            let queue = s.admission.as_ref().expect("a sequencer admits transactions");
            if queue.send((tx, answer)).await.is_err() {
                return Err(SubmitError::Unavailable("the sequencer is stopping".into()));
            }
            let status = answered
                .await
                .map_err(|_| SubmitError::Unavailable("the sequencer is stopping".into()))?;
            return status
                .map(|st| (id, st))
                .map_err(|e| SubmitError::Rejected(e.to_string()));
        }
        if let Some(status) = self.check_before_relay(&tx)? {
            return Ok((tx.id(), status));
        }
        self.forward(tx).await
    }

    /// A submission from `peer` over `/paychan/ledger/1`. Off the sequencer it is rate-limited
    /// per peer and in total before it is checked and relayed: what this node sends the
    /// sequencer stays within the sequencer's limits for one peer, whatever its peers send.
    async fn submit_from_peer(&self, peer: PeerId, tx: Tx) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let s = &self.shared;
        if s.role == Role::Sequencer {
            // The network layer's per-peer request limits apply; the mempool's rules do the rest.
            return self.submit(tx).await;
        }
        if tx.chain_id() != s.chain_id {
            return Err(SubmitError::Rejected("transaction is for another chain".into()));
        }
        if !s.relay.lock().expect("relay lock").peer_allows(peer) {
            return Err(SubmitError::Unavailable(RELAY_REFUSED_PEER_RATE.into()));
        }
        if let Some(status) = self.check_before_relay(&tx)? {
            return Ok((tx.id(), status));
        }
        if !s.relay.lock().expect("relay lock").total_allows(&tx) {
            return Err(SubmitError::Unavailable(RELAY_REFUSED_BUSY.into()));
        }
        let Ok(_slot) = s.relay_slots.try_acquire() else {
            return Err(SubmitError::Unavailable(RELAY_REFUSED_BUSY.into()));
        };
        self.forward(tx).await
    }

    /// Checks a transaction against this node's replica with the sequencer's admission rules
    /// (an empty pool: what other nodes have pending is the sequencer's to judge). Refuses what
    /// the sequencer would refuse, except what a replica one block behind cannot judge (a
    /// channel it does not know yet, a window that has ended by the sequencer's clock). Returns
    /// a status to answer at once for a transaction already in the replica.
    fn check_before_relay(&self, tx: &Tx) -> Result<Option<SubmitStatus>, SubmitError> {
        let s = &self.shared;
        let ledger = s.replica.read();
        match Mempool::new(&s.genesis).submit(tx.clone(), &ledger) {
            Ok(SubmitStatus::AlreadyIncluded) => Ok(Some(SubmitStatus::AlreadyIncluded)),
            Ok(_) => Ok(None),
            Err(paychan_ledger::TxError::UnknownChannel(_) | paychan_ledger::TxError::WindowOpen { .. }) => {
                Ok(None)
            }
            Err(e) => Err(SubmitError::Rejected(e.to_string())),
        }
    }

    /// Forwards a checked transaction to the sequencer.
    async fn forward(&self, tx: Tx) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let s = &self.shared;
        let Some(seq) = s.sequencer_peer else {
            return Err(SubmitError::Unavailable(
                "the genesis sequencer key is not a libp2p identity".into(),
            ));
        };
        match s.net.request(seq, LedgerRequest::Submit(Box::new(tx))).await {
            Ok(LedgerResponse::Submitted { tx_id, status }) => Ok((tx_id, status)),
            Ok(LedgerResponse::Error { text }) => Err(SubmitError::Rejected(text)),
            Ok(other) => Err(SubmitError::Unavailable(format!(
                "unexpected answer from the sequencer: {other:?}"
            ))),
            Err(e) => Err(SubmitError::Unavailable(format!("sequencer unreachable: {e}"))),
        }
    }

    /// Signs and submits a transfer from this node's account. The nonce is the account's next
    /// one after what the ledger has applied, the run of this account's nonces pending in the
    /// mempool, and the last one this node signed. A burst beyond the nonce window the
    /// sequencer admits is refused with [`SubmitError::TooManyPending`] before anything is
    /// signed: the caller retries after the next block.
    pub async fn transfer(&self, to: PublicKey, amount: u64) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let (chain_id, from) = (self.shared.chain_id, self.shared.keypair.public());
        self.submit_own(|nonce, kp| {
            Tx::transfer(
                paychan_protocol::ledger::Transfer {
                    chain_id,
                    from,
                    to,
                    amount,
                    nonce,
                },
                kp,
            )
        })
        .await
    }

    /// Signs a credit grant as the creditor of channel `channel_id` (this node) for `debtor`,
    /// and submits it.
    pub async fn credit_grant(
        &self,
        channel_id: paychan_protocol::ChannelId,
        debtor: PublicKey,
        limit: u64,
        expiry_ms: u64,
        due_ms: u64,
    ) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let (chain_id, creditor) = (self.shared.chain_id, self.shared.keypair.public());
        self.submit_own(|nonce, kp| {
            Tx::credit_grant(
                paychan_protocol::ledger::CreditGrant {
                    chain_id,
                    channel_id,
                    creditor,
                    debtor,
                    limit,
                    expiry_ms,
                    due_ms,
                    nonce,
                },
                kp,
            )
        })
        .await
    }

    /// Signs a repayment of the debt of channel `channel_id` from this node's account, and
    /// submits it.
    pub async fn repay(
        &self,
        channel_id: paychan_protocol::ChannelId,
        amount: u64,
    ) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let (chain_id, from) = (self.shared.chain_id, self.shared.keypair.public());
        self.submit_own(|nonce, kp| {
            Tx::repay(
                paychan_protocol::ledger::Repay {
                    chain_id,
                    channel_id,
                    from,
                    amount,
                    nonce,
                },
                kp,
            )
        })
        .await
    }

    /// The credit score of `account` from this node's verified replica: its state and, for
    /// each account's first appearance, its blocks (PROTOCOL.md, credit: score).
    pub fn credit_score(&self, account: &PublicKey) -> Result<paychan_audit::Score, String> {
        let state = self.with_ledger(|l| l.clone());
        let seen = self.first_seen(state.height())?;
        Ok(paychan_audit::score(&state, &seen, account))
    }

    /// When each account first appeared, from the genesis and the stored blocks up to
    /// `height` (the age factor of the credit score).
    pub fn first_seen(&self, height: u64) -> Result<paychan_audit::FirstSeen, String> {
        let mut seen = paychan_audit::FirstSeen::from_genesis(&self.shared.genesis);
        let mut next = 1;
        while next <= height {
            let count = usize::try_from((height - next + 1).min(256)).unwrap_or(256);
            let blocks = self.store().blocks(next, count).map_err(|e| e.to_string())?;
            if blocks.is_empty() {
                return Err(format!("block {next} is not in the store"));
            }
            for b in &blocks {
                seen.observe(b);
            }
            next += blocks.len() as u64;
        }
        Ok(seen)
    }

    /// Signs a transaction of this node's account with its next nonce and submits it.
    async fn submit_own(
        &self,
        make: impl FnOnce(u64, &Keypair) -> Tx,
    ) -> Result<(Hash32, SubmitStatus), SubmitError> {
        let s = &self.shared;
        let from = s.keypair.public();
        let nonce = {
            let l = s.replica.read();
            let pool = s.mempool.lock().expect("mempool lock");
            let mut last = s.last_nonce.lock().expect("nonce lock");
            // What this node signed more than the pool's expiry ago is in a block or gone.
            let recent = last.filter(|(_, height)| {
                l.height().saturating_sub(*height) <= paychan_ledger::mempool::EXPIRY_BLOCKS
            });
            let next = pool
                .next_own_nonce(&l, &from, recent.map(|(nonce, _)| nonce))
                .map_err(|_| SubmitError::TooManyPending {
                    window: pool.nonce_window(),
                })?;
            *last = Some((next, l.height()));
            next
        };
        let tx = make(nonce, &s.keypair);
        let id = tx.id();
        // Tracked and durable before it is sent: a restart still sends it again until the
        // ledger shows it.
        let height = s.replica.read().height();
        let (slot, displaced) = s
            .own_pending
            .lock()
            .expect("own pending lock")
            .track(id, tx.clone(), height);
        if let Some(old) = displaced {
            warn!(tx = %old, "too many own transactions waiting for the ledger: the oldest is no longer sent again");
        }
        let stored = s
            .store
            .put_meta(
                &crate::resubmit::slot_key(slot),
                &crate::resubmit::record(&tx, height),
            )
            .and_then(|()| s.store.flush());
        let result = match stored {
            Ok(()) => self.submit(tx).await,
            Err(e) => Err(SubmitError::Unavailable(format!(
                "could not store the transaction: {e}"
            ))),
        };
        if let Err(e) = &result {
            // Not taken: nothing to send again, and the nonce starts again from the ledger.
            debug!(tx = %id, error = %e, "own transaction not taken");
            if s.own_pending
                .lock()
                .expect("own pending lock")
                .forget(&id)
                .is_some()
            {
                free_own_slot(&*s.store, slot);
            }
            *s.last_nonce.lock().expect("nonce lock") = None;
        }
        result
    }

    async fn on_event(&self, ev: NetEvent) {
        match ev {
            NetEvent::Gossip {
                msg_id, source, msg, ..
            } => self.on_gossip(msg_id, source, msg).await,
            NetEvent::LedgerRequest {
                peer,
                request,
                responder,
            } => self.on_request(peer, request, responder),
            NetEvent::PeerConnected { peer, .. } => {
                debug!(%peer, "peer connected");
                if let Some(m) = self.shared.channels.get() {
                    m.peer_connected(peer);
                }
                if self.shared.role != Role::Sequencer {
                    self.spawn_catch_up(Some(peer));
                }
            }
            // Kept sending after its requests were refused: a load it put on us, already cut
            // off by the network layer, but no proof of bad intent (it may relay for others),
            // so it may come back. Bans are for bytes no honest peer sends.
            NetEvent::Misbehaviour {
                peer,
                what: Misbehaviour::IgnoredRefusals,
            } => warn!(%peer, "peer ignored our refusals; disconnected, not banned"),
            NetEvent::Misbehaviour { peer, what } => {
                warn!(%peer, ?what, "peer misbehaved; banning it");
                let _ = self.shared.net.ban(peer).await;
            }
            NetEvent::PeerDisconnected { peer } => {
                self.shared
                    .relay
                    .lock()
                    .expect("relay lock")
                    .per_peer
                    .remove(&peer);
            }
            NetEvent::PeerSubscribed { .. } => {}
        }
    }

    async fn on_gossip(&self, msg_id: MessageId, source: PeerId, msg: GossipMsg) {
        let verdict = match msg {
            GossipMsg::Block(block) => self.on_block(source, &block),
            GossipMsg::Checkpoint(cp) => self.on_checkpoint(cp).await,
            GossipMsg::Cosignature {
                block_hash,
                cosignature,
            } => self.on_cosignature(block_hash, cosignature),
            GossipMsg::SplitView(view) => self.on_split_view(*view).await,
            GossipMsg::Dispute(tx) => 'dispute: {
                if let Some(why) = self.provably_invalid_dispute(&tx) {
                    // No honest relay forwards this: proofs verify the same in every view.
                    break 'dispute Verdict::Reject(why);
                }
                let held = self.hold_update(&tx);
                if self.shared.role == Role::Sequencer {
                    let _ = self.submit(*tx).await;
                }
                if held {
                    Verdict::Accept
                } else {
                    // Stale or late: not evidence of anything, and not worth spreading.
                    Verdict::Ignore
                }
            }
        };
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Penalise(why) => {
                debug!(%source, why, "worthless gossip; charging the sender");
                let _ = self.shared.net.penalise_gossip(source).await;
                MessageAcceptance::Ignore
            }
            Verdict::Reject(why) => {
                warn!(%source, %why, "invalid gossip; cutting the sender off");
                MessageAcceptance::Reject
            }
        };
        let _ = self
            .shared
            .net
            .report_validation(msg_id, source, acceptance)
            .await;
        if matches!(acceptance, MessageAcceptance::Reject) {
            let _ = self.shared.net.ban(source).await;
        }
    }

    /// Verifies and applies a gossiped block.
    fn on_block(&self, source: PeerId, block: &Block) -> Verdict {
        match self.apply_block(block) {
            Ok(Applied::New) => {
                self.cosign_pending();
                Verdict::Accept
            }
            Ok(Applied::Known) | Ok(Applied::Equivocation(false)) => Verdict::Ignore,
            // Signed by the sequencer: the relay is not at fault, and the others need it.
            Ok(Applied::Equivocation(true)) => Verdict::Accept,
            Ok(Applied::Gap) => {
                // A block beyond the tip cannot be checked against the replica, but its
                // signature can: only one the sequencer signed is worth a catch-up, and one it
                // did not sign is no block an honest relay forwards.
                let s = &self.shared;
                if block.header.chain_id != s.chain_id
                    || block
                        .header
                        .verify(&s.genesis.sequencer, &block.signature)
                        .is_err()
                {
                    return Verdict::Reject(format!(
                        "block {} beyond the tip not signed by the sequencer",
                        block.header.height
                    ));
                }
                self.spawn_catch_up(Some(source));
                Verdict::Ignore
            }
            Err(e) => e,
        }
    }

    /// Applies one block to the replica and persists it, as the replica's one writer: the state
    /// is locked only while the block applies in memory, not while the store flushes.
    fn apply_block(&self, block: &Block) -> Result<Applied, Verdict> {
        let s = &self.shared;
        let writer = s.replica.begin_write();
        let mut ledger = writer.state();
        let h = block.header.height;
        if h <= ledger.height() {
            // A block we have: it must be the same one, or the sender is lying.
            return match s.store.block(h) {
                Ok(Some(ours)) if ours.header.hash() == block.header.hash() => Ok(Applied::Known),
                Ok(Some(ours))
                    if block
                        .header
                        .verify(&s.genesis.sequencer, &block.signature)
                        .is_ok() =>
                {
                    // Two different valid blocks at one height: the sequencer equivocated.
                    Ok(Applied::Equivocation(self.record_double_block(DoubleBlock {
                        first: ours.header,
                        first_signature: ours.signature,
                        second: block.header,
                        second_signature: block.signature,
                    })))
                }
                Ok(_) => Err(Verdict::Reject(format!(
                    "block {h} differs from ours and is not signed"
                ))),
                Err(e) => {
                    warn!(%e, "store read failed");
                    Err(Verdict::Ignore)
                }
            };
        }
        if h > ledger.height() + 1 {
            return Ok(Applied::Gap);
        }
        // Judged on the ledger before the block, recorded only once the block applies.
        let judged = self.judge_settlements(&ledger, block);
        // The auditor's block check (one verifier for the replica, the client and the CLI),
        // with the replica's clock: a block too far ahead is retryable, fetched again later.
        match paychan_audit::apply_block_at_classified(&mut ledger, block, now_ms()) {
            Ok(_) => {}
            Err(paychan_audit::Refused {
                class: ErrorClass::Violation,
                error: e,
            }) => {
                if block
                    .header
                    .verify(&s.genesis.sequencer, &block.signature)
                    .is_ok()
                {
                    // Signed by the sequencer (another branch, say): its fault, not the relay's.
                    warn!(height = h, %e, "the sequencer signed a block that does not extend this replica");
                    return Err(Verdict::Ignore);
                }
                return Err(Verdict::Reject(e.to_string()));
            }
            Err(paychan_audit::Refused { error: e, .. }) => {
                debug!(%e, "block not applied");
                return Err(Verdict::Ignore);
            }
        }
        self.record_censorship(judged);
        self.observe_block(&ledger, block);
        // Persist before acknowledging: a block we gossip on is one we keep across a crash. The
        // block goes into the store's log under the lock; the flush waits outside it.
        let put = s.store.put_block(block);
        drop(ledger);
        if let Err(e) = put.and_then(|_| s.store.flush()) {
            // The replica is ahead of its disk; carrying on would break the invariant.
            tracing::error!(%e, "cannot persist an applied block");
            std::process::exit(70);
        }
        debug!(height = h, "block applied");
        writer.applied(block);
        Ok(Applied::New)
    }

    /// Why a gossiped dispute is invalid whatever the ledger's time or the order of
    /// transactions (another chain, no proof, a proof for another channel or direction, a bad
    /// signature), if it is. A stale update, or one for a channel this replica does not know
    /// yet, is not: an honest relay may pass those on.
    fn provably_invalid_dispute(&self, tx: &Tx) -> Option<String> {
        let Tx::Update(update) = tx else { return None };
        let ledger = self.shared.replica.read();
        match ledger.check_update_proofs(update) {
            Err(e) if e.class() == ErrorClass::Violation => Some(format!("dispute update: {e}")),
            _ => None,
        }
    }

    /// Keeps a dispute update as evidence if it is valid now (its channel is closing, the
    /// window is open, its proofs verify and it raises what the ledger holds). Returns whether
    /// it was kept.
    pub fn hold_update(&self, tx: &Tx) -> bool {
        let Tx::Update(update) = tx else { return false };
        let s = &self.shared;
        let (now, window_end) = {
            let ledger = s.replica.read();
            if ledger.check_tx(tx, ledger.time_ms()).is_err() {
                return false;
            }
            let Some(end) = ledger.window_end_ms(&update.channel_id) else {
                return false;
            };
            (now_ms().max(ledger.time_ms()), end)
        };
        let mut held = s.held_updates.lock().expect("held lock");
        let full = held.len() >= crate::evidence::HELD_MAX;
        let changed = match held.get_mut(&update.channel_id) {
            Some(h) => h.merge(update.proof_ab, update.proof_ba, now),
            None if full => {
                warn!("too many dispute updates held: not holding another one");
                return false;
            }
            None => {
                held.insert(
                    update.channel_id,
                    HeldUpdate::new(update.proof_ab, update.proof_ba, now, window_end),
                );
                true
            }
        };
        // Persisted before it counts (and before the update is spread).
        !changed || self.persist_held(&held)
    }

    /// Writes the held updates to the store and flushes. Returns whether that worked.
    fn persist_held(&self, held: &HashMap<paychan_protocol::ChannelId, HeldUpdate>) -> bool {
        let list: Vec<_> = held.iter().map(|(k, v)| (*k, *v)).collect();
        let bytes = serde_json::to_vec(&list).expect("held updates serialise");
        let s = &self.shared;
        match s
            .store
            .put_meta(HELD_META_KEY, &bytes)
            .and_then(|_| s.store.flush())
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(%e, "cannot persist the held dispute updates");
                false
            }
        }
    }

    /// After applying `block`: a held update for which this block, made late enough after the
    /// hold and inside the window, shows the sequencer could have included it; holds long past
    /// their window are dropped.
    fn observe_block(&self, ledger: &LedgerState, block: &Block) {
        let s = &self.shared;
        let margin = crate::evidence::margin_ms(&s.genesis);
        let mut held = s.held_updates.lock().expect("held lock");
        let before = held.len();
        held.retain(|_, h| !h.expired(ledger.time_ms(), s.genesis.challenge_period_ms));
        let mut changed = held.len() != before;
        for h in held.values_mut() {
            changed |= h.observe_block(block.header.time_ms, margin);
        }
        if changed {
            self.persist_held(&held);
        }
    }

    /// Before applying `block`: the channels it settles that this node holds an update for,
    /// each with a censorship report if the settlement ignores an update the sequencer could
    /// have included.
    fn judge_settlements(
        &self,
        ledger: &LedgerState,
        block: &Block,
    ) -> Vec<(paychan_protocol::ChannelId, Option<CensorshipReport>)> {
        let s = &self.shared;
        let held_updates = s.held_updates.lock().expect("held lock");
        let mut out = Vec::new();
        for tx in &block.txs {
            let Tx::Settle(settle) = tx else { continue };
            let id = settle.channel_id;
            let Some(held) = held_updates.get(&id) else {
                continue;
            };
            let Some(entry) = ledger.channel(&id) else {
                out.push((id, None));
                continue;
            };
            let on_ledger = |d| entry.best(d).map_or(0, |p| p.proof.transferred);
            let report = crate::evidence::judge(
                held,
                id.to_string(),
                block.header.height,
                on_ledger(paychan_protocol::Direction::AToB),
                on_ledger(paychan_protocol::Direction::BToA),
            );
            if report.is_none() && !held.includable {
                info!(channel = %id, "a settlement ignores a held update that came too late to count");
            }
            out.push((id, report));
        }
        out
    }

    /// After `block` applied: drops the holds of the channels it settled and records the
    /// censorship reports, persisted (and flushed) before any checkpoint is refused for them.
    fn record_censorship(&self, judged: Vec<(paychan_protocol::ChannelId, Option<CensorshipReport>)>) {
        if judged.is_empty() {
            return;
        }
        let s = &self.shared;
        {
            let mut held = s.held_updates.lock().expect("held lock");
            for (id, _) in &judged {
                held.remove(id);
            }
            self.persist_held(&held);
        }
        let mut reports = s.censorship.lock().expect("censorship lock");
        let mut changed = false;
        for report in judged.into_iter().filter_map(|(_, r)| r) {
            warn!(
                ?report,
                "CENSORSHIP: a settlement ignores a dispute update the sequencer could have included"
            );
            if reports.len() < crate::evidence::REPORTS_MAX {
                reports.push(report);
                changed = true;
            }
        }
        if changed {
            let bytes = serde_json::to_vec(&*reports).expect("reports serialise");
            if let Err(e) = s
                .store
                .put_meta(CENSORSHIP_META_KEY, &bytes)
                .and_then(|_| s.store.flush())
            {
                tracing::error!(%e, "cannot persist a censorship report");
            }
        }
    }

    /// Keeps two blocks signed by the sequencer at one height as evidence (persisted and
    /// flushed); from then on this node cosigns nothing. Returns whether it was new.
    fn record_double_block(&self, d: DoubleBlock) -> bool {
        let s = &self.shared;
        let mut all = s.double_blocks.lock().expect("double block lock");
        let same = |x: &DoubleBlock| {
            let pair = (x.first.hash(), x.second.hash());
            pair == (d.first.hash(), d.second.hash()) || pair == (d.second.hash(), d.first.hash())
        };
        if all.iter().any(same) || all.len() >= DOUBLE_BLOCKS_MAX {
            return false;
        }
        let key = format!("{DOUBLE_BLOCK_META_PREFIX}{:04}", all.len());
        let bytes = serde_json::to_vec(&d).expect("evidence serialises");
        if let Err(e) = s.store.put_meta(&key, &bytes).and_then(|_| s.store.flush()) {
            tracing::error!(%e, "cannot persist double-block evidence");
        }
        tracing::error!(
            height = d.first.height,
            signer = %s.genesis.sequencer,
            "DOUBLE BLOCK: the sequencer signed two blocks at one height; cosigning stops"
        );
        all.push(d);
        s.double_block_counter.inc();
        true
    }

    /// The double blocks this node holds as evidence.
    pub fn double_blocks(&self) -> Vec<DoubleBlockReport> {
        let s = &self.shared;
        s.double_blocks
            .lock()
            .expect("double block lock")
            .iter()
            .map(|d| DoubleBlockReport {
                height: d.first.height,
                signer: s.genesis.sequencer.to_hex(),
                first_hash: d.first.hash().to_hex(),
                second_hash: d.second.hash().to_hex(),
                evidence: d.clone(),
            })
            .collect()
    }

    /// Whether transaction `id` waits in this node's mempool (the sequencer's: other nodes
    /// forward what they are given).
    pub fn is_pending(&self, id: &Hash32) -> bool {
        self.shared.mempool.lock().expect("mempool lock").contains(id)
    }

    /// Height of the newest witnessed checkpoint this node holds (among the last few).
    pub fn witnessed_height(&self) -> u64 {
        let s = &self.shared;
        let Ok(Some(latest)) = s.store.latest_checkpoint() else {
            return 0;
        };
        let top = latest.checkpoint.height;
        for h in (top.saturating_sub(WITNESS_LOOKBACK)..=top).rev() {
            if let Ok(Some(cp)) = s.store.checkpoint(h) {
                if paychan_ledger::verify_checkpoint(&s.genesis, &cp).is_ok_and(|st| st.witnessed) {
                    return h;
                }
            }
        }
        0
    }

    /// Settlements that ignored an update this node held.
    pub fn censorship_reports(&self) -> Vec<CensorshipReport> {
        self.shared.censorship.lock().expect("censorship lock").clone()
    }

    /// Sequencer: makes a block when transactions wait or the heartbeat is due.
    async fn maybe_produce_block(&self) -> Result<()> {
        let s = &self.shared;
        let now = now_ms().saturating_add(s.clock_ahead_ms);
        let writer = s.replica.begin_write();
        let (block, checkpoint) = {
            let mut ledger = writer.state();
            let mut mempool = s.mempool.lock().expect("mempool lock");
            let heartbeat_due = now.saturating_sub(ledger.time_ms()) >= s.genesis.heartbeat_interval_ms;
            if mempool.is_empty() && !heartbeat_due {
                return Ok(());
            }
            let max = s.genesis.max_txs_per_block as usize;
            let candidates = mempool.take_block_candidates(&ledger, max);
            let (block, dropped) = ledger
                .produce_block(candidates, now, &s.keypair)
                .map_err(|e| anyhow!("cannot produce a block: {e}"))?;
            for (tx, err) in dropped {
                if err.class() == ErrorClass::Retryable {
                    let _ = mempool.submit(tx, &ledger);
                } else {
                    debug!(%err, "transaction dropped from the block");
                }
            }
            mempool.prune(&ledger);
            // Persist, then gossip: a block others see is one we keep across a crash. The block
            // goes into the store's log under the locks; the flush waits outside them.
            s.store.put_block(&block)?;
            let cp = ledger.checkpoint();
            let signed = SignedCheckpoint {
                checkpoint: cp,
                signature: cp.sign_sequencer(&s.keypair),
                cosignatures: vec![],
            };
            s.store.put_checkpoint(&signed)?;
            (block, signed)
        };
        s.store.flush()?;
        writer.applied(&block);
        drop(writer);
        // An empty heartbeat block is routine: debug; a block with transactions is news.
        if block.txs.is_empty() {
            tracing::debug!(height = block.header.height, "heartbeat block produced");
        } else {
            info!(
                height = block.header.height,
                txs = block.txs.len(),
                "block produced"
            );
        }
        self.remember_checkpoint(&checkpoint.checkpoint);
        let height = block.header.height;
        self.publish(GossipMsg::Block(block)).await;
        if let Some(fake) = self.test_second_block(height) {
            warn!(
                height = fake.header.height,
                "TEST SWITCH: signing and gossiping a second block at a height already published"
            );
            self.publish(GossipMsg::Block(fake)).await;
        }
        let second = self.test_second_checkpoint(&checkpoint);
        self.publish(GossipMsg::Checkpoint(checkpoint)).await;
        if let Some(second) = second {
            warn!(
                height = second.checkpoint.height,
                "TEST SWITCH: signing and gossiping a second checkpoint for the same log size"
            );
            self.publish(GossipMsg::Checkpoint(second)).await;
        }
        Ok(())
    }

    /// TEST ONLY (`test_double_block`): once, from height 4 on, a second signed block at the
    /// height before `height` (one every node already holds): the same block a millisecond later.
    fn test_second_block(&self, height: u64) -> Option<Block> {
        let s = &self.shared;
        if height < 4 || !s.double_block.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut fake = s.store.block(height - 1).ok().flatten()?;
        fake.header.time_ms += 1;
        fake.signature = fake.header.sign(&s.keypair);
        Some(fake)
    }

    /// TEST ONLY (`test_equivocate`): once, from height 3 on, a second signed checkpoint of
    /// the same height and log size with another root.
    fn test_second_checkpoint(&self, real: &SignedCheckpoint) -> Option<SignedCheckpoint> {
        let s = &self.shared;
        if real.checkpoint.height < 3 || !s.equivocate.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut cp = real.checkpoint;
        cp.log_root.0[0] ^= 0x01;
        Some(SignedCheckpoint {
            checkpoint: cp,
            signature: cp.sign_sequencer(&s.keypair),
            cosignatures: vec![],
        })
    }

    async fn publish(&self, msg: GossipMsg) {
        let topic = Topic::of(&msg);
        if let Err(e) = self.shared.net.publish(topic, &msg).await {
            debug!(%e, ?topic, "publish failed");
        }
    }

    fn remember_checkpoint(&self, cp: &Checkpoint) {
        let mut m = self.shared.checkpoint_heights.lock().expect("checkpoint lock");
        if m.len() > 4096 {
            let keep = cp.height.saturating_sub(1024);
            m.retain(|_, h| *h >= keep);
        }
        m.insert(cp.block_hash, cp.height);
    }

    /// A checkpoint from the sequencer: check its signature, check it against the recent ones
    /// for a split view, store it, and cosign it (witnesses) once the replica has the block it
    /// names.
    async fn on_checkpoint(&self, cp: SignedCheckpoint) -> Verdict {
        let s = &self.shared;
        if cp.checkpoint.chain_id != s.chain_id {
            return Verdict::Reject("checkpoint of another chain".into());
        }
        if cp
            .checkpoint
            .verify_sequencer(&s.genesis.sequencer, &cp.signature)
            .is_err()
        {
            return Verdict::Reject("checkpoint not signed by the sequencer".into());
        }
        if let Some(view) = self.check_recent(&cp) {
            // Validly signed by the sequencer: the fault is the sequencer's, not the sender's.
            self.record_split_view(view.0, view.1).await;
            return Verdict::Ignore;
        }
        self.remember_checkpoint(&cp.checkpoint);
        let height = cp.checkpoint.height;
        let ours = s.replica.read().height();
        if height > ours {
            s.pending_checkpoints
                .lock()
                .expect("pending lock")
                .insert(height, cp);
            self.spawn_catch_up(None);
            return Verdict::Accept;
        }
        match self.check_and_cosign(cp) {
            Ok(Some(cosig)) => {
                let block_hash = cosig.0;
                self.publish(GossipMsg::Cosignature {
                    block_hash,
                    cosignature: cosig.1,
                })
                .await;
                Verdict::Accept
            }
            Ok(None) => Verdict::Accept,
            Err(CosignRefusal::SplitView(view, why)) => {
                self.record_split_view(*view, why).await;
                Verdict::Ignore
            }
            // Signed by the sequencer, so not the sender's fault: not spread, not punished.
            Err(CosignRefusal::Other(why)) => {
                debug!(%why, "checkpoint not cosigned");
                Verdict::Ignore
            }
        }
    }

    /// Checks a validly signed checkpoint against the recent ones and this witness's newest
    /// cosigned one, and keeps it among the recent ones if it contradicts none. Returns the
    /// split view it makes, if any.
    fn check_recent(&self, cp: &SignedCheckpoint) -> Option<(SplitView, String)> {
        let s = &self.shared;
        let ledger = s.replica.read();
        let mut recent = s.recent_checkpoints.lock().expect("recent lock");
        let cosigned = s.cosigned.lock().expect("cosigned lock").clone();
        for other in recent.values().chain(cosigned.iter()) {
            if let Inconsistency::Proven(why) = inconsistency(&other.checkpoint, &cp.checkpoint, &ledger) {
                let view = SplitView {
                    first: strip(other),
                    second: strip(cp),
                };
                return Some((view, why));
            }
        }
        recent.insert(cp.checkpoint.height, strip(cp));
        while recent.len() > RECENT_CHECKPOINTS {
            recent.pop_first();
        }
        None
    }

    /// Keeps a split view as evidence (persisted and flushed), reports it, gossips it, and from
    /// then on cosigns nothing. Returns whether it was new.
    async fn record_split_view(&self, view: SplitView, why: String) -> bool {
        let s = &self.shared;
        {
            let mut views = s.split_views.lock().expect("split view lock");
            let same = |v: &SplitView| {
                let pair = |x: &SplitView| (x.first.checkpoint, x.second.checkpoint);
                pair(v) == pair(&view) || pair(v) == (view.second.checkpoint, view.first.checkpoint)
            };
            if views.iter().any(|(v, _)| same(v)) {
                return false;
            }
            if views.len() >= SPLIT_VIEWS_MAX {
                return false;
            }
            let key = format!("{SPLIT_VIEW_META_PREFIX}{:04}", views.len());
            if let Err(e) = s
                .store
                .put_meta(&key, &view.to_bytes())
                .and_then(|_| s.store.flush())
            {
                tracing::error!(%e, "cannot persist split-view evidence");
            }
            tracing::error!(
                reason = %why,
                first_height = view.first.checkpoint.height,
                second_height = view.second.checkpoint.height,
                "SPLIT VIEW: the sequencer signed two inconsistent checkpoints; cosigning stops"
            );
            views.push((view.clone(), why));
            s.split_view_counter.inc();
        }
        self.publish(GossipMsg::SplitView(Box::new(view))).await;
        true
    }

    /// Split-view evidence from gossip: accepted only if both signatures verify and this node
    /// sees the inconsistency itself.
    async fn on_split_view(&self, view: SplitView) -> Verdict {
        let s = &self.shared;
        let verdict = {
            let ledger = s.replica.read();
            split_view_of(&s.genesis, &view, &ledger)
        };
        match verdict {
            Inconsistency::Proven(why) => {
                if self.record_split_view(view, why).await {
                    Verdict::Accept
                } else {
                    Verdict::Ignore
                }
            }
            // The replica is behind: it cannot judge, and the sender may well be right.
            Inconsistency::Unknown => Verdict::Ignore,
            Inconsistency::Consistent => Verdict::Reject("split-view evidence that does not verify".into()),
        }
    }

    /// A witness's newest cosigned checkpoint, if it cosigned any.
    pub fn cosigned(&self) -> Option<CheckpointReport> {
        let seq = self.shared.genesis.sequencer;
        self.shared
            .cosigned
            .lock()
            .expect("cosigned lock")
            .as_ref()
            .map(|c| CheckpointReport::of(c, &seq))
    }

    /// The split views this node holds as evidence.
    pub fn split_views(&self) -> Vec<SplitViewReport> {
        let seq = self.shared.genesis.sequencer;
        self.shared
            .split_views
            .lock()
            .expect("split view lock")
            .iter()
            .map(|(v, why)| SplitViewReport {
                reason: why.clone(),
                first: CheckpointReport::of(&v.first, &seq),
                second: CheckpointReport::of(&v.second, &seq),
            })
            .collect()
    }

    /// Cosigns checkpoints that were waiting for the replica to catch up.
    fn cosign_pending(&self) {
        let height = self.shared.replica.read().height();
        let ready: Vec<SignedCheckpoint> = {
            let mut p = self.shared.pending_checkpoints.lock().expect("pending lock");
            let later = p.split_off(&(height + 1));
            std::mem::replace(&mut *p, later).into_values().collect()
        };
        for cp in ready {
            match self.check_and_cosign(cp) {
                Ok(Some((block_hash, cosignature))) => {
                    let node = self.clone();
                    tokio::spawn(async move {
                        node.publish(GossipMsg::Cosignature {
                            block_hash,
                            cosignature,
                        })
                        .await;
                    });
                }
                Err(CosignRefusal::SplitView(view, why)) => {
                    let node = self.clone();
                    tokio::spawn(async move {
                        node.record_split_view(*view, why).await;
                    });
                }
                Ok(None) | Err(CosignRefusal::Other(_)) => {}
            }
        }
    }

    /// Stores a checkpoint consistent with the replica and, on a witness, cosigns it: only if
    /// no split view is on record, the ledger did not censor at or below its height, and it
    /// extends the newest checkpoint this witness cosigned (by a consistency proof from the
    /// replica). The newest cosigned checkpoint is persisted and flushed before the cosignature
    /// is returned for publishing.
    fn check_and_cosign(&self, cp: SignedCheckpoint) -> Result<Option<(Hash32, Cosignature)>, CosignRefusal> {
        let s = &self.shared;
        let c = cp.checkpoint;
        let block = match s.store.block(c.height) {
            Ok(Some(b)) => b,
            // Not applied yet (or height 0): nothing to compare with.
            Ok(None) => return Ok(None),
            Err(e) => return Err(CosignRefusal::Other(format!("store: {e}"))),
        };
        let h = &block.header;
        if h.hash() != c.block_hash || h.log_size != c.log_size || h.log_root != c.log_root {
            // Consistent with our verified replica or not at all: the sequencer signed a
            // checkpoint of a ledger that is not the one it gave us.
            warn!(
                height = c.height,
                "checkpoint disagrees with the replica: not cosigning"
            );
            let stored = s.store.checkpoint(c.height).ok().flatten();
            return Err(match stored {
                Some(ours) if ours.checkpoint != c => CosignRefusal::SplitView(
                    Box::new(SplitView {
                        first: strip(&ours),
                        second: strip(&cp),
                    }),
                    format!("two different checkpoints at height {}", c.height),
                ),
                _ => CosignRefusal::Other("checkpoint disagrees with the verified replica".into()),
            });
        }
        let mut stored = cp.clone();
        let refused = crate::evidence::refuse_from_height(&s.censorship.lock().expect("censorship lock"))
            .is_some_and(|h| c.height >= h);
        if refused {
            warn!(
                height = c.height,
                "refusing to cosign: the ledger settled a channel by censorship"
            );
        }
        let split = !s.split_views.lock().expect("split view lock").is_empty();
        if split {
            warn!(height = c.height, "refusing to cosign: a split view is on record");
        }
        let double = !s.double_blocks.lock().expect("double block lock").is_empty();
        if double {
            warn!(
                height = c.height,
                "refusing to cosign: the sequencer signed two blocks at one height"
            );
        }
        let split = split || double;
        let mine = if s.role == Role::Witness && !refused && !split {
            self.cosign_extending(&cp)?
        } else {
            None
        };
        if let Some(cosig) = mine {
            let _ = paychan_ledger::add_cosignature(&s.genesis, &mut stored, cosig);
        }
        if let Err(e) = s.store.put_checkpoint(&stored) {
            debug!(%e, "checkpoint not stored");
        }
        Ok(mine.map(|m| (c.block_hash, m)))
    }

    /// A witness's cosignature of `cp` if it extends the newest one it cosigned; persists `cp`
    /// as the newest cosigned one and flushes first. `None` for an older checkpoint.
    fn cosign_extending(&self, cp: &SignedCheckpoint) -> Result<Option<Cosignature>, CosignRefusal> {
        let s = &self.shared;
        let c = cp.checkpoint;
        // Lock order: the ledger, then the record (as in `check_recent`).
        let ledger = s.replica.read();
        let mut cosigned = s.cosigned.lock().expect("cosigned lock");
        if let Some(prev) = cosigned.as_ref() {
            let p = prev.checkpoint;
            if c.height < p.height {
                return Ok(None);
            }
            let path = if p.log_size == 0 {
                Ok(vec![])
            } else {
                ledger.consistency_proof(p.log_size, c.log_size)
            };
            let consistent = path.map_err(|e| e.to_string()).and_then(|path| {
                paychan_ledger::verify_checkpoint_consistency(&p, &c, &path).map_err(|e| e.to_string())
            });
            if let Err(why) = consistent {
                warn!(height = c.height, %why, "checkpoint does not extend the newest one cosigned");
                return Err(CosignRefusal::SplitView(
                    Box::new(SplitView {
                        first: strip(prev),
                        second: strip(cp),
                    }),
                    format!("no consistency proof from the cosigned checkpoint: {why}"),
                ));
            }
        }
        let record = strip(cp);
        if let Err(e) = s
            .store
            .put_meta(COSIGNED_META_KEY, &record.to_bytes())
            .and_then(|_| s.store.flush())
        {
            return Err(CosignRefusal::Other(format!(
                "cannot persist the cosigned checkpoint: {e}"
            )));
        }
        *cosigned = Some(record);
        let now_s = now_ms() / 1000;
        Ok(Some(c.cosign(&s.keypair, now_s)))
    }

    fn on_cosignature(&self, block_hash: Hash32, cosig: Cosignature) -> Verdict {
        let s = &self.shared;
        let Some(height) = s
            .checkpoint_heights
            .lock()
            .expect("checkpoint lock")
            .get(&block_hash)
            .copied()
        else {
            // Nothing to check it against, and no use to anyone here.
            return Verdict::Penalise("cosignature for a block with no checkpoint here");
        };
        let Ok(Some(mut cp)) = s.store.checkpoint(height) else {
            return Verdict::Penalise("cosignature for a checkpoint not stored here");
        };
        if cp.checkpoint.block_hash != block_hash {
            return Verdict::Penalise("cosignature for a block that is not the checkpoint's");
        }
        match paychan_ledger::add_cosignature(&s.genesis, &mut cp, cosig) {
            Ok(_) => {
                let _ = s.store.put_checkpoint(&cp);
                Verdict::Accept
            }
            Err(e) => Verdict::Reject(format!("bad cosignature: {e}")),
        }
    }

    fn on_request(&self, peer: PeerId, request: LedgerRequest, responder: LedgerResponder) {
        let node = self.clone();
        let span = tracing::debug_span!("ledger.request", %peer);
        tokio::spawn(
            async move {
                let response = node.answer_peer(peer, request).await;
                let _ = node.shared.net.respond(responder, response).await;
            }
            .instrument(span),
        );
    }

    /// Answers one `/paychan/ledger/1` request from `peer`: submissions go through the relay
    /// limits.
    async fn answer_peer(&self, peer: PeerId, request: LedgerRequest) -> LedgerResponse {
        match request {
            LedgerRequest::Submit(tx) => match self.submit_from_peer(peer, *tx).await {
                Ok((tx_id, status)) => LedgerResponse::Submitted { tx_id, status },
                Err(SubmitError::Rejected(m) | SubmitError::Unavailable(m)) => LedgerResponse::Error {
                    text: paychan_protocol::wire::error_text(m),
                },
                Err(e @ SubmitError::TooManyPending { .. }) => LedgerResponse::Error {
                    text: paychan_protocol::wire::error_text(e.to_string()),
                },
            },
            other => self.answer(other).await,
        }
    }

    /// Answers one `/paychan/ledger/1` request.
    pub async fn answer(&self, request: LedgerRequest) -> LedgerResponse {
        let s = &self.shared;
        let err = |text: String| LedgerResponse::Error {
            text: paychan_protocol::wire::error_text(text),
        };
        match request {
            LedgerRequest::Submit(tx) => match self.submit(*tx).await {
                Ok((tx_id, status)) => LedgerResponse::Submitted { tx_id, status },
                // The bare reason: the asking node adds its own word for the kind of failure.
                Err(SubmitError::Rejected(m) | SubmitError::Unavailable(m)) => err(m),
                Err(e @ SubmitError::TooManyPending { .. }) => err(e.to_string()),
            },
            LedgerRequest::GetBlocks { from, limit } => {
                let limit = (limit as usize).min(BLOCKS_PER_RESPONSE_MAX);
                match s.store.blocks(from.max(1), limit) {
                    Ok(blocks) => {
                        // Stay within the response limit whatever the blocks weigh.
                        let mut total = 16;
                        let mut out = Vec::new();
                        for b in blocks {
                            total += b.to_bytes().len();
                            if total > LEDGER_RESPONSE_BYTES_MAX && !out.is_empty() {
                                break;
                            }
                            out.push(b);
                        }
                        LedgerResponse::Blocks(out)
                    }
                    Err(e) => err(format!("store: {e}")),
                }
            }
            LedgerRequest::GetCheckpoint => match s.store.latest_checkpoint() {
                Ok(cp) => LedgerResponse::Checkpoint(cp),
                Err(e) => err(format!("store: {e}")),
            },
            LedgerRequest::GetInclusion { tx_id, size } => {
                let l = s.replica.read();
                match l.inclusion_proof(&tx_id, size) {
                    Ok(p) => LedgerResponse::Inclusion {
                        index: p.index,
                        size: p.size,
                        path: p.path,
                    },
                    Err(e) => err(e.to_string()),
                }
            }
            LedgerRequest::GetConsistency { first, second } => {
                let l = s.replica.read();
                match l.consistency_proof(first, second) {
                    Ok(path) => LedgerResponse::Consistency { path },
                    Err(e) => err(e.to_string()),
                }
            }
            LedgerRequest::GetGenesis => LedgerResponse::Genesis(s.genesis.clone()),
        }
    }

    /// Starts a catch-up task unless one is running: fetches missing blocks from `peer` (or
    /// the sequencer, or any connected peer) until none is missing.
    fn spawn_catch_up(&self, peer: Option<PeerId>) {
        if self.shared.catching_up.swap(true, Ordering::AcqRel) {
            return;
        }
        let node = self.clone();
        tokio::spawn(
            async move {
                if let Err(e) = node.catch_up(peer).await {
                    debug!(%e, "catch-up stopped");
                }
                node.shared.catching_up.store(false, Ordering::Release);
            }
            .instrument(tracing::debug_span!("ledger.catch_up")),
        );
    }

    /// Fetches the blocks after the tip in rounds: each round asks up to [`CATCH_UP_PEERS`]
    /// peers at once (`hint` first, then the sequencer, then the others) and applies the first
    /// answer that extends the replica; a peer that times out, errs or serves nothing new is
    /// dropped from the candidates. A silent peer costs [`CATCH_UP_REQUEST_TIMEOUT_MS`] at most
    /// once, and nothing while another peer answers.
    async fn catch_up(&self, hint: Option<PeerId>) -> Result<()> {
        let s = &self.shared;
        let connected = s.net.connected_peers().await?;
        let mut candidates: Vec<PeerId> = Vec::new();
        for p in hint
            .into_iter()
            .chain(s.sequencer_peer)
            .chain(connected.iter().copied())
        {
            if connected.contains(&p) && !candidates.contains(&p) {
                candidates.push(p);
            }
        }
        while !candidates.is_empty() {
            let from = s.replica.read().height() + 1;
            let mut asks = tokio::task::JoinSet::new();
            for &peer in candidates.iter().take(CATCH_UP_PEERS) {
                let net = s.net.clone();
                asks.spawn(async move {
                    let request = LedgerRequest::GetBlocks {
                        from,
                        limit: BLOCKS_PER_RESPONSE_MAX as u32,
                    };
                    let timeout = Duration::from_millis(CATCH_UP_REQUEST_TIMEOUT_MS);
                    (
                        peer,
                        tokio::time::timeout(timeout, net.request(peer, request)).await,
                    )
                });
            }
            let mut useless = Vec::new();
            let mut more = false;
            let mut progressed = false;
            while let Some(joined) = asks.join_next().await {
                let Ok((peer, resp)) = joined else { continue };
                let blocks = match resp {
                    Ok(Ok(LedgerResponse::Blocks(b))) if !b.is_empty() => b,
                    _ => {
                        useless.push(peer);
                        continue;
                    }
                };
                let before = s.replica.read().height();
                for b in &blocks {
                    match self.apply_block(b) {
                        Ok(_) => {}
                        Err(Verdict::Reject(why)) => {
                            warn!(%peer, %why, "peer served an invalid block; banning it");
                            let _ = s.net.ban(peer).await;
                            useless.push(peer);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let after = s.replica.read().height();
                if after > before {
                    progressed = true;
                    more = blocks.len() == BLOCKS_PER_RESPONSE_MAX;
                    // The others' answers (if they come) are for blocks we now have.
                    break;
                }
                useless.push(peer);
            }
            // Dropping the set abandons the slower requests.
            drop(asks);
            self.cosign_pending();
            candidates.retain(|p| !useless.contains(p));
            if progressed && !more {
                break;
            }
        }
        Ok(())
    }
}

/// Peers asked at once in one catch-up round.
const CATCH_UP_PEERS: usize = 3;
/// Time a peer gets to answer a catch-up request before the round goes on without it.
const CATCH_UP_REQUEST_TIMEOUT_MS: u64 = 3_000;

/// The channel manager's view of the ledger: this node's verified replica.
#[derive(Debug)]
struct NodeLedger(NodeHandle);

impl paychan_client::LedgerAccess for NodeLedger {
    fn chain_id(&self) -> Hash32 {
        self.0.shared.chain_id
    }

    fn time_ms(&self) -> u64 {
        self.0.with_ledger(|l| l.time_ms())
    }

    fn channel(&self, id: &paychan_protocol::ChannelId) -> Option<paychan_client::LedgerChannel> {
        self.0.with_ledger(|l| paychan_client::LedgerChannel::of(l, id))
    }

    fn balance(&self, key: &PublicKey) -> u64 {
        self.0.with_ledger(|l| l.balance(key))
    }

    fn height(&self) -> u64 {
        self.0.with_ledger(|l| l.height())
    }

    fn witnessed_height(&self) -> u64 {
        self.0.witnessed_height()
    }

    fn fee(&self, tx: &Tx) -> u64 {
        paychan_ledger::tx::tx_fee(&self.0.shared.genesis, tx)
    }

    fn credit_line(
        &self,
        id: &paychan_protocol::ChannelId,
        dir: paychan_protocol::Direction,
    ) -> Option<paychan_ledger::CreditLine> {
        self.0.with_ledger(|l| l.credit_line(id, dir).copied())
    }

    fn opens_naming(&self, key: &PublicKey, after: u64) -> paychan_client::manager::OpensScan {
        let tip = self.0.with_ledger(|l| l.height());
        let to = tip.min(after.saturating_add(paychan_client::manager::OPENS_SCAN_BLOCKS_MAX));
        let mut scan = paychan_client::manager::OpensScan {
            scanned_to: after,
            opens: Vec::new(),
        };
        if to <= after {
            return scan;
        }
        let count = usize::try_from(to - after).unwrap_or(usize::MAX);
        let blocks = match self.0.store().blocks(after + 1, count) {
            Ok(b) => b,
            Err(e) => {
                warn!(%e, "reading blocks for opens naming this key; trying again later");
                return scan;
            }
        };
        for block in blocks {
            if block.header.height != scan.scanned_to + 1 {
                break;
            }
            scan.scanned_to = block.header.height;
            scan.opens.extend(block.txs.into_iter().filter_map(|tx| match tx {
                Tx::Open(o) if o.open.party_a == *key || o.open.party_b == *key => Some(o),
                _ => None,
            }));
        }
        scan
    }

    fn censored(&self, id: &paychan_protocol::ChannelId) -> bool {
        let id = id.to_string();
        self.0.censorship_reports().iter().any(|r| r.channel_id == id)
    }

    fn submit(&self, tx: Tx) -> paychan_client::ledger::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if tx.is_dispute() {
                // Disputes travel to every node too, so that a sequencer that drops them is seen.
                self.0.hold_update(&tx);
                self.0.publish(GossipMsg::Dispute(Box::new(tx.clone()))).await;
            }
            self.0.submit(tx).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// Two different headers signed by the sequencer at one height, as kept and reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DoubleBlock {
    /// The header this node holds.
    pub first: paychan_protocol::BlockHeader,
    /// The sequencer's signature of `first`.
    pub first_signature: paychan_protocol::Signature,
    /// The other header at the same height.
    pub second: paychan_protocol::BlockHeader,
    /// The sequencer's signature of `second`.
    pub second_signature: paychan_protocol::Signature,
}

impl DoubleBlock {
    /// Both headers are of this chain, at one height, different, and signed by the sequencer.
    fn verifies(&self, genesis: &Genesis) -> bool {
        let chain_id = genesis.chain_id();
        self.first.height == self.second.height
            && self.first != self.second
            && self.first.chain_id == chain_id
            && self.second.chain_id == chain_id
            && self
                .first
                .verify(&genesis.sequencer, &self.first_signature)
                .is_ok()
            && self
                .second
                .verify(&genesis.sequencer, &self.second_signature)
                .is_ok()
    }
}

/// A double block, as `GET /v1/alarms` reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DoubleBlockReport {
    /// The height.
    pub height: u64,
    /// The signer's key (hex): the key that equivocated.
    pub signer: String,
    /// Hash of the block this node holds (hex).
    pub first_hash: String,
    /// Hash of the other one (hex).
    pub second_hash: String,
    /// Both signed headers.
    #[schema(value_type = Object)]
    pub evidence: DoubleBlock,
}

/// A signed checkpoint without its cosignatures (what evidence and records keep).
fn strip(c: &SignedCheckpoint) -> SignedCheckpoint {
    SignedCheckpoint {
        checkpoint: c.checkpoint,
        signature: c.signature,
        cosignatures: vec![],
    }
}

/// Why a witness did not cosign.
enum CosignRefusal {
    /// The checkpoint and another signed one make a split view.
    SplitView(Box<SplitView>, String),
    /// Anything else.
    Other(String),
}

/// A split view, as `GET /v1/alarms` reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SplitViewReport {
    /// What makes the two checkpoints inconsistent.
    pub reason: String,
    /// The checkpoint seen first.
    pub first: CheckpointReport,
    /// The one that contradicts it.
    pub second: CheckpointReport,
}

/// One checkpoint of a split view.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CheckpointReport {
    /// Height.
    pub height: u64,
    /// Log size.
    pub log_size: u64,
    /// Log root (hex).
    pub log_root: String,
    /// Block hash (hex).
    pub block_hash: String,
    /// The signed note (C2SP signed-note text).
    pub note: String,
}

impl CheckpointReport {
    fn of(c: &SignedCheckpoint, sequencer: &PublicKey) -> CheckpointReport {
        CheckpointReport {
            height: c.checkpoint.height,
            log_size: c.checkpoint.log_size,
            log_root: c.checkpoint.log_root.to_hex(),
            block_hash: c.checkpoint.block_hash.to_hex(),
            note: c.to_note(sequencer),
        }
    }
}

/// What became of a block.
enum Applied {
    New,
    Known,
    Gap,
    /// Another valid block at a known height: new evidence (spread it) or not.
    Equivocation(bool),
}

/// The node's judgement of a gossip message.
enum Verdict {
    Accept,
    Ignore,
    /// Ignored, and worthless enough that the forwarder is charged a little (its score decays
    /// back): honest relays rarely send it, a flooder sends nothing else.
    Penalise(&'static str),
    Reject(String),
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction is invalid or refused.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The sequencer could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// This node's account already has as many transactions waiting for a block as the
    /// ledger admits ahead of its next nonce; nothing was signed. Retry after the next block.
    #[error("too many pending transactions from this node's account (the ledger admits {window} ahead of its next nonce); retry after the next block")]
    TooManyPending {
        /// The nonce window of the ledger's mempool.
        window: u64,
    },
}

#[cfg(test)]
mod tests {
    use paychan_ledger::testkit::{TestChain, TestNet};

    use super::*;

    /// Spam that takes the relay's whole budget for transfers leaves closes and disputes their
    /// own (the flood test's close through a busy witness was refused as "relay busy").
    #[test]
    fn a_relay_drained_by_transfers_still_forwards_closes_and_disputes() {
        let net = TestNet::new(2, 1_000_000);
        let (a, b) = (net.users[0].clone(), net.users[1].clone());
        let (open, id) = net.open(&a, &b, (100, 100), 1, u64::MAX);
        let transfer = net.transfer(&a, b.public(), 1, 0);
        let closes = [
            net.coop_close(&a, &b, id, (100, 100)),
            net.unilateral_close(&a, id, None, None),
            net.update(
                id,
                Some(net.proof(&a, id, paychan_protocol::Direction::AToB, 1, 1)),
                None,
            ),
            net.settle(id),
        ];
        assert!(!relay_reserved(&transfer) && !relay_reserved(&open));
        assert!(closes.iter().all(relay_reserved));
        let mut relay = Relay::new();
        let mut relayed = 0;
        while relay.total_allows(&transfer) {
            relayed += 1;
            assert!(relayed <= RELAY_SUBMIT_BURST + RELAY_SUBMITS_PER_S, "no bound");
        }
        assert!(!relay.total_allows(&open), "opens share the transfers' budget");
        for tx in &closes {
            assert!(relay.total_allows(tx), "{tx:?} refused behind spam");
        }
    }

    /// A chain of four blocks: transfers in blocks 1 and 3, blocks 2 and 4 empty.
    fn chain() -> TestChain {
        let net = TestNet::new(2, 1_000);
        let (a, b) = (net.users[0].clone(), net.users[1].public());
        let mut c = TestChain::new(net);
        let t0 = c.net.transfer(&a, b, 1, 0);
        c.next_block(vec![t0]);
        c.next_block(Vec::<Tx>::new());
        let t1 = c.net.transfer(&a, b, 1, 1);
        c.next_block(vec![t1]);
        c.next_block(Vec::<Tx>::new());
        c
    }

    fn checkpoint_at(c: &TestChain, height: u64) -> Checkpoint {
        let h = &c.blocks[height as usize - 1].header;
        Checkpoint {
            chain_id: c.net.chain_id,
            log_size: h.log_size,
            log_root: h.log_root,
            height,
            block_hash: h.hash(),
        }
    }

    #[test]
    fn split_view_rules() {
        let c = chain();
        let l = &c.state;
        let (one, two, four) = (checkpoint_at(&c, 1), checkpoint_at(&c, 2), checkpoint_at(&c, 4));
        // Honest checkpoints are consistent, whatever the order.
        assert_eq!(inconsistency(&one, &one, l), Inconsistency::Consistent);
        assert_eq!(inconsistency(&one, &four, l), Inconsistency::Consistent);
        assert_eq!(inconsistency(&four, &two, l), Inconsistency::Consistent);
        // Same height, another block hash.
        let mut fork = two;
        fork.block_hash.0[0] ^= 1;
        assert!(matches!(inconsistency(&two, &fork, l), Inconsistency::Proven(_)));
        // Same log size (an empty block keeps it), another root.
        let mut other_root = two;
        other_root.log_root.0[0] ^= 1;
        other_root.height = 7;
        assert!(matches!(
            inconsistency(&one, &other_root, l),
            Inconsistency::Proven(_)
        ));
        // A log that shrinks.
        let mut shrunk = four;
        shrunk.height = 9;
        shrunk.log_size = 0;
        shrunk.log_root = paychan_protocol::merkle::empty_root();
        assert!(matches!(
            inconsistency(&two, &shrunk, l),
            Inconsistency::Proven(_)
        ));
        // No consistency proof from the honest block 1 to a forged later root.
        let mut forged = four;
        forged.log_root.0[0] ^= 1;
        assert!(matches!(
            inconsistency(&one, &forged, l),
            Inconsistency::Proven(_)
        ));
        // Beyond the replica: this node cannot tell.
        let mut ahead = four;
        ahead.height = 10;
        ahead.log_size += 5;
        assert_eq!(inconsistency(&one, &ahead, l), Inconsistency::Unknown);
    }

    #[test]
    fn gossiped_evidence_needs_two_sequencer_signatures() {
        let c = chain();
        let l = &c.state;
        let g = &c.net.genesis;
        let two = checkpoint_at(&c, 2);
        let mut fork = two;
        fork.log_root.0[0] ^= 1;
        let view = SplitView {
            first: c.net.signed_checkpoint(two, &[]),
            second: c.net.signed_checkpoint(fork, &[]),
        };
        assert!(matches!(split_view_of(g, &view, l), Inconsistency::Proven(_)));
        let mut forged = view.clone();
        forged.second.signature.0[0] ^= 1;
        assert_eq!(split_view_of(g, &forged, l), Inconsistency::Consistent);
        let honest = SplitView {
            first: c.net.signed_checkpoint(checkpoint_at(&c, 1), &[]),
            second: c.net.signed_checkpoint(checkpoint_at(&c, 3), &[]),
        };
        assert_eq!(split_view_of(g, &honest, l), Inconsistency::Consistent);
    }
}

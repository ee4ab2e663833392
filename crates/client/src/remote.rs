//! A client's view of the ledger through nodes it does not trust.
//!
//! [`RemoteLedger`] is pinned to one chain ([`ChainPin`]: a chain id or a whole genesis) and
//! refuses a node that serves another; the sequencer's key comes from the pinned genesis, and
//! a `--sequencer` peer whose id is not that key is refused. It reads blocks and checkpoints
//! from several [`LedgerSource`]s at once (the counterparty, the sequencer, extra peers, public
//! endpoints) and replays every block with the ledger rules (sequencer signature, every
//! transaction, every root), so a source can withhold blocks but never make the client accept
//! a forged one, and one source that withholds does not blind the client while another serves.
//!
//! Each source's newest witnessed checkpoint is checked (signatures, threshold of genesis
//! witnesses, log root equal to the one the verified blocks give at its size) and aged: the
//! ledger time of the block it names against the client's clock. A source whose witnessed
//! checkpoint is older than the bound, that cannot be reached, or that serves something that
//! does not verify raises an alarm ([`RemoteLedger::sources`]) and is not relied on; when no
//! source is fresh, [`RemoteLedger::fresh`] fails and the client program refuses to open or
//! pay while it keeps watching every source. Inclusion proofs of the client's own
//! transactions are computed from the verified log and checked against a witnessed
//! checkpoint's root ([`RemoteLedger::verify_included`]): no source can withhold them.
//! Transactions go to the sequencer directly as well as through the node.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paychan_ledger::LedgerState;
use paychan_net::libp2p::multiaddr::Protocol;
use paychan_net::{peer_id_from_public_key, Multiaddr, NetHandle, PeerId};
use paychan_protocol::merkle::verify_inclusion;
use paychan_protocol::wire::{LedgerRequest, LedgerResponse, BLOCKS_PER_RESPONSE_MAX};
use paychan_protocol::{Block, ChannelId, Genesis, Hash32, PublicKey, SignedCheckpoint, Tx};

use crate::ledger::{BoxFuture, LedgerAccess, LedgerChannel};

/// Blocks whose (hash, time) the view remembers, to age checkpoints and to spot a source that
/// serves a different block at a height already verified.
pub const RECENT_BLOCKS_MAX: usize = 4_096;
/// Bound on one request to one source.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer the other sources are waited for once one has answered.
pub const STRAGGLER_WAIT: Duration = Duration::from_secs(2);
/// Longest wait before a failed source is asked again (the wait doubles from 250 ms).
pub const SOURCE_BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Sources one view reads from (the counterparty and the sequencer included).
pub const SOURCES_MAX: usize = 16;
/// Smallest default freshness bound: a witnessed checkpoint older than this is an alarm.
pub const STALE_AFTER_MS_MIN: u64 = 30_000;

/// Why the remote ledger could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The node could not be reached or answered something unexpected.
    #[error("node: {0}")]
    Node(String),
    /// The node served something that does not verify: it is lying or broken.
    #[error("verification failed: {0}")]
    Invalid(String),
    /// Nothing witnessed covers the transaction yet; ask again later.
    #[error("not yet witnessed: {0}")]
    NotYet(String),
    /// A source serves another chain than the pinned one.
    #[error("{source_name} serves chain {served}, but the client is pinned to chain {pinned}: refusing it (nothing was signed for it)")]
    WrongChain {
        /// The source.
        source_name: String,
        /// Chain id of the genesis it serves.
        served: Hash32,
        /// The pinned chain id.
        pinned: Hash32,
    },
    /// The peer given as the sequencer is not the sequencer of the pinned genesis.
    #[error("the sequencer peer {given} is not the sequencer of the pinned genesis (its key gives peer {genesis}): refusing it")]
    WrongSequencer {
        /// The peer the address named or answered as.
        given: String,
        /// The peer id of the genesis sequencer key.
        genesis: String,
    },
    /// No source shows a witnessed checkpoint younger than the freshness bound: the ledger may
    /// be hidden from the client.
    #[error("stale ledger view: {0}")]
    Stale(String),
}

/// The chain a client accepts.
#[derive(Debug, Clone)]
pub enum ChainPin {
    /// The chain id (the genesis hash).
    ChainId(Hash32),
    /// The whole genesis.
    Genesis(Box<Genesis>),
}

impl ChainPin {
    /// The pinned chain id.
    pub fn chain_id(&self) -> Hash32 {
        match self {
            ChainPin::ChainId(c) => *c,
            ChainPin::Genesis(g) => g.chain_id(),
        }
    }
}

/// Where a client reads blocks and checkpoints from. Everything it serves is verified.
pub trait LedgerSource: fmt::Debug + Send + Sync + 'static {
    /// Where it is (for messages and reports).
    fn describe(&self) -> String;
    /// The genesis it serves.
    fn genesis(&self) -> BoxFuture<'_, Result<Genesis, RemoteError>>;
    /// Blocks from `from`, at most `limit`, in height order (fewer, or none, is allowed).
    fn blocks(&self, from: u64, limit: u32) -> BoxFuture<'_, Result<Vec<Block>, RemoteError>>;
    /// Its newest checkpoint, if any.
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<SignedCheckpoint>, RemoteError>>;
}

/// A node over `/paychan/ledger/1`, dialled again at its address after a failure.
#[derive(Debug)]
pub struct PeerSource {
    net: NetHandle,
    peer: PeerId,
    addr: Option<Multiaddr>,
    label: String,
}

impl PeerSource {
    /// A source for `peer`, reachable at `addr` when given.
    pub fn new(net: NetHandle, peer: PeerId, addr: Option<Multiaddr>, label: &str) -> PeerSource {
        let label = match &addr {
            Some(a) => format!("{label} {a}"),
            None => format!("{label} {peer}"),
        };
        PeerSource {
            net,
            peer,
            addr,
            label,
        }
    }

    async fn request(&self, req: LedgerRequest) -> Result<LedgerResponse, RemoteError> {
        let first = self.net.request(self.peer, req.clone()).await;
        let resp = match (first, &self.addr) {
            (Ok(r), _) => r,
            (Err(_), Some(addr)) => {
                // The connection may have dropped: dial again once, then ask again.
                self.net
                    .dial(addr.clone())
                    .await
                    .map_err(|e| RemoteError::Node(format!("dial: {e}")))?;
                self.net
                    .request(self.peer, req)
                    .await
                    .map_err(|e| RemoteError::Node(e.to_string()))?
            }
            (Err(e), None) => return Err(RemoteError::Node(e.to_string())),
        };
        match resp {
            LedgerResponse::Error { text } => Err(RemoteError::Node(format!("refused: {text}"))),
            r => Ok(r),
        }
    }
}

impl LedgerSource for PeerSource {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn genesis(&self) -> BoxFuture<'_, Result<Genesis, RemoteError>> {
        Box::pin(async move {
            match self.request(LedgerRequest::GetGenesis).await? {
                LedgerResponse::Genesis(g) => Ok(g),
                other => Err(unexpected("genesis", &other)),
            }
        })
    }

    fn blocks(&self, from: u64, limit: u32) -> BoxFuture<'_, Result<Vec<Block>, RemoteError>> {
        Box::pin(async move {
            match self.request(LedgerRequest::GetBlocks { from, limit }).await? {
                LedgerResponse::Blocks(b) => Ok(b),
                other => Err(unexpected("blocks", &other)),
            }
        })
    }

    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<SignedCheckpoint>, RemoteError>> {
        Box::pin(async move {
            match self.request(LedgerRequest::GetCheckpoint).await? {
                LedgerResponse::Checkpoint(c) => Ok(c),
                other => Err(unexpected("checkpoint", &other)),
            }
        })
    }
}

fn unexpected(what: &str, resp: &LedgerResponse) -> RemoteError {
    let text = format!("{resp:?}");
    RemoteError::Node(format!(
        "{what}: unexpected answer {}",
        &text[..text.len().min(80)]
    ))
}

/// The peer id an address names with `/p2p/`, if it does.
pub fn addr_peer_id(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// What a client knows of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStatus {
    /// Not asked yet.
    Unknown,
    /// Its newest witnessed checkpoint is within the freshness bound.
    Fresh,
    /// It serves no witnessed checkpoint the verified view can check.
    NoCheckpoint,
    /// Its newest witnessed checkpoint names a block this old (ms, ledger time against the
    /// client's clock): an alarm. It is still asked, but not relied on.
    Stale {
        /// Age of the checkpoint's block.
        age_ms: u64,
    },
    /// The last request failed; it is asked again after a backoff.
    Unreachable(String),
    /// It served something that does not verify (a forged or conflicting block, a checkpoint
    /// that disagrees with the verified blocks): never asked again.
    Invalid(String),
    /// It serves another chain: never asked again.
    WrongChain(Hash32),
}

impl SourceStatus {
    /// Whether this status is an alarm.
    pub fn is_alarm(&self) -> bool {
        !matches!(self, SourceStatus::Fresh | SourceStatus::Unknown)
    }

    /// Whether the source is given up for good.
    fn is_final(&self) -> bool {
        matches!(self, SourceStatus::Invalid(_) | SourceStatus::WrongChain(_))
    }
}

impl fmt::Display for SourceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceStatus::Unknown => write!(f, "not asked yet"),
            SourceStatus::Fresh => write!(f, "fresh"),
            SourceStatus::NoCheckpoint => write!(f, "no witnessed checkpoint"),
            SourceStatus::Stale { age_ms } => {
                write!(f, "stale: newest witnessed checkpoint {} s old", age_ms / 1000)
            }
            SourceStatus::Unreachable(e) => write!(f, "unreachable: {e}"),
            SourceStatus::Invalid(e) => write!(f, "invalid: {e}"),
            SourceStatus::WrongChain(c) => write!(f, "serves another chain ({c})"),
        }
    }
}

/// One source as [`RemoteLedger::sources`] reports it.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// Where it is.
    pub source: String,
    /// What the client knows of it.
    pub status: SourceStatus,
    /// Height of its newest witnessed checkpoint the view verified (0: none).
    pub witnessed_height: u64,
}

/// How old a witnessed checkpoint may be, from the genesis heartbeat interval: four heartbeats
/// (a live sequencer makes a block at least every heartbeat), at least [`STALE_AFTER_MS_MIN`].
pub fn default_stale_after_ms(heartbeat_interval_ms: u64) -> u64 {
    heartbeat_interval_ms.saturating_mul(4).max(STALE_AFTER_MS_MIN)
}

/// The status of a source whose newest verified witnessed checkpoint names a block of ledger
/// time `checkpoint_time_ms` (`None`: it showed none), at wall time `now_ms`.
pub fn freshness(checkpoint_time_ms: Option<u64>, now_ms: u64, stale_after_ms: u64) -> SourceStatus {
    match checkpoint_time_ms {
        None => SourceStatus::NoCheckpoint,
        Some(t) => {
            let age_ms = now_ms.saturating_sub(t);
            if age_ms > stale_after_ms {
                SourceStatus::Stale { age_ms }
            } else {
                SourceStatus::Fresh
            }
        }
    }
}

/// A witnessed checkpoint the view checked against its verified blocks.
#[derive(Debug, Clone, Copy)]
struct Witnessed {
    height: u64,
    log_size: u64,
    log_root: Hash32,
    /// Ledger time of the block it names.
    time_ms: u64,
}

#[derive(Debug)]
struct Health {
    status: SourceStatus,
    genesis_ok: bool,
    failures: u32,
    retry_at: Option<Instant>,
    witnessed: Option<Witnessed>,
}

impl Health {
    fn new() -> Health {
        Health {
            status: SourceStatus::Unknown,
            genesis_ok: false,
            failures: 0,
            retry_at: None,
            witnessed: None,
        }
    }
}

struct Slot {
    src: Box<dyn LedgerSource>,
    health: Mutex<Health>,
}

/// How a [`RemoteLedger`] is set up.
#[derive(Debug)]
pub struct RemoteConfig {
    /// The chain it accepts.
    pub chain: ChainPin,
    /// The client's key: only its channels' transactions are indexed.
    pub me: PublicKey,
    /// The sequencer's address; its peer id must be the pinned genesis's sequencer.
    pub sequencer_addr: Option<Multiaddr>,
    /// More peers to read blocks and checkpoints from.
    pub ledger_peers: Vec<Multiaddr>,
    /// More sources (e.g. public read endpoints over HTTP).
    pub extra_sources: Vec<Box<dyn LedgerSource>>,
    /// Freshness bound (ms); `None`: [`default_stale_after_ms`].
    pub stale_after_ms: Option<u64>,
}

impl RemoteConfig {
    /// Pinned to `chain`, reading from the counterparty and the sequencer only.
    pub fn new(chain: ChainPin, me: PublicKey) -> RemoteConfig {
        RemoteConfig {
            chain,
            me,
            sequencer_addr: None,
            ledger_peers: Vec::new(),
            extra_sources: Vec::new(),
            stale_after_ms: None,
        }
    }
}

/// The ledger as a client sees it: a verified replica fed by several sources.
pub struct RemoteLedger {
    net: NetHandle,
    node: PeerId,
    sequencer: Option<PeerId>,
    me: PublicKey,
    genesis: Genesis,
    sources: Vec<Slot>,
    stale_after_ms: u64,
    state: RwLock<LedgerState>,
    /// (height, block hash, ledger time) of the newest verified blocks.
    recent: RwLock<VecDeque<(u64, Hash32, u64)>>,
    /// Height of the newest witnessed checkpoint consistent with the verified blocks.
    witnessed: AtomicU64,
    /// Ledger time of the block that checkpoint names.
    witnessed_time_ms: AtomicU64,
    /// Ids of the verified transactions of the client's channels, in ledger order.
    channel_txs: RwLock<HashMap<ChannelId, Vec<Hash32>>>,
    /// One sync round at a time.
    sync_round: tokio::sync::Mutex<()>,
}

impl fmt::Debug for RemoteLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteLedger")
            .field("chain_id", &self.genesis.chain_id())
            .field("node", &self.node)
            .field(
                "sources",
                &self.sources.iter().map(|s| s.src.describe()).collect::<Vec<_>>(),
            )
            .field("height", &self.height())
            .finish()
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn bounded<T>(f: impl std::future::Future<Output = Result<T, RemoteError>>) -> Result<T, RemoteError> {
    tokio::time::timeout(SOURCE_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(RemoteError::Node("timed out".into())))
}

/// Asks every source in `live` at once, each under [`SOURCE_TIMEOUT`]; once one has answered,
/// the others get [`STRAGGLER_WAIT`] more and then count as failed (and back off), so a source
/// that hangs does not hold up the client's view of the others.
async fn ask_all<T, F>(live: Vec<usize>, ask: impl Fn(usize) -> F) -> Vec<(usize, Result<T, RemoteError>)>
where
    F: std::future::Future<Output = Result<T, RemoteError>>,
{
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut pending: FuturesUnordered<_> = live
        .iter()
        .map(|&i| {
            let f = ask(i);
            async move { (i, bounded(f).await) }
        })
        .collect();
    let mut out = Vec::with_capacity(live.len());
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            None => pending.next().await,
            Some(d) => match tokio::time::timeout_at(d, pending.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let Some((i, answer)) = next else { break };
        if answer.is_ok() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + STRAGGLER_WAIT);
        }
        out.push((i, answer));
    }
    for i in live {
        if !out.iter().any(|(j, _)| *j == i) {
            out.push((
                i,
                Err(RemoteError::Node(
                    "no answer while the other sources answered".into(),
                )),
            ));
        }
    }
    out
}

impl RemoteLedger {
    /// Dials `node_addr` (with `/p2p/<id>`), refuses it unless the genesis it serves is the
    /// pinned one, takes the sequencer from that genesis (refusing a `sequencer_addr` of
    /// another peer), dials the extra peers, refuses an extra source that serves another chain,
    /// and syncs every block. Nothing is signed before this returns.
    pub async fn connect(
        net: NetHandle,
        node_addr: Multiaddr,
        config: RemoteConfig,
    ) -> Result<RemoteLedger, RemoteError> {
        let pinned = config.chain.chain_id();
        let node_label = format!("the node {node_addr}");
        let node = bounded(async {
            net.dial(node_addr.clone())
                .await
                .map_err(|e| RemoteError::Node(format!("dial {node_addr}: {e}")))
        })
        .await?;
        let node_src = PeerSource::new(net.clone(), node, Some(node_addr), "counterparty");
        let served = bounded(node_src.genesis()).await?;
        if served.chain_id() != pinned {
            return Err(RemoteError::WrongChain {
                source_name: node_label,
                served: served.chain_id(),
                pinned,
            });
        }
        let genesis = match config.chain {
            ChainPin::Genesis(g) => *g,
            ChainPin::ChainId(_) => served,
        };
        let seq_peer = peer_id_from_public_key(&genesis.sequencer)
            .ok_or_else(|| RemoteError::Invalid("the genesis sequencer key is no ed25519 peer id".into()))?;
        let mut sources: Vec<Box<dyn LedgerSource>> = vec![Box::new(node_src)];
        let mut peers = vec![node];
        if let Some(addr) = config.sequencer_addr {
            if let Some(named) = addr_peer_id(&addr).filter(|p| *p != seq_peer) {
                return Err(RemoteError::WrongSequencer {
                    given: named.to_string(),
                    genesis: seq_peer.to_string(),
                });
            }
            let given = bounded(async {
                net.dial(addr.clone())
                    .await
                    .map_err(|e| RemoteError::Node(format!("dial the sequencer {addr}: {e}")))
            })
            .await?;
            if given != seq_peer {
                return Err(RemoteError::WrongSequencer {
                    given: given.to_string(),
                    genesis: seq_peer.to_string(),
                });
            }
            if seq_peer != node {
                sources.push(Box::new(PeerSource::new(
                    net.clone(),
                    seq_peer,
                    Some(addr),
                    "sequencer",
                )));
                peers.push(seq_peer);
            }
        } else if seq_peer != node {
            sources.push(Box::new(PeerSource::new(
                net.clone(),
                seq_peer,
                None,
                "sequencer",
            )));
            peers.push(seq_peer);
        }
        for addr in config.ledger_peers {
            let peer = match addr_peer_id(&addr) {
                Some(p) => p,
                None => {
                    return Err(RemoteError::Node(format!(
                        "ledger peer {addr}: the address needs /p2p/<peer id>"
                    )))
                }
            };
            if peers.contains(&peer) {
                continue;
            }
            peers.push(peer);
            // An extra peer that cannot be reached now is asked again later.
            if let Err(e) = bounded(async {
                net.dial(addr.clone())
                    .await
                    .map_err(|e| RemoteError::Node(e.to_string()))
            })
            .await
            {
                tracing::warn!(%addr, %e, "ledger peer not reachable yet");
            }
            sources.push(Box::new(PeerSource::new(
                net.clone(),
                peer,
                Some(addr),
                "ledger peer",
            )));
        }
        sources.extend(config.extra_sources);
        if sources.len() > SOURCES_MAX {
            return Err(RemoteError::Node(format!(
                "{} ledger sources given; at most {SOURCES_MAX}",
                sources.len()
            )));
        }
        let state = LedgerState::from_genesis(&genesis).map_err(|e| RemoteError::Invalid(e.to_string()))?;
        let stale_after_ms = config
            .stale_after_ms
            .unwrap_or_else(|| default_stale_after_ms(genesis.heartbeat_interval_ms));
        let me = RemoteLedger {
            sequencer: Some(seq_peer),
            net,
            node,
            me: config.me,
            sources: sources
                .into_iter()
                .map(|src| Slot {
                    src,
                    health: Mutex::new(Health::new()),
                })
                .collect(),
            stale_after_ms,
            genesis,
            state: RwLock::new(state),
            recent: RwLock::new(VecDeque::new()),
            channel_txs: RwLock::new(Default::default()),
            witnessed: AtomicU64::new(0),
            witnessed_time_ms: AtomicU64::new(0),
            sync_round: tokio::sync::Mutex::new(()),
        };
        // The counterparty's genesis was checked above; every other source's is checked now
        // (one that answers with another chain is refused at once) or on first contact.
        me.health(0).genesis_ok = true;
        for i in 1..me.sources.len() {
            me.check_genesis(i).await;
            if let SourceStatus::WrongChain(served) = me.health(i).status {
                return Err(RemoteError::WrongChain {
                    source_name: me.sources[i].src.describe(),
                    served,
                    pinned,
                });
            }
        }
        me.sync().await?;
        Ok(me)
    }

    fn health(&self, i: usize) -> std::sync::MutexGuard<'_, Health> {
        self.sources[i].health.lock().expect("source health lock")
    }

    /// Fetches source `i`'s genesis unless already checked; records the outcome.
    async fn check_genesis(&self, i: usize) {
        if self.health(i).genesis_ok {
            return;
        }
        match bounded(self.sources[i].src.genesis()).await {
            Ok(g) if g.chain_id() == self.genesis.chain_id() => self.health(i).genesis_ok = true,
            Ok(g) => self.set_status(i, SourceStatus::WrongChain(g.chain_id())),
            Err(e) => self.failed(i, e),
        }
    }

    /// Records a status, logging a change into an alarm.
    fn set_status(&self, i: usize, status: SourceStatus) {
        let mut h = self.health(i);
        if h.status.is_final() {
            return;
        }
        if h.status != status
            && status.is_alarm()
            && std::mem::discriminant(&h.status) != std::mem::discriminant(&status)
        {
            tracing::warn!(source = %self.sources[i].src.describe(), %status, "ledger source alarm");
        }
        h.status = status;
    }

    fn failed(&self, i: usize, e: RemoteError) {
        {
            let mut h = self.health(i);
            h.failures = h.failures.saturating_add(1);
            let wait = Duration::from_millis(250)
                .saturating_mul(1u32 << h.failures.min(8).saturating_sub(1))
                .min(SOURCE_BACKOFF_MAX);
            h.retry_at = Some(Instant::now() + wait);
        }
        self.set_status(i, SourceStatus::Unreachable(e.to_string()));
    }

    fn answered(&self, i: usize) {
        let mut h = self.health(i);
        h.failures = 0;
        h.retry_at = None;
    }

    /// Sources to ask now: not given up, not waiting out a backoff.
    fn live(&self) -> Vec<usize> {
        let now = Instant::now();
        (0..self.sources.len())
            .filter(|&i| {
                let h = self.health(i);
                !h.status.is_final() && h.retry_at.is_none_or(|t| now >= t)
            })
            .collect()
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The node this view follows (the counterparty).
    pub fn node(&self) -> PeerId {
        self.node
    }

    /// Height of the verified view.
    pub fn height(&self) -> u64 {
        self.state.read().expect("ledger lock").height()
    }

    /// Read access to the verified view.
    pub fn with_state<T>(&self, f: impl FnOnce(&LedgerState) -> T) -> T {
        f(&self.state.read().expect("ledger lock"))
    }

    /// The freshness bound (ms).
    pub fn stale_after_ms(&self) -> u64 {
        self.stale_after_ms
    }

    /// Whether the counterparty (not any other source) serves a block at `height`: it has
    /// applied the ledger that far.
    pub async fn counterparty_serves(&self, height: u64) -> bool {
        match bounded(self.sources[0].src.blocks(height, 1)).await {
            Ok(b) => b.first().is_some_and(|b| b.header.height == height),
            Err(_) => false,
        }
    }

    /// Every source and what the client knows of it.
    pub fn sources(&self) -> Vec<SourceReport> {
        (0..self.sources.len())
            .map(|i| {
                let h = self.health(i);
                SourceReport {
                    source: self.sources[i].src.describe(),
                    status: h.status.clone(),
                    witnessed_height: h.witnessed.map_or(0, |w| w.height),
                }
            })
            .collect()
    }

    /// `Ok(age_ms)` when the newest witnessed checkpoint any source showed names a block
    /// younger than the freshness bound; otherwise [`RemoteError::Stale`].
    pub fn fresh(&self) -> Result<u64, RemoteError> {
        let t = self.witnessed_time_ms.load(Ordering::Acquire);
        if self.witnessed.load(Ordering::Acquire) == 0 {
            return Err(RemoteError::Stale(
                "no source has shown a witnessed checkpoint of the verified blocks".into(),
            ));
        }
        let age_ms = wall_ms().saturating_sub(t);
        if age_ms > self.stale_after_ms {
            return Err(RemoteError::Stale(format!(
                "the newest witnessed checkpoint from any source is {} s old (bound {} s)",
                age_ms / 1000,
                self.stale_after_ms / 1000
            )));
        }
        Ok(age_ms)
    }

    /// Fetches and verifies blocks from every live source at once until none has a newer one,
    /// then checks each source's newest checkpoint. Returns how many blocks were applied; an
    /// error only when no source answered.
    pub async fn sync(&self) -> Result<u64, RemoteError> {
        let _round = self.sync_round.lock().await;
        let mut applied = 0;
        let mut answered = false;
        let mut last_error = None;
        loop {
            let from = self.height() + 1;
            let live = self.live();
            let pages = ask_all(live, |i| async move {
                self.check_genesis(i).await;
                if !self.health(i).genesis_ok {
                    return Ok(None);
                }
                let limit = BLOCKS_PER_RESPONSE_MAX as u32;
                self.sources[i].src.blocks(from, limit).await.map(Some)
            })
            .await;
            let mut progressed = false;
            for (i, page) in pages {
                match page {
                    Ok(None) => {}
                    Err(e) => {
                        last_error = Some(e.clone());
                        self.failed(i, e);
                    }
                    Ok(Some(blocks)) => {
                        answered = true;
                        self.answered(i);
                        match self.apply(&blocks) {
                            Ok(n) => {
                                applied += n;
                                progressed |= n > 0;
                            }
                            Err(e) => self.set_status(i, SourceStatus::Invalid(e)),
                        }
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        self.refresh_checkpoints().await;
        if !answered && applied == 0 {
            return Err(last_error.unwrap_or_else(|| RemoteError::Node("no ledger source to ask".into())));
        }
        Ok(applied)
    }

    /// Applies the blocks above the view's height; a block at a verified height must be the
    /// verified one. Returns how many were applied, or why the page does not verify.
    fn apply(&self, blocks: &[Block]) -> Result<u64, String> {
        let mut applied = 0;
        let mut state = self.state.write().expect("ledger lock");
        let mut recent = self.recent.write().expect("recent lock");
        for b in blocks {
            let h = b.header.height;
            if h <= state.height() {
                let known = recent.iter().find(|(rh, _, _)| *rh == h);
                if known.is_some_and(|(_, hash, _)| *hash != b.header.hash()) {
                    return Err(format!("a block at height {h} other than the verified one"));
                }
                continue;
            }
            // The auditor's block check: the ledger rules, signatures in one batch.
            paychan_audit::apply_block(&mut state, b, paychan_ledger::Signatures::Batch)
                .map_err(|e| format!("block {h}: {e}"))?;
            applied += 1;
            recent.push_back((h, b.header.hash(), b.header.time_ms));
            while recent.len() > RECENT_BLOCKS_MAX {
                recent.pop_front();
            }
            let mut index = self.channel_txs.write().expect("index lock");
            for tx in &b.txs {
                let Some(id) = tx.channel_id() else { continue };
                if state.channel(&id).is_some_and(|c| c.is_party(&self.me)) {
                    index.entry(id).or_default().push(tx.id());
                }
            }
        }
        Ok(applied)
    }

    /// Ledger time of the verified block at `height`, if the view remembers it (a block older
    /// than the remembered ones is at least as old as the oldest of them).
    fn block_time(&self, height: u64, hash: &Hash32) -> Result<u64, String> {
        let recent = self.recent.read().expect("recent lock");
        match recent.iter().find(|(h, _, _)| *h == height) {
            Some((_, known, t)) if known == hash => Ok(*t),
            Some(_) => Err(format!(
                "checkpoint names a block at height {height} other than the verified one"
            )),
            None if height == 0 => Ok(self.genesis.genesis_time_ms),
            None => Ok(recent
                .front()
                .map_or(self.genesis.genesis_time_ms, |(_, _, t)| *t)),
        }
    }

    /// Asks every live source for its newest checkpoint and checks it against the verified
    /// blocks; updates each source's status and the view's witnessed height.
    async fn refresh_checkpoints(&self) {
        let live: Vec<usize> = self
            .live()
            .into_iter()
            .filter(|&i| self.health(i).genesis_ok)
            .collect();
        let answers = ask_all(live, |i| self.sources[i].src.checkpoint()).await;
        for (i, answer) in answers {
            match answer {
                Err(e) => self.failed(i, e),
                Ok(cp) => {
                    self.answered(i);
                    if let Some(cp) = cp {
                        if let Err(e) = self.check_checkpoint(i, &cp) {
                            self.set_status(i, SourceStatus::Invalid(e));
                            continue;
                        }
                    }
                    let w = self.health(i).witnessed;
                    let status = freshness(w.map(|w| w.time_ms), wall_ms(), self.stale_after_ms);
                    self.set_status(i, status);
                }
            }
        }
    }

    /// Checks a source's checkpoint; a witnessed one consistent with the verified blocks is
    /// remembered for that source and for the view. One that is not witnessed, or ahead of the
    /// view, changes nothing.
    fn check_checkpoint(&self, i: usize, cp: &SignedCheckpoint) -> Result<(), String> {
        let status =
            paychan_ledger::verify_checkpoint(&self.genesis, cp).map_err(|e| format!("checkpoint: {e}"))?;
        if !status.witnessed {
            return Ok(());
        }
        let c = cp.checkpoint;
        let ours = self.with_state(|s| {
            (c.log_size <= s.log_size() && c.height <= s.height())
                .then(|| s.log().root_at(c.log_size).ok())
                .flatten()
        });
        let Some(root) = ours else {
            return Ok(()); // ahead of the view: checked once the blocks are in
        };
        if root != c.log_root {
            return Err("a witnessed checkpoint that disagrees with the verified blocks (split view)".into());
        }
        let time_ms = self.block_time(c.height, &c.block_hash)?;
        let w = Witnessed {
            height: c.height,
            log_size: c.log_size,
            log_root: c.log_root,
            time_ms,
        };
        {
            let mut h = self.health(i);
            if h.witnessed.is_none_or(|old| old.height < w.height) {
                h.witnessed = Some(w);
            }
        }
        // Heights and their block times both only grow.
        self.witnessed.fetch_max(w.height, Ordering::AcqRel);
        self.witnessed_time_ms.fetch_max(time_ms, Ordering::AcqRel);
        Ok(())
    }

    /// Checks, without taking any source's word, that transaction `tx_id` is in the ledger:
    /// it is in a verified block, and the inclusion proof computed from the verified log
    /// verifies against the log root of a witnessed checkpoint (threshold of genesis witnesses)
    /// that covers it. Returns that checkpoint's height.
    pub async fn verify_included(&self, tx_id: Hash32) -> Result<u64, RemoteError> {
        // A sync with no source answering leaves what was already verified usable.
        let _ = self.sync().await;
        let index = self
            .with_state(|s| s.tx_log_index(&tx_id))
            .ok_or_else(|| RemoteError::NotYet("transaction not in a verified block yet".into()))?;
        let best = (0..self.sources.len())
            .filter_map(|i| self.health(i).witnessed)
            .filter(|w| w.log_size > index)
            .max_by_key(|w| w.height)
            .ok_or_else(|| RemoteError::NotYet("no witnessed checkpoint covers it yet".into()))?;
        let (leaf, proof) = self.with_state(|s| {
            (
                s.log().leaf(index).copied(),
                s.inclusion_proof(&tx_id, best.log_size),
            )
        });
        let leaf = leaf.ok_or_else(|| RemoteError::Invalid("leaf missing from the verified log".into()))?;
        let proof = proof.map_err(|e| RemoteError::Invalid(format!("inclusion proof: {e}")))?;
        verify_inclusion(&leaf, proof.index, best.log_size, &proof.path, &best.log_root)
            .map_err(|e| RemoteError::Invalid(format!("inclusion proof: {e}")))?;
        Ok(best.height)
    }

    /// Ids of the verified transactions that concern channel `id` (open, deposits, closes,
    /// updates, settle), in ledger order, for the client's own channels.
    pub fn channel_txs(&self, id: &ChannelId) -> Vec<Hash32> {
        self.channel_txs
            .read()
            .expect("index lock")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    async fn submit_to(&self, peer: PeerId, tx: Tx) -> Result<(), String> {
        match self.net.request(peer, LedgerRequest::Submit(Box::new(tx))).await {
            Ok(LedgerResponse::Submitted { .. }) => Ok(()),
            Ok(LedgerResponse::Error { text }) => Err(text),
            Ok(other) => Err(format!("unexpected answer: {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl LedgerAccess for RemoteLedger {
    fn chain_id(&self) -> Hash32 {
        self.genesis.chain_id()
    }

    fn time_ms(&self) -> u64 {
        self.with_state(|s| s.time_ms())
    }

    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
        self.with_state(|s| LedgerChannel::of(s, id))
    }

    fn balance(&self, key: &PublicKey) -> u64 {
        self.with_state(|s| s.balance(key))
    }

    fn height(&self) -> u64 {
        RemoteLedger::height(self)
    }

    fn witnessed_height(&self) -> u64 {
        self.witnessed.load(Ordering::Acquire)
    }

    fn fee(&self, tx: &Tx) -> u64 {
        paychan_ledger::tx::tx_fee(&self.genesis, tx)
    }

    fn credit_line(
        &self,
        id: &ChannelId,
        dir: paychan_protocol::Direction,
    ) -> Option<paychan_ledger::CreditLine> {
        self.with_state(|s| s.credit_line(id, dir).copied())
    }

    /// Submits through the node and, independently, to the sequencer: a node that drops the
    /// client's transaction does not stop it.
    fn submit(&self, tx: Tx) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let via_node = self.submit_to(self.node, tx.clone()).await;
            let direct = match self.sequencer {
                Some(seq) if seq != self.node => self.submit_to(seq, tx).await,
                _ => via_node.clone(),
            };
            via_node.or(direct)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_older_than_the_bound_is_an_alarm() {
        let bound = 30_000;
        assert_eq!(freshness(Some(100_000), 100_000, bound), SourceStatus::Fresh);
        assert_eq!(freshness(Some(100_000), 130_000, bound), SourceStatus::Fresh);
        assert_eq!(
            freshness(Some(100_000), 130_001, bound),
            SourceStatus::Stale { age_ms: 30_001 }
        );
        // A checkpoint ahead of the client's clock is not old.
        assert_eq!(freshness(Some(200_000), 100_000, bound), SourceStatus::Fresh);
        assert_eq!(freshness(None, 100_000, bound), SourceStatus::NoCheckpoint);
        assert!(SourceStatus::Stale { age_ms: 30_001 }.is_alarm());
        assert!(SourceStatus::NoCheckpoint.is_alarm());
        assert!(!SourceStatus::Fresh.is_alarm());
    }

    #[test]
    fn the_default_bound_is_four_heartbeats_and_at_least_the_minimum() {
        assert_eq!(default_stale_after_ms(2_000), STALE_AFTER_MS_MIN);
        assert_eq!(default_stale_after_ms(60_000), 240_000);
    }
}

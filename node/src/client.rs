//! `paychan client`: a program with its own key that dials a node over the p2p protocol without
//! running a node: it opens a channel, pays, closes, and checks its own transactions against
//! witnessed checkpoints with inclusion proofs instead of taking the node's word.
//!
//! It trusts no genesis and no single peer: the chain is pinned (`--chain-id` or `--genesis`)
//! and checked against what the node serves before anything is signed; the sequencer is the
//! one of the pinned genesis; blocks and checkpoints come from the counterparty, the sequencer,
//! `--ledger-peer`s and `--ledger-url`s at once. A witnessed checkpoint older than the bound is
//! an alarm: the source is reported and not relied on, and while no source is fresh the client
//! opens nothing and pays nothing (it keeps watching every source, and closes are still made
//! and answered).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use paychan_client::ledger::BoxFuture;
use paychan_client::{
    ChainPin, ChannelManager, LedgerChannel, LedgerSource, ManagerConfig, RemoteConfig, RemoteError,
    RemoteLedger,
};
use paychan_net::{MessageAcceptance, Multiaddr, Net, NetConfig, NetEvent, NetHandle};
use paychan_protocol::wire::LedgerResponse;
use paychan_protocol::{Block, ChannelId, Genesis, Hash32, Keypair, Payment, SignedCheckpoint, Wire};
use paychan_store::MemStore;
use serde::Serialize;

use crate::ledger_source::{HttpSource, Source};

/// Payments made between two freshness checks.
const PAY_BATCH: u64 = 1_000;
/// How long an open waits for the counterparty to have applied the ledger past the open.
const OPEN_SEEN_WAIT: Duration = Duration::from_secs(10);

/// `paychan client`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("pin").required(true).args(["chain_id", "genesis"])))]
pub struct ClientCli {
    /// File holding the client's ed25519 seed (hex), e.g. a testnet's clients/client-0.key.
    #[arg(long)]
    pub key: PathBuf,
    /// The node to dial (the counterparty): `/ip4/127.0.0.1/tcp/PORT/p2p/PEERID`.
    #[arg(long)]
    pub node: String,
    /// The chain the client accepts: its chain id (hex of the genesis hash). A node that serves
    /// another genesis is refused before anything is signed.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// The chain the client accepts, as its genesis file (a node's genesis.bin).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// The sequencer's address, to submit transactions to it directly and read the ledger from
    /// it; its peer id must be the pinned genesis's sequencer key.
    #[arg(long)]
    pub sequencer: Option<String>,
    /// Another peer to read blocks and checkpoints from (repeatable).
    #[arg(long = "ledger-peer")]
    pub ledger_peers: Vec<String>,
    /// A node's public read endpoint to read blocks and checkpoints from, `http://HOST:PORT`
    /// (repeatable).
    #[arg(long = "ledger-url")]
    pub ledger_urls: Vec<String>,
    /// A witnessed checkpoint older than this is an alarm (default: four genesis heartbeats,
    /// at least 30 s).
    #[arg(long)]
    pub stale_after_secs: Option<u64>,
    /// What the client locks.
    #[arg(long, default_value_t = 100_000)]
    pub deposit: u64,
    /// What the node locks.
    #[arg(long, default_value_t = 0)]
    pub their_deposit: u64,
    /// Amount of each payment.
    #[arg(long, default_value_t = 1)]
    pub amount: u64,
    /// Number of payments.
    #[arg(long, default_value_t = 1_000)]
    pub count: u64,
    /// Close unilaterally instead of cooperatively.
    #[arg(long)]
    pub force: bool,
    /// Do not close: keep the channel and watch it for up to this many seconds, answering the
    /// counterparty's close (the client's own watchtower), until it is paid out and witnessed.
    #[arg(long, conflicts_with = "force")]
    pub hold_secs: Option<u64>,
}

/// Where a client reads the ledger and what it accepts.
#[derive(Debug)]
pub struct ClientOptions {
    /// The chain.
    pub pin: ChainPin,
    /// The sequencer's address.
    pub sequencer: Option<Multiaddr>,
    /// More peers to read from.
    pub ledger_peers: Vec<Multiaddr>,
    /// Public read endpoints to read from.
    pub ledger_urls: Vec<String>,
    /// The freshness bound (default from the genesis).
    pub stale_after: Option<Duration>,
}

impl ClientOptions {
    /// Pinned to `pin`, reading from the counterparty and the sequencer.
    pub fn new(pin: ChainPin, sequencer: Option<Multiaddr>) -> ClientOptions {
        ClientOptions {
            pin,
            sequencer,
            ledger_peers: Vec::new(),
            ledger_urls: Vec::new(),
            stale_after: None,
        }
    }
}

/// A node's public read endpoints as a client's ledger source (blocking HTTP, off the runtime).
#[derive(Debug)]
struct PublicSource {
    url: String,
    inner: Arc<Mutex<HttpSource>>,
}

impl PublicSource {
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut HttpSource) -> Result<T> + Send + 'static,
    ) -> Result<T, RemoteError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut inner.lock().expect("http source lock")))
            .await
            .map_err(|e| RemoteError::Node(format!("http task: {e}")))?
            .map_err(|e| RemoteError::Node(format!("{e:#}")))
    }
}

impl LedgerSource for PublicSource {
    fn describe(&self) -> String {
        format!("public endpoint {}", self.url)
    }
    fn genesis(&self) -> BoxFuture<'_, Result<Genesis, RemoteError>> {
        Box::pin(self.call(|s| s.genesis()))
    }
    fn blocks(&self, from: u64, limit: u32) -> BoxFuture<'_, Result<Vec<Block>, RemoteError>> {
        Box::pin(self.call(move |s| s.blocks(from, limit as usize)))
    }
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<SignedCheckpoint>, RemoteError>> {
        Box::pin(self.call(|s| s.latest_checkpoint()))
    }
}

/// A running client: its network, its verified ledger view and its channel manager.
#[derive(Debug)]
pub struct Client {
    /// The client's key.
    pub keypair: Keypair,
    /// The verified view of the ledger.
    pub ledger: Arc<RemoteLedger>,
    /// The channel manager.
    pub channels: ChannelManager,
    /// Its tasks (the network, its event drain, the ledger sync): stopped when the client is
    /// dropped, so that nothing of it stays connected under its key.
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Client {
    /// Starts the client's network, dials the node, refuses it unless it serves the pinned
    /// chain, checks the sequencer against the pinned genesis, and syncs the ledger view from
    /// every source. Nothing is signed before this returns.
    pub async fn start(keypair: Keypair, node: Multiaddr, opts: ClientOptions) -> Result<Client> {
        let (net, events, net_task) =
            Net::new(keypair.seed(), NetConfig::new("/ip4/127.0.0.1/tcp/0".parse()?)).await?;
        let drain = drain_events(net.clone(), events, "a client keeps no ledger");
        let mut config = RemoteConfig::new(opts.pin, keypair.public());
        config.sequencer_addr = opts.sequencer;
        config.ledger_peers = opts.ledger_peers;
        config.stale_after_ms = opts.stale_after.map(|d| d.as_millis() as u64);
        for url in opts.ledger_urls {
            config.extra_sources.push(Box::new(PublicSource {
                inner: Arc::new(Mutex::new(HttpSource::public(&url))),
                url,
            }));
        }
        let ledger = Arc::new(RemoteLedger::connect(net.clone(), node, config).await?);
        // A client run keeps its channel state in memory: it closes what it opens before it exits.
        let channels = ChannelManager::start(
            keypair.clone(),
            net.clone(),
            Arc::new(MemStore::new()),
            ledger.clone(),
            ManagerConfig::default(),
        )?;
        let (l, m) = (ledger.clone(), channels.clone());
        let sync = tokio::spawn(async move {
            loop {
                if let Ok(n) = l.sync().await {
                    if n > 0 {
                        m.ledger_changed();
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .abort_handle();
        Ok(Client {
            keypair,
            ledger,
            channels,
            tasks: vec![sync, drain, net_task.abort_handle()],
        })
    }

    /// Waits (bounded) until some source shows a fresh witnessed checkpoint; the error says why
    /// the client will not sign.
    pub async fn wait_fresh(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ledger.fresh() {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    bail!("{e}; refusing to open or pay while the ledger may be hidden from this client")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Opens a channel with the node it follows, once the ledger view is fresh.
    pub async fn open(&self, deposit: u64, their_deposit: u64) -> Result<ChannelId> {
        self.wait_fresh(Duration::from_millis(self.ledger.stale_after_ms()))
            .await?;
        let node_key = paychan_net::public_key_from_peer_id(&self.ledger.node())
            .ok_or_else(|| anyhow!("the node's peer id carries no ed25519 key"))?;
        let id = self.channels.open(node_key, deposit, their_deposit).await?;
        // The view may have the open's block from the sequencer before the counterparty has
        // applied it, and a payee refuses proofs of a channel it still holds pending. Wait
        // (bounded) until the counterparty serves the block after the one we saw the open in.
        let next = self.ledger.height() + 1;
        let deadline = Instant::now() + OPEN_SEEN_WAIT;
        while !self.ledger.counterparty_serves(next).await {
            if Instant::now() >= deadline {
                tracing::warn!(height = next, "the counterparty lags the other ledger sources");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(id)
    }

    /// Pays `count` times `amount`, in batches, each only while the ledger view is fresh.
    pub async fn pay(&self, id: ChannelId, amount: u64, count: u64, reference: Hash32) -> Result<()> {
        let mut left = count;
        while left > 0 {
            self.wait_fresh(Duration::ZERO).await?;
            let n = left.min(PAY_BATCH);
            self.channels.pay(id, amount, n, reference).await?;
            left -= n;
        }
        Ok(())
    }

    /// Waits (bounded) until channel `id` is paid out on the ledger and a witnessed checkpoint
    /// covers the payout, answering closes meanwhile (the manager does, on every new block).
    pub async fn wait_paid_out(&self, id: &ChannelId, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut closed_at = None;
        loop {
            if closed_at.is_none() {
                if let Some(LedgerChannel::Closed { .. }) =
                    self.ledger.with_state(|s| LedgerChannel::of(s, id))
                {
                    closed_at = Some(self.ledger.height());
                }
            }
            if closed_at.is_some_and(|h| paychan_client::LedgerAccess::witnessed_height(&*self.ledger) >= h) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "channel {id} not paid out and witnessed within {} s (sources: {})",
                    timeout.as_secs(),
                    self.sources_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Checks every transaction of a channel against a witnessed checkpoint with an inclusion
    /// proof, waiting (bounded) for the witnesses to cosign. Returns how many were checked.
    pub async fn verify_channel_txs(&self, id: &ChannelId, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let txs = self.ledger.channel_txs(id);
        if txs.is_empty() {
            bail!("no transaction of channel {id} in the verified ledger");
        }
        for tx in &txs {
            loop {
                match self.ledger.verify_included(*tx).await {
                    Ok(_) => break,
                    Err(RemoteError::NotYet(why)) if Instant::now() < deadline => {
                        tracing::debug!(%why, "waiting for a witnessed checkpoint");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(anyhow!("transaction {tx}: {e}")),
                }
            }
        }
        Ok(txs.len())
    }

    /// Every ledger source and its status.
    pub fn sources(&self) -> Vec<SourceRow> {
        self.ledger
            .sources()
            .into_iter()
            .map(|s| SourceRow {
                alarm: s.status.is_alarm(),
                status: s.status.to_string(),
                witnessed_height: s.witnessed_height,
                source: s.source,
            })
            .collect()
    }

    fn sources_text(&self) -> String {
        self.sources()
            .iter()
            .map(|s| format!("{}: {}", s.source, s.status))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One ledger source in a report.
#[derive(Debug, Serialize)]
pub struct SourceRow {
    /// Where it is.
    pub source: String,
    /// What the client knows of it.
    pub status: String,
    /// Whether that is an alarm (stale, unreachable, invalid, another chain).
    pub alarm: bool,
    /// Height of its newest witnessed checkpoint the client verified.
    pub witnessed_height: u64,
}

/// What `paychan client run` did.
#[derive(Debug, Serialize)]
pub struct ClientReport {
    /// The pinned chain.
    pub chain_id: String,
    /// The client's account.
    pub account: String,
    /// The channel.
    pub channel_id: String,
    /// Payments made.
    pub payments: u64,
    /// Sum paid.
    pub paid: u64,
    /// Payments per second.
    pub per_second: f64,
    /// Balance before the open, from the verified view.
    pub balance_before: u64,
    /// Balance after the payout, from the verified view.
    pub balance_after: u64,
    /// Transactions checked against witnessed checkpoints with inclusion proofs.
    pub verified_txs: usize,
    /// Every ledger source and its status at the end.
    pub sources: Vec<SourceRow>,
}

fn parse_addr(s: &str, what: &str) -> Result<Multiaddr> {
    s.parse()
        .with_context(|| format!("{what} {s:?} is not a multiaddr"))
}

/// The chain pin of `--chain-id` or `--genesis`.
fn pin(cli: &ClientCli) -> Result<ChainPin> {
    match (&cli.chain_id, &cli.genesis) {
        (Some(hex), None) => Ok(ChainPin::ChainId(
            Hash32::from_hex(hex.trim()).map_err(|_| anyhow!("--chain-id is 64 hex characters"))?,
        )),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            let g = Genesis::from_bytes(&bytes)
                .map_err(|e| anyhow!("{} is not a genesis: {e}", path.display()))?;
            Ok(ChainPin::Genesis(Box::new(g)))
        }
        _ => bail!("pin the chain with exactly one of --chain-id HEX or --genesis FILE"),
    }
}

/// `paychan client`: opens a channel with the node, pays `count` times `amount`, closes (or,
/// with `--hold-secs`, watches until the counterparty's close is paid out), verifies.
pub async fn run(cli: ClientCli) -> Result<ClientReport> {
    let keypair = read_key(&cli.key)?;
    let node = parse_addr(&cli.node, "--node")?;
    let mut opts = ClientOptions::new(pin(&cli)?, None);
    opts.sequencer = cli
        .sequencer
        .as_deref()
        .map(|s| parse_addr(s, "--sequencer"))
        .transpose()?;
    opts.ledger_peers = cli
        .ledger_peers
        .iter()
        .map(|s| parse_addr(s, "--ledger-peer"))
        .collect::<Result<_>>()?;
    opts.ledger_urls = cli.ledger_urls.clone();
    opts.stale_after = cli.stale_after_secs.map(Duration::from_secs);
    let client = Client::start(keypair, node, opts).await?;
    let me = client.keypair.public();
    let before = client.ledger.with_state(|s| s.balance(&me));
    let id = client.open(cli.deposit, cli.their_deposit).await?;
    let started = Instant::now();
    let reference = Payment::text_reference("paychan client");
    client.pay(id, cli.amount, cli.count, reference).await?;
    let secs = started.elapsed().as_secs_f64();
    match cli.hold_secs {
        Some(hold) => client.wait_paid_out(&id, Duration::from_secs(hold)).await?,
        None => client.channels.close(id, cli.force).await?,
    }
    let verified = client.verify_channel_txs(&id, Duration::from_secs(30)).await?;
    let after = client.ledger.with_state(|s| s.balance(&me));
    Ok(ClientReport {
        chain_id: client.ledger.genesis().chain_id().to_hex(),
        account: me.to_hex(),
        channel_id: id.to_string(),
        payments: cli.count,
        paid: cli.amount.saturating_mul(cli.count),
        per_second: cli.count as f64 / secs.max(1e-9),
        balance_before: before,
        balance_after: after,
        verified_txs: verified,
        sources: client.sources(),
    })
}

/// Reads a hex seed file.
pub fn read_key(path: &std::path::Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).context("a key file holds 64 hex characters")?;
    Ok(Keypair::from_seed(seed))
}

/// Answers the network events of a process that keeps no replica (a client, an auditor): it
/// relays no gossip and serves no ledger request, answering each with `refusal`.
pub fn drain_events(
    net: NetHandle,
    mut events: tokio::sync::mpsc::Receiver<NetEvent>,
    refusal: &'static str,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetEvent::Gossip { msg_id, source, .. } => {
                    let _ = net
                        .report_validation(msg_id, source, MessageAcceptance::Ignore)
                        .await;
                }
                NetEvent::LedgerRequest { responder, .. } => {
                    let text = refusal.into();
                    let _ = net.respond(responder, LedgerResponse::Error { text }).await;
                }
                _ => {}
            }
        }
    })
    .abort_handle()
}

/// The report's ledger sources that raised an alarm, one line each (empty when none did).
pub fn alarm_lines(report: &serde_json::Value) -> String {
    report["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["alarm"] == true)
        .map(|s| {
            format!(
                "\nalarm: {}: {}",
                s["source"].as_str().unwrap_or("?"),
                s["status"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

//! Where an export or an audit reads a ledger from, trusting none of them: a stopped node's
//! store, a running node's raw routes (the control API's `/v1/ledger/raw` or the public
//! listener's `/ledger`), or a node over `/paychan/ledger/1`. Every source hands over bytes;
//! what they are worth is for the auditor to say.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use paychan_ledger::LedgerState;
use paychan_net::{Multiaddr, Net, NetConfig, NetHandle, PeerId};
use paychan_protocol::wire::{LedgerRequest, LedgerResponse, BLOCKS_PER_RESPONSE_MAX};
use paychan_protocol::{Block, Genesis, Hash32, Keypair, SignedCheckpoint, Wire};
use paychan_store::{SledStore, Store};

use crate::config::DataDir;
use crate::http::ApiClient;

/// Blocks or checkpoints asked for in one request.
pub const PAGE: usize = 256;

/// A ledger to read.
pub trait Source {
    /// Where it is (for messages).
    fn describe(&self) -> String;
    /// The genesis.
    fn genesis(&mut self) -> Result<Genesis>;
    /// The newest block height it has (a bound for progress; the walk stops at the first
    /// short page anyway).
    fn tip(&mut self) -> Result<Option<u64>>;
    /// Blocks from `from`, at most `limit`, in height order.
    fn blocks(&mut self, from: u64, limit: usize) -> Result<Vec<Block>>;
    /// Checkpoints at heights `>= from`, at most `limit`; `None` when the source serves only
    /// its newest one.
    fn checkpoints(&mut self, from: u64, limit: usize) -> Result<Option<Vec<SignedCheckpoint>>>;
    /// The newest checkpoint.
    fn latest_checkpoint(&mut self) -> Result<Option<SignedCheckpoint>>;
    /// A consistency proof between two log sizes.
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash32>>;
    /// The leaf index of a transaction and its inclusion path in the log of `size`.
    fn inclusion(&mut self, tx: &Hash32, size: u64) -> Result<(u64, Vec<Hash32>)>;
}

/// Opens the ledger of a data dir: the running node's control API (raw routes) when it
/// answers, else the stopped node's store.
pub fn open_data_dir(dir: &DataDir) -> Result<Box<dyn Source>> {
    if let Ok(api) = ApiClient::from_data_dir(dir) {
        if api.get("info").is_ok() {
            return Ok(Box::new(HttpSource::api(api)));
        }
    }
    Ok(Box::new(StoreSource::open(dir)?))
}

/// A stopped node's store.
#[derive(Debug)]
pub struct StoreSource {
    store: SledStore,
    genesis: Genesis,
    /// Replayed on demand (for proofs), through the auditor.
    state: Option<LedgerState>,
    path: String,
}

impl StoreSource {
    /// Opens the database (refused while a node holds it).
    pub fn open(dir: &DataDir) -> Result<StoreSource> {
        let store = SledStore::open(dir.db_path())
            .with_context(|| format!("open {} (is the node still running?)", dir.db_path().display()))?;
        let genesis = match store.genesis()? {
            Some(g) => g,
            None => dir.genesis()?,
        };
        Ok(StoreSource {
            store,
            genesis,
            state: None,
            path: dir.root().display().to_string(),
        })
    }

    fn state(&mut self) -> Result<&LedgerState> {
        if self.state.is_none() {
            self.state = Some(crate::audit_cmd::replay_store(&self.genesis, &self.store)?);
        }
        Ok(self.state.as_ref().expect("replayed above"))
    }
}

impl Source for StoreSource {
    fn describe(&self) -> String {
        format!("store of {}", self.path)
    }
    fn genesis(&mut self) -> Result<Genesis> {
        Ok(self.genesis.clone())
    }
    fn tip(&mut self) -> Result<Option<u64>> {
        Ok(Some(self.store.tip()?))
    }
    fn blocks(&mut self, from: u64, limit: usize) -> Result<Vec<Block>> {
        Ok(self.store.blocks(from, limit)?)
    }
    fn checkpoints(&mut self, from: u64, limit: usize) -> Result<Option<Vec<SignedCheckpoint>>> {
        Ok(Some(self.store.checkpoints(from, limit)?))
    }
    fn latest_checkpoint(&mut self) -> Result<Option<SignedCheckpoint>> {
        Ok(self.store.latest_checkpoint()?)
    }
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash32>> {
        Ok(self.state()?.consistency_proof(first, second)?)
    }
    fn inclusion(&mut self, tx: &Hash32, size: u64) -> Result<(u64, Vec<Hash32>)> {
        let p = self.state()?.inclusion_proof(tx, size)?;
        Ok((p.index, p.path))
    }
}

/// The raw routes of a running node over HTTP.
#[derive(Debug)]
pub struct HttpSource {
    /// `http://host:port/ledger` (public listener) or `http://host:port/v1/ledger/raw`.
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl HttpSource {
    /// The public endpoints at `url` (`http://host:port`, with or without `/ledger`).
    pub fn public(url: &str) -> HttpSource {
        let url = url.trim_end_matches('/');
        let base = if url.ends_with("/ledger") {
            url.to_string()
        } else {
            format!("{url}/ledger")
        };
        HttpSource {
            base,
            token: None,
            agent: agent(),
        }
    }

    /// The raw routes of the control API.
    pub fn api(api: ApiClient) -> HttpSource {
        HttpSource {
            base: format!("{}/v1/ledger/raw", api.base()),
            token: Some(api.token().to_string()),
            agent: agent(),
        }
    }

    /// `GET base/path`: `Ok(None)` on 404.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let url = format!("{}/{path}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(RESPONSE_BYTES_MAX)
            .read_to_vec()
            .with_context(|| format!("GET {url}: read the answer"))?;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            bail!(
                "GET {url}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        Ok(Some(body))
    }

    fn must(&self, path: &str) -> Result<Vec<u8>> {
        self.get(path)?
            .ok_or_else(|| anyhow!("GET {}/{path}: not found", self.base))
    }
}

/// Largest answer read from a raw route (the node caps its pages at 4 MiB).
const RESPONSE_BYTES_MAX: u64 = 8 * 1024 * 1024;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// Splits records (u32 big-endian length, then the bytes) and decodes each.
pub fn split_records<T: Wire>(mut bytes: &[u8]) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 4 {
            bail!("truncated record length");
        }
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let rest = &bytes[4..];
        if rest.len() < len {
            bail!("truncated record");
        }
        out.push(T::from_bytes(&rest[..len]).map_err(|e| anyhow!("record does not decode: {e}"))?);
        bytes = &rest[len..];
    }
    Ok(out)
}

fn hashes(bytes: &[u8]) -> Result<Vec<Hash32>> {
    if !bytes.len().is_multiple_of(32) || bytes.len() > 64 * 32 {
        bail!("a proof is a list of at most 64 hashes of 32 bytes");
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| Hash32(c.try_into().expect("32-byte chunk")))
        .collect())
}

impl Source for HttpSource {
    fn describe(&self) -> String {
        self.base.clone()
    }
    fn genesis(&mut self) -> Result<Genesis> {
        let bytes = self.must("genesis")?;
        Genesis::from_bytes(&bytes).map_err(|e| anyhow!("genesis does not decode: {e}"))
    }
    fn tip(&mut self) -> Result<Option<u64>> {
        Ok(self.latest_checkpoint()?.map(|c| c.checkpoint.height))
    }
    fn blocks(&mut self, from: u64, limit: usize) -> Result<Vec<Block>> {
        split_records(&self.must(&format!("blocks?from={from}&limit={limit}"))?)
    }
    fn checkpoints(&mut self, from: u64, limit: usize) -> Result<Option<Vec<SignedCheckpoint>>> {
        Ok(Some(split_records(
            &self.must(&format!("checkpoints?from={from}&limit={limit}"))?,
        )?))
    }
    fn latest_checkpoint(&mut self) -> Result<Option<SignedCheckpoint>> {
        match self.get("checkpoint")? {
            None => Ok(None),
            Some(b) => Ok(Some(
                SignedCheckpoint::from_bytes(&b).map_err(|e| anyhow!("checkpoint does not decode: {e}"))?,
            )),
        }
    }
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash32>> {
        hashes(&self.must(&format!("proof/consistency?first={first}&second={second}"))?)
    }
    fn inclusion(&mut self, tx: &Hash32, size: u64) -> Result<(u64, Vec<Hash32>)> {
        let b = self
            .get(&format!("proof/inclusion?tx={}&size={size}", tx.to_hex()))?
            .ok_or_else(|| anyhow!("transaction {} is not in the log of size {size}", tx.to_hex()))?;
        if b.len() < 8 {
            bail!("inclusion proof shorter than its index");
        }
        let index = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        Ok((index, hashes(&b[8..])?))
    }
}

/// A node over `/paychan/ledger/1`, from a peer of our own with a fresh key.
#[derive(Debug)]
pub struct PeerSource {
    rt: tokio::runtime::Runtime,
    net: NetHandle,
    peer: PeerId,
    addr: String,
}

/// Bound on one request to a peer.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

impl PeerSource {
    /// Starts a network of our own on 127.0.0.1 (or all interfaces for a remote address) and
    /// dials `addr` (with `/p2p/<id>`).
    pub fn connect(addr: &str) -> Result<PeerSource> {
        let target: Multiaddr = addr
            .parse()
            .context("--peer is a multiaddr with /p2p/<peer id>")?;
        let rt = crate::output::runtime()?;
        let listen = if addr.starts_with("/ip4/127.") {
            "/ip4/127.0.0.1/tcp/0"
        } else {
            "/ip4/0.0.0.0/tcp/0"
        };
        let (net, peer) = rt.block_on(async {
            let (net, events, _task) =
                Net::new(Keypair::generate().seed(), NetConfig::new(listen.parse()?)).await?;
            crate::client::drain_events(net.clone(), events, "an auditor serves no ledger");
            let peer = tokio::time::timeout(PEER_TIMEOUT, net.dial(target))
                .await
                .map_err(|_| anyhow!("dial {addr}: timed out"))??;
            anyhow::Ok((net, peer))
        })?;
        Ok(PeerSource {
            rt,
            net,
            peer,
            addr: addr.to_string(),
        })
    }

    fn request(&self, req: LedgerRequest) -> Result<LedgerResponse> {
        let what = format!("{req:?}");
        let what = &what[..what.len().min(40)];
        let resp = self
            .rt
            .block_on(async { tokio::time::timeout(PEER_TIMEOUT, self.net.request(self.peer, req)).await })
            .map_err(|_| anyhow!("{}: {what}: timed out", self.addr))?
            .map_err(|e| anyhow!("{}: {what}: {e}", self.addr))?;
        if let LedgerResponse::Error { text } = &resp {
            bail!("{}: {what}: refused: {text}", self.addr);
        }
        Ok(resp)
    }
}

fn unexpected(what: &str, resp: &LedgerResponse) -> anyhow::Error {
    let text = format!("{resp:?}");
    anyhow!("{what}: unexpected answer {}", &text[..text.len().min(80)])
}

impl Source for PeerSource {
    fn describe(&self) -> String {
        self.addr.clone()
    }
    fn genesis(&mut self) -> Result<Genesis> {
        match self.request(LedgerRequest::GetGenesis)? {
            LedgerResponse::Genesis(g) => Ok(g),
            other => Err(unexpected("genesis", &other)),
        }
    }
    fn tip(&mut self) -> Result<Option<u64>> {
        Ok(self.latest_checkpoint()?.map(|c| c.checkpoint.height))
    }
    fn blocks(&mut self, from: u64, limit: usize) -> Result<Vec<Block>> {
        let limit = limit.min(BLOCKS_PER_RESPONSE_MAX) as u32;
        match self.request(LedgerRequest::GetBlocks { from, limit })? {
            LedgerResponse::Blocks(b) => Ok(b),
            other => Err(unexpected("blocks", &other)),
        }
    }
    fn checkpoints(&mut self, _from: u64, _limit: usize) -> Result<Option<Vec<SignedCheckpoint>>> {
        Ok(None)
    }
    fn latest_checkpoint(&mut self) -> Result<Option<SignedCheckpoint>> {
        match self.request(LedgerRequest::GetCheckpoint)? {
            LedgerResponse::Checkpoint(c) => Ok(c),
            other => Err(unexpected("checkpoint", &other)),
        }
    }
    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash32>> {
        match self.request(LedgerRequest::GetConsistency { first, second })? {
            LedgerResponse::Consistency { path } => Ok(path),
            other => Err(unexpected("consistency", &other)),
        }
    }
    fn inclusion(&mut self, tx: &Hash32, size: u64) -> Result<(u64, Vec<Hash32>)> {
        match self.request(LedgerRequest::GetInclusion { tx_id: *tx, size })? {
            LedgerResponse::Inclusion { index, size: s, path } if s == size => Ok((index, path)),
            other => Err(unexpected("inclusion", &other)),
        }
    }
}

/// One object of a walk, in the order the auditor needs: each checkpoint right after the block
/// at its height.
#[derive(Debug)]
pub enum Item {
    /// A block.
    Block(Box<Block>),
    /// A signed checkpoint.
    Checkpoint(Box<SignedCheckpoint>),
}

/// Walks a source's blocks from height 1 to `to` (or its tip), handing each block to `sink`
/// followed by the checkpoints at its height. A source that serves only its newest checkpoint
/// gives that one, read before the blocks, next to its block (or after the last block when
/// it is beyond `to`). Stopped at `to` below the tip, the newest checkpoint beyond it that
/// `witnessed` accepts goes last. Memory: one page of blocks and of checkpoints.
pub fn walk(
    src: &mut dyn Source,
    to: Option<u64>,
    witnessed: &dyn Fn(&SignedCheckpoint) -> bool,
    sink: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<()> {
    let listed = src.checkpoints(1, 1)?.is_some();
    let mut latest = if listed { None } else { src.latest_checkpoint()? };
    let mut cps: std::collections::VecDeque<SignedCheckpoint> = Default::default();
    let mut next_cp_from = 1u64;
    let mut cps_done = !listed;
    let mut from = 1u64;
    let mut last = 0u64;
    loop {
        let limit = match to {
            Some(t) if t < from => break,
            Some(t) => PAGE.min((t - from + 1) as usize),
            None => PAGE,
        };
        let blocks = src.blocks(from, limit)?;
        if blocks.is_empty() {
            break;
        }
        for b in blocks {
            let h = b.header.height;
            if h != last + 1 {
                bail!("{}: block {h} where block {} was due", src.describe(), last + 1);
            }
            last = h;
            sink(Item::Block(Box::new(b)))?;
            loop {
                if cps.is_empty() && !cps_done {
                    let page = src.checkpoints(next_cp_from, PAGE)?.unwrap_or_default();
                    if page.len() < PAGE {
                        cps_done = true;
                    }
                    if let Some(c) = page.last() {
                        next_cp_from = c.checkpoint.height + 1;
                    }
                    cps.extend(page);
                }
                match cps.front() {
                    Some(c) if c.checkpoint.height < h => {
                        // Below a block already handed over: a source that lists it late.
                        cps.pop_front();
                    }
                    Some(c) if c.checkpoint.height == h => {
                        let c = cps.pop_front().expect("front exists");
                        sink(Item::Checkpoint(Box::new(c)))?;
                    }
                    _ => break,
                }
            }
            if latest.as_ref().is_some_and(|c| c.checkpoint.height == h) {
                let c = latest.take().expect("checked");
                sink(Item::Checkpoint(Box::new(c)))?;
            }
        }
        // Short pages are allowed (the node caps them by bytes): the walk stops at an empty one.
        from = last + 1;
    }
    // Stopped below the tip: the newest witnessed checkpoint beyond it goes last, so the
    // reader knows how far the ledger reached.
    if listed && to.is_some() {
        let mut newest = None;
        let mut from = last + 1;
        loop {
            let page = src.checkpoints(from, PAGE)?.unwrap_or_default();
            let Some(end) = page.last().map(|c| c.checkpoint.height) else {
                break;
            };
            if let Some(c) = page.into_iter().rev().find(|c| witnessed(c)) {
                newest = Some(c);
            }
            from = end + 1;
        }
        latest = newest;
    }
    if let Some(c) = latest {
        if c.checkpoint.height > last {
            sink(Item::Checkpoint(Box::new(c)))?;
        }
    }
    Ok(())
}

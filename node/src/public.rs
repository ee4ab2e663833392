//! The public read listener: the transaction log as tlog tiles (C2SP `tlog-tiles`) and the
//! ledger's raw canonical bytes, without a token, read only, rate-limited per client IP.
//!
//! Off unless the config has a `[public]` section. Only `GET` and `HEAD` are answered (anything
//! else is 405); only the paths below exist (anything else is 404, the control API's `/v1/`
//! included). Every request first takes a token from its client IP's bucket (429 with
//! `Retry-After` when empty), then a slot among the requests in flight (503 when none is free);
//! the number of open connections is capped as well (further connections wait in the backlog).
//!
//! - `/tlog/checkpoint`: the latest checkpoint as a C2SP signed note;
//! - `/tlog/tile/<L>/<N>[.p/<W>]`: hash tiles of height 8 over the RFC 6962 transaction log
//!   (leaf = SHA-256(0x00 ‖ tx bytes)), computed from the replica's leaf hashes;
//! - `/tlog/tile/entries/<N>[.p/<W>]`: entry bundles, each entry a transaction's canonical bytes
//!   behind a big-endian u16 length;
//! - `/ledger/...`: raw ledger bytes (see [`raw_routes`]), also served by the control API under
//!   `/v1/ledger/raw/`;
//! - `/`: the explorer page (`node/explorer/`, embedded), its script at `/explorer/app.js`, and
//!   `/explorer/blocks?limit=N`: the newest blocks as JSON, newest first, and the explorer's
//!   other JSON views (`crate::explorer`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRef, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use paychan_net::rate::TokenBucket;
use paychan_protocol::limits::TX_BYTES_MAX;
use paychan_protocol::merkle::node_hash;
use paychan_protocol::{Hash32, Wire};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, DataDir, PublicConfig};
use crate::node::NodeHandle;

/// Entries of an entry bundle carry a u16 length: every transaction must fit.
const _: () = assert!(TX_BYTES_MAX <= u16::MAX as usize);

/// Tile height: a full tile holds `2^8` hashes (C2SP `tlog-tiles`).
pub const TILE_HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Highest tile level a path may name.
pub const TILE_LEVEL_MAX: u8 = 63;
/// `Cache-Control` of full tiles and full entry bundles, which never change.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of partial tiles and bundles (replaced by wider ones as the log grows).
pub const CACHE_PARTIAL: &str = "public, max-age=60";
/// `Cache-Control` of what changes with every block (checkpoint, raw block ranges, proofs).
pub const CACHE_SHORT: &str = "public, max-age=2";
/// Most records one `/ledger/blocks` or `/ledger/checkpoints` answer holds.
pub const RAW_RECORDS_MAX: usize = 256;
/// Records stop once an answer would exceed this many bytes (one record always goes out).
pub const RAW_RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Client IPs whose buckets are remembered at once.
const CLIENTS_MAX: usize = 4096;
/// Subtree hashes (level 1 and above) kept between requests.
const SUBTREE_CACHE_MAX: usize = 1 << 17;

/// A tile path after `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// The level of a hash tile; `None` for an entry bundle.
    pub level: Option<u8>,
    /// Index within the level.
    pub index: u64,
    /// Width: 1..=255 for a partial tile, 256 for a full one.
    pub width: u16,
}

/// Why a tile path does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePathError {
    /// Not `<L>/<N>[.p/<W>]` nor `entries/<N>[.p/<W>]`.
    #[error("malformed tile path")]
    Malformed,
    /// The level is not 0..=63 in decimal without leading zeros.
    #[error("bad tile level")]
    Level,
    /// The index is not x-prefixed 3-digit groups in canonical form, or overflows u64.
    #[error("bad tile index")]
    Index,
    /// The width is not 1..=255 in decimal without leading zeros.
    #[error("bad partial tile width")]
    Width,
}

/// Whether `s` is a canonical decimal (no sign, no leading zero unless it is "0").
fn canonical_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

impl TilePath {
    /// Parses the path after `tile/`.
    pub fn parse(path: &str) -> Result<TilePath, TilePathError> {
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts.len() < 2 {
            return Err(TilePathError::Malformed);
        }
        let level = match parts[0] {
            "entries" => None,
            l if canonical_decimal(l) => match l.parse::<u8>() {
                Ok(l) if l <= TILE_LEVEL_MAX => Some(l),
                _ => return Err(TilePathError::Level),
            },
            _ => return Err(TilePathError::Level),
        };
        let mut width = TILE_WIDTH as u16;
        let n = parts.len();
        if n >= 3 && parts[n - 2].ends_with(".p") {
            let w = parts[n - 1];
            width = match (canonical_decimal(w), w.parse::<u16>()) {
                (true, Ok(w)) if (1..TILE_WIDTH as u16).contains(&w) => w,
                _ => return Err(TilePathError::Width),
            };
            parts[n - 2] = &parts[n - 2][..parts[n - 2].len() - 2];
            parts.pop();
        }
        let groups = &parts[1..];
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last {
                *g
            } else {
                g.strip_prefix('x').ok_or(TilePathError::Index)?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TilePathError::Index);
            }
            let d: u64 = digits.parse().map_err(|_| TilePathError::Index)?;
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(d))
                .ok_or(TilePathError::Index)?;
        }
        let tile = TilePath { level, index, width };
        // One encoding per tile: leading `x000` groups and the like are refused.
        if tile.encode_index() != groups.join("/") {
            return Err(TilePathError::Index);
        }
        Ok(tile)
    }

    /// `<N>` as x-prefixed 3-digit groups.
    fn encode_index(&self) -> String {
        let mut n = self.index;
        let mut out = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            out = format!("x{:03}/{out}", n % 1000);
        }
        out
    }

    /// The path after `tile/`, the inverse of [`TilePath::parse`].
    #[cfg(test)]
    pub fn encode(&self) -> String {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".into(),
        };
        let partial = if u64::from(self.width) == TILE_WIDTH {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("{level}/{}{partial}", self.encode_index())
    }

    /// Whether this is a full (256-wide) tile.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }
}

/// What a tile server reads: the log's leaf hashes and the entries behind them.
pub trait LogSource {
    /// Current number of leaves.
    fn size(&self) -> u64;
    /// Leaf hashes `start..end` (`end <= size()`).
    fn leaves(&self, start: u64, end: u64) -> Result<Vec<Hash32>, TileError>;
    /// Entries (canonical transaction bytes) `start..end` (`end <= size()`).
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, TileError>;
}

/// Why a tile cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The tile lies (partly) beyond the current log.
    #[error("tile beyond the log")]
    BeyondLog,
    /// The replica's blocks do not (yet) hold the entries asked for.
    #[error("entries unavailable: {0}")]
    Unavailable(String),
}

/// MTH of a power-of-two number of hashes.
fn perfect_root(mut level: Vec<Hash32>) -> Hash32 {
    debug_assert!(level.len().is_power_of_two());
    while level.len() > 1 {
        level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// Computes tiles from a [`LogSource`], keeping the hashes of complete subtrees (which never
/// change) in a bounded cache.
#[derive(Debug, Default)]
pub struct TileBuilder {
    /// `(level, k)` -> MTH of leaves `k·256^level .. (k+1)·256^level`, level >= 1.
    subtrees: Mutex<HashMap<(u8, u64), Hash32>>,
}

impl TileBuilder {
    /// An empty cache.
    pub fn new() -> TileBuilder {
        TileBuilder::default()
    }

    /// How many hashes tile `index` at `level` holds in a log of `size` leaves (0..=256).
    pub fn available(size: u64, level: u8, index: u64) -> u64 {
        let shift = u32::from(level) * TILE_HEIGHT;
        let count = size.checked_shr(shift).unwrap_or(0);
        match index.checked_mul(TILE_WIDTH) {
            Some(start) => count.saturating_sub(start).min(TILE_WIDTH),
            None => 0,
        }
    }

    /// The MTH of the complete subtree `k` at `level` (`256^level` leaves).
    fn subtree(&self, log: &dyn LogSource, level: u8, k: u64) -> Result<Hash32, TileError> {
        if level == 0 {
            return Ok(log.leaves(k, k + 1)?[0]);
        }
        if let Some(h) = self.subtrees.lock().expect("tile cache lock").get(&(level, k)) {
            return Ok(*h);
        }
        let first = k.checked_mul(TILE_WIDTH).ok_or(TileError::BeyondLog)?;
        let children = if level == 1 {
            log.leaves(first, first + TILE_WIDTH)?
        } else {
            (first..first + TILE_WIDTH)
                .map(|c| self.subtree(log, level - 1, c))
                .collect::<Result<Vec<_>, _>>()?
        };
        let h = perfect_root(children);
        let mut cache = self.subtrees.lock().expect("tile cache lock");
        if cache.len() >= SUBTREE_CACHE_MAX {
            cache.clear();
        }
        cache.insert((level, k), h);
        Ok(h)
    }

    /// The bytes of hash tile `tile` (concatenated 32-byte hashes), or an entry bundle.
    pub fn tile(&self, log: &dyn LogSource, tile: &TilePath) -> Result<Vec<u8>, TileError> {
        let size = log.size();
        let level = tile.level.unwrap_or(0);
        let width = u64::from(tile.width);
        if width > TileBuilder::available(size, level, tile.index) {
            return Err(TileError::BeyondLog);
        }
        // `available` > 0 means `index * 256` did not overflow.
        let start = tile.index * TILE_WIDTH;
        match tile.level {
            None => {
                let entries = log.entries(start, start + width)?;
                let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
                for e in entries {
                    let len = u16::try_from(e.len())
                        .map_err(|_| TileError::Unavailable("an entry longer than 65535 bytes".into()))?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&e);
                }
                Ok(out)
            }
            Some(0) => Ok(log
                .leaves(start, start + width)?
                .iter()
                .flat_map(|h| *h.as_bytes())
                .collect()),
            Some(l) => {
                let mut out = Vec::with_capacity(width as usize * 32);
                for k in start..start + width {
                    out.extend_from_slice(self.subtree(log, l, k)?.as_bytes());
                }
                Ok(out)
            }
        }
    }
}

/// The running node as a [`LogSource`]: leaf hashes from the replica, entries from the stored
/// blocks found through their headers' `log_size`.
struct NodeLog<'a> {
    node: &'a NodeHandle,
    /// `log_sizes[h - 1]` is the log size after block `h`.
    log_sizes: &'a Mutex<Vec<u64>>,
    size: u64,
}

impl NodeLog<'_> {
    /// Extends the index to the stored tip; returns the first block height holding leaf `leaf`
    /// and the leaf index of that block's first transaction.
    fn block_of(&self, leaf: u64) -> Result<(u64, u64), TileError> {
        let store_err = |e: paychan_store::StoreError| TileError::Unavailable(format!("store: {e}"));
        let mut sizes = self.log_sizes.lock().expect("log index lock");
        if sizes.last().is_none_or(|&s| s <= leaf) {
            let tip = self.node.store().tip().map_err(store_err)?;
            while (sizes.len() as u64) < tip {
                let blocks = self
                    .node
                    .store()
                    .blocks(sizes.len() as u64 + 1, 256)
                    .map_err(store_err)?;
                if blocks.is_empty() {
                    break;
                }
                sizes.extend(blocks.iter().map(|b| b.header.log_size));
            }
        }
        let i = sizes.partition_point(|&s| s <= leaf);
        if i == sizes.len() {
            return Err(TileError::Unavailable(
                "the stored blocks do not reach this entry yet".into(),
            ));
        }
        let first = if i == 0 { 0 } else { sizes[i - 1] };
        Ok((i as u64 + 1, first))
    }
}

impl LogSource for NodeLog<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn leaves(&self, start: u64, end: u64) -> Result<Vec<Hash32>, TileError> {
        self.node.with_ledger(|l| {
            let leaves = l.log().leaves();
            let (s, e) = (start as usize, end as usize);
            leaves
                .get(s..e)
                .map(<[Hash32]>::to_vec)
                .ok_or(TileError::BeyondLog)
        })
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, TileError> {
        let (mut height, mut leaf) = self.block_of(start)?;
        let mut out = Vec::with_capacity((end - start) as usize);
        while leaf < end {
            let blocks = self
                .node
                .store()
                .blocks(height, 16)
                .map_err(|e| TileError::Unavailable(format!("store: {e}")))?;
            if blocks.is_empty() {
                return Err(TileError::Unavailable("the stored blocks end early".into()));
            }
            for b in &blocks {
                for tx in &b.txs {
                    if (start..end).contains(&leaf) {
                        out.push(tx.bytes());
                    }
                    leaf += 1;
                }
                height += 1;
                if leaf >= end {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// An error answer of the public listener: a status and a short plain-text reason.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// A malformed query or path.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Only GET and HEAD are served.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The client IP's bucket is empty.
    #[error("rate limited")]
    RateLimited {
        /// Whole seconds until a token is back.
        retry_after_s: u64,
    },
    /// Every request slot is taken.
    #[error("busy")]
    Busy,
    /// The data is not there (yet).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl IntoResponse for PublicError {
    fn into_response(self) -> Response {
        let text = self.to_string();
        let code = match &self {
            PublicError::NotFound => StatusCode::NOT_FOUND,
            PublicError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PublicError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PublicError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            PublicError::Busy | PublicError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut resp = (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
        let h = resp.headers_mut();
        match self {
            PublicError::RateLimited { retry_after_s } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            }
            PublicError::Busy => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            PublicError::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                // A refused method's body is never read, so the connection cannot carry another
                // request reliably: say it closes, so that a client does not reuse it.
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

impl From<TileError> for PublicError {
    fn from(e: TileError) -> Self {
        match e {
            TileError::BeyondLog => PublicError::NotFound,
            TileError::Unavailable(m) => PublicError::Unavailable(m),
        }
    }
}

/// A token bucket per client IP, in a bounded map: a full map first forgets the clients idle
/// long enough for their bucket to be full again, then the longest idle one.
#[derive(Debug)]
pub struct IpLimiter {
    rate_per_s: u32,
    burst: u32,
    origin: Instant,
    clients: Mutex<HashMap<IpAddr, (TokenBucket, Duration)>>,
    max_clients: usize,
}

impl IpLimiter {
    /// `rate_per_s` requests per second per IP on average, bursts of `burst` (at least 1).
    pub fn new(rate_per_s: u32, burst: u32, max_clients: usize) -> IpLimiter {
        IpLimiter {
            rate_per_s,
            burst: burst.max(1),
            origin: Instant::now(),
            clients: Mutex::new(HashMap::new()),
            max_clients: max_clients.max(1),
        }
    }

    /// Takes a token for `ip` at `now` (an offset from the limiter's origin); on refusal, the
    /// whole seconds a client should wait.
    pub fn check_at(&self, ip: IpAddr, now: Duration) -> Result<(), u64> {
        let mut clients = self.clients.lock().expect("limiter lock");
        if !clients.contains_key(&ip) && clients.len() >= self.max_clients {
            // A bucket idle for burst/rate seconds is full: forgetting it changes nothing.
            let refill = Duration::from_secs(u64::from(self.burst) / u64::from(self.rate_per_s.max(1)) + 1);
            clients.retain(|_, (_, seen)| now.saturating_sub(*seen) < refill);
            if clients.len() >= self.max_clients {
                if let Some(oldest) = clients.iter().min_by_key(|(_, (_, seen))| *seen).map(|(k, _)| *k) {
                    clients.remove(&oldest);
                }
            }
        }
        let (bucket, seen) = clients
            .entry(ip)
            .or_insert_with(|| (TokenBucket::new(self.rate_per_s, self.burst, now), now));
        *seen = now;
        if bucket.try_take(now) {
            Ok(())
        } else {
            // At one request per second or more, the next token is at most a second away.
            Err(1)
        }
    }

    /// [`IpLimiter::check_at`] now.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, self.origin.elapsed())
    }

    /// Client IPs remembered.
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.clients.lock().expect("limiter lock").len()
    }
}

/// The public listener's state.
#[derive(Clone)]
struct PublicState {
    node: NodeHandle,
    tiles: Arc<TileBuilder>,
    log_sizes: Arc<Mutex<Vec<u64>>>,
    limiter: Arc<IpLimiter>,
    in_flight: Arc<Semaphore>,
    /// Test only (`[public] test_tamper_cosignature`): serve a tampered cosignature.
    tamper_cosignature: bool,
    /// The data dir's `testnet.json`, for the explorer's testnet view.
    testnet: crate::explorer::TestnetFile,
}

impl FromRef<PublicState> for crate::explorer::TestnetFile {
    fn from_ref(s: &PublicState) -> crate::explorer::TestnetFile {
        s.testnet.clone()
    }
}

impl FromRef<PublicState> for NodeHandle {
    fn from_ref(s: &PublicState) -> NodeHandle {
        s.node.clone()
    }
}

/// The client address of a connection accepted by [`CappedListener`].
#[derive(Debug, Clone, Copy)]
struct ClientAddr(SocketAddr);

/// A TCP listener that holds one permit per open connection: at the cap it stops accepting
/// until a connection closes.
struct CappedListener {
    inner: tokio::net::TcpListener,
    permits: Arc<Semaphore>,
}

/// A connection holding its permit until it is dropped, and closed when neither reading nor
/// writing progresses for [`CONNECTION_IDLE`] (an idle keep-alive connection, a client that
/// sends its request or reads its answer too slowly).
struct CappedStream {
    inner: tokio::net::TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
}

/// How long a public connection may make no progress.
const CONNECTION_IDLE: Duration = Duration::from_secs(30);

impl CappedStream {
    fn new(inner: tokio::net::TcpStream, permit: OwnedSemaphorePermit) -> CappedStream {
        CappedStream {
            inner,
            _permit: permit,
            idle: Box::pin(tokio::time::sleep(CONNECTION_IDLE)),
        }
    }

    /// Restarts the idle clock after progress; on no progress, fails once the clock ran out.
    fn progress<T>(
        &mut self,
        cx: &mut TaskContext<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.idle
                    .as_mut()
                    .reset(tokio::time::Instant::now() + CONNECTION_IDLE);
                Poll::Ready(r)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "idle public connection",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.progress(cx, poll)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, poll)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, poll)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, poll)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = loop {
            // The semaphore is never closed; a closed one would mean no further connection.
            match self.permits.clone().acquire_owned().await {
                Ok(p) => break p,
                Err(_) => std::future::pending::<()>().await,
            }
        };
        let (inner, addr) = Listener::accept(&mut self.inner).await;
        (CappedStream::new(inner, permit), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<IncomingStream<'_, CappedListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, CappedListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// A bound public listener, not yet serving.
#[derive(Debug)]
pub struct Bound {
    listener: tokio::net::TcpListener,
    config: PublicConfig,
    local: SocketAddr,
    testnet_file: std::path::PathBuf,
}

impl Bound {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }
}

/// Binds the public listener when the config has one and writes its address into the data dir.
pub async fn bind(dir: &DataDir, config: &Config) -> Result<Option<Bound>> {
    let Some(public) = &config.public else {
        let _ = std::fs::remove_file(dir.public_addr_path());
        return Ok(None);
    };
    if public.requests_per_s == 0
        || public.burst == 0
        || public.connections_max == 0
        || public.requests_in_flight_max == 0
    {
        anyhow::bail!(
            "[public] requests_per_s, burst, connections_max and requests_in_flight_max must be at least 1"
        );
    }
    let addr: SocketAddr = public
        .listen
        .parse()
        .with_context(|| format!("[public] listen {}", public.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the public listener on {addr}"))?;
    let local = listener.local_addr()?;
    std::fs::write(dir.public_addr_path(), local.to_string())?;
    tracing::info!(public = %local, "public read listener");
    Ok(Some(Bound {
        listener,
        config: public.clone(),
        local,
        testnet_file: dir.root().join(crate::explorer::TESTNET_FILE),
    }))
}

impl Bound {
    /// Serves until shutdown.
    pub fn serve(self, node: NodeHandle, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let c = &self.config;
        let state = PublicState {
            node,
            tiles: Arc::new(TileBuilder::new()),
            log_sizes: Arc::new(Mutex::new(Vec::new())),
            limiter: Arc::new(IpLimiter::new(c.requests_per_s, c.burst, CLIENTS_MAX)),
            in_flight: Arc::new(Semaphore::new(c.requests_in_flight_max.max(1) as usize)),
            tamper_cosignature: c.test_tamper_cosignature,
            testnet: crate::explorer::TestnetFile(Arc::new(self.testnet_file)),
        };
        let listener = CappedListener {
            inner: self.listener,
            permits: Arc::new(Semaphore::new(c.connections_max.max(1) as usize)),
        };
        let app = router(state).into_make_service_with_connect_info::<ClientAddr>();
        tokio::spawn(async move {
            let stop = async move {
                let _ = shutdown.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(%e, "public listener stopped");
            }
        })
    }
}

fn router(state: PublicState) -> Router {
    Router::new()
        .route("/tlog/checkpoint", get(tlog_checkpoint))
        .route("/tlog/tile/{*path}", get(tile))
        .nest("/ledger", raw_routes())
        .route("/", get(explorer_index))
        .route("/explorer/app.js", get(explorer_js))
        .route("/explorer/blocks", get(explorer_blocks))
        .merge(crate::explorer::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found() -> PublicError {
    PublicError::NotFound
}

/// Rate limit per IP, then the method, then a request slot.
async fn guard(State(s): State<PublicState>, req: Request, next: Next) -> Result<Response, PublicError> {
    let ip = req
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0 .0.ip())
        .ok_or_else(|| PublicError::Unavailable("no client address".into()))?;
    s.limiter
        .check(ip)
        .map_err(|retry_after_s| PublicError::RateLimited { retry_after_s })?;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(PublicError::MethodNotAllowed);
    }
    let _slot = s
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| PublicError::Busy)?;
    Ok(next.run(req).await)
}

fn octets(cache: &'static str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response()
}

/// The latest stored checkpoint as a C2SP signed note (with the cosignatures this node holds).
async fn tlog_checkpoint(State(s): State<PublicState>) -> Result<Response, PublicError> {
    let cp = s.node.store().latest_checkpoint().map_err(store_error)?;
    let mut cp = cp.ok_or(PublicError::NotFound)?;
    if s.tamper_cosignature {
        if let Some(c) = cp.cosignatures.first_mut() {
            c.signature.0[0] ^= 1;
        }
    }
    let note = cp.to_note(&s.node.genesis().sequencer);
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_SHORT),
        ],
        note,
    )
        .into_response())
}

async fn tile(State(s): State<PublicState>, Path(path): Path<String>) -> Result<Response, PublicError> {
    let tile = TilePath::parse(&path).map_err(|_| PublicError::NotFound)?;
    let size = s.node.with_ledger(|l| l.log_size());
    if u64::from(tile.width) > TileBuilder::available(size, tile.level.unwrap_or(0), tile.index) {
        return Err(PublicError::NotFound);
    }
    let bytes = tokio::task::spawn_blocking(move || {
        let log = NodeLog {
            node: &s.node,
            log_sizes: &s.log_sizes,
            size,
        };
        s.tiles.tile(&log, &tile)
    })
    .await
    .map_err(|e| PublicError::Unavailable(e.to_string()))??;
    let cache = if tile.is_full() {
        CACHE_IMMUTABLE
    } else {
        CACHE_PARTIAL
    };
    Ok(octets(cache, bytes))
}

/// The explorer page, embedded in the binary.
const EXPLORER_HTML: &str = include_str!("../explorer/index.html");
/// The explorer's script.
const EXPLORER_JS: &str = include_str!("../explorer/app.js");
/// Most blocks one `/explorer/blocks` answer holds.
pub const EXPLORER_BLOCKS_MAX: usize = 64;
/// Blocks `/explorer/blocks` answers without a `limit`.
const EXPLORER_BLOCKS_DEFAULT: usize = 20;

async fn explorer_index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        EXPLORER_HTML,
    )
        .into_response()
}

async fn explorer_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        EXPLORER_JS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct ExplorerBlocksQuery {
    limit: Option<usize>,
}

/// The kind of a transaction: its variant name, read from its serde form so that a variant
/// added later shows under its own name without a change here.
fn explorer_tx_kind(tx: &paychan_protocol::Tx) -> String {
    match serde_json::to_value(tx) {
        Ok(serde_json::Value::Object(m)) => m.keys().next().cloned().unwrap_or_else(|| "unknown".into()),
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// `/explorer/blocks?limit=N`: the newest `N` blocks (default 20, at most
/// [`EXPLORER_BLOCKS_MAX`]), newest first, as JSON: height, hash, time and the transactions'
/// ids, kinds and sizes.
async fn explorer_blocks(
    State(s): State<PublicState>,
    q: Result<Query<ExplorerBlocksQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PublicError> {
    let Query(q) = q.map_err(|e| PublicError::BadRequest(e.body_text()))?;
    let limit = q
        .limit
        .unwrap_or(EXPLORER_BLOCKS_DEFAULT)
        .clamp(1, EXPLORER_BLOCKS_MAX);
    let tip = s.node.with_ledger(|l| l.height());
    if tip == 0 {
        return Ok(explorer_json(serde_json::json!([])));
    }
    let from = tip.saturating_sub(limit as u64 - 1).max(1);
    let blocks = s.node.store().blocks(from, limit).map_err(store_error)?;
    let list: Vec<serde_json::Value> = blocks
        .iter()
        .rev()
        .map(|b| {
            let h = &b.header;
            serde_json::json!({
                "height": h.height,
                "hash": h.hash().to_hex(),
                "prev_hash": h.prev_hash.to_hex(),
                "time_ms": h.time_ms,
                "log_size": h.log_size,
                "txs": b.txs.iter().map(|t| serde_json::json!({
                    "id": t.id().to_hex(),
                    "kind": explorer_tx_kind(t),
                    "bytes": t.bytes().len(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(explorer_json(serde_json::Value::Array(list)))
}

fn explorer_json(v: serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        v.to_string(),
    )
        .into_response()
}

/// The raw ledger routes, served under `/ledger` by the public listener and under
/// `/v1/ledger/raw` by the control API:
///
/// - `/genesis`: the canonical genesis bytes;
/// - `/blocks?from=H&limit=N`, `/checkpoints?from=H&limit=N`: records, each a u32 big-endian
///   length then the canonical bytes of a `Block` / `SignedCheckpoint`, heights `>= from`
///   (default 1), at most `limit` (default and cap [`RAW_RECORDS_MAX`]) and
///   [`RAW_RESPONSE_BYTES_MAX`] bytes (one record always);
/// - `/checkpoint`: the latest `SignedCheckpoint` (404 if none);
/// - `/proof/inclusion?tx=HEX&size=N`: u64 big-endian leaf index, then the path hashes;
/// - `/proof/consistency?first=A&second=B`: the path hashes (32 bytes each).
pub fn raw_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    NodeHandle: FromRef<S>,
{
    raw_api_routes().split_for_parts().0
}

/// [`raw_routes`] with their OpenAPI description, for the control API's document.
pub fn raw_api_routes<S>() -> utoipa_axum::router::OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    NodeHandle: FromRef<S>,
{
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(raw_genesis))
        .routes(routes!(raw_blocks))
        .routes(routes!(raw_checkpoints))
        .routes(routes!(raw_checkpoint))
        .routes(routes!(raw_inclusion))
        .routes(routes!(raw_consistency))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// Concatenates length-prefixed records within the limits.
fn records(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for bytes in items {
        if !out.is_empty() && out.len() + 4 + bytes.len() > RAW_RESPONSE_BYTES_MAX {
            break;
        }
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn store_error(e: paychan_store::StoreError) -> PublicError {
    PublicError::Unavailable(format!("store: {e}"))
}

fn range(q: &RangeQuery) -> (u64, usize) {
    (
        q.from.unwrap_or(1).max(1),
        q.limit.unwrap_or(RAW_RECORDS_MAX).clamp(1, RAW_RECORDS_MAX),
    )
}

#[utoipa::path(get, path = "/genesis", tag = "raw", responses((status = 200, description = "the canonical bytes of the genesis (PROTOCOL.md 5.1)", content_type = "application/octet-stream", body = Vec<u8>)))]
async fn raw_genesis(State(node): State<NodeHandle>) -> Response {
    octets(CACHE_IMMUTABLE, node.genesis().to_bytes())
}

#[utoipa::path(get, path = "/blocks", tag = "raw", params(RangeQuery), responses((status = 200, description = "blocks from `from` (default 1), each as a 4-byte big-endian length and its canonical bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = 400, description = "a malformed query", body = crate::api::ErrorBody), (status = 503, description = "the store failed", body = crate::api::ErrorBody)))]
async fn raw_blocks(
    State(node): State<NodeHandle>,
    q: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PublicError> {
    let Query(q) = q.map_err(|e| PublicError::BadRequest(e.body_text()))?;
    let (from, limit) = range(&q);
    let blocks = node.store().blocks(from, limit).map_err(store_error)?;
    Ok(octets(CACHE_SHORT, records(blocks.iter().map(Wire::to_bytes))))
}

#[utoipa::path(get, path = "/checkpoints", tag = "raw", params(RangeQuery), responses((status = 200, description = "signed checkpoints from height `from`, length-prefixed as for blocks", content_type = "application/octet-stream", body = Vec<u8>), (status = 400, description = "a malformed query", body = crate::api::ErrorBody), (status = 503, description = "the store failed", body = crate::api::ErrorBody)))]
async fn raw_checkpoints(
    State(node): State<NodeHandle>,
    q: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PublicError> {
    let Query(q) = q.map_err(|e| PublicError::BadRequest(e.body_text()))?;
    let (from, limit) = range(&q);
    let cps = node.store().checkpoints(from, limit).map_err(store_error)?;
    Ok(octets(CACHE_SHORT, records(cps.iter().map(Wire::to_bytes))))
}

#[utoipa::path(get, path = "/checkpoint", tag = "raw", responses((status = 200, description = "the newest signed checkpoint's canonical bytes", content_type = "application/octet-stream", body = Vec<u8>), (status = 404, description = "no checkpoint yet", body = crate::api::ErrorBody), (status = 503, description = "the store failed", body = crate::api::ErrorBody)))]
async fn raw_checkpoint(State(node): State<NodeHandle>) -> Result<Response, PublicError> {
    let cp = node.store().latest_checkpoint().map_err(store_error)?;
    let cp = cp.ok_or(PublicError::NotFound)?;
    Ok(octets(CACHE_SHORT, cp.to_bytes()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    tx: String,
    size: u64,
}

fn proof_error(e: paychan_ledger::ProofError) -> PublicError {
    match e {
        paychan_ledger::ProofError::UnknownTx(_) => PublicError::NotFound,
        other => PublicError::BadRequest(other.to_string()),
    }
}

#[utoipa::path(get, path = "/proof/inclusion", tag = "raw", params(InclusionQuery), responses((status = 200, description = "the leaf index (8 bytes big-endian) then the audit path, 32 bytes a hash", content_type = "application/octet-stream", body = Vec<u8>), (status = 400, description = "a malformed query", body = crate::api::ErrorBody), (status = 503, description = "the store failed", body = crate::api::ErrorBody), (status = 404, description = "the transaction is not in the log", body = crate::api::ErrorBody)))]
async fn raw_inclusion(
    State(node): State<NodeHandle>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PublicError> {
    let Query(q) = q.map_err(|e| PublicError::BadRequest(e.body_text()))?;
    let tx =
        Hash32::from_hex(&q.tx).map_err(|_| PublicError::BadRequest("tx is 64 hex characters".into()))?;
    let proof = node
        .with_ledger(|l| l.inclusion_proof(&tx, q.size))
        .map_err(proof_error)?;
    let mut out = Vec::with_capacity(8 + 32 * proof.path.len());
    out.extend_from_slice(&proof.index.to_be_bytes());
    for h in &proof.path {
        out.extend_from_slice(h.as_bytes());
    }
    Ok(octets(CACHE_SHORT, out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

#[utoipa::path(get, path = "/proof/consistency", tag = "raw", params(ConsistencyQuery), responses((status = 200, description = "the consistency path between log sizes `first` and `second`, 32 bytes a hash", content_type = "application/octet-stream", body = Vec<u8>), (status = 400, description = "a malformed query", body = crate::api::ErrorBody), (status = 503, description = "the store failed", body = crate::api::ErrorBody)))]
async fn raw_consistency(
    State(node): State<NodeHandle>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PublicError> {
    let Query(q) = q.map_err(|e| PublicError::BadRequest(e.body_text()))?;
    let path = node
        .with_ledger(|l| l.consistency_proof(q.first, q.second))
        .map_err(proof_error)?;
    Ok(octets(
        CACHE_SHORT,
        path.iter().flat_map(|h| *h.as_bytes()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use paychan_protocol::merkle::{leaf_hash, MerkleLog};
    use tlog_tiles::{HashReader, Tile, TileHashReader, TileReader};

    use super::*;

    /// A log held in memory: entries and their leaf hashes.
    struct MemLog {
        entries: Vec<Vec<u8>>,
        log: MerkleLog,
    }

    impl MemLog {
        fn new(size: u64) -> MemLog {
            // Entries of varying length (1..=300 bytes), each distinct.
            let entries: Vec<Vec<u8>> = (0..size)
                .map(|i| {
                    let mut e = i.to_be_bytes().to_vec();
                    e.resize(1 + (i as usize * 7) % 300, (i % 251) as u8);
                    e[0] ^= 0x80;
                    e
                })
                .collect();
            let log = MerkleLog::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
            MemLog { entries, log }
        }
    }

    impl LogSource for MemLog {
        fn size(&self) -> u64 {
            self.log.size()
        }
        fn leaves(&self, start: u64, end: u64) -> Result<Vec<Hash32>, TileError> {
            self.log
                .leaves()
                .get(start as usize..end as usize)
                .map(<[Hash32]>::to_vec)
                .ok_or(TileError::BeyondLog)
        }
        fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, TileError> {
            self.entries
                .get(start as usize..end as usize)
                .map(<[Vec<u8>]>::to_vec)
                .ok_or(TileError::BeyondLog)
        }
    }

    /// Their tile for ours.
    fn theirs(t: &TilePath) -> Tile {
        Tile::new(
            8,
            t.level.unwrap_or(0),
            t.index,
            u32::from(t.width),
            t.level.is_none(),
        )
    }

    /// Their path (`tile/H/L/N`, `tile/H/data/N`) in the C2SP layout (`tile/L/N`, `tile/entries/N`).
    fn their_path(t: &TilePath) -> String {
        theirs(t)
            .path()
            .replacen("tile/8/data/", "tile/entries/", 1)
            .replacen("tile/8/", "tile/", 1)
    }

    #[test]
    fn tile_paths_match_theirs() {
        let indexes = [
            0u64,
            1,
            9,
            999,
            1000,
            1001,
            1_234_067,
            999_999,
            1_000_000,
            u64::MAX,
        ];
        for level in [None, Some(0u8), Some(1), Some(9), Some(63)] {
            for &index in &indexes {
                for width in [1u16, 7, 255, 256] {
                    let t = TilePath { level, index, width };
                    let ours = format!("tile/{}", t.encode());
                    assert_eq!(ours, their_path(&t));
                    assert_eq!(TilePath::parse(&t.encode()), Ok(t), "{ours}");
                    // Their parser reads our path back as the same tile.
                    let go_style = match ours.strip_prefix("tile/entries/") {
                        Some(rest) => format!("tile/8/data/{rest}"),
                        None => ours.replacen("tile/", "tile/8/", 1),
                    };
                    let back = Tile::from_path(&go_style).expect("their parser reads our path");
                    assert_eq!(back, theirs(&t), "{go_style}");
                }
            }
        }
        assert_eq!(
            TilePath::parse("4/x001/x234/067.p/1"),
            Ok(TilePath {
                level: Some(4),
                index: 1_234_067,
                width: 1
            })
        );
        assert_eq!(
            TilePath::parse("entries/x001/x234/067"),
            Ok(TilePath {
                level: None,
                index: 1_234_067,
                width: 256
            })
        );
    }

    #[test]
    fn non_canonical_tile_paths_are_refused() {
        for bad in [
            "",
            "0",
            "0/",
            "/000",
            "0/1",
            "0/0001",
            "0/x000/001",
            "0/x001",
            "0/001/002",
            "0/x01/002",
            "00/000",
            "01/000",
            "64/000",
            "-1/000",
            "a/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/01",
            "0/000.p/",
            "0/000.p",
            "0/000.p/1/2",
            "entries/000.p/300",
            "entries/x1000/000",
            "data/000",
            "0/x018/x446/x744/x073/x709/x551/616",
            "0/+01",
            "0/00a",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    /// Their hash storage of the same log, built with their `stored_hashes`.
    struct TheirStorage(Vec<tlog_tiles::Hash>);

    impl HashReader for TheirStorage {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
            Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
        }
    }

    fn their_storage(log: &MemLog) -> TheirStorage {
        let mut storage = TheirStorage(Vec::new());
        for (n, e) in log.entries.iter().enumerate() {
            let new = tlog_tiles::stored_hashes(n as u64, e, &storage).expect("their stored hashes");
            storage.0.extend(new);
        }
        storage
    }

    /// Serves our tiles to their tile reader.
    struct OurTiles<'a> {
        builder: &'a TileBuilder,
        log: &'a MemLog,
    }

    impl TileReader for OurTiles<'_> {
        fn height(&self) -> u8 {
            8
        }
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
            tiles
                .iter()
                .map(|t| {
                    let ours = TilePath {
                        level: Some(t.level()),
                        index: t.level_index(),
                        width: t.width() as u16,
                    };
                    self.builder
                        .tile(self.log, &ours)
                        .map_err(|_| tlog_tiles::Error::InvalidTile)
                })
                .collect()
        }
        fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
    }

    /// Splits an entry bundle into its entries.
    fn split_bundle(mut b: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let len = u16::from_be_bytes([b[0], b[1]]) as usize;
            out.push(&b[2..2 + len]);
            b = &b[2 + len..];
        }
        out
    }

    #[test]
    fn tiles_match_theirs() {
        // The spec's example size: 273 full level-0 tiles and one of width 112, one full
        // level-1 tile and one of width 17, one level-2 tile of width 1.
        let size = 70_000u64;
        let log = MemLog::new(size);
        let storage = their_storage(&log);
        let builder = TileBuilder::new();
        let root = log.log.root();
        assert_eq!(
            tlog_tiles::tree_hash(size, &storage).expect("their tree hash").0,
            *root.as_bytes()
        );

        let expect = [(0u8, 273u64, 112u64), (1, 1, 17), (2, 0, 1)];
        for (level, full, partial) in expect {
            assert_eq!(TileBuilder::available(size, level, full), partial);
            assert_eq!(TileBuilder::available(size, level, full + 1), 0);
            for index in [0, full.saturating_sub(1)] {
                if index < full {
                    let t = TilePath {
                        level: Some(level),
                        index,
                        width: 256,
                    };
                    let ours = builder.tile(&log, &t).expect("full tile");
                    assert_eq!(ours.len(), 8192);
                    assert_eq!(ours, theirs(&t).read_data(&storage).expect("their tile"), "{t:?}");
                }
            }
            for width in [1, partial] {
                let t = TilePath {
                    level: Some(level),
                    index: full,
                    width: width as u16,
                };
                let ours = builder.tile(&log, &t).expect("partial tile");
                assert_eq!(ours, theirs(&t).read_data(&storage).expect("their tile"), "{t:?}");
            }
            // Wider than the log, or a full tile where only a partial one exists: none.
            let t = TilePath {
                level: Some(level),
                index: full,
                width: partial as u16 + 1,
            };
            assert_eq!(builder.tile(&log, &t), Err(TileError::BeyondLog));
            let t = TilePath {
                level: Some(level),
                index: full + 1,
                width: 1,
            };
            assert_eq!(builder.tile(&log, &t), Err(TileError::BeyondLog));
        }
        assert_eq!(
            builder.tile(
                &log,
                &TilePath {
                    level: Some(3),
                    index: 0,
                    width: 1
                }
            ),
            Err(TileError::BeyondLog)
        );
        assert_eq!(
            builder.tile(
                &log,
                &TilePath {
                    level: Some(63),
                    index: u64::MAX,
                    width: 256
                }
            ),
            Err(TileError::BeyondLog)
        );

        // Their tile reader authenticates our tiles against our root and proves from them.
        let reader = OurTiles {
            builder: &builder,
            log: &log,
        };
        let hashes = TileHashReader::new(size, tlog_tiles::Hash(*root.as_bytes()), &reader);
        assert_eq!(
            tlog_tiles::tree_hash(size, &hashes)
                .expect("tree hash from our tiles")
                .0,
            *root.as_bytes()
        );
        for n in [0u64, 1, 255, 256, 65_535, 65_536, 69_999] {
            let proof = tlog_tiles::prove_record(size, n, &hashes).expect("record proof from our tiles");
            let leaf = tlog_tiles::record_hash(&log.entries[n as usize]);
            tlog_tiles::check_record(&proof, size, tlog_tiles::Hash(*root.as_bytes()), n, leaf)
                .expect("their check of a proof from our tiles");
            let ours = log.log.inclusion_proof(n, size).expect("our proof");
            assert_eq!(
                proof.iter().map(|h| h.0).collect::<Vec<_>>(),
                ours.iter().map(|h| *h.as_bytes()).collect::<Vec<_>>()
            );
        }
        for old in [1u64, 256, 65_536, 69_000] {
            let proof = tlog_tiles::prove_tree(size, old, &hashes).expect("tree proof from our tiles");
            let old_root = log.log.root_at(old).expect("old root");
            tlog_tiles::check_tree(
                &proof,
                size,
                tlog_tiles::Hash(*root.as_bytes()),
                old,
                tlog_tiles::Hash(*old_root.as_bytes()),
            )
            .expect("their check of a consistency proof from our tiles");
        }
    }

    #[test]
    fn entry_bundles_hash_to_level_0_tiles() {
        let size = 600u64;
        let log = MemLog::new(size);
        let storage = their_storage(&log);
        let builder = TileBuilder::new();
        for (index, width) in [(0u64, 256u16), (1, 256), (2, 88), (2, 1), (2, 40)] {
            let bundle = builder
                .tile(
                    &log,
                    &TilePath {
                        level: None,
                        index,
                        width,
                    },
                )
                .expect("bundle");
            let entries = split_bundle(&bundle);
            assert_eq!(entries.len(), usize::from(width));
            let start = (index * 256) as usize;
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(*e, log.entries[start + i].as_slice());
            }
            let hashed: Vec<u8> = entries
                .iter()
                .flat_map(|e| tlog_tiles::record_hash(e).0)
                .collect();
            let tile = TilePath {
                level: Some(0),
                index,
                width,
            };
            assert_eq!(hashed, builder.tile(&log, &tile).expect("level-0 tile"));
            assert_eq!(hashed, theirs(&tile).read_data(&storage).expect("their tile"));
        }
        assert_eq!(
            builder.tile(
                &log,
                &TilePath {
                    level: None,
                    index: 2,
                    width: 89
                }
            ),
            Err(TileError::BeyondLog)
        );
        assert_eq!(
            builder.tile(
                &log,
                &TilePath {
                    level: None,
                    index: 2,
                    width: 256
                }
            ),
            Err(TileError::BeyondLog)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_is_closed_and_frees_its_slot() {
        let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = inner.local_addr().expect("addr");
        let permits = Arc::new(Semaphore::new(1));
        let mut listener = CappedListener {
            inner,
            permits: permits.clone(),
        };
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut conn, _) = Listener::accept(&mut listener).await;
        assert_eq!(
            permits.available_permits(),
            0,
            "the connection holds the only slot"
        );
        let started = tokio::time::Instant::now();
        let mut byte = [0u8; 1];
        let read = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut byte);
            Pin::new(&mut conn).poll_read(cx, &mut buf)
        })
        .await;
        assert_eq!(
            read.expect_err("an idle read fails").kind(),
            std::io::ErrorKind::TimedOut
        );
        assert!(started.elapsed() >= CONNECTION_IDLE);
        drop(conn);
        assert_eq!(
            permits.available_permits(),
            1,
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn limiter_per_ip_bounded() {
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let c: IpAddr = "127.0.0.3".parse().expect("ip");
        let limiter = IpLimiter::new(10, 5, 2);
        let t0 = Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| limiter.check_at(a, t0).is_ok()).count(), 5);
        assert_eq!(limiter.check_at(a, t0), Err(1));
        // Another IP has its own bucket.
        assert!(limiter.check_at(b, t0).is_ok());
        // 100 ms at 10/s is one token.
        assert!(limiter.check_at(a, t0 + Duration::from_millis(100)).is_ok());
        assert!(limiter.check_at(a, t0 + Duration::from_millis(100)).is_err());
        // A third IP in a full map evicts the longest idle one, and the map stays bounded.
        assert!(limiter.check_at(c, t0 + Duration::from_millis(200)).is_ok());
        assert_eq!(limiter.clients(), 2);
        // `a` was kept (seen last); its bucket is still nearly empty.
        assert!(limiter.check_at(a, t0 + Duration::from_millis(200)).is_ok());
        assert!(limiter.check_at(a, t0 + Duration::from_millis(200)).is_err());
    }
}

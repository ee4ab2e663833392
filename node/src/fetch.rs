//! `paychan fetch` and [`PaidHttpClient`]: an HTTP client that pays a 402 gateway per request
//! through a channel with the gateway's node.
//!
//! On a 402 it reads `PAYMENT-REQUIRED`, refuses a price above its maximum, opens a channel
//! with the gateway's node over p2p when it has none (the client program of `paychan client`,
//! with its verified ledger view), and sends each request with one proof in
//! `PAYMENT-SIGNATURE`. A payment the gateway did not charge (its upstream failed) rides on the
//! next request; the proof's ack comes on the channel's stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use paychan_client::manager::limits::ACCEPTANCES_PER_PEER_MAX;
use paychan_client::x402::{self, ChannelPayload, PaymentRequired, PaymentResponse, Requirements};
use paychan_client::{ChainPin, ErrorKind};
use paychan_protocol::wire::PayItem;
use paychan_protocol::{ChannelId, Hash32, Keypair};
use serde::Serialize;

use crate::client::{read_key, Client, ClientOptions};

/// How long signing may wait for room (a seq reservation, the ack window) before it fails.
const SIGN_WAIT: Duration = Duration::from_secs(10);
/// Pieces of a body sold per KiB paid ahead of what was read.
const STREAM_PAY_AHEAD: u64 = 8;
/// How often a request refused because another of the channel was in flight is tried again.
const BUSY_RETRIES: u32 = 50;
/// Lanes of `paychan fetch --parallel` at most (each a channel and a connection).
pub const PARALLEL_MAX: u64 = 64;

/// `paychan fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchCli {
    /// The URL (behind a paychan 402 gateway).
    pub url: String,
    /// The payer's ed25519 seed file (hex).
    #[arg(long)]
    pub key: PathBuf,
    /// What to lock in the channel opened with the gateway's node.
    #[arg(long, default_value_t = 100_000)]
    pub deposit: u64,
    /// The most to pay for one request; a higher price is refused.
    #[arg(long, default_value_t = 100)]
    pub max_price: u64,
    /// How many times to request the URL (keep-alive connections, see --parallel).
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Requests in flight at once (at most 64): each runs on a lane of its own, a keep-alive
    /// connection and, for a paid resource, a channel of its own with the gateway's node
    /// (each locking --deposit), because the payments of one channel are sequential. The lanes
    /// share this client's key and its one p2p connection.
    #[arg(long, default_value_t = 1)]
    pub parallel: u64,
    /// Write the body here instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// The chain the payer accepts (hex); without it, the chain the gateway names is taken.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Leave the channel open at the end (its state is lost with this process: the gateway's
    /// node closes it); by default it is closed cooperatively.
    #[arg(long)]
    pub keep_open: bool,
}

/// One answer of a paid request.
#[derive(Debug)]
pub struct PaidResponse {
    /// The upstream's status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
    /// What this request was charged.
    pub charged: u64,
}

/// Where the payer stands with one gateway.
struct Session {
    requirements: Requirements,
    channel: ChannelId,
    price: u64,
    per_kib: u64,
}

/// An HTTP client that pays per request through a channel.
pub struct PaidHttpClient {
    keypair: Keypair,
    http: HttpClient<HttpConnector, Body>,
    deposit: u64,
    max_price: u64,
    chain_pin: Option<Hash32>,
    /// Shared by the lanes ([`PaidHttpClient::lane`]).
    client: Option<Arc<Client>>,
    session: Option<Session>,
    /// A payment the gateway did not charge (upstream failure), with its nonce: sent again.
    uncharged: Option<(PayItem, String)>,
    spent: u64,
    requests: u64,
    last_header: Option<String>,
    kib_budget: Option<u64>,
}

impl std::fmt::Debug for PaidHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaidHttpClient")
            .field("spent", &self.spent)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl PaidHttpClient {
    /// A client that pays with `keypair`, locks `deposit` in a channel it opens, and pays at
    /// most `max_price` per request. `chain_pin`: refuse a gateway on another chain.
    pub fn new(keypair: Keypair, deposit: u64, max_price: u64, chain_pin: Option<Hash32>) -> PaidHttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        PaidHttpClient::on_pool(keypair, http, deposit, max_price, chain_pin)
    }

    /// A client with no channel yet, on the connection pool `http`.
    fn on_pool(
        keypair: Keypair,
        http: HttpClient<HttpConnector, Body>,
        deposit: u64,
        max_price: u64,
        chain_pin: Option<Hash32>,
    ) -> PaidHttpClient {
        PaidHttpClient {
            keypair,
            http,
            deposit,
            max_price,
            chain_pin,
            client: None,
            session: None,
            uncharged: None,
            spent: 0,
            requests: 0,
            last_header: None,
            kib_budget: None,
        }
    }

    /// Total charged so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// The client's view of that channel (balances, what it may still spend, its credit line),
    /// once one is open.
    pub async fn channel_view(&self) -> Result<Option<paychan_client::ChannelView>> {
        let (Some(c), Some(s)) = (&self.client, &self.session) else {
            return Ok(None);
        };
        let id = s.channel.0.to_hex();
        Ok(c.channels.list().await?.into_iter().find(|v| v.id == id))
    }

    /// The `PAYMENT-SIGNATURE` value of the last paid request.
    pub fn last_header(&self) -> Option<&str> {
        self.last_header.as_deref()
    }

    /// The channel with the gateway's node, once open.
    pub fn channel(&self) -> Option<ChannelId> {
        self.session.as_ref().map(|s| s.channel)
    }

    /// The client program under this (network, ledger view, channels), once started.
    pub fn client(&self) -> Option<&Client> {
        self.client.as_deref()
    }

    /// Another payer on this one's key, client program and connection pool, with a channel
    /// of its own with the same gateway's node (opened now, locking the same deposit), so
    /// that its requests run concurrently with this one's: the payments of one channel are
    /// sequential. Before this client has met a 402 (no channel yet), the lane shares only the
    /// pool; one that meets a 402 then starts a client program of its own.
    pub async fn lane(&self) -> Result<PaidHttpClient> {
        let mut lane = PaidHttpClient::on_pool(
            self.keypair.clone(),
            self.http.clone(),
            self.deposit,
            self.max_price,
            self.chain_pin,
        );
        lane.kib_budget = self.kib_budget;
        if let (Some(client), Some(s)) = (&self.client, &self.session) {
            let channel = client.open(self.deposit, 0).await?;
            tracing::info!(%channel, "another channel opened with the gateway's node");
            lane.client = Some(client.clone());
            lane.session = Some(Session {
                requirements: s.requirements.clone(),
                channel,
                price: s.price,
                per_kib: s.per_kib,
            });
        }
        Ok(lane)
    }

    async fn send_streaming(
        &self,
        method: &Method,
        url: &str,
        payment: Option<String>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let mut b = hyper::Request::builder().method(method.clone()).uri(url);
        if let Some(p) = payment {
            b = b.header(x402::HEADER_SIGNATURE, p);
        }
        self.http
            .request(b.body(Body::empty())?)
            .await
            .with_context(|| format!("request {url}"))
    }

    async fn send(
        &self,
        method: &Method,
        url: &str,
        payment: Option<String>,
    ) -> Result<hyper::Response<Bytes>> {
        let resp = self.send_streaming(method, url, payment).await?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.context("read the body")?.to_bytes();
        Ok(hyper::Response::from_parts(parts, bytes))
    }

    /// Reads a body sold per KiB, paying each KiB after the first on the channel's stream,
    /// at most [`STREAM_PAY_AHEAD`] pieces ahead, never beyond the body's announced length, and
    /// (with a budget) never beyond the budget. Returns the body and what it paid; a cut body
    /// is an error.
    async fn read_metered(
        &mut self,
        resp: hyper::Response<hyper::body::Incoming>,
        nonce: &str,
    ) -> Result<(StatusCode, Bytes, u64)> {
        let s = self.session.as_ref().ok_or_else(|| anyhow!("no session"))?;
        let client = self.client.as_ref().ok_or_else(|| anyhow!("no channel"))?;
        let (channel, per_kib) = (s.channel, s.per_kib);
        let status = resp.status();
        let length = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let kib = crate::gateway::KIB as u64;
        // Pieces after the first, which the request's price covers.
        let pieces_max = length.map(|l| l.div_ceil(kib).saturating_sub(1));
        let reference = paychan_protocol::Payment::text_reference(&format!("http-kib {nonce}"));
        let mut body = resp.into_body();
        let mut out = Vec::new();
        let mut paid_pieces = 0u64;
        let mut paid = 0u64;
        loop {
            let read_pieces = (out.len() as u64).div_ceil(kib).saturating_sub(1);
            let mut want = read_pieces + STREAM_PAY_AHEAD;
            if let Some(m) = pieces_max {
                want = want.min(m);
            }
            if let Some(b) = self.kib_budget {
                want = want.min(b);
            }
            if want > paid_pieces {
                let n = want - paid_pieces;
                client.channels.pay(channel, per_kib, n, reference).await?;
                paid_pieces = want;
                paid = paid.saturating_add(per_kib.saturating_mul(n));
            }
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        out.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => {
                    self.spent = self.spent.saturating_add(paid);
                    bail!(
                        "the body was cut after {} bytes ({paid} paid for it): {e}",
                        out.len()
                    );
                }
                None => break,
            }
        }
        self.spent = self.spent.saturating_add(paid);
        Ok((status, Bytes::from(out), paid))
    }

    /// Stop paying a body sold per KiB after `kib` KiB beyond the first (a payer that stops
    /// paying mid-stream gets its body cut).
    pub fn set_kib_budget(&mut self, kib: Option<u64>) {
        self.kib_budget = kib;
    }

    /// Reads the requirements of a 402, opens the channel if there is none yet.
    async fn take_requirements(&mut self, resp: &hyper::Response<Bytes>) -> Result<()> {
        let value = resp
            .headers()
            .get(x402::HEADER_REQUIRED)
            .ok_or_else(|| anyhow!("a 402 without PAYMENT-REQUIRED"))?;
        let required: PaymentRequired = x402::decode_header(value.as_bytes())?;
        let req = required
            .paychan()
            .ok_or_else(|| anyhow!("the gateway accepts no {} payment", x402::SCHEME))?
            .clone();
        let price = req.price()?;
        let per_kib = match req.extra.price_per_kib.as_str() {
            "" => 0,
            v => v
                .parse()
                .map_err(|_| anyhow!("extra.pricePerKib is not an amount"))?,
        };
        if price > self.max_price {
            bail!(
                "the gateway asks {price} per request, more than the most accepted ({})",
                self.max_price
            );
        }
        let chain =
            Hash32::from_hex(&req.extra.chain_id).map_err(|_| anyhow!("extra.chainId is not 64 hex"))?;
        if x402::network_id(&chain) != req.network {
            bail!(
                "network {} does not match chain {}",
                req.network,
                req.extra.chain_id
            );
        }
        if let Some(pin) = self.chain_pin {
            if pin != chain {
                bail!("the gateway is on chain {chain}, not the pinned {pin}");
            }
        }
        if let Some(s) = &mut self.session {
            if s.requirements.pay_to == req.pay_to {
                s.price = price;
                s.per_kib = per_kib;
                s.requirements = req;
                return Ok(());
            }
            bail!(
                "the gateway's payee changed from {} to {}",
                s.requirements.pay_to,
                req.pay_to
            );
        }
        let addr = req
            .extra
            .p2p_addrs
            .first()
            .ok_or_else(|| anyhow!("the gateway names no p2p address"))?
            .parse()
            .context("the gateway's p2p address is not a multiaddr")?;
        let client = Client::start(
            self.keypair.clone(),
            addr,
            ClientOptions::new(ChainPin::ChainId(chain), None),
        )
        .await?;
        if client.ledger.node().to_string() != req.extra.peer_id {
            bail!(
                "the node at the gateway's address is not its peer {}",
                req.extra.peer_id
            );
        }
        let channel = client.open(self.deposit, 0).await?;
        tracing::info!(%channel, "channel opened with the gateway's node");
        self.client = Some(Arc::new(client));
        self.session = Some(Session {
            requirements: req,
            channel,
            price,
            per_kib,
        });
        Ok(())
    }

    async fn sign(&self, s: &Session, reference: Hash32) -> Result<PayItem> {
        let client = self.client.as_ref().ok_or_else(|| anyhow!("no channel"))?;
        let deadline = Instant::now() + SIGN_WAIT;
        loop {
            match client.channels.sign_detached(s.channel, s.price, reference).await {
                Ok(item) => return Ok(item),
                Err(e) if e.kind() == ErrorKind::Retry && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `GET url`, paying for it.
    pub async fn get(&mut self, url: &str) -> Result<PaidResponse> {
        self.request(Method::GET, url).await
    }

    /// `method url`, paying for it.
    pub async fn request(&mut self, method: Method, url: &str) -> Result<PaidResponse> {
        let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        if self.session.is_none() {
            let resp = self.send(&method, url, None).await?;
            if resp.status() != StatusCode::PAYMENT_REQUIRED {
                // A free resource.
                return Ok(PaidResponse {
                    status: resp.status(),
                    body: resp.into_body(),
                    charged: 0,
                });
            }
            self.take_requirements(&resp).await?;
        }
        let mut busy = 0;
        loop {
            let s = self.session.as_ref().ok_or_else(|| anyhow!("no session"))?;
            let (item, nonce) = match self.uncharged.take() {
                Some(u) => u,
                None => {
                    let nonce = hex::encode(rand_nonce());
                    let reference = x402::request_reference(method.as_str(), &path, &nonce);
                    (self.sign(s, reference).await?, nonce)
                }
            };
            let header = crate::gateway::payment_header(&s.requirements, ChannelPayload::of(&item, &nonce));
            let (price, metered) = (s.price, s.per_kib > 0);
            self.last_header = Some(header.clone());
            let resp = self.send_streaming(&method, url, Some(header)).await?;
            let outcome: Option<PaymentResponse> = resp
                .headers()
                .get(x402::HEADER_RESPONSE)
                .and_then(|v| x402::decode_header(v.as_bytes()).ok());
            if metered && outcome.as_ref().is_some_and(|o| o.success) {
                self.requests += 1;
                self.spent = self.spent.saturating_add(price);
                let (status, body, paid) = self.read_metered(resp, &nonce).await?;
                return Ok(PaidResponse {
                    status,
                    body,
                    charged: price.saturating_add(paid),
                });
            }
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.context("read the body")?.to_bytes();
            let resp = hyper::Response::from_parts(parts, body);
            let outcome: Option<PaymentResponse> = resp
                .headers()
                .get(x402::HEADER_RESPONSE)
                .and_then(|v| x402::decode_header(v.as_bytes()).ok());
            match (resp.status(), outcome) {
                (StatusCode::PAYMENT_REQUIRED, _) => {
                    let body: Option<PaymentResponse> = serde_json::from_slice(resp.body()).ok();
                    let reason = body.and_then(|b| b.error_reason).unwrap_or_default();
                    if reason.starts_with("busy") {
                        // Not taken and still good: it goes with the next try.
                        self.uncharged = Some((item, nonce));
                        if busy < BUSY_RETRIES {
                            busy += 1;
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                    }
                    bail!("the gateway refused the payment: {reason}");
                }
                (status, Some(o)) => {
                    self.requests += 1;
                    let charged = if o.success {
                        self.spent = self.spent.saturating_add(price);
                        price
                    } else {
                        // Not charged: this payment goes with the next request.
                        self.uncharged = Some((item, nonce));
                        0
                    };
                    return Ok(PaidResponse {
                        status,
                        body: resp.into_body(),
                        charged,
                    });
                }
                (status, None) => bail!("the gateway answered {status} without PAYMENT-RESPONSE"),
            }
        }
    }

    /// Reads the requirements of `url` (a 402 to an unpaid request) and opens the channel with
    /// the gateway's node if there is none yet, paying nothing.
    pub async fn connect(&mut self, url: &str) -> Result<()> {
        if self.session.is_some() {
            return Ok(());
        }
        let resp = self.send(&Method::GET, url, None).await?;
        if resp.status() != StatusCode::PAYMENT_REQUIRED {
            bail!(
                "{url} answered {} without payment: no requirements to read",
                resp.status()
            );
        }
        self.take_requirements(&resp).await
    }

    /// Gives `amount` to the gateway's node (a payment with a reference and no resource: the
    /// reference is that of the text `donate MEMO`), through the channel; returns once the
    /// node holds it durably. Refused when the gateway advertises a donation account other
    /// than its node's (donations travel only over the channel with that node).
    pub async fn donate(&mut self, amount: u64, memo: &str) -> Result<()> {
        let s = self
            .session
            .as_ref()
            .ok_or_else(|| anyhow!("no channel: connect first"))?;
        if let Some(to) = &s.requirements.extra.donate_to {
            if *to != s.requirements.pay_to {
                bail!(
                    "the gateway takes donations for {to}, not for its node {}: no channel leads there",
                    s.requirements.pay_to
                );
            }
        }
        let client = self.client.as_ref().ok_or_else(|| anyhow!("no channel"))?;
        let reference = paychan_protocol::Payment::text_reference(&format!("donate {memo}"));
        client.channels.pay(s.channel, amount, 1, reference).await?;
        self.spent = self.spent.saturating_add(amount);
        Ok(())
    }

    /// Closes the channel cooperatively (it returns once the payout is witnessed).
    pub async fn close(&self) -> Result<()> {
        if let (Some(c), Some(s)) = (&self.client, &self.session) {
            c.channels.close(s.channel, false).await?;
        }
        Ok(())
    }
}

fn rand_nonce() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

/// What `paychan fetch` did.
#[derive(Debug, Serialize)]
pub struct FetchReport {
    /// Requests made.
    pub requests: u64,
    /// Total charged.
    pub spent: u64,
    /// Requests per second (from the second request on: the first may open the channel).
    pub requests_per_s: f64,
    /// Requests in flight at once (lanes).
    pub parallel: u64,
    /// The last status.
    pub status: u16,
    /// The first lane's channel (hex), if one was opened.
    pub channel_id: Option<String>,
    /// Every lane's channel (hex).
    pub channels: Vec<String>,
}

/// Requests `url` `n` times on one lane, in turn.
async fn run_lane(
    mut lane: PaidHttpClient,
    url: String,
    n: u64,
) -> Result<(PaidHttpClient, Option<PaidResponse>)> {
    let mut last = None;
    for _ in 0..n {
        last = Some(lane.get(&url).await?);
    }
    Ok((lane, last))
}

/// `paychan fetch`.
pub async fn run(cli: FetchCli) -> Result<FetchReport> {
    let keypair = read_key(&cli.key)?;
    let pin = cli
        .chain_id
        .as_deref()
        .map(|h| Hash32::from_hex(h.trim()).map_err(|_| anyhow!("--chain-id is 64 hex characters")))
        .transpose()?;
    if cli.parallel == 0 || cli.parallel > PARALLEL_MAX {
        bail!("--parallel is 1 to {PARALLEL_MAX}");
    }
    let mut c = PaidHttpClient::new(keypair, cli.deposit, cli.max_price, pin);
    // The first request may open the channel: the rate counts from the second on.
    let mut last = c.get(&cli.url).await?;
    let rest = cli.count.saturating_sub(1);
    let parallel = cli.parallel.min(rest.max(1));
    // The other lanes (and their channels) before the clock starts, opened a few at a time:
    // the gateway's node holds at most ACCEPTANCES_PER_PEER_MAX opens of one peer pending,
    // and one that it has just seen on the ledger may not have left that count yet.
    let mut lanes = vec![c];
    let wave = (ACCEPTANCES_PER_PEER_MAX / 2).max(1) as u64;
    let mut opened = 1;
    while opened < parallel {
        let n = wave.min(parallel - opened);
        let first = &lanes[0];
        let more = futures::future::try_join_all((0..n).map(|_| first.lane())).await?;
        lanes.extend(more);
        opened += n;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, lane) in lanes.into_iter().enumerate() {
        let n = rest / parallel + u64::from((i as u64) < rest % parallel);
        tasks.push(tokio::spawn(run_lane(lane, cli.url.clone(), n)));
    }
    let mut lanes = Vec::new();
    for t in tasks {
        let (lane, lane_last) = t.await.context("a lane stopped")??;
        if let Some(r) = lane_last.filter(|_| lanes.is_empty()) {
            last = r;
        }
        lanes.push(lane);
    }
    let secs = started.elapsed().as_secs_f64();
    match &cli.output {
        Some(p) => std::fs::write(p, &last.body).with_context(|| format!("write {}", p.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&last.body)?;
        }
    }
    let report = FetchReport {
        requests: cli.count,
        spent: lanes.iter().map(PaidHttpClient::spent).sum(),
        requests_per_s: if rest > 0 {
            rest as f64 / secs.max(1e-9)
        } else {
            0.0
        },
        parallel,
        status: last.status.as_u16(),
        channel_id: lanes[0].channel().map(|id| id.to_string()),
        channels: lanes
            .iter()
            .filter_map(|l| l.channel().map(|id| id.to_string()))
            .collect(),
    };
    if !cli.keep_open {
        for group in lanes.chunks(wave as usize) {
            futures::future::try_join_all(group.iter().map(PaidHttpClient::close)).await?;
        }
    }
    Ok(report)
}

/// `paychan donate`.
#[derive(Debug, clap::Args)]
pub struct DonateCli {
    /// A URL behind the gateway of the creator's node: its 402 names the node to pay.
    #[arg(long)]
    pub to: String,
    /// The amount.
    #[arg(long)]
    pub amount: u64,
    /// A text the donation's reference is made from.
    #[arg(long, default_value = "")]
    pub memo: String,
    /// The payer's ed25519 seed file (hex).
    #[arg(long)]
    pub key: PathBuf,
    /// What to lock in the channel opened with the creator's node.
    #[arg(long, default_value_t = 100_000)]
    pub deposit: u64,
    /// The chain the payer accepts (hex); without it, the chain the gateway names is taken.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Leave the channel open at the end.
    #[arg(long)]
    pub keep_open: bool,
}

/// `paychan donate`: opens a channel with the creator's node, gives, closes (unless kept open).
/// Returns the channel (hex).
pub async fn donate(cli: DonateCli) -> Result<String> {
    let keypair = read_key(&cli.key)?;
    let pin = cli
        .chain_id
        .as_deref()
        .map(|h| Hash32::from_hex(h.trim()).map_err(|_| anyhow!("--chain-id is 64 hex characters")))
        .transpose()?;
    let deposit = cli.deposit.max(cli.amount);
    let mut c = PaidHttpClient::new(keypair, deposit, u64::MAX, pin);
    c.connect(&cli.to).await?;
    c.donate(cli.amount, &cli.memo).await?;
    let id = c.channel().map(|id| id.to_string()).unwrap_or_default();
    if !cli.keep_open {
        c.close().await?;
    }
    Ok(id)
}

//! The HTTP 402 gateway: a reverse proxy in the payee node's process that charges each request
//! through a channel with this node (PROTOCOL.md § "HTTP 402 payments").
//!
//! A request without `PAYMENT-SIGNATURE` (outside the free prefixes) is answered `402` with the
//! requirements in `PAYMENT-REQUIRED`. A request with one is checked by the channel manager
//! like a proof on the stream (it must link to the newest proof taken from that payer and
//! raise `transferred` by at least the price, its reference binding the method, path and the
//! client's nonce) and held in flight; it is forwarded, and once the upstream answered
//! (status below 500) the payment is taken and made durable before the response leaves, with
//! `PAYMENT-RESPONSE`. When the upstream fails the payment is not taken: the payer's next
//! request may carry the same proof. A payment the gateway cannot accept gets a 402 (or a 400
//! for a header it cannot read) whose JSON body holds the reason and the newest proof taken
//! from that payer, so that the payer resynchronises.
//!
//! **Architecture invariant**: a paid request is charged once: a payment is taken only for a
//! request the upstream answered, and only one request of a channel is in flight at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use paychan_client::manager::HttpRefusal;
use paychan_client::x402::{
    self, ChannelPayload, PaymentPayload, PaymentRequired, PaymentResponse, ProofJson,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::DataDir;
use crate::node::NodeHandle;

/// How long a payment for one request stays good (`maxTimeoutSeconds`).
pub const PAYMENT_TIMEOUT_S: u64 = 60;
/// How long the upstream may take to answer a request's headers.
pub const UPSTREAM_HEADERS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the gateway waits for the payment of a body's next KiB before it cuts the body.
pub const STREAM_PAY_WAIT: Duration = Duration::from_secs(2);
/// The unit of per-KiB pricing: a body goes out in pieces of this size, each paid first.
pub const KIB: usize = 1024;
/// How often the gateway looks whether the next KiB is paid.
const STREAM_PAY_POLL: Duration = Duration::from_millis(1);
/// Most requests the gateway works on at once; more get `503` with `Retry-After`.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;
/// Most free path prefixes.
pub const FREE_PREFIXES_MAX: usize = 64;

/// The `[gateway]` section, or `paychan gateway`'s flags.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The service behind the gateway: `http://HOST:PORT` (a path prefix is kept), or
    /// `dir:PATH`, a directory whose files the gateway serves itself (see [`Upstream`]).
    pub upstream: String,
    /// Where the gateway listens.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The price of one request.
    pub price: u64,
    /// The price of each KiB of a response body (0: none), paid on the channel's stream as the
    /// body is read; a body whose next KiB is not paid within [`STREAM_PAY_WAIT`] is cut.
    #[serde(default)]
    pub price_per_kib: u64,
    /// Path prefixes served without payment.
    #[serde(default)]
    pub free: Vec<String>,
    /// An account (hex) advertised for donations in `extra.donateTo` and a `Link` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donate_to: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:0".into()
}

/// `gateway.addr` in the data dir: where a running gateway listens.
pub fn addr_path(dir: &DataDir) -> std::path::PathBuf {
    dir.root().join("gateway.addr")
}

/// What stands behind the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// An HTTP service: requests are forwarded to it (`http://HOST:PORT[/PREFIX]`).
    Http(Uri),
    /// A static site: `GET` and `HEAD` of `/a/b` answer the file `PATH/a/b` (`index.html` for a
    /// path ending in `/`), streamed; a missing file is `404`, another method `405`. Paths with
    /// `..`, `.`, a backslash or a NUL, and files outside the directory through a link, are
    /// `404`. No percent-decoding: a name is served as spelled in the URL.
    Dir(std::path::PathBuf),
}

impl Upstream {
    /// Reads `http://HOST:PORT[/PREFIX]` or `dir:PATH`.
    pub fn parse(s: &str) -> Result<Upstream> {
        if let Some(path) = s.strip_prefix("dir:") {
            let root = std::path::Path::new(path)
                .canonicalize()
                .with_context(|| format!("gateway upstream directory {path}"))?;
            if !root.is_dir() {
                bail!("gateway upstream {path} is not a directory");
            }
            return Ok(Upstream::Dir(root));
        }
        let uri: Uri = s.parse().with_context(|| format!("gateway upstream {s}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            bail!("gateway upstream {s} is neither http://HOST:PORT nor dir:PATH");
        }
        Ok(Upstream::Http(uri))
    }
}

struct Gateway {
    node: NodeHandle,
    config: GatewayConfig,
    upstream: Upstream,
    client: Client<HttpConnector, Body>,
    network: String,
    chain_id: String,
    account: String,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

/// Binds the gateway, writes `gateway.addr`, and serves until shutdown.
pub async fn serve(
    dir: &DataDir,
    config: GatewayConfig,
    node: NodeHandle,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let upstream = Upstream::parse(&config.upstream)?;
    if config.free.len() > FREE_PREFIXES_MAX {
        bail!("at most {FREE_PREFIXES_MAX} free path prefixes");
    }
    let addr: SocketAddr = config
        .listen
        .parse()
        .with_context(|| format!("gateway listen {}", config.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the gateway on {addr}"))?;
    let local = listener.local_addr()?;
    std::fs::write(addr_path(dir), local.to_string())?;
    tracing::info!(gateway = %local, upstream = %config.upstream, price = config.price, "402 gateway listening");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let chain = node.genesis().chain_id();
    let gw = Arc::new(Gateway {
        account: node.info().account,
        network: x402::network_id(&chain),
        chain_id: chain.to_hex(),
        node,
        config,
        upstream,
        client,
        in_flight: Arc::new(tokio::sync::Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
    });
    let app = Router::new().fallback(handle).with_state(gw);
    Ok(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        // No Nagle delay: a streamed body leaves in several writes after its headers.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(%e, "gateway stopped");
        }
    }))
}

impl Gateway {
    fn requirements(&self, path: &str, error: Option<String>) -> PaymentRequired {
        let info = self.node.info();
        PaymentRequired {
            x402_version: x402::X402_VERSION,
            error,
            resource: x402::Resource {
                url: path.into(),
                description: String::new(),
                mime_type: String::new(),
            },
            accepts: vec![x402::Requirements {
                scheme: x402::SCHEME.into(),
                network: self.network.clone(),
                amount: self.config.price.to_string(),
                asset: x402::ASSET.into(),
                pay_to: self.account.clone(),
                max_timeout_seconds: PAYMENT_TIMEOUT_S,
                extra: x402::Extra {
                    peer_id: info.peer_id,
                    p2p_addrs: info.p2p_addrs,
                    chain_id: self.chain_id.clone(),
                    price_per_kib: self.config.price_per_kib.to_string(),
                    donate_to: self.config.donate_to.clone(),
                },
            }],
        }
    }

    /// A 402 with the requirements; with a refusal, its reason and the payer's newest proof.
    fn payment_required(&self, path: &str, refusal: Option<(&str, &str, Option<ProofJson>)>) -> Response {
        let error = refusal.as_ref().map(|(code, text, _)| format!("{code}: {text}"));
        let required = x402::encode_header(&self.requirements(path, error.clone()));
        let body = PaymentResponse {
            success: false,
            error_reason: Some(error.unwrap_or_else(|| "payment_required".into())),
            payer: String::new(),
            transaction: String::new(),
            network: self.network.clone(),
            newest: refusal.and_then(|(_, _, n)| n),
        };
        let mut resp = (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&required) {
            resp.headers_mut().insert(x402::HEADER_REQUIRED, v);
        }
        self.donation_link(resp.headers_mut());
        resp
    }

    fn donation_link(&self, headers: &mut HeaderMap) {
        if let Some(to) = &self.config.donate_to {
            if let Ok(v) = HeaderValue::from_str(&format!("<paychan:{to}>; rel=\"payment\"")) {
                headers.append(header::LINK, v);
            }
        }
    }

    fn bad_request(&self, why: String) -> Response {
        let body = PaymentResponse {
            success: false,
            error_reason: Some(format!("malformed: {why}")),
            payer: String::new(),
            transaction: String::new(),
            network: self.network.clone(),
            newest: None,
        };
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }

    fn is_free(&self, path: &str) -> bool {
        self.config.free.iter().any(|p| path.starts_with(p.as_str()))
    }

    /// Sends `req` upstream (without the payment header and hop-by-hop headers), or answers
    /// it from the upstream directory.
    async fn forward(&self, req: Request) -> Result<Response, String> {
        let upstream = match &self.upstream {
            Upstream::Http(u) => u,
            Upstream::Dir(root) => return Ok(serve_file(root, req.method(), req.uri().path()).await),
        };
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let base = upstream.path().trim_end_matches('/');
        let target = format!(
            "{}://{}{}{}",
            upstream.scheme_str().unwrap_or("http"),
            upstream.authority().map_or("", |a| a.as_str()),
            base,
            pq
        );
        parts.uri = target.parse().map_err(|e| format!("upstream uri: {e}"))?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(x402::HEADER_SIGNATURE);
        parts.headers.remove(header::HOST);
        let up = hyper::Request::from_parts(parts, body);
        let resp = tokio::time::timeout(UPSTREAM_HEADERS_TIMEOUT, self.client.request(up))
            .await
            .map_err(|_| "upstream timed out".to_string())?
            .map_err(|e| format!("upstream: {e}"))?;
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// How much of a file is read at a time.
const FILE_CHUNK: usize = 16 * 1024;

/// The file under `root` that URL path `path` names, if it is a plain path to a file inside.
fn file_of(root: &std::path::Path, path: &str) -> Option<std::path::PathBuf> {
    let mut file = root.to_path_buf();
    let rel = path.strip_prefix('/')?;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains(['\\', '\0']) {
            return None;
        }
        file.push(part);
    }
    if rel.is_empty() || rel.ends_with('/') {
        file.push("index.html");
    }
    // A link may lead out of the directory: only what resolves inside it is served.
    let real = file.canonicalize().ok()?;
    (real.starts_with(root) && real.is_file()).then_some(real)
}

fn content_type(file: &std::path::Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Answers `method path` from the directory `root` (see [`Upstream::Dir`]).
async fn serve_file(root: &std::path::Path, method: &axum::http::Method, path: &str) -> Response {
    use axum::http::Method;
    if method != Method::GET && method != Method::HEAD {
        let mut resp = (StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD").into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let Some(file) = file_of(root, path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let opened = std::fs::File::open(&file).and_then(|f| Ok((f.metadata()?.len(), f)));
    let (len, f) = match opened {
        Ok(x) => x,
        Err(_) => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        // Read piece by piece off the runtime's threads: a large file is streamed, not loaded.
        let f = Arc::new(std::sync::Mutex::new(f));
        Body::from_stream(futures::stream::unfold(Some(f), |f| async move {
            let f = f?;
            let read = {
                let f = f.clone();
                tokio::task::spawn_blocking(move || {
                    use std::io::Read;
                    let mut buf = vec![0u8; FILE_CHUNK];
                    let mut guard = f.lock().map_err(|_| std::io::Error::other("file lock"))?;
                    let n = guard.read(&mut buf)?;
                    buf.truncate(n);
                    Ok::<_, std::io::Error>(buf)
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            };
            match read {
                Ok(buf) if buf.is_empty() => None,
                Ok(buf) => Some((Ok(bytes::Bytes::from(buf)), Some(f))),
                Err(e) => Some((Err(e), None)),
            }
        }))
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Headers of one connection, never forwarded (RFC 9110 § 7.6.1).
fn strip_hop_by_hop(h: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        h.remove(name);
    }
    h.remove(HeaderName::from_static("keep-alive"));
}

async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let Ok(_permit) = gw.in_flight.clone().try_acquire_owned() else {
        let mut resp = (StatusCode::SERVICE_UNAVAILABLE, "the gateway is busy").into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    if gw.is_free(req.uri().path()) {
        return match gw.forward(req).await {
            Ok(r) => r,
            Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
        };
    }
    let Some(value) = req.headers().get(x402::HEADER_SIGNATURE) else {
        return gw.payment_required(&path, None);
    };
    let payload: PaymentPayload = match x402::decode_header(value.as_bytes()) {
        Ok(p) => p,
        Err(e) => return gw.bad_request(e.to_string()),
    };
    if payload.x402_version != x402::X402_VERSION {
        return gw.bad_request(format!(
            "x402Version {} (this gateway speaks 2)",
            payload.x402_version
        ));
    }
    if payload.accepted.scheme != x402::SCHEME || payload.accepted.network != gw.network {
        return gw.bad_request(format!(
            "scheme {} on {} (this gateway takes {} on {})",
            payload.accepted.scheme,
            payload.accepted.network,
            x402::SCHEME,
            gw.network
        ));
    }
    let item = match payload.payload.to_item() {
        Ok(i) => i,
        Err(e) => return gw.bad_request(e.to_string()),
    };
    let reference = x402::request_reference(req.method().as_str(), &path, &payload.payload.nonce);
    let manager = gw.node.channels();
    let checked = match manager.http_check(item.clone(), gw.config.price, reference).await {
        Ok(Ok(c)) => c,
        Ok(Err(HttpRefusal { kind, text, newest })) => {
            let newest = newest.as_deref().map(ProofJson::of);
            tracing::debug!(code = kind.as_str(), %text, "payment refused");
            return gw.payment_required(&path, Some((kind.as_str(), &text, newest)));
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    tracing::trace!(
        amount = checked.amount,
        reused = checked.reused,
        "payment checked"
    );
    // A client that goes away while the upstream works drops this future: the guard then
    // settles the payment as not answered, so its channel is not left busy.
    let mut guard = InFlight {
        manager: Some(manager.clone()),
        item: item.clone(),
    };
    let upstream = gw.forward(req).await;
    let answered = matches!(&upstream, Ok(r) if !r.status().is_server_error());
    let settled = manager.http_settle(item.clone(), answered).await;
    guard.manager = None;
    let charged = match settled {
        Ok(c) => c,
        Err(e) => {
            // The payment is not taken (the stream took a burst meanwhile, or storage is
            // gone): the response does not leave as paid.
            tracing::warn!(%e, "a checked payment could not be taken");
            return (StatusCode::SERVICE_UNAVAILABLE, format!("payment not taken: {e}")).into_response();
        }
    };
    let p = &item.proof.proof;
    let outcome = PaymentResponse {
        success: charged,
        error_reason: (!charged).then(|| "upstream_failed: not charged; send this payment again".into()),
        payer: String::new(),
        transaction: format!("{}:{}", p.channel_id, p.seq),
        network: gw.network.clone(),
        newest: None,
    };
    let mut resp = match upstream {
        Ok(r) => r,
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    };
    if charged && gw.config.price_per_kib > 0 {
        let (parts, body) = resp.into_parts();
        let meter = Meter {
            body,
            buf: bytes::BytesMut::new(),
            sent: 0,
            eof: false,
            over: false,
            manager: manager.clone(),
            id: p.channel_id,
            paid_to: p.transferred,
            per_kib: gw.config.price_per_kib,
        };
        resp = Response::from_parts(parts, Body::from_stream(meter.into_stream()));
    }
    if let Ok(v) = HeaderValue::from_str(&x402::encode_header(&outcome)) {
        resp.headers_mut().insert(x402::HEADER_RESPONSE, v);
    }
    gw.donation_link(resp.headers_mut());
    resp
}

/// The payload a client sends for `item` against `accepted` (used by the paying client).
pub fn payment_header(accepted: &x402::Requirements, payload: ChannelPayload) -> String {
    x402::encode_header(&PaymentPayload {
        x402_version: x402::X402_VERSION,
        accepted: accepted.clone(),
        payload,
    })
}

/// A checked payment whose request is not settled yet; dropped unsettled, it is settled as not
/// answered (kept uncharged for the payer's next request).
struct InFlight {
    manager: Option<paychan_client::ChannelManager>,
    item: paychan_protocol::wire::PayItem,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = self.manager.take() {
            let item = self.item.clone();
            tokio::spawn(async move {
                let _ = m.http_settle(item, false).await;
            });
        }
    }
}

/// A response body sold per KiB: the request's price covers the first piece of [`KIB`]
/// bytes; each further piece leaves only once the channel has durably received its price on
/// top of what was paid before it.
struct Meter {
    body: Body,
    /// Pieces sent so far.
    sent: u64,
    buf: bytes::BytesMut,
    eof: bool,
    /// Cut or failed: nothing more leaves.
    over: bool,
    manager: paychan_client::ChannelManager,
    id: paychan_protocol::ChannelId,
    /// The channel's received total that the pieces sent so far are paid up to.
    paid_to: u64,
    per_kib: u64,
}

/// Why a metered body stopped early.
#[derive(Debug, thiserror::Error)]
enum MeterError {
    #[error("the next KiB was not paid within {} s: body cut", STREAM_PAY_WAIT.as_secs())]
    Unpaid,
    #[error("upstream body: {0}")]
    Upstream(String),
}

impl Meter {
    fn into_stream(self) -> impl futures::Stream<Item = Result<bytes::Bytes, MeterError>> + Send {
        futures::stream::unfold(self, |mut m| async move {
            use http_body_util::BodyExt;
            if m.over {
                return None;
            }
            loop {
                if m.buf.len() >= KIB || (m.eof && !m.buf.is_empty()) {
                    if m.sent == 0 {
                        m.sent = 1;
                        let n = m.buf.len().min(KIB);
                        return Some((Ok(m.buf.split_to(n).freeze()), m));
                    }
                    let Some(need) = m.paid_to.checked_add(m.per_kib) else {
                        m.over = true;
                        return Some((Err(MeterError::Unpaid), m));
                    };
                    if !wait_paid(&m.manager, m.id, need).await {
                        tracing::info!(channel = %m.id, "a metered body was not paid on: cut");
                        m.over = true;
                        return Some((Err(MeterError::Unpaid), m));
                    }
                    m.paid_to = need;
                    m.sent += 1;
                    let n = m.buf.len().min(KIB);
                    let piece = m.buf.split_to(n).freeze();
                    return Some((Ok(piece), m));
                }
                if m.eof {
                    return None;
                }
                match m.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            m.buf.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => {
                        m.over = true;
                        return Some((Err(MeterError::Upstream(e.to_string())), m));
                    }
                    None => m.eof = true,
                }
            }
        })
    }
}

/// Whether channel `id` durably received `need` within [`STREAM_PAY_WAIT`].
async fn wait_paid(
    manager: &paychan_client::ChannelManager,
    id: paychan_protocol::ChannelId,
    need: u64,
) -> bool {
    let deadline = tokio::time::Instant::now() + STREAM_PAY_WAIT;
    loop {
        match manager.received(id).await {
            Ok(r) if r >= need => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(STREAM_PAY_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A site with `a.txt`, `sub/index.html`, and a link `out` to a file outside it.
    fn site() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("site");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub").join("index.html"), "i").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("out")).unwrap();
        let root = root.canonicalize().unwrap();
        (tmp, root)
    }

    #[test]
    fn a_directory_upstream_serves_only_plain_paths_inside_it() {
        let (_tmp, root) = site();
        assert_eq!(file_of(&root, "/a.txt"), Some(root.join("a.txt")));
        assert_eq!(file_of(&root, "//a.txt"), Some(root.join("a.txt")));
        assert_eq!(file_of(&root, "/sub/"), Some(root.join("sub").join("index.html")));
        for bad in [
            "/../secret",
            "/sub/../a.txt",
            "/./a.txt",
            "/out",
            "/missing",
            "/sub",
            "/",
            "a.txt",
            "/a.txt\0",
        ] {
            assert_eq!(file_of(&root, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_upstream_is_http_or_an_existing_directory() {
        let (_tmp, root) = site();
        assert_eq!(
            Upstream::parse(&format!("dir:{}", root.display())).unwrap(),
            Upstream::Dir(root.clone())
        );
        assert!(matches!(
            Upstream::parse("http://127.0.0.1:8080/api").unwrap(),
            Upstream::Http(_)
        ));
        for bad in [
            "https://example.org",
            "dir:/no/such/dir",
            "ftp://x",
            "localhost:80",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
        assert!(Upstream::parse(&format!("dir:{}", root.join("a.txt").display())).is_err());
    }
}

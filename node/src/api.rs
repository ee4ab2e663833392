//! The control API: HTTP + JSON on 127.0.0.1 (unless the config says otherwise).
//!
//! Every `/v1/` request needs `Authorization: Bearer <token>`, the token being the contents of
//! `api.token` in the data dir (mode 0600); without it the answer is 401 whatever the path.
//! `/v1/ledger/raw/...` serves the raw ledger bytes of the public read listener's `/ledger/...`
//! (the same handlers, see `public.rs`). `/metrics` (Prometheus text format) is open: it
//! carries no secret and the API binds to loopback by default.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use paychan_protocol::{Block, PublicKey, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::config::{Config, DataDir};
use crate::node::{NodeHandle, SubmitError};

#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    token: std::sync::Arc<str>,
    /// `http://ADDR` of the public read listener, if the node runs one.
    public_url: Option<std::sync::Arc<str>>,
    /// The address the API listens on.
    api_addr: std::sync::Arc<str>,
}

impl axum::extract::FromRef<AppState> for NodeHandle {
    fn from_ref(s: &AppState) -> NodeHandle {
        s.node.clone()
    }
}

/// Binds the API, writes its address into the data dir, and serves until shutdown.
pub async fn serve(
    dir: &DataDir,
    config: &Config,
    node: NodeHandle,
    public_url: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = config
        .api_listen
        .parse()
        .with_context(|| format!("api_listen {}", config.api_listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the API on {addr}"))?;
    let local = listener.local_addr()?;
    std::fs::write(dir.api_addr_path(), local.to_string())?;
    tracing::info!(api = %local, "control API listening");
    let state = AppState {
        node,
        token: dir.token()?.into(),
        public_url: public_url.map(Into::into),
        api_addr: local.to_string().into(),
    };
    let app = router(state);
    Ok(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(%e, "control API stopped");
        }
    }))
}

fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/info", get(info))
        .route("/peers", get(peers).post(connect_peer))
        .route("/censorship", get(censorship))
        .route("/alarms", get(alarms))
        .route("/ledger/status", get(ledger_status))
        .route("/ledger/blocks", get(blocks))
        .route("/ledger/checkpoint", get(checkpoint))
        .nest("/ledger/raw", crate::public::raw_routes())
        .route("/accounts/{key}", get(account))
        .route("/transfer", post(transfer))
        .route("/tx", post(submit_tx))
        .route("/tx/{id}", get(tx_status))
        .route("/channels", get(list_channels).post(open_channel))
        .route("/channels/{id}/pay", post(pay_channel))
        .route("/channels/{id}/payments", get(channel_payments))
        .route("/channels/{id}/close", post(close_channel))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // The token check wraps the whole app, fallback included: `nest` does not route `/v1/`
    // itself, which would otherwise answer 404 without a token. Only `/metrics` is open.
    Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/metrics" {
        return next.run(req).await;
    }
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.as_bytes(), state.token.as_bytes()));
    if !ok {
        return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
    }
    json_errors(next.run(req).await).await
}

/// Most bytes of a non-JSON error body kept as the message of its JSON form.
const ERROR_TEXT_MAX: usize = 4_096;

/// Every error answer is JSON: an extractor's plain-text rejection (a path that does not
/// decode, say) becomes `{"error": <its text>, "code": ...}` with the same status.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), ERROR_TEXT_MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    ApiError::new(status, text).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON error: `{"error": "<message>", "code": "<code>"}` with a status code. The codes:
/// `bad_request` (400), `unauthorized` (401), `not_found` (404), `method_not_allowed` (405),
/// `refused` and `violation` (422), `busy` (429), `internal` (500), `unavailable` (503),
/// `timeout` (504).
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error whose code follows from its status.
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            404 => "not_found",
            405 => "method_not_allowed",
            422 => "refused",
            429 => "busy",
            503 => "unavailable",
            504 => "timeout",
            _ => "internal",
        };
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.message, "code": self.code})),
        )
            .into_response()
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg.into())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// Identity, addresses, ledger position, peers, channels by status and balances: the
/// `getinfo` of this node.
async fn info(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let node = s.node.info();
    let mut info = serde_json::to_value(&node)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    info["public_url"] = json!(s.public_url.as_deref());
    info["api_url"] = json!(format!("http://{}", s.api_addr));
    info["version"] = json!(env!("CARGO_PKG_VERSION"));
    let account = parse_key(&node.account)?;
    let balance = s.node.with_ledger(|l| l.balance(&account));
    // Peers and channels are best effort: a node whose network or manager is stopping still
    // tells who it is.
    let peers = s.node.net().connected_peers().await.ok().map(|p| p.len());
    let mut by_status = serde_json::Map::new();
    let mut in_channels = 0u64;
    if let Ok(list) = s.node.channels().list().await {
        for c in &list {
            let n = by_status.entry(c.status.clone()).or_insert(json!(0));
            *n = json!(n.as_u64().unwrap_or(0) + 1);
            if c.status != "closed" {
                in_channels = in_channels.saturating_add(c.balance);
            }
        }
    }
    info["peers_connected"] = json!(peers);
    info["channels"] = serde_json::Value::Object(by_status);
    info["balance_ledger"] = json!(balance);
    info["balance_in_channels"] = json!(in_channels);
    info["unit"] = json!({"name": crate::output::UNIT_NAME, "symbol": crate::output::UNIT_SYMBOL});
    Ok(Json(info))
}

async fn peers(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let peers = s
        .node
        .net()
        .connected_peers()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let list: Vec<_> = peers
        .iter()
        .map(|p| {
            let account = paychan_net::public_key_from_peer_id(p).map(|k| k.to_hex());
            json!({"peer_id": p.to_string(), "account": account})
        })
        .collect();
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    /// `/ip4/../tcp/../p2p/<peer id>`.
    addr: String,
}

/// How long a connect waits for the connection.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Dials a peer and keeps it connected from now on (as a bootstrap peer). The CLI writes it
/// into `config.toml` so that the next start dials it too.
async fn connect_peer(
    State(s): State<AppState>,
    body: Result<Json<ConnectBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let addr: paychan_net::Multiaddr = body
        .addr
        .parse()
        .map_err(|e| bad_request(format!("not a multiaddr: {e}")))?;
    if !addr
        .iter()
        .any(|p| matches!(p, paychan_net::libp2p::multiaddr::Protocol::P2p(_)))
    {
        return Err(bad_request("the address must end in /p2p/<peer id>"));
    }
    let peer = tokio::time::timeout(CONNECT_WAIT, s.node.net().add_bootstrap_peer(addr.clone()))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("no connection to {addr} within {} s", CONNECT_WAIT.as_secs()),
            )
        })?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("dial {addr}: {e}")))?;
    Ok(Json(
        json!({"peer_id": peer.to_string(), "addr": addr.to_string(), "connected": true}),
    ))
}

async fn ledger_status(State(s): State<AppState>) -> impl IntoResponse {
    Json(s.node.ledger_status())
}

#[derive(Deserialize)]
struct BlocksQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// A block as the API shows it.
#[derive(Debug, Serialize)]
pub struct BlockView {
    height: u64,
    hash: String,
    prev_hash: String,
    time_ms: u64,
    tx_root: String,
    log_size: u64,
    log_root: String,
    state_root: String,
    txs: Vec<TxView>,
}

/// A transaction as the API shows it.
#[derive(Debug, Serialize)]
pub struct TxView {
    id: String,
    kind: &'static str,
    /// The channel it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    /// Length of its canonical encoding, what its fee is priced on.
    bytes: usize,
}

fn tx_kind(tx: &Tx) -> &'static str {
    match tx {
        Tx::Transfer { .. } => "transfer",
        Tx::Open(_) => "open",
        Tx::Deposit { .. } => "deposit",
        Tx::CoopClose(_) => "coop_close",
        Tx::UnilateralClose { .. } => "unilateral_close",
        Tx::Update(_) => "update",
        Tx::Settle(_) => "settle",
        Tx::CreditGrant { .. } => "credit_grant",
        Tx::Repay { .. } => "repay",
    }
}

impl From<&Block> for BlockView {
    fn from(b: &Block) -> Self {
        let h = &b.header;
        BlockView {
            height: h.height,
            hash: h.hash().to_hex(),
            prev_hash: h.prev_hash.to_hex(),
            time_ms: h.time_ms,
            tx_root: h.tx_root.to_hex(),
            log_size: h.log_size,
            log_root: h.log_root.to_hex(),
            state_root: h.state_root.to_hex(),
            txs: b
                .txs
                .iter()
                .map(|t| TxView {
                    id: t.id().to_hex(),
                    kind: tx_kind(t),
                    channel: t.channel_id().map(|c| c.to_string()),
                    bytes: t.bytes().len(),
                })
                .collect(),
        }
    }
}

/// Most blocks one API call returns.
const API_BLOCKS_MAX: usize = 256;

async fn blocks(
    State(s): State<AppState>,
    q: Result<Query<BlocksQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<BlockView>>, ApiError> {
    let Query(q) = q.map_err(|e| bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(20).min(API_BLOCKS_MAX);
    if limit == 0 {
        return Ok(Json(Vec::new()));
    }
    let from = match q.from {
        Some(f) => f.max(1),
        None => s
            .node
            .with_ledger(|l| l.height())
            .saturating_sub(limit as u64 - 1)
            .max(1),
    };
    let blocks = s
        .node
        .store()
        .blocks(from, limit)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(blocks.iter().map(BlockView::from).collect()))
}

async fn checkpoint(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let cp = s
        .node
        .store()
        .latest_checkpoint()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(cp) = cp else {
        return Ok(Json(json!(null)));
    };
    let status = paychan_ledger::verify_checkpoint(s.node.genesis(), &cp);
    let c = &cp.checkpoint;
    Ok(Json(json!({
        "height": c.height,
        "log_size": c.log_size,
        "log_root": c.log_root.to_hex(),
        "block_hash": c.block_hash.to_hex(),
        "cosigners": cp.cosignatures.iter().map(|c| c.witness.to_hex()).collect::<Vec<_>>(),
        "witnessed": status.as_ref().map(|s| s.witnessed).unwrap_or(false),
        "valid": status.is_ok(),
        "note": cp.to_note(&s.node.genesis().sequencer),
    })))
}

fn parse_key(s: &str) -> Result<PublicKey, ApiError> {
    PublicKey::from_hex(s).map_err(|_| bad_request("an account is 64 hex characters"))
}

async fn account(
    State(s): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = parse_key(&key)?;
    let (balance, nonce) = s.node.with_ledger(|l| (l.balance(&key), l.nonce(&key)));
    Ok(Json(
        json!({"account": key.to_hex(), "balance": balance, "nonce": nonce}),
    ))
}

#[derive(Deserialize)]
struct TransferBody {
    to: String,
    amount: u64,
}

fn submitted(
    r: Result<(paychan_protocol::Hash32, paychan_protocol::wire::SubmitStatus), SubmitError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match r {
        Ok((id, status)) => Ok(Json(
            json!({"tx_id": id.to_hex(), "status": submit_status_text(status)}),
        )),
        Err(SubmitError::Rejected(m)) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m)),
        Err(SubmitError::Unavailable(m)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)),
        Err(e @ SubmitError::TooManyPending { .. }) => {
            Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()))
        }
    }
}

/// A submission status as one lowercase word.
fn submit_status_text(status: paychan_protocol::wire::SubmitStatus) -> &'static str {
    use paychan_protocol::wire::SubmitStatus as S;
    match status {
        S::Accepted => "accepted",
        S::AlreadyPending => "already_pending",
        S::AlreadyIncluded => "already_included",
    }
}

async fn transfer(
    State(s): State<AppState>,
    body: Result<Json<TransferBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let to = parse_key(&body.to)?;
    if body.amount == 0 {
        return Err(bad_request("amount must be positive"));
    }
    submitted(s.node.transfer(to, body.amount).await)
}

#[derive(Deserialize)]
struct TxBody {
    /// Hex of the canonical transaction bytes.
    tx: String,
}

async fn submit_tx(
    State(s): State<AppState>,
    body: Result<Json<TxBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let bytes = hex::decode(&body.tx).map_err(|_| bad_request("tx is not hex"))?;
    let tx =
        <Tx as paychan_protocol::Wire>::from_bytes(&bytes).map_err(|e| bad_request(format!("tx: {e}")))?;
    submitted(s.node.submit(tx).await)
}

/// Where a transaction is: `pending` (in this node's mempool), `in_block` (with its height), or
/// `witnessed` (in a block covered by a witnessed checkpoint); 404 if this node knows nothing
/// of it.
async fn tx_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = paychan_protocol::Hash32::from_hex(&id)
        .map_err(|_| bad_request("a transaction id is 64 hex characters"))?;
    let (index, tip) = s.node.with_ledger(|l| (l.tx_log_index(&id), l.height()));
    let Some(index) = index else {
        if s.node.is_pending(&id) {
            return Ok(Json(
                json!({"tx_id": id.to_hex(), "status": "pending", "height": null, "witnessed": false}),
            ));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown transaction {id}: not in the ledger and not pending here (a node that is not the \
                 sequencer forwards what it is given: ask again after the next block)"
            ),
        ));
    };
    let internal =
        |e: paychan_store::StoreError| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let log_size_at = |h: u64| -> Result<u64, ApiError> {
        Ok(s.node
            .store()
            .block(h)
            .map_err(internal)?
            .map(|b| b.header.log_size)
            .unwrap_or(0))
    };
    // The first block whose log holds the index.
    let (mut lo, mut hi) = (1u64, tip.max(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if log_size_at(mid)? > index {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let block = s.node.store().block(lo).map_err(internal)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("block {lo} missing from the store"),
        )
    })?;
    let kind = block.txs.iter().find(|t| t.id() == id).map(tx_kind);
    let witnessed = s.node.witnessed_height() >= lo;
    Ok(Json(json!({
        "tx_id": id.to_hex(),
        "status": if witnessed { "witnessed" } else { "in_block" },
        "height": lo,
        "block_hash": block.header.hash().to_hex(),
        "block_time_ms": block.header.time_ms,
        "log_index": index,
        "kind": kind,
        "witnessed": witnessed,
    })))
}

async fn metrics(State(s): State<AppState>) -> Response {
    let registry = s.node.net().metrics_registry();
    let mut out = String::new();
    let encoded = {
        let r = registry.lock().expect("metrics lock");
        prometheus_client::encoding::text::encode(&mut out, &r)
    };
    match encoded {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn manager_error(e: paychan_client::ManagerError) -> ApiError {
    use paychan_client::{ErrorKind, ManagerError as E};
    // A request that cannot succeed as sent is the caller's (4xx); one that may succeed later
    // is ours or the network's (503, or the more precise code where there is one).
    let code = match (&e, e.kind()) {
        (E::UnknownChannel(_), _) => StatusCode::NOT_FOUND,
        (E::Storage(_), _) => StatusCode::INTERNAL_SERVER_ERROR,
        (E::Busy(_), _) => StatusCode::TOO_MANY_REQUESTS,
        (E::CloseExpired { .. }, _) => StatusCode::GATEWAY_TIMEOUT,
        (_, ErrorKind::Refused | ErrorKind::Violation) => StatusCode::UNPROCESSABLE_ENTITY,
        (_, ErrorKind::Retry) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut err = ApiError::new(code, e.to_string());
    if e.kind() == ErrorKind::Violation {
        err.code = "violation";
    }
    err
}

/// Every channel as the manager shows it, plus the counterparty's peer id and, while a
/// unilateral close's challenge window runs, its end and the ledger time now.
async fn list_channels(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s.node.channels().list().await.map_err(manager_error)?;
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let peer = PublicKey::from_hex(&c.counterparty)
            .ok()
            .and_then(|k| paychan_net::peer_id_from_public_key(&k))
            .map(|p| p.to_string());
        let window = paychan_protocol::Hash32::from_hex(&c.id).ok().and_then(|h| {
            s.node.with_ledger(|l| {
                match paychan_client::LedgerChannel::of(l, &paychan_protocol::ChannelId(h)) {
                    Some(paychan_client::LedgerChannel::Closing { window_end_ms, .. }) => {
                        Some((window_end_ms, l.time_ms()))
                    }
                    _ => None,
                }
            })
        });
        let mut v = json!(c);
        v["counterparty_peer_id"] = json!(peer);
        v["window_end_ms"] = json!(window.map(|w| w.0));
        v["ledger_time_ms"] = json!(window.map(|w| w.1));
        out.push(v);
    }
    Ok(Json(json!(out)))
}

#[derive(Deserialize)]
struct OpenBody {
    /// The counterparty: a peer id or an account (hex).
    peer: String,
    deposit: u64,
    #[serde(default)]
    their_deposit: u64,
}

/// A peer given as a libp2p peer id or as a hex account key.
fn parse_peer(s: &str) -> Result<PublicKey, ApiError> {
    if let Ok(k) = PublicKey::from_hex(s) {
        return Ok(k);
    }
    let peer: paychan_net::PeerId = s
        .parse()
        .map_err(|_| bad_request("peer is a peer id or a hex account"))?;
    paychan_net::public_key_from_peer_id(&peer).ok_or_else(|| bad_request("peer id without an ed25519 key"))
}

fn parse_channel(s: &str) -> Result<paychan_protocol::ChannelId, ApiError> {
    paychan_protocol::Hash32::from_hex(s)
        .map(paychan_protocol::ChannelId)
        .map_err(|_| bad_request("a channel id is 64 hex characters"))
}

async fn open_channel(
    State(s): State<AppState>,
    body: Result<Json<OpenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let key = parse_peer(&body.peer)?;
    let id = s
        .node
        .channels()
        .open(key, body.deposit, body.their_deposit)
        .await
        .map_err(manager_error)?;
    Ok(Json(json!({"channel_id": id.to_string()})))
}

#[derive(Deserialize)]
struct PayBody {
    amount: u64,
    #[serde(default = "one")]
    count: u64,
    #[serde(default)]
    memo: Option<String>,
    /// Payments per signed proof (1 to 64); each proof's memo lists its payments.
    #[serde(default = "one_usize")]
    per_proof: usize,
}

fn one() -> u64 {
    1
}

fn one_usize() -> usize {
    1
}

/// Most payments one API call makes; larger jobs are split by the caller.
const API_PAY_COUNT_MAX: u64 = 1_000_000;

async fn pay_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<PayBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let id = parse_channel(&id)?;
    let per_proof_max = paychan_protocol::limits::MEMO_PAYMENTS_MAX;
    if body.amount == 0
        || body.count == 0
        || body.count > API_PAY_COUNT_MAX
        || !(1..=per_proof_max).contains(&body.per_proof)
    {
        // An unknown channel is the first thing wrong with a payment on it.
        let known = s
            .node
            .channels()
            .list()
            .await
            .map_err(manager_error)?
            .iter()
            .any(|c| c.id == id.to_string());
        if !known {
            return Err(manager_error(paychan_client::ManagerError::UnknownChannel(id)));
        }
        return Err(bad_request(format!(
            "amount must be positive, count in 1..={API_PAY_COUNT_MAX} and per_proof in 1..={per_proof_max}"
        )));
    }
    let reference = paychan_protocol::Payment::text_reference(body.memo.as_deref().unwrap_or(""));
    let stats = s
        .node
        .channels()
        .pay_buffered(id, body.amount, body.count, reference, body.per_proof)
        .await
        .map_err(manager_error)?;
    Ok(Json(json!(stats)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentsQuery {
    #[serde(default)]
    from_seq: u64,
    #[serde(default = "payments_page")]
    limit: usize,
}

fn payments_page() -> usize {
    100
}

/// The payments received on a channel, one entry per payment (a proof carries 1 to 64), in
/// seq and memo order: `?from_seq=S&limit=N` (at most 10,000).
async fn channel_payments(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PaymentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_channel(&id)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let channels = s.node.channels();
    let known = channels
        .list()
        .await
        .map_err(manager_error)?
        .iter()
        .any(|c| c.id == id.to_string());
    if !known {
        return Err(manager_error(paychan_client::ManagerError::UnknownChannel(id)));
    }
    let payments = channels
        .payments(id, q.from_seq, q.limit)
        .map_err(manager_error)?;
    Ok(Json(json!(payments)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    #[serde(default)]
    force: bool,
    /// `false`: answer once the close is under way (proposed, or submitted with `force`)
    /// instead of at the payout.
    #[serde(default = "yes")]
    wait: bool,
}

impl Default for CloseBody {
    fn default() -> Self {
        CloseBody {
            force: false,
            wait: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// How long a close with `wait: false` waits for the close to be under way.
const CLOSE_START_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn close_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_channel(&id)?;
    // No body is a cooperative close; a body that does not parse closes nothing.
    let body: CloseBody = if body.iter().all(u8::is_ascii_whitespace) {
        CloseBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("close body: {e}")))?
    };
    let force = body.force;
    if !body.wait {
        let manager = s.node.channels().clone();
        let mut task = tokio::spawn(async move { manager.close(id, force).await });
        let deadline = tokio::time::Instant::now() + CLOSE_START_WAIT;
        loop {
            tokio::select! {
                r = &mut task => {
                    r.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                        .map_err(manager_error)?;
                    return Ok(Json(json!({"channel_id": id.to_string(), "closed": true, "status": "closed"})));
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            }
            let list = s.node.channels().list().await.map_err(manager_error)?;
            let status = list
                .iter()
                .find(|c| c.id == id.to_string())
                .map(|c| c.status.clone())
                .unwrap_or_default();
            if status != "open" || tokio::time::Instant::now() >= deadline {
                return Ok(Json(
                    json!({"channel_id": id.to_string(), "closed": false, "status": status}),
                ));
            }
        }
    }
    s.node.channels().close(id, force).await.map_err(manager_error)?;
    Ok(Json(json!({"channel_id": id.to_string(), "closed": true})))
}

async fn censorship(State(s): State<AppState>) -> impl IntoResponse {
    Json(json!(s.node.censorship_reports()))
}

/// Alarms this node raised: split views of the sequencer (two inconsistent signed checkpoints),
/// each with the reason and both signed notes; and, on a witness, the newest checkpoint it
/// cosigned (`null` if none).
async fn alarms(State(s): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "split_views": s.node.split_views(),
        "double_blocks": s.node.double_blocks(),
        "cosigned": s.node.cosigned(),
    }))
}

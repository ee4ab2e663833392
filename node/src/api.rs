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
use axum::routing::get;
use axum::{Json, Router};
use paychan_protocol::{Block, PublicKey, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::{Config, DataDir};
use crate::node::{NodeHandle, SubmitError};

mod credit;

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

/// The `/v1` routes with their OpenAPI description: the router and `GET /v1/openapi.json`
/// come from this one declaration, so every endpoint is in the document.
fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(peers, connect_peer))
        .routes(routes!(censorship))
        .routes(routes!(alarms))
        .routes(routes!(ledger_status))
        .routes(routes!(blocks))
        .routes(routes!(checkpoint))
        .nest("/ledger/raw", crate::public::raw_api_routes())
        .routes(routes!(account))
        .routes(routes!(transfer))
        .routes(routes!(submit_tx))
        .routes(routes!(tx_status))
        .routes(routes!(list_channels, open_channel))
        .routes(routes!(pay_channel))
        .routes(routes!(channel_payments))
        .routes(routes!(close_channel))
        .routes(routes!(openapi_json))
        .routes(routes!(credit::credit_list))
        .routes(routes!(credit::credit_grant))
        .routes(routes!(credit::credit_repay))
        .routes(routes!(credit::credit_score))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "node", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", body = Object)))]
async fn openapi_json() -> Json<serde_json::Value> {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(
        DOC.get_or_init(|| {
            serde_json::to_value(openapi()).unwrap_or_else(|e| json!({"error": e.to_string()}))
        })
        .clone(),
    )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "paychan control API",
        description = "The control API of a paychan node: HTTP + JSON on 127.0.0.1. Every `/v1/` \
            request but this document needs `Authorization: Bearer <token>`, the token being the \
            contents of `api.token` in the node's data dir. Every error answer is \
            `{\"error\": <message>, \"code\": <code>}`. Amounts are integers of the ledger's unit \
            (`GET /v1/ledger/status`), times `*_ms` milliseconds since the Unix epoch (ledger time \
            where the field says so).",
    ),
    modifiers(&BearerToken),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Declares the bearer token every operation needs.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new("token", Vec::<String>::new())]);
    }
}

/// The OpenAPI 3.1 document of the control API (`GET /v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let mut doc = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/v1", v1_routes())
        .routes(routes!(metrics))
        .split_for_parts()
        .1;
    // The token guards every `/v1/` path but this document, the raw routes (shared with the
    // public listener, which has no token) included.
    let unauthorized = ResponseBuilder::new()
        .description("missing or wrong bearer token")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") || path == "/v1/openapi.json" {
            continue;
        }
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            op.responses
                .responses
                .entry("401".into())
                .or_insert_with(|| unauthorized.clone().into());
        }
    }
    doc
}

fn router(state: AppState) -> Router {
    let (v1, _) = v1_routes().split_for_parts();
    let v1 = v1
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // The token check wraps the whole app, fallback included: `nest` does not route `/v1/`
    // itself, which would otherwise answer 404 without a token. Only `/metrics` and the API's
    // description are open: neither carries a secret.
    Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/metrics" | "/v1/openapi.json") {
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

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// One of `bad_request`, `unauthorized`, `not_found`, `method_not_allowed`, `refused`,
    /// `violation`, `busy`, `internal`, `unavailable`, `timeout`.
    pub code: String,
}

/// A unit of account: its name and the symbol printed after an amount.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    /// e.g. `credit`.
    pub name: String,
    /// e.g. `cr`.
    pub symbol: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
                code: self.code.to_owned(),
            }),
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

/// `GET /v1/info`: who this node is and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct InfoView {
    /// Identity and ledger position.
    #[serde(flatten)]
    node: crate::node::NodeInfo,
    /// `http://ADDR` of the public read listener, if the node runs one.
    public_url: Option<String>,
    /// `http://ADDR` of this API.
    api_url: String,
    /// The node's version.
    version: String,
    /// Peers connected now (null while the network is stopping).
    peers_connected: Option<usize>,
    /// Channels by status (`open`, `closing`, `closed`, ...).
    channels: std::collections::BTreeMap<String, u64>,
    /// This node's balance on the ledger.
    balance_ledger: u64,
    /// This node's balance in channels not yet closed.
    balance_in_channels: u64,
    /// The ledger's unit.
    unit: UnitView,
}

/// Identity, addresses, ledger position, peers, channels by status and balances: the
/// `getinfo` of this node.
#[utoipa::path(get, path = "/info", tag = "node", responses((status = 200, body = InfoView), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 400, description = "a malformed request", body = ErrorBody)))]
async fn info(State(s): State<AppState>) -> Result<Json<InfoView>, ApiError> {
    let node = s.node.info();
    let account = parse_key(&node.account)?;
    let balance = s.node.with_ledger(|l| l.balance(&account));
    // Peers and channels are best effort: a node whose network or manager is stopping still
    // tells who it is.
    let peers = s.node.net().connected_peers().await.ok().map(|p| p.len());
    let totals = s.node.channels().totals().await.unwrap_or_default();
    let unit = &s.node.genesis().unit;
    Ok(Json(InfoView {
        node,
        public_url: s.public_url.as_deref().map(str::to_owned),
        api_url: format!("http://{}", s.api_addr),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        peers_connected: peers,
        channels: totals.by_status,
        balance_ledger: balance,
        balance_in_channels: totals.balance_not_closed,
        unit: UnitView {
            name: unit.name.clone(),
            symbol: unit.symbol.clone(),
        },
    }))
}

/// A connected peer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerView {
    /// libp2p peer id.
    peer_id: String,
    /// Its ledger account (hex), when its peer id holds an ed25519 key.
    account: Option<String>,
}

/// The peers connected now.
#[utoipa::path(get, path = "/peers", tag = "node", responses((status = 200, body = Vec<PeerView>), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody)))]
async fn peers(State(s): State<AppState>) -> Result<Json<Vec<PeerView>>, ApiError> {
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
            PeerView {
                peer_id: p.to_string(),
                account,
            }
        })
        .collect();
    Ok(Json(list))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    /// `/ip4/../tcp/../p2p/<peer id>`.
    addr: String,
}

/// How long a connect waits for the connection.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A peer connected by `POST /v1/peers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectedView {
    /// Its peer id.
    peer_id: String,
    /// The address dialled.
    addr: String,
    /// Always true: a failed dial is an error.
    connected: bool,
}

/// Dials a peer and keeps it connected from now on (as a bootstrap peer). The CLI writes it
/// into `config.toml` so that the next start dials it too.
#[utoipa::path(post, path = "/peers", tag = "node", request_body = ConnectBody,
    responses((status = 200, body = ConnectedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody), (status = 504, description = "no connection in 10 s", body = ErrorBody)))]
async fn connect_peer(
    State(s): State<AppState>,
    body: Result<Json<ConnectBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ConnectedView>, ApiError> {
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
    Ok(Json(ConnectedView {
        peer_id: peer.to_string(),
        addr: addr.to_string(),
        connected: true,
    }))
}

/// The replica's ledger position, the supply and the unit.
#[utoipa::path(get, path = "/ledger/status", tag = "ledger", responses((status = 200, body = crate::node::LedgerStatus), (status = 401, description = "missing or wrong bearer token", body = ErrorBody)))]
async fn ledger_status(State(s): State<AppState>) -> Json<crate::node::LedgerStatus> {
    Json(s.node.ledger_status())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct BlocksQuery {
    /// First height (default: the newest `limit` blocks).
    from: Option<u64>,
    /// Most blocks (default 20, at most 256).
    limit: Option<usize>,
}

/// A block as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct TxView {
    id: String,
    /// `transfer`, `open`, `deposit`, `coop_close`, `unilateral_close`, `update`, `settle`,
    /// `credit_grant` or `repay`.
    #[schema(value_type = String)]
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

/// Blocks with their transactions, oldest first.
#[utoipa::path(get, path = "/ledger/blocks", tag = "ledger", params(BlocksQuery),
    responses((status = 200, body = Vec<BlockView>), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
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

/// The newest checkpoint this node holds, judged against the genesis witnesses.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    height: u64,
    log_size: u64,
    log_root: String,
    block_hash: String,
    /// The witnesses whose cosignatures this node holds (hex keys).
    cosigners: Vec<String>,
    /// Enough distinct witnesses cosigned it.
    witnessed: bool,
    /// The sequencer's signature and every cosignature held are valid.
    valid: bool,
    /// The C2SP signed note with its cosignatures.
    note: String,
}

/// The newest checkpoint (`null` before the first).
#[utoipa::path(get, path = "/ledger/checkpoint", tag = "ledger",
    responses((status = 200, body = Option<CheckpointView>), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
async fn checkpoint(State(s): State<AppState>) -> Result<Json<Option<CheckpointView>>, ApiError> {
    let cp = s
        .node
        .store()
        .latest_checkpoint()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(cp) = cp else {
        return Ok(Json(None));
    };
    let status = paychan_ledger::verify_checkpoint(s.node.genesis(), &cp);
    let c = &cp.checkpoint;
    Ok(Json(Some(CheckpointView {
        height: c.height,
        log_size: c.log_size,
        log_root: c.log_root.to_hex(),
        block_hash: c.block_hash.to_hex(),
        cosigners: cp.cosignatures.iter().map(|c| c.witness.to_hex()).collect(),
        witnessed: status.as_ref().map(|s| s.witnessed).unwrap_or(false),
        valid: status.is_ok(),
        note: cp.to_note(&s.node.genesis().sequencer),
    })))
}

fn parse_key(s: &str) -> Result<PublicKey, ApiError> {
    PublicKey::from_hex(s).map_err(|_| bad_request("an account is 64 hex characters"))
}

/// An account on the ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// The account (hex key).
    account: String,
    /// Its balance.
    balance: u64,
    /// Its next nonce.
    nonce: u64,
}

/// An account's balance and nonce (an unknown account has both 0).
#[utoipa::path(get, path = "/accounts/{key}", tag = "ledger",
    params(("key" = String, Path, description = "the account, 64 hex characters")),
    responses((status = 200, body = AccountView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody)))]
async fn account(State(s): State<AppState>, Path(key): Path<String>) -> Result<Json<AccountView>, ApiError> {
    let key = parse_key(&key)?;
    let (balance, nonce) = s.node.with_ledger(|l| (l.balance(&key), l.nonce(&key)));
    Ok(Json(AccountView {
        account: key.to_hex(),
        balance,
        nonce,
    }))
}

#[derive(Deserialize, ToSchema)]
struct TransferBody {
    to: String,
    amount: u64,
}

/// A transaction handed to the sequencer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmittedView {
    /// Its id.
    tx_id: String,
    /// `accepted`, `already_pending` or `already_included`.
    #[schema(value_type = String)]
    status: &'static str,
}

fn submitted(
    r: Result<(paychan_protocol::Hash32, paychan_protocol::wire::SubmitStatus), SubmitError>,
) -> Result<Json<SubmittedView>, ApiError> {
    match r {
        Ok((id, status)) => Ok(Json(SubmittedView {
            tx_id: id.to_hex(),
            status: submit_status_text(status),
        })),
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

/// Signs a transfer from this node's account and submits it.
#[utoipa::path(post, path = "/transfer", tag = "ledger", request_body = TransferBody,
    responses((status = 200, body = SubmittedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 422, description = "the ledger rules refuse it", body = ErrorBody), (status = 429, description = "too many pending transactions of this account", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody)))]
async fn transfer(
    State(s): State<AppState>,
    body: Result<Json<TransferBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SubmittedView>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let to = parse_key(&body.to)?;
    if body.amount == 0 {
        return Err(bad_request("amount must be positive"));
    }
    submitted(s.node.transfer(to, body.amount).await)
}

#[derive(Deserialize, ToSchema)]
struct TxBody {
    /// Hex of the canonical transaction bytes.
    tx: String,
}

/// Submits a transaction signed elsewhere (its canonical bytes, PROTOCOL.md 5.3).
#[utoipa::path(post, path = "/tx", tag = "ledger", request_body = TxBody,
    responses((status = 200, body = SubmittedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 422, description = "the ledger rules refuse it", body = ErrorBody), (status = 429, description = "too many pending transactions of this account", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody)))]
async fn submit_tx(
    State(s): State<AppState>,
    body: Result<Json<TxBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SubmittedView>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let bytes = hex::decode(&body.tx).map_err(|_| bad_request("tx is not hex"))?;
    let tx =
        <Tx as paychan_protocol::Wire>::from_bytes(&bytes).map_err(|e| bad_request(format!("tx: {e}")))?;
    submitted(s.node.submit(tx).await)
}

/// Where a transaction is.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxStatusView {
    tx_id: String,
    /// `pending`, `in_block` or `witnessed`.
    #[schema(value_type = String)]
    status: &'static str,
    /// The block that holds it (null while pending).
    height: Option<u64>,
    /// That block's hash.
    block_hash: Option<String>,
    /// That block's ledger time.
    block_time_ms: Option<u64>,
    /// Its index in the transaction log.
    log_index: Option<u64>,
    /// Its kind, as in `TxView`.
    #[schema(value_type = Option<String>)]
    kind: Option<&'static str>,
    /// A witnessed checkpoint covers its block.
    witnessed: bool,
}

/// Where a transaction is: `pending` (in this node's mempool), `in_block` (with its height), or
/// `witnessed` (in a block covered by a witnessed checkpoint); 404 if this node knows nothing
/// of it.
#[utoipa::path(get, path = "/tx/{id}", tag = "ledger",
    params(("id" = String, Path, description = "the transaction id, 64 hex characters")),
    responses((status = 200, body = TxStatusView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 404, description = "not in the ledger and not pending here", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
async fn tx_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TxStatusView>, ApiError> {
    let id = paychan_protocol::Hash32::from_hex(&id)
        .map_err(|_| bad_request("a transaction id is 64 hex characters"))?;
    let (index, tip) = s.node.with_ledger(|l| (l.tx_log_index(&id), l.height()));
    let Some(index) = index else {
        if s.node.is_pending(&id) {
            return Ok(Json(TxStatusView {
                tx_id: id.to_hex(),
                status: "pending",
                height: None,
                block_hash: None,
                block_time_ms: None,
                log_index: None,
                kind: None,
                witnessed: false,
            }));
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
    Ok(Json(TxStatusView {
        tx_id: id.to_hex(),
        status: if witnessed { "witnessed" } else { "in_block" },
        height: Some(lo),
        block_hash: Some(block.header.hash().to_hex()),
        block_time_ms: Some(block.header.time_ms),
        log_index: Some(index),
        kind,
        witnessed,
    }))
}

/// The node's metrics in the OpenMetrics text format (no token needed).
#[utoipa::path(get, path = "/metrics", tag = "node", security(()),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
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
/// A channel as `GET /v1/channels` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelEntry {
    /// The manager's view.
    #[serde(flatten)]
    view: paychan_client::ChannelView,
    /// The counterparty's peer id.
    counterparty_peer_id: Option<String>,
    /// While a unilateral close's challenge window runs: its end, in ledger time.
    window_end_ms: Option<u64>,
    /// While a window runs: the ledger time now.
    ledger_time_ms: Option<u64>,
}

#[utoipa::path(get, path = "/channels", tag = "channels",
    responses((status = 200, body = Vec<ChannelEntry>), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody)))]
async fn list_channels(State(s): State<AppState>) -> Result<Json<Vec<ChannelEntry>>, ApiError> {
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
        out.push(ChannelEntry {
            view: c,
            counterparty_peer_id: peer,
            window_end_ms: window.map(|w| w.0),
            ledger_time_ms: window.map(|w| w.1),
        });
    }
    Ok(Json(out))
}

#[derive(Deserialize, ToSchema)]
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

/// A channel opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenedView {
    /// Its id.
    channel_id: String,
}

/// Negotiates a channel with a peer and waits until the ledger includes its open.
#[utoipa::path(post, path = "/channels", tag = "channels", request_body = OpenBody,
    responses((status = 200, body = OpenedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 422, description = "refused by the channel's rules, or a violation by the peer (code `violation`)", body = ErrorBody), (status = 429, description = "too many requests in flight", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody), (status = 504, description = "not done in time", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
async fn open_channel(
    State(s): State<AppState>,
    body: Result<Json<OpenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<OpenedView>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let key = parse_peer(&body.peer)?;
    let id = s
        .node
        .channels()
        .open(key, body.deposit, body.their_deposit)
        .await
        .map_err(manager_error)?;
    Ok(Json(OpenedView {
        channel_id: id.to_string(),
    }))
}

#[derive(Deserialize, ToSchema)]
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

/// Fails with the manager's 404 unless this node has channel `id`.
async fn known_channel(s: &AppState, id: paychan_protocol::ChannelId) -> Result<(), ApiError> {
    let list = s.node.channels().list().await.map_err(manager_error)?;
    if list.iter().any(|c| c.id == id.to_string()) {
        Ok(())
    } else {
        Err(manager_error(paychan_client::ManagerError::UnknownChannel(id)))
    }
}

/// Makes `count` payments of `amount`, `per_proof` to a signed proof, and answers once the
/// payee acknowledged every proof.
#[utoipa::path(post, path = "/channels/{id}/pay", tag = "channels", request_body = PayBody,
    params(("id" = String, Path, description = "the channel id, 64 hex characters")),
    responses((status = 200, body = paychan_client::PayStats), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 404, description = "no such channel", body = ErrorBody), (status = 422, description = "refused by the channel's rules, or a violation by the peer (code `violation`)", body = ErrorBody), (status = 429, description = "too many requests in flight", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
async fn pay_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<PayBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<paychan_client::PayStats>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let id = parse_channel(&id)?;
    let per_proof_max = paychan_protocol::limits::MEMO_PAYMENTS_MAX;
    if body.amount == 0
        || body.count == 0
        || body.count > API_PAY_COUNT_MAX
        || !(1..=per_proof_max).contains(&body.per_proof)
    {
        // An unknown channel is the first thing wrong with a payment on it.
        known_channel(&s, id).await?;
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
    Ok(Json(stats))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PaymentsQuery {
    /// The first proof seq listed (default 0).
    #[serde(default)]
    from_seq: u64,
    /// Most payments (default 100, at most 10,000).
    #[serde(default = "payments_page")]
    limit: usize,
}

fn payments_page() -> usize {
    100
}

/// The payments received on a channel, one entry per payment (a proof carries 1 to 64), in
/// seq and memo order: `?from_seq=S&limit=N` (at most 10,000).
#[utoipa::path(get, path = "/channels/{id}/payments", tag = "channels", params(
        ("id" = String, Path, description = "the channel id, 64 hex characters"), PaymentsQuery),
    responses((status = 200, body = Vec<paychan_client::ReceivedPayment>), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 404, description = "no such channel", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
async fn channel_payments(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PaymentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<paychan_client::ReceivedPayment>>, ApiError> {
    let id = parse_channel(&id)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    known_channel(&s, id).await?;
    let payments = s
        .node
        .channels()
        .payments(id, q.from_seq, q.limit)
        .map_err(manager_error)?;
    Ok(Json(payments))
}

#[derive(Deserialize, ToSchema)]
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

/// A close, done or under way.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedView {
    channel_id: String,
    /// The ledger paid the channel out.
    closed: bool,
    /// With `wait: false`: the channel's status when the answer was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

/// Closes a channel: cooperatively (both sign the final balances), or with `force` unilaterally
/// (the newest proofs, then the challenge window). No body is a cooperative close that waits for
/// the payout.
#[utoipa::path(post, path = "/channels/{id}/close", tag = "channels",
    request_body(content = Option<CloseBody>, description = "optional"),
    params(("id" = String, Path, description = "the channel id, 64 hex characters")),
    responses((status = 200, body = ClosedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 404, description = "no such channel", body = ErrorBody), (status = 422, description = "refused by the channel's rules, or a violation by the peer (code `violation`)", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody), (status = 504, description = "the cooperative close expired: the peer did not answer (try `force`)", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
async fn close_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ClosedView>, ApiError> {
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
                    return Ok(Json(ClosedView { channel_id: id.to_string(), closed: true, status: Some("closed".into()) }));
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
                return Ok(Json(ClosedView {
                    channel_id: id.to_string(),
                    closed: false,
                    status: Some(status),
                }));
            }
        }
    }
    s.node.channels().close(id, force).await.map_err(manager_error)?;
    Ok(Json(ClosedView {
        channel_id: id.to_string(),
        closed: true,
        status: None,
    }))
}

/// Settlements that ignored an update this node held and the sequencer could have included.
#[utoipa::path(get, path = "/censorship", tag = "node",
    responses((status = 200, body = Vec<crate::evidence::CensorshipReport>), (status = 401, description = "missing or wrong bearer token", body = ErrorBody)))]
async fn censorship(State(s): State<AppState>) -> Json<Vec<crate::evidence::CensorshipReport>> {
    Json(s.node.censorship_reports())
}

/// `GET /v1/alarms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmsView {
    split_views: Vec<crate::node::SplitViewReport>,
    double_blocks: Vec<crate::node::DoubleBlockReport>,
    /// On a witness, the newest checkpoint it cosigned.
    cosigned: Option<crate::node::CheckpointReport>,
}

/// Alarms this node raised: split views of the sequencer (two inconsistent signed checkpoints),
/// each with the reason and both signed notes; and, on a witness, the newest checkpoint it
/// cosigned (`null` if none).
#[utoipa::path(get, path = "/alarms", tag = "node", responses((status = 200, body = AlarmsView), (status = 401, description = "missing or wrong bearer token", body = ErrorBody)))]
async fn alarms(State(s): State<AppState>) -> Json<AlarmsView> {
    Json(AlarmsView {
        split_views: s.node.split_views(),
        double_blocks: s.node.double_blocks(),
        cosigned: s.node.cosigned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn the_openapi_document_covers_every_endpoint_and_resolves() {
        let doc = serde_json::to_value(super::openapi()).expect("serialises");
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().expect("paths");
        let mut ops: Vec<String> = paths
            .iter()
            .flat_map(|(p, item)| {
                item.as_object()
                    .expect("path item")
                    .keys()
                    .map(move |m| format!("{} {p}", m.to_uppercase()))
            })
            .collect();
        ops.sort();
        let want = [
            "GET /metrics",
            "GET /v1/accounts/{key}",
            "GET /v1/alarms",
            "GET /v1/censorship",
            "GET /v1/channels",
            "GET /v1/channels/{id}/payments",
            "GET /v1/credit",
            "GET /v1/credit/score/{key}",
            "GET /v1/info",
            "GET /v1/ledger/blocks",
            "GET /v1/ledger/checkpoint",
            "GET /v1/ledger/raw/blocks",
            "GET /v1/ledger/raw/checkpoint",
            "GET /v1/ledger/raw/checkpoints",
            "GET /v1/ledger/raw/genesis",
            "GET /v1/ledger/raw/proof/consistency",
            "GET /v1/ledger/raw/proof/inclusion",
            "GET /v1/ledger/status",
            "GET /v1/openapi.json",
            "GET /v1/peers",
            "GET /v1/tx/{id}",
            "POST /v1/channels",
            "POST /v1/channels/{id}/close",
            "POST /v1/channels/{id}/pay",
            "POST /v1/credit/grant",
            "POST /v1/credit/repay",
            "POST /v1/peers",
            "POST /v1/transfer",
            "POST /v1/tx",
        ];
        assert_eq!(ops, want);
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").expect("a schema ref");
            assert!(schemas.contains_key(name), "unresolved {r}");
        }
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("item") {
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.contains_key("200"), "{method} {path}: no 200");
                let open = matches!(path.as_str(), "/metrics" | "/v1/openapi.json");
                // A token-guarded endpoint documents its 401, and every error it lists is an
                // ErrorBody.
                assert_eq!(responses.contains_key("401"), !open, "{method} {path}");
                for (code, r) in responses {
                    if code.starts_with('4') || code.starts_with('5') {
                        let schema = &r["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {code}");
                    }
                }
                let has_body = op.get("requestBody").is_some();
                assert_eq!(has_body, method == "post", "{method} {path}: request body");
            }
        }
    }
}

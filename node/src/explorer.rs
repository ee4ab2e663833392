//! The explorer's JSON views on the public listener (`/explorer/...`), read by the page
//! `node/explorer/` that the listener serves at `/`.
//!
//! Nothing here is signed: the page checks what it shows against the checkpoint note
//! (`/tlog/checkpoint`) and the inclusion proofs (`/ledger/proof/inclusion`), under keys its
//! user pinned. These views only say where to look and decode what the bytes say.
//!
//! - `/explorer/info`: the chain (genesis parameters, unit, verifier keys as the node announces
//!   them), this node (role, height) and its alarms (split views, double blocks);
//! - `/explorer/block/<height>`: a block's header, signature and transactions, each decoded
//!   with its canonical bytes in hex;
//! - `/explorer/tx/<id>`: one transaction, its block and its index in the log;
//! - `/explorer/account/<key>`: balance, nonce and the newest transactions naming the account;
//! - `/explorer/channels`: the ledger's channels with their status, the time left in a
//!   closing channel's window and a settled channel's payouts;
//! - `/explorer/metrics`: the node's figures, the same that `/metrics` publishes;
//! - `/explorer/peers`: the peers connected now, with their roles;
//! - `/explorer/find/<hex>`: whether 64 hex digits name a transaction or an account;
//! - `/explorer/testnet`: the nodes of this node's testnet (`testnet.json`), if any.
//!
//! Every answer carries `Access-Control-Allow-Origin: *`: the testnet view of one node's page
//! reads the other nodes' `/explorer/info` and `/explorer/peers`.

use axum::extract::{FromRef, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use paychan_ledger::{ChannelStatus, LedgerState};
use paychan_protocol::{Block, Hash32, PublicKey, SignedProof, Tx};
use serde_json::{json, Value};

use crate::node::NodeHandle;

/// Blocks an account's history scans back from the tip.
pub const ACCOUNT_SCAN_BLOCKS: u64 = 4096;
/// Most history entries an account view holds.
pub const ACCOUNT_HISTORY_MAX: usize = 100;
/// Most channels `/explorer/channels` lists.
pub const CHANNELS_MAX: usize = 512;

/// An error of an explorer view: a status and a reason, as JSON `{"error": ...}`.
#[derive(Debug, thiserror::Error)]
pub enum ExplorerError {
    /// No such block, transaction or path.
    #[error("{0}")]
    NotFound(String),
    /// A malformed height, id or key.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

impl IntoResponse for ExplorerError {
    fn into_response(self) -> Response {
        let status = match self {
            ExplorerError::NotFound(_) => StatusCode::NOT_FOUND,
            ExplorerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ExplorerError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut r = json_response(json!({ "error": self.to_string() }));
        *r.status_mut() = status;
        r
    }
}

fn store_err(e: paychan_store::StoreError) -> ExplorerError {
    ExplorerError::Store(e.to_string())
}

/// A JSON answer that no cache keeps.
pub fn json_response(v: Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        v.to_string(),
    )
        .into_response()
}

/// The explorer's JSON routes.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    NodeHandle: FromRef<S>,
    TestnetFile: FromRef<S>,
{
    Router::new()
        .route("/explorer/info", get(info))
        .route("/explorer/block/{height}", get(block))
        .route("/explorer/tx/{id}", get(tx))
        .route("/explorer/account/{key}", get(account))
        .route("/explorer/channels", get(channels))
        .route("/explorer/metrics", get(metrics))
        .route("/explorer/peers", get(peers))
        .route("/explorer/find/{hex}", get(find))
        .route("/explorer/testnet", get(testnet))
}

/// The file `paychan testnet up` and `start` write into every node's data dir: the testnet's
/// nodes with their roles and public URLs.
pub const TESTNET_FILE: &str = "testnet.json";
/// Most bytes of `testnet.json` read.
const TESTNET_FILE_MAX: u64 = 1 << 20;

/// Where this node's `testnet.json` is.
#[derive(Clone, Debug)]
pub struct TestnetFile(pub std::sync::Arc<std::path::PathBuf>);

/// `/explorer/testnet`: the nodes of the testnet this node belongs to (`testnet.json`), or an
/// empty list when it is not a testnet node.
async fn testnet(State(file): State<TestnetFile>) -> Result<Response, ExplorerError> {
    use std::io::Read;
    let text = tokio::task::spawn_blocking(move || -> std::io::Result<Option<String>> {
        let f = match std::fs::File::open(file.0.as_path()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut s = String::new();
        f.take(TESTNET_FILE_MAX).read_to_string(&mut s)?;
        Ok(Some(s))
    })
    .await
    .map_err(|e| ExplorerError::Store(e.to_string()))?
    .map_err(|e| ExplorerError::Store(format!("{TESTNET_FILE}: {e}")))?;
    let nodes = match text {
        None => Value::Array(Vec::new()),
        Some(t) => serde_json::from_str::<Value>(&t)
            .ok()
            .filter(Value::is_array)
            .ok_or_else(|| ExplorerError::Store(format!("{TESTNET_FILE} is not a JSON list")))?,
    };
    Ok(json_response(json!({ "nodes": nodes })))
}

/// `/explorer/find/<hex>`: what 64 hex digits name, for the page's search box (so that it asks
/// no view that would answer 404): `{"kind": "tx"}` for a transaction of the log, otherwise
/// `{"kind": "account"}` (every key is an account, most with nothing).
async fn find(State(node): State<NodeHandle>, Path(hex): Path<String>) -> Result<Response, ExplorerError> {
    let h = Hash32::from_hex(&hex).map_err(|_| ExplorerError::BadRequest("give 64 hex characters".into()))?;
    let kind = if node.with_ledger(|l| l.contains_tx(&h)) {
        "tx"
    } else {
        "account"
    };
    Ok(json_response(json!({ "kind": kind })))
}

/// `/explorer/peers`: the peers this node is connected to now, each with the role its key has
/// in the genesis (a peer id is an account key).
async fn peers(State(node): State<NodeHandle>) -> Response {
    let g = node.genesis();
    let list = node.net().connected_peers().await.unwrap_or_default();
    let peers: Vec<Value> = list
        .iter()
        .map(|p| {
            let key = paychan_net::public_key_from_peer_id(p);
            let role = match key {
                Some(k) if k == g.sequencer => "sequencer",
                Some(k) if g.witnesses.contains(&k) => "witness",
                Some(_) => "replica",
                None => "unknown",
            };
            json!({ "peer_id": p.to_string(), "account": key.map(|k| k.to_hex()), "role": role })
        })
        .collect();
    json_response(json!({ "peers": peers }))
}

/// The node's figures ([`crate::metrics::figures`]), the ones `/metrics` publishes.
async fn metrics(State(node): State<NodeHandle>) -> Response {
    let f = crate::metrics::figures(&node).await;
    json_response(serde_json::to_value(f).unwrap_or_default())
}

/// A transaction's variant name (PROTOCOL.md 5.11).
pub fn tx_kind(tx: &Tx) -> &'static str {
    match tx {
        Tx::Transfer { .. } => "Transfer",
        Tx::Open(_) => "Open",
        Tx::Deposit { .. } => "Deposit",
        Tx::CoopClose(_) => "CoopClose",
        Tx::UnilateralClose { .. } => "UnilateralClose",
        Tx::Update(_) => "Update",
        Tx::Settle(_) => "Settle",
        Tx::CreditGrant { .. } => "CreditGrant",
        Tx::Repay { .. } => "Repay",
    }
}

fn proof_json(p: &Option<SignedProof>) -> Value {
    match p {
        None => Value::Null,
        Some(p) => json!({
            "seq": p.proof.seq,
            "transferred": p.proof.transferred,
            "proof_hash": p.proof.hash().to_hex(),
        }),
    }
}

/// The decoded fields of a transaction (keys and hashes in hex, amounts in the ledger's
/// smallest unit, times in ms of ledger time).
pub fn tx_fields(tx: &Tx) -> Value {
    match tx {
        Tx::Transfer { body, .. } => json!({
            "from": body.from.to_hex(), "to": body.to.to_hex(),
            "amount": body.amount, "nonce": body.nonce,
        }),
        Tx::Open(o) => json!({
            "channel": o.open.channel_id().to_string(),
            "party_a": o.open.party_a.to_hex(), "party_b": o.open.party_b.to_hex(),
            "deposit_a": o.open.deposit_a, "deposit_b": o.open.deposit_b,
            "expiry_ms": o.open.expiry_ms,
        }),
        Tx::Deposit { body, .. } => json!({
            "channel": body.channel_id.to_string(), "from": body.from.to_hex(),
            "amount": body.amount, "nonce": body.nonce,
        }),
        Tx::CoopClose(c) => json!({
            "channel": c.close.channel_id.to_string(),
            "balance_a": c.close.balance_a, "balance_b": c.close.balance_b,
        }),
        Tx::UnilateralClose { body, .. } => json!({
            "channel": body.channel_id.to_string(), "closer": body.closer.to_hex(),
            "proof_ab": proof_json(&body.proof_ab), "proof_ba": proof_json(&body.proof_ba),
        }),
        Tx::Update(u) => json!({
            "channel": u.channel_id.to_string(),
            "proof_ab": proof_json(&u.proof_ab), "proof_ba": proof_json(&u.proof_ba),
        }),
        Tx::Settle(s) => json!({ "channel": s.channel_id.to_string() }),
        Tx::CreditGrant { body, .. } => json!({
            "channel": body.channel_id.to_string(),
            "creditor": body.creditor.to_hex(), "debtor": body.debtor.to_hex(),
            "limit": body.limit, "expiry_ms": body.expiry_ms, "due_ms": body.due_ms,
            "nonce": body.nonce,
        }),
        Tx::Repay { body, .. } => json!({
            "channel": body.channel_id.to_string(), "from": body.from.to_hex(),
            "amount": body.amount, "nonce": body.nonce,
        }),
    }
}

/// A transaction as the explorer shows it: id, kind, decoded fields and canonical bytes.
pub fn tx_json(tx: &Tx) -> Value {
    let bytes = tx.bytes();
    json!({
        "id": tx.id().to_hex(),
        "kind": tx_kind(tx),
        "bytes": bytes.len(),
        "hex": hex::encode(&bytes),
        "fields": tx_fields(tx),
    })
}

/// The accounts a transaction names: a transfer's two ends, and the parties of the channel any
/// other kind concerns (as the ledger knows the channel now).
pub fn tx_accounts(tx: &Tx, ledger: &LedgerState) -> Vec<PublicKey> {
    let mut out = match tx {
        Tx::Transfer { body, .. } => vec![body.from, body.to],
        Tx::Open(o) => vec![o.open.party_a, o.open.party_b],
        _ => Vec::new(),
    };
    if let Some(c) = tx.channel_id().and_then(|id| ledger.channel(&id).cloned()) {
        out.extend([c.party_a, c.party_b]);
    }
    out.sort();
    out.dedup();
    out
}

/// What live (open or closing) channels lock: the sum of their deposits.
pub fn value_locked(l: &LedgerState) -> u64 {
    l.channels()
        .filter(|(_, c)| c.is_live())
        .fold(0u64, |a, (_, c)| a.saturating_add(c.total()))
}

fn header_json(b: &Block) -> Value {
    let h = &b.header;
    json!({
        "height": h.height,
        "hash": h.hash().to_hex(),
        "prev_hash": h.prev_hash.to_hex(),
        "time_ms": h.time_ms,
        "tx_root": h.tx_root.to_hex(),
        "log_size": h.log_size,
        "log_root": h.log_root.to_hex(),
        "state_root": h.state_root.to_hex(),
        "signature": b.signature.to_hex(),
    })
}

async fn info(State(node): State<NodeHandle>) -> Response {
    let g = node.genesis();
    let (height, time_ms, log_size, value_locked) =
        node.with_ledger(|l| (l.height(), l.time_ms(), l.log_size(), value_locked(l)));
    // Best effort: a store that fails here only hides the checkpoint's height.
    let checkpoint = node.store().latest_checkpoint().ok().flatten();
    let me = node.info();
    let split_views = node.split_views();
    let double_blocks = node.double_blocks();
    json_response(json!({
        "chain_id": g.chain_id().to_hex(),
        "network": g.network,
        "unit": { "name": g.unit.name, "symbol": g.unit.symbol },
        "sequencer": g.sequencer.to_hex(),
        "witnesses": g.witnesses.iter().map(PublicKey::to_hex).collect::<Vec<_>>(),
        "witness_threshold": g.witness_threshold,
        "challenge_period_ms": g.challenge_period_ms,
        "block_interval_ms": g.block_interval_ms,
        "log_key": paychan_protocol::note::log_verifier_key(g),
        "witness_keys": g.witnesses.iter()
            .map(|w| paychan_protocol::note::witness_verifier_key(g, w)).collect::<Vec<_>>(),
        "node": { "account": me.account, "peer_id": me.peer_id, "role": me.role },
        "height": height,
        "time_ms": time_ms,
        "log_size": log_size,
        "value_locked": value_locked,
        "checkpoint_height": checkpoint.map(|c| c.checkpoint.height),
        "alarms": {
            "split_views": split_views.iter().map(|s| json!({
                "reason": s.reason,
                "first": { "height": s.first.height, "block_hash": s.first.block_hash },
                "second": { "height": s.second.height, "block_hash": s.second.block_hash },
            })).collect::<Vec<_>>(),
            "double_blocks": double_blocks.iter().map(|d| json!({
                "height": d.height, "first_hash": d.first_hash, "second_hash": d.second_hash,
            })).collect::<Vec<_>>(),
        },
    }))
}

fn one_block(node: &NodeHandle, height: u64) -> Result<Block, ExplorerError> {
    let mut blocks = node.store().blocks(height, 1).map_err(store_err)?;
    match blocks.pop() {
        Some(b) if b.header.height == height => Ok(b),
        _ => Err(ExplorerError::NotFound(format!("no block at height {height}"))),
    }
}

async fn block(
    State(node): State<NodeHandle>,
    Path(height): Path<String>,
) -> Result<Response, ExplorerError> {
    let height: u64 = height
        .parse()
        .ok()
        .filter(|h| *h >= 1)
        .ok_or_else(|| ExplorerError::BadRequest("a height is a decimal number from 1".into()))?;
    let b = tokio::task::spawn_blocking(move || one_block(&node, height))
        .await
        .map_err(|e| ExplorerError::Store(e.to_string()))??;
    let mut v = header_json(&b);
    v["txs"] = b.txs.iter().map(tx_json).collect();
    Ok(json_response(v))
}

/// The height of the block holding log entry `index` (`index < log_size`): the lowest block
/// whose `log_size` exceeds it, by bisection over the stored headers.
fn block_of_index(node: &NodeHandle, index: u64, tip: u64) -> Result<Block, ExplorerError> {
    let (mut lo, mut hi) = (1u64, tip);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if one_block(node, mid)?.header.log_size > index {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    one_block(node, lo)
}

async fn tx(State(node): State<NodeHandle>, Path(id): Path<String>) -> Result<Response, ExplorerError> {
    let id = Hash32::from_hex(&id)
        .map_err(|_| ExplorerError::BadRequest("a transaction id is 64 hex characters".into()))?;
    let (index, tip) = node.with_ledger(|l| (l.tx_log_index(&id), l.height()));
    let index = index.ok_or_else(|| ExplorerError::NotFound(format!("no transaction {id} in the log")))?;
    let b = tokio::task::spawn_blocking(move || block_of_index(&node, index, tip))
        .await
        .map_err(|e| ExplorerError::Store(e.to_string()))??;
    let t =
        b.txs.iter().find(|t| t.id() == id).ok_or_else(|| {
            ExplorerError::Store(format!("block {} lacks transaction {id}", b.header.height))
        })?;
    let mut v = tx_json(t);
    v["height"] = b.header.height.into();
    v["block_hash"] = b.header.hash().to_hex().into();
    v["time_ms"] = b.header.time_ms.into();
    v["index"] = index.into();
    Ok(json_response(v))
}

async fn account(State(node): State<NodeHandle>, Path(key): Path<String>) -> Result<Response, ExplorerError> {
    let key = PublicKey::from_hex(&key)
        .map_err(|_| ExplorerError::BadRequest("an account is 64 hex characters".into()))?;
    let (balance, nonce, tip) = node.with_ledger(|l| (l.balance(&key), l.nonce(&key), l.height()));
    let history = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, ExplorerError> {
        let mut out = Vec::new();
        let mut hi = tip;
        let low = tip.saturating_sub(ACCOUNT_SCAN_BLOCKS).max(1);
        while hi >= low && out.len() < ACCOUNT_HISTORY_MAX {
            let from = hi.saturating_sub(63).max(low);
            let blocks = node
                .store()
                .blocks(from, (hi - from + 1) as usize)
                .map_err(store_err)?;
            for b in blocks.iter().rev() {
                for t in b.txs.iter().rev() {
                    let named = node.with_ledger(|l| tx_accounts(t, l)).contains(&key);
                    if named && out.len() < ACCOUNT_HISTORY_MAX {
                        let mut v = json!({
                            "id": t.id().to_hex(),
                            "kind": tx_kind(t),
                            "height": b.header.height,
                            "time_ms": b.header.time_ms,
                            "fields": tx_fields(t),
                        });
                        if let Tx::Transfer { body, .. } = t {
                            let delta = if body.from == key && body.to == key {
                                0
                            } else if body.from == key {
                                -i128::from(body.amount)
                            } else {
                                i128::from(body.amount)
                            };
                            v["amount_delta"] = json!(delta as i64);
                        }
                        out.push(v);
                    }
                }
            }
            if from == low {
                break;
            }
            hi = from - 1;
        }
        Ok(out)
    })
    .await
    .map_err(|e| ExplorerError::Store(e.to_string()))??;
    Ok(json_response(json!({
        "account": key.to_hex(),
        "balance": balance,
        "nonce": nonce,
        "history": history,
        "scanned_blocks": tip.min(ACCOUNT_SCAN_BLOCKS),
    })))
}

async fn channels(State(node): State<NodeHandle>) -> Response {
    let period = node.genesis().challenge_period_ms;
    let (list, total, now) = node.with_ledger(|l| {
        let now = l.time_ms();
        let list: Vec<Value> = l
            .channels()
            .take(CHANNELS_MAX)
            .map(|(id, c)| {
                let mut v = json!({
                    "id": id.to_string(),
                    "party_a": c.party_a.to_hex(),
                    "party_b": c.party_b.to_hex(),
                    "deposit_a": c.deposit_a,
                    "deposit_b": c.deposit_b,
                });
                match &c.status {
                    ChannelStatus::Open => v["status"] = "open".into(),
                    ChannelStatus::Closing { close_time_ms, best } => {
                        let end = c.window_end_ms(period).unwrap_or(u64::MAX);
                        v["status"] = "closing".into();
                        v["close_time_ms"] = (*close_time_ms).into();
                        v["window_end_ms"] = end.into();
                        v["time_left_ms"] = end.saturating_sub(now).into();
                        v["best_ab"] = proof_json(&best[0]);
                        v["best_ba"] = proof_json(&best[1]);
                    }
                    ChannelStatus::Closed { payout_a, payout_b } => {
                        v["status"] = "settled".into();
                        v["payout_a"] = (*payout_a).into();
                        v["payout_b"] = (*payout_b).into();
                    }
                }
                v
            })
            .collect();
        (list, value_locked(l), now)
    });
    json_response(json!({
        "time_ms": now,
        "value_locked": total,
        "channels": list,
    }))
}

//! `/v1/credit/...`: credit lines and debts on the ledger, granting and repaying from this
//! node's account, and the credit score (PROTOCOL.md, credit).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{bad_request, parse_channel, parse_key, submitted, ApiError, AppState, ErrorBody, SubmittedView};

/// Default time a line granted without `expiry_ms` stays open for new payments.
pub const GRANT_EXPIRY_DEFAULT_MS: u64 = 3_600_000;
/// Default time between a line's expiry and the due time of a debt from it.
pub const GRANT_DUE_AFTER_DEFAULT_MS: u64 = 3_600_000;

/// Every credit line and debt on the ledger, with the totals owed.
#[utoipa::path(get, path = "/credit", tag = "credit",
    responses((status = 200, description = "`{height, time_ms, lines: [..], debts: [..], debts_outstanding, debts_defaulted}`", body = Object), (status = 401, description = "missing or wrong bearer token", body = ErrorBody)))]
pub(super) async fn credit_list(State(s): State<AppState>) -> Json<Value> {
    Json(s.node.with_ledger(|l| {
        let b = paychan_audit::Balances::of(l);
        json!({
            "height": l.height(),
            "time_ms": l.time_ms(),
            "lines": b.credit_lines,
            "debts": b.debts,
            "debts_outstanding": b.debts_outstanding,
            "debts_defaulted": b.debts_defaulted,
        })
    }))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct GrantBody {
    /// The channel (hex id); this node is the creditor, the other party the debtor.
    channel: String,
    /// The limit (0 ends the line).
    limit: u64,
    /// Ledger time after which the line takes no new payments (default: in an hour).
    expiry_ms: Option<u64>,
    /// Ledger time a debt from the line falls due (default: an hour after the expiry).
    due_ms: Option<u64>,
}

/// Grants (raises, lowers, or with limit 0 ends) a credit line on a channel of this node to
/// the other party, signed by this node as the creditor.
#[utoipa::path(post, path = "/credit/grant", tag = "credit", request_body = GrantBody,
    responses((status = 200, body = SubmittedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 422, description = "the ledger rules refuse it", body = ErrorBody), (status = 429, description = "too many pending transactions of this account", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody)))]
pub(super) async fn credit_grant(
    State(s): State<AppState>,
    body: Result<Json<GrantBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SubmittedView>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let id = parse_channel(&body.channel)?;
    let me = s.node.keypair_public();
    let (entry, now) = s.node.with_ledger(|l| (l.channel(&id).cloned(), l.time_ms()));
    let entry = entry.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such channel on the ledger"))?;
    let debtor = if entry.party_a == me {
        entry.party_b
    } else if entry.party_b == me {
        entry.party_a
    } else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "this node is not a party of the channel",
        ));
    };
    let expiry_ms = body
        .expiry_ms
        .unwrap_or(now.saturating_add(GRANT_EXPIRY_DEFAULT_MS));
    let due_ms = body
        .due_ms
        .unwrap_or(expiry_ms.saturating_add(GRANT_DUE_AFTER_DEFAULT_MS));
    if body.limit > 0 && due_ms < expiry_ms {
        return Err(bad_request("due_ms must not be before expiry_ms"));
    }
    submitted(
        s.node
            .credit_grant(id, debtor, body.limit, expiry_ms, due_ms)
            .await,
    )
}

#[derive(Deserialize, ToSchema)]
pub(super) struct RepayBody {
    /// The channel whose settlement recorded the debt (hex id).
    channel: String,
    /// How much (default: all that is outstanding).
    amount: Option<u64>,
}

/// Pays down a debt from this node's account.
#[utoipa::path(post, path = "/credit/repay", tag = "credit", request_body = RepayBody,
    responses((status = 200, body = SubmittedView), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 404, description = "no debt on that channel", body = ErrorBody), (status = 422, description = "the ledger rules refuse it", body = ErrorBody), (status = 429, description = "too many pending transactions of this account", body = ErrorBody), (status = 503, description = "not available now: try again", body = ErrorBody)))]
pub(super) async fn credit_repay(
    State(s): State<AppState>,
    body: Result<Json<RepayBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SubmittedView>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let id = parse_channel(&body.channel)?;
    let outstanding = s
        .node
        .with_ledger(|l| l.debt(&id).map(|d| d.outstanding))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no debt on that channel"))?;
    let amount = body.amount.unwrap_or(outstanding);
    if amount == 0 {
        return Err(bad_request("nothing to repay"));
    }
    submitted(s.node.repay(id, amount).await)
}

/// The credit score of an account, with each factor, its weight and cap (PROTOCOL.md,
/// credit: score), from this node's verified replica.
#[utoipa::path(get, path = "/credit/score/{key}", tag = "credit",
    params(("key" = String, Path, description = "the account, 64 hex characters")),
    responses((status = 200, description = "`{account, score, time_ms, height, factors: [{name, value, weight, cap, points}]}`", body = Object), (status = 400, description = "a malformed request", body = ErrorBody), (status = 401, description = "missing or wrong bearer token", body = ErrorBody), (status = 500, description = "the node failed", body = ErrorBody)))]
pub(super) async fn credit_score(
    State(s): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = parse_key(&key)?;
    let node = s.node.clone();
    let score = tokio::task::spawn_blocking(move || node.credit_score(&key))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    serde_json::to_value(score)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

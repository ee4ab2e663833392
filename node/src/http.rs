//! The CLI's client of a node's control API: finds the address and token in the data dir, as
//! `lncli` does.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::config::DataDir;
use crate::output::CliError;

/// A client bound to one node.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl ApiClient {
    /// Reads `api.addr` and `api.token` from a running node's data dir.
    pub fn from_data_dir(dir: &DataDir) -> Result<ApiClient> {
        let addr = std::fs::read_to_string(dir.api_addr_path()).map_err(|_| {
            CliError::new(
                "unreachable",
                format!(
                    "no running node in {} (api.addr not found; is `paychan run` up?)",
                    dir.root().display()
                ),
            )
        })?;
        Ok(ApiClient::new(format!("http://{}", addr.trim()), dir.token()?))
    }

    /// A client of `base` (e.g. `http://127.0.0.1:8080`) with a token.
    pub fn new(base: String, token: String) -> ApiClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        ApiClient { base, token, agent }
    }

    /// The base URL (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `GET /v1/{path}`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(format!("{}/v1/{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .map_err(|e| unreachable(&self.base, "GET", path, e))?;
        read(resp)
    }

    /// `POST /v1/{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self
            .agent
            .post(format!("{}/v1/{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .map_err(|e| unreachable(&self.base, "POST", path, e))?;
        read(resp)
    }
}

fn unreachable(base: &str, method: &str, path: &str, e: ureq::Error) -> CliError {
    CliError::new(
        "unreachable",
        format!("{method} {base}/v1/{path}: {e} (is the node running?)"),
    )
}

/// The error code of an API error answer: the code the node gave, else one from the status.
fn code_of(status: u16, body: &Value) -> &'static str {
    const KNOWN: &[&str] = &[
        "bad_request",
        "not_found",
        "refused",
        "unauthorized",
        "unavailable",
        "busy",
        "timeout",
        "violation",
        "internal",
    ];
    if let Some(code) = body.get("code").and_then(Value::as_str) {
        if let Some(k) = KNOWN.iter().find(|k| **k == code) {
            return k;
        }
    }
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        422 => "refused",
        429 => "busy",
        503 => "unavailable",
        504 => "timeout",
        _ => "internal",
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
    let status = resp.status();
    let body: Value = resp.body_mut().read_json().map_err(|e| {
        CliError::new(
            code_of(status.as_u16(), &Value::Null),
            format!("unreadable answer ({status}): {e}"),
        )
    })?;
    if !status.is_success() {
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("no detail");
        return Err(CliError::new(code_of(status.as_u16(), &body), format!("{status}: {msg}")).into());
    }
    Ok(body)
}

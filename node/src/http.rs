//! The CLI's client of a node's control API: finds the address and token in the data dir, as
//! `lncli` does.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::config::DataDir;

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
        let addr = std::fs::read_to_string(dir.api_addr_path()).with_context(|| {
            format!(
                "no running node in {} (api.addr not found; is `paychan run` up?)",
                dir.root().display()
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
            .with_context(|| format!("GET {}/v1/{path}", self.base))?;
        read(resp)
    }

    /// `POST /v1/{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self
            .agent
            .post(format!("{}/v1/{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .with_context(|| format!("POST {}/v1/{path}", self.base))?;
        read(resp)
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
    let status = resp.status();
    let body: Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| anyhow!("unreadable answer ({status}): {e}"))?;
    if !status.is_success() {
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("no detail");
        bail!("{status}: {msg}");
    }
    Ok(body)
}

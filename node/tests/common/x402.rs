//! The HTTP 402 side of the multi-process tests: a node turned into a gateway, raw requests
//! with or without a `PAYMENT-SIGNATURE`, and proofs forged with a payer's key.

use std::time::Duration;

use paychan::config::DataDir;
use paychan::gateway::GatewayConfig;
use paychan_client::x402::{self, ChannelPayload, PaymentPayload, PaymentResponse};
use paychan_protocol::channel::{memo_hash, BalanceProof};
use paychan_protocol::wire::PayItem;
use paychan_protocol::{Keypair, Payment, SignedProof};

use super::{wait_until, Testnet, STEP};

/// Turns node `i` of `net` into a gateway with `config`: `[gateway]` in its config.toml, then
/// a SIGKILL and a restart (`paychan run`). Returns the gateway's `http://ADDR`.
pub fn gateway_on(net: &Testnet, i: usize, config: GatewayConfig) -> String {
    let dir = DataDir::new(net.dir(i));
    let mut c = dir.config().expect("read config.toml");
    c.gateway = Some(config);
    dir.write_config(&c).expect("write config.toml");
    restart_gateway(net, i)
}

/// Restarts gateway node `i` (SIGKILL, then `paychan run`); returns its `http://ADDR`.
pub fn restart_gateway(net: &Testnet, i: usize) -> String {
    let path = paychan::gateway::addr_path(&DataDir::new(net.dir(i)));
    net.kill9(i);
    let _ = std::fs::remove_file(&path);
    net.restart(i);
    let addr = wait_until("gateway.addr", STEP, || {
        std::fs::read_to_string(&path).map_err(|e| e.to_string())
    });
    format!("http://{}", addr.trim())
}

/// One GET with an optional `PAYMENT-SIGNATURE`: status, headers, body.
pub fn raw_get(url: &str, payment: Option<&str>) -> (u16, ureq::http::HeaderMap, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(p) = payment {
        req = req.header(x402::HEADER_SIGNATURE, p);
    }
    let mut resp = req.call().expect("the gateway answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (status, headers, body)
}

/// The payload inside a `PAYMENT-SIGNATURE` value.
pub fn payload_of(header: &str) -> PaymentPayload {
    x402::decode_header(header.as_bytes()).expect("a payment header decodes")
}

/// A proof signed with `key` that follows `newest`, adding `add` (which may be 0 or wrap below
/// it with `lower`) for `method path nonce`.
pub fn forge(key: &Keypair, newest: &SignedProof, add: i64, path: &str, nonce: &str) -> PayItem {
    let reference = x402::request_reference("GET", path, nonce);
    let transferred = (newest.proof.transferred as i64 + add) as u64;
    let payments = vec![Payment {
        amount: add.unsigned_abs(),
        reference,
    }];
    let body = BalanceProof {
        seq: newest.proof.seq + 1,
        transferred,
        prev: newest.proof.hash(),
        memo_hash: memo_hash(&payments),
        ..newest.proof
    };
    PayItem {
        proof: body.sign(key),
        payments,
    }
}

pub fn header_for(template: &PaymentPayload, item: &PayItem, nonce: &str) -> String {
    paychan::gateway::payment_header(&template.accepted, ChannelPayload::of(item, nonce))
}

/// The refusal in a 402's body, and its reason.
pub fn refusal(body: &str) -> PaymentResponse {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("a refusal body is JSON ({e}): {body}"))
}

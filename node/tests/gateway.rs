//! The HTTP 402 gateway against real processes: an upstream HTTP server (in this test
//! process), a gateway node (`paychan run` with a `[gateway]` section, node-1 of a testnet)
//! and clients that pay it: the library's `PaidHttpClient` and a `paychan fetch` process.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::x402::*;
use common::*;
use paychan::fetch::PaidHttpClient;
use paychan::gateway::GatewayConfig;
use paychan_client::x402::{self, PaymentRequired};
use paychan_protocol::wire::PayItem;
use paychan_protocol::{ChannelId, Hash32, Keypair};
use serde_json::Value;

/// The price of one request.
const PRICE: u64 = 3;
/// How long `/slow` takes to answer: longer than the test waits for the gateway to notice a
/// client that went away.
const SLOW_UPSTREAM: Duration = Duration::from_secs(15);
/// The price of each KiB of a body.
const PRICE_PER_KIB: u64 = 2;
const ARTICLE: &str = "an article worth paying for\n";

/// The upstream: `/article` answers the article, `/flaky` answers 500 while `fail` is above
/// zero (counting down), `/free/...` is served without payment.
async fn upstream(fail: Arc<AtomicU32>, slow: Arc<AtomicU32>) -> String {
    let app = Router::new()
        .route(
            "/slow",
            get(move || {
                let slow = slow.clone();
                async move {
                    slow.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(SLOW_UPSTREAM).await;
                    "slow"
                }
            }),
        )
        .route("/article", get(|| async { ARTICLE }))
        .route(
            "/flaky",
            get(move || {
                let fail = fail.clone();
                async move {
                    if fail
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "upstream down")
                    } else {
                        (axum::http::StatusCode::OK, "flaky but up")
                    }
                }
            }),
        )
        .route("/free/page", get(|| async { "free page" }))
        .route("/big", get(|| async { big() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The file sold per KiB: 64 KiB.
fn big() -> Vec<u8> {
    (0..64 * 1024u32).map(|i| (i % 251) as u8).collect()
}

/// Turns node `i` of `net` into a gateway in front of `upstream`: `[gateway]` in its config,
/// then a SIGKILL and a restart (`paychan run`). Returns the gateway's `http://ADDR`.
fn make_gateway(net: &Testnet, i: usize, upstream: &str) -> String {
    gateway_on(
        net,
        i,
        GatewayConfig {
            upstream: upstream.into(),
            listen: "127.0.0.1:0".into(),
            price: PRICE,
            price_per_kib: PRICE_PER_KIB,
            free: vec!["/free/".into()],
            donate_to: None,
        },
    )
}

/// What node `i` received on its channel with `payer` (0 without one).
fn received_from(net: &Testnet, i: usize, payer: &Keypair) -> u64 {
    net.api(i)
        .get("/v1/channels")
        .expect("GET /v1/channels")
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["counterparty"] == payer.public().to_hex())
        .map(|c| c["received"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_gateway_charges_each_answered_request_once_and_refuses_bad_payments() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let fail = Arc::new(AtomicU32::new(0));
    let slow = Arc::new(AtomicU32::new(0));
    let up = rt.block_on(upstream(fail.clone(), slow.clone()));
    let net = Testnet::up(2);
    let gw = make_gateway(&net, 1, &up);
    let genesis = net.genesis();
    let payee = net.node_key(1);

    // Unpaid: a 402 with the requirements in the x402 v2 shape; a free prefix passes.
    let (status, headers, _) = raw_get(&format!("{gw}/article"), None);
    assert_eq!(status, 402);
    let required: PaymentRequired = x402::decode_header(
        headers
            .get(x402::HEADER_REQUIRED)
            .expect("PAYMENT-REQUIRED")
            .as_bytes(),
    )
    .expect("PAYMENT-REQUIRED decodes");
    assert_eq!(required.x402_version, 2);
    assert_eq!(required.resource.url, "/article");
    let req = required.paychan().expect("a paychan-channel entry");
    assert_eq!(req.network, x402::network_id(&genesis.chain_id()));
    assert_eq!(req.network.len(), "paychan:".len() + 32);
    assert_eq!(req.amount, PRICE.to_string());
    assert_eq!(req.pay_to, payee.public().to_hex());
    assert_eq!(req.extra.peer_id, net.peer_id(1).to_string());
    assert_eq!(req.extra.chain_id, genesis.chain_id().to_hex());
    assert!(!req.extra.p2p_addrs.is_empty());
    let (status, _, body) = raw_get(&format!("{gw}/free/page"), None);
    assert_eq!((status, body.as_str()), (200, "free page"));

    // Paid: the upstream's body, and the payee's channel grows by exactly price x requests.
    let payer = net.client_key(0);
    let mut client = PaidHttpClient::new(payer.clone(), 100_000, 10, Some(genesis.chain_id()));
    const PAID: u64 = 200;
    for _ in 0..PAID {
        let r = rt
            .block_on(client.get(&format!("{gw}/article")))
            .expect("a paid request");
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], ARTICLE.as_bytes());
        assert_eq!(r.charged, PRICE);
    }
    assert_eq!(client.spent(), PAID * PRICE);
    assert_eq!(received_from(&net, 1, &payer), PAID * PRICE);
    let mut answered = PAID;

    // Bad payments: each a 402 or 400 with a clear reason, and nothing changes.
    let last = client.last_header().expect("a header was sent").to_owned();
    let template = payload_of(&last);
    let (status, _, body) = raw_get(&format!("{gw}/article"), Some(&last));
    assert_eq!(status, 402, "a replayed header: {body}");
    let r = refusal(&body);
    assert!(
        r.error_reason
            .as_deref()
            .unwrap_or("")
            .starts_with("invalid_proof"),
        "{body}"
    );
    let newest = r
        .newest
        .expect("a refusal carries the newest proof")
        .to_proof()
        .expect("it decodes");
    assert_eq!(newest.proof.transferred, PAID * PRICE);
    // (what, nonce, proof, expected status, reason)
    let cases: Vec<(&str, &str, PayItem, u16, &str)> = vec![
        (
            "a proof of another channel",
            "01",
            {
                let mut other = newest;
                other.proof.channel_id = ChannelId(Hash32([9; 32]));
                forge(&payer, &other, PRICE as i64, "/article", "01")
            },
            402,
            "unknown_channel",
        ),
        (
            "an underpaying proof",
            "02",
            forge(&payer, &newest, PRICE as i64 - 1, "/article", "02"),
            402,
            "underpaid",
        ),
        (
            "a proof with a lower transferred",
            "03",
            forge(&payer, &newest, -1, "/article", "03"),
            402,
            "invalid_proof",
        ),
        (
            "a proof for another request",
            "04",
            forge(&payer, &newest, PRICE as i64, "/other", "04"),
            402,
            "wrong_reference",
        ),
        (
            "a proof signed by another key",
            "05",
            forge(&net.client_key(2), &newest, PRICE as i64, "/article", "05"),
            402,
            "invalid_proof",
        ),
    ];
    for (what, nonce, item, want, reason) in cases {
        let (status, _, body) = raw_get(
            &format!("{gw}/article"),
            Some(&header_for(&template, &item, nonce)),
        );
        assert_eq!(status, want, "{what}: {body}");
        let r = refusal(&body);
        assert!(
            r.error_reason.as_deref().unwrap_or("").starts_with(reason),
            "{what}: {body}"
        );
        assert_eq!(
            received_from(&net, 1, &payer),
            answered * PRICE,
            "{what} changed the channel"
        );
    }
    for (what, value) in [
        ("not base64", "%%%".to_owned()),
        ("base64 of no JSON", x402::encode_header(&"text")),
        (
            "JSON of another shape",
            x402::encode_header(&serde_json::json!({"x402Version": 2})),
        ),
        ("a huge header", "A".repeat(x402::HEADER_BYTES_MAX + 4)),
    ] {
        let (status, _, body) = raw_get(&format!("{gw}/article"), Some(&value));
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            refusal(&body)
                .error_reason
                .unwrap_or_default()
                .starts_with("malformed"),
            "{what}: {body}"
        );
    }
    assert_eq!(received_from(&net, 1, &payer), answered * PRICE);
    // After all that the honest client pays on as before.
    let r = rt
        .block_on(client.get(&format!("{gw}/article")))
        .expect("paid after the refusals");
    assert_eq!((r.status.as_u16(), r.charged), (200, PRICE));
    answered += 1;
    assert_eq!(received_from(&net, 1, &payer), answered * PRICE);

    // An upstream 5xx is not charged; its payment pays for the next request, once.
    fail.store(2, Ordering::SeqCst);
    for _ in 0..2 {
        let r = rt
            .block_on(client.get(&format!("{gw}/flaky")))
            .expect("a request that fails upstream");
        assert_eq!((r.status.as_u16(), r.charged), (500, 0));
        assert_eq!(received_from(&net, 1, &payer), answered * PRICE);
    }
    let r = rt
        .block_on(client.get(&format!("{gw}/flaky")))
        .expect("the retry");
    assert_eq!((r.status.as_u16(), r.charged), (200, PRICE));
    answered += 1;
    assert_eq!(received_from(&net, 1, &payer), answered * PRICE);
    assert_eq!(client.spent(), answered * PRICE);
    let mut paid = answered * PRICE;

    // A client that goes away while its request is upstream: the payment is not taken and the
    // channel is not left busy (the next request of the channel is served).
    let (_, _, body) = raw_get(&format!("{gw}/article"), Some(&last));
    let newest = refusal(&body)
        .newest
        .expect("the newest proof")
        .to_proof()
        .expect("decodes");
    let gone = forge(&payer, &newest, PRICE as i64, "/slow", "06");
    let header = header_for(&template, &gone, "06");
    let host = gw.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&host).expect("connect to the gateway");
    use std::io::Write as _;
    write!(
        conn,
        "GET /slow HTTP/1.1\r\nhost: {host}\r\n{}: {header}\r\n\r\n",
        x402::HEADER_SIGNATURE
    )
    .expect("send a request");
    wait_until("the slow request to reach the upstream", STEP, || {
        (slow.load(Ordering::SeqCst) == 1)
            .then_some(())
            .ok_or("not yet".to_string())
    });
    drop(conn);
    let r = wait_until("the channel to be free again", Duration::from_secs(5), || {
        rt.block_on(client.get(&format!("{gw}/article")))
            .map_err(|e| format!("{e:#}"))
    });
    assert_eq!((r.status.as_u16(), r.charged), (200, PRICE));
    paid += PRICE;
    assert_eq!(
        received_from(&net, 1, &payer),
        paid,
        "the request that went away is not charged"
    );

    // A body sold per KiB: the request's price covers the first KiB, each further KiB is paid
    // on the channel's stream as it is read.
    let r = rt
        .block_on(client.get(&format!("{gw}/big")))
        .expect("a streamed file");
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 64 * 1024));
    assert_eq!(&r.body[..], &big()[..]);
    let file = PRICE + 63 * PRICE_PER_KIB;
    assert_eq!(r.charged, file);
    paid += file;
    assert_eq!(received_from(&net, 1, &payer), paid);
    // A payer that stops paying after 10 KiB: cut off within one piece, charged what it paid.
    client.set_kib_budget(Some(10));
    let err = rt
        .block_on(client.get(&format!("{gw}/big")))
        .expect_err("an unpaid stream is cut");
    let text = format!("{err:#}");
    let bytes: usize = text
        .split("cut after ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        bytes <= 11 * 1024,
        "at most the paid pieces arrived: {bytes} bytes ({text})"
    );
    paid += PRICE + 10 * PRICE_PER_KIB;
    assert_eq!(received_from(&net, 1, &payer), paid);
    client.set_kib_budget(None);
    let r = rt
        .block_on(client.get(&format!("{gw}/article")))
        .expect("paid after the cut");
    assert_eq!((r.status.as_u16(), r.charged), (200, PRICE));
    paid += PRICE;
    assert_eq!(received_from(&net, 1, &payer), paid);

    // A donation: a payment with a reference and no resource, on the same channel.
    rt.block_on(client.donate(7, "thanks for the article"))
        .expect("a donation");
    paid += 7;
    assert_eq!(received_from(&net, 1, &payer), paid);

    // `paychan fetch`, a process of its own with another key: 21 requests on 4 lanes (4
    // channels, 4 connections, requests in flight at once), 21 x price in all.
    let key1 = net.root.join("clients").join("client-1.key");
    let mut cmd = paychan();
    cmd.args(["fetch", &format!("{gw}/article"), "--key", key1.to_str().unwrap()])
        .args(["--count", "21", "--parallel", "4", "--max-price", "10"])
        .args(["--deposit", "1000", "--keep-open", "--json"]);
    let out = run_bounded(cmd, CLI_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "paychan fetch failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), ARTICLE);
    let report: Value = serde_json::from_str(stderr.lines().last().unwrap_or("")).expect("a JSON report");
    assert_eq!(report["spent"], 21 * PRICE);
    assert_eq!(report["parallel"], 4);
    let lanes: Vec<String> = serde_json::from_value(report["channels"].clone()).expect("the lanes' channels");
    assert_eq!(lanes.len(), 4, "one channel per lane");
    assert_eq!(received_from(&net, 1, &net.client_key(1)), 21 * PRICE);
    let per_lane: Vec<u64> = net
        .api(1)
        .get("/v1/channels")
        .expect("GET /v1/channels")
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["counterparty"] == net.client_key(1).public().to_hex())
        .map(|c| c["received"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        per_lane.len(),
        4,
        "the gateway's node holds the 4 channels: {per_lane:?}"
    );
    // The 20 requests after the first are split evenly; the first lane also carried the first.
    let mut sorted = per_lane.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        vec![5 * PRICE, 5 * PRICE, 5 * PRICE, 6 * PRICE],
        "{per_lane:?}"
    );
    // It refuses a price above its maximum, and pays nothing.
    let key2 = net.root.join("clients").join("client-2.key");
    let mut cmd = paychan();
    cmd.args(["fetch", &format!("{gw}/article"), "--key", key2.to_str().unwrap()])
        .args(["--max-price", &(PRICE - 1).to_string()]);
    let out = run_bounded(cmd, CLI_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("more than the most accepted"),
        "{stderr}"
    );
    assert_eq!(received_from(&net, 1, &net.client_key(2)), 0);

    // `paychan donate`, a process of its own (client-2, which paid nothing above): it opens a
    // channel with the creator's node and gives 11.
    let key2 = net.root.join("clients").join("client-2.key");
    let mut cmd = paychan();
    cmd.args([
        "donate",
        "--to",
        &format!("{gw}/article"),
        "--key",
        key2.to_str().unwrap(),
    ])
    .args(["--amount", "11", "--memo", "a tip", "--keep-open", "--json"]);
    let out = run_bounded(cmd, CLI_TIMEOUT);
    assert!(
        out.status.success(),
        "paychan donate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        received_from(&net, 1, &net.client_key(2)),
        11,
        "the donation arrived"
    );

    // A SIGKILL of the gateway node: every answered request is still there, settleable.
    restart_gateway(&net, 1);
    assert_eq!(received_from(&net, 1, &payer), paid);
    assert_eq!(received_from(&net, 1, &net.client_key(1)), 21 * PRICE);
    assert_eq!(received_from(&net, 1, &net.client_key(2)), 11);
    drop(client);
    drop(rt);
}

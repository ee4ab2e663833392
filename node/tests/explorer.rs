//! The explorer page on the public listener: the embedded page and script, and the JSON list
//! of newest blocks it reads, checked against the control API's blocks.

mod common;

use common::*;
use serde_json::Value;

/// A GET without a token: status, content type and body text.
fn get(agent: &ureq::Agent, url: &str) -> (u16, String, String) {
    let mut resp = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url} body: {e}"));
    (status, content_type, body)
}

#[test]
fn explorer_page_and_newest_blocks_match_the_ledger() {
    let net = Testnet::up(1);
    let agent = agent();
    let api = net.api(0);
    let addr = std::fs::read_to_string(net.dir(0).join("public.addr")).expect("public.addr");
    let public = format!("http://{}", addr.trim());

    // The page and its script, without a token.
    let (status, ct, html) = get(&agent, &format!("{public}/"));
    assert_eq!(status, 200);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(html.contains("paychan ledger explorer"), "{html}");
    assert!(html.contains("src=\"/explorer/app.js\""), "{html}");
    let (status, ct, js) = get(&agent, &format!("{public}/explorer/app.js"));
    assert_eq!(status, 200);
    assert_eq!(ct, "text/javascript; charset=utf-8");
    assert!(js.contains("/explorer/blocks"), "{js}");

    // A transfer, then the newest blocks: newest first, the hashes of the ledger's blocks.
    let to = net.client_key(0).public();
    let tx_id = wait_until("a transfer accepted", STEP, || api.transfer(&to, 1));
    let newest = wait_until("the transfer in a listed block", STEP, || {
        let (status, _, body) = get(&agent, &format!("{public}/explorer/blocks"));
        if status != 200 {
            return Err(format!("{status} {body}"));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let list = v.as_array().ok_or("not an array")?.clone();
        let has = list.iter().any(|b| {
            b["txs"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["id"] == tx_id.as_str()))
        });
        if has {
            Ok(list)
        } else {
            Err(format!("no block with {tx_id} in {body}"))
        }
    });
    assert!(!newest.is_empty() && newest.len() <= 20, "{}", newest.len());
    let heights: Vec<u64> = newest
        .iter()
        .map(|b| b["height"].as_u64().expect("height"))
        .collect();
    for w in heights.windows(2) {
        assert_eq!(w[0], w[1] + 1, "newest first, consecutive: {heights:?}");
    }
    let ledger = api.blocks(heights[0]).expect("blocks through the API");
    for b in &newest {
        let h = b["height"].as_u64().expect("height") as usize;
        assert_eq!(b["hash"], ledger[h - 1]["hash"], "block {h}");
        assert_eq!(b["time_ms"], ledger[h - 1]["time_ms"], "block {h}");
        let ids: Vec<&Value> = b["txs"]
            .as_array()
            .expect("txs")
            .iter()
            .map(|t| &t["id"])
            .collect();
        let theirs: Vec<&Value> = ledger[h - 1]["txs"]
            .as_array()
            .expect("txs")
            .iter()
            .map(|t| &t["id"])
            .collect();
        assert_eq!(ids, theirs, "block {h}");
    }
    let transfer = newest
        .iter()
        .flat_map(|b| b["txs"].as_array().expect("txs").iter())
        .find(|t| t["id"] == tx_id.as_str())
        .expect("the transfer");
    assert_eq!(transfer["kind"], "Transfer");

    // Page size capped; a malformed query is refused.
    let (status, _, body) = get(&agent, &format!("{public}/explorer/blocks?limit=100000"));
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v.as_array().expect("array").len() <= 64);
    let (status, _, _) = get(&agent, &format!("{public}/explorer/blocks?limit=x"));
    assert_eq!(status, 400);
}

/// A JSON GET of the public listener: status and body.
fn get_json(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    let (status, ct, body) = get(agent, url);
    assert_eq!(ct, "application/json", "{url}");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}")),
    )
}

#[test]
fn explorer_views_decode_the_ledger_and_refuse_bad_input() {
    let net = Testnet::up(1);
    let agent = agent();
    let api = net.api(0);
    let addr = std::fs::read_to_string(net.dir(0).join("public.addr")).expect("public.addr");
    let public = format!("http://{}", addr.trim());
    let to = net.client_key(1).public();
    let tx_id = wait_until("a transfer accepted", STEP, || api.transfer(&to, 777));
    let at = wait_until("the transfer in a block", STEP, || {
        let v = api.get(&format!("/v1/tx/{tx_id}"))?;
        v["height"].as_u64().ok_or(format!("{v}"))
    });

    // The transaction: its block, its index in the log, its bytes hashing to its id.
    let (status, tx) = get_json(&agent, &format!("{public}/explorer/tx/{tx_id}"));
    assert_eq!(status, 200, "{tx}");
    assert_eq!(tx["height"], at);
    assert_eq!(tx["kind"], "Transfer");
    assert_eq!(tx["fields"]["to"], to.to_hex());
    assert_eq!(tx["fields"]["amount"], 777);
    let bytes = hex::decode(tx["hex"].as_str().expect("hex")).expect("hex bytes");
    let decoded = <paychan_protocol::Tx as paychan_protocol::Wire>::from_bytes(&bytes).expect("a Tx");
    assert_eq!(decoded.id().to_hex(), tx_id);
    let status_view = api.get(&format!("/v1/tx/{tx_id}")).expect("tx status");
    assert_eq!(tx["index"], status_view["log_index"], "{status_view}");

    // Its block: the header as the control API shows it, the transaction in it.
    let (status, block) = get_json(&agent, &format!("{public}/explorer/block/{at}"));
    assert_eq!(status, 200, "{block}");
    let ours = &api.blocks(at).expect("blocks")[at as usize - 1];
    for f in [
        "hash",
        "prev_hash",
        "time_ms",
        "tx_root",
        "log_size",
        "log_root",
        "state_root",
    ] {
        assert_eq!(block[f], ours[f], "{f}");
    }
    assert!(block["txs"]
        .as_array()
        .expect("txs")
        .iter()
        .any(|t| t["id"] == tx_id.as_str() && t["hex"] == tx["hex"]));

    // The payee's account: the balance the ledger has, the transfer in its history.
    let (status, acct) = get_json(&agent, &format!("{public}/explorer/account/{}", to.to_hex()));
    assert_eq!(status, 200, "{acct}");
    assert_eq!(acct["balance"], api.balance(&to).expect("balance"));
    let entry = acct["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["id"] == tx_id.as_str())
        .unwrap_or_else(|| panic!("the transfer in {acct}"))
        .clone();
    assert_eq!(entry["amount_delta"], 777);
    assert_eq!(entry["height"], at);

    // The chain, the channels (none), the testnet (this one node) and the node's figures, the
    // same that `/metrics` publishes.
    let (_, info) = get_json(&agent, &format!("{public}/explorer/info"));
    assert_eq!(info["chain_id"], net.genesis().chain_id().to_hex());
    assert_eq!(info["node"]["role"], "sequencer");
    assert!(
        info["log_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("paychan/")),
        "{info}"
    );
    let (_, channels) = get_json(&agent, &format!("{public}/explorer/channels"));
    assert_eq!(channels["channels"], serde_json::json!([]));
    assert_eq!(channels["value_locked"], 0);
    let (_, testnet) = get_json(&agent, &format!("{public}/explorer/testnet"));
    assert_eq!(testnet["nodes"][0]["name"], "node-0", "{testnet}");
    assert_eq!(testnet["nodes"][0]["public_url"], public.as_str(), "{testnet}");
    let (_, figures) = get_json(&agent, &format!("{public}/explorer/metrics"));
    assert!(
        figures["ledger_height"].as_u64().is_some_and(|h| h >= at),
        "{figures}"
    );
    assert!(figures["log_size"].as_u64().is_some_and(|n| n >= 1), "{figures}");
    let metrics = wait_until("the node's figures on /metrics", STEP, || {
        let (_, _, text) = get(&agent, &format!("{}/metrics", api.base));
        let height = text
            .lines()
            .find_map(|l| l.strip_prefix("paychan_ledger_height "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        match height {
            Some(h) if h >= at => Ok(text),
            _ => Err(text),
        }
    });
    for name in [
        "paychan_block_interval_ms",
        "paychan_mempool_size",
        "paychan_value_locked",
        "paychan_ledger_channels",
        "paychan_payments_sent_total",
        "paychan_payments_received_total",
        "paychan_amount_sent",
        "paychan_checkpoint_height",
        "paychan_cosignature_lag_ms",
        "paychan_split_views_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    // Every metric the committed Grafana dashboard graphs exists.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/paychan.json"),
    )
    .expect("docs/grafana/paychan.json");
    let dashboard: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let net_source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/net/src/event_loop.rs"),
    )
    .expect("the network crate's event loop");
    let mut graphed = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let start = expr
                .find("paychan_")
                .unwrap_or_else(|| panic!("no paychan metric in {expr}"));
            let name: String = expr[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = name.strip_suffix("_total").unwrap_or(&name);
            // A labelled family of the network layer shows no line before its first count:
            // then its registration in the network crate must name it.
            let registered_by_net = family
                .strip_prefix("paychan_net_")
                .is_some_and(|sub| net_source.contains(&format!("\"{sub}\",")));
            assert!(
                metrics.contains(&format!("# TYPE {family} ")) || registered_by_net,
                "the dashboard graphs {name}, which /metrics lacks"
            );
            graphed += 1;
        }
    }
    assert!(graphed >= 15, "{graphed}");

    // The search box's question: a transaction id or an account.
    let (_, found) = get_json(&agent, &format!("{public}/explorer/find/{tx_id}"));
    assert_eq!(found["kind"], "tx");
    let (_, found) = get_json(&agent, &format!("{public}/explorer/find/{}", to.to_hex()));
    assert_eq!(found["kind"], "account");

    // Bad input is refused with a reason; nothing unknown is made up.
    for (path, want) in [
        ("/explorer/block/0", 400),
        ("/explorer/block/x", 400),
        ("/explorer/block/99999999", 404),
        ("/explorer/tx/zz", 400),
        (&*format!("/explorer/tx/{}", "00".repeat(32)), 404),
        ("/explorer/account/xyz", 400),
        ("/explorer/find/12", 400),
    ] {
        let (status, body) = get_json(&agent, &format!("{public}{path}"));
        assert_eq!(status, want, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
}

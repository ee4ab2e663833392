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

//! Multi-process tests of a local testnet: real `paychan` processes on 127.0.0.1, started with
//! `paychan testnet up` in a fresh temporary directory and always torn down (see
//! `common::Testnet`). Every wait polls under a deadline.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use paychan_protocol::{Genesis, PublicKey};
use serde_json::{json, Value};

/// `testnet up` must be ready (all connected, genesis applied) within this.
const UP_MAX: Duration = Duration::from_secs(10);

/// One 4-node testnet for the checks that do not disturb it: readiness and status, the control
/// API (auth, info, loopback, metrics), ledger time on the idle network, then transfers
/// through every node and agreement of all replicas, then `testnet down`.
#[test]
fn four_node_testnet_ready_api_time_transfers_agreement_and_down() {
    let net = Testnet::up(4);
    let started = Instant::now();

    check_up_and_status(&net);
    check_api(&net);
    // Nothing has been submitted yet: the testnet is idle.
    check_idle_heartbeats_and_time(&net);
    check_transfers_through_every_node(&net);
    check_down(&net);

    eprintln!(
        "testnet up took {:?}; the whole test {:?}",
        net.up_time,
        started.elapsed() + net.up_time
    );
}

fn check_up_and_status(net: &Testnet) {
    assert!(
        net.up_time < UP_MAX,
        "`testnet up --nodes 4` took {:?} (limit {UP_MAX:?})",
        net.up_time
    );
    // `up` returned ready: every node serves its API, is connected to every other node and has
    // applied the genesis (same chain id everywhere). Checked at once, without waiting.
    let chain_id = net.genesis().chain_id().to_hex();
    for i in 0..4 {
        let api = net.api(i);
        let mut peers = api.peers().expect("peers");
        peers.sort();
        let mut others: Vec<String> = (0..4)
            .filter(|j| *j != i)
            .map(|j| net.peer_id(j).to_string())
            .collect();
        others.sort();
        assert_eq!(
            peers, others,
            "node-{i} is connected to every other node when `up` returns"
        );
        let info = api.get("/v1/info").expect("info");
        assert_eq!(
            info["chain_id"],
            chain_id.as_str(),
            "node-{i} applied the genesis"
        );
    }
    assert_eq!(net.up_rows.len(), 4, "`up --json` lists every node");

    let rows = net.status_rows();
    assert_eq!(rows.len(), 4, "one status row per node: {rows:?}");
    for (i, row) in rows.iter().enumerate() {
        let obj = row.as_object().expect("a status row is an object");
        for field in [
            "name", "peer_id", "p2p_addr", "api_url", "data_dir", "role", "pid", "height",
        ] {
            assert!(obj.contains_key(field), "status row {i} lacks {field}: {row}");
        }
        let dir = net.dir(i);
        assert_eq!(row["name"], format!("node-{i}"));
        assert_eq!(row["peer_id"], net.peer_id(i).to_string());
        assert_eq!(row["role"], if i == 0 { "sequencer" } else { "witness" });
        assert_eq!(row["data_dir"], dir.display().to_string());
        assert_eq!(row["pid"].as_u64(), Some(u64::from(net.pid(i))), "row {i}: {row}");
        assert_eq!(row["p2p_addr"], net.p2p_addr(i).to_string());
        assert!(
            row["p2p_addr"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/p2p/{}", net.peer_id(i))),
            "{row}"
        );
        assert_eq!(row["api_url"], net.api(i).base);
        assert!(row["height"].is_u64(), "a running node reports its height: {row}");
    }
}

/// Every `/v1/...` request without the right bearer token is refused with 401, existing path
/// or not, GET or POST; with it, `/v1/info` describes the node; the API listens on loopback
/// only; `/metrics` serves Prometheus text with libp2p's metrics.
fn check_api(net: &Testnet) {
    let api = net.api(1);
    let key = net.node_key(2).public().to_hex();
    let get_paths = [
        "/v1/info".to_owned(),
        "/v1/peers".into(),
        "/v1/ledger/status".into(),
        "/v1/ledger/blocks".into(),
        "/v1/ledger/blocks?from=1&limit=5".into(),
        "/v1/ledger/checkpoint".into(),
        format!("/v1/accounts/{key}"),
        "/v1/accounts/not-a-key".into(),
        "/v1/transfer".into(),
        "/v1/tx".into(),
        "/v1/no/such/endpoint".into(),
        "/v1/".into(),
        "/v1".into(),
        "/v1/channels".into(),
    ];
    let post_paths = [
        "/v1/transfer",
        "/v1/tx",
        "/v1/info",
        "/v1/ledger/status",
        "/v1/no/such/endpoint",
        "/v1/",
        "/v1/channels",
    ];
    let wrong = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}x", api.token)),
        Some(format!("Bearer {}", &api.token[..api.token.len() - 1])),
        Some("Bearer ".to_owned()),
        Some(api.token.clone()),
        Some(format!("Basic {}", api.token)),
        Some(format!("Bearer {}", net.api(2).token)),
    ];
    let agent = agent();
    let transfer = json!({"to": key, "amount": 1});
    for auth in &wrong {
        for path in &get_paths {
            let mut req = agent.get(format!("{}{path}", api.base));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let status = req.call().expect("GET").status().as_u16();
            assert_eq!(status, 401, "GET {path} with Authorization {auth:?}");
        }
        for path in post_paths {
            let mut req = agent.post(format!("{}{path}", api.base));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let status = req.send_json(&transfer).expect("POST").status().as_u16();
            assert_eq!(status, 401, "POST {path} with Authorization {auth:?}");
        }
    }
    // None of those transfers went through.
    assert_eq!(api.status().unwrap()["pending"], 0);

    // The API's OpenAPI document needs no token, and what the API answers has every field the
    // document says it must.
    let doc: Value = agent
        .get(format!("{}/v1/openapi.json", api.base))
        .call()
        .expect("GET openapi")
        .body_mut()
        .read_json()
        .expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/info",
        "/v1/peers",
        "/v1/ledger/status",
        "/v1/ledger/blocks",
        "/v1/channels",
        "/v1/censorship",
        "/v1/alarms",
    ] {
        let schema = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let answer = api.get(path).expect(path);
        assert_matches_schema(&doc, schema, &answer, path);
    }

    // With the token.
    for i in 0..4 {
        let info = net.api(i).get("/v1/info").expect("info with the token");
        for field in ["peer_id", "account", "role", "chain_id", "height"] {
            assert!(
                info.get(field).is_some(),
                "node-{i} /v1/info lacks {field}: {info}"
            );
        }
        assert_eq!(info["peer_id"], net.peer_id(i).to_string());
        assert_eq!(info["account"], net.node_key(i).public().to_hex());
        assert_eq!(info["role"], if i == 0 { "sequencer" } else { "witness" });
        assert_eq!(info["chain_id"], net.genesis().chain_id().to_hex());
        assert!(info["height"].is_u64());
        // An existing path with the token is not refused; an unknown one is a 404, not a 401.
        assert_eq!(net.api(i).get_raw("/v1/no/such/endpoint").unwrap().0, 404);

        // The API binds to loopback only.
        let addr: SocketAddr = std::fs::read_to_string(net.dir(i).join("api.addr"))
            .unwrap()
            .trim()
            .parse()
            .expect("api.addr is ip:port");
        assert_eq!(addr.ip().to_string(), "127.0.0.1", "node-{i} API on {addr}");
        if let Some(ip) = non_loopback_ip() {
            let other = SocketAddr::new(ip, addr.port());
            assert!(
                std::net::TcpStream::connect_timeout(&other, Duration::from_secs(2)).is_err(),
                "node-{i}'s API answers on {other}"
            );
        }
    }

    // `/metrics`: Prometheus (OpenMetrics) text with libp2p's metrics.
    let mut resp = agent
        .get(format!("{}/metrics", api.base))
        .call()
        .expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.body_mut().read_to_string().expect("metrics text");
    assert!(ctype.contains("text"), "content type {ctype}");
    assert!(text.contains("# TYPE "), "{text}");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    assert!(text.contains("libp2p_swarm_connections"), "{text}");
    assert!(text.contains("libp2p_gossipsub"), "{text}");
    assert!(text.contains("paychan_net_connected_peers"), "{text}");
}

/// A local address of this machine that is not loopback, if it has one (no packet is sent).
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// On the idle testnet the sequencer makes heartbeat blocks: heights and ledger time increase;
/// block times never decrease and never step by more than the genesis `max_time_step_ms`; an
/// idle (empty) block comes only once a heartbeat interval has passed in ledger time.
fn check_idle_heartbeats_and_time(net: &Testnet) {
    let genesis: Genesis = net.genesis();
    assert!(genesis.heartbeat_interval_ms > 0 && genesis.max_time_step_ms > 0);
    let api = net.api(2);
    let start = api.status().unwrap();
    let (h0, t0) = (
        start["height"].as_u64().unwrap(),
        start["time_ms"].as_u64().unwrap(),
    );
    // At least two heartbeat blocks, seen by every replica.
    let target = h0 + 2;
    let heartbeat = Duration::from_millis(genesis.heartbeat_interval_ms);
    for i in 0..4 {
        wait_until(
            &format!("node-{i} to reach height {target}"),
            heartbeat * 2 + STEP,
            || {
                let h = net.api(i).height()?;
                if h >= target {
                    Ok(())
                } else {
                    Err(format!("height {h}"))
                }
            },
        );
    }
    let end = api.status().unwrap();
    assert!(end["height"].as_u64().unwrap() >= target);
    assert!(
        end["time_ms"].as_u64().unwrap() > t0,
        "ledger time moves while idle"
    );

    for i in 0..4 {
        let blocks = net.api(i).blocks(target).expect("blocks");
        let mut prev_time = genesis.genesis_time_ms;
        let mut prev_hash = genesis.chain_id().to_hex();
        for b in &blocks {
            let h = b["height"].as_u64().unwrap();
            let t = b["time_ms"].as_u64().unwrap();
            assert_eq!(
                b["prev_hash"],
                prev_hash.as_str(),
                "node-{i}: block {h} links to its parent"
            );
            assert!(
                t >= prev_time,
                "node-{i}: time of block {h} goes back: {prev_time} -> {t}"
            );
            assert!(
                t - prev_time <= genesis.max_time_step_ms,
                "node-{i}: block {h} steps {} ms > {} ms",
                t - prev_time,
                genesis.max_time_step_ms
            );
            assert!(b["txs"].as_array().unwrap().is_empty(), "idle testnet: {b}");
            assert!(
                t - prev_time >= genesis.heartbeat_interval_ms,
                "node-{i}: empty block {h} only {} ms after its parent (heartbeat {} ms)",
                t - prev_time,
                genesis.heartbeat_interval_ms
            );
            prev_time = t;
            prev_hash = b["hash"].as_str().unwrap().to_owned();
        }
    }
}

/// Transfers submitted to every node, through the CLI and through the API, all land in blocks;
/// every replica then has the same blocks, state roots and balances, and conserves value.
fn check_transfers_through_every_node(net: &Testnet) {
    let genesis = net.genesis();
    let accounts: Vec<PublicKey> = (0..4).map(|i| net.node_key(i).public()).collect();
    let client = net.client_key(0).public();
    let mut expected: BTreeMap<PublicKey, u64> = genesis.allocations.iter().copied().collect();
    let supply: u64 = expected.values().sum();
    let mut submitted = Vec::new();
    let mut payers = Vec::new();

    for i in 0..4 {
        // CLI: node i pays node i+1.
        let to = accounts[(i + 1) % 4];
        let amount = 1_000 + i as u64;
        let out = cli_ok(&[
            "ledger",
            "transfer",
            "--data-dir",
            net.dir(i).to_str().unwrap(),
            "--to",
            &to.to_hex(),
            "--amount",
            &amount.to_string(),
            "--json",
        ]);
        let v: Value = serde_json::from_str(&out).expect("transfer --json");
        assert_eq!(v["status"], "accepted", "CLI transfer through node-{i}: {v}");
        submitted.push(v["tx_id"].as_str().unwrap().to_owned());
        payers.push(accounts[i]);
        *expected.get_mut(&accounts[i]).unwrap() -= amount;
        *expected.get_mut(&to).unwrap() += amount;

        // API: node i pays the spare client account.
        let amount = 10 + i as u64;
        let id = net.api(i).transfer(&client, amount).expect("API transfer");
        submitted.push(id);
        payers.push(accounts[i]);
        *expected.get_mut(&accounts[i]).unwrap() -= amount;
        *expected.get_mut(&client).unwrap() += amount;
    }

    // All land in the sequencer's blocks, once each.
    let seq = net.api(0);
    let landed_at = wait_until("every transfer in a block", STEP, || {
        let h = seq.height()?;
        let ids = tx_ids(&seq.blocks(h)?);
        let missing = submitted.iter().filter(|id| !ids.contains(id)).count();
        if missing == 0 {
            Ok(h)
        } else {
            Err(format!("{missing} not yet in a block at height {h}"))
        }
    });
    let reference = seq.blocks(landed_at).unwrap();
    let ids = tx_ids(&reference);
    for id in &submitted {
        assert_eq!(
            ids.iter().filter(|x| *x == id).count(),
            1,
            "{id} is in exactly one block"
        );
    }

    // Every replica: the same blocks (hashes and state roots) up to that height.
    for i in 1..4 {
        let api = net.api(i);
        wait_until(&format!("node-{i} at height {landed_at}"), STEP, || {
            let h = api.height()?;
            if h >= landed_at {
                Ok(())
            } else {
                Err(format!("height {h}"))
            }
        });
        let blocks = api.blocks(landed_at).unwrap();
        assert_eq!(
            hashes(&blocks),
            hashes(&reference),
            "node-{i} has the sequencer's blocks"
        );
        let roots = |bs: &[Value]| bs.iter().map(|b| b["state_root"].clone()).collect::<Vec<_>>();
        assert_eq!(
            roots(&blocks),
            roots(&reference),
            "node-{i} has the same state roots"
        );
    }

    // Each sender also paid its transfer's fee to node-0, the sequencer (PROTOCOL.md §8.4).
    for (id, payer) in submitted.iter().zip(&payers) {
        let fee = net.tx_fee(id);
        *expected.get_mut(payer).unwrap() -= fee;
        *expected.get_mut(&accounts[0]).unwrap() += fee;
    }

    // The same tip (height, hash, state and log roots) everywhere at one moment; heartbeats may
    // move it, so poll until a common one is seen.
    wait_until("every node at one tip", STEP, || {
        let tips: Vec<Value> = (0..4)
            .map(|i| {
                net.api(i).status().map(|s| {
                    json!([
                        s["height"],
                        s["block_hash"],
                        s["state_root"],
                        s["log_size"],
                        s["log_root"]
                    ])
                })
            })
            .collect::<Result<_, _>>()?;
        if tips.iter().all(|t| *t == tips[0]) {
            Ok(())
        } else {
            Err(format!("tips differ: {tips:?}"))
        }
    });

    // Balances and conservation, on every replica.
    for i in 0..4 {
        let api = net.api(i);
        for (account, balance) in &expected {
            assert_eq!(
                api.balance(account).unwrap(),
                *balance,
                "node-{i}: balance of {account}"
            );
        }
        let s = api.status().unwrap();
        assert_eq!(s["supply"], supply, "node-{i}: supply");
        assert_eq!(s["total_value"], supply, "node-{i}: conservation");
        assert_eq!(s["log_size"].as_u64().unwrap(), submitted.len() as u64);
    }
    // The CLI reads the same balance.
    let out = cli_ok(&[
        "ledger",
        "balance",
        &client.to_hex(),
        "--data-dir",
        net.dir(3).to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["balance"], expected[&client]);
}

/// `testnet down` stops every node: no process is left.
fn check_down(net: &Testnet) {
    let pids: Vec<u32> = (0..4).map(|i| net.pid(i)).collect();
    assert_eq!(net.down(), 4, "down stops the four nodes");
    for (i, pid) in pids.iter().enumerate() {
        assert!(
            !alive(*pid),
            "node-{i} (pid {pid}) is still running after `testnet down`"
        );
    }
    for row in net.status_rows() {
        assert!(row["pid"].is_null(), "a stopped node has no pid: {row}");
        assert!(row["api_url"].is_null(), "a stopped node has no API: {row}");
    }
}

/// A witness killed with SIGKILL misses blocks; restarted, it restores its replica from disk,
/// catches up from its peers and agrees on every block.
#[test]
fn killed_witness_restarts_and_catches_up() {
    let net = Testnet::up(3);
    let victim = 2;
    let victim_key = net.node_key(victim).public();

    // Something in the victim's replica before the crash.
    let id = net.api(1).transfer(&victim_key, 7).expect("transfer");
    let before = wait_until("the first transfer on the victim", STEP, || {
        let api = net.api(victim);
        let h = api.height()?;
        if tx_ids(&api.blocks(h)?).contains(&id) {
            Ok(h)
        } else {
            Err(format!("not at height {h}"))
        }
    });
    let balance_before = net.api(victim).balance(&victim_key).unwrap();

    net.kill9(victim);

    // Transfers while it is down, through the sequencer (API) and a witness (CLI).
    let mut missed = vec![net.api(0).transfer(&victim_key, 11).expect("transfer")];
    let out = cli_ok(&[
        "ledger",
        "transfer",
        "--data-dir",
        net.dir(1).to_str().unwrap(),
        "--to",
        &victim_key.to_hex(),
        "--amount",
        "13",
        "--json",
    ]);
    missed.push(
        serde_json::from_str::<Value>(&out).unwrap()["tx_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let seq = net.api(0);
    let target = wait_until(
        "blocks beyond the victim's height with the missed transfers",
        STEP,
        || {
            let h = seq.height()?;
            let ids = tx_ids(&seq.blocks(h)?);
            if h >= before + 2 && missed.iter().all(|m| ids.contains(m)) {
                Ok(h)
            } else {
                Err(format!("sequencer at {h}, victim stopped at {before}"))
            }
        },
    );

    net.restart(victim);
    let api = net.api(victim);
    // Everything it reported before the crash was on disk.
    let restored = api.height().unwrap();
    assert!(
        restored >= before,
        "restored height {restored} < {before} reported before the crash"
    );

    wait_until("the restarted victim to catch up", STEP, || {
        let h = api.height()?;
        if h >= target {
            Ok(())
        } else {
            Err(format!("victim at {h}, target {target}"))
        }
    });
    let theirs = seq.blocks(target).unwrap();
    let ours = api.blocks(target).unwrap();
    assert_eq!(
        hashes(&ours),
        hashes(&theirs),
        "the victim agrees on every block hash"
    );
    assert_eq!(
        api.balance(&victim_key).unwrap(),
        balance_before + 11 + 13,
        "the victim applied the blocks it missed"
    );
    assert_eq!(
        api.balance(&victim_key).unwrap(),
        seq.balance(&victim_key).unwrap()
    );
    let s = api.status().unwrap();
    assert_eq!(s["total_value"], s["supply"]);
    // It is back in the network.
    wait_until("the victim reconnected", STEP, || {
        let peers = api.peers()?;
        if peers.len() == 2 {
            Ok(())
        } else {
            Err(format!("peers {peers:?}"))
        }
    });

    let pids = net.all_pids();
    assert_eq!(net.down(), 3, "down stops the restarted node too");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} still running after down");
    }
}

/// `v` has the shape `schema` of `doc` gives: its type, and every required property (through
/// `$ref`, `items`, `allOf`, `oneOf`).
fn assert_matches_schema(doc: &Value, schema: &Value, v: &Value, at: &str) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return assert_matches_schema(doc, &doc["components"]["schemas"][name], v, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().for_each(|s| assert_matches_schema(doc, s, v, at));
    }
    if let Some(any) = schema["oneOf"].as_array() {
        if v.is_null() && any.iter().any(|s| s["type"] == "null") {
            return;
        }
        let fits = any.iter().filter(|s| s["type"] != "null");
        return fits.for_each(|s| assert_matches_schema(doc, s, v, at));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let fits = types.iter().any(|t| match *t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    });
    assert!(fits, "{at}: {v} is not of type {types:?}");
    if let Some(items) = schema.get("items") {
        for (i, x) in v.as_array().into_iter().flatten().enumerate() {
            assert_matches_schema(doc, items, x, &format!("{at}[{i}]"));
        }
    }
    for field in schema["required"].as_array().into_iter().flatten() {
        let field = field.as_str().expect("a field name");
        let x = v
            .get(field)
            .unwrap_or_else(|| panic!("{at}: {v} lacks required {field}"));
        assert_matches_schema(doc, &schema["properties"][field], x, &format!("{at}.{field}"));
    }
}

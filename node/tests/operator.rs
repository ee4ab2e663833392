//! What an operator does to a testnet and its nodes, against real `paychan` processes on
//! 127.0.0.1: `testnet up` never deletes a testnet unasked, `testnet start` runs a stopped one
//! again on its data and ports, `testnet down` never signals a pid that is not its node, keys
//! and data dirs are private, a restarted sequencer rejoins, and the control API answers bad
//! requests with one clear error that changes nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs a CLI command that must fail; returns its stderr.
fn cli_err(args: &[&str]) -> String {
    let mut cmd = paychan();
    cmd.args(args);
    let out = run_bounded(cmd, CLI_TIMEOUT);
    assert!(
        !out.status.success(),
        "paychan {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One error message: not empty, no repeated prefix, no Rust debug names of statuses.
fn assert_clear_error(msg: &str) {
    assert!(!msg.trim().is_empty(), "an empty error");
    let lower = msg.to_lowercase();
    for doubled in ["error: error", "rejected: rejected", "ledger: ledger"] {
        assert!(!lower.contains(doubled), "doubled prefix in {msg:?}");
    }
    assert!(
        !lower.trim_start().starts_with("error:"),
        "an `error:` prefix in {msg:?}"
    );
    for debug_name in ["Pending", "Open", "ShuttingDown", "Closing", "Closed", "Accepted"] {
        assert!(!msg.contains(debug_name), "debug name {debug_name} in {msg:?}");
    }
}

/// The `{"error": ...}` of an error answer, checked.
fn error_of(code: u16, v: &Value, want: u16) -> String {
    assert_eq!(code, want, "{v}");
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("error body is an object: {v}"));
    assert_eq!(obj.len(), 1, "one key in {v}");
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error message: {v}"))
        .to_owned();
    assert_clear_error(&msg);
    msg
}

/// `POST path` with raw bytes as a JSON body.
fn post_raw(api: &Api, path: &str, body: &str) -> (u16, Value) {
    let mut resp = agent()
        .post(format!("{}{path}", api.base))
        .header("Authorization", format!("Bearer {}", api.token))
        .content_type("application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status().as_u16();
    (
        status,
        resp.body_mut().read_json::<Value>().unwrap_or(Value::Null),
    )
}

/// `up` refuses an existing testnet (running or stopped) and `--force` replaces it; `start`
/// brings a stopped one back with the same keys, genesis, ledger and p2p addresses; `down`
/// removes stale pids without signalling them; keys are 0600 and dirs 0700 from the start.
#[test]
fn testnet_up_start_down_keep_the_data_and_signal_only_their_nodes() {
    let net = Testnet::up(2);
    let root = net.root_str().to_owned();

    // Private from creation.
    for dir in [net.root.clone(), net.root.join("clients"), net.dir(0), net.dir(1)] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for k in 0..3 {
        let key = net.root.join("clients").join(format!("client-{k}.key"));
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    for i in 0..2 {
        for f in ["node.key", "api.token"] {
            assert_eq!(mode(&net.dir(i).join(f)), 0o600, "node-{i}/{f}");
        }
    }

    let keys: Vec<String> = (0..2)
        .map(|i| std::fs::read_to_string(net.dir(i).join("node.key")).unwrap())
        .collect();
    let genesis = std::fs::read(net.dir(0).join("genesis.bin")).unwrap();
    let addrs: Vec<_> = (0..2).map(|i| net.p2p_addr(i)).collect();
    let height = net.api(1).height().unwrap();

    // Running: refused.
    let err = cli_err(&["testnet", "up", "--nodes", "2", "--dir", &root]);
    assert!(err.contains("already running"), "{err}");
    assert_eq!(net.down(), 2);

    // Stopped: refused too, with the way out, and nothing deleted.
    let err = cli_err(&["testnet", "up", "--nodes", "2", "--dir", &root]);
    assert!(err.contains("testnet start") && err.contains("--force"), "{err}");
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            &std::fs::read_to_string(net.dir(i).join("node.key")).unwrap(),
            key
        );
    }

    // Start: the same network on the same addresses, and its ledger moves on.
    let rows: Vec<Value> =
        serde_json::from_str(&cli_ok(&["testnet", "start", "--dir", &root, "--json"])).unwrap();
    for row in &rows {
        net.track_pid(row["pid"].as_u64().expect("a running node") as u32);
    }
    assert_eq!(std::fs::read(net.dir(0).join("genesis.bin")).unwrap(), genesis);
    for (i, (key, addr)) in keys.iter().zip(&addrs).enumerate() {
        assert_eq!(
            &std::fs::read_to_string(net.dir(i).join("node.key")).unwrap(),
            key
        );
        assert_eq!(&net.p2p_addr(i), addr, "node-{i} listens where it did");
        assert_eq!(rows[i]["peer_id"], net.peer_id(i).to_string());
    }
    wait_until("the restarted testnet to make blocks", STEP, || {
        let h = net.api(1).height()?;
        (h > height)
            .then_some(())
            .ok_or(format!("height {h}, was {height}"))
    });
    assert_eq!(net.down(), 2);

    // Stale pids: one of a live process that is no node, one of a process that has exited.
    let mut bystander = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(net.dir(0).join("node.pid"), bystander.id().to_string()).unwrap();
    std::fs::write(net.dir(1).join("node.pid"), gone_pid.to_string()).unwrap();
    let report: Value =
        serde_json::from_str(&cli_ok(&["testnet", "down", "--dir", &root, "--json"])).unwrap();
    let still_running = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(still_running, "down signalled a process that is not its node");
    assert_eq!(report["stopped"], 0, "{report}");
    let stale: Vec<(String, u64)> = report["stale_pids"]
        .as_array()
        .expect("stale_pids")
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["pid"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        stale,
        vec![
            ("node-0".to_owned(), bystander.id() as u64),
            ("node-1".to_owned(), gone_pid as u64)
        ]
    );
    for i in 0..2 {
        assert!(
            !net.dir(i).join("node.pid").exists(),
            "node-{i}: stale node.pid removed"
        );
    }

    // --force: a new testnet in its place.
    let rows: Vec<Value> = serde_json::from_str(&cli_ok(&[
        "testnet", "up", "--nodes", "2", "--dir", &root, "--force", "--json",
    ]))
    .unwrap();
    for row in &rows {
        net.track_pid(row["pid"].as_u64().expect("a running node") as u32);
    }
    assert_ne!(
        std::fs::read_to_string(net.dir(0).join("node.key")).unwrap(),
        keys[0]
    );
    assert_eq!(mode(&net.dir(0).join("node.key")), 0o600);
}

/// The sequencer killed with SIGKILL while the witnesses run, then started again on its data
/// dir: it listens where it did, the witnesses find it again, the ledger moves on and a
/// transfer submitted through a witness lands everywhere.
#[test]
fn a_restarted_sequencer_rejoins_and_the_ledger_moves_on() {
    let net = Testnet::up(3);
    let addr = net.p2p_addr(0);
    net.kill9(0);
    net.restart(0);
    assert_eq!(net.p2p_addr(0), addr, "the sequencer listens where it did");

    let base = (1..3).map(|i| net.api(i).height().unwrap()).max().unwrap();
    wait_until("the witnesses to apply new blocks", STEP, || {
        for i in 1..3 {
            let h = net.api(i).height()?;
            if h <= base + 1 {
                return Err(format!("node-{i} at {h}, was {base}"));
            }
        }
        Ok(())
    });
    let to = net.client_key(0).public();
    let id = wait_until("a transfer through a witness to be accepted", STEP, || {
        net.api(1).transfer(&to, 7)
    });
    wait_until("the transfer on every node", STEP, || {
        for i in 0..3 {
            let api = net.api(i);
            let h = api.height()?;
            if !tx_ids(&api.blocks(h)?).contains(&id) {
                return Err(format!("not on node-{i} at height {h}"));
            }
        }
        Ok(())
    });
}

/// Bad requests get 400/404 with one clear message and change nothing: a malformed close
/// body, a payment of count 0, a payment on an unknown channel, `limit=0`; statuses are
/// lowercase words and a refused transfer says why once.
#[test]
fn bad_api_requests_are_clear_errors_that_change_nothing() {
    let net = Testnet::up(2);
    let api = net.api(1);
    let data_dir = net.dir(1);
    let data_dir = data_dir.to_str().unwrap();

    // limit=0: an empty page, on the running node and (later) offline.
    for path in ["/v1/ledger/blocks?limit=0", "/v1/ledger/blocks?from=1&limit=0"] {
        assert_eq!(api.get(path).unwrap(), json!([]), "{path}");
    }
    assert!(api.height().is_ok(), "the node still answers");

    // An unknown channel: 404, whatever the count; the CLI fails on it.
    let unknown = "ab".repeat(32);
    for count in [0, 1] {
        let (code, v) = api
            .post(
                &format!("/v1/channels/{unknown}/pay"),
                &json!({"amount": 1, "count": count}),
            )
            .unwrap();
        let msg = error_of(code, &v, 404);
        assert!(msg.contains("unknown channel"), "{msg}");
    }
    let err = cli_err(&[
        "channel",
        "pay",
        &unknown,
        "--amount",
        "1",
        "--count",
        "0",
        "--data-dir",
        data_dir,
    ]);
    assert!(err.contains("404") && err.contains("unknown channel"), "{err}");
    assert!(!err.to_lowercase().contains("error: error"), "{err}");

    // A real channel: count 0 is a 400; malformed close bodies close nothing.
    let (code, v) = api
        .post(
            "/v1/channels",
            &json!({"peer": net.peer_id(0).to_string(), "deposit": 1_000, "their_deposit": 0}),
        )
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let ch = v["channel_id"].as_str().unwrap().to_owned();
    let (code, v) = api
        .post(
            &format!("/v1/channels/{ch}/pay"),
            &json!({"amount": 1, "count": 0}),
        )
        .unwrap();
    error_of(code, &v, 400);
    let err = cli_err(&[
        "channel",
        "pay",
        &ch,
        "--amount",
        "1",
        "--count",
        "0",
        "--data-dir",
        data_dir,
    ]);
    assert!(err.contains("400"), "{err}");
    for body in ["{not json", r#"{"force": "yes"}"#, r#"{"forse": true}"#, "[1]"] {
        let (code, v) = post_raw(&api, &format!("/v1/channels/{ch}/close"), body);
        error_of(code, &v, 400);
    }
    let status_of = || -> String {
        let list = api.get("/v1/channels").unwrap();
        let c = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == ch.as_str())
            .unwrap_or_else(|| panic!("channel in {list}"))
            .clone();
        c["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status_of(), "open", "a malformed close closed nothing");
    // The payee must see the open too before it takes payments.
    wait_until("node-0 to see the channel open", STEP, || {
        let list = net.api(0).get("/v1/channels")?;
        let open = list
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["id"] == ch.as_str() && c["status"] == "open");
        open.then_some(()).ok_or(format!("{list}"))
    });
    let (code, v) = api
        .post(&format!("/v1/channels/{ch}/pay"), &json!({"amount": 3}))
        .unwrap();
    assert_eq!(code, 200, "{v}");

    // A real close, then a payment on the closed channel: a lowercase status in the message.
    let (code, v) = api.post(&format!("/v1/channels/{ch}/close"), &json!({})).unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(status_of(), "closed");
    let (code, v) = api
        .post(&format!("/v1/channels/{ch}/pay"), &json!({"amount": 1}))
        .unwrap();
    let msg = error_of(code, &v, 422);
    assert!(msg.contains("closed"), "{msg}");

    // Transfers: statuses are lowercase words; a refusal relayed by a witness says why once.
    let to = net.client_key(0).public();
    let (code, v) = api
        .post("/v1/transfer", &json!({"to": to.to_hex(), "amount": 5}))
        .unwrap();
    assert_eq!((code, v["status"].as_str()), (200, Some("accepted")), "{v}");
    for i in 0..2 {
        let (code, v) = net
            .api(i)
            .post(
                "/v1/transfer",
                &json!({"to": to.to_hex(), "amount": u64::MAX / 2}),
            )
            .unwrap();
        let msg = error_of(code, &v, 422);
        assert!(msg.starts_with("overdraft"), "node-{i}: {msg}");
    }

    // Offline, limit=0 too.
    assert_eq!(net.down(), 2);
    let out = cli_ok(&[
        "ledger",
        "blocks",
        "--limit",
        "0",
        "--json",
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([]));
}

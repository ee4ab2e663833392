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
    assert_eq!(obj.len(), 2, "an error and its code in {v}");
    let code_word = v["code"].as_str().unwrap_or_else(|| panic!("a code: {v}"));
    assert!(
        !code_word.is_empty() && code_word.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{v}"
    );
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

/// Runs `paychan ARGS --json`; the output, success or failure, must be one JSON value. Returns
/// the exit code and that value.
fn cli_json(args: &[&str]) -> (i32, Value) {
    let mut cmd = paychan();
    cmd.args(args).arg("--json");
    let out = run_bounded(cmd, CLI_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "paychan {args:?} --json printed no JSON ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("an exit code"), v)
}

/// A `--json` failure: exit code `exit`, one `error` object with the documented fields and
/// `code`. Returns the message.
fn json_error(args: &[&str], exit: i32, code: &str) -> (String, Value) {
    let (got, v) = cli_json(args);
    assert_eq!(got, exit, "paychan {args:?}: {v}");
    let e = &v["error"];
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "one key: {v}");
    assert_eq!(e["code"], code, "{v}");
    let msg = e["message"]
        .as_str()
        .unwrap_or_else(|| panic!("a message: {v}"))
        .to_owned();
    assert_clear_error(&msg);
    (msg, e["done"].clone())
}

/// A `--json` success: exit 0 and the value.
fn json_ok(args: &[&str]) -> Value {
    let (code, v) = cli_json(args);
    assert_eq!(code, 0, "paychan {args:?}: {v}");
    v
}

/// Opens a channel from node `i` to node `j` through the CLI; returns its id once both see it
/// open.
fn open_channel(net: &Testnet, i: usize, j: usize, deposit: u64) -> String {
    let d = net.dir(i);
    let v = json_ok(&[
        "channel",
        "open",
        "--peer",
        &net.peer_id(j).to_string(),
        "--deposit",
        &deposit.to_string(),
        "--data-dir",
        d.to_str().unwrap(),
    ]);
    let id = v["channel_id"].as_str().expect("channel_id").to_owned();
    wait_until("the payee to see the channel open", STEP, || {
        let list = net.api(j).get("/v1/channels")?;
        let open = list
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["id"] == id.as_str() && c["status"] == "open");
        open.then_some(()).ok_or(format!("{list}"))
    });
    id
}

/// A pay job asked for more than the deposit stops when the funds run out, and says how many
/// payments and how much went through: in its JSON error (`done`) and in its text.
#[test]
fn a_pay_job_that_runs_out_of_funds_states_what_went_through() {
    let net = Testnet::up(2);
    let d1 = net.dir(1);
    let d1 = d1.to_str().unwrap();
    let ch = open_channel(&net, 1, 0, 1_000);

    // 500 payments of 3 from a deposit of 1,000: 333 fit (999), the 334th does not.
    let (msg, done) = json_error(
        &[
            "channel",
            "pay",
            &ch,
            "--amount",
            "3",
            "--count",
            "500",
            "--data-dir",
            d1,
        ],
        1,
        "refused",
    );
    assert!(
        msg.contains("insufficient funds") || msg.contains("funds"),
        "{msg}"
    );
    assert_eq!(done["payments"], 333, "{done}");
    assert_eq!(done["amount_total"], 999, "{done}");
    assert_eq!(done["amount_per_payment"], 3, "{done}");
    assert_eq!(done["payments_asked"], 500, "{done}");
    assert_eq!(done["channel_id"], ch.as_str(), "{done}");
    // The node agrees: it paid 999 on the channel.
    let view = net.api(1).get("/v1/channels").unwrap();
    let c = view
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ch.as_str())
        .unwrap();
    assert_eq!(c["sent"], 999, "{c}");

    // A job that fits in what is left (1) goes through whole.
    let v = json_ok(&["channel", "pay", &ch, "--amount", "1", "--data-dir", d1]);
    assert_eq!(
        (v["count"].as_u64(), v["amount_total"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );

    // The text says it too, on stderr, for a channel named by a unique prefix of its id;
    // nothing more fits now, so this job stops at once.
    let mut cmd = paychan();
    cmd.args([
        "channel",
        "pay",
        &ch[..10],
        "--amount",
        "1",
        "--count",
        "10",
        "--data-dir",
        d1,
    ]);
    let out = run_bounded(cmd, CLI_TIMEOUT);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("insufficient funds"), "{err}");
    assert!(
        err.contains("stopped after 0 of 10 payments: 0 cr went through"),
        "{err}"
    );
}

/// A cooperative close whose counterparty is offline fails within 10 s, says the peer is not
/// connected, and suggests `--force`; the channel is left to close later.
#[test]
fn a_cooperative_close_to_an_offline_peer_fails_with_the_hint_within_10_s() {
    let net = Testnet::up(3);
    let d1 = net.dir(1);
    let d1 = d1.to_str().unwrap();
    let ch = open_channel(&net, 1, 2, 1_000);
    net.kill9(2);
    let gone = net.peer_id(2).to_string();
    wait_until("node-1 to see node-2 gone", STEP, || {
        let peers = net.api(1).peers()?;
        (!peers.contains(&gone)).then_some(()).ok_or(format!("{peers:?}"))
    });

    let started = std::time::Instant::now();
    let (msg, done) = json_error(&["channel", "close", &ch, "--data-dir", d1], 3, "unreachable");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "the hint took {took:?}"
    );
    assert!(msg.contains("not connected") && msg.contains("--force"), "{msg}");
    assert!(msg.contains(&gone), "names the peer: {msg}");
    assert_eq!(done["channel_id"], ch.as_str(), "{done}");
    assert_eq!(done["steps"][0]["step"], "proposed", "{done}");

    // Without --json: the same hint on stderr, exit 3.
    let mut cmd = paychan();
    cmd.args(["channel", "close", &ch, "--data-dir", d1]);
    let started = std::time::Instant::now();
    let out = run_bounded(cmd, CLI_TIMEOUT);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--force"), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("proposed"),
        "the step was shown"
    );
}

/// Every command's `--json` output parses, success or failure, with the documented fields;
/// failures carry a code and exit with the documented exit code.
#[test]
fn every_command_prints_json_with_the_documented_fields_and_exit_codes() {
    let net = Testnet::up(2);
    let d1 = net.dir(1);
    let d1 = d1.to_str().unwrap();

    let info = json_ok(&["info", "--data-dir", d1]);
    for field in [
        "peer_id",
        "account",
        "role",
        "chain_id",
        "height",
        "time_ms",
        "p2p_addrs",
        "api_url",
        "public_url",
        "peers_connected",
        "channels",
        "balance_ledger",
        "balance_in_channels",
        "unit",
        "version",
    ] {
        assert!(info.get(field).is_some(), "info has {field}: {info}");
    }
    assert_eq!(info["peer_id"], net.peer_id(1).to_string());
    assert_eq!(info["role"], "witness");
    assert_eq!(info["peers_connected"], 1, "{info}");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info["unit"]["symbol"].is_string(), "{info}");
    let me = net.node_key(1).public();
    assert_eq!(info["balance_ledger"], net.api(1).balance(&me).unwrap());

    let peers = json_ok(&["peers", "--data-dir", d1]);
    assert_eq!(peers[0]["peer_id"], net.peer_id(0).to_string(), "{peers}");
    let status = json_ok(&["ledger", "status", "--data-dir", d1]);
    assert_eq!(status["chain_id"], info["chain_id"]);
    assert_eq!(status["unit"], info["unit"]);
    wait_until("a first block", STEP, || {
        let h = net.api(1).height()?;
        (h >= 1).then_some(()).ok_or(format!("height {h}"))
    });
    let blocks = json_ok(&["ledger", "blocks", "--limit", "2", "--data-dir", d1]);
    assert!(blocks[0]["time_ms"].is_u64(), "{blocks}");
    let balance = json_ok(&["ledger", "balance", "--data-dir", d1]);
    assert_eq!(balance["account"], me.to_hex());

    // A transfer waited for: witnessed in a block, and `ledger tx` says the same.
    let to = net.client_key(0).public().to_hex();
    let t = json_ok(&[
        "ledger",
        "transfer",
        "--to",
        &to,
        "--amount",
        "5",
        "--wait",
        "--data-dir",
        d1,
    ]);
    assert_eq!(t["status"], "witnessed", "{t}");
    assert_eq!(t["amount_total"], 5, "{t}");
    let tx_id = t["tx_id"].as_str().unwrap().to_owned();
    let tx = json_ok(&["ledger", "tx", &tx_id, "--data-dir", d1]);
    assert_eq!(
        (&tx["status"], &tx["height"], &tx["kind"]),
        (&json!("witnessed"), &t["height"], &json!("transfer")),
        "{tx}"
    );
    assert!(tx["height"].as_u64().unwrap() >= 1);
    json_error(
        &["ledger", "tx", &"cd".repeat(32), "--data-dir", d1],
        1,
        "not_found",
    );
    json_error(&["ledger", "tx", "zz", "--data-dir", d1], 1, "bad_request");
    json_error(
        &[
            "ledger",
            "transfer",
            "--to",
            "nope",
            "--amount",
            "1",
            "--data-dir",
            d1,
        ],
        1,
        "not_found",
    );
    let short = [
        "ledger",
        "transfer",
        "--to",
        "ab",
        "--amount",
        "1",
        "--data-dir",
        d1,
    ];
    json_error(&short, 1, "bad_request");
    // A testnet name is a party: client-0 is the account the transfer went to.
    let b = json_ok(&["ledger", "balance", "client-0", "--data-dir", d1]);
    assert_eq!(b["account"], to, "{b}");

    // Channels: open, list, pay, close without waiting.
    let ch = open_channel(&net, 1, 0, 10_000);
    let list = json_ok(&["channel", "list", "--data-dir", d1]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ch.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["counterparty_peer_id"], net.peer_id(0).to_string(), "{row}");
    assert_eq!(row["status"], "open");
    assert!(row["window_end_ms"].is_null(), "{row}");
    let paid = json_ok(&[
        "channel",
        "pay",
        &ch[..12],
        "--amount",
        "2",
        "--count",
        "50",
        "--data-dir",
        d1,
    ]);
    assert_eq!(
        (
            &paid["count"],
            &paid["amount_per_payment"],
            &paid["amount_total"],
            &paid["channel_id"]
        ),
        (&json!(50), &json!(2), &json!(100), &json!(ch)),
        "{paid}"
    );
    let info = json_ok(&["info", "--data-dir", d1]);
    assert_eq!(info["channels"]["open"], 1, "{info}");
    assert_eq!(info["balance_in_channels"], 10_000 - 100, "{info}");
    json_error(
        &[
            "channel",
            "pay",
            &"ab".repeat(32),
            "--amount",
            "1",
            "--data-dir",
            d1,
        ],
        1,
        "not_found",
    );
    json_error(
        &["channel", "pay", "ffff0000", "--amount", "1", "--data-dir", d1],
        1,
        "not_found",
    );
    let closing = json_ok(&["channel", "close", &ch, "--no-wait", "--data-dir", d1]);
    assert_eq!(closing["closed"], false, "{closing}");
    assert!(
        ["shutting_down", "closed"].contains(&closing["status"].as_str().unwrap_or("")),
        "{closing}"
    );
    wait_until("the cooperative close to pay out", STEP, || {
        let list = net.api(1).get("/v1/channels")?;
        let c = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == ch.as_str())
            .cloned();
        c.filter(|c| c["status"] == "closed" && c["payout"] == 9_900)
            .map(|_| ())
            .ok_or(format!("{list}"))
    });
    // A unilateral close shows its challenge window once the close is in a block.
    let ch2 = open_channel(&net, 1, 0, 1_000);
    let closing = json_ok(&["channel", "close", &ch2, "--force", "--no-wait", "--data-dir", d1]);
    assert_eq!(closing["status"], "closing", "{closing}");
    let row = wait_until("the close in a block", STEP, || {
        let list = json_ok(&["channel", "list", "--data-dir", d1]);
        let c = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == ch2.as_str())
            .cloned()
            .unwrap();
        c["window_end_ms"]
            .is_u64()
            .then_some(c.clone())
            .ok_or(format!("{c}"))
    });
    assert!(
        row["window_end_ms"].as_u64() >= row["ledger_time_ms"].as_u64(),
        "{row}"
    );

    // Usage errors (exit 2) and an unreachable node (exit 3), as JSON too.
    json_error(&["channel", "pay"], 2, "usage");
    json_error(&["ledger", "blocks", "--limit", "many"], 2, "usage");
    let nowhere = net.root.join("no-such-node");
    json_error(
        &["info", "--data-dir", nowhere.to_str().unwrap()],
        3,
        "unreachable",
    );

    // Every API error is JSON, query-string errors and wrong methods included.
    let api = net.api(1);
    let (code, v) = api.get_raw("/v1/ledger/blocks?limit=lots").unwrap();
    error_of(code, &v, 400);
    let (code, v) = api.post("/v1/info", &json!({})).unwrap();
    error_of(code, &v, 405);
    assert_eq!(v["code"], "method_not_allowed");
}

/// `key new --out` writes the secret to a new 0600 file, prints only the public key, and never
/// overwrites a file; `init` prints the peer id and the next command.
#[test]
fn key_new_out_writes_a_private_file_and_init_says_what_next() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("k.key");
    let f = file.to_str().unwrap();
    let v = json_ok(&["key", "new", "--out", f]);
    assert_eq!(mode(&file), 0o600);
    let seed: [u8; 32] = hex::decode(std::fs::read_to_string(&file).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        v["public_key"],
        paychan_protocol::Keypair::from_seed(seed).public().to_hex()
    );
    assert!(v.get("secret_key").is_none(), "the secret is not printed: {v}");
    let text = cli_ok(&["key", "new", "--out", tmp.path().join("k2.key").to_str().unwrap()]);
    assert!(!text.contains("secret key:"), "{text}");
    json_error(&["key", "new", "--out", f], 1, "refused");
    assert_eq!(std::fs::read(&file).unwrap().len(), 64, "the file is unchanged");

    // `--data-dir` where it does nothing is refused, not ignored.
    let tn = tmp.path().join("tn");
    let (msg, _) = json_error(
        &[
            "testnet",
            "status",
            "--dir",
            tn.to_str().unwrap(),
            "--data-dir",
            f,
        ],
        2,
        "usage",
    );
    assert!(msg.contains("--dir"), "{msg}");

    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let out = cli_ok(&["init", "--data-dir", d]);
    assert!(
        out.contains("peer id:") && out.contains(&format!("paychan run --data-dir {d}")),
        "{out}"
    );
    let v = json_ok(&["init", "--data-dir", tmp.path().join("node2").to_str().unwrap()]);
    let peer: paychan_net::PeerId = v["peer_id"].as_str().unwrap().parse().unwrap();
    let account = paychan_protocol::PublicKey::from_hex(v["account"].as_str().unwrap()).unwrap();
    assert_eq!(paychan_net::public_key_from_peer_id(&peer), Some(account));
    assert!(
        v["next"].as_str().unwrap().starts_with("paychan run --data-dir"),
        "{v}"
    );
}

/// A child process killed and reaped when dropped (on panic too).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Joining a chain: `init --genesis` of a testnet, `run` with no bootstrap peer, `connect` to
/// the sequencer: the node connects, remembers the address in `config.toml`, and its replica
/// catches up.
#[test]
fn a_node_of_ones_own_joins_a_chain_with_init_run_and_connect() {
    // Declared first, removed last: after the new node is stopped.
    let tmp = tempfile::tempdir().unwrap();
    let net = Testnet::up(2);
    let data = tmp.path().join("mine");
    let d = data.to_str().unwrap();
    let genesis = net.dir(0).join("genesis.bin");
    let v = json_ok(&["init", "--data-dir", d, "--genesis", genesis.to_str().unwrap()]);
    assert_eq!(v["chain_id"], net.genesis().chain_id().to_hex(), "{v}");

    let log = std::fs::File::create(tmp.path().join("mine.log")).unwrap();
    let child = paychan()
        .args(["run", "--data-dir", d])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start a node");
    // Not under the testnet's dir, so not the testnet's to stop: killed here whatever happens.
    let _node = KillOnDrop(child);
    wait_until("the new node's API", STEP, || {
        Api::of(&data)?.get("/v1/info").map(|_| ())
    });
    let mine = Api::of(&data).unwrap();
    assert_eq!(
        mine.peers().unwrap(),
        Vec::<String>::new(),
        "no peer before connect"
    );

    let addr = net.p2p_addr(0).to_string();
    let v = json_ok(&["connect", &addr, "--data-dir", d]);
    assert_eq!(v["peer_id"], net.peer_id(0).to_string(), "{v}");
    assert!(mine.peers().unwrap().contains(&net.peer_id(0).to_string()));
    let config = std::fs::read_to_string(data.join("config.toml")).unwrap();
    assert!(config.contains(&addr), "remembered in config.toml:\n{config}");
    // Connecting again changes nothing in the config; a bad address is a clear 400.
    json_ok(&["connect", &addr, "--data-dir", d]);
    let again = std::fs::read_to_string(data.join("config.toml")).unwrap();
    assert_eq!(again.matches(addr.as_str()).count(), 1, "{again}");
    json_error(
        &["connect", "/ip4/127.0.0.1/tcp/1", "--data-dir", d],
        1,
        "bad_request",
    );

    let target = net.api(0).height().unwrap().max(1);
    wait_until("the new node to catch up", STEP, || {
        let h = mine.height()?;
        (h >= target)
            .then_some(())
            .ok_or(format!("height {h} < {target}"))
    });
}

/// Ctrl-C stops a pay job after the call in flight and says what went through (exit 3,
/// `interrupted`); the numbers are the node's.
#[test]
fn a_pay_job_stopped_with_ctrl_c_states_what_went_through() {
    let net = Testnet::up(2);
    let d1 = net.dir(1);
    let d1 = d1.to_str().unwrap();
    let ch = open_channel(&net, 1, 0, 10_000_000);
    let child = paychan()
        .args([
            "channel", "pay", &ch, "--amount", "1", "--count", "5000000", "--json",
        ])
        .args(["--data-dir", d1])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a pay job");
    let pid = child.id();
    let job = KillOnDrop(child);
    wait_until("the job to have paid something", STEP, || {
        let list = net.api(1).get("/v1/channels")?;
        let sent = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"] == ch.as_str())
            .and_then(|c| c["sent"].as_u64())
            .unwrap_or(0);
        (sent > 0).then_some(()).ok_or(format!("sent {sent}"))
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut job = job;
    let mut stdout = job.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        let _ = tx.send(s);
    });
    let out = rx.recv_timeout(CLI_TIMEOUT).expect("the job ends after Ctrl-C");
    let status = job.0.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{out}");
    let v: Value = serde_json::from_str(out.trim()).expect("a JSON error");
    assert_eq!(v["error"]["code"], "interrupted", "{v}");
    let done = &v["error"]["done"];
    let paid = done["payments"].as_u64().unwrap();
    assert!(paid > 0 && paid < 5_000_000, "{v}");
    assert_eq!(done["amount_total"], paid, "{v}");
    // Once the acks are in, the node agrees to the payment.
    wait_until("the node's count to settle", STEP, || {
        let list = net.api(1).get("/v1/channels")?;
        let c = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"] == ch.as_str())
            .cloned()
            .unwrap_or_default();
        (c["sent"] == paid && c["unacked"] == 0)
            .then_some(())
            .ok_or(format!("{c} vs {paid}"))
    });
}

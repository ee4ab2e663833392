//! Harness for the multi-process tests: real `paychan` node processes on 127.0.0.1 (ephemeral
//! ports), each testnet in a fresh temporary directory.
//!
//! - [`Testnet`] runs `paychan testnet up`, talks to each node's control API with its bearer
//!   token, kills and restarts nodes, and always tears down: its `Drop` runs `testnet down`,
//!   SIGKILLs every node pid it saw and every process it spawned (also on panic), and prints the
//!   tail of each node log when the test failed.
//! - [`wait_until`] polls a condition under a deadline: no test sleeps where it can poll.
//! - [`TestPeer`] is a libp2p peer of the test's own (`paychan_net::Net`, a fresh key), and
//!   [`raw_peer`] one that writes arbitrary bytes on `/paychan/ledger/1`.

#![allow(dead_code)]

pub mod x402;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use paychan_net::{Multiaddr, Net, NetConfig, NetEvent, NetHandle, PeerId};
use paychan_protocol::wire::LedgerResponse;
use paychan_protocol::{Genesis, Keypair, PublicKey, Wire};
use serde_json::Value;
use tokio::sync::mpsc;

/// Bound on one wait (a node to start, a block to land, a peer to connect).
pub const STEP: Duration = Duration::from_secs(20);
/// Bound on one CLI command.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(40);
/// Poll interval of [`wait_until`].
pub const POLL: Duration = Duration::from_millis(50);

/// The `paychan` binary under test.
pub fn paychan() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paychan"));
    // A node's error without a backtrace, so that the tail of its log a failing test prints
    // shows the error itself.
    c.env("RUST_LIB_BACKTRACE", "0");
    c
}

/// Polls `f` every [`POLL`] until it returns `Ok`, for at most `timeout`. Panics with `what` and
/// the last `Err` reason when the deadline passes.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(why) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}: {why}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Runs a command to completion under `timeout` (SIGKILL on expiry) and returns its output.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the paychan binary");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for the command"),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}

/// Runs a CLI command that must succeed and returns its stdout.
pub fn cli_ok(args: &[&str]) -> String {
    let mut cmd = paychan();
    cmd.args(args);
    let out = run_bounded(cmd, CLI_TIMEOUT);
    assert!(
        out.status.success(),
        "paychan {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Whether a process exists and is not a zombie (an exited process not yet reaped by its
/// parent counts as gone).
pub fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(false)
}

/// An HTTP client of one node's control API.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token from `api.token`.
    pub token: String,
    agent: ureq::Agent,
}

/// A ureq agent that returns every status as a response, with a bounded request time.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

impl Api {
    /// The API of the node whose data dir is `dir` (reads `api.addr` and `api.token`).
    pub fn of(dir: &Path) -> Result<Api, String> {
        let addr = std::fs::read_to_string(dir.join("api.addr")).map_err(|e| format!("api.addr: {e}"))?;
        let token = std::fs::read_to_string(dir.join("api.token")).map_err(|e| format!("api.token: {e}"))?;
        if addr.trim().is_empty() {
            return Err("api.addr is empty".into());
        }
        Ok(Api {
            base: format!("http://{}", addr.trim()),
            token: token.trim().to_owned(),
            agent: agent(),
        })
    }

    /// `GET path` with the token: status and JSON body (`Null` if the body is not JSON).
    pub fn get_raw(&self, path: &str) -> Result<(u16, Value), String> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// `GET path` that must answer 200.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        match self.get_raw(path)? {
            (200, v) => Ok(v),
            (s, v) => Err(format!("GET {path}: {s} {v}")),
        }
    }

    /// `POST path` with a JSON body and the token: status and JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// `/v1/ledger/status`.
    pub fn status(&self) -> Result<Value, String> {
        self.get("/v1/ledger/status")
    }

    /// The replica's height.
    pub fn height(&self) -> Result<u64, String> {
        self.status()?["height"]
            .as_u64()
            .ok_or_else(|| "no height".into())
    }

    /// Blocks `1..=upto` (paged through `/v1/ledger/blocks`).
    pub fn blocks(&self, upto: u64) -> Result<Vec<Value>, String> {
        let mut out: Vec<Value> = Vec::new();
        while (out.len() as u64) < upto {
            let from = out.len() as u64 + 1;
            let limit = (upto - from + 1).min(256);
            let page = self.get(&format!("/v1/ledger/blocks?from={from}&limit={limit}"))?;
            let page = page.as_array().ok_or("blocks is not an array")?.clone();
            if page.is_empty() {
                return Err(format!("{} has no block {from}", self.base));
            }
            for b in page {
                if b["height"].as_u64() != Some(out.len() as u64 + 1) {
                    return Err(format!("block out of order: {b}"));
                }
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The balance of `account`.
    pub fn balance(&self, account: &PublicKey) -> Result<u64, String> {
        self.get(&format!("/v1/accounts/{}", account.to_hex()))?["balance"]
            .as_u64()
            .ok_or_else(|| "no balance".into())
    }

    /// Peer ids in `/v1/peers`.
    pub fn peers(&self) -> Result<Vec<String>, String> {
        Ok(self
            .get("/v1/peers")?
            .as_array()
            .ok_or("peers is not an array")?
            .iter()
            .filter_map(|p| p["peer_id"].as_str().map(str::to_owned))
            .collect())
    }

    /// A transfer from the node's account through `POST /v1/transfer`; returns the tx id.
    pub fn transfer(&self, to: &PublicKey, amount: u64) -> Result<String, String> {
        match self.post(
            "/v1/transfer",
            &serde_json::json!({"to": to.to_hex(), "amount": amount}),
        )? {
            (200, v) if v["status"] == "accepted" => Ok(v["tx_id"].as_str().unwrap_or_default().to_owned()),
            (s, v) => Err(format!("transfer: {s} {v}")),
        }
    }
}

/// The hashes of a list of block views.
pub fn hashes(blocks: &[Value]) -> Vec<String> {
    blocks
        .iter()
        .map(|b| b["hash"].as_str().expect("block hash").to_owned())
        .collect()
}

/// Every transaction id in a list of block views.
pub fn tx_ids(blocks: &[Value]) -> Vec<String> {
    blocks
        .iter()
        .flat_map(|b| b["txs"].as_array().cloned().unwrap_or_default())
        .map(|t| t["id"].as_str().expect("tx id").to_owned())
        .collect()
}

/// A running local testnet in a temporary directory. Dropping it tears it down.
pub struct Testnet {
    /// The testnet directory (`node-0`, `node-1`, ... and `clients/`).
    pub root: PathBuf,
    /// Number of nodes.
    pub n: usize,
    /// Wall time of `paychan testnet up`.
    pub up_time: Duration,
    /// The `testnet up --json` rows.
    pub up_rows: Vec<Value>,
    /// Every node pid seen (from `up` and restarts): killed on drop if still alive.
    pids: Mutex<Vec<u32>>,
    /// Processes this test spawned itself (restarted nodes).
    children: Mutex<Vec<Child>>,
    /// Removed last, after the teardown in `drop`.
    _tmp: tempfile::TempDir,
}

impl Testnet {
    /// `paychan testnet up --nodes n` in a fresh temporary directory.
    pub fn up(n: usize) -> Testnet {
        Testnet::up_with(n, &[])
    }

    /// `paychan testnet up --nodes n EXTRA...` in a fresh temporary directory.
    pub fn up_with(n: usize, extra: &[&str]) -> Testnet {
        let tmp = tempfile::Builder::new()
            .prefix("paychan-it-")
            .tempdir()
            .expect("create a temporary directory");
        let root = tmp.path().join("testnet");
        // The guard exists before any node starts: a failing `up` is torn down too.
        let mut net = Testnet {
            root: root.clone(),
            n,
            up_time: Duration::ZERO,
            up_rows: Vec::new(),
            pids: Mutex::new(Vec::new()),
            children: Mutex::new(Vec::new()),
            _tmp: tmp,
        };
        let started = Instant::now();
        let nodes = n.to_string();
        let mut args = vec![
            "testnet",
            "up",
            "--nodes",
            &nodes,
            "--dir",
            root.to_str().expect("utf-8 path"),
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = cli_ok(&args);
        net.up_time = started.elapsed();
        let rows: Vec<Value> = serde_json::from_str(&out).expect("`testnet up --json` prints JSON");
        for row in &rows {
            if let Some(pid) = row["pid"].as_u64() {
                net.pids.lock().unwrap().push(pid as u32);
            }
        }
        net.up_rows = rows;
        net
    }

    /// Data dir of node `i`.
    pub fn dir(&self, i: usize) -> PathBuf {
        self.root.join(format!("node-{i}"))
    }

    /// The control API of node `i` (read from its data dir now: a restart changes the port).
    pub fn api(&self, i: usize) -> Api {
        Api::of(&self.dir(i)).unwrap_or_else(|e| panic!("node-{i}: {e}"))
    }

    /// The genesis, decoded from `node-0/genesis.bin`.
    pub fn genesis(&self) -> Genesis {
        let bytes = std::fs::read(self.dir(0).join("genesis.bin")).expect("read genesis.bin");
        Genesis::from_bytes(&bytes).expect("genesis.bin decodes")
    }

    /// The fee (PROTOCOL.md §8.4) of a fee-paying transaction of `bytes` canonical bytes.
    pub fn fee(&self, bytes: u64) -> u64 {
        let g = self.genesis();
        g.tx_fee_min + g.tx_fee_per_byte * bytes
    }

    /// The fee the transaction the ledger holds under `pick` (a block's `txs` entry: `id`,
    /// `kind`, `channel`, `bytes`) paid, from node-0's blocks; panics unless exactly one
    /// matches.
    pub fn fee_of(&self, what: &str, pick: impl Fn(&Value) -> bool) -> u64 {
        let api = self.api(0);
        let tip = api.height().expect("height");
        let txs: Vec<Value> = api
            .blocks(tip)
            .expect("blocks")
            .into_iter()
            .flat_map(|b| b["txs"].as_array().cloned().unwrap_or_default())
            .filter(|t| pick(t))
            .collect();
        assert_eq!(txs.len(), 1, "{what}: {txs:?}");
        self.fee(txs[0]["bytes"].as_u64().expect("bytes"))
    }

    /// The fee the open of `channel` (hex id) paid; its proposer paid it to node-0.
    pub fn open_fee(&self, channel: &str) -> u64 {
        self.fee_of(&format!("the open of {channel}"), |t| {
            t["kind"] == "open" && t["channel"] == channel
        })
    }

    /// The fee the transaction `tx_id` (hex) paid.
    pub fn tx_fee(&self, tx_id: &str) -> u64 {
        self.fee_of(&format!("transaction {tx_id}"), |t| t["id"] == tx_id)
    }

    /// The keypair of node `i` (its `node.key` seed).
    pub fn node_key(&self, i: usize) -> Keypair {
        read_seed(&self.dir(i).join("node.key"))
    }

    /// The funded spare client account `k` (`clients/client-k.key`).
    pub fn client_key(&self, k: usize) -> Keypair {
        read_seed(&self.root.join("clients").join(format!("client-{k}.key")))
    }

    /// The `/ip4/.../p2p/...` address of node `i`.
    pub fn p2p_addr(&self, i: usize) -> Multiaddr {
        std::fs::read_to_string(self.dir(i).join("p2p.addr"))
            .expect("p2p.addr")
            .trim()
            .parse()
            .expect("a multiaddr")
    }

    /// The peer id of node `i`.
    pub fn peer_id(&self, i: usize) -> PeerId {
        paychan_net::peer_id_from_public_key(&self.node_key(i).public()).expect("an ed25519 peer id")
    }

    /// The pid of node `i` from its `node.pid`.
    pub fn pid(&self, i: usize) -> u32 {
        std::fs::read_to_string(self.dir(i).join("node.pid"))
            .expect("node.pid")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// `paychan testnet status --json`.
    pub fn status_rows(&self) -> Vec<Value> {
        let out = cli_ok(&["testnet", "status", "--dir", self.root_str(), "--json"]);
        serde_json::from_str(&out).expect("`testnet status --json` prints JSON")
    }

    /// The testnet dir as a string.
    pub fn root_str(&self) -> &str {
        self.root.to_str().expect("utf-8 path")
    }

    /// SIGKILLs node `i` and waits until the process is gone.
    pub fn kill9(&self, i: usize) {
        let pid = self.pid(i);
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL the node");
        // A node this test spawned is its child: reap it so that it does not linger as a zombie.
        for c in self.children.lock().unwrap().iter_mut() {
            if c.id() == pid {
                let _ = c.wait();
            }
        }
        wait_until(&format!("node-{i} (pid {pid}) to die"), STEP, || {
            if alive(pid) {
                Err("still alive".into())
            } else {
                Ok(())
            }
        });
    }

    /// Starts node `i` again (`paychan run --data-dir`, output to `restart.log` in its data dir)
    /// and waits until its API answers.
    pub fn restart(&self, i: usize) {
        let dir = self.dir(i);
        // A killed node leaves its address files behind; wait for fresh ones.
        for f in ["api.addr", "p2p.addr", "node.pid"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let log = std::fs::File::create(dir.join("restart.log")).expect("create restart.log");
        let child = paychan()
            .arg("run")
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start a node");
        let pid = child.id();
        self.pids.lock().unwrap().push(pid);
        self.children.lock().unwrap().push(child);
        wait_until(&format!("restarted node-{i} to serve its API"), STEP, || {
            if !alive(pid) {
                return Err(format!(
                    "the node exited; restart.log:\n{}",
                    tail(&dir.join("restart.log"), 30)
                ));
            }
            Api::of(&dir)?.get("/v1/info").map(|_| ())
        });
    }

    /// `paychan testnet down`; returns the number of nodes it stopped.
    pub fn down(&self) -> u64 {
        let out = cli_ok(&["testnet", "down", "--dir", self.root_str(), "--json"]);
        for c in self.children.lock().unwrap().iter_mut() {
            let _ = c.wait();
        }
        let v: Value = serde_json::from_str(&out).expect("`testnet down --json` prints JSON");
        v["stopped"].as_u64().expect("stopped count")
    }

    /// Every pid this testnet has had.
    pub fn all_pids(&self) -> Vec<u32> {
        self.pids.lock().unwrap().clone()
    }

    /// Records a pid to kill on teardown.
    pub fn track_pid(&self, pid: u32) {
        self.pids.lock().unwrap().push(pid);
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            for i in 0..self.n {
                for log in ["node.log", "restart.log"] {
                    let path = self.dir(i).join(log);
                    if path.exists() {
                        eprintln!("---- node-{i}/{log} (tail) ----\n{}", tail(&path, 40));
                    }
                }
            }
        }
        // `testnet down` (SIGTERM, then SIGKILL after its own timeout); bounded.
        if self.dir(0).join("node.key").exists() {
            let mut cmd = paychan();
            cmd.args(["testnet", "down", "--dir", self.root_str()]);
            if let Ok(child) = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                let pid = child.id();
                let (tx, rx) = std::sync::mpsc::channel();
                let mut child = child;
                std::thread::spawn(move || {
                    let _ = tx.send(child.wait());
                });
                if rx.recv_timeout(Duration::from_secs(15)).is_err() {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
            }
        }
        // Whatever is left of the processes this test started: SIGKILL, by pid.
        let mut pids = self.pids.lock().map(|p| p.clone()).unwrap_or_default();
        pids.extend(node_pids_under(&self.root));
        for pid in pids {
            if alive(pid) && is_node_of(pid, &self.root) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        if let Ok(mut children) = self.children.lock() {
            for c in children.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Whether `pid` is a `paychan` process whose command line names a path under `root`: a node of
/// this testnet, not some other process that reused the pid.
fn is_node_of(pid: u32, root: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let root = root.to_string_lossy();
            c.split(|b| *b == 0)
                .any(|arg| String::from_utf8_lossy(arg).starts_with(root.as_ref()))
        })
        .unwrap_or(false)
}

/// Pids of live processes whose command line names a data dir under `root` (the nodes of this
/// testnet, whoever started them).
fn node_pids_under(root: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_node_of(*pid, root))
        .collect()
}

fn read_seed(path: &Path) -> Keypair {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).expect("a hex seed");
    Keypair::from_seed(seed)
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---- libp2p peers of the test's own ----

/// Runs `f` under [`STEP`].
pub async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

/// A `paychan_net::Net` peer with a fresh key. A task answers every ledger request the nodes
/// send it (catch-up asks every peer) with an error and passes the other events on.
pub struct TestPeer {
    /// The handle.
    pub handle: NetHandle,
    /// Its peer id.
    pub peer: PeerId,
    /// Its key (its ledger account).
    pub key: Keypair,
    /// Events other than ledger requests.
    pub events: mpsc::UnboundedReceiver<NetEvent>,
}

impl TestPeer {
    /// Starts a peer on 127.0.0.1 (ephemeral port). Call inside a tokio runtime.
    pub async fn start() -> TestPeer {
        TestPeer::start_with(Keypair::generate()).await
    }

    /// Starts a peer with the given key (e.g. a funded client account of the testnet), as
    /// [`TestPeer::start`] does.
    pub async fn start_with(key: Keypair) -> TestPeer {
        let mut config = NetConfig::new("/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"));
        config.gossip_heartbeat = Duration::from_millis(200);
        config.request_timeout = Duration::from_secs(10);
        let (handle, mut raw_events, _task) =
            Net::new(key.seed(), config).await.expect("the test peer starts");
        let (tx, events) = mpsc::unbounded_channel();
        let h = handle.clone();
        tokio::spawn(async move {
            while let Some(event) = raw_events.recv().await {
                match event {
                    NetEvent::LedgerRequest { responder, .. } => {
                        let _ = h
                            .respond(
                                responder,
                                LedgerResponse::Error {
                                    text: "a test peer serves nothing".into(),
                                },
                            )
                            .await;
                    }
                    other => {
                        let _ = tx.send(other);
                    }
                }
            }
        });
        TestPeer {
            peer: handle.local_peer_id(),
            handle,
            key,
            events,
        }
    }

    /// Waits for the first event `f` maps to `Some`, dropping the others.
    pub async fn wait_for<T>(&mut self, what: &str, mut f: impl FnMut(NetEvent) -> Option<T>) -> T {
        bounded(what, async {
            loop {
                let event = self.events.recv().await.expect("the test peer runs");
                if let Some(v) = f(event) {
                    return v;
                }
            }
        })
        .await
    }
}

// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use paychan_testkit::raw::{
    raw_connect, raw_redial_refused, raw_request_until_closed, RawCodec, RawSwarm,
};

/// A raw peer (the workspace's testkit: it writes arbitrary bytes on `/paychan/ledger/1`) with
/// a fresh identity, whose requests fail after 10 s. Call inside a tokio runtime.
pub fn raw_peer() -> RawSwarm {
    paychan_testkit::raw::raw_peer(Duration::from_secs(10))
}

/// A `paychan_net::Net` peer (fresh key, 127.0.0.1) that accepts ledger requests and never
/// answers them: it holds each one while it runs, so that a requester waits out its whole
/// timeout. Counts the `GetBlocks` requests it was sent.
pub struct SilentPeer {
    /// The handle.
    pub handle: NetHandle,
    /// Its peer id.
    pub peer: PeerId,
    /// Its listen address with `/p2p/<id>`.
    pub addr: Multiaddr,
    /// `GetBlocks` requests received so far.
    pub asked_blocks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentPeer {
    /// Starts one. Call inside a tokio runtime.
    pub async fn start() -> SilentPeer {
        use paychan_protocol::wire::LedgerRequest;
        let config = NetConfig::new("/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"));
        let (handle, mut events, _task) = Net::new(Keypair::generate().seed(), config)
            .await
            .expect("the silent peer starts");
        let peer = handle.local_peer_id();
        let addr = handle.listen_addrs().await.expect("listen addrs")[0]
            .clone()
            .with(paychan_net::libp2p::multiaddr::Protocol::P2p(peer));
        let asked_blocks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let asked = asked_blocks.clone();
        tokio::spawn(async move {
            // Dropping a responder would end the request at once; holding it makes it time out.
            let mut held = Vec::new();
            while let Some(event) = events.recv().await {
                if let NetEvent::LedgerRequest {
                    request, responder, ..
                } = event
                {
                    if matches!(request, LedgerRequest::GetBlocks { .. }) {
                        asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    held.push(responder);
                }
            }
        });
        SilentPeer {
            handle,
            peer,
            addr,
            asked_blocks,
        }
    }

    /// `GetBlocks` requests received so far.
    pub fn asked(&self) -> usize {
        self.asked_blocks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

// ----- channels through the CLI and the API -----

pub fn dir_str(net: &Testnet, i: usize) -> String {
    net.dir(i).to_str().expect("utf-8 path").to_owned()
}

pub fn cli_json_ok(args: &[&str]) -> Value {
    serde_json::from_str(&cli_ok(args)).unwrap_or_else(|e| panic!("paychan {args:?} --json: {e}"))
}

/// `paychan channel open` on node `i` to node `j`; returns the channel id once it is open.
pub fn open_cli(net: &Testnet, i: usize, j: usize, deposit: u64, their_deposit: u64) -> String {
    let v = cli_json_ok(&[
        "channel",
        "open",
        "--peer",
        &net.peer_id(j).to_string(),
        "--deposit",
        &deposit.to_string(),
        "--their-deposit",
        &their_deposit.to_string(),
        "--data-dir",
        &dir_str(net, i),
        "--json",
    ]);
    let id = v["channel_id"].as_str().expect("channel_id").to_owned();
    wait_status(&net.api(j), &id, "open");
    id
}

/// One channel of a node's `GET /v1/channels`.
pub fn channel_view(api: &Api, id: &str) -> Result<Value, String> {
    let list = api.get("/v1/channels")?;
    list.as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == id)
        .cloned()
        .ok_or_else(|| format!("no channel {id} at {}", api.base))
}

pub fn wait_status(api: &Api, id: &str, status: &str) {
    wait_until(
        &format!("channel {id} to be {status} at {}", api.base),
        STEP,
        || {
            let v = channel_view(api, id)?;
            (v["status"] == status).then_some(()).ok_or(format!("{v}"))
        },
    )
}

//! A local testnet: N node processes on 127.0.0.1 sharing one genesis.
//!
//! `up` writes `D/node-0` … `D/node-{N-1}` (node 0 the sequencer, the others witnesses) and
//! `D/clients/client-K.key` (funded spare accounts for client programs), starts each node as a
//! detached `paychan run` process logging to `D/node-I/node.log`, and waits until every node
//! is connected to every other and serves its API. `down` stops the processes and keeps the data;
//! `start` runs them again on that data (same keys, genesis, channels and p2p ports). `up`
//! refuses a dir that already holds a testnet unless `--force` says to delete it.
//!
//! Every node's config names a concrete p2p port and lists every other node as a bootstrap
//! peer, so that a restarted node finds its peers and they find it. Before signalling a pid
//! from `node.pid`, `down` checks in `/proc` that the process is a `paychan run` of that very
//! data dir; a stale pid is reported and removed, never signalled.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use paychan_protocol::{Genesis, Keypair, PublicKey};
use serde::Serialize;
use serde_json::Value;

use crate::config::{create_private_dir, write_private, Config, DataDir, PublicConfig};
use crate::http::ApiClient;
use crate::node::now_ms;

/// Spare client accounts a testnet funds.
pub const TESTNET_CLIENTS: usize = 3;
/// What genesis gives every node and client account.
pub const TESTNET_ALLOCATION: u64 = 1_000_000_000;
/// How long `up` waits for the network to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `down` waits for a node to exit after SIGTERM before it sends SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Fees of the shipped geneses: a fixed part and one unit per byte of the transaction.
pub const TX_FEE_MIN: u64 = 100;
/// See [`TX_FEE_MIN`].
pub const TX_FEE_PER_BYTE: u64 = 1;

/// The genesis of a local testnet: a challenge window short enough that the demo's unilateral
/// close settles in half a minute, yet of 60 largest time steps (half a second each, with a
/// heartbeat as often), so that even after a sequencer outage a window takes at least 60
/// blocks, about 12 s of real time at one block per 200 ms, to pass.
pub fn testnet_genesis(nodes: &[PublicKey], clients: &[PublicKey]) -> Genesis {
    let witnesses: Vec<PublicKey> = nodes[1..].to_vec();
    let threshold = if witnesses.is_empty() {
        0
    } else {
        witnesses.len() as u32 / 2 + 1
    };
    let mut allocations: Vec<(PublicKey, u64)> = nodes
        .iter()
        .chain(clients)
        .map(|k| (*k, TESTNET_ALLOCATION))
        .collect();
    allocations.sort_by_key(|(k, _)| *k);
    Genesis {
        network: "paychan-testnet".into(),
        unit: paychan_protocol::Unit::credit(),
        genesis_time_ms: now_ms(),
        sequencer: nodes[0],
        witnesses,
        witness_threshold: threshold,
        challenge_period_ms: 30_000,
        block_interval_ms: 200,
        heartbeat_interval_ms: 500,
        max_time_step_ms: 500,
        max_txs_per_block: 1_024,
        max_pending_per_account: 256,
        tx_fee_min: TX_FEE_MIN,
        tx_fee_per_byte: TX_FEE_PER_BYTE,
        allocations,
    }
}

/// The genesis `paychan init` writes when given none: a one-node development chain with the
/// testnet's schedule but a realistic challenge window of 24 hours, so that a party offline
/// for a night still answers a stale close in time.
pub fn init_genesis(node: PublicKey) -> Genesis {
    Genesis {
        network: "paychan-dev".into(),
        challenge_period_ms: 24 * 3_600_000,
        max_time_step_ms: 60_000,
        heartbeat_interval_ms: 10_000,
        block_interval_ms: 1_000,
        ..testnet_genesis(&[node], &[])
    }
}

fn node_dir(root: &Path, i: usize) -> DataDir {
    DataDir::new(root.join(format!("node-{i}")))
}

/// The data dirs of an existing testnet, in order.
fn node_dirs(root: &Path) -> Result<Vec<DataDir>> {
    let mut dirs = Vec::new();
    while node_dir(root, dirs.len()).key_path().exists() {
        dirs.push(node_dir(root, dirs.len()));
    }
    if dirs.is_empty() {
        bail!(
            "no testnet in {} (run `paychan testnet up` first)",
            root.display()
        );
    }
    // Amounts the testnet commands print carry the testnet's unit.
    if let Ok(genesis) = dirs[0].genesis() {
        crate::output::set_unit(&genesis.unit);
    }
    Ok(dirs)
}

/// One node of a testnet, as `status` reports it.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Node name (`node-I`).
    pub name: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// p2p address with `/p2p/`, when running.
    pub p2p_addr: Option<String>,
    /// Control API URL, when running.
    pub api_url: Option<String>,
    /// Public read listener URL, when running with one.
    pub public_url: Option<String>,
    /// Data dir.
    pub data_dir: String,
    /// Role in the ledger.
    pub role: &'static str,
    /// Process id, when running.
    pub pid: Option<u32>,
    /// Ledger height, when running.
    pub height: Option<u64>,
}

/// What `testnet up` makes.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Number of nodes (node 0 is the sequencer).
    pub nodes: usize,
    /// TEST ONLY: the sequencer drops dispute updates (for the censorship test).
    pub test_drop_updates: bool,
    /// TEST ONLY: the sequencer signs two checkpoints for one log size (split-view test).
    pub test_equivocate: bool,
    /// TEST ONLY: the sequencer signs two blocks at one height (double-block test).
    pub test_double_block: bool,
    /// TEST ONLY: the sequencer's clock runs this far ahead (blocks from the future).
    pub test_clock_ahead_ms: u64,
    /// TEST ONLY: a challenge window other than the testnet's 30 s (tests of unilateral
    /// closes that would otherwise wait for it).
    pub test_challenge_period_ms: Option<u64>,
    /// Delete a stopped testnet in the directory first; without it an existing one is refused.
    pub force: bool,
}

/// `testnet up`: a new testnet in `root`, started.
pub fn up(root: &Path, opts: &UpOptions) -> Result<Vec<NodeStatus>> {
    let UpOptions {
        nodes,
        test_drop_updates,
        test_equivocate,
        test_double_block,
        test_clock_ahead_ms,
        test_challenge_period_ms,
        force,
    } = opts.clone();
    if nodes == 0 {
        bail!("a testnet needs at least one node");
    }
    if let Some(ms) = test_challenge_period_ms {
        // Refused before anything is written: the genesis rules bound the window.
        let probe = Genesis {
            challenge_period_ms: ms,
            ..testnet_genesis(&[Keypair::generate().public()], &[])
        };
        paychan_ledger::validate_genesis(&probe).context("--test-challenge-period-ms")?;
    }
    if node_dir(root, 0).key_path().exists() {
        if running(root)? {
            bail!(
                "a testnet is already running in {} (`paychan testnet down` first)",
                root.display()
            );
        }
        if !force {
            bail!(
                "{} already holds a testnet (its keys, ledger and channels); run it again with \
                 `paychan testnet start --dir {}`, or pass --force to delete it and create a new one",
                root.display(),
                root.display()
            );
        }
        std::fs::remove_dir_all(root).with_context(|| format!("clear {}", root.display()))?;
    }
    create_private_dir(root)?;
    create_private_dir(&root.join("clients"))?;
    let mut keys = Vec::new();
    for i in 0..nodes {
        keys.push(node_dir(root, i).init(&Config::default(), None)?);
    }
    let mut clients = Vec::new();
    for k in 0..TESTNET_CLIENTS {
        let kp = Keypair::generate();
        write_private(
            &root.join("clients").join(format!("client-{k}.key")),
            hex::encode(kp.seed()).as_bytes(),
        )?;
        clients.push(kp.public());
    }
    let node_keys: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
    let mut genesis = testnet_genesis(&node_keys, &clients);
    if let Some(ms) = test_challenge_period_ms {
        genesis.challenge_period_ms = ms;
    }
    // Concrete ports, so that each node knows every other's address before any starts, and
    // keeps its own across restarts.
    let ports = free_ports(nodes)?;
    let mut addrs = Vec::new();
    for (key, port) in node_keys.iter().zip(&ports) {
        let peer = paychan_net::peer_id_from_public_key(key).context("a node key is a libp2p identity")?;
        addrs.push(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}"));
    }
    for (i, port) in ports.iter().enumerate() {
        let dir = node_dir(root, i);
        dir.write_genesis(&genesis)?;
        dir.write_config(&Config {
            listen: format!("/ip4/127.0.0.1/tcp/{port}"),
            bootstrap: addrs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.clone())
                .collect(),
            test_drop_updates: test_drop_updates && i == 0,
            public: Some(PublicConfig::default()),
            test_equivocate: test_equivocate && i == 0,
            test_double_block: test_double_block && i == 0,
            test_clock_ahead_ms: if i == 0 { test_clock_ahead_ms } else { 0 },
            ..Config::default()
        })?;
    }
    start_all(root)
}

/// `testnet start`: runs every node of a stopped testnet again on its data.
pub fn start(root: &Path) -> Result<Vec<NodeStatus>> {
    if running(root)? {
        bail!("a testnet is already running in {}", root.display());
    }
    start_all(root)
}

/// `n` distinct free TCP ports on 127.0.0.1, drawn below the kernel's ephemeral range.
///
/// A port the kernel handed out for `bind(0)` lies in its ephemeral range, the same range it
/// takes the source port of every outgoing connection from: between this function releasing
/// the port and the node binding it, any connection on the machine may take it (seen when
/// many testnets start at once). Ports below that range are only ever taken by an explicit
/// bind. All are held until all are found, so that no two are the same; another program that
/// binds a fixed port may still take one before its node binds it.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let (low, _) = ephemeral_range();
    const FLOOR: u16 = 10_000;
    if low < FLOOR + 1_000 {
        // No room below the range: fall back to the kernel's choice.
        let listeners = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()
            .context("find free ports on 127.0.0.1")?;
        return listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect();
    }
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        if tries > 10_000 {
            bail!("found no {n} free ports on 127.0.0.1 between {FLOOR} and {low}");
        }
        let port =
            FLOOR + (rand_core::RngCore::next_u32(&mut rand_core::OsRng) % u32::from(low - FLOOR)) as u16;
        if ports.contains(&port) {
            continue;
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The kernel's ephemeral port range (Linux reads it from procfs; elsewhere the IANA range).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((49_152, 65_535))
}

/// Starts every node of `root` and waits until the network is ready.
fn start_all(root: &Path) -> Result<Vec<NodeStatus>> {
    let dirs = node_dirs(root)?;
    let nodes = dirs.len();
    let exe = std::env::current_exe().context("locate the paychan binary")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    for dir in &dirs {
        start_process(&exe, dir)?;
    }
    for (i, dir) in dirs.iter().enumerate() {
        wait_listening(i, dir, deadline, "start")?;
    }
    // Ready: every node serves its API, sees every other node and has applied the genesis.
    for dir in dirs {
        let api = ApiClient::from_data_dir(&dir)?;
        loop {
            let peers = api
                .get("peers")
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            let info = api.get("info").ok();
            if peers + 1 >= nodes && info.is_some() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} did not connect to every node in time", dir.root().display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let rows = status(root)?;
    write_testnet_files(root, &rows)?;
    Ok(rows)
}

/// Writes `testnet.json` into every node's data dir: the testnet's nodes (name, role, peer id,
/// public URL), which the explorer's testnet view (`/explorer/testnet`) lists.
fn write_testnet_files(root: &Path, rows: &[NodeStatus]) -> Result<()> {
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            // The address file itself: the node wrote it once it listened.
            let public_url = std::fs::read_to_string(DataDir::new(&r.data_dir).public_addr_path())
                .ok()
                .map(|a| format!("http://{}", a.trim()))
                .or_else(|| r.public_url.clone());
            serde_json::json!({
                "name": r.name, "role": r.role, "peer_id": r.peer_id, "public_url": public_url,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&list)?;
    for dir in node_dirs(root)? {
        std::fs::write(dir.root().join(crate::explorer::TESTNET_FILE), &text)?;
    }
    Ok(())
}

/// Waits until node `i` wrote its p2p, API and public addresses (it listens on all three).
fn wait_listening(i: usize, dir: &DataDir, deadline: Instant, what: &str) -> Result<()> {
    wait_for_file(&dir.p2p_addr_path(), deadline).with_context(|| {
        format!(
            "node-{i} did not {what}; see {}",
            dir.root().join("node.log").display()
        )
    })?;
    wait_for_file(&dir.api_addr_path(), deadline)?;
    wait_for_file(&dir.public_addr_path(), deadline)?;
    Ok(())
}

/// Stops node `i` of the running testnet in `root` (SIGTERM, SIGKILL after [`STOP_TIMEOUT`])
/// and starts it again (`paychan run`, reading its config.toml anew); returns once it serves
/// its API and sees every other node.
pub fn restart_node(root: &Path, i: usize) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let dirs = node_dirs(root)?;
    let dir = dirs.get(i).with_context(|| format!("no node-{i}"))?;
    if let Some(pid) = pid_of(dir) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(pid) && runs_data_dir(pid, dir.root()) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            while alive(pid) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let _ = std::fs::remove_file(dir.pid_path());
    let exe = std::env::current_exe().context("locate the paychan binary")?;
    start_process(&exe, dir)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    wait_listening(i, dir, deadline, "start again")?;
    let api = ApiClient::from_data_dir(dir)?;
    loop {
        let peers = api
            .get("peers")
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if peers + 1 >= dirs.len() && api.get("info").is_ok() {
            // Its public URL changed: the testnet view reads the new one.
            return write_testnet_files(root, &status(root)?);
        }
        if Instant::now() > deadline {
            bail!("node-{i} did not connect to every node in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_process(exe: &Path, dir: &DataDir) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(dir.root().join("node.log"))?;
    let _ = std::fs::remove_file(dir.p2p_addr_path());
    let _ = std::fs::remove_file(dir.api_addr_path());
    let _ = std::fs::remove_file(dir.public_addr_path());
    Command::new(exe)
        .arg("run")
        .arg("--data-dir")
        .arg(dir.root())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal that ran `up` does not reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("start a node in {}", dir.root().display()))?;
    Ok(())
}

fn wait_for_file(path: &Path, deadline: Instant) -> Result<String> {
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.trim().is_empty() {
                return Ok(s.trim().to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid `node.pid` records, if any.
fn recorded_pid(dir: &DataDir) -> Option<u32> {
    std::fs::read_to_string(dir.pid_path()).ok()?.trim().parse().ok()
}

/// The pid of the node running in `dir`: the recorded one, if that process is alive and is a
/// `paychan run` of this data dir.
fn pid_of(dir: &DataDir) -> Option<u32> {
    recorded_pid(dir).filter(|pid| alive(*pid) && runs_data_dir(*pid, dir.root()))
}

/// Whether process `pid` is a `paychan` binary running `run` on the data dir `root`, read from
/// `/proc` (its executable, command line, working directory and environment).
fn runs_data_dir(pid: u32, root: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let is_paychan = std::fs::read_link(proc_dir.join("exe"))
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .map(|n| n.to_string_lossy().starts_with("paychan"))
        })
        .unwrap_or(false);
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !is_paychan || !args.iter().skip(1).any(|a| a == "run") {
        return false;
    }
    let from_args = args.iter().enumerate().skip(1).find_map(|(i, a)| {
        if a == "--data-dir" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--data-dir=").map(str::to_owned)
        }
    });
    let from_env = || {
        std::fs::read(proc_dir.join("environ")).ok().and_then(|env| {
            env.split(|b| *b == 0).find_map(|kv| {
                String::from_utf8_lossy(kv)
                    .strip_prefix("PAYCHAN_DATA_DIR=")
                    .map(str::to_owned)
            })
        })
    };
    let Some(data_dir) = from_args.or_else(from_env) else {
        return false;
    };
    let data_dir = PathBuf::from(data_dir);
    let data_dir = if data_dir.is_absolute() {
        data_dir
    } else {
        match std::fs::read_link(proc_dir.join("cwd")) {
            Ok(cwd) => cwd.join(data_dir),
            Err(_) => return false,
        }
    };
    match (data_dir.canonicalize(), root.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // Signal 0 checks existence. A zombie still "exists"; /proc tells it apart.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z')))
            .unwrap_or(false)
}

fn running(root: &Path) -> Result<bool> {
    Ok(node_dirs(root)?.iter().any(|d| pid_of(d).is_some()))
}

/// `testnet status`.
pub fn status(root: &Path) -> Result<Vec<NodeStatus>> {
    let dirs = node_dirs(root)?;
    let genesis = dirs[0].genesis()?;
    let mut out = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let key = dir.keypair()?.public();
        let peer_id = paychan_net::peer_id_from_public_key(&key)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let pid = pid_of(dir);
        let read = |p: PathBuf| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
        let api_url = read(dir.api_addr_path()).map(|a| format!("http://{a}"));
        let public_url = read(dir.public_addr_path()).map(|a| format!("http://{a}"));
        let height = match (pid, &api_url) {
            (Some(_), Some(_)) => ApiClient::from_data_dir(dir)
                .and_then(|c| c.get("info"))
                .ok()
                .and_then(|v: Value| v["height"].as_u64()),
            _ => None,
        };
        let role = if key == genesis.sequencer {
            "sequencer"
        } else if genesis.witnesses.contains(&key) {
            "witness"
        } else {
            "replica"
        };
        out.push(NodeStatus {
            name: format!("node-{i}"),
            peer_id,
            p2p_addr: pid.and_then(|_| read(dir.p2p_addr_path())),
            api_url: pid.and(api_url),
            public_url: pid.and(public_url),
            data_dir: dir.root().display().to_string(),
            role,
            pid,
            height,
        });
    }
    Ok(out)
}

/// A `node.pid` that named no node of its data dir, as `down` reports it.
#[derive(Debug, Serialize)]
pub struct StalePid {
    /// Node name (`node-I`).
    pub name: String,
    /// The pid the file named.
    pub pid: u32,
}

/// What `testnet down` did.
#[derive(Debug, Serialize)]
pub struct DownReport {
    /// Nodes stopped.
    pub stopped: usize,
    /// Stale `node.pid` files removed without signalling anything.
    pub stale_pids: Vec<StalePid>,
}

/// `testnet down`: SIGTERM every node, then SIGKILL any that did not exit in time. Only a pid
/// that is a node of its data dir is signalled; a stale one is removed and reported.
pub fn down(root: &Path) -> Result<DownReport> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut pids = Vec::new();
    let mut stale_pids = Vec::new();
    for (i, dir) in node_dirs(root)?.into_iter().enumerate() {
        let Some(recorded) = recorded_pid(&dir) else {
            continue;
        };
        match pid_of(&dir) {
            Some(pid) => {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                pids.push((pid, dir));
            }
            None => {
                let _ = std::fs::remove_file(dir.pid_path());
                let _ = std::fs::remove_file(dir.api_addr_path());
                let _ = std::fs::remove_file(dir.p2p_addr_path());
                stale_pids.push(StalePid {
                    name: format!("node-{i}"),
                    pid: recorded,
                });
            }
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for (pid, dir) in &pids {
        while alive(*pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Checked again: the pid may have been reused since the SIGTERM.
        if alive(*pid) && runs_data_dir(*pid, dir.root()) {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(dir.pid_path());
        let _ = std::fs::remove_file(dir.api_addr_path());
        let _ = std::fs::remove_file(dir.public_addr_path());
        let _ = std::fs::remove_file(dir.p2p_addr_path());
    }
    Ok(DownReport {
        stopped: pids.len(),
        stale_pids,
    })
}

/// Prints the status table.
pub fn print_table(rows: &[NodeStatus]) {
    println!(
        "{:<8} {:<10} {:<54} {:<24} {:<24} {:>7} {:<60}",
        "NAME", "ROLE", "PEER ID", "API", "PUBLIC", "HEIGHT", "P2P ADDRESS"
    );
    for r in rows {
        println!(
            "{:<8} {:<10} {:<54} {:<24} {:<24} {:>7} {:<60}",
            r.name,
            r.role,
            r.peer_id,
            r.api_url.as_deref().unwrap_or("(down)"),
            r.public_url.as_deref().unwrap_or("-"),
            r.height.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
            r.p2p_addr.as_deref().unwrap_or("-"),
        );
    }
    if let Some(url) = rows.iter().find_map(|r| r.public_url.as_deref()) {
        println!("explorer: {url}/#/testnet");
    }
}

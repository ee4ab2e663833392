//! Node processes: testnets made and stopped with the `paychan` binary, driven through their
//! control API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use paychan_protocol::{Hash32, Keypair};
use serde_json::{json, Value};

/// A testnet directory and the binary that runs it.
#[derive(Debug, Clone)]
pub struct Testnet {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub nodes: usize,
}

/// One node's control API.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    /// From a running node's data dir.
    pub fn of(dir: &Path) -> Result<Api> {
        let addr = std::fs::read_to_string(dir.join("api.addr")).context("api.addr")?;
        let token = std::fs::read_to_string(dir.join("api.token")).context("api.token")?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        Ok(Api {
            base: format!("http://{}", addr.trim()),
            token: token.trim().to_owned(),
            agent,
        })
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(format!("{}/v1/{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("GET /v1/{path}"))?;
        read(resp)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self
            .agent
            .post(format!("{}/v1/{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .with_context(|| format!("POST /v1/{path}"))?;
        read(resp)
    }

    /// Opens a channel to `peer` (peer id or account); returns its id.
    pub fn open(&self, peer: &str, deposit: u64, their_deposit: u64) -> Result<String> {
        let v = self.post(
            "channels",
            &json!({"peer": peer, "deposit": deposit, "their_deposit": their_deposit}),
        )?;
        v["channel_id"]
            .as_str()
            .map(str::to_owned)
            .context("no channel_id in the open's answer")
    }

    /// One pay job; the node's answer (`per_second`, and what else the node reports).
    pub fn pay(&self, channel: &str, count: u64, per_proof: Option<u64>) -> Result<Value> {
        let mut body = json!({"amount": 1, "count": count});
        if let Some(k) = per_proof {
            body["per_proof"] = json!(k);
        }
        self.post(&format!("channels/{channel}/pay"), &body)
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
    let status = resp.status();
    let body: Value = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_json()
        .map_err(|e| anyhow!("unreadable answer ({status}): {e}"))?;
    if !status.is_success() {
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("no detail");
        bail!("{status}: {msg}");
    }
    Ok(body)
}

/// The payments/s of a pay job's answer.
pub fn per_second(v: &Value) -> Result<f64> {
    v["per_second"]
        .as_f64()
        .context("no per_second in the pay answer")
}

impl Testnet {
    pub fn new(bin: &Path, dir: PathBuf, nodes: usize) -> Testnet {
        Testnet {
            bin: bin.to_path_buf(),
            dir,
            nodes,
        }
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .with_context(|| format!("run paychan {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "paychan {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `testnet up --force`; returns how long it took (ms): until every node is connected to
    /// every other and serves its API, as `up` waits for.
    pub fn up(&self) -> Result<f64> {
        if self.dir.exists() {
            // A testnet left running by an interrupted run would make `up` refuse.
            self.down();
        }
        let n = self.nodes.to_string();
        let t = Instant::now();
        self.run(&["testnet", "up", "--nodes", &n, "--force"])?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    pub fn down(&self) {
        let _ = self.run(&["testnet", "down"]);
    }

    pub fn start(&self) -> Result<()> {
        self.run(&["testnet", "start"]).map(drop)
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    pub fn api(&self, i: usize) -> Result<Api> {
        Api::of(&self.node_dir(i))
    }

    /// `testnet status --json`.
    pub fn status(&self) -> Result<Vec<Value>> {
        let s = self.run(&["testnet", "status", "--json"])?;
        let v: Value = serde_json::from_str(&s).context("testnet status --json")?;
        v.as_array().cloned().context("testnet status is a list")
    }

    pub fn peer_id(&self, i: usize) -> Result<String> {
        self.status()?
            .get(i)
            .and_then(|n| n["peer_id"].as_str())
            .map(str::to_owned)
            .context("no such node")
    }

    /// Sets `[storage] durability` of every node (the testnet must be down).
    pub fn set_durability(&self, mode: &str) -> Result<()> {
        for i in 0..self.nodes {
            let path = self.node_dir(i).join("config.toml");
            let text = std::fs::read_to_string(&path)?;
            if !text.lines().any(|l| l.starts_with("durability = ")) {
                bail!("no durability line in {}", path.display());
            }
            let new: Vec<String> = text
                .lines()
                .map(|l| {
                    if l.starts_with("durability = ") {
                        format!("durability = \"{mode}\"")
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            std::fs::write(&path, new.join("\n") + "\n")?;
        }
        Ok(())
    }

    /// The pid of node `i`.
    pub fn pid(&self, i: usize) -> Result<u32> {
        let s = std::fs::read_to_string(self.node_dir(i).join("node.pid"))?;
        s.trim().parse().context("node.pid")
    }

    /// Resident memory of node `i`, bytes (`VmRSS`).
    pub fn rss_bytes(&self, i: usize) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(i)?))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS")?
            .parse()?;
        Ok(kb * 1024)
    }

    /// The key of node `i` (its `node.key` seed), or of spare client `k`.
    pub fn node_key(&self, i: usize) -> Result<Keypair> {
        read_seed(&self.node_dir(i).join("node.key"))
    }

    pub fn client_key(&self, k: usize) -> Result<Keypair> {
        read_seed(&self.dir.join("clients").join(format!("client-{k}.key")))
    }
}

fn read_seed(path: &Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).context("a key file holds 64 hex characters")?;
    Ok(Keypair::from_seed(seed))
}

/// Stops the testnets it holds when dropped, so that no node outlives the harness.
#[derive(Debug, Default)]
pub struct Guard(pub Vec<Testnet>);

impl Drop for Guard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.down();
        }
    }
}

/// Waits until `f` holds, polling every `every`, for at most `limit`.
pub fn wait_until(limit: Duration, every: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if f()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("gave up after {} s", limit.as_secs());
        }
        std::thread::sleep(every);
    }
}

/// The ledger bytes of every transaction naming `channel` in the blocks of node `api`.
pub fn channel_tx_bytes(api: &Api, channel: &str) -> Result<(u64, Vec<String>)> {
    let height = api.get("ledger/status")?["height"].as_u64().context("height")?;
    let mut from = 1u64;
    let mut bytes = 0u64;
    let mut kinds = Vec::new();
    while from <= height {
        let blocks = api.get(&format!("ledger/blocks?from={from}&limit=256"))?;
        let list = blocks.as_array().context("blocks")?;
        if list.is_empty() {
            break;
        }
        for b in list {
            for tx in b["txs"].as_array().into_iter().flatten() {
                if tx["channel"].as_str() == Some(channel) {
                    bytes += tx["bytes"].as_u64().unwrap_or(0);
                    kinds.push(tx["kind"].as_str().unwrap_or("?").to_owned());
                }
            }
            from = b["height"].as_u64().unwrap_or(from) + 1;
        }
    }
    Ok((bytes, kinds))
}

/// A signed open of a channel between `a` (who pays the fee and locks `deposit_a`) and `b`,
/// salted by `n`, valid until `expiry_ms` of ledger time, as canonical transaction hex.
pub fn open_tx_hex(
    chain_id: Hash32,
    a: &Keypair,
    b: &Keypair,
    n: u64,
    deposit_a: u64,
    expiry_ms: u64,
) -> String {
    use paychan_protocol::channel::SignedOpen;
    use paychan_protocol::hash::sha256;
    use paychan_protocol::{ChannelOpen, Tx, Wire};
    let open = ChannelOpen {
        chain_id,
        party_a: a.public(),
        party_b: b.public(),
        deposit_a,
        deposit_b: 0,
        salt_a: sha256(&[b"paychan-bench/salt-a", &n.to_le_bytes()]),
        salt_b: sha256(&[b"paychan-bench/salt-b", &n.to_le_bytes()]),
        expiry_ms,
    };
    let tx = Tx::Open(SignedOpen {
        sig_a: open.sign(a),
        sig_b: open.sign(b),
        open,
    });
    hex::encode(tx.to_bytes())
}

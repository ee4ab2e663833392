//! The 402 gateway's own speed: `paid_requests_per_s` and `unpaid_requests_per_s`, through the
//! same gateway in the same run, one client (`paychan fetch --count`) with [`LANES`] requests
//! in flight (its keep-alive connections, and for paid requests as many channels), in front
//! of a minimal upstream (this process, a fixed 2-byte answer); and the same with one lane
//! (one connection, one request at a time), printed beside them.
//!
//! A 2-node testnet; node-1 gets a `[gateway]` section (price 1, `/free/` unpaid) and the
//! testnet is started again. Each repetition runs the paid and the unpaid job, in an order
//! flipped every time; a paid job opens its own channel (its first request, not counted).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::nodes::{wait_until, Testnet};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";

/// A keep-alive HTTP/1.1 server that answers every request with [`ANSWER`].
fn upstream() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    Ok(addr)
}

fn serve(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    loop {
        let n = match s.read(&mut tmp) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&tmp[..n]);
        let mut out = Vec::new();
        while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..i + 4);
            out.extend_from_slice(ANSWER);
        }
        if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
    }
}

/// `paychan fetch URL --count N --parallel P --json ...`: its requests/s.
fn fetch(bin: &Path, url: &str, key: &Path, count: u64, parallel: u64) -> Result<f64> {
    let out = Command::new(bin)
        .args(["fetch", url, "--key"])
        .arg(key)
        .args([
            "--parallel",
            &parallel.to_string(),
            "--count",
            &count.to_string(),
            "--keep-open",
            "--json",
            "--max-price",
            "1",
        ])
        .args(["--deposit", &(count / parallel + 10).to_string()])
        .output()
        .context("run paychan fetch")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("paychan fetch {url} failed: {}", stderr.trim());
    }
    let v: Value =
        serde_json::from_str(stderr.lines().last().unwrap_or("")).context("fetch's JSON report")?;
    v["requests_per_s"].as_f64().context("no requests_per_s")
}

/// Requests in flight at once in the figures of the JSON line (`paychan fetch --parallel`):
/// one client, one key, this many keep-alive connections and, paid, as many channels (the
/// payments of one channel are sequential).
pub const LANES: u64 = 32;

/// The requests/s of each repetition, with one lane and with [`LANES`].
pub struct Rates {
    pub paid: Vec<f64>,
    pub unpaid: Vec<f64>,
    pub paid_one_lane: Vec<f64>,
    pub unpaid_one_lane: Vec<f64>,
}

/// Paid and unpaid requests/s over `reps` repetitions of `count` requests each, with one
/// lane and with [`LANES`].
pub fn measure(bin: &Path, work: &Path, reps: usize, count: u64) -> Result<Rates> {
    let net = Testnet::new(bin, work.join("gateway"), 2);
    let _guard = crate::nodes::Guard(vec![Testnet::new(bin, work.join("gateway"), 2)]);
    net.up()?;
    let up = upstream()?;
    net.down();
    let config = net.node_dir(1).join("config.toml");
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&format!(
        "\n[gateway]\nupstream = \"http://{up}\"\nlisten = \"127.0.0.1:0\"\nprice = 1\nfree = [\"/free/\"]\n"
    ));
    std::fs::write(&config, text)?;
    let addr_file = net.node_dir(1).join("gateway.addr");
    let _ = std::fs::remove_file(&addr_file);
    net.start()?;
    wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        Ok(addr_file.exists())
    })?;
    let gw = std::fs::read_to_string(&addr_file)?.trim().to_owned();
    let key = work.join("gateway").join("clients").join("client-0.key");
    let mut rates = Rates {
        paid: Vec::new(),
        unpaid: Vec::new(),
        paid_one_lane: Vec::new(),
        unpaid_one_lane: Vec::new(),
    };
    let paid_url = format!("http://{gw}/paid");
    let free_url = format!("http://{gw}/free/x");
    for rep in 0..reps {
        for (lanes, paid, unpaid) in [
            (1, &mut rates.paid_one_lane, &mut rates.unpaid_one_lane),
            (LANES, &mut rates.paid, &mut rates.unpaid),
        ] {
            if rep % 2 == 0 {
                paid.push(fetch(bin, &paid_url, &key, count, lanes)?);
                unpaid.push(fetch(bin, &free_url, &key, count, lanes)?);
            } else {
                unpaid.push(fetch(bin, &free_url, &key, count, lanes)?);
                paid.push(fetch(bin, &paid_url, &key, count, lanes)?);
            }
        }
    }
    net.down();
    Ok(rates)
}

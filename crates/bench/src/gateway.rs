//! The 402 gateway's own speed: `paid_requests_per_s` and `unpaid_requests_per_s`, through the
//! same gateway in the same run, one client on one keep-alive connection (`paychan fetch
//! --count`), in front of a minimal upstream (this process, a fixed 2-byte answer).
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

/// `paychan fetch URL --count N --json ...`: its requests/s.
fn fetch(bin: &Path, url: &str, key: &Path, count: u64) -> Result<f64> {
    let out = Command::new(bin)
        .args(["fetch", url, "--key"])
        .arg(key)
        .args([
            "--count",
            &count.to_string(),
            "--keep-open",
            "--json",
            "--max-price",
            "1",
        ])
        .args(["--deposit", &(count + 10).to_string()])
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

/// The requests/s of each repetition.
pub struct Rates {
    pub paid: Vec<f64>,
    pub unpaid: Vec<f64>,
}

/// Paid and unpaid requests/s over `reps` repetitions of `count` requests each.
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
    let (mut paid, mut unpaid) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let paid_url = format!("http://{gw}/paid");
        let free_url = format!("http://{gw}/free/x");
        if rep % 2 == 0 {
            paid.push(fetch(bin, &paid_url, &key, count)?);
            unpaid.push(fetch(bin, &free_url, &key, count)?);
        } else {
            unpaid.push(fetch(bin, &free_url, &key, count)?);
            paid.push(fetch(bin, &paid_url, &key, count)?);
        }
    }
    net.down();
    Ok(Rates { paid, unpaid })
}

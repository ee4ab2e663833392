//! This machine's limits, measured in the same run as the figures they bound: ed25519 sign,
//! verify and batch verify on one core, SHA-256, a TCP round trip between two processes on
//! 127.0.0.1, and an append + `fsync`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use paychan_protocol::crypto::{verify, BatchVerifier};
use paychan_protocol::hash::{sha256, tags};
use paychan_protocol::{Keypair, Signature};

use crate::stats::median;

/// Bytes of the message signed and hashed: about one balance proof's body.
pub const MESSAGE_BYTES: usize = 140;
/// Signatures per batch in the batch-verify limit: a payee's burst of 256 proofs.
pub const BATCH: usize = 256;

/// The limits, each the median of its repetitions.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub sign_per_s: Option<f64>,
    pub verify_per_s: Option<f64>,
    pub batch_verify_per_s: Option<f64>,
    pub sha256_per_s: Option<f64>,
    pub loopback_rtt_us: Option<f64>,
    pub fsync_us: Option<f64>,
}

/// Runs `op` in a loop for about `dur`, `per` operations per call; returns operations/s.
fn rate(dur: Duration, per: usize, mut op: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let mut done = 0u64;
    let mut i = 0u64;
    while start.elapsed() < dur {
        op(i);
        i += 1;
        done += per as u64;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn message(i: u64) -> Vec<u8> {
    let mut m = vec![0x5au8; MESSAGE_BYTES];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

/// Measures every limit, `reps` times each for about `dur`.
pub fn measure(reps: usize, dur: Duration, work_dir: &Path, echo_exe: &Path) -> Result<Limits> {
    let kp = Keypair::from_seed([7; 32]);
    let pk = kp.public();
    let msgs: Vec<Vec<u8>> = (0..1024).map(message).collect();
    let sigs: Vec<Signature> = msgs.iter().map(|m| kp.sign(tags::PROOF_SIG, m)).collect();
    let mut sign = Vec::new();
    let mut ver = Vec::new();
    let mut batch = Vec::new();
    let mut sha = Vec::new();
    for _ in 0..reps {
        sign.push(rate(dur, 1, |i| {
            std::hint::black_box(kp.sign(tags::PROOF_SIG, &msgs[i as usize % msgs.len()]));
        }));
        ver.push(rate(dur, 1, |i| {
            let k = i as usize % msgs.len();
            verify(&pk, tags::PROOF_SIG, &msgs[k], &sigs[k]).expect("a valid signature");
        }));
        batch.push(rate(dur, BATCH, |i| {
            let mut b = BatchVerifier::new();
            let off = (i as usize * BATCH) % msgs.len();
            for k in off..off + BATCH {
                let k = k % msgs.len();
                b.queue(&pk, tags::PROOF_SIG, &msgs[k], &sigs[k]);
            }
            b.verify().expect("a valid batch");
        }));
        sha.push(rate(dur, 1, |i| {
            std::hint::black_box(sha256(&[&msgs[i as usize % msgs.len()]]));
        }));
    }
    let rtt = loopback_rtt(reps, echo_exe).ok();
    let fsync = fsync_us(reps, work_dir).ok();
    Ok(Limits {
        sign_per_s: median(&sign),
        verify_per_s: median(&ver),
        batch_verify_per_s: median(&batch),
        sha256_per_s: median(&sha),
        loopback_rtt_us: rtt,
        fsync_us: fsync,
    })
}

/// Kills the echo process when dropped.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Median round trip of one byte between this process and an echo process on 127.0.0.1
/// (`paychan-bench echo`), µs: the floor of any exchange between two node processes.
fn loopback_rtt(reps: usize, echo_exe: &Path) -> Result<f64> {
    let mut child = Command::new(echo_exe)
        .arg("echo")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("start the echo process")?;
    let mut out = child.stdout.take().context("echo stdout")?;
    let reap = Reap(child);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte)? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let port: u16 = String::from_utf8(line)?.trim().parse().context("echo port")?;
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let mut samples = Vec::new();
    let mut buf = [0u8; 1];
    for i in 0..(2_000 * reps.max(1)) {
        let t = Instant::now();
        s.write_all(&[i as u8])?;
        s.read_exact(&mut buf)?;
        if i >= 200 {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(reap);
    median(&samples).context("no samples")
}

/// The echo side of [`loopback_rtt`]: prints its port, echoes one connection until it ends.
pub fn echo() -> Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", l.local_addr()?.port());
    std::io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    s.set_nodelay(true)?;
    let mut buf = [0u8; 1];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&buf).is_err() {
            break;
        }
    }
    Ok(())
}

/// Median time of appending 512 bytes to a file and `fsync`ing it, µs, on the disk the
/// benchmark's stores live on.
fn fsync_us(reps: usize, dir: &Path) -> Result<f64> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("fsync.probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [0xa5u8; 512];
    let mut samples = Vec::new();
    for _ in 0..(200 * reps.max(1)) {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_all()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    median(&samples).context("no samples")
}

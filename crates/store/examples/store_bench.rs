//! sled insert rates through the `Store` trait: no flush, a flush per write, and group commit
//! (one flush per 256 writes), in both sync modes. Median of 5 runs, each in a fresh database.
//!
//! Run: `cargo run --release -p paychan-store --example store_bench [DIR]`. DIR (default: the
//! system temp dir) must be on the disk being measured: on tmpfs every flush is free.
//!
//! Besides wall time it prints the CPU time of the writing thread (from
//! `/proc/thread-self/schedstat`, Linux only), which other load on the machine barely moves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paychan_protocol::{ChannelId, Hash32};
use paychan_store::{SledOptions, SledStore, Store, SyncMode};

/// Size of one record: about one balance proof with its memo.
const VALUE_BYTES: usize = 200;
const RUNS: usize = 5;
const GROUP_WRITES: usize = 256;

fn key(i: u64) -> ChannelId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&i.to_be_bytes());
    ChannelId(Hash32(b))
}

/// CPU time of the calling thread so far (zero where unavailable).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// What to write through.
#[derive(Clone, Copy)]
enum Target {
    /// `Store::put_channel` of a `SledStore`.
    Store(SyncMode),
    /// A bare sled tree, for the cost of the store layer.
    RawSled,
}

/// One run: `writes` inserts, a flush after every `group` of them (0: never). Returns the wall
/// and thread CPU time of the inserts and flushes only.
fn run(base: &Path, target: Target, writes: usize, group: usize) -> (Duration, Duration) {
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let value = [0x5a; VALUE_BYTES];
    if let Target::RawSled = target {
        let db = sled::open(dir.path()).expect("open");
        let tree = db.open_tree("raw").expect("tree");
        let (start, cpu) = (Instant::now(), thread_cpu());
        for i in 0..writes {
            tree.insert(key(i as u64).0 .0, &value[..]).expect("insert");
            if group > 0 && (i + 1) % group == 0 {
                db.flush().expect("flush");
            }
        }
        return (start.elapsed(), thread_cpu() - cpu);
    }
    let Target::Store(mode) = target else {
        unreachable!()
    };
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let store = SledStore::open_with(
        dir.path(),
        SledOptions {
            sync_mode: mode,
            ..SledOptions::default()
        },
    )
    .expect("open");
    let (start, cpu) = (Instant::now(), thread_cpu());
    for i in 0..writes {
        store.put_channel(&key(i as u64), &value).expect("insert");
        if group > 0 && (i + 1) % group == 0 {
            store.flush().expect("flush");
        }
    }
    let elapsed = (start.elapsed(), thread_cpu() - cpu);
    drop(store);
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(base: &Path, label: &str, target: Target, writes: usize, group: usize) {
    let results: Vec<(Duration, Duration)> = (0..RUNS).map(|_| run(base, target, writes, group)).collect();
    let runs: Vec<Duration> = results.iter().map(|r| r.0).collect();
    let m = median(runs.clone());
    let cpu_us = median(results.iter().map(|r| r.1).collect()).as_secs_f64() * 1e6 / writes as f64;
    let per_write_us = m.as_secs_f64() * 1e6 / writes as f64;
    let rate = writes as f64 / m.as_secs_f64();
    let flush_note = match writes.checked_div(group) {
        Some(flushes) => format!("{:>9.1} µs/flush", m.as_secs_f64() * 1e6 / flushes as f64),
        None => String::new(),
    };
    let spread: Vec<String> = runs
        .iter()
        .map(|d| format!("{:.0}", writes as f64 / d.as_secs_f64()))
        .collect();
    println!(
        "{label:<42} {writes:>6} writes {per_write_us:>8.2} µs/write {rate:>8.0} writes/s {flush_note} cpu {cpu_us:.2} µs/write (runs/s: {})",
        spread.join(" ")
    );
}

fn main() {
    let base: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!(
        "sled 0.34 via paychan-store, {VALUE_BYTES}-byte values, median of {RUNS} runs, dir {}",
        base.display()
    );
    let srf = Target::Store(SyncMode::SyncFileRange);
    let fsync = Target::Store(SyncMode::Fsync);
    report(
        &base,
        "raw sled tree insert, no flush",
        Target::RawSled,
        100_000,
        0,
    );
    report(&base, "insert, no flush", srf, 100_000, 0);
    report(&base, "insert + flush each (sync_file_range)", srf, 1_000, 1);
    report(
        &base,
        "group commit 256/flush (sync_file_range)",
        srf,
        100 * GROUP_WRITES,
        GROUP_WRITES,
    );
    report(&base, "insert + flush each (fsync)", fsync, 300, 1);
    report(
        &base,
        "group commit 256/flush (fsync)",
        fsync,
        40 * GROUP_WRITES,
        GROUP_WRITES,
    );
}

//! `paychan-bench run`: every phase in turn, then the table, the chart and the JSON line.
//!
//! Phases, each alone on the machine (no testnet runs while the in-process ones do):
//! 1. limits (in process, one core);
//! 2. the sequencer's pipeline and the auditor (in process);
//! 3. latency: two channel-manager processes, one payment at a time;
//! 4. one 2-node testnet per durability mode (all up at once, jobs interleaved, the order
//!    flipped every run): `signed_payments_per_s` (first mode), the durability comparison,
//!    buffered jobs, the settlement bytes, 10,000 channels adopted by one node;
//! 5. a 4-node testnet: `testnet_up_ms` (each `up` of the repetitions), then every pair's
//!    channel paying both ways at once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use paychan_protocol::Hash32;
use serde_json::{json, Value};

use crate::ledger::{self, BenchChain};
use crate::limits;
use crate::nodes::{self, channel_tx_bytes, open_tx_hex, per_second, wait_until, Guard, Testnet};
use crate::peer;
use crate::stats::{fmt_num, json_line, median, percentile, Goal};
use crate::svg;

/// Payments per proof of the buffered sweep (the protocol's memo allows up to 64).
const PER_PROOF: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Channels opened on the ledger with one node for `channel_bytes_resident`.
const CHANNELS: usize = 10_000;
/// Most payments one API call makes (the node's `API_PAY_COUNT_MAX`).
const API_PAY_COUNT_MAX: u64 = 1_000_000;

/// What the run does; `--quick` shrinks counts and repetitions, never a key's meaning.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub paychan: PathBuf,
    pub work: PathBuf,
    pub svg: PathBuf,
    /// Repetitions of each figure (BENCH_RUNS).
    pub reps: usize,
    /// Payments per job (BENCH_PAYMENTS).
    pub payments: u64,
    /// Requests per job of the gateway phase (BENCH_REQUESTS).
    pub requests: u64,
    /// Durability modes of phase 4 (BENCH_MODES); the first is the default mode's figure.
    pub modes: Vec<String>,
    /// `--only NAME`: run one phase (limits, ledger, latency, two, four, gateway), or `channels`:
    /// the 10,000-channel part of `two` alone, on a testnet of its own (for profiling a node's
    /// memory; a full run measures it inside `two`).
    pub only: Option<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let quick = args.iter().any(|a| a == "--quick");
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from)
        };
        let exe = std::env::current_exe()?;
        let bin_dir = exe.parent().context("the harness's directory")?.to_path_buf();
        let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let work = value("--work").unwrap_or_else(|| PathBuf::from("target/bench"));
        Ok(Options {
            only: value("--only").map(|p| p.display().to_string()),
            quick,
            paychan: value("--paychan").unwrap_or_else(|| bin_dir.join("paychan")),
            svg: value("--svg").unwrap_or_else(|| work.join("bench.svg")),
            work,
            reps: env_num("BENCH_RUNS").map_or(if quick { 3 } else { 5 }, |n| n.max(1) as usize),
            payments: env_num("BENCH_PAYMENTS").unwrap_or(if quick { 50_000 } else { 100_000 }),
            requests: env_num("BENCH_REQUESTS").map_or(if quick { 5_000 } else { 10_000 }, |n| n.max(100)),
            modes: std::env::var("BENCH_MODES")
                .ok()
                .map(|m| m.split_whitespace().map(str::to_owned).collect())
                .filter(|m: &Vec<String>| !m.is_empty())
                .unwrap_or_else(|| {
                    if quick {
                        vec!["flush".into()]
                    } else {
                        vec!["flush".into(), "fsync".into()]
                    }
                }),
        })
    }
}

/// Every figure and the samples behind the chart.
#[derive(Default)]
struct Results {
    figures: BTreeMap<&'static str, Option<f64>>,
    notes: Vec<String>,
    unloaded_us: Vec<f64>,
    durable_us: Vec<f64>,
    per_proof: Vec<(u64, Option<f64>)>,
}

impl Results {
    fn set(&mut self, key: &'static str, v: Option<f64>) {
        self.figures.insert(key, v);
    }
    fn get(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied().flatten()
    }
    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        println!("  {s}");
        self.notes.push(s);
    }
}

fn phase(name: &str) {
    println!("== {name}");
    let _ = std::io::stdout().flush();
}

/// Runs a phase; a failure is reported and its figures stay `null`, so that one broken phase
/// does not hide the others.
fn guarded(r: &mut Results, name: &str, f: impl FnOnce(&mut Results) -> Result<()>) {
    phase(name);
    let t = Instant::now();
    if let Err(e) = f(r) {
        r.note(format!("FAILED ({name}): {e:#}"));
    }
    println!("  ({:.1} s)", t.elapsed().as_secs_f64());
}

pub fn run(o: Options) -> Result<()> {
    if !o.paychan.exists() {
        bail!(
            "no paychan binary at {} (build it with cargo build --release -p paychan)",
            o.paychan.display()
        );
    }
    std::fs::create_dir_all(&o.work)?;
    let total = Instant::now();
    println!(
        "paychan benchmarks, {} run: {} repetitions, {} payments per job, durability modes {}",
        if o.quick { "quick" } else { "full" },
        o.reps,
        o.payments,
        o.modes.join(" ")
    );
    let mut r = Results::default();
    let on = |id: &str| o.only.as_deref().is_none_or(|only| only == id);
    if on("limits") {
        guarded(&mut r, "limits of this machine (one core each)", |r| {
            phase_limits(&o, r)
        });
    }
    if on("ledger") {
        guarded(&mut r, "ledger: sequencer pipeline and audit, in process", |r| {
            phase_ledger(&o, r)
        });
    }
    if on("latency") {
        guarded(
            &mut r,
            "latency: two channel-manager processes, one payment at a time",
            |r| phase_latency(&o, r),
        );
    }
    if on("two") {
        guarded(
            &mut r,
            "2-node testnets: signed payments, durability, buffered, settlement, 10,000 channels",
            |r| phase_two_nodes(&o, r),
        );
    }
    if o.only.as_deref() == Some("channels") {
        guarded(
            &mut r,
            "2-node testnet: 10,000 channels adopted by one node (alone)",
            |r| phase_channels_alone(&o, r),
        );
    }
    if on("four") {
        guarded(
            &mut r,
            "4-node testnet: testnet up, every pair paying at once",
            |r| phase_four_nodes(&o, r),
        );
    }
    if on("gateway") {
        guarded(
            &mut r,
            "402 gateway: paid and unpaid requests/s through one gateway, one client (one lane, and 32 lanes)",
            |r| phase_gateway(&o, r),
        );
    }
    println!("(all phases: {:.0} s)", total.elapsed().as_secs_f64());

    let svg = svg::chart(
        &format!(
            "paychan, {} run: payments/s by payments per proof; latency of one payment at a time",
            if o.quick { "quick" } else { "full" }
        ),
        &r.per_proof,
        r.get("sign_limit_per_s"),
        &[
            ("until the payee verified", "#2ca02c", &r.unloaded_us),
            ("until the payer holds the ack", "#ff7f0e", &r.durable_us),
        ],
    );
    if let Some(parent) = o.svg.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&o.svg, svg)?;
    println!("chart: {}", o.svg.display());
    table(&r);
    let mode = if o.quick { "quick" } else { "full" };
    let line = json_line(|k| {
        if k == "mode" {
            return Some(Value::from(mode));
        }
        r.get(k).map(Value::from)
    });
    println!("{line}");
    Ok(())
}

fn phase_gateway(o: &Options, r: &mut Results) -> Result<()> {
    let rates = crate::gateway::measure(&o.paychan, &o.work, o.reps, o.requests)?;
    r.note(format!(
        "one lane (one connection, one request at a time): paid requests/s {} (median {}), unpaid {} (median {})",
        list(&rates.paid_one_lane),
        fmt_num(median(&rates.paid_one_lane)),
        list(&rates.unpaid_one_lane),
        fmt_num(median(&rates.unpaid_one_lane)),
    ));
    r.note(format!(
        "{} lanes (`paychan fetch --parallel {}`: one key, {} connections, {} channels): paid requests/s {} (median {}), unpaid {} (median {})",
        crate::gateway::LANES,
        crate::gateway::LANES,
        crate::gateway::LANES,
        crate::gateway::LANES,
        list(&rates.paid),
        fmt_num(median(&rates.paid)),
        list(&rates.unpaid),
        fmt_num(median(&rates.unpaid)),
    ));
    r.set("paid_requests_per_s", median(&rates.paid));
    r.set("unpaid_requests_per_s", median(&rates.unpaid));
    Ok(())
}

fn phase_limits(o: &Options, r: &mut Results) -> Result<()> {
    let dur = Duration::from_millis(if o.quick { 200 } else { 400 });
    let exe = std::env::current_exe()?;
    let l = limits::measure(o.reps, dur, &o.work, &exe)?;
    r.set("sign_limit_per_s", l.sign_per_s);
    r.set("verify_limit_per_s", l.verify_per_s);
    r.set("batch_verify_limit_per_s", l.batch_verify_per_s);
    r.set("sha256_limit_per_s", l.sha256_per_s);
    r.set("loopback_rtt_us", l.loopback_rtt_us);
    r.set("fsync_us", l.fsync_us);
    r.note(format!(
        "sign {}/s, verify {}/s, batch verify ({} per batch) {}/s, SHA-256 of {} B {}/s, round trip {} µs, append+fsync {} µs",
        fmt_num(l.sign_per_s),
        fmt_num(l.verify_per_s),
        limits::BATCH,
        fmt_num(l.batch_verify_per_s),
        limits::MESSAGE_BYTES,
        fmt_num(l.sha256_per_s),
        fmt_num(l.loopback_rtt_us),
        fmt_num(l.fsync_us)
    ));
    Ok(())
}

fn phase_ledger(o: &Options, r: &mut Results) -> Result<()> {
    let chain = BenchChain::new();
    // The pipeline runs on a chain of its own per repetition; the audit replays 98 full blocks
    // (100,352 transfers: "at least 100,000").
    let (pipeline_blocks, pipeline_reps) = if o.quick { (16, 3) } else { (40, 3) };
    let audit_blocks = 98;
    let t = Instant::now();
    let batches = chain.transfers(audit_blocks);
    r.note(format!(
        "{} transfers from {} accounts signed in {:.1} s (not timed: clients sign)",
        audit_blocks * ledger::TXS_PER_BLOCK,
        ledger::SENDERS,
        t.elapsed().as_secs_f64()
    ));
    let mut rates = Vec::new();
    for _ in 0..pipeline_reps {
        let run = ledger::pipeline(
            &chain,
            batches[..pipeline_blocks].to_vec(),
            &o.work.join("pipeline-store"),
        )?;
        rates.push(run.tx_per_s);
    }
    r.set("ledger_tx_per_s", median(&rates));
    r.note(format!(
        "sequencer pipeline, {} blocks of {}: {} tx/s median (runs: {})",
        pipeline_blocks,
        ledger::TXS_PER_BLOCK,
        fmt_num(median(&rates)),
        list(&rates)
    ));
    let run = ledger::chain_of(&chain, batches)?;
    let bytes = ledger::export(&chain, &run)?;
    let mut audits = Vec::new();
    for _ in 0..o.reps {
        audits.push(ledger::audit(&chain, &bytes, run.txs)?);
    }
    r.set("audit_tx_per_s", median(&audits));
    r.note(format!(
        "audit of an export of {} transactions in {} blocks ({} bytes): {} tx/s median (runs: {})",
        run.txs,
        run.blocks.len(),
        bytes.len(),
        fmt_num(median(&audits)),
        list(&audits)
    ));
    Ok(())
}

fn list(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| fmt_num(Some(*x)))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn phase_latency(o: &Options, r: &mut Results) -> Result<()> {
    let exe = std::env::current_exe()?;
    let count = if o.quick { 1_000 } else { 2_000 };
    let mut payee = Proc(
        Command::new(&exe)
            .args(["peer", "payee"])
            .arg(o.work.join("latency-payee"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start the payee")?,
    );
    let mut stdin: ChildStdin = payee.0.stdin.take().context("payee stdin")?;
    let mut out = BufReader::new(payee.0.stdout.take().context("payee stdout")?);
    let read_line = |out: &mut BufReader<ChildStdout>| -> Result<String> {
        let mut l = String::new();
        if out.read_line(&mut l)? == 0 {
            bail!("the payee exited");
        }
        Ok(l.trim().to_owned())
    };
    let addr = read_line(&mut out)?
        .strip_prefix("ADDR ")
        .map(str::to_owned)
        .context("the payee's address")?;
    let key = read_line(&mut out)?
        .strip_prefix("KEY ")
        .map(str::to_owned)
        .context("the payee's key")?;
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut d50 = Vec::new();
    let mut d99 = Vec::new();
    for rep in 0..o.reps {
        // A new payer process (and channel) per repetition; its warm-up payments come first.
        let payer = Command::new(&exe)
            .args(["peer", "payer"])
            .arg(o.work.join(format!("latency-payer-{rep}")))
            .args([&addr, &key, &count.to_string(), "200"])
            .output()
            .context("run the payer")?;
        if !payer.status.success() {
            bail!(
                "the payer failed: {}",
                String::from_utf8_lossy(&payer.stderr).trim()
            );
        }
        let v: Value = serde_json::from_slice(&payer.stdout).context("the payer's timestamps")?;
        writeln!(stdin, "dump")?;
        stdin.flush()?;
        let w: Value = serde_json::from_str(&read_line(&mut out)?).context("the payee's timestamps")?;
        let nums = |v: &Value, k: &str| -> Vec<u64> {
            v[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect()
        };
        let (unloaded, durable) = peer::latencies(
            &nums(&v, "start_ns"),
            &nums(&v, "acked_ns"),
            &nums(&w, "verified_ns"),
        )?;
        if unloaded.len() < durable.len() * 9 / 10 {
            r.note(format!(
                "repetition {rep}: only {} of {} payments had a payee write inside their interval",
                unloaded.len(),
                durable.len()
            ));
        }
        p50.extend(percentile(&unloaded, 50.0));
        p99.extend(percentile(&unloaded, 99.0));
        d50.extend(percentile(&durable, 50.0));
        d99.extend(percentile(&durable, 99.0));
        r.unloaded_us.extend(unloaded);
        r.durable_us.extend(durable);
    }
    drop(stdin);
    drop(payee);
    let _ = std::fs::remove_dir_all(o.work.join("latency-payee"));
    r.set("latency_p50_us", median(&p50));
    r.set("latency_p99_us", median(&p99));
    r.set("durable_latency_p50_us", median(&d50));
    r.set("durable_latency_p99_us", median(&d99));
    r.note(format!(
        "{} repetitions of {count} payments (after 200 warm-up payments each): until verified p50 {} / p99 {} µs (per repetition p99: {}); until the ack p50 {} / p99 {} µs (per repetition p99: {})",
        o.reps,
        fmt_num(median(&p50)),
        fmt_num(median(&p99)),
        list(&p99),
        fmt_num(median(&d50)),
        fmt_num(median(&d99)),
        list(&d99)
    ));
    Ok(())
}

/// A 2-node testnet of one durability mode with its main channel (node-0 pays node-1).
struct Pair {
    mode: String,
    net: Testnet,
    channel: String,
    paid: u64,
}

fn phase_two_nodes(o: &Options, r: &mut Results) -> Result<()> {
    let mut guard = Guard::default();
    let mut pairs = Vec::new();
    for mode in &o.modes {
        let net = Testnet::new(&o.paychan, o.work.join(format!("testnet-2-{mode}")), 2);
        net.up()?;
        guard.0.push(net.clone());
        net.down();
        net.set_durability(mode)?;
        net.start()?;
        let peer = net.peer_id(1)?;
        let channel = net.api(0)?.open(&peer, 500_000_000, 0)?;
        pairs.push(Pair {
            mode: mode.clone(),
            net,
            channel,
            paid: 0,
        });
    }
    // Jobs interleaved, the order flipped every run, so that the machine's other load falls
    // on every mode alike.
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
    for run in 0..o.reps {
        let order: Vec<usize> = if run % 2 == 0 {
            (0..pairs.len()).collect()
        } else {
            (0..pairs.len()).rev().collect()
        };
        for i in order {
            let p = &mut pairs[i];
            let v = p.net.api(0)?.pay(&p.channel, o.payments, None)?;
            p.paid += o.payments;
            rates[i].push(per_second(&v)?);
        }
    }
    for (i, p) in pairs.iter().enumerate() {
        let med = median(&rates[i]);
        let ratio = med.zip(median(&rates[0])).map(|(a, b)| a / b);
        let paired: Vec<f64> = rates[i].iter().zip(&rates[0]).map(|(a, b)| a / b).collect();
        r.note(format!(
            "durability {}: {} payments/s median (jobs: {}); ratio of medians to {}: {}; median ratio within a run: {}",
            p.mode,
            fmt_num(med),
            list(&rates[i]),
            pairs[0].mode,
            ratio.map_or("-".into(), |x| format!("{x:.3}")),
            median(&paired).map_or("-".into(), |x| format!("{x:.3}")),
        ));
    }
    r.set("signed_payments_per_s", median(&rates[0]));
    // The rest runs on the first mode's testnet alone.
    for p in &pairs[1..] {
        p.net.down();
    }
    let main = pairs.swap_remove(0);
    buffered(o, r, &main)?;
    settlement(o, r, &main)?;
    many_channels(o, r, &main)?;
    main.net.down();
    drop(guard);
    Ok(())
}

/// Buffered jobs: `per_proof` sent with each pay; a node that refuses or ignores the field
/// (its answer does not show fewer proofs than payments) leaves the buffered figures `null`.
fn buffered(o: &Options, r: &mut Results, p: &Pair) -> Result<()> {
    let api = p.net.api(0)?;
    let peer = p.net.peer_id(1)?;
    let channel = api.open(&peer, 200_000_000, 0)?;
    let probe = api.pay(&channel, 128, Some(64));
    let supported = match &probe {
        Ok(v) => match (
            v["proofs"].as_u64(),
            v["payments"].as_u64().or(v["count"].as_u64()),
        ) {
            (Some(proofs), Some(payments)) => payments == 128 && proofs < payments,
            _ => false,
        },
        Err(_) => false,
    };
    let signed = r.get("signed_payments_per_s");
    if !supported {
        let why = match probe {
            Ok(v) => format!("the node ignored it (answer: {v})"),
            Err(e) => format!("the node refused it ({e:#})"),
        };
        r.note(format!("per_proof: {why}; buffered figures null"));
        r.per_proof = PER_PROOF
            .iter()
            .map(|&k| (k, if k == 1 { signed } else { None }))
            .collect();
        r.set("buffered_payments_per_s", None);
        r.set("buffered_latency_p99_us", None);
        return Ok(());
    }
    let reps = if o.quick { 1 } else { 3 };
    let mut best: Option<f64> = None;
    for &k in &PER_PROOF {
        let count = (o.payments * k).min(API_PAY_COUNT_MAX);
        let mut rates = Vec::new();
        for _ in 0..reps {
            rates.push(per_second(&api.pay(&channel, count, Some(k))?)?);
        }
        let med = median(&rates);
        r.note(format!(
            "per_proof {k}: {} payments/s (jobs of {count}: {})",
            fmt_num(med),
            list(&rates)
        ));
        if k == 64 {
            best = med;
        }
        r.per_proof.push((k, med));
    }
    r.set("buffered_payments_per_s", best);
    // Latency of a buffered payment: one full proof (64 payments) at a time, from the API
    // call until the answer, which comes once the payer holds the ack.
    let n = if o.quick { 200 } else { 500 };
    let mut lat = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        api.pay(&channel, 64, Some(64))?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    r.set("buffered_latency_p99_us", percentile(&lat, 99.0));
    r.note(format!(
        "buffered latency, {n} API calls of 64 payments in one proof: p50 {} / p99 {} µs (HTTP included)",
        fmt_num(percentile(&lat, 50.0)),
        fmt_num(percentile(&lat, 99.0))
    ));
    Ok(())
}

/// Ledger bytes of open + cooperative close of a channel that carried 10 payments and of the
/// main channel topped up to 1,000,000.
fn settlement(_o: &Options, r: &mut Results, p: &Pair) -> Result<()> {
    let api = p.net.api(0)?;
    let peer = p.net.peer_id(1)?;
    let mut left = 1_000_000u64.saturating_sub(p.paid);
    while left > 0 {
        let n = left.min(API_PAY_COUNT_MAX);
        api.pay(&p.channel, n, None)?;
        left -= n;
    }
    let small = api.open(&peer, 1_000, 0)?;
    api.pay(&small, 10, None)?;
    let list = api.get("channels")?;
    let sent = |id: &str| {
        list.as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"].as_str() == Some(id))
            .and_then(|c| c["sent"].as_u64())
    };
    let (sent_big, sent_small) = (sent(&p.channel), sent(&small));
    // Both closes at once: each returns once a witnessed checkpoint covers its payout.
    let closes: Vec<_> = [p.channel.clone(), small.clone()]
        .into_iter()
        .map(|id| {
            let api = api.clone();
            std::thread::spawn(move || api.post(&format!("channels/{id}/close"), &json!({})))
        })
        .collect();
    for c in closes {
        c.join().map_err(|_| anyhow!("a close thread panicked"))??;
    }
    let (b_big, k_big) = channel_tx_bytes(&api, &p.channel)?;
    let (b_small, k_small) = channel_tx_bytes(&api, &small)?;
    r.set("ledger_bytes_per_settlement_10", Some(b_small as f64));
    r.set("ledger_bytes_per_settlement_1m", Some(b_big as f64));
    r.note(format!(
        "channel of {} payments: {b_small} ledger bytes ({}); channel of {} payments: {b_big} bytes ({})",
        sent_small.map_or("?".into(), |s| s.to_string()),
        k_small.join(" + "),
        sent_big.map_or("?".into(), |s| s.to_string()),
        k_big.join(" + ")
    ));
    if sent_big != Some(1_000_000) || sent_small != Some(10) {
        r.note("the channels did not carry exactly 1,000,000 and 10 payments of 1 (see above)");
    }
    Ok(())
}

/// The 10,000-channel part of [`phase_two_nodes`] on a testnet of its own.
fn phase_channels_alone(o: &Options, r: &mut Results) -> Result<()> {
    let net = Testnet::new(&o.paychan, o.work.join("testnet-2-channels"), 2);
    net.up()?;
    let _guard = Guard(vec![net.clone()]);
    // `many_channels` opens the channel it pays on; the pair's own is not used.
    let main = Pair {
        mode: o.modes.first().cloned().unwrap_or_default(),
        net,
        channel: String::new(),
        paid: 0,
    };
    many_channels(o, r, &main)?;
    main.net.down();
    Ok(())
}

/// 10,000 opens naming node 1 (signed by a spare client account and by node 1's key from the
/// testnet's own data dir), submitted to the sequencer; node 1 adopts them. Its resident
/// memory before and after, and one channel's rate afterwards.
fn many_channels(o: &Options, r: &mut Results, p: &Pair) -> Result<()> {
    let api0 = p.net.api(0)?;
    let api1 = p.net.api(1)?;
    let peer0 = p.net.peer_id(0)?;
    let channel = api1.open(&peer0, 200_000_000, 0)?;
    // A warm job first, so that the payment path's buffers exist before the memory is read.
    api1.pay(&channel, o.payments, None)?;
    // Counted from `info` (channels by status), not by listing them: a list of 10,000 channels
    // every 2 s would measure the list's own buffers, which the allocator keeps resident.
    let count_channels = |api: &nodes::Api| -> Result<usize> {
        let info = api.get("info")?;
        let by_status = info["channels"].as_object().context("info without channels")?;
        Ok(by_status.values().filter_map(|n| n.as_u64()).sum::<u64>() as usize)
    };
    let before_channels = count_channels(&api1)?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = p.net.rss_bytes(1)?;
    let rss0_before = p.net.rss_bytes(0)?;
    let status = api0.get("ledger/status")?;
    let chain_id = Hash32::from_hex(status["chain_id"].as_str().context("chain id")?)
        .map_err(|_| anyhow!("chain id"))?;
    let expiry = status["time_ms"].as_u64().context("time")? + 600_000;
    let b = p.net.node_key(1)?;
    let clients: Vec<_> = (0..3).map(|k| p.net.client_key(k)).collect::<Result<_>>()?;
    let t = Instant::now();
    let txs: Vec<String> = (0..CHANNELS)
        .map(|n| open_tx_hex(chain_id, &clients[n % clients.len()], &b, n as u64, 1, expiry))
        .collect();
    // One submitting thread per account that pays for the opens (the sequencer admits at
    // most `max_pending_per_account` of one account's transactions at once).
    let per_client: Vec<Vec<String>> = (0..clients.len())
        .map(|c| txs.iter().skip(c).step_by(clients.len()).cloned().collect())
        .collect();
    let submitters: Vec<_> = per_client
        .into_iter()
        .map(|txs| {
            let api = api0.clone();
            std::thread::spawn(move || -> Result<u64> {
                let mut retries = 0u64;
                for tx in &txs {
                    let body = json!({ "tx": tx });
                    loop {
                        match api.post("tx", &body) {
                            Ok(_) => break,
                            Err(e) => {
                                let m = format!("{e:#}").to_lowercase();
                                if m.contains("pending")
                                    || m.contains("429")
                                    || m.contains("503")
                                    || m.contains("full")
                                {
                                    retries += 1;
                                    std::thread::sleep(Duration::from_millis(20));
                                } else {
                                    bail!("an open was refused: {e:#}");
                                }
                            }
                        }
                    }
                }
                Ok(retries)
            })
        })
        .collect();
    let mut retries = 0u64;
    for s in submitters {
        retries += s.join().map_err(|_| anyhow!("a submitting thread panicked"))??;
    }
    let submitted = t.elapsed();
    let mut adopted = 0;
    let waited = wait_until(
        Duration::from_secs(if o.quick { 90 } else { 240 }),
        Duration::from_secs(2),
        || {
            adopted = count_channels(&api1)?.saturating_sub(before_channels);
            Ok(adopted >= CHANNELS)
        },
    );
    let adopt_secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = p.net.rss_bytes(1)?;
    let rss0_after = p.net.rss_bytes(0)?;
    r.note(format!(
        "{CHANNELS} opens signed and submitted in {:.1} s ({retries} retries while the sequencer's pool was full); node-1 lists {adopted} new channels after {adopt_secs:.1} s; resident memory {} -> {} MiB",
        submitted.as_secs_f64(),
        rss_before / (1 << 20),
        rss_after / (1 << 20)
    ));
    // Node 0 holds the same ledger (the 10,000 opens are in its replica and store) but is no
    // party to them: its growth is the ledger's share, node 1's minus it the channels' own.
    r.note(format!(
        "per channel: node-1 (a party) grew {} bytes, node-0 (the sequencer, same ledger, no party) {} bytes",
        fmt_num(Some((rss_after as f64 - rss_before as f64) / CHANNELS as f64)),
        fmt_num(Some((rss0_after as f64 - rss0_before as f64) / CHANNELS as f64))
    ));
    if let Err(e) = waited {
        r.note(format!(
            "node-1 adopted only {adopted} of {CHANNELS} channels ({e}); figures per adopted channel"
        ));
    }
    if adopted > 0 {
        r.set(
            "channel_bytes_resident",
            Some((rss_after as f64 - rss_before as f64) / adopted as f64),
        );
    }
    let mut rates = Vec::new();
    for _ in 0..o.reps {
        rates.push(per_second(&api1.pay(&channel, o.payments, None)?)?);
    }
    r.set("pay_after_10k_channels_per_s", median(&rates));
    r.note(format!(
        "with the channels adopted, node-1 pays node-0: {} payments/s median (jobs: {})",
        fmt_num(median(&rates)),
        list(&rates)
    ));
    Ok(())
}

fn phase_four_nodes(o: &Options, r: &mut Results) -> Result<()> {
    let net = Testnet::new(&o.paychan, o.work.join("testnet-4"), 4);
    let _guard = Guard(vec![net.clone()]);
    let mut ups = Vec::new();
    for i in 0..o.reps {
        if i > 0 {
            net.down();
        }
        ups.push(net.up()?);
    }
    r.set("testnet_up_ms", median(&ups));
    r.note(format!(
        "testnet up --nodes 4: {} ms median (runs: {})",
        fmt_num(median(&ups)),
        list(&ups)
    ));
    let n = 4;
    let mut channels = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let peer = net.peer_id(j)?;
            let id = net.api(i)?.open(&peer, 100_000_000, 100_000_000)?;
            channels.push((i, j, id));
        }
    }
    // Both directions of every channel: 12 jobs, three per node.
    let jobs: Vec<(usize, String)> = channels
        .iter()
        .flat_map(|(i, j, id)| [(*i, id.clone()), (*j, id.clone())])
        .collect();
    for (node, id) in &jobs {
        net.api(*node)?.pay(id, 10, None)?;
    }
    let count = if o.quick { 20_000 } else { 50_000 };
    let mut rates = Vec::new();
    for _ in 0..o.reps {
        let barrier = Arc::new(Barrier::new(jobs.len()));
        let handles: Vec<_> = jobs
            .iter()
            .map(|(node, id)| {
                let api = net.api(*node);
                let id = id.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || -> Result<(Instant, Instant)> {
                    let api = api?;
                    barrier.wait();
                    let t0 = Instant::now();
                    api.pay(&id, count, None)?;
                    Ok((t0, Instant::now()))
                })
            })
            .collect();
        let mut spans = Vec::new();
        for h in handles {
            spans.push(h.join().map_err(|_| anyhow!("a pay thread panicked"))??);
        }
        let start = spans.iter().map(|s| s.0).min().context("no jobs")?;
        let end = spans.iter().map(|s| s.1).max().context("no jobs")?;
        rates.push((count * jobs.len() as u64) as f64 / (end - start).as_secs_f64());
    }
    r.set("aggregate_payments_per_s", median(&rates));
    r.note(format!(
        "{} jobs of {count} at once ({} channels, both ways): {} payments/s median (runs: {})",
        jobs.len(),
        channels.len(),
        fmt_num(median(&rates)),
        list(&rates)
    ));
    Ok(())
}

/// One row of the table: a figure, its goal, and the limit the goal is a multiple of.
struct Row<'a> {
    name: &'a str,
    value: Option<f64>,
    goal: Option<Goal>,
    target: String,
    /// The limit the ratio is taken to (else the target itself).
    limit: Option<f64>,
}

fn row<'a>(
    name: &'a str,
    value: Option<f64>,
    goal: Option<Goal>,
    target: &str,
    limit: Option<f64>,
) -> Row<'a> {
    Row {
        name,
        value,
        goal,
        target: target.to_owned(),
        limit,
    }
}

/// The table: figure, target, ratio (to the limit where the target is a multiple of one, to
/// the target otherwise), met.
fn table(r: &Results) {
    let sign = r.get("sign_limit_per_s");
    let fsync = r.get("fsync_us");
    let signed = r.get("signed_payments_per_s");
    let settle_diff = r
        .get("ledger_bytes_per_settlement_1m")
        .zip(r.get("ledger_bytes_per_settlement_10"))
        .map(|(a, b)| a - b);
    let g = |k: &str| r.get(k);
    let rows = vec![
        row(
            "signed_payments_per_s",
            signed,
            sign.map(|s| Goal::AtLeast(1.2 * s)),
            ">= 1.2 x sign_limit_per_s",
            sign,
        ),
        row(
            "aggregate_payments_per_s",
            g("aggregate_payments_per_s"),
            sign.map(|s| Goal::AtLeast(1.5 * s)),
            ">= 1.5 x sign_limit_per_s",
            sign,
        ),
        row(
            "latency_p50_us",
            g("latency_p50_us"),
            Some(Goal::AtMost(150.0)),
            "<= 150",
            None,
        ),
        row(
            "latency_p99_us",
            g("latency_p99_us"),
            Some(Goal::AtMost(1_000.0)),
            "<= 1,000",
            None,
        ),
        row(
            "durable_latency_p50_us",
            g("durable_latency_p50_us"),
            fsync.map(|f| Goal::AtMost(150.0 + f)),
            "<= 150 + fsync_us",
            None,
        ),
        row(
            "durable_latency_p99_us",
            g("durable_latency_p99_us"),
            Some(Goal::AtMost(2_000.0)),
            "<= 2,000",
            None,
        ),
        row(
            "buffered_payments_per_s",
            g("buffered_payments_per_s"),
            Some(Goal::AtLeast(2_000_000.0)),
            ">= 2,000,000",
            None,
        ),
        row(
            "buffered_latency_p99_us",
            g("buffered_latency_p99_us"),
            Some(Goal::AtMost(5_000.0)),
            "<= 5,000",
            None,
        ),
        row(
            "ledger_tx_per_s",
            g("ledger_tx_per_s"),
            Some(Goal::AtLeast(30_000.0)),
            ">= 30,000",
            None,
        ),
        row(
            "audit_tx_per_s",
            g("audit_tx_per_s"),
            Some(Goal::AtLeast(100_000.0)),
            ">= 100,000",
            None,
        ),
        row(
            "channel_bytes_resident",
            g("channel_bytes_resident"),
            Some(Goal::AtMost(4_096.0)),
            "<= 4,096",
            None,
        ),
        row(
            "pay_after_10k_channels_per_s",
            g("pay_after_10k_channels_per_s"),
            signed.map(|s| Goal::AtLeast(0.9 * s)),
            ">= 0.9 x signed_payments_per_s",
            signed,
        ),
        row(
            "ledger_bytes_per_settlement_10",
            g("ledger_bytes_per_settlement_10"),
            None,
            "",
            None,
        ),
        row(
            "ledger_bytes_per_settlement_1m",
            g("ledger_bytes_per_settlement_1m"),
            None,
            "",
            None,
        ),
        row("(1m - 10)", settle_diff, Some(Goal::AtMost(16.0)), "<= 16", None),
        row("testnet_up_ms", g("testnet_up_ms"), None, "", None),
        row(
            "paid_requests_per_s",
            g("paid_requests_per_s"),
            g("unpaid_requests_per_s").map(|u| Goal::AtLeast((0.5 * u).max(10_000.0))),
            ">= 0.5 x unpaid_requests_per_s and >= 10,000",
            None,
        ),
        row(
            "unpaid_requests_per_s",
            g("unpaid_requests_per_s"),
            None,
            "",
            None,
        ),
        row("sign_limit_per_s", sign, None, "limit", None),
        row("verify_limit_per_s", g("verify_limit_per_s"), None, "limit", None),
        row(
            "batch_verify_limit_per_s",
            g("batch_verify_limit_per_s"),
            None,
            "limit",
            None,
        ),
        row("sha256_limit_per_s", g("sha256_limit_per_s"), None, "limit", None),
        row("loopback_rtt_us", g("loopback_rtt_us"), None, "limit", None),
        row("fsync_us", fsync, None, "limit", None),
    ];
    println!();
    println!("| figure | value | target | target value | ratio | met |");
    println!("| --- | ---: | --- | ---: | ---: | --- |");
    for row in rows {
        let (tv, ratio, met) = match (row.goal, row.value) {
            (Some(goal), Some(v)) => {
                let ratio = match row.limit {
                    Some(l) if l != 0.0 => Some(v / l),
                    _ => goal.ratio(v),
                };
                (
                    fmt_num(Some(goal.value())),
                    ratio.map_or("-".into(), |x| format!("{x:.3}")),
                    if goal.met(v) { "yes" } else { "no" },
                )
            }
            (Some(goal), None) => (fmt_num(Some(goal.value())), "-".into(), "not measured"),
            (None, _) => (String::new(), String::new(), ""),
        };
        println!(
            "| {} | {} | {} | {tv} | {ratio} | {met} |",
            row.name,
            fmt_num(row.value),
            row.target
        );
    }
    println!("(ratio: to the limit named in the target, else to the target value)");
    println!();
}

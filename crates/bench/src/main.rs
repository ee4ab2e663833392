//! # paychan-bench
//!
//! The harness behind `scripts/bench.sh`: `paychan-bench run [--quick]` measures every figure
//! of BENCHMARKS.md in one run, prints a table, writes the chart, and prints as its last line
//! of standard output one JSON object with every key.
//!
//! ## Layout
//! - `stats`: medians, percentiles, targets, the JSON line (pure, unit-tested).
//! - `limits`: this machine's limits (sign, verify, batch verify, SHA-256, a TCP round trip
//!   between two processes, append + `fsync`).
//! - `ledger`: the sequencer's pipeline and the auditor, in process.
//! - `peer`: two channel-manager processes for the latency figures.
//! - `nodes`: testnets of `paychan` node processes driven through their control API.
//! - `gateway`: the 402 gateway's paid and unpaid requests/s.
//! - `svg`: the chart.
//!
//! Other subcommands are its own child processes: `echo` (the far end of the round-trip
//! limit), `peer payee DIR` and `peer payer DIR ADDR KEY COUNT WARMUP`.

mod gateway;
mod ledger;
mod limits;
mod nodes;
mod peer;
mod run;
mod stats;
mod svg;

use std::path::Path;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).context("missing argument");
    match args.first().map(String::as_str) {
        Some("run") => run::run(run::Options::parse(&args[1..])?),
        Some("echo") => limits::echo(),
        Some("peer") => match arg(1)? {
            "payee" => peer::payee(Path::new(arg(2)?)),
            "payer" => peer::payer(
                Path::new(arg(2)?),
                arg(3)?,
                arg(4)?,
                arg(5)?.parse().context("COUNT")?,
                arg(6)?.parse().context("WARMUP")?,
            ),
            other => bail!("unknown peer role {other}"),
        },
        _ => {
            eprintln!("usage: paychan-bench run [--quick] [--paychan BIN] [--work DIR] [--svg FILE]");
            std::process::exit(2);
        }
    }
}

#!/usr/bin/env bash
# Benchmarks: every figure of BENCHMARKS.md in one run, each the median of several
# repetitions, each target a ratio to a limit measured in the same run. The harness is
# crates/bench (`paychan-bench run`); BENCHMARKS.md says what each figure covers.
#
#   scripts/bench.sh [--quick] [--svg FILE]
#
# --quick: fewer repetitions and smaller jobs (under 3 minutes after the build), the
# durability comparison left out; the full run takes under 15 minutes on 2 cores.
# The environment may set BENCH_RUNS (repetitions), BENCH_PAYMENTS (payments per job),
# BENCH_REQUESTS (requests per job of the gateway phase) and BENCH_MODES (durability modes of the 2-node testnets, default "flush fsync"; the first is
# the default mode's figure). The table comes first; the last line of standard output is one
# JSON object with every key. Work files go to target/bench (the chart: target/bench/bench.svg
# unless --svg says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for a in "$@"; do [[ "$a" == "--quick" ]] && quick=1; done

# The binaries are where cargo puts them (CARGO_TARGET_DIR, if set).
bin="${CARGO_TARGET_DIR:-target}/release"
cargo build --release -q -p paychan -p paychan-bench
if (( ! quick )); then
  cargo build --release -q -p paychan-channel --example payment_path
  echo "== payment path, in process (crates/channel/examples/payment_path.rs)"
  "$bin/examples/payment_path" 50000 3
  echo
fi
exec "$bin/paychan-bench" run "$@"

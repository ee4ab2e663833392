#!/usr/bin/env bash
# Benchmarks, one run, figures printed:
# 1. the channel state machine's payment path against a sign-only loop (no network);
# 2. end to end: two node processes on 127.0.0.1, one channel, `count` individually signed
#    payments streamed over one libp2p stream, every one acknowledged (persisted) by the payee;
#    once per durability mode (`[storage] durability`, BENCH_MODES, default "flush fsync"):
#    one testnet per mode, all up at once, jobs interleaved (flush, fsync, fsync, flush, ...:
#    the order flips every run) so that other load on the machine falls on both modes alike;
#    median of RUNS jobs per mode, its ratio to the first mode's, and the median of the ratios
#    of the two jobs of each run.
set -euo pipefail
cd "$(dirname "$0")/.."

count="${BENCH_PAYMENTS:-100000}"
runs="${BENCH_RUNS:-3}"
read -r -a modes <<<"${BENCH_MODES:-flush fsync}"
base="target/bench-testnet"

cargo build --release -q -p paychan
cargo build --release -q -p paychan-channel --example payment_path
bin=target/release/paychan

echo "== payment path, in process (crates/channel/examples/payment_path.rs)"
target/release/examples/payment_path 50000 3

echo
echo "== end to end: 2 node processes, 1 channel, $count payments per job, $runs jobs per mode, modes: ${modes[*]}"
down_all() {
  for mode in "${modes[@]}"; do
    "$bin" testnet down --dir "$base/$mode" >/dev/null 2>&1 || true
  done
}
down_all
rm -rf "$base"
mkdir -p "$base"
trap down_all EXIT
declare -A channel
for mode in "${modes[@]}"; do
  dir="$base/$mode"
  "$bin" testnet up --nodes 2 --dir "$dir" >/dev/null
  "$bin" testnet down --dir "$dir" >/dev/null
  for node in "$dir"/node-*; do
    grep -q '^durability = ' "$node/config.toml" || { echo "no durability line in $node/config.toml" >&2; exit 1; }
    sed -i "s/^durability = .*/durability = \"$mode\"/" "$node/config.toml"
  done
  "$bin" testnet start --dir "$dir" >/dev/null
  peer=$("$bin" testnet status --dir "$dir" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["peer_id"])')
  channel[$mode]=$("$bin" channel open --data-dir "$dir/node-0" --peer "$peer" --deposit 900000000 --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel_id"])')
done
declare -A rates
for i in $(seq "$runs"); do
  order=("${modes[@]}")
  if (( i % 2 == 0 )); then
    order=()
    for (( j = ${#modes[@]} - 1; j >= 0; j-- )); do order+=("${modes[j]}"); done
  fi
  for mode in "${order[@]}"; do
    dir="$base/$mode"
    # One API call per job: the node streams the whole job and answers after the last ack.
    rate=$(curl -s -H "Authorization: Bearer $(cat "$dir/node-0/api.token")" -H 'Content-Type: application/json' \
      -d "{\"amount\":1,\"count\":$count}" "http://$(cat "$dir/node-0/api.addr")/v1/channels/${channel[$mode]}/pay" \
      | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"]))')
    rates[$mode]="${rates[$mode]:-} $rate"
    echo "  job $i, durability $mode: $rate payments/s"
  done
done
# Medians per mode, the ratio of the medians, and the median of the ratios within a run (both
# modes of one run ran back to back, so that ratio moves least with the machine's other load).
summary=()
for mode in "${modes[@]}"; do summary+=("$mode:${rates[$mode]}"); done
python3 - "${summary[@]}" <<'PY'
import statistics, sys
rates = {}
for arg in sys.argv[1:]:
    mode, jobs = arg.split(":", 1)
    rates[mode] = [int(x) for x in jobs.split()]
first = next(iter(rates))
for mode, jobs in rates.items():
    med = statistics.median(jobs)
    paired = statistics.median(a / b for a, b in zip(jobs, rates[first]))
    print(f"median, durability {mode}: {med:.0f} payments/s (jobs: {' '.join(map(str, jobs))}); "
          f"ratio of medians to {first}: {med / statistics.median(rates[first]):.3f}; "
          f"median ratio within a run: {paired:.3f}")
PY
echo "(each payment signed by the payer, verified, persisted and acked by the payee)"

#!/usr/bin/env bash
# Benchmarks, one run, figures printed:
# 1. the channel state machine's payment path against a sign-only loop (no network);
# 2. end to end: two node processes on 127.0.0.1, one channel, `count` individually signed
#    payments streamed over one libp2p stream, every one acknowledged (persisted) by the payee;
#    median of RUNS jobs, with the sign-only rate of this machine measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

count="${BENCH_PAYMENTS:-100000}"
runs="${BENCH_RUNS:-3}"
dir="target/bench-testnet"

cargo build --release -q -p paychan
cargo build --release -q -p paychan-channel --example payment_path
bin=target/release/paychan

echo "== payment path, in process (crates/channel/examples/payment_path.rs)"
target/release/examples/payment_path 50000 3

echo
echo "== end to end: 2 node processes, 1 channel, $count payments per job, $runs jobs"
"$bin" testnet down --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
trap '"$bin" testnet down --dir "$dir" >/dev/null 2>&1 || true' EXIT
"$bin" testnet up --nodes 2 --dir "$dir" >/dev/null
peer=$("$bin" testnet status --dir "$dir" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["peer_id"])')
channel=$("$bin" channel open --data-dir "$dir/node-0" --peer "$peer" --deposit 900000000 --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel_id"])')
rates=()
for _ in $(seq "$runs"); do
  # One API call per job: the node streams the whole job and answers after the last ack.
  rate=$(curl -s -H "Authorization: Bearer $(cat "$dir/node-0/api.token")" -H 'Content-Type: application/json' \
    -d "{\"amount\":1,\"count\":$count}" "http://$(cat "$dir/node-0/api.addr")/v1/channels/$channel/pay" \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"]))')
  rates+=("$rate")
  echo "  job: $rate payments/s"
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
echo "median: $median payments/s (each signed by the payer, verified, persisted and acked by the payee)"

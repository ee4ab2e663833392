#!/usr/bin/env bash
# The main job on a fresh machine: build, start a fresh 4-node local testnet, run the demo
# (channels, 10,000 payments each, cooperative and unilateral closes, settlement, balances
# checked, ledger verified), and stop the testnet whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${PAYCHAN_TESTNET_DIR:-target/demo-testnet}"
nodes="${PAYCHAN_NODES:-4}"

cargo build --release -p paychan
bin=target/release/paychan

"$bin" testnet down --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
trap '"$bin" testnet down --dir "$dir" >/dev/null 2>&1 || true' EXIT

start=$(date +%s%N)
"$bin" testnet up --nodes "$nodes" --dir "$dir"
echo "testnet ready in $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo
"$bin" testnet demo --dir "$dir"

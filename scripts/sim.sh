#!/usr/bin/env bash
# The deterministic many-node simulation (crates/client/tests/sim.rs) over many seeds.
#   scripts/sim.sh [--seeds N] [--seed S]
# Runs seeds S, S+1, ..., S+N-1 (S random unless given or set in PAYCHAN_SIM_SEED; always
# printed). Prints every failing seed (replay one with PAYCHAN_SIM_SEED=<seed> scripts/sim.sh
# --seeds 1) and, as its last line, {"seeds":N,"steps":S,"violations":V,"stuck":K}.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=100
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --seed) export PAYCHAN_SIM_SEED="$2"; shift 2 ;;
    *) echo "usage: $0 [--seeds N] [--seed S]" >&2; exit 2 ;;
  esac
done

export PAYCHAN_SIM_SEEDS="$seeds"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test -q -p paychan-client --test sim -- --ignored --exact many_seeds --nocapture >"$out" 2>&1 || status=$?
grep -E '^(PAYCHAN_SIM_SEED=|failing seed)' "$out" || true
last=$(grep -E '^\{"seeds"' "$out" | tail -n 1 || true)
if [ -z "$last" ]; then
  cat "$out" >&2
  exit "${status:-1}"
fi
echo "$last"
exit "$status"

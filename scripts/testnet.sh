#!/usr/bin/env bash
# Local testnet: scripts/testnet.sh up [NODES] | start | status | down | demo
# The testnet lives in $PAYCHAN_TESTNET_DIR (default: target/testnet).
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${PAYCHAN_TESTNET_DIR:-target/testnet}"
cargo build --release -q -p paychan
bin=target/release/paychan

case "${1:-status}" in
  up) "$bin" testnet up --nodes "${2:-4}" --dir "$dir" ;;
  start) "$bin" testnet start --dir "$dir" ;;
  status) "$bin" testnet status --dir "$dir" ;;
  down) "$bin" testnet down --dir "$dir" ;;
  demo) "$bin" testnet demo --dir "$dir" ;;
  *) echo "usage: $0 up [NODES] | start | status | down | demo" >&2; exit 2 ;;
esac

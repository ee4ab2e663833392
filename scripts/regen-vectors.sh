#!/usr/bin/env bash
# Rewrites the golden vectors (protocol/vectors/*.json and the ```vector blocks of PROTOCOL.md)
# from the protocol crate. Run it only after an intended change of the protocol bytes, then
# review the diff: every changed vector is a change of the wire or signing format.
set -euo pipefail
cd "$(dirname "$0")/.."

PAYCHAN_REGENERATE_VECTORS=1 cargo test -p paychan-protocol --test vectors

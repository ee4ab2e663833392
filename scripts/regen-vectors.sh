#!/usr/bin/env bash
# Rewrites the golden vectors (protocol/vectors/*.json and the ```vector blocks of PROTOCOL.md)
# from the protocol and ledger crates. Run it only after an intended change of the protocol
# bytes or of the ledger rules, then review the diff: every changed vector is a change of the
# wire or signing format, of the state root or of the ledger rules.
set -euo pipefail
cd "$(dirname "$0")/.."

PAYCHAN_REGENERATE_VECTORS=1 cargo test -p paychan-protocol --test vectors
# The state root and ledger history vectors (protocol/vectors/ledger.json and the ```vector
# ledger-* blocks of PROTOCOL.md) come from the ledger crate.
PAYCHAN_REGENERATE_VECTORS=1 cargo test -p paychan-ledger --test vectors
# The ledger export vector (protocol/vectors/export.json) comes from the audit crate.
PAYCHAN_REGENERATE_VECTORS=1 cargo test -p paychan-audit --test vectors

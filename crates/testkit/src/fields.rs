//! The JSON `fields` the vector files give of the protocol's types, shared by the vector tests
//! that write them (the protocol's and the ledger's).

use paychan_protocol::{BlockHeader, Direction, Genesis};
use serde_json::{json, Value};

/// The vector files' name of a direction.
pub fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::AToB => "AToB",
        Direction::BToA => "BToA",
    }
}

/// The `fields` of a genesis in the vector files.
pub fn genesis_fields(g: &Genesis) -> Value {
    json!({
        "network": g.network,
        "unit": {"name": g.unit.name, "symbol": g.unit.symbol},
        "genesis_time_ms": g.genesis_time_ms,
        "sequencer": g.sequencer.to_hex(),
        "witnesses": g.witnesses.iter().map(|w| w.to_hex()).collect::<Vec<_>>(),
        "witness_threshold": g.witness_threshold,
        "challenge_period_ms": g.challenge_period_ms,
        "block_interval_ms": g.block_interval_ms,
        "heartbeat_interval_ms": g.heartbeat_interval_ms,
        "max_time_step_ms": g.max_time_step_ms,
        "max_txs_per_block": g.max_txs_per_block,
        "max_pending_per_account": g.max_pending_per_account,
        "tx_fee_min": g.tx_fee_min,
        "tx_fee_per_byte": g.tx_fee_per_byte,
        "allocations": g
            .allocations
            .iter()
            .map(|(k, a)| json!({"key": k.to_hex(), "amount": a}))
            .collect::<Vec<_>>(),
    })
}

/// The `fields` of a block header in the vector files.
pub fn header_fields(h: &BlockHeader) -> Value {
    json!({
        "chain_id": h.chain_id.to_hex(),
        "height": h.height,
        "prev_hash": h.prev_hash.to_hex(),
        "time_ms": h.time_ms,
        "tx_root": h.tx_root.to_hex(),
        "log_size": h.log_size,
        "log_root": h.log_root.to_hex(),
        "state_root": h.state_root.to_hex(),
    })
}

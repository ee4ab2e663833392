//! The rules a genesis must satisfy before a ledger is born from it.

use std::collections::BTreeSet;

use paychan_protocol::limits::{
    ALLOCATIONS_MAX, BLOCK_TXS_MAX, CHALLENGE_STEPS_MIN, NETWORK_NAME_BYTES_MAX, TX_BYTES_MAX,
    UNIT_NAME_BYTES_MAX, UNIT_SYMBOL_BYTES_MAX, WITNESSES_MAX,
};
use paychan_protocol::Genesis;

use crate::error::GenesisError;

/// Checks every rule of a genesis and returns its total supply (the sum of its allocations).
///
/// The rules: the network name, the unit's name and symbol (1 to 32 and 1 to 8 bytes, no
/// control character, the symbol without whitespace), witnesses and allocations fit their protocol limits; the
/// witnesses are distinct and the sequencer is not one of them; `1 <= witness_threshold <=
/// witnesses` when there are witnesses (a witness-less ledger has threshold 0 and every signed
/// checkpoint counts as witnessed); every period is positive and
/// `block_interval_ms <= heartbeat_interval_ms <= max_time_step_ms`; the challenge window spans
/// at least [`CHALLENGE_STEPS_MIN`] largest time steps; `1 <= max_txs_per_block <=
/// BLOCK_TXS_MAX`; `max_pending_per_account >= 1`; the fee of a transaction of
/// `TX_BYTES_MAX` bytes fits `u64`; allocation keys strictly increase, no allocation is zero
/// and their sum fits `u64`.
pub fn validate_genesis(g: &Genesis) -> Result<u64, GenesisError> {
    if g.network.len() > NETWORK_NAME_BYTES_MAX {
        return Err(GenesisError::NetworkNameTooLong {
            len: g.network.len(),
            max: NETWORK_NAME_BYTES_MAX,
        });
    }
    check_unit_text("name", &g.unit.name, UNIT_NAME_BYTES_MAX, false)?;
    check_unit_text("symbol", &g.unit.symbol, UNIT_SYMBOL_BYTES_MAX, true)?;
    if g.witnesses.len() > WITNESSES_MAX {
        return Err(GenesisError::TooManyWitnesses {
            count: g.witnesses.len(),
            max: WITNESSES_MAX,
        });
    }
    let mut seen = BTreeSet::new();
    for w in &g.witnesses {
        if !seen.insert(w) {
            return Err(GenesisError::DuplicateWitness(*w));
        }
    }
    if seen.contains(&g.sequencer) {
        return Err(GenesisError::SequencerIsWitness);
    }
    let threshold_ok = if g.witnesses.is_empty() {
        g.witness_threshold == 0
    } else {
        g.witness_threshold >= 1 && g.witness_threshold as usize <= g.witnesses.len()
    };
    if !threshold_ok {
        return Err(GenesisError::BadThreshold {
            threshold: g.witness_threshold,
            witnesses: g.witnesses.len(),
        });
    }
    for (name, value) in [
        ("challenge_period_ms", g.challenge_period_ms),
        ("block_interval_ms", g.block_interval_ms),
        ("heartbeat_interval_ms", g.heartbeat_interval_ms),
        ("max_time_step_ms", g.max_time_step_ms),
    ] {
        if value == 0 {
            return Err(GenesisError::ZeroPeriod(name));
        }
    }
    if g.block_interval_ms > g.heartbeat_interval_ms || g.heartbeat_interval_ms > g.max_time_step_ms {
        return Err(GenesisError::TimingOrder);
    }
    // A window of a few steps passes in a few blocks once the sequencer catches up after an
    // outage, faster than a watchtower can reconnect and answer.
    if g.max_time_step_ms.saturating_mul(CHALLENGE_STEPS_MIN) > g.challenge_period_ms {
        return Err(GenesisError::ChallengeTooShort {
            challenge_period_ms: g.challenge_period_ms,
            max_time_step_ms: g.max_time_step_ms,
            steps_min: CHALLENGE_STEPS_MIN,
        });
    }
    if g.max_txs_per_block == 0 || g.max_txs_per_block as usize > BLOCK_TXS_MAX {
        return Err(GenesisError::TxsPerBlock {
            got: g.max_txs_per_block,
            max: BLOCK_TXS_MAX,
        });
    }
    if g.max_pending_per_account == 0 {
        return Err(GenesisError::ZeroPendingLimit);
    }
    // So that computing a fee never saturates: every transaction's fee is exact.
    g.tx_fee_per_byte
        .checked_mul(TX_BYTES_MAX as u64)
        .and_then(|f| f.checked_add(g.tx_fee_min))
        .ok_or(GenesisError::FeeOverflow)?;
    if g.allocations.len() > ALLOCATIONS_MAX {
        return Err(GenesisError::TooManyAllocations {
            count: g.allocations.len(),
            max: ALLOCATIONS_MAX,
        });
    }
    let mut supply = 0u64;
    for (index, (key, amount)) in g.allocations.iter().enumerate() {
        if index > 0 && g.allocations[index - 1].0 >= *key {
            return Err(GenesisError::AllocationsNotSorted { index });
        }
        if *amount == 0 {
            return Err(GenesisError::ZeroAllocation { index });
        }
        supply = supply.checked_add(*amount).ok_or(GenesisError::SupplyOverflow)?;
    }
    Ok(supply)
}

/// A unit's name or symbol: 1 to `max` bytes, no control character (it is printed after every
/// amount), and for the symbol no whitespace either.
fn check_unit_text(field: &'static str, value: &str, max: usize, symbol: bool) -> Result<(), GenesisError> {
    let bad = |reason| {
        Err(GenesisError::BadUnit {
            field,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return bad("empty");
    }
    if value.len() > max {
        return bad(if symbol {
            "longer than 8 bytes"
        } else {
            "longer than 32 bytes"
        });
    }
    if value.chars().any(char::is_control) {
        return bad("holds a control character");
    }
    if symbol && value.chars().any(char::is_whitespace) {
        return bad("holds whitespace");
    }
    if value.trim() != value {
        return bad("starts or ends with whitespace");
    }
    Ok(())
}

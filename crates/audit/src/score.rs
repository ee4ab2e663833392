//! The credit score: a deterministic number from ledger history alone (PROTOCOL.md, credit:
//! score). Anyone who replays the ledger gets the same number, and the report names each
//! factor, its value, its weight and its cap, so a reader sees why.
//!
//! The one implementation: the node's CLI and API and the auditor all call [`score`].

use std::collections::BTreeMap;

use paychan_ledger::{ChannelStatus, LedgerState};
use paychan_protocol::{Block, Genesis, PublicKey, Tx};
use serde::Serialize;

/// Highest score.
pub const SCORE_MAX: i64 = 1_000;

/// One factor of a score: `points = clamp(value * weight, min, max)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Factor {
    /// Its name.
    pub name: &'static str,
    /// What the ledger shows.
    pub value: u64,
    /// Points per unit of `value` (negative: a penalty).
    pub weight: i64,
    /// The most (or, for a penalty, the least) points it gives.
    pub cap: i64,
    /// What it adds to the score.
    pub points: i64,
}

/// An account's score with its factors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Score {
    /// The account (hex).
    pub account: String,
    /// `clamp(sum of points, 0, SCORE_MAX)`.
    pub score: u64,
    /// Ledger time the score is computed at.
    pub time_ms: u64,
    /// Ledger height it is computed at.
    pub height: u64,
    /// Each factor, in a fixed order.
    pub factors: Vec<Factor>,
}

/// When each account first appeared on the ledger (ledger time): genesis allocations at the
/// genesis time, others at the first block whose transaction names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirstSeen(BTreeMap<PublicKey, u64>);

impl FirstSeen {
    /// The accounts of a genesis.
    pub fn from_genesis(genesis: &Genesis) -> FirstSeen {
        let mut seen = FirstSeen::default();
        for (key, _) in &genesis.allocations {
            seen.0.entry(*key).or_insert(genesis.genesis_time_ms);
        }
        seen
    }

    /// Records the accounts a block names (a transfer's both ends, an open's both parties,
    /// every other transaction's signer).
    pub fn observe(&mut self, block: &Block) {
        let time = block.header.time_ms;
        for tx in &block.txs {
            let mut note = |k: PublicKey| {
                self.0.entry(k).or_insert(time);
            };
            match tx {
                Tx::Transfer { body, .. } => {
                    note(body.from);
                    note(body.to);
                }
                Tx::Open(o) => {
                    note(o.open.party_a);
                    note(o.open.party_b);
                }
                other => {
                    if let Some(k) = paychan_ledger::fee_payer(other) {
                        note(k);
                    }
                }
            }
        }
    }

    /// When `account` first appeared, if it did.
    pub fn get(&self, account: &PublicKey) -> Option<u64> {
        self.0.get(account).copied()
    }
}

const HOUR_MS: u64 = 3_600_000;

/// The score of `account` in `state`, with its first appearance from `first_seen`.
///
/// Factors (PROTOCOL.md, credit: score):
/// - `channels_settled`: channels of the account paid out, 10 points each, at most 200;
/// - `volume_log2`: bits of the total of those channels' deposits (`floor(log2(v)) + 1`,
///   0 for none), 5 points each, at most 200;
/// - `debts_repaid_on_time`: its debts with nothing outstanding and never defaulted, 30 each,
///   at most 300;
/// - `age_hours`: whole hours of ledger time since it first appeared, 3 each, at most 300;
/// - `defaults`: its debts marked defaulted, -250 each, at least -1000;
/// - `outstanding_debts`: its debts still owed and not yet defaulted, -20 each, at least -100.
pub fn score(state: &LedgerState, first_seen: &FirstSeen, account: &PublicKey) -> Score {
    let mut settled = 0u64;
    let mut volume = 0u64;
    for (_, c) in state.channels() {
        if (c.party_a == *account || c.party_b == *account)
            && matches!(c.status, ChannelStatus::Closed { .. })
        {
            settled += 1;
            volume = volume.saturating_add(c.total());
        }
    }
    let (mut on_time, mut defaults, mut owed) = (0u64, 0u64, 0u64);
    for (_, d) in state.debts().filter(|(_, d)| d.debtor == *account) {
        match (d.defaulted_ms, d.outstanding) {
            (Some(_), _) => defaults += 1,
            (None, 0) => on_time += 1,
            (None, _) => owed += 1,
        }
    }
    let now = state.time_ms();
    let age_hours = first_seen
        .get(account)
        .map_or(0, |t| now.saturating_sub(t) / HOUR_MS);
    let volume_log2 = u64::from(u64::BITS - volume.leading_zeros());
    let factor = |name, value: u64, weight: i64, cap: i64| {
        let raw = i64::try_from(value).unwrap_or(i64::MAX).saturating_mul(weight);
        let points = if weight >= 0 { raw.min(cap) } else { raw.max(cap) };
        Factor {
            name,
            value,
            weight,
            cap,
            points,
        }
    };
    let factors = vec![
        factor("channels_settled", settled, 10, 200),
        factor("volume_log2", volume_log2, 5, 200),
        factor("debts_repaid_on_time", on_time, 30, 300),
        factor("age_hours", age_hours, 3, 300),
        factor("defaults", defaults, -250, -1_000),
        factor("outstanding_debts", owed, -20, -100),
    ];
    let sum: i64 = factors.iter().map(|f| f.points).sum();
    Score {
        account: account.to_hex(),
        score: sum.clamp(0, SCORE_MAX) as u64,
        time_ms: now,
        height: state.height(),
        factors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_account_scores_zero_and_is_seen_from_genesis() {
        let net = paychan_ledger::testkit::TestNet::new(1, 1_000);
        let key = net.users[0].public();
        let seen = FirstSeen::from_genesis(&net.genesis);
        let s = score(&net.state(), &seen, &key);
        assert_eq!(s.score, 0);
        assert_eq!(s.factors.len(), 6);
        assert!(s.factors.iter().all(|f| f.points == 0));
        assert_eq!(seen.get(&key), Some(net.genesis.genesis_time_ms));
        assert_eq!(seen.get(&PublicKey([1; 32])), None);
    }
}

//! `[credit]` in config.toml: a node that grants credit lines by itself when a channel with it
//! opens, sized by the other party's credit score (PROTOCOL.md, credit: score).
//!
//! The decision is a pure function of the ledger state ([`grants_due`]); a small task
//! ([`run`]) follows the replica's blocks, asks it which grants are due, and submits them,
//! again after [`RESUBMIT_AFTER_BLOCKS`] blocks for as long as the ledger does not show the line.

use std::collections::BTreeMap;

use paychan_ledger::{ChannelStatus, LedgerState};
use paychan_protocol::{ChannelId, Direction, PublicKey};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

/// A grant the node submitted and the height it did so at, until the ledger shows it.
pub type Submitted = BTreeMap<ChannelId, u64>;

/// Blocks after which a grant the ledger does not show yet is signed and submitted again: twice
/// the node's own resending ([`crate::resubmit::RESUBMIT_AFTER_BLOCKS`]), which sends the same
/// grant again first, so that a grant the sequencer lost is not replaced by a second one (a
/// second fee) unless the first can no longer apply.
pub const RESUBMIT_AFTER_BLOCKS: u64 = 2 * crate::resubmit::RESUBMIT_AFTER_BLOCKS;

/// The `[credit]` section.
///
/// ```toml
/// [credit]
/// policy = "score"        # "none" (the default): grant nothing by itself
/// per_point = 2           # limit = min(max_limit, score * per_point)
/// max_limit = 500
/// min_score = 0           # grant nothing below this score
/// expiry_ms = 3600000     # a line takes payments for this long after its grant
/// due_after_ms = 3600000  # a debt from it falls due this long after the expiry
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreditConfig {
    /// `none` or `score`.
    #[serde(default)]
    pub policy: Policy,
    /// Limit per point of score.
    #[serde(default)]
    pub per_point: u64,
    /// The cap of any line this node grants by itself.
    #[serde(default)]
    pub max_limit: u64,
    /// No line below this score.
    #[serde(default)]
    pub min_score: u64,
    /// How long after its grant a line takes payments (ms of ledger time).
    #[serde(default = "default_expiry")]
    pub expiry_ms: u64,
    /// How long after the expiry a debt from the line falls due (ms).
    #[serde(default = "default_expiry")]
    pub due_after_ms: u64,
}

fn default_expiry() -> u64 {
    3_600_000
}

impl Default for CreditConfig {
    fn default() -> Self {
        CreditConfig {
            policy: Policy::None,
            per_point: 0,
            max_limit: 0,
            min_score: 0,
            expiry_ms: default_expiry(),
            due_after_ms: default_expiry(),
        }
    }
}

/// How a node grants credit by itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Never: lines come from `paychan credit grant` only. The default: credit is a risk an
    /// operator takes on purpose.
    #[default]
    None,
    /// `min(max_limit, score * per_point)` to every party that opens a channel with this node
    /// and scores at least `min_score`.
    Score,
}

impl CreditConfig {
    /// The limit this policy gives a party with `score` (0: none).
    pub fn limit_for(&self, score: u64) -> u64 {
        match self.policy {
            Policy::None => 0,
            Policy::Score if score < self.min_score => 0,
            Policy::Score => score.saturating_mul(self.per_point).min(self.max_limit),
        }
    }
}

/// One grant the policy asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPlan {
    /// The channel.
    pub channel_id: ChannelId,
    /// The other party.
    pub debtor: PublicKey,
    /// The limit.
    pub limit: u64,
    /// Ledger time the line stops taking payments.
    pub expiry_ms: u64,
    /// Ledger time a debt from it falls due.
    pub due_ms: u64,
}

/// The grants due at `state`: every open channel of `me` whose other party has no line from
/// `me` yet and that was not looked at within the last [`RESUBMIT_AFTER_BLOCKS`] blocks, with
/// the limit the policy gives (0: none for now; the caller records it as looked at, so a score
/// is computed again only every few blocks). `score_of` is the credit score of an account.
pub fn grants_due(
    state: &LedgerState,
    me: &PublicKey,
    config: &CreditConfig,
    submitted: &Submitted,
    mut score_of: impl FnMut(&PublicKey) -> u64,
) -> Vec<GrantPlan> {
    if config.policy == Policy::None {
        return vec![];
    }
    let now = state.time_ms();
    let mut due = Vec::new();
    for (id, c) in state.channels() {
        if !matches!(c.status, ChannelStatus::Open) {
            continue;
        }
        // The other party pays in its direction: A pays B in AToB.
        let (debtor, dir) = if c.party_a == *me {
            (c.party_b, Direction::BToA)
        } else if c.party_b == *me {
            (c.party_a, Direction::AToB)
        } else {
            continue;
        };
        if state.credit_line(id, dir).is_some() {
            continue;
        }
        if submitted
            .get(id)
            .is_some_and(|h| state.height() < h + RESUBMIT_AFTER_BLOCKS)
        {
            continue;
        }
        let limit = config.limit_for(score_of(&debtor));
        let expiry_ms = now.saturating_add(config.expiry_ms);
        due.push(GrantPlan {
            channel_id: *id,
            debtor,
            limit,
            expiry_ms,
            due_ms: expiry_ms.saturating_add(config.due_after_ms),
        });
    }
    due
}

/// Follows the replica and submits the grants the policy asks for, until the replica is gone.
pub async fn run(node: crate::node::NodeHandle, config: CreditConfig) {
    if config.policy == Policy::None {
        return;
    }
    let mut events = node.subscribe_ledger();
    let me = node.keypair_public();
    let mut submitted = Submitted::new();
    loop {
        use tokio::sync::broadcast::error::RecvError;
        match events.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        // Scores read the block store: off the runtime's threads.
        let n = node.clone();
        let (cfg, subm) = (config.clone(), submitted.clone());
        let (plans, height) = tokio::task::spawn_blocking(move || {
            let state = n.with_ledger(|l| l.clone());
            // Read from the store once per pass, and only when some party is to be scored.
            let mut seen = None;
            let plans = grants_due(&state, &me, &cfg, &subm, |k| {
                let seen = seen.get_or_insert_with(|| n.first_seen(state.height()).ok());
                seen.as_ref()
                    .map_or(0, |s| paychan_audit::score(&state, s, k).score)
            });
            (plans, state.height())
        })
        .await
        .unwrap_or_default();
        // Only open channels can still get a line: the map holds no closed one.
        submitted.retain(|id, _| {
            node.with_ledger(|l| {
                l.channel(id)
                    .is_some_and(|c| matches!(c.status, ChannelStatus::Open))
            })
        });
        for p in plans {
            submitted.insert(p.channel_id, height);
            if p.limit == 0 {
                continue;
            }
            match node
                .credit_grant(p.channel_id, p.debtor, p.limit, p.expiry_ms, p.due_ms)
                .await
            {
                Ok((tx, _)) => {
                    info!(channel = %p.channel_id, limit = p.limit, tx = %tx.to_hex(), "credit policy: granted a line");
                }
                Err(e) => {
                    submitted.remove(&p.channel_id);
                    warn!(channel = %p.channel_id, error = %e, "credit policy: the grant was not submitted; it is tried again after the next block");
                }
            }
        }
        debug!(
            pending = submitted.len(),
            "credit policy: grants awaiting the ledger"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_ledger::testkit::{TestChain, TestNet};

    fn policy() -> CreditConfig {
        CreditConfig {
            policy: Policy::Score,
            per_point: 2,
            max_limit: 500,
            min_score: 0,
            expiry_ms: 1_000,
            due_after_ms: 2_000,
        }
    }

    #[test]
    fn each_open_channel_of_the_node_gets_one_grant_until_the_ledger_shows_it() {
        let mut c = TestChain::new(TestNet::new(3, 1_000_000));
        let (me, other, third) = (
            c.net.users[0].clone(),
            c.net.users[1].clone(),
            c.net.users[2].clone(),
        );
        let expiry = c.state.time_ms() + 10_000_000;
        let (open_mine, mine) = c.net.open(&other, &me, (1_000, 0), 1, expiry);
        let (open_theirs, _) = c.net.open(&other, &third, (1_000, 0), 2, expiry);
        assert!(c.next_block(vec![open_mine, open_theirs]).is_empty());
        let scores = |k: &PublicKey| if *k == other.public() { 100 } else { 0 };

        // Only the channel of `me`, to the other party, limit = score * per_point.
        let due = grants_due(&c.state, &me.public(), &policy(), &Submitted::new(), scores);
        let now = c.state.time_ms();
        assert_eq!(
            due,
            vec![GrantPlan {
                channel_id: mine,
                debtor: other.public(),
                limit: 200,
                expiry_ms: now + 1_000,
                due_ms: now + 3_000,
            }]
        );
        // The policy "none" and a score below the floor grant nothing.
        assert!(grants_due(
            &c.state,
            &me.public(),
            &CreditConfig::default(),
            &Submitted::new(),
            scores
        )
        .is_empty());
        let strict = CreditConfig {
            min_score: 101,
            ..policy()
        };
        assert_eq!(
            grants_due(&c.state, &me.public(), &strict, &Submitted::new(), scores)[0].limit,
            0
        );

        // Submitted at this height: not again for RESUBMIT_AFTER_BLOCKS blocks, then again.
        let mut submitted = Submitted::new();
        submitted.insert(mine, c.state.height());
        assert!(grants_due(&c.state, &me.public(), &policy(), &submitted, scores).is_empty());
        for _ in 0..RESUBMIT_AFTER_BLOCKS {
            c.next_block(Vec::<paychan_protocol::Tx>::new());
        }
        assert_eq!(
            grants_due(&c.state, &me.public(), &policy(), &submitted, scores).len(),
            1
        );

        // Once the ledger shows the line, never again.
        let p = &due[0];
        let grant = c.net.grant(
            &me,
            p.debtor,
            mine,
            p.limit,
            c.state.time_ms() + 1_000,
            c.state.time_ms() + 3_000,
            0,
        );
        assert!(c.next_block(vec![grant]).is_empty());
        assert!(grants_due(&c.state, &me.public(), &policy(), &Submitted::new(), scores).is_empty());
    }

    #[test]
    fn the_limit_is_the_score_times_the_rate_capped_and_floored() {
        let c = CreditConfig {
            policy: Policy::Score,
            per_point: 2,
            max_limit: 500,
            min_score: 100,
            ..CreditConfig::default()
        };
        assert_eq!(c.limit_for(99), 0);
        assert_eq!(c.limit_for(100), 200);
        assert_eq!(c.limit_for(1000), 500);
        let none = CreditConfig::default();
        assert_eq!(none.limit_for(1000), 0);
    }
}

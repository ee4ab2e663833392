//! Censorship evidence, as pure functions of (held updates, blocks): which dispute updates a
//! settlement ignored that the sequencer could have included.
//!
//! A witness holds a valid dispute update from the moment it sees it. The update counts as
//! evidence against a settlement only if the sequencer provably had time to include it: some
//! block applied after the hold still had a time inside the challenge window and at least
//! [`margin_ms`] after the hold (one block interval for the sequencer's next block, plus an
//! allowance for propagation and clock difference). An update that arrives in the last moments
//! of the window is held, but never counts.

use paychan_protocol::{Genesis, SignedProof};

/// Allowance for gossip propagation and the clock difference between a witness and the
/// sequencer (ms), on top of one block interval.
pub const PROPAGATION_ALLOWANCE_MS: u64 = 500;
/// Most dispute updates held at once (one per closing channel); new ones beyond are not held.
pub const HELD_MAX: usize = 4096;
/// Most censorship reports kept (one is enough to refuse).
pub const REPORTS_MAX: usize = 64;

/// How long after the hold a block must be made, inside the window, for the update to count.
pub fn margin_ms(genesis: &Genesis) -> u64 {
    genesis.block_interval_ms.saturating_add(PROPAGATION_ALLOWANCE_MS)
}

/// A valid dispute update held as evidence, best proof per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldUpdate {
    /// Best proof A to B held.
    pub ab: Option<SignedProof>,
    /// Best proof B to A held.
    pub ba: Option<SignedProof>,
    /// When the newest improvement was held: this node's clock, never below its ledger time (ms).
    pub received_ms: u64,
    /// End of the channel's challenge window (exclusive, ledger time, ms).
    pub window_end_ms: u64,
    /// Whether a block applied after the hold had a time in `[received_ms + margin, window_end)`:
    /// the sequencer could have included the update.
    pub includable: bool,
}

fn transferred(p: &Option<SignedProof>) -> u64 {
    p.map_or(0, |p| p.proof.transferred)
}

impl HeldUpdate {
    /// A first hold.
    pub fn new(
        ab: Option<SignedProof>,
        ba: Option<SignedProof>,
        received_ms: u64,
        window_end_ms: u64,
    ) -> HeldUpdate {
        HeldUpdate {
            ab,
            ba,
            received_ms,
            window_end_ms,
            includable: false,
        }
    }

    /// Merges a newer update. A better proof restarts the clock (the sequencer had no time yet
    /// to include it). Returns whether anything changed.
    pub fn merge(&mut self, ab: Option<SignedProof>, ba: Option<SignedProof>, received_ms: u64) -> bool {
        let better = |mine: &Option<SignedProof>, new: &Option<SignedProof>| {
            new.filter(|n| mine.is_none_or(|m| n.proof.transferred > m.proof.transferred))
        };
        let (nab, nba) = (better(&self.ab, &ab), better(&self.ba, &ba));
        if nab.is_none() && nba.is_none() {
            return false;
        }
        self.ab = nab.or(self.ab);
        self.ba = nba.or(self.ba);
        self.received_ms = received_ms;
        self.includable = false;
        true
    }

    /// A block with time `block_time_ms` was applied after the hold. Returns whether this
    /// made the update includable.
    pub fn observe_block(&mut self, block_time_ms: u64, margin_ms: u64) -> bool {
        if self.includable {
            return false;
        }
        if block_time_ms >= self.received_ms.saturating_add(margin_ms) && block_time_ms < self.window_end_ms {
            self.includable = true;
            return true;
        }
        false
    }

    /// Whether the hold is long past use: a challenge period after its window ended.
    pub fn expired(&self, ledger_time_ms: u64, challenge_period_ms: u64) -> bool {
        ledger_time_ms > self.window_end_ms.saturating_add(challenge_period_ms)
    }
}

/// A settlement that ignored an update this node held and the sequencer could have included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CensorshipReport {
    /// The channel.
    pub channel_id: String,
    /// Height of the block that settled it.
    pub height: u64,
    /// Transferred A to B the ledger settled with.
    pub ledger_ab: u64,
    /// Transferred B to A the ledger settled with.
    pub ledger_ba: u64,
    /// Transferred A to B of the held update.
    pub held_ab: u64,
    /// Transferred B to A of the held update.
    pub held_ba: u64,
}

/// Judges a settlement at `height` of `channel_id`, which the ledger settles with `ledger_ab`
/// and `ledger_ba`, against the update held for it: a report if the held update raises either
/// direction and the sequencer could have included it.
pub fn judge(
    held: &HeldUpdate,
    channel_id: String,
    height: u64,
    ledger_ab: u64,
    ledger_ba: u64,
) -> Option<CensorshipReport> {
    let (held_ab, held_ba) = (transferred(&held.ab), transferred(&held.ba));
    if !held.includable || (held_ab <= ledger_ab && held_ba <= ledger_ba) {
        return None;
    }
    Some(CensorshipReport {
        channel_id,
        height,
        ledger_ab,
        ledger_ba,
        held_ab,
        held_ba,
    })
}

/// The first height from which a witness refuses to cosign: the lowest settlement reported.
pub fn refuse_from_height(reports: &[CensorshipReport]) -> Option<u64> {
    reports.iter().map(|r| r.height).min()
}

#[cfg(test)]
mod tests {
    use paychan_protocol::{BalanceProof, ChannelId, Direction, Hash32, Keypair};

    use super::*;

    fn proof(transferred: u64) -> Option<SignedProof> {
        let kp = Keypair::from_seed([7; 32]);
        let proof = BalanceProof {
            chain_id: Hash32([2; 32]),
            channel_id: ChannelId(Hash32([1; 32])),
            direction: Direction::AToB,
            seq: transferred,
            transferred,
            prev: Hash32([0; 32]),
            memo_hash: Hash32([0; 32]),
        };
        Some(proof.sign(&kp))
    }

    /// Window [10 000, 15 000), block interval 200, margin 700.
    const END: u64 = 15_000;
    const MARGIN: u64 = 700;

    #[test]
    fn an_update_held_early_in_the_window_counts() {
        let mut h = HeldUpdate::new(proof(700), None, 10_300, END);
        assert!(judge(&h, "c".into(), 9, 0, 0).is_none(), "no block yet");
        // A heartbeat block made well after the hold and inside the window.
        assert!(h.observe_block(12_000, MARGIN));
        let r = judge(&h, "c".into(), 9, 0, 0).expect("censorship");
        assert_eq!((r.height, r.held_ab, r.ledger_ab), (9, 700, 0));
        // A settlement that includes it is no censorship.
        assert!(judge(&h, "c".into(), 9, 700, 0).is_none());
    }

    #[test]
    fn an_update_in_the_last_block_interval_never_counts() {
        // Held 100 ms before the window ends: the next blocks are at or past the window end.
        let mut h = HeldUpdate::new(proof(700), None, END - 100, END);
        assert!(!h.observe_block(END - 50, MARGIN), "too soon after the hold");
        assert!(!h.observe_block(END, MARGIN), "past the window");
        assert!(!h.observe_block(END + 200, MARGIN));
        assert!(judge(&h, "c".into(), 9, 0, 0).is_none());
        // Held just over the margin before the end, a block in between counts.
        let mut h = HeldUpdate::new(proof(700), None, END - MARGIN - 100, END);
        assert!(!h.observe_block(END - MARGIN - 50, MARGIN), "the block in flight");
        assert!(h.observe_block(END - 10, MARGIN));
        assert!(judge(&h, "c".into(), 9, 0, 0).is_some());
    }

    #[test]
    fn a_better_update_restarts_the_clock_and_holds_expire() {
        let mut h = HeldUpdate::new(proof(100), None, 10_300, END);
        assert!(h.observe_block(12_000, MARGIN));
        assert!(!h.merge(proof(50), None, 14_800), "a worse proof changes nothing");
        assert!(h.includable);
        assert!(h.merge(proof(700), None, 14_800));
        assert!(!h.includable, "the better proof arrived too late");
        assert_eq!(transferred(&h.ab), 700);
        assert!(judge(&h, "c".into(), 9, 100, 0).is_none());
        assert!(!h.expired(END + 5_000, 5_000));
        assert!(h.expired(END + 5_001, 5_000));
        let reports = [
            judge(
                &HeldUpdate {
                    includable: true,
                    ..h
                },
                "c".into(),
                9,
                0,
                0,
            )
            .unwrap(),
            judge(
                &HeldUpdate {
                    includable: true,
                    ..h
                },
                "d".into(),
                7,
                0,
                0,
            )
            .unwrap(),
        ];
        assert_eq!(refuse_from_height(&reports), Some(7));
        assert_eq!(refuse_from_height(&[]), None);
    }
}

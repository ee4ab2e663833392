//! The node's own transactions (the transfers, credit grants and repayments it signs for its
//! user) until the ledger shows them. A sequencer's pool may lose a transaction (a restart,
//! expiry, eviction by higher fees) after it was accepted; the node then sends it again,
//! every [`RESUBMIT_AFTER_BLOCKS`] blocks, until a block holds it or the rules refuse it for
//! good (its nonce was used, its funds are gone). Pure: the driver in `node.rs` follows the
//! replica's blocks and does the sending.

use std::collections::BTreeMap;

use paychan_ledger::LedgerState;
use paychan_protocol::{Hash32, Tx};

/// Blocks after which a transaction the ledger does not show is sent again.
pub const RESUBMIT_AFTER_BLOCKS: u64 = 5;
/// Own transactions tracked at most; past it the one sent longest ago is forgotten.
pub const OWN_PENDING_MAX: usize = 1_024;

/// Own transactions not yet in a block, each with the ledger height when it was last sent.
#[derive(Debug, Default)]
pub struct OwnPending {
    txs: BTreeMap<Hash32, (Tx, u64)>,
}

impl OwnPending {
    /// Tracks `tx` (id `id`), sent at ledger height `height`. Returns the id of the one it
    /// displaced when the tracker was full.
    pub fn track(&mut self, id: Hash32, tx: Tx, height: u64) -> Option<Hash32> {
        let mut displaced = None;
        if !self.txs.contains_key(&id) && self.txs.len() >= OWN_PENDING_MAX {
            let oldest = self
                .txs
                .iter()
                .min_by_key(|(id, (_, sent))| (*sent, **id))
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.txs.remove(&oldest);
                displaced = Some(oldest);
            }
        }
        self.txs.insert(id, (tx, height));
        displaced
    }

    /// After a block: forgets what `state` holds, and returns the others sent
    /// [`RESUBMIT_AFTER_BLOCKS`] or more blocks ago, now marked as sent at its height.
    pub fn due(&mut self, state: &LedgerState) -> Vec<(Hash32, Tx)> {
        self.txs.retain(|id, _| !state.contains_tx(id));
        let now = state.height();
        let mut out = Vec::new();
        for (id, (tx, sent)) in &mut self.txs {
            if now >= sent.saturating_add(RESUBMIT_AFTER_BLOCKS) {
                *sent = now;
                out.push((*id, tx.clone()));
            }
        }
        out
    }

    /// Stops tracking `id` (the rules refuse it for good).
    pub fn forget(&mut self, id: &Hash32) {
        self.txs.remove(id);
    }

    /// Transactions tracked.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_ledger::testkit::{TestChain, TestNet};

    #[test]
    fn a_lost_transaction_is_due_every_few_blocks_until_a_block_holds_it() {
        let net = TestNet::new(2, 10_000);
        let (a, b) = (net.users[0].clone(), net.users[1].public());
        let mut c = TestChain::new(net);
        let t = c.net.transfer(&a, b, 5, 0);
        let mut own = OwnPending::default();
        assert_eq!(own.track(t.id(), t.clone(), c.state.height()), None);
        // The pool lost it: nothing for a few blocks, then it is due, then quiet again.
        let mut due_at = Vec::new();
        for _ in 0..(2 * RESUBMIT_AFTER_BLOCKS) {
            c.next_block(Vec::<Tx>::new());
            if !own.due(&c.state).is_empty() {
                due_at.push(c.state.height());
            }
        }
        assert_eq!(due_at, vec![RESUBMIT_AFTER_BLOCKS, 2 * RESUBMIT_AFTER_BLOCKS]);
        // Sent again and included: forgotten at the next block.
        assert!(c.next_block(vec![t]).is_empty());
        assert!(own.due(&c.state).is_empty());
        assert!(own.is_empty());
    }

    #[test]
    fn the_tracker_is_bounded_and_forgets_the_one_sent_longest_ago() {
        let net = TestNet::new(2, 10_000_000);
        let (a, b) = (net.users[0].clone(), net.users[1].public());
        let mut own = OwnPending::default();
        let first = net.transfer(&a, b, 1, 0);
        own.track(first.id(), first.clone(), 0);
        for n in 1..OWN_PENDING_MAX as u64 {
            let t = net.transfer(&a, b, 1, n);
            assert_eq!(own.track(t.id(), t, 1), None);
        }
        assert_eq!(own.len(), OWN_PENDING_MAX);
        let t = net.transfer(&a, b, 1, 5_000);
        assert_eq!(own.track(t.id(), t, 2), Some(first.id()));
        assert_eq!(own.len(), OWN_PENDING_MAX);
        own.forget(&first.id());
        assert_eq!(own.len(), OWN_PENDING_MAX);
    }
}

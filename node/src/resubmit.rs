//! The node's own transactions (the transfers, credit grants and repayments it signs for its
//! user) until the ledger shows them. A sequencer's pool may lose a transaction (a restart,
//! expiry, eviction by higher fees) after it was accepted; the node then sends it again,
//! every [`RESUBMIT_AFTER_BLOCKS`] blocks, until a block holds it or the rules refuse it for
//! good (its nonce was used, its funds are gone). Pure: the driver in `node.rs` follows the
//! replica's blocks and does the sending.

use std::collections::{BTreeMap, BTreeSet};

use paychan_ledger::LedgerState;
use paychan_protocol::codec::{decode, encode};
use paychan_protocol::{Hash32, Tx};

/// Blocks after which a transaction the ledger does not show is sent again.
pub const RESUBMIT_AFTER_BLOCKS: u64 = 5;
/// Own transactions tracked at most; past it the one sent longest ago is forgotten.
pub const OWN_PENDING_MAX: usize = 1_024;
/// Each tracked transaction is kept in the store under one of [`OWN_PENDING_MAX`] slot keys
/// (`own-pending/<slot>`), as postcard `(Tx, height sent)`; an empty value is a free slot. So
/// what the node must send again survives a restart, and the store holds at most that many.
pub const META_PREFIX: &str = "own-pending/";

/// The store key of slot `slot`.
pub fn slot_key(slot: usize) -> String {
    format!("{META_PREFIX}{slot}")
}

/// The stored value of a tracked transaction.
pub fn record(tx: &Tx, height: u64) -> Vec<u8> {
    encode(&(tx, height))
}

#[derive(Debug)]
struct Entry {
    tx: Tx,
    sent: u64,
    slot: usize,
}

/// Own transactions not yet in a block, each with the ledger height when it was last sent
/// and its store slot.
#[derive(Debug)]
pub struct OwnPending {
    txs: BTreeMap<Hash32, Entry>,
    /// The slots no tracked transaction holds (with `txs`, every slot once).
    free: BTreeSet<usize>,
}

impl Default for OwnPending {
    fn default() -> OwnPending {
        OwnPending {
            txs: BTreeMap::new(),
            free: (0..OWN_PENDING_MAX).collect(),
        }
    }
}

/// What a block changed: the transactions to send again, and the slots of those the ledger
/// now shows (to free in the store).
#[derive(Debug, Default)]
pub struct Due {
    /// Sent [`RESUBMIT_AFTER_BLOCKS`] or more blocks ago and not in a block.
    pub resend: Vec<(Hash32, Tx)>,
    /// Slots of the transactions a block now holds.
    pub freed: Vec<usize>,
}

impl OwnPending {
    /// The tracker as the store left it: every slot entry that decodes (a slot that does not,
    /// or an empty one, is free).
    pub fn restore(meta: &[(String, Vec<u8>)]) -> OwnPending {
        let mut own = OwnPending::default();
        for (key, value) in meta {
            let Some(slot) = key
                .strip_prefix(META_PREFIX)
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|s| *s < OWN_PENDING_MAX)
            else {
                continue;
            };
            if let Ok((tx, sent)) = decode::<(Tx, u64)>(value, paychan_store::keys::META_VALUE_BYTES_MAX) {
                own.free.remove(&slot);
                // The same transaction in two slots: the later one is kept, the other is free.
                if let Some(old) = own.txs.insert(tx.id(), Entry { tx, sent, slot }) {
                    own.free.insert(old.slot);
                }
            }
        }
        own
    }

    /// Tracks `tx` (id `id`), sent at ledger height `height`. Returns its store slot and the id
    /// of the one it displaced when the tracker was full (whose slot it takes).
    pub fn track(&mut self, id: Hash32, tx: Tx, height: u64) -> (usize, Option<Hash32>) {
        if let Some(e) = self.txs.get_mut(&id) {
            e.sent = height;
            return (e.slot, None);
        }
        let mut displaced = None;
        let slot = if self.txs.len() >= OWN_PENDING_MAX {
            let oldest = self
                .txs
                .iter()
                .min_by_key(|(id, e)| (e.sent, **id))
                .map(|(id, _)| *id);
            let old = oldest.and_then(|id| self.txs.remove(&id).map(|e| (id, e.slot)));
            displaced = old.map(|(id, _)| id);
            old.map_or(0, |(_, slot)| slot)
        } else {
            // The lowest free slot: fewer tracked than slots, so there is one.
            self.free.pop_first().unwrap_or(0)
        };
        self.txs.insert(
            id,
            Entry {
                tx,
                sent: height,
                slot,
            },
        );
        (slot, displaced)
    }

    /// After a block: forgets what `state` holds, and returns the others sent
    /// [`RESUBMIT_AFTER_BLOCKS`] or more blocks ago, now marked as sent at its height.
    pub fn due(&mut self, state: &LedgerState) -> Due {
        let mut due = Due::default();
        self.txs.retain(|id, e| {
            let keep = !state.contains_tx(id);
            if !keep {
                due.freed.push(e.slot);
                self.free.insert(e.slot);
            }
            keep
        });
        let now = state.height();
        for (id, e) in &mut self.txs {
            if now >= e.sent.saturating_add(RESUBMIT_AFTER_BLOCKS) {
                e.sent = now;
                due.resend.push((*id, e.tx.clone()));
            }
        }
        due
    }

    /// Stops tracking `id` (the rules refuse it for good, or it was never sent); returns its
    /// slot to free.
    pub fn forget(&mut self, id: &Hash32) -> Option<usize> {
        let slot = self.txs.remove(id)?.slot;
        self.free.insert(slot);
        Some(slot)
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
        assert_eq!(own.track(t.id(), t.clone(), c.state.height()), (0, None));
        // The pool lost it: nothing for a few blocks, then it is due, then quiet again.
        let mut due_at = Vec::new();
        for _ in 0..(2 * RESUBMIT_AFTER_BLOCKS) {
            c.next_block(Vec::<Tx>::new());
            if !own.due(&c.state).resend.is_empty() {
                due_at.push(c.state.height());
            }
        }
        assert_eq!(due_at, vec![RESUBMIT_AFTER_BLOCKS, 2 * RESUBMIT_AFTER_BLOCKS]);
        // Sent again and included: forgotten at the next block.
        assert!(c.next_block(vec![t]).is_empty());
        let due = own.due(&c.state);
        assert!(due.resend.is_empty());
        assert_eq!(due.freed, vec![0], "its store slot is free again");
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
            assert_eq!(own.track(t.id(), t, 1), (n as usize, None));
        }
        assert_eq!(own.len(), OWN_PENDING_MAX);
        let t = net.transfer(&a, b, 1, 5_000);
        assert_eq!(
            own.track(t.id(), t, 2),
            (0, Some(first.id())),
            "it takes the slot of the one it displaced"
        );
        assert_eq!(own.len(), OWN_PENDING_MAX);
        assert_eq!(own.forget(&first.id()), None);
        assert_eq!(own.len(), OWN_PENDING_MAX);
        assert!(own.free.is_empty(), "every slot is taken");
    }

    #[test]
    fn what_is_tracked_comes_back_from_the_store_after_a_restart() {
        use paychan_store::{MemStore, Store};
        let net = TestNet::new(2, 10_000);
        let (a, b) = (net.users[0].clone(), net.users[1].public());
        let store = MemStore::new();
        let mut own = OwnPending::default();
        let (t1, t2, t3) = (
            net.transfer(&a, b, 1, 0),
            net.transfer(&a, b, 2, 1),
            net.transfer(&a, b, 3, 2),
        );
        for (t, h) in [(&t1, 4), (&t2, 5), (&t3, 6)] {
            let (slot, _) = own.track(t.id(), t.clone(), h);
            store.put_meta(&slot_key(slot), &record(t, h)).unwrap();
        }
        // t2 was refused: its slot is freed (an empty value), and reused by the next one.
        let freed = own.forget(&t2.id()).unwrap();
        store.put_meta(&slot_key(freed), &[]).unwrap();
        store.put_meta("something-else", b"x").unwrap();
        let back = OwnPending::restore(&store.meta_entries().unwrap());
        assert_eq!(back.len(), 2);
        let mut ids: Vec<_> = back.txs.iter().map(|(id, e)| (*id, e.sent, e.slot)).collect();
        ids.sort();
        let mut want = vec![(t1.id(), 4, 0), (t3.id(), 6, 2)];
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(back.free.len(), OWN_PENDING_MAX - 2, "every other slot is free");
        let mut back = back;
        let t4 = net.transfer(&a, b, 4, 3);
        assert_eq!(back.track(t4.id(), t4, 7), (1, None));
        // Without a restart too, a freed slot is the next one taken, the lowest first.
        assert_eq!(back.forget(&t1.id()), Some(0));
        let t5 = net.transfer(&a, b, 5, 4);
        assert_eq!(back.track(t5.id(), t5, 8), (0, None));
        let t6 = net.transfer(&a, b, 6, 5);
        assert_eq!(back.track(t6.id(), t6, 8), (3, None));
        assert_eq!(back.free.len() + back.len(), OWN_PENDING_MAX);
    }
}

//! The right edge of the RFC 6962 transaction log.
//!
//! A replica must know the log root a block would produce before it accepts the block, and a
//! refused block must leave the log untouched. `MerkleLog` cannot un-append, and cloning it costs
//! the whole log; the frontier (one perfect-subtree root per set bit of the size, `O(log n)`
//! hashes) is all that appending needs, so it is cloned instead.

use paychan_protocol::merkle::{empty_root, node_hash};
use paychan_protocol::Hash32;

/// Roots of the perfect subtrees that make up a log of `size` leaves, largest (leftmost) first.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(crate) struct Frontier {
    size: u64,
    stack: Vec<Hash32>,
}

impl Frontier {
    /// Appends a leaf hash.
    pub(crate) fn push(&mut self, leaf: Hash32) {
        let mut node = leaf;
        // The new leaf closes one perfect subtree per trailing one bit of the old size.
        let mut count = self.size;
        while count & 1 == 1 {
            let left = self
                .stack
                .pop()
                .expect("one subtree root per set bit of the size");
            node = node_hash(&left, &node);
            count >>= 1;
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// `MTH` of the leaves: the subtrees combined from the right, which is exactly the
    /// largest-power-of-two split of RFC 6962.
    pub(crate) fn root(&self) -> Hash32 {
        self.stack
            .iter()
            .rev()
            .copied()
            .reduce(|right, left| node_hash(&left, &right))
            .unwrap_or_else(empty_root)
    }
}

#[cfg(test)]
mod tests {
    use paychan_protocol::merkle::{leaf_hash, MerkleLog};

    use super::*;

    #[test]
    fn frontier_matches_merkle_log() {
        let mut f = Frontier::default();
        let mut log = MerkleLog::new();
        assert_eq!(f.root(), log.root());
        for i in 0u32..200 {
            let leaf = leaf_hash(&i.to_le_bytes());
            f.push(leaf);
            log.push(leaf);
            assert_eq!(f.size(), log.size());
            assert_eq!(f.root(), log.root(), "size {}", i + 1);
        }
    }
}

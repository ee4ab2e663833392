//! The RFC 6962 / RFC 9162 Merkle tree over SHA-256.
//!
//! * Hashes ([RFC 9162 §2.1.1], [RFC 6962 §2.1]): a leaf is `SHA-256(0x00 || data)`
//!   ([`leaf_hash`]), an interior node `SHA-256(0x01 || left || right)` ([`node_hash`]), and the
//!   hash of the empty tree is `SHA-256("")` ([`empty_root`]). A tree of `n > 1` leaves is split
//!   at `k`, the largest power of two smaller than `n` (`k < n <= 2k`):
//!   `MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))` ([`root_from_leaf_hashes`]).
//! * Inclusion proofs ([RFC 6962 §2.1.1] `PATH`, [RFC 9162 §2.1.3.1]): [`inclusion_proof`], checked
//!   with the bit-shifting algorithm of [RFC 9162 §2.1.3.2] ([`verify_inclusion`]).
//! * Consistency proofs ([RFC 6962 §2.1.2] `PROOF` / `SUBPROOF`, [RFC 9162 §2.1.4.1]):
//!   [`consistency_proof`], checked with the algorithm of [RFC 9162 §2.1.4.2]
//!   ([`verify_consistency`]).
//! * [`MerkleLog`]: an append-only log of leaf hashes that keeps every complete subtree, so that
//!   its root, any past root and any proof cost `O(log n)` hashes rather than `O(n)`.
//!
//! Proof paths are ordered from the leaf towards the root, as in the RFCs.
//!
//! The verifiers never panic and never allocate; every malformed input gives a [`MerkleError`].
//! As in RFC 9162, a proof authenticates a leaf (or an older root) against a root *for a given
//! tree size*: the size must be authenticated together with the root (here, by the signed
//! checkpoint that carries both). Some proofs also verify against the same root under another
//! claimed size of the same shape (e.g. leaf 0 in sizes 3 and 4); this is inherent to the RFC
//! and harmless when the size is signed.
//!
//! [RFC 6962 §2.1]: https://www.rfc-editor.org/rfc/rfc6962#section-2.1
//! [RFC 6962 §2.1.1]: https://www.rfc-editor.org/rfc/rfc6962#section-2.1.1
//! [RFC 6962 §2.1.2]: https://www.rfc-editor.org/rfc/rfc6962#section-2.1.2
//! [RFC 9162 §2.1.1]: https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1
//! [RFC 9162 §2.1.3.1]: https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.1
//! [RFC 9162 §2.1.3.2]: https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.2
//! [RFC 9162 §2.1.4.1]: https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.1
//! [RFC 9162 §2.1.4.2]: https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.2

use core::fmt;

use crate::hash::{sha256, Hash32};

/// Prefix of a leaf hash (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// Why a Merkle proof could not be produced or did not verify.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MerkleError {
    /// An inclusion proof was asked for, or checked against, a tree of size 0.
    #[error("the empty tree has no leaves")]
    EmptyTree,
    /// The leaf index is not smaller than the tree size.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index given.
        index: u64,
        /// The tree size given.
        size: u64,
    },
    /// The first tree size of a consistency proof is 0 (RFC 6962 defines proofs for `0 < m`).
    #[error("the first tree size of a consistency proof must not be 0")]
    FirstIsZero,
    /// The first tree size of a consistency proof exceeds the second.
    #[error("first tree size {first} exceeds second tree size {second}")]
    FirstExceedsSecond {
        /// The first (older) tree size.
        first: u64,
        /// The second (newer) tree size.
        second: u64,
    },
    /// A tree size exceeds the number of leaves of the log asked for a proof or a root.
    #[error("tree size {size} exceeds the {available} leaves available")]
    SizeOutOfRange {
        /// The tree size asked for.
        size: u64,
        /// The number of leaves available.
        available: u64,
    },
    /// The proof has more hashes than the tree sizes call for.
    #[error("proof has {got} hashes, expected {expected}")]
    PathTooLong {
        /// The number of hashes the sizes call for.
        expected: usize,
        /// The number of hashes supplied.
        got: usize,
    },
    /// The proof has fewer hashes than the tree sizes call for.
    #[error("proof has {got} hashes, expected {expected}")]
    PathTooShort {
        /// The number of hashes the sizes call for.
        expected: usize,
        /// The number of hashes supplied.
        got: usize,
    },
    /// The root computed from an inclusion proof differs from the expected root.
    #[error("inclusion proof does not lead to the expected root")]
    RootMismatch,
    /// The first root computed from a consistency proof differs from the given first root.
    #[error("consistency proof does not lead to the first root")]
    FirstRootMismatch,
    /// The second root computed from a consistency proof differs from the given second root
    /// (for equal sizes: the two roots differ).
    #[error("consistency proof does not lead to the second root")]
    SecondRootMismatch,
}

/// `SHA-256(0x00 || data)`: the hash of a leaf whose input is `data` (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    sha256(&[&[LEAF_PREFIX], data])
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node (RFC 6962 §2.1).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    sha256(&[&[NODE_PREFIX], &left.0, &right.0])
}

/// `SHA-256("")`: the root of the empty tree (RFC 6962 §2.1).
pub fn empty_root() -> Hash32 {
    sha256(&[])
}

/// The Merkle tree hash `MTH` of a list of leaf hashes (RFC 6962 §2.1); the empty list gives
/// [`empty_root`].
///
/// Runs in `O(n)` hashes and `O(log n)` memory, without recursion: the leaves are merged into
/// perfect subtrees from left to right, and the remaining subtrees (one per set bit of `n`) are
/// then combined from right to left, which is exactly the largest-power-of-two split.
pub fn root_from_leaf_hashes(leaves: &[Hash32]) -> Hash32 {
    // Roots of the perfect subtrees built so far, from left (largest) to right (smallest).
    let mut stack: Vec<Hash32> = Vec::with_capacity(usize::BITS as usize);
    for (i, leaf) in leaves.iter().enumerate() {
        // After i + 1 leaves, the new leaf is merged once per trailing one bit of i.
        let mut node = *leaf;
        let mut count = i;
        while count & 1 == 1 {
            if let Some(left) = stack.pop() {
                node = node_hash(&left, &node);
            }
            count >>= 1;
        }
        stack.push(node);
    }
    stack
        .iter()
        .rev()
        .copied()
        .reduce(|right, left| node_hash(&left, &right))
        .unwrap_or_else(empty_root)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of all `leaves`:
/// `PATH(index, D[n])` of RFC 6962 §2.1.1, ordered from the leaf towards the root.
///
/// Costs `O(n)` hashes; [`MerkleLog::inclusion_proof`] costs `O(log² n)`.
pub fn inclusion_proof(leaves: &[Hash32], index: u64) -> Result<Vec<Hash32>, MerkleError> {
    let size = leaves.len() as u64;
    let m = check_index(index, size)?;
    let mut out = Vec::new();
    path(leaves, m, 0, leaves.len(), &mut out);
    Ok(out)
}

/// The consistency proof between the tree of the first `first` leaves and the tree of all
/// `leaves`: `PROOF(first, D[n])` of RFC 6962 §2.1.2, for `0 < first <= n`. `first == n` gives
/// the empty proof.
///
/// Costs `O(n)` hashes; [`MerkleLog::consistency_proof`] costs `O(log² n)`.
pub fn consistency_proof(leaves: &[Hash32], first: u64) -> Result<Vec<Hash32>, MerkleError> {
    let second = leaves.len() as u64;
    let m = check_first(first, second)?;
    let mut out = Vec::new();
    subproof(leaves, m, 0, leaves.len(), true, &mut out);
    Ok(out)
}

/// The number of hashes in the inclusion proof of leaf `index` in a tree of `size` leaves.
///
/// Useful to bound the length of a proof before decoding it; never more than 64.
pub fn inclusion_path_len(index: u64, size: u64) -> Result<usize, MerkleError> {
    check_index(index, size)?;
    let (mut fnode, mut snode) = (index, size - 1);
    let mut len = 0;
    while snode != 0 {
        inclusion_step(&mut fnode, &mut snode);
        len += 1;
    }
    Ok(len)
}

/// The number of hashes in the consistency proof from tree size `first` to tree size `second`
/// (0 when they are equal).
///
/// Useful to bound the length of a proof before decoding it; never more than 65.
pub fn consistency_path_len(first: u64, second: u64) -> Result<usize, MerkleError> {
    check_sizes(first, second)?;
    if first == second {
        return Ok(0);
    }
    let (mut fnode, mut snode) = consistency_start(first, second);
    // The first hash of the path is the root of the largest complete subtree the two trees
    // share, unless that subtree is the whole first tree (first is a power of two).
    let mut len = usize::from(!first.is_power_of_two());
    while snode != 0 {
        consistency_step(&mut fnode, &mut snode);
        len += 1;
    }
    Ok(len)
}

/// Checks that `path` proves that `leaf_hash` is the leaf at `index` in the tree of `size`
/// leaves whose root is `root`, with the algorithm of RFC 9162 §2.1.3.2.
///
/// Errors: [`MerkleError::EmptyTree`] if `size == 0`, [`MerkleError::IndexOutOfRange`] if
/// `index >= size`, [`MerkleError::PathTooLong`] / [`MerkleError::PathTooShort`] if `path` has
/// the wrong length, [`MerkleError::RootMismatch`] if the computed root differs from `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash32,
    index: u64,
    size: u64,
    path: &[Hash32],
    root: &Hash32,
) -> Result<(), MerkleError> {
    // 1. leaf_index must be smaller than tree_size.
    check_index(index, size)?;
    // 2. fn = leaf_index, sn = tree_size - 1.
    let (mut fnode, mut snode) = (index, size - 1);
    // 3. r = hash.
    let mut r = *leaf_hash;
    // 4. For each p in inclusion_path:
    for (i, p) in path.iter().enumerate() {
        // a. If sn is 0, fail.
        if snode == 0 {
            return Err(MerkleError::PathTooLong {
                expected: i,
                got: path.len(),
            });
        }
        // b. If LSB(fn) is set, or fn == sn: r = HASH(0x01 || p || r), then, if LSB(fn) is not
        //    set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
        //    Otherwise r = HASH(0x01 || r || p).
        // c. Right-shift fn and sn once.
        r = if fnode & 1 == 1 || fnode == snode {
            node_hash(p, &r)
        } else {
            node_hash(&r, p)
        };
        inclusion_step(&mut fnode, &mut snode);
    }
    // 5. sn must be 0 and r must equal the root.
    if snode != 0 {
        return Err(MerkleError::PathTooShort {
            expected: inclusion_path_len(index, size)?,
            got: path.len(),
        });
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Checks that `path` proves that the tree of `first` leaves with root `first_root` is a prefix
/// of the tree of `second` leaves with root `second_root`, with the algorithm of RFC 9162
/// §2.1.4.2. For `first == second` the path must be empty and the roots equal.
///
/// Errors: [`MerkleError::FirstIsZero`], [`MerkleError::FirstExceedsSecond`],
/// [`MerkleError::PathTooLong`] / [`MerkleError::PathTooShort`] if `path` has the wrong length,
/// [`MerkleError::FirstRootMismatch`] / [`MerkleError::SecondRootMismatch`] if a computed root
/// differs from the one given.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash32,
    second_root: &Hash32,
    path: &[Hash32],
) -> Result<(), MerkleError> {
    check_sizes(first, second)?;
    if first == second {
        if !path.is_empty() {
            return Err(MerkleError::PathTooLong {
                expected: 0,
                got: path.len(),
            });
        }
        if first_root != second_root {
            return Err(MerkleError::SecondRootMismatch);
        }
        return Ok(());
    }
    let too_short = || -> Result<(), MerkleError> {
        Err(MerkleError::PathTooShort {
            expected: consistency_path_len(first, second)?,
            got: path.len(),
        })
    };
    // 1. An empty consistency_path fails.
    // 2. If first is an exact power of 2, prepend first_hash to the consistency_path.
    let (seed, rest) = if first.is_power_of_two() {
        if path.is_empty() {
            return too_short();
        }
        (first_root, path)
    } else {
        match path.split_first() {
            Some((seed, rest)) => (seed, rest),
            None => return too_short(),
        }
    };
    // Number of hashes of `path` consumed by the seed.
    let consumed = path.len() - rest.len();
    // 3. fn = first - 1, sn = second - 1.
    // 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
    let (mut fnode, mut snode) = consistency_start(first, second);
    // 5. fr = sr = the first value of the consistency_path.
    let (mut fr, mut sr) = (*seed, *seed);
    // 6. For each subsequent value c in the consistency_path:
    for (i, c) in rest.iter().enumerate() {
        // a. If sn is 0, fail.
        if snode == 0 {
            return Err(MerkleError::PathTooLong {
                expected: consumed + i,
                got: path.len(),
            });
        }
        // b. If LSB(fn) is set, or fn == sn: fr = HASH(0x01 || c || fr),
        //    sr = HASH(0x01 || c || sr), then, if LSB(fn) is not set, right-shift fn and sn
        //    equally until either LSB(fn) is set or fn is 0.
        //    Otherwise sr = HASH(0x01 || sr || c).
        // c. Right-shift fn and sn once.
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
        } else {
            sr = node_hash(&sr, c);
        }
        consistency_step(&mut fnode, &mut snode);
    }
    // 7. sn must be 0, fr must equal first_hash and sr must equal second_hash.
    if snode != 0 {
        return too_short();
    }
    if fr != *first_root {
        return Err(MerkleError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(MerkleError::SecondRootMismatch);
    }
    Ok(())
}

/// An append-only Merkle log of leaf hashes.
///
/// Besides the leaves it keeps the root of every complete (power-of-two, aligned) subtree, about
/// `n` extra hashes. Appending costs amortised `O(1)` hashes; the current root, any past root
/// ([`MerkleLog::root_at`]) and the hashes of any proof subtree cost `O(log n)`.
#[derive(Clone, PartialEq, Eq)]
pub struct MerkleLog {
    /// `levels[h][i]` is the root of the subtree of leaves `i * 2^h .. (i + 1) * 2^h`;
    /// `levels[0]` holds the leaf hashes. Never empty.
    levels: Vec<Vec<Hash32>>,
}

impl Default for MerkleLog {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MerkleLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleLog")
            .field("size", &self.size())
            .field("root", &self.root())
            .finish()
    }
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        MerkleLog {
            levels: vec![Vec::new()],
        }
    }

    /// A log holding `leaves`, in order.
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash32>>(leaves: I) -> Self {
        let mut log = Self::new();
        log.extend(leaves);
        log
    }

    /// Appends a leaf hash and returns its index.
    pub fn push(&mut self, leaf: Hash32) -> u64 {
        let index = self.leaves().len() as u64;
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let level = &self.levels[h];
            let node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(node);
            h += 1;
        }
        index
    }

    /// Appends [`leaf_hash`]`(data)` and returns its index.
    pub fn push_data(&mut self, data: &[u8]) -> u64 {
        self.push(leaf_hash(data))
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.leaves().len() as u64
    }

    /// Whether the log has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash32] {
        &self.levels[0]
    }

    /// The leaf hash at `index`, if any.
    pub fn leaf(&self, index: u64) -> Option<&Hash32> {
        usize::try_from(index).ok().and_then(|i| self.leaves().get(i))
    }

    /// The current root, `MTH` of all leaves ([`empty_root`] when empty). `O(log n)` hashes.
    pub fn root(&self) -> Hash32 {
        self.range_root(0, self.leaves().len())
    }

    /// The root the log had when it held `size` leaves. `O(log n)` hashes.
    pub fn root_at(&self, size: u64) -> Result<Hash32, MerkleError> {
        let n = self.check_size(size)?;
        Ok(self.range_root(0, n))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves (pass
    /// [`MerkleLog::size`] for the current tree). Equal to [`inclusion_proof`] on those leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, MerkleError> {
        let n = self.check_size(size)?;
        let m = check_index(index, size)?;
        let mut out = Vec::new();
        path(self, m, 0, n, &mut out);
        Ok(out)
    }

    /// The consistency proof from the tree of the first `first` leaves to the tree of the first
    /// `second` leaves. Equal to [`consistency_proof`] on the first `second` leaves.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash32>, MerkleError> {
        let n = self.check_size(second)?;
        let m = check_first(first, second)?;
        let mut out = Vec::new();
        subproof(self, m, 0, n, true, &mut out);
        Ok(out)
    }

    fn check_size(&self, size: u64) -> Result<usize, MerkleError> {
        let available = self.size();
        if size > available {
            return Err(MerkleError::SizeOutOfRange { size, available });
        }
        usize::try_from(size).map_err(|_| MerkleError::SizeOutOfRange { size, available })
    }
}

impl Extend<Hash32> for MerkleLog {
    fn extend<I: IntoIterator<Item = Hash32>>(&mut self, iter: I) {
        for leaf in iter {
            self.push(leaf);
        }
    }
}

/// Something that can give the `MTH` of a range of its leaves.
trait Subtrees {
    /// `MTH(D[start:end])`, for `start < end <= n`.
    fn range_root(&self, start: usize, end: usize) -> Hash32;
}

impl Subtrees for [Hash32] {
    fn range_root(&self, start: usize, end: usize) -> Hash32 {
        root_from_leaf_hashes(&self[start..end])
    }
}

impl Subtrees for MerkleLog {
    /// `O(log n)` for the ranges proofs use (`start` a multiple of the smallest power of two
    /// `>= end - start`); correct, but slower, for any other range.
    fn range_root(&self, start: usize, end: usize) -> Hash32 {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            return self.levels[h][start >> h];
        }
        let k = split(n);
        node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }
}

/// The largest power of two smaller than `n`, for `n >= 2`.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// `PATH(m, D[start:start+n])` of RFC 6962 §2.1.1, appended to `out`.
fn path<T: Subtrees + ?Sized>(t: &T, m: usize, start: usize, n: usize, out: &mut Vec<Hash32>) {
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(t, m, start, k, out);
        out.push(t.range_root(start + k, start + n));
    } else {
        path(t, m - k, start + k, n - k, out);
        out.push(t.range_root(start, start + k));
    }
}

/// `SUBPROOF(m, D[start:start+n], b)` of RFC 6962 §2.1.2, appended to `out`; `0 < m <= n`.
fn subproof<T: Subtrees + ?Sized>(t: &T, m: usize, start: usize, n: usize, b: bool, out: &mut Vec<Hash32>) {
    if m == n {
        if !b {
            out.push(t.range_root(start, start + n));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(t, m, start, k, b, out);
        out.push(t.range_root(start + k, start + n));
    } else {
        subproof(t, m - k, start + k, n - k, false, out);
        out.push(t.range_root(start, start + k));
    }
}

/// Checks `index < size` and converts the index for slicing.
fn check_index(index: u64, size: u64) -> Result<usize, MerkleError> {
    if size == 0 {
        return Err(MerkleError::EmptyTree);
    }
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    usize::try_from(index).map_err(|_| MerkleError::IndexOutOfRange { index, size })
}

/// Checks `0 < first <= second`.
fn check_sizes(first: u64, second: u64) -> Result<(), MerkleError> {
    if first == 0 {
        return Err(MerkleError::FirstIsZero);
    }
    if first > second {
        return Err(MerkleError::FirstExceedsSecond { first, second });
    }
    Ok(())
}

/// Checks `0 < first <= second` and converts `first` for slicing.
fn check_first(first: u64, second: u64) -> Result<usize, MerkleError> {
    check_sizes(first, second)?;
    usize::try_from(first).map_err(|_| MerkleError::FirstExceedsSecond { first, second })
}

/// Steps 4.b (the shifting) and 4.c of RFC 9162 §2.1.3.2, for `sn != 0`.
fn inclusion_step(fnode: &mut u64, snode: &mut u64) {
    if *fnode & 1 == 0 && *fnode == *snode {
        while *fnode & 1 == 0 && *fnode != 0 {
            *fnode >>= 1;
            *snode >>= 1;
        }
    }
    *fnode >>= 1;
    *snode >>= 1;
}

/// Steps 3 and 4 of RFC 9162 §2.1.4.2, for `0 < first < second`.
fn consistency_start(first: u64, second: u64) -> (u64, u64) {
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    (fnode, snode)
}

/// Steps 6.b (the shifting) and 6.c of RFC 9162 §2.1.4.2, for `sn != 0`. The same as the
/// inclusion step: only the hashing differs.
fn consistency_step(fnode: &mut u64, snode: &mut u64) {
    inclusion_step(fnode, snode);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n as u32).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// MTH written exactly as RFC 6962 §2.1 defines it.
    fn mth(d: &[Hash32]) -> Hash32 {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n);
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn split_is_largest_power_of_two_below() {
        for n in 2..1000usize {
            let k = split(n);
            assert!(k.is_power_of_two() && k < n && n <= 2 * k, "n={n} k={k}");
        }
        assert_eq!(split(usize::MAX), 1 << (usize::BITS - 1));
    }

    #[test]
    fn iterative_root_matches_recursive_definition() {
        let d = leaves(300);
        for n in 0..=d.len() {
            assert_eq!(root_from_leaf_hashes(&d[..n]), mth(&d[..n]), "n={n}");
        }
    }

    #[test]
    fn exhaustive_small_trees() {
        let d = leaves(40);
        let log = MerkleLog::from_leaf_hashes(d.iter().copied());
        for n in 1..=d.len() {
            let t = &d[..n];
            let root = mth(t);
            assert_eq!(log.root_at(n as u64), Ok(root));
            for i in 0..n as u64 {
                let p = inclusion_proof(t, i).unwrap();
                assert_eq!(p.len(), inclusion_path_len(i, n as u64).unwrap());
                assert_eq!(log.inclusion_proof(i, n as u64).unwrap(), p);
                assert_eq!(verify_inclusion(&t[i as usize], i, n as u64, &p, &root), Ok(()));
            }
            for m in 1..=n as u64 {
                let p = consistency_proof(t, m).unwrap();
                assert_eq!(p.len(), consistency_path_len(m, n as u64).unwrap());
                assert_eq!(log.consistency_proof(m, n as u64).unwrap(), p);
                let r1 = mth(&t[..m as usize]);
                assert_eq!(verify_consistency(m, n as u64, &r1, &root, &p), Ok(()));
            }
        }
    }

    #[test]
    fn errors() {
        let d = leaves(5);
        let h = Hash32::ZERO;
        assert_eq!(inclusion_proof(&[], 0), Err(MerkleError::EmptyTree));
        assert_eq!(
            inclusion_proof(&d, 5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(consistency_proof(&d, 0), Err(MerkleError::FirstIsZero));
        assert_eq!(
            consistency_proof(&d, 6),
            Err(MerkleError::FirstExceedsSecond { first: 6, second: 5 })
        );
        assert_eq!(verify_inclusion(&h, 0, 0, &[], &h), Err(MerkleError::EmptyTree));
        assert_eq!(
            verify_inclusion(&h, u64::MAX, u64::MAX, &[], &h),
            Err(MerkleError::IndexOutOfRange {
                index: u64::MAX,
                size: u64::MAX
            })
        );
        assert_eq!(verify_inclusion(&h, 0, 1, &[], &h), Ok(()));
        assert_eq!(
            verify_inclusion(&h, 0, 1, &[h], &h),
            Err(MerkleError::PathTooLong { expected: 0, got: 1 })
        );
        assert_eq!(
            verify_inclusion(&h, 0, u64::MAX, &[], &h),
            Err(MerkleError::PathTooShort { expected: 64, got: 0 })
        );
        assert_eq!(
            verify_consistency(0, 1, &h, &h, &[]),
            Err(MerkleError::FirstIsZero)
        );
        assert_eq!(
            verify_consistency(2, 1, &h, &h, &[]),
            Err(MerkleError::FirstExceedsSecond { first: 2, second: 1 })
        );
        assert_eq!(verify_consistency(3, 3, &h, &h, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &h, &h, &[h]),
            Err(MerkleError::PathTooLong { expected: 0, got: 1 })
        );
        assert_eq!(
            verify_consistency(3, 3, &h, &d[0], &[]),
            Err(MerkleError::SecondRootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 5, &h, &h, &[]),
            Err(MerkleError::PathTooShort { expected: 4, got: 0 })
        );
        assert_eq!(
            verify_consistency(4, 5, &h, &h, &[]),
            Err(MerkleError::PathTooShort { expected: 1, got: 0 })
        );
        assert_eq!(inclusion_path_len(0, u64::MAX), Ok(64));
        assert_eq!(consistency_path_len(3, (1 << 63) + 1), Ok(65));
        assert_eq!(consistency_path_len(u64::MAX - 2, u64::MAX), Ok(65));
        let log = MerkleLog::from_leaf_hashes(d.iter().copied());
        assert_eq!(
            log.root_at(6),
            Err(MerkleError::SizeOutOfRange {
                size: 6,
                available: 5
            })
        );
        assert_eq!(
            log.inclusion_proof(0, 6),
            Err(MerkleError::SizeOutOfRange {
                size: 6,
                available: 5
            })
        );
        assert_eq!(
            log.consistency_proof(1, 6),
            Err(MerkleError::SizeOutOfRange {
                size: 6,
                available: 5
            })
        );
    }

    #[test]
    fn log_basics() {
        let mut log = MerkleLog::new();
        assert!(log.is_empty());
        assert_eq!(log.root(), empty_root());
        assert_eq!(log.push_data(b"a"), 0);
        assert_eq!(log.push(leaf_hash(b"b")), 1);
        assert_eq!(log.size(), 2);
        assert_eq!(log.leaf(1), Some(&leaf_hash(b"b")));
        assert_eq!(log.leaf(2), None);
        assert_eq!(log.root(), node_hash(&leaf_hash(b"a"), &leaf_hash(b"b")));
        assert!(format!("{log:?}").contains("size: 2"));
    }
}

//! Property tests of `paychan_protocol::merkle`.
//!
//! Besides checking generated proofs and their mutations, the verifiers are compared with an
//! independent reference: a port of the verifier of `transparency-dev/merkle` (Go), which
//! decomposes a proof into an "inner" and a "border" part instead of shifting bits as RFC 9162
//! does. Both must accept and reject exactly the same inputs.

use paychan_protocol::hash::Hash32;
use paychan_protocol::merkle::*;
use proptest::prelude::*;
use proptest::sample::Index;

/// Reference verifiers, after `transparency-dev/merkle/proof/verify.go`.
mod reference {
    use super::*;

    /// `(inner, border)`: the number of hashes below and above the point where the path to
    /// leaf `index` leaves the right border of a tree of `size` leaves.
    pub fn decomp_incl_proof(index: u64, size: u64) -> (usize, usize) {
        let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
        let border = if inner >= 64 {
            0
        } else {
            (index >> inner).count_ones() as usize
        };
        (inner, border)
    }

    fn chain_inner(mut seed: Hash32, proof: &[Hash32], index: u64) -> Hash32 {
        for (i, h) in proof.iter().enumerate() {
            seed = if (index >> i) & 1 == 0 {
                node_hash(&seed, h)
            } else {
                node_hash(h, &seed)
            };
        }
        seed
    }

    fn chain_inner_right(mut seed: Hash32, proof: &[Hash32], index: u64) -> Hash32 {
        for (i, h) in proof.iter().enumerate() {
            if (index >> i) & 1 == 1 {
                seed = node_hash(h, &seed);
            }
        }
        seed
    }

    fn chain_border_right(mut seed: Hash32, proof: &[Hash32]) -> Hash32 {
        for h in proof {
            seed = node_hash(h, &seed);
        }
        seed
    }

    pub fn incl_len(index: u64, size: u64) -> Option<usize> {
        if index >= size {
            return None;
        }
        let (inner, border) = decomp_incl_proof(index, size);
        Some(inner + border)
    }

    pub fn verify_inclusion(leaf: &Hash32, index: u64, size: u64, proof: &[Hash32], root: &Hash32) -> bool {
        let Some(len) = incl_len(index, size) else {
            return false;
        };
        if proof.len() != len {
            return false;
        }
        let (inner, _) = decomp_incl_proof(index, size);
        let r = chain_inner(*leaf, &proof[..inner], index);
        chain_border_right(r, &proof[inner..]) == *root
    }

    /// `(start, inner, border, shift)` for `0 < first < second`.
    fn cons_shape(first: u64, second: u64) -> (usize, usize, usize, u32) {
        let (inner, border) = decomp_incl_proof(first - 1, second);
        let shift = first.trailing_zeros();
        let inner = inner - shift as usize;
        let start = usize::from(first != 1 << shift);
        (start, inner, border, shift)
    }

    pub fn cons_len(first: u64, second: u64) -> Option<usize> {
        if first == 0 || first > second {
            return None;
        }
        if first == second {
            return Some(0);
        }
        let (start, inner, border, _) = cons_shape(first, second);
        Some(start + inner + border)
    }

    pub fn verify_consistency(first: u64, second: u64, r1: &Hash32, r2: &Hash32, proof: &[Hash32]) -> bool {
        if first == 0 || first > second {
            return false;
        }
        if first == second {
            return proof.is_empty() && r1 == r2;
        }
        if proof.is_empty() {
            return false;
        }
        let (start, inner, border, shift) = cons_shape(first, second);
        if proof.len() != start + inner + border {
            return false;
        }
        let seed = if start == 1 { proof[0] } else { *r1 };
        let proof = &proof[start..];
        let mask = (first - 1) >> shift;
        let h1 = chain_border_right(chain_inner_right(seed, &proof[..inner], mask), &proof[inner..]);
        if h1 != *r1 {
            return false;
        }
        let h2 = chain_border_right(chain_inner(seed, &proof[..inner], mask), &proof[inner..]);
        h2 == *r2
    }
}

fn tree(n: usize, seed: u64) -> Vec<Hash32> {
    (0..n as u64)
        .map(|i| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&seed.to_le_bytes());
            b[8..].copy_from_slice(&i.to_le_bytes());
            leaf_hash(&b)
        })
        .collect()
}

fn flip(x: &Hash32, bit: usize) -> Hash32 {
    let mut y = *x;
    y.0[bit / 8] ^= 1 << (bit % 8);
    y
}

fn arb_hash() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}

/// Sizes and indices: mostly small, sometimes anywhere in `u64`, sometimes at the edges.
fn arb_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..2_100,
        2 => any::<u64>(),
        1 => prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(u64::MAX - 1), Just(1 << 63), Just((1 << 63) + 1)],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Generated inclusion proofs verify, have the predicted length, and any single-bit change
    /// or wrong index is rejected; a wrong size is accepted exactly when it gives the proof the
    /// same shape (same inner part), as the reference decomposition predicts.
    #[test]
    fn inclusion_proofs(
        n in 1usize..=1000,
        seed in any::<u64>(),
        samples in prop::collection::vec(
            (any::<Index>(), any::<Index>(), 0usize..256, 0usize..256, 1u64..=2000),
            1..=4,
        ),
    ) {
        let d = tree(n, seed);
        let size = n as u64;
        let root = root_from_leaf_hashes(&d);
        for (idx, other, bit, bit2, wrong_size) in samples {
            let i = idx.index(n) as u64;
            let leaf = d[i as usize];
            let p = inclusion_proof(&d, i).unwrap();
            prop_assert_eq!(Ok(p.len()), inclusion_path_len(i, size));
            prop_assert_eq!(Some(p.len()), reference::incl_len(i, size));
            prop_assert_eq!(verify_inclusion(&leaf, i, size, &p, &root), Ok(()));
            prop_assert!(reference::verify_inclusion(&leaf, i, size, &p, &root));

            // One bit of the leaf, of the root, of each path element.
            prop_assert!(verify_inclusion(&flip(&leaf, bit), i, size, &p, &root).is_err());
            prop_assert_eq!(
                verify_inclusion(&leaf, i, size, &p, &flip(&root, bit)),
                Err(MerkleError::RootMismatch)
            );
            for j in 0..p.len() {
                let mut bad = p.clone();
                bad[j] = flip(&bad[j], (bit + 37 * j + bit2) % 256);
                prop_assert_eq!(
                    verify_inclusion(&leaf, i, size, &bad, &root),
                    Err(MerkleError::RootMismatch)
                );
            }

            // Dropping or adding a hash.
            if !p.is_empty() {
                let short = &p[..p.len() - 1];
                prop_assert!(
                    matches!(
                        verify_inclusion(&leaf, i, size, short, &root),
                        Err(MerkleError::PathTooShort { .. })
                    ),
                    "path too short accepted"
                );
            }
            let mut long = p.clone();
            long.push(flip(&root, bit2));
            prop_assert_eq!(
                verify_inclusion(&leaf, i, size, &long, &root),
                Err(MerkleError::PathTooLong { expected: p.len(), got: p.len() + 1 })
            );

            // Wrong index: always rejected.
            let j = other.index(n + 2) as u64;
            if j != i {
                prop_assert!(verify_inclusion(&leaf, j, size, &p, &root).is_err());
            }

            // Wrong size: rejected unless the shape of the proof is the same.
            if wrong_size != size {
                let ours = verify_inclusion(&leaf, i, wrong_size, &p, &root);
                let same_shape = i < wrong_size
                    && reference::decomp_incl_proof(i, wrong_size).0
                        == reference::decomp_incl_proof(i, size).0;
                prop_assert_eq!(ours.is_ok(), same_shape);
                prop_assert_eq!(
                    ours.is_ok(),
                    reference::verify_inclusion(&leaf, i, wrong_size, &p, &root)
                );
            }
        }
    }

    /// Generated consistency proofs verify, have the predicted length, and any single-bit change
    /// or wrong first size is rejected; a wrong second size is accepted exactly when the
    /// reference verifier accepts it.
    #[test]
    fn consistency_proofs(
        n in 1usize..=1000,
        seed in any::<u64>(),
        samples in prop::collection::vec(
            (any::<Index>(), any::<Index>(), 0usize..256, 0usize..256, 1u64..=2000),
            1..=4,
        ),
    ) {
        let d = tree(n, seed);
        let second = n as u64;
        let r2 = root_from_leaf_hashes(&d);
        for (idx, other, bit, bit2, wrong_second) in samples {
            let first = idx.index(n) as u64 + 1;
            let r1 = root_from_leaf_hashes(&d[..first as usize]);
            let p = consistency_proof(&d, first).unwrap();
            prop_assert_eq!(Ok(p.len()), consistency_path_len(first, second));
            prop_assert_eq!(Some(p.len()), reference::cons_len(first, second));
            prop_assert_eq!(verify_consistency(first, second, &r1, &r2, &p), Ok(()));
            prop_assert!(reference::verify_consistency(first, second, &r1, &r2, &p));

            prop_assert!(verify_consistency(first, second, &flip(&r1, bit), &r2, &p).is_err());
            prop_assert!(verify_consistency(first, second, &r1, &flip(&r2, bit), &p).is_err());
            for j in 0..p.len() {
                let mut bad = p.clone();
                bad[j] = flip(&bad[j], (bit + 37 * j + bit2) % 256);
                prop_assert!(verify_consistency(first, second, &r1, &r2, &bad).is_err());
            }

            if !p.is_empty() {
                let short = &p[..p.len() - 1];
                prop_assert!(
                    matches!(
                        verify_consistency(first, second, &r1, &r2, short),
                        Err(MerkleError::PathTooShort { .. })
                    ),
                    "path too short accepted"
                );
            }
            let mut long = p.clone();
            long.push(flip(&r2, bit2));
            prop_assert_eq!(
                verify_consistency(first, second, &r1, &r2, &long),
                Err(MerkleError::PathTooLong { expected: p.len(), got: p.len() + 1 })
            );

            // Wrong first size (with the true first root): always rejected.
            let f2 = other.index(n + 2) as u64;
            if f2 != first {
                prop_assert!(verify_consistency(f2, second, &r1, &r2, &p).is_err());
                prop_assert!(!reference::verify_consistency(f2, second, &r1, &r2, &p));
            }

            // Wrong second size: agrees with the reference (some same-shape sizes alias).
            if wrong_second != second {
                prop_assert_eq!(
                    verify_consistency(first, wrong_second, &r1, &r2, &p).is_ok(),
                    reference::verify_consistency(first, wrong_second, &r1, &r2, &p)
                );
            }
        }
    }

}

proptest! {
    // Quadratic in the tree size (a full root at every size): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The incremental log agrees with `root_from_leaf_hashes` at every size, past roots and
    /// proofs included.
    #[test]
    fn log_agrees_with_slices(
        n in 0usize..=1000,
        seed in any::<u64>(),
        samples in prop::collection::vec((any::<Index>(), any::<Index>()), 1..=4),
    ) {
        let d = tree(n, seed);
        let mut log = MerkleLog::new();
        let mut roots = vec![log.root()];
        prop_assert_eq!(log.root(), empty_root());
        for (k, leaf) in d.iter().enumerate() {
            prop_assert_eq!(log.push(*leaf), k as u64);
            let root = log.root();
            prop_assert_eq!(root, root_from_leaf_hashes(&d[..=k]));
            roots.push(root);
        }
        prop_assert_eq!(log.size(), n as u64);
        prop_assert_eq!(log.leaves(), &d[..]);
        for (k, root) in roots.iter().enumerate() {
            prop_assert_eq!(log.root_at(k as u64), Ok(*root));
        }
        if n > 0 {
            for (a, b) in samples {
                // A past tree size, a leaf of it and an older size.
                let size = a.index(n) as u64 + 1;
                let i = b.index(size as usize) as u64;
                let sub = &d[..size as usize];
                prop_assert_eq!(log.inclusion_proof(i, size), inclusion_proof(sub, i));
                prop_assert_eq!(log.consistency_proof(i + 1, size), consistency_proof(sub, i + 1));
                prop_assert_eq!(
                    verify_inclusion(&d[i as usize], i, size, &log.inclusion_proof(i, size).unwrap(), &roots[size as usize]),
                    Ok(())
                );
            }
        }
    }

    /// Arbitrary indices, sizes, paths and roots: no panic, and the same verdict as the
    /// reference verifier.
    #[test]
    fn verifiers_never_panic(
        a in arb_u64(),
        b in arb_u64(),
        leaf in arb_hash(),
        r1 in arb_hash(),
        r2 in arb_hash(),
        path in prop::collection::vec(arb_hash(), 0..=70),
    ) {
        let ours = verify_inclusion(&leaf, a, b, &path, &r1);
        prop_assert_eq!(ours.is_ok(), reference::verify_inclusion(&leaf, a, b, &path, &r1));
        let ours = verify_consistency(a, b, &r1, &r2, &path);
        prop_assert_eq!(ours.is_ok(), reference::verify_consistency(a, b, &r1, &r2, &path));
        // Equal sizes with equal roots and an empty path is the only trivially valid case.
        prop_assert_eq!(verify_consistency(b, b, &r1, &r1, &[]).is_ok(), b != 0);

        // Path lengths agree with the reference decomposition for any sizes.
        prop_assert_eq!(inclusion_path_len(a, b).ok(), reference::incl_len(a, b));
        prop_assert_eq!(consistency_path_len(a, b).ok(), reference::cons_len(a, b));
        if let Ok(len) = inclusion_path_len(a, b) {
            prop_assert!(len <= 64);
            // A path of the right length reaches the root check.
            let p = vec![r2; len];
            prop_assert_eq!(verify_inclusion(&leaf, a, b, &p, &r1).is_ok(),
                reference::verify_inclusion(&leaf, a, b, &p, &r1));
        }
        if let Ok(len) = consistency_path_len(a, b) {
            prop_assert!(len <= 65);
            let p = vec![r2; len];
            prop_assert_eq!(verify_consistency(a, b, &r1, &r2, &p).is_ok(),
                reference::verify_consistency(a, b, &r1, &r2, &p));
        }
    }
}

/// A 100,000-leaf log: appends and roots stay cheap, and agree with the slice functions.
#[test]
fn large_log() {
    let d = tree(100_000, 7);
    let mut log = MerkleLog::new();
    for (k, leaf) in d.iter().enumerate() {
        log.push(*leaf);
        if k % 64 == 0 {
            assert_eq!(log.root_at(k as u64 + 1).unwrap(), log.root());
        }
    }
    let last = log.root();
    assert_eq!(last, root_from_leaf_hashes(&d));
    for &(i, size) in &[
        (0u64, 100_000u64),
        (99_999, 100_000),
        (12_345, 65_537),
        (65_535, 65_536),
    ] {
        let p = log.inclusion_proof(i, size).unwrap();
        assert_eq!(p, inclusion_proof(&d[..size as usize], i).unwrap());
        assert_eq!(
            verify_inclusion(&d[i as usize], i, size, &p, &log.root_at(size).unwrap()),
            Ok(())
        );
    }
    let c = log.consistency_proof(65_537, 100_000).unwrap();
    assert_eq!(
        verify_consistency(65_537, 100_000, &log.root_at(65_537).unwrap(), &last, &c),
        Ok(())
    );
}

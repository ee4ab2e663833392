//! The Certificate Transparency test vectors (CT's `merkle_tree_test`, SHA-256), checked against
//! `paychan_protocol::merkle`.

use paychan_protocol::hash::{sha256, Hash32};
use paychan_protocol::merkle::*;

/// The 8 leaf inputs, hex.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// MTH of the first `n` leaves, for n = 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, path).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (first size, second size, path).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn h(s: &str) -> Hash32 {
    Hash32::from_hex(s).expect("64 hex characters")
}

fn hs(v: &[&str]) -> Vec<Hash32> {
    v.iter().map(|s| h(s)).collect()
}

fn leaves() -> Vec<Hash32> {
    LEAF_INPUTS
        .iter()
        .map(|s| leaf_hash(&hex::decode(s).expect("hex")))
        .collect()
}

fn flip(x: &Hash32, bit: usize) -> Hash32 {
    let mut y = *x;
    y.0[bit / 8] ^= 1 << (bit % 8);
    y
}

#[test]
fn hash_prefixes() {
    assert_eq!(leaf_hash(b"abc"), sha256(&[&[0u8], b"abc"]));
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    assert_eq!(node_hash(&a, &b), sha256(&[&[1u8], &a.0, &b.0]));
    assert_eq!(empty_root(), h(ROOTS[0]));
}

#[test]
fn ct_roots() {
    let d = leaves();
    let mut log = MerkleLog::new();
    assert_eq!(log.root(), h(ROOTS[0]));
    for n in 0..=8 {
        assert_eq!(root_from_leaf_hashes(&d[..n]), h(ROOTS[n]), "size {n}");
        if n > 0 {
            log.push(d[n - 1]);
        }
        assert_eq!(log.root(), h(ROOTS[n]), "log size {n}");
    }
    for n in 0..=8u64 {
        assert_eq!(log.root_at(n), Ok(h(ROOTS[n as usize])), "log root_at {n}");
    }
}

#[test]
fn ct_inclusion_proofs() {
    let d = leaves();
    let log = MerkleLog::from_leaf_hashes(d.iter().copied());
    for &(index, size, path) in INCLUSION {
        let want = hs(path);
        let tree = &d[..size as usize];
        assert_eq!(
            inclusion_proof(tree, index).unwrap(),
            want,
            "PATH({index}, D[{size}])"
        );
        assert_eq!(log.inclusion_proof(index, size).unwrap(), want);
        assert_eq!(inclusion_path_len(index, size), Ok(want.len()));
        let root = h(ROOTS[size as usize]);
        let leaf = d[index as usize];
        assert_eq!(verify_inclusion(&leaf, index, size, &want, &root), Ok(()));

        // Every single-bit change of the leaf, the root or any path element is caught.
        for bit in 0..256 {
            assert!(verify_inclusion(&flip(&leaf, bit), index, size, &want, &root).is_err());
            assert!(verify_inclusion(&leaf, index, size, &want, &flip(&root, bit)).is_err());
            for j in 0..want.len() {
                let mut bad = want.clone();
                bad[j] = flip(&bad[j], bit);
                assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            }
        }
        // Wrong indices, truncated and extended paths.
        for other in 0..size + 2 {
            if other != index {
                assert!(verify_inclusion(&leaf, other, size, &want, &root).is_err());
            }
        }
        if !want.is_empty() {
            assert!(matches!(
                verify_inclusion(&leaf, index, size, &want[..want.len() - 1], &root),
                Err(MerkleError::PathTooShort { .. })
            ));
        }
        let mut longer = want.clone();
        longer.push(root);
        assert!(matches!(
            verify_inclusion(&leaf, index, size, &longer, &root),
            Err(MerkleError::PathTooLong { .. })
        ));
    }
}

#[test]
fn ct_consistency_proofs() {
    let d = leaves();
    let log = MerkleLog::from_leaf_hashes(d.iter().copied());
    for &(first, second, path) in CONSISTENCY {
        let want = hs(path);
        let tree = &d[..second as usize];
        assert_eq!(
            consistency_proof(tree, first).unwrap(),
            want,
            "PROOF({first}, D[{second}])"
        );
        assert_eq!(log.consistency_proof(first, second).unwrap(), want);
        assert_eq!(consistency_path_len(first, second), Ok(want.len()));
        let r1 = h(ROOTS[first as usize]);
        let r2 = h(ROOTS[second as usize]);
        assert_eq!(verify_consistency(first, second, &r1, &r2, &want), Ok(()));

        for bit in 0..256 {
            assert!(verify_consistency(first, second, &flip(&r1, bit), &r2, &want).is_err());
            assert!(verify_consistency(first, second, &r1, &flip(&r2, bit), &want).is_err());
            for j in 0..want.len() {
                let mut bad = want.clone();
                bad[j] = flip(&bad[j], bit);
                assert!(verify_consistency(first, second, &r1, &r2, &bad).is_err());
            }
        }
        let mut longer = want.clone();
        longer.push(r1);
        assert!(matches!(
            verify_consistency(first, second, &r1, &r2, &longer),
            Err(MerkleError::PathTooLong { .. })
        ));
        if !want.is_empty() {
            assert!(matches!(
                verify_consistency(first, second, &r1, &r2, &want[..want.len() - 1]),
                Err(MerkleError::PathTooShort { .. })
            ));
        }
    }
}

/// Every proof of the 8-leaf tree verifies, and the log gives the same proofs.
#[test]
fn all_proofs_of_the_ct_tree() {
    let d = leaves();
    let log = MerkleLog::from_leaf_hashes(d.iter().copied());
    for n in 1..=8u64 {
        let tree = &d[..n as usize];
        let root = h(ROOTS[n as usize]);
        for i in 0..n {
            let p = inclusion_proof(tree, i).unwrap();
            assert_eq!(log.inclusion_proof(i, n).unwrap(), p);
            assert_eq!(verify_inclusion(&d[i as usize], i, n, &p, &root), Ok(()));
        }
        for m in 1..=n {
            let p = consistency_proof(tree, m).unwrap();
            assert_eq!(log.consistency_proof(m, n).unwrap(), p);
            let r1 = h(ROOTS[m as usize]);
            assert_eq!(verify_consistency(m, n, &r1, &root, &p), Ok(()));
        }
    }
}

/// A proof does not authenticate the tree size by itself: leaf 0's path in the 3-leaf tree
/// also verifies against the same root under size 4 (same shape). The size must be signed
/// together with the root.
#[test]
fn size_is_not_authenticated_by_the_proof() {
    let d = leaves();
    let p = inclusion_proof(&d[..3], 0).unwrap();
    let root = h(ROOTS[3]);
    assert_eq!(verify_inclusion(&d[0], 0, 3, &p, &root), Ok(()));
    assert_eq!(verify_inclusion(&d[0], 0, 4, &p, &root), Ok(()));
    // A different shape is caught.
    assert!(verify_inclusion(&d[0], 0, 5, &p, &root).is_err());
}

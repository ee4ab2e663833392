//! Fuzzes the Merkle proof verifiers with untrusted proofs.
//!
//! Input: `mode (1) || a (8, LE) || b (8, LE) || leaf (32) || root (32) || path (32 each)`.
//! The fixed-width fields are re-encoded and compared with the input they were read from.
//!
//! * Every mode: `verify_inclusion(leaf, a, b, path, root)` and
//!   `verify_consistency(a, b, leaf, root, path)` on the raw values: only `Result`s, and an
//!   accepted path has exactly the length the sizes call for.
//! * Odd modes also build a real log of up to 96 leaves and check its own proofs, then check
//!   that a fuzzer-supplied path (and leaf) verifies against the real root only if it *is* the
//!   real proof: another accepted path would be a SHA-256 collision, i.e. a verifier bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_protocol::hash::Hash32;
use paychan_protocol::merkle::{
    consistency_path_len, consistency_proof, inclusion_path_len, inclusion_proof, leaf_hash,
    root_from_leaf_hashes, verify_consistency, verify_inclusion, MerkleLog,
};

fn hash(b: &[u8]) -> Hash32 {
    Hash32(b.try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1 + 8 + 8 + 32 + 32 {
        return;
    }
    let mode = data[0];
    let a = u64::from_le_bytes(data[1..9].try_into().unwrap());
    let b = u64::from_le_bytes(data[9..17].try_into().unwrap());
    let leaf = hash(&data[17..49]);
    let root = hash(&data[49..81]);
    let path: Vec<Hash32> = data[81..].chunks_exact(32).map(hash).collect();
    // Re-encode what was read.
    let mut again = vec![mode];
    again.extend_from_slice(&a.to_le_bytes());
    again.extend_from_slice(&b.to_le_bytes());
    again.extend_from_slice(&leaf.0);
    again.extend_from_slice(&root.0);
    path.iter().for_each(|h| again.extend_from_slice(&h.0));
    assert_eq!(again, &data[..81 + 32 * path.len()]);

    // Raw values.
    if verify_inclusion(&leaf, a, b, &path, &root).is_ok() {
        assert_eq!(inclusion_path_len(a, b), Ok(path.len()));
    }
    if verify_consistency(a, b, &leaf, &root, &path).is_ok() {
        assert_eq!(consistency_path_len(a, b), Ok(path.len()));
    }
    let _ = (inclusion_path_len(a, b), consistency_path_len(a, b));

    if mode & 1 == 0 {
        return;
    }
    // A real log of n leaves.
    let n = (b % 96) + 1;
    let leaves: Vec<Hash32> = (0..n).map(|i| leaf_hash(&[mode, i as u8])).collect();
    let log = MerkleLog::from_leaf_hashes(leaves.iter().copied());
    let real_root = root_from_leaf_hashes(&leaves);
    assert_eq!(log.root(), real_root);

    // Inclusion of leaf `index`.
    let index = a % n;
    let real = inclusion_proof(&leaves, index).unwrap();
    assert_eq!(log.inclusion_proof(index, n).unwrap(), real);
    let real_leaf = leaves[index as usize];
    assert_eq!(verify_inclusion(&real_leaf, index, n, &real, &real_root), Ok(()));
    let claimed_leaf = if mode & 2 == 0 { real_leaf } else { leaf };
    if verify_inclusion(&claimed_leaf, index, n, &path, &real_root).is_ok() {
        assert_eq!(path, real, "a forged inclusion path verified");
        assert_eq!(claimed_leaf, real_leaf, "a forged leaf verified");
    }

    // Consistency from the first m leaves.
    let m = (a % n) + 1;
    let real = consistency_proof(&leaves, m).unwrap();
    assert_eq!(log.consistency_proof(m, n).unwrap(), real);
    let first_root = root_from_leaf_hashes(&leaves[..m as usize]);
    assert_eq!(verify_consistency(m, n, &first_root, &real_root, &real), Ok(()));
    if verify_consistency(m, n, &first_root, &real_root, &path).is_ok() {
        assert_eq!(path, real, "a forged consistency path verified");
    }
});

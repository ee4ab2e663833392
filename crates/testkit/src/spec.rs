//! What the vector tests re-derive from PROTOCOL.md alone, written from the document and not
//! from the crates they check: the postcard writer of PROTOCOL.md section 2, RFC 6962 `MTH`, and
//! the names of the `Tx` variants in discriminant order.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::json::{b32, b64, bytes, n};

/// Variant names of `Tx`, in discriminant order (PROTOCOL.md, transactions).
pub const TX_VARIANTS: [&str; 7] = [
    "Transfer",
    "Open",
    "Deposit",
    "CoopClose",
    "UnilateralClose",
    "Update",
    "Settle",
];

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The postcard writer of PROTOCOL.md, by hand: varints, raw fixed-size arrays and bytes, and
/// fields read from a vector's JSON.
#[derive(Debug, Default)]
pub struct W(pub Vec<u8>);

impl W {
    /// One raw byte (an enum or `Option` tag below 128).
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    /// Unsigned LEB128: 7 bits at a time, least significant first, high bit = more follows.
    pub fn varint(&mut self, mut x: u64) -> &mut Self {
        loop {
            let low = (x & 0x7f) as u8;
            x >>= 7;
            if x == 0 {
                self.0.push(low);
                return self;
            }
            self.0.push(low | 0x80);
        }
    }

    /// The unsigned integer field `k` of `v`, as a varint.
    pub fn u(&mut self, v: &Value, k: &str) -> &mut Self {
        self.varint(n(v, k))
    }

    /// The 32-byte hex field `k` of `v`, raw.
    pub fn h32(&mut self, v: &Value, k: &str) -> &mut Self {
        self.raw(&b32(v, k))
    }

    /// The 64-byte hex field `k` of `v` (a signature), raw.
    pub fn sig(&mut self, v: &Value, k: &str) -> &mut Self {
        self.raw(&b64(v, k))
    }

    /// The hex field `k` of `v`, raw, whatever its length.
    pub fn hex(&mut self, v: &Value, k: &str) -> &mut Self {
        self.raw(&bytes(v, k))
    }

    /// Raw bytes.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    /// Takes the bytes written so far, leaving the writer empty.
    pub fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// RFC 6962 `MTH` over leaf hashes, written as the RFC defines it: the empty hash for no leaves,
/// the leaf for one, else `SHA-256(0x01 || MTH(left) || MTH(right))` split at the largest power
/// of two below the count.
pub fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        len => {
            let mut k = 1;
            while k * 2 < len {
                k *= 2;
            }
            sha256(&[&[1u8], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_are_leb128() {
        let mut w = W::default();
        assert_eq!(w.varint(0).done(), [0x00]);
        assert_eq!(w.varint(127).done(), [0x7f]);
        assert_eq!(w.varint(128).done(), [0x80, 0x01]);
        assert_eq!(w.varint(300).done(), [0xac, 0x02]);
        assert_eq!(
            w.varint(u64::MAX).done(),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn fields_are_written_in_call_order() {
        let v = json!({"n": 200, "h": "22".repeat(32), "s": "33".repeat(64), "x": "0a0b"});
        let got = W::default()
            .byte(1)
            .u(&v, "n")
            .h32(&v, "h")
            .sig(&v, "s")
            .hex(&v, "x")
            .done();
        let mut want = vec![1, 0xc8, 0x01];
        want.extend([0x22; 32]);
        want.extend([0x33; 64]);
        want.extend([0x0a, 0x0b]);
        assert_eq!(got, want);
    }

    /// RFC 6962 section 2.1: the empty tree, and a tree of three whose split is 2 + 1.
    #[test]
    fn mth_follows_the_rfc() {
        let empty = hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
        assert_eq!(mth(&[]).to_vec(), empty);
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        assert_eq!(mth(&[a]), a);
        let ab = sha256(&[&[1], &a, &b]);
        assert_eq!(mth(&[a, b]), ab);
        assert_eq!(mth(&[a, b, c]), sha256(&[&[1], &ab, &c]));
    }
}

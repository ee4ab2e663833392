//! Domain-separated SHA-256.
//!
//! Every hash of a protocol object is `SHA-256(tag || bytes)` where `tag` is an ASCII string
//! followed by one `0x00` byte. No tag contains `0x00`, so the set of tags is prefix-free and
//! no two object types can ever produce the same preimage. The RFC 6962 Merkle tree is the one
//! exception: it uses the RFC's own `0x00` / `0x01` prefixes (see [`crate::merkle`]).

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 output. Encoded as 32 raw bytes (no length prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash, used only where PROTOCOL.md says so.
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// The bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Hash32(out))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A domain tag: ASCII, no NUL byte. [`Tag::bytes`] appends the terminating `0x00`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag(&'static str);

impl Tag {
    const fn new(s: &'static str) -> Tag {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            assert!(b[i] != 0 && b[i] < 0x80, "tags are ASCII without NUL");
            i += 1;
        }
        Tag(s)
    }

    /// The ASCII name of the tag, without the terminator.
    pub const fn name(&self) -> &'static str {
        self.0
    }

    /// Feeds `name || 0x00` into a hasher.
    pub fn feed(&self, h: &mut Sha256) {
        h.update(self.0.as_bytes());
        h.update([0u8]);
    }

    /// `name || 0x00` as a vector, e.g. to build the exact bytes a signature covers.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend_from_slice(self.0.as_bytes());
        v.push(0);
        v
    }
}

/// The domain tags of protocol version 1. PROTOCOL.md lists them with their uses.
pub mod tags {
    use super::Tag;

    /// Chain id: hash of the genesis.
    pub const GENESIS: Tag = Tag::new("paychan/v1/genesis");
    /// Channel id: hash of a channel open's body.
    pub const CHANNEL_ID: Tag = Tag::new("paychan/v1/channel-id");
    /// Signature of both parties over a channel open.
    pub const OPEN_SIG: Tag = Tag::new("paychan/v1/sig/channel-open");
    /// Hash of a balance proof body (what the next proof's `prev` holds).
    pub const PROOF_HASH: Tag = Tag::new("paychan/v1/balance-proof");
    /// Signature of a payer over a balance proof body.
    pub const PROOF_SIG: Tag = Tag::new("paychan/v1/sig/balance-proof");
    /// Memo hash: commits to the payments a proof adds.
    pub const MEMO: Tag = Tag::new("paychan/v1/memo");
    /// Signature over a cooperative close.
    pub const COOP_CLOSE_SIG: Tag = Tag::new("paychan/v1/sig/coop-close");
    /// Signature of the sender over a transfer.
    pub const TRANSFER_SIG: Tag = Tag::new("paychan/v1/sig/transfer");
    /// Signature of the depositor over a deposit top-up.
    pub const DEPOSIT_SIG: Tag = Tag::new("paychan/v1/sig/deposit");
    /// Signature of the closing party over a unilateral close.
    pub const UNILATERAL_CLOSE_SIG: Tag = Tag::new("paychan/v1/sig/unilateral-close");
    /// Transaction id.
    pub const TX_ID: Tag = Tag::new("paychan/v1/tx-id");
    /// Block hash: hash of a block header.
    pub const BLOCK_HASH: Tag = Tag::new("paychan/v1/block-header");
    /// Sequencer signature over a block header.
    pub const BLOCK_SIG: Tag = Tag::new("paychan/v1/sig/block-header");
    /// State root leaves.
    pub const STATE: Tag = Tag::new("paychan/v1/state");
    /// Seed of the deterministic batch-verification coefficients.
    pub const BATCH_SEED: Tag = Tag::new("paychan/v1/batch-seed");
    /// Reference of a payment whose memo is a free text.
    pub const MEMO_TEXT: Tag = Tag::new("paychan/v1/memo-text");
    /// Signature of a credit grant by its creditor.
    pub const CREDIT_GRANT_SIG: Tag = Tag::new("paychan/v1/sig/credit-grant");
    /// Signature of a repayment by its payer.
    pub const REPAY_SIG: Tag = Tag::new("paychan/v1/sig/repay");

    /// Every tag, to check in tests that they are distinct.
    pub const ALL: &[Tag] = &[
        GENESIS,
        CHANNEL_ID,
        OPEN_SIG,
        PROOF_HASH,
        PROOF_SIG,
        MEMO,
        COOP_CLOSE_SIG,
        TRANSFER_SIG,
        DEPOSIT_SIG,
        UNILATERAL_CLOSE_SIG,
        TX_ID,
        BLOCK_HASH,
        BLOCK_SIG,
        STATE,
        BATCH_SEED,
        MEMO_TEXT,
        CREDIT_GRANT_SIG,
        REPAY_SIG,
    ];
}

/// `SHA-256(tag || 0x00 || bytes)`.
pub fn tagged_hash(tag: Tag, bytes: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    tag.feed(&mut h);
    h.update(bytes);
    Hash32(h.finalize().into())
}

/// Plain SHA-256, for the Merkle tree whose domain bytes are given by RFC 6962.
pub fn sha256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_distinct_and_prefix_free() {
        for (i, a) in tags::ALL.iter().enumerate() {
            for (j, b) in tags::ALL.iter().enumerate() {
                if i != j {
                    assert!(!a.bytes().starts_with(&b.bytes()), "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn tagged_hash_vector() {
        // SHA-256("paychan/v1/memo\0")
        let h = tagged_hash(tags::MEMO, b"");
        assert_eq!(h, sha256(&[b"paychan/v1/memo\0"]));
    }
}

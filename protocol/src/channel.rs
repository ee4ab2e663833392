//! Channel objects: the open transaction, balance proofs, memos, cooperative close.
//!
//! Party A is the party that proposed the open; `direction` names the payer of a proof.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::encode;
use crate::crypto::{self, Keypair, PublicKey, Signature, SignatureError};
use crate::hash::{tagged_hash, tags, Hash32};
use crate::limits::MEMO_PAYMENTS_MAX;

/// A channel id: `H("paychan/v1/channel-id" || 0x00 || open body)`. Unique per open, since each
/// open carries a fresh salt from each party, so a proof of an old channel never counts for a
/// new one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelId(pub Hash32);

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ch:{}", &self.0.to_hex()[..12])
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// Which way value moves: the payer of a proof.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// A pays B. Encoded as varint 0.
    AToB,
    /// B pays A. Encoded as varint 1.
    BToA,
}

impl Direction {
    /// The other direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::AToB => Direction::BToA,
            Direction::BToA => Direction::AToB,
        }
    }

    /// Index 0 for A to B, 1 for B to A.
    pub fn index(self) -> usize {
        match self {
            Direction::AToB => 0,
            Direction::BToA => 1,
        }
    }
}

/// The open transaction both parties sign.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChannelOpen {
    /// Chain id (genesis hash) of the ledger the channel lives on.
    pub chain_id: Hash32,
    /// The proposing party.
    pub party_a: PublicKey,
    /// The accepting party.
    pub party_b: PublicKey,
    /// What A locks.
    pub deposit_a: u64,
    /// What B locks.
    pub deposit_b: u64,
    /// A's random salt.
    pub salt_a: Hash32,
    /// B's random salt.
    pub salt_b: Hash32,
    /// Ledger time (ms) after which the open is void and may not be included.
    pub expiry_ms: u64,
}

impl ChannelOpen {
    /// The canonical body bytes (what is hashed and signed).
    pub fn body(&self) -> Vec<u8> {
        encode(self)
    }

    /// The channel id this open creates.
    pub fn channel_id(&self) -> ChannelId {
        ChannelId(tagged_hash(tags::CHANNEL_ID, &self.body()))
    }

    /// Sum of both deposits, or `None` on overflow.
    pub fn total(&self) -> Option<u64> {
        self.deposit_a.checked_add(self.deposit_b)
    }

    /// The key of the payer of `dir`.
    pub fn payer(&self, dir: Direction) -> PublicKey {
        match dir {
            Direction::AToB => self.party_a,
            Direction::BToA => self.party_b,
        }
    }

    /// One party's signature over the open.
    pub fn sign(&self, kp: &Keypair) -> Signature {
        kp.sign(tags::OPEN_SIG, &self.body())
    }
}

/// An open with both parties' signatures: the ledger transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedOpen {
    /// The open.
    pub open: ChannelOpen,
    /// A's signature.
    pub sig_a: Signature,
    /// B's signature.
    pub sig_b: Signature,
}

impl SignedOpen {
    /// Checks both signatures.
    pub fn verify(&self) -> Result<(), SignatureError> {
        let body = self.open.body();
        crypto::verify(&self.open.party_a, tags::OPEN_SIG, &body, &self.sig_a)?;
        crypto::verify(&self.open.party_b, tags::OPEN_SIG, &body, &self.sig_b)
    }
}

/// One payment inside a proof's memo: its amount and a reference (an invoice hash, a request
/// id, the hash of a memo text).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Payment {
    /// Amount paid.
    pub amount: u64,
    /// Opaque 32-byte reference.
    pub reference: Hash32,
}

impl Payment {
    /// A reference made from a free text: `H("paychan/v1/memo-text" || 0x00 || utf8)`.
    pub fn text_reference(text: &str) -> Hash32 {
        tagged_hash(tags::MEMO_TEXT, text.as_bytes())
    }
}

/// `H("paychan/v1/memo" || 0x00 || postcard(payments))`: postcard of a sequence is its varint
/// length followed by each payment (varint amount, 32 reference bytes).
pub fn memo_hash(payments: &[Payment]) -> Hash32 {
    // The hot path (every payment's proof) streams those bytes into the hash, written by hand
    // one payment at a time on the stack: serde's per-byte calls for each reference cost more
    // than the hash. A test checks them against postcard.
    let mut h = Sha256::new();
    tags::MEMO.feed(&mut h);
    let mut buf = [0u8; 10 + 32];
    let n = put_varint(&mut buf, 0, payments.len() as u64);
    h.update(&buf[..n]);
    for p in payments {
        let n = put_varint(&mut buf, 0, p.amount);
        buf[n..n + 32].copy_from_slice(&p.reference.0);
        h.update(&buf[..n + 32]);
    }
    Hash32(h.finalize().into())
}

/// Writes `v` as a postcard (LEB128) varint at `buf[at..]`; returns the end.
fn put_varint(buf: &mut [u8], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

/// Sum of the amounts of a memo, or `None` on overflow or when it has too many entries.
pub fn memo_total(payments: &[Payment]) -> Option<u64> {
    if payments.len() > MEMO_PAYMENTS_MAX {
        return None;
    }
    payments.iter().try_fold(0u64, |acc, p| acc.checked_add(p.amount))
}

/// The body of a balance proof. See PROTOCOL.md for its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BalanceProof {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
    /// Who pays: the signer is the payer of this direction.
    pub direction: Direction,
    /// Strictly increasing per direction; the first proof has seq >= 1.
    pub seq: u64,
    /// Cumulative amount the payer has paid in this direction. Never decreases.
    pub transferred: u64,
    /// Hash of the proof this one follows; the first proof links to the channel id.
    pub prev: Hash32,
    /// Commits to the payments this proof adds ([`memo_hash`]).
    pub memo_hash: Hash32,
}

/// Largest encoded proof body: 32 + 32 + 1 + 10 + 10 + 32 + 32.
pub const PROOF_BODY_BYTES_MAX: usize = 149;
const SIG_TAG_LEN: usize = tags::PROOF_SIG.name().len() + 1;

impl BalanceProof {
    /// Writes `tag || 0x00 || body` for the signature into `buf` and returns
    /// `(signed message, body)` ranges; no heap allocation.
    fn signed_message<'a>(&self, buf: &'a mut [u8; SIG_TAG_LEN + PROOF_BODY_BYTES_MAX]) -> &'a [u8] {
        buf[..SIG_TAG_LEN - 1].copy_from_slice(tags::PROOF_SIG.name().as_bytes());
        buf[SIG_TAG_LEN - 1] = 0;
        let body_len = postcard::to_slice(self, &mut buf[SIG_TAG_LEN..])
            .expect("a proof body always fits PROOF_BODY_BYTES_MAX")
            .len();
        &buf[..SIG_TAG_LEN + body_len]
    }

    /// The canonical body bytes.
    pub fn body(&self) -> Vec<u8> {
        encode(self)
    }

    /// The proof hash: `H("paychan/v1/balance-proof" || 0x00 || body)`. The next proof's
    /// `prev` holds it, so the newest proof commits to the whole history of its direction.
    pub fn hash(&self) -> Hash32 {
        let mut buf = [0u8; PROOF_BODY_BYTES_MAX];
        let body = postcard::to_slice(self, &mut buf).expect("a proof body always fits");
        tagged_hash(tags::PROOF_HASH, body)
    }

    /// Signs the proof.
    pub fn sign(self, payer: &Keypair) -> SignedProof {
        let mut buf = [0u8; SIG_TAG_LEN + PROOF_BODY_BYTES_MAX];
        let signature = payer.sign_raw(self.signed_message(&mut buf));
        SignedProof {
            proof: self,
            signature,
        }
    }

    /// The exact bytes the payer's signature covers (tag included).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut buf = [0u8; SIG_TAG_LEN + PROOF_BODY_BYTES_MAX];
        self.signed_message(&mut buf).to_vec()
    }
}

/// A balance proof with its payer's signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedProof {
    /// The body.
    pub proof: BalanceProof,
    /// The payer's signature over `"paychan/v1/sig/balance-proof" || 0x00 || body`.
    pub signature: Signature,
}

impl SignedProof {
    /// Verifies the signature under the one validity rule.
    pub fn verify(&self, payer: &PublicKey) -> Result<(), SignatureError> {
        let mut buf = [0u8; SIG_TAG_LEN + PROOF_BODY_BYTES_MAX];
        crypto::verify_raw(payer, self.proof.signed_message(&mut buf), &self.signature)
    }

    /// Queues the signature into a batch.
    pub fn queue(&self, payer: &PublicKey, batch: &mut crypto::BatchVerifier) {
        let mut buf = [0u8; SIG_TAG_LEN + PROOF_BODY_BYTES_MAX];
        batch.queue_raw(payer, self.proof.signed_message(&mut buf), &self.signature);
    }
}

/// The final balances both parties agree on to close cooperatively.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CoopClose {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
    /// A's payout.
    pub balance_a: u64,
    /// B's payout.
    pub balance_b: u64,
}

impl CoopClose {
    /// One party's signature.
    pub fn sign(&self, kp: &Keypair) -> Signature {
        kp.sign(tags::COOP_CLOSE_SIG, &encode(self))
    }
}

/// A cooperative close with both signatures: the ledger transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedCoopClose {
    /// The agreed balances.
    pub close: CoopClose,
    /// A's signature.
    pub sig_a: Signature,
    /// B's signature.
    pub sig_b: Signature,
}

impl SignedCoopClose {
    /// Checks both signatures against the channel's parties.
    pub fn verify(&self, party_a: &PublicKey, party_b: &PublicKey) -> Result<(), SignatureError> {
        let body = encode(&self.close);
        crypto::verify(party_a, tags::COOP_CLOSE_SIG, &body, &self.sig_a)?;
        crypto::verify(party_b, tags::COOP_CLOSE_SIG, &body, &self.sig_b)
    }
}

/// The unilateral-close payout rule: `payout_A = clamp(deposit_A - t_A + t_B, 0, total)`,
/// `payout_B = total - payout_A`, computed without overflow for any inputs.
pub fn settle_payouts(deposit_a: u64, deposit_b: u64, t_ab: u64, t_ba: u64) -> (u64, u64) {
    let total = deposit_a as u128 + deposit_b as u128;
    let a = deposit_a as i128 - t_ab as i128 + t_ba as i128;
    let a = a.clamp(0, total as i128) as u128;
    let b = total - a;
    // Both fit: a <= total, b <= total, and total fits u64 whenever the channel was accepted.
    (a.min(u64::MAX as u128) as u64, b.min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof() -> BalanceProof {
        BalanceProof {
            chain_id: Hash32([1; 32]),
            channel_id: ChannelId(Hash32([2; 32])),
            direction: Direction::BToA,
            seq: u64::MAX,
            transferred: u64::MAX,
            prev: Hash32([3; 32]),
            memo_hash: Hash32([4; 32]),
        }
    }

    #[test]
    fn body_bound_is_tight() {
        assert_eq!(proof().body().len(), PROOF_BODY_BYTES_MAX);
        assert_eq!(proof().hash(), tagged_hash(tags::PROOF_HASH, &proof().body()));
    }

    #[test]
    fn single_payment_memo_fast_path_matches() {
        let p = Payment {
            amount: 300,
            reference: Hash32([9; 32]),
        };
        assert_eq!(memo_hash(&[p]), tagged_hash(tags::MEMO, &encode(&vec![p])));
    }

    proptest::proptest! {
        /// The memo bytes written by hand are postcard's, for every length up to the limit and
        /// beyond it, and every amount (all varint lengths).
        #[test]
        fn memo_hash_is_the_hash_of_postcard(
            payments in proptest::collection::vec(
                (proptest::prelude::any::<u64>(), proptest::prelude::any::<[u8; 32]>(), 0u32..64),
                0..70,
            )
        ) {
            let payments: Vec<Payment> = payments
                .into_iter()
                .map(|(amount, r, shift)| Payment { amount: amount >> shift, reference: Hash32(r) })
                .collect();
            proptest::prop_assert_eq!(memo_hash(&payments), tagged_hash(tags::MEMO, &encode(&payments)));
        }
    }

    #[test]
    fn sign_verify() {
        let kp = Keypair::from_seed([5; 32]);
        let sp = proof().sign(&kp);
        assert!(sp.verify(&kp.public()).is_ok());
        let mut bad = sp;
        bad.proof.transferred -= 1;
        assert!(bad.verify(&kp.public()).is_err());
        assert_eq!(
            sp.proof.signed_bytes(),
            crypto::signed_bytes(tags::PROOF_SIG, &sp.proof.body())
        );
    }

    #[test]
    fn payouts_clamp() {
        assert_eq!(settle_payouts(10, 5, 3, 1), (8, 7));
        assert_eq!(settle_payouts(10, 5, 100, 0), (0, 15));
        assert_eq!(settle_payouts(10, 5, 0, 100), (15, 0));
        assert_eq!(settle_payouts(u64::MAX, 0, 0, u64::MAX), (u64::MAX, 0));
    }
}

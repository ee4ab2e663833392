//! Keys, signatures and the one signature validity rule.
//!
//! **The rule** (PROTOCOL.md, "Signatures"): a signature `(R, s)` by key `A` on message `M` is
//! valid iff `A` and `R` decode to curve points (non-canonical encodings accepted), `s < l`, and
//! `[8][s]B = [8]R + [8][k]A` with `k = SHA-512(R || A || M)`. This is ZIP-215, as the
//! `ed25519-zebra` crate implements it (and `ed25519-consensus`, the same rules over an older
//! curve library). Its batch check uses the same cofactored equation,
//! so single and batch verification accept exactly the same set of signatures: a batch may skip
//! work, never change the answer. Signing is plain RFC 8032 Ed25519 and interoperates with any
//! Ed25519 signer (libp2p's identity keys included).
//!
//! Every message signed here is `tag || 0x00 || body` (see [`crate::hash::Tag`]).

use core::fmt;

use ed25519_zebra as ed;
use rand_chacha::rand_core::SeedableRng;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::hash::{tags, Tag};

/// An ed25519 public key: a node's ledger account and libp2p identity. 32 raw bytes.
///
/// Any 32 bytes decode; whether they are a valid point is checked when a signature is verified,
/// so that a bad key is a rejected signature, not a decode error.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Lower-case hex of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(PublicKey(out))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An ed25519 signature `R || s`. Encoded as 64 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &self.to_hex()[..12])
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// Why a signature was not accepted. There is one answer for every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not satisfy the validity rule for that key and message.
    #[error("invalid signature")]
    Invalid,
    /// A batch failed; at least one of its signatures is invalid.
    #[error("invalid signature in batch")]
    InvalidInBatch,
}

/// A secret signing key (an RFC 8032 32-byte seed).
#[derive(Clone)]
pub struct Keypair {
    sk: ed::SigningKey,
    pk: PublicKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.pk)
    }
}

impl Keypair {
    /// A keypair from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        let sk = ed::SigningKey::from(seed);
        let pk = PublicKey(ed::VerificationKey::from(&sk).into());
        Keypair { sk, pk }
    }

    /// A fresh random keypair from the operating system's generator.
    pub fn generate() -> Keypair {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Keypair::from_seed(seed)
    }

    /// The 32-byte seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.sk.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.pk
    }

    /// Signs `tag || 0x00 || body`.
    pub fn sign(&self, tag: Tag, body: &[u8]) -> Signature {
        let mut msg = Vec::with_capacity(tag.name().len() + 1 + body.len());
        msg.extend_from_slice(tag.name().as_bytes());
        msg.push(0);
        msg.extend_from_slice(body);
        self.sign_raw(&msg)
    }

    /// Signs exactly `msg` (already tagged).
    pub fn sign_raw(&self, msg: &[u8]) -> Signature {
        Signature(self.sk.sign(msg).to_bytes())
    }
}

/// The exact bytes a signature under `tag` covers.
pub fn signed_bytes(tag: Tag, body: &[u8]) -> Vec<u8> {
    let mut msg = tag.bytes();
    msg.extend_from_slice(body);
    msg
}

/// Verifies one signature on `tag || 0x00 || body` under the validity rule.
pub fn verify(key: &PublicKey, tag: Tag, body: &[u8], sig: &Signature) -> Result<(), SignatureError> {
    verify_raw(key, &signed_bytes(tag, body), sig)
}

/// Verifies one signature on exactly `msg` under the validity rule.
pub fn verify_raw(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
    let vk = ed::VerificationKey::try_from(key.0).map_err(|_| SignatureError::Invalid)?;
    vk.verify(&ed::Signature::from(sig.0), msg)
        .map_err(|_| SignatureError::Invalid)
}

/// A batch of signatures to check together: cheaper per signature than one by one, and it
/// accepts exactly what [`verify_raw`] accepts for each item.
///
/// The random coefficients of the batch equation are drawn from a ChaCha20 stream seeded with
/// a SHA-256 of every queued item (key, signature, message), so the verifier needs no
/// randomness from outside and a forger cannot choose the coefficients without changing the
/// items they come from. (ed25519-zebra assigns them in its internal hash-map order, so the
/// coefficients, not the answer, may differ from run to run: a batch of valid signatures always
/// passes; one with an invalid signature fails except with probability about 2^-128.)
pub struct BatchVerifier {
    inner: ed::batch::Verifier,
    seed: Sha256,
    len: usize,
}

impl fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchVerifier({} items)", self.len)
    }
}

impl Default for BatchVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        let mut seed = Sha256::new();
        tags::BATCH_SEED.feed(&mut seed);
        BatchVerifier {
            inner: ed::batch::Verifier::new(),
            seed,
            len: 0,
        }
    }

    /// Queues a signature on `tag || 0x00 || body`.
    pub fn queue(&mut self, key: &PublicKey, tag: Tag, body: &[u8], sig: &Signature) {
        self.queue_raw(key, &signed_bytes(tag, body), sig)
    }

    /// Queues a signature on exactly `msg`.
    pub fn queue_raw(&mut self, key: &PublicKey, msg: &[u8], sig: &Signature) {
        self.seed.update(key.0);
        self.seed.update(sig.0);
        self.seed.update((msg.len() as u64).to_le_bytes());
        self.seed.update(msg);
        let vkb = ed::VerificationKeyBytes::from(key.0);
        self.inner.queue((vkb, ed::Signature::from(sig.0), msg));
        self.len += 1;
    }

    /// Number of queued signatures.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks every queued signature. An empty batch is valid.
    pub fn verify(self) -> Result<(), SignatureError> {
        if self.len == 0 {
            return Ok(());
        }
        let seed: [u8; 32] = self.seed.finalize().into();
        let rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        self.inner.verify(rng).map_err(|_| SignatureError::InvalidInBatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_batch() {
        let kp = Keypair::from_seed([7u8; 32]);
        let sig = kp.sign(tags::PROOF_SIG, b"hello");
        assert!(verify(&kp.public(), tags::PROOF_SIG, b"hello", &sig).is_ok());
        assert_eq!(
            verify(&kp.public(), tags::TRANSFER_SIG, b"hello", &sig),
            Err(SignatureError::Invalid),
            "a signature under one tag is not valid under another"
        );
        let mut b = BatchVerifier::new();
        b.queue(&kp.public(), tags::PROOF_SIG, b"hello", &sig);
        b.queue(&kp.public(), tags::PROOF_SIG, b"hello", &sig);
        assert!(b.verify().is_ok());
        let mut b = BatchVerifier::new();
        b.queue(&kp.public(), tags::PROOF_SIG, b"hello", &sig);
        b.queue(&kp.public(), tags::PROOF_SIG, b"hellp", &sig);
        assert_eq!(b.verify(), Err(SignatureError::InvalidInBatch));
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1 TEST 1: empty message.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let kp = Keypair::from_seed(seed.try_into().unwrap());
        assert_eq!(
            kp.public().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = kp.sign_raw(b"");
        assert_eq!(
            sig.to_hex(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}

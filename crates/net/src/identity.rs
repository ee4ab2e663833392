//! A node's ed25519 key is both its ledger account and its libp2p identity (DESIGN, "Encoding,
//! hashing, signing"). These functions map between the two views of one key.
//!
//! An ed25519 libp2p `PeerId` inlines the key: it is the identity multihash of the protobuf
//! encoding `08 01 12 20 || key` (36 bytes), so the mapping is exact in both directions.

use libp2p::identity::{self, ed25519};
use libp2p::PeerId;
use paychan_protocol::PublicKey;

/// `PeerId::to_bytes()` of an ed25519 key: identity multihash (code 0x00, length 0x24) of the
/// protobuf-encoded key (field 1 = key type Ed25519, field 2 = 32 bytes).
const ED25519_PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// The libp2p identity of a paychan seed: the same RFC 8032 key as
/// `paychan_protocol::Keypair::from_seed(seed)`.
pub fn keypair_from_seed(seed: [u8; 32]) -> identity::Keypair {
    let mut seed = seed;
    // `ed25519_from_bytes` zeroes its input; a 32-byte seed is always a valid secret key.
    identity::Keypair::ed25519_from_bytes(&mut seed).expect("any 32 bytes are an ed25519 seed")
}

/// The `PeerId` of a paychan public key, or `None` if the 32 bytes are not a valid ed25519
/// point encoding (libp2p refuses such keys; such an account can never be a peer).
pub fn peer_id_from_public_key(key: &PublicKey) -> Option<PeerId> {
    let ed = ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(PeerId::from_public_key(&identity::PublicKey::from(ed)))
}

/// The paychan public key of a `PeerId`, or `None` if the peer's identity is not an ed25519
/// key (RSA, secp256k1 or ECDSA peers have no paychan account).
pub fn public_key_from_peer_id(peer: &PeerId) -> Option<PublicKey> {
    let bytes = peer.to_bytes();
    if bytes.len() != ED25519_PEER_ID_PREFIX.len() + 32
        || bytes[..ED25519_PEER_ID_PREFIX.len()] != ED25519_PEER_ID_PREFIX
    {
        return None;
    }
    // Decode through libp2p as well, so that only what libp2p itself accepts maps back.
    let key = identity::PublicKey::try_decode_protobuf(&bytes[2..]).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    Some(PublicKey(ed.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_maps_to_the_same_key_both_ways() {
        for i in 0u8..8 {
            let seed = [i.wrapping_mul(37).wrapping_add(1); 32];
            let paychan = paychan_protocol::Keypair::from_seed(seed).public();
            let libp2p_key = keypair_from_seed(seed);
            let peer = libp2p_key.public().to_peer_id();
            assert_eq!(peer_id_from_public_key(&paychan), Some(peer));
            assert_eq!(public_key_from_peer_id(&peer), Some(paychan));
        }
    }

    #[test]
    fn non_ed25519_peer_ids_have_no_key() {
        // A random PeerId is a sha256 multihash, not an inline ed25519 key.
        assert_eq!(public_key_from_peer_id(&PeerId::random()), None);
    }
}

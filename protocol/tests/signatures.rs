//! The one signature rule (DESIGN.md, "One signature rule"; `crypto.rs`): every verification
//! path accepts exactly the same set of ed25519 signatures, and that set is ZIP-215's.
//!
//! Edge-case signatures (small-order and mixed-order points, non-canonical point encodings,
//! non-canonical scalars, the identity, the ed25519-speccheck vectors, ZIP-215's small-order
//! set) are each fed to every path:
//!
//! * `crypto::verify_raw` (single; ed25519-zebra `VerificationKey::verify`),
//! * `crypto::BatchVerifier` with the item alone (ed25519-zebra batch: another code path),
//! * the item inside a batch of valid signatures (and queued twice), which must fail exactly
//!   when the item is invalid,
//! * for proof-shaped messages: `crypto::verify` under the proof tag, `SignedProof::verify` and
//!   `SignedProof::queue` (alone and with valid proofs),
//!
//! and every answer must equal the expected one written in the case. The expected answers are
//! also recomputed by an independent reference of the ZIP-215 rule written here with
//! curve25519-dalek 4 (cofactored equation `[8][s]B = [8]R + [8][k]A`, `k = SHA-512(R_bytes ||
//! A_bytes || M)` over the bytes as given, non-canonical point encodings accepted, `s < l`), so
//! a wrong expectation fails too. Where a case is meant to separate the cofactored from the
//! cofactorless equation, the test also checks that the cofactorless equation rejects it.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use paychan_protocol::channel::{BalanceProof, ChannelId, Direction, SignedProof};
use paychan_protocol::crypto::{self, BatchVerifier, Keypair, PublicKey, Signature, SignatureError};
use paychan_protocol::hash::{tags, Hash32};
use sha2::{Digest, Sha512};

// ------------------------------------------------------------------------------------------
// Curve helpers and the reference rule
// ------------------------------------------------------------------------------------------

/// `l = 2^252 + 27742317777372353535851937790883648493`, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let v = hex::decode(s).expect("hex");
    v.try_into().expect("length")
}

/// `a < b` for little-endian 256-bit integers.
fn lt_le(a: &[u8; 32], b: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// Little-endian 256-bit addition, wrapping.
fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let t = a[i] as u16 + b[i] as u16 + carry;
        out[i] = t as u8;
        carry = t >> 8;
    }
    out
}

fn decompress(b: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*b).decompress()
}

/// `k = SHA-512(R_bytes || A_bytes || M) mod l`, over the bytes exactly as given.
fn challenge(r_bytes: &[u8], a_bytes: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(a_bytes);
    h.update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// The parts of a signature as the rule reads them, or `None` if it fails before the equation.
#[allow(non_snake_case)]
fn parts(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<(EdwardsPoint, EdwardsPoint, Scalar, Scalar)> {
    let A = decompress(pk)?;
    let r_bytes: [u8; 32] = sig[..32].try_into().unwrap();
    let s_bytes: [u8; 32] = sig[32..].try_into().unwrap();
    let R = decompress(&r_bytes)?;
    // s must be < l (checked here by plain integer comparison, not by the library).
    if !lt_le(&s_bytes, &L) {
        return None;
    }
    let s = Scalar::from_bytes_mod_order(s_bytes);
    Some((A, R, s, challenge(&r_bytes, pk, msg)))
}

/// The ZIP-215 rule, written independently of ed25519-zebra.
#[allow(non_snake_case)]
fn reference_zip215(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    match parts(pk, msg, sig) {
        Some((A, R, s, k)) => (EdwardsPoint::mul_base(&s) - R - A * k)
            .mul_by_cofactor()
            .is_identity(),
        None => false,
    }
}

/// The cofactorless equation `[s]B = R + [k]A` (with the same decoding): used only to show which
/// cases separate the two equations.
#[allow(non_snake_case)]
fn reference_cofactorless(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    match parts(pk, msg, sig) {
        Some((A, R, s, k)) => (EdwardsPoint::mul_base(&s) - R - A * k).is_identity(),
        None => false,
    }
}

/// A scalar derived from a label (a secret for the hand-made signers below).
fn scalar(label: &str) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&Sha512::digest(label.as_bytes()).into())
}

/// The 8 torsion points `[i]T8`, `i = 0..8`, for a generator `T8` of the 8-torsion.
fn torsion() -> Vec<EdwardsPoint> {
    let t8 = decompress(&unhex(
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ))
    .unwrap();
    assert!(t8.is_small_order());
    assert!(!(t8 * Scalar::from(4u64)).is_identity(), "T8 has order 8");
    let mut out = vec![EdwardsPoint::default()];
    for i in 1..8 {
        out.push(out[i - 1] + t8);
    }
    out
}

/// The order of a torsion point.
fn torsion_order(t: &EdwardsPoint) -> u32 {
    [1u32, 2, 4, 8]
        .into_iter()
        .find(|&n| (t * Scalar::from(n)).is_identity())
        .unwrap()
}

/// Canonical encodings of the 8 torsion points.
fn torsion_canonical() -> Vec<[u8; 32]> {
    torsion().iter().map(|p| p.compress().to_bytes()).collect()
}

/// Every non-canonical point encoding: canonical `y` with a sign bit that `x = 0` cannot have,
/// and `y + p < 2^255` for `y` in `0..19`, with either sign bit, when it decodes. Returns
/// `(small order, not small order)`.
fn non_canonical_encodings() -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
    let mut all = Vec::new();
    // (0, 1) and (0, -1) with the sign bit set.
    let mut id = [0u8; 32];
    id[0] = 1;
    id[31] = 0x80;
    all.push(id);
    all.push(unhex(
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ));
    for i in 0..19u8 {
        let mut b = [0xffu8; 32];
        b[0] = 0xed + i;
        b[31] = 0x7f;
        for sign in [0u8, 0x80] {
            let mut e = b;
            e[31] |= sign;
            if decompress(&e).is_some() {
                all.push(e);
            }
        }
    }
    for e in &all {
        let p = decompress(e).expect("decodes");
        assert_ne!(&p.compress().to_bytes(), e, "really non-canonical");
    }
    all.into_iter()
        .partition(|e| decompress(e).unwrap().is_small_order())
}

/// 32 bytes that are not the encoding of any curve point.
fn not_a_point() -> [u8; 32] {
    (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| decompress(b).is_none())
        .expect("some small y is not on the curve")
}

fn sig_bytes(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    out
}

// ------------------------------------------------------------------------------------------
// Cases
// ------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Case {
    name: String,
    pk: [u8; 32],
    msg: Vec<u8>,
    sig: [u8; 64],
    /// The answer under ZIP-215.
    expect: bool,
    /// `Some` when `msg` is the signed bytes of this proof body.
    proof: Option<BalanceProof>,
    /// `Some(false)`: the case must also be rejected by the cofactorless equation (it is valid
    /// only under the cofactored one); `Some(true)`: accepted by both.
    cofactorless: Option<bool>,
}

fn proof_body(n: u64) -> BalanceProof {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_le_bytes());
    BalanceProof {
        chain_id: Hash32([0xc1; 32]),
        channel_id: ChannelId(Hash32(h)),
        direction: if n.is_multiple_of(2) {
            Direction::AToB
        } else {
            Direction::BToA
        },
        seq: n + 1,
        transferred: n * 1000,
        prev: Hash32([0x5e; 32]),
        memo_hash: Hash32([0x3e; 32]),
    }
}

/// Builds cases, numbering the proof bodies so that every proof-shaped case signs a different
/// message.
#[derive(Default)]
struct Cases {
    v: Vec<Case>,
    next_proof: u64,
}

impl Cases {
    fn fresh_proof(&mut self) -> BalanceProof {
        self.next_proof += 1;
        proof_body(self.next_proof)
    }

    fn raw(&mut self, name: impl Into<String>, pk: [u8; 32], msg: &[u8], sig: [u8; 64], expect: bool) {
        self.v.push(Case {
            name: name.into(),
            pk,
            msg: msg.to_vec(),
            sig,
            expect,
            proof: None,
            cofactorless: None,
        });
    }

    /// A case on a fresh proof body whose signature does not depend on the message.
    fn on_proof(&mut self, name: impl Into<String>, pk: [u8; 32], sig: [u8; 64], expect: bool) {
        let p = self.fresh_proof();
        self.v.push(Case {
            name: name.into(),
            pk,
            msg: p.signed_bytes(),
            sig,
            expect,
            proof: Some(p),
            cofactorless: None,
        });
    }

    /// A case on a fresh proof body, signed by `sign(msg)`.
    fn signed_proof(
        &mut self,
        name: impl Into<String>,
        pk: [u8; 32],
        expect: bool,
        sign: impl Fn(&[u8]) -> [u8; 64],
    ) -> &mut Case {
        let p = self.fresh_proof();
        let msg = p.signed_bytes();
        let sig = sign(&msg);
        self.v.push(Case {
            name: name.into(),
            pk,
            msg,
            sig,
            expect,
            proof: Some(p),
            cofactorless: None,
        });
        self.v.last_mut().unwrap()
    }

    /// Like [`Cases::signed_proof`], but tries proof bodies until the signature is rejected by
    /// the cofactorless equation, so that the case is valid only under the cofactored one.
    fn cofactored_only(
        &mut self,
        name: impl Into<String>,
        pk: [u8; 32],
        sign: impl Fn(&[u8]) -> [u8; 64],
    ) -> Case {
        let name = name.into();
        for _ in 0..64 {
            let p = self.fresh_proof();
            let msg = p.signed_bytes();
            let sig = sign(&msg);
            if !reference_cofactorless(&pk, &msg, &sig) {
                let c = Case {
                    name,
                    pk,
                    msg,
                    sig,
                    expect: true,
                    proof: Some(p),
                    cofactorless: Some(false),
                };
                self.v.push(c.clone());
                return c;
            }
        }
        panic!("{name}: no message gave a cofactored-only signature");
    }
}

/// `(R_enc, r + k a)`: a signature by the secret `a` under the key encoding `a_enc` with nonce
/// `r` and the nonce point encoding `r_enc`. Whatever torsion `A` and `R` carry, it satisfies
/// the cofactored equation.
fn custom_sign(a: Scalar, a_enc: [u8; 32], r: Scalar, r_enc: [u8; 32], msg: &[u8]) -> [u8; 64] {
    let k = challenge(&r_enc, &a_enc, msg);
    sig_bytes(&r_enc, &(r + k * a).to_bytes())
}

fn all_cases() -> Vec<Case> {
    let mut c = Cases::default();
    let tors = torsion();
    let tors_enc = torsion_canonical();
    let (nc_small, nc_large) = non_canonical_encodings();
    assert_eq!(
        nc_small.len(),
        6,
        "six non-canonical encodings of small-order points"
    );
    assert_eq!(
        nc_large.len(),
        20,
        "ten y + p (2 <= y < 19) on the curve, each with both sign bits"
    );
    // The 14 encodings of small-order points: 8 canonical, 6 not.
    let small_enc: Vec<[u8; 32]> = tors_enc.iter().chain(nc_small.iter()).copied().collect();
    let identity = tors_enc[0];
    let zero = [0u8; 32];
    let mut one = [0u8; 32];
    one[0] = 1;

    // --- Ordinary signatures and single-bit changes ----------------------------------------
    let kp = Keypair::from_seed([0x11; 32]);
    let other = Keypair::from_seed([0x22; 32]);
    {
        let p = c.fresh_proof();
        let sp = p.sign(&kp);
        c.v.push(Case {
            name: "ordinary valid proof signature".into(),
            pk: kp.public().0,
            msg: p.signed_bytes(),
            sig: sp.signature.0,
            expect: true,
            proof: Some(p),
            cofactorless: Some(true),
        });
        let flips: [(&str, usize); 4] = [("R", 0), ("R high byte", 31), ("s", 32), ("s high byte", 63)];
        for (what, at) in flips {
            let mut sig = sp.signature.0;
            sig[at] ^= 1;
            c.v.push(Case {
                name: format!("ordinary signature with a bit of {what} flipped"),
                pk: kp.public().0,
                msg: p.signed_bytes(),
                sig,
                expect: false,
                proof: Some(p),
                cofactorless: None,
            });
        }
        let mut pk = kp.public().0;
        pk[0] ^= 1;
        c.v.push(Case {
            name: "ordinary signature, a bit of the key flipped".into(),
            pk,
            msg: p.signed_bytes(),
            sig: sp.signature.0,
            expect: false,
            proof: Some(p),
            cofactorless: None,
        });
        let mut p2 = p;
        p2.transferred ^= 1;
        c.v.push(Case {
            name: "ordinary signature, a bit of the message flipped".into(),
            pk: kp.public().0,
            msg: p2.signed_bytes(),
            sig: sp.signature.0,
            expect: false,
            proof: Some(p2),
            cofactorless: None,
        });
        c.v.push(Case {
            name: "ordinary signature, checked under another key".into(),
            pk: other.public().0,
            msg: p.signed_bytes(),
            sig: sp.signature.0,
            expect: false,
            proof: Some(p),
            cofactorless: None,
        });
    }
    // RFC 8032 §7.1 TEST 1 (empty message) and TEST 2 (one byte).
    c.raw(
        "RFC 8032 test 1",
        unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        b"",
        unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        true,
    );
    c.raw(
        "RFC 8032 test 2",
        unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
        &[0x72],
        unhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        true,
    );

    // --- The ed25519-speccheck vectors ("Taming the many EdDSAs", Table 6c) -----------------
    // Expected under ZIP-215: 0-5 pass (the cofactored equation; small and mixed orders are
    // allowed), 6-7 fail (s >= l), 8 fails and 9 passes (non-canonical small R: ZIP-215 hashes R
    // as given, not reduced; A has a large component, so k matters), 10 and 11 pass
    // (non-canonical small A: [8][k]A = 0 whatever k is).
    let speccheck: [(&str, &str, &str, bool); 12] = [
        ("8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000", true),
        ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", true),
        ("aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e", true),
        ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009", true),
        ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09", true),
        ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405", true),
        ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514", false),
        ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22", false),
        ("9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f", false),
        ("9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908", true),
        ("e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", true),
        ("39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", true),
    ];
    for (i, (m, pk, sig, expect)) in speccheck.iter().enumerate() {
        c.raw(
            format!("speccheck {i}"),
            unhex(pk),
            &hex::decode(m).unwrap(),
            unhex(sig),
            *expect,
        );
    }
    // Vector 4 is the cofactored-only one: the cofactorless equation rejects it.
    let v4 = c.v.iter_mut().find(|x| x.name == "speccheck 4").unwrap();
    v4.cofactorless = Some(false);

    // --- ZIP-215's small-order set: every (A, R) of the 14 small-order encodings, s = 0 -----
    // [8][0]B = 0 = [8]R + [8][k]A for any message: all 196 are valid, on raw "Zcash" (as in
    // ZIP 215) and on a proof body.
    for (i, a) in small_enc.iter().enumerate() {
        for (j, r) in small_enc.iter().enumerate() {
            let sig = sig_bytes(r, &zero);
            c.raw(
                format!("ZIP-215 small-order A#{i} R#{j} s=0 on \"Zcash\""),
                *a,
                b"Zcash",
                sig,
                true,
            );
            c.on_proof(format!("small-order A#{i} R#{j} s=0 on a proof"), *a, sig, true);
        }
    }
    // Small A, small R and s != 0: [8][s]B has a large-order part that nothing cancels.
    for (i, a) in small_enc.iter().enumerate().step_by(3) {
        let r = small_enc[(i + 5) % small_enc.len()];
        c.on_proof(
            format!("small-order A#{i}, small R, s=1"),
            *a,
            sig_bytes(&r, &one),
            false,
        );
        c.on_proof(
            format!("small-order A#{i}, small R, s=l (non-canonical zero)"),
            *a,
            sig_bytes(&r, &L),
            false,
        );
        let two_l = add_le(&L, &L);
        c.on_proof(
            format!("small-order A#{i}, small R, s=2l"),
            *a,
            sig_bytes(&r, &two_l),
            false,
        );
        let mut high = zero;
        high[31] = 0x80;
        c.on_proof(
            format!("small-order A#{i}, small R, s=2^255 (only the high bit)"),
            *a,
            sig_bytes(&r, &high),
            false,
        );
    }

    // --- Identity combinations -------------------------------------------------------------
    let x = scalar("identity-nonce");
    let xb = EdwardsPoint::mul_base(&x).compress().to_bytes();
    c.on_proof(
        "A=identity, R=[x]B, s=x (any message)",
        identity,
        sig_bytes(&xb, &x.to_bytes()),
        true,
    );
    c.on_proof(
        "A=identity, R=identity, s=1",
        identity,
        sig_bytes(&identity, &one),
        false,
    );
    let l_minus_1 = (Scalar::ZERO - Scalar::ONE).to_bytes();
    let minus_b = (-B).compress().to_bytes();
    c.on_proof(
        "A=identity, R=-B, s=l-1 (largest canonical s)",
        identity,
        sig_bytes(&minus_b, &l_minus_1),
        true,
    );
    c.on_proof(
        "A=identity, R=-B, s=2^256-1",
        identity,
        sig_bytes(&minus_b, &[0xff; 32]),
        false,
    );
    c.on_proof(
        "honest A, R=identity, s=0",
        kp.public().0,
        sig_bytes(&identity, &zero),
        false,
    );
    c.on_proof("all-zero signature, honest A", kp.public().0, [0u8; 64], false);
    c.on_proof(
        "all-zero key (an order-4 point) and all-zero signature",
        zero,
        [0u8; 64],
        true,
    );

    // --- An honest key with a small-order R: s = k a ---------------------------------------
    // [8][s]B = [8][k a]B = [8][k]A and [8]R = 0. Cofactorless: R + [k]A = [s]B + R, so it holds
    // only for R = identity.
    let a = scalar("honest-key");
    let a_enc = EdwardsPoint::mul_base(&a).compress().to_bytes();
    for (j, r_enc) in small_enc.iter().enumerate() {
        let r_is_identity = decompress(r_enc).unwrap().is_identity();
        let case = c.signed_proof(format!("honest A, small-order R#{j}, s=k*a"), a_enc, true, |m| {
            custom_sign(a, a_enc, Scalar::ZERO, *r_enc, m)
        });
        case.cofactorless = Some(r_is_identity);
    }
    c.signed_proof("honest A, small-order R, s=k*a+1", a_enc, false, |m| {
        let mut s = custom_sign(a, a_enc, Scalar::ZERO, tors_enc[3], m);
        s[32] ^= 1;
        s
    });

    // --- A small-order A with an honest R: s = r --------------------------------------------
    let r = scalar("honest-nonce");
    let r_enc = EdwardsPoint::mul_base(&r).compress().to_bytes();
    for (i, a_small) in small_enc.iter().enumerate() {
        c.on_proof(
            format!("small-order A#{i}, R=[r]B, s=r"),
            *a_small,
            sig_bytes(&r_enc, &r.to_bytes()),
            true,
        );
    }

    // --- Mixed-order points: a prime-order part plus a torsion part --------------------------
    // A = [a]B + T and/or R = [r]B + T'; s = r + k a satisfies [8][s]B = [8]R + [8][k]A. The
    // message is chosen so that the torsion does not cancel: valid only under the cofactored
    // equation.
    let mut mixed_cases = Vec::new();
    for (i, t) in tors.iter().enumerate().skip(1) {
        let ord = torsion_order(t);
        let a_mixed = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
        let r_mixed = (EdwardsPoint::mul_base(&r) + t).compress().to_bytes();
        mixed_cases.push(c.cofactored_only(
            format!("mixed-order A (torsion of order {ord}, T#{i}), R=[r]B"),
            a_mixed,
            |m| custom_sign(a, a_mixed, r, r_enc, m),
        ));
        mixed_cases.push(c.cofactored_only(
            format!("honest A, mixed-order R (torsion of order {ord}, T#{i})"),
            a_enc,
            |m| custom_sign(a, a_enc, r, r_mixed, m),
        ));
        let t2 = tors[(i * 3) % 8];
        let r_mixed2 = (EdwardsPoint::mul_base(&r) + t2).compress().to_bytes();
        mixed_cases.push(c.cofactored_only(
            format!("mixed-order A (T#{i}) and mixed-order R (T#{})", (i * 3) % 8),
            a_mixed,
            |m| custom_sign(a, a_mixed, r, r_mixed2, m),
        ));
        // Mixed A with a small-order R: s = 0 fails (nothing cancels [8][k a]B); s = k a holds.
        c.on_proof(
            format!("mixed-order A (T#{i}), small-order R, s=0"),
            a_mixed,
            sig_bytes(&tors_enc[i], &zero),
            false,
        );
        c.signed_proof(
            format!("mixed-order A (T#{i}), small-order R, s=k*a"),
            a_mixed,
            true,
            |m| custom_sign(a, a_mixed, Scalar::ZERO, tors_enc[(i + 1) % 8], m),
        );
    }
    // The same signatures made invalid: s + 1, s + l (non-canonical s that reduces to the valid
    // one), s with the high bit set, a flipped message.
    for m in &mixed_cases {
        let s: [u8; 32] = m.sig[32..].try_into().unwrap();
        let r: [u8; 32] = m.sig[..32].try_into().unwrap();
        let mut s1 = s;
        s1[0] ^= 1;
        let mut high = s;
        high[31] |= 0x80;
        let variants: [(&str, [u8; 32]); 3] = [("s xor 1", s1), ("s+l", add_le(&s, &L)), ("s+2^255", high)];
        for (what, s_bad) in variants {
            c.v.push(Case {
                name: format!("{} with {what}", m.name),
                pk: m.pk,
                msg: m.msg.clone(),
                sig: sig_bytes(&r, &s_bad),
                expect: false,
                proof: m.proof,
                cofactorless: None,
            });
        }
        let mut p = m.proof.unwrap();
        p.seq ^= 1 << 40;
        c.v.push(Case {
            name: format!("{} on another message", m.name),
            pk: m.pk,
            msg: p.signed_bytes(),
            sig: m.sig,
            expect: false,
            proof: Some(p),
            cofactorless: None,
        });
    }

    // --- Scalars on an ordinary signature ----------------------------------------------------
    {
        let p = c.fresh_proof();
        let sp = p.sign(&kp);
        let r: [u8; 32] = sp.signature.0[..32].try_into().unwrap();
        let s: [u8; 32] = sp.signature.0[32..].try_into().unwrap();
        let mut bit253 = s;
        bit253[31] |= 0x20;
        let mut bit255 = s;
        bit255[31] |= 0x80;
        let variants: [(&str, [u8; 32]); 5] = [
            ("s+l (reduces to the valid s)", add_le(&s, &L)),
            ("s+2l", add_le(&s, &add_le(&L, &L))),
            ("s with bit 253 set", bit253),
            ("s with bit 255 set", bit255),
            ("s=0", zero),
        ];
        for (what, s_bad) in variants {
            c.v.push(Case {
                name: format!("ordinary signature, {what}"),
                pk: kp.public().0,
                msg: p.signed_bytes(),
                sig: sig_bytes(&r, &s_bad),
                expect: false,
                proof: Some(p),
                cofactorless: None,
            });
        }
    }

    // --- Non-canonical encodings of points that are not of small order ----------------------
    // They decode (ZIP-215 accepts the encodings), but nobody knows their discrete logarithm,
    // so no signature can satisfy the equation: all rejected.
    for (i, e) in nc_large.iter().enumerate() {
        c.on_proof(
            format!("non-canonical large-order A#{i}, R=[r]B, s=r"),
            *e,
            sig_bytes(&r_enc, &r.to_bytes()),
            false,
        );
        c.signed_proof(
            format!("honest A, non-canonical large-order R#{i}, s=k*a"),
            a_enc,
            false,
            |m| custom_sign(a, a_enc, Scalar::ZERO, *e, m),
        );
    }
    // Non-canonical small-order R under an honest key: valid (R is hashed as given).
    // (Covered above: "honest A, small-order R#8..#13".)

    // --- Bytes that are not a point ------------------------------------------------------------
    let bad = not_a_point();
    c.on_proof(
        "A not on the curve, R=identity, s=0",
        bad,
        sig_bytes(&identity, &zero),
        false,
    );
    c.signed_proof("honest A, R not on the curve", a_enc, false, |m| {
        custom_sign(a, a_enc, Scalar::ZERO, bad, m)
    });
    let mut bad_hi = bad;
    bad_hi[31] |= 0x80;
    c.on_proof(
        "A not on the curve (sign bit set), R=identity, s=0",
        bad_hi,
        sig_bytes(&identity, &zero),
        false,
    );

    c.v
}

// ------------------------------------------------------------------------------------------
// Paths
// ------------------------------------------------------------------------------------------

/// Valid proof signatures by ordinary keys, to surround an item in a batch.
fn companions() -> Vec<(PublicKey, SignedProof)> {
    (0..3u8)
        .map(|i| {
            let kp = Keypair::from_seed([0x70 + i; 32]);
            let sp = proof_body(1_000_000 + i as u64).sign(&kp);
            (kp.public(), sp)
        })
        .collect()
}

/// Every path's answer for one case, by name.
fn answers(case: &Case, comp: &[(PublicKey, SignedProof)]) -> Vec<(&'static str, bool)> {
    let pk = PublicKey(case.pk);
    let sig = Signature(case.sig);
    let mut out = Vec::new();

    out.push((
        "reference ZIP-215",
        reference_zip215(&case.pk, &case.msg, &case.sig),
    ));

    let single = crypto::verify_raw(&pk, &case.msg, &sig);
    assert!(
        matches!(single, Ok(()) | Err(SignatureError::Invalid)),
        "single: {single:?}"
    );
    out.push(("verify_raw", single.is_ok()));

    let mut b = BatchVerifier::new();
    b.queue_raw(&pk, &case.msg, &sig);
    let alone = b.verify();
    assert!(
        matches!(alone, Ok(()) | Err(SignatureError::InvalidInBatch)),
        "batch: {alone:?}"
    );
    out.push(("batch alone", alone.is_ok()));

    let mut b = BatchVerifier::new();
    let (k0, p0) = &comp[0];
    p0.queue(k0, &mut b);
    b.queue_raw(&pk, &case.msg, &sig);
    for (k, p) in &comp[1..] {
        p.queue(k, &mut b);
    }
    assert_eq!(b.len(), comp.len() + 1);
    out.push(("batch with valid signatures", b.verify().is_ok()));

    let mut b = BatchVerifier::new();
    b.queue_raw(&pk, &case.msg, &sig);
    b.queue_raw(&pk, &case.msg, &sig);
    b.queue_raw(k0, &p0.proof.signed_bytes(), &p0.signature);
    out.push(("batch, item queued twice", b.verify().is_ok()));

    if let Some(p) = case.proof {
        assert_eq!(p.signed_bytes(), case.msg, "{}: proof-shaped message", case.name);
        let sp = SignedProof {
            proof: p,
            signature: sig,
        };
        out.push((
            "crypto::verify (proof tag)",
            crypto::verify(&pk, tags::PROOF_SIG, &p.body(), &sig).is_ok(),
        ));
        out.push(("SignedProof::verify", sp.verify(&pk).is_ok()));
        let mut b = BatchVerifier::new();
        sp.queue(&pk, &mut b);
        out.push(("SignedProof::queue alone", b.verify().is_ok()));
        let mut b = BatchVerifier::new();
        for (k, p) in comp {
            p.queue(k, &mut b);
        }
        sp.queue(&pk, &mut b);
        out.push(("SignedProof::queue with valid proofs", b.verify().is_ok()));
    }
    out
}

#[test]
fn companions_are_valid_alone_and_together() {
    let comp = companions();
    let mut b = BatchVerifier::new();
    for (k, p) in &comp {
        assert_eq!(p.verify(k), Ok(()));
        p.queue(k, &mut b);
    }
    assert_eq!(b.verify(), Ok(()));
    assert_eq!(BatchVerifier::new().verify(), Ok(()), "an empty batch is valid");
}

#[test]
fn every_path_gives_the_zip215_answer() {
    let cases = all_cases();
    let comp = companions();
    let mut failures = Vec::new();
    let (mut valid, mut invalid, mut proof_shaped) = (0, 0, 0);
    for case in &cases {
        if case.expect {
            valid += 1;
        } else {
            invalid += 1;
        }
        proof_shaped += usize::from(case.proof.is_some());
        for (path, got) in answers(case, &comp) {
            if got != case.expect {
                failures.push(format!(
                    "{}: {path} says {got}, expected {} (pk {}, sig {})",
                    case.name,
                    case.expect,
                    hex::encode(case.pk),
                    hex::encode(case.sig)
                ));
            }
        }
        if let Some(cl) = case.cofactorless {
            let got = reference_cofactorless(&case.pk, &case.msg, &case.sig);
            if got != cl {
                failures.push(format!(
                    "{}: cofactorless equation says {got}, expected {cl}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The set is what it claims to be.
    assert!(cases.len() > 500, "{} cases", cases.len());
    assert!(
        valid > 400 && invalid > 100 && proof_shaped > 300,
        "{valid} valid, {invalid} invalid, {proof_shaped} on proofs"
    );
    let cofactored_only = cases.iter().filter(|c| c.cofactorless == Some(false)).count();
    assert!(cofactored_only >= 30, "{cofactored_only} cofactored-only cases");
}

/// One batch with every valid edge case (many keys, repeated keys, small, mixed and
/// non-canonical points) passes; adding any single invalid case makes it fail.
#[test]
fn one_batch_of_all_valid_cases_and_each_invalid_one() {
    let cases = all_cases();
    let valid: Vec<&Case> = cases.iter().filter(|c| c.expect).collect();
    let queue_valid = |b: &mut BatchVerifier| {
        for c in &valid {
            b.queue_raw(&PublicKey(c.pk), &c.msg, &Signature(c.sig));
        }
    };
    let mut b = BatchVerifier::new();
    queue_valid(&mut b);
    assert_eq!(b.verify(), Ok(()), "{} valid cases in one batch", valid.len());

    // Each invalid case, inside a batch of a slice of the valid ones (kept small for speed).
    let some_valid: Vec<&&Case> = valid.iter().step_by(7).collect();
    for bad in cases.iter().filter(|c| !c.expect) {
        let mut b = BatchVerifier::new();
        for c in &some_valid {
            b.queue_raw(&PublicKey(c.pk), &c.msg, &Signature(c.sig));
        }
        b.queue_raw(&PublicKey(bad.pk), &bad.msg, &Signature(bad.sig));
        assert_eq!(b.verify(), Err(SignatureError::InvalidInBatch), "{}", bad.name);
    }
}

/// The table of cases and answers, shown with `cargo test --test signatures -- --nocapture`;
/// every row must agree.
#[test]
fn table_of_cases() {
    let comp = companions();
    for case in all_cases() {
        let answers = answers(&case, &comp);
        let agree = answers.iter().all(|(_, a)| *a == case.expect);
        println!(
            "{:<5} {:<5} {:>2} paths {:<70}",
            case.expect,
            if agree { "agree" } else { "DIFFER" },
            answers.len(),
            case.name
        );
        assert!(agree, "{}: the verification paths disagree", case.name);
    }
}

//! Every decoder of untrusted bytes, under proptest.
//!
//! * Arbitrary bytes: no panic, only a `Result`; whatever decodes re-encodes to exactly the
//!   input and passes its limits.
//! * Round trips: arbitrary valid values (random proofs, transactions, blocks, ...) encode and
//!   decode to the same value.
//! * Mutations of valid encodings (a flipped byte, a truncation, an extra byte, an inserted or
//!   deleted byte, an over-long varint): either rejected with a typed [`DecodeError`], or decoded
//!   to a value whose canonical encoding is the mutated input itself. Never accepted
//!   non-canonically.
//! * The structural limits of `wire.rs` at their boundaries.
//!
//! The long-running counterpart is the cargo-fuzz project in `fuzz/` at the repository root.

use std::fmt::Debug;

use paychan_protocol::channel::{
    BalanceProof, ChannelId, ChannelOpen, CoopClose, Direction, Payment, SignedCoopClose, SignedOpen,
    SignedProof,
};
use paychan_protocol::codec::{self, DecodeError};
use paychan_protocol::crypto::{Keypair, PublicKey, Signature};
use paychan_protocol::hash::Hash32;
use paychan_protocol::ledger::{
    Block, BlockHeader, Checkpoint, Cosignature, Deposit, Genesis, Settle, SignedCheckpoint, Transfer, Tx,
    UnilateralClose, Update,
};
use paychan_protocol::limits::*;
use paychan_protocol::wire::{
    self, ChannelMsg, Envelope, ErrorCode, GossipMsg, LedgerRequest, LedgerResponse, PayItem, SplitView,
    SubmitStatus, Wire, BLOCKS_PER_RESPONSE_MAX,
};
use proptest::prelude::*;
use proptest::sample::Index;

const CASES: u32 = 256;

// ------------------------------------------------------------------------------------------
// Checks shared by every decoder
// ------------------------------------------------------------------------------------------

/// Decodes untrusted bytes as `T`; whatever is accepted must re-encode to exactly the input.
fn check_wire<T: Wire + PartialEq + Debug>(bytes: &[u8]) -> Result<T, DecodeError> {
    let r = T::from_bytes(bytes);
    match &r {
        Ok(v) => {
            assert_eq!(v.to_bytes(), bytes, "accepted non-canonically: {v:?}");
            assert_eq!(v.check_limits(), Ok(()));
        }
        Err(e) => {
            // A typed error that can be shown.
            let _ = e.to_string();
            if let DecodeError::TooLarge { len, max } = e {
                assert!(*len > *max && *len == bytes.len() && *max == T::BYTES_MAX);
            }
        }
    }
    r
}

fn check_signed_proof(bytes: &[u8]) -> Result<SignedProof, DecodeError> {
    let r = codec::decode::<SignedProof>(bytes, SIGNED_PROOF_BYTES_MAX);
    if let Ok(v) = &r {
        assert_eq!(codec::encode(v), bytes);
    }
    r
}

fn check_frame(buf: &[u8], max: usize) {
    match wire::parse_frame(buf, max) {
        Ok(Some((consumed, payload))) => {
            assert_eq!(consumed, 4 + payload.len());
            assert!(consumed <= buf.len() && payload.len() <= max);
            assert_eq!(payload, &buf[4..consumed]);
            let mut again = Vec::new();
            if payload.len() <= FRAME_BYTES_MAX {
                wire::write_frame(payload, &mut again);
                assert_eq!(again, &buf[..consumed]);
            }
        }
        Ok(None) => {
            if buf.len() >= 4 {
                let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                assert!(len <= max && buf.len() < 4 + len);
            }
        }
        Err(wire::FrameError::TooLarge { len, max: m }) => {
            assert_eq!(m, max);
            assert!(len > max);
            assert_eq!(len, u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize);
        }
    }
}

/// All decoders on one input.
fn decode_everything(bytes: &[u8]) {
    let _ = check_wire::<Envelope>(bytes);
    let _ = check_wire::<Tx>(bytes);
    let _ = check_wire::<Block>(bytes);
    let _ = check_wire::<SignedCheckpoint>(bytes);
    let _ = check_wire::<Genesis>(bytes);
    let _ = check_wire::<LedgerRequest>(bytes);
    let _ = check_wire::<LedgerResponse>(bytes);
    let _ = check_wire::<GossipMsg>(bytes);
    let _ = check_signed_proof(bytes);
    check_frame(bytes, FRAME_BYTES_MAX);
}

// ------------------------------------------------------------------------------------------
// Mutations
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Extend(u8),
    Insert(Index, u8),
    Delete(Index),
    /// Rewrites the byte `b < 0x80` at the position as `b | 0x80, 0x00`: an over-long varint
    /// when that byte ends a varint.
    Overlong(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<Index>().prop_map(Mutation::Truncate),
        any::<u8>().prop_map(Mutation::Extend),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Overlong),
    ]
}

/// Applies a mutation; `None` when it does not apply (e.g. no byte `< 0x80` to lengthen).
fn mutate(bytes: &[u8], m: &Mutation) -> Option<Vec<u8>> {
    let mut v = bytes.to_vec();
    match m {
        Mutation::Flip(i, x) => {
            let i = i.index(v.len());
            v[i] ^= x;
        }
        Mutation::Truncate(i) => v.truncate(i.index(v.len())),
        Mutation::Extend(b) => v.push(*b),
        Mutation::Insert(i, b) => v.insert(i.index(v.len() + 1), *b),
        Mutation::Delete(i) => {
            v.remove(i.index(v.len()));
        }
        Mutation::Overlong(i) => {
            let small: Vec<usize> = (0..v.len()).filter(|&j| v[j] < 0x80).collect();
            if small.is_empty() {
                return None;
            }
            let j = small[i.index(small.len())];
            v[j] |= 0x80;
            v.insert(j + 1, 0);
        }
    }
    Some(v)
}

/// The round trip and the mutation property for one valid value, and an over-long varint at
/// `varint_at` (the offset of a varint field or enum discriminant), which must be rejected with
/// `NonCanonical` (or `Malformed` when the lengthened varint no longer fits its type).
fn check_value<T: Wire + PartialEq + Debug>(value: &T, m: &Mutation, varint_at: usize) {
    let bytes = value.to_bytes();
    lengthen_at::<T>(&bytes, varint_at);
    assert!(bytes.len() <= T::BYTES_MAX);
    assert_eq!(value.check_limits(), Ok(()), "the strategy makes valid values");
    assert_eq!(T::from_bytes(&bytes).as_ref(), Ok(value), "round trip");
    let Some(mutated) = mutate(&bytes, m) else { return };
    let r = check_wire::<T>(&mutated);
    // Parsing is driven by the bytes from the front and the valid encoding is consumed
    // exactly, so a strict prefix always runs out of input and an extra byte always trails.
    match m {
        Mutation::Truncate(_) => assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}"),
        Mutation::Extend(_) => assert_eq!(r, Err(DecodeError::TrailingBytes(1))),
        _ => {}
    }
    if let Ok(v) = r {
        assert_ne!(&v, value, "a different encoding decoded to the same value");
    }
}

// ------------------------------------------------------------------------------------------
// Strategies for valid values
// ------------------------------------------------------------------------------------------

/// Integers with a bias to the varint length boundaries.
fn int() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => 0u64..300,
        2 => prop::sample::select(vec![
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            (1 << 21) - 1,
            1 << 21,
            u32::MAX as u64,
            1 << 32,
            (1 << 63) - 1,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ]),
    ]
}

fn int32() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), 0u32..300, Just(u32::MAX), Just(127), Just(128)]
}

fn hash() -> impl Strategy<Value = Hash32> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(Hash32),
        Just(Hash32::ZERO),
        Just(Hash32([0xff; 32])),
    ]
}

fn key() -> impl Strategy<Value = PublicKey> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(PublicKey),
        (0u8..4).prop_map(|i| Keypair::from_seed([i; 32]).public()),
    ]
}

fn sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    hash().prop_map(ChannelId)
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::AToB), Just(Direction::BToA)]
}

fn balance_proof(dir: impl Strategy<Value = Direction>) -> impl Strategy<Value = BalanceProof> {
    (hash(), channel_id(), dir, int(), int(), hash(), hash()).prop_map(
        |(chain_id, channel_id, direction, seq, transferred, prev, memo_hash)| BalanceProof {
            chain_id,
            channel_id,
            direction,
            seq,
            transferred,
            prev,
            memo_hash,
        },
    )
}

/// Random proofs: with a random signature, or signed by a real key.
fn signed_proof_in(dir: impl Strategy<Value = Direction>) -> impl Strategy<Value = SignedProof> {
    (balance_proof(dir), sig(), proptest::option::of(0u8..4)).prop_map(|(proof, signature, signer)| {
        match signer {
            Some(i) => proof.sign(&Keypair::from_seed([i; 32])),
            None => SignedProof { proof, signature },
        }
    })
}

fn signed_proof() -> impl Strategy<Value = SignedProof> {
    signed_proof_in(direction())
}

fn payment() -> impl Strategy<Value = Payment> {
    (int(), hash()).prop_map(|(amount, reference)| Payment { amount, reference })
}

fn channel_open() -> impl Strategy<Value = ChannelOpen> {
    (hash(), key(), key(), int(), int(), hash(), hash(), int()).prop_map(
        |(chain_id, party_a, party_b, deposit_a, deposit_b, salt_a, salt_b, expiry_ms)| ChannelOpen {
            chain_id,
            party_a,
            party_b,
            deposit_a,
            deposit_b,
            salt_a,
            salt_b,
            expiry_ms,
        },
    )
}

fn coop_close() -> impl Strategy<Value = CoopClose> {
    (hash(), channel_id(), int(), int()).prop_map(|(chain_id, channel_id, balance_a, balance_b)| CoopClose {
        chain_id,
        channel_id,
        balance_a,
        balance_b,
    })
}

fn proof_slots() -> impl Strategy<Value = (Option<SignedProof>, Option<SignedProof>)> {
    (
        proptest::option::of(signed_proof_in(Just(Direction::AToB))),
        proptest::option::of(signed_proof_in(Just(Direction::BToA))),
    )
}

fn tx() -> impl Strategy<Value = Tx> {
    prop_oneof![
        (hash(), key(), key(), int(), int(), sig()).prop_map(|(chain_id, from, to, amount, nonce, sig)| {
            Tx::Transfer {
                body: Transfer {
                    chain_id,
                    from,
                    to,
                    amount,
                    nonce,
                },
                sig,
            }
        }),
        (channel_open(), sig(), sig()).prop_map(|(open, sig_a, sig_b)| Tx::Open(SignedOpen {
            open,
            sig_a,
            sig_b
        })),
        (hash(), channel_id(), key(), int(), int(), sig()).prop_map(
            |(chain_id, channel_id, from, amount, nonce, sig)| {
                Tx::Deposit {
                    body: Deposit {
                        chain_id,
                        channel_id,
                        from,
                        amount,
                        nonce,
                    },
                    sig,
                }
            }
        ),
        (coop_close(), sig(), sig()).prop_map(|(close, sig_a, sig_b)| Tx::CoopClose(SignedCoopClose {
            close,
            sig_a,
            sig_b
        })),
        (hash(), channel_id(), key(), proof_slots(), sig()).prop_map(
            |(chain_id, channel_id, closer, (ab, ba), sig)| {
                Tx::UnilateralClose {
                    body: UnilateralClose {
                        chain_id,
                        channel_id,
                        closer,
                        proof_ab: ab,
                        proof_ba: ba,
                    },
                    sig,
                }
            }
        ),
        dispute_tx(),
    ]
}

fn dispute_tx() -> impl Strategy<Value = Tx> {
    prop_oneof![
        (hash(), channel_id(), proof_slots())
            .prop_filter("an update carries a proof", |(_, _, (ab, ba))| ab.is_some()
                || ba.is_some())
            .prop_map(|(chain_id, channel_id, (proof_ab, proof_ba))| Tx::Update(Update {
                chain_id,
                channel_id,
                proof_ab,
                proof_ba,
            })),
        (hash(), channel_id()).prop_map(|(chain_id, channel_id)| Tx::Settle(Settle { chain_id, channel_id })),
    ]
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (hash(), int(), hash(), int(), hash(), int(), hash(), hash()).prop_map(
        |(chain_id, height, prev_hash, time_ms, tx_root, log_size, log_root, state_root)| BlockHeader {
            chain_id,
            height,
            prev_hash,
            time_ms,
            tx_root,
            log_size,
            log_root,
            state_root,
        },
    )
}

fn block() -> impl Strategy<Value = Block> {
    (header(), sig(), prop::collection::vec(tx(), 0..4)).prop_map(|(header, signature, txs)| Block {
        header,
        signature,
        txs,
    })
}

fn cosignature() -> impl Strategy<Value = Cosignature> {
    (key(), any::<u64>(), sig()).prop_map(|(witness, timestamp_s, signature)| Cosignature {
        witness,
        timestamp_s,
        signature,
    })
}

fn signed_checkpoint() -> impl Strategy<Value = SignedCheckpoint> {
    (
        (hash(), int(), hash(), int(), hash()),
        sig(),
        prop::collection::vec(cosignature(), 0..4),
    )
        .prop_map(
            |((chain_id, log_size, log_root, height, block_hash), signature, cosignatures)| {
                SignedCheckpoint {
                    checkpoint: Checkpoint {
                        chain_id,
                        log_size,
                        log_root,
                        height,
                        block_hash,
                    },
                    signature,
                    cosignatures,
                }
            },
        )
}

fn genesis() -> impl Strategy<Value = Genesis> {
    (
        (
            "\\PC{0,16}",
            int(),
            key(),
            prop::collection::vec(key(), 0..4),
            int32(),
        ),
        (int(), int(), int(), int(), int32(), int32(), int(), int()),
        prop::collection::vec((key(), int()), 0..4),
    )
        .prop_map(
            |(
                (network, genesis_time_ms, sequencer, witnesses, witness_threshold),
                (
                    challenge_period_ms,
                    block_interval_ms,
                    heartbeat_interval_ms,
                    max_time_step_ms,
                    max_txs_per_block,
                    max_pending_per_account,
                    tx_fee_min,
                    tx_fee_per_byte,
                ),
                allocations,
            )| Genesis {
                network,
                unit: paychan_protocol::Unit::credit(),
                genesis_time_ms,
                sequencer,
                witnesses,
                witness_threshold,
                challenge_period_ms,
                block_interval_ms,
                heartbeat_interval_ms,
                max_time_step_ms,
                max_txs_per_block,
                max_pending_per_account,
                tx_fee_min,
                tx_fee_per_byte,
                allocations,
            },
        )
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(vec![
        ErrorCode::Malformed,
        ErrorCode::BadSignature,
        ErrorCode::UnknownChannel,
        ErrorCode::Rejected,
        ErrorCode::Busy,
        ErrorCode::Other,
    ])
}

fn channel_msg() -> impl Strategy<Value = ChannelMsg> {
    prop_oneof![
        channel_open().prop_map(|open| ChannelMsg::OpenPropose { open }),
        (channel_open(), sig()).prop_map(|(open, sig_b)| ChannelMsg::OpenAccept { open, sig_b }),
        (channel_id(), sig()).prop_map(|(channel_id, sig_a)| ChannelMsg::OpenSigned { channel_id, sig_a }),
        (
            channel_id(),
            prop::collection::vec(
                (signed_proof(), prop::collection::vec(payment(), 1..4))
                    .prop_map(|(proof, payments)| PayItem { proof, payments }),
                1..4
            )
        )
            .prop_map(|(channel_id, items)| ChannelMsg::Pay { channel_id, items }),
        (channel_id(), direction(), int(), hash()).prop_map(|(channel_id, direction, seq, hash)| {
            ChannelMsg::Ack {
                channel_id,
                direction,
                seq,
                hash,
            }
        }),
        (channel_id(), proptest::option::of(signed_proof())).prop_map(|(channel_id, newest_from_you)| {
            ChannelMsg::Reestablish {
                channel_id,
                newest_from_you,
            }
        }),
        (coop_close(), sig()).prop_map(|(close, sig)| ChannelMsg::ClosePropose { close, sig }),
        (channel_id(), sig()).prop_map(|(channel_id, sig)| ChannelMsg::CloseSign { channel_id, sig }),
        (proptest::option::of(channel_id()), error_code(), "\\PC{0,60}").prop_map(
            |(channel_id, code, text)| {
                ChannelMsg::Error {
                    channel_id,
                    code,
                    text,
                }
            }
        ),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (int(), channel_msg()).prop_map(|(epoch, msg)| Envelope { epoch, msg })
}

fn ledger_request() -> impl Strategy<Value = LedgerRequest> {
    prop_oneof![
        tx().prop_map(|t| LedgerRequest::Submit(t.into())),
        (int(), int32()).prop_map(|(from, limit)| LedgerRequest::GetBlocks { from, limit }),
        Just(LedgerRequest::GetCheckpoint),
        (hash(), int()).prop_map(|(tx_id, size)| LedgerRequest::GetInclusion { tx_id, size }),
        (int(), int()).prop_map(|(first, second)| LedgerRequest::GetConsistency { first, second }),
        Just(LedgerRequest::GetGenesis),
    ]
}

fn ledger_response() -> impl Strategy<Value = LedgerResponse> {
    let status = prop::sample::select(vec![
        SubmitStatus::Accepted,
        SubmitStatus::AlreadyPending,
        SubmitStatus::AlreadyIncluded,
    ]);
    prop_oneof![
        (hash(), status).prop_map(|(tx_id, status)| LedgerResponse::Submitted { tx_id, status }),
        prop::collection::vec(block(), 0..3).prop_map(LedgerResponse::Blocks),
        proptest::option::of(signed_checkpoint()).prop_map(LedgerResponse::Checkpoint),
        (int(), int(), prop::collection::vec(hash(), 0..8))
            .prop_map(|(index, size, path)| { LedgerResponse::Inclusion { index, size, path } }),
        prop::collection::vec(hash(), 0..8).prop_map(|path| LedgerResponse::Consistency { path }),
        genesis().prop_map(LedgerResponse::Genesis),
        "\\PC{0,60}".prop_map(|text| LedgerResponse::Error { text }),
    ]
}

fn gossip() -> impl Strategy<Value = GossipMsg> {
    prop_oneof![
        block().prop_map(GossipMsg::Block),
        signed_checkpoint().prop_map(GossipMsg::Checkpoint),
        (hash(), cosignature()).prop_map(|(block_hash, cosignature)| GossipMsg::Cosignature {
            block_hash,
            cosignature
        }),
        dispute_tx().prop_map(|t| GossipMsg::Dispute(t.into())),
        (signed_checkpoint(), signed_checkpoint())
            .prop_map(|(first, second)| GossipMsg::SplitView(Box::new(SplitView { first, second }))),
    ]
}

// ------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&bytes);
    }

    /// Arbitrary bytes after a plausible first byte (a small enum discriminant), so that more
    /// inputs get past the first field.
    #[test]
    fn arbitrary_bytes_after_a_discriminant(d in 0u8..10, rest in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = vec![d];
        bytes.extend_from_slice(&rest);
        decode_everything(&bytes);
    }

    #[test]
    fn frames(buf in prop::collection::vec(any::<u8>(), 0..64), len in prop_oneof![0u32..64, any::<u32>()], max in prop_oneof![0usize..80, Just(FRAME_BYTES_MAX), Just(usize::MAX)]) {
        check_frame(&buf, max);
        let mut with_len = len.to_be_bytes().to_vec();
        with_len.extend_from_slice(&buf);
        check_frame(&with_len, max);
    }

    #[test]
    fn frame_round_trip(payload in prop::collection::vec(any::<u8>(), 0..300), extra in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut buf = Vec::new();
        wire::write_frame(&payload, &mut buf);
        buf.extend_from_slice(&extra);
        let (consumed, got) = wire::parse_frame(&buf, FRAME_BYTES_MAX).unwrap().unwrap();
        prop_assert_eq!(consumed, 4 + payload.len());
        prop_assert_eq!(got, &payload[..]);
        for cut in 0..consumed {
            prop_assert_eq!(wire::parse_frame(&buf[..cut], FRAME_BYTES_MAX), Ok(None));
        }
    }

    #[test]
    fn signed_proof_round_trip_and_mutations(p in signed_proof(), m in mutation()) {
        let bytes = codec::encode(&p);
        prop_assert!(bytes.len() <= SIGNED_PROOF_BYTES_MAX);
        prop_assert_eq!(check_signed_proof(&bytes), Ok(p));
        // Chain id, channel id, then the direction's varint.
        let r = codec::decode::<SignedProof>(&overlong(&bytes, 64), SIGNED_PROOF_BYTES_MAX);
        prop_assert_eq!(r, Err(DecodeError::NonCanonical));
        if let Some(mutated) = mutate(&bytes, &m) {
            if let Ok(v) = check_signed_proof(&mutated) {
                prop_assert_ne!(v, p);
            }
        }
    }

    #[test]
    fn envelope_round_trip_and_mutations(v in envelope(), m in mutation()) { check_value(&v, &m, 0); }

    #[test]
    fn tx_round_trip_and_mutations(v in tx(), m in mutation()) { check_value(&v, &m, 0); }

    #[test]
    fn block_round_trip_and_mutations(v in block(), m in mutation()) { check_value(&v, &m, 32); }

    #[test]
    fn checkpoint_round_trip_and_mutations(v in signed_checkpoint(), m in mutation()) { check_value(&v, &m, 32); }

    #[test]
    fn genesis_round_trip_and_mutations(v in genesis(), m in mutation()) { check_value(&v, &m, 0); }

    #[test]
    fn ledger_request_round_trip_and_mutations(v in ledger_request(), m in mutation()) { check_value(&v, &m, 0); }

    #[test]
    fn ledger_response_round_trip_and_mutations(v in ledger_response(), m in mutation()) { check_value(&v, &m, 0); }

    #[test]
    fn gossip_round_trip_and_mutations(v in gossip(), m in mutation()) { check_value(&v, &m, 0); }
}

/// Rewrites the varint that starts at `at` with one more (zero) continuation byte.
fn overlong(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut end = at;
    while bytes[end] & 0x80 != 0 {
        end += 1;
    }
    let mut v = bytes[..end].to_vec();
    v.push(bytes[end] | 0x80);
    v.push(0);
    v.extend_from_slice(&bytes[end + 1..]);
    v
}

fn lengthen_at<T: Wire + PartialEq + Debug>(bytes: &[u8], at: usize) {
    let r = check_wire::<T>(&overlong(bytes, at));
    assert!(
        matches!(r, Err(DecodeError::NonCanonical) | Err(DecodeError::Malformed(_))),
        "{}: {r:?}",
        std::any::type_name::<T>()
    );
}

// ------------------------------------------------------------------------------------------
// Limits at their boundaries
// ------------------------------------------------------------------------------------------

fn some_proof(dir: Direction) -> SignedProof {
    BalanceProof {
        chain_id: Hash32([1; 32]),
        channel_id: ChannelId(Hash32([2; 32])),
        direction: dir,
        seq: 1,
        transferred: 10,
        prev: Hash32([2; 32]),
        memo_hash: Hash32([3; 32]),
    }
    .sign(&Keypair::from_seed([9; 32]))
}

fn pay(items: usize, payments: usize) -> Envelope {
    let item = PayItem {
        proof: some_proof(Direction::AToB),
        payments: vec![
            Payment {
                amount: 1,
                reference: Hash32::ZERO
            };
            payments
        ],
    };
    Envelope {
        epoch: 1,
        msg: ChannelMsg::Pay {
            channel_id: ChannelId(Hash32([2; 32])),
            items: vec![item; items],
        },
    }
}

fn limit<T: Wire + PartialEq + Debug>(v: &T) -> Result<T, DecodeError> {
    check_wire::<T>(&v.to_bytes())
}

#[test]
fn limits_at_their_boundaries() {
    // Pay frames: 1..=PAY_PROOFS_MAX items of 1..=MEMO_PAYMENTS_MAX payments.
    assert!(limit(&pay(1, 1)).is_ok());
    assert!(limit(&pay(PAY_PROOFS_MAX, 1)).is_ok());
    assert!(limit(&pay(1, MEMO_PAYMENTS_MAX)).is_ok());
    assert!(matches!(limit(&pay(0, 1)), Err(DecodeError::Limit(_))));
    assert!(matches!(
        limit(&pay(PAY_PROOFS_MAX + 1, 1)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(limit(&pay(1, 0)), Err(DecodeError::Limit(_))));
    assert!(matches!(
        limit(&pay(1, MEMO_PAYMENTS_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));

    let err = |n: usize| Envelope {
        epoch: 0,
        msg: ChannelMsg::Error {
            channel_id: None,
            code: ErrorCode::Other,
            text: "e".repeat(n),
        },
    };
    assert!(limit(&err(ERROR_TEXT_BYTES_MAX)).is_ok());
    assert!(matches!(
        limit(&err(ERROR_TEXT_BYTES_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));
    let resp = |n: usize| LedgerResponse::Error { text: "e".repeat(n) };
    assert!(limit(&resp(ERROR_TEXT_BYTES_MAX)).is_ok());
    assert!(matches!(
        limit(&resp(ERROR_TEXT_BYTES_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));

    // Transactions: an update needs a proof, and proofs sit in their own direction's slot.
    let upd = |ab: Option<SignedProof>, ba: Option<SignedProof>| {
        Tx::Update(Update {
            chain_id: Hash32([1; 32]),
            channel_id: ChannelId(Hash32([2; 32])),
            proof_ab: ab,
            proof_ba: ba,
        })
    };
    assert!(limit(&upd(Some(some_proof(Direction::AToB)), None)).is_ok());
    assert!(limit(&upd(None, Some(some_proof(Direction::BToA)))).is_ok());
    assert!(matches!(limit(&upd(None, None)), Err(DecodeError::Limit(_))));
    assert!(matches!(
        limit(&upd(Some(some_proof(Direction::BToA)), None)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&upd(None, Some(some_proof(Direction::AToB)))),
        Err(DecodeError::Limit(_))
    ));
    let bad_update = upd(None, None);
    assert!(matches!(
        limit(&LedgerRequest::Submit(bad_update.clone().into())),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&GossipMsg::Dispute(bad_update.into())),
        Err(DecodeError::Limit(_))
    ));
    let settle = Tx::Settle(Settle {
        chain_id: Hash32([1; 32]),
        channel_id: ChannelId(Hash32([2; 32])),
    });
    assert!(limit(&GossipMsg::Dispute(settle.clone().into())).is_ok());
    let transfer = Tx::transfer(
        Transfer {
            chain_id: Hash32([1; 32]),
            from: Keypair::from_seed([1; 32]).public(),
            to: Keypair::from_seed([2; 32]).public(),
            amount: 5,
            nonce: 0,
        },
        &Keypair::from_seed([1; 32]),
    );
    assert!(limit(&transfer).is_ok());
    assert!(matches!(
        limit(&GossipMsg::Dispute(transfer.into())),
        Err(DecodeError::Limit(_))
    ));

    // Blocks: at most BLOCK_TXS_MAX transactions; responses at most BLOCKS_PER_RESPONSE_MAX.
    let block = |n: usize| Block {
        header: BlockHeader {
            chain_id: Hash32([1; 32]),
            height: 1,
            prev_hash: Hash32([1; 32]),
            time_ms: 0,
            tx_root: Hash32::ZERO,
            log_size: 0,
            log_root: Hash32::ZERO,
            state_root: Hash32::ZERO,
        },
        signature: Signature([0; 64]),
        txs: vec![settle.clone(); n],
    };
    assert!(limit(&block(BLOCK_TXS_MAX)).is_ok());
    assert!(matches!(
        limit(&block(BLOCK_TXS_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&GossipMsg::Block(block(BLOCK_TXS_MAX + 1))),
        Err(DecodeError::Limit(_))
    ));
    let blocks = |n: usize| LedgerResponse::Blocks(vec![block(1); n]);
    assert!(limit(&blocks(BLOCKS_PER_RESPONSE_MAX)).is_ok());
    assert!(matches!(
        limit(&blocks(BLOCKS_PER_RESPONSE_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&LedgerResponse::Blocks(vec![block(BLOCK_TXS_MAX + 1)])),
        Err(DecodeError::Limit(_))
    ));

    // Merkle paths.
    let incl = |n: usize| LedgerResponse::Inclusion {
        index: 0,
        size: 1,
        path: vec![Hash32::ZERO; n],
    };
    assert!(limit(&incl(MERKLE_PATH_MAX)).is_ok());
    assert!(matches!(
        limit(&incl(MERKLE_PATH_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));
    let cons = |n: usize| LedgerResponse::Consistency {
        path: vec![Hash32::ZERO; n],
    };
    assert!(limit(&cons(MERKLE_PATH_MAX)).is_ok());
    assert!(matches!(
        limit(&cons(MERKLE_PATH_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));

    // Checkpoints: at most WITNESSES_MAX cosignatures.
    let cp = |n: usize| SignedCheckpoint {
        checkpoint: Checkpoint {
            chain_id: Hash32([1; 32]),
            log_size: 1,
            log_root: Hash32::ZERO,
            height: 1,
            block_hash: Hash32::ZERO,
        },
        signature: Signature([0; 64]),
        cosignatures: vec![
            Cosignature {
                witness: PublicKey([0; 32]),
                timestamp_s: 0,
                signature: Signature([0; 64]),
            };
            n
        ],
    };
    assert!(limit(&cp(WITNESSES_MAX)).is_ok());
    assert!(matches!(
        limit(&cp(WITNESSES_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&LedgerResponse::Checkpoint(Some(cp(WITNESSES_MAX + 1)))),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&GossipMsg::Checkpoint(cp(WITNESSES_MAX + 1))),
        Err(DecodeError::Limit(_))
    ));

    // Genesis: network name, witnesses, allocations.
    let gen = |name: usize, witnesses: usize, allocations: usize| Genesis {
        network: "n".repeat(name),
        unit: paychan_protocol::Unit::credit(),
        genesis_time_ms: 0,
        sequencer: PublicKey([1; 32]),
        witnesses: vec![PublicKey([2; 32]); witnesses],
        witness_threshold: 1,
        challenge_period_ms: 1,
        block_interval_ms: 1,
        heartbeat_interval_ms: 1,
        max_time_step_ms: 1,
        max_txs_per_block: 1,
        max_pending_per_account: 1,
        tx_fee_min: 0,
        tx_fee_per_byte: 0,
        allocations: vec![(PublicKey([3; 32]), 1); allocations],
    };
    assert!(limit(&gen(NETWORK_NAME_BYTES_MAX, WITNESSES_MAX, ALLOCATIONS_MAX)).is_ok());
    assert!(matches!(
        limit(&gen(NETWORK_NAME_BYTES_MAX + 1, 0, 0)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&gen(0, WITNESSES_MAX + 1, 0)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&gen(0, 0, ALLOCATIONS_MAX + 1)),
        Err(DecodeError::Limit(_))
    ));
    assert!(matches!(
        limit(&LedgerResponse::Genesis(gen(0, WITNESSES_MAX + 1, 0))),
        Err(DecodeError::Limit(_))
    ));

    // Size caps come before parsing.
    let big = vec![0u8; TX_BYTES_MAX + 1];
    assert_eq!(
        Tx::from_bytes(&big),
        Err(DecodeError::TooLarge {
            len: TX_BYTES_MAX + 1,
            max: TX_BYTES_MAX
        })
    );
    let big = vec![0u8; SIGNED_PROOF_BYTES_MAX + 1];
    assert!(matches!(
        codec::decode::<SignedProof>(&big, SIGNED_PROOF_BYTES_MAX),
        Err(DecodeError::TooLarge { .. })
    ));
    assert_eq!(
        wire::parse_frame(&((FRAME_BYTES_MAX + 1) as u32).to_be_bytes(), FRAME_BYTES_MAX),
        Err(wire::FrameError::TooLarge {
            len: FRAME_BYTES_MAX + 1,
            max: FRAME_BYTES_MAX
        })
    );
}

/// A length prefix that announces far more elements than the input holds is refused without
/// trying to allocate for them.
#[test]
fn huge_announced_lengths_are_refused() {
    // LedgerResponse::Blocks with 2^63 blocks, Genesis with a 2^63-byte name, a Block with 2^32
    // transactions.
    let mut blocks = vec![1u8];
    blocks.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(LedgerResponse::from_bytes(&blocks).is_err());
    let mut name = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    name.extend_from_slice(b"x");
    assert!(Genesis::from_bytes(&name).is_err());
    let mut b = vec![0u8; 32 + 1 + 32 + 1 + 32 + 1 + 32 + 32 + 64];
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x10]);
    assert!(Block::from_bytes(&b).is_err());
}

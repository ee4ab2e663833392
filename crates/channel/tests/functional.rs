//! Functional tests of each step of a channel's life and of each typed rejection.

mod common;

use common::*;
use paychan_channel::open::{accept_open, OpenProposal};
use paychan_channel::{
    Channel, ChannelError, ChannelStatus, CloseState, ErrorClass, InlineSigner, PersistedChannel,
    ProofSigner, VerifyMode,
};
use paychan_protocol::channel::{memo_hash, settle_payouts, BalanceProof, ChannelId};
use paychan_protocol::codec::{decode, encode};
use paychan_protocol::limits::{MEMO_PAYMENTS_MAX, SEQ_RESERVATION, UNACKED_PROOFS_MAX};
use paychan_protocol::wire::{ChannelMsg, PayItem};
use paychan_protocol::{Direction, Hash32, Keypair, Signature, SignedProof, Tx};

/// Everything observable about a channel, to show that a refusal changed nothing.
fn fingerprint(ch: &Channel) -> impl PartialEq + std::fmt::Debug {
    (
        ch.snapshot(),
        ch.persist_needs(),
        ch.balances(),
        ch.transferred_in(),
        ch.transferred_out(),
        ch.unacked_len(),
        ch.next_seq(),
        ch.newest_incoming().copied(),
        ch.status(),
    )
}

/// Feeds `items` to `ch`, expects `want`, and checks nothing changed.
fn reject(ch: &mut Channel, items: &[PayItem], want: ChannelError) {
    let before = fingerprint(ch);
    let got = ch.receive(items).unwrap_err();
    assert_eq!(got, want);
    assert_eq!(got.class(), ErrorClass::Violation, "{got:?}");
    assert_eq!(fingerprint(ch), before, "a refused burst changed the state");
}

/// Re-signs a proof body with `kp`.
fn resign(body: BalanceProof, kp: &Keypair) -> SignedProof {
    body.sign(kp)
}

// ----- open -----

#[test]
fn open_negotiation_gives_both_the_same_signed_open() {
    let signed = negotiate(100, 50);
    assert!(signed.verify().is_ok());
    assert_ne!(signed.open.salt_b, Hash32::ZERO);
    let a = Channel::new(signed.clone(), keypair_a()).unwrap();
    let b = Channel::new(signed.clone(), keypair_b()).unwrap();
    assert_eq!(a.id(), signed.open.channel_id());
    assert_eq!(a.id(), b.id());
    assert!(a.holder_is_a() && !b.holder_is_a());
    assert_eq!(a.status(), ChannelStatus::Pending);
    assert_eq!(
        Channel::new(signed, Keypair::from_seed([9; 32])).unwrap_err(),
        ChannelError::NotAParty
    );
}

#[test]
fn acceptor_checks_chain_key_salt_deposits_and_expiry() {
    let (ka, kb) = (keypair_a(), keypair_b());
    let propose = |chain, to, dep_b, expiry| {
        OpenProposal::new(chain, &ka, to, 100, dep_b, Hash32([1; 32]), expiry)
            .unwrap()
            .open()
            .clone()
    };
    let ok = propose(chain_id(), kb.public(), 10, NOW_MS + 60_000);
    assert!(accept_open(&kb, &ok, &policy(), Hash32([2; 32])).is_ok());

    let wrong_chain = propose(Hash32([9; 32]), kb.public(), 10, NOW_MS + 60_000);
    let err = accept_open(&kb, &wrong_chain, &policy(), Hash32([2; 32])).unwrap_err();
    assert!(matches!(err, ChannelError::WrongChain { .. }));

    let other_key = propose(
        chain_id(),
        Keypair::from_seed([7; 32]).public(),
        10,
        NOW_MS + 60_000,
    );
    assert!(matches!(
        accept_open(&kb, &other_key, &policy(), Hash32([2; 32])),
        Err(ChannelError::OpenRefused(_))
    ));

    let mut salted = ok.clone();
    salted.salt_b = Hash32([5; 32]);
    assert!(accept_open(&kb, &salted, &policy(), Hash32([2; 32])).is_err());

    let strict = paychan_channel::open::OpenPolicy {
        deposit_own_max: 5,
        ..policy()
    };
    assert!(accept_open(&kb, &ok, &strict, Hash32([2; 32])).is_err());
    let strict = paychan_channel::open::OpenPolicy {
        deposit_peer_min: 101,
        ..policy()
    };
    assert!(accept_open(&kb, &ok, &strict, Hash32([2; 32])).is_err());

    for expiry in [NOW_MS - 1, NOW_MS + 10, NOW_MS + 3_600_001] {
        let o = propose(chain_id(), kb.public(), 10, expiry);
        assert!(
            accept_open(&kb, &o, &policy(), Hash32([2; 32])).is_err(),
            "expiry {expiry}"
        );
    }

    // Shape rules hold for the proposer too.
    assert!(OpenProposal::new(chain_id(), &ka, ka.public(), 1, 1, Hash32([1; 32]), NOW_MS).is_err());
    assert!(OpenProposal::new(chain_id(), &ka, kb.public(), u64::MAX, 1, Hash32([1; 32]), NOW_MS).is_err());
    assert!(OpenProposal::new(chain_id(), &ka, kb.public(), 0, 0, Hash32([1; 32]), NOW_MS).is_err());
}

#[test]
fn proposer_accepts_only_its_proposal_with_a_valid_signature() {
    let (ka, kb) = (keypair_a(), keypair_b());
    let prop = OpenProposal::new(
        chain_id(),
        &ka,
        kb.public(),
        100,
        10,
        Hash32([1; 32]),
        NOW_MS + 60_000,
    )
    .unwrap();
    let (acc, msg) = accept_open(&kb, prop.open(), &policy(), Hash32([2; 32])).unwrap();
    let ChannelMsg::OpenAccept { open, sig_b } = msg else {
        panic!()
    };

    let mut changed = open.clone();
    changed.deposit_b = 11;
    let sig = changed.sign(&kb);
    assert_eq!(
        prop.on_accept(&ka, &changed, &sig).unwrap_err(),
        ChannelError::OpenMismatch
    );
    assert_eq!(
        prop.on_accept(&ka, &open, &Signature([0; 64])).unwrap_err(),
        ChannelError::BadSignature
    );
    assert_eq!(
        prop.on_accept(&kb, &open, &sig_b).unwrap_err(),
        ChannelError::NotAParty
    );

    let (signed, msg) = prop.on_accept(&ka, &open, &sig_b).unwrap();
    let ChannelMsg::OpenSigned { channel_id, sig_a } = msg else {
        panic!()
    };
    assert_eq!(
        acc.on_signed(channel_id, &Signature([0; 64])).unwrap_err(),
        ChannelError::BadSignature
    );
    let wrong = ChannelId(Hash32([3; 32]));
    assert!(matches!(
        acc.on_signed(wrong, &sig_a),
        Err(ChannelError::WrongChannel { .. })
    ));
    assert_eq!(acc.on_signed(channel_id, &sig_a).unwrap(), signed);
}

#[test]
fn pending_channel_pays_only_after_confirmation() {
    let signed = negotiate(100, 0);
    let mut a = Channel::new(signed, keypair_a()).unwrap();
    let snap = a.snapshot();
    assert_eq!(
        snap.seq_reserved, SEQ_RESERVATION,
        "the first snapshot carries the first reservation"
    );
    a.persisted(&snap).unwrap();
    let _ = a.peer_connected();
    let err = a.pay(1, Hash32::ZERO).unwrap_err();
    assert_eq!(
        err,
        ChannelError::Status {
            status: ChannelStatus::Pending
        }
    );
    assert!(err.is_retryable());
    a.on_open_confirmed().unwrap();
    assert_eq!(a.status(), ChannelStatus::Open);
    assert!(a.persist_needs().meta);
}

// ----- pay and receive -----

#[test]
fn one_payment_is_signed_received_persisted_and_acked() {
    let mut p = open_pair(100, 50);
    let pay = payment(30, 1);
    let proof = p.a.ch.pay(pay.amount, pay.reference).unwrap();
    assert_eq!(proof.proof.seq, 1);
    assert_eq!(proof.proof.transferred, 30);
    assert_eq!(proof.proof.prev, p.a.ch.id().0);
    assert_eq!(proof.proof.memo_hash, memo_hash(&[pay]));
    assert_eq!(proof.proof.direction, Direction::AToB);
    assert!(proof.verify(&keypair_a().public()).is_ok());
    assert_eq!(p.a.ch.unacked_len(), 1);
    assert_eq!(p.a.ch.balances(), (70, 80));

    let msg = frame(&p.a.ch, vec![item(proof, pay)]);
    let got = p.b.ch.handle_message(&msg).unwrap().received.unwrap();
    assert_eq!(
        (got.amount, got.proofs, got.payments, got.newest),
        (30, 1, 1, proof)
    );
    assert_eq!(p.b.ch.transferred_in(), 30);
    assert_eq!(p.b.ch.received_durable(), 0, "not durable before the persist");
    assert_eq!(p.b.ch.persist_needs().incoming_seq, Some(1));
    assert_eq!(p.b.ch.balances(), (70, 80));

    let ack = p.b.persist().expect("ack after the persist");
    assert_eq!(
        ack,
        ChannelMsg::Ack {
            channel_id: p.a.ch.id(),
            direction: Direction::AToB,
            seq: 1,
            hash: proof.proof.hash()
        }
    );
    assert_eq!(p.b.disk.incoming, Some(proof));
    let acked = p.a.ch.handle_message(&ack).unwrap().acked.unwrap();
    assert_eq!((acked.seq, acked.released), (1, 1));
    assert_eq!(p.a.ch.unacked_len(), 0);
    assert_eq!(p.a.ch.persist_needs().acked_own_seq, Some(1));
    assert!(!p.a.ch.persist_needs().urgent());
    // A repeated ack is harmless.
    assert_eq!(p.a.ch.handle_message(&ack).unwrap().acked.unwrap().released, 0);
}

#[test]
fn pay_many_puts_up_to_memo_max_payments_in_one_proof() {
    let mut p = open_pair(1_000_000, 0);
    let pays: Vec<_> = (0..MEMO_PAYMENTS_MAX as u64).map(|i| payment(i + 1, i)).collect();
    let proof = p.a.ch.pay_many(&pays).unwrap();
    let total: u64 = pays.iter().map(|x| x.amount).sum();
    assert_eq!(proof.proof.transferred, total);
    assert_eq!(proof.proof.memo_hash, memo_hash(&pays));
    let too_many: Vec<_> = (0..=MEMO_PAYMENTS_MAX as u64).map(|i| payment(1, i)).collect();
    assert!(matches!(
        p.a.ch.pay_many(&too_many),
        Err(ChannelError::MemoLength { .. })
    ));
    assert!(matches!(
        p.a.ch.pay_many(&[]),
        Err(ChannelError::MemoLength { .. })
    ));
    let msg = frame(
        &p.a.ch,
        vec![PayItem {
            proof,
            payments: pays,
        }],
    );
    let got = p.a_to_b(&msg).received.unwrap();
    assert_eq!(
        (got.amount, got.payments, got.proofs),
        (total, MEMO_PAYMENTS_MAX, 1)
    );
}

#[test]
fn a_burst_is_verified_by_its_newest_proof_or_all_in_a_batch() {
    let mut p = open_pair(1_000_000, 0);
    let mut items = pay_items(&mut p.a.ch, 256, 3);
    // An earlier item's signature is not checked in the default mode (the hash chain binds
    // it to the newest, which is), but it is in VerifyMode::All.
    items[10].proof.signature = Signature([7; 64]);
    p.b.ch.set_verify_mode(VerifyMode::All);
    reject(&mut p.b.ch, &items, ChannelError::BadSignature);
    p.b.ch.set_verify_mode(VerifyMode::Newest);
    let got = p.b.ch.receive(&items).unwrap();
    assert_eq!((got.proofs, got.amount), (256, 768));
    assert_eq!(got.newest.proof.seq, 256);

    p.b.ch.set_verify_mode(VerifyMode::All);
    let items = pay_items(&mut p.a.ch, 100, 1);
    assert_eq!(p.b.ch.receive(&items).unwrap().amount, 100);
    // Two bursts persisted with one write: one ack for the newest.
    let ack = p.b.persist().unwrap();
    let ChannelMsg::Ack { seq, .. } = ack else {
        panic!()
    };
    assert_eq!(seq, 356);
    p.a.ch.handle_message(&ack).unwrap();
    assert_eq!(p.a.ch.unacked_len(), 0);
}

#[test]
fn spending_rule_counts_only_durable_receipts() {
    let mut p = open_pair(10, 10);
    assert_eq!(p.a.ch.spendable(), 10);
    let err = p.a.ch.pay(11, Hash32::ZERO).unwrap_err();
    assert_eq!(
        err,
        ChannelError::InsufficientFunds {
            available: 10,
            amount: 11
        }
    );
    assert_eq!(err.class(), ErrorClass::Refused);
    let before = p.a.ch.snapshot();
    assert_eq!(p.a.ch.snapshot(), before);

    let items = pay_items(&mut p.b.ch, 1, 5);
    p.a.ch.receive(&items).unwrap();
    assert_eq!(p.a.ch.transferred_in(), 5);
    assert_eq!(p.a.ch.spendable(), 10, "verified, not yet durable: not spendable");
    assert!(p.a.ch.pay(11, Hash32::ZERO).is_err());
    p.a.persist();
    assert_eq!(p.a.ch.spendable(), 15);
    p.a.ch.pay(15, Hash32::ZERO).unwrap();
    assert_eq!(p.a.ch.spendable(), 0);
    assert_eq!(p.a.ch.balances(), (0, 20));
}

#[test]
fn window_is_bounded_and_full_is_retryable() {
    let mut p = open_pair(u64::MAX / 2, 0);
    for i in 0..UNACKED_PROOFS_MAX as u64 {
        p.a.ch.pay(1, Hash32([i as u8; 32])).unwrap();
    }
    let before = p.a.ch.snapshot();
    let err = p.a.ch.pay(1, Hash32::ZERO).unwrap_err();
    assert_eq!(
        err,
        ChannelError::WindowFull {
            unacked: UNACKED_PROOFS_MAX
        }
    );
    assert!(err.is_retryable());
    assert_eq!(p.a.ch.snapshot(), before);
    assert_eq!(p.a.ch.unacked_items().len(), UNACKED_PROOFS_MAX);
}

#[test]
fn signing_stops_at_the_durable_reservation_until_it_is_persisted() {
    let signed = negotiate(100, 0);
    let mut a = Channel::new(signed.clone(), keypair_a()).unwrap();
    let mut b = Channel::new(signed, keypair_b()).unwrap();
    a.on_open_confirmed().unwrap();
    b.on_open_confirmed().unwrap();
    let ra = a.peer_connected().unwrap();
    let rb = b.peer_connected().unwrap();
    a.handle_message(&rb).unwrap();
    b.handle_message(&ra).unwrap();
    // The first reservation was requested at creation but is not durable yet.
    let err = a.pay(1, Hash32::ZERO).unwrap_err();
    assert_eq!(
        err,
        ChannelError::NeedsReservation {
            up_to: SEQ_RESERVATION
        }
    );
    assert!(err.is_retryable());
    assert_eq!(a.persist_needs().reservation, Some(SEQ_RESERVATION));
    // A report for a bound never asked for is refused.
    assert!(matches!(
        a.reservation_persisted(SEQ_RESERVATION + 1),
        Err(ChannelError::UnexpectedPersist(_))
    ));
    a.reservation_persisted(SEQ_RESERVATION).unwrap();
    assert_eq!(a.persist_needs().reservation, None);
    assert_eq!(a.pay(1, Hash32::ZERO).unwrap().proof.seq, 1);
}

// ----- typed rejections; each leaves the state unchanged -----

#[test]
fn bad_signature_is_rejected() {
    let mut p = open_pair(100, 100);
    let mut items = pay_items(&mut p.a.ch, 3, 1);
    items[2].proof.signature.0[0] ^= 1;
    reject(&mut p.b.ch, &items, ChannelError::BadSignature);
    // The newest signed by someone else.
    items[2].proof = resign(items[2].proof.proof, &Keypair::from_seed([9; 32]));
    reject(&mut p.b.ch, &items, ChannelError::BadSignature);
    // Signed by the holder itself (B) instead of the payer.
    items[2].proof = resign(items[2].proof.proof, &keypair_b());
    reject(&mut p.b.ch, &items, ChannelError::BadSignature);
}

#[test]
fn wrong_chain_channel_and_direction_are_rejected() {
    let mut p = open_pair(100, 100);
    let ka = keypair_a();
    let items = pay_items(&mut p.a.ch, 1, 1);
    let base = items[0].proof.proof;

    let mut other = items.clone();
    other[0].proof = resign(
        BalanceProof {
            chain_id: Hash32([9; 32]),
            ..base
        },
        &ka,
    );
    reject(
        &mut p.b.ch,
        &other,
        ChannelError::WrongChain { got: Hash32([9; 32]) },
    );

    let wrong = ChannelId(Hash32([8; 32]));
    let mut other = items.clone();
    other[0].proof = resign(
        BalanceProof {
            channel_id: wrong,
            ..base
        },
        &ka,
    );
    reject(&mut p.b.ch, &other, ChannelError::WrongChannel { got: wrong });
    let before = fingerprint(&p.b.ch);
    let err =
        p.b.ch
            .handle_message(&ChannelMsg::Pay {
                channel_id: wrong,
                items: items.clone(),
            })
            .unwrap_err();
    assert_eq!(err, ChannelError::WrongChannel { got: wrong });
    assert_eq!(fingerprint(&p.b.ch), before);

    // A's own proof fed back to A: the wrong direction.
    reject(&mut p.a.ch, &items, ChannelError::WrongDirection);
}

#[test]
fn decreasing_amount_is_rejected() {
    let mut p = open_pair(100, 100);
    let msg = pay_frame(&mut p.a.ch, 1, 10);
    p.a_to_b(&msg);
    let last = *p.b.ch.newest_incoming().unwrap();
    let body = BalanceProof {
        seq: 2,
        transferred: 9,
        prev: last.proof.hash(),
        memo_hash: memo_hash(&[payment(0, 0)]),
        ..last.proof
    };
    let items = vec![item(resign(body, &keypair_a()), payment(0, 0))];
    reject(
        &mut p.b.ch,
        &items,
        ChannelError::AmountDecreased { last: 10, got: 9 },
    );
}

#[test]
fn reused_or_non_increasing_seq_is_rejected() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 2, 1);
    p.b.ch.receive(&items).unwrap();
    // A replay of the same burst.
    reject(
        &mut p.b.ch,
        &items,
        ChannelError::SeqNotIncreasing { last: 2, got: 1 },
    );
    // A new proof reusing seq 2 (properly linked and signed).
    let last = *p.b.ch.newest_incoming().unwrap();
    let body = BalanceProof {
        seq: 2,
        transferred: 3,
        prev: last.proof.hash(),
        memo_hash: memo_hash(&[payment(1, 5)]),
        ..last.proof
    };
    let reuse = vec![item(resign(body, &keypair_a()), payment(1, 5))];
    reject(
        &mut p.b.ch,
        &reuse,
        ChannelError::SeqNotIncreasing { last: 2, got: 2 },
    );
    // Within a burst.
    let mut burst = pay_items(&mut p.a.ch, 2, 1);
    burst.swap(0, 1);
    reject(&mut p.b.ch, &burst, ChannelError::BadPrevLink { seq: 4 });
}

#[test]
fn broken_prev_link_is_rejected() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 3, 1);
    // Skipping a proof breaks the chain.
    reject(&mut p.b.ch, &items[1..], ChannelError::BadPrevLink { seq: 2 });
    let gap = vec![items[0].clone(), items[2].clone()];
    reject(&mut p.b.ch, &gap, ChannelError::BadPrevLink { seq: 3 });
    // A proof linking to something else.
    let body = BalanceProof {
        prev: Hash32([1; 32]),
        ..items[0].proof.proof
    };
    let forged = vec![item(resign(body, &keypair_a()), items[0].payments[0])];
    reject(&mut p.b.ch, &forged, ChannelError::BadPrevLink { seq: 1 });
    assert_eq!(p.b.ch.receive(&items).unwrap().proofs, 3);
}

#[test]
fn overspend_is_rejected() {
    let mut p = open_pair(10, 100);
    // B has paid A nothing, so A may pay at most its deposit; A's honest channel refuses
    // (InsufficientFunds), so sign the overspending proof by hand.
    let body = BalanceProof {
        chain_id: chain_id(),
        channel_id: p.a.ch.id(),
        direction: Direction::AToB,
        seq: 1,
        transferred: 11,
        prev: p.a.ch.id().0,
        memo_hash: memo_hash(&[payment(11, 0)]),
    };
    let items = vec![item(resign(body, &keypair_a()), payment(11, 0))];
    reject(
        &mut p.b.ch,
        &items,
        ChannelError::Overspend {
            transferred: 11,
            limit: 10,
        },
    );
    // Once B has signed 5 to A (even unacked), A may pay 15.
    p.b.ch.pay(5, Hash32::ZERO).unwrap();
    let body = BalanceProof {
        transferred: 15,
        memo_hash: memo_hash(&[payment(15, 0)]),
        ..body
    };
    assert!(p
        .b
        .ch
        .receive(&[item(resign(body, &keypair_a()), payment(15, 0))])
        .is_ok());
}

#[test]
fn memo_mismatch_is_rejected() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 1, 10);
    // Payments that do not hash to the memo (different reference).
    let mut other = items.clone();
    other[0].payments[0].reference = Hash32([0xee; 32]);
    reject(&mut p.b.ch, &other, ChannelError::MemoMismatch { seq: 1 });
    // Payments that do not sum to the increase.
    let mut other = items.clone();
    other[0].payments[0].amount = 9;
    reject(&mut p.b.ch, &other, ChannelError::MemoMismatch { seq: 1 });
    // No payments at all.
    let mut other = items.clone();
    other[0].payments.clear();
    reject(&mut p.b.ch, &other, ChannelError::MemoMismatch { seq: 1 });
    // A proof whose memo hash matches its payments but whose total does not rise by them.
    let pays = [payment(4, 1), payment(5, 2)];
    let body = BalanceProof {
        memo_hash: memo_hash(&pays),
        ..items[0].proof.proof
    };
    let lying = vec![PayItem {
        proof: resign(body, &keypair_a()),
        payments: pays.to_vec(),
    }];
    reject(&mut p.b.ch, &lying, ChannelError::MemoMismatch { seq: 1 });
    // An empty burst.
    reject(&mut p.b.ch, &[], ChannelError::BadBurst("empty burst"));
}

#[test]
fn bad_acks_are_rejected_and_change_nothing() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 2, 1);
    let before = fingerprint(&p.a.ch);
    let h = items[0].proof.proof.hash();
    assert_eq!(
        p.a.ch.on_ack(Direction::AToB, 1, Hash32([1; 32])),
        Err(ChannelError::BadAck { seq: 1 })
    );
    assert_eq!(
        p.a.ch.on_ack(Direction::AToB, 3, h),
        Err(ChannelError::BadAck { seq: 3 })
    );
    assert_eq!(
        p.a.ch.on_ack(Direction::BToA, 1, h),
        Err(ChannelError::WrongDirection)
    );
    assert_eq!(fingerprint(&p.a.ch), before);
    assert_eq!(p.a.ch.on_ack(Direction::AToB, 1, h).unwrap().released, 1);
}

#[test]
fn receive_needs_an_open_reestablished_channel() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 1, 1);
    p.b.ch.peer_disconnected();
    let err = p.b.ch.receive(&items).unwrap_err();
    assert_eq!(err, ChannelError::NotReestablished);
    assert!(err.is_retryable());
    let err = p.a.ch.pay(1, Hash32::ZERO);
    assert!(err.is_ok(), "A is still connected in its own view");
    p.a.ch.peer_disconnected();
    assert_eq!(p.a.ch.pay(1, Hash32::ZERO), Err(ChannelError::NotReestablished));
}

#[test]
fn error_classes() {
    use ChannelError::*;
    for e in [
        WindowFull { unacked: 1 },
        NeedsReservation { up_to: 1 },
        NotReestablished,
        PersistBacklog { pending: 1 },
    ] {
        assert!(e.is_retryable(), "{e}");
    }
    for e in [
        BadSignature,
        BadPrevLink { seq: 1 },
        SeqNotIncreasing { last: 1, got: 1 },
        AmountDecreased { last: 1, got: 0 },
        MemoMismatch { seq: 1 },
        Overspend {
            transferred: 1,
            limit: 0,
        },
        WrongChannel {
            got: ChannelId(Hash32::ZERO),
        },
        WrongChain { got: Hash32::ZERO },
        WrongDirection,
    ] {
        assert!(e.is_violation() && !e.is_retryable(), "{e}");
    }
    assert_eq!(
        InsufficientFunds {
            available: 0,
            amount: 1
        }
        .class(),
        ErrorClass::Refused
    );
    assert_eq!(
        Status {
            status: ChannelStatus::Closing
        }
        .class(),
        ErrorClass::Refused
    );
}

// ----- persistence, restore, reestablish -----

#[test]
fn persisted_state_round_trips_through_the_codec() {
    let mut p = open_pair(100, 100);
    let msg = pay_frame(&mut p.a.ch, 3, 2);
    p.a_to_b(&msg);
    let snap = p.b.ch.snapshot();
    let bytes = encode(&snap);
    let back: PersistedChannel = decode(&bytes, 4096).unwrap();
    assert_eq!(back, snap);
    let restored = Channel::restore(back, keypair_b()).unwrap();
    assert_eq!(restored.transferred_in(), 6);
    assert_eq!(restored.received_durable(), 6);
    assert_eq!(restored.balances(), p.b.ch.balances());
    // B's record with A's key: the stored proofs are of the wrong directions.
    assert!(matches!(
        Channel::restore(snap.clone(), keypair_a()),
        Err(ChannelError::BadStoredState(_))
    ));
    assert_eq!(
        Channel::restore(snap.clone(), Keypair::from_seed([3; 32])).unwrap_err(),
        ChannelError::NotAParty
    );
    let bad = PersistedChannel { format: 99, ..snap };
    assert!(matches!(
        Channel::restore(bad, keypair_b()),
        Err(ChannelError::BadStoredState(_))
    ));
}

#[test]
fn persist_callbacks_reject_what_was_never_asked() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 2, 1);
    p.b.ch.receive(&items).unwrap();
    assert!(matches!(
        p.b.ch.incoming_persisted(1),
        Err(ChannelError::UnexpectedPersist(_))
    ));
    assert!(matches!(
        p.b.ch.incoming_persisted(3),
        Err(ChannelError::UnexpectedPersist(_))
    ));
    assert!(p.b.ch.incoming_persisted(2).unwrap().is_some());
    assert_eq!(
        p.b.ch.incoming_persisted(2).unwrap(),
        None,
        "stale report is a no-op"
    );
    let other = negotiate(5, 5);
    let mut foreign = p.b.ch.snapshot();
    foreign.signed_open.open.deposit_a = other.open.deposit_a;
    assert!(p.b.ch.persisted(&foreign).is_err());
}

#[test]
fn restored_payer_continues_from_the_payees_report_in_a_fresh_seq_range() {
    let mut p = open_pair(1_000, 0);
    // 10 proofs; B persists and acks the first 5; A stores its acked proof; then B takes 5
    // more and persists them without the ack reaching A; A crashes.
    let items = pay_items(&mut p.a.ch, 10, 7);
    p.b.ch.receive(&items[..5]).unwrap();
    let ack = p.b.persist().unwrap();
    p.a.ch.handle_message(&ack).unwrap();
    p.a.persist();
    p.b.ch.receive(&items[5..]).unwrap();
    let _lost_ack = p.b.persist();
    let old_reserved = p.a.disk.seq_reserved;
    p.a.crash();
    assert_eq!(
        p.a.ch.transferred_out(),
        35,
        "before reestablish only the stored ack is known"
    );
    assert_eq!(p.a.ch.pay(1, Hash32::ZERO), Err(ChannelError::NotReestablished));
    assert_eq!(p.a.ch.receive(&items[..1]), Err(ChannelError::NotReestablished));

    p.reconnect();
    assert_eq!(p.a.ch.transferred_out(), 70);
    assert_eq!(p.a.ch.acked_outgoing().unwrap().proof.seq, 10);
    // The fresh range needs its reservation first.
    let err = p.a.ch.pay(1, Hash32::ZERO).unwrap_err();
    assert!(matches!(err, ChannelError::NeedsReservation { up_to } if up_to > old_reserved));
    p.a.persist();
    let proof = p.a.ch.pay(1, Hash32::ZERO).unwrap();
    assert_eq!(proof.proof.seq, old_reserved + 1);
    assert_eq!(proof.proof.prev, items[9].proof.proof.hash());
    assert_eq!(proof.proof.transferred, 71);
    let msg = frame(
        &p.a.ch,
        vec![item(
            proof,
            paychan_protocol::Payment {
                amount: 1,
                reference: Hash32::ZERO,
            },
        )],
    );
    p.a_to_b(&msg);
    assert_eq!(p.b.ch.transferred_in(), 71);
    assert_eq!(p.a.ch.unacked_len(), 0);
}

#[test]
fn restored_payee_gets_its_lost_proofs_retransmitted() {
    let mut p = open_pair(1_000, 0);
    let items = pay_items(&mut p.a.ch, 10, 1);
    p.b.ch.receive(&items[..4]).unwrap();
    let ack = p.b.persist().unwrap();
    p.a.ch.handle_message(&ack).unwrap();
    p.b.ch.receive(&items[4..]).unwrap(); // verified, never persisted
    p.b.crash();
    assert_eq!(p.b.ch.transferred_in(), 4);
    p.a.ch.peer_disconnected();
    let ra = p.a.ch.peer_connected().unwrap();
    let rb = p.b.ch.peer_connected().unwrap();
    let ChannelMsg::Reestablish { newest_from_you, .. } = &rb else {
        panic!()
    };
    assert_eq!(newest_from_you.unwrap().proof.seq, 4);
    let frames = p.a.ch.handle_message(&rb).unwrap().send;
    assert_eq!(frames.len(), 1);
    let ChannelMsg::Pay { items: resent, .. } = &frames[0] else {
        panic!()
    };
    assert_eq!(resent.as_slice(), &items[4..]);
    p.b.ch.handle_message(&ra).unwrap();
    p.a_to_b(&frames[0]);
    assert_eq!(p.b.ch.received_durable(), 10);
    assert_eq!(p.a.ch.unacked_len(), 0);
}

#[test]
fn reconnect_waits_for_unpersisted_incoming_proofs_before_reestablishing() {
    let mut p = open_pair(1_000, 0);
    let items = pay_items(&mut p.a.ch, 3, 1);
    p.b.ch.receive(&items).unwrap();
    p.b.ch.peer_disconnected();
    assert_eq!(
        p.b.ch.peer_connected(),
        None,
        "a verified proof must be durable first"
    );
    let reest = p.b.persist().expect("the reestablish comes with the persist");
    let ChannelMsg::Reestablish { newest_from_you, .. } = &reest else {
        panic!("{reest:?}")
    };
    assert_eq!(newest_from_you.unwrap(), items[2].proof);
    p.a.ch.peer_disconnected();
    let _ = p.a.ch.peer_connected();
    assert!(
        p.a.ch.handle_message(&reest).unwrap().send.is_empty(),
        "everything reported: nothing to resend"
    );
    assert_eq!(p.a.ch.unacked_len(), 0);
    // A duplicate Reestablish on the same connection is ignored.
    assert!(p.a.ch.handle_message(&reest).unwrap().send.is_empty());
}

#[test]
fn reconnect_without_crash_retransmits_lost_frames_in_order() {
    let mut p = open_pair(1_000_000, 0);
    let lost = pay_items(&mut p.a.ch, 700, 1); // never delivered
    assert_eq!(lost.len(), 700);
    p.reconnect();
    // Retransmitted in two frames (PAY_PROOFS_MAX = 512), delivered by `reconnect`.
    assert_eq!(p.b.ch.received_durable(), 700);
    assert_eq!(p.a.ch.unacked_len(), 0);
}

#[test]
fn reestablish_rejects_lost_acks_forgeries_and_mismatches() {
    let mut p = open_pair(1_000, 0);
    let items = pay_items(&mut p.a.ch, 3, 1);
    p.b.ch.receive(&items).unwrap();
    let ack = p.b.persist().unwrap();
    p.a.ch.handle_message(&ack).unwrap();
    let _ = pay_items(&mut p.a.ch, 2, 1);
    p.a.ch.peer_disconnected();
    let _ = p.a.ch.peer_connected();
    let before = fingerprint(&p.a.ch);
    let id = p.a.ch.id();
    let reest = |proof: Option<SignedProof>| ChannelMsg::Reestablish {
        channel_id: id,
        newest_from_you: proof,
    };
    // Older than what B acked: B lost data it promised was durable.
    let err = p.a.ch.handle_message(&reest(Some(items[0].proof))).unwrap_err();
    assert_eq!(
        err,
        ChannelError::ReestablishBehind {
            reported: 1,
            acked: 3
        }
    );
    assert_eq!(
        p.a.ch.handle_message(&reest(None)).unwrap_err(),
        ChannelError::ReestablishBehind {
            reported: 0,
            acked: 3
        }
    );
    // Not A's signature.
    let forged = resign(items[2].proof.proof, &keypair_b());
    assert_eq!(
        p.a.ch.handle_message(&reest(Some(forged))).unwrap_err(),
        ChannelError::BadSignature
    );
    // A's signature, but not A's proof at that seq (A never signed seq 9).
    let body = BalanceProof {
        seq: 9,
        ..items[2].proof.proof
    };
    let err =
        p.a.ch
            .handle_message(&reest(Some(resign(body, &keypair_a()))))
            .unwrap_err();
    assert_eq!(err, ChannelError::ReestablishMismatch { seq: 9 });
    // Another direction.
    let b_proof = pay_items(&mut p.b.ch, 1, 0)[0].proof;
    assert_eq!(
        p.a.ch.handle_message(&reest(Some(b_proof))).unwrap_err(),
        ChannelError::WrongDirection
    );
    assert_eq!(fingerprint(&p.a.ch), before);
    assert_eq!(
        p.a.ch
            .handle_message(&reest(Some(items[2].proof)))
            .unwrap()
            .send
            .len(),
        1
    );
}

#[test]
fn restored_payer_skips_past_a_reported_seq_above_its_stored_reservation() {
    // Restoring an old backup: the peer reports a proof signed beyond the stored bound.
    let mut p = open_pair(1_000, 0);
    let old_disk = p.a.disk.clone();
    let items = pay_items(&mut p.a.ch, 2, 1);
    p.b.ch.receive(&items).unwrap();
    p.b.persist();
    let mut backup = old_disk.clone();
    backup.seq_reserved = 1; // pretend the backup predates the reservation that covered seq 2
    p.a.disk = backup;
    p.a.crash();
    p.reconnect();
    assert_eq!(p.a.ch.next_seq(), 3);
    assert!(
        matches!(p.a.ch.pay(1, Hash32::ZERO), Err(ChannelError::NeedsReservation { up_to }) if up_to >= 3)
    );
    p.a.persist();
    assert_eq!(p.a.ch.pay(1, Hash32::ZERO).unwrap().proof.seq, 3);
}

// ----- closing -----

#[test]
fn cooperative_close_after_all_acks() {
    let mut p = open_pair(100, 50);
    let m = pay_frame(&mut p.a.ch, 3, 10);
    let b_in_flight = pay_items(&mut p.b.ch, 1, 5); // B's payment is still in flight
    assert_eq!(
        p.a.ch.propose_close().unwrap_err(),
        ChannelError::UnackedProofs { unacked: 3 }
    );
    p.a_to_b(&m);
    let proposal = p.a.ch.propose_close().unwrap();
    assert_eq!(p.a.ch.status(), ChannelStatus::ShuttingDown);
    assert!(matches!(
        p.a.ch.pay(1, Hash32::ZERO),
        Err(ChannelError::Status { .. })
    ));
    let ChannelMsg::ClosePropose { close, .. } = &proposal else {
        panic!()
    };
    assert_eq!(
        (close.balance_a, close.balance_b),
        (70, 80),
        "A has not seen B's 5"
    );
    // B's view counts its unacked 5 as paid (75), so A's proposal gives B more: B signs.
    assert_eq!(p.b.ch.holder_balance(), 75);
    let h = p.b.ch.handle_message(&proposal).unwrap();
    let signed_b = h.coop_close.unwrap();
    assert!(signed_b
        .verify(&keypair_a().public(), &keypair_b().public())
        .is_ok());
    let signed_a = p.a.ch.handle_message(&h.send[0]).unwrap().coop_close.unwrap();
    assert_eq!(signed_a, signed_b);
    assert_eq!(p.a.ch.coop_close_tx(), Some(Tx::CoopClose(signed_a)));
    assert!(matches!(p.b.ch.close_state(), CloseState::CoopSigned(_)));
    assert_eq!(p.b.ch.status(), ChannelStatus::ShuttingDown);
    // Both stop taking payments.
    assert!(matches!(
        p.a.ch.receive(&b_in_flight),
        Err(ChannelError::Status { .. })
    ));
    assert!(matches!(
        p.b.ch.pay(1, Hash32::ZERO),
        Err(ChannelError::Status { .. })
    ));
}

#[test]
fn close_proposals_that_shortchange_the_acceptor_are_refused() {
    let mut p = open_pair(100, 50);
    let m = pay_frame(&mut p.a.ch, 1, 10);
    p.a_to_b(&m);
    let ChannelMsg::ClosePropose {
        close: honest,
        sig: honest_sig,
    } = p.a.ch.propose_close().unwrap()
    else {
        panic!()
    };
    let mut close = honest;
    let ka = keypair_a();
    let before = fingerprint(&p.b.ch);
    close.balance_a += 1;
    close.balance_b -= 1;
    let sig = close.sign(&ka);
    let err = p.b.ch.on_close_propose(&close, &sig).unwrap_err();
    assert_eq!(
        err,
        ChannelError::CloseUnacceptable {
            offered: 59,
            expected: 60
        }
    );
    close.balance_b += 2;
    let sig = close.sign(&ka);
    assert_eq!(
        p.b.ch.on_close_propose(&close, &sig).unwrap_err(),
        ChannelError::CloseBalanceMismatch
    );
    // The honest balances under a signature over other balances.
    assert_eq!(
        p.b.ch.on_close_propose(&honest, &sig).unwrap_err(),
        ChannelError::BadSignature
    );
    let mut wrong_chain = honest;
    wrong_chain.chain_id = Hash32([9; 32]);
    assert!(matches!(
        p.b.ch.on_close_propose(&wrong_chain, &honest_sig),
        Err(ChannelError::WrongChain { .. })
    ));
    assert_eq!(fingerprint(&p.b.ch), before);
    assert!(p.b.ch.on_close_propose(&honest, &honest_sig).is_ok());
}

#[test]
fn unilateral_close_answer_and_payouts() {
    let mut p = open_pair(100, 50);
    let m = pay_frame(&mut p.a.ch, 4, 10); // A pays 40
    p.a_to_b(&m);
    let m = pay_frame(&mut p.b.ch, 1, 15); // B pays 15
    p.b_to_a(&m);
    let b_newest = *p.b.ch.newest_incoming().unwrap();

    let tx = p.b.ch.unilateral_close_tx().unwrap();
    assert!(tx.verify_own_signature().is_ok());
    let Tx::UnilateralClose { body, .. } = &tx else {
        panic!()
    };
    assert_eq!(body.proof_ab, Some(b_newest));
    assert_eq!(
        body.proof_ba, None,
        "the closer leaves its own direction to the peer"
    );
    assert_eq!(p.b.ch.status(), ChannelStatus::Closing);
    assert!(matches!(
        p.b.ch.pay(1, Hash32::ZERO),
        Err(ChannelError::Status { .. })
    ));

    // A answers with its newest incoming proof (B to A) when the ledger holds less.
    let Some(Tx::Update(u)) = p.a.ch.answer_close(40, 0) else {
        panic!()
    };
    assert_eq!(
        (u.proof_ab, u.proof_ba.map(|x| x.proof.transferred)),
        (None, Some(15))
    );
    assert_eq!(p.a.ch.answer_close(40, 15), None);
    assert_eq!(
        p.b.ch.answer_close(40, 0),
        None,
        "B holds nothing newer for A to B"
    );
    assert!(p.b.ch.answer_close(39, 0).is_some());

    let expect = settle_payouts(100, 50, 40, 15);
    assert_eq!(expect, (75, 75));
    let pa = p.a.ch.expected_payouts(40, 0);
    let pb = p.b.ch.expected_payouts(40, 0);
    assert_eq!((pa.a, pa.b), expect);
    assert_eq!((pb.a, pb.b), expect);
    p.a.ch.on_close_seen();
    assert_eq!(p.a.ch.status(), ChannelStatus::Closing);
    p.a.ch.on_settled();
    assert_eq!(p.a.ch.status(), ChannelStatus::Closed);
}

#[test]
fn balances_sum_to_the_total_in_both_views() {
    let mut p = open_pair(1_000, 300);
    for round in 0..20u64 {
        let m = pay_frame(&mut p.a.ch, 1 + round % 3, 7);
        p.a_to_b(&m);
        let m = pay_frame(&mut p.b.ch, 1 + round % 2, 11);
        p.b_to_a(&m);
        for ch in [&p.a.ch, &p.b.ch] {
            let (a, b) = ch.balances();
            assert_eq!(a + b, ch.total());
            assert_eq!(ch.holder_balance() + ch.counterparty_balance(), 1_300);
        }
        assert_eq!(p.a.ch.balances(), p.b.ch.balances());
    }
}

#[test]
fn too_many_unpersisted_bursts_ask_for_a_persist() {
    let mut p = open_pair(1_000_000, 0);
    for _ in 0..paychan_channel::UNPERSISTED_BURSTS_MAX {
        let items = pay_items(&mut p.a.ch, 1, 1);
        p.b.ch.receive(&items).unwrap();
    }
    let items = pay_items(&mut p.a.ch, 1, 1);
    let before = fingerprint(&p.b.ch);
    let err = p.b.ch.receive(&items).unwrap_err();
    assert!(matches!(err, ChannelError::PersistBacklog { .. }) && err.is_retryable());
    assert_eq!(fingerprint(&p.b.ch), before);
    let ack = p.b.persist().unwrap();
    p.a.ch.handle_message(&ack).unwrap();
    assert!(p.b.ch.receive(&items).is_ok());
}

// ----- hostile input: never a panic, and a refusal never changes anything -----

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// One way to spoil a valid burst or message.
    #[derive(Clone, Debug)]
    enum Spoil {
        Seq(usize, u64),
        Transferred(usize, u64),
        Prev(usize, u8),
        Memo(usize, u64),
        Sig(usize),
        Direction(usize),
        Drop(usize),
        Ack(u64, u8, bool),
        Reestablish(u64, u64),
        Close(u64, u64),
    }

    fn spoil() -> impl Strategy<Value = Spoil> {
        prop_oneof![
            (0usize..4, any::<u64>()).prop_map(|(i, v)| Spoil::Seq(i, v)),
            (0usize..4, any::<u64>()).prop_map(|(i, v)| Spoil::Transferred(i, v)),
            (0usize..4, 1u8..).prop_map(|(i, v)| Spoil::Prev(i, v)),
            (0usize..4, any::<u64>()).prop_map(|(i, v)| Spoil::Memo(i, v)),
            (0usize..64).prop_map(Spoil::Sig),
            (0usize..4).prop_map(Spoil::Direction),
            (0usize..3).prop_map(Spoil::Drop),
            (any::<u64>(), any::<u8>(), any::<bool>()).prop_map(|(s, h, d)| Spoil::Ack(s, h, d)),
            (any::<u64>(), any::<u64>()).prop_map(|(s, t)| Spoil::Reestablish(s, t)),
            (any::<u64>(), any::<u64>()).prop_map(|(a, b)| Spoil::Close(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn spoiled_input_is_refused_without_a_trace(s in spoil()) {
            let mut p = open_pair(1_000, 1_000);
            let first = pay_frame(&mut p.a.ch, 2, 5);
            p.a_to_b(&first);
            let mut items = pay_items(&mut p.a.ch, 4, 3);
            let id = p.b.ch.id();
            let msg = match s {
                Spoil::Seq(i, v) => {
                    prop_assume!(v != items[i].proof.proof.seq);
                    items[i].proof.proof.seq = v;
                    frame(&p.b.ch, items)
                }
                Spoil::Transferred(i, v) => {
                    prop_assume!(v != items[i].proof.proof.transferred);
                    items[i].proof.proof.transferred = v;
                    frame(&p.b.ch, items)
                }
                Spoil::Prev(i, v) => {
                    items[i].proof.proof.prev.0[0] ^= v;
                    frame(&p.b.ch, items)
                }
                Spoil::Memo(i, v) => {
                    prop_assume!(v != 3);
                    items[i].payments[0].amount = v;
                    frame(&p.b.ch, items)
                }
                Spoil::Sig(b) => {
                    // The newest proof's: only its signature is checked in the default mode.
                    items[3].proof.signature.0[b] ^= 1;
                    frame(&p.b.ch, items)
                }
                Spoil::Direction(i) => {
                    items[i].proof.proof.direction = Direction::BToA;
                    frame(&p.b.ch, items)
                }
                Spoil::Drop(i) => {
                    items.remove(i);
                    frame(&p.b.ch, items)
                }
                Spoil::Ack(seq, h, dir) => ChannelMsg::Ack {
                    channel_id: id,
                    direction: if dir { Direction::BToA } else { Direction::AToB },
                    seq,
                    hash: Hash32([h; 32]),
                },
                Spoil::Reestablish(seq, t) => {
                    let mut proof = *p.b.ch.newest_incoming().unwrap();
                    prop_assume!((seq, t) != (proof.proof.seq, proof.proof.transferred));
                    // A new connection, so that A waits for B's Reestablish.
                    p.a.ch.peer_disconnected();
                    let _ = p.a.ch.peer_connected();
                    proof.proof.seq = seq;
                    proof.proof.transferred = t;
                    ChannelMsg::Reestablish { channel_id: id, newest_from_you: Some(proof) }
                }
                Spoil::Close(a, b) => {
                    let close = paychan_protocol::channel::CoopClose {
                        chain_id: chain_id(),
                        channel_id: id,
                        balance_a: a,
                        balance_b: b,
                    };
                    ChannelMsg::ClosePropose { close, sig: close.sign(&Keypair::from_seed([5; 32])) }
                }
            };
            // B receives the spoiled burst or message (A for messages about A's direction).
            let target = match msg {
                ChannelMsg::Ack { .. } | ChannelMsg::Reestablish { .. } => &mut p.a.ch,
                _ => &mut p.b.ch,
            };
            let before = fingerprint(target);
            let result = target.handle_message(&msg);
            match result {
                Err(e) => prop_assert_eq!(fingerprint(target), before, "{:?}", e),
                Ok(h) => {
                    // Only a harmless message may pass: a stale ack.
                    prop_assert!(h.received.is_none() && h.coop_close.is_none() && h.send.is_empty());
                    prop_assert_eq!(fingerprint(target), before);
                }
            }
        }
    }
}

// ----- runs of proofs signed together -----

/// Signs on four threads, one contiguous chunk each, joined in reverse order, to show that a
/// run keeps seq order whatever order the signatures are made in.
struct FourThreads;

impl ProofSigner for FourThreads {
    fn sign_all(&self, key: &Keypair, bodies: &[BalanceProof]) -> Vec<SignedProof> {
        let chunk = bodies.len().div_ceil(4).max(1);
        let mut parts: Vec<Vec<SignedProof>> = vec![Vec::new(); bodies.len().div_ceil(chunk)];
        std::thread::scope(|s| {
            let handles: Vec<_> = bodies
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().map(|b| b.sign(key)).collect::<Vec<_>>()))
                .collect();
            for (i, h) in handles.into_iter().enumerate().rev() {
                parts[i] = h.join().unwrap();
            }
        });
        parts.into_iter().flatten().collect()
    }
}

#[test]
fn a_run_signs_what_single_payments_would_in_seq_order() {
    let mut one = open_pair(1_000, 0);
    let mut run = open_pair(1_000, 0);
    let pays = [payment(3, 1), payment(4, 2)];
    let singles: Vec<SignedProof> = (0..40).map(|_| one.a.ch.pay_many(&pays).unwrap()).collect();
    let got = run.a.ch.pay_run(&pays, 40, &FourThreads).unwrap();
    assert_eq!(got.stopped, None);
    assert_eq!(got.proofs, singles, "the same proofs, in seq order");
    assert_eq!(fingerprint(&run.a.ch), fingerprint(&one.a.ch));
    // The payee takes the run as one burst and acks its newest.
    let items: Vec<PayItem> = got
        .proofs
        .iter()
        .map(|p| PayItem {
            proof: *p,
            payments: pays.to_vec(),
        })
        .collect();
    let r = run.b.ch.receive(&items).unwrap();
    assert_eq!(r.newest.proof.seq, 40);
    assert_eq!(run.b.ch.transferred_in(), 280);
}

#[test]
fn a_run_stops_at_funds_and_at_the_window_and_changes_nothing_when_empty() {
    // Funds: 10 proofs of 3 fit in 31, the 11th does not.
    let mut p = open_pair(31, 0);
    let got = p.a.ch.pay_run(&[payment(3, 1)], 50, &InlineSigner).unwrap();
    assert_eq!(got.proofs.len(), 10);
    assert!(matches!(
        got.stopped,
        Some(ChannelError::InsufficientFunds {
            available: 1,
            amount: 3
        })
    ));
    let before = fingerprint(&p.a.ch);
    let err = p.a.ch.pay_run(&[payment(3, 1)], 5, &InlineSigner).unwrap_err();
    assert!(matches!(err, ChannelError::InsufficientFunds { .. }));
    assert_eq!(fingerprint(&p.a.ch), before, "a refused run changed the state");

    // The window: a run never fills it past its bound.
    let mut p = open_pair(u64::MAX / 2, 0);
    let got =
        p.a.ch
            .pay_run(&[payment(1, 1)], UNACKED_PROOFS_MAX + 7, &FourThreads)
            .unwrap();
    assert_eq!(got.proofs.len(), UNACKED_PROOFS_MAX);
    assert_eq!(
        got.stopped,
        Some(ChannelError::WindowFull {
            unacked: UNACKED_PROOFS_MAX
        })
    );
    assert_eq!(p.a.ch.unacked_len(), UNACKED_PROOFS_MAX);
}

#[test]
fn a_run_never_signs_past_the_durable_reservation_so_a_crash_cannot_reuse_a_seq() {
    let mut p = open_pair(u64::MAX / 2, 0);
    // Sign the whole durable range in runs; the reservation write is requested but lost.
    let mut signed = Vec::new();
    loop {
        match p.a.ch.pay_run(&[payment(1, 1)], 1_000, &FourThreads) {
            Ok(run) => {
                signed.extend(run.proofs);
                if let Some(e) = run.stopped {
                    assert!(matches!(e, ChannelError::NeedsReservation { .. }), "{e:?}");
                    break;
                }
                // Let acks free the window, but never persist the next reservation.
                let newest = *signed.last().unwrap();
                p.a.ch
                    .on_ack(newest.proof.direction, newest.proof.seq, newest.proof.hash())
                    .unwrap();
            }
            Err(e) => {
                assert!(matches!(e, ChannelError::NeedsReservation { .. }), "{e:?}");
                break;
            }
        }
    }
    let top = signed.last().unwrap().proof.seq;
    assert!(
        top <= p.a.disk.seq_reserved,
        "signed seq {top} past the durable bound"
    );
    // Crash: the restored payer starts above everything it may have signed.
    p.a.crash();
    p.reconnect();
    let next = p.a.ch.pay_run(&[payment(1, 1)], 1, &InlineSigner);
    let next = match next {
        Ok(run) => run.proofs[0].proof.seq,
        Err(ChannelError::NeedsReservation { .. }) => {
            p.a.persist();
            p.a.ch.pay_run(&[payment(1, 1)], 1, &InlineSigner).unwrap().proofs[0]
                .proof
                .seq
        }
        Err(e) => panic!("{e:?}"),
    };
    assert!(next > top, "seq {next} after a crash, {top} was signed before it");
}

#[test]
fn a_detached_proof_is_taken_without_a_second_signature_check_only_if_it_is_the_checked_one() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 1, 3);
    let checked = p.b.ch.check_detached(&items).expect("a good proof passes");
    assert_eq!(checked.amount, 3);
    // Another proof than the checked one (here a forged signature on the same body) is
    // checked in full and refused, changing nothing.
    let mut forged = items.clone();
    forged[0].proof.signature.0[0] ^= 1;
    assert_eq!(p.b.ch.check_detached(&forged), Err(ChannelError::BadSignature));
    let before = fingerprint(&p.b.ch);
    assert_eq!(
        p.b.ch.receive_detached_verified(&forged, &checked.newest),
        Err(ChannelError::BadSignature)
    );
    assert_eq!(fingerprint(&p.b.ch), before);
    // The checked one is taken; every other check still runs: taking it twice is refused.
    let taken = p.b.ch.receive_detached_verified(&items, &checked.newest).unwrap();
    assert_eq!((taken.amount, taken.newest), (3, items[0].proof));
    assert_eq!(p.b.ch.transferred_in(), 3);
    let again =
        p.b.ch
            .receive_detached_verified(&items, &checked.newest)
            .unwrap_err();
    assert!(
        matches!(again, ChannelError::SeqNotIncreasing { .. }),
        "{again:?}"
    );
}

#[test]
fn the_unsigned_detached_check_runs_every_check_but_the_signature() {
    let mut p = open_pair(100, 100);
    let items = pay_items(&mut p.a.ch, 1, 3);
    let before = fingerprint(&p.b.ch);
    let mut forged = items.clone();
    forged[0].proof.signature.0[0] ^= 1;
    // The caller verifies the signature (in a batch with others): the rest passes.
    assert_eq!(p.b.ch.check_detached_unsigned(&forged).unwrap().amount, 3);
    assert_eq!(p.b.ch.check_detached(&forged), Err(ChannelError::BadSignature));
    // Every other check still runs.
    let mut unlinked = items.clone();
    unlinked[0].proof.proof.prev = Hash32([9; 32]);
    assert!(
        matches!(
            p.b.ch.check_detached_unsigned(&unlinked),
            Err(ChannelError::BadPrevLink { .. })
        ),
        "a proof that does not link to the newest is refused"
    );
    assert_eq!(fingerprint(&p.b.ch), before, "a check changes nothing");
}

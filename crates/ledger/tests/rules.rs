//! Every transaction kind: its accept path and each typed rejection. Every rejection is checked
//! to leave the state exactly as it was.

use paychan_ledger::testkit::{TestNet, TestParams};
use paychan_ledger::{ChannelStatus, ErrorClass, LedgerState, TxEffect, TxError};
use paychan_protocol::channel::SignedOpen;
use paychan_protocol::ledger::Transfer;
use paychan_protocol::{ChannelId, Direction, Hash32, Keypair, Tx};

const BAL: u64 = 10_000;

struct Fx {
    net: TestNet,
    other: TestNet,
    s: LedgerState,
    a: Keypair,
    b: Keypair,
    c: Keypair,
    t: u64,
}

fn fx() -> Fx {
    let net = TestNet::new(3, BAL);
    // Same keys, another genesis: another chain id.
    let other = TestNet::with_params(TestParams {
        users: 3,
        balance: BAL,
        genesis_time_ms: 1,
        ..TestParams::default()
    });
    Fx {
        s: net.state(),
        a: net.users[0].clone(),
        b: net.users[1].clone(),
        c: net.users[2].clone(),
        t: net.genesis.genesis_time_ms + 1_000,
        other,
        net,
    }
}

impl Fx {
    #[track_caller]
    fn ok(&mut self, tx: &Tx) -> TxEffect {
        let effect = self.s.apply_tx(tx, self.t).expect("accepted");
        assert_eq!(self.s.total_value(), self.s.genesis_supply());
        effect
    }

    #[track_caller]
    fn reject(&mut self, tx: &Tx) -> TxError {
        let before = self.s.clone();
        let root = self.s.state_root();
        let err = self.s.apply_tx(tx, self.t).expect_err("rejected");
        assert_eq!(self.s, before, "a rejected transaction changes nothing");
        assert_eq!(self.s.state_root(), root);
        assert_eq!(
            self.s.check_tx(tx, self.t),
            Err(err.clone()),
            "check and apply agree"
        );
        err
    }

    /// An open channel between a and b with deposits (1000, 500).
    fn channel(&mut self, salt: u64) -> ChannelId {
        let (tx, id) = self
            .net
            .open(&self.a, &self.b, (1_000, 500), salt, self.t + 60_000);
        self.ok(&tx);
        id
    }

    fn proof(
        &self,
        dir: Direction,
        id: ChannelId,
        seq: u64,
        transferred: u64,
    ) -> paychan_protocol::SignedProof {
        let payer = match dir {
            Direction::AToB => &self.a,
            Direction::BToA => &self.b,
        };
        self.net.proof(payer, id, dir, seq, transferred)
    }

    /// A channel in its challenge window, closed by a with no proofs.
    fn closing(&mut self, salt: u64) -> ChannelId {
        let id = self.channel(salt);
        let close = self.net.unilateral_close(&self.a, id, None, None);
        self.ok(&close);
        id
    }

    fn window_end(&self, id: ChannelId) -> u64 {
        self.s.window_end_ms(&id).expect("closing")
    }
}

fn flip_sig(tx: &mut Tx) {
    match tx {
        Tx::Transfer { sig, .. }
        | Tx::Deposit { sig, .. }
        | Tx::UnilateralClose { sig, .. }
        | Tx::CreditGrant { sig, .. }
        | Tx::Repay { sig, .. } => sig.0[0] ^= 1,
        Tx::Open(o) => o.sig_b.0[5] ^= 0x10,
        Tx::CoopClose(c) => c.sig_a.0[63] ^= 0x01,
        Tx::Update(u) => {
            let p = u.proof_ab.as_mut().or(u.proof_ba.as_mut()).expect("a proof");
            p.signature.0[1] ^= 1;
        }
        Tx::Settle(_) => unreachable!("settles carry no signature"),
    }
}

// ---------------------------------------------------------------------------------- transfer

#[test]
fn transfer_accepts_and_moves_funds() {
    let mut f = fx();
    let tx = f.net.transfer(&f.a, f.b.public(), 300, 0);
    assert_eq!(
        f.ok(&tx),
        TxEffect::Transferred {
            from: f.a.public(),
            to: f.b.public(),
            amount: 300
        }
    );
    assert_eq!(f.s.balance(&f.a.public()), BAL - 300);
    assert_eq!(f.s.balance(&f.b.public()), BAL + 300);
    assert_eq!(f.s.nonce(&f.a.public()), 1);
    assert_eq!(f.s.nonce(&f.b.public()), 0);
    assert_eq!(f.s.tx_log_index(&tx.id()), Some(0));
    // Spending the whole balance is fine; a new account is created on receipt.
    let fresh = paychan_ledger::testkit::keypair(77);
    f.ok(&f.net.transfer(&f.a, fresh.public(), BAL - 300, 1));
    assert_eq!(f.s.balance(&f.a.public()), 0);
    assert_eq!(f.s.account(&fresh.public()).map(|a| a.balance), Some(BAL - 300));
}

#[test]
fn transfer_rejections() {
    let mut f = fx();
    let tx = f.net.transfer(&f.a, f.b.public(), 1, 0);

    let mut bad = tx.clone();
    flip_sig(&mut bad);
    assert_eq!(f.reject(&bad), TxError::BadSignature);
    assert_eq!(TxError::BadSignature.class(), ErrorClass::Violation);

    // Signed by someone else than `from`.
    let forged = Tx::transfer(
        Transfer {
            chain_id: f.net.chain_id,
            from: f.a.public(),
            to: f.b.public(),
            amount: 1,
            nonce: 0,
        },
        &f.b,
    );
    assert_eq!(f.reject(&forged), TxError::BadSignature);

    assert!(matches!(
        f.reject(&f.other.transfer(&f.a, f.b.public(), 1, 0)),
        TxError::WrongChain { .. }
    ));
    let ahead = f.reject(&f.net.transfer(&f.a, f.b.public(), 1, 1));
    assert_eq!(ahead, TxError::BadNonce { expected: 0, got: 1 });
    assert_eq!(ahead.class(), ErrorClass::Retryable);
    assert_eq!(
        f.reject(&f.net.transfer(&f.a, f.b.public(), BAL + 1, 0)),
        TxError::Overdraft {
            needed: BAL + 1,
            available: BAL
        }
    );
    assert_eq!(
        f.reject(&f.net.transfer(&f.a, f.b.public(), 0, 0)),
        TxError::ZeroAmount
    );
    assert_eq!(
        f.reject(&f.net.transfer(&f.a, f.a.public(), 1, 0)),
        TxError::SelfTransfer
    );
    let unfunded = paychan_ledger::testkit::keypair(99);
    assert!(matches!(
        f.reject(&f.net.transfer(&unfunded, f.a.public(), 1, 0)),
        TxError::Overdraft { available: 0, .. }
    ));

    f.ok(&tx);
    // Replaying an included transaction is answered precisely, not as a nonce error.
    assert_eq!(f.reject(&tx), TxError::AlreadyIncluded { index: 0 });
    let stale = f.reject(&f.net.transfer(&f.a, f.b.public(), 2, 0));
    assert_eq!(stale, TxError::BadNonce { expected: 1, got: 0 });
    assert_eq!(stale.class(), ErrorClass::Rejected);
}

// -------------------------------------------------------------------------------------- open

#[test]
fn open_accepts_and_locks_deposits() {
    let mut f = fx();
    let (tx, id) = f.net.open(&f.a, &f.b, (1_000, 500), 1, f.t);
    assert!(matches!(f.ok(&tx), TxEffect::Opened { channel_id, .. } if channel_id == id));
    let c = f.s.channel(&id).expect("channel");
    assert_eq!((c.deposit_a, c.deposit_b, c.total()), (1_000, 500, 1_500));
    assert_eq!(c.status, ChannelStatus::Open);
    assert_eq!(f.s.balance(&f.a.public()), BAL - 1_000);
    assert_eq!(f.s.balance(&f.b.public()), BAL - 500);
    // An open consumes no nonce.
    assert_eq!(f.s.nonce(&f.a.public()), 0);

    // A one-sided channel with an unfunded acceptor: no account is created for it.
    let fresh = paychan_ledger::testkit::keypair(55);
    let (tx, _) = f.net.open(&f.a, &fresh, (10, 0), 2, f.t);
    f.ok(&tx);
    assert!(f.s.account(&fresh.public()).is_none());
}

#[test]
fn open_rejections() {
    let mut f = fx();
    let exp = f.t + 1;
    let (tx, _) = f.net.open(&f.a, &f.b, (1, 1), 1, exp);
    let mut bad = tx.clone();
    flip_sig(&mut bad);
    assert_eq!(f.reject(&bad), TxError::BadSignature);
    // B's signature made by C.
    if let Tx::Open(o) = &tx {
        let forged = Tx::Open(SignedOpen {
            sig_b: o.open.sign(&f.c),
            ..o.clone()
        });
        assert_eq!(f.reject(&forged), TxError::BadSignature);
    }
    assert!(matches!(
        f.reject(&f.other.open(&f.a, &f.b, (1, 1), 1, exp).0),
        TxError::WrongChain { .. }
    ));
    assert_eq!(
        f.reject(&f.net.open(&f.a, &f.a, (1, 1), 1, exp).0),
        TxError::SameParties
    );
    assert_eq!(
        f.reject(&f.net.open(&f.a, &f.b, (0, 0), 1, exp).0),
        TxError::EmptyChannel
    );
    assert_eq!(
        f.reject(&f.net.open(&f.a, &f.b, (u64::MAX, 1), 1, exp).0),
        TxError::Overflow
    );
    assert_eq!(
        f.reject(&f.net.open(&f.a, &f.b, (1, 1), 1, f.t - 1).0),
        TxError::Expired {
            expiry_ms: f.t - 1,
            time_ms: f.t
        }
    );
    assert!(matches!(
        f.reject(&f.net.open(&f.a, &f.b, (BAL + 1, 1), 1, exp).0),
        TxError::Overdraft { .. }
    ));
    assert!(matches!(
        f.reject(&f.net.open(&f.a, &f.b, (1, BAL + 1), 1, exp).0),
        TxError::Overdraft { .. }
    ));
    // Valid up to and including its expiry.
    f.ok(&f.net.open(&f.a, &f.b, (1, 1), 1, f.t).0);
}

// ----------------------------------------------------------------------------------- deposit

#[test]
fn deposit_accepts_for_either_party() {
    let mut f = fx();
    let id = f.channel(1);
    let eff = f.ok(&f.net.deposit(&f.a, id, 250, 0));
    assert_eq!(
        eff,
        TxEffect::Deposited {
            channel_id: id,
            from: f.a.public(),
            amount: 250
        }
    );
    f.ok(&f.net.deposit(&f.b, id, 5, 0));
    let c = f.s.channel(&id).expect("channel");
    assert_eq!((c.deposit_a, c.deposit_b), (1_250, 505));
    assert_eq!(f.s.nonce(&f.a.public()), 1);
    assert_eq!(f.s.balance(&f.a.public()), BAL - 1_250);
}

#[test]
fn deposit_rejections() {
    let mut f = fx();
    let id = f.channel(1);
    let mut bad = f.net.deposit(&f.a, id, 1, 0);
    flip_sig(&mut bad);
    assert_eq!(f.reject(&bad), TxError::BadSignature);
    assert!(matches!(
        f.reject(&f.other.deposit(&f.a, id, 1, 0)),
        TxError::WrongChain { .. }
    ));
    assert_eq!(f.reject(&f.net.deposit(&f.a, id, 0, 0)), TxError::ZeroAmount);
    let unknown = ChannelId(Hash32([3; 32]));
    assert_eq!(
        f.reject(&f.net.deposit(&f.a, unknown, 1, 0)),
        TxError::UnknownChannel(unknown)
    );
    assert_eq!(
        f.reject(&f.net.deposit(&f.c, id, 1, 0)),
        TxError::NotAParty(f.c.public())
    );
    assert_eq!(
        f.reject(&f.net.deposit(&f.a, id, 1, 3)),
        TxError::BadNonce { expected: 0, got: 3 }
    );
    assert!(matches!(
        f.reject(&f.net.deposit(&f.a, id, BAL, 0)),
        TxError::Overdraft { .. }
    ));

    let closing = f.closing(2);
    assert_eq!(
        f.reject(&f.net.deposit(&f.a, closing, 1, 0)),
        TxError::ChannelNotOpen(closing)
    );
    f.ok(&f.net.coop_close(&f.a, &f.b, id, (1_000, 500)));
    assert_eq!(
        f.reject(&f.net.deposit(&f.a, id, 1, 0)),
        TxError::ChannelClosed(id)
    );
}

// ------------------------------------------------------------------------------- coop close

#[test]
fn coop_close_pays_out_from_open_and_from_closing() {
    let mut f = fx();
    let id = f.channel(1);
    let eff = f.ok(&f.net.coop_close(&f.a, &f.b, id, (400, 1_100)));
    assert_eq!(
        eff,
        TxEffect::PaidOut {
            channel_id: id,
            cooperative: true,
            payout_a: 400,
            payout_b: 1_100
        }
    );
    assert_eq!(f.s.balance(&f.a.public()), BAL - 1_000 + 400);
    assert_eq!(f.s.balance(&f.b.public()), BAL - 500 + 1_100);
    assert_eq!(
        f.s.channel(&id).map(|c| c.status.clone()),
        Some(ChannelStatus::Closed {
            payout_a: 400,
            payout_b: 1_100
        })
    );

    // A cooperative close supersedes a unilateral one in progress.
    let id = f.closing(2);
    f.ok(&f.net.coop_close(&f.a, &f.b, id, (1_500, 0)));
    assert!(matches!(
        f.s.channel(&id).map(|c| &c.status),
        Some(ChannelStatus::Closed { .. })
    ));
}

#[test]
fn coop_close_rejections() {
    let mut f = fx();
    let id = f.channel(1);
    let mut bad = f.net.coop_close(&f.a, &f.b, id, (1_000, 500));
    flip_sig(&mut bad);
    assert_eq!(f.reject(&bad), TxError::BadSignature);
    // Both signatures by one party.
    assert_eq!(
        f.reject(&f.net.coop_close(&f.a, &f.a, id, (1_000, 500))),
        TxError::BadSignature
    );
    assert!(matches!(
        f.reject(&f.other.coop_close(&f.a, &f.b, id, (1_000, 500))),
        TxError::WrongChain { .. }
    ));
    assert_eq!(
        f.reject(&f.net.coop_close(&f.a, &f.b, id, (1_000, 501))),
        TxError::BalanceMismatch {
            sum: 1_501,
            total: 1_500
        }
    );
    assert_eq!(
        f.reject(&f.net.coop_close(&f.a, &f.b, id, (u64::MAX, 1))),
        TxError::BalanceMismatch {
            sum: u64::MAX,
            total: 1_500
        }
    );
    let unknown = ChannelId(Hash32([4; 32]));
    assert_eq!(
        f.reject(&f.net.coop_close(&f.a, &f.b, unknown, (1, 1))),
        TxError::UnknownChannel(unknown)
    );
    f.ok(&f.net.coop_close(&f.a, &f.b, id, (1_000, 500)));
    assert_eq!(
        f.reject(&f.net.coop_close(&f.a, &f.b, id, (999, 501))),
        TxError::ChannelClosed(id)
    );
}

// ------------------------------------------------------------------------- unilateral close

#[test]
fn unilateral_close_starts_the_window() {
    let mut f = fx();
    let id = f.channel(1);
    let p = f.proof(Direction::BToA, id, 3, 200);
    let eff = f.ok(&f.net.unilateral_close(&f.a, id, None, Some(p)));
    let end = f.t + f.net.genesis.challenge_period_ms;
    assert_eq!(
        eff,
        TxEffect::CloseStarted {
            channel_id: id,
            closer: f.a.public(),
            window_end_ms: end
        }
    );
    let c = f.s.channel(&id).expect("channel");
    assert_eq!(c.best(Direction::BToA), Some(&p));
    assert_eq!(c.best(Direction::AToB), None);
    assert_eq!(f.s.window_end_ms(&id), Some(end));
    // B may close too.
    let id2 = f.channel(2);
    f.ok(&f.net.unilateral_close(&f.b, id2, None, None));
}

#[test]
fn unilateral_close_rejections() {
    let mut f = fx();
    let id = f.channel(1);
    let ab = f.proof(Direction::AToB, id, 1, 10);
    let ba = f.proof(Direction::BToA, id, 1, 10);

    let mut bad = f.net.unilateral_close(&f.a, id, Some(ab), None);
    flip_sig(&mut bad);
    assert_eq!(f.reject(&bad), TxError::BadSignature);
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.c, id, None, None)),
        TxError::NotAParty(f.c.public())
    );
    let unknown = ChannelId(Hash32([5; 32]));
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.a, unknown, None, None)),
        TxError::UnknownChannel(unknown)
    );
    assert!(matches!(
        f.reject(&f.other.unilateral_close(&f.a, id, None, None)),
        TxError::WrongChain { .. }
    ));
    // A proof bound to another chain.
    let foreign = f.other.proof(&f.a, id, Direction::AToB, 1, 10);
    assert!(matches!(
        f.reject(&f.net.unilateral_close(&f.b, id, Some(foreign), None)),
        TxError::WrongChain { .. }
    ));
    // A proof of another channel.
    let other_id = f.channel(2);
    let elsewhere = f.proof(Direction::AToB, other_id, 1, 10);
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.b, id, Some(elsewhere), None)),
        TxError::WrongChannel {
            expected: id,
            got: other_id
        }
    );
    // A proof in the other direction's slot.
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.b, id, Some(ba), None)),
        TxError::WrongDirection
    );
    // A proof of A to B signed by B (the payee) instead of A.
    let by_payee = f.net.proof(&f.b, id, Direction::AToB, 1, 10);
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.b, id, Some(by_payee), None)),
        TxError::BadSignature
    );
    let mut tampered = ab;
    tampered.proof.transferred += 1;
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.b, id, Some(tampered), None)),
        TxError::BadSignature
    );

    f.ok(&f.net.unilateral_close(&f.b, id, Some(ab), Some(ba)));
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.a, id, None, Some(ba))),
        TxError::ChannelNotOpen(id)
    );
    f.ok(&f.net.coop_close(&f.a, &f.b, id, (1, 1_499)));
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.a, id, None, None)),
        TxError::ChannelClosed(id)
    );
}

// ------------------------------------------------------------------------------------ update

#[test]
fn update_raises_and_keeps_the_highest_transferred() {
    let mut f = fx();
    let id = f.closing(1);
    let ab5 = f.proof(Direction::AToB, id, 5, 50);
    let eff = f.ok(&f.net.update(id, Some(ab5), None));
    assert_eq!(
        eff,
        TxEffect::Updated {
            channel_id: id,
            raised: [true, false]
        }
    );
    // One direction raised, the other stale: accepted, and only the raise is kept.
    let ab_low = f.proof(Direction::AToB, id, 9, 40);
    let ba = f.proof(Direction::BToA, id, 1, 7);
    let eff = f.ok(&f.net.update(id, Some(ab_low), Some(ba)));
    assert_eq!(
        eff,
        TxEffect::Updated {
            channel_id: id,
            raised: [false, true]
        }
    );
    let c = f.s.channel(&id).expect("channel");
    assert_eq!(c.best(Direction::AToB), Some(&ab5));
    assert_eq!(c.best(Direction::BToA), Some(&ba));
    // The last moment of the window.
    f.t = f.window_end(id) - 1;
    f.ok(&f.net.update(id, None, Some(f.proof(Direction::BToA, id, 2, 8))));
}

#[test]
fn update_rejections() {
    let mut f = fx();
    let open = f.channel(1);
    let id = f.closing(2);
    let ab = f.proof(Direction::AToB, id, 1, 10);
    f.ok(&f.net.update(id, Some(ab), None));

    assert_eq!(f.reject(&f.net.update(id, None, None)), TxError::EmptyUpdate);
    assert_eq!(
        f.reject(&f.net.update(id, Some(ab), None)),
        TxError::AlreadyIncluded { index: 3 }
    );
    // An equal amount with another seq is stale too.
    let same = f.proof(Direction::AToB, id, 2, 10);
    assert_eq!(f.reject(&f.net.update(id, Some(same), None)), TxError::StaleProof);
    assert_eq!(TxError::StaleProof.class(), ErrorClass::Rejected);
    let mut bad = f.net.update(id, Some(f.proof(Direction::AToB, id, 3, 11)), None);
    flip_sig(&mut bad);
    assert_eq!(f.reject(&bad), TxError::BadSignature);
    // A valid raise next to a bad proof: the whole update is refused.
    let mut bad_ba = f.proof(Direction::BToA, id, 1, 1);
    bad_ba.signature.0[9] ^= 4;
    let raise = f.proof(Direction::AToB, id, 3, 11);
    assert_eq!(
        f.reject(&f.net.update(id, Some(raise), Some(bad_ba))),
        TxError::BadSignature
    );
    let open_proof = f.proof(Direction::AToB, open, 1, 10);
    assert_eq!(
        f.reject(&f.net.update(open, Some(open_proof), None)),
        TxError::ChannelNotClosing(open)
    );
    assert_eq!(
        f.reject(&f.net.update(id, Some(open_proof), None)),
        TxError::WrongChannel {
            expected: id,
            got: open
        }
    );
    let unknown = ChannelId(Hash32([6; 32]));
    assert_eq!(
        f.reject(&f.net.update(unknown, Some(raise), None)),
        TxError::UnknownChannel(unknown)
    );
    assert!(matches!(
        f.reject(&f.other.update(id, Some(raise), None)),
        TxError::WrongChain { .. }
    ));

    let end = f.window_end(id);
    f.t = end;
    assert_eq!(
        f.reject(&f.net.update(id, Some(raise), None)),
        TxError::WindowClosed { ends_ms: end }
    );
    f.ok(&f.net.settle(id));
    assert_eq!(
        f.reject(&f.net.update(id, Some(raise), None)),
        TxError::ChannelClosed(id)
    );
}

// ------------------------------------------------------------------------------------ settle

#[test]
fn settle_pays_out_by_the_best_proofs() {
    let mut f = fx();
    let id = f.channel(1);
    let ab = f.proof(Direction::AToB, id, 4, 300);
    let ba = f.proof(Direction::BToA, id, 2, 100);
    f.ok(&f.net.unilateral_close(&f.b, id, Some(ab), Some(ba)));
    f.t = f.window_end(id);
    let eff = f.ok(&f.net.settle(id));
    // payout_a = 1000 - 300 + 100.
    assert_eq!(
        eff,
        TxEffect::PaidOut {
            channel_id: id,
            cooperative: false,
            payout_a: 800,
            payout_b: 700
        }
    );
    assert_eq!(f.s.balance(&f.a.public()), BAL - 1_000 + 800);
    assert_eq!(f.s.balance(&f.b.public()), BAL - 500 + 700);
}

#[test]
fn settle_clamps_an_overpaying_proof() {
    let mut f = fx();
    let id = f.channel(1);
    let ab = f.proof(Direction::AToB, id, 1, u64::MAX);
    f.ok(&f.net.unilateral_close(&f.b, id, Some(ab), None));
    f.t = f.window_end(id);
    assert!(matches!(
        f.ok(&f.net.settle(id)),
        TxEffect::PaidOut {
            payout_a: 0,
            payout_b: 1_500,
            ..
        }
    ));
}

#[test]
fn settle_rejections() {
    let mut f = fx();
    let open = f.channel(1);
    let id = f.closing(2);
    let end = f.window_end(id);
    f.t = end - 1;
    let early = f.reject(&f.net.settle(id));
    assert_eq!(early, TxError::WindowOpen { ends_ms: end });
    assert_eq!(early.class(), ErrorClass::Retryable);
    assert_eq!(f.reject(&f.net.settle(open)), TxError::ChannelNotClosing(open));
    let unknown = ChannelId(Hash32([7; 32]));
    assert_eq!(f.reject(&f.net.settle(unknown)), TxError::UnknownChannel(unknown));
    assert!(matches!(
        f.reject(&f.other.settle(id)),
        TxError::WrongChain { .. }
    ));
    f.t = end;
    f.ok(&f.net.settle(id));
    // A settle is the same transaction every time: its replay is answered as included.
    assert!(matches!(
        f.reject(&f.net.settle(id)),
        TxError::AlreadyIncluded { .. }
    ));
    // A coop close after the settlement finds the channel closed.
    assert_eq!(
        f.reject(&f.net.coop_close(&f.a, &f.b, id, (1_000, 500))),
        TxError::ChannelClosed(id)
    );
}

// ------------------------------------------------------------------------------- scenarios

/// The payer closes with a stale proof (it paid 100 but shows 20); the payee answers within
/// the window and the channel settles at the newer balance.
#[test]
fn stale_close_is_overturned_by_an_update() {
    let mut f = fx();
    let id = f.channel(1);
    let stale = f.proof(Direction::AToB, id, 2, 20);
    let newest = f.proof(Direction::AToB, id, 10, 100);
    f.ok(&f.net.unilateral_close(&f.a, id, Some(stale), None));
    f.t += 5_000;
    f.ok(&f.net.update(id, Some(newest), None));
    f.t = f.window_end(id);
    assert!(matches!(
        f.ok(&f.net.settle(id)),
        TxEffect::PaidOut {
            payout_a: 900,
            payout_b: 600,
            ..
        }
    ));
}

#[test]
fn stale_close_settles_as_submitted_when_nobody_answers() {
    let mut f = fx();
    let id = f.channel(1);
    let stale = f.proof(Direction::AToB, id, 2, 20);
    f.ok(&f.net.unilateral_close(&f.a, id, Some(stale), None));
    f.t = f.window_end(id);
    // Too late to answer now.
    let newest = f.proof(Direction::AToB, id, 10, 100);
    assert!(matches!(
        f.reject(&f.net.update(id, Some(newest), None)),
        TxError::WindowClosed { .. }
    ));
    assert!(matches!(
        f.ok(&f.net.settle(id)),
        TxEffect::PaidOut {
            payout_a: 980,
            payout_b: 520,
            ..
        }
    ));
}

/// A payer that signs a proof with a higher seq but a lower transferred amount cannot lower what
/// it owes: the ledger keeps the highest transferred, not the highest seq.
#[test]
fn higher_seq_lower_transferred_cannot_lower_the_debt() {
    let mut f = fx();
    let id = f.channel(1);
    let honest = f.proof(Direction::AToB, id, 10, 500);
    // B closes with what A paid.
    f.ok(&f.net.unilateral_close(&f.b, id, Some(honest), None));
    // A signs a "newer" proof that pays less and submits it.
    let sneaky = f.proof(Direction::AToB, id, 11, 1);
    assert_eq!(
        f.reject(&f.net.update(id, Some(sneaky), None)),
        TxError::StaleProof
    );
    assert_eq!(
        f.s.channel(&id).and_then(|c| c.best(Direction::AToB)),
        Some(&honest)
    );
    f.t = f.window_end(id);
    assert!(matches!(
        f.ok(&f.net.settle(id)),
        TxEffect::PaidOut {
            payout_a: 500,
            payout_b: 1_000,
            ..
        }
    ));
}

/// Two channels between the same parties have different ids (different salts), so a proof of
/// the first never counts for the second.
#[test]
fn a_proof_of_an_earlier_channel_never_counts_for_a_later_one() {
    let mut f = fx();
    let first = f.channel(1);
    let old = f.proof(Direction::AToB, first, 50, 900);
    f.ok(&f.net.coop_close(&f.a, &f.b, first, (100, 1_400)));
    let second = f.channel(2);
    assert_ne!(first, second);
    assert_eq!(
        f.reject(&f.net.unilateral_close(&f.b, second, Some(old), None)),
        TxError::WrongChannel {
            expected: second,
            got: first
        }
    );
    f.ok(&f.net.unilateral_close(&f.b, second, None, None));
    assert_eq!(
        f.reject(&f.net.update(second, Some(old), None)),
        TxError::WrongChannel {
            expected: second,
            got: first
        }
    );
    // The closed channel's id is never reused either: its open replays as included.
    let (reopen, same) = f.net.open(&f.a, &f.b, (1_000, 500), 1, f.t + 60_000);
    assert_eq!(same, first);
    assert!(matches!(f.reject(&reopen), TxError::AlreadyIncluded { .. }));
}

#[test]
fn error_classes_are_meaningful() {
    assert_eq!(
        TxError::BadNonce { expected: 3, got: 2 }.class(),
        ErrorClass::Rejected
    );
    assert_eq!(
        TxError::BadNonce { expected: 3, got: 4 }.class(),
        ErrorClass::Retryable
    );
    assert_eq!(
        TxError::UnknownChannel(ChannelId(Hash32::ZERO)).class(),
        ErrorClass::Retryable
    );
    assert_eq!(TxError::WrongDirection.class(), ErrorClass::Violation);
    assert_eq!(TxError::BlockFull.class(), ErrorClass::Retryable);
}

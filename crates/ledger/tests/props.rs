//! Property tests over random sequences of valid and invalid transactions among a few keys.
//!
//! - A refused transaction is refused with a typed error and changes nothing (full state and
//!   state root compared); a corrupted signature, a foreign chain id or a wrong nonce on an
//!   otherwise valid transaction is refused with exactly that error.
//! - Conservation: balances plus live deposits equal the genesis supply after every
//!   transaction and every block; every payout splits exactly the channel's deposits.
//! - Replaying the produced blocks with `verify_chain` rebuilds the same state, and every
//!   header's roots are the replica's; any single-bit corruption of a header field or of the
//!   signature is refused by `apply_block`, leaving the replica unchanged.

use std::collections::BTreeMap;

use paychan_ledger::testkit::{TestNet, TestParams};
use paychan_ledger::{verify_chain, ChannelStatus, LedgerState, TxEffect, TxError};
use paychan_protocol::channel::{SignedCoopClose, SignedOpen};
use paychan_protocol::ledger::Transfer;
use paychan_protocol::{Block, ChannelId, Direction, Hash32, Keypair, Tx};
use proptest::prelude::*;

const USERS: usize = 4;
const BALANCE: u64 = 5_000;

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Open {
        a: usize,
        b: usize,
        da: u64,
        db: u64,
        salt: u8,
        expiry_in: Option<u64>,
    },
    Deposit {
        who: usize,
        ch: usize,
        amount: u64,
    },
    Coop {
        ch: usize,
        to_a: u64,
    },
    Close {
        ch: usize,
        by_b: bool,
        t_ab: Option<u64>,
        t_ba: Option<u64>,
    },
    Update {
        ch: usize,
        t_ab: Option<u64>,
        t_ba: Option<u64>,
    },
    Settle {
        ch: usize,
    },
    Advance {
        ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    BadSig,
    WrongSigner,
    WrongChain,
    WrongNonce,
}

fn user() -> impl Strategy<Value = usize> {
    0..USERS
}

fn op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![1 => Just(0u64), 9 => 1..3_000u64];
    let t = proptest::option::weighted(0.7, 0..2_500u64);
    // Mostly another user: the same one twice is a (rarer) invalid case.
    let other = prop_oneof![9 => 1..USERS, 1 => Just(0)];
    prop_oneof![
        4 => (user(), other.clone(), amount.clone())
            .prop_map(|(from, off, amount)| Op::Transfer { from, to: (from + off) % USERS, amount }),
        3 => (user(), other, 0..2_500u64, 0..2_500u64, 0..4u8, proptest::option::weighted(0.9, 0..30_000u64))
            .prop_map(|(a, off, da, db, salt, expiry_in)| Op::Open { a, b: (a + off) % USERS, da, db, salt, expiry_in }),
        2 => (user(), any::<usize>(), amount).prop_map(|(who, ch, amount)| Op::Deposit { who, ch, amount }),
        1 => (any::<usize>(), 0..6_000u64).prop_map(|(ch, to_a)| Op::Coop { ch, to_a }),
        3 => (any::<usize>(), any::<bool>(), t.clone(), t.clone())
            .prop_map(|(ch, by_b, t_ab, t_ba)| Op::Close { ch, by_b, t_ab, t_ba }),
        4 => (any::<usize>(), t.clone(), t).prop_map(|(ch, t_ab, t_ba)| Op::Update { ch, t_ab, t_ba }),
        2 => any::<usize>().prop_map(|ch| Op::Settle { ch }),
        2 => (0..12_000u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        8 => Just(Fault::None),
        1 => Just(Fault::BadSig),
        1 => Just(Fault::WrongSigner),
        1 => Just(Fault::WrongChain),
        1 => Just(Fault::WrongNonce),
    ]
}

/// Builds transactions for ops against the current state.
struct World {
    net: TestNet,
    other: TestNet,
    /// Channels of generated (unfaulted) opens, with their parties' indices.
    channels: Vec<(ChannelId, usize, usize)>,
}

impl World {
    fn new() -> World {
        let params = TestParams {
            users: USERS,
            balance: BALANCE,
            // Fees on, so that conservation is checked with the sequencer collecting them.
            tx_fee_min: 3,
            tx_fee_per_byte: 1,
            ..TestParams::default()
        };
        World {
            net: TestNet::with_params(params.clone()),
            other: TestNet::with_params(TestParams {
                genesis_time_ms: 5,
                ..params
            }),
            channels: Vec::new(),
        }
    }

    fn key(&self, i: usize) -> &Keypair {
        &self.net.users[i % USERS]
    }

    /// The channel an op's index points at, with its parties' indices; a made-up id when
    /// none is known yet.
    fn channel(&self, s: &LedgerState, ch: usize) -> (ChannelId, usize, usize) {
        // Prefer channels the ledger knows; fall back to ones whose open may still land, then
        // to an id that never exists.
        let live: Vec<_> = self
            .channels
            .iter()
            .copied()
            .filter(|(id, ..)| s.channel(id).is_some())
            .collect();
        let pool = if live.is_empty() { &self.channels } else { &live };
        if pool.is_empty() {
            return (ChannelId(Hash32([0xee; 32])), 0, 1);
        }
        pool[ch % pool.len()]
    }

    /// The transaction for `op` with `fault` applied, and whether the fault changed anything.
    fn build(
        &mut self,
        s: &LedgerState,
        now: u64,
        op: &Op,
        fault: Fault,
        nonces: &BTreeMap<usize, u64>,
    ) -> Option<(Tx, bool)> {
        let net = if fault == Fault::WrongChain {
            &self.other
        } else {
            &self.net
        };
        let nonce_of = |i: usize| {
            let n = s.nonce(&self.key(i).public()) + nonces.get(&(i % USERS)).copied().unwrap_or(0);
            if fault == Fault::WrongNonce {
                n + 1
            } else {
                n
            }
        };
        let wrong = |i: usize| self.key(i + 1);
        let proof = |id, a: usize, b: usize, dir: Direction, t: u64, forge: bool| {
            let payer = match (dir, forge) {
                (Direction::AToB, false) | (Direction::BToA, true) => self.key(a),
                _ => self.key(b),
            };
            net.proof(payer, id, dir, t + 1, t)
        };
        let mut applied = fault == Fault::WrongChain;
        let mut opened = None;
        let tx = match *op {
            Op::Advance { .. } => return None,
            Op::Transfer { from, to, amount } => {
                applied |= fault == Fault::WrongNonce;
                let body = Transfer {
                    chain_id: net.chain_id,
                    from: self.key(from).public(),
                    to: self.key(to).public(),
                    amount,
                    nonce: nonce_of(from),
                };
                let signer = if fault == Fault::WrongSigner {
                    wrong(from)
                } else {
                    self.key(from)
                };
                applied |= fault == Fault::WrongSigner;
                Tx::transfer(body, signer)
            }
            Op::Open {
                a,
                b,
                da,
                db,
                salt,
                expiry_in,
            } => {
                let expiry = expiry_in.map_or(now.saturating_sub(1), |d| now + d);
                let (tx, id) = net.open(self.key(a), self.key(b), (da, db), salt.into(), expiry);
                if fault == Fault::None {
                    opened = Some((id, a % USERS, b % USERS));
                }
                match (tx, fault) {
                    (Tx::Open(o), Fault::WrongSigner) => {
                        applied = true;
                        Tx::Open(SignedOpen {
                            sig_b: o.open.sign(wrong(b)),
                            ..o
                        })
                    }
                    (tx, _) => tx,
                }
            }
            Op::Deposit { who, ch, amount } => {
                let (id, a, b) = self.channel(s, ch);
                let party = if who % 2 == 0 { a } else { b };
                applied |= fault == Fault::WrongNonce;
                let signer = if fault == Fault::WrongSigner {
                    wrong(party)
                } else {
                    self.key(party)
                };
                applied |= fault == Fault::WrongSigner;
                Tx::deposit(
                    paychan_protocol::ledger::Deposit {
                        chain_id: net.chain_id,
                        channel_id: id,
                        from: self.key(party).public(),
                        amount,
                        nonce: nonce_of(party),
                    },
                    signer,
                )
            }
            Op::Coop { ch, to_a } => {
                let (id, a, b) = self.channel(s, ch);
                let total = s.channel(&id).map_or(1_000, |c| c.total());
                let to_a = to_a % (total + 2);
                let tx = net.coop_close(self.key(a), self.key(b), id, (to_a, total.saturating_sub(to_a)));
                match (tx, fault) {
                    (Tx::CoopClose(c), Fault::WrongSigner) => {
                        applied = true;
                        Tx::CoopClose(SignedCoopClose {
                            sig_a: c.close.sign(self.key(b)),
                            ..c
                        })
                    }
                    (tx, _) => tx,
                }
            }
            Op::Close { ch, by_b, t_ab, t_ba } => {
                let (id, a, b) = self.channel(s, ch);
                let forge = fault == Fault::WrongSigner && (t_ab.is_some() || t_ba.is_some());
                applied |= forge;
                let ab = t_ab.map(|t| proof(id, a, b, Direction::AToB, t, forge));
                let ba = t_ba.map(|t| proof(id, a, b, Direction::BToA, t, forge));
                net.unilateral_close(self.key(if by_b { b } else { a }), id, ab, ba)
            }
            Op::Update { ch, t_ab, t_ba } => {
                let (id, a, b) = self.channel(s, ch);
                let forge = fault == Fault::WrongSigner && (t_ab.is_some() || t_ba.is_some());
                applied |= forge;
                let ab = t_ab.map(|t| proof(id, a, b, Direction::AToB, t, forge));
                let ba = t_ba.map(|t| proof(id, a, b, Direction::BToA, t, forge));
                net.update(id, ab, ba)
            }
            Op::Settle { ch } => net.settle(self.channel(s, ch).0),
        };
        if let Some(entry) = opened.filter(|(id, ..)| self.channels.iter().all(|(known, ..)| known != id)) {
            self.channels.push(entry);
        }
        let mut tx = tx;
        if fault == Fault::BadSig {
            applied |= flip_signature(&mut tx);
        }
        Some((tx, applied))
    }
}

/// Flips one bit of the transaction's (first) signature; false if it carries none.
fn flip_signature(tx: &mut Tx) -> bool {
    let sig = match tx {
        Tx::Transfer { sig, .. }
        | Tx::Deposit { sig, .. }
        | Tx::UnilateralClose { sig, .. }
        | Tx::CreditGrant { sig, .. }
        | Tx::Repay { sig, .. } => sig,
        Tx::Open(o) => &mut o.sig_a,
        Tx::CoopClose(c) => &mut c.sig_b,
        Tx::Update(u) => match u.proof_ab.as_mut().or(u.proof_ba.as_mut()) {
            Some(p) => &mut p.signature,
            None => return false,
        },
        Tx::Settle(_) => return false,
    };
    sig.0[17] ^= 0x04;
    true
}

/// The error a fault must produce on a transaction that is valid without it.
fn fault_error_matches(fault: Fault, e: &TxError) -> bool {
    match fault {
        Fault::None => true,
        Fault::BadSig | Fault::WrongSigner => *e == TxError::BadSignature,
        Fault::WrongChain => matches!(e, TxError::WrongChain { .. }),
        Fault::WrongNonce => matches!(e, TxError::BadNonce { .. }),
    }
}

/// Conservation, and every closed channel paid out exactly its deposits.
fn check_invariants(s: &LedgerState) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.total_value(), s.genesis_supply());
    for (_, c) in s.channels() {
        if let ChannelStatus::Closed { payout_a, payout_b } = c.status {
            prop_assert_eq!(payout_a as u128 + payout_b as u128, c.total() as u128);
        }
    }
    Ok(())
}

fn corrupt(b: &mut Block, field: u8, bit: u16) {
    fn flip(bytes: &mut [u8], bit: u16) {
        let i = (bit as usize / 8) % bytes.len();
        bytes[i] ^= 1 << (bit % 8);
    }
    let h = &mut b.header;
    match field % 9 {
        0 => flip(&mut h.chain_id.0, bit),
        1 => h.height ^= 1 << (bit % 64),
        2 => flip(&mut h.prev_hash.0, bit),
        3 => h.time_ms ^= 1 << (bit % 64),
        4 => flip(&mut h.tx_root.0, bit),
        5 => h.log_size ^= 1 << (bit % 64),
        6 => flip(&mut h.log_root.0, bit),
        7 => flip(&mut h.state_root.0, bit),
        _ => flip(&mut b.signature.0, bit),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn transactions_are_atomic_typed_and_conserve(
        ops in proptest::collection::vec((op(), fault()), 10..80),
    ) {
        let mut w = World::new();
        let mut s = w.net.state();
        let mut now = s.time_ms();
        let no_pending = BTreeMap::new();
        for (op, fault) in ops {
            if let Op::Advance { ms } = op {
                now += ms;
                continue;
            }
            let Some((tx, faulted)) = w.build(&s, now, &op, fault, &no_pending) else { continue };
            let clean_valid = faulted
                && w.build(&s, now, &op, Fault::None, &no_pending)
                    .is_some_and(|(clean, _)| s.check_tx(&clean, now).is_ok());
            let before = s.clone();
            let root = s.state_root();
            match s.apply_tx(&tx, now) {
                Ok(effect) => {
                    prop_assert!(!faulted, "a faulted transaction was accepted: {:?} {:?}", fault, op);
                    if let TxEffect::PaidOut { channel_id, payout_a, payout_b, .. } = effect {
                        let total = before.channel(&channel_id).map(|c| c.total());
                        prop_assert_eq!(Some(payout_a + payout_b), total);
                    }
                    prop_assert!(s.contains_tx(&tx.id()));
                }
                Err(e) => {
                    prop_assert_eq!(&s, &before, "a refused transaction changed the state");
                    prop_assert_eq!(s.state_root(), root);
                    if clean_valid {
                        prop_assert!(fault_error_matches(fault, &e), "{:?} gave {:?} for {:?}", fault, e, op);
                    }
                }
            }
            check_invariants(&s)?;
        }
    }

    #[test]
    fn blocks_conserve_replay_and_resist_corruption(
        blocks in proptest::collection::vec(
            (proptest::collection::vec((op(), fault()), 0..12), 0..8_000u64, any::<u8>(), any::<u16>()),
            1..10,
        ),
    ) {
        let mut w = World::new();
        let seq = w.net.sequencer.clone();
        let mut s = w.net.state();
        let mut replica = s.clone();
        let mut produced = Vec::new();
        for (ops, step, field, bit) in blocks {
            let now = s.time_ms() + step;
            let mut txs = Vec::new();
            let mut faulted_ids = Vec::new();
            // Later transfers and deposits of one account in one block use the next nonces.
            let mut pending: BTreeMap<usize, u64> = BTreeMap::new();
            for (op, fault) in &ops {
                let Some((tx, faulted)) = w.build(&s, now, op, *fault, &pending) else { continue };
                if faulted {
                    faulted_ids.push(tx.id());
                } else if let Some((account, _)) = tx.nonce_account() {
                    let i = w.net.users.iter().position(|u| u.public() == account).unwrap_or(0);
                    *pending.entry(i).or_insert(0) += 1;
                }
                txs.push(tx);
            }
            let (block, dropped) = s.produce_block(txs.clone(), now, &seq).expect("sequencer");
            prop_assert_eq!(block.txs.len() + dropped.len(), txs.len());
            for tx in &block.txs {
                prop_assert!(!faulted_ids.contains(&tx.id()), "a faulted transaction was included");
            }
            let disputes = block.txs.iter().take_while(|t| t.is_dispute()).count();
            prop_assert!(block.txs[disputes..].iter().all(|t| !t.is_dispute()));
            check_invariants(&s)?;

            let mut bad = block.clone();
            corrupt(&mut bad, field, bit);
            let before = replica.clone();
            prop_assert!(replica.apply_block(&bad).is_err(), "corrupted block accepted: field {}", field % 9);
            prop_assert_eq!(&replica, &before);

            replica.apply_block(&block).expect("the sequencer's block is valid");
            prop_assert_eq!(replica.state_root(), block.header.state_root);
            prop_assert_eq!(replica.log_root(), block.header.log_root);
            prop_assert_eq!(&replica, &s);
            produced.push(block);
        }
        let replayed = verify_chain(&w.net.genesis, &produced).expect("replays");
        prop_assert_eq!(&replayed, &s);
    }
}

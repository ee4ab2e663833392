//! Credit lines and debts (PROTOCOL.md §16): the rules on fixed scenarios, then properties over
//! random sequences of grants, payments, closes, settlements, transfers and repayments.
//!
//! Properties checked after every block: conservation (debts are claims, not money); every
//! debt is at most the peak limit its line had when the channel's close started (no grant
//! after the close counts); a debt's outstanding amount never grows; incoming funds of a
//! transfer pay the receiver's debts before anything else; an outstanding debt is marked
//! defaulted exactly at the first block whose time reaches its due time; a grant signed by
//! anyone but its creditor is refused; replaying the blocks reproduces every root.

use std::collections::BTreeMap;

use paychan_ledger::testkit::{TestChain, TestNet};
use paychan_ledger::{verify_chain, ChannelStatus, TxError};
use paychan_protocol::{ChannelId, Direction, Keypair, Tx};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

fn chain(users: usize, balance: u64) -> TestChain {
    TestChain::new(TestNet::new(users, balance))
}

fn user(c: &TestChain, i: usize) -> Keypair {
    c.net.users[i].clone()
}

/// Opens a channel (a = user 0 debtor, b = user 1 creditor) with the given deposits.
fn open(c: &mut TestChain, deposits: (u64, u64), salt: u64) -> ChannelId {
    let (a, b) = (user(c, 0), user(c, 1));
    let (tx, id) = c.net.open(&a, &b, deposits, salt, u64::MAX);
    assert!(c.next_block(vec![tx]).is_empty());
    id
}

/// Closes unilaterally with the debtor's proof of `t_ab` (and the creditor's of `t_ba`), waits
/// for the window and settles.
fn close_and_settle(c: &mut TestChain, id: ChannelId, t_ab: u64, t_ba: u64) {
    let (a, b) = (user(c, 0), user(c, 1));
    let pab = (t_ab > 0).then(|| c.net.proof(&a, id, Direction::AToB, 1, t_ab));
    let pba = (t_ba > 0).then(|| c.net.proof(&b, id, Direction::BToA, 1, t_ba));
    let close = c.net.unilateral_close(&b, id, pab, pba);
    assert!(c.next_block(vec![close]).is_empty());
    let end = c.state.window_end_ms(&id).unwrap();
    c.advance_to(end);
    let settle = c.net.settle(id);
    assert_eq!(c.next_block(vec![settle]), vec![]);
}

#[test]
fn debt_is_the_excess_capped_paid_at_once_then_from_incoming_funds() {
    // The debtor holds 30 outside the channel after depositing 100.
    let mut c = chain(3, 130);
    let (a, b, z) = (user(&c, 0), user(&c, 1), user(&c, 2));
    let id = open(&mut c, (100, 20), 1);
    let due = T0 + 1_000_000;
    let g = c.net.grant(&b, a.public(), id, 500, T0 + 500_000, due, 0);
    assert!(c.next_block(vec![g]).is_empty());
    let line = *c.state.credit_line(&id, Direction::AToB).unwrap();
    assert_eq!((line.limit, line.peak, line.due_ms), (500, 500, due));

    // A paid 700 against a deposit of 100 and 10 received: 590 beyond, capped at 500.
    close_and_settle(&mut c, id, 700, 10);
    let debt = *c.state.debt(&id).unwrap();
    assert_eq!(
        (debt.amount, debt.creditor, debt.debtor),
        (500, b.public(), a.public())
    );
    // Paid at once from A's 30.
    assert_eq!(debt.outstanding, 470);
    assert_eq!(c.state.balance(&a.public()), 0);
    // B got the whole channel (120) and the 30, on top of its 110 outside.
    assert_eq!(c.state.balance(&b.public()), 110 + 120 + 30);
    assert_eq!(c.state.total_value(), c.state.genesis_supply());

    // A transfer of 100 to A pays the debt first.
    let t = c.net.transfer(&z, a.public(), 100, 0);
    assert_eq!(c.next_block(vec![t]), vec![]);
    assert_eq!(c.state.debt(&id).unwrap().outstanding, 370);
    assert_eq!(c.state.balance(&a.public()), 0);
    assert_eq!(c.state.balance(&b.public()), 260 + 100);

    // Anyone may repay; not more than is owed.
    let too_much = c.net.repay(&z, id, 371, 1);
    assert_eq!(
        c.state.check_tx(&too_much, c.state.time_ms()),
        Err(TxError::RepayTooMuch {
            amount: 371,
            outstanding: 370
        })
    );
    let r = c.net.repay(&z, id, 20, 1);
    assert!(c.next_block(vec![r]).is_empty());
    assert_eq!(c.state.debt(&id).unwrap().outstanding, 350);

    // A transfer larger than the debt: the rest is A's.
    let t = c.net.transfer(&b, a.public(), 355, 1);
    assert!(c.next_block(vec![t]).is_empty());
    let debt = *c.state.debt(&id).unwrap();
    assert_eq!((debt.outstanding, debt.defaulted_ms), (0, None));
    assert_eq!(c.state.balance(&a.public()), 5);

    // Replay reproduces every root.
    let replayed = verify_chain(&c.net.genesis, &c.blocks).expect("replay");
    assert_eq!(replayed.state_root(), c.state.state_root());
    assert_eq!(replayed, c.state);
}

#[test]
fn default_is_marked_at_the_first_block_that_reaches_the_due_time() {
    let mut c = chain(3, 100);
    let (a, b, z) = (user(&c, 0), user(&c, 1), user(&c, 2));
    let id = open(&mut c, (100, 0), 1);
    let due = c.state.time_ms() + 200_000;
    let g = c.net.grant(&b, a.public(), id, 50, due - 1, due, 0);
    assert!(c.next_block(vec![g]).is_empty());
    close_and_settle(&mut c, id, 140, 0);
    let debt = *c.state.debt(&id).unwrap();
    assert_eq!((debt.amount, debt.outstanding, debt.defaulted_ms), (40, 40, None));
    // Heartbeats up to one ms before due: not defaulted.
    c.advance_to(due - 1);
    assert_eq!(c.state.time_ms(), due - 1);
    assert_eq!(c.state.debt(&id).unwrap().defaulted_ms, None);
    // The block whose time reaches the due time marks it, before its transactions: a
    // repayment in that block comes too late to avoid the mark.
    let r = c.net.repay(&z, id, 1, 0);
    c.block_at(vec![r], due + 3);
    let debt = *c.state.debt(&id).unwrap();
    assert_eq!((debt.defaulted_ms, debt.outstanding), (Some(due + 3), 39));
    // Still owed, still collectable; the mark stays.
    let t = c.net.transfer(&b, a.public(), 39, 1);
    assert!(c.next_block(vec![t]).is_empty());
    let debt = *c.state.debt(&id).unwrap();
    assert_eq!((debt.outstanding, debt.defaulted_ms), (0, Some(due + 3)));
    assert_eq!(verify_chain(&c.net.genesis, &c.blocks).unwrap(), c.state);
}

#[test]
fn grants_only_by_the_creditor_and_only_while_open() {
    let mut c = chain(3, 100);
    let (a, b, z) = (user(&c, 0), user(&c, 1), user(&c, 2));
    let id = open(&mut c, (50, 50), 1);
    let now = c.state.time_ms();
    // Signed by the debtor in the creditor's name.
    let mut forged = c.net.grant(&b, a.public(), id, 10, now + 10, now + 10, 0);
    if let Tx::CreditGrant { sig, .. } = &mut forged {
        let other = c.net.grant(&a, a.public(), id, 10, now + 10, now + 10, 0);
        let Tx::CreditGrant { sig: s, .. } = other else {
            unreachable!()
        };
        *sig = s;
    }
    assert_eq!(c.state.check_tx(&forged, now), Err(TxError::BadSignature));
    // A third party is no creditor.
    let g = c.net.grant(&z, a.public(), id, 10, now + 10, now + 10, 0);
    assert_eq!(c.state.check_tx(&g, now), Err(TxError::CreditParties));
    // Ending a line that does not exist.
    let g = c.net.grant(&b, a.public(), id, 0, now + 10, now + 10, 0);
    assert_eq!(c.state.check_tx(&g, now), Err(TxError::NoCreditLine(id)));
    // Due before expiry; expired.
    let g = c.net.grant(&b, a.public(), id, 10, now + 10, now + 9, 0);
    assert!(matches!(
        c.state.check_tx(&g, now),
        Err(TxError::DueBeforeExpiry { .. })
    ));
    let g = c.net.grant(&b, a.public(), id, 10, now - 1, now + 9, 0);
    assert!(matches!(c.state.check_tx(&g, now), Err(TxError::Expired { .. })));

    let g = c.net.grant(&b, a.public(), id, 10, u64::MAX, u64::MAX, 0);
    assert!(c.next_block(vec![g]).is_empty());
    // Lowered for future payments: the peak stays.
    let g = c.net.grant(&b, a.public(), id, 0, u64::MAX, u64::MAX, 1);
    assert!(c.next_block(vec![g]).is_empty());
    let line = *c.state.credit_line(&id, Direction::AToB).unwrap();
    assert_eq!((line.limit, line.peak), (0, 10));
    // After the close started, no grant is taken: a creditor cannot raise a debt after the fact.
    let p = c.net.proof(&a, id, Direction::AToB, 1, 500);
    let close = c.net.unilateral_close(&b, id, Some(p), None);
    assert!(c.next_block(vec![close]).is_empty());
    let g = c.net.grant(&b, a.public(), id, 1_000, u64::MAX, u64::MAX, 2);
    assert_eq!(
        c.state.check_tx(&g, c.state.time_ms()),
        Err(TxError::ChannelNotOpen(id))
    );
    let end = c.state.window_end_ms(&id).unwrap();
    c.advance_to(end);
    assert!(c.next_block(vec![c.net.settle(id)]).is_empty());
    assert_eq!(c.state.debt(&id).unwrap().amount, 10);
    let g = c.net.grant(&b, a.public(), id, 1_000, u64::MAX, u64::MAX, 2);
    assert_eq!(
        c.state.check_tx(&g, c.state.time_ms()),
        Err(TxError::ChannelClosed(id))
    );
}

#[test]
fn cooperative_close_records_no_debt_and_no_line_means_no_debt() {
    let mut c = chain(2, 100);
    let (a, b) = (user(&c, 0), user(&c, 1));
    let id = open(&mut c, (50, 50), 1);
    close_and_settle(&mut c, id, 300, 0);
    assert!(c.state.debt(&id).is_none());
    let id2 = open(&mut c, (25, 25), 2);
    let g = c.net.grant(&b, a.public(), id2, 10, u64::MAX, u64::MAX, 0);
    assert!(c.next_block(vec![g]).is_empty());
    let cc = c.net.coop_close(&a, &b, id2, (0, 50));
    assert!(c.next_block(vec![cc]).is_empty());
    assert!(c.state.debt(&id2).is_none());
    assert!(matches!(
        c.state.channel(&id2).unwrap().status,
        ChannelStatus::Closed { .. }
    ));
}

// ---- properties ----

const USERS: usize = 3;
const BALANCE: u64 = 300;

#[derive(Clone, Debug)]
enum Op {
    Open {
        a: usize,
        b: usize,
        da: u64,
        db: u64,
    },
    Grant {
        ch: usize,
        debtor_is_a: bool,
        limit: u64,
        due_in: u64,
        signer_ok: bool,
    },
    Close {
        ch: usize,
        t_ab: u64,
        t_ba: u64,
    },
    Settle {
        ch: usize,
    },
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Repay {
        ch: usize,
        from: usize,
        amount: u64,
    },
    Wait {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..USERS, 0..USERS, 0..200u64, 0..200u64).prop_map(|(a, b, da, db)| Op::Open { a, b, da, db }),
        3 => (0..3usize, any::<bool>(), 0..400u64, 0..300_000u64, prop::bool::weighted(0.9)).prop_map(
            |(ch, debtor_is_a, limit, due_in, signer_ok)| Op::Grant { ch, debtor_is_a, limit, due_in, signer_ok }
        ),
        2 => (0..3usize, 0..900u64, 0..300u64).prop_map(|(ch, t_ab, t_ba)| Op::Close { ch, t_ab, t_ba }),
        3 => (0..3usize).prop_map(|ch| Op::Settle { ch }),
        2 => (0..USERS, 0..USERS, 1..300u64).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => (0..3usize, 0..USERS, 1..200u64).prop_map(|(ch, from, amount)| Op::Repay { ch, from, amount }),
        2 => (1..150_000u64).prop_map(|ms| Op::Wait { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn credit_rules_hold_over_random_histories(ops in prop::collection::vec(op(), 1..80)) {
        let mut c = chain(USERS, BALANCE);
        let keys: Vec<Keypair> = c.net.users.clone();
        let mut channels: Vec<ChannelId> = Vec::new();
        let mut nonces = [0u64; USERS];
        let mut salt = 0u64;
        // Per channel, the line's peak when its close started.
        let mut peak_at_close: BTreeMap<ChannelId, [u64; 2]> = BTreeMap::new();
        for op in ops {
            let prev_time = c.state.time_ms();
            let before = c.state.clone();
            let mut new_channel = None;
            let tx: Option<Tx> = match op {
                Op::Open { a, b, da, db } => {
                    if a == b || da + db == 0 { None } else {
                        salt += 1;
                        let (tx, id) = c.net.open(&keys[a], &keys[b], (da, db), salt, u64::MAX);
                        new_channel = Some(id);
                        Some(tx)
                    }
                }
                Op::Grant { ch, debtor_is_a, limit, due_in, signer_ok } => match channels.get(ch) { None => None, Some(id) => {
                    let e = c.state.channel(id).unwrap();
                    let (debtor, creditor) = if debtor_is_a { (e.party_a, e.party_b) } else { (e.party_b, e.party_a) };
                    let ci = keys.iter().position(|k| k.public() == creditor).unwrap();
                    let signer = if signer_ok { ci } else { (ci + 1) % USERS };
                    let now = c.state.time_ms();
                    let mut tx = c.net.grant(&keys[ci], debtor, *id, limit, now + due_in, now + due_in, nonces[ci]);
                    if !signer_ok {
                        let forged = c.net.grant(&keys[signer], debtor, *id, limit, now + due_in, now + due_in, nonces[ci]);
                        let (Tx::CreditGrant { sig, .. }, Tx::CreditGrant { sig: s, .. }) = (&mut tx, forged) else { unreachable!() };
                        *sig = s;
                        prop_assert_eq!(c.state.check_tx(&tx, now + 1_000), Err(TxError::BadSignature));
                    }
                    Some(tx)
                }},
                Op::Close { ch, t_ab, t_ba } => channels.get(ch).map(|id| {
                    let e = c.state.channel(id).unwrap();
                    let ia = keys.iter().position(|k| k.public() == e.party_a).unwrap();
                    let ib = keys.iter().position(|k| k.public() == e.party_b).unwrap();
                    let pab = (t_ab > 0).then(|| c.net.proof(&keys[ia], *id, Direction::AToB, 1, t_ab));
                    let pba = (t_ba > 0).then(|| c.net.proof(&keys[ib], *id, Direction::BToA, 1, t_ba));
                    c.net.unilateral_close(&keys[ia], *id, pab, pba)
                }),
                Op::Settle { ch } => channels.get(ch).map(|id| c.net.settle(*id)),
                Op::Transfer { from, to, amount } => Some(c.net.transfer(&keys[from], keys[to].public(), amount, nonces[from])),
                Op::Repay { ch, from, amount } => channels.get(ch).map(|id| c.net.repay(&keys[from], *id, amount, nonces[from])),
                Op::Wait { ms } => { c.advance_to(prev_time + ms); None }
            };
            if let Some(tx) = tx {
                let dropped = c.next_block(vec![tx.clone()]);
                let applied = dropped.is_empty();
                if applied {
                    channels.extend(new_channel);
                    if let Some((k, _)) = tx.nonce_account() {
                        let i = keys.iter().position(|x| x.public() == k).unwrap();
                        nonces[i] += 1;
                    }
                    if let Tx::UnilateralClose { body, .. } = &tx {
                        let line = |d| before.credit_line(&body.channel_id, d).map_or(0, |l| l.peak);
                        peak_at_close.insert(body.channel_id, [line(Direction::AToB), line(Direction::BToA)]);
                    }
                    // Incoming funds of a transfer pay the receiver's debts first.
                    if let Tx::Transfer { body, .. } = &tx {
                        let owed = before.outstanding_of(&body.to);
                        let paid = owed.min(body.amount);
                        prop_assert_eq!(c.state.outstanding_of(&body.to), owed - paid);
                        prop_assert_eq!(c.state.balance(&body.to), before.balance(&body.to) + body.amount - paid);
                    }
                } else {
                    // A refused transaction changed nothing but the block's own effects.
                    prop_assert_eq!(c.state.accounts().collect::<Vec<_>>(), before.accounts().collect::<Vec<_>>());
                }
            }
            let now = c.state.time_ms();
            // Conservation.
            prop_assert_eq!(c.state.total_value(), c.state.genesis_supply());
            for (id, d) in c.state.debts() {
                // Capped by the peak limit when the close started.
                let e = c.state.channel(id).unwrap();
                let dir = if d.debtor == e.party_a { 0 } else { 1 };
                prop_assert!(d.amount <= peak_at_close[id][dir]);
                prop_assert!(d.outstanding <= d.amount);
                if let Some(old) = before.debt(id) {
                    prop_assert!(d.outstanding <= old.outstanding);
                    prop_assert_eq!(d.amount, old.amount);
                }
                // Defaulted exactly at the first block whose time reaches the due time.
                if d.outstanding > 0 && d.due_ms <= now {
                    prop_assert!(d.defaulted_ms.is_some());
                }
                match d.defaulted_ms {
                    Some(t) => {
                        // The first block whose time reaches the due time (the settling block
                        // itself if it was already due then).
                        let first = if d.due_ms <= d.created_ms {
                            d.created_ms
                        } else {
                            c.blocks.iter().map(|b| b.header.time_ms).find(|&bt| bt >= d.due_ms).unwrap()
                        };
                        prop_assert_eq!(t, first);
                    }
                    None => prop_assert!(d.outstanding == 0 || d.due_ms > now),
                }
            }
        }
        let replayed = verify_chain(&c.net.genesis, &c.blocks).expect("replay");
        prop_assert_eq!(&replayed, &c.state);
        // Every header's state root is reproduced block by block.
        let mut s = c.net.state();
        for b in &c.blocks {
            s.apply_block(b).expect("replays");
            prop_assert_eq!(s.state_root(), b.header.state_root);
        }
    }
}

//! Fees: who pays, how much, where they go, and that conservation counts them.

use paychan_ledger::testkit::{keypair, TestChain, TestNet, TestParams};
use paychan_ledger::{fee_payer, tx_fee, ErrorClass, LedgerState, Mempool, TxError};
use paychan_protocol::wire::SubmitStatus;
use paychan_protocol::{Direction, PublicKey, Tx};

const FEE_MIN: u64 = 50;
const FEE_PER_BYTE: u64 = 2;

fn net(users: usize, balance: u64) -> TestNet {
    TestNet::with_params(TestParams {
        users,
        balance,
        tx_fee_min: FEE_MIN,
        tx_fee_per_byte: FEE_PER_BYTE,
        ..TestParams::default()
    })
}

/// The fee of PROTOCOL.md §8.4, from the bytes alone.
fn expected_fee(tx: &Tx) -> u64 {
    FEE_MIN + FEE_PER_BYTE * tx.bytes().len() as u64
}

#[track_caller]
fn conserved(s: &LedgerState) {
    assert_eq!(s.total_value(), s.genesis_supply(), "conservation");
}

#[test]
fn a_transfer_pays_its_fee_to_the_sequencer() {
    let mut c = TestChain::new(net(2, 10_000));
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let seq = c.net.sequencer.public();
    let tx = c.net.transfer(&a, b.public(), 1_000, 0);
    let fee = expected_fee(&tx);
    assert_eq!(tx_fee(&c.net.genesis, &tx), fee);
    assert_eq!(fee_payer(&tx), Some(a.public()));
    assert!(c.next_block(vec![tx]).is_empty());
    assert_eq!(c.state.balance(&a.public()), 10_000 - 1_000 - fee);
    assert_eq!(c.state.balance(&b.public()), 11_000);
    assert_eq!(c.state.balance(&seq), fee);
    conserved(&c.state);
    // A replica replaying the block gets the same books.
    let replayed = paychan_ledger::verify_chain(&c.net.genesis, &c.blocks).expect("valid chain");
    assert_eq!(replayed.state_root(), c.state.state_root());
}

#[test]
fn a_sender_that_cannot_pay_the_fee_is_refused_with_a_typed_error() {
    let n = net(2, 10_000);
    let (a, b) = (&n.users[0], &n.users[1]);
    let mut s = n.state();
    let before = s.clone();
    // The amount fits the balance, the fee on top does not.
    let probe = n.transfer(a, b.public(), 1, 0);
    let fee = expected_fee(&probe);
    let amount = 10_000 - fee + 1;
    let tx = n.transfer(a, b.public(), amount, 0);
    let fee = expected_fee(&tx);
    let e = s.apply_tx(&tx, s.time_ms()).expect_err("fee unpaid");
    assert_eq!(
        e,
        TxError::FeeUnpaid {
            payer: a.public(),
            fee,
            available: 10_000 - amount
        }
    );
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert_eq!(s, before, "a refused transaction changes nothing");
    // Exactly enough goes through.
    let tx = n.transfer(a, b.public(), 10_000 - fee, 0);
    assert_eq!(expected_fee(&tx), fee, "same encoded length");
    s.apply_tx(&tx, s.time_ms()).expect("pays amount and fee");
    assert_eq!(s.balance(&a.public()), 0);
    conserved(&s);

    // An unfunded key can pay nothing: the mempool refuses its junk before it takes room.
    let mut pool = Mempool::new(&n.genesis);
    let junk = keypair(4242);
    let s = n.state();
    assert!(matches!(
        pool.submit(n.transfer(&junk, b.public(), 1, 0), &s),
        Err(TxError::Overdraft { available: 0, .. })
    ));
    // One unit of balance covers an amount of 1 but never the fee.
    let mut one = n.state();
    one.apply_tx(&n.transfer(a, junk.public(), 1, 0), one.time_ms())
        .expect("fund one unit");
    assert!(matches!(
        pool.submit(n.transfer(&junk, b.public(), 1, 0), &one),
        Err(TxError::FeeUnpaid { available: 0, .. })
    ));
    assert!(pool.is_empty());
}

#[test]
fn the_mempool_counts_every_pending_spend_and_fee_of_an_account_together() {
    let n = net(2, 10_000);
    let (a, b) = (&n.users[0], &n.users[1]);
    let s = n.state();
    let mut pool = Mempool::new(&n.genesis);
    let t0 = n.transfer(a, b.public(), 4_000, 0);
    let t1 = n.transfer(a, b.public(), 4_000, 1);
    let spend = |t: &Tx| 4_000 + expected_fee(t);
    assert_eq!(pool.submit(t0.clone(), &s), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.submit(t1.clone(), &s), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.pending_spend(&a.public()), spend(&t0) + spend(&t1));
    // Each alone fits the balance; the third does not fit what the first two leave.
    let t2 = n.transfer(a, b.public(), 4_000, 2);
    assert_eq!(
        pool.submit(t2, &s),
        Err(TxError::Overdraft {
            needed: 4_000,
            available: 10_000 - spend(&t0) - spend(&t1)
        })
    );
    let left = 10_000 - spend(&t0) - spend(&t1);
    let t2 = n.transfer(a, b.public(), left, 2);
    assert!(matches!(pool.submit(t2, &s), Err(TxError::FeeUnpaid { .. })));
    assert_eq!(pool.len(), 2);
}

#[test]
fn an_open_is_paid_by_its_proposer_and_closes_and_disputes_are_free() {
    let mut c = TestChain::new(net(3, 100_000));
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let seq = c.net.sequencer.public();
    let bal = |c: &TestChain, k: &PublicKey| c.state.balance(k);

    // Open: A (the proposer) pays the fee on top of its deposit, B only its deposit.
    let (open1, ch1) = c.net.open(&a, &b, (10_000, 5_000), 1, u64::MAX);
    // A proposer that deposits nothing still pays the fee of its proposal.
    let (open2, ch2) = c.net.open(&a, &b, (0, 7_000), 2, u64::MAX);
    let (f1, f2) = (expected_fee(&open1), expected_fee(&open2));
    assert_eq!(fee_payer(&open1), Some(a.public()));
    assert!(c.next_block(vec![open1, open2]).is_empty());
    assert_eq!(bal(&c, &a.public()), 100_000 - 10_000 - f1 - f2);
    assert_eq!(bal(&c, &b.public()), 100_000 - 5_000 - 7_000);
    assert_eq!(bal(&c, &seq), f1 + f2);
    conserved(&c.state);

    // Deposit: paid by the depositor.
    let dep = c.net.deposit(&b, ch1, 1_000, 0);
    let fd = expected_fee(&dep);
    assert!(c.next_block(vec![dep]).is_empty());
    assert_eq!(bal(&c, &b.public()), 100_000 - 13_000 - fd);

    // Cooperative close: free, the payouts are exactly what both signed.
    let (a0, b0, s0) = (bal(&c, &a.public()), bal(&c, &b.public()), bal(&c, &seq));
    let coop = c.net.coop_close(&a, &b, ch1, (9_000, 7_000));
    assert_eq!((fee_payer(&coop), tx_fee(&c.net.genesis, &coop)), (None, 0));
    assert!(c.next_block(vec![coop]).is_empty());
    assert_eq!(bal(&c, &a.public()), a0 + 9_000);
    assert_eq!(bal(&c, &b.public()), b0 + 7_000);

    // Unilateral close, update, settle: free, whoever submits them.
    let p = c.net.proof(&b, ch2, Direction::BToA, 1, 2_000);
    let close = c.net.unilateral_close(&a, ch2, None, Some(p));
    let upd = c
        .net
        .update(ch2, None, Some(c.net.proof(&b, ch2, Direction::BToA, 2, 3_000)));
    for tx in [&close, &upd] {
        assert_eq!(tx_fee(&c.net.genesis, tx), 0);
    }
    assert!(c.next_block(vec![close]).is_empty());
    assert!(c.next_block(vec![upd]).is_empty());
    let end = c.state.window_end_ms(&ch2).expect("closing");
    c.advance_to(end);
    assert!(c.next_block(vec![c.net.settle(ch2)]).is_empty());
    assert_eq!(bal(&c, &a.public()), a0 + 9_000 + 3_000);
    assert_eq!(bal(&c, &b.public()), b0 + 7_000 + 4_000);
    assert_eq!(bal(&c, &seq), s0, "no fee for closes and disputes");
    conserved(&c.state);
}

#[test]
fn a_proposer_that_cannot_pay_the_open_fee_is_refused() {
    let n = net(2, 10_000);
    let (a, b) = (&n.users[0], &n.users[1]);
    let mut s = n.state();
    let before = s.clone();
    let (open, _) = n.open(a, b, (10_000, 1), 1, u64::MAX);
    let fee = expected_fee(&open);
    assert_eq!(
        s.apply_tx(&open, s.time_ms()),
        Err(TxError::FeeUnpaid {
            payer: a.public(),
            fee,
            available: 0
        })
    );
    assert_eq!(s, before);
}

#[test]
fn the_sequencer_pays_and_collects_its_own_fees() {
    // The sequencer funded at genesis: its own transfer's fee goes back to it.
    let mut n = net(1, 10_000);
    let seq = n.sequencer.clone();
    n.genesis.allocations.push((seq.public(), 5_000));
    n.genesis.allocations.sort();
    n.chain_id = n.genesis.chain_id();
    let user = n.users[0].public();
    let mut c = TestChain::new(n);
    let tx = c.net.transfer(&seq, user, 1_000, 0);
    assert!(c.next_block(vec![tx]).is_empty());
    assert_eq!(c.state.balance(&seq.public()), 4_000);
    let back = c.net.transfer(&c.net.users[0].clone(), seq.public(), 500, 0);
    let fee = expected_fee(&back);
    assert!(c.next_block(vec![back]).is_empty());
    assert_eq!(c.state.balance(&seq.public()), 4_500 + fee);
    assert_eq!(c.state.balance(&user), 10_000 + 1_000 - 500 - fee);
    conserved(&c.state);
}

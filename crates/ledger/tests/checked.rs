//! Signatures checked ahead, in batches on every core ([`CheckedTx`], [`CheckedBlock`],
//! [`Mempool::submit_all`]): the same answers, the same errors and the same states as the
//! reference path, whatever the batch boundaries and wherever a bad signature sits.

use paychan_ledger::testkit::{keypair, sample_history, TestChain, TestNet};
use paychan_ledger::{BlockError, CheckedBlock, CheckedTx, LedgerState, Mempool, TxError};
use paychan_protocol::{Block, Tx};
use proptest::prelude::*;

/// Flips one bit of a transaction's own signature (transfers, deposits and opens here).
fn spoil(tx: &mut Tx) {
    match tx {
        Tx::Transfer { sig, .. } | Tx::Deposit { sig, .. } => sig.0[9] ^= 1,
        Tx::Open(o) => o.sig_b.0[3] ^= 1,
        other => panic!("no own signature to spoil in {other:?}"),
    }
}

/// `n` transfers, one from each of `n` users to the next, the ones at `bad` with a spoiled
/// signature.
fn transfers(net: &TestNet, n: usize, bad: &[usize]) -> Vec<Tx> {
    (0..n)
        .map(|i| {
            let to = net.users[(i + 1) % net.users.len()].public();
            let mut tx = net.transfer(&net.users[i], to, 1 + i as u64 % 5, 0);
            if bad.contains(&i) {
                spoil(&mut tx);
            }
            tx
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Batches of any size, with bad signatures anywhere, give each transaction the answer
    /// it gets alone, in order; the mempool admits exactly what it admits one by one.
    #[test]
    fn batches_answer_as_one_by_one(n in 1usize..300, bad in proptest::collection::vec(0usize..300, 0..6)) {
        let net = TestNet::new(300, 10_000);
        let state = net.state();
        let txs = transfers(&net, n, &bad);
        let all = CheckedTx::check_all(txs.clone());
        prop_assert_eq!(all.len(), n);
        for (i, c) in all.iter().enumerate() {
            prop_assert_eq!(c.tx(), &txs[i]);
            prop_assert_eq!(c.own_signatures(), Some(!bad.contains(&i)));
            prop_assert_eq!(c.own_signatures(), CheckedTx::check(txs[i].clone()).own_signatures());
        }
        let mut batched = Mempool::new(&net.genesis);
        let mut alone = Mempool::new(&net.genesis);
        let answers = batched.submit_all(txs.clone(), &state);
        for (i, tx) in txs.iter().enumerate() {
            let want = alone.submit(tx.clone(), &state);
            prop_assert_eq!(&answers[i], &want);
            prop_assert_eq!(want.is_err(), bad.contains(&i));
        }
        prop_assert_eq!(batched.len(), alone.len());
    }
}

/// A spoiled signature is refused at the point the reference path checks it, so a
/// transaction with another fault first gets that fault's error, checked ahead or not.
#[test]
fn a_checked_bad_signature_is_refused_where_the_rules_check_it() {
    let net = TestNet::new(3, 10_000);
    let state = net.state();
    let (a, b) = (&net.users[0], &net.users[1]);
    let mut zero = net.transfer(a, b.public(), 0, 0);
    spoil(&mut zero);
    let mut bad = net.transfer(a, b.public(), 1, 0);
    spoil(&mut bad);
    let mut pool = Mempool::new(&net.genesis);
    let got = pool.submit_all(vec![zero.clone(), bad.clone()], &state);
    assert_eq!(got, vec![Err(TxError::ZeroAmount), Err(TxError::BadSignature)]);
    assert_eq!(pool.submit(zero, &state), Err(TxError::ZeroAmount));
    assert!(pool.is_empty());
}

/// The sequencer's path (admitted candidates, their signatures not checked again) makes the
/// same block as plain transactions, and a candidate checked as invalid is still refused.
#[test]
fn admitted_candidates_make_the_same_block_as_plain_transactions() {
    let net = TestNet::new(64, 10_000);
    let mut c = TestChain::new(net.clone());
    let (open, _) = net.open(&net.users[40], &net.users[41], (100, 100), 7, u64::MAX);
    let mut txs = transfers(&net, 32, &[]);
    txs.push(open);
    let mut pool = Mempool::new(&net.genesis);
    assert!(pool.submit_all(txs.clone(), &c.state).iter().all(Result::is_ok));
    let candidates = pool.take_block_candidates(&c.state, 64);
    let now = c.state.time_ms() + net.genesis.block_interval_ms;
    let (plain, plain_state, dropped) = c.state.build_block(txs, now, &net.sequencer).expect("sequencer");
    assert!(dropped.is_empty());
    let (fast, fast_state, dropped) = c
        .state
        .build_block(candidates, now, &net.sequencer)
        .expect("sequencer");
    assert!(dropped.is_empty());
    assert_eq!(fast, plain);
    assert_eq!(fast_state, plain_state);

    // Checked as invalid: the rules check it again and refuse it.
    let mut bad = net.transfer(&net.users[50], net.users[51].public(), 1, 0);
    spoil(&mut bad);
    let checked = CheckedTx::check(bad.clone());
    assert_eq!(checked.own_signatures(), Some(false));
    let dropped = c.next_block(vec![checked]);
    assert_eq!(dropped, vec![(bad, TxError::BadSignature)]);
}

/// Replays `blocks` both ways from the genesis; both give the same answers and states.
fn replay_both(genesis_state: &LedgerState, blocks: &[Block]) -> LedgerState {
    let sequencer = genesis_state.genesis().sequencer;
    let mut reference = genesis_state.clone();
    let mut fast = genesis_state.clone();
    let checked = CheckedBlock::check_all(blocks.to_vec(), &sequencer);
    for (block, checked) in blocks.iter().zip(&checked) {
        assert!(checked.is_valid());
        assert_eq!(fast.apply_checked_block(checked), reference.apply_block(block));
        assert_eq!(fast, reference);
    }
    fast
}

#[test]
fn checked_blocks_replay_to_the_same_state() {
    let c = sample_history(200, 16);
    let end = replay_both(&c.net.state(), &c.blocks);
    assert_eq!(end, c.state);
}

/// A block with a bad transaction signature, a bad header signature, or one checked against
/// another key gets exactly the reference path's error and changes nothing.
#[test]
fn a_tampered_block_gets_the_reference_error() {
    let c = sample_history(40, 8);
    let (last, before) = c.blocks.split_last().expect("blocks");
    let mut state = c.net.state();
    for b in before {
        state.apply_block(b).expect("true history");
    }
    let sequencer = c.net.sequencer.public();

    let mut bad_tx = last.clone();
    spoil(&mut bad_tx.txs[1]);
    let mut bad_header = last.clone();
    bad_header.signature.0[0] ^= 1;
    for block in [bad_tx, bad_header] {
        let checked = CheckedBlock::check(block.clone(), &sequencer);
        assert!(!checked.is_valid());
        let mut s = state.clone();
        let want = s.apply_block(&block).expect_err("tampered");
        assert_eq!(s, state);
        let mut s = state.clone();
        assert_eq!(s.apply_checked_block(&checked), Err(want));
        assert_eq!(s, state);
    }
    assert!(matches!(
        state.clone().apply_checked_block(&CheckedBlock::check(
            {
                let mut b = last.clone();
                b.signature.0[0] ^= 1;
                b
            },
            &sequencer
        )),
        Err(BlockError::BadSignature)
    ));

    // Checked against a key that is not this chain's sequencer: valid for that key, but the
    // reference path decides, and the true block applies.
    let other = keypair(999);
    let mut forged = last.clone();
    forged.signature = forged.header.sign(&other);
    let checked = CheckedBlock::check(forged.clone(), &other.public());
    assert!(checked.is_valid());
    let mut s = state.clone();
    assert_eq!(s.apply_checked_block(&checked), Err(BlockError::BadSignature));
    assert_eq!(s, state);
    let checked = CheckedBlock::check(last.clone(), &sequencer);
    let mut s = state.clone();
    assert_eq!(s.apply_checked_block(&checked), state.clone().apply_block(last));
    assert_eq!(s, c.state);
}

/// Blocks checked together (batches of consecutive blocks) get each block's own answer: one
/// spoiled block in a batch leaves the others valid.
#[test]
fn a_spoiled_block_in_a_batch_of_blocks_is_found_alone() {
    let c = sample_history(300, 10);
    let sequencer = c.net.sequencer.public();
    let mut blocks = c.blocks.clone();
    assert!(blocks.len() >= 30);
    let spoiled = blocks.len() - 9;
    spoil(&mut blocks[spoiled].txs[2]);
    // Batches of about 40 signatures: three or four blocks each.
    let all = CheckedBlock::check_all_in_batches_of(blocks.clone(), &sequencer, 40);
    assert!(CheckedBlock::check_all(c.blocks.clone(), &sequencer)
        .iter()
        .all(CheckedBlock::is_valid));
    assert_eq!(all.len(), blocks.len());
    for (i, (b, checked)) in blocks.into_iter().zip(&all).enumerate() {
        assert_eq!(checked.block(), &b);
        assert_eq!(checked.is_valid(), i != spoiled, "block {i}");
        assert_eq!(checked.is_valid(), CheckedBlock::check(b, &sequencer).is_valid());
    }
}

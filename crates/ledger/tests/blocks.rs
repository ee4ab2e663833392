//! Blocks, ledger time, chain replay, the mempool, checkpoints and genesis rules.

use paychan_ledger::testkit::{keypair, TestChain, TestNet, TestParams, COSIGN_TIME_S};
use paychan_ledger::{
    add_cosignature, next_block_time, verify_chain, verify_checkpoint, verify_checkpoint_consistency,
    BlockError, ChannelStatus, CheckpointError, CheckpointStatus, Error, ErrorClass, GenesisError,
    LedgerState, Mempool, TxError,
};
use paychan_protocol::merkle;
use paychan_protocol::wire::SubmitStatus;
use paychan_protocol::{Block, Direction, Tx};

fn chain(users: usize) -> TestChain {
    TestChain::new(TestNet::new(users, 10_000))
}

/// Re-signs a tampered header so that only the rule under test can refuse it.
fn resign(net: &TestNet, mut block: Block, edit: impl FnOnce(&mut Block)) -> Block {
    edit(&mut block);
    block.signature = block.header.sign(&net.sequencer);
    block
}

/// `block` made on a copy of the chain's state, without advancing the chain.
fn trial_block(c: &TestChain, txs: Vec<Tx>, now_ms: u64) -> Block {
    let (block, _, dropped) = c
        .state
        .build_block(txs, now_ms, &c.net.sequencer)
        .expect("sequencer");
    assert!(dropped.is_empty(), "{dropped:?}");
    block
}

#[track_caller]
fn refuse(state: &mut LedgerState, block: &Block) -> BlockError {
    let before = state.clone();
    let err = state.apply_block(block).expect_err("refused");
    assert_eq!(*state, before, "a refused block changes nothing");
    err
}

// ------------------------------------------------------------------------------------ blocks

#[test]
fn blocks_replay_to_the_same_state_and_heartbeats_are_valid() {
    let mut c = chain(3);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let (open, id) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
    assert!(c
        .next_block(vec![open, c.net.transfer(&a, b.public(), 5, 0)])
        .is_empty());
    assert!(
        c.next_block(Vec::<Tx>::new()).is_empty(),
        "an empty heartbeat block"
    );
    let p = c.net.proof(&a, id, Direction::AToB, 1, 30);
    assert!(c
        .next_block(vec![c.net.unilateral_close(&b, id, Some(p), None)])
        .is_empty());
    c.advance_to(c.state.window_end_ms(&id).expect("closing"));
    assert!(c.next_block(vec![c.net.settle(id)]).is_empty());

    let replica = verify_chain(&c.net.genesis, &c.blocks).expect("valid chain");
    assert_eq!(replica, c.state);
    // Block by block, each header's roots are the replica's.
    let mut r = c.net.state();
    for block in &c.blocks {
        let effects = r.apply_block(block).expect("valid block");
        assert_eq!(effects.len(), block.txs.len());
        assert_eq!(r.state_root(), block.header.state_root);
        assert_eq!(r.log_root(), block.header.log_root);
        assert_eq!(r.log_size(), block.header.log_size);
        assert_eq!(r.last_block_hash(), block.header.hash());
    }
    assert_eq!(
        c.blocks[0].header.prev_hash, c.net.chain_id,
        "block 1 links to the chain id"
    );
    assert_eq!(c.blocks[1].header.tx_root, merkle::empty_root());
    assert_eq!(c.state.total_value(), c.state.genesis_supply());
}

#[test]
fn build_block_leaves_the_state_untouched_and_matches_produce() {
    let c = chain(2);
    let (a, b) = (&c.net.users[0], &c.net.users[1]);
    let txs = vec![c.net.transfer(a, b.public(), 1, 0)];
    let now = c.state.time_ms() + 1_000;
    let (block, after, dropped) = c
        .state
        .build_block(txs.clone(), now, &c.net.sequencer)
        .expect("built");
    assert!(dropped.is_empty());
    assert_eq!(c.state.height(), 0);
    let mut s = c.state.clone();
    let (block2, _) = s.produce_block(txs, now, &c.net.sequencer).expect("produced");
    assert_eq!(block, block2);
    assert_eq!(after, s);
    assert_eq!(
        c.state
            .build_block(Vec::<Tx>::new(), now, &keypair(5))
            .map(|_| ()),
        Err(BlockError::NotSequencer(keypair(5).public()))
    );
}

#[test]
fn sequencer_skips_invalid_candidates_and_respects_the_size_limit() {
    let net = TestNet::with_params(TestParams {
        users: 2,
        balance: 100,
        max_txs_per_block: 3,
        ..TestParams::default()
    });
    let mut c = TestChain::new(net);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let txs: Vec<Tx> = (0..5).map(|n| c.net.transfer(&a, b.public(), 1, n)).collect();
    let mut bad = vec![c.net.transfer(&a, b.public(), 1_000, 0)];
    bad.extend(txs.clone());
    let dropped = c.next_block(bad);
    assert_eq!(c.blocks[0].txs, txs[..3].to_vec());
    let errors: Vec<TxError> = dropped.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        errors,
        vec![
            TxError::Overdraft {
                needed: 1_000,
                available: 100
            },
            TxError::BlockFull,
            TxError::BlockFull
        ]
    );
    // Disputes are put first whatever the candidate order.
    let (open, id) = c.net.open(&a, &b, (10, 10), 1, u64::MAX);
    c.next_block(vec![open]);
    c.next_block(vec![c.net.unilateral_close(&a, id, None, None)]);
    let upd = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 1, 3)), None);
    let t = c.net.transfer(&a, b.public(), 1, 3);
    assert!(c.next_block(vec![t.clone(), upd.clone()]).is_empty());
    assert_eq!(c.blocks.last().map(|b| b.txs.clone()), Some(vec![upd, t]));
}

#[test]
fn tampered_blocks_are_refused_precisely() {
    let c = chain(2);
    let (a, b) = (&c.net.users[0], &c.net.users[1]);
    let now = c.state.time_ms() + 1_000;
    let good = trial_block(&c, vec![c.net.transfer(a, b.public(), 1, 0)], now);
    let mut s = c.state.clone();
    let net = &c.net;

    let mut unsigned = good.clone();
    unsigned.signature.0[0] ^= 1;
    assert_eq!(refuse(&mut s, &unsigned), BlockError::BadSignature);
    let by_other = Block {
        signature: good.header.sign(&keypair(9)),
        ..good.clone()
    };
    assert_eq!(refuse(&mut s, &by_other), BlockError::BadSignature);
    let e = refuse(
        &mut s,
        &resign(net, good.clone(), |b| b.header.chain_id.0[0] ^= 1),
    );
    assert!(matches!(e, BlockError::WrongChain { .. }));
    assert_eq!(
        refuse(&mut s, &resign(net, good.clone(), |b| b.header.height = 2)),
        BlockError::WrongHeight { expected: 1, got: 2 }
    );
    assert_eq!(
        BlockError::WrongHeight { expected: 1, got: 2 }.class(),
        ErrorClass::Retryable
    );
    let e = refuse(
        &mut s,
        &resign(net, good.clone(), |b| b.header.prev_hash.0[3] ^= 1),
    );
    assert!(matches!(e, BlockError::WrongPrevHash { .. }));
    assert_eq!(
        refuse(&mut s, &resign(net, good.clone(), |b| b.header.tx_root.0[0] ^= 1)),
        BlockError::TxRootMismatch
    );
    assert_eq!(
        refuse(&mut s, &resign(net, good.clone(), |b| b.header.log_size += 1)),
        BlockError::LogSizeMismatch { expected: 1, got: 2 }
    );
    assert_eq!(
        refuse(
            &mut s,
            &resign(net, good.clone(), |b| b.header.log_root.0[0] ^= 1)
        ),
        BlockError::LogRootMismatch
    );
    assert_eq!(
        refuse(
            &mut s,
            &resign(net, good.clone(), |b| b.header.state_root.0[0] ^= 1)
        ),
        BlockError::StateRootMismatch
    );
    // A transaction swapped for another one: its rule fails, or the roots do.
    let e = refuse(
        &mut s,
        &resign(net, good.clone(), |b| b.txs[0] = net.transfer(a, b_pk(net), 2, 0)),
    );
    assert_eq!(e, BlockError::TxRootMismatch);
    let e = refuse(
        &mut s,
        &resign(net, good.clone(), |b| b.txs[0] = net.transfer(a, b_pk(net), 1, 5)),
    );
    assert_eq!(
        e,
        BlockError::Tx {
            index: 0,
            error: TxError::BadNonce { expected: 0, got: 5 }
        }
    );
    // A dropped transaction.
    let e = refuse(&mut s, &resign(net, good.clone(), |b| b.txs.clear()));
    assert_eq!(e, BlockError::TxRootMismatch);

    s.apply_block(&good).expect("the original is fine");
    // Applying it again: its height is taken.
    assert_eq!(
        refuse(&mut s, &good),
        BlockError::WrongHeight { expected: 2, got: 1 }
    );
    assert_eq!(
        BlockError::WrongHeight { expected: 2, got: 1 }.class(),
        ErrorClass::Rejected
    );
}

fn b_pk(net: &TestNet) -> paychan_protocol::PublicKey {
    net.users[1].public()
}

#[test]
fn block_tx_limit_and_dispute_order_are_enforced() {
    let net = TestNet::with_params(TestParams {
        users: 2,
        max_txs_per_block: 2,
        ..TestParams::default()
    });
    let mut c = TestChain::new(net);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let (open, id) = c.net.open(&a, &b, (10, 10), 1, u64::MAX);
    c.next_block(vec![open]);
    c.next_block(vec![c.net.unilateral_close(&a, id, None, None)]);

    let now = c.state.time_ms() + 1_000;
    let upd = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 1, 3)), None);
    let t = c.net.transfer(&a, b.public(), 1, 0);
    let good = trial_block(&c, vec![upd, t], now);
    let mut s = c.state.clone();
    let swapped = resign(&c.net, good.clone(), |b| b.txs.swap(0, 1));
    assert_eq!(
        refuse(&mut s, &swapped),
        BlockError::DisputeAfterNonDispute { index: 1 }
    );
    let three = resign(&c.net, good.clone(), |b| {
        let t2 = b.txs[1].clone();
        b.txs.push(t2)
    });
    assert_eq!(
        refuse(&mut s, &three),
        BlockError::TooManyTxs { count: 3, max: 2 }
    );
    // The same transaction twice in one block.
    let twice = resign(&c.net, good.clone(), |b| b.txs[0] = b.txs[1].clone());
    assert!(matches!(
        refuse(&mut s, &twice),
        BlockError::Tx {
            index: 1,
            error: TxError::AlreadyIncluded { index: 2 }
        }
    ));
    s.apply_block(&good).expect("valid");
}

// ------------------------------------------------------------------------------- ledger time

#[test]
fn next_block_time_clamps() {
    assert_eq!(next_block_time(1_000, 500, 100), 1_000, "never backwards");
    assert_eq!(next_block_time(1_000, 1_050, 100), 1_050);
    assert_eq!(next_block_time(1_000, 9_999, 100), 1_100, "at most one step");
    assert_eq!(next_block_time(u64::MAX - 1, u64::MAX, 100), u64::MAX);
}

#[test]
fn block_time_may_not_go_backwards_or_jump() {
    let c = chain(1);
    let step = c.net.genesis.max_time_step_ms;
    let t0 = c.state.time_ms();
    let mut s = c.state.clone();
    let good = trial_block(&c, vec![], t0 + step);
    assert_eq!(good.header.time_ms, t0 + step);
    let back = resign(&c.net, good.clone(), |b| b.header.time_ms = t0 - 1);
    assert_eq!(
        refuse(&mut s, &back),
        BlockError::TimeBackwards {
            prev: t0,
            got: t0 - 1
        }
    );
    let jump = resign(&c.net, good.clone(), |b| b.header.time_ms = t0 + step + 1);
    assert_eq!(
        refuse(&mut s, &jump),
        BlockError::TimeStepTooLarge {
            prev: t0,
            got: t0 + step + 1,
            max_step: step
        }
    );
    // Equal time is allowed (never backwards, not necessarily forwards).
    let same = trial_block(&c, vec![], t0 - 50);
    assert_eq!(same.header.time_ms, t0);
    s.clone().apply_block(&same).expect("valid");
    s.apply_block(&good).expect("valid");
}

/// After an outage the sequencer cannot close a challenge window with one late block: ledger
/// time catches up step by step, and an update still gets in.
#[test]
fn a_late_sequencer_cannot_jump_over_a_challenge_window() {
    let mut c = chain(2);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let (open, id) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
    c.next_block(vec![open]);
    c.next_block(vec![c.net.unilateral_close(&a, id, None, None)]);
    let end = c.state.window_end_ms(&id).expect("closing");
    // The sequencer wakes up long after the end and tries to settle at once; the update that
    // waited in its pool still gets in.
    let upd = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 1, 40)), None);
    let dropped = c.block_at(vec![c.net.settle(id), upd], end + 1_000_000);
    assert!(matches!(dropped[..], [(_, TxError::WindowOpen { .. })]));
    assert!(c.state.time_ms() < end);
    c.advance_to(end);
    assert!(c.next_block(vec![c.net.settle(id)]).is_empty());
    assert_eq!(
        c.state.channel(&id).map(|c| c.status.clone()),
        Some(ChannelStatus::Closed {
            payout_a: 60,
            payout_b: 140
        })
    );
}

// ------------------------------------------------------------------------------------ replay

#[test]
fn verify_chain_reports_the_failing_height() {
    let mut c = chain(2);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    for n in 0..4 {
        c.next_block(vec![c.net.transfer(&a, b.public(), 1, n)]);
    }
    let mut blocks = c.blocks.clone();
    blocks[2].header.state_root.0[0] ^= 1;
    let err = verify_chain(&c.net.genesis, &blocks).expect_err("tampered");
    assert_eq!(err.height, 3);
    assert_eq!(err.error, Error::Block(BlockError::BadSignature));
    assert_eq!(err.error.class(), ErrorClass::Violation);
    // A missing block shows up as the next one not linking.
    blocks.remove(2);
    let err = verify_chain(&c.net.genesis, &blocks).expect_err("gap");
    assert_eq!(err.height, 3);
    assert!(matches!(
        err.error,
        Error::Block(BlockError::WrongHeight { expected: 3, got: 4 })
    ));
    let mut bad = c.net.genesis.clone();
    bad.max_txs_per_block = 0;
    let none: &[Block] = &[];
    assert_eq!(verify_chain(&bad, none).map(|_| ()).unwrap_err().height, 0);
}

#[test]
fn inclusion_and_consistency_proofs_verify() {
    let mut c = chain(2);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let mut ids = Vec::new();
    for n in 0..7 {
        let tx = c.net.transfer(&a, b.public(), 1, n);
        ids.push((tx.id(), tx.leaf_hash()));
        c.next_block(vec![tx]);
    }
    let old = c.blocks[2].header;
    let s = &c.state;
    let proof = s.inclusion_proof(&ids[1].0, old.log_size).expect("in the log");
    merkle::verify_inclusion(&ids[1].1, proof.index, proof.size, &proof.path, &old.log_root)
        .expect("verifies");
    assert!(
        s.inclusion_proof(&ids[5].0, old.log_size).is_err(),
        "not yet in that log"
    );
    assert!(s.inclusion_proof(&paychan_protocol::Hash32([1; 32]), 7).is_err());

    let older = c.net.signed_checkpoint(
        paychan_protocol::Checkpoint {
            chain_id: c.net.chain_id,
            log_size: old.log_size,
            log_root: old.log_root,
            height: old.height,
            block_hash: old.hash(),
        },
        &[],
    );
    let newer = s.checkpoint();
    let path = s
        .consistency_proof(older.checkpoint.log_size, newer.log_size)
        .expect("proof");
    verify_checkpoint_consistency(&older.checkpoint, &newer, &path).expect("consistent");
    let mut forged = newer;
    forged.log_root.0[0] ^= 1;
    assert!(matches!(
        verify_checkpoint_consistency(&older.checkpoint, &forged, &path),
        Err(CheckpointError::Inconsistent(_))
    ));
    assert!(matches!(
        verify_checkpoint_consistency(&newer, &older.checkpoint, &path),
        Err(CheckpointError::HeightRegressed { .. })
    ));
    let mut other = newer;
    other.block_hash.0[0] ^= 1;
    assert_eq!(
        verify_checkpoint_consistency(&newer, &other, &[]),
        Err(CheckpointError::Equivocation { height: newer.height })
    );
    // From the empty genesis log everything is consistent.
    let genesis_cp = c.net.state().checkpoint();
    verify_checkpoint_consistency(&genesis_cp, &newer, &[]).expect("prefix of everything");
}

// ----------------------------------------------------------------------------------- mempool

#[test]
fn resubmission_is_harmless() {
    let mut c = chain(2);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let mut pool = Mempool::new(&c.net.genesis);
    let tx = c.net.transfer(&a, b.public(), 1, 0);
    assert_eq!(pool.submit(tx.clone(), &c.state), Ok(SubmitStatus::Accepted));
    assert_eq!(
        pool.submit(tx.clone(), &c.state),
        Ok(SubmitStatus::AlreadyPending)
    );
    let cands = pool.take_block_candidates(&c.state, 10);
    assert_eq!(cands, vec![tx.clone()]);
    assert!(c.next_block(cands).is_empty());
    assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::AlreadyIncluded));
    assert!(pool.is_empty());
}

#[test]
fn mempool_refuses_junk_with_typed_errors() {
    let c = chain(3);
    let (a, b, x) = (&c.net.users[0], &c.net.users[1], &c.net.users[2]);
    let other = TestNet::with_params(TestParams {
        users: 3,
        genesis_time_ms: 7,
        ..TestParams::default()
    });
    let mut pool = Mempool::new(&c.net.genesis);
    let s = &c.state;
    let mut bad = c.net.transfer(a, b.public(), 1, 0);
    if let Tx::Transfer { sig, .. } = &mut bad {
        sig.0[7] ^= 1;
    }
    assert_eq!(pool.submit(bad, s), Err(TxError::BadSignature));
    assert!(matches!(
        pool.submit(other.transfer(a, b.public(), 1, 0), s),
        Err(TxError::WrongChain { .. })
    ));
    assert!(matches!(
        pool.submit(c.net.transfer(a, b.public(), 1_000_000, 0), s),
        Err(TxError::Overdraft { .. })
    ));
    assert!(matches!(
        pool.submit(c.net.transfer(a, b.public(), 1, 100), s),
        Err(TxError::BadNonce { .. })
    ));
    let unfunded = keypair(4242);
    assert!(matches!(
        pool.submit(c.net.transfer(&unfunded, b.public(), 1, 0), s),
        Err(TxError::Overdraft { available: 0, .. })
    ));
    // Opens, closes and disputes are checked against the ledger.
    let (open, id) = c.net.open(a, b, (1, 1), 1, 0);
    assert!(matches!(pool.submit(open, s), Err(TxError::Expired { .. })));
    assert_eq!(pool.submit(c.net.settle(id), s), Err(TxError::UnknownChannel(id)));
    assert!(matches!(
        pool.submit(c.net.unilateral_close(x, id, None, None), s),
        Err(TxError::UnknownChannel(_))
    ));
    // Same nonce, different transaction.
    assert_eq!(
        pool.submit(c.net.transfer(a, b.public(), 1, 0), s),
        Ok(SubmitStatus::Accepted)
    );
    assert_eq!(
        pool.submit(c.net.transfer(a, b.public(), 2, 0), s),
        Err(TxError::NonceConflict { nonce: 0 })
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn mempool_enforces_the_pending_limit_per_account() {
    let c = chain(2);
    let (a, b) = (&c.net.users[0], &c.net.users[1]);
    let limit = c.net.genesis.max_pending_per_account;
    let mut pool = Mempool::new(&c.net.genesis);
    for n in 0..u64::from(limit) {
        assert_eq!(
            pool.submit(c.net.transfer(a, b.public(), 1, n), &c.state),
            Ok(SubmitStatus::Accepted)
        );
    }
    // Opens count for party A.
    let (open, _) = c.net.open(a, b, (1, 1), 1, u64::MAX);
    let e = pool.submit(open.clone(), &c.state).expect_err("limit");
    assert_eq!(
        e,
        TxError::PendingLimit {
            account: a.public(),
            limit
        }
    );
    assert_eq!(e.class(), ErrorClass::Retryable);
    // Others are unaffected; and B may open with A as party B.
    let (open_ba, _) = c.net.open(b, a, (1, 1), 2, u64::MAX);
    assert_eq!(pool.submit(open_ba, &c.state), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.pending_for(&a.public()), limit);
    // Taking candidates frees room.
    let taken = pool.take_block_candidates(&c.state, 3);
    assert_eq!(taken.len(), 3);
    assert_eq!(pool.submit(open, &c.state), Ok(SubmitStatus::Accepted));
}

#[test]
fn mempool_orders_disputes_first_and_nonces_in_order() {
    let mut c = chain(3);
    let (a, b, x) = (
        c.net.users[0].clone(),
        c.net.users[1].clone(),
        c.net.users[2].clone(),
    );
    let (open, id) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
    c.next_block(vec![open]);
    c.next_block(vec![c.net.unilateral_close(&a, id, None, None)]);

    let mut pool = Mempool::new(&c.net.genesis);
    let t1 = c.net.transfer(&x, a.public(), 1, 1);
    let t0 = c.net.transfer(&x, a.public(), 1, 0);
    let t3 = c.net.transfer(&x, a.public(), 1, 3);
    let ta = c.net.transfer(&a, x.public(), 1, 0);
    let upd = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 1, 10)), None);
    for tx in [t1.clone(), ta.clone(), t3.clone(), t0.clone(), upd.clone()] {
        assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::Accepted));
    }
    let cands = pool.take_block_candidates(&c.state, 10);
    // The dispute first; x's transfers in nonce order; nonce 3 waits for nonce 2.
    assert_eq!(cands, vec![upd, t0, ta, t1]);
    assert_eq!(pool.len(), 1);
    assert!(c.next_block(cands).is_empty());
    let t2 = c.net.transfer(&x, a.public(), 1, 2);
    assert_eq!(pool.submit(t2.clone(), &c.state), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.take_block_candidates(&c.state, 10), vec![t2, t3]);
}

#[test]
fn mempool_keeps_only_the_best_pending_update_per_direction() {
    let mut c = chain(2);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let (open, id) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
    c.next_block(vec![open]);
    c.next_block(vec![c.net.unilateral_close(&a, id, None, None)]);
    let mut pool = Mempool::new(&c.net.genesis);
    let net = c.net.clone();
    let u = |t_ab: Option<u64>, t_ba: Option<u64>| {
        net.update(
            id,
            t_ab.map(|t| net.proof(&a, id, Direction::AToB, t, t)),
            t_ba.map(|t| net.proof(&b, id, Direction::BToA, t, t)),
        )
    };
    let s = &c.state;
    assert_eq!(pool.submit(u(Some(10), None), s), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.submit(u(Some(5), None), s), Err(TxError::StaleProof));
    assert_eq!(pool.submit(u(None, Some(3)), s), Ok(SubmitStatus::Accepted));
    // Beats A->B, so the first update is evicted; B->A keeps its holder.
    assert_eq!(pool.submit(u(Some(20), None), s), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.len(), 2);
    // Beats both: the only one left.
    let best = u(Some(30), Some(4));
    assert_eq!(pool.submit(best.clone(), s), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.len(), 1);
    assert_eq!(
        pool.submit(u(Some(30), Some(4)), s),
        Ok(SubmitStatus::AlreadyPending)
    );
    assert!(c.next_block(pool.take_block_candidates(&c.state, 10)).is_empty());
    let ch = c.state.channel(&id).expect("channel");
    assert_eq!(ch.best(Direction::AToB).map(|p| p.proof.transferred), Some(30));
    assert_eq!(ch.best(Direction::BToA).map(|p| p.proof.transferred), Some(4));
    // Not above the ledger's best any more.
    assert_eq!(pool.submit(u(Some(25), None), &c.state), Err(TxError::StaleProof));
    // A settle is accepted once ledger time has reached the end of the window, and only once.
    let end = c.state.window_end_ms(&id).expect("closing");
    assert!(matches!(
        pool.submit(c.net.settle(id), &c.state),
        Err(TxError::WindowOpen { .. })
    ));
    c.advance_to(end);
    assert_eq!(
        pool.submit(c.net.settle(id), &c.state),
        Ok(SubmitStatus::Accepted)
    );
    assert_eq!(
        pool.submit(c.net.settle(id), &c.state),
        Ok(SubmitStatus::AlreadyPending)
    );
}

#[test]
fn a_full_pool_still_takes_disputes() {
    let mut c = chain(3);
    let (a, b, x) = (
        c.net.users[0].clone(),
        c.net.users[1].clone(),
        c.net.users[2].clone(),
    );
    let (open, id) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
    c.next_block(vec![open]);
    c.next_block(vec![c.net.unilateral_close(&a, id, None, None)]);
    let mut pool = Mempool::with_limits(8, 1);
    assert_eq!(
        pool.submit(c.net.transfer(&x, a.public(), 1, 0), &c.state),
        Ok(SubmitStatus::Accepted)
    );
    let full = pool.submit(c.net.transfer(&b, a.public(), 1, 0), &c.state);
    assert_eq!(full, Err(TxError::PoolFull));
    assert_eq!(TxError::PoolFull.class(), ErrorClass::Retryable);
    let upd = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 1, 5)), None);
    assert_eq!(pool.submit(upd, &c.state), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.len(), 2);
}

#[test]
fn prune_drops_what_can_no_longer_apply() {
    let mut c = chain(2);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let mut pool = Mempool::new(&c.net.genesis);
    let t = c.net.transfer(&a, b.public(), 1, 0);
    assert_eq!(pool.submit(t.clone(), &c.state), Ok(SubmitStatus::Accepted));
    // The transaction reaches the ledger another way.
    c.next_block(vec![t]);
    pool.prune(&c.state);
    assert!(pool.is_empty());
}

// ------------------------------------------------------------------------------ checkpoints

#[test]
fn checkpoints_are_witnessed_only_with_threshold_distinct_witnesses() {
    let mut c = chain(1);
    c.next_block(Vec::<Tx>::new());
    let g = &c.net.genesis;
    let cp = c.state.checkpoint();
    assert_eq!(cp.height, 1);
    assert_eq!(cp.block_hash, c.blocks[0].header.hash());
    let status = |cos: &[usize]| verify_checkpoint(g, &c.net.signed_checkpoint(cp, cos));
    assert_eq!(
        status(&[]),
        Ok(CheckpointStatus {
            witnessed: false,
            cosigners: 0
        })
    );
    assert_eq!(
        status(&[2]),
        Ok(CheckpointStatus {
            witnessed: false,
            cosigners: 1
        })
    );
    assert_eq!(
        status(&[2, 0]),
        Ok(CheckpointStatus {
            witnessed: true,
            cosigners: 2
        })
    );
    assert_eq!(
        c.state
            .verify_checkpoint(&c.net.signed_checkpoint(cp, &[0, 1, 2]))
            .map(|s| s.cosigners),
        Ok(3)
    );
    // A duplicate does not count twice: it is refused.
    let w0 = c.net.witnesses[0].public();
    assert_eq!(status(&[0, 0]), Err(CheckpointError::DuplicateWitness(w0)));

    let mut sc = c.net.signed_checkpoint(cp, &[0]);
    sc.cosignatures[0].signature.0[2] ^= 1;
    assert_eq!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::BadCosignature(w0))
    );
    // The timestamp is signed: another one, or one above 2^63 - 1, does not verify.
    let mut sc = c.net.signed_checkpoint(cp, &[0]);
    sc.cosignatures[0].timestamp_s += 1;
    assert_eq!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::BadCosignature(w0))
    );
    let mut sc = c.net.signed_checkpoint(cp, &[]);
    sc.cosignatures.push(cp.cosign(&c.net.witnesses[0], u64::MAX));
    assert_eq!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::BadCosignature(w0))
    );
    let stranger = keypair(31337);
    let mut sc = c.net.signed_checkpoint(cp, &[0, 1]);
    sc.cosignatures.push(cp.cosign(&stranger, COSIGN_TIME_S));
    assert_eq!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::NotAWitness(stranger.public()))
    );
    // A cosignature of another checkpoint.
    let mut other = cp;
    other.log_size += 1;
    let mut sc = c.net.signed_checkpoint(cp, &[0]);
    sc.cosignatures
        .push(other.cosign(&c.net.witnesses[1], COSIGN_TIME_S));
    assert!(matches!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::BadCosignature(_))
    ));
    let mut sc = c.net.signed_checkpoint(cp, &[0, 1]);
    sc.signature.0[0] ^= 1;
    assert_eq!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::BadSequencerSignature)
    );
    let mut sc = c.net.signed_checkpoint(cp, &[0, 1]);
    sc.checkpoint.chain_id.0[0] ^= 1;
    assert!(matches!(
        verify_checkpoint(g, &sc),
        Err(CheckpointError::WrongChain { .. })
    ));

    // Gathering: duplicates are ignored, bad ones refused.
    let mut sc = c.net.signed_checkpoint(cp, &[]);
    assert_eq!(
        add_cosignature(g, &mut sc, cp.cosign(&c.net.witnesses[1], COSIGN_TIME_S)),
        Ok(true)
    );
    assert_eq!(
        add_cosignature(g, &mut sc, cp.cosign(&c.net.witnesses[1], COSIGN_TIME_S)),
        Ok(false)
    );
    assert!(add_cosignature(g, &mut sc, cp.cosign(&stranger, COSIGN_TIME_S)).is_err());
    assert!(add_cosignature(g, &mut sc, other.cosign(&c.net.witnesses[2], COSIGN_TIME_S)).is_err());
    assert_eq!(
        add_cosignature(g, &mut sc, cp.cosign(&c.net.witnesses[2], COSIGN_TIME_S)),
        Ok(true)
    );
    assert_eq!(verify_checkpoint(g, &sc).map(|s| s.witnessed), Ok(true));
}

#[test]
fn a_ledger_without_witnesses_witnesses_every_signed_checkpoint() {
    let net = TestNet::with_params(TestParams {
        witnesses: 0,
        witness_threshold: 0,
        ..TestParams::default()
    });
    let cp = net.state().checkpoint();
    assert_eq!(
        verify_checkpoint(&net.genesis, &net.signed_checkpoint(cp, &[])),
        Ok(CheckpointStatus {
            witnessed: true,
            cosigners: 0
        })
    );
}

// ----------------------------------------------------------------------------------- genesis

#[test]
fn genesis_rules() {
    let net = TestNet::new(3, 10);
    let ok = net.genesis.clone();
    assert_eq!(LedgerState::from_genesis(&ok).map(|s| s.genesis_supply()), Ok(30));
    let s = LedgerState::from_genesis(&ok).expect("valid");
    assert_eq!(
        (s.height(), s.time_ms(), s.last_block_hash()),
        (0, ok.genesis_time_ms, ok.chain_id())
    );
    assert_eq!(s.log_root(), merkle::empty_root());

    let check = |edit: &dyn Fn(&mut paychan_protocol::Genesis)| {
        let mut g = ok.clone();
        edit(&mut g);
        LedgerState::from_genesis(&g)
            .map(|_| ())
            .expect_err("invalid genesis")
    };
    assert!(matches!(
        check(&|g| g.network = "x".repeat(65)),
        GenesisError::NetworkNameTooLong { .. }
    ));
    for (field, bad) in [
        ("name", ""),
        ("name", "a-unit-name-of-more-than-32-bytes"),
        ("name", "cred\nit"),
        ("name", " credit"),
        ("symbol", ""),
        ("symbol", "c r"),
        ("symbol", "ninebytes"),
        ("symbol", "\u{7}"),
    ] {
        let err = check(&|g| {
            if field == "name" {
                g.unit.name = bad.into();
            } else {
                g.unit.symbol = bad.into();
            }
        });
        assert!(
            matches!(&err, GenesisError::BadUnit { field: f, .. } if *f == field),
            "{field} {bad:?}: {err:?}"
        );
    }
    let mut other_unit = ok.clone();
    other_unit.unit = paychan_protocol::Unit {
        name: "euro cent".into(),
        symbol: "c€".into(),
    };
    assert!(LedgerState::from_genesis(&other_unit).is_ok());
    assert_ne!(
        other_unit.chain_id(),
        ok.chain_id(),
        "the unit is part of the chain id"
    );
    assert!(matches!(
        check(&|g| g.witnesses.push(g.witnesses[0])),
        GenesisError::DuplicateWitness(_)
    ));
    assert_eq!(
        check(&|g| g.witnesses.push(g.sequencer)),
        GenesisError::SequencerIsWitness
    );
    assert!(matches!(
        check(&|g| g.witness_threshold = 4),
        GenesisError::BadThreshold { .. }
    ));
    assert!(matches!(
        check(&|g| g.witness_threshold = 0),
        GenesisError::BadThreshold { .. }
    ));
    assert!(matches!(
        check(&|g| {
            g.witnesses.clear();
            g.witness_threshold = 1
        }),
        GenesisError::BadThreshold { .. }
    ));
    assert!(matches!(
        check(&|g| g.witnesses = (0..65).map(|i| keypair(5000 + i).public()).collect()),
        GenesisError::TooManyWitnesses { .. }
    ));
    assert_eq!(
        check(&|g| g.challenge_period_ms = 0),
        GenesisError::ZeroPeriod("challenge_period_ms")
    );
    assert_eq!(
        check(&|g| g.block_interval_ms = 0),
        GenesisError::ZeroPeriod("block_interval_ms")
    );
    assert_eq!(check(&|g| g.max_time_step_ms = 1), GenesisError::TimingOrder);
    assert_eq!(check(&|g| g.block_interval_ms = 6_000), GenesisError::TimingOrder);
    assert!(matches!(
        check(&|g| g.max_txs_per_block = 0),
        GenesisError::TxsPerBlock { .. }
    ));
    assert!(matches!(
        check(&|g| g.max_txs_per_block = 4_097),
        GenesisError::TxsPerBlock { .. }
    ));
    assert_eq!(
        check(&|g| g.max_pending_per_account = 0),
        GenesisError::ZeroPendingLimit
    );
    // A window of two time steps (the shipped genesis once had 5 s against 4 s) passes in two
    // blocks after an outage; 20 steps is the least genesis accepts.
    assert_eq!(
        check(&|g| g.challenge_period_ms = 2 * g.max_time_step_ms),
        GenesisError::ChallengeTooShort {
            challenge_period_ms: 10_000,
            max_time_step_ms: 5_000,
            steps_min: 20
        }
    );
    assert!(matches!(
        check(&|g| g.challenge_period_ms = 20 * g.max_time_step_ms - 1),
        GenesisError::ChallengeTooShort { .. }
    ));
    assert_eq!(
        check(&|g| g.tx_fee_per_byte = u64::MAX / 8),
        GenesisError::FeeOverflow
    );
    assert_eq!(
        check(&|g| g.allocations.swap(0, 1)),
        GenesisError::AllocationsNotSorted { index: 1 }
    );
    assert_eq!(
        check(&|g| g.allocations[1].0 = g.allocations[0].0),
        GenesisError::AllocationsNotSorted { index: 1 }
    );
    assert_eq!(
        check(&|g| g.allocations[2].1 = 0),
        GenesisError::ZeroAllocation { index: 2 }
    );
    assert_eq!(
        check(&|g| g.allocations[2].1 = u64::MAX),
        GenesisError::SupplyOverflow
    );
}

/// Two checkpoints of the empty log with different roots do not extend each other: the
/// sequencer signed a second root for size 0, a split view.
#[test]
fn two_empty_logs_with_different_roots_are_inconsistent() {
    use paychan_ledger::verify_checkpoint_consistency;
    use paychan_protocol::{merkle, Checkpoint, Hash32};
    let chain_id = Hash32([7; 32]);
    let older = Checkpoint {
        chain_id,
        log_size: 0,
        log_root: merkle::empty_root(),
        height: 1,
        block_hash: Hash32([1; 32]),
    };
    let honest = Checkpoint {
        height: 3,
        block_hash: Hash32([3; 32]),
        ..older
    };
    assert!(verify_checkpoint_consistency(&older, &honest, &[]).is_ok());
    let fake = Checkpoint {
        log_root: Hash32([9; 32]),
        ..honest
    };
    assert!(verify_checkpoint_consistency(&older, &fake, &[]).is_err());
}

// ----------------------------------------------------------------------------- replica clock

#[test]
fn a_replica_refuses_a_block_from_the_future() {
    use paychan_protocol::limits::BLOCK_TIME_AHEAD_MS_MAX;
    let c = chain(2);
    let (a, b) = (&c.net.users[0], &c.net.users[1]);
    let t0 = c.state.time_ms();
    // The sequencer's clock runs a full step ahead of the replica's.
    let block = trial_block(&c, vec![c.net.transfer(a, b.public(), 5, 0)], u64::MAX);
    let ahead = block.header.time_ms;
    assert_eq!(ahead, t0 + c.net.genesis.max_time_step_ms);
    let mut replica = c.state.clone();
    let before = replica.clone();
    let now = ahead - BLOCK_TIME_AHEAD_MS_MAX - 1;
    let e = replica.apply_block_at(&block, now).expect_err("from the future");
    assert_eq!(
        e,
        BlockError::FromTheFuture {
            time_ms: ahead,
            ahead_ms: BLOCK_TIME_AHEAD_MS_MAX + 1,
            max_ms: BLOCK_TIME_AHEAD_MS_MAX
        }
    );
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert_eq!(replica, before, "a refused block changes nothing");
    // A badly signed block is a violation before it is early.
    let forged = Block {
        signature: paychan_protocol::Signature([0; 64]),
        ..block.clone()
    };
    assert_eq!(
        replica.apply_block_at(&forged, now),
        Err(BlockError::BadSignature)
    );
    // Once the replica's clock is within the bound, the same block applies; replay (no clock)
    // never applies the rule.
    replica
        .apply_block_at(&block, ahead - BLOCK_TIME_AHEAD_MS_MAX)
        .expect("within the bound");
    let mut replay = c.state.clone();
    replay.apply_block(&block).expect("replay has no clock rule");
    assert_eq!(replay.state_root(), replica.state_root());
}

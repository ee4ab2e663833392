//! The mempool under spam: the flood that once filled it for good, the nonce window, expiry,
//! eviction, and the room reserved for closes and disputes.

use paychan_ledger::mempool::{EXPIRY_BLOCKS, NONCE_WINDOW};
use paychan_ledger::testkit::{keypair, TestChain, TestNet, TestParams};
use paychan_ledger::{Mempool, TxError};
use paychan_protocol::wire::SubmitStatus;
use paychan_protocol::{Direction, Keypair, Tx};

/// A network with the shipped testnet's pool limits (1,024 transactions per block, 256
/// pending per account: a pool of 16,384), three honest users and `spammers` keys holding
/// `spam_balance` each.
fn network(spammers: u64, spam_balance: u64, params: TestParams) -> (TestNet, Vec<Keypair>) {
    let mut net = TestNet::with_params(TestParams {
        users: 3,
        balance: 1_000_000,
        max_txs_per_block: 1_024,
        max_pending_per_account: 256,
        ..params
    });
    let spam: Vec<Keypair> = (0..spammers).map(|i| keypair(50_000 + i)).collect();
    net.genesis
        .allocations
        .extend(spam.iter().map(|k| (k.public(), spam_balance)));
    net.genesis.allocations.sort();
    net.chain_id = net.genesis.chain_id();
    (net, spam)
}

/// Issue 14.2: 65 accounts holding 1 unit each sent transfers that skip their next nonce. They
/// passed admission, never went into a block and were never pruned: 16,384 of them filled the
/// pool, and every honest transfer, close and dispute was refused as "mempool full", still 450
/// blocks later.
#[test]
fn the_nonce_skipping_flood_no_longer_blocks_honest_transactions() {
    let (net, spam) = network(65, 1, TestParams::default());
    let mut c = TestChain::new(net);
    let (a, b, x) = (
        c.net.users[0].clone(),
        c.net.users[1].clone(),
        c.net.users[2].clone(),
    );
    // An honest channel, already closing, whose payee holds a newer proof.
    let (open, id) = c.net.open(&a, &b, (10_000, 10_000), 1, u64::MAX);
    assert!(c.next_block(vec![open]).is_empty());
    let (open2, id2) = c.net.open(&b, &x, (5_000, 5_000), 2, u64::MAX);
    assert!(c.next_block(vec![open2]).is_empty());
    assert!(c
        .next_block(vec![c.net.unilateral_close(&a, id, None, None)])
        .is_empty());

    let mut pool = Mempool::new(&c.net.genesis);
    let mut admitted = 0;
    for k in &spam {
        for nonce in 1..256u64 {
            if pool
                .submit(c.net.transfer(k, x.public(), 1, nonce), &c.state)
                .is_ok()
            {
                admitted += 1;
            }
        }
    }
    // One unit covers one pending transfer of 1, and only nonces near the next one count.
    assert!(admitted <= spam.len(), "{admitted} spam transfers admitted");

    let honest = c.net.transfer(&a, x.public(), 100, 0);
    let coop = c.net.coop_close(&b, &x, id2, (4_000, 6_000));
    let dispute = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 7, 700)), None);
    for tx in [&honest, &coop, &dispute] {
        assert_eq!(pool.submit(tx.clone(), &c.state), Ok(SubmitStatus::Accepted));
    }
    // All three go into the very next block; the spam never can.
    let cands = pool.take_block_candidates(&c.state, c.net.genesis.max_txs_per_block as usize);
    assert_eq!(
        cands[..2],
        [dispute.clone(), coop.clone()],
        "disputes, then closes, first"
    );
    assert!(cands.iter().any(|c| *c == honest));
    assert!(c.next_block(cands).is_empty());
    for tx in [&honest, &coop, &dispute] {
        assert!(c.state.contains_tx(&tx.id()));
    }
    // What cannot run expires instead of holding room for good.
    for _ in 0..=EXPIRY_BLOCKS {
        c.next_block(Vec::<Tx>::new());
        pool.prune(&c.state);
    }
    assert!(pool.is_empty(), "{} entries left", pool.len());
}

#[test]
fn only_a_small_nonce_window_is_admitted() {
    let (net, _) = network(0, 0, TestParams::default());
    let c = TestChain::new(net);
    let (a, b) = (&c.net.users[0], &c.net.users[1]);
    let mut pool = Mempool::new(&c.net.genesis);
    assert_eq!(
        pool.submit(c.net.transfer(a, b.public(), 1, NONCE_WINDOW), &c.state),
        Err(TxError::BadNonce {
            expected: 0,
            got: NONCE_WINDOW
        })
    );
    for nonce in 1..NONCE_WINDOW {
        assert_eq!(
            pool.submit(c.net.transfer(a, b.public(), 1, nonce), &c.state),
            Ok(SubmitStatus::Accepted)
        );
    }
    // The gap at nonce 0 keeps them all out of blocks, and they expire.
    let mut c = c;
    assert!(pool.take_block_candidates(&c.state, 64).is_empty());
    for _ in 0..=EXPIRY_BLOCKS {
        c.next_block(Vec::<Tx>::new());
    }
    pool.prune(&c.state);
    assert!(pool.is_empty());
}

/// Funded spammers sending valid, runnable transfers at the highest rate fill the regular
/// room; closes and disputes keep their own room and their block space, and a transaction
/// that pays a higher fee than the cheapest pending one takes its place.
#[test]
fn a_full_pool_keeps_room_for_closes_and_disputes_and_evicts_the_cheapest() {
    let (net, spam) = network(
        60,
        1_000_000,
        TestParams {
            tx_fee_min: 10,
            tx_fee_per_byte: 1,
            ..TestParams::default()
        },
    );
    let mut c = TestChain::new(net);
    let (a, b, x) = (
        c.net.users[0].clone(),
        c.net.users[1].clone(),
        c.net.users[2].clone(),
    );
    let (open, id) = c.net.open(&a, &b, (10_000, 10_000), 1, u64::MAX);
    let (open2, id2) = c.net.open(&b, &x, (5_000, 5_000), 2, u64::MAX);
    assert!(c.next_block(vec![open, open2]).is_empty());
    assert!(c
        .next_block(vec![c.net.unilateral_close(&a, id, None, None)])
        .is_empty());

    // A pool of 60 regular transactions, filled by the spammers (one each, runnable).
    let mut pool = Mempool::with_limits(256, 60);
    for k in &spam {
        let tx = c.net.transfer(k, x.public(), 1, 0);
        assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::Accepted));
    }
    // A transfer paying what the spam pays waits.
    assert_eq!(
        pool.submit(c.net.transfer(&a, x.public(), 1, 0), &c.state),
        Err(TxError::PoolFull)
    );
    // Closes and disputes are not in the spam's room.
    let coop = c.net.coop_close(&b, &x, id2, (4_000, 6_000));
    let dispute = c
        .net
        .update(id, Some(c.net.proof(&a, id, Direction::AToB, 7, 700)), None);
    assert_eq!(pool.submit(coop.clone(), &c.state), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.submit(dispute.clone(), &c.state), Ok(SubmitStatus::Accepted));
    // A second pending close of the same kind for one channel is refused.
    assert_eq!(
        pool.submit(c.net.coop_close(&b, &x, id2, (5_000, 5_000)), &c.state),
        Err(TxError::ClosePending(id2))
    );
    // An open is larger than a transfer, so it pays a higher fee: it evicts the cheapest,
    // newest spam transfer.
    let (open3, _) = c.net.open(&a, &x, (1_000, 0), 3, u64::MAX);
    assert_eq!(pool.submit(open3.clone(), &c.state), Ok(SubmitStatus::Accepted));
    assert_eq!(pool.len(), 62);
    let evicted = c.net.transfer(&spam[59], x.public(), 1, 0);
    assert!(!pool.contains(&evicted.id()));

    // Blocks of 8: the dispute and the close take the first block's first slots, whatever
    // the spam; the regular transactions get the rest.
    let cands = pool.take_block_candidates(&c.state, 8);
    assert_eq!(cands.len(), 8);
    assert_eq!(cands[..2], [dispute.clone(), coop.clone()]);
    assert!(c.next_block(cands).is_empty());
    assert!(c.state.contains_tx(&dispute.id()) && c.state.contains_tx(&coop.id()));
}

/// A transaction whose nonce has passed (it reached the ledger another way, or another one
/// used its nonce) goes at the next prune.
#[test]
fn passed_nonces_are_pruned() {
    let (net, _) = network(0, 0, TestParams::default());
    let mut c = TestChain::new(net);
    let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
    let mut pool = Mempool::new(&c.net.genesis);
    assert_eq!(
        pool.submit(c.net.transfer(&a, b.public(), 1, 0), &c.state),
        Ok(SubmitStatus::Accepted)
    );
    let other: Tx = c.net.transfer(&a, b.public(), 2, 0);
    assert!(c.next_block(vec![other]).is_empty());
    pool.prune(&c.state);
    assert!(pool.is_empty());
}

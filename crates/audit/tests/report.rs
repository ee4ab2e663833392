//! The report's figures on a known history.

mod common;

use paychan_audit::{audit_export, Auditor, ChannelCounts, Pin, TxCounts};
use paychan_ledger::Signatures;

#[test]
fn the_report_counts_a_known_history() {
    // sample_history: 3 opens, 1 deposit, 1 unilateral close, 1 update, 1 settle, 1 coop close
    // and 1 transfer, then 20 transfers, 8 per block.
    let chain = common::ledger(20);
    let cps = common::checkpoints(&chain.net, &chain.blocks);
    let bytes = common::export(&chain.net, &chain.blocks, &cps, None);
    let auditor = audit_export(&bytes[..], Pin::ChainId(chain.net.chain_id), None).expect("valid");
    let r = auditor.report();

    let blocks = chain.blocks.len() as u64;
    assert_eq!(
        blocks,
        24 + 3,
        "3 blocks, 20 heartbeats (a window spans at least 20 time steps), the closes, then 3 \
         blocks of transfers"
    );
    assert_eq!(r.chain_id, chain.net.chain_id.to_hex());
    assert_eq!(r.network, "paychan-test");
    assert_eq!((r.height, r.blocks), (blocks, blocks));
    assert_eq!(
        r.by_kind,
        TxCounts {
            transfer: 21,
            open: 3,
            deposit: 1,
            coop_close: 1,
            unilateral_close: 1,
            update: 1,
            settle: 1,
            credit_grant: 0,
            repay: 0,
        }
    );
    assert_eq!((r.transactions, r.log_size), (29, 29));
    assert_eq!(
        r.channels,
        ChannelCounts {
            opened: 3,
            closed: 1,
            close_started: 1,
            settled: 1,
            live: 1,
            locked: 2_500,
        }
    );
    assert_eq!((r.accounts, r.supply), (4, 4_000_000));
    assert_eq!(r.time_ms, chain.state.time_ms());

    // Checkpoints at heights 1 and 16 (one cosigner: not witnessed), and every third height
    // from 3 to 27 (witnessed).
    assert_eq!((r.checkpoints, r.checkpoints_matched), (11, 11));
    let newest = r.newest_checkpoint.as_ref().expect("newest");
    let witnessed = r.newest_witnessed.as_ref().expect("witnessed");
    assert_eq!(newest, witnessed);
    assert_eq!(
        (witnessed.height, witnessed.cosigners, witnessed.witnessed),
        (27, 2, true)
    );
    assert_eq!(witnessed.log_size, 29);
    assert_eq!(witnessed.log_root, chain.state.log_root().to_hex());
    assert!(witnessed.matched && r.reaches_newest_witnessed);
    assert_eq!(r.behind_newest_witnessed, 0);
    assert_eq!(r.accepted_checked, None);
    assert!(r.verify_ms > 0.0 && r.txs_per_s > 0.0);

    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["by_kind"]["transfer"], 21);
    assert_eq!(json["newest_witnessed"]["height"], 27);
    assert!(r
        .summary()
        .contains("reaches the newest witnessed checkpoint (height 27, size 29, 2 cosigners)"));

    // Balances: every account and channel; balances plus live deposits are the supply.
    let b = auditor.balances();
    assert_eq!((b.height, b.accounts.len(), b.channels.len()), (blocks, 4, 3));
    let balances: u64 = b.accounts.iter().map(|a| a.balance).sum();
    assert_eq!(balances + r.channels.locked, r.supply);
    for a in &b.accounts {
        assert_eq!(
            a.balance,
            chain
                .state
                .balance(&paychan_protocol::PublicKey::from_hex(&a.key).expect("hex"))
        );
    }
    let mut statuses: Vec<_> = b.channels.iter().map(|c| c.status).collect();
    statuses.sort();
    assert_eq!(statuses, ["closed", "closed", "open"]);
    let settled = b.channels.iter().filter_map(|c| c.payouts).collect::<Vec<_>>();
    assert!(
        settled.contains(&(4_000, 2_700)),
        "the cooperative close pays what it says"
    );
    // Channel 2: deposits 3000/3000, best proofs 1500 (A to B) and 400 (B to A).
    assert!(settled.contains(&(3_000 - 1_500 + 400, 3_000 + 1_500 - 400)));
}

#[test]
fn a_checkpoint_ahead_of_the_blocks_is_held_then_matched() {
    let chain = common::ledger(20);
    let cps = common::checkpoints(&chain.net, &chain.blocks);
    let newest = cps.last().expect("checkpoints").clone();
    let mut a = Auditor::new(
        &chain.net.genesis,
        Pin::Genesis(Box::new(chain.net.genesis.clone())),
    )
    .expect("genesis")
    .with_signatures(Signatures::EachAlone);
    a.push_checkpoint(&newest).expect("signatures verify");
    for b in &chain.blocks[..5] {
        a.push_block(b).expect("valid");
    }
    let r = a.report();
    assert_eq!((r.height, r.checkpoints, r.checkpoints_matched), (5, 1, 0));
    assert!(!r.reaches_newest_witnessed);
    assert_eq!(r.behind_newest_witnessed, newest.checkpoint.height - 5);
    assert!(!r.newest_witnessed.as_ref().expect("held").matched);
    for b in &chain.blocks[5..] {
        a.push_block(b).expect("valid");
    }
    let r = a.report();
    assert_eq!((r.checkpoints_matched, r.behind_newest_witnessed), (1, 0));
    assert!(r.reaches_newest_witnessed && r.newest_witnessed.as_ref().expect("matched").matched);
}

/// A ledger whose first blocks carry no transaction (a testnet's heartbeats before its first
/// payment): checkpoints of the empty log, then of a grown one, are consistent.
#[test]
fn checkpoints_of_an_empty_log_then_a_grown_one_are_consistent() {
    use paychan_ledger::testkit::{TestChain, TestNet};
    let mut chain = TestChain::new(TestNet::new(2, 1_000));
    let (a, b) = (chain.net.users[0].clone(), chain.net.users[1].clone());
    chain.next_block(Vec::<paychan_protocol::Tx>::new());
    chain.next_block(Vec::<paychan_protocol::Tx>::new());
    chain.next_block(vec![chain.net.transfer(&a, b.public(), 5, 0)]);
    let mut state = chain.net.state();
    let mut cps = Vec::new();
    for blk in &chain.blocks {
        state.apply_block(blk).expect("valid");
        cps.push(chain.net.signed_checkpoint(state.checkpoint(), &[]));
    }
    assert_eq!(
        cps.iter().map(|c| c.checkpoint.log_size).collect::<Vec<_>>(),
        [0, 0, 1]
    );
    let bytes = common::export(&chain.net, &chain.blocks, &cps, None);
    let auditor = audit_export(&bytes[..], Pin::ChainId(chain.net.chain_id), None)
        .expect("the empty log is a prefix of every log");
    assert_eq!(auditor.report().checkpoints_matched, 3);
}

//! The auditor on a ledger with credit: lines and debts listed in the balances, conservation
//! checked after every block, and a block whose state root claims another debt refused.

use paychan_audit::{Auditor, Pin};
use paychan_ledger::testkit::{TestChain, TestNet};
use paychan_ledger::LedgerState;
use paychan_protocol::{Block, Direction};

/// A grant, a debtor paying 300 beyond its deposit of 100 on a line of 200, the settlement (a
/// debt of 200, nothing to pay it at once), then a transfer in that pays 50 of it.
fn credit_history() -> TestChain {
    let net = TestNet::new(3, 100);
    let mut c = TestChain::new(net);
    let (a, b, z) = (
        c.net.users[0].clone(),
        c.net.users[1].clone(),
        c.net.users[2].clone(),
    );
    let (open, id) = c.net.open(&a, &b, (100, 0), 1, u64::MAX);
    assert!(c.next_block(vec![open]).is_empty());
    let grant = c.net.grant(&b, a.public(), id, 200, u64::MAX - 1, u64::MAX, 0);
    assert!(c.next_block(vec![grant]).is_empty());
    let p = c.net.proof(&a, id, Direction::AToB, 1, 400);
    assert!(c
        .next_block(vec![c.net.unilateral_close(&b, id, Some(p), None)])
        .is_empty());
    let end = c.state.window_end_ms(&id).unwrap();
    c.advance_to(end);
    assert!(c.next_block(vec![c.net.settle(id)]).is_empty());
    assert!(c
        .next_block(vec![c.net.transfer(&z, a.public(), 50, 0)])
        .is_empty());
    assert_eq!(c.state.debt(&id).unwrap().outstanding, 150);
    c
}

fn audit(c: &TestChain, blocks: &[Block]) -> Result<Auditor, paychan_audit::AuditError> {
    let mut auditor = Auditor::new(&c.net.genesis, Pin::ChainId(c.net.chain_id))?;
    for b in blocks {
        auditor.push_block(b)?;
    }
    Ok(auditor)
}

#[test]
fn audit_lists_lines_and_debts() {
    let c = credit_history();
    let auditor = audit(&c, &c.blocks).expect("the credit history audits");
    assert_eq!(auditor.state(), &c.state);
    let bal = auditor.balances();
    assert_eq!(bal.credit_lines.len(), 1);
    let line = &bal.credit_lines[0];
    assert_eq!((line.limit, line.peak), (200, 200));
    assert_eq!(line.creditor, c.net.users[1].public().to_hex());
    assert_eq!(bal.debts.len(), 1);
    let debt = &bal.debts[0];
    assert_eq!(
        (debt.amount, debt.outstanding, debt.status),
        (200, 150, "outstanding")
    );
    assert_eq!(debt.debtor, c.net.users[0].public().to_hex());
    assert_eq!((bal.debts_outstanding, bal.debts_defaulted), (150, 0));
    let r = auditor.report();
    assert_eq!((r.by_kind.credit_grant, r.by_kind.repay), (1, 0));
}

#[test]
fn a_tampered_debt_fails_the_audit() {
    let c = credit_history();
    // A sequencer that claims the transfer repaid nothing: it re-signs the last block with the
    // state root of a ledger where the debt is still 200 (the transfer credited to the debtor).
    let mut blocks = c.blocks.clone();
    let last = blocks.pop().unwrap();
    let mut forged_state: LedgerState = c.net.state();
    for b in &blocks {
        forged_state.apply_block(b).unwrap();
    }
    let honest_root = last.header.state_root;
    let mut header = last.header;
    // The root of the state before the transfer, where the debt is still 200.
    header.state_root = forged_state.state_root();
    assert_ne!(header.state_root, honest_root);
    let forged = Block {
        signature: header.sign(&c.net.sequencer),
        header,
        txs: last.txs.clone(),
    };
    blocks.push(forged);
    let err = audit(&c, &blocks).expect_err("a tampered debt is refused");
    let text = format!("{err:?}");
    assert!(
        text.contains("state_root") && text.contains("height: 25"),
        "{text}"
    );
    // The honest chain still audits.
    audit(&c, &c.blocks).expect("honest chain");
}

#[test]
fn the_score_counts_settlements_volume_and_debts_and_replays_identically() {
    let c = credit_history();
    let auditor = audit(&c, &c.blocks).expect("the credit history audits");
    let (a, b) = (c.net.users[0].public(), c.net.users[1].public());
    let points = |s: &paychan_audit::Score| -> Vec<(&str, u64, i64)> {
        s.factors.iter().map(|f| (f.name, f.value, f.points)).collect()
    };
    // The debtor: one channel settled (total 100: 7 bits), a debt still owed, not yet due.
    let sa = auditor.score(&a);
    assert_eq!(
        points(&sa),
        vec![
            ("channels_settled", 1, 10),
            ("volume_log2", 7, 35),
            ("debts_repaid_on_time", 0, 0),
            ("age_hours", 0, 0),
            ("defaults", 0, 0),
            ("outstanding_debts", 1, -20),
        ]
    );
    assert_eq!(sa.score, 25);
    // The creditor owes nothing.
    assert_eq!(auditor.score(&b).score, 45);
    // One implementation: the same from the state and blocks directly.
    let mut seen = paychan_audit::FirstSeen::from_genesis(&c.net.genesis);
    c.blocks.iter().for_each(|b| seen.observe(b));
    assert_eq!(paychan_audit::score(&c.state, &seen, &a), sa);
}

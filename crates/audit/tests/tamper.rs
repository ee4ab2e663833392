//! Tampered histories: each fails and the failure names the right place.

mod common;

use paychan_audit::{audit_export, AuditError, Auditor, Check, ExportError, ExportReader, Pin, Record};
use paychan_ledger::testkit::{TestNet, TestParams};
use paychan_ledger::{LedgerState, TxError};
use paychan_protocol::merkle;
use paychan_protocol::{Block, SignedCheckpoint, Tx};

struct Fixture {
    net: TestNet,
    blocks: Vec<Block>,
    cps: Vec<SignedCheckpoint>,
}

fn fixture() -> Fixture {
    let chain = common::ledger(26);
    let cps = common::checkpoints(&chain.net, &chain.blocks);
    Fixture {
        net: chain.net,
        blocks: chain.blocks,
        cps,
    }
}

/// Audits blocks and checkpoints (each checkpoint right after its block) with an auditor.
fn audit(f: &Fixture, blocks: &[Block], cps: &[SignedCheckpoint]) -> Result<Auditor, AuditError> {
    let mut a = Auditor::new(&f.net.genesis, Pin::ChainId(f.net.chain_id))?;
    for b in blocks {
        a.push_block(b)?;
        for cp in cps.iter().filter(|c| c.checkpoint.height == b.header.height) {
            a.push_checkpoint(cp)?;
        }
    }
    Ok(a)
}

/// Re-signs the chain from block index `from` on as the sequencer would: every header
/// recomputed from its transactions (roots, log, state, link), so that only the ledger rules
/// or the checkpoints can catch what was changed.
fn resign_from(f: &Fixture, blocks: &mut [Block], from: usize) {
    let mut state = LedgerState::from_genesis(&f.net.genesis).expect("genesis");
    for (i, block) in blocks.iter_mut().enumerate() {
        if i >= from {
            let mut after = state.clone();
            for tx in &block.txs {
                // A transaction the rules refuse is left in: the audit must name it.
                let _ = after.apply_tx(tx, block.header.time_ms);
            }
            let leaves: Vec<_> = block.txs.iter().map(Tx::leaf_hash).collect();
            let h = &mut block.header;
            h.prev_hash = state.last_block_hash();
            h.tx_root = merkle::root_from_leaf_hashes(&leaves);
            h.log_size = state.log_size() + block.txs.len() as u64;
            let mut log = state.log().clone();
            leaves.iter().for_each(|l| {
                log.push(*l);
            });
            h.log_root = log.root();
            h.state_root = after.state_root();
            block.signature = h.sign(&f.net.sequencer);
        }
        if state.apply_block(block).is_err() {
            break;
        }
    }
}

#[test]
fn the_true_history_passes() {
    let f = fixture();
    let a = audit(&f, &f.blocks, &f.cps).expect("valid");
    assert_eq!(a.height(), f.blocks.len() as u64);
}

#[test]
fn a_dropped_block_is_named() {
    let f = fixture();
    let mut blocks = f.blocks.clone();
    blocks.remove(3);
    let e = audit(&f, &blocks, &f.cps).expect_err("dropped");
    assert_eq!(
        e,
        AuditError::Block {
            height: 4,
            check: Check::Mismatch {
                field: "height",
                expected: "4".into(),
                found: "5".into()
            }
        }
    );
    assert_eq!(e.to_string(), "block 4: height expected 4 found 5");
}

#[test]
fn swapped_blocks_are_named() {
    let f = fixture();
    let mut blocks = f.blocks.clone();
    blocks.swap(6, 7);
    let e = audit(&f, &blocks, &f.cps).expect_err("swapped");
    assert_eq!(e.to_string(), "block 7: height expected 7 found 8");
}

#[test]
fn a_removed_transaction_with_recomputed_roots_is_caught_by_the_rules() {
    let f = fixture();
    // Block 25, the first of transfers after 3 blocks, 20 heartbeats and the closes, holds transfers from users 0, 1, 2, 3, 0, 1, 2, 3: without user 1's first, its
    // second (now at index 4) carries a nonce one too high.
    let mut blocks = f.blocks[..25].to_vec();
    let removed = blocks[24].txs.remove(1);
    let Tx::Transfer { body, .. } = removed else {
        panic!("block 25 holds transfers")
    };
    resign_from(&f, &mut blocks, 24);
    let e = audit(&f, &blocks, &f.cps).expect_err("removed");
    assert_eq!(
        e,
        AuditError::Tx {
            height: 25,
            index: 4,
            error: TxError::BadNonce {
                expected: body.nonce,
                got: body.nonce + 1
            }
        }
    );
    assert!(e.to_string().starts_with("block 25 tx 4: "), "{e}");
}

#[test]
fn a_removed_transaction_the_rules_allow_is_caught_by_the_witnessed_checkpoint() {
    let f = fixture();
    let mut blocks = f.blocks.clone();
    // Block 27's last transfer: nothing later in this block depends on it, and re-signing
    // block 28 keeps the whole history valid under the rules.
    let i = 26;
    blocks[i].txs.pop().expect("block 27 holds transfers");
    resign_from(&f, &mut blocks, i);
    let alone: Vec<SignedCheckpoint> = Vec::new();
    audit(&f, &blocks, &alone).expect("the rewritten blocks are valid on their own");
    let e = audit(&f, &blocks, &f.cps).expect_err("the checkpoint disagrees");
    let replayed = LedgerState::from_genesis(&f.net.genesis).map(|mut s| {
        blocks[..=i].iter().for_each(|b| {
            s.apply_block(b).expect("valid");
        });
        s.log_size()
    });
    assert_eq!(
        e,
        AuditError::Checkpoint {
            height: 27,
            check: Check::Mismatch {
                field: "log_size",
                expected: replayed.expect("genesis").to_string(),
                found: f
                    .cps
                    .iter()
                    .find(|c| c.checkpoint.height == 27)
                    .expect("cp 27")
                    .checkpoint
                    .log_size
                    .to_string(),
            }
        }
    );
}

#[test]
fn a_history_rewritten_and_resigned_end_to_end_fails_against_the_accepted_checkpoint() {
    let f = fixture();
    // The sequencer rewrites from block 25 on: two independent transfers swapped, every later
    // header recomputed and signed, checkpoints signed and even cosigned anew.
    let mut blocks = f.blocks.clone();
    blocks[24].txs.swap(0, 1);
    resign_from(&f, &mut blocks, 24);
    let cps = common::checkpoints(&f.net, &blocks);
    let forged = common::export(&f.net, &blocks, &cps, None);
    let pin = || Pin::Genesis(Box::new(f.net.genesis.clone()));
    let alone = audit_export(&forged[..], pin(), None).expect("valid on its own");

    // An auditor accepted the true witnessed checkpoint at height 27 before.
    let accepted = f.cps.iter().find(|c| c.checkpoint.height == 27).expect("cp 27");
    let failure = audit_export(&forged[..], pin(), Some(accepted)).expect_err("rewritten");
    match &failure.error {
        AuditError::Accepted {
            height: 27,
            check: Check::Mismatch { field, .. },
        } => assert_eq!(*field, "log_root"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        failure.report.as_ref().map(|r| r.height),
        Some(27),
        "block 27 passed the rules; its replay is what disagrees"
    );

    // And after the fact, from the auditor of the rewritten history: not consistent.
    let e = alone
        .check_accepted(&accepted.checkpoint)
        .expect_err("inconsistent");
    assert!(
        matches!(
            e,
            AuditError::Accepted {
                height: 27,
                check: Check::Inconsistent { older_height: 27, .. }
            }
        ),
        "{e}"
    );
    // The true history is consistent with it.
    let true_export = common::export(&f.net, &f.blocks, &f.cps, None);
    let honest = audit_export(&true_export[..], pin(), Some(accepted)).expect("true history");
    honest.check_accepted(&accepted.checkpoint).expect("consistent");
    assert_eq!(honest.report().accepted_checked, Some(true));
}

#[test]
fn a_made_up_ledger_with_its_own_genesis_fails_the_pin() {
    let f = fixture();
    let other = TestNet::with_params(TestParams {
        balance: 9_000_000,
        ..TestParams::default()
    });
    let bytes = common::export(&other, &[], &[], None);
    let failure = audit_export(&bytes[..], Pin::ChainId(f.net.chain_id), None).expect_err("pinned");
    assert!(matches!(failure.error, AuditError::NotPinned { .. }), "{failure}");
    assert!(failure.to_string().contains("(pinned)"), "{failure}");
}

#[test]
fn a_bad_cosignature_is_named_by_position_and_witness() {
    let f = fixture();
    let mut cps = f.cps.clone();
    let cp = cps.iter_mut().find(|c| c.checkpoint.height == 3).expect("cp 3");
    cp.cosignatures[1].signature.0[10] ^= 4;
    let witness = cp.cosignatures[1].witness.to_hex();
    let e = audit(&f, &f.blocks, &cps).expect_err("bad cosignature");
    assert_eq!(
        e.to_string(),
        format!("checkpoint at height 3: cosignature 1 (witness {witness}) does not verify")
    );
}

#[test]
fn a_truncated_export_says_how_far_it_verified_and_what_it_is_behind() {
    let f = fixture();
    let newest = f.cps.iter().rfind(|c| c.witnessed_by_two()).expect("witnessed");
    let bytes = common::export(&f.net, &f.blocks, &f.cps, Some(newest));
    // Cut right before block 6's record.
    let cut = ExportReader::new(&bytes[..])
        .map(|r| r.expect("true export"))
        .find_map(|(at, r)| matches!(&r, Record::Block(b) if b.header.height == 6).then_some(at))
        .expect("block 6") as usize;
    let failure = audit_export(&bytes[..cut], Pin::ChainId(f.net.chain_id), None).expect_err("truncated");
    assert_eq!(
        failure.error,
        AuditError::Export {
            offset: cut as u64,
            error: ExportError::Truncated
        }
    );
    let report = failure.report.as_ref().expect("report");
    assert_eq!(report.height, 5);
    assert!(!report.reaches_newest_witnessed);
    assert_eq!(report.behind_newest_witnessed, 22);
    assert_eq!(report.newest_witnessed.as_ref().map(|w| w.height), Some(27));
    let text = failure.to_string();
    assert!(
        text.contains("verified to height 5")
            && text.contains("behind the newest witnessed checkpoint it holds, at height 27"),
        "{text}"
    );
}

#[test]
fn a_record_length_over_its_limit_is_named_with_its_offset() {
    let f = fixture();
    let mut bytes = common::export(&f.net, &f.blocks[..1], &[], None);
    let at = ExportReader::new(&bytes[..])
        .map(|r| r.expect("true export"))
        .find_map(|(at, r)| matches!(r, Record::Block(_)).then_some(at))
        .expect("block") as usize;
    bytes[at] = 3; // the block's kind byte now says checkpoint
    let failure = audit_export(&bytes[..], Pin::ChainId(f.net.chain_id), None).expect_err("refused");
    let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes"));
    if len as usize > paychan_protocol::limits::CHECKPOINT_BYTES_MAX {
        assert_eq!(
            failure.to_string().split(" (").next(),
            Some(format!("export byte {}: record length {len} exceeds the limit of 16384 bytes for a checkpoint record", at + 1).as_str())
        );
    } else {
        assert!(
            matches!(failure.error, AuditError::Export { offset, error: ExportError::Decode { kind: "checkpoint", .. } } if offset == at as u64 + 5),
            "{failure}"
        );
    }
}

trait Witnessed {
    fn witnessed_by_two(&self) -> bool;
}

impl Witnessed for SignedCheckpoint {
    fn witnessed_by_two(&self) -> bool {
        self.cosignatures.len() >= 2
    }
}

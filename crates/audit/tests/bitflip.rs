//! Every bit of every byte of an export matters: each of its one-bit changes is rejected.

mod common;

use std::collections::BTreeMap;

use paychan_audit::{audit_export, audit_records, AuditError, Auditor, Check, ExportReader, Pin, Record};

/// The failure category of a rejected flip, for the tally.
fn category(e: &AuditError) -> String {
    match e {
        AuditError::Genesis(g) => format!("genesis: {}", common::variant(g)),
        AuditError::NotPinned { .. } => "genesis: not the pinned chain".into(),
        AuditError::Block { check, .. } => format!("block: {}", check_name(check)),
        AuditError::Tx { error, .. } => format!("tx: {}", common::variant(error)),
        AuditError::Conservation { .. } => "conservation".into(),
        AuditError::Checkpoint { check, .. } => format!("checkpoint: {}", check_name(check)),
        AuditError::Accepted { check, .. } => format!("accepted: {}", check_name(check)),
        AuditError::Export { error, .. } => format!("export: {}", common::variant(error)),
    }
}

fn check_name(c: &Check) -> String {
    match c {
        Check::Mismatch { field, .. } => format!("{field} mismatch"),
        other => common::variant(other),
    }
}

#[test]
fn every_one_bit_change_of_an_export_is_rejected() {
    let chain = common::ledger(26);
    let cps = common::checkpoints(&chain.net, &chain.blocks);
    let bytes = common::export(&chain.net, &chain.blocks, &cps, None);
    assert!(bytes.len() >= 10 * 1024, "the export is {} bytes", bytes.len());
    let pin = || Pin::ChainId(chain.net.chain_id);

    // One pass over the true file, keeping the auditor and reader before each record after
    // the genesis: a flip in a record replays from there, not from the genesis.
    let mut reader = ExportReader::new(&bytes[..]);
    let Some(Ok((_, Record::Genesis(genesis)))) = reader.next() else {
        panic!("the export starts with its genesis");
    };
    let mut auditor = Auditor::new(&genesis, pin()).expect("pinned genesis");
    let mut snapshots = Vec::new();
    loop {
        snapshots.push((reader.position(), auditor.clone()));
        match reader.next() {
            None => break,
            Some(Ok((_, Record::Block(b)))) => auditor.push_block(&b).expect("true block"),
            Some(Ok((_, Record::Checkpoint(c)))) => {
                auditor.push_checkpoint(&c).expect("true checkpoint");
            }
            Some(Ok((_, Record::End(_)))) => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(auditor.height(), chain.state.height());
    let first_record = snapshots[0].0.offset as usize;
    audit_export(&bytes[..], pin(), None).expect("the true export passes");

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut snapshot = 0;
    let mut flipped = bytes.clone();
    for i in 0..bytes.len() {
        while snapshot + 1 < snapshots.len() && snapshots[snapshot + 1].0.offset as usize <= i {
            snapshot += 1;
        }
        for bit in 0..8 {
            flipped[i] ^= 1 << bit;
            let result = if i < first_record {
                audit_export(&flipped[..], pin(), None).map(|_| ())
            } else {
                let (pos, before) = &snapshots[snapshot];
                let from = pos.offset as usize;
                audit_records(ExportReader::resume(&flipped[from..], *pos), before.clone()).map(|_| ())
            };
            match result {
                Ok(()) => panic!("flip of bit {bit} of byte {i} was accepted"),
                Err(f) => *tally.entry(category(&f.error)).or_default() += 1,
            }
            flipped[i] ^= 1 << bit;
        }
    }
    let total: usize = tally.values().sum();
    eprintln!("{} bytes, {total} one-bit changes, all rejected:", bytes.len());
    for (cat, n) in &tally {
        eprintln!("  {n:>6}  {cat}");
    }
    assert_eq!(total, bytes.len() * 8);
}

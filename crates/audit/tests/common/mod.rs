//! A small real ledger and its export, shared by the audit tests.
#![allow(dead_code)]

use paychan_audit::ExportWriter;
use paychan_ledger::testkit::{sample_history, TestChain, TestNet};
use paychan_ledger::LedgerState;
use paychan_protocol::{Block, SignedCheckpoint};

/// Heights whose checkpoint goes into the export, and who cosigns it (indices of witnesses;
/// the threshold is 2 of 3, so `[2]` alone is not witnessed).
pub fn cosigners_at(height: u64) -> Option<&'static [usize]> {
    match height % 3 {
        0 => Some(&[0, 1]),
        1 if height % 5 == 1 => Some(&[2]),
        _ => None,
    }
}

/// The checkpoints of a chain, each with the height it follows, from a replay of its blocks.
pub fn checkpoints(net: &TestNet, blocks: &[Block]) -> Vec<SignedCheckpoint> {
    let mut state = LedgerState::from_genesis(&net.genesis).expect("genesis");
    let mut out = Vec::new();
    for b in blocks {
        state.apply_block(b).expect("a valid chain");
        if let Some(who) = cosigners_at(b.header.height) {
            out.push(net.signed_checkpoint(state.checkpoint(), who));
        }
    }
    out
}

/// The test ledger: every transaction kind, then `transfers` transfers, 8 per block.
pub fn ledger(transfers: usize) -> TestChain {
    sample_history(transfers, 8)
}

/// An export of `blocks` with each checkpoint right after its block; `first` goes right after
/// the genesis (an exporter puts the newest witnessed checkpoint there).
pub fn export(
    net: &TestNet,
    blocks: &[Block],
    cps: &[SignedCheckpoint],
    first: Option<&SignedCheckpoint>,
) -> Vec<u8> {
    let mut w = ExportWriter::new(Vec::new(), &net.genesis).expect("write");
    if let Some(cp) = first {
        w.write_checkpoint(cp).expect("write");
    }
    for b in blocks {
        w.write_block(b).expect("write");
        for cp in cps.iter().filter(|c| c.checkpoint.height == b.header.height) {
            w.write_checkpoint(cp).expect("write");
        }
    }
    w.finish().expect("write")
}

/// The name of an enum value's variant, from its `Debug` text.
pub fn variant<T: std::fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    s.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_string()
}

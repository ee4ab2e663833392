//! The export vector (`protocol/vectors/export.json`): a small real ledger exported, its
//! records, and what an audit of it finds. For implementations in other languages.
//!
//! 1. Builds the export afresh (the ledger testkit's `sample_history(0, 8)`, the checkpoints
//!    after blocks 3 and 6 cosigned by witnesses 0 and 1) and compares it with the file.
//! 2. Walks the file's bytes with a reader written from PROTOCOL.md §12 alone (not the crate's)
//!    and compares the records with those listed.
//! 3. Audits the bytes with the crate, pinned to the listed chain id, and compares the figures.
//!
//! With `PAYCHAN_REGENERATE_VECTORS=1` it rewrites the file instead of comparing it
//! (`scripts/regen-vectors.sh`).

mod common;

use std::path::PathBuf;

use paychan_audit::{audit_export, ExportWriter, Pin};
use paychan_ledger::testkit::sample_history;
use paychan_ledger::LedgerState;
use paychan_testkit::diff::pretty;
use paychan_testkit::doc::regenerate;
use serde_json::{json, Value};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol/vectors/export.json")
}

fn fresh() -> Value {
    let chain = sample_history(0, 8);
    let net = &chain.net;
    let mut w = ExportWriter::new(Vec::new(), &net.genesis).expect("write");
    let mut state = LedgerState::from_genesis(&net.genesis).expect("genesis");
    for b in &chain.blocks {
        state.apply_block(b).expect("valid");
        w.write_block(b).expect("write");
        if b.header.height % 3 == 0 {
            w.write_checkpoint(&net.signed_checkpoint(state.checkpoint(), &[0, 1]))
                .expect("write");
        }
    }
    let bytes = w.finish().expect("write");
    let records: Vec<Value> = walk(&bytes)
        .into_iter()
        .map(|(offset, kind, length)| json!({"offset": offset, "kind": kind, "length": length}))
        .collect();
    let checkpoints = chain.blocks.iter().filter(|b| b.header.height % 3 == 0).count();
    json!({
        "description": "A ledger export (PROTOCOL.md section 12) of a small real history that uses every transaction kind, with a witnessed checkpoint after blocks 3 and 6. `export` is the whole file; `records` lists each record's offset, kind byte and payload length; `audit` is what a complete audit pinned to `chain_id` finds.",
        "chain_id": net.chain_id.to_hex(),
        "export": hex::encode(&bytes),
        "records": records,
        "end": {"blocks": chain.blocks.len(), "checkpoints": checkpoints, "last_height": state.height()},
        "audit": {
            "height": state.height(),
            "log_size": state.log_size(),
            "log_root": state.log_root().to_hex(),
            "state_root": state.state_root().to_hex(),
            "block_hash": state.last_block_hash().to_hex(),
            "supply": state.genesis_supply(),
        },
    })
}

/// The records of an export, from the byte layout of PROTOCOL.md §12 alone: an 8-byte magic,
/// a 2-byte version, then records `kind (1) || length (4, little-endian) || payload`.
fn walk(bytes: &[u8]) -> Vec<(usize, u8, usize)> {
    assert_eq!(&bytes[..8], b"PAYCHAN\0", "magic");
    assert_eq!(&bytes[8..10], &[1, 0], "version 1");
    let mut at = 10;
    let mut out = Vec::new();
    while at < bytes.len() {
        let kind = bytes[at];
        let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        out.push((at, kind, len));
        at += 5 + len;
    }
    assert_eq!(at, bytes.len(), "the last record ends the file");
    out
}

#[test]
fn the_export_vector_matches_and_audits() {
    let fresh = fresh();
    if regenerate() {
        std::fs::write(path(), pretty(&fresh)).expect("write the vector file");
    }
    let text = std::fs::read_to_string(path())
        .expect("protocol/vectors/export.json cannot be read: regenerate it with scripts/regen-vectors.sh");
    let file: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(
        file, fresh,
        "protocol/vectors/export.json differs from the freshly made export: if the format or \
         the ledger changed on purpose, regenerate it with scripts/regen-vectors.sh and review the diff"
    );

    // From the file alone.
    let bytes = hex::decode(file["export"].as_str().expect("hex")).expect("hex");
    assert!(bytes.len() > 1_000);
    let kinds: Vec<u64> = walk(&bytes).iter().map(|r| r.1 as u64).collect();
    let listed: Vec<u64> = file["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["kind"].as_u64().expect("kind"))
        .collect();
    assert_eq!(kinds, listed);
    assert_eq!(kinds.first(), Some(&1), "the genesis first");
    assert_eq!(kinds.last(), Some(&4), "the end record last");
    assert!(kinds.contains(&2) && kinds.contains(&3), "blocks and checkpoints");

    let mut chain_id = [0u8; 32];
    hex::decode_to_slice(file["chain_id"].as_str().expect("chain id"), &mut chain_id).expect("hex");
    let auditor = audit_export(&bytes[..], Pin::ChainId(paychan_protocol::Hash32(chain_id)), None)
        .unwrap_or_else(|f| panic!("the vector audits: {f}"));
    let r = auditor.report();
    let s = auditor.state();
    let audit = &file["audit"];
    assert_eq!(audit["height"], r.height);
    assert_eq!(audit["log_size"], r.log_size);
    assert_eq!(audit["log_root"], s.log_root().to_hex());
    assert_eq!(audit["state_root"], s.state_root().to_hex());
    assert_eq!(audit["block_hash"], s.last_block_hash().to_hex());
    assert_eq!(audit["supply"], r.supply);
    assert_eq!(file["end"]["checkpoints"], r.checkpoints);
    assert!(r.reaches_newest_witnessed);
}

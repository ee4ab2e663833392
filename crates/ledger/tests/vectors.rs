//! Golden vectors of the ledger: the state root (PROTOCOL.md section 7) and a short, real ledger
//! history (`protocol/vectors/ledger.json`) for implementations in other languages.
//!
//! 1. Builds a small deterministic ledger with the testkit (fixed seeds): three funded users and
//!    a fourth key, three blocks that use every transaction kind, and at the end one open, one
//!    closing (with a best proof in each direction) and two closed channels.
//! 2. Encodes every state entry `E` with an encoder written from PROTOCOL.md section 7 (not the
//!    ledger's code) and checks that the documented leaves give the ledger's `state_root()` at
//!    genesis and after every block.
//! 3. Compares the committed `protocol/vectors/ledger.json` with the freshly computed one, then
//!    re-checks it from the JSON alone: the genesis and the blocks are decoded from their hex
//!    with the strict decoder, their hashes and signatures recomputed, each listed state entry
//!    re-encoded from its fields, and replaying the blocks with `verify_chain` must give the
//!    listed state roots.
//! 4. Builds a second small ledger with credit (PROTOCOL.md section 16): two lines, a debt still
//!    outstanding and a defaulted one. Encodes every line and debt leaf from its fields with the
//!    layout of section 16.5 (not the ledger's code), checks that `CreditLine::entry_bytes` and
//!    `Debt::entry_bytes` give the same bytes and that the documented leaves give the ledger's
//!    `state_root()`; its line and debt leaves are the `ledger-credit-*` vectors of PROTOCOL.md.
//! 5. Checks the ```` ```vector ledger-NAME ```` blocks of PROTOCOL.md (the names this test owns;
//!    `protocol/tests/vectors.rs` owns the others): each must equal the computed value, none
//!    may be missing or unknown.
//!
//! With `PAYCHAN_REGENERATE_VECTORS=1` it rewrites `ledger.json` and its vector blocks in
//! PROTOCOL.md instead of failing on a difference; `scripts/regen-vectors.sh` does that.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use paychan_ledger::testkit::{keypair, TestChain, TestNet, TestParams};
use paychan_ledger::{tx_fee, verify_chain, ChannelStatus, LedgerState};
use paychan_protocol::codec::encode;
use paychan_protocol::hash::{sha256, tags};
use paychan_protocol::{Block, ChannelId, Direction, Genesis, Hash32, Keypair, SignedProof, Tx, Wire};
use paychan_testkit::diff::{first_diff, pretty};
use paychan_testkit::doc::{check_vector_blocks, regenerate, VectorOwner};
use paychan_testkit::fields::{dir_name, genesis_fields, header_fields};
use paychan_testkit::json::{arr, b32, bytes, hx, s};
use paychan_testkit::spec::{mth, TX_VARIANTS, W};
use serde_json::{json, Value};

const REGEN_HINT: &str = "if this change of the ledger rules or of the state root is intended, \
     regenerate with `scripts/regen-vectors.sh` (that is, `PAYCHAN_REGENERATE_VECTORS=1 cargo test \
     -p paychan-ledger --test vectors`), review the diff of protocol/vectors/ledger.json and \
     PROTOCOL.md, and say so in the change";

/// The PROTOCOL.md vector blocks whose name starts with this belong to this test.
const DOC_PREFIX: &str = "ledger-";

/// The state-root tag as PROTOCOL.md spells it.
const STATE_TAG: &str = "paychan/v1/state";

/// Genesis time of the vector ledger.
const T0: u64 = 1_700_000_000_000;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

fn ledger_json_path() -> PathBuf {
    repo_root().join("protocol").join("vectors").join("ledger.json")
}

fn protocol_md_path() -> PathBuf {
    repo_root().join("PROTOCOL.md")
}

// ---------------------------------------------------------------------------------------------
// The documented encoding of state entries (PROTOCOL.md section 7), written from the document.
// ---------------------------------------------------------------------------------------------

/// `opt(p)`: `00`, or `01 || proof body (5.4) || signature (64)`.
fn spec_opt_proof(w: &mut W, p: &Value) {
    if p.is_null() {
        w.byte(0);
        return;
    }
    let f = &p["fields"];
    let direction = match s(f, "direction") {
        "AToB" => 0,
        "BToA" => 1,
        other => panic!("unknown direction {other}"),
    };
    w.byte(1)
        .hex(f, "chain_id")
        .hex(f, "channel_id")
        .varint(direction)
        .u(f, "seq")
        .u(f, "transferred")
        .hex(f, "prev")
        .hex(f, "memo_hash")
        .hex(p, "signature");
}

/// The direction byte of a credit line: `0x00` A->B, `0x01` B->A (section 16.5).
fn spec_dir(e: &Value) -> u8 {
    match s(e, "dir") {
        "AToB" => 0x00,
        "BToA" => 0x01,
        other => panic!("unknown direction {other}"),
    }
}

/// The entry `E` of one state entry, from its JSON fields: accounts and channels (section 7),
/// credit lines and debts (section 16.5).
fn spec_entry(e: &Value) -> Vec<u8> {
    let mut w = W::default();
    match s(e, "kind") {
        "account" => {
            w.byte(0x00).hex(e, "key").u(e, "balance").u(e, "nonce");
        }
        "channel" => {
            w.byte(0x01)
                .hex(e, "channel_id")
                .hex(e, "party_a")
                .hex(e, "party_b")
                .u(e, "deposit_a")
                .u(e, "deposit_b");
            match s(e, "status") {
                "open" => {
                    w.byte(0x00);
                }
                "closing" => {
                    w.byte(0x01).u(e, "close_time_ms");
                    spec_opt_proof(&mut w, &e["best_ab"]);
                    spec_opt_proof(&mut w, &e["best_ba"]);
                }
                "closed" => {
                    w.byte(0x02).u(e, "payout_a").u(e, "payout_b");
                }
                other => panic!("unknown channel status {other}"),
            }
        }
        "line" => {
            w.byte(0x02)
                .hex(e, "channel_id")
                .byte(spec_dir(e))
                .hex(e, "creditor")
                .hex(e, "debtor")
                .u(e, "limit")
                .u(e, "peak")
                .u(e, "expiry_ms")
                .u(e, "due_ms");
        }
        "debt" => {
            w.byte(0x03)
                .hex(e, "channel_id")
                .hex(e, "creditor")
                .hex(e, "debtor")
                .u(e, "amount")
                .u(e, "outstanding")
                .u(e, "created_ms")
                .u(e, "due_ms");
            if e["defaulted_ms"].is_null() {
                w.byte(0x00);
            } else {
                w.byte(0x01).u(e, "defaulted_ms");
            }
        }
        other => panic!("unknown entry kind {other}"),
    }
    w.done()
}

/// The leaf hash of an entry: `SHA-256(0x00 || SHA-256("paychan/v1/state" || 0x00 || E))`.
fn spec_leaf(entry: &[u8]) -> [u8; 32] {
    let d = sha256(&[STATE_TAG.as_bytes(), &[0], entry]);
    sha256(&[&[0u8], &d.0]).0
}

/// The state root of a list of JSON state entries, and checks that each `entry` is the
/// documented encoding of its fields and `leaf_hash` its leaf.
fn spec_state_root(what: &str, entries: &[Value]) -> [u8; 32] {
    let mut leaves = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let entry = spec_entry(e);
        assert_eq!(
            hx(&entry),
            s(e, "entry"),
            "{what}: entry {i} is not its fields encoded"
        );
        let leaf = spec_leaf(&entry);
        assert_eq!(hx(leaf), s(e, "leaf_hash"), "{what}: leaf hash of entry {i}");
        leaves.push(leaf);
    }
    // The order of sections 7 and 16.5: accounts by key, channels by id, lines by (channel id,
    // direction), debts by channel id, each strictly increasing.
    let keys: Vec<(u8, [u8; 32], u8)> = entries
        .iter()
        .map(|e| match s(e, "kind") {
            "account" => (0, b32(e, "key"), 0),
            "channel" => (1, b32(e, "channel_id"), 0),
            "line" => (2, b32(e, "channel_id"), spec_dir(e)),
            _ => (3, b32(e, "channel_id"), 0),
        })
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "{what}: entries are not in the order of sections 7 and 16.5"
    );
    mth(&leaves)
}

// ---------------------------------------------------------------------------------------------
// JSON of ledger objects.
// ---------------------------------------------------------------------------------------------

fn opt_proof(p: Option<&SignedProof>) -> Value {
    match p {
        None => Value::Null,
        Some(sp) => {
            let p = &sp.proof;
            json!({
                "fields": {
                    "chain_id": p.chain_id.to_hex(),
                    "channel_id": p.channel_id.0.to_hex(),
                    "direction": dir_name(p.direction),
                    "seq": p.seq,
                    "transferred": p.transferred,
                    "prev": p.prev.to_hex(),
                    "memo_hash": p.memo_hash.to_hex(),
                },
                "signature": sp.signature.to_hex(),
            })
        }
    }
}

fn variant(tx: &Tx) -> &'static str {
    let index = match tx {
        Tx::Transfer { .. } => 0,
        Tx::Open(_) => 1,
        Tx::Deposit { .. } => 2,
        Tx::CoopClose(_) => 3,
        Tx::UnilateralClose { .. } => 4,
        Tx::Update(_) => 5,
        Tx::Settle(_) => 6,
        Tx::CreditGrant { .. } | Tx::Repay { .. } => {
            unreachable!("the vector ledger has no credit transactions yet")
        }
    };
    TX_VARIANTS[index]
}

/// The state entries of a ledger state, in the order of section 7, each with its fields, its
/// documented encoding `entry` and its `leaf_hash`.
fn state_entries(state: &LedgerState) -> Vec<Value> {
    let mut out = Vec::new();
    for (key, a) in state.accounts() {
        out.push(json!({
            "kind": "account",
            "key": key.to_hex(),
            "balance": a.balance,
            "nonce": a.nonce,
        }));
    }
    for (id, c) in state.channels() {
        let mut e = json!({
            "kind": "channel",
            "channel_id": id.0.to_hex(),
            "party_a": c.party_a.to_hex(),
            "party_b": c.party_b.to_hex(),
            "deposit_a": c.deposit_a,
            "deposit_b": c.deposit_b,
        });
        let extra = match &c.status {
            ChannelStatus::Open => json!({"status": "open"}),
            ChannelStatus::Closing { close_time_ms, best } => json!({
                "status": "closing",
                "close_time_ms": close_time_ms,
                "best_ab": opt_proof(best[Direction::AToB.index()].as_ref()),
                "best_ba": opt_proof(best[Direction::BToA.index()].as_ref()),
            }),
            ChannelStatus::Closed { payout_a, payout_b } => json!({
                "status": "closed",
                "payout_a": payout_a,
                "payout_b": payout_b,
            }),
        };
        let obj = e.as_object_mut().expect("object");
        obj.extend(extra.as_object().expect("object").clone());
        out.push(e);
    }
    for ((id, dir), l) in state.credit_lines() {
        let dir = match dir {
            0 => Direction::AToB,
            1 => Direction::BToA,
            other => panic!("credit line direction {other}"),
        };
        out.push(json!({
            "kind": "line",
            "channel_id": id.0.to_hex(),
            "dir": dir_name(dir),
            "creditor": l.creditor.to_hex(),
            "debtor": l.debtor.to_hex(),
            "limit": l.limit,
            "peak": l.peak,
            "expiry_ms": l.expiry_ms,
            "due_ms": l.due_ms,
        }));
        let entry = spec_entry(out.last().expect("the line"));
        assert_eq!(
            hx(l.entry_bytes(id, dir)),
            hx(&entry),
            "CreditLine::entry_bytes differs from PROTOCOL.md section 16.5"
        );
    }
    for (id, d) in state.debts() {
        out.push(json!({
            "kind": "debt",
            "channel_id": id.0.to_hex(),
            "creditor": d.creditor.to_hex(),
            "debtor": d.debtor.to_hex(),
            "amount": d.amount,
            "outstanding": d.outstanding,
            "created_ms": d.created_ms,
            "due_ms": d.due_ms,
            "defaulted_ms": d.defaulted_ms,
        }));
        let entry = spec_entry(out.last().expect("the debt"));
        assert_eq!(
            hx(d.entry_bytes(id)),
            hx(&entry),
            "Debt::entry_bytes differs from PROTOCOL.md section 16.5"
        );
    }
    for e in &mut out {
        let entry = spec_entry(e);
        let leaf = spec_leaf(&entry);
        let obj = e.as_object_mut().expect("object");
        obj.insert("entry".into(), json!(hx(&entry)));
        obj.insert("leaf_hash".into(), json!(hx(leaf)));
    }
    out
}

/// A state's entries and root; checks that the documented leaves give the ledger's root.
fn state_json(what: &str, state: &LedgerState) -> Value {
    let entries = state_entries(state);
    let root = spec_state_root(what, &entries);
    assert_eq!(
        Hash32(root),
        state.state_root(),
        "{what}: the state root of PROTOCOL.md section 7 differs from LedgerState::state_root"
    );
    json!({"entries": entries, "root": hx(root)})
}

// ---------------------------------------------------------------------------------------------
// The vector ledger.
// ---------------------------------------------------------------------------------------------

/// The vector network: every parameter explicit, so that a change of the testkit defaults does
/// not silently change the vectors.
fn vector_net() -> TestNet {
    TestNet::with_params(TestParams {
        users: 3,
        balance: 100_000,
        witnesses: 3,
        witness_threshold: 2,
        genesis_time_ms: T0,
        // The shortest window genesis allows: 20 largest steps.
        challenge_period_ms: 20_000,
        block_interval_ms: 1_000,
        heartbeat_interval_ms: 1_000,
        max_time_step_ms: 1_000,
        max_txs_per_block: 16,
        max_pending_per_account: 8,
        tx_fee_min: 10,
        tx_fee_per_byte: 1,
    })
}

/// The credit ledger of the `ledger-credit-*` vectors (PROTOCOL.md section 16.5), on the vector
/// network: Alice opens channels with Bob (ch5) and with Carol (ch6), depositing 1 000 in each;
/// Bob gives her a line of 500 on ch5 (due in two hours) and lowers it to 200, Carol one of 300
/// on ch6 (taking payments for 10 s, due at `T0 + 30 000`); Bob and Carol close with Alice's
/// proofs of 1 400 and 1 200, Alice sends all but 50 of her balance to Dave, both channels
/// settle at the end of the window (debts of 400 and 200, the 50 paying the first settled), and
/// heartbeats reach ch6's due time, which defaults its debt. Returns the final state, checked
/// against a replay, and the two channels.
fn credit_state(net: &TestNet) -> (LedgerState, ChannelId, ChannelId) {
    let (alice, bob, carol) = (&net.users[0], &net.users[1], &net.users[2]);
    let dave = keypair(2_000);
    let expiry = T0 + 3_600_000;
    let mut chain = TestChain::new(net.clone());
    let block = |chain: &mut TestChain, txs: Vec<Tx>| {
        let dropped = chain.next_block(txs);
        assert!(dropped.is_empty(), "credit ledger: dropped {dropped:?}");
    };
    let (open5, ch5) = net.open(alice, bob, (1_000, 0), 5, expiry);
    let (open6, ch6) = net.open(alice, carol, (1_000, 0), 6, expiry);
    block(&mut chain, vec![open5, open6]);
    block(
        &mut chain,
        vec![
            net.grant(bob, alice.public(), ch5, 500, expiry, T0 + 7_200_000, 0),
            net.grant(carol, alice.public(), ch6, 300, T0 + 10_000, T0 + 30_000, 0),
        ],
    );
    block(
        &mut chain,
        vec![net.grant(bob, alice.public(), ch5, 200, expiry, T0 + 7_200_000, 1)],
    );
    // Alice keeps 50 of her balance: all that settlement can take from her at once.
    let balance = chain.state.balance(&alice.public());
    let fee = tx_fee(
        &net.genesis,
        &net.transfer(alice, dave.public(), balance - 1_000, 0),
    );
    let rest = net.transfer(alice, dave.public(), balance - 50 - fee, 0);
    assert_eq!(tx_fee(&net.genesis, &rest), fee);
    block(
        &mut chain,
        vec![
            net.unilateral_close(
                bob,
                ch5,
                Some(net.proof(alice, ch5, Direction::AToB, 1, 1_400)),
                None,
            ),
            net.unilateral_close(
                carol,
                ch6,
                Some(net.proof(alice, ch6, Direction::AToB, 1, 1_200)),
                None,
            ),
            rest,
        ],
    );
    assert_eq!(chain.state.balance(&alice.public()), 50);
    let end = chain.state.window_end_ms(&ch5).expect("closing");
    assert_eq!(chain.state.window_end_ms(&ch6), Some(end));
    chain.advance_to(end - net.genesis.block_interval_ms);
    block(&mut chain, vec![net.settle(ch5), net.settle(ch6)]);
    chain.advance_to(T0 + 30_000);
    let state = chain.state.clone();
    let (debt5, debt6) = (state.debt(&ch5).expect("debt"), state.debt(&ch6).expect("debt"));
    assert_eq!((debt5.amount, debt5.defaulted_ms), (400, None));
    assert!(debt5.outstanding > 0 && debt5.outstanding < 400);
    assert_eq!(
        (debt6.amount, debt6.outstanding, debt6.defaulted_ms),
        (200, 200, Some(T0 + 30_000))
    );
    let line5 = state.credit_line(&ch5, Direction::AToB).expect("line");
    assert_eq!((line5.limit, line5.peak), (200, 500));
    assert_eq!(state.total_value(), state.genesis_supply());
    let replayed = verify_chain(&net.genesis, &chain.blocks).expect("credit ledger: replay");
    assert_eq!(replayed.state_root(), state.state_root());
    (state, ch5, ch6)
}

/// Everything computed: `ledger.json` and the `ledger-*` vectors of PROTOCOL.md.
struct Golden {
    json: Value,
    doc: BTreeMap<String, String>,
}

fn compute() -> Golden {
    let net = vector_net();
    let alice = net.users[0].clone();
    let bob = net.users[1].clone();
    let carol = net.users[2].clone();
    // Not funded at genesis: its account is created by the first transfer to it.
    let dave = keypair(2_000);
    let expiry = T0 + 3_600_000;

    // ch1: Alice and Bob, stays open (Alice tops it up).
    let (open1, ch1) = net.open(&alice, &bob, (10_000, 5_000), 1, expiry);
    // ch2: Bob and Carol; Bob closes with Carol's proof only, Carol answers with Bob's newer one.
    let (open2, ch2) = net.open(&bob, &carol, (4_000, 4_000), 2, expiry);
    // ch3: Alice and Carol, Carol deposits nothing; Carol closes, anyone settles.
    let (open3, ch3) = net.open(&alice, &carol, (3_000, 0), 3, expiry);
    // ch4: Alice and Bob, closed cooperatively.
    let (open4, ch4) = net.open(&alice, &bob, (1_000, 1_000), 4, expiry);

    let blocks_txs: Vec<Vec<Tx>> = vec![
        // Block 1, T0 + 1000.
        vec![
            net.transfer(&alice, dave.public(), 2_500, 0),
            open1,
            open2,
            open3,
            open4,
            net.unilateral_close(
                &bob,
                ch2,
                None,
                Some(net.proof(&carol, ch2, Direction::BToA, 1, 300)),
            ),
            net.unilateral_close(
                &carol,
                ch3,
                Some(net.proof(&alice, ch3, Direction::AToB, 2, 700)),
                None,
            ),
        ],
        // Block 2, T0 + 2000: the dispute first.
        vec![
            net.update(ch2, Some(net.proof(&bob, ch2, Direction::AToB, 5, 1_500)), None),
            net.deposit(&alice, ch1, 500, 1),
            net.coop_close(&alice, &bob, ch4, (600, 1_400)),
        ],
        // Blocks 3 to 20 are heartbeats; block 21, T0 + 21000 = the end of ch3's window
        // [T0 + 1000, T0 + 21000): it settles.
        vec![net.settle(ch3), net.transfer(&bob, alice.public(), 100, 0)],
    ];
    let settle_at = T0 + 1_000 + net.genesis.challenge_period_ms;

    let mut chain = TestChain::new(net.clone());
    let mut states = vec![chain.state.clone()];
    let last_index = blocks_txs.len() - 1;
    for (i, txs) in blocks_txs.into_iter().enumerate() {
        if i == last_index {
            while chain.state.time_ms() + net.genesis.block_interval_ms < settle_at {
                assert!(chain.next_block(Vec::<Tx>::new()).is_empty());
                states.push(chain.state.clone());
            }
        }
        let count = txs.len();
        let dropped = chain.next_block(txs);
        assert!(dropped.is_empty(), "block {}: dropped {dropped:?}", i + 1);
        assert_eq!(chain.blocks.last().expect("a block").txs.len(), count);
        states.push(chain.state.clone());
    }
    assert_eq!(chain.state.time_ms(), settle_at);
    let last = states.last().expect("states");
    let kinds: BTreeSet<&str> = chain.blocks.iter().flat_map(|b| &b.txs).map(variant).collect();
    assert_eq!(kinds.len(), TX_VARIANTS.len(), "every transaction kind is used");
    assert_eq!(last.channel(&ch1).map(|c| &c.status), Some(&ChannelStatus::Open));
    assert!(matches!(
        last.channel(&ch2).map(|c| &c.status),
        Some(ChannelStatus::Closing { best, .. }) if best.iter().all(Option::is_some)
    ));
    assert_eq!(
        last.channel(&ch3).map(|c| &c.status),
        Some(&ChannelStatus::Closed {
            payout_a: 2_300,
            payout_b: 700
        })
    );
    assert_eq!(
        last.channel(&ch4).map(|c| &c.status),
        Some(&ChannelStatus::Closed {
            payout_a: 600,
            payout_b: 1_400
        })
    );
    assert_eq!(last.total_value(), last.genesis_supply());

    let genesis = &net.genesis;
    let mut keys = vec![json!({
        "role": "sequencer",
        "secret_key": hx(net.sequencer.seed()),
        "public_key": net.sequencer.public().to_hex(),
    })];
    for (i, w) in net.witnesses.iter().enumerate() {
        keys.push(json!({
            "role": format!("witness-{}", i + 1),
            "secret_key": hx(w.seed()),
            "public_key": w.public().to_hex(),
        }));
    }
    for (role, k) in [
        ("alice", &alice),
        ("bob", &bob),
        ("carol", &carol),
        ("dave", &dave),
    ] {
        keys.push(json!({
            "role": role,
            "secret_key": hx(k.seed()),
            "public_key": k.public().to_hex(),
        }));
    }

    let blocks: Vec<Value> = chain
        .blocks
        .iter()
        .zip(&states[1..])
        .map(|(b, after)| {
            let h = &b.header;
            json!({
                "fields": header_fields(h),
                "signed_bytes": hx(paychan_protocol::crypto::signed_bytes(tags::BLOCK_SIG, &encode(h))),
                "signature": b.signature.to_hex(),
                "hash": h.hash().to_hex(),
                "encoded": hx(b.to_bytes()),
                "txs": b.txs.iter().map(|tx| json!({
                    "variant": variant(tx),
                    "encoded": hx(tx.bytes()),
                    "tx_id": tx.id().to_hex(),
                    "leaf_hash": tx.leaf_hash().to_hex(),
                })).collect::<Vec<_>>(),
                "state_after": state_json(&format!("after block {}", h.height), after),
            })
        })
        .collect();

    let json = json!({
        "note": "A real ledger history built by crates/ledger (tests/vectors.rs): replaying \
                 `blocks` from `genesis` with the rules of PROTOCOL.md section 8 accepts every block \
                 and gives, after each, the state `state_after` (entries in the order of section 7, \
                 each with its leaf input `entry` and `leaf_hash`) whose `root` is the header's \
                 state_root. Proofs carry prev = channel id and memo_hash = zero: the ledger checks \
                 neither.",
        "keys": keys,
        "genesis": {
            "fields": genesis_fields(genesis),
            "encoded": hx(genesis.to_bytes()),
            "chain_id": genesis.chain_id().to_hex(),
            "state": state_json("genesis", &states[0]),
        },
        "blocks": blocks,
    });

    // The PROTOCOL.md vectors: leaf inputs of the final state, one per kind and status.
    let entries = state_entries(last);
    let find = |kind: &str, field: &str, value: String| -> &Value {
        entries
            .iter()
            .find(|e| e["kind"] == kind && e[field] == value.as_str())
            .unwrap_or_else(|| panic!("no {kind} entry with {field} {value}"))
    };
    let mut doc = BTreeMap::new();
    let mut put = |name: &str, hex: &str| {
        assert!(name.starts_with(DOC_PREFIX), "{name}");
        assert!(
            doc.insert(name.to_string(), hex.to_string()).is_none(),
            "duplicate {name}"
        );
    };
    let account = find("account", "key", alice.public().to_hex());
    put("ledger-account-entry", s(account, "entry"));
    put("ledger-account-leaf-hash", s(account, "leaf_hash"));
    put(
        "ledger-channel-open-entry",
        s(find("channel", "channel_id", ch1.0.to_hex()), "entry"),
    );
    put(
        "ledger-channel-closing-entry",
        s(find("channel", "channel_id", ch2.0.to_hex()), "entry"),
    );
    put(
        "ledger-channel-closed-entry",
        s(find("channel", "channel_id", ch3.0.to_hex()), "entry"),
    );
    put("ledger-chain-id", &genesis.chain_id().to_hex());
    put("ledger-genesis-state-root", &states[0].state_root().to_hex());
    put("ledger-state-root-last", &last.state_root().to_hex());
    put(
        "ledger-block-last-hash",
        &chain.blocks.last().expect("blocks").header.hash().to_hex(),
    );

    // The credit leaves (section 16.5), from a state whose documented leaves give its root.
    let (credit, ch5, ch6) = credit_state(&net);
    let credit_json = state_json("credit ledger", &credit);
    let entries = arr(&credit_json, "entries");
    let find = |kind: &str, id: ChannelId| -> &Value {
        entries
            .iter()
            .find(|e| e["kind"] == kind && e["channel_id"] == id.0.to_hex().as_str())
            .unwrap_or_else(|| panic!("no {kind} entry of channel {}", id.0.to_hex()))
    };
    for (name, e) in [
        ("ledger-credit-line", find("line", ch5)),
        ("ledger-credit-debt", find("debt", ch5)),
        ("ledger-credit-debt-defaulted", find("debt", ch6)),
    ] {
        put(&format!("{name}-entry"), s(e, "entry"));
        put(&format!("{name}-leaf-hash"), s(e, "leaf_hash"));
    }

    Golden { json, doc }
}

// ---------------------------------------------------------------------------------------------
// Checks from the JSON alone.
// ---------------------------------------------------------------------------------------------

/// Decodes with the strict decoder (section 2.1).
fn strict<T: Wire>(what: &str, encoded: &[u8]) -> T {
    T::from_bytes(encoded).unwrap_or_else(|e| panic!("{what}: strict decoding failed: {e}"))
}

fn check_from_json(v: &Value) {
    for k in arr(v, "keys") {
        assert_eq!(
            Keypair::from_seed(b32(k, "secret_key")).public().0,
            b32(k, "public_key"),
            "key {}: public key from seed",
            s(k, "role")
        );
    }

    let g = &v["genesis"];
    let genesis: Genesis = strict("genesis", &bytes(g, "encoded"));
    assert_eq!(genesis_fields(&genesis), g["fields"], "genesis fields");
    let chain_id = sha256(&[b"paychan/v1/genesis", &[0], &bytes(g, "encoded")]);
    assert_eq!(hx(chain_id.0), s(g, "chain_id"), "chain id");
    assert_eq!(genesis.chain_id(), chain_id);
    let root = spec_state_root("genesis", arr(&g["state"], "entries"));
    assert_eq!(hx(root), s(&g["state"], "root"), "genesis state root");
    let at_genesis = LedgerState::from_genesis(&genesis).expect("valid genesis");
    assert_eq!(
        at_genesis.state_root(),
        Hash32(root),
        "genesis state root (ledger)"
    );

    let mut blocks: Vec<Block> = Vec::new();
    let mut prev_hash = chain_id;
    for (i, b) in arr(v, "blocks").iter().enumerate() {
        let what = format!("block {}", i + 1);
        let block: Block = strict(&what, &bytes(b, "encoded"));
        let h = block.header;
        assert_eq!(header_fields(&h), b["fields"], "{what}: header fields");
        assert_eq!(h.height, i as u64 + 1, "{what}: height");
        assert_eq!(h.prev_hash, prev_hash, "{what}: links to the previous block");
        let body = encode(&h);
        let hash = sha256(&[b"paychan/v1/block-header", &[0], &body]);
        assert_eq!(hx(hash.0), s(b, "hash"), "{what}: hash");
        let mut signed = b"paychan/v1/sig/block-header\0".to_vec();
        signed.extend_from_slice(&body);
        assert_eq!(hx(&signed), s(b, "signed_bytes"), "{what}: signed bytes");
        assert_eq!(block.signature.to_hex(), s(b, "signature"), "{what}: signature");
        assert_eq!(
            paychan_protocol::crypto::verify_raw(&genesis.sequencer, &signed, &block.signature),
            Ok(()),
            "{what}: the sequencer's signature"
        );
        let txs = arr(b, "txs");
        assert_eq!(txs.len(), block.txs.len(), "{what}: transactions");
        for (tx, t) in block.txs.iter().zip(txs) {
            assert_eq!(variant(tx), s(t, "variant"));
            assert_eq!(hx(tx.bytes()), s(t, "encoded"));
            assert_eq!(tx.id().to_hex(), s(t, "tx_id"));
            assert_eq!(hx(sha256(&[&[0u8], &tx.bytes()]).0), s(t, "leaf_hash"));
        }
        let state = &b["state_after"];
        let root = spec_state_root(&what, arr(state, "entries"));
        assert_eq!(
            hx(root),
            s(state, "root"),
            "{what}: state root of the listed entries"
        );
        assert_eq!(h.state_root, Hash32(root), "{what}: the header's state root");

        blocks.push(block);
        let replayed = verify_chain(&genesis, &blocks).unwrap_or_else(|e| panic!("{what}: replay: {e}"));
        assert_eq!(replayed.height(), h.height);
        assert_eq!(replayed.state_root(), Hash32(root), "{what}: replayed state root");
        assert_eq!(replayed.last_block_hash(), hash);
        prev_hash = hash;
    }
    // Three blocks of transactions with 18 heartbeats before the last (PROTOCOL.md section 7).
    assert_eq!(blocks.len(), 21, "the documented history has 21 blocks");
}

// ---------------------------------------------------------------------------------------------
// Comparing with the committed file.
// ---------------------------------------------------------------------------------------------

#[test]
fn ledger_json_matches_and_replays() {
    let golden = compute();
    let path = ledger_json_path();
    if regenerate() {
        std::fs::write(&path, pretty(&golden.json))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("protocol/vectors/ledger.json cannot be read ({e})\n{REGEN_HINT}"));
    let committed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("protocol/vectors/ledger.json is not valid JSON ({e})"));
    if let Some(d) = first_diff("$", &committed, &golden.json) {
        panic!("protocol/vectors/ledger.json differs from the freshly computed vectors at {d}\n{REGEN_HINT}");
    }
    check_from_json(&committed);
}

/// The state root tag of hash.rs is the one PROTOCOL.md spells.
#[test]
fn state_tag_is_the_documented_one() {
    assert_eq!(tags::STATE.name(), STATE_TAG);
}

// ---------------------------------------------------------------------------------------------
// PROTOCOL.md.
// ---------------------------------------------------------------------------------------------

#[test]
fn protocol_md_ledger_vectors_match() {
    let golden = compute();
    let owner = VectorOwner {
        test: "crates/ledger/tests/vectors.rs",
        what: "ledger vector blocks",
        owns: |name| name.starts_with(DOC_PREFIX),
        hint: REGEN_HINT,
    };
    check_vector_blocks(&protocol_md_path(), owner, &golden.doc);
}

//! Golden vectors of the protocol.
//!
//! 1. Builds deterministic objects from fixed seeds with the crate's public API and compares them
//!    with the committed JSON files under `protocol/vectors/`. With
//!    `PAYCHAN_REGENERATE_VECTORS=1` it rewrites those files (and the vector blocks of
//!    `PROTOCOL.md`) instead; `scripts/regen-vectors.sh` does that.
//! 2. Re-checks the committed files *from the JSON alone*, with an independent encoder written
//!    from PROTOCOL.md (varints, raw arrays, field order), literal domain tags and plain SHA-256:
//!    public key from seed, `signed_bytes == tag || 0x00 || postcard(fields)`, signature valid
//!    (single and batch), `hash == SHA-256(tag || 0x00 || body)`, the hash chains, Merkle roots
//!    and proofs.
//! 3. Checks that every ```` ```vector NAME ```` block of PROTOCOL.md equals the freshly computed
//!    value, that none is missing or unknown, and that PROTOCOL.md's tag table lists every tag.
//!    The blocks named `ledger-*` (the state root and the ledger history) belong to
//!    `crates/ledger/tests/vectors.rs`, which checks and regenerates them; this test skips them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use paychan_protocol::channel::{
    memo_hash, BalanceProof, ChannelOpen, CoopClose, Direction, Payment, SignedCoopClose, SignedOpen,
    SignedProof,
};
use paychan_protocol::codec::{encode, DecodeError};
use paychan_protocol::crypto::{self, BatchVerifier, Keypair, PublicKey, Signature};
use paychan_protocol::hash::{sha256, tags, Hash32};
use paychan_protocol::ledger::{
    Block, BlockHeader, Checkpoint, CreditGrant, Deposit, Genesis, Repay, Settle, SignedCheckpoint, Transfer,
    Tx, UnilateralClose, Update,
};
use paychan_protocol::merkle;
use paychan_protocol::note;
use paychan_protocol::wire::{self, ChannelMsg, Envelope, Wire};
use paychan_testkit::diff::{first_diff, pretty};
use paychan_testkit::doc::{
    check_vector_blocks, fenced_blocks, regenerate, splice, write_if_changed, VectorOwner,
};
use paychan_testkit::fields::{dir_name, genesis_fields, header_fields};
use paychan_testkit::json::{arr, b32, b64, bytes, hx, n, s};
use paychan_testkit::spec::{mth, W};
use serde_json::{json, Value};

const REGEN_HINT: &str = "if this change of the protocol bytes is intended, regenerate with \
     `scripts/regen-vectors.sh` (that is, `PAYCHAN_REGENERATE_VECTORS=1 cargo test -p paychan-protocol \
     --test vectors`), review the diff of protocol/vectors/ and PROTOCOL.md, and say so in the change";

/// The files under `protocol/vectors/`.
const FILES: &[&str] = &[
    "genesis.json",
    "channel_open.json",
    "balance_proof.json",
    "tx.json",
    "block_header.json",
    "checkpoint.json",
    "merkle.json",
];

/// Variant names of `Tx`, in index order, as the table of PROTOCOL.md section 5.11 lists them
/// (every variant, the credit ones included: `tx.json` holds one transaction of each).
const TX_VARIANTS: [&str; 9] = [
    "Transfer",
    "Open",
    "Deposit",
    "CoopClose",
    "UnilateralClose",
    "Update",
    "Settle",
    "CreditGrant",
    "Repay",
];

/// The domain tags as PROTOCOL.md spells them, written out here so that the checks from the JSON
/// do not depend on `hash.rs`.
mod tag {
    pub const GENESIS: &str = "paychan/v1/genesis";
    pub const CHANNEL_ID: &str = "paychan/v1/channel-id";
    pub const OPEN_SIG: &str = "paychan/v1/sig/channel-open";
    pub const PROOF_HASH: &str = "paychan/v1/balance-proof";
    pub const PROOF_SIG: &str = "paychan/v1/sig/balance-proof";
    pub const MEMO: &str = "paychan/v1/memo";
    pub const COOP_CLOSE_SIG: &str = "paychan/v1/sig/coop-close";
    pub const TRANSFER_SIG: &str = "paychan/v1/sig/transfer";
    pub const DEPOSIT_SIG: &str = "paychan/v1/sig/deposit";
    pub const UNILATERAL_CLOSE_SIG: &str = "paychan/v1/sig/unilateral-close";
    pub const TX_ID: &str = "paychan/v1/tx-id";
    pub const BLOCK_HASH: &str = "paychan/v1/block-header";
    pub const BLOCK_SIG: &str = "paychan/v1/sig/block-header";
    pub const STATE: &str = "paychan/v1/state";
    pub const BATCH_SEED: &str = "paychan/v1/batch-seed";
    pub const MEMO_TEXT: &str = "paychan/v1/memo-text";
    pub const CREDIT_GRANT_SIG: &str = "paychan/v1/sig/credit-grant";
    pub const REPAY_SIG: &str = "paychan/v1/sig/repay";
}

/// The Certificate Transparency test leaves (hex), the first 8 leaves of `merkle.json`.
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Genesis time of the vectors (ms since the Unix epoch).
const T0: u64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// Paths and regeneration.
// ---------------------------------------------------------------------------------------------

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn protocol_md_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("PROTOCOL.md")
}

// ---------------------------------------------------------------------------------------------
// Building the golden objects with the crate's API.
// ---------------------------------------------------------------------------------------------

/// A fixed 32-byte value derived from a name.
fn fixed(name: &str) -> Hash32 {
    sha256(&[b"paychan/vectors/", name.as_bytes()])
}

/// A keypair whose seed is derived from a name.
fn key(name: &str) -> Keypair {
    Keypair::from_seed(fixed(&format!("key/{name}")).0)
}

fn open_fields(o: &ChannelOpen) -> Value {
    json!({
        "chain_id": o.chain_id.to_hex(),
        "party_a": o.party_a.to_hex(),
        "party_b": o.party_b.to_hex(),
        "deposit_a": o.deposit_a,
        "deposit_b": o.deposit_b,
        "salt_a": o.salt_a.to_hex(),
        "salt_b": o.salt_b.to_hex(),
        "expiry_ms": o.expiry_ms,
    })
}

fn proof_fields(p: &BalanceProof) -> Value {
    json!({
        "chain_id": p.chain_id.to_hex(),
        "channel_id": p.channel_id.0.to_hex(),
        "direction": dir_name(p.direction),
        "seq": p.seq,
        "transferred": p.transferred,
        "prev": p.prev.to_hex(),
        "memo_hash": p.memo_hash.to_hex(),
    })
}

fn opt_proof(p: &Option<SignedProof>) -> Value {
    match p {
        None => Value::Null,
        Some(sp) => json!({"fields": proof_fields(&sp.proof), "signature": sp.signature.to_hex()}),
    }
}

fn tx_fields(tx: &Tx) -> Value {
    match tx {
        Tx::Transfer { body, .. } => json!({
            "chain_id": body.chain_id.to_hex(),
            "from": body.from.to_hex(),
            "to": body.to.to_hex(),
            "amount": body.amount,
            "nonce": body.nonce,
        }),
        Tx::Open(o) => open_fields(&o.open),
        Tx::Deposit { body, .. } => json!({
            "chain_id": body.chain_id.to_hex(),
            "channel_id": body.channel_id.0.to_hex(),
            "from": body.from.to_hex(),
            "amount": body.amount,
            "nonce": body.nonce,
        }),
        Tx::CoopClose(c) => json!({
            "chain_id": c.close.chain_id.to_hex(),
            "channel_id": c.close.channel_id.0.to_hex(),
            "balance_a": c.close.balance_a,
            "balance_b": c.close.balance_b,
        }),
        Tx::UnilateralClose { body, .. } => json!({
            "chain_id": body.chain_id.to_hex(),
            "channel_id": body.channel_id.0.to_hex(),
            "closer": body.closer.to_hex(),
            "proof_ab": opt_proof(&body.proof_ab),
            "proof_ba": opt_proof(&body.proof_ba),
        }),
        Tx::Update(u) => json!({
            "chain_id": u.chain_id.to_hex(),
            "channel_id": u.channel_id.0.to_hex(),
            "proof_ab": opt_proof(&u.proof_ab),
            "proof_ba": opt_proof(&u.proof_ba),
        }),
        Tx::Settle(s) => json!({
            "chain_id": s.chain_id.to_hex(),
            "channel_id": s.channel_id.0.to_hex(),
        }),
        Tx::CreditGrant { body, .. } => json!({
            "chain_id": body.chain_id.to_hex(),
            "channel_id": body.channel_id.0.to_hex(),
            "creditor": body.creditor.to_hex(),
            "debtor": body.debtor.to_hex(),
            "limit": body.limit,
            "expiry_ms": body.expiry_ms,
            "due_ms": body.due_ms,
            "nonce": body.nonce,
        }),
        Tx::Repay { body, .. } => json!({
            "chain_id": body.chain_id.to_hex(),
            "channel_id": body.channel_id.0.to_hex(),
            "from": body.from.to_hex(),
            "amount": body.amount,
            "nonce": body.nonce,
        }),
    }
}

fn checkpoint_fields(c: &Checkpoint) -> Value {
    json!({
        "chain_id": c.chain_id.to_hex(),
        "log_size": c.log_size,
        "log_root": c.log_root.to_hex(),
        "height": c.height,
        "block_hash": c.block_hash.to_hex(),
    })
}

/// One signature entry: who, their seed and key, the exact signed bytes and the signature.
fn sig_entry(role: &str, kp: &Keypair, signed: &[u8], sig: &Signature) -> Value {
    json!({
        "role": role,
        "secret_key": hx(kp.seed()),
        "public_key": kp.public().to_hex(),
        "signed_bytes": hx(signed),
        "signature": sig.to_hex(),
    })
}

/// A payment of a vector proof: amount, reference and the text the reference was made from.
type PlannedPayment = (u64, Hash32, Option<&'static str>);

/// Everything computed: the JSON files and the named vectors of PROTOCOL.md.
struct Golden {
    files: BTreeMap<&'static str, Value>,
    doc: BTreeMap<String, String>,
    /// The ```` ```note NAME ```` blocks of PROTOCOL.md: texts, verbatim.
    notes: BTreeMap<String, String>,
}

/// The cosignature timestamp of the first vector witness (the others count up from it).
const COSIGN_TIME_S: u64 = 1_700_000_000;

fn compute() -> Golden {
    let mut files = BTreeMap::new();
    let mut doc: BTreeMap<String, String> = BTreeMap::new();
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |name: &str, bytes: &[u8]| {
        assert!(
            doc.insert(name.to_string(), hx(bytes)).is_none(),
            "duplicate vector {name}"
        );
    };

    let alice = key("alice");
    let bob = key("bob");
    let carol = key("carol");
    let sequencer = key("sequencer");
    let witnesses = [key("witness-1"), key("witness-2"), key("witness-3")];
    put("key-alice-seed", &alice.seed());
    put("key-alice-public", &alice.public().0);
    put("key-bob-seed", &bob.seed());
    put("key-sequencer-seed", &sequencer.seed());

    // Genesis.
    let mut allocations = vec![
        (alice.public(), 1_000_000),
        (bob.public(), 500_000),
        (carol.public(), 250_000),
    ];
    allocations.sort_by_key(|(k, _)| *k);
    let genesis = Genesis {
        network: "paychan-vectors".to_string(),
        unit: paychan_protocol::Unit::credit(),
        genesis_time_ms: T0,
        sequencer: sequencer.public(),
        witnesses: witnesses.iter().map(|w| w.public()).collect(),
        witness_threshold: 2,
        challenge_period_ms: 86_400_000,
        block_interval_ms: 1_000,
        heartbeat_interval_ms: 10_000,
        max_time_step_ms: 60_000,
        max_txs_per_block: 1_024,
        max_pending_per_account: 64,
        tx_fee_min: 100,
        tx_fee_per_byte: 2,
        allocations,
    };
    let chain_id = genesis.chain_id();
    files.insert(
        "genesis.json",
        json!({
            "fields": genesis_fields(&genesis),
            "encoded": hx(genesis.to_bytes()),
            "chain_id": chain_id.to_hex(),
        }),
    );
    put("genesis-bytes", &genesis.to_bytes());
    put("chain-id", &chain_id.0);

    // Channel open.
    let open = ChannelOpen {
        chain_id,
        party_a: alice.public(),
        party_b: bob.public(),
        deposit_a: 10_000,
        deposit_b: 5_000,
        salt_a: fixed("salt-a"),
        salt_b: fixed("salt-b"),
        expiry_ms: T0 + 3_600_000,
    };
    let (open_sig_a, open_sig_b) = (open.sign(&alice), open.sign(&bob));
    let channel_id = open.channel_id();
    let open_signed = crypto::signed_bytes(tags::OPEN_SIG, &open.body());
    files.insert(
        "channel_open.json",
        json!({
            "secret_key_a": hx(alice.seed()),
            "public_key_a": alice.public().to_hex(),
            "secret_key_b": hx(bob.seed()),
            "public_key_b": bob.public().to_hex(),
            "fields": open_fields(&open),
            "signed_bytes": hx(&open_signed),
            "signature_a": open_sig_a.to_hex(),
            "signature_b": open_sig_b.to_hex(),
            "channel_id": channel_id.0.to_hex(),
        }),
    );
    put("channel-open-body", &open.body());
    put("channel-open-signature-a", &open_sig_a.0);
    put("channel-open-signature-b", &open_sig_b.0);
    put("channel-id", &channel_id.0 .0);

    // Balance proofs: three of A to B (the third after a seq reservation jump), one of B to A.
    let coffee = Payment::text_reference("coffee");
    put("memo-text-reference-coffee", &coffee.0);
    put("memo-hash-empty", &memo_hash(&[]).0);
    let plan: [(Direction, u64, Vec<PlannedPayment>); 4] = [
        (Direction::AToB, 1, vec![(100, coffee, Some("coffee"))]),
        (
            Direction::AToB,
            2,
            vec![
                (200, fixed("invoice-0001"), None),
                (50, fixed("invoice-0002"), None),
            ],
        ),
        (
            Direction::AToB,
            (1 << 16) + 1,
            vec![(1, fixed("request-0003"), None)],
        ),
        (Direction::BToA, 1, vec![(30, fixed("refund-0001"), None)]),
    ];
    let mut prev = [channel_id.0; 2];
    let mut transferred = [0u64; 2];
    let mut proofs: Vec<SignedProof> = Vec::new();
    let mut proof_objs = Vec::new();
    for (i, (direction, seq, pays)) in plan.into_iter().enumerate() {
        let payer = match direction {
            Direction::AToB => &alice,
            Direction::BToA => &bob,
        };
        let payments: Vec<Payment> = pays
            .iter()
            .map(|(amount, reference, _)| Payment {
                amount: *amount,
                reference: *reference,
            })
            .collect();
        let d = direction.index();
        transferred[d] += payments.iter().map(|p| p.amount).sum::<u64>();
        let proof = BalanceProof {
            chain_id,
            channel_id,
            direction,
            seq,
            transferred: transferred[d],
            prev: prev[d],
            memo_hash: memo_hash(&payments),
        };
        let sp = proof.sign(payer);
        prev[d] = proof.hash();
        let mut fields = proof_fields(&proof);
        fields["payments"] = pays
            .iter()
            .map(|(amount, reference, text)| {
                let mut p = json!({"amount": amount, "reference": reference.to_hex()});
                if let Some(t) = text {
                    p["text"] = json!(t);
                }
                p
            })
            .collect();
        proof_objs.push(json!({
            "secret_key": hx(payer.seed()),
            "public_key": payer.public().to_hex(),
            "fields": fields,
            "memo_bytes": hx(encode(&payments)),
            "signed_bytes": hx(proof.signed_bytes()),
            "signature": sp.signature.to_hex(),
            "hash": proof.hash().to_hex(),
        }));
        if i == 0 {
            put("proof-1-memo-bytes", &encode(&payments));
            put("proof-1-memo-hash", &proof.memo_hash.0);
            put("proof-1-body", &proof.body());
            put("proof-1-signed-bytes", &proof.signed_bytes());
            put("proof-1-signature", &sp.signature.0);
            put("proof-1-hash", &proof.hash().0);
        }
        if i == 1 {
            put("proof-2-hash", &proof.hash().0);
        }
        proofs.push(sp);
    }
    files.insert("balance_proof.json", Value::Array(proof_objs));

    // One transaction of each variant.
    let transfer = Transfer {
        chain_id,
        from: alice.public(),
        to: carol.public(),
        amount: 2_500,
        nonce: 0,
    };
    let deposit = Deposit {
        chain_id,
        channel_id,
        from: alice.public(),
        amount: 5_000,
        nonce: 1,
    };
    let coop = CoopClose {
        chain_id,
        channel_id,
        balance_a: 15_000 - 351 + 30,
        balance_b: 5_000 + 351 - 30,
    };
    let (coop_a, coop_b) = (coop.sign(&alice), coop.sign(&bob));
    let uclose = UnilateralClose {
        chain_id,
        channel_id,
        closer: alice.public(),
        proof_ab: Some(proofs[1]),
        proof_ba: Some(proofs[3]),
    };
    // Bob, the payee of A to B, gives Alice a line of 1 000 (his first nonce); Alice repays
    // 250 of the channel's debt (her third nonce, after the transfer and the deposit).
    let grant = CreditGrant {
        chain_id,
        channel_id,
        creditor: bob.public(),
        debtor: alice.public(),
        limit: 1_000,
        expiry_ms: T0 + 1_800_000,
        due_ms: T0 + 7_200_000,
        nonce: 0,
    };
    let repay = Repay {
        chain_id,
        channel_id,
        from: alice.public(),
        amount: 250,
        nonce: 2,
    };
    let txs = [
        Tx::transfer(transfer, &alice),
        Tx::Open(SignedOpen {
            open: open.clone(),
            sig_a: open_sig_a,
            sig_b: open_sig_b,
        }),
        Tx::deposit(deposit, &alice),
        Tx::CoopClose(SignedCoopClose {
            close: coop,
            sig_a: coop_a,
            sig_b: coop_b,
        }),
        Tx::unilateral_close(uclose, &alice),
        Tx::Update(Update {
            chain_id,
            channel_id,
            proof_ab: Some(proofs[2]),
            proof_ba: None,
        }),
        Tx::Settle(Settle { chain_id, channel_id }),
        Tx::credit_grant(grant, &bob),
        Tx::repay(repay, &alice),
    ];
    let mut tx_objs = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        let signatures = match tx {
            Tx::Transfer { body, sig } => {
                vec![sig_entry(
                    "from",
                    &alice,
                    &crypto::signed_bytes(tags::TRANSFER_SIG, &encode(body)),
                    sig,
                )]
            }
            Tx::Open(o) => vec![
                sig_entry("party_a", &alice, &open_signed, &o.sig_a),
                sig_entry("party_b", &bob, &open_signed, &o.sig_b),
            ],
            Tx::Deposit { body, sig } => vec![sig_entry(
                "from",
                &alice,
                &crypto::signed_bytes(tags::DEPOSIT_SIG, &encode(body)),
                sig,
            )],
            Tx::CoopClose(c) => {
                let signed = crypto::signed_bytes(tags::COOP_CLOSE_SIG, &encode(&c.close));
                vec![
                    sig_entry("party_a", &alice, &signed, &c.sig_a),
                    sig_entry("party_b", &bob, &signed, &c.sig_b),
                ]
            }
            Tx::UnilateralClose { body, sig } => vec![sig_entry(
                "closer",
                &alice,
                &crypto::signed_bytes(tags::UNILATERAL_CLOSE_SIG, &encode(body)),
                sig,
            )],
            Tx::Update(_) | Tx::Settle(_) => vec![],
            Tx::CreditGrant { body, sig } => vec![sig_entry(
                "creditor",
                &bob,
                &crypto::signed_bytes(tags::CREDIT_GRANT_SIG, &encode(body)),
                sig,
            )],
            Tx::Repay { body, sig } => vec![sig_entry(
                "from",
                &alice,
                &crypto::signed_bytes(tags::REPAY_SIG, &encode(body)),
                sig,
            )],
        };
        tx_objs.push(json!({
            "variant": TX_VARIANTS[i],
            "variant_index": i,
            "fields": tx_fields(tx),
            "signatures": signatures,
            "encoded": hx(tx.bytes()),
            "tx_id": tx.id().to_hex(),
            "leaf_hash": tx.leaf_hash().to_hex(),
        }));
        let short = match tx {
            Tx::Transfer { .. } => "transfer",
            Tx::Settle(_) => "settle",
            Tx::CreditGrant { .. } => "credit-grant",
            Tx::Repay { .. } => "repay",
            _ => continue,
        };
        put(&format!("tx-{short}-bytes"), &tx.bytes());
        put(&format!("tx-{short}-id"), &tx.id().0);
        put(&format!("tx-{short}-leaf-hash"), &tx.leaf_hash().0);
        if let Some(first) = signatures.first() {
            let sb = hex::decode(first["signed_bytes"].as_str().expect("hex")).expect("hex");
            put(&format!("tx-{short}-signed-bytes"), &sb);
        }
    }
    files.insert("tx.json", Value::Array(tx_objs));

    // Two blocks: the account transactions, then the disputes first and the closes.
    let blocks_txs: [Vec<usize>; 2] = [vec![0, 1, 2], vec![5, 6, 3, 4]];
    let mut log: Vec<Hash32> = Vec::new();
    let mut prev_hash = chain_id;
    let mut headers = Vec::new();
    let mut header_objs = Vec::new();
    for (b, idx) in blocks_txs.iter().enumerate() {
        let block_txs: Vec<Tx> = idx.iter().map(|&i| txs[i].clone()).collect();
        let leaves: Vec<Hash32> = block_txs.iter().map(Tx::leaf_hash).collect();
        log.extend(&leaves);
        let header = BlockHeader {
            chain_id,
            height: b as u64 + 1,
            prev_hash,
            time_ms: T0 + 1_000 * (b as u64 + 1),
            tx_root: merkle::root_from_leaf_hashes(&leaves),
            log_size: log.len() as u64,
            log_root: merkle::root_from_leaf_hashes(&log),
            state_root: fixed(&format!("state-root-placeholder-{}", b + 1)),
        };
        let signature = header.sign(&sequencer);
        let block = Block {
            header,
            signature,
            txs: block_txs.clone(),
        };
        header_objs.push(json!({
            "secret_key": hx(sequencer.seed()),
            "public_key": sequencer.public().to_hex(),
            "fields": header_fields(&header),
            "signed_bytes": hx(crypto::signed_bytes(tags::BLOCK_SIG, &encode(&header))),
            "signature": signature.to_hex(),
            "hash": header.hash().to_hex(),
            "tx_ids": block_txs.iter().map(|t| t.id().to_hex()).collect::<Vec<_>>(),
            "block_encoded": hx(block.to_bytes()),
            "note": "state_root is a placeholder (SHA-256 of a fixed string): the state root is \
                     defined in crates/ledger; these blocks are byte-level vectors, not a ledger \
                     history that passes the ledger rules",
        }));
        if b == 0 {
            put("block-1-header-bytes", &encode(&header));
            put("block-1-signature", &signature.0);
            put("block-1-hash", &header.hash().0);
        }
        prev_hash = header.hash();
        headers.push(header);
    }
    files.insert("block_header.json", Value::Array(header_objs));

    // A checkpoint of the last block, signed by the sequencer and cosigned by every witness.
    let last = headers.last().expect("two blocks");
    let checkpoint = Checkpoint {
        chain_id,
        log_size: last.log_size,
        log_root: last.log_root,
        height: last.height,
        block_hash: last.hash(),
    };
    let cp_sig = checkpoint.sign_sequencer(&sequencer);
    let cosignatures: Vec<_> = witnesses
        .iter()
        .enumerate()
        .map(|(i, w)| checkpoint.cosign(w, COSIGN_TIME_S + i as u64))
        .collect();
    let body = checkpoint.body();
    let signed_cp = SignedCheckpoint {
        checkpoint,
        signature: cp_sig,
        cosignatures: cosignatures.clone(),
    };
    let note_text = signed_cp.to_note(&sequencer.public());
    files.insert(
        "checkpoint.json",
        json!({
            "secret_key": hx(sequencer.seed()),
            "public_key": sequencer.public().to_hex(),
            "fields": checkpoint_fields(&checkpoint),
            "signed_bytes": hx(body.as_bytes()),
            "signature": cp_sig.to_hex(),
            "cosignatures": witnesses
                .iter()
                .zip(&cosignatures)
                .map(|(w, c)| json!({
                    "secret_key": hx(w.seed()),
                    "public_key": c.witness.to_hex(),
                    "timestamp_s": c.timestamp_s,
                    "fields": checkpoint_fields(&checkpoint),
                    "signed_bytes": hx(note::cosignature_message(c.timestamp_s, &body)),
                    "signature": c.signature.to_hex(),
                }))
                .collect::<Vec<_>>(),
            "encoded": hx(signed_cp.to_bytes()),
            "note": note_text,
            "log_verifier_key": note::VerifierKey::new(&checkpoint.origin(), note::KEY_TYPE_ED25519, sequencer.public()).to_text(),
        }),
    );
    put("checkpoint-body", body.as_bytes());
    put("checkpoint-signature", &cp_sig.0);
    put(
        "cosignature-1-signed",
        &note::cosignature_message(cosignatures[0].timestamp_s, &body),
    );
    put("cosignature-1-signature", &cosignatures[0].signature.0);
    notes.insert("checkpoint-note".to_string(), note_text.clone());

    // A framed channel message: the ack of the second proof.
    let envelope = Envelope {
        epoch: 7,
        msg: ChannelMsg::Ack {
            channel_id,
            direction: Direction::AToB,
            seq: 2,
            hash: proofs[1].proof.hash(),
        },
    };
    let mut frame = Vec::new();
    wire::write_frame(&envelope.to_bytes(), &mut frame);
    put("frame-ack", &frame);

    // Merkle tree: the 8 CT leaves and 8 more.
    let mut leaf_inputs: Vec<Vec<u8>> = CT_LEAVES.iter().map(|s| hex::decode(s).expect("hex")).collect();
    leaf_inputs.extend((8..16).map(|i| format!("paychan-leaf-{i:02}").into_bytes()));
    let lh: Vec<Hash32> = leaf_inputs.iter().map(|d| merkle::leaf_hash(d)).collect();
    let roots: Vec<Hash32> = (0..=lh.len())
        .map(|n| merkle::root_from_leaf_hashes(&lh[..n]))
        .collect();
    let path_hex = |p: &[Hash32]| p.iter().map(|h| h.to_hex()).collect::<Vec<_>>();
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for n in 1..=lh.len() {
        for i in 0..n {
            let p = merkle::inclusion_proof(&lh[..n], i as u64).expect("in range");
            inclusion.push(json!({"index": i, "size": n, "path": path_hex(&p)}));
        }
    }
    for m in 1..lh.len() {
        for n in m + 1..=lh.len() {
            let p = merkle::consistency_proof(&lh[..n], m as u64).expect("in range");
            consistency.push(json!({"first": m, "second": n, "path": path_hex(&p)}));
        }
    }
    files.insert(
        "merkle.json",
        json!({
            "leaves": leaf_inputs.iter().map(hx).collect::<Vec<_>>(),
            "roots": path_hex(&roots),
            "inclusion": inclusion,
            "consistency": consistency,
        }),
    );
    put("merkle-empty-root", &roots[0].0);
    for n in [1, 2, 3, 8, 16] {
        let name = if n <= 8 {
            format!("merkle-ct-root-{n}")
        } else {
            format!("merkle-root-{n}")
        };
        put(&name, &roots[n].0);
    }
    let concat = |p: Vec<Hash32>| p.iter().flat_map(|h| h.0).collect::<Vec<u8>>();
    put(
        "merkle-ct-inclusion-5-8",
        &concat(merkle::inclusion_proof(&lh[..8], 5).expect("in range")),
    );
    put(
        "merkle-ct-consistency-6-8",
        &concat(merkle::consistency_proof(&lh[..8], 6).expect("in range")),
    );

    Golden { files, doc, notes }
}

// ---------------------------------------------------------------------------------------------
// Comparing with the committed files.
// ---------------------------------------------------------------------------------------------

/// Reads the committed files (after rewriting them when regenerating).
fn committed_files(golden: &Golden) -> BTreeMap<&'static str, Value> {
    let dir = vectors_dir();
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let computed = &golden.files[name];
        if regenerate() {
            std::fs::create_dir_all(&dir).expect("create protocol/vectors");
            std::fs::write(&path, pretty(computed))
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("protocol/vectors/{name} cannot be read ({e})"));
                continue;
            }
        };
        let committed: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("protocol/vectors/{name} is not valid JSON ({e})"));
                continue;
            }
        };
        if let Some(d) = first_diff("$", &committed, computed) {
            problems.push(format!(
                "protocol/vectors/{name} differs from the freshly computed vectors at {d}"
            ));
        }
        out.insert(*name, committed);
    }
    assert!(
        problems.is_empty(),
        "golden vectors do not match:\n  {}\n{REGEN_HINT}",
        problems.join("\n  ")
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Checks from the JSON alone: an independent encoder written from PROTOCOL.md.
// ---------------------------------------------------------------------------------------------

/// `SHA-256(tag || 0x00 || body)`.
fn th(tag: &str, body: &[u8]) -> [u8; 32] {
    sha256(&[tag.as_bytes(), &[0], body]).0
}

/// `tag || 0x00 || body`: what a signature under `tag` covers.
fn tagged(tag: &str, body: &[u8]) -> Vec<u8> {
    let mut out = tag.as_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(body);
    out
}

fn spec_genesis(f: &Value) -> Vec<u8> {
    let mut w = W::default();
    let name = s(f, "network").as_bytes();
    w.varint(name.len() as u64).raw(name);
    for field in ["name", "symbol"] {
        let text = f["unit"][field].as_str().expect("unit text").as_bytes();
        w.varint(text.len() as u64).raw(text);
    }
    w.u(f, "genesis_time_ms").h32(f, "sequencer");
    let wits = arr(f, "witnesses");
    w.varint(wits.len() as u64);
    for x in wits {
        let k: [u8; 32] = hex::decode(x.as_str().expect("hex"))
            .expect("hex")
            .try_into()
            .expect("32");
        w.raw(&k);
    }
    w.u(f, "witness_threshold")
        .u(f, "challenge_period_ms")
        .u(f, "block_interval_ms")
        .u(f, "heartbeat_interval_ms")
        .u(f, "max_time_step_ms")
        .u(f, "max_txs_per_block")
        .u(f, "max_pending_per_account")
        .u(f, "tx_fee_min")
        .u(f, "tx_fee_per_byte");
    let allocs = arr(f, "allocations");
    w.varint(allocs.len() as u64);
    for a in allocs {
        w.h32(a, "key").u(a, "amount");
    }
    w.done()
}

fn spec_open(f: &Value) -> Vec<u8> {
    W::default()
        .h32(f, "chain_id")
        .h32(f, "party_a")
        .h32(f, "party_b")
        .u(f, "deposit_a")
        .u(f, "deposit_b")
        .h32(f, "salt_a")
        .h32(f, "salt_b")
        .u(f, "expiry_ms")
        .done()
}

fn direction_index(f: &Value) -> u64 {
    match s(f, "direction") {
        "AToB" => 0,
        "BToA" => 1,
        d => panic!("unknown direction {d}"),
    }
}

fn spec_proof(f: &Value) -> Vec<u8> {
    W::default()
        .h32(f, "chain_id")
        .h32(f, "channel_id")
        .varint(direction_index(f))
        .u(f, "seq")
        .u(f, "transferred")
        .h32(f, "prev")
        .h32(f, "memo_hash")
        .done()
}

fn spec_memo(payments: &[Value]) -> Vec<u8> {
    let mut w = W::default();
    w.varint(payments.len() as u64);
    for p in payments {
        w.u(p, "amount").h32(p, "reference");
    }
    w.done()
}

/// `Option<SignedProof>`: `0x00`, or `0x01 || proof body || signature`.
fn spec_opt_proof(w: &mut W, v: &Value) {
    if v.is_null() {
        w.raw(&[0]);
    } else {
        w.raw(&[1]).raw(&spec_proof(&v["fields"])).sig(v, "signature");
    }
}

/// The body a transaction's own signatures cover (the variant's struct, without signatures).
fn spec_tx_body(variant: &str, f: &Value) -> Vec<u8> {
    let mut w = W::default();
    match variant {
        "Transfer" => {
            w.h32(f, "chain_id")
                .h32(f, "from")
                .h32(f, "to")
                .u(f, "amount")
                .u(f, "nonce");
        }
        "Open" => {
            w.raw(&spec_open(f));
        }
        "Deposit" => {
            w.h32(f, "chain_id")
                .h32(f, "channel_id")
                .h32(f, "from")
                .u(f, "amount")
                .u(f, "nonce");
        }
        "CoopClose" => {
            w.h32(f, "chain_id")
                .h32(f, "channel_id")
                .u(f, "balance_a")
                .u(f, "balance_b");
        }
        "UnilateralClose" => {
            w.h32(f, "chain_id").h32(f, "channel_id").h32(f, "closer");
            spec_opt_proof(&mut w, &f["proof_ab"]);
            spec_opt_proof(&mut w, &f["proof_ba"]);
        }
        "Update" => {
            w.h32(f, "chain_id").h32(f, "channel_id");
            spec_opt_proof(&mut w, &f["proof_ab"]);
            spec_opt_proof(&mut w, &f["proof_ba"]);
        }
        "Settle" => {
            w.h32(f, "chain_id").h32(f, "channel_id");
        }
        "CreditGrant" => {
            w.h32(f, "chain_id")
                .h32(f, "channel_id")
                .h32(f, "creditor")
                .h32(f, "debtor")
                .u(f, "limit")
                .u(f, "expiry_ms")
                .u(f, "due_ms")
                .u(f, "nonce");
        }
        "Repay" => {
            w.h32(f, "chain_id")
                .h32(f, "channel_id")
                .h32(f, "from")
                .u(f, "amount")
                .u(f, "nonce");
        }
        v => panic!("unknown variant {v}"),
    }
    w.done()
}

/// `varint(variant index) || body || signatures (64 raw bytes each, in order)`.
fn spec_tx(t: &Value) -> Vec<u8> {
    let variant = s(t, "variant");
    let index = TX_VARIANTS
        .iter()
        .position(|v| *v == variant)
        .expect("known variant") as u64;
    assert_eq!(n(t, "variant_index"), index, "variant index of {variant}");
    let mut w = W::default();
    w.varint(index).raw(&spec_tx_body(variant, &t["fields"]));
    for sig in arr(t, "signatures") {
        w.sig(sig, "signature");
    }
    w.done()
}

fn spec_header(f: &Value) -> Vec<u8> {
    W::default()
        .h32(f, "chain_id")
        .u(f, "height")
        .h32(f, "prev_hash")
        .u(f, "time_ms")
        .h32(f, "tx_root")
        .u(f, "log_size")
        .h32(f, "log_root")
        .h32(f, "state_root")
        .done()
}

fn spec_checkpoint(f: &Value) -> Vec<u8> {
    W::default()
        .h32(f, "chain_id")
        .u(f, "log_size")
        .h32(f, "log_root")
        .u(f, "height")
        .h32(f, "block_hash")
        .done()
}

/// Standard padded base64 (RFC 4648 §4), written from the RFC.
fn spec_base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The checkpoint note body of PROTOCOL.md §8.7: origin, size, root, `block` extension line.
fn spec_checkpoint_body(f: &Value) -> Vec<u8> {
    format!(
        "paychan/{}\n{}\n{}\nblock {} {}\n",
        hex::encode(b32(f, "chain_id")),
        n(f, "log_size"),
        spec_base64(&b32(f, "log_root")),
        n(f, "height"),
        spec_base64(&b32(f, "block_hash")),
    )
    .into_bytes()
}

/// A signed-note key id: `SHA-256(name || 0x0A || type || key)[..4]`.
fn spec_key_id(name: &str, key_type: u8, key: &[u8; 32]) -> [u8; 4] {
    let h = sha256(&[name.as_bytes(), &[0x0a, key_type], key]);
    [h.0[0], h.0[1], h.0[2], h.0[3]]
}

/// A signed-note signature line: `— name base64(key id || payload)` and a newline.
fn spec_signature_line(name: &str, key_type: u8, key: &[u8; 32], payload: &[u8]) -> String {
    let mut raw = spec_key_id(name, key_type, key).to_vec();
    raw.extend_from_slice(payload);
    format!("\u{2014} {name} {}\n", spec_base64(&raw))
}

fn rfc6962_leaf(data: &[u8]) -> [u8; 32] {
    sha256(&[&[0u8], data]).0
}

/// Collects every signature checked, to check them again as one batch.
#[derive(Default)]
struct Sigs(Vec<([u8; 32], Vec<u8>, [u8; 64])>);

impl Sigs {
    /// Checks that the signature verifies (single path) and queues it for the batch check.
    fn check(&mut self, what: &str, pk: [u8; 32], signed: &[u8], sig: [u8; 64]) {
        assert_eq!(
            crypto::verify_raw(&PublicKey(pk), signed, &Signature(sig)),
            Ok(()),
            "{what}: signature does not verify"
        );
        self.0.push((pk, signed.to_vec(), sig));
    }
}

/// The public key of a JSON seed.
fn pk_of_seed(v: &Value, k: &str) -> [u8; 32] {
    Keypair::from_seed(b32(v, k)).public().0
}

/// A signed object of the common shape: `secret_key`, `public_key`, `signed_bytes`, `signature`.
/// Checks key from seed, `signed_bytes == tag || 0x00 || body`, and the signature.
fn check_signed(sigs: &mut Sigs, what: &str, o: &Value, tag: &str, body: &[u8]) {
    assert_eq!(
        pk_of_seed(o, "secret_key"),
        b32(o, "public_key"),
        "{what}: key from seed"
    );
    assert_eq!(
        bytes(o, "signed_bytes"),
        tagged(tag, body),
        "{what}: signed_bytes"
    );
    sigs.check(
        what,
        b32(o, "public_key"),
        &bytes(o, "signed_bytes"),
        b64(o, "signature"),
    );
}

/// Decodes with the strict decoder, and checks that one trailing byte is refused.
fn strict_roundtrip<T: Wire + PartialEq + core::fmt::Debug>(what: &str, encoded: &[u8]) -> T {
    let v = T::from_bytes(encoded).unwrap_or_else(|e| panic!("{what}: strict decoding failed: {e}"));
    assert_eq!(v.to_bytes(), encoded, "{what}: re-encoding");
    let mut longer = encoded.to_vec();
    longer.push(0);
    assert!(
        T::from_bytes(&longer).is_err(),
        "{what}: a trailing byte must be refused"
    );
    v
}

fn check_from_json(files: &BTreeMap<&'static str, Value>) {
    let mut sigs = Sigs::default();

    // Genesis.
    let g = &files["genesis.json"];
    let gf = &g["fields"];
    let genesis_bytes = bytes(g, "encoded");
    assert_eq!(spec_genesis(gf), genesis_bytes, "genesis: encoding");
    let chain_id = b32(g, "chain_id");
    assert_eq!(th(tag::GENESIS, &genesis_bytes), chain_id, "genesis: chain id");
    let genesis: Genesis = strict_roundtrip("genesis", &genesis_bytes);
    assert!(
        genesis.allocations.windows(2).all(|w| w[0].0 < w[1].0),
        "genesis: allocations in strictly increasing key order"
    );
    let sequencer = b32(gf, "sequencer");
    let witness_keys: Vec<[u8; 32]> = genesis.witnesses.iter().map(|w| w.0).collect();

    // Channel open.
    let o = &files["channel_open.json"];
    let of = &o["fields"];
    assert_eq!(b32(of, "chain_id"), chain_id, "open: chain id");
    let (pk_a, pk_b) = (b32(of, "party_a"), b32(of, "party_b"));
    assert_eq!(pk_of_seed(o, "secret_key_a"), pk_a, "open: A's key from seed");
    assert_eq!(pk_of_seed(o, "secret_key_b"), pk_b, "open: B's key from seed");
    assert_eq!((b32(o, "public_key_a"), b32(o, "public_key_b")), (pk_a, pk_b));
    let open_body = spec_open(of);
    let open_signed = bytes(o, "signed_bytes");
    assert_eq!(
        open_signed,
        tagged(tag::OPEN_SIG, &open_body),
        "open: signed_bytes"
    );
    sigs.check("open: A", pk_a, &open_signed, b64(o, "signature_a"));
    sigs.check("open: B", pk_b, &open_signed, b64(o, "signature_b"));
    let channel_id = b32(o, "channel_id");
    assert_eq!(th(tag::CHANNEL_ID, &open_body), channel_id, "open: channel id");

    // Balance proofs: per direction, prev links to the channel id and then to the previous hash.
    let proofs = files["balance_proof.json"].as_array().expect("a list of proofs");
    assert!(proofs.len() >= 3, "at least three balance proofs");
    let mut prev = [channel_id; 2];
    let mut seq = [0u64; 2];
    let mut transferred = [0u64; 2];
    let mut proof_hashes = Vec::new();
    for (i, p) in proofs.iter().enumerate() {
        let what = format!("balance proof {i}");
        let f = &p["fields"];
        let d = direction_index(f) as usize;
        assert_eq!(b32(f, "chain_id"), chain_id, "{what}: chain id");
        assert_eq!(b32(f, "channel_id"), channel_id, "{what}: channel id");
        assert_eq!(
            b32(p, "public_key"),
            [pk_a, pk_b][d],
            "{what}: signed by the payer"
        );
        let body = spec_proof(f);
        check_signed(&mut sigs, &what, p, tag::PROOF_SIG, &body);
        let hash = b32(p, "hash");
        assert_eq!(th(tag::PROOF_HASH, &body), hash, "{what}: hash");
        assert_eq!(b32(f, "prev"), prev[d], "{what}: prev links the previous proof");
        assert!(n(f, "seq") > seq[d], "{what}: seq increases");
        let payments = arr(f, "payments");
        assert_eq!(bytes(p, "memo_bytes"), spec_memo(payments), "{what}: memo bytes");
        assert_eq!(
            th(tag::MEMO, &spec_memo(payments)),
            b32(f, "memo_hash"),
            "{what}: memo hash"
        );
        let added: u64 = payments.iter().map(|x| n(x, "amount")).sum();
        assert_eq!(
            n(f, "transferred"),
            transferred[d] + added,
            "{what}: payments sum"
        );
        for x in payments {
            if let Some(text) = x.get("text") {
                let text = text.as_str().expect("text");
                assert_eq!(
                    th(tag::MEMO_TEXT, text.as_bytes()),
                    b32(x, "reference"),
                    "{what}: text"
                );
            }
        }
        (prev[d], seq[d], transferred[d]) = (hash, n(f, "seq"), n(f, "transferred"));
        proof_hashes.push((hash, b64(p, "signature")));
    }
    assert!(
        proofs
            .iter()
            .filter(|p| direction_index(&p["fields"]) == 0)
            .count()
            >= 3
    );

    // Transactions.
    let txs = files["tx.json"].as_array().expect("a list of transactions");
    let names: Vec<&str> = txs.iter().map(|t| s(t, "variant")).collect();
    assert_eq!(
        names, TX_VARIANTS,
        "one transaction of each variant, in discriminant order"
    );
    let mut tx_by_id: BTreeMap<[u8; 32], Vec<u8>> = BTreeMap::new();
    for t in txs {
        let variant = s(t, "variant");
        let what = format!("tx {variant}");
        let f = &t["fields"];
        let encoded = bytes(t, "encoded");
        assert_eq!(spec_tx(t), encoded, "{what}: encoding");
        assert_eq!(th(tag::TX_ID, &encoded), b32(t, "tx_id"), "{what}: tx id");
        assert_eq!(rfc6962_leaf(&encoded), b32(t, "leaf_hash"), "{what}: leaf hash");
        assert_eq!(b32(f, "chain_id"), chain_id, "{what}: chain id");
        let body = spec_tx_body(variant, f);
        let (sig_tag, signers): (&str, Vec<[u8; 32]>) = match variant {
            "Transfer" => (tag::TRANSFER_SIG, vec![b32(f, "from")]),
            "Open" => (tag::OPEN_SIG, vec![b32(f, "party_a"), b32(f, "party_b")]),
            "Deposit" => (tag::DEPOSIT_SIG, vec![b32(f, "from")]),
            "CoopClose" => (tag::COOP_CLOSE_SIG, vec![pk_a, pk_b]),
            "UnilateralClose" => (tag::UNILATERAL_CLOSE_SIG, vec![b32(f, "closer")]),
            "CreditGrant" => (tag::CREDIT_GRANT_SIG, vec![b32(f, "creditor")]),
            "Repay" => (tag::REPAY_SIG, vec![b32(f, "from")]),
            _ => ("", vec![]),
        };
        let entries = arr(t, "signatures");
        assert_eq!(entries.len(), signers.len(), "{what}: number of signatures");
        for (e, signer) in entries.iter().zip(&signers) {
            assert_eq!(b32(e, "public_key"), *signer, "{what}: signer");
            check_signed(&mut sigs, &what, e, sig_tag, &body);
        }
        if variant != "Transfer" && variant != "Open" {
            assert_eq!(b32(f, "channel_id"), channel_id, "{what}: channel id");
        }
        if variant == "CreditGrant" {
            let mut parties = [b32(f, "creditor"), b32(f, "debtor")];
            parties.sort();
            let mut channel = [pk_a, pk_b];
            channel.sort();
            assert_eq!(
                parties, channel,
                "{what}: creditor and debtor are the channel's parties"
            );
        }
        if variant == "Open" {
            assert_eq!(f, of, "{what}: the open of channel_open.json");
        }
        for (slot, d) in [("proof_ab", 0usize), ("proof_ba", 1)] {
            if let Some(p) = f.get(slot).filter(|p| !p.is_null()) {
                assert_eq!(
                    direction_index(&p["fields"]) as usize,
                    d,
                    "{what}: {slot} direction"
                );
                let body = spec_proof(&p["fields"]);
                let item = (th(tag::PROOF_HASH, &body), b64(p, "signature"));
                assert!(
                    proof_hashes.contains(&item),
                    "{what}: {slot} is a proof of balance_proof.json"
                );
                sigs.check(&what, [pk_a, pk_b][d], &tagged(tag::PROOF_SIG, &body), item.1);
            }
        }
        let tx: Tx = strict_roundtrip(&what, &encoded);
        assert_eq!(tx.verify_own_signature(), Ok(()), "{what}: own signatures");
        tx_by_id.insert(b32(t, "tx_id"), encoded);
    }

    // Block headers: a hash chain from the chain id, roots over the transactions of tx.json.
    let headers = files["block_header.json"].as_array().expect("a list of headers");
    let mut prev_hash = chain_id;
    let mut log: Vec<[u8; 32]> = Vec::new();
    let mut last_header = None;
    for (i, h) in headers.iter().enumerate() {
        let what = format!("block header {i}");
        let f = &h["fields"];
        assert_eq!(
            b32(h, "public_key"),
            sequencer,
            "{what}: signed by the genesis sequencer"
        );
        assert_eq!(b32(f, "chain_id"), chain_id, "{what}: chain id");
        assert_eq!(n(f, "height"), i as u64 + 1, "{what}: height");
        assert_eq!(
            b32(f, "prev_hash"),
            prev_hash,
            "{what}: prev_hash links the previous block"
        );
        let body = spec_header(f);
        check_signed(&mut sigs, &what, h, tag::BLOCK_SIG, &body);
        let hash = b32(h, "hash");
        assert_eq!(th(tag::BLOCK_HASH, &body), hash, "{what}: hash");
        let mut block = W::default();
        block.raw(&body).sig(h, "signature");
        let ids = arr(h, "tx_ids");
        block.varint(ids.len() as u64);
        let mut leaves = Vec::new();
        for id in ids {
            let id: [u8; 32] = hex::decode(id.as_str().expect("hex"))
                .expect("hex")
                .try_into()
                .expect("32");
            let tx = tx_by_id.get(&id).expect("a transaction of tx.json");
            block.raw(tx);
            leaves.push(rfc6962_leaf(tx));
        }
        log.extend(&leaves);
        assert_eq!(mth(&leaves), b32(f, "tx_root"), "{what}: tx root");
        assert_eq!(n(f, "log_size"), log.len() as u64, "{what}: log size");
        assert_eq!(mth(&log), b32(f, "log_root"), "{what}: log root");
        let block_bytes = bytes(h, "block_encoded");
        assert_eq!(block.done(), block_bytes, "{what}: block encoding");
        let _: Block = strict_roundtrip(&what, &block_bytes);
        prev_hash = hash;
        last_header = Some((f.clone(), hash));
    }
    let (last_fields, last_hash) = last_header.expect("at least one header");

    // Checkpoint of the last block with one cosignature per witness.
    let c = &files["checkpoint.json"];
    let cf = &c["fields"];
    assert_eq!(
        b32(c, "public_key"),
        sequencer,
        "checkpoint: signed by the genesis sequencer"
    );
    assert_eq!(b32(cf, "chain_id"), chain_id, "checkpoint: chain id");
    assert_eq!(
        n(cf, "log_size"),
        n(&last_fields, "log_size"),
        "checkpoint: log size"
    );
    assert_eq!(
        b32(cf, "log_root"),
        b32(&last_fields, "log_root"),
        "checkpoint: log root"
    );
    assert_eq!(n(cf, "height"), n(&last_fields, "height"), "checkpoint: height");
    assert_eq!(b32(cf, "block_hash"), last_hash, "checkpoint: block hash");
    let cp_body = spec_checkpoint_body(cf);
    assert_eq!(
        pk_of_seed(c, "secret_key"),
        sequencer,
        "checkpoint: key from seed"
    );
    assert_eq!(
        bytes(c, "signed_bytes"),
        cp_body,
        "checkpoint: signed_bytes is the note body"
    );
    sigs.check("checkpoint", sequencer, &cp_body, b64(c, "signature"));
    let mut encoded = W::default();
    encoded.raw(&spec_checkpoint(cf)).sig(c, "signature");
    let origin = std::str::from_utf8(&cp_body)
        .expect("UTF-8")
        .lines()
        .next()
        .expect("origin line");
    let mut want_note = String::from_utf8(cp_body.clone()).expect("UTF-8");
    want_note.push('\n');
    want_note.push_str(&spec_signature_line(
        origin,
        0x01,
        &sequencer,
        &bytes(c, "signature"),
    ));
    let cos = arr(c, "cosignatures");
    assert_eq!(
        cos.len(),
        witness_keys.len(),
        "checkpoint: one cosignature per witness"
    );
    assert!(
        cos.len() as u64 >= n(gf, "witness_threshold"),
        "checkpoint: witnessed"
    );
    encoded.varint(cos.len() as u64);
    let mut seen = BTreeSet::new();
    for (i, w) in cos.iter().enumerate() {
        let what = format!("cosignature {i}");
        let pk = b32(w, "public_key");
        assert!(witness_keys.contains(&pk), "{what}: a genesis witness");
        assert!(seen.insert(pk), "{what}: distinct witnesses");
        assert_eq!(&w["fields"], cf, "{what}: cosigns the checkpoint");
        assert_eq!(pk_of_seed(w, "secret_key"), pk, "{what}: key from seed");
        let ts = n(w, "timestamp_s");
        let mut signed = format!("cosignature/v1\ntime {ts}\n").into_bytes();
        signed.extend_from_slice(&spec_checkpoint_body(&w["fields"]));
        assert_eq!(bytes(w, "signed_bytes"), signed, "{what}: signed_bytes");
        sigs.check(&what, pk, &signed, b64(w, "signature"));
        encoded.raw(&pk).varint(ts).sig(w, "signature");
        let mut payload = ts.to_be_bytes().to_vec();
        payload.extend_from_slice(&bytes(w, "signature"));
        want_note.push_str(&spec_signature_line(
            &format!("paychan/witness/{}", hex::encode(pk)),
            0x04,
            &pk,
            &payload,
        ));
    }
    assert_eq!(
        c["note"].as_str().expect("note text"),
        want_note,
        "checkpoint: the signed note"
    );
    let mut key = vec![0x01];
    key.extend_from_slice(&sequencer);
    assert_eq!(
        c["log_verifier_key"].as_str().expect("verifier key"),
        format!(
            "{origin}+{}+{}",
            hex::encode(spec_key_id(origin, 0x01, &sequencer)),
            spec_base64(&key)
        ),
        "checkpoint: log verifier key"
    );
    let cp_bytes = bytes(c, "encoded");
    assert_eq!(encoded.done(), cp_bytes, "checkpoint: encoding");
    let _: SignedCheckpoint = strict_roundtrip("checkpoint", &cp_bytes);

    // Merkle: roots by the RFC's definition, every proof verified by the protocol's verifiers.
    let m = &files["merkle.json"];
    let leaves: Vec<Vec<u8>> = arr(m, "leaves")
        .iter()
        .map(|x| hex::decode(x.as_str().expect("hex")).expect("hex"))
        .collect();
    assert_eq!(leaves.len(), 16, "merkle: 16 leaves");
    for (i, ct) in CT_LEAVES.iter().enumerate() {
        assert_eq!(hx(&leaves[i]), *ct, "merkle: leaf {i} is the CT test leaf");
    }
    let lh: Vec<[u8; 32]> = leaves.iter().map(|d| rfc6962_leaf(d)).collect();
    let roots: Vec<Hash32> = arr(m, "roots")
        .iter()
        .map(|x| Hash32::from_hex(x.as_str().expect("hex")).expect("hex"))
        .collect();
    assert_eq!(roots.len(), 17, "merkle: roots of sizes 0..=16");
    for (size, root) in roots.iter().enumerate() {
        assert_eq!(mth(&lh[..size]), root.0, "merkle: root of size {size}");
    }
    let path = |e: &Value| -> Vec<Hash32> {
        arr(e, "path")
            .iter()
            .map(|x| Hash32::from_hex(x.as_str().expect("hex")).expect("hex"))
            .collect()
    };
    let mut covered = BTreeSet::new();
    for e in arr(m, "inclusion") {
        let (i, size) = (n(e, "index"), n(e, "size"));
        let r = merkle::verify_inclusion(&Hash32(lh[i as usize]), i, size, &path(e), &roots[size as usize]);
        assert_eq!(r, Ok(()), "merkle: inclusion of {i} in {size}");
        covered.insert((i, size));
    }
    let all: BTreeSet<(u64, u64)> = (1..=16).flat_map(|s| (0..s).map(move |i| (i, s))).collect();
    assert_eq!(covered, all, "merkle: every inclusion proof of sizes 1..=16");
    let mut covered = BTreeSet::new();
    for e in arr(m, "consistency") {
        let (a, b) = (n(e, "first"), n(e, "second"));
        let r = merkle::verify_consistency(a, b, &roots[a as usize], &roots[b as usize], &path(e));
        assert_eq!(r, Ok(()), "merkle: consistency {a} -> {b}");
        covered.insert((a, b));
    }
    let all: BTreeSet<(u64, u64)> = (1..16).flat_map(|a| (a + 1..=16).map(move |b| (a, b))).collect();
    assert_eq!(
        covered, all,
        "merkle: every consistency proof with 1 <= first < second <= 16"
    );

    // Every signature again as one batch; and a batch with one altered message fails.
    let mut batch = BatchVerifier::new();
    for (pk, msg, sig) in &sigs.0 {
        batch.queue_raw(&PublicKey(*pk), msg, &Signature(*sig));
    }
    assert!(batch.len() >= 20, "the vectors carry at least 20 signatures");
    assert_eq!(
        batch.verify(),
        Ok(()),
        "batch verification of every vector signature"
    );
    let mut batch = BatchVerifier::new();
    for (i, (pk, msg, sig)) in sigs.0.iter().enumerate() {
        let mut msg = msg.clone();
        if i == sigs.0.len() / 2 {
            msg[0] ^= 1;
            assert!(crypto::verify_raw(&PublicKey(*pk), &msg, &Signature(*sig)).is_err());
        }
        batch.queue_raw(&PublicKey(*pk), &msg, &Signature(*sig));
    }
    assert!(batch.verify().is_err(), "a batch with one bad signature fails");
}

#[test]
fn vector_files_match_and_verify_from_json() {
    let golden = compute();
    let files = committed_files(&golden);
    check_from_json(&files);
}

#[test]
fn strict_decoding_refuses_non_canonical_vectors() {
    let golden = compute();
    let tx = &golden.files["tx.json"][0];
    assert_eq!(s(tx, "variant"), "Transfer");
    let encoded = bytes(tx, "encoded");
    // The variant index 0 as an over-long varint: postcard would read it, the codec refuses it.
    let mut overlong = vec![0x80, 0x00];
    overlong.extend_from_slice(&encoded[1..]);
    assert_eq!(Tx::from_bytes(&overlong), Err(DecodeError::NonCanonical));
    assert!(matches!(
        Tx::from_bytes(&encoded[..encoded.len() - 1]),
        Err(DecodeError::Malformed(_))
    ));
    // An unknown variant index.
    let mut unknown = encoded.clone();
    unknown[0] = TX_VARIANTS.len() as u8;
    assert!(matches!(Tx::from_bytes(&unknown), Err(DecodeError::Malformed(_))));
    // An Option tag other than 0 or 1 (the `proof_ab` of the update).
    let update = &golden.files["tx.json"][5];
    let mut bad = bytes(update, "encoded");
    assert_eq!(bad[1 + 64], 1, "update: proof_ab present");
    bad[1 + 64] = 2;
    assert!(matches!(Tx::from_bytes(&bad), Err(DecodeError::Malformed(_))));
    // A proof in the wrong direction slot is refused by the structural limits.
    let uc = &golden.files["tx.json"][4];
    let fields = &uc["fields"];
    let mut swapped = fields.clone();
    swapped["proof_ab"] = fields["proof_ba"].clone();
    swapped["proof_ba"] = fields["proof_ab"].clone();
    let mut w = W::default();
    w.varint(4).raw(&spec_tx_body("UnilateralClose", &swapped));
    w.sig(&uc["signatures"][0], "signature");
    assert!(matches!(Tx::from_bytes(&w.done()), Err(DecodeError::Limit(_))));
}

// ---------------------------------------------------------------------------------------------
// PROTOCOL.md.
// ---------------------------------------------------------------------------------------------

/// The PROTOCOL.md vector blocks whose name starts with this belong to
/// `crates/ledger/tests/vectors.rs`.
const LEDGER_VECTOR_PREFIX: &str = "ledger-";

#[test]
fn protocol_md_vectors_match() {
    let golden = compute();
    let owner = VectorOwner {
        test: "protocol/tests/vectors.rs",
        what: "vector blocks",
        owns: |name| !name.starts_with(LEDGER_VECTOR_PREFIX),
        hint: REGEN_HINT,
    };
    check_vector_blocks(&protocol_md_path(), owner, &golden.doc);
}

#[test]
fn protocol_md_notes_match() {
    let golden = compute();
    let path = protocol_md_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let blocks = fenced_blocks(&text, "note");
    let names: BTreeSet<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    let expected: BTreeSet<&str> = golden.notes.keys().map(String::as_str).collect();
    assert_eq!(names, expected, "PROTOCOL.md's note blocks\n{REGEN_HINT}");
    if regenerate() {
        let new = splice(
            &text,
            blocks
                .iter()
                .map(|b| (b, golden.notes[&b.name].lines().map(str::to_string).collect())),
        );
        write_if_changed(&path, &text, &new);
        return;
    }
    for b in &blocks {
        assert_eq!(
            b.text(),
            golden.notes[&b.name],
            "PROTOCOL.md note block {}\n{REGEN_HINT}",
            b.name
        );
    }
}

#[test]
fn protocol_md_lists_every_tag() {
    let literal = [
        tag::GENESIS,
        tag::CHANNEL_ID,
        tag::OPEN_SIG,
        tag::PROOF_HASH,
        tag::PROOF_SIG,
        tag::MEMO,
        tag::COOP_CLOSE_SIG,
        tag::TRANSFER_SIG,
        tag::DEPOSIT_SIG,
        tag::UNILATERAL_CLOSE_SIG,
        tag::TX_ID,
        tag::BLOCK_HASH,
        tag::BLOCK_SIG,
        tag::STATE,
        tag::BATCH_SEED,
        tag::MEMO_TEXT,
        tag::CREDIT_GRANT_SIG,
        tag::REPAY_SIG,
    ];
    let crate_tags: Vec<&str> = tags::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(crate_tags, literal, "hash.rs tags and the tags of this test");
    let text = std::fs::read_to_string(protocol_md_path()).expect("read PROTOCOL.md");
    let documented: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `paychan/v1/"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let expected: BTreeSet<&str> = literal
        .iter()
        .map(|t| t.strip_prefix("paychan/v1/").expect("v1 tag"))
        .collect();
    assert_eq!(
        documented, expected,
        "PROTOCOL.md's tag table lists exactly the tags of hash.rs"
    );
}

//! The C2SP note formats of `paychan_protocol::note`: conformance with implementations and
//! vectors we did not write, and refusal of malformed input.
//!
//! - The signed-note example of the C2SP spec (the golang.org/x/mod `sumdb/note` vector) verifies
//!   with our parser and verifier keys.
//! - The signature payload layout of a cosignature matches the example of C2SP tlog-cosignature
//!   and a vector of transparency-dev/formats (`note/note_cosigv1_test.go`).
//! - Our checkpoint note, log verifier key and cosignatures verify with the `signed_note` crate
//!   (cloudflare azul), and its body parses with `tlog_tiles`; a note they produce parses in ours.
//!   Neither crate implements cosignature v1 (0.2.x), so the cosignature check uses their note
//!   parser, their key id and ed25519-dalek's verification over the message as tlog-cosignature
//!   defines it, spelled out here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use paychan_protocol::note::{
    self, parse_checkpoint_note, NoteError, SignedNote, TlogProof, VerifierKey, KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
};
use paychan_protocol::{Checkpoint, Genesis, Hash32, Keypair, PublicKey, SignedCheckpoint};
use signed_note::{Note, StandardSigner, StandardVerifier, Verifier, VerifierList};

const PETER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n\
                          \n\
                          \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

struct Chain {
    genesis: Genesis,
    sequencer: Keypair,
    witnesses: Vec<Keypair>,
}

fn chain() -> Chain {
    let sequencer = Keypair::from_seed([1; 32]);
    let witnesses: Vec<Keypair> = (2..5u8).map(|i| Keypair::from_seed([i; 32])).collect();
    let genesis = Genesis {
        network: "note-test".into(),
        unit: paychan_protocol::Unit::credit(),
        genesis_time_ms: 1_700_000_000_000,
        sequencer: sequencer.public(),
        witnesses: witnesses.iter().map(Keypair::public).collect(),
        witness_threshold: 2,
        challenge_period_ms: 10_000,
        block_interval_ms: 100,
        heartbeat_interval_ms: 1_000,
        max_time_step_ms: 60_000,
        max_txs_per_block: 100,
        max_pending_per_account: 16,
        tx_fee_min: 0,
        tx_fee_per_byte: 0,
        allocations: vec![],
    };
    Chain {
        genesis,
        sequencer,
        witnesses,
    }
}

fn checkpoint(g: &Genesis) -> Checkpoint {
    Checkpoint {
        chain_id: g.chain_id(),
        log_size: 12_345,
        log_root: Hash32([0xab; 32]),
        height: 678,
        block_hash: Hash32([0xcd; 32]),
    }
}

fn signed(c: &Chain, cosigners: &[usize]) -> SignedCheckpoint {
    let cp = checkpoint(&c.genesis);
    SignedCheckpoint {
        checkpoint: cp,
        signature: cp.sign_sequencer(&c.sequencer),
        cosignatures: cosigners
            .iter()
            .map(|&i| cp.cosign(&c.witnesses[i], 1_700_000_100 + i as u64))
            .collect(),
    }
}

/// tlog-cosignature v1 as that spec defines it, over the `signed_note` crate's traits.
struct CosignatureV1Verifier {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl CosignatureV1Verifier {
    fn new(name: &str, key: &PublicKey) -> Self {
        let mut typed = vec![0x04];
        typed.extend_from_slice(&key.0);
        CosignatureV1Verifier {
            name: name.to_string(),
            id: signed_note::key_id(name, &typed),
            key: ed25519_dalek::VerifyingKey::from_bytes(&key.0).expect("a valid key"),
        }
    }
}

impl Verifier for CosignatureV1Verifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(raw) = <[u8; 72]>::try_from(sig) else {
            return false;
        };
        let ts = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        let mut signed = format!("cosignature/v1\ntime {ts}\n").into_bytes();
        signed.extend_from_slice(msg);
        let sig = ed25519_dalek::Signature::from_bytes(raw[8..].try_into().expect("64 bytes"));
        self.key.verify_strict(&signed, &sig).is_ok()
    }
}

#[test]
fn the_spec_example_note_verifies_in_ours() {
    let key = VerifierKey::parse(PETER_KEY).expect("the example verifier key");
    assert_eq!(key.name, "PeterNeumann");
    assert_eq!(key.key_type, KEY_TYPE_ED25519);
    assert_eq!(key.to_text(), PETER_KEY, "the key text round-trips");
    let n = SignedNote::parse(PETER_NOTE).expect("the example note");
    assert_eq!(n.to_text(), PETER_NOTE, "the note text round-trips");
    assert_eq!(n.verify(&key), Ok(None));
    let tampered = PETER_NOTE.replace("cryptography", "cryptographY");
    assert_eq!(
        SignedNote::parse(&tampered).expect("well-formed").verify(&key),
        Err(NoteError::BadSignature {
            name: "PeterNeumann".into()
        })
    );
    // A key id that is not the derivation is refused.
    assert!(matches!(
        VerifierKey::parse(&PETER_KEY.replace("c74f20a3", "c74f20a4")),
        Err(NoteError::BadVerifierKey(_))
    ));
}

#[test]
fn the_cosignature_payload_layout_matches_published_examples() {
    // C2SP tlog-cosignature: the example line of `witness.example.com/w1` signs `time 1679315147`.
    let spec = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
                \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
                \u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    let n = SignedNote::parse(spec).expect("the spec's example");
    assert_eq!(n.signatures.len(), 2);
    let (ts, _) = note::split_cosignature(&n.signatures[1].payload).expect("a v1 cosignature payload");
    assert_eq!(ts, 1_679_315_147);
    // transparency-dev/formats, TestCosignatureTimestamp: this payload carries 1727964367.
    let raw = B64
        .decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
        .expect("base64");
    assert_eq!(
        note::split_cosignature(&raw[4..]).map(|x| x.0),
        Some(1_727_964_367)
    );
    // And a plain Ed25519 signature is not a cosignature payload.
    let plain = B64
        .decode(
            "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=",
        )
        .expect("base64");
    assert_eq!(note::split_cosignature(&plain[4..]), None);
}

#[test]
fn our_checkpoint_note_verifies_with_signed_note_and_tlog_tiles() {
    let c = chain();
    let sc = signed(&c, &[0, 2]);
    let text = sc.to_note(&c.genesis.sequencer);
    let theirs = Note::from_bytes(text.as_bytes()).expect("signed_note parses our note");
    assert_eq!(
        theirs.to_bytes(),
        text.as_bytes(),
        "and writes it back byte for byte"
    );

    // The log signature, with our log verifier key.
    let log_key = note::log_verifier_key(&c.genesis);
    let log = StandardVerifier::new(&log_key).expect("signed_note accepts our log verifier key");
    assert_eq!(log.name(), sc.checkpoint.origin());
    let (verified, unverified) = theirs
        .verify(&VerifierList::new(vec![Box::new(log.clone())]))
        .expect("the log signature verifies with signed_note");
    assert_eq!(verified.len(), 1);
    assert_eq!(
        unverified.len(),
        2,
        "the cosignatures are other keys' lines to it"
    );

    // The cosignatures, with their key ids and the v1 message.
    let list = VerifierList::new(vec![
        Box::new(log),
        Box::new(CosignatureV1Verifier::new(
            &note::witness_key_name(&c.witnesses[0].public()),
            &c.witnesses[0].public(),
        )),
        Box::new(CosignatureV1Verifier::new(
            &note::witness_key_name(&c.witnesses[2].public()),
            &c.witnesses[2].public(),
        )),
    ]);
    let (verified, unverified) = theirs.verify(&list).expect("every signature verifies");
    assert_eq!((verified.len(), unverified.len()), (3, 0));
    // Our witness verifier key names that key id too.
    let wk = VerifierKey::parse(&note::witness_verifier_key(&c.genesis, &c.witnesses[0].public()))
        .expect("our witness key parses");
    assert_eq!(wk.key_type, KEY_TYPE_COSIGNATURE_V1);
    assert_eq!(u32::from_be_bytes(wk.key_id), verified[1].id());

    // A changed cosignature timestamp no longer verifies with their parser either.
    let mut bad = sc.clone();
    bad.cosignatures[1].timestamp_s += 1;
    let bad = Note::from_bytes(bad.to_note(&c.genesis.sequencer).as_bytes()).expect("well-formed");
    assert!(bad.verify(&list).is_err());

    // tlog_tiles reads the body as a checkpoint with one extension line.
    let body = sc.checkpoint.body();
    let parsed =
        tlog_tiles::checkpoint::Checkpoint::from_bytes(body.as_bytes()).expect("tlog_tiles parses our body");
    assert_eq!(parsed.origin(), sc.checkpoint.origin());
    assert_eq!(parsed.size(), sc.checkpoint.log_size);
    assert_eq!(parsed.hash().0, sc.checkpoint.log_root.0);
    assert_eq!(
        parsed.extension(),
        format!("block 678 {}\n", B64.encode([0xcd; 32]))
    );
    assert_eq!(parsed.to_bytes(), body.as_bytes());
}

#[test]
fn a_note_signed_by_signed_note_parses_in_ours() {
    let c = chain();
    let ours = signed(&c, &[]);
    let cp = ours.checkpoint;
    let body = tlog_tiles::checkpoint::Checkpoint::new(
        &cp.origin(),
        cp.log_size,
        tlog_tiles::tlog::Hash(cp.log_root.0),
        &format!("block {} {}\n", cp.height, B64.encode(cp.block_hash.0)),
    )
    .expect("a checkpoint")
    .to_bytes();
    let key_hex = hex::encode(note::key_id(&cp.origin(), KEY_TYPE_ED25519, &c.genesis.sequencer));
    let mut typed_seed = vec![KEY_TYPE_ED25519];
    typed_seed.extend_from_slice(&c.sequencer.seed());
    let skey = format!("PRIVATE+KEY+{}+{key_hex}+{}", cp.origin(), B64.encode(typed_seed));
    let signer = StandardSigner::new(&skey).expect("a signer key");
    let (other_skey, _) = signed_note::generate_key(&mut rand_core::OsRng, "example.com/unrelated");
    let other = StandardSigner::new(&other_skey).expect("a signer key");
    let mut n = Note::new(&body, &[]).expect("a note");
    n.add_sigs(&[&signer, &other]).expect("signed");
    let text = String::from_utf8(n.to_bytes()).expect("UTF-8");
    let parsed = parse_checkpoint_note(&text, &c.genesis).expect("our parser takes their note");
    assert_eq!(
        parsed, ours,
        "Ed25519 is deterministic: the same signature as ours"
    );
}

#[test]
fn parse_checkpoint_note_takes_known_keys_and_ignores_others() {
    let c = chain();
    let sc = signed(&c, &[1, 0]);
    let text = sc.to_note(&c.genesis.sequencer);
    assert_eq!(parse_checkpoint_note(&text, &c.genesis), Ok(sc.clone()));
    // A line of a stranger, or of a witness under a wrong key id, is ignored.
    let stranger = Keypair::from_seed([9; 32]);
    let mut with_stranger = sc.clone();
    with_stranger
        .cosignatures
        .push(sc.checkpoint.cosign(&stranger, 5));
    let text2 = with_stranger.to_note(&c.genesis.sequencer);
    assert_eq!(parse_checkpoint_note(&text2, &c.genesis), Ok(sc.clone()));
    // Another chain's genesis does not know this origin.
    let mut other = c.genesis.clone();
    other.network = "other".into();
    assert!(matches!(
        parse_checkpoint_note(&text, &other),
        Err(NoteError::WrongOrigin { .. })
    ));
}

#[test]
fn malformed_or_badly_signed_notes_are_refused() {
    let c = chain();
    let sc = signed(&c, &[0]);
    let text = sc.to_note(&c.genesis.sequencer);
    let g = &c.genesis;
    let lines: Vec<&str> = text.lines().collect();
    let err = |t: &str| parse_checkpoint_note(t, g).expect_err("refused");

    // Without the log line.
    let no_log = text.replace(&format!("{}\n", lines[5]), "");
    assert_eq!(err(&no_log), NoteError::MissingLogSignature);
    // A known key twice.
    let twice = format!("{text}{}\n", lines[6]);
    assert!(matches!(err(&twice), NoteError::DuplicateSignature { .. }));
    // A bad log signature, a bad cosignature.
    let mut bad = sc.clone();
    bad.signature.0[0] ^= 1;
    assert!(matches!(
        err(&bad.to_note(&g.sequencer)),
        NoteError::BadSignature { .. }
    ));
    let mut bad = sc.clone();
    bad.cosignatures[0].signature.0[0] ^= 1;
    assert!(matches!(
        err(&bad.to_note(&g.sequencer)),
        NoteError::BadSignature { .. }
    ));
    let mut bad = sc.clone();
    bad.cosignatures[0].timestamp_s = u64::MAX;
    assert_eq!(
        err(&bad.to_note(&g.sequencer)),
        NoteError::TimestampTooLarge(u64::MAX)
    );
    // Syntax.
    for (what, t) in [
        ("no empty line", text.replacen("\n\n", "\n", 1)),
        ("no final newline", text.trim_end().to_string()),
        ("a control character", text.replacen("block", "bl\u{7}ock", 1)),
        ("a hyphen for the dash", text.replace('\u{2014}', "-")),
        ("bad base64", {
            let i = text.rfind("=\n").expect("padded base64");
            format!("{}!\n", &text[..i])
        }),
        ("no signature", format!("{}\n", sc.checkpoint.body())),
    ] {
        assert!(
            matches!(err(&t), NoteError::Malformed(_)),
            "{what}: {:?}",
            err(&t)
        );
    }
    // A body that is not canonical or not ours (the signatures do not matter: refused first).
    let upper = text.replacen(&g.chain_id().to_hex(), &g.chain_id().to_hex().to_uppercase(), 1);
    assert!(matches!(err(&upper), NoteError::BadCheckpointBody(_)));
    let zero = text.replacen("\n12345\n", "\n012345\n", 1);
    assert!(matches!(err(&zero), NoteError::BadCheckpointBody(_)));
    let extra = text.replacen("\n\n", "\nmore\n\n", 1);
    assert!(matches!(err(&extra), NoteError::BadCheckpointBody(_)));
    // Size and signature-count limits.
    let big = format!("{}{}", " ".repeat(note::NOTE_BYTES_MAX), text);
    assert!(matches!(err(&big), NoteError::TooLarge { .. }));
    let many = format!(
        "{text}{}",
        format!("{}\n", lines[6]).repeat(note::NOTE_SIGNATURES_MAX)
    );
    assert!(matches!(err(&many), NoteError::TooManySignatures { .. }));
}

#[test]
fn verifier_keys_round_trip_and_refuse_bad_text() {
    let c = chain();
    let log = VerifierKey::parse(&note::log_verifier_key(&c.genesis)).expect("parses");
    assert_eq!(log.name, note::origin(&c.genesis.chain_id()));
    assert_eq!(log.key, c.genesis.sequencer);
    assert_eq!(log.to_text(), note::log_verifier_key(&c.genesis));
    let w = c.witnesses[1].public();
    let wk = note::parse_verifier_key(&note::witness_verifier_key(&c.genesis, &w)).expect("parses");
    assert_eq!((wk.key_type, wk.key), (KEY_TYPE_COSIGNATURE_V1, w));
    let good = note::log_verifier_key(&c.genesis);
    let (name, rest) = good.split_once('+').expect("name");
    let (id, key) = rest.split_once('+').expect("id");
    for bad in [
        String::new(),
        name.to_string(),
        format!("{name}+{id}"),
        format!("{name}+ABCDEF01+{key}"),
        format!("{name}+{}+{key}", &id[..7]),
        format!("{name} x+{id}+{key}"),
        format!("{name}+{id}+{}", B64.encode([0x02; 33])),
        format!("{name}+{id}+{}", B64.encode([0x01; 32])),
        format!("{name}+{id}+{key}="),
    ] {
        assert!(
            matches!(VerifierKey::parse(&bad), Err(NoteError::BadVerifierKey(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn tlog_proofs_round_trip_and_refuse_bad_files() {
    let c = chain();
    let note_text = signed(&c, &[0, 1]).to_note(&c.genesis.sequencer);
    let p = TlogProof {
        index: 73_894,
        path: vec![Hash32([1; 32]), Hash32([2; 32])],
        note: note_text.clone(),
    };
    let text = p.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 73894\nAQEB"));
    assert_eq!(TlogProof::parse(&text), Ok(p.clone()));
    // The optional extra line is accepted (and dropped).
    let extra = text.replacen("\nindex", "\nextra YWdl\nindex", 1);
    assert_eq!(TlogProof::parse(&extra), Ok(p.clone()));
    let empty = TlogProof {
        index: 0,
        path: vec![],
        note: note_text,
    };
    assert_eq!(TlogProof::parse(&empty.to_text()), Ok(empty));
    for (what, bad) in [
        ("header", text.replacen("@v1", "@v2", 1)),
        ("leading zero", text.replacen("index 7", "index 07", 1)),
        ("no index", text.replacen("index ", "idx ", 1)),
        ("short hash", text.replacen("AQEB", "AQ", 1)),
        ("truncated", "c2sp.org/tlog-proof@v1\nindex 1\n".to_string()),
        (
            "too long",
            text.replacen(
                "\n\n",
                &format!(
                    "\n{}\n",
                    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n".repeat(64)
                ),
                1,
            ),
        ),
    ] {
        assert!(
            matches!(TlogProof::parse(&bad), Err(NoteError::BadProof(_))),
            "{what}"
        );
    }
    let not_a_note = text.replacen('\u{2014}', "-", 1);
    assert!(matches!(
        TlogProof::parse(&not_a_note),
        Err(NoteError::Malformed(_))
    ));
}

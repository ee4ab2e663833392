//! Checkpoints as C2SP texts: the signed note ([signed-note]), the checkpoint body
//! ([tlog-checkpoint]), the witnesses' cosignatures ([tlog-cosignature], version 1, Ed25519),
//! verifier keys, and the offline inclusion proof file ([tlog-proof]).
//!
//! PROTOCOL.md §8.7 is the normative description. In short:
//!
//! - the **origin** of a chain is `paychan/` followed by the 64 lower-case hex digits of its
//!   chain id;
//! - the **checkpoint body** is four lines, each ending in `\n`: the origin, the log size in
//!   decimal, the log root in standard padded base64, and one extension line
//!   `block <height> <base64 block hash>`;
//! - the **log signature** is plain Ed25519 by the sequencer over the body bytes; its key has
//!   note type `0x01` and the origin as its name;
//! - a **cosignature** is Ed25519 by a witness over `cosignature/v1\ntime <t>\n` followed by the
//!   body; its key has type `0x04` and the name `paychan/witness/<64 hex of the key>`, and its
//!   signature line carries `key id || t (u64 big-endian) || signature`.
//!
//! Every key id is `SHA-256(name || 0x0A || type || 32-byte key)[..4]`.
//!
//! [signed-note]: https://c2sp.org/signed-note
//! [tlog-checkpoint]: https://c2sp.org/tlog-checkpoint
//! [tlog-cosignature]: https://c2sp.org/tlog-cosignature
//! [tlog-proof]: https://c2sp.org/tlog-proof

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::crypto::{self, PublicKey, Signature};
use crate::hash::Hash32;
use crate::ledger::{Checkpoint, Cosignature, Genesis, SignedCheckpoint};
use crate::limits::WITNESSES_MAX;

/// Prefix of a chain's origin (and of its log key name).
pub const ORIGIN_PREFIX: &str = "paychan/";
/// Prefix of a witness's cosignature key name.
pub const WITNESS_NAME_PREFIX: &str = "paychan/witness/";
/// Note key type of an Ed25519 signature over the note text (signed-note).
pub const KEY_TYPE_ED25519: u8 = 0x01;
/// Note key type of an Ed25519 cosignature, version 1 (tlog-cosignature).
pub const KEY_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// First line of the message a cosignature signs.
pub const COSIGNATURE_HEADER: &str = "cosignature/v1\n";
/// First line of a tlog-proof file.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The em dash (U+2014) and space that start a signature line.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";
/// Largest note text this module parses.
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// Most signature lines a note may carry (known keys or not).
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// Most hashes in the inclusion path of a tlog-proof (a tree of at most 2^64 leaves).
pub const TLOG_PROOF_PATH_MAX: usize = 64;
/// Largest cosignature timestamp (tlog-cosignature: it must not exceed 2^63 - 1).
pub const TIMESTAMP_MAX: u64 = i64::MAX as u64;

/// Why a note, a verifier key or a proof file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text is longer than the limit.
    #[error("note of {len} bytes, at most {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// More signature lines than [`NOTE_SIGNATURES_MAX`].
    #[error("more than {max} signature lines")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// The note body is not a checkpoint of this protocol.
    #[error("not a paychan checkpoint body: {0}")]
    BadCheckpointBody(&'static str),
    /// The checkpoint is of another chain.
    #[error("checkpoint origin {got:?}, expected {expected:?}")]
    WrongOrigin {
        /// This chain's origin.
        expected: String,
        /// The note's origin line.
        got: String,
    },
    /// No valid signature by the log key.
    #[error("no signature by the log key")]
    MissingLogSignature,
    /// A known key signed more than once.
    #[error("two signatures by the key {name:?}")]
    DuplicateSignature {
        /// The key name.
        name: String,
    },
    /// A signature line of a known key that does not verify (or has the wrong length).
    #[error("invalid signature by the key {name:?}")]
    BadSignature {
        /// The key name.
        name: String,
    },
    /// A cosignature timestamp above 2^63 - 1.
    #[error("cosignature timestamp {0} exceeds 2^63 - 1")]
    TimestampTooLarge(u64),
    /// A verifier key that is not `name+keyid+base64(type||key)` with a matching key id.
    #[error("bad verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// A tlog-proof file that does not follow the format.
    #[error("bad tlog-proof: {0}")]
    BadProof(&'static str),
}

/// The origin of the chain with this id: `paychan/` + 64 lower-case hex digits.
pub fn origin(chain_id: &Hash32) -> String {
    format!("{ORIGIN_PREFIX}{}", chain_id.to_hex())
}

/// The key name of a witness's cosignature key: `paychan/witness/` + 64 hex digits of it.
pub fn witness_key_name(witness: &PublicKey) -> String {
    format!("{WITNESS_NAME_PREFIX}{}", witness.to_hex())
}

/// A note key id: `SHA-256(name || 0x0A || key_type || key)[..4]`.
pub fn key_id(name: &str, key_type: u8, key: &PublicKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', key_type]);
    h.update(key.0);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The exact text the sequencer signs: origin, size, root, and the `block` extension line.
pub fn checkpoint_body(cp: &Checkpoint) -> String {
    format!(
        "{}\n{}\n{}\nblock {} {}\n",
        origin(&cp.chain_id),
        cp.log_size,
        B64.encode(cp.log_root.0),
        cp.height,
        B64.encode(cp.block_hash.0),
    )
}

/// The exact bytes a cosignature signs: `cosignature/v1\ntime <t>\n` + body.
pub fn cosignature_message(timestamp_s: u64, body: &str) -> Vec<u8> {
    format!("{COSIGNATURE_HEADER}time {timestamp_s}\n{body}").into_bytes()
}

/// Parses a checkpoint body of this protocol (of any chain). Refuses anything that is not the
/// exact text [`checkpoint_body`] writes for the checkpoint it describes.
pub fn parse_checkpoint_body(body: &str) -> Result<Checkpoint, NoteError> {
    let bad = NoteError::BadCheckpointBody;
    let rest = body.strip_suffix('\n').ok_or(bad("no final newline"))?;
    let lines: Vec<&str> = rest.split('\n').collect();
    let [origin_line, size, root, block] = lines[..] else {
        return Err(bad("not four lines"));
    };
    let hex_id = origin_line
        .strip_prefix(ORIGIN_PREFIX)
        .ok_or(bad("origin does not start with paychan/"))?;
    if hex_id.len() != 64 || !hex_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad("origin is not paychan/ + 64 lower-case hex digits"));
    }
    let chain_id = Hash32::from_hex(hex_id).map_err(|_| bad("origin hex"))?;
    let log_size = decimal(size).ok_or(bad("log size is not a decimal"))?;
    let log_root = hash_b64(root).ok_or(bad("log root is not 32 bytes of base64"))?;
    let mut parts = block.split(' ');
    let (Some("block"), Some(height), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("extension line is not `block <height> <hash>`"));
    };
    let height = decimal(height).ok_or(bad("height is not a decimal"))?;
    let block_hash = hash_b64(hash).ok_or(bad("block hash is not 32 bytes of base64"))?;
    let cp = Checkpoint {
        chain_id,
        log_size,
        log_root,
        height,
        block_hash,
    };
    if checkpoint_body(&cp) != body {
        return Err(bad("not in canonical form"));
    }
    Ok(cp)
}

/// An ASCII decimal without sign or leading zeros.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn hash_b64(s: &str) -> Option<Hash32> {
    let v = B64.decode(s).ok()?;
    Some(Hash32(v.try_into().ok()?))
}

/// One signature line of a note: `— <name> base64(key id || payload)`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key id.
    pub key_id: [u8; 4],
    /// What follows the key id (for Ed25519: the signature; for a cosignature: timestamp and
    /// signature).
    pub payload: Vec<u8>,
}

impl NoteSignature {
    /// The line, without its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.payload);
        format!("{SIGNATURE_LINE_PREFIX}{} {}", self.name, B64.encode(raw))
    }
}

/// A key name is non-empty and has no Unicode white space and no `+` (signed-note).
pub fn is_key_name_valid(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// A signed note, parsed but not verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedNote {
    /// The text that is signed, ending in `\n`.
    pub body: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note: a non-empty text of valid UTF-8 without control characters other
    /// than newline, ending in a newline, then an empty line, then one or more signature lines
    /// each ending in a newline.
    pub fn parse(text: &str) -> Result<SignedNote, NoteError> {
        let m = NoteError::Malformed;
        if text.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge {
                len: text.len(),
                max: NOTE_BYTES_MAX,
            });
        }
        if text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(m("control character"));
        }
        let (body, sigs) = text
            .rsplit_once("\n\n")
            .ok_or(m("no empty line before the signatures"))?;
        if body.is_empty() {
            return Err(m("empty text"));
        }
        let sigs = sigs
            .strip_suffix('\n')
            .ok_or(m("no newline after the last signature"))?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == NOTE_SIGNATURES_MAX {
                return Err(NoteError::TooManySignatures {
                    max: NOTE_SIGNATURES_MAX,
                });
            }
            let rest = line
                .strip_prefix(SIGNATURE_LINE_PREFIX)
                .ok_or(m("a signature line does not start with an em dash and a space"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(m("a signature line has no key name"))?;
            if !is_key_name_valid(name) {
                return Err(m("invalid key name"));
            }
            let raw = B64.decode(b64).map_err(|_| m("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(m("signature shorter than a key id and one byte"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                payload: raw[4..].to_vec(),
            });
        }
        Ok(SignedNote {
            body: format!("{body}\n"),
            signatures,
        })
    }

    /// The note text: body, empty line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.body.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
            out.push('\n');
        }
        out
    }

    /// Checks the signature of `key` on this note. For an Ed25519 key (type `0x01`) returns
    /// `None`; for a cosignature key (type `0x04`) returns its timestamp. Lines of other keys
    /// are ignored; a key that signed twice, or whose signature does not verify, is an error,
    /// and so is a key that did not sign.
    pub fn verify(&self, key: &VerifierKey) -> Result<Option<u64>, NoteError> {
        let mut found = None;
        for s in self
            .signatures
            .iter()
            .filter(|s| s.name == key.name && s.key_id == key.key_id)
        {
            if found.is_some() {
                return Err(NoteError::DuplicateSignature { name: s.name.clone() });
            }
            found = Some(verify_payload(
                &self.body,
                key.key_type,
                &key.key,
                &s.name,
                &s.payload,
            )?);
        }
        found.ok_or(NoteError::MissingLogSignature)
    }
}

/// Checks a signature payload of a key of type `key_type` over `body`.
fn verify_payload(
    body: &str,
    key_type: u8,
    key: &PublicKey,
    name: &str,
    payload: &[u8],
) -> Result<Option<u64>, NoteError> {
    let bad = || NoteError::BadSignature {
        name: name.to_string(),
    };
    match key_type {
        KEY_TYPE_ED25519 => {
            let sig = Signature(payload.try_into().map_err(|_| bad())?);
            crypto::verify_raw(key, body.as_bytes(), &sig).map_err(|_| bad())?;
            Ok(None)
        }
        KEY_TYPE_COSIGNATURE_V1 => {
            let (ts, sig) = split_cosignature(payload).ok_or_else(bad)?;
            if ts > TIMESTAMP_MAX {
                return Err(NoteError::TimestampTooLarge(ts));
            }
            crypto::verify_raw(key, &cosignature_message(ts, body), &sig).map_err(|_| bad())?;
            Ok(Some(ts))
        }
        _ => Err(bad()),
    }
}

/// Splits a cosignature payload (after the key id) into timestamp and signature.
pub fn split_cosignature(payload: &[u8]) -> Option<(u64, Signature)> {
    if payload.len() != 72 {
        return None;
    }
    let ts = u64::from_be_bytes(payload[..8].try_into().ok()?);
    Some((ts, Signature(payload[8..].try_into().ok()?)))
}

/// A verifier key: `<name>+<key id hex>+<base64(type || 32-byte key)>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifierKey {
    /// The key name.
    pub name: String,
    /// The key id (checked against the name, type and key).
    pub key_id: [u8; 4],
    /// `0x01` (Ed25519 note signature) or `0x04` (Ed25519 cosignature v1).
    pub key_type: u8,
    /// The Ed25519 key.
    pub key: PublicKey,
}

impl VerifierKey {
    /// The verifier key of `key` under `name` and `key_type`, with its derived key id.
    pub fn new(name: &str, key_type: u8, key: PublicKey) -> VerifierKey {
        VerifierKey {
            name: name.to_string(),
            key_id: key_id(name, key_type, &key),
            key_type,
            key,
        }
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut raw = vec![self.key_type];
        raw.extend_from_slice(&self.key.0);
        format!("{}+{}+{}", self.name, hex::encode(self.key_id), B64.encode(raw))
    }

    /// Parses the text form: a valid name, 8 lower-case hex digits equal to the derived key
    /// id, and the base64 of a type `0x01` or `0x04` and a 32-byte key.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let bad = NoteError::BadVerifierKey;
        let (name, rest) = text.split_once('+').ok_or(bad("no '+' after the name"))?;
        let (id_hex, b64) = rest.split_once('+').ok_or(bad("no '+' after the key id"))?;
        if !is_key_name_valid(name) {
            return Err(bad("invalid key name"));
        }
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("key id is not 8 lower-case hex digits"));
        }
        let mut id = [0u8; 4];
        hex::decode_to_slice(id_hex, &mut id).map_err(|_| bad("key id hex"))?;
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        let (&key_type, key) = raw.split_first().ok_or(bad("empty key"))?;
        if key_type != KEY_TYPE_ED25519 && key_type != KEY_TYPE_COSIGNATURE_V1 {
            return Err(bad("unknown key type"));
        }
        let key = PublicKey(key.try_into().map_err(|_| bad("key is not 32 bytes"))?);
        let vk = VerifierKey::new(name, key_type, key);
        if vk.key_id != id {
            return Err(bad("key id does not match the name, type and key"));
        }
        Ok(vk)
    }
}

/// The verifier key of the chain's log (the genesis sequencer, type `0x01`, name = origin).
pub fn log_verifier_key(genesis: &Genesis) -> String {
    VerifierKey::new(&origin(&genesis.chain_id()), KEY_TYPE_ED25519, genesis.sequencer).to_text()
}

/// The cosignature verifier key of `witness` (type `0x04`). The name does not depend on the
/// chain: a witness key is a witness key wherever it serves (and `genesis` is here for callers
/// that hold one; the key need not be one of its witnesses).
pub fn witness_verifier_key(_genesis: &Genesis, witness: &PublicKey) -> String {
    VerifierKey::new(&witness_key_name(witness), KEY_TYPE_COSIGNATURE_V1, *witness).to_text()
}

/// Parses a verifier key (see [`VerifierKey::parse`]).
pub fn parse_verifier_key(text: &str) -> Result<VerifierKey, NoteError> {
    VerifierKey::parse(text)
}

impl SignedCheckpoint {
    /// The full signed note: body, empty line, the log signature line, then one line per
    /// cosignature in order.
    ///
    /// `sequencer` is the log key (the genesis sequencer): the key id of the log signature line
    /// is derived from it, and a signed checkpoint does not carry it.
    pub fn to_note(&self, sequencer: &PublicKey) -> String {
        let cp = &self.checkpoint;
        let origin = cp.origin();
        let mut signatures = vec![NoteSignature {
            key_id: key_id(&origin, KEY_TYPE_ED25519, sequencer),
            name: origin,
            payload: self.signature.0.to_vec(),
        }];
        for c in &self.cosignatures {
            let name = witness_key_name(&c.witness);
            let mut payload = c.timestamp_s.to_be_bytes().to_vec();
            payload.extend_from_slice(&c.signature.0);
            signatures.push(NoteSignature {
                key_id: key_id(&name, KEY_TYPE_COSIGNATURE_V1, &c.witness),
                name,
                payload,
            });
        }
        SignedNote {
            body: cp.body(),
            signatures,
        }
        .to_text()
    }
}

/// Parses a checkpoint note of the chain of `genesis`. Takes the signatures of the keys it
/// knows, the genesis sequencer (the log key) and the genesis witnesses (cosignature keys), and
/// ignores every other line, as signed-note requires. The log signature must be present and
/// valid; every known signature must verify, and no known key may sign twice.
pub fn parse_checkpoint_note(text: &str, genesis: &Genesis) -> Result<SignedCheckpoint, NoteError> {
    let note = SignedNote::parse(text)?;
    let checkpoint = parse_checkpoint_body(&note.body)?;
    let expected = origin(&genesis.chain_id());
    if checkpoint.origin() != expected {
        return Err(NoteError::WrongOrigin {
            expected,
            got: checkpoint.origin(),
        });
    }
    let log_id = key_id(&expected, KEY_TYPE_ED25519, &genesis.sequencer);
    let witnesses: Vec<(String, [u8; 4], PublicKey)> = genesis
        .witnesses
        .iter()
        .map(|w| {
            let name = witness_key_name(w);
            let id = key_id(&name, KEY_TYPE_COSIGNATURE_V1, w);
            (name, id, *w)
        })
        .collect();
    let mut signature = None;
    let mut cosignatures: Vec<Cosignature> = Vec::new();
    for s in &note.signatures {
        let dup = || NoteError::DuplicateSignature { name: s.name.clone() };
        if s.name == expected && s.key_id == log_id {
            if signature.is_some() {
                return Err(dup());
            }
            verify_payload(
                &note.body,
                KEY_TYPE_ED25519,
                &genesis.sequencer,
                &s.name,
                &s.payload,
            )?;
            signature = Some(Signature(
                s.payload[..]
                    .try_into()
                    .map_err(|_| NoteError::BadSignature { name: s.name.clone() })?,
            ));
        } else if let Some((_, _, w)) = witnesses
            .iter()
            .find(|(n, id, _)| *n == s.name && *id == s.key_id)
        {
            if cosignatures.iter().any(|c| c.witness == *w) {
                return Err(dup());
            }
            let ts = verify_payload(&note.body, KEY_TYPE_COSIGNATURE_V1, w, &s.name, &s.payload)?;
            let (_, sig) =
                split_cosignature(&s.payload).ok_or(NoteError::BadSignature { name: s.name.clone() })?;
            cosignatures.push(Cosignature {
                witness: *w,
                timestamp_s: ts.unwrap_or_default(),
                signature: sig,
            });
        }
    }
    debug_assert!(cosignatures.len() <= WITNESSES_MAX);
    Ok(SignedCheckpoint {
        checkpoint,
        signature: signature.ok_or(NoteError::MissingLogSignature)?,
        cosignatures,
    })
}

/// An offline inclusion proof (C2SP tlog-proof): the entry's index, its RFC 6962 inclusion path
/// from the leaf's sibling up, and the checkpoint note the path leads to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TlogProof {
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// The inclusion path.
    pub path: Vec<Hash32>,
    /// The checkpoint note, verbatim.
    pub note: String,
}

impl TlogProof {
    /// The proof file text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\nindex {}\n", self.index);
        for h in &self.path {
            out.push_str(&B64.encode(h.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }

    /// Parses a proof file. An `extra` line is accepted and dropped (it is unauthenticated and
    /// this protocol gives it no meaning). The note must be a well-formed signed note; whether
    /// it is a valid checkpoint of a chain is for [`parse_checkpoint_note`] to say.
    pub fn parse(text: &str) -> Result<TlogProof, NoteError> {
        let bad = NoteError::BadProof;
        if text.len() > NOTE_BYTES_MAX + TLOG_PROOF_PATH_MAX * 46 + 128 {
            return Err(NoteError::TooLarge {
                len: text.len(),
                max: NOTE_BYTES_MAX + TLOG_PROOF_PATH_MAX * 46 + 128,
            });
        }
        let mut rest = text
            .strip_prefix(TLOG_PROOF_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(bad("first line is not c2sp.org/tlog-proof@v1"))?;
        let next_line = |rest: &mut &str| -> Result<String, NoteError> {
            let (line, after) = rest.split_once('\n').ok_or(bad("truncated"))?;
            *rest = after;
            Ok(line.to_string())
        };
        let mut line = next_line(&mut rest)?;
        if let Some(extra) = line.strip_prefix("extra ") {
            B64.decode(extra).map_err(|_| bad("extra is not base64"))?;
            line = next_line(&mut rest)?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(decimal)
            .ok_or(bad("no `index <decimal>` line"))?;
        let mut path = Vec::new();
        loop {
            let line = next_line(&mut rest)?;
            if line.is_empty() {
                break;
            }
            if path.len() == TLOG_PROOF_PATH_MAX {
                return Err(bad("inclusion path too long"));
            }
            path.push(hash_b64(&line).ok_or(bad("a path line is not 32 bytes of base64"))?);
        }
        SignedNote::parse(rest)?;
        Ok(TlogProof {
            index,
            path,
            note: rest.to_string(),
        })
    }
}

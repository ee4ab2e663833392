//! The ledger export file: one self-describing, versioned stream of a ledger's genesis,
//! blocks and signed checkpoints, each record length-prefixed with a kind byte, closed by an
//! end record so that truncation is detectable. PROTOCOL.md §12 gives the bytes.
//!
//! There is no digest of the whole file: every byte is covered by a check that fails when it
//! changes: the magic, version, kind and length bytes by format checks, the payloads by the
//! canonical, size-capped decoding of the protocol and then by the hashes and signatures the
//! audit verifies, the end record by its comparison with the records read.

use std::io::{self, Read, Write};

use paychan_ledger::CheckedBlock;
use paychan_protocol::codec::{decode, encode};
use paychan_protocol::limits::{BLOCK_BYTES_MAX, CHECKPOINT_BYTES_MAX, GENESIS_BYTES_MAX};
use paychan_protocol::{Block, Genesis, SignedCheckpoint, Wire};
use serde::{Deserialize, Serialize};

use crate::auditor::{Auditor, Pin};
use crate::error::{AuditError, ExportError};
use crate::report::Report;

/// The first 8 bytes of every export: `PAYCHAN` and a zero byte.
pub const MAGIC: [u8; 8] = *b"PAYCHAN\0";
/// The format version this crate writes and reads (2 bytes little-endian after the magic).
pub const VERSION: u16 = 1;
/// Length of the file header (magic and version).
pub const HEADER_BYTES: usize = MAGIC.len() + 2;
/// Length of a record header (kind byte and `u32` little-endian payload length).
pub const RECORD_HEADER_BYTES: usize = 5;

/// Kind byte of the genesis record (`postcard(Genesis)`).
pub const KIND_GENESIS: u8 = 1;
/// Kind byte of a block record (`postcard(Block)`).
pub const KIND_BLOCK: u8 = 2;
/// Kind byte of a checkpoint record (`postcard(SignedCheckpoint)`).
pub const KIND_CHECKPOINT: u8 = 3;
/// Kind byte of the end record (`postcard(ExportEnd)`).
pub const KIND_END: u8 = 4;
/// Largest end record payload (three varints).
pub const END_BYTES_MAX: usize = 30;

/// The end record: what the records before it add up to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ExportEnd {
    /// Number of block records.
    pub blocks: u64,
    /// Number of checkpoint records.
    pub checkpoints: u64,
    /// Height of the last block record (0 when there is none).
    pub last_height: u64,
}

/// One record of an export.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Record {
    /// The genesis (always the first record).
    Genesis(Box<Genesis>),
    /// A block.
    Block(Box<Block>),
    /// A signed checkpoint with its cosignatures.
    Checkpoint(Box<SignedCheckpoint>),
    /// The end record (always the last).
    End(ExportEnd),
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_GENESIS => "genesis",
        KIND_BLOCK => "block",
        KIND_CHECKPOINT => "checkpoint",
        KIND_END => "end",
        _ => "unknown",
    }
}

fn kind_max(kind: u8) -> Option<usize> {
    match kind {
        KIND_GENESIS => Some(GENESIS_BYTES_MAX),
        KIND_BLOCK => Some(BLOCK_BYTES_MAX),
        KIND_CHECKPOINT => Some(CHECKPOINT_BYTES_MAX),
        KIND_END => Some(END_BYTES_MAX),
        _ => None,
    }
}

// Every payload limit fits the u32 length field.
const _: () = assert!(GENESIS_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(BLOCK_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(CHECKPOINT_BYTES_MAX <= u32::MAX as usize);

/// Writes an export as it goes: the header and genesis at once, then blocks and checkpoints
/// in the order given, then the end record.
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    inner: W,
    end: ExportEnd,
}

impl<W: Write> ExportWriter<W> {
    /// Writes the file header and the genesis record.
    pub fn new(mut inner: W, genesis: &Genesis) -> io::Result<ExportWriter<W>> {
        inner.write_all(&MAGIC)?;
        inner.write_all(&VERSION.to_le_bytes())?;
        let mut w = ExportWriter {
            inner,
            end: ExportEnd {
                blocks: 0,
                checkpoints: 0,
                last_height: 0,
            },
        };
        w.record(KIND_GENESIS, &genesis.to_bytes())?;
        Ok(w)
    }

    fn record(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let max = kind_max(kind).expect("the writer uses defined kinds");
        if payload.len() > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} record of {} bytes exceeds {max}",
                    kind_name(kind),
                    payload.len()
                ),
            ));
        }
        self.inner.write_all(&[kind])?;
        self.inner.write_all(&(payload.len() as u32).to_le_bytes())?;
        self.inner.write_all(payload)
    }

    /// Appends a block (blocks go in height order; the audit checks it).
    pub fn write_block(&mut self, block: &Block) -> io::Result<()> {
        self.record(KIND_BLOCK, &block.to_bytes())?;
        self.end.blocks += 1;
        self.end.last_height = block.header.height;
        Ok(())
    }

    /// Appends a signed checkpoint (right after the block at its height).
    pub fn write_checkpoint(&mut self, signed: &SignedCheckpoint) -> io::Result<()> {
        self.record(KIND_CHECKPOINT, &signed.to_bytes())?;
        self.end.checkpoints += 1;
        Ok(())
    }

    /// Writes the end record, flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let end = encode(&self.end);
        self.record(KIND_END, &end)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Where a reader is: enough to resume reading at a record boundary (for tools that re-read
/// the tail of a file, and for tests).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReaderPosition {
    /// Offset of the next byte in the file.
    pub offset: u64,
    header_read: bool,
    genesis_read: bool,
    ended: bool,
    blocks: u64,
    checkpoints: u64,
    last_height: u64,
}

/// Reads an export record by record: an iterator of `(offset, record)` that checks the
/// format as it goes (magic, version, kinds, lengths within limits, canonical payloads, record
/// order, end record figures, nothing after the end) and reports the first problem with its
/// byte offset, after which it yields nothing more.
#[derive(Debug)]
pub struct ExportReader<R: Read> {
    inner: R,
    pos: ReaderPosition,
    failed: bool,
}

impl<R: Read> ExportReader<R> {
    /// A reader at the start of a file.
    pub fn new(inner: R) -> ExportReader<R> {
        ExportReader {
            inner,
            pos: ReaderPosition {
                offset: 0,
                header_read: false,
                genesis_read: false,
                ended: false,
                blocks: 0,
                checkpoints: 0,
                last_height: 0,
            },
            failed: false,
        }
    }

    /// A reader that continues from `pos`: `inner` yields the file from `pos.offset` on.
    pub fn resume(inner: R, pos: ReaderPosition) -> ExportReader<R> {
        ExportReader {
            inner,
            pos,
            failed: false,
        }
    }

    /// Where the reader is.
    pub fn position(&self) -> ReaderPosition {
        self.pos
    }

    fn fail(&mut self, offset: u64, error: ExportError) -> AuditError {
        self.failed = true;
        AuditError::Export { offset, error }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` if the file ended first (at any point).
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, AuditError> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => return Ok(false),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.pos.offset + done as u64;
                    return Err(self.fail(at, ExportError::Io(e.to_string())));
                }
            }
        }
        Ok(true)
    }

    fn read_header(&mut self) -> Result<(), AuditError> {
        let mut h = [0u8; HEADER_BYTES];
        if !self.fill(&mut h)? {
            return Err(self.fail(0, ExportError::Truncated));
        }
        if h[..MAGIC.len()] != MAGIC {
            return Err(self.fail(0, ExportError::BadMagic));
        }
        let found = u16::from_le_bytes([h[8], h[9]]);
        if found != VERSION {
            return Err(self.fail(
                MAGIC.len() as u64,
                ExportError::UnknownVersion {
                    found,
                    known: VERSION,
                },
            ));
        }
        self.pos.offset = HEADER_BYTES as u64;
        self.pos.header_read = true;
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<(u64, Record)>, AuditError> {
        if !self.pos.header_read {
            self.read_header()?;
        }
        let start = self.pos.offset;
        if self.pos.ended {
            let mut b = [0u8; 1];
            if self.fill(&mut b)? {
                return Err(self.fail(start, ExportError::TrailingBytes));
            }
            return Ok(None);
        }
        let mut rh = [0u8; RECORD_HEADER_BYTES];
        if !self.fill(&mut rh)? {
            return Err(self.fail(start, ExportError::Truncated));
        }
        let kind = rh[0];
        let len = u32::from_le_bytes([rh[1], rh[2], rh[3], rh[4]]) as u64;
        let Some(max) = kind_max(kind) else {
            return Err(self.fail(start, ExportError::UnknownKind(kind)));
        };
        let first = !self.pos.genesis_read;
        if first != (kind == KIND_GENESIS) {
            let why = if first {
                "the first record must be the genesis"
            } else {
                "a second genesis record"
            };
            return Err(self.fail(start, ExportError::Order(why)));
        }
        let name = kind_name(kind);
        if len > max as u64 {
            return Err(self.fail(start + 1, ExportError::TooLong { kind: name, len, max }));
        }
        let mut payload = vec![0u8; len as usize];
        if !self.fill(&mut payload)? {
            return Err(self.fail(start, ExportError::Truncated));
        }
        let at = start + RECORD_HEADER_BYTES as u64;
        let bad = |error| ExportError::Decode { kind: name, error };
        let record = match kind {
            KIND_GENESIS => Genesis::from_bytes(&payload).map(|g| Record::Genesis(Box::new(g))),
            KIND_BLOCK => Block::from_bytes(&payload).map(|b| Record::Block(Box::new(b))),
            KIND_CHECKPOINT => {
                SignedCheckpoint::from_bytes(&payload).map(|c| Record::Checkpoint(Box::new(c)))
            }
            _ => decode::<ExportEnd>(&payload, END_BYTES_MAX).map(Record::End),
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => return Err(self.fail(at, bad(e))),
        };
        match &record {
            Record::Genesis(_) => self.pos.genesis_read = true,
            Record::Block(b) => {
                self.pos.blocks += 1;
                self.pos.last_height = b.header.height;
            }
            Record::Checkpoint(_) => self.pos.checkpoints += 1,
            Record::End(end) => {
                for (field, expected, found) in [
                    ("blocks", self.pos.blocks, end.blocks),
                    ("checkpoints", self.pos.checkpoints, end.checkpoints),
                    ("last_height", self.pos.last_height, end.last_height),
                ] {
                    if expected != found {
                        return Err(self.fail(
                            at,
                            ExportError::EndMismatch {
                                field,
                                expected,
                                found,
                            },
                        ));
                    }
                }
                self.pos.ended = true;
            }
        }
        self.pos.offset = at + len;
        Ok(Some((start, record)))
    }
}

impl<R: Read> Iterator for ExportReader<R> {
    type Item = Result<(u64, Record), AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.next_record().transpose()
    }
}

/// A failed audit of an export: the first failure, the offset of the record it is in, and
/// what had been verified before it (none if the genesis itself failed).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFailure {
    /// The first failure.
    pub error: AuditError,
    /// Offset of the record where it happened.
    pub record_offset: Option<u64>,
    /// What was verified before it.
    pub report: Option<Report>,
}

impl std::fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, self.record_offset) {
            (AuditError::Export { .. }, _) | (_, None) => write!(f, "{}", self.error)?,
            (e, Some(at)) => write!(f, "record at export byte {at}: {e}")?,
        }
        if let Some(r) = &self.report {
            write!(f, " (verified to height {}", r.height)?;
            if let Some(w) = &r.newest_witnessed {
                if !r.reaches_newest_witnessed {
                    write!(
                        f,
                        "; behind the newest witnessed checkpoint it holds, at height {}",
                        w.height
                    )?;
                }
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for AuditFailure {}

/// Audits an export read from `r`: the genesis against `pin`, then every record in order
/// (see [`Auditor`]), then the end record. `accepted` is the checkpoint an earlier audit
/// accepted, if any ([`Auditor::with_accepted`]). On success the auditor holds the verified
/// state ([`Auditor::report`], [`Auditor::balances`]).
pub fn audit_export<R: Read + Send>(
    r: R,
    pin: Pin,
    accepted: Option<&SignedCheckpoint>,
) -> Result<Auditor, Box<AuditFailure>> {
    let mut reader = ExportReader::new(r);
    let failure = |error, record_offset, report| {
        Box::new(AuditFailure {
            error,
            record_offset,
            report,
        })
    };
    let (offset, genesis) = match reader.next() {
        Some(Ok((offset, Record::Genesis(g)))) => (offset, g),
        Some(Err(e)) => return Err(failure(e, None, None)),
        // The reader yields the genesis first or an error; kept total all the same.
        Some(Ok(_)) | None => {
            let e = AuditError::Export {
                offset: 0,
                error: ExportError::Order("the first record must be the genesis"),
            };
            return Err(failure(e, None, None));
        }
    };
    let mut auditor = Auditor::new(&genesis, pin).map_err(|e| failure(e, Some(offset), None))?;
    if let Some(accepted) = accepted {
        auditor = auditor
            .with_accepted(accepted)
            .map_err(|e| failure(e, None, None))?;
    }
    audit_records(reader, auditor)
}

/// Records read ahead of the replay at a time, at most: their blocks' signatures are checked
/// on the other cores while the records before them are replayed.
const AHEAD_RECORDS: usize = 64;

/// A record read ahead, its block (if it is one) checked.
enum Ahead {
    Block(u64, Box<CheckedBlock>),
    Other(Result<(u64, Record), AuditError>),
}

/// Audits the records after the genesis from `reader` with `auditor` (what [`audit_export`]
/// does once the genesis is read; with [`ExportReader::resume`] it continues a partial audit).
///
/// The records are replayed one by one, in order, with the same answer and the same first
/// failure as [`Auditor::push_block`] and [`Auditor::push_checkpoint`] give; meanwhile the
/// next [`AHEAD_RECORDS`] records are read and their blocks' header and own transaction
/// signatures checked ([`CheckedBlock`]) in batches on every core.
pub fn audit_records<R: Read + Send>(
    mut reader: ExportReader<R>,
    mut auditor: Auditor,
) -> Result<Auditor, Box<AuditFailure>> {
    let sequencer = auditor.state().genesis().sequencer;
    let ahead = auditor.checks_ahead();
    // The window starts at one record and doubles, and the first records are replayed before
    // anything is read ahead: an audit that fails early (a tampered record) checks nothing
    // past it.
    let mut window = 1;
    let mut current = check_ahead(read_ahead(&mut reader, window), ahead, &sequencer);
    while !current.is_empty() {
        window = (window * 2).min(AHEAD_RECORDS);
        let (next, replayed) = if window <= 4 {
            let replayed = replay(&mut auditor, current);
            let next = match replayed {
                Ok(()) => check_ahead(read_ahead(&mut reader, window), ahead, &sequencer),
                Err(_) => Vec::new(),
            };
            (next, replayed)
        } else {
            // Reading (decoding) the next records is part of the work beside the replay.
            let reader = &mut reader;
            rayon::join(
                || check_ahead(read_ahead(reader, window), ahead, &sequencer),
                || replay(&mut auditor, current),
            )
        };
        if let Err((error, record_offset)) = replayed {
            return Err(Box::new(AuditFailure {
                error,
                record_offset,
                report: Some(auditor.report()),
            }));
        }
        current = next;
    }
    Ok(auditor)
}

/// The next records, up to `max`, ending at the first error.
fn read_ahead<R: Read>(reader: &mut ExportReader<R>, max: usize) -> Vec<Result<(u64, Record), AuditError>> {
    let mut out = Vec::with_capacity(max);
    for item in reader.by_ref() {
        let failed = item.is_err();
        out.push(item);
        if failed || out.len() == max {
            break;
        }
    }
    out
}

/// Checks the blocks among `items` against `sequencer` ([`CheckedBlock::check_all`]: batches of
/// consecutive blocks on every core).
fn check_ahead(
    items: Vec<Result<(u64, Record), AuditError>>,
    ahead: bool,
    sequencer: &paychan_protocol::PublicKey,
) -> Vec<Ahead> {
    if !ahead {
        return items.into_iter().map(Ahead::Other).collect();
    }
    let mut blocks = Vec::new();
    let mut out: Vec<Option<Ahead>> = Vec::with_capacity(items.len());
    let mut at = Vec::new();
    for item in items {
        match item {
            Ok((offset, Record::Block(b))) => {
                blocks.push(*b);
                at.push((out.len(), offset));
                out.push(None);
            }
            other => out.push(Some(Ahead::Other(other))),
        }
    }
    // A lone block is not worth waking other threads for.
    let checked: Vec<CheckedBlock> = if blocks.len() <= 1 {
        blocks
            .into_iter()
            .map(|b| CheckedBlock::check(b, sequencer))
            .collect()
    } else {
        CheckedBlock::check_all(blocks, sequencer)
    };
    for ((i, offset), c) in at.into_iter().zip(checked) {
        out[i] = Some(Ahead::Block(offset, Box::new(c)));
    }
    out.into_iter().flatten().collect()
}

/// Replays `items` in order; the first failure and the offset of its record.
fn replay(auditor: &mut Auditor, items: Vec<Ahead>) -> Result<(), (AuditError, Option<u64>)> {
    for item in items {
        match item {
            Ahead::Block(offset, b) => auditor.push_checked_block(&b).map_err(|e| (e, Some(offset)))?,
            Ahead::Other(Err(e)) => return Err((e, None)),
            Ahead::Other(Ok((offset, record))) => match record {
                Record::Block(b) => auditor.push_block(&b).map_err(|e| (e, Some(offset)))?,
                Record::Checkpoint(c) => auditor
                    .push_checkpoint(&c)
                    .map(|_| ())
                    .map_err(|e| (e, Some(offset)))?,
                Record::End(_) => {}
                // The reader refuses a second genesis; kept total all the same.
                Record::Genesis(_) => {
                    return Err((
                        AuditError::Export {
                            offset,
                            error: ExportError::Order("a second genesis record"),
                        },
                        Some(offset),
                    ))
                }
            },
        }
    }
    Ok(())
}

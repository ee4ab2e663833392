//! The auditor's commands: `ledger export`, `ledger keys`, `audit` (from export files, peers
//! and public endpoints, with a saved state and split-view detection), `audit consistency`,
//! `audit prove` and `audit verify-proof`.
//!
//! Exit codes of `audit`: 0 when everything holds, 1 on a verification failure (the first one
//! is named), 2 on a usage or I/O error.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use paychan_audit::{AuditError, AuditFailure, Auditor, ExportReader, ExportWriter, Pin, Record, Report};
use paychan_ledger::{verify_checkpoint, verify_checkpoint_consistency, LedgerState};
use paychan_protocol::merkle::{leaf_hash, verify_inclusion};
use paychan_protocol::note::{self, SignedNote, KEY_TYPE_COSIGNATURE_V1, KEY_TYPE_ED25519};
use paychan_protocol::{
    Checkpoint, Genesis, Hash32, PublicKey, SignedCheckpoint, TlogProof, Tx, VerifierKey, Wire,
};
use paychan_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::DataDir;
use crate::ledger_source::{self, walk, HttpSource, Item, PeerSource, Source, PAGE};
use crate::output::{grouped, time_text, unit_symbol};

/// Why an auditor's command failed, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// Something does not verify (exit 1).
    #[error("verification failed: {0}")]
    Verification(String),
    /// Two sources show a split view (exit 1); the report with both notes is printed already.
    #[error("split view: {0}")]
    SplitView(String),
    /// Bad usage, unreadable input, an unreachable source (exit 2).
    #[error("{0:#}")]
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for CmdError {
    fn from(e: anyhow::Error) -> Self {
        CmdError::Usage(e)
    }
}

impl CmdError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CmdError::Verification(_) | CmdError::SplitView(_) => 1,
            CmdError::Usage(_) => 2,
        }
    }
}

type CmdResult<T> = Result<T, CmdError>;

fn verification(e: impl std::fmt::Display) -> CmdError {
    CmdError::Verification(e.to_string())
}

/// `paychan audit`: verify a ledger, trusting nobody who serves it.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Exit codes: 0 everything holds; 1 a verification failure (the first one is named, \
                  or a split view between two sources); 2 a usage or I/O error.\n\
                  The chain must be pinned with --chain-id or --genesis: a ledger made up from scratch \
                  verifies under its own genesis, so an unpinned audit proves nothing about the chain \
                  you mean. --any-chain audits a ledger's own consistency and prints its chain id."
)]
pub struct AuditCli {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    args: AuditArgs,
}

/// Sources and pins of an audit.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// A ledger export file (repeatable).
    #[arg(long)]
    file: Vec<PathBuf>,
    /// A node over the p2p ledger protocol: `/ip4/.../tcp/PORT/p2p/PEERID` (repeatable).
    #[arg(long)]
    peer: Vec<String>,
    /// A node's public endpoints: `http://host:port` (repeatable).
    #[arg(long)]
    url: Vec<String>,
    /// A signed checkpoint note (C2SP text, as a witness or another node received it) to hold
    /// against every verified source: a note of the chain that the verified log contradicts is
    /// a split view (repeatable).
    #[arg(long)]
    note: Vec<PathBuf>,
    #[command(flatten)]
    pin: PinArgs,
    /// Keeps the last checkpoint this auditor accepted; the next audit must be consistent
    /// with it. Written (atomically) after a clean audit only.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print every account and channel at the verified height, with credit lines and debts.
    #[arg(long)]
    balances: bool,
    /// Print the credit score of an account (64 hex characters) at the verified height, from
    /// the replayed history alone (PROTOCOL.md, credit: score); repeatable.
    #[arg(long, value_name = "ACCOUNT")]
    score: Vec<String>,
}

/// What the genesis must be.
#[derive(Debug, Args, Clone)]
pub struct PinArgs {
    /// The chain id (64 hex characters) the ledger must have.
    #[arg(long, conflicts_with_all = ["genesis", "any_chain"])]
    chain_id: Option<String>,
    /// The genesis (canonical bytes, a node's genesis.bin) the ledger must have.
    #[arg(long, conflicts_with = "any_chain")]
    genesis: Option<PathBuf>,
    /// Audit whatever chain the source has (its own consistency only); the report names it.
    #[arg(long)]
    any_chain: bool,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that a newer checkpoint note extends an older one, with a consistency proof from
    /// a node.
    Consistency {
        /// The older checkpoint note.
        old: PathBuf,
        /// The newer checkpoint note.
        new: PathBuf,
        /// A node's public endpoints.
        #[arg(long, conflicts_with = "peer", required_unless_present = "peer")]
        url: Option<String>,
        /// A node over the p2p ledger protocol.
        #[arg(long)]
        peer: Option<String>,
        #[command(flatten)]
        pin: PinArgs,
        /// The log's verifier key, instead of a genesis.
        #[arg(long, conflicts_with_all = ["chain_id", "genesis", "any_chain"])]
        log_key: Option<String>,
    },
    /// Write an offline inclusion proof (C2SP tlog-proof) of a transaction under the newest
    /// witnessed checkpoint that covers it, from the node of --data-dir (running or stopped).
    Prove {
        /// The transaction id (hex).
        #[arg(long)]
        tx: String,
        /// The proof file to write.
        #[arg(long)]
        out: PathBuf,
        /// Also write the entry (the transaction's canonical bytes) here.
        #[arg(long)]
        entry_out: Option<PathBuf>,
    },
    /// Check an offline inclusion proof with no node: the log signature, at least --quorum
    /// cosignatures of distinct given witnesses, and the entry's inclusion.
    VerifyProof {
        /// The proof file.
        file: PathBuf,
        /// The entry (the transaction's bytes).
        #[arg(long)]
        entry: PathBuf,
        /// The log's verifier key (`paychan ledger keys`).
        #[arg(long)]
        log_key: String,
        /// A witness's cosignature verifier key (repeatable).
        #[arg(long)]
        witness: Vec<String>,
        /// Valid cosignatures needed (default: every --witness given).
        #[arg(long)]
        quorum: Option<usize>,
    },
}

/// Runs `paychan audit ...`; prints its report and returns the exit code.
pub fn run_audit(dir: &DataDir, json_out: bool, cli: AuditCli) -> i32 {
    let result = match cli.command {
        None => audit(json_out, cli.args),
        Some(AuditCommand::Consistency {
            old,
            new,
            url,
            peer,
            pin,
            log_key,
        }) => consistency(json_out, &old, &new, url, peer, &pin, log_key),
        Some(AuditCommand::Prove { tx, out, entry_out }) => {
            prove(dir, json_out, &tx, &out, entry_out.as_deref())
        }
        Some(AuditCommand::VerifyProof {
            file,
            entry,
            log_key,
            witness,
            quorum,
        }) => verify_proof(json_out, &file, &entry, &log_key, &witness, quorum),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            if json_out && !matches!(e, CmdError::SplitView(_)) {
                let kind = if e.exit_code() == 1 {
                    "verification"
                } else {
                    "usage"
                };
                println!("{}", json!({"error": {"code": kind, "message": e.to_string()}}));
            }
            eprintln!("paychan audit: {e}");
            e.exit_code()
        }
    }
}

/// Replays a store's blocks through the auditor (the node's own rules, conservation after
/// every block) and returns the state at its tip.
pub fn replay_store(genesis: &Genesis, store: &dyn Store) -> anyhow::Result<LedgerState> {
    let mut auditor = Auditor::new(genesis, Pin::ChainId(genesis.chain_id()))
        .map_err(|e| anyhow!("invalid genesis: {e}"))?;
    let tip = store.tip()?;
    let mut h = 1;
    while h <= tip {
        let blocks = store.blocks(h, PAGE)?;
        if blocks.is_empty() {
            break;
        }
        for b in &blocks {
            auditor
                .push_block(b)
                .map_err(|e| anyhow!("stored block {} does not verify: {e}", b.header.height))?;
        }
        h += blocks.len() as u64;
    }
    Ok(auditor.state().clone())
}

fn witnessed(genesis: &Genesis) -> impl Fn(&SignedCheckpoint) -> bool + '_ {
    move |c| verify_checkpoint(genesis, c).is_ok_and(|s| s.witnessed)
}

/// Writes `bytes` to `path` atomically (a temporary file next to it, synced, then renamed).
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut w = BufWriter::new(file);
    write(&mut w).with_context(|| format!("write {}", tmp.display()))?;
    let file = w
        .into_inner()
        .map_err(|e| anyhow!("write {}: {}", tmp.display(), e.error()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// `paychan ledger export`.
pub fn export(dir: &DataDir, json_out: bool, out: &Path, to: Option<u64>) -> anyhow::Result<()> {
    let mut src = ledger_source::open_data_dir(dir)?;
    let genesis = src.genesis()?;
    let mut figures = (0u64, 0u64, 0u64);
    write_atomic(out, |w| {
        let mut writer = ExportWriter::new(w, &genesis)?;
        let mut sink = |item: Item| -> anyhow::Result<()> {
            match item {
                Item::Block(b) => {
                    writer.write_block(&b)?;
                    figures.0 += 1;
                    figures.2 = b.header.height;
                }
                Item::Checkpoint(c) => {
                    writer.write_checkpoint(&c)?;
                    figures.1 += 1;
                }
            }
            Ok(())
        };
        walk(src.as_mut(), to, &witnessed(&genesis), &mut sink).map_err(std::io::Error::other)?;
        writer.finish()?;
        Ok(())
    })?;
    let v = json!({"file": out.display().to_string(), "source": src.describe(),
                   "chain_id": genesis.chain_id().to_hex(), "blocks": figures.0,
                   "checkpoints": figures.1, "height": figures.2});
    crate::output::output(json_out, v, |v| {
        format!(
            "exported {} blocks and {} checkpoints (to height {}) of chain {} to {}",
            v["blocks"],
            v["checkpoints"],
            v["height"],
            crate::output::s(&v["chain_id"]),
            crate::output::s(&v["file"])
        )
    });
    Ok(())
}

/// `paychan ledger keys`.
pub fn keys(dir: &DataDir, json_out: bool) -> anyhow::Result<()> {
    let genesis = dir.genesis()?;
    let origin = note::origin(&genesis.chain_id());
    let log = note::log_verifier_key(&genesis);
    let witnesses: Vec<String> = genesis
        .witnesses
        .iter()
        .map(|w| note::witness_verifier_key(&genesis, w))
        .collect();
    let v = json!({"origin": origin, "chain_id": genesis.chain_id().to_hex(), "log_key": log,
                   "witness_keys": witnesses, "witness_threshold": genesis.witness_threshold});
    crate::output::output(json_out, v, |v| {
        let mut out = vec![
            format!("origin:    {}", crate::output::s(&v["origin"])),
            format!("log key:   {}", crate::output::s(&v["log_key"])),
        ];
        for w in v["witness_keys"].as_array().into_iter().flatten() {
            out.push(format!("witness:   {}", crate::output::s(w)));
        }
        out.push(format!("threshold: {}", v["witness_threshold"]));
        out.join("\n")
    });
    Ok(())
}

/// The pin an audit uses, or a usage error without one.
enum PinChoice {
    Pinned(Pin),
    Any,
}

fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    Genesis::from_bytes(&bytes).map_err(|e| anyhow!("{} is not a genesis: {e}", path.display()))
}

fn pin_of(p: &PinArgs) -> anyhow::Result<PinChoice> {
    if let Some(hex) = &p.chain_id {
        let id = Hash32::from_hex(hex).map_err(|_| anyhow!("--chain-id is 64 hex characters"))?;
        return Ok(PinChoice::Pinned(Pin::ChainId(id)));
    }
    if let Some(path) = &p.genesis {
        return Ok(PinChoice::Pinned(Pin::Genesis(Box::new(read_genesis(path)?))));
    }
    if p.any_chain {
        return Ok(PinChoice::Any);
    }
    bail!("pin the chain with --chain-id HEX or --genesis FILE (or pass --any-chain to check only a ledger's own consistency)")
}

impl PinChoice {
    fn for_genesis(&self, genesis: &Genesis) -> Pin {
        match self {
            PinChoice::Pinned(p) => p.clone(),
            PinChoice::Any => Pin::ChainId(genesis.chain_id()),
        }
    }
}

/// The saved state of an auditor: the last checkpoint it accepted, as its note.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedState {
    /// Chain id (hex).
    pub chain_id: String,
    /// Height of the accepted checkpoint.
    pub height: u64,
    /// The checkpoint note.
    pub note: String,
}

impl SavedState {
    /// The state for an accepted checkpoint.
    pub fn new(genesis: &Genesis, cp: &SignedCheckpoint) -> SavedState {
        SavedState {
            chain_id: genesis.chain_id().to_hex(),
            height: cp.checkpoint.height,
            note: cp.to_note(&genesis.sequencer),
        }
    }

    /// Reads a state file; `None` when it does not exist yet.
    pub fn load(path: &Path) -> anyhow::Result<Option<SavedState>> {
        match std::fs::read(path) {
            Ok(b) => {
                Ok(Some(serde_json::from_slice(&b).with_context(|| {
                    format!("{} is not an audit state", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!("read {}: {e}", path.display())),
        }
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
        write_atomic(path, |w| w.write_all(&text))
    }

    /// The accepted checkpoint, its signatures verified for `genesis` (a state of another chain
    /// or a forged note is a verification failure).
    pub fn checkpoint(&self, genesis: &Genesis) -> Result<SignedCheckpoint, AuditError> {
        let bad = |why: String| AuditError::Accepted {
            height: self.height,
            check: paychan_audit::Check::Rule(why),
        };
        if self.chain_id != genesis.chain_id().to_hex() {
            return Err(bad(format!(
                "the saved state is of chain {}, not {}",
                self.chain_id,
                genesis.chain_id().to_hex()
            )));
        }
        let cp =
            note::parse_checkpoint_note(&self.note, genesis).map_err(|e| bad(format!("saved note: {e}")))?;
        if cp.checkpoint.height != self.height {
            return Err(bad("the saved height is not the note's".into()));
        }
        Ok(cp)
    }
}

/// Checks, after an audit, that `accepted` holds against what `auditor` verified. With
/// [`Auditor::with_accepted`] this is done during the replay at its height; an accepted
/// checkpoint beyond the verified height fails here.
pub fn check_saved(auditor: &Auditor, accepted: &SignedCheckpoint) -> Result<(), AuditError> {
    match auditor.report().accepted_checked {
        Some(true) => Ok(()),
        _ => auditor.check_accepted(&accepted.checkpoint),
    }
}

/// What one source's audit gives.
struct Audited {
    source: String,
    genesis: Genesis,
    auditor: Auditor,
    /// The newest checkpoint compared with the replay.
    last_matched: Option<SignedCheckpoint>,
    /// The newest witnessed checkpoint compared with the replay.
    last_witnessed: Option<SignedCheckpoint>,
    /// Block hashes at the heights asked for (other sources' newest checkpoints).
    watched: HashMap<u64, Hash32>,
}

/// Feeds one object to the auditor, keeping what the command needs.
struct Run {
    auditor: Auditor,
    last_matched: Option<SignedCheckpoint>,
    last_witnessed: Option<SignedCheckpoint>,
    watch: Vec<u64>,
    watched: HashMap<u64, Hash32>,
    bar: indicatif::ProgressBar,
}

impl Run {
    fn new(auditor: Auditor, watch: Vec<u64>, len: Option<u64>, unit: &str) -> Run {
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}");
        bar.set_style(
            indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Run {
            auditor,
            last_matched: None,
            last_witnessed: None,
            watch,
            watched: HashMap::new(),
            bar,
        }
    }

    fn push(&mut self, item: &Item) -> Result<(), AuditError> {
        match item {
            Item::Block(b) => {
                self.auditor.push_block(b)?;
                let h = b.header.height;
                if self.watch.contains(&h) {
                    self.watched.insert(h, b.header.hash());
                }
            }
            Item::Checkpoint(c) => {
                let matched = c.checkpoint.height == self.auditor.height();
                let status = self.auditor.push_checkpoint(c)?;
                if matched {
                    self.last_matched = Some((**c).clone());
                    if status.witnessed {
                        self.last_witnessed = Some((**c).clone());
                    }
                }
            }
        }
        Ok(())
    }

    fn done(self, source: String, genesis: Genesis) -> Audited {
        self.bar.finish_and_clear();
        Audited {
            source,
            genesis,
            auditor: self.auditor,
            last_matched: self.last_matched,
            last_witnessed: self.last_witnessed,
            watched: self.watched,
        }
    }
}

/// A reader that advances a progress bar by the bytes read.
struct Counting<'a, R> {
    inner: R,
    bar: &'a indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// What a failed source audit says: the failure and how far it got.
fn failed(source: &str, error: AuditError, record_offset: Option<u64>, report: Option<Report>) -> CmdError {
    let f = AuditFailure {
        error,
        record_offset,
        report,
    };
    CmdError::Verification(format!("{source}: {f}"))
}

fn audit_file(
    path: &Path,
    pin: &PinChoice,
    state: Option<&SavedState>,
    watch: Vec<u64>,
) -> CmdResult<Audited> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let len = file.metadata().ok().map(|m| m.len());
    let name = path.display().to_string();
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut reader = ExportReader::new(BufReader::new(Counting {
        inner: file,
        bar: &bar,
    }));
    let genesis = match reader.next() {
        Some(Ok((_, Record::Genesis(g)))) => *g,
        Some(Err(e)) => return Err(failed(&name, e, None, None)),
        Some(Ok(_)) | None => return Err(verification(format!("{name}: the first record is not a genesis"))),
    };
    let (auditor, accepted) = start(&name, &genesis, pin, state)?;
    let mut run = Run::new(auditor, watch, None, "");
    run.bar = indicatif::ProgressBar::hidden();
    for item in reader.by_ref() {
        let (offset, record) = match item {
            Ok(r) => r,
            Err(e) => return Err(failed(&name, e, None, Some(run.auditor.report()))),
        };
        let item = match record {
            Record::Block(b) => Item::Block(b),
            Record::Checkpoint(c) => Item::Checkpoint(c),
            Record::End(_) => continue,
            Record::Genesis(_) => return Err(verification(format!("{name}: a second genesis record"))),
        };
        if let Err(e) = run.push(&item) {
            return Err(failed(&name, e, Some(offset), Some(run.auditor.report())));
        }
    }
    bar.finish_and_clear();
    finish(run, name, genesis, accepted)
}

fn start(
    name: &str,
    genesis: &Genesis,
    pin: &PinChoice,
    state: Option<&SavedState>,
) -> CmdResult<(Auditor, Option<SignedCheckpoint>)> {
    let mut auditor =
        Auditor::new(genesis, pin.for_genesis(genesis)).map_err(|e| failed(name, e, None, None))?;
    let mut accepted = None;
    if let Some(s) = state {
        let cp = s.checkpoint(genesis).map_err(|e| failed(name, e, None, None))?;
        auditor = auditor
            .with_accepted(&cp)
            .map_err(|e| failed(name, e, None, None))?;
        accepted = Some(cp);
    }
    Ok((auditor, accepted))
}

fn finish(
    run: Run,
    name: String,
    genesis: Genesis,
    accepted: Option<SignedCheckpoint>,
) -> CmdResult<Audited> {
    if let Some(cp) = &accepted {
        check_saved(&run.auditor, cp).map_err(|e| failed(&name, e, None, Some(run.auditor.report())))?;
    }
    Ok(run.done(name, genesis))
}

fn audit_source(
    mut src: Box<dyn Source>,
    pin: &PinChoice,
    state: Option<&SavedState>,
    watch: Vec<u64>,
) -> CmdResult<Audited> {
    let name = src.describe();
    let genesis = src.genesis()?;
    let (auditor, accepted) = start(&name, &genesis, pin, state)?;
    let tip = src.tip().ok().flatten();
    let mut run = Run::new(auditor, watch, tip, "blocks");
    let mut failure: Option<AuditError> = None;
    let fetched = walk(src.as_mut(), None, &witnessed(&genesis), &mut |item| {
        if let Item::Block(_) = item {
            run.bar.inc(1);
        }
        run.push(&item).map_err(|e| {
            failure = Some(e);
            anyhow!("stopped at the first failure")
        })
    });
    if let Some(e) = failure {
        return Err(failed(&name, e, None, Some(run.auditor.report())));
    }
    fetched?;
    finish(run, name, genesis, accepted)
}

/// Two sources' newest checkpoints disagree: a split view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitView {
    /// Why they cannot both be true.
    pub reason: String,
}

/// Compares the newest checkpoints `older` and `newer` (by height) that two sources showed,
/// both validly signed and each matched with its own source's replay. `newer_proof` gives a
/// consistency proof from the newer source's verified log; `newer_block_at` the block hash the
/// newer source's replay had at `older`'s height, when it was recorded.
pub fn split_view(
    older: &Checkpoint,
    newer: &Checkpoint,
    newer_proof: impl FnOnce(u64, u64) -> anyhow::Result<Vec<Hash32>>,
    newer_block_at: Option<Hash32>,
) -> Option<SplitView> {
    let split = |reason: String| Some(SplitView { reason });
    if older.chain_id != newer.chain_id {
        return None;
    }
    if older.height == newer.height && older != newer {
        return split(format!(
            "two checkpoints at height {} differ (block hash {} / {}, log size {} / {})",
            older.height,
            older.block_hash.to_hex(),
            newer.block_hash.to_hex(),
            older.log_size,
            newer.log_size
        ));
    }
    if older.log_size == newer.log_size && older.log_root != newer.log_root {
        return split(format!(
            "two checkpoints of log size {} have different roots",
            older.log_size
        ));
    }
    if let Some(h) = newer_block_at {
        if h != older.block_hash {
            return split(format!(
                "block {} has hash {} in one view and {} in the other",
                older.height,
                older.block_hash.to_hex(),
                h.to_hex()
            ));
        }
    }
    if older.log_size > newer.log_size {
        return split(format!(
            "the checkpoint at height {} has a larger log ({}) than the one at height {} ({})",
            older.height, older.log_size, newer.height, newer.log_size
        ));
    }
    match newer_proof(older.log_size, newer.log_size) {
        Ok(path) => match verify_checkpoint_consistency(older, newer, &path) {
            Ok(()) => None,
            Err(e) => split(format!(
                "the checkpoint at height {} is not consistent with the one at height {}: {e}",
                older.height, newer.height
            )),
        },
        Err(e) => split(format!(
            "no consistency proof from size {} to {}: {e}",
            older.log_size, newer.log_size
        )),
    }
}

/// A view's name and the checkpoint note it showed.
type SeenNote = (String, String);

/// What a checkpoint note says against one verified source.
#[derive(Debug, PartialEq, Eq)]
enum NoteCheck {
    /// The source's verified log has this note's block and root.
    Holds,
    /// The note is past what the source verified: nothing to compare.
    Ahead,
    /// The source's verified log contradicts the note.
    Split(SplitView),
}

/// Holds a (validly signed) checkpoint note against what a source verified: the block hash
/// at the note's height and the log root at its size must be the verified ones.
fn note_against(cp: &Checkpoint, r: &Audited) -> NoteCheck {
    let state = r.auditor.state();
    if cp.chain_id != state.chain_id() {
        return NoteCheck::Split(SplitView {
            reason: format!(
                "the note is of chain {}, the source of {}",
                cp.chain_id.to_hex(),
                state.chain_id().to_hex()
            ),
        });
    }
    if cp.height > state.height() || cp.log_size > state.log_size() {
        return NoteCheck::Ahead;
    }
    if let Some(h) = r.watched.get(&cp.height) {
        if *h != cp.block_hash {
            return NoteCheck::Split(SplitView {
                reason: format!(
                    "block {} has hash {} in the note and {} in the verified log",
                    cp.height,
                    cp.block_hash.to_hex(),
                    h.to_hex()
                ),
            });
        }
    }
    match state.log().root_at(cp.log_size) {
        Ok(root) if root == cp.log_root => NoteCheck::Holds,
        Ok(root) => NoteCheck::Split(SplitView {
            reason: format!(
                "the note gives log size {} the root {} and the verified log {}",
                cp.log_size,
                cp.log_root.to_hex(),
                root.to_hex()
            ),
        }),
        Err(e) => NoteCheck::Split(SplitView {
            reason: format!(
                "the note's log size {} is not in the verified log: {e}",
                cp.log_size
            ),
        }),
    }
}

fn audit(json_out: bool, args: AuditArgs) -> CmdResult<()> {
    let pin = pin_of(&args.pin)?;
    let count = args.file.len() + args.peer.len() + args.url.len();
    if count == 0 {
        return Err(CmdError::Usage(anyhow!(
            "give a source: --file FILE, --peer MULTIADDR or --url URL"
        )));
    }
    let state = match &args.state {
        Some(p) => SavedState::load(p)?,
        None => None,
    };
    // The notes are read first: their heights are where each source's block hash is kept.
    let mut notes: Vec<(String, String, u64)> = Vec::new();
    for path in &args.note {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the note {}", path.display()))
            .map_err(CmdError::Usage)?;
        let body = SignedNote::parse(&text)
            .and_then(|n| note::parse_checkpoint_body(&n.body))
            .map_err(|e| verification(format!("the note {}: {e}", path.display())))?;
        notes.push((path.display().to_string(), text, body.height));
    }
    let note_heights: Vec<u64> = notes.iter().map(|n| n.2).collect();
    let mut results: Vec<Audited> = Vec::new();
    let watch = |results: &[Audited]| -> Vec<u64> {
        results
            .iter()
            .filter_map(|r| r.last_matched.as_ref().map(|c| c.checkpoint.height))
            .chain(note_heights.iter().copied())
            .collect()
    };
    for f in &args.file {
        let w = watch(&results);
        results.push(audit_file(f, &pin, state.as_ref(), w)?);
    }
    for p in &args.peer {
        let src = Box::new(PeerSource::connect(p)?);
        let w = watch(&results);
        results.push(audit_source(src, &pin, state.as_ref(), w)?);
    }
    for u in &args.url {
        let w = watch(&results);
        results.push(audit_source(
            Box::new(HttpSource::public(u)),
            &pin,
            state.as_ref(),
            w,
        )?);
    }
    // Split views: every pair of sources' newest matched checkpoints, then every note against
    // every source. Each is (view, its note) for both sides, and why.
    let seq = results[0].genesis.sequencer;
    let newest_note = |r: &Audited| {
        r.last_matched
            .as_ref()
            .map(|c| c.to_note(&seq))
            .unwrap_or_default()
    };
    let mut split: Option<(SeenNote, SeenNote, SplitView)> = None;
    'pairs: for i in 0..results.len() {
        for j in i + 1..results.len() {
            let (a, b) = (&results[i], &results[j]);
            if a.genesis.chain_id() != b.genesis.chain_id() {
                return Err(verification(format!(
                    "{} is chain {} and {} is chain {}",
                    a.source,
                    a.genesis.chain_id().to_hex(),
                    b.source,
                    b.genesis.chain_id().to_hex()
                )));
            }
            let (Some(ca), Some(cb)) = (&a.last_matched, &b.last_matched) else {
                continue;
            };
            let (older, newer, o, n) = if ca.checkpoint.height <= cb.checkpoint.height {
                (ca, cb, i, j)
            } else {
                (cb, ca, j, i)
            };
            let newer_run = &results[n];
            let block_at = newer_run.watched.get(&older.checkpoint.height).copied();
            let proof = |first, second| -> anyhow::Result<Vec<Hash32>> {
                Ok(newer_run.auditor.state().consistency_proof(first, second)?)
            };
            if let Some(s) = split_view(&older.checkpoint, &newer.checkpoint, proof, block_at) {
                let (a, b) = (&results[o], &results[n]);
                split = Some((
                    (a.source.clone(), newest_note(a)),
                    (b.source.clone(), newest_note(b)),
                    s,
                ));
                break 'pairs;
            }
        }
    }
    let mut notes_held = Vec::new();
    if split.is_none() {
        'notes: for (name, text, _) in &notes {
            let cp = note::parse_checkpoint_note(text, &results[0].genesis)
                .map_err(|e| verification(format!("the note {name}: {e}")))?;
            for r in &results {
                match note_against(&cp.checkpoint, r) {
                    NoteCheck::Split(s) => {
                        split = Some((
                            (r.source.clone(), newest_note(r)),
                            (name.clone(), text.clone()),
                            s,
                        ));
                        break 'notes;
                    }
                    NoteCheck::Ahead => notes_held.push(format!(
                        "{name}: height {} is past what {} verified ({}): not compared",
                        cp.checkpoint.height,
                        r.source,
                        r.auditor.height()
                    )),
                    NoteCheck::Holds => notes_held.push(format!(
                        "{name}: height {} (log size {}) agrees with {}",
                        cp.checkpoint.height, cp.checkpoint.log_size, r.source
                    )),
                }
            }
        }
    }
    let first = &results[0];
    let reports: Vec<serde_json::Value> = results
        .iter()
        .map(|r| json!({"source": r.source, "report": r.auditor.report()}))
        .collect();
    if let Some(((source_a, note_a), (source_b, note_b), s)) = &split {
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"error": {"code": "split_view", "message": s.reason,
                    "done": {"sources": reports, "notes": [{"source": source_a, "note": note_a}, {"source": source_b, "note": note_b}]}}}))
                .unwrap_or_default()
            );
        } else {
            println!("SPLIT VIEW: {}", s.reason);
            println!("\n{source_a}:\n{note_a}");
            println!("{source_b}:\n{note_b}");
        }
        return Err(CmdError::SplitView(format!(
            "between {source_a} and {source_b}: {}",
            s.reason
        )));
    }
    // A clean audit: save the newest witnessed checkpoint accepted (or the newest matched one).
    let mut saved = None;
    if let Some(path) = &args.state {
        let best = results
            .iter()
            .filter_map(|r| r.last_witnessed.as_ref().or(r.last_matched.as_ref()))
            .max_by_key(|c| c.checkpoint.height);
        if let Some(cp) = best {
            let s = SavedState::new(&first.genesis, cp);
            s.save(path)?;
            saved = Some(s.height);
        }
    }
    let scores = args
        .score
        .iter()
        .map(|a| {
            PublicKey::from_hex(a)
                .map(|k| first.auditor.score(&k))
                .map_err(|_| anyhow!("--score {a}: an account is 64 hex characters").into())
        })
        .collect::<CmdResult<Vec<_>>>()?;
    if json_out {
        let mut v = json!({"ok": true, "chain_id": first.genesis.chain_id().to_hex(), "sources": reports,
                           "notes": notes_held, "state_saved_at": saved});
        if args.balances {
            v["balances"] = serde_json::to_value(first.auditor.balances()).map_err(anyhow::Error::from)?;
        }
        if !scores.is_empty() {
            v["scores"] = serde_json::to_value(&scores).map_err(anyhow::Error::from)?;
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        crate::output::set_unit(&first.genesis.unit);
        for r in &results {
            println!("{}", table(&r.source, &r.auditor.report()));
        }
        if results.len() > 1 {
            println!("no split view: the sources' checkpoints are consistent");
        }
        for line in &notes_held {
            println!("note {line}");
        }
        if let Some(h) = saved {
            println!("state: accepted the checkpoint at height {h}");
        }
        if args.balances {
            println!("{}", balances_table(&first.auditor));
        }
        for sc in &scores {
            let v = serde_json::to_value(sc).unwrap_or_default();
            println!("{}", crate::credit_cmd::score_text(&v));
        }
    }
    Ok(())
}

/// The readable report of one source.
fn table(source: &str, r: &Report) -> String {
    let k = &r.by_kind;
    let c = &r.channels;
    let mut out = vec![
        format!("source:       {source}"),
        format!("chain id:     {}  ({})", r.chain_id, r.network),
        format!(
            "verified to:  height {} (log size {}, time {})",
            r.height,
            r.log_size,
            time_text(r.time_ms)
        ),
        format!("blocks:       {}", r.blocks),
        format!(
            "transactions: {} (transfer {}, open {}, deposit {}, coop_close {}, unilateral_close {}, update {}, settle {}, credit_grant {}, repay {})",
            r.transactions, k.transfer, k.open, k.deposit, k.coop_close, k.unilateral_close, k.update, k.settle,
            k.credit_grant, k.repay
        ),
        format!(
            "channels:     {} opened, {} closed, {} close started, {} settled, {} live",
            c.opened, c.closed, c.close_started, c.settled, c.live
        ),
        format!("locked:       {}", amount(c.locked)),
        format!(
            "supply:       {} (conserved after every block), {} accounts",
            amount(r.supply),
            r.accounts
        ),
        format!("checkpoints:  {} verified, {} matched with the blocks", r.checkpoints, r.checkpoints_matched),
    ];
    match &r.newest_witnessed {
        Some(w) if r.reaches_newest_witnessed => out.push(format!(
            "witnessed:    newest at height {} (log size {}, {} cosigners), reached",
            w.height, w.log_size, w.cosigners
        )),
        Some(w) => out.push(format!(
            "witnessed:    newest at height {} (log size {}, {} cosigners); BEHIND it by {} blocks",
            w.height, w.log_size, w.cosigners, r.behind_newest_witnessed
        )),
        None => out.push("witnessed:    no witnessed checkpoint".into()),
    }
    if let Some(ok) = r.accepted_checked {
        out.push(format!(
            "state:        accepted checkpoint {}",
            if ok {
                "matched"
            } else {
                "checked against the verified log"
            }
        ));
    }
    out.push(format!(
        "speed:        {:.0} tx/s ({:.1} ms verifying)",
        r.txs_per_s, r.verify_ms
    ));
    out.push(format!("summary:      {}", r.summary()));
    out.join("\n")
}

/// An amount with the chain's unit: `1,500 cr`.
fn amount(n: u64) -> String {
    format!("{} {}", grouped(n), unit_symbol())
}

fn balances_table(a: &Auditor) -> String {
    let b = a.balances();
    let mut out = vec![format!("balances at height {}", b.height)];
    out.push(format!("{:<64}  {:>20}  {:>8}", "ACCOUNT", "BALANCE", "NONCE"));
    for r in &b.accounts {
        out.push(format!(
            "{:<64}  {:>20}  {:>8}",
            r.key,
            amount(r.balance),
            r.nonce
        ));
    }
    out.push(format!(
        "{:<64}  {:<8}  {:>14}  {:>14}  PAYOUTS",
        "CHANNEL", "STATUS", "DEPOSIT A", "DEPOSIT B"
    ));
    for c in &b.channels {
        out.push(format!(
            "{:<64}  {:<8}  {:>14}  {:>14}  {}",
            c.channel_id,
            c.status,
            amount(c.deposit_a),
            amount(c.deposit_b),
            c.payouts
                .map(|(a, b)| format!("{} / {}", amount(a), amount(b)))
                .unwrap_or_else(|| "-".into())
        ));
    }
    out.push(format!(
        "{:<64}  {:>14}  {:>14}  {:<20}  {:<20}  CREDITOR -> DEBTOR",
        "CREDIT LINE (CHANNEL)", "LIMIT", "PEAK", "EXPIRES", "DUE"
    ));
    for l in &b.credit_lines {
        out.push(format!(
            "{:<64}  {:>14}  {:>14}  {:<20}  {:<20}  {} -> {}",
            l.channel_id,
            amount(l.limit),
            amount(l.peak),
            time_text(l.expiry_ms),
            time_text(l.due_ms),
            &l.creditor[..16],
            &l.debtor[..16]
        ));
    }
    out.push(format!(
        "{:<64}  {:>14}  {:>14}  {:<11}  {:<20}  CREDITOR -> DEBTOR",
        "DEBT (CHANNEL)", "AMOUNT", "OUTSTANDING", "STATUS", "DUE"
    ));
    for d in &b.debts {
        out.push(format!(
            "{:<64}  {:>14}  {:>14}  {:<11}  {:<20}  {} -> {}",
            d.channel_id,
            amount(d.amount),
            amount(d.outstanding),
            d.status,
            time_text(d.due_ms),
            &d.creditor[..16],
            &d.debtor[..16]
        ));
    }
    out.push(format!(
        "debts: {} outstanding, {} defaulted",
        amount(b.debts_outstanding),
        amount(b.debts_defaulted)
    ));
    out.join("\n")
}

/// A checkpoint note verified either for a genesis or with a log key alone.
fn read_note(path: &Path, genesis: Option<&Genesis>, log_key: Option<&VerifierKey>) -> CmdResult<Checkpoint> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let name = path.display();
    if let Some(g) = genesis {
        return note::parse_checkpoint_note(&text, g)
            .map(|c| c.checkpoint)
            .map_err(|e| verification(format!("{name}: {e}")));
    }
    let key = log_key.ok_or_else(|| anyhow!("give --genesis, --chain-id or --log-key"))?;
    let n = SignedNote::parse(&text).map_err(|e| verification(format!("{name}: {e}")))?;
    let cp = note::parse_checkpoint_body(&n.body).map_err(|e| verification(format!("{name}: {e}")))?;
    if cp.origin() != key.name {
        return Err(verification(format!(
            "{name}: origin {} is not the log key's name {}",
            cp.origin(),
            key.name
        )));
    }
    n.verify(key)
        .map_err(|e| verification(format!("{name}: log signature: {e}")))?;
    Ok(cp)
}

fn parse_key(text: &str, key_type: u8, what: &str) -> anyhow::Result<VerifierKey> {
    let k = note::parse_verifier_key(text.trim()).map_err(|e| anyhow!("{what}: {e}"))?;
    if k.key_type != key_type {
        bail!(
            "{what}: a key of type {key_type:#04x} is needed, this one is {:#04x}",
            k.key_type
        );
    }
    Ok(k)
}

fn consistency(
    json_out: bool,
    old: &Path,
    new: &Path,
    url: Option<String>,
    peer: Option<String>,
    pin: &PinArgs,
    log_key: Option<String>,
) -> CmdResult<()> {
    let mut src: Box<dyn Source> = match (url, peer) {
        (Some(u), _) => Box::new(HttpSource::public(&u)),
        (None, Some(p)) => Box::new(PeerSource::connect(&p)?),
        (None, None) => return Err(CmdError::Usage(anyhow!("give --url or --peer"))),
    };
    let (genesis, key) = match log_key {
        Some(k) => (None, Some(parse_key(&k, KEY_TYPE_ED25519, "--log-key")?)),
        None => {
            let choice = pin_of(pin)?;
            let g = match &choice {
                PinChoice::Pinned(Pin::Genesis(g)) => (**g).clone(),
                PinChoice::Pinned(Pin::ChainId(id)) => {
                    let g = src.genesis()?;
                    if g.chain_id() != *id {
                        return Err(verification(format!(
                            "{} serves chain {}, not the pinned {}",
                            src.describe(),
                            g.chain_id().to_hex(),
                            id.to_hex()
                        )));
                    }
                    g
                }
                PinChoice::Any => src.genesis()?,
            };
            (Some(g), None)
        }
    };
    let older = read_note(old, genesis.as_ref(), key.as_ref())?;
    let newer = read_note(new, genesis.as_ref(), key.as_ref())?;
    if older.chain_id != newer.chain_id {
        return Err(verification("the two notes are of different chains"));
    }
    if newer.log_size < older.log_size || newer.height < older.height {
        return Err(verification(format!(
            "the newer note (height {}, size {}) is behind the older one (height {}, size {})",
            newer.height, newer.log_size, older.height, older.log_size
        )));
    }
    let path = if older.log_size == 0 || older.log_size == newer.log_size {
        Vec::new()
    } else {
        src.consistency(older.log_size, newer.log_size)?
    };
    // Both notes verified under the log key above: two validly signed checkpoints of one log
    // that do not extend each other are a split view, whoever asks.
    verify_checkpoint_consistency(&older, &newer, &path).map_err(|e| {
        verification(format!(
            "split view: the checkpoint at height {} (size {}) is not extended by the one at height {} (size {}): {e}",
            older.height, older.log_size, newer.height, newer.log_size
        ))
    })?;
    let v = json!({"ok": true, "older": {"height": older.height, "log_size": older.log_size},
                   "newer": {"height": newer.height, "log_size": newer.log_size}, "proof_hashes": path.len()});
    crate::output::output(json_out, v, |v| {
        format!(
            "consistent: the checkpoint at height {} (log size {}) extends the one at height {} (log size {})",
            v["newer"]["height"], v["newer"]["log_size"], v["older"]["height"], v["older"]["log_size"]
        )
    });
    Ok(())
}

/// Finds the transaction at leaf `index` by walking the blocks.
fn entry_at(src: &mut dyn Source, index: u64) -> anyhow::Result<Tx> {
    let mut from = 1;
    let mut before = 0u64;
    loop {
        let blocks = src.blocks(from, PAGE)?;
        if blocks.is_empty() {
            bail!("no block holds leaf {index}");
        }
        for b in &blocks {
            let size = b.header.log_size;
            if index < size {
                let i = (index - before) as usize;
                return b
                    .txs
                    .get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("block {} does not hold leaf {index}", b.header.height));
            }
            before = size;
            from = b.header.height + 1;
        }
    }
}

fn prove(dir: &DataDir, json_out: bool, tx: &str, out: &Path, entry_out: Option<&Path>) -> CmdResult<()> {
    let tx_id = Hash32::from_hex(tx).map_err(|_| anyhow!("--tx is 64 hex characters"))?;
    let mut src = ledger_source::open_data_dir(dir)?;
    let genesis = src.genesis()?;
    // The newest witnessed checkpoint.
    let is_witnessed = witnessed(&genesis);
    let mut best = None;
    let mut from = 1;
    loop {
        let page = src.checkpoints(from, PAGE)?.unwrap_or_default();
        let Some(end) = page.last().map(|c| c.checkpoint.height) else {
            break;
        };
        if let Some(c) = page.into_iter().rev().find(|c| is_witnessed(c)) {
            best = Some(c);
        }
        from = end + 1;
    }
    let cp = best.ok_or_else(|| anyhow!("{} has no witnessed checkpoint yet", src.describe()))?;
    let c = cp.checkpoint;
    let (index, path) = src.inclusion(&tx_id, c.log_size).map_err(|e| {
        anyhow!(
            "transaction {tx} is not in the newest witnessed checkpoint (height {}, size {}): {e:#}",
            c.height,
            c.log_size
        )
    })?;
    let entry = entry_at(src.as_mut(), index)?;
    if entry.id() != tx_id {
        return Err(verification(format!(
            "leaf {index} is transaction {}, not {tx}",
            entry.id().to_hex()
        )));
    }
    verify_inclusion(&entry.leaf_hash(), index, c.log_size, &path, &c.log_root)
        .map_err(|e| verification(format!("the node's inclusion proof does not verify: {e}")))?;
    let proof = TlogProof {
        index,
        path,
        note: cp.to_note(&genesis.sequencer),
    };
    let text = proof.to_text();
    write_atomic(out, |w| w.write_all(text.as_bytes()))?;
    if let Some(p) = entry_out {
        let bytes = entry.bytes();
        write_atomic(p, |w| w.write_all(&bytes))?;
    }
    let v = json!({"tx": tx, "index": index, "height": c.height, "log_size": c.log_size,
                   "cosigners": cp.cosignatures.len(), "file": out.display().to_string()});
    crate::output::output(json_out, v, |v| {
        format!(
            "wrote the inclusion proof of {} (leaf {}) under the witnessed checkpoint at height {} (log size {}, {} cosignatures) to {}",
            crate::output::s(&v["tx"]), v["index"], v["height"], v["log_size"], v["cosigners"], crate::output::s(&v["file"])
        )
    });
    Ok(())
}

/// Checks an offline proof: the log signature, at least `quorum` valid cosignatures of
/// distinct keys among `witnesses` (other signers ignored, a bad signature of a given key
/// refused), and the entry's inclusion under the note's root. Returns the checkpoint and the
/// number of cosigners.
pub fn check_proof(
    proof_text: &str,
    entry: &[u8],
    log_key: &VerifierKey,
    witnesses: &[VerifierKey],
    quorum: usize,
) -> Result<(Checkpoint, u64, usize), String> {
    let proof = TlogProof::parse(proof_text).map_err(|e| format!("proof file: {e}"))?;
    let n = SignedNote::parse(&proof.note).map_err(|e| format!("note: {e}"))?;
    let cp = note::parse_checkpoint_body(&n.body).map_err(|e| format!("note: {e}"))?;
    if cp.origin() != log_key.name {
        return Err(format!(
            "note origin {} is not the log key's name {}",
            cp.origin(),
            log_key.name
        ));
    }
    n.verify(log_key).map_err(|e| format!("log signature: {e}"))?;
    let mut seen: Vec<&VerifierKey> = Vec::new();
    let mut cosigners = 0;
    for w in witnesses {
        if seen.iter().any(|s| s.key == w.key) {
            continue;
        }
        seen.push(w);
        match n.verify(w) {
            Ok(_) => cosigners += 1,
            Err(paychan_protocol::NoteError::MissingLogSignature) => {}
            Err(e) => return Err(format!("cosignature of {}: {e}", w.name)),
        }
    }
    if cosigners < quorum {
        return Err(format!(
            "{cosigners} valid cosignatures of the given witnesses, {quorum} needed"
        ));
    }
    verify_inclusion(
        &leaf_hash(entry),
        proof.index,
        cp.log_size,
        &proof.path,
        &cp.log_root,
    )
    .map_err(|e| {
        format!(
            "the entry is not at index {} under the note's root: {e}",
            proof.index
        )
    })?;
    Ok((cp, proof.index, cosigners))
}

fn verify_proof(
    json_out: bool,
    file: &Path,
    entry: &Path,
    log_key: &str,
    witness: &[String],
    quorum: Option<usize>,
) -> CmdResult<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let entry = std::fs::read(entry).with_context(|| format!("read {}", entry.display()))?;
    let log_key = parse_key(log_key, KEY_TYPE_ED25519, "--log-key")?;
    let witnesses = witness
        .iter()
        .map(|w| parse_key(w, KEY_TYPE_COSIGNATURE_V1, "--witness"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let quorum = quorum.unwrap_or(witnesses.len());
    if quorum > witnesses.len() {
        return Err(CmdError::Usage(anyhow!(
            "--quorum {quorum} is more than the {} --witness keys given",
            witnesses.len()
        )));
    }
    let (cp, index, cosigners) =
        check_proof(&text, &entry, &log_key, &witnesses, quorum).map_err(verification)?;
    let v = json!({"ok": true, "index": index, "height": cp.height, "log_size": cp.log_size,
                   "cosigners": cosigners, "quorum": quorum});
    crate::output::output(json_out, v, |v| {
        format!(
            "proof holds: the entry is leaf {} of the log of size {} at height {}, signed by the log, {} of {} needed cosignatures",
            v["index"], v["log_size"], v["height"], v["cosigners"], v["quorum"]
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use paychan_ledger::testkit::sample_history;

    use super::*;

    /// An audit of the sample history with an accepted checkpoint from a saved state.
    fn audit_with(
        chain: &paychan_ledger::testkit::TestChain,
        state: &SavedState,
    ) -> Result<Auditor, AuditError> {
        let g = &chain.net.genesis;
        let cp = state.checkpoint(g)?;
        let mut a = Auditor::new(g, Pin::ChainId(g.chain_id()))?.with_accepted(&cp)?;
        for b in &chain.blocks {
            a.push_block(b)?;
        }
        check_saved(&a, &cp)?;
        Ok(a)
    }

    #[test]
    fn saved_state_round_trips_and_holds_on_the_same_history() {
        let chain = sample_history(6, 2);
        let mut replay = LedgerState::from_genesis(&chain.net.genesis).unwrap();
        for b in &chain.blocks[..3] {
            replay.apply_block(b).unwrap();
        }
        let cp = chain.net.signed_checkpoint(replay.checkpoint(), &[0]);
        let state = SavedState::new(&chain.net.genesis, &cp);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.state");
        state.save(&path).unwrap();
        let loaded = SavedState::load(&path).unwrap().unwrap();
        assert_eq!(loaded, state);
        let a = audit_with(&chain, &loaded).expect("the same history holds");
        assert_eq!(a.report().accepted_checked, Some(true));
    }

    #[test]
    fn saved_state_of_a_rewritten_history_fails() {
        let chain = sample_history(6, 2);
        // A rewritten history: the same genesis keys, one block 3 different (an extra transfer).
        let mut other = paychan_ledger::testkit::TestChain::new(chain.net.clone());
        for b in &chain.blocks[..2] {
            other.state.apply_block(b).unwrap();
            other.blocks.push(b.clone());
        }
        let u = &chain.net.users;
        let nonce = other.state.nonce(&u[3].public());
        let dropped = other.next_block(vec![chain.net.transfer(&u[3], u[1].public(), 7, nonce)]);
        assert!(dropped.is_empty());
        let forged = chain.net.signed_checkpoint(other.state.checkpoint(), &[0]);
        let state = SavedState::new(&chain.net.genesis, &forged);
        let err = audit_with(&chain, &state).expect_err("a rewritten history is refused");
        assert!(matches!(err, AuditError::Accepted { height: 3, .. }), "{err}");

        // An edited note (its body changed under the signature) is refused before any replay.
        let size = forged.checkpoint.log_size;
        let tampered = SavedState {
            note: state
                .note
                .replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1),
            ..state.clone()
        };
        assert_ne!(tampered.note, state.note);
        assert!(tampered.checkpoint(&chain.net.genesis).is_err());
        // A state of another chain.
        let foreign = SavedState {
            chain_id: Hash32([7; 32]).to_hex(),
            ..state
        };
        assert!(foreign.checkpoint(&chain.net.genesis).is_err());
    }

    #[test]
    fn split_views_are_found() {
        let chain = sample_history(20, 3);
        let g = &chain.net.genesis;
        let mut replay = LedgerState::from_genesis(g).unwrap();
        let mut cps = Vec::new();
        for b in &chain.blocks {
            replay.apply_block(b).unwrap();
            cps.push(replay.checkpoint());
        }
        let tip = replay.clone();
        let proof =
            |first, second| -> anyhow::Result<Vec<Hash32>> { Ok(tip.consistency_proof(first, second)?) };
        let (old, new) = (cps[2], *cps.last().unwrap());
        assert_eq!(split_view(&old, &new, proof, Some(old.block_hash)), None);
        assert_eq!(split_view(&new, &new, proof, None), None);

        // Signed for another history at the same height: a different block hash and root.
        let mut forked = old;
        forked.block_hash = Hash32([1; 32]);
        let signed = chain.net.signed_checkpoint(forked, &[0, 1]);
        assert!(verify_checkpoint(g, &signed).is_ok_and(|s| s.witnessed));
        assert!(split_view(&old, &signed.checkpoint, proof, None).is_some());
        // The same log size with another root.
        let mut other_root = old;
        other_root.log_root = Hash32([2; 32]);
        other_root.height += 1;
        assert!(split_view(&old, &other_root, proof, None).is_some());
        // An older checkpoint the newer log does not extend.
        let mut not_prefix = old;
        not_prefix.log_root = Hash32([3; 32]);
        assert!(split_view(&not_prefix, &new, proof, None).is_some());
        // The block at the older height differs in the newer view.
        assert!(split_view(&old, &new, proof, Some(Hash32([4; 32]))).is_some());
    }
}

//! The sled 0.34 backend: one tree per namespace of [`crate::keys`].
//!
//! See the crate documentation for exactly what [`Store::flush`] makes durable in each
//! [`SyncMode`].

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use paychan_protocol::{Block, ChannelId, Direction, Genesis, SignedCheckpoint};

use crate::error::{Result, StoreError};
use crate::keys::*;
use crate::record;
use crate::{PutOutcome, Store};

/// What [`Store::flush`] of a [`SledStore`] does after sled has written its buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// sled's own flush only: `pwrite` plus, on Linux, `sync_file_range` over the written range.
    /// Survives a killed process; a power loss may lose recently flushed writes (see the
    /// crate documentation). Named `flush` in configs; the default (BENCHMARKS.md: full fsync
    /// costs the payment path more than 10% today).
    #[default]
    SyncFileRange,
    /// After sled's flush, also `fdatasync` sled's log file, `fsync` every blob file not yet
    /// synced, and `fsync` a directory whenever its entries changed. Flushed writes then
    /// survive a power loss too, on a disk that honours cache flushes. Named `fsync` in
    /// configs.
    Fsync,
}

impl SyncMode {
    /// The name of the mode in configs: `fsync` or `flush`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Fsync => "fsync",
            SyncMode::SyncFileRange => "flush",
        }
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durability mode name that is neither `fsync` nor `flush`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown durability mode {0:?} (expected \"fsync\" or \"flush\")")]
pub struct UnknownSyncMode(pub String);

impl FromStr for SyncMode {
    type Err = UnknownSyncMode;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "fsync" => Ok(SyncMode::Fsync),
            "flush" => Ok(SyncMode::SyncFileRange),
            other => Err(UnknownSyncMode(other.chars().take(32).collect())),
        }
    }
}

/// How to open a [`SledStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SledOptions {
    /// What a flush does; see [`SyncMode`].
    pub sync_mode: SyncMode,
    /// Period of sled's background flusher thread, which writes buffered writes out and then
    /// calls `fsync` on the log file (`None`: no background thread). sled's default is 500 ms.
    pub flush_every_ms: Option<u64>,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            sync_mode: SyncMode::default(),
            flush_every_ms: Some(500),
        }
    }
}

/// What [`SyncMode::Fsync`] keeps between flushes: an open handle on sled's log file and the
/// directory entries already made durable, so that a flush syncs only what changed.
#[derive(Debug)]
struct FsyncState {
    /// sled's log file `db` (fsync works on the inode: our descriptor syncs sled's writes).
    log: File,
    /// Names in the database directory when it was last synced.
    dir_entries: BTreeSet<OsString>,
    /// Names in `blobs/` when it was last synced; each of these files was synced too.
    blob_entries: BTreeSet<OsString>,
}

/// A store in a sled 0.34 database directory.
///
/// Writes are plain sled inserts (about a microsecond); [`Store::flush`] is the durability
/// point, for everything written before it, in every namespace (all trees share one log).
/// Read-check-write operations (genesis, blocks, checkpoints, seq reservations) take one
/// writer lock, so concurrent callers cannot both pass a check and then both write.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    genesis: sled::Tree,
    blocks: sled::Tree,
    checkpoints: sled::Tree,
    peers: sled::Tree,
    channels: sled::Tree,
    seqs: sled::Tree,
    meta: sled::Tree,
    payments: sled::Tree,
    write_lock: Mutex<()>,
    sync_mode: SyncMode,
    /// `Some` exactly in [`SyncMode::Fsync`].
    fsync: Option<Mutex<FsyncState>>,
    /// Completed fsync passes (one per successful flush in [`SyncMode::Fsync`], one at open).
    fsync_passes: AtomicU64,
    dir: PathBuf,
}

/// Maps sled's errors: its I/O errors may be retried, its corruption reports are damage.
fn sled_err(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(e) => StoreError::Io(e.to_string()),
        e @ sled::Error::Corruption { .. } => StoreError::corrupt("sled database", e),
        e => StoreError::Backend(e.to_string()),
    }
}

fn io_err(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what}: {e}"))
}

impl SledStore {
    /// Opens (or creates) the database in `dir` with the default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<SledStore> {
        SledStore::open_with(dir, SledOptions::default())
    }

    /// Opens (or creates) the database in `dir`.
    ///
    /// In [`SyncMode::Fsync`] the open ends with a full sync: sled's log and configuration
    /// files, every blob, the database directory and the directory that holds it (so that a
    /// database created now survives a power loss with its name).
    pub fn open_with(dir: impl AsRef<Path>, options: SledOptions) -> Result<SledStore> {
        let dir = dir.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&dir)
            .flush_every_ms(options.flush_every_ms)
            .open()
            .map_err(sled_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let fsync = match options.sync_mode {
            SyncMode::SyncFileRange => None,
            SyncMode::Fsync => Some(Mutex::new(FsyncState {
                log: OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dir.join("db"))
                    .map_err(|e| io_err("open sled's log file", e))?,
                dir_entries: BTreeSet::new(),
                blob_entries: BTreeSet::new(),
            })),
        };
        let store = SledStore {
            genesis: tree(NS_GENESIS)?,
            blocks: tree(NS_BLOCKS)?,
            checkpoints: tree(NS_CHECKPOINTS)?,
            peers: tree(NS_PEERS)?,
            channels: tree(NS_CHANNELS)?,
            seqs: tree(NS_SEQ_RESERVATIONS)?,
            meta: tree(NS_META)?,
            payments: tree(NS_PAYMENTS)?,
            db,
            write_lock: Mutex::new(()),
            sync_mode: options.sync_mode,
            fsync,
            fsync_passes: AtomicU64::new(0),
            dir,
        };
        if store.fsync.is_some() {
            // The tree creation, and the files sled created or rewrote at open (`conf`,
            // snapshots), which it writes without any sync.
            store.db.flush().map_err(sled_err)?;
            sync_file(&store.dir.join("conf")).map_err(|e| io_err("fsync conf", e))?;
            store.fsync_files()?;
            if let Some(parent) = store.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent).map_err(|e| io_err("fsync the database's parent dir", e))?;
            }
        }
        Ok(store)
    }

    /// What a flush of this store does.
    pub fn sync_mode(&self) -> SyncMode {
        self.sync_mode
    }

    /// How many fsync passes have completed: one at open and one per successful
    /// [`Store::flush`] in [`SyncMode::Fsync`], always 0 in [`SyncMode::SyncFileRange`].
    pub fn fsync_passes(&self) -> u64 {
        self.fsync_passes.load(Ordering::Relaxed)
    }

    /// The underlying sled database, for tools and tests. Writing through it bypasses every
    /// check of this crate.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The tree of one namespace (one of [`NAMESPACES`]), for tools and tests. Writing through
    /// it bypasses every check of this crate.
    pub fn tree(&self, namespace: &str) -> Option<&sled::Tree> {
        Some(match namespace {
            NS_GENESIS => &self.genesis,
            NS_BLOCKS => &self.blocks,
            NS_CHECKPOINTS => &self.checkpoints,
            NS_PEERS => &self.peers,
            NS_CHANNELS => &self.channels,
            NS_SEQ_RESERVATIONS => &self.seqs,
            NS_META => &self.meta,
            NS_PAYMENTS => &self.payments,
            _ => return None,
        })
    }

    /// The directory the database lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_guard(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, only the check-then-write sequences; poison carries nothing.
        self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tip_locked(&self) -> Result<u64> {
        match self.blocks.last().map_err(sled_err)? {
            Some((k, _)) => parse_height_key(NS_BLOCKS, &k),
            None => Ok(0),
        }
    }

    /// The sync of [`SyncMode::Fsync`], after sled's flush: `fdatasync` of the log file
    /// (its data and the size needed to read it back), `fsync` of every blob file that
    /// appeared since the last pass (sled writes a blob once, under a new name, and never
    /// syncs it), and `fsync` of `blobs/` and of the database directory when their entries
    /// changed (new blobs; `conf` and snapshot renames, whose contents sled syncs itself
    /// except `conf`). Passes are serialised; a failed pass leaves the remembered entries
    /// untouched, so the next one syncs them again.
    fn fsync_files(&self) -> Result<()> {
        let Some(state) = &self.fsync else {
            return Ok(());
        };
        // Guards no invariant a panic could break: at worst a later pass syncs more.
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.log.sync_data().map_err(|e| io_err("fsync db", e))?;
        let blobs_dir = self.dir.join("blobs");
        let blobs = list_dir(&blobs_dir).map_err(|e| io_err("list blobs", e))?;
        if blobs != state.blob_entries {
            for name in blobs.difference(&state.blob_entries) {
                sync_file(&blobs_dir.join(name)).map_err(|e| io_err("fsync blob", e))?;
            }
            sync_dir(&blobs_dir).map_err(|e| io_err("fsync blobs dir", e))?;
            state.blob_entries = blobs;
        }
        let entries = list_dir(&self.dir).map_err(|e| io_err("list the database dir", e))?;
        if entries != state.dir_entries {
            sync_dir(&self.dir).map_err(|e| io_err("fsync the database dir", e))?;
            state.dir_entries = entries;
        }
        self.fsync_passes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// `fsync` of one file; a file gone meanwhile (sled's garbage collector removes blobs) is
/// nothing to sync.
fn sync_file(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `fsync` of a directory: makes its entries (created, renamed, removed files) durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match File::open(path) {
        Ok(d) => d.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The names in a directory (none if it does not exist).
fn list_dir(path: &Path) -> std::io::Result<BTreeSet<OsString>> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

impl Store for SledStore {
    fn put_genesis(&self, genesis: &Genesis) -> Result<PutOutcome> {
        let bytes = record::check_genesis(genesis)?;
        let _w = self.write_guard();
        let stored = match self.genesis.get(GENESIS_KEY).map_err(sled_err)? {
            Some(b) => Some(record::decode_genesis(&b)?),
            None => None,
        };
        let outcome = record::genesis_outcome(stored.as_ref(), genesis)?;
        if outcome == PutOutcome::Stored {
            self.genesis.insert(GENESIS_KEY, bytes).map_err(sled_err)?;
        }
        Ok(outcome)
    }

    fn genesis(&self) -> Result<Option<Genesis>> {
        match self.genesis.get(GENESIS_KEY).map_err(sled_err)? {
            Some(b) => Ok(Some(record::decode_genesis(&b)?)),
            None => Ok(None),
        }
    }

    fn put_block(&self, block: &Block) -> Result<PutOutcome> {
        let bytes = record::check_block(block)?;
        let height = block.header.height;
        let key = height_key(height);
        let _w = self.write_guard();
        let stored = self.blocks.get(key).map_err(sled_err)?;
        // Canonical encoding: equal bytes are equal blocks, the common duplicate case.
        if stored.as_deref() == Some(&bytes[..]) {
            return Ok(PutOutcome::AlreadyStored);
        }
        let stored = match stored {
            Some(b) => Some(record::decode_block(height, &b)?),
            None => None,
        };
        let outcome = record::block_outcome(self.tip_locked()?, stored.as_ref(), block)?;
        if outcome == PutOutcome::Stored {
            self.blocks.insert(key, bytes).map_err(sled_err)?;
        }
        Ok(outcome)
    }

    fn block(&self, height: u64) -> Result<Option<Block>> {
        match self.blocks.get(height_key(height)).map_err(sled_err)? {
            Some(b) => Ok(Some(record::decode_block(height, &b)?)),
            None => Ok(None),
        }
    }

    fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>> {
        let mut out = Vec::new();
        // Heights start at 1, so a read from 0 starts at the first block.
        let mut expected = from.max(1);
        for item in self.blocks.range(height_key(from)..).take(limit) {
            let (k, v) = item.map_err(sled_err)?;
            let height = parse_height_key(NS_BLOCKS, &k)?;
            if height != expected {
                return Err(StoreError::corrupt(
                    "block index",
                    format!("found block {height} where block {expected} should be"),
                ));
            }
            out.push(record::decode_block(height, &v)?);
            expected = expected.saturating_add(1);
        }
        Ok(out)
    }

    fn tip(&self) -> Result<u64> {
        self.tip_locked()
    }

    fn put_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<SignedCheckpoint> {
        record::check_checkpoint(checkpoint)?;
        let height = checkpoint.checkpoint.height;
        let key = height_key(height);
        let _w = self.write_guard();
        let stored = match self.checkpoints.get(key).map_err(sled_err)? {
            Some(b) => Some(record::decode_checkpoint(height, &b)?),
            None => None,
        };
        let (merged, changed) = record::merge_checkpoint(stored.as_ref(), checkpoint)?;
        if changed {
            let bytes = record::check_checkpoint(&merged)?;
            self.checkpoints.insert(key, bytes).map_err(sled_err)?;
        }
        Ok(merged)
    }

    fn checkpoint(&self, height: u64) -> Result<Option<SignedCheckpoint>> {
        match self.checkpoints.get(height_key(height)).map_err(sled_err)? {
            Some(b) => Ok(Some(record::decode_checkpoint(height, &b)?)),
            None => Ok(None),
        }
    }

    fn checkpoints(&self, from: u64, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        self.checkpoints
            .range(height_key(from)..)
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(sled_err)?;
                record::decode_checkpoint(parse_height_key(NS_CHECKPOINTS, &k)?, &v)
            })
            .collect()
    }

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        match self.checkpoints.last().map_err(sled_err)? {
            Some((k, v)) => Ok(Some(record::decode_checkpoint(
                parse_height_key(NS_CHECKPOINTS, &k)?,
                &v,
            )?)),
            None => Ok(None),
        }
    }

    fn put_peer(&self, peer: &str, addrs: &[String]) -> Result<()> {
        let bytes = record::check_peer(peer, addrs)?;
        self.peers.insert(peer.as_bytes(), bytes).map_err(sled_err)?;
        Ok(())
    }

    fn delete_peer(&self, peer: &str) -> Result<()> {
        self.peers.remove(peer.as_bytes()).map_err(sled_err)?;
        Ok(())
    }

    fn peers(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.peers
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(sled_err)?;
                record::decode_peer(&k, &v)
            })
            .collect()
    }

    fn put_channel(&self, id: &ChannelId, record: &[u8]) -> Result<()> {
        record::check_channel(record)?;
        self.channels.insert(channel_key(id), record).map_err(sled_err)?;
        Ok(())
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Vec<u8>>> {
        match self.channels.get(channel_key(id)).map_err(sled_err)? {
            Some(v) => Ok(Some(record::decode_channel(id, &v)?)),
            None => Ok(None),
        }
    }

    fn channels(&self) -> Result<Vec<(ChannelId, Vec<u8>)>> {
        self.channels
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(sled_err)?;
                let id = parse_channel_key(&k)?;
                Ok((id, record::decode_channel(&id, &v)?))
            })
            .collect()
    }

    fn delete_channel(&self, id: &ChannelId) -> Result<()> {
        for k in self.payments.scan_prefix(id.0 .0).keys() {
            self.payments.remove(k.map_err(sled_err)?).map_err(sled_err)?;
        }
        self.channels.remove(channel_key(id)).map_err(sled_err)?;
        Ok(())
    }

    fn put_payments(&self, id: &ChannelId, first_seq: u64, record: &[u8]) -> Result<()> {
        record::check_payments(record)?;
        self.payments
            .insert(payments_key(id, first_seq), record)
            .map_err(sled_err)?;
        Ok(())
    }

    fn payments(&self, id: &ChannelId, from_seq: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.payments
            .range(payments_key(id, from_seq)..=payments_key(id, u64::MAX))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_err)?;
                let seq = <[u8; 8]>::try_from(&k[32..])
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::corrupt("payments key", format!("{} bytes", k.len())))?;
                record::check_payments(&v).map_err(|e| StoreError::corrupt("payments record", e))?;
                Ok((seq, v.to_vec()))
            })
            .collect()
    }

    fn payments_record_at(&self, id: &ChannelId, seq: u64) -> Result<Option<u64>> {
        let Some(kv) = self
            .payments
            .range(payments_key(id, 0)..=payments_key(id, seq))
            .next_back()
        else {
            return Ok(None);
        };
        let (k, _) = kv.map_err(sled_err)?;
        <[u8; 8]>::try_from(&k[32..])
            .map(|b| Some(u64::from_be_bytes(b)))
            .map_err(|_| StoreError::corrupt("payments key", format!("{} bytes", k.len())))
    }

    fn reserve_seq(&self, id: &ChannelId, direction: Direction, reserved: u64) -> Result<()> {
        let key = seq_key(id, direction);
        let _w = self.write_guard();
        let stored = match self.seqs.get(key).map_err(sled_err)? {
            Some(v) => Some(record::decode_seq(id, direction, &v)?),
            None => None,
        };
        record::seq_check(id, direction, stored, reserved)?;
        if stored != Some(reserved) {
            self.seqs.insert(key, &reserved.to_be_bytes()).map_err(sled_err)?;
        }
        Ok(())
    }

    fn seq_reservation(&self, id: &ChannelId, direction: Direction) -> Result<Option<u64>> {
        match self.seqs.get(seq_key(id, direction)).map_err(sled_err)? {
            Some(v) => Ok(Some(record::decode_seq(id, direction, &v)?)),
            None => Ok(None),
        }
    }

    fn seq_reservations(&self) -> Result<Vec<(ChannelId, Direction, u64)>> {
        self.seqs
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(sled_err)?;
                let (id, direction) = parse_seq_key(&k)?;
                Ok((id, direction, record::decode_seq(&id, direction, &v)?))
            })
            .collect()
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        record::check_meta(key, value)?;
        self.meta.insert(key.as_bytes(), value).map_err(sled_err)?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.meta.get(key.as_bytes()).map_err(sled_err)? {
            Some(v) => Ok(Some(record::decode_meta(key.as_bytes(), &v)?.1)),
            None => Ok(None),
        }
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.meta
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(sled_err)?;
                record::decode_meta(&k, &v)
            })
            .collect()
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(sled_err)?;
        self.fsync_files()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_protocol::Hash32;

    fn chan(i: u8) -> ChannelId {
        ChannelId(Hash32([i; 32]))
    }

    fn open(dir: &Path, mode: &str) -> SledStore {
        let options = SledOptions {
            sync_mode: mode.parse().unwrap(),
            // No background flusher: only our own flushes write, so the counts below are ours.
            flush_every_ms: None,
        };
        SledStore::open_with(dir, options).unwrap()
    }

    #[test]
    fn mode_names_round_trip_and_unknown_ones_are_refused() {
        for mode in [SyncMode::Fsync, SyncMode::SyncFileRange] {
            assert_eq!(mode.as_str().parse::<SyncMode>(), Ok(mode));
        }
        assert_eq!(SyncMode::default(), SyncMode::SyncFileRange);
        assert_eq!(SledOptions::default().sync_mode, SyncMode::SyncFileRange);
        let err = "fdatasync".parse::<SyncMode>().unwrap_err();
        assert_eq!(err, UnknownSyncMode("fdatasync".into()));
        assert!(err.to_string().contains("\"fsync\" or \"flush\""), "{err}");
        // A long name is cut in the error, never echoed whole.
        let long = "x".repeat(10_000).parse::<SyncMode>().unwrap_err();
        assert_eq!(long.0.len(), 32);
    }

    #[test]
    fn fsync_mode_runs_one_fsync_pass_per_flush() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), "fsync");
        assert_eq!(s.sync_mode(), SyncMode::Fsync);
        // The open itself syncs what sled created.
        assert_eq!(s.fsync_passes(), 1);
        {
            let state = s.fsync.as_ref().unwrap().lock().unwrap();
            assert!(state.dir_entries.contains(&OsString::from("db")));
            assert!(state.dir_entries.contains(&OsString::from("conf")));
        }
        for i in 1..=3u8 {
            s.put_channel(&chan(i), &[i; 64]).unwrap();
            s.flush().unwrap();
            assert_eq!(s.fsync_passes(), 1 + u64::from(i));
        }
        // A blob (a value above sled's ~128 KiB threshold) gets its file synced and remembered.
        s.put_channel(&chan(9), &vec![0xab; 300 * 1024]).unwrap();
        s.flush().unwrap();
        assert_eq!(s.fsync_passes(), 5);
        let blobs = s.fsync.as_ref().unwrap().lock().unwrap().blob_entries.clone();
        assert_eq!(blobs, list_dir(&dir.path().join("blobs")).unwrap());
        assert!(!blobs.is_empty());
        drop(s);
        // Reopened in fsync mode the data is there and a fresh pass ran.
        let s = open(dir.path(), "fsync");
        assert_eq!(s.fsync_passes(), 1);
        assert_eq!(s.channel(&chan(2)).unwrap(), Some(vec![2; 64]));
        assert_eq!(s.channel(&chan(9)).unwrap().map(|v| v.len()), Some(300 * 1024));
    }

    #[test]
    fn flush_mode_runs_no_fsync_pass() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), "flush");
        assert_eq!(s.sync_mode(), SyncMode::SyncFileRange);
        assert!(s.fsync.is_none());
        s.put_channel(&chan(1), &[1; 64]).unwrap();
        s.flush().unwrap();
        assert_eq!(s.fsync_passes(), 0);
        drop(s);
        let s = open(dir.path(), "flush");
        assert_eq!(s.channel(&chan(1)).unwrap(), Some(vec![1; 64]));
    }

    #[test]
    fn open_in_a_new_subdirectory_creates_and_syncs_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a").join("db");
        let s = open(&db, "fsync");
        assert_eq!(s.fsync_passes(), 1);
        assert!(db.join("conf").exists());
    }
}

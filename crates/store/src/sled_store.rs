//! The sled 0.34 backend: one tree per namespace of [`crate::keys`].
//!
//! See the crate documentation for exactly what [`Store::flush`] makes durable, and
//! [`SyncMode`] for the stronger, slower mode.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
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
    /// crate documentation).
    #[default]
    SyncFileRange,
    /// After sled's flush, also `fsync` sled's log file, every file of its `blobs/` directory
    /// and both directories. Flushed writes then survive a power loss too, on a disk that
    /// honours cache flushes, at the price of several `fsync` calls per flush.
    Fsync,
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
            sync_mode: SyncMode::SyncFileRange,
            flush_every_ms: Some(500),
        }
    }
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
    write_lock: Mutex<()>,
    sync_mode: SyncMode,
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
    pub fn open_with(dir: impl AsRef<Path>, options: SledOptions) -> Result<SledStore> {
        let dir = dir.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&dir)
            .flush_every_ms(options.flush_every_ms)
            .open()
            .map_err(sled_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let store = SledStore {
            genesis: tree(NS_GENESIS)?,
            blocks: tree(NS_BLOCKS)?,
            checkpoints: tree(NS_CHECKPOINTS)?,
            peers: tree(NS_PEERS)?,
            channels: tree(NS_CHANNELS)?,
            seqs: tree(NS_SEQ_RESERVATIONS)?,
            meta: tree(NS_META)?,
            db,
            write_lock: Mutex::new(()),
            sync_mode: options.sync_mode,
            dir,
        };
        if store.sync_mode == SyncMode::Fsync {
            // Make the tree creation and the files sled just created durable too.
            store.flush()?;
        }
        Ok(store)
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

    /// `fsync` of sled's files, for [`SyncMode::Fsync`]. fsync works on the inode, so a
    /// descriptor of our own flushes what sled wrote through its descriptor. Large values go
    /// to separate files under `blobs/`, which sled writes without any sync.
    fn fsync_files(&self) -> Result<()> {
        fn sync(path: &Path, write: bool) -> std::io::Result<()> {
            match OpenOptions::new().read(true).write(write).open(path) {
                Ok(f) => f.sync_all(),
                // sled's garbage collector may remove a blob between listing and opening.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        }
        sync(&self.dir.join("db"), true).map_err(|e| io_err("fsync db", e))?;
        let blobs = self.dir.join("blobs");
        match std::fs::read_dir(&blobs) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| io_err("list blobs", e))?;
                    sync(&entry.path(), true).map_err(|e| io_err("fsync blob", e))?;
                }
                File::open(&blobs)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_err("fsync blobs dir", e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("list blobs", e)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("fsync dir", e))
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
        self.channels.remove(channel_key(id)).map_err(sled_err)?;
        Ok(())
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
        if self.sync_mode == SyncMode::Fsync {
            self.fsync_files()?;
        }
        Ok(())
    }
}

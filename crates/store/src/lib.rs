//! # paychan-store
//!
//! Persists everything a node keeps: the genesis, the ledger replica (blocks by height and the
//! tip), checkpoints with their cosignatures, known peers, channel records, payer seq
//! reservations and node metadata. It knows only protocol types and opaque bytes: channel
//! state is encoded by the caller and stored as bytes under its [`ChannelId`].
//!
//! ## Layout
//! - [`Store`]: the trait the node programs against (synchronous; from tokio, call it directly
//!   for single sled operations, which take microseconds, and through `spawn_blocking` for
//!   [`Store::flush`] and long scans).
//! - [`SledStore`]: sled 0.34, one tree per namespace ([`keys`] names them and their keys).
//! - [`MemStore`]: ordered maps behind a mutex, same checks, nothing durable.
//! - [`FaultyStore`]: wraps any store; crashes keeping only flushed writes; injects I/O errors.
//! - [`StoreError`]: the one error type; [`StoreError::is_retryable`] tells I/O from the rest.
//!
//! Every backend applies the same rules (in one private module): values are checked at write
//! time against the limits the strict decoder applies at read time, so bytes that fail to
//! decode on read are damage ([`StoreError::Corrupt`]), never a panic. Blocks are stored
//! without gaps: a block must have height `tip + 1`, or be identical to the stored one.
//!
//! ## Durability
//!
//! A write returns once the backend holds it in memory; by itself it promises nothing.
//! [`Store::flush`] is the one durability point: when it returns `Ok`, every write that had
//! returned before the flush started is as durable as the backend makes it, as stated below.
//! Callers batch writes and flush once (group commit), and send an ack or a signature only
//! after the flush that covers the state it depends on ("persist before you send").
//!
//! **[`SledStore`] with sled 0.34 on Linux, default [`SyncMode::SyncFileRange`] (`flush` in configs).**
//! - *What flush does.* sled writes its buffered log entries (all trees share one log, the
//!   file `db`) with `pwrite`, and for each written range calls `sync_file_range` with
//!   `WAIT_BEFORE | WRITE | WAIT_AFTER`: it starts writeback of that range's dirty pages and
//!   waits for it. It calls neither `fsync` nor `fdatasync`. A log entry too large for a log
//!   segment (over about 128 KiB with sled's default 512 KiB segments, i.e. in practice a value
//!   of that size) is written to its own file under `blobs/` with a plain `write`, never synced.
//! - *Process killed* (SIGKILL, abort, OOM killer) while the kernel keeps running: every write
//!   covered by a successful flush survives, because it was handed to the kernel before flush
//!   returned (blob files included), and the kernel writes it out on its own. Writes not yet
//!   flushed survive only if sled had already written them out (its background flusher does so
//!   every `flush_every_ms`, 500 ms by default, and a full buffer is written at once); any or
//!   all of them may be lost. Dropping every handle of a `SledStore` flushes.
//! - *Power loss, kernel panic or VM reset*: only what reached the disk's stable media
//!   survives, and a successful flush does not guarantee that. `sync_file_range` writes no
//!   file metadata (size, newly allocated extents: data in a newly allocated part of the log
//!   may be unreachable after the crash) and sends no cache-flush command to the disk (data in
//!   a volatile write cache is lost). sled's background flusher thread calls `fsync` on the log
//!   file once per `flush_every_ms` tick; log entries written before one of those `fsync`
//!   calls started survive once it returns, on a disk that honours cache flushes. So a power
//!   loss may lose the flushed writes of roughly the last `flush_every_ms` (500 ms by default)
//!   before it (with `flush_every_ms: None`, of any period), and no API says which writes an
//!   `fsync` has covered yet. Blob files are never fsynced by sled:
//!   a large value survives a power loss only once the kernel's own writeback has put it on
//!   disk (by default within about 30 s of the write, `vm.dirty_expire_centisecs`), and only
//!   with luck as far as the disk cache and the directory entry go.
//! - *Ordering*: sled checksums every log entry and its recovery stops at the first torn or
//!   missing one, so what is recovered from the log is, by sled's design, a prefix of the
//!   writes in sled's log order: a later write never survives without the earlier ones.
//!   Since `put_block` only appends, recovered blocks have no gap ([`Store::blocks`] reports
//!   one as corruption).
//! - **[`SyncMode::Fsync`]** (`fsync` in configs) adds, after sled's flush,
//!   `fdatasync` of the log file (its data, and the size needed to read it back), `fsync` of
//!   each blob file not synced yet, and `fsync` of `blobs/` and of the database directory
//!   whenever their entries changed; opening a store in this mode also syncs sled's `conf`
//!   file (written without sync), every file, both directories and the directory holding the
//!   database, so a database created now keeps its name. A write covered by a successful
//!   flush then survives a power loss too, on a disk that honours cache flushes. Its cost on
//!   the payment path is measured in BENCHMARKS.md.
//! - On other systems sled's flush calls `fsync` on the log file itself; blob files are still
//!   not synced.
//!
//! **[`MemStore`]** keeps nothing past the end of the process. **[`FaultyStore`]** models the
//! worst case the statements above allow for a process crash: a crash loses exactly the writes
//! made after the last successful flush ([`FaultyStore::crash_keeping`] also models sled
//! recovering some of them, always a prefix).

pub mod error;
pub mod faulty;
pub mod keys;
pub mod mem;
mod record;
pub mod sled_store;

use std::sync::Arc;

use paychan_protocol::{Block, ChannelId, Direction, Genesis, SignedCheckpoint};

pub use error::{Result, StoreError};
pub use faulty::FaultyStore;
pub use mem::MemStore;
pub use sled_store::{SledOptions, SledStore, SyncMode, UnknownSyncMode};

/// What a put of an immutable record (genesis, block) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The record was new and is now stored.
    Stored,
    /// An identical record was already stored; nothing was written.
    AlreadyStored,
}

/// Everything a node persists. All methods are synchronous and take `&self`: a store is shared
/// (e.g. in an `Arc`) and serialises its own check-then-write operations.
///
/// Writes become durable only at [`flush`](Store::flush); see the crate documentation.
/// Reads see every write that returned, flushed or not.
pub trait Store: Send + Sync {
    /// Stores the genesis. Idempotent for the same genesis; a different one is refused with
    /// [`StoreError::GenesisConflict`].
    fn put_genesis(&self, genesis: &Genesis) -> Result<PutOutcome>;
    /// The genesis, if stored.
    fn genesis(&self) -> Result<Option<Genesis>>;

    /// Stores a block at `block.header.height`. The height must be `tip + 1` (the first block
    /// has height 1), else [`StoreError::NotNext`]; storing an identical block again is
    /// [`PutOutcome::AlreadyStored`]; a different block at a stored height is refused with
    /// [`StoreError::Conflict`]. The store checks no hash, link or signature: the ledger
    /// verifies a block before it is stored.
    fn put_block(&self, block: &Block) -> Result<PutOutcome>;
    /// The block at `height`, if stored.
    fn block(&self, height: u64) -> Result<Option<Block>>;
    /// Up to `limit` consecutive blocks starting at `from` (from the first block if `from` is
    /// 0), in height order. The caller bounds `limit` (e.g. by
    /// `paychan_protocol::wire::BLOCKS_PER_RESPONSE_MAX`).
    fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>>;
    /// Height of the highest stored block; 0 when none is stored (genesis only).
    fn tip(&self) -> Result<u64>;

    /// Stores a signed checkpoint, merging it into one stored at the same height: cosignatures
    /// of witnesses not yet present are added (at most one per witness key), the stored
    /// sequencer signature is kept. A different checkpoint body at that height is refused with
    /// [`StoreError::Conflict`]. Returns the record as stored. Signatures are not checked here:
    /// callers verify before storing.
    fn put_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<SignedCheckpoint>;
    /// The checkpoint at `height`, if stored.
    fn checkpoint(&self, height: u64) -> Result<Option<SignedCheckpoint>>;
    /// Up to `limit` stored checkpoints with height `>= from`, in height order.
    fn checkpoints(&self, from: u64, limit: usize) -> Result<Vec<SignedCheckpoint>>;
    /// The stored checkpoint with the greatest height.
    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>>;

    /// Sets the addresses (multiaddr strings) of a peer, replacing any stored ones.
    fn put_peer(&self, peer: &str, addrs: &[String]) -> Result<()>;
    /// Forgets a peer (no error if unknown).
    fn delete_peer(&self, peer: &str) -> Result<()>;
    /// Every known peer with its addresses, ordered by peer id bytes.
    fn peers(&self) -> Result<Vec<(String, Vec<String>)>>;

    /// Stores the caller-encoded record of a channel, replacing any stored one.
    fn put_channel(&self, id: &ChannelId, record: &[u8]) -> Result<()>;
    /// The record of a channel, if stored.
    fn channel(&self, id: &ChannelId) -> Result<Option<Vec<u8>>>;
    /// Every channel record, ordered by channel id bytes.
    fn channels(&self) -> Result<Vec<(ChannelId, Vec<u8>)>>;
    /// Removes a channel record (no error if absent). Its seq reservations are kept: they are
    /// tiny, and keeping them can never allow a double signature.
    fn delete_channel(&self, id: &ChannelId) -> Result<()>;

    /// Stores the record of payments received on channel `id` in a burst whose first new proof
    /// has seq `first_seq` (written in the batch that makes the burst durable; a second put at
    /// the same key replaces the first). The records of a channel go with
    /// [`Store::delete_channel`].
    fn put_payments(&self, id: &ChannelId, first_seq: u64, record: &[u8]) -> Result<()>;
    /// Channel `id`'s payments records with a first seq of at least `from_seq`, in seq order,
    /// at most `limit`, as `(first_seq, record)`.
    fn payments(&self, id: &ChannelId, from_seq: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>>;
    /// The first seq of channel `id`'s newest payments record whose first seq is at most
    /// `seq`: the record that holds the payments of `seq`, if any does. One lookup, so that a
    /// page of a long channel's payments is read without reading every record before it.
    fn payments_record_at(&self, id: &ChannelId, seq: u64) -> Result<Option<u64>>;

    /// Records the seq reservation of a payer on one channel direction (the caller's meaning,
    /// e.g. the end of the reserved range). It may only grow: a lower value is refused with
    /// [`StoreError::SeqRegress`]; the same value is a no-op. Flush before signing within it.
    fn reserve_seq(&self, id: &ChannelId, direction: Direction, reserved: u64) -> Result<()>;
    /// The stored seq reservation of a channel direction.
    fn seq_reservation(&self, id: &ChannelId, direction: Direction) -> Result<Option<u64>>;
    /// Every seq reservation, ordered by channel id then direction (A to B first).
    fn seq_reservations(&self) -> Result<Vec<(ChannelId, Direction, u64)>>;

    /// Sets a small metadata value (at most [`keys::META_VALUE_BYTES_MAX`] bytes).
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()>;
    /// A metadata value.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Every metadata entry, ordered by key bytes.
    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>>;

    /// Makes every write that returned before this call durable, as far as the backend can
    /// (see the crate documentation). On error nothing written since the last successful flush
    /// is known to be durable; calling `flush` again is safe.
    fn flush(&self) -> Result<()>;
}

/// Blocks and checkpoints are copied in chunks of this many.
const COPY_CHUNK: usize = 256;

/// Copies everything `src` holds into `dst` (through the [`Store`] methods, so `dst` applies
/// its own checks). Does not flush `dst`.
pub fn copy_store(src: &dyn Store, dst: &dyn Store) -> Result<()> {
    if let Some(g) = src.genesis()? {
        dst.put_genesis(&g)?;
    }
    let mut from = 1;
    loop {
        let chunk = src.blocks(from, COPY_CHUNK)?;
        for b in &chunk {
            dst.put_block(b)?;
        }
        match chunk.last() {
            Some(b) if chunk.len() == COPY_CHUNK => from = b.header.height + 1,
            _ => break,
        }
    }
    let mut from = 0;
    loop {
        let chunk = src.checkpoints(from, COPY_CHUNK)?;
        for c in &chunk {
            dst.put_checkpoint(c)?;
        }
        match chunk.last() {
            Some(c) if chunk.len() == COPY_CHUNK => from = c.checkpoint.height + 1,
            _ => break,
        }
    }
    for (peer, addrs) in src.peers()? {
        dst.put_peer(&peer, &addrs)?;
    }
    for (id, record) in src.channels()? {
        dst.put_channel(&id, &record)?;
    }
    for (id, direction, reserved) in src.seq_reservations()? {
        dst.reserve_seq(&id, direction, reserved)?;
    }
    for (key, value) in src.meta_entries()? {
        dst.put_meta(&key, &value)?;
    }
    Ok(())
}

/// A shared store is a store.
impl<S: Store + ?Sized> Store for Arc<S> {
    fn put_genesis(&self, genesis: &Genesis) -> Result<PutOutcome> {
        (**self).put_genesis(genesis)
    }
    fn genesis(&self) -> Result<Option<Genesis>> {
        (**self).genesis()
    }
    fn put_block(&self, block: &Block) -> Result<PutOutcome> {
        (**self).put_block(block)
    }
    fn block(&self, height: u64) -> Result<Option<Block>> {
        (**self).block(height)
    }
    fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>> {
        (**self).blocks(from, limit)
    }
    fn tip(&self) -> Result<u64> {
        (**self).tip()
    }
    fn put_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<SignedCheckpoint> {
        (**self).put_checkpoint(checkpoint)
    }
    fn checkpoint(&self, height: u64) -> Result<Option<SignedCheckpoint>> {
        (**self).checkpoint(height)
    }
    fn checkpoints(&self, from: u64, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        (**self).checkpoints(from, limit)
    }
    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        (**self).latest_checkpoint()
    }
    fn put_peer(&self, peer: &str, addrs: &[String]) -> Result<()> {
        (**self).put_peer(peer, addrs)
    }
    fn delete_peer(&self, peer: &str) -> Result<()> {
        (**self).delete_peer(peer)
    }
    fn peers(&self) -> Result<Vec<(String, Vec<String>)>> {
        (**self).peers()
    }
    fn put_channel(&self, id: &ChannelId, record: &[u8]) -> Result<()> {
        (**self).put_channel(id, record)
    }
    fn channel(&self, id: &ChannelId) -> Result<Option<Vec<u8>>> {
        (**self).channel(id)
    }
    fn channels(&self) -> Result<Vec<(ChannelId, Vec<u8>)>> {
        (**self).channels()
    }
    fn delete_channel(&self, id: &ChannelId) -> Result<()> {
        (**self).delete_channel(id)
    }
    fn put_payments(&self, id: &ChannelId, first_seq: u64, record: &[u8]) -> Result<()> {
        (**self).put_payments(id, first_seq, record)
    }
    fn payments(&self, id: &ChannelId, from_seq: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        (**self).payments(id, from_seq, limit)
    }
    fn payments_record_at(&self, id: &ChannelId, seq: u64) -> Result<Option<u64>> {
        (**self).payments_record_at(id, seq)
    }
    fn reserve_seq(&self, id: &ChannelId, direction: Direction, reserved: u64) -> Result<()> {
        (**self).reserve_seq(id, direction, reserved)
    }
    fn seq_reservation(&self, id: &ChannelId, direction: Direction) -> Result<Option<u64>> {
        (**self).seq_reservation(id, direction)
    }
    fn seq_reservations(&self) -> Result<Vec<(ChannelId, Direction, u64)>> {
        (**self).seq_reservations()
    }
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        (**self).put_meta(key, value)
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        (**self).meta(key)
    }
    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        (**self).meta_entries()
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
}

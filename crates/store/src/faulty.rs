//! A fault-injecting wrapper for crash tests.
//!
//! [`FaultyStore`] passes every call to the store it wraps and keeps, beside it, an in-memory
//! copy of what the last successful [`Store::flush`] made durable plus the list of writes made
//! since. [`FaultyStore::crash`] throws the unflushed writes away and returns a store holding
//! only the durable state: the worst case a real crash allows. It also fails the next N writes
//! or flushes on request with [`StoreError::Io`].

use std::sync::{Mutex, MutexGuard};

use paychan_protocol::{Block, ChannelId, Direction, Genesis, SignedCheckpoint};

use crate::error::{Result, StoreError};
use crate::mem::MemStore;
use crate::{copy_store, PutOutcome, Store};

/// One accepted write, kept until a flush makes it durable.
#[derive(Clone, Debug)]
enum Op {
    Genesis(Genesis),
    Block(Block),
    Checkpoint(SignedCheckpoint),
    Peer(String, Vec<String>),
    DeletePeer(String),
    Channel(ChannelId, Vec<u8>),
    DeleteChannel(ChannelId),
    Seq(ChannelId, Direction, u64),
    Meta(String, Vec<u8>),
    Payments(ChannelId, u64, Vec<u8>),
}

impl Op {
    /// Replays the write on the durable copy. The wrapped store accepted it in the same order
    /// from the same state, so the copy accepts it too; if not, the copy no longer models the
    /// store and every later crash test would lie.
    fn apply(&self, s: &MemStore) {
        let r = match self {
            Op::Genesis(g) => s.put_genesis(g).map(drop),
            Op::Block(b) => s.put_block(b).map(drop),
            Op::Checkpoint(c) => s.put_checkpoint(c).map(drop),
            Op::Peer(p, a) => s.put_peer(p, a),
            Op::DeletePeer(p) => s.delete_peer(p),
            Op::Channel(id, r) => s.put_channel(id, r),
            Op::DeleteChannel(id) => s.delete_channel(id),
            Op::Seq(id, d, v) => s.reserve_seq(id, *d, *v),
            Op::Meta(k, v) => s.put_meta(k, v),
            Op::Payments(id, seq, r) => s.put_payments(id, *seq, r),
        };
        if let Err(e) = r {
            panic!("durable copy refused a write the wrapped store accepted ({self:?}): {e}");
        }
    }
}

#[derive(Debug)]
struct FaultState {
    /// What survives a crash.
    durable: MemStore,
    /// Writes the wrapped store accepted since the last successful flush, in order.
    pending: Vec<Op>,
    writes_to_fail: u32,
    flushes_to_fail: u32,
}

/// Wraps a store, models crashes and injects I/O errors. See the module documentation.
///
/// Writes refused by the wrapped store (a conflict, a limit) are not recorded; writes that
/// change nothing (an identical block) are recorded and harmless. A failed flush leaves every
/// pending write pending: none of them is durable until a later flush succeeds.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    state: Mutex<FaultState>,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`. Whatever `inner` already holds counts as durable.
    pub fn new(inner: S) -> Result<FaultyStore<S>> {
        let durable = MemStore::new();
        copy_store(&inner, &durable)?;
        Ok(FaultyStore::with_durable(inner, durable))
    }

    fn with_durable(inner: S, durable: MemStore) -> FaultyStore<S> {
        FaultyStore {
            inner,
            state: Mutex::new(FaultState {
                durable,
                pending: Vec::new(),
                writes_to_fail: 0,
                flushes_to_fail: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // A panic in `Op::apply` is a broken model; later tests would see it anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the next `n` writes fail with [`StoreError::Io`] without reaching the wrapped
    /// store.
    pub fn fail_next_writes(&self, n: u32) {
        self.lock().writes_to_fail = n;
    }

    /// Makes the next `n` flushes fail with [`StoreError::Io`]; pending writes stay pending.
    pub fn fail_next_flushes(&self, n: u32) {
        self.lock().flushes_to_fail = n;
    }

    /// Writes accepted since the last successful flush.
    pub fn unflushed_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// A copy of the durable state: what a crash now would leave.
    pub fn durable(&self) -> MemStore {
        self.lock().durable.clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Simulates a crash: the wrapped store is dropped with every write made since the last
    /// successful flush, and a fresh wrapper around an in-memory store holding exactly the
    /// flushed state is returned (ready to crash again).
    pub fn crash(self) -> FaultyStore<MemStore> {
        self.crash_keeping(0)
    }

    /// Like [`crash`](Self::crash), but the first `n` unflushed writes survive as well (all of
    /// them if `n` is larger). This models a backend that recovers a prefix of its log, as
    /// sled does: some writes after the last flush may survive, never a later write without
    /// the earlier ones.
    pub fn crash_keeping(self, n: usize) -> FaultyStore<MemStore> {
        let FaultyStore { inner, state } = self;
        drop(inner);
        let state = state.into_inner().unwrap_or_else(|e| e.into_inner());
        let durable = state.durable;
        for op in state.pending.iter().take(n) {
            op.apply(&durable);
        }
        FaultyStore::with_durable(durable.clone(), durable)
    }

    /// Runs one write: fails it if asked to, else passes it on and records it if accepted.
    /// The state lock is held across the call so that the recorded order is the order the
    /// wrapped store saw.
    fn write<T>(&self, op: impl FnOnce() -> Op, call: impl FnOnce(&S) -> Result<T>) -> Result<T> {
        let mut st = self.lock();
        if st.writes_to_fail > 0 {
            st.writes_to_fail -= 1;
            return Err(StoreError::Io("injected write failure".to_string()));
        }
        let out = call(&self.inner)?;
        st.pending.push(op());
        Ok(out)
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn put_genesis(&self, genesis: &Genesis) -> Result<PutOutcome> {
        self.write(|| Op::Genesis(genesis.clone()), |s| s.put_genesis(genesis))
    }

    fn genesis(&self) -> Result<Option<Genesis>> {
        self.inner.genesis()
    }

    fn put_block(&self, block: &Block) -> Result<PutOutcome> {
        self.write(|| Op::Block(block.clone()), |s| s.put_block(block))
    }

    fn block(&self, height: u64) -> Result<Option<Block>> {
        self.inner.block(height)
    }

    fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>> {
        self.inner.blocks(from, limit)
    }

    fn tip(&self) -> Result<u64> {
        self.inner.tip()
    }

    fn put_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<SignedCheckpoint> {
        self.write(
            || Op::Checkpoint(checkpoint.clone()),
            |s| s.put_checkpoint(checkpoint),
        )
    }

    fn checkpoint(&self, height: u64) -> Result<Option<SignedCheckpoint>> {
        self.inner.checkpoint(height)
    }

    fn checkpoints(&self, from: u64, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        self.inner.checkpoints(from, limit)
    }

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        self.inner.latest_checkpoint()
    }

    fn put_peer(&self, peer: &str, addrs: &[String]) -> Result<()> {
        self.write(
            || Op::Peer(peer.to_string(), addrs.to_vec()),
            |s| s.put_peer(peer, addrs),
        )
    }

    fn delete_peer(&self, peer: &str) -> Result<()> {
        self.write(|| Op::DeletePeer(peer.to_string()), |s| s.delete_peer(peer))
    }

    fn peers(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.inner.peers()
    }

    fn put_channel(&self, id: &ChannelId, record: &[u8]) -> Result<()> {
        self.write(
            || Op::Channel(*id, record.to_vec()),
            |s| s.put_channel(id, record),
        )
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Vec<u8>>> {
        self.inner.channel(id)
    }

    fn channels(&self) -> Result<Vec<(ChannelId, Vec<u8>)>> {
        self.inner.channels()
    }

    fn delete_channel(&self, id: &ChannelId) -> Result<()> {
        self.write(|| Op::DeleteChannel(*id), |s| s.delete_channel(id))
    }

    fn put_payments(&self, id: &ChannelId, first_seq: u64, record: &[u8]) -> Result<()> {
        self.write(
            || Op::Payments(*id, first_seq, record.to_vec()),
            |s| s.put_payments(id, first_seq, record),
        )
    }

    fn payments(&self, id: &ChannelId, from_seq: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        self.inner.payments(id, from_seq, limit)
    }

    fn payments_record_at(&self, id: &ChannelId, seq: u64) -> Result<Option<u64>> {
        self.inner.payments_record_at(id, seq)
    }

    fn reserve_seq(&self, id: &ChannelId, direction: Direction, reserved: u64) -> Result<()> {
        self.write(
            || Op::Seq(*id, direction, reserved),
            |s| s.reserve_seq(id, direction, reserved),
        )
    }

    fn seq_reservation(&self, id: &ChannelId, direction: Direction) -> Result<Option<u64>> {
        self.inner.seq_reservation(id, direction)
    }

    fn seq_reservations(&self) -> Result<Vec<(ChannelId, Direction, u64)>> {
        self.inner.seq_reservations()
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.write(
            || Op::Meta(key.to_string(), value.to_vec()),
            |s| s.put_meta(key, value),
        )
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.meta(key)
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.inner.meta_entries()
    }

    fn flush(&self) -> Result<()> {
        let mut st = self.lock();
        if st.flushes_to_fail > 0 {
            st.flushes_to_fail -= 1;
            return Err(StoreError::Io("injected flush failure".to_string()));
        }
        self.inner.flush()?;
        let pending = std::mem::take(&mut st.pending);
        for op in &pending {
            op.apply(&st.durable);
        }
        Ok(())
    }
}

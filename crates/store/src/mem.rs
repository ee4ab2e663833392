//! The in-memory backend: ordered maps behind one mutex.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use paychan_protocol::{Block, ChannelId, Direction, Genesis, SignedCheckpoint};

use crate::error::Result;
use crate::record;
use crate::{PutOutcome, Store};

/// Everything a [`MemStore`] holds. Iteration orders match the sled backend's key orders.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct MemState {
    genesis: Option<Genesis>,
    blocks: BTreeMap<u64, Block>,
    checkpoints: BTreeMap<u64, SignedCheckpoint>,
    peers: BTreeMap<String, Vec<String>>,
    channels: BTreeMap<ChannelId, Vec<u8>>,
    seqs: BTreeMap<(ChannelId, Direction), u64>,
    meta: BTreeMap<String, Vec<u8>>,
    payments: BTreeMap<(ChannelId, u64), Vec<u8>>,
}

/// A store in memory. Applies the same checks as [`SledStore`](crate::SledStore) and nothing
/// is durable: [`Store::flush`] does nothing. Cloning copies the contents.
#[derive(Default, Debug)]
pub struct MemStore {
    state: Mutex<MemState>,
}

impl Clone for MemStore {
    fn clone(&self) -> Self {
        MemStore {
            state: Mutex::new(self.lock().clone()),
        }
    }
}

impl PartialEq for MemStore {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || *self.lock() == *other.lock()
    }
}

impl Eq for MemStore {}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // Every mutation below checks first and then changes one map, so a panic elsewhere
        // cannot leave the state half-changed: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemStore {
    fn put_genesis(&self, genesis: &Genesis) -> Result<PutOutcome> {
        record::check_genesis(genesis)?;
        let mut s = self.lock();
        let outcome = record::genesis_outcome(s.genesis.as_ref(), genesis)?;
        if outcome == PutOutcome::Stored {
            s.genesis = Some(genesis.clone());
        }
        Ok(outcome)
    }

    fn genesis(&self) -> Result<Option<Genesis>> {
        Ok(self.lock().genesis.clone())
    }

    fn put_block(&self, block: &Block) -> Result<PutOutcome> {
        record::check_block(block)?;
        let mut s = self.lock();
        let tip = s.blocks.keys().next_back().copied().unwrap_or(0);
        let height = block.header.height;
        let outcome = record::block_outcome(tip, s.blocks.get(&height), block)?;
        if outcome == PutOutcome::Stored {
            s.blocks.insert(height, block.clone());
        }
        Ok(outcome)
    }

    fn block(&self, height: u64) -> Result<Option<Block>> {
        Ok(self.lock().blocks.get(&height).cloned())
    }

    fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>> {
        Ok(self
            .lock()
            .blocks
            .range(from..)
            .take(limit)
            .map(|(_, b)| b.clone())
            .collect())
    }

    fn tip(&self) -> Result<u64> {
        Ok(self.lock().blocks.keys().next_back().copied().unwrap_or(0))
    }

    fn put_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<SignedCheckpoint> {
        record::check_checkpoint(checkpoint)?;
        let mut s = self.lock();
        let height = checkpoint.checkpoint.height;
        let (merged, changed) = record::merge_checkpoint(s.checkpoints.get(&height), checkpoint)?;
        if changed {
            s.checkpoints.insert(height, merged.clone());
        }
        Ok(merged)
    }

    fn checkpoint(&self, height: u64) -> Result<Option<SignedCheckpoint>> {
        Ok(self.lock().checkpoints.get(&height).cloned())
    }

    fn checkpoints(&self, from: u64, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        Ok(self
            .lock()
            .checkpoints
            .range(from..)
            .take(limit)
            .map(|(_, c)| c.clone())
            .collect())
    }

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        Ok(self.lock().checkpoints.values().next_back().cloned())
    }

    fn put_peer(&self, peer: &str, addrs: &[String]) -> Result<()> {
        record::check_peer(peer, addrs)?;
        self.lock().peers.insert(peer.to_string(), addrs.to_vec());
        Ok(())
    }

    fn delete_peer(&self, peer: &str) -> Result<()> {
        self.lock().peers.remove(peer);
        Ok(())
    }

    fn peers(&self) -> Result<Vec<(String, Vec<String>)>> {
        Ok(self
            .lock()
            .peers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put_channel(&self, id: &ChannelId, record: &[u8]) -> Result<()> {
        record::check_channel(record)?;
        self.lock().channels.insert(*id, record.to_vec());
        Ok(())
    }

    fn channel(&self, id: &ChannelId) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().channels.get(id).cloned())
    }

    fn channels(&self) -> Result<Vec<(ChannelId, Vec<u8>)>> {
        Ok(self
            .lock()
            .channels
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn delete_channel(&self, id: &ChannelId) -> Result<()> {
        let mut s = self.lock();
        s.channels.remove(id);
        s.payments.retain(|(c, _), _| c != id);
        Ok(())
    }

    fn put_payments(&self, id: &ChannelId, first_seq: u64, record: &[u8]) -> Result<()> {
        record::check_payments(record)?;
        self.lock().payments.insert((*id, first_seq), record.to_vec());
        Ok(())
    }

    fn payments(&self, id: &ChannelId, from_seq: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        Ok(self
            .lock()
            .payments
            .range((*id, from_seq)..=(*id, u64::MAX))
            .take(limit)
            .map(|((_, seq), v)| (*seq, v.clone()))
            .collect())
    }

    fn payments_record_at(&self, id: &ChannelId, seq: u64) -> Result<Option<u64>> {
        Ok(self
            .lock()
            .payments
            .range((*id, 0)..=(*id, seq))
            .next_back()
            .map(|((_, first), _)| *first))
    }

    fn reserve_seq(&self, id: &ChannelId, direction: Direction, reserved: u64) -> Result<()> {
        let mut s = self.lock();
        record::seq_check(id, direction, s.seqs.get(&(*id, direction)).copied(), reserved)?;
        s.seqs.insert((*id, direction), reserved);
        Ok(())
    }

    fn seq_reservation(&self, id: &ChannelId, direction: Direction) -> Result<Option<u64>> {
        Ok(self.lock().seqs.get(&(*id, direction)).copied())
    }

    fn seq_reservations(&self) -> Result<Vec<(ChannelId, Direction, u64)>> {
        Ok(self.lock().seqs.iter().map(|(&(id, d), &v)| (id, d, v)).collect())
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        record::check_meta(key, value)?;
        self.lock().meta.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn meta_entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .lock()
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

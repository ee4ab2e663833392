//! The one owner of the node's ledger replica.
//!
//! Every change to the replica goes through a [`Writer`]: one at a time (the sequencer making a
//! block, a block gossiped or fetched in catch-up). A writer mutates the state under the
//! state's write lock in memory only, with the block put into the store's log; it releases that
//! lock before the store is flushed, so readers (payment work, the API, the watchtower) never
//! wait behind a disk write. It then publishes one [`LedgerEvent`] per applied block naming the
//! channels the block touched, in height order.
//!
//! Readers can see a block before its flush completes. That is safe because the store is one
//! ordered log: anything a reader persists afterwards (the channel manager writing that a
//! channel is open, say) lies behind the block in that log, so it is never durable without the
//! block; and nothing leaves the node on the strength of an unflushed block: the sequencer
//! gossips a block only after its flush, and a replica acknowledges one only after its own.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use paychan_ledger::LedgerState;
use paychan_protocol::{Block, ChannelId};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it misses some (it then learns
/// that it lagged, and must look at every channel once).
pub const EVENTS_BUFFERED: usize = 1_024;

/// One applied block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEvent {
    /// The block's height.
    pub height: u64,
    /// The block's time (ledger time, ms).
    pub time_ms: u64,
    /// Every channel a transaction of the block names (opened, closed, updated, settled,
    /// topped up), each once, in the block's order.
    pub channels: Vec<ChannelId>,
}

impl LedgerEvent {
    /// The event of `block`.
    pub fn of(block: &Block) -> LedgerEvent {
        let mut channels: Vec<ChannelId> = Vec::new();
        for tx in &block.txs {
            if let Some(id) = tx.channel_id() {
                if !channels.contains(&id) {
                    channels.push(id);
                }
            }
        }
        LedgerEvent {
            height: block.header.height,
            time_ms: block.header.time_ms,
            channels,
        }
    }
}

/// The replica and its single writer.
#[derive(Debug)]
pub struct Replica {
    state: RwLock<LedgerState>,
    writer: Mutex<()>,
    events: broadcast::Sender<LedgerEvent>,
}

impl Replica {
    /// The replica, restored to `state`.
    pub fn new(state: LedgerState) -> Replica {
        Replica {
            state: RwLock::new(state),
            writer: Mutex::new(()),
            events: broadcast::channel(EVENTS_BUFFERED).0,
        }
    }

    /// Read access. Never held across I/O by a writer, so a reader waits at most for a block's
    /// in-memory apply.
    pub fn read(&self) -> RwLockReadGuard<'_, LedgerState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Becomes the writer, waiting for the current one to finish (its flush included).
    pub fn begin_write(&self) -> Writer<'_> {
        Writer {
            replica: self,
            _token: self.writer.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The events of the blocks applied from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LedgerEvent> {
        self.events.subscribe()
    }
}

/// The right to change the replica; one exists at a time.
#[derive(Debug)]
pub struct Writer<'a> {
    replica: &'a Replica,
    _token: MutexGuard<'a, ()>,
}

impl Writer<'_> {
    /// The state, to change in memory. Drop the guard before flushing the store.
    pub fn state(&self) -> RwLockWriteGuard<'_, LedgerState> {
        self.replica.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes that `block` is applied and durable. Call after the flush, still as the
    /// writer, so that events come in height order.
    pub fn applied(&self, block: &Block) {
        // No subscriber is not an error: the node may run without a channel manager yet.
        let _ = self.replica.events.send(LedgerEvent::of(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_ledger::testkit;

    #[test]
    fn an_event_names_each_channel_of_a_block_once_and_nothing_for_transfers() {
        let net = testkit::TestNet::new(3, 1_000_000);
        let mut chain = testkit::TestChain::new(net.clone());
        let (a, b, c) = (&net.users[0], &net.users[1], &net.users[2]);
        let (open, id) = net.open(a, b, (1_000, 0), 1, u64::MAX);
        let deposit = net.deposit(a, id, 10, 0);
        let transfer = net.transfer(c, a.public(), 5, 0);
        let dropped = chain.next_block(vec![open, transfer, deposit]);
        assert!(dropped.is_empty(), "{dropped:?}");
        let block = chain.blocks.last().expect("a block");
        let ev = LedgerEvent::of(block);
        assert_eq!(
            ev.channels,
            vec![id],
            "the open and the top-up name one channel, once"
        );
        assert_eq!((ev.height, ev.time_ms), (1, block.header.time_ms));
        chain.next_block(Vec::<paychan_protocol::Tx>::new());
        assert!(LedgerEvent::of(chain.blocks.last().expect("a block"))
            .channels
            .is_empty());
    }
}

//! Fixtures shared by the store tests: small protocol values and a full dump of a store.

#![allow(dead_code)]

use paychan_protocol::ledger::Settle;
use paychan_protocol::{
    Block, BlockHeader, ChannelId, Checkpoint, Cosignature, Direction, Genesis, Hash32, PublicKey, Signature,
    SignedCheckpoint, Tx,
};
use paychan_store::{Store, StoreError};

pub const CHAIN: Hash32 = Hash32([7; 32]);

pub fn genesis(network: &str) -> Genesis {
    Genesis {
        network: network.to_string(),
        unit: paychan_protocol::Unit::credit(),
        genesis_time_ms: 1_700_000_000_000,
        sequencer: PublicKey([1; 32]),
        witnesses: vec![PublicKey([2; 32]), PublicKey([3; 32])],
        witness_threshold: 2,
        challenge_period_ms: 60_000,
        block_interval_ms: 1_000,
        heartbeat_interval_ms: 10_000,
        max_time_step_ms: 5_000,
        max_txs_per_block: 100,
        max_pending_per_account: 10,
        tx_fee_min: 0,
        tx_fee_per_byte: 0,
        allocations: vec![(PublicKey([4; 32]), 1_000)],
    }
}

/// A block at `height`; `salt` makes different blocks of one height.
pub fn block(height: u64, salt: u8) -> Block {
    Block {
        header: BlockHeader {
            chain_id: CHAIN,
            height,
            prev_hash: Hash32([height as u8; 32]),
            time_ms: height * 1_000,
            tx_root: Hash32([salt; 32]),
            log_size: height,
            log_root: Hash32([9; 32]),
            state_root: Hash32([10; 32]),
        },
        signature: Signature([salt; 64]),
        txs: vec![Tx::Settle(Settle {
            chain_id: CHAIN,
            channel_id: ChannelId(Hash32([salt; 32])),
        })],
    }
}

pub fn cosig(witness: u8) -> Cosignature {
    Cosignature {
        witness: PublicKey([witness; 32]),
        timestamp_s: u64::from(witness),
        signature: Signature([witness; 64]),
    }
}

/// A checkpoint at `height` (body varied by `salt`) with cosignatures of the given witnesses.
pub fn checkpoint(height: u64, salt: u8, witnesses: &[u8]) -> SignedCheckpoint {
    SignedCheckpoint {
        checkpoint: Checkpoint {
            chain_id: CHAIN,
            log_size: height * 3,
            log_root: Hash32([salt; 32]),
            height,
            block_hash: Hash32([height as u8; 32]),
        },
        signature: Signature([1; 64]),
        cosignatures: witnesses.iter().map(|&w| cosig(w)).collect(),
    }
}

pub fn chan(n: u8) -> ChannelId {
    ChannelId(Hash32([n; 32]))
}

/// Everything readable from a store, for comparisons.
#[derive(Debug, PartialEq, Eq)]
pub struct Dump {
    pub genesis: Option<Genesis>,
    pub tip: u64,
    pub blocks: Vec<Block>,
    pub checkpoints: Vec<SignedCheckpoint>,
    pub peers: Vec<(String, Vec<String>)>,
    pub channels: Vec<(ChannelId, Vec<u8>)>,
    pub seqs: Vec<(ChannelId, Direction, u64)>,
    pub meta: Vec<(String, Vec<u8>)>,
}

pub fn dump(s: &dyn Store) -> Result<Dump, StoreError> {
    Ok(Dump {
        genesis: s.genesis()?,
        tip: s.tip()?,
        blocks: s.blocks(0, usize::MAX)?,
        checkpoints: s.checkpoints(0, usize::MAX)?,
        peers: s.peers()?,
        channels: s.channels()?,
        seqs: s.seq_reservations()?,
        meta: s.meta_entries()?,
    })
}

//! The ledger figures measured in process: the sequencer's pipeline (`ledger_tx_per_s`) and
//! the auditor over an export (`audit_tx_per_s`).
//!
//! The pipeline is the sequencer's block production as `node/src/node.rs` does it, without the
//! timer: every transfer is admitted into the mempool as the node's admission does it (a
//! group's signatures checked in batches on every core, then nonce and funds checked against
//! the state), a block of up to `max_txs_per_block` candidates is produced (each transaction
//! applied again, its signature not checked twice), the block and its signed checkpoint are written to a sled store
//! (the node's default durability, `flush`) and flushed, and both are encoded as the gossip
//! messages the node publishes. Sending them over libp2p is not part of it. The transfers are
//! signed beforehand (clients sign them, not the sequencer).

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use paychan_audit::{audit_export, ExportWriter, Pin};
use paychan_ledger::{LedgerState, Mempool};
use paychan_protocol::hash::sha256;
use paychan_protocol::ledger::Transfer;
use paychan_protocol::wire::GossipMsg;
use paychan_protocol::{Block, Genesis, Keypair, PublicKey, SignedCheckpoint, Tx, Wire};
use paychan_store::{SledStore, Store};

/// Transactions per block: the testnet genesis's `max_txs_per_block`.
pub const TXS_PER_BLOCK: usize = 1_024;
/// Accounts that send the transfers: each sends one per block.
pub const SENDERS: usize = TXS_PER_BLOCK;
/// Time between the blocks' timestamps (ledger time only: nothing waits for it).
const BLOCK_STEP_MS: u64 = 200;
/// Cosignature timestamp of the export's witnesses.
const COSIGN_TIME_S: u64 = 1_800_000_000;

fn key(n: u64) -> Keypair {
    Keypair::from_seed(sha256(&[b"paychan-bench/key", &n.to_le_bytes()]).0)
}

/// A chain of the testnet's shape: a sequencer, three witnesses (threshold 2), `SENDERS`
/// funded accounts, the testnet's fees and block size.
pub struct BenchChain {
    pub genesis: Genesis,
    pub sequencer: Keypair,
    pub witnesses: Vec<Keypair>,
    pub senders: Vec<Keypair>,
}

impl BenchChain {
    pub fn new() -> BenchChain {
        let sequencer = key(0);
        let witnesses: Vec<Keypair> = (1..=3).map(key).collect();
        let senders: Vec<Keypair> = (0..SENDERS as u64).map(|i| key(1_000 + i)).collect();
        let mut allocations: Vec<(PublicKey, u64)> =
            senders.iter().map(|k| (k.public(), 1_000_000_000)).collect();
        allocations.sort();
        let genesis = Genesis {
            network: "paychan-bench".into(),
            unit: paychan_protocol::Unit::credit(),
            genesis_time_ms: 1_800_000_000_000,
            sequencer: sequencer.public(),
            witnesses: witnesses.iter().map(Keypair::public).collect(),
            witness_threshold: 2,
            challenge_period_ms: 30_000,
            block_interval_ms: BLOCK_STEP_MS,
            heartbeat_interval_ms: 500,
            max_time_step_ms: 500,
            max_txs_per_block: TXS_PER_BLOCK as u32,
            max_pending_per_account: 256,
            tx_fee_min: 100,
            tx_fee_per_byte: 1,
            allocations,
        };
        BenchChain {
            genesis,
            sequencer,
            witnesses,
            senders,
        }
    }

    /// `blocks` blocks' worth of signed transfers, block by block: in block `b` sender `i`
    /// pays sender `i + 1` with nonce `b`.
    pub fn transfers(&self, blocks: usize) -> Vec<Vec<Tx>> {
        let chain_id = self.genesis.chain_id();
        (0..blocks)
            .map(|b| {
                (0..SENDERS)
                    .map(|i| {
                        let from = &self.senders[i];
                        let to = self.senders[(i + 1) % SENDERS].public();
                        Tx::transfer(
                            Transfer {
                                chain_id,
                                from: from.public(),
                                to,
                                amount: 1 + (b as u64 % 7),
                                nonce: b as u64,
                            },
                            from,
                        )
                    })
                    .collect()
            })
            .collect()
    }
}

/// What one pipeline run made: the blocks with their signed checkpoints, and the rate.
pub struct PipelineRun {
    pub tx_per_s: f64,
    pub txs: usize,
    pub blocks: Vec<(Block, SignedCheckpoint)>,
}

/// One run of the sequencer pipeline over `batches` (one block each), with a fresh sled store
/// in `dir`.
pub fn pipeline(chain: &BenchChain, batches: Vec<Vec<Tx>>, dir: &Path) -> Result<PipelineRun> {
    let _ = std::fs::remove_dir_all(dir);
    let store = SledStore::open(dir).context("open the pipeline's store")?;
    store.put_genesis(&chain.genesis)?;
    store.flush()?;
    let mut state = LedgerState::from_genesis(&chain.genesis).map_err(|e| anyhow!("genesis: {e}"))?;
    let mut mempool = Mempool::new(&chain.genesis);
    let mut out = Vec::with_capacity(batches.len());
    let mut txs = 0usize;
    let mut gossip_bytes = 0usize;
    let start = Instant::now();
    for (b, batch) in batches.into_iter().enumerate() {
        for answer in mempool.submit_all(batch, &state) {
            answer.map_err(|e| anyhow!("the mempool refused a transfer: {e}"))?;
        }
        let candidates = mempool.take_block_candidates(&state, TXS_PER_BLOCK);
        let now = chain.genesis.genesis_time_ms + (b as u64 + 1) * BLOCK_STEP_MS;
        let (block, dropped) = state
            .produce_block(candidates, now, &chain.sequencer)
            .map_err(|e| anyhow!("produce a block: {e}"))?;
        if !dropped.is_empty() {
            return Err(anyhow!(
                "{} transfers dropped from block {}: {:?}",
                dropped.len(),
                b + 1,
                dropped[0].1
            ));
        }
        mempool.prune(&state);
        txs += block.txs.len();
        store.put_block(&block)?;
        let cp = state.checkpoint();
        let signed = SignedCheckpoint {
            checkpoint: cp,
            signature: cp.sign_sequencer(&chain.sequencer),
            cosignatures: vec![],
        };
        store.put_checkpoint(&signed)?;
        store.flush()?;
        let block_msg = GossipMsg::Block(block);
        gossip_bytes += block_msg.to_bytes().len();
        let cp_msg = GossipMsg::Checkpoint(signed);
        gossip_bytes += cp_msg.to_bytes().len();
        let (GossipMsg::Block(block), GossipMsg::Checkpoint(signed)) = (block_msg, cp_msg) else {
            unreachable!("built just above");
        };
        out.push((block, signed));
    }
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(gossip_bytes);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    Ok(PipelineRun {
        tx_per_s: txs as f64 / secs,
        txs,
        blocks: out,
    })
}

/// The blocks of `batches` made straight from the state (no mempool, no store): the chain an
/// audit replays. Not timed.
pub fn chain_of(chain: &BenchChain, batches: Vec<Vec<Tx>>) -> Result<PipelineRun> {
    let mut state = LedgerState::from_genesis(&chain.genesis).map_err(|e| anyhow!("genesis: {e}"))?;
    let mut out = Vec::with_capacity(batches.len());
    let mut txs = 0usize;
    for (b, batch) in batches.into_iter().enumerate() {
        let now = chain.genesis.genesis_time_ms + (b as u64 + 1) * BLOCK_STEP_MS;
        let (block, dropped) = state
            .produce_block(batch, now, &chain.sequencer)
            .map_err(|e| anyhow!("produce a block: {e}"))?;
        if !dropped.is_empty() {
            return Err(anyhow!(
                "{} transfers dropped from block {}",
                dropped.len(),
                b + 1
            ));
        }
        txs += block.txs.len();
        let cp = state.checkpoint();
        let signed = SignedCheckpoint {
            checkpoint: cp,
            signature: cp.sign_sequencer(&chain.sequencer),
            cosignatures: vec![],
        };
        out.push((block, signed));
    }
    Ok(PipelineRun {
        tx_per_s: f64::NAN,
        txs,
        blocks: out,
    })
}

/// The export of a chain, each checkpoint cosigned by two of the three witnesses (so
/// that it is witnessed), as `paychan ledger export` writes one.
pub fn export(chain: &BenchChain, run: &PipelineRun) -> Result<Vec<u8>> {
    let mut w = ExportWriter::new(Vec::new(), &chain.genesis)?;
    for (block, signed) in &run.blocks {
        w.write_block(block)?;
        let mut cp = signed.clone();
        cp.cosignatures = chain.witnesses[..2]
            .iter()
            .map(|k| cp.checkpoint.cosign(k, COSIGN_TIME_S))
            .collect();
        w.write_checkpoint(&cp)?;
    }
    Ok(w.finish()?)
}

/// Audits `bytes` pinned to the chain id; returns transactions per second.
pub fn audit(chain: &BenchChain, bytes: &[u8], txs: usize) -> Result<f64> {
    let start = Instant::now();
    let auditor = audit_export(bytes, Pin::ChainId(chain.genesis.chain_id()), None)
        .map_err(|f| anyhow!("the audit failed: {}", f.error))?;
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(auditor);
    Ok(txs as f64 / secs)
}

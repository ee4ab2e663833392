//! Signatures checked ahead of the rules, in batches and on every core: what the sequencer
//! admits ([`CheckedTx`]) and the blocks a replayer applies ([`CheckedBlock`]).
//!
//! A transaction's *own* signatures are those that need no ledger state
//! ([`Tx::verify_own_signature`]: a transfer's, a deposit's, an open's two, a unilateral
//! close's, a credit grant's, a repayment's). They can be checked before the state is at
//! hand, many at once: a batch is several times cheaper per signature than one check
//! (PROTOCOL.md §4.3), and independent batches run on every core. The signatures that need
//! the state (a cooperative close's, the balance proofs in a close or an update) are left to
//! the rules.
//!
//! The checked types can only be made by checking, so the rules skip exactly what was
//! checked. A batch that fails is checked again signature by signature, so each transaction
//! or block gets its own answer, the same as the reference path's. Deterministic: the answer
//! does not depend on the number of threads or the batch boundaries.

use paychan_protocol::crypto::BatchVerifier;
use paychan_protocol::{Block, PublicKey, Tx};
use rayon::prelude::*;

use crate::error::BlockError;
use crate::state::LedgerState;
use crate::tx::{Sigs, TxEffect};

/// Signatures per batch at most: large enough that a batch costs little per signature, small
/// enough that a few batches keep every core busy.
const BATCH_MAX: usize = 256;
/// Fewer than this many signatures are checked one by one (a batch has a fixed cost).
const BATCH_MIN: usize = 4;
/// Signatures per batch of consecutive blocks in [`CheckedBlock::check_all`], about.
pub const BLOCK_GROUP_SIGNATURES: usize = 8_192;

/// A transaction and what the check of its own signatures found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckedTx {
    tx: Tx,
    /// `None`: not checked (the rules check it). `Some(valid)`: checked.
    own: Option<bool>,
}

impl CheckedTx {
    /// `tx`, its own signatures checked alone.
    pub fn check(tx: Tx) -> CheckedTx {
        let own = Some(tx.verify_own_signature().is_ok());
        CheckedTx { tx, own }
    }

    /// Every transaction's own signatures, checked in batches on every core. The answers are
    /// in the order given, and are the same as [`CheckedTx::check`]'s one by one.
    pub fn check_all(txs: Vec<Tx>) -> Vec<CheckedTx> {
        let valid = check_in_batches(
            &txs,
            |tx, batch| tx.queue_own_signature(batch),
            |tx| tx.verify_own_signature().is_ok(),
        );
        txs.into_iter()
            .zip(valid)
            .map(|(tx, v)| CheckedTx { tx, own: Some(v) })
            .collect()
    }

    /// A transaction the mempool admitted: its own signatures verified at admission.
    pub(crate) fn admitted(tx: Tx) -> CheckedTx {
        CheckedTx { tx, own: Some(true) }
    }

    /// The transaction.
    pub fn tx(&self) -> &Tx {
        &self.tx
    }

    /// The transaction, for those who no longer need the check.
    pub fn into_tx(self) -> Tx {
        self.tx
    }

    /// `Some(true)` if its own signatures verified, `Some(false)` if one did not, `None` if
    /// they were not checked.
    pub fn own_signatures(&self) -> Option<bool> {
        self.own
    }

    /// How the rules treat its signatures: skip the own ones if they verified, else check
    /// all (so an invalid one is refused at the same point, with the same error, as on the
    /// reference path).
    pub(crate) fn sigs(&self) -> Sigs {
        if self.own == Some(true) {
            Sigs::own_checked()
        } else {
            Sigs::now()
        }
    }
}

impl PartialEq<Tx> for CheckedTx {
    /// The same transaction, whatever was checked.
    fn eq(&self, other: &Tx) -> bool {
        self.tx == *other
    }
}

impl From<Tx> for CheckedTx {
    /// A transaction not checked yet: the rules check every signature.
    fn from(tx: Tx) -> CheckedTx {
        CheckedTx { tx, own: None }
    }
}

/// A block and whether its header's signature and its transactions' own signatures verified.
#[derive(Clone, Debug)]
pub struct CheckedBlock {
    block: Block,
    /// The key the header's signature was checked against.
    sequencer: PublicKey,
    valid: bool,
}

impl CheckedBlock {
    /// Checks the header's signature by `sequencer` and every transaction's own signatures,
    /// as one batch.
    pub fn check(block: Block, sequencer: &PublicKey) -> CheckedBlock {
        let mut batch = BatchVerifier::new();
        queue_block(&block, sequencer, &mut batch);
        let valid = batch.verify().is_ok();
        CheckedBlock {
            block,
            sequencer: *sequencer,
            valid,
        }
    }

    /// [`CheckedBlock::check`] for each block, in order, the same answers. Consecutive blocks
    /// are checked together, up to about [`BLOCK_GROUP_SIGNATURES`] signatures per batch, the
    /// batches spread over every core: a key that signs in several blocks of one batch is
    /// decoded and multiplied once. A batch that fails has each of its blocks checked alone.
    pub fn check_all(blocks: Vec<Block>, sequencer: &PublicKey) -> Vec<CheckedBlock> {
        CheckedBlock::check_all_in_batches_of(blocks, sequencer, BLOCK_GROUP_SIGNATURES)
    }

    /// [`CheckedBlock::check_all`] with batches of about `signatures` signatures (a block is
    /// never split; one larger than that is a batch of its own).
    pub fn check_all_in_batches_of(
        blocks: Vec<Block>,
        sequencer: &PublicKey,
        signatures: usize,
    ) -> Vec<CheckedBlock> {
        let mut groups: Vec<Vec<Block>> = Vec::new();
        let mut in_group = 0usize;
        for b in blocks {
            let sigs = b.txs.len() + 1;
            match groups.last_mut() {
                Some(g) if in_group + sigs <= signatures => {
                    in_group += sigs;
                    g.push(b);
                }
                _ => {
                    in_group = sigs;
                    groups.push(vec![b]);
                }
            }
        }
        groups
            .into_par_iter()
            .flat_map_iter(|group| {
                let mut batch = BatchVerifier::new();
                for b in &group {
                    queue_block(b, sequencer, &mut batch);
                }
                let all_valid = group.len() > 1 && batch.verify().is_ok();
                group
                    .into_iter()
                    .map(|block| {
                        if all_valid {
                            CheckedBlock {
                                block,
                                sequencer: *sequencer,
                                valid: true,
                            }
                        } else {
                            CheckedBlock::check(block, sequencer)
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The block, for those who no longer need the check.
    pub fn into_block(self) -> Block {
        self.block
    }

    /// Whether the header's and the own signatures verified.
    pub fn is_valid(&self) -> bool {
        self.valid
    }
}

fn queue_block(block: &Block, sequencer: &PublicKey, batch: &mut BatchVerifier) {
    block.header.queue(sequencer, &block.signature, batch);
    for tx in &block.txs {
        tx.queue_own_signature(batch);
    }
}

impl LedgerState {
    /// [`LedgerState::apply_block`] for a block checked ahead: if its header's and own
    /// signatures verified, the rules skip them and batch the rest (the signatures that need
    /// the state); otherwise, or if anything fails, the block is applied on the reference
    /// path, which names the first failure exactly. The answer, and the state after it, are
    /// the same as [`LedgerState::apply_block`]'s (a block checked against a key other than
    /// this chain's sequencer takes the reference path).
    pub fn apply_checked_block(&mut self, checked: &CheckedBlock) -> Result<Vec<TxEffect>, BlockError> {
        if checked.valid && self.genesis().sequencer == checked.sequencer {
            if let Ok(effects) = self.apply_block_sigs(&checked.block, &mut Sigs::block_checked()) {
                return Ok(effects);
            }
        }
        self.apply_block(&checked.block)
    }
}

/// Checks `items` in batches spread over every core; a batch that fails has each of its items
/// checked alone by `alone`. Returns each item's answer, in order.
fn check_in_batches<T: Sync>(
    items: &[T],
    queue: impl Fn(&T, &mut BatchVerifier) + Sync,
    alone: impl Fn(&T) -> bool + Sync,
) -> Vec<bool> {
    if items.len() < BATCH_MIN {
        return items.iter().map(&alone).collect();
    }
    let threads = rayon::current_num_threads().max(1);
    let chunk = items.len().div_ceil(threads).clamp(BATCH_MIN, BATCH_MAX);
    items
        .par_chunks(chunk)
        .flat_map_iter(|chunk| {
            let mut batch = BatchVerifier::new();
            for item in chunk {
                queue(item, &mut batch);
            }
            let answers: Vec<bool> = if batch.verify().is_ok() {
                vec![true; chunk.len()]
            } else {
                chunk.iter().map(&alone).collect()
            };
            answers
        })
        .collect()
}

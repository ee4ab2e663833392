//! Blocks: the sequencer builds them, replicas verify and apply them, auditors replay them.

use std::collections::BTreeSet;

use paychan_protocol::limits::BLOCK_TIME_AHEAD_MS_MAX;
use paychan_protocol::merkle;
use paychan_protocol::{Block, BlockHeader, Genesis, Keypair, Tx};

use crate::checked::CheckedTx;
use crate::error::{BlockError, ChainError, Error, TxError};
use crate::state::LedgerState;
use crate::tx::{tx_hashes, Sigs, TxEffect};

/// How [`LedgerState::apply_block_with`] checks a block's signatures. Both accept and refuse
/// exactly the same blocks with exactly the same errors; they differ only in cost.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Signatures {
    /// Each signature verified on its own when the rules meet it (the reference path).
    #[default]
    EachAlone,
    /// Every signature of the block (header, transactions, embedded balance proofs) queued
    /// into one [`paychan_protocol::crypto::BatchVerifier`] batch, verified once before the
    /// block is committed. If anything fails (the batch or any other check), the block is
    /// checked again on the reference path, which names the first failure exactly as
    /// [`Signatures::EachAlone`] would.
    Batch,
}

/// The time the sequencer gives its next block: its clock `now_ms`, clamped to
/// `[prev_ms, prev_ms + max_step_ms]` so that ledger time never goes backwards and catches up
/// only step by step after an outage.
pub fn next_block_time(prev_ms: u64, now_ms: u64, max_step_ms: u64) -> u64 {
    now_ms.clamp(prev_ms, prev_ms.saturating_add(max_step_ms))
}

/// What [`LedgerState::build_block`] made: the block, the state after it, and the candidates
/// left out with the reason (those whose error is [`crate::ErrorClass::Retryable`], such as
/// [`TxError::BlockFull`], may be offered again).
pub type BuiltBlock = (Block, LedgerState, Vec<(Tx, TxError)>);

impl LedgerState {
    /// The sequencer side, leaving `self` untouched: see [`LedgerState::produce_block`]. Costs
    /// a clone of the state (the log included); a long-running sequencer should prefer
    /// `produce_block`.
    pub fn build_block<C: Into<CheckedTx>>(
        &self,
        candidates: impl IntoIterator<Item = C>,
        now_ms: u64,
        sequencer: &Keypair,
    ) -> Result<BuiltBlock, BlockError> {
        let mut next = self.clone();
        let (block, dropped) = next.produce_block(candidates, now_ms, sequencer)?;
        Ok((block, next, dropped))
    }

    /// The sequencer side, in place: makes the next block from `candidates` and applies it.
    ///
    /// The block time is [`next_block_time`]`(self.time_ms(), now_ms, max_time_step_ms)`.
    /// Dispute transactions are taken first, then the others, each group in the order given;
    /// each candidate is applied at the block time and kept if valid, up to
    /// `max_txs_per_block`. Every candidate not in the block is returned with its reason
    /// ([`TxError::BlockFull`] for those not tried). An empty block is a valid heartbeat.
    ///
    /// Fails only if `sequencer` is not the genesis sequencer (then nothing changes).
    pub fn produce_block<C: Into<CheckedTx>>(
        &mut self,
        candidates: impl IntoIterator<Item = C>,
        now_ms: u64,
        sequencer: &Keypair,
    ) -> Result<(Block, Vec<(Tx, TxError)>), BlockError> {
        if sequencer.public() != self.genesis.sequencer {
            return Err(BlockError::NotSequencer(sequencer.public()));
        }
        let time_ms = next_block_time(self.time_ms, now_ms, self.genesis.max_time_step_ms);
        let max = self.genesis.max_txs_per_block as usize;
        let (disputes, others): (Vec<CheckedTx>, Vec<CheckedTx>) = candidates
            .into_iter()
            .map(Into::into)
            .partition(|c| c.tx().is_dispute());
        let rules = self.rules();
        self.books.mark_defaults(time_ms);
        let mut txs = Vec::new();
        let mut leaves = Vec::new();
        let mut dropped = Vec::new();
        for candidate in disputes.into_iter().chain(others) {
            let mut sigs = candidate.sigs();
            let tx = candidate.into_tx();
            if txs.len() >= max {
                dropped.push((tx, TxError::BlockFull));
                continue;
            }
            let (id, leaf) = tx_hashes(&tx);
            let applied = self
                .refuse_included(&id)
                .and_then(|()| self.books.apply_with(&rules, &tx, time_ms, &mut sigs));
            match applied {
                Ok(_) => {
                    self.append_log(id, leaf);
                    leaves.push(leaf);
                    txs.push(tx);
                }
                Err(e) => dropped.push((tx, e)),
            }
        }
        let header = BlockHeader {
            chain_id: self.chain_id,
            height: self.height.checked_add(1).expect("heights never reach u64::MAX"),
            prev_hash: self.last_hash,
            time_ms,
            tx_root: merkle::root_from_leaf_hashes(&leaves),
            log_size: self.log.size(),
            log_root: self.log.root(),
            state_root: self.books.state_root(),
        };
        let signature = header.sign(sequencer);
        self.height = header.height;
        self.time_ms = time_ms;
        self.last_hash = header.hash();
        Ok((
            Block {
                header,
                signature,
                txs,
            },
            dropped,
        ))
    }

    /// The replica side: verifies `block` as the next block and applies it. Atomic: an `Err`
    /// changes nothing.
    ///
    /// Checks, in order: chain id; height is the next one; `prev_hash` is the last block's hash
    /// (the chain id before block 1); the sequencer's signature; time is not before the previous
    /// block's and at most `max_time_step_ms` after it; at most `max_txs_per_block`
    /// transactions; no dispute after a non-dispute; every transaction valid in order at the
    /// block's time; and the header's tx root, log size, log root and state root equal what
    /// applying gives. Returns what each transaction did.
    pub fn apply_block(&mut self, block: &Block) -> Result<Vec<TxEffect>, BlockError> {
        self.apply_block_inner(block, &mut Sigs::now(), None)
    }

    /// [`LedgerState::apply_block`] by a live replica whose clock reads `now_ms`: also refuses,
    /// right after the signature check, a block whose time is more than
    /// [`BLOCK_TIME_AHEAD_MS_MAX`] ahead of that clock ([`BlockError::FromTheFuture`],
    /// retryable: the same block applies once the clock has caught up). Without it a sequencer
    /// could run ledger time ahead of real time and end challenge windows early. Not a replay
    /// rule: auditors and startup replay use [`LedgerState::apply_block`].
    pub fn apply_block_at(&mut self, block: &Block, now_ms: u64) -> Result<Vec<TxEffect>, BlockError> {
        self.apply_block_inner(block, &mut Sigs::now(), Some(now_ms))
    }

    /// [`LedgerState::apply_block`] with the signatures checked as `signatures` says. The
    /// answer, and the state after it, are the same for both.
    pub fn apply_block_with(
        &mut self,
        block: &Block,
        signatures: Signatures,
    ) -> Result<Vec<TxEffect>, BlockError> {
        match signatures {
            Signatures::EachAlone => self.apply_block(block),
            Signatures::Batch => {
                // `apply_block_inner` commits nothing unless it succeeds, so the reference path
                // starts from the same state.
                match self.apply_block_inner(block, &mut Sigs::deferred(), None) {
                    Ok(effects) => Ok(effects),
                    Err(_) => self.apply_block(block),
                }
            }
        }
    }

    /// [`LedgerState::apply_block`] with the signatures checked as `sigs` says.
    pub(crate) fn apply_block_sigs(
        &mut self,
        block: &Block,
        sigs: &mut Sigs,
    ) -> Result<Vec<TxEffect>, BlockError> {
        self.apply_block_inner(block, sigs, None)
    }

    fn apply_block_inner(
        &mut self,
        block: &Block,
        sigs: &mut Sigs,
        now_ms: Option<u64>,
    ) -> Result<Vec<TxEffect>, BlockError> {
        let h = &block.header;
        if h.chain_id != self.chain_id {
            return Err(BlockError::WrongChain {
                expected: self.chain_id,
                got: h.chain_id,
            });
        }
        let expected = self.height.saturating_add(1);
        if h.height != expected {
            return Err(BlockError::WrongHeight {
                expected,
                got: h.height,
            });
        }
        if h.prev_hash != self.last_hash {
            return Err(BlockError::WrongPrevHash {
                expected: self.last_hash,
                got: h.prev_hash,
            });
        }
        sigs.header(h, &self.genesis.sequencer, &block.signature)
            .map_err(|_| BlockError::BadSignature)?;
        if let Some(now_ms) = now_ms {
            let ahead_ms = h.time_ms.saturating_sub(now_ms);
            if ahead_ms > BLOCK_TIME_AHEAD_MS_MAX {
                return Err(BlockError::FromTheFuture {
                    time_ms: h.time_ms,
                    ahead_ms,
                    max_ms: BLOCK_TIME_AHEAD_MS_MAX,
                });
            }
        }
        let max_step = self.genesis.max_time_step_ms;
        if h.time_ms < self.time_ms {
            return Err(BlockError::TimeBackwards {
                prev: self.time_ms,
                got: h.time_ms,
            });
        }
        if h.time_ms > self.time_ms.saturating_add(max_step) {
            return Err(BlockError::TimeStepTooLarge {
                prev: self.time_ms,
                got: h.time_ms,
                max_step,
            });
        }
        let max = self.genesis.max_txs_per_block;
        if block.txs.len() > max as usize {
            return Err(BlockError::TooManyTxs {
                count: block.txs.len(),
                max,
            });
        }
        if let Some(index) = block
            .txs
            .iter()
            .skip_while(|tx| tx.is_dispute())
            .position(Tx::is_dispute)
        {
            let first_other = block.txs.iter().take_while(|tx| tx.is_dispute()).count();
            return Err(BlockError::DisputeAfterNonDispute {
                index: first_other + index,
            });
        }

        // Work on copies of the books and of the log's right edge, so that a refusal at any
        // point leaves `self` as it was.
        let rules = self.rules();
        let mut books = self.books.clone();
        books.mark_defaults(h.time_ms);
        let mut frontier = self.frontier.clone();
        let mut ids = Vec::with_capacity(block.txs.len());
        let mut seen = BTreeSet::new();
        let mut leaves = Vec::with_capacity(block.txs.len());
        let mut effects = Vec::with_capacity(block.txs.len());
        for (index, tx) in block.txs.iter().enumerate() {
            let fail = |error| BlockError::Tx { index, error };
            let (id, leaf) = tx_hashes(tx);
            self.refuse_included(&id).map_err(fail)?;
            if !seen.insert(id) {
                // Unreachable in practice (a transaction never applies twice), but it keeps
                // the index one-to-one whatever the rules become.
                let earlier = ids.iter().position(|x| *x == id).unwrap_or(0) as u64;
                return Err(fail(TxError::AlreadyIncluded {
                    index: self.log.size().saturating_add(earlier),
                }));
            }
            effects.push(books.apply_with(&rules, tx, h.time_ms, sigs).map_err(fail)?);
            frontier.push(leaf);
            ids.push(id);
            leaves.push(leaf);
        }
        if h.tx_root != merkle::root_from_leaf_hashes(&leaves) {
            return Err(BlockError::TxRootMismatch);
        }
        if h.log_size != frontier.size() {
            return Err(BlockError::LogSizeMismatch {
                expected: frontier.size(),
                got: h.log_size,
            });
        }
        if h.log_root != frontier.root() {
            return Err(BlockError::LogRootMismatch);
        }
        if h.state_root != books.state_root() {
            return Err(BlockError::StateRootMismatch);
        }
        sigs.finish().map_err(|_| BlockError::BadSignature)?;

        self.books = books;
        for (id, leaf) in ids.into_iter().zip(leaves) {
            self.append_log(id, leaf);
        }
        debug_assert_eq!(self.frontier, frontier);
        self.height = h.height;
        self.time_ms = h.time_ms;
        self.last_hash = h.hash();
        Ok(effects)
    }
}

/// Replays a chain from its genesis, verifying every block: what auditors and catching-up
/// replicas run. Returns the final state, or the height (position) of the first block that
/// fails (0 if the genesis itself is invalid) and why.
pub fn verify_chain<'a>(
    genesis: &Genesis,
    blocks: impl IntoIterator<Item = &'a Block>,
) -> Result<LedgerState, ChainError> {
    let mut state = LedgerState::from_genesis(genesis).map_err(|e| ChainError {
        height: 0,
        error: Error::Genesis(e),
    })?;
    for block in blocks {
        state.apply_block(block).map_err(|e| ChainError {
            height: state.height().saturating_add(1),
            error: Error::Block(e),
        })?;
    }
    Ok(state)
}

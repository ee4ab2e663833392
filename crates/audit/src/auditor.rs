//! The streaming auditor: a genesis, then blocks and checkpoints in order, every rule checked
//! by replay under the ledger crate's own rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use paychan_ledger::{
    verify_checkpoint_consistency, BlockError, CheckedBlock, CheckpointError, CheckpointStatus, ErrorClass,
    LedgerState, Signatures, TxEffect,
};
use paychan_protocol::merkle;
use paychan_protocol::{Block, Checkpoint, Genesis, Hash32, SignedCheckpoint, Tx};

use crate::error::{AuditError, Check};
use crate::report::{Balances, ChannelCounts, CheckpointSummary, Report, TxCounts};

/// Most checkpoints held ahead of the blocks. An honest stream puts each checkpoint next to
/// its block; this bounds what a hostile one can make the auditor keep.
pub const HELD_CHECKPOINTS_MAX: usize = 256;

/// What the genesis must be. A made-up ledger has its own genesis, hence its own chain id:
/// pinning is what makes an audit say something about *the* ledger.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pin {
    /// The chain id (the genesis hash) published out of band.
    ChainId(Hash32),
    /// The genesis itself.
    Genesis(Box<Genesis>),
}

impl Pin {
    fn chain_id(&self) -> Hash32 {
        match self {
            Pin::ChainId(id) => *id,
            Pin::Genesis(g) => g.chain_id(),
        }
    }
}

/// Counters of what was replayed.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    blocks: u64,
    by_kind: TxCounts,
    channels: ChannelCounts,
    checkpoints: u64,
    checkpoints_matched: u64,
}

/// Verifies a ledger from its objects, trusting nobody who handed them over.
///
/// Feed it blocks in order with [`Auditor::push_block`] and signed checkpoints with
/// [`Auditor::push_checkpoint`] (each before or right after its block); every call either
/// verifies the object completely or names the first failure. A block the rules refuse
/// changes nothing; a block they accept is replayed even if a checkpoint at its height then
/// disagrees with it (the error names that checkpoint, and [`Auditor::report`] the height). [`Auditor::report`] says what was verified. It keeps the ledger state and nothing
/// per block (a bounded number of checkpoints ahead of the blocks aside).
#[derive(Clone, Debug)]
pub struct Auditor {
    state: LedgerState,
    signatures: Signatures,
    stats: Stats,
    newest: Option<CheckpointSummary>,
    newest_witnessed: Option<CheckpointSummary>,
    /// The last checkpoint compared with the replay: the next one must extend it.
    last_matched: Option<Checkpoint>,
    /// Checkpoints ahead of the blocks, by height, held until their block is replayed.
    held: BTreeMap<u64, Vec<Checkpoint>>,
    held_count: usize,
    accepted: Option<(Checkpoint, bool)>,
    busy: Duration,
    /// When each account first appeared: the age factor of the credit score.
    first_seen: crate::score::FirstSeen,
}

impl Auditor {
    /// Checks the genesis (its rules, and that it is the pinned one) and starts at height 0.
    pub fn new(genesis: &Genesis, pin: Pin) -> Result<Auditor, AuditError> {
        let started = Instant::now();
        let expected = pin.chain_id();
        let found = genesis.chain_id();
        if expected != found {
            return Err(AuditError::NotPinned {
                expected: expected.to_hex(),
                found: found.to_hex(),
            });
        }
        let state = LedgerState::from_genesis(genesis).map_err(AuditError::Genesis)?;
        Ok(Auditor {
            state,
            signatures: Signatures::Batch,
            stats: Stats::default(),
            newest: None,
            newest_witnessed: None,
            last_matched: None,
            held: BTreeMap::new(),
            held_count: 0,
            accepted: None,
            busy: started.elapsed(),
            first_seen: crate::score::FirstSeen::from_genesis(genesis),
        })
    }

    /// Checks block signatures one by one instead of in one batch per block (the same answer;
    /// for comparison and benchmarks).
    pub fn with_signatures(mut self, signatures: Signatures) -> Auditor {
        self.signatures = signatures;
        self
    }

    /// Gives the auditor the checkpoint it accepted in an earlier audit (its saved state). Its
    /// signatures are checked now; when the replay reaches its height, the replayed block must
    /// give exactly it (log size, log root and block hash), or the audit fails: the ledger was
    /// rewritten since, however well the new history is signed.
    pub fn with_accepted(mut self, accepted: &SignedCheckpoint) -> Result<Auditor, AuditError> {
        let cp = accepted.checkpoint;
        self.verify_signatures(accepted)
            .map_err(|check| AuditError::Accepted {
                height: cp.height,
                check,
            })?;
        self.accepted = Some((cp, false));
        self.check_accepted_here()?;
        Ok(self)
    }

    /// The ledger state at the verified height.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// Height verified to.
    pub fn height(&self) -> u64 {
        self.state.height()
    }

    /// The credit score of `account` at the verified height ([`crate::score`]).
    pub fn score(&self, account: &paychan_protocol::PublicKey) -> crate::score::Score {
        crate::score::score(&self.state, &self.first_seen, account)
    }

    /// Verifies `block` as the next block: every rule of the ledger by replay (signatures in
    /// one batch), conservation after it, then every held checkpoint at its height.
    pub fn push_block(&mut self, block: &Block) -> Result<(), AuditError> {
        let started = Instant::now();
        let result = self.push_block_inner(block);
        self.busy += started.elapsed();
        result
    }

    /// [`Auditor::push_block`] for a block whose header and own transaction signatures were
    /// checked ahead ([`paychan_ledger::CheckedBlock`], e.g. on other cores while the previous
    /// blocks were replayed): the same answer, the same state after it.
    pub fn push_checked_block(&mut self, block: &CheckedBlock) -> Result<(), AuditError> {
        let started = Instant::now();
        let result = self.push_block_with(block.block(), Some(block));
        self.busy += started.elapsed();
        result
    }

    /// Whether blocks are worth checking ahead: the batch path (the default). On the
    /// one-by-one path ([`Auditor::with_signatures`]) every signature is checked in the replay.
    pub fn checks_ahead(&self) -> bool {
        self.signatures == Signatures::Batch
    }

    fn push_block_inner(&mut self, block: &Block) -> Result<(), AuditError> {
        self.push_block_with(block, None)
    }

    fn push_block_with(&mut self, block: &Block, checked: Option<&CheckedBlock>) -> Result<(), AuditError> {
        let height = self.state.height().saturating_add(1);
        let effects = match checked {
            Some(checked) => apply_checked_block(&mut self.state, checked)?,
            None => apply_block(&mut self.state, block, self.signatures)?,
        };
        self.first_seen.observe(block);
        let supply = self.state.genesis_supply();
        let found: u128 = self
            .state
            .accounts()
            .map(|(_, a)| a.balance as u128)
            .sum::<u128>()
            + self
                .state
                .channels()
                .filter(|(_, c)| c.is_live())
                .map(|(_, c)| c.deposit_a as u128 + c.deposit_b as u128)
                .sum::<u128>();
        if found != supply as u128 || self.state.total_value() != supply {
            return Err(AuditError::Conservation {
                height,
                expected: supply,
                found,
            });
        }
        self.count(block, &effects);
        self.check_accepted_here()?;
        if let Some(held) = self.held.remove(&height) {
            self.held_count -= held.len();
            for cp in held {
                self.match_checkpoint(&cp)?;
            }
        }
        Ok(())
    }

    fn count(&mut self, block: &Block, effects: &[TxEffect]) {
        let s = &mut self.stats;
        s.blocks += 1;
        for tx in &block.txs {
            let k = &mut s.by_kind;
            match tx {
                Tx::Transfer { .. } => k.transfer += 1,
                Tx::Open(_) => k.open += 1,
                Tx::Deposit { .. } => k.deposit += 1,
                Tx::CoopClose(_) => k.coop_close += 1,
                Tx::UnilateralClose { .. } => k.unilateral_close += 1,
                Tx::Update(_) => k.update += 1,
                Tx::Settle(_) => k.settle += 1,
                Tx::CreditGrant { .. } => k.credit_grant += 1,
                Tx::Repay { .. } => k.repay += 1,
            }
        }
        for e in effects {
            let c = &mut s.channels;
            match e {
                TxEffect::Opened { .. } => c.opened += 1,
                TxEffect::CloseStarted { .. } => c.close_started += 1,
                TxEffect::PaidOut {
                    cooperative: true, ..
                } => c.closed += 1,
                TxEffect::PaidOut {
                    cooperative: false, ..
                } => c.settled += 1,
                TxEffect::Transferred { .. }
                | TxEffect::Deposited { .. }
                | TxEffect::Updated { .. }
                | TxEffect::CreditGranted { .. }
                | TxEffect::Repaid { .. } => {}
            }
        }
    }
}

/// Applies `block` to `state` under the ledger rules (`LedgerState::apply_block_with`), naming
/// the first failure as the auditor does; a refused block changes nothing. The one block
/// check shared by the auditor, the offline reader and the client's view of a remote ledger.
pub fn apply_block(
    state: &mut LedgerState,
    block: &Block,
    signatures: Signatures,
) -> Result<Vec<TxEffect>, AuditError> {
    apply_block_classified(state, block, signatures).map_err(|r| r.error)
}

/// [`apply_block`] for a block checked ahead (`LedgerState::apply_checked_block`): the same
/// answer, the same failure named.
pub fn apply_checked_block(
    state: &mut LedgerState,
    checked: &CheckedBlock,
) -> Result<Vec<TxEffect>, AuditError> {
    let height = state.height().saturating_add(1);
    state
        .apply_checked_block(checked)
        .map_err(|error| explain_block(state, height, checked.block(), error))
}

/// A block the ledger rules refuse: what the refusal means for whoever sent it, and the
/// precise failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Retryable (a gap, a block not yet applicable), rejected or a violation of the rules.
    pub class: ErrorClass,
    /// The first failure, named as the auditor names it.
    pub error: AuditError,
}

/// [`apply_block_classified`] for a live replica with a clock: the ledger rules plus the
/// replica's own rule that a block's time is not too far ahead of `now_ms`
/// (`LedgerState::apply_block_at`; a replay has no such rule).
pub fn apply_block_at_classified(
    state: &mut LedgerState,
    block: &Block,
    now_ms: u64,
) -> Result<Vec<TxEffect>, Refused> {
    let height = state.height().saturating_add(1);
    state.apply_block_at(block, now_ms).map_err(|error| Refused {
        class: error.class(),
        error: explain_block(state, height, block, error),
    })
}

/// [`apply_block`] for a live replica, which must also know how to treat a block's sender.
pub fn apply_block_classified(
    state: &mut LedgerState,
    block: &Block,
    signatures: Signatures,
) -> Result<Vec<TxEffect>, Refused> {
    let height = state.height().saturating_add(1);
    state
        .apply_block_with(block, signatures)
        .map_err(|error| Refused {
            class: error.class(),
            error: explain_block(state, height, block, error),
        })
}

/// Turns a refusal of the ledger into the precise failure: for the roots, recomputes what
/// the block should have said (only on this error path, from a copy of the state).
fn explain_block(state: &LedgerState, height: u64, block: &Block, error: BlockError) -> AuditError {
    let h = &block.header;
    let mismatch = |field, expected: String, found: String| AuditError::Block {
        height,
        check: Check::Mismatch {
            field,
            expected,
            found,
        },
    };
    match error {
        BlockError::Tx { index, error } => AuditError::Tx { height, index, error },
        BlockError::WrongChain { expected, got } => mismatch("chain_id", expected.to_hex(), got.to_hex()),
        BlockError::WrongHeight { expected, got } => {
            mismatch("height", expected.to_string(), got.to_string())
        }
        BlockError::WrongPrevHash { expected, got } => mismatch("prev_hash", expected.to_hex(), got.to_hex()),
        BlockError::BadSignature => AuditError::Block {
            height,
            check: Check::SequencerSignature,
        },
        BlockError::TxRootMismatch => {
            let leaves: Vec<Hash32> = block.txs.iter().map(Tx::leaf_hash).collect();
            mismatch(
                "tx_root",
                merkle::root_from_leaf_hashes(&leaves).to_hex(),
                h.tx_root.to_hex(),
            )
        }
        BlockError::LogSizeMismatch { expected, got } => {
            mismatch("log_size", expected.to_string(), got.to_string())
        }
        BlockError::LogRootMismatch | BlockError::StateRootMismatch => {
            let mut replay = state.clone();
            let applied = block.txs.iter().all(|tx| replay.apply_tx(tx, h.time_ms).is_ok());
            let (field, expected, found) = if matches!(error, BlockError::LogRootMismatch) {
                ("log_root", replay.log_root(), h.log_root)
            } else {
                ("state_root", replay.state_root(), h.state_root)
            };
            if applied {
                mismatch(field, expected.to_hex(), found.to_hex())
            } else {
                AuditError::Block {
                    height,
                    check: Check::Rule(error.to_string()),
                }
            }
        }
        other => AuditError::Block {
            height,
            check: Check::Rule(other.to_string()),
        },
    }
}

impl Auditor {
    /// Verifies a signed checkpoint: the sequencer's signature, every cosignature present
    /// (each verifies and comes from a distinct genesis witness), then, once its block is
    /// replayed, that it states that block (log size, log root, block hash) and extends the
    /// previous checkpoint (consistency proof from the replayed log). A checkpoint ahead of
    /// the blocks is held until its block comes; one behind the last replayed block is refused
    /// (its block hash can no longer be compared).
    pub fn push_checkpoint(&mut self, signed: &SignedCheckpoint) -> Result<CheckpointStatus, AuditError> {
        let started = Instant::now();
        let result = self.push_checkpoint_inner(signed);
        self.busy += started.elapsed();
        result
    }

    fn push_checkpoint_inner(&mut self, signed: &SignedCheckpoint) -> Result<CheckpointStatus, AuditError> {
        let cp = signed.checkpoint;
        let fail = |check| AuditError::Checkpoint {
            height: cp.height,
            check,
        };
        let status = self.verify_signatures(signed).map_err(fail)?;
        let replayed = self.state.height();
        if cp.height < replayed {
            return Err(fail(Check::Late { replayed }));
        }
        if cp.height > replayed && self.held_count >= HELD_CHECKPOINTS_MAX {
            return Err(fail(Check::TooManyAhead {
                max: HELD_CHECKPOINTS_MAX,
            }));
        }
        if cp.height == replayed {
            self.match_checkpoint(&cp)?;
        } else {
            self.held.entry(cp.height).or_default().push(cp);
            self.held_count += 1;
        }
        self.stats.checkpoints += 1;
        let matched = cp.height == replayed;
        let summary = CheckpointSummary::new(&cp, status.cosigners, status.witnessed, matched);
        if self.newest.as_ref().is_none_or(|n| cp.height > n.height) {
            self.newest = Some(summary.clone());
        }
        if status.witnessed
            && self
                .newest_witnessed
                .as_ref()
                .is_none_or(|n| cp.height > n.height)
        {
            self.newest_witnessed = Some(summary);
        }
        Ok(status)
    }

    /// The checkpoint's own checks, with the failing cosignature named by position.
    fn verify_signatures(&self, signed: &SignedCheckpoint) -> Result<CheckpointStatus, Check> {
        let position = |key: &paychan_protocol::PublicKey, nth: usize| {
            signed
                .cosignatures
                .iter()
                .enumerate()
                .filter(|(_, c)| c.witness == *key)
                .nth(nth)
                .map_or(0, |(i, _)| i)
        };
        self.state.verify_checkpoint(signed).map_err(|e| match e {
            CheckpointError::WrongChain { expected, got } => Check::Mismatch {
                field: "chain_id",
                expected: expected.to_hex(),
                found: got.to_hex(),
            },
            CheckpointError::BadSequencerSignature => Check::SequencerSignature,
            CheckpointError::NotAWitness(key) => Check::NotAWitness {
                index: position(&key, 0),
                key: key.to_hex(),
            },
            CheckpointError::DuplicateWitness(w) => Check::DuplicateWitness {
                index: position(&w, 1),
                witness: w.to_hex(),
            },
            CheckpointError::BadCosignature(w) => Check::Cosignature {
                index: position(&w, 0),
                witness: w.to_hex(),
            },
            other => Check::Rule(other.to_string()),
        })
    }

    /// Compares a checkpoint at the replayed height with the replay, then checks that it
    /// extends the previous one.
    fn match_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), AuditError> {
        let fail = |check| AuditError::Checkpoint {
            height: cp.height,
            check,
        };
        compare(cp, &self.state.checkpoint()).map_err(fail)?;
        if let Some(older) = &self.last_matched {
            let path = self
                .state
                .consistency_proof(older.log_size, cp.log_size)
                .map_err(|e| fail(Check::Rule(e.to_string())))?;
            verify_checkpoint_consistency(older, cp, &path).map_err(|e| {
                fail(Check::Inconsistent {
                    older_height: older.height,
                    detail: e.to_string(),
                })
            })?;
        }
        self.last_matched = Some(*cp);
        self.stats.checkpoints_matched += 1;
        Ok(())
    }

    fn check_accepted_here(&mut self) -> Result<(), AuditError> {
        let Some((accepted, checked)) = &mut self.accepted else {
            return Ok(());
        };
        if *checked || accepted.height != self.state.height() {
            return Ok(());
        }
        let here = self.state.checkpoint();
        compare(accepted, &here).map_err(|check| AuditError::Accepted {
            height: accepted.height,
            check,
        })?;
        *checked = true;
        Ok(())
    }

    /// Checks, after the audit, that a checkpoint accepted earlier is consistent with what was
    /// verified: at the verified height it must equal the replay's checkpoint; below it, its log
    /// must be a prefix of the verified log (consistency proof from the replayed log, and its
    /// root equal to the replayed root at its size). A block hash below the verified height can
    /// only be compared during the replay ([`Auditor::with_accepted`]).
    pub fn check_accepted(&self, accepted: &Checkpoint) -> Result<(), AuditError> {
        let fail = |check| AuditError::Accepted {
            height: accepted.height,
            check,
        };
        let here = self.state.checkpoint();
        if accepted.height > here.height || accepted.log_size > here.log_size {
            return Err(fail(Check::Beyond {
                verified: here.height,
                log_size: here.log_size,
            }));
        }
        if accepted.height == here.height {
            return compare(accepted, &here).map_err(fail);
        }
        if accepted.chain_id != here.chain_id {
            return Err(fail(Check::Mismatch {
                field: "chain_id",
                expected: here.chain_id.to_hex(),
                found: accepted.chain_id.to_hex(),
            }));
        }
        let path = self
            .state
            .consistency_proof(accepted.log_size, here.log_size)
            .map_err(|e| fail(Check::Rule(e.to_string())))?;
        verify_checkpoint_consistency(accepted, &here, &path).map_err(|e| {
            fail(Check::Inconsistent {
                older_height: accepted.height,
                detail: e.to_string(),
            })
        })
    }

    /// Every account and channel at the verified height.
    pub fn balances(&self) -> Balances {
        Balances::of(&self.state)
    }

    /// What was verified so far.
    pub fn report(&self) -> Report {
        let s = &self.stats;
        let mut channels = s.channels;
        for (_, c) in self.state.channels().filter(|(_, c)| c.is_live()) {
            channels.live += 1;
            channels.locked += c.total();
        }
        let height = self.state.height();
        let behind = self
            .newest_witnessed
            .as_ref()
            .map_or(0, |w| w.height.saturating_sub(height));
        let mut newest = self.newest.clone();
        let mut newest_witnessed = self.newest_witnessed.clone();
        for n in [&mut newest, &mut newest_witnessed].into_iter().flatten() {
            n.matched = n.height <= height;
        }
        let transactions = s.by_kind.total();
        let secs = self.busy.as_secs_f64();
        Report {
            chain_id: self.state.chain_id().to_hex(),
            network: self.state.genesis().network.clone(),
            height,
            blocks: s.blocks,
            time_ms: self.state.time_ms(),
            log_size: self.state.log_size(),
            transactions,
            by_kind: s.by_kind,
            channels,
            accounts: self.state.accounts().count() as u64,
            supply: self.state.genesis_supply(),
            checkpoints: s.checkpoints,
            checkpoints_matched: s.checkpoints_matched,
            newest_checkpoint: newest,
            newest_witnessed,
            reaches_newest_witnessed: behind == 0,
            behind_newest_witnessed: behind,
            accepted_checked: self.accepted.map(|(_, checked)| checked),
            verify_ms: secs * 1e3,
            txs_per_s: if secs > 0.0 {
                transactions as f64 / secs
            } else {
                0.0
            },
        }
    }
}

/// Compares a claimed checkpoint with the replay's, field by field.
fn compare(claimed: &Checkpoint, replayed: &Checkpoint) -> Result<(), Check> {
    let hex = |field, expected: &Hash32, found: &Hash32| {
        if expected == found {
            Ok(())
        } else {
            Err(Check::Mismatch {
                field,
                expected: expected.to_hex(),
                found: found.to_hex(),
            })
        }
    };
    hex("chain_id", &replayed.chain_id, &claimed.chain_id)?;
    if claimed.log_size != replayed.log_size {
        return Err(Check::Mismatch {
            field: "log_size",
            expected: replayed.log_size.to_string(),
            found: claimed.log_size.to_string(),
        });
    }
    hex("log_root", &replayed.log_root, &claimed.log_root)?;
    hex("block_hash", &replayed.block_hash, &claimed.block_hash)
}

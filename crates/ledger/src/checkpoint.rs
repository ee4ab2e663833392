//! Checkpoints: the sequencer's signed commitment to the log, and the witnesses' cosignatures
//! that make it trustworthy to clients and auditors.

use std::collections::BTreeSet;

use paychan_protocol::limits::WITNESSES_MAX;
use paychan_protocol::merkle::{self, MerkleError};
use paychan_protocol::{Checkpoint, Cosignature, Genesis, Hash32, SignedCheckpoint};

use crate::error::CheckpointError;
use crate::state::LedgerState;

/// What a valid signed checkpoint is worth.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CheckpointStatus {
    /// At least the genesis threshold of distinct genesis witnesses cosigned it.
    pub witnessed: bool,
    /// Number of distinct valid cosignatures.
    pub cosigners: usize,
}

/// Verifies a signed checkpoint against the genesis: it names this chain, the sequencer's
/// signature verifies, and every cosignature present verifies and comes from a genesis witness
/// that appears only once (anything else is an error, not a cosignature that is skipped). It is
/// witnessed iff the number of cosigners reaches `witness_threshold`.
///
/// `genesis` is assumed valid ([`LedgerState::from_genesis`] accepted it). Hashes the genesis
/// for its chain id; [`LedgerState::verify_checkpoint`] reuses the cached one.
pub fn verify_checkpoint(
    genesis: &Genesis,
    signed: &SignedCheckpoint,
) -> Result<CheckpointStatus, CheckpointError> {
    verify_with(&genesis.chain_id(), genesis, signed)
}

fn verify_with(
    chain_id: &Hash32,
    genesis: &Genesis,
    signed: &SignedCheckpoint,
) -> Result<CheckpointStatus, CheckpointError> {
    let cp = &signed.checkpoint;
    if cp.chain_id != *chain_id {
        return Err(CheckpointError::WrongChain {
            expected: *chain_id,
            got: cp.chain_id,
        });
    }
    if signed.cosignatures.len() > WITNESSES_MAX {
        return Err(CheckpointError::TooManyCosignatures {
            count: signed.cosignatures.len(),
            max: WITNESSES_MAX,
        });
    }
    cp.verify_sequencer(&genesis.sequencer, &signed.signature)
        .map_err(|_| CheckpointError::BadSequencerSignature)?;
    let mut seen = BTreeSet::new();
    for c in &signed.cosignatures {
        check_cosigner(genesis, c)?;
        if !seen.insert(c.witness) {
            return Err(CheckpointError::DuplicateWitness(c.witness));
        }
        cp.verify_cosignature(c)
            .map_err(|_| CheckpointError::BadCosignature(c.witness))?;
    }
    Ok(CheckpointStatus {
        witnessed: seen.len() >= genesis.witness_threshold as usize,
        cosigners: seen.len(),
    })
}

fn check_cosigner(genesis: &Genesis, c: &Cosignature) -> Result<(), CheckpointError> {
    if genesis.witnesses.contains(&c.witness) {
        Ok(())
    } else {
        Err(CheckpointError::NotAWitness(c.witness))
    }
}

/// Adds a witness's cosignature to a signed checkpoint, for whoever gathers them. A cosignature
/// of a witness already present is ignored (returns `false`), so gathering from gossip never
/// produces a checkpoint that [`verify_checkpoint`] refuses for a duplicate. A cosignature that
/// does not verify, or from a non-witness, is an error and is not added.
pub fn add_cosignature(
    genesis: &Genesis,
    signed: &mut SignedCheckpoint,
    cosignature: Cosignature,
) -> Result<bool, CheckpointError> {
    check_cosigner(genesis, &cosignature)?;
    if signed
        .cosignatures
        .iter()
        .any(|c| c.witness == cosignature.witness)
    {
        return Ok(false);
    }
    signed
        .checkpoint
        .verify_cosignature(&cosignature)
        .map_err(|_| CheckpointError::BadCosignature(cosignature.witness))?;
    signed.cosignatures.push(cosignature);
    Ok(true)
}

/// Checks that `newer` extends `older`: same chain, height not lower, one checkpoint per
/// height, and `path` (from [`LedgerState::consistency_proof`]`(older.log_size,
/// newer.log_size)`) proves the older log a prefix of the newer (RFC 9162 §2.1.4.2). An older
/// empty log is a prefix of every log (its path is empty).
pub fn verify_checkpoint_consistency(
    older: &Checkpoint,
    newer: &Checkpoint,
    path: &[Hash32],
) -> Result<(), CheckpointError> {
    if older.chain_id != newer.chain_id {
        return Err(CheckpointError::WrongChain {
            expected: older.chain_id,
            got: newer.chain_id,
        });
    }
    if newer.height < older.height {
        return Err(CheckpointError::HeightRegressed {
            older: older.height,
            newer: newer.height,
        });
    }
    if newer.height == older.height && newer != older {
        return Err(CheckpointError::Equivocation { height: newer.height });
    }
    if older.log_size == 0 {
        // RFC 6962 defines no proof from size 0: the empty tree is trivially a prefix.
        if older.log_root != merkle::empty_root() {
            return Err(CheckpointError::Inconsistent(MerkleError::FirstRootMismatch));
        }
        // Equal sizes need equal roots: a second empty log with another root is a split view.
        if newer.log_size == 0 && newer.log_root != older.log_root {
            return Err(CheckpointError::Inconsistent(MerkleError::SecondRootMismatch));
        }
        if !path.is_empty() {
            return Err(CheckpointError::Inconsistent(MerkleError::PathTooLong {
                expected: 0,
                got: path.len(),
            }));
        }
        return Ok(());
    }
    merkle::verify_consistency(
        older.log_size,
        newer.log_size,
        &older.log_root,
        &newer.log_root,
        path,
    )
    .map_err(CheckpointError::Inconsistent)
}

impl LedgerState {
    /// [`verify_checkpoint`] against this ledger's genesis, with the cached chain id.
    pub fn verify_checkpoint(&self, signed: &SignedCheckpoint) -> Result<CheckpointStatus, CheckpointError> {
        verify_with(&self.chain_id, &self.genesis, signed)
    }
}

//! Checks, encodings and merge rules shared by every backend, so that they accept and refuse
//! exactly the same writes.
//!
//! Every value is checked at write time against the same limits the strict decoder applies at
//! read time: a value the store accepted can always be read back, and bytes that fail the
//! decoder on read are damage ([`StoreError::Corrupt`]), never a caller's mistake.

use paychan_protocol::codec::{decode, encode};
use paychan_protocol::{Block, ChannelId, Direction, Genesis, SignedCheckpoint, Wire};

use crate::error::{Result, StoreError};
use crate::keys::*;
use crate::PutOutcome;

/// Canonical bytes of a protocol value, refused if the strict decoder would refuse them.
pub(crate) fn encode_wire<T: Wire>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    value.check_limits().map_err(|e| StoreError::invalid(what, e))?;
    let bytes = value.to_bytes();
    if bytes.len() > T::BYTES_MAX {
        return Err(StoreError::invalid(
            what,
            format!("{} bytes exceed the limit of {}", bytes.len(), T::BYTES_MAX),
        ));
    }
    Ok(bytes)
}

/// Decodes stored bytes with the strict, size-capped decoder.
pub(crate) fn decode_wire<T: Wire>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    T::from_bytes(bytes).map_err(|e| StoreError::corrupt(what(), e))
}

pub(crate) fn check_genesis(genesis: &Genesis) -> Result<Vec<u8>> {
    encode_wire(genesis, "genesis")
}

pub(crate) fn decode_genesis(bytes: &[u8]) -> Result<Genesis> {
    decode_wire(bytes, || "genesis".to_string())
}

/// Whether a genesis may be stored given the stored one.
pub(crate) fn genesis_outcome(stored: Option<&Genesis>, new: &Genesis) -> Result<PutOutcome> {
    match stored {
        None => Ok(PutOutcome::Stored),
        Some(g) if g == new => Ok(PutOutcome::AlreadyStored),
        Some(_) => Err(StoreError::GenesisConflict),
    }
}

pub(crate) fn check_block(block: &Block) -> Result<Vec<u8>> {
    encode_wire(block, "block")
}

/// Decodes a stored block and checks it against its key.
pub(crate) fn decode_block(height: u64, bytes: &[u8]) -> Result<Block> {
    let block: Block = decode_wire(bytes, || format!("block {height}"))?;
    if block.header.height != height {
        return Err(StoreError::corrupt(
            format!("block {height}"),
            format!("header says height {}", block.header.height),
        ));
    }
    Ok(block)
}

/// The put-block rule, given the tip and whatever is stored at the block's height: an
/// identical block is a no-op, a different one a conflict, a new one must extend the tip.
pub(crate) fn block_outcome(tip: u64, stored: Option<&Block>, new: &Block) -> Result<PutOutcome> {
    let height = new.header.height;
    match stored {
        Some(b) if b == new => Ok(PutOutcome::AlreadyStored),
        Some(_) => Err(StoreError::Conflict { height }),
        None if tip.checked_add(1) == Some(height) => Ok(PutOutcome::Stored),
        None => Err(StoreError::NotNext { height, tip }),
    }
}

pub(crate) fn check_checkpoint(cp: &SignedCheckpoint) -> Result<Vec<u8>> {
    encode_wire(cp, "checkpoint")
}

/// Decodes a stored checkpoint and checks it against its key.
pub(crate) fn decode_checkpoint(height: u64, bytes: &[u8]) -> Result<SignedCheckpoint> {
    let cp: SignedCheckpoint = decode_wire(bytes, || format!("checkpoint {height}"))?;
    if cp.checkpoint.height != height {
        return Err(StoreError::corrupt(
            format!("checkpoint {height}"),
            format!("checkpoint says height {}", cp.checkpoint.height),
        ));
    }
    Ok(cp)
}

/// Merges a checkpoint into the one stored at its height.
///
/// Returns the record to keep and whether it differs from what is stored. Cosignatures are
/// deduplicated by witness key (the first one seen for a witness is kept, since a threshold
/// counts distinct witnesses); the stored sequencer signature is kept. A different checkpoint
/// body at the same height is a conflict. The store checks no signature: callers verify
/// cosignatures before storing them.
pub(crate) fn merge_checkpoint(
    stored: Option<&SignedCheckpoint>,
    new: &SignedCheckpoint,
) -> Result<(SignedCheckpoint, bool)> {
    let mut merged = match stored {
        None => SignedCheckpoint {
            checkpoint: new.checkpoint,
            signature: new.signature,
            cosignatures: Vec::with_capacity(new.cosignatures.len()),
        },
        Some(s) if s.checkpoint != new.checkpoint => {
            return Err(StoreError::Conflict {
                height: new.checkpoint.height,
            })
        }
        Some(s) => s.clone(),
    };
    let mut changed = stored.is_none();
    for c in &new.cosignatures {
        if !merged.cosignatures.iter().any(|m| m.witness == c.witness) {
            merged.cosignatures.push(*c);
            changed = true;
        }
    }
    // Refuse what the strict decoder would refuse on read (e.g. too many cosignatures).
    check_checkpoint(&merged)?;
    Ok((merged, changed))
}

pub(crate) fn check_peer(peer: &str, addrs: &[String]) -> Result<Vec<u8>> {
    if peer.is_empty() || peer.len() > PEER_ID_BYTES_MAX {
        return Err(StoreError::invalid(
            "peer",
            format!("peer id of {} bytes (1..={PEER_ID_BYTES_MAX})", peer.len()),
        ));
    }
    if addrs.len() > PEER_ADDRS_MAX {
        return Err(StoreError::invalid(
            "peer",
            format!("{} addresses (at most {PEER_ADDRS_MAX})", addrs.len()),
        ));
    }
    if let Some(a) = addrs.iter().find(|a| a.len() > MULTIADDR_BYTES_MAX) {
        return Err(StoreError::invalid(
            "peer",
            format!("address of {} bytes (at most {MULTIADDR_BYTES_MAX})", a.len()),
        ));
    }
    Ok(encode(addrs))
}

pub(crate) fn decode_peer(key: &[u8], bytes: &[u8]) -> Result<(String, Vec<String>)> {
    let peer = std::str::from_utf8(key)
        .map_err(|e| StoreError::corrupt("peer key", e))?
        .to_string();
    let addrs: Vec<String> =
        decode(bytes, PEER_RECORD_BYTES_MAX).map_err(|e| StoreError::corrupt(format!("peer {peer}"), e))?;
    // Anything the write check refuses is damage when read back.
    check_peer(&peer, &addrs).map_err(|e| StoreError::corrupt(format!("peer {peer}"), e))?;
    Ok((peer, addrs))
}

pub(crate) fn check_channel(record: &[u8]) -> Result<()> {
    if record.len() > CHANNEL_RECORD_BYTES_MAX {
        return Err(StoreError::invalid(
            "channel record",
            format!("{} bytes (at most {CHANNEL_RECORD_BYTES_MAX})", record.len()),
        ));
    }
    Ok(())
}

pub(crate) fn check_payments(record: &[u8]) -> Result<()> {
    if record.len() > PAYMENTS_RECORD_BYTES_MAX {
        return Err(StoreError::invalid(
            "payments record",
            format!("{} bytes (at most {PAYMENTS_RECORD_BYTES_MAX})", record.len()),
        ));
    }
    Ok(())
}

pub(crate) fn decode_channel(id: &ChannelId, bytes: &[u8]) -> Result<Vec<u8>> {
    check_channel(bytes).map_err(|e| StoreError::corrupt(format!("channel {id:?}"), e))?;
    Ok(bytes.to_vec())
}

/// The seq reservation rule: never down.
pub(crate) fn seq_check(
    id: &ChannelId,
    direction: Direction,
    stored: Option<u64>,
    requested: u64,
) -> Result<()> {
    match stored {
        Some(stored) if requested < stored => Err(StoreError::SeqRegress {
            channel: *id,
            direction,
            stored,
            requested,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn decode_seq(id: &ChannelId, direction: Direction, bytes: &[u8]) -> Result<u64> {
    let b: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::corrupt(
            format!("seq reservation {id:?} {direction:?}"),
            format!("{} bytes, expected 8", bytes.len()),
        )
    })?;
    Ok(u64::from_be_bytes(b))
}

pub(crate) fn check_meta(key: &str, value: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > META_KEY_BYTES_MAX {
        return Err(StoreError::invalid(
            "meta",
            format!("key of {} bytes (1..={META_KEY_BYTES_MAX})", key.len()),
        ));
    }
    if value.len() > META_VALUE_BYTES_MAX {
        return Err(StoreError::invalid(
            "meta",
            format!("value of {} bytes (at most {META_VALUE_BYTES_MAX})", value.len()),
        ));
    }
    Ok(())
}

pub(crate) fn decode_meta(key: &[u8], value: &[u8]) -> Result<(String, Vec<u8>)> {
    let key = std::str::from_utf8(key)
        .map_err(|e| StoreError::corrupt("meta key", e))?
        .to_string();
    check_meta(&key, value).map_err(|e| StoreError::corrupt(format!("meta {key}"), e))?;
    Ok((key, value.to_vec()))
}

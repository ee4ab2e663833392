//! Messages that cross a process boundary, their limits, and length-prefixed framing.
//!
//! Protocol ids carry versions. A stream carries frames: a 4-byte big-endian length followed by
//! that many bytes of one postcard-encoded message. Every decoder here is bounded and strict
//! (see [`crate::codec::decode`]) and then checks the structural limits of [`crate::limits`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelId, ChannelOpen, CoopClose, Direction, Payment, SignedProof};
use crate::codec::{decode, encode, DecodeError};
use crate::crypto::Signature;
use crate::hash::Hash32;
use crate::ledger::{Block, Cosignature, Genesis, SignedCheckpoint, Tx};
use crate::limits::*;

/// The channel protocol: open, pay, ack, close.
pub const CHANNEL_PROTOCOL: &str = "/paychan/channel/1";
/// The ledger protocol: submit, fetch blocks, checkpoints and proofs.
pub const LEDGER_PROTOCOL: &str = "/paychan/ledger/1";
/// Gossipsub topic for blocks.
pub const BLOCKS_TOPIC: &str = "paychan/blocks/1";
/// Gossipsub topic for checkpoints and cosignatures.
pub const CHECKPOINTS_TOPIC: &str = "paychan/checkpoints/1";
/// Gossipsub topic for dispute transactions.
pub const DISPUTES_TOPIC: &str = "paychan/disputes/1";

/// A type that can be sent to or received from a peer.
pub trait Wire: Serialize + DeserializeOwned {
    /// Largest encoding accepted.
    const BYTES_MAX: usize;

    /// Structural limits beyond size (counts of items, text lengths).
    fn check_limits(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// Canonical bytes.
    fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes untrusted bytes: size cap, no trailing bytes, canonical, limits.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let v: Self = decode(bytes, Self::BYTES_MAX)?;
        v.check_limits().map_err(DecodeError::Limit)?;
        Ok(v)
    }
}

/// One proof of a pay frame with the payments it adds.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PayItem {
    /// The signed proof.
    pub proof: SignedProof,
    /// The payments whose amounts sum to the increase in `transferred`; their hash is the
    /// proof's `memo_hash`.
    pub payments: Vec<Payment>,
}

/// Error codes of an error frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Could not decode the frame.
    Malformed,
    /// A signature did not verify.
    BadSignature,
    /// Unknown channel or channel not usable.
    UnknownChannel,
    /// The frame breaks a channel rule (seq, amount, prev link, spending rule).
    Rejected,
    /// A limit was hit; slow down.
    Busy,
    /// Anything else.
    Other,
}

/// A message of `/paychan/channel/1`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChannelMsg {
    /// 0: A proposes an open and signs it.
    OpenPropose {
        /// The proposed open (A's salt set, B's salt zero: B fills it in).
        open: ChannelOpen,
    },
    /// 1: B accepts with the final open (its salt filled in) and its signature.
    OpenAccept {
        /// The final open.
        open: ChannelOpen,
        /// B's signature over it.
        sig_b: Signature,
    },
    /// 2: A's signature over the final open; either party may now submit it.
    OpenSigned {
        /// The channel id.
        channel_id: ChannelId,
        /// A's signature.
        sig_a: Signature,
    },
    /// 3: One or more pipelined balance proofs of one direction.
    Pay {
        /// The channel.
        channel_id: ChannelId,
        /// The proofs, in seq order.
        items: Vec<PayItem>,
    },
    /// 4: The payee has persisted everything up to this proof.
    Ack {
        /// The channel.
        channel_id: ChannelId,
        /// The direction acknowledged.
        direction: Direction,
        /// Highest persisted seq.
        seq: u64,
        /// Hash of that proof.
        hash: Hash32,
    },
    /// 5: After a (re)connect: the newest proof the sender has persisted from the receiver.
    Reestablish {
        /// The channel.
        channel_id: ChannelId,
        /// Newest persisted proof from the receiver, if any.
        newest_from_you: Option<SignedProof>,
    },
    /// 6: A proposes cooperative close balances with its signature.
    ClosePropose {
        /// The balances.
        close: CoopClose,
        /// Proposer's signature.
        sig: Signature,
    },
    /// 7: The other party's signature over the proposed close.
    CloseSign {
        /// The channel.
        channel_id: ChannelId,
        /// Its signature.
        sig: Signature,
    },
    /// 8: Something was refused.
    Error {
        /// The channel, if the error concerns one.
        channel_id: Option<ChannelId>,
        /// What kind of error.
        code: ErrorCode,
        /// Human-readable detail (at most `ERROR_TEXT_BYTES_MAX`).
        text: String,
    },
    /// 9: The first frame each side sends on a new stream: the dialer's frame fixes the
    /// stream's epoch, and both name the ledger they are on.
    Hello {
        /// Chain id of the sender's ledger.
        chain_id: Hash32,
    },
}

/// The unit on a channel stream: the connection epoch and one message. A frame whose epoch is
/// not the current one belongs to an old connection and is dropped.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Connection epoch, chosen by the dialer per connection.
    pub epoch: u64,
    /// The message.
    pub msg: ChannelMsg,
}

impl Wire for Envelope {
    const BYTES_MAX: usize = CHANNEL_MSG_BYTES_MAX;

    /// A pay frame is written by hand (`pay_frame.rs`, the same bytes); the rest by postcard.
    fn to_bytes(&self) -> Vec<u8> {
        match &self.msg {
            ChannelMsg::Pay { channel_id, items } => crate::pay_frame::encode(self.epoch, channel_id, items),
            _ => encode(self),
        }
    }

    /// A canonical pay frame is read by hand (`pay_frame.rs`); anything else, and any pay frame
    /// it does not take, by the general decoder, which gives the value or the error.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let fast = (bytes.len() <= Self::BYTES_MAX)
            .then(|| crate::pay_frame::decode(bytes))
            .flatten();
        let v = match fast {
            Some(v) => v,
            None => decode(bytes, Self::BYTES_MAX)?,
        };
        v.check_limits().map_err(DecodeError::Limit)?;
        Ok(v)
    }

    fn check_limits(&self) -> Result<(), &'static str> {
        match &self.msg {
            ChannelMsg::Pay { items, .. } => {
                if items.is_empty() {
                    return Err("empty pay frame");
                }
                if items.len() > PAY_PROOFS_MAX {
                    return Err("too many proofs in a pay frame");
                }
                if items
                    .iter()
                    .any(|i| i.payments.is_empty() || i.payments.len() > MEMO_PAYMENTS_MAX)
                {
                    return Err("memo payment count out of range");
                }
                Ok(())
            }
            ChannelMsg::Error { text, .. } if text.len() > ERROR_TEXT_BYTES_MAX => Err("error text too long"),
            _ => Ok(()),
        }
    }
}

fn check_tx(tx: &Tx) -> Result<(), &'static str> {
    match tx {
        Tx::UnilateralClose { body, .. } => check_proof_dirs(body.proof_ab.as_ref(), body.proof_ba.as_ref()),
        Tx::Update(u) => {
            if u.proof_ab.is_none() && u.proof_ba.is_none() {
                return Err("update without proofs");
            }
            check_proof_dirs(u.proof_ab.as_ref(), u.proof_ba.as_ref())
        }
        _ => Ok(()),
    }
}

fn check_proof_dirs(ab: Option<&SignedProof>, ba: Option<&SignedProof>) -> Result<(), &'static str> {
    if ab.is_some_and(|p| p.proof.direction != Direction::AToB)
        || ba.is_some_and(|p| p.proof.direction != Direction::BToA)
    {
        return Err("proof in the wrong direction slot");
    }
    Ok(())
}

impl Wire for Tx {
    const BYTES_MAX: usize = TX_BYTES_MAX;
    fn check_limits(&self) -> Result<(), &'static str> {
        check_tx(self)
    }
}

impl Wire for Block {
    const BYTES_MAX: usize = BLOCK_BYTES_MAX;
    fn check_limits(&self) -> Result<(), &'static str> {
        if self.txs.len() > BLOCK_TXS_MAX {
            return Err("too many transactions in a block");
        }
        self.txs.iter().try_for_each(check_tx)
    }
}

impl Wire for SignedCheckpoint {
    const BYTES_MAX: usize = CHECKPOINT_BYTES_MAX;
    fn check_limits(&self) -> Result<(), &'static str> {
        if self.cosignatures.len() > WITNESSES_MAX {
            return Err("too many cosignatures");
        }
        Ok(())
    }
}

impl Wire for Genesis {
    const BYTES_MAX: usize = GENESIS_BYTES_MAX;
    fn check_limits(&self) -> Result<(), &'static str> {
        if self.network.len() > NETWORK_NAME_BYTES_MAX {
            return Err("network name too long");
        }
        if self.unit.name.len() > UNIT_NAME_BYTES_MAX || self.unit.symbol.len() > UNIT_SYMBOL_BYTES_MAX {
            return Err("unit name or symbol too long");
        }
        if self.witnesses.len() > WITNESSES_MAX {
            return Err("too many witnesses");
        }
        if self.allocations.len() > ALLOCATIONS_MAX {
            return Err("too many allocations");
        }
        Ok(())
    }
}

/// A request of `/paychan/ledger/1`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LedgerRequest {
    /// 0: Submit a transaction to the sequencer (or through a node to it).
    Submit(Box<Tx>),
    /// 1: Blocks from `from` (inclusive), at most `limit` (capped at `BLOCKS_PER_RESPONSE_MAX`).
    GetBlocks {
        /// First height.
        from: u64,
        /// Most blocks wanted.
        limit: u32,
    },
    /// 2: The newest checkpoint with its cosignatures.
    GetCheckpoint,
    /// 3: An inclusion proof of the transaction with this id against the log at `size`.
    GetInclusion {
        /// Transaction id.
        tx_id: Hash32,
        /// Log size to prove against.
        size: u64,
    },
    /// 4: A consistency proof between two log sizes.
    GetConsistency {
        /// Older size.
        first: u64,
        /// Newer size.
        second: u64,
    },
    /// 5: The genesis.
    GetGenesis,
}

/// Most blocks in one `Blocks` response.
pub const BLOCKS_PER_RESPONSE_MAX: usize = 64;
/// Largest ledger response.
pub const LEDGER_RESPONSE_BYTES_MAX: usize = 32 * 1024 * 1024;

impl Wire for LedgerRequest {
    const BYTES_MAX: usize = TX_BYTES_MAX + 16;
    fn check_limits(&self) -> Result<(), &'static str> {
        match self {
            LedgerRequest::Submit(tx) => check_tx(tx),
            _ => Ok(()),
        }
    }
}

/// Outcome of a submission.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SubmitStatus {
    /// Newly accepted into the pending set.
    Accepted,
    /// Already pending: harmless.
    AlreadyPending,
    /// Already in a block: harmless.
    AlreadyIncluded,
}

/// A response of `/paychan/ledger/1`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LedgerResponse {
    /// 0: Submission outcome and the transaction id.
    Submitted {
        /// Id of the transaction.
        tx_id: Hash32,
        /// Outcome.
        status: SubmitStatus,
    },
    /// 1: Blocks in height order.
    Blocks(Vec<Block>),
    /// 2: The newest checkpoint, if any.
    Checkpoint(Option<SignedCheckpoint>),
    /// 3: An inclusion proof.
    Inclusion {
        /// Leaf index of the transaction in the log.
        index: u64,
        /// Log size.
        size: u64,
        /// Audit path.
        path: Vec<Hash32>,
    },
    /// 4: A consistency proof.
    Consistency {
        /// Proof hashes.
        path: Vec<Hash32>,
    },
    /// 5: The genesis.
    Genesis(Genesis),
    /// 6: The request was refused.
    Error {
        /// Human-readable reason (at most `ERROR_TEXT_BYTES_MAX`).
        text: String,
    },
}

impl Wire for LedgerResponse {
    const BYTES_MAX: usize = LEDGER_RESPONSE_BYTES_MAX;
    fn check_limits(&self) -> Result<(), &'static str> {
        match self {
            LedgerResponse::Blocks(b) if b.len() > BLOCKS_PER_RESPONSE_MAX => Err("too many blocks"),
            LedgerResponse::Blocks(b) => b.iter().try_for_each(|b| b.check_limits()),
            LedgerResponse::Inclusion { path, .. } | LedgerResponse::Consistency { path }
                if path.len() > MERKLE_PATH_MAX =>
            {
                Err("merkle path too long")
            }
            LedgerResponse::Checkpoint(Some(c)) => c.check_limits(),
            LedgerResponse::Genesis(g) => g.check_limits(),
            LedgerResponse::Error { text } if text.len() > ERROR_TEXT_BYTES_MAX => Err("error text too long"),
            _ => Ok(()),
        }
    }
}

/// A gossipsub message.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum GossipMsg {
    /// 0: A new block from the sequencer.
    Block(Block),
    /// 1: A checkpoint signed by the sequencer (cosignatures may be empty).
    Checkpoint(SignedCheckpoint),
    /// 2: A witness's cosignature of the checkpoint with this block hash.
    Cosignature {
        /// The checkpoint's block hash.
        block_hash: Hash32,
        /// The cosignature.
        cosignature: Cosignature,
    },
    /// 3: A dispute transaction, so that every node can submit it.
    Dispute(Box<Tx>),
    /// 4: Evidence of a split view: two checkpoints of this chain, each signed by the
    /// sequencer, that are inconsistent (PROTOCOL.md §8.8).
    SplitView(Box<SplitView>),
}

/// Two signed checkpoints of one chain that cannot both be true: same height and different
/// checkpoints, same log size and different roots, or no consistency proof between them.
/// Receivers verify both signatures and the inconsistency themselves.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SplitView {
    /// The checkpoint seen first.
    pub first: SignedCheckpoint,
    /// The checkpoint that contradicts it.
    pub second: SignedCheckpoint,
}

impl Wire for SplitView {
    const BYTES_MAX: usize = 2 * CHECKPOINT_BYTES_MAX;
    fn check_limits(&self) -> Result<(), &'static str> {
        self.first.check_limits()?;
        self.second.check_limits()
    }
}

impl Wire for GossipMsg {
    // A block plus the message's variant tag (and room to spare).
    const BYTES_MAX: usize = BLOCK_BYTES_MAX + 16;
    fn check_limits(&self) -> Result<(), &'static str> {
        match self {
            GossipMsg::Block(b) => b.check_limits(),
            GossipMsg::Checkpoint(c) => c.check_limits(),
            GossipMsg::Cosignature { .. } => Ok(()),
            GossipMsg::SplitView(e) => e.check_limits(),
            GossipMsg::Dispute(tx) if !tx.is_dispute() => Err("not a dispute transaction"),
            GossipMsg::Dispute(tx) => check_tx(tx),
        }
    }
}

/// An error text cut to `ERROR_TEXT_BYTES_MAX` bytes at a character boundary, so that an error
/// frame or response always passes its own limit.
pub fn error_text(text: impl Into<String>) -> String {
    let mut s = text.into();
    if s.len() > ERROR_TEXT_BYTES_MAX {
        let mut cut = ERROR_TEXT_BYTES_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Framing errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit.
        max: usize,
    },
}

/// Appends `len as u32 BE || payload` to `out`. The payload is an encoding of a [`Wire`] type,
/// so it is within that type's `BYTES_MAX`, which the receiver passes to [`parse_frame`].
pub fn write_frame(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= u32::MAX as usize,
        "frames are below 4 GiB by construction"
    );
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Looks for one complete frame at the start of `buf`. `Ok(None)` means incomplete (read more);
/// `Ok(Some((consumed, payload)))` gives the payload and how many bytes to drop.
pub fn parse_frame(buf: &[u8], max: usize) -> Result<Option<(usize, &[u8])>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    match buf.get(4..4 + len) {
        Some(payload) => Ok(Some((4 + len, payload))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_cut_at_a_character_boundary_within_the_limit() {
        let long = "é".repeat(ERROR_TEXT_BYTES_MAX);
        let cut = error_text(long);
        assert!(cut.len() <= ERROR_TEXT_BYTES_MAX && cut.len() >= ERROR_TEXT_BYTES_MAX - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(error_text("short"), "short");
        let env = Envelope {
            epoch: 1,
            msg: ChannelMsg::Error {
                channel_id: None,
                code: ErrorCode::Other,
                text: cut,
            },
        };
        assert!(Envelope::from_bytes(&env.to_bytes()).is_ok());
    }
}

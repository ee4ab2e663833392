//! Payer side: signing proofs (the hot path) and handling acks.

use paychan_protocol::channel::{memo_hash, memo_total, BalanceProof};
use paychan_protocol::limits::{MEMO_PAYMENTS_MAX, UNACKED_PROOFS_MAX};
use paychan_protocol::{Direction, Hash32, Payment, SignedProof};

use super::Channel;
use crate::error::ChannelError;
use crate::state::ChannelStatus;

/// What an ack released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Acked {
    /// Newest acknowledged seq after the ack.
    pub seq: u64,
    /// Proofs dropped from the window by this ack (0 for a stale or repeated ack).
    pub released: usize,
}

impl Channel {
    /// Pays `amount` with `reference`: signs exactly one new proof. See [`Channel::pay_many`].
    pub fn pay(&mut self, amount: u64, reference: Hash32) -> Result<SignedProof, ChannelError> {
        self.pay_many(&[Payment { amount, reference }])
    }

    /// Pays several payments with one proof (one signature for up to `MEMO_PAYMENTS_MAX`
    /// payments): seq = last + 1, transferred += their total, prev = hash of the previous
    /// proof (the channel id for the first), memo hash over `payments`.
    ///
    /// Refused unless the channel is open and reestablished on the current connection, the
    /// window has room, the seq is durably reserved, and the spending rule
    /// `deposit + received (durable) - transferred >= 0` still holds afterwards. The proof is
    /// kept for retransmission until acked. The caller sends it as a `PayItem` with these
    /// `payments`.
    ///
    /// Cost besides the signature: a memo hash, a proof hash and a ring-buffer push; no heap
    /// allocation once the window has grown to its working size.
    pub fn pay_many(&mut self, payments: &[Payment]) -> Result<SignedProof, ChannelError> {
        if self.status != ChannelStatus::Open {
            return Err(ChannelError::Status { status: self.status });
        }
        if !self.out.ready || self.out.restored || !self.connected {
            return Err(ChannelError::NotReestablished);
        }
        if payments.is_empty() || payments.len() > MEMO_PAYMENTS_MAX {
            return Err(ChannelError::MemoLength {
                len: payments.len(),
                max: MEMO_PAYMENTS_MAX,
            });
        }
        let unacked = self.out.window.len();
        if unacked >= UNACKED_PROOFS_MAX {
            return Err(ChannelError::WindowFull { unacked });
        }
        let seq = self.out.next_seq;
        if seq > self.out.seq_durable {
            // Requested ahead of time (see `maybe_request_reservation`), so it is set here.
            let up_to = self.out.seq_requested.unwrap_or(self.out.seq_durable);
            return Err(ChannelError::NeedsReservation { up_to });
        }
        let next_seq = seq.checked_add(1).ok_or(ChannelError::SeqExhausted)?;
        let amount = memo_total(payments).ok_or(ChannelError::AmountOverflow)?;
        let transferred = self
            .out
            .transferred
            .checked_add(amount)
            .ok_or(ChannelError::AmountOverflow)?;
        let limit = self.spend_limit();
        if transferred > limit {
            return Err(ChannelError::InsufficientFunds {
                available: limit.saturating_sub(self.out.transferred),
                amount,
            });
        }
        let body = BalanceProof {
            chain_id: self.chain_id,
            channel_id: self.id,
            direction: self.out_dir,
            seq,
            transferred,
            prev: self.out.last_hash,
            memo_hash: memo_hash(payments),
        };
        let signed = body.sign(&self.keypair);
        let hash = body.hash();
        self.out.window.push(signed, hash, payments);
        self.out.next_seq = next_seq;
        self.out.transferred = transferred;
        self.out.last_hash = hash;
        self.maybe_request_reservation();
        Ok(signed)
    }

    /// Handles the payee's ack: it has persisted the holder's proofs up to `seq`, whose hash
    /// must be `hash`. Drops them from the window. A stale or repeated ack is a no-op.
    ///
    /// The newest acked proof is kept and goes into the next snapshot; storing it is lazy
    /// ([`super::PersistNeeds::acked_own_seq`]): nothing waits for it.
    pub fn on_ack(&mut self, direction: Direction, seq: u64, hash: Hash32) -> Result<Acked, ChannelError> {
        if direction != self.out_dir {
            return Err(ChannelError::WrongDirection);
        }
        if self.out.restored {
            return Err(ChannelError::NotReestablished);
        }
        let acked_seq = self.out.acked.as_ref().map_or(0, |(p, _)| p.proof.seq);
        if seq <= acked_seq {
            if let Some((_, h)) = &self.out.acked {
                if seq == acked_seq && *h != hash {
                    return Err(ChannelError::BadAck { seq });
                }
            }
            return Ok(Acked {
                seq: acked_seq,
                released: 0,
            });
        }
        let entry = match self.out.window.get(seq) {
            Some(e) if e.hash == hash => *e,
            _ => return Err(ChannelError::BadAck { seq }),
        };
        let released = self.out.window.drop_through(seq);
        self.out.acked = Some((entry.proof, entry.hash));
        Ok(Acked { seq, released })
    }
}

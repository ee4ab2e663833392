//! Payee side: verifying a burst of proofs, and acking once it is durable.

use paychan_protocol::channel::{memo_hash, memo_total};
use paychan_protocol::crypto::BatchVerifier;
use paychan_protocol::limits::PAY_PROOFS_MAX;
use paychan_protocol::wire::{ChannelMsg, PayItem};
use paychan_protocol::{Hash32, SignedProof};

use super::{keep, Channel, VerifyMode, UNPERSISTED_BURSTS_MAX};
use crate::error::ChannelError;
use crate::state::ChannelStatus;

/// A burst the holder verified and now holds.
///
/// The payments are those of the burst's items, in order. Before acking, the node persists
/// `newest` (write [`Channel::snapshot`], or at least this proof) and calls
/// [`Channel::persisted`] or [`Channel::incoming_persisted`]`(newest.proof.seq)`, which returns
/// the `Ack`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Received {
    /// The newest proof of the burst: the one to persist, ack, report and submit.
    pub newest: SignedProof,
    /// Value the burst added (the increase of the incoming transferred total).
    pub amount: u64,
    /// Proofs in the burst.
    pub proofs: usize,
    /// Payments in the burst.
    pub payments: usize,
}

/// A burst that passed every check, with the hash of its newest proof.
struct CheckedBurst {
    received: Received,
    hash: Hash32,
}

impl Channel {
    /// The items of a burst above the newest proof the holder has verified from the
    /// counterparty: a retransmitted burst starts with proofs already taken. Items below the
    /// newest seq are skipped unread (the chain already binds the proofs taken there); an item
    /// at the newest seq is skipped only if it is that very proof, so a second, different
    /// proof for it is refused by [`Channel::receive`] as a seq that does not increase.
    pub(super) fn unseen<'a>(&self, items: &'a [PayItem]) -> &'a [PayItem] {
        let held = items
            .iter()
            .take_while(|i| {
                let p = &i.proof.proof;
                p.seq < self.inc.seq || (p.seq == self.inc.seq && p.hash() == self.inc.hash)
            })
            .count();
        &items[held..]
    }

    /// Verifies a burst of proofs from the counterparty and, if every check passes, takes it.
    ///
    /// Every item must be of this chain, channel and the counterparty's direction; seqs
    /// strictly increase; transferred never decreases and rises by exactly the item's memo
    /// total; the memo hash matches the payments; `prev` is the hash of the proof before it
    /// (the holder's newest verified proof, then each item in turn); the newest total respects
    /// the counterparty's spending rule against what the holder has signed to it; and the
    /// newest proof's signature passes the ledger's check (in [`VerifyMode::All`], every
    /// signature, in one batch with the same rule). Any failure rejects the whole burst and
    /// changes nothing.
    ///
    /// Per item: one memo hash and one proof hash. Per burst: one signature check.
    pub fn receive(&mut self, items: &[PayItem]) -> Result<Received, ChannelError> {
        match self.status {
            ChannelStatus::Open => {}
            status => return Err(ChannelError::Status { status }),
        }
        // A restored holder does not know its own newest proof until the peer's Reestablish,
        // so it could not apply the spending rule against it.
        if !self.inc.ready || self.out.restored || !self.connected {
            return Err(ChannelError::NotReestablished);
        }
        let checked = self.check_burst(items)?;
        Ok(self.take_burst(checked))
    }

    /// Checks a burst that came outside the channel's stream (a payment carried in an HTTP
    /// request) exactly as [`Channel::receive`] does, without taking it and without needing a
    /// connection: the burst must link to the newest proof the holder has verified. The
    /// spending rule is applied against the holder's own transferred total as far as it knows
    /// it (after a restore, its newest acknowledged proof, which is at most the real one), so
    /// it is never looser than on the stream.
    pub fn check_detached(&self, items: &[PayItem]) -> Result<Received, ChannelError> {
        match self.status {
            ChannelStatus::Open => {}
            status => return Err(ChannelError::Status { status }),
        }
        self.check_burst(items).map(|c| c.received)
    }

    /// [`Channel::check_detached`] without the signature check, which the caller makes (a
    /// gateway checks the proofs of several requests in one batch). Never take a burst on this
    /// answer alone: [`Channel::receive_detached_verified`] takes only the proof whose
    /// signature was verified.
    pub fn check_detached_unsigned(&self, items: &[PayItem]) -> Result<Received, ChannelError> {
        match self.status {
            ChannelStatus::Open => {}
            status => return Err(ChannelError::Status { status }),
        }
        self.check_burst_with(items, false).map(|c| c.received)
    }

    /// Takes a burst that came outside the channel's stream after the same checks as
    /// [`Channel::check_detached`]. It is then persisted and reported like any burst
    /// ([`Channel::persisted`]); the `Ack` that returns is for the stream, if one is up.
    pub fn receive_detached(&mut self, items: &[PayItem]) -> Result<Received, ChannelError> {
        match self.status {
            ChannelStatus::Open => {}
            status => return Err(ChannelError::Status { status }),
        }
        let checked = self.check_burst(items)?;
        Ok(self.take_burst(checked))
    }

    /// [`Channel::receive_detached`] of a one-proof burst whose signature
    /// [`Channel::check_detached`] already verified: `verified` is that checked proof, and the
    /// item must carry exactly it (body and signature), else this is a plain
    /// [`Channel::receive_detached`]. Every other check runs again (the stream may have moved
    /// the channel since the check); the signature, a function of the proof and the
    /// counterparty's key alone, is not verified twice.
    pub fn receive_detached_verified(
        &mut self,
        items: &[PayItem],
        verified: &SignedProof,
    ) -> Result<Received, ChannelError> {
        match self.status {
            ChannelStatus::Open => {}
            status => return Err(ChannelError::Status { status }),
        }
        let once = matches!(items, [item] if item.proof == *verified);
        let checked = self.check_burst_with(items, !once)?;
        Ok(self.take_burst(checked))
    }

    /// Every check of a burst against the holder's incoming state; changes nothing.
    fn check_burst(&self, items: &[PayItem]) -> Result<CheckedBurst, ChannelError> {
        self.check_burst_with(items, true)
    }

    /// [`Channel::check_burst`], with the signature check only if `verify`.
    fn check_burst_with(&self, items: &[PayItem], verify: bool) -> Result<CheckedBurst, ChannelError> {
        let Some(newest_item) = items.last() else {
            return Err(ChannelError::BadBurst("empty burst"));
        };
        if items.len() > PAY_PROOFS_MAX {
            return Err(ChannelError::BadBurst("more than PAY_PROOFS_MAX proofs"));
        }
        let pending = self.inc.unpersisted.len();
        if pending >= UNPERSISTED_BURSTS_MAX {
            return Err(ChannelError::PersistBacklog { pending });
        }
        let in_dir = self.out_dir.reverse();
        let mut prev = self.inc.hash;
        let mut seq = self.inc.seq;
        let mut transferred = self.inc.transferred;
        let mut payments = 0usize;
        for item in items {
            self.check_ids(&item.proof, in_dir)?;
            let p = &item.proof.proof;
            if p.seq <= seq {
                return Err(ChannelError::SeqNotIncreasing {
                    last: seq,
                    got: p.seq,
                });
            }
            if p.transferred < transferred {
                return Err(ChannelError::AmountDecreased {
                    last: transferred,
                    got: p.transferred,
                });
            }
            if p.prev != prev {
                return Err(ChannelError::BadPrevLink { seq: p.seq });
            }
            // memo_total refuses more than MEMO_PAYMENTS_MAX entries; an empty memo is refused
            // by the wire decoder and here alike.
            let added = match memo_total(&item.payments) {
                Some(t) if !item.payments.is_empty() => t,
                _ => return Err(ChannelError::MemoMismatch { seq: p.seq }),
            };
            if p.transferred - transferred != added || memo_hash(&item.payments) != p.memo_hash {
                return Err(ChannelError::MemoMismatch { seq: p.seq });
            }
            prev = p.hash();
            seq = p.seq;
            transferred = p.transferred;
            payments += item.payments.len();
        }
        let limit = self.receive_limit();
        if transferred > limit {
            if self.credit_in.is_some() {
                return Err(ChannelError::CreditLimit { transferred, limit });
            }
            return Err(ChannelError::Overspend { transferred, limit });
        }
        match self.verify_mode {
            _ if !verify => {}
            VerifyMode::Newest => newest_item
                .proof
                .verify(self.counterparty())
                .map_err(|_| ChannelError::BadSignature)?,
            VerifyMode::All => {
                let mut batch = BatchVerifier::new();
                for item in items {
                    item.proof.queue(self.counterparty(), &mut batch);
                }
                batch.verify().map_err(|_| ChannelError::BadSignature)?;
            }
        }
        // Checked above: the burst starts at the holder's newest and only rises.
        let amount = transferred - self.inc.transferred;
        Ok(CheckedBurst {
            received: Received {
                newest: newest_item.proof,
                amount,
                proofs: items.len(),
                payments,
            },
            hash: prev,
        })
    }

    fn take_burst(&mut self, checked: CheckedBurst) -> Received {
        let r = checked.received;
        keep(&mut self.inc.newest, r.newest);
        self.inc.hash = checked.hash;
        self.inc.seq = r.newest.proof.seq;
        self.inc.transferred = r.newest.proof.transferred;
        self.inc.unpersisted.push_back((r.newest, checked.hash));
        r
    }

    /// Where `seq` is among the bursts waiting for persistence: `Some(index)`, or `None` if it
    /// is already durable (a stale report).
    pub(super) fn find_unpersisted(&self, seq: u64) -> Result<Option<usize>, ChannelError> {
        if self.inc.durable.as_deref().is_some_and(|d| seq <= d.proof.seq) {
            return Ok(None);
        }
        self.inc
            .unpersisted
            .iter()
            .position(|(p, _)| p.proof.seq == seq)
            .map(Some)
            .ok_or(ChannelError::UnexpectedPersist("incoming proof never received"))
    }

    /// Reports that the verified incoming proof with `seq` (the newest of a burst) is durable.
    /// Returns the `Ack` for it when connected and reestablished; the `Reestablish` of a new
    /// connection when that waited for this persist; nothing otherwise. A seq at or below the
    /// durable one is a no-op.
    pub fn incoming_persisted(&mut self, seq: u64) -> Result<Option<ChannelMsg>, ChannelError> {
        let Some(idx) = self.find_unpersisted(seq)? else {
            return Ok(None);
        };
        let (proof, hash) = self.inc.unpersisted[idx];
        self.inc.unpersisted.drain(..=idx);
        keep(&mut self.inc.durable, proof);
        if !self.connected {
            return Ok(None);
        }
        if !self.inc.ready {
            return Ok(self.try_send_reestablish());
        }
        Ok(Some(ChannelMsg::Ack {
            channel_id: self.id,
            direction: self.out_dir.reverse(),
            seq,
            hash,
        }))
    }
}

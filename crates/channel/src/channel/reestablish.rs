//! Reestablish: after every (re)connect and after a restore, each side reports the newest
//! proof it holds durably from the other, and each payer continues from that report.

use paychan_protocol::limits::{pay_item_bytes_bound, FRAME_BYTES_MAX, PAY_PROOFS_MAX};
use paychan_protocol::wire::ChannelMsg;
use paychan_protocol::SignedProof;

use super::{keep, next_bound, Channel};
use crate::error::ChannelError;

impl Channel {
    /// Sends the holder's Reestablish if every verified incoming proof is durable; otherwise
    /// it waits for [`Channel::incoming_persisted`].
    pub(super) fn try_send_reestablish(&mut self) -> Option<ChannelMsg> {
        if !self.connected || self.inc.ready || !self.inc.unpersisted.is_empty() {
            return None;
        }
        self.inc.ready = true;
        Some(ChannelMsg::Reestablish {
            channel_id: self.id,
            newest_from_you: self.inc.durable.as_deref().copied(),
        })
    }

    /// Handles the peer's Reestablish: `newest_from_you` is the newest of the holder's own
    /// proofs the peer holds durably. Returns the `Pay` frames to retransmit, in seq order.
    ///
    /// The holder checks its own signature on the reported proof, then:
    /// - it must not be older than a proof the peer already acknowledged
    ///   ([`ChannelError::ReestablishBehind`]), and at the acked seq it must be that proof;
    /// - **not restored**: it must be the holder's proof at its seq (in the window); everything
    ///   up to it counts as acknowledged, and every proof above it is retransmitted in order;
    /// - **restored**: the holder continues from the newer of its stored acked proof and the
    ///   reported one (transferred total and prev link), with the next seq strictly above
    ///   both the stored reservation bound and the reported seq. The proofs it signed after
    ///   the reported one are lost to both sides and never reused: their seqs are skipped.
    ///
    /// A second Reestablish on the same connection is ignored.
    pub fn on_reestablish(
        &mut self,
        newest_from_you: Option<&SignedProof>,
    ) -> Result<Vec<ChannelMsg>, ChannelError> {
        if !self.connected {
            return Err(ChannelError::NotConnected);
        }
        if self.out.ready {
            return Ok(Vec::new());
        }
        if let Some(p) = newest_from_you {
            self.check_ids(p, self.out_dir)?;
            p.verify(&self.keypair.public())
                .map_err(|_| ChannelError::BadSignature)?;
        }
        let reported_seq = newest_from_you.map_or(0, |p| p.proof.seq);
        let acked_seq = self.out.acked.as_deref().map_or(0, |(p, _)| p.proof.seq);
        if reported_seq < acked_seq {
            return Err(ChannelError::ReestablishBehind {
                reported: reported_seq,
                acked: acked_seq,
            });
        }
        if reported_seq == acked_seq && newest_from_you != self.out.acked.as_deref().map(|(p, _)| p) {
            return Err(ChannelError::ReestablishMismatch { seq: reported_seq });
        }
        let mut frames = Vec::new();
        if self.out.restored {
            if let Some(p) = newest_from_you {
                let hash = p.proof.hash();
                self.out.transferred = p.proof.transferred;
                self.out.last_hash = hash;
                keep(&mut self.out.acked, (*p, hash));
            }
            // next_seq is seq_reserved + 1 since the restore; a reported seq above the bound
            // means the stored state is older than what was signed: skip past it too.
            let next = reported_seq.checked_add(1).ok_or(ChannelError::SeqExhausted)?;
            if next > self.out.next_seq {
                self.out.next_seq = next;
                if self.out.seq_requested.is_none_or(|r| r < next) {
                    self.out.seq_requested = Some(next_bound(reported_seq.max(self.out.seq_durable)));
                }
            }
            self.out.restored = false;
        } else {
            if let Some(p) = newest_from_you.filter(|_| reported_seq > acked_seq) {
                let hash = match self.out.window.get(reported_seq) {
                    Some(e) if e.proof == *p => e.hash,
                    _ => return Err(ChannelError::ReestablishMismatch { seq: reported_seq }),
                };
                self.out.window.drop_through(reported_seq);
                keep(&mut self.out.acked, (*p, hash));
            }
            frames = self.window_frames();
        }
        self.out.ready = true;
        Ok(frames)
    }

    /// The `Pay` frames that send every unacknowledged proof again, in seq order, for a peer
    /// that refused a burst for a passing reason (its channel was still pending, it had not
    /// persisted earlier bursts yet): every burst after a refused one fails to link, so the
    /// payer resends the whole window and the payee skips what it already holds. Nothing
    /// while the channel is not reestablished on this connection (the Reestablish resends).
    pub fn retransmit(&self) -> Vec<ChannelMsg> {
        if !self.connected || !self.out.ready || self.out.restored {
            return Vec::new();
        }
        self.window_frames()
    }

    fn window_frames(&self) -> Vec<ChannelMsg> {
        // Frames of at most PAY_PROOFS_MAX items and FRAME_BYTES_MAX bytes (a proof may carry
        // up to 64 payments).
        let budget = FRAME_BYTES_MAX - 1024;
        let mut frames = Vec::new();
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for item in self.out.window.items() {
            let size = pay_item_bytes_bound(item.payments.len());
            if !chunk.is_empty() && (chunk.len() >= PAY_PROOFS_MAX || bytes + size > budget) {
                frames.push(ChannelMsg::Pay {
                    channel_id: self.id,
                    items: std::mem::take(&mut chunk),
                });
                bytes = 0;
            }
            bytes += size;
            chunk.push(item);
        }
        if !chunk.is_empty() {
            frames.push(ChannelMsg::Pay {
                channel_id: self.id,
                items: chunk,
            });
        }
        frames
    }
}

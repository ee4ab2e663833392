//! Payer side: signing proofs (the hot path) and handling acks.

use paychan_protocol::channel::{memo_hash, memo_total, BalanceProof};
use paychan_protocol::limits::{MEMO_PAYMENTS_MAX, UNACKED_PROOFS_MAX};
use paychan_protocol::{Direction, Hash32, Keypair, Payment, SignedProof};

use super::{keep, Channel};
use crate::error::ChannelError;
use crate::state::ChannelStatus;

/// What [`Channel::pay_run`] signed, in seq order, and why it stopped early (if it did).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PayRun {
    /// The new proofs, in seq order.
    pub proofs: Vec<SignedProof>,
    /// The refusal of the first proof that was not signed, if the run is short.
    pub stopped: Option<ChannelError>,
}

/// Makes the signatures of a run of proof bodies. The bodies are hash-chained and built in
/// order by the channel; their signatures are independent, so an implementation may make them
/// on several threads. It returns one signed proof per body, in the order of `bodies`.
pub trait ProofSigner: Send + Sync {
    /// Signs every body with `key`.
    fn sign_all(&self, key: &Keypair, bodies: &[BalanceProof]) -> Vec<SignedProof>;
}

/// Signs on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineSigner;

impl ProofSigner for InlineSigner {
    fn sign_all(&self, key: &Keypair, bodies: &[BalanceProof]) -> Vec<SignedProof> {
        bodies.iter().map(|b| b.sign(key)).collect()
    }
}

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
        let body = self.next_body(
            self.out.next_seq,
            self.out.transferred,
            self.out.last_hash,
            0,
            payments,
        )?;
        let signed = body.sign(&self.keypair);
        self.push_signed(signed, payments);
        self.maybe_request_reservation();
        Ok(signed)
    }

    /// Pays `count` proofs in a row, each carrying `payments`, with their signatures made by
    /// `signer` (which may sign on several threads: a proof's hash covers its body, not its
    /// signature, so the chain of bodies is built here in order and the signatures are
    /// independent). Every proof passes the checks of [`Channel::pay_many`] in turn; the run
    /// stops at the first that does not, and that refusal is in [`PayRun::stopped`]. Nothing
    /// changes unless at least one proof was signed, in which case the result is as if
    /// `pay_many` had been called once per proof: the proofs enter the window in seq order
    /// and are returned in that order.
    ///
    /// A run never signs past the durable seq reservation, so a crash in the middle of one
    /// can never lead to a second proof with one of its seqs.
    pub fn pay_run(
        &mut self,
        payments: &[Payment],
        count: usize,
        signer: &dyn ProofSigner,
    ) -> Result<PayRun, ChannelError> {
        let mut bodies = Vec::with_capacity(count.min(UNACKED_PROOFS_MAX));
        let mut stopped = None;
        let (mut seq, mut transferred, mut last) =
            (self.out.next_seq, self.out.transferred, self.out.last_hash);
        while bodies.len() < count {
            match self.next_body(seq, transferred, last, bodies.len(), payments) {
                Ok(body) => {
                    seq = body.seq + 1;
                    transferred = body.transferred;
                    last = body.hash();
                    bodies.push(body);
                }
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        if bodies.is_empty() {
            return Err(stopped.unwrap_or(ChannelError::MemoLength {
                len: 0,
                max: MEMO_PAYMENTS_MAX,
            }));
        }
        let proofs = signer.sign_all(&self.keypair, &bodies);
        debug_assert_eq!(proofs.len(), bodies.len());
        for signed in &proofs {
            self.push_signed(*signed, payments);
        }
        self.maybe_request_reservation();
        Ok(PayRun { proofs, stopped })
    }

    /// The body of the proof that follows one with `seq - 1`, `transferred` and hash `last`,
    /// with `pending` proofs built but not yet in the window; or why it may not be signed.
    fn next_body(
        &self,
        seq: u64,
        transferred: u64,
        last: Hash32,
        pending: usize,
        payments: &[Payment],
    ) -> Result<BalanceProof, ChannelError> {
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
        let unacked = self.out.window.len() + pending;
        if unacked >= UNACKED_PROOFS_MAX {
            return Err(ChannelError::WindowFull { unacked });
        }
        if seq > self.out.seq_durable {
            // Requested ahead of time (see `maybe_request_reservation`), so it is set here.
            let up_to = self.out.seq_requested.unwrap_or(self.out.seq_durable);
            return Err(ChannelError::NeedsReservation { up_to });
        }
        seq.checked_add(1).ok_or(ChannelError::SeqExhausted)?;
        let amount = memo_total(payments).ok_or(ChannelError::AmountOverflow)?;
        let new_total = transferred
            .checked_add(amount)
            .ok_or(ChannelError::AmountOverflow)?;
        let limit = self.spend_limit();
        if new_total > limit {
            return Err(ChannelError::InsufficientFunds {
                available: limit.saturating_sub(transferred),
                amount,
            });
        }
        Ok(BalanceProof {
            chain_id: self.chain_id(),
            channel_id: self.id,
            direction: self.out_dir,
            seq,
            transferred: new_total,
            prev: last,
            memo_hash: memo_hash(payments),
        })
    }

    /// Takes a signed proof built by [`Channel::next_body`] into the window.
    fn push_signed(&mut self, signed: SignedProof, payments: &[Payment]) {
        let hash = signed.proof.hash();
        self.out.window.push(signed, hash, payments);
        self.out.next_seq = signed.proof.seq + 1;
        self.out.transferred = signed.proof.transferred;
        self.out.last_hash = hash;
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
        let acked_seq = self.out.acked.as_deref().map_or(0, |(p, _)| p.proof.seq);
        if seq <= acked_seq {
            if let Some((_, h)) = self.out.acked.as_deref() {
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
        keep(&mut self.out.acked, (entry.proof, entry.hash));
        Ok(Acked { seq, released })
    }
}

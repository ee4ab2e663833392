//! The payer's window of unacknowledged proofs, kept for retransmission.
//!
//! Two ring buffers: one entry per proof (the signed proof, its hash and how many payments its
//! memo holds) and the memo payments of all entries back to back. Both grow to their working
//! size once and are reused after that, so signing a payment allocates nothing in steady state.
//! Entries have consecutive seqs (a payer signs seq + 1 every time, and a restart empties the
//! window), so an entry is found by `seq - first seq`.

use std::collections::VecDeque;

use paychan_protocol::wire::PayItem;
use paychan_protocol::{Hash32, Payment, SignedProof};

/// One proof in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// The proof as sent.
    pub proof: SignedProof,
    /// `proof.proof.hash()`, kept to check acks without rehashing.
    pub hash: Hash32,
    /// Payments of its memo (1..=MEMO_PAYMENTS_MAX).
    pub memo_len: u8,
}

/// The proofs a payer signed that the payee has not acknowledged.
#[derive(Default, Debug)]
pub(crate) struct Window {
    entries: VecDeque<Entry>,
    memos: VecDeque<Payment>,
}

impl Window {
    /// Proofs in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends a proof just signed; its seq must follow the last entry's.
    pub fn push(&mut self, proof: SignedProof, hash: Hash32, payments: &[Payment]) {
        debug_assert!(self
            .entries
            .back()
            .is_none_or(|e| e.proof.proof.seq + 1 == proof.proof.seq));
        debug_assert!(!payments.is_empty() && payments.len() <= usize::from(u8::MAX));
        self.entries.push_back(Entry {
            proof,
            hash,
            memo_len: payments.len() as u8,
        });
        self.memos.extend(payments.iter().copied());
    }

    /// The entry holding `seq`, if any.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let first = self.entries.front()?.proof.proof.seq;
        let idx = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.entries.get(idx)
    }

    /// Drops every entry with seq <= `seq`; returns how many.
    pub fn drop_through(&mut self, seq: u64) -> usize {
        let mut dropped = 0;
        while let Some(e) = self.entries.front() {
            if e.proof.proof.seq > seq {
                break;
            }
            let memo_len = usize::from(e.memo_len);
            self.memos.drain(..memo_len);
            self.entries.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// Every entry in seq order as pay items (for retransmission; allocates, off the hot path).
    pub fn items(&self) -> Vec<PayItem> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut memo = 0usize;
        for e in &self.entries {
            let end = memo + usize::from(e.memo_len);
            out.push(PayItem {
                proof: e.proof,
                payments: self.memos.range(memo..end).copied().collect(),
            });
            memo = end;
        }
        out
    }
}

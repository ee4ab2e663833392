//! The payee's record of each payment it received. A proof's memo commits to the amount and
//! reference of every payment it carries (up to `MEMO_PAYMENTS_MAX`), but the channel keeps
//! only the newest proof: the payments themselves are stored next to it, one record per
//! received burst, in the same group commit that makes the burst durable (so a burst is
//! acked only once its payments are stored, and they survive a restart).
//!
//! A record is the postcard encoding of a `Vec<PaymentRun>`: consecutive proofs that carry
//! the same payments are one run (`first_seq`, `proofs`, `payments`), which is lossless and
//! keeps a payment job's records small whatever its rate.

use paychan_protocol::wire::PayItem;
use paychan_protocol::{ChannelId, Hash32, Payment};
use paychan_store::Store;
use serde::{Deserialize, Serialize};

use super::ManagerError;

/// Consecutive proofs `first_seq .. first_seq + proofs` that each carry `payments`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRun {
    /// Seq of the run's first proof.
    pub first_seq: u64,
    /// Proofs in the run.
    pub proofs: u64,
    /// The payments each of them carries, in memo order.
    pub payments: Vec<Payment>,
}

/// The runs of a burst's proofs above seq `after` (those a retransmitted burst repeats are
/// left out), in seq order.
pub fn runs_of(items: &[PayItem], after: u64) -> Vec<PaymentRun> {
    let mut runs: Vec<PaymentRun> = Vec::new();
    for item in items.iter().filter(|i| i.proof.proof.seq > after) {
        let seq = item.proof.proof.seq;
        match runs.last_mut() {
            Some(r) if r.first_seq + r.proofs == seq && r.payments == item.payments => r.proofs += 1,
            _ => runs.push(PaymentRun {
                first_seq: seq,
                proofs: 1,
                payments: item.payments.clone(),
            }),
        }
    }
    runs
}

/// One payment received, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceivedPayment {
    /// Seq of the proof that carried it.
    pub seq: u64,
    /// Its place in that proof's memo (0-based).
    pub index: usize,
    /// Its amount.
    pub amount: u64,
    /// Its reference (hex).
    pub reference: String,
}

/// Lists the payments of `runs` carried by proofs of seq `from_seq` or above, at most
/// `limit`, in seq then memo order.
pub fn expand<'a>(
    runs: impl IntoIterator<Item = &'a PaymentRun>,
    from_seq: u64,
    limit: usize,
) -> Vec<ReceivedPayment> {
    let mut out = Vec::new();
    for run in runs {
        let start = from_seq.max(run.first_seq);
        let end = run.first_seq.saturating_add(run.proofs);
        for seq in start..end {
            for (index, p) in run.payments.iter().enumerate() {
                if out.len() >= limit {
                    return out;
                }
                out.push(ReceivedPayment {
                    seq,
                    index,
                    amount: p.amount,
                    reference: hex_of(&p.reference),
                });
            }
        }
    }
    out
}

/// The payments stored in `store` for channel `id` (see [`super::ChannelManager::payments`]).
pub fn list(
    store: &dyn Store,
    id: ChannelId,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<ReceivedPayment>, ManagerError> {
    let limit = limit.min(super::PAYMENTS_PAGE_MAX);
    let mut out = Vec::new();
    // Records are keyed by the first seq of their burst, so the one that holds `from_seq`
    // may start below it: start at that record (the newest that starts at or below it).
    let mut from = store
        .payments_record_at(&id, from_seq)
        .map_err(|e| ManagerError::Storage(e.to_string()))?
        .unwrap_or(from_seq);
    while out.len() < limit {
        let page = store
            .payments(&id, from, 256)
            .map_err(|e| ManagerError::Storage(e.to_string()))?;
        let Some(&(last, _)) = page.last() else { break };
        for (seq, bytes) in page {
            let runs: Vec<PaymentRun> =
                paychan_protocol::codec::decode(&bytes, paychan_store::keys::PAYMENTS_RECORD_BYTES_MAX)
                    .map_err(|e| ManagerError::Storage(format!("payments record at seq {seq}: {e}")))?;
            out.extend(expand(&runs, from_seq, limit - out.len()));
            if out.len() >= limit {
                break;
            }
        }
        from = last.saturating_add(1);
    }
    Ok(out)
}

fn hex_of(h: &Hash32) -> String {
    h.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_protocol::channel::BalanceProof;
    use paychan_protocol::{Direction, Keypair};

    fn item(seq: u64, payments: &[Payment]) -> PayItem {
        let body = BalanceProof {
            chain_id: Hash32::ZERO,
            channel_id: ChannelId(Hash32::ZERO),
            direction: Direction::AToB,
            seq,
            transferred: seq,
            prev: Hash32::ZERO,
            memo_hash: Hash32::ZERO,
        };
        PayItem {
            proof: body.sign(&Keypair::from_seed([1; 32])),
            payments: payments.to_vec(),
        }
    }

    fn pay(amount: u64, r: u8) -> Payment {
        Payment {
            amount,
            reference: Hash32([r; 32]),
        }
    }

    #[test]
    fn runs_join_equal_neighbours_skip_what_was_seen_and_expand_back() {
        let a = [pay(1, 1), pay(1, 1)];
        let b = [pay(7, 2)];
        let items: Vec<PayItem> = (3..=8).map(|s| item(s, if s == 6 { &b } else { &a })).collect();
        let runs = runs_of(&items, 3);
        assert_eq!(
            runs,
            vec![
                PaymentRun {
                    first_seq: 4,
                    proofs: 2,
                    payments: a.to_vec()
                },
                PaymentRun {
                    first_seq: 6,
                    proofs: 1,
                    payments: b.to_vec()
                },
                PaymentRun {
                    first_seq: 7,
                    proofs: 2,
                    payments: a.to_vec()
                },
            ]
        );
        let all = expand(&runs, 0, usize::MAX);
        let seqs: Vec<(u64, usize, u64)> = all.iter().map(|p| (p.seq, p.index, p.amount)).collect();
        assert_eq!(
            seqs,
            vec![
                (4, 0, 1),
                (4, 1, 1),
                (5, 0, 1),
                (5, 1, 1),
                (6, 0, 7),
                (7, 0, 1),
                (7, 1, 1),
                (8, 0, 1),
                (8, 1, 1)
            ]
        );
        assert_eq!(
            all.iter().map(|p| p.amount).sum::<u64>(),
            items[1..]
                .iter()
                .flat_map(|i| &i.payments)
                .map(|p| p.amount)
                .sum::<u64>()
        );
        let page = expand(&runs, 6, 3);
        assert_eq!(
            page.iter().map(|p| (p.seq, p.index)).collect::<Vec<_>>(),
            vec![(6, 0), (7, 0), (7, 1)]
        );
        assert!(runs_of(&items, 8).is_empty());
    }

    #[test]
    fn a_page_starts_at_the_record_that_holds_its_first_seq() {
        let store = paychan_store::MemStore::new();
        let id = ChannelId(Hash32::ZERO);
        // Three bursts: seqs 1-3, 4-9 and 10-12, each proof one payment of its seq.
        for (first, last) in [(1, 3), (4, 9), (10, 12)] {
            let items: Vec<PayItem> = (first..=last).map(|s| item(s, &[pay(s, 1)])).collect();
            let record = paychan_protocol::codec::encode(&runs_of(&items, first - 1));
            store.put_payments(&id, first, &record).unwrap();
        }
        let seqs = |from, limit| -> Vec<u64> {
            list(&store, id, from, limit)
                .unwrap()
                .iter()
                .map(|p| p.seq)
                .collect()
        };
        assert_eq!(seqs(0, 100), (1..=12).collect::<Vec<_>>());
        assert_eq!(
            seqs(6, 4),
            vec![6, 7, 8, 9],
            "from the middle of the second record"
        );
        assert_eq!(seqs(9, 2), vec![9, 10], "across a record's end");
        assert_eq!(seqs(10, 100), vec![10, 11, 12]);
        assert!(seqs(13, 10).is_empty());
        assert_eq!(store.payments_record_at(&id, 6).unwrap(), Some(4));
        assert_eq!(store.payments_record_at(&id, 0).unwrap(), None);
        assert_eq!(store.payments_record_at(&id, u64::MAX).unwrap(), Some(10));
    }
}

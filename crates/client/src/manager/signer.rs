//! Signing a run of proofs on several threads. The manager core builds the hash-chained
//! bodies in order (cheap) and hands them to a [`ProofSigner`]; this one splits them into one
//! contiguous chunk per thread, signs the first chunk on the calling thread and the others on
//! a pool of its own, and returns them in seq order. The core never sees a thread.

use paychan_channel::ProofSigner;
use paychan_protocol::channel::BalanceProof;
use paychan_protocol::{Keypair, SignedProof};

/// Fewer bodies than this per extra thread are signed on the calling thread alone: handing a
/// chunk to another thread costs a few microseconds, a signature about fifteen.
const BODIES_PER_THREAD_MIN: usize = 4;

/// Signs on `threads` threads (the caller's and `threads - 1` of a pool).
pub struct ParallelSigner {
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl std::fmt::Debug for ParallelSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelSigner")
            .field("threads", &self.threads)
            .finish()
    }
}

impl ParallelSigner {
    /// A signer on `threads` threads in all (1 signs inline). Fails only if the OS refuses
    /// the pool's threads.
    pub fn new(threads: usize) -> Result<ParallelSigner, rayon::ThreadPoolBuildError> {
        let threads = threads.max(1);
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads - 1)
                    .thread_name(|i| format!("paychan-sign-{i}"))
                    .build()?,
            )
        } else {
            None
        };
        Ok(ParallelSigner { pool, threads })
    }

    /// Threads a run is signed on at most.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl ProofSigner for ParallelSigner {
    fn sign_all(&self, key: &Keypair, bodies: &[BalanceProof]) -> Vec<SignedProof> {
        let n = bodies.len();
        let threads = self.threads.min(n / BODIES_PER_THREAD_MIN).max(1);
        let Some(pool) = self.pool.as_ref().filter(|_| threads > 1) else {
            return bodies.iter().map(|b| b.sign(key)).collect();
        };
        let chunk = n.div_ceil(threads);
        let mut out: Vec<Vec<SignedProof>> = vec![Vec::new(); threads];
        let (first, rest) = out.split_first_mut().expect("threads >= 1");
        let mut chunks = bodies.chunks(chunk);
        let head = chunks.next().unwrap_or(&[]);
        pool.in_place_scope(|s| {
            for (slot, part) in rest.iter_mut().zip(chunks) {
                s.spawn(move |_| *slot = part.iter().map(|b| b.sign(key)).collect());
            }
            *first = head.iter().map(|b| b.sign(key)).collect();
        });
        out.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_protocol::channel::ChannelId;
    use paychan_protocol::{Direction, Hash32};

    fn bodies(n: u64) -> Vec<BalanceProof> {
        (1..=n)
            .map(|seq| BalanceProof {
                chain_id: Hash32([1; 32]),
                channel_id: ChannelId(Hash32([2; 32])),
                direction: Direction::AToB,
                seq,
                transferred: seq * 3,
                prev: Hash32([seq as u8; 32]),
                memo_hash: Hash32::ZERO,
            })
            .collect()
    }

    #[test]
    fn every_split_gives_the_inline_signatures_in_order() {
        let key = Keypair::from_seed([7; 32]);
        for threads in [1, 2, 3, 8] {
            let signer = ParallelSigner::new(threads).unwrap();
            for n in [0, 1, 3, 4, 9, 64, 257] {
                let b = bodies(n);
                let want: Vec<SignedProof> = b.iter().map(|x| x.sign(&key)).collect();
                assert_eq!(signer.sign_all(&key, &b), want, "{threads} threads, {n} bodies");
            }
        }
    }
}

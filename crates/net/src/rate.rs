//! A token bucket in integer micro-tokens, with time passed in (no clock of its own).

use std::time::Duration;

const MICRO: u64 = 1_000_000;

/// Allows `rate_per_s` events per second on average and bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: u64,
    capacity_micro: u64,
    tokens_micro: u64,
    /// Time of the last refill, as an offset from an arbitrary origin chosen by the caller.
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(rate_per_s: u32, burst: u32, now: Duration) -> Self {
        assert!(burst >= 1, "a bucket that can never fill refuses everything");
        let capacity_micro = u64::from(burst) * MICRO;
        TokenBucket {
            rate_per_s: u64::from(rate_per_s),
            capacity_micro,
            tokens_micro: capacity_micro,
            last: now,
        }
    }

    /// Takes one token at time `now` if there is one.
    pub fn try_take(&mut self, now: Duration) -> bool {
        // Time that appears to go backwards (a caller's bug or a clock step) refills nothing.
        let elapsed_us = now.saturating_sub(self.last).as_micros();
        if elapsed_us > 0 {
            self.last = now;
            let refill = u64::try_from(elapsed_us)
                .unwrap_or(u64::MAX)
                .saturating_mul(self.rate_per_s);
            self.tokens_micro = self.tokens_micro.saturating_add(refill).min(self.capacity_micro);
        }
        if self.tokens_micro >= MICRO {
            self.tokens_micro -= MICRO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Duration::from_secs(100);
        let mut b = TokenBucket::new(200, 400, t0);
        assert_eq!((0..1000).filter(|_| b.try_take(t0)).count(), 400);
        // 5 ms at 200/s is one token.
        let t1 = t0 + Duration::from_millis(5);
        assert!(b.try_take(t1));
        assert!(!b.try_take(t1));
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..1000).filter(|_| b.try_take(t2)).count(), 400);
        // Time going backwards refills nothing.
        assert!(!b.try_take(t0));
    }
}

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

/// A budget of bytes that refills at `rate_per_s` up to `burst` and may be overdrawn by one
/// spend: spending is allowed while the balance is positive, and a large item leaves a debt
/// that the refill pays back before the next one. So what is spent over a time `t` is at most
/// `burst + rate_per_s * t` plus one item.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    rate_per_s: u64,
    capacity_micro: i128,
    balance_micro: i128,
    last: Duration,
}

impl ByteBudget {
    /// A full budget at time `now`.
    pub fn new(rate_per_s: u64, burst: u64, now: Duration) -> Self {
        let capacity_micro = i128::from(burst) * i128::from(MICRO);
        ByteBudget {
            rate_per_s,
            capacity_micro,
            balance_micro: capacity_micro,
            last: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed_us = now.saturating_sub(self.last).as_micros();
        if elapsed_us > 0 {
            self.last = now;
            let refill = i128::try_from(elapsed_us)
                .unwrap_or(i128::MAX)
                .saturating_mul(i128::from(self.rate_per_s));
            self.balance_micro = self.balance_micro.saturating_add(refill).min(self.capacity_micro);
        }
    }

    /// Whether something may be spent at time `now` (the balance is positive).
    pub fn has_credit(&mut self, now: Duration) -> bool {
        self.refill(now);
        self.balance_micro > 0
    }

    /// Spends `bytes` at time `now`, into debt if need be.
    pub fn spend(&mut self, bytes: u64, now: Duration) {
        self.refill(now);
        self.balance_micro = self
            .balance_micro
            .saturating_sub(i128::from(bytes).saturating_mul(i128::from(MICRO)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_budget_allows_burst_then_rate_with_one_overdraft() {
        let t0 = Duration::from_secs(7);
        let mut b = ByteBudget::new(1_000, 4_000, t0);
        let mut spent = 0;
        while b.has_credit(t0) {
            b.spend(1_500, t0);
            spent += 1_500;
        }
        // 4,000 of credit: three spends, the last one into debt.
        assert_eq!(spent, 4_500);
        // The 500 of debt is paid back after 0.5 s, not before.
        assert!(!b.has_credit(t0 + Duration::from_millis(500)));
        assert!(b.has_credit(t0 + Duration::from_millis(501)));
        // A long pause refills only up to the burst.
        let t1 = t0 + Duration::from_secs(3600);
        assert!(b.has_credit(t1));
        b.spend(4_000, t1);
        assert!(!b.has_credit(t1));
    }

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

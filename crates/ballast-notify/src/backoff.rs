//! When to try a failed notification again, and how fast one receiver may be sent to. Pure:
//! time and randomness are passed in, so tests are deterministic.
//!
//! Why: a receiver that is down must not be hammered (nor every Ballast instance retry it in
//! step), one that says `Retry-After` must be obeyed (Slack's 429), and a notification must not
//! be retried forever: past its maximum age it is stale news, and the outbox gives it up.
//! A storm must not become a flood either, even after grouping: each receiver has a token
//! bucket.
//!
//! Retries: exponential back-off with full jitter. The n-th failed attempt (n ≥ 1) waits a
//! uniformly random time in `[0, min(cap, base · 2^(n-1))]`, with `base = 1s` and `cap = 5m` by
//! default, then at least the receiver's `Retry-After`. Full jitter (rather than a fixed
//! doubling) spreads the retries of many notifications and instances that failed together. If
//! the next attempt would fall at or after the notification's expiry, it is given up instead.
//!
//! ```text
//!   failed attempt n ──▶ wait = max(jitter(0..=min(cap, base·2^(n-1))), retry_after)
//!                        now + wait < expires ? RetryAt(now + wait) : GiveUp
//! ```
//!
//! Rate limit: a token bucket per target (one channel of a receiver; `delivery.rs` keeps them), `rate = { messages = 1, per = "1s", burst = 5 }` by
//! default: up to `burst` messages at once, then `messages` per `per`. Tokens are counted in
//! thousandths so the arithmetic stays in integers.

use ballast_core::Duration;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's longest wait.
    pub base_ms: u64,
    /// The longest wait of any retry.
    pub cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 1000,
            cap_ms: 300_000,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this moment (ms since the Unix epoch).
    At(u64),
    /// The next attempt would come too late: give it up.
    GiveUp,
}

impl Backoff {
    /// The longest wait after the `failed`-th failed attempt (1 for the first failure):
    /// `min(cap, base · 2^(failed-1))`.
    pub fn ceiling_ms(&self, failed: u32) -> u64 {
        let shift = failed.saturating_sub(1).min(63);
        self.base_ms.saturating_mul(1u64 << shift).min(self.cap_ms)
    }

    /// When to try again after the `failed`-th failed attempt at `now_unix_ms`, for a
    /// notification that expires at `expires_unix_ms`. `retry_after` is the receiver's own
    /// wait, if it gave one. `jitter(n)` returns a random number in `0..=n` (a larger answer
    /// is treated as `n`), e.g. `|n| fastrand::u64(0..=n)`.
    pub fn next(
        &self,
        failed: u32,
        now_unix_ms: u64,
        expires_unix_ms: u64,
        retry_after: Option<std::time::Duration>,
        jitter: &mut dyn FnMut(u64) -> u64,
    ) -> Retry {
        let ceiling = self.ceiling_ms(failed);
        let mut wait = jitter(ceiling).min(ceiling);
        if let Some(ra) = retry_after {
            wait = wait.max(u64::try_from(ra.as_millis()).unwrap_or(u64::MAX));
        }
        match now_unix_ms.checked_add(wait) {
            Some(at) if at < expires_unix_ms => Retry::At(at),
            _ => Retry::GiveUp,
        }
    }
}

/// A receiver's rate as written: `rate = { messages = 1, per = "1s", burst = 5 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub messages: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Default for RateSpec {
    fn default() -> Self {
        RateSpec {
            messages: 1,
            per: Duration::from_secs(1),
            burst: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RateError {
    #[error("rate: messages must be at least 1")]
    NoMessages,
    #[error("rate: per must be more than 0")]
    ZeroPer,
    #[error("rate: burst must be at least 1")]
    NoBurst,
}

/// Thousandths of a token.
const MILLI: u128 = 1000;

/// One receiver's token bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Milli-tokens added per `per_ms`.
    refill: u128,
    per_ms: u128,
    capacity: u128,
    tokens: u128,
    /// The part of a milli-token earned since `last_ms`, times `per_ms` (so frequent calls
    /// lose nothing to rounding).
    carry: u128,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_unix_ms`.
    pub fn new(spec: &RateSpec, now_unix_ms: u64) -> Result<Self, RateError> {
        if spec.messages == 0 {
            return Err(RateError::NoMessages);
        }
        let per_ms = spec.per.get().as_millis();
        if per_ms == 0 {
            return Err(RateError::ZeroPer);
        }
        if spec.burst == 0 {
            return Err(RateError::NoBurst);
        }
        let capacity = u128::from(spec.burst) * MILLI;
        Ok(TokenBucket {
            refill: u128::from(spec.messages) * MILLI,
            per_ms,
            capacity,
            tokens: capacity,
            carry: 0,
            last_ms: now_unix_ms,
        })
    }

    fn refill_to(&mut self, now_unix_ms: u64) {
        // Time going backwards (a clock step) adds nothing and keeps the last moment.
        if now_unix_ms <= self.last_ms {
            return;
        }
        let elapsed = u128::from(now_unix_ms - self.last_ms);
        let earned = elapsed
            .saturating_mul(self.refill)
            .saturating_add(self.carry);
        self.tokens = self.tokens.saturating_add(earned / self.per_ms);
        self.carry = earned % self.per_ms;
        if self.tokens >= self.capacity {
            self.tokens = self.capacity;
            self.carry = 0;
        }
        self.last_ms = now_unix_ms;
    }

    /// Takes one token at `now_unix_ms`: `Ok` to send now, or `Err(at)` with the earliest
    /// moment one will be there.
    pub fn try_take(&mut self, now_unix_ms: u64) -> Result<(), u64> {
        self.refill_to(now_unix_ms);
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            return Ok(());
        }
        let missing = MILLI - self.tokens;
        // Round up so that at `at` the token is really there.
        let wait = (missing * self.per_ms)
            .saturating_sub(self.carry)
            .div_ceil(self.refill);
        let at = u128::from(self.last_ms).saturating_add(wait);
        Err(u64::try_from(at).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn ceiling_doubles_to_the_cap() {
        let b = Backoff::default();
        let c: Vec<u64> = (1..=11).map(|n| b.ceiling_ms(n)).collect();
        assert_eq!(
            c,
            [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000]
        );
        assert_eq!(b.ceiling_ms(0), 1000);
        assert_eq!(b.ceiling_ms(u32::MAX), 300_000);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let b = Backoff::default();
        let mut asked = Vec::new();
        let mut max = |n: u64| {
            asked.push(n);
            n
        };
        assert_eq!(b.next(3, 10_000, HOUR, None, &mut max), Retry::At(14_000));
        assert_eq!(asked, vec![4000]);
        assert_eq!(b.next(3, 10_000, HOUR, None, &mut |_| 0), Retry::At(10_000));
        assert_eq!(
            b.next(3, 10_000, HOUR, None, &mut |n| n / 2),
            Retry::At(12_000)
        );
        // A random source answering too much is held to the ceiling.
        assert_eq!(
            b.next(1, 10_000, HOUR, None, &mut |_| u64::MAX),
            Retry::At(11_000)
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        let b = Backoff::default();
        let two = Some(std::time::Duration::from_secs(2));
        // Jitter said 0.5 s; Slack said 2 s.
        assert_eq!(b.next(1, 0, HOUR, two, &mut |_| 500), Retry::At(2000));
        // Jitter said more than Retry-After: jitter stands.
        assert_eq!(b.next(5, 0, HOUR, two, &mut |n| n), Retry::At(16_000));
        // Retry-After beyond the cap is still obeyed.
        let long = Some(std::time::Duration::from_secs(600));
        assert_eq!(b.next(1, 0, HOUR, long, &mut |_| 0), Retry::At(600_000));
    }

    #[test]
    fn gives_up_at_max_age() {
        let b = Backoff::default();
        assert_eq!(b.next(1, 9000, 10_000, None, &mut |n| n), Retry::GiveUp);
        assert_eq!(b.next(1, 9000, 10_001, None, &mut |n| n), Retry::At(10_000));
        let huge = Some(std::time::Duration::from_secs(u64::MAX));
        assert_eq!(b.next(1, 0, u64::MAX, huge, &mut |n| n), Retry::GiveUp);
        assert_eq!(
            b.next(1, u64::MAX, u64::MAX, None, &mut |n| n),
            Retry::GiveUp
        );
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut t = TokenBucket::new(&RateSpec::default(), 0).unwrap();
        for _ in 0..5 {
            assert_eq!(t.try_take(0), Ok(()));
        }
        assert_eq!(t.try_take(0), Err(1000));
        assert_eq!(t.try_take(999), Err(1000));
        assert_eq!(t.try_take(1000), Ok(()));
        assert_eq!(t.try_take(1000), Err(2000));
        // A long pause refills to the burst, not beyond.
        for _ in 0..5 {
            assert_eq!(t.try_take(HOUR), Ok(()));
        }
        assert!(t.try_take(HOUR).is_err());
        // A clock step backwards adds nothing.
        assert_eq!(t.try_take(HOUR - 10_000), Err(HOUR + 1000));
    }

    #[test]
    fn bucket_with_fractional_rates() {
        // 3 messages per 10 s: a token every 3.334 s (rounded up).
        let spec = RateSpec {
            messages: 3,
            per: Duration::from_secs(10),
            burst: 1,
        };
        let mut t = TokenBucket::new(&spec, 0).unwrap();
        assert_eq!(t.try_take(0), Ok(()));
        assert_eq!(t.try_take(0), Err(3334));
        assert_eq!(t.try_take(3334), Ok(()));
        // Asking every millisecond loses nothing to rounding: the next token comes 3334 ms
        // after the last (the bucket was full at 3334, so the 0.2 ms spare was not kept).
        let mut granted = None;
        for now in 3335..=7000 {
            if t.try_take(now).is_ok() {
                granted = Some(now);
                break;
            }
        }
        assert_eq!(granted, Some(6668));
        let bad = |m, p, b| {
            TokenBucket::new(
                &RateSpec {
                    messages: m,
                    per: Duration::from_millis(p),
                    burst: b,
                },
                0,
            )
            .unwrap_err()
        };
        assert_eq!(bad(0, 1000, 1), RateError::NoMessages);
        assert_eq!(bad(1, 0, 1), RateError::ZeroPer);
        assert_eq!(bad(1, 1000, 0), RateError::NoBurst);
    }
}

//! Exponential back-off with full jitter: the n-th retry waits a uniformly random time in
//! `0..min(max, base × 2^(n-1))`. Jitter spreads the retries of many clients that failed at the
//! same moment, so they do not come back as one synchronized wave.

use std::time::Duration;

/// The wait before retry number `retry` (1 for the first retry).
pub fn delay(retry: u32, base: Duration, max: Duration) -> Duration {
    let exp = retry.saturating_sub(1).min(20);
    let cap = base.saturating_mul(1u32 << exp).min(max);
    let micros = cap.as_micros().min(u128::from(u64::MAX)) as u64;
    if micros == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(fastrand::u64(0..=micros))
}

/// `Retry-After` as a number of seconds (the HTTP-date form is not honoured: `None`).
pub fn retry_after(value: &http::HeaderValue) -> Option<Duration> {
    let s = value.to_str().ok()?.trim();
    s.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_grow_then_stop() {
        let base = Duration::from_millis(25);
        let max = Duration::from_millis(250);
        for _ in 0..200 {
            assert!(delay(1, base, max) <= base);
            assert!(delay(2, base, max) <= base * 2);
            assert!(delay(9, base, max) <= max);
            assert!(delay(u32::MAX, base, max) <= max);
        }
    }

    #[test]
    fn retry_after_seconds_only() {
        let v = |s: &'static str| http::HeaderValue::from_static(s);
        assert_eq!(retry_after(&v("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&v(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(&v("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&v("-1")), None);
    }
}

//! Live load figures of one server, shared by the proxy and the balancers.
//!
//! The proxy calls [`Load::begin`] when it sends a request (or opens a TCP connection) to a
//! server and [`Load::end`] when the exchange finishes, with the measured latency; a failure
//! that yields no meaningful latency (connect refused, say) ends with
//! [`Load::end_without_sample`]. Balancers read the figures on every pick, from many tasks at
//! once, so everything here is a lock-free atomic: an `f64` is stored as its bits in an
//! `AtomicU64` and updated with a compare-and-swap loop.
//!
//! Two latency averages are kept:
//!
//! * a plain exponentially weighted moving average ([`Load::ewma_secs`], alpha 0.3), used by
//!   fastest-response, decayed on read by idle time like the peak EWMA;
//! * a Finagle-style *peak* EWMA ([`Load::peak_ewma_secs`]), used by the power-of-two-choices
//!   balancer. A sample above the current value replaces it at once (a server that turns slow
//!   is avoided immediately); a sample below it only pulls the value down with a time
//!   constant of 10 s measured in wall time, so one fast answer does not make a struggling
//!   server look healthy. When read, the value is further decayed by the time elapsed since
//!   the last sample, so a server that was penalised once and then received no traffic is
//!   gradually tried again instead of being starved forever.
//!
//! Both averages are 0 until the first sample; cost functions substitute
//! [`DEFAULT_LATENCY_SECS`] so that a server nobody has measured yet gets tried.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Smoothing factor of the plain EWMA: weight of the newest sample.
const EWMA_ALPHA: f64 = 0.3;
/// Time constant of the peak EWMA decay, in seconds.
const PEAK_TAU_SECS: f64 = 10.0;
/// Latency assumed for a server without samples, so that it looks cheap and gets tried.
pub(super) const DEFAULT_LATENCY_SECS: f64 = 0.001;

/// Live, lock-free load figures of one server.
#[derive(Debug, Default)]
pub struct Load {
    inflight: AtomicU32,
    /// `f64` bits of the plain EWMA, in seconds (0 = no sample yet).
    ewma: AtomicU64,
    /// `f64` bits of the peak EWMA, in seconds (0 = no sample yet).
    peak: AtomicU64,
    /// When `peak` was last updated, in nanoseconds since [`base`].
    peak_stamp: AtomicU64,
}

/// Process-wide reference instant for the timestamps kept in atomics.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds elapsed since [`base`].
fn now_nanos() -> u64 {
    u64::try_from(base().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Updates an `f64` stored as bits with `f`, retrying on contention.
fn update_f64(cell: &AtomicU64, mut f: impl FnMut(f64) -> f64) {
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
        Some(f(f64::from_bits(bits)).to_bits())
    });
}

/// Weight of the old value after `elapsed_secs` of exponential decay.
fn decay(elapsed_secs: f64) -> f64 {
    (-elapsed_secs.max(0.0) / PEAK_TAU_SECS).exp()
}

impl Load {
    pub fn new() -> Self {
        Self::default()
    }

    /// A request (or connection) to the server starts.
    pub fn begin(&self) {
        self.inflight.fetch_add(1, Ordering::AcqRel);
    }

    /// The request finished after `latency`: one fewer in flight, latency averages updated.
    pub fn end(&self, latency: Duration) {
        self.dec_inflight();
        self.sample_at(latency.as_secs_f64(), now_nanos());
    }

    /// The request finished without a meaningful latency (e.g. connect failure).
    pub fn end_without_sample(&self) {
        self.dec_inflight();
    }

    /// Requests currently in flight.
    pub fn inflight(&self) -> u32 {
        self.inflight.load(Ordering::Acquire)
    }

    /// Plain EWMA of the latency in seconds, decayed by the time since the last sample (as
    /// the peak EWMA is), so a server judged slow once and then left idle is tried again
    /// instead of being starved by fastest-response; 0 until the first sample.
    pub fn ewma_secs(&self) -> f64 {
        self.ewma_at(now_nanos())
    }

    fn ewma_at(&self, now: u64) -> f64 {
        let value = f64::from_bits(self.ewma.load(Ordering::Acquire));
        let stamp = self.peak_stamp.load(Ordering::Acquire);
        value * decay(now.saturating_sub(stamp) as f64 / 1e9)
    }

    /// Peak EWMA of the latency in seconds, decayed to now; 0 until the first sample.
    pub fn peak_ewma_secs(&self) -> f64 {
        self.peak_at(now_nanos())
    }

    fn dec_inflight(&self) {
        // Saturating: a stray extra `end` must not wrap to u32::MAX and blacklist the server.
        let _ = self
            .inflight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            });
    }

    fn peak_at(&self, now: u64) -> f64 {
        let value = f64::from_bits(self.peak.load(Ordering::Acquire));
        let stamp = self.peak_stamp.load(Ordering::Acquire);
        value * decay(now.saturating_sub(stamp) as f64 / 1e9)
    }

    /// Records a latency sample of `secs` taken at `now` (nanoseconds since [`base`]).
    fn sample_at(&self, secs: f64, now: u64) {
        if !secs.is_finite() || secs < 0.0 {
            return;
        }
        update_f64(&self.ewma, |old| {
            if old == 0.0 {
                secs
            } else {
                old + EWMA_ALPHA * (secs - old)
            }
        });
        let stamp = self.peak_stamp.load(Ordering::Acquire);
        let elapsed = now.saturating_sub(stamp) as f64 / 1e9;
        update_f64(&self.peak, |old| {
            if old == 0.0 || secs > old {
                secs
            } else {
                let w = decay(elapsed);
                old * w + secs * (1.0 - w)
            }
        });
        // Never move the stamp backwards when two samples race.
        self.peak_stamp.fetch_max(now, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn inflight_follows_begin_and_end() {
        let l = Load::new();
        assert_eq!(l.inflight(), 0);
        l.begin();
        l.begin();
        l.begin();
        assert_eq!(l.inflight(), 3);
        l.end(Duration::from_millis(5));
        assert_eq!(l.inflight(), 2);
        l.end_without_sample();
        assert_eq!(l.inflight(), 1);
        l.end(Duration::from_millis(5));
        assert_eq!(l.inflight(), 0);
        // A stray end does not wrap around.
        l.end_without_sample();
        assert_eq!(l.inflight(), 0);
    }

    #[test]
    fn end_without_sample_leaves_averages_alone() {
        let l = Load::new();
        l.begin();
        l.end_without_sample();
        assert_eq!(l.ewma_secs(), 0.0);
        assert_eq!(l.peak_ewma_secs(), 0.0);
    }

    #[test]
    fn ewma_starts_at_first_sample_and_moves_by_alpha() {
        let l = Load::new();
        assert_eq!(l.ewma_secs(), 0.0);
        // Read at the instant of the last sample, so idle decay plays no part.
        let at_sample = |l: &Load| l.ewma_at(l.peak_stamp.load(Ordering::Acquire));
        l.end(Duration::from_millis(100));
        assert!((at_sample(&l) - 0.1).abs() < 1e-12);
        l.end(Duration::from_millis(200));
        assert!((at_sample(&l) - 0.13).abs() < 1e-12, "{}", at_sample(&l));
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let l = Load::new();
        l.sample_at(0.010, 10 * SEC);
        assert!((l.peak_at(10 * SEC) - 0.010).abs() < 1e-12);
        // A slow sample replaces the value at once.
        l.sample_at(1.0, 11 * SEC);
        assert!((l.peak_at(11 * SEC) - 1.0).abs() < 1e-12);
        // A fast sample right after barely moves it.
        l.sample_at(0.010, 11 * SEC + SEC / 100);
        let v = l.peak_at(11 * SEC + SEC / 100);
        assert!(v > 0.99, "{v}");
        // A fast sample one time constant later moves it most of the way.
        l.sample_at(0.010, 21 * SEC + SEC / 100);
        let v = l.peak_at(21 * SEC + SEC / 100);
        let expected = 0.99 * (-1.0f64).exp() + 0.010;
        assert!((v - expected).abs() < 0.01, "{v} vs {expected}");
        assert!(v < 0.5, "{v}");
        // Repeated fast samples over time converge on the fast latency.
        for i in 1..=20 {
            l.sample_at(0.010, (21 + 5 * i) * SEC);
        }
        let v = l.peak_at(121 * SEC);
        assert!((v - 0.010).abs() < 0.001, "{v}");
    }

    #[test]
    fn peak_ewma_decays_when_idle() {
        let l = Load::new();
        l.sample_at(2.0, 5 * SEC);
        let later = l.peak_at(25 * SEC);
        let expected = 2.0 * (-2.0f64).exp();
        assert!((later - expected).abs() < 1e-9, "{later}");
    }

    #[test]
    fn real_clock_path_records_samples() {
        let l = Load::new();
        l.begin();
        l.end(Duration::from_millis(50));
        let v = l.peak_ewma_secs();
        assert!(v > 0.049 && v <= 0.050, "{v}");
        l.begin();
        l.end(Duration::from_millis(500));
        let v = l.peak_ewma_secs();
        assert!(v > 0.49 && v <= 0.5, "{v}");
    }

    #[test]
    fn plain_ewma_decays_while_idle() {
        let l = Load::new();
        l.sample_at(0.2, 0);
        let stamp = l.peak_stamp.load(Ordering::Acquire);
        let fresh = l.ewma_at(stamp);
        assert!((fresh - 0.2).abs() < 1e-9, "{fresh}");
        let later = l.ewma_at(stamp + 20_000_000_000);
        assert!(
            later < 0.2 * 0.2,
            "20 s idle must decay well below the sample: {later}"
        );
    }
}

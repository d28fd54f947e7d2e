//! The concurrency limit of one upstream, estimated from latency (a gradient estimator in the
//! spirit of Netflix's `Gradient2`, kept deliberately small).
//!
//! Why latency: an upstream that is past its capacity does not fail, it queues. Every request
//! still succeeds, only later, until clients give up and the work done for them is wasted. The
//! first sign is the response time rising above what the upstream takes when nothing waits.
//! So the estimator keeps a **baseline** (the lowest recent average latency) and compares each
//! short window's average with it:
//!
//! ```text
//! gradient  = clamp(tolerance × baseline / recent, 0.5, 1.0)
//! target    = limit × gradient + √limit          (√limit: a little queueing is allowed)
//! limit     = 0.8 × limit + 0.2 × target         (smoothed), within [min, max]
//! ```
//!
//! While latency stays within `tolerance ×` the baseline the limit grows by about
//! `0.2 × √limit` per window; past it, the limit shrinks in proportion to the excess. A window
//! with an overload answer (upstream 503 or 429, or a response timeout) cuts the limit by 10%.
//! A window in which the upstream never held half the limit says nothing about capacity and
//! leaves the limit alone.
//!
//! The baseline follows a lower average at once. It drifts up by at most 0.5% a second, and only
//! in windows where no request had to wait or was shed: a permanent change in the upstream's
//! speed (a slower release) is accepted within minutes once the pressure is off, while a
//! sustained overload can never pass itself off as the new normal.

use ballast_config::{ConcurrencyLimit, LimitAlgorithm};

/// A window closes after this many samples and at least [`WINDOW_MIN_MS`]...
const WINDOW_SAMPLES: u32 = 10;
const WINDOW_MIN_MS: u64 = 50;
/// ...or after this long with at least one sample.
const WINDOW_MAX_MS: u64 = 1000;
/// How fast the baseline may rise, per second.
const BASELINE_DRIFT_PER_S: f64 = 0.005;
/// Share of the target taken at each window.
const SMOOTHING: f64 = 0.2;
/// Cut applied for a window with an overload answer.
const OVERLOAD_CUT: f64 = 0.9;

/// The latency estimator and the limit it sets.
#[derive(Debug, Clone)]
pub struct Estimator {
    limit: f64,
    /// Lowest recent window average, µs (0: none yet).
    baseline_us: f64,
    /// Average of the last closed window, µs.
    recent_us: f64,
    sum_us: f64,
    samples: u32,
    window_start_ms: u64,
    /// Highest in-flight count seen during the window.
    peak: u32,
    overloaded: bool,
    /// Requests had to wait or were shed during the window.
    pressed: bool,
}

impl Estimator {
    pub fn new(cfg: &ConcurrencyLimit, now_ms: u64) -> Self {
        Self {
            limit: f64::from(cfg.initial),
            baseline_us: 0.0,
            recent_us: 0.0,
            sum_us: 0.0,
            samples: 0,
            window_start_ms: now_ms,
            peak: 0,
            overloaded: false,
            pressed: false,
        }
    }

    /// The current limit (at least 1).
    pub fn limit(&self) -> u32 {
        (self.limit as u32).max(1)
    }

    pub fn baseline_ms(&self) -> f64 {
        self.baseline_us / 1000.0
    }

    pub fn recent_ms(&self) -> f64 {
        self.recent_us / 1000.0
    }

    /// A new configuration: a fixed limit is set, an adaptive one is kept within bounds.
    pub fn configure(&mut self, cfg: &ConcurrencyLimit) {
        self.limit = match cfg.algorithm {
            LimitAlgorithm::Fixed => f64::from(cfg.initial),
            LimitAlgorithm::Gradient => self.limit.clamp(f64::from(cfg.min), f64::from(cfg.max)),
        };
    }

    /// Notes the in-flight count after an admission, for the "was the limit used" test.
    pub fn in_flight(&mut self, n: u32) {
        self.peak = self.peak.max(n);
    }

    /// A request had to wait for a slot, or was shed.
    pub fn pressed(&mut self) {
        self.pressed = true;
    }

    /// One finished request: its latency and whether it was an overload answer. Returns true
    /// when the limit changed.
    pub fn sample(
        &mut self,
        cfg: &ConcurrencyLimit,
        rtt_us: f64,
        overload: bool,
        now_ms: u64,
    ) -> bool {
        self.sum_us += rtt_us.max(1.0);
        self.samples += 1;
        self.overloaded |= overload;
        let age = now_ms.saturating_sub(self.window_start_ms);
        let full = (self.samples >= WINDOW_SAMPLES && age >= WINDOW_MIN_MS) || age >= WINDOW_MAX_MS;
        if !full {
            return false;
        }
        let recent = self.sum_us / f64::from(self.samples);
        let used = self.peak.saturating_mul(2) >= self.limit();
        let overloaded = self.overloaded;
        let pressed = self.pressed;
        self.pressed = false;
        self.sum_us = 0.0;
        self.samples = 0;
        self.window_start_ms = now_ms;
        self.peak = 0;
        self.overloaded = false;
        self.recent_us = recent;
        self.baseline_us = if self.baseline_us == 0.0 {
            recent
        } else if pressed {
            // Saturated: higher latency now is queueing, not a new normal.
            recent.min(self.baseline_us)
        } else {
            let drift = 1.0 + BASELINE_DRIFT_PER_S * age as f64 / 1000.0;
            recent.min(self.baseline_us * drift)
        };
        if cfg.algorithm == LimitAlgorithm::Fixed {
            return false;
        }
        let before = self.limit;
        if overloaded {
            self.limit *= OVERLOAD_CUT;
        } else if used {
            let gradient = (cfg.tolerance * self.baseline_us / recent).clamp(0.5, 1.0);
            let target = self.limit * gradient + self.limit.sqrt();
            self.limit = (1.0 - SMOOTHING) * self.limit + SMOOTHING * target;
        }
        self.limit = self.limit.clamp(f64::from(cfg.min), f64::from(cfg.max));
        self.limit != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> ConcurrencyLimit {
        ConcurrencyLimit {
            algorithm: LimitAlgorithm::Gradient,
            initial: 10,
            min: 2,
            max: 200,
            tolerance: 1.5,
            max_wait: Duration::from_millis(50),
            max_queue: 100,
            retry_after: Duration::from_secs(1),
            shed: [0.0; 4],
        }
    }

    /// Drives the estimator against a simulated upstream with `capacity` slots that each take
    /// `service_ms`: with more in flight than slots, latency grows in proportion (a queue).
    fn converge(capacity: f64, service_ms: f64, windows: usize) -> Estimator {
        let c = cfg();
        let mut e = Estimator::new(&c, 0);
        let mut now = 0;
        for _ in 0..windows {
            let limit = f64::from(e.limit());
            let rtt_ms = service_ms * (limit / capacity).max(1.0);
            e.in_flight(e.limit());
            // Offered load is above the limit all along: requests wait at the gate.
            e.pressed();
            for _ in 0..WINDOW_SAMPLES {
                now += 10;
                e.sample(&c, rtt_ms * 1000.0, false, now);
            }
        }
        e
    }

    #[test]
    fn settles_near_the_upstreams_capacity() {
        // 12 slots of 20 ms: the limit grows from 10 and settles where latency reaches about
        // tolerance × baseline, plus the √limit allowance: well above 12, well below 2 × 12.
        let e = converge(12.0, 20.0, 400);
        let l = e.limit();
        assert!((14..=26).contains(&l), "limit {l}");
        assert!((e.baseline_ms() - 20.0).abs() < 1.0, "{}", e.baseline_ms());
    }

    #[test]
    fn grows_while_latency_stays_flat() {
        let e = converge(1000.0, 5.0, 200);
        assert!(e.limit() > 100, "limit {}", e.limit());
    }

    #[test]
    fn shrinks_when_latency_doubles() {
        let c = cfg();
        let mut e = Estimator::new(&c, 0);
        let mut now = 0;
        let mut feed = |e: &mut Estimator, ms: f64, n: usize| {
            for _ in 0..n {
                e.in_flight(e.limit());
                now += 10;
                e.sample(&c, ms * 1000.0, false, now);
            }
        };
        feed(&mut e, 10.0, 300);
        let before = e.limit();
        feed(&mut e, 40.0, 100);
        assert!(e.limit() < before, "{} then {}", before, e.limit());
    }

    #[test]
    fn overload_answers_cut_and_idle_windows_hold() {
        let c = cfg();
        let mut e = Estimator::new(&c, 0);
        let mut now = 0;
        e.in_flight(10);
        for _ in 0..WINDOW_SAMPLES {
            now += 10;
            e.sample(&c, 5000.0, true, now);
        }
        assert_eq!(e.limit(), 9);
        // Nothing near the limit in flight: no change, however good the latency.
        e.in_flight(1);
        for _ in 0..WINDOW_SAMPLES * 5 {
            now += 10;
            e.sample(&c, 1000.0, false, now);
        }
        assert_eq!(e.limit(), 9);
    }

    #[test]
    fn fixed_never_moves_and_bounds_hold() {
        let mut c = cfg();
        c.algorithm = LimitAlgorithm::Fixed;
        c.initial = 7;
        let mut e = Estimator::new(&c, 0);
        e.in_flight(7);
        for i in 0..100 {
            e.sample(&c, 100_000.0, true, i * 100);
        }
        assert_eq!(e.limit(), 7);
        let mut g = cfg();
        g.max = 12;
        e.configure(&g);
        let mut now = 10_000;
        for _ in 0..500 {
            e.in_flight(e.limit());
            now += 10;
            e.sample(&g, 1000.0, false, now);
        }
        assert_eq!(e.limit(), 12);
    }
}

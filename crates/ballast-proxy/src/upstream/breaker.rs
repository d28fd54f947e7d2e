//! Circuit breaker per server: stop sending to a server that keeps failing, then let a few
//! probe requests through after a cool-down and close again only if they succeed.
//!
//! Passive ejection (see `server`) reacts to a streak of failures; the breaker also opens on an
//! error *ratio* over a sliding window (a server failing every other request never has a long
//! streak), and it comes back through probes instead of all at once.
//!
//! ```text
//!   Closed   --(N consecutive failures, or ≥ min_requests in the window with
//!                failures/requests ≥ error_ratio)-->                     Open(until = now + cool_down)
//!   Open     --(cool_down passed; the next pick is a probe)-->          HalfOpen
//!   HalfOpen --(probes successes)-->                                    Closed (window cleared)
//!   HalfOpen --(any failure)-->                                         Open(until = now + cool_down)
//!   HalfOpen --(probes lost: no verdict within cool_down)-->            HalfOpen (a new round)
//! ```
//! While Open the server is not eligible; while HalfOpen only `probes` requests are let
//! through. The fast path (Closed) is one atomic load per eligibility check.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

use ballast_config::BreakerConfig;

use super::server::Outcome;
use crate::window::Window;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
/// The window is kept in ten buckets.
const BUCKETS: u64 = 10;

/// A state change, for events and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

/// Breaker phase as shown in status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half-open",
        }
    }
}

#[derive(Default)]
struct Inner {
    consecutive: u32,
    /// Requests and failures per tenth of the configured window.
    window: Window,
    open_until_ms: u64,
    /// When the current round of probes began; a round whose outcomes never all arrive (the
    /// client went away) is restarted after another cool-down instead of sticking.
    probes_since_ms: u64,
    probes_sent: u32,
    probes_ok: u32,
}

/// The breaker of one server.
#[derive(Default)]
pub struct Breaker {
    phase: AtomicU8,
    inner: Mutex<Inner>,
    pub opened_total: AtomicU64,
}

impl Breaker {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            OPEN => Phase::Open,
            HALF_OPEN => Phase::HalfOpen,
            _ => Phase::Closed,
        }
    }

    /// Whether the server may be picked now (no state change).
    pub fn permits(&self, cfg: &BreakerConfig, now_ms: u64) -> bool {
        match self.phase.load(Relaxed) {
            CLOSED => true,
            _ => {
                let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                match self.phase.load(Relaxed) {
                    OPEN => now_ms >= inner.open_until_ms,
                    HALF_OPEN => {
                        inner.probes_sent < cfg.probes
                            || now_ms >= inner.probes_since_ms + cfg.cool_down.as_millis() as u64
                    }
                    _ => true,
                }
            }
        }
    }

    /// The server was picked: past the cool-down this request is a probe.
    pub fn picked(&self, cfg: &BreakerConfig, now_ms: u64) -> Option<Transition> {
        if self.phase.load(Relaxed) == CLOSED {
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match self.phase.load(Relaxed) {
            OPEN if now_ms >= inner.open_until_ms => {
                inner.probes_sent = 1;
                inner.probes_ok = 0;
                inner.probes_since_ms = now_ms;
                self.phase.store(HALF_OPEN, Relaxed);
                Some(Transition::HalfOpened)
            }
            HALF_OPEN => {
                if inner.probes_sent >= cfg.probes
                    && now_ms >= inner.probes_since_ms + cfg.cool_down.as_millis() as u64
                {
                    inner.probes_sent = 0;
                    inner.probes_ok = 0;
                    inner.probes_since_ms = now_ms;
                }
                inner.probes_sent += 1;
                None
            }
            _ => None,
        }
    }

    /// Records an attempt's outcome.
    pub fn record(&self, cfg: &BreakerConfig, outcome: Outcome, now_ms: u64) -> Option<Transition> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let failed = outcome == Outcome::Failure;
        match self.phase.load(Relaxed) {
            HALF_OPEN => {
                if failed {
                    return Some(self.open(&mut inner, cfg, now_ms));
                }
                inner.probes_ok += 1;
                if inner.probes_ok >= cfg.probes {
                    inner.window.clear();
                    inner.consecutive = 0;
                    self.phase.store(CLOSED, Relaxed);
                    return Some(Transition::Closed);
                }
                None
            }
            OPEN => None,
            _ => {
                let bucket_ms = (cfg.window.as_millis() as u64 / BUCKETS).max(1);
                let slot = now_ms / bucket_ms;
                inner.window.add(slot, 1, u32::from(failed));
                if !failed {
                    inner.consecutive = 0;
                    return None;
                }
                inner.consecutive += 1;
                let (requests, failures) = inner.window.totals(slot);
                let streak =
                    cfg.consecutive_failures > 0 && inner.consecutive >= cfg.consecutive_failures;
                let ratio = requests >= u64::from(cfg.min_requests)
                    && failures as f64 >= cfg.error_ratio * requests as f64;
                (streak || ratio).then(|| self.open(&mut inner, cfg, now_ms))
            }
        }
    }

    fn open(&self, inner: &mut Inner, cfg: &BreakerConfig, now_ms: u64) -> Transition {
        inner.open_until_ms = now_ms + cfg.cool_down.as_millis() as u64;
        inner.consecutive = 0;
        inner.probes_sent = 0;
        inner.probes_ok = 0;
        self.phase.store(OPEN, Relaxed);
        self.opened_total.fetch_add(1, Relaxed);
        Transition::Opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            error_ratio: 0.5,
            min_requests: 10,
            window: Duration::from_secs(10),
            cool_down: Duration::from_secs(5),
            probes: 2,
        }
    }

    #[test]
    fn opens_on_a_streak_then_probes_then_closes() {
        let (c, b) = (cfg(), Breaker::default());
        assert_eq!(b.record(&c, Outcome::Failure, 0), None);
        assert_eq!(b.record(&c, Outcome::Failure, 0), None);
        assert_eq!(b.record(&c, Outcome::Failure, 0), Some(Transition::Opened));
        assert!(!b.permits(&c, 4_999));
        assert!(b.permits(&c, 5_000));
        assert_eq!(b.picked(&c, 5_000), Some(Transition::HalfOpened));
        assert!(b.permits(&c, 5_000), "a second probe may go");
        assert_eq!(b.picked(&c, 5_000), None);
        assert!(
            !b.permits(&c, 5_000),
            "only `probes` requests while half-open"
        );
        assert!(
            b.permits(&c, 10_000),
            "probes that never report back are replaced after another cool-down"
        );
        assert_eq!(b.record(&c, Outcome::Success, 5_010), None);
        assert_eq!(
            b.record(&c, Outcome::Success, 5_020),
            Some(Transition::Closed)
        );
        assert_eq!(b.phase(), Phase::Closed);
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let (c, b) = (cfg(), Breaker::default());
        for _ in 0..3 {
            b.record(&c, Outcome::Failure, 0);
        }
        b.picked(&c, 6_000);
        assert_eq!(
            b.record(&c, Outcome::Failure, 6_001),
            Some(Transition::Opened)
        );
        assert!(!b.permits(&c, 10_000));
        assert!(b.permits(&c, 11_001));
    }

    #[test]
    fn opens_on_error_ratio_without_a_streak() {
        let (c, b) = (cfg(), Breaker::default());
        let mut opened = false;
        // Fail every other request: never 3 in a row, but 50% of ≥ 10.
        for i in 0..20 {
            let o = if i % 2 == 0 {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            opened |= b.record(&c, o, 100 * i) == Some(Transition::Opened);
        }
        assert!(opened);
        assert_eq!(b.phase(), Phase::Open);
    }
}

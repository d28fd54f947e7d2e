//! Everything Ballast knows about one server of one upstream, shared lock-free between the
//! request path, the health checkers and the admin API.
//!
//! A `ServerState` outlives reloads: when a new config keeps a server (same upstream, same
//! address) the new pool reuses the same `Arc<ServerState>`, so health verdicts, ejections,
//! drain flags, pooled connections and counters carry over.
//!
//! Availability = active health says up ∧ not drained ∧ not passively ejected.
//!
//! Active health state machine (transitions written here, driven by `health::active`):
//! ```text
//!   Up   --(fall consecutive failed checks)-->  Down
//!   Down --(rise consecutive good checks)---->  Up   (up_since = now: slow start begins)
//! ```
//! A server starts Up, except one that a DNS answer added after start to an upstream with
//! active checks (`new_pending`): it starts Down and needs `rise` good checks.
//! Passive ejection state machine (driven by request outcomes, see `record_outcome`, and by
//! active checks, see `record_check`):
//! ```text
//!   In  --(N consecutive connect failures/5xx, pool cap allows)--> Ejected(until = now + base·2^k)
//!        (the active-check success streak restarts at 0; k += 1)
//!   Ejected --(rise consecutive good active checks since the ejection,
//!              passive.uneject_on_check)--> In (until = now: slow start)   [cause active_check]
//!   Ejected --(deadline passes)--> In (up_since = deadline: slow start)     [cause expired]
//!   In  --(a request succeeds)--> In with k = 0
//! ```
//! An `Eject` command (`Gateway::apply`, see `eject_for`) enters the same Ejected state
//! without failures and past the pool's ejection cap (someone decided), for the time it names:
//! ```text
//!   In or Ejected --(Eject command for d)--> Ejected(until = max(until, now + d), ordered)
//!   Ejected, ordered --(deadline passes)--> In (slow start)                 [cause expired]
//! ```
//! An ordered ejection is not ended early by active checks (the server usually passes them:
//! it was taken out for another reason), and does not raise the back-off level `k`.
//! An ejection that ran out is announced by the sweeper (`upstream::sweep`, at most a second
//! late): nothing on the request path watches the clock for it.
//!
//! Drain state machine (driven by `Gateway::apply` for `Drain`/`Enable` commands, see
//! `set_drained`; and by DNS discovery for an address that left its name's answer):
//! ```text
//!   Serving  --(Drain command)--> Draining (no new requests; in-flight ones finish)
//!                                          [event server_drained, with who asked]
//!   Draining --(Enable command)--> Serving (up_since = now: slow start)
//!                                          [event server_enabled, with who asked]
//!   Serving  --(address gone from the DNS answer)--> Draining, and out of the pool
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use ballast_config::Passive;

use super::pool::ConnPool;
use crate::balancer::Load;
use crate::clock::{after_ms, now_ms};

/// Live state of one server.
pub struct ServerState {
    pub addr: SocketAddr,
    /// `addr` as text, made once (the access log writes it for every request).
    pub addr_text: String,
    /// Opaque id used as the sticky-cookie value (does not reveal the address).
    pub cookie_id: String,
    pub load: Load,
    pub pool: ConnPool,
    up: AtomicBool,
    check_ok_streak: AtomicU32,
    check_fail_streak: AtomicU32,
    /// When the server last became available again (0 = since start: no slow start).
    up_since_ms: AtomicU64,
    drained: AtomicBool,
    fail_streak: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// An ejection began and its end has not been announced yet (see [`ServerState::take_expired`]).
    ejection_open: AtomicBool,
    ejection_level: AtomicU32,
    /// The current ejection was ordered by a command: active checks do not end it early.
    ejection_ordered: AtomicBool,
    pub ejections_total: AtomicU64,
    pub checks_failed_total: AtomicU64,
    pub transitions_total: AtomicU64,
    /// Circuit breaker (consulted only when the upstream configures one).
    pub breaker: super::breaker::Breaker,
}

/// What one active check changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckChange {
    /// `Some(up)` when the check moved the server up or down.
    pub up: Option<bool>,
    /// The check ended a passive ejection (failback).
    pub unejected: bool,
}

/// What a request attempt did, as passive health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Connect failure, connection lost before a response, or a 5xx.
    Failure,
}

impl ServerState {
    /// A server that starts up (as at process start).
    pub fn new(upstream: &str, addr: SocketAddr) -> Self {
        Self {
            addr,
            addr_text: addr.to_string(),
            cookie_id: cookie_id(upstream, addr),
            load: Load::new(),
            pool: ConnPool::new(),
            up: AtomicBool::new(true),
            check_ok_streak: AtomicU32::new(0),
            check_fail_streak: AtomicU32::new(0),
            up_since_ms: AtomicU64::new(0),
            drained: AtomicBool::new(false),
            fail_streak: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            ejection_open: AtomicBool::new(false),
            ejection_level: AtomicU32::new(0),
            ejection_ordered: AtomicBool::new(false),
            ejections_total: AtomicU64::new(0),
            checks_failed_total: AtomicU64::new(0),
            transitions_total: AtomicU64::new(0),
            breaker: Default::default(),
        }
    }

    /// A server added by a reload: it ramps up under slow start.
    pub fn new_added(upstream: &str, addr: SocketAddr) -> Self {
        let s = Self::new(upstream, addr);
        s.up_since_ms.store(now_ms(), Relaxed);
        s
    }

    /// A server that appeared after start (a DNS answer) in an upstream with active checks:
    /// it is down until `rise` good checks, then ramps up under slow start.
    pub fn new_pending(upstream: &str, addr: SocketAddr) -> Self {
        let s = Self::new(upstream, addr);
        s.up.store(false, Relaxed);
        s
    }

    /// Whether active health checks consider the server up.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Relaxed)
    }

    /// Drain (no new requests; in-flight ones finish) or enable; returns whether it changed.
    pub fn set_drained(&self, drained: bool) -> bool {
        let was = self.drained.swap(drained, Relaxed);
        if was && !drained {
            self.up_since_ms.store(now_ms(), Relaxed);
        }
        was != drained
    }

    /// Whether passive health has the server ejected right now.
    pub fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until_ms.load(Relaxed) > now
    }

    /// May the server take a new request?
    pub fn is_available(&self, now: u64) -> bool {
        self.is_up() && !self.is_drained() && !self.is_ejected(now)
    }

    /// Weight scaled by slow start: ramps linearly from 10% to 100% over `window`.
    pub fn effective_weight(
        &self,
        weight: u32,
        window: Option<std::time::Duration>,
        now: u64,
    ) -> f64 {
        let w = f64::from(weight.max(1));
        let Some(window) = window else { return w };
        let since = self
            .up_since_ms
            .load(Relaxed)
            .max(self.ejected_until_ms.load(Relaxed));
        if since == 0 || now <= since {
            return if since == 0 { w } else { w * 0.1 };
        }
        let frac = (now - since) as f64 / window.as_millis().max(1) as f64;
        w * frac.clamp(0.1, 1.0)
    }

    /// Feeds one active check result. With `uneject`, `rise` good checks in a row since a
    /// passive ejection began end that ejection at once (failback).
    pub fn record_check(&self, ok: bool, rise: u32, fall: u32, uneject: bool) -> CheckChange {
        let mut change = CheckChange::default();
        if ok {
            self.check_fail_streak.store(0, Relaxed);
            let streak = self.check_ok_streak.fetch_add(1, Relaxed).saturating_add(1);
            if streak < rise {
                return change;
            }
            let now = now_ms();
            if !self.is_up() {
                self.up.store(true, Relaxed);
                self.up_since_ms.store(now, Relaxed);
                self.transitions_total.fetch_add(1, Relaxed);
                change.up = Some(true);
            }
            if uneject && !self.ejection_ordered.load(Relaxed) {
                let until = self.ejected_until_ms.load(Relaxed);
                // `until = now` ends the ejection and starts slow start from this moment.
                if until > now
                    && self
                        .ejected_until_ms
                        .compare_exchange(until, now, Relaxed, Relaxed)
                        .is_ok()
                {
                    self.ejection_open.store(false, Relaxed);
                    change.unejected = true;
                }
            }
        } else {
            self.checks_failed_total.fetch_add(1, Relaxed);
            self.check_ok_streak.store(0, Relaxed);
            let streak = self
                .check_fail_streak
                .fetch_add(1, Relaxed)
                .saturating_add(1);
            if self.is_up() && streak >= fall {
                self.up.store(false, Relaxed);
                self.transitions_total.fetch_add(1, Relaxed);
                self.pool.clear();
                change.up = Some(false);
            }
        }
        change
    }

    /// True once per ejection that ran out by itself (not ended by active checks): the
    /// sweeper announces it.
    pub fn take_expired(&self, now: u64) -> bool {
        self.ejection_open.load(Relaxed)
            && !self.is_ejected(now)
            && self.ejection_open.swap(false, Relaxed)
    }

    /// Feeds one request outcome to passive health. `may_eject` is asked only when the
    /// threshold is reached, and says whether the pool's ejection cap allows one more.
    /// Returns true when this call ejected the server.
    pub fn record_outcome(
        &self,
        outcome: Outcome,
        cfg: Option<&Passive>,
        may_eject: impl FnOnce() -> bool,
    ) -> bool {
        let Some(cfg) = cfg else { return false };
        match outcome {
            Outcome::Success => {
                self.fail_streak.store(0, Relaxed);
                if self.ejection_level.load(Relaxed) != 0 && !self.is_ejected(now_ms()) {
                    self.ejection_level.store(0, Relaxed);
                }
                false
            }
            Outcome::Failure => {
                let streak = self.fail_streak.fetch_add(1, Relaxed).saturating_add(1);
                if streak < cfg.consecutive_failures || self.is_ejected(now_ms()) || !may_eject() {
                    return false;
                }
                self.fail_streak.store(0, Relaxed);
                let level = self.ejection_level.fetch_add(1, Relaxed).min(16);
                let d = cfg
                    .ejection
                    .saturating_mul(1u32 << level)
                    .min(cfg.max_ejection);
                self.ejected_until_ms.store(after_ms(d), Relaxed);
                self.ejection_ordered.store(false, Relaxed);
                self.ejection_open.store(true, Relaxed);
                // Failback counts good checks from here: earlier ones predate the failures.
                self.check_ok_streak.store(0, Relaxed);
                self.ejections_total.fetch_add(1, Relaxed);
                self.pool.clear();
                true
            }
        }
    }

    /// Ejects the server for `d` from now on a command's order (see the module doc); an
    /// ejection already running longer keeps its end. Returns the deadline (`clock::now_ms`
    /// time).
    pub fn eject_for(&self, d: std::time::Duration) -> u64 {
        let until = after_ms(d);
        let until = self.ejected_until_ms.fetch_max(until, Relaxed).max(until);
        self.ejection_ordered.store(true, Relaxed);
        self.ejection_open.store(true, Relaxed);
        self.check_ok_streak.store(0, Relaxed);
        self.pool.clear();
        until
    }

    /// Milliseconds of ejection left (0 when not ejected).
    pub fn ejected_for_ms(&self, now: u64) -> u64 {
        self.ejected_until_ms.load(Relaxed).saturating_sub(now)
    }
}

/// Stable, non-revealing id for a server: hex of a 64-bit FNV-1a over upstream and address.
fn cookie_id(upstream: &str, addr: SocketAddr) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in upstream.bytes().chain([0]).chain(addr.to_string().bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn rise_and_fall_need_streaks() {
        let s = ServerState::new("u", addr());
        let up = |ok| s.record_check(ok, 2, 3, true).up;
        assert_eq!(up(false), None);
        assert_eq!(up(false), None);
        assert_eq!(up(true), None, "a success resets the fail streak");
        assert_eq!(up(false), None);
        assert_eq!(up(false), None);
        assert_eq!(up(false), Some(false));
        assert!(!s.is_up());
        assert_eq!(up(true), None);
        assert_eq!(up(true), Some(true));
        assert!(s.is_up());
    }

    #[test]
    fn passive_ejection_respects_cap_and_backs_off() {
        let cfg = Passive {
            consecutive_failures: 2,
            ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(15),
            max_ejected: 0.5,
            uneject_on_check: true,
        };
        let s = ServerState::new("u", addr());
        assert!(!s.record_outcome(Outcome::Failure, Some(&cfg), || true));
        assert!(
            !s.record_outcome(Outcome::Failure, Some(&cfg), || false),
            "cap refuses"
        );
        assert!(s.record_outcome(Outcome::Failure, Some(&cfg), || true));
        let now = now_ms();
        assert!(s.is_ejected(now));
        assert!(!s.is_available(now));
        assert!(s.ejected_for_ms(now) <= 10_000 && s.ejected_for_ms(now) > 9_000);
    }

    fn passive(uneject_on_check: bool) -> Passive {
        Passive {
            consecutive_failures: 1,
            ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(60),
            max_ejected: 1.0,
            uneject_on_check,
        }
    }

    #[test]
    fn rise_good_checks_after_an_ejection_end_it() {
        let s = ServerState::new("u", addr());
        let cfg = passive(true);
        // Good checks from before the ejection do not count towards failback.
        s.record_check(true, 2, 2, true);
        s.record_check(true, 2, 2, true);
        assert!(s.record_outcome(Outcome::Failure, Some(&cfg), || true));
        assert!(s.is_ejected(now_ms()));
        assert_eq!(s.record_check(true, 2, 2, true), CheckChange::default());
        let c = s.record_check(true, 2, 2, true);
        assert_eq!(
            c,
            CheckChange {
                up: None,
                unejected: true
            }
        );
        assert!(s.is_available(now_ms()));
        assert!(!s.take_expired(now_ms()), "ended by checks: not an expiry");
        // Level kept until a request succeeds: the next ejection is twice as long.
        assert!(s.record_outcome(Outcome::Failure, Some(&cfg), || true));
        let left = s.ejected_for_ms(now_ms());
        assert!(left > 59_000, "{left}");
    }

    #[test]
    fn failback_off_waits_for_the_deadline() {
        let s = ServerState::new("u", addr());
        let cfg = passive(false);
        assert!(s.record_outcome(Outcome::Failure, Some(&cfg), || true));
        for _ in 0..5 {
            assert!(!s.record_check(true, 2, 2, false).unejected);
        }
        let now = now_ms();
        assert!(s.is_ejected(now));
        assert!(!s.take_expired(now));
        let later = now + 30_001;
        assert!(s.take_expired(later), "the deadline passed");
        assert!(!s.take_expired(later), "announced once");
    }

    #[test]
    fn an_ordered_ejection_lasts_its_time_despite_good_checks() {
        let s = ServerState::new("u", addr());
        let until = s.eject_for(Duration::from_secs(30));
        let now = now_ms();
        assert!(s.is_ejected(now) && !s.is_available(now));
        assert!(until >= now + 29_000, "{until} {now}");
        for _ in 0..5 {
            assert!(!s.record_check(true, 2, 2, true).unejected);
        }
        assert!(s.is_ejected(now_ms()));
        // A shorter order does not cut a longer ejection short.
        assert_eq!(s.eject_for(Duration::from_secs(1)), until);
        assert!(!s.take_expired(now_ms()));
        assert!(s.take_expired(until), "it comes back by itself");
        assert!(s.is_available(until));
        assert_eq!(
            s.ejection_level.load(Relaxed),
            0,
            "no back-off level raised"
        );
    }

    #[test]
    fn slow_start_ramps() {
        let s = ServerState::new_added("u", addr());
        let now = now_ms();
        let w = s.effective_weight(10, Some(Duration::from_secs(10)), now);
        assert!(w <= 1.0 + 1e-9, "{w}");
        let later = s.effective_weight(10, Some(Duration::from_secs(10)), now + 5_000);
        assert!((later - 5.0).abs() < 0.1, "{later}");
        assert_eq!(
            s.effective_weight(10, Some(Duration::from_secs(10)), now + 20_000),
            10.0
        );
        assert_eq!(
            ServerState::new("u", addr()).effective_weight(10, Some(Duration::from_secs(10)), now),
            10.0
        );
    }
}

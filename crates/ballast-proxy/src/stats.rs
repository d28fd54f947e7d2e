//! Request counters and latency histograms kept in atomics on the hot path and read only when
//! `/metrics` is scraped.
//!
//! Counters are registered once per (route, upstream, server) when a config is applied and the
//! same `Arc`s are handed out again after a reload, so a reload never resets a counter.

use crate::resilience::admission::Admission;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::cache::{CacheCounters, RouteCache};
use crate::error::Refusal;
use crate::resilience::waiting_room::WaitingRoom;

/// Requests by status class: index 0 = 1xx … 4 = 5xx.
#[derive(Default)]
pub struct ClassCounters {
    pub by_class: [AtomicU64; 5],
}

impl ClassCounters {
    pub fn record(&self, status: u16) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[i].fetch_add(1, Relaxed);
    }
}

/// Upper bounds (seconds) of the latency histogram buckets (shared with the monitor's
/// `gateway` probe, which reads the histogram in-process).
pub const BUCKETS: [f64; 14] = ballast_core::counters::LATENCY_BOUNDS_S;

/// A fixed-bucket latency histogram in atomics.
#[derive(Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    pub buckets: [AtomicU64; BUCKETS.len() + 1],
    pub count: AtomicU64,
    pub sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Relaxed);
    }
}

/// Label set of a request counter.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub route: String,
    pub upstream: String,
    /// Server address, or `none` when no server was reached.
    pub server: String,
}

/// What a route's resilience policies did.
#[derive(Default)]
pub struct PolicyCounters {
    /// Attempts after the first.
    pub retries: AtomicU64,
    /// Retries refused because the upstream's or the client's budget was spent.
    pub budget_exhausted: AtomicU64,
    /// Retryable answers not retried because the upstream forbade it.
    pub retry_forbidden: AtomicU64,
    /// Sorry pages served instead of an upstream failure.
    pub sorry_served: AtomicU64,
    /// 1 + the second of the last budget-exhausted event (0: none yet).
    pub budget_event_sec: AtomicU64,
}

/// Registry of every counter ever handed out, so they survive reloads.
#[derive(Default)]
pub struct StatsRegistry {
    requests: Mutex<HashMap<RequestKey, Arc<ClassCounters>>>,
    latency: Mutex<HashMap<String, Arc<Histogram>>>,
    policy: Mutex<HashMap<String, Arc<PolicyCounters>>>,
    flood: Mutex<HashMap<String, Arc<crate::resilience::flood::FloodGuard>>>,
    admission: Mutex<HashMap<String, Arc<Admission>>>,
    /// Waiting rooms by route, newest settings first. More than one is kept so that a reload
    /// that fails after building its routes (a port in use) leaves the running room findable.
    rooms: Mutex<HashMap<String, Vec<Arc<WaitingRoom>>>>,
    caches: Mutex<HashMap<String, Arc<RouteCache>>>,
    cache_counters: Mutex<HashMap<String, Arc<CacheCounters>>>,
}

/// Waiting rooms kept per route name.
const ROOMS_KEPT: usize = 4;

impl StatsRegistry {
    pub fn requests(&self, key: RequestKey) -> Arc<ClassCounters> {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key).or_default().clone()
    }

    pub fn latency(&self, route: &str) -> Arc<Histogram> {
        let mut m = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(route.to_string()).or_default().clone()
    }

    pub fn policy(&self, route: &str) -> Arc<PolicyCounters> {
        let mut m = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(route.to_string()).or_default().clone()
    }

    /// A route's flood guard (its blocks survive reloads).
    pub fn flood(&self, route: &str) -> Arc<crate::resilience::flood::FloodGuard> {
        let mut m = self.flood.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(route.to_string()).or_default().clone()
    }

    /// An upstream's admission control, configured with `cfg` (its learned limit and its
    /// counters survive reloads).
    pub fn admission(
        &self,
        upstream: &str,
        cfg: &ballast_config::ConcurrencyLimit,
        events: &Arc<crate::events::EventLog>,
    ) -> Arc<Admission> {
        let mut m = self.admission.lock().unwrap_or_else(|e| e.into_inner());
        let a = m
            .entry(upstream.to_string())
            .or_insert_with(|| Arc::new(Admission::new(upstream, cfg, events.clone())))
            .clone();
        a.configure(cfg);
        a
    }

    /// Forgets the admission control of upstreams that no longer have one.
    pub fn retain_admission(&self, keep: &std::collections::HashSet<&str>) {
        let mut m = self.admission.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|k, _| keep.contains(k.as_str()));
    }

    /// Snapshot of all admission controls, by upstream.
    pub fn all_admission(&self) -> Vec<(String, Arc<Admission>)> {
        let m = self.admission.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// A route's response cache: the running one when the route, its upstream and its cache
    /// settings are unchanged (a reload keeps what is stored), else a new, empty one.
    pub fn cache(
        &self,
        route: &str,
        upstream: &str,
        cfg: &ballast_config::CacheConfig,
    ) -> Arc<RouteCache> {
        let mut m = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = m.get(route).filter(|c| c.reusable_for(upstream, cfg)) {
            return c.clone();
        }
        let counters = self
            .cache_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route.to_string())
            .or_default()
            .clone();
        let c = Arc::new(RouteCache::new(route, upstream, cfg, counters));
        m.insert(route.to_string(), c.clone());
        c
    }

    /// Drops the caches of routes that no longer have one (their memory goes with them once
    /// the requests still holding them finish).
    pub fn retain_caches(&self, keep: impl Fn(&str) -> bool) {
        let mut m = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|route, _| keep(route));
    }

    /// The live caches, by route.
    pub fn all_caches(&self) -> Vec<Arc<RouteCache>> {
        let m = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.values().cloned().collect();
        v.sort_by(|a, b| a.route.cmp(&b.route));
        v
    }

    /// Cache counters of every route that ever had a cache, by route.
    pub fn all_cache_counters(&self) -> Vec<(String, Arc<CacheCounters>)> {
        let m = self
            .cache_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// A route's waiting room: the existing one while its settings are unchanged (a reload
    /// keeps the line and the sessions), else a new one; `None` without a `waiting_room`.
    pub fn waiting_room(
        &self,
        route: &str,
        cfg: Option<&ballast_config::WaitingRoomConfig>,
    ) -> Option<Arc<WaitingRoom>> {
        let cfg = cfg?;
        let mut m = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let rooms = m.entry(route.to_string()).or_default();
        if let Some(r) = rooms.iter().find(|r| r.cfg == *cfg) {
            return Some(r.clone());
        }
        let r = Arc::new(WaitingRoom::new(cfg.clone()));
        rooms.insert(0, r.clone());
        rooms.truncate(ROOMS_KEPT);
        Some(r)
    }

    /// The waiting room serving `route` with settings `cfg`, if one was made.
    pub fn room(
        &self,
        route: &str,
        cfg: &ballast_config::WaitingRoomConfig,
    ) -> Option<Arc<WaitingRoom>> {
        let m = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        m.get(route)?.iter().find(|r| r.cfg == *cfg).cloned()
    }

    /// Snapshot of all flood guards, by route.
    pub fn all_flood(&self) -> Vec<(String, Arc<crate::resilience::flood::FloodGuard>)> {
        let m = self.flood.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Snapshot of all policy counters, by route.
    pub fn all_policy(&self) -> Vec<(String, Arc<PolicyCounters>)> {
        let m = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Snapshot of all request counters.
    pub fn all_requests(&self) -> Vec<(RequestKey, Arc<ClassCounters>)> {
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Snapshot of all latency histograms.
    pub fn all_latency(&self) -> Vec<(String, Arc<Histogram>)> {
        let m = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Gateway-wide counters.
#[derive(Default)]
pub struct GlobalStats {
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub access_log_dropped: AtomicU64,
    /// Requests refused as malformed, by [`Refusal`](crate::error::Refusal).
    pub refused: Refusals,
    pub tcp_connections: AtomicU64,
    pub upgrades: AtomicU64,
}

/// Requests refused as malformed, one counter per [`Refusal`] reason.
#[derive(Default)]
pub struct Refusals([AtomicU64; Refusal::ALL.len()]);

impl Refusals {
    pub fn count(&self, reason: Refusal) {
        self.0[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn get(&self, reason: Refusal) -> u64 {
        self.0[reason.index()].load(Relaxed)
    }

    /// All reasons together.
    pub fn total(&self) -> u64 {
        Refusal::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

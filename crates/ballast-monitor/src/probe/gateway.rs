//! `kind = "gateway"`: the gateway's own traffic, read in-process from its counters and status
//! (never scraped), so a dead server or a 5xx storm is seen within one interval.
//!
//! Counters only grow, so rates and ratios come from the difference between the newest
//! reading and the oldest one still inside `window`; percentiles come from the same difference
//! of the latency histogram, interpolated inside the bucket that holds the rank. A series with
//! no traffic in the window has no `error_ratio` or percentile (missing data), not a 0 that
//! would read as "perfect".
//!
//! Series (labels in braces):
//! - per route `{route}`: `requests_per_s`, `error_ratio` (5xx share), `p50_ms`, `p95_ms`,
//!   `p99_ms`, `retries_per_s`;
//! - per upstream `{upstream}`: `requests_per_s`, `error_ratio`, `inflight`, `servers`
//!   (not drained), `healthy_servers` (not drained, health up, not ejected, breaker not open),
//!   `servers_down` (`servers - healthy_servers`), `shed_per_s`, `open_breakers`; an upstream
//!   whose servers are all drained has no `healthy_servers` or `servers_down` (planned work
//!   is not an outage to page for);
//! - per server `{upstream, server}`: `requests_per_s`, `error_ratio`, `inflight`, `healthy`;
//! - per TLS certificate of the gateway's listeners `{listener, names}`: `days_left`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use ballast_core::counters::LATENCY_BOUNDS_S;
use ballast_core::{GatewayCounters, Labels, Snapshot};
use serde::Deserialize;

use super::{BoxFuture, Outcome, Probe, SpecError};

/// Where the probe reads the gateway: its status and its counters, now.
pub type GatewaySource = Arc<dyn Fn() -> (Snapshot, GatewayCounters) + Send + Sync>;

/// `[[monitor]] kind = "gateway"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Only this upstream (its servers, and the routes that send to it).
    pub upstream: Option<String>,
    /// Only this route.
    pub route: Option<String>,
    /// Rates, ratios and percentiles are over this much time (default 10s).
    pub window: Option<ballast_core::Duration>,
}

const DEFAULT_WINDOW_MS: u64 = 10_000;

impl GatewaySpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.window.is_some_and(|w| w.is_zero()) {
            return Err(SpecError::new("window", "must be more than 0s"));
        }
        Ok(())
    }
}

pub struct GatewayProbe {
    spec: GatewaySpec,
    window_ms: u64,
    source: GatewaySource,
    /// Past readings, oldest first, spanning at least the window.
    past: Mutex<VecDeque<GatewayCounters>>,
}

impl GatewayProbe {
    pub fn new(spec: GatewaySpec, source: GatewaySource) -> Result<Self, SpecError> {
        spec.validate()?;
        let window_ms = spec
            .window
            .map_or(DEFAULT_WINDOW_MS, |w| w.get().as_millis() as u64);
        Ok(GatewayProbe {
            spec,
            window_ms,
            source,
            past: Mutex::new(VecDeque::new()),
        })
    }

    /// Measures against the readings kept so far and keeps `now` for later runs.
    pub fn measure(&self, snapshot: &Snapshot, now: GatewayCounters) -> Outcome {
        let mut past = self.past.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the newest reading at or before the window's start, and everything after.
        let start = now.at_unix_ms.saturating_sub(self.window_ms);
        while past.len() >= 2 && past[1].at_unix_ms <= start {
            past.pop_front();
        }
        let mut out = Outcome::default();
        match past.front() {
            Some(then) => self.rates(then, &now, &mut out),
            None => out.warming_up = true,
        }
        self.levels(snapshot, &mut out);
        past.push_back(now);
        out
    }

    fn wants_route(&self, route: &str, upstream: &str) -> bool {
        self.spec.route.as_deref().is_none_or(|r| r == route)
            && self.spec.upstream.as_deref().is_none_or(|u| u == upstream)
    }

    fn wants_upstream(&self, upstream: &str) -> bool {
        self.spec.route.is_none() && self.spec.upstream.as_deref().is_none_or(|u| u == upstream)
    }

    /// Rates, ratios and percentiles from two readings.
    fn rates(&self, then: &GatewayCounters, now: &GatewayCounters, out: &mut Outcome) {
        let secs = now.at_unix_ms.saturating_sub(then.at_unix_ms) as f64 / 1000.0;
        if secs <= 0.0 {
            return;
        }
        let before: BTreeMap<(&str, &str, &str), &[u64; 5]> = then
            .requests
            .iter()
            .map(|r| ((&*r.route, &*r.upstream, &*r.server), &r.by_class))
            .collect();
        let mut routes: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut upstreams: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut servers: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        let mut route_upstream: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &now.requests {
            let old = before.get(&(&*r.route, &*r.upstream, &*r.server));
            let delta = |i: usize| r.by_class[i].saturating_sub(old.map_or(0, |o| o[i]));
            let total: u64 = (0..5).map(delta).sum();
            let errors = delta(4);
            route_upstream.insert(&r.route, &r.upstream);
            if self.wants_route(&r.route, &r.upstream) {
                add(routes.entry(&r.route).or_default(), total, errors);
            }
            if self.wants_upstream(&r.upstream) {
                add(upstreams.entry(&r.upstream).or_default(), total, errors);
                if r.server != "none" {
                    add(
                        servers.entry((&r.upstream, &r.server)).or_default(),
                        total,
                        errors,
                    );
                }
            }
        }
        let mut traffic = |labels: Labels, (total, errors): (u64, u64)| {
            out.push("requests_per_s", labels.clone(), total as f64 / secs);
            if total > 0 {
                out.push("error_ratio", labels, errors as f64 / total as f64);
            }
        };
        for (route, counts) in &routes {
            traffic(Labels::new().with("route", *route), *counts);
        }
        for (upstream, counts) in &upstreams {
            traffic(Labels::new().with("upstream", *upstream), *counts);
        }
        for ((upstream, server), counts) in &servers {
            traffic(
                Labels::new()
                    .with("upstream", *upstream)
                    .with("server", *server),
                *counts,
            );
        }
        let old_latency: BTreeMap<&str, &[u64]> = then
            .latency
            .iter()
            .map(|l| (&*l.route, &*l.buckets))
            .collect();
        for l in &now.latency {
            let upstream = route_upstream.get(&*l.route).copied().unwrap_or("");
            let named =
                self.spec.upstream.is_none() && self.spec.route.as_deref() == Some(&l.route);
            if !(self.wants_route(&l.route, upstream) || named) {
                continue;
            }
            let old = old_latency.get(&*l.route).copied().unwrap_or(&[]);
            let delta: Vec<u64> = l
                .buckets
                .iter()
                .enumerate()
                .map(|(i, c)| c.saturating_sub(old.get(i).copied().unwrap_or(0)))
                .collect();
            for (name, q) in [("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
                if let Some(secs) = quantile(&delta, q) {
                    out.push(name, Labels::new().with("route", &*l.route), secs * 1000.0);
                }
            }
        }
        let old_retries: BTreeMap<&str, u64> =
            then.routes.iter().map(|r| (&*r.route, r.retries)).collect();
        for r in &now.routes {
            let upstream = route_upstream.get(&*r.route).copied().unwrap_or("");
            if self.spec.route.as_deref().is_some_and(|x| x != r.route)
                || (self.spec.upstream.is_some() && !self.wants_route(&r.route, upstream))
            {
                continue;
            }
            let d = r
                .retries
                .saturating_sub(old_retries.get(&*r.route).copied().unwrap_or(0));
            out.push(
                "retries_per_s",
                Labels::new().with("route", &*r.route),
                d as f64 / secs,
            );
        }
        let old_shed: BTreeMap<&str, u64> =
            then.shed.iter().map(|s| (&*s.upstream, s.shed)).collect();
        for s in &now.shed {
            if !self.wants_upstream(&s.upstream) {
                continue;
            }
            let d = s
                .shed
                .saturating_sub(old_shed.get(&*s.upstream).copied().unwrap_or(0));
            out.push(
                "shed_per_s",
                Labels::new().with("upstream", &*s.upstream),
                d as f64 / secs,
            );
        }
    }

    /// Levels read off the status: servers, in-flight, breakers, certificates.
    fn levels(&self, snapshot: &Snapshot, out: &mut Outcome) {
        for u in &snapshot.upstreams {
            if !self.wants_upstream(&u.name) {
                continue;
            }
            let (mut servers, mut healthy, mut inflight, mut open) = (0u32, 0u32, 0u64, 0u32);
            for s in &u.servers {
                let breaker_open = s.breaker.as_deref() == Some("open");
                let ok = !s.drained && s.health_up && s.ejected_for_ms == 0 && !breaker_open;
                inflight += u64::from(s.inflight);
                open += u32::from(breaker_open);
                if !s.drained {
                    servers += 1;
                    healthy += u32::from(ok);
                }
                let labels = Labels::new()
                    .with("upstream", &u.name)
                    .with("server", &s.addr);
                out.push("inflight", labels.clone(), f64::from(s.inflight));
                out.push("healthy", labels, if ok { 1.0 } else { 0.0 });
            }
            let labels = Labels::new().with("upstream", &u.name);
            out.push("servers", labels.clone(), f64::from(servers));
            // Every server drained is an operator's choice (planned work), not servers lost:
            // no health readings then, so health rules do not page for it (the 5xx ratio
            // still sees any request that fails).
            if servers > 0 {
                out.push("healthy_servers", labels.clone(), f64::from(healthy));
                out.push("servers_down", labels.clone(), f64::from(servers - healthy));
            }
            out.push("inflight", labels.clone(), inflight as f64);
            out.push("open_breakers", labels, f64::from(open));
        }
        if self.spec.upstream.is_none() && self.spec.route.is_none() {
            for l in &snapshot.listeners {
                for c in &l.certificates {
                    let names = if c.names.is_empty() {
                        c.subject.clone()
                    } else {
                        c.names.join(",")
                    };
                    let labels = Labels::new().with("listener", &l.name).with("names", names);
                    out.push("days_left", labels, c.days_left as f64);
                }
            }
        }
    }
}

fn add(acc: &mut (u64, u64), total: u64, errors: u64) {
    acc.0 += total;
    acc.1 += errors;
}

/// The `q` quantile (seconds) of a non-cumulative histogram over [`LATENCY_BOUNDS_S`] (+Inf
/// last), interpolated linearly inside the bucket holding the rank; `None` when it is empty.
/// A rank in the +Inf bucket reports the last finite bound (the most that can be said).
pub fn quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, count) in buckets.iter().enumerate() {
        let next = seen + count;
        if *count > 0 && next as f64 >= rank {
            let Some(upper) = LATENCY_BOUNDS_S.get(i) else {
                return LATENCY_BOUNDS_S.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { LATENCY_BOUNDS_S[i - 1] };
            let within = (rank - seen as f64) / *count as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        seen = next;
    }
    LATENCY_BOUNDS_S.last().copied()
}

impl Probe for GatewayProbe {
    fn kind(&self) -> &'static str {
        "gateway"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let (snapshot, counters) = (self.source)();
            self.measure(&snapshot, counters)
        })
    }
}

#[cfg(test)]
mod tests;

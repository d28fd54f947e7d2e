//! Fills in the status [`Snapshot`] (`GET /api/v1/status`) from the gateway's live state.

use ballast_core::snapshot::{
    BlockedClient, CacheStatus, FloodStatus, LimitStatus, ListenerStatus, RetryStatus, RouteStatus,
    ServerStatus, SorryStatus, UpstreamStatus,
};
use ballast_core::Snapshot;

use crate::clock::now_ms;
use crate::gateway::Gateway;

impl Gateway {
    /// Policy events newer than sequence number `after`.
    pub fn events(&self, after: u64) -> Vec<ballast_core::Stamped> {
        self.inner.shared.events.since(after)
    }

    /// Records an event raised outside the data plane (the event sink's own outage and
    /// recovery, later the brain's), numbered and delivered like the gateway's own.
    pub fn emit(&self, event: ballast_core::Event) {
        self.inner.shared.events.emit(event);
    }

    /// The current status snapshot.
    pub fn status(&self) -> Snapshot {
        let cfg = self.config();
        let ups = self.inner.upstreams.load();
        let certs = self.inner.certs.load();
        let now = now_ms();
        let upstreams = cfg
            .upstreams
            .iter()
            .filter_map(|u| ups.get(&u.name))
            .map(|up| UpstreamStatus {
                name: up.name.clone(),
                balance: up.config.balance.name().to_string(),
                sticky_cookie: up.config.sticky.as_ref().map(|s| s.cookie.clone()),
                primaries_available: up.primaries_available(),
                limit: up
                    .config
                    .limit
                    .as_ref()
                    .zip(up.admission.as_ref())
                    .map(|(cfg, a)| limit_status(cfg, a)),
                servers: up
                    .members
                    .iter()
                    .map(|m| {
                        let s = &m.state;
                        let state = if s.is_drained() {
                            "draining"
                        } else if !s.is_up() {
                            "down"
                        } else if s.is_ejected(now) {
                            "ejected"
                        } else {
                            "up"
                        }
                        .to_string();
                        ServerStatus {
                            addr: s.addr.to_string(),
                            name: m.name.as_deref().map(str::to_string),
                            weight: m.weight,
                            effective_weight: s.effective_weight(m.weight, up.slow_start(), now),
                            backup: m.backup,
                            state,
                            health_up: s.is_up(),
                            drained: s.is_drained(),
                            ejected_for_ms: s.ejected_for_ms(now),
                            inflight: s.load.inflight(),
                            latency_ewma_ms: s.load.ewma_secs() * 1e3,
                            idle_connections: s.pool.idle_len(),
                            ejections: s.ejections_total.load(std::sync::atomic::Ordering::Relaxed),
                            breaker: up
                                .config
                                .breaker
                                .as_ref()
                                .map(|_| s.breaker.phase().name().to_string()),
                            breaker_opened: s
                                .breaker
                                .opened_total
                                .load(std::sync::atomic::Ordering::Relaxed),
                        }
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            listeners: cfg
                .listeners
                .iter()
                .map(|l| ListenerStatus {
                    name: l.name.clone(),
                    listen: l.listen.to_string(),
                    protocol: l.protocol.name().to_string(),
                    certificates: certs
                        .get(&l.name)
                        .map(|set| crate::listener::tls::report::status(set))
                        .unwrap_or_default(),
                })
                .collect(),
            routes: cfg
                .routes
                .iter()
                .map(|r| RouteStatus {
                    name: r.name.clone(),
                    listener: r.listener.clone(),
                    upstream: r.upstream.clone(),
                    host: r.matcher.host.clone(),
                    path_prefix: r.matcher.path_prefix.clone(),
                    methods: r.matcher.methods.iter().map(|m| m.to_string()).collect(),
                    header: r.matcher.header.as_ref().map(|h| h.name.to_string()),
                    retry: retry_status(&r.retry, &self.inner.shared.registry.policy(&r.name)),
                    priority: r.priority.name().to_string(),
                    flood: r.flood.as_ref().map(|f| {
                        let g = self.inner.shared.registry.flood(&r.name);
                        FloodStatus {
                            max_per_second: f.max_per_second,
                            factor: f.factor,
                            min_per_second: f.min_per_second,
                            block_s: f.block.as_secs(),
                            blocks: g.blocks_total.load(std::sync::atomic::Ordering::Relaxed),
                            refused: g.refused_total.load(std::sync::atomic::Ordering::Relaxed),
                            blocked: g
                                .blocked()
                                .into_iter()
                                .map(|(client, left_ms)| BlockedClient { client, left_ms })
                                .collect(),
                        }
                    }),
                    waiting_room: r.waiting_room.as_ref().and_then(|w| {
                        let room = self.inner.shared.registry.room(&r.name, w)?;
                        Some(room.status(&r.name, &self.inner.shared.events))
                    }),
                    cache: r.cache.as_ref().and_then(|k| {
                        let live = self
                            .inner
                            .shared
                            .registry
                            .all_caches()
                            .into_iter()
                            .find(|c| c.route == r.name)?;
                        let (entries, bytes) = live.usage();
                        let n = |a: &std::sync::atomic::AtomicU64| {
                            a.load(std::sync::atomic::Ordering::Relaxed)
                        };
                        Some(CacheStatus {
                            max_size_bytes: k.max_size,
                            max_object_bytes: k.max_object,
                            max_stale_s: k.max_stale.as_secs(),
                            key: k.key.iter().map(|p| p.name()).collect(),
                            stale_on: k.stale_on.clone(),
                            entries,
                            bytes,
                            serving_stale: live.serving_stale(),
                            hits: n(&live.counters.hits),
                            misses: n(&live.counters.misses),
                            stale_served: n(&live.counters.stale_served),
                            stores: n(&live.counters.stores),
                            evictions: n(&live.counters.evictions),
                        })
                    }),
                    sorry: r.sorry.as_ref().map(|p| SorryStatus {
                        on: p.on_status.clone(),
                        retry_after_s: p.retry_after.as_secs(),
                        page_bytes: p.body.len(),
                        served: self
                            .inner
                            .shared
                            .registry
                            .policy(&r.name)
                            .sorry_served
                            .load(std::sync::atomic::Ordering::Relaxed),
                    }),
                })
                .collect(),
            upstreams,
            open_connections: self.open_connections(),
        }
    }
}

fn limit_status(
    cfg: &ballast_config::ConcurrencyLimit,
    a: &crate::resilience::admission::Admission,
) -> LimitStatus {
    use std::sync::atomic::Ordering::Relaxed;
    LimitStatus {
        algorithm: match cfg.algorithm {
            ballast_config::LimitAlgorithm::Gradient => "gradient",
            ballast_config::LimitAlgorithm::Fixed => "fixed",
        }
        .to_string(),
        min: cfg.min,
        max: cfg.max,
        max_wait_ms: cfg.max_wait.as_millis() as u64,
        max_queue: cfg.max_queue,
        now: a.snapshot(),
        admitted: a.admitted.load(Relaxed),
        shed: ballast_config::Priority::ALL
            .iter()
            .map(|c| {
                let n = a.shed.iter().map(|by| by[c.rank()].load(Relaxed)).sum();
                (c.name().to_string(), n)
            })
            .collect(),
    }
}

fn retry_status(
    p: &ballast_config::model::RetryPolicy,
    c: &crate::stats::PolicyCounters,
) -> RetryStatus {
    use std::sync::atomic::Ordering::Relaxed;
    let mut on = Vec::new();
    if p.on_connect_failure {
        on.push("connect-failure".to_string());
    }
    if p.on_reset {
        on.push("reset".to_string());
    }
    if p.on_timeout {
        on.push("timeout".to_string());
    }
    on.extend(p.on_status.iter().map(u16::to_string));
    RetryStatus {
        attempts: p.attempts,
        on,
        budget_percent: (p.budget * 1000.0).round() / 10.0,
        min_retries_per_second: p.min_per_second,
        backoff: format!(
            "{}ms..{}ms",
            p.backoff_base.as_millis(),
            p.backoff_max.as_millis()
        ),
        retry_after_max_ms: p.retry_after_max.as_millis() as u64,
        retries: c.retries.load(Relaxed),
        budget_exhausted: c.budget_exhausted.load(Relaxed),
        retry_forbidden: c.retry_forbidden.load(Relaxed),
    }
}

//! A point-in-time view of the gateway for `GET /api/v1/status`.

use serde::Serialize;

use crate::clock::now_ms;
use crate::gateway::Gateway;

#[derive(Serialize)]
pub struct Status {
    pub listeners: Vec<ListenerStatus>,
    pub routes: Vec<RouteStatus>,
    pub upstreams: Vec<UpstreamStatus>,
    pub open_connections: usize,
}

#[derive(Serialize)]
pub struct ListenerStatus {
    pub name: String,
    pub listen: String,
    pub protocol: &'static str,
}

#[derive(Serialize)]
pub struct RouteStatus {
    pub name: String,
    pub listener: Option<String>,
    pub upstream: String,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub methods: Vec<String>,
    pub header: Option<String>,
    pub retry: RetryStatus,
    /// Class for load shedding.
    pub priority: &'static str,
    pub sorry: Option<SorryStatus>,
    pub flood: Option<FloodStatus>,
    pub waiting_room: Option<crate::resilience::waiting_room::RoomStatus>,
    pub cache: Option<CacheStatus>,
}

/// A route's response cache: its settings, what it holds and what it did.
#[derive(Serialize)]
pub struct CacheStatus {
    pub max_size_bytes: u64,
    pub max_object_bytes: u64,
    pub max_stale_s: u64,
    pub key: Vec<String>,
    pub stale_on: Vec<u16>,
    pub entries: u64,
    pub bytes: u64,
    /// True while stale content stands in for the failing upstream.
    pub serving_stale: bool,
    pub hits: u64,
    pub misses: u64,
    pub stale_served: u64,
    pub stores: u64,
    pub evictions: u64,
}

/// A route's flood protection and the clients it has blocked right now.
#[derive(Serialize)]
pub struct FloodStatus {
    pub max_per_second: u32,
    pub factor: f64,
    pub min_per_second: u32,
    pub block_s: u64,
    pub blocks: u64,
    pub refused: u64,
    pub blocked: Vec<BlockedClient>,
}

#[derive(Serialize)]
pub struct BlockedClient {
    pub client: String,
    pub left_ms: u64,
}

/// A route's retry policy and what it did.
#[derive(Serialize)]
pub struct RetryStatus {
    pub attempts: u32,
    pub on: Vec<String>,
    pub budget_percent: f64,
    pub min_retries_per_second: u32,
    pub backoff: String,
    pub retry_after_max_ms: u64,
    pub retries: u64,
    pub budget_exhausted: u64,
    pub retry_forbidden: u64,
}

/// A route's sorry page and how often it was served.
#[derive(Serialize)]
pub struct SorryStatus {
    pub on: Vec<u16>,
    pub retry_after_s: u64,
    pub page_bytes: usize,
    pub served: u64,
}

#[derive(Serialize)]
pub struct UpstreamStatus {
    pub name: String,
    pub balance: &'static str,
    pub sticky_cookie: Option<String>,
    pub primaries_available: bool,
    /// Admission control, when the upstream has a `limit`.
    pub limit: Option<LimitStatus>,
    pub servers: Vec<ServerStatus>,
}

/// An upstream's concurrency limit right now and what it has shed.
#[derive(Serialize)]
pub struct LimitStatus {
    pub algorithm: &'static str,
    pub min: u32,
    pub max: u32,
    pub max_wait_ms: u64,
    pub max_queue: u32,
    #[serde(flatten)]
    pub now: crate::resilience::admission::Snapshot,
    pub admitted: u64,
    /// Requests shed, by class.
    pub shed: std::collections::BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
pub struct ServerStatus {
    pub addr: String,
    /// The DNS name (`host:port`) the address came from; `null` for a configured IP.
    pub name: Option<String>,
    pub weight: u32,
    pub effective_weight: f64,
    pub backup: bool,
    /// `up`, `down`, `ejected`, `draining`.
    pub state: &'static str,
    pub health_up: bool,
    pub drained: bool,
    pub ejected_for_ms: u64,
    pub inflight: u32,
    pub latency_ewma_ms: f64,
    pub idle_connections: usize,
    pub ejections: u64,
    /// Circuit breaker phase (`closed`, `open`, `half-open`) when the upstream has one.
    pub breaker: Option<&'static str>,
    pub breaker_opened: u64,
}

impl Gateway {
    /// Policy events newer than sequence number `after`.
    pub fn events(&self, after: u64) -> Vec<ballast_core::Stamped> {
        self.inner.shared.events.since(after)
    }

    /// The current status snapshot.
    pub fn status(&self) -> Status {
        let cfg = self.config();
        let ups = self.inner.upstreams.load();
        let now = now_ms();
        let upstreams = cfg
            .upstreams
            .iter()
            .filter_map(|u| ups.get(&u.name))
            .map(|up| UpstreamStatus {
                name: up.name.clone(),
                balance: up.config.balance.name(),
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
                        };
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
                            breaker: up.config.breaker.as_ref().map(|_| s.breaker.phase().name()),
                            breaker_opened: s
                                .breaker
                                .opened_total
                                .load(std::sync::atomic::Ordering::Relaxed),
                        }
                    })
                    .collect(),
            })
            .collect();
        Status {
            listeners: cfg
                .listeners
                .iter()
                .map(|l| ListenerStatus {
                    name: l.name.clone(),
                    listen: l.listen.to_string(),
                    protocol: match l.protocol {
                        ballast_config::Protocol::Http => "http",
                        ballast_config::Protocol::Https => "https",
                        ballast_config::Protocol::Tcp => "tcp",
                    },
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
                    priority: r.priority.name(),
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
        },
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
                (c.name(), n)
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

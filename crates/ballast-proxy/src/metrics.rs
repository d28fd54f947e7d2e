//! Prometheus/OpenMetrics exposition. Values live in atomics on the hot path (see [`crate::stats`]
//! and `ServerState`); this collector reads them only when `/metrics` is scraped.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::clock::now_ms;
use crate::gateway::{Gateway, Inner};
use crate::stats::BUCKETS;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

struct Collector(Arc<Inner>);

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayCollector")
    }
}

pub(crate) fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, String)>, u64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

pub(crate) fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, String)>, i64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let inner = &self.0;
        let shared = &inner.shared;

        let mut reqs = Vec::new();
        let mut rows = shared.registry.all_requests();
        rows.sort_by(|a, b| {
            (&a.0.route, &a.0.upstream, &a.0.server).cmp(&(&b.0.route, &b.0.upstream, &b.0.server))
        });
        for (k, c) in rows {
            for (i, class) in CLASSES.iter().enumerate() {
                let v = c.by_class[i].load(Relaxed);
                if v > 0 {
                    let labels = vec![
                        ("route", k.route.clone()),
                        ("upstream", k.upstream.clone()),
                        ("server", k.server.clone()),
                        ("class", class.to_string()),
                    ];
                    reqs.push((labels, v));
                }
            }
        }
        counter(
            &mut enc,
            "ballast_requests",
            "Requests answered, by route, upstream, server and status class.",
            &reqs,
        )?;
        enc.encode_descriptor(
            "ballast_talkers_dropped",
            "Requests left out of the top-talker counts because their shard was busy (the data plane never waits for it).",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, u64>(&shared.talkers.dropped(), None)?;

        {
            let mut m = enc.encode_descriptor(
                "ballast_request_duration_seconds",
                "Time from request received to response body sent, by route.",
                None,
                MetricType::Histogram,
            )?;
            let mut hs = shared.registry.all_latency();
            hs.sort_by(|a, b| a.0.cmp(&b.0));
            for (route, h) in hs {
                // The encoder makes the counts cumulative itself: pass them per bucket. It
                // writes `le="+Inf"` only for `f64::MAX` (`f64::INFINITY` would come out "inf").
                let buckets: Vec<(f64, u64)> = BUCKETS
                    .iter()
                    .chain(std::iter::once(&f64::MAX))
                    .enumerate()
                    .map(|(i, b)| (*b, h.buckets[i].load(Relaxed)))
                    .collect();
                let total = buckets.iter().map(|(_, c)| c).sum();
                let labels = vec![("route", route)];
                m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                    h.sum_micros.load(Relaxed) as f64 / 1e6,
                    total,
                    &buckets,
                    None,
                )?;
            }
        }

        let ups = inner.upstreams.load();
        let mut names: Vec<&String> = ups.keys().collect();
        names.sort();
        let now = now_ms();
        let (mut inflight, mut health, mut avail, mut drained, mut ejected) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut ejections, mut check_fail, mut connects, mut connect_fail) =
            (vec![], vec![], vec![], vec![]);
        let (mut breaker_open, mut breaker_opened) = (vec![], vec![]);
        for name in names {
            for m in &ups[name].members {
                let s = &m.state;
                let l = || vec![("upstream", name.clone()), ("server", s.addr.to_string())];
                inflight.push((l(), i64::from(s.load.inflight())));
                health.push((l(), i64::from(s.is_up())));
                avail.push((l(), i64::from(s.is_available(now))));
                drained.push((l(), i64::from(s.is_drained())));
                ejected.push((l(), i64::from(s.is_ejected(now))));
                ejections.push((l(), s.ejections_total.load(Relaxed)));
                check_fail.push((l(), s.checks_failed_total.load(Relaxed)));
                connects.push((l(), s.pool.connects_total.load(Relaxed)));
                connect_fail.push((l(), s.pool.connect_failures_total.load(Relaxed)));
                if ups[name].config.breaker.is_some() {
                    let phase = s.breaker.phase();
                    breaker_open.push((
                        l(),
                        i64::from(phase != crate::upstream::breaker::Phase::Closed),
                    ));
                    breaker_opened.push((l(), s.breaker.opened_total.load(Relaxed)));
                }
            }
        }
        gauge(
            &mut enc,
            "ballast_upstream_inflight",
            "Requests in flight to a server.",
            &inflight,
        )?;
        gauge(
            &mut enc,
            "ballast_server_health_up",
            "1 when active health checks consider the server up.",
            &health,
        )?;
        gauge(
            &mut enc,
            "ballast_server_available",
            "1 when the server may take new requests (up, not drained, not ejected).",
            &avail,
        )?;
        gauge(
            &mut enc,
            "ballast_server_drained",
            "1 when the server is drained.",
            &drained,
        )?;
        gauge(
            &mut enc,
            "ballast_server_ejected",
            "1 while passive health has the server ejected.",
            &ejected,
        )?;
        counter(
            &mut enc,
            "ballast_server_ejections",
            "Passive ejections of a server.",
            &ejections,
        )?;
        gauge(
            &mut enc,
            "ballast_breaker_open",
            "1 while a server's circuit breaker is open or half-open (upstreams with a breaker).",
            &breaker_open,
        )?;
        counter(
            &mut enc,
            "ballast_breaker_opened",
            "Times a server's circuit breaker opened.",
            &breaker_opened,
        )?;
        counter(
            &mut enc,
            "ballast_health_check_failures",
            "Failed active health checks.",
            &check_fail,
        )?;
        counter(
            &mut enc,
            "ballast_upstream_connects",
            "New connections opened to a server.",
            &connects,
        )?;
        counter(
            &mut enc,
            "ballast_upstream_connect_failures",
            "Failed connection attempts to a server.",
            &connect_fail,
        )?;

        let policy = shared.registry.all_policy();
        let per_route = |f: fn(&crate::stats::PolicyCounters) -> u64| -> Vec<(Vec<(&'static str, String)>, u64)> {
            policy
                .iter()
                .map(|(route, c)| (vec![("route", route.clone())], f(c)))
                .collect()
        };
        counter(
            &mut enc,
            "ballast_retries",
            "Attempts after the first, by route.",
            &per_route(|c| c.retries.load(Relaxed)),
        )?;
        counter(
            &mut enc,
            "ballast_retry_budget_exhausted",
            "Retries refused because the upstream's or the client's retry budget was spent, by route.",
            &per_route(|c| c.budget_exhausted.load(Relaxed)),
        )?;
        counter(
            &mut enc,
            "ballast_retry_forbidden",
            "Retryable answers not retried because the upstream sent Ballast-No-Retry, by route.",
            &per_route(|c| c.retry_forbidden.load(Relaxed)),
        )?;
        counter(
            &mut enc,
            "ballast_sorry_pages",
            "Sorry pages served in place of an upstream failure, by route.",
            &per_route(|c| c.sorry_served.load(Relaxed)),
        )?;

        let floods = shared.registry.all_flood();
        let flood_rows = |f: fn(&crate::resilience::flood::FloodGuard) -> u64| -> Vec<(Vec<(&'static str, String)>, u64)> {
            floods
                .iter()
                .map(|(route, g)| (vec![("route", route.clone())], f(g)))
                .collect()
        };
        counter(
            &mut enc,
            "ballast_flood_blocks",
            "Clients blocked by flood protection, by route.",
            &flood_rows(|g| g.blocks_total.load(Relaxed)),
        )?;
        counter(
            &mut enc,
            "ballast_flood_refused",
            "Requests refused with 429 because their client was blocked, by route.",
            &flood_rows(|g| g.refused_total.load(Relaxed)),
        )?;

        let adm = shared.registry.all_admission();
        let mut limit_rows = Vec::new();
        let mut adm_inflight = Vec::new();
        let mut waiting = Vec::new();
        let mut admitted = Vec::new();
        let mut shed = Vec::new();
        for (name, a) in &adm {
            let snap = a.snapshot();
            let l = || vec![("upstream", name.clone())];
            limit_rows.push((l(), i64::from(snap.limit)));
            adm_inflight.push((l(), i64::from(snap.in_flight)));
            waiting.push((l(), snap.waiting as i64));
            admitted.push((l(), a.admitted.load(Relaxed)));
            for (r, reason) in crate::resilience::admission::ShedReason::ALL
                .iter()
                .enumerate()
            {
                for class in ballast_config::Priority::ALL {
                    shed.push((
                        vec![
                            ("upstream", name.clone()),
                            ("priority", class.name().to_string()),
                            ("reason", reason.name().to_string()),
                        ],
                        a.shed[r][class.rank()].load(Relaxed),
                    ));
                }
            }
        }
        gauge(
            &mut enc,
            "ballast_concurrency_limit",
            "An upstream's current concurrency limit (upstreams with a limit).",
            &limit_rows,
        )?;
        gauge(
            &mut enc,
            "ballast_admission_inflight",
            "Requests holding an upstream's admission slot.",
            &adm_inflight,
        )?;
        gauge(
            &mut enc,
            "ballast_admission_waiting",
            "Requests waiting for an upstream's admission slot.",
            &waiting,
        )?;
        counter(
            &mut enc,
            "ballast_admission_admitted",
            "Requests let into an upstream by its admission control.",
            &admitted,
        )?;
        counter(
            &mut enc,
            "ballast_shed",
            "Requests shed with 503 by an upstream's admission control, by class and reason.",
            &shed,
        )?;
        crate::resilience::waiting_room::metrics::encode(&mut enc, inner)?;
        let caches = shared.registry.all_cache_counters();
        let cache_rows = |f: fn(&crate::cache::CacheCounters) -> &std::sync::atomic::AtomicU64| -> Vec<(Vec<(&'static str, String)>, u64)> {
            caches
                .iter()
                .map(|(route, c)| (vec![("route", route.clone())], f(c).load(Relaxed)))
                .collect()
        };
        for (name, help, f) in [
            (
                "ballast_cache_hits",
                "Requests answered from a route's cache while fresh, by route.",
                (|c| &c.hits) as fn(&crate::cache::CacheCounters) -> &std::sync::atomic::AtomicU64,
            ),
            (
                "ballast_cache_misses",
                "Cacheable requests (GET, HEAD) that went to the upstream, by route.",
                |c| &c.misses,
            ),
            (
                "ballast_cache_stale_served",
                "Stale cached answers served in place of an upstream failure, by route.",
                |c| &c.stale_served,
            ),
            (
                "ballast_cache_stores",
                "Upstream answers stored in a route's cache, by route.",
                |c| &c.stores,
            ),
            (
                "ballast_cache_evictions",
                "Cache entries removed to make room (least recently used first), by route.",
                |c| &c.evictions,
            ),
            (
                "ballast_cache_too_large",
                "Answers not stored because their body exceeded max_object, by route.",
                |c| &c.too_large,
            ),
            (
                "ballast_cache_purged",
                "Cache entries removed through the admin API, by route.",
                |c| &c.purged,
            ),
        ] {
            counter(&mut enc, name, help, &cache_rows(f))?;
        }
        let live = shared.registry.all_caches();
        let (mut entries, mut bytes, mut stale) = (vec![], vec![], vec![]);
        for c in &live {
            let (n, b) = c.usage();
            let l = || vec![("route", c.route.clone())];
            entries.push((l(), n as i64));
            bytes.push((l(), b as i64));
            stale.push((l(), i64::from(c.serving_stale())));
        }
        gauge(
            &mut enc,
            "ballast_cache_entries",
            "Keys held in a route's cache (Vary variants of one key count once), by route.",
            &entries,
        )?;
        gauge(
            &mut enc,
            "ballast_cache_bytes",
            "Bytes held in a route's cache (bodies, headers, keys), by route.",
            &bytes,
        )?;
        gauge(
            &mut enc,
            "ballast_cache_serving_stale",
            "1 while a route serves stale content because its upstream fails.",
            &stale,
        )?;

        let g = &shared.global;
        counter(
            &mut enc,
            "ballast_reloads",
            "Configuration reloads, by result.",
            &[
                (
                    vec![("result", "ok".to_string())],
                    g.reloads_ok.load(Relaxed),
                ),
                (
                    vec![("result", "error".to_string())],
                    g.reloads_failed.load(Relaxed),
                ),
            ],
        )?;
        counter(
            &mut enc,
            "ballast_access_log_dropped",
            "Access log lines dropped because the writer fell behind.",
            &[(vec![], g.access_log_dropped.load(Relaxed))],
        )?;
        counter(
            &mut enc,
            "ballast_events_dropped",
            "Events lost on the way: to the operations store (sink_full: its channel was full) or to the in-memory log of /api/v1/events (log_busy).",
            &[
                (
                    vec![("reason", "sink_full".to_string())],
                    shared.events.tap_dropped.load(Relaxed),
                ),
                (
                    vec![("reason", "log_busy".to_string())],
                    shared.events.dropped.load(Relaxed),
                ),
            ],
        )?;
        counter(
            &mut enc,
            "ballast_bad_requests",
            "Requests refused as malformed, all reasons (see ballast_requests_refused).",
            &[(vec![], g.refused.total())],
        )?;
        let refused: Vec<_> = crate::error::Refusal::ALL
            .iter()
            .map(|r| (vec![("reason", r.name().to_string())], g.refused.get(*r)))
            .collect();
        counter(
            &mut enc,
            "ballast_requests_refused",
            "Requests refused as malformed before any upstream saw them, by reason.",
            &refused,
        )?;
        counter(
            &mut enc,
            "ballast_tcp_connections",
            "TCP passthrough connections accepted.",
            &[(vec![], g.tcp_connections.load(Relaxed))],
        )?;
        counter(
            &mut enc,
            "ballast_upgrades",
            "Upgraded (e.g. WebSocket) connections.",
            &[(vec![], g.upgrades.load(Relaxed))],
        )?;
        gauge(
            &mut enc,
            "ballast_tls_cert_expiry_seconds",
            "Expiry (notAfter) of each TLS certificate served, as Unix seconds, by listener and SNI name (`default` for the default certificate).",
            &crate::listener::tls::report::expiry_rows(&inner.certs.load()),
        )?;
        gauge(
            &mut enc,
            "ballast_open_connections",
            "Open client connections.",
            &[(vec![], inner_open(inner))],
        )?;
        Ok(())
    }
}

fn inner_open(inner: &Inner) -> i64 {
    inner.conns_open() as i64
}

impl Gateway {
    /// The metrics in OpenMetrics text format.
    pub fn encode_metrics(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Collector(self.inner.clone())));
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

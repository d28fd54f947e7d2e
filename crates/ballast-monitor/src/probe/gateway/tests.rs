//! The gateway probe on hand-made readings: rates over the window, ratios only with traffic,
//! percentiles from the histogram, the health of servers, and the warm-up run.

use std::sync::Arc;

use ballast_core::counters::{LatencyCounts, RequestCounts, RouteCounts};
use ballast_core::snapshot::{ServerStatus, UpstreamStatus};
use ballast_core::{GatewayCounters, Labels, Snapshot};

use super::*;

fn server(addr: &str, up: bool, drained: bool, breaker: Option<&str>) -> ServerStatus {
    ServerStatus {
        addr: addr.into(),
        name: None,
        weight: 1,
        effective_weight: 1.0,
        backup: false,
        state: "up".into(),
        health_up: up,
        drained,
        ejected_for_ms: 0,
        inflight: 2,
        latency_ewma_ms: 1.0,
        idle_connections: 0,
        ejections: 0,
        breaker: breaker.map(str::to_string),
        breaker_opened: 0,
    }
}

fn snapshot(servers: Vec<ServerStatus>) -> Snapshot {
    Snapshot {
        listeners: Vec::new(),
        routes: Vec::new(),
        upstreams: vec![UpstreamStatus {
            name: "app".into(),
            balance: "round-robin".into(),
            sticky_cookie: None,
            primaries_available: true,
            limit: None,
            servers,
        }],
        open_connections: 0,
    }
}

/// Counters at `at` ms: `ok` 2xx and `bad` 5xx on route `api` via server a, latencies all in
/// the 5–10 ms bucket, `retries` retries.
fn counters(at: u64, ok: u64, bad: u64, retries: u64) -> GatewayCounters {
    let mut buckets = vec![0; LATENCY_BOUNDS_S.len() + 1];
    buckets[4] = ok + bad; // (0.005, 0.01]
    GatewayCounters {
        at_unix_ms: at,
        requests: vec![RequestCounts {
            route: "api".into(),
            upstream: "app".into(),
            server: "10.0.0.1:80".into(),
            by_class: [0, ok, 0, 0, bad],
        }],
        latency: vec![LatencyCounts {
            route: "api".into(),
            buckets,
        }],
        routes: vec![RouteCounts {
            route: "api".into(),
            retries,
        }],
        shed: Vec::new(),
    }
}

fn probe(window_ms: u64) -> GatewayProbe {
    let spec = GatewaySpec {
        window: Some(ballast_core::Duration::from_millis(window_ms)),
        ..GatewaySpec::default()
    };
    let source: GatewaySource = Arc::new(|| (snapshot(Vec::new()), GatewayCounters::default()));
    GatewayProbe::new(spec, source).unwrap()
}

fn value(o: &Outcome, name: &str, labels: &Labels) -> Option<f64> {
    o.readings
        .iter()
        .find(|r| r.value == name && r.labels == *labels)
        .map(|r| r.number)
}

#[test]
fn the_first_run_warms_up_and_later_runs_take_rates_over_the_window() {
    let p = probe(10_000);
    let snap = snapshot(vec![server("10.0.0.1:80", true, false, None)]);
    let first = p.measure(&snap, counters(0, 0, 0, 0));
    assert!(first.warming_up);
    assert_eq!(
        value(
            &first,
            "requests_per_s",
            &Labels::new().with("route", "api")
        ),
        None
    );
    // Levels are there from the first run.
    let app = Labels::new().with("upstream", "app");
    assert_eq!(value(&first, "healthy_servers", &app), Some(1.0));

    let second = p.measure(&snap, counters(2_000, 90, 10, 4));
    assert!(!second.warming_up);
    let api = Labels::new().with("route", "api");
    assert_eq!(value(&second, "requests_per_s", &api), Some(50.0));
    assert_eq!(value(&second, "error_ratio", &api), Some(0.1));
    assert_eq!(value(&second, "retries_per_s", &api), Some(2.0));
    assert_eq!(value(&second, "error_ratio", &app), Some(0.1));
    let p99 = value(&second, "p99_ms", &api).unwrap();
    assert!((5.0..=10.0).contains(&p99), "{p99}");

    // The window slides: 12 s later the first reading has left it, so only the last 10 s
    // count (no new requests: 0/s, and no ratio without traffic).
    let third = p.measure(&snap, counters(14_000, 90, 10, 4));
    assert_eq!(value(&third, "requests_per_s", &api), Some(0.0));
    assert_eq!(value(&third, "error_ratio", &api), None);
    assert_eq!(value(&third, "p99_ms", &api), None);
}

#[test]
fn healthy_counts_up_servers_not_drained_ejected_or_broken() {
    let p = probe(10_000);
    let snap = snapshot(vec![
        server("a", true, false, None),
        server("b", false, false, None),
        server("c", true, true, None),
        server("d", true, false, Some("open")),
    ]);
    let o = p.measure(&snap, GatewayCounters::default());
    let app = Labels::new().with("upstream", "app");
    assert_eq!(value(&o, "servers", &app), Some(3.0));
    assert_eq!(value(&o, "healthy_servers", &app), Some(1.0));
    assert_eq!(value(&o, "servers_down", &app), Some(2.0));
    assert_eq!(value(&o, "open_breakers", &app), Some(1.0));
    assert_eq!(value(&o, "inflight", &app), Some(8.0));
    let b = Labels::new().with("upstream", "app").with("server", "b");
    assert_eq!(value(&o, "healthy", &b), Some(0.0));
}

#[test]
fn an_upstream_drained_on_purpose_has_no_health_readings() {
    let p = probe(10_000);
    let snap = snapshot(vec![
        server("a", true, true, None),
        server("b", true, true, None),
    ]);
    let o = p.measure(&snap, GatewayCounters::default());
    let app = Labels::new().with("upstream", "app");
    assert_eq!(value(&o, "servers", &app), Some(0.0));
    assert_eq!(value(&o, "healthy_servers", &app), None);
    assert_eq!(value(&o, "servers_down", &app), None);
}

#[test]
fn quantiles_interpolate_inside_the_bucket() {
    let mut b = vec![0; LATENCY_BOUNDS_S.len() + 1];
    assert_eq!(quantile(&b, 0.5), None);
    b[0] = 50; // (0, 0.5 ms]
    b[1] = 50; // (0.5, 1 ms]
    let p50 = quantile(&b, 0.5).unwrap();
    assert!((p50 - 0.0005).abs() < 1e-9, "{p50}");
    let p99 = quantile(&b, 0.99).unwrap();
    assert!(p99 > 0.0009 && p99 <= 0.001, "{p99}");
    // A rank in +Inf reports the last finite bound.
    let mut inf = vec![0; LATENCY_BOUNDS_S.len() + 1];
    inf[LATENCY_BOUNDS_S.len()] = 3;
    assert_eq!(quantile(&inf, 0.99), LATENCY_BOUNDS_S.last().copied());
}

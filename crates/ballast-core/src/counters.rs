//! The gateway's cumulative counters as plain values, read in-process by the monitor's
//! `gateway` probe (not scraped), which turns two readings into rates, ratios and latency
//! percentiles over a window.
//!
//! Counters only ever grow (a reload keeps them), so the difference between two readings is
//! what happened in between; a counter that appears in the later reading only started at 0.

use serde::{Deserialize, Serialize};

/// Upper bounds (seconds) of the latency histogram's buckets; the gateway's histogram has
/// one more bucket, +Inf.
pub const LATENCY_BOUNDS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Responses of one (route, upstream, server), by status class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub route: String,
    pub upstream: String,
    /// Server address, or `none` when no server was reached.
    pub server: String,
    /// Index 0 = 1xx ... 4 = 5xx.
    pub by_class: [u64; 5],
}

/// One route's latency histogram: non-cumulative counts per bucket of
/// [`LATENCY_BOUNDS_S`], the last slot +Inf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCounts {
    pub route: String,
    pub buckets: Vec<u64>,
}

/// One route's policy counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteCounts {
    pub route: String,
    /// Attempts after the first.
    pub retries: u64,
}

/// One upstream's shed requests (every priority class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShedCounts {
    pub upstream: String,
    pub shed: u64,
}

/// Every counter, read at `at_unix_ms`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GatewayCounters {
    pub at_unix_ms: u64,
    pub requests: Vec<RequestCounts>,
    pub latency: Vec<LatencyCounts>,
    pub routes: Vec<RouteCounts>,
    pub shed: Vec<ShedCounts>,
}

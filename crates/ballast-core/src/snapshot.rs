//! The status snapshot: a point-in-time view of the running gateway (listeners, routes with
//! their policies, upstreams and servers) as plain values.
//!
//! `GET /api/v1/status` serves it, the CLI prints it, and the control-plane engines read it
//! without knowing the data plane's internals. The gateway fills it in (`ballast-proxy`'s
//! `status` module); everything here is data, so it can also be read back from JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub listeners: Vec<ListenerStatus>,
    pub routes: Vec<RouteStatus>,
    pub upstreams: Vec<UpstreamStatus>,
    pub open_connections: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub name: String,
    pub listen: String,
    pub protocol: String,
    /// HTTPS: the certificates in force (re-read on every reload).
    pub certificates: Vec<CertificateStatus>,
}

/// One certificate of a listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// SNI names it serves; empty for a default without names.
    pub names: Vec<String>,
    /// Served for unknown or absent SNI names.
    pub default: bool,
    pub subject: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub not_after_unix: i64,
    pub days_left: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub priority: String,
    pub sorry: Option<SorryStatus>,
    pub flood: Option<FloodStatus>,
    pub waiting_room: Option<RoomStatus>,
    pub cache: Option<CacheStatus>,
}

/// A route's response cache: its settings, what it holds and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloodStatus {
    pub max_per_second: u32,
    pub factor: f64,
    pub min_per_second: u32,
    pub block_s: u64,
    pub blocks: u64,
    pub refused: u64,
    pub blocked: Vec<BlockedClient>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedClient {
    pub client: String,
    pub left_ms: u64,
}

/// A route's retry policy and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SorryStatus {
    pub on: Vec<u16>,
    pub retry_after_s: u64,
    pub page_bytes: usize,
    pub served: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub name: String,
    pub balance: String,
    pub sticky_cookie: Option<String>,
    pub primaries_available: bool,
    /// Admission control, when the upstream has a `limit`.
    pub limit: Option<LimitStatus>,
    pub servers: Vec<ServerStatus>,
}

/// An upstream's concurrency limit right now and what it has shed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitStatus {
    pub algorithm: String,
    pub min: u32,
    pub max: u32,
    pub max_wait_ms: u64,
    pub max_queue: u32,
    #[serde(flatten)]
    pub now: AdmissionNow,
    pub admitted: u64,
    /// Requests shed, by class.
    pub shed: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub addr: String,
    /// The DNS name (`host:port`) the address came from; `null` for a configured IP.
    pub name: Option<String>,
    pub weight: u32,
    pub effective_weight: f64,
    pub backup: bool,
    /// `up`, `down`, `ejected`, `draining`.
    pub state: String,
    pub health_up: bool,
    pub drained: bool,
    pub ejected_for_ms: u64,
    pub inflight: u32,
    pub latency_ewma_ms: f64,
    pub idle_connections: usize,
    pub ejections: u64,
    /// Circuit breaker phase (`closed`, `open`, `half-open`) when the upstream has one.
    pub breaker: Option<String>,
    pub breaker_opened: u64,
}

/// A room's settings and state for `/api/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomStatus {
    pub capacity: u32,
    pub session_ms: u64,
    pub refresh_ms: u64,
    pub max_queue: u32,
    pub cookie: String,
    /// `secret_file`, or `per-process` (a random key: cookies die with the process).
    pub signing_key: String,
    /// Visitors are waiting in line.
    pub queueing: bool,
    /// Sessions not yet expired.
    pub active: u64,
    /// Tickets waiting for a slot.
    pub waiting: u64,
    /// Tickets given a slot, not yet collected by their holder's next visit.
    pub called: u64,
    /// The number the next ticket gets.
    pub next_ticket: u64,
    pub admitted: u64,
    pub queue_pages: u64,
    /// Visitors refused because the line was full.
    pub refused: u64,
    /// Tickets dropped because their holder stopped refreshing.
    pub abandoned: u64,
}

/// An upstream's admission control at this moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmissionNow {
    pub limit: u32,
    pub in_flight: u32,
    pub waiting: usize,
    pub baseline_ms: f64,
    pub recent_ms: f64,
    pub shedding: bool,
}

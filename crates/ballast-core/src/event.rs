//! Events: state changes the gateway's policies make, as values. They are what the alerting
//! and the incident timeline (later engines) consume; today they are kept in a bounded log and
//! served by `GET /api/v1/events`. An event is a fact about one thing (a server, a client, a
//! route), never a per-request record: those belong to the access log.

use serde::Serialize;

/// A policy changed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A server's circuit breaker opened: it gets no requests for the cool-down.
    BreakerOpened { upstream: String, server: String },
    /// The cool-down passed: probes are let through.
    BreakerHalfOpened { upstream: String, server: String },
    /// The probes succeeded: the server is back.
    BreakerClosed { upstream: String, server: String },
    /// A client was blocked by a route's flood guard.
    ClientBlocked {
        route: String,
        client: String,
        /// Its requests in the second that tripped the guard.
        rate: u32,
        /// The population's baseline at that moment (0 when none).
        baseline: u32,
        block_ms: u64,
    },
    /// A route refused a retry because a retry budget was spent (at most one per route per
    /// second).
    RetryBudgetExhausted { route: String },
    /// An upstream's admission control began shedding requests (it is saturated).
    SheddingStarted { upstream: String, limit: u32 },
    /// A second passed without a shed request: the episode is over.
    SheddingStopped {
        upstream: String,
        /// Requests shed during the episode.
        shed: u64,
        limit: u32,
    },
    /// A route's waiting room filled up: from now on new visitors wait in line.
    WaitingRoomQueueing {
        route: String,
        capacity: u32,
        /// Active sessions at that moment (above `capacity` when sessions from before a
        /// restart or reload came back).
        active: u64,
    },
    /// A waiting room's line reached `max_queue`: new visitors get a plain 503 (once per
    /// queueing spell).
    WaitingRoomFull { route: String, max_queue: u32 },
    /// Nobody waits in a route's waiting room any more.
    WaitingRoomCleared {
        route: String,
        /// Visitors let in while the line existed.
        admitted: u64,
        /// How long the line existed.
        queued_ms: u64,
    },
    /// A route's cache began standing in for its failing upstream with stale content.
    StaleServingStarted {
        route: String,
        /// What failed first: an error kind (`connect_failed`, `no_server`, ...) or
        /// `upstream_status`.
        cause: String,
        status: u16,
    },
    /// The route's upstream answered again (a status below 500).
    StaleServingEnded { route: String },
    /// Entries were removed from a route's cache through the admin API.
    CachePurged {
        route: String,
        /// Path prefix of the purge, if it had one.
        prefix: Option<String>,
        removed: u64,
    },
}

/// An event and when it happened (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamped {
    pub seq: u64,
    pub at_unix_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

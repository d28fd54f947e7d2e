//! The lab's load generator: drives one client population against a target (a proxy, or a
//! backend directly) and returns what it saw as [`LoadStats`].
//!
//! It is built in rather than borrowed (wrk, h2load, oha) so that every target is measured by
//! the same client, open-loop latency counts from the scheduled send time (no coordinated
//! omission), each run's timeline is on the scenario's clock (so a fault's effect lines up
//! across proxies), and clients can come from distinct source addresses (127.0.0.x), which
//! per-client limits in the proxies need.
//!
//! - [`Mode::Open`]: a constant request rate whatever the target does (`open`)
//! - [`Mode::Closed`]: N connections, each sending when the previous response is in
//!   (`closed`)
//! - [`slow_clients`]: slowloris connections that never finish their request head

mod closed;
mod conn;
mod open;
mod recorder;
mod slow;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};

pub use slow::{slow_clients, SlowStats};

use crate::result::LoadStats;
use crate::LabError;

/// Highest open-loop rate accepted, req/s (far beyond what one lab machine can send).
const MAX_RATE: f64 = 1_000_000.0;

/// The HTTP version the load speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// Cleartext HTTP/2 with prior knowledge (no upgrade).
    H2c,
}

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// `rate` requests per second, scheduled at `start + i / rate`.
    Open { rate: f64 },
    /// `connections` connections, each one request at a time, back to back.
    Closed { connections: usize },
}

/// One load group: what to send, where, how fast and for how long.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub target: SocketAddr,
    /// Request path (and query), starting with `/`.
    pub path: String,
    /// `Host` (HTTP/1.1) or `:authority` (h2c); the target address when `None`.
    pub host: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub protocol: Protocol,
    pub mode: Mode,
    /// How long requests are started for.
    pub duration: Duration,
    /// A request without a complete response this long after it was scheduled (open loop)
    /// or started (closed loop) is a timeout.
    pub request_timeout: Duration,
    /// Open loop: most connections (HTTP/1.1) or concurrent streams (h2c) in use at once;
    /// requests beyond wait for one, their latency growing.
    pub max_connections: usize,
    /// Bind client sockets to this address (e.g. 127.0.0.2) so the target sees a distinct
    /// client.
    pub source_ip: Option<IpAddr>,
    /// Time zero of the scenario: the timeline's seconds count from here.
    pub epoch: Instant,
}

impl LoadSpec {
    /// `GET /` over HTTP/1.1, closed loop with one connection for 10 s, 2 s request timeout,
    /// open-loop cap of 256 connections, default source address, epoch now.
    pub fn new(target: SocketAddr) -> LoadSpec {
        LoadSpec {
            target,
            path: "/".to_owned(),
            host: None,
            headers: Vec::new(),
            protocol: Protocol::Http1,
            mode: Mode::Closed { connections: 1 },
            duration: Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            max_connections: 256,
            source_ip: None,
            epoch: Instant::now(),
        }
    }

    pub fn path(mut self, path: impl Into<String>) -> LoadSpec {
        self.path = path.into();
        self
    }

    pub fn host(mut self, host: impl Into<String>) -> LoadSpec {
        self.host = Some(host.into());
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> LoadSpec {
        self.headers.push((name, value));
        self
    }

    pub fn protocol(mut self, protocol: Protocol) -> LoadSpec {
        self.protocol = protocol;
        self
    }

    /// Open loop at `rate` requests per second.
    pub fn open(mut self, rate: f64) -> LoadSpec {
        self.mode = Mode::Open { rate };
        self
    }

    /// Closed loop over `connections` connections.
    pub fn closed(mut self, connections: usize) -> LoadSpec {
        self.mode = Mode::Closed { connections };
        self
    }

    pub fn duration(mut self, duration: Duration) -> LoadSpec {
        self.duration = duration;
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> LoadSpec {
        self.request_timeout = timeout;
        self
    }

    pub fn max_connections(mut self, max: usize) -> LoadSpec {
        self.max_connections = max;
        self
    }

    pub fn source_ip(mut self, ip: IpAddr) -> LoadSpec {
        self.source_ip = Some(ip);
        self
    }

    pub fn epoch(mut self, epoch: Instant) -> LoadSpec {
        self.epoch = epoch;
        self
    }

    /// The offered load in words, as the report shows it: "open loop, 2000 req/s" or
    /// "closed loop, 64 connections".
    pub fn describe(&self) -> String {
        let proto = match self.protocol {
            Protocol::Http1 => "",
            Protocol::H2c => ", h2c",
        };
        match self.mode {
            Mode::Open { rate } => format!("open loop, {rate} req/s{proto}"),
            Mode::Closed { connections } => {
                format!("closed loop, {connections} connections{proto}")
            }
        }
    }

    fn validate(&self) -> Result<(), LabError> {
        let bad = |m: String| Err(LabError::Usage(m));
        match self.mode {
            Mode::Open { rate } if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) => {
                return bad(format!(
                    "load rate must be above 0 and at most {MAX_RATE} req/s, got {rate}"
                ))
            }
            Mode::Closed { connections: 0 } => {
                return bad("closed-loop load needs at least one connection".to_owned())
            }
            _ => {}
        }
        if self.duration.is_zero() {
            return bad("load duration must be above zero".to_owned());
        }
        if self.request_timeout.is_zero() {
            return bad("request timeout must be above zero".to_owned());
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Runs one load group to its end and returns what it saw. `progress`, when given, counts
/// completed requests (any outcome) as they complete.
///
/// `sent` counts requests started: in open loop every scheduled request, including those
/// that timed out still waiting for a connection. `duration_s` is the time requests were
/// started for; responses that arrive after it (at most `request_timeout` later) still count,
/// and extend the timeline.
pub async fn run(spec: LoadSpec, progress: Option<Arc<AtomicU64>>) -> Result<LoadStats, LabError> {
    spec.validate()?;
    let endpoint = conn::Endpoint::from_spec(&spec)?;
    let rec = Arc::new(recorder::Recorder::new(spec.epoch, progress)?);
    let start = Instant::now();
    let end = match spec.mode {
        Mode::Open { rate } => open::run(&spec, rate, start, endpoint, rec.clone()).await,
        Mode::Closed { connections } => {
            closed::run(&spec, connections, start, endpoint, rec.clone()).await
        }
    };
    Ok(rec.finish(start, end))
}

//! What a lab run measured, as plain data.
//!
//! Every part of the lab speaks these types: the load generator fills [`LoadStats`], the
//! scenarios assemble [`Run`]s and [`ScenarioResult`]s, and the report renders them (Markdown,
//! SVG, JSON) without knowing how they were produced. They serialize to the JSON results file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the load went through.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Straight to one backend, no proxy (a reference, not a peer).
    Direct,
    Ballast,
    Haproxy,
    Nginx,
}

impl Target {
    /// The three proxies compared in every scenario.
    pub const PROXIES: [Target; 3] = [Target::Ballast, Target::Haproxy, Target::Nginx];

    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Ballast => "ballast",
            Target::Haproxy => "haproxy",
            Target::Nginx => "nginx",
        }
    }

    /// Display name for tables and plot legends.
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Ballast => "Ballast",
            Target::Haproxy => "HAProxy",
            Target::Nginx => "nginx",
        }
    }
}

/// Failed requests, by kind. A response counts as an error when it is 5xx; 4xx are counted
/// apart (`status_4xx`) and are errors too, since no scenario expects them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    /// The TCP connection could not be opened.
    pub connect: u64,
    /// No complete response within the request timeout.
    pub timeout: u64,
    /// The connection broke (reset, closed mid-response, protocol error).
    pub io: u64,
    /// A 5xx response.
    pub status_5xx: u64,
    /// A 4xx response.
    pub status_4xx: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.io + self.status_5xx + self.status_4xx
    }

    pub fn add(&mut self, other: &Errors) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.io += other.io;
        self.status_5xx += other.status_5xx;
        self.status_4xx += other.status_4xx;
    }
}

/// One second of a load run. `t` counts seconds from the scenario's epoch (the same instant
/// for every load group of a run, so timelines line up with the fault time).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Second {
    pub t: u32,
    /// Successful (2xx/3xx) responses completed in this second.
    pub ok: u64,
    pub errors: Errors,
    /// Latency of the requests completed in this second (0 when none completed), µs.
    pub p50_us: u64,
    pub p99_us: u64,
}

/// A latency summary in microseconds. In open-loop mode latency runs from the moment the
/// request was scheduled to be sent, so waiting for a free connection counts (no coordinated
/// omission).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// What one load group (one client population) saw.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LoadStats {
    /// Requests started.
    pub sent: u64,
    /// 2xx/3xx responses.
    pub ok: u64,
    pub errors: Errors,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Measured wall time of the group, seconds.
    pub duration_s: f64,
    /// `ok / duration_s`.
    pub ok_per_s: f64,
    /// Latency of every completed request (any status).
    pub latency: Latency,
    pub timeline: Vec<Second>,
}

impl LoadStats {
    /// Share of started requests that succeeded, 0..=1 (1 when none were sent).
    pub fn success_ratio(&self) -> f64 {
        if self.sent == 0 {
            1.0
        } else {
            self.ok as f64 / self.sent as f64
        }
    }
}

/// The fault a scenario injects, and the harness's own evidence that it happened.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Fault {
    /// What was done, e.g. "SIGKILL backend b2".
    pub what: String,
    /// When, in seconds from the run's epoch.
    pub at_s: f64,
    /// The harness performed the action without error.
    pub injected: bool,
    /// The fault was observed to take effect (see `evidence`).
    pub seen: bool,
    /// How it was observed, e.g. "b2 received 0 requests after the kill".
    pub evidence: String,
}

/// One target through one scenario.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub target: Option<Target>,
    /// The target's version string, e.g. "HAProxy 2.6.12".
    pub version: String,
    /// The main client population.
    pub load: LoadStats,
    /// Other client populations by name (e.g. "critical", "low", "flooder", "normal").
    pub groups: BTreeMap<String, LoadStats>,
    /// Application requests the backends received during the run (health checks excluded).
    pub backend_requests: u64,
    pub fault: Option<Fault>,
    /// Scenario-specific figures by key (see [`MetricSpec`]).
    pub metrics: BTreeMap<String, f64>,
    pub notes: Vec<String>,
}

/// A scenario-specific figure shown in the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MetricSpec {
    /// Key in [`Run::metrics`].
    pub key: String,
    /// Column header, e.g. "time to recovery".
    pub label: String,
    /// Unit shown after the value, e.g. "s", "%", "req/s", "" for a plain ratio.
    pub unit: String,
    /// Whether a higher value is better (decides how the ratio reads).
    pub higher_is_better: bool,
}

/// One scenario, every target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ScenarioResult {
    /// Short name used on the command line, e.g. "backend-crash".
    pub name: String,
    pub title: String,
    /// What the scenario measures, one or two sentences.
    pub measures: String,
    /// Offered load: "open loop, 2000 req/s" or "closed loop, 64 connections".
    pub load: String,
    pub duration_s: f64,
    pub runs: Vec<Run>,
    pub metrics: Vec<MetricSpec>,
}

impl ScenarioResult {
    pub fn run(&self, target: Target) -> Option<&Run> {
        self.runs.iter().find(|r| r.target == Some(target))
    }
}

/// A whole lab invocation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LabReport {
    /// UTC start time, RFC 3339.
    pub started: String,
    /// The machine, e.g. "2 CPUs (Intel Xeon ...), 24 GiB, Linux 6.1".
    pub machine: String,
    /// How CPUs were shared between proxy, backends and load generator.
    pub cpu_plan: String,
    pub quick: bool,
    pub ballast_version: String,
    pub scenarios: Vec<ScenarioResult>,
}

//! The file schema, exactly as written by an operator.
//!
//! Every table denies unknown keys, every duration and size must carry a unit, and numbers that
//! have an invalid range (weights, counts) are read as signed integers so that validation can
//! say "must be at least 1" instead of a type error. Nothing here has defaults filled in:
//! that is [`crate::validate`]'s job.

use std::fmt;

use ballast_core::{Duration, Ratio, Size};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{ConfigError, Problem};
use crate::locate::line_col;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub admin: Option<Admin>,
    pub log: Option<Log>,
    pub runtime: Option<Runtime>,
    pub store: Option<Store>,
    #[serde(default)]
    pub listener: Vec<Listener>,
    #[serde(default)]
    pub route: Vec<Route>,
    #[serde(default)]
    pub upstream: Vec<Upstream>,
    pub alerting: Option<crate::raw_monitor::Alerting>,
    #[serde(default)]
    pub monitor: Vec<crate::raw_monitor::Monitor>,
    #[serde(default)]
    pub rule: Vec<crate::raw_monitor::Rule>,
    #[serde(default)]
    pub maintenance: Vec<crate::raw_monitor::MaintenanceSpec>,
    #[serde(default)]
    pub receiver: Vec<ballast_notify::ReceiverSpec>,
    #[serde(default)]
    pub notify: Vec<ballast_notify::RouteSpec>,
    /// `[[remedy]]`: automatic actions for alerts, checked by `ballast-remedy`.
    #[serde(default)]
    pub remedy: Vec<ballast_remedy::rule::RemedySpec>,
    /// `[remediation]`: settings for every remedy (the global rate).
    pub remediation: Option<ballast_remedy::rule::RemediationSpec>,
    /// `[incident]`: which alerts open incidents, and how severity is graded.
    pub incident: Option<ballast_incident::IncidentSpec>,
    /// `[review]`: the scheduled threshold review.
    pub review: Option<RawReview>,
}

/// `[review]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReview {
    pub every: Option<ballast_core::Duration>,
    pub since: Option<ballast_core::Duration>,
    pub receiver: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: Option<String>,
    pub token: Option<String>,
    /// Named tokens with a role each.
    #[serde(default)]
    pub tokens: Vec<AdminToken>,
}

/// `tokens = [{ name, token | token_file, role }]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    pub name: String,
    pub token: Option<String>,
    pub token_file: Option<std::path::PathBuf>,
    pub role: crate::model::Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `"stdout"`, `"off"` or a file path.
    pub access: Option<String>,
}

/// `[store]`: where the operations store (config history, events) lives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: Option<String>,
    /// Events held in memory while the store cannot be written.
    #[serde(default, deserialize_with = "whole")]
    pub spool: Option<i64>,
    pub retention: Option<Retention>,
}

/// `[store] retention`: how long each kind of record is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub events: Option<Duration>,
    pub changes: Option<Duration>,
    pub config_versions: Option<Duration>,
    /// Per-minute metric rollups, resolved alerts and ended silences.
    pub metrics: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    #[serde(default, deserialize_with = "whole")]
    pub threads: Option<i64>,
    pub grace: Option<Duration>,
    /// Nameserver (`IP:port`) for upstream server names; unset: the system's resolv.conf.
    pub resolver: Option<String>,
    /// Longest time between two resolutions of a server name.
    pub dns_interval: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub listen: String,
    pub protocol: Option<String>,
    pub tls: Option<Tls>,
    pub upstream: Option<String>,
    pub max_header_size: Option<Size>,
    #[serde(default, deserialize_with = "whole")]
    pub max_headers: Option<i64>,
    pub timeout: Option<ListenerTimeout>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Short form: one certificate for every name.
    pub cert: Option<String>,
    pub key: Option<String>,
    /// Long form: several certificates chosen by SNI.
    pub certs: Option<Vec<TlsCert>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCert {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTimeout {
    pub header_read: Option<Duration>,
    pub idle: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: Option<String>,
    pub listener: Option<String>,
    #[serde(rename = "match")]
    pub matcher: Option<Match>,
    pub upstream: String,
    pub timeout: Option<RouteTimeout>,
    pub retry: Option<Retry>,
    pub sorry: Option<Sorry>,
    pub flood: Option<Flood>,
    pub cache: Option<Cache>,
    /// "critical", "high", "normal" or "low".
    pub priority: Option<String>,
    pub waiting_room: Option<WaitingRoom>,
    /// "auxiliary" (default), "core" or "whole": the route's function scope for incidents.
    pub function: Option<ballast_core::incident::FunctionScope>,
}

/// Admission control: at most `capacity` active visitors, the rest wait in line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoom {
    #[serde(default, deserialize_with = "whole")]
    pub capacity: Option<i64>,
    pub session: Option<Duration>,
    pub refresh: Option<Duration>,
    #[serde(default, deserialize_with = "whole")]
    pub max_queue: Option<i64>,
    pub cookie: Option<String>,
    /// A file holding the cookie-signing key, read at load time.
    pub secret_file: Option<String>,
    /// An HTML template with `{{position}}`, `{{wait}}`, … read at load time.
    pub page: Option<String>,
}

/// The response cache of a route, with stale serving while the upstream fails.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub max_size: Option<Size>,
    pub max_object: Option<Size>,
    pub max_stale: Option<Duration>,
    /// Request parts that make the key: "scheme", "host", "path", "query", "header:NAME",
    /// "cookie:NAME".
    pub key: Option<Vec<String>>,
    /// 5xx statuses (upstream answers or the gateway's own) replaced by stale content.
    pub stale_on: Option<Vec<String>>,
}

/// Per-client rate limit and flood blocking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    /// "client-ip" or "header:NAME".
    pub key: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    pub max_per_second: Option<i64>,
    #[serde(default, deserialize_with = "whole")]
    pub factor: Option<i64>,
    #[serde(default, deserialize_with = "whole")]
    pub min_per_second: Option<i64>,
    pub block: Option<Duration>,
    pub allow: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub method: Option<OneOrMany>,
    pub header: Option<HeaderMatch>,
}

/// `"GET"` or `["GET", "HEAD"]`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "must be a method or a list of methods, e.g. \"GET\" or [\"GET\", \"HEAD\"]"
)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTimeout {
    pub connect: Option<Duration>,
    pub response: Option<Duration>,
    pub total: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default, deserialize_with = "whole")]
    pub attempts: Option<i64>,
    /// Outcomes that may be retried: "connect-failure", "reset", "timeout", or a 5xx status.
    pub on: Option<Vec<String>>,
    #[serde(default, deserialize_with = "percent")]
    pub budget: Option<Ratio>,
    #[serde(default, deserialize_with = "whole")]
    pub min_retries_per_second: Option<i64>,
    /// `"25ms..250ms"`: first back-off cap and largest back-off cap.
    pub backoff: Option<String>,
    pub retry_after_max: Option<Duration>,
}

/// The static page served instead of an upstream failure.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sorry {
    /// An HTML file read at load time; the built-in page when absent.
    pub page: Option<String>,
    /// Upstream statuses that are replaced by the page (5xx only); "no-server" is implied.
    pub on: Option<Vec<String>>,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub name: String,
    pub balance: Option<String>,
    pub hash: Option<Hash>,
    pub sticky: Option<Sticky>,
    pub health: Option<Health>,
    pub passive: Option<Passive>,
    pub breaker: Option<Breaker>,
    pub limit: Option<Limit>,
    pub slow_start: Option<Duration>,
    pub pool: Option<Pool>,
    #[serde(default)]
    pub servers: Vec<Server>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hash {
    pub on: String,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sticky {
    pub cookie: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub kind: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "whole")]
    pub rise: Option<i64>,
    #[serde(default, deserialize_with = "whole")]
    pub fall: Option<i64>,
    pub expect: Option<String>,
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passive {
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "whole")]
    pub consecutive_failures: Option<i64>,
    pub ejection: Option<Duration>,
    pub max_ejection: Option<Duration>,
    #[serde(default, deserialize_with = "percent")]
    pub max_ejected: Option<Ratio>,
    pub uneject_on_check: Option<bool>,
}

/// Circuit breaker per server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breaker {
    #[serde(default, deserialize_with = "whole")]
    pub consecutive_failures: Option<i64>,
    #[serde(default, deserialize_with = "percent")]
    pub error_ratio: Option<Ratio>,
    #[serde(default, deserialize_with = "whole")]
    pub min_requests: Option<i64>,
    pub window: Option<Duration>,
    pub cool_down: Option<Duration>,
    #[serde(default, deserialize_with = "whole")]
    pub probes: Option<i64>,
}

/// Adaptive concurrency limit and priority shedding for one upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// "gradient" (adapts to latency) or "fixed".
    pub algorithm: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    pub initial: Option<i64>,
    #[serde(default, deserialize_with = "whole")]
    pub min: Option<i64>,
    #[serde(default, deserialize_with = "whole")]
    pub max: Option<i64>,
    /// Latency growth tolerated before the limit shrinks, as a factor of the baseline (1.5).
    pub tolerance: Option<f64>,
    pub max_wait: Option<Duration>,
    #[serde(default, deserialize_with = "whole")]
    pub max_queue: Option<i64>,
    pub retry_after: Option<Duration>,
    /// Share of each class refused outright while the upstream is saturated.
    pub shed: Option<ShedShares>,
}

/// Fractional shedding per priority class (`critical` is never shed this way).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShedShares {
    #[serde(default, deserialize_with = "percent")]
    pub high: Option<Ratio>,
    #[serde(default, deserialize_with = "percent")]
    pub normal: Option<Ratio>,
    #[serde(default, deserialize_with = "percent")]
    pub low: Option<Ratio>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    #[serde(default, deserialize_with = "whole")]
    pub max_idle: Option<i64>,
    pub idle_timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub addr: String,
    #[serde(default, deserialize_with = "whole")]
    pub weight: Option<i64>,
    pub backup: Option<bool>,
}

/// A whole number written without quotes; read as `i64` so validation can name the allowed range.
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number without quotes, e.g. 3")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} is far too large")))
        }
    }
    d.deserialize_any(V).map(Some)
}

/// A share such as `"50%"`; a bare number gets a message that says to add the `%`.
fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ratio>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Ratio;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a percentage, e.g. \"50%\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Ratio, E> {
            v.parse().map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ratio, E> {
            Err(bare_share(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ratio, E> {
            Err(bare_share(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ratio, E> {
            Err(bare_share(v))
        }
    }
    fn bare_share<E: de::Error>(v: impl fmt::Display) -> E {
        E::custom(format!(
            "a share needs a `%` sign: write a string such as \"50%\", not the bare number {v}"
        ))
    }
    d.deserialize_any(V).map(Some)
}

/// Parses the TOML text into the raw schema, locating the first syntax or type error.
pub fn parse(src: &str, file: &str) -> Result<File, ConfigError> {
    let de = toml::Deserializer::new(src);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = match inner.span() {
            Some(s) => {
                let (l, c) = line_col(src, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError::Invalid {
            file: file.to_string(),
            problems: vec![Problem {
                path: if path == "." { String::new() } else { path },
                line,
                column,
                message: one_line(inner.message()),
            }],
        }
    })
}

/// TOML syntax messages span several lines; a located error is one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

//! Probes: one [`Probe`] trait, one module per kind of thing measured.
//!
//! A probe is built once from its spec (the `[[monitor]]` table's kind-specific keys, which
//! each module's `*Spec` deserializes and validates) and then run on the monitor's interval by
//! the runner, which bounds it with a timeout and a concurrency limit. A probe never panics and
//! never decides whether anything is an alert: it reports [`Reading`]s (named values, each on
//! its own label set, so every route, server, mount or step is a series of its own) and, when
//! it could not measure what it was asked to, an error saying why. Rules turn readings into
//! alerts.
//!
//! Conventions every kind follows, so rules read the same everywhere:
//! - shares and percentages are fractions (0.25, not 25); a rule's `"25%"` is 0.25;
//! - durations are in milliseconds (`latency_ms`), except days to expiry (`days_left`);
//! - booleans are 1 and 0;
//! - the runner adds `up` (1 when the run had no error, else 0) unless the probe set it, so
//!   every monitor can be alerted on with `value = "up"` and `min = { below = 1 }`.

pub mod client;
pub mod dns;
pub mod heartbeat;
pub mod host;
pub mod http;
pub mod journey;
pub mod process;
pub mod procfs;
pub mod prometheus;
pub mod tcp;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

use ballast_core::Labels;
use serde::Serialize;
use thiserror::Error;

pub mod gateway;

/// A future a probe returns; boxed so probes of every kind sit behind `dyn Probe`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One measured value of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// What was measured (`error_ratio`, `disk_used`, `days_left`...): what a rule's `value`
    /// names.
    pub value: String,
    /// Which series (`route`, `server`, `mount`, `step`...).
    pub labels: Labels,
    pub number: f64,
}

impl Reading {
    pub fn new(value: impl Into<String>, labels: Labels, number: f64) -> Self {
        Reading {
            value: value.into(),
            labels,
            number,
        }
    }
}

/// What one run of a probe found.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Outcome {
    pub readings: Vec<Reading>,
    /// Why the run failed (the target refused, an assertion did not hold); `None` on success.
    /// A failed run still reports whatever it measured (a failing journey reports the
    /// latency of the steps that ran).
    pub error: Option<String>,
    /// Kind-specific detail for the API: a journey's steps, a certificate's subject and
    /// expiry, a heartbeat's last run. `Null` when there is nothing more to say.
    pub detail: serde_json::Value,
    /// The probe has not measured enough yet to say anything about its rules (the gateway
    /// probe's first run has no earlier reading to take rates from): the run is shown but
    /// its rules are not evaluated, so an alert restored after a restart is not resolved by
    /// the gap.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warming_up: bool,
}

impl Outcome {
    /// A run that failed before measuring anything.
    pub fn failed(error: impl Into<String>) -> Self {
        Outcome {
            error: Some(error.into()),
            ..Outcome::default()
        }
    }

    pub fn push(&mut self, value: impl Into<String>, labels: Labels, number: f64) {
        self.readings.push(Reading::new(value, labels, number));
    }
}

/// One kind of measurement, built from its spec.
pub trait Probe: Send + Sync {
    /// The kind's name as written in `[[monitor]] kind`.
    fn kind(&self) -> &'static str;
    /// Runs once. The runner bounds the run with the monitor's timeout and drops the future
    /// when it expires, so a probe must hold nothing that a drop would leave inconsistent.
    fn run(&self) -> BoxFuture<'_, Outcome>;
}

/// Why a probe's spec was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A monitor's probe as configured: the kind and its spec. Every kind is one variant, so the
/// config is checked at load time and the engine builds probes with one exhaustive match.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    Gateway(gateway::GatewaySpec),
    Host(host::HostSpec),
    Process(process::ProcessSpec),
    Heartbeat(heartbeat::HeartbeatSpec),
    Http(http::HttpSpec),
    Tcp(tcp::TcpSpec),
    Dns(dns::DnsSpec),
    Tls(tls::TlsSpec),
    Journey(journey::JourneySpec),
    Prometheus(prometheus::PrometheusSpec),
}

impl ProbeSpec {
    /// The kinds a `[[monitor]]` may name.
    pub const KINDS: &'static [&'static str] = &[
        "gateway",
        "host",
        "process",
        "heartbeat",
        "http",
        "tcp",
        "dns",
        "tls",
        "journey",
        "prometheus",
    ];

    /// Reads the kind-specific keys of a `[[monitor]]` table (everything but `name`, `kind`,
    /// `interval` and `timeout`) as the spec of `kind`, and validates it.
    pub fn parse<'de, D: serde::Deserializer<'de>>(
        kind: &str,
        keys: D,
    ) -> Result<ProbeSpec, SpecError> {
        fn read<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
            keys: D,
        ) -> Result<T, SpecError> {
            T::deserialize(keys).map_err(|e| SpecError::new("", e.to_string()))
        }
        let spec = match kind {
            "gateway" => ProbeSpec::Gateway(read(keys)?),
            "host" => ProbeSpec::Host(read(keys)?),
            "process" => ProbeSpec::Process(read(keys)?),
            "heartbeat" => ProbeSpec::Heartbeat(read(keys)?),
            "http" => ProbeSpec::Http(read(keys)?),
            "tcp" => ProbeSpec::Tcp(read(keys)?),
            "dns" => ProbeSpec::Dns(read(keys)?),
            "tls" => ProbeSpec::Tls(read(keys)?),
            "journey" => ProbeSpec::Journey(read(keys)?),
            "prometheus" => ProbeSpec::Prometheus(read(keys)?),
            other => {
                return Err(SpecError::new(
                    "kind",
                    format!(
                        "unknown kind {other:?}; one of {}",
                        ProbeSpec::KINDS.join(", ")
                    ),
                ))
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            ProbeSpec::Gateway(s) => s.validate(),
            ProbeSpec::Host(s) => s.validate(),
            ProbeSpec::Process(s) => s.validate(),
            ProbeSpec::Heartbeat(s) => s.validate(),
            ProbeSpec::Http(s) => s.validate(),
            ProbeSpec::Tcp(s) => s.validate(),
            ProbeSpec::Dns(s) => s.validate(),
            ProbeSpec::Tls(s) => s.validate(),
            ProbeSpec::Journey(s) => s.validate(),
            ProbeSpec::Prometheus(s) => s.validate(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Gateway(_) => "gateway",
            ProbeSpec::Host(_) => "host",
            ProbeSpec::Process(_) => "process",
            ProbeSpec::Heartbeat(_) => "heartbeat",
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Tls(_) => "tls",
            ProbeSpec::Journey(_) => "journey",
            ProbeSpec::Prometheus(_) => "prometheus",
        }
    }
}

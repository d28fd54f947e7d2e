//! The file schema of monitoring, as written: `[[monitor]]`, `[[rule]]` and `[alerting]`.
//!
//! A monitor's kind-specific keys are kept as a TOML table here and read by the monitor
//! crate's spec for that kind (`ballast_monitor::probe::ProbeSpec::parse`), so each kind's
//! keys are defined once, beside the probe that uses them.

use std::collections::BTreeMap;
use std::fmt;

use ballast_core::Duration;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// `[[monitor]]`: the common keys; the rest belong to its kind.
#[derive(Debug, Deserialize)]
pub struct Monitor {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    #[serde(flatten)]
    pub keys: toml::Table,
}

/// A threshold: a number, or a percentage written as a string (`"1%"` is 0.01).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold(pub f64);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number (e.g. 3 or 0.5) or a percentage in quotes (e.g. \"1%\")")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                Ok(Threshold(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                let number = |s: &str| s.trim().parse::<f64>().ok().filter(|n| n.is_finite());
                match v.trim().strip_suffix('%') {
                    Some(p) => number(p).map(|n| Threshold(n / 100.0)).ok_or_else(|| {
                        E::custom(format!("`{v}` is not a percentage; write e.g. \"1%\" or \"0.5%\""))
                    }),
                    None => number(v).map(Threshold).ok_or_else(|| {
                        E::custom(format!(
                            "`{v}` is not a number; write a number without quotes or a percentage such as \"1%\""
                        ))
                    }),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `warn = { above = X, recover = Y }` (or `below`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub above: Option<Threshold>,
    pub below: Option<Threshold>,
    pub recover: Option<Threshold>,
}

/// `min = { below = X, recover = Y, severity = "warning" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Min {
    pub below: Option<Threshold>,
    pub recover: Option<Threshold>,
    pub severity: Option<String>,
}

pub use ballast_monitor::plan::{DependsOn, MaintenanceSpec};

/// `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: Option<String>,
    pub monitor: Option<String>,
    pub value: Option<String>,
    #[serde(rename = "match", default)]
    pub matchers: BTreeMap<String, String>,
    pub warn: Option<Level>,
    pub crit: Option<Level>,
    pub min: Option<Min>,
    /// `zero`, `keep_last` or `resolve`.
    pub no_data: Option<String>,
    #[serde(rename = "for")]
    pub for_: Option<Duration>,
    pub keep_firing_for: Option<Duration>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub depends_on: Vec<DependsOn>,
}

/// `[alerting]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    /// The default rule pack (on unless `false`).
    pub default_rules: Option<bool>,
    /// The language of notifications (`"en"`, the default, or `"ko"`); a receiver may
    /// override it.
    pub locale: Option<ballast_notify::Locale>,
    /// The dashboard's address, for links in notifications.
    pub dashboard_url: Option<String>,
    /// The notifications' own title and alert heading (`ballast_notify::template`).
    pub template: Option<ballast_notify::Template>,
}

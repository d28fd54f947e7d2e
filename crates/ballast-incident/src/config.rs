//! The `[incident]` config table, as written, and its checks at load.
//!
//! It exists so that a mistake in the incident rules (a bad regex, an unknown receiver, a
//! window of zero, a matrix that grades a wider outage milder) is refused when the config is
//! loaded, with an error naming the key, instead of surfacing in the middle of an incident.
//!
//! ```toml
//! [incident]
//! open_on = { severity = "critical", match = { service = "~shop|cart" } }  # default: critical
//! receivers = ["web-oncall"]   # told when an incident opens; each a [[receiver]]
//! join_window = "30m"          # a related alert joins an incident whose last alert is this recent
//! join_on = ["service", "upstream", "route"]  # sharing one of these labels makes alerts related
//! group_by = []                # or having all of these labels equal
//! matrix = { some = { core = "SEV1" }, most = { core = "SEV1" } }  # cells over the default
//! ```
//!
//! `match` uses the notification routes' form: a value is compared for equality, one starting
//! with `~` is a regex that must match the whole value. Defaults, and why: `severity =
//! "critical"`, because a warning is a question for the day, not an incident; `join_window =
//! "30m"`, long enough for a slow cascade (a database, then everything using it) to stay one
//! incident, short enough that tomorrow's failure of the same service is a new one;
//! `join_on = ["service", "upstream", "route"]`: same service, same incident, as the issue
//! puts it, and the gateway's own alerts (the default rule pack's) name their upstream or
//! route rather than a service. `receivers`
//! may be empty: incidents are still kept and shown, but nobody is told.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{Duration, Severity};
use ballast_monitor::noise::{CompiledMatcher, MatcherError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::open::Correlator;
use crate::severity::{Matrix, MatrixError, MatrixSpec};

pub const DEFAULT_JOIN_WINDOW: Duration = Duration::from_secs(30 * 60);
/// The longest `join_window` accepted: a day. Longer would join unrelated failures.
pub const MAX_JOIN_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// `[incident] open_on`: which alerts open an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenOnSpec {
    /// The least severity that opens one.
    #[serde(default = "critical")]
    pub severity: Severity,
    /// Label name to value (`"~regex"` for a regex); all must hold.
    #[serde(rename = "match", default)]
    pub matchers: BTreeMap<String, String>,
}

impl Default for OpenOnSpec {
    fn default() -> Self {
        OpenOnSpec {
            severity: Severity::Critical,
            matchers: BTreeMap::new(),
        }
    }
}

/// The `[incident]` table as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    #[serde(default)]
    pub open_on: OpenOnSpec,
    #[serde(default)]
    pub receivers: Vec<String>,
    #[serde(default = "default_join_window")]
    pub join_window: Duration,
    #[serde(default = "default_join_on")]
    pub join_on: Vec<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub matrix: MatrixSpec,
}

impl Default for IncidentSpec {
    fn default() -> Self {
        IncidentSpec {
            open_on: OpenOnSpec::default(),
            receivers: Vec::new(),
            join_window: DEFAULT_JOIN_WINDOW,
            join_on: default_join_on(),
            group_by: Vec::new(),
            matrix: MatrixSpec::new(),
        }
    }
}

fn critical() -> Severity {
    Severity::Critical
}

fn default_join_window() -> Duration {
    DEFAULT_JOIN_WINDOW
}

fn default_join_on() -> Vec<String> {
    ["service", "upstream", "route"].map(String::from).to_vec()
}

/// Why `[incident]` was refused; every message starts with the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("incident.open_on.match.{name}: {source}")]
    Matcher {
        name: String,
        #[source]
        source: MatcherError,
    },
    #[error("incident.receivers: receiver {0:?} is not defined; add a [[receiver]] named {0:?} or fix the name")]
    UnknownReceiver(String),
    #[error("incident.receivers: {0:?} is listed twice")]
    DuplicateReceiver(String),
    #[error("incident.join_window: must be more than 0s")]
    ZeroJoinWindow,
    #[error("incident.join_window: {got} is longer than the most allowed, {max}")]
    LongJoinWindow { got: Duration, max: Duration },
    #[error("incident.{key}: {name:?} is not a label name (letters, digits and `_`, not starting with a digit)")]
    BadLabel { key: &'static str, name: String },
    #[error("incident.{0}")]
    Matrix(#[from] MatrixError),
}

/// `[incident]` checked and compiled.
#[derive(Debug, Clone)]
pub struct IncidentConfig {
    pub correlator: Correlator,
    pub matrix: Matrix,
}

impl IncidentSpec {
    /// Checks the table against the names of the configured receivers and compiles it.
    pub fn compile(&self, receivers: &BTreeSet<String>) -> Result<IncidentConfig, ConfigError> {
        let mut seen = BTreeSet::new();
        for r in &self.receivers {
            if !receivers.contains(r) {
                return Err(ConfigError::UnknownReceiver(r.clone()));
            }
            if !seen.insert(r) {
                return Err(ConfigError::DuplicateReceiver(r.clone()));
            }
        }
        if self.join_window.is_zero() {
            return Err(ConfigError::ZeroJoinWindow);
        }
        if self.join_window > MAX_JOIN_WINDOW {
            return Err(ConfigError::LongJoinWindow {
                got: self.join_window,
                max: MAX_JOIN_WINDOW,
            });
        }
        for (key, list) in [("join_on", &self.join_on), ("group_by", &self.group_by)] {
            if let Some(bad) = list.iter().find(|n| !is_label_name(n)) {
                return Err(ConfigError::BadLabel {
                    key,
                    name: bad.clone(),
                });
            }
        }
        let matchers = self
            .open_on
            .matchers
            .iter()
            .map(|(name, value)| {
                CompiledMatcher::from_table(name, value).map_err(|source| ConfigError::Matcher {
                    name: name.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let matrix = Matrix::with_overrides(&self.matrix)?;
        let window_ms = u64::try_from(self.join_window.get().as_millis()).unwrap_or(u64::MAX);
        Ok(IncidentConfig {
            correlator: Correlator {
                min_severity: self.open_on.severity,
                matchers,
                join_window_ms: window_ms,
                join_on: self.join_on.clone(),
                group_by: self.group_by.clone(),
                receivers: self.receivers.clone(),
            },
            matrix,
        })
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open::Decision;
    use crate::severity::{FunctionScope, Sev, UserScope};
    use crate::timeline::tests::alert;
    use ballast_core::AlertState;

    #[derive(Deserialize)]
    struct File {
        incident: IncidentSpec,
    }

    fn parse(text: &str) -> Result<IncidentSpec, toml::de::Error> {
        toml::from_str::<File>(text).map(|f| f.incident)
    }

    fn known() -> BTreeSet<String> {
        ["web-oncall".to_string(), "ops-mail".to_string()].into()
    }

    #[test]
    fn the_design_example_parses_with_defaults() {
        let spec = parse(
            "[incident]\nopen_on = { severity = \"critical\" }\nreceivers = [\"web-oncall\"]\n",
        )
        .unwrap();
        assert_eq!(spec.join_window, DEFAULT_JOIN_WINDOW);
        assert_eq!(spec.join_on, ["service", "upstream", "route"]);
        let c = spec.compile(&known()).unwrap();
        assert_eq!(c.correlator.receivers(), ["web-oncall"]);
        assert_eq!(c.matrix, Matrix::default());
        // An empty table is the defaults.
        assert_eq!(parse("[incident]\n").unwrap(), IncidentSpec::default());
    }

    #[test]
    fn a_full_table_compiles_and_its_match_applies() {
        let spec = parse(
            r#"
[incident]
open_on = { severity = "warning", match = { service = "~shop|cart", team = "web" } }
receivers = ["web-oncall", "ops-mail"]
join_window = "10m"
join_on = []
group_by = ["alertname", "service"]
matrix = { some = { core = "SEV1", whole = "SEV1" }, most = { core = "SEV1" } }
"#,
        )
        .unwrap();
        let c = spec.compile(&known()).unwrap();
        assert_eq!(c.correlator.join_window_ms, 600_000);
        assert_eq!(
            c.matrix.severity(UserScope::Some, FunctionScope::Core),
            Sev::Sev1
        );
        let warn = AlertState::Firing {
            severity: Severity::Warning,
        };
        let mut a = alert("latency", "cart", warn, 1_000);
        assert_eq!(
            c.correlator.decide(&[], &a, 2_000),
            Decision::Ignore(crate::open::IgnoreReason::NotMatching),
            "no team label"
        );
        a.labels.insert("team", "web");
        assert!(matches!(
            c.correlator.decide(&[], &a, 2_000),
            Decision::Open(_)
        ));
    }

    #[test]
    fn unknown_keys_and_bare_numbers_are_refused() {
        let err = parse("[incident]\nopen_when = {}\n").unwrap_err();
        assert!(err.to_string().contains("open_when"), "{err}");
        let err =
            parse("[incident]\nopen_on = { severity = \"critical\", labels = {} }\n").unwrap_err();
        assert!(err.to_string().contains("labels"), "{err}");
        assert!(parse("[incident]\njoin_window = 30\n").is_err());
        assert!(parse("[incident]\nopen_on = { severity = \"page\" }\n").is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let check = |text: &str, want: &str| {
            let err = parse(text)
                .unwrap()
                .compile(&known())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{err} should start with {want}");
        };
        check(
            "[incident]\nreceivers = [\"nobody\"]\n",
            "incident.receivers: receiver \"nobody\"",
        );
        check(
            "[incident]\nreceivers = [\"ops-mail\", \"ops-mail\"]\n",
            "incident.receivers: \"ops-mail\" is listed twice",
        );
        check("[incident]\njoin_window = \"0s\"\n", "incident.join_window");
        check("[incident]\njoin_window = \"2d\"\n", "incident.join_window");
        check(
            "[incident]\nopen_on = { match = { service = \"~(\" } }\n",
            "incident.open_on.match.service",
        );
        check("[incident]\njoin_on = [\"1x\"]\n", "incident.join_on");
        check("[incident]\ngroup_by = [\"a-b\"]\n", "incident.group_by");
        check(
            "[incident]\nmatrix = { all = { whole = \"SEV4\" } }\n",
            "incident.matrix.all.whole",
        );
    }
}

//! `[[remedy]]` rules: as written, validated, and matched to firing alerts.
//!
//! ```toml
//! [[remedy]]
//! name = "restart-app"
//! when = { alert = "app-down", match = { service = "shop", server = "~10\\.0\\..*" }, severity = "critical" }
//! do = [{ restart = { command = ["systemctl", "restart", "app@{{port}}"] } }]
//! target = "{{server}}"        # what cooldown, budget and blocking are per; default: the alert's id
//! dry_run = false
//! cooldown = "2m"              # default 5m
//! max_runs = { count = 3, per = "1h", rule_count = 10 }   # default 3 per 1h; rule_count: none
//! escalate_after = 3           # failed runs in a row that block the target (default 3)
//! verify = "30s"               # the alert must resolve within this, or the run failed
//! escalate_to = "web-oncall"   # a [[receiver]]
//! ```
//!
//! It exists so that a remediation is a config decision checked at load: a rule with no
//! condition, no action, a bad regex, a placeholder that does not parse, a zero budget or an
//! unknown receiver is refused with an error that names the rule.
//!
//! Matching: a rule matches an alert that is firing, whose rule name is `when.alert` (if set),
//! whose labels satisfy every `when.match` entry (a value, or `"~regex"` matching the whole
//! value, as in `[[notify]]`; an absent label is `""`), and whose severity is at least
//! `when.severity` (if set: `warning` matches critical alerts too, so a remedy keeps working
//! when its alert gets worse). A `when` with neither `alert`, `event` nor `match` is refused:
//! a rule that acts on every alert is never what was meant. `when = { event = "KIND" }` makes
//! a rule run on each gateway event of that kind instead (see `event.rs`).
//!
//! Defaults, and why: guard rails are on unless turned off. `cooldown = "5m"` gives an action
//! time to work before it is tried again; `max_runs = { count = 3, per = "1h" }` stops a restart
//! loop after three tries and calls a person; `escalate_after = 3` does the same for a run that
//! keeps failing.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{AlertRecord, AlertState, Duration, Severity};
use ballast_monitor::noise::{CompiledMatcher, MatcherError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::action::{Action, ActionError};
use crate::guard::{GuardSpec, Rate};
use crate::placeholder::{PlaceholderError, Template};

pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_RUNS: MaxRuns = MaxRuns {
    count: 3,
    per: Duration::from_secs(3600),
    rule_count: None,
};
pub const DEFAULT_ESCALATE_AFTER: u32 = 3;

/// One `[[remedy]]` table, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemedySpec {
    pub name: String,
    pub when: WhenSpec,
    #[serde(rename = "do")]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<MaxRuns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
}

/// `when = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// The alert's rule name (`alertname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Label name to value (`"~regex"` for a regex).
    #[serde(rename = "match", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matchers: BTreeMap<String, String>,
    /// The least severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// A gateway event kind (`breaker_opened`, `server_down`, ...) instead of an alert: the
    /// rule runs on each such event, with the event's fields as labels (see `event.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// `max_runs = { count, per, rule_count }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxRuns {
    /// Runs per target within `per`.
    pub count: u32,
    pub per: Duration,
    /// Runs of the rule over all its targets within `per`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_count: Option<u32>,
}

/// Why a `[[remedy]]` was refused. Every variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("a [[remedy]] has an empty name")]
    NoName,
    #[error("remedy {0:?} is defined twice")]
    Duplicate(String),
    #[error(
        "remedy {0:?}: `when` needs `alert`, `event` or `match`; a rule for every alert is refused"
    )]
    NoCondition(String),
    #[error("remedy {rule:?}: when.event: {reason}")]
    Event { rule: String, reason: String },
    #[error("remedy {0:?}: `do` is empty")]
    NoActions(String),
    #[error("remedy {rule:?}: do[{index}] ({kind}): {source}")]
    Action {
        rule: String,
        index: usize,
        kind: &'static str,
        source: ActionError,
    },
    #[error("remedy {rule:?}: when.match: {source}")]
    Matcher { rule: String, source: MatcherError },
    #[error("remedy {rule:?}: target: {source}")]
    Target {
        rule: String,
        source: PlaceholderError,
    },
    #[error("remedy {rule:?}: {field} must be more than 0")]
    Zero { rule: String, field: &'static str },
    #[error("[remediation] rate: count and per must be more than 0")]
    ZeroRate,
    #[error("remedy {rule:?}: escalate_to names {receiver:?}, which is not a [[receiver]]")]
    UnknownReceiver { rule: String, receiver: String },
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    alert: Option<String>,
    event: Option<String>,
    matchers: Vec<CompiledMatcher>,
    severity: Option<Severity>,
    actions: Vec<Action>,
    target: Option<Template>,
    guard: GuardSpec,
    verify_ms: Option<u64>,
    escalate_to: Option<String>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX)
}

/// What a matching rule would do for one alert: its target and its actions, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target: String,
    pub actions: Vec<Action>,
}

impl Rule {
    /// Validates one spec; `receivers` are the names of the `[[receiver]]`s.
    pub fn new(spec: &RemedySpec, receivers: &BTreeSet<String>) -> Result<Self, RuleError> {
        let rule = spec.name.trim().to_string();
        if rule.is_empty() {
            return Err(RuleError::NoName);
        }
        let w = &spec.when;
        if w.alert.is_none() && w.event.is_none() && w.matchers.is_empty() {
            return Err(RuleError::NoCondition(rule));
        }
        if let Some(kind) = &w.event {
            let reason = if w.alert.is_some() || w.severity.is_some() {
                Some(
                    "an event rule takes neither `alert` nor `severity` (events have none)"
                        .to_string(),
                )
            } else if !crate::event::well_formed(kind) {
                Some(format!(
                    "{kind:?} is not an event kind (snake_case, as in /api/v1/events)"
                ))
            } else if crate::event::forbidden(kind) {
                Some(format!(
                    "{kind:?}: remediation's own events cannot trigger a rule"
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(RuleError::Event { rule, reason });
            }
        }
        if spec.actions.is_empty() {
            return Err(RuleError::NoActions(rule));
        }
        for (index, action) in spec.actions.iter().enumerate() {
            action.validate().map_err(|source| RuleError::Action {
                rule: rule.clone(),
                index,
                kind: action.kind(),
                source,
            })?;
        }
        let matchers = spec
            .when
            .matchers
            .iter()
            .map(|(name, value)| CompiledMatcher::from_table(name, value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| RuleError::Matcher {
                rule: rule.clone(),
                source,
            })?;
        let target = spec
            .target
            .as_deref()
            .map(Template::parse)
            .transpose()
            .map_err(|source| RuleError::Target {
                rule: rule.clone(),
                source,
            })?;
        let zero = |field| RuleError::Zero {
            rule: rule.clone(),
            field,
        };
        let max = spec.max_runs.unwrap_or(DEFAULT_MAX_RUNS);
        if max.count == 0 {
            return Err(zero("max_runs.count"));
        }
        if max.per.is_zero() {
            return Err(zero("max_runs.per"));
        }
        if max.rule_count == Some(0) {
            return Err(zero("max_runs.rule_count"));
        }
        let escalate_after = spec.escalate_after.unwrap_or(DEFAULT_ESCALATE_AFTER);
        if escalate_after == 0 {
            return Err(zero("escalate_after"));
        }
        if spec.verify.is_some_and(|v| v.is_zero()) {
            return Err(zero("verify"));
        }
        if let Some(r) = &spec.escalate_to {
            if !receivers.contains(r) {
                return Err(RuleError::UnknownReceiver {
                    rule,
                    receiver: r.clone(),
                });
            }
        }
        Ok(Rule {
            name: rule,
            alert: spec.when.alert.clone(),
            event: spec.when.event.clone(),
            matchers,
            severity: spec.when.severity,
            actions: spec.actions.clone(),
            target,
            guard: GuardSpec {
                dry_run: spec.dry_run,
                cooldown_ms: ms(spec.cooldown.unwrap_or(DEFAULT_COOLDOWN)),
                max_runs: max.count,
                per_ms: ms(max.per),
                rule_max_runs: max.rule_count,
                escalate_after,
            },
            verify_ms: spec.verify.map(ms),
            escalate_to: spec.escalate_to.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn guard(&self) -> &GuardSpec {
        &self.guard
    }

    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// How long to wait for the alert to resolve after a run, if verified.
    pub fn verify_ms(&self) -> Option<u64> {
        self.verify_ms
    }

    /// The receiver to tell when the rule escalates.
    pub fn escalate_to(&self) -> Option<&str> {
        self.escalate_to.as_deref()
    }

    /// Whether the rule is for this alert (see the module doc).
    pub fn matches(&self, alert: &AlertRecord) -> bool {
        let AlertState::Firing { severity } = alert.state else {
            return false;
        };
        match (&self.event, alert.rule.strip_prefix(crate::event::PREFIX)) {
            (Some(kind), Some(got)) => {
                return kind == got && self.matchers.iter().all(|m| m.matches(&alert.labels))
            }
            (Some(_), None) | (None, Some(_)) => return false,
            (None, None) => {}
        }
        self.alert.as_ref().is_none_or(|a| *a == alert.rule)
            && self.severity.is_none_or(|least| severity >= least)
            && self.matchers.iter().all(|m| m.matches(&alert.labels))
    }

    /// The target (rendered, or the alert's id) and the actions rendered with the alert's
    /// labels; a refused label refuses the whole plan.
    pub fn plan(&self, alert: &AlertRecord) -> Result<Plan, PlaceholderError> {
        let target = match &self.target {
            Some(t) => t.render(&alert.labels)?,
            None => alert.id.clone(),
        };
        let actions = self
            .actions
            .iter()
            .map(|a| a.render(&alert.labels))
            .collect::<Result<_, _>>()?;
        Ok(Plan { target, actions })
    }
}

/// Every `[[remedy]]`, validated, in config order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Validates every spec (the first error wins) and refuses duplicate names.
    pub fn new(specs: &[RemedySpec], receivers: &BTreeSet<String>) -> Result<Self, RuleError> {
        let mut seen = BTreeSet::new();
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let rule = Rule::new(spec, receivers)?;
            if !seen.insert(rule.name.clone()) {
                return Err(RuleError::Duplicate(rule.name));
            }
            rules.push(rule);
        }
        Ok(Rules { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The event kinds some rule is triggered by.
    pub fn event_kinds(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .filter_map(|r| r.event.as_deref())
            .collect()
    }

    /// The rules for a (firing) alert, in config order.
    pub fn matching<'a>(&'a self, alert: &'a AlertRecord) -> impl Iterator<Item = &'a Rule> {
        self.rules.iter().filter(move |r| r.matches(alert))
    }
}

/// The `[remediation]` table: settings for every rule.
///
/// ```toml
/// [remediation]
/// rate = { count = 10, per = "1m" }   # at most this many runs of any rule (the default)
/// ```
///
/// The global rate is the last guard: an alert storm over 500 servers must not become 500
/// restarts in a second, whatever each rule's own budget says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateSpec>,
}

/// `rate = { count, per }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub count: u32,
    pub per: Duration,
}

pub const DEFAULT_GLOBAL_RATE: RateSpec = RateSpec {
    count: 10,
    per: Duration::from_secs(60),
};

impl RemediationSpec {
    /// The validated global rate.
    pub fn rate(&self) -> Result<Rate, RuleError> {
        let r = self.rate.unwrap_or(DEFAULT_GLOBAL_RATE);
        if r.count == 0 || r.per.is_zero() {
            return Err(RuleError::ZeroRate);
        }
        Ok(Rate {
            count: r.count,
            per_ms: ms(r.per),
        })
    }
}

#[cfg(test)]
mod tests;

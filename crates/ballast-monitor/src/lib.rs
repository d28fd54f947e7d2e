//! The pure core of Ballast's monitoring: rules, the alert state machine, and the
//! [`Evaluator`] that runs every rule on every series each round.
//!
//! The rule engine has no I/O, no clock and no tasks: probes ([`probe`]), the metric history, the store and the API
//! wire it in (issue 12), and all of them can be tested against it with plain values. Time is
//! passed in as milliseconds since the Unix epoch.
//!
//! A round is a complete report: the caller passes the latest value of every series of every
//! rule it evaluates, each as a [`Sample`]. A series the evaluator knows (it has a pending or
//! firing alert, or any alert at all when its rule counts missing data as 0) that is absent
//! from a round has no data that round, and its rule's [`NoData`](rule::NoData) policy
//! decides: a `min` rule counts it as 0 and so fires, on its own labels, for a vanished
//! process. A `min` rule with no series at all is evaluated on the empty label set (a
//! stand-in), so "never started" fires as well as "gone"; the stand-in's alert ends as soon as
//! real series report. Quiet alerts (inactive or resolved) whose series is absent are
//! forgotten, which bounds memory by the series that exist. NaN values are missing data.

pub mod alert;
pub mod alertmanager;
pub mod engine;
pub mod history;
pub mod noise;
pub mod plan;
pub mod probe;
pub mod rule;

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{AlertState, AlertTransition, Labels, Severity};
use thiserror::Error;

pub use alert::Alert;
pub use history::{MetricHistory, Summary};
pub use rule::{Direction, Level, LevelSpec, MinSpec, NoData, Rule, RuleError, RuleSpec};

/// One value of one series for one rule. `value: None` (or NaN) is missing data.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub rule: String,
    pub labels: Labels,
    pub value: Option<f64>,
}

impl Sample {
    pub fn new(rule: impl Into<String>, labels: Labels, value: Option<f64>) -> Self {
        Sample {
            rule: rule.into(),
            labels,
            value,
        }
    }
}

/// What one round produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// Every state change, in rule then label order.
    pub transitions: Vec<AlertTransition>,
    /// Rule names in samples that match no rule (sorted, once each); those samples are ignored.
    pub unknown_rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvaluatorError {
    #[error("two rules are named {0:?}")]
    DuplicateRule(String),
    #[error("no rule is named {0:?}")]
    UnknownRule(String),
}

/// Holds the rules and the alert of every (rule, series).
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    rules: BTreeMap<String, Rule>,
    alerts: BTreeMap<(String, Labels), Alert>,
    /// `min` rules whose empty-label alert is the stand-in for "no series at all".
    stand_ins: BTreeSet<String>,
}

impl Evaluator {
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Result<Self, EvaluatorError> {
        let mut by_name = BTreeMap::new();
        for rule in rules {
            let name = rule.name().to_string();
            if by_name.insert(name.clone(), rule).is_some() {
                return Err(EvaluatorError::DuplicateRule(name));
            }
        }
        Ok(Evaluator {
            rules: by_name,
            alerts: BTreeMap::new(),
            stand_ins: BTreeSet::new(),
        })
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    /// Every alert held (pending, firing, and quiet ones whose series was in the last round).
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn alert(&self, rule: &str, labels: &Labels) -> Option<&Alert> {
        self.alerts.get(&(rule.to_string(), labels.clone()))
    }

    /// Puts back an alert that was firing before a restart, without a transition (so it is
    /// not announced again). Its rule must exist.
    pub fn restore(
        &mut self,
        rule: &str,
        labels: Labels,
        severity: Severity,
        since_ms: u64,
    ) -> Result<(), EvaluatorError> {
        if !self.rules.contains_key(rule) {
            return Err(EvaluatorError::UnknownRule(rule.to_string()));
        }
        if labels.is_empty() && self.rules.get(rule).is_some_and(Rule::is_min) {
            // It was (most likely) the stand-in: end it once real series report.
            self.stand_ins.insert(rule.to_string());
        }
        let alert = Alert::restore(rule, labels.clone(), severity, since_ms);
        self.alerts.insert((rule.to_string(), labels), alert);
        Ok(())
    }

    /// Evaluates one round at `now` (see the module doc for what a round must contain). When
    /// a series appears twice in `samples`, the last value counts.
    pub fn evaluate(&mut self, samples: &[Sample], now: u64) -> Evaluation {
        let mut round: BTreeMap<(String, Labels), Option<f64>> = BTreeMap::new();
        let mut unknown = BTreeSet::new();
        for s in samples {
            if self.rules.contains_key(&s.rule) {
                round.insert((s.rule.clone(), s.labels.clone()), s.value);
            } else {
                unknown.insert(s.rule.clone());
            }
        }
        let mut transitions = Vec::new();
        // A min rule's stand-in ends as soon as real series report (or becomes real itself
        // when a series with no labels does).
        let stand_ins = std::mem::take(&mut self.stand_ins);
        for name in stand_ins {
            let key = (name, Labels::new());
            let reported = round.keys().any(|(r, _)| *r == key.0);
            if round.contains_key(&key) || !reported {
                if !round.contains_key(&key) {
                    self.stand_ins.insert(key.0);
                }
                continue;
            }
            if let (Some(alert), Some(rule)) = (self.alerts.remove(&key), self.rules.get(&key.0)) {
                let mut alert = alert;
                transitions.extend(alert.clear(rule, now));
            }
        }
        // Absent series: missing data for known alerts; a min rule with no series at all is
        // evaluated on the empty label set, its stand-in.
        for key in self.alerts.keys() {
            round.entry(key.clone()).or_insert(None);
        }
        for rule in self.rules.values().filter(|r| r.is_min()) {
            let name = rule.name();
            if !round.keys().any(|(r, _)| r == name) {
                round.insert((name.to_string(), Labels::new()), None);
                self.stand_ins.insert(name.to_string());
            }
        }
        let present: BTreeSet<(&str, &Labels)> = samples
            .iter()
            .map(|s| (s.rule.as_str(), &s.labels))
            .collect();

        for ((rule_name, labels), value) in round {
            let Some(rule) = self.rules.get(&rule_name) else {
                continue;
            };
            let key = (rule_name, labels);
            let alert = self
                .alerts
                .entry(key.clone())
                .or_insert_with(|| Alert::new(key.0.clone(), key.1.clone()));
            if let Some(t) = alert.observe(rule, value, now) {
                transitions.push(t);
            }
            let absent = !present.contains(&(key.0.as_str(), &key.1));
            // Forget what there is nothing to remember: a quiet alert whose series is gone,
            // and an inactive one (the same as none) unless its rule counts missing data as
            // 0, whose series must stay known so that its disappearance fires on its labels.
            let inactive = alert.state() == AlertState::Inactive;
            if alert.is_quiet() && (absent || (inactive && rule.no_data() != NoData::Zero)) {
                self.alerts.remove(&key);
                if key.1.is_empty() {
                    self.stand_ins.remove(&key.0);
                }
            }
        }
        Evaluation {
            transitions,
            unknown_rules: unknown.into_iter().collect(),
        }
    }
}

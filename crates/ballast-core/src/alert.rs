//! Alert values: the severity of a rule's level, the labels that name one series, the state of
//! one alert and the transition between two states.
//!
//! They live here, not in `ballast-monitor`, because the store (which persists firing alerts so a
//! restart does not announce them twice), the admin API and, later, notification and incidents
//! all read them; none of those should depend on the rule engine. A transition is shaped to
//! become an `Event` later, so it serializes with snake_case tags like the events do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;

/// How bad a firing alert is. Ordered: `Warning < Critical`, so the worse of two is `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// The name used in labels, the API and the store.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parses [`Severity::name`]'s text.
    pub fn parse(s: &str) -> Option<Self> {
        [Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// The labels that name one series (route, server, mount...), sorted by name so that two equal
/// sets compare, hash and fingerprint equal whatever order they were built in.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    pub fn new() -> Self {
        Labels(BTreeMap::new())
    }

    /// Adds (or replaces) one label; for building a set in one expression.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable identity for the set: the first 16 hex digits of the sha256 of the sorted
    /// pairs, each name and value prefixed by its length in bytes so that no choice of
    /// characters (`=`, `,`, newlines) can make two different sets encode alike. It does not
    /// depend on Rust's `Hash`, so it stays the same across releases and can be stored.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.0 {
            text.push_str(&format!("{}:{}{}:{}", name.len(), name, value.len(), value));
        }
        let mut hex = sha256_hex(&text);
        hex.truncate(16);
        hex
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The state of one alert (one rule on one series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    /// The condition is false (or the alert has never been evaluated).
    Inactive,
    /// The condition is true but has not yet held for the rule's `for`.
    Pending,
    /// The condition has held for `for`; at this severity.
    Firing { severity: Severity },
    /// It fired, and the condition has been false for the rule's `keep_firing_for`.
    Resolved,
}

impl AlertState {
    /// The name used in the API and metrics (`ballast_alerts{state}`).
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing { .. } => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// The severity, while firing.
    pub fn severity(self) -> Option<Severity> {
        match self {
            AlertState::Firing { severity } => Some(severity),
            _ => None,
        }
    }
}

/// One change of an alert's state, with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// The rule's name.
    pub rule: String,
    /// The series the rule was evaluated on.
    pub labels: Labels,
    pub from: AlertState,
    pub to: AlertState,
    /// The value evaluated, after the rule's no-data policy; `None` when there was no data
    /// and the policy did not substitute one.
    pub value: Option<f64>,
    /// The threshold that was crossed: the entered level's threshold when the alert becomes
    /// pending, fires or escalates; the left level's recovery value when it de-escalates,
    /// resolves or goes back to inactive.
    pub threshold: Option<f64>,
    pub at_unix_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_round_trips() {
        assert!(Severity::Warning < Severity::Critical);
        assert_eq!(
            Severity::Warning.max(Severity::Critical),
            Severity::Critical
        );
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse("Critical"), None);
    }

    #[test]
    fn fingerprint_ignores_order_and_separates_sets() {
        let a = Labels::new().with("route", "api").with("server", "s1");
        let b = Labels::new().with("server", "s1").with("route", "api");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        // Separator characters inside values cannot forge another set.
        let c = Labels::new().with("a", "1b:1c");
        let d = Labels::new().with("a", "1").with("b", "1c");
        assert_ne!(c.fingerprint(), d.fingerprint());
        assert_ne!(a.fingerprint(), Labels::new().fingerprint());
    }

    #[test]
    fn fingerprint_is_stable() {
        // Pinned: a stored fingerprint must still match after an upgrade.
        let l = Labels::new().with("mount", "/");
        assert_eq!(l.fingerprint(), &sha256_hex("5:mount1:/")[..16]);
    }

    #[test]
    fn transition_serializes_with_snake_case_tags() {
        let t = AlertTransition {
            rule: "disk".into(),
            labels: Labels::new().with("mount", "/"),
            from: AlertState::Pending,
            to: AlertState::Firing {
                severity: Severity::Critical,
            },
            value: Some(0.95),
            threshold: Some(0.9),
            at_unix_ms: 7,
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["from"], serde_json::json!({"state": "pending"}));
        assert_eq!(
            json["to"],
            serde_json::json!({"state": "firing", "severity": "critical"})
        );
        assert_eq!(json["labels"], serde_json::json!({"mount": "/"}));
        let back: AlertTransition = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }
}

//! The message every receiver renders: one group of alerts at one moment.
//!
//! It is plain data built from `ballast-core` alert records, so routing, the outbox (which
//! persists it as JSON) and every notifier agree on it, and a test can build one by hand.

use std::collections::BTreeMap;

use ballast_core::{AlertState, Labels, Severity};
use serde::{Deserialize, Serialize};

/// The language of the built-in texts (`[alerting] locale`, or a receiver's `locale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    #[default]
    En,
    Ko,
}

/// Whether the message announces trouble or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// At least one alert of the group fires.
    Firing,
    /// Every alert of the group has resolved.
    Resolved,
}

/// One alert as a message shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAlert {
    /// The alert's id (the fingerprint of its labels).
    pub id: String,
    /// The rule's name (`alertname`).
    pub rule: String,
    pub labels: Labels,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub since_unix_ms: u64,
}

impl MessageAlert {
    /// The severity while firing; `None` once resolved.
    pub fn severity(&self) -> Option<Severity> {
        self.state.severity()
    }
}

/// One notification: a group of alerts, what the receivers render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Identifies the group (its `group_by` labels); the same group gets the same key.
    pub group_key: String,
    /// The labels every alert of the group shares (the grouping labels).
    pub group_labels: Labels,
    pub status: MessageStatus,
    /// The worst severity among the firing alerts; `None` when all have resolved.
    pub severity: Option<Severity>,
    pub alerts: Vec<MessageAlert>,
    /// The dashboard's address, when known (links to the alert and a silence form).
    pub dashboard_url: Option<String>,
    pub locale: Locale,
    pub at_unix_ms: u64,
    /// The route (1-based `[[notify]]` position) that produced it; 0 for a test message.
    #[serde(default)]
    pub route: usize,
    /// Set on an escalation: the alert was not acknowledged this long after it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_after_ms: Option<u64>,
    /// The receiver's own title and alert heading, when it has them (kept with the message,
    /// so a notification sent after a restart reads as it would have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::template::Template>,
}

impl Message {
    /// The firing alerts, worst first.
    pub fn firing(&self) -> impl Iterator<Item = &MessageAlert> {
        self.alerts
            .iter()
            .filter(|a| matches!(a.state, AlertState::Firing { .. }))
    }

    /// The alerts that resolved.
    pub fn resolved(&self) -> impl Iterator<Item = &MessageAlert> {
        self.alerts
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
    }
}

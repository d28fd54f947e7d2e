//! Notices: messages the gateway itself has to say (an incident was opened, a remediation
//! gave up on a target), as opposed to messages about alerts that routes produce.
//!
//! Why they go through the same outbox rather than a direct send: a notice is as important
//! as an alert (it is often *the* message a person must read), so it gets the same
//! guarantees: persisted, retried with back-off, rate-limited per target, logged, and sent
//! once (its `key` is its dedup key, so queueing the same notice again after a restart does
//! nothing). It is rendered as a one-alert message, so every receiver kind shows it without
//! a renderer of its own.

use std::collections::BTreeMap;

use ballast_core::{AlertState, Labels, NewNotification, Severity};

use crate::message::{Message, MessageAlert, MessageStatus};
use crate::outbox::new_notification;
use crate::receiver::Receivers;

/// One thing the gateway says to a receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// What it is about, as `alertname` (`incident`, `remediation-escalation`).
    pub kind: String,
    /// Labels that say where (`incident="12"`, `rule="restart-api"`, `target="..."`).
    pub labels: Labels,
    pub severity: Severity,
    /// One line: the message's summary.
    pub summary: String,
    /// More lines, if any.
    pub description: Option<String>,
    /// When it happened (ms since the epoch).
    pub at_unix_ms: u64,
    /// Unique per notice and receiver: queueing it again is a no-op.
    pub key: String,
}

impl Notice {
    /// The notice as the message every notifier renders.
    pub fn message(&self, dashboard_url: Option<String>, locale: crate::Locale) -> Message {
        let labels = self.labels.clone().with("alertname", &self.kind);
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_string(), self.summary.clone());
        if let Some(d) = &self.description {
            annotations.insert("description".to_string(), d.clone());
        }
        Message {
            group_key: format!("notice:{}", self.key),
            group_labels: Labels::new().with("alertname", &self.kind),
            status: MessageStatus::Firing,
            severity: Some(self.severity),
            alerts: vec![MessageAlert {
                id: labels.fingerprint(),
                rule: self.kind.clone(),
                labels,
                annotations,
                state: AlertState::Firing {
                    severity: self.severity,
                },
                value: None,
                threshold: None,
                since_unix_ms: self.at_unix_ms,
            }],
            dashboard_url,
            locale,
            at_unix_ms: self.at_unix_ms,
            route: 0,
            escalated_after_ms: None,
            // The summary is the title: "critical incident" says nothing in a chat list. Braces
            // are dropped so it can never read as a placeholder.
            template: Some(crate::template::Template {
                title: Some(self.summary.replace(['{', '}'], "")),
                alert: None,
            }),
        }
    }

    /// The outbox rows of the notice to every target of `receiver` (none if it has none).
    pub fn rows(
        &self,
        receivers: &Receivers,
        receiver: &str,
        dashboard_url: Option<String>,
        now_unix_ms: u64,
    ) -> Vec<NewNotification> {
        receivers
            .targets_of(receiver)
            .iter()
            .filter_map(|t| {
                let message = self.message(dashboard_url.clone(), t.locale);
                let key = ballast_core::sha256_hex(&format!("notice\n{}\n{}", t.name, self.key));
                new_notification(
                    &t.name,
                    &message,
                    key,
                    now_unix_ms,
                    now_unix_ms,
                    t.max_age_ms,
                )
                .ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            kind: "incident".into(),
            labels: Labels::new().with("incident", "7"),
            severity: Severity::Critical,
            summary: "SEV2: api down".into(),
            description: Some("opened by alert ApiDown".into()),
            at_unix_ms: 1_000,
            key: "incident:7:opened".into(),
        }
    }

    #[test]
    fn a_notice_is_a_one_alert_firing_message_with_its_summary() {
        let m = notice().message(None, crate::Locale::En);
        assert_eq!(m.status, MessageStatus::Firing);
        assert_eq!(m.alerts.len(), 1);
        let a = &m.alerts[0];
        assert_eq!(a.rule, "incident");
        assert_eq!(a.labels.get("incident"), Some("7"));
        assert_eq!(a.labels.get("alertname"), Some("incident"));
        assert_eq!(a.annotations["summary"], "SEV2: api down");
        assert_eq!(a.annotations["description"], "opened by alert ApiDown");
        assert_eq!(m.severity, Some(Severity::Critical));
        assert_eq!(
            m.template.and_then(|t| t.title).as_deref(),
            Some("SEV2: api down"),
            "the summary is the title"
        );
    }

    #[test]
    fn an_unknown_receiver_gets_no_rows() {
        let receivers = Receivers::default();
        assert!(notice().rows(&receivers, "nobody", None, 5).is_empty());
    }
}

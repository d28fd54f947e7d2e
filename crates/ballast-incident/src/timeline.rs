//! The incident timeline: one ordered, deduplicated list of what happened, built from records
//! Ballast already keeps, and "what changed" before the start.
//!
//! It exists because a timeline curated by hand after the fact is late, partial and flattering.
//! Every source becomes a [`TimelineEntry`] through one constructor here: alerts firing and
//! resolving, notifications sent, remediation runs, config versions, change markers, commands
//! given at run time (drains among them), status changes and notes.
//!
//! Order: by time, then by kind (in [`EntryKind`]'s order, so an alert firing sorts before the
//! notification it caused when both share a millisecond), then by key. Dedup: every entry
//! has a `key` naming its source record (`alert:<id>:fired:<since>`, `config:<id>`,
//! `notification:<id>:<state>`...), and a second entry with a key already present is dropped, so
//! the binary can feed the same records again after a restart or on every refresh.
//!
//! "What changed" ([`what_changed`]) is the change entries (markers, config versions,
//! commands) in the [`WHAT_CHANGED_MS`] (2 h) before the impact's start, newest first: the first
//! thing to look at, and the first candidate for a rollback.

use std::collections::BTreeSet;

use ballast_core::{AlertRecord, AlertState, ChangeEntry, Event, NotificationLog};
use serde::{Deserialize, Serialize};

use crate::lifecycle::StepStamp;

/// How far before an incident's start "what changed" looks: 2 h.
pub const WHAT_CHANGED_MS: u64 = 2 * 3600 * 1000;

/// What a timeline entry records. The order is the tie-break for entries in the same ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A change marker (deploy, flag, data, infra, note).
    Change,
    /// A config version applied or refused.
    Config,
    /// A server drained or enabled.
    Drain,
    /// Another command given at run time (reload, purge).
    Command,
    AlertFired,
    AlertResolved,
    Notification,
    Remediation,
    Status,
    Note,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Change => "change",
            EntryKind::Config => "config",
            EntryKind::Drain => "drain",
            EntryKind::Command => "command",
            EntryKind::AlertFired => "alert_fired",
            EntryKind::AlertResolved => "alert_resolved",
            EntryKind::Notification => "notification",
            EntryKind::Remediation => "remediation",
            EntryKind::Status => "status",
            EntryKind::Note => "note",
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at_unix_ms: u64,
    pub kind: EntryKind,
    /// One line for people.
    pub summary: String,
    /// Who did it, when a person or a named actor did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Names the source record; two entries with the same key are one.
    pub key: String,
}

/// A remediation run as the timeline needs it: `ballast-remedy` (or anything else acting on
/// its own) turns its run record into this, so this crate does not depend on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationRun {
    /// The run's id in its own store, for dedup.
    pub id: String,
    /// The action's kind (`restart`, `drain`, `exec`...).
    pub kind: String,
    /// One line: rule, target, result (and "dry run" when it was one).
    pub summary: String,
    pub at_unix_ms: u64,
}

impl TimelineEntry {
    /// An alert's current state as an entry: fired or resolved at `since_unix_ms`. `None` for
    /// states that are not news on a timeline (inactive, pending).
    pub fn from_alert(alert: &AlertRecord) -> Option<Self> {
        let (kind, verb) = match alert.state {
            AlertState::Firing { .. } => (EntryKind::AlertFired, "fired"),
            AlertState::Resolved => (EntryKind::AlertResolved, "resolved"),
            AlertState::Inactive | AlertState::Pending => return None,
        };
        let severity = alert
            .state
            .severity()
            .map(|s| format!(" ({})", s.name()))
            .unwrap_or_default();
        let labels = alert
            .labels
            .iter()
            .filter(|(k, _)| *k != "alertname" && *k != "severity")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let on = if labels.is_empty() {
            String::new()
        } else {
            format!(" on {labels}")
        };
        Some(TimelineEntry {
            at_unix_ms: alert.since_unix_ms,
            kind,
            summary: format!("alert {} {verb}{severity}{on}", alert.rule),
            author: None,
            key: format!("alert:{}:{verb}:{}", alert.id, alert.since_unix_ms),
        })
    }

    /// A notification: queued, then delivered or given up, at its latest known moment.
    pub fn from_notification(n: &NotificationLog) -> Self {
        let at = n
            .delivered_unix_ms
            .or(n.last_attempt_unix_ms)
            .unwrap_or(n.created_unix_ms);
        let state = n.state.name();
        let result = n
            .result
            .as_deref()
            .and_then(|r| r.lines().next())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        TimelineEntry {
            at_unix_ms: at,
            kind: EntryKind::Notification,
            summary: format!(
                "notification to {} {state} after {} attempt(s){result}",
                n.receiver, n.attempts
            ),
            author: None,
            key: format!("notification:{}:{state}", n.id),
        }
    }

    /// A remediation run.
    pub fn from_remediation(run: &RemediationRun) -> Self {
        TimelineEntry {
            at_unix_ms: run.at_unix_ms,
            kind: EntryKind::Remediation,
            summary: format!("remediation {}: {}", run.kind, run.summary),
            author: Some("remediation".to_string()),
            key: format!("remediation:{}", run.id),
        }
    }

    /// A change: a marker, a config version or a command (drains are their own kind).
    pub fn from_change(change: &ChangeEntry) -> Self {
        let (kind, key) = match change {
            ChangeEntry::Marker(c) => (EntryKind::Change, format!("change:{}", c.id)),
            ChangeEntry::Config(c) => (EntryKind::Config, format!("config:{}", c.id)),
            ChangeEntry::Command(e) => {
                let kind = match e.stamped.event {
                    Event::ServerDrained { .. } | Event::ServerEnabled { .. } => EntryKind::Drain,
                    _ => EntryKind::Command,
                };
                (kind, format!("event:{}", e.id))
            }
        };
        let who = change.who();
        TimelineEntry {
            at_unix_ms: change.at_unix_ms(),
            kind,
            summary: change.what(),
            author: (!who.is_empty()).then(|| who.to_string()),
            key,
        }
    }

    /// A lifecycle step entered.
    pub fn from_step(step: &StepStamp) -> Self {
        TimelineEntry {
            at_unix_ms: step.at_unix_ms,
            kind: EntryKind::Status,
            summary: format!("status: {}", step.status.name()),
            author: Some(step.author.clone()),
            key: format!("status:{}:{}", step.status.name(), step.at_unix_ms),
        }
    }

    /// A note written by a person; `seq` is its number on the incident.
    pub fn note(seq: usize, at_unix_ms: u64, author: &str, text: &str) -> Self {
        TimelineEntry {
            at_unix_ms,
            kind: EntryKind::Note,
            summary: text.lines().next().unwrap_or("").to_string(),
            author: Some(author.to_string()),
            key: format!("note:{seq}"),
        }
    }

    fn order_key(&self) -> (u64, EntryKind, &str) {
        (self.at_unix_ms, self.kind, &self.key)
    }
}

/// The ordered, deduplicated entries of one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
}

impl Timeline {
    pub fn new() -> Self {
        Timeline::default()
    }

    /// Adds an entry in its place; returns false (and changes nothing) when one with the same
    /// key is already there.
    pub fn insert(&mut self, entry: TimelineEntry) -> bool {
        if self.entries.iter().any(|e| e.key == entry.key) {
            return false;
        }
        let at = self
            .entries
            .partition_point(|e| e.order_key() <= entry.order_key());
        self.entries.insert(at, entry);
        true
    }

    /// Adds many entries; returns how many were new.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = TimelineEntry>) -> usize {
        let mut keys: BTreeSet<String> = self.entries.iter().map(|e| e.key.clone()).collect();
        let before = self.entries.len();
        for e in entries {
            if keys.insert(e.key.clone()) {
                self.entries.push(e);
            }
        }
        self.entries
            .sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        self.entries.len() - before
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The changes in the [`WHAT_CHANGED_MS`] before `started_unix_ms` (both ends included),
/// newest first.
pub fn what_changed(changes: &[ChangeEntry], started_unix_ms: u64) -> Vec<ChangeEntry> {
    let from = started_unix_ms.saturating_sub(WHAT_CHANGED_MS);
    let mut out: Vec<ChangeEntry> = changes
        .iter()
        .filter(|c| (from..=started_unix_ms).contains(&c.at_unix_ms()))
        .cloned()
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.at_unix_ms()));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ballast_core::{
        AlertSource, Change, ChangeKind, ConfigOutcome, ConfigSummary, Labels, NewChange,
        NotificationState, Origin, Severity, Stamped, StoredEvent,
    };

    pub(crate) fn alert(rule: &str, service: &str, state: AlertState, since: u64) -> AlertRecord {
        let labels = Labels::new()
            .with("alertname", rule)
            .with("service", service);
        AlertRecord {
            id: labels.fingerprint(),
            rule: rule.to_string(),
            labels,
            annotations: Default::default(),
            state,
            source: AlertSource::Rule,
            value: Some(0.3),
            threshold: Some(0.05),
            since_unix_ms: since,
            updated_unix_ms: since,
            ack: None,
        }
    }

    pub(crate) fn deploy(id: u64, at: u64) -> ChangeEntry {
        ChangeEntry::Marker(Change {
            id,
            marker: NewChange {
                kind: ChangeKind::Deploy,
                service: Some("shop".to_string()),
                version: Some("v42".to_string()),
                summary: "new checkout flow".to_string(),
                author: Some("ci".to_string()),
                url: None,
                at_unix_ms: at,
            },
        })
    }

    pub(crate) fn config(id: u64, at: u64) -> ChangeEntry {
        ChangeEntry::Config(ConfigSummary {
            id,
            sha256: "abcdef0123456789".to_string(),
            source: Origin::Api,
            at_unix_ms: at,
            host: "gw1".to_string(),
            instance: "gw1:9000".to_string(),
            outcome: ConfigOutcome::Applied,
        })
    }

    pub(crate) fn drain(id: u64, at: u64) -> ChangeEntry {
        ChangeEntry::Command(StoredEvent {
            id,
            instance: "gw1:9000".to_string(),
            stamped: Stamped {
                seq: id,
                at_unix_ms: at,
                event: Event::ServerDrained {
                    upstream: "app".to_string(),
                    server: "10.0.0.2:8080".to_string(),
                    by: Origin::Cli,
                },
            },
        })
    }

    #[test]
    fn alerts_become_fired_and_resolved_entries() {
        let firing = alert(
            "error-rate",
            "shop",
            AlertState::Firing {
                severity: Severity::Critical,
            },
            1_000,
        );
        let e = TimelineEntry::from_alert(&firing).unwrap();
        assert_eq!(e.kind, EntryKind::AlertFired);
        assert_eq!(
            e.summary,
            "alert error-rate fired (critical) on service=shop"
        );
        let resolved = alert("error-rate", "shop", AlertState::Resolved, 5_000);
        let r = TimelineEntry::from_alert(&resolved).unwrap();
        assert_eq!(r.kind, EntryKind::AlertResolved);
        assert_ne!(e.key, r.key);
        assert!(TimelineEntry::from_alert(&alert("x", "s", AlertState::Pending, 1)).is_none());
    }

    #[test]
    fn changes_map_to_their_kinds() {
        assert_eq!(
            TimelineEntry::from_change(&deploy(1, 10)).kind,
            EntryKind::Change
        );
        assert_eq!(
            TimelineEntry::from_change(&config(1, 10)).kind,
            EntryKind::Config
        );
        let d = TimelineEntry::from_change(&drain(7, 10));
        assert_eq!(d.kind, EntryKind::Drain);
        assert_eq!(d.summary, "drained app 10.0.0.2:8080 (cli)");
        assert_eq!(d.author.as_deref(), Some("gw1:9000"));
        assert_eq!(d.key, "event:7");
    }

    #[test]
    fn notification_and_remediation_entries() {
        let n = NotificationLog {
            id: 3,
            receiver: "web-oncall".to_string(),
            group_key: "g".to_string(),
            dedup_key: "d".to_string(),
            created_unix_ms: 100,
            state: NotificationState::Delivered,
            attempts: 2,
            last_attempt_unix_ms: Some(150),
            delivered_unix_ms: Some(160),
            result: Some("ok".to_string()),
        };
        let e = TimelineEntry::from_notification(&n);
        assert_eq!(e.at_unix_ms, 160);
        assert!(
            e.summary
                .starts_with("notification to web-oncall delivered after 2"),
            "{}",
            e.summary
        );
        let r = TimelineEntry::from_remediation(&RemediationRun {
            id: "9".to_string(),
            kind: "restart".to_string(),
            summary: "restart-app on app@8080: ok".to_string(),
            at_unix_ms: 200,
        });
        assert_eq!(r.kind, EntryKind::Remediation);
        assert_eq!(r.key, "remediation:9");
    }

    #[test]
    fn ordered_by_time_then_kind_and_deduplicated() {
        let mut t = Timeline::new();
        let fired = TimelineEntry::from_alert(&alert(
            "a",
            "shop",
            AlertState::Firing {
                severity: Severity::Warning,
            },
            500,
        ))
        .unwrap();
        let note = TimelineEntry::note(0, 500, "ana", "looking\nmore text");
        assert!(t.insert(note.clone()));
        assert!(t.insert(fired.clone()));
        assert!(!t.insert(fired.clone()), "the same alert again is dropped");
        let added = t.extend([
            TimelineEntry::from_change(&deploy(1, 100)),
            TimelineEntry::from_change(&deploy(1, 100)),
            fired.clone(),
            TimelineEntry::from_change(&config(2, 900)),
        ]);
        assert_eq!(added, 2);
        let kinds: Vec<_> = t.entries().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EntryKind::Change,
                EntryKind::AlertFired,
                EntryKind::Note,
                EntryKind::Config
            ]
        );
        assert_eq!(t.entries()[2].summary, "looking");
    }

    #[test]
    fn what_changed_is_the_two_hours_before_the_start() {
        let start = 10 * 3600 * 1000;
        let changes = [
            deploy(1, start - WHAT_CHANGED_MS - 1),
            deploy(2, start - WHAT_CHANGED_MS),
            config(3, start - 60_000),
            drain(4, start),
            deploy(5, start + 1),
        ];
        let got: Vec<u64> = what_changed(&changes, start)
            .iter()
            .map(|c| c.at_unix_ms())
            .collect();
        assert_eq!(got, [start, start - 60_000, start - WHAT_CHANGED_MS]);
        // A start near the epoch does not underflow.
        assert_eq!(what_changed(&changes, 5).len(), 0);
    }
}

//! Incident values: severity and scopes, lifecycle steps, timeline entries and the parts of an
//! incident record that people write (notes, action items), as plain serde values.
//!
//! They live here, not in `ballast-incident`, because the store (which keeps incidents), the
//! admin API and the CLI (which show them) and `ballast-remedy` (whose runs land on the
//! timeline) all read them, and none of those should depend on the incident logic. The rules
//! (the severity matrix, which lifecycle moves are allowed and the times they give, opening
//! and joining, the post-mortem) are in `ballast-incident`; here are only names, orders and
//! the constructors that turn another shared record into a timeline line.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::alert::{AlertState, Labels};
use crate::alerting::AlertRecord;
use crate::changes::ChangeEntry;
use crate::event::Event;
use crate::notification::NotificationLog;

/// How many users are affected. Ordered from none to all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserScope {
    None,
    Internal,
    Some,
    Most,
    All,
}

impl UserScope {
    pub const ALL: [UserScope; 5] = [
        UserScope::None,
        UserScope::Internal,
        UserScope::Some,
        UserScope::Most,
        UserScope::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UserScope::None => "none",
            UserScope::Internal => "internal",
            UserScope::Some => "some",
            UserScope::Most => "most",
            UserScope::All => "all",
        }
    }
}

/// How much of the service is affected. Ordered from auxiliary to whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionScope {
    Auxiliary,
    Core,
    Whole,
}

impl FunctionScope {
    pub const ALL: [FunctionScope; 3] = [
        FunctionScope::Auxiliary,
        FunctionScope::Core,
        FunctionScope::Whole,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FunctionScope::Auxiliary => "auxiliary",
            FunctionScope::Core => "core",
            FunctionScope::Whole => "whole",
        }
    }
}

/// An incident's severity. `Sev1` is the worst; the derived order puts it first, so the worse
/// of two is `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Sev {
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

impl Sev {
    pub fn name(self) -> &'static str {
        match self {
            Sev::Sev1 => "SEV1",
            Sev::Sev2 => "SEV2",
            Sev::Sev3 => "SEV3",
            Sev::Sev4 => "SEV4",
        }
    }
}

impl fmt::Display for Sev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an incident's user scope came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum UserScopeSource {
    /// Measured: `failed` of `total` requests on the affected routes.
    Measured { failed: u64, total: u64 },
    /// Set by a person.
    Manual { by: String },
    /// Not measured yet: an incident just opened, before the counters were read.
    Unmeasured,
}

/// An incident's two scopes and where the user scope came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub user: UserScope,
    #[serde(flatten)]
    pub user_source: UserScopeSource,
    pub function: FunctionScope,
    /// The routes the scopes were computed from.
    #[serde(default)]
    pub routes: BTreeSet<String>,
}

/// A step of the lifecycle, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Something is wrong and an incident exists.
    Detect,
    /// The incident's receivers are being told.
    Propagate,
    /// Someone is on it, working out what is wrong and how bad.
    Triage,
    /// Working to bring users back (roll back, drain, restart...).
    Recover,
    /// Users are fine; finding the root cause.
    Analyse,
    /// Telling the people who should know what happened.
    Share,
    /// The retrospective: timeline reviewed, action items assigned.
    Retrospective,
    /// Done.
    Closed,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Detect,
        Status::Propagate,
        Status::Triage,
        Status::Recover,
        Status::Analyse,
        Status::Share,
        Status::Retrospective,
        Status::Closed,
    ];

    /// The name used in the API, the CLI and the store.
    pub fn name(self) -> &'static str {
        match self {
            Status::Detect => "detect",
            Status::Propagate => "propagate",
            Status::Triage => "triage",
            Status::Recover => "recover",
            Status::Analyse => "analyse",
            Status::Share => "share",
            Status::Retrospective => "retrospective",
            Status::Closed => "closed",
        }
    }

    /// Parses [`Status::name`]'s text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    /// Whether users are (still) being hurt as far as the lifecycle knows.
    pub fn is_open(self) -> bool {
        self != Status::Closed
    }

    /// Whether moving from `self` to `to` is allowed (see the module docs).
    pub fn can_move_to(self, to: Status) -> bool {
        self != Status::Closed && (to > self || (self == Status::Recover && to == Status::Triage))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step entered: which, when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStamp {
    pub status: Status,
    pub at_unix_ms: u64,
    pub author: String,
}

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

    /// A remediation run, at the moment it ended (when its outcome was known); keyed by its
    /// start, so the record of a run updated after `verify` stays one entry.
    pub fn from_remediation(run: &crate::RemediationRun) -> Self {
        let actions = run
            .steps
            .iter()
            .map(|s| s.action.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let dry = if run.dry_run { " (dry run)" } else { "" };
        TimelineEntry {
            at_unix_ms: run.ended_unix_ms,
            kind: EntryKind::Remediation,
            summary: format!(
                "remediation {} on {}: {}{dry}{}",
                run.rule,
                run.target,
                run.result.name(),
                if actions.is_empty() {
                    String::new()
                } else {
                    format!(" [{actions}]")
                }
            ),
            author: Some("remediation".to_string()),
            key: format!(
                "remediation:{}:{}:{}",
                run.rule, run.target, run.started_unix_ms
            ),
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

    /// The timeline's order: time, then kind, then key.
    pub fn order_key(&self) -> (u64, EntryKind, &str) {
        (self.at_unix_ms, self.kind, &self.key)
    }
}

/// How the incident was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum OpenedBy {
    /// By an alert matching `[incident] open_on`.
    Alert { alert_id: String },
    /// By a person.
    Hand { author: String },
}

/// An alert that belongs to the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRef {
    pub id: String,
    pub rule: String,
    pub labels: Labels,
    /// When it joined (or opened) the incident.
    pub joined_unix_ms: u64,
}

impl AlertRef {
    pub fn of(alert: &AlertRecord, joined_unix_ms: u64) -> Self {
        AlertRef {
            id: alert.id.clone(),
            rule: alert.rule.clone(),
            labels: alert.labels.clone(),
            joined_unix_ms,
        }
    }
}

/// Something a person wrote, stamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at_unix_ms: u64,
    pub author: String,
    pub text: String,
}

/// What an action item is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A test case that reproduces the failure.
    Test,
    /// A monitoring item that would have caught it sooner.
    Monitoring,
    Other,
}

/// A thing to do after the incident, with its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItem {
    /// Its number on the incident, from 1.
    pub id: u32,
    pub title: String,
    pub kind: ActionKind,
    pub owner: Option<String>,
    #[serde(default)]
    pub done: bool,
    /// Added by Ballast as a suggestion rather than by a person.
    #[serde(default)]
    pub suggested: bool,
}

/// One incident as a list shows it (`GET /api/v1/incidents`, `ballast incident list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: u64,
    pub title: String,
    pub severity: Sev,
    pub status: Status,
    /// When the impact started.
    pub started_unix_ms: u64,
    pub opened_unix_ms: u64,
    pub closed_unix_ms: Option<u64>,
    /// How many alerts belong to it.
    pub alerts: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;
    use crate::alerting::AlertSource;
    use crate::event::{Origin, Stamped};
    use crate::history::{
        Change, ChangeKind, ConfigOutcome, ConfigSummary, NewChange, StoredEvent,
    };
    use crate::notification::NotificationState;

    fn alert(rule: &str, service: &str, state: AlertState, since: u64) -> AlertRecord {
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

    fn deploy(id: u64, at: u64) -> ChangeEntry {
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

    fn config(id: u64, at: u64) -> ChangeEntry {
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

    fn drain(id: u64, at: u64) -> ChangeEntry {
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
                    who: None,
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
            headline: None,
        };
        let e = TimelineEntry::from_notification(&n);
        assert_eq!(e.at_unix_ms, 160);
        assert!(
            e.summary
                .starts_with("notification to web-oncall delivered after 2"),
            "{}",
            e.summary
        );
        let r = TimelineEntry::from_remediation(&crate::RemediationRun {
            rule: "restart-app".to_string(),
            target: "app@8080".to_string(),
            alert_id: "a1".to_string(),
            dry_run: false,
            started_unix_ms: 200,
            ended_unix_ms: 260,
            result: crate::RemediationResult::Ok,
            steps: vec![crate::RemediationStep::new("restart", true, "")],
        });
        assert_eq!(r.kind, EntryKind::Remediation);
        assert_eq!(r.at_unix_ms, 260, "at its end");
        assert_eq!(r.key, "remediation:restart-app:app@8080:200");
        assert_eq!(
            r.summary,
            "remediation restart-app on app@8080: ok [restart]"
        );
    }

    #[test]
    fn names_and_orders() {
        assert!(Sev::Sev1 < Sev::Sev4, "the worse of two is min");
        assert!(UserScope::None < UserScope::All);
        assert!(FunctionScope::Auxiliary < FunctionScope::Whole);
        assert_eq!(serde_json::to_string(&Sev::Sev2).unwrap(), "\"SEV2\"");
        for s in Status::ALL {
            assert_eq!(Status::parse(s.name()), Some(s));
        }
        assert!(Status::Recover.can_move_to(Status::Triage));
        assert!(!Status::Analyse.can_move_to(Status::Recover));
        assert!(!Status::Closed.can_move_to(Status::Closed));
        let scope = Scope {
            user: UserScope::Some,
            user_source: UserScopeSource::Measured {
                failed: 3,
                total: 100,
            },
            function: FunctionScope::Core,
            routes: ["checkout".to_string()].into(),
        };
        let json = serde_json::to_value(&scope).unwrap();
        assert_eq!(json["source"], "measured");
        assert_eq!(json["failed"], 3);
        assert_eq!(serde_json::from_value::<Scope>(json).unwrap(), scope);
    }
}

//! The incident record and every edit made to it: opening, alerts joining, lifecycle moves,
//! scope and severity, notes, the root cause, follow-ups and action items.
//!
//! It exists so that the store, the API, the CLI and the post-mortem read one value, and so
//! that every edit also writes its line on the timeline: a move, a note or a change of severity
//! cannot happen without leaving a trace. Time and author are passed in; nothing here reads a
//! clock. The lifecycle's rules are in [`crate::lifecycle`].
//!
//! Severity is the matrix's grade of the scope unless a person set it by hand; after that, new
//! scopes are recorded but leave the hand-set severity alone (a person knows something the
//! counters do not). Every incident starts with two suggested, unowned action items, "add a
//! test case" and "add a monitoring item": the retrospective assigns or removes them.

pub use ballast_core::incident::{
    ActionItem, ActionKind, AlertRef, IncidentSummary, Note, OpenedBy,
};
use ballast_core::AlertRecord;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::lifecycle::{Lifecycle, Status, StepStamp, TransitionError};
use crate::severity::{FunctionScope, Matrix, Scope, Sev, UserScope, UserScopeSource};
use crate::timeline::{EntryKind, Timeline, TimelineEntry};

/// The longest note, root cause, follow-up or action item accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The longest title accepted, in bytes.
pub const MAX_TITLE_BYTES: usize = 200;

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IncidentError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("there is no action item {0}")]
    UnknownActionItem(u32),
    #[error("the incident is closed; alerts no longer join it")]
    Closed,
}

/// What an incident is opened with (see [`crate::open`] for opening from alerts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub title: String,
    /// When the impact started (the first alert's start, or a person's word).
    pub started_unix_ms: u64,
    pub opened_by: OpenedBy,
    pub alerts: Vec<AlertRef>,
    pub receivers: Vec<String>,
    /// `None`: not measured yet (user scope none, function auxiliary, until it is).
    pub scope: Option<Scope>,
    /// Entries the timeline starts with (the opening alert's "fired").
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
}

impl Draft {
    /// A draft for an incident opened by a person (`POST /api/v1/incidents`): no alerts yet,
    /// the impact's start as they say (or the moment they open it).
    pub fn by_hand(
        title: impl Into<String>,
        author: impl Into<String>,
        started_unix_ms: u64,
        receivers: Vec<String>,
    ) -> Self {
        Draft {
            title: title.into(),
            started_unix_ms,
            opened_by: OpenedBy::Hand {
                author: author.into(),
            },
            alerts: Vec::new(),
            receivers,
            scope: None,
            timeline: Vec::new(),
        }
    }
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub title: String,
    pub severity: Sev,
    /// Who set the severity by hand, if someone did.
    pub severity_set_by: Option<String>,
    pub scope: Scope,
    /// When the impact started.
    pub started_unix_ms: u64,
    pub opened_by: OpenedBy,
    pub lifecycle: Lifecycle,
    pub alerts: Vec<AlertRef>,
    pub receivers: Vec<String>,
    pub timeline: Timeline,
    pub notes: Vec<Note>,
    pub root_cause: Option<Note>,
    pub follow_ups: Vec<Note>,
    pub action_items: Vec<ActionItem>,
    /// The client addresses, paths and statuses with the most requests during the first
    /// minutes, from the gateway's own counters (attached by the binary at opening and
    /// refreshed over the first minutes).
    #[serde(default)]
    pub top_talkers: Option<ballast_core::TopTalkers>,
}

impl Incident {
    /// A new incident at `detect`, stamped `at_unix_ms` by `author`, graded by `matrix`.
    pub fn open(
        id: u64,
        draft: Draft,
        matrix: &Matrix,
        at_unix_ms: u64,
        author: &str,
    ) -> Result<Self, IncidentError> {
        let title = check_text("title", draft.title, MAX_TITLE_BYTES)?;
        let scope = draft.scope.unwrap_or(Scope {
            user: UserScope::None,
            user_source: UserScopeSource::Unmeasured,
            function: FunctionScope::Auxiliary,
            routes: Default::default(),
        });
        let lifecycle = Lifecycle::detected(at_unix_ms, author);
        let mut timeline = Timeline::new();
        timeline.extend(draft.timeline);
        if let Some(step) = lifecycle.steps().first() {
            timeline.insert(TimelineEntry::from_step(step));
        }
        let mut incident = Incident {
            id,
            title,
            severity: matrix.grade(&scope),
            severity_set_by: None,
            scope,
            started_unix_ms: draft.started_unix_ms.min(at_unix_ms),
            opened_by: draft.opened_by,
            lifecycle,
            alerts: Vec::new(),
            receivers: draft.receivers,
            timeline,
            notes: Vec::new(),
            root_cause: None,
            follow_ups: Vec::new(),
            top_talkers: None,
            action_items: vec![
                suggested(
                    1,
                    "Add a test case that reproduces this failure",
                    ActionKind::Test,
                ),
                suggested(
                    2,
                    "Add a monitoring item that would have caught this sooner",
                    ActionKind::Monitoring,
                ),
            ],
        };
        for a in draft.alerts {
            if !incident.alerts.iter().any(|x| x.id == a.id) {
                incident.alerts.push(a);
            }
        }
        Ok(incident)
    }

    /// The current step.
    pub fn status(&self) -> Status {
        self.lifecycle.status()
    }

    pub fn opened_unix_ms(&self) -> u64 {
        self.lifecycle.opened_unix_ms()
    }

    pub fn closed_unix_ms(&self) -> Option<u64> {
        self.lifecycle.closed_unix_ms()
    }

    /// Whether the alert (by id) belongs to the incident.
    pub fn has_alert(&self, alert_id: &str) -> bool {
        self.alerts.iter().any(|a| a.id == alert_id)
    }

    /// The latest moment an alert opened or joined the incident (its opening if none).
    pub fn last_alert_unix_ms(&self) -> u64 {
        self.alerts
            .iter()
            .map(|a| a.joined_unix_ms)
            .max()
            .unwrap_or(0)
            .max(self.opened_unix_ms())
    }

    /// Adds `alert` to the incident (once) and puts its current state on the timeline.
    /// Returns whether it was new to the incident.
    pub fn join(&mut self, alert: &AlertRecord, at_unix_ms: u64) -> Result<bool, IncidentError> {
        if !self.status().is_open() {
            return Err(IncidentError::Closed);
        }
        let new = !self.has_alert(&alert.id);
        if new {
            self.alerts.push(AlertRef::of(alert, at_unix_ms));
        }
        self.record_alert(alert);
        Ok(new)
    }

    /// Puts an alert's current state (fired, resolved) on the timeline; repeats are dropped.
    pub fn record_alert(&mut self, alert: &AlertRecord) {
        if let Some(e) = TimelineEntry::from_alert(alert) {
            self.timeline.insert(e);
        }
    }

    /// Moves the lifecycle and writes the move on the timeline.
    pub fn move_to(
        &mut self,
        to: Status,
        at_unix_ms: u64,
        author: &str,
    ) -> Result<StepStamp, IncidentError> {
        let step = self.lifecycle.move_to(to, at_unix_ms, author)?.clone();
        self.timeline.insert(TimelineEntry::from_step(&step));
        Ok(step)
    }

    /// Records a new scope and regrades the incident through `matrix`, unless its severity
    /// was set by hand. A change of severity goes on the timeline.
    pub fn set_scope(&mut self, scope: Scope, matrix: &Matrix, at_unix_ms: u64) {
        self.scope = scope;
        if self.severity_set_by.is_none() {
            let sev = matrix.grade(&self.scope);
            if sev != self.severity {
                let text = format!(
                    "severity {} → {sev} (users: {}, functions: {})",
                    self.severity,
                    self.scope.user.name(),
                    self.scope.function.name()
                );
                self.severity = sev;
                self.push(EntryKind::Status, at_unix_ms, None, "severity", text);
            }
        }
    }

    /// A person sets the user scope (`internal`, say, which cannot be measured); the
    /// function scope and routes stay, and the incident is regraded as by [`Self::set_scope`].
    pub fn set_user_scope(
        &mut self,
        user: UserScope,
        author: &str,
        matrix: &Matrix,
        at_unix_ms: u64,
    ) {
        let scope = Scope {
            user,
            user_source: UserScopeSource::Manual {
                by: author.to_string(),
            },
            ..self.scope.clone()
        };
        self.set_scope(scope, matrix, at_unix_ms);
    }

    /// The incident as a list shows it.
    pub fn summary(&self) -> IncidentSummary {
        IncidentSummary {
            id: self.id,
            title: self.title.clone(),
            severity: self.severity,
            status: self.status(),
            started_unix_ms: self.started_unix_ms,
            opened_unix_ms: self.opened_unix_ms(),
            closed_unix_ms: self.closed_unix_ms(),
            alerts: self.alerts.len(),
        }
    }

    /// A person sets the severity; the matrix no longer changes it.
    pub fn set_severity(&mut self, sev: Sev, author: &str, at_unix_ms: u64) {
        let text = format!("severity {} → {sev} (set by hand)", self.severity);
        self.severity = sev;
        self.severity_set_by = Some(author.to_string());
        self.push(
            EntryKind::Status,
            at_unix_ms,
            Some(author),
            "severity",
            text,
        );
    }

    /// Adds a note (it goes on the timeline).
    pub fn add_note(
        &mut self,
        text: String,
        author: &str,
        at_unix_ms: u64,
    ) -> Result<(), IncidentError> {
        let text = check_text("note", text, MAX_TEXT_BYTES)?;
        let seq = self.notes.len();
        self.timeline
            .insert(TimelineEntry::note(seq, at_unix_ms, author, &text));
        self.notes.push(Note {
            at_unix_ms,
            author: author.to_string(),
            text,
        });
        Ok(())
    }

    /// Writes (or rewrites) the root cause.
    pub fn set_root_cause(
        &mut self,
        text: String,
        author: &str,
        at_unix_ms: u64,
    ) -> Result<(), IncidentError> {
        let text = check_text("root cause", text, MAX_TEXT_BYTES)?;
        self.root_cause = Some(Note {
            at_unix_ms,
            author: author.to_string(),
            text,
        });
        Ok(())
    }

    /// Adds a follow-up (what was learned, what to watch).
    pub fn add_follow_up(
        &mut self,
        text: String,
        author: &str,
        at_unix_ms: u64,
    ) -> Result<(), IncidentError> {
        let text = check_text("follow-up", text, MAX_TEXT_BYTES)?;
        self.follow_ups.push(Note {
            at_unix_ms,
            author: author.to_string(),
            text,
        });
        Ok(())
    }

    /// Adds an action item; returns its id.
    pub fn add_action_item(
        &mut self,
        title: String,
        kind: ActionKind,
        owner: Option<String>,
    ) -> Result<u32, IncidentError> {
        let title = check_text("action item", title, MAX_TEXT_BYTES)?;
        let id = self.action_items.iter().map(|a| a.id).max().unwrap_or(0) + 1;
        self.action_items.push(ActionItem {
            id,
            title,
            kind,
            owner: owner.filter(|o| !o.trim().is_empty()),
            done: false,
            suggested: false,
        });
        Ok(id)
    }

    /// Gives an action item an owner (or takes it away with `None`).
    pub fn assign(&mut self, item: u32, owner: Option<String>) -> Result<(), IncidentError> {
        self.item(item)?.owner = owner.filter(|o| !o.trim().is_empty());
        Ok(())
    }

    /// Marks an action item done (or not done).
    pub fn set_done(&mut self, item: u32, done: bool) -> Result<(), IncidentError> {
        self.item(item)?.done = done;
        Ok(())
    }

    /// Removes an action item (a suggestion that does not apply, say).
    pub fn remove_action_item(&mut self, item: u32) -> Result<ActionItem, IncidentError> {
        let at = self
            .action_items
            .iter()
            .position(|a| a.id == item)
            .ok_or(IncidentError::UnknownActionItem(item))?;
        Ok(self.action_items.remove(at))
    }

    /// Time from the impact's start to opening.
    pub fn time_to_detect_ms(&self) -> u64 {
        self.lifecycle.time_to_detect_ms(self.started_unix_ms)
    }

    /// Time from opening until someone was on it.
    pub fn time_to_acknowledge_ms(&self) -> Option<u64> {
        self.lifecycle.time_to_acknowledge_ms()
    }

    /// Time from the impact's start until users were fine.
    pub fn time_to_recover_ms(&self) -> Option<u64> {
        self.lifecycle.time_to_recover_ms(self.started_unix_ms)
    }

    /// How long users were hurt: until recovery, else until closing, else until `now`.
    pub fn impact_ms(&self, now_unix_ms: u64) -> u64 {
        self.lifecycle
            .recovered_unix_ms()
            .or(self.closed_unix_ms())
            .unwrap_or(now_unix_ms)
            .saturating_sub(self.started_unix_ms)
    }

    fn item(&mut self, id: u32) -> Result<&mut ActionItem, IncidentError> {
        self.action_items
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(IncidentError::UnknownActionItem(id))
    }

    fn push(
        &mut self,
        kind: EntryKind,
        at_unix_ms: u64,
        author: Option<&str>,
        key: &str,
        summary: String,
    ) {
        let seq = self.timeline.len();
        self.timeline.insert(TimelineEntry {
            at_unix_ms,
            kind,
            summary,
            author: author.map(str::to_string),
            key: format!("{key}:{at_unix_ms}:{seq}"),
        });
    }
}

fn suggested(id: u32, title: &str, kind: ActionKind) -> ActionItem {
    ActionItem {
        id,
        title: title.to_string(),
        kind,
        owner: None,
        done: false,
        suggested: true,
    }
}

fn check_text(field: &'static str, text: String, max: usize) -> Result<String, IncidentError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(IncidentError::Empty { field });
    }
    if trimmed.len() > max {
        return Err(IncidentError::TooLong {
            field,
            len: trimmed.len(),
            max,
        });
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::severity::measured_scope;
    use crate::timeline::tests::alert;
    use ballast_core::{AlertState, Severity};

    fn firing(rule: &str, service: &str, at: u64) -> AlertRecord {
        alert(
            rule,
            service,
            AlertState::Firing {
                severity: Severity::Critical,
            },
            at,
        )
    }

    pub(crate) fn opened(at: u64) -> Incident {
        let a = firing("error-rate", "shop", at - 30_000);
        Incident::open(
            7,
            Draft {
                title: "shop errors".to_string(),
                started_unix_ms: a.since_unix_ms,
                opened_by: OpenedBy::Alert {
                    alert_id: a.id.clone(),
                },
                alerts: vec![AlertRef::of(&a, at)],
                receivers: vec!["web-oncall".to_string()],
                scope: None,
                timeline: TimelineEntry::from_alert(&a).into_iter().collect(),
            },
            &Matrix::default(),
            at,
            "ballast",
        )
        .unwrap()
    }

    #[test]
    fn opening_stamps_detect_and_suggests_two_items() {
        let i = opened(100_000);
        assert_eq!(i.status(), Status::Detect);
        assert_eq!(i.severity, Sev::Sev4, "unmeasured scope grades as none");
        assert_eq!(i.time_to_detect_ms(), 30_000);
        let kinds: Vec<_> = i.timeline.entries().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::AlertFired, EntryKind::Status]);
        let kinds: Vec<_> = i
            .action_items
            .iter()
            .map(|a| (a.kind, a.suggested))
            .collect();
        assert_eq!(
            kinds,
            [(ActionKind::Test, true), (ActionKind::Monitoring, true)]
        );
    }

    #[test]
    fn empty_or_long_title_is_refused() {
        let mut d = Draft {
            title: "  ".to_string(),
            started_unix_ms: 0,
            opened_by: OpenedBy::Hand {
                author: "ana".to_string(),
            },
            alerts: vec![],
            receivers: vec![],
            scope: None,
            timeline: vec![],
        };
        let m = Matrix::default();
        assert_eq!(
            Incident::open(1, d.clone(), &m, 0, "ana"),
            Err(IncidentError::Empty { field: "title" })
        );
        d.title = "x".repeat(MAX_TITLE_BYTES + 1);
        assert!(matches!(
            Incident::open(1, d, &m, 0, "ana"),
            Err(IncidentError::TooLong { field: "title", .. })
        ));
    }

    #[test]
    fn joining_records_once_and_refuses_when_closed() {
        let mut i = opened(100_000);
        let other = firing("latency", "shop", 110_000);
        assert_eq!(i.join(&other, 110_000), Ok(true));
        assert_eq!(i.join(&other, 111_000), Ok(false));
        assert_eq!(i.alerts.len(), 2);
        assert_eq!(i.last_alert_unix_ms(), 110_000);
        let fired = i
            .timeline
            .entries()
            .iter()
            .filter(|e| e.kind == EntryKind::AlertFired)
            .count();
        assert_eq!(fired, 2, "the opening alert and the joined one, once each");
        i.move_to(Status::Closed, 200_000, "ana").unwrap();
        assert_eq!(i.join(&other, 210_000), Err(IncidentError::Closed));
    }

    #[test]
    fn moves_write_the_timeline_and_refusals_are_typed() {
        let mut i = opened(100_000);
        i.move_to(Status::Triage, 130_000, "ana").unwrap();
        assert_eq!(i.time_to_acknowledge_ms(), Some(30_000));
        let err = i.move_to(Status::Detect, 140_000, "ana").unwrap_err();
        assert!(matches!(
            err,
            IncidentError::Transition(TransitionError::Backwards { .. })
        ));
        let statuses = i
            .timeline
            .entries()
            .iter()
            .filter(|e| e.kind == EntryKind::Status)
            .count();
        assert_eq!(statuses, 2);
    }

    #[test]
    fn scope_regrades_until_set_by_hand() {
        let mut i = opened(100_000);
        let m = Matrix::default();
        let routes = [("checkout".to_string(), FunctionScope::Core)].into();
        i.set_scope(
            measured_scope(600, 1000, &routes, ["checkout".to_string()].into()),
            &m,
            101_000,
        );
        assert_eq!(i.severity, Sev::Sev1, "most × whole (the only route)");
        i.set_severity(Sev::Sev2, "ana", 102_000);
        i.set_scope(
            measured_scope(0, 1000, &routes, ["checkout".to_string()].into()),
            &m,
            103_000,
        );
        assert_eq!(i.severity, Sev::Sev2);
        assert_eq!(i.scope.user, UserScope::None);
        let sev_lines: Vec<_> = i
            .timeline
            .entries()
            .iter()
            .filter(|e| e.summary.starts_with("severity"))
            .map(|e| e.summary.as_str())
            .collect();
        assert_eq!(
            sev_lines,
            [
                "severity SEV4 → SEV1 (users: most, functions: whole)",
                "severity SEV1 → SEV2 (set by hand)"
            ]
        );
    }

    #[test]
    fn opened_by_hand_with_a_user_scope_set_by_hand() {
        let m = Matrix::default();
        let mut i = Incident::open(
            9,
            Draft::by_hand("staff logins fail", "ana", 50_000, vec![]),
            &m,
            60_000,
            "ana",
        )
        .unwrap();
        assert_eq!(i.time_to_detect_ms(), 10_000);
        assert!(i.alerts.is_empty());
        i.scope.function = FunctionScope::Core;
        i.set_user_scope(UserScope::Internal, "ana", &m, 61_000);
        assert_eq!(i.severity, Sev::Sev3);
        assert_eq!(
            i.scope.user_source,
            UserScopeSource::Manual {
                by: "ana".to_string()
            }
        );
        let s = i.summary();
        assert_eq!(
            (s.id, s.severity, s.status, s.alerts),
            (9, Sev::Sev3, Status::Detect, 0)
        );
        assert_eq!(s.closed_unix_ms, None);
    }

    #[test]
    fn notes_and_action_items() {
        let mut i = opened(100_000);
        assert_eq!(
            i.add_note("   ".to_string(), "ana", 1),
            Err(IncidentError::Empty { field: "note" })
        );
        i.add_note("rolled back v42".to_string(), "ana", 120_000)
            .unwrap();
        assert_eq!(i.notes.len(), 1);
        assert!(i
            .timeline
            .entries()
            .iter()
            .any(|e| e.kind == EntryKind::Note));
        let id = i
            .add_action_item(
                "Alert on checkout p99".to_string(),
                ActionKind::Monitoring,
                Some("bo".to_string()),
            )
            .unwrap();
        assert_eq!(id, 3);
        i.assign(1, Some("ana".to_string())).unwrap();
        i.set_done(1, true).unwrap();
        assert_eq!(i.assign(9, None), Err(IncidentError::UnknownActionItem(9)));
        assert_eq!(
            i.remove_action_item(2).unwrap().kind,
            ActionKind::Monitoring
        );
        // Ids are not reused after a removal.
        let next = i
            .add_action_item("x".to_string(), ActionKind::Other, Some(" ".to_string()))
            .unwrap();
        assert_eq!(next, 4);
        assert_eq!(i.action_items.last().unwrap().owner, None);
    }

    #[test]
    fn impact_runs_to_recovery_or_now() {
        let mut i = opened(100_000);
        assert_eq!(i.impact_ms(160_000), 90_000);
        i.move_to(Status::Analyse, 400_000, "ana").unwrap();
        assert_eq!(i.impact_ms(900_000), 330_000);
        assert_eq!(i.time_to_recover_ms(), Some(330_000));
    }

    #[test]
    fn serde_round_trip() {
        let mut i = opened(100_000);
        i.add_note("hi".to_string(), "ana", 100_500).unwrap();
        let json = serde_json::to_string(&i).unwrap();
        let back: Incident = serde_json::from_str(&json).unwrap();
        assert_eq!(back, i);
    }
}

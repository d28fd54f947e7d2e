//! Opening and joining: given the open incidents, one alert and the time, whether the alert
//! opens a new incident, joins an open one, or is ignored. Pure: the caller stores the result.
//!
//! It exists so that a storm is one incident, not fifty: an alert related to an open incident
//! joins it instead of opening another, and only the alerts the config names open one at all.
//!
//! The decision, in order:
//! 1. The alert already belongs to an open incident → `Ignore(AlreadyIn(id))`, the newest
//!    such incident (the caller still records its new state, fired or resolved, on that
//!    incident's timeline; the binary opens a new incident for a relapse after recovery).
//! 2. It is not firing → `Ignore(NotFiring)`.
//! 3. It is related to an open incident whose last alert joined within `join_window` →
//!    `Join(id)`, whatever its severity: a warning about the same service is part of the
//!    story. Related means sharing the non-empty value of one of the `join_on` labels
//!    (default `service`), or having the same non-empty values for every `group_by` label
//!    (default none). Several candidates: the one with the latest alert, then the highest id.
//! 4. It matches `open_on` (its severity at least `severity`, default critical, and every
//!    `match` matcher holds) → `Open(draft)`, with the incident's receivers, the alert's
//!    start as the impact's start, and a title from its `summary` annotation or its rule and
//!    labels.
//! 5. Otherwise → `Ignore(NotMatching)`.
//!
//! Opening by hand does not come here: the API builds a [`Draft`] with
//! [`crate::OpenedBy::Hand`] directly.

use ballast_core::{AlertRecord, Severity};
use ballast_monitor::noise::matcher::matches_all;
use ballast_monitor::noise::CompiledMatcher;

use crate::incident::{AlertRef, Draft, Incident, OpenedBy, MAX_TITLE_BYTES};
use crate::timeline::TimelineEntry;

/// What to do with one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Open a new incident from this draft.
    Open(Draft),
    /// Add the alert to this open incident.
    Join(u64),
    Ignore(IgnoreReason),
}

/// Why an alert neither opens nor joins an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// It already belongs to this open incident.
    AlreadyIn(u64),
    /// It is not firing (and belongs to no open incident).
    NotFiring,
    /// It matches no open incident and not `open_on`.
    NotMatching,
}

/// The opening and joining rules, compiled from `[incident]` (see [`crate::config`]).
#[derive(Debug, Clone)]
pub struct Correlator {
    pub(crate) min_severity: Severity,
    pub(crate) matchers: Vec<CompiledMatcher>,
    pub(crate) join_window_ms: u64,
    pub(crate) join_on: Vec<String>,
    pub(crate) group_by: Vec<String>,
    pub(crate) receivers: Vec<String>,
}

impl Correlator {
    /// Decides what `alert` does, given the incidents (closed ones are skipped) and `now`.
    pub fn decide(
        &self,
        incidents: &[Incident],
        alert: &AlertRecord,
        now_unix_ms: u64,
    ) -> Decision {
        let open = || incidents.iter().filter(|i| i.status().is_open());
        // The newest incident holding the alert (a relapse is a newer incident than the one
        // it relapsed from).
        if let Some(i) = open()
            .filter(|i| i.has_alert(&alert.id))
            .max_by_key(|i| (i.opened_unix_ms(), i.id))
        {
            return Decision::Ignore(IgnoreReason::AlreadyIn(i.id));
        }
        let Some(severity) = alert.state.severity() else {
            return Decision::Ignore(IgnoreReason::NotFiring);
        };
        let related = open()
            .filter(|i| now_unix_ms.saturating_sub(i.last_alert_unix_ms()) <= self.join_window_ms)
            .filter(|i| i.alerts.iter().any(|a| self.related(a, alert)))
            .max_by_key(|i| (i.last_alert_unix_ms(), i.id));
        if let Some(i) = related {
            return Decision::Join(i.id);
        }
        if severity >= self.min_severity && matches_all(&self.matchers, &alert.labels) {
            return Decision::Open(Draft {
                title: title_of(alert),
                started_unix_ms: alert.since_unix_ms.min(now_unix_ms),
                opened_by: OpenedBy::Alert {
                    alert_id: alert.id.clone(),
                },
                alerts: vec![AlertRef::of(alert, now_unix_ms)],
                receivers: self.receivers.clone(),
                scope: None,
                timeline: TimelineEntry::from_alert(alert).into_iter().collect(),
            });
        }
        Decision::Ignore(IgnoreReason::NotMatching)
    }

    /// The receivers a new incident is announced to.
    pub fn receivers(&self) -> &[String] {
        &self.receivers
    }

    fn related(&self, member: &AlertRef, alert: &AlertRecord) -> bool {
        let same = |name: &String| {
            let v = alert.labels.get(name).unwrap_or("");
            !v.is_empty() && member.labels.get(name) == Some(v)
        };
        self.join_on.iter().any(same)
            || (!self.group_by.is_empty() && self.group_by.iter().all(same))
    }
}

/// The `summary` annotation, else `rule on name=value, ...`; cut to the title's limit on a
/// character boundary.
fn title_of(alert: &AlertRecord) -> String {
    let text = match alert.annotations.get("summary").map(|s| s.trim()) {
        Some(s) if !s.is_empty() => s.lines().next().unwrap_or(s).to_string(),
        _ => {
            let labels: Vec<String> = alert
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname" && *k != "severity")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if labels.is_empty() {
                alert.rule.clone()
            } else {
                format!("{} on {}", alert.rule, labels.join(", "))
            }
        }
    };
    let text = if text.trim().is_empty() {
        format!("alert {}", alert.id)
    } else {
        text
    };
    cut(text, MAX_TITLE_BYTES)
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::tests::opened;
    use crate::lifecycle::Status;
    use crate::timeline::tests::alert;
    use ballast_core::{AlertState, MatchOp, Matcher};

    const CRIT: AlertState = AlertState::Firing {
        severity: Severity::Critical,
    };
    const WARN: AlertState = AlertState::Firing {
        severity: Severity::Warning,
    };

    fn correlator() -> Correlator {
        Correlator {
            min_severity: Severity::Critical,
            matchers: vec![],
            join_window_ms: 30 * 60_000,
            join_on: vec!["service".to_string()],
            group_by: vec![],
            receivers: vec!["web-oncall".to_string()],
        }
    }

    #[test]
    fn a_critical_alert_opens_with_a_draft() {
        let a = alert("error-rate", "shop", CRIT, 1_000);
        let Decision::Open(d) = correlator().decide(&[], &a, 5_000) else {
            panic!("should open");
        };
        assert_eq!(d.title, "error-rate on service=shop");
        assert_eq!(d.started_unix_ms, 1_000);
        assert_eq!(d.receivers, ["web-oncall"]);
        assert_eq!(d.alerts[0].id, a.id);
        assert_eq!(
            d.timeline.len(),
            1,
            "the alert's firing starts the timeline"
        );
    }

    #[test]
    fn warnings_and_unmatched_alerts_do_not_open() {
        let c = correlator();
        let w = alert("latency", "shop", WARN, 1_000);
        assert_eq!(
            c.decide(&[], &w, 2_000),
            Decision::Ignore(IgnoreReason::NotMatching)
        );
        let r = alert("latency", "shop", AlertState::Resolved, 1_000);
        assert_eq!(
            c.decide(&[], &r, 2_000),
            Decision::Ignore(IgnoreReason::NotFiring)
        );
        let mut c = correlator();
        c.matchers = vec![CompiledMatcher::new(&Matcher {
            name: "service".to_string(),
            op: MatchOp::Equal,
            value: "cart".to_string(),
        })
        .unwrap()];
        let a = alert("error-rate", "shop", CRIT, 1_000);
        assert_eq!(
            c.decide(&[], &a, 2_000),
            Decision::Ignore(IgnoreReason::NotMatching)
        );
    }

    #[test]
    fn related_alerts_join_within_the_window() {
        let c = correlator();
        let inc = opened(100_000); // holds error-rate on shop, joined at 100 s
        let w = alert("latency", "shop", WARN, 110_000);
        assert_eq!(
            c.decide(std::slice::from_ref(&inc), &w, 110_000),
            Decision::Join(7)
        );
        // Another service opens its own (when critical).
        let other = alert("error-rate", "cart", CRIT, 110_000);
        assert!(matches!(
            c.decide(std::slice::from_ref(&inc), &other, 110_000),
            Decision::Open(_)
        ));
        // Past the window: a critical one opens a new incident, a warning is ignored.
        let late = 100_000 + 30 * 60_000 + 1;
        let crit = alert("latency", "shop", CRIT, late);
        assert!(matches!(
            c.decide(std::slice::from_ref(&inc), &crit, late),
            Decision::Open(_)
        ));
        let warn = alert("latency", "shop", WARN, late);
        assert_eq!(
            c.decide(std::slice::from_ref(&inc), &warn, late),
            Decision::Ignore(IgnoreReason::NotMatching)
        );
    }

    #[test]
    fn members_are_already_in_and_closed_incidents_are_skipped() {
        let c = correlator();
        let mut inc = opened(100_000);
        let member = alert("error-rate", "shop", AlertState::Resolved, 90_000);
        assert_eq!(
            c.decide(std::slice::from_ref(&inc), &member, 120_000),
            Decision::Ignore(IgnoreReason::AlreadyIn(7))
        );
        inc.move_to(Status::Closed, 130_000, "ana").unwrap();
        let again = alert("error-rate", "shop", CRIT, 140_000);
        assert!(matches!(
            c.decide(&[inc], &again, 140_000),
            Decision::Open(_)
        ));
    }

    #[test]
    fn group_labels_join_and_the_latest_incident_wins() {
        let mut c = correlator();
        c.join_on = vec![];
        c.group_by = vec!["alertname".to_string(), "service".to_string()];
        let a = opened(100_000);
        let mut b = opened(200_000);
        b.id = 8;
        let mut same_group = alert("error-rate", "shop", WARN, 210_000);
        same_group.labels.insert("server", "10.0.0.3:8080");
        same_group.id = same_group.labels.fingerprint();
        assert_eq!(
            c.decide(&[a.clone(), b], &same_group, 210_000),
            Decision::Join(8)
        );
        let other_rule = alert("latency", "shop", CRIT, 210_000);
        assert!(matches!(
            c.decide(&[a], &other_rule, 210_000),
            Decision::Open(_)
        ));
    }

    #[test]
    fn titles_prefer_the_summary_and_are_cut_on_a_char_boundary() {
        let mut a = alert("error-rate", "shop", CRIT, 1_000);
        a.annotations
            .insert("summary".to_string(), "Checkout fails\nmore".to_string());
        assert_eq!(title_of(&a), "Checkout fails");
        a.annotations
            .insert("summary".to_string(), "é".repeat(MAX_TITLE_BYTES));
        let t = title_of(&a);
        assert!(t.len() <= MAX_TITLE_BYTES && t.chars().all(|c| c == 'é'));
    }
}

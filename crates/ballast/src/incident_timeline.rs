//! An incident's timeline assembled from what the gateway already records: the store's
//! notifications (those about the incident's alerts, and its own announcements), remediation
//! runs on its alerts, and the change timeline (config versions, change markers, drains and
//! other commands) between its start and its end; plus "what changed" in the two hours before
//! it started, and the request counts that measure its impact.
//!
//! Why at read time rather than pushed as things happen: each of those records is written by
//! its own engine, on its own schedule, and survives a restart in the store; reading them for
//! the incident's window means nothing has to be wired twice, and an entry is never missing
//! because a channel was full. What is read is also merged into the incident's own timeline
//! (entries are keyed, so merging again adds nothing) and saved with it, so the record stays
//! whole after retention has pruned the sources.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::incident::TimelineEntry;
use ballast_core::{ChangeEntry, GatewayCounters, RemediationRun};
use ballast_incident::timeline::WHAT_CHANGED_MS;
use ballast_incident::Incident;
use ballast_notify::Message;

use crate::history::History;

/// The most rows of each source read for one incident.
const READ_LIMIT: u32 = 5_000;

/// What the sources add to an incident at `now`.
pub struct Assembled {
    pub entries: Vec<TimelineEntry>,
    /// Changes in the two hours before the start, newest first.
    pub what_changed: Vec<ChangeEntry>,
}

/// The window an incident's sources are read over: from its start to its close (or now).
fn window(incident: &Incident, now: u64) -> (u64, u64) {
    (
        incident.started_unix_ms,
        incident.closed_unix_ms().unwrap_or(now),
    )
}

/// Reads the sources for `incident`. A source the store cannot give is skipped (the rest
/// still comes); `runs` are the remediation runs memory holds (the store's are read too).
pub async fn assemble(
    history: &History,
    incident: &Incident,
    runs: &[RemediationRun],
    now: u64,
) -> Assembled {
    let (from, to) = window(incident, now);
    let alert_ids: BTreeSet<&str> = incident.alerts.iter().map(|a| a.id.as_str()).collect();
    let mut entries = Vec::new();
    let ours = |run: &RemediationRun| {
        alert_ids.contains(run.alert_id.as_str())
            && run.ended_unix_ms >= from
            && run.started_unix_ms <= to
    };
    let mut seen = BTreeSet::new();
    for run in runs.iter().filter(|r| ours(r)) {
        if seen.insert((run.rule.clone(), run.target.clone(), run.started_unix_ms)) {
            entries.push(TimelineEntry::from_remediation(run));
        }
    }
    let mut what_changed = Vec::new();
    if let Ok(store) = history.store() {
        let since_changes = from.saturating_sub(WHAT_CHANGED_MS);
        let (stored_runs, notes, changes) = tokio::join!(
            store.remediations(from, READ_LIMIT),
            store.notifications_since(from, READ_LIMIT),
            crate::changes::recent(history, since_changes, READ_LIMIT),
        );
        match stored_runs {
            Ok(rows) => {
                for r in rows.iter().map(|s| &s.run).filter(|r| ours(r)) {
                    if seen.insert((r.rule.clone(), r.target.clone(), r.started_unix_ms)) {
                        entries.push(TimelineEntry::from_remediation(r));
                    }
                }
            }
            Err(e) => {
                let _ = history.failed(e);
            }
        }
        match notes {
            Ok(rows) => {
                let notice = format!("notice:incident:{}:", incident.id);
                for n in rows.iter().filter(|n| n.new.created_unix_ms <= to) {
                    let about_ours = n.new.group_key.starts_with(&notice)
                        || serde_json::from_str::<Message>(&n.new.payload_json).is_ok_and(|m| {
                            m.alerts.iter().any(|a| alert_ids.contains(a.id.as_str()))
                        });
                    if about_ours {
                        entries.push(TimelineEntry::from_notification(&n.log()));
                    }
                }
            }
            Err(e) => {
                let _ = history.failed(e);
            }
        }
        if let Ok(changes) = changes {
            for c in changes
                .iter()
                .filter(|c| (from..=to).contains(&c.at_unix_ms()))
            {
                entries.push(TimelineEntry::from_change(c));
            }
            what_changed = ballast_incident::what_changed(&changes, incident.started_unix_ms);
        }
    }
    Assembled {
        entries,
        what_changed,
    }
}

/// Requests and 5xx answers per route, summed over servers.
pub fn per_route(counters: &GatewayCounters) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &counters.requests {
        let e = out.entry(r.route.clone()).or_default();
        e.0 += r.by_class.iter().sum::<u64>();
        e.1 += r.by_class[4];
    }
    out
}

/// (failed, total) on `routes` between two readings of [`per_route`].
pub fn delta(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
    routes: &BTreeSet<String>,
) -> (u64, u64) {
    routes.iter().fold((0, 0), |(f, t), route| {
        let (t1, f1) = after.get(route).copied().unwrap_or_default();
        let (t0, f0) = before.get(route).copied().unwrap_or_default();
        (f + f1.saturating_sub(f0), t + t1.saturating_sub(t0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_counts_only_the_affected_routes_since_the_first_reading() {
        let before = BTreeMap::from([
            ("shop".to_string(), (100, 1)),
            ("blog".to_string(), (50, 0)),
        ]);
        let after = BTreeMap::from([
            ("shop".to_string(), (200, 61)),
            ("blog".to_string(), (90, 40)),
        ]);
        let routes = BTreeSet::from(["shop".to_string()]);
        assert_eq!(delta(&before, &after, &routes), (60, 100));
        let none = BTreeSet::from(["gone".to_string()]);
        assert_eq!(delta(&before, &after, &none), (0, 0));
    }
}

//! The post-mortem export: one incident as a Markdown document, ready for the retrospective.
//!
//! It exists because the retrospective should start from the record, not from memory: the
//! summary and times are computed, the timeline and the changes are Ballast's own, and what
//! only people can write (root cause, follow-ups, action items with owners) has its place,
//! marked plainly when still missing. Sections, in order: Summary, Impact, Timeline, What
//! changed (the 2 h before the start), Actions taken (automatic and by hand, during the
//! incident), Root cause, Follow-ups, Action items.
//!
//! Text written by people goes into tables with `|` escaped and line breaks flattened, so a
//! note cannot break the document's structure. Times are UTC.

use std::fmt::Write;

use ballast_core::{ChangeEntry, UtcTime};

use crate::incident::{Incident, OpenedBy};
use crate::severity::UserScopeSource;
use crate::timeline::EntryKind;

/// What is known about the impact beyond the incident's own record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impact {
    /// Requests that failed on the affected routes during the incident, when counted.
    pub failed_requests: Option<u64>,
    /// All requests on those routes during the incident, when counted.
    pub total_requests: Option<u64>,
}

/// The incident as Markdown. `what_changed` is [`crate::what_changed`]'s list; `now_unix_ms`
/// ends the impact of an incident not yet recovered.
pub fn render_postmortem(
    incident: &Incident,
    impact: &Impact,
    what_changed: &[ChangeEntry],
    now_unix_ms: u64,
) -> String {
    let mut md = String::new();
    let i = incident;
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(md, "# Incident {}: {}\n", i.id, line(&i.title));

    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let severity = match &i.severity_set_by {
        Some(by) => format!("{} (set by {})", i.severity, line(by)),
        None => format!("{} (from the severity matrix)", i.severity),
    };
    let opened_by = match &i.opened_by {
        OpenedBy::Alert { alert_id } => format!("alert {}", line(alert_id)),
        OpenedBy::Hand { author } => line(author),
    };
    let rows = [
        ("Severity", severity),
        ("Status", i.status().name().to_string()),
        ("Impact started", time(i.started_unix_ms)),
        (
            "Opened",
            format!("{} by {opened_by}", time(i.opened_unix_ms())),
        ),
        ("Recovered", opt_time(i.lifecycle.recovered_unix_ms())),
        ("Closed", opt_time(i.closed_unix_ms())),
        ("Time to detect", span(i.time_to_detect_ms())),
        ("Time to acknowledge", opt_span(i.time_to_acknowledge_ms())),
        ("Time to recover", opt_span(i.time_to_recover_ms())),
        ("Receivers", list(&i.receivers)),
    ];
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {} |", cell(&v));
    }

    let _ = writeln!(md, "\n## Impact\n");
    let measured = match &i.scope.user_source {
        UserScopeSource::Measured { failed, total } => {
            format!("measured: {failed} of {total} requests failed")
        }
        UserScopeSource::Manual { by } => format!("set by {}", line(by)),
        UserScopeSource::Unmeasured => "not measured".to_string(),
    };
    let _ = writeln!(md, "- Users affected: {} ({measured})", i.scope.user.name());
    let routes: Vec<String> = i.scope.routes.iter().cloned().collect();
    let _ = writeln!(
        md,
        "- Functions affected: {} (routes: {})",
        i.scope.function.name(),
        list(&routes)
    );
    let _ = writeln!(md, "- Duration: {}", span(i.impact_ms(now_unix_ms)));
    let counts = match (
        impact.failed_requests,
        impact.total_requests,
        &i.scope.user_source,
    ) {
        (Some(f), Some(t), _) => format!("{f} of {t}"),
        (Some(f), None, _) => f.to_string(),
        (None, _, UserScopeSource::Measured { failed, total }) => format!("{failed} of {total}"),
        _ => "unknown".to_string(),
    };
    let _ = writeln!(md, "- Failed requests: {counts}");
    let alerts: Vec<String> = i.alerts.iter().map(|a| a.rule.clone()).collect();
    let _ = writeln!(md, "- Alerts: {}", list(&alerts));

    let _ = writeln!(md, "\n## Timeline\n");
    if i.timeline.is_empty() {
        let _ = writeln!(md, "_Nothing recorded._");
    } else {
        let _ = writeln!(md, "| Time (UTC) | What | Who |\n|---|---|---|");
        for e in i.timeline.entries() {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                time(e.at_unix_ms),
                cell(&e.summary),
                cell(e.author.as_deref().unwrap_or(""))
            );
        }
    }

    let _ = writeln!(md, "\n## What changed in the 2 hours before\n");
    if what_changed.is_empty() {
        let _ = writeln!(md, "_Nothing recorded._");
    }
    for c in what_changed {
        let who = match c.who() {
            "" => String::new(),
            w => format!(" ({})", line(w)),
        };
        let _ = writeln!(md, "- {} {}{who}", time(c.at_unix_ms()), line(&c.what()));
    }

    let _ = writeln!(md, "\n## Top talkers\n");
    match &i.top_talkers {
        None => {
            let _ = writeln!(md, "_Not counted._");
        }
        Some(t) => {
            let _ = writeln!(
                md,
                "Requests from {} to {}, from the gateway's own counters.\n",
                time(t.since_unix_ms),
                time(t.until_unix_ms)
            );
            let _ = writeln!(md, "| Clients | Paths | Statuses |\n|---|---|---|");
            let rows = t.clients.len().max(t.paths.len()).max(t.statuses.len());
            let at = |v: &[ballast_core::Talker], n: usize| {
                v.get(n)
                    .map(|x| format!("{} ({})", cell(&x.key), x.requests))
                    .unwrap_or_default()
            };
            for n in 0..rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    at(&t.clients, n),
                    at(&t.paths, n),
                    at(&t.statuses, n)
                );
            }
        }
    }

    let _ = writeln!(md, "\n## Actions taken\n");
    let actions: Vec<_> = i
        .timeline
        .entries()
        .iter()
        .filter(|e| e.at_unix_ms >= i.started_unix_ms)
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::Remediation | EntryKind::Drain | EntryKind::Command | EntryKind::Config
            )
        })
        .collect();
    if actions.is_empty() {
        let _ = writeln!(md, "_None recorded._");
    }
    for e in actions {
        let who = e
            .author
            .as_deref()
            .map(|a| format!(" ({})", line(a)))
            .unwrap_or_default();
        let _ = writeln!(md, "- {} {}{who}", time(e.at_unix_ms), line(&e.summary));
    }

    let _ = writeln!(md, "\n## Root cause\n");
    match &i.root_cause {
        Some(n) => {
            let _ = writeln!(
                md,
                "{}\n\n_— {}, {}_",
                n.text,
                line(&n.author),
                time(n.at_unix_ms)
            );
        }
        None => {
            let _ = writeln!(md, "_Not written yet._");
        }
    }

    let _ = writeln!(md, "\n## Follow-ups\n");
    if i.follow_ups.is_empty() {
        let _ = writeln!(md, "_None yet._");
    }
    for n in &i.follow_ups {
        let _ = writeln!(md, "- {} ({})", line(&n.text), line(&n.author));
    }

    let _ = writeln!(md, "\n## Action items\n");
    if i.action_items.is_empty() {
        let _ = writeln!(md, "_None._");
    } else {
        let _ = writeln!(md, "| # | Item | Owner | Done |\n|---|---|---|---|");
        for a in &i.action_items {
            let title = if a.suggested {
                format!("{} (suggested)", a.title)
            } else {
                a.title.clone()
            };
            let owner = a.owner.as_deref().map_or("_unassigned_".to_string(), cell);
            let done = if a.done { "yes" } else { "no" };
            let _ = writeln!(md, "| {} | {} | {owner} | {done} |", a.id, cell(&title));
        }
    }
    md
}

/// `2026-11-30 10:00:00`.
fn time(ms: u64) -> String {
    let t = UtcTime::from_unix_secs(ms / 1000);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn opt_time(ms: Option<u64>) -> String {
    ms.map_or_else(|| "not yet".to_string(), time)
}

/// `1h 2m 3s`, `45s`, `0s`.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

fn opt_span(ms: Option<u64>) -> String {
    ms.map_or_else(|| "not yet".to_string(), span)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.iter().map(|s| line(s)).collect::<Vec<_>>().join(", ")
    }
}

/// Text on one line.
fn line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text for a table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    line(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::tests::opened;
    use crate::incident::ActionKind;
    use crate::lifecycle::Status;
    use crate::severity::{measured_scope, FunctionScope, Matrix};
    use crate::timeline::tests::{config, deploy, drain};
    use crate::timeline::{what_changed, TimelineEntry};
    use ballast_core::RemediationRun;

    // 2026-11-30 10:00:00 UTC.
    const T0: u64 = 1_796_032_800_000;

    fn incident() -> crate::Incident {
        let mut i = opened(T0 + 60_000);
        let routes = [
            ("checkout".to_string(), FunctionScope::Core),
            ("faq".to_string(), FunctionScope::Auxiliary),
        ]
        .into();
        i.set_scope(
            measured_scope(300, 1000, &routes, ["checkout".to_string()].into()),
            &Matrix::default(),
            T0 + 61_000,
        );
        i.move_to(Status::Propagate, T0 + 61_000, "ballast")
            .unwrap();
        i.move_to(Status::Triage, T0 + 150_000, "ana").unwrap();
        i.timeline.extend([
            TimelineEntry::from_remediation(&RemediationRun {
                rule: "restart-app".to_string(),
                target: "app@8080".to_string(),
                alert_id: "a1".to_string(),
                dry_run: false,
                started_unix_ms: T0 + 200_000,
                ended_unix_ms: T0 + 201_000,
                result: ballast_core::RemediationResult::Ok,
                steps: vec![ballast_core::RemediationStep::new("restart", true, "")],
            }),
            TimelineEntry::from_change(&drain(5, T0 + 300_000)),
            TimelineEntry::from_change(&deploy(1, T0 - 3_600_000)),
        ]);
        i.add_note("rolled back | v42\nto v41".to_string(), "ana", T0 + 400_000)
            .unwrap();
        i.move_to(Status::Recover, T0 + 410_000, "ana").unwrap();
        i.move_to(Status::Analyse, T0 + 600_000, "ana").unwrap();
        i.set_root_cause(
            "v42 sent every checkout to a missing table.".to_string(),
            "bo",
            T0 + 3_600_000,
        )
        .unwrap();
        i.add_follow_up(
            "Run migrations before deploys".to_string(),
            "bo",
            T0 + 3_600_000,
        )
        .unwrap();
        i.assign(1, Some("bo".to_string())).unwrap();
        i.add_action_item(
            "Gate deploys on the migration check".to_string(),
            ActionKind::Other,
            Some("ana".to_string()),
        )
        .unwrap();
        i
    }

    #[test]
    fn headings_in_order() {
        let i = incident();
        let changes = what_changed(&[deploy(1, T0 - 3_600_000), config(2, T0 - 600_000)], T0);
        let md = render_postmortem(&i, &Impact::default(), &changes, T0 + 7_200_000);
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            headings,
            [
                "# Incident 7: shop errors",
                "## Summary",
                "## Impact",
                "## Timeline",
                "## What changed in the 2 hours before",
                "## Top talkers",
                "## Actions taken",
                "## Root cause",
                "## Follow-ups",
                "## Action items",
            ]
        );
    }

    #[test]
    fn top_talkers_are_a_table_of_the_three_lists() {
        let mut i = incident();
        let md = render_postmortem(&i, &Impact::default(), &[], T0 + 7_200_000);
        assert!(md.contains("## Top talkers\n\n_Not counted._"), "{md}");
        let t = |key: &str, requests| ballast_core::Talker {
            key: key.to_string(),
            requests,
        };
        i.top_talkers = Some(ballast_core::TopTalkers {
            since_unix_ms: T0,
            until_unix_ms: T0 + 300_000,
            clients: vec![t("127.0.0.2", 500), t("127.0.0.3", 20)],
            paths: vec![t("/flood|x", 500)],
            statuses: vec![t("404", 500), t("200", 20)],
            dropped: 0,
        });
        let md = render_postmortem(&i, &Impact::default(), &[], T0 + 7_200_000);
        assert!(
            md.contains("| 127.0.0.2 (500) | /flood\\|x (500) | 404 (500) |\n| 127.0.0.3 (20) |  | 200 (20) |"),
            "{md}"
        );
    }

    #[test]
    fn key_lines() {
        let i = incident();
        let changes = what_changed(&[deploy(1, T0 - 3_600_000), config(2, T0 - 600_000)], T0);
        let md = render_postmortem(&i, &Impact::default(), &changes, T0 + 7_200_000);
        for want in [
            "| Severity | SEV2 (from the severity matrix) |",
            "| Status | analyse |",
            "| Impact started | 2026-11-30 10:00:30 |",
            "| Time to detect | 30s |",
            "| Time to acknowledge | 1m 30s |",
            "| Time to recover | 9m 30s |",
            "| Receivers | web-oncall |",
            "- Users affected: some (measured: 300 of 1000 requests failed)",
            "- Functions affected: core (routes: checkout)",
            "- Duration: 9m 30s",
            "- Failed requests: 300 of 1000",
            "| 2026-11-30 10:06:40 | rolled back \\| v42 | ana |",
            "| 2026-11-30 10:00:30 | alert error-rate fired (critical) on service=shop |  |",
            "- 2026-11-30 09:50:00 config version 2 applied (api), sha256 abcdef012345 (gw1:9000)",
            "- 2026-11-30 09:00:00 deploy shop v42: new checkout flow (ci)",
            "- 2026-11-30 10:03:21 remediation restart-app on app@8080: ok [restart] (remediation)",
            "- 2026-11-30 10:05:00 drained app 10.0.0.2:8080 (cli) (gw1:9000)",
            "v42 sent every checkout to a missing table.",
            "- Run migrations before deploys (bo)",
            "| 1 | Add a test case that reproduces this failure (suggested) | bo | no |",
            "| 2 | Add a monitoring item that would have caught this sooner (suggested) | _unassigned_ | no |",
            "| 3 | Gate deploys on the migration check | ana | no |",
        ] {
            assert!(md.lines().any(|l| l == want), "missing line {want:?} in\n{md}");
        }
        // The deploy before the start is a change, not an action taken.
        let actions = md.split("## Actions taken").nth(1).unwrap_or("");
        let actions = actions.split("## Root cause").next().unwrap_or("");
        assert!(!actions.contains("deploy shop"), "{actions}");
    }

    #[test]
    fn a_fresh_incident_says_what_is_missing() {
        let i = opened(T0);
        let md = render_postmortem(
            &i,
            &Impact {
                failed_requests: Some(12),
                total_requests: None,
            },
            &[],
            T0 + 60_000,
        );
        for want in [
            "| Recovered | not yet |",
            "| Time to recover | not yet |",
            "- Users affected: none (not measured)",
            "- Failed requests: 12",
            "- Duration: 1m 30s",
            "_Not written yet._",
            "_None yet._",
            "_None recorded._",
        ] {
            assert!(
                md.lines().any(|l| l == want),
                "missing line {want:?} in\n{md}"
            );
        }
    }

    #[test]
    fn spans_and_cells() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(999), "0s");
        assert_eq!(span(3_723_000), "1h 2m 3s");
        assert_eq!(span(3_600_000), "1h");
        assert_eq!(cell("a|b\r\nc"), "a\\|b c");
    }
}

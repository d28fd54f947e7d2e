//! The report as Markdown, for the weekly review a person reads.
//!
//! A title with the window as UTC times, a summary table (one row per rule: minutes of data,
//! p50/p95/p99/max, warning and critical firings, time firing as "2h 5m", the noise share as a
//! percentage and the flags), then a section per rule with its current thresholds, the proposal
//! and its reasoning. Numbers go through [`crate::stats::fmt_num`] (3 significant digits);
//! `|` in table cells is escaped and line breaks in names become spaces, so a rule's name can
//! not break the table.

use std::fmt::Write;

use ballast_core::UtcTime;

use crate::input::Threshold;
use crate::report::{Report, RuleReport};
use crate::stats::{fmt_count, fmt_num};

/// What a missing number prints as.
const NONE: &str = "–";

/// The report as a Markdown document.
pub fn markdown(report: &Report) -> String {
    let w = report.window;
    let mut out = String::new();
    // `write!` into a String cannot fail.
    let _ = writeln!(
        out,
        "# Threshold review: {} to {}\n",
        UtcTime::from_unix_secs(w.since_unix_ms / 1000),
        UtcTime::from_unix_secs(w.until_unix_ms / 1000)
    );
    if report.rules.is_empty() {
        out.push_str("No alert rules to review.\n");
        return out;
    }
    let flagged = report.rules.iter().filter(|r| !r.flags.is_empty()).count();
    let _ = writeln!(
        out,
        "{} rules reviewed, {} flagged.\n",
        fmt_count(report.rules.len() as u64),
        fmt_count(flagged as u64)
    );
    out.push_str(
        "| Rule | Minutes | p50 | p95 | p99 | Max | Warning | Critical | Time firing | Noise | Flags |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in &report.rules {
        summary_row(&mut out, r);
    }
    for r in &report.rules {
        section(&mut out, r);
    }
    out
}

fn summary_row(out: &mut String, r: &RuleReport) {
    let pct = |f: fn(&crate::stats::Percentiles) -> f64| {
        r.percentiles
            .as_ref()
            .map_or(NONE.to_string(), |p| fmt_num(f(p)))
    };
    let noise = r
        .noise_share
        .map_or(NONE.to_string(), |s| format!("{}%", fmt_num(s * 100.0)));
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(&r.rule),
        fmt_count(r.minutes),
        pct(|p| p.p50),
        pct(|p| p.p95),
        pct(|p| p.p99),
        pct(|p| p.max),
        fmt_count(r.warning_firings),
        fmt_count(r.critical_firings),
        human_ms(r.firing_ms),
        noise,
        flag_list(r),
    );
}

fn section(out: &mut String, r: &RuleReport) {
    let _ = writeln!(out, "\n## {}\n", one_line(&r.rule));
    let _ = writeln!(
        out,
        "Monitor {}, value {}. Now: warning {}, critical {}.",
        one_line(&r.monitor),
        one_line(&r.value),
        threshold(r.warn),
        threshold(r.crit)
    );
    let _ = writeln!(
        out,
        "Fired {} times as warning and {} as critical, {} acted on, {} with nobody acting; {} \
         firing in all.",
        fmt_count(r.warning_firings),
        fmt_count(r.critical_firings),
        fmt_count(r.acted),
        fmt_count(r.noise),
        human_ms(r.firing_ms)
    );
    if !r.flags.is_empty() {
        let _ = writeln!(out, "Flags: {}.", flag_list(r));
    }
    let p = &r.proposal;
    out.push('\n');
    if p.warn.is_none() && p.crit.is_none() {
        out.push_str("No proposal.\n");
    } else {
        let num = |v: Option<f64>| v.map_or(NONE.to_string(), fmt_num);
        let _ = writeln!(
            out,
            "Proposed: warning {}, critical {}.",
            num(p.warn),
            num(p.crit)
        );
    }
    if !p.reasoning.is_empty() {
        out.push('\n');
        for line in &p.reasoning {
            let _ = writeln!(out, "- {}", one_line(line));
        }
    }
}

fn threshold(t: Option<Threshold>) -> String {
    t.map_or("none".to_string(), |t| {
        format!("{} {}", t.direction.name(), fmt_num(t.value))
    })
}

fn flag_list(r: &RuleReport) -> String {
    r.flags
        .iter()
        .map(|f| f.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text made safe for a table cell: `|` escaped, line breaks as spaces.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A duration for people: "2h 5m", "1d 3h", "45m"; "<1m" for a few seconds, "0m" for none.
pub fn human_ms(ms: u64) -> String {
    let minutes = ms / 60_000;
    if minutes == 0 {
        return if ms == 0 { "0m" } else { "<1m" }.to_string();
    }
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m")]
        .into_iter()
        .filter(|&(n, _)| n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Direction, Window};
    use crate::propose::Proposal;
    use crate::report::Report;
    use crate::stats::Percentiles;
    use crate::Flag;

    fn rule_report(name: &str) -> RuleReport {
        RuleReport {
            rule: name.into(),
            monitor: "api".into(),
            value: "latency_p99_ms".into(),
            warn: Some(Threshold {
                direction: Direction::Above,
                value: 80.0,
            }),
            crit: None,
            minutes: 43_200,
            percentiles: Some(Percentiles {
                p1: 1.0,
                p50: 50.0,
                p95: 95.0,
                p99: 99.0,
                min: 1.0,
                max: 1234.5,
            }),
            warning_firings: 3,
            critical_firings: 1,
            firing_ms: 7_500_000,
            acted: 1,
            noise: 2,
            noise_share: Some(2.0 / 3.0),
            proposal: Proposal {
                warn: Some(109.0),
                crit: Some(1300.0),
                reasoning: vec!["warning 109: why".into(), "critical 1,300: why".into()],
            },
            flags: vec![Flag::AlwaysFiring, Flag::Noisy],
        }
    }

    fn report(rules: Vec<RuleReport>) -> Report {
        Report {
            // 2026-11-24T00:00:00Z to 2026-12-01T00:00:00Z.
            window: Window {
                since_unix_ms: 1_795_478_400_000,
                until_unix_ms: 1_796_083_200_000,
            },
            rules,
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_ms(0), "0m");
        assert_eq!(human_ms(30_000), "<1m");
        assert_eq!(human_ms(60_000), "1m");
        assert_eq!(human_ms(3_600_000), "1h");
        // 2h 5m = 125 min = 7,500,000 ms.
        assert_eq!(human_ms(7_500_000), "2h 5m");
        // 1 day 1 hour = 25 h = 90,000,000 ms.
        assert_eq!(human_ms(90_000_000), "1d 1h");
        assert_eq!(human_ms(90_060_000), "1d 1h 1m");
    }

    #[test]
    fn title_summary_row_and_section() {
        let md = markdown(&report(vec![rule_report("p99-latency")]));
        assert!(
            md.starts_with(
                "# Threshold review: 2026-11-24T00:00:00Z to 2026-12-01T00:00:00Z\n\n1 rules reviewed, 1 flagged.\n"
            ),
            "{md}"
        );
        // 2/3 → 66.666..% → 66.7%; max 1234.5 → 1,230.
        assert!(
            md.contains(
                "| p99-latency | 43,200 | 50 | 95 | 99 | 1,230 | 3 | 1 | 2h 5m | 66.7% | always firing, noisy |\n"
            ),
            "{md}"
        );
        assert!(md.contains("\n## p99-latency\n"), "{md}");
        assert!(md.contains("Now: warning above 80, critical none."), "{md}");
        assert!(
            md.contains("Proposed: warning 109, critical 1,300.\n"),
            "{md}"
        );
        assert!(
            md.contains("\n- warning 109: why\n- critical 1,300: why\n"),
            "{md}"
        );
    }

    #[test]
    fn pipes_are_escaped_and_missing_numbers_shown_as_dashes() {
        let mut r = rule_report("a|b\nc");
        r.percentiles = None;
        r.noise_share = None;
        r.flags = vec![];
        r.proposal = Proposal {
            warn: None,
            crit: None,
            reasoning: vec!["no data in the window: nothing to propose".into()],
        };
        let md = markdown(&report(vec![r]));
        assert!(
            md.contains("| a\\|b c | 43,200 | – | – | – | – | 3 | 1 | 2h 5m | – |  |\n"),
            "{md}"
        );
        assert!(md.contains("\n## a|b c\n"), "{md}");
        assert!(
            md.contains("No proposal.\n\n- no data in the window"),
            "{md}"
        );
        assert!(!md.contains("Flags:"), "{md}");
    }

    #[test]
    fn an_empty_review_says_so() {
        let md = markdown(&report(vec![]));
        assert!(md.ends_with("No alert rules to review.\n"), "{md}");
    }
}

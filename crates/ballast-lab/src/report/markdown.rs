//! The report as Markdown: one section per scenario, the summary table, the README of a
//! results directory and the section kept in `docs/lab.md`.
//!
//! Markdown is what a reader sees first (on GitHub, in the docs), so every section states what
//! was offered, what each target did, and how Ballast compares, with the raw figures next to
//! the ratios so that a ratio can always be checked by hand.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::figures::{self as fig, Figure, MISSING, PEERS};
use crate::result::{LabReport, LoadStats, Run, ScenarioResult, Target};

/// Appends one formatted line to a `String` (writing to a `String` cannot fail).
macro_rules! line {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// One scenario as a Markdown section (title at heading level 2), with the plot embedded
/// from `svg_href` when given.
pub fn scenario_markdown(s: &ScenarioResult, svg_href: Option<&str>) -> String {
    scenario_section(s, svg_href, 2)
}

/// One scenario with its title at heading `level` (1..=4; subsections one level below).
pub(crate) fn scenario_section(s: &ScenarioResult, svg_href: Option<&str>, level: usize) -> String {
    let level = level.clamp(1, 4);
    let h = "#".repeat(level);
    let sub = "#".repeat(level + 1);
    let mut out = String::new();

    line!(out, "{h} {}", fig::md_text(fig::scenario_title(s)));
    line!(out);
    let mut intro = Vec::new();
    let name = s.name.trim();
    if !name.is_empty() {
        // A code span shows its text literally: no entities, only no backquote or newline.
        let code = name.replace('`', "'").replace(['\r', '\n'], " ");
        intro.push(format!("Scenario `{code}`."));
    }
    if !s.measures.trim().is_empty() {
        intro.push(fig::md_text(s.measures.trim()));
    }
    if !intro.is_empty() {
        line!(out, "{}", intro.join(" "));
        line!(out);
    }
    let load = if s.load.trim().is_empty() {
        MISSING.to_string()
    } else {
        fig::md_text(s.load.trim())
    };
    line!(
        out,
        "Offered load: {load}. Duration: {}.",
        fig::seconds(s.duration_s)
    );
    line!(out);

    if s.runs.is_empty() {
        line!(out, "No target was run.");
        line!(out);
    } else {
        runs_table(&mut out, s);
        ratio_table(&mut out, s, &sub);
        group_tables(&mut out, s, &sub);
        faults(&mut out, s, &sub);
        notes(&mut out, s, &sub);
    }

    if let Some(href) = svg_href {
        line!(
            out,
            "![{}: errors per second and p99 latency per second, per target]({})",
            fig::md_text(fig::scenario_title(s))
                .replace('[', "(")
                .replace(']', ")"),
            fig::md_href(href)
        );
        line!(out);
    }
    out
}

/// One row per run: throughput, success, errors, latency, backend requests, metrics.
fn runs_table(out: &mut String, s: &ScenarioResult) {
    let mut header = String::from(
        "| Target | Version | ok req/s | success | errors | p50 ms | p99 ms | p99.9 ms | backend requests |",
    );
    let mut align = String::from("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for spec in &s.metrics {
        let _ = write!(header, " {} |", fig::md_cell(&spec.label));
        align.push_str("---:|");
    }
    line!(out, "{header}");
    line!(out, "{align}");
    for run in &s.runs {
        let l = &run.load;
        let mut row = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fig::target_label(run.target),
            version_cell(run),
            fig::rate(l.ok_per_s),
            fig::percent(l.success_ratio()),
            fig::errors(&l.errors),
            fig::latency_ms(l.latency.p50_us),
            fig::latency_ms(l.latency.p99_us),
            fig::latency_ms(l.latency.p999_us),
            run.backend_requests,
        );
        for spec in &s.metrics {
            let cell = Figure::Metric(spec).show(s, Some(run));
            let _ = write!(row, " {cell} |");
        }
        line!(out, "{row}");
    }
    line!(out);
}

fn version_cell(run: &Run) -> String {
    if run.version.trim().is_empty() {
        MISSING.to_string()
    } else {
        fig::md_cell(run.version.trim())
    }
}

/// Ballast's figures divided by each peer's.
fn ratio_table(out: &mut String, s: &ScenarioResult, sub: &str) {
    line!(out, "{sub} Ballast ÷ peer");
    line!(out);
    if s.run(Target::Ballast).is_none() {
        line!(
            out,
            "Ballast was not run in this scenario, so there is no ratio."
        );
        line!(out);
        return;
    }
    line!(
        out,
        "Ballast's value divided by the peer's; within ±2% reads \"equal\"."
    );
    line!(out);
    let mut header = String::from("| Figure |");
    let mut align = String::from("|---|");
    for peer in PEERS {
        let _ = write!(header, " ÷ {} |", peer.label());
        align.push_str("---:|");
    }
    line!(out, "{header}");
    line!(out, "{align}");
    let figures = [Figure::OkRate, Figure::P99]
        .into_iter()
        .chain(s.metrics.iter().map(Figure::Metric));
    for figure in figures {
        let mut row = format!("| {} |", fig::md_cell(&figure.label_with_direction()));
        for peer in PEERS {
            let _ = write!(row, " {} |", figure.ratio_cell(s, peer));
        }
        line!(out, "{row}");
    }
    line!(out);
}

/// One table per named client population, one row per target that ran it.
fn group_tables(out: &mut String, s: &ScenarioResult, sub: &str) {
    let names: BTreeSet<&str> = s
        .runs
        .iter()
        .flat_map(|r| r.groups.keys().map(String::as_str))
        .collect();
    if names.is_empty() {
        return;
    }
    line!(out, "{sub} Client groups");
    line!(out);
    for name in names {
        line!(out, "{sub}# Group: {}", fig::md_text(name));
        line!(out);
        line!(out, "| Target | success | ok req/s | p99 ms | errors |");
        line!(out, "|---|---:|---:|---:|---:|");
        for run in &s.runs {
            if let Some(g) = run.groups.get(name) {
                line!(out, "{}", group_row(run, g));
            }
        }
        line!(out);
    }
}

fn group_row(run: &Run, g: &LoadStats) -> String {
    format!(
        "| {} | {} | {} | {} | {} |",
        fig::target_label(run.target),
        fig::percent(g.success_ratio()),
        fig::rate(g.ok_per_s),
        fig::latency_ms(g.latency.p99_us),
        fig::errors(&g.errors),
    )
}

/// What was injected into each target's run, and whether it was seen to take effect.
fn faults(out: &mut String, s: &ScenarioResult, sub: &str) {
    let with_fault: Vec<&Run> = s.runs.iter().filter(|r| r.fault.is_some()).collect();
    if with_fault.is_empty() {
        return;
    }
    line!(out, "{sub} Faults");
    line!(out);
    for run in with_fault {
        let Some(f) = &run.fault else { continue };
        let what = if f.what.trim().is_empty() {
            "unnamed fault".to_string()
        } else {
            fig::md_text(f.what.trim())
        };
        let at = if f.at_s.is_finite() {
            format!("{} s", fig::fixed(f.at_s, 2))
        } else {
            MISSING.to_string()
        };
        let evidence = if f.evidence.trim().is_empty() {
            "none recorded".to_string()
        } else {
            fig::md_text(f.evidence.trim())
        };
        line!(
            out,
            "- {}: {what} at t={at}; injected: {}; seen: {}; evidence: {evidence}",
            fig::target_label(run.target),
            yes_no(f.injected),
            yes_no(f.seen),
        );
    }
    line!(out);
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn notes(out: &mut String, s: &ScenarioResult, sub: &str) {
    let notes: Vec<(Option<Target>, &str)> = s
        .runs
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .map(move |n| (r.target, n.trim()))
                .filter(|(_, n)| !n.is_empty())
        })
        .collect();
    if notes.is_empty() {
        return;
    }
    line!(out, "{sub} Notes");
    line!(out);
    for (target, note) in notes {
        line!(
            out,
            "- {}: {}",
            fig::target_label(target),
            fig::md_text(note)
        );
    }
    line!(out);
}

/// One row per scenario: its headline figure (first metric, else ok req/s) for each proxy and
/// Ballast's ratio to each peer.
pub fn summary_table(report: &LabReport) -> String {
    let mut out = String::new();
    if report.scenarios.is_empty() {
        line!(out, "No scenario was run.");
        return out;
    }
    let mut header = String::from("| Scenario | Headline figure |");
    let mut align = String::from("|---|---|");
    for t in Target::PROXIES {
        let _ = write!(header, " {} |", t.label());
        align.push_str("---:|");
    }
    for peer in PEERS {
        let _ = write!(header, " Ballast ÷ {} |", peer.label());
        align.push_str("---:|");
    }
    line!(out, "{header}");
    line!(out, "{align}");
    for s in &report.scenarios {
        let figure = Figure::headline(s);
        let mut row = format!(
            "| {} | {} |",
            fig::md_cell(fig::scenario_title(s)),
            fig::md_cell(&figure.label_with_direction())
        );
        for t in Target::PROXIES {
            let _ = write!(row, " {} |", figure.show(s, s.run(t)));
        }
        for peer in PEERS {
            let _ = write!(row, " {} |", figure.ratio_cell(s, peer));
        }
        line!(out, "{row}");
    }
    out
}

/// The facts of the run, as a list.
fn run_facts(out: &mut String, report: &LabReport) {
    let or_missing = |s: &str| {
        if s.trim().is_empty() {
            MISSING.to_string()
        } else {
            fig::md_text(s.trim())
        }
    };
    line!(out, "- Started: {}", or_missing(&report.started));
    line!(out, "- Machine: {}", or_missing(&report.machine));
    line!(out, "- CPU plan: {}", or_missing(&report.cpu_plan));
    line!(
        out,
        "- Quick run: {}",
        if report.quick {
            "yes (shortened scenarios; figures are indicative)"
        } else {
            "no"
        }
    );
    line!(
        out,
        "- Ballast version: {}",
        or_missing(&report.ballast_version)
    );
    line!(out);
}

const READING: &str = "Ratios divide Ballast's value by the peer's; \"better\" and \"worse\" \
account for whether higher or lower is better, and ratios within ±2% read \"equal\". \
\"—\" marks a value that was not measured or a ratio that cannot be formed (missing or zero \
denominator).";

/// The whole report: run facts, summary, then every scenario with its plot. `stems` are the
/// scenario file stems (see `figures::file_stems`), used for links and plots.
pub(crate) fn readme(report: &LabReport, stems: &[String]) -> String {
    let mut out = String::new();
    line!(out, "# Ballast lab report");
    line!(out);
    run_facts(&mut out, report);
    line!(out, "## Summary");
    line!(out);
    line!(out, "{READING}");
    line!(out);
    out.push_str(&summary_table(report));
    line!(out);
    if !report.scenarios.is_empty() {
        line!(
            out,
            "Each scenario also has its own page and plot, and every figure is in `results.json`:"
        );
        line!(out);
        for (s, stem) in report.scenarios.iter().zip(stems) {
            line!(
                out,
                "- [{}]({}.md), [plot]({}.svg)",
                fig::md_text(fig::scenario_title(s))
                    .replace('[', "(")
                    .replace(']', ")"),
                fig::md_href(stem),
                fig::md_href(stem)
            );
        }
        line!(out);
    }
    for (s, stem) in report.scenarios.iter().zip(stems) {
        out.push_str(&scenario_section(s, Some(&format!("{stem}.svg")), 2));
    }
    out
}

/// A scenario's own page: its section at level 1, then the run it belongs to.
pub(crate) fn scenario_page(report: &LabReport, s: &ScenarioResult, stem: &str) -> String {
    let mut out = scenario_section(s, Some(&format!("{stem}.svg")), 1);
    let mut from = String::from("From the lab run");
    if !report.started.trim().is_empty() {
        from.push_str(&format!(" started {}", fig::md_text(report.started.trim())));
    }
    if !report.machine.trim().is_empty() {
        from.push_str(&format!(" on {}", fig::md_text(report.machine.trim())));
    }
    line!(out, "{from}; see [the full report](README.md).");
    out
}

/// The section of `docs/lab.md` that shows the latest run: heading with date and machine, run
/// facts, summary table, then each scenario (heading level 3) with its plot linked from
/// `plot_dir_rel/<name>.svg`.
pub fn lab_doc_section(report: &LabReport, plot_dir_rel: &str) -> String {
    let stems = fig::file_stems(&report.scenarios);
    let date = report
        .started
        .trim()
        .split_once('T')
        .map_or(report.started.trim(), |(d, _)| d);
    let kind = if report.quick { "quick" } else { "full" };
    let mut out = String::new();
    let mut facts = Vec::new();
    if !date.is_empty() {
        facts.push(fig::md_text(date));
    }
    if !report.machine.trim().is_empty() {
        facts.push(fig::md_text(report.machine.trim()));
    }
    if facts.is_empty() {
        line!(out, "## Latest {kind} run");
    } else {
        line!(out, "## Latest {kind} run ({})", facts.join(", "));
    }
    line!(out);
    run_facts(&mut out, report);
    line!(out, "{READING}");
    line!(out);
    out.push_str(&summary_table(report));
    line!(out);
    let dir = plot_dir_rel.trim().trim_end_matches('/');
    for (s, stem) in report.scenarios.iter().zip(&stems) {
        let href = if dir.is_empty() {
            format!("{stem}.svg")
        } else {
            format!("{dir}/{stem}.svg")
        };
        out.push_str(&scenario_section(s, Some(&href), 3));
    }
    out
}

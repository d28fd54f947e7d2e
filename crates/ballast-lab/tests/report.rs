//! The report renders a realistic lab run correctly (rows, ratios, plots, files) and stays
//! valid on degenerate input (no data, one second, zeros, absurd values).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ballast_lab::report::{
    lab_doc_section, read_results, readme, results_json, scenario_markdown, scenario_svg,
    summary_table, write_all,
};
use ballast_lab::result::{
    Errors, Fault, LabReport, Latency, LoadStats, MetricSpec, Run, ScenarioResult, Second, Target,
};
use ballast_lab::LabError;

const FAULT_WHAT: &str = "SIGKILL <b2> & restart";

/// A 10 s timeline with an error spike in second 5 (the fault) and slower seconds after it.
fn timeline(rate: u64, spike: u64, p99_us: u64) -> Vec<Second> {
    (0..10)
        .map(|t| {
            let errors = match t {
                5 => Errors {
                    status_5xx: spike,
                    io: spike / 4,
                    ..Errors::default()
                },
                6 => Errors {
                    status_5xx: spike / 10,
                    ..Errors::default()
                },
                _ => Errors::default(),
            };
            Second {
                t,
                ok: rate,
                errors,
                p50_us: p99_us / 4,
                p99_us: if t >= 5 { p99_us * 3 } else { p99_us },
            }
        })
        .collect()
}

fn load(ok_per_s: f64, errors: Errors, p99_us: u64, tl: Vec<Second>) -> LoadStats {
    let ok = (ok_per_s * 10.0) as u64;
    LoadStats {
        sent: ok + errors.total(),
        ok,
        errors,
        statuses: BTreeMap::from([(200, ok)]),
        duration_s: 10.0,
        ok_per_s,
        latency: Latency {
            p50_us: p99_us / 4,
            p90_us: p99_us / 2,
            p99_us,
            p999_us: p99_us * 2,
            max_us: p99_us * 5,
            mean_us: p99_us as f64 / 3.0,
        },
        timeline: tl,
    }
}

fn groups(critical_ok: f64, low_ok: f64) -> BTreeMap<String, LoadStats> {
    BTreeMap::from([
        (
            "critical".to_string(),
            load(critical_ok, Errors::default(), 4_000, Vec::new()),
        ),
        (
            "low".to_string(),
            load(
                low_ok,
                Errors {
                    status_5xx: 30,
                    ..Errors::default()
                },
                9_000,
                Vec::new(),
            ),
        ),
    ])
}

fn fault(at_s: f64) -> Fault {
    Fault {
        what: FAULT_WHAT.to_string(),
        at_s,
        injected: true,
        seen: true,
        evidence: "b2 received 0 requests after the kill".to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    target: Target,
    version: &str,
    ok_per_s: f64,
    p99_us: u64,
    spike: u64,
    fault_at: f64,
    metrics: &[(&str, f64)],
) -> Run {
    Run {
        target: Some(target),
        version: version.to_string(),
        load: load(
            ok_per_s,
            Errors {
                status_5xx: spike + spike / 10,
                io: spike / 4,
                ..Errors::default()
            },
            p99_us,
            timeline(ok_per_s as u64, spike, p99_us),
        ),
        groups: groups(ok_per_s * 0.2, ok_per_s * 0.1),
        backend_requests: (ok_per_s * 10.0) as u64 + spike,
        fault: Some(fault(fault_at)),
        metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        notes: vec![format!("{} kept its pool warm", target.label())],
    }
}

/// Two scenarios: a crash with metrics, groups and a common fault time (Ballast 1000 req/s and
/// p99 10 ms, HAProxy 800 req/s and 20 ms, nginx 990 req/s and no p99); a slow backend
/// without metrics whose fault came at different times per target.
fn fixture() -> LabReport {
    let metrics = vec![
        MetricSpec {
            key: "recovery_s".to_string(),
            label: "time to recovery".to_string(),
            unit: "s".to_string(),
            higher_is_better: false,
        },
        MetricSpec {
            key: "retried".to_string(),
            label: "requests retried".to_string(),
            unit: "".to_string(),
            higher_is_better: true,
        },
    ];
    let crash = ScenarioResult {
        name: "backend-crash".to_string(),
        title: "Backend crash".to_string(),
        measures: "How many requests fail when one of three backends is killed.".to_string(),
        load: "open loop, 1000 req/s".to_string(),
        duration_s: 10.0,
        runs: vec![
            run(
                Target::Ballast,
                "Ballast 0.1.0",
                1000.0,
                10_000,
                8,
                5.0,
                &[("recovery_s", 1.5), ("retried", 40.0)],
            ),
            run(
                Target::Haproxy,
                "HAProxy 2.6.12",
                800.0,
                20_000,
                120,
                5.0,
                &[("recovery_s", 3.0), ("retried", 0.0)],
            ),
            {
                let mut r = run(
                    Target::Nginx,
                    "nginx 1.22.1",
                    990.0,
                    0,
                    60,
                    5.1,
                    &[("retried", 35.0)],
                );
                r.load.latency.p99_us = 0;
                r
            },
        ],
        metrics,
    };
    let slow = ScenarioResult {
        name: "slow-backend".to_string(),
        title: "Slow backend".to_string(),
        measures: "Latency when one backend answers in 500 ms.".to_string(),
        load: "closed loop, 64 connections".to_string(),
        duration_s: 10.0,
        runs: vec![
            run(Target::Direct, "demo backend", 2000.0, 900, 0, 2.0, &[]),
            run(
                Target::Ballast,
                "Ballast 0.1.0",
                1500.0,
                12_000,
                4,
                2.0,
                &[],
            ),
            run(
                Target::Haproxy,
                "HAProxy 2.6.12",
                1400.0,
                500_000,
                4,
                4.0,
                &[],
            ),
            run(Target::Nginx, "nginx 1.22.1", 700.0, 510_000, 4, 7.0, &[]),
        ],
        metrics: Vec::new(),
    };
    LabReport {
        started: "2026-05-02T10:00:00Z".to_string(),
        machine: "2 CPUs (Intel Xeon), 8 GiB, Linux 6.1".to_string(),
        cpu_plan: "proxy on CPU 0; backends and load on CPU 1".to_string(),
        quick: false,
        ballast_version: "0.1.0".to_string(),
        scenarios: vec![crash, slow],
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ballast-lab-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn assert_finite_text(text: &str) {
    assert!(!text.contains("NaN"), "NaN in:\n{text}");
    assert!(!text.contains("inf"), "inf in:\n{text}");
}

/// The row of a Markdown table whose first cell is `first`.
fn row<'a>(md: &'a str, first: &str) -> &'a str {
    md.lines()
        .find(|l| l.starts_with(&format!("| {first} |")))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{md}"))
}

#[test]
fn results_json_round_trips() {
    let report = fixture();
    let json = results_json(&report).unwrap();
    let back: LabReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);

    let dir = temp_dir("json");
    write_all(&report, &dir).unwrap();
    assert_eq!(read_results(&dir.join("results.json")).unwrap(), report);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scenario_markdown_has_rows_ratios_groups_faults() {
    let report = fixture();
    let md = scenario_markdown(&report.scenarios[0], Some("backend-crash.svg"));
    assert_finite_text(&md);

    assert!(md.starts_with("## Backend crash\n"));
    assert!(md.contains("How many requests fail when one of three backends is killed."));
    assert!(md.contains("Offered load: open loop, 1000 req/s. Duration: 10 s."));
    assert!(md.contains(
        "| Target | Version | ok req/s | success | errors | p50 ms | p99 ms | p99.9 ms | backend requests | time to recovery | requests retried |"
    ));
    assert_eq!(
        row(&md, "Ballast"),
        "| Ballast | Ballast 0.1.0 | 1000.0 | 99.90% | 10 (5xx 8, io 2) | 2.50 | 10.00 | 20.00 | 10008 | 1.50 s | 40 |"
    );
    assert!(row(&md, "HAProxy").starts_with("| HAProxy | HAProxy 2.6.12 | 800.0 |"));
    // nginx has no recovery time: "—" in its metric column.
    assert!(
        row(&md, "nginx").ends_with("| — | 35 |"),
        "{}",
        row(&md, "nginx")
    );

    // Ballast ÷ peer: 1000/800, 1000/990 (within 2%), 10/20 ms, nginx p99 missing, HAProxy
    // retried 0 (zero denominator), nginx recovery missing.
    assert!(md.contains("| Figure | ÷ HAProxy | ÷ nginx |"));
    assert_eq!(
        row(&md, "ok req/s (higher is better)"),
        "| ok req/s (higher is better) | 1.25× better | 1.01× equal |"
    );
    assert_eq!(
        row(&md, "p99 latency (lower is better)"),
        "| p99 latency (lower is better) | 0.50× better | — |"
    );
    assert_eq!(
        row(&md, "time to recovery (lower is better)"),
        "| time to recovery (lower is better) | 0.50× better | — |"
    );
    assert_eq!(
        row(&md, "requests retried (higher is better)"),
        "| requests retried (higher is better) | — | 1.14× better |"
    );

    // Groups: one table per group, one row per target.
    assert!(md.contains("### Client groups"));
    for group in ["critical", "low"] {
        let start = md.find(&format!("#### Group: {group}")).unwrap();
        let table = &md[start..];
        assert!(table.contains("| Target | success | ok req/s | p99 ms | errors |"));
    }
    assert!(md.contains("| Ballast | 100% | 200.0 | 4.00 | 0 |"));
    assert!(md.contains("| HAProxy | 96.39% | 80.0 | 9.00 | 30 (5xx 30) |"));

    // Faults, escaped; notes; the plot link.
    assert!(md.contains(
        "- Ballast: SIGKILL &lt;b2&gt; &amp; restart at t=5.00 s; injected: yes; seen: yes; evidence: b2 received 0 requests after the kill"
    ));
    assert!(md.contains("- nginx: SIGKILL &lt;b2&gt; &amp; restart at t=5.10 s;"));
    assert!(md.contains("- HAProxy: HAProxy kept its pool warm"));
    assert!(md.contains("](backend-crash.svg)"));
    assert!(!scenario_markdown(&report.scenarios[0], None).contains("!["));
}

#[test]
fn summary_uses_the_headline_figure() {
    let report = fixture();
    let table = summary_table(&report);
    assert_finite_text(&table);
    assert!(table.starts_with(
        "| Scenario | Headline figure | Ballast | HAProxy | nginx | Ballast ÷ HAProxy | Ballast ÷ nginx |"
    ));
    // First metric when there is one...
    assert_eq!(
        row(&table, "Backend crash"),
        "| Backend crash | time to recovery (lower is better) | 1.50 s | 3.00 s | — | 0.50× better | — |"
    );
    // ... else ok req/s (the direct run is a reference, not a column).
    assert_eq!(
        row(&table, "Slow backend"),
        "| Slow backend | ok req/s (higher is better) | 1500.0 req/s | 1400.0 req/s | 700.0 req/s | 1.07× better | 2.14× better |"
    );
}

#[test]
fn readme_and_doc_section() {
    let report = fixture();
    let md = readme(&report);
    assert_finite_text(&md);
    assert!(md.starts_with("# Ballast lab report\n"));
    for fact in [
        "- Started: 2026-05-02T10:00:00Z",
        "- Machine: 2 CPUs (Intel Xeon), 8 GiB, Linux 6.1",
        "- CPU plan: proxy on CPU 0; backends and load on CPU 1",
        "- Quick run: no",
        "- Ballast version: 0.1.0",
    ] {
        assert!(md.contains(fact), "{fact}");
    }
    assert!(md.contains(&summary_table(&report)));
    assert!(md.contains("- [Backend crash](backend-crash.md), [plot](backend-crash.svg)"));
    assert!(md.contains("## Backend crash\n"));
    assert!(md.contains("## Slow backend\n"));

    let doc = lab_doc_section(&report, "lab/plots/");
    assert_finite_text(&doc);
    assert!(
        doc.starts_with("## Latest full run (2026-05-02, 2 CPUs (Intel Xeon), 8 GiB, Linux 6.1)\n")
    );
    assert!(doc.contains(&summary_table(&report)));
    assert!(doc.contains("### Backend crash\n"));
    assert!(doc.contains("#### Ballast ÷ peer"));
    assert!(doc.contains("](lab/plots/backend-crash.svg)"));
    assert!(doc.contains("](lab/plots/slow-backend.svg)"));

    let quick = LabReport {
        quick: true,
        ..report
    };
    assert!(lab_doc_section(&quick, "").starts_with("## Latest quick run ("));
    assert!(lab_doc_section(&quick, "").contains("](backend-crash.svg)"));
}

/// Parsed SVG helpers.
fn attr(n: roxmltree::Node, name: &str) -> f64 {
    n.attribute(name).unwrap().parse().unwrap()
}

fn polylines<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .collect()
}

fn points(n: roxmltree::Node) -> Vec<(f64, f64)> {
    n.attribute("points")
        .unwrap()
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

/// The x position of a time, interpolated between the x tick labels "0" and "10".
fn x_of(doc: &roxmltree::Document, t: f64) -> f64 {
    let tick = |label: &str| {
        doc.descendants()
            .find(|n| n.attribute("class") == Some("x-tick") && n.text() == Some(label))
            .map(|n| attr(n, "x"))
            .unwrap_or_else(|| panic!("no x tick {label}"))
    };
    let (x0, x10) = (tick("0"), tick("10"));
    x0 + (x10 - x0) * t / 10.0
}

fn fault_lines<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("line") && n.attribute("class") == Some("fault"))
        .collect()
}

#[test]
fn svg_has_one_line_per_target_per_panel_and_the_fault() {
    let report = fixture();
    let svg = scenario_svg(&report.scenarios[0]);
    assert_finite_text(&svg);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");

    let lines = polylines(&doc);
    assert_eq!(lines.len(), 6);
    for target in ["ballast", "haproxy", "nginx"] {
        for panel in ["errors", "p99"] {
            let n = lines
                .iter()
                .filter(|n| {
                    n.attribute("data-target") == Some(target)
                        && n.attribute("data-panel") == Some(panel)
                })
                .count();
            assert_eq!(n, 1, "{target} {panel}");
        }
    }
    let color = |target: &str| {
        lines
            .iter()
            .find(|n| n.attribute("data-target") == Some(target))
            .and_then(|n| n.attribute("stroke"))
            .unwrap()
    };
    assert_eq!(color("ballast"), "#1f77b4");
    assert_eq!(color("haproxy"), "#d62728");
    assert_eq!(color("nginx"), "#2ca02c");

    // Each errors line has its peak in second 5, drawn at the middle of that second.
    for n in lines
        .iter()
        .filter(|n| n.attribute("data-panel") == Some("errors"))
    {
        let pts = points(*n);
        assert_eq!(pts.len(), 10);
        let peak = pts.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert!((peak.0 - x_of(&doc, 5.5)).abs() < 0.2, "{peak:?}");
    }

    // Fault times 5.0, 5.0, 5.1: one shared dashed line at their mean, labelled, escaped.
    let faults = fault_lines(&doc);
    assert_eq!(faults.len(), 1);
    let f = faults[0];
    assert!(f.attribute("stroke-dasharray").is_some());
    assert!((attr(f, "x1") - x_of(&doc, 5.0 + 0.1 / 3.0)).abs() < 0.2);
    assert_eq!(attr(f, "x1"), attr(f, "x2"));
    let label = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("fault-label"))
        .unwrap();
    assert_eq!(label.text(), Some(FAULT_WHAT));
    assert!(svg.contains("SIGKILL &lt;b2&gt; &amp; restart"));

    // Legend and axis titles.
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for t in [
        "Ballast",
        "HAProxy",
        "nginx",
        "errors / s",
        "p99 latency, ms (log scale)",
    ] {
        assert!(texts.contains(&t), "{t}");
    }
}

#[test]
fn svg_draws_one_fault_line_per_target_when_times_differ() {
    let report = fixture();
    let svg = scenario_svg(&report.scenarios[1]);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // direct and Ballast at 2 s, HAProxy at 4 s, nginx at 7 s.
    let faults = fault_lines(&doc);
    assert_eq!(faults.len(), 4);
    let mut seen: Vec<(String, f64)> = faults
        .iter()
        .map(|n| (n.attribute("stroke").unwrap().to_string(), attr(*n, "x1")))
        .collect();
    seen.sort_by(|a, b| a.1.total_cmp(&b.1));
    let expect = [
        ("#7f7f7f", 2.0),
        ("#1f77b4", 2.0),
        ("#d62728", 4.0),
        ("#2ca02c", 7.0),
    ];
    for (color, t) in expect {
        assert!(
            seen.iter()
                .any(|(c, x)| c == color && (x - x_of(&doc, t)).abs() < 0.2),
            "{color} at {t}: {seen:?}"
        );
    }
    assert_eq!(polylines(&doc).len(), 8);
}

/// Scenarios no real run should produce but the report must survive.
fn degenerate() -> Vec<ScenarioResult> {
    let empty_run = |target| Run {
        target,
        ..Run::default()
    };
    let one_second = Run {
        target: Some(Target::Ballast),
        load: LoadStats {
            timeline: vec![Second {
                t: 0,
                ok: 5,
                p99_us: 1200,
                ..Second::default()
            }],
            ..LoadStats::default()
        },
        ..Run::default()
    };
    let zeros = Run {
        target: Some(Target::Haproxy),
        load: LoadStats {
            timeline: (0..5)
                .map(|t| Second {
                    t,
                    ..Second::default()
                })
                .collect(),
            ..LoadStats::default()
        },
        fault: Some(Fault::default()),
        ..Run::default()
    };
    let huge = Run {
        target: Some(Target::Nginx),
        version: "nginx | <x>\nline two".to_string(),
        load: LoadStats {
            sent: u64::MAX,
            ok: u64::MAX,
            errors: Errors {
                connect: u64::MAX,
                timeout: u64::MAX,
                io: u64::MAX,
                status_5xx: u64::MAX,
                status_4xx: u64::MAX,
            },
            ok_per_s: f64::MAX,
            duration_s: f64::INFINITY,
            latency: Latency {
                p50_us: u64::MAX,
                p90_us: u64::MAX,
                p99_us: u64::MAX,
                p999_us: u64::MAX,
                max_us: u64::MAX,
                mean_us: f64::NAN,
            },
            timeline: vec![
                Second {
                    t: u32::MAX,
                    ok: u64::MAX,
                    errors: Errors {
                        connect: u64::MAX,
                        status_5xx: u64::MAX,
                        ..Errors::default()
                    },
                    p50_us: u64::MAX,
                    p99_us: u64::MAX,
                },
                Second {
                    t: 0,
                    p99_us: 1,
                    ..Second::default()
                },
            ],
            ..LoadStats::default()
        },
        backend_requests: u64::MAX,
        fault: Some(Fault {
            what: "\u{0}\u{7}<&>\"'".to_string(),
            at_s: 1e300,
            ..Fault::default()
        }),
        metrics: BTreeMap::from([
            ("m".to_string(), f64::NAN),
            ("n".to_string(), f64::INFINITY),
        ]),
        ..Run::default()
    };
    let nan_fault = Run {
        target: None,
        fault: Some(Fault {
            at_s: f64::NAN,
            ..Fault::default()
        }),
        ..Run::default()
    };
    let specs = vec![
        MetricSpec {
            key: "m".to_string(),
            label: "m | <metric>".to_string(),
            unit: "s".to_string(),
            higher_is_better: true,
        },
        MetricSpec {
            key: "n".to_string(),
            label: "n".to_string(),
            unit: "%".to_string(),
            higher_is_better: false,
        },
    ];
    vec![
        ScenarioResult::default(),
        ScenarioResult {
            name: "no-timelines".to_string(),
            runs: vec![
                empty_run(Some(Target::Ballast)),
                empty_run(Some(Target::Haproxy)),
                empty_run(Some(Target::Nginx)),
            ],
            ..ScenarioResult::default()
        },
        ScenarioResult {
            name: "one-second".to_string(),
            duration_s: 1.0,
            runs: vec![one_second.clone()],
            ..ScenarioResult::default()
        },
        ScenarioResult {
            name: "zeros".to_string(),
            runs: vec![zeros],
            ..ScenarioResult::default()
        },
        ScenarioResult {
            name: "huge <&>".to_string(),
            title: "Huge & <odd>".to_string(),
            duration_s: f64::NAN,
            runs: vec![one_second, huge, nan_fault],
            metrics: specs,
            ..ScenarioResult::default()
        },
    ]
}

#[test]
fn degenerate_input_still_renders_valid_output() {
    for s in degenerate() {
        let svg = scenario_svg(&s);
        assert_finite_text(&svg);
        let doc =
            roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}\n{svg}", s.name));
        assert_eq!(polylines(&doc).len(), 2 * s.runs.len(), "{}", s.name);
        for n in polylines(&doc) {
            for (x, y) in points(n) {
                assert!((0.0..=860.0).contains(&x) && (0.0..=560.0).contains(&y));
            }
        }
        let md = scenario_markdown(&s, Some("plots/a (b).svg"));
        assert_finite_text(&md);
    }
    let report = LabReport {
        scenarios: degenerate(),
        ..LabReport::default()
    };
    assert_finite_text(&summary_table(&report));
    assert_finite_text(&readme(&report));
    assert_finite_text(&lab_doc_section(&report, "plots"));
    assert_eq!(
        summary_table(&LabReport::default()),
        "No scenario was run.\n"
    );
}

#[test]
fn huge_values_are_escaped_and_shown() {
    let s = &degenerate()[4];
    let md = scenario_markdown(s, None);
    // The version cell cannot break the table.
    assert!(
        md.contains("| nginx | nginx \\| &lt;x&gt; line two |"),
        "{md}"
    );
    assert!(md.contains(&format!("{} (connect", u64::MAX)));
    // Code spans show text literally, so the name is not entity-escaped there.
    assert!(md.contains("Scenario `huge <&>`."));
    assert!(!scenario_markdown(&degenerate()[0], None).contains('`'));
    let svg = scenario_svg(s);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // The control characters became spaces, the markup is text.
    let label = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("fault-label"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>();
    assert!(label.iter().any(|l| l.contains("<&>\"'")), "{label:?}");
}

#[test]
fn write_all_writes_every_file() {
    let report = fixture();
    let dir = temp_dir("write").join("nested");
    let written = write_all(&report, &dir).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "results.json",
            "README.md",
            "backend-crash.md",
            "backend-crash.svg",
            "slow-backend.md",
            "slow-backend.svg"
        ]
    );
    for p in &written {
        assert!(p.starts_with(&dir));
        assert!(std::fs::metadata(p).unwrap().len() > 0, "{}", p.display());
    }
    let page = std::fs::read_to_string(dir.join("backend-crash.md")).unwrap();
    assert!(page.starts_with("# Backend crash\n"));
    assert!(page.contains("](backend-crash.svg)"));
    assert!(page.contains("[the full report](README.md)"));
    let svg = std::fs::read_to_string(dir.join("slow-backend.svg")).unwrap();
    assert_eq!(svg, scenario_svg(&report.scenarios[1]));
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        readme(&report)
    );

    // A file where the directory should be: a write error naming the path.
    let blocker = temp_dir("blocked");
    std::fs::write(&blocker, "x").unwrap();
    match write_all(&report, &blocker) {
        Err(LabError::Write { path, .. }) => assert_eq!(path, blocker),
        other => panic!("expected a write error, got {other:?}"),
    }
    std::fs::remove_file(&blocker).unwrap();
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

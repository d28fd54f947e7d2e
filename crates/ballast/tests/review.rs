//! The threshold review on a store seeded by the test: 30 days of per-minute values of a
//! gateway rule's series, a known history of firings (acknowledged, remediated, ignored), and
//! a rule with no data at all. The gateway runs on that store; `GET /api/v1/review` and
//! `ballast review` must report the percentiles, firings, noise share, flags and proposals
//! computed by hand here.

mod common;
mod notify_support;

use std::time::Duration;

use ballast_core::{
    AlertSource, AlertState, Event, Labels, MinuteRollup, RemediationResult, RemediationRun,
    Severity, Stamped,
};
use common::*;
use serde_json::Value;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn changed(seq: u64, at: u64, to: AlertState) -> Stamped {
    Stamped {
        seq,
        at_unix_ms: at,
        event: Event::AlertChanged {
            id: "a1".into(),
            rule: "shop-slow".into(),
            labels: Labels::new().with("route", "shop"),
            from: AlertState::Inactive,
            to,
            value: None,
            threshold: None,
            source: AlertSource::Rule,
        },
    }
}

/// Nearest rank, as the review defines it: sorted[ceil(k/100 × n) − 1].
fn rank(sorted: &[f64], k: f64) -> f64 {
    let n = sorted.len() as f64;
    let i = ((k / 100.0 * n).ceil() as usize).max(1) - 1;
    sorted[i]
}

#[test]
fn the_review_reports_what_the_history_says() {
    let dir = scratch("review-store");
    let db = dir.join("ops.db");
    let now = now_ms();
    // Minutes well inside the 30 days the review will read a moment from now.
    let first = (now - 30 * 24 * HOUR) / MINUTE * MINUTE + 5 * MINUTE;
    let minutes = 30 * 24 * 60 - 10;
    let values: Vec<f64> = (0..minutes).map(|i| (i % 100) as f64).collect();
    // The firings: acknowledged, remediated, ignored, and one that went critical, ignored.
    let warn = AlertState::Firing {
        severity: Severity::Warning,
    };
    let crit = AlertState::Firing {
        severity: Severity::Critical,
    };
    let t = |day: u64| first + day * 24 * HOUR;
    let events = vec![
        changed(1, t(1), warn),
        Stamped {
            seq: 2,
            at_unix_ms: t(1) + 10 * MINUTE,
            event: Event::AlertAcknowledged {
                id: "a1".into(),
                by: "ana".into(),
                comment: "looking".into(),
            },
        },
        changed(3, t(1) + HOUR, AlertState::Resolved),
        changed(4, t(5), warn),
        changed(5, t(5) + 2 * HOUR, AlertState::Resolved),
        changed(6, t(9), warn),
        changed(7, t(9) + 30 * MINUTE, AlertState::Resolved),
        changed(8, t(20), warn),
        changed(9, t(20) + 10 * MINUTE, crit),
        changed(10, t(20) + HOUR, AlertState::Resolved),
    ];
    common::rt().block_on(async {
        let store = ballast_store::Store::open_sqlite_file(&db).await.unwrap();
        let rollups: Vec<MinuteRollup> = values
            .iter()
            .enumerate()
            .map(|(i, v)| MinuteRollup {
                monitor: "gateway".into(),
                value: "p99_ms".into(),
                labels: Labels::new().with("route", "shop"),
                minute_unix_ms: first + i as u64 * MINUTE,
                min: *v,
                avg: *v,
                max: *v,
                p95: *v,
                count: 60,
            })
            .collect();
        for chunk in rollups.chunks(2_000) {
            store.write_rollups(chunk).await.unwrap();
        }
        store.insert_events("seed", &events).await.unwrap();
        store
            .record_remediation(&RemediationRun {
                rule: "restart".into(),
                target: "shop".into(),
                alert_id: "a1".into(),
                dry_run: false,
                started_unix_ms: t(5) + 5 * MINUTE,
                ended_unix_ms: t(5) + 6 * MINUTE,
                result: RemediationResult::Ok,
                steps: Vec::new(),
            })
            .await
            .unwrap();
        store.close().await;
    });

    let hook = notify_support::Receiver::start();
    let port = free_port();
    let config = format!(
        r#"{preamble}
[store]
url = "sqlite://{db}"

[alerting]
default_rules = false

[[route]]
name = "shop"
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "127.0.0.1:9" }}]

[[rule]]
name = "shop-slow"
monitor = "gateway"
value = "p99_ms"
match = {{ route = "shop" }}
warn = {{ above = 90 }}
crit = {{ above = 200 }}

[[rule]]
name = "never"
monitor = "gateway"
value = "requests_per_s"
match = {{ route = "nothing-here" }}
min = {{ below = 1 }}

[[receiver]]
name = "lead"
webhook = {{ url = "{hook}" }}

[review]
every = "10s"
receiver = "lead"
"#,
        preamble = preamble(port),
        db = db.display(),
        hook = hook.url("/hook"),
    );
    let gw = Gateway::start("review", &config);
    let (code, body) = gw.admin_get("/api/v1/review?since=30d");
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let rules = report["rules"].as_array().unwrap();
    let slow = rules.iter().find(|r| r["rule"] == "shop-slow").unwrap();

    // By hand: 43,190 minutes cycling 0..99.
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(slow["minutes"], minutes as u64);
    let p = &slow["percentiles"];
    for (k, field) in [(50.0, "p50"), (95.0, "p95"), (99.0, "p99"), (1.0, "p1")] {
        assert_eq!(
            p[field].as_f64().unwrap(),
            rank(&sorted, k),
            "{field}: {p:#}"
        );
    }
    assert_eq!(
        (p["p50"].as_f64(), p["p95"].as_f64(), p["p99"].as_f64()),
        (Some(49.0), Some(94.0), Some(98.0))
    );
    assert_eq!(p["max"].as_f64(), Some(99.0));
    assert_eq!(p["min"].as_f64(), Some(0.0));
    assert_eq!(slow["warning_firings"], 3);
    assert_eq!(slow["critical_firings"], 1);
    assert_eq!(slow["firing_ms"], HOUR + 2 * HOUR + 30 * MINUTE + HOUR);
    assert_eq!(
        slow["acted"], 2,
        "the acknowledged one and the remediated one"
    );
    assert_eq!(slow["noise"], 2);
    assert_eq!(slow["noise_share"].as_f64(), Some(0.5));
    // warn = 90 is below the normal p95 (94): inside the normal range.
    let flags: Vec<&str> = slow["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(flags, ["noisy"], "{slow:#}");
    // Proposed: warning just above p99 (98 × 1.1 = 107.8 → 108), critical max(98 × 1.5, 99 × 1.05) = 147.
    assert_eq!(slow["proposal"]["warn"].as_f64(), Some(108.0), "{slow:#}");
    assert_eq!(slow["proposal"]["crit"].as_f64(), Some(147.0), "{slow:#}");

    let never = rules.iter().find(|r| r["rule"] == "never").unwrap();
    assert_eq!(never["minutes"], 0);
    let flags: Vec<&str> = never["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(flags, ["no_data", "never_fired"], "{never:#}");

    // The Markdown report, through the CLI.
    let (code, md, err) = cli(&["review", "--since", "30d", "--admin", &gw.admin.to_string()]);
    assert_eq!(code, Some(0), "{md}{err}");
    assert!(md.contains("shop-slow") && md.contains("never"), "{md}");
    assert!(md.contains("50%"), "the noise share: {md}");
    let (code, _) = gw.admin_get("/api/v1/review?since=soon");
    assert_eq!(code, 400);

    // The scheduled review (every 10 s here) tells the receiver which rules it flagged.
    wait_until(
        "the scheduled review's message",
        Duration::from_secs(40),
        || {
            hook.received().iter().any(|r| {
                r.body
                    .contains("Threshold review: 2 of 2 rules flagged (shop-slow, never)")
            })
        },
    );
}

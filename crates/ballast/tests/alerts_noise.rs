//! Noise control on a running gateway: silences set through the API mute the alerts they match
//! and unmute them when expired or deleted; a maintenance window from the config mutes the alerts
//! it matches while it is open; a critical alert inhibits the warning of the same alert (as
//! received from Alertmanager); `depends_on` inhibits the dependants' alerts while the
//! dependency fires. Alerts are made to fire with heartbeat `/fail`, which runs the monitor at
//! once. Real `ballast` processes and the admin API.

mod alerts_support;
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alerts_support::*;
use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// Heartbeat monitors named `jobs` (period 1 h, so only `/fail` makes them alert), each with
/// rule `job-failed` (critical when the job failed), default rules off, and `extra`.
fn jobs_config(jobs: &[&str], extra: &str) -> String {
    let mut text = String::from("[alerting]\ndefault_rules = false\n");
    for job in jobs {
        text.push_str(&format!(
            r#"
[[monitor]]
name = "{job}"
kind = "heartbeat"
interval = "1s"
period = "1h"
[[rule]]
name = "job-failed"
monitor = "{job}"
value = "failed"
crit = {{ above = 0 }}
"#
        ));
    }
    text.push_str(extra);
    monitoring_config(free_port(), nowhere(), &text)
}

/// `POST /api/v1/heartbeat/{job}{suffix}`, which must succeed.
fn beat(gw: &Gateway, job: &str, suffix: &str) {
    let (code, body) = post_json(gw, &format!("/api/v1/heartbeat/{job}{suffix}"), "");
    assert_eq!(code, 200, "{body}");
}

/// Fails `job` and waits for its `job-failed` alert to fire.
fn fail_and_fire(gw: &Gateway, job: &str) -> Value {
    beat(gw, job, "/fail");
    wait_until(&format!("{job} to fire"), WAIT, || {
        is_firing(gw, "job-failed", job, Some("critical"))
    });
    alert_on(gw, "job-failed", job).unwrap()
}

fn ids(list: &Value) -> Vec<Value> {
    list.as_array().cloned().unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_silence_mutes_matching_alerts_until_it_is_expired_or_ends() {
    let gw = start("alerts-silence", &jobs_config(&["backup", "report"], ""));
    let backup = fail_and_fire(&gw, "backup");
    fail_and_fire(&gw, "report");
    assert_eq!(backup["silenced"], false, "{backup}");

    // A silence on backup's failures, in Alertmanager's text form.
    let (code, body) = post_json(
        &gw,
        "/api/v1/silences",
        r#"{"matchers": ["alertname=\"job-failed\"", "monitor=\"backup\""], "duration": "1h",
            "author": "ops", "comment": "disk being replaced"}"#,
    );
    assert_eq!(code, 201, "{body}");
    let silence: Value = serde_json::from_str(&body).unwrap();
    let id = silence["id"].as_u64().expect("a silence id");
    let (code, body) = gw.admin_get("/api/v1/silences");
    assert_eq!(code, 200, "{body}");
    let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(listed.iter().any(|s| s["id"] == id), "{body}");

    let a = alert_on(&gw, "job-failed", "backup").unwrap();
    assert_eq!(a["silenced"], true, "{a}");
    assert_eq!(ids(&a["mute"]["silenced_by"]), [Value::from(id)], "{a}");
    assert!(
        firing(&a, Some("critical")),
        "a silence mutes, it does not resolve: {a}"
    );
    let other = alert_on(&gw, "job-failed", "report").unwrap();
    assert_eq!(
        other["silenced"], false,
        "the silence matches backup only: {other}"
    );
    assert!(ids(&other["mute"]["silenced_by"]).is_empty(), "{other}");

    // Expired early through the API: unmuted at once.
    let (code, body) = delete(&gw, &format!("/api/v1/silences/{id}"));
    assert_eq!(code, 200, "{body}");
    let a = alert_on(&gw, "job-failed", "backup").unwrap();
    assert_eq!(a["silenced"], false, "{a}");
    assert!(ids(&a["mute"]["silenced_by"]).is_empty(), "{a}");
    let (_, body) = gw.admin_get("/api/v1/silences");
    let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(
        !listed.iter().any(|s| s["id"] == id),
        "expired, not listed: {body}"
    );
    let (code, _) = delete(&gw, "/api/v1/silences/999999");
    assert_eq!(code, 404);

    // A short silence (object matchers) mutes, then its end unmutes without anyone acting.
    let started = now_ms();
    let (code, body) = post_json(
        &gw,
        "/api/v1/silences",
        r#"{"matchers": [{"name": "monitor", "op": "=~", "value": "back.*"}], "duration": "3s",
            "author": "ops", "comment": "short"}"#,
    );
    assert_eq!(code, 201, "{body}");
    let short: Value = serde_json::from_str(&body).unwrap();
    let short_id = short["id"].as_u64().unwrap();
    let a = alert_on(&gw, "job-failed", "backup").unwrap();
    if now_ms() < started + 3000 {
        assert_eq!(
            ids(&a["mute"]["silenced_by"]),
            [Value::from(short_id)],
            "{a}"
        );
    }
    wait_until("the short silence to end", WAIT, || {
        alert_on(&gw, "job-failed", "backup").is_some_and(|a| a["silenced"] == false)
    });
    assert!(
        now_ms() >= started + 3000,
        "unmuted before the silence ended"
    );
    let a = alert_on(&gw, "job-failed", "backup").unwrap();
    assert!(firing(&a, Some("critical")), "{a}");
}

/// `HH:MM` of the current UTC time shifted by `minutes`.
fn utc_hh_mm(minutes: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let minute_of_day = (secs / 60 + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

#[test]
fn a_maintenance_window_mutes_what_it_matches_while_open() {
    let extra = format!(
        r#"
[[maintenance]]
name = "db-upgrade"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "{open}"
duration = "1h"
timezone = "UTC"
match = {{ monitor = "db-dump" }}
# Opens in three hours: does not mute now.
[[maintenance]]
name = "later"
days = "mon-sun"
start = "{later}"
duration = "1h"
timezone = "UTC"
match = {{ monitor = "mailer" }}
"#,
        open = utc_hh_mm(-1),
        later = utc_hh_mm(180),
    );
    let gw = start(
        "alerts-maintenance",
        &jobs_config(&["db-dump", "mailer"], &extra),
    );
    let a = fail_and_fire(&gw, "db-dump");
    assert_eq!(a["silenced"], true, "{a}");
    assert_eq!(
        ids(&a["mute"]["maintenance"]),
        [Value::from("db-upgrade")],
        "{a}"
    );
    assert!(
        a["mute"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("db-upgrade"),
        "{a}"
    );
    let b = fail_and_fire(&gw, "mailer");
    assert_eq!(b["silenced"], false, "{b}");
    assert!(ids(&b["mute"]["maintenance"]).is_empty(), "{b}");
}

/// A webhook v4 body with one alert per (status, labels).
fn webhook(alerts: &[(&str, &[(&str, &str)])]) -> String {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(status, labels)| {
            let labels: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect();
            serde_json::json!({
                "status": status,
                "labels": labels,
                "annotations": { "summary": "replication lag" },
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": if *status == "resolved" { "2026-01-01T01:00:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus.test/graph",
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"ReplicationLag\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": { "alertname": "ReplicationLag" },
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": alerts,
    })
    .to_string()
}

#[test]
fn critical_inhibits_the_warning_of_the_same_alert() {
    let gw = start("alerts-inhibit", &jobs_config(&[], ""));
    let warning: &[(&str, &str)] = &[
        ("alertname", "ReplicationLag"),
        ("instance", "db1"),
        ("severity", "warning"),
    ];
    let critical: &[(&str, &str)] = &[
        ("alertname", "ReplicationLag"),
        ("instance", "db1"),
        ("severity", "critical"),
    ];
    let elsewhere: &[(&str, &str)] = &[
        ("alertname", "ReplicationLag"),
        ("instance", "db2"),
        ("severity", "warning"),
    ];
    let body = webhook(&[
        ("firing", warning),
        ("firing", critical),
        ("firing", elsewhere),
    ]);
    let (code, text) = post_json(&gw, "/api/v1/alertmanager", &body);
    assert_eq!(code, 200, "{text}");
    let find = |instance: &str, severity: &str| {
        alerts_of(&gw, "ReplicationLag")
            .into_iter()
            .find(|a| a["labels"]["instance"] == instance && a["labels"]["severity"] == severity)
            .unwrap_or_else(|| panic!("{instance} {severity} in {:?}", alerts(&gw)))
    };
    let crit = find("db1", "critical");
    let warn = find("db1", "warning");
    assert_eq!(crit["source"], "alertmanager", "{crit}");
    assert!(firing(&crit, Some("critical")), "{crit}");
    assert!(firing(&warn, Some("warning")), "{warn}");
    assert_eq!(crit["inhibited"], false, "{crit}");
    assert_eq!(warn["inhibited"], true, "{warn}");
    assert_eq!(
        ids(&warn["mute"]["inhibited_by"]),
        [crit["id"].clone()],
        "{warn}"
    );
    let other = find("db2", "warning");
    assert_eq!(other["inhibited"], false, "another instance: {other}");

    // The critical one resolves: the warning speaks again.
    let (code, text) = post_json(
        &gw,
        "/api/v1/alertmanager",
        &webhook(&[("resolved", critical)]),
    );
    assert_eq!(code, 200, "{text}");
    let crit = find("db1", "critical");
    assert_eq!(crit["state"], "resolved", "{crit}");
    let warn = find("db1", "warning");
    assert!(firing(&warn, Some("warning")), "{warn}");
    assert_eq!(warn["inhibited"], false, "{warn}");
}

#[test]
fn depends_on_inhibits_dependants_while_the_dependency_fires() {
    let gw = start(
        "alerts-depends",
        &jobs_config(
            &[],
            r#"
[[monitor]]
name = "db"
kind = "heartbeat"
interval = "1s"
period = "1h"
[[monitor]]
name = "app"
kind = "heartbeat"
interval = "1s"
period = "1h"
[[rule]]
name = "db-down"
monitor = "db"
value = "failed"
crit = { above = 0 }
[[rule]]
name = "app-failing"
monitor = "app"
value = "failed"
warn = { above = 0 }
depends_on = ["db-down"]
"#,
        ),
    );
    // The dependant alone: not inhibited.
    beat(&gw, "app", "/fail");
    wait_until("app-failing to fire", WAIT, || {
        is_firing(&gw, "app-failing", "app", Some("warning"))
    });
    let app = alert_on(&gw, "app-failing", "app").unwrap();
    assert_eq!(app["inhibited"], false, "{app}");

    // The dependency fires: the dependant is inhibited by it, and says so.
    beat(&gw, "db", "/fail");
    wait_until("db-down to fire", WAIT, || {
        is_firing(&gw, "db-down", "db", Some("critical"))
    });
    let db = alert_on(&gw, "db-down", "db").unwrap();
    assert_eq!(db["inhibited"], false, "{db}");
    let app = alert_on(&gw, "app-failing", "app").unwrap();
    assert!(firing(&app, Some("warning")), "{app}");
    assert_eq!(app["inhibited"], true, "{app}");
    assert_eq!(
        ids(&app["mute"]["inhibited_by"]),
        [db["id"].clone()],
        "{app}"
    );

    // The dependency resolves: the dependant, still firing, is no longer inhibited.
    beat(&gw, "db", "");
    wait_until("db-down to resolve", WAIT, || {
        alert_on(&gw, "db-down", "db").is_some_and(|a| a["state"] == "resolved")
    });
    let app = alert_on(&gw, "app-failing", "app").unwrap();
    assert!(firing(&app, Some("warning")), "{app}");
    assert_eq!(app["inhibited"], false, "{app}");
    assert!(ids(&app["mute"]["inhibited_by"]).is_empty(), "{app}");
}

//! Tests of the Alertmanager/Grafana receiver, with payloads shaped like the real senders'.

use super::*;
use serde_json::json;

/// An Alertmanager webhook v4 body with two alerts of one group.
fn alertmanager_payload() -> serde_json::Value {
    json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{alertname=\"NodeDown\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {"alertname": "NodeDown"},
        "commonLabels": {"alertname": "NodeDown", "severity": "critical", "job": "node"},
        "commonAnnotations": {"summary": "a node is down"},
        "externalURL": "http://am.internal:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "NodeDown", "instance": "10.0.0.7:9100", "job": "node", "severity": "critical"},
                "annotations": {"summary": "a node is down", "runbook_url": "https://wiki/runbooks/node-down"},
                "startsAt": "2026-11-30T17:58:12.345678901Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom.internal:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": "3b15fd163d7b6dd2"
            },
            {
                "status": "resolved",
                "labels": {"alertname": "NodeDown", "instance": "10.0.0.8:9100", "job": "node", "severity": "critical"},
                "annotations": {"summary": "a node is down"},
                "startsAt": "2026-11-30T17:40:00Z",
                "endsAt": "2026-11-30T17:55:00+09:00",
                "generatorURL": "http://prom.internal:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": "a1c0e3b2d4f50617"
            }
        ]
    })
}

/// A Grafana webhook body: Alertmanager's shape plus Grafana's own fields.
fn grafana_payload() -> serde_json::Value {
    json!({
        "receiver": "ballast",
        "status": "firing",
        "orgId": 1,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighCPU", "grafana_folder": "Hosts", "host": "web1", "severity": "Page"},
            "annotations": {"description": "CPU above 90%"},
            "startsAt": "2026-11-30T18:00:00+00:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://grafana.internal/alerting/grafana/abc/view",
            "fingerprint": "57c6d9296de2ad39",
            "silenceURL": "https://grafana.internal/alerting/silence/new?matcher=alertname%3DHighCPU",
            "dashboardURL": "https://grafana.internal/d/xyz",
            "panelURL": "https://grafana.internal/d/xyz?viewPanel=2",
            "values": {"B": 93.5, "C": 1},
            "valueString": "[ var='B' labels={host=web1} value=93.5 ]"
        }],
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU"},
        "commonAnnotations": {},
        "externalURL": "https://grafana.internal/",
        "version": "1",
        "groupKey": "{}:{alertname=\"HighCPU\"}",
        "truncatedAlerts": 0,
        "title": "[FIRING:1] HighCPU Hosts",
        "state": "alerting",
        "message": "**Firing**\n\nValue: B=93.5"
    })
}

fn parse_json(v: &serde_json::Value) -> Result<Received, ReceiveError> {
    parse(v.to_string().as_bytes())
}

fn ms(s: &str) -> u64 {
    let ts: Timestamp = s.parse().unwrap();
    u64::try_from(ts.as_millisecond()).unwrap()
}

#[test]
fn parses_an_alertmanager_payload() {
    let r = parse_json(&alertmanager_payload()).unwrap();
    assert_eq!(r.receiver.as_deref(), Some("ballast"));
    assert!(r.group_key.as_deref().unwrap().contains("NodeDown"));
    assert_eq!(r.alerts.len(), 2);
    let a = &r.alerts[0];
    assert_eq!(a.fingerprint, "3b15fd163d7b6dd2");
    assert_eq!(a.status, ReceivedStatus::Firing);
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.labels.get("instance"), Some("10.0.0.7:9100"));
    assert_eq!(a.starts_at_ms, ms("2026-11-30T17:58:12.345Z"));
    assert_eq!(a.ends_at_ms, None, "the zero time is no end");
    assert!(a.generator_url.starts_with("http://prom.internal"));
    assert_eq!(
        a.annotations["runbook_url"],
        "https://wiki/runbooks/node-down"
    );
    let b = &r.alerts[1];
    assert_eq!(b.status, ReceivedStatus::Resolved);
    assert_eq!(b.ends_at_ms, Some(ms("2026-11-30T08:55:00Z")));
}

#[test]
fn converts_to_ballast_alerts() {
    let r = parse_json(&alertmanager_payload()).unwrap();
    let now = ms("2026-11-30T18:00:00Z");
    let firing = r.alerts[0].to_record(now);
    assert_eq!(firing.id, r.alerts[0].labels.fingerprint());
    assert_eq!(firing.rule, "NodeDown");
    assert_eq!(firing.source, AlertSource::Alertmanager);
    assert_eq!(
        firing.state,
        AlertState::Firing {
            severity: Severity::Critical
        }
    );
    assert_eq!(firing.since_unix_ms, ms("2026-11-30T17:58:12.345Z"));
    assert_eq!(firing.updated_unix_ms, now);
    assert!(firing.annotations["generator_url"].contains("prom.internal"));
    let resolved = r.alerts[1].to_record(now);
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.since_unix_ms, ms("2026-11-30T08:55:00Z"));
    // It serializes like any other alert record.
    let v = serde_json::to_value(&firing).unwrap();
    assert_eq!(v["source"], "alertmanager");
    assert_eq!(v["state"], "firing");
}

#[test]
fn parses_grafanas_superset() {
    let r = parse_json(&grafana_payload()).unwrap();
    assert_eq!(r.alerts.len(), 1);
    let a = &r.alerts[0];
    // "Page" (any case) maps to critical; the label is kept as sent.
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.labels.get("severity"), Some("Page"));
    assert_eq!(
        a.annotations["dashboard_url"],
        "https://grafana.internal/d/xyz"
    );
    assert_eq!(
        a.annotations["panel_url"],
        "https://grafana.internal/d/xyz?viewPanel=2"
    );
    assert!(a.annotations["silence_url"].contains("silence/new"));
    assert_eq!(a.starts_at_ms, ms("2026-11-30T18:00:00Z"));
}

#[test]
fn a_zero_start_reads_as_unknown_and_since_is_the_receipt() {
    let p = json!({"truncatedAlerts": 3, "alerts": [{"status": "firing", "labels": {"alertname": "x"},
        "startsAt": "0001-01-01T00:00:00Z", "endsAt": ""}]});
    let r = parse_json(&p).unwrap();
    assert_eq!(r.truncated_alerts, 3);
    assert_eq!(r.alerts[0].starts_at_ms, 0);
    assert_eq!(r.alerts[0].ends_at_ms, None);
    assert_eq!(r.alerts[0].to_record(42).since_unix_ms, 42);
    // A resolved alert without an end is resolved at receipt.
    let p = json!({"alerts": [{"status": "resolved", "labels": {"alertname": "x"},
        "startsAt": "2026-01-01T00:00:00Z"}]});
    let rec = parse_json(&p).unwrap().alerts[0].to_record(42);
    assert_eq!((rec.state, rec.since_unix_ms), (AlertState::Resolved, 42));
}

#[test]
fn severity_mapping() {
    for (label, want) in [
        (Some("critical"), Severity::Critical),
        (Some("CRITICAL"), Severity::Critical),
        (Some("error"), Severity::Critical),
        (Some(" page "), Severity::Critical),
        (Some("warning"), Severity::Warning),
        (Some("info"), Severity::Warning),
        (Some("major"), Severity::Warning),
        (None, Severity::Warning),
    ] {
        assert_eq!(map_severity(label), want, "{label:?}");
    }
}

#[test]
fn deduplicates_by_fingerprint_keeping_the_last() {
    let mut p = alertmanager_payload();
    let mut again = p["alerts"][0].clone();
    again["status"] = json!("resolved");
    again["endsAt"] = json!("2026-11-30T18:01:00Z");
    p["alerts"].as_array_mut().unwrap().push(again);
    let r = parse_json(&p).unwrap();
    assert_eq!(r.alerts.len(), 2);
    assert_eq!(r.alerts[0].fingerprint, "3b15fd163d7b6dd2");
    assert_eq!(r.alerts[0].status, ReceivedStatus::Resolved);
}

#[test]
fn a_missing_fingerprint_is_the_labels_fingerprint() {
    let mut p = alertmanager_payload();
    p["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("fingerprint");
    p["alerts"][1]["fingerprint"] = json!("");
    let r = parse_json(&p).unwrap();
    for a in &r.alerts {
        assert_eq!(a.fingerprint, a.labels.fingerprint());
    }
    // The bare minimum Alertmanager's own test API takes, sent on.
    let min = json!({"alerts": [{"status": "firing", "labels": {"alertname": "x"}, "startsAt": "2026-01-01T00:00:00Z"}]});
    let r = parse_json(&min).unwrap();
    assert_eq!(r.alerts[0].ends_at_ms, None);
    assert!(r.alerts[0].annotations.is_empty());
    assert_eq!(r.alerts[0].severity, Severity::Warning);
}

fn err(v: serde_json::Value) -> ReceiveError {
    parse_json(&v).unwrap_err()
}

#[test]
fn malformed_payloads_are_typed_errors() {
    let e = parse(b"{not json").unwrap_err();
    assert!(matches!(e, ReceiveError::Json { .. }), "{e:?}");
    let e = parse(b"").unwrap_err();
    assert!(matches!(e, ReceiveError::Json { .. }), "{e:?}");
    let e = err(json!({"version": "4"}));
    assert!(e.to_string().contains("missing field `alerts`"), "{e}");
    let e = err(json!({"alerts": {"a": 1}}));
    assert!(e.to_string().contains("a list of alerts"), "{e}");

    let mut p = alertmanager_payload();
    p["alerts"][1]["labels"]["job"] = json!(7);
    let e = err(p);
    match &e {
        ReceiveError::Json { path, message } => {
            assert_eq!(path, "alerts[1].labels.job");
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let mut p = alertmanager_payload();
    p["alerts"][0].as_object_mut().unwrap().remove("startsAt");
    let e = err(p);
    assert!(
        e.to_string().contains("alerts[0]") && e.to_string().contains("startsAt"),
        "{e}"
    );

    let mut p = alertmanager_payload();
    p["alerts"][1]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("alertname");
    assert_eq!(err(p), ReceiveError::MissingAlertname { index: 1 });

    let mut p = alertmanager_payload();
    p["alerts"][0]["labels"]["alertname"] = json!(" ");
    assert_eq!(err(p), ReceiveError::MissingAlertname { index: 0 });

    let mut p = alertmanager_payload();
    p["alerts"][0]["status"] = json!("pending");
    assert!(matches!(err(p), ReceiveError::BadStatus { index: 0, status } if status == "pending"));

    let mut p = alertmanager_payload();
    p["alerts"][1]["endsAt"] = json!("yesterday");
    let e = err(p);
    assert!(
        matches!(
            &e,
            ReceiveError::BadTime {
                index: 1,
                field: "endsAt",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("RFC 3339"));

    // Nulls where a value is optional are fine; where required, an error.
    let mut p = alertmanager_payload();
    p["alerts"][0]["annotations"] = json!(null);
    p["alerts"][0]["endsAt"] = json!(null);
    assert!(parse_json(&p).is_ok());
    let mut p = alertmanager_payload();
    p["alerts"][0]["labels"] = json!(null);
    assert!(matches!(err(p), ReceiveError::Json { .. }));
}

#[test]
fn absurd_sizes_are_refused() {
    let one = r#"{"status":"firing","labels":{"alertname":"x"},"startsAt":"2026-01-01T00:00:00Z"}"#;
    let many = |n: usize| format!(r#"{{"alerts":[{}]}}"#, vec![one; n].join(","));
    assert_eq!(parse(many(MAX_ALERTS).as_bytes()).unwrap().alerts.len(), 1);
    assert_eq!(
        parse(many(MAX_ALERTS + 1).as_bytes()).unwrap_err(),
        ReceiveError::TooManyAlerts {
            count: MAX_ALERTS + 1,
            max: MAX_ALERTS
        }
    );
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    assert!(matches!(
        parse(&big).unwrap_err(),
        ReceiveError::TooLarge { .. }
    ));
}

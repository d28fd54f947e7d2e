//! The `pagerduty` receiver against a real local HTTP server standing in for the Events API v2:
//! the exact trigger and resolve events (one `dedup_key` per group), the answers (202, 400
//! with PagerDuty's errors, 429 with Retry-After, 5xx, a refused connection), a storm's summary
//! and details within PagerDuty's limits, and the routing key in no error.

mod common;

use std::time::Duration;

use ballast_core::AlertState;
use ballast_notify::pagerduty::{
    dedup_key, PagerDutyConfig, PagerDutyNotifier, MAX_DETAILED, MAX_SUMMARY,
};
use ballast_notify::{Locale, Notifier, SendError};
use common::*;
use serde_json::json;

const KEY: &str = "R0UTINGsekretKEY0123456789abcdef";
const ACCEPTED: &str = r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#;

fn notifier(url: &str, extra: &str) -> PagerDutyNotifier {
    let config: PagerDutyConfig =
        toml::from_str(&format!("routing_key = {KEY:?}\nurl = {url:?}\n{extra}")).unwrap();
    PagerDutyNotifier::new(config).unwrap()
}

#[tokio::test]
async fn trigger_then_resolve_with_one_dedup_key() {
    let mut server = Server::start(vec![Reply::new(202, ACCEPTED)]).await;
    let n = notifier(&server.url("/v2/enqueue"), "source = \"shop-gateway\"");
    assert_eq!(n.kind(), "pagerduty");
    let firing = message(
        vec![alert("upstream-down", "10.0.0.1:80", CRIT)],
        Locale::En,
    );
    let a = &firing.alerts[0];
    let id = a.id.clone();
    assert_eq!(n.send(&firing).await.unwrap().answer, "202 Event processed");
    let req = server.next().await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/v2/enqueue");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let key = dedup_key(&firing);
    assert_eq!(
        req.json(),
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": "[FIRING:1] critical upstream-down app",
                "source": "shop-gateway",
                "severity": "critical",
                "timestamp": "2026-11-30T19:20:05Z",
                "custom_details": {
                    "firing": 1,
                    "resolved": 0,
                    "group": {"alertname": "upstream-down", "upstream": "app"},
                    "alerts": [{
                        "rule": "upstream-down",
                        "state": "firing",
                        "severity": "critical",
                        "labels": {"alertname": "upstream-down", "monitor": "shop-gateway",
                                   "server": "10.0.0.1:80", "upstream": "app"},
                        "value": 0.0,
                        "threshold": 1.0,
                        "since": "2026-11-30T19:20:05Z",
                        "annotations": {"summary": "app is down", "runbook": "https://wiki/rb"},
                        "url": format!("https://ballast.example/alerts#{id}"),
                    }],
                },
            },
            "client": "Ballast",
            "client_url": "https://ballast.example/alerts",
            "links": [{"href": "https://ballast.example/alerts", "text": "Ballast alerts"}],
        })
    );
    // A repeat of the same group updates the same incident...
    let mut again = firing.clone();
    again
        .alerts
        .push(alert("upstream-down", "10.0.0.2:80", WARN));
    again.at_unix_ms += 60_000;
    n.send(&again).await.unwrap();
    let v = server.next().await.json();
    assert_eq!(v["dedup_key"], key.as_str());
    assert_eq!(
        v["payload"]["summary"],
        "[FIRING:2] critical upstream-down app"
    );
    // ...and the group's resolution resolves it.
    let mut resolved = again.clone();
    for a in &mut resolved.alerts {
        a.state = AlertState::Resolved;
    }
    let resolved = message(resolved.alerts, Locale::En);
    n.send(&resolved).await.unwrap();
    assert_eq!(
        server.next().await.json(),
        json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": key})
    );
}

#[tokio::test]
async fn severities_and_the_default_source() {
    let mut server = Server::start(vec![Reply::new(202, ACCEPTED)]).await;
    let n = notifier(&server.url("/v2/enqueue"), "");
    let mut m = message(vec![alert("a", "s", WARN)], Locale::En);
    m.dashboard_url = None;
    n.send(&m).await.unwrap();
    let v = server.next().await.json();
    assert_eq!(v["payload"]["severity"], "warning");
    assert_eq!(v["payload"]["source"], "ballast");
    assert!(
        v.get("links").is_none() && v.get("client_url").is_none(),
        "{v}"
    );
    assert!(v["payload"]["custom_details"]["alerts"][0]
        .get("url")
        .is_none());
}

#[tokio::test]
async fn answers_classify() {
    let server = Server::start(vec![
        Reply::new(
            400,
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.severity' is invalid"]}"#,
        ),
        Reply::new(
            429,
            r#"{"status":"throttle event","message":"Requests for this service are arriving too quickly."}"#,
        )
        .header("Retry-After", "30"),
        Reply::new(500, "Internal Server Error"),
    ])
    .await;
    let n = notifier(&server.url("/v2/enqueue"), "");
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::permanent(
            "pagerduty receiver: refused with 400 Event object is invalid: 'payload.severity' \
             is invalid"
        )
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::Retry {
            reason: "pagerduty receiver: answered 429 Requests for this service are arriving \
                     too quickly."
                .into(),
            retry_after: Some(Duration::from_secs(30)),
        }
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::Retry {
            reason: "pagerduty receiver: answered 500 Internal Server Error".into(),
            retry_after: None,
        }
    );
}

#[tokio::test]
async fn the_routing_key_is_in_no_error_nor_debug() {
    let server = Server::start(vec![Reply::new(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["Routing key R0UTINGsekretKEY0123456789abcdef is not valid"]}"#,
    )])
    .await;
    let n = notifier(&server.url("/v2/enqueue"), "");
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    let e = n.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::permanent(
            "pagerduty receiver: refused with 400 Event object is invalid: Routing key \
             [redacted] is not valid"
        )
    );
    let url = closed_port_url("/v2/enqueue").await;
    let refused = notifier(&url, "").send(&m).await.unwrap_err();
    assert!(refused.is_retryable());
    assert!(
        refused
            .to_string()
            .starts_with("pagerduty receiver: connect failed: "),
        "{refused}"
    );
    let config: PagerDutyConfig = toml::from_str(&format!("routing_key = {KEY:?}")).unwrap();
    for s in [
        format!("{e:?}"),
        refused.to_string(),
        format!("{refused:?}"),
        format!("{n:?}"),
        format!("{config:?}"),
    ] {
        assert!(!s.contains("sekret"), "{s}");
    }
    // A missing key names the three ways to give it.
    let e = PagerDutyNotifier::new(toml::from_str("source = \"x\"").unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pagerduty receiver: one of routing_key, routing_key_file or routing_key_env is required"
    );
}

#[tokio::test]
async fn a_storm_fits_pagerdutys_limits() {
    let mut server = Server::start(vec![Reply::new(202, ACCEPTED)]).await;
    let n = notifier(&server.url("/v2/enqueue"), "");
    let mut storm = storm();
    // A very long group name makes the title longer than PagerDuty's summary limit.
    storm.group_labels = storm.group_labels.with("upstream", "x".repeat(2000));
    n.send(&storm).await.unwrap();
    let v = server.next().await.json();
    let summary = v["payload"]["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), MAX_SUMMARY);
    assert!(summary.starts_with("[FIRING:500] critical upstream-down xxx"));
    let details = &v["payload"]["custom_details"];
    assert_eq!(details["firing"], 500);
    assert_eq!(details["alerts"].as_array().unwrap().len(), MAX_DETAILED);
    let more = details["more"].as_str().unwrap();
    assert!(more.starts_with("and 400 more: "), "{more}");
    let body = v.to_string();
    for a in &storm.alerts {
        let server = a.labels.get("server").unwrap();
        assert!(body.contains(server), "{server} is not named");
    }
}

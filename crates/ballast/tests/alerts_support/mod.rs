//! Support for the alerting tests: the admin API's monitoring endpoints read as JSON, a
//! gateway config whose only purpose is to run monitors, waiting for one alert to reach a
//! state, and the `alert_changed` events of one alert as (from → to) steps.
#![allow(dead_code)]

use serde_json::Value;

use super::common::*;

/// A gateway config with a listener on `port`, one catch-all route to an upstream `app` whose
/// only server is `backend`, and `extra` (monitors, rules...) appended.
pub fn monitoring_config(port: u16, backend: std::net::SocketAddr, extra: &str) -> String {
    format!(
        r#"{}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
{extra}
"#,
        preamble(port)
    )
}

/// Starts a gateway on `config` and waits until its monitoring answers (it starts after the
/// admin API, once the store had its chance to restore alerts).
pub fn start(name: &str, config: &str) -> Gateway {
    let gw = Gateway::start(name, config);
    wait_until(
        "monitoring to answer",
        std::time::Duration::from_secs(15),
        || gw.admin_get("/api/v1/monitors").0 == 200,
    );
    gw
}

/// `POST path` with a JSON `body` on the admin API: (status, body).
pub fn post_json(gw: &Gateway, path: &str, body: &str) -> (u16, String) {
    raw_http(
        gw.admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// `DELETE path` on the admin API: (status, body).
pub fn delete(gw: &Gateway, path: &str) -> (u16, String) {
    raw_http(
        gw.admin,
        &format!("DELETE {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"),
    )
}

/// `GET /api/v1/alerts`.
pub fn alerts(gw: &Gateway) -> Vec<Value> {
    let (code, body) = gw.admin_get("/api/v1/alerts");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The listed alerts of rule (`alertname`) `rule`.
pub fn alerts_of(gw: &Gateway, rule: &str) -> Vec<Value> {
    alerts(gw)
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == rule)
        .collect()
}

/// The one listed alert of `rule` on `monitor`, if any.
pub fn alert_on(gw: &Gateway, rule: &str, monitor: &str) -> Option<Value> {
    alerts_of(gw, rule)
        .into_iter()
        .find(|a| a["labels"]["monitor"] == monitor)
}

/// Whether `alert` is firing (at `severity`, when given).
pub fn firing(alert: &Value, severity: Option<&str>) -> bool {
    alert["state"] == "firing" && severity.is_none_or(|s| alert["severity"] == s)
}

/// Whether `rule` on `monitor` is firing (at `severity`, when given).
pub fn is_firing(gw: &Gateway, rule: &str, monitor: &str, severity: Option<&str>) -> bool {
    alert_on(gw, rule, monitor).is_some_and(|a| firing(&a, severity))
}

/// Whether `rule` on `monitor` is neither pending nor firing (never raised, or resolved).
pub fn is_quiet(gw: &Gateway, rule: &str, monitor: &str) -> bool {
    alert_on(gw, rule, monitor).is_none_or(|a| a["state"] != "firing" && a["state"] != "pending")
}

/// `GET /api/v1/monitors`, the entry named `name`.
pub fn monitor(gw: &Gateway, name: &str) -> Value {
    let (code, body) = gw.admin_get("/api/v1/monitors");
    assert_eq!(code, 200, "{body}");
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    all.into_iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("monitor {name} in {body}"))
}

/// The number of reading `value` in the last run of `monitor` (first series).
pub fn reading(gw: &Gateway, name: &str, value: &str) -> Option<f64> {
    monitor(gw, name)["last"]["readings"]
        .as_array()?
        .iter()
        .find(|r| r["value"] == value)
        .and_then(|r| r["number"].as_f64())
}

/// Number of runs `monitor` has finished so far.
pub fn runs(gw: &Gateway, name: &str) -> u64 {
    monitor(gw, name)["runs"].as_u64().unwrap_or(0)
}

/// A loopback address nothing listens on (its port was free a moment ago).
pub fn nowhere() -> std::net::SocketAddr {
    local(free_port())
}

/// Generous bound for an alert to change: the machine is shared, so only a hung test fails it.
pub const ALERT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The alert of `rule` whose labels include every (name, value) of `labels`.
pub fn alert_of(gw: &Gateway, rule: &str, labels: &[(&str, &str)]) -> Option<Value> {
    alerts(gw).into_iter().find(|a| {
        a["rule"] == rule
            && labels
                .iter()
                .all(|(k, v)| a["labels"][*k].as_str() == Some(*v))
    })
}

/// `state` of an alert, with its severity when firing: `firing/critical`, `pending`...
pub fn state_of(a: &Value) -> String {
    match a["severity"].as_str() {
        Some(s) if a["state"] == "firing" => format!("firing/{s}"),
        _ => a["state"].as_str().unwrap_or("?").to_string(),
    }
}

/// Waits until the alert of `rule` (with `labels`) is in `state` (as [`state_of`] writes it)
/// and returns it; panics after `within` with the alerts listed.
pub fn wait_alert(
    gw: &Gateway,
    rule: &str,
    labels: &[(&str, &str)],
    state: &str,
    within: std::time::Duration,
) -> Value {
    let start = std::time::Instant::now();
    loop {
        if let Some(a) = alert_of(gw, rule, labels) {
            if state_of(&a) == state {
                return a;
            }
        }
        assert!(
            start.elapsed() < within,
            "timed out waiting for alert {rule} {labels:?} to be {state}; alerts: {:#?}",
            alerts(gw)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The `alert_changed` events of alert `id`, oldest first, as `from→to` texts
/// (`inactive→firing/warning`, `firing/critical→resolved`...).
pub fn changes_of(gw: &Gateway, id: &str) -> Vec<String> {
    let state = |s: &Value| match s["severity"].as_str() {
        Some(sev) => format!("{}/{sev}", s["state"].as_str().unwrap_or("?")),
        None => s["state"].as_str().unwrap_or("?").to_string(),
    };
    gw.events_of("alert_changed")
        .into_iter()
        .filter(|e| e["id"] == id)
        .map(|e| format!("{}→{}", state(&e["from"]), state(&e["to"])))
        .collect()
}

//! Resolutions through the binary, with a Slack and a webhook receiver on one route:
//! - an alert that fired and was notified, then resolves (Alertmanager posts `resolved`):
//!   exactly one resolved message per receiver (green, `[RESOLVED]`; webhook status
//!   `resolved`), and no second firing message;
//! - an alert that fires and resolves within `group_wait` (never notified) produces no
//!   message at all, neither firing nor resolved, while a witness alert of another group,
//!   fired at the same moment, is sent once its `group_wait` is over.

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;

use std::time::Duration;

use common::*;
use notify_support::*;
use notify_tb::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn gateway(name: &str, slack: &Receiver, hook: &Receiver, group_wait: &str) -> Gateway {
    let extra = format!(
        r#"
[[receiver]]
name = "ops"
slack = {{ url = "{slack}" }}
webhook = {{ url = "{hook}" }}

[[notify]]
receivers = ["ops"]
group_wait = "{group_wait}"
group_interval = "1s"
"#,
        slack = slack.url("/slack"),
        hook = hook.url("/hook"),
    );
    notify_gateway(name, &extra)
}

fn labels<'a>(rule: &'a str, server: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("alertname", rule),
        ("severity", "critical"),
        ("server", server),
    ]
}

/// The Slack messages whose header starts with `prefix`.
fn slack_with(slack: &Receiver, prefix: &str) -> Vec<Value> {
    slack
        .received()
        .iter()
        .map(Received::json)
        .filter(|m| {
            m["blocks"][0]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(prefix))
        })
        .collect()
}

/// The webhook posts with `status`.
fn hook_with(hook: &Receiver, status: &str) -> Vec<Value> {
    hook.received()
        .iter()
        .map(Received::json)
        .filter(|m| m["status"] == status)
        .collect()
}

#[test]
fn a_notified_alert_that_resolves_is_announced_resolved_once_per_receiver() {
    let (slack, hook) = (Receiver::start(), Receiver::start());
    let gw = gateway("notify-resolved", &slack, &hook, "0s");
    let start = now_ms();
    am_post(
        &gw,
        vec![am_alert("firing", &labels("ServerDown", "web-1"), start)],
    );
    slack.wait_for(1, WAIT);
    hook.wait_for(1, WAIT);
    let firing = slack_with(&slack, "[FIRING:1] critical ServerDown");
    assert_eq!(firing.len(), 1, "{:?}", slack.received());
    assert_eq!(hook_with(&hook, "firing").len(), 1);

    am_post(
        &gw,
        vec![am_alert("resolved", &labels("ServerDown", "web-1"), start)],
    );
    slack.wait_for(2, WAIT);
    hook.wait_for(2, WAIT);
    // Nothing more: no second resolved message, no repeat of the firing one.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(slack.received().len(), 2, "{:?}", slack.received());
    assert_eq!(hook.received().len(), 2, "{:?}", hook.received());

    let resolved = slack_with(&slack, "[RESOLVED] ServerDown");
    assert_eq!(resolved.len(), 1, "{:?}", slack.received());
    let m = &resolved[0];
    assert_eq!(m["attachments"][0]["color"], "#2e7d32");
    let section = m["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.starts_with("*resolved ServerDown (server=web-1 severity=critical)*"),
        "{section}"
    );
    let resolved = hook_with(&hook, "resolved");
    assert_eq!(resolved.len(), 1);
    let m = &resolved[0];
    assert_eq!(m["severity"], Value::Null);
    assert_eq!(m["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(m["alerts"][0]["state"], "resolved");
    assert_eq!(m["alerts"][0]["labels"]["server"], "web-1");

    for target in ["ops/slack", "ops/webhook"] {
        let log = log_of(&gw, target);
        assert_eq!(log.len(), 2, "{target}: {log:?}");
        assert!(log.iter().all(|l| l["state"] == "delivered"), "{log:?}");
    }
}

#[test]
fn an_alert_resolved_within_group_wait_is_never_announced() {
    let (slack, hook) = (Receiver::start(), Receiver::start());
    let gw = gateway("notify-brief", &slack, &hook, "4s");
    let start = now_ms();
    am_post(
        &gw,
        vec![
            am_alert("firing", &labels("Blip", "web-2"), start),
            am_alert("firing", &labels("Witness", "web-3"), start),
        ],
    );
    let blip = alert_id(&gw, "Blip", "web-2");
    std::thread::sleep(Duration::from_millis(500));
    am_post(
        &gw,
        vec![am_alert("resolved", &labels("Blip", "web-2"), start)],
    );
    alerts_support::wait_alert(
        &gw,
        "Blip",
        &[("server", "web-2")],
        "resolved",
        Duration::from_secs(10),
    );
    // The witness, of another group with the same group_wait, is sent: the blip's wait is over.
    slack.wait_for(1, WAIT);
    hook.wait_for(1, WAIT);
    std::thread::sleep(Duration::from_secs(3));
    for (name, got) in [("slack", slack.received()), ("webhook", hook.received())] {
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        let body = &got[0].body;
        assert!(body.contains("Witness"), "{name}: {body}");
        assert!(
            !body.contains("Blip") && !body.contains("web-2") && !body.contains(&blip),
            "{name}: {body}"
        );
    }
    for target in ["ops/slack", "ops/webhook"] {
        let log = log_of(&gw, target);
        assert_eq!(log.len(), 1, "{target}: {log:?}");
        assert!(
            log[0]["group_key"]
                .as_str()
                .is_some_and(|k| k.contains("Witness")),
            "{log:?}"
        );
    }
}

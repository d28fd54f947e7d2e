//! PagerDuty and Telegram through the binary: one receiver with both channels, an alert
//! injected through `POST /api/v1/alertmanager` firing, then resolved.
//! - PagerDuty gets a `trigger`, then a `resolve` with the same `dedup_key`;
//! - Telegram gets the firing message, then (after one `502` quoting its token, retried) the
//!   resolved one, at `/bot<token>/sendMessage`;
//! - neither the routing key nor the bot token (both written inline) appears in the gateway's
//!   log, the notification log, the metrics or the config history.

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
const KEY: &str = "pdkey0sekret0123456789abcdef0123";
const TOKEN: &str = "123456:tgSEKRETtoken-xyz";

#[test]
fn a_firing_then_resolved_alert_triggers_then_resolves_one_incident() {
    let (pd, tg) = (Receiver::start(), Receiver::start());
    // Telegram's first answer is a 502 quoting the path, so an error with it is logged.
    tg.script(vec![
        Answer::ok(),
        Answer {
            status: 502,
            headers: Vec::new(),
            body: format!("upstream failed for /bot{TOKEN}/sendMessage"),
        },
    ]);
    let extra = format!(
        r#"
[[receiver]]
name = "pager"
pagerduty = {{ routing_key = "{KEY}", url = "{pd}", source = "test-gateway" }}
telegram = {{ bot_token = "{TOKEN}", chat_id = "-100777", api_url = "{tg}" }}

[[notify]]
receivers = ["pager"]
group_wait = "0s"
group_interval = "1s"
"#,
        pd = pd.url("/v2/enqueue"),
        tg = tg.url(""),
    );
    let gw = notify_gateway("notify-pagerduty", &extra);
    let labels = [
        ("alertname", "ServerDown"),
        ("severity", "critical"),
        ("server", "web-1"),
    ];
    let start = now_ms();
    am_post(&gw, vec![am_alert("firing", &labels, start)]);
    pd.wait_for(1, WAIT);
    tg.wait_for(1, WAIT);
    am_post(&gw, vec![am_alert("resolved", &labels, start)]);
    pd.wait_for(2, WAIT);
    tg.wait_for(3, WAIT);
    std::thread::sleep(Duration::from_secs(2));

    let events: Vec<Value> = pd.received().iter().map(Received::json).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let (trigger, resolve) = (&events[0], &events[1]);
    assert_eq!(pd.received()[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], KEY);
    assert_eq!(
        trigger["payload"]["summary"],
        "[FIRING:1] critical ServerDown"
    );
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "test-gateway");
    assert_eq!(
        trigger["payload"]["custom_details"]["alerts"][0]["labels"]["server"],
        "web-1"
    );
    assert_eq!(
        trigger["links"][0]["href"],
        "http://ballast.test:9900/alerts"
    );
    let key = trigger["dedup_key"].as_str().unwrap();
    assert!(key.starts_with("ballast-"), "{key}");
    assert_eq!(
        resolve,
        &serde_json::json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": key})
    );

    let posts = tg.received();
    assert_eq!(posts.len(), 3, "{posts:?}");
    for p in &posts {
        assert_eq!(p.path, format!("/bot{TOKEN}/sendMessage"));
        assert_eq!(p.json()["chat_id"], "-100777");
    }
    let text = |i: usize| posts[i].json()["text"].as_str().unwrap().to_string();
    assert!(
        text(0).starts_with("[FIRING:1] critical ServerDown\n\n"),
        "{}",
        text(0)
    );
    assert!(
        text(1).starts_with("[RESOLVED] ServerDown\n\n"),
        "{}",
        text(1)
    );
    assert_eq!(text(1), text(2), "the retry sends the same message");

    for target in ["pager/pagerduty", "pager/telegram"] {
        let log = log_of(&gw, target);
        assert_eq!(log.len(), 2, "{target}: {log:?}");
        assert!(log.iter().all(|l| l["state"] == "delivered"), "{log:?}");
    }
    assert_eq!(log_of(&gw, "pager/telegram")[0]["attempts"], 2);

    // The secrets: nowhere shown.
    wait_versions(&gw, 1);
    let mut texts = vec![
        ("stderr".to_string(), gw.stderr()),
        (
            "notifications".to_string(),
            gw.admin_get("/api/v1/notifications?limit=1000").1,
        ),
        ("metrics".to_string(), gw.metrics()),
    ];
    let (_, versions) = gw.admin_get("/api/v1/config/versions");
    for v in serde_json::from_str::<Vec<Value>>(&versions).unwrap() {
        let id = v["id"].to_string().trim_matches('"').to_string();
        let path = format!("/api/v1/config/versions/{id}");
        let (code, body) = gw.admin_get(&path);
        assert_eq!(code, 200, "{path}: {body}");
        assert!(body.contains("chat_id"), "{path}: {body}");
        texts.push((path, body));
    }
    assert!(
        texts[0].1.contains(
            "telegram receiver: answered 502 upstream failed for /bot[redacted]/sendMessage"
        ),
        "the retried error is logged: {}",
        texts[0].1
    );
    for (place, text) in &texts {
        for secret in ["sekret", "SEKRET"] {
            assert!(!text.contains(secret), "{secret} shown in {place}: {text}");
        }
    }
}

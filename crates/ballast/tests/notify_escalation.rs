//! Escalation through the binary: a route for critical alerts sends to `first` and escalates
//! to `second` (a Slack and a webhook channel) with `escalate = { after = "3s" }`. Two
//! critical alerts start together; one is acknowledged at once. The unacknowledged one reaches
//! `second` once per channel, saying it is an escalation (the title, and the webhook's
//! `escalated_after_ms`); the acknowledged one never reaches `second`.

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;

use std::time::{Duration, Instant};

use alerts_support::post_json;
use notify_support::*;
use notify_tb::*;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn an_unacknowledged_critical_escalates_once_and_an_acknowledged_one_does_not() {
    let first = Receiver::start();
    let (second_slack, second_hook) = (Receiver::start(), Receiver::start());
    let extra = format!(
        r#"
[[receiver]]
name = "first"
slack = {{ url = "{first}" }}

[[receiver]]
name = "second"
slack = {{ url = "{second_slack}" }}
webhook = {{ url = "{second_hook}" }}

[[notify]]
match = {{ severity = "critical" }}
receivers = ["first"]
group_interval = "1s"
escalate = {{ after = "3s", to = ["second"] }}
"#,
        first = first.url("/first"),
        second_slack = second_slack.url("/second"),
        second_hook = second_hook.url("/hook"),
    );
    let gw = notify_gateway("notify-escalation", &extra);

    // Both start within the next second (startsAt has whole seconds).
    let posted = Instant::now();
    let starts = now_ms() + 1000;
    let labels = |server| {
        [
            ("alertname", "ServerDown"),
            ("severity", "critical"),
            ("server", server),
        ]
    };
    am_post(
        &gw,
        vec![
            am_alert("firing", &labels("ignored-1"), starts),
            am_alert("firing", &labels("handled-1"), starts),
        ],
    );
    let ignored = alert_id(&gw, "ServerDown", "ignored-1");
    let handled = alert_id(&gw, "ServerDown", "handled-1");
    let (code, body) = post_json(
        &gw,
        &format!("/api/v1/alerts/{handled}/ack"),
        r#"{"by":"alice"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        posted.elapsed() < Duration::from_secs(2),
        "the ack came too late to test anything: {:?}",
        posted.elapsed()
    );

    // `first` hears about both at once (critical: group_wait 0s).
    let got = first.wait_for(1, WAIT);
    let m = got[0].json();
    assert_eq!(
        m["blocks"][0]["text"]["text"],
        "[FIRING:2] critical ServerDown"
    );

    // The escalation of the ignored one, once per channel of `second`.
    second_slack.wait_for(1, WAIT);
    second_hook.wait_for(1, WAIT);
    let escalated_after = posted.elapsed();
    println!("post → escalation: {escalated_after:?}");
    assert!(
        escalated_after >= Duration::from_secs(2),
        "escalated before `after`: {escalated_after:?}"
    );
    // Well past the acknowledged one's `after` too, and a few more rounds: nothing more.
    std::thread::sleep(Duration::from_secs(3));
    let (slack_got, hook_got) = (second_slack.received(), second_hook.received());
    assert_eq!(slack_got.len(), 1, "{slack_got:?}");
    assert_eq!(hook_got.len(), 1, "{hook_got:?}");
    for body in [&slack_got[0].body, &hook_got[0].body] {
        assert!(body.contains("ignored-1"), "{body}");
        assert!(
            !body.contains("handled-1") && !body.contains(&handled),
            "{body}"
        );
    }
    let s = slack_got[0].json();
    let title = s["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(
        title, "[FIRING:1] critical ServerDown — escalated: not acknowledged after 3s",
        "{s}"
    );
    assert_eq!(s["attachments"][0]["color"], "#d32f2f");
    let h = hook_got[0].json();
    assert_eq!(h["escalated_after_ms"], 3000, "{h}");
    assert_eq!(h["title"], title);
    assert_eq!(h["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(h["alerts"][0]["id"], ignored.as_str());
    // `first` heard nothing more: the escalation is not a message to it.
    assert_eq!(first.received().len(), 1, "{:?}", first.received());

    for target in ["second/slack", "second/webhook"] {
        let log = log_of(&gw, target);
        assert_eq!(log.len(), 1, "{target}: {log:?}");
        assert_eq!(log[0]["state"], "delivered", "{log:?}");
    }
    assert_eq!(log_of(&gw, "first/slack").len(), 1);
}

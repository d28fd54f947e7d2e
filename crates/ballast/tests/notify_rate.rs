//! A receiver's rate limit through the binary: a webhook receiver with
//! `rate = { messages = 1, per = "1s", burst = 2 }` and five groups firing at once (one
//! message each): the first two go at once (the burst), the other three one second apart, so
//! the receiver never gets more than the rate allows; every message still arrives, once, and
//! `ballast_notifications_rate_limited_total` counts the holds. A second receiver on the same
//! route, without a limit of its own beyond the default burst of 5, gets all five at once: one
//! receiver's limit never slows another.

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;

use std::time::Duration;

use common::*;
use notify_support::*;
use notify_tb::*;

#[test]
fn a_receivers_rate_spaces_its_messages_and_slows_no_other() {
    let (slow, fast) = (Receiver::start(), Receiver::start());
    let extra = format!(
        r#"
[[receiver]]
name = "slow"
webhook = {{ url = "{slow}" }}
rate = {{ messages = 1, per = "1s", burst = 2 }}

[[receiver]]
name = "fast"
webhook = {{ url = "{fast}" }}

[[notify]]
receivers = ["slow", "fast"]
group_by = ["alertname"]
group_wait = "0s"
"#,
        slow = slow.url("/slow"),
        fast = fast.url("/fast"),
    );
    let gw = notify_gateway("notify-rate", &extra);
    let alerts = (1..=5)
        .map(|i| {
            am_alert(
                "firing",
                &[
                    ("alertname", format!("Rule{i}").as_str()),
                    ("severity", "warning"),
                    ("server", "s1"),
                ],
                now_ms(),
            )
        })
        .collect();
    am_post(&gw, alerts);
    let got = slow.wait_for(5, Duration::from_secs(30));
    let fast_got = fast.wait_for(5, Duration::from_secs(30));
    // Every group once at each receiver.
    for r in [&got, &fast_got] {
        let mut names: Vec<String> = r
            .iter()
            .map(|m| {
                m.json()["group_labels"]["alertname"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["Rule1", "Rule2", "Rule3", "Rule4", "Rule5"]);
    }
    // At the limited one: after the burst of 2, each message at least ~1 s after the one
    // before (a lower bound: a slow machine only makes the gaps longer).
    let gaps: Vec<u128> = got
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).as_millis())
        .collect();
    println!("gaps at the limited receiver: {gaps:?} ms");
    for (i, gap) in gaps.iter().enumerate().skip(1) {
        assert!(
            *gap >= 900,
            "message {} came {gap} ms after the one before",
            i + 2
        );
    }
    let first_to_last = got[4].at.duration_since(got[0].at).as_millis();
    assert!(first_to_last >= 2700, "5 messages in {first_to_last} ms");
    // The other receiver was not held back: all five within the time the slow one took for
    // its third (a generous bound against scheduling noise, not a speed claim).
    let fast_span = fast_got[4].at.duration_since(fast_got[0].at);
    assert!(
        fast_span < got[4].at.duration_since(got[0].at),
        "fast took {fast_span:?}"
    );
    let metrics = gw.metrics();
    let held = metric_value(
        &metrics,
        "ballast_notifications_rate_limited_total{target=\"slow/webhook\"}",
    )
    .unwrap_or(0.0);
    assert!(held >= 3.0, "held {held} times:\n{metrics}");
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_notifications_total{target=\"slow/webhook\",result=\"delivered\"}"
        ),
        Some(5.0)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(slow.received().len(), 5, "nothing twice");
}

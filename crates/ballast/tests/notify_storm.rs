//! A storm through the binary: 500 alerts (500 distinct `server` labels, two rules) arrive
//! from Alertmanager in five posts over about four seconds. A default route (no match, so the
//! default `group_wait` of 10s, grouped by `alertname`) sends to a Slack, a Dooray, a signed
//! webhook and (when aiosmtpd is installed) an email receiver. Each receiver must get at most
//! five messages (here: one per rule), and together the messages each receiver got must name
//! all 500 servers. The payloads must have their documented shapes; the webhook's
//! `X-Ballast-Signature` must verify with HMAC-SHA256 over the body.

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use notify_support::*;
use notify_tb::*;
use serde_json::Value;

const SECRET: &str = "storm-signing-key";
const WAIT: Duration = Duration::from_secs(40);

fn server(i: usize) -> String {
    format!("srv-{i:03}")
}

/// The rule of server `i`: the first 300 are down, the other 200 have a full disk.
fn rule(i: usize) -> &'static str {
    if i < 300 {
        "ServerDown"
    } else {
        "DiskFull"
    }
}

/// Every `server=srv-NNN` named in `text`.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("srv-") {
        let digits = &text[at + 4..(at + 7).min(text.len())];
        if digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
            out.insert(format!("srv-{digits}"));
        }
    }
    out
}

fn all_servers() -> BTreeSet<String> {
    (0..500).map(server).collect()
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[test]
fn a_storm_of_500_alerts_is_a_few_messages_per_receiver_naming_all_500() {
    let python = python();
    let smtp = python.as_deref().map(|p| Smtp::start(p, "store"));
    let slack = Receiver::start();
    let dooray = Receiver::start();
    let hook = Receiver::start();
    let email = smtp
        .as_ref()
        .map(|s| {
            format!(
                r#"email = {{ to = ["Web Ops <web-ops@example.com>"], from = "ballast@example.com", relays = ["{}"], tls = "none", timeout = "5s" }}"#,
                s.relay()
            )
        })
        .unwrap_or_default();
    let extra = format!(
        r#"
[[receiver]]
name = "ops"
slack = {{ url = "{slack}" }}
dooray = {{ url = "{dooray}", bot_name = "Ballast Storm", bot_icon_image = "https://icons.test/ballast.png" }}
webhook = {{ url = "{hook}", signing_secret = "{SECRET}" }}
{email}

[[notify]]
receivers = ["ops"]
"#,
        slack = slack.url("/services/T/B/x"),
        dooray = dooray.url("/services/1/2/y"),
        hook = hook.url("/hook"),
    );
    let gw = notify_gateway("notify-storm", &extra);

    // Five posts of 100, one every ~0.9 s, both rules mixed in each.
    let started = Instant::now();
    let since = now_ms();
    for post in 0..5 {
        let alerts = (0..100)
            .map(|k| {
                let i = k * 5 + post;
                am_alert(
                    "firing",
                    &[
                        ("alertname", rule(i)),
                        ("severity", "critical"),
                        ("server", &server(i)),
                    ],
                    since,
                )
            })
            .collect();
        am_post(&gw, alerts);
        if post < 4 {
            std::thread::sleep(Duration::from_millis(900));
        }
    }
    let posted = started.elapsed();
    assert!(posted < Duration::from_secs(10), "posting took {posted:?}");
    wait_until("500 alerts listed", WAIT, || {
        alerts_support::alerts(&gw)
            .iter()
            .filter(|a| a["state"] == "firing")
            .count()
            == 500
    });

    // One message per rule at each receiver.
    slack.wait_for(2, WAIT);
    dooray.wait_for(2, WAIT);
    hook.wait_for(2, WAIT);
    if let Some(s) = &smtp {
        wait_until("two emails", WAIT, || s.stored().len() >= 2);
    }
    println!("first post → all messages: {:?}", started.elapsed());
    // Nothing more comes.
    std::thread::sleep(Duration::from_secs(3));
    let (slack_got, dooray_got, hook_got) = (slack.received(), dooray.received(), hook.received());
    for (name, n) in [
        ("slack", slack_got.len()),
        ("dooray", dooray_got.len()),
        ("webhook", hook_got.len()),
    ] {
        assert_eq!(n, 2, "{name} got {n} messages");
    }

    // Slack: text, blocks (header first, at most 50), a red attachment; the blocks name all.
    let mut seen = BTreeSet::new();
    for r in &slack_got {
        assert_eq!(r.header("content-type"), Some("application/json"));
        let m = r.json();
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        assert_eq!(blocks[0]["type"], "header");
        let header = text_of(&blocks[0]["text"]["text"]);
        assert!(
            header == "[FIRING:300] critical ServerDown"
                || header == "[FIRING:200] critical DiskFull",
            "{header}"
        );
        // 20 alerts written out, then the rest summed up.
        assert!(blocks[1..].iter().all(|b| b["type"] == "section"));
        assert!(blocks.len() > 21, "{} blocks", blocks.len());
        let more = text_of(&blocks[21]["text"]["text"]);
        let n = if header.contains("ServerDown") {
            280
        } else {
            180
        };
        assert!(more.starts_with(&format!("and {n} more: ")), "{more}");
        assert_eq!(m["attachments"][0]["color"], "#d32f2f");
        assert!(text_of(&m["text"]).starts_with(header), "{}", m["text"]);
        for b in blocks {
            seen.extend(named(text_of(&b["text"]["text"])));
        }
    }
    assert_eq!(seen, all_servers(), "Slack: missing {:?}", missing(&seen));

    // Dooray: botName, botIconImage, text (the title), coloured attachments naming all.
    let mut seen = BTreeSet::new();
    for r in &dooray_got {
        let m = r.json();
        assert_eq!(m["botName"], "Ballast Storm");
        assert_eq!(m["botIconImage"], "https://icons.test/ballast.png");
        let title = text_of(&m["text"]);
        assert!(title.starts_with("[FIRING:"), "{title}");
        let atts = m["attachments"].as_array().unwrap();
        // 20 alerts, then the rest in attachments of at most 3000 characters each.
        assert!(atts.len() > 21, "20 alerts and the rest: {}", atts.len());
        assert!(atts[..20].iter().all(|a| a["color"] == "red"), "{atts:?}");
        assert!(atts[20..]
            .iter()
            .all(|a| a["color"] == "gray" && text_of(&a["text"]).chars().count() <= 3000));
        for a in atts {
            seen.extend(named(text_of(&a["title"])));
            seen.extend(named(text_of(&a["text"])));
        }
    }
    assert_eq!(seen, all_servers(), "Dooray: missing {:?}", missing(&seen));

    // Webhook: schema v1 with every alert, signed.
    let mut seen = BTreeSet::new();
    for r in &hook_got {
        let sig = r.header("x-ballast-signature").expect("signed");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
        let hex = sig.strip_prefix("sha256=").expect("sha256=");
        let tag: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        ring::hmac::verify(&key, r.body.as_bytes(), &tag).expect("the signature verifies");
        let m = r.json();
        assert_eq!(m["version"], "1");
        assert_eq!(m["status"], "firing");
        assert_eq!(m["severity"], "critical");
        let rule = text_of(&m["group_labels"]["alertname"]).to_string();
        assert!(rule == "ServerDown" || rule == "DiskFull", "{rule}");
        assert_eq!(
            m["group_key"],
            format!("{{alertname=\"{rule}\"}}"),
            "{}",
            m["group_key"]
        );
        assert!(text_of(&m["title"]).starts_with("[FIRING:"));
        assert!(text_of(&m["text"]).contains("more: "));
        assert_eq!(m["dashboard_url"], "http://ballast.test:9900");
        assert!(text_of(&m["at"]).ends_with('Z'));
        let alerts = m["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), if rule == "ServerDown" { 300 } else { 200 });
        for a in alerts {
            for field in [
                "id",
                "rule",
                "labels",
                "annotations",
                "state",
                "severity",
                "value",
                "threshold",
                "since",
                "since_unix_ms",
                "url",
            ] {
                assert!(a.get(field).is_some(), "{field} missing from {a}");
            }
            assert_eq!(a["rule"], rule.as_str());
            assert_eq!(a["state"], "firing");
            assert_eq!(a["severity"], "critical");
            assert_eq!(a["since"], rfc3339(since));
            assert_eq!(
                a["url"],
                format!("http://ballast.test:9900/alerts#{}", text_of(&a["id"]))
            );
            seen.insert(text_of(&a["labels"]["server"]).to_string());
        }
    }
    assert_eq!(seen, all_servers(), "webhook: missing {:?}", missing(&seen));

    // Email: two mails to Web Ops, each naming its rule's servers.
    if let Some(s) = &smtp {
        let mails = s.stored();
        assert_eq!(mails.len(), 2, "{mails:?}");
        let mut seen = BTreeSet::new();
        for mail in &mails {
            let to = mail_header(mail, "To").unwrap();
            assert!(to.contains("web-ops@example.com"), "{to}");
            let subject = mail_header(mail, "Subject").unwrap();
            assert!(
                subject == "[FIRING:300] critical ServerDown"
                    || subject == "[FIRING:200] critical DiskFull",
                "{subject}"
            );
            seen.extend(named(&mail_body(mail)));
        }
        assert_eq!(seen, all_servers(), "email: missing {:?}", missing(&seen));
    }

    // The log: each target delivered two, each in one attempt.
    let mut targets = vec!["ops/slack", "ops/dooray", "ops/webhook"];
    if smtp.is_some() {
        targets.push("ops/email");
    }
    for t in targets {
        let lines = log_of(&gw, t);
        assert_eq!(lines.len(), 2, "{t}: {lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| l["state"] == "delivered" && l["attempts"] == 1),
            "{t}: {lines:?}"
        );
    }
}

fn missing(seen: &BTreeSet<String>) -> Vec<String> {
    all_servers().difference(seen).cloned().collect()
}

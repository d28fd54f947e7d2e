//! Notification delivery through real processes: the ballast binary with a SQLite store, alerts
//! injected through `POST /api/v1/alertmanager`, and receivers that are real HTTP servers on
//! loopback.
//!
//! - a receiver down for 10 s while alerts fire gets every message once it is back, each once,
//!   and the log shows retries for those sent during the outage;
//! - a restart with 3 notifications pending delivers those 3 after the restart, once each, and
//!   announces nothing again that was delivered before it (and resolutions after it, once);
//! - a Slack receiver answering 429 with `Retry-After: 2` is tried again no sooner than 2 s later;
//! - secrets read from files and the environment (webhook URL and signing secret, SMTP password)
//!   appear nowhere: stderr, the notification log, metrics, config versions, `ballast notify test`.

mod alerts_support;
mod common;
mod notify_support;

use std::time::{Duration, Instant};

use alerts_support::*;
use common::*;
use notify_support::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A gateway with a SQLite store, no default rules, an upstream nobody listens on, and `extra`
/// (receivers and routes) appended.
fn gateway(name: &str, extra: &str) -> Gateway {
    let port = free_port();
    let config = monitoring_config(
        port,
        nowhere(),
        &format!(
            r#"
[store]
url = "sqlite://store.db"

[alerting]
default_rules = false

{extra}"#
        ),
    );
    start(name, &config)
}

/// A webhook receiver `ops` at `hook`, on a catch-all route that sends each alertname as its own
/// message at once.
fn webhook_route(hook: &Receiver) -> String {
    format!(
        r#"
[[receiver]]
name = "ops"
webhook = {{ url = "{url}" }}

[[notify]]
receivers = ["ops"]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1s"
"#,
        url = hook.url("/hook")
    )
}

/// Fires one critical alert named `name` through the Alertmanager webhook.
fn fire(gw: &Gateway, name: &str) {
    send(gw, name, "firing");
}

/// Sends alert `name` as `status` (`firing`, or `resolved` with an end) through the
/// Alertmanager webhook.
fn send(gw: &Gateway, name: &str, status: &str) {
    let mut alert = serde_json::json!({
        "status": status,
        "labels": {"alertname": name, "severity": "critical", "service": "shop"},
        "annotations": {"summary": format!("{name} is broken")},
        "startsAt": "2026-11-30T20:00:00Z",
    });
    if status == "resolved" {
        alert["endsAt"] = "2026-11-30T20:30:00Z".into();
    }
    let body = serde_json::json!({
        "version": "4",
        "status": status,
        "receiver": "ballast",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "alerts": [alert],
    })
    .to_string();
    let (code, text) = post_json(gw, "/api/v1/alertmanager", &body);
    assert!((200..300).contains(&code), "{code}: {text}");
}

/// The alertnames of the firing webhook messages received so far, in arrival order (one entry
/// per alert of each message).
fn fired_names(hook: &Receiver) -> Vec<String> {
    names_of(hook, "firing")
}

/// The alertnames of the webhook messages with `status` received so far.
fn names_of(hook: &Receiver, status: &str) -> Vec<String> {
    hook.received()
        .iter()
        .map(Received::json)
        .filter(|m| m["status"] == status)
        .flat_map(|m| {
            m["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

/// The log rows of `target` whose group key names `alertname`.
fn rows_of(gw: &Gateway, target: &str, alertname: &str) -> Vec<Value> {
    notification_log(gw, "?limit=1000")
        .into_iter()
        .filter(|l| l["receiver"] == target)
        .filter(|l| {
            l["group_key"]
                .as_str()
                .is_some_and(|k| k.contains(&format!("\"{alertname}\"")))
        })
        .collect()
}

fn only_row(gw: &Gateway, target: &str, alertname: &str) -> Value {
    let rows = rows_of(gw, target, alertname);
    assert_eq!(
        rows.len(),
        1,
        "{alertname}: {rows:#?}\nwhole log: {:#?}",
        notification_log(gw, "?limit=1000")
    );
    rows.into_iter().next().unwrap()
}

#[test]
fn a_receiver_down_for_ten_seconds_gets_every_message_once_when_back() {
    let t0 = Instant::now();
    let hook = Receiver::start();
    let gw = gateway("notify-outage", &webhook_route(&hook));

    fire(&gw, "before-outage");
    hook.wait_for(1, WAIT);
    assert_eq!(fired_names(&hook), ["before-outage"]);

    hook.down();
    let down_at = Instant::now();
    let during = ["during-a", "during-b", "during-c"];
    for (i, name) in during.iter().enumerate() {
        fire(&gw, name);
        // Each is tried (and fails) before the next fires.
        wait_until(&format!("{name} tried"), WAIT, || {
            rows_of(&gw, "ops/webhook", name)
                .first()
                .is_some_and(|r| r["attempts"].as_u64().unwrap_or(0) >= 1)
        });
        if i + 1 < during.len() {
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    for name in during {
        let r = only_row(&gw, "ops/webhook", name);
        assert_eq!(r["state"], "pending", "{r}");
    }
    let left = Duration::from_secs(10).saturating_sub(down_at.elapsed());
    std::thread::sleep(left);
    assert_eq!(hook.received().len(), 1, "nothing arrives while down");
    hook.up();
    let up_at = Instant::now();

    wait_until(
        "every message after the outage",
        Duration::from_secs(45),
        || {
            let names = fired_names(&hook);
            during.iter().all(|n| count(&names, n) >= 1)
        },
    );
    println!(
        "outage over → all delivered in {} ms",
        up_at.elapsed().as_millis()
    );
    // Nothing more: no message twice.
    std::thread::sleep(Duration::from_secs(3));
    let names = fired_names(&hook);
    assert_eq!(names.len(), 4, "{names:?}");
    for n in ["before-outage", "during-a", "during-b", "during-c"] {
        assert_eq!(count(&names, n), 1, "{n} in {names:?}");
    }
    assert_eq!(hook.received().len(), 4);

    let before = only_row(&gw, "ops/webhook", "before-outage");
    assert_eq!(before["state"], "delivered", "{before}");
    assert_eq!(before["attempts"], 1, "{before}");
    for name in during {
        let r = only_row(&gw, "ops/webhook", name);
        assert_eq!(r["state"], "delivered", "{r}");
        assert!(r["attempts"].as_u64().unwrap() > 1, "{r}");
    }
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_notifications_total{target=\"ops/webhook\",result=\"delivered\"}"
        ),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_notifications_pending{target=\"ops/webhook\"}"
        ),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "ballast_notification_attempts_failed_total{target=\"ops/webhook\"}"
        )
        .unwrap()
            >= 3.0,
        "{metrics}"
    );
    println!("test took {} ms", t0.elapsed().as_millis());
}

#[test]
fn a_restart_delivers_the_three_pending_once_and_announces_nothing_again() {
    let t0 = Instant::now();
    let hook = Receiver::start();
    let mut gw = gateway("notify-restart", &webhook_route(&hook));

    let old = ["old-a", "old-b"];
    for name in old {
        fire(&gw, name);
    }
    wait_until("the old alerts delivered", WAIT, || {
        let names = fired_names(&hook);
        old.iter().all(|n| count(&names, n) == 1)
    });
    for name in old {
        wait_until(&format!("{name} logged as delivered"), WAIT, || {
            only_row(&gw, "ops/webhook", name)["state"] == "delivered"
        });
    }

    hook.down();
    let new = ["new-a", "new-b", "new-c"];
    for name in new {
        fire(&gw, name);
    }
    wait_until("3 pending notifications, each tried", WAIT, || {
        let pending = notification_log(&gw, "?state=pending&limit=1000");
        pending.len() == 3
            && pending
                .iter()
                .all(|r| r["attempts"].as_u64().unwrap_or(0) >= 1)
    });
    for name in new {
        assert_eq!(only_row(&gw, "ops/webhook", name)["state"], "pending");
    }
    // No wait for the outbox to reach the store: the restart comes as soon as the log says
    // 3 pending, as an operator's would (it has always been written by then: 0 unsaved).
    println!(
        "unsaved before the restart: {:?}",
        metric_value(&gw.metrics(), "ballast_notifications_unsaved")
    );

    gw.restart();
    wait_until("monitoring to answer", WAIT, || {
        gw.admin_get("/api/v1/monitors").0 == 200
    });
    // The firing alerts came back from the store, and so did the 3 pending notifications.
    for name in old.iter().chain(&new) {
        wait_until(&format!("{name} firing after the restart"), WAIT, || {
            alerts(&gw)
                .iter()
                .any(|a| a["labels"]["alertname"] == *name && a["state"] == "firing")
        });
    }
    let pending = notification_log(&gw, "?state=pending&limit=1000");
    assert_eq!(pending.len(), 3, "{pending:#?}");
    assert_eq!(hook.received().len(), 2, "nothing sent while down");
    // Notifications start after monitoring has restored the alerts.
    wait_until("the outbox reloaded", WAIT, || {
        gw.stderr().contains("undelivered notifications reloaded")
    });
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_notifications_pending{target=\"ops/webhook\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
    let stderr = gw.stderr();
    assert!(
        stderr.contains("undelivered notifications reloaded") && stderr.contains("\"pending\":3"),
        "{stderr}"
    );

    hook.up();
    let up_at = Instant::now();
    wait_until(
        "the 3 pending delivered after the restart",
        Duration::from_secs(45),
        || {
            let names = fired_names(&hook);
            new.iter().all(|n| count(&names, n) >= 1)
        },
    );
    println!(
        "receiver back → 3 delivered in {} ms",
        up_at.elapsed().as_millis()
    );
    std::thread::sleep(Duration::from_secs(3));
    let names = fired_names(&hook);
    for n in old.iter().chain(&new) {
        assert_eq!(count(&names, n), 1, "{n} in {names:?}");
    }
    assert_eq!(hook.received().len(), 5, "{names:?}");
    for name in old.iter().chain(&new) {
        let r = only_row(&gw, "ops/webhook", name);
        assert_eq!(r["state"], "delivered", "{r}");
    }
    for name in new {
        let r = only_row(&gw, "ops/webhook", name);
        assert!(r["attempts"].as_u64().unwrap() > 1, "{r}");
    }
    // Resolutions after the restart are announced, once each, for alerts announced before it
    // and for those delivered after it.
    for name in ["old-a", "new-a"] {
        send(&gw, name, "resolved");
    }
    wait_until("the resolutions", WAIT, || {
        names_of(&hook, "resolved").len() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    let resolved = names_of(&hook, "resolved");
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    for name in ["old-a", "new-a"] {
        assert_eq!(count(&resolved, name), 1, "{name} in {resolved:?}");
    }
    assert_eq!(fired_names(&hook).len(), 5, "no firing message again");
    println!("test took {} ms", t0.elapsed().as_millis());
}

#[test]
fn slack_429_with_retry_after_2_is_tried_again_no_sooner_than_2_s_later() {
    let t0 = Instant::now();
    let slack = Receiver::start();
    slack.script(vec![Answer::status(429).with_header("Retry-After", "2")]);
    let gw = gateway(
        "notify-429",
        &format!(
            r#"
[[receiver]]
name = "chat"
slack = {{ url = "{url}" }}

[[notify]]
receivers = ["chat"]
group_wait = "0s"
"#,
            url = slack.url("/services/T1/B1/x")
        ),
    );
    fire(&gw, "slow-down");
    let got = slack.wait_for(2, WAIT);
    let gap = got[1].at.duration_since(got[0].at);
    println!("429 → second attempt after {} ms", gap.as_millis());
    assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(10), "retried after {gap:?}");
    assert_eq!(got[0].body, got[1].body, "the same message is retried");
    assert!(got[1].body.contains("slow-down"), "{}", got[1].body);

    wait_until("the log to say delivered", WAIT, || {
        only_row(&gw, "chat/slack", "slow-down")["state"] == "delivered"
    });
    let r = only_row(&gw, "chat/slack", "slow-down");
    assert_eq!(r["attempts"], 2, "{r}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(slack.received().len(), 2, "nothing more after delivery");
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_notification_attempts_failed_total{target=\"chat/slack\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    println!("test took {} ms", t0.elapsed().as_millis());
}

const URL_TOKEN: &str = "url-token-5f1c9e22d7";
const SIGNING: &str = "signing-secret-83ab41c0";
const SMTP_PASS: &str = "smtp-pass-d2e7f90b4a";
const INLINE_URL_TOKEN: &str = "inline-url-token-77c1aa";
const INLINE_PASS: &str = "inline-smtp-pass-6b09e3";
const DOWN_TOKEN: &str = "down-url-token-0c4d2b";
const SLACK_TOKEN: &str = "slack-env-token-9e3f15";
const SECRETS: [&str; 7] = [
    URL_TOKEN,
    SIGNING,
    SMTP_PASS,
    DOWN_TOKEN,
    SLACK_TOKEN,
    INLINE_URL_TOKEN,
    INLINE_PASS,
];

fn hmac_hex(key: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, body.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A config with secrets from a file and the environment (receiver `secret`) and, for the
/// config-versions check, inline ones (receiver `inline`); receiver `down` (a webhook URL from
/// a file, a Slack URL from the environment) points at a closed port, so its errors are logged.
fn secrets_gateway(hook: &Receiver, dead_relay: u16) -> Gateway {
    let dir = scratch("notify-secrets-files");
    let url_file = dir.join("hook.url");
    std::fs::write(
        &url_file,
        format!("{}\n", hook.url(&format!("/hook/{URL_TOKEN}"))),
    )
    .unwrap();
    let down_file = dir.join("down.url");
    std::fs::write(
        &down_file,
        format!("http://127.0.0.1:{dead_relay}/down/{DOWN_TOKEN}\n"),
    )
    .unwrap();
    // Only this test binary's tests read these names; the child inherits them.
    std::env::set_var(
        "BALLAST_NT_SLACK_URL",
        format!("http://127.0.0.1:{dead_relay}/services/T9/B9/{SLACK_TOKEN}"),
    );
    std::env::set_var("BALLAST_NT_SIGNING", SIGNING);
    std::env::set_var("BALLAST_NT_SMTP_PASS", SMTP_PASS);
    gateway(
        "notify-secrets",
        &format!(
            r#"
[[receiver]]
name = "secret"
webhook = {{ url_file = "{url_file}", signing_secret_env = "BALLAST_NT_SIGNING" }}
email = {{ to = ["ops@example.test"], from = "ballast@example.test", relays = ["127.0.0.1:{dead_relay}"], tls = "none", username = "ballast", password_env = "BALLAST_NT_SMTP_PASS", timeout = "2s" }}

[[receiver]]
name = "inline"
webhook = {{ url = "{inline_url}" }}
email = {{ to = ["ops@example.test"], from = "ballast@example.test", relays = ["127.0.0.1:{dead_relay}"], tls = "none", username = "ballast", password = "{INLINE_PASS}", timeout = "2s" }}

[[receiver]]
name = "down"
webhook = {{ url_file = "{down_file}" }}
slack = {{ url_env = "BALLAST_NT_SLACK_URL" }}

[[notify]]
match = {{ service = "shop" }}
receivers = ["secret", "down"]
group_wait = "0s"
"#,
            url_file = url_file.display(),
            down_file = down_file.display(),
            inline_url = hook.url(&format!("/inline/{INLINE_URL_TOKEN}")),
        ),
    )
}

/// Every text a secret must not be in, with a name for the failure message.
fn exposed_texts(gw: &Gateway) -> Vec<(String, String)> {
    let mut out = vec![
        ("stderr".to_string(), gw.stderr()),
        (
            "GET /api/v1/notifications".to_string(),
            gw.admin_get("/api/v1/notifications?limit=1000").1,
        ),
        ("/metrics".to_string(), gw.metrics()),
    ];
    wait_versions(gw, 1);
    let (code, versions) = gw.admin_get("/api/v1/config/versions");
    assert_eq!(code, 200, "{versions}");
    let list: Value = serde_json::from_str(&versions).unwrap();
    let ids: Vec<String> = list
        .as_array()
        .or_else(|| list["versions"].as_array())
        .unwrap_or_else(|| panic!("versions: {versions}"))
        .iter()
        .map(|v| v["id"].to_string().trim_matches('"').to_string())
        .collect();
    assert!(!ids.is_empty(), "{versions}");
    out.push(("GET /api/v1/config/versions".to_string(), versions));
    for id in ids {
        let path = format!("/api/v1/config/versions/{id}");
        let (code, body) = gw.admin_get(&path);
        assert_eq!(code, 200, "{path}: {body}");
        out.push((format!("GET {path}"), body));
        let path = format!("/api/v1/config/diff?from={id}&to={id}");
        let (_, body) = gw.admin_get(&path);
        out.push((format!("GET {path}"), body));
    }
    out
}

/// Runs the secrets scenario and returns every place a secret showed up, as
/// (secret, where).
fn secrets_scenario() -> Vec<(&'static str, String)> {
    let hook = Receiver::start();
    let dead_relay = free_port();
    let gw = secrets_gateway(&hook, dead_relay);

    // The first post is refused with a 500, so the webhook's error text is logged too.
    hook.script(vec![Answer::status(500)]);
    fire(&gw, "secret-check");
    let got = hook.wait_for(1, WAIT);
    assert_eq!(
        got[0].path,
        format!("/hook/{URL_TOKEN}"),
        "the URL from the file"
    );
    let signature = got[0].header("x-ballast-signature").expect("signed");
    assert_eq!(
        signature,
        format!("sha256={}", hmac_hex(SIGNING, &got[0].body)),
        "signed with the secret from the environment"
    );
    // The email target fails (the relay refuses): its error text is in the log.
    wait_until("the email target to fail once", WAIT, || {
        rows_of(&gw, "secret/email", "secret-check")
            .first()
            .is_some_and(|r| r["attempts"].as_u64().unwrap_or(0) >= 1 && r["result"].is_string())
    });
    for target in ["secret/webhook", "down/webhook", "down/slack"] {
        wait_until(&format!("{target} to fail once"), WAIT, || {
            rows_of(&gw, target, "secret-check")
                .first()
                .is_some_and(|r| {
                    r["attempts"].as_u64().unwrap_or(0) >= 1 && r["result"].is_string()
                })
        });
    }
    let email_row = only_row(&gw, "secret/email", "secret-check");
    println!("email error in the log: {}", email_row["result"]);
    assert!(
        email_row["result"]
            .as_str()
            .unwrap()
            .contains("refused the connection"),
        "{email_row}"
    );

    let admin = gw.admin.to_string();
    let (code, out, err) = cli(&["notify", "test", "secret", "--admin", &admin]);
    println!("notify test secret → {code:?}\n{out}\n{err}");
    assert_eq!(code, Some(1), "the email channel fails: {out}{err}");
    assert!(
        out.contains("secret/webhook") && out.contains("ok"),
        "{out}{err}"
    );
    assert!(
        out.contains("secret/email") && out.contains("FAILED"),
        "{out}{err}"
    );
    assert!(hook
        .received()
        .iter()
        .any(|r| r.path == format!("/hook/{URL_TOKEN}") && r.body.contains("ballast-test")));
    let (icode, iout, ierr) = cli(&["notify", "test", "inline", "--admin", &admin]);
    println!("notify test inline → {icode:?}\n{iout}\n{ierr}");
    assert!(iout.contains("inline/webhook"), "{iout}{ierr}");
    let (dcode, dout, derr) = cli(&["notify", "test", "down", "--admin", &admin]);
    println!("notify test down → {dcode:?}\n{dout}\n{derr}");
    assert_eq!(dcode, Some(1), "{dout}{derr}");
    assert!(
        dout.contains("down/slack") && dout.contains("down/webhook"),
        "{dout}{derr}"
    );
    let (acode, api) = gw.admin_post("/api/v1/receivers/down/test");
    println!("POST /api/v1/receivers/down/test → {acode}: {api}");
    assert!(api.contains("\"target\":\"down/slack\""), "{acode}: {api}");

    let mut texts = exposed_texts(&gw);
    texts.push(("ballast notify test secret".into(), format!("{out}\n{err}")));
    texts.push((
        "ballast notify test inline".into(),
        format!("{iout}\n{ierr}"),
    ));
    texts.push(("ballast notify test down".into(), format!("{dout}\n{derr}")));
    texts.push(("POST /api/v1/receivers/down/test".into(), api));
    let mut leaks = Vec::new();
    for (what, text) in &texts {
        for secret in SECRETS {
            if text.contains(secret) {
                leaks.push((secret, what.clone()));
            }
        }
    }
    leaks
}

/// Secrets read from a file (webhook URL) or the environment (signing secret, SMTP password),
/// and secrets written inline in the config (which the config history keeps as written for
/// rollback, and shows redacted), are nowhere a person or a log can see them.
#[test]
fn secrets_appear_nowhere() {
    let t0 = Instant::now();
    let leaks = secrets_scenario();
    println!("test took {} ms", t0.elapsed().as_millis());
    assert!(leaks.is_empty(), "secrets shown: {leaks:#?}");
}

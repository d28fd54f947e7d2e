//! From a dead backend to a person, through real processes: three demo backends behind a
//! gateway with health checks every second (`fall = 2`), a `min` rule on the upstream's
//! healthy servers, and a Slack-shaped receiver (a real HTTP server on loopback) on a route
//! for critical alerts with `group_wait = "0s"`. A backend is SIGKILLed: the receiver must
//! get one Slack message of the right shape (text, blocks, red attachment) naming the alert;
//! once the backend is revived, one resolved message (green), and nothing more. The log at
//! `GET /api/v1/notifications` shows both as delivered. The time from the kill to the
//! message is printed, not asserted (the machine is shared).
//!
//! `bench/notify-latency.sh` runs the ignored test here, which repeats kill → message ten
//! times and prints each time and the median.

mod alerts_support;
mod common;
mod notify_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alerts_support::*;
use common::*;
use notify_support::*;

const RULE: &str = "app-servers";
const WAIT: Duration = Duration::from_secs(30);

fn gateway(backends: &[&Backend], slack: &Receiver) -> (Gateway, SocketAddr) {
    let port = free_port();
    let servers: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ addr = \"{}\" }}", b.addr))
        .collect();
    let config = format!(
        r#"{preamble}
[alerting]
default_rules = false
dashboard_url = "http://ballast.test:9900"

[[route]]
upstream = "app"

[[upstream]]
name = "app"
health = {{ path = "/healthz", interval = "1s", timeout = "500ms", fall = 2 }}
servers = [{servers}]

[[rule]]
name = "{RULE}"
monitor = "gateway"
value = "healthy_servers"
match = {{ upstream = "app" }}
min = {{ below = 3 }}
annotations = {{ summary = "app has fewer than 3 healthy servers", runbook = "https://wiki.test/app" }}

[[receiver]]
name = "web-oncall"
slack = {{ url = "{url}" }}

[[notify]]
match = {{ severity = "critical" }}
receivers = ["web-oncall"]
group_wait = "0s"
group_interval = "1s"
"#,
        preamble = preamble(port),
        servers = servers.join(", "),
        url = slack.url("/services/T000/B000/slack-secret-token"),
    );
    (start("notify-slack", &config), local(port))
}

fn wait_quiet(gw: &Gateway, backends: &[&Backend]) {
    wait_until("every server up", WAIT, || {
        backends
            .iter()
            .all(|b| gw.server_state("app", b.addr) == "up")
    });
    wait_until("the rule not firing", WAIT, || {
        alert_of(gw, RULE, &[("upstream", "app")]).is_none_or(|a| a["state"] != "firing")
    });
}

/// The Slack messages received so far whose header says `tag` (`FIRING`, `RESOLVED`).
fn messages(slack: &Receiver, tag: &str) -> Vec<serde_json::Value> {
    slack
        .received()
        .iter()
        .map(Received::json)
        .filter(|v| {
            v["blocks"][0]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains(tag))
        })
        .collect()
}

#[test]
fn a_dead_backend_reaches_slack_once_and_its_recovery_once() {
    let slack = Receiver::start();
    let mut victim = Backend::start("ns-a");
    let (b, c) = (Backend::start("ns-b"), Backend::start("ns-c"));
    let (gw, _) = gateway(&[&victim, &b, &c], &slack);
    wait_quiet(&gw, &[&victim, &b, &c]);
    let before = slack.received().len();

    let killed = Instant::now();
    victim.kill();
    let got = slack.wait_for(before + 1, WAIT);
    println!("kill → Slack message: {} ms", killed.elapsed().as_millis());
    let firing = messages(&slack, "FIRING");
    assert_eq!(firing.len(), 1, "{got:?}");
    let m = &firing[0];
    assert_eq!(got[before].path, "/services/T000/B000/slack-secret-token");
    assert_eq!(got[before].header("content-type"), Some("application/json"));
    // Slack's shape: text (the fallback), blocks (header, then sections), a coloured bar.
    let header = m["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(m["blocks"][0]["type"], "header");
    assert!(
        header.starts_with("[FIRING:1] critical app-servers"),
        "{header}"
    );
    assert_eq!(m["blocks"][1]["type"], "section");
    let section = m["blocks"][1]["text"]["text"].as_str().unwrap();
    for want in [
        "app-servers",
        "upstream=app",
        "threshold 3",
        "app has fewer than 3 healthy servers",
        "https://wiki.test/app",
        "http://ballast.test:9900/alerts",
    ] {
        assert!(section.contains(want), "{want:?} missing from {section}");
    }
    assert_eq!(m["attachments"][0]["color"], "#d32f2f");
    assert!(m["text"].as_str().unwrap().contains("app-servers"));

    victim.revive();
    wait_until("the resolved message", WAIT, || {
        !messages(&slack, "RESOLVED").is_empty()
    });
    let resolved = messages(&slack, "RESOLVED");
    assert_eq!(resolved[0]["attachments"][0]["color"], "#2e7d32");
    // Nothing more: no second resolved message, no repeat of the firing one.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(messages(&slack, "RESOLVED").len(), 1);
    assert_eq!(messages(&slack, "FIRING").len(), 1);

    let log = notification_log(&gw, "");
    let delivered: Vec<_> = log
        .iter()
        .filter(|l| l["receiver"] == "web-oncall/slack" && l["state"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 2, "{log:?}");
    assert!(delivered.iter().all(|l| l["attempts"] == 1));
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_notifications_total{target=\"web-oncall/slack\",result=\"delivered\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    // The URL's secret is nowhere in the API's answers, the metrics or the logs.
    let (_, config_api) = gw.admin_get("/api/v1/config/versions");
    for text in [
        serde_json::to_string(&log).unwrap(),
        metrics,
        gw.stderr(),
        config_api,
    ] {
        assert!(!text.contains("slack-secret-token"), "secret shown: {text}");
    }
}

/// Ten kills, each timed from the SIGKILL to the Slack message at the receiver; prints each
/// and the median. Run by `bench/notify-latency.sh`.
#[test]
#[ignore]
fn kill_to_slack_latency_over_ten_runs() {
    let slack = Receiver::start();
    let mut victim = Backend::start("nl-a");
    let (b, c) = (Backend::start("nl-b"), Backend::start("nl-c"));
    let (gw, _) = gateway(&[&victim, &b, &c], &slack);
    let mut times = Vec::new();
    for run in 1..=10 {
        wait_quiet(&gw, &[&victim, &b, &c]);
        // Let the resolved message of the last run arrive first.
        std::thread::sleep(Duration::from_secs(2));
        let before = messages(&slack, "FIRING").len();
        let killed = Instant::now();
        victim.kill();
        wait_until("the Slack message", WAIT, || {
            messages(&slack, "FIRING").len() > before
        });
        let ms = killed.elapsed().as_millis();
        println!("run {run}: kill → Slack message {ms} ms");
        times.push(ms);
        victim.revive();
    }
    times.sort_unstable();
    println!(
        "median of {}: {} ms (min {} ms, max {} ms)",
        times.len(),
        (times[4] + times[5]) / 2,
        times[0],
        times[9]
    );
}

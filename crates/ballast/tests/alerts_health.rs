//! The dead-server alert through real processes: three demo backends behind a gateway with
//! health checks every second (`fall = 2`) and a rule `min = { below = 3 }` on the upstream's
//! `healthy_servers`. Under load a backend is SIGKILLed: the alert must fire critical; once the
//! backend is revived it must resolve. The time from the kill to `firing` is printed (the
//! machine is shared, so it is not asserted; only a hung alert fails the test).
//!
//! `bench/alert-latency.sh` runs the ignored test here, which repeats kill → firing ten times
//! and prints each time and the median.

mod alerts_support;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alerts_support::*;
use common::*;

const RULE: &str = "app-servers";
const APP: &[(&str, &str)] = &[("upstream", "app")];

/// A gateway in front of `backends` with 1 s health checks and the healthy-servers rule (the
/// default pack off, so the only alerts are this rule's).
/// `upstream_extra` is added to the upstream table.
fn gateway(backends: &[&Backend], upstream_extra: &str) -> (Gateway, SocketAddr) {
    let port = free_port();
    let servers: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ addr = \"{}\" }}", b.addr))
        .collect();
    let config = format!(
        r#"{preamble}
[alerting]
default_rules = false

[[route]]
upstream = "app"

[[upstream]]
name = "app"
health = {{ path = "/healthz", interval = "1s", timeout = "500ms", fall = 2 }}
{upstream_extra}
servers = [{servers}]

[[rule]]
name = "{RULE}"
monitor = "gateway"
value = "healthy_servers"
match = {{ upstream = "app" }}
min = {{ below = 3 }}
"#,
        preamble = preamble(port),
        servers = servers.join(", "),
    );
    (start("alerts-health", &config), local(port))
}

/// Waits until every server is up and the rule's alert is not firing (it may have fired
/// while the health checks first ran).
fn wait_quiet(gw: &Gateway, backends: &[&Backend]) {
    wait_until("every server up", ALERT_WAIT, || {
        backends
            .iter()
            .all(|b| gw.server_state("app", b.addr) == "up")
    });
    wait_until("the rule not firing", ALERT_WAIT, || {
        alert_of(gw, RULE, APP).is_none_or(|a| a["state"] != "firing")
    });
}

/// Kills `victim` and returns the time until the rule's alert is firing critical (with the
/// alert), or panics after [`ALERT_WAIT`].
fn kill_until_firing(gw: &Gateway, victim: &mut Backend) -> (Duration, serde_json::Value) {
    let killed = Instant::now();
    victim.kill();
    let alert = wait_alert(gw, RULE, APP, "firing/critical", ALERT_WAIT);
    (killed.elapsed(), alert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_fires_critical_and_resolves_when_revived() {
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let c = Backend::start("c");
    let (gw, addr) = gateway(&[&a, &b, &c], "");
    wait_quiet(&gw, &[&a, &b, &c]);

    let run = LoadRun::start(addr, 4, "/");
    wait_for("200 requests before the kill", ALERT_WAIT, || {
        run.completed() >= 200
    })
    .await;
    let (took, alert) = kill_until_firing(&gw, &mut b);
    eprintln!("kill → firing critical: {} ms", took.as_millis());
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(alert["labels"]["alertname"], RULE, "{alert}");
    assert_eq!(alert["labels"]["monitor"], "gateway", "{alert}");
    assert_eq!(alert["value"], 2.0, "two of three servers left: {alert}");
    assert_eq!(alert["threshold"], 3.0, "{alert}");
    let id = alert["id"].as_str().unwrap().to_string();

    let during = run.completed();
    wait_for("traffic while b is dead", ALERT_WAIT, || {
        run.completed() >= during + 200
    })
    .await;
    b.revive();
    let resolved = wait_alert(&gw, RULE, APP, "resolved", ALERT_WAIT);
    assert_eq!(resolved["id"], id.as_str(), "the same alert resolved");
    let tally = run.finish().await;
    assert!(tally.ok > 400, "load ran: {tally:?}");

    // The events tell the same story: fired critical once, then resolved.
    let changes = changes_of(&gw, &id);
    let fired_at = changes
        .iter()
        .rposition(|c| c == "inactive→firing/critical" || c == "resolved→firing/critical")
        .unwrap_or_else(|| panic!("no firing transition in {changes:?}"));
    assert_eq!(
        changes[fired_at..],
        [
            changes[fired_at].clone(),
            "firing/critical→resolved".to_string()
        ],
        "{changes:?}"
    );
}

/// The median of `times` (the upper one of the middle pair for an even count).
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Run by `bench/alert-latency.sh`: ten kills of one backend under load, each timed from the
/// SIGKILL to the alert firing critical, then the backend revived and the alert resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (about a minute): run by bench/alert-latency.sh"]
async fn kill_to_firing_ten_times() {
    let runs: usize = std::env::var("ALERT_LATENCY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // ALERT_LATENCY_PASSIVE=off leaves only the health checks to notice the death (by
    // default the clients' failed requests eject the server at once).
    let passive_off = std::env::var("ALERT_LATENCY_PASSIVE").is_ok_and(|v| v == "off");
    let extra = if passive_off {
        "passive = { enabled = false }"
    } else {
        ""
    };
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let c = Backend::start("c");
    let (gw, addr) = gateway(&[&a, &b, &c], extra);
    let run = LoadRun::start(addr, 4, "/");
    let mut times = Vec::new();
    for i in 1..=runs {
        wait_quiet(&gw, &[&a, &b, &c]);
        let before = run.completed();
        wait_for("load before the kill", ALERT_WAIT, || {
            run.completed() >= before + 100
        })
        .await;
        // The gateway monitor runs every second and the loop reaches this point just after
        // one of its runs (the one that saw the alert resolve): a random pause spreads the
        // kills over the monitor's period, so the times are not all the worst case.
        let jitter = Duration::from_millis(fastrand::u64(0..1000));
        tokio::time::sleep(jitter).await;
        let (took, _) = kill_until_firing(&gw, &mut b);
        println!(
            "run {i:2}: kill → firing {:5} ms (b {} by then; killed after a {:3} ms pause)",
            took.as_millis(),
            gw.server_state("app", b.addr),
            jitter.as_millis()
        );
        times.push(took);
        b.revive();
        wait_alert(&gw, RULE, APP, "resolved", ALERT_WAIT);
    }
    let tally = run.finish().await;
    let ms: Vec<u128> = times.iter().map(|t| t.as_millis()).collect();
    println!(
        "kill → firing over {runs} runs: {ms:?} ms; median {} ms, min {} ms, max {} ms ({} requests served)",
        median(&times).as_millis(),
        ms.iter().min().unwrap(),
        ms.iter().max().unwrap(),
        tally.ok
    );
}

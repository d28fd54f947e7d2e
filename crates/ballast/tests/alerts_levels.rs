//! Warning, critical and hysteresis through real processes: a lab backend whose share of 500
//! answers is set with its knobs, behind a gateway whose `gateway` monitor reads the route's
//! `error_ratio` over a 2 s window. The rule warns above 20% (recovering at 5%) and is
//! critical above 60% (recovering at 30%).
//!
//! The error share is driven 35% → 80% → 45% → 18% → 12% → 0%. The alert must go warning →
//! critical → (stays critical at 45%, between the critical recovery value and threshold) →
//! warning → (stays warning at 12%, between the warning recovery value and threshold) →
//! resolved, and its `alert_changed` events must be exactly those four steps: no flapping.
//! The margins are several standard deviations of the sampled share wide, so a random run of
//! errors does not cross them.

mod alerts_support;
mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alerts_support::*;
use common::*;

const RULE: &str = "api-errors";
const MONITOR: &str = "traffic";
const API: &[(&str, &str)] = &[("route", "api")];

/// A lab backend process (`ballast lab-backend`), killed on drop.
struct LabBackend {
    addr: SocketAddr,
    child: Child,
}

impl LabBackend {
    fn start() -> Self {
        let addr = local(free_port());
        let child = Command::new(BIN)
            .args([
                "lab-backend",
                "--listen",
                &addr.to_string(),
                "--name",
                "lab",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lab backend");
        let b = LabBackend { addr, child };
        wait_until("lab backend to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        b
    }

    /// Answers this share of application requests with 500 (not retried by the gateway).
    fn errors(&self, ratio: f64) {
        let body = format!(r#"{{"error_ratio":{ratio},"error_status":500}}"#);
        let (code, text) = raw_http(
            self.addr,
            &format!(
                "PUT /_lab/knobs HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(code, 200, "{text}");
    }
}

impl Drop for LabBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many runs monitor `name` has made.
fn runs_of(gw: &Gateway, name: &str) -> u64 {
    let (code, body) = gw.admin_get("/api/v1/monitors");
    assert_eq!(code, 200, "{body}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    all.iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no monitor {name} in {body}"))["runs"]
        .as_u64()
        .unwrap()
}

/// Waits until the alert's value is within `lo..=hi` (the whole window now reflects the new
/// error share), then for `rounds` more monitor runs, checking at every poll that the alert
/// stays in `state` and that no `alert_changed` event is added for it.
fn holds(gw: &Gateway, id: &str, state: &str, lo: f64, hi: f64, rounds: u64) {
    let before = changes_of(gw, id);
    wait_until(
        &format!("the error ratio within {lo}..={hi}"),
        ALERT_WAIT,
        || {
            let a = alert_of(gw, RULE, API).expect("the alert is listed");
            assert_eq!(state_of(&a), state, "flapped while settling: {a}");
            a["value"].as_f64().is_some_and(|v| (lo..=hi).contains(&v))
        },
    );
    let start = runs_of(gw, MONITOR);
    wait_until(&format!("{rounds} more monitor runs"), ALERT_WAIT, || {
        let a = alert_of(gw, RULE, API).expect("the alert is listed");
        assert_eq!(state_of(&a), state, "flapped: {a}");
        runs_of(gw, MONITOR) >= start + rounds
    });
    assert_eq!(
        changes_of(gw, id),
        before,
        "no alert_changed while hovering"
    );
    let a = alert_of(gw, RULE, API).unwrap();
    eprintln!("held {state} at {} for {rounds} runs", a["value"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_ratio_escalates_de_escalates_and_does_not_flap() {
    let lab = LabBackend::start();
    let port = free_port();
    let config = format!(
        r#"{preamble}
[alerting]
default_rules = false

[[route]]
name = "api"
upstream = "app"

[[upstream]]
name = "app"
passive = {{ enabled = false }}
servers = [{{ addr = "{backend}" }}]

[[monitor]]
name = "{MONITOR}"
kind = "gateway"
route = "api"
window = "2s"
interval = "500ms"

[[rule]]
name = "{RULE}"
monitor = "{MONITOR}"
value = "error_ratio"
match = {{ route = "api" }}
warn = {{ above = "20%", recover = "5%" }}
crit = {{ above = "60%", recover = "30%" }}
"#,
        preamble = preamble(port),
        backend = lab.addr,
    );
    let gw = start("alerts-levels", &config);
    let run = LoadRun::start(local(port), 4, "/");
    wait_for("traffic before the errors", ALERT_WAIT, || {
        run.completed() >= 200
    })
    .await;
    assert!(
        alert_of(&gw, RULE, API).is_none(),
        "no alert without errors"
    );

    lab.errors(0.35);
    let a = wait_alert(&gw, RULE, API, "firing/warning", ALERT_WAIT);
    assert_eq!(a["threshold"], 0.2, "{a}");
    let id = a["id"].as_str().unwrap().to_string();

    lab.errors(0.80);
    let a = wait_alert(&gw, RULE, API, "firing/critical", ALERT_WAIT);
    assert_eq!(a["threshold"], 0.6, "{a}");

    // Between crit.recover (30%) and crit.above (60%): critical is held.
    lab.errors(0.45);
    holds(&gw, &id, "firing/critical", 0.37, 0.53, 8);

    // Below crit.recover but above warn.recover: down to warning.
    lab.errors(0.18);
    wait_alert(&gw, RULE, API, "firing/warning", ALERT_WAIT);

    // Between warn.recover (5%) and warn.above (20%): warning is held.
    lab.errors(0.12);
    holds(&gw, &id, "firing/warning", 0.08, 0.16, 8);

    lab.errors(0.0);
    wait_alert(&gw, RULE, API, "resolved", ALERT_WAIT);
    let tally = run.finish().await;
    eprintln!("{} ok, {} errors", tally.ok, tally.errors);

    assert_eq!(
        changes_of(&gw, &id),
        [
            "inactive→firing/warning",
            "firing/warning→firing/critical",
            "firing/critical→firing/warning",
            "firing/warning→resolved",
        ],
        "the alert's transitions"
    );
}

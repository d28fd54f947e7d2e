//! Monitors that probe from the outside, as an operator writes them: a three-step journey
//! (log in, read a JSON value with the session cookie, use it in the next URL) against an HTTP
//! server inside the test that can break one step; heartbeats from a batch job that pings,
//! stops, comes back and fails; a `tls` probe on a certificate the test generates to expire in
//! 20 days. Real `ballast` processes, real sockets, the admin API's alerts and monitors.

mod alerts_support;
mod common;
mod tls_client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alerts_support::*;
use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// A small shop on a std listener: `POST /login` sets a session cookie, `GET /profile` needs it
/// and answers `{"user":{"id":42}}` (or 500 while `broken`), `GET /orders/42` needs it too.
/// One request per connection. The accept thread ends with the test process.
struct Shop {
    addr: SocketAddr,
    broken: Arc<AtomicBool>,
}

const SESSION: &str = "session=s3cr3t";

impl Shop {
    fn start() -> Shop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &flag);
                });
            }
        });
        Shop { addr, broken }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve_one(stream: TcpStream, broken: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (mut length, mut cookie) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "cookie" => cookie = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let logged_in = cookie.split(';').any(|c| c.trim() == SESSION);
    let (status, extra, text) = match (method.as_str(), path.as_str()) {
        ("POST", "/login") if body == b"user=probe" => (
            "200 OK",
            format!("Set-Cookie: {SESSION}; Path=/; HttpOnly\r\n"),
            "welcome".to_string(),
        ),
        ("GET", "/profile") if broken.load(Ordering::SeqCst) => (
            "500 Internal Server Error",
            String::new(),
            "profile store down".to_string(),
        ),
        ("GET", "/profile") if logged_in => (
            "200 OK",
            "Content-Type: application/json\r\n".to_string(),
            r#"{"user":{"id":42,"name":"probe"}}"#.to_string(),
        ),
        ("GET", "/orders/42") if logged_in => ("200 OK", String::new(), "order list of 42".into()),
        (_, "/profile" | "/orders/42") => ("401 Unauthorized", String::new(), "log in".into()),
        _ => ("404 Not Found", String::new(), "no such page".into()),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn journey_names_the_step_that_breaks_and_its_rule_fires() {
    let shop = Shop::start();
    let config = monitoring_config(
        free_port(),
        nowhere(),
        &format!(
            r#"
[alerting]
default_rules = false
[[monitor]]
name = "checkout"
kind = "journey"
interval = "1s"
steps = [
  {{ name = "login", method = "POST", url = "{login}", body = "user=probe", expect_status = 200 }},
  {{ name = "profile", url = "{profile}", json = {{ pointer = "/user/id", equals = 42 }}, capture = [{{ name = "uid", json = "/user/id" }}] }},
  {{ name = "orders", url = "{orders}", body_contains = "order list of 42" }},
]
[[rule]]
name = "journey-broken"
monitor = "checkout"
value = "failed_step"
warn = {{ above = 0 }}
annotations = {{ summary = "checkout fails at step {{{{value}}}}" }}
"#,
            login = shop.url("/login"),
            profile = shop.url("/profile"),
            orders = shop.url("/orders/{{uid}}"),
        ),
    );
    let gw = start("alerts-journey", &config);

    // Healthy: runs pass with every step, and the rule stays quiet.
    wait_until("three journey runs", WAIT, || runs(&gw, "checkout") >= 3);
    let m = monitor(&gw, "checkout");
    let last = &m["last"];
    assert!(last["error"].is_null(), "healthy journey failed: {m}");
    let steps = last["detail"].as_array().expect("steps in detail");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["login", "profile", "orders"], "{m}");
    assert!(
        steps.iter().all(|s| s["ok"] == true && s["status"] == 200),
        "{m}"
    );
    assert_eq!(reading(&gw, "checkout", "failed_step"), Some(0.0), "{m}");
    assert_eq!(reading(&gw, "checkout", "up"), Some(1.0), "{m}");
    let latencies = last["readings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["value"] == "step_latency_ms")
        .count();
    assert_eq!(latencies, 3, "one step_latency_ms per step: {m}");
    assert!(
        is_quiet(&gw, "journey-broken", "checkout"),
        "{:?}",
        alerts(&gw)
    );

    // Step 2 breaks: the rule fires with the failed step's index, and the monitor says which.
    shop.broken.store(true, Ordering::SeqCst);
    wait_until("the journey rule to fire", WAIT, || {
        is_firing(&gw, "journey-broken", "checkout", Some("warning"))
    });
    let alert = alert_on(&gw, "journey-broken", "checkout").unwrap();
    assert_eq!(alert["value"], 2.0, "{alert}");
    assert_eq!(
        alert["annotations"]["summary"], "checkout fails at step 2",
        "{alert}"
    );
    let m = monitor(&gw, "checkout");
    let error = m["last"]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.starts_with("step 2 (\"profile\")") && error.contains("500"),
        "the error names step 2: {m}"
    );
    let steps = m["last"]["detail"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "the journey stops at the failed step: {m}");
    assert_eq!(steps[0]["ok"], true, "{m}");
    assert_eq!(steps[1]["name"], "profile", "{m}");
    assert_eq!(steps[1]["ok"], false, "{m}");
    assert_eq!(steps[1]["status"], 500, "{m}");
    assert_eq!(reading(&gw, "checkout", "up"), Some(0.0), "{m}");

    // Repaired: the alert resolves.
    shop.broken.store(false, Ordering::SeqCst);
    wait_until("the journey rule to resolve", WAIT, || {
        alert_on(&gw, "journey-broken", "checkout").is_some_and(|a| a["state"] == "resolved")
    });
}

/// `POST /api/v1/heartbeat/{name}{suffix}`: the status.
fn beat(gw: &Gateway, name: &str, suffix: &str) -> u16 {
    let (code, body) = post_json(gw, &format!("/api/v1/heartbeat/{name}{suffix}"), "");
    assert!(code == 200 || code == 404, "{code} {body}");
    code
}

#[test]
fn heartbeat_is_late_after_period_and_grace_and_a_failure_fires_at_once() {
    let config = monitoring_config(
        free_port(),
        nowhere(),
        r#"
[alerting]
default_rules = false
[[monitor]]
name = "backup"
kind = "heartbeat"
interval = "1s"
period = "2s"
grace = "1s"
[[rule]]
name = "job-late"
monitor = "backup"
value = "late"
crit = { above = 0 }
[[rule]]
name = "job-failed"
monitor = "backup"
value = "failed"
crit = { above = 0 }
# A job checked once a minute: only /fail's immediate run can make its failure fire soon.
[[monitor]]
name = "nightly"
kind = "heartbeat"
interval = "60s"
period = "24h"
[[rule]]
name = "job-failed"
monitor = "nightly"
value = "failed"
crit = { above = 0 }
"#,
    );
    let gw = start("alerts-heartbeat", &config);
    assert_eq!(beat(&gw, "no-such-job", ""), 404);
    assert_eq!(beat(&gw, "no-such-job", "/fail"), 404);

    // A job that pings every half second, for longer than period + grace, is never late.
    let start = Instant::now();
    let runs_before = runs(&gw, "backup");
    while start.elapsed() < Duration::from_secs(6) || runs(&gw, "backup") < runs_before + 4 {
        assert_eq!(beat(&gw, "backup", "/start"), 200);
        assert_eq!(beat(&gw, "backup", ""), 200);
        assert!(
            is_quiet(&gw, "job-late", "backup"),
            "late while pinging: {:?}",
            alerts(&gw)
        );
        std::thread::sleep(Duration::from_millis(500));
        assert!(start.elapsed() < WAIT, "the monitor does not run");
    }
    assert_eq!(reading(&gw, "backup", "late"), Some(0.0));
    let hb = &monitor(&gw, "backup")["heartbeat"];
    assert!(hb["last_duration_ms"].is_u64(), "a run was timed: {hb}");

    // It stops: late once period + grace (3 s) have passed since its last ping, not before.
    let last_ping = now_ms();
    assert_eq!(beat(&gw, "backup", ""), 200);
    wait_until("the late alert", WAIT, || {
        is_firing(&gw, "job-late", "backup", Some("critical"))
    });
    let alert = alert_on(&gw, "job-late", "backup").unwrap();
    let since = alert["since_unix_ms"].as_u64().unwrap();
    assert!(
        since >= last_ping + 3000,
        "late {} ms after the last ping, before period + grace: {alert}",
        since as i64 - last_ping as i64
    );
    assert!(is_quiet(&gw, "job-failed", "backup"));

    // It pings again: resolved.
    assert_eq!(beat(&gw, "backup", ""), 200);
    wait_until("the late alert to resolve", WAIT, || {
        alert_on(&gw, "job-late", "backup").is_some_and(|a| a["state"] == "resolved")
    });

    // A failure fires at once, and the next good ping clears it.
    assert_eq!(beat(&gw, "backup", "/fail"), 200);
    wait_until("the failed alert", WAIT, || {
        is_firing(&gw, "job-failed", "backup", Some("critical"))
    });
    assert_eq!(beat(&gw, "backup", ""), 200);
    wait_until("the failed alert to resolve", WAIT, || {
        alert_on(&gw, "job-failed", "backup").is_some_and(|a| a["state"] == "resolved")
    });

    // On a monitor run once a minute, /fail still fires within seconds: it runs the monitor
    // now rather than at its next tick.
    wait_until("nightly's first run", WAIT, || runs(&gw, "nightly") >= 1);
    assert!(is_quiet(&gw, "job-failed", "nightly"));
    let (code, body) = post_json(&gw, "/api/v1/heartbeat/nightly/fail", "disk full");
    assert_eq!(code, 200, "{body}");
    wait_until("nightly's failure to fire", Duration::from_secs(15), || {
        is_firing(&gw, "job-failed", "nightly", Some("critical"))
    });
    let hb = &monitor(&gw, "nightly")["heartbeat"];
    assert_eq!(hb["last_fail_reason"], "disk full", "{hb}");
}

#[test]
fn tls_probe_reports_days_left_and_the_default_expiry_rule_warns() {
    let dir = scratch("alerts-tls");
    let (cert, key) = (dir.join("soon.crt"), dir.join("soon.key"));
    let expires = SystemTime::now() + Duration::from_secs(20 * 86_400);
    tls_client::write_cert(&cert, &key, "soon.test", &["soon.test"], Some(expires));
    let port = free_port();
    let config = format!(
        r#"{}protocol = "https"
tls = {{ cert = "{cert}", key = "{key}" }}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
[[monitor]]
name = "soon-cert"
kind = "tls"
interval = "1s"
target = "127.0.0.1:{port}"
server_name = "soon.test"
ca_file = "{cert}"
"#,
        preamble(port),
        cert = cert.display(),
        key = key.display(),
        backend = nowhere(),
    );
    let gw = start("alerts-tls", &config);
    wait_until("a tls run", WAIT, || {
        reading(&gw, "soon-cert", "days_left").is_some()
    });
    let m = monitor(&gw, "soon-cert");
    let days = reading(&gw, "soon-cert", "days_left").unwrap();
    assert!((19.0..=21.0).contains(&days), "days_left {days}: {m}");
    assert_eq!(reading(&gw, "soon-cert", "chain_valid"), Some(1.0), "{m}");
    let version = reading(&gw, "soon-cert", "tls_version").unwrap();
    assert!(version == 12.0 || version == 13.0, "{m}");

    // The default rule pack warns below 30 days (critical only below 7).
    wait_until("certificate-expiry to fire", WAIT, || {
        is_firing(&gw, "certificate-expiry", "soon-cert", None)
    });
    let alert = alert_on(&gw, "certificate-expiry", "soon-cert").unwrap();
    assert_eq!(alert["severity"], "warning", "{alert}");
    assert_eq!(alert["threshold"], 30.0, "{alert}");
    let value = alert["value"].as_f64().unwrap();
    assert!((19.0..=21.0).contains(&value), "{alert}");
}

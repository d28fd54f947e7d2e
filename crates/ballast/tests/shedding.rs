//! Priority shedding through real sockets: a gateway whose upstream has a concurrency limit, in
//! front of a lab backend with a real capacity (a few requests at a time, each taking a while),
//! offered twice that capacity on a critical and a low route.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ballast_lab::backend::{Knobs, LatencyKnob};
use ballast_lab::load::{self, LoadSpec, Mode};
use common::*;

/// A lab backend process (`ballast lab-backend`), killed on drop.
struct LabBackend {
    addr: SocketAddr,
    child: Child,
}

impl LabBackend {
    fn start(knobs: &Knobs) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(BIN)
            .args(["lab-backend", "--listen", &addr.to_string(), "--name", "b0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lab backend");
        let b = LabBackend { addr, child };
        wait_until("lab backend to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        let body = serde_json::to_string(knobs).unwrap();
        let (code, text) = raw_http(
            addr,
            &format!(
                "PUT /_lab/knobs HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(code, 200, "{text}");
        b
    }
}

impl Drop for LabBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, backend: SocketAddr, limit: &str) -> String {
    format!(
        r#"{preamble}[[route]]
name = "critical"
match = {{ path_prefix = "/critical/" }}
upstream = "app"
priority = "critical"
[[route]]
name = "low"
upstream = "app"
priority = "low"
[[upstream]]
name = "app"
passive = {{ enabled = false }}
limit = {limit}
servers = [{{ addr = "{backend}" }}]
"#,
        preamble = preamble(port)
    )
}

/// The value of one sample of `/metrics`, by its full name with labels.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
}

#[test]
fn under_twice_the_capacity_critical_keeps_succeeding_while_low_is_shed() {
    // Capacity: 4 at a time × 25 ms = 160 req/s.
    let backend = LabBackend::start(&Knobs {
        latency: Some(LatencyKnob::Fixed { ms: 25.0 }),
        max_concurrency: Some(4),
        ..Knobs::default()
    });
    let port = free_port();
    let gw = Gateway::start("shed", &config(port, backend.addr, "{ initial = 4 }"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let capacity = 160.0;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let epoch = Instant::now();
    let group = |path: &str, share: f64| {
        let mut spec = LoadSpec::new(addr);
        spec.path = path.into();
        spec.mode = Mode::Open {
            rate: 2.0 * capacity * share,
        };
        spec.duration = Duration::from_secs(6);
        spec.request_timeout = Duration::from_secs(5);
        spec.max_connections = 256;
        spec.epoch = epoch;
        spec
    };
    let (critical, low) = rt.block_on(async {
        let c = tokio::spawn(load::run(group("/critical/x", 0.2), None));
        let l = tokio::spawn(load::run(group("/low/x", 0.8), None));
        (c.await.unwrap().unwrap(), l.await.unwrap().unwrap())
    });

    let shed_low = low.statuses.get(&503).copied().unwrap_or(0);
    println!(
        "critical: {} of {} ok {:?}; low: {} of {} ok, {} shed",
        critical.ok, critical.sent, critical.statuses, low.ok, low.sent, shed_low
    );
    assert!(critical.sent > 300, "{critical:?}");
    assert!(
        critical.success_ratio() >= 0.99,
        "critical success {:.4}: {:?}",
        critical.success_ratio(),
        critical.statuses
    );
    // Low is shed (a large part of it: the offer is twice the capacity) yet still served.
    assert!(
        shed_low as f64 > 0.2 * low.sent as f64,
        "{:?}",
        low.statuses
    );
    assert!(low.ok > 0, "{:?}", low.statuses);

    let m = gw.metrics();
    let shed = |class: &str, reason: &str| {
        metric(
            &m,
            &format!(
                "ballast_shed_total{{upstream=\"app\",priority=\"{class}\",reason=\"{reason}\"}}"
            ),
        )
    };
    let low_shed: f64 = ["busy", "queue_full", "timeout", "evicted"]
        .iter()
        .map(|r| shed("low", r))
        .sum();
    assert_eq!(low_shed as u64, shed_low, "every 503 was a shed, counted");
    // Policy never sheds critical: it is never refused for the busy share, never evicted by a
    // more important class and never loses its place to a lower one.
    for r in ["busy", "queue_full", "evicted"] {
        assert_eq!(shed("critical", r), 0.0, "critical shed ({r})");
    }
    // Waiting longer than max_wait is a matter of timing: on a shared 2-core machine a stall can
    // make one queued critical request time out (seen once in about 15 runs). The same 1% the
    // success ratio allows.
    let critical_timeouts = shed("critical", "timeout");
    assert!(
        critical_timeouts <= 0.01 * critical.sent as f64,
        "critical timed out in the queue {critical_timeouts} times of {}",
        critical.sent
    );
    let status = gw.status();
    let limit = &status["upstreams"][0]["limit"];
    assert!(limit["limit"].as_u64().unwrap() >= 4, "{limit}");
    assert_eq!(
        limit["shed"]["critical"].as_f64(),
        Some(critical_timeouts),
        "{limit}"
    );
    let (_, events) = gw.admin_get("/api/v1/events");
    assert!(events.contains("\"kind\":\"shedding_started\""), "{events}");
}

#[test]
fn a_shed_answer_is_a_503_with_retry_after_that_never_reaches_the_upstream() {
    let backend = Backend::start("b1");
    let port = free_port();
    let gw = Gateway::start(
        "shed-answer",
        &config(
            port,
            backend.addr,
            r#"{ algorithm = "fixed", initial = 1, min = 1, max_queue = 0, retry_after = "2s" }"#,
        ),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // One slow request holds the only slot.
    let slow = std::thread::spawn(move || {
        raw_http(
            addr,
            "GET /slow/1500 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
    });
    wait_until(
        "the slow request to hold the slot",
        Duration::from_secs(5),
        || gw.status()["upstreams"][0]["limit"]["in_flight"] == 1,
    );
    let text = raw_exchange(
        addr,
        b"GET /low/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let (code, _) = parse_status(&text);
    assert_eq!(code, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 2\r\n"),
        "{text}"
    );
    // Critical has no class below it to evict and no queue: shed too, never let past the limit.
    let (code, _) = raw_http(
        addr,
        "GET /critical/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 503);
    let (code, _) = slow.join().unwrap();
    assert_eq!(code, 200);
    assert_eq!(backend.app_count(), 1, "only the slow request got through");
    // The slot is free again: the next request is served.
    let (code, _) = raw_http(
        addr,
        "GET /low/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    let log = gw.access_lines();
    assert!(
        log.iter()
            .any(|l| l["error"] == "shed_queue_full" && l["status"] == 503),
        "{log:?}"
    );
}

#[test]
fn while_saturated_the_low_share_is_refused_at_once_and_critical_waits_for_a_slot() {
    let backend = Backend::start("b2");
    let port = free_port();
    let gw = Gateway::start(
        "shed-share",
        &config(
            port,
            backend.addr,
            r#"{ algorithm = "fixed", initial = 1, min = 1, max_wait = "3s", shed = { low = "100%" } }"#,
        ),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let slow = std::thread::spawn(move || {
        raw_http(
            addr,
            "GET /slow/1000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
    });
    wait_until(
        "the slow request to hold the slot",
        Duration::from_secs(5),
        || gw.status()["upstreams"][0]["limit"]["in_flight"] == 1,
    );
    // Critical queues behind the slow request (max_wait 3 s) and is served when it ends.
    let critical = std::thread::spawn(move || {
        raw_http(
            addr,
            "GET /critical/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
    });
    wait_until(
        "critical to wait for the slot",
        Duration::from_secs(5),
        || gw.status()["upstreams"][0]["limit"]["waiting"] == 1,
    );
    // Low, while saturated, is refused at once: its whole share is shed without queueing (the
    // access log's `shed_busy` below says which rule refused it; a queued one would say
    // `shed_timeout` or be served).
    let (code, _) = raw_http(
        addr,
        "GET /low/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 503);
    assert_eq!(slow.join().unwrap().0, 200);
    assert_eq!(critical.join().unwrap().0, 200, "critical was never shed");
    // Saturation over: low is let in again.
    let (code, _) = raw_http(
        addr,
        "GET /low/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    assert_eq!(backend.app_count(), 3, "slow, critical and the last low");
    let log = gw.access_lines();
    assert!(
        log.iter()
            .any(|l| l["error"] == "shed_busy" && l["route"] == "low"),
        "{log:?}"
    );
    let status = gw.status();
    assert_eq!(status["upstreams"][0]["limit"]["shed"]["low"], 1);
    assert_eq!(status["upstreams"][0]["limit"]["shed"]["critical"], 0);
}

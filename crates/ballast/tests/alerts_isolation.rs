//! Isolation: a probe whose target accepts connections and never answers is abandoned at its
//! timeout and reported as such (`timed_out`, `up` 0, its min rule firing, counted in
//! `ballast_monitor_runs_total{result="timeout"}`), while another monitor keeps its pace and
//! the gateway keeps serving. Real `ballast` process, real sockets.

mod alerts_support;
mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alerts_support::*;
use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// Accepts every connection and holds it open without a byte in reply until dropped.
struct Tarpit {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Tarpit {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Tarpit { addr, stop }
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_hung_probe_times_out_alone() {
    let tarpit = Tarpit::start();
    let backend = Backend::start("iso-app");
    let port = free_port();
    let config = monitoring_config(
        port,
        backend.addr,
        &format!(
            r#"
[alerting]
default_rules = false

[[monitor]]
name = "hung"
kind = "http"
url = "http://{tarpit}/"
interval = "1s"
timeout = "300ms"

[[monitor]]
name = "steady"
kind = "tcp"
target = "{backend}"
interval = "1s"

[[rule]]
name = "hung-down"
monitor = "hung"
value = "up"
min = {{ below = 1 }}
"#,
            tarpit = tarpit.addr,
            backend = backend.addr,
        ),
    );
    let gw = start("iso", &config);
    wait_until("the hung monitor to time out twice", WAIT, || {
        monitor(&gw, "hung")["timed_out"].as_u64().unwrap_or(0) >= 2
    });
    let hung = monitor(&gw, "hung");
    assert_eq!(hung["last"]["timed_out"], true, "{hung}");
    let error = hung["last"]["error"].as_str().unwrap_or("");
    assert!(error.contains("timed out after 300ms"), "{hung}");
    assert_eq!(reading(&gw, "hung", "up"), Some(0.0));
    wait_until("hung-down to fire", WAIT, || {
        is_firing(&gw, "hung-down", "hung", Some("critical"))
    });

    // The steady monitor kept its pace: it has not waited on the hung one.
    let before = runs(&gw, "steady");
    wait_until("three more steady runs", WAIT, || {
        runs(&gw, "steady") >= before + 3
    });
    let steady = monitor(&gw, "steady");
    assert_eq!(steady["timed_out"], 0, "{steady}");
    assert_eq!(reading(&gw, "steady", "up"), Some(1.0));

    // The data plane serves throughout.
    let (code, _) = raw_http(
        local(port),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    let metrics = gw.metrics();
    let timeouts = metric_value(
        &metrics,
        r#"ballast_monitor_runs_total{monitor="hung",result="timeout"}"#,
    )
    .unwrap_or(0.0);
    assert!(timeouts >= 2.0, "{metrics}");
}

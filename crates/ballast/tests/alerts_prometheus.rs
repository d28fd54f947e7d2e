//! A real Prometheus and a real Alertmanager feeding Ballast: Prometheus scrapes a small
//! exporter inside the test, evaluates an alerting rule on it, and sends the alert to
//! Alertmanager, whose webhook receiver is Ballast's `POST /api/v1/alertmanager`. The alert
//! appears in `/api/v1/alerts` (source `alertmanager`, firing, severity from its label), and
//! resolves in Ballast when the exporter's condition clears and Prometheus resolves it.
//!
//! Needs the Debian packages `prometheus` and `prometheus-alertmanager` (`.ci/run` installs
//! them). Without them the test says so and passes, unless `BALLAST_REQUIRE_PROMETHEUS` is set,
//! in which case it fails.

mod alerts_support;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alerts_support::*;
use common::*;
use serde_json::Value;

/// The first of `names` found on `PATH`.
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A child process killed (and reaped) on drop, its output in `dir/NAME.log`.
struct Proc {
    name: String,
    log: PathBuf,
    child: Child,
}

impl Proc {
    fn spawn(name: &str, dir: &Path, bin: &Path, args: &[String]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Proc {
            name: name.to_string(),
            log,
            child,
        }
    }

    /// Its output so far, for failure messages.
    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        format!(
            "--- {} (last lines) ---\n{}",
            self.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Waits until `GET /-/ready` on `addr` answers 200; panics if the process exits.
    fn wait_ready(&mut self, addr: SocketAddr) {
        let name = self.name.clone();
        wait_until(
            &format!("{name} to be ready"),
            Duration::from_secs(30),
            || {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("{name} exited with {status}:\n{}", self.output());
                }
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                    && raw_http(
                        addr,
                        "GET /-/ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                    )
                    .0 == 200
            },
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An exporter on a std listener: `GET /metrics` answers `ballast_test_queue_stuck 1` while
/// `stuck` is set, else `0`. The accept thread ends with the test process.
fn exporter(stuck: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let stuck = stuck.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line.trim().is_empty() => break,
                        Ok(_) => {}
                    }
                }
                let body = format!(
                    "# HELP ballast_test_queue_stuck 1 while the test's queue is stuck.\n# TYPE ballast_test_queue_stuck gauge\nballast_test_queue_stuck {}\n",
                    u8::from(stuck.load(Ordering::SeqCst))
                );
                let mut out = stream;
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

/// The alerts named `QueueStuck` that Ballast lists.
fn queue_alerts(gw: &Gateway) -> Vec<Value> {
    alerts_of(gw, "QueueStuck")
}

#[test]
fn prometheus_alert_routed_through_alertmanager_fires_and_resolves_in_ballast() {
    let prometheus = which(&["prometheus"]);
    let alertmanager = which(&["prometheus-alertmanager", "alertmanager"]);
    let (Some(prometheus), Some(alertmanager)) = (prometheus.clone(), alertmanager.clone()) else {
        let missing = format!(
            "prometheus: {}, alertmanager: {}",
            prometheus.map_or("missing".into(), |p| p.display().to_string()),
            alertmanager.map_or("missing".into(), |p| p.display().to_string()),
        );
        assert!(
            std::env::var_os("BALLAST_REQUIRE_PROMETHEUS").is_none(),
            "BALLAST_REQUIRE_PROMETHEUS is set but the binaries are not on PATH ({missing}); install the Debian packages prometheus and prometheus-alertmanager"
        );
        eprintln!(
            "SKIPPED: Prometheus and Alertmanager are needed ({missing}); install the Debian packages prometheus and prometheus-alertmanager, or set BALLAST_REQUIRE_PROMETHEUS=1 to make their absence fail"
        );
        return;
    };

    let gw = start(
        "alerts-prometheus",
        &monitoring_config(
            free_port(),
            nowhere(),
            "[alerting]\ndefault_rules = false\n",
        ),
    );
    let stuck = Arc::new(AtomicBool::new(false));
    let target = exporter(stuck.clone());
    let dir = scratch("alerts-prometheus-peers");

    // Alertmanager: one route, sent at once and resolved notifications on, to Ballast.
    let am = local(free_port());
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            r#"route:
  receiver: ballast
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ballast
    webhook_configs:
      - url: 'http://{admin}/api/v1/alertmanager'
        send_resolved: true
"#,
            admin = gw.admin
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("am-data")).unwrap();
    let mut am_proc = Proc::spawn(
        "alertmanager",
        &dir,
        &alertmanager,
        &[
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address={am}"),
            "--cluster.listen-address=".into(),
        ],
    );
    am_proc.wait_ready(am);

    // Prometheus: scrapes the exporter every second and fires QueueStuck as soon as it is 1.
    std::fs::write(
        dir.join("rules.yml"),
        r#"groups:
  - name: ballast-test
    interval: 1s
    rules:
      - alert: QueueStuck
        expr: ballast_test_queue_stuck == 1
        for: 0s
        labels:
          severity: critical
          team: ops
        annotations:
          summary: the queue is stuck
"#,
    )
    .unwrap();
    let prom = local(free_port());
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - '{rules}'
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{am}']
scrape_configs:
  - job_name: queue
    static_configs:
      - targets: ['{target}']
"#,
            rules = dir.join("rules.yml").display(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("prom-data")).unwrap();
    let mut prom_proc = Proc::spawn(
        "prometheus",
        &dir,
        &prometheus,
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address={prom}"),
            "--rules.alert.resend-delay=1s".into(),
        ],
    );
    prom_proc.wait_ready(prom);
    let peers = |what: &str| {
        format!(
            "{what}\n{}\n{}\nballast alerts: {:?}",
            prom_proc.output(),
            am_proc.output(),
            queue_alerts(&gw)
        )
    };

    // Prometheus is scraping the exporter before the condition turns true.
    let scraped = || {
        let (code, body) = raw_http(
            prom,
            "GET /api/v1/query?query=ballast_test_queue_stuck HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        code == 200 && body.contains("\"ballast_test_queue_stuck\"")
    };
    let start_wait = std::time::Instant::now();
    while !scraped() {
        assert!(
            start_wait.elapsed() < Duration::from_secs(60),
            "{}",
            peers("Prometheus never scraped the exporter")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        queue_alerts(&gw).is_empty(),
        "{}",
        peers("an alert before the condition")
    );

    // The condition: Prometheus fires, Alertmanager routes it to Ballast.
    stuck.store(true, Ordering::SeqCst);
    let start_wait = std::time::Instant::now();
    while !queue_alerts(&gw).iter().any(|a| firing(a, None)) {
        assert!(
            start_wait.elapsed() < Duration::from_secs(90),
            "{}",
            peers("QueueStuck never reached Ballast")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = queue_alerts(&gw);
    assert_eq!(listed.len(), 1, "one alert, deduplicated: {listed:?}");
    let a = &listed[0];
    assert_eq!(a["source"], "alertmanager", "{a}");
    assert_eq!(a["severity"], "critical", "from the severity label: {a}");
    assert_eq!(a["labels"]["team"], "ops", "{a}");
    assert_eq!(a["labels"]["job"], "queue", "{a}");
    assert_eq!(a["annotations"]["summary"], "the queue is stuck", "{a}");
    let id = a["id"].clone();

    // The condition clears: Prometheus resolves it, Alertmanager says so, Ballast resolves it.
    stuck.store(false, Ordering::SeqCst);
    let start_wait = std::time::Instant::now();
    while !queue_alerts(&gw)
        .iter()
        .any(|a| a["id"] == id && a["state"] == "resolved")
    {
        assert!(
            start_wait.elapsed() < Duration::from_secs(90),
            "{}",
            peers("QueueStuck never resolved in Ballast")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = queue_alerts(&gw);
    assert_eq!(listed.len(), 1, "the same alert, resolved: {listed:?}");
}

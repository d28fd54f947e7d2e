//! `ballast demo` and the walkthrough it prints, as a newcomer follows it: the guide names the
//! dashboard URL and the pid to kill; after the kill the dashboard shows the incident, the
//! message to the demo's own chat receiver, the remedy's restart, and the backend up again;
//! the incident's page has the timeline and its post-mortem downloads.
//!
//! The demo uses fixed ports (8080, 9900, 9101-9103), which no other test binds (they take
//! ephemeral ports), and writes under `$TMPDIR/ballast-demo`, pointed at a scratch directory.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const ADMIN: &str = "127.0.0.1:9900";

/// The demo process; stopped with SIGTERM (so it kills its backends) when the test ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; no memory effects.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The whole answer (head and body) to a GET on the admin listener; empty before it listens.
fn exchange(path: &str) -> String {
    let admin: SocketAddr = ADMIN.parse().unwrap();
    if std::net::TcpStream::connect_timeout(&admin, Duration::from_millis(500)).is_err() {
        return String::new();
    }
    raw_exchange(
        admin,
        format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn get(path: &str) -> (u16, String) {
    parse_status(&exchange(path))
}

#[test]
fn the_printed_walkthrough_works_kill_a_backend_watch_it_come_back_open_the_incident() {
    let tmp = scratch("demo-walkthrough");
    let mut child = Command::new(BIN)
        .arg("demo")
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _demo = Demo(child);
    // The guide is printed before the gateway starts; read it, then keep draining stderr.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut guide = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let end = line.contains("Ctrl-C stops everything");
        guide.push(line);
        if end {
            break;
        }
    }
    let guide = guide.join("\n");
    assert!(
        guide.contains("Dashboard: http://127.0.0.1:9900/"),
        "the guide names the dashboard:\n{guide}"
    );
    let pid: i32 = guide
        .lines()
        .find_map(|l| l.trim().strip_prefix("1. kill "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the guide's first step names a pid:\n{guide}"));
    wait_until("the dashboard", Duration::from_secs(30), || {
        get("/").0 == 200
    });
    let (_, overview) = get("/");
    assert_eq!(
        overview.matches("data-state=\"up\"").count(),
        6,
        "three backends in two upstreams, all up:\n{overview}"
    );

    // Step 1: kill alpha, as printed.
    // SAFETY: kill(2) on the pid the demo printed (its own child); no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    wait_until(
        "incident #1 on the overview",
        Duration::from_secs(30),
        || get("/").1.contains("class=\"incident\" data-id=\"1\""),
    );
    wait_until(
        "the remedy's restart on the remediation page",
        Duration::from_secs(30),
        || {
            let (_, page) = get("/ui/remediations");
            page.contains("data-rule=\"restart-web-server\" data-result=\"ok\"")
        },
    );
    wait_until("alpha up again", Duration::from_secs(30), || {
        get("/").1.matches("data-state=\"up\"").count() == 6
    });
    wait_until(
        "the message to demo-chat on the messages page",
        Duration::from_secs(30),
        || {
            let (_, page) = get("/ui/notifications");
            page.contains("data-receiver=\"demo-chat/webhook\" data-state=\"delivered\"")
        },
    );

    // Step 2: the incident's page and its post-mortem.
    let (status, incident) = get("/ui/incidents/1");
    assert_eq!(status, 200, "{incident}");
    for needle in ["server-down", "remediation restart-web-server", "demo-chat"] {
        assert!(
            incident.contains(needle),
            "the timeline shows {needle:?}:\n{incident}"
        );
    }
    let md = exchange("/ui/incidents/1/postmortem.md");
    assert_eq!(parse_status(&md).0, 200, "{md}");
    assert!(md.contains("attachment; filename=\"incident-1-postmortem.md\""));
    assert!(md.contains("# "), "a Markdown post-mortem:\n{md}");
}

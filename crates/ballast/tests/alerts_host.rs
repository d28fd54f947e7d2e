//! Minimums, and alerts on the machine the gateway runs on, through a real gateway process:
//!
//! - **Minimum**: a `process` monitor counts a `sleep` this test spawns (found by a regex on
//!   its unique command line); a `min = { below = 1 }` rule on `count` fires critical once
//!   the process is killed (0 processes) and resolves once it runs again.
//! - **Minimum on traffic**: "too few requests", a `min = { below = 1 }` rule on a route's
//!   `requests_per_s`, fires while the route has had no request at all (its counters exist at
//!   0 from the start), ends once traffic flows, and fires again when the traffic stops.
//! - **Disk and inodes**: a `host` monitor watches a 1 MiB tmpfs with 64 inodes that the test
//!   mounts; rules on `disk_used` and `inodes_used` (with a `for`) fire once the test fills
//!   it with files and data, and resolve once it is emptied. Mounting needs root (the tests
//!   run as root); the mount is undone by a guard whether the test passes or not.

mod alerts_support;
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use alerts_support::*;
use common::*;

/// A `sleep` process with a command line no other process has; killed on drop.
struct Sleeper {
    arg: String,
    child: Option<Child>,
}

impl Sleeper {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut s = Sleeper {
            arg: format!("3600.{}{nanos:09}", std::process::id()),
            child: None,
        };
        s.start();
        s
    }

    /// The regex that finds it (and nothing else).
    fn regex(&self) -> String {
        format!("^sleep {}$", self.arg.replace('.', "\\."))
    }

    fn start(&mut self) {
        let child = Command::new("sleep")
            .arg(&self.arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        self.child = Some(child);
    }

    /// SIGKILL and reap (a zombie would not count anyway).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The readings of monitor `name`'s last run: (value, number) pairs.
fn last_readings(gw: &Gateway, name: &str) -> Vec<(String, f64)> {
    let (code, body) = gw.admin_get("/api/v1/monitors");
    if code != 200 {
        return Vec::new();
    }
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    all.iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["last"]["readings"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap_or("").to_string(),
                r["number"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

#[test]
fn a_min_rule_fires_when_the_process_is_gone_and_resolves_when_it_is_back() {
    let mut sleeper = Sleeper::new();
    let port = free_port();
    let config = format!(
        r#"{preamble}
[alerting]
default_rules = false

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "127.0.0.1:9" }}]

[[monitor]]
name = "sleeper"
kind = "process"
cmdline = '{regex}'
interval = "1s"

[[rule]]
name = "sleeper-missing"
monitor = "sleeper"
value = "count"
min = {{ below = 1 }}
"#,
        preamble = preamble(port),
        regex = sleeper.regex(),
    );
    let gw = start("alerts-min", &config);
    wait_until("the monitor to count the sleeper", ALERT_WAIT, || {
        last_readings(&gw, "sleeper").contains(&("count".to_string(), 1.0))
    });
    assert!(
        alert_of(&gw, "sleeper-missing", &[]).is_none(),
        "one process running: no alert; {:?}",
        alerts(&gw)
    );

    sleeper.kill();
    let a = wait_alert(&gw, "sleeper-missing", &[], "firing/critical", ALERT_WAIT);
    assert_eq!(a["value"], 0.0, "{a}");
    assert_eq!(a["threshold"], 1.0, "{a}");
    assert_eq!(a["labels"]["monitor"], "sleeper", "{a}");
    let id = a["id"].as_str().unwrap().to_string();

    sleeper.start();
    wait_alert(&gw, "sleeper-missing", &[], "resolved", ALERT_WAIT);
    assert_eq!(
        changes_of(&gw, &id),
        ["inactive→firing/critical", "firing/critical→resolved"]
    );
}

/// Fills `dir`: empty files until no inode is left, then data into one of them until no
/// block is left. Returns how many files were made.
fn fill(dir: &Path) -> usize {
    let mut n = 0;
    while std::fs::File::create(dir.join(format!("f{n}"))).is_ok() {
        n += 1;
        assert!(n < 10_000, "the inode limit was not reached");
    }
    assert!(n > 0, "no file could be created in {}", dir.display());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("f0"))
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0usize;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len();
        assert!(written < 64 << 20, "the size limit was not reached");
    }
    n
}

#[test]
fn disk_and_inode_rules_fire_on_a_full_filesystem_and_resolve_when_emptied() {
    let fs = Tmpfs::mount("size=1m,nr_inodes=64");
    let mount = fs.path().display().to_string();
    let port = free_port();
    let config = format!(
        r#"{preamble}
[alerting]
default_rules = false

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "127.0.0.1:9" }}]

[[monitor]]
name = "box"
kind = "host"
mounts = ["{mount}"]
interval = "1s"

[[rule]]
name = "disk-full"
monitor = "box"
value = "disk_used"
match = {{ mount = "{mount}" }}
warn = {{ above = "50%", recover = "40%" }}
crit = {{ above = "90%", recover = "80%" }}
for = "2s"

[[rule]]
name = "inodes-full"
monitor = "box"
value = "inodes_used"
match = {{ mount = "{mount}" }}
warn = {{ above = "50%", recover = "40%" }}
crit = {{ above = "90%", recover = "80%" }}
for = "2s"
"#,
        preamble = preamble(port),
    );
    let gw = start("alerts-disk", &config);
    let on_mount: &[(&str, &str)] = &[("mount", &mount)];
    wait_until("the monitor to read the empty mount", ALERT_WAIT, || {
        let r = last_readings(&gw, "box");
        r.iter().any(|(v, n)| v == "disk_used" && *n < 0.5)
            && r.iter().any(|(v, n)| v == "inodes_used" && *n < 0.5)
    });
    assert!(alerts(&gw).is_empty(), "{:?}", alerts(&gw));

    let files = fill(fs.path());
    let disk = wait_alert(&gw, "disk-full", on_mount, "firing/critical", ALERT_WAIT);
    let inodes = wait_alert(&gw, "inodes-full", on_mount, "firing/critical", ALERT_WAIT);
    eprintln!(
        "{files} files: disk_used {} inodes_used {}",
        disk["value"], inodes["value"]
    );
    for a in [&disk, &inodes] {
        assert!(a["value"].as_f64().unwrap() > 0.9, "{a}");
        assert_eq!(a["labels"]["monitor"], "box", "{a}");
    }

    for entry in std::fs::read_dir(fs.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    wait_alert(&gw, "disk-full", on_mount, "resolved", ALERT_WAIT);
    wait_alert(&gw, "inodes-full", on_mount, "resolved", ALERT_WAIT);
    for a in [&disk, &inodes] {
        let changes = changes_of(&gw, a["id"].as_str().unwrap());
        assert_eq!(
            changes.first().map(String::as_str),
            Some("inactive→pending"),
            "`for` holds it pending first: {changes:?}"
        );
        assert_eq!(
            changes.last().map(String::as_str),
            Some("firing/critical→resolved"),
            "{changes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_min_rule_fires_without_traffic() {
    let backend = Backend::start("a");
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
servers = [{{ addr = "{addr}" }}]

[[monitor]]
name = "traffic"
kind = "gateway"
route = "api"
window = "2s"
interval = "500ms"

[[rule]]
name = "too-few-requests"
monitor = "traffic"
value = "requests_per_s"
match = {{ route = "api" }}
min = {{ below = 1 }}
"#,
        preamble = preamble(port),
        addr = backend.addr,
    );
    let gw = start("alerts-min-traffic", &config);
    let firing = |gw: &Gateway| {
        alerts(gw)
            .into_iter()
            .filter(|a| a["rule"] == "too-few-requests" && a["state"] == "firing")
            .collect::<Vec<_>>()
    };

    // No request yet: the route's counters exist from the start (at 0), so the rule fires on
    // the route's series at 0. (A min rule with no series at all fires on a stand-in; the
    // evaluator's unit tests cover that.)
    wait_until("the rule to fire before any request", ALERT_WAIT, || {
        !firing(&gw).is_empty()
    });
    let before = firing(&gw).remove(0);
    eprintln!("before any request: {before}");
    assert_eq!(before["severity"], "critical", "{before}");
    assert_eq!(before["value"], 0.0, "missing counts as 0: {before}");
    assert_eq!(before["labels"]["route"], "api", "{before}");

    let run = LoadRun::start(local(port), 2, "/");
    wait_for("traffic to end the alert", ALERT_WAIT, || {
        firing(&gw).is_empty() && run.completed() > 0
    })
    .await;
    let tally = run.finish().await;
    assert_eq!(tally.errors, 0, "{:?}", tally.samples);

    // The traffic stops: the route's rate falls over the window and the rule fires on the
    // route's labels as soon as it is below 1/s (the window may still hold the last few
    // requests then, so the value is under the threshold, not necessarily 0).
    let after = wait_alert(
        &gw,
        "too-few-requests",
        &[("route", "api")],
        "firing/critical",
        ALERT_WAIT,
    );
    let value = after["value"].as_f64().expect("a value");
    assert!(value < 1.0, "{after}");
}

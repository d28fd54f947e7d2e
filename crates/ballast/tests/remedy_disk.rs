//! Disk full, cleaned by remediation: a 1 MiB tmpfs filled by the test with old logs, a new
//! log and an old file outside the clean's root; a host monitor and a disk rule on that mount;
//! a `clean` remedy for `*.log` older than an hour under `logs/`. The alert must fire, the
//! clean must remove only the old logs under its root (the new log and the file outside
//! survive, and a symlink out of the root is neither followed nor deleted), and the alert must
//! resolve.

mod brain_support;
mod common;

use std::io::Write;
use std::time::Duration;

use brain_support::*;
use common::*;

fn write_mb_fraction(path: &std::path::Path, kib: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&vec![b'x'; kib * 1024]).unwrap();
}

#[test]
fn clean_removes_only_old_files_under_its_root_and_the_disk_alert_resolves() {
    let fs = Tmpfs::mount("size=1m");
    let mount = fs.path().display().to_string();
    let logs = fs.path().join("logs");
    let keep = fs.path().join("keep");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    // 3 × 250 KiB of old logs, one new 50 KiB log, and an old 50 KiB .log outside the root.
    for n in 0..3 {
        let p = logs.join(format!("app-{n}.log"));
        write_mb_fraction(&p, 250);
        age_file(&p, Duration::from_secs(3 * 3600));
    }
    let new = logs.join("app-now.log");
    write_mb_fraction(&new, 50);
    let outside = keep.join("old.log");
    write_mb_fraction(&outside, 50);
    age_file(&outside, Duration::from_secs(3 * 3600));
    // A symlink in the root pointing out of it, named like a log.
    std::os::unix::fs::symlink(&outside, logs.join("link.log")).unwrap();

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
interval = "500ms"

[[rule]]
name = "disk-full"
monitor = "box"
value = "disk_used"
match = {{ mount = "{mount}" }}
crit = {{ above = "80%", recover = "60%" }}

[[remedy]]
name = "clean-logs"
when = {{ alert = "disk-full" }}
target = "{{{{mount}}}}"
do = [{{ clean = {{ root = "{logs}", glob = "*.log", older_than = "1h" }} }}]
verify = "30s"
"#,
        preamble = preamble(port),
        logs = logs.display(),
    );
    let gw = start_brain("remedy-disk", &config);
    wait_until("the clean run", WAIT, || {
        !remediations(&gw, "").0.is_empty()
    });
    let run = remediations(&gw, "").0.remove(0);
    assert_eq!(run["rule"], "clean-logs");
    assert_eq!(run["target"], mount);
    let out = run["steps"][0]["output"].as_str().unwrap();
    println!("{out}");
    for n in 0..3 {
        assert!(
            !logs.join(format!("app-{n}.log")).exists(),
            "old log {n} removed"
        );
    }
    assert!(new.exists(), "the new log survives");
    assert!(outside.exists(), "the file outside the root survives");
    assert!(
        logs.join("link.log").symlink_metadata().is_ok(),
        "a symlink is neither followed nor deleted"
    );
    // The alert resolves, and verify counts the run as a success.
    wait_until("the disk alert resolved", WAIT, || {
        let (_, body) = gw.admin_get("/api/v1/alerts");
        body.contains("disk-full") && !body.contains("\"firing\"")
    });
    wait_until("the run verified", WAIT, || {
        remediations(&gw, "").0[0]["result"] == "ok"
    });
    let fired = gw.events_of("alert_changed");
    assert!(
        fired
            .iter()
            .any(|e| e["to"]["state"] == "firing" || e.to_string().contains("firing")),
        "{fired:#?}"
    );
}

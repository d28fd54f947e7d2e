//! The process probe against real processes: `sleep`s with a unique argument, a copy of
//! `sleep` under a unique name, and pid files.

use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

/// A string no other process on the machine has in its arguments.
fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{:09}", std::process::id(), nanos)
}

/// Children killed and reaped when the test ends, whatever happens.
struct Children(Vec<Child>);

impl Children {
    fn kill_all(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn value(o: &Outcome, name: &str) -> f64 {
    o.readings
        .iter()
        .find(|r| r.value == name)
        .unwrap_or_else(|| panic!("no {name} in {o:?}"))
        .number
}

/// Runs the probe until `count` is `want`, a bounded number of times.
async fn await_count(probe: &ProcessProbe, want: f64) -> Outcome {
    let mut last = Outcome::default();
    for _ in 0..500 {
        last = probe.run().await;
        if last.error.is_none() && value(&last, "count") == want {
            return last;
        }
        tokio::task::yield_now().await;
    }
    panic!("count never became {want}: {last:?}");
}

fn spec(json: &str) -> ProcessSpec {
    serde_json::from_str(json).unwrap()
}

#[tokio::test]
async fn cmdline_counts_matching_processes_and_falls_to_zero() {
    let arg = format!("3000.{}", unique());
    let mut children = Children(
        (0..2)
            .map(|_| {
                Command::new("sleep")
                    .arg(&arg)
                    .spawn()
                    .expect("spawn sleep")
            })
            .collect(),
    );
    let re = format!("^sleep {}$", regex::escape(&arg));
    let probe = ProcessProbe::new(ProcessSpec {
        cmdline: Some(re),
        ..ProcessSpec::default()
    })
    .unwrap();
    assert_eq!(probe.kind(), "process");

    let o = await_count(&probe, 2.0).await;
    assert!(value(&o, "rss_bytes") > 0.0, "{o:?}");
    let pids = o.detail["pids"].as_array().unwrap().len();
    assert_eq!(pids, 2);

    children.kill_all();
    let o = await_count(&probe, 0.0).await;
    assert_eq!(value(&o, "rss_bytes"), 0.0);
}

#[tokio::test]
async fn name_matches_the_exact_comm() {
    // sleep under a name nothing else on the machine has: the kernel names a process after
    // the file it executed, so a symlink gives its name.
    let dir = std::env::temp_dir().join(format!("ballast-proc-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("bz{}", &unique()[..10]);
    let bin = dir.join(&name);
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a sleep binary");
    std::os::unix::fs::symlink(sleep, &bin).unwrap();
    let mut children = Children(vec![Command::new(&bin).arg("300").spawn().unwrap()]);

    let probe = ProcessProbe::new(spec(&format!(r#"{{"process": "{name}"}}"#))).unwrap();
    await_count(&probe, 1.0).await;
    // A prefix of the name is not the name.
    let prefix = ProcessProbe::new(spec(&format!(r#"{{"process": "{}"}}"#, &name[..6]))).unwrap();
    assert_eq!(value(&prefix.run().await, "count"), 0.0);

    children.kill_all();
    await_count(&probe, 0.0).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn pid_file_counts_its_live_pid_and_zero_otherwise() {
    let dir = std::env::temp_dir().join(format!("ballast-pidfile-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("daemon.pid");
    let probe = ProcessProbe::new(ProcessSpec {
        pid_file: Some(pid_file.clone()),
        ..ProcessSpec::default()
    })
    .unwrap();

    // Absent: 0, not an error.
    let o = probe.run().await;
    assert_eq!(o.error, None);
    assert_eq!(value(&o, "count"), 0.0);
    // Empty (a daemon still writing it): 0.
    std::fs::write(&pid_file, "").unwrap();
    assert_eq!(value(&probe.run().await, "count"), 0.0);

    let mut children = Children(vec![Command::new("sleep").arg("300").spawn().unwrap()]);
    let pid = children.0[0].id();
    std::fs::write(&pid_file, format!("{pid}\n")).unwrap();
    let o = await_count(&probe, 1.0).await;
    assert!(value(&o, "rss_bytes") > 0.0);

    // A dead pid: 0.
    children.kill_all();
    await_count(&probe, 0.0).await;

    // Garbage is an error naming the file.
    std::fs::write(&pid_file, "not-a-pid").unwrap();
    let err = probe.run().await.error.expect("an error");
    assert!(
        err.contains("daemon.pid") && err.contains("not a pid"),
        "{err}"
    );
    std::fs::write(&pid_file, "0").unwrap();
    assert!(probe.run().await.error.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spec_needs_exactly_one_selector() {
    let field = |json: &str| spec(json).validate().unwrap_err().field;
    assert_eq!(field("{}"), "process");
    assert_eq!(field(r#"{"process": "a", "cmdline": "b"}"#), "process");
    assert_eq!(
        field(r#"{"cmdline": "b", "pid_file": "/run/x.pid"}"#),
        "cmdline"
    );
    assert_eq!(
        field(r#"{"process": "a", "pid_file": "/run/x.pid"}"#),
        "process"
    );
    assert_eq!(field(r#"{"cmdline": "("}"#), "cmdline");
    assert_eq!(field(r#"{"cmdline": ""}"#), "cmdline");
    assert_eq!(field(r#"{"pid_file": "run/x.pid"}"#), "pid_file");
    assert_eq!(field(r#"{"process": "postgres-checkpointer"}"#), "process");
    assert_eq!(field(r#"{"process": ""}"#), "process");
    assert!(spec(r#"{"process": "nginx"}"#).validate().is_ok());
    assert!(spec(r#"{"cmdline": "gunicorn .*app:main"}"#)
        .validate()
        .is_ok());
    assert!(spec(r#"{"pid_file": "/run/nginx.pid"}"#).validate().is_ok());
    assert!(serde_json::from_str::<ProcessSpec>(r#"{"nmae": "x"}"#).is_err());
    assert!(ProcessProbe::new(spec(r#"{"cmdline": "["}"#)).is_err());
}

#[test]
fn truncate_never_splits_a_character() {
    assert_eq!(truncate("héllo", 2), "hé");
    assert_eq!(truncate("ab", 40), "ab");
}

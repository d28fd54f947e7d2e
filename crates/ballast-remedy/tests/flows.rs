//! The whole crate on real processes and directories, as the binary will drive it:
//! `[[remedy]]` text → `Rules` → `Remedy::on_alert` → `execute` → `Verifier` → `finish`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ballast_core::{AlertRecord, AlertSource, AlertState, Labels, RemediationResult, Severity};
use ballast_remedy::rule::{RemedySpec, Rules};
use ballast_remedy::run::{execute, Job, NoGateway, Remedy, Triggered};
use ballast_remedy::verify::Verifier;

#[derive(serde::Deserialize)]
struct File {
    remedy: Vec<RemedySpec>,
}

fn remedy(text: &str) -> Remedy {
    let specs = toml::from_str::<File>(text).unwrap().remedy;
    let receivers: BTreeSet<String> = ["web-oncall".to_string()].into();
    Remedy::new(Rules::new(&specs, &receivers).unwrap(), None)
}

fn firing(rule: &str, labels: Labels) -> AlertRecord {
    let labels = labels.with("alertname", rule);
    AlertRecord {
        id: labels.fingerprint(),
        rule: rule.into(),
        labels,
        annotations: BTreeMap::new(),
        state: AlertState::Firing {
            severity: Severity::Critical,
        },
        source: AlertSource::Rule,
        value: None,
        threshold: None,
        since_unix_ms: 0,
        updated_unix_ms: 0,
        ack: None,
    }
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("remedy-flow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn job(t: Triggered) -> Job {
    match t {
        Triggered::Execute(j) => j,
        Triggered::Refused(r) => panic!("refused: {r:?}"),
    }
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z")
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A rule whose restart command starts `sleep SECONDS` in the background and writes its pid.
fn restart_text(pidfile: &Path, seconds: u32) -> String {
    format!(
        r#"
[[remedy]]
name = "restart-backend"
when = {{ alert = "backend-down" }}
do = [{{ restart = {{ command = ["sh", "-c", "sleep {seconds} > /dev/null 2>&1 & echo $! > {}", "sh"] }} }}]
target = "{{{{server}}}}"
cooldown = "0s"
max_runs = {{ count = 3, per = "1h" }}
escalate_after = 5
verify = "30s"
escalate_to = "web-oncall"
"#,
        pidfile.display()
    )
}

#[tokio::test]
async fn restart_that_works_is_verified_and_not_escalated() {
    let dir = Dir::new("works");
    let pidfile = dir.0.join("backend.pid");
    let mut r = remedy(&restart_text(&pidfile, 60));
    let alert = firing(
        "backend-down",
        Labels::new().with("server", "127.0.0.1:9001"),
    );
    let (mut t, esc) = r.on_alert(&alert, 1000);
    assert!(esc.is_empty());
    let run = execute(&job(t.remove(0)), &NoGateway, || 1100).await;
    assert_eq!(run.result, RemediationResult::Ok, "{run:?}");
    let pid = read_pid(&pidfile);
    assert!(alive(pid), "the restarted backend is not running");

    let mut v = Verifier::new();
    v.watch(run, 30_000, 1100);
    // The alert resolves within verify: the run is verified.
    let verified = v.resolved(&alert.id, 5000);
    assert_eq!(verified.len(), 1);
    assert_eq!(r.finish(&verified[0], true, 5000), None);
    assert!(v.expired(100_000).is_empty());
    // SAFETY: kill(2) of the test's own backend.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[tokio::test]
async fn restart_that_does_not_work_stops_at_max_runs_and_escalates() {
    let dir = Dir::new("fails");
    let pidfile = dir.0.join("backend.pid");
    // The backend exits again right after each start.
    let mut r = remedy(&restart_text(&pidfile, 0));
    let alert = firing(
        "backend-down",
        Labels::new().with("server", "127.0.0.1:9002"),
    );
    let mut v = Verifier::new();
    let mut now = 0;
    let mut runs = 0;
    let mut escalations = Vec::new();
    for _ in 0..6 {
        now += 60_000;
        let (t, esc) = r.on_alert(&alert, now);
        escalations.extend(esc);
        for t in t {
            if let Triggered::Execute(j) = t {
                let run = execute(&j, &NoGateway, || now + 100).await;
                assert_eq!(
                    run.result,
                    RemediationResult::Ok,
                    "the command itself works"
                );
                runs += 1;
                v.watch(run, 30_000, now + 100);
            }
        }
        // The alert never resolves: every run fails verification.
        for failed in v.expired(now + 40_000) {
            assert!(matches!(failed.result, RemediationResult::Failed { .. }));
            escalations.extend(r.finish(&failed, false, now + 40_000));
        }
    }
    assert_eq!(runs, 3, "runs stop at max_runs");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0].receiver.as_deref(), Some("web-oncall"));
    assert_eq!(escalations[0].escalation.target, "127.0.0.1:9002");
}

#[tokio::test]
async fn disk_full_clean_removes_only_old_files_under_its_root() {
    let dir = Dir::new("disk");
    let root = dir.0.join("logs");
    let outside = dir.0.join("keep");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let now = SystemTime::now();
    let write = |p: &Path, age: Duration| {
        std::fs::write(p, vec![b'x'; 1000]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(now - age)
            .unwrap();
    };
    let day = Duration::from_secs(86_400);
    write(&root.join("app.log.1"), 3 * day);
    write(&root.join("app.log.2"), 3 * day);
    write(&root.join("app.log.3"), Duration::from_secs(10));
    write(&outside.join("app.log.1"), 3 * day);
    std::os::unix::fs::symlink(&outside, root.join("keep-link")).unwrap();
    let mut r = remedy(&format!(
        r#"
[[remedy]]
name = "clean-logs"
when = {{ alert = "disk-full", match = {{ mount = "~/.*" }} }}
do = [{{ clean = {{ root = "{}", glob = "app.log.*", older_than = "1d" }} }}]
target = "{{{{mount}}}}"
"#,
        root.display()
    ));
    let alert = firing("disk-full", Labels::new().with("mount", "/data"));
    let (mut t, _) = r.on_alert(&alert, 0);
    let j = job(t.remove(0));
    assert_eq!(j.target, "/data");
    let run = execute(&j, &NoGateway, || 1).await;
    assert_eq!(run.result, RemediationResult::Ok);
    assert!(
        run.steps[0]
            .output
            .starts_with("deleted 2 files (2000 bytes)"),
        "{}",
        run.steps[0].output
    );
    assert!(!root.join("app.log.1").exists());
    assert!(!root.join("app.log.2").exists());
    assert!(root.join("app.log.3").exists(), "the newer file survives");
    assert!(
        outside.join("app.log.1").exists(),
        "the file outside the root survives"
    );
}

//! Tests of a remediation from alert to record, with real processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use ballast_core::{AlertSource, AlertState, Labels, Severity};

use super::*;
use crate::rule::RemedySpec;

#[derive(serde::Deserialize)]
struct File {
    remedy: Vec<RemedySpec>,
}

fn remedy(text: &str) -> Remedy {
    let specs = toml::from_str::<File>(text).unwrap().remedy;
    let receivers: BTreeSet<String> = ["web-oncall".to_string()].into();
    Remedy::new(Rules::new(&specs, &receivers).unwrap(), None)
}

fn alert(labels: Labels) -> AlertRecord {
    let labels = labels.with("alertname", "app-down");
    AlertRecord {
        id: labels.fingerprint(),
        rule: "app-down".into(),
        labels,
        annotations: BTreeMap::new(),
        state: AlertState::Firing {
            severity: Severity::Critical,
        },
        source: AlertSource::Alertmanager,
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
        let d = std::env::temp_dir().join(format!("remedy-run-{name}-{}", std::process::id()));
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

/// A rule whose restart command appends the port to `log`.
fn restart_rule(log: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[[remedy]]
name = "restart-app"
when = {{ alert = "app-down" }}
do = [{{ restart = {{ command = ["sh", "-c", "echo started $1 >> {}", "sh", "{{{{port}}}}"] }} }}]
target = "{{{{server}}}}"
cooldown = "1m"
escalate_to = "web-oncall"
{extra}
"#,
        log.display()
    )
}

fn labels(port: &str) -> Labels {
    Labels::new()
        .with("server", "10.0.0.1:8000")
        .with("port", port)
}

fn job(t: Triggered) -> Job {
    match t {
        Triggered::Execute(j) => j,
        Triggered::Refused(r) => panic!("refused: {r:?}"),
    }
}

#[tokio::test]
async fn a_run_executes_records_and_cools_down() {
    let dir = Dir::new("ok");
    let log = dir.0.join("log");
    let mut r = remedy(&restart_rule(&log, ""));
    let a = alert(labels("8000"));
    let (mut t, esc) = r.on_alert(&a, 1000);
    assert!(esc.is_empty());
    let j = job(t.remove(0));
    assert_eq!(j.target, "10.0.0.1:8000");
    let run = execute(&j, &NoGateway, || 2000).await;
    assert_eq!(run.result, RemediationResult::Ok, "{run:?}");
    assert_eq!((run.started_unix_ms, run.ended_unix_ms), (1000, 2000));
    assert_eq!(run.steps.len(), 1);
    assert_eq!(run.steps[0].action, "restart");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "started 8000\n");
    assert_eq!(r.finish(&run, true, 2000), None);

    // Within the cooldown the next firing is refused and recorded; nothing runs.
    let (t, _) = r.on_alert(&a, 30_000);
    let Triggered::Refused(rec) = &t[0] else {
        panic!("{t:?}")
    };
    assert!(matches!(&rec.result, RemediationResult::Refused { kind, .. } if kind == "cooldown"));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "started 8000\n");
}

#[tokio::test]
async fn an_injected_label_is_refused_recorded_and_never_run() {
    let dir = Dir::new("inject");
    let log = dir.0.join("log");
    let mut r = remedy(&restart_rule(&log, ""));
    let (t, _) = r.on_alert(&alert(labels("x; rm -rf /")), 1000);
    let Triggered::Refused(rec) = &t[0] else {
        panic!("{t:?}")
    };
    let RemediationResult::Refused { kind, reason } = &rec.result else {
        panic!("{rec:?}")
    };
    assert_eq!(kind, "injection");
    assert!(reason.contains("\"port\""), "{reason}");
    assert!(rec.steps.is_empty());
    assert!(!log.exists());
    // It spent no budget and set no cooldown: a clean alert right after runs.
    let (mut t, _) = r.on_alert(&alert(labels("8000")), 1001);
    assert!(matches!(t.remove(0), Triggered::Execute(_)));
}

#[tokio::test]
async fn repeated_failures_escalate_to_the_receiver_and_block() {
    let mut r = remedy(
        r#"
[[remedy]]
name = "restart-app"
when = { alert = "app-down" }
do = [{ exec = { argv = ["false"] } }, { exec = { argv = ["true"] } }]
target = "{{server}}"
cooldown = "0s"
max_runs = { count = 10, per = "1h" }
escalate_after = 2
escalate_to = "web-oncall"
"#,
    );
    let a = alert(labels("8000"));
    let mut escalated = None;
    for now in [1000, 2000] {
        let (mut t, _) = r.on_alert(&a, now);
        let run = execute(&job(t.remove(0)), &NoGateway, || now + 10).await;
        assert!(matches!(run.result, RemediationResult::Failed { .. }));
        // The first action failed, so the second did not run.
        assert_eq!(run.steps.len(), 1);
        escalated = r.finish(&run, false, now + 10);
    }
    let e = escalated.expect("two failures in a row escalate");
    assert_eq!(e.receiver.as_deref(), Some("web-oncall"));
    assert_eq!(e.escalation.target, "10.0.0.1:8000");
    let (t, _) = r.on_alert(&a, 3000);
    assert!(
        matches!(&t[0], Triggered::Refused(RemediationRun { result: RemediationResult::Refused { kind, .. }, .. }) if kind == "blocked")
    );
    assert!(r.acknowledge("10.0.0.1:8000"));
    let (mut t, _) = r.on_alert(&a, 4000);
    assert!(matches!(t.remove(0), Triggered::Execute(_)));
}

#[tokio::test]
async fn a_spent_budget_escalates_at_check_time() {
    let dir = Dir::new("budget");
    let log = dir.0.join("log");
    let mut r = remedy(
        &restart_rule(&log, "max_runs = { count = 1, per = \"1h\" }").replace("\"1m\"", "\"0s\""),
    );
    let a = alert(labels("8000"));
    let (mut t, _) = r.on_alert(&a, 0);
    let run = execute(&job(t.remove(0)), &NoGateway, || 1).await;
    assert_eq!(r.finish(&run, true, 1), None);
    let (t, esc) = r.on_alert(&a, 2);
    assert!(matches!(&t[0], Triggered::Refused(_)));
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].receiver.as_deref(), Some("web-oncall"));
}

#[tokio::test]
async fn dry_run_records_and_runs_nothing() {
    let dir = Dir::new("dry");
    let log = dir.0.join("log");
    let mut text = restart_rule(&log, "dry_run = true");
    text = text.replace(
        "do = [",
        "do = [{ drain = { upstream = \"app\", server = \"{{server}}\" } }, ",
    );
    let mut r = remedy(&text);
    let (mut t, _) = r.on_alert(&alert(labels("8000")), 0);
    let j = job(t.remove(0));
    assert!(j.dry_run);
    let run = execute(&j, &NoGateway, || 5).await;
    assert_eq!(run.result, RemediationResult::Ok);
    assert!(run.dry_run);
    assert_eq!(
        run.steps[0].output,
        "would apply: drain 10.0.0.1:8000 of app"
    );
    assert!(
        run.steps[1].output.starts_with("would run: sh -c"),
        "{:?}",
        run.steps[1]
    );
    assert!(!log.exists());
}

struct Recorder(Mutex<Vec<String>>);

impl GatewaySide for Recorder {
    async fn apply(&self, _job: &Job, action: &Action) -> Result<String, String> {
        self.0.lock().unwrap().push(action.kind().to_string());
        Ok(format!("{} applied", action.kind()))
    }
}

#[tokio::test]
async fn gateway_actions_go_to_the_gateway_side() {
    let mut r = remedy(
        r#"
[[remedy]]
name = "drain-bad"
when = { alert = "app-down" }
do = [{ drain = { upstream = "app", server = "{{server}}" } }, { route = { route = "shop", to = "sorry" } }]
"#,
    );
    let (mut t, _) = r.on_alert(&alert(labels("8000")), 0);
    let gw = Recorder(Mutex::new(Vec::new()));
    let run = execute(&job(t.remove(0)), &gw, || 1).await;
    assert_eq!(run.result, RemediationResult::Ok);
    assert_eq!(*gw.0.lock().unwrap(), ["drain", "route"]);
    // Without a gateway, they fail (and are recorded as failed).
    let (mut t, _) = r.on_alert(&alert(labels("8001").with("server", "s2")), 10 * 60_000);
    let run = execute(&job(t.remove(0)), &NoGateway, || 1).await;
    assert!(matches!(run.result, RemediationResult::Failed { .. }));
}

#[tokio::test]
async fn replayed_runs_keep_budgets_and_cooldowns_across_a_restart() {
    let text = r#"
[[remedy]]
name = "restart-app"
when = { alert = "app-down" }
do = [{ exec = { argv = ["true"] } }]
target = "{{server}}"
cooldown = "1m"
max_runs = { count = 2, per = "1h" }
escalate_after = 2
"#;
    let mut before = remedy(text);
    let a = alert(labels("8000"));
    let mut recorded = Vec::new();
    for now in [0, 120_000] {
        let (mut t, _) = before.on_alert(&a, now);
        recorded.push(execute(&job(t.remove(0)), &NoGateway, || now + 1).await);
    }
    // A refused run is recorded too, and must not count.
    recorded.push(before.on_alert(&a, 130_000).0.remove(0).refused_record());
    // Past the cooldown, the spent budget refuses, blocks and escalates.
    let (mut t, esc) = before.on_alert(&a, 190_000);
    assert_eq!(esc.len(), 1);
    let spent = t.remove(0).refused_record();

    // "Restart": a fresh Remedy fed the recorded runs, the budget refusal included.
    let mut after = remedy(text);
    for run in recorded.iter().chain([&spent]) {
        after.replay(run);
    }
    let (t, esc) = after.on_alert(&a, 200_000);
    assert!(
        matches!(&t[0], Triggered::Refused(RemediationRun { result: RemediationResult::Refused { kind, .. }, .. }) if kind == "blocked")
    );
    assert!(
        esc.is_empty(),
        "the spent budget's block comes back, and was announced before the restart: {esc:?}"
    );
    // Without the refusal on record, the spent budget blocks and escalates as before.
    let mut after = remedy(text);
    for run in &recorded {
        after.replay(run);
    }
    let (t, esc) = after.on_alert(&a, 200_000);
    assert!(
        matches!(&t[0], Triggered::Refused(RemediationRun { result: RemediationResult::Refused { kind, .. }, .. }) if kind == "budget")
    );
    assert_eq!(esc.len(), 1);

    // Cooldown and failures too.
    let mut after = remedy(text);
    let mut failed = recorded[1].clone();
    failed.result = RemediationResult::Failed { reason: "x".into() };
    after.replay(&recorded[0]);
    let (t, _) = after.on_alert(&a, 30_000);
    assert!(
        matches!(&t[0], Triggered::Refused(RemediationRun { result: RemediationResult::Refused { kind, .. }, .. }) if kind == "cooldown")
    );
    let mut after = remedy(text);
    let mut first = recorded[0].clone();
    first.result = RemediationResult::Failed { reason: "x".into() };
    after.replay(&first);
    after.replay(&failed);
    assert_eq!(
        after.guards().blocked().count(),
        1,
        "two failures in a row block"
    );
}

impl Triggered {
    fn refused_record(self) -> RemediationRun {
        match self {
            Triggered::Refused(r) => r,
            Triggered::Execute(j) => panic!("not refused: {j:?}"),
        }
    }
}

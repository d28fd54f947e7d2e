//! Tests of the action values: parsing `do = [...]`, validation, rendering and `apply`.

use super::*;

#[derive(serde::Deserialize)]
struct Do {
    #[serde(rename = "do")]
    actions: Vec<Action>,
}

fn parse(text: &str) -> Result<Vec<Action>, toml::de::Error> {
    toml::from_str::<Do>(text).map(|d| d.actions)
}

fn labels() -> Labels {
    Labels::new()
        .with("server", "10.0.0.1:8000")
        .with("port", "8000")
        .with("evil", "x; rm -rf /")
}

#[test]
fn every_kind_parses_from_toml() {
    let actions = parse(
        r#"do = [
            { exec = { argv = ["flush", "{{server}}"], timeout = "5s", output_limit = "1KiB" } },
            { restart = { command = ["systemctl", "restart", "app@{{port}}"] } },
            { restart = { pid_file = "/run/app.pid", signal = "HUP" } },
            { clean = { root = "/var/log/app", glob = "*.log", older_than = "7d" } },
            { drain = { upstream = "app", server = "{{server}}" } },
            { enable = { upstream = "app", server = "{{server}}" } },
            { eject = { upstream = "app", server = "{{server}}", for = "5m" } },
            { route = { route = "shop", to = "sorry" } },
            { shed = { class = "low", share = "50%" } },
            { webhook = { url = "https://hooks.example.com/x" } },
        ]"#,
    )
    .unwrap();
    let kinds: Vec<_> = actions.iter().map(Action::kind).collect();
    assert_eq!(
        kinds,
        [
            "exec", "restart", "restart", "clean", "drain", "enable", "eject", "route", "shed",
            "webhook"
        ]
    );
    for a in &actions {
        a.validate().unwrap_or_else(|e| panic!("{}: {e}", a.kind()));
    }
    assert_eq!(
        actions.iter().filter(|a| a.is_gateway_side()).count(),
        6,
        "drain, enable, eject, route, shed, webhook"
    );
}

#[test]
fn unknown_kinds_fields_and_bare_numbers_are_refused() {
    assert!(parse(r#"do = [{ reboot = { now = true } }]"#).is_err());
    assert!(parse(r#"do = [{ exec = { argv = ["x"], shell = true } }]"#).is_err());
    let e = parse(r#"do = [{ exec = { argv = ["x"], timeout = 30 } }]"#).unwrap_err();
    assert!(e.to_string().contains("30s"), "{e}");
    // A shell-string instead of an argv is a type error.
    assert!(parse(r#"do = [{ exec = { argv = "rm -rf /tmp/x" } }]"#).is_err());
}

#[test]
fn validation_names_the_field() {
    let bad = parse(
        r#"do = [
            { exec = { argv = [] } },
            { exec = { argv = ["{{prog}}"] } },
            { exec = { argv = ["x", "{{unclosed"] } },
            { exec = { argv = ["x"], timeout = "0s" } },
            { drain = { upstream = "app", server = "" } },
            { drain = { upstream = "app", server = "a", for = "1m" } },
            { shed = { class = "bulk", share = "10%" } },
            { webhook = { url = "ftp://x" } },
            { webhook = { url = "https://x/{{server}}" } },
        ]"#,
    )
    .unwrap();
    for a in &bad {
        assert!(a.validate().is_err(), "{a:?}");
    }
    let e = bad[1].validate().unwrap_err();
    assert!(e.to_string().starts_with("exec.argv:"), "{e}");
}

#[test]
fn render_fills_placeholders_or_refuses() {
    let a = parse(r#"do = [{ restart = { command = ["systemctl", "restart", "app@{{port}}"] } }]"#)
        .unwrap()
        .remove(0);
    let Action::Restart(r) = a.render(&labels()).unwrap() else {
        panic!("kind changed")
    };
    assert_eq!(
        r.command.unwrap(),
        ["systemctl", "restart", "app@8000"].map(String::from)
    );
    let evil = parse(r#"do = [{ exec = { argv = ["echo", "{{evil}}"] } }]"#)
        .unwrap()
        .remove(0);
    assert!(matches!(
        evil.render(&labels()),
        Err(PlaceholderError::Unsafe { ref label, .. }) if label == "evil"
    ));
    let missing = parse(r#"do = [{ drain = { upstream = "app", server = "{{host}}" } }]"#)
        .unwrap()
        .remove(0);
    assert!(matches!(
        missing.render(&labels()),
        Err(PlaceholderError::Missing { .. })
    ));
}

#[tokio::test]
async fn dry_run_exec_runs_nothing() {
    let marker = std::env::temp_dir().join(format!("remedy-dry-{}", std::process::id()));
    let a = Action::Exec(ExecSpec {
        argv: vec!["touch".into(), marker.display().to_string()],
        timeout: None,
        output_limit: None,
    });
    let o = apply(&a, true).await.unwrap();
    assert!(matches!(o, Outcome::WouldExec { .. }));
    assert!(o.ok());
    assert!(o.summary().starts_with("would run: touch"));
    assert!(!marker.exists());
    let o = apply(&a, false).await.unwrap();
    assert!(o.ok(), "{}", o.summary());
    assert!(marker.exists());
    let _ = std::fs::remove_file(&marker);
}

#[tokio::test]
async fn failing_exec_is_a_failed_outcome_with_its_output() {
    let a = Action::Exec(ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "echo broken >&2; exit 2".into()],
        timeout: None,
        output_limit: None,
    });
    let o = apply(&a, false).await.unwrap();
    assert!(!o.ok());
    assert!(o.summary().contains("exit 2"), "{}", o.summary());
    assert!(o.summary().contains("stderr: broken"), "{}", o.summary());
}

#[tokio::test]
async fn gateway_kinds_are_handed_back() {
    let a = parse(r#"do = [{ drain = { upstream = "app", server = "{{server}}" } }]"#)
        .unwrap()
        .remove(0)
        .render(&labels())
        .unwrap();
    let o = apply(&a, false).await.unwrap();
    let Outcome::ForGateway {
        action: Action::Drain(s),
    } = &o
    else {
        panic!("{o:?}")
    };
    assert_eq!(
        gateway::drain_command(s),
        ballast_core::Command::Drain {
            upstream: "app".into(),
            server: "10.0.0.1:8000".into()
        }
    );
    // Outcomes serialize for the run record.
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["kind"], "for_gateway");
}

//! Tests of `[[remedy]]` parsing, validation and matching.

use super::*;
use ballast_core::{AlertSource, Labels};

#[derive(Debug, serde::Deserialize)]
struct File {
    remedy: Vec<RemedySpec>,
}

fn specs(text: &str) -> Vec<RemedySpec> {
    toml::from_str::<File>(text).unwrap().remedy
}

fn receivers() -> BTreeSet<String> {
    ["web-oncall".to_string()].into()
}

fn rules(text: &str) -> Result<Rules, RuleError> {
    Rules::new(&specs(text), &receivers())
}

fn alert(rule: &str, severity: Option<Severity>, labels: Labels) -> AlertRecord {
    let mut labels = labels.with("alertname", rule);
    labels.insert("alertname", rule);
    AlertRecord {
        id: labels.fingerprint(),
        rule: rule.into(),
        labels,
        annotations: BTreeMap::new(),
        state: match severity {
            Some(severity) => AlertState::Firing { severity },
            None => AlertState::Resolved,
        },
        source: AlertSource::Rule,
        value: Some(0.0),
        threshold: Some(2.0),
        since_unix_ms: 0,
        updated_unix_ms: 0,
        ack: None,
    }
}

const RESTART: &str = r#"
[[remedy]]
name = "restart-app"
when = { alert = "app-capacity", match = { service = "shop", server = "~10\\.0\\..*" }, severity = "warning" }
do = [{ restart = { command = ["systemctl", "restart", "app@{{port}}"] } }]
target = "{{server}}"
cooldown = "2m"
max_runs = { count = 3, per = "1h" }
verify = "30s"
escalate_to = "web-oncall"
"#;

fn shop(server: &str) -> Labels {
    Labels::new()
        .with("service", "shop")
        .with("server", server)
        .with("port", "8000")
}

#[test]
fn the_design_example_parses_with_its_guards() {
    let r = rules(RESTART).unwrap();
    let rule = r.get("restart-app").unwrap();
    assert_eq!(
        *rule.guard(),
        GuardSpec {
            dry_run: false,
            cooldown_ms: 120_000,
            max_runs: 3,
            per_ms: 3_600_000,
            rule_max_runs: None,
            escalate_after: 3,
        }
    );
    assert_eq!(rule.verify_ms(), Some(30_000));
    assert_eq!(rule.escalate_to(), Some("web-oncall"));
}

#[test]
fn defaults_keep_guard_rails_on() {
    let r = rules(
        r#"
[[remedy]]
name = "clean-logs"
when = { alert = "disk-full" }
do = [{ clean = { root = "/var/log/app", glob = "*.gz", older_than = "7d" } }]
dry_run = true
"#,
    )
    .unwrap();
    let g = *r.rules()[0].guard();
    assert!(g.dry_run);
    assert_eq!(g.cooldown_ms, 300_000);
    assert_eq!((g.max_runs, g.per_ms, g.escalate_after), (3, 3_600_000, 3));
}

#[test]
fn matching_needs_firing_name_labels_and_least_severity() {
    let r = rules(RESTART).unwrap();
    let matched = |a: &AlertRecord| r.matching(a).count();
    assert_eq!(
        matched(&alert(
            "app-capacity",
            Some(Severity::Warning),
            shop("10.0.0.1:8000")
        )),
        1
    );
    // Worse than asked still matches.
    assert_eq!(
        matched(&alert(
            "app-capacity",
            Some(Severity::Critical),
            shop("10.0.0.1:8000")
        )),
        1
    );
    // Not firing, another alert, a label that does not match (regex anchored), a label missing.
    assert_eq!(
        matched(&alert("app-capacity", None, shop("10.0.0.1:8000"))),
        0
    );
    assert_eq!(
        matched(&alert(
            "other",
            Some(Severity::Critical),
            shop("10.0.0.1:8000")
        )),
        0
    );
    assert_eq!(
        matched(&alert(
            "app-capacity",
            Some(Severity::Critical),
            shop("110.0.0.1:8000")
        )),
        0
    );
    let no_service = Labels::new().with("server", "10.0.0.1:8000");
    assert_eq!(
        matched(&alert("app-capacity", Some(Severity::Critical), no_service)),
        0
    );
    // A rule asking for critical ignores warnings.
    let crit =
        rules(&RESTART.replace("severity = \"warning\"", "severity = \"critical\"")).unwrap();
    assert_eq!(
        crit.matching(&alert(
            "app-capacity",
            Some(Severity::Warning),
            shop("10.0.0.1:8000")
        ))
        .count(),
        0
    );
}

#[test]
fn plan_renders_target_and_actions() {
    let r = rules(RESTART).unwrap();
    let a = alert(
        "app-capacity",
        Some(Severity::Critical),
        shop("10.0.0.1:8000"),
    );
    let p = r.rules()[0].plan(&a).unwrap();
    assert_eq!(p.target, "10.0.0.1:8000");
    let Action::Restart(spec) = &p.actions[0] else {
        panic!("{p:?}")
    };
    assert_eq!(
        spec.command.as_deref().unwrap(),
        ["systemctl", "restart", "app@8000"].map(String::from)
    );
    // Without `target`, the alert's id.
    let no_target = rules(&RESTART.replace("target = \"{{server}}\"\n", "")).unwrap();
    assert_eq!(no_target.rules()[0].plan(&a).unwrap().target, a.id);
}

#[test]
fn an_injected_label_refuses_the_plan() {
    let r = rules(RESTART).unwrap();
    let evil = shop("10.0.0.1:8000").with("port", "x; rm -rf /");
    let a = alert("app-capacity", Some(Severity::Critical), evil);
    assert!(r.rules()[0].matches(&a));
    assert!(matches!(
        r.rules()[0].plan(&a),
        Err(PlaceholderError::Unsafe { ref label, .. }) if label == "port"
    ));
    // In the target too.
    let evil = shop("$(reboot)");
    let r = rules(&RESTART.replace("~10\\\\.0\\\\..*", "~.*")).unwrap();
    let a = alert("app-capacity", Some(Severity::Critical), evil);
    assert!(r.rules()[0].matches(&a));
    assert!(matches!(
        r.rules()[0].plan(&a),
        Err(PlaceholderError::Unsafe { ref label, .. }) if label == "server"
    ));
}

#[test]
fn event_rules_match_only_their_events_and_alert_rules_never_do() {
    let text = RESTART.replace(
        "when = { alert = \"app-capacity\", match = { service = \"shop\", server = \"~10\\\\.0\\\\..*\" }, severity = \"warning\" }",
        "when = { event = \"breaker_opened\", match = { upstream = \"app\" } }",
    );
    let event_rules = rules(&text).unwrap();
    assert_eq!(
        event_rules.event_kinds().into_iter().collect::<Vec<_>>(),
        ["breaker_opened"]
    );
    let stamped = |upstream: &str| ballast_core::Stamped {
        seq: 7,
        at_unix_ms: 1,
        event: ballast_core::Event::BreakerOpened {
            upstream: upstream.into(),
            server: "10.0.0.1:80".into(),
        },
    };
    let ours = crate::event::record_of(&stamped("app")).unwrap();
    let other = crate::event::record_of(&stamped("blog")).unwrap();
    assert_eq!(event_rules.matching(&ours).count(), 1);
    assert_eq!(event_rules.matching(&other).count(), 0);
    // An alert rule whose `match` the event's labels would satisfy still ignores events.
    let alert_rules = rules(&RESTART.replace(
        "when = { alert = \"app-capacity\", match = { service = \"shop\", server = \"~10\\\\.0\\\\..*\" }, severity = \"warning\" }",
        "when = { match = { upstream = \"app\" } }",
    ))
    .unwrap();
    assert_eq!(alert_rules.matching(&ours).count(), 0);
    // And an event rule ignores alerts with the same labels.
    let mut alert = ours.clone();
    alert.rule = "breaker_opened".into();
    assert_eq!(event_rules.matching(&alert).count(), 0);
}

#[test]
fn errors_name_the_rule() {
    let base = RESTART;
    let cases: Vec<(String, &str)> = vec![
        (base.replace("name = \"restart-app\"", "name = \" \""), "empty name"),
        (
            base.replace(
                "when = { alert = \"app-capacity\", match = { service = \"shop\", server = \"~10\\\\.0\\\\..*\" }, severity = \"warning\" }",
                "when = {}",
            ),
            "needs `alert`, `event` or `match`",
        ),
        (base.replace("server = \"~10", "server = \"~(10"), "when.match"),
        (
            base.replace("do = [{ restart = { command = [\"systemctl\", \"restart\", \"app@{{port}}\"] } }]", "do = []"),
            "`do` is empty",
        ),
        (base.replace("app@{{port}}", "app@{{port"), "do[0] (restart)"),
        (base.replace("\"{{server}}\"", "\"{{1x}}\""), "target"),
        (base.replace("count = 3", "count = 0"), "max_runs.count"),
        (base.replace("per = \"1h\"", "per = \"0s\""), "max_runs.per"),
        (base.replace("verify = \"30s\"", "verify = \"0s\""), "verify"),
        (base.replace("\"web-oncall\"", "\"nobody\""), "not a [[receiver]]"),
        (
            base.replace("when = { alert = \"app-capacity\"", "when = { event = \"breaker_opened\", alert = \"app-capacity\""),
            "neither `alert` nor `severity`",
        ),
        (
            base.replace(
                "when = { alert = \"app-capacity\", match = { service = \"shop\", server = \"~10\\\\.0\\\\..*\" }, severity = \"warning\" }",
                "when = { event = \"remediation_ran\" }",
            ),
            "cannot trigger a rule",
        ),
        (
            base.replace(
                "when = { alert = \"app-capacity\", match = { service = \"shop\", server = \"~10\\\\.0\\\\..*\" }, severity = \"warning\" }",
                "when = { event = \"Breaker Opened\" }",
            ),
            "is not an event kind",
        ),
    ];
    for (text, expect) in cases {
        let e = rules(&text).unwrap_err().to_string();
        assert!(e.contains(expect), "{expect}: {e}");
        if expect != "empty name" {
            assert!(e.contains("\"restart-app\""), "{e}");
        }
    }
    let twice = format!("{RESTART}\n{RESTART}");
    assert_eq!(
        rules(&twice).unwrap_err(),
        RuleError::Duplicate("restart-app".into())
    );
}

#[test]
fn unknown_fields_and_bare_durations_are_refused() {
    let r = toml::from_str::<File>(&RESTART.replace("cooldown = \"2m\"", "cooldown = 120"));
    assert!(r.unwrap_err().to_string().contains("120ms"));
    let r = toml::from_str::<File>(&format!("{RESTART}shell = true\n"));
    assert!(r.is_err());
    let r =
        toml::from_str::<File>(&RESTART.replace("severity = \"warning\"", "severity = \"page\""));
    assert!(r.is_err());
}

#[test]
fn the_global_rate_has_a_default_and_refuses_zero() {
    let none: RemediationSpec = toml::from_str("").unwrap();
    assert_eq!(
        none.rate().unwrap(),
        Rate {
            count: 10,
            per_ms: 60_000
        }
    );
    let set: RemediationSpec = toml::from_str("rate = { count = 2, per = \"1h\" }").unwrap();
    assert_eq!(set.rate().unwrap().per_ms, 3_600_000);
    let zero: RemediationSpec = toml::from_str("rate = { count = 0, per = \"1h\" }").unwrap();
    assert_eq!(zero.rate(), Err(RuleError::ZeroRate));
    assert!(
        toml::from_str::<RemediationSpec>("rate = { count = 1, per = \"1h\", burst = 3 }").is_err()
    );
}

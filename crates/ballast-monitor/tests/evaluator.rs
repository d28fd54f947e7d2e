//! The evaluator over several rounds: per-series alerts, missing series, `min` rules and
//! restores, as the wiring will drive it.

use ballast_core::{AlertState, Labels, Severity};
use ballast_monitor::{
    Direction, Evaluator, EvaluatorError, LevelSpec, MinSpec, Rule, RuleSpec, Sample,
};

const WARN: AlertState = AlertState::Firing {
    severity: Severity::Warning,
};
const CRIT: AlertState = AlertState::Firing {
    severity: Severity::Critical,
};

fn ratio_rule() -> Rule {
    let above = |threshold, recover| {
        Some(LevelSpec {
            direction: Direction::Above,
            threshold,
            recover: Some(recover),
        })
    };
    Rule::new(RuleSpec {
        name: "app-5xx".into(),
        warn: above(0.01, 0.005),
        crit: above(0.05, 0.02),
        ..RuleSpec::default()
    })
    .unwrap()
}

fn min_rule() -> Rule {
    Rule::new(RuleSpec {
        name: "daemons".into(),
        min: Some(MinSpec {
            below: 1.0,
            recover: None,
            severity: None,
        }),
        ..RuleSpec::default()
    })
    .unwrap()
}

fn route(name: &str) -> Labels {
    Labels::new().with("route", name)
}

fn proc_(name: &str) -> Labels {
    Labels::new().with("process", name)
}

/// (rule, labels' single value or "", from, to) of each transition.
fn summary(e: &ballast_monitor::Evaluation) -> Vec<(String, String, AlertState, AlertState)> {
    e.transitions
        .iter()
        .map(|t| {
            let label = t
                .labels
                .iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",");
            (t.rule.clone(), label, t.from, t.to)
        })
        .collect()
}

#[test]
fn each_series_is_evaluated_on_its_own() {
    let mut ev = Evaluator::new([ratio_rule()]).unwrap();
    let e = ev.evaluate(
        &[
            Sample::new("app-5xx", route("api"), Some(0.08)),
            Sample::new("app-5xx", route("web"), Some(0.02)),
            Sample::new("app-5xx", route("img"), Some(0.0)),
        ],
        1000,
    );
    assert_eq!(
        summary(&e),
        vec![
            ("app-5xx".into(), "api".into(), AlertState::Inactive, CRIT),
            ("app-5xx".into(), "web".into(), AlertState::Inactive, WARN),
        ]
    );
    assert_eq!(ev.alert("app-5xx", &route("api")).unwrap().state(), CRIT);
    assert!(
        ev.alert("app-5xx", &route("img")).is_none(),
        "inactive is not kept"
    );
}

#[test]
fn a_vanished_series_resolves_a_threshold_rule() {
    let mut ev = Evaluator::new([ratio_rule()]).unwrap();
    ev.evaluate(&[Sample::new("app-5xx", route("api"), Some(0.08))], 1000);
    let e = ev.evaluate(&[], 2000);
    assert_eq!(
        summary(&e),
        vec![("app-5xx".into(), "api".into(), CRIT, AlertState::Resolved)]
    );
    assert!(
        ev.alerts().next().is_none(),
        "a resolved, absent series is forgotten"
    );
}

#[test]
fn min_fires_when_its_series_is_missing_from_the_round() {
    let mut ev = Evaluator::new([min_rule(), ratio_rule()]).unwrap();
    let e = ev.evaluate(&[Sample::new("daemons", proc_("worker"), Some(2.0))], 1000);
    assert!(e.transitions.is_empty());
    // The worker is gone: its series is absent, counted as 0, on its own labels.
    let e = ev.evaluate(&[Sample::new("app-5xx", route("api"), Some(0.0))], 2000);
    assert_eq!(
        summary(&e),
        vec![(
            "daemons".into(),
            "worker".into(),
            AlertState::Inactive,
            CRIT
        )]
    );
    assert_eq!(e.transitions[0].value, Some(0.0));
    // Still gone: no second announcement. Back: resolved.
    assert!(ev.evaluate(&[], 3000).transitions.is_empty());
    let e = ev.evaluate(&[Sample::new("daemons", proc_("worker"), Some(1.0))], 4000);
    assert_eq!(
        summary(&e),
        vec![(
            "daemons".into(),
            "worker".into(),
            CRIT,
            AlertState::Resolved
        )]
    );
}

#[test]
fn min_with_no_series_at_all_fires_on_a_stand_in_that_ends_when_series_report() {
    let mut ev = Evaluator::new([min_rule()]).unwrap();
    let e = ev.evaluate(&[], 1000);
    assert_eq!(
        summary(&e),
        vec![("daemons".into(), "".into(), AlertState::Inactive, CRIT)]
    );
    assert!(ev.evaluate(&[], 2000).transitions.is_empty());
    let e = ev.evaluate(&[Sample::new("daemons", proc_("worker"), Some(3.0))], 3000);
    assert_eq!(
        summary(&e),
        vec![("daemons".into(), "".into(), CRIT, AlertState::Resolved)]
    );
    assert!(ev.alert("daemons", &Labels::new()).is_none());
    assert!(ev
        .evaluate(&[Sample::new("daemons", proc_("worker"), Some(3.0))], 4000)
        .transitions
        .is_empty());
}

#[test]
fn restore_continues_without_a_second_firing() {
    let mut ev = Evaluator::new([ratio_rule()]).unwrap();
    ev.restore("app-5xx", route("api"), Severity::Critical, 500)
        .unwrap();
    let e = ev.evaluate(&[Sample::new("app-5xx", route("api"), Some(0.09))], 1000);
    assert!(e.transitions.is_empty());
    assert_eq!(
        ev.alert("app-5xx", &route("api")).unwrap().since_ms(),
        Some(500)
    );
    assert_eq!(
        ev.restore("gone", route("api"), Severity::Warning, 0),
        Err(EvaluatorError::UnknownRule("gone".into()))
    );
}

#[test]
fn unknown_rules_and_nan_do_not_panic() {
    let mut ev = Evaluator::new([ratio_rule()]).unwrap();
    let e = ev.evaluate(
        &[
            Sample::new("nope", route("a"), Some(1.0)),
            Sample::new("nope", route("b"), Some(1.0)),
            Sample::new("app-5xx", route("api"), Some(f64::NAN)),
        ],
        0,
    );
    assert!(e.transitions.is_empty());
    assert_eq!(e.unknown_rules, vec!["nope".to_string()]);
}

#[test]
fn duplicate_rule_names_are_refused() {
    assert_eq!(
        Evaluator::new([ratio_rule(), ratio_rule()]).unwrap_err(),
        EvaluatorError::DuplicateRule("app-5xx".into())
    );
}

#[test]
fn a_restored_stand_in_ends_when_series_report() {
    let mut ev = Evaluator::new([min_rule()]).unwrap();
    ev.restore("daemons", Labels::new(), Severity::Critical, 0)
        .unwrap();
    assert!(ev.evaluate(&[], 1000).transitions.is_empty());
    let e = ev.evaluate(&[Sample::new("daemons", proc_("worker"), Some(3.0))], 2000);
    assert_eq!(
        summary(&e),
        vec![("daemons".into(), "".into(), CRIT, AlertState::Resolved)]
    );
}

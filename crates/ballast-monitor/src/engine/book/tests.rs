//! The books without a clock or a task: runs recorded by hand, times passed in.

use std::time::Duration;

use ballast_core::{Ack, AlertSource, AlertState, Event, Labels, Severity};

use super::*;
use crate::plan::{MonitorDef, RuleDef};
use crate::probe::ProbeSpec;
use crate::rule::{LevelSpec, MinSpec, RuleSpec};

fn monitor(name: &str) -> MonitorDef {
    MonitorDef {
        name: name.into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        probe: ProbeSpec::Gateway(Default::default()),
    }
}

fn rule(name: &str, monitor: &str, value: &str, spec: RuleSpec) -> RuleDef {
    RuleDef {
        spec: RuleSpec {
            name: name.into(),
            ..spec
        },
        monitor: monitor.into(),
        value: value.into(),
        matchers: Default::default(),
        labels: [("team".to_string(), "web".to_string())].into(),
        annotations: [(
            "summary".to_string(),
            "{{upstream}} has {{value}} ({{nope}})".to_string(),
        )]
        .into(),
        depends_on: Vec::new(),
    }
}

fn healthy_min() -> RuleDef {
    rule(
        "capacity",
        "gw",
        "healthy_servers",
        RuleSpec {
            min: Some(MinSpec {
                below: 2.0,
                recover: None,
                severity: None,
            }),
            ..RuleSpec::default()
        },
    )
}

fn run(readings: &[(&str, Labels, f64)], at: u64) -> RunResult {
    let mut outcome = Outcome::default();
    for (v, l, n) in readings {
        outcome.push(*v, l.clone(), *n);
    }
    RunResult {
        at_unix_ms: at,
        duration_ms: 1,
        timed_out: false,
        outcome,
    }
}

fn app() -> Labels {
    Labels::new().with("upstream", "app")
}

#[test]
fn a_firing_alert_has_full_labels_filled_annotations_and_an_event() {
    let mut book = Book::new(&[monitor("gw")], &[healthy_min()]).unwrap();
    let out = book.record("gw", run(&[("healthy_servers", app(), 1.0)], 1_000), 1_000);
    assert_eq!(out.save.len(), 1);
    let a = &out.save[0];
    assert_eq!(
        a.state,
        AlertState::Firing {
            severity: Severity::Critical
        }
    );
    assert_eq!(a.labels.get("alertname"), Some("capacity"));
    assert_eq!(a.labels.get("monitor"), Some("gw"));
    assert_eq!(a.labels.get("team"), Some("web"));
    assert_eq!(a.labels.get("upstream"), Some("app"));
    assert_eq!(a.id, a.labels.fingerprint());
    assert_eq!(a.annotations["summary"], "app has 1 ({{nope}})");
    assert!(matches!(&out.events[0], Event::AlertChanged { id, .. } if *id == a.id));
    // Counted as firing critical; `up` was not in the run, so nothing else fired.
    assert_eq!(book.counts()[&("firing", "critical")], 1);
}

#[test]
fn a_restored_alert_fires_on_without_a_second_transition() {
    let mut first = Book::new(&[monitor("gw")], &[healthy_min()]).unwrap();
    let fired = first.record("gw", run(&[("healthy_servers", app(), 0.0)], 1_000), 1_000);
    let record = fired.save[0].clone();

    let mut second = Book::new(&[monitor("gw")], &[healthy_min()]).unwrap();
    assert_eq!(second.restore(vec![record.clone()]), 1);
    let out = second.record("gw", run(&[("healthy_servers", app(), 0.0)], 9_000), 9_000);
    assert!(out.events.is_empty(), "{:?}", out.events);
    let listed = second.alert(&record.id).unwrap();
    assert_eq!(listed.since_unix_ms, 1_000);
    // It still resolves normally.
    let out = second.record(
        "gw",
        run(&[("healthy_servers", app(), 3.0)], 10_000),
        10_000,
    );
    assert_eq!(out.save[0].state, AlertState::Resolved);
}

#[test]
fn an_ack_lasts_while_the_alert_fires_and_ends_with_it() {
    let warn_crit = rule(
        "errors",
        "gw",
        "error_ratio",
        RuleSpec {
            warn: Some(LevelSpec {
                direction: crate::Direction::Above,
                threshold: 0.1,
                recover: None,
            }),
            crit: Some(LevelSpec {
                direction: crate::Direction::Above,
                threshold: 0.5,
                recover: None,
            }),
            ..RuleSpec::default()
        },
    );
    let mut book = Book::new(&[monitor("gw")], &[warn_crit]).unwrap();
    let id = book
        .record("gw", run(&[("error_ratio", app(), 0.2)], 1), 1)
        .save[0]
        .id
        .clone();
    let ack = Ack {
        by: "ana".into(),
        comment: "on it".into(),
        at_unix_ms: 2,
    };
    assert!(book.ack(&id, ack.clone()).is_some());
    assert!(book.ack("no-such-id", ack.clone()).is_none());
    // Escalation keeps the acknowledgement.
    let out = book.record("gw", run(&[("error_ratio", app(), 0.7)], 3), 3);
    assert_eq!(out.save[0].ack.as_ref(), Some(&ack));
    // Resolution ends it; the next episode starts unacknowledged.
    let out = book.record("gw", run(&[("error_ratio", app(), 0.0)], 4), 4);
    assert_eq!(out.save[0].ack, None);
    let out = book.record("gw", run(&[("error_ratio", app(), 0.2)], 5), 5);
    assert_eq!(out.save[0].ack, None);
}

#[test]
fn received_alerts_are_deduplicated_and_a_stray_resolve_is_ignored() {
    let mut book = Book::new(&[monitor("gw")], &[]).unwrap();
    let labels = Labels::new().with("alertname", "HighLoad");
    let record = |state| AlertRecord {
        id: labels.fingerprint(),
        rule: "HighLoad".into(),
        labels: labels.clone(),
        annotations: Default::default(),
        state,
        source: AlertSource::Alertmanager,
        value: None,
        threshold: None,
        since_unix_ms: 1,
        updated_unix_ms: 1,
        ack: None,
    };
    let firing = AlertState::Firing {
        severity: Severity::Warning,
    };
    // A resolve for an alert never seen: nothing.
    assert!(book
        .receive(vec![record(AlertState::Resolved)], 1)
        .events
        .is_empty());
    assert_eq!(book.receive(vec![record(firing)], 2).events.len(), 1);
    // The same state again (Alertmanager repeats): no new event.
    assert!(book.receive(vec![record(firing)], 3).events.is_empty());
    assert_eq!(
        book.alert(&labels.fingerprint()).unwrap().updated_unix_ms,
        3
    );
    assert_eq!(
        book.receive(vec![record(AlertState::Resolved)], 4)
            .events
            .len(),
        1
    );
}

#[test]
fn a_rule_naming_a_missing_monitor_is_refused() {
    let r = healthy_min();
    assert!(matches!(
        Book::new(&[monitor("other")], &[r]),
        Err(BookError::NoMonitor { .. })
    ));
}

#[test]
fn fill_leaves_unknown_and_unclosed_placeholders_alone() {
    let l = Labels::new().with("route", "api");
    assert_eq!(
        fill("{{ route }} at {{value}}", &l, Some(0.25)),
        "api at 0.25"
    );
    assert_eq!(fill("{{value}}", &l, None), "no data");
    assert_eq!(fill("x {{route", &l, None), "x {{route");
    assert_eq!(fill("é{{route}}ü", &l, None), "éapiü");
}

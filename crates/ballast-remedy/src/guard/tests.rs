//! Tests of the guard state machine, with time passed in.

use super::*;

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

fn spec() -> GuardSpec {
    GuardSpec {
        dry_run: false,
        cooldown_ms: 2 * MIN,
        max_runs: 3,
        per_ms: HOUR,
        rule_max_runs: None,
        escalate_after: 3,
    }
}

fn decision(g: &mut Guards, s: &GuardSpec, target: &str, now: u64) -> Decision {
    g.check("restart-app", s, target, now).decision
}

#[test]
fn cooldown_is_per_rule_and_target() {
    let mut g = Guards::new(None);
    let s = spec();
    assert_eq!(decision(&mut g, &s, "a", 0), Decision::Run);
    assert_eq!(
        decision(&mut g, &s, "a", MIN),
        Decision::Refused(Refusal::Cooldown {
            until_unix_ms: 2 * MIN
        })
    );
    // Another target, and another rule on the same target, are not cooling down.
    assert_eq!(decision(&mut g, &s, "b", MIN), Decision::Run);
    assert_eq!(g.check("other", &s, "a", MIN).decision, Decision::Run);
    assert_eq!(decision(&mut g, &s, "a", 2 * MIN), Decision::Run);
}

#[test]
fn spent_target_budget_blocks_and_escalates_once_until_acknowledged() {
    let mut g = Guards::new(None);
    let s = spec();
    for i in 0..3 {
        assert_eq!(decision(&mut g, &s, "a", i * 10 * MIN), Decision::Run);
        assert_eq!(
            g.finish("restart-app", &s, "a", true, i * 10 * MIN + 1),
            None
        );
    }
    let v = g.check("restart-app", &s, "a", 30 * MIN);
    assert_eq!(
        v.decision,
        Decision::Refused(Refusal::Budget {
            scope: Scope::Target,
            count: 3,
            per_ms: HOUR,
            until_unix_ms: HOUR,
        })
    );
    let esc = v.escalation.expect("a spent budget escalates");
    assert_eq!(esc.target, "a");
    assert_eq!(
        esc.cause,
        BlockCause::Budget {
            rule: "restart-app".into()
        }
    );
    // Blocked now, for every rule, even after the window passed; no second escalation.
    let v = g.check("restart-app", &s, "a", 2 * HOUR);
    assert!(matches!(
        v.decision,
        Decision::Refused(Refusal::Blocked {
            since_unix_ms,
            ..
        }) if since_unix_ms == 30 * MIN
    ));
    assert_eq!(v.escalation, None);
    assert!(matches!(
        g.check("other", &s, "a", 2 * HOUR).decision,
        Decision::Refused(Refusal::Blocked { .. })
    ));
    assert_eq!(g.blocked().count(), 1);
    // A person acknowledges: fresh start.
    assert!(g.acknowledge("a"));
    assert!(!g.acknowledge("a"));
    assert_eq!(decision(&mut g, &s, "a", 2 * HOUR), Decision::Run);
}

#[test]
fn budget_window_slides() {
    let mut g = Guards::new(None);
    let s = GuardSpec {
        cooldown_ms: 0,
        max_runs: 2,
        per_ms: 10 * MIN,
        ..spec()
    };
    assert_eq!(decision(&mut g, &s, "a", 0), Decision::Run);
    assert_eq!(decision(&mut g, &s, "a", 5 * MIN), Decision::Run);
    // At 10 min the first run left the window.
    assert_eq!(decision(&mut g, &s, "a", 10 * MIN), Decision::Run);
    assert!(matches!(
        g.check("restart-app", &s, "a", 11 * MIN).decision,
        Decision::Refused(Refusal::Budget {
            scope: Scope::Target,
            until_unix_ms,
            ..
        }) if until_unix_ms == 15 * MIN
    ));
}

#[test]
fn consecutive_failures_escalate_and_a_success_resets_them() {
    let mut g = Guards::new(None);
    let s = GuardSpec {
        cooldown_ms: 0,
        max_runs: 100,
        ..spec()
    };
    let mut now = 0;
    let mut run = |g: &mut Guards, ok: bool| {
        now += 1000;
        assert_eq!(decision(g, &s, "a", now), Decision::Run);
        g.finish("restart-app", &s, "a", ok, now + 1)
    };
    assert_eq!(run(&mut g, false), None);
    assert_eq!(run(&mut g, false), None);
    assert_eq!(run(&mut g, true), None);
    assert_eq!(run(&mut g, false), None);
    assert_eq!(run(&mut g, false), None);
    let esc = run(&mut g, false).expect("third failure in a row escalates");
    assert_eq!(
        esc.cause,
        BlockCause::Failures {
            rule: "restart-app".into(),
            count: 3
        }
    );
    assert!(matches!(
        g.check("restart-app", &s, "a", 1_000_000).decision,
        Decision::Refused(Refusal::Blocked { .. })
    ));
    g.acknowledge("a");
    // The failure count starts again from zero.
    assert_eq!(run(&mut g, false), None);
}

#[test]
fn dry_run_spends_budgets_but_never_blocks() {
    let mut g = Guards::new(None);
    let s = GuardSpec {
        dry_run: true,
        cooldown_ms: 0,
        max_runs: 1,
        ..spec()
    };
    assert_eq!(decision(&mut g, &s, "a", 0), Decision::DryRun);
    assert_eq!(g.finish("restart-app", &s, "a", false, 1), None);
    let v = g.check("restart-app", &s, "a", 1000);
    assert!(matches!(
        v.decision,
        Decision::Refused(Refusal::Budget { .. })
    ));
    assert_eq!(v.escalation, None);
    assert_eq!(g.blocked().count(), 0);
    // Cooldown holds in dry-run too.
    let mut g = Guards::new(None);
    let cooling = GuardSpec {
        dry_run: true,
        ..spec()
    };
    assert_eq!(decision(&mut g, &cooling, "a", 0), Decision::DryRun);
    assert!(matches!(
        decision(&mut g, &cooling, "a", 1),
        Decision::Refused(Refusal::Cooldown { .. })
    ));
}

#[test]
fn rule_budget_covers_all_targets() {
    let mut g = Guards::new(None);
    let s = GuardSpec {
        rule_max_runs: Some(2),
        ..spec()
    };
    assert_eq!(decision(&mut g, &s, "a", 0), Decision::Run);
    assert_eq!(decision(&mut g, &s, "b", 0), Decision::Run);
    let v = g.check("restart-app", &s, "c", 0);
    assert!(matches!(
        v.decision,
        Decision::Refused(Refusal::Budget {
            scope: Scope::Rule,
            ..
        })
    ));
    // The rule's budget does not block a target.
    assert_eq!(v.escalation, None);
    assert_eq!(g.blocked().count(), 0);
}

#[test]
fn global_rate_covers_all_rules() {
    let mut g = Guards::new(Some(Rate {
        count: 2,
        per_ms: MIN,
    }));
    let s = spec();
    assert_eq!(g.check("r1", &s, "a", 0).decision, Decision::Run);
    assert_eq!(g.check("r2", &s, "b", 0).decision, Decision::Run);
    assert!(matches!(
        g.check("r3", &s, "c", 0).decision,
        Decision::Refused(Refusal::Budget {
            scope: Scope::Global,
            until_unix_ms: MIN,
            ..
        })
    ));
    // A refused check spends nothing: r3 on c may run once the window passes.
    assert_eq!(g.check("r3", &s, "c", MIN).decision, Decision::Run);
}

#[test]
fn prune_forgets_idle_pairs_only() {
    let mut g = Guards::new(None);
    let s = spec();
    assert_eq!(decision(&mut g, &s, "a", 0), Decision::Run);
    assert_eq!(decision(&mut g, &s, "b", 0), Decision::Run);
    g.finish("restart-app", &s, "b", false, 1);
    g.prune(2 * HOUR, |_| HOUR);
    assert_eq!(g.pairs.len(), 1, "b keeps its failure count");
    assert!(g.rule_runs.is_empty());
}

#[test]
fn refusals_serialize_and_read_for_people() {
    let r = Refusal::Blocked {
        since_unix_ms: 5,
        cause: BlockCause::Failures {
            rule: "restart-app".into(),
            count: 3,
        },
    };
    let json = serde_json::to_value(Decision::Refused(r.clone())).unwrap();
    assert_eq!(json["decision"], "refused");
    assert_eq!(json["refused"], "blocked");
    assert_eq!(json["cause"], "failures");
    assert!(
        r.to_string().contains("3 runs of restart-app failed"),
        "{r}"
    );
}

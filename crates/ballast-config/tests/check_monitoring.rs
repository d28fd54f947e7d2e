//! `[[monitor]]`, `[[rule]]`, `[[maintenance]]` and `[alerting]`: the plan they build (the
//! default rule pack included) and the refusals, located at the field with the fix.

use ballast_monitor::probe::ProbeSpec;
use ballast_monitor::Direction;

mod support;
use support::*;

fn with(tables: &str) -> String {
    format!("{ONE_LISTENER}{APP}\n{tables}")
}

fn problems(src: &str) -> String {
    ballast_config::parse(src, "ballast.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults_add_the_gateway_monitor_and_its_rules() {
    let c = ballast_config::parse(&with(""), "ballast.toml").unwrap();
    let plan = &c.monitoring;
    assert_eq!(plan.monitors.len(), 1);
    assert_eq!(plan.monitors[0].name, "gateway");
    assert!(matches!(plan.monitors[0].probe, ProbeSpec::Gateway(_)));
    let names: Vec<&str> = plan.rules.iter().map(|r| r.spec.name.as_str()).collect();
    for r in [
        "upstream-degraded",
        "upstream-down",
        "error-ratio",
        "certificate-expiry",
    ] {
        assert!(names.contains(&r), "{r} missing from {names:?}");
    }
    // Off means off: no monitor, no rule.
    let c = ballast_config::parse(&with("[alerting]\ndefault_rules = false"), "b.toml").unwrap();
    assert!(c.monitoring.monitors.is_empty() && c.monitoring.rules.is_empty());
}

#[test]
fn without_the_defaults_a_rule_on_the_gateway_monitor_still_has_it() {
    // A rule may name the built-in `gateway` monitor with the default pack off: the monitor
    // must then be in the plan, or the engine refuses the plan and monitoring never starts.
    let rule = "[[rule]]\nname = \"too-few\"\nmonitor = \"gateway\"\nvalue = \"healthy_servers\"\nmin = { below = 1 }\n";
    let src = with(&format!("[alerting]\ndefault_rules = false\n{rule}"));
    let plan = ballast_config::parse(&src, "b.toml").unwrap().monitoring;
    assert_eq!(plan.monitors.len(), 1, "{:?}", plan.monitors);
    assert_eq!(plan.monitors[0].name, "gateway");
    assert!(matches!(plan.monitors[0].probe, ProbeSpec::Gateway(_)));
    let names: Vec<&str> = plan.rules.iter().map(|r| r.spec.name.as_str()).collect();
    assert_eq!(names, ["too-few"], "no default rule comes with it");
}

#[test]
fn a_rule_reads_percentages_and_overrides_a_default_of_the_same_name() {
    let src = with(
        r#"
[[monitor]]
name = "host"
kind = "host"

[[rule]]
name = "disk-used"
monitor = "host"
value = "disk_used"
warn = { above = "50%", recover = "45%" }
crit = { above = 0.8 }
for = "5m"
"#,
    );
    let c = ballast_config::parse(&src, "ballast.toml").unwrap();
    let disk: Vec<_> = c
        .monitoring
        .rules
        .iter()
        .filter(|r| r.spec.name == "disk-used")
        .collect();
    assert_eq!(disk.len(), 1, "the default was replaced, not added to");
    let warn = disk[0].spec.warn.unwrap();
    assert_eq!(warn.direction, Direction::Above);
    assert!((warn.threshold - 0.5).abs() < 1e-12);
    assert!((warn.recover.unwrap() - 0.45).abs() < 1e-12);
    assert_eq!(disk[0].spec.for_ms, 300_000);
    // The host's other defaults joined.
    assert!(c
        .monitoring
        .rules
        .iter()
        .any(|r| r.spec.name == "inodes-used"));
    assert_eq!(c.monitoring.monitors[0].interval.as_secs(), 10);
}

#[test]
fn refusals_name_the_field() {
    let e = problems(&with("[[monitor]]\nname = \"x\"\nkind = \"ping\"\n"));
    assert!(
        e.contains("monitor[0].kind") && e.contains("unknown kind"),
        "{e}"
    );

    let e = problems(&with(
        "[[rule]]\nname = \"r\"\nmonitor = \"nope\"\nvalue = \"up\"\nmin = { below = 1 }\n",
    ));
    assert!(e.contains("rule[0].monitor") && e.contains("nope"), "{e}");

    let e = problems(&with(
        "[[rule]]\nname = \"r\"\nmonitor = \"gateway\"\nvalue = \"up\"\nwarn = { above = \"lots\" }\n",
    ));
    assert!(e.contains("lots"), "{e}");

    let e = problems(&with(
        "[[rule]]\nname = \"r\"\nmonitor = \"gateway\"\nvalue = \"up\"\nwarn = { above = 1, below = 2 }\n",
    ));
    assert!(
        e.contains("rule[0].warn") && e.contains("exactly one"),
        "{e}"
    );

    let e = problems(&with(
        "[[monitor]]\nname = \"t\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\ninterval = \"1s\"\ntimeout = \"5s\"\n",
    ));
    assert!(e.contains("monitor[0].timeout"), "{e}");

    let e = problems(&with(
        "[[monitor]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://x/\"\nbogus = 1\n",
    ));
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn a_dependency_cycle_and_a_bad_maintenance_window_are_refused() {
    let e = problems(&with(
        r#"
[[rule]]
name = "a"
monitor = "gateway"
value = "up"
min = { below = 1 }
depends_on = ["b"]

[[rule]]
name = "b"
monitor = "gateway"
value = "up"
min = { below = 1 }
depends_on = ["a"]
"#,
    ));
    assert!(e.contains("cycle"), "{e}");

    let e = problems(&with(
        r#"
[[maintenance]]
name = "weekly"
days = ["sun"]
start = "02:00"
duration = "2h"
timezone = "Mars/Olympus"
match = { service = "shop" }
"#,
    ));
    assert!(e.contains("Mars/Olympus"), "{e}");
}

#[test]
fn the_process_kind_takes_its_name_as_process() {
    let c = ballast_config::parse(
        &with("[[monitor]]\nname = \"db\"\nkind = \"process\"\nprocess = \"postgres\"\n"),
        "ballast.toml",
    )
    .unwrap();
    let ProbeSpec::Process(spec) = &c.monitoring.monitors[0].probe else {
        panic!(
            "not a process monitor: {:?}",
            c.monitoring.monitors[0].probe
        );
    };
    assert_eq!(spec.name.as_deref(), Some("postgres"));
}

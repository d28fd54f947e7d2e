//! `[[monitor]]`, `[[rule]]` and `[alerting]`: checks them with the rest of the file (so a
//! rule naming a monitor that does not exist refuses the start or the reload, with its line)
//! and builds the monitoring [`Plan`], default rule pack included.

use std::collections::HashSet;
use std::time::Duration;

use ballast_core::Severity;
use ballast_monitor::noise::{Dependencies, MaintenanceSet};
use ballast_monitor::plan::{MonitorDef, Plan, RuleDef};
use ballast_monitor::probe::ProbeSpec;
use ballast_monitor::{Direction, LevelSpec, MinSpec, NoData, Rule, RuleSpec};

use super::Checker;
use crate::raw_monitor as raw;

/// Interval when a monitor does not say: the gateway's counters are cheap and the dead-server
/// alert must be fast; anything that leaves the process is probed every 30 s.
fn default_interval(kind: &str) -> Duration {
    match kind {
        "gateway" => Duration::from_secs(1),
        "host" | "process" | "heartbeat" => Duration::from_secs(10),
        _ => Duration::from_secs(30),
    }
}

/// Timeout when a monitor does not say: its interval, at most 10 s.
fn default_timeout(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(10))
}

pub(super) fn plan(
    c: &mut Checker,
    alerting: Option<raw::Alerting>,
    monitors: Vec<raw::Monitor>,
    rules: Vec<raw::Rule>,
    maintenance: Vec<raw::MaintenanceSpec>,
) -> Plan {
    let mut plan = Plan::default();
    let mut names = HashSet::new();
    for (i, m) in monitors.into_iter().enumerate() {
        let at = |field: &str| format!("monitor[{i}].{field}");
        let name = m.name.unwrap_or_default();
        if name.is_empty() {
            c.fail(at("name"), "every [[monitor]] needs a name");
            continue;
        }
        if !names.insert(name.clone()) {
            c.fail(
                at("name"),
                format!("`{name}` is used by an earlier [[monitor]]; names must be unique"),
            );
        }
        let Some(kind) = m.kind else {
            c.fail(
                at("kind"),
                format!("missing; one of {}", ProbeSpec::KINDS.join(", ")),
            );
            continue;
        };
        let interval = c.positive(at("interval"), m.interval, default_interval(&kind));
        let timeout = c.positive(at("timeout"), m.timeout, default_timeout(interval));
        if timeout > interval {
            c.fail(
                at("timeout"),
                "must not be longer than the interval: runs would pile up",
            );
        }
        match ProbeSpec::parse(&kind, toml::Value::Table(m.keys)) {
            Ok(probe) => plan.monitors.push(MonitorDef {
                name,
                interval,
                timeout,
                probe,
            }),
            Err(e) if e.field.is_empty() || e.field == "kind" => c.fail(at("kind"), e.message),
            Err(e) => c.fail(at(&e.field), e.message),
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in rules.into_iter().enumerate() {
        if let Some(def) = rule(c, i, r, &plan) {
            if !seen.insert((def.monitor.clone(), def.spec.name.clone())) {
                c.fail(
                    format!("rule[{i}].name"),
                    format!(
                        "`{}` is used by an earlier [[rule]] on monitor `{}`",
                        def.spec.name, def.monitor
                    ),
                );
                continue;
            }
            plan.rules.push(def);
        }
    }
    // Without the default pack there is no built-in `gateway` monitor unless a rule names it
    // (rules naming it were accepted above, and need it to run).
    let gateway_named = plan
        .rules
        .iter()
        .any(|r| r.monitor == ballast_monitor::plan::GATEWAY_MONITOR);
    if alerting.and_then(|a| a.default_rules).unwrap_or(true) {
        plan = plan.with_defaults();
    } else if gateway_named {
        plan = plan.with_gateway_monitor();
    }
    // Dependencies may name an alertname received from Alertmanager, so an unknown name is
    // allowed; a rule depending on itself or a cycle is not.
    if let Err(e) = Dependencies::new(plan.dependencies()) {
        c.fail("rule", e.to_string());
    }
    if let Err(e) = MaintenanceSet::new(&maintenance) {
        c.fail("maintenance", e.to_string());
    }
    plan.maintenance = maintenance;
    plan
}

fn level(c: &mut Checker, at: String, l: Option<raw::Level>) -> Option<LevelSpec> {
    let l = l?;
    let (direction, threshold) = match (l.above, l.below) {
        (Some(a), None) => (Direction::Above, a.0),
        (None, Some(b)) => (Direction::Below, b.0),
        _ => {
            c.fail(at, "write exactly one of `above` or `below`");
            return None;
        }
    };
    Some(LevelSpec {
        direction,
        threshold,
        recover: l.recover.map(|r| r.0),
    })
}

fn rule(c: &mut Checker, i: usize, r: raw::Rule, plan: &Plan) -> Option<RuleDef> {
    let at = |field: &str| format!("rule[{i}].{field}");
    let name = r.name.unwrap_or_default();
    if name.is_empty() {
        c.fail(at("name"), "every [[rule]] needs a name");
        return None;
    }
    let Some(monitor) = r.monitor else {
        c.fail(
            at("monitor"),
            "missing: name the [[monitor]] whose readings this rule watches",
        );
        return None;
    };
    let known = plan.monitors.iter().any(|m| m.name == monitor)
        || monitor == ballast_monitor::plan::GATEWAY_MONITOR;
    if !known {
        c.fail(
            at("monitor"),
            format!("no [[monitor]] is named `{monitor}`"),
        );
    }
    let Some(value) = r.value.filter(|v| !v.is_empty()) else {
        c.fail(
            at("value"),
            "missing: which reading, e.g. \"error_ratio\" or \"disk_used\"",
        );
        return None;
    };
    let warn = level(c, at("warn"), r.warn);
    let crit = level(c, at("crit"), r.crit);
    let min = match r.min {
        None => None,
        Some(m) => {
            let severity = match m.severity.as_deref() {
                None => None,
                Some(s) => match Severity::parse(s) {
                    Some(s) => Some(s),
                    None => {
                        c.fail(at("min.severity"), "write \"warning\" or \"critical\"");
                        None
                    }
                },
            };
            match m.below {
                Some(b) => Some(MinSpec {
                    below: b.0,
                    recover: m.recover.map(|r| r.0),
                    severity,
                }),
                None => {
                    c.fail(
                        at("min.below"),
                        "missing: fire when the value is below what?",
                    );
                    None
                }
            }
        }
    };
    let no_data = match r.no_data.as_deref() {
        None => None,
        Some("zero") => Some(NoData::Zero),
        Some("keep_last") => Some(NoData::KeepLast),
        Some("resolve") => Some(NoData::Resolve),
        Some(other) => {
            c.fail(
                at("no_data"),
                format!("`{other}`: write \"zero\", \"keep_last\" or \"resolve\""),
            );
            None
        }
    };
    let ms = |d: Option<ballast_core::Duration>| d.map_or(0, |d| d.get().as_millis() as u64);
    let spec = RuleSpec {
        name: name.clone(),
        warn,
        crit,
        min,
        no_data,
        for_ms: ms(r.for_),
        keep_firing_for_ms: ms(r.keep_firing_for),
    };
    if let Err(e) = Rule::new(spec.clone()) {
        c.fail(at("name"), e.to_string());
        return None;
    }
    for (label, pattern) in &r.matchers {
        if let Err(e) = regex::Regex::new(&format!("^(?:{pattern})$")) {
            c.fail(at(&format!("match.{label}")), format!("not a regex: {e}"));
        }
    }
    Some(RuleDef {
        spec,
        monitor,
        value,
        matchers: r.matchers,
        labels: r.labels,
        annotations: r.annotations,
        depends_on: r.depends_on,
    })
}

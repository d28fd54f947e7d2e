//! What the config asks the monitoring engine to run: monitors (a probe on an interval),
//! rules (a value of a monitor's readings against warning, critical and minimum levels), and
//! the default rule pack that is on unless the config turns it off or overrides a rule.
//!
//! The config crate fills a [`Plan`] in and calls [`Plan::with_defaults`] (or, with
//! `[alerting] default_rules = false` and a rule on the `gateway` monitor,
//! [`Plan::with_gateway_monitor`]), so `ballast check` and a reload see the same effective
//! rules the engine will run.
//!
//! ## The default rule pack and why each number
//!
//! | rule | monitor · value | warning | critical | why |
//! |---|---|---|---|---|
//! | `disk-used` | host · `disk_used` | 70% | 90% | at 70% there are days to act; at 90% a log burst fills it in minutes |
//! | `inodes-used` | host · `inodes_used` | 70% | 90% | small-file spools run out of inodes with space left |
//! | `fds-used` | host · `fds_used` | 70% | 90% | at the system's limit every accept and open fails |
//! | `process-fds-used` | host · `process_fds_used` | 70% | 90% | the same, against one process's `RLIMIT_NOFILE` |
//! | `load-running` | host · `running_per_core` | 1.5 | 3 | runnable tasks per core: above 1.5 requests queue for CPU; at 3 latency triples ("load is not a percentage": blocked tasks are not counted here) |
//! | `upstream-degraded` | gateway · `servers_down` | > 0 | | a server out of rotation is capacity lost, not yet an outage |
//! | `upstream-down` | gateway · `healthy_servers` | | < 1 | nothing left to serve: every request fails or gets the sorry page |
//! | `error-ratio` | gateway · `error_ratio` per route | 1% | 5% | 1% is well above a healthy service's background; 5% is users noticing |
//! | `certificate-expiry` | gateway and every `tls` monitor · `days_left` | 30 days | 7 days | 30 days leaves a renewal cycle to fix automation; 7 is an emergency |
//!
//! Every level recovers a little short of its threshold (hysteresis) so a value hovering on
//! the line does not flap. The host rules wait (`for`) a minute, the gateway's ratio 30
//! seconds; server health has already been debounced by the health checks' `fall`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::probe::ProbeSpec;
use crate::rule::{Direction, LevelSpec, RuleSpec};

/// One `[[monitor]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorDef {
    pub name: String,
    pub interval: Duration,
    /// A run that takes longer is abandoned and reported as timed out.
    pub timeout: Duration,
    pub probe: ProbeSpec,
}

pub use crate::noise::{DependsOn, DependsOnEqual, MaintenanceSpec};

/// One `[[rule]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    /// The levels, `for`, `keep_firing_for` and no-data policy (its `name` is the rule's).
    pub spec: RuleSpec,
    pub monitor: String,
    /// Which readings: their `value` name.
    pub value: String,
    /// Only series whose labels match these regexes (whole value; absent label = "").
    pub matchers: BTreeMap<String, String>,
    /// Added to every alert of the rule (they win over the series' labels).
    pub labels: BTreeMap<String, String>,
    /// `summary`, `runbook`...; `{{label}}` and `{{value}}` are filled in.
    pub annotations: BTreeMap<String, String>,
    pub depends_on: Vec<DependsOn>,
}

/// Everything monitoring runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub monitors: Vec<MonitorDef>,
    pub rules: Vec<RuleDef>,
    /// Weekly windows during which matching alerts are muted.
    pub maintenance: Vec<MaintenanceSpec>,
}

/// The built-in gateway monitor's name and interval.
pub const GATEWAY_MONITOR: &str = "gateway";
pub const GATEWAY_INTERVAL: Duration = Duration::from_secs(1);

fn level(direction: Direction, threshold: f64, recover: f64) -> Option<LevelSpec> {
    Some(LevelSpec {
        direction,
        threshold,
        recover: Some(recover),
    })
}

fn rule(
    name: &str,
    monitor: &str,
    value: &str,
    warn: Option<LevelSpec>,
    crit: Option<LevelSpec>,
    for_ms: u64,
) -> RuleDef {
    RuleDef {
        spec: RuleSpec {
            name: name.to_string(),
            warn,
            crit,
            for_ms,
            ..RuleSpec::default()
        },
        monitor: monitor.to_string(),
        value: value.to_string(),
        matchers: BTreeMap::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        depends_on: Vec::new(),
    }
}

impl Plan {
    /// Adds the built-in `gateway` monitor unless a monitor has that name: with the default
    /// rule pack, or without it when a rule names the monitor.
    pub fn with_gateway_monitor(mut self) -> Plan {
        if !self.monitors.iter().any(|m| m.name == GATEWAY_MONITOR) {
            self.monitors.push(MonitorDef {
                name: GATEWAY_MONITOR.to_string(),
                interval: GATEWAY_INTERVAL,
                timeout: GATEWAY_INTERVAL,
                probe: ProbeSpec::Gateway(Default::default()),
            });
        }
        self
    }

    /// Adds the built-in `gateway` monitor ([`Plan::with_gateway_monitor`]) and the default
    /// rule pack: every default rule whose name no configured rule on the same monitor takes,
    /// on monitors that exist.
    pub fn with_defaults(mut self) -> Plan {
        use Direction::{Above, Below};
        self = self.with_gateway_monitor();
        let mut pack = Vec::new();
        for m in &self.monitors {
            let n = m.name.as_str();
            match m.probe.kind() {
                "gateway" => {
                    let mut degraded = rule(
                        "upstream-degraded",
                        n,
                        "servers_down",
                        level(Above, 0.0, 0.0),
                        None,
                        0,
                    );
                    degraded.depends_on.push(DependsOn::Equal(DependsOnEqual {
                        rule: "upstream-down".into(),
                        equal: vec!["upstream".into()],
                    }));
                    pack.push(degraded);
                    pack.push(rule(
                        "upstream-down",
                        n,
                        "healthy_servers",
                        None,
                        level(Below, 1.0, 1.0),
                        0,
                    ));
                    let mut ratio = rule(
                        "error-ratio",
                        n,
                        "error_ratio",
                        level(Above, 0.01, 0.005),
                        level(Above, 0.05, 0.02),
                        30_000,
                    );
                    ratio.matchers.insert("route".into(), ".+".into());
                    pack.push(ratio);
                    pack.push(certificate_rule(n));
                }
                "tls" => pack.push(certificate_rule(n)),
                "host" => {
                    for (name, value) in [
                        ("disk-used", "disk_used"),
                        ("inodes-used", "inodes_used"),
                        ("fds-used", "fds_used"),
                        ("process-fds-used", "process_fds_used"),
                    ] {
                        pack.push(rule(
                            name,
                            n,
                            value,
                            level(Above, 0.70, 0.65),
                            level(Above, 0.90, 0.85),
                            60_000,
                        ));
                    }
                    pack.push(rule(
                        "load-running",
                        n,
                        "running_per_core",
                        level(Above, 1.5, 1.2),
                        level(Above, 3.0, 2.5),
                        60_000,
                    ));
                }
                _ => {}
            }
        }
        for r in &mut pack {
            if let Some(summary) = summary_of(&r.spec.name) {
                r.annotations.insert("summary".into(), summary.into());
            }
        }
        for r in pack {
            if !self
                .rules
                .iter()
                .any(|mine| mine.spec.name == r.spec.name && mine.monitor == r.monitor)
            {
                self.rules.push(r);
            }
        }
        self
    }
}

/// What each default rule's alert says.
fn summary_of(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "disk-used" => "{{mount}} is {{value}} full (share of blocks used)",
        "inodes-used" => "{{mount}} has used {{value}} of its inodes",
        "fds-used" => "the system has used {{value}} of its file descriptors",
        "process-fds-used" => "{{process}} has used {{value}} of its file descriptor limit",
        "load-running" => "{{value}} runnable tasks per core",
        "upstream-degraded" => "{{upstream}}: {{value}} server(s) out of rotation",
        "upstream-down" => "{{upstream}}: no healthy server left",
        "error-ratio" => "route {{route}}: {{value}} of answers are 5xx",
        "certificate-expiry" => "certificate {{names}} expires in {{value}} days",
        _ => return None,
    })
}

fn certificate_rule(monitor: &str) -> RuleDef {
    rule(
        "certificate-expiry",
        monitor,
        "days_left",
        level(Direction::Below, 30.0, 31.0),
        level(Direction::Below, 7.0, 8.0),
        0,
    )
}

impl Plan {
    /// Every rule's `depends_on`, by rule name (a rule on several monitors has them all).
    pub fn dependencies(&self) -> BTreeMap<String, Vec<DependsOn>> {
        let mut out: BTreeMap<String, Vec<DependsOn>> = BTreeMap::new();
        for r in &self.rules {
            let deps = out.entry(r.spec.name.clone()).or_default();
            for d in &r.depends_on {
                if !deps.contains(d) {
                    deps.push(d.clone());
                }
            }
        }
        out.retain(|_, d| !d.is_empty());
        out
    }
}

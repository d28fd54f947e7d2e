//! Inhibition: alerts muted because another, firing alert already says what is wrong.
//!
//! Two rules, both computed from the current alerts alone:
//!
//! - **Critical over warning.** A firing critical alert inhibits a firing warning alert with the
//!   same `alertname` and otherwise equal labels except `severity` (so a Prometheus pair of rules
//!   `HighLatency{severity="warning"}` / `{severity="critical"}` pages once, at the worse level).
//!   An alert's severity is its firing state's; its `alertname` is the label, or its rule name
//!   when the label is missing.
//! - **Dependencies.** A rule written with `depends_on = ["pg-down"]` has its alerts inhibited
//!   while any alert of rule `pg-down` fires: with the database down, "too few healthy app
//!   servers" is a consequence, not news. `depends_on = [{ rule = "pg-down", equal = ["host"] }]`
//!   restricts that to alerts of `pg-down` with the same `host` value (an absent label is
//!   `""`). A rule may not depend on itself, and dependencies may not form a cycle: two rules
//!   inhibiting each other would both go quiet in a real outage.
//!
//! Only firing alerts inhibit. Every alert is given its inhibition whatever its own state, so
//! the API can show a pending alert as "will be inhibited"; notification only consults it for
//! firing ones.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{AlertRecord, Labels, Severity};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One entry of a rule's `depends_on`: a rule name, or `{ rule, equal }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a rule name (\"pg-down\") or { rule = \"pg-down\", equal = [\"host\"] }"
)]
pub enum DependsOn {
    Rule(String),
    Equal(DependsOnEqual),
}

/// `{ rule = "D", equal = ["host"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependsOnEqual {
    pub rule: String,
    #[serde(default)]
    pub equal: Vec<String>,
}

impl DependsOn {
    pub fn rule(&self) -> &str {
        match self {
            DependsOn::Rule(r) => r,
            DependsOn::Equal(e) => &e.rule,
        }
    }

    /// The labels that must be equal; none for the plain form.
    pub fn equal(&self) -> &[String] {
        match self {
            DependsOn::Rule(_) => &[],
            DependsOn::Equal(e) => &e.equal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InhibitError {
    #[error("rule {0:?} depends on a rule with an empty name")]
    EmptyDependency(String),
    #[error("rule {0:?} depends on itself")]
    SelfDependency(String),
    #[error("depends_on forms a cycle: {}; rules that inhibit each other would all go quiet", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// Every rule's `depends_on`, checked.
#[derive(Debug, Clone, Default)]
pub struct Dependencies {
    by_rule: BTreeMap<String, Vec<DependsOn>>,
}

impl Dependencies {
    /// `by_rule`: each dependant rule's name and its `depends_on`. A dependency on a rule that
    /// is not configured is allowed: it may be an `alertname` received from Alertmanager.
    pub fn new(by_rule: BTreeMap<String, Vec<DependsOn>>) -> Result<Self, InhibitError> {
        for (rule, deps) in &by_rule {
            for d in deps {
                if d.rule().trim().is_empty() {
                    return Err(InhibitError::EmptyDependency(rule.clone()));
                }
                if d.rule() == rule {
                    return Err(InhibitError::SelfDependency(rule.clone()));
                }
            }
        }
        let deps = Dependencies { by_rule };
        if let Some(cycle) = deps.find_cycle() {
            return Err(InhibitError::Cycle(cycle));
        }
        Ok(deps)
    }

    /// A cycle as the path of rule names that closes it, if any (depth-first, iterative).
    fn find_cycle(&self) -> Option<Vec<String>> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        for start in self.by_rule.keys() {
            if done.contains(start.as_str()) {
                continue;
            }
            // The current path and, for each node on it, the index of its next dependency.
            let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
            while let Some((node, next)) = path.last().copied() {
                let deps = self.by_rule.get(node).map(Vec::as_slice).unwrap_or(&[]);
                let Some(dep) = deps.get(next) else {
                    done.insert(node);
                    path.pop();
                    continue;
                };
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                let dep = dep.rule();
                if let Some(at) = path.iter().position(|(n, _)| *n == dep) {
                    let mut cycle: Vec<String> =
                        path.iter().skip(at).map(|(n, _)| n.to_string()).collect();
                    cycle.push(dep.to_string());
                    return Some(cycle);
                }
                if !done.contains(dep) {
                    path.push((dep, 0));
                }
            }
        }
        None
    }

    pub fn of(&self, rule: &str) -> &[DependsOn] {
        self.by_rule.get(rule).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Why one alert is inhibited: the ids of the alerts inhibiting it and a sentence per cause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inhibition {
    pub inhibited_by: Vec<String>,
    pub reasons: Vec<String>,
}

fn alertname(a: &AlertRecord) -> &str {
    a.labels.get("alertname").unwrap_or(&a.rule)
}

/// The labels without `severity`, with `alertname` set: the identity critical and warning share.
fn without_severity(a: &AlertRecord) -> Labels {
    let mut l: Labels = a.labels.iter().filter(|(k, _)| *k != "severity").collect();
    if l.get("alertname").is_none() {
        l.insert("alertname", a.rule.clone());
    }
    l
}

/// The inhibition of every inhibited alert, by alert id; alerts not in the map are not
/// inhibited. Ids within one entry are sorted and unique.
pub fn inhibitions(alerts: &[AlertRecord], deps: &Dependencies) -> BTreeMap<String, Inhibition> {
    let mut out: BTreeMap<String, Inhibition> = BTreeMap::new();
    let firing = |a: &&AlertRecord| a.state.severity().is_some();

    // Critical over warning.
    let mut critical: BTreeMap<Labels, Vec<&str>> = BTreeMap::new();
    for a in alerts.iter().filter(firing) {
        if a.state.severity() == Some(Severity::Critical) {
            critical.entry(without_severity(a)).or_default().push(&a.id);
        }
    }
    if !critical.is_empty() {
        for a in alerts.iter().filter(firing) {
            if a.state.severity() != Some(Severity::Warning) {
                continue;
            }
            if let Some(ids) = critical.get(&without_severity(a)) {
                let entry = out.entry(a.id.clone()).or_default();
                for id in ids.iter().filter(|id| **id != a.id) {
                    entry.inhibited_by.push(id.to_string());
                    entry.reasons.push(format!(
                        "the critical alert {id} of {:?} is firing",
                        alertname(a)
                    ));
                }
            }
        }
    }

    // Dependencies.
    let mut firing_by_rule: BTreeMap<&str, Vec<&AlertRecord>> = BTreeMap::new();
    for a in alerts.iter().filter(firing) {
        firing_by_rule.entry(a.rule.as_str()).or_default().push(a);
    }
    for a in alerts {
        for dep in deps.of(&a.rule) {
            let Some(sources) = firing_by_rule.get(dep.rule()) else {
                continue;
            };
            for s in sources {
                let equal = dep.equal().iter().all(|name| {
                    s.labels.get(name).unwrap_or("") == a.labels.get(name).unwrap_or("")
                });
                if !equal || s.id == a.id {
                    continue;
                }
                let entry = out.entry(a.id.clone()).or_default();
                entry.inhibited_by.push(s.id.clone());
                let on = if dep.equal().is_empty() {
                    String::new()
                } else {
                    let pairs: Vec<String> = dep
                        .equal()
                        .iter()
                        .map(|n| format!("{n}={:?}", s.labels.get(n).unwrap_or("")))
                        .collect();
                    format!(" with {}", pairs.join(", "))
                };
                entry.reasons.push(format!(
                    "rule {:?} depends on {:?}, whose alert {}{on} is firing",
                    a.rule,
                    dep.rule(),
                    s.id
                ));
            }
        }
    }

    out.retain(|_, i| !i.inhibited_by.is_empty());
    for i in out.values_mut() {
        // Keep reasons paired with ids while deduplicating.
        let mut pairs: Vec<(String, String)> = std::mem::take(&mut i.inhibited_by)
            .into_iter()
            .zip(std::mem::take(&mut i.reasons))
            .collect();
        pairs.sort();
        pairs.dedup_by(|x, y| x.0 == y.0);
        for (id, reason) in pairs {
            i.inhibited_by.push(id);
            i.reasons.push(reason);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ballast_core::{AlertSource, AlertState};

    pub(crate) fn alert(rule: &str, labels: &[(&str, &str)], state: AlertState) -> AlertRecord {
        let labels: Labels = labels
            .iter()
            .copied()
            .chain([("alertname", rule)])
            .collect();
        AlertRecord {
            id: labels.fingerprint(),
            rule: rule.into(),
            labels,
            annotations: BTreeMap::new(),
            state,
            source: AlertSource::Rule,
            value: None,
            threshold: None,
            since_unix_ms: 0,
            updated_unix_ms: 0,
            ack: None,
        }
    }

    pub(crate) fn firing(sev: Severity) -> AlertState {
        AlertState::Firing { severity: sev }
    }

    fn deps(pairs: &[(&str, Vec<DependsOn>)]) -> Dependencies {
        Dependencies::new(
            pairs
                .iter()
                .map(|(r, d)| (r.to_string(), d.clone()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn critical_inhibits_the_warning_of_the_same_alert() {
        let crit = alert(
            "Latency",
            &[("severity", "critical"), ("svc", "a")],
            firing(Severity::Critical),
        );
        let warn = alert(
            "Latency",
            &[("severity", "warning"), ("svc", "a")],
            firing(Severity::Warning),
        );
        let other = alert(
            "Latency",
            &[("severity", "warning"), ("svc", "b")],
            firing(Severity::Warning),
        );
        let other_name = alert(
            "Errors",
            &[("severity", "warning"), ("svc", "a")],
            firing(Severity::Warning),
        );
        let all = [
            crit.clone(),
            warn.clone(),
            other.clone(),
            other_name.clone(),
        ];
        let out = inhibitions(&all, &Dependencies::default());
        assert_eq!(out.len(), 1);
        let i = &out[&warn.id];
        assert_eq!(i.inhibited_by, vec![crit.id.clone()]);
        assert!(i.reasons[0].contains("critical"), "{:?}", i.reasons);
        assert!(!out.contains_key(&crit.id));
    }

    #[test]
    fn only_a_firing_critical_inhibits() {
        let crit = alert("Latency", &[("severity", "critical")], AlertState::Resolved);
        let warn = alert(
            "Latency",
            &[("severity", "warning")],
            firing(Severity::Warning),
        );
        assert!(inhibitions(&[crit, warn], &Dependencies::default()).is_empty());
        // Extra labels on the critical one (beyond severity) break the match.
        let crit = alert(
            "Latency",
            &[("severity", "critical"), ("x", "1")],
            firing(Severity::Critical),
        );
        let warn = alert(
            "Latency",
            &[("severity", "warning")],
            firing(Severity::Warning),
        );
        assert!(inhibitions(&[crit, warn], &Dependencies::default()).is_empty());
    }

    #[test]
    fn depends_on_inhibits_dependants_while_the_dependency_fires() {
        let d = deps(&[("app-capacity", vec![DependsOn::Rule("pg-down".into())])]);
        let pg = alert("pg-down", &[("host", "db1")], firing(Severity::Critical));
        let app1 = alert(
            "app-capacity",
            &[("upstream", "a")],
            firing(Severity::Critical),
        );
        let app2 = alert("app-capacity", &[("upstream", "b")], AlertState::Pending);
        let out = inhibitions(&[pg.clone(), app1.clone(), app2.clone()], &d);
        assert_eq!(out[&app1.id].inhibited_by, vec![pg.id.clone()]);
        assert!(out[&app1.id].reasons[0].contains("\"pg-down\""));
        assert_eq!(out[&app2.id].inhibited_by, vec![pg.id.clone()]);
        assert!(!out.contains_key(&pg.id));
        // pg-down resolves: nothing inhibited.
        let pg_ok = alert("pg-down", &[("host", "db1")], AlertState::Resolved);
        assert!(inhibitions(&[pg_ok, app1, app2], &d).is_empty());
    }

    #[test]
    fn depends_on_with_equal_labels() {
        let d = deps(&[(
            "disk-slow",
            vec![DependsOn::Equal(DependsOnEqual {
                rule: "host-down".into(),
                equal: vec!["host".into()],
            })],
        )]);
        let down = alert("host-down", &[("host", "h1")], firing(Severity::Critical));
        let same = alert("disk-slow", &[("host", "h1")], firing(Severity::Warning));
        let other = alert("disk-slow", &[("host", "h2")], firing(Severity::Warning));
        let out = inhibitions(&[down.clone(), same.clone(), other.clone()], &d);
        assert_eq!(out[&same.id].inhibited_by, vec![down.id.clone()]);
        assert!(out[&same.id].reasons[0].contains("host=\"h1\""));
        assert!(!out.contains_key(&other.id));
    }

    #[test]
    fn several_causes_are_all_listed_once() {
        let d = deps(&[(
            "app",
            vec![DependsOn::Rule("pg".into()), DependsOn::Rule("pg".into())],
        )]);
        let pg1 = alert("pg", &[("host", "1")], firing(Severity::Critical));
        let pg2 = alert("pg", &[("host", "2")], firing(Severity::Critical));
        let app = alert("app", &[], firing(Severity::Warning));
        let out = inhibitions(&[pg1.clone(), pg2.clone(), app.clone()], &d);
        let mut want = vec![pg1.id.clone(), pg2.id.clone()];
        want.sort();
        assert_eq!(out[&app.id].inhibited_by, want);
        assert_eq!(out[&app.id].reasons.len(), 2);
    }

    #[test]
    fn dependencies_are_checked() {
        let d = |pairs: &[(&str, &str)]| {
            let mut m: BTreeMap<String, Vec<DependsOn>> = BTreeMap::new();
            for (r, dep) in pairs {
                m.entry(r.to_string())
                    .or_default()
                    .push(DependsOn::Rule(dep.to_string()));
            }
            Dependencies::new(m)
        };
        assert_eq!(
            d(&[("a", "a")]).unwrap_err(),
            InhibitError::SelfDependency("a".into())
        );
        assert_eq!(
            d(&[("a", "")]).unwrap_err(),
            InhibitError::EmptyDependency("a".into())
        );
        let e = d(&[("a", "b"), ("b", "c"), ("c", "a")]).unwrap_err();
        assert!(
            matches!(&e, InhibitError::Cycle(c) if c.len() == 4),
            "{e:?}"
        );
        assert!(e.to_string().contains("->"));
        // A diamond is not a cycle; an unknown rule is allowed.
        assert!(d(&[
            ("a", "b"),
            ("a", "c"),
            ("b", "d"),
            ("c", "d"),
            ("d", "external")
        ])
        .is_ok());
    }

    #[test]
    fn depends_on_deserializes_both_forms() {
        let v: Vec<DependsOn> = serde_json::from_value(serde_json::json!(
            ["pg-down", {"rule": "host-down", "equal": ["host"]}]
        ))
        .unwrap();
        assert_eq!(v[0], DependsOn::Rule("pg-down".into()));
        assert_eq!(v[1].rule(), "host-down");
        assert_eq!(v[1].equal(), ["host".to_string()]);
        let bad = serde_json::from_value::<DependsOn>(serde_json::json!({"rule": "x", "eq": []}));
        assert!(bad.unwrap_err().to_string().contains("rule name"));
    }
}

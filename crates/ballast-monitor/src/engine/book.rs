//! The engine's books: every monitor's last result, one [`Evaluator`] per monitor (a round is
//! one monitor's run, so rules of other monitors never see a missing round), and the record of
//! every alert the API shows and the store keeps.
//!
//! Pure and synchronous: the runner calls [`Book::record`] with a finished run and a time, and
//! sends what it returns (events and records to save). That keeps every rule of alerting
//! testable without a clock or a task.
//!
//! An alert's full labels are the series' labels, then `monitor`, then the rule's own labels,
//! then `alertname` (the rule's name); later ones win. Its id is their fingerprint, so it is
//! the same after a restart and on every instance. A resolved alert stays listed for
//! [`KEEP_RESOLVED_MS`], then is forgotten here (the store keeps it).

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{
    Ack, AlertRecord, AlertSource, AlertState, AlertTransition, Event, Labels, Severity,
};
use regex::Regex;
use serde::Serialize;

use crate::plan::{MonitorDef, RuleDef};
use crate::probe::{Outcome, Reading};
use crate::rule::Rule;
use crate::{Evaluator, Sample};

/// How long a resolved alert stays in the list.
pub const KEEP_RESOLVED_MS: u64 = 3_600_000;

/// One finished run of a monitor, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub at_unix_ms: u64,
    pub duration_ms: u64,
    pub timed_out: bool,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Counts of a monitor's runs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RunCounts {
    pub runs: u64,
    pub failed: u64,
    pub timed_out: u64,
}

struct CompiledRule {
    def: RuleDef,
    matchers: Vec<(String, Regex)>,
}

impl CompiledRule {
    fn selects(&self, r: &Reading) -> bool {
        r.value == self.def.value
            && self
                .matchers
                .iter()
                .all(|(name, re)| re.is_match(r.labels.get(name).unwrap_or("")))
    }

    /// The alert's full labels for one series.
    fn full_labels(&self, series: &Labels) -> Labels {
        let mut labels = series.clone();
        labels.insert("monitor", self.def.monitor.clone());
        for (k, v) in &self.def.labels {
            labels.insert(k.clone(), v.clone());
        }
        labels.insert("alertname", self.def.spec.name.clone());
        labels
    }

    /// The series' labels back from an alert's full labels (for restoring after a restart).
    fn series_labels(&self, full: &Labels) -> Labels {
        full.iter()
            .filter(|(k, _)| {
                *k != "alertname" && *k != "monitor" && !self.def.labels.contains_key(*k)
            })
            .collect()
    }

    fn annotations(&self, labels: &Labels, value: Option<f64>) -> BTreeMap<String, String> {
        self.def
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, labels, value)))
            .collect()
    }
}

/// `{{name}}` → the label's value, `{{value}}` → the value; unknown names stay as written.
pub fn fill(template: &str, labels: &Labels, value: Option<f64>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        match (name, labels.get(name)) {
            ("value", _) => match value {
                Some(v) => out.push_str(
                    format!("{v:.4}")
                        .trim_end_matches('0')
                        .trim_end_matches('.'),
                ),
                None => out.push_str("no data"),
            },
            (_, Some(v)) => out.push_str(v),
            (_, None) => out.push_str(&rest[open..open + 4 + close]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

struct MonitorBook {
    def: MonitorDef,
    evaluator: Evaluator,
    rules: BTreeMap<String, CompiledRule>,
    last: Option<RunResult>,
    counts: RunCounts,
}

/// A problem building the books from a plan (the config crate has checked the plan, so this
/// is a bug or a plan built by hand).
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("rule {rule:?}: {message}")]
    Rule { rule: String, message: String },
    #[error("rule {rule:?} names monitor {monitor:?}, which does not exist")]
    NoMonitor { rule: String, monitor: String },
}

pub struct Book {
    monitors: BTreeMap<String, MonitorBook>,
    alerts: BTreeMap<String, AlertRecord>,
}

/// What a recorded run asks the runner to pass on.
#[derive(Debug, Default)]
pub struct Recorded {
    pub events: Vec<Event>,
    pub save: Vec<AlertRecord>,
}

impl Book {
    pub fn new(monitors: &[MonitorDef], rules: &[RuleDef]) -> Result<Book, BookError> {
        let mut by_monitor: BTreeMap<&str, Vec<&RuleDef>> = BTreeMap::new();
        for r in rules {
            if !monitors.iter().any(|m| m.name == r.monitor) {
                return Err(BookError::NoMonitor {
                    rule: r.spec.name.clone(),
                    monitor: r.monitor.clone(),
                });
            }
            by_monitor.entry(&r.monitor).or_default().push(r);
        }
        let mut books = BTreeMap::new();
        for m in monitors {
            let mut compiled = BTreeMap::new();
            let mut built = Vec::new();
            for r in by_monitor.get(m.name.as_str()).into_iter().flatten() {
                let err = |message: String| BookError::Rule {
                    rule: r.spec.name.clone(),
                    message,
                };
                let rule = Rule::new(r.spec.clone()).map_err(|e| err(e.to_string()))?;
                let mut matchers = Vec::new();
                for (name, pattern) in &r.matchers {
                    let re = Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| err(format!("match.{name}: {e}")))?;
                    matchers.push((name.clone(), re));
                }
                built.push(rule);
                compiled.insert(
                    r.spec.name.clone(),
                    CompiledRule {
                        def: (*r).clone(),
                        matchers,
                    },
                );
            }
            let evaluator = Evaluator::new(built).map_err(|e| BookError::Rule {
                rule: m.name.clone(),
                message: e.to_string(),
            })?;
            books.insert(
                m.name.clone(),
                MonitorBook {
                    def: m.clone(),
                    evaluator,
                    rules: compiled,
                    last: None,
                    counts: RunCounts::default(),
                },
            );
        }
        Ok(Book {
            monitors: books,
            alerts: BTreeMap::new(),
        })
    }

    /// Puts back alerts kept in the store: firing rule alerts resume firing without a new
    /// transition; received (Alertmanager) alerts are listed as they were. Returns how many
    /// were restored; records whose rule or monitor no longer exists are skipped.
    pub fn restore(&mut self, records: Vec<AlertRecord>) -> usize {
        let mut restored = 0;
        for record in records {
            match (record.source, record.state) {
                (AlertSource::Rule, AlertState::Firing { severity }) => {
                    let monitor = record.labels.get("monitor").unwrap_or("").to_string();
                    let Some(book) = self.monitors.get_mut(&monitor) else {
                        continue;
                    };
                    let Some(rule) = book.rules.get(&record.rule) else {
                        continue;
                    };
                    let series = rule.series_labels(&record.labels);
                    if book
                        .evaluator
                        .restore(&record.rule, series, severity, record.since_unix_ms)
                        .is_ok()
                    {
                        self.alerts.insert(record.id.clone(), record);
                        restored += 1;
                    }
                }
                (AlertSource::Alertmanager, AlertState::Firing { .. }) => {
                    self.alerts.insert(record.id.clone(), record);
                    restored += 1;
                }
                _ => {}
            }
        }
        restored
    }

    /// After [`Book::restore`] on a reload: keeps listing received alerts, and resolved or
    /// pending ones of rules that still exist, so the list does not blink.
    pub fn keep_listed(&mut self, records: Vec<AlertRecord>) {
        for r in records {
            if self.alerts.contains_key(&r.id) {
                continue;
            }
            let rule_exists = self
                .monitors
                .get(r.labels.get("monitor").unwrap_or(""))
                .is_some_and(|m| m.rules.contains_key(&r.rule));
            if r.source == AlertSource::Alertmanager
                || (rule_exists && r.state == AlertState::Resolved)
            {
                self.alerts.insert(r.id.clone(), r);
            }
        }
    }

    /// Records one run of `monitor` finished at `now` and evaluates its rules.
    pub fn record(&mut self, monitor: &str, mut run: RunResult, now: u64) -> Recorded {
        let mut out = Recorded::default();
        let Some(book) = self.monitors.get_mut(monitor) else {
            return out;
        };
        book.counts.runs += 1;
        if run.timed_out {
            book.counts.timed_out += 1;
        }
        if run.outcome.error.is_some() {
            book.counts.failed += 1;
        }
        if !run.outcome.readings.iter().any(|r| r.value == "up") {
            let up = if run.outcome.error.is_none() {
                1.0
            } else {
                0.0
            };
            run.outcome
                .readings
                .push(Reading::new("up", Labels::new(), up));
        }
        if run.outcome.warming_up {
            book.last = Some(run);
            return out;
        }
        let mut samples = Vec::new();
        for rule in book.rules.values() {
            for r in run.outcome.readings.iter().filter(|r| rule.selects(r)) {
                samples.push(Sample::new(
                    &rule.def.spec.name,
                    r.labels.clone(),
                    Some(r.number),
                ));
            }
        }
        let evaluation = book.evaluator.evaluate(&samples, now);
        for t in evaluation.transitions {
            let Some(rule) = book.rules.get(&t.rule) else {
                continue;
            };
            let record = apply(&mut self.alerts, rule, &t);
            out.events.push(changed(&record, &t));
            out.save.push(record);
        }
        // The latest value of every live alert of this monitor, for the API.
        for s in &samples {
            if let Some(rule) = book.rules.get(&s.rule) {
                let id = rule.full_labels(&s.labels).fingerprint();
                // Only live alerts: a resolved one keeps the time it resolved, so it leaves
                // the list KEEP_RESOLVED_MS later even while its series reports.
                if let Some(a) = self
                    .alerts
                    .get_mut(&id)
                    .filter(|a| matches!(a.state, AlertState::Pending | AlertState::Firing { .. }))
                {
                    a.value = s.value;
                    a.updated_unix_ms = now;
                }
            }
        }
        book.last = Some(run);
        self.alerts.retain(|_, a| match a.state {
            AlertState::Pending | AlertState::Firing { .. } => true,
            AlertState::Resolved => now.saturating_sub(a.updated_unix_ms) < KEEP_RESOLVED_MS,
            AlertState::Inactive => false,
        });
        out
    }

    /// Takes alerts received from Alertmanager or Grafana: a new or changed state is recorded
    /// and announced; a repeat of the same state only refreshes it (deduplication).
    pub fn receive(&mut self, received: Vec<AlertRecord>, now: u64) -> Recorded {
        let mut out = Recorded::default();
        for mut r in received {
            let from = self
                .alerts
                .get(&r.id)
                .map_or(AlertState::Inactive, |a| a.state);
            r.updated_unix_ms = now;
            if from == r.state {
                if let Some(a) = self.alerts.get_mut(&r.id) {
                    a.updated_unix_ms = now;
                    a.annotations = r.annotations;
                }
                continue;
            }
            if let Some(old) = self.alerts.get(&r.id) {
                if matches!(old.state, AlertState::Firing { .. }) && r.state != AlertState::Resolved
                {
                    r.ack = old.ack.clone();
                }
            }
            if from == AlertState::Inactive && r.state == AlertState::Resolved {
                // A resolve for an alert never seen firing here: nothing to announce.
                continue;
            }
            let t = AlertTransition {
                rule: r.rule.clone(),
                labels: r.labels.clone(),
                from,
                to: r.state,
                value: r.value,
                threshold: r.threshold,
                at_unix_ms: now,
            };
            out.events.push(changed(&r, &t));
            out.save.push(r.clone());
            self.alerts.insert(r.id.clone(), r);
        }
        out
    }

    /// Acknowledges a live alert; `None` when there is no such alert.
    pub fn ack(&mut self, id: &str, ack: Ack) -> Option<AlertRecord> {
        let a = self.alerts.get_mut(id)?;
        a.ack = Some(ack);
        Some(a.clone())
    }

    pub fn alerts(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.values()
    }

    pub fn alert(&self, id: &str) -> Option<&AlertRecord> {
        self.alerts.get(id)
    }

    /// The rules' dependencies, by rule name: what [`crate::noise`] needs for inhibition.
    pub fn rule_defs(&self) -> impl Iterator<Item = &RuleDef> {
        self.monitors
            .values()
            .flat_map(|m| m.rules.values().map(|r| &r.def))
    }

    /// Monitors with their definition, last run and counts.
    pub fn monitors(&self) -> impl Iterator<Item = (&MonitorDef, Option<&RunResult>, RunCounts)> {
        self.monitors
            .values()
            .map(|m| (&m.def, m.last.as_ref(), m.counts))
    }

    /// Firing and pending alerts by (state name, severity name), for `ballast_alerts`.
    pub fn counts(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        let mut out = BTreeMap::new();
        for state in ["pending", "firing"] {
            for sev in [Severity::Warning.name(), Severity::Critical.name(), ""] {
                if state == "pending" && !sev.is_empty() || state == "firing" && sev.is_empty() {
                    continue;
                }
                out.insert((state, sev), 0);
            }
        }
        for a in self.alerts.values() {
            let sev = a.state.severity().map_or("", Severity::name);
            if let Some(n) = out.get_mut(&(a.state.name(), sev)) {
                *n += 1;
            }
        }
        out
    }

    /// The names of monitors (for the API's 404s).
    pub fn monitor_names(&self) -> BTreeSet<&str> {
        self.monitors.keys().map(String::as_str).collect()
    }
}

/// Updates (or creates) the record of the alert a transition is about.
fn apply(
    alerts: &mut BTreeMap<String, AlertRecord>,
    rule: &CompiledRule,
    t: &AlertTransition,
) -> AlertRecord {
    let labels = rule.full_labels(&t.labels);
    let id = labels.fingerprint();
    let live = |s: AlertState| matches!(s, AlertState::Pending | AlertState::Firing { .. });
    // An acknowledgement lasts while the alert is live (pending, firing, escalated); it ends
    // with the episode.
    let ack = match alerts.get(&id) {
        Some(old) if live(old.state) && live(t.to) => old.ack.clone(),
        _ => None,
    };
    let record = AlertRecord {
        id: id.clone(),
        rule: rule.def.spec.name.clone(),
        annotations: rule.annotations(&labels, t.value),
        labels,
        state: t.to,
        source: AlertSource::Rule,
        value: t.value,
        threshold: t.threshold,
        since_unix_ms: t.at_unix_ms,
        updated_unix_ms: t.at_unix_ms,
        ack,
    };
    alerts.insert(id, record.clone());
    record
}

fn changed(record: &AlertRecord, t: &AlertTransition) -> Event {
    Event::AlertChanged {
        id: record.id.clone(),
        rule: record.rule.clone(),
        labels: record.labels.clone(),
        from: t.from,
        to: t.to,
        value: t.value,
        threshold: t.threshold,
        source: record.source,
    }
}

#[cfg(test)]
mod tests;

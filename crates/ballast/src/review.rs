//! The threshold review, fed from the store: for each `[[rule]]` of the running plan, the
//! per-minute rollups of its value (the series its `match` selects) and its firing episodes
//! from the event log (`alert_changed`), each marked acted on when a person acknowledged it
//! (`alert_acknowledged`) or a remediation run was made for it while it fired. The judging is
//! `ballast-review`'s (pure); this module only reads.
//!
//! It runs on demand (`GET /api/v1/review`, `ballast review`) and, with `[review] enabled`,
//! every `[review] every`, telling `[review] receiver` when a rule is flagged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ballast_core::{AlertState, Event, EventQuery, Severity};
use ballast_monitor::plan::{Plan, RuleDef};
use ballast_monitor::rule::Direction as RuleDirection;
use ballast_review::{Direction, Firing, Report, RuleInput, Threshold, Window};
use ballast_store::{Store, StoreError};
use regex::Regex;

use crate::history::History;
use crate::remedying::Announce;

fn threshold(direction: RuleDirection, value: f64) -> Threshold {
    Threshold {
        direction: match direction {
            RuleDirection::Above => Direction::Above,
            RuleDirection::Below => Direction::Below,
        },
        value,
    }
}

/// A rule's warning and critical thresholds (a `min` rule is one level below).
fn levels(def: &RuleDef) -> (Option<Threshold>, Option<Threshold>) {
    let s = &def.spec;
    if let Some(min) = &s.min {
        let t = Some(threshold(RuleDirection::Below, min.below));
        return match min.severity {
            Some(Severity::Warning) => (t, None),
            _ => (None, t),
        };
    }
    (
        s.warn.map(|l| threshold(l.direction, l.threshold)),
        s.crit.map(|l| threshold(l.direction, l.threshold)),
    )
}

/// One open episode while the events are read.
struct Open {
    start: u64,
    severity: Severity,
    acted: bool,
}

/// The firing episodes of every rule in the window, by rule name.
fn episodes(
    events: &[ballast_core::StoredEvent],
    runs: &[(String, u64)],
    until: u64,
) -> HashMap<String, Vec<Firing>> {
    let mut open: HashMap<String, (String, Open)> = HashMap::new();
    let mut done: HashMap<String, Vec<Firing>> = HashMap::new();
    let close = |rule: String,
                 id: String,
                 o: Open,
                 end: Option<u64>,
                 done: &mut HashMap<String, Vec<Firing>>| {
        let end_at = end.unwrap_or(until);
        let acted = o.acted
            || runs
                .iter()
                .any(|(alert, at)| *alert == id && (o.start..=end_at).contains(at));
        done.entry(rule).or_default().push(Firing {
            alert_id: id,
            severity: o.severity,
            start_unix_ms: o.start,
            end_unix_ms: end,
            acted,
        });
    };
    for e in events {
        let at = e.stamped.at_unix_ms;
        match &e.stamped.event {
            Event::AlertChanged { id, rule, to, .. } => match to {
                AlertState::Firing { severity } => match open.get_mut(id) {
                    Some((_, o)) => o.severity = o.severity.max(*severity),
                    None => {
                        open.insert(
                            id.clone(),
                            (
                                rule.clone(),
                                Open {
                                    start: at,
                                    severity: *severity,
                                    acted: false,
                                },
                            ),
                        );
                    }
                },
                AlertState::Resolved | AlertState::Inactive => {
                    if let Some((rule, o)) = open.remove(id) {
                        close(rule, id.clone(), o, Some(at), &mut done);
                    }
                }
                AlertState::Pending => {}
            },
            Event::AlertAcknowledged { id, .. } => {
                if let Some((_, o)) = open.get_mut(id) {
                    o.acted = true;
                }
            }
            _ => {}
        }
    }
    for (id, (rule, o)) in open {
        close(rule, id, o, None, &mut done);
    }
    done
}

/// Reads what the review needs from `store` and reviews every rule of `plan` over `window`.
pub async fn run(store: &Store, plan: &Plan, window: Window) -> Result<Report, StoreError> {
    let query = EventQuery {
        since_unix_ms: Some(window.since_unix_ms),
        kinds: vec!["alert_changed".into(), "alert_acknowledged".into()],
        ..EventQuery::default()
    };
    let events: Vec<_> = store
        .events(&query)
        .await?
        .into_iter()
        .filter(|e| e.stamped.at_unix_ms < window.until_unix_ms)
        .collect();
    let runs: Vec<(String, u64)> = store
        .remediations(window.since_unix_ms, 100_000)
        .await?
        .into_iter()
        .map(|s| (s.run.alert_id, s.run.started_unix_ms))
        .collect();
    let mut firings = episodes(&events, &runs, window.until_unix_ms);
    let mut inputs = Vec::with_capacity(plan.rules.len());
    let mut rollups: BTreeMap<(String, String), Vec<ballast_core::MinuteRollup>> = BTreeMap::new();
    for def in &plan.rules {
        let key = (def.monitor.clone(), def.value.clone());
        if !rollups.contains_key(&key) {
            let rows = store
                .rollups(
                    &def.monitor,
                    &def.value,
                    window.since_unix_ms,
                    window.until_unix_ms,
                )
                .await?;
            rollups.insert(key.clone(), rows);
        }
        let matchers: Vec<(String, Option<Regex>)> = def
            .matchers
            .iter()
            .map(|(k, p)| (k.clone(), Regex::new(&format!("^(?:{p})$")).ok()))
            .collect();
        let (warn, crit) = levels(def);
        let below = warn
            .or(crit)
            .is_some_and(|t| t.direction == Direction::Below);
        let samples = rollups[&key]
            .iter()
            .filter(|r| {
                matchers.iter().all(|(name, re)| {
                    re.as_ref()
                        .is_some_and(|re| re.is_match(r.labels.get(name).unwrap_or("")))
                })
            })
            .map(|r| if below { r.min } else { r.max })
            .collect();
        inputs.push(RuleInput {
            rule: def.spec.name.clone(),
            monitor: def.monitor.clone(),
            value: def.value.clone(),
            warn,
            crit,
            samples,
            firings: firings.remove(&def.spec.name).unwrap_or_default(),
        });
    }
    Ok(ballast_review::review(window, &inputs))
}

/// The window ending now and reaching `since` back.
pub fn window(since: std::time::Duration) -> Window {
    let now = crate::changes::now_unix_ms();
    let back = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
    Window {
        since_unix_ms: now.saturating_sub(back),
        until_unix_ms: now,
    }
}

/// Runs the review every `[review] every` (read at each round, so a reload applies), and
/// tells `[review] receiver` when a rule is flagged.
pub fn spawn(
    gateway: ballast_proxy::Gateway,
    history: Arc<History>,
    announce: Announce,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let every = gateway.config().review.every;
            tokio::time::sleep(every).await;
            let config = gateway.config();
            if !config.review.enabled {
                continue;
            }
            let Ok(store) = history.store() else {
                tracing::warn!("threshold review skipped: the store is not open");
                continue;
            };
            let report = match run(&store, &config.monitoring, window(config.review.since)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "threshold review failed; the next one tries again");
                    let _ = history.failed(e);
                    continue;
                }
            };
            let flagged: Vec<String> = report
                .rules
                .iter()
                .filter(|r| !r.flags.is_empty())
                .map(|r| r.rule.clone())
                .collect();
            tracing::info!(
                rules = report.rules.len(),
                flagged = flagged.len(),
                "threshold review done"
            );
            if let (Some(receiver), false) = (&config.review.receiver, flagged.is_empty()) {
                let notice = ballast_notify::Notice {
                    kind: "threshold-review".into(),
                    labels: ballast_core::Labels::new(),
                    severity: Severity::Warning,
                    summary: format!(
                        "Threshold review: {} of {} rules flagged ({})",
                        flagged.len(),
                        report.rules.len(),
                        flagged.join(", ")
                    ),
                    description: Some(
                        "The report: `ballast review`, or GET /api/v1/review?format=markdown."
                            .into(),
                    ),
                    at_unix_ms: report.window.until_unix_ms,
                    key: format!("review:{}", report.window.until_unix_ms),
                };
                if let Err(e) = announce(receiver, &notice) {
                    tracing::error!(receiver = %receiver, error = %e, "the review could not be announced");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::{AlertSource, Labels, Stamped, StoredEvent};

    fn changed(seq: u64, at: u64, id: &str, to: AlertState) -> StoredEvent {
        StoredEvent {
            id: seq,
            instance: "i".into(),
            stamped: Stamped {
                seq,
                at_unix_ms: at,
                event: Event::AlertChanged {
                    id: id.into(),
                    rule: "disk".into(),
                    labels: Labels::new(),
                    from: AlertState::Inactive,
                    to,
                    value: None,
                    threshold: None,
                    source: AlertSource::Rule,
                },
            },
        }
    }

    #[test]
    fn episodes_from_events_with_acks_and_runs() {
        let warn = AlertState::Firing {
            severity: Severity::Warning,
        };
        let crit = AlertState::Firing {
            severity: Severity::Critical,
        };
        let ack = StoredEvent {
            id: 9,
            instance: "i".into(),
            stamped: Stamped {
                seq: 9,
                at_unix_ms: 150,
                event: Event::AlertAcknowledged {
                    id: "a".into(),
                    by: "ana".into(),
                    comment: String::new(),
                },
            },
        };
        let events = vec![
            changed(1, 100, "a", warn),
            changed(2, 120, "a", crit),
            ack,
            changed(3, 200, "a", AlertState::Resolved),
            changed(4, 300, "b", warn),
            changed(5, 400, "b", AlertState::Resolved),
            changed(6, 500, "c", warn),
        ];
        let runs = vec![("c".to_string(), 550)];
        let got = episodes(&events, &runs, 1_000).remove("disk").unwrap();
        let by = |id: &str| got.iter().find(|f| f.alert_id == id).unwrap().clone();
        let a = by("a");
        assert_eq!(
            (a.start_unix_ms, a.end_unix_ms, a.severity, a.acted),
            (100, Some(200), Severity::Critical, true)
        );
        let b = by("b");
        assert_eq!((b.end_unix_ms, b.acted), (Some(400), false));
        let c = by("c");
        assert_eq!((c.end_unix_ms, c.acted), (None, true));
    }
}

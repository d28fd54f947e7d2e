//! The alert state machine: one per (rule, series). It turns the level a rule computes each
//! round into the states people are told about, so that a value which crosses a threshold for
//! one round is not an alarm (`for`), a value which dips for one round does not end one
//! (`keep_firing_for`), and a restart does not announce again what was already announced
//! ([`Alert::restore`]).
//!
//! ```text
//!                          level, `for` > 0
//!   Inactive or Resolved ───────────────────▶ Pending ── no level ──▶ Inactive
//!            │                                   │
//!            │ level, `for` = 0                  │ level held for `for`
//!            ▼                                   ▼
//!   ┌────────────────────────────────────────────────────────────────────────┐
//!   │  Firing(warning) ◀──── level changes (at once) ────▶ Firing(critical)  │
//!   └────────────────────────────────────────────────────────────────────────┘
//!            │ no level for `keep_firing_for` (a level again stops the clock)
//!            ▼
//!         Resolved
//!
//!   Alert::new starts Inactive; Alert::restore starts Firing(s) and makes no transition.
//! ```
//!
//! - **Inactive / Resolved**: no level. A level moves to Pending, or straight to Firing when
//!   the rule's `for` is 0. Resolved stays Resolved (not Inactive) so the API can show it.
//! - **Pending**: the level has held since `since`. Once `now - since >= for` it fires at the
//!   level of that round (a warning pending that became critical fires critical). No level
//!   before then: back to Inactive, and the `for` clock starts again next time.
//! - **Firing(s)**: a different level moves to Firing(other) at once, with no `for` of its
//!   own: escalation is news, and de-escalation follows the recovery thresholds already. No
//!   level starts the `keep_firing_for` clock; a level again stops it; once no level has
//!   lasted `keep_firing_for` the alert is Resolved. While that clock runs the alert is still
//!   firing, so its held level still applies (hysteresis).
//!
//! Each call of [`Alert::observe`] makes at most one transition. Time is passed in (`now`, ms
//! since the Unix epoch): the machine is deterministic, and a clock that steps back only
//! makes the elapsed time 0 (saturating), never a panic.

use ballast_core::{AlertState, AlertTransition, Labels, Severity};

use crate::rule::Rule;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Inactive,
    Pending {
        severity: Severity,
        since_ms: u64,
    },
    Firing {
        severity: Severity,
        since_ms: u64,
        /// When the level was first missing in the current run of rounds without it.
        clear_since_ms: Option<u64>,
    },
    Resolved,
}

/// The state of one rule on one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    rule: String,
    labels: Labels,
    phase: Phase,
}

impl Alert {
    /// A new, inactive alert.
    pub fn new(rule: impl Into<String>, labels: Labels) -> Self {
        Alert {
            rule: rule.into(),
            labels,
            phase: Phase::Inactive,
        }
    }

    /// An alert rebuilt from a persisted firing one (after a restart): it is Firing at
    /// `severity` since `since_ms`, and no transition is made, so it is not announced again.
    /// The next [`Alert::observe`] continues from there (hysteresis included).
    pub fn restore(
        rule: impl Into<String>,
        labels: Labels,
        severity: Severity,
        since_ms: u64,
    ) -> Self {
        Alert {
            rule: rule.into(),
            labels,
            phase: Phase::Firing {
                severity,
                since_ms,
                clear_since_ms: None,
            },
        }
    }

    pub fn rule(&self) -> &str {
        &self.rule
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    pub fn state(&self) -> AlertState {
        match self.phase {
            Phase::Inactive => AlertState::Inactive,
            Phase::Pending { .. } => AlertState::Pending,
            Phase::Firing { severity, .. } => AlertState::Firing { severity },
            Phase::Resolved => AlertState::Resolved,
        }
    }

    /// Since when it has been pending or firing (ms); `None` otherwise.
    pub fn since_ms(&self) -> Option<u64> {
        match self.phase {
            Phase::Pending { since_ms, .. } | Phase::Firing { since_ms, .. } => Some(since_ms),
            Phase::Inactive | Phase::Resolved => None,
        }
    }

    /// Inactive or resolved: nothing to keep once its series is gone.
    pub fn is_quiet(&self) -> bool {
        matches!(self.phase, Phase::Inactive | Phase::Resolved)
    }

    fn held(&self) -> Option<Severity> {
        match self.phase {
            Phase::Pending { severity, .. } | Phase::Firing { severity, .. } => Some(severity),
            Phase::Inactive | Phase::Resolved => None,
        }
    }

    /// Evaluates one round: `value` (missing: `None`) at `now`. `rule` must be the rule this
    /// alert belongs to. Returns the transition, if the state changed.
    pub fn observe(
        &mut self,
        rule: &Rule,
        value: Option<f64>,
        now: u64,
    ) -> Option<AlertTransition> {
        let held = self.held();
        let level = rule.level(held, value);
        let value = rule.effective(value);
        let from = self.state();
        let entered = |s: Severity| rule.level_at(s).map(|l| l.threshold);
        let left = |s: Severity| rule.level_at(s).map(|l| l.recover);
        let (next, threshold) = match (self.phase, level) {
            (Phase::Inactive | Phase::Resolved, None) => return None,
            (Phase::Inactive | Phase::Resolved, Some(s)) => {
                if rule.for_ms() == 0 {
                    (firing(s, now), entered(s))
                } else {
                    let pending = Phase::Pending {
                        severity: s,
                        since_ms: now,
                    };
                    (pending, entered(s))
                }
            }
            (Phase::Pending { severity, .. }, None) => (Phase::Inactive, left(severity)),
            (Phase::Pending { since_ms, .. }, Some(s)) => {
                if now.saturating_sub(since_ms) >= rule.for_ms() {
                    (firing(s, now), entered(s))
                } else {
                    // Still waiting; the level may have moved, which changes nothing visible.
                    self.phase = Phase::Pending {
                        severity: s,
                        since_ms,
                    };
                    return None;
                }
            }
            (
                Phase::Firing {
                    severity, since_ms, ..
                },
                Some(s),
            ) => {
                if s == severity {
                    self.phase = Phase::Firing {
                        severity,
                        since_ms,
                        clear_since_ms: None,
                    };
                    return None;
                }
                let threshold = if s > severity {
                    entered(s)
                } else {
                    left(severity)
                };
                (firing(s, since_ms), threshold)
            }
            (
                Phase::Firing {
                    severity,
                    since_ms,
                    clear_since_ms,
                },
                None,
            ) => {
                let clear = clear_since_ms.unwrap_or(now);
                if now.saturating_sub(clear) >= rule.keep_firing_for_ms() {
                    (Phase::Resolved, left(severity))
                } else {
                    self.phase = Phase::Firing {
                        severity,
                        since_ms,
                        clear_since_ms: Some(clear),
                    };
                    return None;
                }
            }
        };
        self.phase = next;
        Some(AlertTransition {
            rule: self.rule.clone(),
            labels: self.labels.clone(),
            from,
            to: self.state(),
            value,
            threshold,
            at_unix_ms: now,
        })
    }
}

impl Alert {
    /// Ends the alert at once, without waiting for `keep_firing_for`: for an alert whose
    /// series no longer means anything (the evaluator's stand-in series of a `min` rule, once
    /// real series report). Pending goes back to Inactive, Firing to Resolved.
    pub fn clear(&mut self, rule: &Rule, now: u64) -> Option<AlertTransition> {
        let from = self.state();
        let (next, severity) = match self.phase {
            Phase::Pending { severity, .. } => (Phase::Inactive, severity),
            Phase::Firing { severity, .. } => (Phase::Resolved, severity),
            Phase::Inactive | Phase::Resolved => return None,
        };
        self.phase = next;
        Some(AlertTransition {
            rule: self.rule.clone(),
            labels: self.labels.clone(),
            from,
            to: self.state(),
            value: None,
            threshold: rule.level_at(severity).map(|l| l.recover),
            at_unix_ms: now,
        })
    }
}

fn firing(severity: Severity, since_ms: u64) -> Phase {
    Phase::Firing {
        severity,
        since_ms,
        clear_since_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Direction, LevelSpec, MinSpec, RuleSpec};

    const WARN: AlertState = AlertState::Firing {
        severity: Severity::Warning,
    };
    const CRIT: AlertState = AlertState::Firing {
        severity: Severity::Critical,
    };

    fn above(threshold: f64, recover: f64) -> Option<LevelSpec> {
        Some(LevelSpec {
            direction: Direction::Above,
            threshold,
            recover: Some(recover),
        })
    }

    fn rule(for_ms: u64, keep_firing_for_ms: u64) -> Rule {
        Rule::new(RuleSpec {
            name: "app-5xx".into(),
            warn: above(0.01, 0.005),
            crit: above(0.05, 0.02),
            for_ms,
            keep_firing_for_ms,
            ..RuleSpec::default()
        })
        .unwrap()
    }

    /// Feeds `(now, value)` rounds and returns the (from, to) of every transition.
    fn run(
        alert: &mut Alert,
        rule: &Rule,
        rounds: &[(u64, Option<f64>)],
    ) -> Vec<(AlertState, AlertState)> {
        rounds
            .iter()
            .filter_map(|&(now, v)| alert.observe(rule, v, now))
            .map(|t| (t.from, t.to))
            .collect()
    }

    #[test]
    fn warning_critical_warning_resolved() {
        let r = rule(0, 0);
        let mut a = Alert::new("app-5xx", Labels::new().with("route", "api"));
        let t1 = a.observe(&r, Some(0.02), 1000).unwrap();
        assert_eq!((t1.from, t1.to), (AlertState::Inactive, WARN));
        assert_eq!(
            (t1.value, t1.threshold, t1.at_unix_ms),
            (Some(0.02), Some(0.01), 1000)
        );
        assert_eq!(t1.labels.get("route"), Some("api"));
        let t2 = a.observe(&r, Some(0.08), 2000).unwrap();
        assert_eq!((t2.from, t2.to, t2.threshold), (WARN, CRIT, Some(0.05)));
        assert!(
            a.observe(&r, Some(0.03), 3000).is_none(),
            "crit held above 2%"
        );
        let t3 = a.observe(&r, Some(0.015), 4000).unwrap();
        assert_eq!((t3.from, t3.to, t3.threshold), (CRIT, WARN, Some(0.02)));
        assert!(
            a.observe(&r, Some(0.007), 5000).is_none(),
            "warn held above 0.5%"
        );
        let t4 = a.observe(&r, Some(0.001), 6000).unwrap();
        assert_eq!(
            (t4.from, t4.to, t4.threshold),
            (WARN, AlertState::Resolved, Some(0.005))
        );
        assert_eq!(a.since_ms(), None);
    }

    #[test]
    fn hovering_makes_no_transitions() {
        let r = rule(0, 0);
        let mut a = Alert::new("app-5xx", Labels::new());
        let rounds: Vec<_> = [0.06, 0.04, 0.021, 0.049, 0.03, 0.045, 0.025, 0.0499]
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u64 * 1000, Some(v)))
            .collect();
        assert_eq!(run(&mut a, &r, &rounds), vec![(AlertState::Inactive, CRIT)]);
    }

    #[test]
    fn for_delays_firing_and_restarts_after_a_gap() {
        let r = rule(10_000, 0);
        let mut a = Alert::new("app-5xx", Labels::new());
        let t = run(
            &mut a,
            &r,
            &[(0, Some(0.02)), (5_000, Some(0.02)), (9_999, Some(0.02))],
        );
        assert_eq!(t, vec![(AlertState::Inactive, AlertState::Pending)]);
        assert_eq!(a.state(), AlertState::Pending);
        // The level became critical while pending: it fires critical.
        let fired = a.observe(&r, Some(0.2), 10_000).unwrap();
        assert_eq!((fired.from, fired.to), (AlertState::Pending, CRIT));
        assert_eq!(a.since_ms(), Some(10_000));

        let mut b = Alert::new("app-5xx", Labels::new());
        let t = run(
            &mut b,
            &r,
            &[
                (0, Some(0.02)),
                (6_000, Some(0.0)),
                (7_000, Some(0.02)),
                (12_000, Some(0.02)),
            ],
        );
        assert_eq!(
            t,
            vec![
                (AlertState::Inactive, AlertState::Pending),
                (AlertState::Pending, AlertState::Inactive),
                (AlertState::Inactive, AlertState::Pending),
            ],
            "the gap restarts the `for` clock, so 12 s is not yet 10 s of the new run"
        );
        assert_eq!(b.observe(&r, Some(0.02), 17_000).map(|t| t.to), Some(WARN));
    }

    #[test]
    fn keep_firing_for_delays_resolving_and_a_return_stops_the_clock() {
        let r = rule(0, 5_000);
        let mut a = Alert::new("app-5xx", Labels::new());
        let t = run(
            &mut a,
            &r,
            &[
                (0, Some(0.02)),
                (1_000, Some(0.0)),
                (4_000, Some(0.0)),
                (5_000, Some(0.02)),
                (9_000, Some(0.0)),
                (13_999, Some(0.0)),
            ],
        );
        assert_eq!(t, vec![(AlertState::Inactive, WARN)]);
        let resolved = a.observe(&r, Some(0.0), 14_000).unwrap();
        assert_eq!((resolved.from, resolved.to), (WARN, AlertState::Resolved));
        // And it can fire again from Resolved.
        assert_eq!(
            a.observe(&r, Some(0.02), 15_000).map(|t| (t.from, t.to)),
            Some((AlertState::Resolved, WARN))
        );
    }

    #[test]
    fn restore_does_not_announce_again() {
        let r = rule(10_000, 0);
        let mut a = Alert::restore("app-5xx", Labels::new(), Severity::Critical, 500);
        assert_eq!(a.state(), CRIT);
        assert_eq!(a.since_ms(), Some(500));
        // Still bad after the restart, even at a value only the held level explains.
        assert!(a.observe(&r, Some(0.03), 60_000).is_none());
        assert_eq!(a.state(), CRIT);
        let t = a.observe(&r, Some(0.0), 61_000).unwrap();
        assert_eq!((t.from, t.to), (CRIT, AlertState::Resolved));
    }

    #[test]
    fn min_fires_on_missing_data_and_clock_steps_back_safely() {
        let r = Rule::new(RuleSpec {
            name: "daemons".into(),
            min: Some(MinSpec {
                below: 1.0,
                recover: None,
                severity: None,
            }),
            ..RuleSpec::default()
        })
        .unwrap();
        let mut a = Alert::new("daemons", Labels::new());
        assert!(a.observe(&r, Some(2.0), 10_000).is_none());
        let t = a.observe(&r, None, 5_000).unwrap();
        assert_eq!((t.to, t.value), (CRIT, Some(0.0)));
        assert_eq!(
            a.observe(&r, Some(3.0), 1_000).map(|t| t.to),
            Some(AlertState::Resolved)
        );
    }
}

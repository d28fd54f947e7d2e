//! The report: one [`RuleReport`] per rule, in input order, and [`review`], which builds it.
//!
//! Firing episodes are counted against the window `[since, until)`:
//!
//! - An episode ending before it starts is treated as ending when it starts (zero length).
//! - An episode is in the window when it started before `until` and it is still firing
//!   (`end_unix_ms` is `None`) or ended at or after `since`; others are ignored entirely.
//! - `firing_ms` sums each episode clipped to the window (a still-firing one runs to `until`).
//!   Overlapping episodes of different alerts are not merged: their times add up, so
//!   `firing_ms` can exceed the window's length.
//! - `warning_firings` / `critical_firings` count episodes by their worst severity; `acted`
//!   counts episodes someone acted on; `noise` counts episodes that ended (`end_unix_ms` is
//!   `Some`) with nobody acting; `noise_share` is noise over ended episodes, `None` when none
//!   ended.
//!
//! `minutes` is `samples.len()` as given; percentiles, proposals and the `NoData` flag look
//! only at the finite samples. [`review`] never panics, whatever the input.

use ballast_core::Severity;
use serde::{Deserialize, Serialize};

use crate::flags::{flags, Facts, Flag};
use crate::input::{Firing, RuleInput, Threshold, Window};
use crate::propose::{propose, Proposal};
use crate::stats::{Normal, Percentiles};

/// The review of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    pub rule: String,
    pub monitor: String,
    pub value: String,
    pub warn: Option<Threshold>,
    pub crit: Option<Threshold>,
    /// `samples.len()`.
    pub minutes: u64,
    /// `None` without (finite) samples.
    pub percentiles: Option<Percentiles>,
    /// Episodes whose worst severity is warning.
    pub warning_firings: u64,
    pub critical_firings: u64,
    /// Time spent firing within the window: episodes clipped to it and summed, not merged.
    pub firing_ms: u64,
    /// Episodes acted on.
    pub acted: u64,
    /// Episodes that ended with nobody acting.
    pub noise: u64,
    /// `noise` / ended episodes; `None` when no episode ended.
    pub noise_share: Option<f64>,
    pub proposal: Proposal,
    /// Sorted, unique.
    pub flags: Vec<Flag>,
}

/// The whole review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub window: Window,
    /// In input order.
    pub rules: Vec<RuleReport>,
}

/// Reviews each rule against its history over `window`.
pub fn review(window: Window, inputs: &[RuleInput]) -> Report {
    Report {
        window,
        rules: inputs.iter().map(|i| review_rule(window, i)).collect(),
    }
}

fn review_rule(window: Window, input: &RuleInput) -> RuleReport {
    let normal = Normal::of(&input.samples);
    let t = Tally::of(window, &input.firings);
    let noise_share = (t.ended > 0).then(|| t.noise as f64 / t.ended as f64);
    let flags = flags(&Facts {
        normal: normal.as_ref(),
        warn: input.warn,
        crit: input.crit,
        episodes: t.episodes,
        firing_ms: t.firing_ms,
        window_ms: window.len_ms(),
        ended: t.ended,
        noise: t.noise,
    });
    RuleReport {
        rule: input.rule.clone(),
        monitor: input.monitor.clone(),
        value: input.value.clone(),
        warn: input.warn,
        crit: input.crit,
        minutes: input.samples.len() as u64,
        percentiles: normal.as_ref().map(|n| n.pct.clone()),
        warning_firings: t.warning,
        critical_firings: t.critical,
        firing_ms: t.firing_ms,
        acted: t.acted,
        noise: t.noise,
        noise_share,
        proposal: propose(input.warn, input.crit, normal.as_ref()),
        flags,
    }
}

/// The firing counts of one rule over the window.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    episodes: u64,
    warning: u64,
    critical: u64,
    firing_ms: u64,
    acted: u64,
    ended: u64,
    noise: u64,
}

impl Tally {
    fn of(window: Window, firings: &[Firing]) -> Tally {
        let mut t = Tally::default();
        for f in firings {
            let start = f.start_unix_ms;
            let end = f.end_unix_ms.map(|e| e.max(start));
            let in_window =
                start < window.until_unix_ms && end.is_none_or(|e| e >= window.since_unix_ms);
            if !in_window {
                continue;
            }
            t.episodes += 1;
            match f.severity {
                Severity::Warning => t.warning += 1,
                Severity::Critical => t.critical += 1,
            }
            let from = start.max(window.since_unix_ms);
            let to = end
                .unwrap_or(window.until_unix_ms)
                .min(window.until_unix_ms);
            t.firing_ms = t.firing_ms.saturating_add(to.saturating_sub(from));
            if f.acted {
                t.acted += 1;
            }
            if end.is_some() {
                t.ended += 1;
                if !f.acted {
                    t.noise += 1;
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Direction;

    const MIN: u64 = 60_000;

    fn window() -> Window {
        // 100 minutes from t = 100,000,000 ms.
        Window {
            since_unix_ms: 100_000_000,
            until_unix_ms: 100_000_000 + 100 * MIN,
        }
    }

    fn firing(severity: Severity, start: u64, end: Option<u64>, acted: bool) -> Firing {
        Firing {
            alert_id: "a".into(),
            severity,
            start_unix_ms: start,
            end_unix_ms: end,
            acted,
        }
    }

    fn rule(samples: Vec<f64>, firings: Vec<Firing>) -> RuleInput {
        RuleInput {
            rule: "p99-latency".into(),
            monitor: "api".into(),
            value: "latency_p99_ms".into(),
            warn: Some(Threshold {
                direction: Direction::Above,
                value: 80.0,
            }),
            crit: Some(Threshold {
                direction: Direction::Above,
                value: 500.0,
            }),
            samples,
            firings,
        }
    }

    #[test]
    fn tally_clips_sums_and_counts_by_hand() {
        let w = window();
        let s = w.since_unix_ms;
        let u = w.until_unix_ms;
        let firings = vec![
            // 10 minutes inside, acted: 10 min.
            firing(Severity::Warning, s + 5 * MIN, Some(s + 15 * MIN), true),
            // Started 5 minutes before the window, ended 3 minutes in: 3 min, noise.
            firing(Severity::Critical, s - 5 * MIN, Some(s + 3 * MIN), false),
            // Overlaps the first one (another alert): 4 min, summed not merged; noise.
            firing(Severity::Warning, s + 10 * MIN, Some(s + 14 * MIN), false),
            // Still firing, from 90 minutes in: 10 min to the end; not ended, not noise.
            firing(Severity::Critical, s + 90 * MIN, None, false),
            // Entirely before the window: ignored.
            firing(Severity::Warning, s - 20 * MIN, Some(s - 10 * MIN), false),
            // Starting at the end of the window: ignored.
            firing(Severity::Warning, u, None, false),
        ];
        let t = Tally::of(w, &firings);
        assert_eq!(
            t,
            Tally {
                episodes: 4,
                warning: 2,
                critical: 2,
                firing_ms: (10 + 3 + 4 + 10) * MIN,
                acted: 1,
                ended: 3,
                noise: 2,
            }
        );
    }

    #[test]
    fn review_by_hand() {
        let w = window();
        let s = w.since_unix_ms;
        // Samples 1..=100: p50 50, p95 95, p99 99, max 100.
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let firings = vec![
            firing(Severity::Warning, s, Some(s + 20 * MIN), false),
            firing(Severity::Warning, s + 30 * MIN, Some(s + 50 * MIN), false),
            firing(Severity::Critical, s + 60 * MIN, Some(s + 70 * MIN), true),
        ];
        let report = review(w, &[rule(samples, firings)]);
        assert_eq!(report.window, w);
        let r = &report.rules[0];
        assert_eq!(r.minutes, 100);
        assert_eq!(r.percentiles.as_ref().unwrap().p95, 95.0);
        assert_eq!((r.warning_firings, r.critical_firings), (2, 1));
        // 20 + 20 + 10 = 50 minutes: exactly half the window.
        assert_eq!(r.firing_ms, 50 * MIN);
        assert_eq!((r.acted, r.noise), (1, 2));
        assert_eq!(r.noise_share, Some(2.0 / 3.0));
        // Always firing (50 ≥ 50% of 100), noisy (warn 80 ≤ p95 95, and 2/3 of 3 ended).
        assert_eq!(r.flags, vec![Flag::AlwaysFiring, Flag::Noisy]);
        // warn 99 × 1.1 = 108.9 → 109; crit max(148.5, 105) → 149.
        assert_eq!(
            (r.proposal.warn, r.proposal.crit),
            (Some(109.0), Some(149.0))
        );
    }

    #[test]
    fn rules_keep_input_order_and_empty_input_is_empty() {
        let w = window();
        let mut a = rule(vec![], vec![]);
        a.rule = "b-second-alphabetically".into();
        let mut b = rule(vec![1.0], vec![]);
        b.rule = "a-first-alphabetically".into();
        let report = review(w, &[a, b]);
        let names: Vec<_> = report.rules.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(names, ["b-second-alphabetically", "a-first-alphabetically"]);
        assert_eq!(report.rules[0].flags, vec![Flag::NoData, Flag::NeverFired]);
        assert_eq!(report.rules[0].percentiles, None);
        assert_eq!(report.rules[0].noise_share, None);
        assert!(review(w, &[]).rules.is_empty());
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let w = window();
        let s = w.since_unix_ms;
        let hostile = vec![
            RuleInput {
                warn: Some(Threshold {
                    direction: Direction::Below,
                    value: f64::NAN,
                }),
                crit: None,
                ..rule(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY], vec![])
            },
            rule(
                vec![f64::MAX, -f64::MAX, 0.0, -0.0, f64::MIN_POSITIVE, 5e-324],
                vec![
                    // End before start: zero length.
                    firing(Severity::Warning, s + 10 * MIN, Some(s + MIN), false),
                    firing(Severity::Critical, u64::MAX, None, true),
                    firing(Severity::Critical, 0, Some(u64::MAX), false),
                    firing(Severity::Warning, 0, None, false),
                    firing(Severity::Warning, u64::MAX, Some(0), false),
                ],
            ),
            RuleInput {
                warn: None,
                crit: None,
                ..rule(vec![], vec![])
            },
        ];
        let r = review(w, &hostile);
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.rules[0].minutes, 3);
        assert_eq!(r.rules[0].flags, vec![Flag::NoData, Flag::NeverFired]);
        // Zero-length + whole window + whole window; the u64::MAX starts are past the window.
        assert_eq!(r.rules[1].firing_ms, 200 * MIN);
        assert_eq!(r.rules[1].warning_firings + r.rules[1].critical_firings, 3);

        // A window running backwards, and one at the very end of time.
        for w in [
            Window {
                since_unix_ms: 10,
                until_unix_ms: 5,
            },
            Window {
                since_unix_ms: u64::MAX,
                until_unix_ms: u64::MAX,
            },
            Window {
                since_unix_ms: 0,
                until_unix_ms: u64::MAX,
            },
        ] {
            let r = review(w, &hostile);
            assert_eq!(r.rules.len(), 3);
            let _ = crate::markdown::markdown(&r);
            let _ = serde_json::to_string(&r).unwrap();
        }
        let _ = crate::markdown::markdown(&review(window(), &hostile));
    }
}

//! Rules: what level (none, warning, critical) one value is at, given the level it was at.
//!
//! A rule has a `warn` and/or a `crit` level, each `{ above | below = X, recover = Y }`. The
//! recovery value is the hysteresis that keeps an alert from flapping while a value hovers
//! around its threshold: a level is entered when the value crosses the threshold (strictly:
//! `v > X` for `above`, `v < X` for `below`) and is held until the value crosses the recovery
//! value (`v <= Y` for `above`, `v >= Y` for `below`). `recover` equal to the threshold means
//! no hysteresis. A `min = { below = X }` rule is a `below` level (critical unless told) whose
//! missing data counts as 0: "too few daemons" must fire when the daemon count is gone, not
//! go silent.
//!
//! Missing data follows the rule's [`NoData`] policy. A NaN value is treated as missing data:
//! it compares false with everything, so it could neither fire nor recover, and a probe that
//! produced one did not measure anything. Infinities compare normally.
//!
//! Rules are built from a [`RuleSpec`] (plain values the config crate fills in) by
//! [`Rule::new`], which refuses nonsense with a [`RuleError`] naming the field.

use ballast_core::Severity;
use thiserror::Error;

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Above,
    Below,
}

/// One level as written: `{ above | below = threshold, recover = recover }`. Without `recover`
/// the level has no hysteresis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelSpec {
    pub direction: Direction,
    pub threshold: f64,
    pub recover: Option<f64>,
}

/// `min = { below = X }`: fires at `severity` (default critical) when the value is below `X`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinSpec {
    pub below: f64,
    pub recover: Option<f64>,
    pub severity: Option<Severity>,
}

/// What a series without a value this round means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoData {
    /// Evaluate it as 0 (the default for `min` rules).
    Zero,
    /// Keep the level it was at: a gap in a probe neither fires nor resolves anything.
    KeepLast,
    /// The condition is false: the alert resolves (after `keep_firing_for`). The default for
    /// `warn`/`crit` rules, as in Prometheus, where a vanished series resolves its alert.
    Resolve,
}

/// A rule as written; [`Rule::new`] validates it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSpec {
    pub name: String,
    pub warn: Option<LevelSpec>,
    pub crit: Option<LevelSpec>,
    pub min: Option<MinSpec>,
    /// `None`: [`NoData::Zero`] for `min` rules, [`NoData::Resolve`] otherwise.
    pub no_data: Option<NoData>,
    /// How long the condition must hold before the alert fires (`for`), in ms.
    pub for_ms: u64,
    /// How long the condition must be false before a firing alert resolves, in ms.
    pub keep_firing_for_ms: u64,
}

/// Why a rule was refused; `field` is the path in the rule (`crit.recover`, `min.below`...).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleError {
    #[error("rule has an empty name")]
    EmptyName,
    #[error("rule {rule:?}: {field} is not a finite number")]
    NotFinite { rule: String, field: &'static str },
    #[error("rule {rule:?}: has none of warn, crit or min; it could never fire")]
    NoLevel { rule: String },
    #[error("rule {rule:?}: min cannot be combined with warn or crit; write the levels as warn/crit with below")]
    MinWithLevels { rule: String },
    #[error("rule {rule:?}: {field} = {recover} is on the wrong side of the threshold {threshold}; recovery must be {side} it")]
    RecoverWrongSide {
        rule: String,
        field: &'static str,
        threshold: f64,
        recover: f64,
        side: &'static str,
    },
    #[error("rule {rule:?}: warn and crit point in different directions (one above, one below)")]
    DirectionMismatch { rule: String },
    #[error("rule {rule:?}: warn.{side} = {warn} is stricter than crit.{side} = {crit}; the warning must come first")]
    WarnStricterThanCrit {
        rule: String,
        side: &'static str,
        warn: f64,
        crit: f64,
    },
}

/// A validated level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub direction: Direction,
    pub threshold: f64,
    pub recover: f64,
}

impl Level {
    /// The value crosses the threshold: the level is entered.
    fn breached(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v > self.threshold,
            Direction::Below => v < self.threshold,
        }
    }

    /// The value has not crossed the recovery value: a level already held stays.
    fn holds(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v > self.recover,
            Direction::Below => v < self.recover,
        }
    }

    fn check(spec: &LevelSpec, rule: &str, prefix: &'static str) -> Result<Level, RuleError> {
        let (threshold_field, recover_field) = match (prefix, spec.direction) {
            ("warn", Direction::Above) => ("warn.above", "warn.recover"),
            ("warn", Direction::Below) => ("warn.below", "warn.recover"),
            ("crit", Direction::Above) => ("crit.above", "crit.recover"),
            ("crit", Direction::Below) => ("crit.below", "crit.recover"),
            (_, _) => ("min.below", "min.recover"),
        };
        finite(spec.threshold, rule, threshold_field)?;
        let recover = spec.recover.unwrap_or(spec.threshold);
        finite(recover, rule, recover_field)?;
        let (wrong, side) = match spec.direction {
            Direction::Above => (recover > spec.threshold, "at or below"),
            Direction::Below => (recover < spec.threshold, "at or above"),
        };
        if wrong {
            return Err(RuleError::RecoverWrongSide {
                rule: rule.to_string(),
                field: recover_field,
                threshold: spec.threshold,
                recover,
                side,
            });
        }
        Ok(Level {
            direction: spec.direction,
            threshold: spec.threshold,
            recover,
        })
    }
}

fn finite(v: f64, rule: &str, field: &'static str) -> Result<(), RuleError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(RuleError::NotFinite {
            rule: rule.to_string(),
            field,
        })
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    name: String,
    warn: Option<Level>,
    crit: Option<Level>,
    is_min: bool,
    no_data: NoData,
    for_ms: u64,
    keep_firing_for_ms: u64,
}

impl Rule {
    pub fn new(spec: RuleSpec) -> Result<Rule, RuleError> {
        let rule = spec.name.as_str();
        if rule.is_empty() {
            return Err(RuleError::EmptyName);
        }
        let (warn, crit, is_min) = match (spec.min, spec.warn, spec.crit) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(RuleError::MinWithLevels { rule: rule.into() })
            }
            (None, None, None) => return Err(RuleError::NoLevel { rule: rule.into() }),
            (Some(min), None, None) => {
                let level = Level::check(
                    &LevelSpec {
                        direction: Direction::Below,
                        threshold: min.below,
                        recover: min.recover,
                    },
                    rule,
                    "min",
                )?;
                match min.severity.unwrap_or(Severity::Critical) {
                    Severity::Warning => (Some(level), None, true),
                    Severity::Critical => (None, Some(level), true),
                }
            }
            (None, warn, crit) => {
                let warn = warn.map(|w| Level::check(&w, rule, "warn")).transpose()?;
                let crit = crit.map(|c| Level::check(&c, rule, "crit")).transpose()?;
                if let (Some(w), Some(c)) = (warn, crit) {
                    if w.direction != c.direction {
                        return Err(RuleError::DirectionMismatch { rule: rule.into() });
                    }
                    let (stricter, side) = match w.direction {
                        Direction::Above => (w.threshold > c.threshold, "above"),
                        Direction::Below => (w.threshold < c.threshold, "below"),
                    };
                    if stricter {
                        return Err(RuleError::WarnStricterThanCrit {
                            rule: rule.into(),
                            side,
                            warn: w.threshold,
                            crit: c.threshold,
                        });
                    }
                }
                (warn, crit, false)
            }
        };
        let no_data = spec.no_data.unwrap_or(if is_min {
            NoData::Zero
        } else {
            NoData::Resolve
        });
        Ok(Rule {
            name: spec.name,
            warn,
            crit,
            is_min,
            no_data,
            for_ms: spec.for_ms,
            keep_firing_for_ms: spec.keep_firing_for_ms,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `min` rule (missing data counts as 0 unless its `no_data` says otherwise).
    pub fn is_min(&self) -> bool {
        self.is_min
    }

    pub fn no_data(&self) -> NoData {
        self.no_data
    }

    pub fn for_ms(&self) -> u64 {
        self.for_ms
    }

    pub fn keep_firing_for_ms(&self) -> u64 {
        self.keep_firing_for_ms
    }

    /// The level at `severity`, if the rule has one.
    pub fn level_at(&self, severity: Severity) -> Option<&Level> {
        match severity {
            Severity::Warning => self.warn.as_ref(),
            Severity::Critical => self.crit.as_ref(),
        }
    }

    /// The value the rule evaluates for `value` under its no-data policy: a NaN is missing;
    /// missing becomes 0 under [`NoData::Zero`] and stays missing otherwise.
    pub fn effective(&self, value: Option<f64>) -> Option<f64> {
        match value.filter(|v| !v.is_nan()) {
            Some(v) => Some(v),
            None if self.no_data == NoData::Zero => Some(0.0),
            None => None,
        }
    }

    /// The level `value` is at, given the level held before (`previous`: the severity of the
    /// alert while pending or firing). Hysteresis: a held level is kept until the value
    /// crosses its recovery value; a critical that recovers falls to warning when the value
    /// still holds the warning level (which it was, being worse).
    pub fn level(&self, previous: Option<Severity>, value: Option<f64>) -> Option<Severity> {
        let Some(v) = self.effective(value) else {
            return match self.no_data {
                NoData::KeepLast => previous,
                NoData::Zero | NoData::Resolve => None,
            };
        };
        if let Some(crit) = &self.crit {
            let held = previous == Some(Severity::Critical) && crit.holds(v);
            if held || crit.breached(v) {
                return Some(Severity::Critical);
            }
        }
        if let Some(warn) = &self.warn {
            let held = previous.is_some() && warn.holds(v);
            if held || warn.breached(v) {
                return Some(Severity::Warning);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn above(threshold: f64, recover: f64) -> Option<LevelSpec> {
        Some(LevelSpec {
            direction: Direction::Above,
            threshold,
            recover: Some(recover),
        })
    }

    /// warn above 1% recover 0.5%, crit above 5% recover 2% (the 5xx example in DESIGN.md).
    fn ratio_rule() -> Rule {
        Rule::new(RuleSpec {
            name: "app-5xx".into(),
            warn: above(0.01, 0.005),
            crit: above(0.05, 0.02),
            ..RuleSpec::default()
        })
        .unwrap()
    }

    const W: Option<Severity> = Some(Severity::Warning);
    const C: Option<Severity> = Some(Severity::Critical);

    #[test]
    fn enters_on_the_threshold_and_leaves_on_the_recovery_value() {
        let r = ratio_rule();
        assert_eq!(
            r.level(None, Some(0.01)),
            None,
            "the threshold itself is not above"
        );
        assert_eq!(r.level(None, Some(0.011)), W);
        assert_eq!(r.level(None, Some(0.06)), C);
        assert_eq!(r.level(C, Some(0.03)), C, "held above crit.recover");
        assert_eq!(r.level(C, Some(0.02)), W, "crit recovered, warn still held");
        assert_eq!(r.level(W, Some(0.006)), W);
        assert_eq!(r.level(W, Some(0.005)), None);
        assert_eq!(r.level(C, Some(0.001)), None, "both recovered at once");
    }

    #[test]
    fn hovering_between_threshold_and_recovery_does_not_flap() {
        let r = ratio_rule();
        let mut level = None;
        let mut changes = 0;
        // Up past crit once, then hover between crit.recover (2%) and crit.above (5%).
        for v in [0.06, 0.049, 0.021, 0.045, 0.03, 0.0499, 0.025, 0.04] {
            let next = r.level(level, Some(v));
            if next != level {
                changes += 1;
            }
            level = next;
        }
        assert_eq!(level, C);
        assert_eq!(changes, 1);
        // Without the held level the same values would flap to warning.
        assert_eq!(r.level(None, Some(0.049)), W);
    }

    #[test]
    fn min_counts_missing_as_zero() {
        let r = Rule::new(RuleSpec {
            name: "daemons".into(),
            min: Some(MinSpec {
                below: 2.0,
                recover: None,
                severity: None,
            }),
            ..RuleSpec::default()
        })
        .unwrap();
        assert!(r.is_min());
        assert_eq!(r.level(None, None), C);
        assert_eq!(r.level(None, Some(f64::NAN)), C, "NaN is missing, so 0");
        assert_eq!(r.level(None, Some(1.0)), C);
        assert_eq!(r.level(C, Some(2.0)), None);
    }

    #[test]
    fn no_data_policies() {
        let mut spec = RuleSpec {
            name: "r".into(),
            crit: above(10.0, 5.0),
            ..RuleSpec::default()
        };
        let resolve = Rule::new(spec.clone()).unwrap();
        assert_eq!(resolve.no_data(), NoData::Resolve);
        assert_eq!(resolve.level(C, None), None);
        spec.no_data = Some(NoData::KeepLast);
        let keep = Rule::new(spec.clone()).unwrap();
        assert_eq!(keep.level(C, None), C);
        assert_eq!(keep.level(None, Some(f64::NAN)), None);
        spec.no_data = Some(NoData::Zero);
        spec.crit = Some(LevelSpec {
            direction: Direction::Below,
            threshold: 1.0,
            recover: None,
        });
        assert_eq!(Rule::new(spec).unwrap().level(None, None), C);
    }

    #[test]
    fn infinities_compare_normally() {
        let r = ratio_rule();
        assert_eq!(r.level(None, Some(f64::INFINITY)), C);
        assert_eq!(r.level(C, Some(f64::NEG_INFINITY)), None);
    }

    #[test]
    fn validation_names_the_field() {
        let base = RuleSpec {
            name: "r".into(),
            ..RuleSpec::default()
        };
        let err = |spec: RuleSpec| Rule::new(spec).unwrap_err();
        match err(RuleSpec {
            crit: above(0.05, 0.08),
            ..base.clone()
        }) {
            RuleError::RecoverWrongSide { field, .. } => assert_eq!(field, "crit.recover"),
            e => panic!("{e}"),
        }
        let below_wrong = RuleSpec {
            warn: Some(LevelSpec {
                direction: Direction::Below,
                threshold: 5.0,
                recover: Some(4.0),
            }),
            ..base.clone()
        };
        match err(below_wrong) {
            RuleError::RecoverWrongSide { field, side, .. } => {
                assert_eq!((field, side), ("warn.recover", "at or above"))
            }
            e => panic!("{e}"),
        }
        let stricter = err(RuleSpec {
            warn: above(0.9, 0.8),
            crit: above(0.7, 0.6),
            ..base.clone()
        });
        assert!(matches!(
            stricter,
            RuleError::WarnStricterThanCrit { side: "above", .. }
        ));
        assert!(stricter.to_string().contains("warn.above = 0.9"));
        match err(RuleSpec {
            warn: above(f64::NAN, 0.0),
            ..base.clone()
        }) {
            RuleError::NotFinite { field, .. } => assert_eq!(field, "warn.above"),
            e => panic!("{e}"),
        }
        assert!(matches!(err(base.clone()), RuleError::NoLevel { .. }));
        assert!(matches!(
            err(RuleSpec {
                min: Some(MinSpec {
                    below: 1.0,
                    recover: None,
                    severity: None
                }),
                crit: above(1.0, 1.0),
                ..base.clone()
            }),
            RuleError::MinWithLevels { .. }
        ));
        assert!(matches!(
            err(RuleSpec {
                warn: above(1.0, 1.0),
                crit: Some(LevelSpec {
                    direction: Direction::Below,
                    threshold: 0.0,
                    recover: None
                }),
                ..base.clone()
            }),
            RuleError::DirectionMismatch { .. }
        ));
        assert_eq!(err(RuleSpec::default()), RuleError::EmptyName);
    }
}

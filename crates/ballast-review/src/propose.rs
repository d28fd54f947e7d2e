//! Proposed thresholds, each with a line of reasoning that names its numbers.
//!
//! The proposal is a starting point for a person, not a change: it comes from the rule's own
//! history, so a person can check every number against the percentiles in the report.
//! Both thresholds are proposed even when the rule has only one, and each is rounded to 3
//! significant digits ([`crate::stats::round3`]). The direction is the rule's: the warning
//! threshold's, else the critical one's.
//!
//! - Above: warning = p99 × 1.1, just above the normal p99; critical = max(p99 × 1.5,
//!   max × 1.05), well above anything seen.
//! - Below: warning = p1 × 0.9, just below the normal p1; critical = min × 0.5, half the
//!   lowest value seen.
//!
//! Without (finite) samples, or without any threshold, nothing is proposed and the reasoning
//! says why. The margins are multiplied, so around zero or below it they do not move away from
//! the normal range; the reasoning says so when that happens.

use serde::{Deserialize, Serialize};

use crate::input::{Direction, Threshold};
use crate::stats::{fmt_count, fmt_num, round3, Normal};

/// The proposed thresholds, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub reasoning: Vec<String>,
}

/// The proposal for a rule with these thresholds and this normal range.
pub(crate) fn propose(
    warn: Option<Threshold>,
    crit: Option<Threshold>,
    normal: Option<&Normal>,
) -> Proposal {
    let mut reasoning = Vec::new();
    let direction = warn.or(crit).map(|t| t.direction);
    if direction.is_none() {
        reasoning.push("the rule has no threshold: nothing to propose".to_string());
    }
    if normal.is_none() {
        reasoning.push("no data in the window: nothing to propose".to_string());
    }
    let (Some(direction), Some(normal)) = (direction, normal) else {
        return Proposal {
            warn: None,
            crit: None,
            reasoning,
        };
    };
    let p = &normal.pct;
    let minutes = fmt_count(normal.n);
    let (warn_raw, crit_raw, warn_why, crit_why, around_zero) = match direction {
        Direction::Above => (
            p.p99 * 1.1,
            (p.p99 * 1.5).max(p.max * 1.05),
            format!(
                "just above the normal p99 ({}) of {minutes} minutes",
                fmt_num(p.p99)
            ),
            format!(
                "well above anything seen without an incident: the higher of 1.5 × the p99 ({}) \
                 and 1.05 × the max ({})",
                fmt_num(p.p99),
                fmt_num(p.max)
            ),
            p.p99 <= 0.0,
        ),
        Direction::Below => (
            p.p1 * 0.9,
            p.min * 0.5,
            format!(
                "just below the normal p1 ({}) of {minutes} minutes",
                fmt_num(p.p1)
            ),
            format!("half the lowest value seen (min {})", fmt_num(p.min)),
            p.min <= 0.0,
        ),
    };
    let mut line = |name: &str, raw: f64, why: &str, current: Option<Threshold>| {
        let value = Some(round3(raw)).filter(|v| v.is_finite());
        match value {
            Some(v) => reasoning.push(format!(
                "{name} {}: {why}; {}",
                fmt_num(v),
                current_note(current, normal)
            )),
            None => reasoning.push(format!(
                "{name}: not proposed, the arithmetic leaves the range of numbers"
            )),
        }
        value
    };
    let warn_value = line("warning", warn_raw, &warn_why, warn);
    let crit_value = line("critical", crit_raw, &crit_why, crit);
    if around_zero {
        reasoning.push(
            "the values reach zero or below, where a multiplied margin does not move away from \
             them: set these by hand"
                .to_string(),
        );
    }
    Proposal {
        warn: warn_value,
        crit: crit_value,
        reasoning,
    }
}

/// Where the rule's current threshold sits against the normal range, in words and numbers.
fn current_note(current: Option<Threshold>, normal: &Normal) -> String {
    let Some(t) = current else {
        return "the rule has none".to_string();
    };
    let p = &normal.pct;
    let v = t.value;
    let has = format!("the rule has {}", fmt_num(v));
    if !v.is_finite() {
        return format!("{has}, not a usable number");
    }
    match t.direction {
        Direction::Above if v <= p.p95 => {
            format!("{has}, inside the normal range (p95 {})", fmt_num(p.p95))
        }
        Direction::Above if v <= p.p99 => format!(
            "{has}, between the normal p95 ({}) and p99 ({})",
            fmt_num(p.p95),
            fmt_num(p.p99)
        ),
        Direction::Above if v <= p.max => format!(
            "{has}, above the normal p99 ({}) and within what was seen (max {})",
            fmt_num(p.p99),
            fmt_num(p.max)
        ),
        Direction::Above => format!(
            "{has}, above anything seen (max {}): it could not have fired on this data",
            fmt_num(p.max)
        ),
        Direction::Below if v >= normal.p5 => {
            format!("{has}, inside the normal range (p5 {})", fmt_num(normal.p5))
        }
        Direction::Below if v >= p.p1 => format!(
            "{has}, between the normal p1 ({}) and p5 ({})",
            fmt_num(p.p1),
            fmt_num(normal.p5)
        ),
        Direction::Below if v >= p.min => format!(
            "{has}, below the normal p1 ({}) and within what was seen (min {})",
            fmt_num(p.p1),
            fmt_num(p.min)
        ),
        Direction::Below => format!(
            "{has}, below anything seen (min {}): it could not have fired on this data",
            fmt_num(p.min)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::test_support::{above, below};

    /// 1..=100: p1 1, p5 5, p95 95, p99 99, min 1, max 100.
    fn hundred() -> Normal {
        Normal::of(&(1..=100).map(f64::from).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn above_rule_proposal_by_hand() {
        let n = hundred();
        let p = propose(above(80.0), above(500.0), Some(&n));
        // warn = 99 × 1.1 = 108.9 → 109; crit = max(99 × 1.5 = 148.5, 100 × 1.05 = 105)
        // = 148.5 → 149 (3 significant digits, half away from zero).
        assert_eq!(p.warn, Some(109.0));
        assert_eq!(p.crit, Some(149.0));
        assert_eq!(
            p.reasoning,
            vec![
                "warning 109: just above the normal p99 (99) of 100 minutes; the rule has 80, \
                 inside the normal range (p95 95)"
                    .to_string(),
                "critical 149: well above anything seen without an incident: the higher of \
                 1.5 × the p99 (99) and 1.05 × the max (100); the rule has 500, above anything \
                 seen (max 100): it could not have fired on this data"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn above_critical_follows_the_max_when_it_is_far_out() {
        // 99 samples of 10 and one of 1000: p99 = sorted[ceil(99) − 1] = sorted[98] = 10.
        let mut samples = vec![10.0; 99];
        samples.push(1000.0);
        let n = Normal::of(&samples).unwrap();
        let p = propose(above(12.0), None, Some(&n));
        // warn = 10 × 1.1 = 11; crit = max(15, 1050) = 1050.
        assert_eq!(p.warn, Some(11.0));
        assert_eq!(p.crit, Some(1050.0));
        assert!(
            p.reasoning[0].ends_with(
                "the rule has 12, above the normal p99 (10) and within what was seen (max 1,000)"
            ),
            "{:?}",
            p.reasoning
        );
        assert!(p.reasoning[1].starts_with("critical 1,050: "));
        assert!(p.reasoning[1].ends_with("; the rule has none"));
    }

    #[test]
    fn below_rule_proposal_by_hand() {
        let n = hundred();
        let p = propose(below(3.0), below(0.2), Some(&n));
        // warn = 1 × 0.9 = 0.9; crit = 1 × 0.5 = 0.5.
        assert_eq!(p.warn, Some(0.9));
        assert_eq!(p.crit, Some(0.5));
        assert_eq!(
            p.reasoning,
            vec![
                "warning 0.9: just below the normal p1 (1) of 100 minutes; the rule has 3, \
                 between the normal p1 (1) and p5 (5)"
                    .to_string(),
                "critical 0.5: half the lowest value seen (min 1); the rule has 0.2, below \
                 anything seen (min 1): it could not have fired on this data"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn direction_comes_from_crit_without_warn() {
        let n = hundred();
        let p = propose(None, below(10.0), Some(&n));
        assert_eq!((p.warn, p.crit), (Some(0.9), Some(0.5)));
        assert!(p.reasoning[0].ends_with("the rule has none"));
        assert!(p.reasoning[1].ends_with("the rule has 10, inside the normal range (p5 5)"));
    }

    #[test]
    fn no_data_or_no_threshold_proposes_nothing() {
        let n = hundred();
        let p = propose(above(1.0), None, None);
        assert_eq!((p.warn, p.crit), (None, None));
        assert_eq!(
            p.reasoning,
            vec!["no data in the window: nothing to propose"]
        );
        let p = propose(None, None, Some(&n));
        assert_eq!((p.warn, p.crit), (None, None));
        assert_eq!(
            p.reasoning,
            vec!["the rule has no threshold: nothing to propose"]
        );
    }

    #[test]
    fn values_around_zero_are_called_out() {
        // Below rule with min 0: crit = 0.
        let n = Normal::of(&[0.0, 4.0, 8.0]).unwrap();
        let p = propose(below(1.0), None, Some(&n));
        // p1 = sorted[ceil(0.03) − 1] = 0: warn 0, crit 0.
        assert_eq!((p.warn, p.crit), (Some(0.0), Some(0.0)));
        assert!(p.reasoning.last().unwrap().contains("set these by hand"));
    }

    #[test]
    fn overflowing_arithmetic_proposes_nothing_rather_than_infinity() {
        let n = Normal::of(&[f64::MAX]).unwrap();
        let p = propose(above(1.0), None, Some(&n));
        assert_eq!((p.warn, p.crit), (None, None));
        assert!(p.reasoning[0].starts_with("warning: not proposed"));
    }
}

//! Percentiles of a rule's per-minute samples, and the rounding every printed number goes
//! through.
//!
//! Nearest-rank percentiles, because each one is then a value that was actually seen, and a
//! person can check it by sorting the samples: with the `n` finite samples sorted ascending
//! (NaN and infinite samples are ignored),
//!
//! `pK = sorted[ceil(K / 100 × n) − 1]`, clamped to index 0 for tiny `n`;
//! `min` and `max` are the first and the last.
//!
//! Proposed thresholds and every number in the reasoning and the Markdown are rounded to 3
//! significant digits by [`round3`]: an operator types "110", not "109.99999".

use serde::{Deserialize, Serialize};

/// The percentiles of one rule's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p1: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// The nearest-rank percentiles of the finite samples; `None` when there is none.
pub fn percentiles(samples: &[f64]) -> Option<Percentiles> {
    Normal::of(samples).map(|n| n.pct)
}

/// What the review knows about a rule's normal range: the public percentiles plus the 5th
/// percentile (used only for Below rules' noisy check) and the number of finite samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Normal {
    pub pct: Percentiles,
    pub p5: f64,
    /// Finite samples counted.
    pub n: u64,
}

impl Normal {
    pub(crate) fn of(samples: &[f64]) -> Option<Normal> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let at = |k| nearest_rank(&sorted, k);
        Some(Normal {
            pct: Percentiles {
                p1: at(1)?,
                p50: at(50)?,
                p95: at(95)?,
                p99: at(99)?,
                min,
                max,
            },
            p5: at(5)?,
            n: sorted.len() as u64,
        })
    }
}

/// `sorted[ceil(k/100 × n) − 1]`, in integers so that no float rounding moves the rank.
fn nearest_rank(sorted: &[f64], k: usize) -> Option<f64> {
    let n = sorted.len();
    let rank = k.saturating_mul(n).div_ceil(100);
    let index = rank.saturating_sub(1).min(n.checked_sub(1)?);
    sorted.get(index).copied()
}

/// `x` rounded to 3 significant digits: 0.012345 → 0.0123, 1234.5 → 1230, 0 → 0.
/// Non-finite values come back unchanged.
pub fn round3(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    if !x.is_finite() {
        return x;
    }
    // The exponent of the leading digit; 3 significant digits keep 2 below it.
    let lead = x.abs().log10().floor() as i32;
    let keep = 2 - lead;
    // Dividing by an exact power of ten (rather than multiplying by an inexact 0.1...) keeps
    // results such as 1230 exact.
    let r = if keep >= 0 {
        let f = 10f64.powi(keep);
        (x * f).round() / f
    } else {
        let f = 10f64.powi(-keep);
        (x / f).round() * f
    };
    if r.is_finite() {
        r
    } else {
        x
    }
}

/// A number for people: [`round3`], thousands grouped with commas ("43,200", "0.0123").
pub fn fmt_num(x: f64) -> String {
    let r = round3(x);
    if !r.is_finite() {
        return format!("{r}");
    }
    let text = format!("{r}");
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut out = format!("{sign}{}", group(int));
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A count for people, thousands grouped: 43200 → "43,200".
pub fn fmt_count(n: u64) -> String {
    group(&n.to_string())
}

fn group(digits: &str) -> String {
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred_are_the_ranks() {
        // 1..=100 shuffled: pK = sorted[ceil(K/100 × 100) − 1] = K.
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        samples.reverse();
        let p = percentiles(&samples).unwrap();
        assert_eq!(
            p,
            Percentiles {
                p1: 1.0,
                p50: 50.0,
                p95: 95.0,
                p99: 99.0,
                min: 1.0,
                max: 100.0,
            }
        );
    }

    #[test]
    fn nearest_rank_with_ten_samples() {
        // n = 10, sorted 10,20..100:
        // p1: ceil(0.1) = 1 → index 0 → 10; p50: ceil(5) = 5 → index 4 → 50;
        // p95: ceil(9.5) = 10 → index 9 → 100; p99: ceil(9.9) = 10 → 100; p5: ceil(0.5) = 1 → 10.
        let samples = [30.0, 10.0, 100.0, 20.0, 50.0, 40.0, 60.0, 90.0, 70.0, 80.0];
        let n = Normal::of(&samples).unwrap();
        assert_eq!(n.pct.p1, 10.0);
        assert_eq!(n.pct.p50, 50.0);
        assert_eq!(n.pct.p95, 100.0);
        assert_eq!(n.pct.p99, 100.0);
        assert_eq!(n.p5, 10.0);
        assert_eq!((n.pct.min, n.pct.max, n.n), (10.0, 100.0, 10));
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let p = percentiles(&[7.0]).unwrap();
        assert_eq!(
            (p.p1, p.p50, p.p95, p.p99, p.min, p.max),
            (7.0, 7.0, 7.0, 7.0, 7.0, 7.0)
        );
    }

    #[test]
    fn non_finite_samples_are_ignored() {
        // Finite samples 3, 1, 2 → sorted 1, 2, 3; p50 = sorted[ceil(1.5) − 1] = sorted[1] = 2.
        let samples = [f64::NAN, 3.0, f64::INFINITY, 1.0, f64::NEG_INFINITY, 2.0];
        let n = Normal::of(&samples).unwrap();
        assert_eq!(n.n, 3);
        assert_eq!((n.pct.min, n.pct.p50, n.pct.max), (1.0, 2.0, 3.0));
        assert_eq!(percentiles(&[]), None);
        assert_eq!(percentiles(&[f64::NAN, f64::INFINITY]), None);
    }

    #[test]
    fn round3_keeps_three_significant_digits() {
        assert_eq!(round3(0.012345), 0.0123);
        assert_eq!(round3(1234.5), 1230.0);
        assert_eq!(round3(0.0), 0.0);
        assert_eq!(round3(-0.0).to_string(), "0");
        assert_eq!(round3(110.00000000000001), 110.0);
        assert_eq!(round3(157.5), 158.0);
        assert_eq!(round3(-98765.0), -98800.0);
        assert_eq!(round3(999.7), 1000.0);
        assert_eq!(round3(1.0), 1.0);
        assert!(round3(f64::NAN).is_nan());
        assert_eq!(round3(f64::INFINITY), f64::INFINITY);
        assert!(round3(f64::MAX).is_finite());
        assert!(round3(5e-324).is_finite());
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(fmt_num(43_200.0), "43,200");
        assert_eq!(fmt_num(1234.5), "1,230");
        assert_eq!(fmt_num(0.012345), "0.0123");
        assert_eq!(fmt_num(-1_234_567.0), "-1,230,000");
        assert_eq!(fmt_num(99.0), "99");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(fmt_count(43_200), "43,200");
        assert_eq!(fmt_count(100), "100");
        assert_eq!(fmt_count(1_000_000), "1,000,000");
        assert_eq!(fmt_count(0), "0");
    }
}

//! Numbers as the report shows them, and the Ballast ÷ peer ratios.
//!
//! The Markdown tables, the summary and the plots must agree on how a figure is read (which
//! value, which unit, whether higher is better) and must never print `NaN` or `inf` whatever
//! the measurements hold, so every conversion from a measured value to text lives here.

use crate::result::{Errors, MetricSpec, Run, ScenarioResult, Target};

/// Shown wherever a value is missing or a ratio cannot be formed.
pub(crate) const MISSING: &str = "—";

/// The peers Ballast is divided by, in column order.
pub(crate) const PEERS: [Target; 2] = [Target::Haproxy, Target::Nginx];

/// Two ratios whose rounded values are within this distance of 1 read as "equal".
const EQUAL_WITHIN: f64 = 0.02;

/// A figure compared across targets.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Figure<'a> {
    /// Successful responses per second of the main load.
    OkRate,
    /// p99 latency of the main load, ms.
    P99,
    /// A scenario-specific figure.
    Metric(&'a MetricSpec),
}

impl<'a> Figure<'a> {
    /// The figure a scenario is summed up by: its first metric, else ok req/s.
    pub(crate) fn headline(s: &'a ScenarioResult) -> Figure<'a> {
        s.metrics.first().map_or(Figure::OkRate, Figure::Metric)
    }

    pub(crate) fn label(&self) -> &str {
        match self {
            Figure::OkRate => "ok req/s",
            Figure::P99 => "p99 latency",
            Figure::Metric(spec) => &spec.label,
        }
    }

    pub(crate) fn higher_is_better(&self) -> bool {
        match self {
            Figure::OkRate => true,
            Figure::P99 => false,
            Figure::Metric(spec) => spec.higher_is_better,
        }
    }

    /// "ok req/s (higher is better)".
    pub(crate) fn label_with_direction(&self) -> String {
        let direction = if self.higher_is_better() {
            "higher is better"
        } else {
            "lower is better"
        };
        format!("{} ({direction})", self.label())
    }

    /// The run's value, `None` when it was not measured. A p99 of 0 means no request
    /// completed, so it is missing rather than perfect.
    pub(crate) fn value(&self, run: &Run) -> Option<f64> {
        let v = match self {
            Figure::OkRate => run.load.ok_per_s,
            Figure::P99 if run.load.latency.p99_us == 0 => return None,
            Figure::P99 => run.load.latency.p99_us as f64 / 1000.0,
            Figure::Metric(spec) => *run.metrics.get(&spec.key)?,
        };
        v.is_finite().then_some(v)
    }

    /// Decimals for this figure in scenario `s`: the same for every target, so a column
    /// never mixes "3 s" and "1.50 s". A metric whose values are all whole numbers (counts)
    /// gets none.
    pub(crate) fn decimals(&self, s: &ScenarioResult) -> usize {
        match self {
            Figure::OkRate => 1,
            Figure::P99 => 2,
            Figure::Metric(_) => {
                let whole = s
                    .runs
                    .iter()
                    .filter_map(|r| self.value(r))
                    .all(|v| v.fract() == 0.0 && v.abs() < 1e12);
                if whole {
                    0
                } else {
                    2
                }
            }
        }
    }

    /// The run's value in scenario `s` with its unit, e.g. "1000.0 req/s", "12.50 ms",
    /// "1.50 s", or [`MISSING`].
    pub(crate) fn show(&self, s: &ScenarioResult, run: Option<&Run>) -> String {
        let Some(v) = run.and_then(|r| self.value(r)) else {
            return MISSING.to_string();
        };
        let decimals = self.decimals(s);
        match self {
            Figure::OkRate => format!("{} req/s", fixed(v, decimals)),
            Figure::P99 => format!("{} ms", fixed(v, decimals)),
            Figure::Metric(spec) => with_unit(v, &spec.unit, decimals),
        }
    }

    /// Ballast's value divided by `peer`'s in scenario `s`, as a table cell.
    pub(crate) fn ratio_cell(&self, s: &ScenarioResult, peer: Target) -> String {
        let ballast = s.run(Target::Ballast).and_then(|r| self.value(r));
        let other = s.run(peer).and_then(|r| self.value(r));
        match Ratio::of(ballast, other, self.higher_is_better()) {
            Some(r) => r.to_string(),
            None => MISSING.to_string(),
        }
    }
}

/// How Ballast's value reads against a peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Better,
    Worse,
    Equal,
}

/// Ballast's value divided by a peer's, with what it means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ratio {
    pub(crate) value: f64,
    pub(crate) verdict: Verdict,
}

impl Ratio {
    /// `ballast / peer`, or `None` when either is missing, the peer's value is not positive,
    /// Ballast's is negative, or the quotient is not finite. Ratios are only formed between
    /// non-negative quantities, where "higher" and "lower" keep their meaning.
    pub(crate) fn of(
        ballast: Option<f64>,
        peer: Option<f64>,
        higher_is_better: bool,
    ) -> Option<Ratio> {
        let (b, p) = (ballast?, peer?);
        if !(b.is_finite() && p.is_finite() && b >= 0.0 && p > 0.0) {
            return None;
        }
        let value = b / p;
        if !value.is_finite() {
            return None;
        }
        // Decide on the value as printed, so "1.02×" never reads "better".
        let shown = (value * 100.0).round() / 100.0;
        let verdict = if (shown - 1.0).abs() <= EQUAL_WITHIN + 1e-9 {
            Verdict::Equal
        } else if (value > 1.0) == higher_is_better {
            Verdict::Better
        } else {
            Verdict::Worse
        };
        Some(Ratio { value, verdict })
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self.verdict {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Equal => "equal",
        };
        let v = self.value;
        if v >= 1e6 {
            write!(f, "{v:.1e}× {word}")
        } else if v >= 1000.0 {
            write!(f, "{v:.0}× {word}")
        } else if v > 0.0 && v < 0.005 {
            write!(f, "<0.01× {word}")
        } else {
            write!(f, "{v:.2}× {word}")
        }
    }
}

/// `v` with `decimals` decimals; scientific notation past 10¹²; [`MISSING`] if not finite.
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    // No "-0.00".
    let v = if v == 0.0 { 0.0 } else { v };
    if v.abs() >= 1e12 {
        format!("{v:.3e}")
    } else {
        let s = format!("{v:.decimals$}");
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_string()
        } else {
            s
        }
    }
}

/// A rate in requests per second.
pub(crate) fn rate(v: f64) -> String {
    fixed(v, 1)
}

/// `v` with `decimals` decimals and its unit: "1.50 s", "99.50%", "3" (empty unit).
pub(crate) fn with_unit(v: f64, unit: &str, decimals: usize) -> String {
    let n = fixed(v, decimals);
    if n == MISSING || unit.is_empty() {
        n
    } else if unit == "%" {
        format!("{n}%")
    } else {
        format!("{n} {}", md_cell(unit))
    }
}

/// Microseconds as milliseconds with two decimals.
pub(crate) fn ms(us: u64) -> String {
    fixed(us as f64 / 1000.0, 2)
}

/// A latency percentile in ms; 0 means no request completed, so [`MISSING`].
pub(crate) fn latency_ms(us: u64) -> String {
    if us == 0 {
        MISSING.to_string()
    } else {
        ms(us)
    }
}

/// A scenario's title, else its name, else "unnamed scenario".
pub(crate) fn scenario_title(s: &ScenarioResult) -> &str {
    [s.title.trim(), s.name.trim()]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or("unnamed scenario")
}

/// A 0..=1 share as a percentage. Never rounds up to "100%" nor down to "0%" unless exact,
/// since "100% success" must mean no request failed.
pub(crate) fn percent(share: f64) -> String {
    let p = share * 100.0;
    if !p.is_finite() {
        return MISSING.to_string();
    }
    if p == 100.0 {
        return "100%".to_string();
    }
    if p == 0.0 {
        return "0%".to_string();
    }
    let s = format!("{}%", fixed(p, 2));
    if s == "100.00%" && p < 100.0 {
        ">99.99%".to_string()
    } else if s == "0.00%" && p > 0.0 {
        "<0.01%".to_string()
    } else {
        s
    }
}

/// Total errors; saturates instead of overflowing on absurd counts.
pub(crate) fn errors_total(e: &Errors) -> u64 {
    [e.connect, e.timeout, e.io, e.status_5xx, e.status_4xx]
        .into_iter()
        .fold(0u64, u64::saturating_add)
}

/// "0", or the total and its non-zero kinds, largest first: "12 (5xx 10, io 2)".
pub(crate) fn errors(e: &Errors) -> String {
    let total = errors_total(e);
    if total == 0 {
        return "0".to_string();
    }
    let mut kinds: Vec<(&str, u64)> = [
        ("connect", e.connect),
        ("timeout", e.timeout),
        ("io", e.io),
        ("5xx", e.status_5xx),
        ("4xx", e.status_4xx),
    ]
    .into_iter()
    .filter(|&(_, n)| n > 0)
    .collect();
    // Stable: equal counts keep the order above.
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    let kinds: Vec<String> = kinds
        .into_iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    format!("{total} ({})", kinds.join(", "))
}

/// Seconds, e.g. "10 s", "2.5 s".
pub(crate) fn seconds(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 {
        format!("{} s", fixed(v, 0))
    } else if v.is_finite() && (v * 10.0).fract() == 0.0 {
        format!("{} s", fixed(v, 1))
    } else {
        let n = fixed(v, 2);
        if n == MISSING {
            n
        } else {
            format!("{n} s")
        }
    }
}

/// The display label of a run's target ("unlabelled" when it has none).
pub(crate) fn target_label(target: Option<Target>) -> &'static str {
    target.map_or("unlabelled", Target::label)
}

/// Free text in Markdown: HTML-significant characters escaped, line breaks flattened, so
/// measured strings (versions, fault descriptions) cannot inject markup.
pub(crate) fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Free text inside a Markdown table cell: as [`md_text`], with `|` escaped.
pub(crate) fn md_cell(s: &str) -> String {
    md_text(s).replace('|', "\\|")
}

/// A link destination that survives spaces and parentheses.
pub(crate) fn md_href(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// One file stem per scenario, in order: the name restricted to `[A-Za-z0-9._-]` (so a
/// scenario name can never point outside the report directory), never empty, never a hidden
/// file, never `README` or `results` (whose files the report writes), and unique ignoring case
/// (a suffix `-2`, `-3`, ... is added).
pub(crate) fn file_stems(scenarios: &[ScenarioResult]) -> Vec<String> {
    let mut used: Vec<String> = vec!["readme".to_string(), "results".to_string()];
    let mut stems = Vec::with_capacity(scenarios.len());
    for s in scenarios {
        let mut base: String = s
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let trimmed = base.trim_start_matches('.');
        base = if trimmed.is_empty() {
            "scenario".to_string()
        } else {
            trimmed.chars().take(100).collect()
        };
        let mut stem = base.clone();
        let mut n = 2;
        while used.contains(&stem.to_ascii_lowercase()) {
            stem = format!("{base}-{n}");
            n += 1;
        }
        used.push(stem.to_ascii_lowercase());
        stems.push(stem);
    }
    stems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(b: f64, p: f64, higher: bool) -> String {
        Ratio::of(Some(b), Some(p), higher).map_or(MISSING.to_string(), |r| r.to_string())
    }

    #[test]
    fn ratios_read_by_direction() {
        assert_eq!(show(1000.0, 800.0, true), "1.25× better");
        assert_eq!(show(800.0, 1000.0, true), "0.80× worse");
        assert_eq!(show(10.0, 20.0, false), "0.50× better");
        assert_eq!(show(20.0, 10.0, false), "2.00× worse");
        assert_eq!(show(1020.0, 1000.0, true), "1.02× equal");
        assert_eq!(show(980.0, 1000.0, false), "0.98× equal");
        assert_eq!(show(1025.0, 1000.0, true), "1.02× equal");
        assert_eq!(show(1026.0, 1000.0, true), "1.03× better");
        assert_eq!(show(0.0, 5.0, true), "0.00× worse");
        assert_eq!(show(0.001, 5.0, false), "<0.01× better");
        assert_eq!(show(5000.0, 1.0, true), "5000× better");
        assert_eq!(show(1e300, 1e-300, true), MISSING);
    }

    #[test]
    fn ratios_refuse_what_cannot_be_divided() {
        assert_eq!(show(5.0, 0.0, true), MISSING);
        assert_eq!(show(0.0, 0.0, true), MISSING);
        assert_eq!(show(f64::NAN, 1.0, true), MISSING);
        assert_eq!(show(1.0, f64::INFINITY, true), MISSING);
        assert_eq!(show(-1.0, 1.0, true), MISSING);
        assert!(Ratio::of(None, Some(1.0), true).is_none());
        assert!(Ratio::of(Some(1.0), None, true).is_none());
    }

    #[test]
    fn numbers_never_print_nan_or_inf() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(fixed(v, 2), MISSING);
            assert_eq!(with_unit(v, "s", 2), MISSING);
            assert_eq!(percent(v), MISSING);
            assert_eq!(seconds(v), MISSING);
        }
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(1e15, 1), "1.000e15");
        assert_eq!(with_unit(1.5, "s", 2), "1.50 s");
        assert_eq!(with_unit(99.5, "%", 2), "99.50%");
        assert_eq!(with_unit(2.0, "", 0), "2");
        assert_eq!(seconds(10.0), "10 s");
        assert_eq!(seconds(2.5), "2.5 s");
        assert_eq!(ms(1234), "1.23");
        assert_eq!(ms(u64::MAX), "1.845e16");
        assert_eq!(latency_ms(0), MISSING);
        assert_eq!(latency_ms(10_000), "10.00");
    }

    #[test]
    fn percent_never_rounds_to_perfect() {
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.5), "50.00%");
        assert_eq!(percent(0.999_999), ">99.99%");
        assert_eq!(percent(0.000_000_1), "<0.01%");
    }

    #[test]
    fn errors_compact_and_saturating() {
        let e = Errors {
            status_5xx: 10,
            io: 2,
            ..Errors::default()
        };
        assert_eq!(errors(&e), "12 (5xx 10, io 2)");
        assert_eq!(errors(&Errors::default()), "0");
        let huge = Errors {
            connect: u64::MAX,
            timeout: u64::MAX,
            ..Errors::default()
        };
        assert_eq!(errors_total(&huge), u64::MAX);
    }

    #[test]
    fn stems_are_safe_and_unique() {
        let names = [
            "backend-crash",
            "../etc/passwd",
            "",
            "README",
            "a b",
            "A-B",
            ".hidden",
        ];
        let scenarios: Vec<ScenarioResult> = names
            .iter()
            .map(|n| ScenarioResult {
                name: n.to_string(),
                ..ScenarioResult::default()
            })
            .collect();
        assert_eq!(
            file_stems(&scenarios),
            [
                "backend-crash",
                "-etc-passwd",
                "scenario",
                "README-2",
                "a-b",
                "A-B-2",
                "hidden"
            ]
        );
    }

    #[test]
    fn markdown_text_is_escaped() {
        assert_eq!(md_cell("a|b <c> & d\ne"), "a\\|b &lt;c&gt; &amp; d e");
        assert_eq!(md_href("plots/a b(1).svg"), "plots/a%20b%281%29.svg");
    }
}

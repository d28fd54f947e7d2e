//! A scenario's timeline as a self-contained SVG: errors per second above, p99 latency per
//! second below, one line per target, the fault moment as a dashed vertical line.
//!
//! The plot is what shows *when* a proxy recovered, which no total in a table can. It is
//! written by hand (no plotting crate, no script) so it renders anywhere an image does (GitHub,
//! a browser, an editor preview) and so the lab keeps its dependency list short. Every
//! coordinate goes through [`Scale`], which maps any input, however degenerate (no data, one
//! second, all zeros, `u64::MAX`), to a finite position.

use std::fmt::Write as _;

use super::figures::errors_total;
use crate::result::{Run, ScenarioResult, Target};

// Layout, in SVG user units.
const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 24.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const ERR_TOP: f64 = 48.0;
const PANEL_H: f64 = 190.0;
const ERR_BOTTOM: f64 = ERR_TOP + PANEL_H;
const P99_TOP: f64 = ERR_BOTTOM + 36.0;
const P99_BOTTOM: f64 = P99_TOP + PANEL_H;
const X_TICK_Y: f64 = P99_BOTTOM + 16.0;
const X_LABEL_Y: f64 = P99_BOTTOM + 36.0;
const LEGEND_Y: f64 = P99_BOTTOM + 64.0;

/// Faults whose times differ by at most this are drawn as one line.
const SAME_FAULT_TIME_S: f64 = 0.5;
/// Longest fault label, in characters.
const MAX_LABEL_CHARS: usize = 60;

/// The plot color of a target.
pub(crate) fn color(target: Option<Target>) -> &'static str {
    match target {
        Some(Target::Ballast) => "#1f77b4",
        Some(Target::Haproxy) => "#d62728",
        Some(Target::Nginx) => "#2ca02c",
        Some(Target::Direct) => "#7f7f7f",
        None => "#9467bd",
    }
}

/// Maps a data interval onto a pixel interval, linearly in the data or in its log10.
#[derive(Clone, Copy, Debug)]
struct Scale {
    /// Data interval (log10 of it when `log`).
    d0: f64,
    d1: f64,
    /// Pixel interval; `r1 < r0` for a y axis.
    r0: f64,
    r1: f64,
    log: bool,
}

impl Scale {
    /// A finite pixel position for any `v`: out-of-range values are clamped to the panel,
    /// non-finite or non-positive (on a log scale) ones go to the axis origin.
    fn map(&self, v: f64) -> f64 {
        let v = if self.log {
            if v > 0.0 {
                v.log10()
            } else {
                self.d0
            }
        } else {
            v
        };
        let span = self.d1 - self.d0;
        let frac = if v.is_finite() && span.is_finite() && span > 0.0 {
            ((v - self.d0) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let p = self.r0 + frac * (self.r1 - self.r0);
        if p.is_finite() {
            p
        } else {
            self.r0
        }
    }
}

/// A round tick step (1, 2 or 5 × 10ⁿ) giving about `target` intervals over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    } * mag;
    if step.is_finite() && step > 0.0 {
        step
    } else {
        1.0
    }
}

/// A linear axis from `lo` to at least `hi`, widened to whole steps: (lo, hi, step).
fn nice_range(lo: f64, hi: f64, target: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let step = nice_step(hi - lo, target);
    let lo2 = (lo / step).floor() * step;
    let hi2 = (hi / step).ceil() * step;
    if lo2.is_finite() && hi2.is_finite() && hi2 > lo2 {
        (lo2, hi2, step)
    } else {
        (lo, hi, step)
    }
}

/// Ticks from `lo` to `hi` every `step` (at most 60 of them).
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if !(step > 0.0 && lo.is_finite() && hi.is_finite()) {
        return out;
    }
    let first = (lo / step).ceil();
    for i in 0..60 {
        let v = (first + f64::from(i)) * step;
        if v > hi + step * 1e-9 {
            break;
        }
        out.push(v);
    }
    out
}

/// Ticks of a log axis from 10^`dec_lo` to 10^`dec_hi`: 1, 2 and 5 × each decade over up to
/// three decades, whole decades (thinned to about six) beyond.
fn log_ticks(dec_lo: f64, dec_hi: f64) -> Vec<f64> {
    let span = dec_hi - dec_lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    if span <= 3.0 {
        let mut out = Vec::new();
        for d in ticks(dec_lo, dec_hi, 1.0) {
            for m in [1.0, 2.0, 5.0] {
                if d < dec_hi || m == 1.0 {
                    out.push(m * 10f64.powf(d));
                }
            }
        }
        out
    } else {
        let step = (span / 6.0).ceil();
        ticks(dec_lo, dec_hi, step)
            .into_iter()
            .map(|d| 10f64.powf(d))
            .collect()
    }
}

/// A tick label: no trailing zeros, scientific for very large or very small values.
fn tick_label(v: f64, step: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let v = if v.abs() < step.abs() * 1e-9 { 0.0 } else { v };
    if v == 0.0 {
        return "0".to_string();
    }
    if v.abs() >= 1e6 || v.abs() < 1e-3 {
        return format!("{v:e}");
    }
    let decimals = if step >= 1.0 || !step.is_finite() || step <= 0.0 {
        0
    } else {
        ((-step.log10()).ceil() as usize).min(6)
    };
    format!("{v:.decimals$}")
}

/// Text for XML content and attributes; characters XML 1.0 forbids become spaces.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A coordinate with one decimal.
fn c(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_string()
    }
}

/// A fault line to draw: where, in which color, with which label.
struct FaultMark {
    at_s: f64,
    color: &'static str,
    label: String,
}

/// One line when every target's fault came at roughly the same time, else one per target.
fn fault_marks(s: &ScenarioResult) -> Vec<FaultMark> {
    let faults: Vec<(&Run, f64)> = s
        .runs
        .iter()
        .filter_map(|r| r.fault.as_ref().map(|f| (r, f.at_s)))
        .filter(|(_, at)| at.is_finite())
        .collect();
    if faults.is_empty() {
        return Vec::new();
    }
    let describe = |r: &Run| {
        let f = r.fault.as_ref();
        let what = f.map_or("", |f| f.what.trim());
        let what = if what.is_empty() { "fault" } else { what };
        if f.is_some_and(|f| !f.injected) {
            format!("{what} (not injected)")
        } else {
            what.to_string()
        }
    };
    let min = faults.iter().map(|(_, t)| *t).fold(f64::INFINITY, f64::min);
    let max = faults
        .iter()
        .map(|(_, t)| *t)
        .fold(f64::NEG_INFINITY, f64::max);
    if max - min <= SAME_FAULT_TIME_S {
        let mean = faults.iter().map(|(_, t)| *t / faults.len() as f64).sum();
        let mut labels: Vec<String> = Vec::new();
        for (r, _) in &faults {
            let l = describe(r);
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        vec![FaultMark {
            at_s: mean,
            color: "#444444",
            label: truncate(&labels.join(" / "), MAX_LABEL_CHARS),
        }]
    } else {
        faults
            .iter()
            .map(|(r, at)| FaultMark {
                at_s: *at,
                color: color(r.target),
                label: truncate(
                    &format!(
                        "{}: {}",
                        super::figures::target_label(r.target),
                        describe(r)
                    ),
                    MAX_LABEL_CHARS,
                ),
            })
            .collect()
    }
}

/// The timeline of a run in time order (the generator writes it so, but a plot must not
/// zigzag if it did not).
fn timeline(run: &Run) -> Vec<&crate::result::Second> {
    let mut t: Vec<_> = run.load.timeline.iter().collect();
    t.sort_by_key(|s| s.t);
    t
}

/// The scenario's timelines as an SVG document.
pub fn scenario_svg(s: &ScenarioResult) -> String {
    let marks = fault_marks(s);

    // x: seconds from the run's epoch; each second is plotted at its middle.
    let mut x_lo: f64 = 0.0;
    let mut x_hi: f64 = s.duration_s.max(0.0);
    for run in &s.runs {
        if let Some(last) = run.load.timeline.iter().map(|sec| sec.t).max() {
            x_hi = x_hi.max(f64::from(last) + 1.0);
        }
    }
    for m in &marks {
        x_lo = x_lo.min(m.at_s);
        x_hi = x_hi.max(m.at_s);
    }
    if !x_hi.is_finite() {
        x_hi = 1.0;
    }
    let (x_lo, x_hi, x_step) = nice_range(x_lo, x_hi, 10.0);
    let xs = Scale {
        d0: x_lo,
        d1: x_hi,
        r0: LEFT,
        r1: LEFT + PLOT_W,
        log: false,
    };

    // Top: errors per second, linear from 0.
    let err_max = s
        .runs
        .iter()
        .flat_map(|r| r.load.timeline.iter())
        .map(|sec| errors_total(&sec.errors))
        .max()
        .unwrap_or(0);
    let (_, e_hi, e_step) = nice_range(0.0, (err_max as f64).max(1.0), 5.0);
    let es = Scale {
        d0: 0.0,
        d1: e_hi,
        r0: ERR_BOTTOM,
        r1: ERR_TOP,
        log: false,
    };

    // Bottom: p99 per second in ms, log scale over whole decades. A second in which nothing
    // completed (p99 0) has no latency and is left out.
    let p99s = s
        .runs
        .iter()
        .flat_map(|r| r.load.timeline.iter())
        .filter(|sec| sec.p99_us > 0)
        .map(|sec| sec.p99_us as f64 / 1000.0);
    let (p_min, p_max) = p99s.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (dec_lo, dec_hi) = if p_max > 0.0 {
        let lo = p_min.log10().floor();
        let hi = p_max.log10().ceil();
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    };
    let ps = Scale {
        d0: dec_lo,
        d1: dec_hi,
        r0: P99_BOTTOM,
        r1: P99_TOP,
        log: true,
    };

    let title = super::figures::scenario_title(s);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#,
        w = WIDTH,
        h = HEIGHT
    );
    let _ = writeln!(
        out,
        "<title>{}: errors and p99 latency per second</title>",
        xml_escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text class="title" x="{}" y="26" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        c(WIDTH / 2.0),
        xml_escape(&truncate(title, 90))
    );

    // Frames, grids and y ticks.
    let x_ticks = ticks(x_lo, x_hi, x_step);
    for (top, bottom) in [(ERR_TOP, ERR_BOTTOM), (P99_TOP, P99_BOTTOM)] {
        for &t in &x_ticks {
            let x = c(xs.map(t));
            let _ = writeln!(
                out,
                r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#e6e6e6"/>"##,
                c(top),
                c(bottom)
            );
        }
    }
    for t in ticks(0.0, e_hi, e_step) {
        let y = es.map(t);
        grid_y(&mut out, y, &tick_label(t, e_step));
    }
    for v in log_ticks(dec_lo, dec_hi) {
        grid_y(&mut out, ps.map(v), &tick_label(v, v));
    }
    for (top, bottom) in [(ERR_TOP, ERR_BOTTOM), (P99_TOP, P99_BOTTOM)] {
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999999"/>"##,
            c(LEFT),
            c(top),
            c(PLOT_W),
            c(bottom - top)
        );
    }
    for &t in &x_ticks {
        let _ = writeln!(
            out,
            r#"<text class="x-tick" x="{}" y="{}" text-anchor="middle">{}</text>"#,
            c(xs.map(t)),
            c(X_TICK_Y),
            tick_label(t, x_step)
        );
    }

    // Axis titles.
    y_title(&mut out, (ERR_TOP + ERR_BOTTOM) / 2.0, "errors / s");
    y_title(
        &mut out,
        (P99_TOP + P99_BOTTOM) / 2.0,
        "p99 latency, ms (log scale)",
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds from the start of the run (each point is the middle of its second)</text>"#,
        c(LEFT + PLOT_W / 2.0),
        c(X_LABEL_Y)
    );

    // Series.
    let mut any_err = false;
    let mut any_p99 = false;
    for run in &s.runs {
        let tl = timeline(run);
        let err: Vec<(f64, f64)> = tl
            .iter()
            .map(|sec| {
                (
                    xs.map(f64::from(sec.t) + 0.5),
                    es.map(errors_total(&sec.errors) as f64),
                )
            })
            .collect();
        let p99: Vec<(f64, f64)> = tl
            .iter()
            .filter(|sec| sec.p99_us > 0)
            .map(|sec| {
                (
                    xs.map(f64::from(sec.t) + 0.5),
                    ps.map(sec.p99_us as f64 / 1000.0),
                )
            })
            .collect();
        any_err |= !err.is_empty();
        any_p99 |= !p99.is_empty();
        series(&mut out, run.target, "errors", &err);
        series(&mut out, run.target, "p99", &p99);
    }
    if !any_err {
        no_data(&mut out, (ERR_TOP + ERR_BOTTOM) / 2.0);
    }
    if !any_p99 {
        no_data(&mut out, (P99_TOP + P99_BOTTOM) / 2.0);
    }

    // Fault moments.
    for (i, m) in marks.iter().enumerate() {
        let x = xs.map(m.at_s);
        let _ = writeln!(
            out,
            r#"<line class="fault" x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{}" stroke-width="1.3" stroke-dasharray="6 4"/>"#,
            c(ERR_TOP),
            c(P99_BOTTOM),
            m.color,
            x = c(x)
        );
        let (lx, anchor) = if x > LEFT + PLOT_W * 0.65 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = writeln!(
            out,
            r#"<text class="fault-label" x="{}" y="{}" text-anchor="{anchor}" fill="{}">{}</text>"#,
            c(lx),
            c(ERR_TOP + 13.0 + 13.0 * (i % 12) as f64),
            m.color,
            xml_escape(&m.label)
        );
    }

    legend(&mut out, s, !marks.is_empty());
    out.push_str("</svg>\n");
    out
}

/// A horizontal grid line with its tick label on the left.
fn grid_y(out: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        out,
        r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#e6e6e6"/>"##,
        c(LEFT),
        c(LEFT + PLOT_W),
        y = c(y)
    );
    let _ = writeln!(
        out,
        r#"<text class="y-tick" x="{}" y="{}" text-anchor="end">{}</text>"#,
        c(LEFT - 6.0),
        c(y + 4.0),
        xml_escape(label)
    );
}

fn y_title(out: &mut String, y_mid: f64, text: &str) {
    let x = 16.0;
    let _ = writeln!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="middle" transform="rotate(-90 {x} {y})">{}</text>"#,
        xml_escape(text),
        x = c(x),
        y = c(y_mid)
    );
}

fn no_data(out: &mut String, y_mid: f64) {
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#888888">no data</text>"##,
        c(LEFT + PLOT_W / 2.0),
        c(y_mid)
    );
}

/// One polyline (always emitted, empty when there are no points, so every target has its
/// line in each panel); a dot when there is a single point, which a polyline would not show.
fn series(out: &mut String, target: Option<Target>, panel: &str, points: &[(f64, f64)]) {
    let pts: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{},{}", c(x), c(y)))
        .collect();
    let name = target.map_or("unlabelled", Target::name);
    let _ = writeln!(
        out,
        r#"<polyline class="series" data-target="{name}" data-panel="{panel}" points="{}" fill="none" stroke="{}" stroke-width="1.6" stroke-linejoin="round"/>"#,
        pts.join(" "),
        color(target)
    );
    if let [(x, y)] = points {
        let _ = writeln!(
            out,
            r#"<circle cx="{}" cy="{}" r="2.5" fill="{}"/>"#,
            c(*x),
            c(*y),
            color(target)
        );
    }
}

/// One entry per target (in run order, once each), then the fault line style.
fn legend(out: &mut String, s: &ScenarioResult, faults: bool) {
    let mut seen: Vec<Option<Target>> = Vec::new();
    for r in &s.runs {
        if !seen.contains(&r.target) {
            seen.push(r.target);
        }
    }
    let mut x = LEFT;
    let y = LEGEND_Y;
    for t in seen {
        let label = super::figures::target_label(t);
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2.5"/>"#,
            c(x),
            c(y - 4.0),
            c(x + 18.0),
            c(y - 4.0),
            color(t)
        );
        let _ = writeln!(
            out,
            r#"<text class="legend" x="{}" y="{}">{}</text>"#,
            c(x + 24.0),
            c(y),
            xml_escape(label)
        );
        x += 24.0 + 7.0 * label.chars().count() as f64 + 22.0;
    }
    if faults {
        let _ = writeln!(
            out,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#444444" stroke-width="1.3" stroke-dasharray="6 4"/>"##,
            c(x),
            c(y - 4.0),
            c(x + 18.0),
            c(y - 4.0)
        );
        let _ = writeln!(
            out,
            r#"<text class="legend" x="{}" y="{}">fault injected</text>"#,
            c(x + 24.0),
            c(y)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_round() {
        assert_eq!(nice_step(10.0, 10.0), 1.0);
        assert_eq!(nice_step(60.0, 10.0), 10.0);
        assert_eq!(nice_step(17.0, 5.0), 5.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(nice_step(f64::NAN, 5.0), 1.0);
        assert_eq!(nice_range(0.0, 17.0, 5.0), (0.0, 20.0, 5.0));
        assert_eq!(nice_range(0.0, 0.0, 5.0), (0.0, 1.0, 0.2));
        let (lo, hi, step) = nice_range(0.0, u64::MAX as f64, 5.0);
        assert!(lo == 0.0 && hi.is_finite() && step.is_finite() && hi >= u64::MAX as f64);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(0.0, 1.0), "0");
        assert_eq!(tick_label(20.0, 5.0), "20");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.01, 0.01), "0.01");
        assert_eq!(tick_label(1e7, 1e7), "1e7");
        assert_eq!(tick_label(1e-5, 1e-5), "1e-5");
        assert_eq!(ticks(0.0, 10.0, 2.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert!(ticks(0.0, 1e300, 1.0).len() <= 60);
        let labels: Vec<String> = log_ticks(1.0, 2.0)
            .into_iter()
            .map(|v| tick_label(v, v))
            .collect();
        assert_eq!(labels, ["10", "20", "50", "100"]);
        let labels: Vec<String> = log_ticks(-3.0, -2.0)
            .into_iter()
            .map(|v| tick_label(v, v))
            .collect();
        assert_eq!(labels, ["0.001", "0.002", "0.005", "0.01"]);
        assert!((4..=7).contains(&log_ticks(-3.0, 17.0).len()));
        assert!(log_ticks(0.0, 0.0).is_empty());
    }

    #[test]
    fn scales_always_land_in_the_panel() {
        let s = Scale {
            d0: 0.0,
            d1: 10.0,
            r0: 100.0,
            r1: 0.0,
            log: false,
        };
        assert_eq!(s.map(5.0), 50.0);
        assert_eq!(s.map(-5.0), 100.0);
        assert_eq!(s.map(50.0), 0.0);
        assert_eq!(s.map(f64::NAN), 100.0);
        let flat = Scale { d1: 0.0, ..s };
        assert_eq!(flat.map(3.0), 100.0);
        let log = Scale {
            d0: 0.0,
            d1: 2.0,
            log: true,
            ..s
        };
        assert_eq!(log.map(10.0), 50.0);
        assert_eq!(log.map(0.0), 100.0);
    }

    #[test]
    fn escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos; "
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}

//! Charts as inline SVG, drawn here rather than by a JavaScript library: a page is complete
//! when it arrives, prints, and shows under a CSP that allows no script but our refresh.
//!
//! Both kinds scale the points into a fixed viewBox; the stylesheet sizes them. A gap in the
//! data (a sample interval more than three times the usual one) breaks the line rather than
//! drawing a straight line across a restart.

use std::fmt::Write;

/// A small line without axes, for a table cell: `points` are `(unix_ms, value)`, oldest first.
pub fn sparkline(points: &[(u64, f64)], label: &str) -> String {
    let (w, h) = (160.0, 32.0);
    let mut out = format!(
        r#"<svg class="sparkline" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        escape(label)
    );
    lines(&mut out, points, w, h, 2.0);
    if points.is_empty() {
        let _ = write!(out, r#"<text class="axis" x="4" y="20">no data yet</text>"#);
    }
    out.push_str("</svg>");
    out
}

/// A line chart with its highest value and time span written on it.
pub fn chart(points: &[(u64, f64)], label: &str, unit: &str) -> String {
    let (w, h) = (520.0, 120.0);
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        escape(label)
    );
    let _ = write!(
        out,
        r#"<line class="grid" x1="0" y1="{y}" x2="{w}" y2="{y}"/><line class="grid" x1="0" y1="4" x2="{w}" y2="4"/>"#,
        y = h - 14.0
    );
    lines(&mut out, points, w, h - 18.0, 4.0);
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => super::format::span(b.0.saturating_sub(a.0)),
        _ => "no data yet".into(),
    };
    let _ = write!(
        out,
        r#"<text class="axis" x="4" y="14">max {} {}</text><text class="axis" x="4" y="{}">{} · {}</text>"#,
        super::format::reading(Some(max)),
        escape(unit),
        h - 2.0,
        escape(label),
        span
    );
    out.push_str("</svg>");
    out
}

/// Appends one `<polyline>` per unbroken run of points, scaled into `w` × `h` below `top`.
fn lines(out: &mut String, points: &[(u64, f64)], w: f64, h: f64, top: f64) {
    let finite: Vec<(u64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    let (Some(first), Some(last)) = (finite.first(), finite.last()) else {
        return;
    };
    let t0 = first.0 as f64;
    let dt = (last.0 as f64 - t0).max(1.0);
    let max = finite.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let min = finite.iter().map(|p| p.1).fold(f64::MAX, f64::min).min(0.0);
    let dv = (max - min).max(f64::EPSILON);
    let step = typical_step(&finite);
    let mut run = String::new();
    let mut prev: Option<u64> = None;
    for &(t, v) in &finite {
        if prev.is_some_and(|p| t.saturating_sub(p) > step.saturating_mul(3)) {
            flush(out, &mut run);
        }
        let x = (t as f64 - t0) / dt * w;
        let y = top + (1.0 - (v - min) / dv) * (h - top);
        let _ = write!(run, "{x:.1},{y:.1} ");
        prev = Some(t);
    }
    flush(out, &mut run);
}

fn flush(out: &mut String, run: &mut String) {
    if !run.is_empty() {
        let _ = write!(out, r#"<polyline points="{}"/>"#, run.trim_end());
        run.clear();
    }
}

/// The median interval between points (a gap is judged against it).
fn typical_step(points: &[(u64, f64)]) -> u64 {
    let mut steps: Vec<u64> = points
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0))
        .collect();
    steps.sort_unstable();
    steps
        .get(steps.len() / 2)
        .copied()
        .unwrap_or(u64::MAX / 4)
        .max(1)
}

/// Text for an SVG attribute or element.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polylines(svg: &str) -> usize {
        svg.matches("<polyline").count()
    }

    #[test]
    fn a_line_spans_the_box_and_a_gap_breaks_it() {
        let pts: Vec<(u64, f64)> = (0..10).map(|i| (i * 1000, i as f64)).collect();
        let svg = sparkline(&pts, "req/s");
        assert_eq!(polylines(&svg), 1);
        assert!(
            svg.contains("0.0,32.0") && svg.contains("160.0,2.0"),
            "{svg}"
        );
        let mut gapped = pts.clone();
        gapped.extend((20..25).map(|i| (i * 1000, 1.0)));
        assert_eq!(polylines(&sparkline(&gapped, "x")), 2);
    }

    #[test]
    fn no_data_flat_lines_and_hostile_labels_are_safe() {
        assert!(sparkline(&[], "x").contains("no data yet"));
        let flat = chart(&[(0, 5.0), (1000, 5.0)], "a<b>\"", "ms");
        assert!(!flat.contains("NaN") && !flat.contains("inf"), "{flat}");
        assert!(flat.contains("a&lt;b&gt;&quot;") && !flat.contains("a<b>"));
        assert!(!sparkline(&[(0, f64::NAN), (1, 1.0)], "x").contains("NaN"));
    }
}

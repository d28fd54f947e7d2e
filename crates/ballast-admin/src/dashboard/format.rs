//! How pages write times, ages and numbers: UTC clock times (the store's times are UTC, and a
//! dashboard read from two time zones must agree), ages such as "3m ago", and readings with
//! few digits.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `2026-12-01 14:03:07Z`.
pub fn clock(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "—".into();
    }
    let t = ballast_core::UtcTime::from_unix_secs(unix_ms / 1000);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A span of milliseconds for people: `850ms`, `42s`, `3m 10s`, `5h 2m`, `3d 4h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago `unix_ms` was, from `now_ms`.
pub fn ago(unix_ms: u64, now_ms: u64) -> String {
    if unix_ms == 0 {
        return "—".into();
    }
    format!("{} ago", span(now_ms.saturating_sub(unix_ms)))
}

/// A reading with about three significant digits; `—` for none.
pub fn reading(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if !v.is_finite() => v.to_string(),
        Some(0.0) => "0".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 0.01 => format!("{v:.2}"),
        Some(v) => format!("{v:.2e}"),
    }
}

/// An alert's labels on one line, `name=value` apart, without `alertname` (shown already).
pub fn labels(labels: &ballast_core::Labels) -> String {
    labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A ratio as a percentage: `0.0123` → `1.23%`.
pub fn percent(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) => format!("{}%", reading(Some(v * 100.0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_are_utc_dates() {
        assert_eq!(clock(0), "—");
        assert_eq!(clock(1_000), "1970-01-01 00:00:01Z");
        // 2026-12-01 14:03:07 UTC
        assert_eq!(clock(1_796_133_787_000), "2026-12-01 14:03:07Z");
        // A leap day.
        assert_eq!(clock(951_782_400_000), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn spans_ages_and_readings() {
        assert_eq!(span(850), "850ms");
        assert_eq!(span(42_000), "42s");
        assert_eq!(span(190_000), "3m 10s");
        assert_eq!(span(18_120_000), "5h 2m");
        assert_eq!(span(273_600_000), "3d 4h");
        assert_eq!(ago(1_000, 61_000), "1m 0s ago");
        assert_eq!(reading(Some(1234.5)), "1234");
        assert_eq!(reading(Some(12.34)), "12.3");
        assert_eq!(reading(Some(0.5)), "0.50");
        assert_eq!(reading(None), "—");
        assert_eq!(percent(Some(0.0123)), "1.23%");
    }
}

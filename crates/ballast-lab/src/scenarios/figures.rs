//! Figures derived from what the load generator and the backends recorded: recovery time,
//! windows of the per-second timeline, ratios that stay finite.

use std::time::Duration;

use crate::result::{LoadStats, Second};
use crate::LabError;

/// Seconds from the fault until the last second with a client-visible error ended; 0 when no
/// error followed the fault. Per-second resolution.
pub fn recovery_s(timeline: &[Second], fault_at: f64) -> f64 {
    let first = fault_at.floor() as u32;
    timeline
        .iter()
        .filter(|s| s.t >= first && s.errors.total() > 0)
        .map(|s| (f64::from(s.t) + 1.0 - fault_at).max(0.0))
        .fold(0.0, f64::max)
}

/// Successes and errors completed in seconds `from..` of the timeline.
pub fn window(timeline: &[Second], from_s: f64) -> (u64, u64) {
    let from = from_s.ceil() as u32;
    timeline
        .iter()
        .filter(|s| s.t >= from)
        .fold((0, 0), |(ok, err), s| (ok + s.ok, err + s.errors.total()))
}

/// The worst per-second p99 in seconds `from..`, in ms.
pub fn worst_p99_ms(timeline: &[Second], from_s: f64) -> f64 {
    let from = from_s.ceil() as u32;
    timeline
        .iter()
        .filter(|s| s.t >= from)
        .map(|s| s.p99_us)
        .max()
        .unwrap_or(0) as f64
        / 1000.0
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Percentage `a / b × 100`, or 100 when `b` is 0 (nothing to fail).
pub fn percent(a: u64, b: u64) -> f64 {
    if b == 0 {
        100.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

pub fn p99_ms(stats: &LoadStats) -> f64 {
    stats.latency.p99_us as f64 / 1000.0
}

/// Secs as f64, for fault times.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Unwraps a spawned load task.
pub fn joined<T>(r: Result<Result<T, LabError>, tokio::task::JoinError>) -> Result<T, LabError> {
    r.map_err(|e| LabError::Process(format!("load generator task failed: {e}")))?
}

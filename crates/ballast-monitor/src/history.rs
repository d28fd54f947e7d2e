//! Metric history in memory: every value a monitor reported, per (monitor, value, labels),
//! for the last hour (by default), and its per-minute rollups.
//!
//! It exists for three readers: rules that look at a window rather than the last value
//! ([`MetricHistory::window`]), the dashboard's sparklines and `GET /api/v1/metrics/history`
//! ([`MetricHistory::series`]), and the store's long-term baseline, which receives each
//! completed minute once as a [`MinuteRollup`] ([`MetricHistory::take_rollups`]).
//!
//! It is pure: no I/O, no clock, no tasks. Time is passed in as milliseconds since the Unix
//! epoch, so it is deterministic and testable with plain values.
//!
//! Memory is bounded whatever probes report: at most `max_series` series (a point of a new
//! series beyond that is dropped) and at most `max_points` points per series (the oldest point
//! makes room). Every point refused or pushed out that way, and every point older than its
//! series' newest (a clock that stepped back), is counted in [`MetricHistory::dropped`]. The
//! defaults (10,000 series, 3,600 points: one hour at one value per second) bound it to about
//! 16 bytes × 36 M points in the worst case; real deployments hold far fewer series.
//!
//! Points older than `keep_ms` are let go, and a series with no point for longer than that is
//! forgotten, so series that vanish (a removed route, an unmounted disk) do not pile up.
//!
//! A minute is complete once its start is at least 60 s before `now`. Each call of
//! [`MetricHistory::take_rollups`] returns every completed minute not returned before, so each
//! minute is rolled up exactly once; a point that arrives for a minute already rolled up stays
//! in the history but is not in any rollup. Non-finite values (NaN is missing data) are not
//! kept.

use std::collections::{BTreeMap, VecDeque};

use ballast_core::{Labels, MinuteRollup};

/// One minute, in milliseconds.
pub const MINUTE_MS: u64 = 60_000;
/// How long points are kept by default: one hour.
pub const DEFAULT_KEEP_MS: u64 = 60 * MINUTE_MS;
/// At most this many series by default.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// At most this many points per series by default (one hour at one value per second).
pub const DEFAULT_MAX_POINTS: usize = 3_600;

/// Points of one series, oldest first (times never decrease).
type Points = VecDeque<(u64, f64)>;

/// What a run of values adds up to: the figures of a minute rollup, and the last value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    /// Nearest-rank 95th percentile: the smallest value with at least 95% of the values at or
    /// below it.
    pub p95: f64,
    /// The newest value.
    pub last: f64,
}

impl Summary {
    /// The summary of `values` in the order they were reported; `None` when there are none.
    /// Values are expected to be finite (the history keeps no others).
    pub fn of(values: &[f64]) -> Option<Summary> {
        let last = *values.last()?;
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        // Nearest rank: ceil(0.95 × n), 1-based; n ≥ 1 here, so the rank is in 1..=n.
        let rank = (95 * n).div_ceil(100).clamp(1, n);
        let p95 = sorted.get(rank - 1).copied().unwrap_or(last);
        let min = sorted.first().copied().unwrap_or(last);
        let max = sorted.last().copied().unwrap_or(last);
        let avg = values.iter().sum::<f64>() / n as f64;
        Some(Summary {
            count: n as u64,
            min,
            avg,
            max,
            p95,
            last,
        })
    }
}

/// The recent values of every series, with their per-minute rollups. See the module doc.
#[derive(Debug, Clone)]
pub struct MetricHistory {
    keep_ms: u64,
    max_series: usize,
    max_points: usize,
    /// monitor → value → labels → points: looked up by `&str` and `&Labels` without
    /// allocating on every push.
    series: BTreeMap<String, BTreeMap<String, BTreeMap<Labels, Points>>>,
    series_count: usize,
    /// Every minute that starts before this has been rolled up.
    rolled_until_ms: u64,
    dropped: u64,
}

impl Default for MetricHistory {
    fn default() -> Self {
        MetricHistory::new(DEFAULT_KEEP_MS)
    }
}

impl MetricHistory {
    /// A history keeping points for `keep_ms`, with the default caps.
    pub fn new(keep_ms: u64) -> Self {
        MetricHistory::with_limits(keep_ms, DEFAULT_MAX_SERIES, DEFAULT_MAX_POINTS)
    }

    /// A history keeping points for `keep_ms`, at most `max_series` series and at most
    /// `max_points` points in each.
    pub fn with_limits(keep_ms: u64, max_series: usize, max_points: usize) -> Self {
        MetricHistory {
            keep_ms,
            max_series,
            max_points,
            series: BTreeMap::new(),
            series_count: 0,
            rolled_until_ms: 0,
            dropped: 0,
        }
    }

    pub fn keep_ms(&self) -> u64 {
        self.keep_ms
    }

    /// How many series are held.
    pub fn series_count(&self) -> usize {
        self.series_count
    }

    /// How many points were refused or pushed out by the caps, or arrived out of order.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records that `monitor` reported `v` for `value` on `labels` at `t_ms`. A non-finite `v`
    /// (missing data) is ignored.
    pub fn push(&mut self, monitor: &str, value: &str, labels: &Labels, t_ms: u64, v: f64) {
        if !v.is_finite() {
            return;
        }
        if self.max_points == 0 {
            self.dropped += 1;
            return;
        }
        let known = self
            .series
            .get(monitor)
            .and_then(|by_value| by_value.get(value))
            .is_some_and(|by_labels| by_labels.contains_key(labels));
        if !known {
            if self.series_count >= self.max_series {
                self.dropped += 1;
                return;
            }
            self.series
                .entry(monitor.to_string())
                .or_default()
                .entry(value.to_string())
                .or_default()
                .insert(labels.clone(), Points::new());
            self.series_count += 1;
        }
        let Some(points) = self
            .series
            .get_mut(monitor)
            .and_then(|by_value| by_value.get_mut(value))
            .and_then(|by_labels| by_labels.get_mut(labels))
        else {
            return;
        };
        if points.back().is_some_and(|&(newest, _)| t_ms < newest) {
            self.dropped += 1;
            return;
        }
        let cutoff = t_ms.saturating_sub(self.keep_ms);
        while points.front().is_some_and(|&(t, _)| t < cutoff) {
            points.pop_front();
        }
        while points.len() >= self.max_points {
            points.pop_front();
            self.dropped += 1;
        }
        points.push_back((t_ms, v));
    }

    /// Every series of `value` from `monitor` that has points at or after `since_ms`, with
    /// those points (oldest first), in label order.
    pub fn series(
        &self,
        monitor: &str,
        value: &str,
        since_ms: u64,
    ) -> Vec<(Labels, Vec<(u64, f64)>)> {
        let Some(by_labels) = self.series.get(monitor).and_then(|m| m.get(value)) else {
            return Vec::new();
        };
        by_labels
            .iter()
            .filter_map(|(labels, points)| {
                let recent = since(points, since_ms);
                (!recent.is_empty()).then(|| (labels.clone(), recent))
            })
            .collect()
    }

    /// The summary of one series' points at or after `since_ms` (for rules over a window);
    /// `None` when it has none.
    pub fn window(
        &self,
        monitor: &str,
        value: &str,
        labels: &Labels,
        since_ms: u64,
    ) -> Option<Summary> {
        let points = self.series.get(monitor)?.get(value)?.get(labels)?;
        let start = points.partition_point(|&(t, _)| t < since_ms);
        let values: Vec<f64> = points.range(start..).map(|&(_, v)| v).collect();
        Summary::of(&values)
    }

    /// The rollup of every completed minute (its start at or before `now_ms − 60 s`) not
    /// returned by an earlier call, ordered by monitor, value, labels, then minute. Then
    /// forgets what is older than the history keeps ([`MetricHistory::expire`]).
    pub fn take_rollups(&mut self, now_ms: u64) -> Vec<MinuteRollup> {
        let until = now_ms - now_ms % MINUTE_MS;
        let mut rollups = Vec::new();
        if until > self.rolled_until_ms {
            let from = self.rolled_until_ms;
            for (monitor, by_value) in &self.series {
                for (value, by_labels) in by_value {
                    for (labels, points) in by_labels {
                        roll_up(monitor, value, labels, points, from, until, &mut rollups);
                    }
                }
            }
            self.rolled_until_ms = until;
        }
        self.expire(now_ms);
        rollups
    }

    /// Lets go of the points older than `now_ms − keep` and forgets the series left without
    /// any. [`MetricHistory::take_rollups`] calls it after rolling up, so nothing it removes
    /// there was still to be rolled up; called on its own, points of minutes not yet rolled up
    /// may go (only when `take_rollups` has not run for longer than the history keeps).
    pub fn expire(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(self.keep_ms);
        let mut forgotten = 0;
        self.series.retain(|_, by_value| {
            by_value.retain(|_, by_labels| {
                by_labels.retain(|_, points| {
                    while points.front().is_some_and(|&(t, _)| t < cutoff) {
                        points.pop_front();
                    }
                    let keep = !points.is_empty();
                    if !keep {
                        forgotten += 1;
                    }
                    keep
                });
                !by_labels.is_empty()
            });
            !by_value.is_empty()
        });
        self.series_count = self.series_count.saturating_sub(forgotten);
    }
}

/// The points at or after `since_ms`.
fn since(points: &Points, since_ms: u64) -> Vec<(u64, f64)> {
    let start = points.partition_point(|&(t, _)| t < since_ms);
    points.range(start..).copied().collect()
}

/// Appends the rollup of each minute of `points` in `[from, until)`.
fn roll_up(
    monitor: &str,
    value: &str,
    labels: &Labels,
    points: &Points,
    from: u64,
    until: u64,
    out: &mut Vec<MinuteRollup>,
) {
    let start = points.partition_point(|&(t, _)| t < from);
    let mut minute: Option<u64> = None;
    let mut values: Vec<f64> = Vec::new();
    let mut flush = |minute: Option<u64>, values: &mut Vec<f64>| {
        if let (Some(minute_unix_ms), Some(s)) = (minute, Summary::of(values)) {
            out.push(MinuteRollup {
                monitor: monitor.to_string(),
                value: value.to_string(),
                labels: labels.clone(),
                minute_unix_ms,
                min: s.min,
                avg: s.avg,
                max: s.max,
                p95: s.p95,
                count: s.count,
            });
        }
        values.clear();
    };
    for &(t, v) in points.range(start..) {
        if t >= until {
            break;
        }
        let m = t - t % MINUTE_MS;
        if minute != Some(m) {
            flush(minute, &mut values);
            minute = Some(m);
        }
        values.push(v);
    }
    flush(minute, &mut values);
}

#[cfg(test)]
mod tests;

//! Unit tests of the metric history: what it keeps and forgets, that each minute is rolled up
//! exactly once with the right figures, and that its caps hold and count what they drop.

use super::*;

const M: u64 = MINUTE_MS;
/// An arbitrary whole minute (2026-11-30 18:00 UTC), so times look like real ones.
const T0: u64 = 1_796_061_600_000;

fn route(name: &str) -> Labels {
    Labels::new().with("route", name)
}

#[test]
fn summary_figures_and_nearest_rank_p95() {
    // 1..=100: ceil(0.95 × 100) = rank 95.
    let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
    let s = Summary::of(&values).unwrap();
    assert_eq!(s.count, 100);
    assert_eq!((s.min, s.max, s.p95, s.last), (1.0, 100.0, 95.0, 1.0));
    assert_eq!(s.avg, 50.5);
    // 20 values: rank ceil(19.0) = 19; 21 values: rank ceil(19.95) = 20.
    let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(Summary::of(&twenty).unwrap().p95, 19.0);
    let twenty_one: Vec<f64> = (1..=21).map(f64::from).collect();
    assert_eq!(Summary::of(&twenty_one).unwrap().p95, 20.0);
    // One value is every figure; none is no summary.
    let one = Summary::of(&[0.25]).unwrap();
    assert_eq!(
        (one.min, one.avg, one.max, one.p95, one.count),
        (0.25, 0.25, 0.25, 0.25, 1)
    );
    assert_eq!(Summary::of(&[]), None);
    // An outlier in the top 5% does not move p95.
    let mut spiky = vec![1.0; 19];
    spiky.push(1000.0);
    assert_eq!(Summary::of(&spiky).unwrap().p95, 1.0);
}

#[test]
fn series_and_window_per_label_set() {
    let mut h = MetricHistory::default();
    for i in 0..10u32 {
        let t = T0 + u64::from(i) * 1000;
        h.push("gw", "error_ratio", &route("api"), t, f64::from(i));
        h.push("gw", "error_ratio", &route("web"), t, 0.5);
        h.push("gw", "rps", &route("api"), t, 100.0);
    }
    assert_eq!(h.series_count(), 3);
    let got = h.series("gw", "error_ratio", T0 + 7000);
    assert_eq!(
        got,
        vec![
            (
                route("api"),
                vec![(T0 + 7000, 7.0), (T0 + 8000, 8.0), (T0 + 9000, 9.0)]
            ),
            (
                route("web"),
                vec![(T0 + 7000, 0.5), (T0 + 8000, 0.5), (T0 + 9000, 0.5)]
            ),
        ]
    );
    // Nothing since the future; unknown names are empty, not errors.
    assert!(h.series("gw", "error_ratio", T0 + 10_000).is_empty());
    assert!(h.series("gw", "nope", 0).is_empty());
    assert!(h.series("nope", "rps", 0).is_empty());

    let w = h
        .window("gw", "error_ratio", &route("api"), T0 + 5000)
        .unwrap();
    assert_eq!(
        (w.count, w.min, w.max, w.last, w.avg),
        (5, 5.0, 9.0, 9.0, 7.0)
    );
    assert_eq!(h.window("gw", "error_ratio", &route("x"), 0), None);
    assert_eq!(
        h.window("gw", "error_ratio", &route("api"), T0 + 60_000),
        None
    );
}

#[test]
fn missing_data_is_not_kept() {
    let mut h = MetricHistory::default();
    h.push("gw", "v", &Labels::new(), T0, f64::NAN);
    h.push("gw", "v", &Labels::new(), T0, f64::INFINITY);
    assert_eq!(h.series_count(), 0);
    assert_eq!(h.dropped(), 0);
    assert!(h.series("gw", "v", 0).is_empty());
}

#[test]
fn a_minute_is_rolled_up_once() {
    let mut h = MetricHistory::default();
    let l = route("api");
    // Minute 0: 1, 2, 3, 4; minute 1: 10; minute 3: 7 (minute 2 has nothing).
    for (i, v) in [1.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
        h.push("gw", "p95_ms", &l, T0 + i as u64 * 15_000, v);
    }
    h.push("gw", "p95_ms", &l, T0 + M + 59_999, 10.0);
    h.push("gw", "p95_ms", &l, T0 + 3 * M, 7.0);

    // Minute 0 is not complete until T0 + 60 s.
    assert!(h.take_rollups(T0 + M - 1).is_empty());
    let first = h.take_rollups(T0 + M + 30_000);
    assert_eq!(
        first,
        vec![MinuteRollup {
            monitor: "gw".to_string(),
            value: "p95_ms".to_string(),
            labels: l.clone(),
            minute_unix_ms: T0,
            min: 1.0,
            avg: 2.5,
            max: 4.0,
            p95: 4.0,
            count: 4,
        }]
    );
    // Asked again in the same minute, or a bit later: nothing new.
    assert!(h.take_rollups(T0 + M + 30_000).is_empty());
    assert!(h.take_rollups(T0 + 2 * M - 1).is_empty());
    // Minutes 1 and 3 once each, when complete; a clock going back returns nothing.
    let second = h.take_rollups(T0 + 2 * M);
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].minute_unix_ms, second[0].count, second[0].max),
        (T0 + M, 1, 10.0)
    );
    assert!(h.take_rollups(T0).is_empty());
    let third = h.take_rollups(T0 + 10 * M);
    assert_eq!(third.len(), 1);
    assert_eq!((third[0].minute_unix_ms, third[0].avg), (T0 + 3 * M, 7.0));
    assert!(h.take_rollups(T0 + 10 * M).is_empty());

    // A late point for a minute already rolled up stays out of every rollup.
    h.push("gw", "p95_ms", &l, T0 + 9 * M, 1.0);
    assert!(h.take_rollups(T0 + 11 * M).is_empty());
    // But a new minute still rolls up.
    h.push("gw", "p95_ms", &l, T0 + 11 * M, 2.0);
    assert_eq!(h.take_rollups(T0 + 12 * M).len(), 1);
}

#[test]
fn rollups_come_ordered_by_series_then_minute() {
    let mut h = MetricHistory::default();
    for m in 0..3 {
        for name in ["web", "api"] {
            h.push("gw", "rps", &route(name), T0 + m * M, m as f64);
        }
        h.push("db", "up", &Labels::new(), T0 + m * M, 1.0);
    }
    let got: Vec<(String, Labels, u64)> = h
        .take_rollups(T0 + 3 * M)
        .into_iter()
        .map(|r| (r.monitor, r.labels, r.minute_unix_ms - T0))
        .collect();
    let want: Vec<(String, Labels, u64)> = [
        ("db", Labels::new(), 0),
        ("db", Labels::new(), M),
        ("db", Labels::new(), 2 * M),
        ("gw", route("api"), 0),
        ("gw", route("api"), M),
        ("gw", route("api"), 2 * M),
        ("gw", route("web"), 0),
        ("gw", route("web"), M),
        ("gw", route("web"), 2 * M),
    ]
    .into_iter()
    .map(|(m, l, t)| (m.to_string(), l, t))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn old_points_go_and_quiet_series_are_forgotten() {
    let keep = 10 * M;
    let mut h = MetricHistory::new(keep);
    h.push("gw", "rps", &route("old"), T0, 1.0);
    h.push("gw", "rps", &route("live"), T0, 1.0);
    // Pushing later lets that series' old points go.
    h.push("gw", "rps", &route("live"), T0 + keep + 1, 2.0);
    assert_eq!(
        h.series("gw", "rps", 0)[0],
        (route("live"), vec![(T0 + keep + 1, 2.0)])
    );
    assert_eq!(h.series_count(), 2);
    // "old" has had no point for longer than keep: forgotten once rollups are taken.
    let rolled = h.take_rollups(T0 + keep + 1);
    // Rolled up before forgetting: "old"'s first minute. "live"'s point of that minute went
    // when a point more than keep later arrived, before any rollup was taken.
    assert_eq!(rolled.len(), 1);
    assert_eq!(
        (rolled[0].labels.clone(), rolled[0].minute_unix_ms),
        (route("old"), T0)
    );
    assert_eq!(h.series_count(), 1);
    assert_eq!(h.series("gw", "rps", 0).len(), 1);
    // The forgotten series can come back, counted again.
    h.push("gw", "rps", &route("old"), T0 + keep + 2, 3.0);
    assert_eq!(h.series_count(), 2);
    h.expire(T0 + 3 * keep);
    assert_eq!(h.series_count(), 0);
    assert!(h.series("gw", "rps", 0).is_empty());
    assert_eq!(h.dropped(), 0);
}

#[test]
fn series_cap_drops_and_counts_new_series() {
    let mut h = MetricHistory::with_limits(DEFAULT_KEEP_MS, 2, 100);
    h.push("gw", "rps", &route("a"), T0, 1.0);
    h.push("gw", "rps", &route("b"), T0, 1.0);
    h.push("gw", "rps", &route("c"), T0, 1.0);
    h.push("other", "x", &Labels::new(), T0, 1.0);
    assert_eq!(h.series_count(), 2);
    assert_eq!(h.dropped(), 2);
    // Known series still take points.
    h.push("gw", "rps", &route("a"), T0 + 1, 2.0);
    assert_eq!(h.dropped(), 2);
    assert_eq!(h.series("gw", "rps", 0).len(), 2);
    assert!(h.series("other", "x", 0).is_empty());
    // Room made by forgetting lets a new series in.
    h.expire(T0 + 2 * DEFAULT_KEEP_MS);
    h.push("gw", "rps", &route("c"), T0 + 2 * DEFAULT_KEEP_MS, 1.0);
    assert_eq!(h.series_count(), 1);
}

#[test]
fn points_cap_keeps_the_newest_and_counts() {
    let mut h = MetricHistory::with_limits(DEFAULT_KEEP_MS, 10, 3);
    for i in 0..5u32 {
        h.push("gw", "rps", &route("a"), T0 + u64::from(i), f64::from(i));
    }
    assert_eq!(
        h.series("gw", "rps", 0),
        vec![(
            route("a"),
            vec![(T0 + 2, 2.0), (T0 + 3, 3.0), (T0 + 4, 4.0)]
        )]
    );
    assert_eq!(h.dropped(), 2);
    // A cap of zero keeps nothing and creates no series.
    let mut none = MetricHistory::with_limits(DEFAULT_KEEP_MS, 10, 0);
    none.push("gw", "rps", &route("a"), T0, 1.0);
    assert_eq!((none.series_count(), none.dropped()), (0, 1));
}

#[test]
fn a_point_older_than_the_newest_is_dropped() {
    let mut h = MetricHistory::default();
    h.push("gw", "rps", &route("a"), T0 + 5000, 1.0);
    h.push("gw", "rps", &route("a"), T0 + 4000, 2.0);
    h.push("gw", "rps", &route("a"), T0 + 5000, 3.0);
    assert_eq!(
        h.series("gw", "rps", 0),
        vec![(route("a"), vec![(T0 + 5000, 1.0), (T0 + 5000, 3.0)])]
    );
    assert_eq!(h.dropped(), 1);
}

//! Heartbeats with an injected clock: late only after period + grace, a failure at once, a
//! ping clears it, run durations kept.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A clock the test moves by hand.
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new(start_ms: u64) -> Self {
        TestClock(Arc::new(AtomicU64::new(start_ms)))
    }
    fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || now.load(Ordering::SeqCst))
    }
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

fn spec(period: &str, grace: &str) -> HeartbeatSpec {
    HeartbeatSpec {
        period: period.parse().unwrap(),
        grace: grace.parse().unwrap(),
    }
}

fn value(o: &Outcome, name: &str) -> Option<f64> {
    o.readings
        .iter()
        .find(|r| r.value == name)
        .map(|r| r.number)
}

const T0: u64 = 1_800_000_000_000;

#[tokio::test]
async fn late_only_after_period_plus_grace() {
    let clock = TestClock::new(T0);
    let hb = Heartbeats::new();
    let probe =
        HeartbeatProbe::new(spec("60s", "10s"), "backup", hb.clone(), clock.clock()).unwrap();
    assert_eq!(probe.kind(), "heartbeat");

    // Never pinged: counted from when the monitor was created.
    clock.set(T0 + 70_000);
    let o = probe.run().await;
    assert_eq!(value(&o, "late"), Some(0.0));
    assert_eq!(value(&o, "since_ping_s"), None, "no ping yet");
    assert_eq!(o.error, None);
    clock.set(T0 + 70_001);
    let o = probe.run().await;
    assert_eq!(value(&o, "late"), Some(1.0));
    let err = o.error.unwrap();
    assert!(
        err.contains("no ping since the monitor started 70s ago"),
        "{err}"
    );

    // A ping: on time again, then late exactly after period + grace.
    hb.ping("backup", clock.now()).unwrap();
    let o = probe.run().await;
    assert_eq!(value(&o, "late"), Some(0.0));
    assert_eq!(value(&o, "since_ping_s"), Some(0.0));
    assert_eq!(o.error, None);
    let pinged = clock.now();
    clock.set(pinged + 70_000);
    assert_eq!(value(&probe.run().await, "late"), Some(0.0));
    clock.set(pinged + 75_000);
    let o = probe.run().await;
    assert_eq!(value(&o, "late"), Some(1.0));
    assert_eq!(value(&o, "since_ping_s"), Some(75.0));
    assert_eq!(
        o.error.as_deref(),
        Some("no ping for 75s (period 60s + grace 10s)")
    );
    assert_eq!(value(&o, "failed"), Some(0.0));
}

#[tokio::test]
async fn fail_fires_at_once_and_a_ping_clears_it() {
    let clock = TestClock::new(T0);
    let hb = Heartbeats::new();
    let probe = HeartbeatProbe::new(spec("1h", "0s"), "etl", hb.clone(), clock.clock()).unwrap();
    hb.ping("etl", T0).unwrap();
    clock.set(T0 + 1_000);
    hb.start("etl", clock.now()).unwrap();
    hb.fail("etl", clock.now(), Some("disk full".into()))
        .unwrap();

    let o = probe.run().await;
    assert_eq!(value(&o, "failed"), Some(1.0));
    assert_eq!(value(&o, "late"), Some(0.0));
    assert_eq!(o.error.as_deref(), Some("job reported failure: disk full"));
    assert_eq!(o.detail["last_fail_reason"], "disk full");

    // A retry's start does not clear the failure; its ping does.
    hb.start("etl", clock.now()).unwrap();
    assert_eq!(value(&probe.run().await, "failed"), Some(1.0));
    clock.set(T0 + 5_000);
    hb.ping("etl", clock.now()).unwrap();
    let o = probe.run().await;
    assert_eq!(value(&o, "failed"), Some(0.0));
    assert_eq!(o.error, None);
    assert_eq!(value(&o, "last_duration_ms"), Some(4_000.0));

    // Late and failed together say both.
    hb.fail("etl", clock.now(), None).unwrap();
    clock.set(T0 + 5_000 + 3_600_001);
    let err = probe.run().await.error.unwrap();
    assert!(
        err.starts_with("no ping for 3600s (period 3600s + grace 0s)"),
        "{err}"
    );
    assert!(err.ends_with("; job reported failure"), "{err}");
}

#[test]
fn durations_are_kept_for_the_last_runs() {
    let hb = Heartbeats::new();
    hb.register("job");
    // A ping with no start times nothing.
    hb.ping("job", 10).unwrap();
    assert_eq!(hb.get("job").unwrap().last_duration_ms, None);
    for run in 0..25u64 {
        let start = 1_000 * (run + 1);
        hb.start("job", start).unwrap();
        assert!(hb.get("job").unwrap().running);
        hb.ping("job", start + run).unwrap();
    }
    let s = hb.get("job").unwrap();
    assert_eq!(s.runs_ms.len(), RUNS_KEPT);
    assert_eq!(s.runs_ms.front(), Some(&5));
    assert_eq!(s.runs_ms.back(), Some(&24));
    assert_eq!(s.last_duration_ms, Some(24));
    assert!(!s.running);
    // A failed run is not timed, and ends the run.
    hb.start("job", 100_000).unwrap();
    hb.fail("job", 100_500, None).unwrap();
    hb.ping("job", 101_000).unwrap();
    let s = hb.get("job").unwrap();
    assert_eq!(s.last_duration_ms, Some(24));
    assert_eq!(s.last_start, Some(100_000));
    assert_eq!(s.last_fail, Some(100_500));
    assert_eq!(s.last_ping, Some(101_000));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["runs_ms"].as_array().unwrap().len(), RUNS_KEPT);
    assert_eq!(json["failed"], false);
}

#[test]
fn unknown_names_are_refused() {
    let hb = Heartbeats::new();
    hb.register("nightly");
    let unknown = HeartbeatError::Unknown("nigthly".into());
    assert_eq!(hb.ping("nigthly", 1), Err(unknown.clone()));
    assert_eq!(hb.start("nigthly", 1), Err(unknown.clone()));
    assert_eq!(hb.fail("nigthly", 1, None), Err(unknown));
    assert_eq!(hb.get("nigthly"), None);
    assert_eq!(hb.names(), vec!["nightly".to_string()]);
    // Registering again keeps what is known; unregistering forgets.
    hb.ping("nightly", 5).unwrap();
    hb.register("nightly");
    assert_eq!(hb.get("nightly").unwrap().last_ping, Some(5));
    hb.unregister("nightly");
    assert!(hb.ping("nightly", 6).is_err());
}

#[tokio::test]
async fn an_unregistered_monitor_reports_an_error() {
    let clock = TestClock::new(T0);
    let hb = Heartbeats::new();
    let probe = HeartbeatProbe::new(spec("1m", "0s"), "gone", hb.clone(), clock.clock()).unwrap();
    hb.unregister("gone");
    let o = probe.run().await;
    assert!(o.error.unwrap().contains("no longer registered"));
}

#[test]
fn long_reasons_are_cut() {
    let hb = Heartbeats::new();
    hb.register("j");
    hb.fail("j", 1, Some("é".repeat(REASON_MAX + 50))).unwrap();
    let reason = hb.get("j").unwrap().last_fail_reason.unwrap();
    assert_eq!(reason.chars().count(), REASON_MAX);
}

#[test]
fn spec_is_read_and_checked() {
    let s: HeartbeatSpec = serde_json::from_str(r#"{"period": "1m", "grace": "30s"}"#).unwrap();
    assert_eq!(s.allowed_ms(), 90_000);
    let s: HeartbeatSpec = serde_json::from_str(r#"{"period": "1m"}"#).unwrap();
    assert_eq!(s.grace, Duration::default());
    assert!(serde_json::from_str::<HeartbeatSpec>(r#"{"grace": "1s"}"#).is_err());
    assert!(serde_json::from_str::<HeartbeatSpec>(r#"{"period": 60}"#).is_err());
    assert!(serde_json::from_str::<HeartbeatSpec>(r#"{"period": "1m", "name": "x"}"#).is_err());
    let zero: HeartbeatSpec = serde_json::from_str(r#"{"period": "0s"}"#).unwrap();
    assert_eq!(zero.validate().unwrap_err().field, "period");
    let hb = Heartbeats::new();
    assert!(HeartbeatProbe::new(zero, "x", hb.clone(), system_clock()).is_err());
    let e = HeartbeatProbe::new(spec("1m", "0s"), "", hb, system_clock())
        .err()
        .unwrap();
    assert_eq!(e.field, "name");
    assert!(system_clock()() > T0 - 1_000_000_000_000);
    assert_eq!(seconds("1500ms".parse().unwrap()), "1500ms");
    assert_eq!(seconds("2m".parse().unwrap()), "120s");
}

//! Collects the outcome of every request of a load run into the figures the report needs: an
//! HDR latency histogram for the whole run, counters by status and error kind, and a
//! per-second timeline (with its own small histograms) so a fault's effect shows second by
//! second on the scenario's clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::result::{Errors, LoadStats, Second};
use crate::LabError;

/// Highest latency tracked, µs (one hour); longer ones are recorded as one hour.
const MAX_US: u64 = 3_600_000_000;

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A complete response with this status (body read to its end).
    Status(u16),
    /// No connection could be opened for it.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The connection broke during the exchange.
    Io,
}

impl Outcome {
    fn count(self, errors: &mut Errors) -> bool {
        match self {
            Outcome::Status(s) if s < 400 => return true,
            Outcome::Status(s) if s < 500 => errors.status_4xx += 1,
            Outcome::Status(_) => errors.status_5xx += 1,
            Outcome::Connect => errors.connect += 1,
            Outcome::Timeout => errors.timeout += 1,
            Outcome::Io => errors.io += 1,
        }
        false
    }
}

#[derive(Default)]
struct SecondAcc {
    ok: u64,
    errors: Errors,
    latency: Option<Histogram<u64>>,
}

struct Inner {
    sent: u64,
    ok: u64,
    errors: Errors,
    statuses: BTreeMap<u16, u64>,
    latency: Histogram<u64>,
    latency_sum_us: u128,
    seconds: BTreeMap<u32, SecondAcc>,
    /// Empty template for the per-second histograms (2 significant digits: 1 % is plenty
    /// for one second's p50/p99 and keeps a long run small).
    second_template: Histogram<u64>,
}

/// Thread-safe collector shared by every request task of one load run.
pub(crate) struct Recorder {
    epoch: Instant,
    inner: Mutex<Inner>,
    progress: Option<Arc<AtomicU64>>,
}

impl Recorder {
    pub fn new(epoch: Instant, progress: Option<Arc<AtomicU64>>) -> Result<Recorder, LabError> {
        let hist = |sigfig| {
            Histogram::<u64>::new_with_bounds(1, MAX_US, sigfig)
                .map_err(|e| LabError::Usage(format!("latency histogram: {e}")))
        };
        Ok(Recorder {
            epoch,
            inner: Mutex::new(Inner {
                sent: 0,
                ok: 0,
                errors: Errors::default(),
                statuses: BTreeMap::new(),
                latency: hist(3)?,
                latency_sum_us: 0,
                seconds: BTreeMap::new(),
                second_template: hist(2)?,
            }),
            progress,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the counters half-updated in a way that matters.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The second of the scenario clock `at` falls in.
    pub fn second_of(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    /// One request started (open loop: scheduled).
    pub fn sent(&self) {
        self.lock().sent += 1;
    }

    /// One request ended at `at` after `latency`.
    pub fn record(&self, at: Instant, outcome: Outcome, latency: Duration) {
        let t = self.second_of(at);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        {
            let mut g = self.lock();
            let inner = &mut *g;
            let ok = outcome.count(&mut inner.errors);
            if ok {
                inner.ok += 1;
            }
            let sec = inner.seconds.entry(t).or_default();
            if outcome.count(&mut sec.errors) {
                sec.ok += 1;
            }
            if let Outcome::Status(status) = outcome {
                *inner.statuses.entry(status).or_insert(0) += 1;
                inner.latency.saturating_record(us);
                inner.latency_sum_us += u128::from(us);
                sec.latency
                    .get_or_insert_with(|| Histogram::new_from(&inner.second_template))
                    .saturating_record(us);
            }
        }
        if let Some(p) = &self.progress {
            p.fetch_add(1, Relaxed);
        }
    }

    /// The final figures. `start` is when the run began and `end` when it stopped starting
    /// requests: `duration_s` is the time between them, and the timeline covers every second
    /// from `start` to `end` plus any later second in which a request still completed.
    pub fn finish(&self, start: Instant, end: Instant) -> LoadStats {
        let g = self.lock();
        let duration = end.saturating_duration_since(start);
        let first = self.second_of(start);
        // The second holding the run's last instant (an end exactly on a boundary does not
        // open an empty trailing second).
        let last_sending = self.second_of(end.checked_sub(Duration::from_nanos(1)).unwrap_or(end));
        let last = g
            .seconds
            .keys()
            .next_back()
            .map_or(last_sending, |&t| t.max(last_sending))
            .max(first);
        let timeline = (first..=last)
            .map(|t| match g.seconds.get(&t) {
                Some(acc) => Second {
                    t,
                    ok: acc.ok,
                    errors: acc.errors.clone(),
                    p50_us: acc.latency.as_ref().map_or(0, |h| h.value_at_quantile(0.5)),
                    p99_us: acc
                        .latency
                        .as_ref()
                        .map_or(0, |h| h.value_at_quantile(0.99)),
                },
                None => Second {
                    t,
                    ..Second::default()
                },
            })
            .collect();
        let h = &g.latency;
        let completed = h.len();
        let latency = if completed == 0 {
            crate::result::Latency::default()
        } else {
            crate::result::Latency {
                p50_us: h.value_at_quantile(0.5),
                p90_us: h.value_at_quantile(0.9),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
                mean_us: g.latency_sum_us as f64 / completed as f64,
            }
        };
        let duration_s = duration.as_secs_f64();
        LoadStats {
            sent: g.sent,
            ok: g.ok,
            errors: g.errors.clone(),
            statuses: g.statuses.clone(),
            duration_s,
            ok_per_s: if duration_s > 0.0 {
                g.ok as f64 / duration_s
            } else {
                0.0
            },
            latency,
            timeline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_covers_every_second_and_counts_by_kind() {
        let epoch = Instant::now();
        let rec = Recorder::new(epoch, None).expect("constant histogram bounds");
        let start = epoch + Duration::from_secs(2);
        let ms = Duration::from_millis;
        for _ in 0..4 {
            rec.sent();
        }
        rec.record(start + ms(100), Outcome::Status(200), ms(5));
        rec.record(start + ms(2100), Outcome::Status(503), ms(7));
        rec.record(start + ms(2200), Outcome::Timeout, ms(2000));
        rec.record(start + ms(2300), Outcome::Status(404), ms(1));
        let s = rec.finish(start, start + Duration::from_secs(3));
        assert_eq!(s.sent, 4);
        assert_eq!(s.ok, 1);
        assert_eq!(s.errors.status_5xx, 1);
        assert_eq!(s.errors.status_4xx, 1);
        assert_eq!(s.errors.timeout, 1);
        assert_eq!(s.statuses.get(&200), Some(&1));
        assert_eq!(s.statuses.get(&503), Some(&1));
        let ts: Vec<u32> = s.timeline.iter().map(|x| x.t).collect();
        assert_eq!(ts, vec![2, 3, 4]);
        assert_eq!(s.timeline[0].ok, 1);
        assert_eq!(
            s.timeline[1],
            Second {
                t: 3,
                ..Second::default()
            }
        );
        assert_eq!(s.timeline[2].errors.total(), 3);
        assert!(s.latency.max_us >= 6_000 && s.latency.max_us <= 7_100);
        assert!((s.ok_per_s - 1.0 / 3.0).abs() < 1e-9);
    }
}

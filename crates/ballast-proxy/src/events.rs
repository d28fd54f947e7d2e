//! The bounded log of recent [`Event`]s, and the tap that hands every event to the event sink
//! (the operations store).
//!
//! Emitting never blocks a request (DESIGN.md: the data plane never waits on the control
//! plane): the sink gets each event with `try_send` on a bounded channel, and a full channel
//! drops the event and counts it (`ballast_events_dropped_total{reason="sink_full"}`); the
//! in-memory ring, read by `/api/v1/events`, is skipped and counted when its lock is busy
//! (`reason="log_busy"`). The two are independent: an event missed by one still reaches the
//! other. Sequence numbers are taken before either, so the ring and the store agree on them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use ballast_core::{Event, Stamped};
use tokio::sync::mpsc;

/// Events kept; older ones fall off.
const CAPACITY: usize = 1024;

#[derive(Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Stamped>>,
    next_seq: AtomicU64,
    /// Events the ring missed because its lock was busy.
    pub dropped: AtomicU64,
    /// Where every event also goes (the event sink), once attached.
    tap: OnceLock<mpsc::Sender<Stamped>>,
    /// Events the sink missed because its channel was full (or it had stopped).
    pub tap_dropped: AtomicU64,
}

impl EventLog {
    /// Sends every event from now on to `tx` too. Only the first call attaches; later ones
    /// return false.
    pub fn attach(&self, tx: mpsc::Sender<Stamped>) -> bool {
        self.tap.set(tx).is_ok()
    }

    pub fn emit(&self, event: Event) {
        let at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let seq = self.next_seq.fetch_add(1, Relaxed) + 1;
        let stamped = Stamped {
            seq,
            at_unix_ms,
            event,
        };
        if let Some(tx) = self.tap.get() {
            if tx.try_send(stamped.clone()).is_err() {
                self.tap_dropped.fetch_add(1, Relaxed);
            }
        }
        let Ok(mut ring) = self.ring.try_lock() else {
            self.dropped.fetch_add(1, Relaxed);
            return;
        };
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(stamped);
    }

    /// Events with a sequence number above `after`, oldest first.
    pub fn since(&self, after: u64) -> Vec<Stamped> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().filter(|e| e.seq > after).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_numbers_them() {
        let log = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            log.emit(Event::RetryBudgetExhausted {
                route: format!("r{i}"),
            });
        }
        let all = log.since(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].seq, 6);
        assert_eq!(log.since(all.last().unwrap().seq).len(), 0);
        assert_eq!(log.since(CAPACITY as u64 + 3).len(), 2);
    }

    #[test]
    fn the_tap_gets_every_event_with_the_ring_s_numbers_and_a_full_one_counts() {
        let log = EventLog::default();
        log.emit(Event::RetryBudgetExhausted {
            route: "before".into(),
        });
        let (tx, mut rx) = mpsc::channel(2);
        assert!(log.attach(tx.clone()));
        assert!(!log.attach(tx), "a second tap is refused");
        for route in ["a", "b", "c"] {
            log.emit(Event::RetryBudgetExhausted {
                route: route.into(),
            });
        }
        let first = rx.try_recv().unwrap();
        let second = rx.try_recv().unwrap();
        assert!(rx.try_recv().is_err(), "the third did not fit");
        assert_eq!((first.seq, second.seq), (2, 3));
        assert_eq!(log.tap_dropped.load(Relaxed), 1);
        // The ring still has all four.
        assert_eq!(log.since(0).len(), 4);
        assert_eq!(log.since(0)[1], first);
    }
}

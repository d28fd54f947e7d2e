//! The bounded log of recent [`Event`]s. Emitting never blocks a request: when the log's lock
//! is busy the event is dropped and counted (DESIGN.md: the data plane never waits on the
//! control plane).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use ballast_core::{Event, Stamped};

/// Events kept; older ones fall off.
const CAPACITY: usize = 1024;

#[derive(Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Stamped>>,
    next_seq: AtomicU64,
    pub dropped: AtomicU64,
}

impl EventLog {
    pub fn emit(&self, event: Event) {
        let at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let Ok(mut ring) = self.ring.try_lock() else {
            self.dropped.fetch_add(1, Relaxed);
            return;
        };
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        let seq = self.next_seq.fetch_add(1, Relaxed) + 1;
        ring.push_back(Stamped {
            seq,
            at_unix_ms,
            event,
        });
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
}

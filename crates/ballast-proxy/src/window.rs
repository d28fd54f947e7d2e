//! Two counts over a sliding window of ten buckets (requests and retries, requests and
//! failures). The retry budget and the circuit breaker both need "how many of each in the last
//! N seconds" without a timer and without allocating; a bucket whose slot is older than the
//! window counts as empty and is reused in place.

const BUCKETS: usize = 10;

/// Counts `(a, b)` per slot for the last ten slots. A slot is any monotonic time unit the
/// caller chooses (seconds for the retry budget, window/10 for the breaker).
#[derive(Clone, Default)]
pub struct Window {
    buckets: [(u64, u32, u32); BUCKETS],
}

impl Window {
    /// Adds `a` and `b` to the bucket of `slot`.
    pub fn add(&mut self, slot: u64, a: u32, b: u32) {
        let bucket = &mut self.buckets[(slot % BUCKETS as u64) as usize];
        if bucket.0 != slot {
            *bucket = (slot, 0, 0);
        }
        bucket.1 = bucket.1.saturating_add(a);
        bucket.2 = bucket.2.saturating_add(b);
    }

    /// Totals of `a` and `b` over the ten slots ending at `slot`.
    pub fn totals(&self, slot: u64) -> (u64, u64) {
        self.buckets
            .iter()
            .filter(|b| b.0 + BUCKETS as u64 > slot && b.0 <= slot)
            .fold((0, 0), |(a, b), x| (a + u64::from(x.1), b + u64::from(x.2)))
    }

    /// The newest slot written (0 when none).
    pub fn last_slot(&self) -> u64 {
        self.buckets.iter().map(|b| b.0).max().unwrap_or(0)
    }

    /// Empties the window.
    pub fn clear(&mut self) {
        self.buckets = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn old_slots_leave() {
        let mut w = Window::default();
        w.add(0, 5, 1);
        w.add(9, 1, 1);
        assert_eq!(w.totals(9), (6, 2));
        assert_eq!(w.totals(10), (1, 1), "slot 0 left the window");
        w.add(10, 2, 0);
        assert_eq!(w.totals(10), (3, 1), "slot 10 reused slot 0's bucket");
        assert_eq!(w.last_slot(), 10);
        w.clear();
        assert_eq!(w.totals(10), (0, 0));
    }
}

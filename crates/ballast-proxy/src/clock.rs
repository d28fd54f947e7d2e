//! A cheap monotonic millisecond clock for state that lives in atomics.
//!
//! Ejection deadlines and "up since" instants are stored as milliseconds since a process-wide
//! base so they fit in an `AtomicU64` and can be read on the hot path without locks.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Milliseconds since the process-wide base; never 0 (0 means "never" in the atomics).
pub fn now_ms() -> u64 {
    base().elapsed().as_millis() as u64 + 1
}

/// `now_ms()` shifted by `d`.
pub fn after_ms(d: Duration) -> u64 {
    now_ms() + d.as_millis() as u64
}

//! Per-client rate limits and automatic flood blocking.
//!
//! Each client (its address, or a header value) gets a counter per second. A client is blocked
//! for the cooling-off period when, within the current second, it sends more than the absolute
//! limit, or more than `factor ×` the population's baseline (the lower median per-client rate,
//! of the previous second or of the current one so far, whichever is larger; clients that sent
//! nothing do not count) and more than a small floor, so that a quiet service does not block
//! its first busy user and a population that speeds up together is not blocked at all. While blocked, the client gets 429 with
//! `Retry-After` from the gateway; the upstream never sees it. Allowlisted clients are never
//! blocked. Blocks and unblocks are logged and counted, and the current blocks are listed in
//! `/api/v1/status`.
//!
//! ```text
//!   Allowed --(rate > max_per_second, or rate > max(floor, factor × baseline))--> Blocked(until)
//!   Blocked --(until passes; seen at its next request or status read)-->         Allowed
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use ballast_config::FloodConfig;
use ballast_core::Event;

use crate::events::EventLog;

use crate::clock::now_ms;

const SHARDS: usize = 16;
/// Clients tracked per shard before idle ones are forgotten.
const MAX_PER_SHARD: usize = 8192;

#[derive(Default, Clone)]
struct Client {
    /// The second `count` belongs to.
    sec: u64,
    count: u32,
    /// The previous second's count (for the baseline).
    prev: u32,
    blocked_until_ms: u64,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Blocked: answer 429; the value is the time left, in ms.
    Blocked(u64),
}

/// The flood guard of one route.
pub struct FloodGuard {
    shards: Vec<Mutex<HashMap<String, Client>>>,
    /// The baseline (see [`FloodGuard::baseline`]) and when it was computed (ms).
    baseline: Mutex<(u64, u32)>,
    pub blocks_total: AtomicU64,
    pub refused_total: AtomicU64,
}

impl Default for FloodGuard {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            baseline: Mutex::new((u64::MAX, 0)),
            blocks_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
        }
    }
}

fn shard_of(key: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as usize % SHARDS
}

impl FloodGuard {
    /// Counts a request from `key` and says whether it may pass.
    pub fn check(&self, cfg: &FloodConfig, key: &str, route: &str, events: &EventLog) -> Verdict {
        let now = now_ms();
        let sec = now / 1000;
        let mut baseline = self.baseline(now, 100);
        let mut m = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_PER_SHARD && !m.contains_key(key) {
            m.retain(|_, c| c.sec + 2 >= sec || c.blocked_until_ms > now);
        }
        // A known client (the usual case) costs no allocation.
        if !m.contains_key(key) {
            m.insert(key.to_owned(), Default::default());
        }
        let Some(c) = m.get_mut(key) else {
            return Verdict::Pass;
        };
        if c.blocked_until_ms > now {
            self.refused_total.fetch_add(1, Relaxed);
            return Verdict::Blocked(c.blocked_until_ms - now);
        }
        if c.blocked_until_ms != 0 {
            c.blocked_until_ms = 0;
            tracing::info!(client = %key, "flood block lifted");
        }
        if c.sec != sec {
            c.prev = if c.sec + 1 == sec { c.count } else { 0 };
            c.sec = sec;
            c.count = 0;
        }
        c.count = c.count.saturating_add(1);
        let count = c.count;
        let over_absolute = cfg.max_per_second > 0 && count > cfg.max_per_second;
        let over = |baseline: u32| {
            cfg.factor > 0.0
                && baseline > 0
                && f64::from(count)
                    > (f64::from(baseline) * cfg.factor).max(f64::from(cfg.min_per_second))
        };
        if !over_absolute && !over(baseline) {
            return Verdict::Pass;
        }
        if !over_absolute {
            // About to block against a baseline up to 100 ms old: while a population ramps up
            // that can be far too low. Check against a fresh one first (blocks are rare, so
            // this costs little). The shard lock is released meanwhile: the baseline reads
            // every shard.
            drop(m);
            baseline = self.baseline(now, 10);
            if !over(baseline) {
                return Verdict::Pass;
            }
            m = self.shards[shard_of(key)]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
        }
        if let Some(c) = m.get_mut(key) {
            c.blocked_until_ms = now + cfg.block.as_millis() as u64;
        }
        self.blocks_total.fetch_add(1, Relaxed);
        self.refused_total.fetch_add(1, Relaxed);
        tracing::warn!(
            client = %key,
            rate = count,
            baseline,
            block_ms = cfg.block.as_millis() as u64,
            "flood: client blocked"
        );
        events.emit(Event::ClientBlocked {
            route: route.to_string(),
            client: key.to_string(),
            rate: count,
            baseline,
            block_ms: cfg.block.as_millis() as u64,
        });
        Verdict::Blocked(cfg.block.as_millis() as u64)
    }

    /// The population's baseline: the larger of the previous second's median per-client count
    /// and the current second's so far, reused for up to `max_age_ms`. The current second matters
    /// when traffic ramps up: clients that all speed up together raise the baseline together,
    /// so none of them stands out; only a client far above the others does.
    fn baseline(&self, now_ms: u64, max_age_ms: u64) -> u32 {
        let sec = now_ms / 1000;
        {
            let b = self.baseline.lock().unwrap_or_else(|e| e.into_inner());
            // Never across a second boundary: the current second's counts restart at zero.
            if b.0 / 1000 == sec && now_ms.saturating_sub(b.0) < max_age_ms {
                return b.1;
            }
        }
        let (mut prev, mut cur): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for shard in &self.shards {
            let m = shard.lock().unwrap_or_else(|e| e.into_inner());
            for c in m.values() {
                if c.sec == sec {
                    prev.push(c.prev);
                    cur.push(c.count);
                } else if c.sec + 1 == sec {
                    prev.push(c.count);
                }
            }
        }
        let baseline = lower_median(prev).max(lower_median(cur));
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = (now_ms, baseline);
        baseline
    }

    /// Clients blocked right now, with the time left in ms.
    pub fn blocked(&self) -> Vec<(String, u64)> {
        let now = now_ms();
        let mut out = Vec::new();
        for shard in &self.shards {
            let m = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(
                m.iter()
                    .filter(|(_, c)| c.blocked_until_ms > now)
                    .map(|(k, c)| (k.clone(), c.blocked_until_ms - now)),
            );
        }
        out.sort();
        out
    }
}

/// The lower median of the non-zero counts (with two clients: the quieter one), 0 if none.
fn lower_median(mut counts: Vec<u32>) -> u32 {
    counts.retain(|c| *c > 0);
    counts.sort_unstable();
    counts
        .get(counts.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::lower_median;

    #[test]
    fn lower_median_ignores_idle_clients_and_the_loud_one() {
        assert_eq!(lower_median(vec![]), 0);
        assert_eq!(lower_median(vec![0, 0]), 0);
        assert_eq!(lower_median(vec![10, 2000]), 10);
        assert_eq!(lower_median(vec![100, 100, 2000, 100, 100, 100, 0]), 100);
    }
}

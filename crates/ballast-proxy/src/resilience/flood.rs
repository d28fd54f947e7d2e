//! Per-client rate limits and automatic flood blocking.
//!
//! Each client (its address, or a header value) gets a counter per second. A client is blocked
//! for the cooling-off period when, within the current second, it sends more than the absolute
//! limit, or more than `factor ×` the population's baseline (the median per-client rate of the
//! previous second, among clients that sent anything) and more than a small floor, so that a
//! quiet service does not block its first busy user. While blocked, the client gets 429 with
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
    /// The baseline (median per-client rate) of the last complete second, and that second.
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
    pub fn check(&self, cfg: &FloodConfig, key: &str) -> Verdict {
        let now = now_ms();
        let sec = now / 1000;
        let baseline = self.baseline(sec);
        let mut m = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_PER_SHARD && !m.contains_key(key) {
            m.retain(|_, c| c.sec + 2 >= sec || c.blocked_until_ms > now);
        }
        let c = m.entry(key.to_string()).or_default();
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
        let relative = f64::from(baseline) * cfg.factor;
        let over_absolute = cfg.max_per_second > 0 && c.count > cfg.max_per_second;
        let over_baseline = cfg.factor > 0.0
            && baseline > 0
            && f64::from(c.count) > relative.max(f64::from(cfg.min_per_second));
        if over_absolute || over_baseline {
            c.blocked_until_ms = now + cfg.block.as_millis() as u64;
            self.blocks_total.fetch_add(1, Relaxed);
            self.refused_total.fetch_add(1, Relaxed);
            tracing::warn!(
                client = %key,
                rate = c.count,
                baseline,
                block_ms = cfg.block.as_millis() as u64,
                "flood: client blocked"
            );
            return Verdict::Blocked(cfg.block.as_millis() as u64);
        }
        Verdict::Pass
    }

    /// Median per-client count of the previous second, recomputed once per second.
    fn baseline(&self, sec: u64) -> u32 {
        {
            let b = self.baseline.lock().unwrap_or_else(|e| e.into_inner());
            if b.0 == sec {
                return b.1;
            }
        }
        let mut counts: Vec<u32> = Vec::new();
        for shard in &self.shards {
            let m = shard.lock().unwrap_or_else(|e| e.into_inner());
            counts.extend(m.values().filter_map(|c| match c.sec {
                s if s == sec => Some(c.prev),
                s if s + 1 == sec => Some(c.count),
                _ => None,
            }));
        }
        counts.retain(|c| *c > 0);
        counts.sort_unstable();
        // The lower median: with two clients, the baseline is the quieter one, not the flooder.
        let median = counts
            .get(counts.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or(0);
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = (sec, median);
        median
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

//! Retry budgets: retries may add at most a share of the requests (plus a small floor per
//! second) over a sliding 10-second window, per upstream and per client. Without a budget, a
//! failing fleet receives up to `attempts ×` its normal load exactly when it can least take it.
//!
//! Connect failures are not charged: nothing reached a server, so they add no load to one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::window::Window;

/// Length of the sliding window in seconds (one bucket per second).
const WINDOW_SECS: u64 = 10;
/// Clients tracked per shard before idle ones are forgotten.
const MAX_CLIENTS_PER_SHARD: usize = 4096;
const SHARDS: usize = 16;

/// Requests (`a`) and retries (`b`) per second over the last ten seconds.
#[derive(Clone, Default)]
pub struct Budget {
    window: Window,
}

impl Budget {
    pub fn deposit(&mut self, sec: u64) {
        self.window.add(sec, 1, 0);
    }

    /// Takes one retry if the budget allows it.
    pub fn try_withdraw(&mut self, sec: u64, ratio: f64, min_per_second: u32) -> bool {
        let (requests, retries) = self.window.totals(sec);
        let allowed = f64::from(min_per_second) * WINDOW_SECS as f64 + ratio * requests as f64;
        if (retries + 1) as f64 <= allowed {
            self.window.add(sec, 0, 1);
            true
        } else {
            false
        }
    }

    fn last_second(&self) -> u64 {
        self.window.last_slot()
    }
}

/// Seconds since the process's budget epoch.
pub fn now_sec() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs()
}

/// One budget shared by every request to an upstream.
#[derive(Default)]
pub struct RetryBudget {
    window: Mutex<Budget>,
}

impl RetryBudget {
    pub fn deposit(&self) {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .deposit(now_sec());
    }

    pub fn try_withdraw(&self, ratio: f64, min_per_second: u32) -> bool {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_withdraw(now_sec(), ratio, min_per_second)
    }
}

/// One budget per client address, in shards so clients do not contend on one lock.
pub struct ClientBudgets {
    shards: Vec<Mutex<HashMap<IpAddr, Budget>>>,
}

impl Default for ClientBudgets {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl ClientBudgets {
    fn shard(&self, ip: IpAddr) -> &Mutex<HashMap<IpAddr, Budget>> {
        let h = match ip {
            IpAddr::V4(v) => u32::from(v) as usize,
            IpAddr::V6(v) => (u128::from(v) as usize) ^ ((u128::from(v) >> 64) as usize),
        };
        &self.shards[h.wrapping_mul(0x9E37_79B9) % SHARDS]
    }

    pub fn deposit(&self, ip: IpAddr) {
        let sec = now_sec();
        let mut m = self.shard(ip).lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_CLIENTS_PER_SHARD && !m.contains_key(&ip) {
            // Forget clients idle for a whole window: they have nothing left in it.
            m.retain(|_, w| w.last_second() + WINDOW_SECS > sec);
            if m.len() >= MAX_CLIENTS_PER_SHARD {
                return;
            }
        }
        m.entry(ip).or_default().deposit(sec);
    }

    pub fn try_withdraw(&self, ip: IpAddr, ratio: f64, min_per_second: u32) -> bool {
        let sec = now_sec();
        let mut m = self.shard(ip).lock().unwrap_or_else(|e| e.into_inner());
        m.entry(ip)
            .or_default()
            .try_withdraw(sec, ratio, min_per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn floor_then_share() {
        let mut w = Budget::default();
        // No requests yet: only the floor (1/s over 10 s = 10 retries).
        let granted = (0..20).filter(|_| w.try_withdraw(0, 0.1, 1)).count();
        assert_eq!(granted, 10);
        // 200 requests add 10% = 20 more.
        for _ in 0..200 {
            w.deposit(1);
        }
        let granted = (0..50).filter(|_| w.try_withdraw(1, 0.1, 1)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let mut w = Budget::default();
        for _ in 0..100 {
            w.deposit(0);
        }
        assert!((0..10).all(|_| w.try_withdraw(0, 0.1, 0)));
        assert!(!w.try_withdraw(0, 0.1, 0));
        // Ten seconds later, both requests and retries have left the window.
        assert!(!w.try_withdraw(10, 0.1, 0));
        for _ in 0..10 {
            w.deposit(10);
        }
        assert!(w.try_withdraw(10, 0.1, 0));
        assert!(!w.try_withdraw(10, 0.1, 0));
    }
}

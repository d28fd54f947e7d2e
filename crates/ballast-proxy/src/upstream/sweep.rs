//! The gateway's sweeper: one task that, on a short period, closes pooled upstream connections
//! idle past their pool's `idle_timeout` and announces passive ejections that ran out.
//!
//! Why a sweeper and not a timer per idle connection: a timer would be armed every time a
//! response hands its connection back to the pool and disarmed every time a request takes one
//! — two timer-wheel operations (and a spawned task or a waker) per request on the hot path.
//! The sweeper costs the request path nothing: `put`/`take` stay a push/pop under the pool's
//! lock, and the sweeper takes each lock once per period to cut the expired prefix (idle
//! connections are kept oldest first). Its period is `min(1 s, smallest idle_timeout / 4)`, so
//! a connection is closed at most a quarter of its timeout late, and an expired ejection is
//! announced within a second.
//!
//! The task reads the gateway's current upstreams on every round, so it needs no restart on a
//! reload: a new config's pools are swept from the next round on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Upstream;
use crate::clock::now_ms;

/// Longest time between two rounds.
const MAX_PERIOD: Duration = Duration::from_secs(1);
/// Shortest time between two rounds, however small an `idle_timeout` is.
const MIN_PERIOD: Duration = Duration::from_millis(20);

/// The upstreams in force, or `None` once the gateway is gone (the task then ends).
pub type Upstreams = Option<Arc<HashMap<String, Arc<Upstream>>>>;

/// How long to wait before the next round over `upstreams`.
pub fn period(upstreams: &HashMap<String, Arc<Upstream>>) -> Duration {
    upstreams
        .values()
        .map(|u| u.config.pool.idle_timeout / 4)
        .fold(MAX_PERIOD, Duration::min)
        .max(MIN_PERIOD)
}

/// One round over every server of every upstream.
pub fn round(upstreams: &HashMap<String, Arc<Upstream>>) {
    let now = now_ms();
    for u in upstreams.values() {
        u.sweep(now);
    }
}

/// Starts the sweeper; `current` returns the upstreams in force at each round.
pub fn spawn(current: impl Fn() -> Upstreams + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some(ups) = current() else { return };
            round(&ups);
            let wait = period(&ups);
            drop(ups);
            tokio::time::sleep(wait).await;
        }
    })
}

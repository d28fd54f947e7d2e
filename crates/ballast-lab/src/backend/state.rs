//! What one backend process shares between its connections: the current knobs (with the
//! body and concurrency gate derived from them) and the counters the harness reads.
//!
//! The knobs live in a `watch` channel so a request hung by `hang` wakes as soon as the
//! harness clears it, and every request reads one consistent snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};

use super::knobs::Knobs;

/// The backend's counters, as `GET /_lab/stats` returns them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    pub name: String,
    /// Application requests received (everything but `/healthz` and `/_lab/*`).
    pub requests: u64,
    /// `/healthz` requests received.
    pub health_checks: u64,
    /// Application requests answered with the injected error status.
    pub errors_sent: u64,
    /// Application requests being served right now (past the concurrency gate).
    pub in_service: u64,
    /// Application requests waiting for a slot under `max_concurrency`.
    #[serde(default)]
    pub queued: u64,
}

/// The knobs plus what is derived from them once, not per request.
pub(crate) struct Active {
    pub knobs: Knobs,
    /// The response body for successful application requests.
    pub body: Bytes,
    /// FIFO gate for `max_concurrency` (tokio's semaphore is fair).
    pub gate: Option<Arc<Semaphore>>,
}

impl Active {
    fn new(knobs: Knobs, previous: Option<&Active>) -> Active {
        let body = Bytes::from(
            b"ok\n"
                .iter()
                .cycle()
                .take(knobs.size)
                .copied()
                .collect::<Vec<u8>>(),
        );
        // Keep the same gate when the limit did not change, so requests already waiting keep
        // their place instead of racing newcomers on a fresh semaphore.
        let gate = match (knobs.max_concurrency, previous) {
            (None, _) => None,
            (Some(n), Some(prev)) if prev.knobs.max_concurrency == Some(n) => prev.gate.clone(),
            (Some(n), _) => Some(Arc::new(Semaphore::new(n))),
        };
        Active { knobs, body, gate }
    }
}

pub(crate) struct State {
    pub name: String,
    /// `name` as the `x-backend` header value (`None` if it cannot be one).
    pub name_value: Option<HeaderValue>,
    pub requests: AtomicU64,
    pub health_checks: AtomicU64,
    pub errors_sent: AtomicU64,
    pub in_service: AtomicU64,
    pub queued: AtomicU64,
    active: watch::Sender<Arc<Active>>,
}

impl State {
    pub fn new(name: String) -> State {
        State {
            name_value: HeaderValue::from_str(&name).ok(),
            name,
            requests: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            errors_sent: AtomicU64::new(0),
            in_service: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            active: watch::Sender::new(Arc::new(Active::new(Knobs::default(), None))),
        }
    }

    /// The knobs in force now.
    pub fn active(&self) -> Arc<Active> {
        self.active.borrow().clone()
    }

    /// Replaces every knob (already validated).
    pub fn set_knobs(&self, knobs: Knobs) {
        self.active
            .send_modify(|cur| *cur = Arc::new(Active::new(knobs, Some(cur))));
    }

    /// Returns once `hang` is off (at once when it already is).
    pub async fn unhung(&self) {
        let mut rx = self.active.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|a| !a.knobs.hang).await;
    }

    pub fn stats(&self) -> BackendStats {
        BackendStats {
            name: self.name.clone(),
            requests: self.requests.load(Relaxed),
            health_checks: self.health_checks.load(Relaxed),
            errors_sent: self.errors_sent.load(Relaxed),
            in_service: self.in_service.load(Relaxed),
            queued: self.queued.load(Relaxed),
        }
    }

    /// Zeroes the counters (the gauges `in_service` and `queued` are left alone: they count
    /// requests still in flight).
    pub fn reset(&self) {
        self.requests.store(0, Relaxed);
        self.health_checks.store(0, Relaxed);
        self.errors_sent.store(0, Relaxed);
    }
}

/// Counts one unit in a gauge for as long as it lives, so a request dropped midway (client
/// gone) still leaves the gauge right.
pub(crate) struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    pub fn enter(gauge: &'a AtomicU64) -> Gauge<'a> {
        gauge.fetch_add(1, Relaxed);
        Gauge(gauge)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

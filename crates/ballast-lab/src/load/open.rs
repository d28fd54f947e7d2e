//! Open-loop load: requests are scheduled at a constant rate whatever the target does, as
//! real independent users arrive, and each one's latency runs from the moment it was
//! scheduled (less at most 2 ms of the generator's own timer lag). When the target slows
//! down, requests queue for a connection and that wait is part of their latency (no
//! coordinated omission); nothing is dropped or skipped.
//!
//! HTTP/1.1 uses a pool of keep-alive connections opened on demand up to `max_connections`,
//! one request at a time each. h2c multiplexes up to `max_connections` concurrent streams over
//! a few shared connections.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::client::conn::http2;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::conn::{Conn, Endpoint, Phase, SendError};
use super::recorder::{Outcome, Recorder};
use super::{LoadSpec, Protocol};

/// HTTP/2 connections the open loop spreads its streams over.
const H2_CONNECTIONS: usize = 4;
/// Lateness of the scheduler's own timer not counted as latency (tokio's timer has a 1 ms
/// resolution).
const TIMER_SLACK: Duration = Duration::from_millis(2);
/// Grace given to request tasks past their own deadlines before they are abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

type H2Sender = http2::SendRequest<http_body_util::Empty<bytes::Bytes>>;

/// Runs the open loop from `start`; returns when it stopped scheduling (every request has been recorded
/// by then).
pub(crate) async fn run(
    spec: &LoadSpec,
    rate: f64,
    start: Instant,
    endpoint: Endpoint,
    rec: Arc<Recorder>,
) -> Instant {
    let pool = match endpoint.protocol {
        Protocol::Http1 => Pool::H1(H1Pool {
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(spec.max_connections),
        }),
        Protocol::H2c => Pool::H2(H2Pool {
            conns: (0..H2_CONNECTIONS.min(spec.max_connections))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            streams: Semaphore::new(spec.max_connections),
        }),
    };
    let shared = Arc::new(Shared {
        endpoint,
        pool,
        rec,
        timeout: spec.request_timeout,
    });

    let end = start + spec.duration;
    let interval = 1.0 / rate;
    let mut tasks = JoinSet::new();
    let mut i: u64 = 0;
    loop {
        let intended = start + Duration::from_secs_f64(i as f64 * interval);
        if intended >= end {
            break;
        }
        if intended > Instant::now() {
            tokio::time::sleep_until(intended.into()).await;
        }
        // The timer wakes the scheduler on millisecond ticks, so requests go out up to a
        // millisecond or so after their time through no fault of the target. That much is
        // forgiven; any further lag (the generator falling behind) counts as latency.
        let late = Instant::now().saturating_duration_since(intended);
        shared.rec.sent();
        tasks.spawn(request(shared.clone(), intended + late.min(TIMER_SLACK)));
        i += 1;
        while tasks.try_join_next().is_some() {}
    }
    tokio::time::sleep_until(end.into()).await;
    let sending_end = Instant::now();

    // Every task ends by its own deadline (scheduled time + request timeout); the grace only
    // guards against a task that somehow does not.
    let drain_deadline = sending_end + spec.request_timeout + DRAIN_GRACE;
    while let Ok(Some(_)) = tokio::time::timeout_at(drain_deadline.into(), tasks.join_next()).await
    {
    }
    if !tasks.is_empty() {
        let stuck = tasks.len();
        tasks.abort_all();
        let now = Instant::now();
        for _ in 0..stuck {
            shared.rec.record(
                now,
                Outcome::Timeout,
                now.saturating_duration_since(sending_end),
            );
        }
    }
    sending_end
}

struct Shared {
    endpoint: Endpoint,
    pool: Pool,
    rec: Arc<Recorder>,
    timeout: Duration,
}

/// One scheduled request, from its intended send time to its outcome.
async fn request(shared: Arc<Shared>, intended: Instant) {
    // Everything from here on counts: waiting for a connection, connecting, the exchange.
    let deadline = intended + shared.timeout;
    let phase = Phase::default();
    let result = tokio::time::timeout_at(
        deadline.into(),
        shared.pool.request(&shared.endpoint, &phase),
    )
    .await;
    let outcome = result.unwrap_or_else(|_| phase.timed_out());
    let now = Instant::now();
    shared
        .rec
        .record(now, outcome, now.saturating_duration_since(intended));
}

enum Pool {
    H1(H1Pool),
    H2(H2Pool),
}

impl Pool {
    async fn request(&self, endpoint: &Endpoint, phase: &Phase) -> Outcome {
        match self {
            Pool::H1(p) => p.request(endpoint, phase).await,
            Pool::H2(p) => p.request(endpoint, phase).await,
        }
    }
}

/// HTTP/1.1 keep-alive connections. A request holds one of `slots` while it uses a
/// connection (or opens one), so at most `max_connections` exist: a new connection is only
/// opened when no idle one is left, i.e. when every existing one is held by a slot.
struct H1Pool {
    idle: Mutex<Vec<Conn>>,
    /// Fair (FIFO): queued requests get a connection in the order they were scheduled.
    slots: Semaphore,
}

impl H1Pool {
    fn take_idle(&self) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put_idle(&self, conn: Conn) {
        if !conn.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }

    async fn request(&self, endpoint: &Endpoint, phase: &Phase) -> Outcome {
        // The semaphore is never closed.
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome::Io;
        };
        let (outcome, kept) = super::conn::exchange(endpoint, phase, || self.take_idle()).await;
        if let Some(conn) = kept {
            self.put_idle(conn);
        }
        outcome
    }
}

/// A few shared HTTP/2 connections, each (re)opened by the first request that finds it
/// missing or closed. `streams` caps the requests in flight.
struct H2Pool {
    conns: Vec<tokio::sync::Mutex<Option<H2Sender>>>,
    next: AtomicUsize,
    streams: Semaphore,
}

impl H2Pool {
    async fn request(&self, endpoint: &Endpoint, phase: &Phase) -> Outcome {
        let Ok(_stream) = self.streams.acquire().await else {
            return Outcome::Io;
        };
        let Some(slot) = self
            .conns
            .get(self.next.fetch_add(1, Relaxed) % self.conns.len().max(1))
        else {
            return Outcome::Io;
        };
        let mut retried = false;
        loop {
            let (sender, fresh) = {
                let mut guard = slot.lock().await;
                match guard.as_ref() {
                    Some(s) if !s.is_closed() => (s.clone(), false),
                    _ => {
                        *guard = None;
                        phase.connecting(true);
                        let opened = endpoint.open_h2().await;
                        phase.connecting(false);
                        match opened {
                            Ok(s) => {
                                *guard = Some(s.clone());
                                (s, true)
                            }
                            Err(outcome) => return outcome,
                        }
                    }
                }
            };
            let mut conn = Conn::H2(sender);
            match conn.send(endpoint.request()).await {
                Ok(status) => return Outcome::Status(status),
                Err(e) => {
                    if conn.is_closed() {
                        let mut guard = slot.lock().await;
                        if guard.as_ref().is_some_and(|s| s.is_closed()) {
                            *guard = None;
                        }
                    }
                    if e == SendError::Unsent && !fresh && !retried {
                        retried = true;
                        continue;
                    }
                    return Outcome::Io;
                }
            }
        }
    }
}

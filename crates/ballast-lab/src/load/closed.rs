//! Closed-loop load: a fixed number of connections, each sending its next request as soon as
//! the previous one completes. It measures the throughput a target sustains at a given
//! concurrency; latency runs from each request's actual start (including a reconnect when the
//! previous connection broke).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::conn::{Conn, Endpoint, Phase};
use super::recorder::{Outcome, Recorder};
use super::LoadSpec;

/// Pause after a request that failed without a response (refused, reset), so a connection
/// facing a dead target does not spin at full CPU and drown the run in millions of errors.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);

/// Runs the closed loop from `start`; returns when the connections stopped starting requests (every
/// request has been recorded by then).
pub(crate) async fn run(
    spec: &LoadSpec,
    connections: usize,
    start: Instant,
    endpoint: Endpoint,
    rec: Arc<Recorder>,
) -> Instant {
    let endpoint = Arc::new(endpoint);
    let end = start + spec.duration;
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        workers.spawn(worker(
            endpoint.clone(),
            rec.clone(),
            end,
            spec.request_timeout,
        ));
    }
    while workers.join_next().await.is_some() {}
    end
}

async fn worker(endpoint: Arc<Endpoint>, rec: Arc<Recorder>, end: Instant, timeout: Duration) {
    let mut conn: Option<Conn> = None;
    while Instant::now() < end {
        rec.sent();
        let began = Instant::now();
        let phase = Phase::default();
        let result = tokio::time::timeout(timeout, exchange(&endpoint, &mut conn, &phase)).await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(_) => {
                // The connection has a request in flight: it cannot be reused.
                conn = None;
                phase.timed_out()
            }
        };
        let now = Instant::now();
        rec.record(now, outcome, now.saturating_duration_since(began));
        if matches!(outcome, Outcome::Connect | Outcome::Io) && now < end {
            tokio::time::sleep(FAILURE_PAUSE.min(end - now)).await;
        }
    }
}

/// One request on the worker's connection, opening one first when there is none.
async fn exchange(endpoint: &Endpoint, conn: &mut Option<Conn>, phase: &Phase) -> Outcome {
    let (outcome, kept) = super::conn::exchange(endpoint, phase, || conn.take()).await;
    *conn = kept.filter(|c| !c.is_closed());
    outcome
}

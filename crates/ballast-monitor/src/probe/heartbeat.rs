//! The `heartbeat` probe and the shared record of batch jobs' pings.
//!
//! It exists because a batch job that silently stops running is only noticed by its absence:
//! the job calls `POST /api/v1/heartbeat/{name}` when it succeeds (`/start` when it begins,
//! `/fail` when it fails), and the probe reports it `late` once no ping came for `period +
//! grace`, and `failed` at once on a failure. The admin API writes into [`Heartbeats`]; each
//! `kind = "heartbeat"` monitor registers its name there and reads it on its interval.
//!
//! Readings: `late` and `failed` (1 or 0), `since_ping_s` once there was a ping, and
//! `last_duration_ms` (from `/start` to the ping that ended the run) once a run was timed.
//! A job that never pinged is late counted from when its monitor was created. `failed` stays
//! 1 from a `/fail` until the next ping (a retry's `/start` does not clear it).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_core::{Duration, Labels};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{BoxFuture, Outcome, Probe, SpecError};

/// How many run durations are kept per job.
pub const RUNS_KEPT: usize = 20;
/// The longest failure reason kept, in characters; a longer one is cut.
pub const REASON_MAX: usize = 1000;

/// The current time in milliseconds since the Unix epoch; injected so tests control time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    })
}

/// Why a heartbeat was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeartbeatError {
    /// No heartbeat monitor has this name: a job's typo must not vanish silently.
    #[error("no heartbeat monitor is named `{0}`")]
    Unknown(String),
}

/// What is known of one job, as the API shows it. Times are milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeartbeatStatus {
    pub last_ping: Option<u64>,
    pub last_start: Option<u64>,
    pub last_fail: Option<u64>,
    pub last_fail_reason: Option<String>,
    /// From the last `/start` to the ping that ended that run.
    pub last_duration_ms: Option<u64>,
    /// The last [`RUNS_KEPT`] run durations, oldest first.
    pub runs_ms: VecDeque<u64>,
    /// A `/fail` came and no ping since.
    pub failed: bool,
    /// A `/start` came and neither a ping nor a `/fail` since.
    pub running: bool,
}

/// The heartbeats of every registered job; cheap to clone, shared by the API and the probes.
#[derive(Clone, Default)]
pub struct Heartbeats {
    inner: Arc<Mutex<HashMap<String, HeartbeatStatus>>>,
}

impl std::fmt::Debug for Heartbeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeats")
            .field("jobs", &self.lock().len())
            .finish()
    }
}

impl Heartbeats {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HeartbeatStatus>> {
        // The map holds plain values each updated in one step; a panic elsewhere cannot leave
        // one half-written, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts heartbeats for `name` from now on. Registering again keeps what is known (a
    /// config reload does not forget the last ping).
    pub fn register(&self, name: &str) {
        self.lock().entry(name.to_string()).or_default();
    }

    /// Forgets a job whose monitor was removed.
    pub fn unregister(&self, name: &str) {
        self.lock().remove(name);
    }

    fn update<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut HeartbeatStatus) -> T,
    ) -> Result<T, HeartbeatError> {
        let mut jobs = self.lock();
        let status = jobs
            .get_mut(name)
            .ok_or_else(|| HeartbeatError::Unknown(name.to_string()))?;
        Ok(f(status))
    }

    /// A run succeeded. Ends a started run, recording its duration, and clears `failed`.
    pub fn ping(&self, name: &str, now_ms: u64) -> Result<(), HeartbeatError> {
        self.update(name, |s| {
            if s.running {
                if let Some(start) = s.last_start {
                    let took = now_ms.saturating_sub(start);
                    s.last_duration_ms = Some(took);
                    if s.runs_ms.len() >= RUNS_KEPT {
                        s.runs_ms.pop_front();
                    }
                    s.runs_ms.push_back(took);
                }
            }
            s.last_ping = Some(now_ms);
            s.running = false;
            s.failed = false;
        })
    }

    /// A run began.
    pub fn start(&self, name: &str, now_ms: u64) -> Result<(), HeartbeatError> {
        self.update(name, |s| {
            s.last_start = Some(now_ms);
            s.running = true;
        })
    }

    /// A run failed; `reason` is kept, cut to [`REASON_MAX`] characters.
    pub fn fail(
        &self,
        name: &str,
        now_ms: u64,
        reason: Option<String>,
    ) -> Result<(), HeartbeatError> {
        let reason = reason.map(|r| match r.char_indices().nth(REASON_MAX) {
            Some((cut, _)) => r.get(..cut).unwrap_or_default().to_string(),
            None => r,
        });
        self.update(name, |s| {
            s.last_fail = Some(now_ms);
            s.last_fail_reason = reason;
            s.failed = true;
            s.running = false;
        })
    }

    /// What is known of `name`; `None` when it is not registered.
    pub fn get(&self, name: &str) -> Option<HeartbeatStatus> {
        self.lock().get(name).cloned()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }
}

/// The kind-specific keys of a `kind = "heartbeat"` monitor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    /// How often the job is expected to ping.
    pub period: Duration,
    /// How much later than `period` a ping may come before the job is late.
    #[serde(default)]
    pub grace: Duration,
}

impl HeartbeatSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.period.is_zero() {
            return Err(SpecError::new("period", "must be more than 0s"));
        }
        Ok(())
    }

    fn allowed_ms(&self) -> u64 {
        let ms = |d: Duration| u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX);
        ms(self.period).saturating_add(ms(self.grace))
    }
}

/// The `heartbeat` probe of one job.
pub struct HeartbeatProbe {
    spec: HeartbeatSpec,
    name: String,
    heartbeats: Heartbeats,
    clock: Clock,
    /// When the monitor was created: lateness counts from here until the first ping.
    registered_ms: u64,
}

impl HeartbeatProbe {
    /// Builds the probe for the monitor `name` and registers `name` in `heartbeats`.
    pub fn new(
        spec: HeartbeatSpec,
        name: &str,
        heartbeats: Heartbeats,
        clock: Clock,
    ) -> Result<HeartbeatProbe, SpecError> {
        spec.validate()?;
        if name.is_empty() {
            return Err(SpecError::new("name", "a heartbeat monitor needs a name"));
        }
        heartbeats.register(name);
        let registered_ms = clock();
        Ok(HeartbeatProbe {
            spec,
            name: name.to_string(),
            heartbeats,
            clock,
            registered_ms,
        })
    }

    /// One evaluation at `now_ms`.
    pub fn check(&self, now_ms: u64) -> Outcome {
        let Some(status) = self.heartbeats.get(&self.name) else {
            return Outcome::failed(format!("heartbeat `{}` is no longer registered", self.name));
        };
        let mut out = Outcome::default();
        let since = status.last_ping.unwrap_or(self.registered_ms);
        let silent_ms = now_ms.saturating_sub(since);
        let late = silent_ms > self.spec.allowed_ms();
        out.push("late", Labels::new(), flag(late));
        out.push("failed", Labels::new(), flag(status.failed));
        if status.last_ping.is_some() {
            out.push("since_ping_s", Labels::new(), silent_ms as f64 / 1000.0);
        }
        if let Some(d) = status.last_duration_ms {
            out.push("last_duration_ms", Labels::new(), d as f64);
        }
        let mut errors = Vec::new();
        if late {
            let window = format!(
                "period {} + grace {}",
                seconds(self.spec.period),
                seconds(self.spec.grace)
            );
            let secs = silent_ms / 1000;
            errors.push(match status.last_ping {
                Some(_) => format!("no ping for {secs}s ({window})"),
                None => format!("no ping since the monitor started {secs}s ago ({window})"),
            });
        }
        if status.failed {
            errors.push(match &status.last_fail_reason {
                Some(r) if !r.is_empty() => format!("job reported failure: {r}"),
                _ => "job reported failure".to_string(),
            });
        }
        if !errors.is_empty() {
            out.error = Some(errors.join("; "));
        }
        out.detail = serde_json::to_value(&status).unwrap_or(serde_json::Value::Null);
        out
    }
}

/// A duration in the same unit as the silence it is compared with: `90s`, or `1500ms`.
fn seconds(d: Duration) -> String {
    let ms = d.get().as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Probe for HeartbeatProbe {
    fn kind(&self) -> &'static str {
        "heartbeat"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        let now = (self.clock)();
        Box::pin(std::future::ready(self.check(now)))
    }
}

#[cfg(test)]
mod tests;

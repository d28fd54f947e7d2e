//! The monitoring engine at run time: one task per monitor runs its probe on its interval,
//! bounded by the monitor's timeout and a limit on probes running at once, and hands each
//! result to the [`Book`], whose transitions leave as events and records to save.
//!
//! Isolation: each run is its own task, so a probe that hangs is abandoned at its timeout
//! (reported `timed_out`, its `up` 0) and one that panics is reported as failed; neither
//! holds up another monitor. Nothing here is on the data plane's request path: the gateway
//! probe reads counters, and what the engine produces leaves over bounded channels with
//! `try_send` (a full channel drops and counts, see [`Engine::dropped`]).

pub mod book;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ballast_core::{Ack, AlertRecord, AlertView, Event, Labels, MinuteRollup, Silence};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::history::MetricHistory;
use crate::noise::{
    Dependencies, InhibitError, MaintenanceError, MaintenanceSet, NoiseControl, SilenceSet,
};
use crate::plan::Plan;
use crate::probe::gateway::{GatewayProbe, GatewaySource};
use crate::probe::heartbeat::{system_clock, HeartbeatProbe, Heartbeats};
use crate::probe::host::HostProbe;
use crate::probe::process::ProcessProbe;
use crate::probe::{dns, http, journey, prometheus, tcp, tls};
use crate::probe::{Outcome, Probe, ProbeSpec, SpecError};
pub use book::{Book, BookError, Recorded, RunCounts, RunResult};

/// Probes running at once, across every monitor.
pub const CONCURRENT_PROBES: usize = 16;

/// What probes need from the rest of the process.
#[derive(Clone, Default)]
pub struct ProbeEnv {
    /// The gateway's status and counters (`kind = "gateway"`).
    pub gateway: Option<GatewaySource>,
    /// Pings pushed by batch jobs (`kind = "heartbeat"`).
    pub heartbeats: Heartbeats,
}

/// Where the engine's output goes.
pub struct Outputs {
    pub events: mpsc::Sender<Event>,
    pub saves: mpsc::Sender<AlertRecord>,
    /// Each completed minute of every series, once ([`ROLLUP_EVERY`]).
    pub rollups: mpsc::Sender<Vec<MinuteRollup>>,
}

/// How often completed minutes are rolled up and handed on.
pub const ROLLUP_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Book(#[from] BookError),
    #[error("monitor {monitor:?}: {error}")]
    Probe { monitor: String, error: SpecError },
    #[error(transparent)]
    Maintenance(#[from] MaintenanceError),
    #[error(transparent)]
    Dependencies(#[from] InhibitError),
}

struct Shared {
    book: Mutex<Book>,
    /// Every reading of the last hour, for windows, charts and the per-minute rollups.
    history: Mutex<MetricHistory>,
    noise: Mutex<NoiseControl>,
    outputs: Outputs,
    dropped: AtomicU64,
    wake: Mutex<BTreeMap<String, Arc<Notify>>>,
    env: ProbeEnv,
    limit: Arc<Semaphore>,
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn history(&self) -> MutexGuard<'_, MetricHistory> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, recorded: Recorded) {
        for e in recorded.events {
            if self.outputs.events.try_send(e).is_err() {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
        for r in recorded.save {
            if self.outputs.saves.try_send(r).is_err() {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The running engine; dropping it does not stop it, [`Engine::stop`] does.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// The monitors' tasks (replaced on a reload).
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The rollup task (runs until [`Engine::shutdown`]).
    rollup: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Builds the probe a monitor describes.
pub fn build_probe(
    def: &crate::plan::MonitorDef,
    env: &ProbeEnv,
) -> Result<Arc<dyn Probe>, SpecError> {
    Ok(match &def.probe {
        ProbeSpec::Gateway(s) => {
            let source = env
                .gateway
                .clone()
                .ok_or_else(|| SpecError::new("kind", "no gateway runs in this process"))?;
            Arc::new(GatewayProbe::new(s.clone(), source)?)
        }
        ProbeSpec::Host(s) => Arc::new(HostProbe::new(s.clone())?),
        ProbeSpec::Process(s) => Arc::new(ProcessProbe::new(s.clone())?),
        ProbeSpec::Heartbeat(s) => Arc::new(HeartbeatProbe::new(
            s.clone(),
            &def.name,
            env.heartbeats.clone(),
            system_clock(),
        )?),
        ProbeSpec::Http(s) => Arc::new(http::HttpProbe::new(s.clone())?),
        ProbeSpec::Tcp(s) => Arc::new(tcp::TcpProbe::new(s.clone())?),
        ProbeSpec::Dns(s) => Arc::new(dns::DnsProbe::new(s.clone())?),
        ProbeSpec::Tls(s) => Arc::new(tls::TlsProbe::new(s.clone())?),
        ProbeSpec::Journey(s) => Arc::new(journey::JourneyProbe::new(s.clone())?),
        ProbeSpec::Prometheus(s) => Arc::new(prometheus::PrometheusProbe::new(s.clone())?),
    })
}

impl Engine {
    /// Starts every monitor of `plan`. `restored` are the alerts the store kept (firing ones
    /// resume without being announced again), `silences` the silences it kept.
    pub fn start(
        plan: &Plan,
        env: &ProbeEnv,
        outputs: Outputs,
        restored: Vec<AlertRecord>,
        silences: Vec<Silence>,
    ) -> Result<Engine, EngineError> {
        let (book, noise, probes) = prepare(plan, env, restored, silences)?;
        let shared = Arc::new(Shared {
            book: Mutex::new(book),
            history: Mutex::new(MetricHistory::default()),
            noise: Mutex::new(noise),
            outputs,
            dropped: AtomicU64::new(0),
            wake: Mutex::new(BTreeMap::new()),
            env: env.clone(),
            limit: Arc::new(Semaphore::new(CONCURRENT_PROBES)),
        });
        let engine = Engine {
            shared,
            tasks: Arc::new(Mutex::new(Vec::new())),
            rollup: Arc::new(Mutex::new(Vec::new())),
        };
        engine.spawn(probes);
        let shared = engine.shared.clone();
        engine.tasks_push(tokio::spawn(async move {
            let mut every = tokio::time::interval(ROLLUP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let now = now_ms();
                let rollups = {
                    let mut h = shared.history();
                    let r = h.take_rollups(now);
                    h.expire(now);
                    r
                };
                if !rollups.is_empty() && shared.outputs.rollups.try_send(rollups).is_err() {
                    shared.dropped.fetch_add(1, Relaxed);
                }
            }
        }));
        Ok(engine)
    }

    fn tasks_push(&self, task: JoinHandle<()>) {
        self.rollup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// Every series of `value` of `monitor` since `since` (ms), from the last hour in memory.
    pub fn series(&self, monitor: &str, value: &str, since: u64) -> Vec<(Labels, Vec<(u64, f64)>)> {
        self.shared.history().series(monitor, value, since)
    }

    /// Runs a new plan (a reload): the new monitors start, alerts of rules that still exist
    /// keep their state (a firing alert is not announced again), and silences stay. If the
    /// plan cannot be built, the running one stays and the error says why.
    pub fn reconfigure(&self, plan: &Plan) -> Result<(), EngineError> {
        let (kept, old_beats): (Vec<AlertRecord>, Vec<String>) = {
            let book = self.shared.book();
            let beats = book
                .monitors()
                .filter(|(def, _, _)| matches!(def.probe, ProbeSpec::Heartbeat(_)))
                .map(|(def, _, _)| def.name.clone())
                .collect();
            (book.alerts().cloned().collect(), beats)
        };
        let silences = self.silences();
        let (mut book, noise, probes) = prepare(plan, &self.shared.env, kept.clone(), silences)?;
        // Received alerts and those of rules that still exist stay listed.
        book.keep_listed(kept);
        self.stop();
        *self.shared.book() = book;
        *self.noise() = noise;
        // A heartbeat monitor that is gone no longer takes pings (a job's 404 says so).
        for name in old_beats {
            if !plan
                .monitors
                .iter()
                .any(|m| m.name == name && matches!(m.probe, ProbeSpec::Heartbeat(_)))
            {
                self.shared.env.heartbeats.unregister(&name);
            }
        }
        self.spawn(probes);
        Ok(())
    }

    fn spawn(&self, probes: Vec<(crate::plan::MonitorDef, Arc<dyn Probe>)>) {
        let mut wake = self.shared.wake.lock().unwrap_or_else(|e| e.into_inner());
        wake.clear();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for (def, probe) in probes {
            let notify = Arc::new(Notify::new());
            wake.insert(def.name.clone(), notify.clone());
            let shared = self.shared.clone();
            tasks.push(tokio::spawn(async move {
                run_monitor(def, probe, shared, notify).await
            }));
        }
    }

    /// Stops every monitor task.
    pub fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// Stops everything: the monitors and the rollups.
    pub fn shutdown(&self) {
        self.stop();
        for t in self
            .rollup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// Runs `monitor` now instead of at its next tick (a heartbeat's `/fail`).
    pub fn run_now(&self, monitor: &str) -> bool {
        let wake = self.shared.wake.lock().unwrap_or_else(|e| e.into_inner());
        match wake.get(monitor) {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }

    /// Outputs dropped because a channel was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// Reads the books.
    pub fn with_book<T>(&self, f: impl FnOnce(&Book) -> T) -> T {
        f(&self.shared.book())
    }

    /// Acknowledges an alert; its record goes to the store and an event is raised.
    pub fn ack(&self, id: &str, ack: Ack) -> Option<AlertRecord> {
        let record = self.shared.book().ack(id, ack.clone())?;
        self.shared.send(Recorded {
            events: vec![Event::AlertAcknowledged {
                id: id.to_string(),
                by: ack.by,
                comment: ack.comment,
            }],
            save: vec![record.clone()],
        });
        Some(record)
    }

    /// Takes alerts received from Alertmanager or Grafana.
    pub fn receive(&self, alerts: Vec<AlertRecord>) {
        let recorded = self.shared.book().receive(alerts, now_ms());
        self.shared.send(recorded);
    }

    /// Every listed alert (pending, firing, recently resolved) with whether and why it is
    /// muted, worst first: firing critical, firing warning, pending, resolved; then newest.
    pub fn alerts(&self, now: u64) -> Vec<AlertView> {
        let records: Vec<AlertRecord> = self.shared.book().alerts().cloned().collect();
        // Matchers (silences, maintenance) see a firing alert's severity as a label too, so
        // `severity="critical"` selects Ballast's own alerts as it does received ones.
        let matchable: Vec<AlertRecord> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let (Some(sev), None) = (r.state.severity(), r.labels.get("severity")) {
                    r.labels.insert("severity", sev.name());
                }
                r
            })
            .collect();
        let mut mutes = self.noise().status(&matchable, now);
        let mut views: Vec<AlertView> = records
            .into_iter()
            .map(|alert| {
                let mute = mutes.remove(&alert.id).unwrap_or_default();
                AlertView {
                    silenced: !mute.silenced_by.is_empty() || !mute.maintenance.is_empty(),
                    inhibited: !mute.inhibited_by.is_empty(),
                    acknowledged: alert.ack.is_some(),
                    mute,
                    alert,
                }
            })
            .collect();
        let rank = |v: &AlertView| match v.alert.state {
            ballast_core::AlertState::Firing { severity } => match severity {
                ballast_core::Severity::Critical => 0,
                ballast_core::Severity::Warning => 1,
            },
            ballast_core::AlertState::Pending => 2,
            _ => 3,
        };
        views.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(b.alert.since_unix_ms.cmp(&a.alert.since_unix_ms))
        });
        views
    }

    /// Replaces the silences in force (after one was added or expired).
    pub fn set_silences(&self, silences: Vec<Silence>) {
        self.noise().silences = SilenceSet::new(silences);
    }

    /// The silences held, newest first.
    pub fn silences(&self) -> Vec<Silence> {
        let mut all: Vec<Silence> = self.noise().silences.silences().cloned().collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.id));
        all
    }

    fn noise(&self) -> MutexGuard<'_, NoiseControl> {
        self.shared.noise.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Raises an event through the engine's event channel (silences, heartbeats).
    pub fn emit(&self, event: Event) {
        self.shared.send(Recorded {
            events: vec![event],
            save: Vec::new(),
        });
    }
}

/// The books, noise control and probes of a plan, built before anything is swapped in.
#[allow(clippy::type_complexity)]
fn prepare(
    plan: &Plan,
    env: &ProbeEnv,
    restored: Vec<AlertRecord>,
    silences: Vec<Silence>,
) -> Result<
    (
        Book,
        NoiseControl,
        Vec<(crate::plan::MonitorDef, Arc<dyn Probe>)>,
    ),
    EngineError,
> {
    let mut book = Book::new(&plan.monitors, &plan.rules)?;
    let restored = book.restore(restored);
    if restored > 0 {
        tracing::info!(restored, "firing alerts restored");
    }
    let mut probes = Vec::new();
    for m in &plan.monitors {
        let probe = build_probe(m, env).map_err(|error| EngineError::Probe {
            monitor: m.name.clone(),
            error,
        })?;
        probes.push((m.clone(), probe));
    }
    let noise = NoiseControl {
        silences: SilenceSet::new(silences),
        maintenance: MaintenanceSet::new(&plan.maintenance)?,
        dependencies: Dependencies::new(plan.dependencies())?,
    };
    Ok((book, noise, probes))
}

async fn run_monitor(
    def: crate::plan::MonitorDef,
    probe: Arc<dyn Probe>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
) {
    let limit = shared.limit.clone();
    let mut ticks = tokio::time::interval(def.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = wake.notified() => {}
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let started = Instant::now();
        let run = tokio::spawn({
            let probe = probe.clone();
            async move { probe.run().await }
        });
        let abort = run.abort_handle();
        let (outcome, timed_out) = match tokio::time::timeout(def.timeout, run).await {
            Ok(Ok(outcome)) => (outcome, false),
            Ok(Err(e)) => (Outcome::failed(format!("the probe failed: {e}")), false),
            Err(_) => {
                abort.abort();
                (
                    Outcome::failed(format!("timed out after {}", show(def.timeout))),
                    true,
                )
            }
        };
        drop(permit);
        let now = now_ms();
        let mut outcome = outcome;
        if !outcome.readings.iter().any(|r| r.value == "up") {
            let up = if outcome.error.is_none() { 1.0 } else { 0.0 };
            outcome.push("up", Labels::new(), up);
        }
        let result = RunResult {
            at_unix_ms: now,
            duration_ms: started.elapsed().as_millis() as u64,
            timed_out,
            outcome,
        };
        {
            let mut history = shared.history();
            for r in &result.outcome.readings {
                history.push(&def.name, &r.value, &r.labels, now, r.number);
            }
        }
        let recorded = shared.book().record(&def.name, result, now);
        shared.send(recorded);
    }
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

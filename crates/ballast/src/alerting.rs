//! Wires the monitoring engine into the running gateway: it feeds the engine the gateway's
//! counters and status, sends the engine's events to the gateway's event log (so they are
//! numbered, shown and stored like every other), keeps alerts and silences in the store, and
//! answers the admin API's monitoring questions.
//!
//! At start it waits (briefly, [`RESTORE_WAIT`]) for the store to open so that alerts that were
//! firing before a restart resume firing without being announced again; the gateway is
//! already serving meanwhile. Saves leave the engine over a bounded channel and are written
//! here; a store outage loses only the latest state of an alert, which the next transition or
//! acknowledgement writes again.

use std::sync::Arc;
use std::time::Duration;

use ballast_admin::{AlertingError, Beat, HistoryQuery, SilenceInput};
use ballast_core::{Ack, AlertRecord, AlertView, Event, MinuteRollup, NewSilence, Silence};
use ballast_monitor::engine::{now_ms, Engine, Outputs, ProbeEnv};
use ballast_monitor::noise::{format_matcher, parse_matcher, silence};
use ballast_monitor::plan::Plan;
use ballast_monitor::probe::heartbeat::Heartbeats;
use ballast_proxy::Gateway;
use ballast_store::Store;
use tokio::sync::mpsc;

use crate::history::History;

/// How long the start waits for the store before monitoring begins without the alerts it
/// kept (they would then be announced again).
pub const RESTORE_WAIT: Duration = Duration::from_secs(5);
/// Events and saves in flight from the engine.
const CHANNEL: usize = 1024;
/// Batches of rollups in flight to the store (one batch per half minute).
const ROLLUPS: usize = 16;

/// The running engine and what it needs to answer the API.
pub struct Alerting {
    engine: Engine,
    /// The plan the engine runs.
    plan: std::sync::Mutex<Plan>,
    heartbeats: Heartbeats,
    /// Silences when there is no store (ids assigned here).
    next_local_silence: std::sync::atomic::AtomicU64,
}

impl Alerting {
    /// Starts monitoring `plan` against `gateway`, restoring alerts and silences from the
    /// store when there is one.
    pub async fn start(
        plan: &Plan,
        gateway: &Gateway,
        history: Arc<History>,
        alert_changed: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Alerting> {
        let (restored, silences) = restore(&history).await;
        let heartbeats = Heartbeats::new();
        let env = ProbeEnv {
            gateway: Some({
                let gateway = gateway.clone();
                Arc::new(move || (gateway.status(), gateway.counters()))
            }),
            heartbeats: heartbeats.clone(),
        };
        let (events_tx, mut events_rx) = mpsc::channel::<Event>(CHANNEL);
        let (saves_tx, mut saves_rx) = mpsc::channel::<AlertRecord>(CHANNEL);
        let (rollups_tx, mut rollups_rx) = mpsc::channel::<Vec<MinuteRollup>>(ROLLUPS);
        let engine = Engine::start(
            plan,
            &env,
            Outputs {
                events: events_tx,
                saves: saves_tx,
                rollups: rollups_tx,
            },
            restored,
            silences,
        )?;
        let g = gateway.clone();
        tokio::spawn(async move {
            while let Some(e) = events_rx.recv().await {
                if matches!(
                    e,
                    Event::AlertChanged { .. } | Event::AlertAcknowledged { .. }
                ) {
                    alert_changed.notify_one();
                }
                g.emit(e);
            }
        });
        let h = history.clone();
        tokio::spawn(async move {
            while let Some(rollups) = rollups_rx.recv().await {
                let Ok(store) = h.store() else {
                    continue;
                };
                if let Err(e) = store.write_rollups(&rollups).await {
                    tracing::warn!(error = %e, minutes = rollups.len(), "could not write metric rollups");
                    let _ = h.failed(e);
                }
            }
        });
        tokio::spawn(async move {
            while let Some(record) = saves_rx.recv().await {
                let Ok(store) = history.store() else {
                    continue;
                };
                if let Err(e) = store.save_alert(&record).await {
                    let _ = history.failed(e);
                    tracing::warn!(alert = %record.id, "could not save an alert's state");
                }
            }
        });
        Ok(Alerting {
            engine,
            plan: std::sync::Mutex::new(plan.clone()),
            heartbeats,
            next_local_silence: std::sync::atomic::AtomicU64::new(1),
        })
    }

    pub fn stop(&self) {
        self.engine.shutdown();
    }

    /// Runs the monitoring plan of a config just applied; an unchanged plan leaves every
    /// monitor running as it was (windows, heartbeat clocks and counts intact).
    pub fn reconfigure(&self, plan: &Plan) {
        let mut running = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        if *running == *plan {
            return;
        }
        match self.engine.reconfigure(plan) {
            Ok(()) => {
                *running = plan.clone();
                tracing::info!(
                    monitors = plan.monitors.len(),
                    rules = plan.rules.len(),
                    "monitoring runs the new plan"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "monitoring kept its previous plan: the new one could not be started")
            }
        }
    }

    pub fn monitors(&self) -> serde_json::Value {
        self.engine.with_book(|book| {
            serde_json::Value::Array(
                book.monitors()
                    .map(|(def, last, counts)| {
                        serde_json::json!({
                            "name": def.name,
                            "kind": def.probe.kind(),
                            "interval_ms": def.interval.as_millis() as u64,
                            "timeout_ms": def.timeout.as_millis() as u64,
                            "runs": counts.runs,
                            "failed": counts.failed,
                            "timed_out": counts.timed_out,
                            "last": last,
                            "heartbeat": self.heartbeats.get(&def.name),
                        })
                    })
                    .collect(),
            )
        })
    }

    pub fn alerts(&self) -> Vec<AlertView> {
        self.engine.alerts(now_ms())
    }

    pub fn ack(&self, id: &str, ack: Ack) -> Result<AlertRecord, AlertingError> {
        let record = self
            .engine
            .ack(id, ack.clone())
            .ok_or_else(|| AlertingError::NotFound(format!("no alert {id} is listed")))?;
        tracing::info!(alert = id, by = %ack.by, "alert acknowledged");
        Ok(record)
    }

    pub async fn add_silence(
        &self,
        history: &History,
        input: SilenceInput,
    ) -> Result<Silence, AlertingError> {
        let mut new: NewSilence = input.silence;
        for text in &input.text_matchers {
            new.matchers
                .push(parse_matcher(text).map_err(|e| AlertingError::BadRequest(e.to_string()))?);
        }
        let now = now_ms();
        silence::validate(&new, now).map_err(|e| AlertingError::BadRequest(e.to_string()))?;
        let stored = match history.store() {
            Ok(store) => store
                .add_silence(new, now)
                .await
                .map_err(|e| AlertingError::Unavailable(history.failed(e).to_string()))?,
            Err(ballast_admin::HistoryError::Off) => Silence {
                id: self
                    .next_local_silence
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                silence: new,
                created_unix_ms: now,
            },
            Err(e) => return Err(AlertingError::Unavailable(e.to_string())),
        };
        let mut all = self.engine.silences();
        all.retain(|s| s.id != stored.id);
        all.push(stored.clone());
        self.engine.set_silences(all);
        self.engine.emit(Event::SilenceAdded {
            id: stored.id,
            author: stored.silence.author.clone(),
            comment: stored.silence.comment.clone(),
            matchers: stored.silence.matchers.iter().map(format_matcher).collect(),
            ends_unix_ms: stored.silence.ends_unix_ms,
        });
        Ok(stored)
    }

    pub async fn silences(
        &self,
        history: &History,
        include_expired: bool,
    ) -> Result<Vec<Silence>, AlertingError> {
        let now = now_ms();
        let mut all = match history.store() {
            Ok(store) => store
                .silences(include_expired, now)
                .await
                .map_err(|e| AlertingError::Unavailable(history.failed(e).to_string()))?,
            Err(_) => self
                .engine
                .silences()
                .into_iter()
                .filter(|s| include_expired || s.silence.ends_unix_ms > now)
                .collect(),
        };
        // Newest first, with or without a store.
        all.sort_by_key(|s| std::cmp::Reverse(s.id));
        Ok(all)
    }

    pub async fn expire_silence(
        &self,
        history: &History,
        id: u64,
        by: String,
    ) -> Result<Silence, AlertingError> {
        let now = now_ms();
        let expired = match history.store() {
            Ok(store) => store.expire_silence(id, now).await.map_err(|e| match e {
                ballast_store::StoreError::NotFound { .. } => {
                    AlertingError::NotFound(format!("no silence {id}"))
                }
                e => AlertingError::Unavailable(history.failed(e).to_string()),
            })?,
            Err(ballast_admin::HistoryError::Off) => {
                let mut s = self
                    .engine
                    .silences()
                    .into_iter()
                    .find(|s| s.id == id)
                    .ok_or_else(|| AlertingError::NotFound(format!("no silence {id}")))?;
                s.silence.ends_unix_ms = s.silence.ends_unix_ms.min(now);
                s
            }
            Err(e) => return Err(AlertingError::Unavailable(e.to_string())),
        };
        let mut all = self.engine.silences();
        all.retain(|s| s.id != id);
        all.push(expired.clone());
        self.engine.set_silences(all);
        self.engine.emit(Event::SilenceExpired { id, by });
        Ok(expired)
    }

    pub fn heartbeat(&self, name: &str, beat: Beat) -> Result<(), AlertingError> {
        let now = now_ms();
        let result = match &beat {
            Beat::Ping => self.heartbeats.ping(name, now),
            Beat::Start => self.heartbeats.start(name, now),
            Beat::Fail(reason) => self.heartbeats.fail(name, now, reason.clone()),
        };
        result.map_err(|e| AlertingError::NotFound(e.to_string()))?;
        // A failure (or a ping that clears one) is news now, not at the next interval.
        if !matches!(beat, Beat::Start) {
            self.engine.run_now(name);
        }
        Ok(())
    }

    pub fn receive(&self, body: &[u8]) -> Result<usize, AlertingError> {
        let received = ballast_monitor::alertmanager::parse(body)
            .map_err(|e| AlertingError::BadRequest(e.to_string()))?;
        let now = now_ms();
        let records: Vec<AlertRecord> = received.alerts.iter().map(|a| a.to_record(now)).collect();
        let n = records.len();
        self.engine.receive(records);
        Ok(n)
    }

    /// `ballast_alerts{state,severity}` and each monitor's runs, in OpenMetrics text.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE ballast_alerts gauge\n# HELP ballast_alerts Alerts listed, by state and severity (firing ones have a severity).\n");
        let counts = self.engine.with_book(|b| b.counts());
        for ((state, severity), n) in counts {
            out.push_str(&format!(
                "ballast_alerts{{state=\"{state}\",severity=\"{severity}\"}} {n}\n"
            ));
        }
        out.push_str("# TYPE ballast_monitor_up gauge\n# HELP ballast_monitor_up 1 when a monitor's last run succeeded.\n");
        let mut runs = String::from("# TYPE ballast_monitor_runs counter\n# HELP ballast_monitor_runs Monitor runs, by result.\n");
        let mut duration = String::from("# TYPE ballast_monitor_duration_seconds gauge\n# HELP ballast_monitor_duration_seconds How long a monitor's last run took.\n");
        self.engine.with_book(|b| {
            for (def, last, counts) in b.monitors() {
                let name = escape(&def.name);
                if let Some(last) = last {
                    let up = u8::from(last.outcome.error.is_none());
                    out.push_str(&format!("ballast_monitor_up{{monitor=\"{name}\"}} {up}\n"));
                    duration.push_str(&format!(
                        "ballast_monitor_duration_seconds{{monitor=\"{name}\"}} {}\n",
                        last.duration_ms as f64 / 1000.0
                    ));
                }
                let ok = counts.runs - counts.failed;
                let failed = counts.failed - counts.timed_out;
                for (result, n) in [("ok", ok), ("error", failed), ("timeout", counts.timed_out)] {
                    runs.push_str(&format!(
                        "ballast_monitor_runs_total{{monitor=\"{name}\",result=\"{result}\"}} {n}\n"
                    ));
                }
            }
        });
        out.push_str(&runs);
        out.push_str(&duration);
        out.push_str(&format!(
            "# TYPE ballast_monitor_dropped counter\n# HELP ballast_monitor_dropped Alert events, alert saves and rollup batches dropped because their channel was full.\nballast_monitor_dropped_total {}\n",
            self.engine.dropped()
        ));
        out
    }

    /// The values of one reading: every point of the last hour from memory, and the
    /// per-minute rollups from the store when `since` reaches further back (and a store is
    /// there to ask).
    pub async fn metric_history(
        &self,
        history: &History,
        query: HistoryQuery,
    ) -> Result<serde_json::Value, AlertingError> {
        let known = self
            .engine
            .with_book(|b| b.monitor_names().contains(query.monitor.as_str()));
        if !known {
            return Err(AlertingError::NotFound(format!(
                "no monitor is named {:?}",
                query.monitor
            )));
        }
        let now = now_ms();
        let series: Vec<serde_json::Value> = self
            .engine
            .series(&query.monitor, &query.value, query.since_unix_ms)
            .into_iter()
            .map(|(labels, points)| serde_json::json!({ "labels": labels, "points": points }))
            .collect();
        let hour_ago = now.saturating_sub(3_600_000);
        let rollups = if query.since_unix_ms < hour_ago {
            match history.store() {
                Ok(store) => store
                    .rollups(&query.monitor, &query.value, query.since_unix_ms, now)
                    .await
                    .map_err(|e| AlertingError::Unavailable(history.failed(e).to_string()))?,
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        Ok(serde_json::json!({
            "monitor": query.monitor,
            "value": query.value,
            "since_unix_ms": query.since_unix_ms,
            "series": series,
            "rollups": rollups,
        }))
    }
}

use ballast_core::prom::label_value as escape;

/// Alerts and silences the store kept; empty when there is no store or it does not open in
/// time.
async fn restore(history: &History) -> (Vec<AlertRecord>, Vec<Silence>) {
    let deadline = tokio::time::Instant::now() + RESTORE_WAIT;
    let store: Store = loop {
        match history.store() {
            Ok(s) => break s,
            Err(ballast_admin::HistoryError::Off) => return (Vec::new(), Vec::new()),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!("the store did not open in time: alerts that were firing will be announced again");
                return (Vec::new(), Vec::new());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let alerts = match store.alerts(true).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the alerts kept in the store");
            Vec::new()
        }
    };
    let silences = match store.silences(false, now_ms()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the silences kept in the store");
            Vec::new()
        }
    };
    (alerts, silences)
}

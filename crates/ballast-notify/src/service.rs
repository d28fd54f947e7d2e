//! The running notification service: one task runs dispatch rounds over the current alerts
//! and queues what they produce; [`Delivery`] sends it. The binary gives it a way to read the
//! alerts (with their mute status) and the store, and wakes it when an alert changes, so a
//! critical alert with `group_wait = "0s"` leaves within milliseconds of turning firing; a
//! round also runs at least every second (group timers, escalations, windows).
//!
//! At start, the outbox rows of the last [`RESTORE_SINCE`] come back from the store: pending
//! ones are delivered, and the ones people heard tell the groupers which firing alerts were
//! already announced, so a restart announces nothing twice and still announces resolutions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_core::{AlertState, AlertView, Labels, Notification, NotificationState, Severity};
use serde::Serialize;
use thiserror::Error;

use crate::backoff::Backoff;
use crate::delivery::{Delivery, StoreAccess};
use crate::dispatch::{heard, Dispatcher, MessageSettings};
use crate::message::{Message, MessageAlert, MessageStatus};
use crate::plan::{NotifyPlan, PlanError};

/// How far back a start reloads the outbox.
pub const RESTORE_SINCE: Duration = Duration::from_secs(24 * 3600);
/// The most rows a start reloads.
const RESTORE_LIMIT: u32 = 50_000;
/// How long a start waits for the store.
const RESTORE_WAIT: Duration = Duration::from_secs(5);
/// The longest gap between two rounds.
const ROUND_EVERY: Duration = Duration::from_secs(1);

/// Reads the current alerts at a moment (ms since the epoch), with their mute status.
pub type AlertSource = Arc<dyn Fn(u64) -> Vec<AlertView> + Send + Sync>;

/// How a test message went, per target of the receiver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub target: String,
    pub ok: bool,
    /// The receiver's answer, or the error (never a secret).
    pub result: String,
}

#[derive(Debug, Error)]
pub enum TestError {
    #[error("no receiver is named {0:?}")]
    UnknownReceiver(String),
}

struct Inner {
    plan: NotifyPlan,
    dispatcher: Dispatcher,
}

/// The notification service's handle.
pub struct Notifications {
    delivery: Delivery,
    inner: Arc<Mutex<Inner>>,
    wake: Arc<tokio::sync::Notify>,
    alerts: AlertSource,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn dispatcher(plan: &NotifyPlan) -> Result<Dispatcher, PlanError> {
    let (receivers, routes, windows) = plan.build()?;
    Ok(Dispatcher::new(
        routes,
        receivers,
        windows,
        MessageSettings {
            dashboard_url: plan.dashboard_url.clone(),
        },
    ))
}

/// The alerts a new dispatcher learns from what was heard: the firing ones, and the resolved
/// ones (whose resolution may not have been sent yet).
fn restorable(alerts: &[AlertView]) -> Vec<ballast_core::AlertRecord> {
    alerts
        .iter()
        .filter(|v| v.alert.state.severity().is_some() || v.alert.state == AlertState::Resolved)
        .map(|v| v.alert.clone())
        .collect()
}

impl Notifications {
    /// Builds the plan's receivers and routes, reloads the outbox, and starts sending.
    pub async fn start(
        plan: &NotifyPlan,
        alerts: AlertSource,
        store: Arc<dyn StoreAccess>,
    ) -> Result<Notifications, PlanError> {
        let mut dispatcher = dispatcher(plan)?;
        let delivery = Delivery::new(dispatcher.receivers().clone(), Backoff::default());
        let since = now_ms().saturating_sub(RESTORE_SINCE.as_millis() as u64);
        let rows: Vec<Notification> = match store.store() {
            Some(s) => {
                match tokio::time::timeout(
                    RESTORE_WAIT,
                    s.notifications_since(since, RESTORE_LIMIT),
                )
                .await
                {
                    Ok(Ok(rows)) => rows,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "notifications: the outbox could not be reloaded; alerts still firing may be announced again");
                        store.failed(e);
                        Vec::new()
                    }
                    Err(_) => {
                        tracing::warn!("notifications: the store did not answer in time; the outbox was not reloaded");
                        Vec::new()
                    }
                }
            }
            None => Vec::new(),
        };
        let pending = rows
            .iter()
            .filter(|r| r.state == NotificationState::Pending)
            .count();
        dispatcher.restore(&restorable(&alerts(now_ms())), &heard(&rows));
        delivery.load(rows);
        if pending > 0 {
            tracing::info!(pending, "notifications: undelivered notifications reloaded");
        }
        let inner = Arc::new(Mutex::new(Inner {
            plan: plan.clone(),
            dispatcher,
        }));
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut tasks = vec![tokio::spawn(delivery.clone().run(store))];
        tasks.push(tokio::spawn(rounds(
            inner.clone(),
            delivery.clone(),
            alerts.clone(),
            wake.clone(),
        )));
        Ok(Notifications {
            delivery,
            inner,
            wake,
            alerts,
            tasks,
        })
    }

    /// What wakes the rounds: notify it when an alert changed.
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// An alert changed: run a round now.
    pub fn alerts_changed(&self) {
        self.wake.notify_one();
    }

    /// Applies a reloaded config's plan. An unchanged plan keeps its routes and groupers, but
    /// its receivers are built again: a secret read from a file (a rotated webhook URL or
    /// password behind the same `url_file`) is the same text in the plan, and a reload is how
    /// an operator says "read it again". A changed plan gets new routes and groupers, which
    /// learn from the outbox in memory what people have heard, so a reload announces nothing
    /// twice.
    pub fn reconfigure(&self, plan: &NotifyPlan) -> Result<(), PlanError> {
        let mut inner = lock(&self.inner);
        if inner.plan == *plan {
            let receivers = crate::Receivers::build(&plan.receivers, plan.locale, &plan.template)?;
            inner.dispatcher.set_receivers(receivers.clone());
            self.delivery.set_receivers(receivers);
            return Ok(());
        }
        let mut next = dispatcher(plan)?;
        next.restore(
            &restorable(&(self.alerts)(now_ms())),
            &heard(&self.delivery.recent_rows()),
        );
        self.delivery.set_receivers(next.receivers().clone());
        inner.dispatcher = next;
        inner.plan = plan.clone();
        drop(inner);
        tracing::info!(
            receivers = plan.receivers.len(),
            routes = plan.routes.len(),
            "notifications run the new plan"
        );
        self.wake.notify_one();
        Ok(())
    }

    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The receivers' names.
    pub fn receivers(&self) -> Vec<String> {
        lock(&self.inner)
            .dispatcher
            .receivers()
            .names()
            .map(str::to_string)
            .collect()
    }

    /// Queues `notice` to every target of `receiver` through the outbox (persisted, retried,
    /// logged, once per `notice.key`); returns how many targets it was queued for.
    pub fn announce(&self, receiver: &str, notice: &crate::Notice) -> Result<usize, TestError> {
        let rows = {
            let inner = lock(&self.inner);
            let receivers = inner.dispatcher.receivers();
            if receivers.targets_of(receiver).is_empty() {
                return Err(TestError::UnknownReceiver(receiver.to_string()));
            }
            notice.rows(
                receivers,
                receiver,
                inner.plan.dashboard_url.clone(),
                now_ms(),
            )
        };
        let n = rows.len();
        self.delivery.queue(rows);
        Ok(n)
    }

    /// Sends a test message to every target of `receiver` now (not through the outbox's
    /// retries), records each attempt in the log, and says how each went.
    pub async fn test(&self, receiver: &str, by: &str) -> Result<Vec<TestResult>, TestError> {
        let (targets, plan) = {
            let inner = lock(&self.inner);
            (
                inner.dispatcher.receivers().targets_of(receiver).to_vec(),
                inner.plan.clone(),
            )
        };
        if targets.is_empty() {
            return Err(TestError::UnknownReceiver(receiver.to_string()));
        }
        let now = now_ms();
        let mut out = Vec::new();
        for target in targets {
            let message = test_message(&plan, target.locale, by, now);
            let sent = tokio::time::timeout(
                crate::delivery::SEND_TIMEOUT,
                target.notifier.send(&message),
            )
            .await
            .unwrap_or_else(|_| Err(crate::SendError::retry("no answer in time")));
            let (ok, result) = match &sent {
                Ok(d) => (true, d.answer.clone()),
                Err(e) => (false, e.to_string()),
            };
            self.delivery
                .record_test(&target.name, &message, &sent, now);
            out.push(TestResult {
                target: target.name.clone(),
                ok,
                result,
            });
        }
        Ok(out)
    }

    /// The delivery counters in Prometheus text.
    pub fn metrics(&self) -> String {
        let stats = self.delivery.stats();
        let mut out = String::new();
        let counter = |out: &mut String,
                       name: &str,
                       help: &str,
                       get: &dyn Fn(&crate::delivery::TargetStats) -> u64,
                       kind: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (target, s) in &stats {
                let _ = writeln!(out, "{name}{{target=\"{}\"}} {}", escape(target), get(s));
            }
        };
        counter(
            &mut out,
            "ballast_notifications_queued_total",
            "Notifications queued per receiver target.",
            &|s| s.queued,
            "counter",
        );
        let _ = writeln!(out, "# HELP ballast_notifications_total Notifications finished per target and result.\n# TYPE ballast_notifications_total counter");
        for (target, s) in &stats {
            for (result, n) in [
                ("delivered", s.delivered),
                ("failed", s.failed),
                ("expired", s.expired),
            ] {
                let _ = writeln!(
                    out,
                    "ballast_notifications_total{{target=\"{}\",result=\"{result}\"}} {n}",
                    escape(target)
                );
            }
        }
        counter(
            &mut out,
            "ballast_notification_attempts_failed_total",
            "Send attempts that failed (each retry counts).",
            &|s| s.attempts_failed,
            "counter",
        );
        counter(
            &mut out,
            "ballast_notifications_rate_limited_total",
            "Times a target's rate limit held a notification back.",
            &|s| s.rate_limited,
            "counter",
        );
        counter(
            &mut out,
            "ballast_notifications_pending",
            "Notifications waiting for delivery.",
            &|s| s.pending,
            "gauge",
        );
        let _ = writeln!(out, "# HELP ballast_notifications_dropped_total Notifications given up because too many were pending.\n# TYPE ballast_notifications_dropped_total counter\nballast_notifications_dropped_total {}", self.delivery.dropped());
        let _ = writeln!(out, "# HELP ballast_notifications_unsaved Notifications not yet written to the store.\n# TYPE ballast_notifications_unsaved gauge\nballast_notifications_unsaved {}", self.delivery.unsaved());
        out
    }

    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop();
    }
}

use ballast_core::prom::label_value as escape;

async fn rounds(
    inner: Arc<Mutex<Inner>>,
    delivery: Delivery,
    alerts: AlertSource,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        let now = now_ms();
        let current = alerts(now);
        let (rows, next) = {
            let mut inner = lock(&inner);
            let rows = inner.dispatcher.round(&current, now);
            (rows, inner.dispatcher.next_due())
        };
        delivery.queue(rows);
        let wait = next
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms()).max(1)))
            .unwrap_or(ROUND_EVERY)
            .min(ROUND_EVERY);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The message `ballast notify test` sends: one warning alert named `ballast-test`.
fn test_message(plan: &NotifyPlan, locale: crate::Locale, by: &str, now: u64) -> Message {
    let labels = Labels::new()
        .with("alertname", "ballast-test")
        .with("requested_by", by);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_string(),
        "A test message from `ballast notify test`: if you read this, this receiver works."
            .to_string(),
    );
    Message {
        group_key: "{alertname=\"ballast-test\"}".to_string(),
        group_labels: Labels::new().with("alertname", "ballast-test"),
        status: MessageStatus::Firing,
        severity: Some(Severity::Warning),
        alerts: vec![MessageAlert {
            id: labels.fingerprint(),
            rule: "ballast-test".to_string(),
            labels,
            annotations,
            state: AlertState::Firing {
                severity: Severity::Warning,
            },
            value: None,
            threshold: None,
            since_unix_ms: now,
        }],
        dashboard_url: plan.dashboard_url.clone(),
        locale,
        at_unix_ms: now,
        route: 0,
        escalated_after_ms: None,
        template: None,
    }
}

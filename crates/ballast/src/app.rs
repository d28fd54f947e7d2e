//! Wires the engines together and runs them: the gateway, the admin listener, and the signals
//! that drive reload (SIGHUP) and graceful shutdown (SIGTERM, SIGINT). Every config applied or
//! refused (at start, on SIGHUP, through the admin API, by a rollback) is handed to [`History`]
//! after the gateway has dealt with it. Reloads and rollbacks take one lock, so a rollback's
//! write-apply-or-put-back never interleaves with a reload. When a store is configured, the
//! instance heartbeat ([`instances`]) and the retention loop ([`retention`]) run beside the
//! gateway until shutdown.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use ballast_admin::{
    AdminState, AlertingError, Beat, BoxFuture, BrainError, Control, HistoryError, HistoryQuery,
    IncidentQuery, NoteInput, NotificationQuery, OpenIncident, RemediationQuery, RollbackError,
    SilenceInput, StatusInput,
};
use ballast_config::{Loaded, Source};
use ballast_core::{
    Ack, AlertRecord, AlertView, Change, ChangeEntry, Command, CommandError, ConfigVersion,
    DriftReport, Issued, NewChange, NotificationLog, Origin, Report, RollbackReport, Silence,
    Snapshot, Stamped,
};
use ballast_notify::Notifications;
use ballast_proxy::Gateway;
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Mutex};

use crate::alerting::Alerting;
use crate::brain_api;
use crate::history::History;
use crate::incidents::Incidents;
use crate::notifying;
use crate::remedying::{Announce, Remediation};
use crate::{changes, instances, retention, review};

/// The admin API's view of the running gateway.
struct App {
    gateway: Gateway,
    history: Arc<History>,
    /// Monitoring; set once the store had its chance to restore alerts.
    alerting: OnceLock<Alerting>,
    /// Notifications; set once monitoring runs (they read its alerts).
    notifications: OnceLock<Notifications>,
    /// Remediation; set once notifications run (it escalates through them).
    remediation: OnceLock<Remediation>,
    /// Incidents; set once notifications run (they announce through them).
    incidents: OnceLock<Incidents>,
    /// Notified on every alert change: notifications, remediation and incidents look at once.
    alert_changed: Arc<tokio::sync::Notify>,
    /// Where the config comes from (the file a rollback writes back to).
    source: Source,
    /// Held by a reload and a rollback from start to end.
    config_lock: Mutex<()>,
    /// The admin API's tokens (rotated by a reload).
    access: ballast_admin::Access,
}

/// The admin API's tokens of a config, with their roles.
fn access_of(config: &ballast_config::Config) -> Vec<(String, ballast_admin::Caller)> {
    config
        .admin
        .all_tokens()
        .into_iter()
        .map(|t| {
            let role = match t.role {
                ballast_config::Role::Viewer => ballast_admin::Role::Viewer,
                ballast_config::Role::Operator => ballast_admin::Role::Operator,
            };
            (t.secret, ballast_admin::Caller { name: t.name, role })
        })
        .collect()
}

impl App {
    /// Reloads from the config source and records what was offered and what became of it.
    /// `who` is the person who asked, when known (recorded on the reload's event).
    async fn reload(&self, by: Origin, who: Option<String>) -> Result<Report, CommandError> {
        let _turn = self.config_lock.lock().await;
        let attempt = self.gateway.reload_from_source(by, who).await;
        self.history.reloaded(by, &attempt);
        if attempt.result.is_ok() {
            self.monitoring_follows();
        }
        attempt.result.map(Report::Reloaded)
    }

    /// After a config was applied (reload or rollback): monitoring runs its plan.
    fn monitoring_follows(&self) {
        let config = self.gateway.config();
        self.access.replace(access_of(&config));
        if let Some(a) = self.alerting.get() {
            a.reconfigure(&config.monitoring);
        }
        if let Some(n) = self.notifications.get() {
            if let Err(e) = n.reconfigure(&config.notify) {
                tracing::error!(error = %e, "notifications kept their previous plan");
            }
        }
        if let Some(r) = self.remediation.get() {
            r.reconfigure(&config.remedy, &receiver_names(&config));
        }
        if let Some(i) = self.incidents.get() {
            i.reconfigure(&config);
        }
    }

    /// Sends a notice through the notification outbox (once notifications run).
    fn announcer(self: &Arc<Self>) -> Announce {
        let app = Arc::downgrade(self);
        Arc::new(move |receiver: &str, notice: &ballast_notify::Notice| {
            let app = app.upgrade().ok_or("the gateway is stopping")?;
            let n = app
                .notifications
                .get()
                .ok_or("notifications are not running")?;
            n.announce(receiver, notice).map_err(|e| e.to_string())
        })
    }

    fn notifications(&self) -> Result<&Notifications, AlertingError> {
        self.notifications.get().ok_or(AlertingError::Off)
    }

    fn alerting(&self) -> Result<&Alerting, AlertingError> {
        self.alerting.get().ok_or(AlertingError::Off)
    }

    fn remediation(&self) -> Result<&Remediation, BrainError> {
        self.remediation.get().ok_or(BrainError::Off("remediation"))
    }

    fn incident_service(&self) -> Result<&Incidents, BrainError> {
        self.incidents.get().ok_or(BrainError::Off("incidents"))
    }
}

/// The names of the configured receivers.
pub(crate) fn receiver_names(
    config: &ballast_config::Config,
) -> std::collections::BTreeSet<String> {
    config
        .notify
        .receivers
        .iter()
        .map(|r| r.name.clone())
        .collect()
}

/// A config version as the API shows it: inline secrets redacted.
fn shown(mut v: ConfigVersion) -> ConfigVersion {
    v.text = ballast_config::redact_secrets(&v.text);
    v
}

impl Control for App {
    fn status(&self) -> Snapshot {
        self.gateway.status()
    }

    fn metrics(&self) -> String {
        let mut out = self.gateway.encode_metrics();
        let mut more = self.history.metrics().unwrap_or_default();
        if let Some(a) = self.alerting.get() {
            more.push_str(&a.metrics());
        }
        if let Some(n) = self.notifications.get() {
            more.push_str(&n.metrics());
        }
        if let Some(r) = self.remediation.get() {
            more.push_str(&r.metrics());
        }
        if let Some(i) = self.incidents.get() {
            more.push_str(&i.metrics());
        }
        // The gateway's OpenMetrics text ends with `# EOF`; the rest goes before.
        let end = out.rfind("# EOF").unwrap_or(out.len());
        out.insert_str(end, &more);
        out
    }

    fn events(&self, after: u64) -> Vec<Stamped> {
        self.gateway.events(after)
    }

    fn apply(&self, issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>> {
        match issued.command {
            Command::Reload => Box::pin(self.reload(issued.by, issued.who)),
            _ => Box::pin(self.gateway.apply(issued)),
        }
    }

    fn config_versions(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<ConfigVersion>, HistoryError>> {
        Box::pin(self.history.versions(limit))
    }

    /// Shown with inline secrets redacted; the store keeps the text as it ran (rollback).
    fn config_version(&self, id: u64) -> BoxFuture<'_, Result<ConfigVersion, HistoryError>> {
        Box::pin(async move { self.history.version(id).await.map(shown) })
    }

    fn config_pair(
        &self,
        from: Option<u64>,
        to: Option<u64>,
    ) -> BoxFuture<'_, Result<(ConfigVersion, ConfigVersion), HistoryError>> {
        Box::pin(async move {
            let (a, b) = self.history.pair(from, to).await?;
            Ok((shown(a), shown(b)))
        })
    }

    fn rollback(
        &self,
        version: Option<u64>,
        by: Origin,
        who: Option<String>,
    ) -> BoxFuture<'_, Result<RollbackReport, RollbackError>> {
        Box::pin(async move {
            let _turn = self.config_lock.lock().await;
            let report = crate::rollback::rollback(
                &self.gateway,
                &self.source,
                &self.history,
                version,
                by,
                who,
            )
            .await;
            if report.is_ok() {
                self.monitoring_follows();
            }
            report
        })
    }

    fn changes(
        &self,
        since_unix_ms: u64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<ChangeEntry>, HistoryError>> {
        Box::pin(changes::recent(&self.history, since_unix_ms, limit))
    }

    fn record_change(&self, change: NewChange) -> BoxFuture<'_, Result<Change, HistoryError>> {
        Box::pin(changes::record(&self.history, change))
    }

    fn drift(&self) -> BoxFuture<'_, Result<DriftReport, HistoryError>> {
        Box::pin(changes::drift(&self.history))
    }

    fn monitors(&self) -> Result<serde_json::Value, AlertingError> {
        Ok(self.alerting()?.monitors())
    }

    fn metric_history(
        &self,
        query: HistoryQuery,
    ) -> BoxFuture<'_, Result<serde_json::Value, AlertingError>> {
        Box::pin(async move { self.alerting()?.metric_history(&self.history, query).await })
    }

    fn alerts(&self) -> Result<Vec<AlertView>, AlertingError> {
        Ok(self.alerting()?.alerts())
    }

    fn ack(&self, id: String, ack: Ack) -> BoxFuture<'_, Result<AlertRecord, AlertingError>> {
        Box::pin(async move {
            let by = ack.by.clone();
            let record = self.alerting()?.ack(&id, ack)?;
            // Acknowledging an alert also frees the targets its remediation gave up on.
            if let Some(r) = self.remediation.get() {
                r.acknowledge_alert(&id, &by);
            }
            Ok(record)
        })
    }

    fn review(
        &self,
        since: std::time::Duration,
    ) -> BoxFuture<'_, Result<ballast_admin::ReviewAnswer, BrainError>> {
        Box::pin(async move {
            let store = self
                .history
                .store()
                .map_err(|e| BrainError::Unavailable(e.to_string()))?;
            let config = self.gateway.config();
            let report = review::run(&store, &config.monitoring, review::window(since))
                .await
                .map_err(|e| BrainError::Unavailable(self.history.failed(e).to_string()))?;
            Ok(ballast_admin::ReviewAnswer {
                json: serde_json::to_value(&report)
                    .map_err(|e| BrainError::Unavailable(e.to_string()))?,
                markdown: ballast_review::markdown(&report),
            })
        })
    }

    fn talkers(
        &self,
        q: ballast_admin::TalkersQuery,
    ) -> Result<ballast_core::TopTalkers, ballast_admin::TalkersError> {
        Ok(self
            .gateway
            .top_talkers(q.since_unix_ms, q.until_unix_ms, q.limit))
    }

    fn remediations(&self, q: RemediationQuery) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(
            async move { brain_api::remediations(self.remediation()?, &self.history, q).await },
        )
    }

    fn remediation_ack(
        &self,
        target: String,
        by: String,
    ) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move { brain_api::ack(self.remediation()?, &target, &by) })
    }

    fn incidents(&self, q: IncidentQuery) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move { brain_api::list(self.incident_service()?, q).await })
    }

    fn incident(&self, id: u64) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move {
            brain_api::show(self.incident_service()?, self.remediation.get(), id).await
        })
    }

    fn open_incident(&self, input: OpenIncident) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move { brain_api::open(self.incident_service()?, input).await })
    }

    fn incident_note(&self, id: u64, input: NoteInput) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move { brain_api::note(self.incident_service()?, id, input).await })
    }

    fn incident_status(
        &self,
        id: u64,
        input: StatusInput,
    ) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move { brain_api::status(self.incident_service()?, id, input).await })
    }

    fn incident_severity(
        &self,
        id: u64,
        input: ballast_admin::SeverityInput,
    ) -> BoxFuture<'_, Result<Value, BrainError>> {
        Box::pin(async move { brain_api::severity(self.incident_service()?, id, input).await })
    }

    fn postmortem(&self, id: u64) -> BoxFuture<'_, Result<String, BrainError>> {
        Box::pin(async move {
            brain_api::postmortem(self.incident_service()?, self.remediation.get(), id).await
        })
    }

    fn silences(
        &self,
        include_expired: bool,
    ) -> BoxFuture<'_, Result<Vec<Silence>, AlertingError>> {
        Box::pin(async move {
            self.alerting()?
                .silences(&self.history, include_expired)
                .await
        })
    }

    fn add_silence(&self, input: SilenceInput) -> BoxFuture<'_, Result<Silence, AlertingError>> {
        Box::pin(async move { self.alerting()?.add_silence(&self.history, input).await })
    }

    fn expire_silence(&self, id: u64, by: String) -> BoxFuture<'_, Result<Silence, AlertingError>> {
        Box::pin(async move { self.alerting()?.expire_silence(&self.history, id, by).await })
    }

    fn heartbeat(&self, name: String, beat: Beat) -> Result<(), AlertingError> {
        self.alerting()?.heartbeat(&name, beat)
    }

    fn receive_alerts(&self, body: &[u8]) -> Result<usize, AlertingError> {
        self.alerting()?.receive(body)
    }

    fn notifications(
        &self,
        query: NotificationQuery,
    ) -> BoxFuture<'_, Result<Vec<NotificationLog>, AlertingError>> {
        Box::pin(async move {
            // Filters apply after the limit is read, so read more when filtering.
            let read = if query.receiver.is_some() || query.state.is_some() {
                10_000
            } else {
                query.limit
            };
            let mut lines = match self.notifications.get() {
                Some(n) => notifying::log(n, &self.history, query.since_unix_ms, read).await,
                // Still starting: the log is in the store already.
                None => notifying::stored_log(&self.history, query.since_unix_ms, read)
                    .await
                    .ok_or(AlertingError::Off)?,
            };
            lines.retain(|l| {
                query
                    .receiver
                    .as_deref()
                    .is_none_or(|r| l.receiver == r || l.receiver.split('/').next() == Some(r))
                    && query.state.is_none_or(|s| l.state == s)
            });
            lines.truncate(query.limit as usize);
            Ok(lines)
        })
    }

    fn notify_test(
        &self,
        receiver: String,
        by: String,
    ) -> BoxFuture<'_, Result<serde_json::Value, AlertingError>> {
        Box::pin(async move {
            let results = notifying::test(self.notifications()?, &receiver, &by).await?;
            serde_json::to_value(results).map_err(|e| AlertingError::BadRequest(e.to_string()))
        })
    }
}

/// Runs the gateway until SIGTERM/SIGINT, then drains within the configured grace period.
pub fn run(loaded: Loaded, source: Source) -> anyhow::Result<()> {
    let config = &loaded.config;
    // One thread: the current-thread scheduler skips the work-stealing machinery.
    let mut rt = match config.runtime.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 0 {
                b.worker_threads(n);
            }
            b
        }
    };
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(loaded, source))
}

async fn serve(loaded: Loaded, source: Source) -> anyhow::Result<()> {
    ignore_file_size_signal();
    let config = loaded.config.clone();
    let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("admin: cannot listen on {}", config.admin.listen))?;
    let admin_addr = admin_listener
        .local_addr()
        .context("admin: cannot read the listening address")?;
    let (history, wiring) = History::start(&config, admin_addr);
    let text = loaded.text.clone();
    let gateway = Gateway::start_with_sink(loaded, source.clone(), wiring.events).await?;
    if let Some(mut raised) = wiring.raised {
        // The sink's own events (store outage and recovery), numbered by the gateway.
        let gateway = gateway.clone();
        tokio::spawn(async move {
            while let Some(event) = raised.recv().await {
                gateway.emit(event);
            }
        });
    }
    history.started(text);
    let history = Arc::new(history);
    let app = Arc::new(App {
        gateway: gateway.clone(),
        history: history.clone(),
        alerting: OnceLock::new(),
        notifications: OnceLock::new(),
        remediation: OnceLock::new(),
        incidents: OnceLock::new(),
        alert_changed: Arc::new(tokio::sync::Notify::new()),
        source,
        config_lock: Mutex::new(()),
        access: ballast_admin::Access::with(access_of(&config)),
    });
    // The store's background work: this instance's heartbeat (drift) and pruning (retention).
    // Each asks History for the store when it runs, so a store that is not open (yet) only
    // skips a beat or a round.
    let chores = match &config.store {
        Some(settings) => {
            let (beat, prune) = (app.clone(), app.clone());
            vec![
                instances::spawn(
                    move || beat.history.store(),
                    app.history.instance().to_string(),
                    app.history.host().to_string(),
                    app.history.running(),
                ),
                retention::spawn(move || prune.history.store(), settings.retention),
            ]
        }
        None => Vec::new(),
    };
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let admin_state = AdminState {
        control: app.clone(),
        access: app.access.clone(),
    };
    let admin = tokio::spawn(ballast_admin::serve(
        admin_listener,
        admin_state,
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    ));
    // Monitoring starts once the store had its chance to restore firing alerts; the gateway
    // and the admin API serve meanwhile (monitoring questions answer 503 until then).
    let monitoring = {
        let (app, gateway, history) = (app.clone(), gateway.clone(), history.clone());
        tokio::spawn(async move {
            let plan = gateway.config().monitoring.clone();
            match Alerting::start(&plan, &gateway, history.clone(), app.alert_changed.clone()).await
            {
                Ok(a) => {
                    let _ = app.alerting.set(a);
                }
                Err(e) => {
                    tracing::error!(error = %e, "monitoring could not start");
                    return;
                }
            }
            let source = {
                let app = app.clone();
                Arc::new(move |_now: u64| {
                    app.alerting.get().map(Alerting::alerts).unwrap_or_default()
                })
            };
            let config = gateway.config();
            match notifying::start(&config.notify, source.clone(), history.clone()).await {
                Ok(n) => {
                    let _ = app.notifications.set(n);
                }
                Err(e) => tracing::error!(error = %e, "notifications could not start"),
            }
            let remediation = Remediation::start(
                &config.remedy,
                &receiver_names(&config),
                source.clone(),
                gateway.clone(),
                history.clone(),
                app.announcer(),
            )
            .await;
            let _ = app.remediation.set(remediation);
            let incidents = Incidents::start(
                &config,
                source,
                gateway.clone(),
                history.clone(),
                app.announcer(),
                config.store.is_some(),
            )
            .await;
            let _ = app.incidents.set(incidents);
            // The scheduled threshold review reads the store; without one there is nothing to
            // review.
            if config.store.is_some() {
                review::spawn(gateway.clone(), history.clone(), app.announcer());
            }
            // Every alert change wakes each engine that reads the alerts.
            let fanout = app.clone();
            tokio::spawn(async move {
                loop {
                    fanout.alert_changed.notified().await;
                    if let Some(n) = fanout.notifications.get() {
                        n.alerts_changed();
                    }
                    if let Some(r) = fanout.remediation.get() {
                        r.wake();
                    }
                    if let Some(i) = fanout.incidents.get() {
                        i.wake();
                    }
                }
            });
            // A reload that landed while monitoring started must not be missed.
            app.monitoring_follows();
        })
    };
    tracing::info!(
        listeners = ?config.listeners.iter().map(|l| format!("{}={}", l.name, l.listen)).collect::<Vec<_>>(),
        admin = %admin_addr,
        "ballast is serving"
    );

    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // Refusals are logged and recorded as events by the gateway, and kept in the
                // config history.
                let _ = app.reload(Origin::Signal, None).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let grace = gateway.config().runtime.grace;
    tracing::info!(grace = ?grace, open = gateway.open_connections(), "shutting down: no new connections, finishing in-flight requests");
    let left = gateway.shutdown(grace).await;
    let _ = stop_tx.send(true);
    let _ = admin.await;
    monitoring.abort();
    if let Some(a) = app.alerting.get() {
        a.stop();
    }
    if let Some(n) = app.notifications.get() {
        n.stop();
    }
    if let Some(r) = app.remediation.get() {
        r.stop();
    }
    if let Some(i) = app.incidents.get() {
        i.stop();
    }
    for chore in chores {
        chore.abort();
    }
    app.history.close().await;
    if left > 0 {
        tracing::warn!(left, "grace period over; closing remaining connections");
    } else {
        tracing::info!("all connections finished; bye");
    }
    Ok(())
}

/// A file that reaches the process's file size limit (`RLIMIT_FSIZE`, `ulimit -f`) must not
/// kill the gateway: with SIGXFSZ ignored, the write fails with EFBIG instead, which the access
/// log and the store's sink handle as they handle a full disk (drop and count; spool and retry).
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code and is
    // async-signal-safe; no other thread relies on SIGXFSZ's default action.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

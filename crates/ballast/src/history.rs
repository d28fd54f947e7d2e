//! The running gateway's operations store: opens it in the background, runs the event sink
//! that writes every event and every config version offered (applied or refused), and answers
//! the admin API's history questions.
//!
//! It exists so that recording can never hold up or fail the data plane or a reload. The store
//! is opened by the sink (`ballast_store::sink`), in the background and again after each
//! failure, so an unreachable database delays nothing at start; until it opens, and whenever
//! it cannot be written, events and config versions wait in the sink's bounded spool. Events
//! reach the sink from the gateway's event log with `try_send`; config versions from here, in
//! the order they were offered, after the reload was applied. The sink's own
//! `store_unavailable` / `store_recovered` go back to the gateway ([`Wiring::raised`]) so they
//! are numbered, shown and stored like every other event.
//! Every config offered as applied also becomes the running config whose sha256
//! [`crate::instances`] heartbeats, whatever path applied it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ballast_admin::HistoryError;
use ballast_config::{Config, StoreUrl};
use ballast_core::{ConfigOutcome, ConfigVersion, Event, NewConfigVersion, Origin, Stamped};
use ballast_proxy::ReloadAttempt;
use ballast_store::sink::{self, SinkInputs, SinkOptions, SinkState};
use ballast_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Events in flight from the gateway to the sink; beyond this the gateway drops and counts
/// (`ballast_events_dropped_total{reason="sink_full"}`). The sink empties it into its spool
/// continuously, so it fills only if the sink task itself is starved.
const EVENTS: usize = 4096;
/// Config versions in flight to the sink.
const CONFIGS: usize = 64;
/// How long shutdown waits for the spool to be written.
const FLUSH: Duration = Duration::from_secs(2);

enum Backend {
    /// No `[store]` (the embedded demo config).
    Off,
    /// A store is configured; the sink opens it and reports through `state`.
    On { url: String, state: Arc<SinkState> },
}

/// The ends of the sink that the gateway holds: where its event log sends, and where the sink's
/// own events come back to be emitted.
pub struct Wiring {
    pub events: Option<mpsc::Sender<Stamped>>,
    pub raised: Option<mpsc::Receiver<Event>>,
}

/// The gateway's handle on its operations store.
pub struct History {
    backend: Backend,
    host: String,
    instance: String,
    /// The sha256 of the running config; empty until one is applied.
    running: watch::Sender<String>,
    configs: Mutex<Option<mpsc::Sender<NewConfigVersion>>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl History {
    /// Starts the event sink for the store `config` names (none for the embedded demo). Never
    /// fails and never waits: the store opens in the background.
    pub fn start(config: &Config, admin: SocketAddr) -> (History, Wiring) {
        let host = host_name();
        let instance = format!("{host}/{admin}");
        let mut history = History {
            backend: Backend::Off,
            host: host.clone(),
            instance: instance.clone(),
            running: watch::Sender::new(String::new()),
            configs: Mutex::new(None),
            stop: Mutex::new(None),
            writer: Mutex::new(None),
        };
        let Some(store) = &config.store else {
            tracing::info!(
                "no operations store configured; events and config history are kept in memory only"
            );
            return (
                history,
                Wiring {
                    events: None,
                    raised: None,
                },
            );
        };
        let (events_tx, events) = mpsc::channel(EVENTS);
        let (configs_tx, configs) = mpsc::channel(CONFIGS);
        let (raised_tx, raised) = mpsc::channel(16);
        let (stop_tx, stop) = oneshot::channel();
        let state = Arc::new(SinkState::default());
        let url = store.url.clone();
        let open = move || {
            let url = url.clone();
            async move {
                match &url {
                    StoreUrl::Sqlite(path) => Store::open_sqlite_file(path).await,
                    StoreUrl::Postgres(url) => Store::open(url).await,
                }
            }
        };
        let writer = sink::spawn(
            open,
            SinkOptions::new(instance, host, store.spool),
            SinkInputs {
                events,
                configs,
                stop,
            },
            state.clone(),
            raised_tx,
        );
        tracing::info!(store = %store.url.redacted(), spool = store.spool, "operations store: opening in the background");
        history.backend = Backend::On {
            url: store.url.redacted(),
            state,
        };
        history.configs = Mutex::new(Some(configs_tx));
        history.stop = Mutex::new(Some(stop_tx));
        history.writer = Mutex::new(Some(writer));
        (
            history,
            Wiring {
                events: Some(events_tx),
                raised: Some(raised),
            },
        )
    }

    /// The store's series for `/metrics`, or nothing when no store is configured.
    pub fn metrics(&self) -> Option<String> {
        let Backend::On { state, .. } = &self.backend else {
            return None;
        };
        Some(format!(
            "# HELP ballast_store_up Whether the operations store answers: 1 yes, 0 no (not open yet, or the last write failed).\n\
             # TYPE ballast_store_up gauge\nballast_store_up {}\n\
             # HELP ballast_store_spool_records Events and config versions waiting in memory for the store.\n\
             # TYPE ballast_store_spool_records gauge\nballast_store_spool_records {}\n\
             # HELP ballast_store_written Events and config versions written to the store.\n\
             # TYPE ballast_store_written counter\nballast_store_written_total {}\n\
             # HELP ballast_store_dropped Events dropped because the spool was full during a store outage (or the store refused them).\n\
             # TYPE ballast_store_dropped counter\nballast_store_dropped_total {}\n",
            u8::from(state.is_up()),
            state.spooled(),
            state.written(),
            state.dropped(),
        ))
    }

    /// Queues a config the gateway started with.
    pub fn started(&self, text: String) {
        self.offer(text, Origin::Start, ConfigOutcome::Applied);
    }

    /// Queues what a reload read and what became of it.
    pub fn reloaded(&self, by: Origin, attempt: &ReloadAttempt) {
        let outcome = match &attempt.result {
            Ok(_) => ConfigOutcome::Applied,
            Err(e) => ConfigOutcome::Refused {
                error: e.to_string(),
            },
        };
        self.offer(attempt.text.clone().unwrap_or_default(), by, outcome);
    }

    fn offer(&self, text: String, source: Origin, outcome: ConfigOutcome) {
        if outcome.is_applied() {
            self.running.send_replace(ballast_core::sha256_hex(&text));
        }
        let tx = self
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(tx) = tx else { return };
        let version = NewConfigVersion {
            text,
            source,
            at_unix_ms: now_unix_ms(),
            host: self.host.clone(),
            instance: self.instance.clone(),
            outcome,
        };
        if let Err(e) = tx.try_send(version) {
            tracing::error!(error = %e, source = source.name(), "config version not recorded: the store writer is behind");
        }
    }

    /// Stops the sink and waits (briefly) for the spool to be written.
    pub async fn close(&self) {
        self.configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            if tokio::time::timeout(FLUSH, writer).await.is_err() {
                let left = match &self.backend {
                    Backend::On { state, .. } => state.spooled(),
                    Backend::Off => 0,
                };
                tracing::warn!(
                    left,
                    "the operations store did not take every record before exit"
                );
            }
        }
    }

    /// The host name recorded with configs and heartbeats.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Follows the sha256 of the running config (empty until one is applied).
    pub(crate) fn running(&self) -> watch::Receiver<String> {
        self.running.subscribe()
    }

    /// The store, or why it cannot be used now.
    pub(crate) fn store(&self) -> Result<Store, HistoryError> {
        match &self.backend {
            Backend::Off => Err(HistoryError::Off),
            Backend::On { url, state } => state.store().ok_or_else(|| {
                let why = state
                    .last_error()
                    .unwrap_or_else(|| "still connecting".to_string());
                HistoryError::Unavailable(format!(
                    "the store at {url} is not open yet ({why}); events wait in memory and are written once it opens"
                ))
            }),
        }
    }

    /// Passes a store result on, noting whether the store answered.
    pub(crate) fn observed<T>(&self, result: Result<T, StoreError>) -> Result<T, HistoryError> {
        if let Backend::On { state, .. } = &self.backend {
            state.observe(&result);
        }
        result.map_err(|e| HistoryError::Unavailable(e.to_string()))
    }

    /// Maps a store error for the admin API, and notes whether the store answers.
    pub(crate) fn failed(&self, e: StoreError) -> HistoryError {
        if let Backend::On { state, .. } = &self.backend {
            state.observe_error(&e);
        }
        HistoryError::Unavailable(e.to_string())
    }

    /// This instance's name in the store (host name and admin address).
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The newest `limit` versions, newest first.
    pub async fn versions(&self, limit: u32) -> Result<Vec<ConfigVersion>, HistoryError> {
        let store = self.store()?;
        self.observed(store.config_versions(limit).await)
    }

    /// Version `id`, or 404.
    pub async fn version(&self, id: u64) -> Result<ConfigVersion, HistoryError> {
        let store = self.store()?;
        self.observed(store.config_version(id).await)?
            .ok_or_else(|| HistoryError::NotFound(format!("no config version {id}")))
    }

    /// The versions to diff: `to` defaults to this instance's running (newest applied)
    /// version, `from` to the applied version before `to`.
    pub async fn pair(
        &self,
        from: Option<u64>,
        to: Option<u64>,
    ) -> Result<(ConfigVersion, ConfigVersion), HistoryError> {
        let store = self.store()?;
        let instance = Some(self.instance.as_str());
        let to = match to {
            Some(id) => self.version(id).await?,
            None => self
                .observed(store.latest_applied(instance).await)?
                .ok_or_else(|| {
                    HistoryError::NotFound("no applied config version is recorded yet".into())
                })?,
        };
        let from = match from {
            Some(id) => self.version(id).await?,
            None => self
                .observed(store.previous_applied(to.id, instance).await)?
                .ok_or_else(|| {
                    HistoryError::NotFound(format!(
                        "version {} has no earlier applied version to compare with; name one: ballast config diff A B",
                        to.id
                    ))
                })?,
        };
        Ok((from, to))
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// This machine's host name, as the kernel knows it.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

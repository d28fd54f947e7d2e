//! The running gateway's config history: opens the operations store at start, records every
//! config the gateway applies or refuses, and answers the admin API's history questions.
//!
//! It exists so that recording can never hold up or fail the data plane or a reload: the
//! store is opened once at start and, if it cannot be, the gateway runs without it (the admin
//! API says why, `ballast_store_up` is 0); records go through a bounded channel to one writer
//! task, in the order the configs were offered, after the reload has been applied. A full
//! channel or a failed write is logged and counted in `ballast_store_up`, never returned to
//! the caller.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ballast_admin::HistoryError;
use ballast_config::{Config, StoreUrl};
use ballast_core::{ConfigOutcome, ConfigVersion, NewConfigVersion, Origin};
use ballast_proxy::ReloadAttempt;
use ballast_store::{Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Records waiting for the writer; beyond this they are dropped (and logged).
const QUEUE: usize = 64;
/// How long shutdown waits for queued records to be written.
const FLUSH: Duration = Duration::from_secs(2);

enum Backend {
    /// No `[store]` (the embedded demo config).
    Off,
    /// A store is configured but did not open; the reason, for the admin API.
    Failed(String),
    Open(Store),
}

/// The gateway's handle on its config history.
pub struct History {
    backend: Backend,
    host: String,
    instance: String,
    up: Arc<AtomicBool>,
    tx: Mutex<Option<mpsc::Sender<NewConfigVersion>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl History {
    /// Opens the store `config` names. Never fails: a store that cannot be opened is logged
    /// and the gateway runs without history.
    pub async fn open(config: &Config, admin: SocketAddr) -> History {
        let host = host_name();
        let instance = format!("{host}/{admin}");
        let up = Arc::new(AtomicBool::new(false));
        let backend = match &config.store {
            None => {
                tracing::info!("no operations store configured; config history is off");
                Backend::Off
            }
            Some(store) => {
                let opened = match &store.url {
                    StoreUrl::Sqlite(path) => Store::open_sqlite_file(path).await,
                    StoreUrl::Postgres(url) => Store::open(url).await,
                };
                match opened {
                    Ok(s) => {
                        tracing::info!(store = %store.url.redacted(), "operations store open");
                        up.store(true, Relaxed);
                        Backend::Open(s)
                    }
                    Err(e) => {
                        let reason = format!(
                            "the store at {} could not be opened at start ({e}); restart Ballast once it is reachable",
                            store.url.redacted()
                        );
                        tracing::error!(error = %reason, "running without the operations store");
                        Backend::Failed(reason)
                    }
                }
            }
        };
        let (tx, writer) = match &backend {
            Backend::Open(store) => {
                let (tx, rx) = mpsc::channel(QUEUE);
                let writer = tokio::spawn(write(
                    store.clone(),
                    rx,
                    up.clone(),
                    instance.clone(),
                    host.clone(),
                ));
                (Some(tx), Some(writer))
            }
            _ => (None, None),
        };
        History {
            backend,
            host,
            instance,
            up,
            tx: Mutex::new(tx),
            writer: Mutex::new(writer),
        }
    }

    /// `ballast_store_up` for `/metrics`, or nothing when no store is configured.
    pub fn metrics(&self) -> Option<String> {
        if matches!(self.backend, Backend::Off) {
            return None;
        }
        Some(format!(
            "# HELP ballast_store_up Whether the operations store (config history) answers: 1 yes, 0 no.\n\
             # TYPE ballast_store_up gauge\nballast_store_up {}\n",
            u8::from(self.up.load(Relaxed))
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
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
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

    /// Waits (briefly) for queued records to be written.
    pub async fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            if tokio::time::timeout(FLUSH, writer).await.is_err() {
                tracing::warn!("config history: some records were not written before exit");
            }
        }
    }

    /// The store, or why there is none.
    pub(crate) fn store(&self) -> Result<&Store, HistoryError> {
        match &self.backend {
            Backend::Off => Err(HistoryError::Off),
            Backend::Failed(reason) => Err(HistoryError::Unavailable(reason.clone())),
            Backend::Open(s) => Ok(s),
        }
    }

    /// Maps a store error for the admin API, and notes whether the store answers.
    pub(crate) fn failed(&self, e: StoreError) -> HistoryError {
        if e.is_unavailable() {
            self.up.store(false, Relaxed);
        }
        HistoryError::Unavailable(e.to_string())
    }

    /// This instance's name in the store (host name and admin address).
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The newest `limit` versions, newest first.
    pub async fn versions(&self, limit: u32) -> Result<Vec<ConfigVersion>, HistoryError> {
        let list = self
            .store()?
            .config_versions(limit)
            .await
            .map_err(|e| self.failed(e))?;
        self.up.store(true, Relaxed);
        Ok(list)
    }

    /// Version `id`, or 404.
    pub async fn version(&self, id: u64) -> Result<ConfigVersion, HistoryError> {
        let found = self
            .store()?
            .config_version(id)
            .await
            .map_err(|e| self.failed(e))?;
        self.up.store(true, Relaxed);
        found.ok_or_else(|| HistoryError::NotFound(format!("no config version {id}")))
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
            None => store
                .latest_applied(instance)
                .await
                .map_err(|e| self.failed(e))?
                .ok_or_else(|| {
                    HistoryError::NotFound("no applied config version is recorded yet".into())
                })?,
        };
        let from = match from {
            Some(id) => self.version(id).await?,
            None => store
                .previous_applied(to.id, instance)
                .await
                .map_err(|e| self.failed(e))?
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

/// The writer task: records versions in order; after an applied one, the instance's
/// heartbeat carries the new running config's sha256.
async fn write(
    store: Store,
    mut rx: mpsc::Receiver<NewConfigVersion>,
    up: Arc<AtomicBool>,
    instance: String,
    host: String,
) {
    while let Some(v) = rx.recv().await {
        let source = v.source;
        let applied = v.outcome.is_applied();
        let at = v.at_unix_ms;
        let result = match store.record_config(v).await {
            Ok(recorded) if applied => {
                tracing::info!(
                    id = recorded.id,
                    source = source.name(),
                    "config version recorded"
                );
                store
                    .heartbeat_instance(&instance, &host, &recorded.sha256, at)
                    .await
            }
            Ok(recorded) => {
                tracing::info!(
                    id = recorded.id,
                    source = source.name(),
                    "refused config recorded"
                );
                Ok(())
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => up.store(true, Relaxed),
            Err(e) => {
                if e.is_unavailable() {
                    up.store(false, Relaxed);
                }
                tracing::error!(error = %e, source = source.name(), "config version not recorded");
            }
        }
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

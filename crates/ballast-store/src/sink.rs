//! The event sink: the one writer that carries events and config versions from a running
//! gateway into the store, and keeps them in a bounded in-memory spool while the store cannot
//! be written.
//!
//! It exists because the data plane must never wait on the database (DESIGN.md §2) and yet
//! nothing may be lost for an outage shorter than the spool (§9, "Rules of the brain"). The
//! gateway hands events over a bounded channel with `try_send`; this task drains that channel
//! into the spool at all times, even while a write is in flight, and writes from the front of
//! the spool: consecutive events in one transaction (up to [`SinkOptions::batch`]), a config
//! version on its own (followed by the instance's heartbeat when it was applied).
//!
//! ```text
//!             open ok                    write ok (after an outage: store_recovered)
//!   Opening ───────────▶ Up ◀───────────┐
//!     ▲   │ open fails    │ write fails  │
//!     │   ▼               ▼ or times out │
//!     └── Down ◀──────────┘              │
//!   after back-off: close the failed     │
//!   pool, open again ────────────────────┘ (via Opening)
//! ```
//!
//! - **Opening**: the store is opened in the background, so an unreachable PostgreSQL delays
//!   nothing at start; the spool fills meanwhile.
//! - **Up**: each write starts as soon as the spool is not empty; events that arrive during a
//!   write form the next batch, so batches grow with the rate by themselves.
//! - **Down**: entered on the first failed open or write. `store_unavailable` is raised once,
//!   `up` is false, the failed pool is retired, and after a back-off
//!   ([`SinkOptions::retry_min`] doubling to [`SinkOptions::retry_max`]) its connections are
//!   closed and the store is opened afresh. A connection that saw an I/O error is never used
//!   again: one did keep a stale view of SQLite's WAL, and a commit made on it was missing when
//!   the file was read afresh. The first write that succeeds after an outage raises
//!   `store_recovered` with its length, how many records waited and how many were dropped; the
//!   rest of the spool follows at full speed. Events beyond `spool` are dropped and counted
//!   in every state.
//!
//! Raised events go back to the caller on a channel (`raised`) so that the gateway numbers them
//! and they reach the spool, and the store, like any other event.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ballast_core::{Event, NewConfigVersion, Stamped};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::open::Store;

/// How the sink behaves; [`SinkOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The instance the events come from (stored with each event and heartbeat).
    pub instance: String,
    /// The machine it runs on (stored with its heartbeat).
    pub host: String,
    /// Records held while the store cannot be written; events beyond it are dropped and
    /// counted. Config versions are always kept (people make them; they are few).
    pub spool: usize,
    /// Most events in one insert transaction.
    pub batch: usize,
    /// A write (or an open) taking longer than this counts as failed.
    pub write_timeout: Duration,
    /// First pause before retrying after a failure; it doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl SinkOptions {
    /// Defaults: a spool of `spool` records, batches of 500, 10 s per write, retries from
    /// 250 ms to 5 s.
    pub fn new(instance: impl Into<String>, host: impl Into<String>, spool: usize) -> Self {
        SinkOptions {
            instance: instance.into(),
            host: host.into(),
            spool: spool.max(1),
            batch: 500,
            write_timeout: Duration::from_secs(10),
            retry_min: Duration::from_millis(250),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// What the sink knows, shared with whoever reports on it (metrics, the admin API).
#[derive(Debug, Default)]
pub struct SinkState {
    up: AtomicBool,
    store: RwLock<Option<Store>>,
    last_error: Mutex<Option<String>>,
    written: AtomicU64,
    dropped: AtomicU64,
    spooled: AtomicU64,
}

impl SinkState {
    /// The store, while it is open (not before the first open, nor between an outage and
    /// the reopening that ends it).
    pub fn store(&self) -> Option<Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_store(&self, store: Option<Store>) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = store;
    }

    /// Whether the last operation on the store succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Notes the outcome of an operation on the store made outside the sink (a read by the
    /// admin API), so that `up` tells the truth between writes too.
    pub fn observe<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.up.store(true, Relaxed),
            Err(e) => self.observe_error(e),
        }
    }

    /// [`SinkState::observe`] for a failed operation.
    pub fn observe_error(&self, e: &StoreError) {
        if e.is_unavailable() {
            self.up.store(false, Relaxed);
            self.set_error(e.to_string());
        }
    }

    /// Why the store last failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Events and config versions written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Relaxed)
    }

    /// Events dropped because the spool was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Records waiting in the spool now.
    pub fn spooled(&self) -> u64 {
        self.spooled.load(Relaxed)
    }

    fn set_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

/// One record waiting for the store.
#[derive(Debug)]
enum Record {
    Event(Stamped),
    Config(NewConfigVersion),
}

/// What a finished open or write reports back to the loop.
enum Step {
    Opened(Result<Store, StoreError>),
    Wrote {
        records: usize,
        result: Result<(), StoreError>,
    },
}

type Pending = Pin<Box<dyn Future<Output = Step> + Send>>;

/// The channels a running sink reads.
pub struct SinkInputs {
    /// Events from the gateway's event log.
    pub events: mpsc::Receiver<Stamped>,
    /// Config versions offered to the gateway (applied or refused).
    pub configs: mpsc::Receiver<NewConfigVersion>,
    /// Shutdown: once it resolves (sent or dropped), both channels are closed to new records;
    /// what they already hold is still spooled and written.
    pub stop: oneshot::Receiver<()>,
}

/// Starts the sink. `open` is called (again after each failure) until the store opens. The
/// task ends once both input channels are closed (or `stop` resolves) and the spool is
/// written, or at once when there is no store to write it to; `raised` receives
/// `store_unavailable` and `store_recovered`.
pub fn spawn<F, Fut>(
    open: F,
    options: SinkOptions,
    inputs: SinkInputs,
    state: Arc<SinkState>,
    raised: mpsc::Sender<Event>,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Store, StoreError>> + Send + 'static,
{
    let sink = Sink {
        options,
        state,
        raised,
        spool: VecDeque::new(),
        store: None,
        outage: None,
        backoff: Duration::ZERO,
        retry_at: None,
        single: 0,
        retired: None,
    };
    tokio::spawn(sink.run(open, inputs))
}

/// When the current outage began and the counters at that moment.
struct Outage {
    since: Instant,
    dropped_before: u64,
}

struct Sink {
    options: SinkOptions,
    state: Arc<SinkState>,
    raised: mpsc::Sender<Event>,
    spool: VecDeque<Record>,
    store: Option<Store>,
    outage: Option<Outage>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// After a batch was refused for good (not an outage), this many records are written one
    /// at a time, so that only the one the store cannot take is set aside.
    single: usize,
    /// The store whose write failed, closed before the next open.
    retired: Option<Store>,
}

impl Sink {
    async fn run<F, Fut>(mut self, open: F, mut inputs: SinkInputs)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Store, StoreError>> + Send + 'static,
    {
        let mut pending: Option<Pending> = None;
        let (mut events_open, mut configs_open, mut stopping) = (true, true, false);
        loop {
            let due = self.retry_at.is_none_or(|t| Instant::now() >= t);
            if pending.is_none() && due {
                self.retry_at = None;
                pending = match &self.store {
                    None => {
                        let opening = open();
                        let limit = self.options.write_timeout;
                        let retired = self.retired.take();
                        Some(Box::pin(async move {
                            if let Some(old) = retired {
                                // Every connection of the failed pool goes before new ones
                                // open: SQLite's last close checkpoints and resets the WAL.
                                let _ = tokio::time::timeout(limit, old.close()).await;
                            }
                            Step::Opened(timed(limit, opening).await)
                        }))
                    }
                    Some(store) => self.next_write(store.clone()),
                };
            }
            let closed = !events_open && !configs_open;
            if closed && pending.is_none() && (self.spool.is_empty() || self.store.is_none()) {
                // Without a store the spool has nowhere to go; with one it is written.
                break;
            }
            let retry_at = self.retry_at;
            tokio::select! {
                biased;
                step = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                    pending = None;
                    self.finished(step).await;
                }
                got = inputs.configs.recv(), if configs_open => match got {
                    Some(c) => self.push(Record::Config(c)),
                    None => configs_open = false,
                },
                got = inputs.events.recv(), if events_open => match got {
                    Some(e) => self.push(Record::Event(e)),
                    None => events_open = false,
                },
                _ = sleep_until(retry_at), if retry_at.is_some() && pending.is_none() => {}
                _ = &mut inputs.stop, if !stopping => {
                    stopping = true;
                    inputs.events.close();
                    inputs.configs.close();
                }
            }
        }
    }

    /// Queues a record; an event that does not fit is dropped and counted.
    fn push(&mut self, record: Record) {
        let is_event = matches!(record, Record::Event(_));
        if is_event && self.spool.len() >= self.options.spool {
            self.state.dropped.fetch_add(1, Relaxed);
            return;
        }
        self.spool.push_back(record);
        self.state.spooled.store(self.spool.len() as u64, Relaxed);
    }

    /// The write of the spool's front: a run of events, or one config version.
    fn next_write(&self, store: Store) -> Option<Pending> {
        let limit = self.options.write_timeout;
        let instance = self.options.instance.clone();
        match self.spool.front()? {
            Record::Config(v) => {
                let v = v.clone();
                let host = self.options.host.clone();
                Some(Box::pin(async move {
                    let result = timed(limit, write_config(&store, v, &instance, &host)).await;
                    Step::Wrote { records: 1, result }
                }))
            }
            Record::Event(_) => {
                let batch: Vec<Stamped> = self
                    .spool
                    .iter()
                    .take(if self.single > 0 {
                        1
                    } else {
                        self.options.batch
                    })
                    .map_while(|r| match r {
                        Record::Event(e) => Some(e.clone()),
                        Record::Config(_) => None,
                    })
                    .collect();
                Some(Box::pin(async move {
                    let result = timed(limit, store.insert_events(&instance, &batch)).await;
                    Step::Wrote {
                        records: batch.len(),
                        result,
                    }
                }))
            }
        }
    }

    async fn finished(&mut self, step: Step) {
        match step {
            Step::Opened(Ok(store)) => {
                tracing::info!(backend = store.backend(), "operations store open");
                self.state.set_store(Some(store.clone()));
                self.store = Some(store);
                // It answers; an outage ends with the first write that succeeds (the spool
                // holds at least `store_unavailable` then), and the back-off keeps growing
                // until one does.
                self.state.up.store(true, Relaxed);
            }
            Step::Opened(Err(e)) => self.failed(e, "opening"),
            Step::Wrote {
                records,
                result: Ok(()),
            } => {
                let waited = self.spool.len() as u64;
                self.spool.drain(..records.min(self.spool.len()));
                self.state.spooled.store(self.spool.len() as u64, Relaxed);
                self.state.written.fetch_add(records as u64, Relaxed);
                self.single = self.single.saturating_sub(records);
                self.succeeded(waited);
            }
            Step::Wrote {
                result: Err(e),
                records,
            } if !e.is_unavailable() => self.refused(e, records),
            Step::Wrote {
                result: Err(e),
                records: _,
            } => self.failed(e, "writing"),
        }
    }

    /// The store answered but will never take these records (a value it cannot hold, a
    /// constraint): retrying cannot help. A batch is split into single writes; a single
    /// record is set aside, logged whole and counted as dropped, so the rest still flows.
    fn refused(&mut self, e: StoreError, records: usize) {
        self.state.up.store(true, Relaxed);
        if records > 1 {
            tracing::warn!(error = %e, records, "the store refused a batch; writing it one record at a time");
            self.single = records;
            return;
        }
        let lost = self.spool.pop_front();
        self.single = self.single.saturating_sub(1);
        self.state.spooled.store(self.spool.len() as u64, Relaxed);
        self.state.dropped.fetch_add(1, Relaxed);
        tracing::error!(error = %e, record = ?lost, "the store refused a record; it is dropped");
    }

    fn succeeded(&mut self, waited: u64) {
        self.state.up.store(true, Relaxed);
        self.backoff = Duration::ZERO;
        if let Some(outage) = self.outage.take() {
            let outage_ms = u64::try_from(outage.since.elapsed().as_millis()).unwrap_or(u64::MAX);
            let dropped = self.state.dropped().saturating_sub(outage.dropped_before);
            tracing::info!(
                outage_ms,
                spooled = waited,
                dropped,
                "operations store recovered; the spool is being written"
            );
            self.raise(Event::StoreRecovered {
                outage_ms,
                spooled: waited,
                dropped,
            });
        }
    }

    fn failed(&mut self, e: StoreError, doing: &str) {
        self.state.up.store(false, Relaxed);
        // A store that failed is reopened, not retried on its old connections: a connection
        // that saw an I/O error can keep a stale view of SQLite's WAL (a later commit on it
        // was found missing once the file was read afresh), and a PostgreSQL pool may hold
        // connections to a server that went away.
        if let Some(old) = self.store.take() {
            self.state.set_store(None);
            self.retired = Some(old);
        }
        let error = format!("{doing}: {e}");
        self.state.set_error(error.clone());
        if self.outage.is_none() {
            tracing::error!(
                %error,
                spooled = self.spool.len(),
                "operations store unavailable; events wait in memory"
            );
            self.outage = Some(Outage {
                since: Instant::now(),
                dropped_before: self.state.dropped(),
            });
            self.raise(Event::StoreUnavailable { error });
        } else {
            tracing::debug!(%error, spooled = self.spool.len(), "operations store still unavailable");
        }
        self.backoff = if self.backoff.is_zero() {
            self.options.retry_min
        } else {
            (self.backoff * 2).min(self.options.retry_max)
        };
        self.retry_at = Some(Instant::now() + self.backoff);
    }

    fn raise(&self, event: Event) {
        if self.raised.try_send(event).is_err() {
            tracing::debug!("a store event was not raised: nobody is listening");
        }
    }
}

/// Records a config version, then (for an applied one) the instance's heartbeat with its
/// sha256.
async fn write_config(
    store: &Store,
    v: NewConfigVersion,
    instance: &str,
    host: &str,
) -> Result<(), StoreError> {
    let applied = v.outcome.is_applied();
    let at = v.at_unix_ms;
    let source = v.source;
    let recorded = store.record_config(v).await?;
    tracing::info!(
        id = recorded.id,
        source = source.name(),
        applied,
        "config version recorded"
    );
    if applied {
        store
            .heartbeat_instance(instance, host, &recorded.sha256, at)
            .await?;
    }
    Ok(())
}

/// `fut`, failing as unavailable after `limit`.
async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::TimedOut(limit)),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

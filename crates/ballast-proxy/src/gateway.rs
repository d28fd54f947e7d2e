//! The running gateway: builds runtime state from a [`Config`], starts listeners and health
//! checkers, applies reloads atomically, and stops gracefully.
//!
//! Reload: the new config is already validated; the gateway then builds the complete new state
//! (upstreams reusing the `ServerState` of every server it keeps, route tables, certificates
//! re-read from their files, sockets for new addresses) before changing anything, so a failure
//! (say, a port in use or a bad key) leaves the running state untouched. Listeners whose
//! address stays keep their socket and get new settings swapped in ([`crate::listener::plan`]);
//! requests already in flight keep the `Arc`s they hold and finish on the old state.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use ballast_config::{AccessLog as AccessLogConfig, Config, Loaded, Source};
use ballast_core::{Event, Origin, ReloadReport};
use tokio::task::JoinHandle;

use crate::access_log::{AccessLog, Sink};
use crate::discovery::{Discovery, DnsError};
use crate::health;
use crate::listener::plan::{self, Wanted};
use crate::listener::tls::CertSet;
use crate::listener::{ConnTracker, ListenError, Running};
use crate::router::{RouteRt, RouteTable};
use crate::shared::Shared;
use crate::stats::{GlobalStats, StatsRegistry};
use crate::upstream::{sweep, ServerState, Upstream};

/// Why the gateway could not start or apply a config.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("{0}")]
    AccessLog(std::io::Error),
    #[error(transparent)]
    Dns(#[from] DnsError),
}

/// Why a runtime drain/enable request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerLookupError {
    #[error("no upstream named `{0}`")]
    NoUpstream(String),
    #[error("upstream `{upstream}` has no server {addr}")]
    NoServer { upstream: String, addr: String },
}

pub(crate) type ServerKey = (String, SocketAddr);

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: ArcSwap<Config>,
    pub(crate) upstreams: ArcSwap<HashMap<String, Arc<Upstream>>>,
    pub(crate) servers: Mutex<HashMap<ServerKey, Arc<ServerState>>>,
    pub(crate) listeners: tokio::sync::Mutex<Vec<Running>>,
    /// Certificates of the https listeners, by listener name (for status and metrics).
    pub(crate) certs: ArcSwap<BTreeMap<String, Arc<CertSet>>>,
    pub(crate) health_tasks: Mutex<HashMap<ServerKey, JoinHandle<()>>>,
    /// Idle-connection and ejection-expiry sweeper (`upstream::sweep`); it reads the current
    /// upstreams each round, so it outlives reloads untouched.
    sweeper: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<ConnTracker>,
    pub(crate) discovery: Discovery,
    /// Where reloads read the configuration from.
    pub(crate) source: Source,
}

/// Handle to the running gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

fn sink(cfg: &AccessLogConfig) -> Sink {
    match cfg {
        AccessLogConfig::Off => Sink::Off,
        AccessLogConfig::Stdout => Sink::Stdout,
        AccessLogConfig::File(p) => Sink::File(p.clone()),
    }
}

struct Built {
    upstreams: HashMap<String, Arc<Upstream>>,
    servers: HashMap<ServerKey, Arc<ServerState>>,
    kept: usize,
    added: usize,
}

impl Inner {
    pub(crate) fn conns_open(&self) -> usize {
        self.conns.open()
    }
}

impl Gateway {
    /// Starts listeners and health checks for `loaded`; reloads read `source` again. Must run
    /// inside a Tokio runtime.
    pub async fn start(loaded: Loaded, source: Source) -> Result<Self, GatewayError> {
        Self::start_with_sink(loaded, source, None).await
    }

    /// [`Gateway::start`], with every event (from the first, the start itself) also sent to
    /// `events` with `try_send`: the event sink of the operations store.
    pub async fn start_with_sink(
        loaded: Loaded,
        source: Source,
        events: Option<tokio::sync::mpsc::Sender<ballast_core::Stamped>>,
    ) -> Result<Self, GatewayError> {
        let Loaded { config, text } = loaded;
        let global = Arc::new(GlobalStats::default());
        let access_log = AccessLog::start(&sink(&config.access_log), global.clone())
            .map_err(GatewayError::AccessLog)?;
        let shared = Arc::new(Shared {
            access_log: ArcSwap::from_pointee(access_log),
            global,
            registry: StatsRegistry::default(),
            client_budgets: Default::default(),
            events: Default::default(),
            overrides: Default::default(),
            talkers: Default::default(),
        });
        let inner = Arc::new(Inner {
            shared,
            config: ArcSwap::from_pointee(config.clone()),
            upstreams: ArcSwap::from_pointee(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            listeners: tokio::sync::Mutex::new(Vec::new()),
            certs: ArcSwap::from_pointee(BTreeMap::new()),
            health_tasks: Mutex::new(HashMap::new()),
            sweeper: Mutex::new(None),
            conns: Arc::new(ConnTracker::default()),
            discovery: Discovery::default(),
            source,
        });
        let gw = Gateway { inner };
        if let Some(events) = events {
            gw.inner.shared.events.attach(events);
        }
        gw.inner.discovery.prepare(&config).await?;
        let built = gw.build(&config, true);
        let plan = plan::prepare(gw.wanted(&config, &built.upstreams), &[])?;
        let mut running = gw.inner.listeners.lock().await;
        let applied = plan.apply(&mut running, &gw.inner.shared, &gw.inner.conns);
        gw.inner.certs.store(Arc::new(applied.certs));
        let servers_added = built.servers.len();
        gw.commit(&config, built);
        drop(running);
        let weak = Arc::downgrade(&gw.inner);
        let sweeper = sweep::spawn(move || weak.upgrade().map(|i| i.upstreams.load_full()));
        *gw.inner.sweeper.lock().unwrap_or_else(|e| e.into_inner()) = Some(sweeper);
        gw.inner.shared.events.emit(Event::ReloadApplied {
            sha256: ballast_core::sha256_hex(&text),
            by: Origin::Start,
            who: None,
            listeners_started: applied.started,
            listeners_stopped: Vec::new(),
            servers_added,
            servers_removed: 0,
        });
        Ok(gw)
    }

    /// Builds upstream runtimes, reusing the state of servers that already exist.
    fn build(&self, config: &Config, initial: bool) -> Built {
        let old = self
            .inner
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut servers = HashMap::new();
        let (mut kept, mut added) = (0, 0);
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                let specs = self.inner.discovery.members(u);
                let events = self.inner.shared.events.clone();
                let mut up = Upstream::new(u, &specs, events, |name, addr| {
                    let key = (name.to_string(), addr);
                    let state = match old.get(&key) {
                        Some(s) => {
                            kept += 1;
                            s.clone()
                        }
                        None if initial => Arc::new(ServerState::new(name, addr)),
                        None => {
                            added += 1;
                            Arc::new(ServerState::new_added(name, addr))
                        }
                    };
                    servers.insert(key, state.clone());
                    state
                });
                let shared = &self.inner.shared;
                up.admission = u
                    .limit
                    .as_ref()
                    .map(|cfg| shared.registry.admission(&u.name, cfg, &shared.events));
                (u.name.clone(), Arc::new(up))
            })
            .collect();
        Built {
            upstreams,
            servers,
            kept,
            added,
        }
    }

    fn route_table(
        &self,
        listener: &str,
        config: &Config,
        upstreams: &HashMap<String, Arc<Upstream>>,
    ) -> RouteTable {
        RouteTable {
            routes: config
                .routes_for(listener)
                .filter_map(|r| {
                    let up = upstreams.get(&r.upstream)?.clone();
                    Some(Arc::new(RouteRt::new(
                        r.clone(),
                        up,
                        &self.inner.shared.registry,
                    )))
                })
                .collect(),
        }
    }

    /// What `config` asks of each listener, with its route table built over `upstreams`.
    fn wanted(&self, config: &Config, upstreams: &HashMap<String, Arc<Upstream>>) -> Vec<Wanted> {
        config
            .listeners
            .iter()
            .map(|l| Wanted {
                cfg: l.clone(),
                table: Arc::new(self.route_table(&l.name, config, upstreams)),
                tcp_upstream: l.upstream.as_ref().and_then(|u| upstreams.get(u).cloned()),
            })
            .collect()
    }

    /// Publishes built state and restarts health checkers over it.
    fn commit(&self, config: &Config, built: Built) {
        let mut tasks = self
            .inner
            .health_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (_, t) in tasks.drain() {
            t.abort();
        }
        for up in built.upstreams.values() {
            if let Some(h) = up.health() {
                let uneject = up.passive().is_some_and(|p| p.uneject_on_check);
                for m in &up.members {
                    tasks.insert(
                        (up.name.clone(), m.state.addr),
                        health::active::spawn(
                            up.name.clone(),
                            m.state.clone(),
                            h.clone(),
                            uneject,
                            self.inner.shared.events.clone(),
                        ),
                    );
                }
            } else {
                // Without active checks a server is judged by passive health alone.
                for m in &up.members {
                    m.state.record_check(true, 1, u32::MAX, false);
                }
            }
        }
        // The caches of routes that lost theirs (or left) are released.
        self.inner.shared.registry.retain_caches(|name| {
            config
                .routes
                .iter()
                .any(|r| r.name == name && r.cache.is_some())
        });
        *self.inner.servers.lock().unwrap_or_else(|e| e.into_inner()) = built.servers;
        self.inner.upstreams.store(Arc::new(built.upstreams));
        self.inner.config.store(Arc::new(config.clone()));
        self.keep_overrides(config);
        self.inner.discovery.watch(self, config);
    }

    /// Applies a validated config without dropping in-flight requests. On error nothing changes.
    pub async fn reload(&self, config: Config) -> Result<ReloadReport, GatewayError> {
        // New server names are resolved before the reload lock is taken.
        let result = match self.inner.discovery.prepare(&config).await {
            Ok(()) => self.reload_inner(config).await,
            Err(e) => Err(e.into()),
        };
        let counter = if result.is_ok() {
            &self.inner.shared.global.reloads_ok
        } else {
            &self.inner.shared.global.reloads_failed
        };
        counter.fetch_add(1, Relaxed);
        result
    }

    async fn reload_inner(&self, config: Config) -> Result<ReloadReport, GatewayError> {
        let mut listeners = self.inner.listeners.lock().await;
        let old_config = self.inner.config.load_full();
        let new_log = if sink(&config.access_log) != sink(&old_config.access_log) {
            Some(
                AccessLog::start(&sink(&config.access_log), self.inner.shared.global.clone())
                    .map_err(GatewayError::AccessLog)?,
            )
        } else {
            None
        };
        let before = self
            .inner
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let built = self.build(&config, false);

        // Everything that can fail (certificates, new sockets) is done before anything
        // changes; a failure here leaves every listener exactly as it was.
        let plan = plan::prepare(self.wanted(&config, &built.upstreams), &listeners)?;
        let applied = plan.apply(&mut listeners, &self.inner.shared, &self.inner.conns);
        self.inner.certs.store(Arc::new(applied.certs));
        // Admission controls of upstreams that lost their limit stop being reported.
        let limited: std::collections::HashSet<&str> = config
            .upstreams
            .iter()
            .filter(|u| u.limit.is_some())
            .map(|u| u.name.as_str())
            .collect();
        self.inner.shared.registry.retain_admission(&limited);
        let report = ReloadReport {
            listeners_started: applied.started,
            listeners_stopped: applied.stopped,
            sha256: String::new(),
            servers_kept: built.kept,
            servers_added: built.added,
            servers_removed: before.saturating_sub(built.kept),
        };
        self.commit(&config, built);
        if let Some(log) = new_log {
            self.inner.shared.access_log.store(Arc::new(log));
        }
        Ok(report)
    }

    /// The upstream (as running now) and the state of its server `addr`.
    pub(crate) fn server(
        &self,
        upstream: &str,
        addr: &str,
    ) -> Result<(Arc<Upstream>, Arc<ServerState>), ServerLookupError> {
        let ups = self.inner.upstreams.load();
        let up = ups
            .get(upstream)
            .ok_or_else(|| ServerLookupError::NoUpstream(upstream.to_string()))?;
        let m = up
            .members
            .iter()
            .find(|m| m.state.addr_text == addr)
            .ok_or_else(|| ServerLookupError::NoServer {
                upstream: upstream.to_string(),
                addr: addr.to_string(),
            })?;
        Ok((up.clone(), m.state.clone()))
    }

    /// Drains (`true`) or re-enables (`false`) a server at run time; `Ok(false)` when it
    /// already was in that state. Callers go through [`Gateway::apply`], which records who asked.
    pub(crate) fn set_drain(
        &self,
        upstream: &str,
        addr: &str,
        drained: bool,
    ) -> Result<bool, ServerLookupError> {
        let (_, state) = self.server(upstream, addr)?;
        let changed = state.set_drained(drained);
        tracing::info!(
            upstream,
            server = addr,
            drained,
            changed,
            "server drain state set"
        );
        Ok(changed)
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.config.load_full()
    }

    /// Open client connections.
    pub fn open_connections(&self) -> usize {
        self.inner.conns.open()
    }

    /// Stops accepting, asks connections to finish, and waits up to `grace` for them.
    /// Returns the number of connections still open when it gave up (0 = clean).
    pub async fn shutdown(&self, grace: Duration) -> usize {
        {
            let listeners = self.inner.listeners.lock().await;
            for r in listeners.iter() {
                r.stop();
            }
        }
        let _ = tokio::time::timeout(grace, self.inner.conns.wait_idle()).await;
        self.inner.discovery.stop();
        for (_, t) in self
            .inner
            .health_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            t.abort();
        }
        if let Some(t) = self
            .inner
            .sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            t.abort();
        }
        // Lines still buffered reach the sink before the process exits.
        self.inner.shared.access_log.load().close();
        self.inner.conns.open()
    }
}

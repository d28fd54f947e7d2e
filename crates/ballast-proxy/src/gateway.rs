//! The running gateway: builds runtime state from a [`Config`], starts listeners and health
//! checkers, applies reloads atomically, and stops gracefully.
//!
//! Reload: the new config is already validated; the gateway then builds the complete new state
//! (upstreams reusing the `ServerState` of every server it keeps, route tables, new listener
//! sockets) before changing anything, so a failure (say, a port in use) leaves the running state
//! untouched. Route tables are then swapped with one atomic store per listener; requests already
//! in flight keep the `Arc`s they hold and finish on the old state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use ballast_config::{AccessLog as AccessLogConfig, Config, Protocol};
use tokio::task::JoinHandle;

use crate::access_log::{AccessLog, Sink};
use crate::health;
use crate::listener::{ConnTracker, ListenError, ListenerShared, Running};
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
}

/// Why a runtime drain/enable request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerLookupError {
    #[error("no upstream named `{0}`")]
    NoUpstream(String),
    #[error("upstream `{upstream}` has no server {addr}")]
    NoServer { upstream: String, addr: String },
}

type ServerKey = (String, SocketAddr);

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: ArcSwap<Config>,
    pub(crate) upstreams: ArcSwap<HashMap<String, Arc<Upstream>>>,
    servers: Mutex<HashMap<ServerKey, Arc<ServerState>>>,
    listeners: tokio::sync::Mutex<Vec<Running>>,
    health_tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Idle-connection and ejection-expiry sweeper (`upstream::sweep`); it reads the current
    /// upstreams each round, so it outlives reloads untouched.
    sweeper: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<ConnTracker>,
}

/// Handle to the running gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

/// What a reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    pub listeners_started: Vec<String>,
    pub listeners_stopped: Vec<String>,
    pub servers_kept: usize,
    pub servers_added: usize,
    pub servers_removed: usize,
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
    /// Starts listeners and health checks for `config`. Must run inside a Tokio runtime.
    pub async fn start(config: Config) -> Result<Self, GatewayError> {
        let global = Arc::new(GlobalStats::default());
        let access_log = AccessLog::start(&sink(&config.access_log), global.clone())
            .map_err(GatewayError::AccessLog)?;
        let shared = Arc::new(Shared {
            access_log: ArcSwap::from_pointee(access_log),
            global,
            registry: StatsRegistry::default(),
            client_budgets: Default::default(),
            events: Default::default(),
        });
        let inner = Arc::new(Inner {
            shared,
            config: ArcSwap::from_pointee(config.clone()),
            upstreams: ArcSwap::from_pointee(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            listeners: tokio::sync::Mutex::new(Vec::new()),
            health_tasks: Mutex::new(Vec::new()),
            sweeper: Mutex::new(None),
            conns: Arc::new(ConnTracker::default()),
        });
        let gw = Gateway { inner };
        let built = gw.build(&config, true);
        let mut running = Vec::new();
        for l in &config.listeners {
            let shared = gw.listener_shared(l, &config, &built.upstreams);
            running.push(Running::start(l.clone(), shared, gw.inner.conns.clone())?);
        }
        gw.commit(&config, built);
        *gw.inner.listeners.lock().await = running;
        let weak = Arc::downgrade(&gw.inner);
        let sweeper = sweep::spawn(move || weak.upgrade().map(|i| i.upstreams.load_full()));
        *gw.inner.sweeper.lock().unwrap_or_else(|e| e.into_inner()) = Some(sweeper);
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
                let mut up = Upstream::new(u, self.inner.shared.events.clone(), |name, addr| {
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

    fn listener_shared(
        &self,
        l: &ballast_config::Listener,
        config: &Config,
        upstreams: &HashMap<String, Arc<Upstream>>,
    ) -> Arc<ListenerShared> {
        Arc::new(ListenerShared {
            name: Arc::from(l.name.as_str()),
            tls: l.protocol == Protocol::Https,
            table: ArcSwap::from_pointee(self.route_table(&l.name, config, upstreams)),
            tcp_upstream: ArcSwapOption::new(
                l.upstream.as_ref().and_then(|u| upstreams.get(u).cloned()),
            ),
            shared: self.inner.shared.clone(),
        })
    }

    /// Publishes built state and restarts health checkers over it.
    fn commit(&self, config: &Config, built: Built) {
        let mut tasks = self
            .inner
            .health_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for t in tasks.drain(..) {
            t.abort();
        }
        for up in built.upstreams.values() {
            if let Some(h) = up.health() {
                let uneject = up.passive().is_some_and(|p| p.uneject_on_check);
                for m in &up.members {
                    tasks.push(health::active::spawn(
                        up.name.clone(),
                        m.state.clone(),
                        h.clone(),
                        uneject,
                        self.inner.shared.events.clone(),
                    ));
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
    }

    /// Applies a validated config without dropping in-flight requests. On error nothing changes.
    pub async fn reload(&self, config: Config) -> Result<ReloadReport, GatewayError> {
        let result = self.reload_inner(config).await;
        let counter = if result.is_ok() {
            &self.inner.shared.global.reloads_ok
        } else {
            &self.inner.shared.global.reloads_failed
        };
        counter.fetch_add(1, Relaxed);
        result
    }

    /// Counts a reload refused before it reached [`Gateway::reload`] (the file did not
    /// validate), so `ballast_reloads_total{result="error"}` covers every refused reload.
    pub fn record_refused_reload(&self) {
        self.inner
            .shared
            .global
            .reloads_failed
            .fetch_add(1, Relaxed);
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

        // Listeners whose socket settings are unchanged keep running with new tables; others
        // are (re)started. Sockets are bound before anything is published.
        let mut keep: Vec<Running> = Vec::new();
        let mut retire: Vec<Running> = Vec::new();
        for r in listeners.drain(..) {
            match config.listeners.iter().find(|l| l.name == r.cfg.name) {
                Some(l) if *l == r.cfg => keep.push(r),
                _ => retire.push(r),
            }
        }
        let mut started = Vec::new();
        let mut fresh = Vec::new();
        for l in config
            .listeners
            .iter()
            .filter(|l| !keep.iter().any(|k| k.cfg.name == l.name))
        {
            // A changed listener on the same address must release the port first.
            if let Some(pos) = retire.iter().position(|r| r.cfg.listen == l.listen) {
                drop(retire.remove(pos));
            }
            let shared = self.listener_shared(l, &config, &built.upstreams);
            match Running::start(l.clone(), shared, self.inner.conns.clone()) {
                Ok(r) => {
                    started.push(l.name.clone());
                    fresh.push(r);
                }
                Err(e) => {
                    drop(fresh);
                    listeners.extend(keep);
                    listeners.extend(retire);
                    return Err(e.into());
                }
            }
        }
        for r in &keep {
            let shared = &r.shared;
            shared.table.store(Arc::new(self.route_table(
                &r.cfg.name,
                &config,
                &built.upstreams,
            )));
            shared.tcp_upstream.store(
                r.cfg
                    .upstream
                    .as_ref()
                    .and_then(|u| built.upstreams.get(u).cloned()),
            );
        }
        // Admission controls of upstreams that lost their limit stop being reported.
        let limited: std::collections::HashSet<&str> = config
            .upstreams
            .iter()
            .filter(|u| u.limit.is_some())
            .map(|u| u.name.as_str())
            .collect();
        self.inner.shared.registry.retain_admission(&limited);
        let stopped: Vec<String> = retire.iter().map(|r| r.cfg.name.clone()).collect();
        for r in &retire {
            r.stop();
        }
        drop(retire);
        let report = ReloadReport {
            listeners_started: started,
            listeners_stopped: stopped,
            servers_kept: built.kept,
            servers_added: built.added,
            servers_removed: before.saturating_sub(built.kept),
        };
        self.commit(&config, built);
        if let Some(log) = new_log {
            self.inner.shared.access_log.store(Arc::new(log));
        }
        listeners.extend(keep);
        listeners.extend(fresh);
        Ok(report)
    }

    /// Drains (`true`) or re-enables (`false`) a server at run time.
    pub fn set_drain(
        &self,
        upstream: &str,
        addr: &str,
        drained: bool,
    ) -> Result<(), ServerLookupError> {
        let ups = self.inner.upstreams.load();
        let up = ups
            .get(upstream)
            .ok_or_else(|| ServerLookupError::NoUpstream(upstream.to_string()))?;
        let m = up
            .members
            .iter()
            .find(|m| m.state.addr.to_string() == addr)
            .ok_or_else(|| ServerLookupError::NoServer {
                upstream: upstream.to_string(),
                addr: addr.to_string(),
            })?;
        m.state.set_drained(drained);
        tracing::info!(
            upstream,
            server = addr,
            drained,
            "server drain state changed"
        );
        Ok(())
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
        for t in self
            .inner
            .health_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
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

//! Listeners: accept loops for HTTP (h1 + h2c), HTTPS (ALPN h2/http1.1) and TCP passthrough.
//!
//! A listener is a bound socket whose accept loop reads swappable [`Settings`]: a reload that
//! keeps the address changes everything else in place (see [`plan`]). Each listener owns a
//! stop signal. Reload stops listeners whose address left the config; shutdown stops all of
//! them, and every open connection is then asked to finish gracefully (HTTP/1 closes after
//! the in-flight response, HTTP/2 sends GOAWAY) while [`ConnTracker`] counts what is still open.

mod accept;
pub mod framing;
pub mod http;
pub mod plan;
pub mod tcp;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use ballast_config::Listener;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::router::RouteTable;
use crate::shared::Shared;
use crate::upstream::Upstream;

/// What a connection of a listener needs, shared by all its connections.
pub struct ListenerShared {
    pub name: Arc<str>,
    pub tls: bool,
    /// Routes (HTTP listeners); swapped on reload.
    pub table: ArcSwap<RouteTable>,
    /// Upstream (TCP listeners); swapped on reload.
    pub tcp_upstream: ArcSwapOption<Upstream>,
    pub shared: Arc<Shared>,
}

/// Counts open client connections so shutdown can wait for them.
#[derive(Default)]
pub struct ConnTracker {
    open: AtomicUsize,
    idle: Notify,
}

/// Held by a connection task; decrements on drop.
pub struct ConnGuard(Arc<ConnTracker>);

impl ConnTracker {
    pub fn track(self: &Arc<Self>) -> ConnGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        ConnGuard(self.clone())
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Resolves when no connection is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What the accept loop of one socket uses for each new connection. A reload that keeps the
/// socket (same address) stores a new one: protocol, certificates, header limits and timeouts
/// change without re-binding, and connections already open keep the settings they started with.
pub struct Settings {
    pub cfg: Listener,
    pub shared: Arc<ListenerShared>,
    /// HTTPS: the acceptor built from the certificates read for this config.
    pub acceptor: Option<TlsAcceptor>,
    pub certs: Option<Arc<tls::CertSet>>,
    /// HTTP connection builder (header limits and timeouts of `cfg`).
    pub http: Arc<auto::Builder<TokioExecutor>>,
}

impl Settings {
    pub fn new(
        cfg: Listener,
        shared: Arc<ListenerShared>,
        certs: Option<(Arc<tls::CertSet>, TlsAcceptor)>,
    ) -> Self {
        let http = Arc::new(http::builder(&cfg));
        let (certs, acceptor) = certs.map_or((None, None), |(c, a)| (Some(c), Some(a)));
        Self {
            cfg,
            shared,
            acceptor,
            certs,
            http,
        }
    }
}

/// A socket bound for a listener, not yet accepting.
pub struct Bound {
    listener: TcpListener,
    pub local_addr: SocketAddr,
}

/// Binds `cfg.listen`. Must run inside a Tokio runtime.
pub fn bind(cfg: &Listener) -> Result<Bound, ListenError> {
    let bind_err = |source| ListenError::Bind {
        name: cfg.name.clone(),
        addr: cfg.listen,
        source,
    };
    let std_listener = std::net::TcpListener::bind(cfg.listen).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let local_addr = std_listener.local_addr().map_err(bind_err)?;
    let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
    Ok(Bound {
        listener,
        local_addr,
    })
}

/// A listener that is accepting.
pub struct Running {
    pub local_addr: SocketAddr,
    /// Swapped by reload; read by the accept loop for every new connection.
    pub live: Arc<ArcSwap<Settings>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("listener `{name}`: cannot listen on {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

impl Running {
    /// Starts accepting on `bound` with `settings`.
    pub fn spawn(bound: Bound, settings: Settings, conns: Arc<ConnTracker>) -> Self {
        let live = Arc::new(ArcSwap::from_pointee(settings));
        let (stop, stop_rx) = watch::channel(false);
        let task = accept::spawn(bound.listener, live.clone(), stop_rx, conns);
        Self {
            local_addr: bound.local_addr,
            live,
            stop,
            task,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.live.load_full()
    }

    /// Stops accepting and asks this listener's connections to finish.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        // The accept loop exits on the signal; aborting as well frees the port at once.
        self.task.abort();
    }
}

/// Resolves once the stop signal is raised (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

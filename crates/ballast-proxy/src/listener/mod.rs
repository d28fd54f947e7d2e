//! Listeners: accept loops for HTTP (h1 + h2c), HTTPS (ALPN h2/http1.1) and TCP passthrough.
//!
//! Each listener owns a stop signal. Reload stops listeners that left the config; shutdown stops
//! all of them, and every open connection is then asked to finish gracefully (HTTP/1 closes after
//! the in-flight response, HTTP/2 sends GOAWAY) while [`ConnTracker`] counts what is still open.

pub mod framing;
pub mod http;
pub mod tcp;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use ballast_config::{Listener, Protocol};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

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

/// A listener that is accepting.
pub struct Running {
    pub cfg: Listener,
    pub shared: Arc<ListenerShared>,
    pub local_addr: SocketAddr,
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
    #[error("listener `{name}`: {message}")]
    Tls { name: String, message: String },
}

impl Running {
    /// Binds and starts accepting.
    pub fn start(
        cfg: Listener,
        shared: Arc<ListenerShared>,
        conns: Arc<ConnTracker>,
    ) -> Result<Self, ListenError> {
        let std_listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| ListenError::Bind {
                name: cfg.name.clone(),
                addr: cfg.listen,
                source,
            })?;
        let bind_err = |source| ListenError::Bind {
            name: cfg.name.clone(),
            addr: cfg.listen,
            source,
        };
        std_listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = std_listener.local_addr().map_err(bind_err)?;
        let listener = TcpListener::from_std(std_listener).map_err(bind_err)?;
        let (stop, stop_rx) = watch::channel(false);
        let task = match cfg.protocol {
            Protocol::Http => http::spawn(listener, &cfg, shared.clone(), None, stop_rx, conns),
            Protocol::Https => {
                let acceptor = tls::acceptor(&cfg).map_err(|message| ListenError::Tls {
                    name: cfg.name.clone(),
                    message,
                })?;
                http::spawn(
                    listener,
                    &cfg,
                    shared.clone(),
                    Some(acceptor),
                    stop_rx,
                    conns,
                )
            }
            Protocol::Tcp => tcp::spawn(listener, shared.clone(), cfg.idle_timeout, stop_rx, conns),
        };
        Ok(Self {
            cfg,
            shared,
            local_addr,
            stop,
            task,
        })
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

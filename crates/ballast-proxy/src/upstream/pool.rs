//! Keep-alive connections to one server.
//!
//! Connections are HTTP/1.1 `SendRequest` handles whose connection task runs on its own.
//! Idle handles are kept LIFO (the warmest connection is reused first) and handed back by the
//! response body when it ends (see `http::body`), never before, so a handle in the pool is
//! always free for the next request. Closed or expired handles are dropped on the way out.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ProxyError;
use crate::http::body::UpstreamBody;

/// A handle that can send one request at a time on one upstream connection.
pub type Sender = SendRequest<UpstreamBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The idle connections of one server.
pub struct ConnPool {
    idle: Mutex<Vec<Idle>>,
    max_idle: AtomicUsize,
    idle_timeout_ms: AtomicU64,
    pub connects_total: AtomicU64,
    pub connect_failures_total: AtomicU64,
}

impl Default for ConnPool {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnPool {
    pub fn new() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle: AtomicUsize::new(256),
            idle_timeout_ms: AtomicU64::new(60_000),
            connects_total: AtomicU64::new(0),
            connect_failures_total: AtomicU64::new(0),
        }
    }

    /// Applies the upstream's pool settings (on start and on every reload).
    pub fn configure(&self, max_idle: usize, idle_timeout: Duration) {
        self.max_idle.store(max_idle, Relaxed);
        self.idle_timeout_ms
            .store(idle_timeout.as_millis() as u64, Relaxed);
    }

    /// An idle connection that is still open, if any.
    pub fn take(&self) -> Option<Sender> {
        let timeout = Duration::from_millis(self.idle_timeout_ms.load(Relaxed));
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.pop() {
            if !i.sender.is_closed() && i.since.elapsed() < timeout {
                return Some(i.sender);
            }
        }
        None
    }

    /// Returns a connection whose exchange finished.
    pub fn put(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let timeout = Duration::from_millis(self.idle_timeout_ms.load(Relaxed));
        let max = self.max_idle.load(Relaxed);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let expired = idle
            .iter()
            .take_while(|i| i.since.elapsed() >= timeout || i.sender.is_closed())
            .count();
        idle.drain(..expired);
        if idle.len() < max {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Number of idle connections.
    pub fn idle_len(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Drops every idle connection (the server went down or was ejected).
    pub fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Opens a new connection within `timeout`.
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<Sender, ProxyError> {
        self.connects_total.fetch_add(1, Relaxed);
        let res = connect(addr, timeout).await;
        if res.is_err() {
            self.connect_failures_total.fetch_add(1, Relaxed);
        }
        res
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sender, ProxyError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ProxyError::ConnectTimeout),
        Ok(Err(e)) => return Err(ProxyError::Connect(e.kind())),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ProxyError::Connect(std::io::ErrorKind::ConnectionAborted))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

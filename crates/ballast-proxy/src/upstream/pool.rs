//! Keep-alive connections to one server.
//!
//! Connections are [`Conn`]s of `upstream::h1`, Ballast's own HTTP/1.1 client. Idle ones are
//! kept LIFO (the warmest connection is reused first) and handed back by the response body when
//! its last byte has been read (see `h1::body`), never before, so a connection in the pool is
//! always free for the next request. Expired connections, and those the server closed while
//! idle, are dropped on the way out; expired ones are also closed by the gateway's sweeper
//! (`upstream::sweep`), so an idle pool shrinks to nothing within `idle_timeout` even when no
//! request comes to take from it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::h1::Conn;
use crate::error::ProxyError;

struct Idle {
    conn: Box<Conn>,
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
    pub fn take(&self) -> Option<Box<Conn>> {
        let timeout = Duration::from_millis(self.idle_timeout_ms.load(Relaxed));
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < timeout && i.conn.is_idle_open() {
                return Some(i.conn);
            }
        }
        None
    }

    /// Returns a connection whose exchange finished.
    pub fn put(&self, conn: Box<Conn>) {
        let timeout = Duration::from_millis(self.idle_timeout_ms.load(Relaxed));
        let max = self.max_idle.load(Relaxed);
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let expired = idle
            .iter()
            .take_while(|i| now.duration_since(i.since) >= timeout)
            .count();
        idle.drain(..expired);
        if idle.len() < max {
            idle.push(Idle { conn, since: now });
        }
    }

    /// Closes the connections idle for `idle_timeout` or longer (the sweeper's job). They are
    /// the oldest, at the front; they are closed after the lock is released.
    pub fn sweep(&self) -> usize {
        let timeout = Duration::from_millis(self.idle_timeout_ms.load(Relaxed));
        let now = Instant::now();
        let expired: Vec<Idle> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let n = idle
                .iter()
                .take_while(|i| now.duration_since(i.since) >= timeout)
                .count();
            if n == 0 {
                return 0;
            }
            idle.drain(..n).collect()
        };
        expired.len()
    }

    /// The idle timeout in force.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.load(Relaxed))
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
    pub async fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<Conn>, ProxyError> {
        self.connects_total.fetch_add(1, Relaxed);
        let res = connect(addr, timeout).await;
        if res.is_err() {
            self.connect_failures_total.fetch_add(1, Relaxed);
        }
        res
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Box<Conn>, ProxyError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ProxyError::ConnectTimeout),
        Ok(Err(e)) => return Err(ProxyError::Connect(e.kind())),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(Box::new(Conn::new(stream)))
}

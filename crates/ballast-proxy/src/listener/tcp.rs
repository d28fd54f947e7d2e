//! Layer-4 passthrough: each client connection is joined to one upstream server chosen by the
//! same balancer, health and failover rules as HTTP (a refused connect moves to the next server).
//! A session silent in both directions for the listener's `timeout.idle` is closed, so dead
//! peers do not pin sockets forever.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ballast_config::validate::defaults::{ATTEMPTS, CONNECT_TIMEOUT};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ListenerShared, Settings};
use crate::balancer::PickContext;
use crate::clock::now_ms;
use crate::upstream::{Outcome, Tried};

/// Serves one accepted connection.
pub(super) async fn connection(stream: TcpStream, client: SocketAddr, settings: &Settings) {
    serve(stream, client, &settings.shared, settings.cfg.idle_timeout).await
}

async fn serve(client_stream: TcpStream, client: SocketAddr, l: &ListenerShared, idle: Duration) {
    let _ = client_stream.set_nodelay(true);
    let Some(upstream) = l.tcp_upstream.load_full() else {
        return;
    };
    l.shared.global.tcp_connections.fetch_add(1, Relaxed);
    let mut tried = Tried::new();
    while (tried.len() as u32) < ATTEMPTS {
        let ctx = PickContext {
            client_ip: client.ip(),
            headers: None,
            path: "",
        };
        let Some(idx) = upstream.select(&ctx, &tried, None) else {
            break;
        };
        tried.push(idx);
        let state = &upstream.members[idx].state;
        let t0 = Instant::now();
        state.pool.connects_total.fetch_add(1, Relaxed);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(state.addr)).await;
        match connected {
            Ok(Ok(server)) => {
                upstream.record(idx, Outcome::Success);
                let _ = server.set_nodelay(true);
                let took = t0.elapsed();
                state.load.begin();
                let last = Arc::new(AtomicU64::new(now_ms()));
                let mut c = Stamped {
                    io: client_stream,
                    last: last.clone(),
                };
                let mut s = Stamped {
                    io: server,
                    last: last.clone(),
                };
                tokio::select! {
                    res = tokio::io::copy_bidirectional(&mut c, &mut s) => {
                        if let Err(e) = res {
                            tracing::debug!(%client, server = %state.addr, error = %e, "tcp session ended");
                        }
                    }
                    _ = silent_for(&last, idle) => {
                        tracing::debug!(%client, server = %state.addr, "tcp session idle; closed");
                    }
                }
                state.load.end(took);
                return;
            }
            _ => {
                // Counted per server, like HTTP connects (ballast_upstream_connect_failures_total).
                state.pool.connect_failures_total.fetch_add(1, Relaxed);
                upstream.record(idx, Outcome::Failure);
            }
        }
    }
    tracing::warn!(%client, upstream = %upstream.name, "no tcp server could take the connection");
}

/// Resolves once nothing was read on either side for `idle`.
async fn silent_for(last: &AtomicU64, idle: Duration) {
    let idle_ms = idle.as_millis() as u64;
    loop {
        let quiet = now_ms().saturating_sub(last.load(Relaxed));
        if quiet >= idle_ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(idle_ms - quiet)).await;
    }
}

/// A stream that stamps the time of every successful read, shared by both directions.
struct Stamped<S> {
    io: S,
    last: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Stamped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last.store(now_ms(), Relaxed);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stamped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

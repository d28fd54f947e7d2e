//! HTTP/1.1 and HTTP/2 connections (cleartext prior-knowledge h2c, or TLS with ALPN), served by
//! hyper with header size, header count and header read time limits.

use std::net::SocketAddr;
use std::sync::Arc;

use ballast_config::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::framing::FramingGuard;
use super::{ListenerShared, Settings};
use crate::http::forward;

/// hyper refuses read buffers below this size.
const MIN_BUF: usize = 8192;

/// The hyper connection builder for a listener's limits and timeouts.
pub(super) fn builder(cfg: &Listener) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .writev(false)
        .header_read_timeout(cfg.header_read_timeout)
        .max_buf_size(cfg.max_header_size.max(MIN_BUF))
        .max_headers(cfg.max_headers);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(cfg.max_header_size as u32)
        .keep_alive_interval(Some(cfg.idle_timeout))
        .keep_alive_timeout(cfg.header_read_timeout);
    b
}

/// Serves one accepted connection: the TLS handshake first when the settings have an acceptor.
pub(super) async fn connection(
    stream: TcpStream,
    client: SocketAddr,
    settings: &Settings,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let max_head = settings.cfg.max_header_size.max(MIN_BUF);
    let handshake_timeout = settings.cfg.header_read_timeout;
    let shared = settings.shared.clone();
    let builder = &settings.http;
    match &settings.acceptor {
        None => {
            serve(
                FramingGuard::new(stream, max_head).with_head_timeout(handshake_timeout),
                client,
                shared,
                builder,
                stop,
            )
            .await
        }
        Some(acceptor) => {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => {
                    serve(
                        FramingGuard::new(s, max_head).with_head_timeout(handshake_timeout),
                        client,
                        shared,
                        builder,
                        stop,
                    )
                    .await
                }
                Ok(Err(e)) => tracing::debug!(%client, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve<I>(
    io: I,
    client: SocketAddr,
    shared: Arc<ListenerShared>,
    builder: &auto::Builder<TokioExecutor>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client_value = crate::http::headers::client_value(client.ip());
    let svc = hyper::service::service_fn(move |req| {
        forward::handle(req, shared.clone(), client, client_value.clone())
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = super::stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(%client, error = %e, "client connection ended with an error");
    }
}

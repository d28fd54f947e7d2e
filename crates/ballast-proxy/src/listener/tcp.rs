//! Layer-4 passthrough: each client connection is joined to one upstream server chosen by the
//! same balancer, health and failover rules as HTTP (a refused connect moves to the next server).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use ballast_config::validate::defaults::{ATTEMPTS, CONNECT_TIMEOUT};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ConnTracker, ListenerShared};
use crate::balancer::PickContext;
use crate::upstream::{Outcome, Tried};

/// Starts the accept loop.
pub fn spawn(
    listener: TcpListener,
    shared: Arc<ListenerShared>,
    mut stop: watch::Receiver<bool>,
    conns: Arc<ConnTracker>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, client) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => continue,
                },
                _ = super::stopped(&mut stop) => break,
            };
            let guard = conns.track();
            let shared = shared.clone();
            tokio::spawn(async move {
                let _guard = guard;
                serve(stream, client, &shared).await;
            });
        }
    })
}

async fn serve(mut client_stream: TcpStream, client: SocketAddr, l: &ListenerShared) {
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
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(state.addr)).await;
        match connected {
            Ok(Ok(mut server)) => {
                upstream.record(idx, Outcome::Success);
                let _ = server.set_nodelay(true);
                let took = t0.elapsed();
                state.load.begin();
                let res = tokio::io::copy_bidirectional(&mut client_stream, &mut server).await;
                state.load.end(took);
                if let Err(e) = res {
                    tracing::debug!(%client, server = %state.addr, error = %e, "tcp session ended");
                }
                return;
            }
            _ => {
                l.shared.global.tcp_connect_failures.fetch_add(1, Relaxed);
                upstream.record(idx, Outcome::Failure);
            }
        }
    }
    tracing::warn!(%client, upstream = %upstream.name, "no tcp server could take the connection");
}

//! The one accept loop every listener runs, whatever its protocol. It reads the listener's
//! [`Settings`] afresh for each connection, so a reload can change the protocol, the
//! certificates or the limits of a socket that stays bound; each connection keeps the settings
//! it was accepted with.

use std::sync::Arc;

use arc_swap::ArcSwap;
use ballast_config::Protocol;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{http, tcp, ConnTracker, Settings};

pub(super) fn spawn(
    listener: TcpListener,
    live: Arc<ArcSwap<Settings>>,
    mut stop: watch::Receiver<bool>,
    conns: Arc<ConnTracker>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, client) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors, typically: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = super::stopped(&mut stop) => break,
            };
            let settings = live.load_full();
            let guard = conns.track();
            let stop = stop.clone();
            tokio::spawn(async move {
                let _guard = guard;
                match settings.cfg.protocol {
                    Protocol::Tcp => tcp::connection(stream, client, &settings).await,
                    Protocol::Http | Protocol::Https => {
                        http::connection(stream, client, &settings, stop).await
                    }
                }
            });
        }
    })
}

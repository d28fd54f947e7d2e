//! Protocol upgrades (WebSocket and others) pass through: once the upstream answers
//! `101 Switching Protocols`, both upgraded connections are joined byte for byte.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::shared::Shared;

/// Joins the client's and the upstream's upgraded connections in a background task.
pub fn tunnel(client: OnUpgrade, upstream: OnUpgrade, shared: Arc<Shared>) {
    shared.global.upgrades.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let (c, u) = tokio::join!(client, upstream);
        match (c, u) {
            (Ok(c), Ok(u)) => {
                let mut c = TokioIo::new(c);
                let mut u = TokioIo::new(u);
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                    tracing::debug!(error = %e, "upgraded connection ended");
                }
            }
            (c, u) => tracing::debug!(
                client_ok = c.is_ok(),
                upstream_ok = u.is_ok(),
                "upgrade failed"
            ),
        }
    });
}

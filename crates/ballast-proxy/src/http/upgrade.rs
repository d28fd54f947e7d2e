//! Protocol upgrades (WebSocket and others) pass through: once the upstream answers
//! `101 Switching Protocols`, both upgraded connections are joined byte for byte.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::shared::Shared;
use crate::upstream::h1::Conn;

/// Joins the client's upgraded connection and the upstream's connection in a background task.
/// Bytes the upstream sent right behind its `101` head go to the client first.
pub fn tunnel(client: OnUpgrade, upstream: Box<Conn>, shared: Arc<Shared>) {
    shared.global.upgrades.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        let (mut u, early) = upstream.into_parts();
        let c = match client.await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "client side of the upgrade failed");
                return;
            }
        };
        let mut c = TokioIo::new(c);
        if !early.is_empty() && c.write_all(&early).await.is_err() {
            return;
        }
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
            tracing::debug!(error = %e, "upgraded connection ended");
        }
    });
}

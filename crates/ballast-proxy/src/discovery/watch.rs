//! The re-resolution task of one name: sleep until the answer is due, ask, and on a change
//! have the upstream rebuilt; on a failure keep the last good set and say so.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ballast_core::Event;
use hickory_resolver::TokioResolver;
use tokio::task::JoinHandle;

use super::{resolve, swap, NameKey};
use crate::gateway::{Gateway, Inner};

/// Runs until aborted (by the next reload or shutdown) or until the gateway is gone.
pub(super) fn spawn(
    gw: Weak<Inner>,
    key: NameKey,
    resolver: Arc<TokioResolver>,
    interval: Duration,
    first: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = first;
        loop {
            tokio::time::sleep(delay).await;
            let Some(inner) = gw.upgrade() else { return };
            let events = inner.shared.events.clone();
            match resolve::lookup(&resolver, &key.host, key.port).await {
                Ok((addrs, ttl)) => {
                    delay = resolve::next_delay(ttl, interval);
                    let Some((added, removed)) = inner.discovery.update(&key, addrs, delay) else {
                        continue;
                    };
                    tracing::info!(upstream = %key.upstream, name = %key.label(), ?added, ?removed, "server name resolves to other addresses");
                    // A task of its own: aborting this watcher (a reload restarts watchers)
                    // must not lose a change already recorded in the answers.
                    let (gw, key) = (Gateway { inner }, key.clone());
                    tokio::spawn(async move {
                        swap::apply(&gw, &key.upstream).await;
                        events.emit(Event::DnsChanged {
                            upstream: key.upstream.clone(),
                            name: key.label(),
                            added: added.iter().map(ToString::to_string).collect(),
                            removed: removed.iter().map(ToString::to_string).collect(),
                        });
                    });
                }
                Err(error) => {
                    tracing::warn!(upstream = %key.upstream, name = %key.label(), %error, "server name did not resolve; the last good addresses stay");
                    events.emit(Event::DnsFailed {
                        upstream: key.upstream.clone(),
                        name: key.label(),
                        error,
                    });
                }
            }
        }
    })
}

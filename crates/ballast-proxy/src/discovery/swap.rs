//! Rebuilding one upstream after its names resolved to other addresses, and swapping the new
//! pool in without a request ever waiting.
//!
//! The rebuild takes the reload lock (the listeners' mutex) for the few microseconds of the
//! swap only, never across a lookup: that serializes it with reloads, so neither can publish a
//! pool built from a config or an answer the other has replaced. It builds the upstream from
//! the config in force and the answers kept by `discovery`, reusing the `ServerState` of every
//! address it keeps (health, ejections, pooled connections and counters carry over, as on
//! reload), then stores it with one atomic store per route table. Requests in flight hold the
//! old `Arc`s and finish on them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::gateway::Gateway;
use crate::health;
use crate::router::{RouteRt, RouteTable};
use crate::upstream::{ServerState, Upstream};

/// Rebuilds upstream `name` from the current config and answers, and publishes it.
pub(super) async fn apply(gw: &Gateway, name: &str) {
    let inner = &gw.inner;
    let listeners = inner.listeners.lock().await;
    let config = inner.config.load_full();
    let Some(cfg) = config.upstream(name) else {
        return;
    };
    let Some(old) = inner.upstreams.load().get(name).cloned() else {
        return;
    };
    let specs = inner.discovery.members(cfg);
    let mut added: Vec<Arc<ServerState>> = Vec::new();
    let up = {
        let mut servers = inner.servers.lock().unwrap_or_else(|e| e.into_inner());
        let mut up = Upstream::new(cfg, &specs, inner.shared.events.clone(), |u, addr| {
            servers
                .entry((u.to_string(), addr))
                .or_insert_with(|| {
                    // Joins through active checks when there are some, else at once; slow
                    // start applies either way.
                    let s = Arc::new(if cfg.health.is_some() {
                        ServerState::new_pending(u, addr)
                    } else {
                        ServerState::new_added(u, addr)
                    });
                    added.push(s.clone());
                    s
                })
                .clone()
        });
        up.admission = old.admission.clone();
        let kept: HashSet<SocketAddr> = specs.iter().map(|s| s.addr).collect();
        for m in old.members.iter().filter(|m| !kept.contains(&m.state.addr)) {
            // Drained: a request that loaded the old table a moment ago cannot pick it.
            m.state.set_drained(true);
            servers.remove(&(name.to_string(), m.state.addr));
        }
        Arc::new(up)
    };

    let mut map = (**inner.upstreams.load()).clone();
    map.insert(name.to_string(), up.clone());
    inner.upstreams.store(Arc::new(map));
    // A route rerouted to this upstream is rebuilt over its new members too.
    gw.keep_overrides(&config);
    let registry = &inner.shared.registry;
    for r in listeners.iter() {
        let settings = r.settings();
        let l_shared = &settings.shared;
        let table = l_shared.table.load();
        if table.routes.iter().any(|rt| rt.upstream.name == name) {
            let routes = table
                .routes
                .iter()
                .map(|rt| {
                    if rt.upstream.name == name {
                        Arc::new(RouteRt::new(rt.cfg.clone(), up.clone(), registry))
                    } else {
                        rt.clone()
                    }
                })
                .collect();
            l_shared.table.store(Arc::new(RouteTable { routes }));
        }
        if l_shared
            .tcp_upstream
            .load()
            .as_ref()
            .is_some_and(|t| t.name == name)
        {
            l_shared.tcp_upstream.store(Some(up.clone()));
        }
    }

    let mut tasks = inner.health_tasks.lock().unwrap_or_else(|e| e.into_inner());
    for m in &old.members {
        if !up.members.iter().any(|n| n.state.addr == m.state.addr) {
            if let Some(t) = tasks.remove(&(name.to_string(), m.state.addr)) {
                t.abort();
            }
        }
    }
    if let Some(h) = up.health() {
        let uneject = up.passive().is_some_and(|p| p.uneject_on_check);
        for s in added {
            let task = health::active::spawn(
                name.to_string(),
                s.clone(),
                h.clone(),
                uneject,
                inner.shared.events.clone(),
            );
            if let Some(t) = tasks.insert((name.to_string(), s.addr), task) {
                t.abort();
            }
        }
    }
}

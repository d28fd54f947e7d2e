//! Upstream servers by DNS name (`addr = "app.internal:8080"`).
//!
//! Why here and not in the config crate: resolving is I/O that repeats for as long as the
//! gateway runs. Validation only checks a name's shape; this module resolves every name before
//! a config is applied (a name that does not resolve refuses the start or the reload), keeps
//! the last good answer of each name, and re-resolves each one on its own schedule: at the
//! answer's TTL, at least every `[runtime] dns_interval`, at most once a second.
//!
//! A changed answer rebuilds that one upstream's membership from the config in force and the
//! answers kept here, reusing the `ServerState` of every address it keeps, and swaps it into
//! the route tables atomically ([`swap`]). New addresses join through active health checks
//! (down until `rise` good checks) or at once when the upstream has none, ramping up under
//! slow start; gone addresses are drained: requests already on them finish, new ones cannot
//! pick them. A failed resolution keeps the last good set and emits `Event::DnsFailed`; a
//! change emits `Event::DnsChanged`. IP literals never come here: they stay the fast path.
//!
//! Nothing here runs on the request path; requests only ever see the swapped `Arc`s.

mod resolve;
mod swap;
mod watch;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ballast_config::{Config, ServerAddr, Upstream as UpstreamConfig};
use hickory_resolver::TokioResolver;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::upstream::MemberSpec;

/// Why names could not be resolved before a config was applied.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot read the system's DNS settings ({0}); set [runtime] resolver = \"IP:port\"")]
    System(String),
    #[error("upstream `{upstream}`: server `{name}` does not resolve: {error}")]
    Unresolved {
        upstream: String,
        name: String,
        error: String,
    },
}

/// One name of one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NameKey {
    upstream: String,
    host: String,
    port: u16,
}

impl NameKey {
    /// `host:port`, as written in the config (events and status show this).
    fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The last good answer for a name, and when to ask again.
struct Answer {
    addrs: Vec<SocketAddr>,
    next: Duration,
}

/// The gateway's resolver, the last good answer of every name, and the re-resolution tasks.
#[derive(Default)]
pub(crate) struct Discovery {
    /// Built on first need (a config without names never reads resolv.conf), rebuilt when
    /// `[runtime] resolver` changes.
    resolver: Mutex<Option<(Option<SocketAddr>, Arc<TokioResolver>)>>,
    answers: Mutex<HashMap<NameKey, Answer>>,
    watchers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every name in `config`, once per upstream.
fn names(config: &Config) -> Vec<NameKey> {
    let mut seen = HashSet::new();
    config
        .upstreams
        .iter()
        .flat_map(|u| {
            u.servers.iter().filter_map(|s| match &s.addr {
                ServerAddr::Name { host, port } => Some(NameKey {
                    upstream: u.name.clone(),
                    host: host.clone(),
                    port: *port,
                }),
                ServerAddr::Ip(_) => None,
            })
        })
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

impl Discovery {
    fn resolver(&self, nameserver: Option<SocketAddr>) -> Result<Arc<TokioResolver>, DnsError> {
        let mut current = lock(&self.resolver);
        if let Some((ns, r)) = current.as_ref() {
            if *ns == nameserver {
                return Ok(r.clone());
            }
        }
        let r = Arc::new(resolve::build(nameserver)?);
        *current = Some((nameserver, r.clone()));
        Ok(r)
    }

    /// Resolves every name of `config` that has no answer yet. Runs before `config` is
    /// applied: an error refuses it, and the running state stays as it was.
    pub(crate) async fn prepare(&self, config: &Config) -> Result<(), DnsError> {
        let keys = names(config);
        if keys.is_empty() {
            return Ok(());
        }
        let resolver = self.resolver(config.runtime.resolver)?;
        for key in keys {
            if lock(&self.answers).contains_key(&key) {
                continue;
            }
            let (addrs, ttl) = resolve::lookup(&resolver, &key.host, key.port)
                .await
                .map_err(|error| DnsError::Unresolved {
                    upstream: key.upstream.clone(),
                    name: key.label(),
                    error,
                })?;
            tracing::info!(upstream = %key.upstream, name = %key.label(), addrs = ?addrs, ?ttl, "server name resolved");
            let next = resolve::next_delay(ttl, config.runtime.dns_interval);
            lock(&self.answers).insert(key, Answer { addrs, next });
        }
        Ok(())
    }

    /// The concrete servers of `u`: IPs as written, names replaced by their last good
    /// addresses. An address listed twice (as an IP and under a name, or under two names) is
    /// served once, by its first entry.
    pub(crate) fn members(&self, u: &UpstreamConfig) -> Vec<MemberSpec> {
        let answers = lock(&self.answers);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(u.servers.len());
        for s in &u.servers {
            let spec = |addr, name: Option<Arc<str>>| MemberSpec {
                addr,
                weight: s.weight,
                backup: s.backup,
                name,
            };
            match &s.addr {
                ServerAddr::Ip(a) => {
                    if seen.insert(*a) {
                        out.push(spec(*a, None));
                    }
                }
                ServerAddr::Name { host, port } => {
                    let key = NameKey {
                        upstream: u.name.clone(),
                        host: host.clone(),
                        port: *port,
                    };
                    let name: Arc<str> = Arc::from(key.label());
                    for a in answers.get(&key).map_or(&[][..], |a| &a.addrs) {
                        if seen.insert(*a) {
                            out.push(spec(*a, Some(name.clone())));
                        }
                    }
                }
            }
        }
        out
    }

    /// Starts re-resolving the names of `config` (just applied), replacing earlier watchers,
    /// and forgets the answers of names it no longer has.
    pub(crate) fn watch(&self, gw: &Gateway, config: &Config) {
        let keys = names(config);
        let mut watchers = lock(&self.watchers);
        for w in watchers.drain(..) {
            w.abort();
        }
        let wanted: HashSet<&NameKey> = keys.iter().collect();
        lock(&self.answers).retain(|k, _| wanted.contains(k));
        if keys.is_empty() {
            return;
        }
        let Ok(resolver) = self.resolver(config.runtime.resolver) else {
            // Unreachable in practice: `prepare` built this resolver for this config.
            tracing::error!("no resolver: server names are not re-resolved");
            return;
        };
        for key in keys {
            let first = lock(&self.answers)
                .get(&key)
                .map_or(config.runtime.dns_interval, |a| a.next);
            watchers.push(watch::spawn(
                Arc::downgrade(&gw.inner),
                key,
                resolver.clone(),
                config.runtime.dns_interval,
                first,
            ));
        }
    }

    /// Stops every re-resolution (at shutdown).
    pub(crate) fn stop(&self) {
        for w in lock(&self.watchers).drain(..) {
            w.abort();
        }
    }

    /// Records a good answer; returns the addresses added and removed when the set changed.
    fn update(
        &self,
        key: &NameKey,
        addrs: Vec<SocketAddr>,
        next: Duration,
    ) -> Option<(Vec<SocketAddr>, Vec<SocketAddr>)> {
        let mut answers = lock(&self.answers);
        // A name dropped by a reload meanwhile is not brought back.
        let answer = answers.get_mut(key)?;
        answer.next = next;
        if answer.addrs == addrs {
            return None;
        }
        let added = addrs
            .iter()
            .filter(|a| !answer.addrs.contains(a))
            .copied()
            .collect();
        let removed = answer
            .addrs
            .iter()
            .filter(|a| !addrs.contains(a))
            .copied()
            .collect();
        answer.addrs = addrs;
        Some((added, removed))
    }
}

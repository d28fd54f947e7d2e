//! How a config is put onto the listeners, in two steps so that a refused config changes
//! nothing and an accepted one never closes a socket it keeps.
//!
//! [`prepare`] does everything that can fail, with no effect on what is serving: it re-reads
//! every certificate (even when its paths did not change: certbot rewrites files in place) and
//! binds a socket for every address no running listener holds. [`Plan::apply`] cannot fail:
//! a socket whose address stays in the config gets the new settings swapped into its accept
//! loop (protocol, certificates, limits, timeouts, routes); new sockets start accepting; only
//! then are the sockets whose address left the config stopped. A listener is identified by its
//! address, so renaming a listener or changing its TLS never re-binds.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use ballast_config::{Listener, Protocol};
use ballast_core::Event;
use tokio_rustls::TlsAcceptor;

use super::tls::{self, CertSet};
use super::{bind, Bound, ConnTracker, ListenError, ListenerShared, Running, Settings};
use crate::router::RouteTable;
use crate::shared::Shared;
use crate::upstream::Upstream;

/// What the new config asks of one listener.
pub struct Wanted {
    pub cfg: Listener,
    pub table: Arc<RouteTable>,
    pub tcp_upstream: Option<Arc<Upstream>>,
}

enum Socket {
    /// The running listener at this index keeps its socket.
    Keep(usize),
    Fresh(Bound),
}

struct Item {
    wanted: Wanted,
    tls: Option<(Arc<CertSet>, TlsAcceptor)>,
    socket: Socket,
}

/// A prepared config: certificates loaded, new sockets bound. Dropping it unapplied closes the
/// new sockets and leaves the running listeners as they were.
pub struct Plan {
    items: Vec<Item>,
}

/// What [`Plan::apply`] did.
pub struct Applied {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    /// Certificates in force, by listener name.
    pub certs: BTreeMap<String, Arc<CertSet>>,
}

/// Loads certificates and binds new sockets for `wanted`, given the listeners `running` now.
pub fn prepare(wanted: Vec<Wanted>, running: &[Running]) -> Result<Plan, ListenError> {
    let provider = tls::provider();
    let mut certs = Vec::with_capacity(wanted.len());
    for w in &wanted {
        certs.push(match w.cfg.protocol {
            Protocol::Https => {
                let set = tls::load(&w.cfg, &provider)?;
                let acceptor = tls::acceptor(&set)?;
                Some((Arc::new(set), acceptor))
            }
            Protocol::Http | Protocol::Tcp => None,
        });
    }
    let running_addrs: Vec<_> = running.iter().map(|r| r.settings().cfg.listen).collect();
    let mut claimed = vec![false; running.len()];
    let mut items = Vec::with_capacity(wanted.len());
    for (wanted, tls) in wanted.into_iter().zip(certs) {
        let keep = running_addrs
            .iter()
            .enumerate()
            .position(|(i, a)| !claimed[i] && *a == wanted.cfg.listen);
        let socket = match keep {
            Some(i) => {
                claimed[i] = true;
                Socket::Keep(i)
            }
            None => Socket::Fresh(bind(&wanted.cfg)?),
        };
        items.push(Item {
            wanted,
            tls,
            socket,
        });
    }
    Ok(Plan { items })
}

fn new_shared(w: &Wanted, shared: &Arc<Shared>) -> Arc<ListenerShared> {
    Arc::new(ListenerShared {
        name: Arc::from(w.cfg.name.as_str()),
        tls: w.cfg.protocol == Protocol::Https,
        table: ArcSwap::new(w.table.clone()),
        tcp_upstream: ArcSwapOption::new(w.tcp_upstream.clone()),
        shared: shared.clone(),
    })
}

impl Plan {
    /// Puts the plan into effect; `running` becomes the new set of listeners.
    pub fn apply(
        self,
        running: &mut Vec<Running>,
        shared: &Arc<Shared>,
        conns: &Arc<ConnTracker>,
    ) -> Applied {
        let mut old: Vec<Option<Running>> = running.drain(..).map(Some).collect();
        let mut applied = Applied {
            started: Vec::new(),
            stopped: Vec::new(),
            certs: BTreeMap::new(),
        };
        for item in self.items {
            let Item {
                wanted,
                tls,
                socket,
            } = item;
            if let Some((set, _)) = &tls {
                announce_certs(set, shared);
                applied.certs.insert(wanted.cfg.name.clone(), set.clone());
            }
            let kept = match socket {
                Socket::Keep(i) => old.get_mut(i).and_then(Option::take),
                Socket::Fresh(_) => None,
            };
            match (kept, socket) {
                (Some(r), _) => {
                    let cur = r.settings();
                    // Connections already open route by the new tables too.
                    cur.shared.table.store(wanted.table.clone());
                    cur.shared.tcp_upstream.store(wanted.tcp_upstream.clone());
                    let same = *cur.shared.name == *wanted.cfg.name
                        && cur.shared.tls == (wanted.cfg.protocol == Protocol::Https);
                    let l_shared = if same {
                        cur.shared.clone()
                    } else {
                        new_shared(&wanted, shared)
                    };
                    r.live
                        .store(Arc::new(Settings::new(wanted.cfg, l_shared, tls)));
                    running.push(r);
                }
                (None, Socket::Fresh(bound)) => {
                    let l_shared = new_shared(&wanted, shared);
                    let cfg = wanted.cfg;
                    let (name, protocol) = (cfg.name.clone(), cfg.protocol.name());
                    let r = Running::spawn(bound, Settings::new(cfg, l_shared, tls), conns.clone());
                    tracing::info!(listener = %name, addr = %r.local_addr, protocol, "listener started");
                    shared.events.emit(Event::ListenerStarted {
                        listener: name.clone(),
                        addr: r.local_addr.to_string(),
                        protocol: protocol.to_string(),
                    });
                    applied.started.push(name);
                    running.push(r);
                }
                // `prepare` gives each kept index to one listener only.
                (None, Socket::Keep(_)) => {}
            }
        }
        for r in old.into_iter().flatten() {
            let name = r.settings().cfg.name.clone();
            r.stop();
            tracing::info!(listener = %name, addr = %r.local_addr, "listener stopped");
            shared.events.emit(Event::ListenerStopped {
                listener: name.clone(),
                addr: r.local_addr.to_string(),
            });
            applied.stopped.push(name);
        }
        applied
    }
}

/// Logs and emits each certificate of `set`, warning about those expiring soon.
fn announce_certs(set: &CertSet, shared: &Shared) {
    let now = tls::now_unix();
    for c in &set.certs {
        tracing::info!(
            listener = %set.listener,
            names = ?c.names,
            subject = %c.subject,
            not_after = %c.not_after_text(),
            "certificate loaded"
        );
        shared.events.emit(Event::CertificateLoaded {
            listener: set.listener.clone(),
            names: c.names.clone(),
            subject: c.subject.clone(),
            not_after_unix: c.not_after_unix,
            days_left: c.days_left(now),
        });
    }
    for w in set.warnings(now) {
        tracing::warn!("{w}");
    }
}

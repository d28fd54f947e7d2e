//! An upstream pool at run time: its servers (with their persistent state), its balancer, and
//! the rules for who may take a request.
//!
//! Eligibility is decided here so every algorithm gets failover for free: available primaries
//! first; backups only when no primary is available (or every available primary has already
//! failed this very request: then a backup is the last resort before an error); servers already tried by this request are
//! skipped; a sticky client goes to its pinned server while that server is available.

pub mod breaker;
pub mod h1;
pub mod pool;
pub mod server;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use ballast_config::{Health, Passive, Upstream as UpstreamConfig};
use ballast_core::{Event, UnejectCause};
use smallvec::SmallVec;

use crate::balancer::{self, Balancer, Candidate, PickContext};
use crate::clock::now_ms;
pub use server::{Outcome, ServerState};

/// One server as configured, with its live state.
pub struct Member {
    pub weight: u32,
    pub backup: bool,
    /// The DNS name (`host:port`) this address came from; `None` for an IP written as such.
    pub name: Option<Arc<str>>,
    pub state: Arc<ServerState>,
}

/// One concrete server of an upstream: a configured IP, or one address a name resolved to
/// (see `discovery`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSpec {
    pub addr: std::net::SocketAddr,
    pub weight: u32,
    pub backup: bool,
    pub name: Option<Arc<str>>,
}

/// A pool of servers behind one balancer.
pub struct Upstream {
    pub name: String,
    pub config: UpstreamConfig,
    pub members: Vec<Member>,
    balancer: Box<dyn Balancer>,
    /// Serializes ejection decisions: the cap check (count the ejected) and the ejection itself
    /// must be one step, or two servers failing at once could both pass the check.
    ejecting: std::sync::Mutex<()>,
    /// Retries to this upstream, against its requests (see `resilience::budget`).
    pub retry_budget: crate::resilience::budget::RetryBudget,
    /// Concurrency limit and priority shedding, when configured.
    pub admission: Option<Arc<crate::resilience::admission::Admission>>,
    events: Arc<crate::events::EventLog>,
}

/// Indexes of members already tried by one request.
pub type Tried = SmallVec<[usize; 4]>;

impl Upstream {
    /// Builds the runtime pool of `servers` (the upstream's servers with names resolved);
    /// `state_for` returns the (possibly carried-over) state of a server.
    pub fn new(
        config: &UpstreamConfig,
        servers: &[MemberSpec],
        events: Arc<crate::events::EventLog>,
        mut state_for: impl FnMut(&str, std::net::SocketAddr) -> Arc<ServerState>,
    ) -> Self {
        let members: Vec<Member> = servers
            .iter()
            .map(|s| {
                let state = state_for(&config.name, s.addr);
                state
                    .pool
                    .configure(config.pool.max_idle, config.pool.idle_timeout);
                Member {
                    weight: s.weight,
                    backup: s.backup,
                    name: s.name.clone(),
                    state,
                }
            })
            .collect();
        let specs: Vec<_> = servers.iter().map(|s| (s.addr, s.weight)).collect();
        Self {
            name: config.name.clone(),
            balancer: balancer::build(&config.balance, &specs),
            config: config.clone(),
            members,
            ejecting: std::sync::Mutex::new(()),
            retry_budget: Default::default(),
            admission: None,
            events,
        }
    }

    pub fn passive(&self) -> Option<&Passive> {
        self.config.passive.as_ref()
    }

    pub fn health(&self) -> Option<&Health> {
        self.config.health.as_ref()
    }

    pub fn slow_start(&self) -> Option<Duration> {
        self.config.slow_start
    }

    /// Chooses a member for a request, or `None` when no server may take it.
    pub fn select(
        &self,
        ctx: &PickContext<'_>,
        tried: &[usize],
        sticky: Option<&str>,
    ) -> Option<usize> {
        let now = now_ms();
        if let Some(id) = sticky {
            if let Some(i) = self.members.iter().position(|m| m.state.cookie_id == id) {
                if !tried.contains(&i) && self.eligible(&self.members[i], now) {
                    self.picked(i, now);
                    return Some(i);
                }
            }
        }
        for backup in [false, true] {
            let candidates: SmallVec<[Candidate<'_>; 8]> = self
                .members
                .iter()
                .enumerate()
                .filter(|(i, m)| m.backup == backup && !tried.contains(i) && self.eligible(m, now))
                .map(|(i, m)| Candidate {
                    index: i,
                    weight: m.state.effective_weight(m.weight, self.slow_start(), now),
                    load: &m.state.load,
                })
                .collect();
            if !candidates.is_empty() {
                let k = self.balancer.pick(&candidates, ctx);
                let index = candidates[k.min(candidates.len() - 1)].index;
                self.picked(index, now);
                return Some(index);
            }
        }
        None
    }

    /// Available (health, drain, ejection) and let through by its circuit breaker.
    fn eligible(&self, m: &Member, now: u64) -> bool {
        m.state.is_available(now)
            && self
                .config
                .breaker
                .as_ref()
                .is_none_or(|b| m.state.breaker.permits(b, now))
    }

    /// A member was chosen: past its breaker's cool-down, this request is a probe.
    fn picked(&self, index: usize, now: u64) {
        if let Some(cfg) = &self.config.breaker {
            if let Some(t) = self.members[index].state.breaker.picked(cfg, now) {
                self.breaker_event(index, t);
            }
        }
    }

    fn breaker_event(&self, index: usize, t: breaker::Transition) {
        let addr = self.members[index].state.addr;
        tracing::warn!(upstream = %self.name, server = %addr, transition = ?t, "circuit breaker");
        let (upstream, server) = (self.name.clone(), addr.to_string());
        self.events.emit(match t {
            breaker::Transition::Opened => Event::BreakerOpened { upstream, server },
            breaker::Transition::HalfOpened => Event::BreakerHalfOpened { upstream, server },
            breaker::Transition::Closed => Event::BreakerClosed { upstream, server },
        });
    }

    /// Records an attempt's outcome for passive health (honouring the ejection cap) and for
    /// the server's circuit breaker.
    pub fn record(&self, index: usize, outcome: Outcome) -> bool {
        let Some(m) = self.members.get(index) else {
            return false;
        };
        if let Some(b) = &self.config.breaker {
            if let Some(t) = m.state.breaker.record(b, outcome, now_ms()) {
                self.breaker_event(index, t);
            }
        }
        // Only a failure can eject; successes stay lock-free.
        let guard = (outcome == Outcome::Failure)
            .then(|| self.ejecting.lock().unwrap_or_else(|e| e.into_inner()));
        let ejected = m.state.record_outcome(outcome, self.passive(), || {
            let cap = self.passive().map_or(0.0, |p| p.max_ejected);
            let now = now_ms();
            let ejected = self
                .members
                .iter()
                .filter(|m| m.state.is_ejected(now))
                .count();
            ((ejected + 1) as f64) <= cap * self.members.len() as f64
        });
        drop(guard);
        if ejected {
            let ejection_ms = m.state.ejected_for_ms(now_ms());
            tracing::warn!(upstream = %self.name, server = %m.state.addr, ejection_ms, "server ejected");
            self.events.emit(Event::ServerEjected {
                upstream: self.name.clone(),
                server: m.state.addr_text.clone(),
                ejection_ms,
            });
        }
        ejected
    }

    /// Periodic upkeep (see [`sweep`]): closes pooled connections idle past the pool's
    /// `idle_timeout` and announces ejections whose back-off ran out.
    pub fn sweep(&self, now: u64) {
        for m in &self.members {
            m.state.pool.sweep();
            if m.state.take_expired(now) {
                tracing::info!(upstream = %self.name, server = %m.state.addr, "ejection expired");
                self.events.emit(Event::ServerUnejected {
                    upstream: self.name.clone(),
                    server: m.state.addr_text.clone(),
                    cause: UnejectCause::Expired,
                });
            }
        }
    }

    /// Whether any primary is available (backups are idle).
    pub fn primaries_available(&self) -> bool {
        let now = now_ms();
        self.members
            .iter()
            .any(|m| !m.backup && self.eligible(m, now))
    }
}

//! Runtime overrides set by commands (`Reroute`, `Shed`), for automatic remediation and for
//! operators: state that is not in the config file and is read on every request.
//!
//! Why a separate table: the config says how a route is meant to be served; a remediation
//! needs to change that *now* (send a route to a standby upstream or to its sorry page, refuse
//! part of a priority class) without writing the file, and undo it later. So the overrides
//! sit beside the route tables and the request path asks them first.
//!
//! Cost on the request path: one relaxed atomic load per request for each kind
//! (`any_route`, the class's shed share) when nothing is overridden; with route overrides set,
//! one `ArcSwap` read and a map lookup by route name. Never a lock: writers (commands and
//! reloads) build a new map and swap it in, serialized by their own mutex.
//!
//! Reloads: route overrides are **kept across reloads** when the route still exists and, for
//! a reroute to an upstream, that upstream still exists; they are rebuilt over the new config
//! (the route's new settings, the new upstream's servers, its new sorry page). An override
//! whose route or target is gone is dropped and the drop is recorded as a
//! `route_rerouted` event with `to: null` by `gateway`. Shed shares are per class and always
//! survive reloads. A DNS answer that changes an upstream's members rebuilds the overrides
//! the same way. A restart forgets every override.
//!
//! Where they act on a request (`http::forward`): a reroute right after the route matched
//! (a sorry page is served before anything else); a forced shed where admission control
//! acts, after a fresh cache hit (which costs no upstream anything) and before it.
//!
//! A route sent to another upstream bypasses its response cache (answers of the standby are
//! not stored as the route's, and the configured upstream's stored answers are not served):
//! the route's cache in the registry belongs to its configured upstream and is left intact
//! for when the route is restored. Flood guard, waiting room, priority and retry policy stay
//! the route's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use ballast_config::model::SorryPage;
use ballast_config::{Config, Priority, Route};

use crate::router::RouteRt;
use crate::stats::StatsRegistry;
use crate::upstream::Upstream;

/// What `to` names the sorry page by (as the remediation's `route` action does).
pub const SORRY: &str = "sorry";

/// Where an overridden route's requests go.
#[derive(Clone)]
pub enum Rerouted {
    /// Served the page from memory; no upstream is asked.
    Sorry(Arc<SorryPage>),
    /// Proxied as the route, but to another upstream.
    To(Arc<RouteRt>),
}

/// Why an override could not be set. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    #[error("no route named `{0}`")]
    NoRoute(String),
    #[error("no upstream named `{0}` (write \"sorry\" for the route's sorry page)")]
    NoUpstream(String),
    #[error("`{0}` is not a priority class: write critical, high, normal or low")]
    NoClass(String),
    #[error("share {0} is outside (0, 1]: write e.g. 0.5, or null to clear it")]
    BadShare(f64),
}

/// One route override as asked: the target's name, kept so a reload can rebuild it.
#[derive(Clone)]
struct Entry {
    to: String,
    now: Rerouted,
}

/// The runtime overrides of one gateway (in [`crate::shared::Shared`], so every listener
/// reads them and they live as long as the process).
#[derive(Default)]
pub struct Overrides {
    /// True while `routes` is not empty: the only thing a request reads when nothing is set.
    any_route: AtomicBool,
    routes: ArcSwap<HashMap<String, Entry>>,
    /// Forced shed share per class (by [`Priority::rank`]), as `f64` bits; 0 is none.
    shed: [AtomicU64; 4],
    /// Serializes writers (commands and reloads); never taken by a request.
    write: Mutex<()>,
}

/// The built-in sorry page, for a route rerouted to `sorry` without a page of its own: the
/// same page and `Retry-After` as a route with `sorry = {}` gets.
fn builtin_sorry() -> SorryPage {
    SorryPage {
        body: bytes::Bytes::from_static(ballast_config::validate::BUILTIN_SORRY_PAGE.as_bytes()),
        on_status: vec![502, 503, 504],
        retry_after: Duration::from_secs(30),
    }
}

/// Builds what `route` is sent to for `to` over `upstreams`.
fn resolve(
    route: &Route,
    to: &str,
    upstreams: &HashMap<String, Arc<Upstream>>,
    stats: &StatsRegistry,
) -> Result<Rerouted, OverrideError> {
    if to == SORRY {
        let page = route.sorry.clone().unwrap_or_else(builtin_sorry);
        return Ok(Rerouted::Sorry(Arc::new(page)));
    }
    let up = upstreams
        .get(to)
        .ok_or_else(|| OverrideError::NoUpstream(to.to_string()))?;
    let mut cfg = route.clone();
    cfg.upstream = to.to_string();
    // The route's cache stays its configured upstream's (see the module doc).
    cfg.cache = None;
    Ok(Rerouted::To(Arc::new(RouteRt::new(cfg, up.clone(), stats))))
}

/// The class named `name`.
pub fn class(name: &str) -> Result<Priority, OverrideError> {
    Priority::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| OverrideError::NoClass(name.to_string()))
}

impl Overrides {
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, routes: HashMap<String, Entry>) {
        self.any_route.store(!routes.is_empty(), Relaxed);
        self.routes.store(Arc::new(routes));
    }

    /// Where route `name`'s requests go instead of its configured upstream, if anywhere.
    /// One atomic load when no route is overridden.
    #[inline]
    pub fn route(&self, name: &str) -> Option<Rerouted> {
        if !self.any_route.load(Relaxed) {
            return None;
        }
        self.routes.load().get(name).map(|e| e.now.clone())
    }

    /// The route override now in force for `name`: `sorry`, an upstream, or `None`.
    pub fn route_target(&self, name: &str) -> Option<String> {
        self.routes.load().get(name).map(|e| e.to.clone())
    }

    /// Sends route `route` to `to` (`sorry` or an upstream), or back to its configured
    /// upstream (`None`, or `to` naming that upstream). Returns whether anything changed.
    ///
    /// The config and upstreams are read under the writers' lock, so an override set while a
    /// reload commits is either rebuilt by that reload or built over its result.
    pub fn set_route(
        &self,
        config: &ArcSwap<Config>,
        upstreams: &ArcSwap<HashMap<String, Arc<Upstream>>>,
        stats: &StatsRegistry,
        route: &str,
        to: Option<&str>,
    ) -> Result<bool, OverrideError> {
        let _w = self.lock();
        let (config, upstreams) = (config.load(), upstreams.load());
        let cfg = config
            .routes
            .iter()
            .find(|r| r.name == route)
            .ok_or_else(|| OverrideError::NoRoute(route.to_string()))?;
        let mut routes = (**self.routes.load()).clone();
        let before = routes.get(route).map(|e| e.to.clone());
        match to.filter(|t| *t != cfg.upstream) {
            None => {
                routes.remove(route);
            }
            Some(to) => {
                let now = resolve(cfg, to, &upstreams, stats)?;
                routes.insert(
                    route.to_string(),
                    Entry {
                        to: to.to_string(),
                        now,
                    },
                );
            }
        }
        let changed = before != routes.get(route).map(|e| e.to.clone());
        self.publish(routes);
        Ok(changed)
    }

    /// Rebuilds the route overrides over a config just committed (see the module doc);
    /// returns the routes whose override was dropped because the route or its target is gone.
    pub fn rebuild(
        &self,
        config: &Config,
        upstreams: &HashMap<String, Arc<Upstream>>,
        stats: &StatsRegistry,
    ) -> Vec<String> {
        let _w = self.lock();
        let old = self.routes.load_full();
        if old.is_empty() {
            return Vec::new();
        }
        let mut dropped = Vec::new();
        let mut routes = HashMap::new();
        for (name, e) in old.iter() {
            let rebuilt = config
                .routes
                .iter()
                .find(|r| r.name == *name)
                .filter(|r| r.upstream != e.to)
                .and_then(|r| resolve(r, &e.to, upstreams, stats).ok());
            match rebuilt {
                Some(now) => {
                    routes.insert(
                        name.clone(),
                        Entry {
                            to: e.to.clone(),
                            now,
                        },
                    );
                }
                None => dropped.push(name.clone()),
            }
        }
        dropped.sort();
        self.publish(routes);
        dropped
    }

    /// Whether a request of `class` is refused by its forced shed share right now. One atomic
    /// load when the class has none.
    #[inline]
    pub fn shed(&self, class: Priority) -> bool {
        let bits = self.shed[class.rank()].load(Relaxed);
        bits != 0 && {
            let share = f64::from_bits(bits);
            share >= 1.0 || fastrand::f64() < share
        }
    }

    /// The forced shed share of `class`, if one is set.
    pub fn shed_share(&self, class: Priority) -> Option<f64> {
        match self.shed[class.rank()].load(Relaxed) {
            0 => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    /// Sets (`Some`, in (0, 1]) or clears (`None`) the forced shed share of class `name`.
    /// Returns the class and whether anything changed.
    pub fn set_shed(
        &self,
        name: &str,
        share: Option<f64>,
    ) -> Result<(Priority, bool), OverrideError> {
        let class = class(name)?;
        if let Some(s) = share.filter(|s| !(s.is_finite() && *s > 0.0 && *s <= 1.0)) {
            return Err(OverrideError::BadShare(s));
        }
        let bits = share.map_or(0, f64::to_bits);
        let was = self.shed[class.rank()].swap(bits, Relaxed);
        Ok((class, was != bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shed_shares_are_checked_and_cleared() {
        let o = Overrides::default();
        assert!(!o.shed(Priority::Low));
        assert_eq!(o.set_shed("low", Some(1.0)), Ok((Priority::Low, true)));
        assert_eq!(o.set_shed("low", Some(1.0)), Ok((Priority::Low, false)));
        assert!((0..100).all(|_| o.shed(Priority::Low)));
        assert!(!o.shed(Priority::Critical), "other classes untouched");
        assert_eq!(o.shed_share(Priority::Low), Some(1.0));
        for bad in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(
                    o.set_shed("low", Some(bad)),
                    Err(OverrideError::BadShare(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            o.set_shed("urgent", Some(0.5)),
            Err(OverrideError::NoClass("urgent".into()))
        );
        assert_eq!(o.shed_share(Priority::Low), Some(1.0), "refused: unchanged");
        assert_eq!(o.set_shed("low", None), Ok((Priority::Low, true)));
        assert!(!o.shed(Priority::Low));
        // A share in between refuses about that fraction.
        o.set_shed("normal", Some(0.5)).unwrap();
        let refused = (0..4000).filter(|_| o.shed(Priority::Normal)).count();
        assert!((1500..2500).contains(&refused), "{refused}");
    }
}

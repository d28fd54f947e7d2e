//! Routing: the first route (in config order) whose conditions all hold takes the request.
//!
//! A route table belongs to one listener and is swapped whole on reload; a request holds the
//! `Arc` of the route it matched, so a reload never changes a request mid-flight.

use std::sync::Arc;

use ballast_config::{Match, Route};
use http::{HeaderMap, Method};

use crate::stats::{ClassCounters, Histogram, PolicyCounters, RequestKey, StatsRegistry};
use crate::upstream::Upstream;

/// A route at run time.
pub struct RouteRt {
    pub cfg: Route,
    pub upstream: Arc<Upstream>,
    /// Request counters per upstream member; the extra last one is for "no server reached".
    pub counters: Vec<Arc<ClassCounters>>,
    pub latency: Arc<Histogram>,
    pub policy: Arc<PolicyCounters>,
    pub flood: Arc<crate::resilience::flood::FloodGuard>,
    pub room: Option<Arc<crate::resilience::waiting_room::WaitingRoom>>,
    /// The response cache, when the route has one.
    pub cache: Option<Arc<crate::cache::RouteCache>>,
}

impl RouteRt {
    pub fn new(cfg: Route, upstream: Arc<Upstream>, stats: &StatsRegistry) -> Self {
        let key = |server: String| RequestKey {
            route: cfg.name.clone(),
            upstream: upstream.name.clone(),
            server,
        };
        let mut counters: Vec<_> = upstream
            .members
            .iter()
            .map(|m| stats.requests(key(m.state.addr.to_string())))
            .collect();
        counters.push(stats.requests(key("none".into())));
        Self {
            latency: stats.latency(&cfg.name),
            policy: stats.policy(&cfg.name),
            flood: stats.flood(&cfg.name),
            room: stats.waiting_room(&cfg.name, cfg.waiting_room.as_ref()),
            cache: cfg
                .cache
                .as_ref()
                .map(|c| stats.cache(&cfg.name, &upstream.name, c)),
            cfg,
            upstream,
            counters,
        }
    }

    /// Counters of member `server`, or of "none".
    pub fn counters_for(&self, server: Option<usize>) -> &ClassCounters {
        let i = server
            .unwrap_or(self.counters.len() - 1)
            .min(self.counters.len() - 1);
        &self.counters[i]
    }
}

/// The ordered routes of one listener.
#[derive(Default)]
pub struct RouteTable {
    pub routes: Vec<Arc<RouteRt>>,
}

impl RouteTable {
    /// The first matching route.
    pub fn find(
        &self,
        method: &Method,
        host: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<&Arc<RouteRt>> {
        self.routes
            .iter()
            .find(|r| matches(&r.cfg.matcher, method, host, path, headers))
    }
}

fn matches(m: &Match, method: &Method, host: &str, path: &str, headers: &HeaderMap) -> bool {
    if let Some(h) = &m.host {
        if !h.eq_ignore_ascii_case(host) {
            return false;
        }
    }
    if let Some(p) = &m.path_prefix {
        if !path.starts_with(p.as_str()) {
            return false;
        }
    }
    if !m.methods.is_empty() && !m.methods.contains(method) {
        return false;
    }
    if let Some(hm) = &m.header {
        let mut values = headers.get_all(&hm.name).iter();
        let ok = match &hm.value {
            None => values.next().is_some(),
            Some(v) => values.any(|x| x.as_bytes() == v.as_bytes()),
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_config::HeaderMatch;

    #[test]
    fn all_conditions_must_hold() {
        let m = Match {
            host: Some("shop.example.com".into()),
            path_prefix: Some("/api/".into()),
            methods: vec![Method::GET],
            header: Some(HeaderMatch {
                name: http::HeaderName::from_static("x-beta"),
                value: Some("1".into()),
            }),
        };
        let mut h = HeaderMap::new();
        h.insert("x-beta", "1".parse().unwrap());
        assert!(matches(&m, &Method::GET, "SHOP.example.com", "/api/x", &h));
        assert!(!matches(
            &m,
            &Method::POST,
            "shop.example.com",
            "/api/x",
            &h
        ));
        assert!(!matches(&m, &Method::GET, "other", "/api/x", &h));
        assert!(!matches(&m, &Method::GET, "shop.example.com", "/web", &h));
        assert!(!matches(
            &m,
            &Method::GET,
            "shop.example.com",
            "/api/x",
            &HeaderMap::new()
        ));
        assert!(matches(
            &Match::default(),
            &Method::DELETE,
            "",
            "/",
            &HeaderMap::new()
        ));
    }
}

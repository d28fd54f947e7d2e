//! Purging stored answers by route and path prefix (`POST /api/v1/cache/purge`,
//! `ballast purge`).

use ballast_core::{PurgeReport, RoutePurge};

use super::*;

/// Why a purge was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PurgeError {
    #[error("no route named `{0}`")]
    NoRoute(String),
    #[error("route `{0}` has no cache")]
    NoCache(String),
}

impl crate::Gateway {
    /// Removes stored answers from the cache of `route` (of every route without one), only
    /// those whose path starts with `prefix` when given. Each route that lost entries emits an
    /// event naming `who` asked, when known.
    pub(crate) fn purge_cache(
        &self,
        route: Option<&str>,
        prefix: Option<&str>,
        who: Option<String>,
    ) -> Result<PurgeReport, PurgeError> {
        if let Some(name) = route {
            match self.config().routes.iter().find(|r| r.name == name) {
                None => return Err(PurgeError::NoRoute(name.to_string())),
                Some(r) if r.cache.is_none() => return Err(PurgeError::NoCache(name.to_string())),
                Some(_) => {}
            }
        }
        let shared = &self.inner.shared;
        let mut report = PurgeReport {
            removed: 0,
            routes: Vec::new(),
        };
        for c in shared.registry.all_caches() {
            if route.is_some_and(|r| r != c.route) {
                continue;
            }
            let removed = c.purge(prefix);
            tracing::info!(route = %c.route, prefix, removed, who = ?who, "cache purged");
            if removed > 0 {
                shared.events.emit(Event::CachePurged {
                    route: c.route.clone(),
                    prefix: prefix.map(str::to_string),
                    removed,
                    who: who.clone(),
                });
            }
            report.removed += removed;
            report.routes.push(RoutePurge {
                route: c.route.clone(),
                removed,
            });
        }
        Ok(report)
    }
}

//! Reads every cumulative counter into a [`GatewayCounters`] value for the monitor's
//! `gateway` probe, in-process: the same atomics `/metrics` encodes, without the text.

use std::sync::atomic::Ordering::Relaxed;

use ballast_core::counters::{LatencyCounts, RequestCounts, RouteCounts, ShedCounts};
use ballast_core::GatewayCounters;

use crate::clock::now_ms;
use crate::gateway::Gateway;

impl Gateway {
    /// Every request, latency, retry and shed counter now. Cheap enough to call every second:
    /// a few map copies under short locks, none on the request path.
    pub fn counters(&self) -> GatewayCounters {
        let registry = &self.inner.shared.registry;
        let requests = registry
            .all_requests()
            .into_iter()
            .map(|(key, c)| RequestCounts {
                route: key.route,
                upstream: key.upstream,
                server: key.server,
                by_class: std::array::from_fn(|i| c.by_class[i].load(Relaxed)),
            })
            .collect();
        let latency = registry
            .all_latency()
            .into_iter()
            .map(|(route, h)| LatencyCounts {
                route,
                buckets: h.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            })
            .collect();
        let routes = registry
            .all_policy()
            .into_iter()
            .map(|(route, p)| RouteCounts {
                route,
                retries: p.retries.load(Relaxed),
            })
            .collect();
        let shed = registry
            .all_admission()
            .into_iter()
            .map(|(upstream, a)| ShedCounts {
                upstream,
                shed: a
                    .shed
                    .iter()
                    .flat_map(|by_class| by_class.iter())
                    .map(|c| c.load(Relaxed))
                    .sum(),
            })
            .collect();
        GatewayCounters {
            at_unix_ms: now_ms(),
            requests,
            latency,
            routes,
            shed,
        }
    }
}

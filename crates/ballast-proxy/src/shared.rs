//! State shared by every listener and request for the life of the process (it survives
//! reloads): the access log, the statistics registry, gateway-wide counters, the runtime
//! overrides set by commands and the top talkers.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::access_log::AccessLog;
use crate::stats::{GlobalStats, StatsRegistry};

pub struct Shared {
    pub access_log: ArcSwap<AccessLog>,
    pub global: Arc<GlobalStats>,
    pub registry: StatsRegistry,
    /// Retry budgets per client address, across routes and reloads.
    pub client_budgets: crate::resilience::budget::ClientBudgets,
    /// Policy state changes, for `/api/v1/events` (and the alerting to come).
    pub events: Arc<crate::events::EventLog>,
    /// Reroutes and forced shed shares set by commands (see `overrides`).
    pub overrides: crate::overrides::Overrides,
    /// Requests per client, path and status, per minute (`/api/v1/talkers`).
    pub talkers: crate::talkers::Talkers,
}

//! Routing: which receivers hear about an alert, how its alerts are grouped, when they are
//! sent, muted, and escalated. Pure: no I/O, time passed in.
//!
//! It exists so that "the right person hears about it" is a config decision, checked at load:
//! a route naming an unknown receiver or window, a bad regex, or a catch-all that hides the
//! routes after it is refused with an error that names the route.
//!
//! ```toml
//! [[notify]]
//! match = { severity = "critical", service = "~shop|cart" }  # all must hold; "~" = regex
//! receivers = ["web-oncall"]
//! continue = false          # default: the first matching route wins
//! group_by = ["alertname", "service"]
//! group_wait = "0s"         # defaults below
//! group_interval = "1m"
//! repeat_interval = "4h"    # `repeat` is accepted too
//! mute_when = ["db-weekly"] # names of weekly windows ([[maintenance]])
//! active_when = []          # when set: only send while one of these is active
//! escalate = { after = "10m", to = ["second-receiver"] }
//!
//! [[notify]]                # no match: the default route, catching the rest
//! receivers = ["ops-mail"]
//! ```
//!
//! Matching: routes are tried in config order. A route matches when every `match` entry holds
//! for the alert's labels (an absent label is `""`). A value is compared for equality, except
//! one that starts with `~`: the rest is a regex that must match the whole value (`"~db.*"`
//! matches `db1`, not `mydb1`; for a literal leading `~`, write the regex `"~\\~..."`). Regex
//! values were chosen over a separate `match_re` table so that one glance at `match` shows the
//! whole condition. The first matching route wins unless it says `continue = true`, in which
//! case later routes are tried too. A route without `match` matches everything: it must be the
//! last one (unless it continues), as the default route.
//!
//! Defaults, and why:
//! - `group_by = ["alertname"]`: one message per rule and group, so a storm of one rule on
//!   500 servers is one message naming all 500.
//! - `group_wait`: `0s` for a route whose `match` requires `severity = "critical"` (a page
//!   must arrive within seconds, and its grouping happens in later flushes), `10s` otherwise
//!   (a warning can wait for its storm to gather into one message).
//! - `group_interval = "1m"`: news about a group already sent (new members, resolutions) at
//!   most once a minute, so a storm growing over minutes is a handful of messages.
//! - `repeat_interval = "4h"`: an unchanged alert that still fires is re-announced twice in a
//!   working day: often enough not to be forgotten, rarely enough not to be noise.
//!
//! Time intervals: while any `mute_when` window is active the route sends nothing; with
//! `active_when`, it sends only while one of those windows is active. Windows are the weekly
//! `[[maintenance]]` windows of `ballast_monitor::noise` (their time only; their `match` is
//! for muting alerts, not routes), looked up by name.
//!
//! Escalation: for a critical alert still firing and not acknowledged `after` its start, the
//! route's `escalate.to` receivers are due too. Sending it once is the delivery side's job
//! (the outbox's dedup key).

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{Duration, Labels, Severity};
use ballast_monitor::noise::{CompiledMatcher, GroupSpec, MaintenanceSet, MatcherError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `group_wait` for routes that match only critical alerts.
pub const CRITICAL_GROUP_WAIT: Duration = Duration::from_secs(0);
/// `group_wait` for other routes.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(10);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// One `[[notify]]` table of the config, as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Label name to value (`"~regex"` for a regex); empty: every alert.
    #[serde(rename = "match", default)]
    pub matchers: BTreeMap<String, String>,
    pub receivers: Vec<String>,
    /// Let later routes match too.
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    pub group_wait: Option<Duration>,
    #[serde(default)]
    pub group_interval: Option<Duration>,
    #[serde(default, alias = "repeat")]
    pub repeat_interval: Option<Duration>,
    #[serde(default)]
    pub mute_when: Vec<String>,
    #[serde(default)]
    pub active_when: Vec<String>,
    #[serde(default)]
    pub escalate: Option<EscalateSpec>,
}

/// `escalate = { after = "10m", to = ["second"] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateSpec {
    pub after: Duration,
    pub to: Vec<String>,
}

/// Why the routes were refused; each names the route by its position (1-based, as in the
/// file's order of `[[notify]]` tables).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    #[error("notify route {route}: receivers is empty; name at least one [[receiver]]")]
    NoReceivers { route: usize },
    #[error("notify route {route}: receiver {name:?} is not defined; add a [[receiver]] named {name:?} or fix the name")]
    UnknownReceiver { route: usize, name: String },
    #[error("notify route {route}: window {name:?} is not a [[maintenance]] window")]
    UnknownWindow { route: usize, name: String },
    #[error("notify route {route}: match: {source}")]
    Matcher { route: usize, source: MatcherError },
    #[error("notify route {route}: {field} must be more than 0")]
    ZeroDuration { route: usize, field: &'static str },
    #[error("notify route {route}: {source}")]
    Group {
        route: usize,
        source: ballast_monitor::noise::GroupError,
    },
    #[error("notify route {route}: escalate.to is empty; name the receivers to escalate to")]
    NoEscalationTarget { route: usize },
    #[error("notify route {route} has no match and does not continue, so routes {next}.. after it can never match; move it last or add continue = true")]
    ShadowsLater { route: usize, next: usize },
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// 1-based position in the config.
    index: usize,
    matchers: Vec<CompiledMatcher>,
    receivers: Vec<String>,
    continue_matching: bool,
    group: GroupSpec,
    mute_when: Vec<String>,
    active_when: Vec<String>,
    escalate: Option<(u64, Vec<String>)>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX)
}

impl Route {
    fn new(
        index: usize,
        spec: &RouteSpec,
        receivers: &BTreeSet<String>,
        windows: &BTreeSet<String>,
    ) -> Result<Self, RouteError> {
        let route = index;
        if spec.receivers.is_empty() {
            return Err(RouteError::NoReceivers { route });
        }
        let known = |name: &String| {
            if receivers.contains(name) {
                Ok(())
            } else {
                Err(RouteError::UnknownReceiver {
                    route,
                    name: name.clone(),
                })
            }
        };
        spec.receivers.iter().try_for_each(known)?;
        for name in spec.mute_when.iter().chain(&spec.active_when) {
            if !windows.contains(name) {
                return Err(RouteError::UnknownWindow {
                    route,
                    name: name.clone(),
                });
            }
        }
        let matchers = spec
            .matchers
            .iter()
            .map(|(name, value)| CompiledMatcher::from_table(name, value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| RouteError::Matcher { route, source })?;
        let critical_only = spec
            .matchers
            .get("severity")
            .is_some_and(|v| Severity::parse(v) == Some(Severity::Critical));
        let default_wait = if critical_only {
            CRITICAL_GROUP_WAIT
        } else {
            DEFAULT_GROUP_WAIT
        };
        let group = GroupSpec {
            group_by: spec
                .group_by
                .clone()
                .unwrap_or_else(|| vec!["alertname".to_string()]),
            group_wait_ms: ms(spec.group_wait.unwrap_or(default_wait)),
            group_interval_ms: ms(spec.group_interval.unwrap_or(DEFAULT_GROUP_INTERVAL)),
            repeat_interval_ms: ms(spec.repeat_interval.unwrap_or(DEFAULT_REPEAT_INTERVAL)),
        };
        group
            .validate()
            .map_err(|source| RouteError::Group { route, source })?;
        let escalate = match &spec.escalate {
            None => None,
            Some(e) => {
                if e.to.is_empty() {
                    return Err(RouteError::NoEscalationTarget { route });
                }
                e.to.iter().try_for_each(known)?;
                if e.after.is_zero() {
                    return Err(RouteError::ZeroDuration {
                        route,
                        field: "escalate.after",
                    });
                }
                Some((ms(e.after), e.to.clone()))
            }
        };
        Ok(Route {
            index,
            matchers,
            receivers: spec.receivers.clone(),
            continue_matching: spec.continue_matching,
            group,
            mute_when: spec.mute_when.clone(),
            active_when: spec.active_when.clone(),
            escalate,
        })
    }

    /// 1-based position in the config: a stable name for the route's groups and logs.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn receivers(&self) -> &[String] {
        &self.receivers
    }

    pub fn continues(&self) -> bool {
        self.continue_matching
    }

    /// The route's grouping, for its [`ballast_monitor::noise::Grouper`].
    pub fn group_spec(&self) -> &GroupSpec {
        &self.group
    }

    /// Whether every `match` entry holds (true without any).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Whether the route sends nothing at `now`: a `mute_when` window is active, or it has
    /// `active_when` windows and none is active. `is_active(name, now)` says whether the
    /// named window is active.
    pub fn muted_by(&self, now_unix_ms: u64, is_active: impl Fn(&str, u64) -> bool) -> bool {
        self.mute_when.iter().any(|w| is_active(w, now_unix_ms))
            || (!self.active_when.is_empty()
                && !self.active_when.iter().any(|w| is_active(w, now_unix_ms)))
    }

    /// [`Route::muted_by`] with the config's maintenance windows (an unknown name is never
    /// active; validation refuses them).
    pub fn muted_at(&self, windows: &MaintenanceSet, now_unix_ms: u64) -> bool {
        self.muted_by(now_unix_ms, |name, now| {
            windows
                .windows()
                .iter()
                .any(|w| w.name() == name && w.active_at(now))
        })
    }

    /// How long after an alert starts its escalation is due, when the route escalates.
    pub fn escalation_after_ms(&self) -> Option<u64> {
        self.escalate.as_ref().map(|(after, _)| *after)
    }

    /// The receivers to escalate to, when an alert this route matched is critical, not
    /// acknowledged, and has fired since at least `after` ago; `None` otherwise.
    pub fn escalation(
        &self,
        severity: Option<Severity>,
        acknowledged: bool,
        firing_since_unix_ms: u64,
        now_unix_ms: u64,
    ) -> Option<&[String]> {
        let (after, to) = self.escalate.as_ref()?;
        let due = firing_since_unix_ms.saturating_add(*after) <= now_unix_ms;
        (severity == Some(Severity::Critical) && !acknowledged && due).then_some(to.as_slice())
    }
}

/// Every route of the config, in order.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Validates every route against the names of the configured receivers and maintenance
    /// windows.
    pub fn new(
        specs: &[RouteSpec],
        receivers: &BTreeSet<String>,
        windows: &BTreeSet<String>,
    ) -> Result<Self, RouteError> {
        let mut routes = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let route = Route::new(i + 1, spec, receivers, windows)?;
            if route.matchers.is_empty() && !route.continue_matching && i + 1 < specs.len() {
                return Err(RouteError::ShadowsLater {
                    route: i + 1,
                    next: i + 2,
                });
            }
            routes.push(route);
        }
        Ok(Routes { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes an alert with `labels` goes to, in order: each matching route until the
    /// first one that does not continue. Empty when none matches (no default route).
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        for route in &self.routes {
            if route.matches(labels) {
                out.push(route);
                if !route.continue_matching {
                    break;
                }
            }
        }
        out
    }

    /// The receivers due by escalation for one alert, each once, in route order.
    pub fn escalations(
        &self,
        labels: &Labels,
        severity: Option<Severity>,
        acknowledged: bool,
        firing_since_unix_ms: u64,
        now_unix_ms: u64,
    ) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for route in self.matching(labels) {
            for r in route
                .escalation(severity, acknowledged, firing_since_unix_ms, now_unix_ms)
                .unwrap_or(&[])
            {
                if !out.contains(&r.as_str()) {
                    out.push(r);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

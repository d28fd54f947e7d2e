//! Events: state changes of the gateway (health, drain, reloads, listeners, certificates, DNS)
//! and of its policies, as values. They are what the alerting and the incident timeline (later
//! engines) consume; today they are kept in a bounded log and served by `GET /api/v1/events`. An event is a fact about one thing (a server, a client, a
//! route), never a per-request record: those belong to the access log.

use crate::alert::{AlertState, Labels};
use crate::alerting::AlertSource;
use serde::{Deserialize, Serialize};

/// Who or what asked for a change: events and the change history record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The process started with this config.
    Start,
    /// SIGHUP.
    Signal,
    /// The admin API (a person or a script).
    Api,
    /// The `ballast` command line (which calls the admin API).
    Cli,
    /// An automatic remediation.
    Remediation,
    /// The web dashboard (a person, through the admin API).
    Dashboard,
    /// A rollback to an earlier config version.
    Rollback,
    /// The gateway itself (DNS re-resolution, for instance).
    Gateway,
}

impl Origin {
    /// The name used in events, headers and the store.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Start => "start",
            Origin::Signal => "signal",
            Origin::Api => "api",
            Origin::Cli => "cli",
            Origin::Remediation => "remediation",
            Origin::Dashboard => "dashboard",
            Origin::Rollback => "rollback",
            Origin::Gateway => "gateway",
        }
    }

    /// Parses [`Origin::name`]'s text.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Origin::Start,
            Origin::Signal,
            Origin::Api,
            Origin::Cli,
            Origin::Remediation,
            Origin::Dashboard,
            Origin::Rollback,
            Origin::Gateway,
        ]
        .into_iter()
        .find(|o| o.name() == s)
    }
}

/// What moved a server in or out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCause {
    /// Active health checks (`rise`/`fall`).
    ActiveCheck,
    /// Passive health: request outcomes ejected it, or its ejection ended.
    PassiveEjection,
    /// Its circuit breaker.
    Breaker,
}

/// Why a passively ejected server came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnejectCause {
    /// `rise` consecutive active checks passed (failback without waiting out the back-off).
    ActiveCheck,
    /// The ejection's back-off ran out.
    Expired,
}

/// A state change, as a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// Active health checks took a server out of rotation (`fall` failures in a row).
    ServerDown {
        upstream: String,
        server: String,
        cause: HealthCause,
    },
    /// Active health checks put a server back (`rise` successes in a row).
    ServerUp {
        upstream: String,
        server: String,
        cause: HealthCause,
    },
    /// Passive health ejected a server after consecutive failed requests.
    ServerEjected {
        upstream: String,
        server: String,
        /// How long the ejection lasts unless active checks end it first.
        ejection_ms: u64,
    },
    /// A passively ejected server takes requests again.
    ServerUnejected {
        upstream: String,
        server: String,
        cause: UnejectCause,
    },
    /// A server was drained: no new requests, in-flight ones finish.
    ServerDrained {
        upstream: String,
        server: String,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
    },
    /// A drained server takes requests again.
    ServerEnabled {
        upstream: String,
        server: String,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
    },
    /// A command ejected a server (`eject`): no requests until `until_unix_ms`, then it comes
    /// back by itself (announced as [`Event::ServerUnejected`] with cause `expired`).
    ServerEjectOrdered {
        upstream: String,
        server: String,
        ejection_ms: u64,
        /// When the ejection ends (ms since the Unix epoch).
        until_unix_ms: u64,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
    },
    /// A route's requests were sent elsewhere at run time: `to` is `sorry` (its sorry page),
    /// another upstream, or `None` (back to the configured upstream).
    RouteRerouted {
        route: String,
        to: Option<String>,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
    },
    /// A priority class's forced shed share was set (`Some`) or cleared (`None`).
    ShedShareSet {
        class: String,
        share: Option<f64>,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
    },
    /// A configuration was applied.
    ReloadApplied {
        /// Hex sha256 of the config file's text.
        sha256: String,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
        listeners_started: Vec<String>,
        listeners_stopped: Vec<String>,
        servers_added: usize,
        servers_removed: usize,
    },
    /// A configuration was refused; the running one stays.
    ReloadRefused {
        /// Hex sha256 of the refused text, when it could be read.
        sha256: Option<String>,
        by: Origin,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
        error: String,
    },
    /// A listener began accepting on its address.
    ListenerStarted {
        listener: String,
        addr: String,
        protocol: String,
    },
    /// A listener stopped accepting (removed from the config, or moved to another address).
    ListenerStopped { listener: String, addr: String },
    /// A certificate was (re)read from its files for a TLS listener.
    CertificateLoaded {
        listener: String,
        /// The names it serves (SNI); empty for the default certificate without names.
        names: Vec<String>,
        subject: String,
        /// Seconds since the Unix epoch.
        not_after_unix: i64,
        days_left: i64,
    },
    /// A server name resolved to a different set of addresses: new ones join the pool, gone
    /// ones are drained.
    DnsChanged {
        upstream: String,
        name: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// A server name could not be resolved; the last good addresses stay.
    DnsFailed {
        upstream: String,
        name: String,
        error: String,
    },
    /// A server's circuit breaker opened: it gets no requests for the cool-down.
    BreakerOpened { upstream: String, server: String },
    /// The cool-down passed: probes are let through.
    BreakerHalfOpened { upstream: String, server: String },
    /// The probes succeeded: the server is back.
    BreakerClosed { upstream: String, server: String },
    /// A client was blocked by a route's flood guard.
    ClientBlocked {
        route: String,
        client: String,
        /// Its requests in the second that tripped the guard.
        rate: u32,
        /// The population's baseline at that moment (0 when none).
        baseline: u32,
        block_ms: u64,
    },
    /// A route refused a retry because a retry budget was spent (at most one per route per
    /// second).
    RetryBudgetExhausted { route: String },
    /// An upstream's admission control began shedding requests (it is saturated).
    SheddingStarted { upstream: String, limit: u32 },
    /// A second passed without a shed request: the episode is over.
    SheddingStopped {
        upstream: String,
        /// Requests shed during the episode.
        shed: u64,
        limit: u32,
    },
    /// A route's waiting room filled up: from now on new visitors wait in line.
    WaitingRoomQueueing {
        route: String,
        capacity: u32,
        /// Active sessions at that moment (above `capacity` when sessions from before a
        /// restart or reload came back).
        active: u64,
    },
    /// A waiting room's line reached `max_queue`: new visitors get a plain 503 (once per
    /// queueing spell).
    WaitingRoomFull { route: String, max_queue: u32 },
    /// Nobody waits in a route's waiting room any more.
    WaitingRoomCleared {
        route: String,
        /// Visitors let in while the line existed.
        admitted: u64,
        /// How long the line existed.
        queued_ms: u64,
    },
    /// A route's cache began standing in for its failing upstream with stale content.
    StaleServingStarted {
        route: String,
        /// What failed first: an error kind (`connect_failed`, `no_server`, ...) or
        /// `upstream_status`.
        cause: String,
        status: u16,
    },
    /// The route's upstream answered again (a status below 500).
    StaleServingEnded { route: String },
    /// Entries were removed from a route's cache through the admin API.
    CachePurged {
        route: String,
        /// Path prefix of the purge, if it had one.
        prefix: Option<String>,
        removed: u64,
        /// The person who asked (the admin token's name), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
    },
    /// The operations store could not be written; events wait in the in-memory spool.
    StoreUnavailable { error: String },
    /// The operations store is written again after an outage: how long it lasted, how many
    /// events waited in the spool and were written, and how many were dropped because the
    /// spool was full (0 means nothing was lost).
    StoreRecovered {
        outage_ms: u64,
        spooled: u64,
        dropped: u64,
    },
    /// An alert changed state (pending, firing at a severity, resolved...). `id` is the
    /// fingerprint of its full labels, the same as in `/api/v1/alerts`.
    AlertChanged {
        id: String,
        rule: String,
        labels: Labels,
        from: AlertState,
        to: AlertState,
        /// The value evaluated (`None`: no data).
        value: Option<f64>,
        /// The threshold crossed (see [`crate::AlertTransition::threshold`]).
        threshold: Option<f64>,
        source: AlertSource,
    },
    /// A person acknowledged an alert.
    AlertAcknowledged {
        id: String,
        by: String,
        comment: String,
    },
    /// A silence was created.
    SilenceAdded {
        id: u64,
        author: String,
        comment: String,
        /// The matchers as text (`service="shop"`).
        matchers: Vec<String>,
        ends_unix_ms: u64,
    },
    /// A silence was ended before its time.
    SilenceExpired { id: u64, by: String },
    /// A remediation rule ran (or was refused) on a target: the whole record is at
    /// `/api/v1/remediations`.
    RemediationRan {
        rule: String,
        target: String,
        alert_id: String,
        dry_run: bool,
        /// `ok`, `failed` or `refused`.
        result: String,
        /// Why it failed or was refused.
        reason: Option<String>,
    },
    /// Remediation stopped acting on a target (repeated failures or a spent budget) and
    /// called a person; it acts again once someone acknowledges.
    RemediationEscalated {
        rule: String,
        target: String,
        cause: String,
        receiver: Option<String>,
    },
    /// A person acknowledged a blocked remediation target.
    RemediationAcknowledged { target: String, by: String },
    /// An incident was opened (by an alert or by hand).
    IncidentOpened {
        id: u64,
        title: String,
        severity: String,
        by: String,
    },
    /// An incident moved to another step of its lifecycle.
    IncidentStatusChanged { id: u64, status: String, by: String },
    /// A person added a note to an incident (the text is on its timeline).
    IncidentNoted { id: u64, by: String },
    /// A person graded an incident (`severity`) or said how many users are hurt (`user_scope`).
    IncidentGraded {
        id: u64,
        severity: String,
        by: String,
    },
}

impl Event {
    /// The person who asked for a command (the admin token's name), when the event records
    /// one: `None` for other events, and for commands from an open API, SIGHUP, a remediation
    /// or the gateway itself.
    pub fn who(&self) -> Option<&str> {
        match self {
            Event::ServerDrained { who, .. }
            | Event::ServerEnabled { who, .. }
            | Event::ServerEjectOrdered { who, .. }
            | Event::RouteRerouted { who, .. }
            | Event::ShedShareSet { who, .. }
            | Event::ReloadApplied { who, .. }
            | Event::ReloadRefused { who, .. }
            | Event::CachePurged { who, .. } => who.as_deref(),
            _ => None,
        }
    }
}

/// An event and when it happened (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub seq: u64,
    pub at_unix_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_events_stored_before_who_still_parse() {
        // As stored before events recorded the person: no `who`.
        let old = r#"{"seq":7,"at_unix_ms":1764526800000,"kind":"server_drained","upstream":"app","server":"10.0.0.1:80","by":"api"}"#;
        let s: Stamped = serde_json::from_str(old).unwrap();
        assert_eq!(
            s.event,
            Event::ServerDrained {
                upstream: "app".into(),
                server: "10.0.0.1:80".into(),
                by: Origin::Api,
                who: None,
            }
        );
        assert_eq!(s.event.who(), None);
        // Written back unchanged: no `"who":null`.
        assert_eq!(serde_json::to_string(&s).unwrap(), old);
        for old in [
            r#"{"kind":"reload_applied","sha256":"ab","by":"signal","listeners_started":[],"listeners_stopped":[],"servers_added":0,"servers_removed":0}"#,
            r#"{"kind":"reload_refused","sha256":null,"by":"cli","error":"bad"}"#,
            r#"{"kind":"cache_purged","route":"r","prefix":null,"removed":3}"#,
            r#"{"kind":"server_eject_ordered","upstream":"a","server":"s","ejection_ms":1,"until_unix_ms":2,"by":"remediation"}"#,
            r#"{"kind":"route_rerouted","route":"r","to":null,"by":"gateway"}"#,
            r#"{"kind":"shed_share_set","class":"low","share":0.5,"by":"api"}"#,
            r#"{"kind":"server_enabled","upstream":"a","server":"s","by":"cli"}"#,
        ] {
            let e: Event = serde_json::from_str(old).unwrap_or_else(|e| panic!("{old}: {e}"));
            assert_eq!(e.who(), None, "{old}");
        }
    }

    #[test]
    fn the_person_is_recorded_beside_the_origin() {
        let e = Event::ServerDrained {
            upstream: "app".into(),
            server: "10.0.0.1:80".into(),
            by: Origin::Dashboard,
            who: Some("ana".into()),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"server_drained","upstream":"app","server":"10.0.0.1:80","by":"dashboard","who":"ana"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
        assert_eq!(e.who(), Some("ana"));
        assert_eq!(
            Event::BreakerOpened {
                upstream: "a".into(),
                server: "s".into()
            }
            .who(),
            None
        );
    }
}

//! Commands: what an operator, a script or (later) a remediation asks the running gateway to do,
//! as values.
//!
//! The admin API, the CLI (which calls the API) and the remediation engine all build a
//! [`Command`]; the gateway carries it out in one exhaustive `apply` and answers with a typed
//! [`Report`] or a [`CommandError`]. Because the same values are recorded on the event log (and
//! later on the incident timeline), "who drained that server, and when" always has an answer.

use serde::{Deserialize, Serialize};

use crate::event::Origin;

/// A change asked of the running gateway.
///
/// Not `Eq`: [`Command::Shed`] carries an `f64` share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Stop sending new requests to a server; in-flight ones finish.
    Drain { upstream: String, server: String },
    /// Let a drained server take requests again (it ramps up under slow start).
    Enable { upstream: String, server: String },
    /// Re-read the configuration and apply it (refused as a whole if anything is wrong).
    Reload,
    /// Remove cached answers: of one route or of all, under a path prefix or all of them.
    Purge {
        route: Option<String>,
        prefix: Option<String>,
    },
    /// Take a server out of balancing as passive health would (an ejection), for
    /// `duration_ms`, or the upstream's `passive.ejection` period when `None`. It comes back by
    /// itself when the time is up; active checks do not end it sooner.
    Eject {
        upstream: String,
        server: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    /// Send a route's requests elsewhere: `Some("sorry")` serves its sorry page (the built-in
    /// one when it has none) instead of proxying, `Some(upstream)` proxies to another
    /// configured upstream, `None` restores the route as configured.
    Reroute { route: String, to: Option<String> },
    /// Refuse a share of a priority class's requests (`critical`, `high`, `normal`, `low`)
    /// with the shed response (503 and `Retry-After`) even when nothing is saturated: `share`
    /// in (0, 1]; `None` clears it.
    Shed { class: String, share: Option<f64> },
}

impl Command {
    /// A short name for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Drain { .. } => "drain",
            Command::Enable { .. } => "enable",
            Command::Reload => "reload",
            Command::Purge { .. } => "purge",
            Command::Eject { .. } => "eject",
            Command::Reroute { .. } => "reroute",
            Command::Shed { .. } => "shed",
        }
    }
}

/// A command together with who asked for it: the origin (API, CLI, dashboard, remediation...)
/// and, when known, the person (the admin token's name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    #[serde(flatten)]
    pub command: Command,
    pub by: Origin,
    /// The person who asked, when known (the admin token's name; `None` on an open API, for
    /// SIGHUP and for remediations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Report {
    Drained {
        upstream: String,
        server: String,
        /// False when the server was already drained (nothing changed).
        changed: bool,
    },
    Enabled {
        upstream: String,
        server: String,
        /// False when the server was not drained (nothing changed).
        changed: bool,
    },
    Reloaded(ReloadReport),
    Purged(PurgeReport),
    Ejected {
        upstream: String,
        server: String,
        /// How long the ejection lasts from now.
        ejection_ms: u64,
        /// When the server takes requests again (ms since the Unix epoch).
        until_unix_ms: u64,
    },
    Rerouted {
        route: String,
        /// Where the route's requests go now: `sorry`, an upstream, or `None` for the
        /// configured upstream.
        to: Option<String>,
        /// False when the route already went there (nothing changed).
        changed: bool,
    },
    ShedSet {
        class: String,
        /// The share now refused (`None`: none beyond what saturation sheds).
        share: Option<f64>,
        /// False when the class already had that share (nothing changed).
        changed: bool,
    },
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Hex sha256 of the applied file's text.
    pub sha256: String,
    pub listeners_started: Vec<String>,
    pub listeners_stopped: Vec<String>,
    pub servers_kept: usize,
    pub servers_added: usize,
    pub servers_removed: usize,
}

/// What a rollback did (`POST /api/v1/config/rollback`, `ballast rollback`): which recorded
/// version's text is in the config file and running again, where the replaced file is kept,
/// who asked, and what the reload changed. The rollback itself is recorded as a new config
/// version with source `rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// The config version rolled back to.
    pub version: u64,
    /// Hex sha256 of its text.
    pub sha256: String,
    /// The config file that now holds the text.
    pub file: String,
    /// Where the replaced file is kept (`NAME.bak.<UTC time>` beside it); `None` when there
    /// was no file to replace.
    pub backup: Option<String>,
    /// Where the rollback was asked from (`api`, `cli`, `dashboard`, `remediation`).
    pub requested_by: Origin,
    /// What applying it changed, as for a reload.
    pub reload: ReloadReport,
}

/// What a purge removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Keys removed in all (each with its `Vary` variants).
    pub removed: u64,
    pub routes: Vec<RoutePurge>,
}

/// What a purge removed from one route's cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePurge {
    pub route: String,
    pub removed: u64,
}

/// Why a command was not carried out. Nothing changed when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum CommandError {
    /// The command names something that does not exist (an upstream, a server, a route).
    #[error("{0}")]
    NotFound(String),
    /// The command's arguments are malformed.
    #[error("{0}")]
    Invalid(String),
    /// The command was understood but refused (an invalid config on reload, a port in use).
    #[error("{0}")]
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_json() {
        let issued = Issued {
            command: Command::Drain {
                upstream: "app".into(),
                server: "127.0.0.1:8001".into(),
            },
            by: Origin::Cli,
            who: None,
        };
        let text = serde_json::to_string(&issued).unwrap();
        assert_eq!(
            text,
            r#"{"command":"drain","upstream":"app","server":"127.0.0.1:8001","by":"cli"}"#
        );
        assert_eq!(serde_json::from_str::<Issued>(&text).unwrap(), issued);
        let by_ana = Issued {
            by: Origin::Dashboard,
            who: Some("ana".into()),
            ..issued
        };
        let text = serde_json::to_string(&by_ana).unwrap();
        assert_eq!(
            text,
            r#"{"command":"drain","upstream":"app","server":"127.0.0.1:8001","by":"dashboard","who":"ana"}"#
        );
        assert_eq!(serde_json::from_str::<Issued>(&text).unwrap(), by_ana);
        let err = CommandError::NotFound("no upstream named `x`".into());
        let text = serde_json::to_string(&err).unwrap();
        assert_eq!(
            text,
            r#"{"error":"not_found","message":"no upstream named `x`"}"#
        );
        assert_eq!(serde_json::from_str::<CommandError>(&text).unwrap(), err);
    }

    #[test]
    fn remediation_commands_round_trip_through_json() {
        let cases = [
            (
                Command::Eject {
                    upstream: "app".into(),
                    server: "127.0.0.1:8001".into(),
                    duration_ms: Some(30_000),
                },
                r#"{"command":"eject","upstream":"app","server":"127.0.0.1:8001","duration_ms":30000,"by":"remediation"}"#,
            ),
            (
                Command::Eject {
                    upstream: "app".into(),
                    server: "127.0.0.1:8001".into(),
                    duration_ms: None,
                },
                r#"{"command":"eject","upstream":"app","server":"127.0.0.1:8001","by":"remediation"}"#,
            ),
            (
                Command::Reroute {
                    route: "shop".into(),
                    to: Some("sorry".into()),
                },
                r#"{"command":"reroute","route":"shop","to":"sorry","by":"remediation"}"#,
            ),
            (
                Command::Reroute {
                    route: "shop".into(),
                    to: None,
                },
                r#"{"command":"reroute","route":"shop","to":null,"by":"remediation"}"#,
            ),
            (
                Command::Shed {
                    class: "low".into(),
                    share: Some(0.5),
                },
                r#"{"command":"shed","class":"low","share":0.5,"by":"remediation"}"#,
            ),
            (
                Command::Shed {
                    class: "low".into(),
                    share: None,
                },
                r#"{"command":"shed","class":"low","share":null,"by":"remediation"}"#,
            ),
        ];
        for (command, json) in cases {
            let issued = Issued {
                command,
                by: Origin::Remediation,
                who: None,
            };
            let text = serde_json::to_string(&issued).unwrap();
            assert_eq!(text, json);
            assert_eq!(serde_json::from_str::<Issued>(&text).unwrap(), issued);
        }
        let names: Vec<&str> = [
            r#"{"command":"eject","upstream":"a","server":"b"}"#,
            r#"{"command":"reroute","route":"r","to":"x"}"#,
            r#"{"command":"shed","class":"low","share":1.0}"#,
        ]
        .iter()
        .map(|t| serde_json::from_str::<Command>(t).unwrap().name())
        .collect();
        assert_eq!(names, ["eject", "reroute", "shed"]);
        let reports = [
            Report::Ejected {
                upstream: "app".into(),
                server: "127.0.0.1:8001".into(),
                ejection_ms: 30_000,
                until_unix_ms: 1_800_000_000_000,
            },
            Report::Rerouted {
                route: "shop".into(),
                to: Some("standby".into()),
                changed: true,
            },
            Report::ShedSet {
                class: "low".into(),
                share: Some(0.25),
                changed: false,
            },
        ];
        for r in reports {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r, "{text}");
        }
    }

    #[test]
    fn rollback_reports_round_trip_through_json() {
        let report = RollbackReport {
            version: 1,
            sha256: "ab".into(),
            file: "/etc/ballast.toml".into(),
            backup: Some("/etc/ballast.toml.bak.20261130T153012Z".into()),
            requested_by: Origin::Cli,
            reload: ReloadReport::default(),
        };
        let text = serde_json::to_string(&report).unwrap();
        assert!(text.contains(r#""requested_by":"cli""#), "{text}");
        assert_eq!(
            serde_json::from_str::<RollbackReport>(&text).unwrap(),
            report
        );
    }

    #[test]
    fn origin_names_parse_back() {
        for o in [
            Origin::Api,
            Origin::Cli,
            Origin::Remediation,
            Origin::Dashboard,
            Origin::Signal,
            Origin::Start,
            Origin::Rollback,
            Origin::Gateway,
        ] {
            assert_eq!(Origin::parse(o.name()), Some(o));
        }
        assert_eq!(Origin::parse("nobody"), None);
        assert_eq!(Origin::parse("dashboard"), Some(Origin::Dashboard));
        assert_eq!(
            serde_json::to_string(&Origin::Dashboard).unwrap(),
            r#""dashboard""#
        );
    }
}

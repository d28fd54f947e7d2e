//! The history Ballast keeps: stored events, config versions, change markers and the instances
//! sharing a store, as values.
//!
//! It exists so that the store (`ballast-store`), the admin API, the CLI and the incident
//! timeline agree on what a "config version" or a "deploy marker" is without depending on each
//! other or on SQL. Nothing here does I/O; [`drift`] is the one decision made on these values.

use serde::{Deserialize, Serialize};

use crate::event::{Origin, Stamped};

/// An event as the store holds it: the id it was given there (increasing, the cursor for
/// "after id" queries) and the instance that emitted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: u64,
    pub instance: String,
    #[serde(flatten)]
    pub stamped: Stamped,
}

/// Which stored events to read. Every filter is optional; they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only events with a store id greater than this (a cursor for paging or tailing).
    pub after_id: Option<u64>,
    /// Only events that happened at or after this time (ms since the Unix epoch).
    pub since_unix_ms: Option<u64>,
    /// Only events of this kind (`server_down`, `reload_applied`, ...).
    pub kind: Option<String>,
    /// Only events of one of these kinds; empty means any kind. Combines with `kind` (AND).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only events from this instance.
    pub instance: Option<String>,
    /// At most this many events; `None` means all of them.
    pub limit: Option<u32>,
    /// Newest first instead of oldest first (by store id).
    pub newest_first: bool,
}

/// What became of a config that was offered to the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ConfigOutcome {
    /// It was validated and is (or was) the running config.
    Applied,
    /// It was refused; the running config stayed. `error` says why.
    Refused { error: String },
}

impl ConfigOutcome {
    /// The name used in the store and the API: `applied` or `refused`.
    pub fn name(&self) -> &'static str {
        match self {
            ConfigOutcome::Applied => "applied",
            ConfigOutcome::Refused { .. } => "refused",
        }
    }

    /// Whether the config became the running one.
    pub fn is_applied(&self) -> bool {
        matches!(self, ConfigOutcome::Applied)
    }
}

/// A config version to record. The store computes its sha256 from `text` and gives it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewConfigVersion {
    /// The config file's full text, as offered.
    pub text: String,
    /// Who or what offered it.
    pub source: Origin,
    /// When (ms since the Unix epoch).
    pub at_unix_ms: u64,
    /// The host name of the machine running the instance.
    pub host: String,
    /// The instance that applied or refused it.
    pub instance: String,
    pub outcome: ConfigOutcome,
}

/// A recorded config version. Ids increase in the order versions were recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVersion {
    pub id: u64,
    pub text: String,
    /// Lowercase hex sha256 of `text`.
    pub sha256: String,
    pub source: Origin,
    pub at_unix_ms: u64,
    pub host: String,
    pub instance: String,
    #[serde(flatten)]
    pub outcome: ConfigOutcome,
}

/// A config version without its text: what listings and the change timeline show (a config
/// file can be long; fetch one version to read it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSummary {
    pub id: u64,
    /// Lowercase hex sha256 of the text.
    pub sha256: String,
    pub source: Origin,
    pub at_unix_ms: u64,
    pub host: String,
    pub instance: String,
    #[serde(flatten)]
    pub outcome: ConfigOutcome,
}

impl From<ConfigVersion> for ConfigSummary {
    fn from(v: ConfigVersion) -> Self {
        ConfigSummary {
            id: v.id,
            sha256: v.sha256,
            source: v.source,
            at_unix_ms: v.at_unix_ms,
            host: v.host,
            instance: v.instance,
            outcome: v.outcome,
        }
    }
}

/// What kind of change a change marker records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new version of a service was deployed.
    Deploy,
    /// A feature flag was switched.
    Flag,
    /// A data migration or bulk data change.
    Data,
    /// An infrastructure change (network, machines, DNS, certificates...).
    Infra,
    /// Anything else worth seeing on the timeline.
    Note,
}

impl ChangeKind {
    /// Every kind, in a stable order.
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Deploy,
        ChangeKind::Flag,
        ChangeKind::Data,
        ChangeKind::Infra,
        ChangeKind::Note,
    ];

    /// The name used in the store, the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Deploy => "deploy",
            ChangeKind::Flag => "flag",
            ChangeKind::Data => "data",
            ChangeKind::Infra => "infra",
            ChangeKind::Note => "note",
        }
    }

    /// Parses [`ChangeKind::name`]'s text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A change marker to record (typically posted by a CI/CD pipeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChange {
    pub kind: ChangeKind,
    /// The service that changed, if the change is about one.
    pub service: Option<String>,
    /// The version deployed, flag state, migration name...
    pub version: Option<String>,
    /// One line saying what changed.
    pub summary: String,
    pub author: Option<String>,
    /// A link to the pipeline run, pull request or ticket.
    pub url: Option<String>,
    /// When the change happened (ms since the Unix epoch).
    pub at_unix_ms: u64,
}

/// A recorded change marker: its store id and what was recorded (the same JSON fields, `id`
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: u64,
    #[serde(flatten)]
    pub marker: NewChange,
}

/// One gateway instance sharing the store, as of its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub instance: String,
    pub host: String,
    /// Lowercase hex sha256 of its running config.
    pub config_sha256: String,
    pub first_seen_unix_ms: u64,
    pub last_seen_unix_ms: u64,
}

/// The kinds of record that retention prunes, each with its own age limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Events,
    Changes,
    ConfigVersions,
}

impl RecordKind {
    /// The name used in config keys and logs.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Events => "events",
            RecordKind::Changes => "changes",
            RecordKind::ConfigVersions => "config_versions",
        }
    }
}

/// The instances whose running config differs from the others', among those seen at or after
/// `seen_since_unix_ms` (older heartbeats are instances that are gone).
///
/// When one config is run by more instances than any other, the drifted instances are those
/// running something else. When there is no such majority (two instances, two configs), every
/// instance is listed: nothing says which one is right. One config everywhere gives nothing.
pub fn drift(instances: &[Instance], seen_since_unix_ms: u64) -> Vec<&Instance> {
    let live: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.last_seen_unix_ms >= seen_since_unix_ms)
        .collect();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for i in &live {
        match counts.iter_mut().find(|(sha, _)| *sha == i.config_sha256) {
            Some((_, n)) => *n += 1,
            None => counts.push((&i.config_sha256, 1)),
        }
    }
    if counts.len() <= 1 {
        return Vec::new();
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    if counts[0].1 == counts[1].1 {
        return live;
    }
    let majority = counts[0].0;
    live.into_iter()
        .filter(|i| i.config_sha256 != majority)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(name: &str, sha: &str, seen: u64) -> Instance {
        Instance {
            instance: name.to_string(),
            host: format!("{name}.example"),
            config_sha256: sha.to_string(),
            first_seen_unix_ms: 1,
            last_seen_unix_ms: seen,
        }
    }

    fn names(v: Vec<&Instance>) -> Vec<&str> {
        v.into_iter().map(|i| i.instance.as_str()).collect()
    }

    #[test]
    fn no_drift_when_all_agree() {
        let all = [inst("a", "x", 10), inst("b", "x", 10)];
        assert!(drift(&all, 0).is_empty());
        assert!(drift(&[], 0).is_empty());
    }

    #[test]
    fn minority_is_drift() {
        let all = [inst("a", "x", 10), inst("b", "y", 10), inst("c", "x", 10)];
        assert_eq!(names(drift(&all, 0)), ["b"]);
    }

    #[test]
    fn tie_lists_everyone() {
        let all = [inst("a", "x", 10), inst("b", "y", 10)];
        assert_eq!(names(drift(&all, 0)), ["a", "b"]);
    }

    #[test]
    fn gone_instances_do_not_count() {
        let all = [inst("a", "x", 10), inst("b", "y", 5)];
        assert!(drift(&all, 6).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.name()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        assert_eq!(ChangeKind::parse("deploys"), None);
        assert_eq!(ConfigOutcome::Applied.name(), "applied");
        let refused = ConfigOutcome::Refused {
            error: "bad".into(),
        };
        assert_eq!(refused.name(), "refused");
        assert!(!refused.is_applied());
    }
}

//! "What changed recently?" as values: the merged change timeline, the checks a change marker
//! must pass, and the drift report (which instances sharing a store run another config).
//!
//! It exists because the first question when an incident starts is "what changed?", and the
//! answer is spread over three records kept for different reasons: markers posted by people and
//! CI/CD pipelines (deploys, flags, migrations), config versions the gateway applied or refused,
//! and commands given at run time (drain, enable, purge, reload), which the gateway records as
//! events. The admin API, the CLI and (later) the incident timeline all show the same merged
//! list, so merging is one pure function here, tested without a store or a socket.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::history::{drift, Change, ChangeKind, ConfigSummary, Instance, NewChange, StoredEvent};

/// The event kinds (their serde `kind` tag) that record a command given at run time: what the
/// store is asked for when the change timeline is built. [`is_command`] is the same set.
pub const COMMAND_KINDS: [&str; 8] = [
    "server_drained",
    "server_enabled",
    "reload_applied",
    "reload_refused",
    "cache_purged",
    "server_eject_ordered",
    "route_rerouted",
    "shed_share_set",
];

/// Whether `event` records a command given at run time (listed in [`COMMAND_KINDS`]).
pub fn is_command(event: &Event) -> bool {
    matches!(
        event,
        Event::ServerDrained { .. }
            | Event::ServerEnabled { .. }
            | Event::ReloadApplied { .. }
            | Event::ReloadRefused { .. }
            | Event::CachePurged { .. }
            | Event::ServerEjectOrdered { .. }
            | Event::RouteRerouted { .. }
            | Event::ShedShareSet { .. }
    )
}

/// A reload event and the config version recorded for the same reload are at most this far
/// apart (both are stamped right after the reload; this leaves room for a slow disk).
pub const RELOAD_MATCH_MS: u64 = 60_000;

/// One entry of the change timeline. In JSON, `type` says which record it comes from (`marker`,
/// `config` or `command`) and the record's own fields sit beside it. (Not `source`: a config
/// version has a `source` of its own, the origin of the config.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeEntry {
    /// A change marker (deploy, flag, data, infra, note).
    Marker(Change),
    /// A config version offered to an instance, applied or refused (without its text).
    Config(ConfigSummary),
    /// A command given at run time, as the event the gateway recorded.
    Command(StoredEvent),
}

impl ChangeEntry {
    /// When the change happened (ms since the Unix epoch).
    pub fn at_unix_ms(&self) -> u64 {
        match self {
            ChangeEntry::Marker(c) => c.marker.at_unix_ms,
            ChangeEntry::Config(c) => c.at_unix_ms,
            ChangeEntry::Command(e) => e.stamped.at_unix_ms,
        }
    }

    /// `marker`, `config` or `command`: the JSON `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChangeEntry::Marker(_) => "marker",
            ChangeEntry::Config(_) => "config",
            ChangeEntry::Command(_) => "command",
        }
    }

    /// Who made the change: a marker's author, or the instance that applied the config or
    /// carried out the command (empty when a marker names no author).
    pub fn who(&self) -> &str {
        match self {
            ChangeEntry::Marker(c) => c.marker.author.as_deref().unwrap_or(""),
            ChangeEntry::Config(c) => &c.instance,
            ChangeEntry::Command(e) => &e.instance,
        }
    }

    /// One line saying what changed, for tables and timelines.
    pub fn what(&self) -> String {
        match self {
            ChangeEntry::Marker(Change { marker: c, .. }) => {
                let mut head = c.kind.name().to_string();
                for part in [&c.service, &c.version].into_iter().flatten() {
                    head.push(' ');
                    head.push_str(part);
                }
                format!("{head}: {}", first_line(&c.summary))
            }
            ChangeEntry::Config(c) => {
                let short = c.sha256.get(..12).unwrap_or(&c.sha256);
                match &c.outcome {
                    crate::ConfigOutcome::Applied => format!(
                        "config version {} applied ({}), sha256 {short}",
                        c.id,
                        c.source.name()
                    ),
                    crate::ConfigOutcome::Refused { error } => format!(
                        "config version {} refused ({}): {}",
                        c.id,
                        c.source.name(),
                        first_line(error)
                    ),
                }
            }
            ChangeEntry::Command(e) => command_line(&e.stamped.event),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn command_line(event: &Event) -> String {
    match event {
        Event::ServerDrained {
            upstream,
            server,
            by,
        } => format!("drained {upstream} {server} ({})", by.name()),
        Event::ServerEnabled {
            upstream,
            server,
            by,
        } => format!("enabled {upstream} {server} ({})", by.name()),
        Event::ReloadApplied {
            by,
            servers_added,
            servers_removed,
            ..
        } => format!(
            "reload applied ({}): {servers_added} servers added, {servers_removed} removed",
            by.name()
        ),
        Event::ReloadRefused { by, error, .. } => {
            format!("reload refused ({}): {}", by.name(), first_line(error))
        }
        Event::CachePurged {
            route,
            prefix,
            removed,
        } => match prefix {
            Some(p) => format!("cache purged on route {route} under {p}: {removed} removed"),
            None => format!("cache purged on route {route}: {removed} removed"),
        },
        Event::ServerEjectOrdered {
            upstream,
            server,
            ejection_ms,
            by,
            ..
        } => format!(
            "ejected {upstream} {server} for {} ({})",
            crate::Duration::from_millis(*ejection_ms),
            by.name()
        ),
        Event::RouteRerouted { route, to, by } => match to {
            Some(to) if to == "sorry" => {
                format!("route {route} serves its sorry page ({})", by.name())
            }
            Some(to) => format!("route {route} rerouted to {to} ({})", by.name()),
            None => format!("route {route} restored as configured ({})", by.name()),
        },
        Event::ShedShareSet { class, share, by } => match share {
            Some(s) => format!("shedding {:.0}% of {class} ({})", s * 100.0, by.name()),
            None => format!("forced shedding of {class} cleared ({})", by.name()),
        },
        // Not a command: kept readable anyway rather than dropped silently.
        other => format!("{other:?}"),
    }
}

/// Merges markers, config versions and command events into one timeline, newest first, at most
/// `limit` entries.
///
/// Events that are not commands are left out. A reload is recorded twice (the gateway's
/// `reload_applied`/`reload_refused` event and the config version History stores), so a reload
/// event is dropped when a config version of the same instance, with the same sha256 and
/// outcome, lies within [`RELOAD_MATCH_MS`] of it; each version absorbs at most one event.
/// Entries of the same millisecond keep a stable order: markers, then configs, then commands,
/// each newest id first.
pub fn merge(
    markers: Vec<Change>,
    configs: Vec<ConfigSummary>,
    commands: Vec<StoredEvent>,
    limit: usize,
) -> Vec<ChangeEntry> {
    let mut absorbed = vec![false; configs.len()];
    let commands: Vec<StoredEvent> = commands
        .into_iter()
        .filter(|e| is_command(&e.stamped.event))
        .filter(|e| match reload_of(e) {
            None => true,
            Some((sha, applied)) => {
                let at = e.stamped.at_unix_ms;
                let twin = configs
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| {
                        !absorbed[*i]
                            && c.instance == e.instance
                            && c.outcome.is_applied() == applied
                            && Some(c.sha256.as_str()) == sha
                            && c.at_unix_ms.abs_diff(at) <= RELOAD_MATCH_MS
                    })
                    .min_by_key(|(_, c)| c.at_unix_ms.abs_diff(at))
                    .map(|(i, _)| i);
                match twin {
                    Some(i) => {
                        absorbed[i] = true;
                        false
                    }
                    None => true,
                }
            }
        })
        .collect();
    let mut all: Vec<ChangeEntry> = markers
        .into_iter()
        .map(ChangeEntry::Marker)
        .chain(configs.into_iter().map(ChangeEntry::Config))
        .chain(commands.into_iter().map(ChangeEntry::Command))
        .collect();
    all.sort_by(|a, b| {
        b.at_unix_ms()
            .cmp(&a.at_unix_ms())
            .then_with(|| rank(a).cmp(&rank(b)))
            .then_with(|| id(b).cmp(&id(a)))
    });
    all.truncate(limit);
    all
}

/// A reload event's sha256 (when known) and whether it was applied; `None` for other events.
fn reload_of(e: &StoredEvent) -> Option<(Option<&str>, bool)> {
    match &e.stamped.event {
        Event::ReloadApplied { sha256, .. } => Some((Some(sha256.as_str()), true)),
        Event::ReloadRefused { sha256, .. } => Some((sha256.as_deref(), false)),
        _ => None,
    }
}

fn rank(e: &ChangeEntry) -> u8 {
    match e {
        ChangeEntry::Marker(_) => 0,
        ChangeEntry::Config(_) => 1,
        ChangeEntry::Command(_) => 2,
    }
}

fn id(e: &ChangeEntry) -> u64 {
    match e {
        ChangeEntry::Marker(c) => c.id,
        ChangeEntry::Config(c) => c.id,
        ChangeEntry::Command(e) => e.id,
    }
}

/// The longest summary a marker may have, in characters.
pub const MAX_SUMMARY: usize = 1000;
/// The longest service, version or author, in characters.
pub const MAX_FIELD: usize = 200;
/// The longest URL, in characters.
pub const MAX_URL: usize = 2000;
/// How far in the future a marker's time may be (clock skew between a pipeline and the
/// gateway); later than that is a mistake (seconds for milliseconds, say) that would keep the
/// marker "recent" for years.
pub const MAX_FUTURE_MS: u64 = 3_600_000;

/// Why a change marker is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("kind must be one of deploy, flag, data, infra, note (got {0:?})")]
    Kind(String),
    #[error("summary must not be empty: say in one line what changed")]
    EmptySummary,
    #[error("{field} is {len} characters long; at most {max} are kept")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} must not be empty when given (leave it out instead)")]
    Empty(&'static str),
    #[error("{0} must not contain control characters")]
    Control(&'static str),
    #[error("url must start with http:// or https:// (got {0:?})")]
    Url(String),
    #[error("at_unix_ms {at} is more than an hour after now ({now}); it is milliseconds since the Unix epoch")]
    Future { at: u64, now: u64 },
}

/// Parses a marker's kind, with the error the API and the CLI show.
pub fn marker_kind(kind: &str) -> Result<ChangeKind, MarkerError> {
    ChangeKind::parse(kind).ok_or_else(|| MarkerError::Kind(kind.to_string()))
}

/// Checks a marker before it is stored: a summary that says something, fields of sane length
/// without control characters (the summary may span lines), a web link, and a time that is not
/// far in the future of `now_unix_ms`.
pub fn check_marker(c: &NewChange, now_unix_ms: u64) -> Result<(), MarkerError> {
    if c.summary.trim().is_empty() {
        return Err(MarkerError::EmptySummary);
    }
    let long = |field, v: &str, max| {
        let len = v.chars().count();
        if len > max {
            Err(MarkerError::TooLong { field, len, max })
        } else {
            Ok(())
        }
    };
    long("summary", &c.summary, MAX_SUMMARY)?;
    if c.summary
        .chars()
        .any(|ch| ch.is_control() && ch != '\n' && ch != '\t')
    {
        return Err(MarkerError::Control("summary"));
    }
    let fields = [
        ("service", &c.service, MAX_FIELD),
        ("version", &c.version, MAX_FIELD),
        ("author", &c.author, MAX_FIELD),
        ("url", &c.url, MAX_URL),
    ];
    for (field, value, max) in fields {
        let Some(v) = value else { continue };
        if v.trim().is_empty() {
            return Err(MarkerError::Empty(field));
        }
        long(field, v, max)?;
        if v.chars().any(char::is_control) {
            return Err(MarkerError::Control(field));
        }
    }
    if let Some(url) = &c.url {
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(MarkerError::Url(url.clone()));
        }
    }
    if c.at_unix_ms > now_unix_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(MarkerError::Future {
            at: c.at_unix_ms,
            now: now_unix_ms,
        });
    }
    Ok(())
}

/// The answer to "is every machine's configuration the same?" for the instances sharing a
/// store, as seen by one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The instance answering (`host/admin-address`).
    pub instance: String,
    /// Whether the answering instance is live and not among `differing`. False also when its
    /// own heartbeat has not reached the store (the store was unreachable), since then nothing
    /// is known about it.
    pub in_agreement: bool,
    /// Instances whose last heartbeat is at or after this time (ms since the Unix epoch) are
    /// live; older ones are taken to be gone and are not listed.
    pub seen_since_unix_ms: u64,
    /// Every live instance, by name, with its host, running config's sha256 and last heartbeat.
    pub instances: Vec<Instance>,
    /// The live instances whose running config differs (see [`drift`]): empty when all agree.
    pub differing: Vec<String>,
}

impl DriftReport {
    /// The report `instance` gives from the store's instance rows `all`.
    pub fn assess(instance: &str, all: Vec<Instance>, seen_since_unix_ms: u64) -> Self {
        let differing: Vec<String> = drift(&all, seen_since_unix_ms)
            .into_iter()
            .map(|i| i.instance.clone())
            .collect();
        let instances: Vec<Instance> = all
            .into_iter()
            .filter(|i| i.last_seen_unix_ms >= seen_since_unix_ms)
            .collect();
        let live = instances.iter().any(|i| i.instance == instance);
        DriftReport {
            instance: instance.to_string(),
            in_agreement: live && !differing.iter().any(|d| d == instance),
            seen_since_unix_ms,
            instances,
            differing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Origin, Stamped};
    use crate::history::ConfigOutcome;

    fn marker(id: u64, at: u64) -> Change {
        Change {
            id,
            marker: NewChange {
                kind: ChangeKind::Deploy,
                service: Some("shop".into()),
                version: Some("1.2.3".into()),
                summary: "shop 1.2.3\nwith notes".into(),
                author: Some("ci".into()),
                url: Some("https://ci.example/1".into()),
                at_unix_ms: at,
            },
        }
    }

    fn config(id: u64, at: u64, instance: &str, sha: &str, applied: bool) -> ConfigSummary {
        ConfigSummary {
            id,
            sha256: sha.into(),
            source: Origin::Signal,
            at_unix_ms: at,
            host: "h".into(),
            instance: instance.into(),
            outcome: if applied {
                ConfigOutcome::Applied
            } else {
                ConfigOutcome::Refused {
                    error: "x.toml:1:1: bad\nmore".into(),
                }
            },
        }
    }

    fn stored(id: u64, at: u64, instance: &str, event: Event) -> StoredEvent {
        StoredEvent {
            id,
            instance: instance.into(),
            stamped: Stamped {
                seq: id,
                at_unix_ms: at,
                event,
            },
        }
    }

    fn drained(id: u64, at: u64) -> StoredEvent {
        stored(
            id,
            at,
            "i1",
            Event::ServerDrained {
                upstream: "app".into(),
                server: "10.0.0.1:80".into(),
                by: Origin::Cli,
            },
        )
    }

    fn applied(id: u64, at: u64, instance: &str, sha: &str) -> StoredEvent {
        stored(
            id,
            at,
            instance,
            Event::ReloadApplied {
                sha256: sha.into(),
                by: Origin::Signal,
                listeners_started: vec![],
                listeners_stopped: vec![],
                servers_added: 1,
                servers_removed: 0,
            },
        )
    }

    fn order(list: &[ChangeEntry]) -> Vec<(&'static str, u64)> {
        list.iter().map(|e| (e.type_name(), id(e))).collect()
    }

    #[test]
    fn command_kinds_match_is_command() {
        let commands = [
            drained(1, 1).stamped.event,
            Event::ServerEnabled {
                upstream: "a".into(),
                server: "s".into(),
                by: Origin::Api,
            },
            applied(1, 1, "i", "x").stamped.event,
            Event::ReloadRefused {
                sha256: None,
                by: Origin::Api,
                error: "e".into(),
            },
            Event::CachePurged {
                route: "r".into(),
                prefix: None,
                removed: 1,
            },
            Event::ServerEjectOrdered {
                upstream: "a".into(),
                server: "s".into(),
                ejection_ms: 30_000,
                until_unix_ms: 1,
                by: Origin::Remediation,
            },
            Event::RouteRerouted {
                route: "r".into(),
                to: Some("sorry".into()),
                by: Origin::Remediation,
            },
            Event::ShedShareSet {
                class: "low".into(),
                share: Some(0.5),
                by: Origin::Remediation,
            },
        ];
        let lines: Vec<String> = commands[5..].iter().map(command_line).collect();
        assert_eq!(
            lines,
            [
                "ejected a s for 30s (remediation)",
                "route r serves its sorry page (remediation)",
                "shedding 50% of low (remediation)"
            ]
        );
        let mut kinds: Vec<String> = commands
            .iter()
            .inspect(|e| assert!(is_command(e), "{e:?}"))
            .map(|e| {
                serde_json::to_value(e).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        kinds.sort();
        let mut listed = COMMAND_KINDS.map(String::from).to_vec();
        listed.sort();
        assert_eq!(kinds, listed);
        assert!(!is_command(&Event::BreakerOpened {
            upstream: "a".into(),
            server: "s".into()
        }));
    }

    #[test]
    fn merge_is_newest_first_with_stable_ties() {
        let merged = merge(
            vec![marker(1, 100), marker(2, 300)],
            vec![
                config(7, 200, "i1", "a", true),
                config(8, 300, "i1", "b", false),
            ],
            vec![drained(40, 250), drained(41, 300)],
            100,
        );
        assert_eq!(
            order(&merged),
            [
                ("marker", 2),
                ("config", 8),
                ("command", 41),
                ("command", 40),
                ("config", 7),
                ("marker", 1)
            ]
        );
        let merged = merge(vec![marker(1, 100), marker(2, 300)], vec![], vec![], 1);
        assert_eq!(order(&merged), [("marker", 2)]);
        assert!(merge(vec![], vec![], vec![], 10).is_empty());
    }

    #[test]
    fn non_commands_are_left_out() {
        let breaker = stored(
            5,
            10,
            "i1",
            Event::BreakerOpened {
                upstream: "a".into(),
                server: "s".into(),
            },
        );
        let merged = merge(vec![], vec![], vec![breaker, drained(6, 11)], 10);
        assert_eq!(order(&merged), [("command", 6)]);
    }

    #[test]
    fn a_reload_shows_once_as_its_config_version() {
        // The config version recorded for a reload absorbs the gateway's event for it.
        let configs = vec![
            config(1, 1_000, "i1", "a", true),
            config(2, 5_000, "i1", "b", false),
        ];
        let refused = stored(
            11,
            4_990,
            "i1",
            Event::ReloadRefused {
                sha256: Some("b".into()),
                by: Origin::Cli,
                error: "bad".into(),
            },
        );
        let events = vec![applied(10, 990, "i1", "a"), refused];
        let merged = merge(vec![], configs.clone(), events, 10);
        assert_eq!(order(&merged), [("config", 2), ("config", 1)]);

        // Not absorbed: another instance, another sha256, too far apart, or a second event
        // for a version that already absorbed one.
        let events = vec![
            applied(20, 1_000, "i2", "a"),
            applied(21, 1_001, "i1", "c"),
            applied(22, 1_000 + RELOAD_MATCH_MS + 1_001, "i1", "a"),
            applied(23, 1_002, "i1", "a"),
            applied(24, 1_003, "i1", "a"),
        ];
        let merged = merge(vec![], configs, events, 10);
        let commands: Vec<u64> = merged
            .iter()
            .filter(|e| e.type_name() == "command")
            .map(id)
            .collect();
        assert_eq!(
            commands,
            [22, 24, 21, 20],
            "23 took version 1; 24 found it taken"
        );
    }

    #[test]
    fn entries_are_tagged_by_source_and_round_trip() {
        let entries = vec![
            ChangeEntry::Marker(marker(1, 100)),
            ChangeEntry::Config(config(2, 200, "i1", "abc", false)),
            ChangeEntry::Command(drained(3, 300)),
        ];
        let json = serde_json::to_value(&entries).unwrap();
        assert_eq!(json[0]["type"], "marker");
        assert_eq!(json[0]["kind"], "deploy");
        assert_eq!(json[1]["type"], "config");
        assert_eq!(json[1]["source"], "signal");
        assert_eq!(json[1]["outcome"], "refused");
        assert_eq!(json[2]["type"], "command");
        assert_eq!(json[2]["kind"], "server_drained");
        assert_eq!(json[2]["upstream"], "app");
        let back: Vec<ChangeEntry> = serde_json::from_value(json).unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn one_line_descriptions() {
        let m = ChangeEntry::Marker(marker(1, 1));
        assert_eq!(m.what(), "deploy shop 1.2.3: shop 1.2.3");
        assert_eq!(m.who(), "ci");
        let c = ChangeEntry::Config(config(2, 1, "i1", "0123456789abcdef", true));
        assert_eq!(
            c.what(),
            "config version 2 applied (signal), sha256 0123456789ab"
        );
        assert_eq!(c.who(), "i1");
        let r = ChangeEntry::Config(config(3, 1, "i1", "x", false));
        assert_eq!(
            r.what(),
            "config version 3 refused (signal): x.toml:1:1: bad"
        );
        let d = ChangeEntry::Command(drained(4, 1));
        assert_eq!(d.what(), "drained app 10.0.0.1:80 (cli)");
    }

    fn new(summary: &str) -> NewChange {
        NewChange {
            kind: ChangeKind::Note,
            service: None,
            version: None,
            summary: summary.into(),
            author: None,
            url: None,
            at_unix_ms: 1_000,
        }
    }

    #[test]
    fn markers_are_checked() {
        let now = 1_000;
        assert_eq!(check_marker(&new("ok"), now), Ok(()));
        assert_eq!(
            check_marker(&new("  \n"), now),
            Err(MarkerError::EmptySummary)
        );
        let long = "é".repeat(MAX_SUMMARY + 1);
        assert!(matches!(
            check_marker(&new(&long), now),
            Err(MarkerError::TooLong {
                field: "summary",
                ..
            })
        ));
        assert_eq!(check_marker(&new(&"é".repeat(MAX_SUMMARY)), now), Ok(()));
        assert_eq!(
            check_marker(&new("a\u{1b}[31m"), now),
            Err(MarkerError::Control("summary"))
        );
        let with = |f: fn(&mut NewChange)| {
            let mut c = new("ok");
            f(&mut c);
            check_marker(&c, now)
        };
        assert_eq!(
            with(|c| c.service = Some(String::new())),
            Err(MarkerError::Empty("service"))
        );
        assert_eq!(
            with(|c| c.author = Some("a\nb".into())),
            Err(MarkerError::Control("author"))
        );
        assert!(matches!(
            with(|c| c.version = Some("v".repeat(MAX_FIELD + 1))),
            Err(MarkerError::TooLong {
                field: "version",
                ..
            })
        ));
        for bad in ["javascript:alert(1)", "ftp://x", "https://", "http://a b"] {
            let mut c = new("ok");
            c.url = Some(bad.into());
            assert_eq!(
                check_marker(&c, now),
                Err(MarkerError::Url(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(with(|c| c.url = Some("HTTPS://ci/1".into())), Ok(()));
        assert_eq!(with(|c| c.at_unix_ms = 1_000 + MAX_FUTURE_MS), Ok(()));
        assert!(matches!(
            with(|c| c.at_unix_ms = 1_001 + MAX_FUTURE_MS),
            Err(MarkerError::Future { .. })
        ));
        assert_eq!(marker_kind("flag"), Ok(ChangeKind::Flag));
        let e = marker_kind("deploys").unwrap_err();
        assert!(
            e.to_string().contains("deploy, flag, data, infra, note"),
            "{e}"
        );
    }

    fn inst(name: &str, sha: &str, seen: u64) -> Instance {
        Instance {
            instance: name.into(),
            host: "h".into(),
            config_sha256: sha.into(),
            first_seen_unix_ms: 0,
            last_seen_unix_ms: seen,
        }
    }

    #[test]
    fn drift_report() {
        let alone = DriftReport::assess("a", vec![inst("a", "x", 100)], 50);
        assert!(alone.in_agreement);
        assert!(alone.differing.is_empty());
        assert_eq!(alone.instances.len(), 1);

        let two = vec![
            inst("a", "x", 100),
            inst("b", "y", 100),
            inst("old", "z", 10),
        ];
        let r = DriftReport::assess("a", two, 50);
        assert_eq!(r.differing, ["a", "b"]);
        assert!(!r.in_agreement);
        assert_eq!(r.instances.len(), 2, "gone instances are not listed");

        let three = vec![
            inst("a", "x", 100),
            inst("b", "y", 100),
            inst("c", "x", 100),
        ];
        assert!(DriftReport::assess("a", three.clone(), 50).in_agreement);
        assert!(!DriftReport::assess("b", three, 50).in_agreement);

        // Its own heartbeat never arrived: nothing is known about it.
        let r = DriftReport::assess("me", vec![inst("a", "x", 100)], 50);
        assert!(!r.in_agreement);
    }
}

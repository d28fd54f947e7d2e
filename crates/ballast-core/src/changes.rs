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

    /// Who made the change: a marker's author; the instance that applied the config; for a
    /// command, the person who asked (the admin token's name) when the event records one, else
    /// the instance that carried it out (the origin, `api`, `cli`..., is in [`Self::what`]).
    /// Empty when a marker names no author.
    pub fn who(&self) -> &str {
        match self {
            ChangeEntry::Marker(c) => c.marker.author.as_deref().unwrap_or(""),
            ChangeEntry::Config(c) => &c.instance,
            ChangeEntry::Command(e) => e.stamped.event.who().unwrap_or(&e.instance),
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
            ..
        } => format!("drained {upstream} {server} ({})", by.name()),
        Event::ServerEnabled {
            upstream,
            server,
            by,
            ..
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
            ..
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
        Event::RouteRerouted { route, to, by, .. } => match to {
            Some(to) if to == "sorry" => {
                format!("route {route} serves its sorry page ({})", by.name())
            }
            Some(to) => format!("route {route} rerouted to {to} ({})", by.name()),
            None => format!("route {route} restored as configured ({})", by.name()),
        },
        Event::ShedShareSet {
            class, share, by, ..
        } => match share {
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
#[path = "changes_tests.rs"]
mod tests;

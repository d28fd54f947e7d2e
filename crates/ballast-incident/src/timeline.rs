//! The incident timeline: one ordered, deduplicated list of what happened, built from records
//! Ballast already keeps, and "what changed" before the start.
//!
//! It exists because a timeline curated by hand after the fact is late, partial and flattering.
//! Every source becomes a [`TimelineEntry`] through one constructor (on the type, in
//! `ballast-core`, so the store and `ballast-remedy` can build entries too): alerts firing and
//! resolving, notifications sent, remediation runs, config versions, change markers, commands
//! given at run time (drains among them), status changes and notes. A timeline read back from
//! the store is put in order and deduplicated again, whatever was stored.
//!
//! Order: by time, then by kind (in [`EntryKind`]'s order, so an alert firing sorts before the
//! notification it caused when both share a millisecond), then by key. Dedup: every entry
//! has a `key` naming its source record (`alert:<id>:fired:<since>`, `config:<id>`,
//! `notification:<id>:<state>`...), and a second entry with a key already present is dropped, so
//! the binary can feed the same records again after a restart or on every refresh.
//!
//! "What changed" ([`what_changed`]) is the change entries (markers, config versions,
//! commands) in the [`WHAT_CHANGED_MS`] (2 h) before the impact's start, newest first: the first
//! thing to look at, and the first candidate for a rollback.

use std::collections::BTreeSet;

pub use ballast_core::incident::{EntryKind, TimelineEntry};
use ballast_core::ChangeEntry;
use serde::{Deserialize, Serialize};

/// How far before an incident's start "what changed" looks: 2 h.
pub const WHAT_CHANGED_MS: u64 = 2 * 3600 * 1000;

/// The ordered, deduplicated entries of one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<TimelineEntry>", into = "Vec<TimelineEntry>")]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
}

impl From<Vec<TimelineEntry>> for Timeline {
    fn from(entries: Vec<TimelineEntry>) -> Self {
        let mut t = Timeline::new();
        t.extend(entries);
        t
    }
}

impl From<Timeline> for Vec<TimelineEntry> {
    fn from(t: Timeline) -> Self {
        t.entries
    }
}

impl Timeline {
    pub fn new() -> Self {
        Timeline::default()
    }

    /// Adds an entry in its place; returns false (and changes nothing) when one with the same
    /// key is already there.
    pub fn insert(&mut self, entry: TimelineEntry) -> bool {
        if self.entries.iter().any(|e| e.key == entry.key) {
            return false;
        }
        let at = self
            .entries
            .partition_point(|e| e.order_key() <= entry.order_key());
        self.entries.insert(at, entry);
        true
    }

    /// Adds many entries; returns how many were new.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = TimelineEntry>) -> usize {
        let mut keys: BTreeSet<String> = self.entries.iter().map(|e| e.key.clone()).collect();
        let before = self.entries.len();
        for e in entries {
            if keys.insert(e.key.clone()) {
                self.entries.push(e);
            }
        }
        self.entries
            .sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        self.entries.len() - before
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The changes in the [`WHAT_CHANGED_MS`] before `started_unix_ms` (both ends included),
/// newest first.
pub fn what_changed(changes: &[ChangeEntry], started_unix_ms: u64) -> Vec<ChangeEntry> {
    let from = started_unix_ms.saturating_sub(WHAT_CHANGED_MS);
    let mut out: Vec<ChangeEntry> = changes
        .iter()
        .filter(|c| (from..=started_unix_ms).contains(&c.at_unix_ms()))
        .cloned()
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.at_unix_ms()));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ballast_core::{
        AlertRecord, AlertSource, AlertState, Change, ChangeKind, ConfigOutcome, ConfigSummary,
        Event, Labels, NewChange, Origin, Severity, Stamped, StoredEvent,
    };

    pub(crate) fn alert(rule: &str, service: &str, state: AlertState, since: u64) -> AlertRecord {
        let labels = Labels::new()
            .with("alertname", rule)
            .with("service", service);
        AlertRecord {
            id: labels.fingerprint(),
            rule: rule.to_string(),
            labels,
            annotations: Default::default(),
            state,
            source: AlertSource::Rule,
            value: Some(0.3),
            threshold: Some(0.05),
            since_unix_ms: since,
            updated_unix_ms: since,
            ack: None,
        }
    }

    pub(crate) fn deploy(id: u64, at: u64) -> ChangeEntry {
        ChangeEntry::Marker(Change {
            id,
            marker: NewChange {
                kind: ChangeKind::Deploy,
                service: Some("shop".to_string()),
                version: Some("v42".to_string()),
                summary: "new checkout flow".to_string(),
                author: Some("ci".to_string()),
                url: None,
                at_unix_ms: at,
            },
        })
    }

    pub(crate) fn config(id: u64, at: u64) -> ChangeEntry {
        ChangeEntry::Config(ConfigSummary {
            id,
            sha256: "abcdef0123456789".to_string(),
            source: Origin::Api,
            at_unix_ms: at,
            host: "gw1".to_string(),
            instance: "gw1:9000".to_string(),
            outcome: ConfigOutcome::Applied,
        })
    }

    pub(crate) fn drain(id: u64, at: u64) -> ChangeEntry {
        ChangeEntry::Command(StoredEvent {
            id,
            instance: "gw1:9000".to_string(),
            stamped: Stamped {
                seq: id,
                at_unix_ms: at,
                event: Event::ServerDrained {
                    upstream: "app".to_string(),
                    server: "10.0.0.2:8080".to_string(),
                    by: Origin::Cli,
                    who: None,
                },
            },
        })
    }

    #[test]
    fn ordered_by_time_then_kind_and_deduplicated() {
        let mut t = Timeline::new();
        let fired = TimelineEntry::from_alert(&alert(
            "a",
            "shop",
            AlertState::Firing {
                severity: Severity::Warning,
            },
            500,
        ))
        .unwrap();
        let note = TimelineEntry::note(0, 500, "ana", "looking\nmore text");
        assert!(t.insert(note.clone()));
        assert!(t.insert(fired.clone()));
        assert!(!t.insert(fired.clone()), "the same alert again is dropped");
        let added = t.extend([
            TimelineEntry::from_change(&deploy(1, 100)),
            TimelineEntry::from_change(&deploy(1, 100)),
            fired.clone(),
            TimelineEntry::from_change(&config(2, 900)),
        ]);
        assert_eq!(added, 2);
        let kinds: Vec<_> = t.entries().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EntryKind::Change,
                EntryKind::AlertFired,
                EntryKind::Note,
                EntryKind::Config
            ]
        );
        assert_eq!(t.entries()[2].summary, "looking");
        // Read back out of order and with a repeat, it is put right.
        let mut stored: Vec<TimelineEntry> = t.entries().to_vec();
        stored.reverse();
        stored.push(fired);
        let json = serde_json::to_string(&stored).unwrap();
        let back: Timeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn what_changed_is_the_two_hours_before_the_start() {
        let start = 10 * 3600 * 1000;
        let changes = [
            deploy(1, start - WHAT_CHANGED_MS - 1),
            deploy(2, start - WHAT_CHANGED_MS),
            config(3, start - 60_000),
            drain(4, start),
            deploy(5, start + 1),
        ];
        let got: Vec<u64> = what_changed(&changes, start)
            .iter()
            .map(|c| c.at_unix_ms())
            .collect();
        assert_eq!(got, [start, start - 60_000, start - WHAT_CHANGED_MS]);
        // A start near the epoch does not underflow.
        assert_eq!(what_changed(&changes, 5).len(), 0);
    }
}

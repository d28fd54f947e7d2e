//! Rules triggered by the gateway's own events (`when = { event = "breaker_opened" }`), not
//! only by alerts: some faults are best answered the moment the gateway sees them (a breaker
//! that opened, a flood guard that tripped), before any rule has evaluated a window.
//!
//! An event becomes a one-shot, alert-shaped record so the rest of the crate (matching,
//! placeholders, guards, the run record) treats both alike:
//!
//! - its rule name is `event:KIND`, which no alert rule can have (rule names are plain
//!   identifiers), so alert rules never match it and event rules never match alerts;
//! - its labels are the event's scalar fields (`upstream`, `server`, `route`, `client`, ...,
//!   numbers and booleans as text) plus `event = KIND`; nested values are left out;
//! - its id is `event-SEQ`, its state firing (warning), its time the event's.
//!
//! It has no resolution, so `verify` does not apply to it: a run on an event succeeds or
//! fails by its actions alone. Events of remediation itself (`remediation_*`) cannot trigger
//! a rule, or a rule could trigger itself forever.

use std::collections::BTreeMap;

use ballast_core::{AlertRecord, AlertSource, AlertState, Labels, Severity, Stamped};

/// The prefix of an event record's rule name.
pub const PREFIX: &str = "event:";

/// The kinds no rule may be triggered by.
pub fn forbidden(kind: &str) -> bool {
    kind.starts_with("remediation_")
}

/// Whether `kind` is written like an event kind (`snake_case`).
pub fn well_formed(kind: &str) -> bool {
    !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && kind.as_bytes()[0].is_ascii_lowercase()
}

/// The event's kind, as its JSON `kind` tag says.
pub fn kind_of(stamped: &Stamped) -> Option<String> {
    let v = serde_json::to_value(&stamped.event).ok()?;
    v.get("kind")?.as_str().map(str::to_string)
}

/// The alert-shaped record of an event (see the module doc).
pub fn record_of(stamped: &Stamped) -> Option<AlertRecord> {
    let v = serde_json::to_value(&stamped.event).ok()?;
    let fields = v.as_object()?;
    let kind = fields.get("kind")?.as_str()?.to_string();
    let mut labels = Labels::new();
    for (name, value) in fields {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if name != "kind" {
            labels = labels.with(name, text);
        }
    }
    labels = labels.with("event", &kind);
    Some(AlertRecord {
        id: format!("event-{}", stamped.seq),
        rule: format!("{PREFIX}{kind}"),
        labels,
        annotations: BTreeMap::new(),
        state: AlertState::Firing {
            severity: Severity::Warning,
        },
        source: AlertSource::Rule,
        value: None,
        threshold: None,
        since_unix_ms: stamped.at_unix_ms,
        updated_unix_ms: stamped.at_unix_ms,
        ack: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::Event;

    fn stamped(event: Event) -> Stamped {
        Stamped {
            seq: 42,
            at_unix_ms: 1_000,
            event,
        }
    }

    #[test]
    fn an_event_becomes_a_record_with_its_fields_as_labels() {
        let s = stamped(Event::BreakerOpened {
            upstream: "app".into(),
            server: "10.0.0.1:80".into(),
        });
        assert_eq!(kind_of(&s).as_deref(), Some("breaker_opened"));
        let r = record_of(&s).unwrap();
        assert_eq!(r.id, "event-42");
        assert_eq!(r.rule, "event:breaker_opened");
        assert_eq!(r.labels.get("upstream"), Some("app"));
        assert_eq!(r.labels.get("server"), Some("10.0.0.1:80"));
        assert_eq!(r.labels.get("event"), Some("breaker_opened"));
        assert_eq!(r.since_unix_ms, 1_000);
        assert!(r.state.severity().is_some());
    }

    #[test]
    fn numbers_become_text_and_nested_values_are_left_out() {
        let s = stamped(Event::SheddingStarted {
            upstream: "app".into(),
            limit: 64,
        });
        let r = record_of(&s).unwrap();
        assert_eq!(r.labels.get("limit"), Some("64"));
    }

    #[test]
    fn kinds() {
        assert!(well_formed("server_down"));
        assert!(!well_formed("Server-Down"));
        assert!(!well_formed(""));
        assert!(!well_formed("_x"));
        assert!(forbidden("remediation_ran"));
        assert!(!forbidden("breaker_opened"));
    }
}

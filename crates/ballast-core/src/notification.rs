//! Notifications in the outbox, as the store keeps them and the API shows them.
//!
//! They live here, not in `ballast-notify`, so that the store (which persists them), the admin
//! API (`GET /api/v1/notifications`) and the CLI agree on one shape without depending on the
//! notifier crate. The message itself is opaque JSON text to everyone but `ballast-notify`.
//!
//! One outbox row's state machine (the store drives it; see `ballast-store`'s `outbox.rs`):
//!
//! ```text
//!   enqueue ──▶ PENDING ──mark_delivered──▶ DELIVERED
//!               │  ▲  │
//!  mark_attempt │  │  └──mark_expired (now ≥ expires)──▶ EXPIRED
//!  (error, next │  │
//!   attempt at) └──┘
//!               │
//!               └──mark_attempt (error, no next attempt: permanent or given up)──▶ FAILED
//! ```
//!
//! Only a PENDING row is ever due, and only once `not_before ≤ now < expires`; every other
//! state is final, so a delivered notification is never sent again, even after a restart.

use serde::{Deserialize, Serialize};

/// Where an outbox row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The receiver took it.
    Delivered,
    /// Given up: the receiver refused it for good, or retrying stopped.
    Failed,
    /// Its maximum age passed before it could be delivered.
    Expired,
}

impl NotificationState {
    /// The name stored and shown (`pending`, `delivered`, `failed`, `expired`).
    pub fn name(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Failed => "failed",
            NotificationState::Expired => "expired",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(NotificationState::Pending),
            "delivered" => Some(NotificationState::Delivered),
            "failed" => Some(NotificationState::Failed),
            "expired" => Some(NotificationState::Expired),
            _ => None,
        }
    }

    /// Whether nothing more will happen to the row.
    pub fn is_final(self) -> bool {
        self != NotificationState::Pending
    }
}

/// A notification to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    /// The receiver's name (`[[receiver]] name`).
    pub receiver: String,
    /// The group the message is about (the grouper's key).
    pub group_key: String,
    /// The message, as JSON text.
    pub payload_json: String,
    pub created_unix_ms: u64,
    /// Not sent before this moment (a receiver's rate limit, an escalation's delay).
    pub not_before_unix_ms: u64,
    /// Given up (expired) at this moment if still undelivered.
    pub expires_unix_ms: u64,
    /// Unique: enqueuing the same key again is a no-op, so a flush replayed after a restart
    /// is delivered once.
    pub dedup_key: String,
}

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: u64,
    #[serde(flatten)]
    pub new: NewNotification,
    pub state: NotificationState,
    /// Sends tried so far, the successful one included.
    pub attempts: u32,
    pub last_attempt_unix_ms: Option<u64>,
    /// The last failure's reason (never a secret: notifiers name receivers, not addresses).
    pub last_error: Option<String>,
    pub delivered_unix_ms: Option<u64>,
    /// The receiver's answer when it took the message.
    pub answer: Option<String>,
}

/// One line of the notification log (`GET /api/v1/notifications`): what, to whom, when,
/// attempts, result. The payload is left out: a storm's message can be large.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationLog {
    pub id: u64,
    /// To whom.
    pub receiver: String,
    /// What: the alert group.
    pub group_key: String,
    pub dedup_key: String,
    /// When it was queued.
    pub created_unix_ms: u64,
    pub state: NotificationState,
    /// Every send tried, failed or not.
    pub attempts: u32,
    pub last_attempt_unix_ms: Option<u64>,
    pub delivered_unix_ms: Option<u64>,
    /// The result: the receiver's answer when delivered, else the last error, if any.
    pub result: Option<String>,
    /// One line that says what the message said (see [`headline`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
}

/// One line that says what a message was about, read from its payload (a message of
/// `ballast-notify`: a status, a severity and alerts with annotations), e.g. `firing critical:
/// server-down — a web server stopped answering (+1 more)`. `None` for a payload of another
/// shape. It is for the log and the dashboard; receivers get the full message.
pub fn headline(payload_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload_json).ok()?;
    let alerts = v.get("alerts")?.as_array()?;
    let first = alerts.first()?;
    let mut line = v.get("status")?.as_str()?.to_string();
    if let Some(sev) = v.get("severity").and_then(|s| s.as_str()) {
        line.push(' ');
        line.push_str(sev);
    }
    line.push_str(": ");
    line.push_str(first.get("rule").and_then(|r| r.as_str()).unwrap_or("?"));
    let summary = first
        .get("annotations")
        .and_then(|a| a.get("summary"))
        .and_then(|s| s.as_str());
    if let Some(s) = summary {
        line.push_str(" — ");
        line.extend(s.chars().take(160));
    }
    if alerts.len() > 1 {
        line.push_str(&format!(" (+{} more)", alerts.len() - 1));
    }
    Some(line)
}

impl Notification {
    /// The row's line in the notification log.
    pub fn log(&self) -> NotificationLog {
        NotificationLog {
            id: self.id,
            receiver: self.new.receiver.clone(),
            group_key: self.new.group_key.clone(),
            dedup_key: self.new.dedup_key.clone(),
            created_unix_ms: self.new.created_unix_ms,
            state: self.state,
            attempts: self.attempts,
            last_attempt_unix_ms: self.last_attempt_unix_ms,
            delivered_unix_ms: self.delivered_unix_ms,
            result: match self.state {
                NotificationState::Delivered => self.answer.clone(),
                _ => self.last_error.clone(),
            },
            headline: headline(&self.new.payload_json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for s in [
            NotificationState::Pending,
            NotificationState::Delivered,
            NotificationState::Failed,
            NotificationState::Expired,
        ] {
            assert_eq!(NotificationState::parse(s.name()), Some(s));
            assert_eq!(s.is_final(), s != NotificationState::Pending);
        }
        assert_eq!(NotificationState::parse("sent"), None);
    }

    #[test]
    fn a_headline_says_what_the_message_was_about() {
        let payload = r#"{"status":"firing","severity":"critical","alerts":[
            {"rule":"server-down","annotations":{"summary":"a web server stopped answering"}},
            {"rule":"upstream-degraded"}]}"#;
        assert_eq!(
            headline(payload).as_deref(),
            Some("firing critical: server-down — a web server stopped answering (+1 more)")
        );
        assert_eq!(
            headline(r#"{"status":"resolved","severity":null,"alerts":[{"rule":"x"}]}"#).as_deref(),
            Some("resolved: x")
        );
        assert_eq!(headline("not json"), None);
        assert_eq!(headline(r#"{"alerts":[]}"#), None);
    }
}

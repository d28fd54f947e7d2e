//! From a message to an outbox row, and from a send's result to the row's next state. Pure:
//! the store (`ballast-store`'s `outbox.rs`) does the I/O, the delivery loop calls these.
//!
//! Why here: the dedup key decides "delivered once", and the mapping from a [`SendError`] to
//! retry-or-give-up decides "nothing lost, nothing hammered"; both deserve unit tests without
//! a database or a receiver.
//!
//! The delivery loop, for each row the store's `due` returns at `now`:
//!
//! ```text
//!   rate limiter says wait ──▶ leave it PENDING, look again at the returned time
//!   send ──▶ after_send(result) ──▶ Delivered{answer} ──▶ store.mark_delivered   (DELIVERED)
//!                                ├─ Retry{at, error} ──▶ store.mark_attempt(.., Some(at)) (PENDING)
//!                                └─ GiveUp{error}    ──▶ store.mark_attempt(.., None)     (FAILED)
//! ```

use ballast_core::{sha256_hex, NewNotification};
use thiserror::Error;

use crate::backoff::{Backoff, Retry};
use crate::message::Message;
use crate::notifier::{Delivered, SendError};

/// The default maximum age of a notification: after an hour undelivered, it is stale news
/// (the alert has been re-announced or resolved since), and it is given up.
pub const DEFAULT_MAX_AGE_MS: u64 = 3_600_000;

#[derive(Debug, Error)]
#[error("encoding the message as JSON failed: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

/// The dedup key of `message` for `receiver`: the same receiver, group, status, members (id,
/// state, since) and moment give the same key, so enqueuing one flush twice (a retry after a
/// store error, a replay after a restart) is one row.
pub fn dedup_key(receiver: &str, message: &Message) -> String {
    let mut text = format!(
        "msg\n{receiver}\n{}\n{:?}\n{}\n",
        message.group_key, message.status, message.at_unix_ms
    );
    for a in &message.alerts {
        text.push_str(&format!(
            "{}\t{}\t{:?}\t{}\n",
            a.id,
            a.state.name(),
            a.state.severity(),
            a.since_unix_ms
        ));
    }
    sha256_hex(&text)
}

/// The dedup key of an escalation: once per receiver and alert episode (the alert's id and
/// the moment it started firing), however often the escalation is found due.
pub fn escalation_dedup_key(receiver: &str, alert_id: &str, firing_since_unix_ms: u64) -> String {
    sha256_hex(&format!(
        "escalate\n{receiver}\n{alert_id}\n{firing_since_unix_ms}"
    ))
}

/// The outbox row for `message` to `receiver`, due from `not_before_unix_ms` and given up
/// `max_age_ms` after `now_unix_ms`.
pub fn new_notification(
    receiver: &str,
    message: &Message,
    dedup_key: String,
    now_unix_ms: u64,
    not_before_unix_ms: u64,
    max_age_ms: u64,
) -> Result<NewNotification, EncodeError> {
    Ok(NewNotification {
        receiver: receiver.to_string(),
        group_key: message.group_key.clone(),
        payload_json: serde_json::to_string(message)?,
        created_unix_ms: now_unix_ms,
        not_before_unix_ms,
        expires_unix_ms: now_unix_ms.saturating_add(max_age_ms),
        dedup_key,
    })
}

/// What a send's result means for the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered { answer: String },
    Retry { at_unix_ms: u64, error: String },
    GiveUp { error: String },
}

/// The row's next state after an attempt at `now_unix_ms` that was the `attempt`-th (1 for
/// the first) of a notification expiring at `expires_unix_ms`. A permanent error gives up at
/// once; a retryable one backs off (obeying `Retry-After`) unless that passes the expiry.
pub fn after_send(
    result: &Result<Delivered, SendError>,
    attempt: u32,
    now_unix_ms: u64,
    expires_unix_ms: u64,
    backoff: &Backoff,
    jitter: &mut dyn FnMut(u64) -> u64,
) -> Outcome {
    match result {
        Ok(d) => Outcome::Delivered {
            answer: d.answer.clone(),
        },
        Err(SendError::Permanent { reason }) => Outcome::GiveUp {
            error: reason.clone(),
        },
        Err(SendError::Retry {
            reason,
            retry_after,
        }) => match backoff.next(attempt, now_unix_ms, expires_unix_ms, *retry_after, jitter) {
            Retry::At(at_unix_ms) => Outcome::Retry {
                at_unix_ms,
                error: reason.clone(),
            },
            Retry::GiveUp => Outcome::GiveUp {
                error: format!("{reason} (given up: the next attempt would pass the maximum age)"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Locale, MessageAlert, MessageStatus};
    use ballast_core::{AlertState, Labels, Severity};

    fn message(state: AlertState) -> Message {
        let labels = Labels::new().with("alertname", "app-5xx");
        Message {
            group_key: "{alertname=\"app-5xx\"}".to_string(),
            group_labels: labels.clone(),
            status: MessageStatus::Firing,
            severity: state.severity(),
            alerts: vec![MessageAlert {
                id: labels.fingerprint(),
                rule: "app-5xx".to_string(),
                labels,
                annotations: Default::default(),
                state,
                value: Some(0.07),
                threshold: Some(0.05),
                since_unix_ms: 1000,
            }],
            dashboard_url: None,
            locale: Locale::En,
            at_unix_ms: 2000,
            route: 1,
            escalated_after_ms: None,
            template: None,
        }
    }

    #[test]
    fn dedup_keys_tell_messages_apart() {
        let crit = message(AlertState::Firing {
            severity: Severity::Critical,
        });
        let warn = message(AlertState::Firing {
            severity: Severity::Warning,
        });
        assert_eq!(dedup_key("a", &crit), dedup_key("a", &crit.clone()));
        assert_ne!(dedup_key("a", &crit), dedup_key("b", &crit));
        assert_ne!(dedup_key("a", &crit), dedup_key("a", &warn));
        let mut later = crit.clone();
        later.at_unix_ms += 1;
        assert_ne!(dedup_key("a", &crit), dedup_key("a", &later));
        assert_eq!(
            escalation_dedup_key("b", "id", 5),
            escalation_dedup_key("b", "id", 5)
        );
        assert_ne!(
            escalation_dedup_key("b", "id", 5),
            escalation_dedup_key("b", "id", 6)
        );
        assert_ne!(escalation_dedup_key("b", "id", 5), dedup_key("b", &crit));
    }

    #[test]
    fn a_row_carries_the_message() {
        let m = message(AlertState::Resolved);
        let n = new_notification("hook", &m, "k".to_string(), 5000, 6000, 60_000).unwrap();
        assert_eq!(n.receiver, "hook");
        assert_eq!(n.group_key, m.group_key);
        assert_eq!((n.created_unix_ms, n.not_before_unix_ms), (5000, 6000));
        assert_eq!(n.expires_unix_ms, 65_000);
        let back: Message = serde_json::from_str(&n.payload_json).unwrap();
        assert_eq!(back, m);
        let n = new_notification("hook", &m, "k".to_string(), u64::MAX, 0, 1).unwrap();
        assert_eq!(n.expires_unix_ms, u64::MAX);
    }

    #[test]
    fn results_map_to_states() {
        let b = Backoff::default();
        let ok = Ok(Delivered {
            answer: "200 ok".to_string(),
        });
        assert_eq!(
            after_send(&ok, 1, 0, 10_000, &b, &mut |n| n),
            Outcome::Delivered {
                answer: "200 ok".to_string()
            }
        );
        let refused = Err(SendError::permanent("400 invalid_payload"));
        assert_eq!(
            after_send(&refused, 1, 0, 10_000, &b, &mut |n| n),
            Outcome::GiveUp {
                error: "400 invalid_payload".to_string()
            }
        );
        let busy = Err(SendError::Retry {
            reason: "429 from slack".to_string(),
            retry_after: Some(std::time::Duration::from_secs(2)),
        });
        assert_eq!(
            after_send(&busy, 1, 0, 10_000, &b, &mut |_| 0),
            Outcome::Retry {
                at_unix_ms: 2000,
                error: "429 from slack".to_string()
            }
        );
        // Retry-After past the expiry: given up, saying why.
        assert!(matches!(
            after_send(&busy, 1, 9000, 10_000, &b, &mut |_| 0),
            Outcome::GiveUp { error } if error.starts_with("429 from slack")
        ));
    }
}

//! The `pagerduty` receiver kind: PagerDuty's Events API v2, so that a critical alert pages
//! whoever is on call there, and its resolution closes the incident.
//!
//! A firing message is a `trigger` event; a resolved one is a `resolve` event. Both carry the
//! same `dedup_key`, derived from the message's group (`ballast-` and the SHA-256 of its
//! `group_key`): every message of one group (the first, a change, a repeat) updates one
//! incident, and the group's resolution resolves it. The key does not depend on the route's
//! position or the receiver's name, so reordering `[[notify]]` or renaming the receiver does not
//! orphan an open incident; the price is that two routes sending the same group to one
//! `pagerduty` receiver share its incident.
//!
//! A trigger's `payload` has `summary` (the rendered title, at most 1024 characters), `severity`
//! (critical → `critical`, warning → `warning`, otherwise `info`), `source` (the configured
//! `source`, default `ballast`), `timestamp`, and `custom_details` with the counts, the group's
//! labels and the alerts (the first [`MAX_DETAILED`] written out, the rest summed up per rule);
//! `links` point at the dashboard when its address is known.
//!
//! The routing key is a [`Secret`]: no error, log line or `Debug` output shows it, and an answer
//! quoting it is redacted. Answers: `202` (any 2xx) is delivered; `429`, `408`, `5xx` and no
//! answer at all are retried (after `Retry-After` when given); `400` (an invalid event, a wrong
//! routing key) and other `4xx` are permanent, with PagerDuty's `message` and `errors` quoted.

use std::fmt;
use std::path::PathBuf;

use ballast_core::{sha256_hex, AlertState, Severity};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::http::{
    answer_word, json_body, retry_after, Endpoint, HttpClient, HttpError, HttpResponse,
};
use crate::message::{Message, MessageStatus};
use crate::notifier::{BoxFuture, Delivered, Notifier, SendError};
use crate::render::{self, truncate_chars};
use crate::secret::{load_required, ConfigError, Secret};

const KIND: &str = "pagerduty";

/// The Events API v2 address when none is configured.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The `source` when none is configured.
pub const DEFAULT_SOURCE: &str = "ballast";

/// PagerDuty's limit on `payload.summary`.
pub const MAX_SUMMARY: usize = 1024;

/// How many alerts `custom_details` lists one by one (PagerDuty takes up to 512 KB per event).
pub const MAX_DETAILED: usize = 100;

/// `[[receiver]] pagerduty = { … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration's routing key; one of `routing_key`, `routing_key_file`,
    /// `routing_key_env`.
    pub routing_key: Option<Secret>,
    pub routing_key_file: Option<PathBuf>,
    pub routing_key_env: Option<String>,
    /// Where events go (default `https://events.pagerduty.com/v2/enqueue`).
    pub url: Option<String>,
    /// `payload.source`: the affected system as PagerDuty shows it (default `ballast`).
    pub source: Option<String>,
}

/// The `dedup_key` of every event about `message`'s group.
pub fn dedup_key(message: &Message) -> String {
    format!("ballast-{}", sha256_hex(&message.group_key))
}

/// PagerDuty's severity word for the message.
pub fn severity(message: &Message) -> &'static str {
    match (message.status, message.severity) {
        (MessageStatus::Firing, Some(Severity::Critical)) => "critical",
        (MessageStatus::Firing, Some(Severity::Warning)) => "warning",
        _ => "info",
    }
}

fn alert_details(message: &Message, a: &crate::message::MessageAlert) -> Value {
    let mut d = Map::new();
    d.insert("rule".into(), Value::String(a.rule.clone()));
    d.insert("state".into(), Value::String(a.state.name().into()));
    if let AlertState::Firing { severity } = a.state {
        d.insert("severity".into(), Value::String(severity.name().into()));
    }
    d.insert("labels".into(), json!(a.labels));
    if let Some(v) = a.value {
        d.insert("value".into(), json!(v));
    }
    if let Some(t) = a.threshold {
        d.insert("threshold".into(), json!(t));
    }
    d.insert(
        "since".into(),
        Value::String(render::rfc3339(a.since_unix_ms)),
    );
    if !a.annotations.is_empty() {
        d.insert("annotations".into(), json!(a.annotations));
    }
    if let Some(dash) = &message.dashboard_url {
        d.insert("url".into(), Value::String(render::alert_url(dash, &a.id)));
    }
    Value::Object(d)
}

/// The event PagerDuty receives for `message`.
pub fn event(message: &Message, routing_key: &Secret, source: &str) -> Value {
    let key = dedup_key(message);
    if message.status == MessageStatus::Resolved {
        return json!({
            "routing_key": routing_key.expose(),
            "event_action": "resolve",
            "dedup_key": key,
        });
    }
    let rendered = render::render(message, MAX_DETAILED);
    let by_id: std::collections::BTreeMap<&str, &crate::message::MessageAlert> =
        message.alerts.iter().map(|a| (a.id.as_str(), a)).collect();
    let alerts: Vec<Value> = rendered
        .alerts
        .iter()
        .filter_map(|t| by_id.get(t.id.as_str()))
        .map(|a| alert_details(message, a))
        .collect();
    let mut details = Map::new();
    details.insert("firing".into(), json!(message.firing().count()));
    details.insert("resolved".into(), json!(message.resolved().count()));
    details.insert("group".into(), json!(message.group_labels));
    details.insert("alerts".into(), Value::Array(alerts));
    if let Some(more) = &rendered.more {
        details.insert("more".into(), Value::String(more.clone()));
    }
    if let Some(after) = message.escalated_after_ms {
        details.insert("escalated_after_ms".into(), json!(after));
    }
    let mut body = json!({
        "routing_key": routing_key.expose(),
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": truncate_chars(&rendered.title, MAX_SUMMARY),
            "source": source,
            "severity": severity(message),
            "timestamp": render::rfc3339(message.at_unix_ms),
            "custom_details": details,
        },
        "client": "Ballast",
    });
    if let Some(dash) = &message.dashboard_url {
        let alerts = format!("{}/alerts", dash.trim_end_matches('/'));
        body["client_url"] = Value::String(alerts.clone());
        body["links"] = json!([{"href": alerts, "text": "Ballast alerts"}]);
    }
    body
}

/// What the Events API answers: `{"status": "…", "message": "…", "errors": ["…"]}`.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

/// How the Events API's answer classifies (see the module's notes). `redact` hides the
/// routing key in whatever of the answer is quoted.
pub fn classify(
    result: Result<HttpResponse, HttpError>,
    redact: impl Fn(&str) -> String,
) -> Result<Delivered, SendError> {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Err(SendError::retry(format!("{KIND} receiver: {e}"))),
    };
    let words = match serde_json::from_slice::<Answer>(&resp.body) {
        Ok(a) if a.message.is_some() => {
            let mut w = a.message.unwrap_or_default();
            if !a.errors.is_empty() {
                w.push_str(": ");
                w.push_str(&a.errors.join("; "));
            }
            answer_word(w.as_bytes())
        }
        _ => answer_word(&resp.body),
    };
    let words = redact(&words);
    let quoted = if words.is_empty() {
        resp.status.to_string()
    } else {
        format!("{} {words}", resp.status)
    };
    match resp.status {
        200..=299 => Ok(Delivered { answer: quoted }),
        408 | 429 | 500..=599 => Err(SendError::Retry {
            reason: format!("{KIND} receiver: answered {quoted}"),
            retry_after: retry_after(&resp.headers),
        }),
        _ => Err(SendError::permanent(format!(
            "{KIND} receiver: refused with {quoted}"
        ))),
    }
}

/// Sends events to one PagerDuty integration.
pub struct PagerDutyNotifier {
    endpoint: Endpoint,
    routing_key: Secret,
    source: String,
    client: HttpClient,
}

impl fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifier")
            .field("endpoint", &self.endpoint)
            .field("routing_key", &self.routing_key)
            .field("source", &self.source)
            .finish()
    }
}

impl PagerDutyNotifier {
    pub fn new(config: PagerDutyConfig) -> Result<PagerDutyNotifier, ConfigError> {
        let routing_key = load_required(
            KIND,
            "routing_key",
            config.routing_key.as_ref(),
            config.routing_key_file.as_deref(),
            config.routing_key_env.as_deref(),
        )?;
        if routing_key.expose().trim().is_empty() {
            return Err(ConfigError::Invalid {
                kind: KIND,
                reason: "routing_key is empty".into(),
            });
        }
        let source = config
            .source
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SOURCE.to_string());
        let url = Secret::new(config.url.as_deref().unwrap_or(DEFAULT_URL));
        Ok(PagerDutyNotifier {
            endpoint: Endpoint::parse(KIND, "url", &url)?,
            routing_key,
            source,
            client: HttpClient::new().map_err(|e| ConfigError::Invalid {
                kind: KIND,
                reason: e.to_string(),
            })?,
        })
    }

    fn redact(&self, text: &str) -> String {
        let key = self.routing_key.expose();
        if key.len() >= 4 {
            text.replace(key, "[redacted]")
        } else {
            text.to_string()
        }
    }

    async fn post(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = json_body(KIND, &event(message, &self.routing_key, &self.source))?;
        let result = self.client.post_json(&self.endpoint, body).await;
        classify(result, |t| self.redact(t))
    }
}

impl Notifier for PagerDutyNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(self.post(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::Labels;
    use http::HeaderMap;

    fn message(status: MessageStatus, group_key: &str) -> Message {
        Message {
            group_key: group_key.into(),
            group_labels: Labels::new().with("alertname", "x"),
            status,
            severity: match status {
                MessageStatus::Firing => Some(Severity::Warning),
                MessageStatus::Resolved => None,
            },
            alerts: Vec::new(),
            dashboard_url: None,
            locale: crate::message::Locale::En,
            at_unix_ms: 0,
            route: 1,
            escalated_after_ms: None,
            template: None,
        }
    }

    #[test]
    fn one_group_one_dedup_key() {
        let firing = message(MessageStatus::Firing, "{alertname=\"x\"}");
        let resolved = message(MessageStatus::Resolved, "{alertname=\"x\"}");
        let other = message(MessageStatus::Firing, "{alertname=\"y\"}");
        assert_eq!(dedup_key(&firing), dedup_key(&resolved));
        assert_ne!(dedup_key(&firing), dedup_key(&other));
        assert!(dedup_key(&firing).starts_with("ballast-"));
        assert_eq!(dedup_key(&firing).len(), 8 + 64);
        assert_eq!(severity(&firing), "warning");
        assert_eq!(severity(&resolved), "info");
        let key = Secret::new("k");
        assert_eq!(event(&firing, &key, "s")["event_action"], "trigger");
        assert_eq!(
            event(&resolved, &key, "s"),
            json!({"routing_key": "k", "event_action": "resolve", "dedup_key": dedup_key(&resolved)})
        );
    }

    #[test]
    fn answers_classify() {
        let resp = |status: u16, body: &'static str| {
            Ok(HttpResponse {
                status,
                headers: HeaderMap::new(),
                body: bytes::Bytes::from_static(body.as_bytes()),
                truncated: false,
            })
        };
        let hide = |t: &str| t.replace("R0UTINGKEY", "[redacted]");
        assert_eq!(
            classify(
                resp(
                    202,
                    r#"{"status":"success","message":"Event processed","dedup_key":"d"}"#
                ),
                hide
            ),
            Ok(Delivered {
                answer: "202 Event processed".into()
            })
        );
        assert_eq!(
            classify(
                resp(
                    400,
                    r#"{"status":"invalid event","message":"Event object is invalid","errors":["routing_key R0UTINGKEY is unknown"]}"#
                ),
                hide
            ),
            Err(SendError::permanent(
                "pagerduty receiver: refused with 400 Event object is invalid: routing_key \
                 [redacted] is unknown"
            ))
        );
        assert!(classify(resp(429, ""), hide).unwrap_err().is_retryable());
        assert!(classify(resp(503, "x"), hide).unwrap_err().is_retryable());
    }
}

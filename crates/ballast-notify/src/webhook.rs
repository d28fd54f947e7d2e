//! The `webhook` receiver kind: a JSON POST with a documented schema, for any program that
//! wants Ballast's notifications (a ticket system, a pager bridge, a custom bot).
//!
//! Unlike the chat kinds it carries every alert of the group, not just the first ones, plus the
//! rendered `title` and `text` for receivers that only want to show something. When a signing
//! secret is set, `X-Ballast-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body
//! bytes with that secret, so the receiver can check that the post came from Ballast.
//!
//! Schema (version `"1"`):
//! ```json
//! {"version": "1", "status": "firing|resolved", "group_key": "…", "group_labels": {"…": "…"},
//!  "severity": "critical|warning|null", "title": "…", "text": "…",
//!  "dashboard_url": "…|null", "at": "2026-11-30T19:20:05Z",
//!  "alerts": [{"id": "…", "rule": "…", "labels": {}, "annotations": {},
//!              "state": "firing|resolved", "severity": "critical|warning|null",
//!              "value": 0.0, "threshold": 1.0, "since": "2026-11-30T19:20:05Z",
//!              "since_unix_ms": 1796066405000, "url": "…|null"}],
//!  "escalated_after_ms": 600000}
//! ```
//!
//! `escalated_after_ms` is present only on an escalation (a route's `escalate`): the alert was
//! critical and not acknowledged this long after it started.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::http::{classify, json_body, json_content_type, Endpoint, HttpClient};
use crate::message::{Message, MessageStatus};
use crate::notifier::{BoxFuture, Delivered, Notifier, SendError};
use crate::render::{self, DEFAULT_LISTED};
use crate::secret::{load_optional, load_required, ConfigError, Secret};

const KIND: &str = "webhook";

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-ballast-signature";

/// The schema's version, sent as `version`.
pub const SCHEMA_VERSION: &str = "1";

/// `[[receiver]] webhook = { … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST; one of `url`, `url_file`, `url_env`.
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    pub url_env: Option<String>,
    /// The HMAC key of `X-Ballast-Signature`; at most one of the three.
    pub signing_secret: Option<Secret>,
    pub signing_secret_file: Option<PathBuf>,
    pub signing_secret_env: Option<String>,
}

/// The body of a webhook post.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookPayload<'a> {
    pub version: &'static str,
    pub status: MessageStatus,
    pub group_key: &'a str,
    pub group_labels: &'a ballast_core::Labels,
    pub severity: Option<&'static str>,
    pub title: String,
    pub text: String,
    pub dashboard_url: Option<&'a str>,
    pub at: String,
    pub alerts: Vec<WebhookAlert<'a>>,
    /// Only on an escalation: how long the alert went unacknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalated_after_ms: Option<u64>,
}

/// One alert of a webhook post.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookAlert<'a> {
    pub id: &'a str,
    pub rule: &'a str,
    pub labels: &'a ballast_core::Labels,
    pub annotations: &'a BTreeMap<String, String>,
    pub state: &'static str,
    pub severity: Option<&'static str>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub since: String,
    pub since_unix_ms: u64,
    pub url: Option<String>,
}

/// Builds the payload of `message`: every alert, plus the rendered title and text.
pub fn payload(message: &Message) -> WebhookPayload<'_> {
    let rendered = render::render(message, DEFAULT_LISTED);
    WebhookPayload {
        version: SCHEMA_VERSION,
        status: message.status,
        group_key: &message.group_key,
        group_labels: &message.group_labels,
        severity: message.severity.map(|s| s.name()),
        title: rendered.title.clone(),
        text: rendered.plain_text(),
        dashboard_url: message.dashboard_url.as_deref(),
        at: render::rfc3339(message.at_unix_ms),
        alerts: message
            .alerts
            .iter()
            .map(|a| WebhookAlert {
                id: &a.id,
                rule: &a.rule,
                labels: &a.labels,
                annotations: &a.annotations,
                state: a.state.name(),
                severity: a.severity().map(|s| s.name()),
                value: a.value,
                threshold: a.threshold,
                since: render::rfc3339(a.since_unix_ms),
                since_unix_ms: a.since_unix_ms,
                url: message
                    .dashboard_url
                    .as_deref()
                    .map(|d| render::alert_url(d, &a.id)),
            })
            .collect(),
        escalated_after_ms: message.escalated_after_ms,
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Sends messages to one webhook.
pub struct WebhookNotifier {
    endpoint: Endpoint,
    signing_secret: Option<Secret>,
    client: HttpClient,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("endpoint", &self.endpoint)
            .field("signed", &self.signing_secret.is_some())
            .finish()
    }
}

impl WebhookNotifier {
    /// Loads the URL and the signing secret (reading files and variables now).
    pub fn new(config: WebhookConfig) -> Result<WebhookNotifier, ConfigError> {
        let url = load_required(
            KIND,
            "url",
            config.url.as_ref(),
            config.url_file.as_deref(),
            config.url_env.as_deref(),
        )?;
        let signing_secret = load_optional(
            KIND,
            "signing_secret",
            config.signing_secret.as_ref(),
            config.signing_secret_file.as_deref(),
            config.signing_secret_env.as_deref(),
        )?;
        Ok(WebhookNotifier {
            endpoint: Endpoint::parse(KIND, "url", &url)?,
            signing_secret,
            client: HttpClient::new().map_err(|e| ConfigError::Invalid {
                kind: KIND,
                reason: e.to_string(),
            })?,
        })
    }

    async fn post(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = json_body(KIND, &payload(message))?;
        let mut headers = vec![json_content_type()];
        if let Some(secret) = &self.signing_secret {
            let sig = signature(secret.expose().as_bytes(), &body);
            let value = HeaderValue::from_str(&sig).map_err(|_| {
                SendError::permanent(format!("{KIND} receiver: bad signature header"))
            })?;
            headers.push((HeaderName::from_static(SIGNATURE_HEADER), value));
        }
        classify(
            KIND,
            &self.endpoint,
            self.client.post(&self.endpoint, &headers, body).await,
        )
    }
}

impl Notifier for WebhookNotifier {
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

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn escalated_after_ms_only_on_an_escalation() {
        let mut m = Message {
            group_key: "g".into(),
            group_labels: ballast_core::Labels::new().with("alertname", "x"),
            status: MessageStatus::Firing,
            severity: Some(ballast_core::Severity::Critical),
            alerts: Vec::new(),
            dashboard_url: None,
            locale: crate::message::Locale::En,
            at_unix_ms: 0,
            route: 1,
            escalated_after_ms: None,
            template: None,
        };
        let plain = serde_json::to_value(payload(&m)).unwrap();
        assert!(plain.get("escalated_after_ms").is_none(), "{plain}");
        m.escalated_after_ms = Some(3_000);
        let escalated = serde_json::to_value(payload(&m)).unwrap();
        assert_eq!(escalated["escalated_after_ms"], 3_000);
        assert!(escalated["title"]
            .as_str()
            .unwrap()
            .ends_with(" — escalated: not acknowledged after 3s"));
    }

    #[test]
    fn config_rejects_unknown_keys_and_hides_secrets() {
        let e = toml::from_str::<WebhookConfig>("url = \"https://x/\"\nuri = \"y\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let c: WebhookConfig =
            toml::from_str("url = \"https://x/tok-sekret\"\nsigning_secret = \"key-sekret\"")
                .unwrap();
        assert!(!format!("{c:?}").contains("sekret"));
        let n = WebhookNotifier::new(c).unwrap();
        assert!(!format!("{n:?}").contains("sekret"));
    }
}

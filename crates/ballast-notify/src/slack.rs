//! The `slack` receiver kind: a Slack incoming webhook.
//!
//! The post has `text` (the notification fallback), `blocks` (a header with the title, one
//! section per alert written out, then the rest summed up per rule) and one attachment whose
//! `color` bar shows the severity (critical red `#d32f2f`, warning amber `#f9a825`, resolved
//! green `#2e7d32`). Slack's limits are kept: a header of 150 characters, sections of 3000, at
//! most 50 blocks. Slack answers `200 ok`; `429` with `Retry-After` (honoured), `5xx` are worth
//! retrying; other `4xx` carry an error word (`invalid_payload`, `channel_not_found`) and are
//! permanent.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{classify, json_body, Endpoint, HttpClient};
use crate::message::{Message, MessageStatus};
use crate::notifier::{BoxFuture, Delivered, Notifier, SendError};
use crate::render::{self, truncate_chars, DEFAULT_LISTED};
use crate::secret::{load_required, ConfigError, Secret};
use ballast_core::Severity;

const KIND: &str = "slack";

/// Slack's limits on a header block's text, a section's text and the number of blocks.
pub const MAX_HEADER: usize = 150;
pub const MAX_SECTION: usize = 3000;
pub const MAX_BLOCKS: usize = 50;
/// Slack truncates `text` beyond 40 000 characters; the fallback stays well under it.
pub const MAX_TEXT: usize = 4000;

pub const RED: &str = "#d32f2f";
pub const AMBER: &str = "#f9a825";
pub const GREEN: &str = "#2e7d32";

/// `[[receiver]] slack = { … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook's URL; one of `url`, `url_file`, `url_env`.
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    pub url_env: Option<String>,
    /// How many alerts are written out in full (default 20; at most 40 to fit the blocks).
    pub max_alerts: Option<usize>,
}

/// The colour of the message's attachment bar.
pub fn color(message: &Message) -> &'static str {
    match (message.status, message.severity) {
        (MessageStatus::Resolved, _) => GREEN,
        (MessageStatus::Firing, Some(Severity::Critical)) => RED,
        (MessageStatus::Firing, _) => AMBER,
    }
}

/// Escapes the three characters Slack's mrkdwn gives meaning to.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON Slack receives for `message`.
pub fn payload(message: &Message, max_alerts: usize) -> Value {
    let rendered = render::render(message, max_alerts.min(MAX_BLOCKS - 10));
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&rendered.title, MAX_HEADER), "emoji": true},
    })];
    for a in &rendered.alerts {
        let text = format!("*{}*\n{}", escape(&a.heading), escape(&a.body));
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate_chars(&text, MAX_SECTION)},
        }));
    }
    if let Some(more) = &rendered.more {
        let pieces = render::chunks(&escape(more), MAX_SECTION);
        let room = MAX_BLOCKS - blocks.len();
        let n = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            if i + 1 == room && n > room {
                blocks.push(json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": truncate_chars(&format!("{piece} …"), MAX_SECTION)},
                }));
                break;
            }
            blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": piece},
            }));
        }
    }
    json!({
        "text": truncate_chars(&rendered.plain_text(), MAX_TEXT),
        "blocks": blocks,
        "attachments": [{
            "color": color(message),
            "fallback": truncate_chars(&rendered.title, MAX_HEADER),
            "text": render::counts_line(message),
        }],
    })
}

/// Sends messages to one Slack incoming webhook.
pub struct SlackNotifier {
    endpoint: Endpoint,
    max_alerts: usize,
    client: HttpClient,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("endpoint", &self.endpoint)
            .field("max_alerts", &self.max_alerts)
            .finish()
    }
}

impl SlackNotifier {
    pub fn new(config: SlackConfig) -> Result<SlackNotifier, ConfigError> {
        let url = load_required(
            KIND,
            "url",
            config.url.as_ref(),
            config.url_file.as_deref(),
            config.url_env.as_deref(),
        )?;
        let max_alerts = config.max_alerts.unwrap_or(DEFAULT_LISTED);
        if max_alerts == 0 || max_alerts > MAX_BLOCKS - 10 {
            return Err(ConfigError::Invalid {
                kind: KIND,
                reason: format!("max_alerts must be between 1 and {}", MAX_BLOCKS - 10),
            });
        }
        Ok(SlackNotifier {
            endpoint: Endpoint::parse(KIND, "url", &url)?,
            max_alerts,
            client: HttpClient::new().map_err(|e| ConfigError::Invalid {
                kind: KIND,
                reason: e.to_string(),
            })?,
        })
    }

    async fn post(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = json_body(KIND, &payload(message, self.max_alerts))?;
        classify(
            KIND,
            &self.endpoint,
            self.client.post_json(&self.endpoint, body).await,
        )
    }
}

impl Notifier for SlackNotifier {
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
    fn chunks_keep_every_piece_and_the_limit() {
        let text = (0..500)
            .map(|i| format!("rule-{i} ×1"))
            .collect::<Vec<_>>()
            .join(", ");
        let parts = render::chunks(&text, 300);
        assert!(parts.iter().all(|p| p.chars().count() <= 300));
        assert_eq!(parts.concat(), text);
        assert_eq!(render::chunks("a, b", 3000), vec!["a, b".to_string()]);
    }

    #[test]
    fn escapes_mrkdwn() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}

//! The `dooray` receiver kind: a Dooray messenger incoming hook.
//!
//! Dooray takes Slack's older attachment shape: `botName`, an optional `botIconImage`, `text`
//! (the title here) and `attachments` of `{title, titleLink, text, color}`, one per alert
//! written out (its heading, a link to its dashboard page, its details, a colour by its state:
//! critical `red`, warning `orange`, resolved `green`) and one more summing up the rest per
//! rule. No official reference of the answers exists; they are classified like Slack's (2xx
//! delivered, 429/5xx retry, other 4xx permanent).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::http::{classify, json_body, Endpoint, HttpClient};
use crate::message::{Message, MessageStatus};
use crate::notifier::{BoxFuture, Delivered, Notifier, SendError};
use crate::render::{self, truncate_chars, AlertText, DEFAULT_LISTED};
use crate::secret::{load_required, ConfigError, Secret};
use ballast_core::Severity;

const KIND: &str = "dooray";

/// The bot's name when none is configured.
pub const DEFAULT_BOT_NAME: &str = "Ballast";

/// The longest text of one attachment.
pub const MAX_ATTACHMENT_TEXT: usize = 3000;

pub const RED: &str = "red";
pub const ORANGE: &str = "orange";
pub const GREEN: &str = "green";
pub const GRAY: &str = "gray";

/// `[[receiver]] dooray = { … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorayConfig {
    /// The incoming hook's URL; one of `url`, `url_file`, `url_env`.
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    pub url_env: Option<String>,
    /// The name the bot posts under (default `Ballast`).
    pub bot_name: Option<String>,
    /// The address of the bot's icon.
    pub bot_icon_image: Option<String>,
    /// How many alerts are written out in full (default 20, at most 100).
    pub max_alerts: Option<usize>,
}

/// The colour of one alert's attachment.
pub fn alert_color(alert: &AlertText) -> &'static str {
    match (alert.firing, alert.severity) {
        (false, _) => GREEN,
        (true, Some(Severity::Critical)) => RED,
        (true, _) => ORANGE,
    }
}

/// The JSON Dooray receives for `message`.
pub fn payload(
    message: &Message,
    bot_name: &str,
    bot_icon_image: Option<&str>,
    max_alerts: usize,
) -> Value {
    let rendered = render::render(message, max_alerts);
    let mut attachments = Vec::new();
    for a in &rendered.alerts {
        let mut att = Map::new();
        att.insert("title".into(), Value::String(a.heading.clone()));
        if let Some(link) = &a.alert_url {
            att.insert("titleLink".into(), Value::String(link.clone()));
        }
        att.insert(
            "text".into(),
            Value::String(truncate_chars(&a.body, MAX_ATTACHMENT_TEXT)),
        );
        att.insert("color".into(), Value::String(alert_color(a).into()));
        attachments.push(Value::Object(att));
    }
    if let Some(more) = &rendered.more {
        let color = match message.status {
            MessageStatus::Resolved => GREEN,
            MessageStatus::Firing => GRAY,
        };
        // Split to the attachment limit, so every alert of a storm is still named.
        for (i, piece) in render::chunks(more, MAX_ATTACHMENT_TEXT)
            .into_iter()
            .enumerate()
        {
            let mut att = Map::new();
            if i == 0 {
                att.insert(
                    "title".into(),
                    Value::String(render::more_heading(message.locale, rendered.rest)),
                );
            }
            att.insert("text".into(), Value::String(piece));
            att.insert("color".into(), Value::String(color.into()));
            attachments.push(Value::Object(att));
        }
    }
    let mut body = Map::new();
    body.insert("botName".into(), Value::String(bot_name.to_string()));
    if let Some(icon) = bot_icon_image {
        body.insert("botIconImage".into(), Value::String(icon.to_string()));
    }
    body.insert("text".into(), Value::String(rendered.title));
    body.insert("attachments".into(), Value::Array(attachments));
    Value::Object(body)
}

/// Sends messages to one Dooray incoming hook.
pub struct DoorayNotifier {
    endpoint: Endpoint,
    bot_name: String,
    bot_icon_image: Option<String>,
    max_alerts: usize,
    client: HttpClient,
}

impl fmt::Debug for DoorayNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoorayNotifier")
            .field("endpoint", &self.endpoint)
            .field("bot_name", &self.bot_name)
            .field("bot_icon_image", &self.bot_icon_image)
            .field("max_alerts", &self.max_alerts)
            .finish()
    }
}

impl DoorayNotifier {
    pub fn new(config: DoorayConfig) -> Result<DoorayNotifier, ConfigError> {
        let url = load_required(
            KIND,
            "url",
            config.url.as_ref(),
            config.url_file.as_deref(),
            config.url_env.as_deref(),
        )?;
        let max_alerts = config.max_alerts.unwrap_or(DEFAULT_LISTED);
        if max_alerts == 0 || max_alerts > 100 {
            return Err(ConfigError::Invalid {
                kind: KIND,
                reason: "max_alerts must be between 1 and 100".into(),
            });
        }
        let bot_name = config
            .bot_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BOT_NAME.to_string());
        Ok(DoorayNotifier {
            endpoint: Endpoint::parse(KIND, "url", &url)?,
            bot_name,
            bot_icon_image: config.bot_icon_image,
            max_alerts,
            client: HttpClient::new().map_err(|e| ConfigError::Invalid {
                kind: KIND,
                reason: e.to_string(),
            })?,
        })
    }

    async fn post(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = payload(
            message,
            &self.bot_name,
            self.bot_icon_image.as_deref(),
            self.max_alerts,
        );
        let body = json_body(KIND, &body)?;
        classify(
            KIND,
            &self.endpoint,
            self.client.post_json(&self.endpoint, body).await,
        )
    }
}

impl Notifier for DoorayNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(self.post(message))
    }
}

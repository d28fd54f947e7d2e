//! The gateway-side actions as data: `drain`, `enable`, `eject`, `route`, `shed`, and `webhook`.
//!
//! ```toml
//! do = [{ drain = { upstream = "app", server = "{{server}}" } }]
//! do = [{ eject = { upstream = "app", server = "{{server}}", for = "5m" } }]
//! do = [{ route = { route = "shop", to = "sorry" } }]        # or to = "<another upstream>"
//! do = [{ shed = { class = "low", share = "50%" } }]
//! do = [{ webhook = { url = "https://hooks.example.com/remedy" } }]
//! ```
//!
//! They are carried out by the binary, through the running gateway (its `apply` of
//! `ballast_core::Command`) or its outbound HTTP client, not by this crate: this crate has no
//! handle on the gateway, and the engines never depend on each other. Here they are parsed,
//! checked and rendered like the process-side kinds, so one `[[remedy]]` can mix both, and a
//! dry-run records them the same way.

use ballast_core::{Command, Duration, Ratio};
use serde::{Deserialize, Serialize};

use super::ActionError;

/// `drain`, `enable`, `eject`: one server of one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerAction {
    pub upstream: String,
    pub server: String,
    /// For `eject`: how long the server stays out (the upstream's ejection period if absent).
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// `route`: send a route to another upstream, or to its sorry page (`to = "sorry"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAction {
    pub route: String,
    pub to: String,
}

/// `shed`: raise a priority class's shed share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShedAction {
    pub class: String,
    pub share: Ratio,
}

/// `webhook`: POST the run's record to a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAction {
    pub url: String,
}

/// The priority classes a `shed` may name.
pub const CLASSES: &[&str] = &["critical", "high", "normal", "low"];

pub(crate) fn require(field: &'static str, value: &str) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    Ok(())
}

impl ServerAction {
    pub(crate) fn validate(&self, kind: &'static str) -> Result<(), ActionError> {
        require("upstream", &self.upstream)?;
        require("server", &self.server)?;
        if self.duration.is_some() && kind != "eject" {
            return Err(ActionError::Invalid {
                field: "for",
                reason: format!("only `eject` takes a duration, not `{kind}`"),
            });
        }
        Ok(())
    }
}

impl RouteAction {
    pub(crate) fn validate(&self) -> Result<(), ActionError> {
        require("route.route", &self.route)?;
        require("route.to", &self.to)
    }
}

impl ShedAction {
    pub(crate) fn validate(&self) -> Result<(), ActionError> {
        if !CLASSES.contains(&self.class.as_str()) {
            return Err(ActionError::Invalid {
                field: "shed.class",
                reason: format!("{:?} is not one of {}", self.class, CLASSES.join(", ")),
            });
        }
        Ok(())
    }
}

impl WebhookAction {
    pub(crate) fn validate(&self) -> Result<(), ActionError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ActionError::Invalid {
                field: "webhook.url",
                reason: format!("{:?} is not an http(s) URL", self.url),
            });
        }
        if self.url.contains("{{") {
            return Err(ActionError::Invalid {
                field: "webhook.url",
                reason: "may not hold a placeholder".into(),
            });
        }
        Ok(())
    }
}

/// The gateway [`Command`] a `drain` or `enable` is, for the binary to apply.
pub fn drain_command(a: &ServerAction) -> Command {
    Command::Drain {
        upstream: a.upstream.clone(),
        server: a.server.clone(),
    }
}

/// See [`drain_command`].
pub fn enable_command(a: &ServerAction) -> Command {
    Command::Enable {
        upstream: a.upstream.clone(),
        server: a.server.clone(),
    }
}

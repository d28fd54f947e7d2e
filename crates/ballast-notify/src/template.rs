//! Overridable texts: a message's title and each alert's heading, written by the operator with
//! `{{placeholders}}`, instead of the built-in English or Korean ones.
//!
//! ```toml
//! [alerting]
//! template = { title = "{{status}} {{group}} ({{count}}) {{escalation}}" }
//!
//! [[receiver]]
//! name = "ops-chat"
//! slack = { url_file = "/etc/ballast/slack.url" }
//! template = { alert = "{{severity}} {{rule}} on {{label.server}}: {{value}} > {{threshold}}" }
//! ```
//!
//! Why only these two: they are what a person reads first in a chat list or an inbox, and what
//! teams want in their own words (a service name first, an on-call tag); the body (where,
//! value, since, runbook, links) stays the renderer's, so every message still carries what the
//! issue requires. A receiver's `template` replaces `[alerting] template` field by field.
//!
//! Placeholders, checked when the config is loaded (a typo is refused, naming it):
//! - title: `status` (FIRING/RESOLVED in the locale), `count` (firing alerts), `severity`,
//!   `group` (the grouping labels' values), `escalation` (the escalation note, or nothing),
//!   `label.NAME` (a grouping label);
//! - alert: `state` (severity word, or resolved), `severity`, `rule`, `where` (its labels),
//!   `value`, `threshold`, `since` (UTC), `summary`, `runbook`, `label.NAME`,
//!   `annotation.NAME`.
//!
//! A placeholder without a value (no threshold, a label the alert lacks) becomes empty. The
//! result is text for a receiver, never for a shell.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `template = { title = "...", alert = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

pub const TITLE_FIELDS: [&str; 5] = ["status", "count", "severity", "group", "escalation"];
pub const ALERT_FIELDS: [&str; 9] = [
    "state",
    "severity",
    "rule",
    "where",
    "value",
    "threshold",
    "since",
    "summary",
    "runbook",
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("template.{field}: {{{{{name}}}}} is not a placeholder; use one of {known}")]
    Unknown {
        field: &'static str,
        name: String,
        known: String,
    },
    #[error("template.{field}: a `{{{{` is not closed by `}}}}`")]
    Unclosed { field: &'static str },
    #[error("template.{field} is empty")]
    Empty { field: &'static str },
}

impl Template {
    /// Checks every placeholder of both texts.
    pub fn validate(&self) -> Result<(), TemplateError> {
        check("title", self.title.as_deref(), &TITLE_FIELDS, &["label."])?;
        check(
            "alert",
            self.alert.as_deref(),
            &ALERT_FIELDS,
            &["label.", "annotation."],
        )
    }

    /// This template with `over`'s texts where it has them.
    pub fn overridden_by(&self, over: &Template) -> Template {
        Template {
            title: over.title.clone().or_else(|| self.title.clone()),
            alert: over.alert.clone().or_else(|| self.alert.clone()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.alert.is_none()
    }
}

fn check(
    field: &'static str,
    text: Option<&str>,
    names: &[&str],
    prefixes: &[&str],
) -> Result<(), TemplateError> {
    let Some(text) = text else {
        return Ok(());
    };
    if text.trim().is_empty() {
        return Err(TemplateError::Empty { field });
    }
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError::Unclosed { field });
        };
        let name = after[..end].trim();
        let known = names.contains(&name)
            || prefixes
                .iter()
                .any(|p| name.strip_prefix(p).is_some_and(|n| !n.is_empty()));
        if !known {
            let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            all.extend(prefixes.iter().map(|p| format!("{p}NAME")));
            return Err(TemplateError::Unknown {
                field,
                name: name.to_string(),
                known: all.join(", "),
            });
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// `text` with every `{{name}}` replaced by `value(name)` (empty when `None`), runs of spaces
/// left by empty values collapsed, and the ends trimmed.
pub fn expand(text: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push_str(&value(after[..end].trim()).unwrap_or_default());
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let mut collapsed = String::with_capacity(out.len());
    let mut last_space = false;
    for c in out.chars() {
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        collapsed.push(c);
    }
    collapsed.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked() {
        let ok = Template {
            title: Some("{{status}} {{ group }} {{label.service}}".into()),
            alert: Some("{{rule}} {{annotation.owner}} {{where}}".into()),
        };
        assert_eq!(ok.validate(), Ok(()));
        let typo = Template {
            title: Some("{{stauts}}".into()),
            alert: None,
        };
        let e = typo.validate().unwrap_err();
        assert!(
            e.to_string().contains("{{stauts}} is not a placeholder"),
            "{e}"
        );
        assert!(e.to_string().contains("status, count"), "{e}");
        let unclosed = Template {
            title: None,
            alert: Some("{{rule".into()),
        };
        assert_eq!(
            unclosed.validate(),
            Err(TemplateError::Unclosed { field: "alert" })
        );
        let label_only = Template {
            title: Some("{{label.}}".into()),
            alert: None,
        };
        assert!(label_only.validate().is_err());
    }

    #[test]
    fn expansion_fills_and_tidies() {
        let v = |n: &str| match n {
            "status" => Some("FIRING".to_string()),
            "group" => Some("shop".to_string()),
            _ => None,
        };
        assert_eq!(
            expand("{{status}}  {{missing}} {{group}} {{escalation}}", v),
            "FIRING shop"
        );
        assert_eq!(expand("no placeholders", v), "no placeholders");
        assert_eq!(expand("{{status", v), "{{status");
    }

    #[test]
    fn a_receivers_template_overrides_field_by_field() {
        let global = Template {
            title: Some("g {{group}}".into()),
            alert: Some("g {{rule}}".into()),
        };
        let own = Template {
            title: None,
            alert: Some("own {{rule}}".into()),
        };
        let t = global.overridden_by(&own);
        assert_eq!(t.title.as_deref(), Some("g {{group}}"));
        assert_eq!(t.alert.as_deref(), Some("own {{rule}}"));
    }
}

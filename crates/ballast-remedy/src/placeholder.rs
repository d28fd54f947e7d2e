//! `{{label}}` placeholders in the strings of a remediation (argv elements, paths, targets),
//! and the one function that fills them from an alert's labels.
//!
//! It exists because label values come from alerts, and alerts come from the network
//! (Alertmanager webhooks) as well as from Ballast's own rules: a value such as `x; rm -rf /`
//! must never reach a command. Three rules keep it out:
//!
//! - No shell, ever: a command is an argv (`Vec<String>`) given to the OS as it is, so a value
//!   lands in exactly one argument and `;`, `|`, `$()` mean nothing.
//! - A label value goes only where the config declared a placeholder for it: the template is
//!   parsed when the config is loaded, and only its `{{name}}`s are filled.
//! - A value is substituted only if it is non-empty, matches `^[A-Za-z0-9._:/-]+$` and holds no
//!   `..` (so a path built from a label cannot climb out of its directory). Anything else
//!   refuses the whole run with [`PlaceholderError::Unsafe`], naming the label and why; a
//!   placeholder whose label the alert lacks refuses it with [`PlaceholderError::Missing`].
//!
//! A template is checked at load ([`Template::parse`]): an unclosed `{{`, an empty name or a
//! name that is not a label name is a config error, not a run-time surprise.

use ballast_core::Labels;
use thiserror::Error;

/// The longest label value substituted, in bytes.
pub const MAX_VALUE_LEN: usize = 256;

/// Why a template could not be read (a config error) or filled (a refused run).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlaceholderError {
    #[error("{text:?}: a `{{{{` is not closed by `}}}}`")]
    Unclosed { text: String },
    #[error("{text:?}: {name:?} is not a label name (letters, digits and `_`, not starting with a digit)")]
    BadName { text: String, name: String },
    #[error("the alert has no label {label:?} for the placeholder {{{{{label}}}}}")]
    Missing { label: String },
    #[error("the value {value:?} of label {label:?} is refused: {reason}")]
    Unsafe {
        label: String,
        value: String,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Label(String),
}

/// A string with `{{label}}` placeholders, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; `{{ name }}` (with spaces) is accepted too.
    pub fn parse(text: &str) -> Result<Self, PlaceholderError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| PlaceholderError::Unclosed {
                text: text.to_string(),
            })?;
            let name = after[..close].trim();
            if !is_label_name(name) {
                return Err(PlaceholderError::BadName {
                    text: text.to_string(),
                    name: name.to_string(),
                });
            }
            parts.push(Part::Label(name.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether it has any placeholder.
    pub fn has_placeholders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Label(_)))
    }

    /// The labels it names, in order (repeats included).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Label(l) => Some(l.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills every placeholder from `labels`, or refuses (see the module doc).
    pub fn render(&self, labels: &Labels) -> Result<String, PlaceholderError> {
        let mut out = String::with_capacity(self.text.len());
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Label(name) => {
                    let value = labels.get(name).ok_or_else(|| PlaceholderError::Missing {
                        label: name.clone(),
                    })?;
                    check_value(name, value)?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

/// Parses then renders; for strings that are not kept as templates.
pub fn render(text: &str, labels: &Labels) -> Result<String, PlaceholderError> {
    Template::parse(text)?.render(labels)
}

/// Whether `value` may be substituted for `label`.
pub fn check_value(label: &str, value: &str) -> Result<(), PlaceholderError> {
    let refuse = |reason| {
        Err(PlaceholderError::Unsafe {
            label: label.to_string(),
            value: value.chars().take(MAX_VALUE_LEN).collect(),
            reason,
        })
    };
    if value.is_empty() {
        return refuse("it is empty");
    }
    if value.len() > MAX_VALUE_LEN {
        return refuse("it is longer than 256 bytes");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
    {
        return refuse("only letters, digits and . _ : / - are allowed");
    }
    if value.contains("..") {
        return refuse("`..` is not allowed");
    }
    Ok(())
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::new()
            .with("server", "10.0.0.1:8000")
            .with("port", "8000")
            .with("evil", "x; rm -rf /")
            .with("climb", "../../etc")
            .with("empty", "")
    }

    #[test]
    fn fills_declared_placeholders() {
        let t = Template::parse("app@{{port}}").unwrap();
        assert_eq!(t.render(&labels()).unwrap(), "app@8000");
        let t = Template::parse("{{ server }}/{{port}}-x").unwrap();
        assert_eq!(t.render(&labels()).unwrap(), "10.0.0.1:8000/8000-x");
        assert_eq!(t.labels().collect::<Vec<_>>(), ["server", "port"]);
        // Text without placeholders is left alone, whatever the labels hold.
        let t = Template::parse("systemctl").unwrap();
        assert!(!t.has_placeholders());
        assert_eq!(t.render(&labels()).unwrap(), "systemctl");
    }

    #[test]
    fn injection_is_refused_naming_the_label() {
        let e = render("restart-{{evil}}", &labels()).unwrap_err();
        assert_eq!(
            e,
            PlaceholderError::Unsafe {
                label: "evil".into(),
                value: "x; rm -rf /".into(),
                reason: "only letters, digits and . _ : / - are allowed",
            }
        );
        assert!(e.to_string().contains("\"evil\""), "{e}");
        for (label, value) in [
            ("a", "$(id)"),
            ("a", "`id`"),
            ("a", "a b"),
            ("a", "a\nb"),
            ("a", "ünï"),
            ("a", "a|b"),
        ] {
            let l = Labels::new().with(label, value);
            assert!(
                matches!(render("{{a}}", &l), Err(PlaceholderError::Unsafe { .. })),
                "{value:?}"
            );
        }
        assert!(matches!(
            render("/run/{{climb}}.pid", &labels()),
            Err(PlaceholderError::Unsafe { .. })
        ));
        assert!(matches!(
            render("{{empty}}", &labels()),
            Err(PlaceholderError::Unsafe { .. })
        ));
        let long = Labels::new().with("a", "a".repeat(MAX_VALUE_LEN + 1));
        assert!(matches!(
            render("{{a}}", &long),
            Err(PlaceholderError::Unsafe { .. })
        ));
    }

    #[test]
    fn missing_label_is_refused() {
        assert_eq!(
            render("{{nope}}", &labels()),
            Err(PlaceholderError::Missing {
                label: "nope".into()
            })
        );
    }

    #[test]
    fn bad_templates_are_config_errors() {
        assert!(matches!(
            Template::parse("a{{port"),
            Err(PlaceholderError::Unclosed { .. })
        ));
        for bad in ["{{}}", "{{1a}}", "{{a-b}}", "{{a b}}"] {
            assert!(
                matches!(Template::parse(bad), Err(PlaceholderError::BadName { .. })),
                "{bad}"
            );
        }
    }
}

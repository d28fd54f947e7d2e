//! `[[receiver]]`: a named destination made of one or more channels (webhook, Slack, Dooray,
//! email, Telegram, PagerDuty), and the registry that builds one [`Notifier`] per channel.
//!
//! ```toml
//! [[receiver]]
//! name = "web-oncall"
//! slack = { url_file = "/etc/ballast/slack.url" }
//! email = { to = ["web-ops@example.com"], from = "ballast@example.com",
//!           relays = ["smtp1.example.com:587", "smtp2.example.com:587"] }
//! locale = "ko"                                   # default: [alerting] locale
//! rate = { messages = 1, per = "1s", burst = 5 }  # per channel; this is the default
//! max_age = "1h"                                  # undelivered after this: given up
//! ```
//!
//! Why channels are delivered separately: a receiver with Slack and email must not re-post to
//! Slack because the mail relay was down. Each channel is its own *target*, named
//! `receiver/kind` (`web-oncall/slack`), with its own outbox rows, retries and rate limit; the
//! notification log shows targets.
//!
//! Building reads every secret (`url_file`, `password_env`...) and checks every address, so a
//! config naming a missing secret file is refused at load, with the receiver's name, never
//! with the secret.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ballast_core::Duration;
use serde::Deserialize;
use thiserror::Error;

use crate::backoff::{RateError, RateSpec, TokenBucket};
use crate::dooray::{DoorayConfig, DoorayNotifier};
use crate::email::{EmailConfig, EmailNotifier};
use crate::message::Locale;
use crate::notifier::Notifier;
use crate::outbox::DEFAULT_MAX_AGE_MS;
use crate::pagerduty::{PagerDutyConfig, PagerDutyNotifier};
use crate::slack::{SlackConfig, SlackNotifier};
use crate::telegram::{TelegramConfig, TelegramNotifier};
use crate::template::Template;
use crate::webhook::{WebhookConfig, WebhookNotifier};

/// One `[[receiver]]` table, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSpec {
    pub name: String,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub slack: Option<SlackConfig>,
    #[serde(default)]
    pub dooray: Option<DoorayConfig>,
    #[serde(default)]
    pub email: Option<EmailConfig>,
    #[serde(default)]
    pub telegram: Option<TelegramConfig>,
    #[serde(default)]
    pub pagerduty: Option<PagerDutyConfig>,
    #[serde(default)]
    pub locale: Option<Locale>,
    #[serde(default)]
    pub rate: Option<RateSpec>,
    #[serde(default)]
    pub max_age: Option<Duration>,
    /// Its own title and alert heading (`crate::template`), over `[alerting] template`.
    #[serde(default)]
    pub template: Option<Template>,
}

impl ReceiverSpec {
    /// Makes every secret file path relative to `base` (the config file's directory)
    /// absolute, so a reload from another working directory reads the same files.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        };
        if let Some(c) = &mut self.webhook {
            fix(&mut c.url_file);
            fix(&mut c.signing_secret_file);
        }
        if let Some(c) = &mut self.slack {
            fix(&mut c.url_file);
        }
        if let Some(c) = &mut self.dooray {
            fix(&mut c.url_file);
        }
        if let Some(c) = &mut self.email {
            fix(&mut c.password_file);
        }
        if let Some(c) = &mut self.telegram {
            fix(&mut c.bot_token_file);
        }
        if let Some(c) = &mut self.pagerduty {
            fix(&mut c.routing_key_file);
        }
    }
}

/// Why the receivers were refused. Each names the receiver; none shows a secret.
#[derive(Debug, Error)]
pub enum ReceiverError {
    #[error("receiver[{index}]: name is empty; every [[receiver]] needs a name")]
    NoName { index: usize },
    #[error("receiver {name:?}: the name may hold letters, digits, '.', '_' and '-' only")]
    BadName { name: String },
    #[error("receiver {name:?} is defined twice; names must be unique")]
    Duplicate { name: String },
    #[error(
        "receiver {name:?} has no channel; give at least one of webhook, slack, dooray, email, \
         telegram, pagerduty"
    )]
    NoChannel { name: String },
    #[error("receiver {name:?}: {source}")]
    Channel {
        name: String,
        source: crate::secret::ConfigError,
    },
    #[error("receiver {name:?}: {source}")]
    Email {
        name: String,
        source: crate::email::ConfigError,
    },
    #[error("receiver {name:?}: {source}")]
    Rate { name: String, source: RateError },
    #[error("receiver {name:?}: max_age must be more than 0")]
    ZeroMaxAge { name: String },
    #[error("receiver {name:?}: {source}")]
    Template {
        name: String,
        source: crate::template::TemplateError,
    },
}

/// One channel of a receiver: where delivery sends, with its own outbox rows and rate.
#[derive(Clone)]
pub struct Target {
    /// `receiver/kind`, as in the notification log.
    pub name: String,
    pub receiver: String,
    pub notifier: Arc<dyn Notifier>,
    pub locale: Locale,
    pub rate: RateSpec,
    pub max_age_ms: u64,
    /// The texts it overrides, if any.
    pub template: Option<Template>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("kind", &self.notifier.kind())
            .field("locale", &self.locale)
            .finish()
    }
}

/// Every configured receiver's targets, by receiver name.
#[derive(Debug, Clone, Default)]
pub struct Receivers {
    by_receiver: BTreeMap<String, Vec<Target>>,
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Receivers {
    /// Builds every receiver's notifiers, reading their secrets. `default_locale` and
    /// `default_template` are `[alerting] locale` and `template`.
    pub fn build(
        specs: &[ReceiverSpec],
        default_locale: Locale,
        default_template: &Template,
    ) -> Result<Self, ReceiverError> {
        let mut by_receiver = BTreeMap::new();
        for (index, spec) in specs.iter().enumerate() {
            let name = spec.name.trim().to_string();
            if name.is_empty() {
                return Err(ReceiverError::NoName { index });
            }
            if !valid_name(&name) {
                return Err(ReceiverError::BadName { name });
            }
            if by_receiver.contains_key(&name) {
                return Err(ReceiverError::Duplicate { name });
            }
            let rate = spec.rate.unwrap_or_default();
            TokenBucket::new(&rate, 0).map_err(|source| ReceiverError::Rate {
                name: name.clone(),
                source,
            })?;
            let max_age_ms = match spec.max_age {
                Some(d) if d.is_zero() => return Err(ReceiverError::ZeroMaxAge { name }),
                Some(d) => u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX),
                None => DEFAULT_MAX_AGE_MS,
            };
            let template =
                default_template.overridden_by(&spec.template.clone().unwrap_or_default());
            template
                .validate()
                .map_err(|source| ReceiverError::Template {
                    name: name.clone(),
                    source,
                })?;
            let template = (!template.is_empty()).then_some(template);
            let channel = |source| ReceiverError::Channel {
                name: name.clone(),
                source,
            };
            let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
            if let Some(c) = &spec.webhook {
                notifiers.push(Arc::new(WebhookNotifier::new(c.clone()).map_err(channel)?));
            }
            if let Some(c) = &spec.slack {
                notifiers.push(Arc::new(SlackNotifier::new(c.clone()).map_err(channel)?));
            }
            if let Some(c) = &spec.dooray {
                notifiers.push(Arc::new(DoorayNotifier::new(c.clone()).map_err(channel)?));
            }
            if let Some(c) = &spec.email {
                notifiers.push(Arc::new(EmailNotifier::new(c.clone()).map_err(
                    |source| ReceiverError::Email {
                        name: name.clone(),
                        source,
                    },
                )?));
            }
            if let Some(c) = &spec.telegram {
                notifiers.push(Arc::new(TelegramNotifier::new(c.clone()).map_err(channel)?));
            }
            if let Some(c) = &spec.pagerduty {
                notifiers.push(Arc::new(
                    PagerDutyNotifier::new(c.clone()).map_err(channel)?,
                ));
            }
            if notifiers.is_empty() {
                return Err(ReceiverError::NoChannel { name });
            }
            let targets = notifiers
                .into_iter()
                .map(|notifier| Target {
                    name: format!("{name}/{}", notifier.kind()),
                    receiver: name.clone(),
                    notifier,
                    locale: spec.locale.unwrap_or(default_locale),
                    rate,
                    max_age_ms,
                    template: template.clone(),
                })
                .collect();
            by_receiver.insert(name, targets);
        }
        Ok(Receivers { by_receiver })
    }

    /// The receivers' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_receiver.keys().map(String::as_str)
    }

    /// The targets of one receiver (empty when unknown).
    pub fn targets_of(&self, receiver: &str) -> &[Target] {
        self.by_receiver.get(receiver).map_or(&[], Vec::as_slice)
    }

    /// Every target, by its name.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.by_receiver.values().flatten()
    }

    /// The target named `receiver/kind`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> Vec<ReceiverSpec> {
        #[derive(Deserialize)]
        struct F {
            receiver: Vec<ReceiverSpec>,
        }
        toml::from_str::<F>(text).unwrap().receiver
    }

    #[test]
    fn each_channel_is_a_target() {
        let r = Receivers::build(
            &specs(
                r#"
                [[receiver]]
                name = "web-oncall"
                slack = { url = "http://127.0.0.1:9/hook" }
                webhook = { url = "http://127.0.0.1:9/w" }
                locale = "ko"
                [[receiver]]
                name = "ops"
                dooray = { url = "http://127.0.0.1:9/d" }
                "#,
            ),
            Locale::En,
            &Template::default(),
        )
        .unwrap();
        let names: Vec<&str> = r.targets().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["ops/dooray", "web-oncall/webhook", "web-oncall/slack"]
        );
        assert_eq!(r.targets_of("web-oncall")[0].locale, Locale::Ko);
        assert_eq!(r.targets_of("ops")[0].locale, Locale::En);
        assert!(r.target("ops/dooray").is_some());
        assert!(r.targets_of("nobody").is_empty());
    }

    #[test]
    fn refusals_name_the_receiver_not_the_secret() {
        let cases = [
            ("name = \"a\"", "has no channel"),
            (
                "name = \"a\"\nslack = { url = \"http://x/T/secret-token\" }\n[[receiver]]\nname = \"a\"\nslack = { url = \"http://x/y\" }",
                "defined twice",
            ),
            ("name = \"a b\"\nslack = { url = \"http://x/y\" }", "letters, digits"),
            (
                "name = \"a\"\nslack = { url_file = \"/nonexistent/ballast/slack.url\" }",
                "/nonexistent/ballast/slack.url",
            ),
            (
                "name = \"a\"\nslack = { url = \"http://x/y\" }\nrate = { messages = 0, per = \"1s\", burst = 1 }",
                "messages must be at least 1",
            ),
            (
                "name = \"a\"\nslack = { url = \"ftp://x/T/secret-token\" }",
                "receiver \"a\"",
            ),
        ];
        for (body, want) in cases {
            let e = Receivers::build(
                &specs(&format!("[[receiver]]\n{body}")),
                Locale::En,
                &Template::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
            assert!(!e.contains("secret-token"), "{e:?} shows the secret");
        }
    }

    #[test]
    fn telegram_and_pagerduty_are_channels_with_their_secret_files() {
        let mut s = specs(
            r#"
            [[receiver]]
            name = "pager"
            telegram = { bot_token = "123:abc", chat_id = "-1001", api_url = "http://127.0.0.1:9" }
            pagerduty = { routing_key_file = "pd.key" }
            "#,
        );
        s[0].resolve_paths(Path::new("/etc/ballast"));
        assert_eq!(
            s[0].pagerduty.as_ref().unwrap().routing_key_file.as_deref(),
            Some(Path::new("/etc/ballast/pd.key"))
        );
        s[0].pagerduty = Some(toml::from_str("routing_key = \"k\"").unwrap());
        let r = Receivers::build(&s, Locale::En, &Template::default()).unwrap();
        let names: Vec<&str> = r.targets().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["pager/telegram", "pager/pagerduty"]);
        let e = Receivers::build(
            &specs("[[receiver]]\nname = \"a\""),
            Locale::En,
            &Template::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("email, telegram, pagerduty"), "{e}");
    }

    #[test]
    fn relative_secret_files_follow_the_config() {
        let mut s = specs(
            "[[receiver]]\nname = \"a\"\nslack = { url_file = \"slack.url\" }\nemail = { to = [\"a@b.c\"], from = \"b@b.c\", relays = [\"127.0.0.1:25\"], password_file = \"/abs/pw\" }",
        );
        s[0].resolve_paths(Path::new("/etc/ballast"));
        assert_eq!(
            s[0].slack.as_ref().unwrap().url_file.as_deref(),
            Some(Path::new("/etc/ballast/slack.url"))
        );
        assert_eq!(
            s[0].email.as_ref().unwrap().password_file.as_deref(),
            Some(Path::new("/abs/pw"))
        );
    }
}

//! The email receiver (`kind = "email"`): SMTP through lettre, over a list of relays.
//!
//! Mass mail is an operations problem: a site runs a pool of SMTP relays and switches to
//! another when one is blocked or down. So the receiver takes `relays = [...]` and tries them
//! in order for every message: a relay that refuses the connection, times out or answers a
//! transient `4xx` hands the message to the next. Only when every relay refused it for good
//! (`5xx`) is the failure permanent; otherwise delivery retries later. The password is read
//! once (inline, from a file or from the environment), never logged, and never part of an
//! error or a `Debug` output. Plain SMTP (`tls = "none"`) is only allowed to loopback relays,
//! where a local MTA takes over.
//!
//! ```toml
//! email = { to = ["web-ops@example.com"], from = "ballast@example.com",
//!           relays = ["smtp1.example.com:587", "smtp2.example.com:587"],
//!           username = "ballast", password_file = "/etc/ballast/smtp.pass" }
//! ```

mod relay;
mod render;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use ballast_core::{sha256_hex, Duration};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use thiserror::Error;

use crate::message::Message;
use crate::notifier::{BoxFuture, Delivered, Notifier, SendError};
use crate::secret::{load_optional, Secret};

pub use relay::Relay;

/// The receiver kind's name in `[[receiver]]`.
pub const KIND: &str = "email";

/// How the connection to a relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connect, then `STARTTLS` (required; a relay that does not offer it fails).
    /// The default port is 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS). The default port is 465.
    Implicit,
    /// No encryption; only to loopback relays. The default port is 25.
    None,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The `email = { ... }` table of a receiver, as written.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients (`"ops@example.com"` or `"Ops <ops@example.com>"`).
    pub to: Vec<String>,
    /// The sender.
    pub from: String,
    /// `host:port` of each relay, tried in order for every message.
    pub relays: Vec<String>,
    #[serde(default)]
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    /// The password inline; prefer `password_file` or `password_env`.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (a trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// How long one relay may take for the whole exchange before the next is tried.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("relays", &self.relays)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("password_env", &self.password_env)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why an email receiver's settings were refused. No variant holds the password.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("email: `to` needs at least one recipient")]
    NoRecipients,
    #[error("email: `relays` needs at least one `host:port`")]
    NoRelays,
    #[error("email: `{field}` has `{value}`, which is not an email address ({reason})")]
    BadAddress {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("email: relay `{relay}` is not `host:port` ({reason})")]
    BadRelay { relay: String, reason: String },
    #[error(
        "email: `tls = \"none\"` sends the password and the alerts in clear text, so it is only \
         allowed to loopback relays (127.0.0.1, ::1, localhost); `{relay}` is not one: use \
         `tls = \"starttls\"` or `\"implicit\"`"
    )]
    PlainNotLoopback { relay: String },
    #[error("email: a password needs a `username`")]
    PasswordWithoutUsername,
    #[error("email: `username` needs a password (`password`, `password_file` or `password_env`)")]
    UsernameWithoutPassword,
    /// Reading the password (two sources given, an unreadable file, an unset variable, an
    /// empty value), as every receiver kind's secrets are read.
    #[error("email: {0}")]
    Password(crate::secret::ConfigError),
    #[error("email: `timeout` must be more than zero")]
    ZeroTimeout,
    #[error("email: TLS setup for `{relay}` failed: {reason}")]
    Tls { relay: String, reason: String },
}

/// One relay with its ready transport.
struct Route {
    relay: Relay,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// Sends messages by email through the first relay that takes them.
pub struct EmailNotifier {
    from: Mailbox,
    to: Vec<Mailbox>,
    routes: Vec<Route>,
    tls: TlsMode,
    timeout: std::time::Duration,
    username: Option<String>,
    /// Kept only to scrub it out of relay answers, in case a server echoes it.
    password: Option<Secret>,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let relays: Vec<String> = self.routes.iter().map(|r| r.relay.to_string()).collect();
        f.debug_struct("EmailNotifier")
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            )
            .field("relays", &relays)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, ConfigError> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| ConfigError::BadAddress {
            field,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

fn resolve_password(config: &EmailConfig) -> Result<Option<Secret>, ConfigError> {
    let inline = config.password.as_ref().map(|p| Secret::new(p.clone()));
    let password = load_optional(
        KIND,
        "password",
        inline.as_ref(),
        config.password_file.as_deref(),
        config.password_env.as_deref(),
    )
    .map_err(ConfigError::Password)?;
    if password.as_ref().is_some_and(|p| p.expose().is_empty()) {
        return Err(ConfigError::Password(crate::secret::ConfigError::Invalid {
            kind: KIND,
            reason: "the password is empty".to_string(),
        }));
    }
    match (&password, &config.username) {
        (Some(_), None) => Err(ConfigError::PasswordWithoutUsername),
        (None, Some(_)) => Err(ConfigError::UsernameWithoutPassword),
        _ => Ok(password),
    }
}

impl EmailNotifier {
    /// Checks the settings, reads the password and prepares one transport per relay. Nothing
    /// connects yet.
    pub fn new(config: EmailConfig) -> Result<Self, ConfigError> {
        if config.to.is_empty() {
            return Err(ConfigError::NoRecipients);
        }
        if config.relays.is_empty() {
            return Err(ConfigError::NoRelays);
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let from = mailbox("from", &config.from)?;
        let to = config
            .to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<Vec<_>, _>>()?;
        let password = resolve_password(&config)?;
        let timeout = config.timeout.get();
        let mut routes = Vec::with_capacity(config.relays.len());
        for text in &config.relays {
            let relay = Relay::parse(text, config.tls.default_port()).map_err(|reason| {
                ConfigError::BadRelay {
                    relay: text.clone(),
                    reason,
                }
            })?;
            if config.tls == TlsMode::None && !relay.is_loopback() {
                return Err(ConfigError::PlainNotLoopback {
                    relay: relay.to_string(),
                });
            }
            let tls = match config.tls {
                TlsMode::None => Tls::None,
                mode => {
                    let params =
                        TlsParameters::new(relay.host.clone()).map_err(|e| ConfigError::Tls {
                            relay: relay.to_string(),
                            reason: e.to_string(),
                        })?;
                    if mode == TlsMode::Implicit {
                        Tls::Wrapper(params)
                    } else {
                        Tls::Required(params)
                    }
                }
            };
            let mut builder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.host.clone())
                    .port(relay.port)
                    .tls(tls)
                    .timeout(Some(timeout));
            if let (Some(user), Some(pass)) = (&config.username, &password) {
                builder =
                    builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
            }
            routes.push(Route {
                relay,
                transport: builder.build(),
            });
        }
        Ok(EmailNotifier {
            from,
            to,
            routes,
            tls: config.tls,
            timeout,
            username: config.username,
            password,
        })
    }

    /// The relays in the order they are tried.
    pub fn relays(&self) -> impl Iterator<Item = &Relay> {
        self.routes.iter().map(|r| &r.relay)
    }

    fn build(&self, message: &Message) -> Result<lettre::Message, SendError> {
        // Every message of one group refers to the same (never sent) anchor id, so mail
        // clients thread a group's firing and resolved messages together.
        static SENT: AtomicU64 = AtomicU64::new(0);
        let domain = self.from.email.domain();
        let group = sha256_hex(&message.group_key);
        let unique = sha256_hex(&format!(
            "{}|{}|{}|{}|{:?}",
            message.group_key,
            message.at_unix_ms,
            std::process::id(),
            SENT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now(),
        ));
        let anchor = format!("<group.{}@{domain}>", &group[..24]);
        let mut builder = lettre::Message::builder()
            .message_id(Some(format!("<{}@{domain}>", &unique[..32])))
            .in_reply_to(anchor.clone())
            .references(anchor)
            .from(self.from.clone())
            .subject(render::subject(message))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(render::body(message))
            .map_err(|e| SendError::permanent(format!("email: cannot build the message: {e}")))
    }

    /// Removes the password from text that came from a relay, in case a server echoed it.
    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) if !p.expose().is_empty() && text.contains(p.expose()) => {
                text.replace(p.expose(), "<redacted>")
            }
            _ => text,
        }
    }

    async fn send_email(&self, message: &Message) -> Result<Delivered, SendError> {
        let email = self.build(message)?;
        let mut failures = Vec::with_capacity(self.routes.len());
        let mut permanent = 0usize;
        for route in &self.routes {
            let attempt = tokio::time::timeout(self.timeout, route.transport.send(email.clone()));
            let failure = match attempt.await {
                Ok(Ok(response)) => {
                    let line = response.first_line().unwrap_or("").to_string();
                    let answer =
                        self.scrub(format!("{} {} {}", route.relay, response.code(), line));
                    return Ok(Delivered {
                        answer: answer.trim_end().to_string(),
                    });
                }
                Ok(Err(e)) => {
                    if e.is_permanent() {
                        permanent += 1;
                    }
                    self.scrub(format!("{}: {}", route.relay, describe(&e)))
                }
                Err(_) => format!(
                    "{}: no answer within {}",
                    route.relay,
                    Duration::new(self.timeout)
                ),
            };
            tracing::warn!(kind = KIND, failure = %failure, "email relay failed; trying the next, if any");
            failures.push(failure);
        }
        let reason = format!(
            "email: no relay took the message (tried {}): {}",
            self.routes.len(),
            failures.join("; ")
        );
        if permanent == self.routes.len() {
            Err(SendError::permanent(reason))
        } else {
            Err(SendError::retry(reason))
        }
    }
}

/// A relay failure in a few words, classified the way the failover treats it.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let io_kind = {
        let mut source = std::error::Error::source(e);
        let mut kind = None;
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                kind = Some(io.kind());
                break;
            }
            source = err.source();
        }
        kind
    };
    let kind = if e.is_permanent() {
        "refused the message"
    } else if e.is_transient() {
        "deferred the message"
    } else if e.is_timeout() {
        "timed out"
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        "refused the connection"
    } else if e.is_tls() {
        "TLS failed"
    } else {
        "failed"
    };
    format!("{kind} ({e})")
}

impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(self.send_email(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<EmailConfig, String> {
        let text = format!(
            "to = [\"ops@example.com\"]\nfrom = \"Ballast <ballast@example.com>\"\n{extra}"
        );
        serde_json::from_value::<EmailConfig>(toml_to_json(&text)).map_err(|e| e.to_string())
    }

    /// The crate has no TOML dependency; tests write the few keys they need as JSON instead.
    fn toml_to_json(text: &str) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').expect("key = value");
            map.insert(
                k.trim().to_string(),
                serde_json::from_str(v.trim()).expect("a JSON value"),
            );
        }
        serde_json::Value::Object(map)
    }

    #[test]
    fn defaults() {
        let c = config("relays = [\"smtp.example.com\"]").unwrap();
        assert_eq!(c.tls, TlsMode::Starttls);
        assert_eq!(c.timeout, Duration::from_secs(10));
        let n = EmailNotifier::new(c).unwrap();
        assert_eq!(
            n.relays().next().unwrap().to_string(),
            "smtp.example.com:587"
        );
        assert_eq!(n.kind(), "email");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = config("relays = [\"a:25\"]\nrelay = \"a:25\"").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        let c =
            config("relays = [\"127.0.0.1:25\", \"smtp.example.com:25\"]\ntls = \"none\"").unwrap();
        let err = EmailNotifier::new(c).unwrap_err().to_string();
        assert!(
            err.contains("smtp.example.com:25") && err.contains("loopback"),
            "{err}"
        );
        let c = config("relays = [\"127.0.0.1:2525\", \"[::1]\"]\ntls = \"none\"").unwrap();
        assert!(EmailNotifier::new(c).is_ok());
    }

    #[test]
    fn refusals_name_the_fix() {
        let cases = [
            ("relays = []", "at least one"),
            ("relays = [\"a:x\"]", "not `host:port`"),
            ("relays = [\"a:25\"]\ntimeout = \"0s\"", "more than zero"),
            ("relays = [\"a:25\"]\npassword = \"pw\"", "needs a `username`"),
            ("relays = [\"a:25\"]\nusername = \"u\"", "needs a password"),
            (
                "relays = [\"a:25\"]\nusername = \"u\"\npassword = \"pw\"\npassword_env = \"X\"",
                "only one",
            ),
            (
                "relays = [\"a:25\"]\nusername = \"u\"\npassword_env = \"BALLAST_TEST_SURELY_UNSET\"",
                "BALLAST_TEST_SURELY_UNSET",
            ),
            (
                "relays = [\"a:25\"]\nusername = \"u\"\npassword_file = \"/nonexistent/pass\"",
                "/nonexistent/pass",
            ),
        ];
        for (extra, want) in cases {
            let err = EmailNotifier::new(config(extra).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
        let mut c = config("relays = [\"a:25\"]").unwrap();
        c.to = vec!["not an address".into()];
        let err = EmailNotifier::new(c).unwrap_err().to_string();
        assert!(err.contains("not an email address"), "{err}");
    }

    #[test]
    fn password_file_drops_the_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("ballast-email-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pass");
        std::fs::write(&path, "s3cret-from-file\n").unwrap();
        let mut c = config("relays = [\"a:25\"]\nusername = \"u\"").unwrap();
        c.password_file = Some(path);
        let n = EmailNotifier::new(c).unwrap();
        assert_eq!(n.password.as_ref().unwrap().expose(), "s3cret-from-file");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn debug_redacts_the_password() {
        let c =
            config("relays = [\"a:25\"]\nusername = \"u\"\npassword = \"hunter2-xyz\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2-xyz"));
        let n = EmailNotifier::new(c).unwrap();
        let shown = format!("{n:?}");
        assert!(
            !shown.contains("hunter2-xyz") && shown.contains("[redacted]"),
            "{shown}"
        );
        assert_eq!(n.scrub("echo hunter2-xyz".into()), "echo <redacted>");
    }
}

//! The actions a remediation can take, as values, and the one exhaustive [`apply`].
//!
//! Why one enum, not a trait object per kind: an action is data first. The same value is
//! written in `[[remedy]] do = [...]`, rendered with an alert's labels, recorded on the run (and
//! later the incident timeline), shown by the API, and carried out. `apply` matches every kind,
//! so adding one is a compile error until it is handled. Each kind has its own module with its
//! spec, its implementation and its tests:
//!
//! | kind | module | carried out by |
//! |---|---|---|
//! | `exec` | `exec.rs` | here: a command, no shell, timeout, captured output |
//! | `restart` | `restart.rs` | here: a service-manager command, or a signal to a pid file |
//! | `clean` | `clean.rs` | here: old files under a root, never across a symlink |
//! | `drain`, `enable`, `eject`, `route`, `shed`, `webhook` | `gateway.rs` | the binary, through the gateway: `apply` hands them back as [`Outcome::ForGateway`] |
//!
//! Every string field may hold `{{label}}` placeholders (except where a kind forbids them:
//! a program, a clean root, a webhook URL); [`Action::render`] fills them or refuses the run.

pub mod clean;
mod dirfd;
pub mod exec;
pub mod gateway;
pub mod restart;

use ballast_core::Labels;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::placeholder::{PlaceholderError, Template};

pub use clean::{CleanReport, CleanSpec};
pub use exec::{ExecReport, ExecSpec};
pub use gateway::{RouteAction, ServerAction, ShedAction, WebhookAction};
pub use restart::{RestartReport, RestartSpec, SignalReport};

/// One action, as written in `do = [...]` (`{ exec = { ... } }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Exec(ExecSpec),
    Restart(RestartSpec),
    Clean(CleanSpec),
    Drain(ServerAction),
    Enable(ServerAction),
    Eject(ServerAction),
    Route(RouteAction),
    Shed(ShedAction),
    Webhook(WebhookAction),
}

/// Why an action is not valid (at load) or could not be carried out (at run time).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ActionError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    #[error("{program} could not be started: {reason}")]
    Spawn { program: String, reason: String },
    #[error("pid file {path}: {reason}")]
    PidFile { path: String, reason: String },
    #[error("{what}: {reason}")]
    Io { what: String, reason: String },
}

/// What carrying out an action did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Exec(ExecReport),
    /// An `exec` in dry-run: what would have run.
    WouldExec {
        argv: Vec<String>,
    },
    Restart(RestartReport),
    Clean(CleanReport),
    /// A gateway-side kind, rendered, for the binary to apply (or record, in dry-run).
    ForGateway {
        action: Action,
    },
}

impl Outcome {
    /// Whether the action succeeded (a dry-run, or a hand-back to the gateway, is not a failure).
    pub fn ok(&self) -> bool {
        match self {
            Outcome::Exec(r) | Outcome::Restart(RestartReport::Command(r)) => r.ok(),
            Outcome::Clean(r) => r.ok(),
            Outcome::WouldExec { .. }
            | Outcome::Restart(RestartReport::WouldRun { .. } | RestartReport::Signal(_))
            | Outcome::ForGateway { .. } => true,
        }
    }

    /// A few lines for people: what ran and what it printed.
    pub fn summary(&self) -> String {
        let exec = |r: &ExecReport| {
            let status = match (r.timed_out, r.exit_code) {
                (true, _) => "timed out".to_string(),
                (false, Some(c)) => format!("exit {c}"),
                (false, None) => "killed by a signal".to_string(),
            };
            let mut s = format!("{}: {status}", r.argv.join(" "));
            for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                if !text.is_empty() {
                    s.push_str(&format!("\n{name}: {text}"));
                }
            }
            s
        };
        match self {
            Outcome::Exec(r) | Outcome::Restart(RestartReport::Command(r)) => exec(r),
            Outcome::WouldExec { argv } | Outcome::Restart(RestartReport::WouldRun { argv }) => {
                format!("would run: {}", argv.join(" "))
            }
            Outcome::Restart(RestartReport::Signal(s)) => format!(
                "{} SIG{} to pid {} (from {})",
                if s.sent { "sent" } else { "would send" },
                s.signal,
                s.pid,
                s.pid_file
            ),
            Outcome::Clean(r) => {
                let mut s = format!(
                    "{} {} files ({} bytes) under {}",
                    if r.dry_run { "would delete" } else { "deleted" },
                    r.count,
                    r.bytes,
                    r.root
                );
                for f in &r.files {
                    s.push_str(&format!("\n{f}"));
                }
                for e in &r.errors {
                    s.push_str(&format!("\nerror: {e}"));
                }
                s
            }
            Outcome::ForGateway { action } => format!("{} (by the gateway)", action.kind()),
        }
    }
}

impl Action {
    /// The kind's name, for records and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Exec(_) => "exec",
            Action::Restart(_) => "restart",
            Action::Clean(_) => "clean",
            Action::Drain(_) => "drain",
            Action::Enable(_) => "enable",
            Action::Eject(_) => "eject",
            Action::Route(_) => "route",
            Action::Shed(_) => "shed",
            Action::Webhook(_) => "webhook",
        }
    }

    /// Whether the binary carries it out through the gateway.
    pub fn is_gateway_side(&self) -> bool {
        !matches!(
            self,
            Action::Exec(_) | Action::Restart(_) | Action::Clean(_)
        )
    }

    /// Every string that may hold placeholders.
    fn strings_mut(&mut self) -> Vec<&mut String> {
        match self {
            Action::Exec(e) => e.argv.iter_mut().collect(),
            Action::Restart(r) => r
                .command
                .iter_mut()
                .flatten()
                .chain(r.pid_file.as_mut())
                .collect(),
            Action::Clean(c) => vec![&mut c.glob],
            Action::Drain(s) | Action::Enable(s) | Action::Eject(s) => {
                vec![&mut s.upstream, &mut s.server]
            }
            Action::Route(r) => vec![&mut r.route, &mut r.to],
            Action::Shed(s) => vec![&mut s.class],
            Action::Webhook(_) => vec![],
        }
    }

    /// Checks the action at config load: its placeholders parse and its kind's rules hold.
    pub fn validate(&self) -> Result<(), ActionError> {
        let mut copy = self.clone();
        for s in copy.strings_mut() {
            Template::parse(s)?;
        }
        match self {
            Action::Exec(e) => exec::validate_argv(&e.argv, "exec.argv").and_then(|()| {
                if e.timeout.is_some_and(|t| t.is_zero()) {
                    return Err(ActionError::Invalid {
                        field: "exec.timeout",
                        reason: "must be more than 0".into(),
                    });
                }
                Ok(())
            }),
            Action::Restart(r) => r.validate(),
            Action::Clean(c) => c.validate(),
            Action::Drain(s) | Action::Enable(s) | Action::Eject(s) => s.validate(self.kind()),
            Action::Route(r) => r.validate(),
            Action::Shed(s) => s.validate(),
            Action::Webhook(w) => w.validate(),
        }
    }

    /// The action with every placeholder filled from `labels`, or the refusal.
    pub fn render(&self, labels: &Labels) -> Result<Action, PlaceholderError> {
        let mut out = self.clone();
        for s in out.strings_mut() {
            *s = Template::parse(s)?.render(labels)?;
        }
        Ok(out)
    }
}

/// Carries out one (rendered) action; in dry-run, describes what it would do and changes
/// nothing. Gateway-side kinds come back as [`Outcome::ForGateway`].
pub async fn apply(action: &Action, dry_run: bool) -> Result<Outcome, ActionError> {
    match action {
        Action::Exec(e) => {
            if dry_run {
                Ok(Outcome::WouldExec {
                    argv: e.argv.clone(),
                })
            } else {
                exec::run(&e.argv, e.limits()).await.map(Outcome::Exec)
            }
        }
        Action::Restart(r) => r.apply(dry_run).await.map(Outcome::Restart),
        Action::Clean(c) => c.apply(dry_run).await.map(Outcome::Clean),
        Action::Drain(_)
        | Action::Enable(_)
        | Action::Eject(_)
        | Action::Route(_)
        | Action::Shed(_)
        | Action::Webhook(_) => Ok(Outcome::ForGateway {
            action: action.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;

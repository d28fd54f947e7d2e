//! [`Gateway::apply`]: the one place where a [`Command`] from the admin API, the CLI or a
//! remediation changes the running gateway.
//!
//! The match is exhaustive, so a new command cannot be added without deciding here how it is
//! carried out, what it reports and which event records it. Every change it makes is emitted as
//! an [`Event`] naming who asked ([`Origin`]); a refused command changes nothing.

use std::sync::atomic::Ordering::Relaxed;

use ballast_core::{
    sha256_hex, Command, CommandError, Event, Issued, Origin, ReloadReport, Report,
};

use crate::cache::PurgeError;
use crate::gateway::{Gateway, ServerLookupError};

/// A reload from the config source together with the text it read, so that the caller can
/// keep a history of every config offered (applied or refused) without reading the file a
/// second time, which could race with an operator's next edit.
#[derive(Debug)]
pub struct ReloadAttempt {
    /// The text read from the source; `None` when it could not be read at all.
    pub text: Option<String>,
    /// What became of it, exactly as [`Gateway::apply`] reports a reload.
    pub result: Result<ReloadReport, CommandError>,
}

impl From<ServerLookupError> for CommandError {
    fn from(e: ServerLookupError) -> Self {
        CommandError::NotFound(e.to_string())
    }
}

impl From<PurgeError> for CommandError {
    fn from(e: PurgeError) -> Self {
        CommandError::NotFound(e.to_string())
    }
}

impl Gateway {
    /// Carries out one command. On `Err` nothing changed.
    pub async fn apply(&self, issued: Issued) -> Result<Report, CommandError> {
        let Issued { command, by } = issued;
        match command {
            Command::Drain { upstream, server } => {
                let changed = self.set_drain(&upstream, &server, true)?;
                if changed {
                    self.emit(Event::ServerDrained {
                        upstream: upstream.clone(),
                        server: server.clone(),
                        by,
                    });
                }
                Ok(Report::Drained {
                    upstream,
                    server,
                    changed,
                })
            }
            Command::Enable { upstream, server } => {
                let changed = self.set_drain(&upstream, &server, false)?;
                if changed {
                    self.emit(Event::ServerEnabled {
                        upstream: upstream.clone(),
                        server: server.clone(),
                        by,
                    });
                }
                Ok(Report::Enabled {
                    upstream,
                    server,
                    changed,
                })
            }
            Command::Reload => self
                .reload_from_source(by)
                .await
                .result
                .map(Report::Reloaded),
            Command::Purge { route, prefix } => {
                if let Some(p) = prefix.as_deref().filter(|p| !p.starts_with('/')) {
                    return Err(CommandError::Invalid(format!(
                        "prefix `{p}` must start with '/', e.g. /{p}"
                    )));
                }
                Ok(Report::Purged(
                    self.purge_cache(route.as_deref(), prefix.as_deref())?,
                ))
            }
        }
    }

    /// Reads the config source again and applies it; a file that does not read or validate,
    /// or a config the gateway cannot apply (a port in use, a bad certificate), is refused and
    /// recorded, and the running config stays. [`Gateway::apply`] with [`Command::Reload`]
    /// does the same and drops the text.
    pub async fn reload_from_source(&self, by: Origin) -> ReloadAttempt {
        let source = &self.inner.source;
        let text = source.read();
        let sha256 = text.as_ref().ok().map(|t| sha256_hex(t));
        let refused = |error: String| {
            tracing::error!(%error, by = by.name(), "reload refused; the running config stays");
            self.emit(Event::ReloadRefused {
                sha256: sha256.clone(),
                by,
                error: error.clone(),
            });
            CommandError::Refused(error)
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                self.inner
                    .shared
                    .global
                    .reloads_failed
                    .fetch_add(1, Relaxed);
                return ReloadAttempt {
                    text: None,
                    result: Err(refused(e.to_string())),
                };
            }
        };
        let config = match source.parse(&text) {
            Ok(c) => c,
            Err(e) => {
                // Counted like a refused apply: `ballast_reloads_total{result="error"}`.
                self.inner
                    .shared
                    .global
                    .reloads_failed
                    .fetch_add(1, Relaxed);
                return ReloadAttempt {
                    text: Some(text),
                    result: Err(refused(e.to_string())),
                };
            }
        };
        let result = match self.reload(config).await {
            Ok(mut report) => {
                report.sha256 = sha256.clone().unwrap_or_default();
                tracing::info!(?report, by = by.name(), "config reloaded");
                self.emit(Event::ReloadApplied {
                    sha256: report.sha256.clone(),
                    by,
                    listeners_started: report.listeners_started.clone(),
                    listeners_stopped: report.listeners_stopped.clone(),
                    servers_added: report.servers_added,
                    servers_removed: report.servers_removed,
                });
                Ok(report)
            }
            Err(e) => Err(refused(e.to_string())),
        };
        ReloadAttempt {
            text: Some(text),
            result,
        }
    }
}

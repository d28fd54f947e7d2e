//! [`Gateway::apply`]: the one place where a [`Command`] from the admin API, the CLI or a
//! remediation changes the running gateway.
//!
//! The match is exhaustive, so a new command cannot be added without deciding here how it is
//! carried out, what it reports and which event records it. Every change it makes is emitted as
//! an [`Event`] naming who asked (its [`Origin`], and the person when known); a refused command
//! changes nothing.
//!
//! `Eject` reuses passive ejection (`upstream::server`, an ordered ejection that ends by
//! itself); `Reroute` and `Shed` set runtime overrides (`overrides`, which says how they fare
//! across reloads: route overrides are kept while their route and target exist).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use ballast_config::validate::defaults;
use ballast_config::Config;

use ballast_core::{
    sha256_hex, Command, CommandError, Event, Issued, Origin, ReloadReport, Report,
};

use crate::cache::PurgeError;
use crate::clock::now_ms;
use crate::gateway::{Gateway, ServerLookupError};
use crate::overrides::OverrideError;

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

impl From<OverrideError> for CommandError {
    fn from(e: OverrideError) -> Self {
        match e {
            OverrideError::NoRoute(_) | OverrideError::NoUpstream(_) => {
                CommandError::NotFound(e.to_string())
            }
            OverrideError::NoClass(_) | OverrideError::BadShare(_) => {
                CommandError::Invalid(e.to_string())
            }
        }
    }
}

/// The longest ejection a command may order.
const MAX_EJECT_MS: u64 = 24 * 3600 * 1000;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl From<PurgeError> for CommandError {
    fn from(e: PurgeError) -> Self {
        CommandError::NotFound(e.to_string())
    }
}

impl Gateway {
    /// Carries out one command. On `Err` nothing changed.
    pub async fn apply(&self, issued: Issued) -> Result<Report, CommandError> {
        let Issued { command, by, who } = issued;
        match command {
            Command::Drain { upstream, server } => {
                let changed = self.set_drain(&upstream, &server, true)?;
                if changed {
                    self.emit(Event::ServerDrained {
                        upstream: upstream.clone(),
                        server: server.clone(),
                        by,
                        who,
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
                        who,
                    });
                }
                Ok(Report::Enabled {
                    upstream,
                    server,
                    changed,
                })
            }
            Command::Reload => self
                .reload_from_source(by, who)
                .await
                .result
                .map(Report::Reloaded),
            Command::Purge { route, prefix } => {
                if let Some(p) = prefix.as_deref().filter(|p| !p.starts_with('/')) {
                    return Err(CommandError::Invalid(format!(
                        "prefix `{p}` must start with '/', e.g. /{p}"
                    )));
                }
                Ok(Report::Purged(self.purge_cache(
                    route.as_deref(),
                    prefix.as_deref(),
                    who,
                )?))
            }
            Command::Eject {
                upstream,
                server,
                duration_ms,
            } => {
                let (ejection_ms, until_unix_ms) = self.eject(&upstream, &server, duration_ms)?;
                self.emit(Event::ServerEjectOrdered {
                    upstream: upstream.clone(),
                    server: server.clone(),
                    ejection_ms,
                    until_unix_ms,
                    by,
                    who,
                });
                Ok(Report::Ejected {
                    upstream,
                    server,
                    ejection_ms,
                    until_unix_ms,
                })
            }
            Command::Reroute { route, to } => {
                let inner = &self.inner;
                let changed = inner.shared.overrides.set_route(
                    &inner.config,
                    &inner.upstreams,
                    &inner.shared.registry,
                    &route,
                    to.as_deref(),
                )?;
                tracing::info!(route, to = ?to, changed, by = by.name(), who = ?who, "route rerouted");
                if changed {
                    self.emit(Event::RouteRerouted {
                        route: route.clone(),
                        to: to.clone(),
                        by,
                        who,
                    });
                }
                Ok(Report::Rerouted { route, to, changed })
            }
            Command::Shed { class, share } => {
                let (_, changed) = self.inner.shared.overrides.set_shed(&class, share)?;
                tracing::info!(class, share = ?share, changed, by = by.name(), who = ?who, "shed share set");
                if changed {
                    self.emit(Event::ShedShareSet {
                        class: class.clone(),
                        share,
                        by,
                        who,
                    });
                }
                Ok(Report::ShedSet {
                    class,
                    share,
                    changed,
                })
            }
        }
    }

    /// Ejects a server on a command's order for `duration_ms` (the upstream's
    /// `passive.ejection` when `None`, the default period when passive health is off).
    /// Returns how long the ejection lasts from now and when it ends (Unix ms).
    fn eject(
        &self,
        upstream: &str,
        addr: &str,
        duration_ms: Option<u64>,
    ) -> Result<(u64, u64), CommandError> {
        if let Some(ms) = duration_ms.filter(|ms| *ms == 0 || *ms > MAX_EJECT_MS) {
            return Err(CommandError::Invalid(format!(
                "an ejection of {ms} ms is outside 1 ms..24 h (a server out for longer is \
                 drained: use drain)"
            )));
        }
        let (up, state) = self.server(upstream, addr)?;
        let d = duration_ms.map_or_else(
            || up.passive().map_or(defaults::EJECTION, |p| p.ejection),
            Duration::from_millis,
        );
        let until = state.eject_for(d);
        let ejection_ms = until.saturating_sub(now_ms());
        let until_unix_ms = unix_ms() + ejection_ms;
        tracing::warn!(
            upstream,
            server = addr,
            ejection_ms,
            "server ejected on command"
        );
        Ok((ejection_ms, until_unix_ms))
    }

    /// Carries route overrides over a config just committed (see `overrides`): those whose
    /// route or target is gone are dropped, and the drop is recorded.
    pub(crate) fn keep_overrides(&self, config: &Config) {
        let inner = &self.inner;
        let ups = inner.upstreams.load();
        for route in inner
            .shared
            .overrides
            .rebuild(config, &ups, &inner.shared.registry)
        {
            tracing::warn!(
                route,
                "route override dropped: the reload removed its route or target"
            );
            self.emit(Event::RouteRerouted {
                route,
                to: None,
                by: Origin::Gateway,
                who: None,
            });
        }
    }

    /// Reads the config source again and applies it; a file that does not read or validate,
    /// or a config the gateway cannot apply (a port in use, a bad certificate), is refused and
    /// recorded, and the running config stays. [`Gateway::apply`] with [`Command::Reload`]
    /// does the same and drops the text. `by` is where the reload was asked from and `who` the
    /// person who asked, when known; both are recorded on the event.
    pub async fn reload_from_source(&self, by: Origin, who: Option<String>) -> ReloadAttempt {
        let source = &self.inner.source;
        let text = source.read();
        let sha256 = text.as_ref().ok().map(|t| sha256_hex(t));
        let refused = |error: String| {
            tracing::error!(%error, by = by.name(), who = ?who, "reload refused; the running config stays");
            self.emit(Event::ReloadRefused {
                sha256: sha256.clone(),
                by,
                who: who.clone(),
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
                tracing::info!(?report, by = by.name(), who = ?who, "config reloaded");
                self.emit(Event::ReloadApplied {
                    sha256: report.sha256.clone(),
                    by,
                    who: who.clone(),
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

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;

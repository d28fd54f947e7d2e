//! The `[store]` table: where the operations store (config history, later events and change
//! markers) lives.
//!
//! It exists so that the URL is checked with the rest of the file, with a `file:line:col`
//! message, instead of failing later when the gateway opens it; and so that a relative SQLite
//! path means "beside the config file" whatever directory Ballast was started from. Whether the
//! database can actually be opened is I/O, left to the gateway (which runs without a store
//! when it cannot).

use std::path::PathBuf;

use super::{defaults, Checker};
use crate::model::{Retention, StoreConfig, StoreUrl};
use crate::raw;

/// The store, with the default (`sqlite://ballast.db` beside the config file) filled in.
pub(super) fn store(c: &mut Checker, raw: Option<raw::Store>) -> Option<StoreConfig> {
    let explicit = raw.is_some();
    let (text, spool, retention) = match raw {
        Some(s) => (s.url, s.spool, s.retention),
        None => (None, None, None),
    };
    let spool = c.count(
        "store.spool".into(),
        spool,
        defaults::STORE_SPOOL as u32,
        1,
        10_000_000,
    ) as usize;
    let retention = retention.unwrap_or(raw::Retention {
        events: None,
        changes: None,
        config_versions: None,
        metrics: None,
    });
    let retention = Retention {
        events: keep(c, "events", retention.events, defaults::RETAIN_EVENTS),
        changes: keep(c, "changes", retention.changes, defaults::RETAIN_CHANGES),
        config_versions: keep(
            c,
            "config_versions",
            retention.config_versions,
            defaults::RETAIN_CONFIG_VERSIONS,
        ),
        metrics: keep(c, "metrics", retention.metrics, defaults::RETAIN_METRICS),
    };
    let text = text.as_deref().unwrap_or(defaults::STORE_URL);
    if text == "off" {
        // Explicitly no store: events and config versions are kept in memory only.
        return None;
    }
    let url = url(c, text)?;
    Some(StoreConfig {
        url,
        explicit,
        spool,
        retention,
    })
}

/// A retention period: at least one hour, so that a typo ("90s" for "90d") cannot wipe the
/// history on the next pruning round.
fn keep(
    c: &mut Checker,
    kind: &str,
    d: Option<ballast_core::Duration>,
    default: std::time::Duration,
) -> std::time::Duration {
    let path = format!("store.retention.{kind}");
    match d {
        None => default,
        Some(d) if d.get() < std::time::Duration::from_secs(3600) => {
            c.fail(
                path,
                format!("{d} is shorter than an hour; write days, e.g. \"90d\""),
            );
            default
        }
        Some(d) => d.get(),
    }
}

fn url(c: &mut Checker, text: &str) -> Option<StoreUrl> {
    const FIX: &str =
        "write \"sqlite://ballast.db\" (a file, relative to this config's directory), \"sqlite:///var/lib/ballast/ballast.db\", \"postgres://user:password@host:5432/database\" or \"off\"";
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => {
            c.fail("store.url", format!("is not a store URL; {FIX}"));
            return None;
        }
    };
    match scheme.as_str() {
        "sqlite" => {
            if rest.is_empty() || rest.contains('?') || rest.ends_with('/') {
                c.fail(
                    "store.url",
                    format!("must name a SQLite file (no query string); {FIX}"),
                );
                return None;
            }
            let path = PathBuf::from(rest);
            let path = if path.is_absolute() {
                path
            } else {
                c.base.join(path)
            };
            Some(StoreUrl::Sqlite(path))
        }
        "postgres" | "postgresql" => {
            if rest.is_empty() {
                c.fail("store.url", format!("names no PostgreSQL server; {FIX}"));
                return None;
            }
            Some(StoreUrl::Postgres(text.to_string()))
        }
        other => {
            c.fail(
                "store.url",
                format!("`{other}` is not a supported store; {FIX}"),
            );
            None
        }
    }
}

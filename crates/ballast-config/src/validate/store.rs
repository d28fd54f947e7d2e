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
use crate::model::{StoreConfig, StoreUrl};
use crate::raw;

/// The store, with the default (`sqlite://ballast.db` beside the config file) filled in.
pub(super) fn store(c: &mut Checker, raw: Option<raw::Store>) -> Option<StoreConfig> {
    let explicit = raw.is_some();
    let text = raw.and_then(|s| s.url);
    let text = text.as_deref().unwrap_or(defaults::STORE_URL);
    let url = url(c, text)?;
    Some(StoreConfig { url, explicit })
}

fn url(c: &mut Checker, text: &str) -> Option<StoreUrl> {
    const FIX: &str =
        "write \"sqlite://ballast.db\" (a file, relative to this config's directory), \"sqlite:///var/lib/ballast/ballast.db\" or \"postgres://user:password@host:5432/database\"";
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

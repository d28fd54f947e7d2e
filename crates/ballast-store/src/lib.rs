//! Ballast's operations store: the memory of the gateway and of its operations brain.
//!
//! It exists so that events, every config version (applied or refused), change markers from
//! CI/CD, the instances sharing a database, the alerting side's alerts, silences and metric
//! rollups, the notification outbox, remediation runs and incidents outlive the process, and so
//! that no other crate writes SQL (DESIGN.md §2, §5). One [`Store`] hides which backend holds
//! the data: a SQLite file (the default, nothing to install) or a PostgreSQL database shared by
//! several instances. Its API takes and returns `ballast-core` values.
//!
//! The backend is an enum over sqlx's `SqlitePool` and `PgPool` rather than sqlx's `Any`
//! driver: each backend keeps its own connection settings (WAL, `synchronous`, busy timeout;
//! `search_path`), its own typed errors and its own migrations, while every query is written
//! once (with `$N` placeholders, which both drivers accept) and compiled for both pools by the
//! `on_pool!` macro. The conformance suite in `tests/` runs each scenario on both.

/// Runs `$body` with `$pool` bound to the concrete pool of `$store`, once per backend, so one
/// query text serves both and each is type-checked against its driver.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::open::Pool::Sqlite($pool) => $body,
            $crate::open::Pool::Postgres($pool) => $body,
        }
    };
}

mod alerts;
mod changes;
mod configs;
mod error;
mod events;
mod incidents;
mod instances;
mod open;
mod outbox;
mod remediations;
mod retention;
mod rollups;
mod rows;
mod silences;
pub mod sink;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use error::StoreError;
pub use incidents::{NewIncident, StoredIncident};
pub use open::{Store, StoreOptions};
pub use remediations::StoredRemediation;
pub use sink::{SinkInputs, SinkOptions, SinkState};

/// Lowercase hex sha256 of a config's text: what [`Store::record_config`] stores (the same
/// function the gateway uses for its events and heartbeats).
pub use ballast_core::sha256_hex;

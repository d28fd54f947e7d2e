//! The store's typed errors.
//!
//! They exist so that callers can tell "the database is not there right now" (spool and retry:
//! [`StoreError::is_unavailable`]) from "this request can never succeed" (a bad URL, a value
//! that does not fit, a row that cannot be read back), without parsing messages. No URL is ever
//! printed whole: it may carry a password.

use sqlx::migrate::MigrateError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend or does not parse.
    #[error("store URL ({scheme}) is not usable: {reason}")]
    InvalidUrl {
        /// The URL's scheme (never the whole URL: it may hold a password).
        scheme: String,
        reason: String,
    },
    /// The database cannot be reached or written right now: connection refused or lost, pool
    /// timeout, file not openable, read-only or full, locked for too long. Retrying later may
    /// succeed.
    #[error("the {backend} store is unavailable: {source}")]
    Unavailable {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database refused the operation for another reason.
    #[error("the {backend} store failed: {source}")]
    Database {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed (for instance, an applied migration was changed,
    /// or the database holds a newer schema than this binary knows).
    #[error("migrating the {backend} store failed: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: MigrateError,
    },
    /// A number is above what the store's signed 64-bit integers hold.
    #[error("{field} = {value} is too large for the store (at most {max})", max = i64::MAX)]
    OutOfRange { field: &'static str, value: u64 },
    /// A value (an event, a label set, matchers) could not be encoded as JSON.
    #[error("encoding a value as JSON failed: {0}")]
    Encode(#[source] serde_json::Error),
    /// An operation took longer than the caller allows (a database that hangs rather than
    /// refuses); counted as unavailable.
    #[error("the store did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The record asked for does not exist (never did, or was pruned).
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    /// A value given to the store cannot be kept as it is (a non-finite number where both
    /// backends need a finite one, a silence that ends before it starts).
    #[error("{field} cannot be stored: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    /// A stored row cannot be turned back into a value (written by a newer Ballast, or edited
    /// by hand).
    #[error("{table} row {id} cannot be read back: {reason}")]
    Corrupt {
        table: &'static str,
        id: i64,
        reason: String,
    },
}

impl StoreError {
    /// Whether the failure is the database being unreachable or unwritable for now (the event
    /// sink keeps its spool and retries), rather than a permanent refusal.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } | StoreError::TimedOut(_) => true,
            StoreError::Migrate {
                source: MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _),
                ..
            } => unavailable(e),
            _ => false,
        }
    }

    /// Classifies a sqlx error from `backend`.
    pub(crate) fn from_sqlx(backend: &'static str, source: sqlx::Error) -> Self {
        if unavailable(&source) {
            StoreError::Unavailable { backend, source }
        } else {
            StoreError::Database { backend, source }
        }
    }
}

/// Connection-level failures, and database codes that mean "not now" rather than "never".
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if let Ok(n) = code.parse::<i64>() {
                // SQLite result codes; extended codes keep the primary code in the low byte.
                // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
                matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
            } else {
                // PostgreSQL SQLSTATE: connection exception, insufficient resources, operator
                // intervention (shutdown), system error, serialization failure or deadlock.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code.starts_with("58")
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}

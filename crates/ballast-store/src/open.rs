//! Opening a store: choosing the backend from the URL, tuning its connections, and applying
//! the embedded migrations.
//!
//! It exists so that everything backend-specific about connecting lives in one place: SQLite
//! gets WAL (readers never wait for the writer), `synchronous=NORMAL` (durable at checkpoints,
//! fast commits) and a busy timeout; PostgreSQL gets an optional schema through `search_path`
//! (several Ballast deployments, or test runs, can share one database). Both get their own
//! migration directory, applied by [`Store::open_with`]; applying them again is a no-op.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How to open a store. [`StoreOptions::new`] gives the defaults for a URL. Its `Debug` shows
/// the URL's scheme only: the URL may carry a password.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` (`sqlite:///abs/path` for an absolute path) or `postgres://...`.
    pub url: String,
    /// PostgreSQL only: the schema holding Ballast's tables (created if missing). `None` uses
    /// the database's default `search_path` (normally `public`).
    pub schema: Option<String>,
    /// At most this many pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection (to open one, or for a free one in the pool) before
    /// the operation fails as [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
    /// SQLite only: how long a writer waits for another writer's lock before failing.
    pub busy_timeout: Duration,
}

impl StoreOptions {
    /// Defaults for `url`: 4 connections, 5 s connect timeout, 5 s busy timeout.
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            schema: None,
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split_once(':').map_or("?", |(s, _)| s);
        f.debug_struct("StoreOptions")
            .field("url", &format_args!("{scheme}:(redacted)"))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("busy_timeout", &self.busy_timeout)
            .finish()
    }
}

/// The concrete pool behind a [`Store`].
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the operations store. Cloning it is cheap (the pool is shared). Its `Debug`
/// names the backend only (the pool's options hold the password).
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` with default options and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(StoreOptions::new(url)).await
    }

    /// Opens the store described by `options` and applies pending migrations.
    pub async fn open_with(options: StoreOptions) -> Result<Store, StoreError> {
        let scheme = options
            .url
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "sqlite" => open_sqlite(&options, None).await,
            "postgres" | "postgresql" => open_postgres(&options).await,
            _ => Err(StoreError::InvalidUrl {
                scheme,
                reason: "expected sqlite://PATH or postgres://...".to_string(),
            }),
        }
    }

    /// Opens (creating it if missing) the SQLite file at `path`.
    pub async fn open_sqlite_file(path: &Path) -> Result<Store, StoreError> {
        open_sqlite(&StoreOptions::new("sqlite://"), Some(path)).await
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers (for health reports).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
            .map_err(|e| self.err(e))
    }

    /// The newest migration applied to the database (the schema version).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success"
        )
        .fetch_one(p)
        .await)
        .map_err(|e| self.err(e))
    }

    /// Closes every pooled connection; later operations fail as unavailable.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Classifies a sqlx error from this store's backend.
    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(self.backend(), e)
    }
}

async fn open_sqlite(options: &StoreOptions, path: Option<&Path>) -> Result<Store, StoreError> {
    const BACKEND: &str = "sqlite";
    let connect = match path {
        Some(path) => SqliteConnectOptions::new().filename(path),
        None => {
            SqliteConnectOptions::from_str(&options.url).map_err(|e| StoreError::InvalidUrl {
                scheme: "sqlite".to_string(),
                reason: e.to_string(),
            })?
        }
    }
    .create_if_missing(true)
    .journal_mode(SqliteJournalMode::Wal)
    .synchronous(SqliteSynchronous::Normal)
    .busy_timeout(options.busy_timeout)
    .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| StoreError::from_sqlx(BACKEND, e))?;
    SQLITE_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            backend: BACKEND,
            source,
        })?;
    Ok(Store {
        pool: Pool::Sqlite(pool),
    })
}

async fn open_postgres(options: &StoreOptions) -> Result<Store, StoreError> {
    const BACKEND: &str = "postgres";
    let mut connect = PgConnectOptions::from_str(&options.url)
        .map_err(|e| StoreError::InvalidUrl {
            scheme: "postgres".to_string(),
            reason: e.to_string(),
        })?
        .application_name("ballast");
    if let Some(schema) = &options.schema {
        check_schema(schema)?;
        // Created before the pool so that every pooled connection can use it.
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::from_sqlx(BACKEND, e))?;
        let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&admin)
            .await;
        admin.close().await;
        if let Err(e) = created {
            // Another instance may have created it at the same moment.
            let raced = matches!(&e, sqlx::Error::Database(db) if db.is_unique_violation());
            if !raced {
                return Err(StoreError::from_sqlx(BACKEND, e));
            }
        }
        connect = connect.options([("search_path", schema.as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| StoreError::from_sqlx(BACKEND, e))?;
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            backend: BACKEND,
            source,
        })?;
    Ok(Store {
        pool: Pool::Postgres(pool),
    })
}

/// A schema name is quoted into SQL: only letters, digits and '_' are accepted.
pub(crate) fn check_schema(schema: &str) -> Result<(), StoreError> {
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StoreError::InvalidUrl {
            scheme: "postgres".to_string(),
            reason: format!("schema {schema:?} must be letters, digits and '_'"),
        });
    }
    Ok(())
}

//! Support for tests in other crates that give each run a PostgreSQL schema of its own (the
//! gateway's integration tests start real processes on a shared test database).
//!
//! It exists so that those tests need no SQL of their own (no SQL outside this crate): a
//! schema is created and migrated by [`crate::Store::open_with`] with
//! [`crate::StoreOptions::schema`], the gateway reaches it through the URL that
//! [`url_with_search_path`] builds, and [`drop_schema`] removes it afterwards. Compiled only
//! with the `test-support` feature, which only dev-dependencies turn on.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::StoreError;
use crate::open::check_schema;

/// `url` with `options[search_path]=SCHEMA` added to its query string: what a `[store] url`
/// says to keep Ballast's tables in `schema`.
pub fn url_with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

/// Drops `schema` and everything in it from the PostgreSQL database at `url` (nothing if it
/// does not exist).
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    const BACKEND: &str = "postgres";
    check_schema(schema)?;
    let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
        scheme: "postgres".to_string(),
        reason: e.to_string(),
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::from_sqlx(BACKEND, e))?;
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&pool)
        .await;
    pool.close().await;
    dropped
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(BACKEND, e))
}

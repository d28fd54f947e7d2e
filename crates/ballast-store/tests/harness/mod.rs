//! Runs one conformance scenario against a fresh database of each backend and cleans up
//! afterwards, even when the scenario fails.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ballast_store::{Store, StoreOptions};
use sqlx::Connection;

/// A fresh store, and the options that open the same database again.
pub struct Db {
    pub options: StoreOptions,
    pub store: Store,
    /// SQLite: the database file (to check the WAL beside it).
    pub file: Option<PathBuf>,
}

impl Db {
    /// A second handle on the same database, opened (and migrated) from scratch.
    pub async fn reopen(&self) -> Store {
        Store::open_with(self.options.clone())
            .await
            .expect("reopening the same database")
    }
}

pub fn pg_url() -> String {
    std::env::var("BALLAST_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A name no other test or concurrent run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

/// Runs `scenario` on a new SQLite file in its own temporary directory.
pub async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(unique("ballast-store"));
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    let file = dir.join("store.db");
    let options = StoreOptions::new(format!("sqlite://{}", file.display()));
    let store = Store::open_with(options.clone())
        .await
        .expect("opening a new SQLite store");
    let db = Db {
        options,
        store: store.clone(),
        file: Some(file),
    };
    let outcome = tokio::spawn(scenario(db)).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    finish(outcome);
}

/// Runs `scenario` on the test PostgreSQL, in a schema of its own that is dropped afterwards.
pub async fn on_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = unique("ballast_test");
    let mut options = StoreOptions::new(pg_url());
    options.schema = Some(schema.clone());
    let store = Store::open_with(options.clone())
        .await
        .unwrap_or_else(|e| panic!("opening the test PostgreSQL at {}: {e}", pg_url()));
    let db = Db {
        options,
        store: store.clone(),
        file: None,
    };
    let outcome = tokio::spawn(scenario(db)).await;
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(&pg_url())
        .await
        .expect("connecting to drop the test schema");
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .expect("dropping the test schema");
    let _ = conn.close().await;
    finish(outcome);
}

fn finish(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("scenario did not finish: {e}");
    }
}

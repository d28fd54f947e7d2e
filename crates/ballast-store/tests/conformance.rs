//! The store's conformance suite: every scenario runs, unchanged, on a SQLite file and on the
//! real PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`, or `BALLAST_TEST_PG_URL`).
//!
//! It exists so that the two backends cannot drift apart: a query that behaves differently on
//! one of them fails here. Each SQLite run gets its own temporary file; each PostgreSQL run its
//! own schema, dropped at the end, so parallel tests and concurrent runs never see each other.
//! No mocks: these are the drivers and databases the gateway uses.

mod harness;
mod scenarios;

use harness::{on_postgres, on_sqlite};

/// One `#[tokio::test]` per scenario and backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_sqlite(super::scenarios::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_postgres(super::scenarios::$name).await;
                }
            )*
        }
    };
}

conformance!(
    migrations_twice_are_a_no_op,
    events_batch_and_queries,
    event_batch_is_all_or_nothing,
    config_versions_ids_and_previous_applied,
    changes_newest_first,
    instances_upsert_and_drift,
    prune_events_and_changes_in_batches,
    prune_keeps_running_config,
    closed_store_is_unavailable,
);

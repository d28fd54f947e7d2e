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
    events_of_several_kinds,
    config_summaries_since_a_time,
);

/// PostgreSQL only: a `[store] url` can put Ballast's tables in a schema of their own with
/// `?options[search_path]=NAME` (what the gateway's multi-instance tests do): a store
/// opened that way sees exactly what a store opened with `StoreOptions::schema` wrote.
#[tokio::test]
async fn postgres_schema_through_the_url() {
    on_postgres(|db| async move {
        let schema = db
            .options
            .schema
            .clone()
            .expect("the harness names a schema");
        let marker = db
            .store
            .record_change(ballast_core::NewChange {
                kind: ballast_core::ChangeKind::Note,
                service: None,
                version: None,
                summary: "written through StoreOptions::schema".to_string(),
                author: None,
                url: None,
                at_unix_ms: 7,
            })
            .await
            .unwrap();
        let base = harness::pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        let by_url = ballast_store::Store::open(&url).await.unwrap();
        assert_eq!(by_url.changes_since(0, 10).await.unwrap(), vec![marker]);
        by_url.close().await;
    })
    .await;
}

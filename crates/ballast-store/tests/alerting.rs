//! Conformance of the alerting records (alerts, silences, metric rollups): every scenario
//! runs, unchanged, on a SQLite file and on the real PostgreSQL in a schema of its own, through
//! the same harness as `conformance.rs`. No mocks.

mod alerting_scenarios;
mod harness;

use harness::{on_postgres, on_sqlite};

/// One `#[tokio::test]` per scenario and backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_sqlite(super::alerting_scenarios::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_postgres(super::alerting_scenarios::$name).await;
                }
            )*
        }
    };
}

conformance!(
    alert_upsert_replaces,
    alert_ack_persists_across_reopen,
    alert_ack_belongs_to_one_episode,
    alert_labels_round_trip,
    alert_retention_keeps_active,
    silences_survive_reopen_and_expire,
    silence_refusals,
    rollups_upsert_and_range,
    rollups_batch_is_all_or_nothing,
    rollups_prune_in_batches,
);

/// SQLite only (the decoding is shared by both backends): rows edited by hand into something
/// Ballast cannot read back are typed errors naming the table, never a panic.
#[tokio::test]
async fn corrupt_rows_are_typed_errors() {
    on_sqlite(|db| async move {
        use ballast_core::{
            AlertRecord, AlertSource, AlertState, Labels, MinuteRollup, NewSilence,
        };
        use ballast_store::StoreError;
        use sqlx::Connection;

        let store = &db.store;
        let labels = Labels::new().with("alertname", "x");
        let alert = AlertRecord {
            id: labels.fingerprint(),
            rule: "x".to_string(),
            labels: labels.clone(),
            annotations: Default::default(),
            state: AlertState::Pending,
            source: AlertSource::Rule,
            value: None,
            threshold: None,
            since_unix_ms: 1,
            updated_unix_ms: 1,
            ack: None,
        };
        store.save_alert(&alert).await.unwrap();
        let silence = NewSilence {
            matchers: vec![],
            starts_unix_ms: 1,
            ends_unix_ms: 2,
            author: "a".to_string(),
            comment: String::new(),
        };
        store.add_silence(silence, 1).await.unwrap();
        let rollup = MinuteRollup {
            monitor: "m".to_string(),
            value: "v".to_string(),
            labels,
            minute_unix_ms: 0,
            min: 0.0,
            avg: 0.0,
            max: 0.0,
            p95: 0.0,
            count: 1,
        };
        store.write_rollups(&[rollup]).await.unwrap();

        let file = db.file.clone().expect("a SQLite file");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        for sql in [
            "UPDATE alerts SET state = 'firing', severity = NULL",
            "UPDATE silences SET matchers = '[{\"name\": 1}]'",
            "UPDATE metric_rollups SET sample_count = -1",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();

        let corrupt = |err: StoreError, want: &str| {
            assert!(
                matches!(&err, StoreError::Corrupt { table, .. } if *table == want),
                "{err:?}"
            );
        };
        corrupt(store.alert(&alert.id).await.unwrap_err(), "alerts");
        corrupt(store.alerts(false).await.unwrap_err(), "alerts");
        corrupt(store.silences(true, 0).await.unwrap_err(), "silences");
        corrupt(
            store.rollups("m", "v", 0, u64::MAX).await.unwrap_err(),
            "metric_rollups",
        );
    })
    .await;
}

//! Instances sharing the store: one row per gateway instance with its host and the sha256 of
//! its running config, refreshed by heartbeats, so that config drift between machines is a
//! query (`ballast_core::history::drift` decides who differs).

use ballast_core::Instance;

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

#[derive(sqlx::FromRow)]
struct InstanceRow {
    instance: String,
    host: String,
    config_sha256: String,
    first_seen_unix_ms: i64,
    last_seen_unix_ms: i64,
}

impl Store {
    /// Records that `instance` on `host` runs the config with `config_sha256` at `now_unix_ms`:
    /// inserts its row the first time, updates host, sha256 and last-seen time afterwards.
    pub async fn heartbeat_instance(
        &self,
        instance: &str,
        host: &str,
        config_sha256: &str,
        now_unix_ms: u64,
    ) -> Result<(), StoreError> {
        let now = to_db("now_unix_ms", now_unix_ms)?;
        on_pool!(self, p => sqlx::query(
            "INSERT INTO instances \
             (instance, host, config_sha256, first_seen_unix_ms, last_seen_unix_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (instance) DO UPDATE SET host = excluded.host, \
             config_sha256 = excluded.config_sha256, \
             last_seen_unix_ms = excluded.last_seen_unix_ms",
        )
        .bind(instance)
        .bind(host)
        .bind(config_sha256)
        .bind(now)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Every instance that ever sent a heartbeat, by name.
    pub async fn instances(&self) -> Result<Vec<Instance>, StoreError> {
        let rows: Vec<InstanceRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT instance, host, config_sha256, first_seen_unix_ms, last_seen_unix_ms \
             FROM instances ORDER BY instance",
        )
        .fetch_all(p)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|row| {
                Ok(Instance {
                    first_seen_unix_ms: from_db(
                        "instances",
                        0,
                        "first_seen_unix_ms",
                        row.first_seen_unix_ms,
                    )?,
                    last_seen_unix_ms: from_db(
                        "instances",
                        0,
                        "last_seen_unix_ms",
                        row.last_seen_unix_ms,
                    )?,
                    instance: row.instance,
                    host: row.host,
                    config_sha256: row.config_sha256,
                })
            })
            .collect()
    }
}

//! Metric rollups in the store: one row per series and minute (min, avg, max, p95, count),
//! written by the monitor as each minute completes and kept for weeks. They exist because the
//! in-memory history holds only the last hour, and the threshold review needs a baseline of
//! what each value normally is.
//!
//! A series is keyed by monitor, value name and the fingerprint of its labels; the label set
//! itself is kept as JSON beside it. Writing a minute again replaces it (a restarted monitor
//! may roll up a minute twice), so writes are idempotent. Retention deletes in small batches,
//! oldest minutes first, like the other records (see `retention.rs`).

use std::collections::BTreeMap;

use ballast_core::{Labels, MinuteRollup};
use sqlx::QueryBuilder;

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

const TABLE: &str = "metric_rollups";

/// Rows per INSERT statement (11 parameters each): well under both backends' limits.
const ROWS_PER_STATEMENT: usize = 200;

#[derive(sqlx::FromRow)]
struct RollupRow {
    id: i64,
    monitor: String,
    value_name: String,
    labels: String,
    minute_unix_ms: i64,
    min_value: f64,
    avg_value: f64,
    max_value: f64,
    p95_value: f64,
    sample_count: i64,
}

/// A rollup checked and encoded for the database.
struct NewRow<'a> {
    rollup: &'a MinuteRollup,
    fingerprint: String,
    labels: String,
    minute: i64,
    count: i64,
}

impl Store {
    /// Stores `rollups` in one transaction (all or none), replacing any stored rollup of the
    /// same monitor, value, label set and minute. When the slice holds the same key twice, the
    /// later one wins. A non-finite min, avg, max or p95 is refused as
    /// [`StoreError::InvalidValue`] before anything is written.
    pub async fn write_rollups(&self, rollups: &[MinuteRollup]) -> Result<(), StoreError> {
        let mut by_key: BTreeMap<(&str, &str, String, i64), NewRow> = BTreeMap::new();
        for rollup in rollups {
            for (field, v) in [
                ("min", rollup.min),
                ("avg", rollup.avg),
                ("max", rollup.max),
                ("p95", rollup.p95),
            ] {
                if !v.is_finite() {
                    return Err(StoreError::InvalidValue {
                        field,
                        reason: format!(
                            "{v} in the rollup of {}/{} at {}",
                            rollup.monitor, rollup.value, rollup.minute_unix_ms
                        ),
                    });
                }
            }
            let row = NewRow {
                rollup,
                fingerprint: rollup.labels.fingerprint(),
                labels: serde_json::to_string(&rollup.labels).map_err(StoreError::Encode)?,
                minute: to_db("minute_unix_ms", rollup.minute_unix_ms)?,
                count: to_db("count", rollup.count)?,
            };
            let key = (
                rollup.monitor.as_str(),
                rollup.value.as_str(),
                row.fingerprint.clone(),
                row.minute,
            );
            by_key.insert(key, row);
        }
        if by_key.is_empty() {
            return Ok(());
        }
        // One row per key: PostgreSQL refuses a statement that updates a row twice.
        let rows: Vec<NewRow> = by_key.into_values().collect();
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO metric_rollups (monitor, value_name, fingerprint, labels, \
                     minute_unix_ms, min_value, avg_value, max_value, p95_value, sample_count) ",
                );
                qb.push_values(chunk, |mut b, row| {
                    b.push_bind(row.rollup.monitor.as_str())
                        .push_bind(row.rollup.value.as_str())
                        .push_bind(row.fingerprint.as_str())
                        .push_bind(row.labels.as_str())
                        .push_bind(row.minute)
                        .push_bind(row.rollup.min)
                        .push_bind(row.rollup.avg)
                        .push_bind(row.rollup.max)
                        .push_bind(row.rollup.p95)
                        .push_bind(row.count);
                });
                qb.push(
                    " ON CONFLICT (monitor, value_name, fingerprint, minute_unix_ms) DO UPDATE \
                     SET labels = excluded.labels, min_value = excluded.min_value, \
                     avg_value = excluded.avg_value, max_value = excluded.max_value, \
                     p95_value = excluded.p95_value, sample_count = excluded.sample_count",
                );
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err(e))
    }

    /// The rollups of `value` from `monitor` (every label set) whose minute starts at or after
    /// `since_unix_ms` and before `until_unix_ms`, ordered by minute, then labels. Bounds past
    /// what the store holds are taken as "no bound".
    pub async fn rollups(
        &self,
        monitor: &str,
        value: &str,
        since_unix_ms: u64,
        until_unix_ms: u64,
    ) -> Result<Vec<MinuteRollup>, StoreError> {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let rows: Vec<RollupRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, monitor, value_name, labels, minute_unix_ms, min_value, avg_value, \
             max_value, p95_value, sample_count FROM metric_rollups \
             WHERE monitor = $1 AND value_name = $2 AND minute_unix_ms >= $3 \
             AND minute_unix_ms < $4",
        )
        .bind(monitor)
        .bind(value)
        .bind(clamp(since_unix_ms))
        .bind(clamp(until_unix_ms))
        .fetch_all(p)
        .await)
        .map_err(|e| self.err(e))?;
        let mut rollups = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, not in SQL: the two backends collate text differently.
        rollups.sort_by(|a, b| (a.minute_unix_ms, &a.labels).cmp(&(b.minute_unix_ms, &b.labels)));
        Ok(rollups)
    }

    /// Retention: deletes at most `limit` rollups of minutes that started before
    /// `before_unix_ms`, oldest first, and returns how many it deleted. The caller loops until
    /// a call returns fewer than `limit`.
    pub async fn prune_rollups(&self, before_unix_ms: u64, limit: u32) -> Result<u64, StoreError> {
        let cutoff = to_db("before_unix_ms", before_unix_ms)?;
        self.delete_batch(
            "DELETE FROM metric_rollups WHERE id IN (SELECT id FROM metric_rollups \
             WHERE minute_unix_ms < $1 ORDER BY minute_unix_ms, id LIMIT $2)",
            cutoff,
            limit,
        )
        .await
    }
}

fn decode(row: RollupRow) -> Result<MinuteRollup, StoreError> {
    let labels: Labels = serde_json::from_str(&row.labels).map_err(|e| StoreError::Corrupt {
        table: TABLE,
        id: row.id,
        reason: format!("labels: {e}"),
    })?;
    Ok(MinuteRollup {
        monitor: row.monitor,
        value: row.value_name,
        labels,
        minute_unix_ms: from_db(TABLE, row.id, "minute_unix_ms", row.minute_unix_ms)?,
        min: row.min_value,
        avg: row.avg_value,
        max: row.max_value,
        p95: row.p95_value,
        count: from_db(TABLE, row.id, "sample_count", row.sample_count)?,
    })
}

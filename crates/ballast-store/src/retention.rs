//! Retention: deleting old records in small batches.
//!
//! It exists because a single `DELETE` of a year of events would hold the write lock (SQLite)
//! or bloat one transaction (PostgreSQL) for as long as it takes, and the event sink must keep
//! writing meanwhile. Each call deletes at most `batch` rows, oldest ids first, in its own short
//! statement; the caller loops with a pause until a call returns fewer than `batch`.
//!
//! The newest applied config version of each instance is never pruned, however old: it is the
//! running config, and rollback and diff need it.

use ballast_core::RecordKind;

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::to_db;

impl Store {
    /// Deletes at most `batch` records of `kind` that happened before `older_than_unix_ms`,
    /// and returns how many it deleted.
    pub async fn prune(
        &self,
        kind: RecordKind,
        older_than_unix_ms: u64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = to_db("older_than_unix_ms", older_than_unix_ms)?;
        let sql = match kind {
            RecordKind::Events => {
                "DELETE FROM events WHERE id IN (SELECT id FROM events \
                 WHERE at_unix_ms < $1 ORDER BY id LIMIT $2)"
            }
            RecordKind::Changes => {
                "DELETE FROM changes WHERE id IN (SELECT id FROM changes \
                 WHERE at_unix_ms < $1 ORDER BY id LIMIT $2)"
            }
            RecordKind::ConfigVersions => {
                "DELETE FROM config_versions WHERE id IN (SELECT id FROM config_versions \
                 WHERE at_unix_ms < $1 AND id NOT IN (SELECT MAX(id) FROM config_versions \
                 WHERE outcome = 'applied' GROUP BY instance) ORDER BY id LIMIT $2)"
            }
        };
        self.delete_batch(sql, cutoff, batch).await
    }

    /// Runs one batched retention `DELETE` (`$1` the cutoff, `$2` the batch size) and returns
    /// how many rows went: the one statement every `prune_*` of the store shares.
    pub(crate) async fn delete_batch(
        &self,
        sql: &'static str,
        cutoff: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        on_pool!(self, p => sqlx::query(sql)
            .bind(cutoff)
            .bind(i64::from(batch))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))
    }
}

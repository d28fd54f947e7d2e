//! Remediation runs: one row per run of a `[[remedy]]` rule on a target, refused runs included.
//!
//! It exists so that the remediation guards survive a gateway restart (issue 14): budgets,
//! cooldowns and failure counts are rebuilt by replaying a rule's recorded runs on a target
//! ([`Store::remediations_for`]), and "why didn't it restart?" still has an answer afterwards
//! (`GET /api/v1/remediations`, [`Store::remediations`]). The run itself is
//! `ballast_core::RemediationRun`; the store adds only the row's id. The result's name and
//! reason are columns, the steps are JSON text. Retention deletes old runs in batches, like the
//! other records ([`crate::retention`]).

use ballast_core::{RemediationResult, RemediationRun, RemediationStep};

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

const TABLE: &str = "remediation_runs";

const COLUMNS: &str = "id, rule, target, alert_id, dry_run, started_unix_ms, ended_unix_ms, \
     result, reason, refused_kind, steps_json";

/// A recorded run and the id the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRemediation {
    pub id: u64,
    pub run: RemediationRun,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    rule: String,
    target: String,
    alert_id: String,
    dry_run: bool,
    started_unix_ms: i64,
    ended_unix_ms: i64,
    result: String,
    reason: Option<String>,
    refused_kind: Option<String>,
    steps_json: String,
}

/// A result's `reason` and `refused_kind` columns.
fn outcome(result: &RemediationResult) -> (Option<&str>, Option<&str>) {
    match result {
        RemediationResult::Ok => (None, None),
        RemediationResult::Failed { reason } => (Some(reason.as_str()), None),
        RemediationResult::Refused { kind, reason } => (Some(reason.as_str()), Some(kind.as_str())),
    }
}

impl Store {
    /// Records a finished (or refused) run and returns its id.
    pub async fn record_remediation(&self, run: &RemediationRun) -> Result<u64, StoreError> {
        let started = to_db("started_unix_ms", run.started_unix_ms)?;
        let ended = to_db("ended_unix_ms", run.ended_unix_ms)?;
        let steps = serde_json::to_string(&run.steps).map_err(StoreError::Encode)?;
        let (reason, kind) = outcome(&run.result);
        let id: i64 = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO remediation_runs (rule, target, alert_id, dry_run, started_unix_ms, \
             ended_unix_ms, result, reason, refused_kind, steps_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(run.rule.as_str())
        .bind(run.target.as_str())
        .bind(run.alert_id.as_str())
        .bind(run.dry_run)
        .bind(started)
        .bind(ended)
        .bind(run.result.name())
        .bind(reason)
        .bind(kind)
        .bind(steps.as_str())
        .fetch_one(p)
        .await)
        .map_err(|e| self.err(e))?;
        from_db(TABLE, id, "id", id)
    }

    /// The run log: at most `limit` runs started at or after `since_unix_ms`, newest first.
    /// Rewrites run `id`'s end, result and steps with `run`'s (a run whose `verify` ran out is
    /// failed after all); [`StoreError::NotFound`] when there is no such run.
    pub async fn update_remediation(
        &self,
        id: u64,
        run: &RemediationRun,
    ) -> Result<(), StoreError> {
        let row_id = to_db("id", id)?;
        let ended = to_db("ended_unix_ms", run.ended_unix_ms)?;
        let steps = serde_json::to_string(&run.steps).map_err(StoreError::Encode)?;
        let (reason, kind) = outcome(&run.result);
        let done = on_pool!(self, p => sqlx::query(
            "UPDATE remediation_runs SET ended_unix_ms = $2, result = $3, reason = $4, \
             refused_kind = $5, steps_json = $6 WHERE id = $1",
        )
        .bind(row_id)
        .bind(ended)
        .bind(run.result.name())
        .bind(reason)
        .bind(kind)
        .bind(steps.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        if done == 0 {
            return Err(StoreError::NotFound {
                what: "remediation run",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    pub async fn remediations(
        &self,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<Vec<StoredRemediation>, StoreError> {
        let since = to_db("since_unix_ms", since_unix_ms)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM remediation_runs WHERE started_unix_ms >= $1 \
             ORDER BY started_unix_ms DESC, id DESC LIMIT $2"
        );
        let rows: Vec<RunRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Every run of `rule` on `target` started at or after `since_unix_ms`, oldest first: what
    /// a restart replays into the guards, in the order they happened.
    pub async fn remediations_for(
        &self,
        rule: &str,
        target: &str,
        since_unix_ms: u64,
    ) -> Result<Vec<StoredRemediation>, StoreError> {
        let since = to_db("since_unix_ms", since_unix_ms)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM remediation_runs \
             WHERE rule = $1 AND target = $2 AND started_unix_ms >= $3 \
             ORDER BY started_unix_ms, id"
        );
        let rows: Vec<RunRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(rule)
            .bind(target)
            .bind(since)
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Retention: deletes at most `batch` runs that ended before `older_than_unix_ms`, oldest
    /// ids first, and returns how many. The caller loops until fewer than `batch` go.
    pub async fn prune_remediations(
        &self,
        older_than_unix_ms: u64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = to_db("older_than_unix_ms", older_than_unix_ms)?;
        self.delete_batch(
            "DELETE FROM remediation_runs WHERE id IN (SELECT id FROM remediation_runs \
             WHERE ended_unix_ms < $1 ORDER BY id LIMIT $2)",
            cutoff,
            batch,
        )
        .await
    }
}

fn decode(row: RunRow) -> Result<StoredRemediation, StoreError> {
    let id = row.id;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: TABLE,
        id,
        reason,
    };
    let steps: Vec<RemediationStep> =
        serde_json::from_str(&row.steps_json).map_err(|e| corrupt(format!("steps_json: {e}")))?;
    let result = match (row.result.as_str(), row.reason, row.refused_kind) {
        ("ok", _, _) => RemediationResult::Ok,
        ("failed", Some(reason), _) => RemediationResult::Failed { reason },
        ("refused", Some(reason), Some(kind)) => RemediationResult::Refused { kind, reason },
        (other, _, _) => {
            return Err(corrupt(format!(
                "result {other:?} is unknown or lacks its reason (and kind)"
            )))
        }
    };
    Ok(StoredRemediation {
        id: from_db(TABLE, id, "id", id)?,
        run: RemediationRun {
            rule: row.rule,
            target: row.target,
            alert_id: row.alert_id,
            dry_run: row.dry_run,
            started_unix_ms: from_db(TABLE, id, "started_unix_ms", row.started_unix_ms)?,
            ended_unix_ms: from_db(TABLE, id, "ended_unix_ms", row.ended_unix_ms)?,
            result,
            steps,
        },
    })
}

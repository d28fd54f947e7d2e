//! Alerts in the store: the current state of every alert, so that after a restart a firing
//! alert is still firing (and is not announced again), and so that a person's acknowledgement
//! outlives the process that took it.
//!
//! One row per alert id (the fingerprint of its labels): [`Store::save_alert`] replaces it.
//! Its state name and severity are columns (for "what is firing?" queries and retention), its
//! labels and annotations JSON text (any label set, no migration). Transitions themselves are
//! events and go to the events table like every other event.
//!
//! An acknowledgement belongs to one episode of an alert: from the moment it becomes pending
//! or firing until it is resolved. The monitor saves alerts without knowing about acks taken
//! through the API meanwhile, so saving a record whose `ack` is `None` keeps the stored ack,
//! unless the save starts a new episode (the stored alert was inactive or resolved and the new
//! one is pending or firing), which clears it. A record that carries an ack always sets it.

use ballast_core::{Ack, AlertRecord, AlertSource, AlertState, Labels, Severity};
use std::collections::BTreeMap;

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::to_db;

const TABLE: &str = "alerts";

const COLUMNS: &str = "id, rule, labels, annotations, state, severity, source, value, threshold, \
                       since_unix_ms, updated_unix_ms, ack_by, ack_comment, ack_unix_ms";

/// The states that make an alert active (what `ballast alerts` lists by default).
const ACTIVE: &str = "('pending', 'firing')";

/// The states an alert is quiet in: a record leaving one of them starts a new episode.
const QUIET: &str = "('inactive', 'resolved')";

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: String,
    rule: String,
    labels: String,
    annotations: String,
    state: String,
    severity: Option<String>,
    source: String,
    value: Option<f64>,
    threshold: Option<f64>,
    since_unix_ms: i64,
    updated_unix_ms: i64,
    ack_by: Option<String>,
    ack_comment: Option<String>,
    ack_unix_ms: Option<i64>,
}

impl Store {
    /// Stores `alert` as the current state of the alert with its id, inserting or replacing
    /// the row (see the module doc for what happens to an ack the record does not carry). A NaN
    /// value or threshold is stored as no value.
    pub async fn save_alert(&self, alert: &AlertRecord) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&alert.labels).map_err(StoreError::Encode)?;
        let annotations = serde_json::to_string(&alert.annotations).map_err(StoreError::Encode)?;
        let since = to_db("since_unix_ms", alert.since_unix_ms)?;
        let updated = to_db("updated_unix_ms", alert.updated_unix_ms)?;
        let ack_at = alert
            .ack
            .as_ref()
            .map(|a| to_db("ack.at_unix_ms", a.at_unix_ms))
            .transpose()?;
        let source = source_name(alert.source)?;
        let keep_ack = |column: &str| {
            format!(
                "{column} = CASE WHEN excluded.ack_unix_ms IS NOT NULL THEN excluded.{column} \
                 WHEN alerts.state IN {QUIET} AND excluded.state IN {ACTIVE} THEN NULL \
                 ELSE alerts.{column} END"
            )
        };
        let sql = format!(
            "INSERT INTO alerts ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, labels = excluded.labels, \
             annotations = excluded.annotations, state = excluded.state, \
             severity = excluded.severity, source = excluded.source, value = excluded.value, \
             threshold = excluded.threshold, since_unix_ms = excluded.since_unix_ms, \
             updated_unix_ms = excluded.updated_unix_ms, {}, {}, {}",
            keep_ack("ack_by"),
            keep_ack("ack_comment"),
            keep_ack("ack_unix_ms"),
        );
        on_pool!(self, p => sqlx::query(&sql)
            .bind(alert.id.as_str())
            .bind(alert.rule.as_str())
            .bind(labels.as_str())
            .bind(annotations.as_str())
            .bind(alert.state.name())
            .bind(alert.state.severity().map(Severity::name))
            .bind(source.as_str())
            .bind(alert.value.filter(|v| !v.is_nan()))
            .bind(alert.threshold.filter(|v| !v.is_nan()))
            .bind(since)
            .bind(updated)
            .bind(alert.ack.as_ref().map(|a| a.by.as_str()))
            .bind(alert.ack.as_ref().map(|a| a.comment.as_str()))
            .bind(ack_at)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Every stored alert (only the pending and firing ones when `active_only`), ordered by
    /// rule, then labels.
    pub async fn alerts(&self, active_only: bool) -> Result<Vec<AlertRecord>, StoreError> {
        let filter = if active_only {
            format!(" WHERE state IN {ACTIVE}")
        } else {
            String::new()
        };
        let sql = format!("SELECT {COLUMNS} FROM alerts{filter}");
        let rows: Vec<AlertRow> = on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await)
            .map_err(|e| self.err(e))?;
        let mut alerts = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, not in SQL: the two backends collate text differently.
        alerts.sort_by(|a, b| (&a.rule, &a.labels, &a.id).cmp(&(&b.rule, &b.labels, &b.id)));
        Ok(alerts)
    }

    /// The alert with this id, if it is stored.
    pub async fn alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = $1");
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        row.map(decode).transpose()
    }

    /// Records `ack` on the alert with this id (replacing an earlier ack) and returns the
    /// alert as now stored; [`StoreError::NotFound`] when no alert has this id.
    pub async fn ack_alert(&self, id: &str, ack: Ack) -> Result<AlertRecord, StoreError> {
        let at = to_db("at_unix_ms", ack.at_unix_ms)?;
        let sql = format!(
            "UPDATE alerts SET ack_by = $2, ack_comment = $3, ack_unix_ms = $4 \
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row: Option<AlertRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(id)
            .bind(ack.by.as_str())
            .bind(ack.comment.as_str())
            .bind(at)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        match row {
            Some(row) => decode(row),
            None => Err(StoreError::NotFound {
                what: "alert",
                id: id.to_string(),
            }),
        }
    }

    /// Retention: deletes the quiet alerts (resolved, or inactive again after pending) that
    /// entered that state before `before_unix_ms`, and returns how many. Active alerts are
    /// never deleted, however old.
    pub async fn delete_alerts_resolved_before(
        &self,
        before_unix_ms: u64,
    ) -> Result<u64, StoreError> {
        let before = to_db("before_unix_ms", before_unix_ms)?;
        let sql = format!("DELETE FROM alerts WHERE state IN {QUIET} AND since_unix_ms < $1");
        on_pool!(self, p => sqlx::query(&sql)
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))
    }
}

/// The source's serde name (`rule`, `alertmanager`), so the column can never disagree with
/// the JSON the API shows.
fn source_name(source: AlertSource) -> Result<String, StoreError> {
    match serde_json::to_value(source).map_err(StoreError::Encode)? {
        serde_json::Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

fn decode(row: AlertRow) -> Result<AlertRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: TABLE,
        id: 0,
        reason: format!("alert {:?}: {reason}", row.id),
    };
    let labels: Labels =
        serde_json::from_str(&row.labels).map_err(|e| corrupt(format!("labels: {e}")))?;
    let annotations: BTreeMap<String, String> =
        serde_json::from_str(&row.annotations).map_err(|e| corrupt(format!("annotations: {e}")))?;
    let state = match (row.state.as_str(), row.severity.as_deref()) {
        ("inactive", _) => AlertState::Inactive,
        ("pending", _) => AlertState::Pending,
        ("resolved", _) => AlertState::Resolved,
        ("firing", Some(s)) => AlertState::Firing {
            severity: Severity::parse(s).ok_or_else(|| corrupt(format!("severity {s:?}")))?,
        },
        ("firing", None) => return Err(corrupt("firing without a severity".to_string())),
        (other, _) => return Err(corrupt(format!("state {other:?}"))),
    };
    let source: AlertSource = serde_json::from_value(serde_json::Value::String(row.source.clone()))
        .map_err(|_| corrupt(format!("source {:?}", row.source)))?;
    let unsigned = |field: &str, v: i64| {
        u64::try_from(v).map_err(|_| corrupt(format!("{field} is negative ({v})")))
    };
    let ack = match row.ack_unix_ms {
        Some(at) => Some(Ack {
            by: row.ack_by.unwrap_or_default(),
            comment: row.ack_comment.unwrap_or_default(),
            at_unix_ms: unsigned("ack_unix_ms", at)?,
        }),
        None => None,
    };
    let since_unix_ms = unsigned("since_unix_ms", row.since_unix_ms)?;
    let updated_unix_ms = unsigned("updated_unix_ms", row.updated_unix_ms)?;
    Ok(AlertRecord {
        since_unix_ms,
        updated_unix_ms,
        id: row.id,
        rule: row.rule,
        labels,
        annotations,
        state,
        source,
        value: row.value,
        threshold: row.threshold,
        ack,
    })
}

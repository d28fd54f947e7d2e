//! Config versions: every config offered to the gateway, applied or refused, with its full
//! text, so that history, diff and "roll back to the previous good version" need nothing but
//! the store.

use ballast_core::{ConfigOutcome, ConfigSummary, ConfigVersion, NewConfigVersion, Origin};

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};
use crate::sha256_hex;

const COLUMNS: &str = "id, text, sha256, source, at_unix_ms, host, instance, outcome, error";

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: i64,
    text: String,
    sha256: String,
    source: String,
    at_unix_ms: i64,
    host: String,
    instance: String,
    outcome: String,
    error: Option<String>,
}

/// A [`VersionRow`] without the text.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    sha256: String,
    source: String,
    at_unix_ms: i64,
    host: String,
    instance: String,
    outcome: String,
    error: Option<String>,
}

impl Store {
    /// Records a config version and returns it with its id (greater than every earlier one)
    /// and the sha256 of its text.
    pub async fn record_config(&self, v: NewConfigVersion) -> Result<ConfigVersion, StoreError> {
        let sha256 = sha256_hex(&v.text);
        let at = to_db("at_unix_ms", v.at_unix_ms)?;
        let error = match &v.outcome {
            ConfigOutcome::Applied => None,
            ConfigOutcome::Refused { error } => Some(error.as_str()),
        };
        let id: i64 = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO config_versions \
             (text, sha256, source, at_unix_ms, host, instance, outcome, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(v.text.as_str())
        .bind(sha256.as_str())
        .bind(v.source.name())
        .bind(at)
        .bind(v.host.as_str())
        .bind(v.instance.as_str())
        .bind(v.outcome.name())
        .bind(error)
        .fetch_one(p)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(ConfigVersion {
            id: from_db("config_versions", id, "id", id)?,
            text: v.text,
            sha256,
            source: v.source,
            at_unix_ms: v.at_unix_ms,
            host: v.host,
            instance: v.instance,
            outcome: v.outcome,
        })
    }

    /// The newest `limit` config versions (all instances), newest first.
    pub async fn config_versions(&self, limit: u32) -> Result<Vec<ConfigVersion>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM config_versions ORDER BY id DESC LIMIT $1");
        let rows: Vec<VersionRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// The newest `limit` config versions (all instances) offered at or after `since_unix_ms`,
    /// newest first, without their texts: what the change timeline shows.
    pub async fn config_summaries_since(
        &self,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<Vec<ConfigSummary>, StoreError> {
        let since = to_db("since_unix_ms", since_unix_ms)?;
        let rows: Vec<SummaryRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, sha256, source, at_unix_ms, host, instance, outcome, error \
             FROM config_versions WHERE at_unix_ms >= $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| {
                decode(VersionRow {
                    id: r.id,
                    text: String::new(),
                    sha256: r.sha256,
                    source: r.source,
                    at_unix_ms: r.at_unix_ms,
                    host: r.host,
                    instance: r.instance,
                    outcome: r.outcome,
                    error: r.error,
                })
                .map(ConfigSummary::from)
            })
            .collect()
    }

    /// The config version with this id, if it exists (and was not pruned).
    pub async fn config_version(&self, id: u64) -> Result<Option<ConfigVersion>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM config_versions WHERE id = $1");
        let id = to_db("id", id)?;
        let row: Option<VersionRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        row.map(decode).transpose()
    }

    /// The newest applied version with an id below `before_id`, from `instance` when given:
    /// the target of "roll back to the previous good version". Refused versions are skipped.
    pub async fn previous_applied(
        &self,
        before_id: u64,
        instance: Option<&str>,
    ) -> Result<Option<ConfigVersion>, StoreError> {
        let before = to_db("before_id", before_id)?;
        self.newest_applied(Some(before), instance).await
    }

    /// The newest applied version, from `instance` when given: the running config of an
    /// instance that records every config it applies.
    pub async fn latest_applied(
        &self,
        instance: Option<&str>,
    ) -> Result<Option<ConfigVersion>, StoreError> {
        self.newest_applied(None, instance).await
    }

    async fn newest_applied(
        &self,
        before: Option<i64>,
        instance: Option<&str>,
    ) -> Result<Option<ConfigVersion>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM config_versions \
             WHERE outcome = 'applied' AND id < $1 AND ($2 = '' OR instance = $2) \
             ORDER BY id DESC LIMIT 1"
        );
        let row: Option<VersionRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(before.unwrap_or(i64::MAX))
            .bind(instance.unwrap_or(""))
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        row.map(decode).transpose()
    }
}

fn decode(row: VersionRow) -> Result<ConfigVersion, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "config_versions",
        id: row.id,
        reason,
    };
    let source =
        Origin::parse(&row.source).ok_or_else(|| corrupt(format!("source {:?}", row.source)))?;
    let outcome = match (row.outcome.as_str(), row.error) {
        ("applied", _) => ConfigOutcome::Applied,
        ("refused", error) => ConfigOutcome::Refused {
            error: error.unwrap_or_default(),
        },
        (other, _) => return Err(corrupt(format!("outcome {other:?}"))),
    };
    Ok(ConfigVersion {
        id: from_db("config_versions", row.id, "id", row.id)?,
        text: row.text,
        sha256: row.sha256,
        source,
        at_unix_ms: from_db("config_versions", row.id, "at_unix_ms", row.at_unix_ms)?,
        host: row.host,
        instance: row.instance,
        outcome,
    })
}

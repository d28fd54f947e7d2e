//! Change markers: deploys, flag switches, data migrations, infrastructure changes and notes
//! posted by people and pipelines, so that "what changed recently?" has an answer when an
//! incident starts.

use ballast_core::{Change, ChangeKind, NewChange};

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

#[derive(sqlx::FromRow)]
struct ChangeRow {
    id: i64,
    kind: String,
    service: Option<String>,
    version: Option<String>,
    summary: String,
    author: Option<String>,
    url: Option<String>,
    at_unix_ms: i64,
}

impl Store {
    /// Records a change marker and returns it with its id.
    pub async fn record_change(&self, c: NewChange) -> Result<Change, StoreError> {
        let at = to_db("at_unix_ms", c.at_unix_ms)?;
        let id: i64 = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO changes (kind, service, version, summary, author, url, at_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(c.kind.name())
        .bind(c.service.as_deref())
        .bind(c.version.as_deref())
        .bind(c.summary.as_str())
        .bind(c.author.as_deref())
        .bind(c.url.as_deref())
        .bind(at)
        .fetch_one(p)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(Change {
            id: from_db("changes", id, "id", id)?,
            marker: c,
        })
    }

    /// The newest `limit` change markers that happened at or after `since_unix_ms`, newest
    /// first (by time, then by id for markers of the same millisecond).
    pub async fn changes_since(
        &self,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let since = to_db("since_unix_ms", since_unix_ms)?;
        let rows: Vec<ChangeRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, kind, service, version, summary, author, url, at_unix_ms FROM changes \
             WHERE at_unix_ms >= $1 ORDER BY at_unix_ms DESC, id DESC LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }
}

fn decode(row: ChangeRow) -> Result<Change, StoreError> {
    let kind = ChangeKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
        table: "changes",
        id: row.id,
        reason: format!("kind {:?}", row.kind),
    })?;
    Ok(Change {
        id: from_db("changes", row.id, "id", row.id)?,
        marker: NewChange {
            kind,
            service: row.service,
            version: row.version,
            summary: row.summary,
            author: row.author,
            url: row.url,
            at_unix_ms: from_db("changes", row.id, "at_unix_ms", row.at_unix_ms)?,
        },
    })
}

//! Silences in the store: set through the API and CLI, they must outlive a restart and be seen
//! by every instance sharing the database, and they end on their own (their end time) or early
//! (`ballast silence expire`, which moves the end to that moment; the row stays, so the API can
//! still show who silenced what).
//!
//! The matchers are JSON text: the store keeps them, `ballast-monitor` decides what they match.

use ballast_core::{Matcher, NewSilence, Silence};

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

const TABLE: &str = "silences";

const COLUMNS: &str =
    "id, matchers, starts_unix_ms, ends_unix_ms, author, comment, created_unix_ms";

#[derive(sqlx::FromRow)]
struct SilenceRow {
    id: i64,
    matchers: String,
    starts_unix_ms: i64,
    ends_unix_ms: i64,
    author: String,
    comment: String,
    created_unix_ms: i64,
}

impl Store {
    /// Stores a new silence created at `now_unix_ms` and returns it with the id the database
    /// gave it (greater than every earlier one). A silence that does not end after it starts
    /// is refused as [`StoreError::InvalidValue`].
    pub async fn add_silence(
        &self,
        silence: NewSilence,
        now_unix_ms: u64,
    ) -> Result<Silence, StoreError> {
        if silence.ends_unix_ms <= silence.starts_unix_ms {
            return Err(StoreError::InvalidValue {
                field: "ends_unix_ms",
                reason: format!(
                    "the silence ends ({}) before it starts ({})",
                    silence.ends_unix_ms, silence.starts_unix_ms
                ),
            });
        }
        let matchers = serde_json::to_string(&silence.matchers).map_err(StoreError::Encode)?;
        let starts = to_db("starts_unix_ms", silence.starts_unix_ms)?;
        let ends = to_db("ends_unix_ms", silence.ends_unix_ms)?;
        let created = to_db("now_unix_ms", now_unix_ms)?;
        let id: i64 = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO silences \
             (matchers, starts_unix_ms, ends_unix_ms, author, comment, created_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(matchers.as_str())
        .bind(starts)
        .bind(ends)
        .bind(silence.author.as_str())
        .bind(silence.comment.as_str())
        .bind(created)
        .fetch_one(p)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(Silence {
            id: from_db(TABLE, id, "id", id)?,
            silence,
            created_unix_ms: now_unix_ms,
        })
    }

    /// The silences by id, oldest first: those not yet over at `now_unix_ms` (active ones and
    /// ones that start later), or every stored one when `include_expired`.
    pub async fn silences(
        &self,
        include_expired: bool,
        now_unix_ms: u64,
    ) -> Result<Vec<Silence>, StoreError> {
        // Every stored end is >= 0, so i64::MIN keeps them all.
        let ends_after = if include_expired {
            i64::MIN
        } else {
            to_db("now_unix_ms", now_unix_ms)?
        };
        let sql = format!("SELECT {COLUMNS} FROM silences WHERE ends_unix_ms > $1 ORDER BY id");
        let rows: Vec<SilenceRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(ends_after)
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Ends the silence with this id at `now_unix_ms` (if it would end later) and returns it
    /// as now stored; [`StoreError::NotFound`] when no silence has this id. Expiring an
    /// expired silence changes nothing.
    pub async fn expire_silence(&self, id: u64, now_unix_ms: u64) -> Result<Silence, StoreError> {
        let not_found = || StoreError::NotFound {
            what: "silence",
            id: id.to_string(),
        };
        // An id no row can have is simply not found.
        let Ok(db_id) = i64::try_from(id) else {
            return Err(not_found());
        };
        let now = to_db("now_unix_ms", now_unix_ms)?;
        let sql = format!(
            "UPDATE silences SET ends_unix_ms = CASE WHEN ends_unix_ms > $2 THEN $2 \
             ELSE ends_unix_ms END WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row: Option<SilenceRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(db_id)
            .bind(now)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        row.map(decode).transpose()?.ok_or_else(not_found)
    }

    /// Retention: deletes the silences that ended before `before_unix_ms`, and returns how
    /// many.
    pub async fn delete_silences_ended_before(
        &self,
        before_unix_ms: u64,
    ) -> Result<u64, StoreError> {
        let before = to_db("before_unix_ms", before_unix_ms)?;
        on_pool!(self, p => sqlx::query("DELETE FROM silences WHERE ends_unix_ms < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))
    }
}

fn decode(row: SilenceRow) -> Result<Silence, StoreError> {
    let matchers: Vec<Matcher> =
        serde_json::from_str(&row.matchers).map_err(|e| StoreError::Corrupt {
            table: TABLE,
            id: row.id,
            reason: format!("matchers: {e}"),
        })?;
    Ok(Silence {
        id: from_db(TABLE, row.id, "id", row.id)?,
        silence: NewSilence {
            matchers,
            starts_unix_ms: from_db(TABLE, row.id, "starts_unix_ms", row.starts_unix_ms)?,
            ends_unix_ms: from_db(TABLE, row.id, "ends_unix_ms", row.ends_unix_ms)?,
            author: row.author,
            comment: row.comment,
        },
        created_unix_ms: from_db(TABLE, row.id, "created_unix_ms", row.created_unix_ms)?,
    })
}

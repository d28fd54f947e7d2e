//! Incidents: one row per incident, the whole incident as JSON plus a few summary columns.
//!
//! It exists so that incidents survive a gateway restart (issue 14) without the store
//! depending on `ballast-incident` (which owns the incident's shape and rules): the caller
//! serializes its `Incident` into `body_json` and passes the columns lists and retention need
//! (title, severity, status, times) alongside, in a [`NewIncident`]. The store never reads the
//! body; it only gives it back.
//!
//! An incident's id is the row's id, and the body holds it too. [`Store::create_incident`]
//! therefore asks the caller for the body once the id is known, in the same transaction, so
//! no row ever holds a body with another id. Retention deletes only closed incidents
//! ([`Store::prune_incidents`]); an open one is kept however old.

use ballast_core::incident::{Sev, Status};

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

const TABLE: &str = "incidents";

const COLUMNS: &str = "id, title, severity, status, opened_unix_ms, closed_unix_ms, \
     updated_unix_ms, body_json";

/// What the store keeps of an incident, besides its id: copies of the fields lists and
/// retention need, and the incident itself as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    pub title: String,
    pub severity: Sev,
    pub status: Status,
    pub opened_unix_ms: u64,
    /// When it was closed; `None` while it is open.
    pub closed_unix_ms: Option<u64>,
    /// When it was last edited.
    pub updated_unix_ms: u64,
    /// The whole incident, as `ballast-incident` serializes it.
    pub body_json: String,
}

/// A stored incident: its id and what was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIncident {
    pub id: u64,
    pub incident: NewIncident,
}

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: i64,
    title: String,
    severity: String,
    status: String,
    opened_unix_ms: i64,
    closed_unix_ms: Option<i64>,
    updated_unix_ms: i64,
    body_json: String,
}

/// A [`NewIncident`]'s columns as the store holds them.
struct Columns<'a> {
    title: &'a str,
    severity: &'static str,
    status: &'static str,
    opened: i64,
    closed: Option<i64>,
    updated: i64,
}

impl<'a> Columns<'a> {
    fn of(new: &'a NewIncident) -> Result<Self, StoreError> {
        Ok(Columns {
            title: &new.title,
            severity: new.severity.name(),
            status: new.status.name(),
            opened: to_db("opened_unix_ms", new.opened_unix_ms)?,
            closed: new
                .closed_unix_ms
                .map(|v| to_db("closed_unix_ms", v))
                .transpose()?,
            updated: to_db("updated_unix_ms", new.updated_unix_ms)?,
        })
    }
}

impl Store {
    /// Creates an incident and returns its id. `new.body_json` is ignored: once the row has
    /// its id, `body` is called with it and its answer is stored as the body, in the same
    /// transaction (an error from `body` creates nothing).
    pub async fn create_incident<F>(&self, new: &NewIncident, body: F) -> Result<u64, StoreError>
    where
        F: FnOnce(u64) -> Result<String, serde_json::Error>,
    {
        let c = Columns::of(new)?;
        let outcome: Result<Result<u64, StoreError>, sqlx::Error> = on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO incidents (title, severity, status, opened_unix_ms, \
                 closed_unix_ms, updated_unix_ms, body_json) \
                 VALUES ($1, $2, $3, $4, $5, $6, '') RETURNING id",
            )
            .bind(c.title)
            .bind(c.severity)
            .bind(c.status)
            .bind(c.opened)
            .bind(c.closed)
            .bind(c.updated)
            .fetch_one(&mut *tx)
            .await?;
            let text = match from_db(TABLE, id, "id", id)
                .and_then(|id| body(id).map_err(StoreError::Encode))
            {
                Ok(text) => text,
                Err(e) => {
                    tx.rollback().await?;
                    return Ok(Err(e));
                }
            };
            sqlx::query("UPDATE incidents SET body_json = $2 WHERE id = $1")
                .bind(id)
                .bind(text.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(from_db(TABLE, id, "id", id))
        }
        .await);
        outcome.map_err(|e| self.err(e))?
    }

    /// Replaces incident `id`'s body and summary columns with `new`;
    /// [`StoreError::NotFound`] when there is no such incident.
    pub async fn save_incident(&self, id: u64, new: &NewIncident) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound {
            what: "incident",
            id: id.to_string(),
        };
        let Ok(db_id) = i64::try_from(id) else {
            return Err(not_found());
        };
        let c = Columns::of(new)?;
        let changed = on_pool!(self, p => sqlx::query(
            "UPDATE incidents SET title = $2, severity = $3, status = $4, opened_unix_ms = $5, \
             closed_unix_ms = $6, updated_unix_ms = $7, body_json = $8 WHERE id = $1",
        )
        .bind(db_id)
        .bind(c.title)
        .bind(c.severity)
        .bind(c.status)
        .bind(c.opened)
        .bind(c.closed)
        .bind(c.updated)
        .bind(new.body_json.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        if changed == 0 {
            return Err(not_found());
        }
        Ok(())
    }

    /// The incident with this id, if any.
    pub async fn incident(&self, id: u64) -> Result<Option<StoredIncident>, StoreError> {
        let Ok(db_id) = i64::try_from(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let row: Option<IncidentRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(db_id)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        row.map(decode).transpose()
    }

    /// At most `limit` incidents, with status `status` when given, newest opened first.
    pub async fn incidents(
        &self,
        status: Option<Status>,
        limit: u32,
    ) -> Result<Vec<StoredIncident>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE ($1 IS NULL OR status = $1) \
             ORDER BY opened_unix_ms DESC, id DESC LIMIT $2"
        );
        let rows: Vec<IncidentRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(status.map(Status::name))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Every incident that is not closed, oldest opened first: what a restart reloads (alerts
    /// keep joining them, their timelines keep growing).
    pub async fn open_incidents(&self) -> Result<Vec<StoredIncident>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE status <> 'closed' \
             ORDER BY opened_unix_ms, id"
        );
        let rows: Vec<IncidentRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Retention: deletes at most `batch` closed incidents closed before
    /// `older_than_unix_ms`, oldest ids first, and returns how many. Open incidents are never
    /// deleted, however old.
    pub async fn prune_incidents(
        &self,
        older_than_unix_ms: u64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = to_db("older_than_unix_ms", older_than_unix_ms)?;
        self.delete_batch(
            "DELETE FROM incidents WHERE id IN (SELECT id FROM incidents \
             WHERE status = 'closed' AND closed_unix_ms < $1 ORDER BY id LIMIT $2)",
            cutoff,
            batch,
        )
        .await
    }
}

fn decode(row: IncidentRow) -> Result<StoredIncident, StoreError> {
    let id = row.id;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: TABLE,
        id,
        reason,
    };
    let severity: Sev = serde_json::from_value(serde_json::Value::String(row.severity.clone()))
        .map_err(|_| corrupt(format!("severity {:?}", row.severity)))?;
    let status =
        Status::parse(&row.status).ok_or_else(|| corrupt(format!("status {:?}", row.status)))?;
    let closed_unix_ms = row
        .closed_unix_ms
        .map(|v| from_db(TABLE, id, "closed_unix_ms", v))
        .transpose()?;
    Ok(StoredIncident {
        id: from_db(TABLE, id, "id", id)?,
        incident: NewIncident {
            title: row.title,
            severity,
            status,
            opened_unix_ms: from_db(TABLE, id, "opened_unix_ms", row.opened_unix_ms)?,
            closed_unix_ms,
            updated_unix_ms: from_db(TABLE, id, "updated_unix_ms", row.updated_unix_ms)?,
            body_json: row.body_json,
        },
    })
}

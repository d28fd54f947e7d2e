//! Events in the store: batched inserts from the event sink, and filtered reads for the API,
//! the incident timeline and the tests.
//!
//! Each event keeps its kind as a column (for "by kind" queries and counts) and the whole
//! [`Event`] as JSON text, so that new event kinds and fields need no migration.

use ballast_core::{Event, EventQuery, Stamped, StoredEvent};
use sqlx::QueryBuilder;

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, limit, to_db};

/// Rows per INSERT statement: well under both backends' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 200;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    instance: String,
    seq: i64,
    at_unix_ms: i64,
    body: String,
}

struct NewRow {
    seq: i64,
    at_unix_ms: i64,
    kind: String,
    body: String,
}

/// The filters of an [`EventQuery`] as store integers.
struct Filter<'q> {
    after_id: Option<i64>,
    since: Option<i64>,
    kind: Option<&'q str>,
    kinds: &'q [String],
    instance: Option<&'q str>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q EventQuery) -> Result<Self, StoreError> {
        Ok(Filter {
            after_id: query.after_id.map(|v| to_db("after_id", v)).transpose()?,
            since: query
                .since_unix_ms
                .map(|v| to_db("since_unix_ms", v))
                .transpose()?,
            kind: query.kind.as_deref(),
            kinds: &query.kinds,
            instance: query.instance.as_deref(),
        })
    }
}

/// Appends `WHERE ...` for `filter` to a query on `events`, for either backend.
macro_rules! push_filter {
    ($qb:expr, $filter:expr) => {{
        let filter = $filter;
        $qb.push(" WHERE 1 = 1");
        if let Some(v) = filter.after_id {
            $qb.push(" AND id > ").push_bind(v);
        }
        if let Some(v) = filter.since {
            $qb.push(" AND at_unix_ms >= ").push_bind(v);
        }
        if let Some(v) = filter.kind {
            $qb.push(" AND kind = ").push_bind(v);
        }
        if !filter.kinds.is_empty() {
            $qb.push(" AND kind IN (");
            let mut kinds = $qb.separated(", ");
            for k in filter.kinds {
                kinds.push_bind(k.as_str());
            }
            $qb.push(")");
        }
        if let Some(v) = filter.instance {
            $qb.push(" AND instance = ").push_bind(v);
        }
    }};
}

impl Store {
    /// Stores `events` from `instance` in one transaction: all of them or none.
    pub async fn insert_events(
        &self,
        instance: &str,
        events: &[Stamped],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events
            .iter()
            .map(|e| {
                let (kind, body) = encode(&e.event)?;
                Ok(NewRow {
                    seq: to_db("seq", e.seq)?,
                    at_unix_ms: to_db("at_unix_ms", e.at_unix_ms)?,
                    kind,
                    body,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO events (instance, seq, at_unix_ms, kind, body) ",
                );
                qb.push_values(chunk, |mut b, row| {
                    b.push_bind(instance)
                        .push_bind(row.seq)
                        .push_bind(row.at_unix_ms)
                        .push_bind(row.kind.as_str())
                        .push_bind(row.body.as_str());
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err(e))
    }

    /// The stored events matching `query`, by store id (oldest first unless
    /// `query.newest_first`).
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = Filter::new(query)?;
        let order = if query.newest_first { "DESC" } else { "ASC" };
        let rows: Vec<EventRow> = on_pool!(self, p => {
            let mut qb = QueryBuilder::new(
                "SELECT id, instance, seq, at_unix_ms, body FROM events",
            );
            push_filter!(qb, &filter);
            qb.push(format!(" ORDER BY id {order} LIMIT "))
                .push_bind(limit(query.limit));
            qb.build_query_as::<EventRow>().fetch_all(p).await
        })
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// How many stored events match `query` (its limit and order are ignored).
    pub async fn count_events(&self, query: &EventQuery) -> Result<u64, StoreError> {
        let filter = Filter::new(query)?;
        let n: i64 = on_pool!(self, p => {
            let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM events");
            push_filter!(qb, &filter);
            qb.build_query_scalar::<i64>().fetch_one(p).await
        })
        .map_err(|e| self.err(e))?;
        from_db("events", 0, "count", n)
    }
}

/// The event's kind (its serde tag, so it can never disagree with the JSON) and its JSON text.
fn encode(event: &Event) -> Result<(String, String), StoreError> {
    let value = serde_json::to_value(event).map_err(StoreError::Encode)?;
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("unknown")
        .to_string();
    let body = serde_json::to_string(&value).map_err(StoreError::Encode)?;
    Ok((kind, body))
}

fn decode(row: EventRow) -> Result<StoredEvent, StoreError> {
    let event: Event = serde_json::from_str(&row.body).map_err(|e| StoreError::Corrupt {
        table: "events",
        id: row.id,
        reason: e.to_string(),
    })?;
    Ok(StoredEvent {
        id: from_db("events", row.id, "id", row.id)?,
        instance: row.instance,
        stamped: Stamped {
            seq: from_db("events", row.id, "seq", row.seq)?,
            at_unix_ms: from_db("events", row.id, "at_unix_ms", row.at_unix_ms)?,
            event,
        },
    })
}

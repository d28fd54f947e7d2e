//! The notification outbox: every notification is a row here before any receiver sees it.
//!
//! It exists so that nothing is lost (DESIGN.md §9): a notification survives a restart and a
//! receiver's outage, and is delivered once. "Once" rests on two things: `dedup_key` is unique
//! (a flush replayed after a restart enqueues nothing new), and a delivered row is final, so it
//! is never due again. The same rows are the notification log of `GET /api/v1/notifications`.
//!
//! A row's state machine (only a PENDING row changes; every other state is final):
//!
//! ```text
//!   enqueue ──▶ PENDING ───mark_delivered──────────────────────────────▶ DELIVERED
//!               │  ▲  │
//!  mark_attempt │  │  └──mark_expired (expires ≤ now)────────────────────▶ EXPIRED
//!  (error, next │  │
//!   attempt at) └──┘ (not_before := next attempt)
//!               │
//!               └──mark_attempt (error, no next attempt)─────────────────▶ FAILED
//! ```
//!
//! `due` returns PENDING rows with `not_before ≤ now < expires`, oldest first. Marking a row
//! that is no longer PENDING (another instance delivered it, it expired) changes nothing and
//! says so (`false`). `due` does not claim rows: with several instances on one PostgreSQL,
//! only the leader (DESIGN.md §5, the advisory lock) runs delivery.

use ballast_core::{NewNotification, Notification, NotificationLog, NotificationState};

use crate::error::StoreError;
use crate::open::Store;
use crate::rows::{from_db, to_db};

const TABLE: &str = "notifications";

const COLUMNS: &str = "id, receiver, group_key, payload_json, dedup_key, created_unix_ms, \
     not_before_unix_ms, expires_unix_ms, state, attempts, last_attempt_unix_ms, last_error, \
     delivered_unix_ms, answer";

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: i64,
    receiver: String,
    group_key: String,
    payload_json: String,
    dedup_key: String,
    created_unix_ms: i64,
    not_before_unix_ms: i64,
    expires_unix_ms: i64,
    state: String,
    attempts: i64,
    last_attempt_unix_ms: Option<i64>,
    last_error: Option<String>,
    delivered_unix_ms: Option<i64>,
    answer: Option<String>,
}

impl Store {
    /// Puts a notification in the outbox as PENDING and returns its id. When a row with the
    /// same `dedup_key` exists (whatever its state), nothing is written and its id is
    /// returned: this is what keeps a replayed flush from being delivered twice.
    pub async fn enqueue(&self, n: &NewNotification) -> Result<u64, StoreError> {
        if n.dedup_key.is_empty() {
            return Err(StoreError::InvalidValue {
                field: "dedup_key",
                reason: "it is empty; every notification needs a key that names it".to_string(),
            });
        }
        let created = to_db("created_unix_ms", n.created_unix_ms)?;
        let not_before = to_db("not_before_unix_ms", n.not_before_unix_ms)?;
        let expires = to_db("expires_unix_ms", n.expires_unix_ms)?;
        let inserted: Option<i64> = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO notifications (receiver, group_key, payload_json, dedup_key, \
             created_unix_ms, not_before_unix_ms, expires_unix_ms, state, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0) \
             ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        )
        .bind(n.receiver.as_str())
        .bind(n.group_key.as_str())
        .bind(n.payload_json.as_str())
        .bind(n.dedup_key.as_str())
        .bind(created)
        .bind(not_before)
        .bind(expires)
        .fetch_optional(p)
        .await)
        .map_err(|e| self.err(e))?;
        let id = match inserted {
            Some(id) => id,
            None => on_pool!(self, p => sqlx::query_scalar::<_, i64>(
                "SELECT id FROM notifications WHERE dedup_key = $1",
            )
            .bind(n.dedup_key.as_str())
            .fetch_one(p)
            .await)
            .map_err(|e| self.err(e))?,
        };
        from_db(TABLE, id, "id", id)
    }

    /// The notification with this id, if any.
    pub async fn notification(&self, id: u64) -> Result<Option<Notification>, StoreError> {
        let Ok(db_id) = i64::try_from(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
        let row: Option<NotificationRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(db_id)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err(e))?;
        row.map(decode).transpose()
    }

    /// At most `limit` PENDING notifications that may be sent at `now_unix_ms`
    /// (`not_before ≤ now < expires`), oldest first (by creation, then id).
    pub async fn due(&self, now_unix_ms: u64, limit: u32) -> Result<Vec<Notification>, StoreError> {
        let now = to_db("now_unix_ms", now_unix_ms)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE state = 'pending' \
             AND not_before_unix_ms <= $1 AND expires_unix_ms > $1 \
             ORDER BY created_unix_ms, id LIMIT $2"
        );
        let rows: Vec<NotificationRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Records a failed attempt at `now_unix_ms`: one more attempt, and `error` as the last
    /// error. With `next_attempt_unix_ms` the row stays PENDING and is not due before then;
    /// without, it is given up (FAILED). Returns whether a PENDING row was changed.
    pub async fn mark_attempt(
        &self,
        id: u64,
        now_unix_ms: u64,
        error: &str,
        next_attempt_unix_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Ok(db_id) = i64::try_from(id) else {
            return Ok(false);
        };
        let now = to_db("now_unix_ms", now_unix_ms)?;
        let (state, next) = match next_attempt_unix_ms {
            Some(next) => (
                NotificationState::Pending,
                Some(to_db("next_attempt_unix_ms", next)?),
            ),
            None => (NotificationState::Failed, None),
        };
        let changed = on_pool!(self, p => sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, last_attempt_unix_ms = $2, \
             last_error = $3, state = $4, \
             not_before_unix_ms = COALESCE($5, not_before_unix_ms) \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(db_id)
        .bind(now)
        .bind(error)
        .bind(state.name())
        .bind(next)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(changed > 0)
    }

    /// Records that the receiver took the notification at `now_unix_ms` with `answer`: one
    /// more attempt, and the row is DELIVERED for good. Returns whether a PENDING row was
    /// changed (`false`: already delivered, given up, expired or unknown).
    pub async fn mark_delivered(
        &self,
        id: u64,
        now_unix_ms: u64,
        answer: &str,
    ) -> Result<bool, StoreError> {
        let Ok(db_id) = i64::try_from(id) else {
            return Ok(false);
        };
        let now = to_db("now_unix_ms", now_unix_ms)?;
        let changed = on_pool!(self, p => sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, last_attempt_unix_ms = $2, \
             delivered_unix_ms = $2, answer = $3, state = 'delivered' \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(db_id)
        .bind(now)
        .bind(answer)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(changed > 0)
    }

    /// Marks EXPIRED every PENDING notification whose maximum age has passed at
    /// `now_unix_ms` (`expires ≤ now`), and returns how many.
    pub async fn mark_expired(&self, now_unix_ms: u64) -> Result<u64, StoreError> {
        let now = to_db("now_unix_ms", now_unix_ms)?;
        on_pool!(self, p => sqlx::query(
            "UPDATE notifications SET state = 'expired' \
             WHERE state = 'pending' AND expires_unix_ms <= $1",
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))
    }

    /// The notification log: at most `limit` notifications created at or after
    /// `since_unix_ms`, newest first.
    pub async fn notification_log(
        &self,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<Vec<NotificationLog>, StoreError> {
        let since = to_db("since_unix_ms", since_unix_ms)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE created_unix_ms >= $1 \
             ORDER BY created_unix_ms DESC, id DESC LIMIT $2"
        );
        let rows: Vec<NotificationRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| decode(r).map(|n| n.log()))
            .collect()
    }

    /// Writes the whole state of a notification delivery keeps in memory, keyed by its
    /// `dedup_key`: inserts it when new, else brings a PENDING row up to `n` (state, attempts,
    /// last attempt and error, delivery, answer, next attempt). A row that is already final
    /// is left as it is. Returns the row as stored afterwards, so the caller learns its id and
    /// whether it had been finished before (a replay after a restart: not to be sent again).
    ///
    /// This is how delivery keeps working through a store outage: it sends from memory and
    /// calls this for every change once the store answers again; the call is idempotent.
    pub async fn sync_notification(&self, n: &Notification) -> Result<Notification, StoreError> {
        if n.new.dedup_key.is_empty() {
            return Err(StoreError::InvalidValue {
                field: "dedup_key",
                reason: "it is empty; every notification needs a key that names it".to_string(),
            });
        }
        let created = to_db("created_unix_ms", n.new.created_unix_ms)?;
        let not_before = to_db("not_before_unix_ms", n.new.not_before_unix_ms)?;
        let expires = to_db("expires_unix_ms", n.new.expires_unix_ms)?;
        let last_attempt = n
            .last_attempt_unix_ms
            .map(|v| to_db("last_attempt_unix_ms", v))
            .transpose()?;
        let delivered = n
            .delivered_unix_ms
            .map(|v| to_db("delivered_unix_ms", v))
            .transpose()?;
        on_pool!(self, p => sqlx::query(
            "INSERT INTO notifications (receiver, group_key, payload_json, dedup_key, \
             created_unix_ms, not_before_unix_ms, expires_unix_ms, state, attempts, \
             last_attempt_unix_ms, last_error, delivered_unix_ms, answer) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (dedup_key) DO UPDATE SET state = excluded.state, \
             attempts = excluded.attempts, last_attempt_unix_ms = excluded.last_attempt_unix_ms, \
             last_error = excluded.last_error, delivered_unix_ms = excluded.delivered_unix_ms, \
             answer = excluded.answer, not_before_unix_ms = excluded.not_before_unix_ms \
             WHERE notifications.state = 'pending'",
        )
        .bind(n.new.receiver.as_str())
        .bind(n.new.group_key.as_str())
        .bind(n.new.payload_json.as_str())
        .bind(n.new.dedup_key.as_str())
        .bind(created)
        .bind(not_before)
        .bind(expires)
        .bind(n.state.name())
        .bind(i64::from(n.attempts))
        .bind(last_attempt)
        .bind(n.last_error.as_deref())
        .bind(delivered)
        .bind(n.answer.as_deref())
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))?;
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE dedup_key = $1");
        let row: NotificationRow = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(n.new.dedup_key.as_str())
            .fetch_one(p)
            .await)
        .map_err(|e| self.err(e))?;
        decode(row)
    }

    /// Every notification (payload included) created at or after `since_unix_ms`, oldest
    /// first, at most `limit`: what a restart reloads (the pending ones to deliver, the sent
    /// ones to know what people have already heard).
    pub async fn notifications_since(
        &self,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let since = to_db("since_unix_ms", since_unix_ms)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE created_unix_ms >= $1 \
             ORDER BY created_unix_ms, id LIMIT $2"
        );
        let rows: Vec<NotificationRow> = on_pool!(self, p => sqlx::query_as(&sql)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode).collect()
    }

    /// Retention: deletes at most `limit` finished (delivered, failed or expired)
    /// notifications created before `before_unix_ms`, oldest first, and returns how many.
    /// PENDING rows are never pruned: they are still owed to someone.
    pub async fn prune_notifications(
        &self,
        before_unix_ms: u64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let before = to_db("before_unix_ms", before_unix_ms)?;
        self.delete_batch(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications \
             WHERE created_unix_ms < $1 AND state <> 'pending' ORDER BY id LIMIT $2)",
            before,
            limit,
        )
        .await
    }
}

fn decode(row: NotificationRow) -> Result<Notification, StoreError> {
    let id = row.id;
    let u = |field: &str, v: i64| from_db(TABLE, id, field, v);
    let opt = |field: &str, v: Option<i64>| v.map(|v| from_db(TABLE, id, field, v)).transpose();
    let state = NotificationState::parse(&row.state).ok_or_else(|| StoreError::Corrupt {
        table: TABLE,
        id,
        reason: format!("state {:?} is not a notification state", row.state),
    })?;
    let attempts = u32::try_from(row.attempts).map_err(|_| StoreError::Corrupt {
        table: TABLE,
        id,
        reason: format!("attempts {} is out of range", row.attempts),
    })?;
    Ok(Notification {
        id: u("id", id)?,
        new: NewNotification {
            receiver: row.receiver,
            group_key: row.group_key,
            payload_json: row.payload_json,
            created_unix_ms: u("created_unix_ms", row.created_unix_ms)?,
            not_before_unix_ms: u("not_before_unix_ms", row.not_before_unix_ms)?,
            expires_unix_ms: u("expires_unix_ms", row.expires_unix_ms)?,
            dedup_key: row.dedup_key,
        },
        state,
        attempts,
        last_attempt_unix_ms: opt("last_attempt_unix_ms", row.last_attempt_unix_ms)?,
        last_error: row.last_error,
        delivered_unix_ms: opt("delivered_unix_ms", row.delivered_unix_ms)?,
        answer: row.answer,
    })
}

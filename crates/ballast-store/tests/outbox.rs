//! Conformance of the notification outbox: every scenario runs, unchanged, on a SQLite file
//! and on the real PostgreSQL in a schema of its own, through the same harness as
//! `conformance.rs`. No mocks. What they pin down is "nothing lost, delivered once": enqueue is
//! idempotent by dedup key, due rows come oldest first and not before their time, attempts are
//! counted, and a delivered row is never due again, even after the store is reopened.

mod harness;

use ballast_core::{NewNotification, NotificationState};
use ballast_store::StoreError;
use harness::{on_postgres, on_sqlite, Db};

/// One `#[tokio::test]` per scenario and backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_postgres(super::$name).await;
                }
            )*
        }
    };
}

conformance!(
    enqueue_is_idempotent_by_dedup_key,
    due_is_oldest_first_and_waits_for_not_before,
    attempts_are_counted_and_failures_final,
    delivered_is_not_due_after_reopen,
    expiry,
    log_and_prune,
);

/// A label value no encoding may mangle.
const AWKWARD: &str = "a \"quoted\" 'value', back\\slash\nnew line = é 日本 🚀";

fn new(receiver: &str, key: &str, created: u64) -> NewNotification {
    NewNotification {
        receiver: receiver.to_string(),
        group_key: format!("{{alertname=\"{key}\"}}"),
        payload_json: format!("{{\"group_key\":\"{key}\",\"text\":{AWKWARD:?}}}"),
        created_unix_ms: created,
        not_before_unix_ms: created,
        expires_unix_ms: created + 3_600_000,
        dedup_key: format!("{receiver}/{key}/{created}"),
    }
}

async fn enqueue_is_idempotent_by_dedup_key(db: Db) {
    let store = &db.store;
    let a = new("web-oncall", "app-5xx", 1000);
    let id = store.enqueue(&a).await.unwrap();
    // The same key again, even with other content, is the same row, unchanged.
    let mut again = a.clone();
    again.payload_json = "{}".to_string();
    again.created_unix_ms = 5000;
    assert_eq!(store.enqueue(&again).await.unwrap(), id);
    let row = store.notification(id).await.unwrap().unwrap();
    assert_eq!(row.new, a);
    assert_eq!(row.state, NotificationState::Pending);
    assert_eq!(row.attempts, 0);
    assert_eq!(store.due(2000, 100).await.unwrap().len(), 1);

    // Another key is another row; a delivered row still dedups.
    let b = new("web-oncall", "disk", 1000);
    let id_b = store.enqueue(&b).await.unwrap();
    assert_ne!(id_b, id);
    assert!(store.mark_delivered(id, 2000, "200 ok").await.unwrap());
    assert_eq!(store.enqueue(&a).await.unwrap(), id);
    let due = store.due(2000, 100).await.unwrap();
    assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), vec![id_b]);

    // An empty key is refused; an unknown id is none.
    let mut empty = a.clone();
    empty.dedup_key.clear();
    assert!(matches!(
        store.enqueue(&empty).await,
        Err(StoreError::InvalidValue {
            field: "dedup_key",
            ..
        })
    ));
    assert_eq!(store.notification(id_b + 1000).await.unwrap(), None);
    assert_eq!(store.notification(u64::MAX).await.unwrap(), None);
}

async fn due_is_oldest_first_and_waits_for_not_before(db: Db) {
    let store = &db.store;
    let late = store.enqueue(&new("r", "late", 3000)).await.unwrap();
    let early = store.enqueue(&new("r", "early", 1000)).await.unwrap();
    let mut later = new("r", "held", 2000);
    later.not_before_unix_ms = 10_000;
    let held = store.enqueue(&later).await.unwrap();

    let ids = |v: Vec<ballast_core::Notification>| v.into_iter().map(|n| n.id).collect::<Vec<_>>();
    assert_eq!(ids(store.due(500, 10).await.unwrap()), Vec::<u64>::new());
    assert_eq!(ids(store.due(1000, 10).await.unwrap()), vec![early]);
    assert_eq!(ids(store.due(5000, 10).await.unwrap()), vec![early, late]);
    assert_eq!(ids(store.due(5000, 1).await.unwrap()), vec![early]);
    // The held one is due from its not_before, in creation order.
    assert_eq!(
        ids(store.due(10_000, 10).await.unwrap()),
        vec![early, held, late]
    );
    assert_eq!(ids(store.due(10_000, 0).await.unwrap()), Vec::<u64>::new());
}

async fn attempts_are_counted_and_failures_final(db: Db) {
    let store = &db.store;
    let id = store.enqueue(&new("slack", "x", 1000)).await.unwrap();
    assert!(store
        .mark_attempt(id, 1000, "503 from slack", Some(2000))
        .await
        .unwrap());
    // Not due before the next attempt.
    assert!(store.due(1999, 10).await.unwrap().is_empty());
    assert!(store
        .mark_attempt(id, 2000, "429 from slack", Some(6000))
        .await
        .unwrap());
    let row = store.notification(id).await.unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(row.state, NotificationState::Pending);
    assert_eq!(row.new.not_before_unix_ms, 6000);
    assert_eq!(row.last_attempt_unix_ms, Some(2000));
    assert_eq!(row.last_error.as_deref(), Some("429 from slack"));
    assert_eq!(store.due(6000, 10).await.unwrap().len(), 1);

    // Given up: final, never due, not markable again.
    assert!(store
        .mark_attempt(id, 6000, "400 invalid_payload", None)
        .await
        .unwrap());
    let row = store.notification(id).await.unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Failed);
    assert_eq!(row.attempts, 3);
    assert!(store.due(u64::MAX >> 2, 10).await.unwrap().is_empty());
    assert!(!store.mark_delivered(id, 7000, "200 ok").await.unwrap());
    assert!(!store.mark_attempt(id, 7000, "x", Some(8000)).await.unwrap());
    assert!(!store.mark_attempt(u64::MAX, 7000, "x", None).await.unwrap());
    assert_eq!(store.notification(id).await.unwrap().unwrap().attempts, 3);
}

async fn delivered_is_not_due_after_reopen(db: Db) {
    let store = &db.store;
    let mut ids = Vec::new();
    for k in ["a", "b", "c"] {
        ids.push(store.enqueue(&new("hook", k, 1000)).await.unwrap());
    }
    let first = ids[0];
    assert!(store.mark_delivered(first, 1500, "200 ok").await.unwrap());
    assert!(!store.mark_delivered(first, 1600, "200 ok").await.unwrap());
    store.close().await;

    // A restart: the two undelivered are still owed, the delivered one is not.
    let reopened = db.reopen().await;
    let due = reopened.due(2000, 10).await.unwrap();
    assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), ids[1..]);
    let row = reopened.notification(first).await.unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Delivered);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.delivered_unix_ms, Some(1500));
    assert_eq!(row.answer.as_deref(), Some("200 ok"));
    // Replaying the flush after the restart enqueues nothing new.
    assert_eq!(
        reopened.enqueue(&new("hook", "a", 1000)).await.unwrap(),
        first
    );
    assert_eq!(reopened.due(2000, 10).await.unwrap().len(), 2);
    reopened.close().await;
}

async fn expiry(db: Db) {
    let store = &db.store;
    let mut short = new("r", "short", 1000);
    short.expires_unix_ms = 2000;
    let short = store.enqueue(&short).await.unwrap();
    let long = store.enqueue(&new("r", "long", 1000)).await.unwrap();
    // Past its expiry a row is not due, even before it is marked.
    let due = store.due(2000, 10).await.unwrap();
    assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), vec![long]);
    assert_eq!(store.mark_expired(1999).await.unwrap(), 0);
    assert_eq!(store.mark_expired(2000).await.unwrap(), 1);
    assert_eq!(store.mark_expired(2000).await.unwrap(), 0);
    let row = store.notification(short).await.unwrap().unwrap();
    assert_eq!(row.state, NotificationState::Expired);
    assert!(!store.mark_delivered(short, 2500, "late").await.unwrap());
    // A delivered row never expires.
    assert!(store.mark_delivered(long, 2500, "ok").await.unwrap());
    assert_eq!(store.mark_expired(u64::MAX >> 2).await.unwrap(), 0);
}

async fn log_and_prune(db: Db) {
    let store = &db.store;
    let a = store.enqueue(&new("slack", "a", 1000)).await.unwrap();
    let b = store.enqueue(&new("email", "b", 2000)).await.unwrap();
    let c = store.enqueue(&new("hook", "c", 3000)).await.unwrap();
    store.mark_delivered(a, 1100, "200 ok").await.unwrap();
    store
        .mark_attempt(b, 2100, "relay refused", None)
        .await
        .unwrap();

    let log = store.notification_log(0, 10).await.unwrap();
    assert_eq!(log.iter().map(|l| l.id).collect::<Vec<_>>(), vec![c, b, a]);
    let (lc, lb, la) = (&log[0], &log[1], &log[2]);
    assert_eq!(la.receiver, "slack");
    assert_eq!(la.state, NotificationState::Delivered);
    assert_eq!(la.result.as_deref(), Some("200 ok"));
    assert_eq!(la.attempts, 1);
    assert_eq!(lb.state, NotificationState::Failed);
    assert_eq!(lb.result.as_deref(), Some("relay refused"));
    assert_eq!(lc.state, NotificationState::Pending);
    assert_eq!(lc.result, None);
    assert_eq!(lc.group_key, "{alertname=\"c\"}");
    let recent = store.notification_log(2000, 1).await.unwrap();
    assert_eq!(recent.iter().map(|l| l.id).collect::<Vec<_>>(), vec![c]);

    // Pending rows are never pruned; finished ones go in batches, oldest first.
    assert_eq!(store.prune_notifications(10_000, 1).await.unwrap(), 1);
    assert_eq!(store.notification(a).await.unwrap(), None);
    assert_eq!(store.prune_notifications(10_000, 10).await.unwrap(), 1);
    assert_eq!(store.prune_notifications(10_000, 10).await.unwrap(), 0);
    assert!(store.notification(c).await.unwrap().is_some());
}

/// SQLite only (the decoding is shared by both backends): rows edited by hand into something
/// Ballast cannot read back are typed errors naming the table, never a panic.
#[tokio::test]
async fn corrupt_rows_are_typed_errors() {
    on_sqlite(|db| async move {
        use sqlx::Connection;

        let store = &db.store;
        store.enqueue(&new("r", "x", 1000)).await.unwrap();
        let file = db.file.clone().expect("a SQLite file");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        // SQLite's CHECK keeps the state valid; a negative count or time is still possible.
        sqlx::query("UPDATE notifications SET attempts = -1")
            .execute(&mut conn)
            .await
            .unwrap();
        let err = store.due(2000, 10).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Corrupt {
                    table: "notifications",
                    ..
                }
            ),
            "{err:?}"
        );
        sqlx::query("UPDATE notifications SET attempts = 0, created_unix_ms = -5")
            .execute(&mut conn)
            .await
            .unwrap();
        let err = store.due(2000, 10).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Corrupt {
                    table: "notifications",
                    ..
                }
            ),
            "{err:?}"
        );
        conn.close().await.unwrap();
    })
    .await;
}

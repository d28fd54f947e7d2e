//! Conformance of remediation runs and incidents (issue 14): every scenario runs, unchanged, on
//! a SQLite file and on the real PostgreSQL in a schema of its own, through the same harness as
//! `conformance.rs`. No mocks. What they pin down is "survives a restart": a run or an
//! incident written before the store is reopened reads back equal afterwards, lists come in
//! the documented order, filters select exactly, and retention never deletes an open incident.

mod harness;

use ballast_core::incident::{Sev, Status};
use ballast_core::{RemediationResult, RemediationRun, RemediationStep};
use ballast_store::{NewIncident, StoreError};
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
    remediation_round_trip_survives_reopen,
    remediations_newest_first_and_since,
    remediations_for_rule_and_target_oldest_first,
    remediations_prune_in_batches,
    remediation_update_rewrites_the_outcome,
    incident_create_save_and_reopen,
    incidents_filter_and_order,
    incidents_prune_keeps_open,
    incident_save_unknown_is_not_found,
);

/// Text no encoding may mangle.
const AWKWARD: &str = "a \"quoted\" 'value', back\\slash\nnew line = é 日本 🚀";

fn run(rule: &str, target: &str, started: u64, result: RemediationResult) -> RemediationRun {
    let steps = match result {
        RemediationResult::Refused { .. } => vec![],
        _ => vec![
            RemediationStep::new("exec", true, AWKWARD),
            RemediationStep::new("restart", false, ""),
        ],
    };
    RemediationRun {
        rule: rule.to_string(),
        target: target.to_string(),
        alert_id: format!("alert-{started}"),
        dry_run: started.is_multiple_of(2),
        started_unix_ms: started,
        ended_unix_ms: started + 10,
        result,
        steps,
    }
}

fn refused() -> RemediationResult {
    RemediationResult::Refused {
        kind: "cooldown".to_string(),
        reason: format!("cooling down: {AWKWARD}"),
    }
}

fn failed() -> RemediationResult {
    RemediationResult::Failed {
        reason: "exit 1".to_string(),
    }
}

async fn remediation_round_trip_survives_reopen(db: Db) {
    let runs = [
        run("restart-app", "10.0.0.1:80", 1000, RemediationResult::Ok),
        run("restart-app", "10.0.0.1:80", 2001, failed()),
        run("restart-app", "10.0.0.1:80", 3000, refused()),
    ];
    let mut ids = Vec::new();
    for r in &runs {
        ids.push(db.store.record_remediation(r).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let reopened = db.reopen().await;
    let back = reopened.remediations(0, 100).await.unwrap();
    let got: Vec<_> = back.iter().map(|s| (s.id, s.run.clone())).collect();
    let want: Vec<_> = ids
        .iter()
        .copied()
        .zip(runs.iter().cloned())
        .rev()
        .collect();
    assert_eq!(got, want);
    reopened.close().await;
}

async fn remediation_update_rewrites_the_outcome(db: Db) {
    let store = &db.store;
    let first = run("restart", "api", 1000, RemediationResult::Ok);
    let id = store.record_remediation(&first).await.unwrap();
    let mut later = first.clone();
    later.ended_unix_ms = 9000;
    later.result = failed();
    store.update_remediation(id, &later).await.unwrap();
    let all = store.remediations(0, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, id);
    assert_eq!(all[0].run, later);
    let missing = store.update_remediation(id + 100, &later).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

async fn remediations_newest_first_and_since(db: Db) {
    let store = &db.store;
    // Recorded out of order: the log orders by start, then id.
    for started in [3000, 1000, 2000, 2000] {
        store
            .record_remediation(&run("r", "t", started, RemediationResult::Ok))
            .await
            .unwrap();
    }
    let all = store.remediations(0, 100).await.unwrap();
    let starts: Vec<u64> = all.iter().map(|s| s.run.started_unix_ms).collect();
    assert_eq!(starts, [3000, 2000, 2000, 1000]);
    assert!(all[1].id > all[2].id);
    let recent = store.remediations(2000, 100).await.unwrap();
    assert_eq!(recent.len(), 3);
    let limited = store.remediations(0, 2).await.unwrap();
    assert_eq!(limited, all[..2].to_vec());
    assert!(store.remediations(3001, 100).await.unwrap().is_empty());
}

async fn remediations_for_rule_and_target_oldest_first(db: Db) {
    let store = &db.store;
    store
        .record_remediation(&run("restart", "a", 3000, refused()))
        .await
        .unwrap();
    store
        .record_remediation(&run("restart", "a", 1000, RemediationResult::Ok))
        .await
        .unwrap();
    store
        .record_remediation(&run("restart", "b", 1500, failed()))
        .await
        .unwrap();
    store
        .record_remediation(&run("clean", "a", 1500, RemediationResult::Ok))
        .await
        .unwrap();
    store
        .record_remediation(&run("restart", "a", 500, failed()))
        .await
        .unwrap();

    // What a restart replays: this rule on this target since the window's start, oldest first.
    let reopened = db.reopen().await;
    let replay = reopened
        .remediations_for("restart", "a", 1000)
        .await
        .unwrap();
    let got: Vec<_> = replay
        .iter()
        .map(|s| (s.run.started_unix_ms, s.run.result.name()))
        .collect();
    assert_eq!(got, [(1000, "ok"), (3000, "refused")]);
    assert_eq!(
        reopened
            .remediations_for("restart", "a", 0)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(reopened
        .remediations_for("restart", "c", 0)
        .await
        .unwrap()
        .is_empty());
    reopened.close().await;
}

async fn remediations_prune_in_batches(db: Db) {
    let store = &db.store;
    for i in 0..7u64 {
        // Runs end at start + 10: 1010, 2010, ... 7010.
        store
            .record_remediation(&run("r", "t", 1000 * (i + 1), RemediationResult::Ok))
            .await
            .unwrap();
    }
    // Ended before 5010: the first four, two at a time.
    assert_eq!(store.prune_remediations(5010, 2).await.unwrap(), 2);
    assert_eq!(store.prune_remediations(5010, 2).await.unwrap(), 2);
    assert_eq!(store.prune_remediations(5010, 2).await.unwrap(), 0);
    let left: Vec<u64> = store
        .remediations(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|s| s.run.started_unix_ms)
        .collect();
    assert_eq!(left, [7000, 6000, 5000]);
}

fn incident(title: &str, status: Status, opened: u64, closed: Option<u64>) -> NewIncident {
    NewIncident {
        title: title.to_string(),
        severity: Sev::Sev2,
        status,
        opened_unix_ms: opened,
        closed_unix_ms: closed,
        updated_unix_ms: closed.unwrap_or(opened),
        body_json: String::new(),
    }
}

/// The body a caller would write: the incident as JSON, its id included.
fn body(title: &str) -> impl FnOnce(u64) -> Result<String, serde_json::Error> + '_ {
    move |id| serde_json::to_string(&serde_json::json!({ "id": id, "title": title }))
}

async fn incident_create_save_and_reopen(db: Db) {
    let store = &db.store;
    let new = incident(AWKWARD, Status::Detect, 1000, None);
    let id = store.create_incident(&new, body(AWKWARD)).await.unwrap();
    let stored = store.incident(id).await.unwrap().unwrap();
    assert_eq!(stored.id, id);
    let json: serde_json::Value = serde_json::from_str(&stored.incident.body_json).unwrap();
    assert_eq!(json["id"], id);
    assert_eq!(json["title"], AWKWARD);
    let mut want = new.clone();
    want.body_json = stored.incident.body_json.clone();
    assert_eq!(stored.incident, want);

    // An edit replaces the summary and the body.
    let mut closed = incident("renamed", Status::Closed, 1000, Some(5000));
    closed.severity = Sev::Sev1;
    closed.body_json = format!("{{\"id\":{id},\"closed\":true}}");
    store.save_incident(id, &closed).await.unwrap();

    // A body that cannot be written creates nothing.
    let refused = store
        .create_incident(&new, |_| {
            Err(serde_json::from_str::<serde_json::Value>("{").unwrap_err())
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Encode(_)), "{refused:?}");

    let reopened = db.reopen().await;
    let back = reopened.incident(id).await.unwrap().unwrap();
    assert_eq!(back.incident, closed);
    assert_eq!(reopened.incidents(None, 100).await.unwrap().len(), 1);
    assert!(reopened.open_incidents().await.unwrap().is_empty());
    assert!(reopened.incident(id + 1000).await.unwrap().is_none());
    assert!(reopened.incident(u64::MAX).await.unwrap().is_none());
    reopened.close().await;
}

async fn incidents_filter_and_order(db: Db) {
    let store = &db.store;
    let specs = [
        ("b", Status::Triage, 2000, None),
        ("a", Status::Detect, 1000, None),
        ("c", Status::Closed, 3000, Some(3500)),
        ("d", Status::Triage, 4000, None),
    ];
    for (title, status, opened, closed) in specs {
        store
            .create_incident(&incident(title, status, opened, closed), body(title))
            .await
            .unwrap();
    }
    let titles = |v: Vec<ballast_store::StoredIncident>| -> Vec<String> {
        v.into_iter().map(|s| s.incident.title).collect()
    };
    assert_eq!(
        titles(store.incidents(None, 100).await.unwrap()),
        ["d", "c", "b", "a"]
    );
    assert_eq!(titles(store.incidents(None, 2).await.unwrap()), ["d", "c"]);
    assert_eq!(
        titles(store.incidents(Some(Status::Triage), 100).await.unwrap()),
        ["d", "b"]
    );
    assert_eq!(
        titles(store.incidents(Some(Status::Closed), 100).await.unwrap()),
        ["c"]
    );
    assert!(store
        .incidents(Some(Status::Share), 100)
        .await
        .unwrap()
        .is_empty());
    let reopened = db.reopen().await;
    assert_eq!(
        titles(reopened.open_incidents().await.unwrap()),
        ["a", "b", "d"]
    );
    reopened.close().await;
}

async fn incidents_prune_keeps_open(db: Db) {
    let store = &db.store;
    // Three closed long ago, one closed recently, one open since long ago.
    for i in 0..3u64 {
        let title = format!("old-{i}");
        store
            .create_incident(
                &incident(&title, Status::Closed, 100 + i, Some(200 + i)),
                body(&title),
            )
            .await
            .unwrap();
    }
    store
        .create_incident(
            &incident("recent", Status::Closed, 100, Some(9000)),
            body("recent"),
        )
        .await
        .unwrap();
    let open = store
        .create_incident(&incident("open", Status::Recover, 1, None), body("open"))
        .await
        .unwrap();

    assert_eq!(store.prune_incidents(5000, 2).await.unwrap(), 2);
    assert_eq!(store.prune_incidents(5000, 2).await.unwrap(), 1);
    assert_eq!(store.prune_incidents(5000, 2).await.unwrap(), 0);
    let mut left: Vec<String> = store
        .incidents(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.incident.title)
        .collect();
    left.sort();
    assert_eq!(left, ["open", "recent"]);
    let still_open = store.open_incidents().await.unwrap();
    assert_eq!(still_open.len(), 1);
    assert_eq!(still_open[0].id, open);
}

async fn incident_save_unknown_is_not_found(db: Db) {
    let store = &db.store;
    let new = incident("x", Status::Detect, 1, None);
    for id in [1, 42, u64::MAX] {
        let err = store.save_incident(id, &new).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::NotFound {
                    what: "incident",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let err = store
        .save_incident(1, &incident("x", Status::Detect, u64::MAX, None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
}

/// SQLite only (the decoding is shared by both backends): rows edited by hand into something
/// Ballast cannot read back are typed errors naming the table, never a panic.
#[tokio::test]
async fn corrupt_rows_are_typed_errors() {
    on_sqlite(|db| async move {
        use sqlx::Connection;

        let store = &db.store;
        store
            .record_remediation(&run("r", "t", 1, RemediationResult::Ok))
            .await
            .unwrap();
        let id = store
            .create_incident(&incident("x", Status::Detect, 1, None), body("x"))
            .await
            .unwrap();
        let file = db.file.clone().expect("a SQLite file");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let corrupt = |err: StoreError, want: &str| {
            assert!(
                matches!(&err, StoreError::Corrupt { table, .. } if *table == want),
                "{err:?}"
            );
        };
        for sql in [
            "UPDATE remediation_runs SET steps_json = '{'",
            "UPDATE remediation_runs SET steps_json = '[]', result = 'failed', reason = NULL",
            "UPDATE remediation_runs SET result = 'ok', ended_unix_ms = -1",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            corrupt(
                store.remediations(0, 10).await.unwrap_err(),
                "remediation_runs",
            );
        }
        for sql in [
            "UPDATE incidents SET severity = 'SEV9'",
            "UPDATE incidents SET severity = 'SEV1', status = 'lost'",
            "UPDATE incidents SET status = 'closed', closed_unix_ms = -5",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            corrupt(store.incident(id).await.unwrap_err(), "incidents");
            corrupt(store.incidents(None, 10).await.unwrap_err(), "incidents");
        }
        conn.close().await.unwrap();
    })
    .await;
}

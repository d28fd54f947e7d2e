//! The conformance scenarios. Each takes a fresh [`Db`] and must behave the same on every
//! backend; the counts asserted are exact.

use ballast_core::history::drift;
use ballast_core::{
    ChangeKind, ConfigOutcome, Event, EventQuery, HealthCause, NewChange, NewConfigVersion, Origin,
    RecordKind, Stamped,
};
use ballast_store::{sha256_hex, StoreError};

use crate::harness::Db;

mod recent;
pub use recent::*;

/// Event `i` of a batch: three kinds in turn, one millisecond apart from t = 1000.
fn event(i: u64) -> Stamped {
    let event = match i % 3 {
        0 => Event::ServerDown {
            upstream: "app".to_string(),
            server: format!("10.0.0.{}:80", i % 250),
            cause: HealthCause::ActiveCheck,
        },
        1 => Event::ServerUp {
            upstream: "app".to_string(),
            server: format!("10.0.0.{}:80", i % 250),
            cause: HealthCause::Breaker,
        },
        _ => Event::ReloadApplied {
            sha256: sha256_hex(&i.to_string()),
            by: Origin::Signal,
            who: None,
            listeners_started: vec!["web".to_string(), "é ü \"quoted\"".to_string()],
            listeners_stopped: vec![],
            servers_added: 2,
            servers_removed: 1,
        },
    };
    Stamped {
        seq: i,
        at_unix_ms: 1000 + i,
        event,
    }
}

fn query() -> EventQuery {
    EventQuery::default()
}

pub async fn migrations_twice_are_a_no_op(db: Db) {
    let first = &db.store;
    assert_eq!(first.schema_version().await.unwrap(), 4);
    let marker = first
        .record_change(change(ChangeKind::Note, 5))
        .await
        .unwrap();
    first.insert_events("a", &[event(0)]).await.unwrap();

    let second = db.reopen().await;
    assert_eq!(second.backend(), first.backend());
    assert_eq!(second.schema_version().await.unwrap(), 4);
    // Nothing was re-created or emptied by the second migration run.
    assert_eq!(
        second.changes_since(0, 100).await.unwrap(),
        vec![marker.clone()]
    );
    assert_eq!(second.count_events(&query()).await.unwrap(), 1);
    // And ids keep increasing across handles.
    let next = second
        .record_change(change(ChangeKind::Note, 6))
        .await
        .unwrap();
    assert!(next.id > marker.id);
    second.ping().await.unwrap();
    second.close().await;

    if let Some(file) = &db.file {
        let wal = file.with_file_name("store.db-wal");
        assert!(
            wal.exists(),
            "SQLite runs in WAL mode: {} missing",
            wal.display()
        );
    }
}

pub async fn events_batch_and_queries(db: Db) {
    let store = &db.store;
    let batch: Vec<Stamped> = (0..450).map(event).collect();
    store.insert_events("a", &batch).await.unwrap();
    let other: Vec<Stamped> = (1000..1010).map(event).collect();
    store.insert_events("b", &other).await.unwrap();
    store.insert_events("a", &[]).await.unwrap();

    assert_eq!(store.count_events(&query()).await.unwrap(), 460);
    // Every field comes back as it went in, in insertion order.
    let all = store.events(&query()).await.unwrap();
    assert_eq!(all.len(), 460);
    let back: Vec<Stamped> = all[..450].iter().map(|e| e.stamped.clone()).collect();
    assert_eq!(back, batch);
    assert!(all[..450].iter().all(|e| e.instance == "a"));
    assert!(all[450..].iter().all(|e| e.instance == "b"));
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));

    // By kind: ServerDown is i % 3 == 0 → 150 of the 450, and 3 of 1000..1010 (1002, 1005, 1008).
    let downs = EventQuery {
        kind: Some("server_down".to_string()),
        ..query()
    };
    assert_eq!(store.count_events(&downs).await.unwrap(), 153);
    let got = store.events(&downs).await.unwrap();
    assert!(got
        .iter()
        .all(|e| matches!(e.stamped.event, Event::ServerDown { .. })));
    let reloads = EventQuery {
        kind: Some("reload_applied".to_string()),
        instance: Some("a".to_string()),
        ..query()
    };
    assert_eq!(store.count_events(&reloads).await.unwrap(), 150);

    // Since a time: at_unix_ms >= 1400 is i in 400..450 (50) plus the 10 of instance b.
    let since = EventQuery {
        since_unix_ms: Some(1400),
        ..query()
    };
    assert_eq!(store.count_events(&since).await.unwrap(), 60);

    // After an id, with a limit: a cursor that pages through exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .events(&EventQuery {
                after_id: cursor,
                limit: Some(100),
                ..query()
            })
            .await
            .unwrap();
        assert!(page.len() <= 100);
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen, all.iter().map(|e| e.id).collect::<Vec<_>>());
    let after = EventQuery {
        after_id: Some(all[449].id),
        ..query()
    };
    assert_eq!(store.count_events(&after).await.unwrap(), 10);

    // Newest first with a limit: the last three inserted, in reverse.
    let newest = store
        .events(&EventQuery {
            newest_first: true,
            limit: Some(3),
            ..query()
        })
        .await
        .unwrap();
    let ids: Vec<u64> = newest.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![all[459].id, all[458].id, all[457].id]);
    let none = EventQuery {
        kind: Some("no_such_kind".to_string()),
        ..query()
    };
    assert_eq!(store.count_events(&none).await.unwrap(), 0);
    assert!(store.events(&none).await.unwrap().is_empty());
}

pub async fn event_batch_is_all_or_nothing(db: Db) {
    let store = &db.store;
    let mut batch: Vec<Stamped> = (0..10).map(event).collect();
    batch[7].seq = u64::MAX;
    let err = store.insert_events("a", &batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfRange { field: "seq", value } if value == u64::MAX),
        "{err:?}"
    );
    assert!(!err.is_unavailable());
    assert_eq!(store.count_events(&query()).await.unwrap(), 0);
    let err = store
        .events(&EventQuery {
            after_id: Some(u64::MAX),
            ..query()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
}

fn version(text: &str, source: Origin, at: u64, instance: &str, ok: bool) -> NewConfigVersion {
    NewConfigVersion {
        text: text.to_string(),
        source,
        at_unix_ms: at,
        host: format!("{instance}.example.net"),
        instance: instance.to_string(),
        outcome: if ok {
            ConfigOutcome::Applied
        } else {
            ConfigOutcome::Refused {
                error: "line 3, column 7: `timeout`: \"5\" has no unit; write \"5s\"".to_string(),
            }
        },
    }
}

pub async fn config_versions_ids_and_previous_applied(db: Db) {
    let store = &db.store;
    let texts = [
        "[admin]\nlisten = \"127.0.0.1:9900\"\n",
        "[admin]\nlisten = \"127.0.0.1:9901\"\n# ünïcode\n",
        "[admin\nbroken",
        "[admin]\nlisten = \"127.0.0.1:9902\"\n",
        "[admin]\nlisten = \"127.0.0.1:9900\"\n",
    ];
    let v1 = store
        .record_config(version(texts[0], Origin::Start, 10, "a", true))
        .await
        .unwrap();
    let v2 = store
        .record_config(version(texts[1], Origin::Signal, 20, "a", true))
        .await
        .unwrap();
    let v3 = store
        .record_config(version(texts[2], Origin::Api, 30, "a", false))
        .await
        .unwrap();
    let other = store
        .record_config(version(texts[3], Origin::Cli, 35, "b", true))
        .await
        .unwrap();
    let v5 = store
        .record_config(version(texts[4], Origin::Rollback, 40, "a", true))
        .await
        .unwrap();
    let all = [&v1, &v2, &v3, &other, &v5];
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    for (v, text) in all.iter().zip(texts) {
        assert_eq!(v.text, text);
        assert_eq!(v.sha256, sha256_hex(text));
        // Every field round-trips.
        assert_eq!(store.config_version(v.id).await.unwrap().as_ref(), Some(*v));
    }
    assert_eq!(v3.outcome.name(), "refused");
    assert_eq!(v1.sha256, v5.sha256);
    assert_eq!(store.config_version(v5.id + 100).await.unwrap(), None);

    // Newest first, limited.
    let listed = store.config_versions(2).await.unwrap();
    assert_eq!(listed, vec![v5.clone(), other.clone()]);
    assert_eq!(store.config_versions(100).await.unwrap().len(), 5);

    // The previous good version of instance a skips the refused one and b's.
    let prev = store.previous_applied(v5.id, Some("a")).await.unwrap();
    assert_eq!(prev, Some(v2.clone()));
    let prev = store.previous_applied(v5.id, None).await.unwrap();
    assert_eq!(prev, Some(other.clone()));
    let prev = store.previous_applied(v3.id, Some("a")).await.unwrap();
    assert_eq!(prev, Some(v2.clone()));
    assert_eq!(store.previous_applied(v1.id, None).await.unwrap(), None);
    assert_eq!(
        store.previous_applied(v5.id, Some("c")).await.unwrap(),
        None
    );
    assert_eq!(
        store.latest_applied(Some("a")).await.unwrap(),
        Some(v5.clone())
    );
    assert_eq!(store.latest_applied(Some("b")).await.unwrap(), Some(other));
    assert_eq!(store.latest_applied(None).await.unwrap(), Some(v5));
}

fn change(kind: ChangeKind, at: u64) -> NewChange {
    NewChange {
        kind,
        service: Some(format!("svc-{at}")),
        version: Some(format!("v1.{at}")),
        summary: format!("change at {at}: «quoted» 'text'"),
        author: Some("ci@example.com".to_string()),
        url: Some(format!("https://ci.example.com/runs/{at}")),
        at_unix_ms: at,
    }
}

pub async fn changes_newest_first(db: Db) {
    let store = &db.store;
    let mut recorded = Vec::new();
    for (kind, at) in [
        (ChangeKind::Deploy, 100),
        (ChangeKind::Flag, 300),
        (ChangeKind::Data, 200),
        (ChangeKind::Infra, 300),
        (ChangeKind::Note, 50),
    ] {
        recorded.push(store.record_change(change(kind, at)).await.unwrap());
    }
    let bare = NewChange {
        kind: ChangeKind::Note,
        service: None,
        version: None,
        summary: "no optional fields".to_string(),
        author: None,
        url: None,
        at_unix_ms: 150,
    };
    let bare = store.record_change(bare).await.unwrap();
    assert!(bare.id > recorded[4].id);

    let got = store.changes_since(100, 100).await.unwrap();
    // 300 (infra, recorded later), 300 (flag), 200, 150, 100; the one at 50 is older.
    let expected = vec![
        recorded[3].clone(),
        recorded[1].clone(),
        recorded[2].clone(),
        bare,
        recorded[0].clone(),
    ];
    assert_eq!(got, expected);
    assert_eq!(store.changes_since(0, 100).await.unwrap().len(), 6);
    assert_eq!(store.changes_since(100, 2).await.unwrap(), expected[..2]);
    assert!(store.changes_since(301, 100).await.unwrap().is_empty());
}

pub async fn instances_upsert_and_drift(db: Db) {
    let store = &db.store;
    assert!(store.instances().await.unwrap().is_empty());
    let x = sha256_hex("config x");
    let y = sha256_hex("config y");
    store
        .heartbeat_instance("a", "host-a", &x, 1000)
        .await
        .unwrap();
    store
        .heartbeat_instance("b", "host-b", &x, 1100)
        .await
        .unwrap();
    assert!(drift(&store.instances().await.unwrap(), 0).is_empty());

    store
        .heartbeat_instance("a", "host-a2", &y, 2000)
        .await
        .unwrap();
    let all = store.instances().await.unwrap();
    assert_eq!(all.len(), 2, "one row per instance: {all:?}");
    let a = &all[0];
    assert_eq!(a.instance, "a");
    assert_eq!(a.host, "host-a2");
    assert_eq!(a.config_sha256, y);
    assert_eq!((a.first_seen_unix_ms, a.last_seen_unix_ms), (1000, 2000));
    assert_eq!(
        (all[1].first_seen_unix_ms, all[1].last_seen_unix_ms),
        (1100, 1100)
    );
    let names: Vec<&str> = drift(&all, 0).iter().map(|i| i.instance.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    // b stopped sending heartbeats: only a is live, nothing to compare.
    assert!(drift(&all, 1500).is_empty());
}

pub async fn prune_events_and_changes_in_batches(db: Db) {
    let store = &db.store;
    // 100 events at t = 1000..1100; prune those before 1050 in batches of 20.
    let batch: Vec<Stamped> = (0..100).map(event).collect();
    store.insert_events("a", &batch).await.unwrap();
    let mut deleted = Vec::new();
    loop {
        let n = store.prune(RecordKind::Events, 1050, 20).await.unwrap();
        deleted.push(n);
        if n < 20 {
            break;
        }
    }
    assert_eq!(deleted, vec![20, 20, 10]);
    let left = store.events(&query()).await.unwrap();
    assert_eq!(left.len(), 50);
    assert!(left.iter().all(|e| e.stamped.at_unix_ms >= 1050));
    assert_eq!(store.prune(RecordKind::Events, 1050, 20).await.unwrap(), 0);

    for at in 0..30 {
        store
            .record_change(change(ChangeKind::Deploy, at))
            .await
            .unwrap();
    }
    assert_eq!(store.prune(RecordKind::Changes, 25, 7).await.unwrap(), 7);
    assert_eq!(store.prune(RecordKind::Changes, 25, 0).await.unwrap(), 0);
    assert_eq!(store.changes_since(0, 100).await.unwrap().len(), 23);
    assert_eq!(store.prune(RecordKind::Changes, 25, 100).await.unwrap(), 18);
    let left = store.changes_since(0, 100).await.unwrap();
    assert_eq!(
        left.iter().map(|c| c.marker.at_unix_ms).collect::<Vec<_>>(),
        vec![29, 28, 27, 26, 25]
    );
    // Pruning one kind leaves the others alone.
    assert_eq!(store.count_events(&query()).await.unwrap(), 50);
}

pub async fn prune_keeps_running_config(db: Db) {
    let store = &db.store;
    let a1 = store
        .record_config(version("a1", Origin::Start, 10, "a", true))
        .await
        .unwrap();
    let a2 = store
        .record_config(version("a2", Origin::Api, 20, "a", true))
        .await
        .unwrap();
    let a3 = store
        .record_config(version("a3", Origin::Api, 30, "a", false))
        .await
        .unwrap();
    let b1 = store
        .record_config(version("b1", Origin::Start, 15, "b", true))
        .await
        .unwrap();
    let a4 = store
        .record_config(version("a4", Origin::Signal, 5000, "a", true))
        .await
        .unwrap();
    // Everything but a4 is older than 1000, yet b1 is b's running config and stays.
    assert_eq!(
        store
            .prune(RecordKind::ConfigVersions, 1000, 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.config_version(a1.id).await.unwrap(), None);
    assert_eq!(store.config_version(a2.id).await.unwrap(), None);
    assert_eq!(
        store
            .prune(RecordKind::ConfigVersions, 1000, 2)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.config_version(a3.id).await.unwrap(), None);
    assert_eq!(
        store
            .prune(RecordKind::ConfigVersions, 1000, 2)
            .await
            .unwrap(),
        0
    );
    let left = store.config_versions(10).await.unwrap();
    assert_eq!(left, vec![a4, b1]);
}

pub async fn closed_store_is_unavailable(db: Db) {
    let store = &db.store;
    store.ping().await.unwrap();
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let err = store.insert_events("a", &[event(1)]).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains(store.backend()), "{err}");
}

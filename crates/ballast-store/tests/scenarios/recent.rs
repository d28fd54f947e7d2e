//! Conformance scenarios for the queries behind "what changed recently?": events of several
//! kinds at once (runtime commands), and config versions since a time without their texts.

use ballast_core::{ConfigOutcome, ConfigSummary, Event, EventQuery, Origin, Stamped};

use super::{event, version};
use crate::harness::Db;

fn drained(seq: u64, at: u64) -> Stamped {
    Stamped {
        seq,
        at_unix_ms: at,
        event: Event::ServerDrained {
            upstream: "app".to_string(),
            server: "10.0.0.1:80".to_string(),
            by: Origin::Cli,
            who: None,
        },
    }
}

pub async fn events_of_several_kinds(db: Db) {
    let store = &db.store;
    // 30 events cycling server_down, server_up, reload_applied (t = 1000..1030), then two
    // drains at t = 2000 and 2001.
    let mut batch: Vec<Stamped> = (0..30).map(event).collect();
    batch.extend([drained(30, 2000), drained(31, 2001)]);
    store.insert_events("a", &batch).await.unwrap();
    let commands = |since: Option<u64>, limit: Option<u32>| EventQuery {
        kinds: vec!["server_drained".to_string(), "reload_applied".to_string()],
        since_unix_ms: since,
        limit,
        newest_first: true,
        ..EventQuery::default()
    };
    assert_eq!(store.count_events(&commands(None, None)).await.unwrap(), 12);
    let got = store.events(&commands(Some(1020), None)).await.unwrap();
    let kinds: Vec<(u64, &str)> = got
        .iter()
        .map(|e| {
            let kind = match e.stamped.event {
                Event::ServerDrained { .. } => "drain",
                Event::ReloadApplied { .. } => "reload",
                _ => "other",
            };
            (e.stamped.at_unix_ms, kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (2001, "drain"),
            (2000, "drain"),
            (1029, "reload"),
            (1026, "reload"),
            (1023, "reload"),
            (1020, "reload"),
        ]
    );
    let newest = store.events(&commands(None, Some(3))).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[2].stamped.at_unix_ms, 1029);
    // `kinds` and `kind` combine with AND; an empty `kinds` is no filter.
    let both = EventQuery {
        kind: Some("server_down".to_string()),
        ..commands(None, None)
    };
    assert_eq!(store.count_events(&both).await.unwrap(), 0);
    let one = EventQuery {
        kind: Some("server_drained".to_string()),
        ..commands(None, None)
    };
    assert_eq!(store.count_events(&one).await.unwrap(), 2);
    assert_eq!(
        store.count_events(&EventQuery::default()).await.unwrap(),
        32
    );
    let unknown = EventQuery {
        kinds: vec!["no_such_kind".to_string()],
        ..EventQuery::default()
    };
    assert!(store.events(&unknown).await.unwrap().is_empty());
}

pub async fn config_summaries_since_a_time(db: Db) {
    let store = &db.store;
    let mut recorded = Vec::new();
    for (text, at, instance, applied) in [
        ("v1", 100, "a", true),
        ("v2", 200, "b", true),
        ("v3", 300, "a", false),
        ("v4", 400, "a", true),
    ] {
        let source = if applied { Origin::Api } else { Origin::Cli };
        let v = version(text, source, at, instance, applied);
        recorded.push(store.record_config(v).await.unwrap());
    }
    let got = store.config_summaries_since(200, 100).await.unwrap();
    let expected: Vec<ConfigSummary> = recorded[1..]
        .iter()
        .rev()
        .cloned()
        .map(ConfigSummary::from)
        .collect();
    assert_eq!(got, expected);
    assert!(matches!(got[1].outcome, ConfigOutcome::Refused { .. }));
    assert_eq!(got[2].instance, "b");
    let newest = store.config_summaries_since(0, 2).await.unwrap();
    assert_eq!(
        newest.iter().map(|v| v.id).collect::<Vec<_>>(),
        [recorded[3].id, recorded[2].id]
    );
    assert!(store
        .config_summaries_since(401, 10)
        .await
        .unwrap()
        .is_empty());
}

//! The alerting scenarios: alerts and their acks, silences. Rollups are in `rollups.rs`. Each
//! takes a fresh [`Db`] and must behave the same on every backend.

use std::collections::BTreeMap;

use ballast_core::{
    Ack, AlertRecord, AlertSource, AlertState, Labels, MatchOp, Matcher, NewSilence, Severity,
};
use ballast_store::StoreError;

use crate::harness::Db;

mod rollups;
pub use rollups::*;

/// A label value no encoding may mangle: quotes, backslash, newline, separators, unicode.
pub const AWKWARD: &str = "a \"quoted\" 'value', back\\slash\nnew line = é ü 日本 🚀";

/// An alert of `rule` on `route`, in `state`, its id the fingerprint of its labels.
fn alert(rule: &str, route: &str, state: AlertState, at: u64) -> AlertRecord {
    let labels = Labels::new().with("alertname", rule).with("route", route);
    AlertRecord {
        id: labels.fingerprint(),
        rule: rule.to_string(),
        labels,
        annotations: BTreeMap::from([("summary".to_string(), format!("{rule} on {route}"))]),
        state,
        source: AlertSource::Rule,
        value: Some(0.07),
        threshold: Some(0.05),
        since_unix_ms: at,
        updated_unix_ms: at,
        ack: None,
    }
}

fn firing(severity: Severity) -> AlertState {
    AlertState::Firing { severity }
}

fn ack(by: &str, at: u64) -> Ack {
    Ack {
        by: by.to_string(),
        comment: format!("{by} is on it"),
        at_unix_ms: at,
    }
}

pub async fn alert_upsert_replaces(db: Db) {
    let store = &db.store;
    let a = alert("app-5xx", "api", AlertState::Pending, 1000);
    store.save_alert(&a).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap(), Some(a.clone()));

    // The same id again replaces every field.
    let mut a2 = a.clone();
    a2.state = firing(Severity::Critical);
    a2.value = Some(0.12);
    a2.threshold = None;
    a2.since_unix_ms = 11_000;
    a2.updated_unix_ms = 12_000;
    a2.annotations = BTreeMap::from([("runbook".to_string(), "https://wiki/x".to_string())]);
    a2.source = AlertSource::Alertmanager;
    store.save_alert(&a2).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap(), Some(a2.clone()));

    // Others: a resolved one and a quiet one; "active" is pending or firing.
    let b = alert("app-5xx", "web", AlertState::Resolved, 2000);
    let c = alert("disk", "/", AlertState::Inactive, 3000);
    let d = alert("capacity", "app", AlertState::Pending, 4000);
    for x in [&b, &c, &d] {
        store.save_alert(x).await.unwrap();
    }
    let all = store.alerts(false).await.unwrap();
    // By rule, then labels.
    assert_eq!(all, vec![a2.clone(), b.clone(), d.clone(), c.clone()]);
    assert_eq!(store.alerts(true).await.unwrap(), vec![a2, d]);
    assert_eq!(store.alert("no-such-id").await.unwrap(), None);
}

pub async fn alert_ack_persists_across_reopen(db: Db) {
    let store = &db.store;
    let a = alert("app-5xx", "api", firing(Severity::Warning), 1000);
    store.save_alert(&a).await.unwrap();
    let acked = store.ack_alert(&a.id, ack("ana", 5000)).await.unwrap();
    assert_eq!(acked.ack, Some(ack("ana", 5000)));
    assert_eq!(
        AlertRecord {
            ack: None,
            ..acked.clone()
        },
        a
    );

    let again = db.reopen().await;
    assert_eq!(again.alert(&a.id).await.unwrap(), Some(acked.clone()));
    assert_eq!(again.alerts(true).await.unwrap(), vec![acked]);
    // A later ack replaces the first.
    let second = again.ack_alert(&a.id, ack("bo", 6000)).await.unwrap();
    assert_eq!(second.ack, Some(ack("bo", 6000)));
    again.close().await;

    let err = store
        .ack_alert("no-such-id", ack("ana", 7000))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { what: "alert", id } if id == "no-such-id"),
        "{err:?}"
    );
    assert_eq!(store.alert("no-such-id").await.unwrap(), None);
}

pub async fn alert_ack_belongs_to_one_episode(db: Db) {
    let store = &db.store;
    let mut a = alert("app-5xx", "api", firing(Severity::Warning), 1000);
    store.save_alert(&a).await.unwrap();
    store.ack_alert(&a.id, ack("ana", 1500)).await.unwrap();
    let acked = Some(ack("ana", 1500));

    // The monitor saves without knowing of the ack: escalation keeps it...
    a.state = firing(Severity::Critical);
    a.updated_unix_ms = 2000;
    store.save_alert(&a).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap().unwrap().ack, acked);
    // ...and so does resolving (the API still shows who acked the episode).
    a.state = AlertState::Resolved;
    a.since_unix_ms = 3000;
    store.save_alert(&a).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap().unwrap().ack, acked);
    // A new episode starts unacknowledged.
    a.state = AlertState::Pending;
    a.since_unix_ms = 4000;
    store.save_alert(&a).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap().unwrap().ack, None);
    // A record that carries an ack sets it.
    a.ack = Some(ack("cy", 4500));
    store.save_alert(&a).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap(), Some(a.clone()));
    // Straight from resolved to firing is a new episode as well.
    a.ack = None;
    a.state = AlertState::Resolved;
    store.save_alert(&a).await.unwrap();
    a.state = firing(Severity::Critical);
    store.save_alert(&a).await.unwrap();
    assert_eq!(store.alert(&a.id).await.unwrap(), Some(a));
}

pub async fn alert_labels_round_trip(db: Db) {
    let store = &db.store;
    let mut a = alert("app-5xx", AWKWARD, firing(Severity::Critical), 1000);
    a.labels.insert(AWKWARD, "name too");
    a.labels.insert("empty", "");
    a.id = a.labels.fingerprint();
    a.annotations
        .insert("summary".to_string(), AWKWARD.to_string());
    a.annotations.insert(AWKWARD.to_string(), String::new());
    a.value = None;
    a.threshold = Some(-1.5e-300);
    a.ack = Some(Ack {
        by: AWKWARD.to_string(),
        comment: String::new(),
        at_unix_ms: 0,
    });
    store.save_alert(&a).await.unwrap();
    let back = db.reopen().await;
    assert_eq!(back.alert(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(back.alerts(false).await.unwrap(), vec![a.clone()]);
    back.close().await;

    // NaN is no value, on both backends.
    let mut nan = alert("nan", "api", AlertState::Pending, 1);
    nan.value = Some(f64::NAN);
    nan.threshold = Some(f64::NAN);
    store.save_alert(&nan).await.unwrap();
    let got = store.alert(&nan.id).await.unwrap().unwrap();
    assert_eq!((got.value, got.threshold), (None, None));

    // Times past the store's integers are a typed error.
    let mut far = alert("far", "api", AlertState::Pending, 1);
    far.since_unix_ms = u64::MAX;
    let err = store.save_alert(&far).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OutOfRange {
                field: "since_unix_ms",
                ..
            }
        ),
        "{err:?}"
    );
}

pub async fn alert_retention_keeps_active(db: Db) {
    let store = &db.store;
    let old_resolved = alert("r", "1", AlertState::Resolved, 1000);
    let old_inactive = alert("r", "2", AlertState::Inactive, 1000);
    let old_firing = alert("r", "3", firing(Severity::Warning), 1000);
    let old_pending = alert("r", "4", AlertState::Pending, 1000);
    let new_resolved = alert("r", "5", AlertState::Resolved, 5000);
    for a in [
        &old_resolved,
        &old_inactive,
        &old_firing,
        &old_pending,
        &new_resolved,
    ] {
        store.save_alert(a).await.unwrap();
    }
    assert_eq!(store.delete_alerts_resolved_before(5000).await.unwrap(), 2);
    assert_eq!(
        store.alerts(false).await.unwrap(),
        vec![old_firing, old_pending, new_resolved]
    );
    assert_eq!(store.delete_alerts_resolved_before(5000).await.unwrap(), 0);
}

fn matchers() -> Vec<Matcher> {
    vec![
        Matcher {
            name: "alertname".to_string(),
            op: MatchOp::Equal,
            value: "app-5xx".to_string(),
        },
        Matcher {
            name: "route".to_string(),
            op: MatchOp::Regex,
            value: "api|web.*".to_string(),
        },
        Matcher {
            name: "server".to_string(),
            op: MatchOp::NotEqual,
            value: AWKWARD.to_string(),
        },
        Matcher {
            name: "team".to_string(),
            op: MatchOp::NotRegex,
            value: String::new(),
        },
    ]
}

fn silence(starts: u64, ends: u64, comment: &str) -> NewSilence {
    NewSilence {
        matchers: matchers(),
        starts_unix_ms: starts,
        ends_unix_ms: ends,
        author: "ana".to_string(),
        comment: comment.to_string(),
    }
}

pub async fn silences_survive_reopen_and_expire(db: Db) {
    let store = &db.store;
    let now = 10_000;
    let deploy = store
        .add_silence(silence(now, now + 3_600_000, "deploy"), now)
        .await
        .unwrap();
    let later = store
        .add_silence(silence(now + 60_000, now + 120_000, AWKWARD), now)
        .await
        .unwrap();
    let short = store
        .add_silence(silence(now - 5000, now + 1000, "short"), now)
        .await
        .unwrap();
    assert!(deploy.id < later.id && later.id < short.id);
    assert_eq!(deploy.created_unix_ms, now);
    assert_eq!(deploy.silence, silence(now, now + 3_600_000, "deploy"));
    assert!(deploy.active_at(now) && !later.active_at(now) && short.active_at(now));

    let again = db.reopen().await;
    assert_eq!(
        again.silences(false, now).await.unwrap(),
        vec![deploy.clone(), later.clone(), short.clone()]
    );
    // `short` ends on its own: not listed from its end on, unless expired ones are asked for.
    assert_eq!(
        again.silences(false, now + 1000).await.unwrap(),
        vec![deploy.clone(), later.clone()]
    );
    assert_eq!(again.silences(true, now + 1000).await.unwrap().len(), 3);

    // Expiring ends it now; the row stays.
    let at = now + 2000;
    let expired = again.expire_silence(deploy.id, at).await.unwrap();
    assert_eq!(expired.silence.ends_unix_ms, at);
    assert_eq!(
        (expired.id, expired.created_unix_ms),
        (deploy.id, deploy.created_unix_ms)
    );
    assert!(!expired.active_at(at));
    assert_eq!(
        again.silences(false, at).await.unwrap(),
        vec![later.clone()]
    );
    again.close().await;

    // Expiring again, or an already ended one, changes nothing.
    assert_eq!(
        store.expire_silence(deploy.id, at + 5000).await.unwrap(),
        expired
    );
    assert_eq!(store.expire_silence(short.id, at).await.unwrap(), short);
    let third = db.reopen().await;
    assert_eq!(
        third.silences(true, at).await.unwrap(),
        vec![expired, later.clone(), short]
    );
    // Retention removes those ended before a time.
    assert_eq!(third.delete_silences_ended_before(at + 1).await.unwrap(), 2);
    assert_eq!(third.silences(true, 0).await.unwrap(), vec![later]);
    third.close().await;
}

pub async fn silence_refusals(db: Db) {
    let store = &db.store;
    for id in [0, 12345, u64::MAX] {
        let err = store.expire_silence(id, 1000).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::NotFound { what: "silence", id: got } if *got == id.to_string()),
            "{err:?}"
        );
    }
    let err = store
        .add_silence(silence(2000, 2000, "empty"), 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidValue {
                field: "ends_unix_ms",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .add_silence(silence(0, u64::MAX, "forever"), 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
    assert!(store.silences(true, 0).await.unwrap().is_empty());
}

//! Conformance scenarios for metric rollups: upsert by series and minute, range queries in
//! minute-then-labels order, all-or-nothing batches and batched retention.

use ballast_core::{Labels, MinuteRollup};
use ballast_store::StoreError;

use super::AWKWARD;
use crate::harness::Db;

const M: u64 = 60_000;
const T0: u64 = 1_796_061_600_000;

fn rollup(value: &str, labels: &Labels, minute: u64, base: f64) -> MinuteRollup {
    MinuteRollup {
        monitor: "shop-gateway".to_string(),
        value: value.to_string(),
        labels: labels.clone(),
        minute_unix_ms: T0 + minute * M,
        min: base,
        avg: base + 0.25,
        max: base + 1.0,
        p95: base + 0.75,
        count: 60,
    }
}

fn route(name: &str) -> Labels {
    Labels::new().with("route", name)
}

pub async fn rollups_upsert_and_range(db: Db) {
    let store = &db.store;
    let (api, web, odd) = (
        route("api"),
        route("web"),
        route(AWKWARD).with(AWKWARD, "x"),
    );
    let mut batch = Vec::new();
    for minute in 0..4 {
        for labels in [&api, &web, &odd] {
            batch.push(rollup("error_ratio", labels, minute, minute as f64));
        }
        batch.push(rollup("rps", &api, minute, 100.0));
    }
    store.write_rollups(&batch).await.unwrap();

    // [minute 1, minute 3): by minute, then labels; other values and monitors are not mixed in.
    let got = store
        .rollups("shop-gateway", "error_ratio", T0 + M, T0 + 3 * M)
        .await
        .unwrap();
    let mut want = Vec::new();
    for minute in 1..3 {
        let mut at: Vec<MinuteRollup> = [&api, &web, &odd]
            .into_iter()
            .map(|l| rollup("error_ratio", l, minute, minute as f64))
            .collect();
        at.sort_by(|a, b| a.labels.cmp(&b.labels));
        want.extend(at);
    }
    assert_eq!(got, want);
    assert!(store
        .rollups("other", "error_ratio", 0, u64::MAX)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .rollups("shop-gateway", "rps", 0, u64::MAX)
            .await
            .unwrap()
            .len(),
        4
    );

    // Writing a minute again replaces it; within one batch the later one wins.
    let mut replaced = rollup("error_ratio", &odd, 2, 40.0);
    replaced.count = 7;
    let dup_first = rollup("error_ratio", &web, 2, 50.0);
    let dup_last = rollup("error_ratio", &web, 2, 60.0);
    store
        .write_rollups(&[replaced.clone(), dup_first, dup_last.clone()])
        .await
        .unwrap();
    let minute2 = store
        .rollups("shop-gateway", "error_ratio", T0 + 2 * M, T0 + 3 * M)
        .await
        .unwrap();
    assert_eq!(minute2.len(), 3);
    assert!(minute2.contains(&replaced), "{minute2:?}");
    assert!(minute2.contains(&dup_last), "{minute2:?}");
    assert_eq!(
        store
            .rollups("shop-gateway", "error_ratio", 0, u64::MAX)
            .await
            .unwrap()
            .len(),
        12
    );

    // They survive reopening, awkward labels included.
    let again = db.reopen().await;
    let odd_back: Vec<MinuteRollup> = again
        .rollups("shop-gateway", "error_ratio", 0, u64::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.labels == odd)
        .collect();
    assert_eq!(odd_back.len(), 4);
    assert_eq!(odd_back[2], replaced);
    again.close().await;

    // Nothing to write is fine.
    store.write_rollups(&[]).await.unwrap();
}

pub async fn rollups_batch_is_all_or_nothing(db: Db) {
    let store = &db.store;
    // More rows than one statement holds, then one that cannot be stored.
    let mut batch: Vec<MinuteRollup> = (0..450)
        .map(|i| rollup("rps", &route(&format!("r{i}")), 0, 1.0))
        .collect();
    let mut bad = rollup("rps", &route("bad"), 0, 1.0);
    bad.p95 = f64::NAN;
    batch.push(bad);
    let err = store.write_rollups(&batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidValue { field: "p95", .. }),
        "{err:?}"
    );
    let mut huge = rollup("rps", &route("huge"), 0, 1.0);
    huge.count = u64::MAX;
    let err = store.write_rollups(&[huge]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfRange { field: "count", .. }),
        "{err:?}"
    );
    assert!(store
        .rollups("shop-gateway", "rps", 0, u64::MAX)
        .await
        .unwrap()
        .is_empty());

    batch.pop();
    store.write_rollups(&batch).await.unwrap();
    assert_eq!(
        store
            .rollups("shop-gateway", "rps", 0, u64::MAX)
            .await
            .unwrap()
            .len(),
        450
    );
}

pub async fn rollups_prune_in_batches(db: Db) {
    let store = &db.store;
    let batch: Vec<MinuteRollup> = (0..10)
        .flat_map(|minute| {
            [route("a"), route("b")].map(|l| rollup("rps", &l, minute, minute as f64))
        })
        .collect();
    store.write_rollups(&batch).await.unwrap();
    // Minutes 0..7 (14 rows) are older than minute 7: deleted 5 at a time, oldest first.
    let cutoff = T0 + 7 * M;
    assert_eq!(store.prune_rollups(cutoff, 5).await.unwrap(), 5);
    let left = store
        .rollups("shop-gateway", "rps", 0, u64::MAX)
        .await
        .unwrap();
    assert_eq!(left.len(), 15);
    assert!(left[0].minute_unix_ms >= T0 + 2 * M, "{:?}", left[0]);
    assert_eq!(store.prune_rollups(cutoff, 5).await.unwrap(), 5);
    assert_eq!(store.prune_rollups(cutoff, 5).await.unwrap(), 4);
    assert_eq!(store.prune_rollups(cutoff, 5).await.unwrap(), 0);
    let left = store
        .rollups("shop-gateway", "rps", 0, u64::MAX)
        .await
        .unwrap();
    assert_eq!(left.len(), 6);
    assert_eq!(left[0].minute_unix_ms, cutoff);
}

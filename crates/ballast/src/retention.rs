//! The retention loop: once shortly after start ([`FIRST_ROUND`]) and then every
//! [`INTERVAL`], deletes the events, change markers and config versions older than
//! `[store] retention` says to keep; metric rollups, resolved alerts and ended silences
//! after `metrics`; remediation runs after `events`; closed incidents after `changes`.
//!
//! It exists so that the store stays the size its retention implies without anyone running a
//! cleanup job. Deleting goes through [`Store::prune`] in batches of [`BATCH`] rows, each its
//! own short statement, with a [`PAUSE`] between batches, until a batch deletes fewer than
//! [`BATCH`]: the event sink and the config-history writer get the database between batches
//! instead of waiting behind one long delete. The store never prunes the running config
//! version of an instance. A store error ends that kind's round with a warning; the next
//! round tries again, and so does a store that is not open yet; nothing here is fatal.

use std::time::Duration;

use ballast_admin::HistoryError;
use ballast_config::Retention;
use ballast_core::RecordKind;
use ballast_store::{Store, StoreError};
use tokio::task::JoinHandle;

use crate::changes::now_unix_ms;

/// How long after start the first round runs (the gateway has settled by then).
pub const FIRST_ROUND: Duration = Duration::from_secs(60);
/// How often a round runs afterwards.
pub const INTERVAL: Duration = Duration::from_secs(3600);
/// Rows deleted per statement.
pub const BATCH: u32 = 500;
/// The pause between two batches, when writers get the database.
pub const PAUSE: Duration = Duration::from_millis(100);

/// When rounds run and how they delete.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    first: Duration,
    every: Duration,
    batch: u32,
    pause: Duration,
}

const SCHEDULE: Schedule = Schedule {
    first: FIRST_ROUND,
    every: INTERVAL,
    batch: BATCH,
    pause: PAUSE,
};

/// What one round did for one kind of record.
#[derive(Debug)]
pub struct Pruned {
    pub kind: RecordKind,
    pub deleted: u64,
    /// Why the round for this kind stopped early (the rows deleted before it still count).
    pub error: Option<StoreError>,
}

/// Starts the loop with `retention` (read at start, like the rest of `[store]`) on the store
/// `store` gives at each round.
pub fn spawn<F>(store: F, retention: Retention) -> JoinHandle<()>
where
    F: Fn() -> Result<Store, HistoryError> + Send + 'static,
{
    tokio::spawn(run(store, retention, SCHEDULE))
}

async fn run<F>(store: F, retention: Retention, schedule: Schedule)
where
    F: Fn() -> Result<Store, HistoryError> + Send + 'static,
{
    tokio::time::sleep(schedule.first).await;
    loop {
        match store() {
            Ok(store) => {
                round(&store, &retention, now_unix_ms(), schedule).await;
            }
            Err(error) => {
                tracing::warn!(%error, "retention skipped this round; the next one tries again")
            }
        }
        tokio::time::sleep(schedule.every).await;
    }
}

/// One round: each kind in turn, records older than `now_unix_ms` minus its retention.
async fn round(
    store: &Store,
    retention: &Retention,
    now_unix_ms: u64,
    schedule: Schedule,
) -> Vec<Pruned> {
    let kinds = [
        (RecordKind::Events, retention.events),
        (RecordKind::Changes, retention.changes),
        (RecordKind::ConfigVersions, retention.config_versions),
    ];
    let mut report = Vec::with_capacity(kinds.len());
    for (kind, keep) in kinds {
        let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_unix_ms.saturating_sub(keep_ms);
        let pruned = prune_kind(store, kind, cutoff, schedule).await;
        let kind = pruned.kind.name();
        match &pruned.error {
            Some(error) => tracing::warn!(
                kind,
                deleted = pruned.deleted,
                %error,
                "retention stopped early; the next round tries again"
            ),
            None if pruned.deleted > 0 => tracing::info!(
                kind,
                deleted = pruned.deleted,
                older_than_days = keep.as_secs() / 86_400,
                "retention deleted old records"
            ),
            None => tracing::debug!(kind, "retention: nothing to delete"),
        }
        report.push(pruned);
    }
    alerting(store, retention.metrics, now_unix_ms, schedule).await;
    brain(store, retention, now_unix_ms, schedule).await;
    report
}

/// Remediation runs (kept as long as events) and closed incidents (kept as long as change
/// markers: a post-mortem is read as long as the changes it names).
async fn brain(store: &Store, retention: &Retention, now_unix_ms: u64, schedule: Schedule) {
    let cutoff = |keep: Duration| {
        now_unix_ms.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX))
    };
    let (runs_before, incidents_before) = (cutoff(retention.events), cutoff(retention.changes));
    let runs = batched("remediation runs", schedule, |batch| {
        store.prune_remediations(runs_before, batch)
    })
    .await;
    let incidents = batched("closed incidents", schedule, |batch| {
        store.prune_incidents(incidents_before, batch)
    })
    .await;
    if runs + incidents > 0 {
        tracing::info!(
            runs,
            incidents,
            "retention deleted old remediation runs and closed incidents"
        );
    }
}

/// Runs `delete` (one batch of at most `schedule.batch` rows) until a batch comes back short
/// or fails; returns the rows deleted.
async fn batched<F, Fut>(what: &str, schedule: Schedule, mut delete: F) -> u64
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut deleted = 0;
    loop {
        match delete(schedule.batch).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(schedule.batch) {
                    return deleted;
                }
            }
            Err(error) => {
                tracing::warn!(%error, what, "retention stopped early; the next round tries again");
                return deleted;
            }
        }
        tokio::time::sleep(schedule.pause).await;
    }
}

/// Metric rollups (batched like the rest), resolved alerts and ended silences older than
/// `keep` (those two tables stay small: one row per alert and per silence).
async fn alerting(store: &Store, keep: Duration, now_unix_ms: u64, schedule: Schedule) {
    let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
    let cutoff = now_unix_ms.saturating_sub(keep_ms);
    let rollups = batched("metric rollups", schedule, |batch| {
        store.prune_rollups(cutoff, batch)
    })
    .await;
    let alerts = store.delete_alerts_resolved_before(cutoff).await;
    let silences = store.delete_silences_ended_before(cutoff).await;
    match (alerts, silences) {
        (Ok(a), Ok(s)) if rollups + a + s > 0 => tracing::info!(
            rollups,
            alerts = a,
            silences = s,
            "retention deleted old metric rollups, resolved alerts and ended silences"
        ),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "retention of alerts or silences failed; the next round tries again")
        }
        _ => {}
    }
}

/// Deletes records of `kind` before `cutoff` batch by batch until a batch comes back short.
async fn prune_kind(store: &Store, kind: RecordKind, cutoff: u64, schedule: Schedule) -> Pruned {
    let mut deleted = 0;
    loop {
        match store.prune(kind, cutoff, schedule.batch).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(schedule.batch) {
                    return Pruned {
                        kind,
                        deleted,
                        error: None,
                    };
                }
            }
            Err(e) => {
                return Pruned {
                    kind,
                    deleted,
                    error: Some(e),
                }
            }
        }
        tokio::time::sleep(schedule.pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::{
        ChangeKind, ConfigOutcome, Event, EventQuery, NewChange, NewConfigVersion, Origin, Stamped,
    };

    const DAY: u64 = 86_400_000;
    const NOW: u64 = 1_000 * DAY;

    fn retention() -> Retention {
        Retention {
            events: Duration::from_secs(90 * 86_400),
            changes: Duration::from_secs(400 * 86_400),
            config_versions: Duration::from_secs(400 * 86_400),
            metrics: Duration::from_secs(35 * 86_400),
        }
    }

    async fn sqlite() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "ballast-retention-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open_sqlite_file(&dir.join("store.db"))
            .await
            .unwrap();
        (store, dir)
    }

    fn events(from: u64, n: u64, at: u64) -> Vec<Stamped> {
        (from..from + n)
            .map(|seq| Stamped {
                seq,
                at_unix_ms: at,
                event: Event::BreakerOpened {
                    upstream: "app".into(),
                    server: format!("10.0.0.{}:80", seq % 250),
                },
            })
            .collect()
    }

    fn change(at: u64) -> NewChange {
        NewChange {
            kind: ChangeKind::Deploy,
            service: Some("shop".into()),
            version: None,
            summary: format!("at {at}"),
            author: None,
            url: None,
            at_unix_ms: at,
        }
    }

    fn config(text: &str, at: u64, applied: bool) -> NewConfigVersion {
        NewConfigVersion {
            text: text.into(),
            source: Origin::Signal,
            at_unix_ms: at,
            host: "h".into(),
            instance: "h/127.0.0.1:9900".into(),
            outcome: if applied {
                ConfigOutcome::Applied
            } else {
                ConfigOutcome::Refused { error: "no".into() }
            },
        }
    }

    const FAST: Schedule = Schedule {
        first: Duration::ZERO,
        every: Duration::from_millis(50),
        batch: 7,
        pause: Duration::ZERO,
    };

    fn a_run(started: u64) -> ballast_core::RemediationRun {
        ballast_core::RemediationRun {
            rule: "restart".into(),
            target: "api".into(),
            alert_id: "a".into(),
            dry_run: false,
            started_unix_ms: started,
            ended_unix_ms: started + 10,
            result: ballast_core::RemediationResult::Ok,
            steps: Vec::new(),
        }
    }

    fn incident(opened: u64, closed: Option<u64>) -> ballast_store::NewIncident {
        ballast_store::NewIncident {
            title: "t".into(),
            severity: ballast_core::incident::Sev::Sev3,
            status: if closed.is_some() {
                ballast_core::incident::Status::Closed
            } else {
                ballast_core::incident::Status::Triage
            },
            opened_unix_ms: opened,
            closed_unix_ms: closed,
            updated_unix_ms: closed.unwrap_or(opened),
            body_json: String::new(),
        }
    }

    #[tokio::test]
    async fn a_round_deletes_old_runs_and_old_closed_incidents_only() {
        let (store, dir) = sqlite().await;
        // 10 runs 100 days old (past the 90 days of events), 2 from yesterday.
        for n in 0..10 {
            store
                .record_remediation(&a_run(NOW - 100 * DAY + n))
                .await
                .unwrap();
        }
        for n in 0..2 {
            store
                .record_remediation(&a_run(NOW - DAY + n))
                .await
                .unwrap();
        }
        // Incidents: closed 500 days ago (goes), open for 500 days (stays), closed yesterday.
        let body = |id: u64| Ok(format!("{{\"id\":{id}}}"));
        store
            .create_incident(&incident(NOW - 501 * DAY, Some(NOW - 500 * DAY)), body)
            .await
            .unwrap();
        let open = store
            .create_incident(&incident(NOW - 500 * DAY, None), body)
            .await
            .unwrap();
        let recent = store
            .create_incident(&incident(NOW - 2 * DAY, Some(NOW - DAY)), body)
            .await
            .unwrap();
        round(&store, &retention(), NOW, FAST).await;
        let runs = store.remediations(0, 100).await.unwrap();
        assert_eq!(runs.len(), 2, "{runs:?}");
        let mut left: Vec<u64> = store
            .incidents(None, 100)
            .await
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        left.sort_unstable();
        assert_eq!(left, [open, recent]);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_round_deletes_only_what_is_older_than_retention() {
        let (store, dir) = sqlite().await;
        // 30 events 100 days old (past the 90 days kept), 5 from yesterday.
        store
            .insert_events("i", &events(0, 30, NOW - 100 * DAY))
            .await
            .unwrap();
        store
            .insert_events("i", &events(30, 5, NOW - DAY))
            .await
            .unwrap();
        // Markers: 3 older than 400 days, 2 younger.
        for at in [NOW - 500 * DAY, NOW - 450 * DAY, NOW - 401 * DAY] {
            store.record_change(change(at)).await.unwrap();
        }
        let young: Vec<u64> = vec![NOW - 399 * DAY, NOW - DAY];
        for at in &young {
            store.record_change(change(*at)).await.unwrap();
        }
        // Config versions, all older than 400 days: the last applied one is the running
        // config and stays; the earlier one and the refused one go.
        store
            .record_config(config("v1", NOW - 600 * DAY, true))
            .await
            .unwrap();
        let running = store
            .record_config(config("v2", NOW - 500 * DAY, true))
            .await
            .unwrap();
        store
            .record_config(config("v3", NOW - 450 * DAY, false))
            .await
            .unwrap();

        let report = round(&store, &retention(), NOW, FAST).await;
        let deleted: Vec<(RecordKind, u64)> = report.iter().map(|p| (p.kind, p.deleted)).collect();
        assert_eq!(
            deleted,
            [
                (RecordKind::Events, 30),
                (RecordKind::Changes, 3),
                (RecordKind::ConfigVersions, 2)
            ]
        );
        assert!(report.iter().all(|p| p.error.is_none()));
        let left = store.events(&EventQuery::default()).await.unwrap();
        assert_eq!(left.len(), 5);
        assert!(left.iter().all(|e| e.stamped.at_unix_ms == NOW - DAY));
        let markers: Vec<u64> = store
            .changes_since(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|c| c.marker.at_unix_ms)
            .collect();
        assert_eq!(markers, [NOW - DAY, NOW - 399 * DAY]);
        assert_eq!(store.config_versions(10).await.unwrap(), vec![running]);

        // A second round finds nothing more.
        let again = round(&store, &retention(), NOW, FAST).await;
        assert!(again.iter().all(|p| p.deleted == 0 && p.error.is_none()));
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn store_errors_are_reported_not_fatal() {
        let (store, dir) = sqlite().await;
        store.close().await;
        let report = round(&store, &retention(), NOW, FAST).await;
        assert_eq!(report.len(), 3, "every kind is tried");
        assert!(report
            .iter()
            .all(|p| p.deleted == 0 && p.error.as_ref().is_some_and(|e| e.is_unavailable())));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_loop_keeps_pruning_what_ages_in_later() {
        let (store, dir) = sqlite().await;
        let now = now_unix_ms();
        let source = store.clone();
        let task = tokio::spawn(run(move || Ok(source.clone()), retention(), FAST));
        let count =
            |store: Store| async move { store.count_events(&EventQuery::default()).await.unwrap() };
        // Written while the loop runs: the old ones go in a later round, the new ones stay.
        store
            .insert_events("i", &events(0, 20, now - 100 * DAY))
            .await
            .unwrap();
        store.insert_events("i", &events(20, 3, now)).await.unwrap();
        let mut left = count(store.clone()).await;
        for _ in 0..200 {
            if left == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = count(store.clone()).await;
        }
        assert_eq!(left, 3, "only the young events are left");
        assert!(!task.is_finished());
        task.abort();
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! The instance heartbeat: every [`HEARTBEAT_INTERVAL`] this instance tells the store its host
//! name and the sha256 of its running config.
//!
//! It exists so that "is every machine's configuration the same?" is a query on the shared
//! store (`GET /api/v1/config/drift`), and so that an instance that stopped (or lost the store)
//! drops out of that answer on its own: rows whose last heartbeat is older than
//! [`LIVE_WINDOW`] count as gone. Right after a config is applied, the config-history writer
//! heartbeats the new sha256 itself, in order after the version it records; this task keeps the
//! row fresh in between, and puts it right if that beat was lost. It runs as its own task so
//! that a store that is slow, down or not open yet never holds up anything else: each beat is
//! bounded by [`HEARTBEAT_TIMEOUT`], a store not open yet skips the beat, a failed write is
//! logged once per outage; the next beat tries again, and nothing is fatal.

use std::time::Duration;

use ballast_admin::HistoryError;
use ballast_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::changes::now_unix_ms;

/// How often an instance heartbeats.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// An instance whose last heartbeat is older than this is taken to be gone (three missed
/// beats: one slow write or a short store outage does not make it disappear).
pub const LIVE_WINDOW: Duration = Duration::from_secs(3 * HEARTBEAT_INTERVAL.as_secs());
/// The longest one heartbeat may take before it is given up until the next beat.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the heartbeat of `instance` on `host`: every [`HEARTBEAT_INTERVAL`] (the first one
/// at once), the sha256 in `running` (empty: nothing applied yet, nothing sent) to the store
/// `store` gives at that moment. Ends when the sender of `running` is dropped.
pub fn spawn<F>(
    store: F,
    instance: String,
    host: String,
    running: watch::Receiver<String>,
) -> JoinHandle<()>
where
    F: Fn() -> Result<Store, HistoryError> + Send + 'static,
{
    tokio::spawn(run(store, instance, host, running, HEARTBEAT_INTERVAL))
}

async fn run<F>(
    store: F,
    instance: String,
    host: String,
    running: watch::Receiver<String>,
    every: Duration,
) where
    F: Fn() -> Result<Store, HistoryError> + Send + 'static,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        if running.has_changed().is_err() {
            return;
        }
        let sha256 = running.borrow().clone();
        if sha256.is_empty() {
            continue;
        }
        let store = match store() {
            Ok(store) => store,
            Err(error) => {
                // Not open yet (it opens in the background) or off: the sink reports that.
                tracing::debug!(%error, "instance heartbeat skipped");
                continue;
            }
        };
        let beat = store.heartbeat_instance(&instance, &host, &sha256, now_unix_ms());
        let error = match tokio::time::timeout(HEARTBEAT_TIMEOUT, beat).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {}s", HEARTBEAT_TIMEOUT.as_secs())),
        };
        match (error, failing) {
            (None, true) => {
                failing = false;
                tracing::info!(%instance, "instance heartbeat recorded again");
            }
            (Some(error), false) => {
                failing = true;
                tracing::warn!(%instance, %error, "instance heartbeat not recorded; other instances will see this one as gone until the store answers");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(name: &str) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "ballast-heartbeat-{name}-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open_sqlite_file(&dir.join("store.db"))
            .await
            .unwrap();
        (store, dir)
    }

    async fn sha_of(store: &Store, instance: &str) -> Option<(String, u64)> {
        store
            .instances()
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.instance == instance)
            .map(|i| (i.config_sha256, i.last_seen_unix_ms))
    }

    async fn wait_for_sha(store: &Store, instance: &str, sha: &str) -> u64 {
        for _ in 0..500 {
            if let Some((s, seen)) = sha_of(store, instance).await {
                if s == sha {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{instance} never heartbeated {sha}");
    }

    #[tokio::test]
    async fn beats_on_schedule_with_the_running_config() {
        let (store, dir) = sqlite("beats").await;
        let (tx, rx) = watch::channel(String::new());
        let source = store.clone();
        let task = tokio::spawn(run(
            move || Ok(source.clone()),
            "h/127.0.0.1:1".into(),
            "h".into(),
            rx,
            Duration::from_millis(50),
        ));
        // Nothing applied yet: nothing sent.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.instances().await.unwrap().is_empty());

        tx.send_replace("sha-a".into());
        let first = wait_for_sha(&store, "h/127.0.0.1:1", "sha-a").await;
        // The schedule keeps the row fresh without any change.
        let mut later = first;
        for _ in 0..100 {
            later = sha_of(&store, "h/127.0.0.1:1").await.unwrap().1;
            if later > first {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(later > first, "no periodic heartbeat after {first}");

        tx.send_replace("sha-b".into());
        wait_for_sha(&store, "h/127.0.0.1:1", "sha-b").await;
        let all = store.instances().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].host, "h");

        // A store that stops answering neither stops nor panics the task.
        store.close().await;
        tx.send_replace("sha-c".into());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!task.is_finished());
        // Dropping the sender (History going away) ends it.
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the heartbeat ends with its sender")
            .expect("and does not panic");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn no_store_yet_is_retried_at_the_next_beat() {
        let (store, dir) = sqlite("later").await;
        let (tx, rx) = watch::channel("sha-a".to_string());
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (source, counted) = (store.clone(), calls.clone());
        // The store is "not open yet" for the first three beats.
        let task = tokio::spawn(run(
            move || {
                if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                    Err(HistoryError::Unavailable("still connecting".into()))
                } else {
                    Ok(source.clone())
                }
            },
            "h/127.0.0.1:2".into(),
            "h".into(),
            rx,
            Duration::from_millis(30),
        ));
        wait_for_sha(&store, "h/127.0.0.1:2", "sha-a").await;
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 4);
        drop(tx);
        task.await.unwrap();
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

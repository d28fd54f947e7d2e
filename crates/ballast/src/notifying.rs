//! Wires notifications into the running gateway: the service reads the monitoring engine's
//! alerts (mute status included), is woken by every alert change, keeps its outbox in the
//! store through [`History`], and answers the admin API's notification questions.

use std::sync::Arc;

use ballast_admin::AlertingError;
use ballast_core::NotificationLog;
use ballast_notify::{AlertSource, Notifications, NotifyPlan, StoreAccess, TestError, TestResult};
use ballast_store::{Store, StoreError};

use crate::history::History;

/// The store as delivery sees it.
struct Access(Arc<History>);

impl StoreAccess for Access {
    fn store(&self) -> Option<Store> {
        self.0.store().ok()
    }

    fn failed(&self, error: StoreError) {
        let _ = self.0.failed(error);
    }
}

/// Starts the notification service on `plan` (the caller wakes it on alert changes).
pub async fn start(
    plan: &NotifyPlan,
    alerts: AlertSource,
    history: Arc<History>,
) -> anyhow::Result<Notifications> {
    Ok(Notifications::start(plan, alerts, Arc::new(Access(history))).await?)
}

/// The notification log, newest first: from the store when it answers, else what memory
/// holds (the store off or down).
pub async fn log(
    n: &Notifications,
    history: &History,
    since_unix_ms: u64,
    limit: u32,
) -> Vec<NotificationLog> {
    if let Ok(store) = history.store() {
        // Memory first, so what is not written yet shows too; the store has the rest.
        let unsaved = n.delivery().unsaved();
        match store.notification_log(since_unix_ms, limit).await {
            Ok(rows) if unsaved == 0 => return rows,
            Ok(rows) => return merge(n.delivery().memory_log(limit as usize), rows, limit),
            Err(e) => {
                let _ = history.failed(e);
            }
        }
    }
    n.delivery()
        .memory_log(limit as usize)
        .into_iter()
        .filter(|l| l.created_unix_ms >= since_unix_ms)
        .collect()
}

/// The notification log as the store holds it, for the moments before the service has
/// started (a restart reloading its outbox); `None` without a store that answers.
pub async fn stored_log(
    history: &History,
    since_unix_ms: u64,
    limit: u32,
) -> Option<Vec<NotificationLog>> {
    let store = history.store().ok()?;
    match store.notification_log(since_unix_ms, limit).await {
        Ok(rows) => Some(rows),
        Err(e) => {
            let _ = history.failed(e);
            None
        }
    }
}

/// Memory's lines and the store's, one line per dedup key (memory's is newer), newest first.
fn merge(
    memory: Vec<NotificationLog>,
    stored: Vec<NotificationLog>,
    limit: u32,
) -> Vec<NotificationLog> {
    let mut by_key = std::collections::BTreeMap::new();
    for l in stored.into_iter().chain(memory) {
        by_key.insert(l.dedup_key.clone(), l);
    }
    let mut out: Vec<NotificationLog> = by_key.into_values().collect();
    out.sort_by_key(|l| std::cmp::Reverse(l.created_unix_ms));
    out.truncate(limit as usize);
    out
}

/// `ballast notify test RECEIVER` through the API.
pub async fn test(
    n: &Notifications,
    receiver: &str,
    by: &str,
) -> Result<Vec<TestResult>, AlertingError> {
    n.test(receiver, by).await.map_err(|e| match e {
        TestError::UnknownReceiver(_) => AlertingError::NotFound(e.to_string()),
    })
}

//! The gateway's side of change markers, the change timeline and drift: what the admin API's
//! `/api/v1/changes` and `/api/v1/config/drift` ask of the store.
//!
//! It exists to keep those questions out of the config-history writer ([`crate::history`]):
//! each is a read (or one insert) on the store History opened, with its errors mapped the same
//! way (503 with the reason, `ballast_store_up` noted). The decisions themselves (merging,
//! who drifted) are pure functions in `ballast_core::changes`.

use std::time::{SystemTime, UNIX_EPOCH};

use ballast_admin::HistoryError;
use ballast_core::changes::{merge, COMMAND_KINDS};
use ballast_core::{Change, ChangeEntry, DriftReport, EventQuery, NewChange};

use crate::history::History;
use crate::instances::LIVE_WINDOW;

/// Markers, config versions and runtime commands from `since_unix_ms` on, newest first, at
/// most `limit` (the three reads run together).
pub async fn recent(
    history: &History,
    since_unix_ms: u64,
    limit: u32,
) -> Result<Vec<ChangeEntry>, HistoryError> {
    let store = history.store()?;
    let commands = EventQuery {
        since_unix_ms: Some(since_unix_ms),
        kinds: COMMAND_KINDS.iter().map(|k| k.to_string()).collect(),
        limit: Some(limit),
        newest_first: true,
        ..EventQuery::default()
    };
    let (markers, configs, events) = tokio::join!(
        store.changes_since(since_unix_ms, limit),
        store.config_summaries_since(since_unix_ms, limit),
        store.events(&commands),
    );
    let markers = history.observed(markers)?;
    let configs = history.observed(configs)?;
    let events = history.observed(events)?;
    Ok(merge(markers, configs, events, limit as usize))
}

/// Stores a change marker (already checked by the admin API).
pub async fn record(history: &History, change: NewChange) -> Result<Change, HistoryError> {
    let stored = history.observed(history.store()?.record_change(change).await)?;
    tracing::info!(
        id = stored.id,
        kind = stored.marker.kind.name(),
        service = stored.marker.service.as_deref().unwrap_or(""),
        version = stored.marker.version.as_deref().unwrap_or(""),
        "change marker recorded"
    );
    Ok(stored)
}

/// The instances that sent a heartbeat within [`LIVE_WINDOW`], and who differs.
pub async fn drift(history: &History) -> Result<DriftReport, HistoryError> {
    let all = history.observed(history.store()?.instances().await)?;
    let window = u64::try_from(LIVE_WINDOW.as_millis()).unwrap_or(u64::MAX);
    let seen_since = now_unix_ms().saturating_sub(window);
    Ok(DriftReport::assess(history.instance(), all, seen_since))
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

//! Delivery: the outbox in memory, written through to the store, and the loop that sends.
//!
//! Why memory first: a dead database must not silence the alerts (DESIGN.md §6: "alerts keep
//! flowing to notifiers"). Every notification is held here and sent from here; every change
//! (queued, attempted, delivered, given up, expired) marks it *dirty*, and dirty entries are
//! written to the store with the idempotent [`Store::sync_notification`] as soon as it
//! answers. So:
//! - a restart reloads the PENDING rows and sends them (nothing lost);
//! - a receiver outage only delays: retries back off with full jitter, honour `Retry-After`,
//!   and stop at the notification's maximum age; the first success after an outage releases
//!   the target's other waiting notifications at once;
//! - "once": an entry the store already holds as final (a replay after a restart) is adopted
//!   as final and not sent; a delivered entry is never sent again; an entry whose store write
//!   failed after delivery stays marked delivered in memory and is written later.
//!
//! One entry's life, beside the store row's (`ballast_core::notification`):
//!
//! ```text
//!   queue ──▶ PENDING ──send ok──────────────────────────────▶ DELIVERED
//!              │  ▲  └──now ≥ expires────────────────────────▶ EXPIRED
//!  retryable   │  │
//!  failure     └──┘ (not before: back-off / Retry-After)
//!              └──permanent failure, or next try past expiry─▶ FAILED
//!   (any change ──▶ dirty ──store answers──▶ clean)
//! ```
//!
//! Each target sends one notification at a time, in queue order, within its rate (a token
//! bucket per target); targets do not wait for each other. A `Retry-After` (Slack's `429`)
//! pauses the whole target until then. A send is bounded by
//! [`SEND_TIMEOUT`] and counts as a retryable failure when it runs out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_core::{NewNotification, Notification, NotificationLog, NotificationState};
use ballast_store::{Store, StoreError};
use serde::Serialize;

use crate::backoff::{Backoff, TokenBucket};
use crate::message::Message;
use crate::notifier::{Delivered, SendError};
use crate::outbox::{after_send, Outcome};
use crate::receiver::{Receivers, Target};

/// The longest one send may take (an email tries its relays in turn within it).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Finished entries kept in memory for the log (when there is no store) and for dedup.
pub const KEEP_FINISHED: usize = 2000;
/// The longest a store write may hold up sending.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long sending goes on from memory alone after a store write failed.
pub const STORE_RETRY: Duration = Duration::from_secs(2);
/// Pending entries held at most; beyond, the oldest is given up and counted.
pub const MAX_PENDING: usize = 20_000;

/// Where delivery finds the store, and tells about its failures.
pub trait StoreAccess: Send + Sync {
    /// The store, when one is configured and open.
    fn store(&self) -> Option<Store>;
    /// A store operation failed (for health reports).
    fn failed(&self, error: StoreError);
}

/// Counters of one target, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetStats {
    pub queued: u64,
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub attempts_failed: u64,
    pub failed: u64,
    pub expired: u64,
    pub pending: u64,
    /// Times the rate limit held a notification back.
    pub rate_limited: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    n: Notification,
    /// Whether `n.id` is the store's id (else a local one, negative space kept apart).
    stored: bool,
    dirty: bool,
    in_flight: bool,
}

#[derive(Default)]
struct State {
    /// By dedup key.
    entries: BTreeMap<String, Entry>,
    /// Dedup keys in queue order.
    order: Vec<String>,
    next_local_id: u64,
    buckets: BTreeMap<String, TokenBucket>,
    stats: BTreeMap<String, TargetStats>,
    /// Entries dropped because too many were pending.
    dropped: u64,
    /// After a failed store write, no write is tried before this moment.
    store_retry_at: u64,
    /// Targets that asked to wait (`Retry-After`): nothing is sent to them before then.
    paused: BTreeMap<String, u64>,
}

impl State {
    /// Adds an entry not yet in the store, with a local id (written on the next sync).
    fn add_local(&mut self, mut n: Notification) {
        n.id = self.next_local_id;
        self.next_local_id += 1;
        self.order.push(n.new.dedup_key.clone());
        self.entries.insert(
            n.new.dedup_key.clone(),
            Entry {
                n,
                stored: false,
                dirty: true,
                in_flight: false,
            },
        );
    }
}

/// The delivery loop's handle: queue notifications, read the log and the counters.
#[derive(Clone)]
pub struct Delivery {
    state: Arc<Mutex<State>>,
    receivers: Arc<Mutex<Receivers>>,
    wake: Arc<tokio::sync::Notify>,
    backoff: Backoff,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Delivery {
    /// A delivery with nothing queued, sending to `receivers`.
    pub fn new(receivers: Receivers, backoff: Backoff) -> Delivery {
        Delivery {
            state: Arc::new(Mutex::new(State {
                next_local_id: 1 << 62,
                ..State::default()
            })),
            receivers: Arc::new(Mutex::new(receivers)),
            wake: Arc::new(tokio::sync::Notify::new()),
            backoff,
        }
    }

    /// Sends to these receivers from now on (a reload). Pending notifications to a target
    /// that no longer exists are given up when next due, saying why.
    pub fn set_receivers(&self, receivers: Receivers) {
        *lock(&self.receivers) = receivers;
        self.wake.notify_one();
    }

    /// Takes back rows the store kept (after a restart): pending ones will be sent, final
    /// ones are remembered so a replay is not sent again.
    pub fn load(&self, rows: Vec<Notification>) {
        let mut st = lock(&self.state);
        for n in rows {
            let key = n.new.dedup_key.clone();
            if st.entries.contains_key(&key) {
                continue;
            }
            if n.state == NotificationState::Pending {
                st.stats.entry(n.new.receiver.clone()).or_default().pending += 1;
            }
            st.order.push(key.clone());
            st.entries.insert(
                key,
                Entry {
                    n,
                    stored: true,
                    dirty: false,
                    in_flight: false,
                },
            );
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Queues notifications; one whose dedup key is known already is ignored.
    pub fn queue(&self, rows: Vec<NewNotification>) {
        if rows.is_empty() {
            return;
        }
        let mut st = lock(&self.state);
        for new in rows {
            if st.entries.contains_key(&new.dedup_key) {
                continue;
            }
            let stats = st.stats.entry(new.receiver.clone()).or_default();
            stats.queued += 1;
            stats.pending += 1;
            st.add_local(Notification {
                id: 0,
                new,
                state: NotificationState::Pending,
                attempts: 0,
                last_attempt_unix_ms: None,
                last_error: None,
                delivered_unix_ms: None,
                answer: None,
            });
        }
        drop_excess(&mut st);
        drop(st);
        self.wake.notify_one();
    }

    /// Counters per target.
    pub fn stats(&self) -> BTreeMap<String, TargetStats> {
        lock(&self.state).stats.clone()
    }

    /// Notifications given up because too many were pending.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Entries not yet written to the store.
    pub fn unsaved(&self) -> usize {
        lock(&self.state)
            .entries
            .values()
            .filter(|e| e.dirty)
            .count()
    }

    /// The log as memory holds it, newest first (used when the store is off or down).
    pub fn memory_log(&self, limit: usize) -> Vec<NotificationLog> {
        // Copied under the lock, turned into log lines (each reads its payload for a
        // headline) after it, so that senders never wait on the log.
        let rows: Vec<Notification> = {
            let st = lock(&self.state);
            st.order
                .iter()
                .rev()
                .filter_map(|k| st.entries.get(k))
                .take(limit)
                .map(|e| e.n.clone())
                .collect()
        };
        rows.iter().map(Notification::log).collect()
    }

    /// Every entry memory holds, payloads included, oldest first (what a reload's new
    /// groupers learn from).
    pub fn recent_rows(&self) -> Vec<Notification> {
        let st = lock(&self.state);
        st.order
            .iter()
            .filter_map(|k| st.entries.get(k))
            .map(|e| e.n.clone())
            .collect()
    }

    /// Records a test message already sent (or not) to `target`, for the log.
    pub fn record_test(
        &self,
        target: &str,
        message: &Message,
        result: &Result<Delivered, SendError>,
        now: u64,
    ) {
        let Ok(new) = crate::outbox::new_notification(
            target,
            message,
            format!("test/{target}/{now}/{}", fastrand::u64(..)),
            now,
            now,
            0,
        ) else {
            return;
        };
        let (state, answer, last_error) = match result {
            Ok(d) => (NotificationState::Delivered, Some(d.answer.clone()), None),
            Err(e) => (NotificationState::Failed, None, Some(e.to_string())),
        };
        let mut st = lock(&self.state);
        st.add_local(Notification {
            id: 0,
            new,
            state,
            attempts: 1,
            last_attempt_unix_ms: Some(now),
            last_error,
            delivered_unix_ms: answer.as_ref().map(|_| now),
            answer,
        });
        drop(st);
        self.wake.notify_one();
    }

    /// Runs the loop until the task is dropped.
    pub async fn run(self, store: Arc<dyn StoreAccess>) {
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::unbounded_channel::<(String, Result<Delivered, SendError>)>();
        loop {
            self.sync(store.as_ref()).await;
            let now = now_ms();
            let next = self.start_sends(now, &done_tx);
            let wait = next
                .map(|at| Duration::from_millis(at.saturating_sub(now).clamp(5, 1000)))
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                Some((key, result)) = done_rx.recv() => {
                    self.finish(&key, result, now_ms());
                    while let Ok((key, result)) = done_rx.try_recv() {
                        self.finish(&key, result, now_ms());
                    }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Writes dirty entries to the store; adopts the store's state for replays.
    async fn sync(&self, access: &dyn StoreAccess) {
        let Some(store) = access.store() else {
            return;
        };
        let dirty: Vec<Notification> = {
            let st = lock(&self.state);
            st.order
                .iter()
                .filter_map(|k| st.entries.get(k))
                .filter(|e| e.dirty && !e.in_flight)
                .map(|e| e.n.clone())
                .collect()
        };
        if now_ms() < lock(&self.state).store_retry_at {
            return;
        }
        for n in dirty {
            let write = tokio::time::timeout(STORE_TIMEOUT, store.sync_notification(&n)).await;
            let write = write.unwrap_or(Err(StoreError::TimedOut(STORE_TIMEOUT)));
            match write {
                Ok(stored) => {
                    let mut st = lock(&self.state);
                    let st = &mut *st;
                    let Some(e) = st.entries.get_mut(&n.new.dedup_key) else {
                        continue;
                    };
                    if e.in_flight {
                        continue;
                    }
                    let replayed = e.n.state == NotificationState::Pending
                        && stored.state.is_final()
                        && !e.stored;
                    let mut written = n.clone();
                    written.id = stored.id;
                    e.n.id = stored.id;
                    e.stored = true;
                    // Changed again while the write ran: write again next time.
                    e.dirty = e.n != written;
                    if replayed {
                        let stats = st.stats.entry(n.new.receiver.clone()).or_default();
                        stats.pending = stats.pending.saturating_sub(1);
                        e.n = stored;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "notification outbox: store write failed; delivery goes on from memory");
                    access.failed(err);
                    lock(&self.state).store_retry_at = now_ms() + STORE_RETRY.as_millis() as u64;
                    return;
                }
            }
        }
        let mut st = lock(&self.state);
        prune(&mut st);
    }

    /// Starts every send that is due and allowed; returns when to look again.
    fn start_sends(
        &self,
        now: u64,
        done: &tokio::sync::mpsc::UnboundedSender<(String, Result<Delivered, SendError>)>,
    ) -> Option<u64> {
        let receivers = lock(&self.receivers).clone();
        let mut st = lock(&self.state);
        let st = &mut *st;
        let mut next: Option<u64> = None;
        let mut busy: Vec<String> = st
            .entries
            .values()
            .filter(|e| e.in_flight)
            .map(|e| e.n.new.receiver.clone())
            .collect();
        let mut soonest = |at: u64| next = Some(next.map_or(at, |n: u64| n.min(at)));
        for key in &st.order {
            let Some(e) = st.entries.get_mut(key) else {
                continue;
            };
            if e.in_flight || e.n.state != NotificationState::Pending {
                continue;
            }
            let target_name = e.n.new.receiver.clone();
            let stats = st.stats.entry(target_name.clone()).or_default();
            if e.n.new.expires_unix_ms <= now {
                e.n.state = NotificationState::Expired;
                e.dirty = true;
                stats.pending = stats.pending.saturating_sub(1);
                stats.expired += 1;
                tracing::warn!(target = %target_name, attempts = e.n.attempts, "notification expired undelivered");
                continue;
            }
            if busy.contains(&target_name) {
                continue;
            }
            if let Some(&until) = st.paused.get(&target_name) {
                if until > now {
                    soonest(until);
                    continue;
                }
            }
            if e.n.new.not_before_unix_ms > now {
                soonest(e.n.new.not_before_unix_ms);
                continue;
            }
            let Some(target) = receivers.target(&target_name).cloned() else {
                e.n.state = NotificationState::Failed;
                e.n.last_error = Some(format!("receiver {target_name} is no longer configured"));
                e.dirty = true;
                stats.pending = stats.pending.saturating_sub(1);
                stats.failed += 1;
                continue;
            };
            let bucket = st.buckets.entry(target_name.clone()).or_insert_with(|| {
                TokenBucket::new(&target.rate, now).unwrap_or_else(|_| {
                    TokenBucket::new(&Default::default(), now).expect("default rate")
                })
            });
            if let Err(at) = bucket.try_take(now) {
                stats.rate_limited += 1;
                busy.push(target_name);
                soonest(at);
                continue;
            }
            let message: Message = match serde_json::from_str(&e.n.new.payload_json) {
                Ok(m) => m,
                Err(err) => {
                    e.n.state = NotificationState::Failed;
                    e.n.last_error = Some(format!("the stored message cannot be read: {err}"));
                    e.dirty = true;
                    stats.pending = stats.pending.saturating_sub(1);
                    stats.failed += 1;
                    continue;
                }
            };
            e.in_flight = true;
            busy.push(target_name);
            spawn_send(key.clone(), target, message, done.clone());
        }
        next
    }

    /// Applies a send's result to its entry.
    fn finish(&self, key: &str, result: Result<Delivered, SendError>, now: u64) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let Some(e) = st.entries.get_mut(key) else {
            return;
        };
        e.in_flight = false;
        e.dirty = true;
        let attempt = e.n.attempts + 1;
        e.n.attempts = attempt;
        e.n.last_attempt_unix_ms = Some(now);
        let stats = st.stats.entry(e.n.new.receiver.clone()).or_default();
        let mut jitter = |n: u64| fastrand::u64(0..=n);
        match after_send(
            &result,
            attempt,
            now,
            e.n.new.expires_unix_ms,
            &self.backoff,
            &mut jitter,
        ) {
            Outcome::Delivered { answer } => {
                e.n.state = NotificationState::Delivered;
                e.n.delivered_unix_ms = Some(now);
                e.n.answer = Some(answer);
                stats.delivered += 1;
                stats.pending = stats.pending.saturating_sub(1);
                // The target answers again: what waits out a back-off for it goes now, in
                // queue order, rather than at its jittered retry time.
                let target = e.n.new.receiver.clone();
                for other in st.entries.values_mut() {
                    if other.n.new.receiver == target
                        && other.n.state == NotificationState::Pending
                        && other.n.attempts > 0
                        && other.n.new.not_before_unix_ms > now
                    {
                        other.n.new.not_before_unix_ms = now;
                        other.dirty = true;
                    }
                }
            }
            Outcome::Retry { at_unix_ms, error } => {
                if matches!(
                    result,
                    Err(SendError::Retry {
                        retry_after: Some(_),
                        ..
                    })
                ) {
                    // The receiver said when: the whole target waits, not just this one.
                    st.paused.insert(e.n.new.receiver.clone(), at_unix_ms);
                }
                tracing::info!(target = %e.n.new.receiver, attempt, error = %error, retry_in_ms = at_unix_ms.saturating_sub(now), "notification not delivered; will retry");
                e.n.new.not_before_unix_ms = at_unix_ms;
                e.n.last_error = Some(error);
                stats.attempts_failed += 1;
            }
            Outcome::GiveUp { error } => {
                tracing::warn!(target = %e.n.new.receiver, attempt, error = %error, "notification given up");
                e.n.state = NotificationState::Failed;
                e.n.last_error = Some(error);
                stats.attempts_failed += 1;
                stats.failed += 1;
                stats.pending = stats.pending.saturating_sub(1);
            }
        }
        drop(guard);
        self.wake.notify_one();
    }
}

fn spawn_send(
    key: String,
    target: Target,
    message: Message,
    done: tokio::sync::mpsc::UnboundedSender<(String, Result<Delivered, SendError>)>,
) {
    tokio::spawn(async move {
        let result = match tokio::time::timeout(SEND_TIMEOUT, target.notifier.send(&message)).await
        {
            Ok(r) => r,
            Err(_) => Err(SendError::retry(format!(
                "{}: no answer within {} s",
                target.name,
                SEND_TIMEOUT.as_secs()
            ))),
        };
        let _ = done.send((key, result));
    });
}

/// Forgets finished, written entries beyond [`KEEP_FINISHED`], oldest first.
fn prune(st: &mut State) {
    let finished = st
        .entries
        .values()
        .filter(|e| e.n.state.is_final() && !e.dirty)
        .count();
    let mut extra = finished.saturating_sub(KEEP_FINISHED);
    if extra == 0 {
        return;
    }
    let entries = &mut st.entries;
    st.order.retain(|k| {
        if extra == 0 {
            return true;
        }
        match entries.get(k) {
            Some(e) if e.n.state.is_final() && !e.dirty => {
                entries.remove(k);
                extra -= 1;
                false
            }
            Some(_) => true,
            None => false,
        }
    });
}

/// Gives up the oldest pending entries beyond [`MAX_PENDING`] (a store that stays down
/// through an endless storm must not exhaust memory).
fn drop_excess(st: &mut State) {
    let pending = st
        .entries
        .values()
        .filter(|e| e.n.state == NotificationState::Pending)
        .count();
    let mut extra = pending.saturating_sub(MAX_PENDING);
    for k in &st.order {
        if extra == 0 {
            break;
        }
        if let Some(e) = st.entries.get_mut(k) {
            if e.n.state == NotificationState::Pending && !e.in_flight {
                e.n.state = NotificationState::Failed;
                e.n.last_error = Some(format!(
                    "dropped: more than {MAX_PENDING} notifications were pending"
                ));
                e.dirty = true;
                let stats = st.stats.entry(e.n.new.receiver.clone()).or_default();
                stats.pending = stats.pending.saturating_sub(1);
                stats.failed += 1;
                st.dropped += 1;
                extra -= 1;
            }
        }
    }
}

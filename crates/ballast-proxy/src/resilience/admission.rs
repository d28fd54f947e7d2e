//! Admission control for one upstream: at most `limit` requests inside it at once (the limit
//! comes from [`super::limit::Estimator`]); the rest wait in priority order for a bounded time,
//! or are shed with a 503 before they touch any server.
//!
//! The rules, and why they make "`critical` is never shed while a lower class is admitted" true:
//! - A free slot goes to the most important class waiting, oldest first. A lower class is never
//!   let in while a higher one waits.
//! - A full queue makes room by evicting the newest waiter of the lowest class below the
//!   arrival's; an arrival with nobody below it to evict is shed itself.
//! - A waiter is shed when it has waited `max_wait` (the queueing-delay bound): a request that
//!   would wait longer is better answered now so the client can go elsewhere or back off.
//! - While saturated, `shed` shares of a class are refused at once, without queueing (e.g. half
//!   of `low`), leaving the queue to the classes that matter.
//!
//! A [`Permit`] is the slot; it is released when the request's exchange ends (its response body
//! done, or the client gone), with the latency sample that moves the limit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ballast_config::{ConcurrencyLimit, Priority};
use ballast_core::Event;
use tokio::sync::oneshot;

use super::limit::Estimator;
use crate::clock::now_ms;
use crate::events::EventLog;

/// Why a request was shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// Refused at once: its class's `shed` share while saturated.
    Busy,
    /// The queue was full of requests at least as important.
    QueueFull,
    /// It waited `max_wait` without a slot.
    Timeout,
    /// A more important arrival took its place in a full queue.
    Evicted,
}

impl ShedReason {
    pub const ALL: [ShedReason; 4] = [
        ShedReason::Busy,
        ShedReason::QueueFull,
        ShedReason::Timeout,
        ShedReason::Evicted,
    ];

    /// The access log's `error` for a request shed for this reason.
    pub fn error_kind(self) -> &'static str {
        match self {
            ShedReason::Busy => "shed_busy",
            ShedReason::QueueFull => "shed_queue_full",
            ShedReason::Timeout => "shed_timeout",
            ShedReason::Evicted => "shed_evicted",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ShedReason::Busy => "busy",
            ShedReason::QueueFull => "queue_full",
            ShedReason::Timeout => "timeout",
            ShedReason::Evicted => "evicted",
        }
    }
}

/// What a waiter is sent: its slot, or why it lost its place.
type Grant = Result<Permit, ShedReason>;

struct Waiter {
    tx: oneshot::Sender<Grant>,
    /// When it is shed if no slot came (`clock::now_ms`).
    deadline_ms: u64,
}

struct Inner {
    cfg: ConcurrencyLimit,
    est: Estimator,
    in_flight: u32,
    /// One FIFO per class, by [`Priority::rank`].
    queues: [VecDeque<Waiter>; 4],
    /// A sweeper task is shedding waiters past their deadline (it runs while any wait).
    sweeping: bool,
    /// Shedding episode: when the last shed happened and how many so far (0: not shedding).
    last_shed_ms: u64,
    episode_shed: u64,
}

impl Inner {
    fn waiting(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    fn saturated(&self) -> bool {
        self.in_flight >= self.est.limit() || self.waiting() > 0
    }

    /// Takes a slot.
    fn take_slot(&mut self) {
        self.in_flight += 1;
        self.est.in_flight(self.in_flight);
    }

    /// Hands free slots to waiters, most important class first. The slot travels inside the
    /// message, so a waiter that goes away after it was sent still gives it back.
    fn grant(&mut self, adm: &Arc<Admission>) {
        while self.in_flight < self.est.limit() {
            let Some(w) = self.queues.iter_mut().find_map(VecDeque::pop_front) else {
                return;
            };
            self.take_slot();
            adm.admitted.fetch_add(1, Relaxed);
            if let Err(Ok(mut lost)) = w.tx.send(Ok(Permit::new(adm.clone()))) {
                // The waiter's client went away: the slot goes to the next one.
                lost.armed = false;
                self.in_flight -= 1;
                adm.admitted.fetch_sub(1, Relaxed);
            }
        }
    }

    /// Notes a shed request; true when it starts a shedding episode.
    fn note_shed(&mut self) -> bool {
        let started = self.episode_shed == 0;
        self.episode_shed += 1;
        self.last_shed_ms = now_ms();
        started
    }
}

/// Admission control of one upstream (shared by every route to it; kept across reloads).
pub struct Admission {
    upstream: String,
    inner: Mutex<Inner>,
    events: Arc<EventLog>,
    /// Requests let in, and shed by [`ShedReason`] (in `ShedReason::ALL` order) and class.
    pub admitted: AtomicU64,
    pub shed: [[AtomicU64; 4]; 4],
}

pub use ballast_core::snapshot::AdmissionNow as Snapshot;

impl Admission {
    pub fn new(upstream: &str, cfg: &ConcurrencyLimit, events: Arc<EventLog>) -> Self {
        Self {
            upstream: upstream.to_string(),
            inner: Mutex::new(Inner {
                est: Estimator::new(cfg, now_ms()),
                cfg: cfg.clone(),
                in_flight: 0,
                queues: Default::default(),
                sweeping: false,
                last_shed_ms: 0,
                episode_shed: 0,
            }),
            events,
            admitted: AtomicU64::new(0),
            shed: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a (re)loaded configuration; the learned limit is kept within the new bounds.
    pub fn configure(self: &Arc<Self>, cfg: &ConcurrencyLimit) {
        let mut g = self.lock();
        if g.cfg != *cfg {
            g.est.configure(cfg);
            g.cfg = cfg.clone();
            g.grant(self);
        }
    }

    pub fn retry_after(&self) -> Duration {
        self.lock().cfg.retry_after
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        Snapshot {
            limit: g.est.limit(),
            in_flight: g.in_flight,
            waiting: g.waiting(),
            baseline_ms: g.est.baseline_ms(),
            recent_ms: g.est.recent_ms(),
            shedding: g.episode_shed > 0,
        }
    }

    /// A slot for a request of `class`, at once or after waiting; `Err` when it is shed.
    pub async fn acquire(self: &Arc<Self>, class: Priority) -> Result<Permit, ShedReason> {
        let rank = class.rank();
        let (rx, start_sweeper) = {
            let mut g = self.lock();
            if !g.saturated() {
                g.take_slot();
                self.admitted.fetch_add(1, Relaxed);
                return Ok(Permit::new(self.clone()));
            }
            if g.cfg.shed[rank] > 0.0 && fastrand::f64() < g.cfg.shed[rank] {
                return Err(self.shed(g, class, ShedReason::Busy));
            }
            if g.waiting() >= g.cfg.max_queue as usize {
                // Make room by evicting the newest of the lowest class below this one.
                let victim = (rank + 1..4)
                    .rev()
                    .find_map(|r| g.queues[r].pop_back().map(|w| (r, w)));
                let Some((r, w)) = victim else {
                    return Err(self.shed(g, class, ShedReason::QueueFull));
                };
                // A waiter that is already gone needs no answer and is not counted.
                if w.tx.send(Err(ShedReason::Evicted)).is_ok() {
                    self.count(Priority::ALL[r], ShedReason::Evicted);
                    if g.note_shed() {
                        self.started(g.est.limit());
                    }
                }
            }
            g.est.pressed();
            let (tx, rx) = oneshot::channel();
            let deadline_ms = now_ms() + g.cfg.max_wait.as_millis() as u64;
            g.queues[rank].push_back(Waiter { tx, deadline_ms });
            let sweep = !std::mem::replace(&mut g.sweeping, true);
            (rx, sweep)
        };
        if start_sweeper {
            tokio::spawn(self.clone().sweep());
        }
        // The grant, an eviction, or the sweeper's timeout: each is sent under the lock by
        // whoever takes the waiter off its queue, so exactly one arrives.
        rx.await.unwrap_or(Err(ShedReason::Evicted))
    }

    /// Sheds waiters whose `max_wait` has run out, while any wait. One timer for the whole
    /// queue rather than one per waiter: a queued request is the common case when the limit
    /// sits below the client concurrency, and a timer each (with the wake-ups of the runtime it
    /// caused) was a measurable share of the gateway's CPU.
    async fn sweep(self: Arc<Self>) {
        loop {
            let next = {
                let mut g = self.lock();
                let now = now_ms();
                let mut started = false;
                for (r, class) in Priority::ALL.iter().enumerate() {
                    while g.queues[r].front().is_some_and(|w| w.deadline_ms <= now) {
                        let Some(w) = g.queues[r].pop_front() else {
                            break;
                        };
                        // A waiter that is already gone needs no answer and is not counted.
                        if w.tx.send(Err(ShedReason::Timeout)).is_ok() {
                            self.count(*class, ShedReason::Timeout);
                            g.est.pressed();
                            started |= g.note_shed();
                        }
                    }
                }
                // Waiters join each queue in deadline order: the fronts hold the earliest.
                let next = g
                    .queues
                    .iter()
                    .filter_map(|q| q.front().map(|w| w.deadline_ms))
                    .min();
                if next.is_none() {
                    g.sweeping = false;
                }
                let limit = g.est.limit();
                drop(g);
                if started {
                    self.started(limit);
                }
                next
            };
            let Some(at) = next else {
                return;
            };
            let wait = at.saturating_sub(now_ms()).max(1);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    fn count(&self, class: Priority, reason: ShedReason) {
        let r = ShedReason::ALL
            .iter()
            .position(|x| *x == reason)
            .unwrap_or(0);
        self.shed[r][class.rank()].fetch_add(1, Relaxed);
    }

    /// Counts a shed request, starting a shedding episode (with its event) if none is on.
    fn shed(
        &self,
        mut g: MutexGuard<'_, Inner>,
        class: Priority,
        reason: ShedReason,
    ) -> ShedReason {
        self.count(class, reason);
        g.est.pressed();
        let started = g.note_shed();
        let limit = g.est.limit();
        drop(g);
        if started {
            self.started(limit);
        }
        reason
    }

    fn started(&self, limit: u32) {
        tracing::warn!(upstream = %self.upstream, limit, "shedding load");
        self.events.emit(Event::SheddingStarted {
            upstream: self.upstream.clone(),
            limit,
        });
    }

    fn release(self: &Arc<Self>, rtt: Duration, overload: bool) {
        let mut g = self.lock();
        g.in_flight = g.in_flight.saturating_sub(1);
        let now = now_ms();
        let Inner { cfg, est, .. } = &mut *g;
        est.sample(cfg, rtt.as_micros() as f64, overload, now);
        g.grant(self);
        // An episode ends after a second without a shed request.
        let ended = (g.episode_shed > 0 && now.saturating_sub(g.last_shed_ms) > 1000)
            .then(|| std::mem::take(&mut g.episode_shed));
        let limit = g.est.limit();
        drop(g);
        if let Some(shed) = ended {
            tracing::info!(upstream = %self.upstream, shed, "load shedding stopped");
            self.events.emit(Event::SheddingStopped {
                upstream: self.upstream.clone(),
                shed,
                limit,
            });
        }
    }
}

/// A slot in an upstream, held until the request's exchange ends.
pub struct Permit {
    adm: Arc<Admission>,
    start: Instant,
    /// The upstream's time to answer, when one answered (else the time held is the sample).
    pub rtt: Option<Duration>,
    /// The request ended in an overload answer (503/429 from the upstream, or a timeout).
    pub overload: bool,
    /// False for a slot that was never handed over (its release is done by hand).
    armed: bool,
}

impl Permit {
    fn new(adm: Arc<Admission>) -> Self {
        Self {
            adm,
            start: Instant::now(),
            rtt: None,
            overload: false,
            armed: true,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.armed {
            let rtt = self.rtt.unwrap_or_else(|| self.start.elapsed());
            self.adm.release(rtt, self.overload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_config::LimitAlgorithm;

    fn cfg(limit: u32, max_queue: u32) -> ConcurrencyLimit {
        ConcurrencyLimit {
            algorithm: LimitAlgorithm::Fixed,
            initial: limit,
            min: 1,
            max: 100,
            tolerance: 1.5,
            max_wait: Duration::from_millis(200),
            max_queue,
            retry_after: Duration::from_secs(1),
            shed: [0.0; 4],
        }
    }

    fn adm(c: &ConcurrencyLimit) -> Arc<Admission> {
        Arc::new(Admission::new("app", c, Arc::new(EventLog::default())))
    }

    #[tokio::test]
    async fn a_free_slot_goes_to_the_most_important_waiter() {
        let a = adm(&cfg(1, 10));
        let held = a.acquire(Priority::Normal).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for class in [
            Priority::Low,
            Priority::Normal,
            Priority::Critical,
            Priority::Low,
        ] {
            let (a, order) = (a.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let p = a.acquire(class).await;
                order.lock().unwrap().push(class);
                tokio::time::sleep(Duration::from_millis(5)).await;
                p.is_ok()
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(a.snapshot().waiting, 4);
        drop(held);
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(
            *order.lock().unwrap(),
            [
                Priority::Critical,
                Priority::Normal,
                Priority::Low,
                Priority::Low
            ]
        );
    }

    #[tokio::test]
    async fn a_full_queue_evicts_the_lowest_class_never_a_higher_one() {
        let a = adm(&cfg(1, 2));
        let _held = a.acquire(Priority::Critical).await.unwrap();
        let low = tokio::spawn({
            let a = a.clone();
            async move { a.acquire(Priority::Low).await.err() }
        });
        let high = tokio::spawn({
            let a = a.clone();
            async move { a.acquire(Priority::High).await.err() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Queue full (low, high): a critical arrival evicts low.
        let crit = tokio::spawn({
            let a = a.clone();
            async move { a.acquire(Priority::Critical).await.err() }
        });
        assert_eq!(low.await.unwrap(), Some(ShedReason::Evicted));
        // Queue full (high, critical): another low has nobody below it.
        assert_eq!(
            a.acquire(Priority::Low).await.err(),
            Some(ShedReason::QueueFull)
        );
        // Both waiters time out after max_wait while the slot stays held.
        assert_eq!(high.await.unwrap(), Some(ShedReason::Timeout));
        assert_eq!(crit.await.unwrap(), Some(ShedReason::Timeout));
        assert_eq!(a.snapshot().waiting, 0);
        let evicted = a.shed[3][Priority::Low.rank()].load(Relaxed);
        assert_eq!(evicted, 1);
    }

    #[tokio::test]
    async fn busy_share_is_refused_at_once_and_events_mark_the_episode() {
        let mut c = cfg(1, 0);
        c.shed[Priority::Low.rank()] = 1.0;
        let a = adm(&c);
        let held = a.acquire(Priority::Critical).await.unwrap();
        let t0 = Instant::now();
        assert_eq!(a.acquire(Priority::Low).await.err(), Some(ShedReason::Busy));
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert_eq!(
            a.acquire(Priority::Normal).await.err(),
            Some(ShedReason::QueueFull)
        );
        drop(held);
        // Not saturated any more: low is admitted.
        assert!(a.acquire(Priority::Low).await.is_ok());
        let kinds: Vec<_> = a.events.since(0).into_iter().map(|e| e.event).collect();
        assert_eq!(
            kinds,
            [Event::SheddingStarted {
                upstream: "app".into(),
                limit: 1
            }]
        );
        assert_eq!(a.snapshot().in_flight, 0);
    }
}

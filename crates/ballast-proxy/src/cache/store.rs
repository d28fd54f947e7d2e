//! The store of one route's cache: a byte-bounded moka LRU of [`Stored`] answers, the variants
//! of one key side by side, entries expiring when no variant can be served even stale, and the
//! counters and stale-serving state the route reports.

use super::*;

/// What a route's cache did; registered per route name, so it survives reloads.
#[derive(Default)]
pub struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale_served: AtomicU64,
    pub stores: AtomicU64,
    /// Entries removed to make room.
    pub evictions: AtomicU64,
    /// Answers not stored because their body was larger than `max_object`.
    pub too_large: AtomicU64,
    pub purged: AtomicU64,
}

/// One stored answer.
pub struct Stored {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    /// The response's `Vary` names and this request's values for them.
    pub(super) vary: Vec<HeaderName>,
    pub(super) vary_values: Vec<Option<String>>,
    pub(super) freshness: Freshness,
    /// When the response head arrived (monotonic ms).
    pub(super) arrived_ms: u64,
}

impl Stored {
    pub(super) fn age_ms(&self, now: u64) -> u64 {
        self.freshness.initial_age_ms + now.saturating_sub(self.arrived_ms)
    }

    /// Time left until it is no longer usable, even stale.
    pub(super) fn usable_for(&self, now: u64) -> Duration {
        let end = self
            .freshness
            .lifetime_ms
            .saturating_add(self.freshness.stale_ms);
        Duration::from_millis(end.saturating_sub(self.age_ms(now)))
    }

    pub(super) fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        self.body.len() + headers + OVERHEAD
    }

    pub(super) fn matches(&self, req: &HeaderMap) -> bool {
        self.vary.is_empty() || rules::vary_values(&self.vary, req) == self.vary_values
    }
}

/// The variants stored under one key.
pub(super) struct Entry {
    /// The request path, for purges by prefix.
    pub(super) path: String,
    pub(super) variants: Vec<Arc<Stored>>,
}

impl Entry {
    pub(super) fn weight(&self, key: &str) -> u32 {
        let w =
            key.len() + self.path.len() + self.variants.iter().map(|v| v.weight()).sum::<usize>();
        u32::try_from(w).unwrap_or(u32::MAX)
    }
}

/// Removes entries when their last variant can no longer be served, even stale.
pub(super) struct UsableFor;

impl moka::Expiry<String, Arc<Entry>> for UsableFor {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let now = now_ms();
        value.variants.iter().map(|v| v.usable_for(now)).max()
    }

    fn expire_after_update(
        &self,
        key: &String,
        value: &Arc<Entry>,
        updated_at: std::time::Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

/// The cache of one route.
pub struct RouteCache {
    pub route: String,
    /// The upstream it was filled from: a route moved to another upstream starts empty.
    pub(super) upstream: String,
    pub cfg: CacheConfig,
    pub(super) store: moka::sync::Cache<String, Arc<Entry>>,
    pub counters: Arc<CacheCounters>,
    pub(super) serving_stale: AtomicBool,
}

impl RouteCache {
    pub fn new(
        route: &str,
        upstream: &str,
        cfg: &CacheConfig,
        counters: Arc<CacheCounters>,
    ) -> Self {
        let evicted = counters.clone();
        let store = moka::sync::Cache::builder()
            .max_capacity(cfg.max_size)
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|k: &String, v: &Arc<Entry>| v.weight(k))
            .expire_after(UsableFor)
            .eviction_listener(move |_k, _v, cause| {
                if cause == RemovalCause::Size {
                    evicted.evictions.fetch_add(1, Relaxed);
                }
            })
            .build();
        Self {
            route: route.to_string(),
            upstream: upstream.to_string(),
            cfg: cfg.clone(),
            store,
            counters,
            serving_stale: AtomicBool::new(false),
        }
    }

    /// Whether this cache can go on serving a route with `cfg` on `upstream` after a reload.
    pub fn reusable_for(&self, upstream: &str, cfg: &CacheConfig) -> bool {
        self.upstream == upstream && self.cfg == *cfg
    }

    /// Keys stored and the bytes they weigh (after pending maintenance).
    pub fn usage(&self) -> (u64, u64) {
        self.store.run_pending_tasks();
        (self.store.entry_count(), self.store.weighted_size())
    }

    /// True while stale content stands in for the failing upstream.
    pub fn serving_stale(&self) -> bool {
        self.serving_stale.load(Relaxed)
    }

    /// Removes every entry whose path starts with `prefix` (all without one); returns how many.
    pub fn purge(&self, prefix: Option<&str>) -> u64 {
        let mut removed = 0;
        for (k, v) in self.store.iter() {
            if prefix.is_none_or(|p| v.path.starts_with(p)) {
                self.store.invalidate(k.as_str());
                removed += 1;
            }
        }
        self.store.run_pending_tasks();
        self.counters.purged.fetch_add(removed, Relaxed);
        removed
    }

    pub(super) fn insert(&self, key: String, path: String, stored: Stored) {
        let now = now_ms();
        let mut variants: Vec<Arc<Stored>> = match self.store.get(&key) {
            Some(e) => e
                .variants
                .iter()
                .filter(|v| {
                    let same_variant = v.vary == stored.vary && v.vary_values == stored.vary_values;
                    !same_variant && !v.usable_for(now).is_zero()
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        if variants.len() >= MAX_VARIANTS {
            variants.remove(0);
        }
        variants.push(Arc::new(stored));
        self.store.insert(key, Arc::new(Entry { path, variants }));
        self.counters.stores.fetch_add(1, Relaxed);
    }

    pub(super) fn end_stale(&self, events: &EventLog) {
        if self.serving_stale.load(Relaxed) && self.serving_stale.swap(false, Relaxed) {
            tracing::info!(route = %self.route, "cache: upstream answers again; stale serving ended");
            events.emit(Event::StaleServingEnded {
                route: self.route.clone(),
            });
        }
    }
}

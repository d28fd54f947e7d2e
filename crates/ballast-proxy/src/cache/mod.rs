//! The response cache of a route, and stale serving.
//!
//! Each route with a `cache` table has a byte-bounded LRU store (moka) of upstream answers to
//! `GET`, keyed by the configured request parts, with the variants of one key selected by the
//! response's `Vary`. [`rules`] decides what may be stored and for how long it is fresh.
//!
//! Request flow (`http::forward`):
//!
//! ```text
//!   GET/HEAD ──▶ Lookup::new ── fresh variant (and the client did not say no-cache)?
//!                  │ yes: served from memory with Age; no upstream, no concurrency slot
//!                  ▼ no: a stale variant still within its stale window is kept aside
//!   upstream attempts ──▶ answer: stored while it streams (Capture, ≤ max_object)
//!                  └─▶ failure (no healthy server, breaker open, or a `stale_on` status:
//!                      502 connect failure, 504 timeout, an upstream 5xx) ──▶ the kept
//!                      variant with Age and Warning 110/111, preferred over the sorry page
//!   POST/PUT/DELETE/PATCH ──▶ a 1xx-3xx answer removes the key's entry (RFC 9111 §4.4)
//! ```
//!
//! Stale serving per route, each transition an [`Event`]:
//!
//! ```text
//!   Fresh        --(stale content served for a failure)--> ServingStale
//!   ServingStale --(an upstream answer below 500)---------> Fresh
//! ```
//!
//! Not done: revalidation with the upstream (`If-None-Match` sent by the gateway), collapsing
//! concurrent misses into one upstream request, `stale-while-revalidate`, ranges.

pub mod rules;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use ballast_config::{CacheConfig, CacheKeyPart};
use ballast_core::Event;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use crate::clock::now_ms;
use crate::error::ProxyError;
use crate::events::EventLog;
use crate::http::body::ProxyBody;
use crate::http::exchange::Exchange;
use crate::http::headers;
use crate::router::RouteRt;
use rules::Freshness;

/// Sent with every answer of a cached route: `hit`, `stale` or `miss`.
pub static CACHE_HEADER: HeaderName = HeaderName::from_static("ballast-cache");
const STALE_WARNING: HeaderValue = HeaderValue::from_static("110 - \"Response is Stale\"");
const FAILED_WARNING: HeaderValue = HeaderValue::from_static("111 - \"Revalidation Failed\"");
/// Variants kept per key (different `Vary` values); the oldest goes first.
const MAX_VARIANTS: usize = 16;
/// Bytes counted per stored answer on top of its body, headers and key.
const OVERHEAD: usize = 256;

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
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The response's `Vary` names and this request's values for them.
    vary: Vec<HeaderName>,
    vary_values: Vec<Option<String>>,
    freshness: Freshness,
    /// When the response head arrived (monotonic ms).
    arrived_ms: u64,
}

impl Stored {
    fn age_ms(&self, now: u64) -> u64 {
        self.freshness.initial_age_ms + now.saturating_sub(self.arrived_ms)
    }

    /// Time left until it is no longer usable, even stale.
    fn usable_for(&self, now: u64) -> Duration {
        let end = self
            .freshness
            .lifetime_ms
            .saturating_add(self.freshness.stale_ms);
        Duration::from_millis(end.saturating_sub(self.age_ms(now)))
    }

    fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        self.body.len() + headers + OVERHEAD
    }

    fn matches(&self, req: &HeaderMap) -> bool {
        self.vary.is_empty() || rules::vary_values(&self.vary, req) == self.vary_values
    }
}

/// The variants stored under one key.
struct Entry {
    /// The request path, for purges by prefix.
    path: String,
    variants: Vec<Arc<Stored>>,
}

impl Entry {
    fn weight(&self, key: &str) -> u32 {
        let w =
            key.len() + self.path.len() + self.variants.iter().map(|v| v.weight()).sum::<usize>();
        u32::try_from(w).unwrap_or(u32::MAX)
    }
}

/// Removes entries when their last variant can no longer be served, even stale.
struct UsableFor;

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
    upstream: String,
    pub cfg: CacheConfig,
    store: moka::sync::Cache<String, Arc<Entry>>,
    pub counters: Arc<CacheCounters>,
    serving_stale: AtomicBool,
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

    fn insert(&self, key: String, path: String, stored: Stored) {
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

    fn end_stale(&self, events: &EventLog) {
        if self.serving_stale.load(Relaxed) && self.serving_stale.swap(false, Relaxed) {
            tracing::info!(route = %self.route, "cache: upstream answers again; stale serving ended");
            events.emit(Event::StaleServingEnded {
                route: self.route.clone(),
            });
        }
    }
}

/// The cache key of a request: the configured parts, one per line.
fn key(parts: &[CacheKeyPart], tls: bool, uri: &Uri, headers: &HeaderMap) -> String {
    let mut k = String::with_capacity(64);
    for p in parts {
        match p {
            CacheKeyPart::Scheme => k.push_str(if tls { "https" } else { "http" }),
            CacheKeyPart::Host => {
                let h = headers.get(header::HOST).and_then(|v| v.to_str().ok());
                k.extend(h.unwrap_or("").chars().map(|c| c.to_ascii_lowercase()));
            }
            CacheKeyPart::Path => k.push_str(uri.path()),
            CacheKeyPart::Query => k.push_str(uri.query().unwrap_or("")),
            CacheKeyPart::Header(name) => {
                let mut values = headers.get_all(name).iter().peekable();
                if values.peek().is_none() {
                    // Absent differs from empty.
                    k.push('\0');
                }
                for v in values {
                    k.push_str(&String::from_utf8_lossy(v.as_bytes()));
                    k.push(',');
                }
            }
            CacheKeyPart::Cookie(name) => match headers::cookie(headers, name) {
                Some(v) => k.push_str(v),
                None => k.push('\0'),
            },
        }
        k.push('\n');
    }
    k
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Head,
    /// POST, PUT, DELETE, PATCH...: a successful answer invalidates the key.
    Unsafe,
}

/// How one request uses its route's cache.
pub struct Lookup {
    cache: Arc<RouteCache>,
    kind: Kind,
    key: String,
    /// A fresh variant to serve.
    fresh: Option<Arc<Stored>>,
    /// A variant that may stand in for a failure.
    fallback: Option<Arc<Stored>>,
    no_store: bool,
}

impl Lookup {
    /// `None` when the route has no cache or the request is not one it deals with (`OPTIONS`,
    /// ranges, upgrades). `headers` are the request's as sent upstream.
    pub fn new(
        route: &RouteRt,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        tls: bool,
        upgrade: bool,
    ) -> Option<Self> {
        let cache = route.cache.as_ref()?;
        let kind = match *method {
            Method::GET => Kind::Get,
            Method::HEAD => Kind::Head,
            Method::OPTIONS | Method::TRACE | Method::CONNECT => return None,
            _ => Kind::Unsafe,
        };
        if upgrade || (kind != Kind::Unsafe && headers.contains_key(header::RANGE)) {
            return None;
        }
        let key = key(&cache.cfg.key, tls, uri, headers);
        let mut l = Lookup {
            cache: cache.clone(),
            kind,
            key,
            fresh: None,
            fallback: None,
            no_store: false,
        };
        if kind == Kind::Unsafe {
            return Some(l);
        }
        let req = rules::request_rules(headers);
        l.no_store = req.no_store;
        let now = now_ms();
        let found = cache.store.get(&l.key).and_then(|e| {
            e.variants
                .iter()
                .rev()
                .find(|v| v.matches(headers) && !v.usable_for(now).is_zero())
                .cloned()
        });
        match found {
            Some(v) if !req.skip_fresh && v.freshness.fresh_at(v.age_ms(now)) => {
                cache.counters.hits.fetch_add(1, Relaxed);
                l.fresh = Some(v);
            }
            other => {
                cache.counters.misses.fetch_add(1, Relaxed);
                l.fallback = other;
            }
        }
        Some(l)
    }

    /// The access-log label of a request that went upstream.
    pub fn label(&self) -> Option<&'static str> {
        (self.kind != Kind::Unsafe).then_some("miss")
    }

    /// Serves the fresh stored answer, if there is one; `ex` is called only then.
    pub fn serve_fresh(
        &self,
        req: &HeaderMap,
        ex: impl FnOnce() -> Box<Exchange>,
    ) -> Option<Response<ProxyBody>> {
        let stored = self.fresh.as_ref()?;
        Some(serve(ex(), stored, req, false))
    }

    /// Serves stale content in place of failure `err`, when the route's `stale_on` lists its
    /// status (no healthy server always qualifies) and a stored answer is within its stale
    /// window; `ex` is called only then.
    pub fn serve_stale(
        &self,
        err: &ProxyError,
        req: &HeaderMap,
        ex: impl FnOnce() -> Box<Exchange>,
    ) -> Option<Response<ProxyBody>> {
        let status = err.status().as_u16();
        if *err != ProxyError::NoServer && !self.cache.cfg.stale_on.contains(&status) {
            return None;
        }
        let stored = self
            .fallback
            .as_ref()
            .filter(|s| !s.usable_for(now_ms()).is_zero())?;
        let c = &self.cache;
        c.counters.stale_served.fetch_add(1, Relaxed);
        let mut ex = ex();
        ex.error = Some(err.kind());
        if !c.serving_stale.load(Relaxed) && !c.serving_stale.swap(true, Relaxed) {
            tracing::warn!(route = %c.route, cause = err.kind(), status, "cache: serving stale content while the upstream fails");
            ex.shared.events.emit(Event::StaleServingStarted {
                route: c.route.clone(),
                cause: err.kind().to_string(),
                status,
            });
        }
        Some(serve(ex, stored, req, true))
    }

    /// Called with every upstream answer: ends stale serving when it is below 500, removes
    /// the key after a successful unsafe request, and returns the copy to fill while the
    /// answer streams when it may be stored. `took` is the time to the response head.
    pub fn admit(
        &self,
        status: StatusCode,
        resp: &mut HeaderMap,
        req: &HeaderMap,
        path: &str,
        took: Duration,
        events: &EventLog,
    ) -> Option<Capture> {
        let c = &self.cache;
        if !status.is_server_error() {
            c.end_stale(events);
        }
        match self.kind {
            Kind::Unsafe => {
                if status.as_u16() < 400 {
                    c.store.invalidate(&self.key);
                }
                return None;
            }
            Kind::Head => {
                resp.insert(CACHE_HEADER.clone(), HeaderValue::from_static("miss"));
                return None;
            }
            Kind::Get => {}
        }
        let response_ms = crate::access_log::unix_now_us() / 1000;
        let times = rules::Times {
            request_ms: response_ms.saturating_sub(took.as_millis() as u64),
            response_ms,
        };
        let max_stale = c.cfg.max_stale.as_millis() as u64;
        let stored = match rules::storable(status, req, resp, times, max_stale) {
            Ok(freshness) if !self.no_store => {
                let too_large = resp
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .is_some_and(|n| n > c.cfg.max_object);
                if too_large {
                    c.counters.too_large.fetch_add(1, Relaxed);
                    None
                } else {
                    let vary = rules::vary_names(resp).unwrap_or_default();
                    let mut headers = resp.clone();
                    headers.remove(&CACHE_HEADER);
                    Some(Stored {
                        status,
                        headers,
                        body: Bytes::new(),
                        vary_values: rules::vary_values(&vary, req),
                        vary,
                        freshness,
                        arrived_ms: now_ms(),
                    })
                }
            }
            Ok(_) => None,
            Err(why) => {
                tracing::trace!(route = %c.route, ?why, "cache: answer not stored");
                None
            }
        };
        resp.insert(CACHE_HEADER.clone(), HeaderValue::from_static("miss"));
        stored.map(|stored| Capture {
            cache: c.clone(),
            key: self.key.clone(),
            path: path.to_string(),
            stored,
            chunks: Vec::new(),
            len: 0,
        })
    }
}

/// A stored answer as the client's response.
fn serve(
    mut ex: Box<Exchange>,
    stored: &Stored,
    req: &HeaderMap,
    failed: bool,
) -> Response<ProxyBody> {
    let now = now_ms();
    let age = stored.age_ms(now);
    let (status, mut h, body) =
        if stored.status == StatusCode::OK && rules::not_modified(req, &stored.headers) {
            (
                StatusCode::NOT_MODIFIED,
                rules::not_modified_headers(&stored.headers),
                Bytes::new(),
            )
        } else if ex.method == Method::HEAD {
            (stored.status, stored.headers.clone(), Bytes::new())
        } else {
            (stored.status, stored.headers.clone(), stored.body.clone())
        };
    if ex.method == Method::HEAD && !matches!(status.as_u16(), 204 | 304) {
        h.entry(header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(stored.body.len()));
    }
    h.insert(header::AGE, rules::age_value(age));
    if failed {
        if !stored.freshness.fresh_at(age) {
            h.append(header::WARNING, STALE_WARNING);
        }
        h.append(header::WARNING, FAILED_WARNING);
    }
    let label = if failed { "stale" } else { "hit" };
    h.insert(CACHE_HEADER.clone(), HeaderValue::from_static(label));
    h.insert(headers::X_REQUEST_ID.clone(), ex.request_id.clone());
    ex.status = status.as_u16();
    ex.cache = Some(label);
    let mut resp = Response::new(ProxyBody::full(body).with_exchange(ex));
    *resp.status_mut() = status;
    *resp.headers_mut() = h;
    resp
}

/// The copy of an answer taken while it streams to the client; stored when the body ends
/// cleanly, dropped when it fails or grows past `max_object`.
pub struct Capture {
    cache: Arc<RouteCache>,
    key: String,
    path: String,
    stored: Stored,
    chunks: Vec<Bytes>,
    len: u64,
}

impl Capture {
    /// Keeps `data` (a reference, not a copy); false when the body is now too large to store.
    pub fn push(&mut self, data: &Bytes) -> bool {
        self.len += data.len() as u64;
        if self.len > self.cache.cfg.max_object {
            self.cache.counters.too_large.fetch_add(1, Relaxed);
            return false;
        }
        self.chunks.push(data.clone());
        true
    }

    /// The body ended cleanly: store the answer.
    pub fn complete(mut self) {
        self.stored.body = match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(self.len as usize);
                for c in &self.chunks {
                    b.extend_from_slice(c);
                }
                b.freeze()
            }
        };
        self.cache.insert(self.key, self.path, self.stored);
    }
}

/// Why a purge was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PurgeError {
    #[error("no route named `{0}`")]
    NoRoute(String),
    #[error("route `{0}` has no cache")]
    NoCache(String),
}

/// What a purge removed.
#[derive(Debug, serde::Serialize)]
pub struct PurgeReport {
    /// Keys removed in all (each with its `Vary` variants).
    pub removed: u64,
    pub routes: Vec<RoutePurge>,
}

#[derive(Debug, serde::Serialize)]
pub struct RoutePurge {
    pub route: String,
    pub removed: u64,
}

impl crate::Gateway {
    /// Removes stored answers from the cache of `route` (of every route without one), only
    /// those whose path starts with `prefix` when given. Each route that lost entries emits an
    /// event.
    pub fn purge_cache(
        &self,
        route: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<PurgeReport, PurgeError> {
        if let Some(name) = route {
            match self.config().routes.iter().find(|r| r.name == name) {
                None => return Err(PurgeError::NoRoute(name.to_string())),
                Some(r) if r.cache.is_none() => return Err(PurgeError::NoCache(name.to_string())),
                Some(_) => {}
            }
        }
        let shared = &self.inner.shared;
        let mut report = PurgeReport {
            removed: 0,
            routes: Vec::new(),
        };
        for c in shared.registry.all_caches() {
            if route.is_some_and(|r| r != c.route) {
                continue;
            }
            let removed = c.purge(prefix);
            tracing::info!(route = %c.route, prefix, removed, "cache purged");
            if removed > 0 {
                shared.events.emit(Event::CachePurged {
                    route: c.route.clone(),
                    prefix: prefix.map(str::to_string),
                    removed,
                });
            }
            report.removed += removed;
            report.routes.push(RoutePurge {
                route: c.route.clone(),
                removed,
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_size: u64) -> CacheConfig {
        CacheConfig {
            max_size,
            max_object: 1 << 20,
            max_stale: Duration::from_secs(60),
            key: vec![
                CacheKeyPart::Scheme,
                CacheKeyPart::Host,
                CacheKeyPart::Path,
                CacheKeyPart::Query,
            ],
            stale_on: vec![502],
        }
    }

    fn stored(body: &'static [u8], lifetime_ms: u64) -> Stored {
        Stored {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body),
            vary: vec![],
            vary_values: vec![],
            freshness: Freshness {
                lifetime_ms,
                initial_age_ms: 0,
                stale_ms: 60_000,
            },
            arrived_ms: now_ms(),
        }
    }

    #[test]
    fn keys_tell_apart_what_they_are_told_to() {
        let parts = cfg(1).key;
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("Shop.example:8080"));
        let uri: Uri = "/a?x=1".parse().unwrap();
        let k = key(&parts, false, &uri, &h);
        assert_eq!(k, "http\nshop.example:8080\n/a\nx=1\n");
        assert_ne!(k, key(&parts, true, &uri, &h), "scheme");
        assert_ne!(k, key(&parts, false, &"/a?x=2".parse().unwrap(), &h));
        let by_cookie = [CacheKeyPart::Path, CacheKeyPart::Cookie("lang".into())];
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; lang=de"));
        assert_eq!(key(&by_cookie, false, &uri, &h), "/a\nde\n");
        let by_header = [CacheKeyPart::Path, CacheKeyPart::Header(header::ACCEPT)];
        assert_eq!(key(&by_header, false, &uri, &h), "/a\n\0\n");
    }

    #[test]
    fn the_store_is_bounded_by_bytes_least_recently_used_first() {
        let c = RouteCache::new("r", "u", &cfg(4 * 1024), Default::default());
        for i in 0..8 {
            c.insert(format!("k{i}"), format!("/{i}"), stored(&[0; 1024], 60_000));
            c.store.run_pending_tasks();
        }
        let (entries, bytes) = c.usage();
        assert!(bytes <= 4 * 1024, "{bytes} bytes");
        assert!(entries < 8 && entries > 0);
        assert!(c.counters.evictions.load(Relaxed) > 0);
        assert!(c.store.get("k7").is_some(), "the newest stays");
        assert!(c.store.get("k0").is_none(), "the oldest went first");
    }

    #[test]
    fn variants_replace_their_own_kind_and_purge_counts_keys() {
        let c = RouteCache::new("r", "u", &cfg(1 << 20), Default::default());
        let mut en = stored(b"en", 60_000);
        en.vary = vec![header::ACCEPT_LANGUAGE];
        en.vary_values = vec![Some("en".into())];
        let mut de = stored(b"de", 60_000);
        de.vary = vec![header::ACCEPT_LANGUAGE];
        de.vary_values = vec![Some("de".into())];
        let mut en2 = stored(b"en2", 60_000);
        en2.vary = en.vary.clone();
        en2.vary_values = en.vary_values.clone();
        c.insert("k".into(), "/docs/a".into(), en);
        c.insert("k".into(), "/docs/a".into(), de);
        c.insert("k".into(), "/docs/a".into(), en2);
        let e = c.store.get("k").unwrap();
        let bodies: Vec<&[u8]> = e.variants.iter().map(|v| &v.body[..]).collect();
        assert_eq!(bodies, vec![&b"de"[..], &b"en2"[..]]);
        c.insert("k2".into(), "/img/b".into(), stored(b"x", 60_000));
        assert_eq!(c.purge(Some("/docs/")), 1);
        assert!(c.store.get("k2").is_some());
        assert_eq!(c.purge(None), 1);
        assert_eq!(c.usage().0, 0);
    }

    #[test]
    fn a_body_past_max_object_is_not_kept() {
        let mut small = cfg(1 << 20);
        small.max_object = 4;
        let c = Arc::new(RouteCache::new("r", "u", &small, Default::default()));
        let mut cap = Capture {
            cache: c.clone(),
            key: "k".into(),
            path: "/".into(),
            stored: stored(b"", 1000),
            chunks: vec![],
            len: 0,
        };
        assert!(cap.push(&Bytes::from_static(b"abc")));
        assert!(!cap.push(&Bytes::from_static(b"de")));
        assert_eq!(c.counters.too_large.load(Relaxed), 1);
        let mut cap = Capture {
            cache: c.clone(),
            key: "k".into(),
            path: "/".into(),
            stored: stored(b"", 1000),
            chunks: vec![],
            len: 0,
        };
        cap.push(&Bytes::from_static(b"ab"));
        cap.push(&Bytes::from_static(b"cd"));
        cap.complete();
        assert_eq!(&c.store.get("k").unwrap().variants[0].body[..], b"abcd");
    }
}

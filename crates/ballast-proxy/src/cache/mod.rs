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
//!
//! Files: `store` (the moka store, its entries and expiry, counters, stale-serving state),
//! `lookup` (one request's use of the cache), `capture` (the copy taken while an answer
//! streams), `purge`, and [`rules`] (RFC 9111: what may be stored, for how long). The
//! submodules share the imports below through `use super::*`.

mod capture;
mod lookup;
mod purge;
pub mod rules;
mod store;

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

pub use capture::Capture;
pub use lookup::Lookup;
pub use purge::PurgeError;
pub use store::{CacheCounters, RouteCache, Stored};

/// Sent with every answer of a cached route: `hit`, `stale` or `miss`.
pub static CACHE_HEADER: HeaderName = HeaderName::from_static("ballast-cache");
const STALE_WARNING: HeaderValue = HeaderValue::from_static("110 - \"Response is Stale\"");
const FAILED_WARNING: HeaderValue = HeaderValue::from_static("111 - \"Revalidation Failed\"");
/// Variants kept per key (different `Vary` values); the oldest goes first.
const MAX_VARIANTS: usize = 16;
/// Bytes counted per stored answer on top of its body, headers and key.
const OVERHEAD: usize = 256;

#[cfg(test)]
mod tests {
    use super::lookup::key;
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

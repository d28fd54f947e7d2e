//! One request's use of its route's cache: the key, the fresh variant to serve from memory or
//! the stale one kept aside for a failure, and whether the answer may be stored.

use super::*;

/// The cache key of a request: the configured parts, one per line.
pub(super) fn key(parts: &[CacheKeyPart], tls: bool, uri: &Uri, headers: &HeaderMap) -> String {
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
pub(super) enum Kind {
    Get,
    Head,
    /// POST, PUT, DELETE, PATCH...: a successful answer invalidates the key.
    Unsafe,
}

/// How one request uses its route's cache.
pub struct Lookup {
    pub(super) cache: Arc<RouteCache>,
    pub(super) kind: Kind,
    pub(super) key: String,
    /// A fresh variant to serve.
    pub(super) fresh: Option<Arc<Stored>>,
    /// A variant that may stand in for a failure.
    pub(super) fallback: Option<Arc<Stored>>,
    pub(super) no_store: bool,
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
pub(super) fn serve(
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

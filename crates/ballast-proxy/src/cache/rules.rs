//! The HTTP caching rules a shared cache follows (RFC 9111), as pure functions of headers and
//! times so they can be tested without a gateway: which responses may be stored, for how long
//! they are fresh, how old they already are, which stored variant a request may get, and
//! whether a client's conditional request is answered 304.
//!
//! One deliberate departure from RFC 9111 §4.2.3: the age on arrival is the upstream's `Age`
//! plus the time the response took, without the "apparent age" (response time − `Date`). A
//! server whose clock runs a few seconds behind would otherwise make every short-lived answer
//! look stale on arrival (Varnish and nginx also ignore `Date` here). `Date` still anchors
//! `Expires`, which makes `Expires` immune to the same skew.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

/// Cache-Control directives that matter to a shared cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    /// `must-revalidate` or `proxy-revalidate`: never served stale.
    pub must_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    /// RFC 5861: how long past freshness the response may stand in for an error.
    pub stale_if_error: Option<u64>,
}

/// Reads every `Cache-Control` header. A delta-seconds value that is not a number counts as 0
/// (RFC 9111 §4.2.1: invalid freshness is stale); a repeated directive keeps its first value.
pub fn directives(headers: &HeaderMap) -> Directives {
    let mut d = Directives::default();
    for v in headers.get_all(header::CACHE_CONTROL) {
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let (name, arg) = match item.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (item.trim(), None),
            };
            let secs = || arg.map_or(0, |a| a.parse::<u64>().unwrap_or(0).min(MAX_SECS));
            match name.to_ascii_lowercase().as_str() {
                "no-store" => d.no_store = true,
                // The qualified forms (`no-cache="Set-Cookie"`, `private="..."`) are treated as
                // the unqualified ones: stricter, never wrong.
                "no-cache" => d.no_cache = true,
                "private" => d.private = true,
                "public" => d.public = true,
                "must-revalidate" | "proxy-revalidate" => d.must_revalidate = true,
                "max-age" => d.max_age = d.max_age.or(Some(secs())),
                "s-maxage" => d.s_maxage = d.s_maxage.or(Some(secs())),
                "stale-if-error" => d.stale_if_error = d.stale_if_error.or(Some(secs())),
                _ => {}
            }
        }
    }
    d
}

/// Delta-seconds beyond this are this (RFC 9111 §1.2.2: 2^31).
const MAX_SECS: u64 = 1 << 31;

/// What a request allows the cache to do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestRules {
    /// `no-cache`, `max-age=0` or `Pragma: no-cache`: a fresh entry is not enough, go upstream.
    pub skip_fresh: bool,
    /// `no-store`: the answer is not stored.
    pub no_store: bool,
}

pub fn request_rules(headers: &HeaderMap) -> RequestRules {
    // Most requests carry neither header: one lookup each, nothing parsed.
    if !headers.contains_key(header::CACHE_CONTROL) {
        let pragma = headers
            .get_all(header::PRAGMA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-cache"));
        return RequestRules {
            skip_fresh: pragma,
            no_store: false,
        };
    }
    let d = directives(headers);
    RequestRules {
        skip_fresh: d.no_cache || d.max_age == Some(0),
        no_store: d.no_store,
    }
}

/// Statuses a cache may store when the response says how long it is fresh.
pub fn cacheable_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Why an answer was not stored (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Status,
    NoStore,
    Private,
    SetCookie,
    /// The request carried `Authorization` and the response is not marked shareable.
    Authorization,
    VaryStar,
    /// Neither `max-age`, `s-maxage`, `Expires` nor `no-cache`: freshness is unknown.
    NoFreshness,
    /// Already stale on arrival and may never be served stale.
    Useless,
}

/// How long a stored answer is fresh, and how old it was when it arrived, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub lifetime_ms: u64,
    pub initial_age_ms: u64,
    /// How long past `lifetime_ms` it may stand in for a failing upstream.
    pub stale_ms: u64,
}

impl Freshness {
    /// Fresh at `age_ms`?
    pub fn fresh_at(&self, age_ms: u64) -> bool {
        age_ms < self.lifetime_ms
    }

    /// Usable as stale content at `age_ms`?
    pub fn usable_at(&self, age_ms: u64) -> bool {
        age_ms < self.lifetime_ms.saturating_add(self.stale_ms)
    }
}

/// Times of one upstream exchange, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// When the request was sent.
    pub request_ms: u64,
    /// When the response head arrived.
    pub response_ms: u64,
}

/// Whether an upstream answer to a GET may be stored, and its freshness. `max_stale` is the
/// route's limit; the response's `stale-if-error` may only shorten it, and `must-revalidate`
/// (or `proxy-revalidate`) turns it off.
pub fn storable(
    status: StatusCode,
    req: &HeaderMap,
    resp: &HeaderMap,
    times: Times,
    max_stale_ms: u64,
) -> Result<Freshness, Refusal> {
    if !cacheable_status(status) {
        return Err(Refusal::Status);
    }
    if !resp.contains_key(header::CACHE_CONTROL) && !resp.contains_key(header::EXPIRES) {
        // Nothing says how long it would be fresh, so it is not stored whatever else it says:
        // the usual answer of an application, refused without the other lookups.
        return Err(Refusal::NoFreshness);
    }
    let d = directives(resp);
    if d.no_store || request_rules(req).no_store {
        return Err(Refusal::NoStore);
    }
    if d.private {
        return Err(Refusal::Private);
    }
    if resp.contains_key(header::SET_COOKIE) {
        return Err(Refusal::SetCookie);
    }
    if req.contains_key(header::AUTHORIZATION)
        && !(d.public || d.s_maxage.is_some() || d.must_revalidate)
    {
        return Err(Refusal::Authorization);
    }
    if vary_names(resp).is_none() {
        return Err(Refusal::VaryStar);
    }
    let lifetime_ms = if d.no_cache {
        0
    } else if let Some(s) = d.s_maxage.or(d.max_age) {
        s * 1000
    } else if resp.contains_key(header::EXPIRES) {
        // An invalid date (often "0" or "-1") means already expired.
        match date(resp, header::EXPIRES) {
            Some(exp) => match date(resp, header::DATE) {
                Some(d) => exp.saturating_sub(d) * 1000,
                None => (exp * 1000).saturating_sub(times.response_ms),
            },
            None => 0,
        }
    } else {
        return Err(Refusal::NoFreshness);
    };
    let stale_ms = if d.must_revalidate {
        0
    } else {
        d.stale_if_error
            .map_or(max_stale_ms, |s| (s * 1000).min(max_stale_ms))
    };
    let f = Freshness {
        lifetime_ms,
        initial_age_ms: initial_age_ms(age_header(resp), times),
        stale_ms,
    };
    if !f.usable_at(f.initial_age_ms) {
        return Err(Refusal::Useless);
    }
    Ok(f)
}

/// The age on arrival (RFC 9111 §4.2.3 "corrected age value"): the upstream's `Age` plus the
/// time the response took to arrive. See the module notes on `Date`.
pub fn initial_age_ms(age_s: Option<u64>, t: Times) -> u64 {
    age_s.unwrap_or(0).min(MAX_SECS) * 1000 + t.response_ms.saturating_sub(t.request_ms)
}

fn age_header(h: &HeaderMap) -> Option<u64> {
    h.get(header::AGE)?.to_str().ok()?.trim().parse().ok()
}

/// An HTTP date header as seconds since the Unix epoch.
pub fn date(h: &HeaderMap, name: HeaderName) -> Option<u64> {
    let t = httpdate::parse_http_date(h.get(name)?.to_str().ok()?.trim()).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// The header names a response varies on, lower-cased; `None` for `Vary: *` (never matches).
pub fn vary_names(resp: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for v in resp.get_all(header::VARY) {
        for item in v.to_str().unwrap_or("*").split(',') {
            let item = item.trim();
            if item == "*" {
                return None;
            }
            if let Ok(n) = HeaderName::from_bytes(item.as_bytes()) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
    }
    Some(names)
}

/// A request's values for the `Vary` names: every field line joined with `,`, whitespace
/// around each value removed; `None` when the request lacks the header.
pub fn vary_values(names: &[HeaderName], req: &HeaderMap) -> Vec<Option<String>> {
    names
        .iter()
        .map(|n| {
            let mut it = req.get_all(n).iter().peekable();
            it.peek()?;
            let mut out = String::new();
            for v in it {
                for part in String::from_utf8_lossy(v.as_bytes()).split(',') {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(part.trim());
                }
            }
            Some(out)
        })
        .collect()
}

/// The client's conditional request can be answered `304 Not Modified` from a stored 200
/// carrying `resp`'s validators (RFC 9110 §13.2.2: `If-None-Match` first, else
/// `If-Modified-Since`).
pub fn not_modified(req: &HeaderMap, resp: &HeaderMap) -> bool {
    if req.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = resp.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        return req
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|t| t == "*" || weak_eq(t, etag));
    }
    match (
        date(req, header::IF_MODIFIED_SINCE),
        date(resp, header::LAST_MODIFIED),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Weak comparison of entity tags: `W/"x"` equals `"x"`.
fn weak_eq(a: &str, b: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    strip(a) == strip(b)
}

/// Headers a 304 carries (RFC 9110 §15.4.5), taken from the stored answer.
pub fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ] {
        for v in stored.get_all(&name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

/// `Age` in whole seconds.
pub fn age_value(age_ms: u64) -> HeaderValue {
    HeaderValue::from(age_ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    const NOW: u64 = 1_700_000_000;
    const T: Times = Times {
        request_ms: NOW * 1000,
        response_ms: NOW * 1000,
    };
    const TEN_MIN: u64 = 600_000;

    fn http_date(secs: u64) -> String {
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    fn store(resp: &[(&str, &str)]) -> Result<Freshness, Refusal> {
        storable(StatusCode::OK, &HeaderMap::new(), &h(resp), T, TEN_MIN)
    }

    #[test]
    fn directives_are_read_across_headers_case_and_quotes() {
        let d = directives(&h(&[
            ("cache-control", "Public, MAX-AGE=\"60\""),
            (
                "cache-control",
                "s-maxage=30, stale-if-error=5, proxy-revalidate, max-age=1",
            ),
        ]));
        assert!(d.public && d.must_revalidate);
        assert_eq!(d.max_age, Some(60), "the first max-age counts");
        assert_eq!(d.s_maxage, Some(30));
        assert_eq!(d.stale_if_error, Some(5));
        assert_eq!(
            directives(&h(&[("cache-control", "max-age=soon")])).max_age,
            Some(0)
        );
        assert_eq!(
            directives(&h(&[("cache-control", "max-age=99999999999999")])).max_age,
            Some(MAX_SECS)
        );
    }

    #[test]
    fn max_age_and_s_maxage_set_the_lifetime_s_maxage_first() {
        assert_eq!(
            store(&[("cache-control", "max-age=60")])
                .unwrap()
                .lifetime_ms,
            60_000
        );
        let f = store(&[("cache-control", "max-age=60, s-maxage=5")]).unwrap();
        assert_eq!(f.lifetime_ms, 5_000);
        assert_eq!(f.stale_ms, TEN_MIN);
    }

    #[test]
    fn expires_counts_from_date_and_an_invalid_one_is_expired() {
        let f = store(&[
            ("date", &http_date(NOW - 10)),
            ("expires", &http_date(NOW + 50)),
        ])
        .unwrap();
        assert_eq!(f.lifetime_ms, 60_000, "Expires − Date");
        assert_eq!(f.initial_age_ms, 0, "Date is not an age");
        assert!(f.fresh_at(f.initial_age_ms));
        // Without Date, the response time stands in.
        let f = store(&[("expires", &http_date(NOW + 30))]).unwrap();
        assert_eq!(f.lifetime_ms, 30_000);
        // "0" is an invalid date: stale at once (kept only for stale serving).
        let f = store(&[("expires", "0")]).unwrap();
        assert_eq!(f.lifetime_ms, 0);
        assert!(!f.fresh_at(0) && f.usable_at(0));
        // max-age wins over Expires.
        let f = store(&[
            ("expires", &http_date(NOW + 30)),
            ("cache-control", "max-age=5"),
        ]);
        assert_eq!(f.unwrap().lifetime_ms, 5_000);
    }

    #[test]
    fn what_is_never_stored() {
        assert_eq!(store(&[]), Err(Refusal::NoFreshness));
        assert_eq!(
            store(&[("cache-control", "max-age=60, no-store")]),
            Err(Refusal::NoStore)
        );
        assert_eq!(
            store(&[("cache-control", "private, max-age=60")]),
            Err(Refusal::Private)
        );
        assert_eq!(
            store(&[("cache-control", "max-age=60"), ("set-cookie", "a=1")]),
            Err(Refusal::SetCookie)
        );
        assert_eq!(
            store(&[("cache-control", "max-age=60"), ("vary", "Accept, *")]),
            Err(Refusal::VaryStar)
        );
        assert_eq!(
            storable(
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                &h(&[("cache-control", "max-age=60")]),
                T,
                TEN_MIN
            ),
            Err(Refusal::Status)
        );
        assert_eq!(
            storable(
                StatusCode::OK,
                &h(&[("cache-control", "no-store")]),
                &h(&[("cache-control", "max-age=60")]),
                T,
                TEN_MIN
            ),
            Err(Refusal::NoStore),
            "the request's no-store"
        );
        // 404 and 301 are cacheable with explicit freshness.
        for s in [StatusCode::NOT_FOUND, StatusCode::MOVED_PERMANENTLY] {
            assert!(storable(
                s,
                &HeaderMap::new(),
                &h(&[("cache-control", "max-age=1")]),
                T,
                0
            )
            .is_ok());
        }
    }

    #[test]
    fn authorization_needs_a_shareable_response() {
        let auth = h(&[("authorization", "Bearer x")]);
        let st = |resp: &[(&str, &str)]| storable(StatusCode::OK, &auth, &h(resp), T, TEN_MIN);
        assert_eq!(
            st(&[("cache-control", "max-age=60")]),
            Err(Refusal::Authorization)
        );
        assert!(st(&[("cache-control", "public, max-age=60")]).is_ok());
        assert!(st(&[("cache-control", "s-maxage=60")]).is_ok());
        assert!(st(&[("cache-control", "max-age=60, must-revalidate")]).is_ok());
    }

    #[test]
    fn no_cache_is_stored_stale_and_revalidate_means_never_stale() {
        let f = store(&[("cache-control", "no-cache, max-age=60")]).unwrap();
        assert_eq!(f.lifetime_ms, 0, "no-cache: always stale");
        assert!(f.usable_at(0));
        let f = store(&[("cache-control", "max-age=60, must-revalidate")]).unwrap();
        assert_eq!(f.stale_ms, 0);
        assert!(f.usable_at(59_999) && !f.usable_at(60_000));
        // Stale at once and never usable stale: nothing to keep.
        assert_eq!(
            store(&[("cache-control", "no-cache, must-revalidate")]),
            Err(Refusal::Useless)
        );
        assert_eq!(
            storable(
                StatusCode::OK,
                &HeaderMap::new(),
                &h(&[("cache-control", "max-age=0")]),
                T,
                0
            ),
            Err(Refusal::Useless)
        );
    }

    #[test]
    fn stale_if_error_can_only_shorten_the_routes_limit() {
        let f = store(&[("cache-control", "max-age=1, stale-if-error=30")]).unwrap();
        assert_eq!(f.stale_ms, 30_000);
        let f = store(&[("cache-control", "max-age=1, stale-if-error=3600")]).unwrap();
        assert_eq!(f.stale_ms, TEN_MIN);
    }

    #[test]
    fn age_arithmetic() {
        let t = Times {
            request_ms: NOW * 1000 - 2_500,
            response_ms: NOW * 1000,
        };
        // The upstream's Age + the 2.5 s the response took.
        assert_eq!(initial_age_ms(Some(10), t), 12_500);
        assert_eq!(initial_age_ms(None, t), 2_500);
        assert_eq!(initial_age_ms(None, T), 0);
        // A Date far behind (a server whose clock lags) does not age the response.
        let f = store(&[
            ("cache-control", "max-age=5"),
            ("date", &http_date(NOW - 3600)),
        ]);
        assert!(f.unwrap().fresh_at(4_999));
        // An upstream Age eats into the lifetime.
        let f = storable(
            StatusCode::OK,
            &HeaderMap::new(),
            &h(&[("cache-control", "max-age=60"), ("age", "50")]),
            T,
            0,
        )
        .unwrap();
        assert_eq!(f.initial_age_ms, 50_000);
        assert!(f.fresh_at(59_999) && !f.fresh_at(60_000));
        // Older than its lifetime on arrival, with no stale window: refused.
        let r = storable(
            StatusCode::OK,
            &HeaderMap::new(),
            &h(&[("cache-control", "max-age=60"), ("age", "70")]),
            T,
            0,
        );
        assert_eq!(r, Err(Refusal::Useless));
        assert_eq!(age_value(1_999), HeaderValue::from(1u64));
    }

    #[test]
    fn requests_that_skip_fresh_entries_or_storage() {
        assert!(request_rules(&h(&[("cache-control", "no-cache")])).skip_fresh);
        assert!(request_rules(&h(&[("cache-control", "max-age=0")])).skip_fresh);
        assert!(request_rules(&h(&[("pragma", "no-cache")])).skip_fresh);
        assert!(
            !request_rules(&h(&[
                ("pragma", "no-cache"),
                ("cache-control", "max-age=5")
            ]))
            .skip_fresh,
            "Cache-Control wins over Pragma"
        );
        let r = request_rules(&h(&[("cache-control", "no-store")]));
        assert!(r.no_store && !r.skip_fresh);
        assert_eq!(request_rules(&HeaderMap::new()), RequestRules::default());
    }

    #[test]
    fn vary_selects_by_the_requests_values() {
        let resp = h(&[
            ("vary", "Accept-Language"),
            ("vary", "accept-encoding, ACCEPT-LANGUAGE"),
        ]);
        let names = vary_names(&resp).unwrap();
        assert_eq!(
            names,
            vec![header::ACCEPT_LANGUAGE, header::ACCEPT_ENCODING]
        );
        let en = vary_values(
            &names,
            &h(&[("accept-language", "en"), ("accept-encoding", "gzip")]),
        );
        let en2 = vary_values(
            &names,
            &h(&[("accept-language", " en "), ("accept-encoding", "gzip")]),
        );
        let de = vary_values(
            &names,
            &h(&[("accept-language", "de"), ("accept-encoding", "gzip")]),
        );
        let none = vary_values(&names, &h(&[("accept-encoding", "gzip")]));
        assert_eq!(en, en2, "whitespace does not make a new variant");
        assert_ne!(en, de);
        assert_eq!(none[0], None);
        assert_ne!(
            none,
            vary_values(
                &names,
                &h(&[("accept-language", ""), ("accept-encoding", "gzip")])
            )
        );
        let joined = vary_values(
            &names,
            &h(&[("accept-language", "en"), ("accept-language", "de")]),
        );
        assert_eq!(joined[0].as_deref(), Some("en,de"));
        assert_eq!(vary_names(&h(&[("vary", "*")])), None);
        assert_eq!(vary_names(&HeaderMap::new()), Some(vec![]));
    }

    #[test]
    fn conditional_requests() {
        let stored = h(&[("etag", "\"v1\""), ("last-modified", &http_date(NOW - 100))]);
        assert!(not_modified(
            &h(&[("if-none-match", "\"v0\", W/\"v1\"")]),
            &stored
        ));
        assert!(not_modified(&h(&[("if-none-match", "*")]), &stored));
        assert!(!not_modified(&h(&[("if-none-match", "\"v2\"")]), &stored));
        // If-None-Match decides alone when present.
        assert!(!not_modified(
            &h(&[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", &http_date(NOW))
            ]),
            &stored
        ));
        assert!(not_modified(
            &h(&[("if-modified-since", &http_date(NOW - 100))]),
            &stored
        ));
        assert!(!not_modified(
            &h(&[("if-modified-since", &http_date(NOW - 101))]),
            &stored
        ));
        assert!(!not_modified(&HeaderMap::new(), &stored));
        let nm = not_modified_headers(&h(&[
            ("etag", "\"v1\""),
            ("content-type", "text/plain"),
            ("cache-control", "max-age=5"),
        ]));
        assert!(nm.contains_key("etag") && nm.contains_key("cache-control"));
        assert!(!nm.contains_key("content-type"));
    }
}

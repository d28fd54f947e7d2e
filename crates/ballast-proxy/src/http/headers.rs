//! Header work a correct reverse proxy must do: refuse ambiguous framing, strip hop-by-hop
//! headers, add `X-Forwarded-*` and `X-Request-Id`, and read cookies.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::error::{ProxyError, Refusal};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static CONFLICT: HeaderName = HeaderName::from_static(crate::listener::framing::CONFLICT_MARKER);
static BAD_TE: HeaderName = HeaderName::from_static(crate::listener::framing::TE_MARKER);
static BAD_CHUNK_EXT: HeaderName =
    HeaderName::from_static(crate::listener::framing::CHUNK_EXT_MARKER);

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::PROXY_AUTHORIZATION
        || name == header::UPGRADE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// Requests with both Content-Length and Transfer-Encoding, or a transfer coding other than
/// a final `chunked`, are refused: they are the raw material of request smuggling.
pub fn check_framing(headers: &HeaderMap) -> Result<(), ProxyError> {
    if headers.contains_key(&BAD_CHUNK_EXT) {
        // A control character in the first chunk's extension (see `listener::framing`).
        return Err(ProxyError::Refused(Refusal::BadChunkExtension));
    }
    if headers.contains_key(&CONFLICT) || headers.contains_key(&BAD_TE) {
        // Content-Length and Transfer-Encoding together (see `listener::framing`).
        return Err(ProxyError::BadFraming);
    }
    let te: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    if te.is_empty() {
        let mut cl = headers.get_all(header::CONTENT_LENGTH).iter();
        if let Some(first) = cl.next() {
            let valid = |v: &HeaderValue| {
                v.to_str()
                    .ok()
                    .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            };
            if !valid(first) || cl.any(|v| v != first) {
                return Err(ProxyError::BadFraming);
            }
        }
        return Ok(());
    }
    if headers.contains_key(header::CONTENT_LENGTH) {
        return Err(ProxyError::BadFraming);
    }
    let joined: Vec<String> = te
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    if joined.len() == 1 && joined[0] == "chunked" {
        Ok(())
    } else {
        Err(ProxyError::BadFraming)
    }
}

/// The host a request is for, as it goes upstream in `Host`, or why the request is refused
/// (RFC 9112 §3.2, RFC 9113 §8.3.1):
/// - more than one `Host` header: refused;
/// - HTTP/1.1 without `Host`: refused (HTTP/1.0 may omit it);
/// - HTTP/2 (or 3) with `:authority` and a `Host` that names another host: refused;
/// - a target in absolute form (or `:authority`) wins over `Host`.
///
/// The usual request (origin-form target, one `Host`) costs one header lookup and no allocation.
pub fn request_host(
    version: http::Version,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, Refusal> {
    let mut values = headers.get_all(header::HOST).iter();
    let host = values.next();
    if values.next().is_some() {
        return Err(Refusal::DuplicateHost);
    }
    if version == http::Version::HTTP_11 && host.is_none() {
        return Err(Refusal::MissingHost);
    }
    let Some(authority) = uri.authority() else {
        return Ok(host.cloned());
    };
    // Userinfo (`user@`) is no part of the host.
    let authority = authority
        .as_str()
        .rsplit('@')
        .next()
        .unwrap_or(authority.as_str());
    match host {
        Some(h) if h.as_bytes().eq_ignore_ascii_case(authority.as_bytes()) => Ok(Some(h.clone())),
        Some(_) if version >= http::Version::HTTP_2 => Err(Refusal::HostMismatch),
        _ => Ok(HeaderValue::from_str(authority).ok()),
    }
}

/// Whether the request asks for a protocol upgrade (WebSocket and others).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Removes hop-by-hop headers (and those named in `Connection`). With `keep_upgrade`, the
/// `Upgrade` header and a `Connection: upgrade` survive so the upgrade can pass through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names is cheaper than a hashed removal per hop-by-hop header, and
    // most messages carry none (or only `Connection: keep-alive`).
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        // `keep-alive` and `close` are options, not header names (and `keep-alive` is removed
        // below anyway): skipping them keeps the usual case free of allocations.
        let named: smallvec::SmallVec<[HeaderName; 2]> = connection_tokens(headers)
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter(|t| !(keep_upgrade && t.eq_ignore_ascii_case("upgrade")))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for n in named {
            headers.remove(n);
        }
        headers.remove(header::CONNECTION);
    }
    for h in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(h);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The request's host without port, as sent: URI authority (HTTP/2) or `Host`.
/// Compare it with `eq_ignore_ascii_case`.
pub fn host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> &'a str {
    let raw = uri
        .host()
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("");
    strip_port(raw)
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `::1`.
pub fn strip_port(raw: &str) -> &str {
    match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => raw.split(':').next().unwrap_or(raw),
    }
}

/// The client address as a header value, made once per connection.
pub fn client_value(client: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&client.to_string()).expect("an IP address is a valid header value")
}

/// Adds `X-Forwarded-For` (appending to a client-supplied chain), `-Proto` and `-Host`.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    client: &HeaderValue,
    tls: bool,
    host_header: Option<HeaderValue>,
) {
    let appended = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.is_empty() => {
            HeaderValue::from_str(&format!("{prev}, {}", client.to_str().unwrap_or(""))).ok()
        }
        _ => None,
    };
    headers.insert(
        X_FORWARDED_FOR.clone(),
        appended.unwrap_or_else(|| client.clone()),
    );
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    if let Some(h) = host_header {
        headers.insert(X_FORWARDED_HOST.clone(), h);
    }
}

/// Returns the request's id, adding one when absent.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        if !v.is_empty() && v.len() <= 200 {
            return v.clone();
        }
    }
    let v = new_request_id();
    headers.insert(X_REQUEST_ID.clone(), v.clone());
    v
}

/// A process-unique id: a random per-process prefix and a counter (no syscalls, no locks).
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let prefix = u64::from(*PREFIX.get_or_init(|| fastrand::u32(..)));
    let n = COUNTER.fetch_add(1, Relaxed);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 20];
    for (i, slot) in out.iter_mut().enumerate() {
        let nibble = if i < 8 {
            prefix >> (4 * (7 - i))
        } else {
            n >> (4 * (19 - i))
        };
        *slot = HEX[(nibble & 0xf) as usize];
    }
    HeaderValue::from_bytes(&out).expect("hex is a valid header value")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    // On bytes, pair by pair: it runs on every request of a route with sticky sessions or a
    // waiting room, and only the pair's name is compared, never the whole line decoded.
    let name = name.as_bytes();
    if name.is_empty() {
        return None;
    }
    headers.get_all(header::COOKIE).iter().find_map(|v| {
        let mut rest = v.as_bytes();
        while !rest.is_empty() {
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let pair = rest[..end].trim_ascii_start();
            rest = rest.get(end + 1..).unwrap_or_default();
            let Some(after) = pair.strip_prefix(name) else {
                continue;
            };
            let Some(value) = after.trim_ascii_start().strip_prefix(b"=") else {
                continue;
            };
            return std::str::from_utf8(value.trim_ascii())
                .ok()
                .map(|v| v.trim_matches('"'));
        }
        None
    })
}

/// True for methods a client expects to be safe to repeat.
pub fn is_idempotent(m: &http::Method) -> bool {
    matches!(
        *m,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::PUT
            | http::Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn framing() {
        assert!(check_framing(&h(&[("content-length", "5")])).is_ok());
        assert!(check_framing(&h(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check_framing(&h(&[
            ("content-length", "5"),
            ("transfer-encoding", "chunked")
        ]))
        .is_err());
        assert!(check_framing(&h(&[("transfer-encoding", "gzip")])).is_err());
        assert!(check_framing(&h(&[("transfer-encoding", "chunked, chunked")])).is_err());
        assert!(check_framing(&h(&[("content-length", "5"), ("content-length", "6")])).is_err());
        assert!(check_framing(&h(&[("content-length", "-1")])).is_err());
    }

    #[test]
    fn hop_by_hop() {
        let mut m = h(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "5"),
            ("te", "trailers"),
            ("x-keep", "1"),
        ]);
        strip_hop_by_hop(&mut m, false);
        assert!(
            m.get("x-secret").is_none() && m.get("keep-alive").is_none() && m.get("te").is_none()
        );
        assert!(m.get("connection").is_none());
        assert_eq!(m.get("x-keep").unwrap(), "1");

        let mut u = h(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&u));
        strip_hop_by_hop(&mut u, true);
        assert_eq!(u.get("upgrade").unwrap(), "websocket");
        assert_eq!(u.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn cookies_and_ids() {
        let m = h(&[("cookie", "a=1; BALLAST_SRV=abc; b=2")]);
        assert_eq!(cookie(&m, "BALLAST_SRV"), Some("abc"));
        assert_eq!(cookie(&m, "c"), None);
        let m = h(&[
            ("cookie", "xsrv=1; a=srv=2; srv2=3"),
            ("cookie", "other=1;srv = \"q\" ; z=9"),
        ]);
        assert_eq!(
            cookie(&m, "srv"),
            Some("q"),
            "a whole name only, in any Cookie line"
        );
        assert_eq!(cookie(&m, "srv2"), Some("3"));
        assert_eq!(cookie(&m, "z"), Some("9"));
        assert_eq!(cookie(&m, ""), None);
        assert_eq!(
            cookie(&h(&[("cookie", "srv")]), "srv"),
            None,
            "no value, no cookie"
        );
        let mut m = HeaderMap::new();
        let id = ensure_request_id(&mut m);
        assert_eq!(id.len(), 20);
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_eq!(m.get("x-request-id"), Some(&id));
        assert_ne!(ensure_request_id(&mut HeaderMap::new()), id);
    }

    #[test]
    fn forwarded_appends() {
        let client = client_value("127.0.0.2".parse().unwrap());
        let mut m = h(&[("x-forwarded-for", "10.0.0.1")]);
        add_forwarded(&mut m, &client, false, Some("a.b".parse().unwrap()));
        assert_eq!(m.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.2");
        assert_eq!(m.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(m.get("x-forwarded-host").unwrap(), "a.b");
        let mut m = HeaderMap::new();
        add_forwarded(&mut m, &client, true, None);
        assert_eq!(m.get("x-forwarded-for").unwrap(), "127.0.0.2");
        assert_eq!(m.get("x-forwarded-proto").unwrap(), "https");
        assert!(m.get("x-forwarded-host").is_none());
    }
}

//! Reading a response head: status, headers, how the body is framed, and whether the
//! connection may carry another request.
//!
//! The head is parsed by `httparse` straight out of the read buffer; header values become
//! slices of that one buffer (no copy per value). Hop-by-hop headers the gateway would strip
//! anyway (`Keep-Alive`, `Transfer-Encoding`, a `Connection` that names nothing but
//! `close`/`keep-alive`, ...) are read for framing and not put in the map, so the common
//! response needs no removal afterwards. Framing follows RFC 9112 §6.3.

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use smallvec::SmallVec;

/// Most headers a response head may have.
pub const MAX_HEADERS: usize = 100;
/// Largest response head accepted, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (`HEAD`, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request once the body has been read.
    pub keep_alive: bool,
}

/// Why a response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("response head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("more than {MAX_HEADERS} response headers")]
    TooManyHeaders,
    #[error("malformed response head")]
    Malformed,
    #[error("invalid or conflicting Content-Length")]
    BadLength,
}

/// Parses the response head at the start of `buf` and removes it from `buf`; `Ok(None)` while
/// the head is incomplete. `head_request` says the request was `HEAD` (no body follows).
pub fn parse(buf: &mut BytesMut, head_request: bool) -> Result<Option<Head>, DecodeError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(&buf[..]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(DecodeError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
        Err(_) => return Err(DecodeError::Malformed),
    };
    if len > MAX_HEAD {
        return Err(DecodeError::TooLarge);
    }
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(DecodeError::Malformed)?;
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Where each name and value sits in the buffer, so they can be cut from it once frozen.
    let base = buf.as_ptr() as usize;
    let spans: SmallVec<[[usize; 4]; 16]> = resp
        .headers
        .iter()
        .map(|h| {
            [
                h.name.as_ptr() as usize - base,
                h.name.len(),
                h.value.as_ptr() as usize - base,
                h.value.len(),
            ]
        })
        .collect();
    let bytes = buf.split_to(len).freeze();

    let mut headers = HeaderMap::with_capacity(spans.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut te = false;
    let mut close = false;
    let mut keep_alive = false;
    for [n0, nl, v0, vl] in spans {
        let name = &bytes[n0..n0 + nl];
        let value = &bytes[v0..v0 + vl];
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = content_length(value)?;
            if length.is_some_and(|l| l != n) {
                return Err(DecodeError::BadLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            // Only a final `chunked` frames the body; the last header's last coding counts.
            chunked = tokens(value)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            continue;
        } else if name.eq_ignore_ascii_case(b"connection") {
            let mut names_others = false;
            for t in tokens(value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else {
                    names_others = true;
                }
            }
            if !names_others {
                continue;
            }
        } else if name.eq_ignore_ascii_case(b"keep-alive")
            || name.eq_ignore_ascii_case(b"proxy-connection")
            || name.eq_ignore_ascii_case(b"te")
            || name.eq_ignore_ascii_case(b"trailer")
        {
            continue;
        }
        let name = HeaderName::from_bytes(name).map_err(|_| DecodeError::Malformed)?;
        let value = HeaderValue::from_maybe_shared(bytes.slice(v0..v0 + vl))
            .map_err(|_| DecodeError::Malformed)?;
        headers.append(name, value);
    }

    if te {
        // The transfer coding frames the body: a `Content-Length` beside it is wrong and must not
        // reach the client, whose response is framed anew (RFC 9112 §6.3).
        headers.remove(http::header::CONTENT_LENGTH);
    }
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::Empty
    } else if te {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    let persistent = if version == Version::HTTP_11 {
        !close
    } else {
        keep_alive && !close
    };
    // A head with both framings is answered but its connection is not trusted again.
    let keep_alive =
        persistent && framing != Framing::UntilClose && !(te && length.is_some() && !bodiless);
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

/// Comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// A `Content-Length` value: digits, or a list of identical digit strings.
fn content_length(value: &[u8]) -> Result<u64, DecodeError> {
    let mut found: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(DecodeError::BadLength);
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(DecodeError::BadLength);
        }
        found = Some(n);
    }
    found.ok_or(DecodeError::BadLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str, head_request: bool) -> (Result<Option<Head>, DecodeError>, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        let r = parse(&mut buf, head_request);
        (r, buf)
    }

    #[test]
    fn length_framed_head_leaves_the_body_in_the_buffer() {
        let (r, rest) = parse_str(
            "HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n",
            false,
        );
        let h = r.unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(3));
        assert!(h.keep_alive);
        assert_eq!(h.headers.get("server").unwrap(), "t");
        assert_eq!(h.headers.get("content-length").unwrap(), "3");
        assert!(!h.headers.contains_key("connection"), "hop-by-hop kept");
        assert_eq!(&rest[..], b"ok\n");
    }

    #[test]
    fn partial_head_waits_and_oversized_head_fails() {
        let (r, rest) = parse_str("HTTP/1.1 200 OK\r\nServer: t\r\n", false);
        assert!(r.unwrap().is_none());
        assert_eq!(rest.len(), 28, "nothing consumed");
        let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse_str(&big, false).0.unwrap_err(), DecodeError::TooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let text = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            parse_str(&text, false).0.unwrap_err(),
            DecodeError::TooManyHeaders
        );
        assert_eq!(
            parse_str("HTTX/1.1 200 OK\r\n\r\n", false).0.unwrap_err(),
            DecodeError::Malformed
        );
    }

    #[test]
    fn framing_rules() {
        let f = |text: &str, head: bool| parse_str(text, head).0.unwrap().unwrap();
        let h = f(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.keep_alive);
        assert!(!h.headers.contains_key("transfer-encoding"));
        let h = f(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = f(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(
            !h.keep_alive,
            "a head with both framings is not trusted again"
        );
        assert!(
            !h.headers.contains_key("content-length"),
            "the length beside a coding is dropped"
        );
        let h = f("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        for text in [
            "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
        ] {
            assert_eq!(f(text, false).framing, Framing::Empty, "{text}");
        }
        let h = f("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", false).framing,
            Framing::Length(7)
        );
        for bad in ["7, 8", "-1", "", "0x10", "99999999999999999999"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                parse_str(&text, false).0.unwrap_err(),
                DecodeError::BadLength,
                "{bad}"
            );
        }
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            parse_str(text, false).0.unwrap_err(),
            DecodeError::BadLength
        );
    }

    #[test]
    fn persistence_by_version_and_connection() {
        let f = |text: &str| parse_str(text, false).0.unwrap().unwrap();
        assert!(!f("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!f("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        let h = f("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive);
        assert_eq!(h.version, Version::HTTP_10);
        // A Connection that names another header stays, for the hop-by-hop strip to read.
        let h = f(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x-private\r\nX-Private: 1\r\n\r\n",
        );
        assert!(h.headers.contains_key("connection"));
        assert!(h.keep_alive);
    }
}

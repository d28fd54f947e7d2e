//! Writing a request head and the chunked framing of a request body.
//!
//! Headers go out as the gateway holds them (lower-case names, as hyper's client sent them).
//! The head is built in one buffer so it leaves in one `write`.

use http::{HeaderMap, Method};

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body follows the head.
    None,
    /// The client's `Content-Length` is kept and the bytes go out as they are.
    Length,
    /// `Transfer-Encoding: chunked` is added and every frame is sent as a chunk.
    Chunked,
}

/// Appends the request head: request line, headers, framing header, blank line.
pub fn head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: BodyFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if framing == BodyFraming::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The line that opens a chunk of `len` bytes.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk (no trailers) that ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn head_has_request_line_headers_and_framing() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.test"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let mut out = Vec::new();
        head(&mut out, &Method::POST, "/p?q=1", &h, BodyFraming::Chunked);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\nx-a: 2\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        let mut out = Vec::new();
        head(
            &mut out,
            &Method::GET,
            "",
            &HeaderMap::new(),
            BodyFraming::None,
        );
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn chunk_sizes_are_lower_case_hex() {
        for (len, text) in [
            (0, "0\r\n"),
            (10, "a\r\n"),
            (255, "ff\r\n"),
            (65536, "10000\r\n"),
        ] {
            let mut out = Vec::new();
            chunk_header(&mut out, len);
            assert_eq!(out, text.as_bytes());
        }
    }
}

//! The small HTTPS/HTTP POST client every HTTP receiver kind (webhook, Slack, Dooray) shares,
//! and how their answers become a [`Delivered`] or a [`SendError`].
//!
//! It opens one connection per request (a notification is rare; nothing pooled needs to
//! outlive it), bounds the connect and the TLS handshake with a timeout, trusts the public web
//! roots, and reads at most [`MAX_BODY`] of the answer. A receiver's URL usually carries its
//! token, so neither the parsed [`Endpoint`]'s `Debug` nor any error here shows the URL: errors
//! say what failed ("connect failed: Connection refused"), and the notifier prefixes its kind.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ballast_monitor::probe::client::{self, ExchangeError};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use thiserror::Error;
use tokio::net::TcpStream;

use crate::notifier::{Delivered, SendError};
use crate::secret::{ConfigError, Secret};

/// The most of an answer's body that is read.
pub const MAX_BODY: usize = 64 * 1024;

/// The longest a TCP connect, and separately a TLS handshake, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a receiver's URL points. Its `Debug` hides the path and query (the token).
#[derive(Clone)]
pub struct Endpoint {
    https: bool,
    host: String,
    port: u16,
    authority: String,
    path_and_query: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("https", &self.https)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &"[redacted]")
            .finish()
    }
}

impl Endpoint {
    /// Parses an absolute `http://` or `https://` URL; errors never quote it.
    pub fn parse(
        kind: &'static str,
        field: &'static str,
        url: &Secret,
    ) -> Result<Endpoint, ConfigError> {
        let bad = |reason: &str| ConfigError::BadUrl {
            kind,
            field,
            reason: reason.to_string(),
        };
        let uri: Uri = url
            .expose()
            .trim()
            .parse()
            .map_err(|_| bad("not a valid URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(bad("the scheme must be http or https")),
            None => return Err(bad("an absolute URL (https://host/...) is needed")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad("no host"))?
            .as_str()
            .to_string();
        if authority.contains('@') {
            return Err(bad("user information in the URL is not supported"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_string(),
            Some(p) => p.to_string(),
        };
        Ok(Endpoint {
            https,
            host,
            port,
            authority,
            path_and_query,
        })
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `text` with the URL's path and query, and every part of them that could be a token
    /// (6 characters or more between `/`, `?`, `&` and `=`), replaced by `[redacted]`: some
    /// servers echo the path in their errors ("Cannot POST /hooks/<token>").
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.path_and_query.as_str(), "[redacted]");
        let mut parts: Vec<&str> = self
            .path_and_query
            .split(['/', '?', '&', '='])
            .filter(|p| p.len() >= 6)
            .collect();
        // Longest first, so a part containing another is replaced whole.
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in parts {
            out = out.replace(p, "[redacted]");
        }
        out
    }
}

/// An answer: status, headers and at most [`MAX_BODY`] bytes of body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// True when the body was longer than [`MAX_BODY`].
    pub truncated: bool,
}

/// Why a POST did not get an answer. Never contains the URL.
#[derive(Debug, Error)]
pub enum HttpError {
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    #[error("connect failed: timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("TLS handshake failed: timed out after {0:?}")]
    TlsTimeout(Duration),
    #[error("TLS setup failed: {0}")]
    TlsSetup(String),
    #[error("HTTP exchange failed: {0}")]
    Http(hyper::Error),
    #[error("reading the answer failed: {0}")]
    Body(hyper::Error),
    #[error("building the request failed: {0}")]
    Request(String),
}

/// A POST client with its TLS settings; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl HttpClient {
    /// A client trusting the public web roots, with [`CONNECT_TIMEOUT`].
    pub fn new() -> Result<HttpClient, HttpError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::TlsSetup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            connect_timeout: CONNECT_TIMEOUT,
        })
    }

    /// The same client with another connect (and handshake) timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> HttpClient {
        self.connect_timeout = timeout;
        self
    }

    /// [`HttpClient::post`] of a JSON body (what every chat-like receiver sends).
    pub async fn post_json(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        self.post(endpoint, &[json_content_type()], body).await
    }

    /// POSTs `body` to `endpoint` on a new connection and reads the answer.
    pub async fn post(
        &self,
        endpoint: &Endpoint,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let mut req = http::Request::builder()
            .method(http::Method::POST)
            .uri(endpoint.path_and_query.as_str())
            .body(Full::new(body))
            .map_err(|_| HttpError::Request("the URL's path is not valid".into()))?;
        let host = HeaderValue::from_str(&endpoint.authority)
            .map_err(|_| HttpError::Request("the URL's host is not valid".into()))?;
        req.headers_mut().insert(http::header::HOST, host);
        req.headers_mut().insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("ballast/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in headers {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        let timeout = self.connect_timeout;
        let tcp = tokio::time::timeout(
            timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await
        .map_err(|_| HttpError::ConnectTimeout(timeout))?
        .map_err(HttpError::Connect)?;
        // Only a latency optimisation; failing to set it changes nothing else.
        let _ = tcp.set_nodelay(true);
        if endpoint.https {
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|_| HttpError::TlsSetup("the host is not a valid server name".into()))?;
            let tls = tokio::time::timeout(timeout, self.tls.connect(name, tcp))
                .await
                .map_err(|_| HttpError::TlsTimeout(timeout))?
                .map_err(HttpError::Tls)?;
            exchange(TokioIo::new(tls), req).await
        } else {
            exchange(TokioIo::new(tcp), req).await
        }
    }
}

/// Runs one request on `io` (the probes' exchange: the connection is driven inside this same
/// future, so dropping it closes the connection), reading at most [`MAX_BODY`].
async fn exchange<T>(io: T, req: http::Request<Full<Bytes>>) -> Result<HttpResponse, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (status, headers, body, truncated) =
        client::exchange(io, req, MAX_BODY)
            .await
            .map_err(|e| match e {
                ExchangeError::Http(e) => HttpError::Http(e),
                ExchangeError::Body(e) => HttpError::Body(e),
            })?;
    Ok(HttpResponse {
        status,
        headers,
        body,
        truncated,
    })
}

/// The receiver's `Retry-After`: a number of seconds (what Slack sends) or an HTTP date
/// (then the time from now to it, zero when past). At most a day, so a wild value cannot park a
/// notification forever.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(v).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The first line of an answer's body, printable and at most 200 characters: Slack's error
/// word (`invalid_payload`), or the start of a JSON error.
pub fn answer_word(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// How an HTTP receiver's answer (or the lack of one) classifies: 2xx delivered; 408, 429 and
/// 5xx worth retrying (with `Retry-After` when given); other statuses permanent; no answer at
/// all (refused, reset, timed out) worth retrying. The answer's words are quoted with the
/// endpoint's path redacted.
pub fn classify(
    kind: &'static str,
    endpoint: &Endpoint,
    result: Result<HttpResponse, HttpError>,
) -> Result<Delivered, SendError> {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Err(SendError::retry(format!("{kind} receiver: {e}"))),
    };
    let word = endpoint.redact(&answer_word(&resp.body));
    let answer = if word.is_empty() {
        resp.status.to_string()
    } else {
        format!("{} {word}", resp.status)
    };
    match resp.status {
        200..=299 => Ok(Delivered { answer }),
        408 | 429 | 500..=599 => Err(SendError::Retry {
            reason: format!("{kind} receiver: answered {answer}"),
            retry_after: retry_after(&resp.headers),
        }),
        _ => Err(SendError::permanent(format!(
            "{kind} receiver: refused with {answer}"
        ))),
    }
}

/// The `Content-Type: application/json` header.
/// `value` as a JSON body; an encoding failure is permanent (retrying cannot fix it).
pub fn json_body(kind: &str, value: &impl serde::Serialize) -> Result<Bytes, SendError> {
    serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
        SendError::permanent(format!("{kind} receiver: cannot encode the message: {e}"))
    })
}

pub fn json_content_type() -> (HeaderName, HeaderValue) {
    (
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Result<Endpoint, ConfigError> {
        Endpoint::parse("slack", "url", &Secret::new(url))
    }

    #[test]
    fn endpoints_parse_and_hide_their_path() {
        let e = ep("https://hooks.slack.com/services/T1/B2/sekret").unwrap();
        assert!(e.is_https());
        assert_eq!((e.host.as_str(), e.port), ("hooks.slack.com", 443));
        assert_eq!(e.path_and_query, "/services/T1/B2/sekret");
        assert!(!format!("{e:?}").contains("sekret"));
        let e = ep("http://[::1]:8080").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path_and_query.as_str()),
            ("::1", 8080, "/")
        );
    }

    #[test]
    fn bad_urls_are_not_quoted() {
        for url in [
            "ftp://x/sekret",
            "/sekret",
            "not a url sekret",
            "https://u:sekret@h/",
        ] {
            let e = ep(url).unwrap_err();
            assert!(!e.to_string().contains("sekret"), "{e}");
            assert!(!format!("{e:?}").contains("sekret"), "{e:?}");
        }
    }

    #[test]
    fn classification() {
        let e = ep("https://hooks.example/services/T1/B2/sekret").unwrap();
        let resp = |status: u16, body: &'static str, ra: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = ra {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(v));
            }
            Ok(HttpResponse {
                status,
                headers,
                body: Bytes::from_static(body.as_bytes()),
                truncated: false,
            })
        };
        assert_eq!(
            classify("slack", &e, resp(200, "ok", None)),
            Ok(Delivered {
                answer: "200 ok".into()
            })
        );
        assert_eq!(
            classify("slack", &e, resp(429, "", Some("2"))),
            Err(SendError::Retry {
                reason: "slack receiver: answered 429".into(),
                retry_after: Some(Duration::from_secs(2)),
            })
        );
        assert!(classify("slack", &e, resp(500, "rollup_error", None))
            .unwrap_err()
            .is_retryable());
        assert_eq!(
            classify("slack", &e, resp(404, "channel_not_found\n", None)),
            Err(SendError::permanent(
                "slack receiver: refused with 404 channel_not_found"
            ))
        );
        assert_eq!(
            classify(
                "slack",
                &e,
                resp(404, "Cannot POST /services/T1/B2/sekret", None)
            ),
            Err(SendError::permanent(
                "slack receiver: refused with 404 Cannot POST [redacted]"
            ))
        );
        assert_eq!(
            e.redact("no hook T1/B2/sekret here"),
            "no hook T1/B2/[redacted] here"
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("999999999"),
        );
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}

//! A small HTTP/1.1 client for the probes that speak HTTP (`http`, `journey`, `prometheus`),
//! plus the TLS pieces they share with the `tls` probe.
//!
//! It exists because a probe needs less than a general client and more control: one fresh
//! connection per request (so every run measures a connect, and nothing pooled survives a run
//! the runner drops), the latency of the whole exchange, a body read that stops at
//! [`MAX_BODY`] (1 MiB) so a huge or endless response cannot exhaust memory, and TLS that can
//! trust an extra CA file or, when a monitor opts in with `tls_verify = false`, no chain at all.
//!
//! The runner bounds every run with the monitor's timeout and drops the future when it
//! expires; dropping it closes the connection, since the connection is driven inside the same
//! future rather than on a spawned task. The connect and the TLS handshake are also bounded by
//! [`CONNECT_TIMEOUT`] so that neither can hang forever even outside the runner.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;
use tokio::net::TcpStream;

/// The most of a response body that is read; the rest is not read (see [`Response::truncated`]).
pub const MAX_BODY: usize = 1 << 20;

/// The longest a TCP connect, and separately a TLS handshake, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request did not produce a response.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("bad URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("bad header {name:?}: {reason}")]
    BadHeader { name: String, reason: String },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connect to {0}: timed out after {1:?}")]
    ConnectTimeout(String, Duration),
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {0}: timed out after {1:?}")]
    TlsTimeout(String, Duration),
    #[error("HTTP exchange: {0}")]
    Http(hyper::Error),
    #[error("reading the response body: {0}")]
    Body(hyper::Error),
    #[error("{0}")]
    Config(String),
}

/// Where a URL points: what to connect to and whether to speak TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uri: Uri,
    pub https: bool,
    /// The host without IPv6 brackets, as connected to and offered as SNI.
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(bad("the scheme must be http or https")),
            None => return Err(bad("an absolute URL (http://host/...) is needed")),
        };
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
        Ok(Target {
            uri,
            https,
            host,
            port,
        })
    }

    /// The `Host` header: the URL's authority.
    fn host_header(&self) -> String {
        self.uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| self.host.clone())
    }
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub target: Target,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn new(method: Method, url: &str) -> Result<Request, ClientError> {
        Ok(Request {
            method,
            target: Target::parse(url)?,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        })
    }

    /// Adds a header, refusing names and values HTTP does not allow.
    pub fn header(&mut self, name: &str, value: &str) -> Result<(), ClientError> {
        let bad = |reason: String| ClientError::BadHeader {
            name: name.to_string(),
            reason,
        };
        let n = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let v = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        self.headers.append(n, v);
        Ok(())
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// At most [`MAX_BODY`] bytes.
    pub body: Bytes,
    /// True when the body was longer than [`MAX_BODY`] and only its start was read.
    pub truncated: bool,
    /// From before the connect to the last byte of the body read.
    pub latency: Duration,
}

impl Response {
    pub fn latency_ms(&self) -> f64 {
        self.latency.as_secs_f64() * 1000.0
    }
}

/// A client with its TLS settings; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: tokio_rustls::TlsConnector,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// `ca_file`: PEM certificates trusted besides the public roots. `verify = false` accepts
    /// any certificate chain (signatures of the handshake are still checked).
    pub fn new(ca_file: Option<&Path>, verify: bool) -> Result<HttpClient, ClientError> {
        let roots = root_store(ca_file).map_err(ClientError::Config)?;
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let mut cfg = if verify {
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            let verifier = RecordingVerifier::new(roots, provider).map_err(ClientError::Config)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// Sends one request on a new connection and reads the response (its body up to
    /// [`MAX_BODY`]).
    pub async fn send(&self, req: &Request) -> Result<Response, ClientError> {
        let start = Instant::now();
        let t = &req.target;
        let tcp = connect(&t.host, t.port).await?;
        let http_req = build(req)?;
        let (status, headers, body, truncated) = if t.https {
            let addr = format!("{}:{}", t.host, t.port);
            let name = server_name(&t.host).map_err(ClientError::Config)?;
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, tcp))
                .await
                .map_err(|_| ClientError::TlsTimeout(addr.clone(), CONNECT_TIMEOUT))?
                .map_err(|source| ClientError::Tls { addr, source })?;
            exchange(TokioIo::new(tls), http_req, MAX_BODY).await?
        } else {
            exchange(TokioIo::new(tcp), http_req, MAX_BODY).await?
        };
        Ok(Response {
            status,
            headers,
            body,
            truncated,
            latency: start.elapsed(),
        })
    }
}

/// A TCP connect bounded by [`CONNECT_TIMEOUT`]; the host may be a name, resolved by the system.
pub async fn connect(host: &str, port: u16) -> Result<TcpStream, ClientError> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ClientError::ConnectTimeout(addr.clone(), CONNECT_TIMEOUT))?
        .map_err(|source| ClientError::Connect { addr, source })?;
    // Only a latency optimisation; a failure to set it changes nothing else.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn build(req: &Request) -> Result<http::Request<Full<Bytes>>, ClientError> {
    let path = req
        .target
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path };
    let mut out = http::Request::builder()
        .method(req.method.clone())
        .uri(path)
        .body(Full::new(req.body.clone()))
        .map_err(|e| ClientError::BadUrl {
            url: req.target.uri.to_string(),
            reason: e.to_string(),
        })?;
    *out.headers_mut() = req.headers.clone();
    if !out.headers().contains_key(http::header::HOST) {
        let host = HeaderValue::from_str(&req.target.host_header()).map_err(|e| {
            ClientError::BadHeader {
                name: "host".into(),
                reason: e.to_string(),
            }
        })?;
        out.headers_mut().insert(http::header::HOST, host);
    }
    Ok(out)
}

/// What one exchange returned: status, headers, at most `max_body` bytes of body, and whether
/// the body was cut short.
pub type Exchanged = (u16, HeaderMap, Bytes, bool);

/// Why an exchange failed: the request/response itself, or reading the body.
#[derive(Debug)]
pub enum ExchangeError {
    Http(hyper::Error),
    Body(hyper::Error),
}

impl From<ExchangeError> for ClientError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Http(e) => ClientError::Http(e),
            ExchangeError::Body(e) => ClientError::Body(e),
        }
    }
}

/// Runs one HTTP/1.1 request on `io`, driving the connection inside this same future (so
/// dropping the future closes the connection), and reads at most `max_body` bytes of the
/// answer. Shared by the probes and the notifiers' client.
pub async fn exchange<T>(
    io: T,
    req: http::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Exchanged, ExchangeError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(ExchangeError::Http)?;
    let work = async move {
        let resp = sender
            .send_request(req)
            .await
            .map_err(ExchangeError::Http)?;
        let (parts, mut body) = resp.into_parts();
        let mut buf = BytesMut::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(ExchangeError::Body)?;
            if let Ok(data) = frame.into_data() {
                let room = max_body.saturating_sub(buf.len());
                if data.len() > room {
                    buf.extend_from_slice(&data.slice(..room));
                    truncated = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok((
            parts.status.as_u16(),
            parts.headers,
            buf.freeze(),
            truncated,
        ))
    };
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => r,
        c = &mut conn => match c {
            Err(e) => Err(ExchangeError::Http(e)),
            // The connection ended cleanly; whatever was received is with the request side.
            Ok(()) => work.await,
        },
    }
}

/// The crypto provider every probe uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The public web roots plus the certificates of `ca_file`, if given.
pub(crate) fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in load_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(roots)
}

/// Every certificate in a PEM file; at least one.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// Checks that an optional `ca_file` holds PEM certificates (read once, when the probe is
/// built; a changed file is read again only when the config is reloaded).
pub(crate) fn validate_ca_file(
    field: &str,
    ca_file: Option<&Path>,
) -> Result<(), super::SpecError> {
    match ca_file {
        Some(path) => load_certs(path)
            .map(|_| ())
            .map_err(|e| super::SpecError::new(field, e)),
        None => Ok(()),
    }
}

/// SNI for a host: a DNS name, or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host:?} is no server name: {e}"))
}

/// A verifier that asks webpki for its verdict, records it, and accepts the chain anyway:
/// the `tls` probe reports the verdict instead of failing, and `tls_verify = false` ignores
/// it. Handshake signatures are still verified against the presented certificate.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    verdict: Mutex<Option<Result<(), String>>>,
}

impl RecordingVerifier {
    pub(crate) fn new(
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<RecordingVerifier, String> {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(RecordingVerifier {
            inner,
            verdict: Mutex::new(None),
        })
    }

    /// The last verdict: `None` before any certificate was seen, else `Ok` or why not.
    pub(crate) fn verdict(&self) -> Option<Result<(), String>> {
        self.verdict.lock().map(|v| v.clone()).unwrap_or(None)
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("https://example.com/a?b=1").unwrap();
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        let t = Target::parse("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.host_header(), "[::1]:8080");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}

//! Real loopback servers for the probe tests: an HTTP/1.1 server (plain or TLS) whose answers
//! a test gives as a closure, and certificates made with rcgen.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_core::UtcTime;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// What the test server received.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type Handler = Arc<dyn Fn(Req) -> Response<Full<Bytes>> + Send + Sync>;

pub fn handler(f: impl Fn(Req) -> Response<Full<Bytes>> + Send + Sync + 'static) -> Handler {
    Arc::new(f)
}

pub fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

/// Serves plain HTTP/1.1 on 127.0.0.1 until the test's runtime ends.
pub async fn serve(handler: Handler) -> SocketAddr {
    serve_with(handler, None).await
}

/// Serves HTTP/1.1 over TLS with `tls`.
pub async fn serve_tls(handler: Handler, tls: rustls::ServerConfig) -> SocketAddr {
    serve_with(
        handler,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))),
    )
    .await
}

async fn serve_with(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes());
                        let req = Req {
                            method: parts.method.to_string(),
                            path: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            headers: parts.headers,
                            body: body.unwrap_or_default(),
                        };
                        Ok::<_, std::convert::Infallible>(handler(req))
                    }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    addr
}

/// A port on which nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A CA and a leaf for `localhost` and 127.0.0.1 signed by it, expiring at midnight UTC
/// `days` days from now (so between `days - 1` and `days` days left).
pub struct Pki {
    pub ca_pem: String,
    pub leaf: CertificateDer<'static>,
    pub key: Vec<u8>,
}

pub fn pki(days: u64) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Ballast Test CA");
    let ca = ca.self_signed(&ca_key).unwrap();

    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let end = UtcTime::from_unix_secs(now + days * 86_400);
    leaf.not_after = rcgen::date_time_ymd(end.year as i32, end.month, end.day);
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        key: key.serialize_der(),
    }
}

impl Pki {
    pub fn server_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], key)
            .unwrap()
    }

    /// Writes the CA to a file in a fresh directory and returns its path.
    pub fn ca_file(&self, tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ballast-monitor-{tag}-{}-{}",
            std::process::id(),
            fastish_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

fn fastish_id() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Parses a spec from TOML, as the config crate would hand it over.
pub fn spec<T: serde::de::DeserializeOwned>(toml_text: &str) -> T {
    toml::from_str(toml_text).unwrap()
}

/// The reading named `value` with no labels.
pub fn reading(out: &ballast_monitor::probe::Outcome, value: &str) -> Option<f64> {
    out.readings
        .iter()
        .find(|r| r.value == value && r.labels.is_empty())
        .map(|r| r.number)
}

//! Support for the TLS tests: certificates made with rcgen and written as PEM files, and a
//! tokio-rustls client that records which certificate the gateway served (its subject CN)
//! while sending real HTTP/1.1 requests, alone or as load.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Writes a fresh self-signed certificate for `names` with subject `CN=cn` (valid until
/// 2099-01-01, or until `not_after` when given) and its key to `cert` and `key`.
pub fn write_cert(
    cert: &Path,
    key: &Path,
    cn: &str,
    names: &[&str],
    not_after: Option<std::time::SystemTime>,
) {
    let (c, k) = make_cert(cn, names, not_after);
    std::fs::write(cert, c).unwrap();
    std::fs::write(key, k).unwrap();
}

/// (certificate PEM, key PEM).
pub fn make_cert(
    cn: &str,
    names: &[&str],
    not_after: Option<std::time::SystemTime>,
) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = match not_after {
        Some(t) => t.into(),
        None => rcgen::date_time_ymd(2099, 1, 1),
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Paths `dir/stem.crt` and `dir/stem.key`, written with a certificate for `CN=cn`.
pub fn cert_files(dir: &Path, stem: &str, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    write_cert(&cert, &key, cn, names, None);
    (cert, key)
}

/// Accepts any certificate: the tests identify the served certificate by its subject.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every handshake is a full one, so each shows the certificate served now.
    cfg.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// The `CN` of a DER certificate's subject.
pub fn common_name(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("an X.509 certificate");
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string();
    cn
}

/// A TLS connection with an HTTP/1.1 client on it, and the CN of the certificate it got.
pub struct TlsConn {
    pub cn: String,
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl TlsConn {
    /// Connects to `addr` sending `sni` as the server name.
    pub async fn open(addr: SocketAddr, sni: &str) -> Result<Self, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
        let tls = tokio::time::timeout(Duration::from_secs(10), connector().connect(name, tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let cn = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| common_name(c))
            .ok_or("no peer certificate")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Self { cn, sender })
    }

    /// `GET path`; Ok(()) on a 200 with its body read.
    pub async fn get(&mut self, path: &str) -> Result<(), String> {
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let req = http::Request::builder()
            .uri(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let fut = self.sender.send_request(req);
        let resp = tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .map_err(|_| "request timed out".to_string())?
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    }
}

/// The CN served to a new connection for `sni`, checked with one request.
pub async fn served_cn(addr: SocketAddr, sni: &str) -> Result<String, String> {
    let mut c = TlsConn::open(addr, sni).await?;
    c.get("/").await?;
    Ok(c.cn)
}

/// Clients running during a test: keep-alive clients (one TLS connection each, reopened only
/// after a failure) and clients opening a new TLS connection for every request.
pub struct TlsLoad {
    stop: Arc<AtomicBool>,
    pub ok: Arc<AtomicUsize>,
    /// TLS connections opened by the keep-alive clients (one each unless one failed).
    pub keep_alive_opened: Arc<AtomicUsize>,
    failures: Arc<Failures>,
    /// CN seen by the latest new connection.
    pub latest_cn: Arc<Mutex<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TlsLoad {
    pub fn start(addr: SocketAddr, keep_alive: usize, fresh: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Failures::default());
        let keep_alive_opened = Arc::new(AtomicUsize::new(0));
        let latest_cn = Arc::new(Mutex::new(String::new()));
        let mut tasks = Vec::new();
        for _ in 0..keep_alive {
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            let opened = keep_alive_opened.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn: Option<TlsConn> = None;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        match TlsConn::open(addr, "localhost").await {
                            Ok(c) => {
                                opened.fetch_add(1, Ordering::Relaxed);
                                conn = Some(c)
                            }
                            Err(e) => {
                                failures.add(format!("keep-alive open: {e}"));
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        }
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    match c.get("/").await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failures.add(format!("keep-alive: {e}"));
                            conn = None;
                        }
                    }
                }
            }));
        }
        for _ in 0..fresh {
            let (stop, ok, failures, latest) = (
                stop.clone(),
                ok.clone(),
                failures.clone(),
                latest_cn.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match served_cn(addr, "localhost").await {
                        Ok(cn) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            *latest.lock().unwrap() = cn;
                        }
                        Err(e) => {
                            failures.add(format!("new connection: {e}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
        }
        Self {
            stop,
            ok,
            keep_alive_opened,
            failures,
            latest_cn,
            tasks,
        }
    }

    pub fn completed(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    pub fn latest_cn(&self) -> String {
        self.latest_cn.lock().unwrap().clone()
    }

    /// Stops the clients; returns (successful requests, failed requests, a few failures).
    pub async fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load client panicked");
        }
        let samples = self.failures.samples.lock().unwrap().clone();
        (
            self.ok.load(Ordering::Relaxed),
            self.failures.count.load(Ordering::Relaxed),
            samples,
        )
    }
}

/// Failed requests: all counted, the first few kept for the assertion message.
#[derive(Default)]
struct Failures {
    count: AtomicUsize,
    samples: Mutex<Vec<String>>,
}

impl Failures {
    fn add(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock().unwrap();
        if s.len() < 10 {
            s.push(what);
        }
    }
}

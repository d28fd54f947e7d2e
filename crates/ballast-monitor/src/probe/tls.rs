//! The `tls` probe: how long until a certificate expires, which protocol is spoken, and
//! whether the chain verifies.
//!
//! It exists because an expired certificate is an outage announced months in advance: the
//! probe reports the days left so a rule can warn at 30 and page at 7. It completes the
//! handshake even when the chain does not verify (an expired, self-signed or misnamed
//! certificate), so that it can still report the expiry; the webpki verdict (chain, validity
//! dates and name, against the public roots plus `ca_file`) is a reading of its own, not a
//! failed run.
//!
//! ```toml
//! [[monitor]]
//! name = "shop-cert"
//! kind = "tls"
//! target = "shop.example.com:443"
//! server_name = "shop.example.com"    # SNI and the name verified; default: the target's host
//! ca_file = "/etc/ballast/internal-ca.pem"   # trusted besides the public roots
//! ```
//!
//! Readings: `days_left` (fractional days until the leaf's notAfter, negative once expired),
//! `chain_valid` (1 or 0), `tls_version` (12 or 13). Detail: subject, issuer, not_after,
//! protocol, and the verification error if any.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_core::{Labels, UtcTime};
use rustls::ProtocolVersion;
use serde::Deserialize;

use super::client::{
    connect, provider, root_store, server_name, validate_ca_file, RecordingVerifier,
};
use super::tcp::split_host_port;
use super::{BoxFuture, Outcome, Probe, SpecError};

/// `kind = "tls"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub target: String,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl TlsSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        let (host, _) = split_host_port("target", &self.target)?;
        match &self.server_name {
            Some(name) => server_name(name).map_err(|e| SpecError::new("server_name", e))?,
            None => server_name(&host).map_err(|e| SpecError::new("target", e))?,
        };
        validate_ca_file("ca_file", self.ca_file.as_deref())
    }
}

/// Runs a [`TlsSpec`].
#[derive(Debug)]
pub struct TlsProbe {
    host: String,
    port: u16,
    server_name: String,
    ca_file: Option<PathBuf>,
}

impl TlsProbe {
    pub fn new(spec: TlsSpec) -> Result<TlsProbe, SpecError> {
        spec.validate()?;
        let (host, port) = split_host_port("target", &spec.target)?;
        let server_name = spec.server_name.clone().unwrap_or_else(|| host.clone());
        Ok(TlsProbe {
            host,
            port,
            server_name,
            ca_file: spec.ca_file,
        })
    }

    async fn run_once(&self) -> Outcome {
        match self.handshake().await {
            Ok(out) => out,
            Err(e) => Outcome::failed(e),
        }
    }

    async fn handshake(&self) -> Result<Outcome, String> {
        // A fresh verifier (and config) per run: the verdict it records is this run's, and
        // no session is resumed, so every run sees the certificate served now.
        let roots = root_store(self.ca_file.as_deref())?;
        let provider = provider();
        let verifier = Arc::new(RecordingVerifier::new(roots, provider.clone())?);
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        cfg.resumption = rustls::client::Resumption::disabled();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let name = server_name(&self.server_name)?;

        let tcp = connect(&self.host, self.port)
            .await
            .map_err(|e| e.to_string())?;
        let addr = format!("{}:{}", self.host, self.port);
        let tls =
            tokio::time::timeout(super::client::CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| format!("TLS handshake with {addr}: timed out"))?
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        let conn = tls.get_ref().1;
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => 12.0,
            Some(ProtocolVersion::TLSv1_3) => 13.0,
            other => return Err(format!("unexpected protocol version {other:?}")),
        };
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| format!("{addr} presented no certificate"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| format!("the certificate of {addr} does not parse: {e}"))?;
        let not_after = cert.validity().not_after.timestamp();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let days_left = (not_after as f64 - now) / 86_400.0;
        let verdict = verifier
            .verdict()
            .unwrap_or_else(|| Err("no certificate was verified".into()));

        let mut out = Outcome::default();
        out.push("days_left", Labels::new(), days_left);
        out.push(
            "chain_valid",
            Labels::new(),
            f64::from(u8::from(verdict.is_ok())),
        );
        out.push("tls_version", Labels::new(), version);
        out.detail = serde_json::json!({
            "subject": cert.subject().to_string(),
            "issuer": cert.issuer().to_string(),
            "not_after": rfc3339(not_after),
            "protocol": if version == 13.0 { "TLSv1.3" } else { "TLSv1.2" },
            "verification_error": verdict.err(),
        });
        Ok(out)
    }
}

/// `2026-12-20T10:00:00Z`; times before 1970 print as 1970.
fn rfc3339(unix: i64) -> String {
    let t = UtcTime::from_unix_secs(u64::try_from(unix).unwrap_or(0));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

impl Probe for TlsProbe {
    fn kind(&self) -> &'static str {
        "tls"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_once())
    }
}

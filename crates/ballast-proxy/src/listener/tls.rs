//! TLS for HTTPS listeners: rustls (no OpenSSL) with ALPN offering h2 and http/1.1.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use ballast_config::Listener;
use tokio_rustls::TlsAcceptor;

/// Builds the acceptor from the listener's PEM certificate chain and private key.
pub fn acceptor(cfg: &Listener) -> Result<TlsAcceptor, String> {
    let tls = cfg.tls.as_ref().ok_or("https listener without tls")?;
    let open = |p: &std::path::Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let certs = rustls_pemfile::certs(&mut open(&tls.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", tls.cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut open(&tls.key)?)
        .map_err(|e| format!("{}: {e}", tls.key.display()))?
        .ok_or_else(|| format!("{}: no PEM private key found", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

//! TLS for HTTPS listeners: rustls (no OpenSSL) with ALPN offering h2 and http/1.1, several
//! certificates per listener chosen by SNI.
//!
//! [`load`] reads and checks the files (used by `ballast check`, start-up and every reload);
//! [`acceptor`] turns a loaded set into the acceptor an accept loop uses. A reload builds a new
//! acceptor from freshly read files and swaps it into the running accept loop: handshakes
//! already done keep their session, new ones get the new certificates.

pub mod load;
pub mod report;
pub mod sni;

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

pub use load::{load, now_unix, CertSet, LoadedCert, TlsError, WARN_DAYS};
pub use sni::SniResolver;

/// The crypto provider every TLS listener uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads and checks the certificates of every https listener of `config`; used by
/// `ballast check`. Returns the sets (for warnings) or the first error per listener.
pub fn load_all(config: &ballast_config::Config) -> Vec<Result<CertSet, TlsError>> {
    let provider = provider();
    config
        .listeners
        .iter()
        .filter(|l| l.protocol == ballast_config::Protocol::Https)
        .map(|l| load(l, &provider))
        .collect()
}

/// The acceptor for a loaded set.
pub fn acceptor(set: &CertSet) -> Result<TlsAcceptor, TlsError> {
    let resolver = SniResolver::new(set).ok_or_else(|| TlsError::Missing {
        listener: set.listener.clone(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup {
            listener: set.listener.clone(),
            detail: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

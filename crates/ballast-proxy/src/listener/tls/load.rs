//! Reads a listener's certificate chains and keys from their PEM files and checks them before
//! anything serves with them: both files readable and PEM, a certificate and a key present, the
//! key the certificate's own, the leaf not expired. Each failure is a [`TlsError`] naming the
//! listener, the config field and the file, so `ballast check`, start-up and reload all say
//! the same thing. The same pass reads the leaf's subject and expiry for status, metrics,
//! events and the "expires soon" warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_config::{CertSpec, Listener};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate expiring within this many days is reported as a warning.
pub const WARN_DAYS: i64 = 30;

/// Why a listener's certificates could not be used. Every variant names the listener, the
/// config field (`tls.key`, `tls.certs[1].cert`) and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("listener \"{listener}\": an https listener needs `tls`")]
    Missing { listener: String },
    #[error("listener \"{listener}\": TLS setup failed: {detail}")]
    Setup { listener: String, detail: String },
    #[error("listener \"{listener}\": {field}: cannot read {}: {source}", path.display())]
    Read {
        listener: String,
        field: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("listener \"{listener}\": {field}: {} is not a PEM file: {detail}", path.display())]
    NotPem {
        listener: String,
        field: String,
        path: PathBuf,
        detail: String,
    },
    #[error("listener \"{listener}\": {field}: {} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", path.display())]
    NoCertificate {
        listener: String,
        field: String,
        path: PathBuf,
    },
    #[error("listener \"{listener}\": {field}: {} holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\")", path.display())]
    NoKey {
        listener: String,
        field: String,
        path: PathBuf,
    },
    #[error("listener \"{listener}\": {field}: {} is not a usable X.509 certificate: {detail}", path.display())]
    BadCertificate {
        listener: String,
        field: String,
        path: PathBuf,
        detail: String,
    },
    #[error("listener \"{listener}\": {field}: {} is not a usable private key: {detail}", path.display())]
    BadKey {
        listener: String,
        field: String,
        path: PathBuf,
        detail: String,
    },
    #[error("listener \"{listener}\": {field}: the key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        listener: String,
        field: String,
        key: PathBuf,
        cert: PathBuf,
    },
    #[error("listener \"{listener}\": {field}: the certificate in {} expired on {not_after} ({subject})", path.display())]
    Expired {
        listener: String,
        field: String,
        path: PathBuf,
        subject: String,
        not_after: String,
    },
}

/// One certificate, loaded and checked.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    /// SNI names it serves (as configured); empty for a default without names.
    pub names: Vec<String>,
    /// Served for unknown or absent SNI names.
    pub default: bool,
    /// The leaf certificate's subject, e.g. `CN=shop.example.com`.
    pub subject: String,
    /// The leaf's notAfter, seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// The config field of its certificate file (`tls.cert`, `tls.certs[1].cert`).
    pub field: String,
    pub path: PathBuf,
    pub key: Arc<CertifiedKey>,
}

impl LoadedCert {
    /// Whole days until the certificate expires (negative once expired).
    pub fn days_left(&self, now_unix: i64) -> i64 {
        (self.not_after_unix - now_unix).div_euclid(86_400)
    }

    /// The expiry as RFC 3339 text (UTC).
    pub fn not_after_text(&self) -> String {
        rfc3339(self.not_after_unix)
    }
}

/// Every certificate of one listener, in config order.
#[derive(Debug, Clone)]
pub struct CertSet {
    pub listener: String,
    pub certs: Vec<LoadedCert>,
}

impl CertSet {
    /// "Expires soon" warnings, one line per certificate expiring within [`WARN_DAYS`].
    pub fn warnings(&self, now_unix: i64) -> Vec<String> {
        self.certs
            .iter()
            .filter(|c| c.days_left(now_unix) < WARN_DAYS)
            .map(|c| {
                format!(
                    "listener \"{}\": {}: the certificate in {} expires in {} days, on {} ({})",
                    self.listener,
                    c.field,
                    c.path.display(),
                    c.days_left(now_unix),
                    c.not_after_text(),
                    c.subject
                )
            })
            .collect()
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rfc3339(unix: i64) -> String {
    let t = if unix >= 0 {
        UNIX_EPOCH.checked_add(std::time::Duration::from_secs(unix as u64))
    } else {
        UNIX_EPOCH.checked_sub(std::time::Duration::from_secs(unix.unsigned_abs()))
    };
    match t {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string(),
        None => format!("@{unix}"),
    }
}

/// Reads and checks every certificate of the https listener `l` (re-reading the files each
/// time it is called: this is what reload does, so files rewritten in place are picked up).
pub fn load(l: &Listener, provider: &CryptoProvider) -> Result<CertSet, TlsError> {
    let tls = l.tls.as_ref().ok_or_else(|| TlsError::Missing {
        listener: l.name.clone(),
    })?;
    let now = now_unix();
    let certs = tls
        .certs
        .iter()
        .enumerate()
        .map(|(i, spec)| load_one(&l.name, spec, i == tls.default, provider, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CertSet {
        listener: l.name.clone(),
        certs,
    })
}

fn read(listener: &str, field: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        listener: listener.to_string(),
        field: field.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

fn load_one(
    listener: &str,
    spec: &CertSpec,
    default: bool,
    provider: &CryptoProvider,
    now: i64,
) -> Result<LoadedCert, TlsError> {
    let (cert_field, key_field) = (spec.field("cert"), spec.field("key"));
    let not_pem = |field: &str, path: &Path, e: &dyn std::fmt::Display| TlsError::NotPem {
        listener: listener.to_string(),
        field: field.to_string(),
        path: path.to_path_buf(),
        detail: e.to_string(),
    };

    let cert_pem = read(listener, &cert_field, &spec.cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| not_pem(&cert_field, &spec.cert, &e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            listener: listener.to_string(),
            field: cert_field,
            path: spec.cert.clone(),
        });
    };
    let (subject, not_after_unix, not_after) = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, x)) => {
            let after = &x.validity().not_after;
            (
                x.subject().to_string(),
                after.timestamp(),
                after.to_string(),
            )
        }
        Err(e) => {
            return Err(TlsError::BadCertificate {
                listener: listener.to_string(),
                field: cert_field,
                path: spec.cert.clone(),
                detail: e.to_string(),
            })
        }
    };
    if not_after_unix <= now {
        return Err(TlsError::Expired {
            listener: listener.to_string(),
            field: cert_field,
            path: spec.cert.clone(),
            subject,
            not_after,
        });
    }

    let key_pem = read(listener, &key_field, &spec.key)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| not_pem(&key_field, &spec.key, &e))?
        .ok_or_else(|| TlsError::NoKey {
            listener: listener.to_string(),
            field: key_field.clone(),
            path: spec.key.clone(),
        })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey {
            listener: listener.to_string(),
            field: key_field.clone(),
            path: spec.key.clone(),
            detail: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // The ring provider always knows a key's public half; should one not, the handshake
        // itself is the remaining check.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                listener: listener.to_string(),
                field: key_field,
                key: spec.key.clone(),
                cert: spec.cert.clone(),
            })
        }
        Err(e) => {
            return Err(TlsError::BadCertificate {
                listener: listener.to_string(),
                field: cert_field,
                path: spec.cert.clone(),
                detail: e.to_string(),
            })
        }
    }
    Ok(LoadedCert {
        names: spec.names.clone(),
        default,
        subject,
        not_after_unix,
        field: cert_field,
        path: spec.cert.clone(),
        key: Arc::new(certified),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_config::{Protocol, Tls};

    fn listener(cert: &Path, key: &Path) -> Listener {
        let cfg = ballast_config::parse(
            "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:1\"\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nservers = [{ addr = \"127.0.0.1:2\" }]\n",
            "t.toml",
        )
        .unwrap();
        let mut l = cfg.listeners[0].clone();
        l.protocol = Protocol::Https;
        l.tls = Some(Tls {
            certs: vec![CertSpec {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                names: vec![],
                index: None,
            }],
            default: 0,
        });
        l
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn each_broken_file_is_named_with_its_field() {
        let dir = std::env::temp_dir().join(format!("ballast-tls-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".to_string()]).unwrap();
        let cert = write(&dir, "a.crt", &a.cert.pem());
        let key = write(&dir, "a.key", &a.key_pair.serialize_pem());
        let other_key = write(&dir, "b.key", &b.key_pair.serialize_pem());
        let garbage = write(&dir, "garbage", "garbage\n");
        let p = crate::listener::tls::provider();

        let set = load(&listener(&cert, &key), &p).unwrap();
        assert_eq!(set.certs.len(), 1);
        assert!(set.certs[0].default);
        assert!(set.warnings(now_unix()).is_empty());

        let err = load(&listener(&cert, &other_key), &p).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert!(
            err.to_string().starts_with("listener \"web\": tls.key: "),
            "{err}"
        );

        let err = load(&listener(&cert, &garbage), &p).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        let err = load(&listener(&garbage, &key), &p).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("tls.cert"), "{err}");
        let err = load(&listener(&cert, &dir.join("missing")), &p).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn days_left_and_warning() {
        let now = 1_000_000_000;
        let mut c = LoadedCert {
            names: vec![],
            default: true,
            subject: "CN=x".into(),
            not_after_unix: now + 10 * 86_400 + 5,
            field: "tls.cert".into(),
            path: "x.crt".into(),
            key: {
                let ck = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
                let k = crate::listener::tls::provider()
                    .key_provider
                    .load_private_key(PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into()))
                    .unwrap();
                Arc::new(CertifiedKey::new(vec![ck.cert.der().clone()], k))
            },
        };
        assert_eq!(c.days_left(now), 10);
        let set = CertSet {
            listener: "web".into(),
            certs: vec![c.clone()],
        };
        let w = set.warnings(now);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("expires in 10 days"), "{w:?}");
        c.not_after_unix = now + 40 * 86_400;
        let set = CertSet {
            listener: "web".into(),
            certs: vec![c],
        };
        assert!(set.warnings(now).is_empty());
    }
}

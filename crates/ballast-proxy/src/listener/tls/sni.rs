//! Chooses a listener's certificate from the name the client sent (SNI): an exact name first,
//! then a one-label wildcard (`*.b.example` serves `x.b.example`, not `b.example` nor
//! `y.x.b.example`, as in RFC 6125), else the default.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::load::CertSet;

#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    /// `None` when the set is empty (validation never lets that happen).
    pub fn new(set: &CertSet) -> Option<Self> {
        let default = set
            .certs
            .iter()
            .find(|c| c.default)
            .or(set.certs.first())?
            .key
            .clone();
        let (mut exact, mut wildcard) = (HashMap::new(), HashMap::new());
        for c in &set.certs {
            for n in &c.names {
                match n.strip_prefix("*.") {
                    Some(suffix) => wildcard.insert(suffix.to_string(), c.key.clone()),
                    None => exact.insert(n.clone(), c.key.clone()),
                };
            }
        }
        Some(Self {
            exact,
            wildcard,
            default,
        })
    }

    /// The certificate for `server_name` (`None`: the client sent no name).
    pub fn pick(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::tls::{provider, LoadedCert};

    fn cert(names: &[&str], default: bool) -> LoadedCert {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = provider()
            .key_provider
            .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
                ck.key_pair.serialize_der().into(),
            ))
            .unwrap();
        LoadedCert {
            names: names.iter().map(|s| s.to_string()).collect(),
            default,
            subject: String::new(),
            not_after_unix: 0,
            field: String::new(),
            path: Default::default(),
            key: Arc::new(CertifiedKey::new(vec![ck.cert.der().clone()], key)),
        }
    }

    #[test]
    fn exact_then_one_label_wildcard_then_default() {
        let set = CertSet {
            listener: "web".into(),
            certs: vec![
                cert(&["a.example"], false),
                cert(&["*.b.example", "b.example"], false),
                cert(&[], true),
            ],
        };
        let r = SniResolver::new(&set).unwrap();
        let is = |name: Option<&str>, i: usize| Arc::ptr_eq(&r.pick(name), &set.certs[i].key);
        assert!(is(Some("a.example"), 0));
        assert!(is(Some("A.EXAMPLE."), 0));
        assert!(is(Some("x.b.example"), 1));
        assert!(is(Some("b.example"), 1));
        assert!(is(Some("y.x.b.example"), 2));
        assert!(is(Some("other.example"), 2));
        assert!(is(None, 2));
    }
}

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

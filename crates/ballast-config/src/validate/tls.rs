//! A listener's `tls` table: the short form `{ cert, key }` or the SNI form
//! `{ certs = [{ cert, key, names }, ...] }`, turned into one list of [`CertSpec`]s with the
//! default chosen here, so the proxy never has to guess. SNI names are checked (shape,
//! duplicates) now, and relative paths made to start at the config file's directory; the
//! files themselves are read by the proxy's TLS loader, which
//! `ballast check` also runs.

use std::collections::HashMap;

use super::Checker;
use crate::model::{CertSpec, Tls};
use crate::raw;

pub(super) fn tls(c: &mut Checker, p: &dyn Fn(&str) -> String, t: raw::Tls) -> Tls {
    let short = t.cert.is_some() || t.key.is_some();
    let certs = match (short, t.certs) {
        (true, Some(_)) => {
            c.fail(
                p("tls.certs"),
                "write either `cert` and `key` (one certificate) or `certs = [...]` (several, chosen by SNI), not both",
            );
            Vec::new()
        }
        (true, None) => {
            let cert = t.cert.unwrap_or_default();
            let key = t.key.unwrap_or_default();
            let spec = CertSpec {
                cert: c.base.join(&cert),
                key: c.base.join(&key),
                names: Vec::new(),
                index: None,
            };
            non_empty(c, p, &spec, &cert, &key);
            vec![spec]
        }
        (false, None) => {
            c.fail(
                p("tls"),
                "write `{ cert = \"...\", key = \"...\" }` or `{ certs = [{ cert = \"...\", key = \"...\", names = [\"...\"] }] }`",
            );
            Vec::new()
        }
        (false, Some(list)) => {
            if list.is_empty() {
                c.fail(
                    p("tls.certs"),
                    "needs at least one certificate, e.g. [{ cert = \"a.crt\", key = \"a.key\" }]",
                );
            }
            list.into_iter()
                .enumerate()
                .map(|(i, e)| {
                    let spec = CertSpec {
                        cert: c.base.join(&e.cert),
                        key: c.base.join(&e.key),
                        names: names(c, p, i, e.names),
                        index: Some(i),
                    };
                    non_empty(c, p, &spec, &e.cert, &e.key);
                    spec
                })
                .collect()
        }
    };
    distinct(c, p, &certs);
    let default = certs.iter().position(|s| s.names.is_empty()).unwrap_or(0);
    Tls { certs, default }
}

fn non_empty(c: &mut Checker, p: &dyn Fn(&str) -> String, spec: &CertSpec, cert: &str, key: &str) {
    for (what, value) in [("cert", cert), ("key", key)] {
        if value.is_empty() {
            c.fail(
                p(&spec.field(what)),
                "required, and must not be empty; write the path of a PEM file",
            );
        }
    }
}

/// The entry's SNI names, lower-cased; a malformed one is reported and left out.
fn names(c: &mut Checker, p: &dyn Fn(&str) -> String, i: usize, raw: Vec<String>) -> Vec<String> {
    raw.into_iter()
        .filter_map(|n| {
            let lower = n.to_ascii_lowercase();
            if is_sni_name(&lower) {
                Some(lower)
            } else {
                c.fail(
                    p(&format!("tls.certs[{i}].names")),
                    format!("`{n}` is not a host name; write e.g. \"shop.example.com\" or \"*.example.com\""),
                );
                None
            }
        })
        .collect()
}

/// A DNS host name (letters, digits, `-`, dots between labels), optionally `*.` in front.
pub fn is_sni_name(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// No name served twice, and at most one certificate without names (the default).
fn distinct(c: &mut Checker, p: &dyn Fn(&str) -> String, certs: &[CertSpec]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut nameless: Option<usize> = None;
    for (i, spec) in certs.iter().enumerate() {
        if spec.names.is_empty() {
            if let Some(first) = nameless {
                c.fail(
                    p(&format!("tls.certs[{i}]")),
                    format!("only one certificate may go without `names` (it is the default); tls.certs[{first}] already does"),
                );
            }
            nameless.get_or_insert(i);
        }
        for n in &spec.names {
            if let Some(first) = seen.insert(n, i) {
                c.fail(
                    p(&format!("tls.certs[{i}].names")),
                    format!("`{n}` is already served by tls.certs[{first}]"),
                );
            }
        }
    }
}

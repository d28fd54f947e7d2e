//! What the certificates in force look like from outside: per-listener entries for
//! `/api/v1/status` and the `ballast_tls_cert_expiry_seconds` gauge rows for `/metrics`
//! (the leaf's notAfter as Unix seconds, like blackbox_exporter's
//! `probe_ssl_earliest_cert_expiry`, so an alert is `… - time() < 14 * 86400`).

use std::collections::BTreeMap;
use std::sync::Arc;

use ballast_core::snapshot::CertificateStatus;

use super::load::{now_unix, CertSet};

/// The status entries of `set`, in config order.
pub fn status(set: &CertSet) -> Vec<CertificateStatus> {
    let now = now_unix();
    set.certs
        .iter()
        .map(|c| CertificateStatus {
            names: c.names.clone(),
            default: c.default,
            subject: c.subject.clone(),
            not_after: c.not_after_text(),
            not_after_unix: c.not_after_unix,
            days_left: c.days_left(now),
        })
        .collect()
}

/// Gauge rows: one per (listener, SNI name), plus `name="default"` for each listener's
/// default certificate.
pub fn expiry_rows(
    certs: &BTreeMap<String, Arc<CertSet>>,
) -> Vec<(Vec<(&'static str, String)>, i64)> {
    let mut rows = Vec::new();
    for (listener, set) in certs {
        for c in &set.certs {
            let names = c
                .names
                .iter()
                .map(String::as_str)
                .chain(c.default.then_some("default"));
            for name in names {
                rows.push((
                    vec![("listener", listener.clone()), ("name", name.to_string())],
                    c.not_after_unix,
                ));
            }
        }
    }
    rows
}

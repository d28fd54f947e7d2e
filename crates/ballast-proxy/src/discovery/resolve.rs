//! Asking the nameserver: one resolver for the whole gateway (the `[runtime] resolver`, or the
//! system's `/etc/resolv.conf`), with its answer cache turned off because `discovery` schedules
//! every lookup itself from the answer's TTL; a cached answer would hide a change until the
//! cache expired, whatever `dns_interval` says.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ballast_config::validate::servers::DNS_INTERVAL_MIN;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use super::DnsError;

/// How long one query waits for the nameserver before it is tried again.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a whole lookup may take, retries included: a dead nameserver is reported (and
/// the last good set kept) this long after the answer was due.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolver that asks `nameserver` (UDP, and TCP for truncated answers), or the system's.
pub(super) fn build(nameserver: Option<SocketAddr>) -> Result<TokioResolver, DnsError> {
    let mut builder = match nameserver {
        Some(ns) => {
            let group = NameServerConfigGroup::from_ips_clear(&[ns.ip()], ns.port(), true);
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), group),
                TokioConnectionProvider::default(),
            )
            .with_options(ResolverOpts::default())
        }
        None => TokioResolver::builder_tokio().map_err(|e| DnsError::System(e.to_string()))?,
    };
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = 1;
    Ok(builder.build())
}

/// The addresses `host` resolves to, with `port`, sorted; and how long the answer is valid.
/// An answer without addresses is an error: a pool is never emptied by DNS.
pub(super) async fn lookup(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
) -> Result<(Vec<SocketAddr>, Duration), String> {
    let answer = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup_ip(host))
        .await
        .map_err(|_| format!("no answer within {LOOKUP_TIMEOUT:?}"))?
        .map_err(|e| {
            if e.is_nx_domain() {
                "no such name (NXDOMAIN)".to_string()
            } else if e.is_no_records_found() {
                "the name has no A or AAAA record".to_string()
            } else {
                e.to_string()
            }
        })?;
    let ttl = answer
        .valid_until()
        .saturating_duration_since(Instant::now());
    let mut addrs: Vec<SocketAddr> = answer.iter().map(|ip| SocketAddr::new(ip, port)).collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err("the answer holds no address".into());
    }
    Ok((addrs, ttl))
}

/// When to ask again: at the answer's TTL, but at least every `interval` and at most once per
/// [`DNS_INTERVAL_MIN`].
pub(super) fn next_delay(ttl: Duration, interval: Duration) -> Duration {
    ttl.min(interval).max(DNS_INTERVAL_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_capped_by_the_interval_and_floored() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(s(300), s(30)), s(30));
        assert_eq!(next_delay(s(5), s(30)), s(5));
        assert_eq!(next_delay(Duration::ZERO, s(30)), s(1));
        assert_eq!(next_delay(Duration::from_millis(200), s(30)), s(1));
    }
}

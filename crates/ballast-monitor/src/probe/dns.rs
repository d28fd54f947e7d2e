//! The `dns` probe: does a name resolve, and to the addresses it should?
//!
//! It exists because a dependency whose name stops resolving (or resolves somewhere else
//! after a bad change) is down for every client even though its servers are fine. Each run
//! builds a fresh resolver, so nothing is answered from a cache of an earlier run.
//!
//! ```toml
//! [[monitor]]
//! name = "db-dns"
//! kind = "dns"
//! host = "db.internal"               # the name looked up (A and AAAA)
//! expect = ["10.0.0.5", "10.0.0.6"]   # optional: exactly this set, in any order
//! resolver = "10.0.0.2:53"            # optional: ask this server; default: the system's config
//! ```
//!
//! The looked-up name is `host`, not `name`: `name` is the monitor's own name, which the config
//! crate takes before the kind's keys reach [`DnsSpec`].
//!
//! Readings: `latency_ms` and `addresses` (how many were returned). An explicit `resolver`
//! is asked over UDP and TCP and the hosts file is not consulted; the system configuration
//! consults the hosts file as the system would.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use ballast_core::Labels;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveErrorKind, Resolver, TokioResolver};
use serde::Deserialize;

use super::{BoxFuture, Outcome, Probe, SpecError};

/// `kind = "dns"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    pub host: String,
    #[serde(default)]
    pub expect: Option<Vec<String>>,
    #[serde(default)]
    pub resolver: Option<String>,
}

impl DnsSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        self.parsed().map(|_| ())
    }

    fn parsed(&self) -> Result<(Option<BTreeSet<IpAddr>>, Option<SocketAddr>), SpecError> {
        let host = self.host.trim();
        if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
            return Err(SpecError::new(
                "host",
                format!("{:?} is not a DNS name", self.host),
            ));
        }
        let expect = match &self.expect {
            None => None,
            Some(list) => {
                let mut set = BTreeSet::new();
                for a in list {
                    let ip: IpAddr = a.trim().parse().map_err(|_| {
                        SpecError::new("expect", format!("{a:?} is not an IP address"))
                    })?;
                    set.insert(ip);
                }
                Some(set)
            }
        };
        let resolver = match &self.resolver {
            None => None,
            Some(r) => Some(r.trim().parse::<SocketAddr>().map_err(|_| {
                SpecError::new(
                    "resolver",
                    format!("{r:?} is not ip:port (e.g. \"10.0.0.2:53\" or \"[::1]:53\")"),
                )
            })?),
        };
        Ok((expect, resolver))
    }
}

/// Runs a [`DnsSpec`].
#[derive(Debug)]
pub struct DnsProbe {
    name: String,
    expect: Option<BTreeSet<IpAddr>>,
    resolver: Option<SocketAddr>,
}

impl DnsProbe {
    pub fn new(spec: DnsSpec) -> Result<DnsProbe, SpecError> {
        let (expect, resolver) = spec.parsed()?;
        Ok(DnsProbe {
            name: spec.host.trim().to_string(),
            expect,
            resolver,
        })
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match self.resolver {
            Some(addr) => {
                let servers = vec![
                    NameServerConfig::new(addr, Protocol::Udp),
                    NameServerConfig::new(addr, Protocol::Tcp),
                ];
                let config = ResolverConfig::from_parts(None, vec![], servers);
                let mut b = Resolver::builder_with_config(config, provider);
                b.options_mut().use_hosts_file = ResolveHosts::Never;
                b
            }
            None => Resolver::builder(provider)
                .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        // One answer per run is what is measured; retries hide a flaky server.
        opts.attempts = 1;
        Ok(builder.build())
    }

    async fn run_once(&self) -> Outcome {
        let resolver = match self.resolver() {
            Ok(r) => r,
            Err(e) => return Outcome::failed(e),
        };
        let start = Instant::now();
        let result = resolver.lookup_ip(self.name.as_str()).await;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let found: BTreeSet<IpAddr> = match result {
            Ok(lookup) => lookup.iter().collect(),
            Err(e) if matches!(e.kind(), ResolveErrorKind::Proto(p) if p.is_no_records_found()) => {
                BTreeSet::new()
            }
            Err(e) => {
                let mut out = Outcome::failed(format!("resolving {}: {e}", self.name));
                out.push("latency_ms", Labels::new(), ms);
                return out;
            }
        };
        let mut out = Outcome::default();
        out.push("latency_ms", Labels::new(), ms);
        out.push("addresses", Labels::new(), found.len() as f64);
        let list = |s: &BTreeSet<IpAddr>| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        out.detail = serde_json::json!({ "addresses": list(&found) });
        if found.is_empty() {
            out.error = Some(format!("{} has no addresses", self.name));
        } else if let Some(expect) = &self.expect {
            if *expect != found {
                out.error = Some(format!(
                    "{} resolves to [{}], expected [{}]",
                    self.name,
                    list(&found).join(", "),
                    list(expect).join(", ")
                ));
            }
        }
        out
    }
}

impl Probe for DnsProbe {
    fn kind(&self) -> &'static str {
        "dns"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_once())
    }
}

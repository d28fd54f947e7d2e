//! The `tcp` probe: can a dependency's port be reached, and how fast does it accept?
//!
//! It exists for dependencies that speak no HTTP (a database, a queue, a cache): a connect
//! that is refused, unreachable or never answered is the first sign they are gone.
//!
//! ```toml
//! [[monitor]]
//! name = "pg"
//! kind = "tcp"
//! target = "10.0.0.5:5432"            # host:port; a name is resolved by the system
//! ```
//!
//! Reading: `latency_ms`, the time to connect (including name resolution).

use std::time::Instant;

use ballast_core::Labels;
use serde::Deserialize;

use super::client::connect;
use super::{BoxFuture, Outcome, Probe, SpecError};

/// `kind = "tcp"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    pub target: String,
}

impl TcpSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        split_host_port("target", &self.target).map(|_| ())
    }
}

/// Splits `host:port` or `[v6]:port`; the field names where it came from.
pub(crate) fn split_host_port(field: &str, text: &str) -> Result<(String, u16), SpecError> {
    let bad = || {
        SpecError::new(
            field,
            format!("{text:?} is not host:port (e.g. \"db.internal:5432\" or \"[::1]:443\")"),
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Runs a [`TcpSpec`].
#[derive(Debug)]
pub struct TcpProbe {
    host: String,
    port: u16,
}

impl TcpProbe {
    pub fn new(spec: TcpSpec) -> Result<TcpProbe, SpecError> {
        let (host, port) = split_host_port("target", &spec.target)?;
        Ok(TcpProbe { host, port })
    }

    async fn run_once(&self) -> Outcome {
        let start = Instant::now();
        match connect(&self.host, self.port).await {
            Ok(stream) => {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                drop(stream);
                let mut out = Outcome::default();
                out.push("latency_ms", Labels::new(), ms);
                out
            }
            Err(e) => Outcome::failed(e.to_string()),
        }
    }
}

impl Probe for TcpProbe {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        let ok = |t: &str| split_host_port("target", t).unwrap();
        assert_eq!(ok("db:5432"), ("db".to_string(), 5432));
        assert_eq!(ok("[::1]:443"), ("::1".to_string(), 443));
        for bad in ["db", "db:", ":80", "db:99999", "::1:80", "[::1:80", "db:0"] {
            let e = split_host_port("target", bad).unwrap_err();
            assert_eq!(e.field, "target", "{bad}");
        }
    }
}

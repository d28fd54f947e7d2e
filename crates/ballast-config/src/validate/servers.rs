//! An upstream's `servers` and the `[runtime]` settings that resolve them.
//!
//! A server is written `IP:port` (the fast path: one server, never resolved) or `name:port`,
//! which stands for every address the name resolves to. Names are only checked for shape here;
//! resolving them is I/O, done by the gateway at start and on a schedule, so `validate` stays
//! pure. The resolver and the re-resolution interval live in `[runtime]` because they are
//! shared by every upstream.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{defaults, Checker};
use crate::model::{Runtime, Server, ServerAddr};
use crate::raw;

/// Default longest time between two resolutions of a server name.
pub const DNS_INTERVAL: Duration = Duration::from_secs(30);
/// Shortest `dns_interval` accepted (and the floor of a short TTL).
pub const DNS_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// Port of a `resolver` written without one.
pub const DNS_PORT: u16 = 53;

/// The `[runtime]` table with defaults filled in.
pub(super) fn runtime(c: &mut Checker, r: Option<raw::Runtime>) -> Runtime {
    let Some(r) = r else {
        return Runtime {
            threads: 0,
            grace: defaults::GRACE,
            resolver: None,
            dns_interval: DNS_INTERVAL,
        };
    };
    let resolver = r.resolver.as_deref().and_then(|text| {
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, DNS_PORT));
        }
        c.fail(
            "runtime.resolver",
            format!("`{text}` is not a nameserver address; write an IP and port, e.g. \"127.0.0.1:5353\" (or leave it out to use /etc/resolv.conf)"),
        );
        None
    });
    let dns_interval = match r.dns_interval.map(|d| d.get()) {
        None => DNS_INTERVAL,
        Some(d) if d < DNS_INTERVAL_MIN => {
            c.fail(
                "runtime.dns_interval",
                format!(
                    "must be at least 1s, got {d:?}; names would be re-resolved in a busy loop"
                ),
            );
            DNS_INTERVAL
        }
        Some(d) => d,
    };
    Runtime {
        threads: c.count("runtime.threads".into(), r.threads, 0, 0, 1024) as usize,
        grace: r.grace.map_or(defaults::GRACE, |d| d.get()),
        resolver,
        dns_interval,
    }
}

/// The servers of upstream `i`; a server with an unreadable address is left out (and reported).
pub(super) fn servers(c: &mut Checker, i: usize, raw: Vec<raw::Server>) -> Vec<Server> {
    let p = |f: &str| format!("upstream[{i}].{f}");
    if raw.is_empty() {
        c.fail(
            p("servers"),
            "an upstream needs at least one server, e.g. servers = [{ addr = \"127.0.0.1:8000\" }]",
        );
    }
    let mut seen = HashSet::new();
    let servers = raw
        .into_iter()
        .enumerate()
        .filter_map(|(j, s)| {
            let sp = |f: &str| format!("upstream[{i}].servers[{j}].{f}");
            let addr = server_addr(c, sp("addr"), &s.addr)?;
            if !seen.insert(addr.clone()) {
                c.fail(
                    sp("addr"),
                    format!("{addr} is listed twice in this upstream"),
                );
            }
            let weight = match s.weight {
                None => 1,
                Some(w) if w < 1 => {
                    c.fail(
                        sp("weight"),
                        format!(
                            "must be at least 1, got {w}; to take a server out, drain it instead"
                        ),
                    );
                    1
                }
                Some(w) if w > 1000 => {
                    c.fail(sp("weight"), format!("must be at most 1000, got {w}"));
                    1
                }
                Some(w) => w as u32,
            };
            Some(Server {
                addr,
                weight,
                backup: s.backup.unwrap_or(false),
            })
        })
        .collect::<Vec<_>>();
    if !servers.is_empty() && servers.iter().all(|s| s.backup) {
        c.fail(
            p("servers"),
            "every server is a backup; at least one must be a primary",
        );
    }
    servers
}

/// `IP:port`, `localhost:port` or `name:port`.
fn server_addr(c: &mut Checker, path: String, text: &str) -> Option<ServerAddr> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Some(ServerAddr::Ip(a));
    }
    let shape = "write an IP and port (\"10.0.0.1:8000\", \"[::1]:8000\") or a DNS name and port (\"app.internal:8000\")";
    let Some((host, port)) = text.rsplit_once(':') else {
        if host_name(text).is_some() {
            c.fail(
                path,
                format!("`{text}` has no port; write \"{text}:PORT\", e.g. \"{text}:8080\""),
            );
        } else {
            c.fail(path, format!("`{text}` is not an address; {shape}"));
        }
        return None;
    };
    let Some(host) = host_name(host) else {
        c.fail(path, format!("`{text}` is not an address; {shape}"));
        return None;
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            c.fail(
                path,
                format!(
                    "`{port}` is not a port; write a number from 1 to 65535, e.g. \"{host}:8080\""
                ),
            );
            return None;
        }
    };
    if host == "localhost" {
        // Kept off DNS: the fast path, as before names were supported.
        return Some(ServerAddr::Ip(SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port,
        )));
    }
    Some(ServerAddr::Name { host, port })
}

/// The name lower-cased and without a trailing dot, when it is a plausible DNS name: labels of
/// letters, digits, `-` and `_`, 1–63 bytes each, 253 in all, and not all digits (so a mistyped
/// IP such as `10.0.0:80` is not taken for a name).
fn host_name(text: &str) -> Option<String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names() {
        assert_eq!(host_name("App.Internal."), Some("app.internal".into()));
        assert_eq!(host_name("my_app"), Some("my_app".into()));
        assert_eq!(host_name("10.0.0"), None);
        assert_eq!(host_name("-a.b"), None);
        assert_eq!(host_name("a..b"), None);
        assert_eq!(host_name("a b"), None);
        assert_eq!(host_name(&"a".repeat(64)), None);
        assert_eq!(host_name(""), None);
    }
}

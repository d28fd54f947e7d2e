//! Turns the raw file into a [`Config`]: fills defaults, converts units, resolves names and
//! refuses impossible values. All problems are collected, not just the first, so one run of
//! `ballast check` shows everything to fix.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ConfigError, Problem};
use crate::locate::locate;
use crate::model::*;
use crate::raw;
pub use policies::BUILTIN_SORRY_PAGE;
use policies::{cache, concurrency_limit, flood, retry_policy, sorry_page};
use upstream::upstream;

mod admin_tokens;
mod incident;
mod monitor;
mod notify;
mod policies;
mod remedy;
mod review;
pub mod servers;
mod store;
mod tls;
mod upstream;
pub mod waiting_room;

/// Defaults, in one place so `docs/configuration.md` can quote them.
pub mod defaults {
    use std::time::Duration;

    pub const ADMIN_LISTEN: &str = "127.0.0.1:9900";
    pub const GRACE: Duration = Duration::from_secs(30);
    pub const MAX_HEADER_SIZE: usize = 64 * 1024;
    pub const MAX_HEADERS: usize = 100;
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
    pub const ATTEMPTS: u32 = 3;
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
    pub const RISE: u32 = 2;
    pub const FALL: u32 = 3;
    pub const PASSIVE_FAILURES: u32 = 5;
    pub const EJECTION: Duration = Duration::from_secs(10);
    pub const MAX_EJECTION: Duration = Duration::from_secs(300);
    pub const MAX_EJECTED: f64 = 0.5;
    pub const POOL_MAX_IDLE: usize = 256;
    pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const CACHE_MAX_SIZE: u64 = 64 << 20;
    pub const CACHE_MAX_OBJECT: u64 = 1 << 20;
    pub const CACHE_MAX_STALE: Duration = Duration::from_secs(600);
    /// The store when `[store]` is absent: a SQLite file beside the config file.
    pub const STORE_URL: &str = "sqlite://ballast.db";
    /// Events held in memory while the store cannot be written (about 300 bytes each).
    pub const STORE_SPOOL: usize = 100_000;
    pub const RETAIN_EVENTS: Duration = Duration::from_secs(90 * 86_400);
    pub const RETAIN_CHANGES: Duration = Duration::from_secs(400 * 86_400);
    pub const RETAIN_CONFIG_VERSIONS: Duration = Duration::from_secs(400 * 86_400);
    /// Per-minute metric rollups (and resolved alerts, ended silences): 35 days covers a
    /// month of baseline for the threshold review, with a few days of slack.
    pub const RETAIN_METRICS: Duration = Duration::from_secs(35 * 86_400);
}

struct Checker<'a> {
    src: &'a str,
    /// Directory of the config file: relative paths in it (sorry pages) start here.
    base: PathBuf,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let (line, column) = match locate(self.src, &path) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        self.problems.push(Problem {
            path,
            line,
            column,
            message: message.into(),
        });
    }

    /// A count that must lie in `min..=max`.
    fn count(&mut self, path: String, v: Option<i64>, default: u32, min: i64, max: i64) -> u32 {
        match v {
            None => default,
            Some(n) if n < min || n > max => {
                self.fail(path, format!("must be between {min} and {max}, got {n}"));
                default
            }
            Some(n) => n as u32,
        }
    }

    fn positive(
        &mut self,
        path: String,
        d: Option<ballast_core::Duration>,
        default: Duration,
    ) -> Duration {
        match d {
            None => default,
            Some(d) if d.is_zero() => {
                self.fail(path, "must be longer than zero, e.g. \"1s\"");
                default
            }
            Some(d) => d.get(),
        }
    }

    fn socket_addr(&mut self, path: String, text: &str) -> Option<SocketAddr> {
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Some(port) = text.strip_prefix("localhost:") {
            if let Ok(p) = port.parse::<u16>() {
                return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
            }
        }
        self.fail(
            path,
            format!("`{text}` is not an address; write an IP and port, e.g. \"10.0.0.1:8000\" or \"[::1]:8000\""),
        );
        None
    }
}

/// Validates `raw` (read from `src`, named `file`).
pub fn validate(raw: raw::File, src: &str, file: &str) -> Result<Config, ConfigError> {
    let mut c = Checker {
        src,
        base: std::path::Path::new(file)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        problems: Vec::new(),
    };

    let admin = admin(&mut c, raw.admin);
    let access_log = match raw.log.and_then(|l| l.access).as_deref() {
        None | Some("stdout") => AccessLog::Stdout,
        Some("off") => AccessLog::Off,
        Some("") => {
            c.fail("log.access", "write \"stdout\", \"off\" or a file path");
            AccessLog::Off
        }
        Some(path) => AccessLog::File(PathBuf::from(path)),
    };
    let runtime = servers::runtime(&mut c, raw.runtime);
    let store = store::store(&mut c, raw.store);
    let (locale, dashboard_url, template) = raw
        .alerting
        .as_ref()
        .map(|a| (a.locale, a.dashboard_url.clone(), a.template.clone()))
        .unwrap_or_default();
    let monitoring = monitor::plan(&mut c, raw.alerting, raw.monitor, raw.rule, raw.maintenance);
    let receiver_names: std::collections::BTreeSet<String> = raw
        .receiver
        .iter()
        .map(|r| r.name.trim().to_string())
        .collect();
    let remedy = remedy::plan(&mut c, raw.remedy, raw.remediation, &receiver_names);
    let incident = raw
        .incident
        .map(|spec| incident::check(&mut c, spec, &receiver_names));
    let review = review::plan(&mut c, raw.review, &receiver_names);
    let notify = notify::plan(
        &mut c,
        notify::Input {
            receivers: raw.receiver,
            routes: raw.notify,
            locale: locale.unwrap_or_default(),
            dashboard_url,
            windows: monitoring.maintenance.clone(),
            template: template.unwrap_or_default(),
        },
    );

    let upstreams: Vec<Upstream> = raw
        .upstream
        .into_iter()
        .enumerate()
        .map(|(i, u)| upstream(&mut c, i, u))
        .collect();
    let upstream_names = unique_names(
        &mut c,
        "upstream",
        upstreams.iter().map(|u| u.name.as_str()),
    );

    // Every listener is kept, even one with a bad address, so that indices in later messages
    // match the file and routes naming it do not get a second, misleading error.
    let (listeners, addr_ok): (Vec<Listener>, Vec<bool>) = raw
        .listener
        .into_iter()
        .enumerate()
        .map(|(i, l)| listener(&mut c, i, l, &upstream_names))
        .unzip();
    unique_names(
        &mut c,
        "listener",
        listeners.iter().map(|l| l.name.as_str()),
    );
    let mut bound: Vec<(String, SocketAddr)> = vec![("admin.listen".into(), admin.listen)];
    for (i, l) in listeners.iter().enumerate() {
        if !addr_ok[i] {
            continue;
        }
        if let Some((other, addr)) = bound.iter().find(|(_, a)| same_socket(*a, l.listen)) {
            c.fail(
                format!("listener[{i}].listen"),
                format!(
                    "{} collides with {other} ({addr}); give each listener its own port",
                    l.listen
                ),
            );
        }
        bound.push((format!("listener[{i}]"), l.listen));
    }

    let (routes, catch_all): (Vec<Route>, Vec<bool>) = raw
        .route
        .into_iter()
        .enumerate()
        .map(|(i, r)| route(&mut c, i, r, &listeners, &upstream_names))
        .unzip();
    let route_names = unique_names(&mut c, "route", routes.iter().map(|r| r.name.as_str()));
    remedy::names(&mut c, &remedy.rules, &upstream_names, &route_names);
    waiting_room::distinct_cookies(&mut c, &routes, &upstreams);
    for (i, r) in routes.iter().enumerate() {
        let shadow = (0..i).find(|&j| {
            catch_all[j] && (routes[j].listener.is_none() || routes[j].listener == r.listener)
        });
        if let Some(j) = shadow {
            c.fail(
                format!("route[{i}]"),
                format!("can never match: route[{j}] above it has no conditions and takes every request first; move catch-all routes to the end"),
            );
        }
    }

    // An empty or truncated file must not pass a reload and silently close every port.
    if listeners.is_empty() {
        c.fail(
            "listener",
            "no [[listener]] is defined, so nothing would be served; add one, e.g. [[listener]] name = \"web\" listen = \"0.0.0.0:8080\"",
        );
    }
    for (i, l) in listeners.iter().enumerate() {
        if l.protocol != Protocol::Tcp
            && !routes
                .iter()
                .any(|r| r.listener.as_deref().is_none_or(|n| n == l.name))
        {
            c.fail(
                format!("listener[{i}].name"),
                format!("no [[route]] serves listener `{}`; add one with `listener = \"{}\"` or without `listener`", l.name, l.name),
            );
        }
    }

    // Report in file order, which is how an operator walks through the fixes; problems that
    // could not be located come last.
    c.problems
        .sort_by_key(|p| (p.line.is_none(), p.line, p.column));
    if c.problems.is_empty() {
        Ok(Config {
            admin,
            access_log,
            runtime,
            store,
            listeners,
            routes,
            upstreams,
            monitoring,
            notify,
            remedy,
            incident,
            review,
        })
    } else {
        Err(ConfigError::Invalid {
            file: file.to_string(),
            problems: c.problems,
        })
    }
}

/// Two sockets that could not both listen: same port and same or wildcard address.
/// Port 0 (any free port, used by tests) never collides.
fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// A cookie name of letters, digits, '_' or '-'.
fn cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn unique_names<'a>(
    c: &mut Checker,
    table: &str,
    names: impl Iterator<Item = &'a str>,
) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if n.is_empty() {
            c.fail(format!("{table}[{i}].name"), "must not be empty");
        } else if !seen.insert(n.to_string()) {
            c.fail(
                format!("{table}[{i}].name"),
                format!("`{n}` is used by an earlier [[{table}]]; names must be unique"),
            );
        }
    }
    seen
}

fn admin(c: &mut Checker, raw: Option<raw::Admin>) -> Admin {
    let (listen_text, token, raw_tokens) = match raw {
        None => (None, None, Vec::new()),
        Some(a) => (a.listen, a.token, a.tokens),
    };
    let tokens = admin_tokens::check(c, raw_tokens, token.as_deref());
    let listen = listen_text
        .as_deref()
        .and_then(|t| c.socket_addr("admin.listen".into(), t))
        .unwrap_or_else(|| defaults::ADMIN_LISTEN.parse().expect("valid default"));
    if token.as_deref() == Some("") {
        c.fail("admin.token", "must not be empty");
    }
    if !listen.ip().is_loopback() && token.is_none() && tokens.is_empty() {
        c.fail(
            "admin.listen",
            format!("{listen} is not a loopback address: set admin.token (or admin.tokens) to a secret bearer token, or listen on 127.0.0.1"),
        );
    }
    Admin {
        listen,
        token,
        tokens,
    }
}

/// The listener, and whether its address was valid (if not, a placeholder stands in and a
/// problem has been recorded).
fn listener(
    c: &mut Checker,
    i: usize,
    l: raw::Listener,
    upstreams: &HashSet<String>,
) -> (Listener, bool) {
    let p = |f: &str| format!("listener[{i}].{f}");
    let protocol = match l.protocol.as_deref().unwrap_or("http") {
        "http" => Some(Protocol::Http),
        "https" => Some(Protocol::Https),
        "tcp" => Some(Protocol::Tcp),
        other => {
            c.fail(
                p("protocol"),
                format!("`{other}` is not a protocol; write \"http\", \"https\" or \"tcp\""),
            );
            None
        }
    };
    let listen = c.socket_addr(p("listen"), &l.listen);
    let tls = l.tls.map(|t| tls::tls(c, &p, t));
    // With an unknown protocol the checks below would only add guesses to the real problem.
    if let Some(protocol) = protocol {
        match (protocol, &tls) {
            (Protocol::Https, None) => c.fail(
                p("protocol"),
                "an https listener needs `tls = { cert = \"...\", key = \"...\" }`",
            ),
            (Protocol::Http | Protocol::Tcp, Some(_)) => {
                c.fail(p("tls"), "tls is only for protocol = \"https\"")
            }
            _ => {}
        }
        match (protocol, &l.upstream) {
            (Protocol::Tcp, None) => {
                c.fail(p("protocol"), "a tcp listener needs `upstream = \"name\"`")
            }
            (Protocol::Tcp, Some(u)) if !upstreams.contains(u) => {
                c.fail(p("upstream"), format!("no [[upstream]] is named `{u}`"))
            }
            (Protocol::Http | Protocol::Https, Some(_)) => c.fail(
                p("upstream"),
                "only tcp listeners name an upstream; http listeners use [[route]]",
            ),
            _ => {}
        }
    }
    let max_header_size = match l.max_header_size {
        None => defaults::MAX_HEADER_SIZE,
        Some(s) if s.get() < 1024 || s.get() > 1 << 20 => {
            c.fail(
                p("max_header_size"),
                format!("must be between \"1KiB\" and \"1MiB\", got \"{s}\""),
            );
            defaults::MAX_HEADER_SIZE
        }
        Some(s) => s.get() as usize,
    };
    let max_headers = c.count(
        p("max_headers"),
        l.max_headers,
        defaults::MAX_HEADERS as u32,
        1,
        1000,
    ) as usize;
    let (header_read, idle) = match l.timeout {
        None => (None, None),
        Some(t) => (t.header_read, t.idle),
    };
    let listener = Listener {
        name: l.name,
        listen: listen.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
        protocol: protocol.unwrap_or(Protocol::Http),
        tls,
        upstream: l.upstream,
        max_header_size,
        max_headers,
        header_read_timeout: c.positive(
            p("timeout.header_read"),
            header_read,
            defaults::HEADER_READ_TIMEOUT,
        ),
        idle_timeout: c.positive(p("timeout.idle"), idle, defaults::IDLE_TIMEOUT),
    };
    (listener, listen.is_some())
}

/// The route, and whether it is a catch-all (no conditions, so it takes every request).
fn route(
    c: &mut Checker,
    i: usize,
    r: raw::Route,
    listeners: &[Listener],
    upstreams: &HashSet<String>,
) -> (Route, bool) {
    let p = |f: &str| format!("route[{i}].{f}");
    if !upstreams.contains(&r.upstream) {
        c.fail(
            p("upstream"),
            format!("no [[upstream]] is named `{}`", r.upstream),
        );
    }
    if let Some(l) = &r.listener {
        match listeners.iter().find(|x| &x.name == l) {
            None => c.fail(p("listener"), format!("no [[listener]] is named `{l}`")),
            Some(x) if x.protocol == Protocol::Tcp => c.fail(
                p("listener"),
                format!("`{l}` is a tcp listener; it names its upstream itself"),
            ),
            _ => {}
        }
    }
    let problems_before = c.problems.len();
    let matcher = match r.matcher {
        None => Match::default(),
        Some(m) => {
            let methods = match m.method {
                None => vec![],
                Some(raw::OneOrMany::One(s)) => vec![s],
                Some(raw::OneOrMany::Many(v)) => v,
            };
            let methods = methods
                .into_iter()
                .enumerate()
                .filter_map(|(j, s)| match method(&s) {
                    Some(m) => Some(m),
                    None => {
                        c.fail(
                            format!("route[{i}].match.method[{j}]"),
                            format!("`{s}` is not an HTTP method"),
                        );
                        None
                    }
                })
                .collect();
            let header =
                m.header
                    .and_then(|h| match http::HeaderName::from_bytes(h.name.as_bytes()) {
                        Ok(name) => Some(HeaderMatch {
                            name,
                            value: h.value,
                        }),
                        Err(_) => {
                            c.fail(
                                p("match.header.name"),
                                format!("`{}` is not a valid header name", h.name),
                            );
                            None
                        }
                    });
            if let Some(pp) = &m.path_prefix {
                if !pp.starts_with('/') {
                    c.fail(
                        p("match.path_prefix"),
                        format!("must start with '/', e.g. \"/{pp}\""),
                    );
                }
            }
            if let Some(h) = &m.host {
                check_host(c, p("match.host"), h);
            }
            Match {
                host: m.host.map(|h| h.to_ascii_lowercase()),
                path_prefix: m.path_prefix,
                methods,
                header,
            }
        }
    };
    // A match whose conditions were refused is not a catch-all: it would only add noise.
    let catch_all = matcher == Match::default() && c.problems.len() == problems_before;
    let (connect, response, total) = match r.timeout {
        None => (None, None, None),
        Some(t) => (t.connect, t.response, t.total),
    };
    let retry = retry_policy(c, &p, r.retry);
    let sorry = r.sorry.map(|s| sorry_page(c, &p, s));
    let flood = r.flood.map(|f| flood(c, &p, f));
    let waiting_room = r.waiting_room.map(|w| waiting_room::waiting_room(c, &p, w));
    let cache = r.cache.map(|k| cache(c, &p, k));
    let response_timeout = c.positive(p("timeout.response"), response, defaults::RESPONSE_TIMEOUT);
    // Without a total deadline every attempt may use its whole response timeout.
    let total_timeout = c.positive(
        p("timeout.total"),
        total,
        response_timeout.saturating_mul(retry.attempts),
    );
    let route = Route {
        name: r.name.unwrap_or_else(|| format!("route-{i}")),
        listener: r.listener,
        matcher,
        upstream: r.upstream,
        connect_timeout: c.positive(p("timeout.connect"), connect, defaults::CONNECT_TIMEOUT),
        response_timeout,
        total_timeout,
        retry,
        sorry,
        flood,
        priority: match r.priority.as_deref() {
            None => Priority::default(),
            Some(name) => Priority::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .unwrap_or_else(|| {
                    c.fail(
                        p("priority"),
                        format!("`{name}` is not a priority: write \"critical\", \"high\", \"normal\" or \"low\""),
                    );
                    Priority::default()
                }),
        },
        waiting_room,
        cache,
        function: r.function.unwrap_or(FunctionScope::Auxiliary),
    };
    (route, catch_all)
}

/// An HTTP method, accepted in any case (`get` is `GET`).
fn method(s: &str) -> Option<http::Method> {
    http::Method::from_bytes(s.to_ascii_uppercase().as_bytes()).ok()
}

/// A host to match: a name or IP, without port, scheme or path.
fn check_host(c: &mut Checker, path: String, h: &str) {
    let ipv6 = |t: &str| t.parse::<std::net::Ipv6Addr>().is_ok();
    let bracketed = h
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .is_some_and(ipv6);
    if h.is_empty() || h.contains('/') || h.chars().any(char::is_whitespace) {
        c.fail(
            path,
            format!("`{h}` is not a host name; write e.g. \"shop.example.com\""),
        );
    } else if h.contains(':') && !ipv6(h) && !bracketed {
        let name = h.rsplit_once(':').map_or(h, |(n, _)| n);
        c.fail(
            path,
            format!("write the host without a port: \"{name}\" (the port is the listener's)"),
        );
    }
}

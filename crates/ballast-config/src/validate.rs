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

pub mod servers;
mod tls;
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
    unique_names(&mut c, "route", routes.iter().map(|r| r.name.as_str()));
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
            listeners,
            routes,
            upstreams,
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
    let (listen_text, token) = match raw {
        None => (None, None),
        Some(a) => (a.listen, a.token),
    };
    let listen = listen_text
        .as_deref()
        .and_then(|t| c.socket_addr("admin.listen".into(), t))
        .unwrap_or_else(|| defaults::ADMIN_LISTEN.parse().expect("valid default"));
    if token.as_deref() == Some("") {
        c.fail("admin.token", "must not be empty");
    }
    if !listen.ip().is_loopback() && token.is_none() {
        c.fail(
            "admin.listen",
            format!("{listen} is not a loopback address: set admin.token to a secret bearer token, or listen on 127.0.0.1"),
        );
    }
    Admin { listen, token }
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
    };
    (route, catch_all)
}

/// A route's `retry` table, defaults filled in.
fn retry_policy(c: &mut Checker, p: &dyn Fn(&str) -> String, r: Option<raw::Retry>) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    let Some(r) = r else {
        return policy;
    };
    policy.attempts = c.count(p("retry.attempts"), r.attempts, defaults::ATTEMPTS, 1, 10);
    if let Some(on) = r.on {
        policy.on_connect_failure = false;
        policy.on_reset = false;
        policy.on_timeout = false;
        policy.on_status.clear();
        for (k, item) in on.iter().enumerate() {
            match item.as_str() {
                "connect-failure" => policy.on_connect_failure = true,
                "reset" => policy.on_reset = true,
                "timeout" => policy.on_timeout = true,
                other => match other.parse::<u16>() {
                    Ok(code) if (500..=599).contains(&code) => policy.on_status.push(code),
                    Ok(code) if (400..=499).contains(&code) => c.fail(
                        p(&format!("retry.on[{k}]")),
                        format!("{code} is a client error: 4xx answers are never retried"),
                    ),
                    _ => c.fail(
                        p(&format!("retry.on[{k}]")),
                        format!("`{other}` is not a retryable outcome: write \"connect-failure\", \"reset\", \"timeout\" or a 5xx status such as \"503\""),
                    ),
                },
            }
        }
    }
    if let Some(b) = r.budget {
        policy.budget = b.get();
    }
    policy.min_per_second = c.count(
        p("retry.min_retries_per_second"),
        r.min_retries_per_second,
        policy.min_per_second,
        0,
        1_000_000,
    );
    if let Some(text) = r.backoff {
        let parts: Option<(ballast_core::Duration, ballast_core::Duration)> = text
            .split_once("..")
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parts {
            Some((a, b)) if a.get() <= b.get() => {
                policy.backoff_base = a.get();
                policy.backoff_max = b.get();
            }
            Some(_) => c.fail(
                p("retry.backoff"),
                "the first duration is the smallest: write e.g. \"25ms..250ms\"",
            ),
            None => c.fail(
                p("retry.backoff"),
                format!("`{text}` is not a back-off range: write two durations with units, e.g. \"25ms..250ms\""),
            ),
        }
    }
    if let Some(d) = r.retry_after_max {
        policy.retry_after_max = d.get();
    }
    policy
}

/// An upstream's `limit` table, defaults filled in.
fn concurrency_limit(
    c: &mut Checker,
    p: &dyn Fn(&str) -> String,
    l: raw::Limit,
) -> ConcurrencyLimit {
    let algorithm = match l.algorithm.as_deref() {
        None | Some("gradient") => LimitAlgorithm::Gradient,
        Some("fixed") => LimitAlgorithm::Fixed,
        Some(other) => {
            c.fail(
                p("limit.algorithm"),
                format!("`{other}` is not a limit algorithm: write \"gradient\" or \"fixed\""),
            );
            LimitAlgorithm::Gradient
        }
    };
    let min = c.count(p("limit.min"), l.min, 4, 1, 100_000);
    let max = c.count(p("limit.max"), l.max, 1000, 1, 100_000);
    if max < min {
        c.fail(
            p("limit.max"),
            format!("must not be below limit.min ({min})"),
        );
    }
    let initial = c.count(
        p("limit.initial"),
        l.initial,
        min.max(10).min(max),
        1,
        100_000,
    );
    if initial < min || initial > max {
        c.fail(
            p("limit.initial"),
            format!("must lie between limit.min ({min}) and limit.max ({max})"),
        );
    }
    let tolerance = match l.tolerance {
        None => 1.5,
        Some(t) if (1.0..=10.0).contains(&t) => t,
        Some(t) => {
            c.fail(
                p("limit.tolerance"),
                format!("must be a factor between 1.0 and 10.0 (e.g. 1.5: latency may grow by half), got {t}"),
            );
            1.5
        }
    };
    let shares = l.shed.as_ref();
    let share = |f: fn(&raw::ShedShares) -> Option<ballast_core::Ratio>| {
        shares.and_then(f).map_or(0.0, |r| r.get())
    };
    ConcurrencyLimit {
        algorithm,
        initial,
        min,
        max,
        tolerance,
        max_wait: c.positive(p("limit.max_wait"), l.max_wait, Duration::from_millis(50)),
        max_queue: c.count(p("limit.max_queue"), l.max_queue, 1000, 0, 1_000_000),
        retry_after: c.positive(
            p("limit.retry_after"),
            l.retry_after,
            Duration::from_secs(1),
        ),
        shed: [
            0.0,
            share(|s| s.high),
            share(|s| s.normal),
            share(|s| s.low),
        ],
    }
}

/// A route's `flood` table, defaults filled in.
fn flood(c: &mut Checker, p: &dyn Fn(&str) -> String, f: raw::Flood) -> FloodConfig {
    let key = match f.key.as_deref() {
        None | Some("client-ip") => FloodKey::ClientIp,
        Some(k) => {
            match k
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.trim().as_bytes()))
            {
                Some(Ok(name)) => FloodKey::Header(name),
                _ => {
                    c.fail(
                    p("flood.key"),
                    format!("`{k}` is not a client key: write \"client-ip\" or \"header:X-Api-Key\""),
                );
                    FloodKey::ClientIp
                }
            }
        }
    };
    let mut ips = |field: &str, list: Option<Vec<String>>| -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        for (k, text) in list.unwrap_or_default().iter().enumerate() {
            match text.parse() {
                Ok(ip) => out.push(ip),
                Err(_) => c.fail(
                    p(&format!("flood.{field}[{k}]")),
                    format!("`{text}` is not an IP address, e.g. \"10.0.0.7\" or \"::1\""),
                ),
            }
        }
        out
    };
    let allow = ips("allow", f.allow);
    let trusted_proxies = ips("trusted_proxies", f.trusted_proxies);
    FloodConfig {
        key,
        max_per_second: c.count(
            p("flood.max_per_second"),
            f.max_per_second,
            0,
            0,
            10_000_000,
        ),
        factor: f64::from(c.count(p("flood.factor"), f.factor, 10, 0, 100_000)),
        min_per_second: c.count(
            p("flood.min_per_second"),
            f.min_per_second,
            50,
            1,
            10_000_000,
        ),
        block: c.positive(p("flood.block"), f.block, Duration::from_secs(30)),
        allow,
        trusted_proxies,
    }
}

/// A route's `cache` table, defaults filled in.
fn cache(c: &mut Checker, p: &dyn Fn(&str) -> String, k: raw::Cache) -> CacheConfig {
    let size = |c: &mut Checker, field: &str, v: Option<ballast_core::Size>, default: u64| match v {
        None => default,
        Some(s) if s.get() == 0 => {
            c.fail(
                p(&format!("cache.{field}")),
                "must be larger than zero, e.g. \"1MiB\"",
            );
            default
        }
        Some(s) => s.get(),
    };
    let max_size = size(c, "max_size", k.max_size, defaults::CACHE_MAX_SIZE);
    let mut max_object = size(c, "max_object", k.max_object, defaults::CACHE_MAX_OBJECT);
    if max_object > MAX_CACHE_OBJECT {
        c.fail(
            p("cache.max_object"),
            "must be at most \"1GiB\": a response is held in memory while it is copied",
        );
        max_object = defaults::CACHE_MAX_OBJECT;
    } else if max_object > max_size {
        let fix = if k.max_object.is_some() {
            "must not be larger than cache.max_size"
        } else {
            "the default max_object (\"1MiB\") is larger than cache.max_size: set max_object too, at most max_size"
        };
        let field = if k.max_object.is_some() {
            "cache.max_object"
        } else {
            "cache.max_size"
        };
        c.fail(p(field), fix);
    }
    let mut key = Vec::new();
    match k.key {
        None => key.extend([
            CacheKeyPart::Scheme,
            CacheKeyPart::Host,
            CacheKeyPart::Path,
            CacheKeyPart::Query,
        ]),
        Some(parts) => {
            for (j, text) in parts.iter().enumerate() {
                let part = match text.as_str() {
                    "scheme" => Some(CacheKeyPart::Scheme),
                    "host" => Some(CacheKeyPart::Host),
                    "path" => Some(CacheKeyPart::Path),
                    "query" => Some(CacheKeyPart::Query),
                    other => match other.split_once(':') {
                        Some(("header", h)) => http::HeaderName::from_bytes(h.trim().as_bytes())
                            .ok()
                            .map(CacheKeyPart::Header),
                        Some(("cookie", n)) if cookie_name(n.trim()) => {
                            Some(CacheKeyPart::Cookie(n.trim().to_string()))
                        }
                        _ => None,
                    },
                };
                match part {
                    Some(part) if key.contains(&part) => c.fail(
                        p(&format!("cache.key[{j}]")),
                        format!("`{text}` is listed twice"),
                    ),
                    Some(part) => key.push(part),
                    None => c.fail(
                        p(&format!("cache.key[{j}]")),
                        format!("`{text}` is not a key part: write \"scheme\", \"host\", \"path\", \"query\", \"header:NAME\" or \"cookie:NAME\""),
                    ),
                }
            }
            if parts.is_empty() {
                c.fail(
                    p("cache.key"),
                    "must not be empty; the default is [\"scheme\", \"host\", \"path\", \"query\"]",
                );
            } else if !key.contains(&CacheKeyPart::Path) {
                c.fail(
                    p("cache.key"),
                    "must include \"path\": without it every path would share one entry",
                );
            }
        }
    }
    let mut stale_on = vec![500, 502, 503, 504];
    if let Some(on) = k.stale_on {
        stale_on.clear();
        for (j, item) in on.iter().enumerate() {
            match item.parse::<u16>() {
                Ok(code) if (500..=599).contains(&code) => stale_on.push(code),
                _ => c.fail(
                    p(&format!("cache.stale_on[{j}]")),
                    format!("`{item}` is not a 5xx status: write e.g. \"503\" (no healthy server always gets stale content)"),
                ),
            }
        }
    }
    CacheConfig {
        max_size,
        max_object,
        max_stale: k.max_stale.map_or(defaults::CACHE_MAX_STALE, |d| d.get()),
        key,
        stale_on,
    }
}

/// Largest response a cache may hold (its weight must fit the cache's `u32`).
const MAX_CACHE_OBJECT: u64 = 1 << 30;

/// Largest sorry page accepted; it is served from memory.
const MAX_SORRY_PAGE: u64 = 1024 * 1024;

/// A route's `sorry` table: the page is read now, so a missing file is a config error.
fn sorry_page(c: &mut Checker, p: &dyn Fn(&str) -> String, s: raw::Sorry) -> SorryPage {
    let body = match s.page {
        None => bytes::Bytes::from_static(BUILTIN_SORRY_PAGE.as_bytes()),
        Some(path) => {
            let full = c.base.join(&path);
            match std::fs::metadata(&full) {
                Ok(m) if m.len() > MAX_SORRY_PAGE => {
                    c.fail(
                        p("sorry.page"),
                        format!(
                            "{} is {} bytes; a sorry page may be at most 1 MiB",
                            full.display(),
                            m.len()
                        ),
                    );
                    bytes::Bytes::new()
                }
                _ => match std::fs::read(&full) {
                    Ok(b) => bytes::Bytes::from(b),
                    Err(e) => {
                        c.fail(
                            p("sorry.page"),
                            format!("cannot read {}: {e}", full.display()),
                        );
                        bytes::Bytes::new()
                    }
                },
            }
        }
    };
    let mut on_status = vec![502, 503, 504];
    if let Some(on) = s.on {
        on_status.clear();
        for (k, item) in on.iter().enumerate() {
            match item.parse::<u16>() {
                Ok(code) if (500..=599).contains(&code) => on_status.push(code),
                _ => c.fail(
                    p(&format!("sorry.on[{k}]")),
                    format!("`{item}` is not a 5xx status: write e.g. \"503\" (no healthy server always gets the page)"),
                ),
            }
        }
    }
    let retry_after = c.positive(
        p("sorry.retry_after"),
        s.retry_after,
        std::time::Duration::from_secs(30),
    );
    SorryPage {
        body,
        on_status,
        retry_after,
    }
}

/// The page served when a route has `sorry = {}` without a page of its own.
pub const BUILTIN_SORRY_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Back soon</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\n<body style=\"font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem\">\n<h1>We'll be back soon</h1>\n<p>This service is having trouble right now. Please try again in a little while.</p>\n</body></html>\n";

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

fn upstream(c: &mut Checker, i: usize, u: raw::Upstream) -> Upstream {
    let p = |f: &str| format!("upstream[{i}].{f}");
    let balance = match u.balance.as_deref().unwrap_or("round-robin") {
        "round-robin" => Balance::RoundRobin,
        "weighted-round-robin" => Balance::WeightedRoundRobin,
        "least-connections" => Balance::LeastConnections,
        "weighted-least-connections" => Balance::WeightedLeastConnections,
        "fastest-response" => Balance::FastestResponse,
        "peak-ewma" | "p2c" => Balance::PeakEwma,
        "hash" => match &u.hash {
            None => {
                c.fail(p("balance"), "balance = \"hash\" needs `hash = { on = \"client-ip\" }` (or header, cookie, path)");
                Balance::RoundRobin
            }
            Some(h) => Balance::Hash(hash_key(c, i, h)),
        },
        other => {
            c.fail(
                p("balance"),
                format!("`{other}` is not an algorithm; write one of round-robin, weighted-round-robin, least-connections, weighted-least-connections, fastest-response, peak-ewma, hash"),
            );
            Balance::RoundRobin
        }
    };
    if u.hash.is_some() && !matches!(balance, Balance::Hash(_)) {
        c.fail(p("hash"), "`hash` only applies with balance = \"hash\"");
    }
    let sticky = u.sticky.map(|s| {
        if !cookie_name(&s.cookie) {
            c.fail(
                p("sticky.cookie"),
                format!("`{}` is not a cookie name; use letters, digits, '_' or '-', e.g. \"BALLAST_SRV\"", s.cookie),
            );
        }
        Sticky { cookie: s.cookie }
    });
    let health = u.health.map(|h| health(c, i, h));
    let passive = match u.passive {
        None => Some(Passive {
            consecutive_failures: defaults::PASSIVE_FAILURES,
            ejection: defaults::EJECTION,
            max_ejection: defaults::MAX_EJECTION,
            max_ejected: defaults::MAX_EJECTED,
            uneject_on_check: true,
        }),
        Some(ps) if ps.enabled == Some(false) => None,
        Some(ps) => {
            let ejection = c.positive(p("passive.ejection"), ps.ejection, defaults::EJECTION);
            let max_ejection = c.positive(
                p("passive.max_ejection"),
                ps.max_ejection,
                defaults::MAX_EJECTION,
            );
            if max_ejection < ejection {
                c.fail(
                    p("passive.max_ejection"),
                    "must not be shorter than passive.ejection",
                );
            }
            Some(Passive {
                consecutive_failures: c.count(
                    p("passive.consecutive_failures"),
                    ps.consecutive_failures,
                    defaults::PASSIVE_FAILURES,
                    1,
                    1000,
                ),
                ejection,
                max_ejection,
                max_ejected: ps.max_ejected.map_or(defaults::MAX_EJECTED, |r| r.get()),
                uneject_on_check: ps.uneject_on_check.unwrap_or(true),
            })
        }
    };
    let breaker = u.breaker.map(|b| BreakerConfig {
        consecutive_failures: c.count(
            p("breaker.consecutive_failures"),
            b.consecutive_failures,
            5,
            0,
            1000,
        ),
        error_ratio: b.error_ratio.map_or(0.5, |r| r.get()),
        min_requests: c.count(p("breaker.min_requests"), b.min_requests, 20, 1, 1_000_000),
        window: c.positive(p("breaker.window"), b.window, Duration::from_secs(10)),
        cool_down: c.positive(p("breaker.cool_down"), b.cool_down, Duration::from_secs(5)),
        probes: c.count(p("breaker.probes"), b.probes, 3, 1, 100),
    });
    if let Some(b) = &breaker {
        if b.error_ratio <= 0.0 {
            c.fail(
                p("breaker.error_ratio"),
                "must be above 0%: at 0% every failure would open the breaker; use consecutive_failures = 1 for that",
            );
        }
    }
    let limit = u.limit.map(|l| concurrency_limit(c, &p, l));
    let pool = match u.pool {
        None => Pool {
            max_idle: defaults::POOL_MAX_IDLE,
            idle_timeout: defaults::POOL_IDLE_TIMEOUT,
        },
        Some(pl) => Pool {
            max_idle: c.count(
                p("pool.max_idle"),
                pl.max_idle,
                defaults::POOL_MAX_IDLE as u32,
                0,
                100_000,
            ) as usize,
            idle_timeout: c.positive(
                p("pool.idle_timeout"),
                pl.idle_timeout,
                defaults::POOL_IDLE_TIMEOUT,
            ),
        },
    };
    let servers = servers::servers(c, i, u.servers);
    Upstream {
        name: u.name,
        balance,
        sticky,
        health,
        passive,
        breaker,
        limit,
        slow_start: u.slow_start.map(|d| d.get()).filter(|d| !d.is_zero()),
        pool,
        servers,
    }
}

fn hash_key(c: &mut Checker, i: usize, h: &raw::Hash) -> HashKey {
    let p = format!("upstream[{i}].hash");
    let named = |c: &mut Checker| match &h.name {
        Some(n) if !n.is_empty() => Some(n.clone()),
        _ => {
            c.fail(
                format!("{p}.on"),
                format!("hash on `{}` needs `name = \"...\"`", h.on),
            );
            None
        }
    };
    match h.on.as_str() {
        "client-ip" | "path" => {
            if h.name.is_some() {
                c.fail(
                    format!("{p}.name"),
                    format!(
                        "hash on `{}` takes no name; only header and cookie do",
                        h.on
                    ),
                );
            }
            if h.on == "path" {
                HashKey::Path
            } else {
                HashKey::ClientIp
            }
        }
        "cookie" => match named(c) {
            Some(n) if cookie_name(&n) => HashKey::Cookie(n),
            Some(n) => {
                c.fail(
                    format!("{p}.name"),
                    format!("`{n}` is not a cookie name; use letters, digits, '_' or '-'"),
                );
                HashKey::ClientIp
            }
            None => HashKey::ClientIp,
        },
        "header" => match named(c).map(|n| (http::HeaderName::from_bytes(n.as_bytes()), n)) {
            Some((Ok(name), _)) => HashKey::Header(name),
            Some((Err(_), n)) => {
                c.fail(
                    format!("{p}.name"),
                    format!("`{n}` is not a valid header name"),
                );
                HashKey::ClientIp
            }
            None => HashKey::ClientIp,
        },
        other => {
            c.fail(
                format!("{p}.on"),
                format!("`{other}` is not a hash key; write \"client-ip\", \"header\", \"cookie\" or \"path\""),
            );
            HashKey::ClientIp
        }
    }
}

fn health(c: &mut Checker, i: usize, h: raw::Health) -> Health {
    let p = |f: &str| format!("upstream[{i}].health.{f}");
    let kind = h.kind.clone().unwrap_or_else(|| {
        if h.path.is_some() {
            "http".into()
        } else {
            "tcp".into()
        }
    });
    let check = match kind.as_str() {
        "tcp" => {
            let http_only = [
                ("path", h.path.is_some()),
                ("method", h.method.is_some()),
                ("host", h.host.is_some()),
                ("expect", h.expect.is_some()),
                ("body", h.body.is_some()),
            ];
            for (field, _) in http_only.iter().filter(|(_, set)| *set) {
                let fix = if h.kind.is_some() {
                    "a tcp check only connects; remove it or write kind = \"http\""
                } else {
                    "it belongs to HTTP checks; add path = \"/...\" (or kind = \"http\")"
                };
                c.fail(
                    p(field),
                    format!("`{field}` does not apply to a tcp check: {fix}"),
                );
            }
            Check::Tcp
        }
        "http" => {
            let method = match h.method.as_deref() {
                None => http::Method::GET,
                Some(m) => method(m).unwrap_or_else(|| {
                    c.fail(p("method"), format!("`{m}` is not an HTTP method"));
                    http::Method::GET
                }),
            };
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                c.fail(p("path"), format!("must start with '/', e.g. \"/{path}\""));
            }
            let expect = match h.expect.as_deref() {
                None => 200..=399,
                Some(e) => {
                    match parse_status_range(e) {
                        Some(r) => r,
                        None => {
                            c.fail(p("expect"), format!("`{e}` is not a status range; write e.g. \"200-399\" or \"204\""));
                            200..=399
                        }
                    }
                }
            };
            Check::Http {
                method,
                path,
                host: h.host.clone(),
                expect,
                body: h.body.clone(),
            }
        }
        other => {
            c.fail(
                p("kind"),
                format!("`{other}` is not a check; write \"http\" or \"tcp\""),
            );
            Check::Tcp
        }
    };
    let interval = c.positive(p("interval"), h.interval, defaults::HEALTH_INTERVAL);
    let timeout = c.positive(p("timeout"), h.timeout, defaults::HEALTH_TIMEOUT);
    if timeout > interval {
        c.fail(p("timeout"), "must not be longer than health.interval");
    }
    Health {
        check,
        interval,
        timeout,
        rise: c.count(p("rise"), h.rise, defaults::RISE, 1, 100),
        fall: c.count(p("fall"), h.fall, defaults::FALL, 1, 100),
    }
}

fn parse_status_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v: u16 = s.trim().parse().ok()?;
            (v, v)
        }
    };
    ((100..=599).contains(&a) && (100..=599).contains(&b) && a <= b).then_some(a..=b)
}

//! The validated configuration the engines use: defaults filled in, names resolved, units
//! converted. Anything of these types has already passed [`crate::validate`].

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub admin: Admin,
    pub access_log: AccessLog,
    pub runtime: Runtime,
    pub listeners: Vec<Listener>,
    pub routes: Vec<Route>,
    pub upstreams: Vec<Upstream>,
}

impl Config {
    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Routes that serve listener `name`, in match order.
    pub fn routes_for<'a>(&'a self, listener: &'a str) -> impl Iterator<Item = &'a Route> + 'a {
        self.routes
            .iter()
            .filter(move |r| r.listener.as_deref().is_none_or(|l| l == listener))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    pub listen: SocketAddr,
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccessLog {
    Off,
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// How long in-flight work may take to finish after SIGTERM.
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on plain TCP.
    Http,
    /// HTTP/1.1 and HTTP/2 over TLS, chosen by ALPN.
    Https,
    /// Layer-4 passthrough.
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    pub listen: SocketAddr,
    pub protocol: Protocol,
    pub tls: Option<Tls>,
    /// For TCP listeners: the upstream every connection goes to.
    pub upstream: Option<String>,
    pub max_header_size: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    /// `None`: every HTTP(S) listener.
    pub listener: Option<String>,
    pub matcher: Match,
    pub upstream: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Total tries across servers, the first included.
    pub attempts: u32,
}

/// All given conditions must hold; an empty match is the default route.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Match {
    /// Lower-case host without port.
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub methods: Vec<http::Method>,
    pub header: Option<HeaderMatch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    pub name: http::HeaderName,
    /// `None`: the header only has to be present.
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    pub balance: Balance,
    pub sticky: Option<Sticky>,
    pub health: Option<Health>,
    pub passive: Option<Passive>,
    pub slow_start: Option<Duration>,
    pub pool: Pool,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    WeightedLeastConnections,
    FastestResponse,
    PeakEwma,
    Hash(HashKey),
}

impl Balance {
    /// The name written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Balance::RoundRobin => "round-robin",
            Balance::WeightedRoundRobin => "weighted-round-robin",
            Balance::LeastConnections => "least-connections",
            Balance::WeightedLeastConnections => "weighted-least-connections",
            Balance::FastestResponse => "fastest-response",
            Balance::PeakEwma => "peak-ewma",
            Balance::Hash(_) => "hash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    Header(http::HeaderName),
    Cookie(String),
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticky {
    pub cookie: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Tcp,
    Http {
        method: http::Method,
        path: String,
        host: Option<String>,
        expect: RangeInclusive<u16>,
        body: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Passive {
    pub consecutive_failures: u32,
    pub ejection: Duration,
    pub max_ejection: Duration,
    /// Largest share of the pool that may be ejected at once.
    pub max_ejected: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub addr: SocketAddr,
    pub weight: u32,
    pub backup: bool,
}

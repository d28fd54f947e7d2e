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
    /// The operations store; `None` when there is none (the demo's embedded config without a
    /// `[store]` table).
    pub store: Option<StoreConfig>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<Route>,
    pub upstreams: Vec<Upstream>,
    /// Monitors and rules, default rule pack included.
    pub monitoring: ballast_monitor::plan::Plan,
    /// Receivers, notification routes and message settings.
    pub notify: ballast_notify::NotifyPlan,
    /// `[[remedy]]` rules and the `[remediation]` rate, checked.
    pub remedy: RemedyPlan,
    /// `[incident]`, checked; `None` when the table is absent (incidents then use
    /// `IncidentSpec::default()`: open on critical alerts, tell nobody).
    pub incident: Option<ballast_incident::IncidentSpec>,
    /// `[review]`: the scheduled threshold review.
    pub review: ReviewPlan,
}

/// `[review]`, checked (see `validate/review.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewPlan {
    /// How often the review runs by itself.
    pub every: std::time::Duration,
    /// How much history each review reads.
    pub since: std::time::Duration,
    /// Told when a review flags a rule.
    pub receiver: Option<String>,
    /// False: only on demand.
    pub enabled: bool,
}

impl Default for ReviewPlan {
    fn default() -> Self {
        ReviewPlan {
            every: std::time::Duration::from_secs(7 * 86_400),
            since: std::time::Duration::from_secs(30 * 86_400),
            receiver: None,
            enabled: true,
        }
    }
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

    /// Each route's function scope by name: what `ballast_incident::severity::function_scope`
    /// grades an incident's affected routes with.
    pub fn function_scopes(&self) -> std::collections::BTreeMap<String, FunctionScope> {
        self.routes
            .iter()
            .map(|r| (r.name.clone(), r.function))
            .collect()
    }
}

pub use ballast_core::incident::FunctionScope;

/// `[[remedy]]` and `[remediation]` after the checks of `ballast_remedy::rule`: the specs as
/// written (so the config stays comparable and printable) and the global rate with its default
/// filled in. `ballast_remedy::rule::Rules::new(&plan.rules, ..)` cannot fail on them.
#[derive(Debug, Clone, PartialEq)]
pub struct RemedyPlan {
    pub rules: Vec<ballast_remedy::rule::RemedySpec>,
    pub rate: ballast_remedy::rule::RateSpec,
}

impl Default for RemedyPlan {
    fn default() -> Self {
        RemedyPlan {
            rules: Vec::new(),
            rate: ballast_remedy::rule::DEFAULT_GLOBAL_RATE,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    pub listen: SocketAddr,
    /// `[admin] token`: an operator's token, named `admin`.
    pub token: Option<String>,
    /// `[admin] tokens`: named tokens with a role each (secrets read from their files).
    pub tokens: Vec<AdminToken>,
}

impl Admin {
    /// Every token with its name and role (`token` as the operator `admin`); empty: the API is
    /// open (loopback only).
    pub fn all_tokens(&self) -> Vec<AdminToken> {
        let mut all: Vec<AdminToken> = self
            .token
            .iter()
            .map(|t| AdminToken {
                name: "admin".into(),
                secret: t.clone(),
                role: Role::Operator,
            })
            .collect();
        all.extend(self.tokens.iter().cloned());
        all
    }
}

/// What a token may do on the admin API: a viewer reads, an operator also acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
}

/// One named admin token. Its `Debug` hides the secret.
#[derive(Clone, PartialEq)]
pub struct AdminToken {
    pub name: String,
    pub secret: String,
    pub role: Role,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("name", &self.name)
            .field("secret", &"[redacted]")
            .field("role", &self.role)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccessLog {
    Off,
    Stdout,
    File(PathBuf),
}

/// Where the operations store lives, from `[store] url`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    pub url: StoreUrl,
    /// Whether the file has a `[store]` table (false: the default SQLite file was chosen).
    pub explicit: bool,
    /// Events held in memory while the store cannot be written; beyond this they are dropped
    /// and counted.
    pub spool: usize,
    pub retention: Retention,
}

/// How long each kind of record is kept in the store before pruning deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events: Duration,
    pub changes: Duration,
    pub config_versions: Duration,
    /// Metric rollups, resolved alerts and ended silences (the threshold review's baseline).
    pub metrics: Duration,
}

/// The backend and location of the store. Its `Debug` never shows a PostgreSQL URL, which
/// may carry a password.
#[derive(Clone, PartialEq)]
pub enum StoreUrl {
    /// A SQLite file; a relative `sqlite://PATH` has been joined to the config file's directory.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, as written.
    Postgres(String),
}

impl StoreUrl {
    /// What logs may show: the SQLite path, or only the scheme of a PostgreSQL URL.
    pub fn redacted(&self) -> String {
        match self {
            StoreUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreUrl::Postgres(_) => "postgres://(redacted)".to_string(),
        }
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// How long in-flight work may take to finish after SIGTERM.
    pub grace: Duration,
    /// Nameserver asked for upstream server names (UDP and TCP); `None`: the system's
    /// `/etc/resolv.conf`.
    pub resolver: Option<SocketAddr>,
    /// Server names are re-resolved when their answer's TTL runs out, but at least this often.
    pub dns_interval: Duration,
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

impl Protocol {
    /// The name used in the config file, status and events.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
        }
    }
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

/// An https listener's certificates: one or more, chosen by the client's SNI name.
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// In file order; never empty.
    pub certs: Vec<CertSpec>,
    /// Index into `certs` of the certificate served for an unknown or absent SNI name: the
    /// entry without `names`, or else the first.
    pub default: usize,
}

/// One certificate chain and its key, as configured (the files are read by the proxy).
#[derive(Debug, Clone, PartialEq)]
pub struct CertSpec {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SNI names it serves, lower-case: exact (`a.example`) or one-label wildcards
    /// (`*.b.example`). Empty: only the default.
    pub names: Vec<String>,
    /// Position in `tls.certs`, or `None` for the short form `tls = { cert, key }`; used to
    /// name the config field in errors.
    pub index: Option<usize>,
}

impl CertSpec {
    /// The config field holding `what` (`"cert"` or `"key"`), e.g. `tls.key` or
    /// `tls.certs[1].key`.
    pub fn field(&self, what: &str) -> String {
        match self.index {
            None => format!("tls.{what}"),
            Some(i) => format!("tls.certs[{i}].{what}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    /// `None`: every HTTP(S) listener.
    pub listener: Option<String>,
    pub matcher: Match,
    pub upstream: String,
    pub connect_timeout: Duration,
    /// Time allowed for one attempt's response head.
    pub response_timeout: Duration,
    /// Deadline of the whole request (every attempt and back-off) until a response head.
    pub total_timeout: Duration,
    pub retry: RetryPolicy,
    /// Serve a static page instead of upstream failures.
    pub sorry: Option<SorryPage>,
    /// Per-client rate limit and flood blocking.
    pub flood: Option<FloodConfig>,
    /// Response cache with stale serving.
    pub cache: Option<CacheConfig>,
    /// At most `capacity` active visitors; the rest wait in line.
    pub waiting_room: Option<WaitingRoomConfig>,
    /// Class used by the upstream's admission control when it is saturated.
    pub priority: Priority,
    /// How much of the service this route is, for an incident's severity (`function`).
    pub function: FunctionScope,
}

/// A route's class for load shedding: lower classes are shed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    Critical,
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// Every class, most important first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    /// Position in [`Priority::ALL`]: 0 is the most important.
    pub fn rank(self) -> usize {
        self as usize
    }

    /// The name written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// How an upstream's concurrency limit moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAlgorithm {
    /// Shrinks when latency rises past `tolerance ×` the baseline, grows while it does not.
    Gradient,
    /// Stays at `initial`.
    Fixed,
}

/// Admission control of one upstream: at most `limit` requests in it at once; above that,
/// requests wait in priority order for at most `max_wait`, or are shed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrencyLimit {
    pub algorithm: LimitAlgorithm,
    pub initial: u32,
    pub min: u32,
    pub max: u32,
    /// Latency factor over the baseline tolerated before the limit shrinks.
    pub tolerance: f64,
    /// Queueing-delay bound: the longest a request waits for a slot.
    pub max_wait: Duration,
    /// Requests waiting at most; above it the lowest class waiting is shed first.
    pub max_queue: u32,
    /// `Retry-After` of a shed answer.
    pub retry_after: Duration,
    /// Share of each class (by [`Priority::rank`]) refused at once while saturated.
    pub shed: [f64; 4],
}

/// A route's waiting room.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingRoomConfig {
    /// Admitted visitors whose session has not expired, at most.
    pub capacity: u32,
    /// How long an admitted visitor keeps access without a request (renewed while active).
    pub session: Duration,
    /// How often the queue page refreshes itself; a waiting visitor unseen for 3 × this loses
    /// its place.
    pub refresh: Duration,
    /// Visitors waiting, at most; beyond it new visitors get a plain 503.
    pub max_queue: u32,
    /// Name of the signed cookie that carries the ticket or the session.
    pub cookie: String,
    /// Cookie-signing key; `None`: a random key per process.
    pub secret: Option<Secret>,
    /// The queue page template (UTF-8 HTML with `{{position}}`, `{{wait}}`, ...); `None`: the
    /// built-in page.
    pub page: Option<String>,
}

/// Key material; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A route's response cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Bytes held at most (bodies, headers and keys); least recently used entries go first.
    pub max_size: u64,
    /// Largest response kept; a longer body is still streamed to the client, not stored.
    pub max_object: u64,
    /// How long past its freshness an entry may stand in for a failing upstream (0: never).
    pub max_stale: Duration,
    /// What tells two requests apart; always includes the path.
    pub key: Vec<CacheKeyPart>,
    /// 5xx statuses replaced by stale content: upstream answers, and the gateway's own answer
    /// when no server could be reached (502 connect failure, 504 timeout). "No healthy server"
    /// always is.
    pub stale_on: Vec<u16>,
}

/// One part of a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheKeyPart {
    /// `http` or `https`.
    Scheme,
    /// The `Host` header (or HTTP/2 authority), lower-cased, port included.
    Host,
    Path,
    /// The query string as sent.
    Query,
    Header(http::HeaderName),
    Cookie(String),
}

impl CacheKeyPart {
    /// The name written in the config.
    pub fn name(&self) -> String {
        match self {
            CacheKeyPart::Scheme => "scheme".into(),
            CacheKeyPart::Host => "host".into(),
            CacheKeyPart::Path => "path".into(),
            CacheKeyPart::Query => "query".into(),
            CacheKeyPart::Header(h) => format!("header:{h}"),
            CacheKeyPart::Cookie(c) => format!("cookie:{c}"),
        }
    }
}

/// Who a client is, for rate limits.
#[derive(Debug, Clone, PartialEq)]
pub enum FloodKey {
    /// The client address (from `X-Forwarded-For` when the peer is a trusted proxy).
    ClientIp,
    /// A request header's value (e.g. an API key); requests without it are keyed by address.
    Header(http::HeaderName),
}

/// When a client is blocked, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodConfig {
    pub key: FloodKey,
    /// Requests per second above which a client is blocked (0: no absolute limit).
    pub max_per_second: u32,
    /// A client above `factor ×` the median client's rate is blocked (0: off)...
    pub factor: f64,
    /// ...once it is also above this many requests per second.
    pub min_per_second: u32,
    /// Cooling-off period.
    pub block: Duration,
    /// Never blocked.
    pub allow: Vec<std::net::IpAddr>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// When and how often a failed attempt is tried again (on another server when there is one).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total tries across servers, the first included.
    pub attempts: u32,
    /// The connection could not be opened (or a pooled one was dead before the request left):
    /// nothing reached the server, so any method may be retried.
    pub on_connect_failure: bool,
    /// The connection closed before any response byte (idempotent requests without a body).
    pub on_reset: bool,
    /// No response head within the response timeout (idempotent requests without a body).
    pub on_timeout: bool,
    /// 5xx answers that are retried (idempotent requests without a body).
    pub on_status: Vec<u16>,
    /// Retries allowed as a share of requests, per upstream and per client, over 10 s.
    pub budget: f64,
    /// Retries per second always allowed, whatever the share.
    pub min_per_second: u32,
    /// Full-jitter exponential back-off: the n-th retry waits up to `min(max, base × 2^(n-1))`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A `Retry-After` up to this long is waited for; a longer one ends the retries.
    pub retry_after_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            on_connect_failure: true,
            on_reset: true,
            on_timeout: false,
            on_status: vec![502, 503],
            budget: 0.1,
            min_per_second: 5,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            retry_after_max: Duration::from_secs(1),
        }
    }
}

/// The page served, from memory, when the upstream fails.
#[derive(Debug, Clone, PartialEq)]
pub struct SorryPage {
    pub body: bytes::Bytes,
    /// Upstream 5xx statuses replaced by the page.
    pub on_status: Vec<u16>,
    pub retry_after: Duration,
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
    /// Circuit breaker per server; off unless configured.
    pub breaker: Option<BreakerConfig>,
    /// Adaptive concurrency limit and priority shedding; off unless configured.
    pub limit: Option<ConcurrencyLimit>,
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
    /// `rise` good active checks in a row end an ejection at once (failback), without waiting
    /// for its back-off to run out.
    pub uneject_on_check: bool,
}

/// When a server's circuit breaker opens and how it closes again.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker (0: only the ratio counts).
    pub consecutive_failures: u32,
    /// Share of failures over `window` that opens the breaker, once `min_requests` were seen.
    pub error_ratio: f64,
    pub min_requests: u32,
    pub window: Duration,
    /// Time open before probes are let through.
    pub cool_down: Duration,
    /// Requests let through while half-open; all must succeed to close.
    pub probes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub addr: ServerAddr,
    pub weight: u32,
    pub backup: bool,
}

/// Where a server is: an address, or a DNS name that may stand for several.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    /// An IP literal (or `localhost`): one server, never resolved.
    Ip(SocketAddr),
    /// `host:port`: one server per address the name resolves to, re-resolved on a schedule.
    Name {
        /// Lower-case, without a trailing dot.
        host: String,
        port: u16,
    },
}

impl ServerAddr {
    /// The IP address, when the server is written as one.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            ServerAddr::Ip(a) => Some(*a),
            ServerAddr::Name { .. } => None,
        }
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Ip(a) => write!(f, "{a}"),
            ServerAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

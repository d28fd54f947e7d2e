//! Errors classified as data: where they came from, whether a retry is safe, and a short kind
//! that becomes a metric label and an access-log field.

use http::StatusCode;

/// Where an error originated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Client,
    Upstream,
    Internal,
}

/// Why the gateway refused a request as malformed: the `reason` label of
/// `ballast_requests_refused_total` and the access log's `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Content-Length / Transfer-Encoding conflicting, invalid or not ending in `chunked`.
    BadFraming,
    /// More than one `Host` header.
    DuplicateHost,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// An HTTP/2 request whose `:authority` and `Host` name different hosts.
    HostMismatch,
    /// A chunk extension with a control character (other than HTAB).
    BadChunkExtension,
}

impl Refusal {
    /// Every reason, in the order of [`Refusal::index`].
    pub const ALL: [Refusal; 5] = [
        Refusal::BadFraming,
        Refusal::DuplicateHost,
        Refusal::MissingHost,
        Refusal::HostMismatch,
        Refusal::BadChunkExtension,
    ];

    /// The label text.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::BadFraming => "bad_framing",
            Refusal::DuplicateHost => "duplicate_host",
            Refusal::MissingHost => "missing_host",
            Refusal::HostMismatch => "host_mismatch",
            Refusal::BadChunkExtension => "bad_chunk_extension",
        }
    }

    /// Position in [`Refusal::ALL`] (and in the counters of `stats::Refusals`).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a request could not be proxied (or an attempt failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("connect to upstream failed: {0}")]
    Connect(std::io::ErrorKind),
    #[error("connect to upstream timed out")]
    ConnectTimeout,
    #[error("upstream closed the connection before responding")]
    ClosedBeforeResponse,
    #[error("upstream did not respond in time")]
    ResponseTimeout,
    #[error("upstream sent an invalid response")]
    UpstreamProtocol,
    #[error("no healthy server in upstream")]
    NoServer,
    #[error("no route matches the request")]
    NoRoute,
    #[error("conflicting or invalid Content-Length / Transfer-Encoding")]
    BadFraming,
    /// A request the gateway refuses as malformed before routing (RFC 9112 §3.2, RFC 9113
    /// §8.3.1, chunk extensions with control characters).
    #[error("malformed request: {}", .0.name())]
    Refused(Refusal),
    #[error("the request body could not be read")]
    ClientBody,
    /// A retryable answer (e.g. 503) that was retried, and the retry could not be made.
    #[error("upstream answered {0}")]
    UpstreamStatus(u16),
}

impl ProxyError {
    /// Origin of the error.
    pub fn source(&self) -> Source {
        match self {
            ProxyError::BadFraming
            | ProxyError::Refused(_)
            | ProxyError::ClientBody
            | ProxyError::NoRoute => Source::Client,
            ProxyError::NoServer => Source::Internal,
            _ => Source::Upstream,
        }
    }

    /// True when nothing reached the upstream, so any request may be sent elsewhere.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, ProxyError::Connect(_) | ProxyError::ConnectTimeout)
    }

    /// True when an idempotent request may be sent elsewhere: nothing was received back.
    pub fn retryable_if_idempotent(&self) -> bool {
        self.nothing_sent() || matches!(self, ProxyError::ClosedBeforeResponse)
    }

    /// A short stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::Connect(_) => "connect_failed",
            ProxyError::ConnectTimeout => "connect_timeout",
            ProxyError::ClosedBeforeResponse => "upstream_closed",
            ProxyError::ResponseTimeout => "response_timeout",
            ProxyError::UpstreamProtocol => "upstream_protocol",
            ProxyError::NoServer => "no_server",
            ProxyError::NoRoute => "no_route",
            ProxyError::BadFraming => "bad_framing",
            ProxyError::Refused(r) => r.name(),
            ProxyError::ClientBody => "client_body",
            ProxyError::UpstreamStatus(_) => "upstream_status",
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadFraming | ProxyError::Refused(_) | ProxyError::ClientBody => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ConnectTimeout | ProxyError::ResponseTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::UpstreamStatus(code) => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

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
            ProxyError::BadFraming | ProxyError::ClientBody | ProxyError::NoRoute => Source::Client,
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
            ProxyError::ClientBody => "client_body",
            ProxyError::UpstreamStatus(_) => "upstream_status",
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadFraming | ProxyError::ClientBody => StatusCode::BAD_REQUEST,
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

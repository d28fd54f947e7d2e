//! Client connections of the load generator: opening TCP (optionally from a chosen source
//! address, so a proxy sees distinct clients), the HTTP/1.1 or h2c handshake, and one
//! request/response exchange with the body read to its end.
//!
//! Both loops (open and closed) share this so they measure exactly the same thing.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};

use super::recorder::Outcome;
use super::{LoadSpec, Protocol};
use crate::LabError;

type ReqBody = Empty<Bytes>;

/// Where and what the load sends: the address, the source identity, and the request.
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub source_ip: Option<IpAddr>,
    pub protocol: Protocol,
    uri: Uri,
    headers: HeaderMap,
}

impl Endpoint {
    pub fn from_spec(spec: &LoadSpec) -> Result<Endpoint, LabError> {
        if !spec.path.starts_with('/') {
            return Err(LabError::Usage(format!(
                "load path {:?} must start with '/'",
                spec.path
            )));
        }
        let pq: PathAndQuery = spec
            .path
            .parse()
            .map_err(|e| LabError::Usage(format!("load path {:?}: {e}", spec.path)))?;
        if let Some(ip) = spec.source_ip {
            if ip.is_ipv4() != spec.target.is_ipv4() {
                return Err(LabError::Usage(format!(
                    "source address {ip} and target {} are not the same IP version",
                    spec.target
                )));
            }
        }
        let authority = spec.host.clone().unwrap_or_else(|| spec.target.to_string());
        let mut headers = HeaderMap::new();
        let uri = match spec.protocol {
            Protocol::Http1 => {
                let host = HeaderValue::from_str(&authority)
                    .map_err(|e| LabError::Usage(format!("host {authority:?}: {e}")))?;
                headers.insert(header::HOST, host);
                Uri::from(pq)
            }
            // HTTP/2 carries the host as the :authority pseudo-header, taken from the URI.
            Protocol::H2c => Uri::builder()
                .scheme("http")
                .authority(authority.as_str())
                .path_and_query(pq)
                .build()
                .map_err(|e| LabError::Usage(format!("host {authority:?}: {e}")))?,
        };
        headers.insert(header::USER_AGENT, HeaderValue::from_static("ballast-lab"));
        for (name, value) in &spec.headers {
            if name == header::HOST || name == header::USER_AGENT {
                headers.insert(name.clone(), value.clone());
            } else {
                headers.append(name.clone(), value.clone());
            }
        }
        Ok(Endpoint {
            addr: spec.target,
            source_ip: spec.source_ip,
            protocol: spec.protocol,
            uri,
            headers,
        })
    }

    /// A new copy of the request (hyper consumes each one).
    pub fn request(&self) -> Request<ReqBody> {
        let mut req = Request::new(Empty::new());
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// Opens a TCP connection, from `source_ip` when one is set.
    pub async fn connect_tcp(&self) -> io::Result<TcpStream> {
        connect_tcp(self.addr, self.source_ip).await
    }

    /// Opens a connection and runs the HTTP handshake. A TCP failure is a `Connect`
    /// outcome, a failed handshake an `Io` one.
    pub async fn open(&self) -> Result<Conn, Outcome> {
        let stream = self.connect_tcp().await.map_err(|_| Outcome::Connect)?;
        let io = TokioIo::new(stream);
        match self.protocol {
            Protocol::Http1 => {
                let (sender, conn) = http1::handshake(io).await.map_err(|_| Outcome::Io)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Conn::H1(sender))
            }
            Protocol::H2c => Ok(Conn::H2(self.open_h2_on(io).await?)),
        }
    }

    /// Opens an HTTP/2 connection (the open loop shares these between requests).
    pub async fn open_h2(&self) -> Result<http2::SendRequest<ReqBody>, Outcome> {
        let stream = self.connect_tcp().await.map_err(|_| Outcome::Connect)?;
        self.open_h2_on(TokioIo::new(stream)).await
    }

    async fn open_h2_on(
        &self,
        io: TokioIo<TcpStream>,
    ) -> Result<http2::SendRequest<ReqBody>, Outcome> {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|_| Outcome::Io)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// Connects to `addr`; with `source`, the socket is first bound to `(source, 0)`.
pub(crate) async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(addr).await?,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            defer_port_choice(&socket);
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await?
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Asks Linux to pick the local port at `connect` rather than at `bind`. A socket bound to
/// `(ip, 0)` otherwise reserves a port for every destination at once, and a run that
/// reconnects a lot (a proxy closing connections) runs out of ports within a minute;
/// chosen at connect time, ports are shared between destinations. Best effort: without it
/// the connection still works.
#[cfg(target_os = "linux")]
fn defer_port_choice(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is a valid socket owned by `socket` for the whole call, and the
    // option value points at a live c_int whose size is passed alongside.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &TcpSocket) {}

/// Why an exchange produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The connection was closed before the request went out (an idle keep-alive
    /// connection the server had already closed): safe to resend on another connection.
    Unsent,
    /// The connection broke after the request was sent, or while the response was read.
    Broken,
}

/// One client connection.
pub(crate) enum Conn {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

impl Conn {
    /// Whether the connection is known to be unusable.
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(s) => s.is_closed(),
            Conn::H2(s) => s.is_closed(),
        }
    }

    /// Sends `req` and reads the response to its end; returns the status.
    pub async fn send(&mut self, req: Request<ReqBody>) -> Result<u16, SendError> {
        let resp = match self {
            Conn::H1(s) => {
                s.ready().await.map_err(|_| SendError::Unsent)?;
                s.try_send_request(req).await.map_err(|mut e| {
                    if e.take_message().is_some() {
                        SendError::Unsent
                    } else {
                        SendError::Broken
                    }
                })?
            }
            Conn::H2(s) => {
                s.ready().await.map_err(|_| SendError::Unsent)?;
                s.try_send_request(req).await.map_err(|mut e| {
                    if e.take_message().is_some() {
                        SendError::Unsent
                    } else {
                        SendError::Broken
                    }
                })?
            }
        };
        let status = resp.status().as_u16();
        if discard(resp.into_body()).await {
            Ok(status)
        } else {
            Err(SendError::Broken)
        }
    }
}

/// Reads a response body to its end, keeping nothing. False when it broke off.
async fn discard(mut body: Incoming) -> bool {
    if body.is_end_stream() {
        return true;
    }
    loop {
        match body.frame().await {
            None => return true,
            Some(Ok(_)) => {}
            Some(Err(_)) => return false,
        }
    }
}

/// Whether a request is opening its connection right now, so that running out of time is
/// reported as what it was: a connection that could not be opened in time (`Connect`), or a
/// response that did not come in time (`Timeout`).
#[derive(Default)]
pub(crate) struct Phase(AtomicBool);

impl Phase {
    pub fn connecting(&self, yes: bool) {
        self.0.store(yes, Relaxed);
    }

    /// The outcome of a request whose deadline passed.
    pub fn timed_out(&self) -> Outcome {
        if self.0.load(Relaxed) {
            Outcome::Connect
        } else {
            Outcome::Timeout
        }
    }
}

/// Sends one HTTP/1.1 request on an idle connection taken from `idle`, or on a new one when
/// there is none. An idle connection the server had already closed (the request never left)
/// is skipped and the request goes out on the next one. Returns the outcome and, after an
/// answer, the connection for the caller to keep.
pub(crate) async fn exchange(
    endpoint: &Endpoint,
    phase: &Phase,
    mut idle: impl FnMut() -> Option<Conn>,
) -> (Outcome, Option<Conn>) {
    loop {
        let (mut conn, reused) = match idle() {
            Some(c) => (c, true),
            None => {
                phase.connecting(true);
                let opened = endpoint.open().await;
                phase.connecting(false);
                match opened {
                    Ok(c) => (c, false),
                    Err(outcome) => return (outcome, None),
                }
            }
        };
        match conn.send(endpoint.request()).await {
            Ok(status) => return (Outcome::Status(status), Some(conn)),
            Err(SendError::Unsent) if reused => continue,
            Err(_) => return (Outcome::Io, None),
        }
    }
}

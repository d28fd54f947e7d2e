//! Ballast's own HTTP/1.1 client for upstream connections.
//!
//! Why not hyper's client: a gateway's upstream side is one narrow path (write a head, maybe
//! stream a body, read a head, stream a body back, keep the connection). Doing it inside the
//! request's own task, with no connection task, dispatch channel or request clone, took a
//! proxied request from 41k to 30k instructions (bench/README.md), which is what brought
//! Ballast past HAProxy. It also lets the forwarder know exactly what reached the server: a
//! head that could not be written at all is [`SendError::NotSent`], which makes any request
//! safe to send again.
//!
//! - [`encode`]: request head and chunked framing.
//! - [`decode`]: response head, body framing and persistence (RFC 9112 §6.3, §9.3).
//! - [`body`]: the response body, which owns the connection and hands it back to the pool.
//!
//! - [`upload`]: the request body, sent while the response is awaited and, when the upstream
//!   answers before the upload is done (streaming both ways, or an early 413), while the
//!   response streams back.
//!
//! `1xx` interim answers are read and dropped, except `101` for an upgrade the client asked
//! for.

pub mod body;
pub mod decode;
pub mod encode;
pub mod upload;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Response, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub use body::ResponseBody;
use decode::{DecodeError, Head};
use encode::BodyFraming;
use upload::{Upload, UploadError};

use crate::http::body::UpstreamBody;
use crate::upstream::ServerState;

/// Bytes asked for per read of the upstream.
const READ_SIZE: usize = 16 * 1024;
/// Below this much free space the read buffer grows before the next read.
const MIN_FREE: usize = 2048;

/// One upstream connection and the bytes read from it but not yet used.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Whether an idle connection is still open with nothing unread, checked before it is
    /// reused. Costs no system call unless the socket was reported readable since the last
    /// read (a close or stray bytes from the server).
    pub fn is_idle_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The socket and the bytes already read past the last head (after an upgrade).
    pub fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.buf)
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_FREE {
            self.buf.reserve(READ_SIZE);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf)
    }
}

/// The request as it goes upstream.
pub struct Request<'a> {
    pub method: &'a Method,
    /// Path and query.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    /// The request asks for a protocol upgrade; a `101` answer is accepted.
    pub upgrade: bool,
}

/// Why an exchange on a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Not one byte of the request could be written: the connection was already closed.
    #[error("the connection was closed before the request was written")]
    NotSent,
    /// The connection closed or was reset after (part of) the request left, before a whole
    /// response head arrived.
    #[error("the upstream closed the connection before responding")]
    Closed,
    #[error("invalid response head: {0}")]
    Protocol(DecodeError),
    /// A `101` nobody asked for.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
    /// Reading the client's request body failed.
    #[error("the request body could not be read")]
    ClientBody,
}

/// Sends `req` with `body` on `conn` and returns the response, whose body carries the
/// connection back to `home`'s pool when it ends. `body` is only taken once the head has been
/// written, so after [`SendError::NotSent`] it is untouched and can be sent elsewhere. A body
/// still being sent when the head arrives goes on being sent while the response streams back.
pub async fn send(
    mut conn: Box<Conn>,
    req: &Request<'_>,
    body: &mut UpstreamBody,
    home: &Arc<ServerState>,
) -> Result<Response<ResponseBody>, SendError> {
    let framing = match body {
        UpstreamBody::Empty => BodyFraming::None,
        _ if req.headers.contains_key(CONTENT_LENGTH) => BodyFraming::Length,
        _ => BodyFraming::Chunked,
    };
    let mut out = Vec::with_capacity(512);
    encode::head(&mut out, req.method, req.target, req.headers, framing);
    write_head(&mut conn.stream, &out).await?;

    let mut upload = (framing != BodyFraming::None).then(|| {
        let body = std::mem::replace(body, UpstreamBody::Empty);
        Box::new(Upload::new(body, framing == BodyFraming::Chunked))
    });
    let head_request = req.method == Method::HEAD;
    let mut write_failed = false;
    let head = std::future::poll_fn(|cx| {
        if let Some(up) = upload.as_mut() {
            match up.poll(&mut conn.stream, cx) {
                Poll::Ready(Ok(())) => upload = None,
                Poll::Ready(Err(UploadError::Client)) => {
                    return Poll::Ready(Err(SendError::ClientBody))
                }
                // The upstream stopped taking the body; it may still say why before closing.
                Poll::Ready(Err(UploadError::Write)) => {
                    upload = None;
                    write_failed = true;
                }
                Poll::Pending => {}
            }
        }
        loop {
            if let Some(head) = parse_final(&mut conn.buf, head_request)? {
                return Poll::Ready(Ok(head));
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(n) if n > 0 => {}
                _ => return Poll::Ready(Err(SendError::Closed)),
            }
        }
    })
    .await?;
    let body = if head.status == StatusCode::SWITCHING_PROTOCOLS {
        if !req.upgrade {
            return Err(SendError::UnexpectedUpgrade);
        }
        ResponseBody::upgraded(conn)
    } else {
        ResponseBody::new(
            conn,
            head.framing,
            head.keep_alive && !write_failed,
            upload,
            home.clone(),
        )
    };
    let mut resp = Response::new(body);
    // The version stays HTTP/1.1: the upstream's own is hop-by-hop, and a 1.0 here would make
    // the client's connection close.
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers;
    Ok(resp)
}

/// Writes the head; a failure before the first byte left is [`SendError::NotSent`].
async fn write_head(stream: &mut TcpStream, head: &[u8]) -> Result<(), SendError> {
    let mut sent = 0;
    while sent < head.len() {
        match stream.write(&head[sent..]).await {
            Ok(n) if n > 0 => sent += n,
            _ if sent == 0 => return Err(SendError::NotSent),
            _ => return Err(SendError::Closed),
        }
    }
    Ok(())
}

/// A final head at the front of `buf`, if one is complete; interim answers are consumed.
fn parse_final(buf: &mut BytesMut, head_request: bool) -> Result<Option<Head>, SendError> {
    while !buf.is_empty() {
        match decode::parse(buf, head_request).map_err(SendError::Protocol)? {
            Some(h)
                if h.status.is_informational() && h.status != StatusCode::SWITCHING_PROTOCOLS => {}
            other => return Ok(other),
        }
    }
    Ok(None)
}

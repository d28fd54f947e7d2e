//! Ballast's own HTTP/1.1 client for upstream connections.
//!
//! Why not hyper's client: a gateway's upstream side is one narrow path (write a head, maybe
//! stream a body, read a head, stream a body back, keep the connection), and doing it inside
//! the request's own task with no connection task, channel or second header map roughly
//! halved its cost per request (see bench/README.md). It also lets the forwarder know exactly
//! what reached the server: a head that could not be written at all is [`SendError::NotSent`],
//! which makes any request safe to send again.
//!
//! - [`encode`]: request head and chunked framing.
//! - [`decode`]: response head, body framing and persistence (RFC 9112 §6.3, §9.3).
//! - [`body`]: the response body, which owns the connection and hands it back to the pool.
//!
//! While a request body is being sent the connection is also read, so an upstream that answers
//! early (a 413 before the whole upload) is heard; such a connection is not reused. `1xx`
//! interim answers are read and dropped, except `101` for an upgrade the client asked for.

pub mod body;
pub mod decode;
pub mod encode;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use body::ResponseBody;
use decode::{DecodeError, Head};
use encode::BodyFraming;

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

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
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
/// connection back to `home`'s pool when it ends. `body` is only read once the head has been
/// written, so after [`SendError::NotSent`] it is untouched and can be sent elsewhere.
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

    let head_request = req.method == Method::HEAD;
    let (head, early) = match framing {
        BodyFraming::None => (read_head(&mut conn, head_request).await?, false),
        _ => match send_body(&mut conn, body, framing, head_request, &mut out).await? {
            Upload::Sent => (read_head(&mut conn, head_request).await?, false),
            Upload::Answered(head) => (head, true),
            // The upstream stopped taking the body; it may have said why before closing.
            Upload::WriteFailed => (read_head(&mut conn, head_request).await?, true),
        },
    };
    let body = if head.status == StatusCode::SWITCHING_PROTOCOLS {
        if !req.upgrade {
            return Err(SendError::UnexpectedUpgrade);
        }
        ResponseBody::upgraded(conn)
    } else {
        // An answer that came before the whole request body was sent leaves the connection
        // out of step: it is closed after this response.
        ResponseBody::new(conn, head.framing, head.keep_alive && !early, home.clone())
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = head.status;
    *resp.version_mut() = head.version;
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

/// Reads until a final response head (interim `1xx` answers other than `101` are skipped).
async fn read_head(conn: &mut Conn, head_request: bool) -> Result<Head, SendError> {
    loop {
        if let Some(head) = parse_final(&mut conn.buf, head_request)? {
            return Ok(head);
        }
        match conn.fill().await {
            Ok(n) if n > 0 => {}
            _ => return Err(SendError::Closed),
        }
    }
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

/// How sending a request body ended.
enum Upload {
    /// All of it left.
    Sent,
    /// A final head arrived before the body was done (the rest is not sent).
    Answered(Head),
    /// The upstream stopped taking it.
    WriteFailed,
}

/// Streams the request body while listening for an early answer.
async fn send_body(
    conn: &mut Conn,
    body: &mut UpstreamBody,
    framing: BodyFraming,
    head_request: bool,
    scratch: &mut Vec<u8>,
) -> Result<Upload, SendError> {
    let Conn { stream, buf } = conn;
    let (mut rd, mut wr) = stream.split();
    loop {
        if buf.capacity() - buf.len() < MIN_FREE {
            buf.reserve(READ_SIZE);
        }
        tokio::select! {
            biased;
            read = rd.read_buf(buf) => match read {
                Ok(n) if n > 0 => {
                    if let Some(head) = parse_final(buf, head_request)? {
                        return Ok(Upload::Answered(head));
                    }
                }
                _ => return Err(SendError::Closed),
            },
            frame = body.frame() => match frame {
                None => {
                    if framing == BodyFraming::Chunked && wr.write_all(encode::LAST_CHUNK).await.is_err() {
                        return Ok(Upload::WriteFailed);
                    }
                    return Ok(Upload::Sent);
                }
                Some(Err(_)) => return Err(SendError::ClientBody),
                Some(Ok(frame)) => {
                    // Trailers from the client are not forwarded.
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    let written = if framing == BodyFraming::Chunked {
                        scratch.clear();
                        encode::chunk_header(scratch, data.len());
                        if data.len() <= READ_SIZE {
                            // Small chunks leave in one write.
                            scratch.extend_from_slice(&data);
                            scratch.extend_from_slice(b"\r\n");
                            wr.write_all(scratch).await
                        } else {
                            let mut w = wr.write_all(scratch).await;
                            if w.is_ok() {
                                w = wr.write_all(&data).await;
                            }
                            if w.is_ok() {
                                w = wr.write_all(b"\r\n").await;
                            }
                            w
                        }
                    } else {
                        wr.write_all(&data).await
                    };
                    if written.is_err() {
                        return Ok(Upload::WriteFailed);
                    }
                }
            },
        }
    }
}

//! Sending a request body, as a poll-driven state machine.
//!
//! An upstream may answer before the whole body has arrived (an echo service streaming both
//! ways, or a 413 at the first bytes), so the upload is not a loop that must finish before the
//! response is read: it is advanced by whoever polls the exchange, first `send` while it
//! waits for the head, then the response body while it streams back. All of it runs in the
//! request's own task.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::Body;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::encode;
use crate::http::body::UpstreamBody;

/// How an upload stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadError {
    /// The client's body failed (the client went away mid-upload).
    Client,
    /// The upstream stopped taking bytes.
    Write,
}

/// The rest of a request body on its way upstream.
pub struct Upload {
    body: UpstreamBody,
    chunked: bool,
    /// Framed bytes not yet written.
    out: Vec<u8>,
    written: usize,
    /// The body's end has been framed into `out`.
    ended: bool,
}

impl Upload {
    pub fn new(body: UpstreamBody, chunked: bool) -> Self {
        Self {
            body,
            chunked,
            out: Vec::new(),
            written: 0,
            ended: false,
        }
    }

    /// Moves the upload on; `Ready(Ok(()))` once the whole body (and its last chunk) is out.
    pub fn poll(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), UploadError>> {
        loop {
            while self.written < self.out.len() {
                match ready!(Pin::new(&mut *stream).poll_write(cx, &self.out[self.written..])) {
                    Ok(n) if n > 0 => self.written += n,
                    _ => return Poll::Ready(Err(UploadError::Write)),
                }
            }
            self.out.clear();
            self.written = 0;
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    if self.chunked {
                        self.out.extend_from_slice(encode::LAST_CHUNK);
                    }
                    self.ended = true;
                }
                Some(Err(_)) => return Poll::Ready(Err(UploadError::Client)),
                Some(Ok(frame)) => {
                    // Trailers from the client are not forwarded.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        encode::chunk_header(&mut self.out, data.len());
                        self.out.extend_from_slice(&data);
                        self.out.extend_from_slice(b"\r\n");
                    } else {
                        self.out.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

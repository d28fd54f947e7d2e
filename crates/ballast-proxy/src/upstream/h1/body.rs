//! The upstream's response body, read off its connection as the client takes it.
//!
//! The body owns the connection. Data frames are cut from the connection's read buffer (no
//! copy), a chunked body is de-chunked (trailers are read and dropped), and the moment the last
//! byte has been handed on the connection goes back to its server's pool, if it may carry
//! another request and nothing unexpected follows the body. A body dropped before its end takes
//! the connection with it: a half-read connection is never reused.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::decode::Framing;
use super::upload::Upload;
use super::Conn;
use crate::upstream::ServerState;

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// Where the body's reader is.
enum State {
    /// Every byte has been handed on.
    Done,
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// Data until the upstream closes.
    UntilClose,
}

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk with this many bytes left.
    Data(u64),
    /// Expecting the CRLF that closes a chunk.
    DataEnd,
    /// After the last chunk: trailer lines (this many bytes so far) until a blank line.
    Trailers(usize),
}

/// What one step of the chunked decoder produced.
enum ChunkOut {
    Data(Bytes),
    End,
}

/// A response body streamed from an upstream connection.
pub struct ResponseBody {
    conn: Option<Box<Conn>>,
    state: State,
    /// The connection may carry another request once this body is read.
    keep_alive: bool,
    /// The rest of the request body, when the upstream answered before it was all sent.
    upload: Option<Box<Upload>>,
    home: Option<Arc<ServerState>>,
}

impl ResponseBody {
    pub(super) fn new(
        conn: Box<Conn>,
        framing: Framing,
        keep_alive: bool,
        upload: Option<Box<Upload>>,
        home: Arc<ServerState>,
    ) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = Self {
            conn: Some(conn),
            state,
            keep_alive,
            upload,
            home: Some(home),
        };
        if matches!(body.state, State::Done) {
            body.release();
        }
        body
    }

    /// The body of a `101 Switching Protocols`: no bytes, and the connection is kept for
    /// [`ResponseBody::into_upgraded`].
    pub(super) fn upgraded(conn: Box<Conn>) -> Self {
        Self {
            conn: Some(conn),
            state: State::Done,
            keep_alive: false,
            upload: None,
            home: None,
        }
    }

    /// The connection of an upgraded exchange, with any bytes the upstream already sent past
    /// its `101` head.
    pub fn into_upgraded(mut self) -> Option<Box<Conn>> {
        if self.home.is_some() {
            return None;
        }
        self.conn.take()
    }

    /// The body is over: the connection goes back to the pool when it may be reused (not
    /// when part of the request body is still unsent).
    fn release(&mut self) {
        self.state = State::Done;
        if let (Some(conn), Some(home)) = (self.conn.take(), &self.home) {
            if self.keep_alive && self.upload.is_none() && conn.buf.is_empty() {
                home.pool.put(conn);
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let (Some(up), Some(conn)) = (this.upload.as_mut(), this.conn.as_mut()) {
            match up.poll(&mut conn.stream, cx) {
                Poll::Ready(Ok(())) => this.upload = None,
                Poll::Ready(Err(_)) => {
                    // The request went up truncated: this connection is finished.
                    this.upload = None;
                    this.keep_alive = false;
                }
                Poll::Pending => {}
            }
        }
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let buf = &mut conn.buf;
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) if !buf.is_empty() => {
                    let n = (*left).min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    *left -= n;
                    if *left == 0 {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose if !buf.is_empty() => {
                    return Poll::Ready(Some(Ok(Frame::data(buf.split().freeze()))));
                }
                State::Chunked(chunk) => match dechunk(chunk, buf)? {
                    Some(ChunkOut::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Some(ChunkOut::End) => {
                        this.release();
                        return Poll::Ready(None);
                    }
                    None => {}
                },
                State::Length(_) | State::UntilClose => {}
            }
            // More bytes are needed.
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if ready!(conn.poll_fill(cx))? == 0 {
                if matches!(this.state, State::UntilClose) {
                    // The close is the end of this body, and of the connection.
                    this.keep_alive = false;
                    this.release();
                    return Poll::Ready(None);
                }
                this.conn = None;
                this.state = State::Done;
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed the connection before the end of the body",
                ))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Advances the chunked decoder over what is buffered: a data frame, the end of the body, or
/// `None` when more bytes are needed.
fn dechunk(chunk: &mut Chunk, buf: &mut BytesMut) -> io::Result<Option<ChunkOut>> {
    loop {
        match *chunk {
            Chunk::Size => {
                let Some(nl) = line_end(buf, MAX_CHUNK_LINE)? else {
                    return Ok(None);
                };
                let size = chunk_size(&buf[..nl])?;
                buf.advance(nl + 1);
                *chunk = if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = left.min(buf.len() as u64);
                let data = buf.split_to(n as usize).freeze();
                *chunk = if n == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - n)
                };
                return Ok(Some(ChunkOut::Data(data)));
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(invalid("chunk data not followed by CRLF"));
                }
                buf.advance(2);
                *chunk = Chunk::Size;
            }
            Chunk::Trailers(seen) => {
                let Some(nl) = line_end(buf, MAX_TRAILERS - seen)? else {
                    return Ok(None);
                };
                let blank = nl == 0 || (nl == 1 && buf[0] == b'\r');
                buf.advance(nl + 1);
                if blank {
                    return Ok(Some(ChunkOut::End));
                }
                *chunk = Chunk::Trailers(seen + nl + 1);
            }
        }
    }
}

/// Index of the `\n` ending the first line of `buf`; an error if no line ends within `max`.
fn line_end(buf: &[u8], max: usize) -> io::Result<Option<usize>> {
    match buf.iter().take(max).position(|&b| b == b'\n') {
        Some(i) => Ok(Some(i)),
        None if buf.len() >= max => Err(invalid("chunk line too long")),
        None => Ok(None),
    }
}

/// The size on a chunk-size line (hex digits, then optional extensions after `;`).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid("bad chunk size"));
    }
    let mut n = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(invalid("bad chunk size")),
        };
        n = n * 16 + u64::from(v);
    }
    Ok(n)
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the decoder over `wire` fed in pieces of `step` bytes; returns the data and
    /// whether the end was reached.
    fn decode(wire: &[u8], step: usize) -> io::Result<(Vec<u8>, bool, usize)> {
        let mut chunk = Chunk::Size;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match dechunk(&mut chunk, &mut buf)? {
                    Some(ChunkOut::Data(d)) => out.extend_from_slice(&d),
                    Some(ChunkOut::End) => return Ok((out, true, buf.len())),
                    None => break,
                }
            }
        }
        Ok((out, false, buf.len()))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let (data, end, left) = decode(wire, step).unwrap();
            assert_eq!(data, b"hello, world0123456789", "step {step}");
            assert!(end);
            assert_eq!(left, 0);
        }
        let (_, end, left) = decode(b"0\r\n\r\nHTTP/1.1", 100).unwrap();
        assert!(end);
        assert_eq!(left, 8, "bytes after the body stay in the buffer");
        let (data, end, _) = decode(b"3\r\nab", 100).unwrap();
        assert_eq!((data.as_slice(), end), (&b"ab"[..], false));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [
            &b"zz\r\nab\r\n"[..],
            b"\r\n",
            b"3\r\nabcX\r\n",
            b"1000000000000000\r\n",
        ] {
            assert!(
                decode(wire, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert!(decode(&long, 100).is_err());
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b"X-T: 1\r\n".as_slice(), 3000).flatten());
        assert!(decode(&trailers, 512).is_err());
    }
}

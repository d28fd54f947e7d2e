//! A guard under hyper that lets the gateway refuse requests carrying both `Content-Length`
//! and `Transfer-Encoding`.
//!
//! hyper follows RFC 9112 by framing such a request by `Transfer-Encoding` and silently
//! dropping `Content-Length`, so the handler can never see the conflict. Ballast refuses these
//! requests outright (they are the raw material of request smuggling), so this wrapper tracks
//! HTTP/1 message boundaries on the client's raw bytes. When a request head has both headers,
//! every `Content-Length` name is overwritten in place with [`CONFLICT_MARKER`] (same length,
//! so nothing shifts). The handler sees the marker and answers 400 with `Connection: close`;
//! the request never reaches an upstream.
//!
//! Chunk extensions are checked too (RFC 9112 §7.1.1 allows no control characters in them):
//! the head of a chunked request is held until its first chunk-size line has arrived, and if
//! that line's extension carries a control character (other than HTAB) every
//! `Transfer-Encoding` name is overwritten with [`CHUNK_EXT_MARKER`]: hyper sees a request
//! without a body, the handler answers 400 and nothing reaches an upstream. (A request that
//! announces `Expect` is not held: its client waits for the go-ahead before sending the body.)
//! A control character in a later chunk's extension, when the head has long gone upstream,
//! ends the client connection with a read error, so the upstream never gets a complete
//! request.
//!
//! Heads are held back until complete (at most `max_head` bytes, beyond which hyper's own 431
//! applies, and at most the listener's `header_read` timeout, beyond which the guard closes
//! the connection: hyper cannot time a head it has not seen start); bodies pass through while their framing (fixed length or chunked) is followed so
//! the next head on a keep-alive connection is found. HTTP/2 (the connection preface), upgrades
//! and anything unparseable switch the guard to plain pass-through: hyper judges those itself.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Header name written over `Content-Length` when it conflicts with `Transfer-Encoding`, is
/// not a number, or disagrees with another `Content-Length`. Same length on purpose.
pub const CONFLICT_MARKER: &str = "x-ballast-clte";
/// Header name written over a `Transfer-Encoding` whose final coding is not `chunked`.
pub const TE_MARKER: &str = "x-ballast-framing";
/// Header name written over `Transfer-Encoding` when the first chunk's extension carries a
/// control character. Same length as `transfer-encoding` on purpose.
pub const CHUNK_EXT_MARKER: &str = "x-ballast-chunkex";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size { value: u64 },
    Ext { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { len: usize },
    TrailerLf { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Fixed(u64),
    Chunked(Chunk),
    Pass,
    /// A chunk extension carried a control character after the head had been passed on: the
    /// connection ends with a read error.
    Refused,
}

/// What [`analyse`] found in a request head.
struct Analysed {
    state: State,
    /// The request has an `Expect` header (its body follows only after a go-ahead).
    expect: bool,
    /// Offsets of the `Transfer-Encoding` names in the head.
    te_names: SmallVec<[usize; 2]>,
}

/// How the first chunk-size line after a chunked head looks.
#[derive(Debug, PartialEq, Eq)]
enum ChunkLine {
    Incomplete,
    Complete,
    BadExtension,
}

/// Checks the first chunk-size line (size, extension, line end) at the start of `rest`.
fn first_chunk_line(rest: &[u8]) -> ChunkLine {
    let mut c = Chunk::Size { value: 0 };
    for &b in rest {
        match step(c, b) {
            State::Chunked(
                next @ (Chunk::Size { .. } | Chunk::Ext { .. } | Chunk::SizeLf { .. }),
            ) => c = next,
            State::Refused => return ChunkLine::BadExtension,
            _ => return ChunkLine::Complete,
        }
    }
    ChunkLine::Incomplete
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// How the body after a head is framed; rewrites `Content-Length` names in a conflicting head.
/// Allocation-free: it runs on every request.
fn analyse(head: &mut [u8]) -> Analysed {
    let mut expect = false;
    let mut te_names: SmallVec<[usize; 2]> = SmallVec::new();
    if head.starts_with(b"PRI * HTTP/2.0") {
        return Analysed {
            state: State::Pass,
            expect,
            te_names,
        };
    }
    let mut cl: Option<u64> = None;
    let mut cl_bad = false;
    let mut te_chunked: Option<bool> = None;
    let mut upgrade = head.starts_with(b"CONNECT ");
    let mut cl_names: SmallVec<[usize; 2]> = SmallVec::new();
    // Skip the request line.
    let mut pos = memchr::memchr(b'\n', head).map_or(head.len(), |e| e + 1);
    while pos < head.len() {
        let end = memchr::memchr(b'\n', &head[pos..]).map_or(head.len(), |e| pos + e);
        let line = &head[pos..end];
        // Only four names matter here; most lines are passed over on their first letter
        // (browsers send long cookie and user-agent lines on every request).
        let relevant = matches!(
            line.first(),
            Some(b'c' | b'C' | b't' | b'T' | b'u' | b'U' | b'e' | b'E')
        );
        if let Some(colon) = relevant.then(|| memchr::memchr(b':', line)).flatten() {
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                cl_names.push(pos);
                let digits =
                    !value.is_empty() && value.iter().all(u8::is_ascii_digit) && value.len() < 19;
                let n =
                    digits.then(|| value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')));
                match (n, cl) {
                    (None, _) => cl_bad = true,
                    (Some(n), Some(prev)) if n != prev => cl_bad = true,
                    (Some(n), _) => cl = Some(n),
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te_names.push(pos);
                let last = value.rsplit(|&b| b == b',').next().map(trim).unwrap_or(b"");
                te_chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = true;
            } else if name.eq_ignore_ascii_case(b"expect") {
                expect = true;
            }
        }
        pos = end + 1;
    }
    let has_cl = !cl_names.is_empty();
    // Any framing problem hides the offending headers from hyper behind same-length markers:
    // hyper then sees a request without a body and the handler refuses it (400, close).
    let mark_cl = cl_bad || (has_cl && te_chunked.is_some());
    let mark_te = te_chunked == Some(false);
    if mark_cl {
        for p in &cl_names {
            head[*p..*p + CONFLICT_MARKER.len()].copy_from_slice(CONFLICT_MARKER.as_bytes());
        }
    }
    if mark_te {
        for p in &te_names {
            head[*p..*p + TE_MARKER.len()].copy_from_slice(TE_MARKER.as_bytes());
        }
    }
    let state = match (upgrade, te_chunked, mark_cl, cl) {
        (true, ..) => State::Pass,
        (_, Some(true), _, _) => State::Chunked(Chunk::Size { value: 0 }),
        (_, Some(false), _, _) | (_, None, true, _) | (_, None, false, Some(0) | None) => {
            State::Head
        }
        (_, None, false, Some(n)) => State::Fixed(n),
    };
    Analysed {
        state,
        expect,
        te_names,
    }
}

/// Length of the head at the start of `rest` (through its blank line), if complete.
fn head_end(rest: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', rest).find_map(|p| match rest.get(p + 1) {
        Some(b'\n') => Some(p + 2),
        Some(b'\r') if rest.get(p + 2) == Some(&b'\n') => Some(p + 3),
        _ => None,
    })
}

/// Wraps a client connection; see the module docs.
pub struct FramingGuard<S> {
    io: S,
    state: State,
    /// Bytes read from the client but not yet classified.
    pending: Vec<u8>,
    /// Classified bytes waiting for hyper.
    out: Vec<u8>,
    out_pos: usize,
    max_head: usize,
    eof: bool,
    /// Read buffer of the slow path (allocated once, when first needed).
    scratch: Vec<u8>,
    /// Time a request head may take to arrive in full. Heads are held back here, so hyper's
    /// own header-read timeout never sees a slow one start: this guard must enforce it.
    head_timeout: Option<std::time::Duration>,
    /// Running while an incomplete head is held.
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FramingGuard<S> {
    pub fn new(io: S, max_head: usize) -> Self {
        Self {
            io,
            state: State::Head,
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            max_head,
            eof: false,
            scratch: Vec::new(),
            head_timeout: None,
            head_deadline: None,
        }
    }

    /// Closes the connection (a read error) when a request head takes longer than `d`.
    pub fn with_head_timeout(mut self, d: std::time::Duration) -> Self {
        self.head_timeout = Some(d);
        self
    }

    /// The inner read is pending: fine, unless an incomplete head has been held too long.
    fn pending_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(timeout) = self.head_timeout.filter(|_| !self.pending.is_empty()) else {
            return Poll::Pending;
        };
        let deadline = self
            .head_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete within the listener's header_read timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Follows framing over `data`, rewriting conflicting heads in place. Returns how many
    /// bytes are classified; the rest is the start of a head not yet complete.
    fn scan(&mut self, data: &mut [u8]) -> usize {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Pass => return data.len(),
                State::Refused => return i,
                State::Head => {
                    // Blank lines before a request line are allowed and skipped by hyper.
                    let leading = data[i..]
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    if leading > 0 {
                        i += leading;
                        continue;
                    }
                    match head_end(&data[i..]) {
                        Some(len) => {
                            let head = analyse(&mut data[i..i + len]);
                            if matches!(head.state, State::Chunked(_)) && !head.expect {
                                // The head goes on together with its first chunk-size line.
                                match first_chunk_line(&data[i + len..]) {
                                    ChunkLine::Incomplete
                                        if !self.eof && data.len() - i <= self.max_head =>
                                    {
                                        return i;
                                    }
                                    ChunkLine::BadExtension => {
                                        for p in &head.te_names {
                                            data[i + p..i + p + CHUNK_EXT_MARKER.len()]
                                                .copy_from_slice(CHUNK_EXT_MARKER.as_bytes());
                                        }
                                        // hyper sees no body; the handler refuses the request
                                        // and closes the connection.
                                        self.state = State::Pass;
                                        return data.len();
                                    }
                                    _ => {}
                                }
                            }
                            self.state = head.state;
                            i += len;
                        }
                        None if data.len() - i > self.max_head || self.eof => {
                            self.state = State::Pass;
                            return data.len();
                        }
                        None => return i,
                    }
                }
                State::Fixed(n) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == n {
                        State::Head
                    } else {
                        State::Fixed(n - take)
                    };
                }
                State::Chunked(Chunk::Data(n)) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    self.state = State::Chunked(if take == n {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(n - take)
                    });
                }
                State::Chunked(c) => {
                    self.state = step(c, data[i]);
                    if self.state == State::Refused {
                        return i;
                    }
                    i += 1;
                }
            }
        }
        data.len()
    }

    /// Moves what can be classified from `pending` to `out`.
    fn process(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        let n = self.scan(&mut pending);
        self.out.extend_from_slice(&pending[..n]);
        pending.drain(..n);
        self.pending = pending;
    }
}

/// One byte of chunked framing outside chunk data.
fn step(c: Chunk, b: u8) -> State {
    let chunked = State::Chunked;
    match c {
        Chunk::Size { value } => match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                match value.checked_mul(16).and_then(|v| v.checked_add(digit)) {
                    Some(v) if v < (1 << 60) => chunked(Chunk::Size { value: v }),
                    _ => State::Pass,
                }
            }
            b';' | b' ' | b'\t' => chunked(Chunk::Ext { value }),
            b'\r' => chunked(Chunk::SizeLf { value }),
            b'\n' => size_done(value),
            _ => State::Pass,
        },
        Chunk::Ext { value } => match b {
            b'\r' => chunked(Chunk::SizeLf { value }),
            b'\n' => size_done(value),
            // RFC 9112 §7.1.1: no control characters in an extension (HTAB is whitespace).
            0..=0x08 | 0x0a..=0x1f | 0x7f => State::Refused,
            _ => chunked(Chunk::Ext { value }),
        },
        Chunk::SizeLf { value } => {
            if b == b'\n' {
                size_done(value)
            } else {
                State::Pass
            }
        }
        Chunk::Data(_) => State::Pass,
        Chunk::DataCr => match b {
            b'\r' => chunked(Chunk::DataLf),
            b'\n' => chunked(Chunk::Size { value: 0 }),
            _ => State::Pass,
        },
        Chunk::DataLf => {
            if b == b'\n' {
                chunked(Chunk::Size { value: 0 })
            } else {
                State::Pass
            }
        }
        Chunk::Trailer { len } => match b {
            b'\r' => chunked(Chunk::TrailerLf { len }),
            b'\n' if len == 0 => State::Head,
            b'\n' => chunked(Chunk::Trailer { len: 0 }),
            _ => chunked(Chunk::Trailer { len: len + 1 }),
        },
        Chunk::TrailerLf { len } => match b {
            b'\n' if len == 0 => State::Head,
            b'\n' => chunked(Chunk::Trailer { len: 0 }),
            _ => State::Pass,
        },
    }
}

fn size_done(value: u64) -> State {
    State::Chunked(if value == 0 {
        Chunk::Trailer { len: 0 }
    } else {
        Chunk::Data(value)
    })
}

impl<S: AsyncRead + Unpin> AsyncRead for FramingGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.pending.is_empty() {
                // No head held back (any more): the slow-head clock stops.
                this.head_deadline = None;
            }
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.state == State::Refused {
                // Everything before the bad extension has been handed on; the rest never is.
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "control character in a chunk extension",
                )));
            }
            if this.state == State::Pass && this.pending.is_empty() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            if this.eof {
                // Whatever is left unclassified goes to hyper as is.
                if this.pending.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.process();
                if this.out.is_empty() {
                    this.out = std::mem::take(&mut this.pending);
                }
                continue;
            }
            if this.pending.is_empty() {
                // Fast path: read straight into hyper's buffer and classify in place; only an
                // incomplete head at the end is taken back out and held.
                let start = buf.filled().len();
                match Pin::new(&mut this.io).poll_read(cx, buf) {
                    Poll::Pending => return this.pending_read(cx),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {}
                }
                let got = buf.filled().len() - start;
                if got == 0 {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                let n = this.scan(&mut buf.filled_mut()[start..]);
                if n == got {
                    return Poll::Ready(Ok(()));
                }
                this.pending.extend_from_slice(&buf.filled()[start + n..]);
                buf.set_filled(start + n);
                if n > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if this.scratch.is_empty() {
                this.scratch = vec![0; 8192];
            }
            let mut rb = ReadBuf::new(&mut this.scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return this.pending_read(cx),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        this.eof = true;
                    } else {
                        this.pending.extend_from_slice(&this.scratch[..n]);
                        this.process();
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FramingGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and returns what hyper would read.
    fn run(input: &[u8], step: usize) -> (Vec<u8>, State) {
        let mut g = FramingGuard::new((), 1024);
        let mut seen = Vec::new();
        for piece in input.chunks(step) {
            g.pending.extend_from_slice(piece);
            g.process();
            seen.append(&mut g.out);
        }
        (seen, g.state)
    }

    #[test]
    fn conflicting_head_is_marked_in_any_split() {
        let req = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        for step in [1, 3, 7, req.len()] {
            let (out, state) = run(req, step);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("x-ballast-clte: 5"), "{step}: {text}");
            assert!(!text.to_ascii_lowercase().contains("content-length"));
            assert_eq!(text.len(), req.len());
            assert_eq!(state, State::Head, "chunked body followed to its end");
        }
    }

    #[test]
    fn pipelined_requests_are_all_seen() {
        let one = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let two = "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11;x=y\r\nContent-Length: 1\r\n0\r\nT: 1\r\n\r\n";
        // (A chunked head is passed on together with its first chunk-size line.)
        let three =
            "GET /c HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        let all = format!("{one}{two}{three}");
        for step in [1, 2, 5, all.len()] {
            let (out, _) = run(all.as_bytes(), step);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.len(), all.len());
            assert!(text.starts_with(one), "fixed body untouched");
            assert!(
                text.contains("11;x=y\r\nContent-Length: 1\r\n"),
                "chunk data is not a head: {text}"
            );
            assert!(
                text.ends_with(
                    "GET /c HTTP/1.1\r\nx-ballast-clte: 1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn unusable_framing_is_marked() {
        let (out, state) = run(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 5);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("x-ballast-framing: gzip"), "{text}");
        assert_eq!(state, State::Head);
        let (out, _) = run(b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 5);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("x-ballast-clte: abc"));
        let (out, _) = run(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            5,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("x-ballast-clte").count(), 2, "{text}");
        let (out, state) = run(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde",
            5,
        );
        assert!(
            !String::from_utf8(out).unwrap().contains("x-ballast"),
            "equal repeats are fine"
        );
        assert_eq!(state, State::Head);
    }

    #[test]
    fn h2_and_upgrades_pass_through() {
        assert_eq!(run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 4).1, State::Pass);
        assert_eq!(
            run(
                b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
                4
            )
            .1,
            State::Pass
        );
    }

    #[test]
    fn control_character_in_first_chunk_extension_marks_the_head() {
        let req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x00b\r\nhello\r\n0\r\n\r\n";
        for step in [1, 4, req.len()] {
            let (out, _) = run(req, step);
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.contains("x-ballast-chunkex: chunked"),
                "{step}: {text}"
            );
            assert_eq!(out.len(), req.len());
        }
        // HTAB and visible characters are fine.
        let ok =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;\ta=b\r\nhello\r\n0\r\n\r\n";
        let (out, state) = run(ok, 3);
        assert_eq!(out, ok.to_vec());
        assert_eq!(state, State::Head);
    }

    #[test]
    fn chunked_head_waits_for_its_first_chunk_line_unless_expect() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (out, _) = run(head, head.len());
        assert!(out.is_empty(), "held until the chunk-size line arrives");
        let expect =
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (out, state) = run(expect, expect.len());
        assert_eq!(out, expect.to_vec(), "its client waits for 100 Continue");
        assert_eq!(state, State::Chunked(Chunk::Size { value: 0 }));
    }

    #[test]
    fn control_character_in_a_later_chunk_extension_refuses() {
        let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n1;\x01\r\ny\r\n0\r\n\r\n";
        let (out, state) = run(req, req.len());
        assert_eq!(state, State::Refused);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.ends_with("1\r\nx\r\n1;"),
            "stops before the bad byte: {text:?}"
        );
    }

    #[test]
    fn oversized_head_is_left_to_hyper() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(3000));
        let (out, state) = run(big.as_bytes(), 100);
        assert_eq!(state, State::Pass);
        assert_eq!(out.len(), big.len());
    }
}

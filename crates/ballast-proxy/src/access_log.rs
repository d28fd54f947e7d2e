//! The access log: one JSON object per request, written by a background task.
//!
//! The request path formats its line into a shared buffer; a writer thread flushes it every
//! 50 ms, or as soon as 64 KiB are waiting. When the writer falls behind (more than 8 MiB
//! pending), lines are dropped and counted (`ballast_access_log_dropped_total`) rather than ever
//! making a client wait on a disk.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::stats::GlobalStats;

/// Where lines go.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    Off,
    Stdout,
    File(PathBuf),
}

/// One request, as logged. Written by hand as one JSON object per line ([`Entry::write_json`]):
/// it runs for every request, and a generic serializer measured ~2% of the gateway's CPU.
pub struct Entry<'a> {
    /// Microseconds since the Unix epoch.
    pub time_us: u64,
    pub request_id: &'a str,
    pub client: &'a str,
    pub listener: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub upstream: &'a str,
    pub server: Option<&'a str>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_us: u64,
    pub upstream_us: Option<u64>,
    pub attempts: u32,
    pub error: Option<&'static str>,
    /// `hit`, `stale` or `miss` on routes with a cache.
    pub cache: Option<&'static str>,
    pub aborted: bool,
}

/// Appends `s` as a JSON string (quotes included).
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // One table lookup per byte; almost every byte of a log field needs no escaping.
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Bytes a JSON string cannot hold as they are: `"`, `\`, control characters and DEL.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

/// Appends an integer without the formatting machinery.
fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `us` as `whole.fraction` with `digits` decimals (`div` = 10^digits).
fn fixed(out: &mut Vec<u8>, us: u64, div: u64, digits: usize) {
    int(out, us / div);
    out.push(b'.');
    let mut buf = itoa::Buffer::new();
    let frac = buf.format(us % div);
    out.extend(std::iter::repeat_n(b'0', digits - frac.len()));
    out.extend_from_slice(frac.as_bytes());
}

impl Entry<'_> {
    /// Appends the entry as one JSON line.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":");
        fixed(out, self.time_us, 1_000_000, 6);
        out.extend_from_slice(b",\"request_id\":");
        json_str(out, self.request_id);
        out.extend_from_slice(b",\"client\":");
        json_str(out, self.client);
        out.extend_from_slice(b",\"listener\":");
        json_str(out, self.listener);
        out.extend_from_slice(b",\"method\":");
        json_str(out, self.method);
        out.extend_from_slice(b",\"host\":");
        json_str(out, self.host);
        out.extend_from_slice(b",\"path\":");
        json_str(out, self.path);
        out.extend_from_slice(b",\"route\":");
        json_str(out, self.route);
        out.extend_from_slice(b",\"upstream\":");
        json_str(out, self.upstream);
        out.extend_from_slice(b",\"server\":");
        match self.server {
            Some(a) => json_str(out, a),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"status\":");
        int(out, self.status);
        out.extend_from_slice(b",\"bytes_in\":");
        int(out, self.bytes_in);
        out.extend_from_slice(b",\"bytes_out\":");
        int(out, self.bytes_out);
        out.extend_from_slice(b",\"duration_ms\":");
        fixed(out, self.duration_us, 1000, 3);
        out.extend_from_slice(b",\"upstream_ms\":");
        match self.upstream_us {
            Some(us) => fixed(out, us, 1000, 3),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"attempts\":");
        int(out, self.attempts);
        if let Some(e) = self.error {
            out.extend_from_slice(b",\"error\":");
            json_str(out, e);
        }
        if let Some(c) = self.cache {
            out.extend_from_slice(b",\"cache\":");
            json_str(out, c);
        }
        if self.aborted {
            out.extend_from_slice(b",\"aborted\":true");
        }
        out.extend_from_slice(b"}\n");
    }
}

/// Handle used by the request path.
pub struct AccessLog {
    buf: Option<Arc<Buffer>>,
    stats: Arc<GlobalStats>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Lines waiting for the writer. The request path only appends under a short lock and wakes
/// the writer only when the buffer crosses [`FLUSH_AT`] (about one request in 200 when busy),
/// so logging costs no context switch per request (measured: a wake-per-line channel spent
/// ~40% of the gateway's CPU switching). Flushing at a size, not only on a clock, keeps each
/// write short: the writer shares the core with the runtime, and one write of a busy 50 ms'
/// lines (about a megabyte) held the runtime off for long enough to show in the p99.
struct Buffer {
    lines: Mutex<Vec<u8>>,
    ready: Condvar,
    closed: AtomicBool,
}

/// Most bytes held between flushes; past this, lines are dropped and counted.
const MAX_PENDING: usize = 8 << 20;
/// How often the writer flushes at the latest.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pending bytes that make the writer flush before its interval.
const FLUSH_AT: usize = 64 * 1024;

impl AccessLog {
    /// Starts the writer for `sink`. Opening a file can fail; the error says which file.
    pub fn start(sink: &Sink, stats: Arc<GlobalStats>) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            Sink::Off => {
                return Ok(Self {
                    buf: None,
                    stats,
                    writer: Mutex::new(None),
                })
            }
            Sink::Stdout => Box::new(std::io::stdout()),
            Sink::File(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("access log {}: {e}", p.display()))
                    })?,
            ),
        };
        let buf = Arc::new(Buffer {
            lines: Mutex::new(Vec::with_capacity(256 * 1024)),
            ready: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        let writer_buf = buf.clone();
        let writer_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("ballast-access-log".into())
            .spawn(move || writer(writer_buf, out, &writer_stats))?;
        Ok(Self {
            buf: Some(buf),
            stats,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.buf.is_some()
    }

    /// Appends one entry; never blocks on I/O.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(buf) = &self.buf else { return };
        let mut lines = buf.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() > MAX_PENDING {
            drop(lines);
            self.stats.access_log_dropped.fetch_add(1, Relaxed);
            return;
        }
        let before = lines.len();
        entry.write_json(&mut lines);
        let crossed = before < FLUSH_AT && lines.len() >= FLUSH_AT;
        drop(lines);
        if crossed {
            buf.ready.notify_one();
        }
    }
}

impl AccessLog {
    /// Writes out everything logged so far and stops the writer (at shutdown).
    pub fn close(&self) {
        if let Some(buf) = &self.buf {
            buf.closed.store(true, Relaxed);
            buf.ready.notify_one();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if let Some(buf) = &self.buf {
            buf.closed.store(true, Relaxed);
            buf.ready.notify_one();
        }
    }
}

/// Microseconds since the Unix epoch, for the `time` field.
pub fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64
}

/// Swaps the buffer out every [`FLUSH_EVERY`], or once [`FLUSH_AT`] bytes wait, and writes
/// it; exits after a final flush once the log is replaced (reload) or the process ends. Lines
/// that cannot be written (a full disk, a file size limit) are counted as dropped, and the
/// failure is logged once until a write succeeds again.
fn writer(buf: Arc<Buffer>, mut out: Box<dyn Write + Send>, stats: &GlobalStats) {
    let mut spare = Vec::with_capacity(256 * 1024);
    let mut failing = false;
    loop {
        let closed = {
            let lines = buf.lines.lock().unwrap_or_else(|e| e.into_inner());
            let (mut lines, _) = buf
                .ready
                .wait_timeout_while(lines, FLUSH_EVERY, |l| {
                    l.len() < FLUSH_AT && !buf.closed.load(Relaxed)
                })
                .unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *lines, &mut spare);
            buf.closed.load(Relaxed)
        };
        if !spare.is_empty() {
            match out.write_all(&spare).and_then(|()| out.flush()) {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("access log writable again");
                }
                Ok(()) => {}
                Err(e) => {
                    // Part of the buffer may have been written; count the whole of it as lost.
                    let lines = spare.iter().filter(|&&b| b == b'\n').count() as u64;
                    stats.access_log_dropped.fetch_add(lines, Relaxed);
                    if !failing {
                        failing = true;
                        tracing::error!(error = %e, "access log lines cannot be written; dropping and counting them (ballast_access_log_dropped_total)");
                    }
                }
            }
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json_with_escapes() {
        let e = Entry {
            time_us: 1_700_000_000_123_456,
            request_id: "id\"with\\quote\u{1}",
            client: "127.0.0.1",
            listener: "web",
            method: "GET",
            host: "a.example",
            path: "/p\nq",
            route: "r",
            upstream: "u",
            server: Some("127.0.0.1:9101"),
            status: 200,
            bytes_in: 0,
            bytes_out: 17,
            duration_us: 1_234,
            upstream_us: None,
            attempts: 1,
            error: Some("no_server"),
            cache: Some("stale"),
            aborted: true,
        };
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["request_id"], "id\"with\\quote\u{1}");
        assert_eq!(v["path"], "/p\nq");
        assert_eq!(v["time"], 1_700_000_000.123456);
        assert_eq!(v["duration_ms"], 1.234);
        let mut out2 = Vec::new();
        Entry {
            time_us: 5_000_007,
            duration_us: 2_005,
            upstream_us: Some(40),
            ..e
        }
        .write_json(&mut out2);
        let w: serde_json::Value = serde_json::from_slice(&out2).expect("valid JSON");
        assert_eq!(w["time"], 5.000007);
        assert_eq!(w["duration_ms"], 2.005);
        assert_eq!(w["upstream_ms"], 0.04);
        assert_eq!(v["upstream_ms"], serde_json::Value::Null);
        assert_eq!(v["server"], "127.0.0.1:9101");
        assert_eq!(v["error"], "no_server");
        assert_eq!(v["aborted"], true);
        assert_eq!(v["cache"], "stale");
        assert_eq!(w.get("cache"), Some(&serde_json::json!("stale")));
    }
}

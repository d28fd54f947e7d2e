//! The access log: one JSON object per request, written by a background task.
//!
//! The request path formats its line into a shared buffer; a writer thread flushes it every
//! 50 ms. When the writer falls behind (more than 8 MiB pending), lines are dropped and counted
//! (`ballast_access_log_dropped_total`) rather than ever making a client wait on a disk.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::stats::GlobalStats;

/// Where lines go.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    Off,
    Stdout,
    File(PathBuf),
}

/// One request, as logged.
#[derive(Serialize)]
pub struct Entry<'a> {
    pub time: f64,
    pub request_id: &'a str,
    pub client: String,
    pub listener: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub upstream: &'a str,
    pub server: Option<String>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: f64,
    pub upstream_ms: Option<f64>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub aborted: bool,
}

/// Handle used by the request path.
pub struct AccessLog {
    buf: Option<Arc<Buffer>>,
    stats: Arc<GlobalStats>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Lines waiting for the writer. The request path only appends under a short lock; it never
/// wakes the writer, which flushes on its own clock, so logging costs no context switch per
/// request (measured: a wake-per-line channel spent ~40% of the gateway's CPU switching).
struct Buffer {
    lines: Mutex<Vec<u8>>,
    closed: AtomicBool,
}

/// Most bytes held between flushes; past this, lines are dropped and counted.
const MAX_PENDING: usize = 8 << 20;
/// How often the writer flushes.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

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
            closed: AtomicBool::new(false),
        });
        let writer_buf = buf.clone();
        let handle = std::thread::Builder::new()
            .name("ballast-access-log".into())
            .spawn(move || writer(writer_buf, out))?;
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
        let start = lines.len();
        if serde_json::to_writer(&mut *lines, entry).is_err() {
            lines.truncate(start);
            return;
        }
        lines.push(b'\n');
    }
}

impl AccessLog {
    /// Writes out everything logged so far and stops the writer (at shutdown).
    pub fn close(&self) {
        if let Some(buf) = &self.buf {
            buf.closed.store(true, Relaxed);
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
        }
    }
}

/// Seconds since the Unix epoch, for the `time` field.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// Swaps the buffer out every [`FLUSH_EVERY`] and writes it; exits after a final flush once
/// the log is replaced (reload) or the process ends.
fn writer(buf: Arc<Buffer>, mut out: Box<dyn Write + Send>) {
    let mut spare = Vec::with_capacity(256 * 1024);
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let closed = buf.closed.load(Relaxed);
        {
            let mut lines = buf.lines.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *lines, &mut spare);
        }
        if !spare.is_empty() {
            let _ = out.write_all(&spare);
            let _ = out.flush();
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

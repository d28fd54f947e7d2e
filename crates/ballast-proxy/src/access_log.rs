//! The access log: one JSON object per request, written by a background task.
//!
//! The request path formats its line and hands it over with `try_send`; when the writer falls
//! behind, lines are dropped and counted (`ballast_access_log_dropped_total`) rather than ever
//! making a client wait on a disk.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;

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
    tx: Option<mpsc::Sender<Vec<u8>>>,
    stats: Arc<GlobalStats>,
}

const QUEUE: usize = 65_536;

impl AccessLog {
    /// Starts the writer for `sink`. Opening a file can fail; the error says which file.
    pub fn start(sink: &Sink, stats: Arc<GlobalStats>) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            Sink::Off => return Ok(Self { tx: None, stats }),
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
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("ballast-access-log".into())
            .spawn(move || writer(rx, out))?;
        Ok(Self {
            tx: Some(tx),
            stats,
        })
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues one entry; never blocks.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut line = Vec::with_capacity(320);
        if serde_json::to_writer(&mut line, entry).is_err() {
            return;
        }
        line.push(b'\n');
        if tx.try_send(line).is_err() {
            self.stats.access_log_dropped.fetch_add(1, Relaxed);
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

/// Drains the queue in batches on a plain thread, flushing when the queue runs dry.
fn writer(mut rx: mpsc::Receiver<Vec<u8>>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Some(line) = rx.blocking_recv() {
        let _ = out.write_all(&line);
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

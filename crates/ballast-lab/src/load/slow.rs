//! Slow clients ("slowloris"): connections that send a request head one byte at a time and
//! never finish it. They cost an attacker nothing and tie up a connection slot (or a worker)
//! in a proxy that waits for them; the slow-client scenario runs them alongside normal load
//! to see whether the proxy sheds them and keeps serving everyone else.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn::connect_tcp;

/// One more byte of the never-ending head this often.
const BYTE_EVERY: Duration = Duration::from_secs(1);
/// Pause before reconnecting after the server closed a connection or refused one.
const REOPEN_PAUSE: Duration = Duration::from_millis(250);
/// Header lines sent byte by byte, over and over; the blank line that would end the head
/// never comes.
const FILLER: &[u8] = b"X-Lab-Slow: 1\r\n";

/// What the slow clients went through.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SlowStats {
    /// Connections opened (including reopenings).
    pub opened: u64,
    /// Connections still open when the duration was over.
    pub open_at_end: u64,
    /// Connections the server closed (or reset) while they trickled.
    pub closed_by_server: u64,
    /// Connection attempts that failed.
    pub connect_errors: u64,
}

/// Keeps `count` slow connections to `target` for `duration`, reopening those the server
/// closes; from `source_ip` when set.
pub async fn slow_clients(
    target: SocketAddr,
    count: usize,
    duration: Duration,
    source_ip: Option<IpAddr>,
) -> SlowStats {
    let end = Instant::now() + duration;
    let head: Vec<u8> = format!("GET / HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    let head: std::sync::Arc<[u8]> = head.into();
    let mut clients = JoinSet::new();
    for _ in 0..count {
        clients.spawn(slow_client(target, source_ip, end, head.clone()));
    }
    let mut total = SlowStats::default();
    while let Some(joined) = clients.join_next().await {
        if let Ok(s) = joined {
            total.opened += s.opened;
            total.open_at_end += s.open_at_end;
            total.closed_by_server += s.closed_by_server;
            total.connect_errors += s.connect_errors;
        }
    }
    total
}

async fn slow_client(
    target: SocketAddr,
    source_ip: Option<IpAddr>,
    end: Instant,
    head: std::sync::Arc<[u8]>,
) -> SlowStats {
    let mut stats = SlowStats::default();
    // Spread the clients over the first second, so their bytes do not all arrive together.
    let jitter = Duration::from_millis(fastrand::u64(0..1000));
    tokio::time::sleep_until((Instant::now() + jitter).min(end)).await;
    while Instant::now() < end {
        let stream = match tokio::time::timeout_at(end, connect_tcp(target, source_ip)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => {
                stats.connect_errors += 1;
                pause(end).await;
                continue;
            }
            Err(_) => break,
        };
        stats.opened += 1;
        if trickle(stream, end, &head).await {
            stats.open_at_end = 1;
            break;
        }
        stats.closed_by_server += 1;
        pause(end).await;
    }
    stats
}

async fn pause(end: Instant) {
    tokio::time::sleep_until((Instant::now() + REOPEN_PAUSE).min(end)).await;
}

/// Trickles the head until `end` (true) or until the server closes the connection (false).
async fn trickle(stream: TcpStream, end: Instant, head: &[u8]) -> bool {
    let (mut rd, mut wr) = stream.into_split();
    if wr.write_all(head).await.is_err() {
        return false;
    }
    let mut tick = tokio::time::interval_at(Instant::now() + BYTE_EVERY, BYTE_EVERY);
    let mut buf = [0u8; 1024];
    let mut next = 0usize;
    let over = tokio::time::sleep_until(end);
    tokio::pin!(over);
    loop {
        tokio::select! {
            _ = &mut over => return true,
            r = rd.read(&mut buf) => match r {
                // Whatever the server says (a 408, a 400), only its closing counts.
                Ok(n) if n > 0 => {}
                _ => return false,
            },
            _ = tick.tick() => {
                let byte = FILLER[next % FILLER.len()];
                next = next.wrapping_add(1);
                if wr.write_all(&[byte]).await.is_err() {
                    return false;
                }
            }
        }
    }
}

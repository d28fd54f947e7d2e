//! Top talkers: which client addresses, paths and statuses had the most requests, per minute,
//! for the last 15 minutes, from the gateway's own traffic.
//!
//! An incident record needs "who was hitting us" from the first minutes, and in a flood that
//! is mostly refused requests, which reach no upstream and no backend log. So every request the
//! gateway answers (proxied or refused) is counted here, once, when its exchange completes.
//!
//! Two constraints shape it:
//!
//! - **Bounded memory whatever the traffic.** Each minute keeps, per dimension, a space-saving
//!   sketch of [`TOP_K`] slots ([`sketch`]); the ring holds [`MINUTES`] minutes and a bucket is
//!   cleared in place when its slot comes round again. Paths are cut to [`PATH_MAX`] bytes. The
//!   worst case is `shards × 15 × 3 × 64` slots: about 15 KB per minute and 230 KB per shard
//!   with every path at its longest (two shards per CPU, 4 to 32: 1 MB to 7.5 MB), allocated
//!   as minutes are used. A flood of random paths or addresses only replaces slots.
//! - **The data plane never waits.** The counters are sharded; a thread always starts at the
//!   shard it was given on first use and only ever `try_lock`s it (then one neighbour). When
//!   both are busy (a reader is merging them), the request is not counted and the miss is
//!   counted in `dropped` instead. Readers lock one shard at a time, briefly.
//!
//! Counts are estimates when a minute saw more than [`TOP_K`] distinct keys of a dimension in
//! one shard: a key that dominates is always held with about its true count; a rare one may be
//! missing. `BALLAST_TALKERS=off` in the environment turns the counting off, for measuring its
//! cost.

pub mod sketch;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_core::TopTalkers;

use crate::gateway::Gateway;
use sketch::SpaceSaving;

/// Keys kept per dimension, per minute, per shard.
pub const TOP_K: usize = 64;
/// Minutes kept, the current one included.
pub const MINUTES: u64 = 15;
/// Paths are counted cut to this many bytes.
pub const PATH_MAX: usize = 128;
const MINUTE_MS: u64 = 60_000;

/// One minute of one shard.
struct Bucket {
    /// Unix minute it counts; 0 = never used.
    minute: u64,
    clients: SpaceSaving<IpAddr>,
    paths: SpaceSaving<String>,
    statuses: SpaceSaving<u16>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            minute: 0,
            clients: SpaceSaving::new(TOP_K),
            paths: SpaceSaving::new(TOP_K),
            statuses: SpaceSaving::new(TOP_K),
        }
    }
}

struct Shard {
    ring: Vec<Bucket>,
}

impl Shard {
    fn add(&mut self, minute: u64, client: IpAddr, path: &str, status: u16) {
        let b = &mut self.ring[(minute % MINUTES) as usize];
        if b.minute != minute {
            b.minute = minute;
            b.clients.clear();
            b.paths.clear();
            b.statuses.clear();
        }
        b.clients.add(&client);
        b.paths.add(path);
        b.statuses.add(&status);
    }
}

/// The top-talker counters of one gateway (they live in [`crate::shared::Shared`] and survive
/// reloads).
pub struct Talkers {
    enabled: bool,
    shards: Box<[Mutex<Shard>]>,
    dropped: AtomicU64,
}

impl Default for Talkers {
    /// On, unless `BALLAST_TALKERS=off`; two shards per CPU.
    fn default() -> Self {
        let enabled = std::env::var("BALLAST_TALKERS").map_or(true, |v| v != "off");
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        Talkers::new(enabled, (cpus * 2).clamp(4, 32))
    }
}

/// The shard index of the calling thread: handed out in order on first use, so a runtime's
/// worker threads get distinct shards.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Relaxed);
    }
    SLOT.with(|s| *s)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `path` cut to at most [`PATH_MAX`] bytes, on a character boundary.
fn cut(path: &str) -> &str {
    if path.len() <= PATH_MAX {
        return path;
    }
    let mut end = PATH_MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Per-dimension sums while merging shards and minutes.
#[derive(Default)]
struct Merged {
    clients: HashMap<IpAddr, u64>,
    paths: HashMap<String, u64>,
    statuses: HashMap<u16, u64>,
}

impl Talkers {
    pub fn new(enabled: bool, shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    ring: (0..MINUTES).map(|_| Bucket::new()).collect(),
                })
            })
            .collect();
        Talkers {
            enabled,
            shards,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts one answered request: the client's IP, the path without its query, the status.
    pub fn record(&self, client: IpAddr, path: &str, status: u16) {
        if self.enabled {
            self.record_at(unix_ms(), client, path, status);
        }
    }

    /// [`Talkers::record`] at a time the caller already read (Unix ms), counted even when off.
    pub fn record_at(&self, now_ms: u64, client: IpAddr, path: &str, status: u16) {
        let minute = now_ms / MINUTE_MS;
        let (client, path) = (client.to_canonical(), cut(path));
        let n = self.shards.len();
        let first = thread_slot() % n;
        for i in 0..2.min(n) {
            match self.shards[(first + i) % n].try_lock() {
                Ok(mut s) => return s.add(minute, client, path, status),
                Err(TryLockError::Poisoned(p)) => {
                    return p.into_inner().add(minute, client, path, status)
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Requests not counted because their shards were busy.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// The top `limit` of each dimension over the minutes that overlap `[since, until]` (Unix
    /// ms), within the last [`MINUTES`] minutes.
    pub fn top(&self, since_unix_ms: u64, until_unix_ms: u64, limit: usize) -> TopTalkers {
        self.top_at(unix_ms(), since_unix_ms, until_unix_ms, limit)
    }

    fn top_at(&self, now_ms: u64, since: u64, until: u64, limit: usize) -> TopTalkers {
        let now_minute = now_ms / MINUTE_MS;
        let oldest = now_minute.saturating_sub(MINUTES - 1);
        let since = since.max(oldest * MINUTE_MS);
        let until = until.min(now_ms);
        let mut m = Merged::default();
        if since <= until {
            for shard in self.shards.iter() {
                let s = shard.lock().unwrap_or_else(|e| e.into_inner());
                for b in &s.ring {
                    let (start, end) = (b.minute * MINUTE_MS, (b.minute + 1) * MINUTE_MS);
                    if b.minute == 0 || b.minute < oldest || end <= since || start > until {
                        continue;
                    }
                    for (k, c) in b.clients.iter() {
                        *m.clients.entry(*k).or_default() += c;
                    }
                    for (k, c) in b.paths.iter() {
                        match m.paths.get_mut(k.as_str()) {
                            Some(n) => *n += c,
                            None => {
                                m.paths.insert(k.clone(), c);
                            }
                        }
                    }
                    for (k, c) in b.statuses.iter() {
                        *m.statuses.entry(*k).or_default() += c;
                    }
                }
            }
        }
        TopTalkers {
            since_unix_ms: since,
            until_unix_ms: until,
            clients: TopTalkers::rank(
                m.clients.into_iter().map(|(k, c)| (k.to_string(), c)),
                limit,
            ),
            paths: TopTalkers::rank(m.paths, limit),
            statuses: TopTalkers::rank(
                m.statuses.into_iter().map(|(k, c)| (k.to_string(), c)),
                limit,
            ),
            dropped: self.dropped(),
        }
    }
}

impl Gateway {
    /// The client addresses, paths and statuses with the most requests over the minutes that
    /// overlap `[since_unix_ms, until_unix_ms]` (whole minutes, the last 15 at most), `limit`
    /// of each, most first. Proxied and refused requests alike. Never blocks a request.
    pub fn top_talkers(&self, since_unix_ms: u64, until_unix_ms: u64, limit: usize) -> TopTalkers {
        self.inner
            .shared
            .talkers
            .top(since_unix_ms, until_unix_ms, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000; // a whole minute

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn keys(v: &[ballast_core::Talker]) -> Vec<(&str, u64)> {
        v.iter().map(|t| (t.key.as_str(), t.requests)).collect()
    }

    #[test]
    fn counts_each_dimension_and_ranks() {
        let t = Talkers::new(true, 4);
        for i in 0..30 {
            let (who, path, status) = if i < 20 {
                ("10.0.0.1", "/flood", 429)
            } else {
                ("10.0.0.2", "/ok", 200)
            };
            t.record_at(T0 + i, ip(who), path, status);
        }
        let top = t.top_at(T0 + 1_000, T0, T0 + 1_000, 10);
        assert_eq!(keys(&top.clients), [("10.0.0.1", 20), ("10.0.0.2", 10)]);
        assert_eq!(keys(&top.paths), [("/flood", 20), ("/ok", 10)]);
        assert_eq!(keys(&top.statuses), [("429", 20), ("200", 10)]);
        assert_eq!((top.since_unix_ms, top.until_unix_ms), (T0, T0 + 1_000));
        let one = t.top_at(T0 + 1_000, T0, T0 + 1_000, 1);
        assert_eq!(keys(&one.clients), [("10.0.0.1", 20)]);
    }

    #[test]
    fn buckets_expire_after_fifteen_minutes() {
        let t = Talkers::new(true, 1);
        t.record_at(T0, ip("10.0.0.1"), "/old", 200);
        t.record_at(T0 + 5 * MINUTE_MS, ip("10.0.0.2"), "/mid", 200);
        // Within the window both minutes count.
        let now = T0 + 14 * MINUTE_MS;
        let top = t.top_at(now, 0, now, 10);
        assert_eq!(keys(&top.paths), [("/mid", 1), ("/old", 1)]);
        assert_eq!(top.since_unix_ms, T0, "clamped to the oldest minute kept");
        // A minute later the first has left, though its slot was not reused yet.
        let now = T0 + 15 * MINUTE_MS;
        let top = t.top_at(now, 0, now, 10);
        assert_eq!(keys(&top.paths), [("/mid", 1)]);
        // Its slot comes round again and starts from zero.
        t.record_at(now, ip("10.0.0.3"), "/new", 200);
        let top = t.top_at(now, 0, now, 10);
        assert_eq!(keys(&top.paths), [("/mid", 1), ("/new", 1)]);
        // And a window that asks for a span picks only the minutes that overlap it.
        let top = t.top_at(now, now - 30_000, now, 10);
        assert_eq!(keys(&top.paths), [("/new", 1)]);
    }

    #[test]
    fn a_flood_of_random_keys_keeps_memory_bounded() {
        let t = Talkers::new(true, 1);
        for i in 0..100_000u32 {
            let client = IpAddr::from(i.to_be_bytes());
            t.record_at(T0 + u64::from(i), client, &format!("/r/{i}"), 200);
        }
        let s = t.shards[0].lock().unwrap();
        for b in &s.ring {
            assert!(b.clients.allocated() <= TOP_K);
            assert!(b.paths.allocated() <= TOP_K);
            assert!(b.statuses.allocated() <= TOP_K);
        }
        let b = &s.ring[((T0 / MINUTE_MS) % MINUTES) as usize];
        assert_eq!(b.paths.total(), 60_000);
        assert_eq!(b.paths.len(), TOP_K);
    }

    #[test]
    fn busy_shards_drop_and_count_instead_of_waiting() {
        let t = Talkers::new(true, 2);
        let held: Vec<_> = t.shards.iter().map(|s| s.lock().unwrap()).collect();
        t.record_at(T0, ip("10.0.0.1"), "/", 200);
        drop(held);
        assert_eq!(t.dropped(), 1);
        let top = t.top_at(T0 + 1, T0, T0 + 1, 10);
        assert!(top.clients.is_empty());
        assert_eq!(top.dropped, 1);
    }

    #[test]
    fn threads_on_other_shards_are_merged() {
        let t = std::sync::Arc::new(Talkers::new(true, 4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        t.record_at(T0, ip("10.0.0.9"), "/", 200);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let top = t.top_at(T0 + 1, T0, T0 + 1, 10);
        assert_eq!(top.clients[0].requests + top.dropped, 4_000);
    }

    #[test]
    fn paths_are_cut_and_mapped_addresses_unmapped() {
        let t = Talkers::new(true, 1);
        let long = format!("/{}é", "a".repeat(126));
        t.record_at(T0, ip("::ffff:10.0.0.1"), &long, 200);
        let top = t.top_at(T0 + 1, T0, T0 + 1, 10);
        assert_eq!(top.clients[0].key, "10.0.0.1");
        assert_eq!(top.paths[0].key, format!("/{}", "a".repeat(126)));
    }

    #[test]
    fn off_counts_nothing() {
        let t = Talkers::new(false, 1);
        t.record(ip("10.0.0.1"), "/", 200);
        let now = unix_ms();
        assert!(t.top(0, now, 10).clients.is_empty());
    }
}

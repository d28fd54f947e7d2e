//! "Top talkers": the client addresses, request paths and response statuses that sent or got
//! the most requests over a span of time.
//!
//! When an incident opens, the first question is usually "who is hitting us, and where?". The
//! gateway answers it from its own bounded heavy-hitter counters (per-minute buckets, the most
//! frequent keys of each), so this value is what the data plane, the admin API and the incident
//! record agree on. The counts are the gateway's estimates: exact while a minute saw few
//! distinct keys, and never off for a key that dominates the traffic.

use serde::{Deserialize, Serialize};

/// One key (a client IP, a path, a status code as text) and its request count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talker {
    pub key: String,
    pub requests: u64,
}

/// The top talkers of each dimension over `[since_unix_ms, until_unix_ms]`, each list sorted
/// by `requests`, most first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopTalkers {
    pub since_unix_ms: u64,
    pub until_unix_ms: u64,
    /// Client addresses (the TCP peer's IP, no port).
    pub clients: Vec<Talker>,
    /// Request paths, without the query string, cut to 128 bytes.
    pub paths: Vec<Talker>,
    /// Response status codes.
    pub statuses: Vec<Talker>,
    /// Requests left out of the counts because the gateway's counter was busy at that moment
    /// (the data plane never waits for it); cumulative since the gateway started.
    #[serde(default)]
    pub dropped: u64,
}

impl TopTalkers {
    /// Sorts a dimension's counts for [`TopTalkers`]: most requests first, ties by key, then
    /// cut to `limit`.
    pub fn rank(counts: impl IntoIterator<Item = (String, u64)>, limit: usize) -> Vec<Talker> {
        let mut v: Vec<Talker> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(key, requests)| Talker { key, requests })
            .collect();
        v.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.key.cmp(&b.key)));
        v.truncate(limit);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_sorts_by_requests_then_key_and_cuts() {
        let v = TopTalkers::rank(
            [
                ("b".to_string(), 5),
                ("a".to_string(), 5),
                ("c".to_string(), 9),
                ("d".to_string(), 0),
                ("e".to_string(), 1),
            ],
            3,
        );
        let keys: Vec<_> = v.iter().map(|t| (t.key.as_str(), t.requests)).collect();
        assert_eq!(keys, [("c", 9), ("a", 5), ("b", 5)]);
    }

    #[test]
    fn round_trips_through_json() {
        let t = TopTalkers {
            since_unix_ms: 1,
            until_unix_ms: 2,
            clients: vec![Talker {
                key: "127.0.0.2".into(),
                requests: 3,
            }],
            ..Default::default()
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<TopTalkers>(&s).unwrap(), t);
    }
}

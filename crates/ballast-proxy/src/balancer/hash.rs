//! Consistent hashing on a request key.
//!
//! Exists for affinity: requests with the same key (client address, a header such as a
//! tenant id, a session cookie, or the path) go to the same server, which keeps per-server
//! caches warm and sessions local, while a change in the pool disturbs as few keys as possible.
//!
//! The ring is built once from *all* servers of the upstream (not only the eligible ones), so
//! it does not change when servers fail or recover. Each server places virtual nodes on a
//! 64-bit ring in proportion to its configured weight (100 per unit of weight, scaled down
//! when the whole ring would exceed [`MAX_POINTS`], never fewer than [`MIN_POINTS`]). Points
//! are derived from the server's *address* and the replica number, so a server keeps its
//! points when others are added or removed: adding one server to N moves about 1/(N+1) of
//! the keys, all of them to the new server.
//!
//! Hashing uses FNV-1a 64 followed by the splitmix64 finaliser, a stable function written
//! here (the standard `DefaultHasher` may change between Rust releases and is randomly keyed
//! per process, which would break affinity across restarts and between instances).
//!
//! A pick hashes the key, finds by binary search the first point at or after the hash and
//! walks clockwise to the first point whose server is a candidate. An ineligible server's
//! keys therefore spill onto its ring neighbours, and only its keys move. A missing key
//! (no such header or cookie, or a TCP connection, which has no headers) falls back to the
//! client address.

use std::net::{IpAddr, SocketAddr};

use ballast_config::HashKey;
use smallvec::SmallVec;

use super::{Balancer, Candidate, PickContext};

/// Virtual nodes per unit of weight.
const POINTS_PER_WEIGHT: u64 = 100;
/// Upper bound on the number of points of one ring (about 1.2 MB).
const MAX_POINTS: u64 = 100_000;
/// Lower bound on the number of points of one server, whatever the scaling.
const MIN_POINTS: u64 = 10;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over `parts` (each followed by a separator byte so that part boundaries count),
/// then the splitmix64 finaliser to spread FNV's weak low-entropy outputs over the ring.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h = FNV_OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(FNV_PRIME);
    }
    splitmix64(h)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) struct ConsistentHash {
    key: HashKey,
    /// Ring positions, sorted ascending.
    points: Vec<u64>,
    /// Server index owning each point, parallel to `points`.
    owners: Vec<u32>,
    /// Number of servers the ring was built for.
    servers: usize,
}

impl ConsistentHash {
    pub(super) fn new(key: HashKey, servers: &[(SocketAddr, u32)]) -> Self {
        let total: u64 = servers
            .iter()
            .map(|&(_, w)| POINTS_PER_WEIGHT * u64::from(w.max(1)))
            .sum();
        let mut ring: Vec<(u64, u32)> = Vec::new();
        for (index, &(addr, weight)) in servers.iter().enumerate() {
            let wanted = POINTS_PER_WEIGHT * u64::from(weight.max(1));
            let count = if total > MAX_POINTS {
                // u128 keeps the product exact; the result fits since wanted <= total.
                (u128::from(wanted) * u128::from(MAX_POINTS) / u128::from(total)) as u64
            } else {
                wanted
            }
            .max(MIN_POINTS);
            let addr_text = addr.to_string();
            // Same address listed twice: give each listing its own points.
            let duplicate = servers[..index].iter().filter(|(a, _)| *a == addr).count() as u64;
            let owner = u32::try_from(index).expect("fewer than 2^32 servers");
            for replica in 0..count {
                let point = stable_hash(&[
                    addr_text.as_bytes(),
                    &duplicate.to_le_bytes(),
                    &replica.to_le_bytes(),
                ]);
                ring.push((point, owner));
            }
        }
        ring.sort_unstable();
        let (points, owners) = ring.into_iter().unzip();
        Self {
            key,
            points,
            owners,
            servers: servers.len(),
        }
    }

    /// Hash of the request's key, falling back to the client address.
    fn key_hash(&self, ctx: &PickContext<'_>) -> u64 {
        match &self.key {
            HashKey::ClientIp => ip_hash(ctx.client_ip),
            HashKey::Path => stable_hash(&[b"path", ctx.path.as_bytes()]),
            HashKey::Header(name) => match ctx.headers.and_then(|h| h.get(name)) {
                Some(value) => stable_hash(&[b"header", value.as_bytes()]),
                None => ip_hash(ctx.client_ip),
            },
            HashKey::Cookie(name) => match ctx.headers.and_then(|h| cookie(h, name)) {
                Some(value) => stable_hash(&[b"cookie", value]),
                None => ip_hash(ctx.client_ip),
            },
        }
    }

    /// Candidate position for a key hash.
    fn locate(&self, hash: u64, candidates: &[Candidate<'_>]) -> usize {
        if candidates.len() == 1 || self.points.is_empty() {
            return 0;
        }
        // Server index -> candidate position + 1 (0 = not a candidate).
        let mut slot: SmallVec<[u32; 32]> = SmallVec::from_elem(0, self.servers);
        for (pos, c) in candidates.iter().enumerate() {
            if let Some(s) = slot.get_mut(c.index) {
                *s = pos as u32 + 1;
            }
        }
        let len = self.points.len();
        let start = self.points.partition_point(|&p| p < hash);
        for step in 0..len {
            let owner = self.owners[(start + step) % len] as usize;
            let s = slot[owner];
            if s != 0 {
                return s as usize - 1;
            }
        }
        // No candidate is on the ring (indexes outside the configured servers): still
        // map the key deterministically.
        (hash % candidates.len() as u64) as usize
    }
}

fn ip_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => stable_hash(&[b"ip", &v4.octets()]),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // The same client seen through a dual-stack socket hashes alike.
            Some(v4) => stable_hash(&[b"ip", &v4.octets()]),
            None => stable_hash(&[b"ip", &v6.octets()]),
        },
    }
}

/// Value of the cookie `name` across all `Cookie` headers (first occurrence wins).
fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}

impl Balancer for ConsistentHash {
    fn pick(&self, candidates: &[Candidate<'_>], ctx: &PickContext<'_>) -> usize {
        self.locate(self.key_hash(ctx), candidates)
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::super::test_util::candidates;
    use super::*;
    use crate::balancer::Load;

    fn servers(n: usize) -> Vec<(SocketAddr, u32)> {
        (0..n)
            .map(|i| (SocketAddr::from(([10, 0, 0, i as u8 + 1], 8080)), 1))
            .collect()
    }

    fn loads(n: usize) -> Vec<Load> {
        (0..n).map(|_| Load::new()).collect()
    }

    fn path_ctx(path: &str) -> PickContext<'_> {
        PickContext {
            client_ip: IpAddr::from([192, 0, 2, 1]),
            headers: None,
            path,
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/item/{i}")).collect()
    }

    /// Server index chosen for each key.
    fn assign(b: &ConsistentHash, cands: &[Candidate<'_>], keys: &[String]) -> Vec<usize> {
        keys.iter()
            .map(|k| cands[b.pick(cands, &path_ctx(k))].index)
            .collect()
    }

    #[test]
    fn hash_is_stable() {
        // Pinned values: changing the function would silently reshuffle every deployment.
        assert_eq!(stable_hash(&[]), splitmix64(FNV_OFFSET));
        assert_eq!(stable_hash(&[b"a", b"bc"]), stable_hash(&[b"a", b"bc"]));
        assert_ne!(stable_hash(&[b"a", b"bc"]), stable_hash(&[b"ab", b"c"]));
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn same_key_same_server() {
        let s = servers(5);
        let l = loads(5);
        let cands = candidates(&l, &[1.0; 5]);
        let a = ConsistentHash::new(HashKey::Path, &s);
        let b = ConsistentHash::new(HashKey::Path, &s);
        let k = keys(1_000);
        let first = assign(&a, &cands, &k);
        assert_eq!(first, assign(&a, &cands, &k));
        assert_eq!(first, assign(&b, &cands, &k), "independent of the instance");
        // Every server gets a fair share.
        for server in 0..5 {
            let n = first.iter().filter(|&&x| x == server).count();
            assert!((100..=350).contains(&n), "server {server}: {n}");
        }
    }

    #[test]
    fn adding_a_server_moves_about_one_in_n_plus_one() {
        let k = keys(10_000);
        let l = loads(5);
        let four = ConsistentHash::new(HashKey::Path, &servers(4));
        let five = ConsistentHash::new(HashKey::Path, &servers(5));
        let before = assign(&four, &candidates(&l[..4], &[1.0; 4]), &k);
        let after = assign(&five, &candidates(&l, &[1.0; 5]), &k);
        let moved: Vec<usize> = (0..k.len()).filter(|&i| before[i] != after[i]).collect();
        let share = moved.len() as f64 / k.len() as f64;
        assert!((0.10..=0.30).contains(&share), "moved {share}");
        // All moved keys went to the new server.
        assert!(moved.iter().all(|&i| after[i] == 4));
    }

    #[test]
    fn ineligible_server_only_moves_its_keys() {
        let s = servers(5);
        let l = loads(5);
        let all = candidates(&l, &[1.0; 5]);
        let ring = ConsistentHash::new(HashKey::Path, &s);
        let k = keys(10_000);
        let before = assign(&ring, &all, &k);
        let without: Vec<Candidate<'_>> = all.iter().copied().filter(|c| c.index != 2).collect();
        let after = assign(&ring, &without, &k);
        let mut moved = 0;
        for i in 0..k.len() {
            if before[i] == 2 {
                assert_ne!(after[i], 2);
                moved += 1;
            } else {
                assert_eq!(before[i], after[i], "key {i} moved needlessly");
            }
        }
        assert!(moved > 0);
        // The orphaned keys spread over several neighbours, not onto one server.
        let receivers: std::collections::HashSet<usize> = (0..k.len())
            .filter(|&i| before[i] == 2)
            .map(|i| after[i])
            .collect();
        assert!(receivers.len() >= 3, "{receivers:?}");
    }

    #[test]
    fn weight_gives_proportional_share() {
        let mut s = servers(2);
        s[0].1 = 3;
        let l = loads(2);
        let ring = ConsistentHash::new(HashKey::Path, &s);
        let k = keys(10_000);
        let a = assign(&ring, &candidates(&l, &[3.0, 1.0]), &k);
        let heavy = a.iter().filter(|&&x| x == 0).count() as f64 / 10_000.0;
        assert!((0.65..=0.85).contains(&heavy), "{heavy}");
    }

    #[test]
    fn ring_size_is_capped() {
        let s: Vec<(SocketAddr, u32)> = servers(50).into_iter().map(|(a, _)| (a, 1000)).collect();
        let ring = ConsistentHash::new(HashKey::Path, &s);
        assert!(ring.points.len() as u64 <= MAX_POINTS + 50 * MIN_POINTS);
        let mut light = servers(2);
        light[0].1 = 1000;
        let ring = ConsistentHash::new(HashKey::Path, &light);
        assert!(ring.owners.iter().filter(|&&o| o == 1).count() as u64 >= MIN_POINTS);
    }

    #[test]
    fn candidate_positions_follow_the_slice_not_the_index() {
        let s = servers(3);
        let l = loads(3);
        let all = candidates(&l, &[1.0; 3]);
        let ring = ConsistentHash::new(HashKey::Path, &s);
        // Reversed slice: the returned position must still designate the same server.
        let reversed: Vec<Candidate<'_>> = all.iter().rev().copied().collect();
        let k = keys(500);
        assert_eq!(assign(&ring, &all, &k), assign(&ring, &reversed, &k));
    }

    #[test]
    fn header_key_with_fallback_to_client_ip() {
        let name = HeaderName::from_static("x-tenant");
        let ring = ConsistentHash::new(HashKey::Header(name.clone()), &servers(8));
        let l = loads(8);
        let cands = candidates(&l, &[1.0; 8]);
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_static("acme"));
        let mut chosen = std::collections::HashSet::new();
        for i in 0..50u8 {
            let ctx = PickContext {
                client_ip: IpAddr::from([198, 51, 100, i]),
                headers: Some(&headers),
                path: "/",
            };
            chosen.insert(ring.pick(&cands, &ctx));
        }
        assert_eq!(chosen.len(), 1, "the header decides, not the client");
        assert_eq!(
            ring.key_hash(&PickContext {
                client_ip: IpAddr::from([198, 51, 100, 7]),
                headers: Some(&headers),
                path: "/",
            }),
            stable_hash(&[b"header", b"acme"])
        );
        // No header, or TCP: the client address decides.
        let ip = IpAddr::from([203, 0, 113, 9]);
        let empty = HeaderMap::new();
        let no_header = PickContext {
            client_ip: ip,
            headers: Some(&empty),
            path: "/",
        };
        let tcp = PickContext {
            client_ip: ip,
            headers: None,
            path: "/",
        };
        assert_eq!(ring.key_hash(&no_header), ip_hash(ip));
        assert_eq!(ring.key_hash(&tcp), ip_hash(ip));
    }

    #[test]
    fn cookie_key_is_parsed_from_all_cookie_headers() {
        let ring = ConsistentHash::new(HashKey::Cookie("sid".into()), &servers(4));
        let ip = IpAddr::from([192, 0, 2, 44]);
        let hash_with = |values: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(http::header::COOKIE, HeaderValue::from_static(v));
            }
            ring.key_hash(&PickContext {
                client_ip: ip,
                headers: Some(&h),
                path: "/",
            })
        };
        let want = stable_hash(&[b"cookie", b"abc123"]);
        assert_eq!(hash_with(&["sid=abc123"]), want);
        assert_eq!(hash_with(&["theme=dark; sid=abc123; lang=en"]), want);
        assert_eq!(hash_with(&["theme=dark", "lang=en;sid = abc123"]), want);
        assert_eq!(hash_with(&["xsid=nope; sid=abc123"]), want);
        assert_eq!(hash_with(&["theme=dark"]), ip_hash(ip));
        assert_eq!(hash_with(&[]), ip_hash(ip));
    }

    #[test]
    fn client_ip_key() {
        let ring = ConsistentHash::new(HashKey::ClientIp, &servers(4));
        let l = loads(4);
        let cands = candidates(&l, &[1.0; 4]);
        let ctx = |ip: IpAddr, path| PickContext {
            client_ip: ip,
            headers: None,
            path,
        };
        let v4 = IpAddr::from([192, 0, 2, 200]);
        let mapped: IpAddr = "::ffff:192.0.2.200".parse().unwrap();
        assert_eq!(ring.key_hash(&ctx(v4, "/a")), ring.key_hash(&ctx(v4, "/b")));
        assert_eq!(
            ring.key_hash(&ctx(v4, "/")),
            ring.key_hash(&ctx(mapped, "/"))
        );
        let spread: std::collections::HashSet<usize> = (0..=255u8)
            .map(|i| ring.pick(&cands, &ctx(IpAddr::from([10, 1, 2, i]), "/")))
            .collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn build_dispatches_hash() {
        let b = super::super::build(&ballast_config::Balance::Hash(HashKey::Path), &servers(3));
        let l = loads(3);
        let cands = candidates(&l, &[1.0; 3]);
        let p = b.pick(&cands, &path_ctx("/x"));
        for _ in 0..10 {
            assert_eq!(b.pick(&cands, &path_ctx("/x")), p);
        }
    }
}

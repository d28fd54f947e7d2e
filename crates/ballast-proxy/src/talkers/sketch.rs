//! Space-saving heavy hitters (Metwally, Agrawal, El Abbadi, 2005) in a fixed number of slots.
//!
//! A flood of random paths or spoofed-looking addresses must not grow the gateway's memory, yet
//! the key that dominates the traffic must still come out on top with about its true count.
//! Space-saving does both: with `k` slots, a key seen more than `n / k` times out of `n` always
//! holds a slot, and its count is over by at most the smallest count in the sketch (the
//! `error` kept beside it). While there are at most `k` distinct keys, every count is exact.
//!
//! The slots are a small array scanned linearly with a precomputed hash (`k` is 64): no map, no
//! second copy of the keys, and a replaced key's buffer is reused, so after warm-up a request
//! allocates nothing.

use std::hash::{Hash, Hasher};

/// An owned key that can be compared with, and overwritten from, its borrowed form.
pub trait SlotKey<Q: ?Sized> {
    fn from_ref(q: &Q) -> Self;
    fn is(&self, q: &Q) -> bool;
    /// Becomes `q`, reusing its own allocation where it has one.
    fn assign(&mut self, q: &Q);
}

impl SlotKey<str> for String {
    fn from_ref(q: &str) -> Self {
        q.to_owned()
    }
    fn is(&self, q: &str) -> bool {
        self == q
    }
    fn assign(&mut self, q: &str) {
        self.clear();
        // Exactly: a buffer never holds more than the longest key it was given.
        self.reserve_exact(q.len());
        self.push_str(q);
    }
}

impl<T: Copy + PartialEq> SlotKey<T> for T {
    fn from_ref(q: &T) -> Self {
        *q
    }
    fn is(&self, q: &T) -> bool {
        self == q
    }
    fn assign(&mut self, q: &T) {
        *self = *q;
    }
}

/// The FxHash mix (as in rustc): a multiply and a rotate per word. The keys are short and are
/// only compared within one sketch, so a fast hash with weak guarantees is enough; a collision
/// costs one extra key comparison, never a wrong count.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

fn fx<Q: Hash + ?Sized>(q: &Q) -> u64 {
    let mut h = Fx::default();
    q.hash(&mut h);
    h.finish()
}

/// At most `cap` keys with their estimated counts. Slots are kept as parallel vectors so the
/// lookup scans one contiguous array of hashes.
#[derive(Clone)]
pub struct SpaceSaving<K> {
    cap: usize,
    hashes: Vec<u64>,
    counts: Vec<u64>,
    /// Per slot, how much of its count may belong to the keys it replaced.
    errors: Vec<u64>,
    keys: Vec<K>,
    total: u64,
}

impl<K> SpaceSaving<K> {
    /// An empty sketch of `cap` slots (at least one); nothing is allocated until the first key.
    pub fn new(cap: usize) -> Self {
        SpaceSaving {
            cap: cap.max(1),
            hashes: Vec::new(),
            counts: Vec::new(),
            errors: Vec::new(),
            keys: Vec::new(),
            total: 0,
        }
    }

    /// Counts one occurrence of `key`.
    pub fn add<Q: Hash + ?Sized>(&mut self, key: &Q)
    where
        K: SlotKey<Q>,
    {
        self.total += 1;
        let h = fx(key);
        let mut i = 0;
        while let Some(off) = self.hashes[i..].iter().position(|&x| x == h) {
            let at = i + off;
            if self.keys[at].is(key) {
                self.counts[at] += 1;
                return;
            }
            i = at + 1;
        }
        if self.keys.len() < self.cap {
            if self.keys.capacity() == 0 {
                self.hashes.reserve_exact(self.cap);
                self.counts.reserve_exact(self.cap);
                self.errors.reserve_exact(self.cap);
                self.keys.reserve_exact(self.cap);
            }
            self.hashes.push(h);
            self.counts.push(1);
            self.errors.push(0);
            self.keys.push(K::from_ref(key));
            return;
        }
        // Full: the key takes over the slot with the smallest count, and inherits it.
        let (min, &floor) = self
            .counts
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| **c)
            .expect("a full sketch has slots");
        self.hashes[min] = h;
        self.errors[min] = floor;
        self.counts[min] = floor + 1;
        self.keys[min].assign(key);
    }

    /// Every held key with its estimated count (an upper bound, over by at most its error).
    pub fn iter(&self) -> impl Iterator<Item = (&K, u64)> {
        self.keys.iter().zip(self.counts.iter().copied())
    }

    /// Every held key with its count and that count's possible overestimate.
    pub fn iter_with_error(&self) -> impl Iterator<Item = (&K, u64, u64)> {
        self.iter()
            .zip(self.errors.iter().copied())
            .map(|((k, c), e)| (k, c, e))
    }

    /// Occurrences counted, held or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Keys held now (at most the capacity).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Slots reserved; never more than the capacity, whatever was added.
    pub fn allocated(&self) -> usize {
        self.keys.capacity()
    }

    /// Forgets every key, keeping the allocations (and the key buffers' capacity is dropped
    /// with them only when the sketch itself goes).
    pub fn clear(&mut self) {
        self.hashes.clear();
        self.counts.clear();
        self.errors.clear();
        self.keys.clear();
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity() {
        let mut s = SpaceSaving::<String>::new(8);
        for (k, n) in [("/a", 5), ("/b", 3), ("/c", 1)] {
            for _ in 0..n {
                s.add(k);
            }
        }
        let mut got: Vec<_> = s.iter().map(|(k, c)| (k.clone(), c)).collect();
        got.sort();
        assert_eq!(
            got,
            [("/a".into(), 5), ("/b".into(), 3), ("/c".into(), 1)] as [(String, u64); 3]
        );
        assert!(s.iter_with_error().all(|(_, _, e)| e == 0));
        assert_eq!(s.total(), 9);
    }

    #[test]
    fn heavy_hitter_among_many_distinct_keys_is_found() {
        // 10% of 100,000 requests from one address, the rest from 90,000 distinct ones.
        let mut s = SpaceSaving::<u32>::new(64);
        let heavy = 0xdead_beef_u32;
        let mut sent = 0u64;
        for i in 0..100_000u32 {
            if i % 10 == 0 {
                s.add(&heavy);
                sent += 1;
            } else {
                s.add(&i);
            }
        }
        let (top, count, error) = s
            .iter_with_error()
            .max_by_key(|(_, c, _)| *c)
            .map(|(k, c, e)| (*k, c, e))
            .unwrap();
        assert_eq!(top, heavy);
        assert!(count >= sent, "space-saving never undercounts a held key");
        assert!(
            count - error <= sent,
            "the guaranteed part is a lower bound"
        );
        // Over by at most n / k.
        assert!(count - sent <= 100_000 / 64, "{count} vs {sent}");
    }

    #[test]
    fn memory_stays_bounded_under_100k_distinct_keys() {
        let mut s = SpaceSaving::<String>::new(64);
        let mut longest = 0;
        for i in 0..100_000u32 {
            let path = format!("/random/{i:08x}/{}", "x".repeat((i % 100) as usize));
            longest = longest.max(path.len());
            s.add(path.as_str());
        }
        assert_eq!(s.len(), 64);
        assert_eq!(s.allocated(), 64);
        assert!(s.keys.iter().all(|k| k.capacity() <= longest));
        assert_eq!(s.total(), 100_000);
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.allocated(), 64, "cleared in place");
    }

    #[test]
    fn colliding_hashes_still_compare_keys() {
        let mut s = SpaceSaving::<String>::new(4);
        // Forge a collision: a slot holding `/y` under the hash of `/x`.
        s.hashes.push(fx("/x"));
        s.counts.push(7);
        s.errors.push(0);
        s.keys.push("/y".to_string());
        s.add("/x");
        s.add("/x");
        let got: Vec<_> = s.iter().map(|(k, c)| (k.as_str(), c)).collect();
        assert_eq!(got, [("/y", 7), ("/x", 2)]);
    }
}

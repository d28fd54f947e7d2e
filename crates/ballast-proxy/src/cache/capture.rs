//! The copy of an answer taken while it streams to the client, stored when the body ends
//! cleanly.

use super::*;

/// The copy of an answer taken while it streams to the client; stored when the body ends
/// cleanly, dropped when it fails or grows past `max_object`.
pub struct Capture {
    pub(super) cache: Arc<RouteCache>,
    pub(super) key: String,
    pub(super) path: String,
    pub(super) stored: Stored,
    pub(super) chunks: Vec<Bytes>,
    pub(super) len: u64,
}

impl Capture {
    /// Keeps `data` (a reference, not a copy); false when the body is now too large to store.
    pub fn push(&mut self, data: &Bytes) -> bool {
        self.len += data.len() as u64;
        if self.len > self.cache.cfg.max_object {
            self.cache.counters.too_large.fetch_add(1, Relaxed);
            return false;
        }
        self.chunks.push(data.clone());
        true
    }

    /// The body ended cleanly: store the answer.
    pub fn complete(mut self) {
        self.stored.body = match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(self.len as usize);
                for c in &self.chunks {
                    b.extend_from_slice(c);
                }
                b.freeze()
            }
        };
        self.cache.insert(self.key, self.path, self.stored);
    }
}

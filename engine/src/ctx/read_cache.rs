//! The fresh-read cache's state, one per worker in [`super::AppCtx`]: the kept answers (least
//! recently used first out, bounded by entries and bytes) and the hand-over between a
//! handler's lookup and the wrapper that keeps its answer. What is kept, and when an entry is
//! still exact, is decided in `crate::apis::read_cache`.

use lru::LruCache;
use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::rc::Rc;

/// A worker's fresh-read cache (not `Sync`: no lock, no shared cache line).
pub struct ReadCache {
    pub(crate) cache: RefCell<Cache>,
    /// The [`Want`] of the handler being polled (moved in and out around each poll).
    pub(crate) want: RefCell<Option<Want>>,
}

impl Default for ReadCache {
    fn default() -> Self {
        ReadCache {
            cache: RefCell::new(Cache::new()),
            want: RefCell::new(None),
        }
    }
}

impl ReadCache {
    /// This worker's counters.
    pub fn stats(&self) -> Stats {
        self.cache.borrow().stats
    }
}

/// Most entries a worker keeps.
const MAX_ENTRIES: usize = 4096;
/// Most bytes of answers a worker keeps (keys and bodies): 16 MiB per core keeps the cache
/// well under the 32 MiB SQLite page cache each connection may already hold.
const MAX_BYTES: usize = 16 << 20;

pub(crate) struct Entry {
    pub(crate) body: Rc<[u8]>,
    pub(crate) deps: Box<[u16]>,
    pub(crate) epoch: u64,
    pub(crate) schema: u64,
}

pub(crate) struct Cache {
    pub(crate) map: LruCache<String, Entry>,
    bytes: usize,
    pub(crate) stats: Stats,
}

/// Counters of this worker's cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub stored: u64,
}

impl Cache {
    pub(crate) fn new() -> Self {
        Cache {
            map: LruCache::new(NonZeroUsize::new(MAX_ENTRIES).expect("non-zero")),
            bytes: 0,
            stats: Stats::default(),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(old) = self.map.pop(key) {
            self.bytes -= key.len() + old.body.len();
        }
    }

    pub(crate) fn insert(&mut self, key: String, entry: Entry) {
        self.remove(&key);
        let size = key.len() + entry.body.len();
        while self.bytes + size > MAX_BYTES || self.map.len() >= MAX_ENTRIES {
            match self.map.pop_lru() {
                Some((k, e)) => self.bytes -= k.len() + e.body.len(),
                None => break,
            }
        }
        self.bytes += size;
        self.stats.stored += 1;
        self.map.put(key, entry);
    }
}

impl Drop for Cache {
    /// A worker's cache goes with its worker: its counters are the server's last word on
    /// it (`tests/tests/read_cache.rs` reads them to know the cache was exercised).
    fn drop(&mut self) {
        let s = self.stats;
        if s.hits + s.misses > 0 {
            eprintln!(
                "pocketbun: fresh-read cache of a worker: {} hits, {} misses, {} answers kept",
                s.hits, s.misses, s.stored
            );
        }
    }
}

/// What the running handler asked to keep: its key, the collections version it used, and
/// its caller's note of volatile reads (`pocketbun_query::Volatile`).
pub(crate) struct Want {
    pub(crate) key: String,
    pub(crate) schema: u64,
    pub(crate) volatile: pocketbun_query::Volatile,
}

//! A value every worker reads on every request and a writer replaces as a whole: the
//! collections schema and the settings.
//!
//! Reads take no lock: `get` is an `ArcSwap` load plus one reference-count increment, where
//! the `Mutex`/`RwLock` it replaces made every request on every core write the same lock
//! word (a cache line bounced between cores for each request, even without a writer).
//! Replacing is versioned: a value produced by an earlier commit never overwrites one
//! produced by a later commit that happened to finish first.

use arc_swap::ArcSwap;
use std::sync::Arc;

/// The current value and the commit order that produced it.
pub struct Snapshot<T> {
    current: ArcSwap<Versioned<T>>,
}

struct Versioned<T> {
    version: u64,
    value: Arc<T>,
}

impl<T> Snapshot<T> {
    pub fn new(value: T, version: u64) -> Self {
        Snapshot {
            current: ArcSwap::from_pointee(Versioned {
                version,
                value: Arc::new(value),
            }),
        }
    }

    /// The current value; stable for as long as the caller keeps the `Arc`.
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.current.load().value)
    }

    /// Reads the current value in place, without touching its reference count.
    pub fn with<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.current.load().value)
    }

    /// Installs `value` if `version` is newer than the current one; says whether it did.
    pub fn install(&self, value: Arc<T>, version: u64) -> bool {
        let next = Arc::new(Versioned { version, value });
        let before = self.current.rcu(|cur| {
            if version > cur.version {
                Arc::clone(&next)
            } else {
                Arc::clone(cur)
            }
        });
        before.version < version
    }
}

#[cfg(test)]
mod tests {
    use super::Snapshot;
    use std::sync::Arc;

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let s = Snapshot::new("v1", 1);
        assert!(s.install(Arc::new("v3"), 3));
        assert!(!s.install(Arc::new("v2"), 2));
        assert!(!s.install(Arc::new("v3 again"), 3));
        assert_eq!(*s.get(), "v3");
    }

    #[test]
    fn readers_on_other_threads_see_whole_values() {
        let s = Arc::new(Snapshot::new((0u64, 0u64), 0));
        let reader = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..100_000 {
                    let v = s.get();
                    assert_eq!(v.0, v.1, "torn value");
                    assert!(v.0 >= last, "went back in time");
                    last = v.0;
                }
            })
        };
        for i in 1..=1_000u64 {
            s.install(Arc::new((i, i)), i);
        }
        reader.join().unwrap();
        assert_eq!(*s.get(), (1_000, 1_000));
    }
}

//! PocketBase's in-memory app store (`app.Store()`): string keys with an expiry, an
//! optional value and a hit counter, shared by every worker of the process. The auth
//! endpoints keep their resend throttles (`@limitVerificationEmail_…`), fixed-window hit
//! limits and the names Apple sends to the OAuth2 redirect (`@redirect_name_…`) here.
//! It lives in `state::Core`, so a test builds its own; nothing in it survives a restart,
//! as in PocketBase.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Entry {
    until: Instant,
    hits: u32,
    value: String,
}

/// Keys with an expiry; an expired key is as good as absent.
#[derive(Default)]
pub struct AppStore {
    entries: Mutex<HashMap<String, Entry>>,
}

impl AppStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` is set (and not expired).
    pub fn has(&self, key: &str) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|e| e.until > Instant::now())
    }

    /// Sets `key` for `ttl` (expired keys are dropped on the way: the store holds what is
    /// live, a few entries per recent auth email).
    pub fn set(&self, key: &str, ttl: Duration) {
        self.set_value(key, String::new(), ttl);
    }

    /// Sets `key` to `value` for `ttl`.
    pub fn set_value(&self, key: &str, value: String, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, e| e.until > now);
        map.insert(
            key.to_string(),
            Entry {
                until: now + ttl,
                hits: 1,
                value,
            },
        );
    }

    /// Removes `key` and returns its value if it had not expired.
    pub fn take(&self, key: &str) -> Option<String> {
        let e = self.lock().remove(key)?;
        (e.until > Instant::now()).then_some(e.value)
    }

    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Counts a hit on `key`; `false` once more than `max` hits fell in the current window
    /// of `window` (a fixed window, starting at the first hit after the last one ended).
    pub fn allow(&self, key: &str, max: u32, window: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.lock();
        let e = map.entry(key.to_string()).or_insert(Entry {
            until: now + window,
            hits: 0,
            value: String::new(),
        });
        if e.until <= now {
            e.until = now + window;
            e.hits = 0;
        }
        e.hits += 1;
        e.hits <= max
    }
}

#[cfg(test)]
mod tests {
    use super::AppStore;
    use std::time::Duration;

    #[test]
    fn keys_expire_and_values_serve_once() {
        let s = AppStore::default();
        s.set("a", Duration::from_secs(60));
        s.set("gone", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.has("a"));
        assert!(!s.has("gone"));
        s.remove("a");
        assert!(!s.has("a"));
        s.set_value("n", "Ada Lovelace".into(), Duration::from_secs(60));
        assert_eq!(s.take("n").as_deref(), Some("Ada Lovelace"));
        assert_eq!(s.take("n"), None);
        s.set_value("old", "x".into(), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.take("old"), None);
    }

    #[test]
    fn hits_are_limited_per_fixed_window() {
        let s = AppStore::default();
        let w = Duration::from_millis(50);
        assert!(s.allow("k", 2, w));
        assert!(s.allow("k", 2, w));
        assert!(!s.allow("k", 2, w));
        assert!(s.allow("other", 2, w));
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.allow("k", 2, w));
    }
}

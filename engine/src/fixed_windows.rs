//! Fixed-window request counters per (limiter, client): the state behind PocketBase's rate
//! limiter ([`crate::ratelimit`] decides which limiter and rule apply; this only counts).
//!
//! One table serves all workers, so a limit holds whichever worker a connection lands on. It
//! is split into [`SHARDS`] shards by a hash of the key, each with its own lock: two workers
//! wait for each other only when their requests fall into the same shard at the same moment.
//! Idle clients are swept per shard, under that shard's lock alone, so a sweep holds up at
//! most 1/16 of the clients for 1/16 of the work (the single table it replaces swept every
//! client of every limiter under the one lock all requests take).
//!
//! The table belongs to a configuration (the settings snapshot the rules come from): given a
//! different one, a shard drops what it counted, as PocketBase resets its limiters when the
//! settings are reloaded.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// Shards of the table: enough that two cores rarely meet on one, few enough that each
/// sweeps a useful share.
const SHARDS: usize = 16;
/// Idle clients are forgotten this long (seconds) after their last window ended.
const MIN_DELETE_INTERVAL: i64 = 1800;
/// How often (seconds) a shard sweeps its idle clients.
const SWEEP_EVERY: i64 = 3600;

/// What a window allows: `max` requests per `interval` seconds, counted from the first request
/// of the window.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: i64,
    pub interval: i64,
}

/// The counters of all limiters and clients, for configurations of type `C`.
pub struct FixedWindows<C> {
    hasher: RandomState,
    shards: Box<[Mutex<Shard<C>>]>,
}

struct Shard<C> {
    /// The configuration the counts were made under (compared by pointer).
    config: Option<Arc<C>>,
    windows: HashMap<(String, String), Window>,
    last_sweep: i64,
}

/// A client's window in one limiter: requests left and when the window started (unix
/// seconds), with the limit it was opened under.
struct Window {
    available: i64,
    start: i64,
    limit: Limit,
}

impl<C> Default for FixedWindows<C> {
    fn default() -> Self {
        FixedWindows {
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        config: None,
                        windows: HashMap::new(),
                        last_sweep: 0,
                    })
                })
                .collect(),
        }
    }
}

impl<C> FixedWindows<C> {
    /// Takes one request from `client`'s window in `limiter` at `now` (unix seconds); false
    /// when the window has none left. A limiter keeps the limit its first window was opened
    /// with until the configuration changes.
    pub fn consume(
        &self,
        config: &Arc<C>,
        limiter: &str,
        client: &str,
        limit: Limit,
        now: i64,
    ) -> bool {
        let shard = self.hasher.hash_one((limiter, client)) as usize % SHARDS;
        let mut shard = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !shard
            .config
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, config))
        {
            shard.config = Some(config.clone());
            shard.windows.clear();
        }
        if now - shard.last_sweep >= SWEEP_EVERY {
            shard.last_sweep = now;
            shard
                .windows
                .retain(|_, w| now - (w.start + w.limit.interval) <= MIN_DELETE_INTERVAL);
        }
        let key = (limiter.to_string(), client.to_string());
        let window = shard.windows.entry(key).or_insert(Window {
            available: 0,
            start: i64::MIN / 2,
            limit,
        });
        if now - window.start >= window.limit.interval {
            window.available = window.limit.max;
            window.start = now;
        }
        if window.available > 0 {
            window.available -= 1;
            true
        } else {
            false
        }
    }

    /// Windows held now, over all shards (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().windows.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        max: 2,
        interval: 3,
    };

    #[test]
    fn windows_are_fixed_per_limiter_and_client() {
        let table = FixedWindows::default();
        let config = Arc::new(());
        let take = |limiter: &str, ip: &str, t| table.consume(&config, limiter, ip, LIMIT, t);
        assert!(take("l", "a", 100));
        assert!(take("l", "a", 101));
        assert!(!take("l", "a", 102));
        // another client, another limiter: windows of their own
        assert!(take("l", "b", 102));
        assert!(take("m", "a", 102));
        // the window opened at 100 ends at 103
        assert!(take("l", "a", 103));
        assert!(take("l", "a", 105));
        assert!(!take("l", "a", 105));
    }

    #[test]
    fn a_new_configuration_resets_the_counts() {
        let table = FixedWindows::default();
        let old = Arc::new(1);
        assert!(table.consume(&old, "l", "a", LIMIT, 100));
        assert!(table.consume(&old, "l", "a", LIMIT, 100));
        assert!(!table.consume(&old, "l", "a", LIMIT, 100));
        let new = Arc::new(1);
        assert!(table.consume(&new, "l", "a", LIMIT, 100));
    }

    #[test]
    fn idle_clients_are_swept() {
        let table = FixedWindows::default();
        let config = Arc::new(());
        let clients = 200;
        for i in 0..clients {
            table.consume(&config, "l", &format!("10.0.0.{i}"), LIMIT, 10);
        }
        assert_eq!(table.len(), clients);
        // a shard sweeps on its first request an hour after its last sweep; a client is kept
        // until 30 minutes after its window ended
        let later = 10 + SWEEP_EVERY;
        for i in 0..clients {
            table.consume(&config, "l", &format!("10.0.1.{i}"), LIMIT, later);
        }
        assert_eq!(table.len(), clients, "the first round was swept");
    }
}

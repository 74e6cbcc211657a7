//! Read-your-writes across a primary and its read replicas (issue 19, item 3).
//!
//! * On the primary (`serve --replicate`), every successful write (any method but GET/HEAD
//!   answered 2xx) gets the Litestream TXID that holds it ([`super::position`]) in the
//!   [`TXID_HEADER`] answer header and a short-lived [`COOKIE`] cookie (Path=/, HttpOnly,
//!   SameSite=Lax, [`COOKIE_MAX_AGE`]), so browsers send it back on their next reads. A write
//!   sent with [`DURABLE_HEADER`]`: true` is answered only once the replica store has it
//!   (~20 ms to S3); otherwise the TXID is read without waiting for the upload.
//! * On a read replica, a GET/HEAD carrying a TXID (the header, the cookie, or the TXID of
//!   the caller's own last write that this replica forwarded, see [`Ryw::remember`]) newer than
//!   what the follower has applied waits up to [`WAIT_BUDGET`] for the follower, then goes
//!   to the primary instead. Plain SDK clients keep no cookies; the per-caller memory covers
//!   them when their writes went through this replica.
//! * A replica also learns the primary's latest TXID (from forwarded writes, and from the
//!   [`TXID_HEADER`] of the primary's `/api/health`, polled every second). When its copy has
//!   stayed behind a known primary TXID for [`STALE_AFTER`] (the replica store unreachable,
//!   the follower stuck), the GET/HEAD answers it serves itself carry [`STALE_HEADER`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The answer header with a write's TXID (16 hex digits, as health writes TXIDs); a client
/// may send it back on a read to ask for data at least that new. PocketBun's headers are
/// spelled as Go canonicalizes them, so a write forwarded by a replica (whose answer headers
/// are re-spelled that way) comes back with the same names as a direct one.
pub const TXID_HEADER: &str = "X-Pocketbun-Txid";
/// The cookie with a write's TXID, for browsers.
pub const COOKIE: &str = "pb_txid";
/// The request header asking a write to wait until the replica store has it.
pub const DURABLE_HEADER: &str = "X-Pocketbun-Durable";
/// How long the cookie and the per-caller memory live: the replica lag is ~1 s (sync
/// interval 1 s plus the follower's 250 ms poll), so 5 s covers it with room for a slow
/// upload; later reads are served by the replica as they are.
pub const COOKIE_MAX_AGE: u64 = 5;
/// How long a replica read waits for the follower before going to the primary. A forwarded
/// read costs one round trip to the primary (~1 ms on a LAN), so waiting longer than a few
/// polls only saves the primary's work: 20 ms, polled every [`POLL`].
pub const WAIT_BUDGET: Duration = Duration::from_millis(20);
const POLL: Duration = Duration::from_millis(2);
/// Callers remembered by a replica at once (least recently written dropped first): 16 k
/// entries of ~40 bytes.
const MAX_CALLERS: usize = 16 * 1024;

/// The answer header of a replica read served from a copy known to be stale: how many
/// seconds it has been behind a TXID the primary had.
pub const STALE_HEADER: &str = "X-Pocketbun-Stale";
/// How long a copy may trail a known primary TXID before its answers say stale: the normal
/// lag is ~1 s, plus up to 1 s until the next poll of the primary saw a newer TXID.
pub const STALE_AFTER: Duration = Duration::from_secs(3);
/// How often a replica asks the primary's `/api/health` for its TXID.
const PRIMARY_POLL: Duration = Duration::from_secs(1);

/// The `Set-Cookie` value for a write at `txid`.
pub fn cookie(txid: u64) -> String {
    format!(
        "{COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax",
        super::position::hex(txid)
    )
}

/// A TXID as sent: 16 hex digits (any 1-16 accepted).
pub fn parse_txid(s: &str) -> Option<u64> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 16)
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

/// The TXID a read asks for through the header or the cookie, if any.
pub fn requested(header: Option<&str>, cookies: Option<&str>) -> Option<u64> {
    let from_cookie = cookies.and_then(|c| {
        c.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| parse_txid(v)).flatten()
        })
    });
    header.and_then(parse_txid).max(from_cookie)
}

/// Whether the caller asked a write to wait for the replica store.
pub fn durable(header: Option<&str>) -> bool {
    header.is_some_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true")
    })
}

/// A caller as a replica tells them apart: the client IP and the `Authorization` header
/// (hashed, never kept).
pub fn caller_key(ip: &str, authorization: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    ip.hash(&mut h);
    authorization.unwrap_or("").hash(&mut h);
    h.finish()
}

/// What a replica keeps for read-your-writes: a part of [`super::Replication`].
pub struct Ryw {
    callers: Callers,
    /// The oldest primary TXID the copy has not reached, and when it was learned.
    behind: Mutex<Option<(u64, Instant)>>,
}

impl Default for Ryw {
    fn default() -> Self {
        Ryw {
            callers: Callers {
                map: Mutex::new(lru::LruCache::new(
                    NonZeroUsize::new(MAX_CALLERS).expect("non-zero"),
                )),
                len: AtomicUsize::new(0),
            },
            behind: Mutex::new(None),
        }
    }
}

struct Callers {
    map: Mutex<lru::LruCache<u64, (u64, Instant)>>,
    /// Entries in `map`: reads skip the lock while no caller is remembered.
    len: AtomicUsize,
}

impl Ryw {
    /// On a replica: the caller `key` wrote at `txid` (the primary's answer to a forwarded
    /// write); their reads in the next [`COOKIE_MAX_AGE`] seconds want at least it.
    pub fn remember(&self, key: u64, txid: u64) {
        let c = &self.callers;
        let mut map = c.map.lock().unwrap_or_else(|p| p.into_inner());
        drop_expired(&mut map);
        let until = Instant::now() + Duration::from_secs(COOKIE_MAX_AGE);
        let txid = map
            .peek(&key)
            .filter(|(_, t)| *t > Instant::now())
            .map_or(txid, |(old, _)| txid.max(*old));
        map.put(key, (txid, until));
        c.len.store(map.len(), Ordering::Relaxed);
    }

    /// On a replica: whether any caller's write is remembered (one atomic load).
    pub fn remembers_any(&self) -> bool {
        self.callers.len.load(Ordering::Relaxed) != 0
    }

    /// On a replica: the TXID the caller `key` last wrote at, while it is fresh.
    pub fn remembered(&self, key: u64) -> Option<u64> {
        let c = &self.callers;
        if c.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut map = c.map.lock().unwrap_or_else(|p| p.into_inner());
        drop_expired(&mut map);
        c.len.store(map.len(), Ordering::Relaxed);
        map.peek(&key).map(|(txid, _)| *txid)
    }
}

/// Drops the entries that expired. Every entry lives the same [`COOKIE_MAX_AGE`] from its
/// last `put`, which also makes it the most recent, so the expired ones are the least
/// recent: popped from that end until a live one. Without it an expired caller stayed (and
/// kept every read of the replica on this lock) until that same caller read again.
fn drop_expired(map: &mut lru::LruCache<u64, (u64, Instant)>) {
    let now = Instant::now();
    while map.peek_lru().is_some_and(|(_, (_, until))| *until <= now) {
        map.pop_lru();
    }
}

impl super::Replication {
    /// On a replica: waits (a timer, never blocking the worker) up to [`WAIT_BUDGET`] until
    /// the follower has applied `txid`; false if it has not.
    pub async fn wait_for(&self, txid: u64) -> bool {
        let deadline = Instant::now() + WAIT_BUDGET;
        loop {
            if self.follower.applied() >= txid {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            monoio::time::sleep(POLL).await;
        }
    }

    /// On a replica: the primary had `txid` (a forwarded write's answer, or its health).
    pub fn saw_primary(&self, txid: u64) {
        if txid <= self.follower.applied() {
            return;
        }
        let mut b = self.ryw.behind.lock().unwrap_or_else(|p| p.into_inner());
        if b.is_none_or(|(t, _)| t <= self.follower.applied()) {
            *b = Some((txid, Instant::now()));
        }
    }

    /// On a replica: how long its copy has trailed a TXID the primary had, once that is at
    /// least [`STALE_AFTER`]; `None` while it is current or within the normal lag.
    pub fn stale(&self) -> Option<Duration> {
        let mut b = self.ryw.behind.lock().unwrap_or_else(|p| p.into_inner());
        let (txid, since) = (*b)?;
        if txid <= self.follower.applied() {
            *b = None;
            return None;
        }
        Some(since.elapsed()).filter(|d| *d >= STALE_AFTER)
    }
}

/// On a replica: a thread that asks the primary's `/api/health` for its TXID every second
/// ([`super::Replication::saw_primary`]); a primary that is down or answers without it is
/// skipped.
pub fn watch_primary(replication: Arc<super::Replication>, primary: String) -> std::io::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/health", primary.trim_end_matches('/'));
    std::thread::Builder::new()
        .name("pb-primary-poll".into())
        .spawn(move || loop {
            std::thread::sleep(PRIMARY_POLL);
            if let Ok(resp) = agent.get(&url).call() {
                let txid = resp
                    .headers()
                    .get(TXID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_txid);
                if let Some(txid) = txid {
                    replication.saw_primary(txid);
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txids_from_header_and_cookie() {
        assert_eq!(requested(Some("00000000000000ff"), None), Some(255));
        assert_eq!(
            requested(None, Some("a=b; pb_txid=0000000000000010; c=d")),
            Some(16)
        );
        assert_eq!(
            requested(Some("5"), Some("pb_txid=0000000000000010")),
            Some(16)
        );
        assert_eq!(requested(Some("zz"), Some("pb_txidx=1")), None);
        assert_eq!(parse_txid("00000000000000001"), None, "17 digits");
        assert!(cookie(16).starts_with("pb_txid=0000000000000010; Path=/; Max-Age=5;"));
    }

    #[test]
    fn callers_are_remembered_briefly_and_apart() {
        let (a, b) = (
            caller_key("10.0.0.1", Some("tok")),
            caller_key("10.0.0.1", None),
        );
        assert_ne!(a, b);
        let ryw = Ryw::default();
        ryw.remember(a, 7);
        ryw.remember(a, 5);
        assert_eq!(
            ryw.remembered(a),
            Some(7),
            "a later, older answer does not lower it"
        );
        assert_eq!(ryw.remembered(b), None);
    }
}

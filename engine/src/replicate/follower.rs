//! A read replica's copy of `data.db` (issue 19, item 2): `serve --replica-of <primary>
//! --replica <url>` keeps `pb_data/data.db` current with `litestream restore -f` (follow
//! mode), run and restarted by the [`super::supervisor`] like `litestream replicate`.
//!
//! Why a follower copy and not the Litestream VFS extension: the follower is the same static
//! `litestream` binary item 1 already runs (no Go runtime loaded into our process, no
//! auto-extension bug, no settings fixed by the environment at process start), and its file
//! is a plain SQLite file that `pocketbun restore`, `sqlite3` and PocketBase can open.
//! Measured on this machine (file replica, 1 s sync interval): a commit on the primary was
//! readable on the follower after 1.7 s (p50 and max of 20) at a 1 s follow interval, and
//! 0.8-1.1 s at the 250 ms interval used here (1.0 s through moto S3). The VFS, loaded into
//! the `sqlite3` shell against the same kind of replica, followed the first commits but then
//! stopped advancing after Litestream's first L1 compaction ("cannot fetch new ltx files:
//! non-contiguous ltx file"), which decided it.
//!
//! Two details make the copy safe to read while it moves:
//! * Litestream applies each transaction under SQLite's own file locks, in rollback-journal
//!   mode. The initial restore leaves page 1 saying WAL, and a WAL-mode reader holds a shared
//!   lock for its whole life, so the follower would wait forever: [`patch_header`] turns the
//!   header to rollback mode (under the same locks) before any connection opens.
//! * Litestream only bumps the change counter when a transaction rewrites page 1, so a page
//!   cache kept across transactions could serve stale pages: the store opens the follower
//!   copy with every page read through mmap (`pocketbun_storage::StoreOptions::follower_data`).
//!
//! A watcher thread reads `data.db-txid` (Litestream's last applied transaction, rewritten
//! after each apply) every 100 ms, for health and to refresh the schema and settings
//! snapshots when the primary changed them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Litestream's polling interval in follow mode: how often it lists the replica for new
/// transactions. 250 ms keeps the added lag small; one LIST per interval on S3.
pub const FOLLOW_INTERVAL: &str = "250ms";
/// How often the watcher reads `data.db-txid`: a read-your-writes read waits for the applied
/// TXID up to 20 ms ([`super::ryw::WAIT_BUDGET`]), so it is read every 20 ms (one small file
/// read, ~10 µs, 50 times a second).
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// A read replica's follower copy (none on a primary): a part of
/// [`super::Replication`].
#[derive(Default)]
pub struct Follower {
    state: OnceLock<Arc<State>>,
}

/// The follower's state, read by health.
struct State {
    primary: String,
    /// The last applied transaction id (Litestream's TXID), 0 before the first.
    txid: AtomicU64,
    /// When the watcher last saw the TXID move (ms since the epoch), 0 before.
    advanced_ms: AtomicU64,
    /// The TXID whose snapshots (collections, settings) are reloaded: `txid` once the
    /// watcher's `on_advance` for it returned.
    refreshed: AtomicU64,
    started: Instant,
}

/// `litestream restore -f` arguments for the follower copy of `dir/data.db`.
pub fn command(dir: &Path, url: &str) -> Vec<OsString> {
    vec![
        "restore".into(),
        "-f".into(),
        "-follow-interval".into(),
        FOLLOW_INTERVAL.into(),
        "-o".into(),
        data_path(dir).into(),
        super::db_url(url, pocketbun_storage::DATA_DB).into(),
    ]
}

fn data_path(dir: &Path) -> PathBuf {
    dir.join(pocketbun_storage::DATA_DB)
}

fn txid_path(dir: &Path) -> PathBuf {
    dir.join(format!("{}-txid", pocketbun_storage::DATA_DB))
}

/// Before the follower starts: `dir` must be new, or a replica's earlier `pb_data` (a
/// `data.db` with Litestream's `data.db-txid` beside it). A primary's `pb_data` is refused:
/// the follower would overwrite it. An earlier copy is removed and restored afresh:
/// Litestream 0.5.17 resumes a follower only while its saved TXID is within the latest
/// *snapshot* (taken daily), so after any later write it refuses ("saved TXID … is ahead of
/// latest snapshot"); a fresh restore costs one download of the database.
pub fn check_dir(follower: &Follower, dir: &Path, primary: &str) -> Result<(), String> {
    let data = data_path(dir);
    if data.exists() && !txid_path(dir).exists() {
        return Err(format!(
            "{} holds a data.db that is not a replica's copy (no data.db-txid beside it); \
             give a replica its own, empty --dir",
            dir.display()
        ));
    }
    if data.exists() {
        eprintln!("replica: restoring data.db afresh from the replica");
        for path in [data.clone(), txid_path(dir)] {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(dir.join(format!("data.db{suffix}")));
        }
    }
    let _ = follower.state.set(Arc::new(State {
        primary: primary.trim_end_matches('/').to_string(),
        txid: AtomicU64::new(0),
        advanced_ms: AtomicU64::new(0),
        refreshed: AtomicU64::new(0),
        started: Instant::now(),
    }));
    Ok(())
}

/// Waits until the follower has restored `data.db` (its TXID file exists), up to `timeout`,
/// then makes the copy readable ([`patch_header`]). The error names what was missing; the
/// supervisor's last Litestream error is on stderr above it.
pub fn wait_ready(follower: &Follower, dir: &Path, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while read_txid(dir).is_none() {
        if Instant::now() >= deadline {
            return Err(format!(
                "no copy of data.db after {} s: is the replica URL right and written by a \
                 primary (`serve --replicate`)?",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    patch_header(&data_path(dir))
        .map_err(|e| format!("cannot prepare {}: {e}", data_path(dir).display()))?;
    let txid = read_txid(dir).unwrap_or(0);
    if let Some(st) = follower.state.get() {
        record(st, txid);
        // the snapshots are loaded from this copy after it is ready
        st.refreshed.store(txid, Ordering::SeqCst);
    }
    Ok(())
}

/// Sets page 1's read/write versions (bytes 18 and 19) to 1, rollback-journal mode, if they
/// say WAL (2), and changes the change counter (bytes 24-27) so no reader keeps a cache;
/// under SQLite's exclusive lock (PENDING byte and SHARED range, as Litestream takes them).
fn patch_header(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    const PENDING: i64 = 0x4000_0000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let lock = |kind: libc::c_short, start: i64, len: i64| -> std::io::Result<()> {
        // SAFETY: a zeroed flock is a valid value; fcntl(F_SETLKW) on our own open fd.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = start;
        fl.l_len = len;
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &fl) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    lock(libc::F_WRLCK as libc::c_short, PENDING, 1)?;
    lock(libc::F_WRLCK as libc::c_short, PENDING + 2, 510)?;
    let outcome = (|| {
        let mut head = [0u8; 28];
        file.read_exact_at(&mut head, 0)?;
        if head[18] == 2 || head[19] == 2 {
            file.write_all_at(&[1, 1], 18)?;
        }
        let counter = u32::from_be_bytes([head[24], head[25], head[26], head[27]]);
        file.write_all_at(&counter.wrapping_add(1).to_be_bytes(), 24)?;
        file.sync_data()
    })();
    let _ = lock(libc::F_UNLCK as libc::c_short, PENDING + 2, 510);
    let _ = lock(libc::F_UNLCK as libc::c_short, PENDING, 1);
    outcome
}

/// The TXID in `dir/data.db-txid` (16 hex digits), if the file is there.
fn read_txid(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(txid_path(dir)).ok()?;
    u64::from_str_radix(text.trim(), 16).ok()
}

fn record(st: &State, txid: u64) {
    if st.txid.swap(txid, Ordering::SeqCst) != txid {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        st.advanced_ms.store(now, Ordering::SeqCst);
    }
}

impl Follower {
    /// Starts the watcher thread: each time the follower applied new transactions,
    /// `on_advance` runs on it (the caller refreshes snapshots there). Without a follower
    /// ([`check_dir`] not run) there is nothing to watch.
    pub fn watch(
        &self,
        dir: PathBuf,
        mut on_advance: impl FnMut() + Send + 'static,
    ) -> std::io::Result<()> {
        let Some(st) = self.state.get().cloned() else {
            return Ok(());
        };
        std::thread::Builder::new()
            .name("pb-replica-watch".into())
            .spawn(move || {
                let mut last = st.txid.load(Ordering::SeqCst);
                loop {
                    std::thread::sleep(WATCH_EVERY);
                    if let Some(txid) = read_txid(&dir).filter(|t| *t != last) {
                        last = txid;
                        record(&st, txid);
                        on_advance();
                        st.refreshed.store(txid, Ordering::SeqCst);
                    }
                }
            })
            .map(|_| ())
    }

    /// The last applied transaction whose snapshots are reloaded (0 before the first, and on
    /// a node that is not a replica): what is in the copy up to it is what the node serves.
    pub fn refreshed_txid(&self) -> u64 {
        (self.state.get()).map_or(0, |s| s.refreshed.load(Ordering::SeqCst))
    }

    /// Whether this process is a read replica.
    pub fn active(&self) -> bool {
        self.state.get().is_some()
    }

    /// The last transaction the follower applied (as of the watcher's latest read), 0 before
    /// the first or when this is no replica.
    pub fn applied(&self) -> u64 {
        (self.state.get()).map_or(0, |s| s.txid.load(Ordering::SeqCst))
    }

    /// The primary's base URL (`--replica-of`), on a replica.
    pub fn primary(&self) -> Option<&str> {
        self.state.get().map(|s| s.primary.as_str())
    }

    /// The `replica` object of a superuser's `GET /api/health` on a replica: `primary`, `txid`
    /// (the last applied transaction, 16 hex digits as Litestream writes it), `appliedAt` (when
    /// the follower last moved, RFC 3339 in UTC with ms; "" before) and `uptime` (seconds).
    /// How far behind the primary it is cannot be known here without asking the primary; with
    /// writes flowing, `appliedAt` trails them by about the sync interval plus 250 ms.
    pub fn health(&self) -> Option<serde_json::Value> {
        let st = self.state.get()?;
        let ms = st.advanced_ms.load(Ordering::SeqCst);
        let applied_at = if ms == 0 {
            String::new()
        } else {
            chrono::DateTime::from_timestamp_millis(ms as i64)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
                .unwrap_or_default()
        };
        Some(serde_json::json!({
            "primary": st.primary,
            "txid": format!("{:016x}", st.txid.load(Ordering::SeqCst)),
            "appliedAt": applied_at,
            "uptime": st.started.elapsed().as_secs(),
        }))
    }
}

/// A cheap fingerprint of the collections and settings rows: it changes when the primary
/// created, changed or deleted a collection or saved settings.
pub fn fingerprint(
    conn: &pocketbun_storage::rusqlite::Connection,
) -> pocketbun_storage::Result<String> {
    let fp = conn.query_row(
        "SELECT (SELECT count(*) || '|' || ifnull(max(updated), '') FROM _collections)
             || '|' || (SELECT ifnull(max(updated), '') FROM _params)",
        [],
        |r| r.get::<_, String>(0),
    )?;
    Ok(fp)
}

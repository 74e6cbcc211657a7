//! Read connections: one per worker thread, with a deadline per read.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::connection::{self, ConnOptions, Role};
use crate::deps::{Generations, Learning};
use crate::error::{ErrorKind, Result, StorageError};

/// How many SQLite VM steps run between deadline checks.
const PROGRESS_STEPS: i32 = 1000;
/// Sentinel for "no read in progress".
const NO_DEADLINE: u64 = u64::MAX;

/// A read-only connection meant to be owned by a single worker thread
/// (it is `Send`, not `Sync`; nothing is shared or locked across threads).
///
/// Every [`Reader::read`] gets a deadline; a read still running past it is
/// interrupted and fails with [`ErrorKind::Timeout`].
pub struct Reader {
    conn: Connection,
    timeout: Duration,
    origin: Instant,
    /// Nanoseconds after `origin` at which the current read must stop.
    deadline: Arc<AtomicU64>,
    /// On a follower copy ([`crate::StoreOptions::follower_data`]): the file, and its
    /// (mtime, size) when this connection's page cache was last known to match it.
    follower: Option<(std::fs::File, Cell<(i128, u64)>)>,
    /// With read tracking on: the database's generations and the tables each SQL text
    /// read ([`crate::deps`]).
    tracked: Option<Tracked>,
    /// Whether the page cache holds pages worth handing back ([`Reader::release_if_idle`]).
    cache: Cell<Cache>,
}

/// A reader's page cache, as seen by the idle release.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cache {
    /// Released (or never filled): nothing to hand back.
    Cold,
    /// Read since the last [`Reader::release_if_idle`].
    Used,
    /// Not read since the last [`Reader::release_if_idle`]: the next one releases it.
    Idle,
}

/// Most SQL texts whose tables a reader remembers; past it the memo starts over (a
/// worker's distinct statements number in the hundreds: rules, filters, expands).
const MAX_MEMO: usize = 4096;

/// SQL text -> table slots (`None`: calls a volatile function).
type Memo = HashMap<String, Option<Arc<[u16]>>>;

struct Tracked {
    generations: Arc<Generations>,
    /// What the connection's authorizer collects while a statement is learnt.
    learning: Learning,
    /// The memo, valid while the schema generation is the first value.
    memo: RefCell<(u64, Memo)>,
}

impl Reader {
    pub(crate) fn open(
        path: &Path,
        timeout: Duration,
        with: ConnOptions,
        follower: bool,
        generations: Option<Arc<Generations>>,
    ) -> Result<Self> {
        let conn = connection::open_as(path, Role::Reader, with, follower)?;
        let follower = match follower {
            true => Some((
                std::fs::File::open(path).map_err(|e| {
                    StorageError::new(ErrorKind::Io, format!("{}: {e}", path.display()))
                })?,
                Cell::new((0, 0)),
            )),
            false => None,
        };
        let tracked = generations.map(|generations| {
            crate::dev::trace_with_stmts(&conn, with.sql_log);
            let learning = Learning::default();
            let auth = learning.clone();
            conn.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
                auth.authorize(&ctx)
            }));
            Tracked {
                generations,
                learning,
                memo: RefCell::new((0, HashMap::new())),
            }
        });
        let origin = Instant::now();
        let deadline = Arc::new(AtomicU64::new(NO_DEADLINE));
        let handler_deadline = Arc::clone(&deadline);
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let limit = handler_deadline.load(Ordering::Relaxed);
                // returning true interrupts the statement
                limit != NO_DEADLINE && origin.elapsed().as_nanos() as u64 >= limit
            }),
        );
        Ok(Self {
            conn,
            timeout,
            origin,
            deadline,
            follower,
            tracked,
            cache: Cell::new(Cache::Cold),
        })
    }

    /// Hands the page cache back (`sqlite3_db_release_memory`, then [`crate::trim`]) when no
    /// read ran since the previous call, and says whether it did. Called on the reader's own
    /// thread every second or so (the engine's per-worker tick), it releases a cache between
    /// one and two periods after the last read: a quiet worker's RSS falls back instead of
    /// keeping every page its last burst touched (up to `cache_size`, ~31 MiB, each). A
    /// release frees what is cached (~1 ms for 30 MiB); refilling costs one read per page,
    /// which the OS page cache usually answers.
    pub fn release_if_idle(&self) -> bool {
        match self.cache.get() {
            Cache::Cold => false,
            Cache::Used => {
                self.cache.set(Cache::Idle);
                false
            }
            Cache::Idle => {
                self.cache.set(Cache::Cold);
                let _ = self.conn.release_memory();
                crate::memory::trim(true);
                true
            }
        }
    }

    /// The database's generations, when this reader reports its statements.
    pub fn generations(&self) -> Option<&Arc<Generations>> {
        self.tracked.as_ref().map(|t| &t.generations)
    }

    /// The table slots read by the statements `stmts` (SQL texts recorded by a
    /// [`crate::deps::recording`] on this reader's thread), sorted and
    /// without repeats; `None` when tracking is off, or a statement calls a volatile
    /// function or no longer prepares. Each new SQL text is prepared once, uncached, to
    /// learn its tables.
    pub fn dependencies(&self, stmts: &[String]) -> Option<Vec<u16>> {
        let tracked = self.tracked.as_ref()?;
        let mut memo = tracked.memo.borrow_mut();
        let ddl = tracked.generations.ddl();
        if memo.0 != ddl || memo.1.len() >= MAX_MEMO {
            // a schema change can change what a view reads
            *memo = (ddl, HashMap::new());
        }
        let mut out: Vec<u16> = Vec::new();
        for sql in stmts {
            let tables = match memo.1.get(sql.as_str()) {
                Some(known) => known.clone(),
                None => {
                    let learnt = (tracked.learning)
                        .learn(|| self.conn.prepare(sql).is_ok())
                        .map(|t| Arc::<[u16]>::from(t.as_slice()));
                    memo.1.insert(sql.clone(), learnt.clone());
                    learnt
                }
            };
            out.extend_from_slice(&tables?);
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// Runs `f` with the store's default read timeout.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read_with_timeout(self.timeout, f)
    }

    /// Runs `f` against the connection; statements still executing after
    /// `timeout` are interrupted and the read fails with `Timeout`.
    pub fn read_with_timeout<T>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let start = self.origin.elapsed();
        let limit = (start + timeout)
            .as_nanos()
            .min(u128::from(NO_DEADLINE - 1)) as u64;
        self.deadline.store(limit, Ordering::Relaxed);
        self.cache.set(Cache::Used);
        let result = match &self.follower {
            None => f(&self.conn),
            Some((file, seen)) => self.follower_read(file, seen, f),
        };
        let expired = self.origin.elapsed().as_nanos() as u64 >= limit;
        self.deadline.store(NO_DEADLINE, Ordering::Relaxed);
        match result {
            // past the deadline, the interrupt is what ended the read, whatever error the
            // closure made of SQLite's SQLITE_INTERRUPT (its code, not its text, decides)
            Err(e) if e.kind() == ErrorKind::Timeout || expired => {
                crate::warn(format_args!(
                    "read interrupted after exceeding its {timeout:?} deadline"
                ));
                Err(StorageError::new(
                    ErrorKind::Timeout,
                    format!("read exceeded its {timeout:?} deadline"),
                ))
            }
            other => other,
        }
    }

    /// A read of a follower copy, which `litestream restore -f` rewrites in place between
    /// our transactions. SQLite notices that only when page 1's change counter moved, which
    /// Litestream changes only when the transaction rewrote page 1; otherwise pages kept in
    /// this connection's cache (page 1, and pages past the mmap taken at an earlier size)
    /// would be stale. So the read runs in one transaction: once its shared lock is held (the
    /// follower cannot write meanwhile), the file's mtime and size are compared with those
    /// of the previous read, and the page cache is dropped if the file changed. Costs a
    /// `BEGIN`/`COMMIT` and one fstat per read; `PRAGMA shrink_memory` only after a change.
    fn follower_read<T>(
        &self,
        file: &std::fs::File,
        seen: &Cell<(i128, u64)>,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.conn.execute_batch("BEGIN")?;
        let outcome = (|| {
            // takes the shared lock
            self.conn
                .query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))?;
            let meta = file
                .metadata()
                .map_err(|e| StorageError::new(ErrorKind::Io, format!("follower copy: {e}")))?;
            let stamp = (
                meta.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128),
                meta.len(),
            );
            if seen.get() != stamp {
                // sqlite3_db_release_memory: frees every cached page not in use (none are)
                self.conn.execute_batch("PRAGMA shrink_memory")?;
                seen.set(stamp);
            }
            f(&self.conn)
        })();
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("COMMIT");
        }
        outcome
    }

    /// The default per-read timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

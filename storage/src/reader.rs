//! Read connections: one per worker thread, with a deadline per read.
//!
//! **One read transaction for many reads.** A read in SQLite's autocommit mode is its own
//! transaction: it takes the WAL read lock (the wal-index header, a read mark and, when no
//! other connection of the process holds that mark, an `fcntl` lock on the `-shm` file) and
//! drops it when the statement resets. A worker reader that [`Reader::batch_reads`] was called
//! on instead keeps one transaction (`BEGIN`, ended by [`Reader::end_batch`]) across the reads
//! of a batch of ready work, from its second read on (the engine ends a batch once per
//! event-loop turn), as long as the store's writer committed nothing since it began: its commit
//! count ([`Commits`]) is bumped after every commit, before any job of it is answered (and
//! before the fresh-read cache's generations are stamped), and a read that finds it moved ends
//! the transaction and begins a new one. So a client that got the answer of its write sees it
//! on any worker, and a cached answer is never computed from a snapshot older than its epoch.
//! Writes of another process are seen at the next transaction. Readers nobody batches (the
//! CLI's, `/api/sql`'s, a follower copy's) keep one transaction per statement.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
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
    /// The store writer's commit count ([`Commits`]).
    commits: Commits,
    /// With [`Reader::batch_reads`]: what ends the batch and its transaction.
    closer: RefCell<Option<Waker>>,
    /// Whether a read ran since the last [`Reader::end_batch`].
    batch: Cell<bool>,
    /// The commit count when the open transaction began; `None`: none is open.
    began: Cell<Option<u64>>,
    /// Reads in progress (a read inside a read runs in the outer one's transaction).
    depth: Cell<u32>,
}

/// How many transactions a database's writer has committed (or may have committed: a job
/// that ended the transaction itself), shared by the writer and every reader of the file.
/// The writer bumps it after a commit and before it answers any job of that commit.
pub(crate) type Commits = Arc<AtomicU64>;

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
        commits: Commits,
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
            commits,
            closer: RefCell::new(None),
            batch: Cell::new(false),
            began: Cell::new(None),
            depth: Cell::new(0),
        })
    }

    /// Keeps one read transaction across this reader's reads until [`Reader::end_batch`]
    /// (module doc). The first read after [`Reader::end_batch`] wakes `closer`, and whatever
    /// it wakes must call [`Reader::end_batch`] soon, on this thread. The engine passes the
    /// waker of a task of the worker's event loop, which a wake queues behind the tasks
    /// already ready: a batch then lasts one turn of ready work, never across a request's wait
    /// for something else, so its transaction pins WAL frames no longer than that (an open
    /// read transaction keeps the checkpointer from copying later frames and the writer from
    /// restarting the WAL). Calling it again replaces the waker. No-op on a follower copy,
    /// whose reads run one transaction each ([`Reader::follower_read`]): a transaction there
    /// holds a `SHARED` lock on the file that `litestream restore` must wait for.
    ///
    /// The first read of a batch runs on its own, in autocommit mode; the second begins the
    /// transaction the rest of the batch shares. `BEGIN` and `COMMIT` cost ~1.8k instructions
    /// each through rusqlite's statement cache (callgrind, release build), more than the
    /// ~1.3k of a transaction SQLite begins and ends around a statement, so a batch of one
    /// read (a lone request per turn) pays nothing for them, and a busy worker's batch of
    /// many reads pays once.
    pub fn batch_reads(&self, closer: &Waker) {
        if self.follower.is_some() {
            return;
        }
        let mut slot = self.closer.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(closer)) {
            *slot = Some(closer.clone());
        }
    }

    /// Ends the batch begun by the first read since the last call, and its read
    /// transaction if one is open ([`Reader::batch_reads`]).
    pub fn end_batch(&self) {
        if self.depth.get() > 0 {
            return;
        }
        self.batch.set(false);
        self.end_transaction();
    }

    fn end_transaction(&self) {
        if self.began.take().is_some() && !self.conn.is_autocommit() {
            if let Err(e) = self.exec("COMMIT") {
                // a read transaction has nothing to keep: let go of it however SQLite can
                crate::warn(format_args!("ending a read transaction failed: {e}"));
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
    }

    /// Before a batched read: the first of a batch wakes the closer and runs on its own; a
    /// later one keeps the open transaction when nothing was committed since it began, and
    /// otherwise begins one.
    fn enter(&self) {
        let closer = self.closer.borrow();
        let Some(closer) = closer.as_ref() else {
            return;
        };
        if !self.batch.replace(true) {
            closer.wake_by_ref();
            return;
        }
        // read before BEGIN, whose snapshot is taken by the first statement after it: every
        // commit counted here is in that snapshot
        let now = self.commits.load(Ordering::Acquire);
        if let Some(began) = self.began.get() {
            if began == now && !self.conn.is_autocommit() {
                return;
            }
            self.end_transaction();
        }
        match self.exec("BEGIN") {
            Ok(()) => self.began.set(Some(now)),
            // the read then runs in autocommit mode, as an unbatched reader's
            Err(e) => crate::warn(format_args!("beginning a read transaction failed: {e}")),
        }
    }

    fn exec(&self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Hands the page cache back (`sqlite3_db_release_memory`, then [`crate::trim`]) when no
    /// read ran since the previous call, and says whether it did. Called on the reader's own
    /// thread every second or so (the engine's per-worker tick), it releases a cache between
    /// one and two periods after the last read: a quiet worker's RSS falls back instead of
    /// keeping every page its last burst touched (up to `cache_size`, ~31 MiB, each). A
    /// release frees what is cached (~1 ms for 30 MiB); refilling costs one read per page,
    /// which the OS page cache usually answers.
    pub fn release_if_idle(&self) -> bool {
        // no transaction outlives a tick (the engine ends them every turn already)
        self.end_batch();
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
        let depth = self.depth.get();
        let result = match &self.follower {
            None => {
                if depth == 0 {
                    self.enter();
                }
                // restored even when `f` unwinds: a depth left above 0 would keep the
                // transaction open for good
                struct Depth<'a>(&'a Cell<u32>, u32);
                impl Drop for Depth<'_> {
                    fn drop(&mut self) {
                        self.0.set(self.1);
                    }
                }
                self.depth.set(depth + 1);
                let _restore = Depth(&self.depth, depth);
                f(&self.conn)
            }
            Some((file, seen)) => self.follower_read(file, seen, f),
        };
        let expired = self.origin.elapsed().as_nanos() as u64 >= limit;
        self.deadline.store(NO_DEADLINE, Ordering::Relaxed);
        if result.is_err() {
            // whatever the failure left behind (an interrupted statement), the next read
            // starts afresh
            self.end_batch();
        }
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

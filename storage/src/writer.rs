//! The single writer thread and its group commit.
//!
//! Every write is a job run on one dedicated connection. The thread takes
//! whatever is queued (up to `max_batch` jobs) and runs it as ONE transaction:
//! `BEGIN IMMEDIATE`, the first job bare (its failure rolls the transaction back
//! and the next job begins a new one), then per further job `SAVEPOINT` +
//! `RELEASE` (or `ROLLBACK TO` when that job fails, so its neighbours keep their
//! changes), then `COMMIT`.
//! Only after the commit are the jobs answered, so an answered success is
//! committed.
//!
//! A job submitted with [`Writer::submit_one_write`] promises that its writes are one
//! INSERT/UPDATE/DELETE statement after which it does not fail. It runs without a savepoint
//! wherever it falls in the batch: a failed statement is undone by SQLite itself (a
//! single-row INSERT checks its constraints before it writes; a statement that could fail
//! half-way, one with triggers, opens its own statement journal), so a failed job that left
//! `total_changes` where it was has nothing to undo. One that moved it and still failed
//! broke the promise: its write cannot be undone alone, so the transaction is rolled back and
//! its neighbours are answered with an error (none of them was answered yet, nothing
//! answered as stored is lost). `total_changes` also counts rows a trigger wrote before its
//! statement failed and SQLite undid them, so such a job takes that safe way too.
//!
//! Jobs must not run `BEGIN`/`COMMIT`/`ROLLBACK` themselves (savepoints are fine).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, Sender, TrySendError};
use rusqlite::{Connection, Statement};

use crate::connection::{self, ConnOptions, Role};
use crate::deps::{Generations, Touched};
use crate::error::{ErrorKind, Result, StorageError};
use crate::reader::Commits;
use crate::reply::{self, Reply, ReplySender};

/// A write job as callers usually box it.
pub type Job<T> = Box<dyn FnOnce(&Connection) -> Result<T> + Send>;

/// Answers a job once the fate of its transaction is known: called with the
/// commit error if the batch could not be committed.
type Finish = Box<dyn FnOnce(Option<&StorageError>) + Send>;

/// A type-erased queued job.
trait QueuedJob: Send {
    /// Runs the job; says whether it succeeded and how to answer it.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);
    /// Answers the job with `err` without running it.
    fn fail(self: Box<Self>, err: StorageError);
    /// Whether the job was submitted with [`Writer::submit_one_write`].
    fn one_write(&self) -> bool;
}

type ErasedJob = Box<dyn QueuedJob>;

struct TypedJob<T, E, F> {
    job: F,
    reply: ReplySender<T, E>,
    one_write: bool,
}

impl<T, E, F> QueuedJob for TypedJob<T, E, F>
where
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
    F: FnOnce(&Connection) -> std::result::Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let TypedJob { job, reply, .. } = *self;
        let out = catch_unwind(AssertUnwindSafe(|| job(conn))).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(
                StorageError::new(ErrorKind::Internal, format!("write job panicked: {what}"))
                    .into(),
            )
        });
        let ok = out.is_ok();
        let finish: Finish = Box::new(move |commit_err: Option<&StorageError>| match commit_err {
            Some(e) if ok => reply.send(Err(e.clone().into())),
            _ => reply.send(out),
        });
        (ok, finish)
    }

    fn fail(self: Box<Self>, err: StorageError) {
        self.reply.send(Err(err.into()));
    }

    fn one_write(&self) -> bool {
        self.one_write
    }
}

enum Msg {
    Job(ErasedJob),
    Stop,
}

/// Handle for submitting write jobs to the writer thread. Cheap to clone,
/// `Send + Sync`.
///
/// A job runs on the writer thread, so it must not itself wait on another
/// job (`submit_blocking` from inside a job deadlocks).
#[derive(Clone)]
pub struct Writer {
    tx: Sender<Msg>,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    transactions: AtomicU64,
    jobs: AtomicU64,
}

/// Totals since the writer started, for observing group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed (or attempted).
    pub transactions: u64,
    /// Jobs run.
    pub jobs: u64,
}

impl Writer {
    /// Queues `job` and returns its answer as a future (safe to `.await` on a
    /// runtime thread: it never blocks, the writer thread wakes it).
    pub fn submit<T, F>(&self, job: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit_with(job)
    }

    /// [`submit`](Self::submit) for a job with its own error type: a job that refuses (a
    /// failed validation, a rule) returns its reason as `Err(E)`, which rolls the job back
    /// like any failure and reaches the caller unchanged through the reply.
    pub fn submit_with<T, E, F>(&self, job: F) -> Reply<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, E> + Send + 'static,
    {
        self.queue(job, false)
    }

    /// [`submit_with`](Self::submit_with) for a job whose writes are one INSERT, UPDATE or
    /// DELETE statement (no DDL) after which it does not fail (a record create: reads, one
    /// INSERT, its answer built from the bound values). It runs without the per-job
    /// savepoint: `SAVEPOINT`/`RELEASE` and SQLite's copy of every page the job touches into
    /// the statement journal cost ~9k instructions a create in a group commit (callgrind,
    /// BENCHMARKS.md, branch `writer`). A job that fails after its write still has its write
    /// undone, by rolling back the batch's transaction (see the module doc).
    pub fn submit_one_write<T, E, F>(&self, job: F) -> Reply<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, E> + Send + 'static,
    {
        self.queue(job, true)
    }

    fn queue<T, E, F>(&self, job: F, one_write: bool) -> Reply<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, E> + Send + 'static,
    {
        let (reply_tx, reply_rx) = reply::channel();
        match self.tx.send(Msg::Job(Box::new(TypedJob {
            job,
            reply: reply_tx,
            one_write,
        }))) {
            Ok(()) => reply_rx,
            Err(_) => reply::ready(Err(closed().into())),
        }
    }

    /// Queues `job` and blocks the calling thread until it is committed (or
    /// failed). For CLI commands and tests, never for runtime threads.
    pub fn submit_blocking<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(job).wait()
    }

    /// Counters of transactions and jobs run so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            transactions: self.stats.transactions.load(Ordering::Relaxed),
            jobs: self.stats.jobs.load(Ordering::Relaxed),
        }
    }

    fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

fn closed() -> StorageError {
    StorageError::new(ErrorKind::Closed, "the store is closed")
}

/// A running writer thread.
pub(crate) struct WriterThread {
    pub(crate) writer: Writer,
    handle: Option<JoinHandle<()>>,
}

impl WriterThread {
    /// Opens the writer connection on `path` and starts the thread. `kick` is
    /// poked (non-blocking) after every commit. `cache_kib` replaces the default page cache
    /// size (`PRAGMA cache_size`). `start` runs first on the new thread.
    #[allow(clippy::too_many_arguments)] // one call site (store.rs), each argument named there
    pub(crate) fn spawn(
        path: &Path,
        with: ConnOptions,
        max_batch: usize,
        kick: Sender<()>,
        name: &str,
        follower: bool,
        generations: Option<Arc<Generations>>,
        commits: Commits,
        cache_kib: Option<u32>,
        start: Option<fn()>,
    ) -> Result<Self> {
        let conn = connection::open_as(path, Role::Writer, with, follower)?;
        if let Some(kib) = cache_kib {
            conn.execute_batch(&format!("PRAGMA cache_size = -{kib};"))?;
        }
        let tracked = generations.map(|gens| {
            let touched = Arc::new(Touched::default());
            let hook = Arc::clone(&touched);
            conn.update_hook(Some(
                move |_: rusqlite::hooks::Action, _: &str, table: &str, _| hook.row(table),
            ));
            let auth = Arc::clone(&touched);
            let mut dropping = None;
            conn.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
                auth.authorize(&ctx, &mut dropping)
            }));
            (gens, touched)
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Counters::default());
        let thread_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                if let Some(start) = start {
                    start();
                }
                run(
                    conn,
                    rx,
                    max_batch.max(1),
                    kick,
                    &thread_stats,
                    &commits,
                    tracked.as_ref(),
                )
            })?;
        Ok(Self {
            writer: Writer { tx, stats },
            handle: Some(handle),
        })
    }

    /// Answers everything already queued, then stops the thread.
    pub(crate) fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            self.writer.stop();
            let _ = h.join();
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A writer idle this long hands its page cache back (`sqlite3_db_release_memory`). Under
/// load the cache stays (up to `cache_size`, ~31 MiB per connection); a quiet server's RSS
/// then falls back instead of keeping the peak of its last burst of writes (the log writer's
/// cache is full within minutes of steady traffic). Refilling costs one read per page, which
/// the OS page cache usually answers.
const IDLE_RELEASE: Duration = Duration::from_secs(2);

/// The generations a writer stamps after each commit, and what its hooks collected.
type Tracked = (Arc<Generations>, Arc<Touched>);

fn run(
    conn: Connection,
    rx: Receiver<Msg>,
    max_batch: usize,
    kick: Sender<()>,
    stats: &Counters,
    commits: &AtomicU64,
    tracked: Option<&Tracked>,
) {
    let mut batch: Vec<ErasedJob> = Vec::with_capacity(max_batch.min(1024));
    let mut control = Control::new(&conn);
    // whether the connection may hold cached pages worth handing back (see IDLE_RELEASE)
    let mut warm = false;
    loop {
        let next = if warm {
            match rx.recv_timeout(IDLE_RELEASE) {
                Err(RecvTimeoutError::Timeout) => {
                    let _ = conn.release_memory();
                    // and from the allocator to the OS: this thread now sleeps until the next
                    // job, so nothing else would purge the pages it just freed
                    crate::memory::trim(true);
                    warm = false;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Err(RecvError),
                Ok(msg) => Ok(msg),
            }
        } else {
            rx.recv()
        };
        let mut stop = match next {
            Ok(Msg::Job(j)) => {
                batch.push(j);
                false
            }
            Ok(Msg::Stop) | Err(_) => true,
        };
        while !stop && batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            run_batch(&conn, &mut control, &mut batch, commits, tracked);
            warm = true;
            match kick.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
        if stop {
            break;
        }
    }
    // Jobs queued after Stop are dropped with the receiver; their replies
    // resolve to `Closed`.
}

/// Runs `batch` as one transaction (or more, if a job's failure makes SQLite
/// abandon the transaction) and answers every job.
///
/// `commits` is bumped after a commit (or a transaction a job ended itself) and before any
/// of its jobs is answered, so a batched reader's next read begins a new transaction
/// ([`crate::Reader::batch_reads`]): read-your-writes on every worker. It is bumped before
/// the generations are stamped, so a reader that saw a stamp also sees the bump.
///
/// With `tracked`, the touched tables' generations are stamped after a commit and before its
/// jobs are answered (read-your-writes for the fresh-read cache), and once more at the end
/// for anything that changed outside a clean commit (a stamp too many only costs a miss).
fn run_batch(
    conn: &Connection,
    control: &mut Control<'_>,
    batch: &mut Vec<ErasedJob>,
    commits: &AtomicU64,
    tracked: Option<&Tracked>,
) {
    let committed = || {
        commits.fetch_add(1, Ordering::Release);
    };
    let publish = || {
        if let Some((gens, touched)) = tracked {
            gens.publish(touched);
        }
    };
    let mut done: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut in_tx = false;
    let mut jobs = batch.drain(..);
    while let Some(job) = jobs.next() {
        // The first job of a transaction runs without a savepoint: if it fails, rolling
        // back the whole (so far job-only) transaction undoes exactly its work. This spares
        // the savepoint's statements and SQLite's copy of every page the job touches
        // (~9k instructions per job) whenever the queue holds a single job.
        let first = !in_tx;
        if first {
            if let Err(e) = control.exec(Ctl::Begin) {
                // cannot even start (e.g. locked past the busy timeout by
                // another process): fail the rest of the batch unrun
                job.fail(e.clone());
                for rest in jobs.by_ref() {
                    rest.fail(e.clone());
                }
                break;
            }
            in_tx = true;
        }
        if first {
            let (ok, finish) = job.run(conn);
            if conn.is_autocommit() {
                // the job may have committed what it wrote
                committed();
                let lost = StorageError::new(
                    ErrorKind::Internal,
                    "the transaction was ended by a write job; batch rolled back",
                );
                finish(Some(&lost));
                in_tx = false;
            } else if ok {
                done.push(finish);
            } else {
                // nothing else is in the transaction: drop it and start afresh
                rollback(conn);
                in_tx = false;
                finish(None);
            }
            continue;
        }
        let one_write = job.one_write();
        if !one_write {
            if let Err(e) = control.exec(Ctl::Savepoint) {
                finish_all(&mut done, Some(&e));
                rollback(conn);
                in_tx = false;
                job.fail(e);
                continue;
            }
        }
        let changes = conn.total_changes();
        let (ok, finish) = job.run(conn);
        if conn.is_autocommit() {
            // the job (or SQLite on a severe error) ended the transaction:
            // earlier jobs' work is gone (or committed by the job)
            committed();
            let lost = StorageError::new(
                ErrorKind::Internal,
                "the transaction was ended by a write job; batch rolled back",
            );
            finish_all(&mut done, Some(&lost));
            finish(Some(&lost));
            in_tx = false;
            continue;
        }
        if one_write {
            if ok || conn.total_changes() == changes {
                // done, or failed with nothing written (SQLite undid the failed statement)
                done.push(finish);
            } else {
                // wrote, then failed: only the whole transaction can take its write back
                let undone = StorageError::new(
                    ErrorKind::Internal,
                    "a write job failed after writing; batch rolled back",
                );
                rollback(conn);
                in_tx = false;
                finish_all(&mut done, Some(&undone));
                finish(None);
            }
            continue;
        }
        let settle = if ok {
            control.exec(Ctl::Release)
        } else {
            control
                .exec(Ctl::RollbackTo)
                .and_then(|()| control.exec(Ctl::Release))
        };
        if let Err(e) = settle {
            finish_all(&mut done, Some(&e));
            finish(Some(&e));
            rollback(conn);
            in_tx = false;
            continue;
        }
        done.push(finish);
    }
    if in_tx {
        match control.exec(Ctl::Commit) {
            Ok(()) => {
                committed();
                publish();
                finish_all(&mut done, None)
            }
            Err(e) => {
                rollback(conn);
                finish_all(&mut done, Some(&e));
            }
        }
    }
    publish();
}

fn finish_all(done: &mut Vec<Finish>, err: Option<&StorageError>) {
    for f in done.drain(..) {
        f(err);
    }
}

/// The writer's own transaction statements.
#[derive(Clone, Copy)]
enum Ctl {
    Begin,
    Commit,
    Savepoint,
    Release,
    RollbackTo,
}

impl Ctl {
    fn sql(self) -> &'static str {
        match self {
            Ctl::Begin => "BEGIN IMMEDIATE",
            Ctl::Commit => "COMMIT",
            Ctl::Savepoint => "SAVEPOINT pbjob",
            Ctl::Release => "RELEASE pbjob",
            Ctl::RollbackTo => "ROLLBACK TO pbjob",
        }
    }
}

/// [`Ctl`]'s statements, each prepared on first use and kept for the writer's life, out of
/// rusqlite's statement cache: a `prepare_cached` hashes the SQL, takes the statement out of
/// the LRU and puts it back, ~0.9k instructions a statement (callgrind under a create load,
/// `StatementCache::get` and the `CachedStatement` drop), two or more a transaction.
struct Control<'c> {
    conn: &'c Connection,
    prepared: [Option<Statement<'c>>; 5],
}

impl<'c> Control<'c> {
    fn new(conn: &'c Connection) -> Self {
        Control {
            conn,
            prepared: [None, None, None, None, None],
        }
    }

    fn exec(&mut self, ctl: Ctl) -> Result<()> {
        let slot = &mut self.prepared[ctl as usize];
        let stmt = match slot {
            Some(stmt) => stmt,
            None => slot.insert(self.conn.prepare(ctl.sql())?),
        };
        stmt.execute([])?;
        Ok(())
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            crate::warn(format_args!("writer rollback failed: {e}"));
        }
    }
}

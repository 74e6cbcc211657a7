//! Request and application logs in `auxiliary.db` (`_logs`), written the way PocketBase writes
//! them: one row per log with `level`, `message`, a JSON `data` object and `created`.
//!
//! The request path only builds a small [`RequestLog`] (its `data` JSON already written as
//! text) and hands it over a channel. A dedicated thread wakes every [`FLUSH_EVERY`] (or for a
//! [`Logs::flush`], or when the backlog is full), never per log: a receiver parked on the
//! channel would make every request's `try_send` a futex wake-up and a context switch on the
//! worker's core. It takes what has queued, resolves the details that cost a database read
//! (the auth record behind the token), and inserts up to [`MAX_PER_TRANSACTION`] logs with
//! multi-row INSERTs as one job (one transaction) of the auxiliary database's writer, a thread
//! and connection of its own (`auxiliary.db`, WAL, `synchronous=NORMAL`); a long backlog
//! reaches that job in chunks of `CHUNK` taken while it runs. A failed write loses
//! logs, never a request. That connection computes the hourly index's `strftime` through
//! [`hour`]'s fast path.
//!
//! **Who waits for whom.** The log thread and `auxiliary.db`'s writer and checkpointer run at
//! a lower scheduling weight than the request workers, though above the CPU pool's hashing
//! (`crate::offload`): a request worker sharing their core wins it, so a batch of log rows
//! does not hold a request back, and a login storm's bcrypt does not starve the log writer
//! that waiting requests depend on. At the workers' weight, the scheduler ran a batch of up
//! to 2,000 rows (~25 ms of CPU) in slices of 2.5–4 ms against the worker (`perf sched`,
//! `BENCHMARKS.md` section `logslat`); view p99 was 9.2 ms with logs on against 1.4 ms off
//! (one core, 64 connections, its top section).
//! Requests that outrun the log writer wait instead (`BACKLOG_ROWS`, `BACKLOG_BYTES`):
//! PocketBase keeps every log (its request goroutines write the batch themselves), so no log
//! is dropped for being many; the wait ends as soon as the log thread takes the next batch,
//! so it lasts about one batch's write. It is the request's task that waits, before its
//! response goes out ([`Logs::submit_request`]), never its worker thread, which serves every
//! other connection on its core meanwhile; application logs ([`Logs::log`]) never wait.
//! Only a writer that makes no progress at all for `MAX_WAIT` (another process holding
//! `auxiliary.db`, a `DELETE /api/logs` VACUUM) stops the waits until it moves again; logs
//! beyond `QUEUE_CAPACITY` or `QUEUE_BYTES` are then dropped and counted, so memory stays
//! bounded.

pub mod fit;
pub mod hour;
pub mod request;

pub use request::{PendingRequest, RequestLog, RequestMeta};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use pocketbun_storage::rusqlite::{params, Connection};
use pocketbun_storage::{Reader, Reply, Store};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// slog's levels, as PocketBase stores them.
pub const LEVEL_DEBUG: i64 = -4;
pub const LEVEL_INFO: i64 = 0;
pub const LEVEL_WARN: i64 = 4;
pub const LEVEL_ERROR: i64 = 8;

/// Most logs written in one transaction. A transaction is as long as the backlog: a few rows
/// at a light load, up to this many (or [`MAX_TRANSACTION_TIME`]) when requests outrun the
/// writer. A view's log lands on a random leaf of `idx_logs_message` (its message is the
/// record's URL), so a transaction writes about one index page per row until its rows share
/// pages: the longer the transaction, the more rows each dirty leaf carries. With 256-row
/// transactions the aux writer wrote 7.9 KB and read 3.8 KB per row once `_logs` held 660k
/// view rows; with up to 4,096, 6.5 / 2.7 KB at 735k (`BENCHMARKS.md` section `logsload`).
/// On a copy of `_logs` with 1M view-like rows (messages over 10,000 record ids, the store's
/// 2 MiB cache, 131,072 rows appended): 11.2 KB written and 18.4 KB read per row in 4,096-row
/// transactions, 9.3 / 14.6 KB in 16,384-row ones, 7.5 / 11.1 KB in 65,536-row ones, and
/// 30–32 against 21–23 µs of CPU per row (`BENCHMARKS.md` section `logstage`).
///
/// The rows of a long transaction are not held in memory: the log thread hands them over in
/// chunks of `CHUNK` as the writer takes them (at most `IN_FLIGHT_CHUNKS` queued), and what
/// the writer's 2 MiB page cache cannot hold spills to the WAL. The aux writer keeps the
/// store's page cache (2 MiB) for these transactions: raising it to 16 KiB per row for a
/// long transaction (up to 64 MiB) kept the dirtied index pages in memory (1.7 KB read back
/// per row against 6.3 KB), but it raised the peak RSS of a logged view load from 109 to 145
/// MiB, and of the login storm from 98 to 144 MiB, above PocketBase's 112 and 122 MiB, with
/// no throughput or p99 change that a shared machine could show (`BENCHMARKS.md`, session
/// 12). Issue 18 asks for RSS at or below PocketBase's.
pub const MAX_PER_TRANSACTION: usize = 65_536;
/// Longest the log thread goes on feeding one transaction: its rows become visible (and
/// survive a crash) only at its commit. PocketBase keeps up to 200 logs in memory and writes
/// them 3 s after the last one when fewer come (`core/base.go`, `initLogger`), so a log
/// reaches its `_logs` up to 3 s late, and a crash loses up to 199.
const MAX_TRANSACTION_TIME: Duration = Duration::from_secs(1);
/// Chunks handed to the writer's job and not yet inserted, at most: the log thread waits
/// when the writer is this far behind, and requests then wait for room in the backlog
/// (`BACKLOG_ROWS`) as before. 16 x `CHUNK` rows (~2 MiB of rows at most) is what the queue
/// between them held when a transaction was at most 4,096 rows long.
const IN_FLIGHT_CHUNKS: usize = 16;
/// Logs the log thread takes and hands the writer at a time, also within one transaction: a
/// request that finds the backlog full waits until the next chunk is taken, about one chunk's
/// insert (~3 ms at ~12 µs a row), however long the transaction grows.
const CHUNK: usize = 256;
/// How often the log thread writes what has queued (so the longest a log waits in memory).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A request that finds this many logs queued, or `BACKLOG_BYTES`, waits until the log
/// thread takes a batch (see the module doc). ~0.2 s of logs at 40k requests/s, ~4 MiB.
const BACKLOG_ROWS: usize = 8 * 1024;
const BACKLOG_BYTES: usize = 8 << 20;
/// Longest a request waits for room; a log thread that took nothing in that time is stuck
/// (the busy timeout of a locked `auxiliary.db` is 10 s), and requests stop waiting until it
/// takes a batch again. It was 50 ms: a commit that ran the writer's checkpoint (its fsyncs
/// on this disk) outlasted that, requests stopped waiting, and logs past `QUEUE_BYTES` were
/// dropped: 10–30% of the rows of every 60 s logged view run (`loadtest run -w view`, one
/// core; 588,430 of 1.8M requests' rows in 90 s). A wait holds only its request, never
/// the worker, so it may last as long as a slow commit.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Logs queued beyond this many, or beyond `QUEUE_BYTES`, are dropped: only a stuck log
/// writer gets here (requests no longer wait, and memory must not grow).
const QUEUE_CAPACITY: usize = 64 * 1024;
const QUEUE_BYTES: usize = 16 << 20;
/// Rows per multi-row INSERT statement: a batch is cut into statements of these sizes, the
/// largest first (1,000 rows = 7 x 128 + 64 + 32 + 8), so every batch, however small, goes
/// through a few multi-row statements (8 prepared once each). A statement keeps its b-tree
/// cursors from row to row, and SQLite then finds that an increasing key (the id, the hour of
/// `created`) belongs on the cursor's last page without descending from the root again.
const INSERT_SIZES: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];
/// Shortest pause between two reports of dropped logs.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

/// One log on its way to `_logs`.
pub enum Entry {
    Request(Box<RequestLog>),
    Plain {
        created: String,
        level: i64,
        message: String,
        data: Map<String, Value>,
    },
}

impl Entry {
    /// Bytes the entry holds while queued (roughly, for the queue's memory bound).
    fn size(&self) -> usize {
        match self {
            Entry::Request(log) => log.size(),
            Entry::Plain { message, data, .. } => {
                std::mem::size_of::<Self>() + message.len() + 64 * (data.len() + 1)
            }
        }
    }
}

struct Logger {
    tx: Sender<Entry>,
    /// What wakes the log thread before its next tick.
    wake: Sender<Wake>,
    queue: Arc<Queue>,
}

impl Logger {
    /// Queues `entry`, or drops (and counts) it when the queue is at its hard bounds.
    fn push(&self, entry: Entry) {
        let q = &self.queue;
        let size = entry.size();
        if q.bytes.fetch_add(size, Ordering::Relaxed) + size > QUEUE_BYTES {
            q.bytes.fetch_sub(size, Ordering::Relaxed);
            q.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                q.bytes.fetch_sub(size, Ordering::Relaxed);
                q.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

enum Wake {
    /// "Write everything queued so far, then answer."
    Flush(Sender<()>),
    /// A request waits for room in a full backlog.
    Backlog,
}

/// What the request workers and the log thread share about the queue.
#[derive(Default)]
struct Queue {
    /// Logs dropped because the queue was full.
    dropped: AtomicU64,
    /// Bytes of the logs in the channel.
    bytes: AtomicUsize,
    /// Batches the log thread has taken off the channel so far.
    taken: AtomicU64,
    /// `taken + 1` when a wait for room last ran out (`MAX_WAIT`); 0: never.
    gave_up_at: AtomicU64,
    /// The requests waiting for room, woken when the log thread takes a batch.
    waiting: Mutex<Vec<Waker>>,
}

impl Queue {
    fn full(&self, tx: &Sender<Entry>) -> bool {
        tx.len() >= BACKLOG_ROWS || self.bytes.load(Ordering::Relaxed) >= BACKLOG_BYTES
    }

    /// Waits (at most `MAX_WAIT`) until the log thread has taken a batch off a full
    /// backlog; not at all while the log thread is stuck (a wait ran out and it has taken
    /// nothing since). The request's task waits, not its worker thread: the worker goes on
    /// serving its other connections (a blocked worker stalled every connection on its core,
    /// the ones whose requests log nothing too).
    async fn wait_for_room(&self, tx: &Sender<Entry>, wake: &Sender<Wake>) {
        if self.stuck() {
            return;
        }
        let room = Room {
            queue: self,
            tx,
            wake,
        };
        if monoio::time::timeout(MAX_WAIT, room).await.is_err() {
            self.gave_up_at
                .store(self.taken.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Whether a wait for room ran out and the log thread has taken nothing since.
    fn stuck(&self) -> bool {
        self.gave_up_at.load(Ordering::Relaxed) == self.taken.load(Ordering::Relaxed) + 1
    }

    /// The log thread took a batch off the channel: wakes the requests waiting for room.
    fn took(&self) {
        self.taken.fetch_add(1, Ordering::Relaxed);
        let waiting =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in waiting {
            waker.wake();
        }
    }
}

/// A request's wait for room in a full backlog ([`Queue::wait_for_room`]).
struct Room<'a> {
    queue: &'a Queue,
    tx: &'a Sender<Entry>,
    wake: &'a Sender<Wake>,
}

impl Future for Room<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let q = self.queue;
        if !q.full(self.tx) || q.stuck() {
            return Poll::Ready(());
        }
        {
            let mut waiting = q.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if waiting.is_empty() {
                // the log thread may be asleep until its next tick
                let _ = self.wake.try_send(Wake::Backlog);
            }
            waiting.push(cx.waker().clone());
        }
        // the log thread drains the channel before it takes the wakers under the same lock:
        // a take that came before this waker was added is seen here
        if q.full(self.tx) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// The process's log writer, once started: a field of `state::Core`. Until [`Logs::start`]
/// (and in a process that never starts it: a read replica, the CLI commands) nothing is
/// logged.
#[derive(Default)]
pub struct Logs {
    logger: OnceLock<Logger>,
}

impl Logs {
    /// Starts the log writer thread for `store` (once; later calls do nothing).
    /// `max_data_size` reads the current `logs.maxDataSize`: like PocketBase, which applies it
    /// when it writes a batch of logs, the log thread reads it per batch, so the log of the
    /// request that changed it is already cut to the new size.
    pub fn start(
        &self,
        store: &Arc<Store>,
        max_data_size: impl Fn() -> i64 + Send + 'static,
    ) -> std::io::Result<()> {
        if self.logger.get().is_some() {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
        let (wake, wake_rx) = crossbeam_channel::unbounded();
        let store = store.clone();
        let queue = Arc::new(Queue::default());
        let shared = queue.clone();
        std::thread::Builder::new()
            .name("pocketbun-logs".into())
            .spawn(move || {
                crate::offload::yield_to_request_workers();
                run(&store, &rx, &wake_rx, &shared, max_data_size)
            })?;
        let _ = self.logger.set(Logger { tx, wake, queue });
        Ok(())
    }

    /// Whether a log writer runs (request logging is skipped entirely without one).
    pub fn enabled(&self) -> bool {
        self.logger.get().is_some()
    }

    /// Queues a request's log. A full backlog makes the request wait for the log thread's
    /// next batch (see the module doc), without blocking its worker; a stuck log thread's
    /// full queue drops the log.
    pub async fn submit_request(&self, entry: Entry) {
        if let Some(logger) = self.logger.get() {
            if logger.queue.full(&logger.tx) {
                logger.queue.wait_for_room(&logger.tx, &logger.wake).await;
            }
            logger.push(entry);
        }
    }

    /// Queues an application log, without waiting: these are few (a cron run, a backup, a
    /// failed thumbnail), and the requests' logs, which wait at `BACKLOG_ROWS`, keep the
    /// queue far below `QUEUE_CAPACITY` unless the log writer is stuck.
    pub fn submit(&self, entry: Entry) {
        if let Some(logger) = self.logger.get() {
            logger.push(entry);
        }
    }

    /// Logs dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.logger
            .get()
            .map_or(0, |l| l.queue.dropped.load(Ordering::Relaxed))
    }

    /// An application (non-request) log, subject to `logs.minLevel` and `logs.maxDays`.
    pub fn log(
        &self,
        settings: &crate::settings::Settings,
        level: i64,
        message: &str,
        data: Map<String, Value>,
    ) {
        if settings.logs.max_days == 0 || level < settings.logs.min_level {
            return;
        }
        self.submit(Entry::Plain {
            created: pocketbun_storage::time::now_datetime(),
            level,
            message: message.to_string(),
            data,
        });
    }

    /// Writes everything queued so far (waits at most `timeout`). For shutdown and tests.
    pub fn flush(&self, timeout: Duration) {
        if let Some(logger) = self.logger.get() {
            let (done, wait) = crossbeam_channel::bounded(1);
            if logger.wake.send(Wake::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(timeout);
            }
        }
    }
}

/// A row ready for `_logs`.
struct Row {
    id: String,
    level: i64,
    message: String,
    data: String,
    created: String,
}

fn run(
    store: &Store,
    rx: &Receiver<Entry>,
    wake: &Receiver<Wake>,
    queue: &Queue,
    max_data_size: impl Fn() -> i64,
) {
    let writer = store.aux_writer();
    if let Err(e) = writer.submit(|conn| Ok(hour::install(conn)?)).wait() {
        // SQLite's own strftime stays: the same index entries, only slower
        eprintln!("pocketbun: the log writer keeps SQLite's strftime: {e}");
    }
    let mut auth = AuthCache::new(store.reader().ok());
    let mut ids = LogIds::new();
    let mut batch: Vec<Entry> = Vec::new();
    let mut waiting: Vec<Sender<()>> = Vec::new();
    let mut reported_drops = 0u64;
    let mut last_report: Option<Instant> = None;
    let mut tick_started = Instant::now();
    let mut idle = true;
    // whether `_logs` has PocketBase's old `updated` column: asked once (the query cost ~17k
    // instructions, once per batch before), again only after a failed batch
    let mut has_updated: Option<bool> = None;
    loop {
        if idle {
            // nothing logged lately: park on both channels, so an idle server sleeps; the
            // first log wakes it and starts a tick
            crossbeam_channel::select! {
                recv(rx) -> e => if let Ok(e) = e {
                    queue.bytes.fetch_sub(e.size(), Ordering::Relaxed);
                    batch.push(e);
                },
                recv(wake) -> w => match w {
                    Ok(Wake::Flush(done)) => waiting.push(done),
                    Ok(Wake::Backlog) => {}
                    Err(_) => return,
                },
            }
            tick_started = Instant::now();
        }
        let stop = waiting.is_empty()
            && match wake.recv_timeout(FLUSH_EVERY.saturating_sub(tick_started.elapsed())) {
                Ok(Wake::Flush(done)) => {
                    waiting.push(done);
                    false
                }
                Ok(Wake::Backlog) | Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
        waiting.extend(wake.try_iter().filter_map(|w| match w {
            Wake::Flush(done) => Some(done),
            Wake::Backlog => None,
        }));
        tick_started = Instant::now();
        let dropped = queue.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops && last_report.is_none_or(|t| t.elapsed() >= DROP_REPORT_EVERY)
        {
            eprintln!(
                "pocketbun: {} logs dropped ({dropped} in total): the log writer cannot keep up",
                dropped - reported_drops
            );
            reported_drops = dropped;
            last_report = Some(Instant::now());
        }
        // everything queued before a flush request is in the channel by now
        idle = batch.is_empty() && rx.is_empty();
        let mut drained = false;
        // the previous transaction, maybe still committing (a commit that checkpoints waits
        // for the disk): the next one's rows are taken and handed over meanwhile
        let mut committing: Option<Reply<bool>> = None;
        while !drained {
            drained = take(rx, queue, &mut batch, CHUNK);
            if batch.is_empty() {
                break;
            }
            let first = auth.finish_all(&mut batch, &mut ids, max_data_size());
            // a full first chunk means a backlog: the transaction goes on with the chunks
            // taken while it runs, until the queue is empty or it holds MAX_PER_TRANSACTION
            let backlog = !drained;
            let (more, chunks) = crossbeam_channel::bounded::<Vec<Row>>(IN_FLIGHT_CHUNKS);
            let started = Instant::now();
            let known = has_updated;
            let written = writer.submit(move |conn| {
                let updated = match known {
                    Some(updated) => updated,
                    None => has_updated_column(conn)?,
                };
                let mut inserted = insert(conn, &first, updated);
                if backlog {
                    // ends when the log thread drops its sender; a failure drops this
                    // receiver, which stops the log thread's sends
                    for rows in chunks.iter() {
                        if inserted.is_err() {
                            break;
                        }
                        inserted = insert(conn, &rows, updated);
                    }
                }
                inserted?;
                Ok(updated)
            });
            if backlog {
                let mut sent = CHUNK;
                while !drained
                    && sent < MAX_PER_TRANSACTION
                    && started.elapsed() < MAX_TRANSACTION_TIME
                {
                    drained = take(rx, queue, &mut batch, CHUNK.min(MAX_PER_TRANSACTION - sent));
                    if batch.is_empty() {
                        break;
                    }
                    let rows = auth.finish_all(&mut batch, &mut ids, max_data_size());
                    sent += rows.len();
                    // queued for the job even while the writer still commits the previous
                    // transaction, so requests find room during that commit's checkpoint;
                    // waits while `IN_FLIGHT_CHUNKS` are not yet inserted
                    if more.send(rows).is_err() {
                        break;
                    }
                }
            }
            drop(more);
            if let Some(previous) = committing.replace(written) {
                has_updated = settled(previous.wait());
            }
        }
        if let Some(last) = committing {
            has_updated = settled(last.wait());
        }
        auth.forget();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
        if stop {
            return;
        }
    }
}

/// What a log transaction's outcome says of `_logs`' `updated` column (`None`: ask again).
fn settled(written: pocketbun_storage::Result<bool>) -> Option<bool> {
    match written {
        Ok(updated) => Some(updated),
        Err(e) => {
            // once per failure streak would be nicer; a silent drop hid a schema mismatch
            eprintln!("pocketbun: writing request logs failed: {e}");
            None
        }
    }
}

/// Moves up to `max` queued logs into `batch` and wakes the requests waiting for room;
/// whether the queue ran empty.
fn take(rx: &Receiver<Entry>, queue: &Queue, batch: &mut Vec<Entry>, max: usize) -> bool {
    let mut empty = false;
    while batch.len() < max {
        match rx.try_recv() {
            Ok(e) => {
                queue.bytes.fetch_sub(e.size(), Ordering::Relaxed);
                batch.push(e);
            }
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                empty = true;
                break;
            }
        }
    }
    queue.took();
    empty
}

/// Ids for `_logs` rows: 15 characters of PocketBase's id alphabet, like the random ids
/// PocketBase gives its logs, but increasing: 11 base-36 digits of a strictly increasing
/// microsecond clock, then 4 random ones. A random id put every row's primary-key entry on a
/// random page of an index as large as the table, so each transaction and each checkpoint
/// wrote about one index page per log; increasing ids all land on the index's last page.
///
/// The 4 random characters only keep ids of two processes apart; they come from a SplitMix64
/// sequence seeded once from the CSPRNG (a CSPRNG draw and a char-by-char `String` per id
/// were ~1k instructions of the ~3.6k the log thread spent per row).
struct LogIds {
    last: i64,
    state: u64,
}

impl LogIds {
    const DIGITS: &'static [u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

    fn new() -> Self {
        let seed = pocketbun_storage::random::random_string(16)
            .bytes()
            .fold(0u64, |acc, b| acc.rotate_left(6) ^ u64::from(b));
        LogIds {
            last: 0,
            state: seed,
        }
    }

    /// SplitMix64's next value.
    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next(&mut self) -> String {
        self.last = pocketbun_storage::time::unix_micros().max(self.last + 1);
        let mut id = [0u8; 15];
        let mut n = self.last as u64;
        for d in id[..11].iter_mut().rev() {
            *d = Self::DIGITS[(n % 36) as usize];
            n /= 36;
        }
        let mut r = self.random();
        for d in &mut id[11..] {
            *d = Self::DIGITS[(r % 36) as usize];
            r /= 36;
        }
        // only ASCII digits and letters were written
        String::from_utf8(id.to_vec()).unwrap_or_default()
    }
}

/// The `INSERT` of `n` rows into `_logs` (with the `updated` column of pb_data made by
/// PocketBase before v0.23, set to `created`). `OR FAIL`: a multi-row `INSERT` that may abort
/// makes SQLite keep a statement journal (a copy of every page the statement touches, so a
/// failing row can undo the rows before it); on a failure here the whole batch's transaction
/// is rolled back anyway, so the journal would be pure cost.
fn insert_sql(n: usize, has_updated: bool) -> &'static str {
    static SQL: OnceLock<[Vec<String>; 2]> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        [false, true].map(|updated| {
            INSERT_SIZES
                .iter()
                .map(|&n| build_insert_sql(n, updated))
                .collect()
        })
    });
    let i = INSERT_SIZES.iter().position(|&s| s == n).unwrap_or(0);
    &all[usize::from(has_updated)][i]
}

fn build_insert_sql(n: usize, has_updated: bool) -> String {
    use std::fmt::Write;
    let mut sql = String::from(if has_updated {
        "INSERT OR FAIL INTO `_logs` (`id`, `level`, `message`, `data`, `created`, `updated`) VALUES "
    } else {
        "INSERT OR FAIL INTO `_logs` (`id`, `level`, `message`, `data`, `created`) VALUES "
    });
    for i in 0..n {
        let p = i * 5;
        let sep = if i > 0 { "," } else { "" };
        let _ = write!(
            sql,
            "{sep}(?{}, ?{}, ?{}, ?{}, ?{}",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5
        );
        if has_updated {
            let _ = write!(sql, ", ?{}", p + 5);
        }
        sql.push(')');
    }
    sql
}

/// Whether `_logs` has an `updated` column: only in pb_data made by PocketBase before v0.23's
/// schema; a fresh v0.39 one does not.
fn has_updated_column(conn: &Connection) -> pocketbun_storage::Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) > 0 FROM pragma_table_info('_logs') WHERE name = 'updated'",
        )?
        .query_row([], |r| r.get(0))?)
}

fn insert(conn: &Connection, rows: &[Row], has_updated: bool) -> pocketbun_storage::Result<()> {
    let mut rest = rows;
    for n in INSERT_SIZES {
        if rest.len() < n {
            continue;
        }
        let mut stmt = conn.prepare_cached(insert_sql(n, has_updated))?;
        while rest.len() >= n {
            let (chunk, tail) = rest.split_at(n);
            for (i, r) in chunk.iter().enumerate() {
                let p = i * 5;
                stmt.raw_bind_parameter(p + 1, &r.id)?;
                stmt.raw_bind_parameter(p + 2, r.level)?;
                stmt.raw_bind_parameter(p + 3, &r.message)?;
                stmt.raw_bind_parameter(p + 4, &r.data)?;
                stmt.raw_bind_parameter(p + 5, &r.created)?;
            }
            stmt.raw_execute()?;
            rest = tail;
        }
    }
    Ok(())
}

/// Resolves `Authorization` headers to their auth records, remembering the answers for one
/// batch (a client usually sends many requests with the same token).
struct AuthCache {
    reader: Option<Reader>,
    /// The log thread's own verified tokens (across batches).
    verified: crate::auth::token::Verified,
    known: HashMap<String, Option<crate::auth::AuthRecord>>,
}

impl AuthCache {
    fn new(reader: Option<Reader>) -> Self {
        AuthCache {
            reader,
            verified: Default::default(),
            known: HashMap::new(),
        }
    }

    fn resolve(&mut self, header: &str) -> Option<crate::auth::AuthRecord> {
        if let Some(found) = self.known.get(header) {
            return found.clone();
        }
        let found = self
            .reader
            .as_ref()
            .and_then(|r| crate::auth::authenticate(r, &self.verified, Some(header)));
        self.known.insert(header.to_string(), found.clone());
        found
    }

    fn forget(&mut self) {
        self.known.clear();
    }

    /// Every entry taken into `batch`, as rows (the batch is left empty).
    fn finish_all(&mut self, batch: &mut Vec<Entry>, ids: &mut LogIds, max_data: i64) -> Vec<Row> {
        batch
            .drain(..)
            .map(|e| self.finish(e, ids, max_data))
            .collect()
    }

    fn finish(&mut self, entry: Entry, ids: &mut LogIds, max_data_size: i64) -> Row {
        match entry {
            Entry::Plain {
                created,
                level,
                message,
                data,
            } => Row {
                id: ids.next(),
                level,
                message: fit::message(message),
                data: fit::data(to_json(&data), max_data_size),
                created,
            },
            Entry::Request(log) => {
                let auth = log.authorization.as_deref().and_then(|h| self.resolve(h));
                let mut data = String::with_capacity(256);
                log.write_data(&mut data, auth.as_ref());
                let ms = log
                    .created
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                Row {
                    id: ids.next(),
                    level: log.level,
                    data: fit::data(data, max_data_size),
                    message: fit::message(log.message),
                    created: pocketbun_storage::time::format_unix_millis(ms),
                }
            }
        }
    }
}

/// The JSON text of a log's data as Go writes it (sorted keys).
fn to_json(data: &Map<String, Value>) -> String {
    crate::error::to_go_json(data)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| "{}".to_string())
}

/// Deletes the logs created at or before `max_days` days ago (the `__pbLogsCleanup__` job).
pub fn delete_old(store: &Store, max_days: i64) -> pocketbun_storage::Result<usize> {
    let now_ms = pocketbun_storage::time::unix_micros() / 1000;
    let before = pocketbun_storage::time::format_unix_millis(now_ms - max_days * 86_400_000);
    store.aux_writer().submit_blocking(move |conn| {
        Ok(conn.execute("DELETE FROM `_logs` WHERE `created` <= ?1", params![before])?)
    })
}

#[cfg(test)]
mod tests {
    use super::{
        has_updated_column, insert, Entry, LogIds, Queue, Row, Wake, BACKLOG_ROWS, CHUNK,
        QUEUE_CAPACITY,
    };
    use pocketbun_storage::random::{ID_ALPHABET, ID_LENGTH};
    use pocketbun_storage::rusqlite::Connection;
    use std::sync::Arc;

    fn plain(i: usize) -> Entry {
        Entry::Plain {
            created: String::new(),
            level: 0,
            message: i.to_string(),
            data: Default::default(),
        }
    }

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
    }

    /// A request that finds the backlog full wakes the log thread and waits until it takes a
    /// batch: it never goes on with a full backlog unless the log thread is stuck. Once a
    /// wait has run out, requests stop waiting until the log thread takes something again.
    /// The wait is the request's task's: the worker thread runs other tasks meanwhile.
    #[test]
    fn a_full_backlog_waits_for_the_log_thread_unless_it_is_stuck() {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
        let (wake, wake_rx) = crossbeam_channel::unbounded();
        let queue = Arc::new(Queue::default());
        for i in 0..BACKLOG_ROWS {
            tx.send(plain(i)).unwrap();
        }
        assert!(queue.full(&tx));
        // a log thread that takes one batch when a waiting request wakes it, but only once
        // the test says so
        let (go, go_rx) = crossbeam_channel::bounded::<()>(1);
        let taker = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                assert!(matches!(wake_rx.recv(), Ok(Wake::Backlog)));
                go_rx.recv().unwrap();
                for _ in 0..CHUNK {
                    rx.try_recv().unwrap();
                }
                queue.took();
                (rx, wake_rx)
            })
        };
        let done = std::rc::Rc::new(std::cell::Cell::new(false));
        let mut rt = runtime();
        rt.block_on(async {
            let waiter = {
                let (queue, tx, wake, done) =
                    (queue.clone(), tx.clone(), wake.clone(), done.clone());
                monoio::spawn(async move {
                    queue.wait_for_room(&tx, &wake).await;
                    done.set(true);
                })
            };
            // this task runs while the request waits: the thread is not blocked
            while queue.waiting.lock().unwrap().is_empty() && !done.get() {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert!(
                !done.get() || queue.stuck(),
                "the wait ended before the log thread took"
            );
            go.send(()).unwrap();
            waiter.await;
        });
        assert!(done.get());
        // (a log thread not scheduled within MAX_WAIT counts as stuck: not a failure)
        assert!(
            !queue.full(&tx) || queue.stuck(),
            "went on with a full backlog"
        );
        let (rx, _wake_rx) = taker.join().unwrap();
        assert!(!queue.full(&tx));

        // a log thread that takes nothing: the wait runs out and the next ones are skipped
        for i in 0..CHUNK {
            tx.send(plain(i)).unwrap();
        }
        assert!(queue.full(&tx) && !queue.stuck());
        rt.block_on(queue.wait_for_room(&tx, &wake));
        assert!(queue.stuck());
        rt.block_on(queue.wait_for_room(&tx, &wake));
        assert!(queue.full(&tx) && queue.stuck());
        // it moves again: requests wait again, and no waker is left behind (the timed-out
        // wait's is woken, a no-op, on the runtime it came from)
        rx.try_recv().unwrap();
        rt.block_on(async { queue.took() });
        assert!(!queue.stuck());
        assert!(queue.waiting.lock().unwrap().is_empty());
    }

    /// Every row of a batch of any size is stored once, through the statements of every
    /// size, in both `_logs` shapes (with and without PocketBase's old `updated`).
    #[test]
    fn batches_of_any_size_are_stored_whole() {
        for updated in [false, true] {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch(include_str!("../../../storage/schema/aux_schema.sql"))
                .unwrap();
            if updated {
                conn.execute_batch("ALTER TABLE _logs ADD COLUMN updated TEXT DEFAULT '' NOT NULL")
                    .unwrap();
            }
            let mut ids = LogIds::new();
            let mut total = 0;
            for n in [0usize, 1, 2, 3, 7, 50, 127, 128, 129, 255, 1000] {
                let rows: Vec<Row> = (0..n)
                    .map(|i| Row {
                        id: ids.next(),
                        level: (i % 3) as i64 * 4,
                        message: format!("GET /x/{i}"),
                        data: format!("{{\"n\":{i}}}"),
                        created: "2026-12-07 09:15:42.123Z".into(),
                    })
                    .collect();
                insert(&conn, &rows, has_updated_column(&conn).unwrap()).unwrap();
                total += n;
                let stored: usize = conn
                    .query_row("SELECT count(*) FROM _logs", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(stored, total, "after a batch of {n}");
            }
            if updated {
                let odd: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM _logs WHERE updated != created",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(odd, 0);
            }
        }
    }

    #[test]
    fn log_ids_look_like_pocketbase_ids_and_increase() {
        let mut ids = LogIds::new();
        let all: Vec<String> = (0..1000).map(|_| ids.next()).collect();
        for id in &all {
            assert_eq!(id.len(), ID_LENGTH, "{id}");
            assert!(id.chars().all(|c| ID_ALPHABET.contains(c)), "{id}");
        }
        // strictly increasing even within one microsecond: every insert goes to the end
        for pair in all.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
    }
}

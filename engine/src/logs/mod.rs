//! Request and application logs in `auxiliary.db` (`_logs`), written the way PocketBase writes
//! them: one row per log with `level`, `message`, a JSON `data` object and `created`.
//!
//! The request path only builds a small [`RequestLog`] and hands it over a bounded channel
//! (`try_send`: a full queue drops the log, it never waits). A dedicated thread resolves the
//! details that cost a database read (the auth record behind the token), collects up to
//! [`BATCH_SIZE`] logs or [`FLUSH_AFTER`] worth of them, and inserts the batch as one job of
//! the auxiliary database's writer. A failed write loses logs, never a request.

pub mod request;

pub use request::{PendingRequest, RequestLog};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use pocketbun_storage::rusqlite::{params, Connection};
use pocketbun_storage::{Reader, Store};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// slog's levels, as PocketBase stores them.
pub const LEVEL_DEBUG: i64 = -4;
pub const LEVEL_INFO: i64 = 0;
pub const LEVEL_WARN: i64 = 4;
pub const LEVEL_ERROR: i64 = 8;

/// Most logs written in one transaction.
pub const BATCH_SIZE: usize = 200;
/// Longest a log waits in memory before it is written.
pub const FLUSH_AFTER: Duration = Duration::from_millis(500);
/// Logs queued beyond this are dropped (the writer cannot keep up; requests must not wait).
const QUEUE_CAPACITY: usize = 64 * 1024;

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

enum Msg {
    Entry(Entry),
    /// Write everything queued so far, then answer.
    Flush(Sender<()>),
}

struct Logger {
    tx: Sender<Msg>,
    dropped: AtomicU64,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Starts the log writer thread for `store` (once per process; later calls do nothing).
pub fn start(store: &Arc<Store>) -> std::io::Result<()> {
    if LOGGER.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
    let store = store.clone();
    std::thread::Builder::new()
        .name("pocketbun-logs".into())
        .spawn(move || run(&store, &rx))?;
    let _ = LOGGER.set(Logger {
        tx,
        dropped: AtomicU64::new(0),
    });
    Ok(())
}

/// Whether a log writer runs (request logging is skipped entirely without one).
pub fn enabled() -> bool {
    LOGGER.get().is_some()
}

/// Queues a log without ever blocking; drops it when the queue is full.
pub fn submit(entry: Entry) {
    if let Some(logger) = LOGGER.get() {
        match logger.tx.try_send(Msg::Entry(entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                logger.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Logs dropped because the queue was full.
pub fn dropped() -> u64 {
    LOGGER
        .get()
        .map_or(0, |l| l.dropped.load(Ordering::Relaxed))
}

/// An application (non-request) log, subject to `logs.minLevel` and `logs.maxDays`.
pub fn log(
    settings: &crate::settings::Settings,
    level: i64,
    message: &str,
    data: Map<String, Value>,
) {
    if settings.logs.max_days == 0 || level < settings.logs.min_level {
        return;
    }
    submit(Entry::Plain {
        created: pocketbun_storage::time::now_datetime(),
        level,
        message: message.to_string(),
        data,
    });
}

/// Writes everything queued so far (waits at most `timeout`). For shutdown and tests.
pub fn flush(timeout: Duration) {
    if let Some(logger) = LOGGER.get() {
        let (done, wait) = crossbeam_channel::bounded(1);
        if logger.tx.send_timeout(Msg::Flush(done), timeout).is_ok() {
            let _ = wait.recv_timeout(timeout);
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

fn run(store: &Store, rx: &Receiver<Msg>) {
    let writer = store.aux_writer();
    let mut auth = AuthCache::new(store.reader().ok());
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH_SIZE);
    let mut waiting: Vec<Sender<()>> = Vec::new();
    loop {
        match rx.recv() {
            Ok(Msg::Entry(e)) => batch.push(e),
            Ok(Msg::Flush(done)) => waiting.push(done),
            Err(_) => return,
        }
        let deadline = Instant::now() + FLUSH_AFTER;
        while waiting.is_empty() && batch.len() < BATCH_SIZE {
            match rx.recv_deadline(deadline) {
                Ok(Msg::Entry(e)) => batch.push(e),
                Ok(Msg::Flush(done)) => waiting.push(done),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // a flush request must see everything queued before it
        if !waiting.is_empty() {
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Msg::Entry(e) => batch.push(e),
                    Msg::Flush(done) => waiting.push(done),
                }
            }
        }
        if !batch.is_empty() {
            let rows: Vec<Row> = batch.drain(..).map(|e| auth.finish(e)).collect();
            auth.forget();
            // waiting for the commit keeps at most one batch in the writer's queue
            if let Err(e) = writer.submit(move |conn| insert(conn, &rows)).wait() {
                // once per failure streak would be nicer; a silent drop hid a schema mismatch
                eprintln!("pocketbun: writing request logs failed: {e}");
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

fn insert(conn: &Connection, rows: &[Row]) -> pocketbun_storage::Result<()> {
    // `_logs` has an `updated` column only in pb_data made by PocketBase before v0.23's
    // schema; a fresh v0.39 one does not
    let has_updated: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('_logs') WHERE name = 'updated'",
        [],
        |r| r.get(0),
    )?;
    let sql = if has_updated {
        "INSERT INTO `_logs` (`id`, `level`, `message`, `data`, `created`, `updated`) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
    } else {
        "INSERT INTO `_logs` (`id`, `level`, `message`, `data`, `created`) \
         VALUES (?1, ?2, ?3, ?4, ?5)"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    for r in rows {
        stmt.execute(params![r.id, r.level, r.message, r.data, r.created])?;
    }
    Ok(())
}

/// Resolves `Authorization` headers to their auth records, remembering the answers for one
/// batch (a client usually sends many requests with the same token).
struct AuthCache {
    reader: Option<Reader>,
    known: HashMap<String, Option<crate::auth::AuthRecord>>,
}

impl AuthCache {
    fn new(reader: Option<Reader>) -> Self {
        AuthCache {
            reader,
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
            .and_then(|r| crate::auth::authenticate(r, Some(header)));
        self.known.insert(header.to_string(), found.clone());
        found
    }

    fn forget(&mut self) {
        self.known.clear();
    }

    fn finish(&mut self, entry: Entry) -> Row {
        match entry {
            Entry::Plain {
                created,
                level,
                message,
                data,
            } => Row {
                id: pocketbun_storage::random::new_record_id(),
                level,
                message,
                data: to_json(&data),
                created,
            },
            Entry::Request(log) => {
                let auth = log.authorization.as_deref().and_then(|h| self.resolve(h));
                let (level, message, created) =
                    (log.level, log.message.clone(), log.created.clone());
                let data = log.into_data(auth.as_ref());
                Row {
                    id: pocketbun_storage::random::new_record_id(),
                    level,
                    message,
                    data: to_json(&data),
                    created,
                }
            }
        }
    }
}

/// The JSON text of a log's data as Go writes it (sorted keys, HTML-safe escaping).
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

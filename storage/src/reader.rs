//! Read connections: one per worker thread, with a deadline per read.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::connection::{self, Role};
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
}

impl Reader {
    pub(crate) fn open(path: &Path, timeout: Duration, busy_timeout: Duration) -> Result<Self> {
        let conn = connection::open(path, Role::Reader, busy_timeout)?;
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
        })
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
        let result = f(&self.conn);
        let expired = self.origin.elapsed().as_nanos() as u64 >= limit;
        self.deadline.store(NO_DEADLINE, Ordering::Relaxed);
        match result {
            Err(e) if e.kind() == ErrorKind::Timeout || (expired && is_interrupt(&e)) => {
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

    /// The default per-read timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn is_interrupt(e: &StorageError) -> bool {
    e.message().contains("interrupt")
}

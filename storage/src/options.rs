//! Tunables for a [`crate::Store`].

use std::time::Duration;

use crate::connection::ConnOptions;

/// Options for [`crate::Store::open`]. `StoreOptions::default()` is what the
/// server uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Longest a single read may run before it is interrupted with
    /// [`crate::ErrorKind::Timeout`].
    pub read_timeout: Duration,
    /// SQLite busy timeout for every connection (PocketBase uses 10 s).
    pub busy_timeout: Duration,
    /// Most jobs the writer folds into one transaction.
    pub max_batch: usize,
    /// How often the background checkpointer runs a PASSIVE checkpoint
    /// when there were commits since the previous one.
    pub checkpoint_interval: Duration,
    /// WAL size (bytes) above which the checkpointer runs right after a commit.
    pub checkpoint_wal_bytes: u64,
    /// Another process owns checkpointing (Litestream, `serve --replicate`): the store
    /// issues no checkpoint at all, neither the periodic PASSIVE ones nor the TRUNCATE at
    /// close. With Litestream attached an app's TRUNCATE blocked 10 s and failed a
    /// concurrent writer with "database is locked" (issue 19).
    pub external_checkpoints: bool,
    /// `data.db` is a read replica's follower copy, written only by `litestream restore -f`
    /// (`serve --replica`): it is opened read-only in rollback-journal mode with every page
    /// read through mmap (see [`crate::connection`]), never initialised, never checkpointed;
    /// a write job fails with SQLite's "readonly database". `auxiliary.db` stays local.
    pub follower_data: bool,
    /// Read tracking for the engine's fresh-read cache ([`crate::deps`]): the writer of
    /// `data.db` stamps each commit's tables ([`crate::Generations`]) and its readers report
    /// the statements they run. Off, neither pays for hooks or tracing (`serve --no-cache`,
    /// a replica, every command but `serve`).
    pub read_tracking: bool,
    /// `serve --dev`: every connection prints each statement it runs with its time
    /// ([`crate::dev`]).
    pub sql_log: bool,
    /// Page cache of `auxiliary.db`'s writer (the request log), KiB; PocketBase's 32,000
    /// everywhere else. The log only appends: rows get increasing ids and timestamps, so a
    /// transaction touches the right edge of the table and of each index, and the pages of
    /// the rows it inserts. A bigger cache keeps what was appended earlier, which nothing
    /// reads again (the logs API has its own connections): ~31 MiB of RSS after a few
    /// seconds of logged traffic, for nothing.
    pub aux_writer_cache_kib: u32,
    /// Run first on `auxiliary.db`'s writer and checkpointer threads (the request log's):
    /// the server lowers their scheduling weight there, so a request worker sharing a core
    /// with a batch of log rows or a checkpoint of them wins it (`engine/src/logs`).
    pub aux_thread_start: Option<fn()>,
}

impl StoreOptions {
    /// What each connection of the store is opened with.
    pub(crate) fn connection(&self) -> ConnOptions {
        // four times the checkpointer's threshold, in 4 KiB frames (PocketBase's page size)
        let backstop =
            (self.checkpoint_wal_bytes.saturating_mul(4) / 4096).clamp(1, u32::MAX as u64);
        ConnOptions {
            busy_timeout: self.busy_timeout,
            sql_log: self.sql_log,
            writer_autocheckpoint: if self.external_checkpoints {
                0
            } else {
                backstop as u32
            },
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(10),
            max_batch: 1024,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_wal_bytes: 4 * 1024 * 1024,
            external_checkpoints: false,
            follower_data: false,
            read_tracking: false,
            sql_log: false,
            aux_writer_cache_kib: 2048,
            aux_thread_start: None,
        }
    }
}

//! Background WAL checkpointing, off the writer's critical path.
//!
//! This thread owns its own connection and runs `PRAGMA wal_checkpoint(PASSIVE)`
//! when the writer reports commits: soon once the WAL file is large, otherwise at
//! most once per interval. The writer's own `wal_autocheckpoint` is only a
//! backstop at four times that size (see `ConnOptions::writer_autocheckpoint`: a
//! checkpoint on this connection cannot restart the WAL under a steady write load). PASSIVE never waits for readers or the writer. When
//! the store closes it finishes with a TRUNCATE checkpoint so the directory
//! is left with an empty WAL, like a cleanly stopped PocketBase.
//!
//! With `external_checkpoints` (Litestream owns checkpointing) the thread runs no checkpoint
//! at all: it only waits for the writer to stop, so the store's shape stays the same.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;

use crate::connection::{self, ConnOptions, Role};
use crate::error::Result;

/// A running checkpointer thread. Dropping all `kick` senders (i.e. stopping
/// the writer) makes it do a final checkpoint and exit.
pub(crate) struct Checkpointer {
    handle: Option<JoinHandle<()>>,
}

/// Counters reported by `PRAGMA wal_checkpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStats {
    /// 1 if the checkpoint could not complete because of a lock.
    pub busy: i64,
    /// Frames in the WAL.
    pub log_frames: i64,
    /// Frames copied back into the database.
    pub checkpointed_frames: i64,
}

impl Checkpointer {
    /// Starts the thread; returns it and the sender the writer pokes after commits.
    /// `start` runs first on the new thread.
    #[allow(clippy::too_many_arguments)] // one call site (store.rs), each argument named there
    pub(crate) fn spawn(
        db_path: &Path,
        with: ConnOptions,
        interval: Duration,
        wal_bytes: u64,
        external: bool,
        name: &str,
        follower: bool,
        start: Option<fn()>,
    ) -> Result<(Self, Sender<()>)> {
        let conn = connection::open_as(db_path, Role::Checkpointer, with, follower)?;
        let external = external || follower;
        let wal_path = wal_path(db_path);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                if let Some(start) = start {
                    start();
                }
                if external {
                    // the kicks are drained until the writer stops; Litestream checkpoints
                    while rx.recv().is_ok() {}
                    return;
                }
                run(conn, rx, wal_path, interval, wal_bytes)
            })?;
        Ok((
            Self {
                handle: Some(handle),
            },
            tx,
        ))
    }

    /// Waits for the thread to finish (after the writer stopped).
    pub(crate) fn join(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// Runs one checkpoint of `mode` (`PASSIVE`, `FULL`, `RESTART`, `TRUNCATE`).
pub fn checkpoint(conn: &Connection, mode: &str) -> Result<CheckpointStats> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    let stats = conn.query_row(&sql, [], |r| {
        Ok(CheckpointStats {
            busy: r.get(0)?,
            log_frames: r.get(1)?,
            checkpointed_frames: r.get(2)?,
        })
    })?;
    Ok(stats)
}

fn run(conn: Connection, rx: Receiver<()>, wal: PathBuf, interval: Duration, wal_bytes: u64) {
    let mut dirty = false;
    let mut last = Instant::now();
    // A checkpoint does not shrink the WAL file (the writer starts over at its beginning), so
    // once the file has reached `wal_bytes` its length says "big" after every commit: each
    // commit then ran a checkpoint with its fsyncs. Under logged views (one core, 64
    // connections, 256-row log transactions) `auxiliary.db`'s checkpointer took 115–122 ms of
    // CPU in 3 s against the log writer's 195–200 ms, and 41–44 ms with this gap (`perf
    // sched`, BENCHMARKS.md section `logslat`). A big WAL is
    // checkpointed at most every `interval / 10` (100 ms of writes past `wal_bytes` at most).
    let big_gap = interval / 10;
    loop {
        let wait = if dirty {
            interval.saturating_sub(last.elapsed())
        } else {
            // nothing to do until the writer commits
            Duration::from_secs(3600)
        };
        match rx.recv_timeout(wait) {
            Ok(()) => {
                dirty = true;
                let big = last.elapsed() >= big_gap
                    && std::fs::metadata(&wal)
                        .map(|m| m.len() >= wal_bytes)
                        .unwrap_or(false);
                if !big && last.elapsed() < interval {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if !dirty {
                    continue;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Err(e) = checkpoint(&conn, "PASSIVE") {
            crate::warn(format_args!("passive WAL checkpoint failed: {e}"));
        }
        dirty = false;
        last = Instant::now();
    }
    if let Err(e) = checkpoint(&conn, "TRUNCATE") {
        crate::warn(format_args!("final WAL checkpoint failed: {e}"));
    }
}

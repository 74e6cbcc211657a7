//! [`Store`]: a `pb_data` directory opened for serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::checkpoint::Checkpointer;
use crate::connection::{self, Role};
use crate::deps::Generations;
use crate::error::{ErrorKind, Result, StorageError};
use crate::options::StoreOptions;
use crate::reader::{Commits, Reader};
use crate::schema::{self, Found};
use crate::writer::{Writer, WriterThread};

/// Main database file name inside `pb_data`.
pub const DATA_DB: &str = "data.db";
/// Auxiliary (logs) database file name inside `pb_data`.
pub const AUX_DB: &str = "auxiliary.db";

/// One SQLite file with its writer and checkpointer threads.
struct Database {
    path: PathBuf,
    /// A follower copy (`StoreOptions::follower_data`): every connection read-only.
    follower: bool,
    writer: Writer,
    /// Transactions the writer committed ([`crate::reader::Commits`]), for its readers.
    commits: Commits,
    threads: Mutex<Option<(WriterThread, Checkpointer)>>,
}

impl Database {
    fn start(
        path: PathBuf,
        opts: &StoreOptions,
        label: &str,
        follower: bool,
        generations: Option<Arc<Generations>>,
        writer_cache_kib: Option<u32>,
        thread_start: Option<fn()>,
    ) -> Result<Self> {
        let (checkpointer, kick) = Checkpointer::spawn(
            &path,
            opts.connection(),
            opts.checkpoint_interval,
            opts.checkpoint_wal_bytes,
            opts.external_checkpoints,
            &format!("pb-ckpt-{label}"),
            follower,
            thread_start,
        )?;
        let commits = Commits::default();
        let writer_thread = WriterThread::spawn(
            &path,
            opts.connection(),
            opts.max_batch,
            kick,
            &format!("pb-writer-{label}"),
            follower,
            generations,
            Arc::clone(&commits),
            writer_cache_kib,
            thread_start,
        )?;
        Ok(Self {
            path,
            follower,
            writer: writer_thread.writer.clone(),
            commits,
            threads: Mutex::new(Some((writer_thread, checkpointer))),
        })
    }

    fn stop(&self) {
        let threads = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((mut writer, mut checkpointer)) = threads {
            writer.shutdown();
            // the writer thread owned the checkpointer's kick sender; with it
            // gone the checkpointer does its final checkpoint and exits
            drop(writer);
            checkpointer.join();
        }
    }
}

/// An open `pb_data` directory: `data.db` and `auxiliary.db`, each with one
/// writer thread (group commit) and a background checkpointer. Share it
/// (e.g. in an `Arc`) and give each worker thread its own [`Reader`].
pub struct Store {
    dir: PathBuf,
    opts: StoreOptions,
    data: Database,
    aux: Database,
    /// `data.db`'s per-table generations, when [`StoreOptions::read_tracking`] is on
    /// ([`crate::deps`]).
    generations: Option<Arc<Generations>>,
}

impl Store {
    /// Opens `dir` (created if missing). Missing databases are created
    /// exactly like a fresh PocketBase v0.39.11 creates them; existing ones
    /// are used as they are.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::new(
                ErrorKind::Io,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let data_path = dir.join(DATA_DB);
        let aux_path = dir.join(AUX_DB);
        if !opts.follower_data {
            let conn = connection::open(&data_path, Role::Checkpointer, opts.connection())?;
            if schema::inspect_data(&conn)? == Found::Empty {
                schema::init_data(&conn)?;
            }
        }
        {
            let conn = connection::open(&aux_path, Role::Checkpointer, opts.connection())?;
            if schema::inspect_aux(&conn)? == Found::Empty {
                schema::init_aux(&conn)?;
            }
        }
        let generations = opts.read_tracking.then(|| Arc::new(Generations::default()));
        let data = Database::start(
            data_path,
            &opts,
            "data",
            opts.follower_data,
            generations.clone(),
            None,
            None,
        )?;
        let aux_cache = Some(opts.aux_writer_cache_kib);
        let aux = Database::start(
            aux_path,
            &opts,
            "aux",
            false,
            None,
            aux_cache,
            opts.aux_thread_start,
        )?;
        Ok(Store {
            dir: dir.to_path_buf(),
            opts,
            data,
            aux,
            generations,
        })
    }

    /// The `pb_data` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// A new read connection to `data.db`, for one worker thread. With read tracking on
    /// it reports the statements it runs ([`crate::deps`]).
    pub fn reader(&self) -> Result<Reader> {
        Reader::open(
            &self.data.path,
            self.opts.read_timeout,
            self.opts.connection(),
            self.data.follower,
            self.generations.clone(),
            Arc::clone(&self.data.commits),
        )
    }

    /// `data.db`'s per-table generations, when [`StoreOptions::read_tracking`] is on.
    pub fn generations(&self) -> Option<&Arc<Generations>> {
        self.generations.as_ref()
    }

    /// A new read connection to `auxiliary.db`, for one worker thread.
    pub fn aux_reader(&self) -> Result<Reader> {
        Reader::open(
            &self.aux.path,
            self.opts.read_timeout,
            self.opts.connection(),
            self.aux.follower,
            None,
            Arc::clone(&self.aux.commits),
        )
    }

    /// Handle to the `data.db` writer thread.
    pub fn writer(&self) -> Writer {
        self.data.writer.clone()
    }

    /// Handle to the `auxiliary.db` writer thread (logs).
    pub fn aux_writer(&self) -> Writer {
        self.aux.writer.clone()
    }

    /// Commits everything already queued, stops the writer threads and
    /// checkpoints the WALs. Later submits fail with `Closed`. Idempotent.
    pub fn close(&self) {
        self.data.stop();
        self.aux.stop();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

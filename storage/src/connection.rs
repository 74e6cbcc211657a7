//! Opening SQLite connections with PocketBase's pragmas.
//!
//! PocketBase opens every connection with: busy_timeout(10000),
//! journal_mode(WAL), journal_size_limit(200000000), synchronous(NORMAL),
//! foreign_keys(ON), temp_store(MEMORY), cache_size(-32000). The busy
//! timeout goes first so that switching to WAL waits for other connections.
//!
//! Every connection also runs in SQLite's defensive mode, as PocketBase 0.40 opens its
//! connections (`_defensive=1`): nothing, not even `/api/sql`, can corrupt the file with
//! `PRAGMA writable_schema` or turn the journal off (`journal_mode=OFF` keeps `wal`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// What a connection is used for; decides the extra pragmas on top of
/// PocketBase's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The single writer: automatic checkpoints off (the checkpointer does them).
    Writer,
    /// A per-worker read connection: `query_only` so nothing else ever writes.
    Reader,
    /// The background checkpointer.
    Checkpointer,
}

/// Turns on SQLite's defensive mode (`SQLITE_DBCONFIG_DEFENSIVE`) for `conn`; every
/// connection PocketBun opens to a `pb_data` database goes through this.
pub fn defensive(conn: &Connection) -> Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    Ok(())
}

/// What every connection of a store is opened with ([`crate::StoreOptions::connection`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnOptions {
    /// SQLite's busy timeout (PocketBase uses 10 s).
    pub busy_timeout: Duration,
    /// Print each statement with its run time (`serve --dev`, [`crate::dev`]).
    pub sql_log: bool,
    /// The writer's `wal_autocheckpoint` (WAL frames; 0: never). The checkpointer thread
    /// ([`crate::checkpoint`]) does the routine checkpoints off the writer's path, but a
    /// checkpoint on another connection cannot restart the WAL while writes keep coming:
    /// SQLite starts the log over only when a write transaction begins with every frame
    /// already copied, and under a steady create load the next commit always lands while
    /// the checkpointer is still copying. `data.db-wal` then grew without bound: 1.8 GB in
    /// 18 s of `loadtest run -w create` (64 connections, one core, 14k creates/s; 6.8 GB in
    /// 40 s with checkpoints spaced 100 ms apart), until the load paused. A checkpoint run
    /// by the writer itself right after its commit (SQLite's own autocheckpoint, what
    /// PocketBase runs with) finishes before the next write begins, so the log restarts:
    /// the same load then kept it at 19.9 MB. It is set well above the checkpointer's
    /// threshold so it only runs when the checkpointer cannot keep the WAL short; it costs
    /// that load's p99 (8 → 28–32 ms: the commit that runs it waits for the copy and fsync).
    /// 0 where Litestream owns checkpoints.
    pub writer_autocheckpoint: u32,
}

/// The most `mmap_size` a follower connection asks for: SQLite's default compile-time cap
/// (`SQLITE_MAX_MMAP_SIZE`, 0x7fff0000 ≈ 2 GiB) is what it grants; pages past it would be read
/// through the page cache (see [`open_follower`]).
const FOLLOWER_MMAP: i64 = 0x7fff_0000;

/// A read-only connection to a follower copy: a database that `litestream restore -f`
/// rewrites page by page under SQLite's own file locks, in rollback-journal mode. No WAL
/// pragma (a WAL connection would hold a shared lock for its whole life and the follower
/// would wait forever). Pages are read through mmap because the follower changes the file
/// without always touching page 1's change counter: a page cache kept across transactions
/// would then serve stale pages (measured: a plain connection never saw a commit; with mmap
/// each read transaction sees the file as the last applied transaction left it).
pub(crate) fn open_follower(path: &Path, with: ConnOptions) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    defensive(&conn)?;
    conn.busy_timeout(with.busy_timeout)?;
    conn.execute_batch(&format!(
        "PRAGMA mmap_size = {FOLLOWER_MMAP};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -2000;
         PRAGMA query_only = ON;"
    ))?;
    conn.set_prepared_statement_cache_capacity(256);
    crate::dev::trace(&conn, with.sql_log);
    Ok(conn)
}

/// [`open`], or [`open_follower`] for a follower copy.
pub(crate) fn open_as(
    path: &Path,
    role: Role,
    with: ConnOptions,
    follower: bool,
) -> Result<Connection> {
    if follower {
        open_follower(path, with)
    } else {
        open(path, role, with)
    }
}

pub(crate) fn open(path: &Path, role: Role, with: ConnOptions) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    defensive(&conn)?;
    conn.busy_timeout(with.busy_timeout)?;
    // journal_mode returns a row; pragma_update_and_check reads it.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("{}: journal_mode is {mode}, not wal", path.display());
    }
    conn.execute_batch(
        "PRAGMA journal_size_limit = 200000000;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32000;",
    )?;
    match role {
        Role::Writer => {
            conn.pragma_update(None, "wal_autocheckpoint", with.writer_autocheckpoint)?
        }
        Role::Reader => conn.execute_batch("PRAGMA query_only = ON;")?,
        Role::Checkpointer => {}
    }
    conn.set_prepared_statement_cache_capacity(256);
    crate::dev::trace(&conn, with.sql_log);
    Ok(conn)
}

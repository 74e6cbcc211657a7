//! Creating a fresh `pb_data` exactly like PocketBase v0.39.11 does, and
//! recognising an existing one.
//!
//! The schema itself is data (see `storage/schema/`); this module only
//! replays it, filling in per-install random secrets and timestamps.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{ErrorKind, Result, StorageError};
use crate::random;
use crate::time;

const DATA_SCHEMA: &str = include_str!("../schema/data_schema.sql");
const DATA_COLLECTIONS: &str = include_str!("../schema/data_collections.sql");
const SETTINGS_JSON: &str = include_str!("../schema/settings.json");
const MIGRATIONS: &str = include_str!("../schema/migrations.txt");
const AUX_SCHEMA: &str = include_str!("../schema/aux_schema.sql");

const ANALYZE_MARKER: &str = "-- @analyze";

/// Length of the auth collections' token secrets.
pub const SECRET_LENGTH: usize = 50;

/// The migration files a fresh PocketBase v0.39.11 records, in order.
pub fn system_migrations() -> impl Iterator<Item = &'static str> {
    MIGRATIONS.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// State of a database file as found on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No schema objects at all: needs initialisation.
    Empty,
    /// Holds the expected tables: use as-is.
    Initialised,
}

/// Inspects `data.db`.
pub(crate) fn inspect_data(conn: &Connection) -> Result<Found> {
    inspect(conn, "_collections", "data.db")
}

/// Inspects `auxiliary.db`.
pub(crate) fn inspect_aux(conn: &Connection) -> Result<Found> {
    inspect(conn, "_logs", "auxiliary.db")
}

fn inspect(conn: &Connection, required: &str, file: &str) -> Result<Found> {
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if objects == 0 {
        return Ok(Found::Empty);
    }
    let has: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [required],
            |r| r.get(0),
        )
        .optional()?;
    if has.is_some() {
        Ok(Found::Initialised)
    } else {
        Err(StorageError::new(
            ErrorKind::Invalid,
            format!("{file} is not a PocketBase database (no {required} table)"),
        ))
    }
}

/// Creates the full v0.39.11 `data.db` schema and rows in one transaction.
pub(crate) fn init_data(conn: &Connection) -> Result<()> {
    let (before, after) = DATA_SCHEMA
        .split_once(ANALYZE_MARKER)
        .ok_or_else(|| StorageError::new(ErrorKind::Internal, "schema marker missing"))?;
    let mut collections = DATA_COLLECTIONS.lines().filter(|l| !l.trim().is_empty());
    let mut migrations = system_migrations();
    let mut applied = time::unix_micros();
    let mut next_applied = || {
        // strictly increasing like PocketBase's sequential migration runs
        let now = time::unix_micros().max(applied + 1);
        applied = now;
        now
    };

    let tx = conn.unchecked_transaction()?;
    // `_migrations` first, with the auxiliary migration already recorded.
    let (first_ddl, rest_before) = before
        .split_once(";\n")
        .ok_or_else(|| StorageError::new(ErrorKind::Internal, "schema malformed"))?;
    tx.execute_batch(first_ddl)?;
    let aux_migration = migrations
        .next()
        .ok_or_else(|| StorageError::new(ErrorKind::Internal, "no migrations"))?;
    tx.execute(
        "INSERT INTO `_migrations` (`file`, `applied`) VALUES (?1, ?2)",
        params![aux_migration, next_applied()],
    )?;
    tx.execute_batch(rest_before)?;
    // the first system collection exists when PocketBase first optimizes
    let first = collections
        .next()
        .ok_or_else(|| StorageError::new(ErrorKind::Internal, "no collections"))?;
    tx.execute_batch(&fill_collection_row(first))?;
    tx.execute_batch("ANALYZE `_migrations`; ANALYZE `_collections`; DELETE FROM sqlite_stat4;")?;
    tx.execute_batch(after)?;
    for row in collections {
        tx.execute_batch(&fill_collection_row(row))?;
    }
    for file in migrations {
        tx.execute(
            "INSERT INTO `_migrations` (`file`, `applied`) VALUES (?1, ?2)",
            params![file, next_applied()],
        )?;
    }
    let now = time::now_datetime();
    tx.execute(
        "INSERT INTO `_params` (`id`, `value`, `created`, `updated`) VALUES ('settings', ?1, ?2, ?2)",
        params![SETTINGS_JSON.trim_end().as_bytes(), now],
    )?;
    tx.commit()?;
    Ok(())
}

/// Creates the `auxiliary.db` schema (`_logs`).
pub(crate) fn init_aux(conn: &Connection) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(AUX_SCHEMA)?;
    tx.commit()?;
    Ok(())
}

fn fill_collection_row(template: &str) -> String {
    let now = time::now_datetime();
    let mut out = String::with_capacity(template.len() + 512);
    let mut parts = template.split("{{SECRET}}");
    if let Some(head) = parts.next() {
        out.push_str(head);
    }
    for part in parts {
        out.push_str(&random::random_string(SECRET_LENGTH));
        out.push_str(part);
    }
    out.replace("{{NOW}}", &now)
}

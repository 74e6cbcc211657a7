//! Application settings: the model (`model`), applying submitted JSON (`bind`), validation
//! rules (`rules`), mail delivery (`mail`), and the in-memory copy every worker reads.
//!
//! PocketBase keeps the settings as one JSON document in `_params` (row `settings`, value a
//! BLOB). PocketBun loads it at start-up into a [`SettingsCell`] shared by all workers; a
//! PATCH saves through the writer thread and swaps the shared copy once the commit is done.

pub mod bind;
pub mod mail;
pub mod model;
pub mod rules;
pub mod templates;

pub use model::Settings;

use crate::snapshot::Snapshot;
use bind::{Bind, BindError};
use pocketbun_storage::rusqlite::{params, Connection, OptionalExtension};
use pocketbun_storage::{ErrorKind, StorageError, Store};
use std::sync::Arc;

/// The current settings, shared by all workers and replaced as a whole on change.
pub struct SettingsCell {
    /// Versioned by commit order (`write_stored`'s number): a later save is never
    /// overwritten by an earlier one that finished after it.
    inner: Snapshot<Settings>,
}

impl SettingsCell {
    pub fn new(settings: Settings) -> Self {
        SettingsCell {
            inner: Snapshot::new(settings, 0),
        }
    }

    /// Reads the stored settings of `store` (saving the defaults first when there are none, as
    /// PocketBase does at start-up).
    pub fn load(store: &Store) -> Result<Self, StorageError> {
        let reader = store.reader()?;
        let stored = reader.read(read_stored)?;
        let settings = match stored {
            Some(raw) => parse_stored(&raw)?,
            None => {
                let defaults = Settings::default();
                let json = defaults.to_stored_json();
                store
                    .writer()
                    .submit_blocking(move |conn| write_stored(conn, &json).map(|_| ()))?;
                defaults
            }
        };
        Ok(SettingsCell::new(settings))
    }

    /// Whether the rate limiter is on (read in place: the per-request check when it is off,
    /// as by default).
    pub fn rate_limits_enabled(&self) -> bool {
        self.inner.with(|s| s.rate_limits.enabled)
    }

    pub fn get(&self) -> Arc<Settings> {
        self.inner.get()
    }

    /// Re-reads the stored settings with `reader` and makes them current: a read replica
    /// does this after its follower copy of `data.db` moved (`crate::replicate::follower`).
    /// A replica never commits, so its versions come from a counter of its own, above any
    /// commit version a process reaches.
    pub fn reload(&self, reader: &pocketbun_storage::Reader) -> Result<(), StorageError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 48);
        if let Some(raw) = reader.read(read_stored)? {
            let settings = parse_stored(&raw)?;
            let version = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.set(settings, version);
        }
        Ok(())
    }

    fn set(&self, settings: Settings, version: u64) {
        self.inner.install(Arc::new(settings), version);
    }

    /// Saves `settings` in `_params` through the writer and, once committed, makes them current.
    pub async fn save(&self, store: &Store, settings: Settings) -> Result<(), StorageError> {
        let json = settings.to_stored_json();
        let version = store
            .writer()
            .submit(move |conn| write_stored(conn, &json))
            .await?;
        self.set(settings, version);
        Ok(())
    }
}

/// The raw stored settings document, if the row exists.
fn read_stored(conn: &Connection) -> pocketbun_storage::Result<Option<Vec<u8>>> {
    let row = conn
        .prepare_cached("SELECT `value` FROM `_params` WHERE `id` = 'settings'")?
        .query_row([], |r| {
            let v = r.get_ref(0)?;
            Ok(match v {
                pocketbun_storage::rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
                pocketbun_storage::rusqlite::types::ValueRef::Text(t) => t.to_vec(),
                _ => Vec::new(),
            })
        })
        .optional()?;
    Ok(row)
}

/// Applies a stored document onto the defaults (fields it lacks keep their default).
fn parse_stored(raw: &[u8]) -> Result<Settings, StorageError> {
    let invalid = |why: String| {
        StorageError::new(
            ErrorKind::Invalid,
            format!("invalid settings db data: {why}"),
        )
    };
    // not JSON: sealed with --encryptionEnv's key (crate::encryption)
    let value: serde_json::Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(_) => {
            let plain = crate::encryption::open_settings(raw).map_err(|e| {
                StorageError::new(ErrorKind::Invalid, format!("cannot read the settings: {e}"))
            })?;
            serde_json::from_slice(&plain).map_err(|e| invalid(e.to_string()))?
        }
    };
    let mut settings = Settings::default();
    settings.bind(&value).map_err(|BindError(e)| invalid(e))?;
    Ok(settings)
}

/// Upserts the settings row; returns a number that grows with every save (commit order).
fn write_stored(conn: &Connection, json: &[u8]) -> pocketbun_storage::Result<u64> {
    let now = pocketbun_storage::time::now_datetime();
    let stored = crate::encryption::seal_settings(json.to_vec())
        .map_err(|e| StorageError::new(ErrorKind::Internal, e))?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO `_params` (`id`, `value`, `created`, `updated`) VALUES ('settings', ?1, ?2, ?2) \
         ON CONFLICT(`id`) DO UPDATE SET `value` = excluded.`value`, `updated` = excluded.`updated`",
    )?;
    match stored {
        crate::encryption::Stored::Plain(json) => stmt.execute(params![json, now])?,
        crate::encryption::Stored::Sealed(text) => stmt.execute(params![text, now])?,
    };
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // runs on the single writer thread: the counter follows commit order
    Ok(SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

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

use crate::encryption::{SettingsKey, Stored};
use crate::snapshot::Snapshot;
use bind::{Bind, BindError};
use pocketbun_storage::rusqlite::{params, Connection, OptionalExtension};
use pocketbun_storage::{ErrorKind, StorageError, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The current settings, shared by all workers and replaced as a whole on change, with what
/// loading and saving them needs: the key they are stored under and the version counters.
pub struct SettingsCell {
    /// Versioned by commit order (`write_stored`'s number): a later save is never
    /// overwritten by an earlier one that finished after it.
    inner: Snapshot<Settings>,
    /// `--encryptionEnv`'s key ([`crate::encryption`]): stored settings are sealed with it.
    key: SettingsKey,
    /// Saves so far; bumped inside the writer job, so it follows commit order.
    saves: Arc<AtomicU64>,
    /// Versions of a read replica's reloads: above any commit version a process reaches.
    reloads: AtomicU64,
}

impl SettingsCell {
    pub fn new(settings: Settings, key: SettingsKey) -> Self {
        SettingsCell {
            inner: Snapshot::new(settings, 0),
            key,
            saves: Arc::new(AtomicU64::new(1)),
            reloads: AtomicU64::new(1 << 48),
        }
    }

    /// Reads the stored settings of `store` (saving the defaults first when there are none, as
    /// PocketBase does at start-up); `key` opens and seals them.
    pub fn load(store: &Store, key: SettingsKey) -> Result<Self, StorageError> {
        let reader = store.reader()?;
        let stored = reader.read(read_stored)?;
        if let Some(raw) = stored {
            let settings = parse_stored(&key, &raw)?;
            return Ok(SettingsCell::new(settings, key));
        }
        let cell = SettingsCell::new(Settings::default(), key);
        let stored = cell.seal(&Settings::default())?;
        let saves = cell.saves.clone();
        store
            .writer()
            .submit_blocking(move |conn| write_stored(conn, stored, &saves).map(|_| ()))?;
        Ok(cell)
    }

    /// The stored form of `settings` under this cell's key.
    fn seal(&self, settings: &Settings) -> Result<Stored, StorageError> {
        crate::encryption::seal_settings(&self.key, settings.to_stored_json())
            .map_err(|e| StorageError::new(ErrorKind::Internal, e))
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
        if let Some(raw) = reader.read(read_stored)? {
            let settings = parse_stored(&self.key, &raw)?;
            let version = self.reloads.fetch_add(1, Ordering::SeqCst);
            self.set(settings, version);
        }
        Ok(())
    }

    fn set(&self, settings: Settings, version: u64) {
        self.inner.install(Arc::new(settings), version);
    }

    /// Saves `settings` in `_params` through the writer and, once committed, makes them current.
    pub async fn save(&self, store: &Store, settings: Settings) -> Result<(), StorageError> {
        let stored = self.seal(&settings)?;
        let saves = self.saves.clone();
        let version = store
            .writer()
            .submit(move |conn| write_stored(conn, stored, &saves))
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
fn parse_stored(key: &SettingsKey, raw: &[u8]) -> Result<Settings, StorageError> {
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
            let plain = crate::encryption::open_settings(key, raw).map_err(|e| {
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
fn write_stored(
    conn: &Connection,
    stored: Stored,
    saves: &AtomicU64,
) -> pocketbun_storage::Result<u64> {
    let now = pocketbun_storage::time::now_datetime();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO `_params` (`id`, `value`, `created`, `updated`) VALUES ('settings', ?1, ?2, ?2) \
         ON CONFLICT(`id`) DO UPDATE SET `value` = excluded.`value`, `updated` = excluded.`updated`",
    )?;
    match stored {
        Stored::Plain(json) => stmt.execute(params![json, now])?,
        Stored::Sealed(text) => stmt.execute(params![text, now])?,
    };
    // runs on the single writer thread: the counter follows commit order
    Ok(saves.fetch_add(1, Ordering::Relaxed))
}

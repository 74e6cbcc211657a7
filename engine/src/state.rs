//! The process-wide state the domain works with: the store, the schema and settings
//! snapshots, the CPU pool, the log writer, file storage's clients, replication, and what
//! `serve`'s flags fix for the process (the password scheme; the settings key is inside the
//! settings cell).
//! Built once at start-up, shared by every worker and background thread (crons, backups,
//! the log writer) as an `Arc<Core>`, so a test can build two of them in one process. Mutable
//! statics are refused by `.ci/statics.py`.
//!
//! The request path's own additions (realtime hub, record hooks, `serve` options, the cron
//! scheduler, the NATS link) are in `ctx::Shared`, which dereferences to this, so the domain
//! never names the API layer.

use crate::app_store::AppStore;
use crate::named_slot::NamedSlot;
use crate::offload::CpuPool;
use crate::schema::SchemaState;
use crate::settings::SettingsCell;
use pocketbun_storage::Store;
use std::sync::Arc;

/// The state shared by all workers and background threads.
pub struct Core {
    /// Default request body limit (PocketBase: 32 MiB).
    pub body_limit: usize,
    /// Litestream's child, a primary's positions, a replica's follower and forwarding.
    pub replication: Arc<crate::replicate::Replication>,
    pub store: Arc<Store>,
    /// Where password hashing and other CPU-heavy work runs, off the request workers.
    pub cpu: CpuPool,
    /// The collections and their compiled view for the query crate.
    pub schema: SchemaState,
    /// The application settings (`_params`), replaced as a whole when they change.
    pub settings: SettingsCell,
    /// PocketBase's in-memory app store: throttles and short-lived keys of the auth flows.
    pub app_store: AppStore,
    /// The one backup/restore that may run at a time (its name while it runs).
    pub backup_slot: NamedSlot,
    /// How new password hashes are made (`serve --password-hash`).
    pub password_scheme: crate::auth::password::Scheme,
    /// The request and application logs' writer (started by `serve` on a primary).
    pub logs: crate::logs::Logs,
    /// File storage's S3 clients and the thumbs being made.
    pub files: crate::files::Files,
}

impl Core {
    /// Hashes `plain` with this process's password scheme at `cost`, on the CPU pool (bcrypt
    /// takes ~74 ms at cost 10: never on a request worker).
    pub async fn hash_password(&self, plain: String, cost: u32) -> Result<String, String> {
        crate::auth::password::hash(&self.cpu, self.password_scheme, plain, cost).await
    }

    /// Where record files live now: the `s3` bucket when enabled, else `pb_data/storage`.
    pub fn record_fs(&self) -> Result<pocketbun_storage::files::Fs, String> {
        (self.files).record_fs(&self.settings.get(), self.store.dir())
    }

    /// The object key of a record folder (`<collectionId>/<recordId>`) from its local path.
    pub fn dir_key(&self, dir: &std::path::Path) -> Option<String> {
        crate::files::dir_key(self.store.dir(), dir)
    }
}

/// A private copy of the conformance fixture's `pb_data` (`../shared/conformance/pb_data`) in
/// a new temp dir named after `prefix`, for unit tests that need PocketBase's data. `None`
/// with one printed line when the fixture is missing; under `CI=true` that fails instead.
#[cfg(test)]
pub(crate) fn fixture_copy(prefix: &str) -> Option<std::path::PathBuf> {
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/pb_data");
    if !src.join("data.db").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the conformance fixture (shared/conformance/pb_data) is missing"
        );
        eprintln!("skipped: the conformance fixture (shared/conformance/pb_data) is missing");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        pocketbun_storage::random::random_string(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["data.db", "auxiliary.db"] {
        std::fs::copy(src.join(name), dir.join(name)).unwrap();
    }
    Some(dir)
}

/// A process state over `dir` (a fresh `pb_data` is created there when it is empty), with its
/// own settings key and password scheme: nothing is shared with another `Core` of the same
/// process.
#[cfg(test)]
pub(crate) fn open_core(
    dir: &std::path::Path,
    key: crate::encryption::SettingsKey,
    password_scheme: crate::auth::password::Scheme,
) -> Result<Arc<Core>, pocketbun_storage::StorageError> {
    let store = Arc::new(pocketbun_storage::Store::open(dir, Default::default())?);
    let collections = store
        .reader()?
        .read(pocketbun_storage::collections::Collections::load)?;
    Ok(Arc::new(Core {
        body_limit: 32 << 20,
        replication: Default::default(),
        cpu: crate::offload::CpuPool::new(1).map_err(|e| {
            pocketbun_storage::StorageError::new(
                pocketbun_storage::ErrorKind::Internal,
                e.to_string(),
            )
        })?,
        schema: crate::schema::SchemaState::new(collections),
        settings: crate::settings::SettingsCell::load(&store, key)?,
        store,
        app_store: Default::default(),
        backup_slot: Default::default(),
        password_scheme,
        logs: Default::default(),
        files: Default::default(),
    }))
}

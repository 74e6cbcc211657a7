//! PocketBase's system jobs, with its ids and schedules.

use super::{JobFn, Scheduler};
use crate::state::Core;
use pocketbun_storage::rusqlite::Connection;
use std::sync::Arc;
use std::time::Duration;

pub const DB_OPTIMIZE_ID: &str = "__pbDBOptimize__";
pub const MFA_CLEANUP_ID: &str = "__pbMFACleanup__";
pub const OTP_CLEANUP_ID: &str = "__pbOTPCleanup__";
pub const LOGS_CLEANUP_ID: &str = "__pbLogsCleanup__";
pub const AUTO_BACKUP_ID: &str = "__pbAutoBackup__";

pub(super) fn register(s: &Scheduler, shared: &Arc<Core>) {
    let add = |id: &str, expr: &str, f: JobFn| {
        s.add(id, expr, f)
            .unwrap_or_else(|e| panic!("built-in cron {id}: {e}"));
    };
    let sh = shared.clone();
    add(DB_OPTIMIZE_ID, "0 0 * * *", Arc::new(move || optimize(&sh)));
    let sh = shared.clone();
    add(
        MFA_CLEANUP_ID,
        "0 * * * *",
        Arc::new(move || delete_expired(&sh, "_mfas", "mfa")),
    );
    let sh = shared.clone();
    add(
        OTP_CLEANUP_ID,
        "0 * * * *",
        Arc::new(move || delete_expired(&sh, "_otps", "otp")),
    );
    let sh = shared.clone();
    add(
        LOGS_CLEANUP_ID,
        "0 */6 * * *",
        Arc::new(move || {
            let max_days = sh.settings.get().logs.max_days;
            if let Err(e) = crate::logs::delete_old(&sh.store, max_days) {
                warn(&sh, "Failed to delete old logs", &e.to_string());
            }
        }),
    );
    sync_auto_backup(s, shared);
}

fn warn(shared: &Core, message: &str, error: &str) {
    let mut data = serde_json::Map::new();
    data.insert("error".into(), error.into());
    shared.logs.log(
        &shared.settings.get(),
        crate::logs::LEVEL_WARN,
        message,
        data,
    );
}

/// Checkpoints both WALs and lets SQLite refresh its statistics. The checkpoint is PASSIVE:
/// a blocking (TRUNCATE) one would hold up every write while it waits for readers; the
/// store's own checkpointer keeps the WAL short anyway. With `serve --replicate` there is no
/// checkpoint at all: Litestream owns them (`external_checkpoints`).
fn optimize(shared: &Core) {
    let dir = shared.store.dir();
    let files = if shared.store.options().external_checkpoints {
        &[][..]
    } else {
        &[pocketbun_storage::DATA_DB, pocketbun_storage::AUX_DB][..]
    };
    for file in files {
        let outcome = (|| -> pocketbun_storage::Result<()> {
            let conn = Connection::open(dir.join(file))?;
            pocketbun_storage::defensive(&conn)?;
            conn.busy_timeout(Duration::from_millis(100))?;
            pocketbun_storage::checkpoint(&conn, "PASSIVE")?;
            Ok(())
        })();
        if let Err(e) = outcome {
            warn(
                shared,
                "Failed to run periodic PRAGMA wal_checkpoint",
                &e.to_string(),
            );
        }
    }
    let optimized = shared
        .store
        .writer()
        .submit_blocking(|conn| Ok(conn.execute_batch("PRAGMA optimize")?));
    if let Err(e) = optimized {
        warn(
            shared,
            "Failed to run periodic PRAGMA optimize",
            &e.to_string(),
        );
    }
}

/// Deletes the MFA/OTP records older than their auth collection's `duration` option.
fn delete_expired(shared: &Core, table: &'static str, option: &'static str) {
    let outcome = shared.store.writer().submit_blocking(move |conn| {
        let durations = crate::recstore::authrows::auth_durations(conn, option)?;
        let exists = crate::recstore::authrows::table_exists(conn, table)?;
        if !exists {
            return Ok(0);
        }
        let now_ms = pocketbun_storage::time::unix_micros() / 1000;
        let mut deleted = 0;
        for (collection, seconds) in durations {
            let before = pocketbun_storage::time::format_unix_millis(now_ms - seconds * 1000);
            deleted += crate::recstore::authrows::delete_created_before(
                conn,
                table,
                &collection,
                &before,
            )?;
        }
        Ok(deleted)
    });
    if let Err(e) = outcome {
        let what = if table == "_mfas" { "MFA" } else { "OTP" };
        warn(
            shared,
            &format!("Failed to delete expired {what} sessions"),
            &e.to_string(),
        );
    }
}

/// Keeps `__pbAutoBackup__` in line with `backups.cron` (added, rescheduled or removed).
pub(super) fn sync_auto_backup(s: &Scheduler, shared: &Arc<Core>) {
    let wanted = shared.settings.get().backups.cron.trim().to_string();
    let mut current = s.auto_backup.lock().unwrap_or_else(|p| p.into_inner());
    if current.as_deref() == Some(wanted.as_str()) {
        return;
    }
    if wanted.is_empty() {
        s.remove(AUTO_BACKUP_ID);
    } else {
        let sh = shared.clone();
        if s.add(
            AUTO_BACKUP_ID,
            &wanted,
            Arc::new(move || crate::backups::auto_backup(&sh)),
        )
        .is_err()
        {
            s.remove(AUTO_BACKUP_ID);
        }
    }
    *current = Some(wanted);
}

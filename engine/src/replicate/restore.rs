//! `pocketbun restore --from <url> [--timestamp T]`: a `pb_data` rebuilt from a Litestream
//! replica with `litestream restore`, one database at a time, into a directory that must be
//! missing or empty (nothing is ever overwritten). `--timestamp` (RFC 3339, e.g.
//! `2026-12-07T02:31:38Z`) restores the state as of that time: point-in-time recovery.

use std::path::Path;
use std::process::{Command, Stdio};

/// Restores `data.db` and `auxiliary.db` from `url` into `dir`. On failure whatever was
/// created is removed again and the error says which step failed (Litestream's own message is
/// on stderr above it).
pub fn run(bin: &Path, url: &str, timestamp: Option<&str>, dir: &Path) -> Result<(), String> {
    super::check_url(url)?;
    let created = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "refusing to restore into {}: it is not empty (restore into a new directory)",
                    dir.display()
                ));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            true
        }
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let outcome = restore_all(bin, url, timestamp, dir);
    if outcome.is_err() {
        if created {
            let _ = std::fs::remove_dir_all(dir);
        } else if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    outcome
}

fn restore_all(bin: &Path, url: &str, timestamp: Option<&str>, dir: &Path) -> Result<(), String> {
    for db in super::DATABASES {
        let mut cmd = Command::new(bin);
        cmd.arg("restore").arg("-o").arg(dir.join(db));
        if let Some(t) = timestamp {
            cmd.args(["-timestamp", t]);
        }
        if db == pocketbun_storage::AUX_DB {
            // a sidecar may replicate data.db alone: PocketBun creates a missing auxiliary.db
            cmd.arg("-if-replica-exists");
        }
        cmd.arg(super::db_url(url, db))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if !status.success() {
            return Err(format!("litestream restore of {db} failed ({status})"));
        }
    }
    if !dir.join(pocketbun_storage::DATA_DB).is_file() {
        return Err(format!("the replica at {url} holds no data.db"));
    }
    Ok(())
}

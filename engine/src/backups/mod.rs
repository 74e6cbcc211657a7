//! Backups of `pb_data` as PocketBase makes them: zip archives in `pb_data/backups`, holding
//! everything of `pb_data` except the backups themselves and PocketBase's scratch folders.
//!
//! The databases go into the archive as consistent snapshots (`VACUUM INTO`), never as copies
//! of live WAL files. Only one backup or restore runs at a time. A restore unpacks the archive
//! next to the data, swaps the folder contents while the store is closed and restarts the
//! process in place (re-exec), as PocketBase does.

pub mod archive;
pub mod token;

use crate::state::Core;
use pocketbun_storage::files::{Fs, LocalFs};
use pocketbun_storage::rusqlite::Connection;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

pub const BACKUPS_DIR: &str = "backups";
pub const TEMP_DIR: &str = ".pb_temp_to_delete";
const NOTIFY_DIR: &str = ".notify";
const AUTOCERT_DIR: &str = ".autocert_cache";
const LOST_FOUND_DIR: &str = "lost+found";
pub const AUTO_PREFIX: &str = "@auto_pb_backup_";

/// Left out of a new backup.
const CREATE_EXCLUDE: [&str; 5] = [
    BACKUPS_DIR,
    TEMP_DIR,
    NOTIFY_DIR,
    AUTOCERT_DIR,
    LOST_FOUND_DIR,
];
/// Left in place by a restore.
const RESTORE_EXCLUDE: [&str; 4] = [BACKUPS_DIR, TEMP_DIR, AUTOCERT_DIR, LOST_FOUND_DIR];

pub const BUSY_MESSAGE: &str =
    "try again later - another backup/restore operation has already been started";

pub fn backups_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(BACKUPS_DIR)
}

/// Where backups live now: the `backups.s3` bucket when enabled, else `pb_data/backups`.
pub fn backups_fs(shared: &Core) -> Result<Fs, String> {
    let settings = shared.settings.get();
    if settings.backups.s3.enabled {
        return shared.files.s3_client(&settings.backups.s3).map(Fs::S3);
    }
    Ok(Fs::Local(LocalFs::new(backups_dir(shared.store.dir()))))
}

/// A stored backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub key: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// Whether `key` can name a backup file (a plain file name of the backups folder).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key != "."
        && key != ".."
        && !key.contains('/')
        && !key.contains('\\')
        && !key.contains('\0')
        && !key.ends_with(".attrs")
}

/// The backups, by key (PocketBase's listing order); sidecar `.attrs` files are not backups.
pub fn list(data_dir: &Path) -> io::Result<Vec<BackupFile>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(backups_dir(data_dir)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        let Some(key) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !meta.is_file() || !valid_key(&key) {
            continue;
        }
        out.push(BackupFile {
            key,
            size: meta.len(),
            modified_ms: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The path of backup `key`, if it exists.
pub fn find(data_dir: &Path, key: &str) -> Option<PathBuf> {
    if !valid_key(key) {
        return None;
    }
    let path = backups_dir(data_dir).join(key);
    path.is_file().then_some(path)
}

/// Deletes backup `key` (and its `.attrs` sidecar, if PocketBase wrote one).
pub fn delete(data_dir: &Path, key: &str) -> io::Result<()> {
    if !valid_key(key) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "invalid key"));
    }
    let path = backups_dir(data_dir).join(key);
    fs::remove_file(&path)?;
    let _ = fs::remove_file(backups_dir(data_dir).join(format!("{key}.attrs")));
    Ok(())
}

/// Stores `bytes` as backup `key` (written aside, then renamed into place).
pub fn store_upload(data_dir: &Path, key: &str, bytes: &[u8]) -> io::Result<()> {
    if !valid_key(key) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid name"));
    }
    let dir = backups_dir(data_dir);
    fs::create_dir_all(&dir)?;
    let temp = dir.join(format!(".{key}.{}.part", random(8)));
    fs::write(&temp, bytes)?;
    fs::rename(&temp, dir.join(key)).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

fn random(n: usize) -> String {
    pocketbun_storage::random::random_string_with_alphabet(
        n,
        "abcdefghijklmnopqrstuvwxyz0123456789",
    )
}

/// PocketBase's generated backup name: `<prefix><snake app name>_<UTC yyyymmddhhmmss>.zip`.
pub fn generate_name(app_name: &str, prefix: &str) -> String {
    let mut snake = crate::go::snakecase(app_name);
    if snake.len() > 50 {
        let mut end = 50;
        while !snake.is_char_boundary(end) {
            end -= 1;
        }
        snake.truncate(end);
    }
    let stamp = pocketbun_storage::time::now_datetime(); // 2006-01-02 15:04:05.000Z
    let digits: String = stamp[..19].chars().filter(char::is_ascii_digit).collect();
    format!("{prefix}{snake}_{digits}.zip")
}

/// Creates backup `name` of the store's `pb_data` (replacing a backup of the same name).
/// Blocking: run it off the request workers.
pub fn create(shared: &Core, name: &str) -> Result<(), String> {
    let _guard = shared
        .backup_slot
        .begin(name)
        .ok_or_else(|| BUSY_MESSAGE.to_string())?;
    let dest = backups_fs(shared)?;
    create_locked(shared.store.dir(), name, &dest)
}

fn create_locked(data_dir: &Path, name: &str, dest: &Fs) -> Result<(), String> {
    if !valid_key(name) {
        return Err(format!("invalid backup name {name:?}"));
    }
    let temp = data_dir.join(TEMP_DIR);
    let work = temp.join(format!("pb_backup_{}", random(6)));
    fs::create_dir_all(&work).map_err(|e| format!("failed to create a temp dir: {e}"))?;
    let outcome = (|| {
        let mut snapshots = Vec::new();
        for db in [pocketbun_storage::DATA_DB, pocketbun_storage::AUX_DB] {
            let source = data_dir.join(db);
            if !source.exists() {
                continue;
            }
            let copy = work.join(db);
            snapshot(&source, &copy).map_err(|e| format!("failed to snapshot {db}: {e}"))?;
            snapshots.push((db.to_string(), copy));
        }
        let zip_path = work.join("backup.zip");
        archive::create(data_dir, &zip_path, &CREATE_EXCLUDE, &snapshots)
            .map_err(|e| format!("failed to create the archive: {e}"))?;
        if let Fs::S3(bucket) = dest {
            return bucket
                .put_file_blocking(name, &zip_path, "application/zip")
                .map_err(|e| format!("failed to upload the backup: {e}"));
        }
        let dir = backups_dir(data_dir);
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        fs::rename(&zip_path, dir.join(name)).map_err(|e| e.to_string())?;
        let _ = fs::remove_file(dir.join(format!("{name}.attrs")));
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    outcome
}

/// A consistent copy of the SQLite database `source` (its committed state, WAL included).
fn snapshot(source: &Path, dest: &Path) -> pocketbun_storage::Result<()> {
    let conn = Connection::open(source)?;
    pocketbun_storage::defensive(&conn)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [dest.to_string_lossy().as_ref()])?;
    Ok(())
}

/// The `__pbAutoBackup__` job: a generated backup, then `backups.cronMaxKeep` rotation of the
/// generated ones.
pub fn auto_backup(shared: &Arc<Core>) {
    let settings = shared.settings.get();
    let name = generate_name(&settings.meta.app_name, AUTO_PREFIX);
    if let Err(e) = create(shared, &name) {
        let mut data = serde_json::Map::new();
        data.insert("name".into(), name.clone().into());
        data.insert("error".into(), e.into());
        shared.logs.log(
            &settings,
            crate::logs::LEVEL_ERROR,
            "[Backup cron] Failed to create backup",
            data,
        );
    }
    let max_keep = settings.backups.cron_max_keep;
    if max_keep <= 0 {
        return;
    }
    rotate(shared, max_keep as usize);
}

/// Deletes the generated backups beyond the `max_keep` newest. Blocking (it may wait for the
/// S3 bucket): the cron thread runs it.
pub fn rotate(shared: &Core, max_keep: usize) {
    let data_dir = shared.store.dir();
    let Ok(dest) = backups_fs(shared) else {
        return;
    };
    let all = match &dest {
        Fs::Local(_) => list(data_dir).map_err(|e| e.to_string()),
        Fs::S3(bucket) => bucket
            .list_blocking("")
            .map(|l| l.into_iter().filter_map(from_entry).collect())
            .map_err(|e| e.to_string()),
    };
    let Ok(all) = all else {
        return;
    };
    let mut auto: Vec<BackupFile> = all
        .into_iter()
        .filter(|b| b.key.starts_with(AUTO_PREFIX))
        .collect();
    if auto.len() <= max_keep {
        return;
    }
    auto.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms).then(b.key.cmp(&a.key)));
    for old in &auto[max_keep..] {
        let _ = match &dest {
            Fs::Local(_) => delete(data_dir, &old.key).map_err(|e| e.to_string()),
            Fs::S3(bucket) => bucket.delete_blocking(&old.key).map_err(|e| e.to_string()),
        };
    }
}

/// A bucket object as a backup (keys that cannot name a backup are not backups).
pub fn from_entry(e: pocketbun_storage::files::Entry) -> Option<BackupFile> {
    valid_key(&e.key).then_some(BackupFile {
        key: e.key,
        size: e.size,
        modified_ms: e.modified_ms,
    })
}

/// Removes the scratch folder a previous backup/restore left (done at start-up).
pub fn remove_temp_dir(data_dir: &Path) {
    let _ = fs::remove_dir_all(data_dir.join(TEMP_DIR));
}

/// Moves the entries of `src` (except `exclude`) into `dest`.
fn move_dir_content(src: &Path, dest: &Path, exclude: &[&str]) -> io::Result<()> {
    fs::create_dir_all(dest)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        if exclude.iter().any(|x| name.to_str() == Some(x)) {
            continue;
        }
        fs::rename(entry.path(), dest.join(&name))?;
    }
    Ok(())
}

/// Restores backup `key` and restarts the process; returns only on failure (with the data
/// left as it was). Blocking: run it on a thread of its own.
pub fn restore(shared: &Core, key: &str) -> Result<(), String> {
    let _guard = shared
        .backup_slot
        .begin(key)
        .ok_or_else(|| BUSY_MESSAGE.to_string())?;
    let data_dir = shared.store.dir().to_path_buf();
    let temp = data_dir.join(TEMP_DIR);
    fs::create_dir_all(&temp).map_err(|e| format!("failed to create a temp dir: {e}"))?;
    let zip_path = match backups_fs(shared)? {
        Fs::Local(_) => {
            find(&data_dir, key).ok_or_else(|| format!("missing or invalid backup file {key:?}"))?
        }
        Fs::S3(bucket) => {
            // the archive comes down next to the data first (streamed), as PocketBase does
            let local = temp.join(format!("pb_restore_zip_{}", random(8)));
            let stored = download(&bucket, key, &local);
            if let Err(e) = stored {
                let _ = fs::remove_file(&local);
                return Err(format!("missing or invalid backup file {key:?}: {e}"));
            }
            local
        }
    };
    let extracted = temp.join(format!("pb_restore_{}", random(8)));
    if let Err(e) = archive::extract(&zip_path, &extracted) {
        let _ = fs::remove_dir_all(&extracted);
        return Err(format!("failed to extract the backup: {e}"));
    }
    if !extracted.join(pocketbun_storage::DATA_DB).is_file() {
        let _ = fs::remove_dir_all(&extracted);
        return Err("data.db file is missing or invalid".into());
    }
    // nothing may write while the files move: commit what is queued, stop the writers
    shared.logs.flush(Duration::from_secs(2));
    shared.store.close();
    // Litestream must not ship the swap; the restarted process replicates the restored data
    crate::replicate::supervisor::stop(&shared.replication);
    let old = temp.join(format!("old_pb_data_{}", random(8)));
    let swap = move_dir_content(&data_dir, &old, &RESTORE_EXCLUDE)
        .and_then(|_| move_dir_content(&extracted, &data_dir, &RESTORE_EXCLUDE));
    if let Err(e) = swap {
        revert(&data_dir, &extracted, &old);
        restart(); // the store is closed: start over on the old data
        return Err(format!("failed to replace pb_data: {e}"));
    }
    let err = restart();
    revert(&data_dir, &extracted, &old);
    restart();
    Err(format!("failed to restart the process: {err}"))
}

/// Copies the bucket object `key` into the file `dest`, chunk by chunk.
fn download(bucket: &pocketbun_storage::files::S3Fs, key: &str, dest: &Path) -> Result<(), String> {
    use std::io::Write as _;
    let mut file = fs::File::create(dest).map_err(|e| e.to_string())?;
    let mut chunks = bucket.stream(key, None);
    while let Some(chunk) = chunks.blocking_recv() {
        let chunk = chunk.map_err(|e| e.to_string())?;
        file.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    file.sync_all().map_err(|e| e.to_string())
}

fn revert(data_dir: &Path, extracted: &Path, old: &Path) {
    let reverted = move_dir_content(data_dir, extracted, &RESTORE_EXCLUDE)
        .and_then(|_| move_dir_content(old, data_dir, &RESTORE_EXCLUDE));
    if let Err(e) = reverted {
        eprintln!("Error: cannot revert the pb_data changes of a failed restore: {e}");
        std::process::exit(1);
    }
}

/// Replaces the process with a fresh start of the same command line (returns only on
/// failure). Every inherited descriptor but stdio is closed on exec, so the listening sockets
/// are free for the new process.
pub fn restart() -> io::Error {
    use std::os::unix::process::CommandExt;
    if let Ok(fds) = fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = fds
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect();
        for fd in fds {
            // SAFETY: only sets the close-on-exec flag of a descriptor number; an invalid one
            // (such as the closed read_dir handle) makes fcntl fail harmlessly.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut args = std::env::args_os();
    let argv0 = args.next();
    let mut cmd = std::process::Command::new(exe);
    if let Some(a0) = argv0 {
        cmd.arg0(a0);
    }
    cmd.args(args).exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_pocketbase() {
        let n = generate_name("Acme", AUTO_PREFIX);
        assert!(n.starts_with("@auto_pb_backup_acme_2"), "{n}");
        assert!(n.ends_with(".zip") && n.len() == "@auto_pb_backup_acme_".len() + 14 + 4);
        assert!(valid_key("a.zip") && valid_key("@test4.zip"));
        assert!(!valid_key("../a.zip") && !valid_key("..") && !valid_key("a.zip.attrs"));
    }
}

//! Zip archives of a folder, in the layout PocketBase writes and reads: one entry per regular
//! file with its path relative to the folder (no directory entries), Deflate (fastest level),
//! file modes and modification times kept.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Archives `src` into `dest`. Top-level entries named in `exclude` are left out; a top-level
/// file named in `replace` is taken from the given path instead (database snapshots), and the
/// live `-wal`/`-shm` files of a replaced database are left out.
pub fn create(
    src: &Path,
    dest: &Path,
    exclude: &[&str],
    replace: &[(String, std::path::PathBuf)],
) -> io::Result<()> {
    let file = File::create(dest)?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let mut stack = vec![(src.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let mut entries: Vec<(String, fs::DirEntry)> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (name, entry) in entries {
            let top = prefix.is_empty();
            if top && exclude.contains(&name.as_str()) {
                continue;
            }
            if top
                && replace
                    .iter()
                    .any(|(db, _)| name == format!("{db}-wal") || name == format!("{db}-shm"))
            {
                continue;
            }
            let kind = entry.file_type()?;
            let path = format!("{prefix}{name}");
            if kind.is_dir() {
                subdirs.push((entry.path(), format!("{path}/")));
                continue;
            }
            if !kind.is_file() {
                continue; // symlinks, sockets, ...
            }
            let source = match replace.iter().find(|(db, _)| top && *db == name) {
                Some((_, snapshot)) => snapshot.clone(),
                None => entry.path(),
            };
            let meta = fs::metadata(&source)?;
            add_file(&mut zip, &path, &source, &meta)?;
        }
        // depth-first in name order, as a directory walk visits them
        stack.extend(subdirs.into_iter().rev());
    }
    let mut out = zip.finish().map_err(zip_err)?;
    io::Write::flush(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn add_file<W: io::Write + io::Seek>(
    zip: &mut ZipWriter<W>,
    name: &str,
    source: &Path,
    meta: &fs::Metadata,
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
        .unix_permissions(meta.permissions().mode() & 0o777)
        .large_file(meta.len() >= 0xFFFF_FFFF);
    if let Some(t) = meta.modified().ok().map(DateTime::<Utc>::from) {
        if let Ok(dt) = zip::DateTime::from_date_and_time(
            t.year().clamp(1980, 2107) as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
        ) {
            options = options.last_modified_time(dt);
        }
    }
    zip.start_file(name, options).map_err(zip_err)?;
    let mut input = File::open(source)?;
    io::copy(&mut input, zip)?;
    Ok(())
}

/// Extracts the zip `src` into the folder `dest` (created). Entries whose path would leave
/// `dest` are refused.
pub fn extract(src: &Path, dest: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = ZipArchive::new(File::open(src)?).map_err(zip_err)?;
    fs::create_dir_all(dest)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("illegal file path: {:?}", entry.name().unwrap_or_default()),
            ));
        };
        let path = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&path)?;
            continue;
        }
        if !entry.is_file() {
            continue; // symlinks are not restored
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut out = File::create(&path)?;
        io::copy(&mut entry, &mut out)?;
        if let Some(mode) = entry.unix_mode() {
            // owner keeps read/write access whatever the archive says (the data must stay usable)
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode((mode & 0o777) | 0o600));
        }
    }
    Ok(())
}

//! Uploaded files of records: PocketBase's stored names, the sniffed MIME type, and the
//! local storage layout `pb_data/storage/<collectionId>/<recordId>/<name>`.

use super::db::Db;
use pocketbun_storage::files::{Fs, LocalFs, S3Fs};
use pocketbun_storage::random;
use std::path::{Path, PathBuf};

#[cfg(test)]
thread_local! {
    /// How many times this thread called [`sniff`] (tests check each upload is sniffed once).
    pub static SNIFFS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

const NAME_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// The content's MIME type and extension, from its bytes (never from the client's header).
/// Sniffed once per upload ([`crate::records::write::NewFile::sniffed`]): the mime-type
/// check, the stored name and the stored content type all use that one answer.
pub fn sniff(data: &[u8]) -> (&'static str, &'static str) {
    #[cfg(test)]
    SNIFFS.with(|n| n.set(n.get() + 1));
    // before the generic detector, which names an SVG with an XML declaration text/xml
    if is_svg(data) && std::str::from_utf8(data).is_ok() {
        return ("image/svg+xml", "svg");
    }
    if let Some(t) = infer::get(data) {
        return (t.mime_type(), t.extension());
    }
    if data.is_empty() || std::str::from_utf8(data).is_ok() {
        let trimmed = data.trim_ascii_start();
        if matches!(trimmed.first(), Some(b'{' | b'['))
            && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok()
        {
            return ("application/json", "json");
        }
        return ("text/plain", "txt");
    }
    ("application/octet-stream", "")
}

/// An SVG document: markup (possibly after an XML declaration or comments) with an `<svg`
/// element near the start, which is how PocketBase's detector tells it from other text.
fn is_svg(data: &[u8]) -> bool {
    let head = &data[..data.len().min(1024)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|i| head[i] == b'<') && head.windows(4).any(|w| w == b"<svg")
}

/// The content type stored with an upload (the `.attrs` sidecar, the S3 object), from its
/// sniffed type as PocketBase's detector names it: text carries its charset.
pub fn stored_content_type(sniffed: &str) -> String {
    match sniffed {
        t @ ("text/plain" | "text/xml" | "text/html") => format!("{t}; charset=utf-8"),
        other => other.to_string(),
    }
}

/// Whether a sniffed type matches one of a field's allowed types (parameters ignored).
pub fn mime_allowed(sniffed: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        let a = a.split(';').next().unwrap_or("").trim();
        a.eq_ignore_ascii_case(sniffed)
    })
}

/// The extension as PocketBase cuts it: from the second to last dot when there is one.
fn extract_extension(name: &str) -> &str {
    let Some(primary) = name.rfind('.') else {
        return "";
    };
    match name[..primary].rfind('.') {
        Some(secondary) => &name[secondary..],
        None => &name[primary..],
    }
}

/// The stored name of an upload: sanitised base name, `_`, 10 random characters, extension
/// (`sniffed_ext`, the sniffed extension, when the name has none).
pub fn stored_name(original: &str, sniffed_ext: &str) -> String {
    let mut name = original;
    if name.len() > 300 {
        let mut cut = name.len() - 300;
        while !name.is_char_boundary(cut) {
            cut += 1;
        }
        name = &name[cut..];
    }
    let original_ext = extract_extension(name);
    let cleaned: String = original_ext
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '*' | '-' | '+' | '=' | '#'))
        .collect();
    let mut ext = format!(".{}", cleaned.trim_matches('.'));
    if ext == "." {
        ext = if sniffed_ext.is_empty() {
            String::new()
        } else {
            format!(".{sniffed_ext}")
        };
    }
    if ext.len() > 20 {
        let mut cut = ext.len() - 20;
        while !ext.is_char_boundary(cut) {
            cut += 1;
        }
        ext = format!(".{}", ext[cut..].trim_matches('.'));
    }
    let base = name.strip_suffix(original_ext).unwrap_or(name);
    let mut clean = crate::go::snakecase(base.trim_matches('.'));
    if clean.len() < 3 {
        clean.push_str(&random::random_string_with_alphabet(10, NAME_ALPHABET));
    } else if clean.len() > 100 {
        let mut cut = 100;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
    }
    format!(
        "{clean}_{}{ext}",
        random::random_string_with_alphabet(10, NAME_ALPHABET)
    )
}

/// The directory of a record's files.
pub fn record_dir(data_dir: &Path, collection_id: &str, record_id: &str) -> PathBuf {
    data_dir.join("storage").join(collection_id).join(record_id)
}

/// A new file on its way to storage.
pub struct PendingFile {
    /// The stored name.
    pub name: String,
    pub data: std::sync::Arc<Vec<u8>>,
    /// The sniffed MIME type.
    pub mime: &'static str,
    /// The uploaded name, kept as the object's `original-filename` metadata (as PocketBase
    /// does, in the local `.attrs` sidecar and on S3 alike).
    pub original_name: String,
}

/// Writes new files (all or none: a failure removes the ones already written), into
/// `pb_data/storage` (on the CPU pool) or the S3 bucket, whichever holds record files now.
pub async fn write_all(ctx: &Db, dir: &Path, files: Vec<PendingFile>) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let (fs, prefix) = target(ctx, dir)?;
    let s3 = match fs {
        Fs::Local(local) => {
            return ctx
                .core
                .cpu
                .run(move || {
                    for (i, f) in files.iter().enumerate() {
                        if let Err(e) = local.put_with_metadata(
                            &format!("{prefix}/{}", f.name),
                            &f.data,
                            Some(&stored_content_type(f.mime)),
                            &[("original-filename", f.original_name.as_str())],
                        ) {
                            remove_local(&local, &prefix, files[..i].iter().map(|f| &f.name));
                            return Err(e.to_string());
                        }
                    }
                    Ok(())
                })
                .await
                // no cause: the CPU pool's `Canceled` only says the task never ran
                .map_err(|_| "the file write was cancelled".to_string())?;
        }
        Fs::S3(s3) => s3,
    };
    for (i, f) in files.iter().enumerate() {
        let put = s3
            .put(
                &format!("{prefix}/{}", f.name),
                f.data.to_vec(),
                &stored_content_type(f.mime),
                &[("original-filename", f.original_name.as_str())],
            )
            .await;
        if let Err(e) = put {
            for n in files[..i].iter().map(|f| &f.name) {
                remove_s3(&s3, &prefix, n).await;
            }
            return Err(e.to_string());
        }
    }
    Ok(())
}

/// The storage holding `dir`'s files and the folder's key.
fn target(ctx: &Db, dir: &Path) -> Result<(Fs, String), String> {
    let fs = ctx.core.record_fs()?;
    let prefix = ctx.core.dir_key(dir).ok_or("invalid record folder")?;
    Ok((fs, prefix))
}

fn safe_name(name: &str) -> bool {
    !(name.is_empty() || name.contains('/') || name.contains(".."))
}

fn remove_local<'a>(fs: &LocalFs, prefix: &str, names: impl Iterator<Item = &'a String>) {
    for name in names.filter(|n| safe_name(n)) {
        let _ = fs.delete(&format!("{prefix}/{name}"));
        let _ = fs.delete_prefix(&format!("{prefix}/thumbs_{name}/"));
    }
}

async fn remove_s3(fs: &S3Fs, prefix: &str, name: &str) {
    if safe_name(name) {
        let _ = fs.delete(&format!("{prefix}/{name}")).await;
        let _ = fs.delete_prefix(&format!("{prefix}/thumbs_{name}/")).await;
    }
}

/// Removes stored files and their thumbs (missing ones are fine).
pub async fn remove_names(ctx: &Db, dir: &Path, names: Vec<String>) {
    let Ok((fs, prefix)) = target(ctx, dir) else {
        return;
    };
    match fs {
        Fs::Local(local) => {
            let _ = ctx
                .core
                .cpu
                .run(move || remove_local(&local, &prefix, names.iter()))
                .await;
        }
        Fs::S3(s3) => {
            for name in &names {
                remove_s3(&s3, &prefix, name).await;
            }
        }
    }
}

/// Removes the whole folders of deleted records (missing ones are fine).
pub async fn remove_dirs(ctx: &Db, dirs: Vec<PathBuf>) {
    let mut targets = Vec::new();
    for d in &dirs {
        if let Ok(t) = target(ctx, d) {
            targets.push(t);
        }
    }
    let (local, s3): (Vec<_>, Vec<_>) = targets.into_iter().partition(|(fs, _)| !fs.is_s3());
    if !local.is_empty() {
        let _ = ctx
            .core
            .cpu
            .run(move || {
                for (fs, prefix) in local {
                    if let Fs::Local(fs) = fs {
                        let _ = fs.delete_prefix(&format!("{prefix}/"));
                    }
                }
            })
            .await;
    }
    for (fs, prefix) in s3 {
        if let Fs::S3(fs) = fs {
            let _ = fs.delete_prefix(&format!("{prefix}/")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_pocketbase() {
        let n = stored_name("tmpfile-1.txt", sniff(b"test").1);
        assert!(n.starts_with("tmpfile_1_"), "{n}");
        assert!(n.ends_with(".txt"));
        assert_eq!(n.len(), "tmpfile_1_".len() + 10 + 4);
        let n = stored_name("My Photo.TAR.gz", sniff(b"x").1);
        assert!(n.starts_with("my_photo_") && n.ends_with(".TAR.gz"), "{n}");
        let n = stored_name("a", sniff(b"hello").1);
        assert!(n.ends_with(".txt") && n.len() == 1 + 10 + 1 + 10 + 4, "{n}");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").0, "image/png");
        assert_eq!(sniff(b"plain").0, "text/plain");
        assert_eq!(
            stored_content_type(sniff(b"plain").0),
            "text/plain; charset=utf-8"
        );
        let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>";
        assert_eq!(sniff(svg), ("image/svg+xml", "svg"));
        assert_eq!(sniff(b" {\"a\": [1]}\n"), ("application/json", "json"));
        assert_eq!(sniff(b"{not json"), ("text/plain", "txt"));
        assert_eq!(sniff(b"12"), ("text/plain", "txt"));
        assert_eq!(
            stored_content_type(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").0),
            "image/png"
        );
    }
}

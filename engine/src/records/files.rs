//! Uploaded files of records: PocketBase's stored names, the sniffed MIME type, and the
//! local storage layout `pb_data/storage/<collectionId>/<recordId>/<name>`.

use pocketbun_storage::random;
use std::path::{Path, PathBuf};

const NAME_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// The content's MIME type, from its bytes (never from the client's header).
pub fn sniff(data: &[u8]) -> (&'static str, &'static str) {
    if let Some(t) = infer::get(data) {
        return (t.mime_type(), t.extension());
    }
    if data.is_empty() || std::str::from_utf8(data).is_ok() {
        return ("text/plain", "txt");
    }
    ("application/octet-stream", "")
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

/// `inflector.Snakecase`.
fn snakecase(s: &str) -> String {
    let mut out = String::new();
    for word in s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        let mut prev_upper = true;
        for (i, c) in word.chars().enumerate() {
            if c.is_uppercase() && i > 0 && !prev_upper {
                out.push('_');
            }
            prev_upper = c.is_uppercase();
            out.push(c);
        }
    }
    out.to_lowercase()
}

/// The stored name of an upload: sanitised base name, `_`, 10 random characters, extension.
pub fn stored_name(original: &str, data: &[u8]) -> String {
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
        let (_, sniffed) = sniff(data);
        ext = if sniffed.is_empty() {
            String::new()
        } else {
            format!(".{sniffed}")
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
    let mut clean = snakecase(base.trim_matches('.'));
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

/// Writes new files (all or none: a failure removes the ones already written).
pub fn write_all(dir: &Path, files: &[(String, std::sync::Arc<Vec<u8>>)]) -> std::io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for (i, (name, data)) in files.iter().enumerate() {
        if let Err(e) = std::fs::write(dir.join(name), &data[..]) {
            remove_names(dir, files[..i].iter().map(|(n, _)| n.as_str()));
            return Err(e);
        }
    }
    Ok(())
}

/// Removes stored files and their thumbs (missing ones are fine).
pub fn remove_names<'a>(dir: &Path, names: impl Iterator<Item = &'a str>) {
    for name in names {
        if name.is_empty() || name.contains('/') || name.contains("..") {
            continue;
        }
        let _ = std::fs::remove_file(dir.join(name));
        let _ = std::fs::remove_dir_all(dir.join(format!("thumbs_{name}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_pocketbase() {
        let n = stored_name("tmpfile-1.txt", b"test");
        assert!(n.starts_with("tmpfile_1_"), "{n}");
        assert!(n.ends_with(".txt"));
        assert_eq!(n.len(), "tmpfile_1_".len() + 10 + 4);
        let n = stored_name("My Photo.TAR.gz", b"x");
        assert!(n.starts_with("my_photo_") && n.ends_with(".TAR.gz"), "{n}");
        let n = stored_name("a", b"hello");
        assert!(n.ends_with(".txt") && n.len() == 1 + 10 + 1 + 10 + 4, "{n}");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").0, "image/png");
        assert_eq!(sniff(b"plain").0, "text/plain");
    }
}

//! Record files on local storage, served as PocketBase serves them.
//!
//! Files live under `pb_data/storage/<collectionId>/<recordId>/<name>`, each with a
//! `<name>.attrs` JSON sidecar holding its content type (and MD5); thumbs are cached under
//! `thumbs_<name>/<size>_<name>` next to the original.
//!
//! * [`serve`] — Go's `http.ServeContent` semantics: conditional requests (`If-Match`,
//!   `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, `If-Range`), byte ranges
//!   (single and `multipart/byteranges`) and the 304/412/416 answers, plus the chunked body.
//! * [`thumbs`] — `?thumb=` sizes, generated on the CPU pool with `fast_image_resize`, once per
//!   thumb however many requests ask for it at the same time.

pub mod serve;
pub mod thumbs;

use md5::{Digest, Md5};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a sidecar without a content type (or a missing sidecar) stands for.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The folder of a record's files.
pub fn record_dir(data_dir: &Path, collection_id: &str, record_id: &str) -> PathBuf {
    data_dir.join("storage").join(collection_id).join(record_id)
}

/// Whether `name` can be used as one path segment (no separators, no dot segments).
pub fn safe_segment(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.ends_with(".attrs")
}

/// The content type recorded in `file`'s `.attrs` sidecar. A missing sidecar means
/// `application/octet-stream`; an unreadable one is an error, as in PocketBase's blob store.
pub fn content_type(file: &Path) -> std::io::Result<String> {
    let mut sidecar = file.as_os_str().to_owned();
    sidecar.push(".attrs");
    match std::fs::read(&sidecar) {
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            Ok(v.get("user.content_type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_CONTENT_TYPE.into()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `file` with its `.attrs` sidecar, as PocketBase's blob store writes them;
/// both go through a temporary file and a rename, so readers never see half a file (the
/// sidecar lands first).
pub fn write_with_attrs(file: &Path, bytes: &[u8], content_type: &str) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let md5 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
    };
    let attrs = serde_json::json!({
        "user.cache_control": "",
        "user.content_disposition": "",
        "user.content_encoding": "",
        "user.content_language": "",
        "user.content_type": content_type,
        "user.metadata": null,
        "md5": md5,
    });
    // the keys in the order Go's encoder writes the struct
    let order = [
        "user.cache_control",
        "user.content_disposition",
        "user.content_encoding",
        "user.content_language",
        "user.content_type",
        "user.metadata",
        "md5",
    ];
    let mut json = String::from("{");
    for (i, key) in order.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!("{:?}:{}", key, attrs[key]));
    }
    json.push_str("}\n");
    let mut sidecar = file.as_os_str().to_owned();
    sidecar.push(".attrs");
    write_atomic(Path::new(&sidecar), json.as_bytes())?;
    write_atomic(file, bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}",
        pocketbun_storage::random::random_string_with_alphabet(
            12,
            pocketbun_storage::random::ALNUM_ALPHABET
        )
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    match written.and_then(|_| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty folder under the system temp dir.
    pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pocketbun-files-{tag}-{}-{}",
            std::process::id(),
            pocketbun_storage::random::random_string_with_alphabet(
                8,
                pocketbun_storage::random::ALNUM_ALPHABET
            )
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sidecars_round_trip() {
        let dir = scratch_dir("attrs");
        let file = dir.join("a/b/x.png");
        write_with_attrs(&file, b"hello", "image/png").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        assert_eq!(content_type(&file).unwrap(), "image/png");
        let raw = std::fs::read_to_string(dir.join("a/b/x.png.attrs")).unwrap();
        assert_eq!(
            raw,
            "{\"user.cache_control\":\"\",\"user.content_disposition\":\"\",\
             \"user.content_encoding\":\"\",\"user.content_language\":\"\",\
             \"user.content_type\":\"image/png\",\"user.metadata\":null,\
             \"md5\":\"XUFAKrxLKna5cZ2REBfFkg==\"}\n"
        );
        // no sidecar: octet-stream; a broken one: an error
        std::fs::write(dir.join("y.bin"), b"1").unwrap();
        assert_eq!(
            content_type(&dir.join("y.bin")).unwrap(),
            DEFAULT_CONTENT_TYPE
        );
        std::fs::write(dir.join("y.bin.attrs"), b"{").unwrap();
        assert!(content_type(&dir.join("y.bin")).is_err());
        // no temporary files left behind
        let names: Vec<_> = std::fs::read_dir(dir.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn segments() {
        assert!(safe_segment("300_1SEi6Q6U72.png"));
        for bad in ["", ".", "..", "a/b", "a\\b", "x.png.attrs"] {
            assert!(!safe_segment(bad), "{bad}");
        }
    }
}

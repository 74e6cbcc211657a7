//! Record files, served as PocketBase serves them, on local storage or in an S3 bucket.
//!
//! Local files live under `pb_data/storage/<collectionId>/<recordId>/<name>`, each with a
//! `<name>.attrs` JSON sidecar holding its content type (and MD5); thumbs are cached under
//! `thumbs_<name>/<size>_<name>` next to the original. With `s3.enabled` the same keys
//! (`<collectionId>/<recordId>/<name>`, `.../thumbs_<name>/<size>_<name>`) are objects of the
//! bucket, their content type in the object's `Content-Type` ([`Files::record_fs`] picks the side).
//!
//! * [`serve`] — Go's `http.ServeContent` semantics: conditional requests (`If-Match`,
//!   `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, `If-Range`), byte ranges
//!   (single and `multipart/byteranges`) and the 304/412/416 answers, plus the chunked body.
//! * [`thumbs`] — `?thumb=` sizes, generated on the CPU pool with `fast_image_resize`, once per
//!   thumb however many requests ask for it at the same time.

pub mod serve;
pub mod thumbs;

use pocketbun_storage::files::{Fs, LocalFs, S3Fs};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad file name"))?;
    LocalFs::new(dir)
        .put(name, bytes, Some(content_type))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// What file storage keeps for the process (a field of `state::Core`): the S3 clients in use
/// and the thumbs being made.
#[derive(Default)]
pub struct Files {
    /// A client per distinct bucket setting (a client keeps its connection pool, so it is
    /// worth keeping across requests).
    s3: Mutex<Vec<(pocketbun_storage::files::S3Config, S3Fs)>>,
    /// Thumbs being made right now, with the requests waiting for each.
    pub thumbs: thumbs::Pending,
}

impl Files {
    /// Where record files live now: the `s3` bucket when enabled, else `storage` under the
    /// data directory `data_dir`.
    pub fn record_fs(
        &self,
        settings: &crate::settings::Settings,
        data_dir: &Path,
    ) -> Result<Fs, String> {
        if settings.s3.enabled {
            return self.s3_client(&settings.s3).map(Fs::S3);
        }
        Ok(Fs::Local(LocalFs::new(data_dir.join("storage"))))
    }

    /// The client of a bucket setting, made once per distinct setting.
    pub fn s3_client(&self, cfg: &crate::settings::model::S3Config) -> Result<S3Fs, String> {
        let key = pocketbun_storage::files::S3Config {
            bucket: cfg.bucket.clone(),
            region: cfg.region.clone(),
            endpoint: cfg.endpoint.clone(),
            access_key: cfg.access_key.clone(),
            secret: cfg.secret.clone(),
            force_path_style: cfg.force_path_style,
        };
        let mut clients = self.s3.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, fs)) = clients.iter().find(|(k, _)| *k == key) {
            return Ok(fs.clone());
        }
        let fs = S3Fs::new(&key).map_err(|e| e.to_string())?;
        // settings change rarely: a few clients cover the storage and backups buckets
        if clients.len() >= 4 {
            clients.remove(0);
        }
        clients.push((key, fs.clone()));
        Ok(fs)
    }
}

/// The object key of a record folder (`<collectionId>/<recordId>`) from its local path
/// (`data_dir`: the data directory, `pb_data`).
pub fn dir_key(data_dir: &Path, dir: &Path) -> Option<String> {
    let rel = dir.strip_prefix(data_dir.join("storage")).ok()?;
    let key = rel.to_str()?.to_string();
    pocketbun_storage::files::valid_key(&key).then_some(key)
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
             \"md5\":\"XUFAKrxLKna5cZ2REBfFkg==\"}"
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

//! Objects as files under a root folder, laid out as PocketBase's local blob store lays them:
//! `<root>/<key>`, with an optional `<key>.attrs` JSON sidecar holding the content type and MD5
//! (sidecars are never listed as objects). Blocking calls: run them off the request workers
//! unless they are as cheap as a `stat`.

use super::{valid_key, Attributes, Entry, DEFAULT_CONTENT_TYPE};
use crate::{ErrorKind, Result, StorageError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

const SIDECAR: &str = ".attrs";

#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
}

fn io_err(key: &str, e: std::io::Error) -> StorageError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Io
    };
    StorageError::new(kind, format!("{key}: {e}"))
}

fn invalid(key: &str) -> StorageError {
    StorageError::new(ErrorKind::Invalid, format!("invalid object key {key:?}"))
}

fn millis(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

impl LocalFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key` (checked: never outside the root).
    pub fn path(&self, key: &str) -> Result<PathBuf> {
        if !valid_key(key) {
            return Err(invalid(key));
        }
        Ok(self.root.join(key))
    }

    /// Stores `bytes` at `key` through a temporary file and a rename, so readers never see
    /// half an object. With a content type, PocketBase's `.attrs` sidecar is written first.
    pub fn put(&self, key: &str, bytes: &[u8], content_type: Option<&str>) -> Result<()> {
        self.put_with_metadata(key, bytes, content_type, &[])
    }

    /// [`LocalFs::put`] with user metadata in the sidecar (`original-filename` of an upload,
    /// as PocketBase records it).
    pub fn put_with_metadata(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| io_err(key, e))?;
        if let Some(ct) = content_type {
            let mut sidecar = path.as_os_str().to_owned();
            sidecar.push(SIDECAR);
            write_atomic(
                Path::new(&sidecar),
                sidecar_json(bytes, ct, metadata).as_bytes(),
            )
            .map_err(|e| io_err(key, e))?;
        }
        write_atomic(&path, bytes).map_err(|e| io_err(key, e))
    }

    /// The whole object.
    pub fn read(&self, key: &str) -> Result<Vec<u8>> {
        std::fs::read(self.path(key)?).map_err(|e| io_err(key, e))
    }

    /// The object opened for reading, with its size and modification time (a folder is not
    /// an object).
    pub fn open(&self, key: &str) -> Result<(std::fs::File, Attributes)> {
        let path = self.path(key)?;
        let file = std::fs::File::open(&path).map_err(|e| io_err(key, e))?;
        let meta = file.metadata().map_err(|e| io_err(key, e))?;
        if !meta.is_file() {
            return Err(StorageError::new(
                ErrorKind::NotFound,
                format!("{key}: not a file"),
            ));
        }
        let content_type = self.content_type(&path).map_err(|e| io_err(key, e))?;
        let attrs = Attributes {
            size: meta.len(),
            modified_ms: millis(&meta),
            content_type,
        };
        Ok((file, attrs))
    }

    pub fn attributes(&self, key: &str) -> Result<Attributes> {
        let path = self.path(key)?;
        let meta = std::fs::metadata(&path).map_err(|e| io_err(key, e))?;
        if !meta.is_file() {
            return Err(StorageError::new(
                ErrorKind::NotFound,
                format!("{key}: not a file"),
            ));
        }
        Ok(Attributes {
            size: meta.len(),
            modified_ms: millis(&meta),
            content_type: self.content_type(&path).map_err(|e| io_err(key, e))?,
        })
    }

    /// The content type of the sidecar next to `file`: none means `application/octet-stream`,
    /// an unreadable one is an error (as in PocketBase's blob store).
    fn content_type(&self, file: &Path) -> std::io::Result<String> {
        let mut sidecar = file.as_os_str().to_owned();
        sidecar.push(SIDECAR);
        match std::fs::read(&sidecar) {
            Ok(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                Ok(v.get("user.content_type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_CONTENT_TYPE.into()),
            Err(e) => Err(e),
        }
    }

    /// Whether `key` is a stored file.
    pub fn exists(&self, key: &str) -> bool {
        self.path(key).is_ok_and(|p| p.is_file())
    }

    /// Removes the object and its sidecar (a missing object is a `NotFound` error).
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        std::fs::remove_file(&path).map_err(|e| io_err(key, e))?;
        let mut sidecar = path.into_os_string();
        sidecar.push(SIDECAR);
        let _ = std::fs::remove_file(sidecar);
        Ok(())
    }

    /// Removes everything under the folder `prefix` (which ends with `/`), or the files of its
    /// folder whose names start with the last segment. Missing folders are fine.
    pub fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let (dir, start) = match prefix.rsplit_once('/') {
            Some((dir, start)) => (dir, start),
            None => ("", prefix),
        };
        if prefix.is_empty() || (!dir.is_empty() && !valid_key(dir)) {
            return Err(invalid(prefix));
        }
        let folder = self.root.join(dir);
        let gone = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(prefix, e)),
            _ => Ok(()),
        };
        if start.is_empty() {
            return gone(std::fs::remove_dir_all(folder));
        }
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) => return gone(Err(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| n.starts_with(start)) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                gone(std::fs::remove_dir_all(path))?;
            } else {
                gone(std::fs::remove_file(path))?;
            }
        }
        Ok(())
    }

    /// The files directly inside the folder `dir` ("" for the root), by key; sidecars and
    /// folders are left out, a missing folder lists nothing.
    pub fn list_dir(&self, dir: &str) -> Result<Vec<Entry>> {
        if !dir.is_empty() && !valid_key(dir) {
            return Err(invalid(dir));
        }
        let folder = self.root.join(dir);
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let meta = entry.metadata().map_err(|e| io_err(dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !meta.is_file() || name.ends_with(SIDECAR) {
                continue;
            }
            let key = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            out.push(Entry {
                key,
                size: meta.len(),
                modified_ms: millis(&meta),
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// The sidecar as PocketBase 0.40's blob store writes it (Go's field order; no trailing
/// newline since 0.40). `metadata` empty is `null`, else an object with sorted keys.
pub fn sidecar_json(bytes: &[u8], content_type: &str, metadata: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use md5::{Digest, Md5};
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes));
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let meta = if metadata.is_empty() {
        "null".to_string()
    } else {
        let map: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    format!(
        "{{\"user.cache_control\":\"\",\"user.content_disposition\":\"\",\
         \"user.content_encoding\":\"\",\"user.content_language\":\"\",\
         \"user.content_type\":{},\"user.metadata\":{meta},\"md5\":{}}}",
        q(content_type),
        q(&md5)
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}",
        crate::random::random_string_with_alphabet(12, crate::random::ALNUM_ALPHABET)
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

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pocketbun-localfs-{}-{}",
            std::process::id(),
            crate::random::random_string_with_alphabet(8, crate::random::ALNUM_ALPHABET)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn objects_round_trip() {
        let root = scratch();
        let fs = LocalFs::new(&root);
        fs.put("c/r/x.png", b"hello", Some("image/png")).unwrap();
        fs.put("c/r/y.txt", b"plain", None).unwrap();
        fs.put("c/r/thumbs_x.png/10x10_x.png", b"t", Some("image/png"))
            .unwrap();
        assert_eq!(fs.read("c/r/x.png").unwrap(), b"hello");
        let a = fs.attributes("c/r/x.png").unwrap();
        assert_eq!((a.size, a.content_type.as_str()), (5, "image/png"));
        assert_eq!(
            fs.attributes("c/r/y.txt").unwrap().content_type,
            DEFAULT_CONTENT_TYPE
        );
        assert_eq!(
            std::fs::read_to_string(root.join("c/r/x.png.attrs")).unwrap(),
            "{\"user.cache_control\":\"\",\"user.content_disposition\":\"\",\
             \"user.content_encoding\":\"\",\"user.content_language\":\"\",\
             \"user.content_type\":\"image/png\",\"user.metadata\":null,\
             \"md5\":\"XUFAKrxLKna5cZ2REBfFkg==\"}"
        );
        let keys: Vec<_> = fs
            .list_dir("c/r")
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["c/r/x.png", "c/r/y.txt"]);
        assert!(fs.read("../x").is_err());
        assert_eq!(fs.read("c/r/nope").unwrap_err().kind(), ErrorKind::NotFound);
        fs.delete_prefix("c/r/thumbs_x.png/").unwrap();
        assert!(!root.join("c/r/thumbs_x.png").exists());
        fs.delete("c/r/x.png").unwrap();
        assert!(!root.join("c/r/x.png.attrs").exists());
        assert_eq!(
            fs.delete("c/r/x.png").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        fs.delete_prefix("c/r/").unwrap();
        assert!(!root.join("c/r").exists());
        fs.delete_prefix("c/missing/").unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}

//! Where record files and backups live: a folder of `pb_data` or an S3-compatible bucket,
//! behind one set of operations keyed by slash-separated paths (`<collectionId>/<recordId>/<name>`
//! for record files, the archive name for backups) — PocketBase's blob layout in both.
//!
//! The local side is plain blocking file I/O (callers run it where blocking is fine, as they
//! did before); the S3 side is `aws-sdk-s3` on one shared tokio runtime thread, reached from
//! any thread (monoio workers included) through futures that never block: see [`s3`].

pub mod local;
pub mod s3;

pub use local::LocalFs;
pub use s3::{S3Config, S3Fs};

/// What a stored object is, as PocketBase's blob attributes report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch (0: unknown).
    pub modified_ms: i64,
    pub content_type: String,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch (0: unknown).
    pub modified_ms: i64,
}

/// What a stored object without a recorded content type stands for.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A byte range of an object: first byte and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub len: u64,
}

/// Whether `key` is a relative object key without dot segments or empty segments: the only
/// keys either backend accepts (a local key must never leave its root folder).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && !key.contains(['\\', '\0'])
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// One of the two backends; cheap to clone (the S3 client is shared).
#[derive(Clone)]
pub enum Fs {
    Local(LocalFs),
    S3(S3Fs),
}

impl Fs {
    pub fn is_s3(&self) -> bool {
        matches!(self, Fs::S3(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(valid_key("a/b/c.png"));
        assert!(valid_key("@auto_pb_backup_x.zip"));
        for bad in ["", "/a", "a//b", "a/../b", "..", "a\\b", "a/./b", "a/"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}

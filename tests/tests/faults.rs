//! Faults under a running server, each with a defined answer (issue 16):
//!
//! | fault | answer |
//! |---|---|
//! | disk full (a small tmpfs, root only) | writes fail with PocketBase's error envelope, reads go on, nothing acknowledged is lost, the database stays intact, writes work again once space returns |
//! | `data.db` and its WAL made immutable (`chattr +i`, root only) | the same |
//! | SMTP server down during `request-otp` | 200 with an `otpId` (the mail goes out after the answer); the unsent OTP is deleted, so it cannot be used; OTPs work again once SMTP is back |
//! | S3 down during an upload | the create fails with the error envelope and leaves no record; uploads work again once S3 is back |
//!
//! The first two need root (CI runs as root); elsewhere they are skipped with one line.

use pocketbun_tests::http::Request;
use pocketbun_tests::s3::S3Server;
use pocketbun_tests::smtp::{smtp_sink, unquote};
use pocketbun_tests::{conformance_dir, copy_dir, Server, ServerSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

fn fixture() -> PathBuf {
    conformance_dir()
        .expect("the conformance corpus (../shared/conformance) is needed")
        .join("pb_data")
}

fn call(server: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut req = Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .header("Authorization", SUPERUSER)
        .timeout(Duration::from_secs(60));
    if let Some(b) = body {
        let b = b.to_string();
        req = req
            .header("Content-Type", "application/json")
            .header("Content-Length", &b.len().to_string())
            .body(b.into_bytes());
    }
    let resp = req
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver log:\n{}", server.log()));
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, v)
}

/// PocketBase's error envelope with `status`: exactly the keys `data`, `message`, `status`.
fn assert_envelope(v: &Value, status: u16) {
    let keys: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["data", "message", "status"],
        "not an error envelope: {v}"
    );
    assert_eq!(v["status"], status, "{v}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A collection `notes` with one large text field, created over the API.
fn create_notes(server: &Server) {
    let coll = json!({
        "name": "notes",
        "type": "base",
        "listRule": "",
        "viewRule": "",
        "fields": [{"name": "body", "type": "text", "max": 1_000_000}],
    });
    let (status, body) = call(server, "POST", "/api/collections", Some(&coll));
    assert_eq!(status, 200, "{body}");
}

/// Creates a note of `size` bytes: its id when acknowledged, else the error answer.
fn create_note(server: &Server, n: usize, size: usize) -> Result<String, (u16, Value)> {
    let text: String = format!("{n:08}-") + &"x".repeat(size);
    let (status, body) = call(
        server,
        "POST",
        "/api/collections/notes/records",
        Some(&json!({"body": text})),
    );
    match status {
        200 => Ok(body["id"].as_str().expect("an id").to_string()),
        _ => Err((status, body)),
    }
}

/// After the server stopped: the database passes SQLite's integrity check and holds every
/// acknowledged note.
fn assert_intact(data_dir: &Path, acknowledged: &[String]) {
    let conn = rusqlite::Connection::open(data_dir.join("data.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn.prepare("SELECT id FROM notes").unwrap();
    let ids: std::collections::HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// Writes `n` more notes once the fault is gone, all of which must be acknowledged.
fn recover(server: &Server, from: usize, n: usize, acknowledged: &mut Vec<String>) {
    for i in from..from + n {
        match create_note(server, i, 1000) {
            Ok(id) => acknowledged.push(id),
            Err((status, body)) => panic!(
                "write {i} after recovery: {status} {body}\nserver log:\n{}",
                server.log()
            ),
        }
    }
}

/// Writes until one fails (at most `max`), collecting the acknowledged ids; the failure's
/// answer must be the error envelope. Returns how many writes were tried.
fn write_until_refused(
    server: &Server,
    size: usize,
    max: usize,
    acknowledged: &mut Vec<String>,
) -> usize {
    for i in 0..max {
        match create_note(server, i, size) {
            Ok(id) => acknowledged.push(id),
            Err((status, body)) => {
                println!("faults: refused with {status} {body}");
                assert!(status == 400 || status == 500, "{status} {body}");
                assert_envelope(&body, status);
                // reads are unharmed
                let (status, list) = call(
                    server,
                    "GET",
                    "/api/collections/notes/records?perPage=1",
                    None,
                );
                assert_eq!(status, 200, "{list}");
                return i + 1;
            }
        }
    }
    panic!("{max} writes of {size} bytes were all acknowledged: the fault never showed");
}

/// A tmpfs mounted for the test, unmounted when dropped (lazily, so a failing test still
/// leaves no mount behind).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", path],
        )?;
        Ok(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.0.path().to_string_lossy()]);
    }
}

/// Fills the file system holding `dir` with a ballast file until it is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // the last partial block: byte by byte would be slow; smaller blocks are enough
    let small = vec![0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn disk_full_fails_writes_cleanly_and_recovers() {
    if !is_root() {
        println!("faults: disk full needs root to mount a tmpfs, skipping");
        return;
    }
    let tmpfs = match Tmpfs::mount("32m") {
        Ok(t) => t,
        Err(e) => {
            println!("faults: cannot mount a tmpfs ({e}), skipping");
            return;
        }
    };
    let data = tmpfs.path().join("pb_data");
    copy_dir(&fixture(), &data).unwrap();
    let mut spec = ServerSpec::pocketbun();
    spec.args = vec![
        "serve".into(),
        "--http=127.0.0.1:{port}".into(),
        format!("--dir={}", data.display()),
    ];
    let mut server = Server::start(&spec, None).unwrap_or_else(|e| panic!("{e}"));
    create_notes(&server);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        acknowledged.push(create_note(&server, i, 1000).expect("room to write"));
    }

    let ballast = fill(tmpfs.path());
    let tried = write_until_refused(&server, 200_000, 500, &mut acknowledged);
    println!(
        "faults: disk full refused write {tried} ({} acknowledged)",
        acknowledged.len()
    );
    std::fs::remove_file(&ballast).unwrap();
    recover(&server, 10_000, 20, &mut acknowledged);

    server.stop();
    assert!(
        !server.log().contains("panicked"),
        "server log:\n{}",
        server.log()
    );
    assert_intact(&data, &acknowledged);
}

/// `chattr ±i` on the database files; removed again when dropped.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(files: &[PathBuf]) -> Result<Immutable, String> {
        let mut done = Immutable(Vec::new());
        for f in files {
            run("chattr", &["+i", &f.to_string_lossy()])?;
            done.0.push(f.clone());
        }
        Ok(done)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = run("chattr", &["-i", &f.to_string_lossy()]);
        }
    }
}

#[test]
fn read_only_database_fails_writes_cleanly_and_recovers() {
    if !is_root() {
        println!("faults: making data.db immutable needs root, skipping");
        return;
    }
    let mut server =
        Server::start(&ServerSpec::pocketbun(), Some(&fixture())).unwrap_or_else(|e| panic!("{e}"));
    create_notes(&server);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        acknowledged.push(create_note(&server, i, 1000).expect("a writable database"));
    }
    let data = server.data_dir().to_path_buf();
    let files = [data.join("data.db"), data.join("data.db-wal")];
    let flag = match Immutable::set(&files) {
        Ok(f) => f,
        Err(e) => {
            println!("faults: chattr +i does not work here ({e}), skipping");
            return;
        }
    };
    let tried = write_until_refused(&server, 1000, 50, &mut acknowledged);
    println!("faults: read-only data.db refused write {tried}");
    drop(flag);
    recover(&server, 10_000, 20, &mut acknowledged);

    server.stop();
    assert!(
        !server.log().contains("panicked"),
        "server log:\n{}",
        server.log()
    );
    assert_intact(&data, &acknowledged);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn request_otp(server: &Server) -> String {
    let started = Instant::now();
    let (status, body) = call(
        server,
        "POST",
        "/api/collections/users/request-otp",
        Some(&json!({"email": "test@example.com"})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "request-otp waited on the mail server"
    );
    body["otpId"].as_str().expect("an otpId").to_string()
}

#[test]
fn smtp_down_during_an_otp_request() {
    let server =
        Server::start(&ServerSpec::pocketbun(), Some(&fixture())).unwrap_or_else(|e| panic!("{e}"));
    let down = json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": closed_port()}});
    let (status, body) = call(&server, "PATCH", "/api/settings", Some(&down));
    assert_eq!(status, 200, "{body}");

    // answered at once; the OTP whose mail could not be sent is deleted afterwards
    let otp_id = request_otp(&server);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = call(
            &server,
            "GET",
            &format!("/api/collections/_otps/records/{otp_id}"),
            None,
        );
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "the unsent OTP was never deleted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-otp",
        Some(&json!({"otpId": otp_id, "password": "12345678"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, 400);

    // SMTP back: the next OTP arrives and logs in
    let (port, mail) = smtp_sink();
    let up = json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": port}});
    let (status, body) = call(&server, "PATCH", "/api/settings", Some(&up));
    assert_eq!(status, 200, "{body}");
    let otp_id = request_otp(&server);
    let msg = mail
        .recv_timeout(Duration::from_secs(60))
        .expect("the OTP mail once SMTP is back");
    let text = unquote(&msg.data);
    let code = text
        .split("<strong>")
        .nth(1)
        .and_then(|s| s.split("</strong>").next())
        .expect("the code in the mail")
        .to_string();
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-otp",
        Some(&json!({"otpId": otp_id, "password": code})),
    );
    // the fixture's users have MFA on: the OTP passes as the first factor (401 + mfaId)
    assert_eq!(status, 401, "{body}");
    assert!(body["mfaId"].is_string(), "{body}");
}

/// A multipart body with one file part.
fn multipart(field: &str, name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----pocketbunfaultboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(server: &Server, text: &[u8]) -> (u16, Value) {
    let (ct, body) = multipart("file_many", "note.txt", text);
    let resp = Request::new("POST", "/api/collections/demo1/records")
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .header("Authorization", SUPERUSER)
        .header("Content-Type", &ct)
        .header("Content-Length", &body.len().to_string())
        .body(body)
        .timeout(Duration::from_secs(120))
        .send(server.port())
        .unwrap_or_else(|e| panic!("upload: {e}\nserver log:\n{}", server.log()));
    (
        resp.status,
        serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
    )
}

fn record_count(server: &Server) -> u64 {
    let (status, body) = call(
        server,
        "GET",
        "/api/collections/demo1/records?perPage=1",
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["totalItems"].as_u64().unwrap()
}

#[test]
fn s3_down_during_an_upload() {
    let Some(mut s3) = S3Server::start() else {
        println!("faults: moto[server] cannot be installed here, skipping");
        return;
    };
    s3.create_bucket("pb-files");
    let server =
        Server::start(&ServerSpec::pocketbun(), Some(&fixture())).unwrap_or_else(|e| panic!("{e}"));
    let settings = json!({"s3": {
        "enabled": true,
        "bucket": "pb-files",
        "region": "us-east-1",
        "endpoint": s3.endpoint(),
        "accessKey": "testing",
        "secret": "testing-secret",
        "forcePathStyle": true,
    }});
    let (status, body) = call(&server, "PATCH", "/api/settings", Some(&settings));
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(&server, b"before the outage");
    assert_eq!(status, 200, "{body}");

    s3.stop();
    let before = record_count(&server);
    let (status, body) = upload(&server, b"during the outage");
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, 400);
    assert_eq!(record_count(&server), before, "no record without its file");

    s3.restart();
    s3.create_bucket("pb-files");
    let (status, rec) = upload(&server, b"after the outage");
    assert_eq!(status, 200, "{rec}");
    let id = rec["id"].as_str().unwrap();
    let name = rec["file_many"][0].as_str().unwrap();
    let key = format!("wsmn24bux7wo113/{id}/{name}");
    assert_eq!(
        s3.object("pb-files", &key).map(|(_, b)| b),
        Some(b"after the outage".to_vec())
    );
    assert!(
        !server.log().contains("panicked"),
        "server log:\n{}",
        server.log()
    );
}

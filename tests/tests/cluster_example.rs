//! The cluster example (issue 19, item 5): `examples/cluster/run.py` is started as a user
//! would start it (one command, with this workspace's `pocketbun` and the Litestream,
//! nats-server and moto the other cluster tests install) on a copy of PocketBase's fixture
//! `pb_data`. Through its round-robin front (`examples/cluster/front.py`):
//!
//! * the official JS SDK acceptance flow (`tests/js/records.mjs`, as in `js_sdk.rs`) passes,
//!   its requests landing on the primary and both replicas in turn;
//! * the front's read-your-writes header: `tests/js/read_your_writes.mjs` has the SDK create
//!   and read back at once 300 times, each read on another node than its create (with the
//!   header taken out of the front, the first read missed);
//! * a realtime subscription works: an SSE stream opened through the front (on one node) gets
//!   the event of a create sent through the front (to another node) after its subscriptions
//!   were set through the front (a third node);
//! * SIGTERM to `run.py` stops it with status 0, and every process it started (the nodes,
//!   their Litestream children, moto, nats-server, the front) is gone.
//!
//! Missing Litestream, moto, nats-server, Node or the fixture fails under `CI=true`, else
//! skips with one line.

use pocketbun_tests::fixture::SUPERUSER_TOKEN;
use pocketbun_tests::{need, target_dir, workspace_root};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `run.py` may take to have everything up: a replica's first start restores the
/// database from moto (seconds); the rest is margin for this loaded 2-core machine.
const START: Duration = Duration::from_secs(240);
/// Create-then-read rounds of the JS SDK through the front (~80 ms each on the debug build).
const ROUNDS: u32 = 300;
/// How long an event may take to reach an SSE client of a replica: ~1 s replica lag, measured
/// in `cluster_realtime.rs`; the rest is margin.
const EVENT: Duration = Duration::from_secs(30);

/// `(pid, start time)` of `root` and all its descendants, from `/proc`.
fn process_tree(root: u32) -> Vec<(u32, u64)> {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new(); // pid, ppid, start time
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, start)) = stat(pid).map(|s| (s.1, s.2)) {
            procs.push((pid, ppid, start));
        }
    }
    let mut tree: Vec<(u32, u64)> = procs
        .iter()
        .filter(|p| p.0 == root)
        .map(|p| (p.0, p.2))
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].0;
        tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| (p.0, p.2)));
        i += 1;
    }
    tree
}

/// State, parent pid and start time (clock ticks since boot) of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: fields start after the last ')'
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((
        state,
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
    ))
}

/// Whether the process recorded as `(pid, start)` still runs (a zombie counts as gone).
fn alive((pid, start): (u32, u64)) -> bool {
    stat(pid).is_some_and(|(state, _, s)| s == start && state != 'Z')
}

/// `run.py` running, its stdout lines arriving on `lines`.
struct RunPy {
    child: Child,
    lines: mpsc::Receiver<String>,
    dir: tempfile::TempDir,
}

impl RunPy {
    /// Tails of the nodes' logs (`<dir>/logs/*.log`) and of `run.py`'s stderr.
    fn logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<_> = std::fs::read_dir(self.dir.path().join("logs"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.push(self.dir.path().join("run.stderr"));
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- {} ---\n", path.display()));
            for line in tail.iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for RunPy {
    fn drop(&mut self) {
        // a failed test lands here; once waited for, the pid may belong to someone else
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on our own child, not yet reaped
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = self.child.wait();
        }
    }
}

fn start_run_py(
    fixture: &std::path::Path,
    litestream: &std::path::Path,
    nats: &std::path::Path,
) -> RunPy {
    let dir = tempfile::Builder::new()
        .prefix("pocketbun-cluster-example-")
        .tempdir()
        .unwrap();
    let stderr = std::fs::File::create(dir.path().join("run.stderr")).unwrap();
    let mut child = Command::new("python3")
        .arg(workspace_root().join("examples/cluster/run.py"))
        .arg(format!(
            "--pocketbun={}",
            pocketbun_tests::pocketbun_bin().display()
        ))
        .arg(format!("--dir={}", dir.path().join("cluster").display()))
        .arg(format!("--seed={}", fixture.display()))
        .arg("--port=0")
        .env("LITESTREAM_BIN", litestream)
        .env("NATS_SERVER_BIN", nats)
        // where the tests installed moto (`target/moto-venv`), for run.py's lookup
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("MOTO_SERVER_BIN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    RunPy { child, lines, dir }
}

/// One HTTP/1.1 call through the front (a fresh connection): status and body.
fn call(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut req = pocketbun_tests::http::Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{port}"))
        .header("Connection", "close")
        .timeout(Duration::from_secs(60));
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let resp = req
        .json_body(body)
        .send(port)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (resp.status, resp.text())
}

/// Reads `sock` until `done(text so far)` holds; panics after [`EVENT`] with what came.
fn read_until(sock: &mut TcpStream, seen: &mut Vec<u8>, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + EVENT;
    let mut chunk = [0u8; 16384];
    loop {
        let text = String::from_utf8_lossy(seen).into_owned();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < end, "SSE stream through the front: {text}");
        if let Ok(n) = sock.read(&mut chunk) {
            seen.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Subscribe through the front, create through the front, get the event on the stream
/// opened through the front.
fn realtime_through_the_front(port: u16) {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    write!(
        sock,
        "GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    // the connect event comes through while the stream stays open: the front does not buffer
    let text = read_until(&mut sock, &mut seen, |t| t.contains("\"clientId\":\""));
    let at = text.find("\"clientId\":\"").unwrap() + 12;
    let client_id = text[at..at + 40].to_string();
    let subs = serde_json::json!({"clientId": client_id, "subscriptions": ["sdk_posts"]});
    let (status, text) = call(port, "POST", "/api/realtime", None, &subs.to_string());
    assert_eq!(status, 204, "set subscriptions: {text}");
    let (status, text) = call(
        port,
        "POST",
        "/api/collections/sdk_posts/records",
        Some(SUPERUSER_TOKEN),
        r#"{"title":"through the front"}"#,
    );
    assert_eq!(status, 200, "create: {text}");
    read_until(&mut sock, &mut seen, |t| {
        t.contains("event:sdk_posts") && t.contains("\"title\":\"through the front\"")
    });
}

#[test]
fn the_cluster_example_passes_the_sdk_flow_through_its_front() {
    const TEST: &str = "the_cluster_example_passes_the_sdk_flow_through_its_front";
    let sdk = match pocketbun_tests::node::js_sdk_dir() {
        Ok(dir) => dir,
        Err(why) => return need::unavailable(TEST, &why),
    };
    let Some(fixture) = need::fixture(TEST) else {
        return;
    };
    let Some(litestream) = need::litestream(TEST) else {
        return;
    };
    let Some(nats) = need::nats_server(TEST) else {
        return;
    };
    if pocketbun_tests::s3::moto_python().is_none() {
        return need::unavailable(TEST, "moto[server] cannot be installed here");
    }
    let mut run = start_run_py(&fixture, &litestream, &nats);

    // its last line before serving is a JSON object with the front's URL
    let deadline = Instant::now() + START;
    let mut printed = String::new();
    let ready: serde_json::Value = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match run.lines.recv_timeout(left) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["ready"] == true {
                        break v;
                    }
                }
            }
            Err(_) => panic!("run.py not ready:\n{printed}\n{}", run.logs()),
        }
    };
    assert!(printed.contains("primary: http://127.0.0.1:"), "{printed}");
    assert!(printed.contains("replica2: http://127.0.0.1:"), "{printed}");
    let front = ready["front"].as_str().unwrap().to_string();
    let port: u16 = front.rsplit(':').next().unwrap().parse().unwrap();
    let tree = process_tree(run.child.id());
    // run.py, moto, nats-server, 3 nodes, their Litestream processes, the front
    assert!(tree.len() >= 10, "process tree {tree:?}");

    let script = sdk.join("records.mjs");
    std::fs::copy(workspace_root().join("tests/js/records.mjs"), &script).unwrap();
    let png = fixture.join("storage/_pb_users_auth_/4q1xlclmfloku33/300_1SEi6Q6U72.png");
    let started = Instant::now();
    let out = Command::new("node")
        .arg(&script)
        .arg(&front)
        .arg(&png)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "the SDK flow through the front: {stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        run.logs()
    );
    eprintln!("SDK flow through the front: {:?}", started.elapsed());

    // create-then-read at once, round after round: each read lands on another node than its
    // create, so this fails without the front's TXID header (at round 0 when it was removed)
    let notes = serde_json::json!({
        "name": "notes", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "n", "type": "number"}],
    });
    let (status, text) = call(
        port,
        "POST",
        "/api/collections",
        Some(SUPERUSER_TOKEN),
        &notes.to_string(),
    );
    assert_eq!(status, 200, "notes: {text}");
    let script = sdk.join("read_your_writes.mjs");
    std::fs::copy(
        workspace_root().join("tests/js/read_your_writes.mjs"),
        &script,
    )
    .unwrap();
    let out = Command::new("node")
        .arg(&script)
        .arg(&front)
        .arg(ROUNDS.to_string())
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok"),
        "read-your-writes through the front: {stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        run.logs()
    );
    eprintln!(
        "read-your-writes through the front: {ROUNDS} create+read rounds, {} ms each",
        stdout.trim().trim_start_matches("ok ")
    );

    realtime_through_the_front(port);

    // SIGTERM: run.py stops everything and exits 0
    // SAFETY: kill(2) on our own child, not yet waited for.
    unsafe {
        libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM);
    }
    let end = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "run.py still running\n{}", run.logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "run.py: {status}\n{}", run.logs());
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = tree.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        let names: HashMap<u32, String> = left
            .iter()
            .map(|(pid, _)| {
                let cmd =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                (*pid, cmd.replace('\0', " "))
            })
            .collect();
        assert!(
            Instant::now() < end,
            "still running after run.py: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

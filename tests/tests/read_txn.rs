//! Read-your-writes with one read transaction per event-loop turn (issue 18): a worker's
//! reader keeps its SQLite read transaction across the reads of a turn
//! (`storage::Reader::batch_reads`), and must still show every write whose answer a client
//! already has, on any worker, while other clients keep the workers' turns full of reads and
//! another stream of writes commits all along.
//!
//! A real `pocketbun serve --workers 2` (with `--no-cache`, so every read reaches SQLite,
//! and once with the fresh-read cache on): checker threads each create a record on one
//! keep-alive connection and, as soon as the answer is in, view it and list it by id on two
//! other connections (which the kernel spreads over both workers' `SO_REUSEPORT` listeners).
//! Every such read must find the record. The same holds for a row another process inserts
//! into `data.db` while the workers are kept busy with reads only: no commit of the server's
//! writer then ends a worker's transaction, the end of its turn does. Needs nothing but the
//! `pocketbun` binary.

use pocketbun_tests::http::Request;
use pocketbun_tests::{data_dir_with_superuser, Server, ServerSpec};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EMAIL: &str = "ryw@example.com";
const PASSWORD: &str = "1234567890";
/// Checker threads, and the create-then-read rounds of each.
const CHECKERS: usize = 4;
const ROUNDS: usize = 100;
/// Threads that only read (keeping the workers' turns busy) or only write.
const READERS: usize = 6;
const WRITERS: usize = 2;

/// One keep-alive HTTP/1.1 connection (answers must carry a `Content-Length`).
struct Conn {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let out = TcpStream::connect(("127.0.0.1", port)).unwrap();
        out.set_nodelay(true).unwrap();
        out.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let input = BufReader::new(out.try_clone().unwrap());
        Conn { out, input }
    }

    /// (status, JSON body)
    fn send(&mut self, method: &str, target: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.out.write_all(head.as_bytes()).unwrap();
        self.out.write_all(body.as_bytes()).unwrap();
        let mut line = String::new();
        self.input.read_line(&mut line).unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {line:?}"));
        let mut length = None;
        loop {
            line.clear();
            self.input.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = Some(v.trim().parse::<usize>().unwrap());
                }
            }
        }
        let mut bytes = vec![0u8; length.expect("a Content-Length")];
        self.input.read_exact(&mut bytes).unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn post(server: &Server, path: &str, token: &str, body: &Value) -> Value {
    let resp = Request::new("POST", path)
        .header("Host", "127.0.0.1")
        .header("Authorization", token)
        .json_body(&body.to_string())
        .send(server.port())
        .unwrap();
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    serde_json::from_str(&resp.text()).unwrap()
}

fn server(extra: &[&str]) -> Server {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir_with_superuser(&root.path().join("pb_data"), EMAIL, PASSWORD);
    let mut spec = ServerSpec::pocketbun();
    spec.args.extend(["--workers", "2"].map(String::from));
    spec.args.extend(extra.iter().map(|a| a.to_string()));
    let server = Server::start(&spec, Some(&data)).expect("pocketbun starts");
    let auth = post(
        &server,
        "/api/collections/_superusers/auth-with-password",
        "",
        &json!({"identity": EMAIL, "password": PASSWORD}),
    );
    let token = auth["token"].as_str().unwrap();
    post(
        &server,
        "/api/collections",
        token,
        &json!({
            "name": "ryw", "type": "base",
            "listRule": "", "viewRule": "", "createRule": "",
            "fields": [{"name": "title", "type": "text"}],
        }),
    );
    server
}

/// Keeps the workers' turns full: `READERS` threads listing and `writers` threads creating,
/// each on its own keep-alive connection, until the returned flag is set.
fn background(port: u16, writers: usize) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<u64>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..READERS + writers)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut conn = Conn::open(port);
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    if i < READERS {
                        let (status, _) =
                            conn.send("GET", "/api/collections/ryw/records?perPage=5", None);
                        assert_eq!(status, 200);
                    } else {
                        let body = json!({"title": format!("bg {i} {k}")});
                        let (status, _) =
                            conn.send("POST", "/api/collections/ryw/records", Some(&body));
                        assert_eq!(status, 200);
                    }
                }
                k
            })
        })
        .collect();
    (stop, threads)
}

fn finish(stop: Arc<AtomicBool>, threads: Vec<std::thread::JoinHandle<u64>>) {
    stop.store(true, Ordering::Relaxed);
    let requests: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(requests > 0);
}

/// Runs the checkers against `server` under the background reads and writes; returns the
/// reads that missed a record whose create had been answered.
fn misses(server: &Server) -> Vec<String> {
    let port = server.port();
    let (stop, load) = background(port, WRITERS);
    let checkers: Vec<_> = (0..CHECKERS)
        .map(|c| {
            std::thread::spawn(move || {
                let (mut w, mut v, mut l) = (Conn::open(port), Conn::open(port), Conn::open(port));
                let mut missed = Vec::new();
                for round in 0..ROUNDS {
                    let body = json!({"title": format!("check {c} {round}")});
                    let (status, created) =
                        w.send("POST", "/api/collections/ryw/records", Some(&body));
                    assert_eq!(status, 200, "{created}");
                    let id = created["id"].as_str().unwrap().to_string();
                    let (status, seen) =
                        v.send("GET", &format!("/api/collections/ryw/records/{id}"), None);
                    if status != 200 || seen["id"] != created["id"] {
                        missed.push(format!("view {id}: {status} {seen}"));
                    }
                    let list = format!("/api/collections/ryw/records?filter=(id%3D%27{id}%27)");
                    let (status, page) = l.send("GET", &list, None);
                    if status != 200 || page["totalItems"] != 1 || page["items"][0]["id"] != id {
                        missed.push(format!("list {id}: {status} {page}"));
                    }
                }
                missed
            })
        })
        .collect();
    let missed: Vec<String> = checkers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    finish(stop, load);
    missed
}

#[test]
fn a_write_is_seen_by_the_next_read_on_any_worker() {
    let server = server(&["--no-cache"]);
    let missed = misses(&server);
    assert!(
        missed.is_empty(),
        "{} of {} reads missed an answered create:\n{}",
        missed.len(),
        2 * CHECKERS * ROUNDS,
        missed.join("\n")
    );
}

#[test]
fn a_write_is_seen_by_the_next_read_with_the_cache_on() {
    let server = server(&[]);
    let missed = misses(&server);
    assert!(
        missed.is_empty(),
        "{} of {} reads missed an answered create:\n{}",
        missed.len(),
        2 * CHECKERS * ROUNDS,
        missed.join("\n")
    );
}

/// Another process's write (here: this test's own connection to `data.db`) is seen by the
/// next request: a worker's read transaction ends with the turn it began in, even when no
/// commit of the server's writer ends it first (the load here only reads).
#[test]
fn another_process_write_is_seen_by_the_next_request() {
    let server = server(&["--no-cache"]);
    let port = server.port();
    let (stop, load) = background(port, 0);
    let db = rusqlite::Connection::open(server.data_dir().join("data.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut missed = Vec::new();
    let (mut v, mut l) = (Conn::open(port), Conn::open(port));
    for round in 0..ROUNDS {
        let id = format!("ext{round:012}");
        db.execute(
            "INSERT INTO ryw (id, title) VALUES (?1, 'from another process')",
            [&id],
        )
        .unwrap();
        let (status, seen) = v.send("GET", &format!("/api/collections/ryw/records/{id}"), None);
        if status != 200 || seen["id"] != id.as_str() {
            missed.push(format!("view {id}: {status} {seen}"));
        }
        let list = format!("/api/collections/ryw/records?filter=(id%3D%27{id}%27)");
        let (status, page) = l.send("GET", &list, None);
        if status != 200 || page["totalItems"] != 1 {
            missed.push(format!("list {id}: {status} {page}"));
        }
    }
    finish(stop, load);
    assert!(
        missed.is_empty(),
        "{} of {} reads missed another process's insert:\n{}",
        missed.len(),
        2 * ROUNDS,
        missed.join("\n")
    );
}

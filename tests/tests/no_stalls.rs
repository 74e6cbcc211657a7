//! No stalls (issue 16): each kind of hostile input, at the largest size the limits let
//! through, must not hold a request worker. A worker runs many connections on one thread, so
//! one long turn of its loop delays every other connection on that core.
//!
//! The measure is the server's own stall detector (`http/src/stall.rs`): each worker reads its
//! thread's CPU clock at every heartbeat, so the figure is CPU time spent in one turn of the
//! loop, not wall time, and does not grow when a loaded machine makes the thread wait for a
//! core. The server reports every turn over its stall threshold on stderr (`worker N ran M ms
//! of CPU without yielding`) and, at exit, the longest turn of any worker (`longest busy
//! stretch of a worker: M ms`). Each input runs against a fresh server (a copy of one prepared
//! data dir), which is then stopped, so the exit figure belongs to that input alone. The
//! threshold is the server's default stall threshold, 200 ms (`http/src/config.rs`); in a debug
//! build, on a machine with load ~12, the bounded inputs below measured 10-95 ms per turn.
//!
//! The sizes come from the documented limits: 1 MiB request head and URI (Go's
//! `DefaultMaxHeaderBytes`), 32 MiB default body plus what the collection's JSON field may hold
//! (PocketBase's per-collection body limit), 10,000 form fields and 1,000 multipart parts
//! (Go's form limits), 128 MiB batch bodies of at most 50 requests (PocketBase's defaults).
//! Needs nothing but the `pocketbun` binary. `NO_STALLS_ONLY=a|b` runs only the inputs whose
//! name contains `a` or `b`.

use pocketbun_tests::http::Request;
use pocketbun_tests::{copy_dir, data_dir_with_superuser, Server, ServerSpec};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const EMAIL: &str = "stall@example.com";
const PASSWORD: &str = "1234567890";
/// The big auth record's email.
const USER_EMAIL: &str = "huge@example.com";
/// PocketBase's default body limit.
const DEFAULT_BODY: usize = 32 << 20;
/// `maxSize` of the `data` JSON field: it raises the collection's body limit by as much.
const JSON_MAX: usize = 32 << 20;
/// The body limit of `big` record writes (default limit plus the JSON field's `maxSize`).
const RECORD_BODY: usize = DEFAULT_BODY + JSON_MAX;
/// Request line plus headers, and the request target alone (Go's `DefaultMaxHeaderBytes`).
const MAX_HEAD: usize = 1 << 20;
/// Go's `maxFormFields` / `multipartmaxparts` (more is refused with a 400).
const MAX_FORM_FIELDS: usize = 10_000;
const MAX_PARTS: usize = 1_000;
/// PocketBase's batch defaults: body size and requests.
const BATCH_BODY: usize = 128 << 20;
const BATCH_REQUESTS: usize = 50;
/// `file` field of `big`: up to 10 files of 1 MiB (adds 10 MiB to the body limit).
const FILES: usize = 10;
const FILE_MAX: usize = 1 << 20;

/// What the server said about one input.
struct Seen {
    status: u16,
    /// Turns over the stall threshold the detector reported.
    stalls: Vec<String>,
    /// The exit line's longest turn, ms.
    longest_ms: u64,
}

/// A prepared data dir (superuser, `big` collection, one big record) and a superuser token.
struct Prepared {
    _root: tempfile::TempDir,
    data: std::path::PathBuf,
    token: String,
    /// `/api/collections/huge/records/{id}` of the big record.
    huge_url: String,
    /// A token of the `hugeusers` record, an auth record as big as `huge`'s.
    user_token: String,
}

fn call(server: &Server, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let b = body.to_string();
    let resp = Request::new(method, path)
        .header("Host", "127.0.0.1")
        .header("Connection", "close")
        .header("Content-Type", "application/json")
        .header("Content-Length", &b.len().to_string())
        .header("Authorization", token)
        .body(b.into_bytes())
        .timeout(Duration::from_secs(300))
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", server.log()));
    (
        resp.status,
        serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
    )
}

/// [`call`], which must answer 200: the answer's JSON.
fn ok(server: &Server, method: &str, path: &str, token: &str, body: &Value) -> Value {
    let (status, answer) = call(server, method, path, token, body);
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

/// The token of `email` (password [`PASSWORD`]) signing in to auth collection `collection`.
fn sign_in(server: &Server, collection: &str, email: &str) -> String {
    let path = format!("/api/collections/{collection}/auth-with-password");
    let auth = ok(
        server,
        "POST",
        &path,
        "",
        &json!({"identity": email, "password": PASSWORD}),
    );
    auth["token"].as_str().unwrap().to_string()
}

/// A JSON array of small numbers, `bytes` long.
fn number_array(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 8);
    s.push('[');
    let mut i = 0u32;
    while s.len() + 8 < bytes {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&(i % 1000).to_string());
        i += 1;
    }
    s.push(']');
    s
}

fn prepare() -> Prepared {
    let spec = ServerSpec::pocketbun();
    let root = tempfile::tempdir().unwrap();
    let data = data_dir_with_superuser(&root.path().join("pb_data"), EMAIL, PASSWORD);
    let server = Server::start(&spec, Some(&data)).expect("pocketbun starts");
    let token = sign_in(&server, "_superusers", EMAIL);
    let body = ok(
        &server,
        "POST",
        "/api/collections",
        &token,
        &json!({
            "name": "big",
            "type": "base",
            "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
            "fields": [
                {"name": "title", "type": "text", "max": RECORD_BODY},
                {"name": "data", "type": "json", "maxSize": JSON_MAX},
                {"name": "docs", "type": "file", "maxSelect": FILES, "maxSize": FILE_MAX},
            ],
        }),
    );
    let big_collection = body["id"].as_str().unwrap().to_string();
    let mut fields = body["fields"].clone();
    // batches are off by default; the timeout must not cut the biggest short
    ok(
        &server,
        "PATCH",
        "/api/settings",
        &token,
        &json!({"batch": {"enabled": true, "maxRequests": BATCH_REQUESTS, "timeout": 600}}),
    );
    // the same fields without the relation: one record as big as a single write may make,
    // for the big answers (kept out of `big`, whose lists must stay small)
    ok(
        &server,
        "POST",
        "/api/collections",
        &token,
        &json!({
            "name": "huge",
            "type": "base",
            "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text", "max": RECORD_BODY},
                {"name": "data", "type": "json", "maxSize": JSON_MAX},
            ],
        }),
    );
    // a relation to its own collection, added once the id is known
    fields.as_array_mut().unwrap().push(json!({
        "name": "rel", "type": "relation", "collectionId": big_collection, "maxSelect": 999,
    }));
    ok(
        &server,
        "PATCH",
        "/api/collections/big",
        &token,
        &json!({"fields": fields}),
    );
    let rec = ok(
        &server,
        "POST",
        "/api/collections/huge/records",
        &token,
        &json!({
            "title": "t".repeat(DEFAULT_BODY / 2),
            "data": serde_json::from_str::<Value>(&number_array(JSON_MAX - 1024)).unwrap(),
        }),
    );
    let big_id = rec["id"].as_str().unwrap().to_string();
    // an auth collection with a record as big as `huge`'s, and a collection whose list rule
    // reads a field of the caller's auth record (so the caller's row is loaded for it)
    ok(
        &server,
        "POST",
        "/api/collections",
        &token,
        &json!({
            "name": "hugeusers",
            "type": "auth",
            "fields": [
                {"name": "title", "type": "text", "max": RECORD_BODY},
                {"name": "data", "type": "json", "maxSize": JSON_MAX},
            ],
        }),
    );
    ok(
        &server,
        "POST",
        "/api/collections/hugeusers/records",
        &token,
        &json!({
            "email": USER_EMAIL,
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
            "title": "t".repeat(DEFAULT_BODY / 2),
            "data": serde_json::from_str::<Value>(&number_array(JSON_MAX - 1024)).unwrap(),
        }),
    );
    let user_token = sign_in(&server, "hugeusers", USER_EMAIL);
    ok(
        &server,
        "POST",
        "/api/collections",
        &token,
        &json!({
            "name": "gated",
            "type": "base",
            "listRule": "@request.auth.verified = false",
            "fields": [{"name": "title", "type": "text"}],
        }),
    );
    ok(
        &server,
        "POST",
        "/api/collections/gated/records",
        &token,
        &json!({"title": "seen by unverified callers"}),
    );
    // 200 small records, each related to the one before, for lists and expand
    let mut prev: Vec<String> = Vec::new();
    for i in 0..200 {
        let body = ok(
            &server,
            "POST",
            "/api/collections/big/records",
            &token,
            &json!({"title": format!("small {i}"), "rel": prev}),
        );
        prev = vec![body["id"].as_str().unwrap().to_string()];
    }
    drop(server_stop(server, &data));
    Prepared {
        _root: root,
        data,
        token,
        huge_url: format!("/api/collections/huge/records/{big_id}"),
        user_token,
    }
}

/// Stops `server` and copies its data dir to `to` (the copy outlives the server's temp dir).
fn server_stop(mut server: Server, to: &Path) -> std::path::PathBuf {
    server.stop();
    let _ = std::fs::remove_dir_all(to);
    copy_dir(server.data_dir(), to).unwrap();
    to.to_path_buf()
}

/// Runs `input` against a fresh server over a copy of the prepared data and reads what the
/// stall detector saw.
fn run(p: &Prepared, input: impl FnOnce(&Server) -> u16) -> Seen {
    let mut server = Server::start(&ServerSpec::pocketbun(), Some(&p.data)).unwrap();
    let status = input(&server);
    // a heartbeat comes every 20 ms and the watchdog looks every 50 ms
    std::thread::sleep(Duration::from_millis(200));
    server.stop();
    let log = server.log();
    let stalls = log
        .lines()
        .filter(|l| l.contains("of CPU without yielding"))
        .map(str::to_string)
        .collect();
    let longest_ms = log
        .lines()
        .find_map(|l| l.strip_prefix("pocketbun: longest busy stretch of a worker: "))
        .and_then(|l| l.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no busy figure in the server log:\n{log}"));
    Seen {
        status,
        stalls,
        longest_ms,
    }
}

/// One request with `body`, the answer's status.
fn send(server: &Server, method: &str, target: &str, token: &str, ct: &str, body: Vec<u8>) -> u16 {
    let mut req = Request::new(method, target)
        .header("Host", "127.0.0.1")
        .header("Connection", "close")
        .header("Content-Length", &body.len().to_string())
        .timeout(Duration::from_secs(600))
        .body(body);
    if !ct.is_empty() {
        req = req.header("Content-Type", ct);
    }
    if !token.is_empty() {
        req = req.header("Authorization", token);
    }
    match req.send(server.port()) {
        Ok(r) => r.status,
        Err(e) => panic!("{method} {}: {e}\n{}", cut(target), server.log()),
    }
}

fn cut(s: &str) -> &str {
    &s[..s.len().min(80)]
}

/// Raw bytes on a fresh connection, written in `piece`-sized writes; the answer's status (0
/// when the server closed without one).
fn raw(server: &Server, bytes: &[u8], piece: usize) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    for chunk in bytes.chunks(piece) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Subscribes an SSE client to `topic`, runs `change` (a write whose status it returns) and
/// reads the stream until the change's event has arrived whole. The status of `change`, or 0
/// when the stream ended without the event (it is checked to be over `min_bytes`).
fn realtime_event(
    server: &Server,
    topic: &str,
    min_bytes: usize,
    change: impl FnOnce() -> u16,
) -> u16 {
    let mut sse = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    sse.write_all(b"GET /api/realtime HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    const ID_KEY: &[u8] = b"\"clientId\":\"";
    let client_id = loop {
        let n = sse.read(&mut buf).unwrap();
        assert!(n > 0, "realtime stream closed before PB_CONNECT");
        seen.extend_from_slice(&buf[..n]);
        if let Some(at) = seen.windows(ID_KEY.len()).position(|w| w == ID_KEY) {
            let rest = &seen[at + ID_KEY.len()..];
            if let Some(end) = rest.iter().position(|&b| b == b'"') {
                break String::from_utf8(rest[..end].to_vec()).unwrap();
            }
        }
    };
    let (status, body) = call(
        server,
        "POST",
        "/api/realtime",
        "",
        &json!({"clientId": client_id, "subscriptions": [topic]}),
    );
    assert_eq!(status, 204, "subscribe: {body}");
    let status = change();
    // the event: `event:{topic}` then its data, which ends with the action
    let event = format!("event:{topic}\n");
    let end = b"\"action\":\"update\"}";
    let mut read = 0usize;
    let mut started = false;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match sse.read(&mut buf) {
            Ok(0) | Err(_) => return 0,
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        if !started {
            if let Some(at) = tail
                .windows(event.len())
                .position(|w| w == event.as_bytes())
            {
                started = true;
                tail.drain(..at);
            }
        }
        if started {
            read += n;
            if tail.windows(end.len()).any(|w| w == end) {
                assert!(read > min_bytes, "event of {read} bytes, expected more");
                return status;
            }
        }
        // keep only what a marker split across reads needs
        let keep = tail.len().saturating_sub(64);
        tail.drain(..keep);
    }
}

/// A query string of `k0&k1&...`, `bytes` long.
fn many_keys(bytes: usize, sep: &str, item: impl Fn(usize) -> String) -> String {
    let mut s = String::with_capacity(bytes);
    let mut i = 0;
    loop {
        let next = item(i);
        if s.len() + sep.len() + next.len() > bytes {
            return s;
        }
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&next);
        i += 1;
    }
}

/// A list URL whose target is at most [`MAX_HEAD`] bytes minus room for the other headers.
fn url_with(param: &str, value: String) -> String {
    format!("/api/collections/big/records?{param}={value}")
}

const TARGET: usize = MAX_HEAD - 4096;

fn multipart(parts: &[(String, Option<String>, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
        body.extend_from_slice(name.as_bytes());
        body.push(b'"');
        if let Some(f) = file {
            body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    ("multipart/form-data; boundary=XyZ".into(), body)
}

/// Which test drives an input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Parsed within its limits without a long turn.
    Bounded,
    /// Big record values and answers: converted, validated and encoded on the CPU pool once
    /// over 64 KiB (`OFFLOAD_PARSE_BYTES`, `OFFLOAD_ENCODE_BYTES` in the engine).
    BigValue,
    /// Big records on the other paths that write or read one: realtime events, auth answers
    /// and the caller's auth record loaded for rules.
    BigRecordPath,
}

type Input<'a> = Box<dyn FnOnce(&Server) -> u16 + 'a>;

fn inputs(p: &Prepared) -> Vec<(&'static str, Kind, Input<'_>)> {
    use Kind::{BigRecordPath, BigValue, Bounded};
    let t = p.token.as_str();
    let ut = p.user_token.as_str();
    let list = "/api/collections/big/records";
    let huge = p.huge_url.as_str();
    const JSON: &str = "application/json";
    const FORM: &str = "application/x-www-form-urlencoded";
    vec![
        (
            "baseline: one health check",
            Bounded,
            Box::new(move |s| s.get("/api/health").unwrap().status),
        ),
        (
            "request head: one 1 MiB header, in one write",
            Bounded,
            Box::new(move |s| {
                let head = format!(
                    "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
                    "a".repeat(MAX_HEAD - 256)
                );
                raw(s, head.as_bytes(), 1 << 20)
            }),
        ),
        (
            "request head: 1 MiB of headers trickled in 1 KiB writes",
            Bounded,
            Box::new(move |s| {
                let mut head =
                    String::from("GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
                // 8 KiB headers: 1 MiB of them stays under the 256-header limit
                while head.len() < MAX_HEAD - 8300 {
                    head.push_str(&format!("X-H{}: {}\r\n", head.len(), "b".repeat(8000)));
                }
                head.push_str("\r\n");
                raw(s, head.as_bytes(), 1024)
            }),
        ),
        (
            "query string: 1 MiB of distinct keys",
            Bounded,
            Box::new(move |s| {
                let q = many_keys(TARGET - list.len(), "&", |i| format!("k{i}"));
                send(s, "GET", &format!("{list}?{q}"), "", "", Vec::new())
            }),
        ),
        (
            "filter: 1 MiB of OR terms",
            Bounded,
            Box::new(move |s| {
                let f = many_keys(TARGET - list.len(), "||", |i| format!("title='{i}'"));
                send(s, "GET", &url_with("filter", f), "", "", Vec::new())
            }),
        ),
        (
            "filter: 1 MiB of nested parentheses",
            Bounded,
            Box::new(move |s| {
                let n = (TARGET - list.len()) / 2 - 16;
                let f = format!("{}title='x'{}", "(".repeat(n), ")".repeat(n));
                send(s, "GET", &url_with("filter", f), "", "", Vec::new())
            }),
        ),
        (
            "sort: 1 MiB of keys",
            Bounded,
            Box::new(move |s| {
                let v = many_keys(TARGET - list.len(), ",", |i| {
                    if i % 2 == 0 { "-title" } else { "created" }.to_string()
                });
                send(s, "GET", &url_with("sort", v), "", "", Vec::new())
            }),
        ),
        (
            "fields: 1 MiB of keys",
            Bounded,
            Box::new(move |s| {
                let v = many_keys(TARGET - list.len(), ",", |i| format!("k{i}"));
                send(s, "GET", &url_with("fields", v), "", "", Vec::new())
            }),
        ),
        (
            "a 48 MiB answer: viewing the biggest record",
            BigValue,
            Box::new(move |s| send(s, "GET", huge, "", "", Vec::new())),
        ),
        (
            "fields: picking from a 48 MiB answer",
            BigValue,
            Box::new(move |s| {
                let target = format!("{huge}?fields=id,title:excerpt(100),data");
                send(s, "GET", &target, "", "", Vec::new())
            }),
        ),
        (
            "expand: 1 MiB of relation paths",
            Bounded,
            Box::new(move |s| {
                let v = many_keys(TARGET - list.len(), ",", |i| {
                    let depth = 1 + i % 6;
                    vec!["rel"; depth].join(".")
                });
                send(s, "GET", &url_with("expand", v), "", "", Vec::new())
            }),
        ),
        (
            "expand: 200 records, each 6 levels deep",
            Bounded,
            Box::new(move |s| {
                let target = format!("{list}?perPage=200&expand=rel.rel.rel.rel.rel.rel");
                send(s, "GET", &target, "", "", Vec::new())
            }),
        ),
        (
            "JSON record body: a 64 MiB create (superuser)",
            BigValue,
            Box::new(move |s| {
                let body = format!(
                    "{{\"title\":\"{}\",\"data\":{}}}",
                    "j".repeat(DEFAULT_BODY - 1024),
                    number_array(JSON_MAX - 1024)
                );
                send(s, "POST", list, t, JSON, body.into_bytes())
            }),
        ),
        (
            "JSON record body: a 64 MiB create (guest)",
            BigValue,
            Box::new(move |s| {
                let body = format!(
                    "{{\"title\":\"{}\",\"data\":{}}}",
                    "j".repeat(DEFAULT_BODY - 1024),
                    number_array(JSON_MAX - 1024)
                );
                send(s, "POST", list, "", JSON, body.into_bytes())
            }),
        ),
        (
            "JSON record body: 64 MiB of unknown keys",
            BigValue,
            Box::new(move |s| {
                let keys = many_keys(RECORD_BODY - 16, ",", |i| format!("\"k{i}\":0"));
                send(
                    s,
                    "POST",
                    list,
                    "",
                    JSON,
                    format!("{{{keys}}}").into_bytes(),
                )
            }),
        ),
        (
            "JSON record body: a 64 MiB update",
            BigValue,
            Box::new(move |s| {
                let body = format!("{{\"data\":{}}}", number_array(JSON_MAX - 1024));
                send(s, "PATCH", huge, t, JSON, body.into_bytes())
            }),
        ),
        (
            "urlencoded: 10,000 fields filling 64 MiB",
            Bounded,
            Box::new(move |s| {
                let each = RECORD_BODY / MAX_FORM_FIELDS - 16;
                let mut body = format!("title={}", "u".repeat(each));
                for i in 1..MAX_FORM_FIELDS {
                    body.push_str(&format!("&k{i}={}", "v".repeat(each)));
                }
                send(s, "POST", list, "", FORM, body.into_bytes())
            }),
        ),
        (
            "urlencoded: 64 MiB of fields (over the 10,000 limit)",
            Bounded,
            Box::new(move |s| {
                let body = many_keys(RECORD_BODY - 16, "&", |i| format!("k{i}=1"));
                send(s, "POST", list, "", FORM, body.into_bytes())
            }),
        ),
        (
            "multipart: 1,000 parts filling 64 MiB",
            Bounded,
            Box::new(move |s| {
                let each = RECORD_BODY / MAX_PARTS - 128;
                let mut parts = vec![("title".to_string(), None, vec![b'm'; each])];
                for i in 1..MAX_PARTS {
                    parts.push((format!("k{i}"), None, vec![b'v'; each]));
                }
                let (ct, body) = multipart(&parts);
                send(s, "POST", list, "", &ct, body)
            }),
        ),
        (
            "multipart: 10 files of 1 MiB, a 32 MiB JSON value and 989 more parts",
            BigValue,
            Box::new(move |s| {
                let mut parts = vec![(
                    "data".to_string(),
                    None,
                    number_array(JSON_MAX - 1024).into_bytes(),
                )];
                for i in 0..FILES {
                    let png = vec![0x89u8; FILE_MAX - 16];
                    parts.push(("docs".into(), Some(format!("f{i}.bin")), png));
                }
                while parts.len() < MAX_PARTS {
                    parts.push((format!("k{}", parts.len()), None, b"1".to_vec()));
                }
                let (ct, body) = multipart(&parts);
                send(s, "POST", list, t, &ct, body)
            }),
        ),
        (
            "batch: 128 MiB of JSON, 50 creates",
            BigValue,
            Box::new(move |s| {
                let each = BATCH_BODY / BATCH_REQUESTS - 4096;
                let requests: Vec<Value> = (0..BATCH_REQUESTS)
                    .map(|_| {
                        json!({
                            "method": "POST",
                            "url": "/api/collections/big/records?fields=id",
                            "body": {"title": "b".repeat(each / 2), "data": "d".repeat(each / 2)},
                        })
                    })
                    .collect();
                let body = json!({ "requests": requests }).to_string();
                send(s, "POST", "/api/batch", t, JSON, body.into_bytes())
            }),
        ),
        (
            "batch: 128 MiB of JSON, one request of many small values",
            BigValue,
            Box::new(move |s| {
                let body = format!(
                    "{{\"requests\":[{{\"method\":\"POST\",\"url\":\"/api/collections/big/records\",\"body\":{{\"data\":{}}}}}]}}",
                    number_array(BATCH_BODY - 1024)
                );
                send(s, "POST", "/api/batch", t, JSON, body.into_bytes())
            }),
        ),
        (
            "realtime: the event of a 48 MiB record's update, to a subscriber",
            BigRecordPath,
            Box::new(move |s| {
                realtime_event(s, "huge", DEFAULT_BODY / 2 + JSON_MAX - 1024, || {
                    let body = json!({"title": "u".repeat(DEFAULT_BODY / 2)}).to_string();
                    send(s, "PATCH", huge, t, JSON, body.into_bytes())
                })
            }),
        ),
        (
            "update: a small change to the 48 MiB record",
            BigRecordPath,
            Box::new(move |s| {
                let body = json!({"title": "small"}).to_string();
                send(s, "PATCH", huge, t, JSON, body.into_bytes())
            }),
        ),
        (
            "auth: password sign-in to a 48 MiB auth record",
            BigRecordPath,
            Box::new(move |s| {
                let body = json!({"identity": USER_EMAIL, "password": PASSWORD}).to_string();
                let target = "/api/collections/hugeusers/auth-with-password";
                send(s, "POST", target, "", JSON, body.into_bytes())
            }),
        ),
        (
            "auth: token refresh of a 48 MiB auth record",
            BigRecordPath,
            Box::new(move |s| {
                let target = "/api/collections/hugeusers/auth-refresh";
                send(s, "POST", target, ut, JSON, Vec::new())
            }),
        ),
        (
            "rules: a caller with a 48 MiB auth record, under a rule reading its fields",
            BigRecordPath,
            Box::new(move |s| {
                let resp = Request::new("GET", "/api/collections/gated/records")
                    .header("Host", "127.0.0.1")
                    .header("Connection", "close")
                    .header("Authorization", ut)
                    .timeout(Duration::from_secs(300))
                    .send(s.port())
                    .unwrap();
                // the rule saw the caller's `verified`: its one record is listed
                let list: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                assert_eq!(list["totalItems"], 1, "{list}");
                resp.status
            }),
        ),
    ]
}

/// Runs the inputs of `kind` (each on a fresh server) and fails with every stall reported.
fn check(kind: Kind) {
    let p = prepare();
    let only = std::env::var("NO_STALLS_ONLY").unwrap_or_default();
    let mut failures = Vec::new();
    for (name, _, input) in inputs(&p).into_iter().filter(|(_, k, _)| *k == kind) {
        if !only.split('|').any(|o| name.contains(o)) {
            continue;
        }
        let started = Instant::now();
        let seen = run(&p, input);
        println!(
            "{name}: {} in {:.1?}, longest worker turn {} ms of CPU",
            seen.status,
            started.elapsed(),
            seen.longest_ms
        );
        // every input gets an answer (0: the server closed without one)
        if seen.status == 0 || seen.status >= 500 {
            failures.push(format!("{name}: status {}", seen.status));
        }
        if !seen.stalls.is_empty() {
            failures.push(format!("{name}: {}", seen.stalls.join("; ")));
        }
    }
    assert!(failures.is_empty(), "stalls:\n{}", failures.join("\n"));
}

#[test]
fn the_largest_hostile_inputs_do_not_stall_a_worker() {
    check(Kind::Bounded);
}

/// Big record values (issue 16): a record write converts, validates and stores its values,
/// and a record answer is written, at the largest sizes the limits allow. All on the worker,
/// these took seconds of CPU per turn (debug build): 64 MiB JSON creates and updates ~5 s, a
/// 48 MiB view 1.3 s, 50 batch creates of 2.5 MiB ~1.7 s, one 128 MiB batch value 19.5 s.
/// With values over 64 KiB handled on the CPU pool the longest turn of any of them was 122 ms
/// (the 64 MiB update: the stored 48 MiB row read and copied into its draft on the worker),
/// most 20-90 ms; with the draft built on the pool too, that update took 55 ms.
#[test]
fn big_record_values_do_not_stall_a_worker() {
    check(Kind::BigValue);
}

/// Big records on the paths that build or read one beside the records API's own answers
/// (issue 16): a realtime event of a 48 MiB record, written per subscriber group (the
/// subscriber must receive it whole); a small update of that record (its stored row turned
/// into a draft and checked); the record part of an auth answer (password sign-in, refresh)
/// for a 48 MiB auth record; that auth record loaded for a rule that reads
/// `@request.auth.verified`. All on the worker, their longest turns were (debug build) 707 ms
/// (the event was then not delivered: one message over the 8 MiB queue limit dropped the
/// client), 1126 ms, 1455 ms, 4027 ms and 1489 ms; with the big work on the CPU pool and only
/// the auth fields rules read loaded, 63, 75, 128, 174 and 43 ms.
#[test]
fn big_records_in_events_and_auth_do_not_stall_a_worker() {
    check(Kind::BigRecordPath);
}

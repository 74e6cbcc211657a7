//! `POST /api/batch` differentially: the same sequence of batches (JSON and multipart, good
//! and failing ones) goes to the real PocketBase and to PocketBun, each on its own copy of the
//! fixture; every answer and the records left behind after each batch must be the same
//! (timestamps, generated ids and random file-name suffixes are masked).
//!
//! Also: a batch's later operations see what its earlier ones did (rules and unique checks
//! run on the batch's own transaction), a failing operation rolls everything back, and
//! realtime hears of a batch only once it committed.

use pocketbun_tests::http::Request;
use pocketbun_tests::{need, Server, ServerSpec};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
const BOUNDARY: &str = "batchtestboundary0123456789";

/// A collection whose update/delete rules and unique index depend on the stored state.
fn setup_collection() -> String {
    json!({
        "name": "bt",
        "type": "base",
        "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "title != 'locked'",
        "deleteRule": "title != 'locked'",
        "fields": [
            {"name": "title", "type": "text", "max": 20},
            {"name": "n", "type": "number"},
            {"name": "doc", "type": "file", "maxSelect": 3, "maxSize": 1000}
        ],
        "indexes": ["CREATE UNIQUE INDEX idx_bt_title ON bt (title)"]
    })
    .to_string()
}

fn reqs(items: Value) -> String {
    json!({ "requests": items }).to_string()
}

/// (description, auth, content type, body) in the order they are sent.
fn batches() -> Vec<(&'static str, bool, &'static str, Vec<u8>)> {
    let j = |d, auth, v: Value| (d, auth, "application/json", reqs(v).into_bytes());
    let raw = |d, body: &str| (d, true, "application/json", body.as_bytes().to_vec());
    let multipart = {
        let payload = reqs(json!([
            {"method": "POST", "url": "/api/collections/bt/records", "body": {"id": "mpone0000000001", "title": "mp1"}},
            {"method": "PATCH", "url": "/api/collections/bt/records/mpone0000000001", "body": {"n": 5}},
            {"method": "POST", "url": "/api/collections/bt/records?fields=id,doc", "body": {"title": "mp2"}}
        ]));
        let mut b = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{payload}\r\n"
        );
        for (key, name) in [
            ("requests.0.doc", "a.txt"),
            ("requests.0.doc", "b.txt"),
            ("requests[2].doc", "c.txt"),
            ("requests.1.doc+", "d.txt"),
        ] {
            b.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{key}\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\nhello {name}\r\n"
            ));
        }
        b.push_str(&format!("--{BOUNDARY}--\r\n"));
        (
            "multipart with files",
            true,
            "multipart/form-data; boundary=batchtestboundary0123456789",
            b.into_bytes(),
        )
    };
    let too_many: Vec<Value> = (0..51)
        .map(|_| json!({"method": "GET", "url": "/x"}))
        .collect();
    vec![
        raw("not json", "xx"),
        raw("no requests", "{}"),
        raw("requests not a list", r#"{"requests":{"a":1}}"#),
        raw("request not an object", r#"{"requests":[1]}"#),
        j("empty list", true, json!([])),
        j("too many", true, Value::Array(too_many)),
        j(
            "invalid items",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/bt/records"},
                {"url": "/x"},
                {"method": "GET"},
                {"method": "post", "url": "/api/collections/bt/records"}
            ]),
        ),
        j(
            "unknown action",
            true,
            json!([{"method": "GET", "url": "/api/health"}]),
        ),
        j(
            "missing collection",
            true,
            json!([{"method": "POST", "url": "/api/collections/nope/records", "body": {}}]),
        ),
        j(
            "second fails, first rolled back",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/bt/records", "body": {"title": "ok1"}},
                {"method": "POST", "url": "/api/collections/bt/records", "body": {"title": "x".repeat(30)}}
            ]),
        ),
        j(
            "unique within the batch",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/bt/records", "body": {"title": "same"}},
                {"method": "POST", "url": "/api/collections/bt/records", "body": {"title": "same"}}
            ]),
        ),
        j(
            "same id twice",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/bt/records", "body": {"id": "dupdupdupdup001", "title": "d1"}},
                {"method": "POST", "url": "/api/collections/bt/records", "body": {"id": "dupdupdupdup001", "title": "d2"}}
            ]),
        ),
        j(
            "create, update, upsert, delete the same record",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/bt/records?fields=id,title", "body": {"id": "lifecycle000001", "title": "a1"}},
                {"method": "PATCH", "url": "/api/collections/bt/records/lifecycle000001", "body": {"title": "a2"}},
                {"method": "PUT", "url": "/api/collections/bt/records", "body": {"id": "lifecycle000001", "title": "a3"}},
                {"method": "PUT", "url": "/api/collections/bt/records", "body": {"id": "lifecycle000002", "title": "a4", "n": 2}},
                {"method": "DELETE", "url": "/api/collections/bt/records/lifecycle000001"}
            ]),
        ),
        j(
            "locked by an earlier request (public caller, rules on the batch's state)",
            false,
            json!([
                {"method": "PATCH", "url": "/api/collections/bt/records/lifecycle000002", "body": {"title": "locked"}},
                {"method": "PATCH", "url": "/api/collections/bt/records/lifecycle000002", "body": {"n": 3}}
            ]),
        ),
        j(
            "lock, then delete refused",
            false,
            json!([
                {"method": "PATCH", "url": "/api/collections/bt/records/lifecycle000002", "body": {"title": "locked"}},
                {"method": "DELETE", "url": "/api/collections/bt/records/lifecycle000002"}
            ]),
        ),
        j(
            "lock for real",
            false,
            json!([
                {"method": "PATCH", "url": "/api/collections/bt/records/lifecycle000002", "body": {"title": "locked"}}
            ]),
        ),
        j(
            "locked record (first request, pre-batch state)",
            false,
            json!([
                {"method": "PATCH", "url": "/api/collections/bt/records/lifecycle000002", "body": {"n": 9}}
            ]),
        ),
        j(
            "delete twice",
            true,
            json!([
                {"method": "DELETE", "url": "/api/collections/demo2/records/achvryl401bhse3"},
                {"method": "DELETE", "url": "/api/collections/demo2/records/achvryl401bhse3"}
            ]),
        ),
        j(
            "superuser only collection as guest",
            false,
            json!([
                {"method": "DELETE", "url": "/api/collections/demo2/records/achvryl401bhse3"},
                {"method": "PATCH", "url": "/api/collections/demo3/records/1tmknxy2868d869", "body": {"title": "x"}}
            ]),
        ),
        j(
            "cascade delete",
            true,
            json!([
                {"method": "DELETE", "url": "/api/collections/demo3/records/1tmknxy2868d869"},
                {"method": "DELETE", "url": "/api/collections/demo3/records/mk5fmymtx4wsprk"}
            ]),
        ),
        j(
            "expand",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/demo5/records?expand=rel_one", "body": {"total": 9, "rel_one": "qzaqccwrmva4o1n"}},
                {"method": "PATCH", "url": "/api/collections/demo5/records/qjeql998mtp1azp?expand=rel_many", "body": {"total": 10}}
            ]),
        ),
        j(
            "request context and per-request headers",
            false,
            json!([
                {"method": "POST", "url": "/api/collections/bctx/records", "headers": {"X-Token": "yes", "Authorization": "ignored"}, "body": {"title": "c1"}},
                {"method": "POST", "url": "/api/collections/bctx/records", "body": {"title": "c2"}}
            ]),
        ),
        j(
            "request context and per-request headers (good)",
            false,
            json!([
                {"method": "POST", "url": "/api/collections/bctx/records?fields=title", "headers": {"x-token": "yes"}, "body": {"title": "c1"}}
            ]),
        ),
        j(
            "relation setup",
            true,
            json!([
                {"method": "POST", "url": "/api/collections/bpar/records", "body": {"id": "parent000000001", "title": "p1"}},
                {"method": "POST", "url": "/api/collections/bpar/records", "body": {"id": "parent000000002", "title": "p2"}},
                {"method": "POST", "url": "/api/collections/bchild/records", "body": {"id": "child0000000001", "title": "c1", "rels": ["parent000000001", "parent000000002"]}}
            ]),
        ),
        j(
            "update after a delete changed the record",
            true,
            json!([
                {"method": "DELETE", "url": "/api/collections/bpar/records/parent000000001"},
                {"method": "PATCH", "url": "/api/collections/bchild/records/child0000000001", "body": {"title": "c2"}}
            ]),
        ),
        multipart,
    ]
}

/// Masks what differs between two runs: timestamps, generated ids, random file-name parts.
fn mask(v: &mut Value, known_ids: &[String]) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), &x) {
                    ("created" | "updated", Value::String(_)) => *x = json!("T"),
                    ("id", Value::String(s)) if !known_ids.contains(s) => *x = json!("ID"),
                    _ => mask(x, known_ids),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask(x, known_ids)),
        // stored file names: the first letter and how many `_` parts they have
        Value::String(s) if s.ends_with(".txt") => {
            let first = s.chars().next().unwrap_or('?');
            *s = format!("{first}{}.txt", "_".repeat(s.matches('_').count()));
        }
        _ => {}
    }
}

fn send(port: u16, method: &str, target: &str, ct: &str, auth: bool, body: &[u8]) -> (u16, Value) {
    let mut r = Request::new(method, target)
        .header("Host", "127.0.0.1")
        .header("Connection", "close")
        .header("Content-Length", &body.len().to_string());
    if !ct.is_empty() {
        r = r.header("Content-Type", ct);
    }
    if auth {
        r = r.header("Authorization", SUPERUSER);
    }
    let resp = r.body(body.to_vec()).send(port).expect("response");
    let text = resp.text();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (resp.status, v)
}

/// Every answer and, after each batch, the records of the touched collections.
fn run(spec: &ServerSpec, fixture: &std::path::Path) -> Vec<(String, u16, Value)> {
    let server = Server::start(spec, Some(fixture)).expect("server starts");
    let port = server.port();
    let (s, v) = send(
        port,
        "POST",
        "/api/collections",
        "application/json",
        true,
        setup_collection().as_bytes(),
    );
    assert_eq!(s, 200, "{v}");
    let ctx_coll = json!({
        "name": "bctx",
        "type": "base",
        "listRule": "", "viewRule": "",
        "createRule": "@request.context = 'batch' && @request.headers.x_token = 'yes'",
        "fields": [{"name": "title", "type": "text"}]
    })
    .to_string();
    let (s, v) = send(
        port,
        "POST",
        "/api/collections",
        "application/json",
        true,
        ctx_coll.as_bytes(),
    );
    assert_eq!(s, 200, "{v}");
    let par = json!({"name": "bpar", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"}]})
    .to_string();
    let (s, v) = send(
        port,
        "POST",
        "/api/collections",
        "application/json",
        true,
        par.as_bytes(),
    );
    assert_eq!(s, 200, "{v}");
    let child = json!({"name": "bchild", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"},
            {"name": "rels", "type": "relation", "collectionId": v["id"], "maxSelect": 5}]})
    .to_string();
    let (s, v) = send(
        port,
        "POST",
        "/api/collections",
        "application/json",
        true,
        child.as_bytes(),
    );
    assert_eq!(s, 200, "{v}");
    let known: Vec<String> = [
        "mpone0000000001",
        "dupdupdupdup001",
        "lifecycle000001",
        "lifecycle000002",
        "achvryl401bhse3",
        "1tmknxy2868d869",
        "mk5fmymtx4wsprk",
        "qjeql998mtp1azp",
        "qzaqccwrmva4o1n",
        "i9naidtvr6qsgb4",
        "parent000000001",
        "parent000000002",
        "child0000000001",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut out = Vec::new();
    for (desc, auth, ct, body) in batches() {
        let (status, mut v) = send(port, "POST", "/api/batch", ct, auth, &body);
        mask(&mut v, &known);
        out.push((desc.to_string(), status, v));
        for c in ["bt", "bctx", "bchild", "demo2", "demo3", "demo5"] {
            let target = format!("/api/collections/{c}/records?perPage=200&sort=created,title");
            let (status, mut v) = send(port, "GET", &target, "", true, b"");
            mask(&mut v, &known);
            out.push((format!("{desc}: {c} afterwards"), status, v));
        }
    }
    out
}

fn fixture(test: &str) -> Option<std::path::PathBuf> {
    need::fixture(test)
}

#[test]
fn batches_answer_like_pocketbase() {
    let Some(fixture) = fixture("batches_answer_like_pocketbase") else {
        return;
    };
    let Some(reference) = ServerSpec::reference("batches_answer_like_pocketbase") else {
        return;
    };
    let ours = run(&ServerSpec::pocketbun(), &fixture);
    let theirs = run(&reference, &fixture);
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.iter().filter(|(_, s, _)| *s == 200).count() > 20);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "{}", a.0);
    }
}

/// The batch settings as PocketBase applies them: disabled, `maxRequests`, `maxBodySize`.
fn run_settings(spec: &ServerSpec, fixture: &std::path::Path) -> Vec<(u16, Value)> {
    let server = Server::start(spec, Some(fixture)).expect("server starts");
    let port = server.port();
    let two = reqs(json!([
        {"method": "DELETE", "url": "/api/collections/demo2/records/achvryl401bhse3"},
        {"method": "GET", "url": "/x"}
    ]));
    let mut out = Vec::new();
    for settings in [
        json!({"enabled": false}),
        json!({"enabled": true, "maxRequests": 1}),
        json!({"enabled": true, "maxRequests": 5, "maxBodySize": 10}),
        json!({"enabled": true, "maxRequests": 5, "maxBodySize": 0}),
    ] {
        let body = json!({ "batch": settings }).to_string();
        let (s, v) = send(
            port,
            "PATCH",
            "/api/settings",
            "application/json",
            true,
            body.as_bytes(),
        );
        assert_eq!(s, 200, "{v}");
        for auth in [true, false] {
            let (s, v) = send(
                port,
                "POST",
                "/api/batch",
                "application/json",
                auth,
                two.as_bytes(),
            );
            out.push((s, v));
        }
    }
    out
}

#[test]
fn batch_settings_apply_like_pocketbase() {
    let Some(fixture) = fixture("batch_settings_apply_like_pocketbase") else {
        return;
    };
    let Some(reference) = ServerSpec::reference("batch_settings_apply_like_pocketbase") else {
        return;
    };
    let ours = run_settings(&ServerSpec::pocketbun(), &fixture);
    let theirs = run_settings(&reference, &fixture);
    let statuses: Vec<u16> = ours.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [403, 403, 400, 400, 413, 413, 400, 400]);
    assert_eq!(ours, theirs);
}

/// A batch slower than the `timeout` setting (bcrypt cost 13 per created record) fails as a
/// whole, as on PocketBase, and writes nothing. Its four creates are valid, so the 400 can only
/// come from the timeout; no wall-clock bound is asserted (tests never fail on timing).
fn run_timeout(spec: &ServerSpec, fixture: &std::path::Path) -> Vec<(u16, Value)> {
    let server = Server::start(spec, Some(fixture)).expect("server starts");
    let port = server.port();
    let coll = json!({
        "name": "slowauth", "type": "auth", "createRule": "", "listRule": "",
        "fields": [{"name": "password", "type": "password", "cost": 13, "min": 8,
            "required": true, "hidden": true}]
    })
    .to_string();
    let mut out = Vec::new();
    out.push(send(
        port,
        "POST",
        "/api/collections",
        "application/json",
        true,
        coll.as_bytes(),
    ));
    let settings = json!({"batch": {"timeout": 1}}).to_string();
    out.push(send(
        port,
        "PATCH",
        "/api/settings",
        "application/json",
        true,
        settings.as_bytes(),
    ));
    out.last_mut().unwrap().1 = Value::Null;
    out[0].1 = Value::Null;
    let items: Vec<Value> = (0..4)
        .map(|i| {
            json!({"method": "POST", "url": "/api/collections/slowauth/records", "body": {
                "email": format!("slow{i}@example.com"),
                "password": "12345678", "passwordConfirm": "12345678"}})
        })
        .collect();
    out.push(send(
        port,
        "POST",
        "/api/batch",
        "application/json",
        false,
        reqs(Value::Array(items)).as_bytes(),
    ));
    let (s, mut v) = send(
        port,
        "GET",
        "/api/collections/slowauth/records",
        "",
        true,
        b"",
    );
    mask(&mut v, &[]);
    out.push((s, v));
    out
}

#[test]
fn batch_timeout_like_pocketbase() {
    let Some(fixture) = fixture("batch_timeout_like_pocketbase") else {
        return;
    };
    let Some(reference) = ServerSpec::reference("batch_timeout_like_pocketbase") else {
        return;
    };
    let ours = run_timeout(&ServerSpec::pocketbun(), &fixture);
    let theirs = run_timeout(&reference, &fixture);
    assert_eq!(ours[2].0, 400, "{:?}", ours[2]);
    assert_eq!(ours[3].1["totalItems"], 0, "{:?}", ours[3]);
    assert_eq!(ours, theirs);
}

/// Reads SSE events from a realtime connection subscribed to `topic`.
struct Sse {
    reader: BufReader<TcpStream>,
}

impl Sse {
    fn connect(port: u16, topic: &str) -> Sse {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut sse = Sse {
            reader: BufReader::new(s),
        };
        let connect = sse.next_event().expect("PB_CONNECT");
        let client_id = connect["clientId"].as_str().unwrap().to_string();
        let body = json!({"clientId": client_id, "subscriptions": [topic]}).to_string();
        let resp = Request::new("POST", "/api/realtime")
            .header("Host", "127.0.0.1")
            .header("Connection", "close")
            .header("Content-Type", "application/json")
            .header("Authorization", SUPERUSER)
            .header("Content-Length", &body.len().to_string())
            .body(body)
            .send(port)
            .unwrap();
        assert_eq!(resp.status, 204, "{}", resp.text());
        sse
    }

    /// The next event's data (`None`: none within the read timeout).
    fn next_event(&mut self) -> Option<Value> {
        let mut data = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d);
            } else if line.is_empty() && !data.is_empty() {
                return serde_json::from_str(&data).ok();
            }
        }
    }

    fn drain_timeout(&mut self, t: Duration) {
        self.reader.get_ref().set_read_timeout(Some(t)).unwrap();
    }
}

#[test]
fn batch_is_all_or_nothing_and_publishes_after_commit() {
    let Some(fixture) = fixture("batch_is_all_or_nothing_and_publishes_after_commit") else {
        return;
    };
    let server = Server::start(&ServerSpec::pocketbun(), Some(&fixture)).expect("starts");
    let port = server.port();
    let mut sse = Sse::connect(port, "demo2");

    // a failing last request: nothing is written, no event is sent
    let failing = reqs(json!([
        {"method": "POST", "url": "/api/collections/demo2/records", "body": {"id": "rtbatch00000001", "title": "one"}},
        {"method": "DELETE", "url": "/api/collections/demo2/records/achvryl401bhse3"},
        {"method": "POST", "url": "/api/collections/demo2/records", "body": {"title": ""}}
    ]));
    let (s, v) = send(
        port,
        "POST",
        "/api/batch",
        "application/json",
        true,
        failing.as_bytes(),
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["data"]["requests"]["2"]["code"], "batch_request_failed",
        "{v}"
    );
    for id in ["rtbatch00000001", "achvryl401bhse3"] {
        let (s, _) = send(
            port,
            "GET",
            &format!("/api/collections/demo2/records/{id}"),
            "",
            true,
            b"",
        );
        let want = if id == "achvryl401bhse3" { 200 } else { 404 };
        assert_eq!(s, want, "{id} after the rolled back batch");
    }
    sse.drain_timeout(Duration::from_millis(500));
    assert!(
        sse.next_event().is_none(),
        "no event for a rolled back batch"
    );

    // the same without the failure: both changes, then their events in order
    sse.drain_timeout(Duration::from_secs(5));
    let ok = reqs(json!([
        {"method": "POST", "url": "/api/collections/demo2/records", "body": {"id": "rtbatch00000001", "title": "one"}},
        {"method": "DELETE", "url": "/api/collections/demo2/records/achvryl401bhse3"}
    ]));
    let (s, v) = send(
        port,
        "POST",
        "/api/batch",
        "application/json",
        true,
        ok.as_bytes(),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["status"], 200);
    assert_eq!(v[0]["body"]["id"], "rtbatch00000001");
    assert_eq!(v[1], json!({"body": null, "status": 204}));
    let first = sse.next_event().expect("create event");
    assert_eq!(first["action"], "create");
    assert_eq!(first["record"]["id"], "rtbatch00000001");
    let second = sse.next_event().expect("delete event");
    assert_eq!(second["action"], "delete");
    assert_eq!(second["record"]["id"], "achvryl401bhse3");
}

/// The needsGo scenarios of PocketBase's `batch_test.go`, from the conformance corpus: the
/// Go `BeforeTestFunc` settings become a settings PATCH, the request is the recorded one and
/// is checked with the corpus rules; the Go `AfterTestFunc` checks of what was (not) written
/// become the records of every collection the batch touches, read back as a superuser and
/// compared with what PocketBase leaves behind. `#12` (transaction timeout) slows requests
/// with a Go hook: `batch_timeout_like_pocketbase` covers it with slow password hashing.
fn run_corpus_scenario(
    spec: &ServerSpec,
    fixture: &std::path::Path,
    sc: &pocketbun_tests::conformance::Scenario,
    setup: Option<Value>,
) -> Vec<(u16, Value)> {
    let server = Server::start(spec, Some(fixture)).unwrap_or_else(|e| panic!("{e}"));
    let port = server.port();
    if let Some(settings) = setup {
        let body = settings.to_string();
        let (status, v) = send(
            port,
            "PATCH",
            "/api/settings",
            "application/json",
            true,
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{}: settings {v}", sc.id);
    }
    let touched: Vec<String> = {
        let re = regex::Regex::new(r"/api/collections/([A-Za-z0-9_]+)/records").unwrap();
        let mut names: Vec<String> = re
            .captures_iter(sc.body.as_deref().unwrap_or(""))
            .map(|c| c[1].to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let list = |name: &str| {
        let target = format!("/api/collections/{name}/records?perPage=500&sort=id");
        let (status, v) = send(port, "GET", &target, "", true, b"");
        assert_eq!(status, 200, "{}: {target} {v}", sc.id);
        v["items"].as_array().cloned().unwrap_or_default()
    };
    let mut known: Vec<String> = Vec::new();
    for name in &touched {
        for r in list(name) {
            known.push(r["id"].as_str().unwrap_or_default().to_string());
        }
    }
    let resp = sc
        .request(None, port)
        .send(port)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", sc.id, server.log()));
    if let Err(why) = sc.check(resp.status, &resp.body) {
        panic!("{:?} {}: {why}\nbody: {}", spec.kind, sc.id, resp.text());
    }
    let mut answer = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    mask(&mut answer, &known);
    let mut out = vec![(resp.status, answer)];
    for name in &touched {
        let mut records = Value::Array(list(name));
        mask(&mut records, &known);
        // new records get masked ids: order them by content
        let mut items: Vec<String> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        items.sort();
        out.push((0, json!({ name.as_str(): items })));
    }
    out
}

#[test]
fn go_batch_scenarios_with_setup() {
    let Some(dir) = need::corpus("go_batch_scenarios_with_setup") else {
        return;
    };
    let corpus = pocketbun_tests::conformance::Corpus::load(&dir).unwrap();
    let fixture = corpus.fixture();
    let setups: Vec<(&str, Option<Value>)> = vec![
        ("#1", Some(json!({"batch": {"enabled": false}}))),
        (
            "#2",
            Some(json!({"batch": {"enabled": true, "maxRequests": 2}})),
        ),
        (
            "#3",
            Some(json!({"batch": {"enabled": true, "maxRequests": 100}})),
        ),
        ("#5", None),
        ("#6", None),
        ("#7", None),
        ("#8", None),
        ("#9", None),
        ("#10", None),
        ("#11", None),
        ("#13", None),
        ("#15", Some(json!({"batch": {"maxBodySize": 10}}))),
    ];
    let reference = ServerSpec::reference("go_batch_scenarios_with_setup (PocketBase part)");
    for (n, setup) in setups {
        let id = format!("batch_test:TestBatchRequest{n}");
        let sc = corpus
            .scenarios
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("{id} not in the corpus"));
        let ours = run_corpus_scenario(&ServerSpec::pocketbun(), &fixture, sc, setup.clone());
        if let Some(spec) = &reference {
            let theirs = run_corpus_scenario(spec, &fixture, sc, setup);
            assert_eq!(
                ours, theirs,
                "{id}: PocketBun (left) and PocketBase (right) differ"
            );
        }
    }
}

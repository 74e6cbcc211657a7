//! `pocketbun serve`'s flags beyond the listen address, end to end: static files from
//! `--publicDir` with `--indexFallback`, the `--origins` CORS list, `--encryptionEnv` settings
//! that PocketBase opens and the other way round, `--queryTimeout`, `--dev`, the JS hooks and
//! migrations warnings, and the help and version texts.
//!
//! The differential tests run the real PocketBase (`POCKETBASE_BIN`, meant to be v0.40.6) side
//! by side. Without it they print one line and pass, except under `CI=true`, where they fail.

use pocketbun_tests::http::{Request, Response};
use pocketbun_tests::{conformance_dir, pocketbase_bin, pocketbun_bin, Server, ServerSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

/// The real PocketBase spec; `None` (after one printed line) when it cannot be had, which
/// fails the test under `CI=true`.
fn pocketbase(test: &str) -> Option<ServerSpec> {
    let spec = ServerSpec::pocketbase();
    if spec.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: the real PocketBase is required under CI (set POCKETBASE_BIN)"
        );
        println!("{test}: SKIP, the real PocketBase is not available");
    }
    spec
}

fn fixture(test: &str) -> Option<PathBuf> {
    let dir = conformance_dir().map(|d| d.join("pb_data"));
    if dir.is_none() {
        println!("{test}: SKIP, ../shared/conformance not found");
    }
    dir
}

/// `spec` with more arguments.
fn with_args(mut spec: ServerSpec, args: &[&str]) -> ServerSpec {
    spec.args.extend(args.iter().map(|a| a.to_string()));
    spec
}

/// `spec` started through `env NAME=VALUE`, so only the server sees the variable.
fn with_env(spec: ServerSpec, name: &str, value: &str) -> ServerSpec {
    let mut args = vec![
        format!("{name}={value}"),
        spec.program.to_string_lossy().into_owned(),
    ];
    args.extend(spec.args);
    ServerSpec {
        program: PathBuf::from("env"),
        args,
        ..spec
    }
}

fn start(spec: &ServerSpec, template: Option<&Path>) -> Server {
    Server::start(spec, template).unwrap_or_else(|e| panic!("{e}"))
}

fn send(server: &Server, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::new(method, target)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send(server.port())
        .unwrap_or_else(|e| panic!("{method} {target}: {e}\nserver log:\n{}", server.log()))
}

// ---------------------------------------------------------------------------------------------
// static files

/// One fixed modification time for every file, so both servers' `Last-Modified` agree.
fn mtime() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

fn write(root: &Path, name: &str, bytes: &[u8]) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(mtime()).unwrap();
}

/// The same `pb_public` tree for both servers.
fn public_tree(root: &Path) {
    let public = root.join("pb_public");
    write(&public, "index.html", b"<h1>root</h1>\n");
    write(&public, "sub/index.html", b"sub index\n");
    write(&public, "a.css", b"body { color: red }\n");
    write(&public, "app.js", b"console.log(1)\n");
    write(&public, "data.json", b"{\"a\":1}\n");
    write(&public, "blob", b"plain\x00binary");
    write(&public, "noext", b"just text\n");
    write(&public, "page", b"<html><body>sniffed\n");
    write(&public, "big.txt", &b"0123456789".repeat(1000));
    write(&public, ".hidden", b"dot file\n");
    write(&public, "with space.txt", b"spaced\n");
    std::fs::create_dir_all(public.join("emptydir")).unwrap();
}

/// What is compared between the servers: status, the headers `ServeContent` and the router
/// decide, and the body.
fn comparable(r: &Response) -> (u16, Vec<(String, String)>, String) {
    let keep = [
        "content-type",
        "content-length",
        "location",
        "accept-ranges",
        "last-modified",
        "content-range",
        "access-control-allow-origin",
    ];
    let mut h: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .collect();
    h.sort();
    // PocketBase 0.40 ends JSON bodies without the newline; that change is made elsewhere
    // (issue 17, part 1), so JSON error bodies are compared without it
    let mut body = r.text();
    if r.header("content-type") == Some("application/json") && body.ends_with('\n') {
        body.pop();
        h.retain(|(k, _)| k != "content-length");
    } else if r.header("content-type") == Some("application/json") {
        h.retain(|(k, _)| k != "content-length");
    }
    (r.status, h, body)
}

/// A request: method, target, headers.
type Probe = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const STATIC_REQUESTS: &[Probe] = &[
    ("GET", "/", &[]),
    ("HEAD", "/", &[]),
    ("GET", "/index.html", &[]),
    ("GET", "/sub", &[]),
    ("GET", "/sub/", &[]),
    ("GET", "/sub/index.html", &[]),
    ("GET", "/a.css", &[]),
    ("GET", "/a.css?v=2", &[]),
    ("GET", "/a.css/", &[]),
    ("GET", "/app.js", &[]),
    ("GET", "/data.json", &[]),
    ("GET", "/blob", &[]),
    ("GET", "/noext", &[]),
    ("GET", "/page", &[]),
    ("GET", "/.hidden", &[]),
    ("GET", "/with%20space.txt", &[]),
    ("GET", "/nope", &[]),
    ("GET", "/nope/deeper/x.png", &[]),
    ("GET", "/api/not-a-route", &[]),
    ("GET", "/emptydir", &[]),
    ("GET", "/emptydir/", &[]),
    // escapes: encoded dots are decoded after the router, raw ones are cleaned by it
    ("GET", "/%2e%2e/secret.txt", &[]),
    ("GET", "/%2e%2e%2fsecret.txt", &[]),
    ("GET", "/sub%2f..%2fa.css", &[]),
    ("GET", "/../secret.txt", &[]),
    ("GET", "/sub/../a.css?x=1", &[]),
    ("GET", "//evil.example/", &[]),
    ("GET", "/./a.css", &[]),
    ("POST", "/a.css", &[]),
    // ranges and conditional requests
    ("GET", "/big.txt", &[("Range", "bytes=10-19")]),
    ("GET", "/big.txt", &[("Range", "bytes=-5")]),
    ("GET", "/big.txt", &[("Range", "bytes=20000-")]),
    ("GET", "/big.txt", &[("Range", "lines=1")]),
    (
        "GET",
        "/big.txt",
        &[("If-Modified-Since", "Thu, 28 May 2026 20:26:40 GMT")],
    ),
    (
        "GET",
        "/big.txt",
        &[("If-Modified-Since", "Thu, 28 May 2026 20:26:39 GMT")],
    ),
    (
        "GET",
        "/big.txt",
        &[("If-Unmodified-Since", "Thu, 28 May 2026 20:26:39 GMT")],
    ),
    (
        "GET",
        "/big.txt",
        &[
            ("Range", "bytes=0-3"),
            ("If-Range", "Thu, 28 May 2026 20:26:40 GMT"),
        ],
    ),
    ("GET", "/a.css", &[("Origin", "https://app.example")]),
];

/// The content of a file beside (outside) the public dir.
const SECRET: &str = "TOP-SECRET-CONTENT";

#[test]
fn static_files_as_pocketbase_serves_them() {
    let Some(reference) = pocketbase("static_files_as_pocketbase_serves_them") else {
        return;
    };
    let args = ["--publicDir={root}/pb_public"];
    let ours = start(&with_args(ServerSpec::pocketbun(), &args), None);
    let theirs = start(&with_args(reference, &args), None);
    public_tree(ours.root());
    public_tree(theirs.root());
    // outside both public dirs
    std::fs::write(ours.root().join("secret.txt"), SECRET).unwrap();
    std::fs::write(theirs.root().join("secret.txt"), SECRET).unwrap();
    let mut served = 0;
    for (method, target, headers) in STATIC_REQUESTS {
        let a = send(&ours, method, target, headers);
        let b = send(&theirs, method, target, headers);
        assert_eq!(
            comparable(&a),
            comparable(&b),
            "{method} {target} {headers:?}: pocketbun (left) vs PocketBase (right)"
        );
        served += usize::from(a.status == 200);
        assert!(!a.text().contains(SECRET), "{target} escaped the directory");
    }
    assert!(served >= 15, "only {served} answers were 200");
    // multipart ranges: same parts (the boundary is random)
    let multi = [("Range", "bytes=0-1,5-6")];
    let a = send(&ours, "GET", "/big.txt", &multi);
    let b = send(&theirs, "GET", "/big.txt", &multi);
    assert_eq!((a.status, a.body.len()), (b.status, b.body.len()));
    assert!(a
        .header("content-type")
        .unwrap()
        .starts_with("multipart/byteranges; boundary="));
}

#[test]
fn index_fallback_off_answers_404() {
    let spec = with_args(
        ServerSpec::pocketbun(),
        &["--publicDir={root}/pb_public", "--indexFallback=false"],
    );
    let ours = start(&spec, None);
    public_tree(ours.root());
    let r = send(&ours, "GET", "/nope", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text(),
        "{\"data\":{},\"message\":\"File not found.\",\"status\":404}"
    );
    assert_eq!(send(&ours, "GET", "/%2e%2e/secret.txt", &[]).status, 404);
    assert_eq!(send(&ours, "GET", "/a.css", &[]).status, 200);
    assert_eq!(send(&ours, "GET", "/", &[]).text(), "<h1>root</h1>\n");
    if let Some(reference) = pocketbase("index_fallback_off_answers_404") {
        let theirs = start(
            &with_args(
                reference,
                &["--publicDir={root}/pb_public", "--indexFallback=false"],
            ),
            None,
        );
        public_tree(theirs.root());
        let b = send(&theirs, "GET", "/nope", &[]);
        assert_eq!(comparable(&r).0, comparable(&b).0);
        assert_eq!(r.text().trim_end(), b.text().trim_end());
    }
}

#[test]
fn symlinks_out_of_the_public_dir_are_not_followed() {
    let ours = start(
        &with_args(ServerSpec::pocketbun(), &["--publicDir={root}/pb_public"]),
        None,
    );
    public_tree(ours.root());
    let public = ours.root().join("pb_public");
    std::fs::write(ours.root().join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(ours.root().join("secret.txt"), public.join("out")).unwrap();
    std::os::unix::fs::symlink(ours.root(), public.join("outdir")).unwrap();
    std::os::unix::fs::symlink(public.join("a.css"), public.join("in.css")).unwrap();
    for target in [
        "/out",
        "/outdir/secret.txt",
        "/outdir/",
        "/outdir/pb_data/data.db",
    ] {
        let r = send(&ours, "GET", target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(
            r.text(),
            "<h1>root</h1>\n",
            "{target} must fall back to the index"
        );
    }
    // a link that stays inside is served
    let r = send(&ours, "GET", "/in.css", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "body { color: red }\n")
    );
    // a FIFO is never opened
    let fifo = public.join("fifo");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a plain mkfifo on a path we own
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = send(&ours, "GET", "/fifo", &[]);
    assert_eq!(r.text(), "<h1>root</h1>\n");
}

#[test]
fn precompressed_siblings_and_etags() {
    let ours = start(
        &with_args(ServerSpec::pocketbun(), &["--publicDir={root}/pb_public"]),
        None,
    );
    public_tree(ours.root());
    let public = ours.root().join("pb_public");
    write(&public, "a.css.gz", b"GZ-BYTES");
    write(&public, "a.css.br", b"BR-BYTES!");
    let plain = send(&ours, "GET", "/a.css", &[]);
    assert_eq!(plain.text(), "body { color: red }\n");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let gz = send(&ours, "GET", "/a.css", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.text(), "GZ-BYTES");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("content-type"), Some("text/css; charset=utf-8"));
    let br = send(&ours, "GET", "/a.css", &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(br.text(), "BR-BYTES!");
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("content-length"), Some("9"));
    let refused = send(
        &ours,
        "GET",
        "/a.css",
        &[("Accept-Encoding", "br;q=0, gzip")],
    );
    assert_eq!(refused.text(), "GZ-BYTES");
    // each representation has its own tag, and revalidates with it
    let tags: Vec<String> = [&plain, &gz, &br]
        .iter()
        .map(|r| r.header("etag").expect("an ETag").to_string())
        .collect();
    assert!(tags[0] != tags[1] && tags[1] != tags[2], "{tags:?}");
    let again = send(
        &ours,
        "GET",
        "/a.css",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &tags[1])],
    );
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(again.header("etag"), Some(tags[1].as_str()));
    let stale = send(&ours, "GET", "/a.css", &[("If-None-Match", &tags[1])]);
    assert_eq!(stale.status, 200);
    let weak = format!("W/{}", tags[0]);
    assert_eq!(
        send(&ours, "GET", "/a.css", &[("If-None-Match", &weak)]).status,
        304
    );
    assert_eq!(
        send(&ours, "GET", "/a.css", &[("If-Match", "\"other\"")]).status,
        412
    );
    // ranges apply to the representation sent, and If-Range takes the tag
    let part = send(
        &ours,
        "GET",
        "/a.css",
        &[("Accept-Encoding", "br"), ("Range", "bytes=0-1")],
    );
    assert_eq!((part.status, part.text().as_str()), (206, "BR"));
    assert_eq!(part.header("content-range"), Some("bytes 0-1/9"));
    let if_range = send(
        &ours,
        "GET",
        "/a.css",
        &[("Range", "bytes=0-3"), ("If-Range", &tags[0])],
    );
    assert_eq!((if_range.status, if_range.text().as_str()), (206, "body"));
    let if_range = send(
        &ours,
        "GET",
        "/a.css",
        &[("Range", "bytes=0-3"), ("If-Range", &tags[1])],
    );
    assert_eq!(if_range.status, 200);
    // the SPA fallback gets its siblings too
    write(&public, "index.html.gz", b"GZ-INDEX");
    let spa = send(&ours, "GET", "/some/route", &[("Accept-Encoding", "gzip")]);
    assert_eq!(spa.text(), "GZ-INDEX");
}

#[test]
fn successful_static_requests_stay_out_of_the_log() {
    let Some(fixture) = fixture("successful_static_requests_stay_out_of_the_log") else {
        return;
    };
    let ours = start(
        &with_args(
            ServerSpec::pocketbun(),
            &["--publicDir={root}/pb_public", "--indexFallback=false"],
        ),
        Some(&fixture),
    );
    public_tree(ours.root());
    assert_eq!(send(&ours, "GET", "/a.css?logged=no", &[]).status, 200);
    assert_eq!(send(&ours, "GET", "/missing?logged=yes", &[]).status, 404);
    // the log writer commits every 100 ms
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ours.call(
            "GET",
            "/api/logs?filter=(data.url~'logged')",
            Some(SUPERUSER),
            "",
        );
        assert_eq!(status, 200, "{body}");
        if body.contains("logged=yes") {
            assert!(!body.contains("logged=no"), "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the 404 was not logged: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// --origins

#[test]
fn origins_are_matched_as_pocketbase_matches_them() {
    let Some(reference) = pocketbase("origins_are_matched_as_pocketbase_matches_them") else {
        return;
    };
    let args = [
        "--origins=https://a.example,https://*.sub.example,http://localhost:*,https://app?.test",
    ];
    let ours = start(&with_args(ServerSpec::pocketbun(), &args), None);
    let theirs = start(&with_args(reference, &args), None);
    let origins = [
        "https://a.example",
        "http://a.example",
        "https://b.example",
        "https://x.sub.example",
        "https://y.x.sub.example",
        "https://sub.example",
        "http://x.sub.example",
        "http://localhost:5173",
        "http://localhost",
        "https://app1.test",
        "https://app12.test",
        "null",
        "",
    ];
    for origin in origins {
        for (method, extra) in [
            ("GET", None),
            ("OPTIONS", Some(("Access-Control-Request-Method", "POST"))),
        ] {
            let mut headers = vec![("Origin", origin)];
            if let Some(h) = extra {
                headers.push(h);
                headers.push(("Access-Control-Request-Headers", "content-type"));
            }
            let a = send(&ours, method, "/api/health", &headers);
            let b = send(&theirs, method, "/api/health", &headers);
            let cors = |r: &Response| {
                let mut h: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .filter(|(k, _)| k.starts_with("access-control-") || k == "vary")
                    .collect();
                h.sort();
                (r.status, h)
            };
            assert_eq!(cors(&a), cors(&b), "{method} Origin: {origin:?}");
        }
    }
    // and the answer for one allowed origin is that origin
    let r = send(
        &ours,
        "GET",
        "/api/health",
        &[("Origin", "http://localhost:3000")],
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
}

// ---------------------------------------------------------------------------------------------
// --encryptionEnv

const KEY_ENV: &str = "PB_TEST_SETTINGS_KEY";
const KEY: &str = "an-example-key-of-32-characters!";

/// The stored settings value: (SQLite type, text).
fn stored_settings(data_dir: &Path) -> (String, String) {
    let conn = rusqlite::Connection::open(data_dir.join("data.db")).unwrap();
    conn.query_row(
        "SELECT typeof(value), CAST(value AS TEXT) FROM _params WHERE id = 'settings'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn app_name(server: &Server) -> String {
    let (status, body) = server.call("GET", "/api/settings", Some(SUPERUSER), "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["meta"]["appName"].as_str().unwrap().to_string()
}

fn set_app_name(server: &Server, name: &str) {
    let (status, body) = server.call(
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        &format!("{{\"meta\":{{\"appName\":\"{name}\"}}}}"),
    );
    assert_eq!(status, 200, "{body}");
}

fn encrypted(spec: ServerSpec) -> ServerSpec {
    with_env(
        with_args(spec, &[&format!("--encryptionEnv={KEY_ENV}")]),
        KEY_ENV,
        KEY,
    )
}

fn assert_sealed(data_dir: &Path) {
    use base64::Engine;
    let (kind, text) = stored_settings(data_dir);
    assert_eq!(kind, "text", "sealed settings are stored as TEXT");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"));
    assert!(raw.len() > 12 + 16 + 100, "nonce, sealed JSON and tag");
}

#[test]
fn settings_encrypted_by_pocketbase_open_in_pocketbun() {
    let test = "settings_encrypted_by_pocketbase_open_in_pocketbun";
    let (Some(reference), Some(fixture)) = (pocketbase(test), fixture(test)) else {
        return;
    };
    let mut theirs = start(&encrypted(reference), Some(&fixture));
    set_app_name(&theirs, "sealed by PocketBase");
    theirs.stop();
    assert_sealed(theirs.data_dir());

    let ours = start(&encrypted(ServerSpec::pocketbun()), Some(theirs.data_dir()));
    assert_eq!(app_name(&ours), "sealed by PocketBase");
    drop(ours);

    // without the key the settings cannot be read: no start
    let err = Server::start(&ServerSpec::pocketbun(), Some(theirs.data_dir())).unwrap_err();
    assert!(err.contains("missing encryption key"), "{err}");
    let wrong = with_env(
        with_args(
            ServerSpec::pocketbun(),
            &[&format!("--encryptionEnv={KEY_ENV}")],
        ),
        KEY_ENV,
        "another-key-of-32-characters-!!!",
    );
    let err = Server::start(&wrong, Some(theirs.data_dir())).unwrap_err();
    assert!(err.contains("message authentication failed"), "{err}");
}

#[test]
fn settings_encrypted_by_pocketbun_open_in_pocketbase() {
    let test = "settings_encrypted_by_pocketbun_open_in_pocketbase";
    let Some(fixture) = fixture(test) else {
        return;
    };
    let mut ours = start(&encrypted(ServerSpec::pocketbun()), Some(&fixture));
    // plain settings stay readable with a key set; the next save seals them
    assert_eq!(stored_settings(ours.data_dir()).0, "blob");
    set_app_name(&ours, "sealed by PocketBun");
    assert_eq!(app_name(&ours), "sealed by PocketBun");
    ours.stop();
    assert_sealed(ours.data_dir());
    // PocketBun reads its own sealed settings back
    let again = start(&encrypted(ServerSpec::pocketbun()), Some(ours.data_dir()));
    assert_eq!(app_name(&again), "sealed by PocketBun");
    drop(again);

    let Some(reference) = pocketbase(test) else {
        return;
    };
    let theirs = start(&encrypted(reference), Some(ours.data_dir()));
    assert_eq!(app_name(&theirs), "sealed by PocketBun");
}

// ---------------------------------------------------------------------------------------------
// --queryTimeout

/// A view whose listing scans tens of millions of generated rows (seconds of SQLite work).
const SLOW_VIEW: &str = r#"{"name":"slow_view","type":"view","listRule":"","viewQuery":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT CAST(x AS TEXT) AS id, x AS n FROM c"}"#;

fn slow_list(server: &Server) -> (u16, String, Duration) {
    let (status, body) = server.call("POST", "/api/collections", Some(SUPERUSER), SLOW_VIEW);
    assert_eq!(status, 200, "{body}");
    let started = std::time::Instant::now();
    let (status, body) = server.call(
        "GET",
        "/api/collections/slow_view/records?sort=-n&perPage=1",
        None,
        "",
    );
    (status, body, started.elapsed())
}

#[test]
fn query_timeout_interrupts_a_long_select() {
    let test = "query_timeout_interrupts_a_long_select";
    let Some(fixture) = fixture(test) else {
        return;
    };
    let ours = start(
        &with_args(ServerSpec::pocketbun(), &["--queryTimeout=1"]),
        Some(&fixture),
    );
    let (status, body, took) = slow_list(&ours);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        "{\"data\":{},\"message\":\"Something went wrong while processing your request.\",\"status\":400}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // the worker is free again
    assert_eq!(ours.call("GET", "/api/health", None, "").0, 200);
    if let Some(reference) = pocketbase(test) {
        let theirs = start(&with_args(reference, &["--queryTimeout=1"]), Some(&fixture));
        let (status_b, body_b, _) = slow_list(&theirs);
        assert_eq!(
            (status, body.trim_end()),
            (status_b, body_b.trim_end()),
            "pocketbun (left) vs PocketBase (right)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --dev, hooks and migrations, help and version

#[test]
fn dev_prints_sql_and_request_logs() {
    let ours = start(&with_args(ServerSpec::pocketbun(), &["--dev"]), None);
    assert_eq!(ours.call("GET", "/api/collections", None, "").0, 401);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = ours.log();
        let sql = log
            .lines()
            .any(|l| l.starts_with('[') && l.contains("ms] SELECT"));
        if sql && log.contains("INFO GET /api/health") && log.contains("ERROR GET /api/collections")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // and nothing of the kind without --dev
    let quiet = start(&ServerSpec::pocketbun(), None);
    assert_eq!(quiet.call("GET", "/api/health", None, "").0, 200);
    let log = quiet.log();
    assert!(
        !log.contains("INFO GET") && !log.contains("ms] SELECT"),
        "{log}"
    );
}

#[test]
fn js_hooks_and_migrations_are_reported_not_silently_ignored() {
    let ours = start(&ServerSpec::pocketbun(), None);
    assert!(!ours.log().contains("Warning"), "{}", ours.log());
    drop(ours);

    let root = tempfile::tempdir().unwrap();
    let hooks = root.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("main.pb.js"), "onBootstrap((e) => e.next())").unwrap();
    let hooks_arg = format!("--hooksDir={}", hooks.display());
    let spec = with_args(
        ServerSpec::pocketbun(),
        &[&hooks_arg, "--hooksWatch=false", "--hooksPool=3"],
    );
    let server = Server::start(&spec, None).unwrap_or_else(|e| panic!("{e}"));
    let log = server.log();
    assert!(log.contains("does not run JS app hooks"), "{log}");
    assert!(log.contains(&hooks.display().to_string()), "{log}");
    drop(server);

    let mig = tempfile::tempdir().unwrap();
    std::fs::write(mig.path().join("1_init.js"), "migrate(() => {})").unwrap();
    let arg = format!("--migrationsDir={}", mig.path().display());
    let server = start(&with_args(ServerSpec::pocketbun(), &[&arg]), None);
    assert!(
        server.log().contains("does not run JS migrations"),
        "{}",
        server.log()
    );
}

/// The `--flag` names of a help text.
fn flags_of(help: &str) -> std::collections::BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)^\s+(?:-\w, )?--(\w+)").unwrap();
    re.captures_iter(help).map(|c| c[1].to_string()).collect()
}

fn help(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program:?} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn serve_help_has_every_pocketbase_flag_and_the_readme_lists_them() {
    let ours = flags_of(&help(&pocketbun_bin(), &["serve", "--help"]));
    let readme =
        std::fs::read_to_string(pocketbun_tests::workspace_root().join("README.md")).unwrap();
    let table: std::collections::BTreeSet<String> = regex::Regex::new(r"(?m)^\| `--(\w+)")
        .unwrap()
        .captures_iter(&readme)
        .map(|c| c[1].to_string())
        .collect();
    for flag in &ours {
        if flag != "help" {
            assert!(table.contains(flag), "README's table lacks --{flag}");
        }
    }
    for flag in &table {
        assert!(
            ours.contains(flag),
            "README lists --{flag}, serve --help does not"
        );
    }
    let Some(pb) = pocketbase_bin() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the real PocketBase is required under CI"
        );
        println!("serve_help: SKIP the comparison, the real PocketBase is not available");
        return;
    };
    let theirs = flags_of(&help(&pb, &["serve", "--help"]));
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    assert!(missing.is_empty(), "pocketbun serve lacks {missing:?}");
    assert!(theirs.len() >= 14, "{theirs:?}");
}

#[test]
fn version_names_the_pocketbase_api_it_follows() {
    for flag in ["--version", "-v"] {
        let out = help(&pocketbun_bin(), &[flag]);
        assert!(
            out.starts_with(&format!("pocketbun {}", env!("CARGO_PKG_VERSION")))
                && out.contains("PocketBase Web API 0.40.6"),
            "{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// deployment docs

/// The README's fenced block of `lang`.
fn readme_block(lang: &str) -> String {
    let readme =
        std::fs::read_to_string(pocketbun_tests::workspace_root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("README has no ```{lang} block"))
        + lang.len()
        + 4;
    let end = start + readme[start..].find("\n```").unwrap();
    readme[start..=end].to_string()
}

fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

#[test]
fn readme_systemd_unit_verifies() {
    let Some(analyze) = tool("systemd-analyze") else {
        println!("readme_systemd_unit_verifies: SKIP, systemd-analyze is not installed");
        return;
    };
    let unit = readme_block("ini");
    assert!(unit.contains("ExecStart=/srv/pocketbun/pocketbun serve"));
    // the unit as installed: the binary where ExecStart says, here the one just built
    let dir = tempfile::tempdir().unwrap();
    let unit = unit.replace(
        "/srv/pocketbun/pocketbun",
        &pocketbun_bin().to_string_lossy(),
    );
    let path = dir.path().join("pocketbun.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // it exits 0 on unknown keys and bad values too, reporting them on stderr; only the
    // directories, which exist on the target machine alone, may be missing here
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("/srv/pocketbun"))
        .collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

#[test]
fn readme_nginx_config_is_accepted_by_nginx() {
    let block = readme_block("nginx");
    assert!(block.contains("proxy_pass http://127.0.0.1:8090;"));
    assert!(block.contains("proxy_buffering off;"));
    let Some(nginx) = tool("nginx").or_else(|| {
        let p = PathBuf::from("/usr/sbin/nginx");
        p.is_file().then_some(p)
    }) else {
        println!("readme_nginx_config_is_accepted_by_nginx: SKIP, nginx is not installed");
        return;
    };
    // a throwaway certificate and a minimal main config around the server block
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg("/CN=example.com")
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("readme_nginx_config_is_accepted_by_nginx: SKIP, openssl could not make a test certificate");
        return;
    }
    let server = block
        .replace(
            "/etc/letsencrypt/live/example.com/fullchain.pem",
            &d.join("cert.pem").to_string_lossy(),
        )
        .replace(
            "/etc/letsencrypt/live/example.com/privkey.pem",
            &d.join("key.pem").to_string_lossy(),
        )
        .replace("listen 443 ssl;", "listen 127.0.0.1:8443 ssl;");
    let conf = format!(
        "pid {0}/nginx.pid;\nerror_log {0}/error.log;\nevents {{}}\nhttp {{\naccess_log off;\n\
         client_body_temp_path {0};\nproxy_temp_path {0};\nfastcgi_temp_path {0};\n\
         uwsgi_temp_path {0};\nscgi_temp_path {0};\n{server}\n}}\n",
        d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "nginx -t: {out:?}");
}

//! Request logs end to end: what a request leaves in `auxiliary.db` (`_logs`), the settings
//! that shape it (`logIP`, `logAuthId`, `minLevel`, `maxDays`), and `/api/logs` listing,
//! viewing and hourly stats with filters on `data.*` (PocketBase's `StubLogsData` fixture).
//!
//! needsGo scenarios of PocketBase's `apis/logs_test.go` (all 6 ported): their
//! `BeforeTestFunc` inserts the two `StubLogsData` rows, done here by writing the same rows
//! into a copy of the fixture's `auxiliary.db` before the server starts (`stubbed_fixture`).
//! `list_view_and_stats_like_pocketbase` makes their requests and assertions: list
//! "authorized as superuser" and "+ filter", view "nonexisting request log" and "existing
//! request log", stats "authorized as superuser" and "+ filter".

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::{copy_dir, Server, ServerSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

fn fixture() -> PathBuf {
    fixture_dir()
}

/// The fixture with PocketBase's two stub logs (tests.StubLogsData) in `auxiliary.db`.
fn stubbed_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), &tmp.path().join("pb_data")).unwrap();
    let aux = tmp.path().join("pb_data").join("auxiliary.db");
    let conn = rusqlite::Connection::open(aux).unwrap();
    conn.execute_batch(
        r#"DELETE FROM _logs;
        INSERT INTO _logs (id, level, message, data, created, updated) VALUES
        ('873f2133-9f38-44fb-bf82-c8f53b310d91', 0, 'test_message1', '{"status":200}', '2022-05-01 10:00:00.123Z', '2022-05-01 10:00:00.123Z'),
        ('f2133873-44fb-9f38-bf82-c918f53b310d', 8, 'test_message2', '{"status":400}', '2022-05-02 10:00:00.123Z', '2022-05-02 10:00:00.123Z');"#,
    )
    .unwrap();
    tmp
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn start(template: &Path) -> Server {
    Server::start(&ServerSpec::from_env(), Some(template)).unwrap_or_else(|e| panic!("{e}"))
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut req = Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .header("Content-Type", "application/json")
        .header("Content-Length", &body.len().to_string())
        .body(body.as_bytes().to_vec());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req
        .send(server.port())
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    (resp.status, resp.text())
}

fn su(server: &Server, path: &str) -> (u16, String) {
    call(server, "GET", path, &[("Authorization", SUPERUSER)], "")
}

/// Waits for the log whose `data.url` is `url` (logs are written in batches, off the request).
fn wait_for_log(server: &Server, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let filter = encode(&format!("data.url='{url}'"));
    loop {
        let (status, body) = su(server, &format!("/api/logs?filter={filter}"));
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(item) = v["items"].as_array().and_then(|a| a.first()) {
            return item.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no log of {url}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn list_view_and_stats_like_pocketbase() {
    let data = stubbed_fixture();
    let server = start(&data.path().join("pb_data"));
    for path in [
        "/api/logs",
        "/api/logs/stats",
        "/api/logs/873f2133-9f38-44fb-bf82-c8f53b310d91",
    ] {
        assert_eq!(call(&server, "GET", path, &[], "").0, 401, "{path}");
        assert_eq!(
            call(&server, "GET", path, &[("Authorization", USER)], "").0,
            403,
            "{path}"
        );
    }
    let (status, body) = su(&server, "/api/logs?sort=created");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "{\"items\":[{\"id\":\"873f2133-9f38-44fb-bf82-c8f53b310d91\",\"created\":\"2022-05-01 10:00:00.123Z\",\"data\":{\"status\":200},\"message\":\"test_message1\",\"level\":0},{\"id\":\"f2133873-44fb-9f38-bf82-c918f53b310d\",\"created\":\"2022-05-02 10:00:00.123Z\",\"data\":{\"status\":400},\"message\":\"test_message2\",\"level\":8}],\"page\":1,\"perPage\":30,\"totalItems\":2,\"totalPages\":1}"
    );
    let (_, body) = su(&server, "/api/logs?filter=data.status%3E200");
    assert!(
        body.contains("\"totalItems\":1") && body.contains("test_message2"),
        "{body}"
    );
    let (status, body) = su(&server, "/api/logs?filter=bad~");
    assert_eq!(status, 400, "{body}");
    let (status, body) = su(&server, "/api/logs/873f2133-9f38-44fb-bf82-c8f53b310d91");
    assert_eq!(status, 200);
    assert_eq!(body, "{\"id\":\"873f2133-9f38-44fb-bf82-c8f53b310d91\",\"created\":\"2022-05-01 10:00:00.123Z\",\"data\":{\"status\":200},\"message\":\"test_message1\",\"level\":0}");
    assert_eq!(
        su(&server, "/api/logs/missing1-9f38-44fb-bf82-c8f53b310d91").0,
        404
    );
    let (_, body) = su(&server, "/api/logs/stats?filter=created%3C'2022-06-01'");
    assert_eq!(body, "[{\"date\":\"2022-05-01 10:00:00.000Z\",\"total\":1},{\"date\":\"2022-05-02 10:00:00.000Z\",\"total\":1}]");
    let (_, body) = su(&server, "/api/logs/stats?filter=data.status%3E200");
    assert_eq!(
        body,
        "[{\"date\":\"2022-05-02 10:00:00.000Z\",\"total\":1}]"
    );
    let (status, body) = su(&server, "/api/logs/stats?filter=bad~");
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "{\"data\":{},\"message\":\"Invalid filter format.\",\"status\":400}"
        )
    );
}

#[test]
fn requests_leave_pocketbases_log_rows() {
    let server = start(&fixture());
    call(
        &server,
        "GET",
        "/api/collections/nope?x=%20y",
        &[
            ("Authorization", SUPERUSER),
            ("Referer", "http://r/"),
            ("User-Agent", "ua/1"),
        ],
        "",
    );
    call(
        &server,
        "GET",
        "/api/health",
        &[("User-Agent", "probe")],
        "",
    );
    let log = wait_for_log(&server, "/api/collections/nope?x=%20y");
    assert_eq!(log["message"], "GET /api/collections/nope?x= y");
    assert_eq!(log["level"], 8);
    let d = &log["data"];
    assert_eq!(d["type"], "request");
    assert_eq!(d["method"], "GET");
    assert_eq!(d["status"], 404);
    assert_eq!(d["auth"], "_superusers");
    assert_eq!(d["referer"], "http://r/");
    assert_eq!(d["userAgent"], "ua/1");
    assert_eq!(d["error"], "The requested resource wasn't found.");
    assert!(d["execTime"].as_f64().unwrap() > 0.0);
    assert!(d.get("remoteIP").is_none() && d.get("authId").is_none());
    let log = wait_for_log(&server, "/api/health");
    assert_eq!(log["level"], 0);
    assert_eq!(log["data"]["auth"], "");
    assert!(log["data"].get("error").is_none());
    let keys: Vec<&String> = log["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "auth",
            "execTime",
            "method",
            "referer",
            "status",
            "type",
            "url",
            "userAgent"
        ]
    );
    // successful /api/logs requests are not logged, failed ones are
    call(&server, "GET", "/api/logs?perPage=1", &[], "");
    wait_for_log(&server, "/api/logs?perPage=1");
    su(&server, "/api/logs?perPage=2");
    call(&server, "GET", "/api/health?marker=1", &[], "");
    wait_for_log(&server, "/api/health?marker=1");
    let (_, body) = su(
        &server,
        "/api/logs?filter=data.url%3D'/api/logs%3FperPage%3D2'",
    );
    assert!(body.contains("\"totalItems\":0"), "{body}");
}

#[test]
fn settings_shape_the_logs() {
    let server = start(&fixture());
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        &[("Authorization", SUPERUSER)],
        r#"{"logs":{"logIP":true,"logAuthId":true,"minLevel":0,"maxDays":5}}"#,
    );
    assert_eq!(status, 200, "{body}");
    call(
        &server,
        "GET",
        "/api/health?ip=1",
        &[("Authorization", SUPERUSER)],
        "",
    );
    let log = wait_for_log(&server, "/api/health?ip=1");
    assert_eq!(log["data"]["remoteIP"], "127.0.0.1");
    assert_eq!(log["data"]["userIP"], "127.0.0.1");
    assert_eq!(log["data"]["authId"], "sywbhecnh46rhm0");

    // minLevel above info: only errors are logged
    call(
        &server,
        "PATCH",
        "/api/settings",
        &[("Authorization", SUPERUSER)],
        r#"{"logs":{"minLevel":5}}"#,
    );
    call(&server, "GET", "/api/health?level=info", &[], "");
    call(&server, "GET", "/api/missing?level=error", &[], "");
    wait_for_log(&server, "/api/missing?level=error");
    let (_, body) = su(
        &server,
        "/api/logs?filter=data.url%3D'/api/health%3Flevel%3Dinfo'",
    );
    assert!(body.contains("\"totalItems\":0"), "{body}");

    // maxDays 0: nothing is logged
    call(
        &server,
        "PATCH",
        "/api/settings",
        &[("Authorization", SUPERUSER)],
        r#"{"logs":{"maxDays":0,"minLevel":0}}"#,
    );
    call(&server, "GET", "/api/missing?off=1", &[], "");
    std::thread::sleep(Duration::from_millis(1500));
    let (_, body) = su(
        &server,
        "/api/logs?filter=data.url%3D'/api/missing%3Foff%3D1'",
    );
    assert!(body.contains("\"totalItems\":0"), "{body}");
}

/// A pb_data created by PocketBun itself (its `_logs` has PocketBase v0.39's fresh columns,
/// without `updated`) gets its request logs too.
#[test]
fn fresh_data_dir_gets_request_logs() {
    let server = Server::start(&ServerSpec::pocketbun(), None).expect("server starts");
    for _ in 0..3 {
        let resp = Request::new("GET", "/api/health")
            .header("Host", "127.0.0.1")
            .header("Connection", "close")
            .send(server.port())
            .expect("response");
        assert_eq!(resp.status, 200);
    }
    let aux = server.data_dir().join("auxiliary.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rows = 0i64;
    while Instant::now() < deadline {
        if let Ok(conn) = rusqlite::Connection::open(&aux) {
            rows = conn
                .query_row(
                    "SELECT count(*) FROM _logs WHERE message = 'GET /api/health'",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or_else(|e| {
                    eprintln!("reading _logs: {e}");
                    0
                });
            if rows >= 3 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // the harness's own readiness probes are logged too, so at least our three
    assert!(
        rows >= 3,
        "request logs missing; server log:\n{}",
        server.log()
    );
}

/// What PocketBun wrote into `_logs` reads the same in PocketBase: the same `/api/logs` page
/// and `/api/logs/stats` hours from PocketBase 0.40.6 (and 0.39.11) as from PocketBun over
/// copies of one `pb_data`, and SQLite's integrity check passes on `auxiliary.db` (it
/// recomputes every index entry, the hourly `strftime` expression index too, with SQLite's
/// own functions). Run over the fixture (PocketBase's older `_logs` with `updated`) and over
/// a fresh `pb_data` made by PocketBun.
#[test]
fn pocketbase_reads_the_logs_pocketbun_wrote() {
    const TEST: &str = "pocketbase_reads_the_logs_pocketbun_wrote";
    let Some(reference) = ServerSpec::reference(TEST) else {
        return;
    };
    let mut readers = vec![reference];
    if let Some(old) = pocketbun_tests::need::pocketbase_version(TEST, "0.39.11") {
        let mut spec = ServerSpec::pocketbase().expect("a PocketBase spec");
        spec.program = old;
        readers.push(spec);
    }
    let fresh_root = tempfile::tempdir().unwrap();
    let fresh = pocketbun_tests::data_dir_with_superuser(
        &fresh_root.path().join("pb_data"),
        "logs@example.com",
        "1234567890",
    );
    for (template, fixture) in [(fixture(), true), (fresh, false)] {
        let mut writer = start(&template);
        let token = if fixture {
            SUPERUSER.to_string()
        } else {
            let (status, body) = writer.call(
                "POST",
                "/api/collections/_superusers/auth-with-password",
                None,
                r#"{"identity":"logs@example.com","password":"1234567890"}"#,
            );
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            v["token"].as_str().unwrap().to_string()
        };
        let su_call = |method: &str, path: &str, body: &str| {
            call(&writer, method, path, &[("Authorization", &token)], body)
        };
        let (status, body) = su_call(
            "PATCH",
            "/api/settings",
            r#"{"logs":{"logIP":true,"logAuthId":true,"minLevel":-4,"maxDays":7}}"#,
        );
        assert_eq!(status, 200, "{body}");
        // more rows than one multi-row INSERT takes, successes and failures mixed
        for i in 0..130 {
            let ua = format!("agent \"{i}\" \u{e9}");
            call(
                &writer,
                "GET",
                &format!("/api/health?i={i}"),
                &[("User-Agent", &ua), ("Referer", "http://r/?a=<b>")],
                "",
            );
            if i % 20 == 0 {
                su_call("GET", &format!("/api/collections/nope{i}?x=%20y%C3%A9"), "");
                su_call(
                    "POST",
                    "/api/collections/users/records",
                    r#"{"email":"bad"}"#,
                );
                call(&writer, "GET", &format!("/api/missing/{i}"), &[], "");
            }
        }
        assert_eq!(writer.stop().map(|s| s.success()), Some(true));
        let aux = writer.data_dir().join("auxiliary.db");
        let (check, written, first, last): (String, i64, String, String) = {
            let conn = rusqlite::Connection::open(&aux).unwrap();
            let check = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            // the fixture's own older logs are left out: PocketBase deletes those past
            // `maxDays` when it starts
            let first: String = conn
                .query_row(
                    "SELECT strftime('%Y-%m-%d %H:%M:%fZ', 'now', '-1 day')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let last: String = conn
                .query_row("SELECT max(created) FROM _logs", [], |r| r.get(0))
                .unwrap();
            let requests: i64 = conn
                .query_row(
                    "SELECT count(*) FROM _logs WHERE json_extract(data, '$.type') = 'request' \
                     AND message LIKE 'GET /api/health?i=%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(requests, 130);
            let n = conn
                .query_row(
                    "SELECT count(*) FROM _logs WHERE created >= ?1",
                    [&first],
                    |r| r.get(0),
                )
                .unwrap();
            (check, n, first, last)
        };
        assert_eq!(check, "ok", "integrity_check of {}", aux.display());
        let copy = tempfile::tempdir().unwrap();
        copy_dir(writer.data_dir(), copy.path()).unwrap();
        drop(writer);
        // what each server answers about the rows written above (later rows are each server's
        // own readiness probes)
        let filter = encode(&format!("created>='{first}'&&created<='{last}'"));
        let queries = [
            format!("/api/logs?perPage=500&sort=created,id&filter={filter}"),
            format!("/api/logs?perPage=50&page=2&filter={filter}%26%26data.status>=400"),
            format!("/api/logs?filter={filter}%26%26level=8%26%26message~'nope'"),
            format!("/api/logs/stats?filter={filter}"),
        ];
        let answers = |server: &Server| -> Vec<(u16, String)> {
            queries
                .iter()
                .map(|q| call(server, "GET", q, &[("Authorization", &token)], ""))
                .collect()
        };
        let ours_server = start(copy.path());
        let ours = answers(&ours_server);
        let first: Value = serde_json::from_str(&ours[0].1).unwrap();
        assert_eq!(first["totalItems"], written, "{}", ours[0].1);
        let one = first["items"][0]["id"].as_str().unwrap().to_string();
        let view = call(
            &ours_server,
            "GET",
            &format!("/api/logs/{one}"),
            &[("Authorization", &token)],
            "",
        );
        assert_eq!(view.0, 200, "{}", view.1);
        drop(ours_server);
        for (i, spec) in readers.iter().enumerate() {
            let theirs_server =
                Server::start(spec, Some(copy.path())).unwrap_or_else(|e| panic!("{e}"));
            let theirs = answers(&theirs_server);
            for ((q, a), b) in queries.iter().zip(&ours).zip(&theirs) {
                // the same bytes as the reference; 0.39 writes the same JSON values with Go's
                // older escaping (`<` as `\u003c`)
                let same = if i == 0 {
                    a == b
                } else {
                    a.0 == b.0
                        && serde_json::from_str::<Value>(&a.1).ok()
                            == serde_json::from_str::<Value>(&b.1).ok()
                };
                if !same {
                    // the pages are long: show where they part
                    let at =
                        a.1.bytes()
                            .zip(b.1.bytes())
                            .take_while(|(x, y)| x == y)
                            .count();
                    let near = |s: &str| {
                        s.get(at.saturating_sub(300)..(at + 200).min(s.len()))
                            .unwrap_or(s)
                            .to_string()
                    };
                    panic!(
                        "{q} ({}, fixture {fixture}): PocketBun {} / PocketBase {}, from byte {at}:\n  ours:   {}\n  theirs: {}",
                        spec.program.display(),
                        a.0,
                        b.0,
                        near(&a.1),
                        near(&b.1)
                    );
                }
            }
            let their_view = call(
                &theirs_server,
                "GET",
                &format!("/api/logs/{one}"),
                &[("Authorization", &token)],
                "",
            );
            assert_eq!(view.0, their_view.0, "{}", spec.program.display());
            assert_eq!(
                serde_json::from_str::<Value>(&view.1).unwrap(),
                serde_json::from_str::<Value>(&their_view.1).unwrap(),
                "{}",
                spec.program.display()
            );
        }
    }
}

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

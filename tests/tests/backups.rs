//! `/api/backups` end to end over real servers: create/list/download (superuser file token)/
//! upload/delete with PocketBase's validation, restore with the process restart, and backups
//! moving both ways between PocketBun and the real PocketBase binary.
//!
//! needsGo scenarios of PocketBase's `apis/backup_test.go`: the backups its `BeforeTestFunc`
//! makes (`test1.zip`..`test3.zip`, `@test4.zip`) are made here over the API (and one copied
//! into `pb_data/backups`), the `superuserIPs` it sets are PATCHed, and what its
//! `AfterTestFunc` checks (files created or gone) is read from the backups folder — see
//! `backup_test_go_scenarios` and the tests above. Not portable over HTTP:
//! * create "authorized as superuser (pending backup)", delete "existing file with matching
//!   active backup" / "existing file and no matching active backup" (only its "no matching"
//!   half: the plain delete is ported), restore "authorized as superuser (active backup
//!   process)": they set the in-progress backup name in the Go app's store; over HTTP that
//!   state exists only while a real backup runs, so a test would race it (a timing assert).

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::{Server, ServerSpec};
use serde_json::Value;
use std::time::{Duration, Instant};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;
/// Fixture superuser file token (valid until 2050).
const SUPERUSER_FILE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6InN5d2JoZWNuaDQ2cmhtMCIsImV4cCI6MjUyNDYwNDQ2MSwidHlwZSI6ImZpbGUiLCJjb2xsZWN0aW9uSWQiOiJwYmNfMzE0MjYzNTgyMyJ9.Lupz541xRvrktwkrl55p5pPCF77T69ZRsohsIcb2dxc";
/// Expired superuser file token.
const EXPIRED_FILE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6InN5d2JoZWNuaDQ2cmhtMCIsImV4cCI6MTY0MDk5MTY2MSwidHlwZSI6ImZpbGUiLCJjb2xsZWN0aW9uSWQiOiJwYmNfMzE0MjYzNTgyMyJ9.nqqtqpPhxU0045F4XP_ruAkzAidYBc5oPy9ErN3XBq0";
/// Regular user's file token.
const USER_FILE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsImV4cCI6MjUyNDYwNDQ2MSwidHlwZSI6ImZpbGUiLCJjb2xsZWN0aW9uSWQiOiJfcGJfdXNlcnNfYXV0aF8ifQ.nSTLuCPcGpWn2K2l-BFkC3Vlzc-ZTDPByYq8dN1oPSo";

fn fixture() -> std::path::PathBuf {
    fixture_dir()
}

fn start(spec: &ServerSpec) -> Server {
    Server::start(spec, Some(&fixture())).unwrap_or_else(|e| panic!("{e}"))
}

fn send(server: &Server, req: Request) -> (u16, Vec<u8>) {
    let req = req
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .timeout(Duration::from_secs(60));
    let resp = req
        .send(server.port())
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
    (resp.status, resp.body)
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut req = Request::new(method, path)
        .header("Content-Type", "application/json")
        .header("Content-Length", &body.len().to_string())
        .body(body.as_bytes().to_vec());
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let (status, body) = send(server, req);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn upload(server: &Server, token: &str, filename: &str, content: &[u8]) -> (u16, String) {
    let boundary = "----pocketbuntestboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::new("POST", "/api/backups/upload")
        .header("Authorization", token)
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .header("Content-Length", &body.len().to_string())
        .body(body);
    let (status, body) = send(server, req);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn keys(server: &Server) -> Vec<String> {
    let (status, body) = call(server, "GET", "/api/backups", Some(SUPERUSER), "");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"].as_str().unwrap().to_string())
        .collect()
}

fn download(server: &Server, key: &str) -> Vec<u8> {
    let (status, body) = send(
        server,
        Request::new("GET", &format!("/api/backups/{key}?token={SUPERUSER_FILE}")),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

fn app_name(server: &Server) -> String {
    let (status, body) = call(server, "GET", "/api/settings", Some(SUPERUSER), "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["meta"]["appName"]
        .as_str()
        .unwrap()
        .to_string()
}

fn set_app_name(server: &Server, name: &str) {
    let (status, body) = call(
        server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        &format!(r#"{{"meta":{{"appName":"{name}"}}}}"#),
    );
    assert_eq!(status, 200, "{body}");
}

/// Waits until the restarted server answers with `expected` as its app name.
fn wait_for_app_name(server: &Server, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = Request::new("GET", "/api/settings")
            .header("Host", &format!("127.0.0.1:{}", server.port()))
            .header("Authorization", SUPERUSER)
            .header("Connection", "close")
            .timeout(Duration::from_secs(2))
            .send(server.port())
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v["meta"]["appName"].as_str().map(str::to_string));
        if ok.as_deref() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the restored server never answered appName {expected:?} (last: {ok:?})\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn only_superusers_manage_backups() {
    let server = start(&ServerSpec::from_env());
    for (method, path) in [
        ("GET", "/api/backups"),
        ("POST", "/api/backups"),
        ("POST", "/api/backups/upload"),
        ("DELETE", "/api/backups/a.zip"),
        ("POST", "/api/backups/a.zip/restore"),
    ] {
        let (status, body) = call(&server, method, path, None, "");
        assert_eq!(status, 401, "{method} {path}: {body}");
        let (status, body) = call(&server, method, path, Some(USER), "");
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let (status, body) = call(&server, "GET", "/api/backups", Some(SUPERUSER), "");
    assert_eq!((status, body.as_str()), (200, "[]"));
}

#[test]
fn create_list_download_upload_delete() {
    let server = start(&ServerSpec::from_env());
    let (status, body) = call(
        &server,
        "POST",
        "/api/backups",
        Some(SUPERUSER),
        r#"{"name":"!test.zip"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "{\"data\":{\"name\":{\"code\":\"validation_match_invalid\",\"message\":\"Must be in a valid format.\"}},\"message\":\"An error occurred while validating the submitted data.\",\"status\":400}"
    );
    assert!(keys(&server).is_empty());

    let (status, body) = call(
        &server,
        "POST",
        "/api/backups",
        Some(SUPERUSER),
        r#"{"name":"test.zip"}"#,
    );
    assert_eq!((status, body.as_str()), (204, ""));
    let (status, body) = call(&server, "POST", "/api/backups", Some(SUPERUSER), "");
    assert_eq!((status, body.as_str()), (204, ""));
    let all = keys(&server);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("pb_backup_acme_test_") && all[0].ends_with(".zip"));
    assert_eq!(all[1], "test.zip");

    let (status, body) = call(
        &server,
        "POST",
        "/api/backups",
        Some(SUPERUSER),
        r#"{"name":"test.zip"}"#,
    );
    assert_eq!(status, 400);
    assert!(body.contains("\"validation_backup_name_exists\""), "{body}");

    // downloads need a superuser *file* token
    for token in ["", SUPERUSER, USER_FILE, EXPIRED_FILE] {
        let (status, _) = send(
            &server,
            Request::new("GET", &format!("/api/backups/test.zip?token={token}")),
        );
        assert_eq!(status, 403, "token {token:?}");
    }
    let (status, _) = send(
        &server,
        Request::new(
            "GET",
            &format!("/api/backups/missing?token={SUPERUSER_FILE}"),
        ),
    );
    assert_eq!(status, 404);
    let zip = download(&server, "test.zip");
    assert!(zip.starts_with(b"PK\x03\x04"));
    for name in ["data.db", "auxiliary.db", "storage/"] {
        assert!(
            zip.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} missing from the archive"
        );
    }
    // never the live WAL files, never the backups folder itself
    for name in ["data.db-wal", "data.db-shm", "backups/"] {
        assert!(
            !zip.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} in the archive"
        );
    }

    // upload: required, zip only, unique name; no default body limit
    let (status, body) = call(&server, "POST", "/api/backups/upload", Some(SUPERUSER), "");
    assert_eq!(status, 400);
    assert!(
        body.contains("\"file\":{\"code\":\"validation_required\""),
        "{body}"
    );
    let (status, body) = upload(&server, SUPERUSER, "notzip.zip", b"plain text");
    assert_eq!(status, 400);
    assert!(body.contains("validation_invalid_mime_type"), "{body}");
    let (status, body) = upload(&server, SUPERUSER, "test.zip", &zip);
    assert_eq!(status, 400);
    assert!(body.contains("validation_backup_name_exists"), "{body}");
    let (status, body) = upload(&server, SUPERUSER, "uploaded.zip", &zip);
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(download(&server, "uploaded.zip"), zip);
    let big = vec![b'x'; 32 * 1024 * 1024 + 100];
    let (status, body) = send(
        &server,
        Request::new("POST", "/api/backups/upload")
            .header("Authorization", SUPERUSER)
            .header("Content-Length", &big.len().to_string())
            .body(big),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    let (status, _) = call(
        &server,
        "DELETE",
        "/api/backups/uploaded.zip",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 204);
    let (status, body) = call(
        &server,
        "DELETE",
        "/api/backups/uploaded.zip",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(
        &server,
        "POST",
        "/api/backups/missing.zip/restore",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 400);
    assert_eq!(keys(&server).len(), 2);
}

#[test]
fn restore_replaces_the_data_and_restarts() {
    let mut server = start(&ServerSpec::from_env());
    let pid = server.pid();
    let (status, _) = call(
        &server,
        "POST",
        "/api/backups",
        Some(SUPERUSER),
        r#"{"name":"before.zip"}"#,
    );
    assert_eq!(status, 204);
    set_app_name(&server, "changed_after_backup");
    assert_eq!(app_name(&server), "changed_after_backup");
    let (status, body) = call(
        &server,
        "POST",
        "/api/backups/before.zip/restore",
        Some(SUPERUSER),
        "",
    );
    assert_eq!((status, body.as_str()), (204, ""));
    wait_for_app_name(&server, "acme_test");
    // restarted in place (same process, re-executed), backups kept, scratch space cleaned
    assert_eq!(server.pid(), pid);
    assert_eq!(keys(&server), ["before.zip"]);
    assert!(!server.data_dir().join(".pb_temp_to_delete").exists());
    server.stop();
}

fn pocketbase() -> Option<ServerSpec> {
    ServerSpec::reference("backups moving between PocketBun and PocketBase")
}

#[test]
fn pocketbase_backup_restores_in_pocketbun() {
    let Some(pb_spec) = pocketbase() else { return };
    let mut pb = start(&pb_spec);
    set_app_name(&pb, "made_by_pocketbase");
    let (status, body) = call(
        &pb,
        "POST",
        "/api/backups",
        Some(SUPERUSER),
        r#"{"name":"from_pb.zip"}"#,
    );
    assert_eq!(status, 204, "{body}");
    let zip = download(&pb, "from_pb.zip");
    pb.stop();

    let bun = start(&ServerSpec::pocketbun());
    let (status, body) = upload(&bun, SUPERUSER, "from_pb.zip", &zip);
    assert_eq!(status, 204, "{body}");
    let (status, _) = call(
        &bun,
        "POST",
        "/api/backups/from_pb.zip/restore",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 204);
    wait_for_app_name(&bun, "made_by_pocketbase");
    let (status, body) = call(&bun, "GET", "/api/collections/demo1", Some(SUPERUSER), "");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn pocketbun_backup_restores_in_pocketbase() {
    let Some(pb_spec) = pocketbase() else { return };
    let mut bun = start(&ServerSpec::pocketbun());
    set_app_name(&bun, "made_by_pocketbun");
    let (status, body) = call(
        &bun,
        "POST",
        "/api/backups",
        Some(SUPERUSER),
        r#"{"name":"from_bun.zip"}"#,
    );
    assert_eq!(status, 204, "{body}");
    let zip = download(&bun, "from_bun.zip");
    bun.stop();

    let pb = start(&pb_spec);
    let (status, body) = upload(&pb, SUPERUSER, "from_bun.zip", &zip);
    assert_eq!(status, 204, "{body}");
    let (status, _) = call(
        &pb,
        "POST",
        "/api/backups/from_bun.zip/restore",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 204);
    wait_for_app_name(&pb, "made_by_pocketbun");
    let (status, body) = call(&pb, "GET", "/api/collections/demo1", Some(SUPERUSER), "");
    assert_eq!(status, 200, "{body}");
}

/// The listing, download, delete and restore scenarios of `backup_test.go` whose Go setup
/// made backups first (see the module docs).
#[test]
fn backup_test_go_scenarios() {
    let server = start(&ServerSpec::pocketbun());
    for name in ["test1.zip", "test2.zip", "test3.zip"] {
        let body = format!("{{\"name\":\"{name}\"}}");
        let (status, body) = call(&server, "POST", "/api/backups", Some(SUPERUSER), &body);
        assert_eq!(status, 204, "{body}");
    }
    // `@test4.zip` cannot be named through the create API (its name pattern): put it in place
    let backups = server.data_dir().join("backups");
    std::fs::copy(backups.join("test1.zip"), backups.join("@test4.zip")).unwrap();

    // list
    assert_eq!(call(&server, "GET", "/api/backups", None, "").0, 401);
    assert_eq!(call(&server, "GET", "/api/backups", Some(USER), "").0, 403);
    let (status, body) = call(&server, "GET", "/api/backups", Some(SUPERUSER), "");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let items = list.as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|b| b["key"].as_str().unwrap()).collect();
    assert_eq!(names, ["@test4.zip", "test1.zip", "test2.zip", "test3.zip"]);
    for item in items {
        assert!(item["size"].as_u64().unwrap() > 0, "{item}");
        assert!(item["modified"].as_str().unwrap().ends_with('Z'), "{item}");
    }

    // download: only a superuser *file* token in the query opens it
    let get = |target: &str, auth: Option<&str>| {
        let mut req = Request::new("GET", target);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        send(&server, req)
    };
    let forbidden = "{\"data\":{},\"message\":\"Insufficient permissions to access the resource.\",\"status\":403}";
    for (target, auth) in [
        ("/api/backups/test1.zip".to_string(), None),
        ("/api/backups/test1.zip".to_string(), Some(USER)),
        ("/api/backups/test1.zip".to_string(), Some(SUPERUSER)),
        ("/api/backups/test1.zip?token=".to_string(), None),
        (format!("/api/backups/test1.zip?token={USER}"), None),
        (format!("/api/backups/test1.zip?token={USER_FILE}"), None),
        (format!("/api/backups/test1.zip?token={SUPERUSER}"), None),
        (format!("/api/backups/test1.zip?token={EXPIRED_FILE}"), None),
    ] {
        let (status, body) = get(&target, auth);
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (403, forbidden),
            "{target} {auth:?}"
        );
    }
    let (status, body) = get(
        &format!("/api/backups/missing?token={SUPERUSER_FILE}"),
        None,
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let test1 = std::fs::read(backups.join("test1.zip")).unwrap();
    let (status, body) = get(
        &format!("/api/backups/test1.zip?token={SUPERUSER_FILE}"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body, test1);
    let (status, body) = get(
        &format!("/api/backups/%40test4.zip?token={SUPERUSER_FILE}"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body, test1);

    // delete
    assert_eq!(
        call(&server, "DELETE", "/api/backups/test1.zip", None, "").0,
        401
    );
    assert_eq!(
        call(&server, "DELETE", "/api/backups/test1.zip", Some(USER), "").0,
        403
    );
    let (status, body) = call(
        &server,
        "DELETE",
        "/api/backups/missing.zip",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"data\":{}"), "{body}");
    let (status, _) = call(
        &server,
        "DELETE",
        "/api/backups/test1.zip",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 204);
    assert!(!backups.join("test1.zip").exists());
    let (status, _) = call(
        &server,
        "DELETE",
        "/api/backups/%40test4.zip",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 204);
    assert!(!backups.join("@test4.zip").exists());
    assert_eq!(keys(&server), ["test2.zip", "test3.zip"]);

    // restore: the access checks and a missing file (a real restore is tested above)
    assert_eq!(
        call(&server, "POST", "/api/backups/test2.zip/restore", None, "").0,
        401
    );
    assert_eq!(
        call(
            &server,
            "POST",
            "/api/backups/test2.zip/restore",
            Some(USER),
            ""
        )
        .0,
        403
    );
    let (status, body) = call(
        &server,
        "POST",
        "/api/backups/missing.zip/restore",
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"data\":{}"), "{body}");

    // superuser IP lists: a listed IP downloads, any other is refused (last: it also locks
    // the superuser API out for this client)
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        r#"{"superuserIPs":["127.0.0.1"]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(
        &format!("/api/backups/test2.zip?token={SUPERUSER_FILE}"),
        None,
    );
    assert_eq!(status, 200);
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        r#"{"superuserIPs":["0.0.0.0"]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(
        &format!("/api/backups/test2.zip?token={SUPERUSER_FILE}"),
        None,
    );
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (403, forbidden)
    );
}

/// 0.40's backups copy the databases with `VACUUM INTO` from a reader, so writers go on while
/// the archive is made: record creates issued during a backup of a big `data.db` are answered
/// before the backup is. (A backup that held the writer would answer every one of them only
/// after it: the order of answers, not their timing, is what is checked.)
#[test]
fn a_backup_does_not_hold_writers() {
    // 48 MiB of random bytes: incompressible, so the archive takes seconds to make even
    // in a release build, against ~1 ms for a create
    let fixture = pocketbun_tests::fixture::EditedFixture::new(|db| {
        db.execute_batch(
            "CREATE TABLE bulk (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 48)
             INSERT INTO bulk SELECT randomblob(1048576) FROM n;",
        )
        .expect("fill data.db");
    });
    let server = Server::start(&ServerSpec::pocketbun(), Some(fixture.path()))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = server.port();
    let backup = std::thread::spawn(move || {
        let body = r#"{"name":"big.zip"}"#;
        let resp = Request::new("POST", "/api/backups")
            .header("Host", &format!("127.0.0.1:{port}"))
            .header("Authorization", SUPERUSER)
            .header("Content-Type", "application/json")
            .header("Content-Length", &body.len().to_string())
            .header("Connection", "close")
            .body(body.as_bytes().to_vec())
            .timeout(Duration::from_secs(300))
            .send(port)
            .expect("backup request");
        resp.status
    });
    // wait until the backup is under way: its work folder exists in pb_data's temp folder
    let temp = server.data_dir().join(".pb_temp_to_delete");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(&temp).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("pb_backup_"))
    }) {
        assert!(
            !backup.is_finished(),
            "the backup ended before a write could be tried during it"
        );
        assert!(Instant::now() < deadline, "the backup never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut created_during = 0;
    while !backup.is_finished() && created_during < 20 {
        let (status, body) = call(
            &server,
            "POST",
            "/api/collections/demo2/records",
            Some(SUPERUSER),
            &format!(r#"{{"title":"during the backup {created_during}"}}"#),
        );
        assert_eq!(status, 200, "{body}");
        if !backup.is_finished() {
            created_during += 1;
        }
    }
    assert_eq!(backup.join().unwrap(), 204, "{}", server.log());
    assert!(
        created_during > 0,
        "no create was answered while the backup ran\n{}",
        server.log()
    );
    assert!(keys(&server).contains(&"big.zip".to_string()));
}

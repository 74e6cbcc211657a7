//! Record files and backups in an S3 bucket: a real S3-compatible server (moto, installed from
//! PyPI by the support library) on loopback, PocketBun switched to it through
//! `PATCH /api/settings`, and every effect checked in the bucket itself over plain HTTP.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::s3::S3Server;
use pocketbun_tests::{Server, ServerSpec};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// The fixture superuser's file token (valid until 2050).
const SUPERUSER_FILE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6InN5d2JoZWNuaDQ2cmhtMCIsImV4cCI6MjUyNDYwNDQ2MSwidHlwZSI6ImZpbGUiLCJjb2xsZWN0aW9uSWQiOiJwYmNfMzE0MjYzNTgyMyJ9.Lupz541xRvrktwkrl55p5pPCF77T69ZRsohsIcb2dxc";
/// demo1: `file_one` is protected, `file_many` is not; superusers only.
const DEMO1: &str = "wsmn24bux7wo113";

fn fixture() -> PathBuf {
    fixture_dir()
}

fn moto() -> Option<S3Server> {
    let s3 = S3Server::start();
    if s3.is_none() {
        eprintln!("SKIPPED: moto[server] cannot be installed here");
    }
    s3
}

fn send(server: &Server, req: Request) -> pocketbun_tests::http::Response {
    req.header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .timeout(Duration::from_secs(60))
        .send(server.port())
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()))
}

fn call(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = Request::new(method, path).header("Authorization", SUPERUSER);
    if let Some(b) = body {
        let b = b.to_string();
        req = req
            .header("Content-Type", "application/json")
            .header("Content-Length", &b.len().to_string())
            .body(b.into_bytes());
    }
    let resp = send(server, req);
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, v)
}

/// A multipart body of `(field, filename, content type, bytes)` parts.
fn multipart(parts: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----pocketbuns3boundary";
    let mut body = Vec::new();
    for (field, filename, ct, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
                 filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(
    server: &Server,
    method: &str,
    path: &str,
    parts: &[(&str, &str, &str, &[u8])],
) -> (u16, Value) {
    let (ct, body) = multipart(parts);
    let resp = send(
        server,
        Request::new(method, path)
            .header("Authorization", SUPERUSER)
            .header("Content-Type", &ct)
            .header("Content-Length", &body.len().to_string())
            .body(body),
    );
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, v)
}

fn s3_settings(s3: &S3Server, bucket: &str) -> Value {
    json!({
        "enabled": true,
        "bucket": bucket,
        "region": "us-east-1",
        "endpoint": s3.endpoint(),
        "accessKey": "testing",
        "secret": "testing-secret",
        "forcePathStyle": true,
    })
}

/// The PNG of the fixture's avatar.
fn png() -> Vec<u8> {
    std::fs::read(fixture().join("storage/_pb_users_auth_/4q1xlclmfloku33/300_1SEi6Q6U72.png"))
        .unwrap()
}

fn png_size(b: &[u8]) -> (u32, u32) {
    assert!(b.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    (
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        u32::from_be_bytes(b[20..24].try_into().unwrap()),
    )
}

#[test]
fn test_s3_endpoint_reports_success_and_failure() {
    let Some(s3) = moto() else { return };
    s3.create_bucket("pb-files");
    let server = Server::start(&ServerSpec::pocketbun(), Some(&fixture())).unwrap();
    let (status, body) = call(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(json!({"filesystem": "storage"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("S3 storage filesystem is not enabled"),
        "{body}"
    );

    // a bucket that does not exist: the upload fails, 400 as in PocketBase
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(json!({"s3": s3_settings(&s3, "no-such-bucket")})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(json!({"filesystem": "storage"})),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Failed to test the S3 filesystem."),
        "{body}"
    );
    assert!(message.contains("failed to upload a test file"), "{body}");

    // the right bucket: 204, and the test object is gone again
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(json!({"s3": s3_settings(&s3, "pb-files")})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(json!({"filesystem": "storage"})),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(s3.keys("pb-files"), Vec::<String>::new());

    // an endpoint nobody listens on
    let mut dead = s3_settings(&s3, "pb-files");
    dead["endpoint"] = json!("http://127.0.0.1:1");
    let (status, _) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(json!({"backups": {"s3": dead}})),
    );
    assert_eq!(status, 200);
    let (status, body) = call(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(json!({"filesystem": "backups"})),
    );
    assert_eq!(status, 400, "{body}");
    // and an invalid form
    let (status, body) = call(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(json!({"filesystem": "other"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["filesystem"]["code"], "validation_in_invalid",
        "{body}"
    );
}

#[test]
fn record_files_live_in_the_bucket() {
    let Some(s3) = moto() else { return };
    s3.create_bucket("pb-files");
    let server = Server::start(&ServerSpec::pocketbun(), Some(&fixture())).unwrap();
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(json!({"s3": s3_settings(&s3, "pb-files")})),
    );
    assert_eq!(status, 200, "{body}");

    let png = png();
    let (status, rec) = upload(
        &server,
        "POST",
        "/api/collections/demo1/records",
        &[
            ("file_many", "photo.png", "image/png", &png),
            ("file_one", "secret.txt", "text/plain", b"top secret text"),
        ],
    );
    assert_eq!(status, 200, "{rec}");
    let id = rec["id"].as_str().unwrap().to_string();
    let image = rec["file_many"][0].as_str().unwrap().to_string();
    let secret = rec["file_one"].as_str().unwrap().to_string();
    assert!(
        image.starts_with("photo_") && image.ends_with(".png"),
        "{rec}"
    );

    // the objects are in the bucket under PocketBase's keys, nothing on local disk
    let image_key = format!("{DEMO1}/{id}/{image}");
    let secret_key = format!("{DEMO1}/{id}/{secret}");
    let mut want = vec![image_key.clone(), secret_key.clone()];
    want.sort();
    assert_eq!(s3.keys("pb-files"), want);
    let (ct, bytes) = s3.object("pb-files", &image_key).expect("the image object");
    assert_eq!(ct, "image/png");
    assert_eq!(bytes, png);
    // the uploaded name rides along as the object's metadata, as PocketBase 0.40 stores it
    assert_eq!(
        s3.object_metadata("pb-files", &image_key)["original-filename"],
        "photo.png"
    );
    assert!(!server
        .data_dir()
        .join("storage")
        .join(DEMO1)
        .join(&id)
        .exists());

    // served through /api/files, whole and by range
    let url = format!("/api/files/demo1/{id}/{image}");
    let resp = send(&server, Request::new("GET", &url));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("image/png"));
    assert_eq!(
        resp.header("content-disposition"),
        Some(format!("inline; filename=\"{image}\"").as_str())
    );
    assert!(resp.header("last-modified").is_some());
    assert_eq!(resp.body, png);
    let resp = send(
        &server,
        Request::new("GET", &url).header("Range", "bytes=2-11"),
    );
    assert_eq!(resp.status, 206);
    assert_eq!(
        resp.header("content-range"),
        Some(format!("bytes 2-11/{}", png.len()).as_str())
    );
    assert_eq!(resp.body, &png[2..12]);
    let resp = send(&server, Request::new("HEAD", &url));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-length"),
        Some(png.len().to_string().as_str())
    );

    // a thumb is made once and cached in the bucket
    let resp = send(
        &server,
        Request::new("GET", &format!("{url}?thumb=100x100")),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(png_size(&resp.body), (100, 100));
    let thumb_key = format!("{DEMO1}/{id}/thumbs_{image}/100x100_{image}");
    assert!(
        s3.keys("pb-files").contains(&thumb_key),
        "{:?}",
        s3.keys("pb-files")
    );
    let (ct, thumb) = s3.object("pb-files", &thumb_key).expect("the thumb object");
    assert_eq!(ct, "image/png");
    assert_eq!(thumb, resp.body);
    let again = send(
        &server,
        Request::new("GET", &format!("{url}?thumb=100x100")),
    );
    assert_eq!(again.body, resp.body);

    // the protected file needs a file token
    let secret_url = format!("/api/files/demo1/{id}/{secret}");
    assert_eq!(send(&server, Request::new("GET", &secret_url)).status, 404);
    let resp = send(
        &server,
        Request::new("GET", &format!("{secret_url}?token={SUPERUSER_FILE}")),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"top secret text");
    // a missing object is a 404
    assert_eq!(
        send(
            &server,
            Request::new("GET", &format!("/api/files/demo1/{id}/missing.png"))
        )
        .status,
        404
    );

    // replacing a file removes the old object (and its thumbs)
    let (status, rec) = upload(
        &server,
        "PATCH",
        &format!("/api/collections/demo1/records/{id}"),
        &[("file_many", "other.txt", "text/plain", b"replacement")],
    );
    assert_eq!(status, 200, "{rec}");
    let files: Vec<String> = rec["file_many"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 1, "{rec}");
    let other_key = format!("{DEMO1}/{id}/{}", files[0]);
    let mut want = vec![other_key, secret_key.clone()];
    want.sort();
    assert_eq!(s3.keys("pb-files"), want);

    // deleting the record removes the rest
    let (status, body) = call(
        &server,
        "DELETE",
        &format!("/api/collections/demo1/records/{id}"),
        None,
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(s3.keys("pb-files"), Vec::<String>::new());
}

#[test]
fn backups_live_in_the_backups_bucket() {
    let Some(s3) = moto() else { return };
    s3.create_bucket("pb-backups");
    let server = Server::start(&ServerSpec::pocketbun(), Some(&fixture())).unwrap();
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(json!({"backups": {"s3": s3_settings(&s3, "pb-backups")}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(json!({"filesystem": "backups"})),
    );
    assert_eq!(status, 204, "{body}");

    let (status, body) = call(
        &server,
        "POST",
        "/api/backups",
        Some(json!({"name": "s3_test.zip"})),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(s3.keys("pb-backups"), ["s3_test.zip"]);
    let (ct, stored) = s3
        .object("pb-backups", "s3_test.zip")
        .expect("the backup object");
    assert_eq!(ct, "application/zip");
    assert!(stored.starts_with(b"PK"));
    assert!(!server
        .data_dir()
        .join("backups")
        .join("s3_test.zip")
        .exists());

    // listed with its size, downloadable with a superuser file token
    let (status, list) = call(&server, "GET", "/api/backups", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["key"], "s3_test.zip");
    assert_eq!(list[0]["size"], stored.len() as u64);
    let resp = send(
        &server,
        Request::new(
            "GET",
            &format!("/api/backups/s3_test.zip?token={SUPERUSER_FILE}"),
        ),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/zip"));
    assert_eq!(resp.body, stored);

    // the name is taken now
    let (status, body) = call(
        &server,
        "POST",
        "/api/backups",
        Some(json!({"name": "s3_test.zip"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["name"]["code"], "validation_backup_name_exists",
        "{body}"
    );

    // uploads go to the bucket too
    let (status, body) = upload(
        &server,
        "POST",
        "/api/backups/upload",
        &[("file", "uploaded.zip", "application/zip", &stored)],
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(s3.keys("pb-backups"), ["s3_test.zip", "uploaded.zip"]);

    // a restore takes the archive from the bucket and restarts on its data
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(json!({"meta": {"appName": "changed_after_backup"}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server, "POST", "/api/backups/s3_test.zip/restore", None);
    assert_eq!(status, 204, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let name = Request::new("GET", "/api/settings")
            .header("Authorization", SUPERUSER)
            .header("Host", &format!("127.0.0.1:{}", server.port()))
            .header("Connection", "close")
            .timeout(Duration::from_secs(5))
            .send(server.port())
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v["meta"]["appName"].as_str().map(str::to_string));
        if name.as_deref() == Some("acme_test") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore did not bring the old app name back ({name:?})\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!server.data_dir().join(".pb_temp_to_delete").exists());

    // deletes: gone from the bucket, a second delete is a 400
    let (status, body) = call(&server, "DELETE", "/api/backups/s3_test.zip", None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(s3.keys("pb-backups"), ["uploaded.zip"]);
    let (status, body) = call(&server, "DELETE", "/api/backups/s3_test.zip", None);
    assert_eq!(status, 400, "{body}");
    let resp = send(
        &server,
        Request::new(
            "GET",
            &format!("/api/backups/s3_test.zip?token={SUPERUSER_FILE}"),
        ),
    );
    assert_eq!(resp.status, 404);
}

//! `request-otp` scenarios of PocketBase's `record_auth_otp_request_test.go` that need Go there
//! (OTP rows made with `core.NewOTP`, the test mailer): here the rows are inserted into a copy
//! of the fixture's SQLite before the server starts, mail goes to a real SMTP sink on loopback,
//! and every check is made over HTTP.
//!
//! Not ported: "existing auth record with intercepted email" (a Go hook stops the mail:
//! asserts Go hook behaviour only) and the transaction-hook scenario.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same tests run against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::smtp::{smtp_sink, Delivered};
use pocketbun_tests::{copy_dir, Server, ServerSpec};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::Duration;

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
const HASH: &str = "$2a$10$0CUWH81tPWUhxKqksZnO/eDfJiWTTG/xg7v5Yg8RhcLIGWY3oeCHe";
const USER_ID: &str = "4q1xlclmfloku33";

/// A server on a copy of the fixture with OTPs `otp_0..otp_{total-1}` for users
/// test@example.com, the last `expired` of them 3 years old; its mail goes to an SMTP sink.
fn stubbed(total: usize, expired: usize) -> (tempfile::TempDir, Server, mpsc::Receiver<Delivered>) {
    let fixture = fixture_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path()).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("data.db")).unwrap();
        for i in 0..total {
            // distinct ages, the highest index the newest (PocketBase answers the newest)
            let age = if i >= total - expired {
                "-3 years".to_string()
            } else {
                format!("-{} seconds", total - i)
            };
            conn.execute(
                "INSERT INTO _otps (id, collectionRef, recordRef, password, created, updated) \
                 VALUES (?1, '_pb_users_auth_', ?2, ?3, strftime('%Y-%m-%d %H:%M:%fZ', 'now', ?4), \
                 strftime('%Y-%m-%d %H:%M:%fZ', 'now', ?4))",
                rusqlite::params![format!("otp_{i}"), USER_ID, HASH, age],
            )
            .unwrap();
        }
    }
    let server =
        Server::start(&ServerSpec::from_env(), Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let (port, mail) = smtp_sink();
    let patch = json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": port}});
    let (status, text) = call(&server, "PATCH", "/api/settings", Some(SUPERUSER), &patch);
    assert_eq!(status, 200, "{text}");
    (dir, server, mail)
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, String) {
    let raw = body.to_string();
    server.call(method, path, token, &raw)
}

fn request_otp(server: &Server, email: &str) -> (u16, Value, String) {
    let (status, text) = call(
        server,
        "POST",
        "/api/collections/users/request-otp",
        None,
        &json!({ "email": email }),
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

fn otps_sent_to(server: &Server, email: &str) -> i64 {
    let (status, text) = call(
        server,
        "GET",
        &format!("/api/collections/_otps/records?filter=sentTo='{email}'"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["totalItems"]
        .as_i64()
        .unwrap()
}

/// Waits briefly for a mail: PocketBase sends it after answering.
fn no_mail(mail: &mpsc::Receiver<Delivered>) -> bool {
    mail.recv_timeout(Duration::from_millis(1500)).is_err()
}

#[test]
fn fewer_than_nine_live_otps_get_a_new_one_by_mail() {
    // "existing auth record (with < 9 non-expired)": 8 live + 2 expired
    let (_dir, s, mail) = stubbed(10, 2);
    let (status, body, text) = request_otp(&s, "test@example.com");
    assert_eq!(status, 200, "{text}");
    let otp_id = body["otpId"].as_str().unwrap();
    assert!(!otp_id.is_empty() && !otp_id.starts_with("otp_"), "{text}");
    let delivered = mail
        .recv_timeout(Duration::from_secs(20))
        .expect("no OTP mail");
    assert!(
        delivered
            .rcpt_to
            .iter()
            .any(|r| r.contains("test@example.com")),
        "{:?}",
        delivered.rcpt_to
    );
    // the new OTP is stored
    let (status, text) = call(
        &s,
        "GET",
        &format!("/api/collections/_otps/records?filter=recordRef='{USER_ID}'"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(otp_id), "{text}");
    // the OTP records where it went once the mail is out (after the answer: waited for)
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while otps_sent_to(&s, "test@example.com") != 1 {
        assert!(
            std::time::Instant::now() < end,
            "no OTP with sentTo test@example.com"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // "missing auth record": an otpId all the same, no mail
    let (status, body, text) = request_otp(&s, "missing@example.com");
    assert_eq!(status, 200, "{text}");
    assert!(
        body["otpId"].as_str().is_some_and(|id| !id.is_empty()),
        "{text}"
    );
    assert!(no_mail(&mail));

    // "auth collection with disabled otp"
    let (status, text) = call(
        &s,
        "PATCH",
        "/api/collections/users",
        Some(SUPERUSER),
        &json!({"otp": {"enabled": false}}),
    );
    assert_eq!(status, 200, "{text}");
    let (status, _, text) = request_otp(&s, "test@example.com");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains(r#""data":{}"#), "{text}");
}

#[test]
fn nine_or_more_live_otps_reuse_the_newest_without_mail() {
    // "existing auth record (with > 9 non-expired)": 10 live; the last one is answered
    let (_dir, s, mail) = stubbed(10, 0);
    let (status, body, text) = request_otp(&s, "test@example.com");
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["otpId"], "otp_9", "{text}");
    assert!(no_mail(&mail));
}

#[test]
fn request_otp_rate_limit_labels() {
    // "RateLimit rule - users:requestOTP" and "... *:requestOTP" (maxRequests 1: the settings
    // API refuses PocketBase's 0)
    let (_dir, s, _mail) = stubbed(0, 0);
    for label in ["users:requestOTP", "*:requestOTP"] {
        let rules = json!({"rateLimits": {"enabled": true, "rules": [
            {"label": "abc", "maxRequests": 100, "duration": 60},
            {"label": label, "maxRequests": 1, "duration": 60}
        ]}});
        let (status, text) = call(&s, "PATCH", "/api/settings", Some(SUPERUSER), &rules);
        assert_eq!(status, 200, "{text}");
        assert_eq!(request_otp(&s, "missing@example.com").0, 200, "{label}");
        let (status, _, text) = request_otp(&s, "missing@example.com");
        assert_eq!(status, 429, "{label}: {text}");
        assert!(text.contains(r#""data":{}"#), "{label}: {text}");
    }
}

//! `confirm-password-reset` scenarios of PocketBase's `record_auth_password_reset_confirm_test.go`
//! that need Go there (the user's state is changed in Go first): here the same state is set in
//! a copy of the fixture's SQLite before the server starts, the test's own static reset token
//! (signed with the fixture's keys, valid until 2050) is used, and every check is over HTTP.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same tests run against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::{copy_dir, Server, ServerSpec};
use serde_json::{json, Value};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// PocketBase's test token: passwordReset of users test@example.com (4q1xlclmfloku33).
const RESET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsImV4cCI6MjUyNDYwNDQ2MSwidHlwZSI6InBhc3N3b3JkUmVzZXQiLCJjb2xsZWN0aW9uSWQiOiJfcGJfdXNlcnNfYXV0aF8iLCJlbWFpbCI6InRlc3RAZXhhbXBsZS5jb20ifQ.xR-xq1oHDy0D8Q4NDOAEyYKGHWd_swzoiSoL8FLFBHY";
const USER_ID: &str = "4q1xlclmfloku33";

/// A server on a copy of the fixture after `sql` ran on it.
fn server_after(sql: &str) -> (tempfile::TempDir, Server) {
    let fixture = fixture_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path()).unwrap();
    if !sql.is_empty() {
        let conn = rusqlite::Connection::open(dir.path().join("data.db")).unwrap();
        conn.execute_batch(sql).unwrap();
    }
    let server =
        Server::start(&ServerSpec::from_env(), Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    (dir, server)
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, String) {
    let raw = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    server.call(method, path, token, &raw)
}

fn confirm(server: &Server) -> (u16, String) {
    let body = json!({"token": RESET, "password": "1234567!", "passwordConfirm": "1234567!"});
    call(
        server,
        "POST",
        "/api/collections/users/confirm-password-reset",
        None,
        &body,
    )
}

fn user(server: &Server) -> Value {
    let (status, text) = call(
        server,
        "GET",
        &format!("/api/collections/users/records/{USER_ID}"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn links(server: &Server) -> i64 {
    let (status, text) = call(
        server,
        "GET",
        &format!("/api/collections/_externalAuths/records?filter=recordRef='{USER_ID}'"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["totalItems"]
        .as_i64()
        .unwrap()
}

/// Whether `password` is the user's (the fixture's users have MFA on: the right password is
/// answered with the MFA challenge, a wrong one with 400).
fn password_is(server: &Server, email: &str, password: &str) -> bool {
    let body = json!({"identity": email, "password": password});
    let (status, text) = call(
        server,
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        &body,
    );
    match status {
        200 => true,
        401 => text.contains("mfaId"),
        _ => false,
    }
}

/// The token was used: a second confirm is refused.
fn assert_used(server: &Server) {
    let (status, text) = confirm(server);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("validation_invalid_token"), "{text}");
}

#[test]
fn unverified_user_is_verified_by_the_reset() {
    // "valid token and data (unverified user)"
    let (_dir, s) = server_after("");
    assert_eq!(
        (user(&s)["verified"].as_bool(), links(&s)),
        (Some(false), 2)
    );
    let (status, text) = confirm(&s);
    assert_eq!(status, 204, "{text}");
    assert_eq!(user(&s)["verified"], true);
    assert!(password_is(&s, "test@example.com", "1234567!"));
    assert!(!password_is(&s, "test@example.com", "1234567890"));
    // the email was proven: links made before it are dropped
    assert_eq!(links(&s), 0);
    assert_used(&s);
}

#[test]
fn reset_for_another_email_does_not_verify() {
    // "valid token and data (unverified user with different email from the one in the token)"
    let (_dir, s) = server_after(&format!(
        "UPDATE users SET email = 'test_update@example.com' WHERE id = '{USER_ID}'"
    ));
    let (status, text) = confirm(&s);
    assert_eq!(status, 204, "{text}");
    assert_eq!(user(&s)["verified"], false);
    assert!(password_is(&s, "test_update@example.com", "1234567!"));
    assert_eq!(links(&s), 2);
    assert_used(&s);
}

#[test]
fn verified_user_keeps_its_links() {
    // "valid token and data (verified user)"
    let (_dir, s) = server_after(&format!(
        "UPDATE users SET verified = 1 WHERE id = '{USER_ID}'"
    ));
    let (status, text) = confirm(&s);
    assert_eq!(status, 204, "{text}");
    assert_eq!(user(&s)["verified"], true);
    assert!(password_is(&s, "test@example.com", "1234567!"));
    assert_eq!(links(&s), 2);
    assert_used(&s);
}

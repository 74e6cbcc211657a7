//! `auth-with-otp` scenarios of PocketBase's `record_auth_with_otp_test.go` that need Go there
//! (OTP rows made with `core.NewOTP`): here the rows are inserted into a copy of the fixture's
//! SQLite before the server starts (password hash made by PocketBase, `created` from SQLite's
//! clock), and every check is made over HTTP.
//!
//! Not ported: "POST:/api/collections/users/auth-with-otp" (a Go hook makes the transaction
//! fail: asserts Go hook behaviour only).
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same tests run against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::{copy_dir, Server, ServerSpec};
use serde_json::{json, Value};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// bcrypt of "1234567890", made by PocketBase: the stub OTPs' password.
const HASH: &str = "$2a$10$0CUWH81tPWUhxKqksZnO/eDfJiWTTG/xg7v5Yg8RhcLIGWY3oeCHe";
const USER_ID: &str = "4q1xlclmfloku33";

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value, String) {
    let raw = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = server.call(method, path, token, &raw);
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

fn auth_with_otp(server: &Server, otp_id: &str, password: &str) -> (u16, Value, String) {
    call(
        server,
        "POST",
        "/api/collections/users/auth-with-otp",
        None,
        &json!({"otpId": otp_id, "password": password}),
    )
}

fn total(server: &Server, collection: &str, filter: &str) -> i64 {
    let (status, body, text) = call(
        server,
        "GET",
        &format!("/api/collections/{collection}/records?filter={filter}"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{text}");
    body["totalItems"].as_i64().unwrap()
}

fn user(server: &Server) -> Value {
    let (status, body, text) = call(
        server,
        "GET",
        &format!("/api/collections/users/records/{USER_ID}"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{text}");
    body
}

fn patch_users(server: &Server, body: Value) {
    let (status, _, text) = call(
        server,
        "PATCH",
        "/api/collections/users",
        Some(SUPERUSER),
        &body,
    );
    assert_eq!(status, 200, "{text}");
}

#[test]
fn auth_with_otp_scenarios() {
    let fixture = fixture_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path()).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("data.db")).unwrap();
        // (id, collection, record, sentTo, age)
        let rows = [
            (
                "otpclients00001",
                "v851q4r790rhknl",
                "gk390qegs4y47wn",
                "",
                "+0 seconds",
            ),
            ("otpexpired00001", "_pb_users_auth_", USER_ID, "", "-1 hour"),
            (
                "otpwrongpass001",
                "_pb_users_auth_",
                USER_ID,
                "",
                "+0 seconds",
            ),
            (
                "otpmfa000000001",
                "_pb_users_auth_",
                USER_ID,
                "",
                "+0 seconds",
            ),
            (
                "otpnosentto0001",
                "_pb_users_auth_",
                USER_ID,
                "",
                "+0 seconds",
            ),
            (
                "otpsentto000001",
                "_pb_users_auth_",
                USER_ID,
                "test@example.com",
                "+0 seconds",
            ),
        ];
        for (id, coll, record, sent_to, age) in rows {
            conn.execute(
                "INSERT INTO _otps (id, collectionRef, recordRef, password, sentTo, created, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, strftime('%Y-%m-%d %H:%M:%fZ', 'now', ?6), \
                 strftime('%Y-%m-%d %H:%M:%fZ', 'now', ?6))",
                rusqlite::params![id, coll, record, HASH, sent_to, age],
            )
            .unwrap();
        }
    }
    let s =
        Server::start(&ServerSpec::from_env(), Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let refused = |(status, _, text): (u16, Value, String), what: &str| {
        assert_eq!(status, 400, "{what}: {text}");
        assert!(text.contains(r#""data":{}"#), "{what}: {text}");
    };

    refused(auth_with_otp(&s, "missing", "1234567890"), "missing otp");
    refused(
        auth_with_otp(&s, "otpclients00001", "1234567890"),
        "otp for different collection",
    );
    refused(
        auth_with_otp(&s, "otpwrongpass001", "123456"),
        "otp with wrong password",
    );
    refused(
        auth_with_otp(&s, "otpexpired00001", "1234567890"),
        "expired otp with valid password",
    );

    // "valid otp with valid password (enabled MFA)": the fixture's users ask for a 2nd factor
    let (status, body, text) = auth_with_otp(&s, "otpmfa000000001", "1234567890");
    assert_eq!(status, 401, "{text}");
    assert!(
        body["mfaId"].as_str().is_some_and(|m| !m.is_empty()),
        "{text}"
    );

    patch_users(&s, json!({"mfa": {"enabled": false}}));
    assert_eq!(
        total(&s, "_externalAuths", &format!("recordRef='{USER_ID}'")),
        2
    );

    // "valid otp with valid password and empty sentTo (disabled MFA)": signed in, but the
    // OTP did not prove the email: still unverified, provider links kept
    let (status, body, text) = auth_with_otp(&s, "otpnosentto0001", "1234567890");
    assert_eq!(status, 200, "{text}");
    assert!(
        body["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{text}"
    );
    assert_eq!(body["record"]["email"], "test@example.com", "{text}");
    for absent in [r#""meta":"#, r#""tokenKey""#, r#""password""#] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    assert_eq!(user(&s)["verified"], false);
    assert_eq!(
        total(&s, "_externalAuths", &format!("recordRef='{USER_ID}'")),
        2
    );

    // "valid otp with valid password and nonempty sentTo=email (disabled MFA)": the email is
    // proven: verified, the user's OTPs and (pre-verification) provider links are cleared
    let (status, body, text) = auth_with_otp(&s, "otpsentto000001", "1234567890");
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["record"]["email"], "test@example.com", "{text}");
    assert!(!text.contains(r#""meta":"#), "{text}");
    assert_eq!(user(&s)["verified"], true);
    assert_eq!(total(&s, "_otps", &format!("recordRef='{USER_ID}'")), 0);
    assert_eq!(
        total(&s, "_externalAuths", &format!("recordRef='{USER_ID}'")),
        0
    );

    // "auth collection with disabled otp"
    patch_users(&s, json!({"otp": {"enabled": false}}));
    let (status, _, text) = auth_with_otp(&s, "otpclients00001", "1234567890");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains(r#""data":{}"#), "{text}");
}

/// The "RateLimit rule - ..." scenarios: the rules (with `maxRequests` 0, which settings
/// validation refuses, as the Go test sets them in memory) are written to the stored settings
/// of a fixture copy before the start.
#[test]
fn rate_limit_rules_of_auth_with_otp() {
    let cases = [
        (
            "RateLimit rule - users:authWithOTP",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authWithOTP"},{"maxRequests":100,"label":"users:auth"},{"maxRequests":0,"label":"users:authWithOTP"}]"#,
        ),
        (
            "RateLimit rule - *:authWithOTP",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:auth"},{"maxRequests":0,"label":"*:authWithOTP"}]"#,
        ),
        (
            "RateLimit rule - users:auth",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authWithOTP"},{"maxRequests":0,"label":"users:auth"}]"#,
        ),
        (
            "RateLimit rule - *:auth",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:auth"}]"#,
        ),
    ];
    let mut failures = Vec::new();
    for (name, rules) in cases {
        let fixture = pocketbun_tests::fixture::EditedFixture::new(|db| {
            db.execute(
                "UPDATE _params SET value = json_set(value, '$.rateLimits.enabled', json('true'), \
                 '$.rateLimits.rules', json(?1)) WHERE id = 'settings'",
                [rules],
            )
            .expect("rate limit rules");
        });
        let server = Server::start(&ServerSpec::from_env(), Some(fixture.path())).unwrap();
        let (status, _, text) = call(
            &server,
            "POST",
            "/api/collections/users/auth-with-otp",
            None,
            &Value::Null,
        );
        if status != 429 || !text.contains(r#""data":{}"#) {
            failures.push(format!("{name}: {status} {text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

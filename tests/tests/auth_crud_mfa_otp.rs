//! The records API on the `_mfas` and `_otps` system collections: PocketBase's
//! `record_crud_mfa_test.go` and `record_crud_otp_test.go` (16 scenarios each, all needsGo
//! there because `tests.StubMFARecords` / `StubOTPRecords` insert their rows in Go). Here the
//! same stub rows (ids `superuser2_N`, `superuser3_N`, `user1_0`) are inserted into a copy of
//! the fixture's SQLite before the server starts; every scenario's status and content checks
//! are made over HTTP. Only the Go hook counts (`ExpectedEvents`) are not ported.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same tests run against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::{copy_dir, Server, ServerSpec};
use serde_json::Value;

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// users, test@example.com (`4q1xlclmfloku33`): the owner of `user1_0`.
const OWNER: &str = pocketbun_tests::fixture::USER_TOKEN;
/// clients, test@example.com: owns no stub row.
const NON_OWNER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImdrMzkwcWVnczR5NDd3biIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoidjg1MXE0cjc5MHJoa25sIiwiZXhwIjoyNTI0NjA0NDYxLCJyZWZyZXNoYWJsZSI6dHJ1ZX0.0ONnm_BsvPRZyDNT31GN1CKUB6uQRxvVvQ-Wc9AZfG0";

/// A PocketBase bcrypt hash (of "1234567890"): the OTP stubs' password.
const HASH: &str = "$2a$10$0CUWH81tPWUhxKqksZnO/eDfJiWTTG/xg7v5Yg8RhcLIGWY3oeCHe";

/// A copy of the fixture with the stub rows of `table` (`_mfas` or `_otps`), as PocketBase's
/// stub helpers make them.
fn stubbed(table: &str) -> (tempfile::TempDir, Server) {
    let fixture = fixture_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path()).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("data.db")).unwrap();
        let su = |email: &str| -> String {
            conn.query_row(
                "SELECT id FROM _superusers WHERE email = ?1",
                [email],
                |r| r.get(0),
            )
            .unwrap()
        };
        let su_coll: String = conn
            .query_row(
                "SELECT id FROM _collections WHERE name = '_superusers'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let owners = [
            ("superuser2", su("test2@example.com"), su_coll.clone(), 5),
            ("superuser3", su("test3@example.com"), su_coll.clone(), 2),
            (
                "user1",
                "4q1xlclmfloku33".to_string(),
                "_pb_users_auth_".to_string(),
                1,
            ),
        ];
        let now = "2026-01-01 00:00:00.000Z";
        for (stub, record, coll, n) in owners {
            for i in 0..n {
                let id = format!("{stub}_{i}");
                if table == "_mfas" {
                    conn.execute(
                        "INSERT INTO _mfas (id, collectionRef, recordRef, method, created, updated) \
                         VALUES (?1, ?2, ?3, 'otp', ?4, ?4)",
                        rusqlite::params![id, coll, record, now],
                    )
                    .unwrap();
                } else {
                    conn.execute(
                        "INSERT INTO _otps (id, collectionRef, recordRef, password, created, updated) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        rusqlite::params![id, coll, record, HASH, now],
                    )
                    .unwrap();
                }
            }
        }
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
    body: &str,
) -> (u16, Value, String) {
    let (status, text) = server.call(method, path, token, body);
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// One scenario: request, status, and substrings of the body as PocketBase's test expects.
#[allow(clippy::too_many_arguments)]
fn check(
    server: &Server,
    name: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
    status: u16,
    contains: &[&str],
) {
    let (got, _, text) = call(server, method, path, token, body);
    assert_eq!(got, status, "{name}: {method} {path}: {text}");
    for want in contains {
        assert!(text.contains(want), "{name}: {want} not in {text}");
    }
}

fn scenarios(table: &str, create_body: &str, update_body: &str) {
    let (_dir, s) = stubbed(table);
    let list = format!("/api/collections/{table}/records");
    let one = format!("/api/collections/{table}/records/user1_0");
    let empty = [
        r#""page":1"#,
        r#""perPage":30"#,
        r#""totalItems":0"#,
        r#""totalPages":0"#,
        r#""items":[]"#,
    ];
    let mine = [
        r#""page":1"#,
        r#""perPage":30"#,
        r#""totalItems":1"#,
        r#""totalPages":1"#,
        r#""id":"user1_0""#,
    ];
    let forbidden = [r#""data":{}"#];

    // list
    check(&s, "list guest", "GET", &list, None, "", 200, &empty);
    check(
        &s,
        "list regular auth with rows",
        "GET",
        &list,
        Some(OWNER),
        "",
        200,
        &mine,
    );
    check(
        &s,
        "list regular auth without rows",
        "GET",
        &list,
        Some(NON_OWNER),
        "",
        200,
        &empty,
    );
    // view
    check(&s, "view guest", "GET", &one, None, "", 404, &forbidden);
    check(
        &s,
        "view non-owner",
        "GET",
        &one,
        Some(NON_OWNER),
        "",
        404,
        &forbidden,
    );
    check(
        &s,
        "view owner",
        "GET",
        &one,
        Some(OWNER),
        "",
        200,
        &[r#""id":"user1_0""#],
    );
    // create
    check(
        &s,
        "create guest",
        "POST",
        &list,
        None,
        create_body,
        403,
        &forbidden,
    );
    check(
        &s,
        "create owner",
        "POST",
        &list,
        Some(OWNER),
        create_body,
        403,
        &forbidden,
    );
    check(
        &s,
        "create superuser",
        "POST",
        &list,
        Some(SUPERUSER),
        create_body,
        200,
        &[r#""recordRef":"4q1xlclmfloku33""#],
    );
    // update
    check(
        &s,
        "update guest",
        "PATCH",
        &one,
        None,
        update_body,
        403,
        &forbidden,
    );
    check(
        &s,
        "update owner",
        "PATCH",
        &one,
        Some(OWNER),
        update_body,
        403,
        &forbidden,
    );
    check(
        &s,
        "update superuser",
        "PATCH",
        &one,
        Some(SUPERUSER),
        update_body,
        200,
        &[r#""id":"user1_0""#],
    );
    // delete
    check(
        &s,
        "delete guest",
        "DELETE",
        &one,
        None,
        "",
        403,
        &forbidden,
    );
    check(
        &s,
        "delete non-owner",
        "DELETE",
        &one,
        Some(NON_OWNER),
        "",
        403,
        &forbidden,
    );
    check(
        &s,
        "delete owner",
        "DELETE",
        &one,
        Some(OWNER),
        "",
        403,
        &forbidden,
    );
    check(
        &s,
        "delete superuser",
        "DELETE",
        &one,
        Some(SUPERUSER),
        "",
        204,
        &[],
    );
    // the delete happened
    check(
        &s,
        "view after delete",
        "GET",
        &one,
        Some(SUPERUSER),
        "",
        404,
        &[],
    );
}

#[test]
fn mfas_records_api() {
    scenarios(
        "_mfas",
        r#"{"recordRef":"4q1xlclmfloku33","collectionRef":"_pb_users_auth_","method":"abc"}"#,
        r#"{"method":"abc"}"#,
    );
}

#[test]
fn otps_records_api() {
    scenarios(
        "_otps",
        r#"{"recordRef":"4q1xlclmfloku33","collectionRef":"_pb_users_auth_","password":"abc"}"#,
        r#"{"password":"abc"}"#,
    );
}

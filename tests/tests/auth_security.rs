//! Security properties of auth tokens and credentials, end to end against a real server on a
//! copy of the fixture (the issue's "Security tests" that `auth.rs` and `ratelimit.rs` do not
//! already cover: a forged signature, another collection's token and reuse of a used OTP or
//! reset token are there).
//!
//! Tokens are made here with the fixture's real signing keys (the record's `tokenKey` + the
//! collection's per-type secret, read from a copy of the fixture's SQLite): a token signed the
//! right way is accepted, so each refusal below is about the one property changed.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same tests run against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::{Server, ServerSpec};
use serde_json::{json, Value};
use std::path::PathBuf;

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// clients, test@example.com (password 1234567890, no MFA).
const CLIENT_ID: &str = "gk390qegs4y47wn";
const CLIENTS: &str = "v851q4r790rhknl";

fn fixture() -> PathBuf {
    fixture_dir()
}

fn start() -> Server {
    Server::start(&ServerSpec::from_env(), Some(&fixture())).unwrap_or_else(|e| panic!("{e}"))
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = Request::new(method, path)
        .header("Host", "127.0.0.1")
        .header("Connection", "close")
        .header("Content-Type", "application/json")
        .header("Content-Length", &body.len().to_string())
        .body(body.as_bytes().to_vec());
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let resp = req.send(server.port()).unwrap();
    let text = resp.text();
    (
        resp.status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `(record tokenKey, collection secret of token kind `kind`)` from the fixture.
fn keys(collection: &str, record: &str, kind: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    // a copy: the fixture itself is never opened for writing
    std::fs::copy(fixture().join("data.db"), dir.path().join("data.db")).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("data.db")).unwrap();
    let options: String = conn
        .query_row(
            "SELECT options FROM _collections WHERE id = ?1",
            [collection],
            |r| r.get(0),
        )
        .unwrap();
    let name: String = conn
        .query_row(
            "SELECT name FROM _collections WHERE id = ?1",
            [collection],
            |r| r.get(0),
        )
        .unwrap();
    let token_key: String = conn
        .query_row(
            &format!("SELECT tokenKey FROM `{name}` WHERE id = ?1"),
            [record],
            |r| r.get(0),
        )
        .unwrap();
    let options: Value = serde_json::from_str(&options).unwrap();
    let secret = options[kind]["secret"].as_str().unwrap().to_string();
    (token_key, secret)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(claims: &Value, key: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn refresh(server: &Server, token: &str) -> u16 {
    call(
        server,
        "POST",
        "/api/collections/clients/auth-refresh",
        Some(token),
        "",
    )
    .0
}

#[test]
fn crafted_tokens_are_refused_unless_signed_right() {
    let server = start();
    let (token_key, auth_secret) = keys(CLIENTS, CLIENT_ID, "authToken");
    let claims = |exp: i64| json!({"id": CLIENT_ID, "type": "auth", "collectionId": CLIENTS, "exp": exp, "refreshable": true});
    // control: the right key and a future expiry are accepted
    let good = sign(&claims(now() + 3600), &format!("{token_key}{auth_secret}"));
    assert_eq!(refresh(&server, &good), 200);

    // expired
    let expired = sign(&claims(now() - 60), &format!("{token_key}{auth_secret}"));
    assert_eq!(refresh(&server, &expired), 401);

    // `nbf`: not valid yet is refused, already valid is fine (PocketBase checks it too)
    let with_nbf = |nbf: i64| {
        let mut c = claims(now() + 3600);
        c["nbf"] = json!(nbf);
        sign(&c, &format!("{token_key}{auth_secret}"))
    };
    assert_eq!(refresh(&server, &with_nbf(now() + 600)), 401);
    assert_eq!(refresh(&server, &with_nbf(now() - 600)), 200);

    // without the record's tokenKey, or without the collection secret
    assert_eq!(
        refresh(&server, &sign(&claims(now() + 3600), &auth_secret)),
        401
    );
    assert_eq!(
        refresh(&server, &sign(&claims(now() + 3600), &token_key)),
        401
    );

    // signed with another token type's secret (a verification token posing as auth)
    let (_, verification_secret) = keys(CLIENTS, CLIENT_ID, "verificationToken");
    let other = sign(
        &claims(now() + 3600),
        &format!("{token_key}{verification_secret}"),
    );
    assert_eq!(refresh(&server, &other), 401);
    // a right-signed token of another type is no auth token
    let mut verification = claims(now() + 3600);
    verification["type"] = json!("verification");
    verification["email"] = json!("test@example.com");
    let verification = sign(&verification, &format!("{token_key}{verification_secret}"));
    assert_eq!(refresh(&server, &verification), 401);

    // alg "none": the signature is not optional
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(now() + 3600))
    );
    assert_eq!(refresh(&server, &unsigned), 401);

    // the claimed collection must be the record's: same id, another collection's id
    let mut moved = claims(now() + 3600);
    moved["collectionId"] = json!("_pb_users_auth_");
    let moved = sign(&moved, &format!("{token_key}{auth_secret}"));
    assert_eq!(
        call(
            &server,
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&moved),
            ""
        )
        .0,
        401
    );
}

#[test]
fn the_token_of_a_deleted_user_dies_with_it() {
    let server = start();
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/clients/records",
        Some(SUPERUSER),
        r#"{"email":"gone@example.com","verified":true,"password":"1234567890","passwordConfirm":"1234567890"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/clients/auth-with-password",
        None,
        r#"{"identity":"gone@example.com","password":"1234567890"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(refresh(&server, &token), 200);

    let (status, body) = call(
        &server,
        "DELETE",
        &format!("/api/collections/clients/records/{id}"),
        Some(SUPERUSER),
        "",
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(refresh(&server, &token), 401);
}

#[test]
fn brute_force_stops_at_the_rate_limit_even_for_the_right_password() {
    let server = start();
    let settings = r#"{"rateLimits":{"enabled":true,"rules":[{"label":"*:auth","audience":"@guest","duration":600,"maxRequests":3}]}}"#;
    let (status, body) = call(&server, "PATCH", "/api/settings", Some(SUPERUSER), settings);
    assert_eq!(status, 200, "{body}");
    let attempt = |password: &str| {
        call(
            &server,
            "POST",
            "/api/collections/clients/auth-with-password",
            None,
            &format!(r#"{{"identity":"test@example.com","password":"{password}"}}"#),
        )
    };
    for guess in ["guess-1", "guess-2", "guess-3"] {
        let (status, body) = attempt(guess);
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["message"], "Failed to authenticate.");
    }
    // the limit is reached: the right password gets the same 429 as a wrong one
    let (status, body) = attempt("1234567890");
    assert_eq!(status, 429, "{body}");
    assert!(body.get("token").is_none());
    assert_eq!(attempt("guess-4").0, 429);
    // a superuser is not limited and sees the limit did not lock the account itself
    let (status, _) = call(
        &server,
        "POST",
        &format!("/api/collections/clients/impersonate/{CLIENT_ID}"),
        Some(SUPERUSER),
        "{}",
    );
    assert_eq!(status, 200);
}

/// `superuserIPs` applies to every request carrying a superuser token, not only to logins:
/// a token issued earlier is refused from any other IP (403 before routing, even on
/// `/api/health` and unknown routes), also after a restart; other tokens, guests and CORS
/// preflights are unaffected. Same answers from PocketBase 0.40.
#[test]
fn superuser_ip_allow_list_applies_to_issued_tokens() {
    let mut server = start();
    let forbidden = json!({"data": {}, "message": "You are not allowed to perform this request.", "status": 403});
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        r#"{"trustedProxy":{"headers":["x-test-ip"]},"superuserIPs":["10.0.0.0/8"]}"#,
    );
    assert_eq!(status, 200, "{body}");

    let from = |server: &Server, method: &str, path: &str, token: &str, ip: Option<&str>| {
        let body = if method == "POST" { "{}" } else { "" };
        let mut req = Request::new(method, path)
            .header("Host", "127.0.0.1")
            .header("Connection", "close")
            .header("Authorization", token)
            .header("Content-Type", "application/json")
            .header("Content-Length", &body.len().to_string())
            .body(body.as_bytes().to_vec());
        if let Some(ip) = ip {
            req = req.header("x-test-ip", ip);
        }
        let resp = req.send(server.port()).unwrap();
        let text = resp.text();
        (
            resp.status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    };
    let refused = [
        ("GET", "/api/settings"),
        ("PATCH", "/api/settings"),
        ("POST", "/api/collections"),
        ("GET", "/api/logs"),
        ("GET", "/api/backups"),
        ("GET", "/api/health"),
        ("GET", "/api/collections/users/records"),
        ("POST", "/api/collections/_superusers/auth-refresh"),
        ("GET", "/api/no-such-route"),
    ];
    for (method, path) in refused {
        assert_eq!(
            from(&server, method, path, SUPERUSER, None),
            (403, forbidden.clone()),
            "{method} {path} from 127.0.0.1"
        );
        assert_eq!(
            from(&server, method, path, SUPERUSER, Some("192.168.1.1")).0,
            403,
            "{method} {path} from 192.168.1.1"
        );
    }
    // from an allowed IP the token still works
    let (status, body) = from(&server, "GET", "/api/settings", SUPERUSER, Some("10.9.8.7"));
    assert_eq!(status, 200, "{body}");
    // guests and other auth records are not concerned
    let (token_key, auth_secret) = keys(CLIENTS, CLIENT_ID, "authToken");
    let client = sign(
        &json!({"id": CLIENT_ID, "type": "auth", "collectionId": CLIENTS, "exp": now() + 3600, "refreshable": true}),
        &format!("{token_key}{auth_secret}"),
    );
    assert_eq!(refresh(&server, &client), 200);
    assert_eq!(call(&server, "GET", "/api/health", None, "").0, 200);
    // an invalid superuser token is a guest's
    let broken = format!("{SUPERUSER}x");
    assert_eq!(from(&server, "GET", "/api/health", &broken, None).0, 200);
    // CORS preflights are answered before authentication
    let resp = Request::new("OPTIONS", "/api/settings")
        .header("Host", "127.0.0.1")
        .header("Connection", "close")
        .header("Authorization", SUPERUSER)
        .header("Origin", "http://example.com")
        .header("Access-Control-Request-Method", "GET")
        .send(server.port())
        .unwrap();
    assert_eq!(resp.status, 204);

    // the list is a stored setting: a restart keeps refusing the token
    server.stop();
    let restarted = Server::start(&ServerSpec::from_env(), Some(server.data_dir()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        from(&restarted, "GET", "/api/settings", SUPERUSER, None),
        (403, forbidden)
    );
    assert_eq!(
        from(
            &restarted,
            "GET",
            "/api/settings",
            SUPERUSER,
            Some("10.0.0.1")
        )
        .0,
        200
    );
}

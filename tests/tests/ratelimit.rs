//! The rate limiter end to end over a real server process: rules from `rateLimits` (collection
//! tags such as `*:auth` and `users:listAuthMethods`, `METHOD /path` labels, path prefixes,
//! `@guest`/`@auth` audiences), `excludedIPs`, superusers never limited, the client IP taken
//! from the trusted proxy headers (rightmost or leftmost), PocketBase's 429 envelope, and the
//! counters reset by a settings change.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same table runs against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::{Server, ServerSpec};

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// Fixture regular user of `users`.
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

const TOO_MANY: &str = "{\"data\":{},\"message\":\"Too Many Requests.\",\"status\":429}";

const SETTINGS: &str = r#"{
  "trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": false},
  "rateLimits": {
    "enabled": true,
    "excludedIPs": ["10.9.0.0/16", "10.8.7.6"],
    "rules": [
      {"label": "*:auth", "audience": "@guest", "duration": 600, "maxRequests": 2},
      {"label": "users:listAuthMethods", "audience": "", "duration": 600, "maxRequests": 1},
      {"label": "*:list", "audience": "@auth", "duration": 600, "maxRequests": 2},
      {"label": "GET /api/health", "audience": "", "duration": 600, "maxRequests": 3},
      {"label": "/api/settings/", "audience": "", "duration": 600, "maxRequests": 1},
      {"label": "/api/", "audience": "", "duration": 600, "maxRequests": 4}
    ]
  }
}"#;

struct Row {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    token: Option<&'static str>,
    /// `X-Forwarded-For` (the trusted proxy header).
    xff: &'static str,
    body: &'static str,
    /// The statuses of the requests sent one after the other.
    expect: &'static [u16],
}

const PASSWORD_AUTH: &str = r#"{"identity":"nobody@example.com","password":"wrong-password"}"#;

/// Each row uses its own client IPs unless it shares them on purpose (noted).
const ROWS: &[Row] = &[
    Row {
        what: "guests: *:auth@guest on auth-with-password",
        method: "POST",
        path: "/api/collections/users/auth-with-password",
        token: None,
        xff: "1.1.1.1",
        body: PASSWORD_AUTH,
        expect: &[400, 400, 429, 429],
    },
    Row {
        what: "same client, same rule, another route: a limiter of its own",
        method: "POST",
        path: "/api/collections/users/auth-with-otp",
        token: None,
        xff: "1.1.1.1",
        body: r#"{"otpId":"missing","password":"123456"}"#,
        expect: &[400, 400, 429],
    },
    Row {
        what: "same client, same route, another collection: a limiter of its own",
        method: "POST",
        path: "/api/collections/clients/auth-with-password",
        token: None,
        xff: "1.1.1.1",
        body: PASSWORD_AUTH,
        expect: &[400, 400, 429],
    },
    Row {
        what: "the rightmost IP of the trusted header is the client (fresh counters)",
        method: "POST",
        path: "/api/collections/users/auth-with-password",
        token: None,
        xff: "1.1.1.1, 2.2.2.2",
        body: PASSWORD_AUTH,
        expect: &[400, 400, 429],
    },
    Row {
        what: "excludedIPs: a subnet",
        method: "POST",
        path: "/api/collections/users/auth-with-password",
        token: None,
        xff: "10.9.3.4",
        body: PASSWORD_AUTH,
        expect: &[400, 400, 400, 400, 400, 400],
    },
    Row {
        what: "excludedIPs: a single IP",
        method: "GET",
        path: "/api/health",
        token: None,
        xff: "10.8.7.6",
        body: "",
        expect: &[200, 200, 200, 200, 200],
    },
    Row {
        what: "superusers are never limited",
        method: "GET",
        path: "/api/health",
        token: Some(SUPERUSER),
        xff: "3.3.3.3",
        body: "",
        expect: &[200, 200, 200, 200, 200],
    },
    Row {
        what: "METHOD /path label",
        method: "GET",
        path: "/api/health",
        token: None,
        xff: "4.4.4.4",
        body: "",
        expect: &[200, 200, 200, 429],
    },
    Row {
        what: "another method on the same path falls to the /api/ prefix rule",
        method: "HEAD",
        path: "/api/health",
        token: None,
        xff: "4.4.4.4",
        body: "",
        expect: &[200, 200, 200, 200, 429],
    },
    Row {
        what: "collection:action label",
        method: "GET",
        path: "/api/collections/users/auth-methods",
        token: None,
        xff: "5.5.5.5",
        body: "",
        expect: &[200, 429],
    },
    Row {
        what: "auth records: *:auth@guest does not apply, the /api/ prefix rule does",
        method: "POST",
        path: "/api/collections/users/auth-with-password",
        token: Some(USER),
        xff: "6.6.6.6",
        body: PASSWORD_AUTH,
        expect: &[400, 400, 400, 400, 429],
    },
    Row {
        what: "*:list@auth for an auth record",
        method: "GET",
        path: "/api/collections/demo2/records?perPage=1",
        token: Some(USER),
        xff: "7.7.7.7",
        body: "",
        expect: &[200, 200, 429],
    },
    Row {
        what: "*:list@auth does not apply to guests: the /api/ rule in the collection's limiter",
        method: "GET",
        path: "/api/collections/demo2/records?perPage=1",
        token: None,
        xff: "8.8.8.8",
        body: "",
        expect: &[200, 200, 200, 200, 429],
    },
    Row {
        what: "a path prefix rule covers its own path without the trailing slash",
        method: "GET",
        path: "/api/settings",
        token: Some(USER),
        xff: "9.9.9.9",
        body: "",
        expect: &[403, 429],
    },
    Row {
        what: "paths no rule matches are not limited",
        method: "GET",
        path: "/_/nothing-here",
        token: None,
        xff: "11.11.11.11",
        body: "",
        expect: &[404, 404, 404, 404, 404, 404, 404],
    },
];

#[test]
fn rules_audiences_excluded_ips_and_trusted_proxy() {
    let server = start();
    let (status, body) = send(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        "",
        SETTINGS,
    );
    assert_eq!(status, 200, "{body}");

    for row in ROWS {
        for (i, want) in row.expect.iter().enumerate() {
            let (status, body) = send(&server, row.method, row.path, row.token, row.xff, row.body);
            assert_eq!(
                status,
                *want,
                "{}: request {} of {} {} from {}: {body}",
                row.what,
                i + 1,
                row.method,
                row.path,
                row.xff
            );
            if status == 429 && row.method != "HEAD" {
                assert_eq!(body, TOO_MANY, "{}", row.what);
            }
        }
    }

    // useLeftmostIP: the leftmost valid IP of the header is the client
    let patch = r#"{"trustedProxy":{"headers":["X-Forwarded-For"],"useLeftmostIP":true}}"#;
    let (status, body) = send(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        "",
        patch,
    );
    assert_eq!(status, 200, "{body}");
    let health = |xff| send(&server, "GET", "/api/health", None, xff, "").0;
    for _ in 0..3 {
        assert_eq!(health("12.12.12.12, 13.13.13.13"), 200);
    }
    assert_eq!(health("12.12.12.12"), 429);
    assert_eq!(health("not-an-ip, 12.12.12.12, 14.14.14.14"), 429);
    assert_eq!(health("13.13.13.13"), 200);

    // a settings change starts every counter over
    let patch = r#"{"meta":{"appName":"rate limited"}}"#;
    let (status, body) = send(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        "",
        patch,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(health("12.12.12.12"), 200);

    // off again: nothing is limited
    let patch = r#"{"rateLimits":{"enabled":false}}"#;
    let (status, body) = send(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        "",
        patch,
    );
    assert_eq!(status, 200, "{body}");
    for _ in 0..8 {
        assert_eq!(health("12.12.12.12"), 200);
    }
}

#[test]
fn without_trusted_headers_the_peer_is_the_client() {
    let server = start();
    let settings = r#"{"rateLimits":{"enabled":true,"rules":[{"label":"GET /api/health","duration":600,"maxRequests":2}]}}"#;
    let (status, body) = send(
        &server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        "",
        settings,
    );
    assert_eq!(status, 200, "{body}");
    // X-Forwarded-For is not trusted: every request is 127.0.0.1's
    assert_eq!(
        send(&server, "GET", "/api/health", None, "1.2.3.4", "").0,
        200
    );
    assert_eq!(
        send(&server, "GET", "/api/health", None, "5.6.7.8", "").0,
        200
    );
    let (status, body) = send(&server, "GET", "/api/health", None, "9.9.9.9", "");
    assert_eq!((status, body.as_str()), (429, TOO_MANY));
    // CORS and security headers are on the 429 as on any answer
    let resp = Request::new("GET", "/api/health")
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Origin", "http://example.com")
        .header("Connection", "close")
        .send(server.port())
        .unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(resp.header("X-Frame-Options"), Some("SAMEORIGIN"));
}

fn start() -> Server {
    let fixture = fixture_dir();
    Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"))
}

fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    xff: &str,
    body: &str,
) -> (u16, String) {
    let mut req = Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close");
    if !xff.is_empty() {
        req = req.header("X-Forwarded-For", xff);
    }
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let resp = req
        .json_body(body)
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver log:\n{}", server.log()));
    (resp.status, resp.text())
}

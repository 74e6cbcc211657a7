//! Ports of the `needsGo` scenarios of PocketBase's `apis/record_auth_with_password_test.go`
//! (and the rate-limit ones of `record_auth_refresh_test.go` / `record_auth_methods_test.go`):
//! the Go setup (records saved without validation, an MFA row, collection options, rate
//! limit rules set in memory) is redone by editing a copy of the fixture's `data.db` before
//! the server starts, or over the HTTP API; the Go assertions on app state are checked over
//! the API, in the SMTP sink, or in `data.db`.
//!
//! Not portable: "OnRecordAuthWithPasswordRequest tx body write check" and
//! "OnRecordAuthRefreshRequest tx body write check" only assert what a Go hook wrapping the
//! handler in a transaction sees.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same table runs against PocketBase itself.

use pocketbun_tests::fixture::EditedFixture;
use pocketbun_tests::smtp::{smtp_sink, unquote};
use pocketbun_tests::{Server, ServerSpec};
use serde_json::Value;
use std::time::Duration;

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// `users` record `test@example.com`.
const USER_ID: &str = "4q1xlclmfloku33";
const USERS_ID: &str = "_pb_users_auth_";
/// `clients` record `test@example.com` / `clients57772`.
const CLIENT_ID: &str = "gk390qegs4y47wn";

/// Fixture user `test@example.com` of `users`.
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

const EMAIL_LOGIN: &str = r#"{"identity":"test@example.com","password":"1234567890"}"#;

/// What a case does before its request.
enum Setup {
    None,
    /// SQL run on the copy of `data.db` (Go's `SaveNoValidate`, in-memory settings).
    Sql(&'static str),
    /// The identity index collations of `clients` (Go's `updateIdentityIndex`), over the API.
    ClientsCollate(&'static [(&'static str, &'static str)]),
    /// Enable MFA on `users` with this rule, over the API.
    UsersMfaRule(&'static str),
    /// Rate limiting on with these rules, written to the stored settings: validation requires
    /// `maxRequests >= 1` and the Go test sets 0 in memory.
    RateLimitRules(&'static str),
}

/// What a case checks after its response, beyond status and content.
enum After {
    Nothing,
    /// `_mfas` rows of the `users` record afterwards.
    UserMfas(usize),
    /// A new `_authOrigins` row for the `clients` record and an alert mail to its address.
    NewOriginAlerted,
}

struct Case {
    name: &'static str,
    /// `auth-with-password` of this collection, unless `request` is set.
    collection: &'static str,
    /// Another request: method, path, user token.
    request: Option<(&'static str, &'static str, Option<&'static str>)>,
    body: &'static str,
    setup: Setup,
    status: u16,
    contains: &'static [&'static str],
    after: After,
}

const HIDDEN: [&str; 2] = [r#""tokenKey""#, r#""password""#];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "valid identity field (email) and valid password",
            collection: "clients",
            request: None,
            body: EMAIL_LOGIN,
            setup: Setup::None,
            status: 200,
            contains: &[r#""email":"test@example.com""#, r#""token":"#],
            after: After::NewOriginAlerted,
        },
        Case {
            name: "valid non-email identity field with a value that is a properly formatted email",
            collection: "clients",
            request: None,
            body: r#"{"identity":"username_as_email@example.com","password":"1234567890"}"#,
            setup: Setup::Sql(
                "UPDATE clients SET username = 'username_as_email@example.com' \
                 WHERE email = 'test@example.com'",
            ),
            status: 200,
            contains: &[
                r#""email":"test@example.com""#,
                r#""username":"username_as_email@example.com""#,
                r#""token":"#,
            ],
            after: After::Nothing,
        },
        Case {
            name: "with mfa first auth check",
            collection: "users",
            request: None,
            body: EMAIL_LOGIN,
            setup: Setup::None,
            status: 401,
            contains: &[r#""mfaId":""#],
            after: After::UserMfas(1),
        },
        Case {
            name: "with mfa second auth check",
            collection: "users",
            request: None,
            body: r#"{"mfaId":"aaaaaaaaaaaaaaa","identity":"test@example.com","password":"1234567890"}"#,
            setup: Setup::Sql(
                "INSERT INTO _mfas (id, collectionRef, recordRef, method, created, updated) \
                 VALUES ('aaaaaaaaaaaaaaa', '_pb_users_auth_', '4q1xlclmfloku33', 'test', \
                 strftime('%Y-%m-%d %H:%M:%fZ'), strftime('%Y-%m-%d %H:%M:%fZ'))",
            ),
            status: 200,
            contains: &[r#""email":"test@example.com""#, r#""token":"#],
            // the completed MFA is used up
            after: After::UserMfas(0),
        },
        Case {
            name: "with enabled mfa but unsatisfied mfa rule (aka. skip the mfa check)",
            collection: "users",
            request: None,
            body: EMAIL_LOGIN,
            setup: Setup::UsersMfaRule("1=2"),
            status: 200,
            contains: &[r#""email":"test@example.com""#, r#""token":"#],
            after: After::UserMfas(0),
        },
        Case {
            name: "with explicit identityField (case-sensitive)",
            collection: "clients",
            request: None,
            body: r#"{"identityField":"username","identity":"Clients57772","password":"1234567890"}"#,
            setup: Setup::ClientsCollate(&[("username", "")]),
            status: 400,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "with explicit identityField (case-insensitive)",
            collection: "clients",
            request: None,
            body: r#"{"identityField":"username","identity":"Clients57772","password":"1234567890"}"#,
            setup: Setup::ClientsCollate(&[("username", "nocase")]),
            status: 200,
            contains: &[
                r#""email":"test@example.com""#,
                r#""username":"clients57772""#,
                r#""token":"#,
            ],
            after: After::Nothing,
        },
        Case {
            name: "without explicit identityField and non-email field (case-insensitive)",
            collection: "clients",
            request: None,
            body: r#"{"identity":"Clients57772","password":"1234567890"}"#,
            setup: Setup::ClientsCollate(&[("username", "nocase")]),
            status: 200,
            contains: &[
                r#""email":"test@example.com""#,
                r#""username":"clients57772""#,
                r#""token":"#,
            ],
            after: After::Nothing,
        },
        Case {
            name: "without explicit identityField and email field (case-insensitive)",
            collection: "clients",
            request: None,
            body: r#"{"identity":"tESt@example.com","password":"1234567890"}"#,
            setup: Setup::ClientsCollate(&[("email", "nocase")]),
            status: 200,
            contains: &[
                r#""email":"test@example.com""#,
                r#""username":"clients57772""#,
                r#""token":"#,
            ],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - users:authWithPassword",
            collection: "users",
            request: None,
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authWithPassword"},{"maxRequests":100,"label":"users:auth"},{"maxRequests":0,"label":"users:authWithPassword"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - *:authWithPassword",
            collection: "users",
            request: None,
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:auth"},{"maxRequests":0,"label":"*:authWithPassword"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - users:auth",
            collection: "users",
            request: None,
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authWithPassword"},{"maxRequests":0,"label":"users:auth"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - *:auth",
            collection: "users",
            request: None,
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:auth"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - users:authRefresh",
            collection: "users",
            request: Some(("POST", "/api/collections/users/auth-refresh", Some(USER))),
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authRefresh"},{"maxRequests":0,"label":"users:authRefresh"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - *:authRefresh",
            collection: "users",
            request: Some(("POST", "/api/collections/users/auth-refresh", Some(USER))),
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:authRefresh"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - nologin:listAuthMethods",
            collection: "nologin",
            request: Some(("GET", "/api/collections/nologin/auth-methods", None)),
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:listAuthMethods"},{"maxRequests":0,"label":"nologin:listAuthMethods"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
        Case {
            name: "RateLimit rule - *:listAuthMethods",
            collection: "nologin",
            request: Some(("GET", "/api/collections/nologin/auth-methods", None)),
            body: "",
            setup: Setup::RateLimitRules(
                r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:listAuthMethods"}]"#,
            ),
            status: 429,
            contains: &[r#""data":{}"#],
            after: After::Nothing,
        },
    ]
}

#[test]
fn needs_go_scenarios_of_auth_with_password() {
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(e) = run(&case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn run(case: &Case) -> Result<(), String> {
    let fixture = EditedFixture::new(|db| match case.setup {
        Setup::RateLimitRules(rules) => {
            db.execute(
                "UPDATE _params SET value = json_set(value, '$.rateLimits.enabled', json('true'), \
                 '$.rateLimits.rules', json(?1)) WHERE id = 'settings'",
                [rules],
            )
            .expect("rate limit rules");
        }
        Setup::Sql(sql) => {
            db.execute_batch(sql).expect("setup SQL");
        }
        _ => {}
    });
    let server = Server::start(&ServerSpec::from_env(), Some(fixture.path()))?;
    match case.setup {
        Setup::ClientsCollate(collations) => set_clients_collations(&server, collations)?,
        Setup::UsersMfaRule(rule) => {
            let body = format!(r#"{{"mfa":{{"enabled":true,"rule":"{rule}"}}}}"#);
            let (status, text) =
                server.call("PATCH", "/api/collections/users", Some(SUPERUSER), &body);
            if status != 200 {
                return Err(format!("enabling MFA: {status} {text}"));
            }
        }
        _ => {}
    }
    let mail = match case.after {
        After::NewOriginAlerted => Some(with_smtp(&server)?),
        _ => None,
    };
    let origins_before = origins_of(&server, CLIENT_ID)?;

    let login = format!("/api/collections/{}/auth-with-password", case.collection);
    let (method, path, token) = match case.request {
        Some((method, path, token)) => (method, path.to_string(), token),
        None => ("POST", login, None),
    };
    let (status, text) = server.call(method, &path, token, case.body);
    if status != case.status {
        return Err(format!("status {status}, want {}: {text}", case.status));
    }
    for part in case.contains {
        if !text.contains(part) {
            return Err(format!("{part} missing in {text}"));
        }
    }
    if status == 200 {
        for hidden in HIDDEN {
            if text.contains(hidden) {
                return Err(format!("hidden {hidden} answered in {text}"));
            }
        }
    }

    match case.after {
        After::Nothing => {}
        After::UserMfas(want) => {
            let filter = format!("recordRef='{USER_ID}'&&collectionRef='{USERS_ID}'");
            let got = count(&server, "_mfas", &filter)?;
            if got != want {
                return Err(format!("{got} _mfas rows for the user, want {want}"));
            }
        }
        After::NewOriginAlerted => {
            let origins_after = origins_of(&server, CLIENT_ID)?;
            if origins_after != origins_before + 1 {
                return Err(format!(
                    "_authOrigins of the client went {origins_before} -> {origins_after}"
                ));
            }
            let got = mail
                .expect("sink")
                .recv_timeout(Duration::from_secs(20))
                .map_err(|_| "no new-login alert mail".to_string())?;
            let data = unquote(&got.data);
            if got.rcpt_to != ["<test@example.com>"] || !data.contains("Login from a new location")
            {
                return Err(format!(
                    "unexpected alert mail to {:?}:\n{data}",
                    got.rcpt_to
                ));
            }
        }
    }
    Ok(())
}

/// Sets the collation of the single-column unique indexes of `clients` (`""` = none).
fn set_clients_collations(server: &Server, collations: &[(&str, &str)]) -> Result<(), String> {
    let (status, text) = server.call("GET", "/api/collections/clients", Some(SUPERUSER), "");
    if status != 200 {
        return Err(format!("GET clients: {status} {text}"));
    }
    let collection: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut indexes: Vec<String> = collection["indexes"]
        .as_array()
        .ok_or("no indexes")?
        .iter()
        .map(|i| i.as_str().unwrap_or_default().to_string())
        .collect();
    for (column, collate) in collations {
        let index = indexes
            .iter_mut()
            .find(|i| i.starts_with("CREATE UNIQUE INDEX") && i.contains(&format!("({column})")))
            .ok_or_else(|| format!("no unique index on {column}"))?;
        let with = if collate.is_empty() {
            format!("({column})")
        } else {
            format!("(`{column}` COLLATE {collate})")
        };
        *index = index.replace(&format!("({column})"), &with);
    }
    let body = serde_json::json!({ "indexes": indexes }).to_string();
    let (status, text) = server.call("PATCH", "/api/collections/clients", Some(SUPERUSER), &body);
    if status != 200 {
        return Err(format!("PATCH clients indexes: {status} {text}"));
    }
    Ok(())
}

fn with_smtp(
    server: &Server,
) -> Result<std::sync::mpsc::Receiver<pocketbun_tests::smtp::Delivered>, String> {
    let (port, mail) = smtp_sink();
    let patch = format!(r#"{{"smtp":{{"enabled":true,"host":"127.0.0.1","port":{port}}}}}"#);
    let (status, text) = server.call("PATCH", "/api/settings", Some(SUPERUSER), &patch);
    if status != 200 {
        return Err(format!("PATCH settings: {status} {text}"));
    }
    Ok(mail)
}

fn origins_of(server: &Server, record: &str) -> Result<usize, String> {
    count(server, "_authOrigins", &format!("recordRef='{record}'"))
}

fn count(server: &Server, collection: &str, filter: &str) -> Result<usize, String> {
    let path = format!(
        "/api/collections/{collection}/records?perPage=1&filter={}",
        percent(filter)
    );
    let (status, text) = server.call("GET", &path, Some(SUPERUSER), "");
    if status != 200 {
        return Err(format!("GET {path}: {status} {text}"));
    }
    let list: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    list["totalItems"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("no totalItems in {text}"))
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

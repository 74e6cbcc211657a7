//! Ports of the `needsGo` scenarios of PocketBase's `apis/record_auth_password_reset_request_test.go`,
//! `record_auth_verification_request_test.go`, `record_auth_verification_confirm_test.go`,
//! `record_auth_email_change_request_test.go` and `record_auth_email_change_confirm_test.go`.
//! Mails are checked in a real SMTP sink, user state over the API, and the Go setup is redone
//! over HTTP (the "already sent" resend guard is set by a first real request) or by editing a
//! copy of the fixture's `data.db` (rate limit rules with `maxRequests` 0, as in Go).
//!
//! Not portable: the five "On...Request tx body write check" scenarios only assert what a Go
//! hook wrapping the handler in a transaction sees.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same table runs against PocketBase itself.

use pocketbun_tests::fixture::EditedFixture;
use pocketbun_tests::smtp::{smtp_sink, unquote, Delivered};
use pocketbun_tests::{Server, ServerSpec};
use serde_json::Value;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// Fixture user `test@example.com` of `users`.
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;
const USER_ID: &str = "4q1xlclmfloku33";

/// Verification token of `users/4q1xlclmfloku33` (from the Go test).
const VERIFY_USER: &str = r#"{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsImV4cCI6MjUyNDYwNDQ2MSwidHlwZSI6InZlcmlmaWNhdGlvbiIsImNvbGxlY3Rpb25JZCI6Il9wYl91c2Vyc19hdXRoXyIsImVtYWlsIjoidGVzdEBleGFtcGxlLmNvbSJ9.SetHpu2H-x-q4TIUz-xiQjwi7MNwLCLvSs4O0hUSp0E"}"#;
/// Verification token of a `nologin` record (from the Go test).
const VERIFY_NOLOGIN: &str = r#"{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImRjNDlrNmpnZWpuNDBoMyIsImV4cCI6MjUyNDYwNDQ2MSwidHlwZSI6InZlcmlmaWNhdGlvbiIsImNvbGxlY3Rpb25JZCI6ImtwdjcwOXNrMmxxYnFrOCIsImVtYWlsIjoidGVzdEBleGFtcGxlLmNvbSJ9.5GmuZr4vmwk3Cb_3ZZWNxwbE75KZC-j71xxIPR9AsVw"}"#;
/// Email change token of `users/4q1xlclmfloku33` to `change@example.com`, with its password.
const CHANGE_EMAIL: &str = r#"{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsImNvbGxlY3Rpb25JZCI6Il9wYl91c2Vyc19hdXRoXyIsInR5cGUiOiJlbWFpbENoYW5nZSIsImVtYWlsIjoidGVzdEBleGFtcGxlLmNvbSIsIm5ld0VtYWlsIjoiY2hhbmdlQGV4YW1wbGUuY29tIiwiZXhwIjoyNTI0NjA0NDYxfQ.Y7mVlaEPhJiNPoIvIqbIosZU4c4lEhwysOrRR8c95iU","password":"1234567890"}"#;

const RESET: &str = "/api/collections/users/request-password-reset";
const VERIFY: &str = "/api/collections/users/request-verification";
const CONFIRM_VERIFY: &str = "/api/collections/users/confirm-verification";
const CONFIRM_VERIFY_NOLOGIN: &str = "/api/collections/nologin/confirm-verification";
const REQUEST_CHANGE: &str = "/api/collections/users/request-email-change";
const CONFIRM_CHANGE: &str = "/api/collections/users/confirm-email-change";

/// What a case does before its request.
enum Setup {
    None,
    /// The same request once before, with its mail received (Go sets the resend guard).
    SentBefore,
    /// Password auth of `users` off, over the API.
    NoPasswordAuth,
    /// Rate limiting on with these rules, written to the stored settings (validation requires
    /// `maxRequests >= 1`; the Go test sets 0 in memory).
    RateLimitRules(&'static str),
}

/// What a case checks after its response.
enum After {
    Nothing,
    /// No mail arrives.
    NoMail,
    /// One mail to this address whose body has this link path.
    Mail(&'static str, &'static str),
    /// The user is verified with this email and no OAuth2 links (it had some before);
    /// `old_password` says whether "1234567890" still logs in.
    Verified {
        email: &'static str,
        old_password: bool,
    },
}

struct Case {
    name: &'static str,
    path: &'static str,
    token: Option<&'static str>,
    body: &'static str,
    setup: Setup,
    status: u16,
    contains: &'static [&'static str],
    after: After,
}

fn cases() -> Vec<Case> {
    let limited = |name, path, token, body, rules| Case {
        name,
        path,
        token,
        body,
        setup: Setup::RateLimitRules(rules),
        status: 429,
        contains: &[r#""data":{}"#],
        after: After::Nothing,
    };
    vec![
        // record_auth_password_reset_request_test.go
        Case {
            name: "missing auth record",
            path: RESET,
            token: None,
            body: r#"{"email":"missing@example.com"}"#,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::NoMail,
        },
        Case {
            name: "existing auth record",
            path: RESET,
            token: None,
            body: r#"{"email":"test@example.com"}"#,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::Mail("test@example.com", "/auth/confirm-password-reset"),
        },
        Case {
            name: "existing auth record (after already sent)",
            path: RESET,
            token: None,
            body: r#"{"email":"test@example.com"}"#,
            setup: Setup::SentBefore,
            status: 204,
            contains: &[],
            after: After::NoMail,
        },
        limited(
            "RateLimit rule - users:requestPasswordReset",
            RESET,
            None,
            r#"{"email":"missing@example.com"}"#,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:requestPasswordReset"},{"maxRequests":0,"label":"users:requestPasswordReset"}]"#,
        ),
        limited(
            "RateLimit rule - *:requestPasswordReset",
            RESET,
            None,
            r#"{"email":"missing@example.com"}"#,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:requestPasswordReset"}]"#,
        ),
        // record_auth_verification_request_test.go
        Case {
            name: "missing auth record (verification)",
            path: VERIFY,
            token: None,
            body: r#"{"email":"missing@example.com"}"#,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::NoMail,
        },
        Case {
            name: "already verified auth record",
            path: VERIFY,
            token: None,
            body: r#"{"email":"test2@example.com"}"#,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::NoMail,
        },
        Case {
            name: "existing auth record (verification)",
            path: VERIFY,
            token: None,
            body: r#"{"email":"test@example.com"}"#,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::Mail("test@example.com", "/auth/confirm-verification"),
        },
        Case {
            name: "existing auth record (after already sent) (verification)",
            path: VERIFY,
            token: None,
            body: r#"{"email":"test@example.com"}"#,
            setup: Setup::SentBefore,
            status: 204,
            contains: &[],
            after: After::NoMail,
        },
        limited(
            "RateLimit rule - users:requestVerification",
            VERIFY,
            None,
            r#"{"email":"test@example.com"}"#,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:requestVerification"},{"maxRequests":0,"label":"users:requestVerification"}]"#,
        ),
        limited(
            "RateLimit rule - *:requestVerification",
            VERIFY,
            None,
            r#"{"email":"test@example.com"}"#,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:requestVerification"}]"#,
        ),
        // record_auth_verification_confirm_test.go
        Case {
            name: "valid token",
            path: CONFIRM_VERIFY,
            token: None,
            body: VERIFY_USER,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::Verified {
                email: "test@example.com",
                old_password: true,
            },
        },
        Case {
            name: "valid token (disabled password auth)",
            path: CONFIRM_VERIFY,
            token: None,
            body: VERIFY_USER,
            setup: Setup::NoPasswordAuth,
            status: 204,
            contains: &[],
            after: After::Verified {
                email: "test@example.com",
                old_password: false,
            },
        },
        limited(
            "RateLimit rule - nologin:confirmVerification",
            CONFIRM_VERIFY_NOLOGIN,
            None,
            VERIFY_NOLOGIN,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:confirmVerification"},{"maxRequests":0,"label":"nologin:confirmVerification"}]"#,
        ),
        limited(
            "RateLimit rule - *:confirmVerification",
            CONFIRM_VERIFY_NOLOGIN,
            None,
            VERIFY_NOLOGIN,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:confirmVerification"}]"#,
        ),
        // record_auth_email_change_request_test.go
        Case {
            name: "valid data (new email)",
            path: REQUEST_CHANGE,
            token: Some(USER),
            body: r#"{"newEmail":"change@example.com"}"#,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::Mail("change@example.com", "/auth/confirm-email-change"),
        },
        limited(
            "RateLimit rule - users:requestEmailChange",
            REQUEST_CHANGE,
            Some(USER),
            r#"{"newEmail":"change@example.com"}"#,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:requestEmailChange"},{"maxRequests":0,"label":"users:requestEmailChange"}]"#,
        ),
        limited(
            "RateLimit rule - *:requestEmailChange",
            REQUEST_CHANGE,
            Some(USER),
            r#"{"newEmail":"change@example.com"}"#,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:requestEmailChange"}]"#,
        ),
        // record_auth_email_change_confirm_test.go
        Case {
            name: "valid token and correct password",
            path: CONFIRM_CHANGE,
            token: None,
            body: CHANGE_EMAIL,
            setup: Setup::None,
            status: 204,
            contains: &[],
            after: After::Verified {
                email: "change@example.com",
                old_password: true,
            },
        },
        limited(
            "RateLimit rule - users:confirmEmailChange",
            CONFIRM_CHANGE,
            None,
            CHANGE_EMAIL,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:confirmEmailChange"},{"maxRequests":0,"label":"users:confirmEmailChange"}]"#,
        ),
        limited(
            "RateLimit rule - *:confirmEmailChange",
            CONFIRM_CHANGE,
            None,
            CHANGE_EMAIL,
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:confirmEmailChange"}]"#,
        ),
    ]
}

#[test]
fn needs_go_scenarios_of_auth_email_flows() {
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(e) = run(&case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn run(case: &Case) -> Result<(), String> {
    let fixture = EditedFixture::new(|db| {
        if let Setup::RateLimitRules(rules) = case.setup {
            db.execute(
                "UPDATE _params SET value = json_set(value, '$.rateLimits.enabled', json('true'), \
                 '$.rateLimits.rules', json(?1)) WHERE id = 'settings'",
                [rules],
            )
            .expect("rate limit rules");
        }
    });
    let server = Server::start(&ServerSpec::from_env(), Some(fixture.path()))?;
    // the stored rate limit rules would fail the validation of a settings PATCH
    let mail = match case.setup {
        Setup::RateLimitRules(_) => smtp_sink().1,
        _ => with_smtp(&server)?,
    };
    match case.setup {
        Setup::SentBefore => {
            let (status, text) = server.call("POST", case.path, case.token, case.body);
            if status != 204 {
                return Err(format!("first request: {status} {text}"));
            }
            recv(&mail).ok_or("no mail for the first request")?;
            // PocketBase sets its resend guard only once the SMTP session it runs in the
            // background has ended, a moment after the message reached the sink
            std::thread::sleep(Duration::from_secs(1));
        }
        Setup::NoPasswordAuth => {
            set_password_auth(&server, false)?;
        }
        _ => {}
    }
    if let After::Verified { .. } = case.after {
        let before = user(&server)?;
        if before["verified"] != Value::Bool(false) {
            return Err(format!("the user is verified before: {before}"));
        }
        if external_auths(&server)? == 0 {
            return Err("the user has no OAuth2 links before".into());
        }
    }

    let (status, text) = server.call("POST", case.path, case.token, case.body);
    if status != case.status {
        return Err(format!("status {status}, want {}: {text}", case.status));
    }
    for part in case.contains {
        if !text.contains(part) {
            return Err(format!("{part} missing in {text}"));
        }
    }

    match case.after {
        After::Nothing => {}
        After::NoMail => {
            if let Some(got) = recv_within(&mail, Duration::from_secs(2)) {
                return Err(format!("unexpected mail to {:?}", got.rcpt_to));
            }
        }
        After::Mail(to, link) => {
            let got = recv(&mail).ok_or("no mail")?;
            let data = unquote(&got.data);
            if got.rcpt_to != [format!("<{to}>")] || !data.contains(link) {
                return Err(format!("unexpected mail to {:?}:\n{data}", got.rcpt_to));
            }
        }
        After::Verified {
            email,
            old_password,
        } => {
            let after = user(&server)?;
            if after["verified"] != Value::Bool(true) || after["email"] != email {
                return Err(format!("want verified {email}, got {after}"));
            }
            let links = external_auths(&server)?;
            if links != 0 {
                return Err(format!("{links} OAuth2 links left"));
            }
            if !old_password {
                set_password_auth(&server, true)?;
            }
            let login = format!(r#"{{"identity":"{email}","password":"1234567890"}}"#);
            let (status, text) = server.call(
                "POST",
                "/api/collections/users/auth-with-password",
                None,
                &login,
            );
            // the fixture's users need MFA (401 with an mfaId) once the password is right
            let logs_in = status == 200 || status == 401;
            if logs_in != old_password {
                return Err(format!(
                    "old password after: {status} {text}, want it to work: {old_password}"
                ));
            }
        }
    }
    Ok(())
}

fn recv(mail: &Receiver<Delivered>) -> Option<Delivered> {
    recv_within(mail, Duration::from_secs(20))
}

fn recv_within(mail: &Receiver<Delivered>, wait: Duration) -> Option<Delivered> {
    mail.recv_timeout(wait).ok()
}

fn user(server: &Server) -> Result<Value, String> {
    let path = format!("/api/collections/users/records/{USER_ID}");
    let (status, text) = server.call("GET", &path, Some(SUPERUSER), "");
    if status != 200 {
        return Err(format!("GET {path}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn external_auths(server: &Server) -> Result<u64, String> {
    let path = format!(
        "/api/collections/_externalAuths/records?perPage=1&filter=recordRef%3D%27{USER_ID}%27"
    );
    let (status, text) = server.call("GET", &path, Some(SUPERUSER), "");
    if status != 200 {
        return Err(format!("GET {path}: {status} {text}"));
    }
    let list: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    list["totalItems"]
        .as_u64()
        .ok_or_else(|| format!("no totalItems in {text}"))
}

fn set_password_auth(server: &Server, on: bool) -> Result<(), String> {
    let body = format!(r#"{{"passwordAuth":{{"enabled":{on}}}}}"#);
    let (status, text) = server.call("PATCH", "/api/collections/users", Some(SUPERUSER), &body);
    if status != 200 {
        return Err(format!("PATCH users passwordAuth: {status} {text}"));
    }
    Ok(())
}

fn with_smtp(server: &Server) -> Result<Receiver<Delivered>, String> {
    let (port, mail) = smtp_sink();
    let patch = format!(r#"{{"smtp":{{"enabled":true,"host":"127.0.0.1","port":{port}}}}}"#);
    let (status, text) = server.call("PATCH", "/api/settings", Some(SUPERUSER), &patch);
    if status != 200 {
        return Err(format!("PATCH settings: {status} {text}"));
    }
    Ok(mail)
}

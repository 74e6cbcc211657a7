//! Auth records end to end, against a real server on a copy of the fixture: PocketBase's
//! bcrypt hashes log in, issued tokens work and die when the password changes, MFA asks
//! for a second factor that is completed with a one-time password read from a real SMTP
//! server on loopback, password resets and verification mails carry working tokens, and
//! used codes/tokens cannot be replayed.
//!
//! With `CONFORMANCE_SERVER=pocketbase` the same tests run against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::smtp::{smtp_sink, unquote, Delivered};
use pocketbun_tests::{Server, ServerSpec};
use serde_json::Value;
use std::sync::mpsc;
use std::time::Duration;

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// Fixture user `test@example.com` of `users`.
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

fn start() -> Server {
    let fixture = fixture_dir();
    Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"))
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let body = body.unwrap_or("");
    req = req
        .header("Content-Length", &body.len().to_string())
        .body(body.as_bytes().to_vec());
    let resp = req
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver log:\n{}", server.log()));
    let text = resp.text();
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (resp.status, v)
}

fn post(server: &Server, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    call(server, "POST", path, token, Some(body))
}

/// Points the server's mailer at a fresh SMTP sink; returns the delivered messages.
fn with_smtp(server: &Server) -> mpsc::Receiver<Delivered> {
    let (port, mail) = smtp_sink();
    let patch = format!(r#"{{"smtp":{{"enabled":true,"host":"127.0.0.1","port":{port}}}}}"#);
    let (status, body) = call(
        server,
        "PATCH",
        "/api/settings",
        Some(SUPERUSER),
        Some(&patch),
    );
    assert_eq!(status, 200, "{body}");
    mail
}

fn next_mail(mail: &mpsc::Receiver<Delivered>) -> String {
    mail.recv_timeout(Duration::from_secs(20))
        .expect("no mail was delivered")
        .data
}

fn jwt_in(text: &str) -> String {
    let re = regex::Regex::new(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+").unwrap();
    re.find(text)
        .unwrap_or_else(|| panic!("no token in mail:\n{text}"))
        .as_str()
        .to_string()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn pocketbase_hashes_log_in_and_issued_tokens_work() {
    let server = start();
    let path = "/api/collections/clients/auth-with-password";
    // stored by PocketBase with bcrypt cost 13
    let (status, body) = post(
        &server,
        path,
        None,
        r#"{"identity":"test@example.com","password":"1234567890"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], "gk390qegs4y47wn");
    assert_eq!(body["record"]["email"], "test@example.com");
    assert!(body["record"].get("password").is_none() && body["record"].get("tokenKey").is_none());
    let token = body["token"].as_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!(c["type"], "auth");
    assert_eq!(c["collectionId"], "v851q4r790rhknl");
    assert_eq!(c["refreshable"], true);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // the collection's authToken duration (1209600 s in the fixture)
    let exp = c["exp"].as_i64().unwrap();
    assert!((exp - now - 1_209_600).abs() < 30, "exp {exp} now {now}");

    // the issued token is accepted as the request auth
    let (status, body) = post(
        &server,
        "/api/collections/clients/auth-refresh",
        Some(&token),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], "gk390qegs4y47wn");

    // a wrong password and an unknown identity fail alike
    let (s1, b1) = post(
        &server,
        path,
        None,
        r#"{"identity":"test@example.com","password":"1234567891"}"#,
    );
    let (s2, b2) = post(
        &server,
        path,
        None,
        r#"{"identity":"nobody@example.com","password":"1234567890"}"#,
    );
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(b1, b2);
    assert_eq!(b1["message"], "Failed to authenticate.");

    // a forged token (signed with another key) and one for another collection are refused
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (status, _) = post(
        &server,
        "/api/collections/clients/auth-refresh",
        Some(&forged),
        "",
    );
    assert_eq!(status, 401);
    let (status, _) = post(
        &server,
        "/api/collections/clients/auth-refresh",
        Some(USER),
        "",
    );
    assert_eq!(status, 403);
}

/// Drop-in data both ways: a password set through PocketBun (bcrypt at the collection's cost,
/// as PocketBase hashes) logs in on the real PocketBase opening the same pb_data, the old one
/// no longer does; and a password PocketBase sets logs in on PocketBun.
#[test]
fn passwords_changed_on_one_server_log_in_on_the_other() {
    let Some(pocketbase) =
        ServerSpec::reference("passwords_changed_on_one_server_log_in_on_the_other")
    else {
        return;
    };
    let login = |server: &Server, password: &str| {
        let body = format!(r#"{{"identity":"test@example.com","password":"{password}"}}"#);
        post(
            server,
            "/api/collections/users/auth-with-password",
            None,
            &body,
        )
        .0
    };
    let change = |server: &Server, old: &str, new: &str| {
        let body =
            format!(r#"{{"oldPassword":"{old}","password":"{new}","passwordConfirm":"{new}"}}"#);
        let (status, answer) = call(
            server,
            "PATCH",
            "/api/collections/users/records/4q1xlclmfloku33",
            Some(USER),
            Some(&body),
        );
        assert_eq!(status, 200, "{}: {answer}", server.kind().name());
    };
    // the fixture's users have MFA on: a correct password answers 401 with an mfaId, a wrong
    // one 400
    let mut bun = start();
    change(&bun, "1234567890", "set by pocketbun");
    bun.stop();
    let mut base =
        Server::start(&pocketbase, Some(bun.data_dir())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        login(&base, "set by pocketbun"),
        401,
        "PocketBase refuses PocketBun's hash"
    );
    assert_eq!(login(&base, "1234567890"), 400);

    // the token key rotated with the change: log in afresh to change it back on PocketBase
    let body = r#"{"password":"set by pocketbase","passwordConfirm":"set by pocketbase"}"#;
    let (status, answer) = call(
        &base,
        "PATCH",
        "/api/collections/users/records/4q1xlclmfloku33",
        Some(SUPERUSER),
        Some(body),
    );
    assert_eq!(status, 200, "{answer}");
    base.stop();
    let bun = Server::start(&ServerSpec::pocketbun(), Some(base.data_dir()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        login(&bun, "set by pocketbase"),
        401,
        "PocketBun refuses PocketBase's hash"
    );
    assert_eq!(login(&bun, "set by pocketbun"), 400);
}

/// `serve --password-hash argon2id`: a bcrypt user who logs in gets an argon2id hash of the
/// same password (issued tokens stay valid); back on the default scheme the next login turns
/// it into bcrypt again, which the real PocketBase then accepts.
#[test]
fn argon2id_is_opt_in_and_hashes_are_upgraded_at_login() {
    let stored = |server: &Server| -> String {
        let db = rusqlite::Connection::open(server.data_dir().join("data.db")).unwrap();
        db.query_row(
            "SELECT password FROM clients WHERE id = 'gk390qegs4y47wn'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let login = |server: &Server| {
        post(
            server,
            "/api/collections/clients/auth-with-password",
            None,
            r#"{"identity":"test@example.com","password":"1234567890"}"#,
        )
    };
    let fixture = fixture_dir();
    let mut spec = ServerSpec::pocketbun();
    spec.args
        .extend(["--password-hash".to_string(), "argon2id".to_string()]);
    let mut argon = Server::start(&spec, Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    assert!(stored(&argon).starts_with("$2a$13$"));
    let (status, body) = login(&argon);
    assert_eq!(status, 200, "{body}");
    let first_token = body["token"].as_str().unwrap().to_string();
    assert!(
        stored(&argon).starts_with("$argon2id$"),
        "{}",
        stored(&argon)
    );
    let (status, body) = login(&argon);
    assert_eq!(status, 200, "the argon2id hash verifies: {body}");
    let (status, body) = post(
        &argon,
        "/api/collections/clients/auth-refresh",
        Some(&first_token),
        "",
    );
    assert_eq!(status, 200, "the token key stayed: {body}");
    let (status, _) = post(
        &argon,
        "/api/collections/clients/auth-with-password",
        None,
        r#"{"identity":"test@example.com","password":"wrong"}"#,
    );
    assert_eq!(status, 400);
    argon.stop();

    let mut bcrypt = Server::start(&ServerSpec::pocketbun(), Some(argon.data_dir()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(stored(&bcrypt).starts_with("$argon2id$"));
    let (status, body) = login(&bcrypt);
    assert_eq!(status, 200, "{body}");
    assert!(stored(&bcrypt).starts_with("$2a$"), "{}", stored(&bcrypt));
    bcrypt.stop();

    let Some(pocketbase) =
        ServerSpec::reference("argon2id hashes re-made as bcrypt (PocketBase part)")
    else {
        return;
    };
    let base =
        Server::start(&pocketbase, Some(bcrypt.data_dir())).unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = login(&base);
    assert_eq!(
        status, 200,
        "PocketBase reads the re-made bcrypt hash: {body}"
    );
}

#[test]
fn impersonation_tokens_are_static() {
    let server = start();
    let (status, body) = post(
        &server,
        "/api/collections/users/impersonate/4q1xlclmfloku33",
        Some(SUPERUSER),
        r#"{"duration":100}"#,
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!(c["refreshable"], false);
    let left = c["exp"].as_i64().unwrap()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!((90..=101).contains(&left), "{left}");
    // refreshing a static token hands the same token back
    let (status, body) = post(
        &server,
        "/api/collections/users/auth-refresh",
        Some(&token),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"], token.as_str());
}

#[test]
fn mfa_is_completed_with_an_emailed_otp_that_cannot_be_reused() {
    let server = start();
    let mail = with_smtp(&server);
    // users has MFA on: the password alone only opens an MFA session
    let (status, body) = post(
        &server,
        "/api/collections/users/auth-with-password",
        None,
        r#"{"identity":"test@example.com","password":"1234567890"}"#,
    );
    assert_eq!(status, 401, "{body}");
    let mfa_id = body["mfaId"].as_str().unwrap().to_string();
    assert_eq!(mfa_id.len(), 15);

    // the same method twice is not a second factor
    let (status, body) = post(
        &server,
        "/api/collections/users/auth-with-password",
        None,
        &format!(r#"{{"identity":"test@example.com","password":"1234567890","mfaId":"{mfa_id}"}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "A different authentication method is required."
    );

    let (status, body) = post(
        &server,
        "/api/collections/users/request-otp",
        None,
        r#"{"email":"test@example.com"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let otp_id = body["otpId"].as_str().unwrap().to_string();
    let msg = unquote(&next_mail(&mail));
    assert!(msg.contains("To: test@example.com"), "{msg}");
    let code = regex::Regex::new(r"<strong>(\d{8})</strong>")
        .unwrap()
        .captures(&msg)
        .unwrap_or_else(|| panic!("no OTP in mail:\n{msg}"))[1]
        .to_string();

    // a wrong code fails, the right one completes the MFA login
    let (status, _) = post(
        &server,
        "/api/collections/users/auth-with-otp",
        None,
        &format!(r#"{{"otpId":"{otp_id}","password":"00000000","mfaId":"{mfa_id}"}}"#),
    );
    assert_eq!(status, 400);
    let (status, body) = post(
        &server,
        "/api/collections/users/auth-with-otp",
        None,
        &format!(r#"{{"otpId":"{otp_id}","password":"{code}","mfaId":"{mfa_id}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], "4q1xlclmfloku33");
    // the code reached the record's address: the record is verified now
    assert_eq!(body["record"]["verified"], true);

    // the used code is gone
    let (status, body) = post(
        &server,
        "/api/collections/users/auth-with-otp",
        None,
        &format!(r#"{{"otpId":"{otp_id}","password":"{code}"}}"#),
    );
    assert_eq!(status, 400, "{body}");

    // an unknown address gets an otpId as well, and no mail
    let (status, body) = post(
        &server,
        "/api/collections/users/request-otp",
        None,
        r#"{"email":"missing@example.com"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["otpId"].as_str().unwrap().len(), 15);
    assert!(mail.recv_timeout(Duration::from_millis(1500)).is_err());
}

#[test]
fn password_reset_by_mail_rotates_the_token_key() {
    let server = start();
    let mail = with_smtp(&server);
    let login = |password: &str| {
        post(
            &server,
            "/api/collections/clients/auth-with-password",
            None,
            &format!(r#"{{"identity":"test@example.com","password":"{password}"}}"#),
        )
    };
    let (status, body) = login("1234567890");
    assert_eq!(status, 200, "{body}");
    let old_token = body["token"].as_str().unwrap().to_string();
    // used before the reset, so each worker has verified (and remembered) it
    for _ in 0..4 {
        let (status, body) = post(
            &server,
            "/api/collections/clients/auth-refresh",
            Some(&old_token),
            "",
        );
        assert_eq!(status, 200, "{body}");
    }
    // clients has login alerts on and known origins: a login from here is a new one
    let alert = unquote(&next_mail(&mail));
    assert!(alert.contains("To: test@example.com"), "{alert}");
    assert!(alert.contains("127.0.0.1"), "{alert}");
    // the origin is remembered: the next login from here sends nothing
    assert_eq!(login("1234567890").0, 200);
    assert!(mail.recv_timeout(Duration::from_millis(1500)).is_err());

    // unknown emails are answered the same, without a mail
    let (status, _) = post(
        &server,
        "/api/collections/clients/request-password-reset",
        None,
        r#"{"email":"missing@example.com"}"#,
    );
    assert_eq!(status, 204);
    assert!(mail.recv_timeout(Duration::from_millis(1500)).is_err());

    let (status, _) = post(
        &server,
        "/api/collections/clients/request-password-reset",
        None,
        r#"{"email":"test@example.com"}"#,
    );
    assert_eq!(status, 204);
    let msg = unquote(&next_mail(&mail));
    let reset = jwt_in(&msg);
    assert_eq!(claims(&reset)["type"], "passwordReset");

    let confirm = format!(
        r#"{{"token":"{reset}","password":"new-pass-123","passwordConfirm":"new-pass-123"}}"#
    );
    let (status, body) = post(
        &server,
        "/api/collections/clients/confirm-password-reset",
        None,
        &confirm,
    );
    assert_eq!(status, 204, "{body}");

    // old password and old sessions are gone; the reset token cannot be used twice
    assert_eq!(login("1234567890").0, 400);
    let (status, _) = post(
        &server,
        "/api/collections/clients/auth-refresh",
        Some(&old_token),
        "",
    );
    assert_eq!(status, 401);
    let (status, body) = post(
        &server,
        "/api/collections/clients/confirm-password-reset",
        None,
        &confirm,
    );
    assert_eq!(status, 400);
    assert_eq!(body["data"]["token"]["code"], "validation_invalid_token");
    let (status, body) = login("new-pass-123");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn verification_and_email_change_by_mail() {
    let server = start();
    let mail = with_smtp(&server);
    // clients test2 is not verified
    let (status, _) = post(
        &server,
        "/api/collections/clients/request-verification",
        None,
        r#"{"email":"test2@example.com"}"#,
    );
    assert_eq!(status, 204);
    let verify = jwt_in(&unquote(&next_mail(&mail)));
    let (status, body) = post(
        &server,
        "/api/collections/clients/confirm-verification",
        None,
        &format!(r#"{{"token":"{verify}"}}"#),
    );
    assert_eq!(status, 204, "{body}");
    // verified now: it may log in to the onlyVerified collection
    let (status, body) = post(
        &server,
        "/api/collections/clients/auth-with-password",
        None,
        r#"{"identity":"test2@example.com","password":"1234567890"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();

    let (status, body) = post(
        &server,
        "/api/collections/clients/request-email-change",
        Some(&token),
        r#"{"newEmail":"changed@example.com"}"#,
    );
    assert_eq!(status, 204, "{body}");
    let msg = unquote(&next_mail(&mail));
    assert!(msg.contains("To: changed@example.com"), "{msg}");
    let change = jwt_in(&msg);
    let (status, body) = post(
        &server,
        "/api/collections/clients/confirm-email-change",
        None,
        &format!(r#"{{"token":"{change}","password":"wrong"}}"#),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["password"]["code"],
        "validation_invalid_password"
    );
    let (status, body) = post(
        &server,
        "/api/collections/clients/confirm-email-change",
        None,
        &format!(r#"{{"token":"{change}","password":"1234567890"}}"#),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(
        &server,
        "/api/collections/clients/auth-with-password",
        None,
        r#"{"identity":"changed@example.com","password":"1234567890"}"#,
    );
    assert_eq!(status, 200, "{body}");
    // the email change ended the earlier session
    let (status, _) = post(
        &server,
        "/api/collections/clients/auth-refresh",
        Some(&token),
        "",
    );
    assert_eq!(status, 401);
}

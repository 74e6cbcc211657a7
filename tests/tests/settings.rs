//! `/api/settings` end to end: PocketBase's exact JSON, PATCH merging and validation, storage
//! in `_params` that PocketBase reads back, test emails delivered to a real SMTP server on
//! loopback, the S3 test's errors and Apple client secrets that verify.
//!
//! The expected bodies were taken from PocketBase v0.39.11 on the same fixture; with
//! `CONFORMANCE_SERVER=pocketbase` the tests that do not inspect PocketBun's files run
//! against PocketBase itself.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::smtp::{smtp_sink, unquote};
use pocketbun_tests::{Server, ServerSpec};
use serde_json::Value;
use std::net::TcpListener;
use std::time::Duration;

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
/// Fixture regular user of `users`.
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

const FIXTURE_SETTINGS: &str = r##"{"superuserIPs":[],"smtp":{"enabled":false,"port":587,"host":"smtp.example.com","username":"","authMethod":"","tls":false,"localName":""},"backups":{"cron":"","cronMaxKeep":0,"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false}},"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false},"meta":{"accentColor":"#1055c9","appName":"acme_test","appURL":"http://localhost:8090","senderName":"Support","senderAddress":"support@example.com","hideControls":false},"rateLimits":{"rules":[{"label":"*:auth","audience":"","duration":3,"maxRequests":2},{"label":"*:create","audience":"","duration":5,"maxRequests":20},{"label":"/api/batch","audience":"","duration":1,"maxRequests":3},{"label":"/api/","audience":"","duration":10,"maxRequests":300}],"excludedIPs":[],"enabled":false},"trustedProxy":{"headers":[],"useLeftmostIP":false},"batch":{"enabled":true,"maxRequests":50,"timeout":5,"maxBodySize":0},"logs":{"maxDataSize":0,"maxDays":5,"minLevel":0,"logIP":false,"logAuthId":false}}"##;

const INVALID_PATCH: &str = r##"{"superuserIPs":["","1.2.3.4","abc","10.0.0.0/8","::1","fe80::/10","1.2.3.4/33"],"meta":{"accentColor":"#12","appName":"","appURL":"not a url","senderName":"","senderAddress":"bad"},"logs":{"maxDays":-1,"minLevel":-100},"smtp":{"enabled":true,"host":"","port":-5,"authMethod":"x","localName":"bad host!"},"s3":{"enabled":true,"endpoint":"nope"},"backups":{"cron":"bad","cronMaxKeep":0,"s3":{"enabled":true}},"batch":{"enabled":true,"maxRequests":0,"timeout":-1,"maxBodySize":-1},"rateLimits":{"enabled":true,"rules":[{"label":"bad label!","audience":"x","duration":-1,"maxRequests":-1}],"excludedIPs":["x",""]},"trustedProxy":{"headers":["", "X"]}}"##;

/// PocketBase v0.39.11's answer to INVALID_PATCH on the fixture.
const INVALID_PATCH_ANSWER: &str = r##"{"data":{"backups":{"cron":{"code":"validation_invalid_cron","message":"Invalid cron expression - must be a valid macro or to have exactly 5 space separated segments."},"cronMaxKeep":{"code":"validation_required","message":"Cannot be blank."},"s3":{"accessKey":{"code":"validation_required","message":"Cannot be blank."},"bucket":{"code":"validation_required","message":"Cannot be blank."},"endpoint":{"code":"validation_required","message":"Cannot be blank."},"region":{"code":"validation_required","message":"Cannot be blank."},"secret":{"code":"validation_required","message":"Cannot be blank."}}},"batch":{"maxBodySize":{"code":"validation_min_greater_equal_than_required","message":"Must be no less than 0.","params":{"threshold":0}},"maxRequests":{"code":"validation_required","message":"Cannot be blank."},"timeout":{"code":"validation_min_greater_equal_than_required","message":"Must be no less than 0.","params":{"threshold":0}}},"logs":{"maxDays":{"code":"validation_min_greater_equal_than_required","message":"Must be no less than 0.","params":{"threshold":0}}},"meta":{"accentColor":{"code":"validation_length_invalid","message":"The length must be exactly 7.","params":{"max":7,"min":7}},"appName":{"code":"validation_required","message":"Cannot be blank."},"appURL":{"code":"validation_is_url","message":"Must be a valid URL."},"senderAddress":{"code":"validation_is_email","message":"Must be a valid email address."},"senderName":{"code":"validation_required","message":"Cannot be blank."}},"rateLimits":{"excludedIPs":{"0":{"code":"validation_invlaid_ip_or_subnet","message":"Invalid IP or CIDR subnet."},"1":{"code":"validation_required","message":"Cannot be blank."}},"rules":{"0":{"audience":{"code":"validation_in_invalid","message":"Must be a valid value."},"duration":{"code":"validation_min_greater_equal_than_required","message":"Must be no less than 1.","params":{"threshold":1}},"label":{"code":"validation_match_invalid","message":"Must be in a valid format."},"maxRequests":{"code":"validation_min_greater_equal_than_required","message":"Must be no less than 1.","params":{"threshold":1}}}}},"s3":{"accessKey":{"code":"validation_required","message":"Cannot be blank."},"bucket":{"code":"validation_required","message":"Cannot be blank."},"endpoint":{"code":"validation_is_url","message":"Must be a valid URL."},"region":{"code":"validation_required","message":"Cannot be blank."},"secret":{"code":"validation_required","message":"Cannot be blank."}},"smtp":{"authMethod":{"code":"validation_in_invalid","message":"Must be a valid value."},"host":{"code":"validation_required","message":"Cannot be blank."},"localName":{"code":"validation_is_host","message":"Must be a valid IP address or DNS name."},"port":{"code":"validation_min_greater_equal_than_required","message":"Must be no less than 0.","params":{"threshold":0}}},"superuserIPs":{"0":{"code":"validation_required","message":"Cannot be blank."},"2":{"code":"validation_invlaid_ip_or_subnet","message":"Invalid IP or CIDR subnet."},"6":{"code":"validation_invlaid_ip_or_subnet","message":"Invalid IP or CIDR subnet."}}},"message":"An error occurred while saving the new settings.","status":400}"##;
const ROUTES: [(&str, &str); 5] = [
    ("GET", "/api/settings"),
    ("PATCH", "/api/settings"),
    ("POST", "/api/settings/test/s3"),
    ("POST", "/api/settings/test/email"),
    ("POST", "/api/settings/apple/generate-client-secret"),
];

#[test]
fn only_superusers_get_in() {
    let server = start(&ServerSpec::from_env(), &fixture());
    for (method, path) in ROUTES {
        let (status, body) = call(&server, method, path, None, Some("{}"));
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(
            body,
            "{\"data\":{},\"message\":\"The request requires valid record authorization token.\",\"status\":401}"
        );
        let (status, body) = call(&server, method, path, Some(USER), Some("{}"));
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body.contains("\"data\":{}"), "{body}");
    }
}

#[test]
fn get_answers_pocketbases_exact_json() {
    let server = start(&ServerSpec::from_env(), &fixture());
    let (status, body) = su(&server, "GET", "/api/settings", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, FIXTURE_SETTINGS.to_string());
}

#[test]
fn patch_merges_into_the_current_settings_and_hides_secrets() {
    let server = start(&ServerSpec::from_env(), &fixture());
    let (status, body) = su(
        &server,
        "PATCH",
        "/api/settings",
        Some(
            r#"{"meta":{"appName":"update_test"},"smtp":{"password":"new_smtp_password"},
                "s3":{"secret":"new_s3_secret"},"backups":{"s3":{"secret":"new_backups_s3_secret"}},
                "RATELIMITS":{"rules":[{"label":"abc"},{"label":"def","duration":7,"maxRequests":8}]},
                "superuserIPs":null,"unknown":1} trailing bytes are ignored"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("secret") && !body.contains("password"),
        "{body}"
    );
    let got = json(&body);
    let mut want = json(FIXTURE_SETTINGS);
    want["meta"]["appName"] = "update_test".into();
    // the first submitted rule merges into the first stored one; the second is new
    want["rateLimits"]["rules"] = json(
        r#"[{"label":"abc","audience":"","duration":3,"maxRequests":2},
            {"label":"def","audience":"","duration":7,"maxRequests":8}]"#,
    );
    assert_eq!(got, want);
    let (status, again) = su(&server, "GET", "/api/settings", None);
    assert_eq!(status, 200);
    assert_eq!(again, body);

    // an empty body changes nothing and answers the settings
    let (status, same) = su(&server, "PATCH", "/api/settings", None);
    assert_eq!(status, 200);
    assert_eq!(same, body);
}

#[test]
fn patch_reports_every_invalid_field_like_pocketbase() {
    let server = start(&ServerSpec::from_env(), &fixture());
    let (status, body) = su(&server, "PATCH", "/api/settings", Some(INVALID_PATCH));
    assert_eq!(status, 400);
    assert_eq!(body, INVALID_PATCH_ANSWER.to_string());

    let cases = [
        (
            r#"{"rateLimits":{"rules":[{"label":"a","duration":1,"maxRequests":1},{"label":"a","audience":"@auth","duration":1,"maxRequests":1}]}}"#,
            r#"{"rateLimits":{"rules":{"1":{"label":{"code":"validation_conflicting_rate_limit_rule","message":"Rate limit rule configuration with label a already exists or conflicts with another rule.","params":{"label":"a"}}}}}}"#,
        ),
        (
            r#"{"backups":{"cron":"5/2 * * * *","cronMaxKeep":1}}"#,
            r#"{"backups":{"cron":{"code":"validation_invalid_cron","message":"Invalid segment step - step > 1 could be used only with the wildcard or range format."}}}"#,
        ),
        (
            r##"{"meta":{"accentColor":"#zzzzzz","appName":"x","appURL":"example.com"}}"##,
            r#"{"meta":{"accentColor":{"code":"validation_is_hex_color","message":"Must be a valid hexadecimal color code."}}}"#,
        ),
        (
            r#"{"rateLimits":{"enabled":true,"rules":[]}}"#,
            r#"{"rateLimits":{"rules":{"code":"validation_required","message":"Cannot be blank."}}}"#,
        ),
    ];
    for (patch, data) in cases {
        let (status, body) = su(&server, "PATCH", "/api/settings", Some(patch));
        assert_eq!(status, 400, "{patch}: {body}");
        assert_eq!(
            body,
            format!("{{\"data\":{data},\"message\":\"An error occurred while saving the new settings.\",\"status\":400}}"),
            "{patch}"
        );
    }

    let load_failed = "{\"data\":{},\"message\":\"An error occurred while loading the submitted data.\",\"status\":400}";
    for bad in [
        "{",
        "   ",
        "[]",
        r#"{"smtp":{"port":"587"}}"#,
        r#"{"smtp":{"port":1.5}}"#,
    ] {
        let (status, body) = su(&server, "PATCH", "/api/settings", Some(bad));
        assert_eq!((status, body.as_str()), (400, load_failed), "{bad}");
    }
    // nothing of the refused requests was kept
    let (_, now) = su(&server, "GET", "/api/settings", None);
    assert_eq!(now, FIXTURE_SETTINGS.to_string());
}

/// PATCH through PocketBun, then read the directory with a restarted PocketBun and with the
/// real PocketBase: same settings, and the SMTP password (never shown) was stored too, since
/// both servers log in to the SMTP server with it.
#[test]
fn stored_settings_are_read_back_by_pocketbun_and_pocketbase() {
    let (smtp_port, mail) = smtp_sink();
    let mut writer = start(&ServerSpec::pocketbun(), &fixture());
    let patch = format!(
        r#"{{"meta":{{"appName":"round trip <&>","senderName":"Robot"}},
            "smtp":{{"enabled":true,"host":"127.0.0.1","port":{smtp_port},"username":"mailer","password":"s3cr3t"}},
            "s3":{{"secret":"kept"}},"batch":{{"maxBodySize":1024}},"trustedProxy":{{"headers":["X-Real-IP"]}}}}"#
    );
    let (status, patched) = su(&writer, "PATCH", "/api/settings", Some(&patch));
    assert_eq!(status, 200, "{patched}");
    assert!(
        patched.contains(r#""appName":"round trip <&>""#),
        "{patched}"
    );
    writer.stop();

    let Some(pocketbase) = ServerSpec::reference("settings written by PocketBun (PocketBase part)")
    else {
        return;
    };
    for spec in [ServerSpec::pocketbun(), pocketbase] {
        let server = start(&spec, writer.data_dir());
        let (status, body) = su(&server, "GET", "/api/settings", None);
        assert_eq!(status, 200, "{:?}: {body}", spec.kind);
        assert_eq!(body, patched, "{:?} reads other settings", spec.kind);

        let (status, body) = su(
            &server,
            "POST",
            "/api/settings/test/email",
            Some(r#"{"template":"password-reset","email":"someone@example.com"}"#),
        );
        assert_eq!(status, 204, "{:?}: {body}", spec.kind);
        let got = mail
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{:?} delivered no mail", spec.kind));
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD
            .decode(got.auth.as_deref().unwrap_or(""))
            .unwrap_or_default();
        assert_eq!(auth, b"\0mailer\0s3cr3t", "{:?}", spec.kind);
        assert!(got.data.contains("Robot"), "{:?}: {}", spec.kind, got.data);
    }
}

#[test]
fn test_email_is_delivered_to_the_smtp_server() {
    let (smtp_port, mail) = smtp_sink();
    let server = start(&ServerSpec::from_env(), &fixture());
    let patch = format!(
        r#"{{"smtp":{{"enabled":true,"host":"127.0.0.1","port":{smtp_port},"localName":"pb.test"}}}}"#
    );
    let (status, body) = su(&server, "PATCH", "/api/settings", Some(&patch));
    assert_eq!(status, 200, "{body}");

    let (status, body) = su(
        &server,
        "POST",
        "/api/settings/test/email",
        Some(r#"{"template":"verification","email":"test@example.com"}"#),
    );
    assert_eq!((status, body.as_str()), (204, ""));
    let got = mail
        .recv_timeout(Duration::from_secs(20))
        .expect("no mail arrived");
    assert_eq!(got.helo, "pb.test");
    assert_eq!(got.auth, None);
    assert!(
        got.mail_from.starts_with("<support@example.com>"),
        "{}",
        got.mail_from
    );
    assert_eq!(got.rcpt_to, ["<test@example.com>"]);
    let data = unquote(&got.data);
    assert!(
        data.contains("Subject: Verify your acme_test email"),
        "{data}"
    );
    assert!(
        data.contains("From: \"Support\" <support@example.com>")
            || data.contains("From: Support <support@example.com>"),
        "{data}"
    );
    assert!(
        data.contains("text/html") && data.contains("text/plain"),
        "{data}"
    );
    // the link carries a verification token for the stand-in record
    let at = data
        .find("/_/#/auth/confirm-verification/")
        .unwrap_or_else(|| panic!("no verification link in {data}"))
        + "/_/#/auth/confirm-verification/".len();
    let token: String = data[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    let claims: Value = serde_json::from_slice(&b64url(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["type"], "verification");
    assert_eq!(claims["email"], "test@example.com");
    assert_eq!(claims["collectionId"], "pbc_3142635823");

    let (status, _) = su(
        &server,
        "POST",
        "/api/settings/test/email",
        Some(r#"{"template":"otp","email":"test2@example.com","collection":"USERS"}"#),
    );
    assert_eq!(status, 204);
    let got = mail
        .recv_timeout(Duration::from_secs(20))
        .expect("no OTP mail");
    assert_eq!(got.rcpt_to, ["<test2@example.com>"]);
    assert!(
        unquote(&got.data).contains("<strong>123456</strong>"),
        "{}",
        got.data
    );

    let (status, _) = su(
        &server,
        "POST",
        "/api/settings/test/email",
        Some(r#"{"template":"login-alert","email":"test3@example.com","collection":"users"}"#),
    );
    assert_eq!(status, 204);
    let got = mail
        .recv_timeout(Duration::from_secs(20))
        .expect("no alert mail");
    assert!(
        unquote(&got.data).contains("TEST_IP TEST_USER_AGENT"),
        "{}",
        got.data
    );
}

#[test]
fn test_email_input_and_delivery_errors() {
    let server = start(&ServerSpec::from_env(), &fixture());
    let (status, body) = su(&server, "POST", "/api/settings/test/email", Some("{}"));
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "{\"data\":{\"email\":{\"code\":\"validation_required\",\"message\":\"Cannot be blank.\"},\"template\":{\"code\":\"validation_required\",\"message\":\"Cannot be blank.\"}},\"message\":\"Failed to send the test email.\",\"status\":400}"
    );
    let (status, body) = su(
        &server,
        "POST",
        "/api/settings/test/email",
        Some(r#"{"template":"welcome","email":"a@b","collection":"demo1"}"#),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "{\"data\":{\"collection\":{\"code\":\"validation_invalid_auth_collection\",\"message\":\"Must be a valid auth collection id or name.\"},\"email\":{\"code\":\"validation_is_email\",\"message\":\"Must be a valid email address.\"},\"template\":{\"code\":\"validation_in_invalid\",\"message\":\"Must be a valid value.\"}},\"message\":\"Failed to send the test email.\",\"status\":400}"
    );

    // an SMTP server that is not there
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let patch = format!(r#"{{"smtp":{{"enabled":true,"host":"127.0.0.1","port":{port}}}}}"#);
    assert_eq!(su(&server, "PATCH", "/api/settings", Some(&patch)).0, 200);
    let (status, body) = su(
        &server,
        "POST",
        "/api/settings/test/email",
        Some(r#"{"template":"otp","email":"test@example.com"}"#),
    );
    assert_eq!(status, 400, "{body}");
    let got = json(&body);
    assert!(
        got["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to send the test email. Raw error: \n"),
        "{body}"
    );
    assert_eq!(got["data"], json("{}"));
}

#[test]
fn test_s3_checks_its_input_and_the_configuration() {
    let server = start(&ServerSpec::from_env(), &fixture());
    let required = "{\"data\":{\"filesystem\":{\"code\":\"validation_required\",\"message\":\"Cannot be blank.\"}},\"message\":\"Failed to test the S3 filesystem.\",\"status\":400}";
    assert_eq!(
        su(&server, "POST", "/api/settings/test/s3", None),
        (400, required.to_string())
    );
    let (status, body) = su(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(r#"{"filesystem":"storage"}"#),
    );
    assert_eq!(
        (status, body.as_str()),
        (400, "{\"data\":{},\"message\":\"Failed to test the S3 filesystem. Raw error: \\nS3 storage filesystem is not enabled.\",\"status\":400}")
    );
    // enabled, but nothing answers at the endpoint
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let patch = format!(
        r#"{{"backups":{{"s3":{{"enabled":true,"bucket":"b","region":"r","endpoint":"http://127.0.0.1:{port}","accessKey":"k","secret":"s","forcePathStyle":true}}}}}}"#
    );
    assert_eq!(su(&server, "PATCH", "/api/settings", Some(&patch)).0, 200);
    let (status, body) = su(
        &server,
        "POST",
        "/api/settings/test/s3",
        Some(r#"{"filesystem":"backups"}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["message"].as_str().unwrap().starts_with(
            "Failed to test the S3 filesystem. Raw error: \nfailed to upload a test file: "
        ),
        "{body}"
    );
}

/// A P-256 key made for this test (PKCS#8), and its public point.
const APPLE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEvd47/2W40cZphG9\nMz+Kid+eUs3gfnNrfj55gwkcKJihRANCAATnUzsmERKSpnDZkLlBWinKnD/XiuOH\nk/rmCFp+fb/zESuZ2gFgfaU5g94Kqj038YALVwynXpMyLmeUWDdyqjrU\n-----END PRIVATE KEY-----\n";
const APPLE_X: &str = "51M7JhESkqZw2ZC5QVopypw_14rjh5P65ghafn2_8xE";
const APPLE_Y: &str = "K5naAWB9pTmD3gqqPTfxgAtXDKdekzIuZ5RYN3KqOtQ";

#[test]
fn apple_client_secret_is_an_es256_jwt_signed_with_the_key() {
    let server = start(&ServerSpec::from_env(), &fixture());
    let body = serde_json::json!({
        "clientId": "com.example.app",
        "teamId": "TEAM123456",
        "keyId": "KEY1234567",
        "privateKey": APPLE_KEY,
        "duration": 3600,
    })
    .to_string();
    let (status, resp) = su(
        &server,
        "POST",
        "/api/settings/apple/generate-client-secret",
        Some(&body),
    );
    assert_eq!(status, 200, "{resp}");
    let secret = json(&resp)["secret"].as_str().unwrap().to_string();
    let header: Value = serde_json::from_slice(&b64url(secret.split('.').next().unwrap())).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"alg":"ES256","kid":"KEY1234567","typ":"JWT"})
    );

    let key = jsonwebtoken::DecodingKey::from_ec_components(APPLE_X, APPLE_Y).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://appleid.apple.com"]);
    validation.set_issuer(&["TEAM123456"]);
    let claims = jsonwebtoken::decode::<Value>(&secret, &key, &validation)
        .unwrap_or_else(|e| panic!("the secret does not verify: {e}"))
        .claims;
    assert_eq!(claims["sub"], "com.example.app");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // a key-shaped text that is no key
    let bad = serde_json::json!({
        "clientId": "a", "teamId": "1234567890", "keyId": "1234567890",
        "privateKey": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----", "duration": 100,
    })
    .to_string();
    let (status, resp) = su(
        &server,
        "POST",
        "/api/settings/apple/generate-client-secret",
        Some(&bad),
    );
    assert_eq!(status, 400);
    assert!(
        json(&resp)["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to generate client secret. Raw error: \n"),
        "{resp}"
    );
}

// ---- Ports of settings_test.go's needsGo scenarios ---------------------------------------
//
// Not portable over HTTP: "OnSettingsListRequest tx body write check" and
// "OnSettingsUpdateRequest tx body write check" only assert what a Go hook that wraps the
// handler in a transaction sees. "authorized as superuser (valid data)" of the Apple secret
// generator is `apple_client_secret_is_an_es256_jwt_signed_with_the_key` above.

/// "authorized as superuser submitting valid data": the secrets sent in the PATCH are stored
/// (read back from `_params` in data.db after the server stopped) and never echoed.
#[test]
fn patched_secrets_are_persisted_but_never_answered() {
    let mut server = start(&ServerSpec::from_env(), &fixture());
    let valid = r#"{
        "meta":{"appName":"update_test"},
        "smtp":{"password": "new_smtp_password"},
        "s3":{"secret": "new_s3_secret"},
        "backups":{"s3":{"secret":"new_backups_s3_secret"}}
    }"#;
    let (status, body) = su(&server, "PATCH", "/api/settings", Some(valid));
    assert_eq!(status, 200, "{body}");
    for part in [
        r#""meta":{"#,
        r#""logs":{"#,
        r#""smtp":{"#,
        r#""s3":{"#,
        r#""backups":{"#,
        r#""batch":{"#,
        r#""appName":"update_test""#,
    ] {
        assert!(body.contains(part), "{part} missing in {body}");
    }
    for secret in ["secret", "password"] {
        assert!(!body.contains(secret), "{secret} answered in {body}");
    }
    server.stop();

    let db = rusqlite::Connection::open(server.data_dir().join("data.db")).unwrap();
    // PocketBase stores the value as a JSON blob
    let stored: Vec<u8> = db
        .query_row("SELECT value FROM _params WHERE id = 'settings'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let stored = json(&String::from_utf8_lossy(&stored));
    assert_eq!(stored["meta"]["appName"], "update_test");
    assert_eq!(stored["smtp"]["password"], "new_smtp_password");
    assert_eq!(stored["s3"]["secret"], "new_s3_secret");
    assert_eq!(stored["backups"]["s3"]["secret"], "new_backups_s3_secret");
}

/// "authorized as superuser (verifiation template)", "(password reset template)",
/// "(email change)" and "(otp)": exactly one mail per call, to the given address, with the
/// template's text.
#[test]
fn each_test_email_template_sends_one_mail() {
    let (smtp_port, mail) = smtp_sink();
    let server = start(&ServerSpec::from_env(), &fixture());
    let patch = format!(r#"{{"smtp":{{"enabled":true,"host":"127.0.0.1","port":{smtp_port}}}}}"#);
    let (status, body) = su(&server, "PATCH", "/api/settings", Some(&patch));
    assert_eq!(status, 200, "{body}");

    let cases = [
        ("verification", "Verify"),
        ("password-reset", "Reset password"),
        ("email-change", "Confirm new email"),
        ("otp", "one-time password"),
    ];
    for (template, text) in cases {
        let request = format!(r#"{{"template":"{template}","email":"test@example.com"}}"#);
        let (status, body) = su(&server, "POST", "/api/settings/test/email", Some(&request));
        assert_eq!((status, body.as_str()), (204, ""), "{template}");
        let got = mail
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{template}: no mail arrived"));
        assert_eq!(got.rcpt_to, ["<test@example.com>"], "{template}");
        let data = unquote(&got.data);
        let html = &data[data
            .find("text/html")
            .unwrap_or_else(|| panic!("{template}: no HTML part in {data}"))..];
        assert!(html.contains(text), "{template}: {text:?} not in {html}");
        // exactly one message per request: nothing else is queued behind it
        assert!(
            mail.recv_timeout(Duration::from_millis(300)).is_err(),
            "{template}: a second mail was sent"
        );
    }
}

fn fixture() -> std::path::PathBuf {
    fixture_dir()
}

fn start(spec: &ServerSpec, template: &std::path::Path) -> Server {
    Server::start(spec, Some(template)).unwrap_or_else(|e| panic!("{e}"))
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
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
    (resp.status, resp.text())
}

fn su(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    call(server, method, path, Some(SUPERUSER), body)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn b64url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("bad base64url {s:?}: {e}"))
}

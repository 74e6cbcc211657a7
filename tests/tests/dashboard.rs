//! The admin dashboard at `/_/` (source in `ui/`, its committed build embedded in `pocketbun`).
//!
//! Over plain HTTP: `/_` redirects, `index.html` is `no-cache`, hashed assets are immutable,
//! precompressed bodies follow Accept-Encoding, PocketBase's CSP is on every file, and a first
//! start prints the one-time install link.
//!
//! In a real browser: `ui/tests/e2e.mjs` drives Debian's headless Chromium (through npm
//! `playwright-core`, no browser download) against a fresh `pocketbun` from the install link
//! on: sign-in, collections with every field type, records with a file upload and a relation
//! pick, a rejected API rule, logs, a setting, a backup and its restore, the SQL console,
//! "Explain" with its suggested index, impersonation, the installer restoring a backup on a
//! second fresh server, and an OTP + MFA sign-in whose code comes from a real SMTP sink; any
//! console error, failed request or request to another host fails it. The same script runs
//! against the real PocketBase of `POCKETBASE_VERSION` (serving the same build from
//! `--publicDir`), which shows that the dashboard uses only PocketBase's public Web API.
//! Without Node or Chromium the browser part is skipped with one line, and fails under
//! `CI=true`; so does a missing PocketBase (`need` policy).

use pocketbun_tests::dashboard::{dashboard_url, install_token, mail_drop, on_both_servers, Suite};
use pocketbun_tests::{http, Server, ServerSpec};
use std::process::Command;

fn get(server: &Server, target: &str, accept_encoding: Option<&str>) -> http::Response {
    let mut req = http::Request::new("GET", target)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close");
    if let Some(ae) = accept_encoding {
        req = req.header("Accept-Encoding", ae);
    }
    req.send(server.port()).expect("GET")
}

#[test]
fn dashboard_is_served_with_caching_compression_and_csp() {
    let server = Server::start(&ServerSpec::pocketbun(), None).unwrap_or_else(|e| panic!("{e}"));
    let token = install_token(&server);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let r = get(&server, "/_", None);
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/_/"));

    let index = get(&server, "/_/", None);
    assert_eq!(index.status, 200);
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(index
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(index.header("content-encoding"), None);
    let html = index.text();
    let js = regex::Regex::new(r#"src="\./(assets/[^"]+\.js)""#)
        .unwrap()
        .captures(&html)
        .unwrap_or_else(|| panic!("no script in {html}"))[1]
        .to_string();

    let plain = get(&server, &format!("/_/{js}"), None);
    assert_eq!(plain.status, 200);
    assert!(plain.header("content-type").unwrap().contains("javascript"));
    assert!(plain.header("cache-control").unwrap().contains("immutable"));
    assert!(plain.header("content-security-policy").is_some());
    let br = get(&server, &format!("/_/{js}"), Some("gzip, deflate, br"));
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    let gz = get(&server, &format!("/_/{js}"), Some("gzip"));
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(br.body.len() < gz.body.len() && gz.body.len() < plain.body.len() / 2);
    // the precompressed body is the file itself
    assert_eq!(gunzip(&gz.body), plain.body);

    let missing = get(&server, "/_/assets/nope.js", None);
    assert_eq!(missing.status, 404);
    let ext = get(&server, "/_/extensions.js", None);
    assert_eq!(ext.status, 200);
}

/// `gzip -dc` of `bytes` (keeps a zlib crate out of the tests' dependencies for one check).
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().stdout
}

/// Runs the browser suite against `server`; `fresh` is a second never-installed server of the
/// same kind for the installer's "initialize from a backup".
fn run_e2e(ui: &std::path::Path, server: &Server, fresh: &Server, version: &str) {
    let fresh_token = install_token(fresh);
    let mail = mail_drop(server.root());
    let mut suite = Suite::new("e2e.mjs", "browser suite");
    suite.env = vec![
        ("SERVER_VERSION", version.into()),
        ("SMTP_PORT", mail.port.to_string().into()),
        ("MAIL_DIR", mail.dir.into()),
        ("INSTALL2_URL", dashboard_url(fresh).into()),
        ("INSTALL2_TOKEN", fresh_token.into()),
    ];
    suite.also_logs = vec![("fresh server", fresh)];
    suite.run(ui, server, version);
}

#[test]
fn dashboard_in_headless_chromium() {
    on_both_servers("dashboard_in_headless_chromium", |ui, spec, version| {
        let server = Server::start(spec, None).unwrap_or_else(|e| panic!("{e}"));
        let fresh = Server::start(spec, None).unwrap_or_else(|e| panic!("{e}"));
        run_e2e(ui, &server, &fresh, version);
    });
}

//! The schema side of the admin dashboard at `/_/` in a real browser: `ui/tests/e2e-schema.mjs`
//! drives Debian's headless Chromium (through npm `playwright-core`) against a fresh `pocketbun`
//! from its install link on: the sidebar's search, pins and collapsible System group; truncate
//! after a confirmation; field flags (hidden, presentable, required), help text, rename with the
//! values kept, reorder and delete, listed in one confirmation before the save; a unique and a
//! plain multi-column index from the index editor (a duplicate insert is then refused; a renamed
//! field is renamed in its index, a deleted one drops it); an auth collection's OAuth2 provider
//! (display name, auth URL, PKCE, mapped fields), token durations and a mail template; the
//! collections export (with its collection picker) and import with its diff preview, also with
//! "delete missing"; a collection rename; and a view query edit. Each effect is checked through the Web API or
//! after a reload; any console error, failed request or request to another host fails the run.
//!
//! The same script then runs against the real PocketBase of `POCKETBASE_VERSION` serving the
//! same build from `--publicDir`, which shows that these screens use only PocketBase's public
//! Web API. Without Node or Chromium the test is skipped with one line, and fails under
//! `CI=true`; so does a missing PocketBase (`need` policy).

use pocketbun_tests::{need, pocketbase, workspace_root, Server, ServerSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TEST: &str = "dashboard_schema_in_headless_chromium";

/// The install token from the `#/pbinstall/{token}` link the server printed on its first start.
fn install_token(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if let Some(i) = log.find("#/pbinstall/") {
            let rest = &log[i + "#/pbinstall/".len()..];
            return rest.split_whitespace().next().unwrap_or("").to_string();
        }
        assert!(Instant::now() < deadline, "no install link printed:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ui/` with `playwright-core` installed (npm ci on first use), node and Chromium; `Err`
/// says what is missing.
fn browser_setup() -> Result<PathBuf, String> {
    let ui = workspace_root().join("ui");
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("no node on PATH".into()),
    }
    if !ui.join("node_modules/playwright-core").is_dir() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&ui)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("npm ci in ui/ failed".into());
        }
    }
    Ok(ui)
}

/// Runs the schema suite against `server`, whose dashboard is at `dashboard_url`.
fn run_suite(ui: &Path, server: &Server, dashboard_url: &str, version: &str) {
    let token = install_token(server);
    let out = Command::new("node")
        .arg("tests/e2e-schema.mjs")
        .arg(dashboard_url)
        .arg(&token)
        .env("FAIL_SCREENSHOT_DIR", server.root())
        .current_dir(ui)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{} {version}:\n{stdout}", server.kind().name());
    assert!(
        out.status.success(),
        "{} {version}: schema browser suite failed\n{stdout}{}\nserver log:\n{}",
        server.kind().name(),
        String::from_utf8_lossy(&out.stderr),
        server.log(),
    );
    assert!(
        stdout.contains(" passed, 0 failed"),
        "no summary line from the suite:\n{stdout}"
    );
}

#[test]
fn dashboard_schema_in_headless_chromium() {
    let ui = match browser_setup() {
        Ok(ui) => ui,
        Err(why) => {
            need::unavailable(TEST, &format!("the browser tests cannot run: {why}"));
            return;
        }
    };
    let server = Server::start(&ServerSpec::pocketbun(), None).unwrap_or_else(|e| panic!("{e}"));
    run_suite(
        &ui,
        &server,
        &format!("http://127.0.0.1:{}/_/", server.port()),
        env!("CARGO_PKG_VERSION"),
    );
    drop(server);

    // the same build and suite against PocketBase's API: it serves ui/dist as its public dir
    let Some(mut spec) = ServerSpec::reference(TEST) else {
        return;
    };
    let wanted = pocketbase::wanted_version();
    let version = pocketbase::version_of(&spec.program).unwrap_or_default();
    assert_eq!(
        version,
        wanted,
        "{} is PocketBase {version:?}, but POCKETBASE_VERSION asks for {wanted}",
        spec.program.display()
    );
    spec.args
        .push(format!("--publicDir={}", ui.join("dist").display()));
    let pb = Server::start(&spec, None).unwrap_or_else(|e| panic!("{e}"));
    run_suite(
        &ui,
        &pb,
        &format!("http://127.0.0.1:{}/", pb.port()),
        &version,
    );
}

//! The official PocketBase JS SDK (npm `pocketbase`, run with Node) drives a realistic app
//! flow against a running server: superuser login, two related collections, CRUD with file
//! uploads (FormData/Blob), replacing and removing files, lists with filters and sorts,
//! `getFullList`, `getFirstListItem`, expand (nested and back-relations), `fields`, batch
//! (with a file), file downloads and thumbs, cascade delete, and a guest's view. The script
//! (`tests/js/records.mjs`) asserts each step and exits non-zero with a message on a mismatch.
//! It runs against the real PocketBase (`POCKETBASE_VERSION`, default 0.40.6) too (when it can be had), so its expectations
//! are PocketBase's.

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::{workspace_root, Server, ServerSpec};
use std::path::PathBuf;
use std::process::Command;

fn fixture() -> PathBuf {
    fixture_dir()
}

/// Runs the script against `spec` on a fresh copy of the fixture; the script's failure message.
fn run_app_flow(spec: &ServerSpec, sdk: &std::path::Path) -> Result<(), String> {
    let server = Server::start(spec, Some(&fixture())).unwrap_or_else(|e| panic!("{e}"));
    let script = sdk.join("records.mjs");
    std::fs::copy(workspace_root().join("tests/js/records.mjs"), &script).unwrap();
    let png = fixture().join("storage/_pb_users_auth_/4q1xlclmfloku33/300_1SEi6Q6U72.png");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", server.port()))
        .arg(&png)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.trim() == "ok" {
        return Ok(());
    }
    Err(format!(
        "{}: {stdout}{}\nserver log:\n{}",
        spec.kind.name(),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    ))
}

#[test]
fn official_js_sdk_app_flow() {
    let sdk = match pocketbun_tests::node::js_sdk_dir() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    // the script's expectations hold on PocketBase itself
    match ServerSpec::reference("js_sdk (PocketBase part)") {
        Some(spec) => run_app_flow(&spec, &sdk).unwrap_or_else(|e| panic!("{e}")),
        None => eprintln!("PocketBase binary unavailable: the script runs against PocketBun only"),
    }
    run_app_flow(&ServerSpec::pocketbun(), &sdk).unwrap_or_else(|e| panic!("{e}"));
}

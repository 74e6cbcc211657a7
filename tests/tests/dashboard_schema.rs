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

use pocketbun_tests::dashboard::{on_both_servers, Suite};
use pocketbun_tests::Server;

#[test]
fn dashboard_schema_in_headless_chromium() {
    on_both_servers(
        "dashboard_schema_in_headless_chromium",
        |ui, spec, version| {
            let server = Server::start(spec, None).unwrap_or_else(|e| panic!("{e}"));
            let stdout =
                Suite::new("e2e-schema.mjs", "schema browser suite").run(ui, &server, version);
            assert!(
                stdout.contains(" passed, 0 failed"),
                "no summary line from the suite:\n{stdout}"
            );
        },
    );
}

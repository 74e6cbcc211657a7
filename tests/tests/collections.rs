//! `/api/collections` end to end: the scenarios of PocketBase's `apis/collection_test.go`
//! and `apis/collection_import_test.go` that need more than a request and a response
//! (`needsGo` in the conformance corpus). Their Go setup is redone over the HTTP API,
//! and their Go after-checks are redone on the server's SQLite file and storage dir.
//!
//! Every test runs against the server of `CONFORMANCE_SERVER` (PocketBun by default,
//! `pocketbase` for the reference binary). Assertions on PocketBase's internal hook
//! events (`ExpectedEvents`) have no HTTP equivalent and are left out.
//!
//! The "tx body write check" scenarios and the import "non-validator failure" bind a Go
//! hook to the request; PocketBun has no hooks, so they run against PocketBase only
//! (with the same hook as a JS `pb_hooks` file) and are skipped, with a message, on
//! PocketBun.

use pocketbun_tests::http::Request;
use pocketbun_tests::{need, Server, ServerKind, ServerSpec};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Fixture superuser `test@example.com` (token valid until 2050).
const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

/// Number of collections in the fixture (`_collections` rows).
const FIXTURE_COLLECTIONS: i64 = 16;

/// `demo5`'s id; the fixture has files of its records under `storage/<id>`.
const DEMO5_ID: &str = "9n89pl5vkct6330";

fn fixture() -> Option<PathBuf> {
    need::fixture("collections")
}

fn start(spec: &ServerSpec, fixture: &Path) -> Server {
    Server::start(spec, Some(fixture)).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `method path` as the fixture superuser, with `body` as JSON when given.
fn su(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut req = Request::new(method, path)
        .header("Host", "127.0.0.1")
        .header("Authorization", SUPERUSER);
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .header("Content-Length", &b.len().to_string())
            .body(b.as_bytes().to_vec());
    }
    let res = req
        .header("Connection", "close")
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (res.status, res.text())
}

/// PocketBase's `ExpectedContent` rule: every fragment is in the body.
fn assert_contains_all(body: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(body.contains(f), "missing {f:?} in {body}");
    }
}

/// Read-only connection to the server's `data.db` (WAL: sees committed writes).
fn db(server: &Server) -> Connection {
    let path = server.data_dir().join("data.db");
    Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn has_table(server: &Server, name: &str) -> bool {
    db(server)
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type IN ('table','view') AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        > 0
}

/// Names of the table's explicit indexes (like PocketBase's `TableIndexes`:
/// SQLite's automatic indexes, without SQL, are not listed), sorted.
fn table_indexes(server: &Server, table: &str) -> Vec<String> {
    let conn = db(server);
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    names
}

/// `(all, system)` collection counts of `_collections`.
fn collection_counts(server: &Server) -> (i64, i64) {
    db(server)
        .query_row(
            "SELECT count(*), coalesce(sum(system), 0) FROM _collections",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Number of entries in `storage/<collection id>` (0 when the dir is gone).
fn storage_entries(server: &Server, collection_id: &str) -> usize {
    std::fs::read_dir(server.data_dir().join("storage").join(collection_id))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (up to 5 s) for the files of a deleted collection to go: the deletion of a
/// collection's files may happen after the response (PocketBase's scenario waits too).
fn assert_storage_emptied(server: &Server, collection_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = storage_entries(server, collection_id);
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "storage/{collection_id} still has {n} entries"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Redoes the Go setup `demo1.AddIndex("exist_test", false, "updated", "")` +
/// save: adds that index to `demo1` over the API, keeping its other indexes.
fn add_exist_test_index_to_demo1(server: &Server) {
    let (status, body) = su(server, "GET", "/api/collections/demo1", None);
    assert_eq!(status, 200, "{body}");
    let demo1: Value = serde_json::from_str(&body).unwrap();
    let mut indexes = demo1["indexes"].as_array().cloned().unwrap_or_default();
    indexes.push("CREATE INDEX `exist_test` ON `demo1` (`updated`)".into());
    let patch = serde_json::json!({ "indexes": indexes }).to_string();
    let (status, body) = su(server, "PATCH", "/api/collections/demo1", Some(&patch));
    assert_eq!(status, 200, "setup: {body}");
    assert!(
        table_indexes(server, "demo1").contains(&"exist_test".to_string()),
        "setup: exist_test index not created on demo1"
    );
}

// ---------------------------------------------------------------------------
// collection_test.go: TestCollectionDelete
// ---------------------------------------------------------------------------

/// `collection_test:TestCollectionDelete#4` and `#5`: deleting `demo5` by name or by
/// id answers 204, drops its table and removes its records' files.
#[test]
fn delete_by_name_or_id_drops_the_table_and_the_files() {
    let Some(fixture) = fixture() else { return };
    for target in ["demo5", DEMO5_ID] {
        let server = start(&ServerSpec::from_env(), &fixture);
        assert!(
            storage_entries(&server, DEMO5_ID) > 0,
            "fixture has demo5 files"
        );
        let (status, body) = su(
            &server,
            "DELETE",
            &format!("/api/collections/{target}"),
            None,
        );
        assert_eq!(status, 204, "DELETE {target}: {body}");
        assert_eq!(body, "", "DELETE {target}");
        assert_storage_emptied(&server, DEMO5_ID);
        assert!(!has_table(&server, "demo5"), "DELETE {target}: table kept");
        let (all, _) = collection_counts(&server);
        assert_eq!(all, FIXTURE_COLLECTIONS - 1);
        let (status, _) = su(&server, "GET", "/api/collections/demo5", None);
        assert_eq!(status, 404);
    }
}

// ---------------------------------------------------------------------------
// collection_test.go: TestCollectionCreate
// ---------------------------------------------------------------------------

/// `collection_test:TestCollectionCreate#14`: an index name already used by another
/// collection's table is rejected.
#[test]
fn create_rejects_an_index_name_of_another_collection() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    add_exist_test_index_to_demo1(&server);
    let (status, body) = su(
        &server,
        "POST",
        "/api/collections",
        Some(
            r#"{
                "name":"new",
                "type":"base",
                "fields":[{"type":"text","name":"test"}],
                "indexes":["create index exist_test on new (test)"]
            }"#,
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert_contains_all(
        &body,
        &[
            r#""data":{"#,
            r#""indexes":{"#,
            r#""0":{"code":"validation_existing_index_name""#,
        ],
    );
    assert!(!has_table(&server, "new"));
    assert_eq!(collection_counts(&server).0, FIXTURE_COLLECTIONS);
}

/// `collection_test:TestCollectionCreate#16`: valid indexes are created on the new
/// table, whatever table name their SQL gives.
#[test]
fn create_makes_the_indexes_on_the_new_table() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let (status, body) = su(
        &server,
        "POST",
        "/api/collections",
        Some(
            r#"{
                "name":"new",
                "type":"base",
                "fields":[{"type":"text","name":"test"}],
                "indexes":[
                    "create index idx_test1 on new (test)",
                    "create index idx_test2 on anything (id, test)"
                ]
            }"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_contains_all(
        &body,
        &[
            r#""name":"new""#,
            r#""type":"base""#,
            r#""indexes":["#,
            "idx_test1",
            "idx_test2",
        ],
    );
    assert_eq!(table_indexes(&server, "new"), ["idx_test1", "idx_test2"]);
    assert!(table_indexes(&server, "anything").is_empty());
}

// ---------------------------------------------------------------------------
// collection_test.go: TestCollectionUpdate
// ---------------------------------------------------------------------------

/// `collection_test:TestCollectionUpdate#7`: renaming `demo1` renames its table.
#[test]
fn update_rename_renames_the_table() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let before: i64 = db(&server)
        .query_row("SELECT count(*) FROM demo1", [], |r| r.get(0))
        .unwrap();
    let (status, body) = su(
        &server,
        "PATCH",
        "/api/collections/demo1",
        Some(r#"{"name":"new"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert_contains_all(&body, &[r#""id":"#, r#""name":"new""#]);
    assert!(has_table(&server, "new"), "no table `new` after the rename");
    assert!(!has_table(&server, "demo1"), "table `demo1` kept");
    // the records moved with the table
    let after: i64 = db(&server)
        .query_row("SELECT count(*) FROM new", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, before);
}

/// `collection_test:TestCollectionUpdate#14`: an index name already used by another
/// collection's table is rejected on update too.
#[test]
fn update_rejects_an_index_name_of_another_collection() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    add_exist_test_index_to_demo1(&server);
    let before = table_indexes(&server, "demo2");
    let (status, body) = su(
        &server,
        "PATCH",
        "/api/collections/demo2",
        Some(r#"{"indexes":["create index exist_test on new (test)"]}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert_contains_all(
        &body,
        &[
            r#""data":{"#,
            r#""indexes":{"#,
            r#""0":{"code":"validation_existing_index_name""#,
        ],
    );
    assert_eq!(table_indexes(&server, "demo2"), before);
}

/// `collection_test:TestCollectionUpdate#16`: the submitted indexes replace the old
/// ones of `demo2`'s table.
#[test]
fn update_replaces_the_table_indexes() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let (status, body) = su(
        &server,
        "PATCH",
        "/api/collections/demo2",
        Some(
            r#"{"indexes":[
                "create unique index idx_test1 on demo2 (title)",
                "create index idx_test2 on anything (active)"
            ]}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_contains_all(
        &body,
        &[
            r#""name":"demo2""#,
            r#""indexes":["#,
            "idx_test1",
            "idx_test2",
        ],
    );
    assert_eq!(table_indexes(&server, "demo2"), ["idx_test1", "idx_test2"]);
}

// ---------------------------------------------------------------------------
// collection_import_test.go: TestCollectionsImport
// ---------------------------------------------------------------------------

/// `collection_import_test:TestCollectionsImport#3`: an empty list is rejected and
/// nothing changes.
#[test]
fn import_of_nothing_is_rejected() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let (status, body) = su(
        &server,
        "PUT",
        "/api/collections/import",
        Some(r#"{"collections":[]}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert_contains_all(
        &body,
        &[
            r#""data":{"#,
            r#""collections":{"code":"validation_required""#,
        ],
    );
    assert_eq!(collection_counts(&server).0, FIXTURE_COLLECTIONS);
}

/// `collection_import_test:TestCollectionsImport#4`: one invalid collection (a
/// reserved field name) fails the whole import; nothing is created.
#[test]
fn import_with_an_invalid_collection_creates_nothing() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let (status, body) = su(
        &server,
        "PUT",
        "/api/collections/import",
        Some(
            r#"{"collections":[
                {"name":"import1"},
                {"name":"import2","fields":[{"id":"koih1lqx","name":"expand","type":"text"}]}
            ]}"#,
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert_contains_all(
        &body,
        &[
            r#""data":{"#,
            r#""collections":{"code":"validation_collections_import_failure""#,
            "import2",
            "fields",
        ],
    );
    assert!(!body.contains("Raw error:"), "{body}");
    assert_eq!(collection_counts(&server).0, FIXTURE_COLLECTIONS);
    assert!(!has_table(&server, "import1"));
    assert!(!has_table(&server, "import2"));
}

const IMPORT_THREE: &str = r#"{"collections":[
    {"name":"import1","fields":[{"id":"koih1lqx","name":"test","type":"text"}]},
    {"name":"import2","fields":[{"id":"koih1lqx","name":"test","type":"text"}],
     "indexes":["create index idx_test on import2 (test)"]},
    {"name":"auth_without_fields","type":"auth"}
]}"#;

/// `collection_import_test:TestCollectionsImport#6`: three new collections are
/// created, with their tables and indexes.
#[test]
fn import_creates_the_collections() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let (status, body) = su(
        &server,
        "PUT",
        "/api/collections/import",
        Some(IMPORT_THREE),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, "");
    assert_eq!(collection_counts(&server).0, FIXTURE_COLLECTIONS + 3);
    for table in ["import1", "import2", "auth_without_fields"] {
        assert!(has_table(&server, table), "no table {table}");
    }
    assert!(
        table_indexes(&server, "import2").contains(&"idx_test".to_string()),
        "missing index idx_test: {:?}",
        table_indexes(&server, "import2")
    );
}

const IMPORT_REPLACE: &str = r#"{
    "deleteMissing": true,
    "collections":[
        {"name":"test123"},
        {"id":"wsmn24bux7wo113","name":"demo1",
         "fields":[{"id":"_2hlxbmp","name":"title","type":"text","required":true}],
         "indexes":[]}
    ]
}"#;

/// `collection_import_test:TestCollectionsImport#7`: with `deleteMissing`, only the
/// system collections and the two imported ones remain.
#[test]
fn import_with_delete_missing_keeps_only_system_and_imported_collections() {
    let Some(fixture) = fixture() else { return };
    let server = start(&ServerSpec::from_env(), &fixture);
    let (status, body) = su(
        &server,
        "PUT",
        "/api/collections/import",
        Some(IMPORT_REPLACE),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, "");
    let (all, system) = collection_counts(&server);
    assert_eq!(all, system + 2, "{all} collections, {system} system ones");
    assert!(has_table(&server, "test123"));
    assert!(has_table(&server, "demo1"));
    for gone in [
        "demo2", "demo3", "demo4", "demo5", "users", "view1", "view2",
    ] {
        assert!(!has_table(&server, gone), "table {gone} kept");
    }
    // demo1 kept its records, lost the fields that were not imported, and its index
    let conn = db(&server);
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('demo1')")
        .unwrap();
    let mut columns = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    columns.sort();
    assert_eq!(columns, ["id", "title"]);
    assert!(table_indexes(&server, "demo1").is_empty());
}

// ---------------------------------------------------------------------------
// Hook scenarios: PocketBase only (through a `pb_hooks` JS file)
// ---------------------------------------------------------------------------

/// Starts PocketBase with `hooks` (JS) as its only `pb_hooks` file; `None` (with a
/// message) on PocketBun, which has no hooks.
fn start_with_hooks(fixture: &Path, hooks: &str) -> Option<(Server, tempfile::TempDir)> {
    let mut spec = ServerSpec::from_env();
    if spec.kind != ServerKind::PocketBase {
        println!(
            "skipped on {}: the scenario binds a server hook",
            spec.kind.name()
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.pb.js"), hooks).unwrap();
    spec.args
        .push(format!("--hooksDir={}", dir.path().to_string_lossy()));
    Some((start(&spec, fixture), dir))
}

/// The Go "tx body write check" hook, as JS: the request runs in a transaction that is
/// then failed with `TX_ERROR`.
fn tx_error_hook(event: &str) -> String {
    format!(
        "{event}((e) => {{\n  $app.runInTransaction((txApp) => {{\n    const original = e.app;\n    \
         e.app = txApp;\n    try {{ e.next(); }} finally {{ e.app = original; }}\n    \
         throw new BadRequestError(\"TX_ERROR\");\n  }});\n}});\n"
    )
}

/// `collection_test:TestCollectionsList#7`, `TestCollectionView#6`,
/// `TestCollectionDelete#9`, `TestCollectionCreate#10`, `TestCollectionUpdate#5` and
/// `collection_import_test:TestCollectionsImport#8`: a request hook that runs the
/// handler in a transaction and then fails answers its error, and the writes of the
/// handler are rolled back.
#[test]
fn request_hooks_in_a_failed_transaction_answer_their_error() {
    let Some(fixture) = fixture() else { return };
    let cases: [(&str, &str, &str, Option<&str>); 6] = [
        ("onCollectionsListRequest", "GET", "/api/collections", None),
        (
            "onCollectionViewRequest",
            "GET",
            "/api/collections/wsmn24bux7wo113",
            None,
        ),
        (
            "onCollectionDeleteRequest",
            "DELETE",
            "/api/collections/view2",
            None,
        ),
        (
            "onCollectionCreateRequest",
            "POST",
            "/api/collections",
            Some(r#"{"name":"new","type":"base"}"#),
        ),
        (
            "onCollectionUpdateRequest",
            "PATCH",
            "/api/collections/demo1",
            Some("{}"),
        ),
        (
            "onCollectionsImportRequest",
            "PUT",
            "/api/collections/import",
            Some(IMPORT_REPLACE),
        ),
    ];
    for (event, method, path, body) in cases {
        let Some((server, _hooks)) = start_with_hooks(&fixture, &tx_error_hook(event)) else {
            return;
        };
        let (status, answer) = su(&server, method, path, body);
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_contains_all(&answer, &["TX_ERROR"]);
        // nothing the handler wrote survived
        assert_eq!(collection_counts(&server).0, FIXTURE_COLLECTIONS);
        assert!(has_table(&server, "view2"));
        assert!(!has_table(&server, "new"));
        assert!(!has_table(&server, "test123"));
    }
}

/// `collection_import_test:TestCollectionsImport#5`: a collection-create hook that
/// fails makes the import fail with the raw error; nothing is created.
#[test]
fn import_reports_a_non_validation_error_raw() {
    let Some(fixture) = fixture() else { return };
    let hook = "onCollectionCreate((e) => { throw new Error(\"custom_error\"); });\n";
    let Some((server, _hooks)) = start_with_hooks(&fixture, hook) else {
        return;
    };
    let body = r#"{"collections":[
        {"name":"import1","fields":[{"id":"koih1lqx","name":"test","type":"text"}]},
        {"name":"import2","fields":[{"id":"koih1lqx","name":"test","type":"text"}],
         "indexes":["create index idx_test on import2 (test)"]}
    ]}"#;
    let (status, answer) = su(&server, "PUT", "/api/collections/import", Some(body));
    assert_eq!(status, 400, "{answer}");
    assert_contains_all(
        &answer,
        &[
            r#""data":{"#,
            r#""collections":{"code":"validation_collections_import_failure""#,
            "Raw error:",
            "custom_error",
        ],
    );
    assert_eq!(collection_counts(&server).0, FIXTURE_COLLECTIONS);
}

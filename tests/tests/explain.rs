//! `GET /api/collections/{collection}/explain` (PocketBun only) over real HTTP: SQLite's plan
//! of the records-list query for a filter and sort, and the suggested index. The plan shows a
//! full scan; the suggested index, added through the ordinary collection update, turns it
//! into an index search and is then no longer suggested. Bad filters get the records list's
//! own 400 envelope; guests 401, other auth records 403, as on every superuser route. On the
//! real PocketBase the route does not exist (404), so it clashes with none of its routes.

use pocketbun_tests::dashboard::install_token;
use pocketbun_tests::{Server, ServerSpec};
use serde_json::{json, Value};

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = server.call(method, path, token, &body);
    let v = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    (status, v)
}

fn ok(server: &Server, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let (status, v) = call(server, method, path, token, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

/// `filter`/`sort` as a query string.
fn explain_path(coll: &str, filter: &str, sort: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "/api/collections/{coll}/explain?filter={}&sort={}",
        enc(filter),
        enc(sort)
    )
}

fn details(plan: &Value) -> Vec<String> {
    plan.as_array()
        .unwrap_or_else(|| panic!("no plan rows: {plan}"))
        .iter()
        .map(|r| r["detail"].as_str().unwrap().to_string())
        .collect()
}

/// A fresh PocketBun with a superuser, a `users` record and an `items` collection with rows;
/// returns (server, superuser token, user token).
fn setup() -> (Server, String, String) {
    let server = Server::start(&ServerSpec::pocketbun(), None).unwrap_or_else(|e| panic!("{e}"));
    let installer = install_token(&server);
    let (email, password) = ("root@example.com", "explain-pass-1");
    ok(
        &server,
        "POST",
        "/api/collections/_superusers/records",
        Some(&installer),
        json!({"email": email, "password": password, "passwordConfirm": password}),
    );
    let su = ok(
        &server,
        "POST",
        "/api/collections/_superusers/auth-with-password",
        None,
        json!({"identity": email, "password": password}),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &server,
        "POST",
        "/api/collections/users/records",
        Some(&su),
        json!({"email": "u@example.com", "password": "user-pass-123", "passwordConfirm": "user-pass-123"}),
    );
    let user = ok(
        &server,
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        json!({"identity": "u@example.com", "password": "user-pass-123"}),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &server,
        "POST",
        "/api/collections",
        Some(&su),
        json!({
            "name": "items",
            "type": "base",
            "listRule": "",
            "fields": [
                {"name": "status", "type": "text"},
                {"name": "score", "type": "number"},
                {"name": "note", "type": "text"},
                {"name": "data", "type": "json"},
                {"name": "created", "type": "autodate", "onCreate": true},
            ],
        }),
    );
    for i in 0..40 {
        let status = ["open", "closed", "draft"][i % 3];
        ok(
            &server,
            "POST",
            "/api/collections/items/records",
            Some(&su),
            json!({"status": status, "score": i, "note": format!("n{i}")}),
        );
    }
    (server, su, user)
}

#[test]
fn explain_shows_the_plan_and_the_suggested_index_serves_it() {
    let (server, su, _) = setup();
    let filter = "status = 'open' && score > 3";
    let path = explain_path("items", filter, "-created");
    let before = ok(&server, "GET", &path, Some(&su), Value::Null);
    let plan = details(&before["plan"]);
    assert!(
        plan.iter().any(|d| d == "SCAN items"),
        "no full scan before the index: {before:#}"
    );
    assert_eq!(before["fullScan"], true);
    assert_eq!(before["suggestedColumns"], json!(["status", "score"]));
    let index = before["suggestedIndex"].as_str().unwrap().to_string();
    assert_eq!(
        index,
        "CREATE INDEX `idx_items_status_score` ON `items` (`status`, `score`)"
    );
    assert!(before["sql"]
        .as_str()
        .unwrap()
        .starts_with("SELECT `items`.* FROM `items` WHERE"));
    // the list itself, for comparison after the index
    let list_path = path.replace("/explain?", "/records?perPage=100&");
    let list_before = ok(&server, "GET", &list_path, Some(&su), Value::Null);
    assert_eq!(list_before["totalItems"], 12, "{list_before}");

    // the suggestion goes in through the normal collection update
    let coll = ok(
        &server,
        "GET",
        "/api/collections/items",
        Some(&su),
        Value::Null,
    );
    let mut indexes = coll["indexes"].as_array().unwrap().clone();
    indexes.push(Value::String(index.clone()));
    ok(
        &server,
        "PATCH",
        "/api/collections/items",
        Some(&su),
        json!({ "indexes": indexes }),
    );

    let after = ok(&server, "GET", &path, Some(&su), Value::Null);
    let plan = details(&after["plan"]);
    assert!(
        plan.iter().any(|d| d
            .starts_with("SEARCH items USING INDEX idx_items_status_score (status=? AND score>?)")),
        "the index is not used: {after:#}"
    );
    assert_eq!(after["fullScan"], false, "{after:#}");
    assert_eq!(after["suggestedIndex"], Value::Null);
    assert!(
        after["note"]
            .as_str()
            .unwrap()
            .contains("idx_items_status_score"),
        "{after:#}"
    );
    let count_plan = details(&after["countPlan"]);
    assert!(
        count_plan
            .iter()
            .any(|d| d.contains("idx_items_status_score")),
        "{count_plan:?}"
    );
    // same rows through the index
    let list_after = ok(&server, "GET", &list_path, Some(&su), Value::Null);
    assert_eq!(list_after["items"], list_before["items"]);
}

#[test]
fn explain_suggests_nothing_an_index_cannot_serve() {
    let (server, su, _) = setup();
    let cases = [
        ("status = 'a' || score = 1", "", "||"),
        ("note ~ 'x'", "", "LIKE"),
        ("data = 'x'", "", "No plain column"),
        // SQLite's own primary-key index already leads with `id`
        ("id = 'abc'", "", "sqlite_autoindex_items_1"),
    ];
    for (filter, sort, note) in cases {
        let v = ok(
            &server,
            "GET",
            &explain_path("items", filter, sort),
            Some(&su),
            Value::Null,
        );
        assert_eq!(v["suggestedIndex"], Value::Null, "{filter}: {v:#}");
        assert!(
            v["note"].as_str().unwrap().contains(note),
            "{filter}: {v:#}"
        );
    }
    // sort only: the sort columns, in their directions
    let v = ok(
        &server,
        "GET",
        &explain_path("items", "", "note,-score"),
        Some(&su),
        Value::Null,
    );
    assert_eq!(
        v["suggestedIndex"],
        "CREATE INDEX `idx_items_note_score` ON `items` (`note`, `score` DESC)"
    );
    // a view collection has no indexes of its own
    ok(
        &server,
        "POST",
        "/api/collections",
        Some(&su),
        json!({"name": "open_items", "type": "view", "viewQuery": "SELECT id, status FROM items WHERE status = 'open'"}),
    );
    let v = ok(
        &server,
        "GET",
        &explain_path("open_items", "status = 'open'", ""),
        Some(&su),
        Value::Null,
    );
    assert_eq!(v["suggestedIndex"], Value::Null);
    assert!(!details(&v["plan"]).is_empty());
}

#[test]
fn explain_errors_use_pocketbase_envelopes() {
    let (server, su, user) = setup();
    // a bad filter: the records list's own 400 for the same filter
    for (filter, sort) in [("status ===", ""), ("nosuch = 1", ""), ("", "nosuch")] {
        let (status, v) = call(
            &server,
            "GET",
            &explain_path("items", filter, sort),
            Some(&su),
            Value::Null,
        );
        let list = explain_path("items", filter, sort).replace("/explain?", "/records?");
        let (list_status, list_v) = call(&server, "GET", &list, Some(&su), Value::Null);
        assert_eq!(status, 400, "{filter:?}/{sort:?}: {v}");
        assert_eq!((status, &v), (list_status, &list_v), "{filter:?}/{sort:?}");
        assert_eq!(v["status"], 400);
        assert!(v["data"].is_object() && v["message"].is_string(), "{v}");
    }
    let path = explain_path("items", "status = 'open'", "");
    let (status, v) = call(&server, "GET", &path, None, Value::Null);
    assert_eq!(status, 401, "{v}");
    assert_eq!(
        v,
        json!({"data": {}, "message": "The request requires valid record authorization token.", "status": 401})
    );
    let (status, v) = call(&server, "GET", &path, Some(&user), Value::Null);
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["status"], 403);
    // the same answers as another superuser-only route
    let (s2, v2) = call(
        &server,
        "GET",
        "/api/collections/items",
        Some(&user),
        Value::Null,
    );
    assert_eq!((status, &v), (s2, &v2));
    let (status, v) = call(
        &server,
        "GET",
        &explain_path("nosuch", "", ""),
        Some(&su),
        Value::Null,
    );
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["status"], 404);
}

#[test]
fn pocketbase_has_no_explain_route() {
    let Some(spec) = ServerSpec::reference("pocketbase_has_no_explain_route") else {
        return;
    };
    let server = Server::start(&spec, None).unwrap_or_else(|e| panic!("{e}"));
    let installer = install_token(&server);
    for coll in ["_superusers", "users"] {
        let (status, v) = call(
            &server,
            "GET",
            &explain_path(coll, "id = 'x'", ""),
            Some(&installer),
            Value::Null,
        );
        assert_eq!(status, 404, "{coll}: {v}");
    }
}

/// A row's `published`, `featured`, `views`, `score`.
type Flags = (bool, bool, i64, i64);

/// Bool flags, two numbers with many ties, and `(published, views)` / `(featured, views)`
/// indexes, as the benchmark's posts: `published` holds for 2 rows in 3, `featured` for 1
/// in 10. Returns (server, superuser token, ids in creation order, row `i`'s values).
fn setup_flags() -> (Server, String, Vec<String>, Vec<Flags>) {
    let (server, su, _) = setup();
    ok(
        &server,
        "POST",
        "/api/collections",
        Some(&su),
        json!({
            "name": "posts",
            "type": "base",
            "listRule": "",
            "fields": [
                {"name": "published", "type": "bool"},
                {"name": "featured", "type": "bool"},
                {"name": "views", "type": "number"},
                {"name": "score", "type": "number"},
            ],
            "indexes": [
                "CREATE INDEX idx_posts_published_views ON posts (published, views)",
                "CREATE INDEX idx_posts_featured_views ON posts (featured, views)",
            ],
        }),
    );
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for i in 0..300i64 {
        let row = (i % 3 != 0, i % 10 == 0, (i * 31) % 20, (i * 37) % 50);
        let v = ok(
            &server,
            "POST",
            "/api/collections/posts/records",
            Some(&su),
            json!({"published": row.0, "featured": row.1, "views": row.2, "score": row.3}),
        );
        ids.push(v["id"].as_str().unwrap().to_string());
        rows.push(row);
    }
    (server, su, ids, rows)
}

/// The ids of a records list's page, and its `totalItems`.
fn list_ids(server: &Server, su: &str, filter: &str, sort: &str, page: &str) -> (Vec<String>, i64) {
    let path =
        explain_path("posts", filter, sort).replace("/explain?", &format!("/records?{page}&"));
    let v = ok(server, "GET", &path, Some(su), Value::Null);
    let ids = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    (ids, v["totalItems"].as_i64().unwrap())
}

/// Issue 18: SQLite searches `(published, views)` by `published` alone, fetches each row by
/// rowid and sorts them all, several times slower than a scan when the bool matches most
/// rows. The list then runs the same WHERE with `+published = 1` and the index's order as a
/// tie-break: the plan is a scan, the page the same rows in the same order (ties as the
/// index gave them: `views`, then creation); the total, which the index does not cover,
/// scans too. A total the index covers keeps it; a search that also constrains `views`, or
/// whose index gives the order, keeps its index; and a rare value (`featured`, 1 row in 10)
/// keeps its search.
#[test]
fn a_search_by_a_bool_then_a_sort_becomes_a_scan_with_the_same_rows() {
    let (server, su, ids, rows) = setup_flags();
    let explain = |filter: &str, sort: &str| {
        ok(
            &server,
            "GET",
            &explain_path("posts", filter, sort),
            Some(&su),
            Value::Null,
        )
    };
    let sort_then_ties = "USE TEMP B-TREE FOR ORDER BY";

    // the unindexed filter: a scan, a bool that no index serves, the index's order as ties
    let v = explain("published = true && score > 5", "-score");
    let plan = details(&v["plan"]);
    assert_eq!(plan, ["SCAN posts", sort_then_ties], "{v:#}");
    let sql = v["sql"].as_str().unwrap();
    assert!(sql.contains("+`posts`.`published` = 1"), "{sql}");
    assert!(
        sql.contains(
            "`posts`.`score` DESC, `posts`.`views` COLLATE `BINARY` ASC, `posts`.`_rowid_` ASC"
        ),
        "{sql}"
    );
    // so does the total, which the index does not cover (`score`)
    assert_eq!(details(&v["countPlan"]), ["SCAN posts"], "{v:#}");
    // the bool alone: the page scans, the total still counts through the covering index
    let v = explain("published = true", "-score");
    assert_eq!(details(&v["plan"]), ["SCAN posts", sort_then_ties], "{v:#}");
    assert_eq!(
        details(&v["countPlan"]),
        ["SEARCH posts USING COVERING INDEX idx_posts_published_views (published=?)"],
        "{v:#}"
    );

    // the indexed shapes keep their index
    let v = explain("published = true && views > 5", "-views");
    assert_eq!(
        details(&v["plan"]),
        ["SEARCH posts USING INDEX idx_posts_published_views (published=? AND views>?)"],
        "{v:#}"
    );
    let v = explain("published = true && views = 5", "-score");
    let plan = details(&v["plan"]);
    assert!(
        plan[0].starts_with(
            "SEARCH posts USING INDEX idx_posts_published_views (published=? AND views=?)"
        ),
        "{v:#}"
    );
    let v = explain("published = true", "");
    assert_eq!(
        details(&v["plan"]),
        ["SEARCH posts USING INDEX idx_posts_published_views (published=?)"],
        "{v:#}"
    );
    // a value 1 row in 10 has: the search reads few rows, it stays; 9 in 10: a scan
    let v = explain("featured = true && score > 5", "-score");
    let plan = details(&v["plan"]);
    assert!(
        plan[0].starts_with("SEARCH posts USING INDEX idx_posts_featured_views (featured=?)"),
        "{v:#}"
    );
    let v = explain("featured = false && score > 5", "-score");
    assert_eq!(details(&v["plan"])[0], "SCAN posts", "{v:#}");

    // the pages: the rows the index search gave, in its order
    for (filter, flag) in [
        ("published = true && score > 5", 0),
        ("published = false && score > 5", 1),
        ("featured = false && score > 5", 2),
    ] {
        let mut expected: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                let (p, f, _, s) = rows[i];
                s > 5 && [p, !p, !f][flag]
            })
            .collect();
        expected.sort_by_key(|&i| (-rows[i].3, rows[i].2, i));
        let expected: Vec<String> = expected.into_iter().map(|i| ids[i].clone()).collect();
        let (all, _) = list_ids(&server, &su, filter, "-score", "perPage=500&skipTotal=1");
        assert_eq!(all, expected[..expected.len().min(500)], "{filter}");
        for page in 1..=2 {
            let query = format!("page={page}&perPage=30");
            let (got, total) = list_ids(&server, &su, filter, "-score", &query);
            assert_eq!(
                got,
                expected[(page - 1) * 30..page * 30],
                "{filter} page {page}"
            );
            assert_eq!(total, expected.len() as i64, "{filter} page {page}");
        }
    }
}

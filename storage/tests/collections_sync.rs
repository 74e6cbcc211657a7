//! Schema sync against real SQLite files and the real PocketBase: tables
//! created/altered/renamed with their rows intact, views with inferred
//! fields, and the result served by PocketBase exactly as we describe it.

mod common;
#[path = "collections_http.rs"]
mod http;

use pocketbun_storage::collections::{
    create_collection, delete_collection, update_collection, Collection, CollectionType, Field,
    FieldKind, SaveError,
};
use pocketbun_storage::rusqlite::Connection;
use pocketbun_storage::{Store, StoreOptions};
use serde_json::{json, Value};

fn text(name: &str) -> Field {
    Field::new(name, FieldKind::zero("text").unwrap())
}

fn create(store: &Store, c: Collection) -> Result<Collection, String> {
    store
        .writer()
        .submit_blocking(move |conn| Ok(create_collection(conn, c)))
        .unwrap()
        .map_err(|e| e.to_string())
}

fn update(store: &Store, c: Collection) -> Result<Collection, String> {
    store
        .writer()
        .submit_blocking(move |conn| Ok(update_collection(conn, c)))
        .unwrap()
        .map_err(|e| e.to_string())
}

fn exec(store: &Store, sql: &'static str) {
    store
        .writer()
        .submit_blocking(move |conn| Ok(conn.execute_batch(sql)?))
        .unwrap();
}

fn query_json(dir: &std::path::Path, sql: &str) -> Vec<Value> {
    let conn = Connection::open(dir.join("data.db")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let names: Vec<String> = (0..n)
        .map(|i| stmt.column_name(i).unwrap().to_string())
        .collect();
    stmt.query_map([], |r| {
        let mut m = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let v: pocketbun_storage::rusqlite::types::Value = r.get(i)?;
            use pocketbun_storage::rusqlite::types::Value as V;
            m.insert(
                name.clone(),
                match v {
                    V::Null => Value::Null,
                    V::Integer(i) => json!(i),
                    V::Real(f) => json!(f),
                    V::Text(t) => json!(t),
                    V::Blob(_) => json!("<blob>"),
                },
            );
        }
        Ok(Value::Object(m))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn create_alter_rename_keeps_rows_and_pocketbase_serves_it() {
    let dir = common::temp_dir("collections-sync").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();

    // create "posts"
    let mut posts = Collection::new(CollectionType::Base, "posts", None);
    posts.fields.push(text("title"));
    posts.fields.push(Field::new(
        "count",
        FieldKind::Number {
            min: None,
            max: None,
            only_int: false,
        },
    ));
    posts.fields.push(Field::new(
        "tag",
        FieldKind::Select {
            values: Some(vec!["a".into(), "b".into(), "c".into()]),
            max_select: 1,
        },
    ));
    posts.fields.push(Field::new(
        "owner",
        FieldKind::Relation {
            collection_id: "_pb_users_auth_".into(),
            cascade_delete: false,
            min_select: 0,
            max_select: 1,
        },
    ));
    posts.list_rule = Some(String::new());
    let posts = create(&store, posts).unwrap();
    assert_eq!(
        posts.id,
        Collection::new(CollectionType::Base, "posts", None).id
    );
    assert!(posts.id.starts_with("pbc_"));
    assert_eq!(posts.fields[0].name, "id");
    assert!(posts.fields.iter().all(|f| !f.id.is_empty()));

    exec(
        &store,
        "INSERT INTO posts (id, title, count, tag, owner) VALUES
            ('p1aaaaaaaaaaaaa', 'first', 1, 'a', ''),
            ('p2aaaaaaaaaaaaa', 'second', 2.5, '', ''),
            ('p3aaaaaaaaaaaaa', 'third <&>', 3, 'c', 'u1')",
    );

    // rename a field, drop one, add one, single -> multiple, rename table, add an index
    let mut next = posts.clone();
    next.name = "articles".into();
    next.field_mut("title").unwrap().name = "headline".into();
    next.fields.retain(|f| f.name != "count");
    if let FieldKind::Select { max_select, .. } = &mut next.field_mut("tag").unwrap().kind {
        *max_select = 3;
    }
    next.fields.push(Field::new(
        "body",
        FieldKind::Editor {
            max_size: 0,
            convert_urls: false,
        },
    ));
    next.indexes
        .push("CREATE INDEX `idx_headline` ON `posts` (`headline`)".into());
    let articles = update(&store, next).unwrap();
    assert_eq!(articles.created, posts.created);
    assert_eq!(
        articles.indexes,
        vec!["CREATE INDEX `idx_headline` ON `articles` (`headline`)".to_string()]
    );
    store.close();
    drop(store);

    let rows = query_json(&dir, "SELECT * FROM articles ORDER BY id");
    assert_eq!(
        Value::Array(rows),
        json!([
            {"id": "p1aaaaaaaaaaaaa", "headline": "first", "tag": "[\"a\"]", "owner": "", "body": ""},
            {"id": "p2aaaaaaaaaaaaa", "headline": "second", "tag": "[]", "owner": "", "body": ""},
            {"id": "p3aaaaaaaaaaaaa", "headline": "third <&>", "tag": "[\"c\"]", "owner": "u1", "body": ""}
        ])
    );
    let conn = Connection::open(dir.join("data.db")).unwrap();
    let missing: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('posts')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0);
    let idx: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='idx_headline' AND tbl_name='articles'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 1);
    let stored = Collection::load(&conn, "ARTICLES").unwrap().unwrap();
    assert_eq!(stored, articles);
    drop(conn);

    // the real PocketBase reads the same collection and records
    let Some(bin) = common::pocketbase_bin("collections_sync_pb") else {
        return;
    };
    let out = common::pb_cli(
        &bin,
        &dir,
        &["superuser", "upsert", "root@example.com", "pa55word!!1"],
    );
    assert!(out.contains("Successfully"), "{out}");
    let server = common::PbServer::start(&bin, &dir);
    let (status, body) = common::superuser_login(server.port, "root@example.com", "pa55word!!1");
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {token}\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let status: u16 = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = buf.split_once("\r\n\r\n").unwrap().1.trim_end().to_string();
        (status, body)
    };
    let (status, body) = get("/api/collections/articles");
    assert_eq!(status, 200, "{body}");
    http::assert_same(&articles.to_api_json(), &body, "articles API JSON");
    let (status, body) =
        get("/api/collections/articles/records?sort=id&fields=id,headline,tag,owner,body");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["items"],
        json!([
            {"id": "p1aaaaaaaaaaaaa", "headline": "first", "tag": ["a"], "owner": "", "body": ""},
            {"id": "p2aaaaaaaaaaaaa", "headline": "second", "tag": [], "owner": "", "body": ""},
            {"id": "p3aaaaaaaaaaaaa", "headline": "third <&>", "tag": ["c"], "owner": "u1", "body": ""}
        ])
    );
}

#[test]
fn new_auth_collection_matches_pocketbase_defaults() {
    let Some(bin) = common::pocketbase_bin("new_auth_collection_matches_pocketbase_defaults")
    else {
        return;
    };
    let base = common::temp_dir("collections-auth");
    let Some(pb_dir) = http::fixture_copy(base.join("pb"), "new_auth_collection") else {
        return;
    };
    let ours_dir = base.join("ours").join("pb_data");
    assert!(http::copy_fixture(&ours_dir));

    let server = common::PbServer::start(&bin, &pb_dir);
    let (status, theirs) = http::call(
        server.port,
        "POST",
        "/api/collections",
        Some(r#"{"name":"members","type":"auth","fields":[{"name":"nick","type":"text"}]}"#),
    );
    assert_eq!(status, 200, "{theirs}");
    let (status, base_theirs) = http::call(
        server.port,
        "POST",
        "/api/collections",
        Some(
            r#"{"name":"notes","fields":[{"name":"n","type":"number"},{"name":"when","type":"autodate","onCreate":true}]}"#,
        ),
    );
    assert_eq!(status, 200, "{base_theirs}");
    drop(server);

    let store = Store::open(&ours_dir, StoreOptions::default()).unwrap();
    let mut members = Collection::new(CollectionType::Auth, "members", None);
    let payload: Value =
        serde_json::from_str(r#"{"fields":[{"name":"nick","type":"text"}]}"#).unwrap();
    members.apply_json(payload.as_object().unwrap()).unwrap();
    let members = create(&store, members).unwrap();
    let mut notes = Collection::new(CollectionType::Base, "notes", None);
    let payload: Value = serde_json::from_str(
        r#"{"fields":[{"name":"n","type":"number"},{"name":"when","type":"autodate","onCreate":true}]}"#,
    )
    .unwrap();
    notes.apply_json(payload.as_object().unwrap()).unwrap();
    let notes = create(&store, notes).unwrap();
    store.close();

    for (ours, theirs) in [(&members, &theirs), (&notes, &base_theirs)] {
        // timestamps differ; everything else must be identical
        let t: Value = serde_json::from_str(theirs).unwrap();
        let theirs = theirs
            .replace(
                &format!("\"created\":\"{}\"", t["created"].as_str().unwrap()),
                &format!("\"created\":\"{}\"", ours.created),
            )
            .replace(
                &format!("\"updated\":\"{}\"", t["updated"].as_str().unwrap()),
                &format!("\"updated\":\"{}\"", ours.updated),
            );
        http::assert_same(&ours.to_api_json(), &theirs, &ours.name);
    }
    // and the tables PocketBase created are the ones we create
    let schema = |dir: &std::path::Path, name: &str| -> Vec<String> {
        let conn = Connection::open(dir.join("data.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY type DESC, name")
            .unwrap();
        stmt.query_map([name], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for name in ["members", "notes"] {
        assert_eq!(schema(&ours_dir, name), schema(&pb_dir, name), "{name} DDL");
    }
}

#[test]
fn view_fields_are_inferred_like_pocketbase() {
    let Some(bin) = common::pocketbase_bin("view_fields_are_inferred_like_pocketbase") else {
        return;
    };
    let base = common::temp_dir("collections-view");
    let Some(pb_dir) = http::fixture_copy(base.join("pb"), "view_fields") else {
        return;
    };
    let ours_dir = base.join("ours").join("pb_data");
    assert!(http::copy_fixture(&ours_dir));
    let queries = [
        ("v_plain", "select id, text, bool, number, rel_one, rel_many, file_many, point from demo1"),
        (
            "v_exprs",
            "SELECT d.id, count(u.id) as cnt, total(d.number) sum, cast(d.number as int) n, cast(d.bool as text) t, d.rel_one as r, u.id as uid, u.email, 1+1 as two FROM demo1 d LEFT JOIN users u ON u.id = d.rel_one GROUP BY d.id",
        ),
        ("v_rownum", "select (ROW_NUMBER() OVER()) as id, email, created from users"),
    ];
    let server = common::PbServer::start(&bin, &pb_dir);
    let mut theirs = Vec::new();
    for (name, q) in queries {
        let body = json!({"name": name, "type": "view", "viewQuery": q}).to_string();
        let (status, resp) = http::call(server.port, "POST", "/api/collections", Some(&body));
        assert_eq!(status, 200, "{name}: {resp}");
        theirs.push(resp);
    }
    let (status, bad) = http::call(
        server.port,
        "POST",
        "/api/collections",
        Some(r#"{"name":"v_bad","type":"view","viewQuery":"select text from demo1"}"#),
    );
    assert_eq!(status, 400, "{bad}");
    let records_theirs = http::call(
        server.port,
        "GET",
        "/api/collections/v_rownum/records?sort=email",
        None,
    )
    .1;
    drop(server);

    let store = Store::open(&ours_dir, StoreOptions::default()).unwrap();
    for ((name, q), theirs) in queries.iter().zip(&theirs) {
        let mut v = Collection::new(CollectionType::View, name, None);
        v.view_query = q.to_string();
        let ours = create(&store, v).unwrap();
        let t: Value = serde_json::from_str(theirs).unwrap();
        let mut o: Value = serde_json::from_str(&ours.to_api_json()).unwrap();
        o["created"] = t["created"].clone();
        o["updated"] = t["updated"].clone();
        // cloned fields get random ids: compare their shape
        for (of, tf) in o["fields"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(t["fields"].as_array().unwrap())
        {
            let (oid, tid) = (of["id"].as_str().unwrap(), tf["id"].as_str().unwrap());
            if tid.starts_with("_clone_") {
                assert!(
                    oid.starts_with("_clone_") && oid.len() == tid.len(),
                    "{oid} vs {tid}"
                );
                of["id"] = tf["id"].clone();
            }
        }
        assert_eq!(o, t, "view {name}");
    }
    let mut bad = Collection::new(CollectionType::View, "v_bad", None);
    bad.view_query = "select text from demo1".into();
    let err = store
        .writer()
        .submit_blocking(move |conn| Ok(create_collection(conn, bad)))
        .unwrap()
        .unwrap_err();
    match err {
        SaveError::Validation(v) => {
            assert_eq!(v.code("viewQuery"), Some("validation_invalid_view_query"))
        }
        other => panic!("{other:?}"),
    }
    store.close();
    drop(store);

    // PocketBase serves our view's records like its own
    let server = common::PbServer::start(&bin, &ours_dir);
    let records_ours = http::call(
        server.port,
        "GET",
        "/api/collections/v_rownum/records?sort=email",
        None,
    )
    .1;
    let strip = |s: &str| {
        let mut v: Value = serde_json::from_str(s).unwrap();
        for item in v["items"].as_array_mut().unwrap() {
            item["collectionId"] = json!("");
        }
        v
    };
    assert_eq!(strip(&records_ours), strip(&records_theirs));
}

#[test]
fn delete_is_refused_while_referenced_and_drops_the_table() {
    let Some(dir) = http::fixture_copy(common::temp_dir("collections-delete"), "delete") else {
        return;
    };
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let del = |name: &'static str| {
        store
            .writer()
            .submit_blocking(move |conn| Ok(delete_collection(conn, name)))
            .unwrap()
    };
    match del("users") {
        Err(SaveError::Refused(m)) => assert!(
            m.starts_with("[users] failed to delete due to existing relation references:"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    match del("_superusers") {
        Err(SaveError::Refused(m)) => {
            assert_eq!(m, "[_superusers] system collections cannot be deleted")
        }
        other => panic!("{other:?}"),
    }
    // demo1 is used by view1 -> view2: refused, nothing changed
    match del("demo1") {
        Err(SaveError::Refused(m)) => assert!(
            m.contains("references") || m.contains("view dependency"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let deleted = del("view2").unwrap();
    assert_eq!(deleted.name, "view2");
    store.close();
    let conn = Connection::open(dir.join("data.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('view2', 'demo1')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "view2 dropped, demo1 kept");
    assert!(Collection::load(&conn, "view2").unwrap().is_none());
    assert!(Collection::load(&conn, "demo1").unwrap().is_some());
}

#[test]
fn a_failed_save_leaves_nothing_behind() {
    let dir = common::temp_dir("collections-atomic").join("pb_data");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    // the table gets created, then the index fails (unknown column): all undone
    let mut c = Collection::new(CollectionType::Base, "half", None);
    c.fields.push(text("title"));
    c.indexes
        .push("CREATE INDEX `idx_half_missing` ON `half` (`nope`)".into());
    let r = store
        .writer()
        .submit_blocking(move |conn| Ok(create_collection(conn, c)))
        .unwrap();
    match r {
        Err(SaveError::Validation(v)) => {
            assert_eq!(
                v.code("indexes.0"),
                Some("validation_invalid_index_expression")
            )
        }
        other => panic!("{other:?}"),
    }
    store.close();
    let conn = Connection::open(dir.join("data.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM sqlite_master WHERE tbl_name = 'half') + (SELECT count(*) FROM _collections WHERE name = 'half')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

//! The collection model against PocketBase's own fixture: every stored
//! `_collections` row decodes and re-encodes to the identical row, and our
//! API JSON equals what the real PocketBase serves for it, byte for byte.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use pocketbun_storage::collections::model::ROW_COLUMNS;
use pocketbun_storage::collections::{
    Collection, CollectionRow, CollectionType, Collections, FieldKind,
};
use pocketbun_storage::rusqlite::Connection;

const SUPERUSER_TOKEN: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

/// A writable copy of the fixture's data files, or `None` (SKIP) if absent.
fn fixture_copy(test: &str) -> Option<PathBuf> {
    let src = pocketbun_tests::need::fixture(test)?;
    let dir = common::temp_dir(test).join("pb_data");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["data.db", "data.db-wal", "auxiliary.db"] {
        if src.join(f).exists() {
            common::copy_dir_file(&src.join(f), &dir.join(f));
        }
    }
    Some(dir)
}

fn rows(conn: &Connection) -> Vec<CollectionRow> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM `_collections` ORDER BY rowid"
        ))
        .unwrap();
    stmt.query_map([], CollectionRow::from_sql)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// GET with the superuser token; returns (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: {SUPERUSER_TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// Whether every stored field has the full v0.39 key set (`help`/`required`
/// for every type but autodate).
fn fields_are_canonical(fields: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(fields).unwrap();
    v.as_array().unwrap().iter().all(|f| {
        f["type"] == "autodate" || (f.get("help").is_some() && f.get("required").is_some())
    })
}

/// Every key/value stored is kept; added keys hold Go zero values.
fn assert_fields_superset(ours: &str, stored: &str, name: &str) {
    use serde_json::Value;
    let ours: Value = serde_json::from_str(ours).unwrap();
    let stored: Value = serde_json::from_str(stored).unwrap();
    let (ours, stored) = (ours.as_array().unwrap(), stored.as_array().unwrap());
    assert_eq!(ours.len(), stored.len(), "{name}: field count");
    for (o, s) in ours.iter().zip(stored) {
        let (o, s) = (o.as_object().unwrap(), s.as_object().unwrap());
        for (k, v) in s {
            assert_eq!(o.get(k), Some(v), "{name}.{}: key {k}", s["name"]);
        }
        for (k, v) in o {
            if !s.contains_key(k) {
                let zero = matches!(v, Value::Null | Value::Bool(false))
                    || v.as_str() == Some("")
                    || v.as_f64() == Some(0.0);
                assert!(zero, "{name}.{}: added non-zero {k}={v}", s["name"]);
            }
        }
    }
}

/// A row stored by PocketBase 0.39 as PocketBase 0.40 (Go's `encoding/json/v2`) writes it
/// again: `<`, `>`, `&`, U+2028 and U+2029 unescaped, a nil list `[]` and a nil map `{}`
/// instead of `null` (the deliberate 0.40 changes; nothing else may differ).
fn as_040(stored: &str) -> String {
    let mut s = stored
        .replace("\\u003c", "<")
        .replace("\\u003e", ">")
        .replace("\\u0026", "&")
        .replace("\\u2028", "\u{2028}")
        .replace("\\u2029", "\u{2029}");
    for key in [
        "exceptDomains",
        "onlyDomains",
        "thumbs",
        "mimeTypes",
        "providers",
        "values",
        "identityFields",
    ] {
        s = s.replace(&format!("\"{key}\":null"), &format!("\"{key}\":[]"));
    }
    s.replace("\"extra\":null", "\"extra\":{}")
}

/// Equality with a short report around the first difference.
fn assert_same(ours: &str, theirs: &str, what: &str) {
    if ours == theirs {
        return;
    }
    let at = ours
        .bytes()
        .zip(theirs.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let from = at.saturating_sub(80);
    panic!(
        "{what} differs at byte {at}:\n ours:   {:?}\n theirs: {:?}",
        ours.get(from..(at + 80).min(ours.len())).unwrap_or(""),
        theirs.get(from..(at + 80).min(theirs.len())).unwrap_or("")
    );
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

#[test]
fn fixture_rows_round_trip_identically() {
    let Some(dir) = fixture_copy("collections-roundtrip") else {
        return;
    };
    let conn = Connection::open(dir.join("data.db")).unwrap();
    let stored = rows(&conn);
    assert!(
        stored.len() >= 16,
        "fixture has {} collections",
        stored.len()
    );
    let mut identical = 0;
    for row in &stored {
        let c = Collection::from_row(row).unwrap_or_else(|e| panic!("{}: {e}", row.name));
        let back = c.to_row();
        let mut row = row.clone();
        row.options = as_040(&row.options);
        row.fields = as_040(&row.fields);
        let row = &row;
        assert_same(
            &back.options,
            &row.options,
            &format!("{} options", row.name),
        );
        assert_same(
            &back.indexes,
            &row.indexes,
            &format!("{} indexes", row.name),
        );
        if fields_are_canonical(&row.fields) {
            assert_same(&back.fields, &row.fields, &format!("{} fields", row.name));
            assert_eq!(&back, row, "row of {} changed", row.name);
            identical += 1;
        } else {
            // rows written by older PocketBase versions lack newer option
            // keys: nothing stored may change, only zero-valued keys appear
            assert_fields_superset(&back.fields, &row.fields, &row.name);
            let again = Collection::from_row(&back).unwrap().to_row();
            assert_eq!(
                again, back,
                "{}: canonical form is not a fixed point",
                row.name
            );
            let mut expected = row.clone();
            expected.fields = back.fields.clone();
            assert_eq!(back, expected, "row of {} changed", row.name);
        }
    }
    assert!(identical >= 7, "only {identical} rows were byte-identical");
    // every field type of the fixture decoded to the right variant
    let all = Collections::load(&conn).unwrap();
    let demo1 = all.get("DEMO1").expect("case-insensitive lookup");
    let types: Vec<&str> = demo1.fields.iter().map(|f| f.type_name()).collect();
    for t in [
        "text", "bool", "url", "select", "file", "number", "email", "date", "json", "relation",
        "geoPoint", "autodate",
    ] {
        assert!(types.contains(&t), "demo1 lacks a {t} field: {types:?}");
    }
    assert!(demo1.field("select_many").unwrap().is_multiple());
    assert!(!demo1.field("select_one").unwrap().is_multiple());
    assert_eq!(
        demo1.field("rel_many").unwrap().relation_target(),
        Some("_pb_users_auth_")
    );
    assert!(matches!(
        demo1.field("id").unwrap().kind,
        FieldKind::Text {
            primary_key: true,
            ..
        }
    ));
    let users = all.by_id("_pb_users_auth_").unwrap();
    assert_eq!(users.kind, CollectionType::Auth);
    assert_eq!(users.auth.auth_token.secret.len(), 50);
    assert!(users.field("password").unwrap().hidden);
    assert!(all.references_to("_pb_users_auth_").count() >= 1);
}

#[test]
fn api_json_matches_real_pocketbase_for_every_fixture_collection() {
    let Some(bin) = common::pocketbase_bin("api_json_matches_real_pocketbase") else {
        return;
    };
    let Some(dir) = fixture_copy("collections-apijson") else {
        return;
    };
    let ours = {
        let conn = Connection::open(dir.join("data.db")).unwrap();
        Collection::load_all(&conn).unwrap()
    };
    let server = common::PbServer::start(&bin, &dir);
    for c in &ours {
        for key in [&c.name, &c.id] {
            let (status, body) = get(server.port, &format!("/api/collections/{key}"));
            assert_eq!(status, 200, "{key}: {body}");
            // PocketBase's encoder ends the body with a newline
            let body = body.strip_suffix('\n').unwrap_or(&body);
            assert_same(&c.to_api_json(), body, &format!("API JSON of {key}"));
        }
    }
    // the list endpoint embeds the same objects
    let (status, body) = get(server.port, "/api/collections?perPage=500&sort=created");
    assert_eq!(status, 200);
    for c in &ours {
        assert!(
            body.contains(&c.to_api_json()),
            "list lacks exact JSON of {}",
            c.name
        );
    }
}

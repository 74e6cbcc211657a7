//! The bodies of the `cargo fuzz` targets in `engine/fuzz`, kept here so that the same checks
//! also run on stable: `tests/fuzz_seeds.rs` replays the checked-in seeds and a few thousand
//! deterministic mutations of them through these functions on every `cargo test`.
//!
//! Each function takes arbitrary bytes and panics only when a property is broken. They reach
//! the code a record request runs before any storage: body binding (JSON, urlencoded,
//! multipart), the draft a body becomes, the `fields=` picker and `expand=` normalisation.

use crate::apis::body::{form_record_data, multipart_record_body};
use crate::records::input::RecordBody;
use crate::records::write::{get_json, Draft};
use crate::records::{expand, pick};
use pocketbun_http::{BodyFraming, Headers, Method, Request, RequestHead, Version};
use pocketbun_storage::collections::{Collection, CollectionType, Field, FieldKind};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

const BOUNDARY: &str = "fuzzBoundary";

fn request(content_type: &str, query: &str, body: &[u8]) -> Request {
    let mut headers = Headers::new();
    headers.push("Host", "x");
    headers.push("Content-Type", content_type);
    let target = format!("/api/collections/posts/records?{query}");
    Request {
        head: RequestHead {
            method: Method::Post,
            path: "/api/collections/posts/records".into(),
            query: query.to_string(),
            target,
            version: Version::Http11,
            headers,
            keep_alive: true,
            framing: BodyFraming::Length(body.len() as u64),
            expect_continue: false,
        },
        body: body.to_vec(),
        peer: ([127, 0, 0, 1], 1).into(),
        params: Vec::new(),
    }
}

/// Binds a body the way record create/update does.
fn bind(req: &Request) -> Result<RecordBody, crate::apis::body::Unbound> {
    let ct = req.header("content-type").unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        return multipart_record_body(ct, &req.body, req.query());
    }
    Ok(RecordBody {
        data: form_record_data(&req.body, req.query())?,
        uploads: Vec::new(),
    })
}

/// The first byte picks the body's type (urlencoded or multipart with a fixed boundary); up
/// to the first NUL of the rest is the query string (form bodies also bind it, as Go's
/// `Request.Form` does), the remainder the body. Never a panic; a bound form names no more
/// keys than it has pairs, and multipart uploads keep their bytes.
pub fn form_body(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (query, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (
            String::from_utf8_lossy(&rest[..i]).into_owned(),
            &rest[i + 1..],
        ),
        None => (String::new(), rest),
    };
    let content_type = if kind % 2 == 0 {
        "application/x-www-form-urlencoded".to_string()
    } else {
        format!("multipart/form-data; boundary={BOUNDARY}")
    };
    let req = request(&content_type, &query, body);
    let Ok(bound) = bind(&req) else {
        return;
    };
    let pairs = |s: &[u8]| s.split(|&b| b == b'&').filter(|p| !p.is_empty()).count();
    if kind % 2 == 0 {
        assert!(bound.uploads.is_empty());
        // every key comes from a pair, except what `@jsonPayload` objects merge in
        if !body.windows(12).any(|w| w == b"@jsonPayload") && !query.contains("@jsonPayload") {
            assert!(bound.data.len() <= pairs(body) + pairs(query.as_bytes()));
        }
    } else {
        let total: usize = bound.uploads.iter().map(|u| u.data.len()).sum();
        assert!(total <= body.len());
    }
}

fn collections() -> &'static [Arc<Collection>; 2] {
    static C: OnceLock<[Arc<Collection>; 2]> = OnceLock::new();
    C.get_or_init(|| {
        let fields = [
            json!({"name": "title", "type": "text", "max": 10}),
            json!({"name": "slug", "type": "text", "autogeneratePattern": "[a-z]{5}"}),
            json!({"name": "views", "type": "number"}),
            json!({"name": "published", "type": "bool"}),
            json!({"name": "contact", "type": "email"}),
            json!({"name": "site", "type": "url"}),
            json!({"name": "body", "type": "editor"}),
            json!({"name": "due", "type": "date"}),
            json!({"name": "created", "type": "autodate", "onCreate": true}),
            json!({"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}),
            json!({"name": "tag", "type": "select", "values": ["a", "b"], "maxSelect": 1}),
            json!({"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3}),
            json!({"name": "meta", "type": "json"}),
            json!({"name": "cover", "type": "file", "maxSelect": 1}),
            json!({"name": "docs", "type": "file", "maxSelect": 5}),
            json!({"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}),
            json!({"name": "related", "type": "relation", "collectionId": "pbc_posts", "maxSelect": 9}),
            json!({"name": "secret", "type": "text", "hidden": true}),
            json!({"name": "loc", "type": "geoPoint"}),
        ];
        let build = |kind, name, id| {
            let mut c = Collection::new(kind, name, Some(id));
            for f in &fields {
                c.fields.push(Field::from_json(f).expect("a valid field"));
            }
            Arc::new(c)
        };
        [
            build(CollectionType::Base, "posts", "pbc_posts"),
            build(CollectionType::Auth, "users", "_pb_users_auth_"),
        ]
    })
}

/// Any bytes as a JSON record body, bound and loaded into a new record of a base and of an
/// auth collection as a guest and as a superuser: never a panic, and every field's value
/// afterwards has its field's JSON type (what the record's JSON and the SQL row are made of).
pub fn record_draft(data: &[u8]) {
    let req = request("application/json", "", data);
    let Ok(bound) = bind(&req) else {
        return;
    };
    for coll in collections() {
        for superuser in [false, true] {
            let mut draft = Draft::new(coll.clone());
            let resolved = draft.resolve(bound.data.clone(), bound.uploads.clone());
            draft.load(&resolved, superuser);
            let _ = draft.body_for_rules(&resolved);
            draft.prepare_save("2024-01-02 03:04:05.678Z");
            for (f, v) in coll.fields.iter().zip(&draft.vals) {
                let j = get_json(f, v, Some(&draft.new_files));
                let ok = match &f.kind {
                    FieldKind::Number { .. } => j.is_number(),
                    FieldKind::Bool => j.is_boolean(),
                    FieldKind::Json { .. } => true,
                    FieldKind::GeoPoint => j.get("lon").is_some() && j.get("lat").is_some(),
                    _ if f.is_multiple() => j.is_array(),
                    _ => j.is_string(),
                };
                assert!(ok, "field {} ({}) holds {j}", f.name, f.type_name());
            }
        }
    }
}

/// A `fields=` value, a NUL, then a JSON document (a record, or a list with `items`): the
/// picker never panics, its output is JSON again, and it only ever removes keys.
pub fn fields_pick(data: &[u8]) {
    let (fields, doc) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &br#"{"id":"r1","title":"<p>Hello <b>world</b></p>","expand":{"owner":{"id":"u1","name":"n"}},"items":[{"id":"a","n":1}]}"#[..]),
    };
    let (Ok(fields), Ok(doc)) = (std::str::from_utf8(fields), std::str::from_utf8(doc)) else {
        return;
    };
    let Some(picks) = pick::parse(fields) else {
        return;
    };
    let Ok(input) = serde_json::from_str::<Value>(doc) else {
        return;
    };
    for list in [false, true] {
        let out = pick::apply(doc, &picks, list).expect("valid JSON in, JSON out");
        let out: Value = serde_json::from_str(&out).expect("the picker writes JSON");
        if let (Value::Object(before), Value::Object(after)) = (&input, &out) {
            assert!(
                after.keys().all(|k| before.contains_key(k)),
                "{fields:?} added a key"
            );
        }
    }
    for (_, ex) in picks.iter() {
        if let Some(ex) = ex {
            let text = pick::excerpt(doc, *ex);
            assert!(text.chars().count() <= ex.max + 3);
        }
    }
}

/// Any UTF-8 as an `expand=` value: the normalised paths are non-empty, free of spaces and
/// of surrounding dots, distinct, and none is a prefix path of another.
pub fn expand_list(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let paths = expand::normalize(raw);
    for (i, p) in paths.iter().enumerate() {
        assert!(!p.is_empty() && !p.contains(' '), "{p:?}");
        assert!(!p.starts_with('.') && !p.ends_with('.'), "{p:?}");
        for (j, q) in paths.iter().enumerate() {
            if i != j {
                assert_ne!(p, q);
                assert!(!q.starts_with(&format!("{p}.")), "{p:?} is inside {q:?}");
            }
        }
    }
    let _ = pocketbun_query::parse_expand(raw);
}

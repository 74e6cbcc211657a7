//! The bodies of the `cargo fuzz` targets in `query/fuzz`, kept here so that the same checks
//! also run on stable: `tests/fuzz_seeds.rs` replays the checked-in seeds and a few thousand
//! deterministic mutations of them through these functions on every `cargo test`.
//!
//! Each function takes arbitrary bytes and panics only when a property is broken.

use std::sync::OnceLock;

use crate::{
    compile_condition, compile_list, parse, parse_expand, parse_fields, parse_sort, AuthInfo,
    Collection, CollectionType, Field, FieldType, RequestInfo, Schema,
};
use serde_json::{json, Map};

fn field(name: &str, kind: FieldType) -> Field {
    Field::new(name, kind)
}

fn multi(name: &str, kind: FieldType, target: Option<&str>) -> Field {
    Field {
        multiple: true,
        collection_id: target.map(str::to_string),
        ..Field::new(name, kind)
    }
}

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let users = Collection {
            id: "_pb_users_auth_".into(),
            name: "users".into(),
            kind: CollectionType::Auth,
            fields: vec![
                field("id", FieldType::Text),
                field("email", FieldType::Email),
                field("name", FieldType::Text),
                field("verified", FieldType::Bool),
                Field {
                    hidden: true,
                    ..field("password", FieldType::Password)
                },
            ],
            list_rule: Some("id = @request.auth.id".into()),
            view_rule: Some(String::new()),
            indexes: vec!["CREATE UNIQUE INDEX `idx_email` ON `users` (`email`)".into()],
        };
        let posts = Collection {
            id: "pbc_posts".into(),
            name: "posts".into(),
            kind: CollectionType::Base,
            fields: vec![
                field("id", FieldType::Text),
                field("title", FieldType::Text),
                field("body", FieldType::Editor),
                field("published", FieldType::Bool),
                field("views", FieldType::Number),
                field("meta", FieldType::Json),
                field("loc", FieldType::GeoPoint),
                field("created", FieldType::Autodate),
                field("due", FieldType::Date),
                Field {
                    collection_id: Some("_pb_users_auth_".into()),
                    ..field("author", FieldType::Relation)
                },
                multi("tags", FieldType::Select, None),
                multi("files", FieldType::File, None),
                multi("related", FieldType::Relation, Some("pbc_posts")),
                Field {
                    hidden: true,
                    ..field("secret", FieldType::Text)
                },
            ],
            list_rule: Some("published = true || author = @request.auth.id".into()),
            view_rule: Some(String::new()),
            indexes: vec!["CREATE INDEX `idx_pv` ON `posts` (`published`, `views`)".into()],
        };
        let comments = Collection {
            id: "pbc_comments".into(),
            name: "comments".into(),
            kind: CollectionType::Base,
            fields: vec![
                field("id", FieldType::Text),
                field("text", FieldType::Text),
                Field {
                    collection_id: Some("pbc_posts".into()),
                    ..field("post", FieldType::Relation)
                },
                Field {
                    collection_id: Some("_pb_users_auth_".into()),
                    ..field("user", FieldType::Relation)
                },
            ],
            list_rule: Some(String::new()),
            view_rule: None,
            indexes: vec![],
        };
        let view = Collection {
            id: "pbc_view".into(),
            name: "stats".into(),
            kind: CollectionType::View,
            fields: vec![
                field("id", FieldType::Text),
                field("total", FieldType::Number),
            ],
            list_rule: None,
            view_rule: None,
            indexes: vec![],
        };
        Schema::new(1, vec![users, posts, comments, view])
    })
}

fn requests() -> [RequestInfo; 3] {
    let guest = RequestInfo {
        method: "GET".into(),
        context: "default".into(),
        ..RequestInfo::default()
    };
    let mut data = Map::new();
    data.insert("id".into(), json!("u1"));
    data.insert("name".into(), json!("x"));
    data.insert("verified".into(), json!(true));
    let mut body = Map::new();
    body.insert("title".into(), json!("t"));
    body.insert("related".into(), json!(["a", "b"]));
    body.insert("meta".into(), json!({"a": [1, {"b": null}]}));
    let user = RequestInfo {
        auth: Some(AuthInfo {
            id: "u1".into(),
            collection_id: "_pb_users_auth_".into(),
            collection_name: "users".into(),
            data,
        }),
        body,
        ..guest.clone()
    };
    let superuser = RequestInfo {
        superuser: true,
        ..guest.clone()
    };
    [guest, user, superuser]
}

/// Any UTF-8 as a filter (and as a sort, a rule, `fields`, `expand`): the parser and the
/// compiler answer a value or a `QueryError`, never panic.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse(text);
    let _ = parse_fields(text);
    let _ = parse_expand(text);
    let schema = schema();
    for req in requests() {
        for coll in ["posts", "comments", "users", "stats"] {
            let _ = compile_list(schema, coll, text, "", &req);
            let _ = compile_list(schema, coll, "", text, &req);
            let _ = compile_condition(schema, coll, text, &req, !req.superuser);
        }
        // every compiled query binds without panicking too
        if let Ok(q) = compile_list(schema, "posts", text, "-views,title", &req) {
            let _ = q.bind(&req, 1_700_000_000_000);
        }
    }
}

/// A list request's `filter`, `sort`, `fields` and `expand` together (the input split at NUL
/// bytes), as `GET .../records` takes them: compiled and bound for each caller, never a
/// panic.
pub fn list_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let filter = parts.next().unwrap_or("");
    let sort = parts.next().unwrap_or("");
    let fields = parts.next().unwrap_or("");
    let expand = parts.next().unwrap_or("");
    let _ = parse_fields(fields);
    let _ = parse_expand(expand);
    let sorted = parse_sort(sort);
    assert!(sorted.len() <= sort.len() + 1);
    let schema = schema();
    for req in requests() {
        for coll in ["posts", "comments", "users", "stats"] {
            if let Ok(q) = compile_list(schema, coll, filter, sort, &req) {
                let _ = q.bind(&req, 1_700_000_000_000);
            }
        }
    }
}

//! Test support: a `Schema` adapter over PocketBase's `_collections` table, request
//! builders, and running compiled queries on a real SQLite database.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pocketbun_query::{
    AuthInfo, Collection, CollectionType, CompiledQuery, Field, FieldType, RequestInfo, Schema,
    Value,
};
use rusqlite::{types::Value as SqlValue, Connection, OpenFlags};
use serde_json::{Map, Value as Json};

pub const SUPERUSER_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InN5d2JoZWNuaDQ2cmhtMCIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoicGJjXzMxNDI2MzU4MjMiLCJleHAiOjI1MjQ2MDQ0NjEsInJlZnJlc2hhYmxlIjp0cnVlfQ.UXgO3j-0BumcugrFjbd7j0M4MQvbrLggLlcu_YNGjoY";
pub const USER_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoiX3BiX3VzZXJzX2F1dGhfIiwiZXhwIjoyNTI0NjA0NDYxLCJyZWZyZXNoYWJsZSI6dHJ1ZX0.ZT3F0Z3iM-xbGgSG3LEKiEzHrPHr8t8IuHLZGGNuxLo";
pub const USER_ID: &str = "4q1xlclmfloku33";

/// Copies PocketBase's fixture (`../shared/conformance/pb_data`) to a temp dir; returns
/// (guard, pb_data path). When the fixture is missing: fails under `CI=true`, else prints
/// one SKIP line for `test` and returns `None`.
pub fn copy_fixture(test: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let src = pocketbun_tests::need::fixture(test)?;
    let dir = tempfile::tempdir().expect("temp dir");
    let dst = dir.path().join("pb_data");
    pocketbun_tests::copy_dir(&src, &dst).expect("copy the fixture");
    Some((dir, dst))
}

pub fn open(db: &Path) -> Connection {
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open data.db");
    register_math(&conn);
    conn
}

/// The SQL math functions PocketBase's `geoDistance` needs (the bundled SQLite is built
/// without SQLITE_ENABLE_MATH_FUNCTIONS).
pub fn register_math(conn: &Connection) {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    type MathFn = fn(f64) -> f64;
    let fns: [(&str, MathFn); 4] = [
        ("acos", f64::acos),
        ("cos", f64::cos),
        ("sin", f64::sin),
        ("radians", f64::to_radians),
    ];
    for (name, f) in fns {
        conn.create_scalar_function(name, 1, flags, move |ctx| {
            let v: Option<f64> = ctx.get(0)?;
            Ok(v.map(f).filter(|x| !x.is_nan()))
        })
        .unwrap();
    }
}

/// Builds the schema from `_collections` (the adapter the engine will replace with its
/// own collection model).
pub fn load_schema(conn: &Connection) -> Schema {
    let mut stmt = conn
        .prepare("SELECT id, name, type, fields, listRule, viewRule, indexes FROM _collections")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        let (id, name, kind, fields, list_rule, view_rule, indexes) = row.unwrap();
        let fields: Vec<Json> = serde_json::from_str(&fields).unwrap();
        let fields = fields
            .iter()
            .filter_map(|f| {
                let kind = FieldType::from_pb(f["type"].as_str()?)?;
                Some(Field {
                    name: f["name"].as_str()?.to_string(),
                    kind,
                    multiple: f["maxSelect"].as_f64().unwrap_or(0.0) > 1.0,
                    collection_id: f["collectionId"].as_str().map(str::to_string),
                    hidden: f["hidden"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        out.push(Collection {
            id,
            name,
            kind: match kind.as_str() {
                "auth" => CollectionType::Auth,
                "view" => CollectionType::View,
                _ => CollectionType::Base,
            },
            fields,
            list_rule,
            view_rule,
            indexes: serde_json::from_str(&indexes).unwrap_or_default(),
        });
    }
    Schema::new(1, out)
}

/// The record as PocketBase exports it for `@request.auth` (all fields).
pub fn auth_for(conn: &Connection, schema: &Schema, collection: &str, id: &str) -> AuthInfo {
    let coll = schema.collection(collection).unwrap().clone();
    let mut data = Map::new();
    for f in &coll.fields {
        let v: SqlValue = conn
            .query_row(
                &format!("SELECT `{}` FROM `{}` WHERE id = ?1", f.name, coll.name),
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let j = match (f.kind, v) {
            (_, SqlValue::Null) => Json::Null,
            (FieldType::Bool, SqlValue::Integer(i)) => Json::Bool(i != 0),
            (FieldType::Json | FieldType::GeoPoint, SqlValue::Text(s)) => {
                serde_json::from_str(&s).unwrap_or(Json::Null)
            }
            (FieldType::Select | FieldType::File | FieldType::Relation, SqlValue::Text(s))
                if f.multiple =>
            {
                serde_json::from_str(&s).unwrap_or(Json::Array(vec![]))
            }
            (_, SqlValue::Integer(i)) => Json::from(i as f64),
            (_, SqlValue::Real(x)) => Json::from(x),
            (_, SqlValue::Text(s)) => Json::String(s),
            (_, SqlValue::Blob(_)) => Json::Null,
        };
        data.insert(f.name.clone(), j);
    }
    data.insert("collectionId".into(), Json::String(coll.id.clone()));
    data.insert("collectionName".into(), Json::String(coll.name.clone()));
    AuthInfo {
        id: id.to_string(),
        collection_id: coll.id.clone(),
        collection_name: coll.name.clone(),
        data,
    }
}

pub fn superuser_request() -> RequestInfo {
    RequestInfo {
        method: "GET".into(),
        context: "default".into(),
        superuser: true,
        auth: Some(AuthInfo {
            id: "sywbhecnh46rhm0".into(),
            collection_id: "pbc_3142635823".into(),
            collection_name: "_superusers".into(),
            data: Map::new(),
        }),
        ..Default::default()
    }
}

pub fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
    }
}

/// Runs the list query (first `limit` rows) and returns the ids.
pub fn run_ids(
    conn: &Connection,
    q: &CompiledQuery,
    req: &RequestInfo,
    limit: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut params: Vec<SqlValue> = q.bind(req, now_ms()).into_iter().map(to_sql).collect();
    params.push(SqlValue::Integer(limit));
    params.push(SqlValue::Integer(0));
    let mut stmt = conn.prepare_cached(&q.select_sql)?;
    let idx = stmt.column_index("id")?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
        r.get::<_, String>(idx)
    })?;
    rows.collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

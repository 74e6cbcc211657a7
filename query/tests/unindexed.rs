//! `compile_list_unindexed` (issue 18, the unindexed filter): which comparisons a list
//! records as bool equalities of its own table, how the unindexed statement writes them
//! (`+col = 1`) and the tie-breaks it appends, and, on a real SQLite database with the
//! benchmark's index, that SQLite scans instead of searching the index and that both
//! statements return the same rows in the same order on every page.

use pocketbun_query::{
    compile_list, compile_list_unindexed, Collection, CollectionType, CompiledQuery, Field,
    FieldType, RequestInfo, Schema, TieBreak, Value,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

fn schema() -> Schema {
    let users = Collection {
        id: "_pb_users_auth_".into(),
        name: "users".into(),
        kind: CollectionType::Auth,
        fields: vec![
            Field::new("id", FieldType::Text),
            Field::new("verified", FieldType::Bool),
        ],
        list_rule: Some(String::new()),
        view_rule: Some(String::new()),
        indexes: vec![],
    };
    let mut author = Field::new("author", FieldType::Relation);
    author.collection_id = Some("_pb_users_auth_".into());
    let posts = Collection {
        id: "posts_id".into(),
        name: "posts".into(),
        kind: CollectionType::Base,
        fields: vec![
            Field::new("id", FieldType::Text),
            Field::new("views", FieldType::Number),
            Field::new("score", FieldType::Number),
            Field::new("published", FieldType::Bool),
            author,
        ],
        list_rule: Some(String::new()),
        view_rule: Some(String::new()),
        indexes: vec![],
    };
    Schema::new(1, vec![users, posts])
}

fn superuser() -> RequestInfo {
    RequestInfo {
        superuser: true,
        ..Default::default()
    }
}

/// The order `(published, views)` feeds rows to a sort: `views`, then the rowid.
fn index_order() -> Vec<TieBreak> {
    vec![
        TieBreak {
            column: Some("views".into()),
            desc: false,
            collation: "BINARY".into(),
        },
        TieBreak {
            column: None,
            desc: false,
            collation: String::new(),
        },
    ]
}

#[test]
fn bool_equalities_of_the_own_table_are_recorded_and_unindexed() {
    let schema = schema();
    let req = superuser();
    let filter = "published = true && score > 5";
    let own = compile_list(&schema, "posts", filter, "-score", &req).unwrap();
    assert_eq!(own.bool_eqs, vec![("published".to_string(), true)]);
    assert!(
        own.select_sql.contains("(`posts`.`published` = 1 AND"),
        "{}",
        own.select_sql
    );
    let un =
        compile_list_unindexed(&schema, "posts", filter, "-score", &req, &index_order()).unwrap();
    assert!(
        un.select_sql.contains("(+`posts`.`published` = 1 AND"),
        "{}",
        un.select_sql
    );
    assert!(
        un.select_sql.contains(
            "ORDER BY `posts`.`score` DESC, `posts`.`views` COLLATE `BINARY` ASC, \
             `posts`.`_rowid_` ASC LIMIT"
        ),
        "{}",
        un.select_sql
    );
    // only the page statement's text changes: parameters, count, guards stay
    assert_eq!(un.params.len(), own.params.len());
    assert_eq!(un.count_sql.replace('+', ""), own.count_sql);
    assert_eq!(un.bool_eqs, own.bool_eqs);

    // either way round, `false` too
    let q = compile_list_unindexed(&schema, "posts", "false = published", "", &req, &[]).unwrap();
    assert_eq!(q.bool_eqs, vec![("published".to_string(), false)]);
    assert!(
        q.where_sql.contains("0 = +`posts`.`published`"),
        "{}",
        q.where_sql
    );

    // not a bool equality of the own table: a number literal (bound, compared with the
    // column's affinity), `!=`, another collection's bool, a number field
    for filter in [
        "published = 1",
        "published != true",
        "author.verified = true",
        "views = true",
        "score > 5",
    ] {
        let q = compile_list_unindexed(&schema, "posts", filter, "", &req, &[]).unwrap();
        assert!(q.bool_eqs.is_empty(), "{filter}: {:?}", q.bool_eqs);
        assert!(!q.where_sql.contains('+'), "{filter}: {}", q.where_sql);
    }
}

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE posts (id TEXT PRIMARY KEY DEFAULT '' NOT NULL,
           views NUMERIC DEFAULT 0 NOT NULL, score NUMERIC DEFAULT 0 NOT NULL,
           published BOOLEAN DEFAULT FALSE NOT NULL, author TEXT DEFAULT '' NOT NULL);
         CREATE INDEX idx_posts_published_views ON posts (published, views);",
    )
    .unwrap();
    // ids not in rowid order, and many ties on (score) and on (score, views)
    let mut insert = conn
        .prepare("INSERT INTO posts VALUES (?1, ?2, ?3, ?4, '')")
        .unwrap();
    for i in 0..3000i64 {
        let id = format!("p{:06}", (i * 7_919) % 3001);
        insert
            .execute((id, (i * 31) % 20, (i * 104_729) % 50, i % 3 != 0))
            .unwrap();
    }
    drop(insert);
    conn
}

fn plan(conn: &Connection, sql: &str, params: &[SqlValue]) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn binds(q: &CompiledQuery, req: &RequestInfo, limit: i64, offset: i64) -> Vec<SqlValue> {
    let mut v: Vec<SqlValue> = q
        .bind(req, 0)
        .into_iter()
        .map(|v| match v {
            Value::Integer(i) => SqlValue::Integer(i),
            Value::Real(f) => SqlValue::Real(f),
            Value::Text(s) => SqlValue::Text(s),
            Value::Null => SqlValue::Null,
        })
        .collect();
    v.push(SqlValue::Integer(limit));
    v.push(SqlValue::Integer(offset));
    v
}

fn ids(conn: &Connection, sql: &str, params: &[SqlValue]) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_unindexed_statement_scans_and_returns_the_same_pages() {
    let schema = schema();
    let req = superuser();
    let conn = db();
    for k in [0, 7, 25, 49] {
        for (filter, sort) in [
            (format!("published = true && score > {k}"), "-score"),
            (format!("published = false && score > {k}"), "-score"),
            (format!("published = true && score > {k}"), "score,-id"),
        ] {
            let own = compile_list(&schema, "posts", &filter, sort, &req).unwrap();
            let un = compile_list_unindexed(&schema, "posts", &filter, sort, &req, &index_order())
                .unwrap();
            let first = binds(&own, &req, 30, 0);
            let before = plan(&conn, &own.select_sql, &first);
            assert!(
                before[0].starts_with("SEARCH posts USING INDEX idx_posts_published_views"),
                "{filter}: {before:?}"
            );
            let after = plan(&conn, &un.select_sql, &first);
            assert_eq!(after[0], "SCAN posts", "{filter}: {after:?}");
            for (limit, offset) in [(30, 0), (30, 30), (30, 990), (7, 3), (1000, 0), (5000, 0)] {
                let a = ids(&conn, &own.select_sql, &binds(&own, &req, limit, offset));
                let b = ids(&conn, &un.select_sql, &binds(&un, &req, limit, offset));
                assert_eq!(a, b, "{filter} {sort} limit {limit} offset {offset}");
                if offset == 0 {
                    // 1,000 rows are unpublished, 2,000 published; score > 49 matches none
                    assert_eq!(a.is_empty(), k == 49, "{filter} limit {limit}");
                }
            }
        }
    }
}

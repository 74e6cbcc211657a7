//! Folding of per-request-known comparisons, checked against SQLite itself: every rule is
//! compiled twice, folded and unfolded (the SQL PocketBase generates), and both are run on
//! a real SQLite database. The folded answer must be SQLite's answer for every operand
//! pair, operator and request tried, including PocketBase's NULL/'' fallbacks, the `?`
//! operators, `:isset`, `:lower` and LIKE; a folded rule must also say so (no WHERE or
//! "no rows") and the cache must never hand one caller's folded statement to another.

use pocketbun_query::{
    compile_condition, compile_condition_unfolded, compile_list, AuthInfo, Collection,
    CollectionType, CompiledFilter, Field, FieldType, QueryCache, RequestInfo, Schema, Value,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::{json, Map, Value as Json};

fn field(name: &str, kind: FieldType) -> Field {
    Field::new(name, kind)
}

fn schema() -> Schema {
    let users = Collection {
        id: "_pb_users_auth_".into(),
        name: "users".into(),
        kind: CollectionType::Auth,
        fields: vec![
            field("id", FieldType::Text),
            field("email", FieldType::Email),
            field("emailVisibility", FieldType::Bool),
            field("verified", FieldType::Bool),
            field("name", FieldType::Text),
            field("age", FieldType::Number),
        ],
        list_rule: Some(String::new()),
        view_rule: Some(String::new()),
        indexes: vec![],
    };
    let mut author = field("author", FieldType::Relation);
    author.collection_id = Some("_pb_users_auth_".into());
    let posts = Collection {
        id: "posts_id".into(),
        name: "posts".into(),
        kind: CollectionType::Base,
        fields: vec![
            field("id", FieldType::Text),
            field("title", FieldType::Text),
            field("views", FieldType::Number),
            author,
        ],
        list_rule: Some("@request.auth.id != \"\"".into()),
        view_rule: Some(String::new()),
        indexes: vec![],
    };
    Schema::new(1, vec![users, posts])
}

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id TEXT PRIMARY KEY DEFAULT '' NOT NULL, email TEXT DEFAULT '' NOT NULL,
           emailVisibility BOOLEAN DEFAULT FALSE NOT NULL, verified BOOLEAN DEFAULT FALSE NOT NULL,
           name TEXT DEFAULT '' NOT NULL, age NUMERIC DEFAULT 0 NOT NULL);
         CREATE TABLE posts (id TEXT PRIMARY KEY DEFAULT '' NOT NULL, title TEXT DEFAULT '' NOT NULL,
           views NUMERIC DEFAULT 0 NOT NULL, author TEXT DEFAULT '' NOT NULL);
         INSERT INTO users VALUES ('u1', 'ann@example.com', 1, 0, 'Ann', 30);
         INSERT INTO posts VALUES ('p1', 'Hello', 5, 'u1');",
    )
    .unwrap();
    conn
}

fn user() -> AuthInfo {
    let mut data = Map::new();
    for (k, v) in [
        ("id", json!("u1")),
        ("email", json!("ann@example.com")),
        ("emailVisibility", json!(true)),
        ("verified", json!(false)),
        ("name", json!("Ann")),
        ("age", json!(30)),
        ("collectionId", json!("_pb_users_auth_")),
        ("collectionName", json!("users")),
    ] {
        data.insert(k.into(), v);
    }
    AuthInfo {
        id: "u1".into(),
        collection_id: "_pb_users_auth_".into(),
        collection_name: "users".into(),
        data,
    }
}

fn request(auth: bool, q: Option<&str>, header: Option<&str>) -> RequestInfo {
    let mut r = RequestInfo {
        method: "GET".into(),
        context: "default".into(),
        auth: auth.then(user),
        ..Default::default()
    };
    if let Some(q) = q {
        r.query.insert("q".into(), Json::String(q.into()));
        r.query.insert("views".into(), Json::String(q.into()));
    }
    if let Some(h) = header {
        r.headers.insert("x_h".into(), Json::String(h.into()));
    }
    r
}

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
    }
}

/// How many of the table's rows pass the condition, as SQLite evaluates it.
fn count(conn: &Connection, c: &CompiledFilter, req: &RequestInfo) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT {}`posts`.`id` FROM {} WHERE {})",
        if c.distinct { "DISTINCT " } else { "" },
        c.from_sql,
        c.where_sql
    );
    let params: Vec<SqlValue> = c.bind(req, 0).into_iter().map(to_sql).collect();
    let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let k = stmt.parameter_count();
    stmt.query_row(rusqlite::params_from_iter(&params[..k]), |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const OPERANDS: &[&str] = &[
    "''",
    "'a'",
    "'A'",
    "'abc'",
    "'AbC'",
    "'a%'",
    "'%b%'",
    "'_'",
    "'a_c'",
    "'5'",
    "'10'",
    "'1.5'",
    "'x\\\\y'",
    "'é'",
    "'É'",
    "0",
    "1",
    "1.5",
    "10",
    "-2",
    "null",
    "true",
    "false",
    "NULL",
    "@request.auth.id",
    "@request.auth.email",
    "@request.auth.verified",
    "@request.auth.collectionName",
    "@request.auth.name",
    "@request.query.q",
    "@request.query.q:lower",
    "@request.query.q:isset",
    "@request.query.missing",
    "@request.query.missing:isset",
    "@request.query.views",
    "@request.headers.x_h",
    "@request.headers.x_h:lower",
    "@request.method",
    "@request.context",
    "title",
    "views",
];

const OPS: &[&str] = &[
    "=", "!=", "~", "!~", "<", "<=", ">", ">=", "?=", "?!=", "?~", "?!~", "?<", "?<=", "?>", "?>=",
];

const QUERY_VALUES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("abc"),
    Some("ABC"),
    Some("a%c"),
    Some("A_C"),
    Some("5"),
    Some("1.5"),
    Some("é"),
    Some("x\\y"),
];

/// A deterministic pseudo-random sequence (the cases must repeat from run to run).
struct Lcg(u64);

impl Lcg {
    fn pick(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Compiles `rule` folded and unfolded for `req` and checks SQLite agrees; returns whether
/// the folded rule became a constant.
fn check(conn: &Connection, schema: &Schema, rule: &str, req: &RequestInfo) -> bool {
    let folded = compile_condition(schema, "posts", rule, req, true);
    let plain = compile_condition_unfolded(schema, "posts", rule, req, true);
    let (folded, plain) = match (folded, plain) {
        (Ok(f), Ok(p)) => (f, p),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{rule}: different errors");
            return false;
        }
        (f, p) => panic!("{rule}: folded {f:?}, unfolded {p:?}"),
    };
    assert_eq!(plain.constant, None, "{rule}: folded while folding was off");
    let want = count(conn, &plain, req);
    let got = count(conn, &folded, req);
    assert_eq!(
        got, want,
        "{rule} for {req:?}:\n folded {}\n unfolded {}",
        folded.where_sql, plain.where_sql
    );
    if let Some(c) = folded.constant {
        assert_eq!(
            c as i64, want,
            "{rule}: constant {c} but SQLite says {want}"
        );
        assert!(folded.params.is_empty(), "{rule}: {:?}", folded.params);
    }
    folded.constant.is_some()
}

#[test]
fn single_comparisons_fold_to_sqlites_answer() {
    let conn = db();
    let schema = schema();
    let mut rng = Lcg(7);
    let (mut total, mut folded) = (0, 0);
    for _ in 0..6000 {
        let l = OPERANDS[rng.pick(OPERANDS.len())];
        let op = OPS[rng.pick(OPS.len())];
        let r = OPERANDS[rng.pick(OPERANDS.len())];
        let q = QUERY_VALUES[rng.pick(QUERY_VALUES.len())];
        let h = QUERY_VALUES[rng.pick(QUERY_VALUES.len())];
        let req = request(rng.pick(2) == 0, q, h);
        let rule = format!("{l} {op} {r}");
        total += 1;
        if check(&conn, &schema, &rule, &req) {
            folded += 1;
        }
    }
    // most operands are known: most comparisons must fold (not a vacuous comparison)
    assert!(folded * 2 > total, "only {folded} of {total} folded");
}

#[test]
fn joined_rules_fold_with_three_valued_logic() {
    let conn = db();
    let schema = schema();
    let mut rng = Lcg(11);
    let (mut total, mut folded) = (0, 0);
    for _ in 0..2500 {
        let mut expr = || {
            format!(
                "{} {} {}",
                OPERANDS[rng.pick(OPERANDS.len())],
                OPS[rng.pick(OPS.len())],
                OPERANDS[rng.pick(OPERANDS.len())]
            )
        };
        let (a, b, c, d) = (expr(), expr(), expr(), expr());
        let j = |n: usize| if n == 0 { "&&" } else { "||" };
        let (j1, j2, j3) = (j(rng.pick(2)), j(rng.pick(2)), j(rng.pick(2)));
        let rule = match rng.pick(3) {
            0 => format!("{a} {j1} {b} {j2} {c} {j3} {d}"),
            1 => format!("({a} {j1} {b}) {j2} ({c} {j3} {d})"),
            _ => format!("{a} {j1} ({b} {j2} ({c} {j3} {d}))"),
        };
        let q = QUERY_VALUES[rng.pick(QUERY_VALUES.len())];
        let req = request(rng.pick(2) == 0, q, q);
        total += 1;
        if check(&conn, &schema, &rule, &req) {
            folded += 1;
        }
    }
    assert!(folded > total / 4, "only {folded} of {total} folded");
}

#[test]
fn auth_rule_list_has_no_where_or_no_rows() {
    let schema = schema();
    let user = request(true, None, None);
    let guest = request(false, None, None);
    let q = compile_list(&schema, "posts", "", "", &user).unwrap();
    assert!(!q.never);
    assert_eq!(q.where_sql, "");
    assert_eq!(q.count_sql, "SELECT COUNT(*) FROM `posts`");
    assert!(q.params.is_empty());
    let q = compile_list(&schema, "posts", "", "", &guest).unwrap();
    assert!(q.never);
    // the statement stays valid SQL that matches nothing
    assert_eq!(q.count_sql, "SELECT COUNT(*) FROM `posts` WHERE FALSE");
    // a filter still compiles (and fails) although the rule already decided
    assert!(compile_list(&schema, "posts", "nope = 1", "", &guest).is_err());
    assert!(compile_list(&schema, "posts", "title = 'x' && nope = 1", "", &user).is_err());
    // sort errors likewise
    assert!(compile_list(&schema, "posts", "", "nope", &guest).is_err());
    // a filter that depends on the row keeps only its own SQL
    let q = compile_list(&schema, "posts", "title = 'x'", "", &user).unwrap();
    assert_eq!(q.where_sql, "(`posts`.`title` = ?1)");
}

#[test]
fn dropped_parts_are_still_resolved() {
    let schema = schema();
    let user = request(true, None, None);
    let guest = request(false, None, None);
    // the known part decides, the unknown field must still be an error, as in PocketBase
    for (rule, req) in [
        ("@request.auth.id != '' || nope = 1", &user),
        ("@request.auth.id != '' && nope = 1", &guest),
        (
            "(@request.auth.id = '' && nope.x = 1) || title = 'a'",
            &user,
        ),
    ] {
        let e = compile_condition(&schema, "posts", rule, req, true).unwrap_err();
        let plain = compile_condition_unfolded(&schema, "posts", rule, req, true);
        assert_eq!(Some(e), plain.err(), "{rule}");
    }
    // the expression budget counts folded comparisons too
    let many = vec!["1 = 1"; 201].join(" && ");
    assert!(compile_condition(&schema, "posts", &many, &user, true).is_err());
    let ok = vec!["1 = 1"; 200].join(" && ");
    let c = compile_condition(&schema, "posts", &ok, &user, true).unwrap();
    assert_eq!(c.constant, Some(true));
}

#[test]
fn cache_never_shares_a_folded_statement_between_outcomes() {
    let schema = schema();
    let conn = db();
    let mut cache = QueryCache::new(16);
    let user = request(true, None, None);
    let guest = request(false, None, None);
    let mut other = user.clone();
    if let Some(a) = other.auth.as_mut() {
        a.id = "u2".into();
    }
    for (req, never) in [
        (&user, false),
        (&guest, true),
        (&other, false),
        (&guest, true),
        (&user, false),
    ] {
        let q = cache.list(&schema, "posts", "", "", req).unwrap();
        assert_eq!(q.never, never, "{req:?}");
        let n: i64 = conn.query_row(&q.count_sql, [], |r| r.get(0)).unwrap();
        assert_eq!(n, if never { 0 } else { 1 });
    }
    // one statement per outcome: two users with the same outcome share it
    assert_eq!((cache.misses, cache.hits), (2, 3));

    // a query value folded into the rule: each outcome is its own entry
    let rule = "@request.query.q = 'yes' || title = 'x'";
    let with = |q: &str| request(true, Some(q), None);
    for (q, n) in [("yes", 1), ("no", 0), ("yes", 1), ("YES", 0), ("no", 0)] {
        let c = cache
            .condition(&schema, "posts", rule, &with(q), true)
            .unwrap();
        assert_eq!(count(&conn, &c, &with(q)), n, "q={q}");
    }
}

#[test]
fn decide_uses_only_what_precedes_the_body() {
    let schema = schema();
    let mut cache = QueryCache::new(16);
    let user = request(true, None, None);
    let guest = request(false, None, None);
    let d = |cache: &mut QueryCache, rule: &str, req: &RequestInfo| {
        cache.decide(&schema, "posts", rule, req)
    };
    let rule = "@request.auth.id != ''";
    assert_eq!(d(&mut cache, rule, &guest), Some(false));
    assert_eq!(d(&mut cache, rule, &user), Some(true));
    // NULL fails a rule as FALSE does
    assert_eq!(d(&mut cache, "@request.auth.id > 'a'", &guest), Some(false));
    // record fields, the body and joins are not known before the body
    assert_eq!(d(&mut cache, "title = 'x'", &user), None);
    assert_eq!(d(&mut cache, "@request.body.title = 'x'", &user), None);
    assert_eq!(d(&mut cache, "@request.auth.name = 'Ann'", &user), None);
    assert_eq!(
        d(&mut cache, "@request.auth.name = 'Ann'", &guest),
        Some(false)
    );
    assert_eq!(d(&mut cache, "@request.auth.id = @now", &user), None);
    // ... unless the known part decides alone
    assert_eq!(
        d(
            &mut cache,
            "@request.auth.id != '' && @request.body.title = 'x'",
            &guest
        ),
        Some(false)
    );
    assert_eq!(
        d(
            &mut cache,
            "@request.auth.id != '' || @request.body.title = 'x'",
            &user
        ),
        Some(true)
    );
    assert_eq!(d(&mut cache, "not a rule (", &guest), None);
}

//! Cache behaviour: request-shape guards and schema-version invalidation, checked by
//! running the compiled SQL on the fixture database.

mod common;

use common::*;
use pocketbun_query::{QueryCache, RequestInfo, Schema};
use serde_json::Value as Json;

#[test]
fn guards_and_invalidation() {
    let Some((_guard, dir)) = copy_fixture("guards_and_invalidation") else {
        return;
    };
    let conn = open(&dir.join("data.db"));
    let schema = load_schema(&conn);
    let mut cache = QueryCache::new(10);
    let filter = "text = @request.query.q";
    let with = |q: Option<&str>| {
        let mut r = superuser_request();
        if let Some(q) = q {
            r.query.insert("q".into(), Json::String(q.into()));
        }
        r
    };
    let ids = |cache: &mut QueryCache, schema: &Schema, req: &RequestInfo| {
        let q = cache.list(schema, "demo1", filter, "id", req).unwrap();
        run_ids(&conn, &q, req, 100).unwrap()
    };
    // non-empty value: bound, same statement for different values
    assert_eq!(
        ids(&mut cache, &schema, &with(Some("test"))),
        ["84nmscqy84lsi1t"]
    );
    assert_eq!(
        ids(&mut cache, &schema, &with(Some("test2"))),
        ["al1h9ijdeojtsjy"]
    );
    assert_eq!((cache.misses, cache.hits), (1, 1));
    // empty and missing values change the SQL shape (PocketBase's null/empty handling)
    assert_eq!(
        ids(&mut cache, &schema, &with(Some(""))),
        Vec::<String>::new()
    );
    assert_eq!(ids(&mut cache, &schema, &with(None)), Vec::<String>::new());
    assert_eq!(cache.misses, 3);
    assert_eq!(
        ids(&mut cache, &schema, &with(Some("lorem ipsum"))),
        ["imy661ixudk5izi"]
    );
    assert_eq!(cache.misses, 3);
    assert_eq!(cache.len(), 3);
    // a new schema version drops everything
    let v2 = Schema::new(
        2,
        schema.collections().iter().map(|c| (**c).clone()).collect(),
    );
    assert_eq!(
        ids(&mut cache, &v2, &with(Some("test"))),
        ["84nmscqy84lsi1t"]
    );
    assert_eq!((cache.misses, cache.len()), (4, 1));
    // bounded
    let mut small = QueryCache::new(2);
    for f in ["id != '1'", "id != '2'", "id != '3'", "id != '4'"] {
        small.list(&schema, "demo1", f, "", &with(None)).unwrap();
        assert!(small.len() <= 2);
    }
}

//! Compile vs cache-hit timing on the fixture schema (printed; the assertion checks that a
//! cache hit is much cheaper than a compilation).

mod common;

use std::time::Instant;

use common::*;
use pocketbun_query::{compile_list, QueryCache};

#[test]
fn compile_and_cache_hit_timing() {
    let Some((_guard, dir)) = copy_fixture("compile_and_cache_hit_timing") else {
        return;
    };
    let conn = open(&dir.join("data.db"));
    let schema = load_schema(&conn);
    let req = superuser_request();
    let filter = "(text ~ 'test' || number > 100) && rel_many.verified ?= true && select_many:length >= 1 && created > @yesterday";
    let sort = "-created,rel_one.text,id";

    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(compile_list(&schema, "demo1", filter, sort, &req).unwrap());
    }
    let compile = t.elapsed() / n;

    let mut cache = QueryCache::new(100);
    cache.list(&schema, "demo1", filter, sort, &req).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(cache.list(&schema, "demo1", filter, sort, &req).unwrap());
    }
    let hit = t.elapsed() / n;
    let q = cache.list(&schema, "demo1", filter, sort, &req).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(q.bind(&req, 0));
    }
    let bind = t.elapsed() / n;
    println!("timing: parse+compile {compile:?}, cache hit {hit:?}, bind {bind:?} (debug build unless --release)");
    assert_eq!(cache.misses, 1);
    assert_eq!(cache.hits, n as u64 + 1);
    assert!(
        hit * 5 < compile,
        "cache hit {hit:?} not much cheaper than compile {compile:?}"
    );
}

//! Request-head parsing and routing: the fixed cost every request pays before its handler.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pocketbun_http::parse::parse_head;
use pocketbun_http::router::{Match, Router};
use pocketbun_http::{Limits, Method};

const SDK_LIST_REQUEST: &[u8] = b"GET /api/collections/posts/records?page=1&perPage=30&filter=%28published%3Dtrue%29&sort=-views HTTP/1.1\r\n\
Host: 127.0.0.1:8090\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n\
Accept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nAuthorization: eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyJ9.abc\r\n\
Connection: keep-alive\r\n\r\n";

fn router() -> Router<u32> {
    let mut r = Router::new();
    r.add(Method::Get, "/api/health", 0);
    r.add(Method::Get, "/api/collections", 1);
    r.add(Method::Get, "/api/collections/{collection}", 2);
    r.add(Method::Get, "/api/collections/{collection}/records", 3);
    r.add(Method::Post, "/api/collections/{collection}/records", 4);
    r.add(Method::Get, "/api/collections/{collection}/records/{id}", 5);
    r.add(
        Method::Get,
        "/api/files/{collection}/{record}/{filename}",
        6,
    );
    r.add(Method::Get, "/{path...}", 7);
    r
}

fn parse_and_route(c: &mut Criterion) {
    let limits = Limits::default();
    let router = router();
    c.bench_function("parse_head_sdk_list_request", |b| {
        b.iter(|| {
            parse_head(black_box(SDK_LIST_REQUEST), &limits)
                .unwrap()
                .unwrap()
        })
    });
    c.bench_function("route_records_list", |b| {
        b.iter(
            || match router.find(&Method::Get, black_box("/api/collections/posts/records")) {
                Match::Found { value, .. } => *value,
                _ => unreachable!(),
            },
        )
    });
}

criterion_group!(benches, parse_and_route);
criterion_main!(benches);

//! `GET/HEAD /api/health` and the 404 of an unknown API route, end to end.
//!
//! Runs against pocketbun, or with `CONFORMANCE_SERVER=pocketbase` against
//! the real PocketBase (`POCKETBASE_VERSION`, default 0.40.6), which proves that these expectations are
//! PocketBase's own answers.

use pocketbun_tests::http::{Request, Response};
use pocketbun_tests::{conformance_dir, Server, ServerSpec};

/// A server over a copy of the conformance fixture when `../shared` is
/// there, else over an empty data dir.
fn server() -> Server {
    let fixture = conformance_dir().map(|d| d.join("pb_data"));
    Server::start(&ServerSpec::from_env(), fixture.as_deref()).unwrap_or_else(|e| panic!("{e}"))
}

fn send(server: &Server, method: &str, target: &str) -> Response {
    Request::new(method, target)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {target}: {e}\nserver log:\n{}", server.log()))
}

/// Headers without `Date`, lower-cased names, sorted.
fn headers_but_date(r: &Response) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    h.sort();
    h
}

const HEALTHY: &str = "{\"message\":\"API is healthy.\",\"code\":200,\"data\":{}}";

#[test]
fn get_health_is_200_with_the_healthy_message() {
    let server = server();
    let r = send(&server, "GET", "/api/health");
    assert_eq!(r.status, 200, "body: {}", r.text());
    assert_eq!(r.text(), HEALTHY);
    assert!(r.complete);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Content-Length"), Some("50"));
}

#[test]
fn head_health_has_the_get_headers_and_no_body() {
    let server = server();
    let get = send(&server, "GET", "/api/health");
    let head = send(&server, "HEAD", "/api/health");
    assert_eq!(head.status, 200);
    assert_eq!(headers_but_date(&head), headers_but_date(&get));
    // read to close, not trusting Content-Length: no body bytes may follow
    let raw = Request::new("HEAD", "/api/health")
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close");
    let after_head = raw_bytes_after_header(&server, &raw);
    assert_eq!(after_head, b"", "HEAD response carried body bytes");
}

#[test]
fn unknown_api_route_is_a_404_json_envelope() {
    let server = server();
    let r = send(&server, "GET", "/api/x");
    assert_eq!(r.status, 404, "body: {}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.text(),
        "{\"data\":{},\"message\":\"File not found.\",\"status\":404}"
    );
}

/// Everything the server sends after the response header block of `req`,
/// read until it closes the connection.
fn raw_bytes_after_header(server: &Server, req: &Request) -> Vec<u8> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&req.head_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to close");
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header block")
        + 4;
    all.split_off(end)
}

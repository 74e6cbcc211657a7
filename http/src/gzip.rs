//! Optional gzip of response bodies for clients that ask for it. PocketBase leaves this off by
//! default, and so does PocketBun (`ServerConfig::gzip`).

use crate::response::{Body, Response};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// Bodies shorter than this are not worth the CPU.
const MIN_SIZE: usize = 1024;

fn compressible(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("javascript")
        || ct.contains("xml")
        || ct.contains("svg")
}

/// Gzips `resp` in place when the client accepts gzip and the body is worth compressing.
/// `accept_encoding` is the request's Accept-Encoding header.
pub fn maybe_compress(accept_encoding: &str, resp: &mut Response) {
    let accepts = accept_encoding.split(',').any(|t| {
        let mut parts = t.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        coding.eq_ignore_ascii_case("gzip") && !refused
    });
    if !accepts
        || resp.get_header("content-encoding").is_some()
        || !resp.get_header("content-type").is_some_and(compressible)
    {
        return;
    }
    let Body::Bytes(bytes) = &resp.body else {
        return;
    };
    if bytes.len() < MIN_SIZE {
        return;
    }
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::fast());
    if enc.write_all(bytes).is_err() {
        return;
    }
    let Ok(gz) = enc.finish() else {
        return;
    };
    resp.body = Body::Bytes(gz);
    resp.set_header("Content-Encoding", "gzip");
    resp.headers.push(("Vary".into(), "Accept-Encoding".into()));
}

//! Any bytes as a request head: the parser must answer Ok or Err, never panic, and a parsed
//! head must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketbun_http::parse::parse_head;
use pocketbun_http::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_header_bytes: 8192,
        max_uri_bytes: 2048,
        ..Limits::default()
    };
    if let Ok(Some((head, used))) = parse_head(data, &limits) {
        assert!(used <= data.len());
        assert!(used <= limits.max_header_bytes);
        assert!(head.path.starts_with('/') || head.path == "*");
    }
});

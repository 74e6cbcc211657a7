//! Any bytes as a chunked body (`pocketbun_http::fuzzing::chunked_body` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_http::fuzzing::chunked_body(data));

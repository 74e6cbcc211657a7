//! Any bytes as a request head (`pocketbun_http::fuzzing::request_head` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_http::fuzzing::request_head(data));

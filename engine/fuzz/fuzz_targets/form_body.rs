//! An urlencoded or multipart record body (`pocketbun_engine::fuzzing::form_body` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_engine::fuzzing::form_body(data));

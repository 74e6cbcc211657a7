//! A JSON record body loaded into a new record (`pocketbun_engine::fuzzing::record_draft` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_engine::fuzzing::record_draft(data));

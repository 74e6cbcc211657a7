//! A list request's filter, sort, fields and expand together
//! (`pocketbun_query::fuzzing::list_query` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_query::fuzzing::list_query(data));

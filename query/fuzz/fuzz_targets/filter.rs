//! Any UTF-8 as a filter, sort, rule, `fields` or `expand` (`pocketbun_query::fuzzing::filter`
//! says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_query::fuzzing::filter(data));

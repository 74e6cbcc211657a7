//! A `fields=` value applied to a JSON document (`pocketbun_engine::fuzzing::fields_pick` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_engine::fuzzing::fields_pick(data));

//! An `expand=` value normalised (`pocketbun_engine::fuzzing::expand_list` says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pocketbun_engine::fuzzing::expand_list(data));

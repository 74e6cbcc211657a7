//! A short fuzz run of every `engine/fuzz` target on stable, so `cargo test` exercises them:
//! the checked-in seeds and deterministic mutations (`http/fuzz/replay.rs`), through the very
//! functions the fuzz targets call (`pocketbun_engine::fuzzing`).

#[path = "../../http/fuzz/replay.rs"]
mod replay;

/// Pieces of the body grammars, inserted more often than random bytes.
const TOKENS: &[&[u8]] = &[
    b"&",
    b"=",
    b"%",
    b"+",
    b"%ff",
    b"@jsonPayload",
    b"\r\n",
    b"--fuzzBoundary",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"1e999",
    b"filename=\"",
    b".",
    b":excerpt(",
    b"*",
    b"\x00",
];

fn run(target: &str, check: fn(&[u8])) {
    replay::replay(env!("CARGO_MANIFEST_DIR"), target, TOKENS, check);
}

#[test]
fn form_body() {
    run("form_body", pocketbun_engine::fuzzing::form_body);
}

#[test]
fn record_draft() {
    run("record_draft", pocketbun_engine::fuzzing::record_draft);
}

#[test]
fn fields_pick() {
    run("fields_pick", pocketbun_engine::fuzzing::fields_pick);
}

#[test]
fn expand_list() {
    run("expand_list", pocketbun_engine::fuzzing::expand_list);
}

//! A short fuzz run of every `query/fuzz` target on stable, so `cargo test` exercises them:
//! the checked-in seeds and deterministic mutations (`http/fuzz/replay.rs`), through the very
//! functions the fuzz targets call (`pocketbun_query::fuzzing`).

#[path = "../../http/fuzz/replay.rs"]
mod replay;

/// Pieces of the filter grammar, inserted more often than random bytes.
const TOKENS: &[&[u8]] = &[
    b"(",
    b")",
    b"'",
    b"\"",
    b"&&",
    b"||",
    b" = ",
    b" ?~ ",
    b"!=",
    b".",
    b",",
    b"-",
    b"@request.",
    b"@collection.",
    b":length",
    b":each",
    b":excerpt(",
    b"_via_",
    b"\\",
    b"\x00",
    b"%",
];

#[test]
fn filter() {
    replay::replay(
        env!("CARGO_MANIFEST_DIR"),
        "filter",
        TOKENS,
        pocketbun_query::fuzzing::filter,
    );
}

#[test]
fn list_query() {
    replay::replay(
        env!("CARGO_MANIFEST_DIR"),
        "list_query",
        TOKENS,
        pocketbun_query::fuzzing::list_query,
    );
}

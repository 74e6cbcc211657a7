//! A short fuzz run of every `http/fuzz` target on stable, so `cargo test` exercises them:
//! the checked-in seeds and deterministic mutations (`fuzz/replay.rs`), through the very
//! functions the fuzz targets call (`pocketbun_http::fuzzing`).

#[path = "../fuzz/replay.rs"]
mod replay;

/// Bytes that matter to the HTTP grammar, inserted more often than random ones.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b" ",
    b":",
    b",",
    b";",
    b"%",
    b"%ff",
    b"0",
    b"HTTP/1.",
    b"\t",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"Expect: ",
    b"\x00",
    b"\xff",
    b"//",
    b"/./",
];

#[test]
fn request_head() {
    replay::replay(
        env!("CARGO_MANIFEST_DIR"),
        "request_head",
        TOKENS,
        pocketbun_http::fuzzing::request_head,
    );
}

#[test]
fn chunked_body() {
    replay::replay(
        env!("CARGO_MANIFEST_DIR"),
        "chunked_body",
        TOKENS,
        pocketbun_http::fuzzing::chunked_body,
    );
}

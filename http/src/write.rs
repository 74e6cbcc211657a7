//! Response heads on the wire: status line, headers, framing headers.

use crate::date::with_http_date;
use crate::request::Version;
use crate::response::Response;

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// How the body that follows the head is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body may follow (1xx, 204, 304).
    NoBody,
    Length(u64),
    Chunked,
    /// HTTP/1.0 stream of unknown length: ends when the connection closes.
    UntilClose,
}

pub(crate) fn status_allows_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// Appends the response head to `out`. The caller decides framing and whether the
/// connection stays open; handler-set framing headers are dropped so they cannot disagree.
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    version: Version,
    resp: &Response,
    framing: Framing,
    keep_alive: bool,
) {
    out.reserve(256);
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    let mut code = itoa::Buffer::new();
    out.extend_from_slice(code.format(resp.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(resp.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    let fixed = resp.fixed;
    for (i, (name, value)) in resp.headers.iter().enumerate() {
        if i == fixed.at {
            out.extend_from_slice(fixed.lines.as_bytes());
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection")
        {
            continue;
        }
        has_date |= name.eq_ignore_ascii_case("date");
        push_header(out, name, value);
    }
    if fixed.at >= resp.headers.len() {
        out.extend_from_slice(fixed.lines.as_bytes());
    }
    if !has_date {
        // our own value: no CR/LF scan
        with_http_date(|d| push_trusted(out, b"Date: ", d.as_bytes()));
    }
    match framing {
        Framing::NoBody | Framing::UntilClose => {}
        Framing::Length(n) => {
            let mut len = itoa::Buffer::new();
            push_trusted(out, b"Content-Length: ", len.format(n).as_bytes());
        }
        Framing::Chunked => push_header(out, "Transfer-Encoding", "chunked"),
    }
    match (version, keep_alive) {
        (Version::Http11, false) => push_header(out, "Connection", "close"),
        (Version::Http10, true) => push_header(out, "Connection", "keep-alive"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// `name_colon` includes the `: `; `value` is known to hold no CR or LF.
fn push_trusted(out: &mut Vec<u8>, name_colon: &[u8], value: &[u8]) {
    out.extend_from_slice(name_colon);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    // a CR or LF in a value would let a handler (or the data it echoes) inject headers
    if has_cr_or_lf(value.as_bytes()) {
        out.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    } else {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether `bytes` holds a CR or LF, 8 bytes at a time. Values are short (`nosniff`,
/// `application/json`): the byte-wise fold this replaces cost ~170 instructions a header,
/// ~1k a response, as it never reached its vectorized loop.
fn has_cr_or_lf(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // a byte of `x` is zero: the classic test, exact when only its any-byte answer is used
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if has_zero(word ^ (ONES * u64::from(b'\r'))) || has_zero(word ^ (ONES * u64::from(b'\n')))
        {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b == b'\r' || b == b'\n')
}

/// A chunk's size in lowercase hex, without `format!` (an SSE fan-out frames one chunk per
/// client): the digits are `hex[at..]`.
fn hex_size(mut n: usize) -> ([u8; 16], usize) {
    let mut hex = [0u8; 16];
    let mut at = hex.len();
    while n > 0 {
        at -= 1;
        hex[at] = b"0123456789abcdef"[n & 15];
        n >>= 4;
    }
    (hex, at)
}

/// Appends one chunk in chunked framing.
pub(crate) fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let (hex, at) = hex_size(data.len());
    out.extend_from_slice(&hex[at..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Spare capacity a streamed body's chunk needs for [`chunk_in_place`] to frame it without a
/// second buffer: the size line (up to 16 hex digits and CRLF) and the closing CRLF.
pub const CHUNK_ROOM: usize = 20;

/// `data` framed as one chunk (`write_chunk`'s bytes), in its own buffer when that has
/// [`CHUNK_ROOM`] to spare: the body is moved up by the size line's length instead of copied
/// into a new buffer. An SSE fan-out frames one chunk per client per event, and the second
/// buffer was one allocation and one free of each delivery.
pub(crate) fn chunk_in_place(mut data: Vec<u8>) -> Vec<u8> {
    if data.is_empty() {
        return data;
    }
    let (hex, at) = hex_size(data.len());
    let head = hex.len() - at + 2;
    if data.capacity() - data.len() < head + 2 {
        let mut out = Vec::with_capacity(data.len() + head + 2);
        write_chunk(&mut out, &data);
        return out;
    }
    let len = data.len();
    data.resize(len + head, 0);
    data.copy_within(..len, head);
    data[..head - 2].copy_from_slice(&hex[at..]);
    data[head - 2..head].copy_from_slice(b"\r\n");
    data.extend_from_slice(b"\r\n");
    data
}

pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::{chunk_in_place, write_chunk, CHUNK_ROOM};

    /// Fixed lines go out after the first `at` headers, wherever `at` falls, and later
    /// headers (gzip's) after them; framing headers among the entries are still dropped.
    #[test]
    fn fixed_lines_go_where_at_says() {
        use crate::request::Version;
        use crate::response::{FixedHeaders, Response};
        let lines = "B-Fixed: 1\r\nC-Fixed: 2\r\n";
        for (at, want) in [
            (0, "B-Fixed: 1\r\nC-Fixed: 2\r\nA: a\r\nZ: z\r\n"),
            (1, "A: a\r\nB-Fixed: 1\r\nC-Fixed: 2\r\nZ: z\r\n"),
            (2, "A: a\r\nZ: z\r\nB-Fixed: 1\r\nC-Fixed: 2\r\n"),
            (9, "A: a\r\nZ: z\r\nB-Fixed: 1\r\nC-Fixed: 2\r\n"),
        ] {
            let mut resp = Response::new(200).header("A", "a").header("Z", "z");
            resp.fixed = FixedHeaders { lines, at };
            let mut out = Vec::new();
            super::write_head(
                &mut out,
                Version::Http11,
                &resp,
                super::Framing::Length(0),
                true,
            );
            let head = String::from_utf8(out).unwrap();
            let headers = head
                .strip_prefix("HTTP/1.1 200 OK\r\n")
                .and_then(|h| h.split_once("Date: "))
                .map(|(h, _)| h);
            assert_eq!(headers, Some(want), "at {at}");
            assert_eq!(resp.get_header("c-fixed"), Some("2"));
            assert_eq!(resp.get_header("z"), Some("z"));
        }
        // `set_header` moves its header to the end; the lines stay after the ones before them
        let mut resp = Response::new(200).header("A", "a").header("Z", "z");
        resp.fixed = FixedHeaders { lines, at: 2 };
        resp.set_header("A", "b");
        assert_eq!(resp.fixed.at, 1);
        resp.set_header("c-fixed", "3");
        assert_eq!(resp.fixed.lines, "");
        let names: Vec<&str> = resp.headers.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["Z", "B-Fixed", "A", "c-fixed"]);
    }

    #[test]
    fn cr_and_lf_are_found_anywhere() {
        assert!(!super::has_cr_or_lf(b""));
        assert!(!super::has_cr_or_lf(b"application/json; charset=utf-8"));
        // bytes next to CR and LF, and the high bytes of UTF-8, are not taken for them
        assert!(!super::has_cr_or_lf(
            "\x0b\x0c\x0e\x09é€\u{7f}\u{8d}".as_bytes()
        ));
        for len in 1..40 {
            for at in 0..len {
                for bad in [b'\r', b'\n'] {
                    let mut value = vec![b'a'; len];
                    value[at] = bad;
                    assert!(super::has_cr_or_lf(&value), "{len} {at} {bad}");
                }
            }
        }
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for (len, head) in [
            (1usize, "1"),
            (15, "f"),
            (16, "10"),
            (255, "ff"),
            (4096, "1000"),
        ] {
            let mut out = Vec::new();
            let data = vec![b'x'; len];
            write_chunk(&mut out, &data);
            let mut want = format!("{head}\r\n").into_bytes();
            want.extend_from_slice(&data);
            want.extend_from_slice(b"\r\n");
            assert_eq!(out, want, "chunk of {len} bytes");
        }
        let mut out = Vec::new();
        write_chunk(&mut out, b"");
        assert!(out.is_empty());
    }

    /// In place (with room) or not, a chunk is framed as `write_chunk` frames it.
    #[test]
    fn chunks_framed_in_place_match() {
        for len in [0usize, 1, 15, 16, 255, 300, 4096, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut want = Vec::new();
            write_chunk(&mut want, &data);
            let mut roomy = Vec::with_capacity(len + CHUNK_ROOM);
            roomy.extend_from_slice(&data);
            let ptr = roomy.as_ptr();
            let framed = chunk_in_place(roomy);
            assert_eq!(framed, want, "{len} bytes with room");
            if len > 0 {
                assert_eq!(
                    framed.as_ptr(),
                    ptr,
                    "{len} bytes: framed in its own buffer"
                );
            }
            let mut tight = Vec::with_capacity(len);
            tight.extend_from_slice(&data);
            assert_eq!(chunk_in_place(tight), want, "{len} bytes without room");
        }
    }
}

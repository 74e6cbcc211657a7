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
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    let mut code = itoa::Buffer::new();
    out.extend_from_slice(code.format(resp.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(resp.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in &resp.headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection")
        {
            continue;
        }
        has_date |= name.eq_ignore_ascii_case("date");
        push_header(out, name, value);
    }
    if !has_date {
        with_http_date(|d| push_header(out, "Date", d));
    }
    match framing {
        Framing::NoBody | Framing::UntilClose => {}
        Framing::Length(n) => push_header(out, "Content-Length", code_u64(n).as_str()),
        Framing::Chunked => push_header(out, "Transfer-Encoding", "chunked"),
    }
    match (version, keep_alive) {
        (Version::Http11, false) => push_header(out, "Connection", "close"),
        (Version::Http10, true) => push_header(out, "Connection", "keep-alive"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}

fn code_u64(n: u64) -> String {
    itoa::Buffer::new().format(n).to_string()
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    // a CR or LF in a value would let a handler (or the data it echoes) inject headers
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    } else {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk in chunked framing.
pub(crate) fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

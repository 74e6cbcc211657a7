//! Request-head parsing and the framing rules of RFC 9112 that decide where a body ends.
//!
//! Everything ambiguous is refused rather than guessed: two framings at once, differing
//! Content-Lengths, unknown transfer codings. Ambiguity is what request smuggling feeds on.

use crate::error::{HttpError, HttpErrorKind};
use crate::request::{BodyFraming, Headers, Method, RequestHead, Version};
use crate::Limits;
use percent_encoding::percent_decode_str;

/// Parses a request head from the front of `buf`. `Ok(None)` means more bytes are needed;
/// on success returns the head and how many bytes of `buf` it took.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut heap;
    let headers: &mut [httparse::Header<'_>] = if count_lines(buf) > storage.len() {
        heap = vec![httparse::EMPTY_HEADER; limits.max_headers];
        &mut heap
    } else {
        &mut storage
    };
    let mut req = httparse::Request::new(headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::new(
                HttpErrorKind::HeaderTooLarge,
                "too many headers",
            ))
        }
        Err(httparse::Error::Version) => {
            return Err(HttpError::new(
                HttpErrorKind::VersionNotSupported,
                "unsupported HTTP version",
            ))
        }
        Err(_) => return Err(HttpError::bad("malformed request head")),
    };
    let head_len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
    };
    if head_len > limits.max_header_bytes {
        return Err(HttpError::new(
            HttpErrorKind::HeaderTooLarge,
            "request head too large",
        ));
    }
    let target = req.path.unwrap_or("");
    if target.len() > limits.max_uri_bytes {
        return Err(HttpError::new(
            HttpErrorKind::UriTooLong,
            "request target too long",
        ));
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method = Method::parse(req.method.unwrap_or(""));

    let mut headers = Headers::new();
    for h in req.headers.iter() {
        headers.push(h.name, String::from_utf8_lossy(h.value).into_owned());
    }

    let (path, query) = split_target(target)?;
    let framing = framing(&headers, version)?;
    if version == Version::Http11 {
        let hosts = headers.get_all("host").count();
        if hosts == 0 {
            return Err(HttpError::new(
                HttpErrorKind::MissingHost,
                "missing required Host header",
            ));
        }
        if hosts > 1 {
            return Err(HttpError::bad("too many Host headers"));
        }
    }
    let keep_alive = match version {
        Version::Http11 => !headers.has_token("connection", "close"),
        Version::Http10 => headers.has_token("connection", "keep-alive"),
    };
    let expect_continue = version == Version::Http11
        && headers
            .get("expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));

    Ok(Some((
        RequestHead {
            method,
            target: target.to_string(),
            path,
            query: query.to_string(),
            version,
            headers,
            keep_alive,
            framing,
            expect_continue,
        },
        head_len,
    )))
}

/// An incomplete head is still refused early once it is already past a limit, so that a
/// client cannot make us buffer without bound.
fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    if line_end.is_none() && buf.len() > limits.max_uri_bytes + 64 {
        return Err(HttpError::new(
            HttpErrorKind::UriTooLong,
            "request target too long",
        ));
    }
    if buf.len() > limits.max_header_bytes {
        return Err(HttpError::new(
            HttpErrorKind::HeaderTooLarge,
            "request head too large",
        ));
    }
    Ok(())
}

/// An upper bound of the header count, to size httparse's header array.
fn count_lines(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count()
}

fn split_target(target: &str) -> Result<(String, &str), HttpError> {
    // absolute-form (`http://host/path`) is legal for requests to a server, not only proxies
    let origin_form = if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else if target == "*" {
        "*"
    } else if target.starts_with('/') {
        target
    } else {
        return Err(HttpError::bad("invalid request target"));
    };
    let (raw_path, query) = match origin_form.find('?') {
        Some(i) => (&origin_form[..i], &origin_form[i + 1..]),
        None => (origin_form, ""),
    };
    let path = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| HttpError::bad("path is not valid UTF-8"))?
        .into_owned();
    Ok((path, query))
}

fn framing(headers: &Headers, version: Version) -> Result<BodyFraming, HttpError> {
    let mut transfer_codings = headers.get_all("transfer-encoding").peekable();
    let has_te = transfer_codings.peek().is_some();
    let mut lengths = headers.get_all("content-length").peekable();
    let has_cl = lengths.peek().is_some();

    if has_te {
        if has_cl {
            return Err(HttpError::bad("both Content-Length and Transfer-Encoding"));
        }
        if version == Version::Http10 {
            return Err(HttpError::bad("Transfer-Encoding on HTTP/1.0"));
        }
        let codings: Vec<&str> = transfer_codings
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        return match codings.as_slice() {
            [c] if c.eq_ignore_ascii_case("chunked") => Ok(BodyFraming::Chunked),
            [] => Err(HttpError::bad("empty Transfer-Encoding")),
            _ if codings.iter().any(|c| c.eq_ignore_ascii_case("chunked")) => {
                Err(HttpError::bad("unsupported Transfer-Encoding chain"))
            }
            _ => Err(HttpError::new(
                HttpErrorKind::NotImplemented,
                "unsupported transfer encoding",
            )),
        };
    }
    if has_cl {
        let mut length: Option<u64> = None;
        for value in lengths.flat_map(|v| v.split(',')) {
            let value = value.trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 19 {
                return Err(HttpError::bad("invalid Content-Length"));
            }
            let n: u64 = value
                .parse()
                .map_err(|_| HttpError::bad("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::bad("conflicting Content-Length"));
            }
            length = Some(n);
        }
        return Ok(match length {
            Some(0) | None => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        });
    }
    Ok(BodyFraming::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse_head(raw.as_bytes(), &Limits::default())
    }

    #[test]
    fn simple_get() {
        let (head, n) = parse("GET /api/health?a=1 HTTP/1.1\r\nHost: x\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, "GET /api/health?a=1 HTTP/1.1\r\nHost: x\r\n\r\n".len());
        assert_eq!(head.path, "/api/health");
        assert_eq!(head.query, "a=1");
        assert!(head.keep_alive);
        assert_eq!(head.framing, BodyFraming::None);
    }

    #[test]
    fn partial_needs_more() {
        assert!(parse("GET /api/health HTTP/1.1\r\nHo").unwrap().is_none());
    }

    #[test]
    fn framing_rules() {
        let err = |raw: &str| parse(raw).unwrap_err().kind;
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpErrorKind::BadRequest
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            HttpErrorKind::BadRequest
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n"),
            HttpErrorKind::BadRequest
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
            HttpErrorKind::NotImplemented
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            HttpErrorKind::BadRequest
        );
        assert_eq!(err("GET / HTTP/1.1\r\n\r\n"), HttpErrorKind::MissingHost);
        assert_eq!(
            err("GET /%ff HTTP/1.1\r\nHost: x\r\n\r\n"),
            HttpErrorKind::BadRequest
        );
        let (head, _) = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, BodyFraming::Length(5));
    }

    #[test]
    fn http10_defaults_to_close() {
        let (head, _) = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive);
        let (head, _) = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
    }

    #[test]
    fn absolute_form() {
        let (head, _) = parse("GET http://example.com/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.path, "/a/b");
        assert_eq!(head.query, "c");
    }
}
#[cfg(test)]
mod split_tests {
    use super::*;
    #[test]
    fn every_split_is_partial() {
        let raw = b"GET /a?i=0 HTTP/1.1\r\nHost: x\r\n\r\n";
        for i in 0..raw.len() {
            let r = parse_head(&raw[..i], &Limits::default());
            assert!(
                matches!(r, Ok(None)),
                "split at {i}: {:?}",
                r.map(|o| o.is_some())
            );
        }
    }
}

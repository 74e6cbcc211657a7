//! A stored file as an HTTP response, with the semantics of Go's `http.ServeContent` that
//! PocketBase serves files through: `Last-Modified`, the conditional request headers, byte
//! ranges (one range: 206 with `Content-Range`; several: `multipart/byteranges`), and its
//! 304/412/416 answers — plus the headers PocketBase adds (`Content-Disposition` inline or
//! attachment, `Content-Security-Policy`, `Cache-Control`).
//!
//! The body is streamed from disk in modest chunks: each chunk is read (`pread`) only after
//! the previous one was written, so a large file neither sits in memory nor holds up the
//! worker for long.

use futures_util::stream::{self, StreamExt};
use pocketbun_http::{Body, Method, Response};
use std::os::unix::fs::FileExt;

/// Content types PocketBase lets browsers show inline; everything else is an attachment.
const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpg",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/x-icon",
    "image/bmp",
    "video/webm",
    "video/mp4",
    "video/3gpp",
    "video/quicktime",
    "video/x-ms-wmv",
    "audio/basic",
    "audio/aiff",
    "audio/mpeg",
    "audio/midi",
    "audio/mp3",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-mpeg",
    "audio/x-m4a",
    "audio/aac",
    "application/pdf",
    "application/x-pdf",
];

/// Extensions whose `Content-Type` PocketBase forces (sniffing gets them wrong).
const EXTENSION_TYPES: &[(&str, &str)] = &[
    (".svg", "image/svg+xml"),
    (".css", "text/css"),
    (".js", "text/javascript"),
    (".mjs", "text/javascript"),
    (
        ".xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    (
        ".docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        ".pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
];

pub const CSP: &str = "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox";
pub const CACHE_CONTROL: &str = "max-age=2592000, stale-while-revalidate=86400";

/// Bytes read from disk per body chunk.
const CHUNK: u64 = 64 * 1024;

/// Go's `filepath.Ext`: the suffix from the last dot of the last path element.
fn extension(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.rfind('.').map_or("", |i| &base[i..])
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A `Content-Disposition` filename as PocketBase 0.40 writes it: in double quotes, with
/// `"` and `\` escaped (stored names are already `[A-Za-z0-9_.-]`, custom ones may not be).
pub fn quoted_filename(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        // a header value cannot carry line breaks
        if !matches!(c, '\r' | '\n') {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// `Content-Disposition` and `Content-Type` of a served file: `real_type` is the stored
/// content type, `key` the stored path (its extension may force the type).
pub fn disposition_and_type(
    real_type: &str,
    key: &str,
    name: &str,
    force_attachment: bool,
) -> (String, String) {
    let inline = !force_attachment && INLINE_TYPES.contains(&real_type);
    let disposition = format!(
        "{}; filename={}",
        if inline { "inline" } else { "attachment" },
        quoted_filename(name)
    );
    let ext = extension(key);
    let ctype = EXTENSION_TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or(real_type, |(_, t)| t);
    (disposition, ctype.to_string())
}

// ---------------------------------------------------------------------------------------------
// HTTP dates

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// An HTTP date (`Thu, 26 Nov 2026 18:13:52 GMT`) of a unix time in seconds.
pub fn http_date(unix: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Go's `http.ParseTime`: the IMF-fixdate, RFC 850 and asctime formats (the weekday name is
/// checked to be one, not to match the date).
pub fn parse_http_time(s: &str) -> Option<i64> {
    use chrono::NaiveDateTime;
    let parse = |rest: &str, fmt: &str| {
        NaiveDateTime::parse_from_str(rest, fmt)
            .ok()
            .map(|t| t.and_utc().timestamp())
    };
    if let Some((day, rest)) = s.split_once(", ") {
        if DAYS.contains(&day) {
            return parse(rest, "%d %b %Y %H:%M:%S GMT");
        }
        if LONG_DAYS.contains(&day) {
            return parse(rest, "%d-%b-%y %H:%M:%S GMT");
        }
        return None;
    }
    let (day, rest) = s.split_once(' ')?;
    if !DAYS.contains(&day) {
        return None;
    }
    parse(rest, "%b %e %H:%M:%S %Y")
}

// ---------------------------------------------------------------------------------------------
// preconditions and ranges

/// `textproto.TrimString`.
fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r'])
}

/// One entity tag at the start of `s` (`"x"` or `W/"x"`) and the rest.
fn scan_etag(s: &str) -> Option<(&str, &str)> {
    let s = trim(s);
    let start = if s.starts_with("W/") { 2 } else { 0 };
    let b = s.as_bytes();
    if b.len() < start + 2 || b[start] != b'"' {
        return None;
    }
    for (i, &c) in b.iter().enumerate().skip(start + 1) {
        match c {
            b'"' => return Some((&s[..=i], &s[i + 1..])),
            0x21 | 0x23..=0x7e | 0x80..=0xff => {}
            _ => return None,
        }
    }
    None
}

/// Whether an entity-tag list header matches the response's `etag` (none: only `*` can match),
/// stopping at the first malformed tag as Go does. `weak` compares without the `W/` marks
/// (`If-None-Match`); otherwise both tags must be strong and equal (`If-Match`).
fn etag_list_matches(list: &str, etag: Option<&str>, weak: bool) -> bool {
    let mut buf = list;
    loop {
        buf = trim(buf);
        match buf.as_bytes().first() {
            None => return false,
            Some(b',') => buf = &buf[1..],
            Some(b'*') => return true,
            Some(_) => match scan_etag(buf) {
                Some((tag, rest)) => {
                    if etag.is_some_and(|own| etag_eq(tag, own, weak)) {
                        return true;
                    }
                    buf = rest;
                }
                None => return false,
            },
        }
    }
}

/// Go's `etagWeakMatch` (`weak`) and `etagStrongMatch`.
fn etag_eq(a: &str, b: &str, weak: bool) -> bool {
    if weak {
        a.trim_start_matches("W/") == b.trim_start_matches("W/")
    } else {
        a == b && !a.is_empty() && a.starts_with('"')
    }
}

/// A byte range: start and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    pub(crate) fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.start + self.len - 1)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeError {
    Invalid,
    NoOverlap,
}

/// A number of a `Range` header; not one: the header is invalid (Go answers the same fixed
/// text whatever the reason, so there is no cause to keep).
fn int(s: &str) -> Result<i64, RangeError> {
    s.parse().map_err(|_| RangeError::Invalid)
}

/// Go's `parseRange` of a `Range` header value against a body of `size` bytes.
pub fn parse_range(s: &str, size: u64) -> Result<Vec<ByteRange>, RangeError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let spec = s.strip_prefix("bytes=").ok_or(RangeError::Invalid)?;
    let size_i = size as i64;
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    for ra in spec.split(',') {
        let ra = trim(ra);
        if ra.is_empty() {
            continue;
        }
        let (start, end) = ra.split_once('-').ok_or(RangeError::Invalid)?;
        let (start, end) = (trim(start), trim(end));
        let r = if start.is_empty() {
            if end.is_empty() || end.starts_with('-') {
                return Err(RangeError::Invalid);
            }
            let mut i = int(end)?;
            if i < 0 {
                return Err(RangeError::Invalid);
            }
            i = i.min(size_i);
            ByteRange {
                start: (size_i - i) as u64,
                len: i as u64,
            }
        } else {
            let i = int(start)?;
            if i < 0 {
                return Err(RangeError::Invalid);
            }
            if i >= size_i {
                no_overlap = true;
                continue;
            }
            let len = if end.is_empty() {
                size_i - i
            } else {
                let e = int(end)?;
                if i > e {
                    return Err(RangeError::Invalid);
                }
                e.min(size_i - 1) - i + 1
            };
            ByteRange {
                start: i as u64,
                len: len as u64,
            }
        };
        ranges.push(r);
    }
    if no_overlap && ranges.is_empty() {
        return Err(RangeError::NoOverlap);
    }
    Ok(ranges)
}

/// What `ServeContent` answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    NotModified,
    PreconditionFailed,
    /// 416, with `Content-Range: bytes */size` when no range overlapped.
    BadRange(RangeError),
    Full,
    Partial(Vec<ByteRange>),
}

/// What a request asks of a served file: how (GET/HEAD or another method) and on which
/// conditions (the conditional and range headers, each its first value). The API layer
/// fills it from the request (`apis::extract::conditional`); the domain never sees one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Conditional<'a> {
    /// GET or HEAD: only these get a 304 or a range.
    pub get_or_head: bool,
    /// HEAD: the body is never read.
    pub head: bool,
    pub if_match: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub range: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

impl<'a> Conditional<'a> {
    /// The conditions of a request made with `method` and `headers` (in arrival order; the
    /// first value of a repeated header counts, as Go's `Header.Get`). One pass over the
    /// headers, where six lookups scanned them six times.
    pub fn new(method: &Method, headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut c = Conditional {
            get_or_head: matches!(method, Method::Get | Method::Head),
            head: *method == Method::Head,
            ..Conditional::default()
        };
        for (name, value) in headers {
            let slot = if name.len() < 5 || !name.as_bytes()[..2].eq_ignore_ascii_case(b"if") {
                if name.eq_ignore_ascii_case("range") {
                    &mut c.range
                } else {
                    continue;
                }
            } else if name.eq_ignore_ascii_case("if-match") {
                &mut c.if_match
            } else if name.eq_ignore_ascii_case("if-unmodified-since") {
                &mut c.if_unmodified_since
            } else if name.eq_ignore_ascii_case("if-none-match") {
                &mut c.if_none_match
            } else if name.eq_ignore_ascii_case("if-modified-since") {
                &mut c.if_modified_since
            } else if name.eq_ignore_ascii_case("if-range") {
                &mut c.if_range
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        c
    }
}

/// Go's `checkPreconditions` and range selection for a file modified at `modified` (unix
/// seconds; 0: unknown) of `size` bytes, for a request asking `cond`.
pub fn plan(cond: &Conditional<'_>, modified: i64, size: u64) -> Plan {
    plan_with_etag(cond, modified, size, None)
}

/// [`plan`] for a response that carries the entity tag `etag` (`"…"` or `W/"…"`).
pub fn plan_with_etag(
    cond: &Conditional<'_>,
    modified: i64,
    size: u64,
    etag: Option<&str>,
) -> Plan {
    let known_time = modified != 0;
    let get_or_head = cond.get_or_head;
    // If-Match, else If-Unmodified-Since
    let if_match = cond.if_match.filter(|v| !v.is_empty());
    let precondition = match if_match {
        Some(list) => Some(etag_list_matches(list, etag, false)),
        None => cond
            .if_unmodified_since
            .filter(|v| !v.is_empty() && known_time)
            .and_then(parse_http_time)
            .map(|t| modified <= t),
    };
    if precondition == Some(false) {
        return Plan::PreconditionFailed;
    }
    match cond.if_none_match.filter(|v| !v.is_empty()) {
        Some(list) => {
            if etag_list_matches(list, etag, true) {
                return if get_or_head {
                    Plan::NotModified
                } else {
                    Plan::PreconditionFailed
                };
            }
        }
        None => {
            let unmodified = get_or_head
                && cond
                    .if_modified_since
                    .filter(|v| !v.is_empty() && known_time)
                    .and_then(parse_http_time)
                    .is_some_and(|t| modified <= t);
            if unmodified {
                return Plan::NotModified;
            }
        }
    }
    let mut range = cond.range.unwrap_or("");
    if !range.is_empty() && get_or_head {
        if let Some(ir) = cond.if_range.filter(|v| !v.is_empty()) {
            let matches = match scan_etag(ir) {
                Some((tag, _)) => etag.is_some_and(|own| etag_eq(tag, own, false)),
                None => known_time && parse_http_time(ir).is_some_and(|t| t == modified),
            };
            if !matches {
                range = "";
            }
        }
    }
    let ranges = match parse_range(range, size) {
        Ok(r) => r,
        Err(RangeError::NoOverlap) if size == 0 => Vec::new(),
        Err(e) => return Plan::BadRange(e),
    };
    if ranges.is_empty() || ranges.iter().map(|r| r.len).sum::<u64>() > size {
        return Plan::Full;
    }
    Plan::Partial(ranges)
}

// ---------------------------------------------------------------------------------------------
// the response

/// A piece of a response body: literal bytes or a span of the file.
pub(crate) enum Segment {
    Bytes(Vec<u8>),
    File(ByteRange),
}

/// Where a served file's bytes come from.
pub enum Source {
    Local(std::fs::File),
    /// An object of an S3 bucket: each span is one ranged GET, streamed as it arrives.
    S3(pocketbun_storage::files::S3Fs, String),
}

/// Streams `segments`, reading the file spans chunk by chunk.
pub(crate) fn body(source: Source, segments: Vec<Segment>) -> pocketbun_http::BodyStream {
    match source {
        Source::Local(file) => local_body(file, segments),
        Source::S3(fs, key) => s3_body(fs, key, segments),
    }
}

fn local_body(file: std::fs::File, segments: Vec<Segment>) -> pocketbun_http::BodyStream {
    struct State {
        file: std::fs::File,
        segments: std::vec::IntoIter<Segment>,
        current: Option<ByteRange>,
    }
    let state = State {
        file,
        segments: segments.into_iter(),
        current: None,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(r) = st.current.as_mut() {
                if r.len > 0 {
                    let n = r.len.min(CHUNK) as usize;
                    let mut buf = vec![0u8; n];
                    let mut got = 0;
                    while got < n {
                        match st.file.read_at(&mut buf[got..], r.start + got as u64) {
                            Ok(0) | Err(_) => return None, // truncated under us: end early
                            Ok(k) => got += k,
                        }
                    }
                    r.start += n as u64;
                    r.len -= n as u64;
                    return Some((buf, st));
                }
                st.current = None;
            }
            match st.segments.next()? {
                Segment::Bytes(b) => return Some((b, st)),
                Segment::File(r) => st.current = Some(r),
            }
        }
    })
    .boxed_local()
}

/// Streams `segments`, each file span fetched from the bucket as the previous one ends (the
/// S3 thread reads ahead a few chunks; the worker only awaits them).
fn s3_body(
    fs: pocketbun_storage::files::S3Fs,
    key: String,
    segments: Vec<Segment>,
) -> pocketbun_http::BodyStream {
    use pocketbun_storage::files::s3::Chunks;
    struct State {
        fs: pocketbun_storage::files::S3Fs,
        key: String,
        segments: std::vec::IntoIter<Segment>,
        current: Option<Chunks>,
    }
    let state = State {
        fs,
        key,
        segments: segments.into_iter(),
        current: None,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(rx) = st.current.as_mut() {
                match std::future::poll_fn(|cx| rx.poll_recv(cx)).await {
                    Some(Ok(chunk)) => return Some((chunk, st)),
                    // a failed read ends the body early, as a truncated local file does
                    Some(Err(_)) => return None,
                    None => st.current = None,
                }
            }
            match st.segments.next()? {
                Segment::Bytes(b) => return Some((b, st)),
                Segment::File(r) => {
                    let range = pocketbun_storage::files::Range {
                        start: r.start,
                        len: r.len,
                    };
                    st.current = Some(st.fs.stream(&st.key, Some(range)));
                }
            }
        }
    })
    .boxed_local()
}

/// Asks the kernel to start reading `r` ahead, so the chunk reads find it in the page cache.
pub(crate) fn read_ahead(file: &std::fs::File, r: ByteRange) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain advice on an open descriptor; no memory is passed
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            r.start as libc::off_t,
            r.len as libc::off_t,
            libc::POSIX_FADV_WILLNEED,
        );
    }
}

/// A file to serve.
pub struct Served<'a> {
    pub source: Source,
    pub size: u64,
    /// Modification time, unix seconds (0: unknown).
    pub modified: i64,
    /// The name in `Content-Disposition`.
    pub name: &'a str,
    /// The stored path (its extension can force the content type).
    pub key: &'a str,
    /// The stored content type.
    pub content_type: &'a str,
    /// `?download=` asked for an attachment.
    pub force_attachment: bool,
}

/// A random `multipart` boundary as Go's `mime/multipart` makes them (60 hex digits).
/// The body of a `size`-byte file answered per `plan` (any plan but `PreconditionFailed`),
/// as segments and their total length: one range is a 206 with `Content-Range`, several a
/// 206 `multipart/byteranges` body whose parts are `ctype`, anything else the whole file.
pub(crate) fn plan_segments(
    plan: &Plan,
    size: u64,
    ctype: &str,
    resp: &mut Response,
) -> (Vec<Segment>, u64) {
    match plan {
        Plan::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            resp.status = 206;
            resp.set_header("Content-Range", r.content_range(size));
            (vec![Segment::File(r)], r.len)
        }
        Plan::Partial(ranges) => {
            resp.status = 206;
            let b = boundary();
            resp.set_header(
                "Content-Type",
                format!("multipart/byteranges; boundary={b}"),
            );
            let mut segments = Vec::with_capacity(ranges.len() * 2 + 1);
            let mut len = 0u64;
            for (i, r) in ranges.iter().enumerate() {
                let head = format!(
                    "{}--{b}\r\nContent-Range: {}\r\nContent-Type: {ctype}\r\n\r\n",
                    if i == 0 { "" } else { "\r\n" },
                    r.content_range(size)
                );
                len += head.len() as u64 + r.len;
                segments.push(Segment::Bytes(head.into_bytes()));
                segments.push(Segment::File(*r));
            }
            let tail = format!("\r\n--{b}--\r\n");
            len += tail.len() as u64;
            segments.push(Segment::Bytes(tail.into_bytes()));
            (segments, len)
        }
        _ => {
            let whole = ByteRange {
                start: 0,
                len: size,
            };
            (vec![Segment::File(whole)], size)
        }
    }
}

pub(crate) fn boundary() -> String {
    pocketbun_storage::random::random_string_with_alphabet(60, "0123456789abcdef")
}

/// Go's `http.ServeContent` answer to an unsatisfiable or malformed `Range` (416, plain text),
/// for record files and `pb_public` alike.
pub(crate) fn bad_range(resp: &mut Response, e: RangeError, size: u64) {
    resp.status = 416;
    if e == RangeError::NoOverlap {
        resp.set_header("Content-Range", format!("bytes */{size}"));
    }
    resp.set_header("Content-Type", "text/plain; charset=utf-8");
    let msg: &[u8] = match e {
        RangeError::NoOverlap => b"invalid range: failed to overlap\n",
        RangeError::Invalid => b"invalid range\n",
    };
    resp.body = Body::Bytes(msg.to_vec());
}

/// The response PocketBase's `Serve` (through `ServeContent`) gives for a request asking
/// `cond`.
pub fn respond(cond: &Conditional<'_>, s: Served<'_>) -> Response {
    let (disposition, ctype) =
        disposition_and_type(s.content_type, s.key, s.name, s.force_attachment);
    let mut resp = Response::new(200);
    resp.set_header("Content-Disposition", disposition);
    resp.set_header("Content-Security-Policy", CSP);
    let last_modified = (s.modified != 0).then(|| http_date(s.modified));
    let plan = plan(cond, s.modified, s.size);
    match plan {
        Plan::NotModified => {
            resp.status = 304;
            resp.set_header("Cache-Control", CACHE_CONTROL);
            if let Some(lm) = last_modified {
                resp.set_header("Last-Modified", lm);
            }
            return resp;
        }
        Plan::BadRange(e) => {
            bad_range(&mut resp, e, s.size);
            return resp;
        }
        _ => {}
    }
    resp.set_header("Content-Type", ctype.clone());
    resp.set_header("Cache-Control", CACHE_CONTROL);
    if let Some(lm) = last_modified {
        resp.set_header("Last-Modified", lm);
    }
    let (segments, len) = match plan {
        Plan::PreconditionFailed => {
            resp.status = 412;
            return resp;
        }
        plan => plan_segments(&plan, s.size, &ctype, &mut resp),
    };
    resp.set_header("Accept-Ranges", "bytes");
    if !cond.head {
        if let Source::Local(file) = &s.source {
            for seg in &segments {
                if let Segment::File(r) = seg {
                    read_ahead(file, *r);
                }
            }
        }
    }
    resp.body = Body::SizedStream(body(s.source, segments), len);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, len: u64) -> ByteRange {
        ByteRange { start, len }
    }

    #[test]
    fn ranges_as_go_parses_them() {
        assert_eq!(parse_range("", 10), Ok(vec![]));
        assert_eq!(parse_range("bytes=0-4", 10), Ok(vec![r(0, 5)]));
        assert_eq!(parse_range("bytes=5-", 10), Ok(vec![r(5, 5)]));
        assert_eq!(parse_range("bytes=-3", 10), Ok(vec![r(7, 3)]));
        assert_eq!(parse_range("bytes=-30", 10), Ok(vec![r(0, 10)]));
        assert_eq!(parse_range("bytes=8-100", 10), Ok(vec![r(8, 2)]));
        assert_eq!(
            parse_range("bytes= 0-1 , ,3-3", 10),
            Ok(vec![r(0, 2), r(3, 1)])
        );
        assert_eq!(parse_range("bytes=+2-3", 10), Ok(vec![r(2, 2)]));
        assert_eq!(parse_range("bytes=10-", 10), Err(RangeError::NoOverlap));
        assert_eq!(parse_range("bytes=10-,0-1", 10), Ok(vec![r(0, 2)]));
        for bad in [
            "abc",
            "bytes=x",
            "bytes=5-4",
            "bytes=-",
            "bytes=--1",
            "bytes=-1-",
        ] {
            assert_eq!(parse_range(bad, 10), Err(RangeError::Invalid), "{bad}");
        }
    }

    #[test]
    fn http_dates() {
        let t = parse_http_time("Thu, 26 Nov 2026 17:31:40 GMT").unwrap();
        assert_eq!(http_date(t), "Thu, 26 Nov 2026 17:31:40 GMT");
        assert_eq!(parse_http_time("Thursday, 26-Nov-26 17:31:40 GMT"), Some(t));
        assert_eq!(parse_http_time("Thu Nov 26 17:31:40 2026"), Some(t));
        // the weekday is only checked to be a weekday
        assert_eq!(parse_http_time("Mon, 26 Nov 2026 17:31:40 GMT"), Some(t));
        assert_eq!(parse_http_time("Xyz, 26 Nov 2026 17:31:40 GMT"), None);
        assert_eq!(parse_http_time("26 Nov 2026 17:31:40 GMT"), None);
    }

    #[test]
    fn preconditions() {
        let t = parse_http_time("Thu, 26 Nov 2026 17:31:40 GMT").unwrap();
        let run = |hs: &[(&'static str, &'static str)]| {
            plan(&Conditional::new(&Method::Get, hs.iter().copied()), t, 100)
        };
        assert_eq!(run(&[]), Plan::Full);
        assert_eq!(run(&[("if-none-match", "*")]), Plan::NotModified);
        assert_eq!(run(&[("if-none-match", "\"a\", *")]), Plan::NotModified);
        // a malformed tag ends the list
        assert_eq!(run(&[("if-none-match", "a, *")]), Plan::Full);
        assert_eq!(run(&[("if-match", "\"a\"")]), Plan::PreconditionFailed);
        assert_eq!(run(&[("if-match", "*")]), Plan::Full);
        let same = "Thu, 26 Nov 2026 17:31:40 GMT";
        let before = "Thu, 26 Nov 2026 17:31:39 GMT";
        assert_eq!(run(&[("if-modified-since", same)]), Plan::NotModified);
        assert_eq!(run(&[("if-modified-since", before)]), Plan::Full);
        assert_eq!(run(&[("if-modified-since", "garbage")]), Plan::Full);
        // If-None-Match present (without a match) overrides If-Modified-Since
        assert_eq!(
            run(&[("if-none-match", "\"x\""), ("if-modified-since", same)]),
            Plan::Full
        );
        assert_eq!(
            run(&[("if-unmodified-since", before)]),
            Plan::PreconditionFailed
        );
        assert_eq!(run(&[("if-unmodified-since", same)]), Plan::Full);
        assert_eq!(
            run(&[("range", "bytes=0-9")]),
            Plan::Partial(vec![r(0, 10)])
        );
        assert_eq!(
            run(&[("range", "bytes=0-9"), ("if-range", same)]),
            Plan::Partial(vec![r(0, 10)])
        );
        assert_eq!(
            run(&[("range", "bytes=0-9"), ("if-range", before)]),
            Plan::Full
        );
        assert_eq!(
            run(&[("range", "bytes=0-9"), ("if-range", "\"e\"")]),
            Plan::Full
        );
        assert_eq!(
            run(&[("range", "bytes=200-")]),
            Plan::BadRange(RangeError::NoOverlap)
        );
        assert_eq!(
            run(&[("range", "pages=1")]),
            Plan::BadRange(RangeError::Invalid)
        );
        // ranges adding up to more than the file are ignored
        assert_eq!(run(&[("range", "bytes=0-99,0-99")]), Plan::Full);
    }

    #[test]
    fn conditions_from_headers() {
        let hs = [
            ("Host", "x"),
            ("IF-NONE-MATCH", "\"a\""),
            ("If-None-Match", "\"b\""),
            ("Range", "bytes=0-1"),
            ("If-Range", "\"a\""),
            ("if-match", "*"),
            ("If-Modified-Since", "m"),
            ("If-Unmodified-Since", "u"),
            ("Iffy", "no"),
        ];
        let c = Conditional::new(&Method::Head, hs);
        assert!(c.get_or_head && c.head);
        // the first value of a repeated header, names in any case
        assert_eq!(c.if_none_match, Some("\"a\""));
        assert_eq!(c.range, Some("bytes=0-1"));
        assert_eq!(c.if_range, Some("\"a\""));
        assert_eq!(c.if_match, Some("*"));
        assert_eq!(c.if_modified_since, Some("m"));
        assert_eq!(c.if_unmodified_since, Some("u"));
        let post = Conditional::new(&Method::Post, []);
        assert!(!post.get_or_head && !post.head);
        assert_eq!(post, Conditional::default());
    }

    #[test]
    fn preconditions_with_an_etag() {
        let run = |hs: &[(&'static str, &'static str)]| {
            let cond = Conditional::new(&Method::Get, hs.iter().copied());
            plan_with_etag(&cond, 1, 100, Some("\"abc\""))
        };
        assert_eq!(run(&[("if-none-match", "\"abc\"")]), Plan::NotModified);
        assert_eq!(run(&[("if-none-match", "W/\"abc\"")]), Plan::NotModified);
        assert_eq!(
            run(&[("if-none-match", "\"x\", \"abc\"")]),
            Plan::NotModified
        );
        assert_eq!(run(&[("if-none-match", "\"x\"")]), Plan::Full);
        assert_eq!(run(&[("if-match", "\"abc\"")]), Plan::Full);
        // If-Match compares strongly
        assert_eq!(run(&[("if-match", "W/\"abc\"")]), Plan::PreconditionFailed);
        assert_eq!(
            run(&[("range", "bytes=0-9"), ("if-range", "\"abc\"")]),
            Plan::Partial(vec![r(0, 10)])
        );
        assert_eq!(
            run(&[("range", "bytes=0-9"), ("if-range", "\"old\"")]),
            Plan::Full
        );
    }

    #[test]
    fn dispositions() {
        let (d, t) = disposition_and_type("image/png", "a/x.png", "x.png", false);
        assert_eq!(
            (d.as_str(), t.as_str()),
            ("inline; filename=\"x.png\"", "image/png")
        );
        let (d, _) = disposition_and_type("image/png", "a/x.png", "x.png", true);
        assert_eq!(d, "attachment; filename=\"x.png\"");
        let (d, t) = disposition_and_type("text/xml; charset=utf-8", "a/l.svg", "l.svg", false);
        assert_eq!(
            (d.as_str(), t.as_str()),
            ("attachment; filename=\"l.svg\"", "image/svg+xml")
        );
        assert_eq!(parse_bool("t"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}

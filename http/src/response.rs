use futures_util::stream::LocalBoxStream;
use std::borrow::Cow;

/// A response body produced chunk by chunk (SSE, file downloads). Each chunk is written and
/// flushed before the next is pulled, so a slow client slows its producer, not the server.
pub type BodyStream = LocalBoxStream<'static, Vec<u8>>;

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Written with chunked framing (or until close for HTTP/1.0).
    Stream(BodyStream),
    /// A stream whose total length is known up front (file downloads): Content-Length framing.
    SizedStream(BodyStream, u64),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => write!(f, "Empty"),
            Body::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Body::Stream(_) => write!(f, "Stream"),
            Body::SizedStream(_, n) => write!(f, "SizedStream({n})"),
        }
    }
}

/// Room for the usual headers of an API response (type, CORS, security, `Vary`) without
/// regrowing.
const HEADERS_CAPACITY: usize = 8;

pub type HeaderName = Cow<'static, str>;
pub type HeaderValue = Cow<'static, str>;

/// Header lines a service renders once, as constants, and adds to most of its answers (a
/// security middleware's block): written as they are, with no per-header work. A view's five
/// security headers cost ~1.9k instructions as separate entries (pushed, sorted, each written
/// with its framing and CR/LF checks), the block ~50.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedHeaders {
    /// `Name: value\r\n` lines; no CR or LF elsewhere, no framing header (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`) and no `Date`.
    pub lines: &'static str,
    /// How many entries of [`Response::headers`] are written before the lines; later entries
    /// (added after the block was set, e.g. by gzip) follow them.
    pub at: usize,
}

impl FixedHeaders {
    /// The lines as (name, value) pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.lines
            .split_terminator("\r\n")
            .filter_map(|line| line.split_once(": "))
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Written among `headers` as [`FixedHeaders::at`] says; empty for most responses but the
    /// routed answers of the engine.
    pub fixed: FixedHeaders,
    pub body: Body,
}

/// The first value of `name` among `headers`.
fn entry<'h>(headers: &'h [(HeaderName, HeaderValue)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            // the middleware adds CORS and security headers to nearly every response
            headers: Vec::with_capacity(HEADERS_CAPACITY),
            fixed: FixedHeaders::default(),
            body: Body::Empty,
        }
    }

    pub fn with_body(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: {
                let mut h = Vec::with_capacity(HEADERS_CAPACITY);
                h.push((Cow::Borrowed("Content-Type"), Cow::Borrowed(content_type)));
                h
            },
            fixed: FixedHeaders::default(),
            body: Body::Bytes(body),
        }
    }

    pub fn header(mut self, name: impl Into<HeaderName>, value: impl Into<HeaderValue>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        let (before, after) = self.headers.split_at(self.fixed.at.min(self.headers.len()));
        entry(before, name)
            .or_else(|| {
                self.fixed
                    .pairs()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .or_else(|| entry(after, name))
    }

    /// Turns the [fixed lines](Response::fixed) into ordinary entries of `headers`, in place:
    /// the same bytes on the wire, for code that edits or lists the headers one by one.
    pub fn unfix_headers(&mut self) {
        let fixed = std::mem::take(&mut self.fixed);
        if fixed.lines.is_empty() {
            return;
        }
        let at = fixed.at.min(self.headers.len());
        let lines = fixed
            .pairs()
            .map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)));
        self.headers.splice(at..at, lines);
    }

    /// Sets `name`, replacing any earlier values.
    pub fn set_header(&mut self, name: impl Into<HeaderName>, value: impl Into<HeaderValue>) {
        let name = name.into();
        if self
            .fixed
            .pairs()
            .any(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            self.unfix_headers();
        }
        // the fixed lines stay after the entries that were before them
        let before = self.fixed.at.min(self.headers.len());
        let removed_before = self.headers[..before]
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .count();
        self.fixed.at -= removed_before;
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
    }
}

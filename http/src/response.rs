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

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            // the middleware adds CORS and security headers to nearly every response
            headers: Vec::with_capacity(HEADERS_CAPACITY),
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
            body: Body::Bytes(body),
        }
    }

    pub fn header(mut self, name: impl Into<HeaderName>, value: impl Into<HeaderValue>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Sets `name`, replacing any earlier values.
    pub fn set_header(&mut self, name: impl Into<HeaderName>, value: impl Into<HeaderValue>) {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
    }
}

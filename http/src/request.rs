use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Request headers in arrival order; names compare case-insensitively.
///
/// Names and values live back to back in one string, with their bounds beside it: a head's
/// headers cost two allocations, not two per header (a browser sends 10 to 15 headers).
#[derive(Clone, Debug, Default)]
pub struct Headers {
    text: String,
    /// Per header: where its name starts, where its name ends and its value starts, and
    /// where its value ends, in `text`.
    entries: Vec<(u32, u32, u32)>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    /// Room for `headers` headers of `bytes` bytes of names and values in all.
    pub fn with_capacity(headers: usize, bytes: usize) -> Self {
        Headers {
            text: String::with_capacity(bytes),
            entries: Vec::with_capacity(headers),
        }
    }

    pub fn push(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let start = self.text.len();
        self.text.push_str(name.as_ref());
        let name_end = self.text.len();
        self.text.push_str(value.as_ref());
        self.entries
            .push((start as u32, name_end as u32, self.text.len() as u32));
    }

    /// [`Headers::push`] for a value as sent: bytes that are not UTF-8 become U+FFFD.
    pub(crate) fn push_raw(&mut self, name: &str, value: &[u8]) {
        // header values are nearly always ASCII: std's validator has a fast path for that,
        // `from_utf8_lossy`'s chunk iterator does not (~0.15k instructions per header)
        match std::str::from_utf8(value) {
            Ok(v) => self.push(name, v),
            Err(_) => self.push(name, String::from_utf8_lossy(value)),
        }
    }

    fn entry(&self, &(start, name_end, end): &(u32, u32, u32)) -> (&str, &str) {
        (
            &self.text[start as usize..name_end as usize],
            &self.text[name_end as usize..end as usize],
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The last value of `name` (what a proxy appended last).
    pub fn last(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .map(|e| self.entry(e))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|e| self.entry(e))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a comma-separated header (Connection, Accept-Encoding ...) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| value_has_token(v, token))
    }
}

/// Whether the comma-separated `value` lists `token` (parameters after `;` ignored).
fn value_has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(token)
    })
}

/// How the request body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// Everything known about a request before its body is read: enough to route it and pick
/// its body limit.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: Method,
    /// The request target exactly as sent.
    pub target: String,
    /// The path, percent-decoded; bytes that are not UTF-8 become U+FFFD (`parse`).
    pub path: String,
    /// The raw query string, without the `?`.
    pub query: String,
    pub version: Version,
    pub headers: Headers,
    /// Whether the client wants the connection kept after this exchange.
    pub keep_alive: bool,
    pub framing: BodyFraming,
    pub expect_continue: bool,
}

/// A complete request handed to the service.
#[derive(Debug)]
pub struct Request {
    pub head: RequestHead,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
    /// Path parameters filled in by the router.
    pub params: Vec<(String, String)>,
}

impl Request {
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    pub fn path(&self) -> &str {
        &self.head.path
    }

    pub fn query(&self) -> &str {
        &self.head.query
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.get(name)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

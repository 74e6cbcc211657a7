//! Incremental HTTP/1.1 response parser.
//!
//! The caller owns the buffer: it feeds unread bytes to [`ResponseParser::feed`],
//! drops what was consumed, and reads more until the parser reports completion.
//! The head is parsed with `httparse` (nothing is consumed until it is whole);
//! bodies are framed by `Content-Length`, `Transfer-Encoding: chunked`, or the
//! end of the connection. Body bytes are skipped unless capture is enabled.

use std::fmt;

/// Max headers accepted in one response head.
const MAX_HEADERS: usize = 64;
/// A head larger than this is an error (protects the buffer).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `httparse` rejected the head.
    Head(String),
    /// The head exceeds [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// Bad `Content-Length`.
    ContentLength,
    /// Malformed chunked framing.
    Chunked(&'static str),
    /// The connection ended before the response did.
    UnexpectedEof,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Head(e) => write!(f, "bad response head: {e}"),
            ParseError::HeadTooLarge => write!(f, "response head too large"),
            ParseError::ContentLength => write!(f, "bad Content-Length"),
            ParseError::Chunked(e) => write!(f, "bad chunked body: {e}"),
            ParseError::UnexpectedEof => write!(f, "connection closed mid-response"),
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size { value: u64, digits: u32 },
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Trailer { line_start: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Parses one response at a time; call [`ResponseParser::reset`] between responses.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    status: u16,
    close: bool,
    head_request: bool,
    head_len: usize,
    body_len: u64,
    capture: Option<Vec<u8>>,
    capture_limit: usize,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    /// A parser that skips bodies.
    pub fn new() -> Self {
        ResponseParser {
            state: State::Head,
            status: 0,
            close: false,
            head_request: false,
            head_len: 0,
            body_len: 0,
            capture: None,
            capture_limit: 0,
        }
    }

    /// Keeps up to `limit` body bytes of each response (see [`Self::body`]).
    pub fn capture_body(mut self, limit: usize) -> Self {
        self.capture = Some(Vec::new());
        self.capture_limit = limit;
        self
    }

    /// Prepares for the next response. `head_request` = the request was `HEAD`
    /// (the response then has no body whatever its headers say).
    pub fn reset(&mut self, head_request: bool) {
        self.state = State::Head;
        self.status = 0;
        self.close = false;
        self.head_request = head_request;
        self.head_len = 0;
        self.body_len = 0;
        if let Some(b) = self.capture.as_mut() {
            b.clear();
        }
    }

    /// Status code (valid once the head is parsed).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the server will close the connection after this response.
    pub fn close(&self) -> bool {
        self.close
    }

    /// Bytes of the head.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// Bytes of the (decoded) body seen so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Captured body (empty unless capture was enabled).
    pub fn body(&self) -> &[u8] {
        self.capture.as_deref().unwrap_or(&[])
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn take_body(&mut self, data: &[u8]) {
        self.body_len += data.len() as u64;
        if let Some(b) = self.capture.as_mut() {
            let room = self.capture_limit.saturating_sub(b.len());
            b.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    /// Consumes bytes from `buf`. Returns how many were consumed and whether the
    /// response is complete. While the head is incomplete nothing is consumed:
    /// keep the bytes and call again with more appended.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, bool), ParseError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => return Ok((pos, true)),
                State::Head => {
                    let n = match self.parse_head(&buf[pos..])? {
                        Some(n) => n,
                        None => return Ok((pos, false)),
                    };
                    pos += n;
                }
                State::Length(rem) => {
                    let take = (buf.len() - pos).min(rem as usize);
                    self.take_body(&buf[pos..pos + take]);
                    pos += take;
                    let rem = rem - take as u64;
                    if rem == 0 {
                        self.state = State::Done;
                    } else {
                        self.state = State::Length(rem);
                        return Ok((pos, false));
                    }
                }
                State::UntilClose => {
                    self.take_body(&buf[pos..]);
                    return Ok((buf.len(), false));
                }
                State::Chunked(c) => {
                    if pos == buf.len() {
                        return Ok((pos, false));
                    }
                    pos = self.feed_chunked(c, buf, pos)?;
                }
            }
        }
    }

    /// Tells the parser the peer closed the connection.
    pub fn eof(&mut self) -> Result<(), ParseError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                self.close = true;
                Ok(())
            }
            _ => Err(ParseError::UnexpectedEof),
        }
    }

    fn feed_chunked(
        &mut self,
        mut c: Chunk,
        buf: &[u8],
        mut pos: usize,
    ) -> Result<usize, ParseError> {
        while pos < buf.len() {
            if let Chunk::Data(rem) = c {
                let take = (buf.len() - pos).min(rem as usize);
                self.take_body(&buf[pos..pos + take]);
                pos += take;
                let rem = rem - take as u64;
                c = if rem == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(rem)
                };
                continue;
            }
            let b = buf[pos];
            pos += 1;
            c = match c {
                Chunk::Size { value, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= 15 {
                            return Err(ParseError::Chunked("chunk size too large"));
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        Chunk::Size {
                            value: value * 16 + d,
                            digits: digits + 1,
                        }
                    }
                    b';' | b' ' | b'\t' if digits > 0 => Chunk::Ext(value),
                    b'\r' if digits > 0 => Chunk::SizeLf(value),
                    b'\n' if digits > 0 => Self::after_size(value),
                    _ => return Err(ParseError::Chunked("bad chunk size")),
                },
                Chunk::Ext(value) => match b {
                    b'\n' => Self::after_size(value),
                    _ => Chunk::Ext(value),
                },
                Chunk::SizeLf(value) => match b {
                    b'\n' => Self::after_size(value),
                    _ => return Err(ParseError::Chunked("missing LF after chunk size")),
                },
                Chunk::DataCr => match b {
                    b'\r' => Chunk::DataLf,
                    b'\n' => Chunk::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(ParseError::Chunked("missing CRLF after chunk")),
                },
                Chunk::DataLf => match b {
                    b'\n' => Chunk::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(ParseError::Chunked("missing LF after chunk")),
                },
                Chunk::Trailer { line_start } => match b {
                    b'\n' if line_start => {
                        self.state = State::Done;
                        return Ok(pos);
                    }
                    b'\n' => Chunk::Trailer { line_start: true },
                    b'\r' => Chunk::Trailer { line_start },
                    _ => Chunk::Trailer { line_start: false },
                },
                Chunk::Data(_) => unreachable!(),
            };
        }
        self.state = State::Chunked(c);
        Ok(pos)
    }

    fn after_size(size: u64) -> Chunk {
        if size == 0 {
            Chunk::Trailer { line_start: true }
        } else {
            Chunk::Data(size)
        }
    }

    /// Returns the head length once complete, and sets up body framing.
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<usize>, ParseError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(ParseError::HeadTooLarge);
                }
                return Ok(None);
            }
            Err(e) => return Err(ParseError::Head(e.to_string())),
        };
        let status = resp.code.unwrap_or(0);
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut close = resp.version == Some(0);
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or(ParseError::ContentLength)?;
                if content_length.is_some_and(|c| c != v) {
                    return Err(ParseError::ContentLength);
                }
                content_length = Some(v);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                for tok in h.value.split(|&b| b == b',') {
                    let tok = tok.trim_ascii();
                    if tok.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            }
        }
        if (100..200).contains(&status) && status != 101 {
            // Interim response (e.g. 100 Continue): skip it, parse the next head.
            return Ok(Some(n));
        }
        self.status = status;
        self.close = close;
        self.head_len = n;
        self.state = if self.head_request || status == 204 || status == 304 || status == 101 {
            State::Done
        } else if chunked {
            State::Chunked(Chunk::Size {
                value: 0,
                digits: 0,
            })
        } else if let Some(len) = content_length {
            if len == 0 {
                State::Done
            } else {
                State::Length(len)
            }
        } else {
            self.close = true;
            State::UntilClose
        };
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every possible point into two reads, and also
    /// byte by byte; returns (status, body, consumed) and checks they agree.
    fn parse_all(input: &[u8]) -> (u16, Vec<u8>, usize) {
        let mut results = Vec::new();
        let mut splits: Vec<Vec<usize>> = (0..=input.len()).map(|i| vec![i]).collect();
        splits.push((1..input.len()).collect());
        for cuts in splits {
            let mut p = ResponseParser::new().capture_body(1 << 20);
            p.reset(false);
            let mut buf: Vec<u8> = Vec::new();
            let mut consumed_total = 0;
            let mut fed = 0;
            let mut edges = cuts.clone();
            edges.push(input.len());
            let mut done = false;
            for &e in &edges {
                buf.extend_from_slice(&input[fed..e]);
                fed = e;
                let (n, d) = p.feed(&buf).unwrap();
                buf.drain(..n);
                consumed_total += n;
                if d {
                    done = true;
                    break;
                }
            }
            if !done {
                p.eof().unwrap();
            }
            results.push((p.status(), p.body().to_vec(), consumed_total));
        }
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
        results.into_iter().next().unwrap()
    }

    #[test]
    fn content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        let (s, body, n) = parse_all(&r[..r.len() - 5]);
        assert_eq!((s, body.as_slice(), n), (200, &b"hello"[..], r.len() - 5));
        // Extra bytes (a pipelined next response) are not consumed.
        let mut p = ResponseParser::new();
        let (n, done) = p.feed(r).unwrap();
        assert!(done);
        assert_eq!(n, r.len() - 5);
        assert!(!p.close());
    }

    #[test]
    fn chunked() {
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nB\r\n world!!!!!\r\n0\r\nX-T: 1\r\n\r\n";
        let (s, body, n) = parse_all(r);
        assert_eq!(s, 404);
        assert_eq!(body, b"hello world!!!!!");
        assert_eq!(n, r.len());
    }

    #[test]
    fn until_close_and_no_body() {
        let r = b"HTTP/1.1 200 OK\r\n\r\nabc";
        let (s, body, _) = parse_all(r);
        assert_eq!((s, body.as_slice()), (200, &b"abc"[..]));
        let r = b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
        let (s, body, n) = parse_all(r);
        assert_eq!((s, body.len(), n), (204, 0, r.len()));
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        let mut p = ResponseParser::new();
        assert_eq!(p.feed(r).unwrap(), (r.len(), true));
        assert_eq!(p.status(), 201);
        assert!(p.close());
    }

    #[test]
    fn errors() {
        let mut p = ResponseParser::new();
        assert!(p
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
            .is_err());
        let mut p = ResponseParser::new();
        assert!(p.feed(b"garbage\r\n\r\n").is_err());
        let mut p = ResponseParser::new();
        assert!(
            !p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
                .unwrap()
                .1
        );
        assert_eq!(p.eof(), Err(ParseError::UnexpectedEof));
        let mut p = ResponseParser::new();
        assert!(p
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .is_err());
    }
}

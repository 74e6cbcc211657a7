//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream` that sends
//! exactly the bytes it is given.
//!
//! Nothing is added to a request: no `Host`, no `Content-Length`, no
//! `Connection` header unless the caller puts it there, in the caller's order
//! and spelling. The response is read with the rules of Python's
//! `http.client` (which the reference runner `replay.py` uses): a `100
//! Continue` is skipped; `HEAD`, 1xx, 204 and 304 responses have no body;
//! otherwise `Transfer-Encoding: chunked`, then `Content-Length`, then
//! read-to-close. A body cut short by the server closing the connection is
//! returned as far as it came, with [`Response::complete`] false.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// Default limit for connecting, sending and reading a whole response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// No body bytes at all.
    #[default]
    Empty,
    /// These bytes.
    Bytes(Vec<u8>),
    /// This many zero bytes (streamed, never held in memory at once).
    Zeros(usize),
}

impl Body {
    /// Number of body bytes.
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len(),
            Body::Zeros(n) => *n,
        }
    }

    /// True when there are no body bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request, sent verbatim: request line, the headers in order, an empty
/// line, the body.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Request target, sent as is (already percent-encoded).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Limit for connecting, sending and reading the response.
    pub timeout: Duration,
    /// When set, the response body is read for this long only (for streaming
    /// responses), then the connection is dropped and what came is returned.
    pub read_for: Option<Duration>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
            body: Body::Empty,
            timeout: DEFAULT_TIMEOUT,
            read_for: None,
        }
    }

    /// Appends a header line `name: value` (no validation, no folding).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body bytes (no header is added).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Body::Bytes(body.into());
        self
    }

    /// A JSON body with its `Content-Type` and `Content-Length`; an empty `json` adds nothing.
    pub fn json_body(self, json: &str) -> Request {
        if json.is_empty() {
            return self;
        }
        self.header("Content-Type", "application/json")
            .header("Content-Length", &json.len().to_string())
            .body(json.as_bytes().to_vec())
    }

    /// Sets the overall timeout.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// The request line and header block, ending with the empty line.
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (k, v) in &self.headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Sends the request to `127.0.0.1:port` on a new connection and reads
    /// one response.
    pub fn send(&self, port: u16) -> io::Result<Response> {
        self.send_to(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
    }

    /// Sends the request to `addr` on a new connection and reads one response.
    pub fn send_to(&self, addr: SocketAddr) -> io::Result<Response> {
        exchange(
            addr,
            &self.head_bytes(),
            &self.body,
            self.method.eq_ignore_ascii_case("HEAD"),
            self.timeout,
            self.read_for,
        )
    }
}

/// `GET target` to `127.0.0.1:port` with only `Host: 127.0.0.1:port` and
/// `Connection: close`.
pub fn get(port: u16, target: &str) -> io::Result<Response> {
    Request::new("GET", target)
        .header("Host", &format!("127.0.0.1:{port}"))
        .header("Connection", "close")
        .send(port)
}

/// A response.
#[derive(Clone, Debug)]
pub struct Response {
    /// e.g. `HTTP/1.1`
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Header lines in order, as received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the connection ended (or `read_for` ran out) before the
    /// body was complete.
    pub complete: bool,
}

impl Response {
    /// Value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Values of all headers named `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Bodies up to this size are written before the response is read; larger
/// ones are written by a helper thread while the response is read (the
/// server may answer early, e.g. 413, and stop reading).
const INLINE_BODY: usize = 256 * 1024;

/// Sends `head` and `body` on a new connection to `addr` and reads one
/// response. `head_request` tells the reader that no body follows.
pub fn exchange(
    addr: SocketAddr,
    head: &[u8],
    body: &Body,
    head_request: bool,
    timeout: Duration,
    read_for: Option<Duration>,
) -> io::Result<Response> {
    let deadline = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream).write_all(head)?;
    let mut writer = None;
    if body.len() <= INLINE_BODY {
        if let Body::Bytes(bytes) = body {
            // errors are ignored: the server may answer and close early
            let _ = (&stream).write_all(bytes);
        }
    } else {
        let mut w = stream.try_clone()?;
        let body = body.clone();
        writer = Some(std::thread::spawn(move || {
            let _ = write_body(&mut w, &body);
        }));
    }
    let result = read_response(&stream, head_request, deadline, read_for);
    let _ = stream.shutdown(Shutdown::Both);
    if let Some(w) = writer {
        let _ = w.join();
    }
    result
}

fn write_body(w: &mut TcpStream, body: &Body) -> io::Result<()> {
    match body {
        Body::Empty => Ok(()),
        Body::Bytes(b) => w.write_all(b),
        Body::Zeros(n) => {
            let chunk = vec![0u8; 1 << 20];
            let mut left = *n;
            while left > 0 {
                let k = left.min(chunk.len());
                w.write_all(&chunk[..k])?;
                left -= k;
            }
            Ok(())
        }
    }
}

/// Buffered reader with a deadline. With `soft`, reaching the deadline
/// looks like end of stream instead of an error.
struct Reader<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    pos: usize,
    deadline: Instant,
    soft: bool,
    eof: bool,
}

impl Reader<'_> {
    /// Reads more bytes into the buffer; Ok(0) at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let now = Instant::now();
        if now >= self.deadline {
            return self.timed_out();
        }
        self.stream.set_read_timeout(Some(self.deadline - now))?;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match (&*self.stream).read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return self.timed_out()
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn timed_out(&mut self) -> io::Result<usize> {
        if self.soft {
            self.eof = true;
            Ok(0)
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out reading the response",
            ))
        }
    }

    /// One line without its CRLF/LF; None at end of stream before any byte.
    fn line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.buf.len() - self.pos > 1 << 20 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response line too long",
                ));
            }
            if self.fill()? == 0 {
                if self.pos == self.buf.len() {
                    return Ok(None);
                }
                let line = self.buf[self.pos..].to_vec();
                self.pos = self.buf.len();
                return Ok(Some(line));
            }
        }
    }

    /// Up to `n` bytes; fewer only at end of stream.
    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut left = n;
        loop {
            let avail = (self.buf.len() - self.pos).min(left);
            out.extend_from_slice(&self.buf[self.pos..self.pos + avail]);
            self.pos += avail;
            left -= avail;
            if left == 0 {
                return Ok(true);
            }
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
    }

    fn rest(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        loop {
            out.extend_from_slice(&self.buf[self.pos..]);
            self.pos = self.buf.len();
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_response(
    stream: &TcpStream,
    head_request: bool,
    deadline: Instant,
    read_for: Option<Duration>,
) -> io::Result<Response> {
    let mut r = Reader {
        stream,
        buf: Vec::new(),
        pos: 0,
        deadline,
        soft: false,
        eof: false,
    };
    let (version, status, reason, headers) = loop {
        let line = r.line()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed without a response",
            )
        })?;
        let line = String::from_utf8_lossy(&line).into_owned();
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/"))
            .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let h = r
                .line()?
                .ok_or_else(|| invalid("connection closed inside the header".into()))?;
            if h.is_empty() {
                break;
            }
            let h = String::from_utf8_lossy(&h).into_owned();
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {h:?}")))?;
            headers.push((k.to_string(), v.trim().to_string()));
        }
        if status != 100 {
            break (version, status, reason, headers);
        }
    };
    let mut resp = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
        complete: true,
    };
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    if let Some(d) = read_for {
        r.deadline = Instant::now() + d;
        r.soft = true;
    }
    let chunked = resp
        .header_all("Transfer-Encoding")
        .last()
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
    if chunked {
        resp.complete = read_chunked(&mut r, &mut resp.body)?;
    } else if let Some(len) = resp.header("Content-Length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        resp.complete = r.take(len, &mut resp.body)?;
    } else {
        r.rest(&mut resp.body)?;
        resp.complete = !r.soft || Instant::now() < r.deadline;
    }
    Ok(resp)
}

/// Decodes a chunked body; Ok(false) when the stream ended early.
fn read_chunked(r: &mut Reader<'_>, out: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let Some(line) = r.line()? else {
            return Ok(false);
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // trailer section
            loop {
                match r.line()? {
                    None => return Ok(true),
                    Some(l) if l.is_empty() => return Ok(true),
                    Some(_) => {}
                }
            }
        }
        if !r.take(size, out)? {
            return Ok(false);
        }
        match r.line()? {
            Some(l) if l.is_empty() => {}
            None => return Ok(false),
            Some(l) => {
                return Err(invalid(format!(
                    "chunk not followed by CRLF: {:?}",
                    String::from_utf8_lossy(&l)
                )))
            }
        }
    }
}

//! A tiny blocking HTTP/1.1 JSON client for seeding and pre-flight checks
//! (not the load path). One keep-alive connection, re-opened when needed.

use crate::http1::ResponseParser;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response body kept by [`Api`].
const BODY_LIMIT: usize = 64 << 20;

/// A response: status and raw body.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `STATUS body…` (body cut to `max` bytes), for error messages.
    pub fn brief(&self, max: usize) -> String {
        let b = String::from_utf8_lossy(&self.body[..self.body.len().min(max)]);
        format!("{} {}", self.status, b.trim())
    }

    /// Turns a non-2xx response into an error mentioning `what`.
    pub fn check(self, what: &str) -> crate::Result<ApiResponse> {
        if self.ok() {
            Ok(self)
        } else {
            Err(format!("{what}: HTTP {}", self.brief(300)).into())
        }
    }
}

/// Blocking client bound to one loopback server.
pub struct Api {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    timeout: Duration,
    /// Sent as `Authorization` when a call does not give its own.
    pub token: Option<String>,
}

impl Api {
    /// Client for `addr` (must be loopback).
    pub fn new(addr: SocketAddr) -> crate::Result<Api> {
        if !addr.ip().is_loopback() {
            return Err(format!("refusing non-loopback address {addr}").into());
        }
        Ok(Api {
            addr,
            stream: None,
            timeout: Duration::from_secs(60),
            token: None,
        })
    }

    /// Sends `method path` with an optional JSON body; `auth` overrides the
    /// default token (`Some("")` = no Authorization header).
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> crate::Result<ApiResponse> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = auth.or(self.token.as_deref()).filter(|t| !t.is_empty());
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pocketbun-loadtest\r\nAccept: application/json\r\n",
            self.addr
        );
        if let Some(t) = auth {
            req.push_str(&format!("Authorization: {t}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        self.raw(req.as_bytes(), method == "HEAD")
    }

    /// Sends pre-built request bytes (one request), returns the response.
    /// Retries once on a fresh connection if a kept-alive one was stale.
    pub fn raw(&mut self, req: &[u8], head: bool) -> crate::Result<ApiResponse> {
        let reused = self.stream.is_some();
        match self.try_raw(req, head) {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.stream = None;
                self.try_raw(req, head)
            }
            Err(e) => Err(e),
        }
    }

    fn try_raw(&mut self, req: &[u8], head: bool) -> crate::Result<ApiResponse> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.stream = Some(s);
        }
        let s = self.stream.as_mut().expect("connected");
        if let Err(e) = s.write_all(req) {
            self.stream = None;
            return Err(e.into());
        }
        let mut parser = ResponseParser::new().capture_body(BODY_LIMIT);
        parser.reset(head);
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if !buf.is_empty() {
                let (n, done) = parser.feed(&buf).inspect_err(|_| {
                    self.stream = None;
                })?;
                buf.drain(..n);
                if done {
                    break;
                }
            }
            let n = match self.stream.as_mut().expect("connected").read(&mut chunk) {
                Ok(n) => n,
                Err(e) => {
                    self.stream = None;
                    return Err(e.into());
                }
            };
            if n == 0 {
                parser.eof().inspect_err(|_| {
                    self.stream = None;
                })?;
                self.stream = None;
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if parser.close() {
            self.stream = None;
        }
        Ok(ApiResponse {
            status: parser.status(),
            body: parser.body().to_vec(),
        })
    }
}

/// Percent-encodes a query-string component (RFC 3986 unreserved kept).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(
            urlencode("(published=true && views>5)"),
            "%28published%3Dtrue%20%26%26%20views%3E5%29"
        );
        assert_eq!(urlencode("-views"), "-views");
    }

    #[test]
    fn refuses_remote() {
        assert!(Api::new("10.0.0.1:80".parse().unwrap()).is_err());
    }
}

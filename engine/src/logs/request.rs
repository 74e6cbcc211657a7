//! The request log: what PocketBase's activity logger records about every request.
//!
//! [`PendingRequest::begin`] runs before the handler and [`PendingRequest::finish`] after it;
//! both only copy a few strings. The auth record behind the token is resolved later, on the
//! log thread ([`RequestLog::into_data`]).

use super::{Entry, LEVEL_ERROR, LEVEL_INFO};
use crate::app::Shared;
pub use crate::client_ip::client_ip;
use crate::client_ip::{expanded, real_ip};
use crate::error::ApiError;
use pocketbun_http::{Method, Request};
use serde_json::{Map, Value};
use std::time::Instant;

const MAX_METHOD: usize = 50;
const MAX_URL: usize = 3000;
const MAX_HEADER: usize = 2000;

/// A request being served whose log will be written (logging is on).
pub struct PendingRequest {
    started: Instant,
    method: String,
    uri: String,
    referer: String,
    user_agent: String,
    authorization: Option<String>,
    log_auth_id: bool,
    min_level: i64,
    /// `(userIP, remoteIP)` when `logs.logIP` is on.
    ips: Option<(String, String)>,
    skip_success: bool,
}

/// A finished request's log, before its auth is resolved.
pub struct RequestLog {
    pub(super) created: String,
    pub(super) level: i64,
    pub(super) message: String,
    pub(super) authorization: Option<String>,
    log_auth_id: bool,
    data: Map<String, Value>,
}

impl PendingRequest {
    /// `None` when nothing will be logged (no log writer, `logs.maxDays` 0).
    pub fn begin(shared: &Shared, req: &Request) -> Option<PendingRequest> {
        if !super::enabled() {
            return None;
        }
        let settings = shared.settings.get();
        let logs = &settings.logs;
        if logs.max_days == 0 {
            return None;
        }
        let started = Instant::now();
        let method = cut(&req.head.method.as_str().to_ascii_uppercase(), MAX_METHOD);
        let uri = cut(request_uri(&req.head.target), MAX_URL);
        let path = uri.split('?').next().unwrap_or("");
        let skip_success = path == "/api/logs"
            || path.starts_with("/api/logs/")
            || path == "/api/oauth2-redirect"
            || (path == "/api/realtime" && matches!(req.head.method, Method::Get));
        let ips = logs.log_ip.then(|| {
            let remote = expanded(req.peer.ip());
            let user = real_ip(&settings, req).unwrap_or_else(|| remote.clone());
            (user, remote)
        });
        Some(PendingRequest {
            started,
            method,
            uri,
            referer: cut(req.header("referer").unwrap_or(""), MAX_HEADER),
            user_agent: cut(req.header("user-agent").unwrap_or(""), MAX_HEADER),
            authorization: req
                .header("authorization")
                .filter(|h| !h.trim().is_empty())
                .map(str::to_string),
            log_auth_id: logs.log_auth_id,
            min_level: logs.min_level,
            ips,
            skip_success,
        })
    }

    /// Queues the log of the answered request (`error`: the handler's failure, if any).
    pub fn finish(self, status: u16, error: Option<&ApiError>) {
        if error.is_none() && self.skip_success {
            return;
        }
        let level = if error.is_some() {
            LEVEL_ERROR
        } else {
            LEVEL_INFO
        };
        if level < self.min_level {
            return;
        }
        let exec_ms = self.started.elapsed().as_nanos() as f64 / 1_000_000.0;
        let mut data = Map::new();
        data.insert("type".into(), "request".into());
        if let Some(n) = serde_json::Number::from_f64(exec_ms) {
            data.insert("execTime".into(), Value::Number(n));
        }
        if let Some(err) = error {
            data.insert("error".into(), err.message.clone().into());
            data.insert("details".into(), details(&err.data));
        }
        let message = format!("{} {}", self.method, path_unescape(&self.uri));
        data.insert("url".into(), self.uri.into());
        data.insert("method".into(), self.method.into());
        data.insert("status".into(), status.into());
        data.insert("referer".into(), self.referer.into());
        data.insert("userAgent".into(), self.user_agent.into());
        if let Some((user, remote)) = self.ips {
            data.insert("userIP".into(), user.into());
            data.insert("remoteIP".into(), remote.into());
        }
        super::submit(Entry::Request(Box::new(RequestLog {
            created: pocketbun_storage::time::now_datetime(),
            level,
            message,
            authorization: self.authorization,
            log_auth_id: self.log_auth_id,
            data,
        })));
    }
}

impl RequestLog {
    /// The log's `data`, completed with the request's auth record.
    pub(super) fn into_data(self, auth: Option<&crate::auth::AuthRecord>) -> Map<String, Value> {
        let mut data = self.data;
        match auth {
            Some(a) => {
                data.insert("auth".into(), a.collection_name.clone().into());
                if self.log_auth_id {
                    data.insert("authId".into(), a.id.clone().into());
                }
            }
            None => {
                data.insert("auth".into(), "".into());
            }
        }
        data
    }
}

/// The raw details of an API error as PocketBase logs them: `null`, or the validation
/// errors as `{"field": "raw message"}`.
fn details(data: &Map<String, Value>) -> Value {
    if data.is_empty() {
        return Value::Null;
    }
    fn raw(v: &Value) -> Value {
        match v {
            Value::Object(o) => match o.get("message") {
                Some(Value::String(m)) if o.contains_key("code") => {
                    let m = m.strip_suffix('.').unwrap_or(m);
                    let mut chars = m.chars();
                    let lowered = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
                        None => String::new(),
                    };
                    Value::String(lowered)
                }
                _ => Value::Object(o.iter().map(|(k, v)| (k.clone(), raw(v))).collect()),
            },
            other => other.clone(),
        }
    }
    raw(&Value::Object(data.clone()))
}

/// The request target as Go's `URL.RequestURI()` has it: path and query, without a scheme
/// and host of an absolute-form target.
fn request_uri(target: &str) -> &str {
    match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("/", |j| &target[i + 3 + j..]),
        None => target,
    }
}

/// Go's `cutStr`: at most `max` bytes (on a char boundary), then `...`.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Go's `url.PathUnescape`: `%XX` decoded (`+` kept); an invalid escape leaves `s` as is.
fn path_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => return s.to_string(),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_helpers() {
        assert_eq!(path_unescape("/a%20b?x=%2F+y"), "/a b?x=/+y");
        assert_eq!(path_unescape("/bad%zz"), "/bad%zz");
        assert_eq!(cut("abcdef", 3), "abc...");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(request_uri("http://h:1/x?y"), "/x?y");
        assert_eq!(
            expanded("::1".parse().unwrap()),
            "0000:0000:0000:0000:0000:0000:0000:0001"
        );
        let mut data = Map::new();
        data.insert(
            "name".into(),
            serde_json::json!({"code":"validation_match_invalid","message":"Must be in a valid format."}),
        );
        assert_eq!(
            details(&data),
            serde_json::json!({"name":"must be in a valid format"})
        );
        assert_eq!(details(&Map::new()), Value::Null);
    }
}

//! The request log: what PocketBase's activity logger records about every request.
//!
//! [`PendingRequest::begin`] runs before the handler and [`PendingRequest::finish`] after it.
//! What it records of the request comes as a [`RequestMeta`], which the API layer fills
//! (`apis::extract::request_meta`): the log never sees an HTTP request.
//! The log's `data` JSON is written as text right there, in Go's key order, except for the
//! auth keys: the auth record behind the token is resolved later, on the log thread
//! ([`RequestLog::write_data`]), and its keys (`auth`, `authId`) sort before all others.
//! No JSON tree, no float formatting and no timestamp formatting happen on a request worker.

use super::{Entry, Logs, LEVEL_ERROR, LEVEL_INFO};
use crate::client_ip::{expanded, real_ip};
use crate::error::ApiError;
use crate::settings::SettingsCell;
use pocketbun_storage::collections::gojson;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

const MAX_METHOD: usize = 50;
const MAX_URL: usize = 3000;
const MAX_HEADER: usize = 2000;

/// What the request log records of a request, borrowed from it.
pub struct RequestMeta<'a, H> {
    /// The method as sent.
    pub method: &'a str,
    /// GET: a successful `GET /api/realtime` (the SSE stream) is not logged.
    pub is_get: bool,
    /// The request target as sent (origin or absolute form).
    pub target: &'a str,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The `Authorization` header, resolved to its auth record on the log thread.
    pub authorization: Option<&'a str>,
    /// The peer's address.
    pub remote_ip: IpAddr,
    /// The last value of a request header: the client IP behind a trusted proxy is read
    /// through it (PocketBase's `RealIP`), and only when IPs are logged.
    pub last_header: H,
}

/// A request being served whose log will be written (logging is on).
pub struct PendingRequest {
    started: Instant,
    created: SystemTime,
    message: String,
    /// `,"method":…,"referer":…[,"remoteIP":…]` of `data`.
    mid: String,
    /// `,"type":"request","url":…,"userAgent":…[,"userIP":…]}` of `data`.
    end: String,
    authorization: Option<String>,
    log_auth_id: bool,
    min_level: i64,
    skip_success: bool,
}

/// A finished request's log, before its auth is resolved.
pub struct RequestLog {
    pub(super) created: SystemTime,
    pub(super) level: i64,
    pub(super) message: String,
    pub(super) authorization: Option<String>,
    log_auth_id: bool,
    /// `"details":…,"error":…,` of a failed request (else empty).
    error: String,
    /// How long the request took, in nanoseconds (written as milliseconds).
    exec_ns: u64,
    status: u16,
    mid: String,
    end: String,
}

impl PendingRequest {
    /// `None` when nothing will be logged (no log writer, `logs.maxDays` 0). `meta` is
    /// asked for the request's details only when its log will be kept.
    pub fn begin<'a, H>(
        logs: &Logs,
        settings: &SettingsCell,
        meta: impl FnOnce() -> RequestMeta<'a, H>,
    ) -> Option<PendingRequest>
    where
        H: Fn(&str) -> Option<&'a str>,
    {
        if !logs.enabled() {
            return None;
        }
        let settings = settings.get();
        let logs = &settings.logs;
        if logs.max_days == 0 {
            return None;
        }
        let started = Instant::now();
        let created = SystemTime::now();
        let meta = meta();
        let method = cut(meta.method, MAX_METHOD);
        // nearly always uppercase already: no copy then
        let method = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(method.to_ascii_uppercase())
        } else {
            method
        };
        let uri = cut(request_uri(meta.target), MAX_URL);
        let path = uri.split('?').next().unwrap_or("");
        let skip_success = path == "/api/logs"
            || path.starts_with("/api/logs/")
            || path == "/api/oauth2-redirect"
            || (path == "/api/realtime" && meta.is_get);
        let referer = cut(meta.referer.unwrap_or(""), MAX_HEADER);
        let user_agent = cut(meta.user_agent.unwrap_or(""), MAX_HEADER);

        let mut message = String::with_capacity(method.len() + 1 + uri.len());
        message.push_str(&method);
        message.push(' ');
        crate::go::path_unescape_into(&mut message, &uri);

        // room for the keys, the values, a few escapes and the IP (39 bytes for IPv6), so
        // neither string grows (two reallocations per request before)
        let mut mid = String::with_capacity(112 + method.len() + referer.len());
        mid.push_str(",\"method\":");
        gojson::write_str(&mut mid, &method);
        mid.push_str(",\"referer\":");
        gojson::write_str(&mut mid, &referer);
        let mut end = String::with_capacity(128 + uri.len() + user_agent.len());
        end.push_str(",\"type\":\"request\",\"url\":");
        gojson::write_str(&mut end, &uri);
        end.push_str(",\"userAgent\":");
        gojson::write_str(&mut end, &user_agent);
        if logs.log_ip {
            let remote = expanded(meta.remote_ip);
            let user = real_ip(&settings.trusted_proxy, &meta.last_header)
                .unwrap_or_else(|| remote.clone());
            mid.push_str(",\"remoteIP\":");
            gojson::write_str(&mut mid, &remote);
            end.push_str(",\"userIP\":");
            gojson::write_str(&mut end, &user);
        }
        end.push('}');
        Some(PendingRequest {
            started,
            created,
            message,
            mid,
            end,
            authorization: meta
                .authorization
                .filter(|h| !h.trim().is_empty())
                .map(str::to_string),
            log_auth_id: logs.log_auth_id,
            min_level: logs.min_level,
            skip_success,
        })
    }

    /// Queues the log of the answered request on `logs` (`error`: the handler's failure, if
    /// any). Waits, before the response goes out, while the log backlog is full
    /// ([`Logs::submit_request`]).
    pub async fn finish(self, logs: &Logs, status: u16, error: Option<&ApiError>) {
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
        let exec_ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut error_keys = String::new();
        if let Some(err) = error {
            error_keys.push_str("\"details\":");
            match crate::error::to_go_json(&details(&err.data)) {
                Ok(b) => error_keys.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => error_keys.push_str("null"),
            }
            error_keys.push_str(",\"error\":");
            gojson::write_str(&mut error_keys, &err.message);
            error_keys.push(',');
        }
        let log = Entry::Request(Box::new(RequestLog {
            created: self.created,
            level,
            message: self.message,
            authorization: self.authorization,
            log_auth_id: self.log_auth_id,
            error: error_keys,
            exec_ns,
            status,
            mid: self.mid,
            end: self.end,
        }));
        logs.submit_request(log).await;
    }
}

impl RequestLog {
    /// Writes the log's `data` JSON into `out`, completed with the request's auth record
    /// (Go's sorted key order: `auth`, `authId`, `details`, `error`, `execTime`, …).
    pub(super) fn write_data(&self, out: &mut String, auth: Option<&crate::auth::AuthRecord>) {
        out.push_str("{\"auth\":");
        match auth {
            Some(a) => {
                gojson::write_str(out, &a.collection_name);
                if self.log_auth_id {
                    out.push_str(",\"authId\":");
                    gojson::write_str(out, &a.id);
                }
            }
            None => out.push_str("\"\""),
        }
        out.push(',');
        out.push_str(&self.error);
        out.push_str("\"execTime\":");
        write_exec_ms(out, self.exec_ns);
        out.push_str(&self.mid);
        out.push_str(",\"status\":");
        gojson::write_i64(out, self.status as i64);
        out.push_str(&self.end);
    }

    /// Bytes this log holds (for the log queue's memory bound).
    pub(super) fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.message.len()
            + self.error.len()
            + self.mid.len()
            + self.end.len()
            + self.authorization.as_ref().map_or(0, String::len)
    }
}

/// `ns` nanoseconds as the milliseconds PocketBase logs (a float64, written by Go's JSON
/// encoder as the shortest text that reads back as the same number), without the float
/// formatter (~0.8k instructions per log): below 10^15 ns (11 days) the float nearest to
/// ns / 10^6 is one whose shortest text is that quotient's exact decimal, trailing zeros
/// dropped, since two decimals of at most 15 significant digits never share a float.
fn write_exec_ms(out: &mut String, ns: u64) {
    if ns >= 1_000_000_000_000_000 {
        gojson::write_f64(out, ns as f64 / 1_000_000.0);
        return;
    }
    gojson::write_i64(out, (ns / 1_000_000) as i64);
    let mut frac = ns % 1_000_000;
    if frac == 0 {
        return;
    }
    let mut digits = [0u8; 6];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let len = 6 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.push('.');
    out.extend(digits[..len].iter().map(|&d| d as char));
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
    // origin form, what nearly every request sends
    if target.starts_with('/') {
        return target;
    }
    match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("/", |j| &target[i + 3 + j..]),
        None => target,
    }
}

/// Go's `cutStr`: at most `max` bytes (on a char boundary), then `...`.
fn cut(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &s[..end]))
}

#[cfg(test)]
fn path_unescape(s: &str) -> String {
    let mut out = String::new();
    crate::go::path_unescape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_go_json_with_sorted_keys() {
        let mut mid = String::new();
        mid.push_str(",\"method\":\"GET\",\"referer\":");
        gojson::write_str(&mut mid, "http://a/<b>");
        mid.push_str(",\"remoteIP\":\"127.0.0.1\"");
        let log = RequestLog {
            created: SystemTime::UNIX_EPOCH,
            level: LEVEL_ERROR,
            message: "GET /x".into(),
            authorization: None,
            log_auth_id: true,
            error: "\"details\":null,\"error\":\"Oops.\",".into(),
            exec_ns: 123_456,
            status: 400,
            mid,
            end:
                ",\"type\":\"request\",\"url\":\"/x?a=1\",\"userAgent\":\"ua\",\"userIP\":\"::1\"}"
                    .into(),
        };
        let mut out = String::new();
        log.write_data(&mut out, None);
        // re-encoding through a sorted map with Go's escaping must give the same text
        let parsed: Map<String, Value> = serde_json::from_str(&out).unwrap();
        let again = String::from_utf8(crate::error::to_go_json(&parsed).unwrap()).unwrap();
        assert_eq!(out, again);
        assert_eq!(parsed["execTime"], 0.123456);
        assert_eq!(parsed["auth"], "");
    }

    /// The hand-written milliseconds are what Go's float encoding gives for ns / 10^6.
    #[test]
    fn exec_time_reads_as_the_float() {
        let mut samples: Vec<u64> = vec![
            0,
            1,
            9,
            10,
            999_999,
            1_000_000,
            1_000_001,
            123_456,
            120_000,
            5_000_000,
            86_400_000_000_000,
            999_999_999_999_999,
            1_000_000_000_000_000,
            (1 << 53) - 1,
            u64::MAX,
        ];
        // a spread of magnitudes (a cheap LCG: any values will do)
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            samples.push((x >> 11) >> (x % 50));
        }
        for ns in samples {
            let mut ours = String::new();
            write_exec_ms(&mut ours, ns);
            let mut go = String::new();
            gojson::write_f64(&mut go, ns as f64 / 1_000_000.0);
            assert_eq!(ours, go, "{ns} ns");
        }
    }

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
        assert_eq!(expanded("10.0.255.7".parse().unwrap()), "10.0.255.7");
        assert_eq!(expanded("::ffff:1.20.3.199".parse().unwrap()), "1.20.3.199");
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

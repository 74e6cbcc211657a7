//! The PocketBase API conformance corpus (`shared/conformance`, see its
//! README): scenarios, their requests and the response checks of
//! PocketBase's `tests/api.go`, exactly as the reference runner `replay.py`
//! applies them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::http::{Body, Request};
use crate::server::{Server, ServerSpec};

/// The `Host` header `tests/api.go` requests carry (httptest's default).
pub const DEFAULT_HOST: &str = "example.com";

/// One scenario of `scenarios.json` (fields as documented in the corpus
/// README).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub id: String,
    pub file: String,
    #[serde(default)]
    pub test_func: String,
    #[serde(default)]
    pub line: u32,
    pub name: String,
    pub method: String,
    /// Request target (`None` only in needsGo scenarios whose URL Go computes).
    #[serde(default)]
    pub url: Option<String>,
    /// Scenario headers in document order (values are `None` only in
    /// needsGo scenarios).
    #[serde(default, deserialize_with = "ordered_headers")]
    pub headers: Vec<(String, Option<String>)>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_kind: Option<String>,
    #[serde(default)]
    pub body_size: Option<usize>,
    #[serde(default)]
    pub expected_status: Option<u16>,
    #[serde(default)]
    pub expected_content: Vec<Content>,
    #[serde(default)]
    pub not_expected_content: Vec<Content>,
    #[serde(default)]
    pub delay_ms: f64,
    #[serde(default)]
    pub timeout_ms: f64,
    #[serde(default)]
    pub needs_go: bool,
    #[serde(default)]
    pub after_test_func_only: bool,
    #[serde(default)]
    pub excluded: bool,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An `expectedContent` / `notExpectedContent` item.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Base64 { base64: String },
}

impl Content {
    /// The bytes to look for.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Text(s) => s.as_bytes().to_vec(),
            Content::Base64 { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .expect("valid base64 in scenarios.json"),
        }
    }

    fn show(&self) -> String {
        match self {
            Content::Text(s) if s.chars().count() > 120 => {
                format!("{:?}...", s.chars().take(120).collect::<String>())
            }
            Content::Text(s) => format!("{s:?}"),
            Content::Base64 { .. } => format!("<base64 {} bytes>", self.bytes().len()),
        }
    }
}

fn ordered_headers<'de, D>(d: D) -> Result<Vec<(String, Option<String>)>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, Option<String>)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of header values, or null")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(V)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, Option<String>>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_option(V)
}

/// The corpus directory and its scenarios.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub dir: PathBuf,
    pub scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
struct CorpusFile {
    scenarios: Vec<Scenario>,
}

impl Corpus {
    /// Loads `<dir>/scenarios.json`.
    pub fn load(dir: &Path) -> Result<Corpus, String> {
        let path = dir.join("scenarios.json");
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: CorpusFile =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Corpus {
            dir: dir.to_path_buf(),
            scenarios: file.scenarios,
        })
    }

    /// The fixture data dir (`<dir>/pb_data`); never modify it in place.
    pub fn fixture(&self) -> PathBuf {
        self.dir.join("pb_data")
    }

    /// The replayable scenarios (`needsGo` false, not excluded), in corpus order.
    pub fn replayable(&self) -> impl Iterator<Item = &Scenario> {
        self.scenarios.iter().filter(|s| s.is_replayable())
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for the common cases, as
/// `replay.py` spells it: every `-`-separated part capitalised.
pub fn canonical_header_key(k: &str) -> String {
    k.split('-')
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(c) => c
                    .to_uppercase()
                    .chain(cs.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join("-")
}

impl Scenario {
    pub fn is_replayable(&self) -> bool {
        !self.needs_go && !self.excluded
    }

    /// The request body.
    pub fn request_body(&self) -> Body {
        if self.body_kind.as_deref() == Some("zeros") {
            Body::Zeros(self.body_size.unwrap_or(0))
        } else if let Some(b) = &self.body {
            Body::Bytes(b.as_bytes().to_vec())
        } else {
            Body::Empty
        }
    }

    /// The request of `tests/api.go` (README "Request construction"):
    /// request line with the url verbatim, `Host` (`host`, or
    /// `127.0.0.1:<port>` when `None`), `Content-Type: application/json` then
    /// the scenario headers (canonical names, trimmed values, a repeated name
    /// replacing the earlier value in place), `Content-Length` (body length;
    /// 0 for POST/PUT/PATCH without a body; absent otherwise),
    /// `Connection: close`.
    pub fn request(&self, host: Option<&str>, port: u16) -> Request {
        let mut headers: Vec<(String, String)> =
            vec![("Content-Type".into(), "application/json".into())];
        for (k, v) in &self.headers {
            let k = canonical_header_key(k);
            let v = v.as_deref().unwrap_or("").trim().to_string();
            match headers.iter_mut().find(|(hk, _)| *hk == k) {
                Some(h) => h.1 = v,
                None => headers.push((k, v)),
            }
        }
        let body = self.request_body();
        let length = match (&body, self.method.as_str()) {
            (Body::Empty, "POST" | "PUT" | "PATCH") => Some(0),
            (Body::Empty, _) if self.body.is_none() => None,
            (b, _) => Some(b.len()),
        };
        let host = match host {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => format!("127.0.0.1:{port}"),
        };
        let url = self.url.as_deref().unwrap_or_default();
        let mut req = Request::new(&self.method, url).header("Host", &host);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        if let Some(n) = length {
            req = req.header("Content-Length", &n.to_string());
        }
        req = req.header("Connection", "close");
        req.body = body;
        if self.timeout_ms > 0.0 {
            req.read_for = Some(Duration::from_secs_f64(self.timeout_ms / 1000.0));
        }
        req
    }

    /// The comparison rules of `tests/api.go` (README "Comparison rules"):
    /// `Err` holds every failing rule (the first failing item of each list),
    /// joined by `"; "`, worded like `replay.py`.
    pub fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        let mut reasons = Vec::new();
        match self.expected_status {
            Some(s) if s == status => {}
            Some(s) => reasons.push(format!("expected status {s}, got {status}")),
            None => reasons.push("scenario has no static expected status".into()),
        }
        if self.expected_content.is_empty() && self.not_expected_content.is_empty() {
            if !body.is_empty() {
                reasons.push(format!(
                    "expected empty body, got {} bytes: {}",
                    body.len(),
                    excerpt(body, 300)
                ));
            }
        } else {
            // the corpus is PocketBase 0.39's, whose JSON escaped `<`, `>`, `&`, U+2028 and
            // U+2029; 0.40 (the reference) writes them raw, so they are escaped back here
            let compact = go_json_compact(body).map(|c| html_escape_json(&c));
            let norm = compact.as_deref().unwrap_or(body);
            if let Some(item) = self
                .expected_content
                .iter()
                .find(|i| !contains(norm, &i.bytes()))
            {
                reasons.push(format!(
                    "cannot find {} in body: {}",
                    item.show(),
                    excerpt(norm, 300)
                ));
            }
            if let Some(item) = self
                .not_expected_content
                .iter()
                .find(|i| contains(norm, &i.bytes()))
            {
                reasons.push(format!(
                    "did not expect {} in body: {}",
                    item.show(),
                    excerpt(norm, 300)
                ));
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }
}

/// True when `needle` is a byte substring of `hay` (the empty needle always is).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The first `limit` bytes as lossy UTF-8, `...` when cut.
pub fn excerpt(b: &[u8], limit: usize) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(limit)]).into_owned();
    if b.len() > limit {
        s + "..."
    } else {
        s
    }
}

/// Go's `json.Compact` of `body`, or `None` when Go would reject it (the
/// body is not exactly one valid JSON value, with optional surrounding
/// whitespace). Compacting removes space, tab, CR and LF outside strings and
/// changes nothing else. Like Go's scanner, bytes inside strings are not
/// checked for UTF-8 validity, and nesting deeper than 10000 is rejected.
pub fn go_json_compact(body: &[u8]) -> Option<Vec<u8>> {
    if !go_json_valid(body) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let (mut in_str, mut esc) = (false, false);
    for &c in body {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(c);
            in_str = c == b'"';
        }
    }
    Some(out)
}

/// A compact JSON text with `<`, `>`, `&`, U+2028 and U+2029 in its strings escaped as Go's
/// `encoding/json` (PocketBase 0.39) escaped them.
pub fn html_escape_json(compact: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len());
    let (mut in_str, mut esc) = (false, false);
    let mut i = 0;
    while i < compact.len() {
        let c = compact[i];
        i += 1;
        if !in_str {
            in_str = c == b'"';
            out.push(c);
            continue;
        }
        if esc {
            esc = false;
            out.push(c);
            continue;
        }
        match c {
            b'\\' => {
                esc = true;
                out.push(c);
            }
            b'"' => {
                in_str = false;
                out.push(c);
            }
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if compact.get(i) == Some(&0x80)
                && matches!(compact.get(i + 1), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if compact[i + 1] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 2;
            }
            _ => out.push(c),
        }
    }
    out
}

/// Go's `json.Valid` (encoding/json scanner grammar, max depth 10000).
pub fn go_json_valid(b: &[u8]) -> bool {
    const MAX_DEPTH: usize = 10000;
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    loop {
        // a value starts at i
        i = ws(i);
        let Some(&c) = b.get(i) else { return false };
        match c {
            b'{' | b'[' => {
                // Go counts every open container, empty ones included
                if stack.len() >= MAX_DEPTH {
                    return false;
                }
                i = ws(i + 1);
                let close = if c == b'{' { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    i += 1;
                } else {
                    stack.push(c);
                    if c == b'{' {
                        match object_key(b, i, ws) {
                            Some(j) => i = j,
                            None => return false,
                        }
                    }
                    continue;
                }
            }
            b'"' => match string_end(b, i) {
                Some(j) => i = j,
                None => return false,
            },
            b't' | b'f' | b'n' => {
                let lit: &[u8] = match c {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !b[i..].starts_with(lit) {
                    return false;
                }
                i += lit.len();
            }
            b'-' | b'0'..=b'9' => match number_end(b, i) {
                Some(j) => i = j,
                None => return false,
            },
            _ => return false,
        }
        // after a value: close containers, or find the next value
        loop {
            i = ws(i);
            match stack.last() {
                None => return i == b.len(),
                Some(&open) => match (open, b.get(i)) {
                    (b'{', Some(b',')) => match object_key(b, ws(i + 1), ws) {
                        Some(j) => {
                            i = j;
                            break;
                        }
                        None => return false,
                    },
                    (b'[', Some(b',')) => {
                        i += 1;
                        break;
                    }
                    (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return false,
                },
            }
        }
    }
}

/// `"key" :` at `i`; returns the index after the colon.
fn object_key(b: &[u8], i: usize, ws: impl Fn(usize) -> usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let j = ws(string_end(b, i)?);
    (b.get(j) == Some(&b':')).then_some(j + 1)
}

/// The index after the string starting at `i` (a `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => match *b.get(j + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                b'u' => {
                    let hex = b.get(j + 2..j + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    j += 6;
                }
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => j += 1,
        }
    }
}

/// The index after the number starting at `i`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i > s).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i)?,
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Some(i)
}

/// The result of replaying one scenario.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub id: String,
    pub file: String,
    pub name: String,
    pub passed: bool,
    /// Why it failed.
    pub reason: Option<String>,
    pub status: Option<u16>,
    /// The start of the response body (failures only).
    pub body_excerpt: Option<String>,
    /// Server start, request, stop.
    pub seconds: f64,
    /// False when the server did not start (nothing was sent).
    pub server_started: bool,
    /// The request timed out.
    pub timed_out: bool,
}

/// How scenarios are replayed.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The `Host` header; `None` = `127.0.0.1:<port>`. Default `example.com`.
    pub host: Option<String>,
    /// Limit for sending the request and reading the response (default
    /// 60 s, like `replay.py`).
    pub request_timeout: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            host: Some(DEFAULT_HOST.to_string()),
            request_timeout: crate::http::DEFAULT_TIMEOUT,
        }
    }
}

/// Replays `sc` against a fresh server of `spec` over a fresh copy of
/// `fixture`: start, one request, check, `delayMs` pause, stop.
pub fn run_scenario(
    spec: &ServerSpec,
    fixture: &Path,
    sc: &Scenario,
    opts: &ReplayOptions,
) -> Outcome {
    let t0 = Instant::now();
    let mut out = Outcome {
        id: sc.id.clone(),
        file: sc.file.clone(),
        name: sc.name.clone(),
        passed: false,
        reason: None,
        status: None,
        body_excerpt: None,
        seconds: 0.0,
        server_started: false,
        timed_out: false,
    };
    match Server::start(spec, Some(fixture)) {
        Err(e) => out.reason = Some(format!("server failed to start: {e}")),
        Ok(mut server) => {
            out.server_started = true;
            let req = sc
                .request(opts.host.as_deref(), server.port())
                .timeout(opts.request_timeout);
            match req.send(server.port()) {
                Ok(resp) => {
                    out.status = Some(resp.status);
                    match sc.check(resp.status, &resp.body) {
                        Ok(()) => out.passed = true,
                        Err(r) => {
                            out.reason = Some(r);
                            out.body_excerpt = Some(excerpt(&resp.body, 500));
                        }
                    }
                }
                Err(e) => {
                    out.timed_out = e.kind() == std::io::ErrorKind::TimedOut;
                    out.reason = Some(format!("request error: {e}"));
                }
            }
            if sc.delay_ms > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(sc.delay_ms / 1000.0));
            }
            server.stop();
        }
    }
    out.seconds = t0.elapsed().as_secs_f64();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_come_back_for_the_0_39_corpus() {
        assert_eq!(
            html_escape_json("{\"a<\":\"<b>&\\\"\u{2028}\u{2029}€\"}".as_bytes()),
            r#"{"a\u003c":"\u003cb\u003e\u0026\"\u2028\u2029€"}"#
                .as_bytes()
                .to_vec()
        );
    }

    #[test]
    fn compact_removes_whitespace_outside_strings_only() {
        let body = b" {\"a\" : [1, 2.5e3 ,\n\t\"x y\\\" z\"], \"b\":{ } }\n";
        assert_eq!(
            go_json_compact(body).unwrap(),
            b"{\"a\":[1,2.5e3,\"x y\\\" z\"],\"b\":{}}".to_vec()
        );
        // nothing re-escaped, number text kept
        assert_eq!(
            go_json_compact(b"[\"<&>\\u00e9\", 1.0E+2]").unwrap(),
            b"[\"<&>\\u00e9\",1.0E+2]".to_vec()
        );
    }

    #[test]
    fn invalid_json_is_not_compacted() {
        for b in [
            &b""[..],
            b" ",
            b"{\"a\":1}{}",
            b"[1,]",
            b"{\"a\" 1}",
            b"{,}",
            b"01",
            b"1.",
            b"-",
            b".5",
            b"NaN",
            b"tru",
            b"\"\x01\"",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"{\"a\":1",
            b"<html>",
            b"\xef\xbb\xbf{}",
        ] {
            assert_eq!(go_json_compact(b), None, "{:?}", String::from_utf8_lossy(b));
        }
        let deep = format!("{}{}", "[".repeat(10001), "]".repeat(10001));
        assert!(!go_json_valid(deep.as_bytes()));
        let ok = format!("{}{}", "[".repeat(10000), "]".repeat(10000));
        assert!(go_json_valid(ok.as_bytes()));
        for b in [
            &b"0"[..],
            b"-0.0e-0",
            b"\"\xff\"",
            b"null",
            b" [ ] ",
            b"{\"\":{\"\":[]}}",
        ] {
            assert!(go_json_valid(b), "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn header_keys_are_canonical() {
        assert_eq!(canonical_header_key("content-TYPE"), "Content-Type");
        assert_eq!(canonical_header_key("x-token"), "X-Token");
        assert_eq!(canonical_header_key("authorization"), "Authorization");
    }

    fn scenario(json: &str) -> Scenario {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn request_bytes_follow_the_corpus_rules() {
        let sc = scenario(
            r#"{"id":"x","file":"f","name":"n","method":"POST","url":"/api/a?b=%20",
                "headers":{"zeta":" 1 ","content-type":"text/plain","Alpha":"2"},
                "body":"{}","bodyKind":"json","expectedStatus":200}"#,
        );
        assert_eq!(
            String::from_utf8(sc.request(Some(DEFAULT_HOST), 1).head_bytes()).unwrap(),
            "POST /api/a?b=%20 HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n\
             Zeta: 1\r\nAlpha: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        let get =
            scenario(r#"{"id":"x","file":"f","name":"n","method":"GET","url":"/","headers":null}"#);
        assert_eq!(
            String::from_utf8(get.request(None, 8090).head_bytes()).unwrap(),
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:8090\r\nContent-Type: application/json\r\n\
             Connection: close\r\n\r\n"
        );
        let patch = scenario(r#"{"id":"x","file":"f","name":"n","method":"PATCH","url":"/"}"#);
        assert!(String::from_utf8(patch.request(None, 1).head_bytes())
            .unwrap()
            .contains("\r\nContent-Length: 0\r\n"));
        let zeros = scenario(
            r#"{"id":"x","file":"f","name":"n","method":"PUT","url":"/","bodyKind":"zeros","bodySize":5}"#,
        );
        let req = zeros.request(None, 1);
        assert_eq!(req.body, Body::Zeros(5));
        assert!(String::from_utf8(req.head_bytes())
            .unwrap()
            .contains("\r\nContent-Length: 5\r\n"));
    }

    #[test]
    fn check_applies_the_api_go_rules() {
        let sc = scenario(
            r#"{"id":"x","file":"f","name":"n","method":"GET","url":"/","expectedStatus":200,
                "expectedContent":["\"a\":1",{"base64":"AAE="}],"notExpectedContent":["secret"]}"#,
        );
        // valid JSON is compacted before matching
        assert_eq!(
            sc.check(200, b"{ \"a\" : 1 }"),
            Err("cannot find <base64 2 bytes> in body: {\"a\":1}".to_string())
        );
        // anything else is matched byte for byte as received
        assert!(sc.check(200, b"\"a\":1 \x00\x01").is_ok());
        assert!(sc.check(200, b"{ \"a\" : 1 } \x00\x01").is_err());
        let err = sc.check(404, b"\"a\":1 \x00\x01 secret").unwrap_err();
        assert!(
            err.starts_with("expected status 200, got 404; did not expect \"secret\""),
            "{err}"
        );
        let empty = scenario(
            r#"{"id":"x","file":"f","name":"n","method":"HEAD","url":"/","expectedStatus":204}"#,
        );
        assert!(empty.check(204, b"").is_ok());
        assert!(empty.check(204, b"{}").is_err());
    }
}

//! The size caps PocketBase 0.40 puts on a stored log: the message is cut at
//! [`MAX_MESSAGE`] bytes, and a `data` JSON longer than `logs.maxDataSize` (0 =
//! [`DEFAULT_MAX_DATA`]) keeps what can be decoded from its first `maxDataSize` bytes, plus
//! `"__pb_truncated__":true`.
//!
//! Decoding a cut JSON text the way PocketBase's (Go `encoding/json/v2`) decoder fills a map
//! from a broken stream: every key/value read before the cut stays; a key whose value was
//! cut is kept with `null`, except an object or array value, which keeps what it holds so
//! far; a key cut in its name is dropped. Everything here runs on the log thread, never on a
//! request worker, and costs one pass over at most `maxDataSize` bytes.

use serde_json::{Map, Number, Value};

/// Longest stored message, in bytes (PocketBase: 8,000).
pub const MAX_MESSAGE: usize = 8000;
/// `logs.maxDataSize` when it is 0: 16 KiB, as in PocketBase.
pub const DEFAULT_MAX_DATA: usize = 16 << 10;

/// The message cut to [`MAX_MESSAGE`] bytes. PocketBase cuts the raw bytes (possibly inside
/// a character); we cut at the last character boundary before it, so the text stays UTF-8.
pub fn message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// `data` (a JSON object's text) fitted to `max_data_size` bytes (`logs.maxDataSize`, 0 =
/// the default): unchanged when it fits, else the decodable part of its first
/// `max_data_size` bytes with `"__pb_truncated__":true`, re-encoded with sorted keys.
pub fn data(data: String, max_data_size: i64) -> String {
    let limit = match usize::try_from(max_data_size) {
        Ok(0) | Err(_) => DEFAULT_MAX_DATA,
        Ok(n) => n,
    };
    if data.len() <= limit {
        return data;
    }
    let mut p = Partial {
        s: &data.as_bytes()[..limit],
        i: 0,
    };
    p.ws();
    let mut out = Map::new();
    if p.eat(b'{') {
        p.object_into(&mut out);
    }
    out.insert("__pb_truncated__".into(), Value::Bool(true));
    let mut text = String::with_capacity(limit + 32);
    pocketbun_storage::collections::gojson::write_value(&mut text, &Value::Object(out));
    text
}

/// A cursor over a cut JSON text. Each `value` returns `None` when the text ends (or breaks)
/// inside it.
struct Partial<'a> {
    s: &'a [u8],
    i: usize,
}

/// Deepest nesting followed; deeper values become `null` (a log's data is a few levels deep;
/// this keeps the recursion bounded whatever the input).
const MAX_DEPTH: usize = 64;

impl Partial<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Fills `out` with the members of an object whose `{` was read; returns whether the
    /// object ended before the cut.
    fn object_into(&mut self, out: &mut Map<String, Value>) -> bool {
        self.object_at(out, 0)
    }

    fn object_at(&mut self, out: &mut Map<String, Value>, depth: usize) -> bool {
        if self.eat(b'}') {
            return true;
        }
        loop {
            self.ws();
            let Some(key) = self.string() else {
                return false;
            };
            if !self.eat(b':') {
                out.insert(key, Value::Null);
                return false;
            }
            let (value, complete) = self.value(depth + 1);
            out.insert(key, value);
            if !complete {
                return false;
            }
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}');
        }
    }

    /// A value and whether it was read whole.
    fn value(&mut self, depth: usize) -> (Value, bool) {
        self.ws();
        if depth > MAX_DEPTH {
            return (Value::Null, false);
        }
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                let complete = self.object_at(&mut m, depth);
                (Value::Object(m), complete)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return (Value::Array(items), true);
                }
                loop {
                    let (v, complete) = self.value(depth + 1);
                    if !complete {
                        // a cut scalar is dropped from a list; a cut container keeps its part
                        if matches!(v, Value::Object(_) | Value::Array(_)) {
                            items.push(v);
                        }
                        return (Value::Array(items), false);
                    }
                    items.push(v);
                    if self.eat(b',') {
                        continue;
                    }
                    let closed = self.eat(b']');
                    return (Value::Array(items), closed);
                }
            }
            Some(b'"') => match self.string() {
                Some(s) => (Value::String(s), true),
                None => (Value::Null, false),
            },
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(_) => self.number(),
            None => (Value::Null, false),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> (Value, bool) {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            (v, true)
        } else {
            (Value::Null, false)
        }
    }

    /// A number runs to the first byte that cannot continue it; the end of the text ends it
    /// too (a cut `1.17` of `1.179` reads as `1.17`, as a streaming decoder reads it).
    fn number(&mut self) -> (Value, bool) {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) if !text.is_empty() => (Value::Number(n), true),
            _ => (Value::Null, false),
        }
    }

    /// A whole string literal (with its escapes decoded), or `None` when the text ends or
    /// breaks inside it.
    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i;
        let mut j = self.i + 1;
        while j < self.s.len() {
            match self.s[j] {
                b'\\' => j += 2,
                b'"' => {
                    let lit = std::str::from_utf8(&self.s[start..=j]).ok()?;
                    let decoded: String = serde_json::from_str(lit).ok()?;
                    self.i = j + 1;
                    return Some(decoded);
                }
                _ => j += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = r#"{"auth":"","details":"sql: no rows in result set","error":"Missing collection context.","execTime":0.049943,"method":"GET","referer":"","status":404,"type":"request","url":"/api/collections/nope/records?q=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","userAgent":"curl/7.88.1"}"#;
    const INVALID: &str = r#"{"auth":"_superusers","details":{"email":"must be a valid email address","url":"must be a valid url"},"error":"Failed to create record.","execTime":1.5,"method":"POST"}"#;

    // The expected texts are what PocketBase 0.40.6 stored for these data and limits.
    #[test]
    fn cut_like_pocketbase() {
        assert_eq!(data(REQUEST.into(), 10_000), REQUEST);
        assert_eq!(
            data(REQUEST.into(), 200),
            r#"{"__pb_truncated__":true,"auth":"","details":"sql: no rows in result set","error":"Missing collection context.","execTime":0.049943,"method":"GET","referer":"","status":404,"type":"request","url":null}"#
        );
        let cases = [
            (
                85,
                r#"{"__pb_truncated__":true,"auth":"_superusers","details":{"email":"must be a valid email address","url":null}}"#,
            ),
            (
                75,
                r#"{"__pb_truncated__":true,"auth":"_superusers","details":{"email":"must be a valid email address"}}"#,
            ),
            (
                43,
                r#"{"__pb_truncated__":true,"auth":"_superusers","details":{"email":null}}"#,
            ),
            (
                34,
                r#"{"__pb_truncated__":true,"auth":"_superusers","details":{}}"#,
            ),
        ];
        for (limit, want) in cases {
            assert_eq!(data(INVALID.into(), limit), want, "limit {limit}");
        }
    }

    #[test]
    fn default_limit_and_odd_cuts() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(DEFAULT_MAX_DATA));
        assert_eq!(
            data(big.clone(), 0),
            r#"{"__pb_truncated__":true,"a":null}"#
        );
        assert_eq!(data(big, -5), r#"{"__pb_truncated__":true,"a":null}"#);
        // cut inside a multi-byte character, an escape, a literal, a list
        assert_eq!(
            data(r#"{"a":"é","b":"\u00e9\n"}"#.into(), 7),
            r#"{"__pb_truncated__":true,"a":null}"#
        );
        assert_eq!(
            data(r#"{"a":"é","b":"\u00"}"#.into(), 18),
            r#"{"__pb_truncated__":true,"a":"é","b":null}"#
        );
        assert_eq!(
            data(r#"{"a":true,"b":false}"#.into(), 17),
            r#"{"__pb_truncated__":true,"a":true,"b":null}"#
        );
        assert_eq!(
            data(r#"{"a":[1,2,{"c":3}],"b":1}"#.into(), 14),
            r#"{"__pb_truncated__":true,"a":[1,2,{"c":null}]}"#
        );
        // a deep nest is followed only so far
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let cut = data(deep.clone(), (deep.len() - 1) as i64);
        assert!(
            cut.starts_with(r#"{"__pb_truncated__":true,"a":[[["#),
            "{cut}"
        );
    }

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        assert_eq!(message("short".into()), "short");
        let m = message("a".repeat(MAX_MESSAGE + 10));
        assert_eq!(m.len(), MAX_MESSAGE);
        let m = message(format!("{}é", "a".repeat(MAX_MESSAGE - 1)));
        assert_eq!(m.len(), MAX_MESSAGE - 1);
    }
}

//! A JSON writer that produces exactly the bytes PocketBase 0.40's Go encoder
//! (`encoding/json/v2`) produces: only `"`, `\\` and control characters escaped
//! (0.39's `encoding/json` also escaped `<`, `>`, `&`, U+2028 and U+2029; 0.40 writes
//! them raw, in API answers and in what it stores), float64 formatting like Go
//! (`1e+21`, `1e-7`), and map keys sorted byte-wise.

use serde_json::Value;

/// Appends `s` as a Go-encoded JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // bytes that need escaping: controls, `"`, `\\`; everything else is copied in runs
    const SPECIAL: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 0x20 {
            t[i] = true;
            i += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            _ => None,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let v = u32::from(b);
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((v >> shift) & 0xf) as usize] as char);
                }
            }
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a float64 the way Go's `encoding/json` formats it.
pub fn write_f64(out: &mut String, f: f64) {
    use std::fmt::Write;
    if !f.is_finite() {
        // Go refuses to encode these; null is the closest safe output
        out.push_str("null");
        return;
    }
    let abs = f.abs();
    // whole numbers below 2^53 (counts, ids, most stored numbers): plain digits, as both
    // Go and the general path below print them, without the float formatter
    if f != 0.0 && abs < 9_007_199_254_740_992.0 && f.fract() == 0.0 {
        write_i64(out, f as i64);
        return;
    }
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mant);
        out.push('e');
        if let Some(neg) = exp.strip_prefix('-') {
            out.push('-');
            out.push_str(neg);
        } else {
            out.push('+');
            out.push_str(exp);
        }
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Appends an integer.
pub fn write_i64(out: &mut String, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push('-');
    }
    // ASCII digits only
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends `true`/`false`.
pub fn write_bool(out: &mut String, v: bool) {
    out.push_str(if v { "true" } else { "false" });
}

/// Appends an optional string (`null` for `None`).
pub fn write_opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => write_str(out, s),
        None => out.push_str("null"),
    }
}

/// Appends a Go `[]string` (`[]` for a nil slice, as 0.40 writes it).
pub fn write_str_list(out: &mut String, v: Option<&[String]>) {
    match v {
        // PocketBase 0.40 (`encoding/json/v2`) writes a nil slice as `[]` (0.39: `null`)
        None => out.push_str("[]"),
        Some(items) => {
            out.push('[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, s);
            }
            out.push(']');
        }
    }
}

/// Appends a decoded-then-reencoded `any` value the way Go would: numbers
/// as float64, object keys sorted.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => write_bool(out, *b),
        Value::Number(n) => write_f64(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, &map[k]);
            }
            out.push('}');
        }
    }
}

/// Builds a JSON object key by key (keys written in call order).
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens `{`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    /// Writes `"key":` and returns the buffer for the value.
    pub fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(':');
        self.out
    }

    /// `"key":"value"`.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        write_str(self.key(k), v);
        self
    }

    /// `"key":"value"` or `"key":null`.
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        write_opt_str(self.key(k), v);
        self
    }

    /// `"key":true|false`.
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        write_bool(self.key(k), v);
        self
    }

    /// `"key":123`.
    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        write_i64(self.key(k), v);
        self
    }

    /// `"key":1.5` (Go float64 format).
    pub fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        write_f64(self.key(k), v);
        self
    }

    /// `"key":[..]` or `"key":null`.
    pub fn str_list(&mut self, k: &str, v: Option<&[String]>) -> &mut Self {
        write_str_list(self.key(k), v);
        self
    }

    /// `"key":<raw JSON>`.
    pub fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k).push_str(json);
        self
    }

    /// Closes `}`.
    pub fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, v);
        s
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-0.5), "-0.5");
        assert_eq!(f(5242880.0), "5242880");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(0.0000001), "1e-7");
        assert_eq!(f(1.5e-10), "1.5e-10");
        assert_eq!(f(123456789e30), "1.23456789e+38");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(-42.0), "-42");
        assert_eq!(f(9007199254740991.0), "9007199254740991");
        assert_eq!(f(9007199254740992.0), "9007199254740992");
        assert_eq!(f(1e15 + 0.5), "1000000000000000.5");
    }

    #[test]
    fn integers() {
        for v in [0, 7, -7, 10, 1234567890, i64::MAX, i64::MIN] {
            let mut s = String::new();
            write_i64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn strings_like_go() {
        let mut s = String::new();
        write_str(&mut s, "<p>a & \"b\"\\\n\t\u{1}\u{2028}é</p>");
        assert_eq!(s, "\"<p>a & \\\"b\\\"\\\\\\n\\t\\u0001\u{2028}é</p>\"");
        // U+2029 and the other characters starting with byte 0xE2 pass through
        let mut s = String::new();
        write_str(&mut s, "€\u{2029}\u{2027}\u{8}\u{c}x\u{e2}");
        assert_eq!(s, "\"€\u{2029}\u{2027}\\b\\fx\u{e2}\"");
    }
}

//! Decoding helpers that follow Go's `json.Unmarshal` into an existing
//! struct: a missing key (or `null` for a non-pointer) leaves the current
//! value, keys match exactly first and then case-insensitively, and a value
//! of the wrong JSON type is an error.

use std::fmt;

use serde_json::{Map, Value};

/// A payload or stored row that cannot be decoded into the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Looks `key` up like Go does (exact, then ASCII case-insensitive).
pub fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn mismatch(key: &str, want: &str, got: &Value) -> DecodeError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    DecodeError::new(format!(
        "json: cannot unmarshal {kind} into field {key} of type {want}"
    ))
}

/// The string at `key` (`None` when missing or null).
pub fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, DecodeError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(mismatch(key, "string", v)),
    }
}

/// Overwrites `dst` with the string at `key`, if present.
pub fn set_string(
    obj: &Map<String, Value>,
    key: &str,
    dst: &mut String,
) -> Result<(), DecodeError> {
    if let Some(s) = string(obj, key)? {
        *dst = s;
    }
    Ok(())
}

/// Overwrites `dst` with the datetime string at `key`, normalised to
/// PocketBase's `YYYY-MM-DD HH:MM:SS.mmmZ` when it parses as one.
pub fn set_datetime(
    obj: &Map<String, Value>,
    key: &str,
    dst: &mut String,
) -> Result<(), DecodeError> {
    if let Some(s) = string(obj, key)? {
        *dst = normalize_datetime(&s).unwrap_or(s);
    }
    Ok(())
}

/// `*string`: `null` sets `None`, a string sets `Some`.
pub fn set_opt_string(
    obj: &Map<String, Value>,
    key: &str,
    dst: &mut Option<String>,
) -> Result<(), DecodeError> {
    match get(obj, key) {
        None => {}
        Some(Value::Null) => *dst = None,
        Some(Value::String(s)) => *dst = Some(s.clone()),
        Some(v) => return Err(mismatch(key, "string", v)),
    }
    Ok(())
}

/// Overwrites `dst` with the bool at `key`, if present.
pub fn set_bool(obj: &Map<String, Value>, key: &str, dst: &mut bool) -> Result<(), DecodeError> {
    match get(obj, key) {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => *dst = *b,
        Some(v) => return Err(mismatch(key, "bool", v)),
    }
    Ok(())
}

/// Overwrites `dst` with the integer at `key`, if present.
pub fn set_int(obj: &Map<String, Value>, key: &str, dst: &mut i64) -> Result<(), DecodeError> {
    match get(obj, key) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => {
            *dst = n
                .as_i64()
                .ok_or_else(|| mismatch(key, "int", &Value::Number(n.clone())))?
        }
        Some(v) => return Err(mismatch(key, "int", v)),
    }
    Ok(())
}

/// `*float64`: `null` sets `None`.
pub fn set_opt_f64(
    obj: &Map<String, Value>,
    key: &str,
    dst: &mut Option<f64>,
) -> Result<(), DecodeError> {
    match get(obj, key) {
        None => {}
        Some(Value::Null) => *dst = None,
        Some(Value::Number(n)) => *dst = n.as_f64(),
        Some(v) => return Err(mismatch(key, "float64", v)),
    }
    Ok(())
}

/// `[]string`: `null` sets `None` (a nil slice).
pub fn set_str_list(
    obj: &Map<String, Value>,
    key: &str,
    dst: &mut Option<Vec<String>>,
) -> Result<(), DecodeError> {
    match get(obj, key) {
        None => {}
        Some(Value::Null) => *dst = None,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => return Err(mismatch(key, "string", other)),
                }
            }
            *dst = Some(out);
        }
        Some(v) => return Err(mismatch(key, "[]string", v)),
    }
    Ok(())
}

/// The object at `key` (`None` when missing or null).
pub fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, DecodeError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(mismatch(key, "object", v)),
    }
}

/// Whether `b` is exactly `YYYY-MM-DD HH:MM:SS.mmmZ` with fields in range.
fn canonical_datetime(b: &[u8]) -> bool {
    const SHAPE: &[u8; 24] = b"0000-00-00 00:00:00.000Z";
    let shaped = b.iter().zip(SHAPE).all(|(&c, &want)| {
        if want == b'0' {
            c.is_ascii_digit()
        } else {
            c == want
        }
    });
    if !shaped {
        return false;
    }
    let num = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    (1..=12).contains(&num(5))
        && (1..=31).contains(&num(8))
        && num(11) <= 23
        && num(14) <= 59
        && num(17) <= 59
}

/// Normalises the datetime layouts PocketBase accepts to
/// `YYYY-MM-DD HH:MM:SS.mmmZ`; `""` stays `""`; `None` if unparseable.
pub fn normalize_datetime(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return Some(String::new());
    }
    let b = s.as_bytes();
    // already canonical (what every stored datetime is): no parsing and reformatting
    if b.len() == 24 && canonical_datetime(b) {
        return Some(s.to_string());
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (mut h, mut mi, mut sec, mut ms) = (0, 0, 0, 0);
    let rest = &s[10..];
    if !rest.is_empty() {
        let rb = rest.as_bytes();
        if rb.len() < 9 || (rb[0] != b' ' && rb[0] != b'T') || rb[3] != b':' || rb[6] != b':' {
            return None;
        }
        h = digits(11..13)?;
        mi = digits(14..16)?;
        sec = digits(17..19)?;
        let mut tail = &s[19..];
        if let Some(frac) = tail.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            let mut f = frac[..n].to_string();
            f.truncate(3);
            while f.len() < 3 {
                f.push('0');
            }
            ms = f.parse().ok()?;
            tail = &frac[n..];
        }
        if !(tail.is_empty() || tail == "Z" || tail == "+00:00") {
            return None;
        }
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    Some(format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}.{ms:03}Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(normalize_datetime("").as_deref(), Some(""));
        assert_eq!(
            normalize_datetime("2022-01-02").as_deref(),
            Some("2022-01-02 00:00:00.000Z")
        );
        assert_eq!(
            normalize_datetime("2022-01-02T03:04:05.6Z").as_deref(),
            Some("2022-01-02 03:04:05.600Z")
        );
        assert_eq!(
            normalize_datetime("2022-01-02 03:04:05.123456Z").as_deref(),
            Some("2022-01-02 03:04:05.123Z")
        );
        assert_eq!(normalize_datetime("nope"), None);
        // the canonical form passes through; out-of-range fields are still rejected
        assert_eq!(
            normalize_datetime("2024-02-29 23:59:59.999Z").as_deref(),
            Some("2024-02-29 23:59:59.999Z")
        );
        assert_eq!(normalize_datetime("2024-13-01 00:00:00.000Z"), None);
        assert_eq!(normalize_datetime("2024-01-01 24:00:00.000Z"), None);
    }
}

//! Stored values → PocketBase's typed field values, written as Go's `encoding/json` writes
//! them (no HTML escaping since PocketBase 0.40, float64 numbers).

use super::{SqlRef, SqlVal};
use pocketbun_storage::collections::gojson;
use pocketbun_storage::collections::json::normalize_datetime;
use pocketbun_storage::collections::{Field, FieldKind};

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`-like text of a REAL column value.
pub fn go_float_string(f: f64) -> String {
    let mut s = String::new();
    gojson::write_f64(&mut s, f);
    s
}

/// `cast.ToFloat64` of a stored value.
pub fn to_f64(v: &SqlVal) -> f64 {
    ref_to_f64(v.borrow())
}

fn ref_to_f64(v: SqlRef<'_>) -> f64 {
    match v {
        SqlRef::Null => 0.0,
        SqlRef::Int(i) => i as f64,
        SqlRef::Real(f) => f,
        SqlRef::Text(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .unwrap_or(0.0),
    }
}

/// `cast.ToBool` of a stored value (Go's `strconv.ParseBool` on its text).
pub fn to_bool(v: &SqlVal) -> bool {
    ref_to_bool(v.borrow())
}

pub fn ref_to_bool(v: SqlRef<'_>) -> bool {
    match v {
        SqlRef::Null => false,
        SqlRef::Int(i) => i == 1,
        SqlRef::Real(f) => f == 1.0,
        SqlRef::Text(s) => matches!(s, "1" | "t" | "T" | "true" | "TRUE" | "True"),
    }
}

/// `list.ToUniqueStringSlice` of a stored value: a JSON array of strings or a single value,
/// empty strings and duplicates dropped.
pub fn to_string_list(v: &SqlVal) -> Vec<String> {
    ref_to_string_list(v.borrow())
}

fn ref_to_string_list(v: SqlRef<'_>) -> Vec<String> {
    let text = v.as_text();
    if text.is_empty() {
        return Vec::new();
    }
    let raw: Vec<String> = if text.contains('[') {
        serde_json::from_str::<Vec<String>>(&text).unwrap_or_else(|_| vec![text.to_string()])
    } else {
        vec![text.to_string()]
    };
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for s in raw {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The relation ids a record points to through `field` (single or multiple).
pub fn relation_ids(field: &Field, v: &SqlVal) -> Vec<String> {
    let mut ids = to_string_list(v);
    if !field.is_multiple() && ids.len() > 1 {
        ids = ids.split_off(ids.len() - 1);
    }
    ids
}

/// Writes the API JSON of `field`'s value `v` into `out`.
pub fn write_field(out: &mut String, field: &Field, v: SqlRef<'_>) {
    match &field.kind {
        FieldKind::Number { .. } => gojson::write_f64(out, ref_to_f64(v)),
        FieldKind::Bool => gojson::write_bool(out, ref_to_bool(v)),
        FieldKind::Date { .. } | FieldKind::Autodate { .. } => {
            let text = v.as_text();
            let norm = normalize_datetime(&text).unwrap_or_default();
            gojson::write_str(out, &norm);
        }
        FieldKind::Select { .. } | FieldKind::File { .. } | FieldKind::Relation { .. } => {
            let list = ref_to_string_list(v);
            if field.is_multiple() {
                gojson::write_str_list(out, Some(&list));
            } else {
                gojson::write_str(out, list.last().map_or("", String::as_str));
            }
        }
        FieldKind::Json { .. } => write_json_field(out, v),
        FieldKind::GeoPoint => write_geo_point(out, v),
        FieldKind::Password { .. } => gojson::write_str(out, ""),
        FieldKind::Text { .. }
        | FieldKind::Email { .. }
        | FieldKind::Url { .. }
        | FieldKind::Editor { .. } => gojson::write_str(out, &v.as_text()),
    }
}

fn is_valid_json(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

/// A `json` field: the stored text normalised as PocketBase's field does (bare words become
/// strings), then compacted and HTML-escaped as Go's encoder does with raw JSON.
fn write_json_field(out: &mut String, v: SqlRef<'_>) {
    let text = match v {
        SqlRef::Null => {
            out.push_str("null");
            return;
        }
        other => other.as_text(),
    };
    let s: &str = &text;
    let raw = if s.is_empty() {
        None
    } else if s == "null" || s == "true" || s == "false" {
        Some(s)
    } else {
        let b = s.as_bytes()[0];
        if (b.is_ascii_digit() || matches!(b, b'-' | b'"' | b'[' | b'{')) && is_valid_json(s) {
            Some(s)
        } else {
            None
        }
    };
    match raw {
        Some(r) => write_compact(out, r),
        None => gojson::write_str(out, s),
    }
}

/// A stored JSON text (already checked valid) as PocketBase 0.40 serves it: Go's
/// `encoding/json/v2` reformats a raw value, so whitespace outside strings is dropped and
/// every string is written again in its canonical form. Numbers, key order and duplicate
/// keys stay as stored. A string without escapes is copied as it is; one with escapes
/// (`\u003c`, `\u0026`, `\/`, `\u00e9`... as PocketBase 0.39 and other writers store them)
/// is decoded and re-escaped, so `"\u003cb\u003e"` is served as `"<b>"`, a lone surrogate
/// as U+FFFD.
pub fn write_compact(out: &mut String, raw: &str) {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                let mut escapes = false;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        escapes = true;
                        j += 1;
                    }
                    j += 1;
                }
                let end = j.min(b.len());
                let body = raw.get(start..end).unwrap_or("");
                if escapes {
                    gojson::write_str(out, &unescape(body));
                } else {
                    out.push('"');
                    out.push_str(body);
                    out.push('"');
                }
                i = end + 1;
            }
            _ => {
                // a run of punctuation, numbers and literals (ASCII in valid JSON)
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'"') {
                    i += 1;
                }
                out.push_str(raw.get(start..i).unwrap_or(""));
            }
        }
    }
}

/// The text of a JSON string's body (between its quotes): escapes decoded, UTF-16 surrogate
/// pairs joined, and a lone surrogate replaced by U+FFFD, as Go does.
fn unescape(body: &str) -> String {
    let b = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let hex4 = |at: usize| -> Option<u32> {
        let h = body.get(at..at + 4)?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(h, 16).ok()
    };
    let mut i = 0;
    let mut run = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&body[run..i]);
        let Some(&e) = b.get(i + 1) else {
            break;
        };
        i += 2;
        match e {
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let Some(u) = hex4(i) else {
                    break;
                };
                i += 4;
                let c = if (0xD800..0xDC00).contains(&u) {
                    // a high surrogate: joined with a low one right after it, else U+FFFD
                    match (b.get(i..i + 2), hex4(i + 2)) {
                        (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                            i += 6;
                            char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                        }
                        _ => None,
                    }
                } else {
                    char::from_u32(u)
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            // `"`, `\` and `/` stand for themselves
            other => out.push(other as char),
        }
        run = i;
    }
    out.push_str(body.get(run..).unwrap_or(""));
    out
}

fn write_geo_point(out: &mut String, v: SqlRef<'_>) {
    let (mut lon, mut lat) = (0.0, 0.0);
    if let SqlRef::Text(s) = v {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(s) {
            lon = m.get("lon").and_then(|x| x.as_f64()).unwrap_or(0.0);
            lat = m.get("lat").and_then(|x| x.as_f64()).unwrap_or(0.0);
        }
    }
    out.push_str("{\"lon\":");
    gojson::write_f64(out, lon);
    out.push_str(",\"lat\":");
    gojson::write_f64(out, lat);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(kind: &str, v: SqlVal) -> String {
        let f = Field::new("x", FieldKind::zero(kind).unwrap());
        let mut s = String::new();
        write_field(&mut s, &f, v.borrow());
        s
    }

    #[test]
    fn json_field_normalisation() {
        let t = |s: &str| json_of("json", SqlVal::Text(s.into()));
        assert_eq!(t("{ \"b\": 1, \"a\": \"<x>\" }"), "{\"b\":1,\"a\":\"<x>\"}");
        assert_eq!(t(""), "\"\"");
        assert_eq!(t("abc"), "\"abc\"");
        assert_eq!(t("1.50"), "1.50");
        assert_eq!(t("[1,2"), "\"[1,2\"");
        assert_eq!(json_of("json", SqlVal::Null), "null");
        // strings come back in canonical form, as PocketBase 0.40 serves a raw value
        // (checked against 0.40.6 on a pb_data written by 0.39.11)
        assert_eq!(
            t(r#"{"h":"\u003cb\u003e\u0026amp;\u003c/b\u003e","s":"\u2028x"}"#),
            "{\"h\":\"<b>&amp;</b>\",\"s\":\"\u{2028}x\"}"
        );
        assert_eq!(
            t(r#"{"e":"\u00e9\/\u0041\t\u001f\b\f\"\\\ud83d\ude00","n":[1.0,1e2,-0,1E+2]}"#),
            "{\"e\":\"\u{e9}/A\\t\\u001f\\b\\f\\\"\\\\\u{1f600}\",\"n\":[1.0,1e2,-0,1E+2]}"
        );
        assert_eq!(
            t(r#"["\u0026", "\ud800", "\ud800x", "\udc00\u0041"]"#),
            "[\"&\",\"\u{fffd}\",\"\u{fffd}x\",\"\u{fffd}A\"]"
        );
        assert_eq!(t(r#"{"d":1, "d":2}"#), r#"{"d":1,"d":2}"#);
        assert_eq!(t(r#""\u003cx\u003e""#), "\"<x>\"");
    }

    #[test]
    fn scalars() {
        assert_eq!(json_of("number", SqlVal::Int(123456)), "123456");
        assert_eq!(json_of("number", SqlVal::Text("abc".into())), "0");
        assert_eq!(json_of("bool", SqlVal::Int(1)), "true");
        assert_eq!(json_of("bool", SqlVal::Int(2)), "false");
        assert_eq!(
            json_of("select", SqlVal::Text("[\"a\",\"b\"]".into())),
            "\"b\""
        );
        assert_eq!(json_of("geoPoint", SqlVal::Null), "{\"lon\":0,\"lat\":0}");
        assert_eq!(
            json_of("date", SqlVal::Text("2022-01-02T03:04:05Z".into())),
            "\"2022-01-02 03:04:05.000Z\""
        );
    }
}

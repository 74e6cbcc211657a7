//! Stored values → PocketBase's typed field values, written as Go's `encoding/json` writes
//! them (HTML-safe strings, float64 numbers).

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

/// Compacts a stored JSON text (whitespace outside strings dropped; strings kept as they
/// are, with no HTML escaping since PocketBase 0.40).
pub fn write_compact(out: &mut String, raw: &str) {
    let mut in_str = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_str {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_str = false;
                    out.push(c);
                }
                _ => out.push(c),
            }
        } else {
            match c {
                ' ' | '\t' | '\n' | '\r' => {}
                '"' => {
                    in_str = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
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

//! JSON request bodies read as PocketBase 0.40 reads them (Go `encoding/json/v2`): a
//! duplicate object key anywhere in the value, or invalid UTF-8, is a syntax error (0.39
//! kept the last duplicate). Like PocketBase, only the first JSON value of a body is read;
//! bytes after it are ignored.
//!
//! A `serde_json` visitor builds the usual `serde_json::Value` and refuses a key it has
//! already seen in the same object: one map entry per key (a duplicate found or the slot
//! filled), so the cost stays O(n log n) in the body. (`serde_json` itself already refuses
//! invalid UTF-8 in `from_slice`.)

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The first JSON value of `bytes`. `None` when there is nothing but whitespace; `Some(Err)`
/// when the value is malformed, holds a duplicate key or invalid UTF-8.
pub fn first_value(bytes: &[u8]) -> Option<Result<Value, serde_json::Error>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Some(Strict.deserialize(&mut de))
}

/// The JSON document `bytes` (whitespace around it allowed, nothing else), strictly.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Whether `text` is one valid JSON document with no duplicate keys.
pub fn is_valid(text: &str) -> bool {
    from_slice(text.as_bytes()).is_ok()
}

/// Deserializes a `serde_json::Value`, refusing duplicate keys.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(Strict)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // `Map` is a BTreeMap here: its own entry finds a duplicate in O(log n), before the
        // value is parsed, as a separate set of the keys did (that set's hashing and key
        // copies cost ~3.8k of the ~11.7k instructions a 7-key create body took, callgrind)
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                serde_json::map::Entry::Occupied(seen) => {
                    let key = seen.key();
                    return Err(de::Error::custom(format_args!(
                        "duplicate object key {key:?}"
                    )));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(Strict)?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_anywhere_are_refused() {
        assert!(is_valid(r#"{"a":1,"b":{"a":2},"c":[{"a":1},{"a":1}]}"#));
        assert!(!is_valid(r#"{"a":1,"a":1}"#));
        assert!(!is_valid(r#"{"x":[{"k":1,"k":2}]}"#));
        assert!(!is_valid(r#"{"x":{"y":{"z":1,"z":1}}}"#));
        // escapes are decoded before comparing, as Go does
        assert!(!is_valid(r#"{"a":1,"\u0061":2}"#));
    }

    #[test]
    fn first_value_only_and_utf8() {
        assert!(first_value(b"  \n").is_none());
        let v = first_value(br#"{"a":1} trailing junk"#).unwrap().unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
        assert!(first_value(b"{\"a\":\"\xff\"}").unwrap().is_err());
        assert!(first_value(br#"{"a":1,"a":2} "#).unwrap().is_err());
        assert!(from_slice(br#"{"a":1} x"#).is_err());
        assert_eq!(
            from_slice(br#" [1.5, -2, 18446744073709551615, null, true, "s"] "#).unwrap(),
            serde_json::json!([1.5, -2, 18446744073709551615u64, null, true, "s"])
        );
    }
}

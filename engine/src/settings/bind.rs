//! Applying a JSON document onto existing values the way PocketBase's JSON decoding does:
//! objects merge into the current struct field by field (keys match exactly first, then
//! case-insensitively; unknown keys are ignored), `null` sets the zero value (an empty string,
//! `false`, 0, an empty list, a struct of zero values: PocketBase 0.40's `encoding/json/v2`;
//! 0.39 left scalars and structs as they were), a list is replaced but its i-th object merges
//! into the current i-th element, and a value of the wrong type fails the whole bind.

use serde_json::{Map, Value};

/// The submitted JSON does not fit the target (wrong type, non-integer number, overflow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError(pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindError {}

pub type BindResult = Result<(), BindError>;

/// A value that a JSON document can be applied onto.
pub trait Bind {
    fn bind(&mut self, value: &Value) -> BindResult;
}

fn mismatch(want: &str, got: &Value) -> BindError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    BindError(format!("cannot bind a JSON {kind} to {want}"))
}

impl Bind for String {
    fn bind(&mut self, value: &Value) -> BindResult {
        match value {
            Value::Null => {
                self.clear();
                Ok(())
            }
            Value::String(s) => {
                self.clone_from(s);
                Ok(())
            }
            other => Err(mismatch("a string", other)),
        }
    }
}

impl Bind for bool {
    fn bind(&mut self, value: &Value) -> BindResult {
        match value {
            Value::Null => {
                *self = false;
                Ok(())
            }
            Value::Bool(b) => {
                *self = *b;
                Ok(())
            }
            other => Err(mismatch("a bool", other)),
        }
    }
}

impl Bind for i64 {
    fn bind(&mut self, value: &Value) -> BindResult {
        match value {
            Value::Null => {
                *self = 0;
                Ok(())
            }
            // only integer literals fit an integer field (no fractions, no exponents)
            Value::Number(n) => match n.as_i64() {
                Some(i) => {
                    *self = i;
                    Ok(())
                }
                None => Err(BindError(format!(
                    "cannot bind the number {n} to an integer"
                ))),
            },
            other => Err(mismatch("an integer", other)),
        }
    }
}

impl<T: Bind + Default> Bind for Vec<T> {
    fn bind(&mut self, value: &Value) -> BindResult {
        match value {
            Value::Null => {
                self.clear();
                Ok(())
            }
            Value::Array(items) => {
                // existing elements are decoded into (merged), new ones start from zero values
                self.truncate(items.len());
                for (i, item) in items.iter().enumerate() {
                    if i >= self.len() {
                        self.push(T::default());
                    }
                    self[i].bind(item)?;
                }
                Ok(())
            }
            other => Err(mismatch("a list", other)),
        }
    }
}

/// Binds the object `value` onto a struct whose fields are listed as `(json name, binder)`
/// (a `null` is handled by the caller: [`bind_fields!`] resets the struct).
pub fn bind_struct(
    value: &Value,
    fields: &mut [(&'static str, &mut dyn Bind)],
) -> Result<(), BindError> {
    let obj: &Map<String, Value> = match value {
        Value::Null => return Ok(()),
        Value::Object(obj) => obj,
        other => return Err(mismatch("an object", other)),
    };
    for (key, item) in obj {
        let idx = fields
            .iter()
            .position(|(name, _)| *name == key)
            .or_else(|| {
                fields
                    .iter()
                    .position(|(name, _)| name.eq_ignore_ascii_case(key))
            });
        if let Some(i) = idx {
            fields[i].1.bind(item)?;
        }
    }
    Ok(())
}

/// Implements [`Bind`] for a struct from its JSON field names.
#[macro_export]
macro_rules! bind_fields {
    ($ty:ty { $($name:literal => $field:ident),* $(,)? }) => {
        impl $crate::settings::bind::Bind for $ty {
            fn bind(&mut self, value: &serde_json::Value) -> $crate::settings::bind::BindResult {
                if value.is_null() {
                    // PocketBase 0.40: `null` resets the whole object to its zero values
                    *self = <$ty as ::core::default::Default>::default();
                    return Ok(());
                }
                $crate::settings::bind::bind_struct(
                    value,
                    &mut [$(($name, &mut self.$field as &mut dyn $crate::settings::bind::Bind)),*],
                )
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Default, Debug, PartialEq)]
    struct Item {
        a: String,
        n: i64,
    }
    bind_fields!(Item { "a" => a, "n" => n });

    #[test]
    fn lists_merge_elements_in_place() {
        let mut v = vec![Item {
            a: "x".into(),
            n: 3,
        }];
        v.bind(&json!([{"a": "y"}, {"n": 2}])).unwrap();
        assert_eq!(
            v,
            vec![
                Item {
                    a: "y".into(),
                    n: 3
                },
                Item { a: "".into(), n: 2 }
            ]
        );
        v.bind(&Value::Null).unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn keys_fold_case_and_types_are_strict() {
        let mut it = Item::default();
        it.bind(&json!({"A": "up", "N": 5, "other": true})).unwrap();
        assert_eq!(it.a, "up");
        assert_eq!(it.n, 5);
        assert!(it.bind(&json!({"n": 1.5})).is_err());
        assert!(it.bind(&json!({"n": "1"})).is_err());
        assert!(it.bind(&json!({"a": null})).is_ok());
        assert_eq!(it.a, "");
        assert_eq!(it.n, 5);
        // a null object is the struct's zero value (PocketBase 0.40)
        assert!(it.bind(&Value::Null).is_ok());
        assert_eq!(it, Item::default());
    }
}

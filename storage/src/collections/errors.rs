//! Validation errors in the shape PocketBase's API returns them:
//! `{"name":{"code":"validation_required","message":"Cannot be blank."}}`,
//! nested for sub-objects and list items (`{"fields":{"2":{"name":{...}}}}`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::gojson;

/// One failed check.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Machine code (`validation_required`...).
    pub code: String,
    /// Human message, already in PocketBase's sentence form.
    pub message: String,
    /// Template parameters (`{"min":3}`), when the message has any.
    pub params: Option<serde_json::Map<String, Value>>,
}

impl FieldError {
    /// An error with `code` and `message` (made a sentence: capitalised,
    /// ending in a period, like PocketBase's API does).
    pub fn new(code: &str, message: &str) -> FieldError {
        FieldError {
            code: code.to_string(),
            message: sentenize(message),
            params: None,
        }
    }

    /// Adds a template parameter.
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> FieldError {
        self.params
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value.into());
        self
    }
}

/// Capitalises the first letter and ends with a period (unless it already
/// ends with punctuation).
pub fn sentenize(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return String::new();
    }
    let mut c = s.chars();
    let first = c.next().expect("non-empty");
    let mut out: String = first.to_uppercase().collect();
    out.push_str(c.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A node of the error tree.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorNode {
    /// A failed check.
    Leaf(FieldError),
    /// Errors of a sub-object or list (keys are field names or indexes).
    Nested(ValidationErrors),
}

/// Errors keyed by payload field; empty means valid.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidationErrors(pub BTreeMap<String, ErrorNode>);

impl ValidationErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records `err` at `key` (the first error per key wins).
    pub fn add(&mut self, key: impl Into<String>, err: FieldError) {
        self.0.entry(key.into()).or_insert(ErrorNode::Leaf(err));
    }

    /// Records nested errors at `key` (merged with earlier ones).
    pub fn add_nested(&mut self, key: impl Into<String>, errs: ValidationErrors) {
        if errs.is_empty() {
            return;
        }
        match self.0.entry(key.into()) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(ErrorNode::Nested(errs));
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if let ErrorNode::Nested(existing) = o.get_mut() {
                    for (k, v) in errs.0 {
                        existing.0.entry(k).or_insert(v);
                    }
                }
            }
        }
    }

    /// The error at a dotted path (`"fields.1.name"`), for tests and callers.
    pub fn get(&self, path: &str) -> Option<&ErrorNode> {
        let mut cur = self;
        let mut parts = path.split('.').peekable();
        while let Some(p) = parts.next() {
            let node = cur.0.get(p)?;
            if parts.peek().is_none() {
                return Some(node);
            }
            match node {
                ErrorNode::Nested(n) => cur = n,
                ErrorNode::Leaf(_) => return None,
            }
        }
        None
    }

    /// The code of the leaf at `path`.
    pub fn code(&self, path: &str) -> Option<&str> {
        match self.get(path)? {
            ErrorNode::Leaf(e) => Some(&e.code),
            ErrorNode::Nested(_) => None,
        }
    }

    /// Appends the `data` object of PocketBase's 400 response.
    pub fn write_json(&self, out: &mut String) {
        let mut o = gojson::Obj::new(out);
        for (k, node) in &self.0 {
            match node {
                ErrorNode::Leaf(e) => {
                    let out = o.key(k);
                    let mut eo = gojson::Obj::new(out);
                    eo.str("code", &e.code);
                    eo.str("message", &e.message);
                    if let Some(p) = &e.params {
                        gojson::write_value(eo.key("params"), &Value::Object(p.clone()));
                    }
                    eo.end();
                }
                ErrorNode::Nested(n) => n.write_json(o.key(k)),
            }
        }
        o.end();
    }

    /// The `data` object as a string.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }
}

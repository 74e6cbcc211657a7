//! Collection fields: every PocketBase v0.39 field type with its options,
//! decoded from and encoded to the JSON PocketBase stores in
//! `_collections.fields` (which is also what its API returns).

use std::convert::Infallible;

use serde_json::{Map, Value};

use super::gojson::{self, Obj};
use super::json::{self as pj, DecodeError};

/// Name of the primary key field.
pub const FIELD_ID: &str = "id";
/// Auth collections' password field.
pub const FIELD_PASSWORD: &str = "password";
/// Auth collections' token key field.
pub const FIELD_TOKEN_KEY: &str = "tokenKey";
/// Auth collections' email field.
pub const FIELD_EMAIL: &str = "email";
/// Auth collections' email visibility field.
pub const FIELD_EMAIL_VISIBILITY: &str = "emailVisibility";
/// Auth collections' verified field.
pub const FIELD_VERIFIED: &str = "verified";

/// One field of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Stable field id (columns are matched by it across renames).
    pub id: String,
    /// Field (and column) name.
    pub name: String,
    /// System fields cannot be renamed or deleted.
    pub system: bool,
    /// Hidden fields are left out of record API responses.
    pub hidden: bool,
    /// Shown in the dashboard's relation previews.
    pub presentable: bool,
    /// Help text (not stored for `autodate`).
    pub help: String,
    /// Non-empty value required (not stored for `autodate`).
    pub required: bool,
    /// Type and type-specific options.
    pub kind: FieldKind,
}

/// A field's type with its type-specific options, as PocketBase stores them.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// `text`.
    Text {
        /// Minimum length (0: none).
        min: i64,
        /// Maximum length (0: default 5000).
        max: i64,
        /// Regex the value must match.
        pattern: String,
        /// Pattern of auto-generated values for empty input.
        autogenerate_pattern: String,
        /// Whether this is the primary key (`id`).
        primary_key: bool,
    },
    /// `number`.
    Number {
        /// Minimum (`null`: none).
        min: Option<f64>,
        /// Maximum (`null`: none).
        max: Option<f64>,
        /// Only integers allowed.
        only_int: bool,
    },
    /// `bool`.
    Bool,
    /// `email`.
    Email {
        /// Rejected domains (`null` when unset).
        except_domains: Option<Vec<String>>,
        /// Allowed domains (`null` when unset).
        only_domains: Option<Vec<String>>,
    },
    /// `url`.
    Url {
        /// Rejected domains.
        except_domains: Option<Vec<String>>,
        /// Allowed domains.
        only_domains: Option<Vec<String>>,
    },
    /// `editor`.
    Editor {
        /// Maximum size in bytes (0: default).
        max_size: i64,
        /// Convert URLs to relative.
        convert_urls: bool,
    },
    /// `date`.
    Date {
        /// Minimum datetime (`""`: none).
        min: String,
        /// Maximum datetime (`""`: none).
        max: String,
    },
    /// `autodate`.
    Autodate {
        /// Set on create.
        on_create: bool,
        /// Set on update.
        on_update: bool,
    },
    /// `select`.
    Select {
        /// Allowed values.
        values: Option<Vec<String>>,
        /// Maximum number of selected values (>1: multiple).
        max_select: i64,
    },
    /// `json`.
    Json {
        /// Maximum size in bytes (0: default).
        max_size: i64,
    },
    /// `file`.
    File {
        /// Maximum size of one file in bytes (0: default).
        max_size: i64,
        /// Maximum number of files (>1: multiple).
        max_select: i64,
        /// Allowed MIME types.
        mime_types: Option<Vec<String>>,
        /// Thumb sizes.
        thumbs: Option<Vec<String>>,
        /// Files need a file token.
        protected: bool,
    },
    /// `relation`.
    Relation {
        /// Target collection id.
        collection_id: String,
        /// Delete this record when the target is deleted.
        cascade_delete: bool,
        /// Minimum number of relations.
        min_select: i64,
        /// Maximum number of relations (>1: multiple).
        max_select: i64,
    },
    /// `password`.
    Password {
        /// Regex the plain password must match.
        pattern: String,
        /// Minimum length.
        min: i64,
        /// Maximum length (0: default 71).
        max: i64,
        /// bcrypt cost (0: default).
        cost: i64,
    },
    /// `geoPoint`.
    GeoPoint,
}

/// Every field type name PocketBase knows.
pub const FIELD_TYPES: [&str; 14] = [
    "text", "number", "bool", "email", "url", "editor", "date", "autodate", "select", "json",
    "file", "relation", "password", "geoPoint",
];

/// One type-specific option of a field, as [`FieldKind::options`] hands it out: how its JSON
/// value reads and writes.
enum Opt<'a> {
    /// A Go `int` (written as a float64 number).
    Int(&'a mut i64),
    /// A `*float64`: `null` when unset.
    OptF64(&'a mut Option<f64>),
    Bool(&'a mut bool),
    Str(&'a mut String),
    /// A datetime string, normalised when read.
    Datetime(&'a mut String),
    /// A `[]string`: `null` when nil.
    List(&'a mut Option<Vec<String>>),
}

impl FieldKind {
    /// Calls `f` with each type-specific option and its JSON key, in PocketBase's order: the
    /// one list of a kind's options that decoding ([`Field::apply_json`]) and encoding
    /// ([`Field::write_json`]) both follow. Stops at `f`'s first error.
    fn options<E>(
        &mut self,
        f: &mut impl FnMut(&'static str, Opt<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            FieldKind::Text {
                min,
                max,
                pattern,
                autogenerate_pattern,
                primary_key,
            } => {
                f("min", Opt::Int(min))?;
                f("max", Opt::Int(max))?;
                f("pattern", Opt::Str(pattern))?;
                f("autogeneratePattern", Opt::Str(autogenerate_pattern))?;
                f("primaryKey", Opt::Bool(primary_key))
            }
            FieldKind::Number { min, max, only_int } => {
                f("min", Opt::OptF64(min))?;
                f("max", Opt::OptF64(max))?;
                f("onlyInt", Opt::Bool(only_int))
            }
            FieldKind::Bool | FieldKind::GeoPoint => Ok(()),
            FieldKind::Email {
                except_domains,
                only_domains,
            }
            | FieldKind::Url {
                except_domains,
                only_domains,
            } => {
                f("exceptDomains", Opt::List(except_domains))?;
                f("onlyDomains", Opt::List(only_domains))
            }
            FieldKind::Editor {
                max_size,
                convert_urls,
            } => {
                f("maxSize", Opt::Int(max_size))?;
                f("convertURLs", Opt::Bool(convert_urls))
            }
            FieldKind::Date { min, max } => {
                f("min", Opt::Datetime(min))?;
                f("max", Opt::Datetime(max))
            }
            FieldKind::Autodate {
                on_create,
                on_update,
            } => {
                f("onCreate", Opt::Bool(on_create))?;
                f("onUpdate", Opt::Bool(on_update))
            }
            FieldKind::Select { values, max_select } => {
                f("values", Opt::List(values))?;
                f("maxSelect", Opt::Int(max_select))
            }
            FieldKind::Json { max_size } => f("maxSize", Opt::Int(max_size)),
            FieldKind::File {
                max_size,
                max_select,
                mime_types,
                thumbs,
                protected,
            } => {
                f("maxSize", Opt::Int(max_size))?;
                f("maxSelect", Opt::Int(max_select))?;
                f("mimeTypes", Opt::List(mime_types))?;
                f("thumbs", Opt::List(thumbs))?;
                f("protected", Opt::Bool(protected))
            }
            FieldKind::Relation {
                collection_id,
                cascade_delete,
                min_select,
                max_select,
            } => {
                f("collectionId", Opt::Str(collection_id))?;
                f("cascadeDelete", Opt::Bool(cascade_delete))?;
                f("minSelect", Opt::Int(min_select))?;
                f("maxSelect", Opt::Int(max_select))
            }
            FieldKind::Password {
                pattern,
                min,
                max,
                cost,
            } => {
                f("pattern", Opt::Str(pattern))?;
                f("min", Opt::Int(min))?;
                f("max", Opt::Int(max))?;
                f("cost", Opt::Int(cost))
            }
        }
    }

    /// The zero-valued options of `type_name` (what Go's field factory gives).
    pub fn zero(type_name: &str) -> Option<FieldKind> {
        Some(match type_name {
            "text" => FieldKind::Text {
                min: 0,
                max: 0,
                pattern: String::new(),
                autogenerate_pattern: String::new(),
                primary_key: false,
            },
            "number" => FieldKind::Number {
                min: None,
                max: None,
                only_int: false,
            },
            "bool" => FieldKind::Bool,
            "email" => FieldKind::Email {
                except_domains: None,
                only_domains: None,
            },
            "url" => FieldKind::Url {
                except_domains: None,
                only_domains: None,
            },
            "editor" => FieldKind::Editor {
                max_size: 0,
                convert_urls: false,
            },
            "date" => FieldKind::Date {
                min: String::new(),
                max: String::new(),
            },
            "autodate" => FieldKind::Autodate {
                on_create: false,
                on_update: false,
            },
            "select" => FieldKind::Select {
                values: None,
                max_select: 0,
            },
            "json" => FieldKind::Json { max_size: 0 },
            "file" => FieldKind::File {
                max_size: 0,
                max_select: 0,
                mime_types: None,
                thumbs: None,
                protected: false,
            },
            "relation" => FieldKind::Relation {
                collection_id: String::new(),
                cascade_delete: false,
                min_select: 0,
                max_select: 0,
            },
            "password" => FieldKind::Password {
                pattern: String::new(),
                min: 0,
                max: 0,
                cost: 0,
            },
            "geoPoint" => FieldKind::GeoPoint,
            _ => return None,
        })
    }

    /// The type name as stored (`"text"`, `"geoPoint"`...).
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Email { .. } => "email",
            FieldKind::Url { .. } => "url",
            FieldKind::Editor { .. } => "editor",
            FieldKind::Date { .. } => "date",
            FieldKind::Autodate { .. } => "autodate",
            FieldKind::Select { .. } => "select",
            FieldKind::Json { .. } => "json",
            FieldKind::File { .. } => "file",
            FieldKind::Relation { .. } => "relation",
            FieldKind::Password { .. } => "password",
            FieldKind::GeoPoint => "geoPoint",
        }
    }
}

impl Field {
    /// A new field of `kind` with all common options zero.
    pub fn new(name: &str, kind: FieldKind) -> Field {
        Field {
            id: String::new(),
            name: name.to_string(),
            system: false,
            hidden: false,
            presentable: false,
            help: String::new(),
            required: false,
            kind,
        }
    }

    /// The type name as stored (`"text"`, `"relation"`...).
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// Whether the field holds a JSON array of values (select/file/relation
    /// with `maxSelect > 1`).
    pub fn is_multiple(&self) -> bool {
        match &self.kind {
            FieldKind::Select { max_select, .. }
            | FieldKind::File { max_select, .. }
            | FieldKind::Relation { max_select, .. } => *max_select > 1,
            _ => false,
        }
    }

    /// The target collection id of a relation field.
    pub fn relation_target(&self) -> Option<&str> {
        match &self.kind {
            FieldKind::Relation { collection_id, .. } => Some(collection_id),
            _ => None,
        }
    }

    /// Whether this is the primary key text field.
    pub fn is_primary_key(&self) -> bool {
        matches!(
            self.kind,
            FieldKind::Text {
                primary_key: true,
                ..
            }
        )
    }

    /// The SQLite column definition PocketBase uses for this field.
    pub fn column_type(&self) -> &'static str {
        match &self.kind {
            FieldKind::Text {
                primary_key: true, ..
            } => "TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL",
            FieldKind::Number { .. } => "NUMERIC DEFAULT 0 NOT NULL",
            FieldKind::Bool => "BOOLEAN DEFAULT FALSE NOT NULL",
            FieldKind::Json { .. } => "JSON DEFAULT NULL",
            FieldKind::GeoPoint => "JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL",
            FieldKind::Select { .. } | FieldKind::File { .. } | FieldKind::Relation { .. }
                if self.is_multiple() =>
            {
                "JSON DEFAULT '[]' NOT NULL"
            }
            _ => "TEXT DEFAULT '' NOT NULL",
        }
    }

    /// Whether `help` and `required` are part of this type's options.
    fn has_help_and_required(&self) -> bool {
        !matches!(self.kind, FieldKind::Autodate { .. })
    }

    /// Decodes one field object like PocketBase does: the `type` picks the
    /// field, missing options stay zero, unknown keys are ignored.
    pub fn from_json(v: &Value) -> Result<Field, DecodeError> {
        let obj = v
            .as_object()
            .ok_or_else(|| DecodeError::new("field must be an object"))?;
        let type_name = pj::string(obj, "type")?.unwrap_or_default();
        let kind = FieldKind::zero(&type_name).ok_or_else(|| {
            DecodeError::new(format!(
                "missing or unknown field type in {}",
                serde_json::to_string(v).unwrap_or_default()
            ))
        })?;
        let mut f = Field::new("", kind);
        f.apply_json(obj)?;
        Ok(f)
    }

    /// Overlays the keys present in `obj` onto this field (Go's
    /// `json.Unmarshal` into an existing struct).
    pub fn apply_json(&mut self, obj: &Map<String, Value>) -> Result<(), DecodeError> {
        pj::set_string(obj, "id", &mut self.id)?;
        pj::set_string(obj, "name", &mut self.name)?;
        pj::set_bool(obj, "system", &mut self.system)?;
        pj::set_bool(obj, "hidden", &mut self.hidden)?;
        pj::set_bool(obj, "presentable", &mut self.presentable)?;
        if self.has_help_and_required() {
            pj::set_string(obj, "help", &mut self.help)?;
            pj::set_bool(obj, "required", &mut self.required)?;
        }
        self.kind.options(&mut |key, opt| match opt {
            Opt::Int(dst) => pj::set_int(obj, key, dst),
            Opt::OptF64(dst) => pj::set_opt_f64(obj, key, dst),
            Opt::Bool(dst) => pj::set_bool(obj, key, dst),
            Opt::Str(dst) => pj::set_string(obj, key, dst),
            Opt::Datetime(dst) => pj::set_datetime(obj, key, dst),
            Opt::List(dst) => pj::set_str_list(obj, key, dst),
        })
    }

    /// Appends the field's JSON exactly as PocketBase writes it (keys
    /// sorted, `type` included, numbers as float64).
    pub fn write_json(&self, out: &mut String) {
        // (key, encoded value) pairs, sorted before writing like a Go map
        let mut kv: Vec<(&'static str, String)> = Vec::with_capacity(16);
        let s = |v: &str| {
            let mut o = String::new();
            gojson::write_str(&mut o, v);
            o
        };
        let b = |v: bool| if v { "true" } else { "false" }.to_string();
        let n = |v: i64| {
            let mut o = String::new();
            gojson::write_f64(&mut o, v as f64);
            o
        };
        let of = |v: Option<f64>| {
            let mut o = String::new();
            match v {
                Some(x) => gojson::write_f64(&mut o, x),
                None => o.push_str("null"),
            }
            o
        };
        let l = |v: &Option<Vec<String>>| {
            let mut o = String::new();
            gojson::write_str_list(&mut o, v.as_deref());
            o
        };
        kv.push(("id", s(&self.id)));
        kv.push(("name", s(&self.name)));
        kv.push(("system", b(self.system)));
        kv.push(("hidden", b(self.hidden)));
        kv.push(("presentable", b(self.presentable)));
        kv.push(("type", s(self.type_name())));
        if self.has_help_and_required() {
            kv.push(("help", s(&self.help)));
            kv.push(("required", b(self.required)));
        }
        // the options are visited mutably (decoding shares the list): a copy of them
        let mut kind = self.kind.clone();
        let Ok(()) = kind.options(&mut |key, opt| -> Result<(), Infallible> {
            kv.push((
                key,
                match opt {
                    Opt::Int(v) => n(*v),
                    Opt::OptF64(v) => of(*v),
                    Opt::Bool(v) => b(*v),
                    Opt::Str(v) | Opt::Datetime(v) => s(v),
                    Opt::List(v) => l(v),
                },
            ));
            Ok(())
        });
        kv.sort_by(|a, b| a.0.cmp(b.0));
        let mut o = Obj::new(out);
        for (k, v) in &kv {
            o.raw(k, v);
        }
        o.end();
    }

    /// The field's JSON as a string.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }
}

/// Decodes a fields list (`_collections.fields` or an API payload),
/// assigning PocketBase's default ids to fields without one.
pub fn fields_from_json(v: &Value) -> Result<Vec<Field>, DecodeError> {
    let mut list: Vec<Field> = Vec::new();
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                add_field(&mut list, Field::from_json(item)?);
            }
        }
        _ => return Err(DecodeError::new("fields must be an array")),
    }
    Ok(list)
}

/// Adds `field` to `list` the way PocketBase's fields list does: a field
/// without id gets `type + crc32(name)` (made unique) and replaces a field
/// of the same name in place; a field with an existing id replaces it.
pub fn add_field(list: &mut Vec<Field>, mut field: Field) {
    if field.id.is_empty() {
        let base = format!("{}{}", field.type_name(), crc32_checksum(&field.name));
        let mut id = base.clone();
        for i in 2..1000 {
            if !list.iter().any(|f| f.id == id) {
                break;
            }
            id = format!("{base}{i}");
        }
        field.id = id;
        if !field.name.is_empty() {
            if let Some(existing) = list.iter_mut().find(|f| f.name == field.name) {
                field.id = existing.id.clone();
                *existing = field;
                return;
            }
        }
    } else if let Some(existing) = list.iter_mut().find(|f| f.id == field.id) {
        *existing = field;
        return;
    }
    list.push(field);
}

/// Appends a fields list's JSON exactly as PocketBase writes it.
pub fn write_fields_json(out: &mut String, fields: &[Field]) {
    out.push('[');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        f.write_json(out);
    }
    out.push(']');
}

/// PocketBase's `crc32Checksum`: IEEE CRC-32 of `s` in decimal.
pub fn crc32_checksum(s: &str) -> String {
    let mut crc: u32 = 0xffff_ffff;
    for &byte in s.as_bytes() {
        crc ^= byte as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    (!crc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_pocketbase_ids() {
        // ids of the fresh-install system fields
        assert_eq!(crc32_checksum("id"), "3208210256");
        assert_eq!(crc32_checksum("password"), "901924565");
        assert_eq!(
            crc32_checksum("authcollection"),
            crc32_checksum("authcollection")
        );
    }
}

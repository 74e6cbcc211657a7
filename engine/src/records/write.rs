//! A record being created or updated: its field values as PocketBase's `Record` holds them,
//! the setters of the request data (with the `field+`, `+field`, `field-` modifiers and
//! `:autogenerate`), and the values as they are stored.

use super::input::Upload;
use super::value::to_string_list;
use super::SqlVal;
use pocketbun_storage::collections::json::normalize_datetime;
use pocketbun_storage::collections::{gojson, Collection, Field, FieldKind};
use pocketbun_storage::random;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// A file field item: an already stored file name or a new upload.
#[derive(Debug, Clone, PartialEq)]
pub enum FileItem {
    Name(String),
    New(usize),
}

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    /// Normalised datetime (`""`: zero).
    Date(String),
    /// Select and relation values (single ones keep at most one item).
    List(Vec<String>),
    Files(Vec<FileItem>),
    /// Raw JSON text (`None`: NULL).
    Json(Option<String>),
    Geo(f64, f64),
    /// A new plain password (hashed before the save) or the stored hash.
    Password {
        plain: String,
        hash: String,
    },
}

/// A new upload, named as PocketBase names stored files.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub original_name: String,
    pub data: Arc<Vec<u8>>,
    /// MIME type and extension sniffed from `data`, once (`super::files::sniff`).
    pub sniffed: (&'static str, &'static str),
}

/// Marks an upload inside request data (`<SENTINEL><index>`).
const SENTINEL: &str = "\u{1}pbnewfile:";

fn upload_ref(i: usize) -> Json {
    Json::String(format!("{SENTINEL}{i}"))
}

fn upload_index(s: &str) -> Option<usize> {
    s.strip_prefix(SENTINEL)?.parse().ok()
}

/// How a data key changes a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Set,
    Append,
    Prepend,
    Subtract,
    Autogenerate,
}

/// The field and modifier a data key sets (PocketBase's `FindSetter`, then the plain name).
pub fn setter(coll: &Collection, key: &str) -> Option<(usize, Modifier)> {
    for (i, f) in coll.fields.iter().enumerate() {
        let n = f.name.as_str();
        // every form below is the name plus 0, 1 (`+`, `-`) or 13 (`:autogenerate`) bytes:
        // other lengths skip the comparisons (a body key was compared with each field up to
        // five times, 3 lookups of 7 keys a create cost ~5k instructions, callgrind)
        if !matches!(key.len().wrapping_sub(n.len()), 0 | 1 | 13) {
            continue;
        }
        // the modifiers a kind takes: `+name` (lists), `name+`/`name-` (lists, numbers),
        // `name:autogenerate` (text); autodate values can't be set at all
        let (prepend, add_sub, autogenerate) = match &f.kind {
            FieldKind::Autodate { .. } if key == n => return None,
            FieldKind::Autodate { .. } => continue,
            FieldKind::Number { .. } => (false, true, false),
            FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => {
                (true, true, false)
            }
            FieldKind::Text { .. } => (false, false, true),
            _ => (false, false, false),
        };
        let m = if key == n {
            Modifier::Set
        } else if prepend && key.strip_prefix('+') == Some(n) {
            Modifier::Prepend
        } else if add_sub && key.strip_suffix('+') == Some(n) {
            Modifier::Append
        } else if add_sub && key.strip_suffix('-') == Some(n) {
            Modifier::Subtract
        } else if autogenerate && key.strip_suffix(":autogenerate") == Some(n) {
            Modifier::Autogenerate
        } else {
            continue;
        };
        return Some((i, m));
    }
    None
}

/// Go's `cast.ToString` of a decoded JSON value.
pub fn cast_string(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => crate::go::format_float(n.as_f64().unwrap_or(0.0)),
        Json::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Go's `cast.ToFloat64`.
pub fn cast_f64(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().unwrap_or(0.0),
        Json::Bool(b) => f64::from(u8::from(*b)),
        Json::String(s) => {
            let t = s.trim_end_matches('0');
            let t = if s.contains('.') {
                t.strip_suffix('.').unwrap_or(t)
            } else {
                s
            };
            t.parse::<f64>().unwrap_or(0.0)
        }
        _ => 0.0,
    }
}

/// Go's `cast.ToBool`.
pub fn cast_bool(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Json::String(s) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        _ => false,
    }
}

/// `list.ToUniqueStringSlice` of a decoded JSON value.
pub fn unique_strings(v: &Json) -> Vec<String> {
    let raw: Vec<String> = match v {
        Json::Null => Vec::new(),
        Json::String(s) => return to_string_list(&SqlVal::Text(s.clone().into_boxed_str())),
        Json::Array(items) => items.iter().map(cast_string).collect(),
        other => vec![cast_string(other)],
    };
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for s in raw {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn file_items(v: &Json) -> Vec<FileItem> {
    let mut out = Vec::new();
    let mut push = |item: FileItem| {
        if !out.contains(&item) {
            out.push(item);
        }
    };
    match v {
        Json::Array(items) => {
            for it in items {
                if let Json::String(s) = it {
                    if let Some(i) = upload_index(s) {
                        push(FileItem::New(i));
                        continue;
                    }
                }
                let list = unique_strings(it);
                if list.len() == 1 {
                    push(FileItem::Name(list[0].clone()));
                }
            }
        }
        Json::String(s) if upload_index(s).is_some() => {
            push(FileItem::New(upload_index(s).unwrap_or(0)));
        }
        other => {
            for s in unique_strings(other) {
                push(FileItem::Name(s));
            }
        }
    }
    out
}

/// The zero value of a field (a new record's value).
pub fn zero(f: &Field) -> Val {
    match &f.kind {
        FieldKind::Number { .. } => Val::Num(0.0),
        FieldKind::Bool => Val::Bool(false),
        FieldKind::Date { .. } | FieldKind::Autodate { .. } => Val::Date(String::new()),
        FieldKind::Select { .. } | FieldKind::Relation { .. } => Val::List(Vec::new()),
        FieldKind::File { .. } => Val::Files(Vec::new()),
        FieldKind::Json { .. } => Val::Json(None),
        FieldKind::GeoPoint => Val::Geo(0.0, 0.0),
        FieldKind::Password { .. } => Val::Password {
            plain: String::new(),
            hash: String::new(),
        },
        _ => Val::Str(String::new()),
    }
}

/// A stored value as the field's value.
pub fn from_stored(f: &Field, v: &SqlVal) -> Val {
    match &f.kind {
        FieldKind::Number { .. } => Val::Num(super::value::to_f64(v)),
        FieldKind::Bool => Val::Bool(super::value::to_bool(v)),
        FieldKind::Date { .. } | FieldKind::Autodate { .. } => {
            Val::Date(normalize_datetime(&v.as_text()).unwrap_or_default())
        }
        FieldKind::Select { .. } | FieldKind::Relation { .. } => {
            let mut l = to_string_list(v);
            if !f.is_multiple() && l.len() > 1 {
                l = l.split_off(l.len() - 1);
            }
            Val::List(l)
        }
        FieldKind::File { .. } => {
            let mut l = to_string_list(v);
            if !f.is_multiple() && l.len() > 1 {
                l = l.split_off(l.len() - 1);
            }
            Val::Files(l.into_iter().map(FileItem::Name).collect())
        }
        FieldKind::Json { .. } => match v {
            SqlVal::Null => Val::Json(None),
            other => Val::Json(Some(other.as_text().into_owned())),
        },
        FieldKind::GeoPoint => {
            let (mut lon, mut lat) = (0.0, 0.0);
            if let Ok(Json::Object(m)) = serde_json::from_str::<Json>(&v.as_text()) {
                lon = m.get("lon").and_then(Json::as_f64).unwrap_or(0.0);
                lat = m.get("lat").and_then(Json::as_f64).unwrap_or(0.0);
            }
            Val::Geo(lon, lat)
        }
        FieldKind::Password { .. } => Val::Password {
            plain: String::new(),
            hash: v.as_text().into_owned(),
        },
        _ => Val::Str(v.as_text().into_owned()),
    }
}

/// A JSON field's raw text for a decoded request value (PocketBase's `PrepareValue`).
fn json_raw(v: &Json) -> Option<String> {
    match v {
        Json::Null => Some("null".into()),
        Json::String(s) => {
            let keep = s == "null"
                || s == "true"
                || s == "false"
                || (!s.is_empty()
                    && matches!(s.as_bytes()[0], b'0'..=b'9' | b'-' | b'"' | b'[' | b'{')
                    && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok());
            if keep {
                Some(s.clone())
            } else {
                let mut out = String::new();
                gojson::write_str(&mut out, s);
                Some(out)
            }
        }
        other => {
            let mut out = String::new();
            gojson::write_value(&mut out, other);
            Some(out)
        }
    }
}

/// A list value as a field keeps it: duplicates and the items `drop` names left out, and a
/// single-value field keeps only the last item.
fn normalize<T: PartialEq>(f: &Field, l: Vec<T>, drop: impl Fn(&T) -> bool) -> Vec<T> {
    let mut seen: Vec<T> = Vec::with_capacity(l.len());
    for it in l {
        if !drop(&it) && !seen.contains(&it) {
            seen.push(it);
        }
    }
    if !f.is_multiple() && seen.len() > 1 {
        seen = seen.split_off(seen.len() - 1);
    }
    seen
}

/// A list field's items after a modifier: `new` appended, prepended, taken away, or set.
fn modified<T: PartialEq>(old: Vec<T>, new: Vec<T>, m: Modifier) -> Vec<T> {
    match m {
        Modifier::Append => old.into_iter().chain(new).collect(),
        Modifier::Prepend => new.into_iter().chain(old).collect(),
        Modifier::Subtract => old.into_iter().filter(|s| !new.contains(s)).collect(),
        _ => new,
    }
}

/// Applies one setter to `vals`.
pub fn apply(coll: &Collection, vals: &mut [Val], idx: usize, m: Modifier, raw: &Json) {
    let f = &coll.fields[idx];
    let cur = &mut vals[idx];
    match (&f.kind, m) {
        (FieldKind::Number { .. }, m) => {
            let old = if let Val::Num(x) = cur { *x } else { 0.0 };
            let v = cast_f64(raw);
            *cur = Val::Num(match m {
                Modifier::Append => old + v,
                Modifier::Subtract => old - v,
                _ => v,
            });
        }
        (FieldKind::Select { .. } | FieldKind::Relation { .. }, m) => {
            // the old items are replaced below: taken, not copied
            let old = match cur {
                Val::List(l) => std::mem::take(l),
                _ => Vec::new(),
            };
            let list = modified(old, unique_strings(raw), m);
            *cur = Val::List(normalize(f, list, String::is_empty));
        }
        (FieldKind::File { .. }, m) => {
            let old = match cur {
                Val::Files(l) => std::mem::take(l),
                _ => Vec::new(),
            };
            let list = modified(old, file_items(raw), m);
            *cur = Val::Files(normalize(f, list, |_| false));
        }
        (
            FieldKind::Text {
                autogenerate_pattern,
                ..
            },
            Modifier::Autogenerate,
        ) => {
            let mut v = cast_string(raw);
            if !autogenerate_pattern.is_empty() {
                v.push_str(&autogenerate(autogenerate_pattern));
            }
            *cur = Val::Str(v);
        }
        (FieldKind::Bool, _) => *cur = Val::Bool(cast_bool(raw)),
        (FieldKind::Date { .. }, _) => {
            *cur = Val::Date(normalize_datetime(&cast_string(raw)).unwrap_or_default())
        }
        (FieldKind::Json { .. }, _) => *cur = Val::Json(json_raw(raw)),
        (FieldKind::GeoPoint, _) => {
            let obj = match raw {
                Json::String(s) => serde_json::from_str::<Json>(s).unwrap_or(Json::Null),
                other => other.clone(),
            };
            let get = |k: &str| obj.get(k).map(cast_f64).unwrap_or(0.0);
            *cur = Val::Geo(get("lon"), get("lat"));
        }
        (FieldKind::Password { .. }, _) => {
            *cur = Val::Password {
                plain: cast_string(raw),
                hash: String::new(),
            }
        }
        (FieldKind::Autodate { .. }, _) => {}
        _ => *cur = Val::Str(cast_string(raw)),
    }
}

/// The value as `Record.Get` gives it (uploads as their reference, for a later `load`).
pub fn get_json(f: &Field, v: &Val, new_files: Option<&[NewFile]>) -> Json {
    match v {
        Val::Str(s) | Val::Date(s) => Json::String(s.clone()),
        Val::Num(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        Val::Bool(b) => Json::Bool(*b),
        Val::List(l) => {
            if f.is_multiple() {
                Json::Array(l.iter().cloned().map(Json::String).collect())
            } else {
                Json::String(l.last().cloned().unwrap_or_default())
            }
        }
        Val::Files(l) => {
            let items: Vec<Json> = l
                .iter()
                .map(|it| match (it, new_files) {
                    (FileItem::Name(n), _) => Json::String(n.clone()),
                    (FileItem::New(i), Some(files)) => {
                        Json::String(files.get(*i).map(|f| f.name.clone()).unwrap_or_default())
                    }
                    (FileItem::New(i), None) => upload_ref(*i),
                })
                .collect();
            if f.is_multiple() {
                Json::Array(items)
            } else {
                items.last().cloned().unwrap_or(Json::String(String::new()))
            }
        }
        Val::Json(raw) => raw
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Json::Null),
        Val::Geo(lon, lat) => serde_json::json!({"lon": lon, "lat": lat}),
        Val::Password { plain, .. } => Json::String(plain.clone()),
    }
}

/// A string from a simple regex of literal characters and `[class]{n}` groups (the shapes
/// PocketBase's autogenerate patterns take).
pub fn autogenerate(pattern: &str) -> String {
    // the default id pattern, on every create: no pattern parsing
    if pattern == "[a-z0-9]{15}" {
        return random::new_record_id();
    }
    let mut out = String::new();
    let mut rest = pattern.trim_start_matches('^').trim_end_matches('$');
    while !rest.is_empty() {
        if rest.starts_with('[') {
            let Some(close) = rest.find(']') else { break };
            let after = &rest[close + 1..];
            let (count, tail) = match after.strip_prefix('{').and_then(|a| a.split_once('}')) {
                Some((n, tail)) => (n.to_string(), tail),
                None => ("1".to_string(), after),
            };
            let group = format!("{}{{{}}}", &rest[..=close], count);
            if let Ok(s) = random::from_autogenerate_pattern(&group) {
                out.push_str(&s);
            }
            rest = tail;
        } else {
            let mut chars = rest.chars();
            let mut c = chars.next().unwrap_or_default();
            if c == '\\' {
                c = chars.next().unwrap_or_default();
            }
            out.push(c);
            rest = chars.as_str();
        }
    }
    out
}

/// The record being saved.
#[derive(Debug, Clone)]
pub struct Draft {
    pub coll: Arc<Collection>,
    pub vals: Vec<Val>,
    pub original: Vec<Val>,
    pub is_new: bool,
    pub new_files: Vec<NewFile>,
    /// Fields whose JSON text (as `vals` holds it now) is known valid: written from a decoded
    /// value by [`Draft::load`], or found valid off the worker (`save::convert_body`);
    /// validation does not parse them again.
    pub valid_json: Vec<usize>,
}

/// What the upsert form reads besides the fields (auth collections).
#[derive(Debug, Default, Clone)]
pub struct FormInput {
    pub password: String,
    pub password_confirm: String,
    pub old_password: String,
}

impl Draft {
    pub fn new(coll: Arc<Collection>) -> Draft {
        let vals: Vec<Val> = coll.fields.iter().map(zero).collect();
        Draft {
            original: vals.clone(),
            vals,
            coll,
            is_new: true,
            new_files: Vec::new(),
            valid_json: Vec::new(),
        }
    }

    pub fn from_row(coll: Arc<Collection>, row: &[SqlVal]) -> Draft {
        let vals: Vec<Val> = coll
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| from_stored(f, row.get(i).unwrap_or(&SqlVal::Null)))
            .collect();
        Draft {
            original: vals.clone(),
            vals,
            coll,
            is_new: false,
            new_files: Vec::new(),
            valid_json: Vec::new(),
        }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.coll.fields.iter().position(|f| f.name == name)
    }

    pub fn get(&self, name: &str) -> Option<&Val> {
        self.index(name).map(|i| &self.vals[i])
    }

    pub fn set(&mut self, name: &str, v: Val) {
        if let Some(i) = self.index(name) {
            self.vals[i] = v;
        }
    }

    pub fn str_of(&self, name: &str) -> String {
        match self.get(name) {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn original_str(&self, name: &str) -> String {
        match self.index(name).map(|i| &self.original[i]) {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn id(&self) -> String {
        self.str_of("id")
    }

    /// PocketBase's request data resolution: uploads merged under their keys, then every
    /// modifier key applied (shortest keys first) to a copy of the record and replaced by
    /// the field's resulting value. Unknown keys stay as they are.
    pub fn resolve(
        &mut self,
        mut data: Map<String, Json>,
        uploads: Vec<Upload>,
    ) -> Map<String, Json> {
        let mut by_key: Vec<(String, Vec<usize>)> = Vec::new();
        for up in uploads {
            let is_file_key = setter(&self.coll, &up.key)
                .is_some_and(|(i, _)| matches!(self.coll.fields[i].kind, FieldKind::File { .. }));
            if !is_file_key {
                continue;
            }
            let idx = self.new_files.len();
            let sniffed = up.sniffed.unwrap_or_else(|| super::files::sniff(&up.data));
            self.new_files.push(NewFile {
                name: super::files::stored_name(&up.original_name, sniffed.1),
                original_name: up.original_name,
                data: Arc::new(up.data),
                sniffed,
            });
            match by_key.iter_mut().find(|(k, _)| *k == up.key) {
                Some((_, v)) => v.push(idx),
                None => by_key.push((up.key, vec![idx])),
            }
        }
        for (key, idxs) in by_key {
            let mut items: Vec<Json> = Vec::new();
            let plain = !key.starts_with('+') && !key.ends_with('+') && !key.ends_with('-');
            if plain {
                if let Some(v) = data.get(&key).filter(|v| !v.is_null()) {
                    items.extend(unique_strings(v).into_iter().map(Json::String));
                }
            }
            items.extend(idxs.into_iter().map(upload_ref));
            data.insert(key, Json::Array(items));
        }

        // the keys borrowed, not copied (7 `String`s a create, ~1k instructions)
        let mut keys: Vec<&String> = data.keys().collect();
        keys.sort_by_key(|k| k.len());
        let mut copy = self.original.clone();
        // the field keys' new values, applied afterwards to `data` itself: no copy of the
        // whole body (a large value under an unknown key cost its size once more). Each is
        // the field's index, the modifier key it came under (`None`: the field's own name)
        // and the value.
        let mut replaced: Vec<(usize, Option<String>, Json)> = Vec::new();
        for k in keys {
            if let Some((i, m)) = setter(&self.coll, k) {
                apply(&self.coll, &mut copy, i, m, &data[k]);
                let f = &self.coll.fields[i];
                let value = match &copy[i] {
                    // raw JSON that PocketBase 0.40 finds invalid (a duplicate key) stays raw,
                    // so that validation reports it (decoding would quietly drop a duplicate);
                    // only a string value is kept as raw text, anything else was written
                    // from a decoded value, valid (~1k instructions a create's JSON field)
                    Val::Json(Some(raw))
                        if data[k].is_string() && !crate::json_strict::is_valid(raw) =>
                    {
                        Json::String(raw.clone())
                    }
                    v => get_json(f, v, None),
                };
                let modifier_key = (*k != f.name).then(|| k.clone());
                replaced.push((i, modifier_key, value));
            }
        }
        let mut out = data;
        for (i, modifier_key, value) in replaced {
            let name = &self.coll.fields[i].name;
            if let Some(key) = modifier_key {
                out.remove(&key);
                out.insert(name.clone(), value);
                continue;
            }
            // a plain field key keeps its entry and gets the new value: the remove and
            // insert of the same key cost ~0.8k instructions a field (5.6k for the
            // 7 fields of `loadtest`'s create body, callgrind under a create load)
            match out.get_mut(name) {
                Some(slot) => *slot = value,
                None => {
                    out.insert(name.clone(), value);
                }
            }
        }
        out
    }

    /// PocketBase's upsert form `Load`: sets the fields the data names (hidden ones only for
    /// superusers), keeps the auth form values aside.
    pub fn load(&mut self, data: &Map<String, Json>, superuser: bool) -> FormInput {
        let auth = self.coll.is_auth();
        let mut form = FormInput::default();
        if auth {
            let s = |k: &str| data.get(k).map(cast_string);
            form.password = s("password").unwrap_or_default();
            form.password_confirm = s("passwordConfirm").unwrap_or_default();
            form.old_password = s("oldPassword").unwrap_or_default();
        }
        for (k, v) in data {
            if k == "expand" || (auth && (k == "passwordConfirm" || k == "oldPassword")) {
                continue;
            }
            let Some((i, m)) = setter(&self.coll, k) else {
                continue;
            };
            let f = &self.coll.fields[i];
            if !superuser && f.hidden && !(auth && f.name == "password") {
                continue;
            }
            apply(&self.coll, &mut self.vals, i, m, v);
            // a JSON field's text written from a decoded value (anything but a string, which
            // is kept as raw text) is valid: validation does not parse it again (~1.2k
            // instructions a create's JSON field, callgrind under a create load)
            if matches!(f.kind, FieldKind::Json { .. })
                && !v.is_string()
                && !self.valid_json.contains(&i)
            {
                self.valid_json.push(i);
            }
        }
        form
    }

    /// The request body as rules see it (uploads by their new names).
    pub fn body_for_rules(&self, data: &Map<String, Json>) -> Map<String, Json> {
        let mut out = data.clone();
        for (k, v) in out.iter_mut() {
            if let Some((i, _)) = setter(&self.coll, k) {
                if matches!(self.coll.fields[i].kind, FieldKind::File { .. }) {
                    let items = file_items(v);
                    *v = get_json(
                        &self.coll.fields[i],
                        &Val::Files(items),
                        Some(&self.new_files),
                    );
                }
            }
        }
        out
    }

    /// Fills what PocketBase's interceptors fill on save: autogenerated text values of new
    /// records and the autodate values.
    pub fn prepare_save(&mut self, now: &str) {
        let is_new = self.is_new;
        // the collection's `Arc`, not a deep copy of its fields, lets `self` be written to
        let coll = self.coll.clone();
        for (i, f) in coll.fields.iter().enumerate() {
            match &f.kind {
                FieldKind::Text {
                    autogenerate_pattern,
                    ..
                } if is_new && !autogenerate_pattern.is_empty() => {
                    if matches!(&self.vals[i], Val::Str(s) if s.is_empty()) {
                        self.vals[i] = Val::Str(autogenerate(autogenerate_pattern));
                    }
                }
                FieldKind::Autodate {
                    on_create,
                    on_update,
                } if (is_new && *on_create) || (!is_new && *on_update) => {
                    self.vals[i] = Val::Date(now.to_string());
                }
                _ => {}
            }
        }
    }

    /// The stored names of a file field's value.
    pub fn file_names(&self, i: usize) -> Vec<String> {
        match &self.vals[i] {
            Val::Files(l) => l
                .iter()
                .map(|it| match it {
                    FileItem::Name(n) => n.clone(),
                    FileItem::New(k) => self
                        .new_files
                        .get(*k)
                        .map(|f| f.name.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The column value of field `i` as it is stored.
    pub fn column(&self, i: usize) -> SqlVal {
        let f = &self.coll.fields[i];
        match &self.vals[i] {
            Val::Str(s) | Val::Date(s) => SqlVal::Text(s.as_str().into()),
            Val::Num(x) => SqlVal::Real(*x),
            Val::Bool(b) => SqlVal::from(*b),
            Val::List(l) => list_column(f, l),
            Val::Files(_) => list_column(f, &self.file_names(i)),
            Val::Json(None) => SqlVal::Null,
            Val::Json(Some(s)) => SqlVal::Text(s.as_str().into()),
            Val::Geo(lon, lat) => {
                let mut s = String::from("{\"lon\":");
                gojson::write_f64(&mut s, *lon);
                s.push_str(",\"lat\":");
                gojson::write_f64(&mut s, *lat);
                s.push('}');
                SqlVal::from(s)
            }
            Val::Password { hash, .. } => SqlVal::Text(hash.as_str().into()),
        }
    }

    /// Every column and its value, in field order.
    pub fn columns(&self) -> Vec<(String, SqlVal)> {
        (0..self.coll.fields.len())
            .map(|i| (self.coll.fields[i].name.clone(), self.column(i)))
            .collect()
    }
}

/// A column's type affinity, by SQLite's rules for its declared type (section 3.1 of
/// "Datatypes In SQLite": `INT`, then `CHAR`/`CLOB`/`TEXT`, then `BLOB` or none, then
/// `REAL`/`FLOA`/`DOUB`, else NUMERIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

impl Affinity {
    /// The affinity of `decl`, a column definition as [`Field::column_type`] writes it (the
    /// type name is its first word: `NUMERIC DEFAULT 0 NOT NULL` is NUMERIC).
    pub fn of_decl(decl: &str) -> Affinity {
        let name = decl.split(' ').next().unwrap_or("");
        // PocketBase's own types first: the general rule below (an upper-cased copy and
        // up to nine searches) cost ~1k instructions a column, 8.6k a create
        match name {
            "TEXT" => return Affinity::Text,
            "NUMERIC" | "BOOLEAN" | "JSON" => return Affinity::Numeric,
            _ => {}
        }
        let name = decl
            .split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if name.contains("INT") {
            Affinity::Integer
        } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| name.contains(t)) {
            Affinity::Text
        } else if name.is_empty() || name.contains("BLOB") {
            Affinity::Blob
        } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| name.contains(t)) {
            Affinity::Real
        } else {
            Affinity::Numeric
        }
    }
}

/// What a read of `f`'s column returns after `v` was bound into it by an INSERT, when the
/// column's affinity alone decides it; `None` where only SQLite's own conversion can tell
/// (then the caller reads the row back). The create path answers and publishes the stored
/// row: building it from the bound values spares the writer a by-id SELECT (~14.7k of
/// ~158k instructions per create under a 64-connection create load, callgrind).
///
/// - NULL stays NULL; any text stays text in a TEXT or BLOB column;
/// - in a NUMERIC/INTEGER/REAL column text that looks like a number (`5`, ` 1e3`, `-.5`)
///   is converted by SQLite: left to the read; text starting with anything else (`[`,
///   `{`, `"`, a letter) cannot be a number and stays text;
/// - an integer stays an integer in a NUMERIC, INTEGER or BLOB column;
/// - a real in a NUMERIC or INTEGER column becomes an integer when it holds one exactly
///   (`sqlite3VdbeIntegerAffinity`: `5.0` is stored and read as 5), else stays a real;
/// - everything else (a number into a TEXT or REAL column, NaN) is left to the read.
pub fn stored_as(f: &Field, v: SqlVal) -> Option<SqlVal> {
    stored_with(Affinity::of_decl(f.column_type()), v)
}

/// [`stored_as`] for a column of affinity `aff`.
fn stored_with(aff: Affinity, v: SqlVal) -> Option<SqlVal> {
    let numeric = matches!(aff, Affinity::Numeric | Affinity::Integer | Affinity::Real);
    match v {
        SqlVal::Null => Some(SqlVal::Null),
        SqlVal::Text(s) => (!numeric || !may_be_number(&s)).then_some(SqlVal::Text(s)),
        SqlVal::Int(i) => matches!(aff, Affinity::Numeric | Affinity::Integer | Affinity::Blob)
            .then_some(SqlVal::Int(i)),
        SqlVal::Real(r) if r.is_nan() => None,
        SqlVal::Real(r) => match aff {
            Affinity::Numeric | Affinity::Integer => Some(integer_affinity(r)),
            Affinity::Blob => Some(SqlVal::Real(r)),
            Affinity::Text | Affinity::Real => None,
        },
    }
}

/// Whether SQLite's numeric affinity might turn the text `s` into a number: it must start
/// (after optional spaces) with a digit, a sign or a point. Empty text counts as a maybe.
fn may_be_number(s: &str) -> bool {
    s.as_bytes().first().is_none_or(|b| {
        b.is_ascii_digit()
            || matches!(
                b,
                b'+' | b'-' | b'.' | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'
            )
    })
}

/// SQLite's `sqlite3VdbeIntegerAffinity` (with `doubleToInt64`): a real that round-trips
/// through i64, other than the two extremes, is stored as that integer.
fn integer_affinity(r: f64) -> SqlVal {
    let ix = if r <= i64::MIN as f64 {
        i64::MIN
    } else if r >= i64::MAX as f64 {
        i64::MAX
    } else {
        r as i64
    };
    if r == ix as f64 && ix > i64::MIN && ix < i64::MAX {
        SqlVal::Int(ix)
    } else {
        SqlVal::Real(r)
    }
}

fn list_column(f: &Field, l: &[String]) -> SqlVal {
    if f.is_multiple() {
        let mut s = String::new();
        gojson::write_str_list(&mut s, Some(l));
        SqlVal::from(s)
    } else {
        SqlVal::Text(l.last().map_or("", String::as_str).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stored_with` against the bundled SQLite: every value it claims to know is what a
    /// real table returns after the insert, for PocketBase's column types and the others.
    #[test]
    fn stored_values_match_sqlite() {
        let conn = pocketbun_storage::rusqlite::Connection::open_in_memory().unwrap();
        let decls = [
            "TEXT DEFAULT '' NOT NULL",
            "NUMERIC DEFAULT 0 NOT NULL",
            "BOOLEAN DEFAULT FALSE NOT NULL",
            "JSON DEFAULT NULL",
            "INTEGER",
            "REAL",
            "BLOB",
            "",
            "VARCHAR(10)",
            "json",
            "\tTEXT",
            "Boolean",
            "DOUBLE PRECISION",
        ];
        let texts = [
            "",
            "abc",
            "[\"lt\",\"c1\"]",
            "{\"a\":1}",
            "\"x\"",
            "true",
            "null",
            "Inf",
            "inf",
            "Infinity",
            "NaN",
            "nan",
            "5",
            " 5",
            "5 ",
            "-1",
            "+1",
            ".5",
            "1e3",
            "1.0",
            "0x10",
            "12abc",
            "\t7",
            "9223372036854775808",
            "2024-01-02 03:04:05.000Z",
        ];
        let mut vals: Vec<SqlVal> = texts.iter().map(|t| SqlVal::Text((*t).into())).collect();
        vals.extend([0, 1, -7, i64::MIN, i64::MAX].map(SqlVal::Int));
        vals.extend(
            [
                0.0,
                -0.0,
                5.0,
                5.5,
                -3.0,
                1e15,
                1e300,
                -1e300,
                f64::INFINITY,
                9.223372036854776e18,
                -9.223372036854776e18,
                0.1,
            ]
            .map(SqlVal::Real),
        );
        vals.push(SqlVal::Null);
        let mut known = 0;
        for decl in decls {
            // NULL is one of the values: the table keeps the type and default only
            let column = decl.replace(" NOT NULL", "");
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS t; CREATE TABLE t (c {column});"
            ))
            .unwrap();
            let aff = Affinity::of_decl(decl);
            for v in &vals {
                conn.execute("DELETE FROM t", []).unwrap();
                conn.execute("INSERT INTO t (c) VALUES (?1)", [v]).unwrap();
                let got = conn
                    .query_row("SELECT c FROM t", [], |r| {
                        Ok(SqlVal::from_ref(r.get_ref(0)?))
                    })
                    .unwrap();
                if let Some(want) = stored_with(aff, v.clone()) {
                    known += 1;
                    assert_eq!(want, got, "{v:?} into a {decl:?} column");
                }
            }
        }
        // PocketBase's columns with the values a create binds are known without a read
        let json = Affinity::of_decl("JSON DEFAULT NULL");
        let number = Affinity::of_decl("NUMERIC DEFAULT 0 NOT NULL");
        assert_eq!(json, Affinity::Numeric);
        assert_eq!(
            Affinity::of_decl("TEXT PRIMARY KEY DEFAULT (1)"),
            Affinity::Text
        );
        assert!(stored_with(json, SqlVal::Text("[\"a\"]".into())).is_some());
        assert_eq!(stored_with(number, SqlVal::Real(5.0)), Some(SqlVal::Int(5)));
        assert_eq!(
            stored_with(number, SqlVal::Real(5.5)),
            Some(SqlVal::Real(5.5))
        );
        assert_eq!(stored_with(json, SqlVal::Text("1e3".into())), None);
        assert!(known > 200, "{known}");
    }

    /// Every key form a field takes, and the near misses the length check skips.
    #[test]
    fn setter_finds_every_form() {
        let payload = serde_json::json!({
            "name": "posts",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "n", "type": "number"},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
                {"name": "created", "type": "autodate", "onCreate": true},
            ],
        });
        let coll = Collection::from_create_payload(payload.as_object().unwrap()).unwrap();
        let idx = |name: &str| coll.fields.iter().position(|f| f.name == name).unwrap();
        let cases = [
            ("title", Some((idx("title"), Modifier::Set))),
            (
                "title:autogenerate",
                Some((idx("title"), Modifier::Autogenerate)),
            ),
            ("n", Some((idx("n"), Modifier::Set))),
            ("n+", Some((idx("n"), Modifier::Append))),
            ("n-", Some((idx("n"), Modifier::Subtract))),
            ("tags", Some((idx("tags"), Modifier::Set))),
            ("+tags", Some((idx("tags"), Modifier::Prepend))),
            ("tags+", Some((idx("tags"), Modifier::Append))),
            ("tags-", Some((idx("tags"), Modifier::Subtract))),
            ("created", None),
            ("created+", None),
            ("title+", None),
            ("+n", None),
            ("n:autogenerate", None),
            ("tags:autogenerate", None),
            ("titles", None),
            ("x", None),
            ("", None),
        ];
        for (key, want) in cases {
            assert_eq!(setter(&coll, key), want, "{key:?}");
        }
    }

    #[test]
    fn casts_match_go() {
        assert_eq!(cast_string(&serde_json::json!(12.0)), "12");
        assert_eq!(cast_string(&serde_json::json!(true)), "true");
        assert_eq!(cast_string(&serde_json::json!([1])), "");
        assert_eq!(cast_f64(&serde_json::json!("1.50")), 1.5);
        assert_eq!(cast_f64(&serde_json::json!("x")), 0.0);
        assert!(cast_bool(&serde_json::json!("t")));
        assert!(!cast_bool(&serde_json::json!("yes")));
        assert_eq!(
            unique_strings(&serde_json::json!("[\"a\",\"b\",\"a\"]")),
            vec!["a", "b"]
        );
        assert_eq!(
            unique_strings(&serde_json::json!(["", "x", 1])),
            vec!["x", "1"]
        );
    }

    #[test]
    fn autogenerate_patterns() {
        let s = autogenerate("users[0-9]{6}");
        assert_eq!(s.len(), 11);
        assert!(s.starts_with("users") && s[5..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(autogenerate("[a-z0-9]{15}").len(), 15);
    }
}

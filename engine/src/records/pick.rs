//! `fields=`: PocketBase's response picker. Like PocketBase, the response is decoded into
//! generic JSON, picked, and encoded again (so every object's keys come out sorted and
//! numbers as float64); for a list only the items are picked.

use pocketbun_query::{parse_fields, Excerpt};
use pocketbun_storage::collections::gojson;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The parsed `fields` parameter: dotted path → modifier.
pub type Picks = BTreeMap<String, Option<Excerpt>>;

/// Parses `fields` (`None` when malformed: PocketBase 0.40 then answers 400; 0.39 gave an
/// empty 200).
pub fn parse(raw: &str) -> Option<Picks> {
    let parsed = parse_fields(raw).ok()?;
    let mut out = Picks::new();
    for f in parsed {
        out.insert(f.path.join("."), f.excerpt);
    }
    Some(out)
}

/// Applies `fields` to a JSON answer as PocketBase 0.40 does for every JSON response: a
/// search result (`items` with the page keys) is picked inside `items`, anything else at
/// its root. A malformed `fields` (or a body that is not JSON) gives PocketBase's 400.
pub fn apply_to_body(body: &[u8], fields: &str) -> Result<Vec<u8>, crate::error::ApiError> {
    let failed = || crate::error::ApiError::bad_request(None);
    let picks = parse(fields).ok_or_else(failed)?;
    let mut v: Value = serde_json::from_slice(body).map_err(|e| failed().caused_by(e))?;
    let search_result = matches!(&v, Value::Object(m) if m.len() == 5
        && m.get("items").is_some_and(Value::is_array)
        && ["page", "perPage", "totalItems", "totalPages"].iter().all(|k| m.contains_key(*k)));
    let mut plans = Plans::new();
    match v.get_mut("items") {
        Some(items) if search_result => pick_value(items, &picks, &mut plans),
        _ => pick_value(&mut v, &picks, &mut plans),
    }
    let mut out = String::with_capacity(body.len());
    gojson::write_value(&mut out, &v);
    Ok(out.into_bytes())
}

/// Applies `picks` to an encoded response and re-encodes it. `list`: pick inside `items`.
pub fn apply(encoded: &str, picks: &Picks, list: bool) -> Option<String> {
    let mut v: Value = serde_json::from_str(encoded).ok()?;
    let mut plans = Plans::new();
    if list {
        if let Some(items) = v.get_mut("items") {
            pick_value(items, picks, &mut plans);
        }
    } else {
        pick_value(&mut v, picks, &mut plans);
    }
    let mut out = String::with_capacity(encoded.len());
    gojson::write_value(&mut out, &v);
    Some(out)
}

fn pick_value(v: &mut Value, picks: &Picks, plans: &mut Plans) {
    match v {
        Value::Object(m) => pick_map(m, picks, plans),
        Value::Array(items) => {
            if !matches!(items.first(), Some(Value::Object(_))) {
                return;
            }
            // one plan per key for the whole array: every item is picked the same way
            for item in items {
                if let Value::Object(m) = item {
                    pick_map(m, picks, plans);
                }
            }
        }
        _ => {}
    }
}

fn matches_key(field: &str, key: &str) -> bool {
    field == key
        || (field.len() > key.len()
            && field.starts_with(key)
            && field.as_bytes()[key.len()] == b'.')
}

/// What the picks do with one key of an object.
enum Plan {
    Remove,
    /// Kept as it is, or cut by an `excerpt` modifier.
    Keep(Option<Excerpt>),
    /// Kept, with these picks applied inside it (and their plans, shared by every value
    /// this key holds in a list).
    Nested(Picks, Plans),
}

type Plans = std::collections::HashMap<String, Plan>;

/// The picks that name `key` itself or a path inside it, in `picks` order: `key` and then the
/// `key.…` entries, which sort together between `key.` and `key/` (`/` follows `.`). A range
/// lookup, and planned once per key and nesting level for a whole response (not per
/// record): a 1 MB `fields=` used to be scanned for every key of every record of the page.
fn plan(picks: &Picks, key: &str) -> Plan {
    use std::ops::Bound;
    if let Some(m) = picks.get(key) {
        return Plan::Keep(*m);
    }
    let range = (
        Bound::Included(format!("{key}.")),
        Bound::Excluded(format!("{key}/")),
    );
    let nested: Picks = picks
        .range::<String, _>(range)
        .filter(|(f, _)| matches_key(f, key))
        .map(|(f, m)| (f[key.len() + 1..].to_string(), *m))
        .collect();
    if !nested.is_empty() {
        return Plan::Nested(nested, Plans::new());
    }
    // `*` picks every key no specific field names
    match picks.get("*") {
        Some(m) => Plan::Keep(*m),
        None => Plan::Remove,
    }
}

fn pick_map(data: &mut Map<String, Value>, picks: &Picks, plans: &mut Plans) {
    if picks.is_empty() {
        return;
    }
    let keys: Vec<String> = data.keys().cloned().collect();
    for k in keys {
        if !plans.contains_key(&k) {
            let p = plan(picks, &k);
            plans.insert(k.clone(), p);
        }
        let Some(plan) = plans.get_mut(&k) else {
            continue;
        };
        match plan {
            Plan::Remove => {
                data.remove(&k);
            }
            Plan::Keep(None) => {}
            Plan::Keep(Some(ex)) => {
                if let Some(Value::String(s)) = data.get(&k) {
                    let modified = excerpt(s, *ex);
                    data.insert(k, Value::String(modified));
                }
            }
            Plan::Nested(nested, sub) => {
                if let Some(inner) = data.get_mut(&k) {
                    pick_value(inner, nested, sub);
                }
            }
        }
    }
}

const EXCLUDE_TAGS: [&str; 19] = [
    "head", "style", "script", "iframe", "embed", "applet", "object", "svg", "img", "picture",
    "dialog", "template", "button", "form", "textarea", "input", "select", "option", "title",
];
const INLINE_TAGS: [&str; 21] = [
    "a", "abbr", "acronym", "b", "bdo", "big", "br", "button", "cite", "code", "em", "i", "label",
    "q", "small", "span", "strong", "strike", "sub", "sup", "time",
];
const VOID_TAGS: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// The `:excerpt(max, withEllipsis)` modifier: the HTML's plain text (excluded elements
/// dropped, block elements separated by spaces, whitespace collapsed), cut to `max` runes.
pub fn excerpt(html: &str, ex: Excerpt) -> String {
    let text = html_text(html);
    let result = text.trim();
    if result.len() <= ex.max || result.chars().count() <= ex.max {
        return result.to_string();
    }
    let cut: String = result.chars().take(ex.max).collect();
    let mut out = cut.trim().to_string();
    if ex.ellipsis {
        out.push_str("...");
    }
    out
}

struct TextBuilder {
    out: String,
    prev_space: bool,
}

impl TextBuilder {
    fn space(&mut self) {
        if !self.prev_space {
            self.out.push(' ');
            self.prev_space = true;
        }
    }

    fn text(&mut self, raw: &str) {
        let decoded = decode_entities(raw);
        let mut txt = String::with_capacity(decoded.len());
        let mut in_ws = false;
        for c in decoded.chars() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}') {
                if !in_ws {
                    txt.push(' ');
                }
                in_ws = true;
            } else {
                txt.push(c);
                in_ws = false;
            }
        }
        let txt = if self.prev_space {
            txt.trim_start_matches(' ')
        } else {
            &txt
        };
        if !txt.is_empty() {
            self.prev_space = txt.ends_with(' ');
            self.out.push_str(txt);
        }
    }
}

/// Plain text of an HTML fragment as PocketBase's excerpt walks the parsed document.
fn html_text(html: &str) -> String {
    // the document's <html>/<body> are block elements around everything
    let mut b = TextBuilder {
        out: String::from(" "),
        prev_space: true,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut skip: Option<(String, usize)> = None;
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip.is_none() {
                b.text(rest);
            }
            break;
        };
        let (before, after) = rest.split_at(lt);
        let next = after.as_bytes().get(1).copied().unwrap_or(0);
        let is_tag = next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?';
        if !is_tag {
            // a literal '<'
            if skip.is_none() {
                b.text(&rest[..lt + 1]);
            }
            rest = &rest[lt + 1..];
            continue;
        }
        if !before.is_empty() && skip.is_none() {
            b.text(before);
        }
        if after.starts_with("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let end = after.find('>').map_or(after.len(), |e| e + 1);
        let tag = &after[..end];
        rest = &after[end..];
        if next == b'!' || next == b'?' {
            continue;
        }
        let closing = next == b'/';
        let name: String = tag[if closing { 2 } else { 1 }..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some((sname, depth)) = skip.as_mut() {
            if *sname == name {
                if closing {
                    *depth -= 1;
                    if *depth == 0 {
                        skip = None;
                    }
                } else if !tag.ends_with("/>") {
                    *depth += 1;
                }
            }
            continue;
        }
        if name.is_empty() {
            continue;
        }
        let void = VOID_TAGS.contains(&name.as_str()) || tag.ends_with("/>");
        if closing {
            if let Some(pos) = stack.iter().rposition(|t| *t == name) {
                while stack.len() > pos {
                    let t = stack.pop().unwrap_or_default();
                    if !INLINE_TAGS.contains(&t.as_str()) {
                        b.space();
                    }
                }
            }
            continue;
        }
        if EXCLUDE_TAGS.contains(&name.as_str()) {
            if !void {
                skip = Some((name, 1));
            }
            continue;
        }
        let block = !INLINE_TAGS.contains(&name.as_str());
        if block {
            b.space();
        }
        if void {
            if block {
                b.space();
            }
        } else {
            stack.push(name);
        }
    }
    b.out
}

fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        // bytes, not a str slice: the 12th byte may fall inside a multi-byte character (found
        // by the `fields_pick` fuzz target); `;` is ASCII, so its index is a char boundary
        let semi = tail.as_bytes()[..tail.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let decoded = semi.and_then(|e| {
            let ent = &tail[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    if let Some(hex) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                    } else if let Some(dec) = ent.strip_prefix('#') {
                        dec.parse::<u32>().ok().and_then(char::from_u32)
                    } else {
                        None
                    }
                }
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str, max: usize, ellipsis: bool) -> String {
        excerpt(s, Excerpt { max, ellipsis })
    }

    #[test]
    fn excerpts() {
        assert_eq!(ex("test", 3, true), "tes...");
        assert_eq!(ex("test", 10, true), "test");
        assert_eq!(
            ex(
                "<p>Hello <b>world</b></p><p>again &amp; <script>x()</script>more</p>",
                100,
                false
            ),
            "Hello world again & more"
        );
        assert_eq!(ex("<div>a</div><div>b</div>", 100, false), "a b");
        assert_eq!(ex("  a \n\n b  ", 100, false), "a b");
    }

    #[test]
    fn picking() {
        let p = parse("id,expand.rel.title,*").unwrap();
        let out = apply(
            r#"{"items":[{"id":"x","n":1.0,"expand":{"rel":{"id":"y","title":"t"}}}],"page":1}"#,
            &parse("id,expand.rel.title").unwrap(),
            true,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"items":[{"expand":{"rel":{"title":"t"}},"id":"x"}],"page":1}"#
        );
        assert!(p.contains_key("*"));
        let out = apply(r#"{"b":1,"a":{"z":1,"y":2}}"#, &parse("*").unwrap(), false).unwrap();
        assert_eq!(out, r#"{"a":{"y":2,"z":1},"b":1}"#);
    }
}

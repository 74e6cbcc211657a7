//! View collections: creating/dropping the SQL view and inferring the
//! view's fields from its select query the way PocketBase does (columns
//! that map to a collection field clone that field; `count()`, `total()`
//! and `cast(... as type)` give number/text/bool fields; anything else is a
//! `json` field; `id` is the primary key text field).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use rusqlite::Connection;

use super::fields::{add_field, Field, FieldKind, FIELD_ID};
use super::model::Collection;
use crate::random;

/// A view query problem, with PocketBase's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewError(pub String);

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ViewError {}

impl From<rusqlite::Error> for ViewError {
    fn from(e: rusqlite::Error) -> Self {
        ViewError(e.to_string())
    }
}

type VResult<T> = std::result::Result<T, ViewError>;

const WHITESPACE: [char; 8] = ['\t', '\n', '\x0b', '\x0c', '\r', ' ', '\u{85}', '\u{a0}'];

/// PocketBase's SQL-ish tokenizer: splits on `seps` outside quotes and
/// parentheses, trims non-separator whitespace, drops empty tokens.
pub fn tokenize(s: &str, seps: &[char], keep_sep: bool) -> VResult<Vec<String>> {
    let cutset: Vec<char> = WHITESPACE
        .iter()
        .copied()
        .filter(|c| !seps.contains(c))
        .collect();
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let mut buf = String::new();
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut prev: Option<char> = None;
        for ch in chars.by_ref() {
            if prev != Some('\\') {
                if ch == '(' && quote.is_none() {
                    depth += 1;
                } else if ch == ')' && depth > 0 && quote.is_none() {
                    depth -= 1;
                } else if matches!(ch, '\'' | '"' | '`') {
                    match quote {
                        Some(q) if q == ch => quote = None,
                        None => quote = Some(ch),
                        _ => {}
                    }
                }
            }
            if seps.contains(&ch) && depth == 0 && quote.is_none() {
                if keep_sep {
                    buf.push(ch);
                }
                break;
            }
            prev = Some(ch);
            buf.push(ch);
        }
        if depth > 0 || quote.is_some() {
            return Err(ViewError(format!(
                "unbalanced parenthesis or quoted expression: {buf:?}"
            )));
        }
        let t = buf.trim_matches(cutset.as_slice());
        if !t.is_empty() {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Trims the query and refuses more than one statement.
pub fn normalize_view_select_query(query: &str) -> VResult<String> {
    let q = query.trim().trim_matches(';').to_string();
    if tokenize(&q, &[';'], false)?.len() > 1 {
        return Err(ViewError(
            "multiple statements are not supported".to_string(),
        ));
    }
    Ok(q)
}

/// `DROP VIEW IF EXISTS`.
pub fn delete_view(conn: &Connection, name: &str) -> VResult<()> {
    conn.execute_batch(&format!("DROP VIEW IF EXISTS {}", crate::Ident(name)))?;
    Ok(())
}

/// (Re)creates view `name` as `SELECT * FROM (query)` and checks it can
/// be introspected.
pub fn save_view(conn: &Connection, name: &str, query: &str) -> VResult<()> {
    delete_view(conn, name)?;
    let q = normalize_view_select_query(query)?;
    conn.execute_batch(&format!(
        "CREATE VIEW {} AS SELECT * FROM ({q})",
        crate::Ident(name)
    ))?;
    if let Err(e) = table_info(conn, name) {
        let _ = delete_view(conn, name);
        return Err(e);
    }
    Ok(())
}

/// `(name, declared type)` of a table's or view's columns.
pub fn table_info(conn: &Connection, name: &str) -> VResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", crate::Ident(name)))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if rows.is_empty() {
        return Err(ViewError(format!("empty table info for {name}")));
    }
    Ok(rows)
}

fn query_table_info(conn: &Connection, query: &str) -> VResult<Vec<(String, String)>> {
    let temp = format!(
        "_temp_{}",
        random::random_string_with_alphabet(6, random::ALNUM_ALPHABET)
    );
    conn.execute_batch("SAVEPOINT pb_view_info")?;
    let result = save_view(conn, &temp, query).and_then(|()| {
        let info = table_info(conn, &temp);
        delete_view(conn, &temp)?;
        info
    });
    // the temporary view never outlives the probe
    let _ = conn.execute_batch("ROLLBACK TO pb_view_info; RELEASE pb_view_info");
    result
}

#[derive(Debug, Clone, Default)]
struct Ident {
    original: String,
    alias: String,
}

fn trim_raw_identifier(raw: &str, extra: &[char]) -> String {
    let mut trim: Vec<char> = vec!['`', '"', '[', ']', ';'];
    trim.extend_from_slice(extra);
    raw.split('.')
        .map(|p| p.trim_matches(trim.as_slice()))
        .collect::<Vec<_>>()
        .join(".")
}

fn ident_from_parts(parts: &[String]) -> VResult<Ident> {
    let mut id = match parts.len() {
        3 => {
            if !parts[1].eq_ignore_ascii_case("as") {
                return Err(ViewError(format!(
                    "invalid identifier part - expected \"as\", got {}",
                    parts[1]
                )));
            }
            Ident {
                original: parts[0].clone(),
                alias: parts[2].clone(),
            }
        }
        2 => Ident {
            original: parts[0].clone(),
            alias: parts[1].clone(),
        },
        1 => Ident {
            original: parts[0].clone(),
            alias: parts[0].rsplit('.').next().unwrap_or("").to_string(),
        },
        _ => {
            return Err(ViewError(format!(
                "invalid identifier parts [{}]",
                parts.join(" ")
            )))
        }
    };
    id.original = trim_raw_identifier(&id.original, &[]);
    id.alias = trim_raw_identifier(&id.alias, &['\'']);
    Ok(id)
}

fn extract_identifiers(raw: &str) -> VResult<Vec<Ident>> {
    let mut out = Vec::new();
    for item in tokenize(raw, &[','], false)? {
        let parts = tokenize(&item, &[' ', '\n', '\t'], false)?;
        out.push(ident_from_parts(&parts)?);
    }
    Ok(out)
}

fn regexes() -> &'static (Regex, Regex, Regex, Regex) {
    static RE: OnceLock<(Regex, Regex, Regex, Regex)> = OnceLock::new();
    RE.get_or_init(|| {
        (
            Regex::new(r"(?im)\s+(full\s+outer\s+join|left\s+outer\s+join|right\s+outer\s+join|full\s+join|cross\s+join|inner\s+join|outer\s+join|left\s+join|right\s+join|join)\s+?").expect("join re"),
            Regex::new(r"(?im)\s+(where|group\s+by|having|order|limit|with)\s+?").expect("discard re"),
            Regex::new(r"(?m)(/\*[\s\S]*?\*/)|(--.+$)").expect("comments re"),
            Regex::new(r"(?is)^cast\s*\(.*\s+as\s+(\w+)\s*\)$").expect("cast re"),
        )
    })
}

/// Columns and tables (`FROM` first, then joins) named by a select query.
fn parse_identifiers(query: &str) -> VResult<(Vec<Ident>, Vec<Ident>)> {
    let (join_re, discard_re, comments_re, _) = regexes();
    let s = query.trim().trim_matches(';');
    let s = comments_re.replace_all(s, " ");
    let s = join_re.replace_all(&s, " __pb_join__ ");
    let s = discard_re.replace_all(&s, " __pb_discard__ ");
    let mut skip = false;
    let mut part = "";
    let (mut select, mut from, mut join) = (String::new(), String::new(), String::new());
    for token in tokenize(&s, &[',', ' ', '\n', '\t'], true)? {
        let trimmed = token.trim().to_lowercase();
        match trimmed.as_str() {
            "select" => {
                skip = false;
                part = "select";
            }
            "distinct" => continue,
            "from" => {
                skip = false;
                part = "from";
            }
            "__pb_join__" => {
                skip = false;
                if part == "join" {
                    join.push(',');
                }
                part = "join";
            }
            "__pb_discard__" => skip = true,
            _ => {
                if part == "join" && trimmed == "on" {
                    skip = true;
                }
                let target = match part {
                    "select" => &mut select,
                    "from" => &mut from,
                    "join" => &mut join,
                    _ => continue,
                };
                if !skip {
                    target.push(' ');
                    target.push_str(&token);
                }
            }
        }
    }
    let columns = extract_identifiers(&select)?;
    let mut tables = extract_identifiers(&from)?;
    tables.extend(extract_identifiers(&join)?);
    Ok((columns, tables))
}

/// Where the view column `alias` of `query` is read from: the `(table, column)` of a plain
/// `[table.]column` select item (the table as the query names it, resolved from its alias).
pub fn view_column_source(query: &str, alias: &str) -> Option<(String, String)> {
    let (columns, tables) = parse_identifiers(query).ok()?;
    let col = columns
        .iter()
        .find(|c| c.alias == alias && !c.original.contains('('))?;
    let parts: Vec<&str> = col.original.split('.').collect();
    let (table_alias, column) = match parts.as_slice() {
        [t, c] => (*t, *c),
        [c] => (tables.first()?.alias.as_str(), *c),
        _ => return None,
    };
    let table = tables
        .iter()
        .find(|t| !t.alias.contains('(') && t.alias == table_alias)?;
    Some((table.original.clone(), column.to_string()))
}

fn default_view_id_field() -> Field {
    let mut f = Field::new(
        FIELD_ID,
        FieldKind::Text {
            min: 0,
            max: 0,
            pattern: "^[a-z0-9]+$".to_string(),
            autogenerate_pattern: String::new(),
            primary_key: true,
        },
    );
    f.system = true;
    f.required = true;
    f
}

fn default_view_field(name: &str) -> Field {
    if name == FIELD_ID {
        return default_view_id_field();
    }
    Field::new(name, FieldKind::Json { max_size: 1 })
}

fn number_field(name: &str, only_int: bool) -> Field {
    Field::new(
        name,
        FieldKind::Number {
            min: None,
            max: None,
            only_int,
        },
    )
}

/// Field suggestions per column alias.
fn parse_query_to_fields(
    collections: &[Collection],
    query: &str,
) -> VResult<HashMap<String, Field>> {
    let (columns, tables) = parse_identifiers(query)?;
    let mut by_alias: HashMap<&str, &Collection> = HashMap::new();
    for t in &tables {
        if t.alias.contains('(') {
            continue;
        }
        if let Some(c) = collections.iter().find(|c| c.name == t.original) {
            by_alias.insert(&t.alias, c);
        }
    }
    let main_alias = tables.first().map(|t| t.alias.as_str()).unwrap_or("");
    let cast_re = &regexes().3;
    let mut out = HashMap::new();
    for col in &columns {
        if col.alias == "*" {
            return Err(ViewError("wildcard columns (*) are not supported - manually type the collection field names you want the view query to have".to_string()));
        }
        let lower = col.original.to_lowercase();
        let alias = col.alias.as_str();
        let field = if alias == FIELD_ID {
            default_view_id_field()
        } else if lower.starts_with("count(") {
            number_field(alias, true)
        } else if lower.starts_with("total(") {
            number_field(alias, false)
        } else if let Some(kind) = cast_re
            .captures(&lower)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string())
            .filter(|k| {
                matches!(
                    k.as_str(),
                    "real"
                        | "decimal"
                        | "numeric"
                        | "int"
                        | "integer"
                        | "text"
                        | "boolean"
                        | "bool"
                )
            })
        {
            match kind.as_str() {
                "real" | "decimal" | "numeric" => number_field(alias, false),
                "int" | "integer" => number_field(alias, true),
                "text" => Field::new(
                    alias,
                    FieldKind::zero("text").expect("text is a field type"),
                ),
                _ => Field::new(alias, FieldKind::Bool),
            }
        } else {
            let parts: Vec<&str> = col.original.split('.').collect();
            let (field_name, coll) = if parts.len() == 2 {
                (parts[1], by_alias.get(parts[0]).copied())
            } else {
                (parts[0], by_alias.get(main_alias).copied())
            };
            match coll {
                None => default_view_field(alias),
                Some(c) => match c
                    .fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(field_name))
                {
                    None => default_view_field(alias),
                    Some(_) if field_name.eq_ignore_ascii_case(FIELD_ID) => Field::new(
                        alias,
                        FieldKind::Relation {
                            collection_id: c.id.clone(),
                            cascade_delete: false,
                            min_select: 0,
                            max_select: 1,
                        },
                    ),
                    Some(orig) => {
                        let mut clone = orig.clone();
                        clone.id = format!(
                            "_clone_{}",
                            random::random_string_with_alphabet(4, random::ALNUM_ALPHABET)
                        );
                        clone.name = alias.to_string();
                        clone
                    }
                },
            }
        };
        out.insert(col.alias.clone(), field);
    }
    Ok(out)
}

/// Infers a view's fields from `query` (run inside the write transaction:
/// a temporary view is created and dropped to read the result columns).
pub fn create_view_fields(
    conn: &Connection,
    collections: &[Collection],
    query: &str,
) -> VResult<Vec<Field>> {
    let mut list = Vec::new();
    create_view_fields_into(conn, collections, query, &mut list)?;
    Ok(list)
}

/// Like [`create_view_fields`] but keeps the fields inferred before an
/// error (PocketBase validates that partial list).
pub fn create_view_fields_into(
    conn: &Connection,
    collections: &[Collection],
    query: &str,
    list: &mut Vec<Field>,
) -> VResult<()> {
    let mut suggested = parse_query_to_fields(collections, query)?;
    let info = query_table_info(conn, query)?;
    let mut has_id = false;
    for (name, _) in &info {
        if name == FIELD_ID {
            has_id = true;
        }
        let field = suggested
            .remove(name)
            .unwrap_or_else(|| default_view_field(name));
        add_field(list, field);
    }
    if !has_id {
        return Err(ViewError("missing required id column (you can use `(ROW_NUMBER() OVER()) as id` if you don't have one)".to_string()));
    }
    Ok(())
}

/// Wraps the query so that its `id` column is TEXT, when it is not.
pub fn normalize_view_query_id(conn: &Connection, query: &str) -> VResult<String> {
    let query = query.trim().trim_matches(';');
    let info = query_table_info(conn, query)?;
    if info
        .iter()
        .any(|(n, t)| n.eq_ignore_ascii_case(FIELD_ID) && t.eq_ignore_ascii_case("TEXT"))
    {
        return Ok(query.to_string());
    }
    let (columns, _) = parse_identifiers(query)?;
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            if c.alias == FIELD_ID {
                format!("CAST(`{0}` as TEXT) `{0}`", c.alias)
            } else {
                format!("`{}`", c.alias)
            }
        })
        .collect();
    Ok(format!("SELECT {} FROM ({query})", cols.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_like_pocketbase() {
        assert_eq!(
            tokenize("a, b(c, d), 'e,f'", &[','], false).unwrap(),
            vec!["a", "b(c, d)", "'e,f'"]
        );
        assert!(tokenize("a(b", &[','], false).is_err());
        assert_eq!(
            normalize_view_select_query(" select 1; ").unwrap(),
            "select 1"
        );
        assert!(normalize_view_select_query("select 1; select 2").is_err());
    }

    #[test]
    fn finds_view_column_sources() {
        let q = "SELECT a.id, b.file as f, doc, count(*) total FROM demo a LEFT JOIN other b ON a.x = b.y";
        assert_eq!(
            view_column_source(q, "f"),
            Some(("other".to_string(), "file".to_string()))
        );
        assert_eq!(
            view_column_source(q, "doc"),
            Some(("demo".to_string(), "doc".to_string()))
        );
        assert_eq!(view_column_source(q, "total"), None);
        assert_eq!(view_column_source(q, "missing"), None);
    }

    #[test]
    fn parses_identifiers() {
        let (cols, tables) = parse_identifiers(
            "SELECT a.id, b.name as n, count(*) total FROM demo a LEFT JOIN other b ON a.x = b.y WHERE 1 = 1",
        )
        .unwrap();
        let c: Vec<(&str, &str)> = cols
            .iter()
            .map(|i| (i.original.as_str(), i.alias.as_str()))
            .collect();
        assert_eq!(
            c,
            vec![("a.id", "id"), ("b.name", "n"), ("count(*)", "total")]
        );
        let t: Vec<(&str, &str)> = tables
            .iter()
            .map(|i| (i.original.as_str(), i.alias.as_str()))
            .collect();
        assert_eq!(t, vec![("demo", "a"), ("other", "b")]);
    }
}

//! Parsing and rebuilding `CREATE INDEX` statements the way PocketBase
//! reads a collection's `indexes`.

use std::sync::OnceLock;

use regex::Regex;

/// One indexed column or expression.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexColumn {
    /// Identifier or expression.
    pub name: String,
    /// `COLLATE` name.
    pub collate: String,
    /// `ASC` / `DESC` / empty.
    pub sort: String,
}

/// A parsed `CREATE INDEX`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedIndex {
    /// Schema prefix.
    pub schema_name: String,
    /// Index name.
    pub index_name: String,
    /// Table name.
    pub table_name: String,
    /// `WHERE` expression.
    pub where_expr: String,
    /// Columns.
    pub columns: Vec<IndexColumn>,
    /// `UNIQUE`.
    pub unique: bool,
    /// `IF NOT EXISTS`.
    pub optional: bool,
}

const TRIM: &[char] = &[
    '`', '"', '\'', '[', ']', '\r', '\n', '\t', '\x0c', '\x0b', ' ',
];

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS]`; the rest is read by hand (a regex cannot find
/// the parenthesis that closes the column list when the `WHERE` has parentheses too).
fn index_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)create\s+(unique\s+)?\s*index\s*(if\s+not\s+exists\s+)?")
            .expect("index regex")
    })
}

/// The characters of `s` outside quoted parts (`` `…` ``, `"…"`, `'…'`, `[…]`) with their
/// byte offsets; the quote marks themselves are not yielded.
fn unquoted(s: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quote: Option<char> = None;
    s.char_indices().filter(move |&(_, c)| {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            return false;
        }
        quote = match c {
            '`' | '"' | '\'' => Some(c),
            '[' => Some(']'),
            _ => return true,
        };
        false
    })
}

/// Reads an identifier token from the start of `s` (after whitespace): quoted parts are taken
/// whole, the token ends at whitespace, or at `(` when `stop_at_paren`. Returns the token and
/// the rest.
fn read_token(s: &str, stop_at_paren: bool) -> (&str, &str) {
    let s = s.trim_start();
    match unquoted(s).find(|&(_, c)| c.is_whitespace() || (stop_at_paren && c == '(')) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// With `s` starting at `(`: the text inside it up to its matching `)` (quotes and nested
/// parentheses respected), and the rest after the `)`. `None` when it never closes.
fn balanced(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, c) in unquoted(s) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some((&s[1..i], &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

fn column_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?im)^([\s\S]+?)(?:\s+collate\s+([\w]+))?(?:\s+(asc|desc))?$")
            .expect("column regex")
    })
}

/// Splits `s` on `sep` outside quotes, brackets and parentheses; parts are
/// trimmed and empty ones dropped.
pub fn split_top_level(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut push = |part: &str| {
        let t = part.trim();
        if !t.is_empty() {
            parts.push(t.to_string());
        }
    };
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in unquoted(s) {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    push(&s[start..]);
    parts
}

impl ParsedIndex {
    /// Parses `raw`; an unparseable statement gives an invalid (empty) index.
    ///
    /// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [schema.]name ON table (columns) [WHERE expr]`,
    /// with the column list taken up to its matching parenthesis, so a `WHERE` may hold
    /// parentheses and function calls, and `table(col)` needs no space (PocketBase 0.40.1).
    pub fn parse(raw: &str) -> ParsedIndex {
        let mut out = ParsedIndex::default();
        let Some(m) = index_re().captures(raw) else {
            return out;
        };
        let g = |i: usize| m.get(i).map(|x| x.as_str()).unwrap_or("");
        let unique = !g(1).trim().is_empty();
        let optional = !g(2).trim().is_empty();
        let rest = &raw[m.get(0).map_or(0, |x| x.end())..];
        let (name, rest) = read_token(rest, false);
        let rest = rest.trim_start();
        let on = rest.get(..2).filter(|k| k.eq_ignore_ascii_case("on"));
        let after_on = &rest[on.map_or(0, |_| 2)..];
        if on.is_none() || name.is_empty() || !after_on.starts_with(char::is_whitespace) {
            return out;
        }
        let (table, rest) = read_token(after_on, true);
        let Some((columns, rest)) = balanced(rest.trim_start()) else {
            return out;
        };
        out.unique = unique;
        out.optional = optional;
        let name_parts = split_top_level(name, '.');
        if name_parts.len() == 2 {
            out.schema_name = name_parts[0].trim_matches(TRIM).to_string();
            out.index_name = name_parts[1].trim_matches(TRIM).to_string();
        } else if let Some(first) = name_parts.first() {
            out.index_name = first.trim_matches(TRIM).to_string();
        }
        out.table_name = table.trim_matches(TRIM).to_string();
        for col in split_top_level(columns, ',') {
            let Some(cm) = column_re().captures(&col) else {
                continue;
            };
            let name = cm
                .get(1)
                .map(|x| x.as_str())
                .unwrap_or("")
                .trim_matches(TRIM);
            if name.is_empty() {
                continue;
            }
            out.columns.push(IndexColumn {
                name: name.to_string(),
                collate: cm
                    .get(2)
                    .map(|x| x.as_str().trim())
                    .unwrap_or("")
                    .to_string(),
                sort: cm
                    .get(3)
                    .map(|x| x.as_str().to_uppercase())
                    .unwrap_or_default(),
            });
        }
        let rest = rest.trim_start();
        if let Some(kw) = rest.get(..5).filter(|k| k.eq_ignore_ascii_case("where")) {
            let expr = &rest[kw.len()..];
            if expr.is_empty() || expr.starts_with(|c: char| c.is_whitespace() || c == '(') {
                out.where_expr = expr.trim().to_string();
            }
        }
        out
    }

    /// Has a name, a table and at least one column.
    pub fn is_valid(&self) -> bool {
        !self.index_name.is_empty() && !self.table_name.is_empty() && !self.columns.is_empty()
    }

    /// Rebuilds the statement in PocketBase's normalised form (`""` when invalid).
    pub fn build(&self) -> String {
        if !self.is_valid() {
            return String::new();
        }
        let mut s = String::from("CREATE ");
        if self.unique {
            s.push_str("UNIQUE ");
        }
        s.push_str("INDEX ");
        if self.optional {
            s.push_str("IF NOT EXISTS ");
        }
        if !self.schema_name.is_empty() {
            s.push('`');
            s.push_str(&self.schema_name);
            s.push_str("`.");
        }
        s.push('`');
        s.push_str(&self.index_name);
        s.push_str("` ON `");
        s.push_str(&self.table_name);
        s.push_str("` (");
        let multi = self.columns.len() > 1;
        if multi {
            s.push_str("\n  ");
        }
        let mut has = false;
        for col in &self.columns {
            let name = col.name.trim();
            if name.is_empty() {
                continue;
            }
            if has {
                s.push_str(",\n  ");
            }
            if col.name.contains('(') || col.name.contains(' ') {
                s.push_str(name);
            } else {
                s.push('`');
                s.push_str(name);
                s.push('`');
            }
            if !col.collate.is_empty() {
                s.push_str(" COLLATE ");
                s.push_str(&col.collate);
            }
            if !col.sort.is_empty() {
                s.push(' ');
                s.push_str(&col.sort.to_uppercase());
            }
            has = true;
        }
        if has && multi {
            s.push('\n');
        }
        s.push(')');
        if !self.where_expr.is_empty() {
            s.push_str(" WHERE ");
            s.push_str(&self.where_expr);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_builds() {
        let p = ParsedIndex::parse(
            "CREATE UNIQUE INDEX `__pb_users_auth__email_idx` ON `users` (email) WHERE email != ''",
        );
        assert!(p.unique && p.is_valid());
        assert_eq!(p.index_name, "__pb_users_auth__email_idx");
        assert_eq!(p.table_name, "users");
        assert_eq!(p.columns[0].name, "email");
        assert_eq!(p.where_expr, "email != ''");
        assert_eq!(
            p.build(),
            "CREATE UNIQUE INDEX `__pb_users_auth__email_idx` ON `users` (`email`) WHERE email != ''"
        );
        let m = ParsedIndex::parse("create index idx1 on demo (a collate nocase desc, lower(b))");
        assert_eq!(m.columns.len(), 2);
        assert_eq!(m.columns[0].collate, "nocase");
        assert_eq!(m.columns[0].sort, "DESC");
        assert_eq!(m.columns[1].name, "lower(b)");
        assert_eq!(
            m.build(),
            "CREATE INDEX `idx1` ON `demo` (\n  `a` COLLATE nocase DESC,\n  lower(b)\n)"
        );
        assert!(!ParsedIndex::parse("nonsense").is_valid());
    }

    /// PocketBase 0.40.1: a `WHERE` with parentheses, and names next to parentheses.
    #[test]
    fn where_clauses_may_hold_parentheses() {
        let p = ParsedIndex::parse(
            "CREATE INDEX `idx_w1` ON `demo2` (`title`) WHERE (`title` != '' AND (`active` = 1))",
        );
        assert!(p.is_valid());
        assert_eq!(p.columns.len(), 1);
        assert_eq!(p.columns[0].name, "title");
        assert_eq!(p.where_expr, "(`title` != '' AND (`active` = 1))");
        let p = ParsedIndex::parse(
            "CREATE UNIQUE INDEX idx_w2 ON demo2 (title) WHERE length(title) > 3",
        );
        assert_eq!(
            (
                p.index_name.as_str(),
                p.table_name.as_str(),
                p.where_expr.as_str()
            ),
            ("idx_w2", "demo2", "length(title) > 3")
        );
        let p = ParsedIndex::parse("CREATE INDEX idx_n1 ON demo2(title)");
        assert_eq!((p.table_name.as_str(), p.columns.len()), ("demo2", 1));
        let p = ParsedIndex::parse("CREATE INDEX idx_n3 ON demo2 (title) WHERE title != ')'");
        assert_eq!(p.where_expr, "title != ')'");
        let p = ParsedIndex::parse("CREATE INDEX idx_n4 ON demo2 ((title || 'x'))");
        assert_eq!(p.columns[0].name, "(title || 'x')");
        let p = ParsedIndex::parse("CREATE INDEX `a b`.`c(d` ON \"t t\" (x)");
        assert_eq!(
            (p.schema_name.as_str(), p.index_name.as_str()),
            ("a b", "c(d")
        );
        assert_eq!(p.table_name, "t t");
        assert!(!ParsedIndex::parse("CREATE INDEX ON demo2 (title)").is_valid());
        assert!(!ParsedIndex::parse("CREATE INDEX i ON t (a").is_valid());
        assert!(!ParsedIndex::parse("CREATE INDEX i ON t").is_valid());
    }
}

//! One way to put a name into SQL: [`Ident`] writes it as a backtick-quoted SQLite
//! identifier, a backtick inside doubled. Collection and field names come from
//! `_collections`, so they are data, never SQL; every statement built with a name quotes it
//! through this type.

use std::fmt;

/// `name` as a quoted SQLite identifier, written by `Display` without allocating
/// (`format!("SELECT * FROM {}", Ident(&coll.name))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident<'a>(pub &'a str);

impl Ident<'_> {
    /// Appends the quoted name to `sql`.
    pub fn push_to(self, sql: &mut String) {
        sql.reserve(self.0.len() + 2);
        sql.push('`');
        for c in self.0.chars() {
            if c == '`' {
                sql.push('`');
            }
            sql.push(c);
        }
        sql.push('`');
    }
}

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for (i, part) in self.0.split('`').enumerate() {
            if i > 0 {
                f.write_str("``")?;
            }
            f.write_str(part)?;
        }
        f.write_str("`")
    }
}

#[cfg(test)]
mod tests {
    use super::Ident;

    #[test]
    fn quotes_and_doubles_backticks() {
        for (name, quoted) in [
            ("posts", "`posts`"),
            ("a`b", "`a``b`"),
            ("``", "``````"),
            ("ünï", "`ünï`"),
            ("", "``"),
        ] {
            assert_eq!(Ident(name).to_string(), quoted);
            let mut out = String::from("x ");
            Ident(name).push_to(&mut out);
            assert_eq!(out, format!("x {quoted}"));
        }
    }

    #[test]
    fn quoted_name_is_one_identifier_to_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let name = "we`ird; DROP TABLE x --";
        conn.execute_batch(&format!("CREATE TABLE {} (v)", Ident(name)))
            .unwrap();
        let found: String = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, name);
    }
}

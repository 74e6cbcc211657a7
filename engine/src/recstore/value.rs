//! The one value pair every record bind and every loaded column goes through: [`SqlVal`]
//! (owned: a loaded record's values, a draft's stored form, the values a writer job binds)
//! and [`SqlRef`] (borrowed from a row, a [`SqlVal`] or a compiled query's parameter). Both
//! are SQLite parameters ([`ToSql`]) that bind without a copy of their text; the query
//! compiler's parameters ([`QValue`]) become one in exactly one place, [`SqlRef::from`].
//!
//! `serde_json::Value` stays the wire type and `pocketbun_query::Value` the compiler's
//! output (the query crate knows no SQLite types); rusqlite's own `Value` is not used for
//! record data.

use pocketbun_query::Value as QValue;
use pocketbun_storage::collections::gojson;
use pocketbun_storage::rusqlite::types::{ToSqlOutput, ValueRef};
use pocketbun_storage::rusqlite::{self, ToSql};
use std::borrow::Cow;

/// A stored column value, as SQLite returned it or as a write stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlVal {
    Null,
    Int(i64),
    Real(f64),
    Text(Box<str>),
}

impl SqlVal {
    pub fn from_ref(v: ValueRef<'_>) -> SqlVal {
        match v {
            ValueRef::Null => SqlVal::Null,
            ValueRef::Integer(i) => SqlVal::Int(i),
            ValueRef::Real(f) => SqlVal::Real(f),
            ValueRef::Text(t) | ValueRef::Blob(t) => SqlVal::Text(match std::str::from_utf8(t) {
                Ok(s) => s.into(),
                Err(_) => String::from_utf8_lossy(t).into(),
            }),
        }
    }

    /// The value as the string Go's `database/sql` scans it into (`NullString`).
    pub fn as_text(&self) -> Cow<'_, str> {
        self.borrow().as_text()
    }

    pub fn borrow(&self) -> SqlRef<'_> {
        match self {
            SqlVal::Null => SqlRef::Null,
            SqlVal::Int(i) => SqlRef::Int(*i),
            SqlVal::Real(f) => SqlRef::Real(*f),
            SqlVal::Text(s) => SqlRef::Text(s),
        }
    }
}

impl From<String> for SqlVal {
    fn from(s: String) -> SqlVal {
        SqlVal::Text(s.into_boxed_str())
    }
}

impl From<&str> for SqlVal {
    fn from(s: &str) -> SqlVal {
        SqlVal::Text(s.into())
    }
}

impl From<i64> for SqlVal {
    fn from(i: i64) -> SqlVal {
        SqlVal::Int(i)
    }
}

impl From<bool> for SqlVal {
    /// As SQLite stores a Go bool: 0 or 1.
    fn from(b: bool) -> SqlVal {
        SqlVal::Int(i64::from(b))
    }
}

/// A stored value borrowed from its row (written straight to JSON), from a [`SqlVal`] or
/// from a compiled query's parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> SqlRef<'a> {
    /// `None` for text that is not UTF-8: only [`SqlVal::from_ref`] repairs that.
    pub fn from_value(v: ValueRef<'a>) -> Option<SqlRef<'a>> {
        Some(match v {
            ValueRef::Null => SqlRef::Null,
            ValueRef::Integer(i) => SqlRef::Int(i),
            ValueRef::Real(f) => SqlRef::Real(f),
            ValueRef::Text(t) | ValueRef::Blob(t) => SqlRef::Text(std::str::from_utf8(t).ok()?),
        })
    }

    /// The value as the string Go's `database/sql` scans it into (`NullString`).
    pub fn as_text(&self) -> Cow<'a, str> {
        match *self {
            SqlRef::Null => "".into(),
            SqlRef::Int(i) => i.to_string().into(),
            SqlRef::Real(f) => {
                // Go's `strconv.FormatFloat(f, 'g', -1, 64)`-like text of a REAL value
                let mut s = String::new();
                gojson::write_f64(&mut s, f);
                s.into()
            }
            SqlRef::Text(s) => s.into(),
        }
    }

    /// The value as SQLite's borrowed value (text bound as it is, never copied first).
    pub fn value_ref(self) -> ValueRef<'a> {
        match self {
            SqlRef::Null => ValueRef::Null,
            SqlRef::Int(i) => ValueRef::Integer(i),
            SqlRef::Real(f) => ValueRef::Real(f),
            SqlRef::Text(s) => ValueRef::Text(s.as_bytes()),
        }
    }
}

/// The compiler's parameter as a bind: the one conversion from `pocketbun_query::Value`.
impl<'a> From<&'a QValue> for SqlRef<'a> {
    fn from(v: &'a QValue) -> SqlRef<'a> {
        match v {
            QValue::Null => SqlRef::Null,
            QValue::Integer(i) => SqlRef::Int(*i),
            QValue::Real(f) => SqlRef::Real(*f),
            QValue::Text(s) => SqlRef::Text(s),
        }
    }
}

impl ToSql for SqlRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.value_ref()))
    }
}

impl ToSql for SqlVal {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.borrow().value_ref()))
    }
}

/// The values of `params` the statement takes (`count`, its parameter count), borrowed: a
/// compiled rule may carry parameters its SQL no longer references (values it was
/// specialised on), and `?N` numbering is dense up to the highest one used.
pub fn bound(
    params: &[QValue],
    count: usize,
) -> rusqlite::ParamsFromIter<impl Iterator<Item = SqlRef<'_>>> {
    rusqlite::params_from_iter(params[..count.min(params.len())].iter().map(SqlRef::from))
}

/// All of `params`, borrowed (a statement built for exactly these parameters).
pub fn all(params: &[QValue]) -> rusqlite::ParamsFromIter<impl Iterator<Item = SqlRef<'_>>> {
    rusqlite::params_from_iter(params.iter().map(SqlRef::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pocketbun_storage::rusqlite::Connection;

    /// Each kind binds as itself and reads back the same, owned or borrowed, from a query
    /// parameter or a stored value.
    #[test]
    fn values_bind_as_themselves() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "SELECT ?1, typeof(?1)";
        let read = |v: &dyn ToSql| -> (SqlVal, String) {
            conn.query_row(sql, [v], |r| {
                Ok((SqlVal::from_ref(r.get_ref(0)?), r.get(1)?))
            })
            .unwrap()
        };
        let cases = [
            (QValue::Null, SqlVal::Null, "null"),
            (QValue::Integer(-7), SqlVal::Int(-7), "integer"),
            (QValue::Real(1.5), SqlVal::Real(1.5), "real"),
            (
                QValue::Text("é x".into()),
                SqlVal::Text("é x".into()),
                "text",
            ),
        ];
        for (q, owned, kind) in cases {
            assert_eq!(read(&SqlRef::from(&q)), (owned.clone(), kind.to_string()));
            assert_eq!(read(&owned), (owned.clone(), kind.to_string()));
            assert_eq!(read(&owned.borrow()), (owned.clone(), kind.to_string()));
        }
        assert_eq!(SqlVal::from(true), SqlVal::Int(1));
        assert_eq!(SqlVal::from("a".to_string()), SqlVal::Text("a".into()));
    }

    #[test]
    fn bound_takes_what_the_statement_counts() {
        let conn = Connection::open_in_memory().unwrap();
        let params = [QValue::Integer(2), QValue::Text("unused".into())];
        let mut stmt = conn.prepare("SELECT ?1 * 3").unwrap();
        let k = stmt.parameter_count();
        let n: i64 = stmt.query_row(bound(&params, k), |r| r.get(0)).unwrap();
        assert_eq!(n, 6);
        let n: i64 = conn
            .query_row("SELECT ?1 + length(?2)", all(&params), |r| r.get(0))
            .unwrap();
        assert_eq!(n, 8);
    }

    #[test]
    fn text_as_go_scans_it() {
        assert_eq!(SqlRef::Int(3).as_text(), "3");
        assert_eq!(SqlRef::Real(2.0).as_text(), "2");
        assert_eq!(SqlRef::Real(0.5).as_text(), "0.5");
        assert_eq!(SqlRef::Null.as_text(), "");
    }
}

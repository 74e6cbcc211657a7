//! Records as the read API serves them: rows loaded into an arena of [`Rec`]s, the
//! per-request visibility flags PocketBase resolves for them, relation expansion, and
//! Go-exact JSON output (with the `fields` picker applied last).
//!
//! * [`value`] — a stored column value turned into PocketBase's typed field value.
//! * [`json`] — a record's JSON: keys sorted as Go's map encoding sorts them, hidden
//!   fields and emails left out unless the caller may see them.
//! * [`access`] — who is calling: the request info `@request.*` reads, the auth record's
//!   full row, the email-visibility flags (owner, superuser, `manageRule`).
//! * [`expand`] — `expand=` with PocketBase's semantics, one query per relation per level.
//! * [`pick`] — `fields=` (with `:excerpt`), as PocketBase's response picker does it.
//! * [`write`], [`validate`], [`files`], [`save`] — the write path: request data onto a
//!   record (modifiers), PocketBase's validation codes, uploads, create/update/delete.

pub mod access;
pub mod expand;
pub mod files;
pub mod json;
pub mod pick;
pub mod save;
pub mod validate;
pub mod value;
pub mod write;

use pocketbun_query::Value as QValue;
use pocketbun_storage::collections::Collection;
use pocketbun_storage::rusqlite::types::ValueRef;
use pocketbun_storage::rusqlite::{self, Statement};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A stored column value, as SQLite returned it.
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
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            SqlVal::Null => "".into(),
            SqlVal::Int(i) => i.to_string().into(),
            SqlVal::Real(f) => value::go_float_string(*f).into(),
            SqlVal::Text(s) => (&**s).into(),
        }
    }
}

/// Expanded relation data of one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Exp {
    One(usize),
    Many(Vec<usize>),
}

impl Exp {
    fn items(&self) -> &[usize] {
        match self {
            Exp::One(i) => std::slice::from_ref(i),
            Exp::Many(v) => v,
        }
    }
}

/// One loaded record.
#[derive(Debug, Clone)]
pub struct Rec {
    pub coll: Arc<Collection>,
    /// One value per collection field, in field order.
    pub values: Vec<SqlVal>,
    /// Show the email even when `emailVisibility` is off (owner, superuser, manager).
    pub show_email: bool,
    /// Show hidden fields (superuser requests).
    pub unhide: bool,
    /// `None`: no `expand` key; `Some(empty)`: `"expand":{}`.
    pub expand: Option<BTreeMap<String, Exp>>,
}

impl Rec {
    pub fn id(&self) -> &str {
        self.coll
            .fields
            .iter()
            .position(|f| f.name == "id")
            .and_then(|i| match &self.values[i] {
                SqlVal::Text(s) => Some(&**s),
                _ => None,
            })
            .unwrap_or("")
    }

    pub fn value(&self, field: &str) -> Option<&SqlVal> {
        let i = self.coll.fields.iter().position(|f| f.name == field)?;
        self.values.get(i)
    }
}

/// All records of one response (the listed ones and everything expanded).
#[derive(Debug, Default)]
pub struct Arena {
    pub recs: Vec<Rec>,
}

impl Arena {
    /// Runs `stmt` with `params` and appends one record per row; returns their indexes.
    pub fn load(
        &mut self,
        coll: &Arc<Collection>,
        stmt: &mut Statement<'_>,
        params: &[QValue],
    ) -> rusqlite::Result<Vec<usize>> {
        // columns → field slots, resolved once per statement
        let slots: Vec<Option<usize>> = (0..stmt.column_count())
            .map(|c| {
                let name = stmt.column_name(c).ok()?;
                // `t.*` lists the columns in field order: try the same position first
                if coll.fields.get(c).is_some_and(|f| f.name == name) {
                    return Some(c);
                }
                coll.fields.iter().position(|f| f.name == name)
            })
            .collect();
        let nfields = coll.fields.len();
        let count = stmt.parameter_count();
        let mut rows = stmt.query(bound(params, count))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = vec![SqlVal::Null; nfields];
            for (col, slot) in slots.iter().enumerate() {
                if let Some(i) = slot {
                    values[*i] = SqlVal::from_ref(row.get_ref(col)?);
                }
            }
            out.push(self.recs.len());
            self.recs.push(Rec {
                coll: coll.clone(),
                values,
                show_email: false,
                unhide: false,
                expand: None,
            });
        }
        Ok(out)
    }
}

/// The values of `params` the statement takes: a compiled rule may carry parameters its SQL
/// no longer references (values it was specialised on), and `?N` numbering is dense up to
/// the highest one used.
pub fn bound(
    params: &[QValue],
    count: usize,
) -> rusqlite::ParamsFromIter<impl Iterator<Item = rusqlite::types::Value> + '_> {
    rusqlite::params_from_iter(params[..count.min(params.len())].iter().map(to_sql))
}

/// A bound query value as a SQLite parameter.
pub fn to_sql(v: &QValue) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        QValue::Null => V::Null,
        QValue::Integer(i) => V::Integer(*i),
        QValue::Real(f) => V::Real(*f),
        QValue::Text(s) => V::Text(s.clone()),
    }
}

/// `name` as a quoted SQLite identifier.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

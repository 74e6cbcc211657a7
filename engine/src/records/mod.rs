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
pub mod auth_hooks;
pub mod db;
pub mod event;
pub mod expand;
pub mod files;
pub mod input;
pub mod json;
pub mod pick;
pub mod save;
pub mod validate;
pub mod value;
pub mod write;

#[cfg(test)]
mod hook_tests;

use self::db::Db;
use crate::offload::{Canceled, CpuPool};
/// The data layer's value pair (and its binding of compiled parameters), which everything
/// the records domain loads or binds goes through.
pub use crate::recstore::value::{bound, SqlRef, SqlVal};
use pocketbun_query::Value as QValue;
use pocketbun_storage::collections::Collection;
use pocketbun_storage::rusqlite::types::ValueRef;
use pocketbun_storage::rusqlite::{self, Statement};
use std::collections::BTreeMap;
use std::sync::Arc;

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
        let nfields = coll.fields.len();
        let count = stmt.parameter_count();
        let mut rows = stmt.query(bound(params, count))?;
        let mut out = Vec::new();
        let mut slots: Option<Vec<Option<usize>>> = None;
        while let Some(row) = rows.next()? {
            // read the columns once the first row is there: see `column_slots`
            let slots = slots.get_or_insert_with(|| column_slots(coll, row.as_ref()));
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

/// Columns → field slots, resolved once per statement run.
///
/// Only ask a statement for its columns after its first step: a cached `SELECT *` prepared
/// before a schema change still lists the old columns until `sqlite3_step` re-prepares it
/// for the new schema. Reading them before made every worker answer its first read after an
/// added field without that field (read-your-writes for schema, issue 16).
fn column_slots(coll: &Collection, stmt: &Statement<'_>) -> Vec<Option<usize>> {
    (0..stmt.column_count())
        .map(|c| {
            let name = stmt.column_name(c).ok()?;
            // `t.*` lists the columns in field order: try the same position first
            if coll.fields.get(c).is_some_and(|f| f.name == name) {
                return Some(c);
            }
            coll.fields.iter().position(|f| f.name == name)
        })
        .collect()
}

/// Records whose stored values hold more than this many bytes are encoded as JSON on the CPU
/// pool (`crate::offload`), not on the worker: a 48 MiB record (32 MiB of small JSON numbers,
/// 16 MiB of text) held the worker 1.3 s of CPU (debug build) while its answer was written.
/// Below it a record costs well under a millisecond, and stays on the worker (no pool hop).
pub const OFFLOAD_ENCODE_BYTES: usize = 64 << 10;

/// Rows [`write_rows`] copied out instead of encoding them (each bigger than
/// [`OFFLOAD_ENCODE_BYTES`]): where in `out` each one belongs, and its values in field order.
pub type BigRows = Vec<(usize, Vec<SqlVal>)>;

/// Encodes the rows [`write_rows`] left in `big` and puts each in its place in `out`: on the
/// CPU pool (they are big by definition); `out` as it is when there are none.
pub async fn encode_big_rows(
    cpu: &CpuPool,
    coll: &Arc<Collection>,
    unhide: bool,
    out: String,
    big: BigRows,
) -> Result<String, Canceled> {
    if big.is_empty() {
        return Ok(out);
    }
    let coll = coll.clone();
    cpu.run(move || {
        let values: usize = big
            .iter()
            .flat_map(|(_, v)| v)
            .map(|v| match v {
                SqlVal::Text(t) => t.len(),
                _ => 8,
            })
            .sum();
        let mut joined = String::with_capacity(out.len() + values + values / 8);
        let mut writer = json::Writer::new();
        let mut at = 0;
        for (offset, values) in big {
            joined.push_str(&out[at..offset]);
            at = offset;
            writer.write_plain(&mut joined, &coll, unhide, |i| {
                values.get(i).map_or(SqlRef::Null, SqlVal::borrow)
            });
        }
        joined.push_str(&out[at..]);
        joined
    })
    .await
}

/// Bytes the values of `arena`'s records take (text length; 8 for anything else).
pub fn arena_bytes(arena: &Arena) -> usize {
    arena
        .recs
        .iter()
        .flat_map(|r| &r.values)
        .map(|v| match v {
            SqlVal::Text(t) => t.len(),
            _ => 8,
        })
        .sum()
}

/// Appends the records `items` of `arena` to `out`, `sep` between them: on the CPU pool when
/// the arena's values are over [`OFFLOAD_ENCODE_BYTES`], else here.
pub async fn write_records(
    db: &Db,
    arena: Arena,
    items: Vec<usize>,
    sep: &'static str,
    out: String,
) -> Result<String, Canceled> {
    fn write(
        mut writer: json::Writer,
        arena: &Arena,
        items: &[usize],
        sep: &str,
        mut out: String,
    ) -> String {
        for (i, &r) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            writer.write(&mut out, arena, r);
        }
        out
    }
    if arena_bytes(&arena) <= OFFLOAD_ENCODE_BYTES {
        return Ok(write(
            json::Writer::with(&db.plans),
            &arena,
            &items,
            sep,
            out,
        ));
    }
    (db.core.cpu)
        .run(move || write(json::Writer::new(), &arena, &items, sep, out))
        .await
}

/// Runs `stmt` and writes each row's record JSON straight from SQLite's buffers, `sep`
/// between records: no [`SqlVal`] copies and no arena. Only for reads whose records need
/// nothing resolved after loading: not an auth collection (email visibility) and no
/// `expand`; `unhide` is the superuser flag. Returns the number of records written.
/// A row over [`OFFLOAD_ENCODE_BYTES`] is copied into `big` instead, for [`encode_big_rows`].
#[allow(clippy::too_many_arguments)]
pub fn write_rows(
    coll: &Arc<Collection>,
    stmt: &mut Statement<'_>,
    params: &[QValue],
    unhide: bool,
    out: &mut String,
    sep: &str,
    big: &mut BigRows,
    plans: &json::Plans,
) -> rusqlite::Result<usize> {
    let count = stmt.parameter_count();
    let mut rows = stmt.query(bound(params, count))?;
    let mut writer = json::Writer::with(plans);
    let mut n = 0;
    let mut field_cols: Option<Vec<Option<usize>>> = None;
    while let Some(row) = rows.next()? {
        // field → the column that fills it (a later column wins, as in `Arena::load`),
        // read once the statement has stepped (see `column_slots`)
        let cols = field_cols.get_or_insert_with(|| {
            let mut cols: Vec<Option<usize>> = vec![None; coll.fields.len()];
            for (c, slot) in column_slots(coll, row.as_ref()).into_iter().enumerate() {
                if let Some(i) = slot {
                    cols[i] = Some(c);
                }
            }
            cols
        });
        if n > 0 {
            out.push_str(sep);
        }
        let start = out.len();
        let not_utf8 = std::cell::Cell::new(false);
        // bytes of the values written so far: past OFFLOAD_ENCODE_BYTES the rest are skipped
        // and the row goes to `big` (at most that much was encoded here for nothing; summing
        // the sizes first instead read every column twice: +15 % instructions on a page of 30)
        let seen = std::cell::Cell::new(0usize);
        writer.write_plain(out, coll, unhide, |i| {
            let Some(c) = cols.get(i).copied().flatten() else {
                return SqlRef::Null;
            };
            if seen.get() > OFFLOAD_ENCODE_BYTES {
                return SqlRef::Null;
            }
            let v = row.get_ref(c).ok();
            if let Some(ValueRef::Text(t) | ValueRef::Blob(t)) = v {
                seen.set(seen.get() + t.len());
                if seen.get() > OFFLOAD_ENCODE_BYTES {
                    return SqlRef::Null;
                }
            }
            match v.and_then(SqlRef::from_value) {
                Some(v) => v,
                None => {
                    not_utf8.set(true);
                    SqlRef::Null
                }
            }
        });
        if seen.get() > OFFLOAD_ENCODE_BYTES {
            out.truncate(start);
            let values = cols
                .iter()
                .map(|c| c.map_or(Ok(SqlVal::Null), |c| row.get_ref(c).map(SqlVal::from_ref)))
                .collect::<rusqlite::Result<Vec<SqlVal>>>()?;
            big.push((out.len(), values));
            n += 1;
            continue;
        }
        if not_utf8.get() {
            // rare: redo the record with owned values, invalid bytes replaced
            out.truncate(start);
            let values = cols
                .iter()
                .map(|c| c.map_or(Ok(SqlVal::Null), |c| row.get_ref(c).map(SqlVal::from_ref)))
                .collect::<rusqlite::Result<Vec<SqlVal>>>()?;
            writer.write_plain(out, coll, unhide, |i| {
                values.get(i).map_or(SqlRef::Null, SqlVal::borrow)
            });
        }
        n += 1;
    }
    Ok(n)
}

/// The stored row `id` of `coll`, one value per field (`None`: no such row). The one
/// statement every by-id load uses: the write path's reads, its rebase inside a batch job
/// and the realtime event of a write.
pub fn row_by_id(
    conn: &rusqlite::Connection,
    coll: &Arc<Collection>,
    id: &str,
) -> rusqlite::Result<Option<Vec<SqlVal>>> {
    let mut arena = Arena::default();
    let mut stmt = crate::recstore::rows::by_id(conn, &coll.name)?;
    let found = arena.load(coll, &mut stmt, &[QValue::Text(id.to_string())])?;
    Ok(found
        .first()
        .map(|&i| std::mem::take(&mut arena.recs[i].values)))
}

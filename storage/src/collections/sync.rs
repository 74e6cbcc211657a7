//! Saving and deleting collections: the `_collections` row plus the DDL
//! PocketBase runs for it (records table create/alter/rename/drop with
//! columns matched by field id, indexes, SQL views), all on one connection
//! inside the caller's transaction — run it as ONE writer job so a failure
//! leaves nothing behind.
//!
//! ```ignore
//! let saved = store.writer().submit(move |conn| {
//!     collections::create_collection(conn, new).map_err(SaveError::into_storage)
//! }).await?;
//! ```

use crate::Ident;
use std::collections::HashSet;

use rusqlite::Connection;

use super::errors::{FieldError, ValidationErrors};
use super::fields::{self, Field};
use super::index::ParsedIndex;
use super::model::{Collection, CollectionType};
use super::validate::{self, RuleChecker};
use super::view;
use crate::error::{ErrorKind, StorageError};
use crate::random;
use crate::time;

/// Why a save or delete was refused or failed.
#[derive(Debug, Clone)]
pub enum SaveError {
    /// Per-field problems: answer 400 with `{"data": errors}`.
    Validation(ValidationErrors),
    /// A refused operation with PocketBase's message (answer 400).
    Refused(String),
    /// Database failure.
    Storage(StorageError),
}

impl SaveError {
    /// Folds into a [`StorageError`] (kind `Invalid` for refusals), e.g. to
    /// return it from a writer job; the message keeps the details.
    pub fn into_storage(self) -> StorageError {
        match self {
            SaveError::Validation(v) => StorageError::new(ErrorKind::Invalid, v.to_json()),
            SaveError::Refused(m) => StorageError::new(ErrorKind::Invalid, m),
            SaveError::Storage(e) => e,
        }
    }
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Validation(v) => write!(f, "validation failed: {}", v.to_json()),
            SaveError::Refused(m) => f.write_str(m),
            SaveError::Storage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SaveError {}

impl From<StorageError> for SaveError {
    fn from(e: StorageError) -> Self {
        SaveError::Storage(e)
    }
}

impl From<rusqlite::Error> for SaveError {
    fn from(e: rusqlite::Error) -> Self {
        SaveError::Storage(e.into())
    }
}

type SResult<T> = std::result::Result<T, SaveError>;

/// Whether a table (not a view) named `name` exists (case-insensitive).
pub fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND LOWER(name) = LOWER(?1)",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// PocketBase's pre-save normalisation: type default, timestamps, field
/// ids, system fields, OAuth2 mapped fields, index table names.
pub fn normalize_for_save(c: &mut Collection, is_new: bool) {
    let now = time::now_datetime();
    if is_new {
        c.created = now.clone();
    }
    c.updated = now;
    let list = std::mem::take(&mut c.fields);
    for f in list {
        fields::add_field(&mut c.fields, f);
    }
    c.init_default_fields();
    if c.is_auth() {
        let names: HashSet<String> = c.fields.iter().map(|f| f.name.clone()).collect();
        let mf = &mut c.auth.oauth2.mapped_fields;
        for v in [
            &mut mf.id,
            &mut mf.name,
            &mut mf.username,
            &mut mf.avatar_url,
        ] {
            if !v.is_empty() && !names.contains(v.as_str()) {
                v.clear();
            }
        }
    }
    for raw in c.indexes.iter_mut() {
        let mut p = ParsedIndex::parse(raw);
        if p.table_name == c.name {
            continue;
        }
        p.table_name = c.name.clone();
        let built = p.build();
        if !built.is_empty() {
            *raw = built;
        }
    }
}

/// Saves `c` (new when `is_new`) without validating it: imports save every collection first
/// and validate afterwards, so that collections may refer to each other in any order.
pub fn save_unvalidated(conn: &Connection, mut c: Collection, is_new: bool) -> SResult<Collection> {
    if is_new {
        if c.id.is_empty() {
            c.id = c.default_id();
        }
        normalize_for_save(&mut c, true);
        save(conn, c, None, None)
    } else {
        let old = Collection::load_by_id(conn, &c.id)?.ok_or_else(|| {
            SaveError::Storage(StorageError::new(
                ErrorKind::NotFound,
                format!("collection {} not found", c.id),
            ))
        })?;
        normalize_for_save(&mut c, false);
        c.created = old.created.clone();
        save(conn, c, Some(old), None)
    }
}

/// Drops a collection's table or view and its `_collections` row with no checks (an import
/// with `deleteMissing` removes whatever its configuration no longer has).
pub fn drop_unchecked(conn: &Connection, c: &Collection) -> SResult<()> {
    if c.kind == CollectionType::View {
        view::delete_view(conn, &c.name).map_err(|e| SaveError::Refused(e.0))?;
    } else {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", Ident(&c.name)))?;
    }
    conn.execute("DELETE FROM `_collections` WHERE `id` = ?1", [&c.id])?;
    Ok(())
}

/// Creates a collection: row, records table (or view) and indexes. The
/// collection is normalised first (see [`normalize_for_save`]); a default
/// `pbc_…` id already taken gets a numeric suffix like in PocketBase.
/// Returns the collection as stored.
pub fn create_collection(conn: &Connection, c: Collection) -> SResult<Collection> {
    create_collection_checked(conn, c, &validate::accept_all_rules)
}

/// [`create_collection`] with rules/filters checked by `check_rule`.
pub fn create_collection_checked(
    conn: &Connection,
    c: Collection,
    check_rule: RuleChecker<'_>,
) -> SResult<Collection> {
    atomically(conn, || create_inner(conn, c, check_rule))
}

fn create_inner(
    conn: &Connection,
    mut c: Collection,
    check_rule: RuleChecker<'_>,
) -> SResult<Collection> {
    if c.id.is_empty() {
        c.id = c.default_id();
    }
    if c.id == c.default_id() {
        let base = c.id.clone();
        for i in 2..1000 {
            if !id_exists(conn, &c.id)? {
                break;
            }
            c.id = format!("{base}{i}");
        }
        if c.id != base {
            for raw in c.indexes.iter_mut() {
                let mut p = ParsedIndex::parse(raw);
                let renamed = p.index_name.replace(&base, &c.id);
                if renamed != p.index_name {
                    p.index_name = renamed;
                    *raw = p.build();
                }
            }
        }
    }
    normalize_for_save(&mut c, true);
    save(conn, c, None, Some(check_rule))
}

/// Updates a collection (matched by id) and alters its table/view to
/// match, keeping every row and the data of every kept field.
pub fn update_collection(conn: &Connection, c: Collection) -> SResult<Collection> {
    update_collection_checked(conn, c, &validate::accept_all_rules)
}

/// [`update_collection`] with rules/filters checked by `check_rule`.
pub fn update_collection_checked(
    conn: &Connection,
    c: Collection,
    check_rule: RuleChecker<'_>,
) -> SResult<Collection> {
    atomically(conn, || update_inner(conn, c, check_rule))
}

fn update_inner(
    conn: &Connection,
    mut c: Collection,
    check_rule: RuleChecker<'_>,
) -> SResult<Collection> {
    let old = Collection::load_by_id(conn, &c.id)?.ok_or_else(|| {
        SaveError::Storage(StorageError::new(
            ErrorKind::NotFound,
            format!("collection {} not found", c.id),
        ))
    })?;
    normalize_for_save(&mut c, false);
    c.created = old.created.clone();
    if c.is_auth() && old.auth.auth_rule != c.auth.auth_rule {
        // changing who may authenticate invalidates issued auth tokens
        c.auth.auth_token.secret = random::random_string(50);
    }
    save(conn, c, Some(old), Some(check_rule))
}

/// Runs `f` inside a savepoint: on error everything it did is rolled back,
/// so returning `Ok(Err(save_error))` from a writer job is safe.
fn atomically<T>(conn: &Connection, f: impl FnOnce() -> SResult<T>) -> SResult<T> {
    conn.execute_batch("SAVEPOINT pb_collection_save")?;
    let out = f();
    let end = if out.is_ok() {
        "RELEASE pb_collection_save"
    } else {
        "ROLLBACK TO pb_collection_save; RELEASE pb_collection_save"
    };
    conn.execute_batch(end)?;
    out
}

fn id_exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM `_collections` WHERE `id` = ?1",
        [id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn save(
    conn: &Connection,
    mut c: Collection,
    old: Option<Collection>,
    check_rule: Option<RuleChecker<'_>>,
) -> SResult<Collection> {
    let all = Collection::load_all(conn)?;
    let mut partial = Vec::new();
    let view_fields = if c.is_view() && !c.view_query.trim().is_empty() {
        Some(
            view::create_view_fields_into(conn, &all, &c.view_query, &mut partial)
                .map(|()| partial.clone()),
        )
    } else {
        None
    };
    if let Some(check_rule) = check_rule {
        let mut probe = c.clone();
        if c.is_view() {
            probe.fields = partial.clone();
        }
        let mut errs = validate::validate_collection(conn, &probe, old.as_ref(), &all, check_rule);
        if let Some(Err(e)) = &view_fields {
            let mut msg = e.0.clone();
            msg.truncate(500);
            errs.add(
                "viewQuery",
                FieldError::new(
                    "validation_invalid_view_query",
                    &format!("Invalid query - {msg}"),
                ),
            );
        }
        if !errs.is_empty() {
            return Err(SaveError::Validation(errs));
        }
    }
    if c.is_view() {
        let fields = view_fields
            .unwrap_or_else(|| Err(view::ViewError("empty view query".into())))
            .map_err(|e| view_query_error(&e.0))?;
        if let Some(old) = &old {
            view::delete_view(conn, &old.name).map_err(|e| SaveError::Refused(e.0))?;
        }
        let query = view::normalize_view_query_id(conn, &c.view_query)
            .map_err(|e| view_query_error(&format!("failed to normalize view query id: {e}")))?;
        view::save_view(conn, &c.name, &query).map_err(|e| view_query_error(&e.0))?;
        c.fields = fields;
    }
    let row = c.to_row();
    if old.is_some() {
        row.update(conn)?;
    } else {
        row.insert(conn)?;
    }
    if !c.is_view() {
        sync_record_table(conn, &c, old.as_ref())?;
    }
    // views built on this collection follow its field changes; a view that
    // no longer works is only logged (its owner fixes its query)
    for err in resave_views_with_changed_fields(conn, &[c.id.as_str()]) {
        crate::warn(format_args!(
            "dependent view collection may need to be updated after {} change: {err}",
            c.name
        ));
    }
    Ok(c)
}

fn view_query_error(msg: &str) -> SaveError {
    let mut errs = ValidationErrors::new();
    errs.add(
        "viewQuery",
        FieldError::new(
            "validation_invalid_view_query",
            &format!("Invalid query - {msg}"),
        ),
    );
    SaveError::Validation(errs)
}

/// Creates or alters the records table of `new` (base/auth) to match its
/// fields and indexes, `old` being the stored state (`None`: create).
pub fn sync_record_table(
    conn: &Connection,
    new: &Collection,
    old: Option<&Collection>,
) -> SResult<()> {
    if new.is_view() {
        return Ok(());
    }
    let old = match old {
        Some(o) if has_table(conn, &o.name)? => o,
        _ => {
            let mut cols: Vec<(&str, &str)> = new
                .fields
                .iter()
                .map(|f| (f.name.as_str(), f.column_type()))
                .collect();
            cols.sort_by(|a, b| a.0.cmp(b.0));
            let defs: Vec<String> = cols
                .iter()
                .map(|(n, t)| format!("{} {t}", Ident(n)))
                .collect();
            conn.execute_batch(&format!(
                "CREATE TABLE {} ({})",
                Ident(&new.name),
                defs.join(", ")
            ))?;
            return create_indexes(conn, new);
        }
    };
    let rename_table = !old.name.eq_ignore_ascii_case(&new.name);
    let fields_json = |f: &[Field]| {
        let mut s = String::new();
        fields::write_fields_json(&mut s, f);
        s
    };
    let indexes_changed = rename_table
        || fields_json(&old.fields) != fields_json(&new.fields)
        || old.indexes != new.indexes;
    if indexes_changed {
        drop_indexes(conn, old)?;
    }
    if rename_table {
        conn.execute_batch(&format!(
            "ALTER TABLE {} RENAME TO {}",
            Ident(&old.name),
            Ident(&new.name)
        ))?;
    }
    let table = Ident(&new.name);
    for of in &old.fields {
        if new.field_by_id(&of.id).is_none() {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} DROP COLUMN {}",
                Ident(&of.name)
            ))
            .map_err(|e| SaveError::Refused(format!("failed to drop column {} - {e}", of.name)))?;
        }
    }
    // new and renamed columns go through temporary names so that swaps
    // (a -> b, b -> a) never collide
    let mut to_rename: Vec<(String, String)> = Vec::new();
    for nf in &new.fields {
        let temp = || {
            format!(
                "{}{}",
                nf.name,
                random::random_string_with_alphabet(5, random::ALNUM_ALPHABET)
            )
        };
        match old.field_by_id(&nf.id) {
            None => {
                let t = temp();
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD {} {}",
                    Ident(&t),
                    nf.column_type()
                ))
                .map_err(|e| {
                    SaveError::Refused(format!("failed to add column {} - {e}", nf.name))
                })?;
                to_rename.push((t, nf.name.clone()));
            }
            Some(of) if of.name != nf.name => {
                let t = temp();
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                    Ident(&of.name),
                    Ident(&t)
                ))
                .map_err(|e| {
                    SaveError::Refused(format!("failed to rename column {} - {e}", of.name))
                })?;
                to_rename.push((t, nf.name.clone()));
            }
            Some(_) => {}
        }
    }
    for (temp, name) in &to_rename {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} RENAME COLUMN {} TO {}",
            Ident(temp),
            Ident(name)
        ))?;
    }
    normalize_single_vs_multiple(conn, new, old)?;
    if indexes_changed {
        create_indexes(conn, new)?;
    }
    Ok(())
}

/// Converts the stored values of fields that switched between single and
/// multiple (`"a"` <-> `["a"]`), like PocketBase.
fn normalize_single_vs_multiple(
    conn: &Connection,
    new: &Collection,
    old: &Collection,
) -> SResult<()> {
    for nf in &new.fields {
        let was_multiple = old.field_by_id(&nf.id).is_some_and(Field::is_multiple);
        let is_multiple = nf.is_multiple();
        if was_multiple == is_multiple {
            continue;
        }
        // views may depend on the column: drop them and recreate afterwards
        let views: Vec<(String, String)> = {
            let mut stmt = conn.prepare(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type = 'view'",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        for (name, _) in &views {
            conn.execute_batch(&format!("DROP VIEW IF EXISTS {}", Ident(name)))?;
        }
        let table = Ident(&new.name);
        let name = Ident(&nf.name);
        let temp = Ident(&format!(
            "_{}{}",
            nf.name,
            random::random_string_with_alphabet(5, random::ALNUM_ALPHABET)
        ));
        conn.execute_batch(&format!(
            "ALTER TABLE {table} RENAME COLUMN {name} TO {temp}"
        ))?;
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD {name} {}",
            nf.column_type()
        ))?;
        let copy = if is_multiple {
            format!(
                "UPDATE {table} SET {name} = (CASE WHEN COALESCE({temp}, '') = '' THEN '[]' ELSE (CASE WHEN json_valid({temp}) AND json_type({temp}) == 'array' THEN {temp} ELSE json_array({temp}) END) END)"
            )
        } else {
            format!(
                "UPDATE {table} SET {name} = (CASE WHEN COALESCE({temp}, '[]') = '[]' THEN '' ELSE (CASE WHEN json_valid({temp}) AND json_type({temp}) == 'array' THEN COALESCE(json_extract({temp}, '$[#-1]'), '') ELSE {temp} END) END)"
            )
        };
        conn.execute_batch(&copy)?;
        conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {temp}"))?;
        for (_, sql) in &views {
            conn.execute_batch(sql)?;
        }
    }
    Ok(())
}

fn drop_indexes(conn: &Connection, c: &Collection) -> SResult<()> {
    if c.is_view() {
        return Ok(());
    }
    for raw in &c.indexes {
        let p = ParsedIndex::parse(raw);
        if p.index_name.is_empty() {
            return Err(SaveError::Refused(format!(
                "failed to drop index - missing index name: {raw}"
            )));
        }
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {}", Ident(&p.index_name)))?;
    }
    Ok(())
}

fn create_indexes(conn: &Connection, c: &Collection) -> SResult<()> {
    if c.is_view() {
        return Ok(());
    }
    let mut errs = ValidationErrors::new();
    for (i, raw) in c.indexes.iter().enumerate() {
        let mut p = ParsedIndex::parse(raw);
        p.table_name = c.name.clone();
        if !p.is_valid() {
            errs.add(
                i.to_string(),
                FieldError::new(
                    "validation_invalid_index_expression",
                    "Invalid CREATE INDEX expression.",
                ),
            );
            continue;
        }
        if let Err(e) = conn.execute_batch(&p.build()) {
            errs.add(
                i.to_string(),
                FieldError::new(
                    "validation_invalid_index_expression",
                    &format!("Failed to create index {} - {e}.", p.index_name),
                ),
            );
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        let mut top = ValidationErrors::new();
        top.add_nested("indexes", errs);
        Err(SaveError::Validation(top))
    }
}

/// Re-infers the fields of every view collection (except `exclude`) and
/// saves those whose fields changed. Returns the per-view failures (each
/// view is saved in its own savepoint, so a failure changes nothing).
pub fn resave_views_with_changed_fields(conn: &Connection, exclude: &[&str]) -> Vec<String> {
    let all = match Collection::load_all(conn) {
        Ok(all) => all,
        Err(e) => return vec![e.to_string()],
    };
    let mut failures = Vec::new();
    for v in all
        .iter()
        .filter(|c| c.is_view() && !exclude.contains(&c.id.as_str()))
    {
        let strip = |list: &[Field]| {
            let mut l: Vec<Field> = list.to_vec();
            for f in &mut l {
                f.id.clear();
            }
            let mut s = String::new();
            fields::write_fields_json(&mut s, &l);
            s.to_lowercase()
        };
        let result = (|| -> SResult<()> {
            let fresh = view::create_view_fields(conn, &all, &v.view_query)
                .map_err(|e| SaveError::Refused(e.0))?;
            if strip(&fresh) == strip(&v.fields) {
                return Ok(());
            }
            conn.execute_batch("SAVEPOINT pb_view_resave")?;
            let mut next = v.clone();
            normalize_for_save(&mut next, false);
            let r = save(conn, next, Some(v.clone()), None);
            if r.is_ok() {
                conn.execute_batch("RELEASE pb_view_resave")?;
            } else {
                conn.execute_batch("ROLLBACK TO pb_view_resave; RELEASE pb_view_resave")?;
            }
            r.map(|_| ())
        })();
        if let Err(e) = result {
            failures.push(format!("[{}] {e}", v.name));
        }
    }
    failures
}

/// Collections (other than `c` itself) with relation fields to `c`.
pub fn find_references(conn: &Connection, c: &Collection) -> SResult<Vec<Collection>> {
    Ok(Collection::load_all(conn)?
        .into_iter()
        .filter(|other| other.id != c.id && other.relations_to(&c.id).next().is_some())
        .collect())
}

/// Deletes a collection (by id or name): refused for system collections
/// and while other collections reference it; drops its table or view and
/// fails if a view depends on it. Returns the deleted collection (the
/// caller removes its files, `<pb_data>/storage/<id>`).
pub fn delete_collection(conn: &Connection, id_or_name: &str) -> SResult<Collection> {
    atomically(conn, || delete_inner(conn, id_or_name))
}

fn delete_inner(conn: &Connection, id_or_name: &str) -> SResult<Collection> {
    let c = Collection::load(conn, id_or_name)?.ok_or_else(|| {
        SaveError::Storage(StorageError::new(
            ErrorKind::NotFound,
            format!("collection {id_or_name} not found"),
        ))
    })?;
    if c.system {
        return Err(SaveError::Refused(format!(
            "[{}] system collections cannot be deleted",
            c.name
        )));
    }
    let refs = find_references(conn, &c)?;
    if !refs.is_empty() {
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        return Err(SaveError::Refused(format!(
            "[{}] failed to delete due to existing relation references: {}",
            c.name,
            names.join(", ")
        )));
    }
    if c.kind == CollectionType::View {
        view::delete_view(conn, &c.name).map_err(|e| SaveError::Refused(e.0))?;
    } else {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", Ident(&c.name)))?;
    }
    conn.execute("DELETE FROM `_collections` WHERE `id` = ?1", [&c.id])?;
    let failures = resave_views_with_changed_fields(conn, &[c.id.as_str()]);
    if !failures.is_empty() {
        return Err(SaveError::Refused(format!(
            "[{}] failed to delete due to existing view dependency: {}",
            c.name,
            failures.join("\n")
        )));
    }
    Ok(c)
}

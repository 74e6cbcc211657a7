//! PocketBase's filter/sort language compiled once into SQL with positional parameters.
//!
//! * [`Schema`] — the collections the compiler resolves against (built by the engine).
//! * [`RequestInfo`] — what `@request.*` reads; values are bound per request, never baked
//!   into SQL (except where PocketBase's SQL *shape* depends on them: null/empty values,
//!   `:isset`, `:length` of body values, body relation id counts, the auth collection —
//!   these become [`Guard`]s of the cached compilation).
//! * Folding ([`FoldTree`]) — comparisons whose operands are known per request (the
//!   caller, method, headers, query, literals) are evaluated before any SQL is built: a
//!   rule that folds to TRUE adds no WHERE, to FALSE answers "no rows" without a query;
//!   each folded outcome is a [`Guard`] of the cached compilation.
//! * [`QueryCache`] — compiles on a miss and returns the cached [`CompiledQuery`] on a hit;
//!   one per worker (no locks).

#![forbid(unsafe_code)]

mod compile;
mod error;
mod fields;
mod fold;
#[doc(hidden)]
pub mod fuzzing;
mod parse;
mod request;
mod schema;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use compile::{AUTH_INFO_FIELDS, MAX_FILTER_EXPRESSIONS, MAX_FILTER_LENGTH};
pub use error::{ErrorKind, QueryError, BAD_REQUEST_MESSAGE};
pub use fields::{parse_expand, parse_fields, Excerpt, FieldPick};
pub use fold::{FoldCheck, FoldTree, Known, Truth};
pub use parse::{parse, Expr, Group, Item, Join, Op, Operand};
pub use request::{
    eval, AuthInfo, Guard, Macro, Param, ParamSource, RequestInfo, Value, ValueClass, Volatile,
};
pub use schema::{Collection, CollectionType, Field, FieldType, Schema};

use compile::{can_fold, compile_filter_into, fold_tree_of, Built, Ctx, Resolver};

/// Max sort terms.
pub const MAX_SORT_FIELDS: usize = 8;
/// Max length of one sort term.
pub const MAX_SORT_FIELD_LENGTH: usize = 255;
/// Max and default `perPage`.
pub const MAX_PER_PAGE: usize = 1000;
pub const DEFAULT_PER_PAGE: usize = 30;

/// A compiled list query (rule + client filter + sort) for one collection.
#[derive(Debug, Clone)]
pub struct CompiledQuery {
    /// The collection's table name (unquoted).
    pub table: String,
    /// `SELECT DISTINCT` is needed (relation joins can duplicate rows).
    pub distinct: bool,
    /// `` `t` LEFT JOIN ... `` (FROM clause without the `FROM`).
    pub from_sql: String,
    /// WHERE condition without `WHERE` (empty = none).
    pub where_sql: String,
    /// ORDER BY terms without `ORDER BY` (empty = none).
    pub order_sql: String,
    /// `SELECT [DISTINCT] `t`.* FROM ... [WHERE ...] [ORDER BY ...] LIMIT ?L + 0 OFFSET ?O + 0`
    /// where `?L`/`?O` are the two parameters after [`CompiledQuery::params`].
    pub select_sql: String,
    /// `SELECT COUNT(DISTINCT `t`.<rowid or id>) FROM ...` or `COUNT(*)` when no join can repeat a row (same params).
    pub count_sql: String,
    pub params: Vec<Param>,
    pub guards: Vec<Guard>,
    /// The rule or the filter folded to FALSE (or NULL) for this request's shape: no row
    /// can match, so the answer is an empty page without running the statements (which
    /// stay valid SQL, with a `FALSE` term).
    pub never: bool,
    /// `(field, value)` of each comparison of a bool field of the collection's own table
    /// with `true`/`false` in the WHERE (`col = 1` / `col = 0`), anywhere in it; empty when
    /// there is none. [`compile_list_unindexed`] writes exactly these so that no index
    /// serves them.
    pub bool_eqs: Vec<(String, bool)>,
}

/// An ORDER BY term [`compile_list_unindexed`] appends after the list's own sort: a column
/// of the collection's table, or its rowid, in a direction and a collation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieBreak {
    /// The column; `None`: the rowid.
    pub column: Option<String>,
    pub desc: bool,
    /// The collating sequence's name (`BINARY`, `NOCASE`, ...); ignored for the rowid.
    pub collation: String,
}

impl CompiledQuery {
    /// The values of [`CompiledQuery::params`] for a request (`now_ms`: unix time in ms for
    /// the datetime macros).
    pub fn bind(&self, req: &RequestInfo, now_ms: i64) -> Vec<Value> {
        bind_params(&self.params, req, now_ms)
    }

    /// `SELECT <columns> FROM ... WHERE ... ORDER BY ...` without LIMIT (same params).
    pub fn select_with(&self, columns: &str) -> String {
        assemble(
            self.distinct,
            columns,
            &self.from_sql,
            &self.where_sql,
            &self.order_sql,
        )
    }
}

/// A compiled condition (a rule or filter) for use inside the engine's own statements
/// (view/update/delete rule checks): `SELECT ... FROM <from_sql> WHERE <where_sql>`.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub table: String,
    pub distinct: bool,
    pub from_sql: String,
    pub where_sql: String,
    pub params: Vec<Param>,
    pub guards: Vec<Guard>,
    /// The whole condition folded to a constant for this request's shape: `Some(true)`
    /// (every row passes; `where_sql` is `TRUE`) or `Some(false)` (none does, a NULL
    /// included; `where_sql` is `FALSE`).
    pub constant: Option<bool>,
}

impl CompiledFilter {
    pub fn bind(&self, req: &RequestInfo, now_ms: i64) -> Vec<Value> {
        bind_params(&self.params, req, now_ms)
    }
}

fn bind_params(params: &[Param], req: &RequestInfo, now_ms: i64) -> Vec<Value> {
    params
        .iter()
        .map(|p| {
            let v = request::eval(&p.source, req, now_ms);
            if p.like {
                request::like_wrap(v)
            } else {
                v
            }
        })
        .collect()
}

fn assemble(distinct: bool, columns: &str, from: &str, wh: &str, order: &str) -> String {
    let mut s = String::with_capacity(64 + from.len() + wh.len() + order.len());
    s.push_str(if distinct {
        "SELECT DISTINCT "
    } else {
        "SELECT "
    });
    s.push_str(columns);
    s.push_str(" FROM ");
    s.push_str(from);
    if !wh.is_empty() {
        s.push_str(" WHERE ");
        s.push_str(wh);
    }
    if !order.is_empty() {
        s.push_str(" ORDER BY ");
        s.push_str(order);
    }
    s
}

/// The 403 PocketBase gives non-superusers whose `filter`/`sort` mention `@collection.` or
/// `@request.`.
pub fn check_superuser_only(filter: &str, sort: &str) -> Result<(), QueryError> {
    for v in [filter, sort] {
        for f in ["@collection.", "@request."] {
            if v.contains(f) {
                return Err(QueryError::forbidden(format!(
                    "Only superusers can filter by {f}"
                )));
            }
        }
    }
    Ok(())
}

/// Splits a `sort` parameter into (name, descending) terms.
pub fn parse_sort(sort: &str) -> Vec<(&str, bool)> {
    sort.split(',')
        .map(|f| {
            let f = f.trim();
            match f.strip_prefix('-') {
                Some(n) => (n, true),
                None => (f.strip_prefix('+').unwrap_or(f), false),
            }
        })
        .collect()
}

/// Compiles a records list query without caching (see [`QueryCache::list`]).
pub fn compile_list(
    schema: &Schema,
    collection: &str,
    filter: &str,
    sort: &str,
    req: &RequestInfo,
) -> Result<CompiledQuery, QueryError> {
    list(schema, collection, filter, sort, req, None)
}

/// [`compile_list`] with each comparison of [`CompiledQuery::bool_eqs`] written `+col = 1`,
/// which selects the same rows but which no index can serve, and `then_by` appended to the
/// ORDER BY. The engine runs this page statement instead of the list's own when SQLite
/// would search an index by bool equalities alone, then sort (`recstore::rules`): a scan
/// is then several times cheaper. `then_by`, the order in which that index fed the sort,
/// keeps tied rows in the order the index gave them, so the page is the same.
pub fn compile_list_unindexed(
    schema: &Schema,
    collection: &str,
    filter: &str,
    sort: &str,
    req: &RequestInfo,
    then_by: &[TieBreak],
) -> Result<CompiledQuery, QueryError> {
    list(schema, collection, filter, sort, req, Some(then_by))
}

fn list(
    schema: &Schema,
    collection: &str,
    filter: &str,
    sort: &str,
    req: &RequestInfo,
    unindexed: Option<&[TieBreak]>,
) -> Result<CompiledQuery, QueryError> {
    let coll = schema
        .collection(collection)
        .cloned()
        .ok_or_else(|| QueryError::invalid_param(format!("missing collection {collection:?}")))?;
    let superuser = req.superuser;
    if !superuser {
        if coll.list_rule.is_none() {
            return Err(QueryError::forbidden(
                "Only superusers can perform this action.",
            ));
        }
        check_superuser_only(filter, sort)?;
    }
    let mut ctx = Ctx::default();
    let mut res = Resolver::new(schema, coll.clone(), req, true);
    res.unindex_bools = unindexed.is_some();
    let mut wheres: Vec<String> = Vec::new();
    let mut never = false;
    // a part folded to TRUE adds nothing; to FALSE or NULL, no row can match
    let mut add = |b: Built| match b {
        Built::Sql(s) => wheres.push(s),
        Built::Const(Truth::True) => {}
        Built::Const(_) => {
            never = true;
            wheres.push("FALSE".to_string());
        }
    };
    if !superuser {
        if let Some(rule) = coll.list_rule.as_deref().filter(|r| !r.is_empty()) {
            add(compile_filter_into(&mut res, &mut ctx, rule)?);
        }
    }
    res.allow_hidden = superuser;
    if !filter.is_empty() {
        if filter.len() > MAX_FILTER_LENGTH {
            return Err(QueryError::invalid_filter(
                "max filter length limit reached",
            ));
        }
        add(compile_filter_into(&mut res, &mut ctx, filter)?);
    }
    let mut order = Vec::new();
    if !sort.is_empty() {
        let terms = parse_sort(sort);
        if terms.len() > MAX_SORT_FIELDS {
            return Err(QueryError::invalid_sort(
                "max sort expressions limit reached",
            ));
        }
        for (name, desc) in terms {
            if name.len() > MAX_SORT_FIELD_LENGTH {
                return Err(QueryError::invalid_sort(
                    "max sort field length limit reached",
                ));
            }
            order.push(res.sort_term(&mut ctx, name, desc)?);
        }
    }
    for t in unindexed.unwrap_or_default() {
        let dir = if t.desc { "DESC" } else { "ASC" };
        order.push(match &t.column {
            Some(c) => format!(
                "`{}`.`{}` COLLATE `{}` {dir}",
                coll.name,
                c.replace('`', "``"),
                t.collation.replace('`', "``")
            ),
            None => format!("`{}`.`_rowid_` {dir}", coll.name),
        });
    }
    let (joins, extra, distinct) = res.finish(&mut ctx)?;
    wheres.extend(extra);
    let table = coll.name.clone();
    let from_sql = format!("`{table}`{joins}");
    let where_sql = wheres.join(" AND ");
    let order_sql = order.join(", ");
    let n = ctx.params.len();
    let mut select_sql = assemble(
        distinct,
        &format!("`{table}`.*"),
        &from_sql,
        &where_sql,
        &order_sql,
    );
    // `+ 0` keeps LIMIT/OFFSET opaque expressions: SQLite (3.46+) reads a bare bound
    // LIMIT/OFFSET value while planning and then re-prepares the statement on every rebind
    select_sql.push_str(&format!(" LIMIT ?{} + 0 OFFSET ?{} + 0", n + 1, n + 2));
    // without a multiplying join every row of the table is counted once, and a plain
    // COUNT(*) lets SQLite count without decoding rows or building a DISTINCT set
    let count_expr = if coll.is_view() {
        format!("COUNT(DISTINCT `{table}`.`id`)")
    } else if distinct {
        format!("COUNT(DISTINCT `{table}`.`_rowid_`)")
    } else {
        "COUNT(*)".to_string()
    };
    let count_sql = assemble(false, &count_expr, &from_sql, &where_sql, "");
    Ok(CompiledQuery {
        table,
        distinct,
        from_sql,
        where_sql,
        order_sql,
        select_sql,
        count_sql,
        params: ctx.params,
        guards: ctx.guards,
        never,
        bool_eqs: ctx.bool_eqs,
    })
}

/// Compiles a single rule or filter for `collection` (no caching). `allow_hidden`: whether
/// hidden fields may be referenced (PocketBase builds collection rules with `true`; a
/// client filter of a non-superuser with `false`).
pub fn compile_condition(
    schema: &Schema,
    collection: &str,
    text: &str,
    req: &RequestInfo,
    allow_hidden: bool,
) -> Result<CompiledFilter, QueryError> {
    condition(schema, collection, text, req, allow_hidden, true)
}

/// [`compile_condition`] without folding: the SQL PocketBase generates, unfolded (tests
/// compare SQLite's answer to it with the folded one).
#[doc(hidden)]
pub fn compile_condition_unfolded(
    schema: &Schema,
    collection: &str,
    text: &str,
    req: &RequestInfo,
    allow_hidden: bool,
) -> Result<CompiledFilter, QueryError> {
    condition(schema, collection, text, req, allow_hidden, false)
}

fn condition(
    schema: &Schema,
    collection: &str,
    text: &str,
    req: &RequestInfo,
    allow_hidden: bool,
    fold: bool,
) -> Result<CompiledFilter, QueryError> {
    let coll = schema
        .collection(collection)
        .cloned()
        .ok_or_else(|| QueryError::invalid_param(format!("missing collection {collection:?}")))?;
    let mut ctx = Ctx::default();
    let mut res = Resolver::new(schema, coll.clone(), req, allow_hidden);
    res.fold = fold;
    let main = compile_filter_into(&mut res, &mut ctx, text)?;
    let (joins, extra, distinct) = res.finish(&mut ctx)?;
    let mut wheres = Vec::new();
    let mut constant = None;
    match main {
        Built::Sql(s) => wheres.push(s),
        Built::Const(Truth::True) if extra.is_empty() => constant = Some(true),
        Built::Const(Truth::True) => {}
        Built::Const(_) => constant = Some(false),
    }
    if constant == Some(false) {
        wheres = vec!["FALSE".to_string()];
    } else {
        wheres.extend(extra);
    }
    if wheres.is_empty() {
        wheres.push("TRUE".to_string());
    }
    Ok(CompiledFilter {
        table: coll.name.clone(),
        distinct,
        from_sql: format!("`{}`{joins}", coll.name),
        where_sql: wheres.join(" AND "),
        params: ctx.params,
        guards: ctx.guards,
        constant,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EntryKind {
    List,
    Condition { allow_hidden: bool },
    Fold,
}

#[derive(Debug)]
struct Entry<T> {
    kind: EntryKind,
    collection: String,
    text: String,
    sort: String,
    superuser: bool,
    value: Arc<T>,
    guards: Vec<Guard>,
}

/// A rule's fold tree by (collection, rule text); `None`: the rule does not parse.
type FoldEntry = (String, String, Option<Arc<FoldTree>>);

/// Max compilations kept per key (distinct request shapes).
const MAX_VARIANTS: usize = 8;

/// A bounded cache of compiled queries. One per worker thread; invalidated as a whole when
/// the schema version changes.
#[derive(Debug)]
pub struct QueryCache {
    capacity: usize,
    version: Option<u64>,
    len: usize,
    lists: HashMap<u64, Vec<Entry<CompiledQuery>>>,
    conditions: HashMap<u64, Vec<Entry<CompiledFilter>>>,
    /// Fold trees of rules for [`QueryCache::decide`], by (collection, rule).
    folds: HashMap<u64, Vec<FoldEntry>>,
    pub hits: u64,
    pub misses: u64,
}

fn key_hash(kind: EntryKind, collection: &str, text: &str, sort: &str, superuser: bool) -> u64 {
    let mut h = DefaultHasher::new();
    kind.hash(&mut h);
    collection.hash(&mut h);
    text.hash(&mut h);
    sort.hash(&mut h);
    superuser.hash(&mut h);
    h.finish()
}

/// What a kept compilation is for, its guards aside.
#[derive(Clone, Copy)]
struct Key<'a> {
    kind: EntryKind,
    collection: &'a str,
    text: &'a str,
    sort: &'a str,
    superuser: bool,
}

impl Key<'_> {
    fn hash(&self) -> u64 {
        key_hash(
            self.kind,
            self.collection,
            self.text,
            self.sort,
            self.superuser,
        )
    }

    /// Whether `e` was compiled for this key (its guards still decide whether it fits).
    fn names<T>(&self, e: &Entry<T>) -> bool {
        e.kind == self.kind
            && e.superuser == self.superuser
            && e.collection == self.collection
            && e.text == self.text
            && e.sort == self.sort
    }
}

impl QueryCache {
    /// `capacity`: max compiled statements kept.
    pub fn new(capacity: usize) -> Self {
        QueryCache {
            capacity: capacity.max(1),
            version: None,
            len: 0,
            lists: HashMap::new(),
            conditions: HashMap::new(),
            folds: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.lists.clear();
        self.conditions.clear();
        self.folds.clear();
        self.len = 0;
    }

    fn check_version(&mut self, schema: &Schema) {
        if self.version != Some(schema.version()) {
            self.clear();
            self.version = Some(schema.version());
        }
    }

    fn make_room(&mut self) {
        if self.len < self.capacity {
            return;
        }
        // evict one key (all its variants)
        if let Some(k) = self.lists.keys().next().copied() {
            let v = self.lists.remove(&k).unwrap_or_default();
            self.len -= v.len();
        } else if let Some(k) = self.conditions.keys().next().copied() {
            let v = self.conditions.remove(&k).unwrap_or_default();
            self.len -= v.len();
        }
    }

    /// The list query for (collection, filter, sort) and this request's shape.
    pub fn list(
        &mut self,
        schema: &Schema,
        collection: &str,
        filter: &str,
        sort: &str,
        req: &RequestInfo,
    ) -> Result<Arc<CompiledQuery>, QueryError> {
        let key = Key {
            kind: EntryKind::List,
            collection,
            text: filter,
            sort,
            superuser: req.superuser,
        };
        self.cached(
            schema,
            key,
            req,
            |c| &mut c.lists,
            |q| &q.guards,
            || compile_list(schema, collection, filter, sort, req),
        )
    }

    /// The compilation `key` names whose guards hold for `req`, or `compile`'s, kept.
    fn cached<T>(
        &mut self,
        schema: &Schema,
        key: Key<'_>,
        req: &RequestInfo,
        map: fn(&mut QueryCache) -> &mut HashMap<u64, Vec<Entry<T>>>,
        guards: fn(&T) -> &Vec<Guard>,
        compile: impl FnOnce() -> Result<T, QueryError>,
    ) -> Result<Arc<T>, QueryError> {
        self.check_version(schema);
        let h = key.hash();
        let hit = map(self).get(&h).and_then(|entries| {
            entries
                .iter()
                .find(|e| key.names(e) && e.guards.iter().all(|g| g.holds(req)))
                .map(|e| e.value.clone())
        });
        if let Some(value) = hit {
            self.hits += 1;
            return Ok(value);
        }
        self.misses += 1;
        let compiled = Arc::new(compile()?);
        self.make_room();
        let entries = map(self).entry(h).or_default();
        let evicted = entries.len() >= MAX_VARIANTS;
        if evicted {
            entries.remove(0);
        }
        entries.push(Entry {
            kind: key.kind,
            collection: key.collection.to_string(),
            text: key.text.to_string(),
            sort: key.sort.to_string(),
            superuser: key.superuser,
            guards: guards(&compiled).clone(),
            value: compiled.clone(),
        });
        if !evicted {
            self.len += 1;
        }
        Ok(compiled)
    }

    /// Whether `rule` is decided for `req` by what is known without the request body and
    /// without the database ([`fold`](crate::FoldTree)): `Some(true)` passes, `Some(false)`
    /// fails (a NULL outcome included), `None` depends on a record, the body, the database
    /// or the clock, or the rule does not parse. A record write refuses on `Some(false)`
    /// before reading its body (issue 16).
    pub fn decide(
        &mut self,
        schema: &Schema,
        collection: &str,
        rule: &str,
        req: &RequestInfo,
    ) -> Option<bool> {
        self.check_version(schema);
        if !can_fold(schema, req) {
            return None;
        }
        let h = key_hash(EntryKind::Fold, collection, rule, "", false);
        let found = self
            .folds
            .get(&h)
            .and_then(|v| v.iter().find(|(c, r, _)| c == collection && r == rule))
            .map(|(_, _, t)| t.clone());
        let tree = match found {
            Some(t) => t,
            None => {
                let coll = schema.collection(collection)?.clone();
                let tree = fold_tree_of(schema, coll, rule).map(Arc::new);
                if self.folds.len() >= self.capacity {
                    self.folds.clear();
                }
                self.folds.entry(h).or_default().push((
                    collection.to_string(),
                    rule.to_string(),
                    tree.clone(),
                ));
                tree
            }
        };
        Some(tree?.decide(req)? == Truth::True)
    }

    /// A rule/filter condition for `collection` and this request's shape.
    pub fn condition(
        &mut self,
        schema: &Schema,
        collection: &str,
        text: &str,
        req: &RequestInfo,
        allow_hidden: bool,
    ) -> Result<Arc<CompiledFilter>, QueryError> {
        let key = Key {
            kind: EntryKind::Condition { allow_hidden },
            collection,
            text,
            sort: "",
            superuser: req.superuser,
        };
        self.cached(
            schema,
            key,
            req,
            |c| &mut c.conditions,
            |f| &f.guards,
            || compile_condition(schema, collection, text, req, allow_hidden),
        )
    }
}

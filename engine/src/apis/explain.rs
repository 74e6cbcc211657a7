//! `GET /api/collections/{collection}/explain?filter=…&sort=…` (PocketBun only, superusers):
//! SQLite's plan for the records list query of that filter and sort, and the index that
//! would serve it. PocketBase has no such route (it answers 404), so the dashboard offers
//! "Explain" only where this answers.
//!
//! The filter and sort go through the same compiler and cache as `GET …/records` and are
//! bound as that list binds them (first page, 30 per page), and the page and count
//! statements are the ones the list chooses (its own, or the scans that replace a search by
//! a bool: `recstore::rules::list_sql`), so the plans are the ones the list runs. Only `EXPLAIN QUERY PLAN` is executed: the query itself never runs, whatever its
//! cost. Planning one statement takes tens of microseconds, so it stays on the worker.
//!
//! The suggestion, from the parsed filter: the fields compared with `=` to a value in the
//! top-level `&&` chain, then the first field compared with `<`, `<=`, `>` or `>=`, or, when
//! there is none, the sort fields. Only fields stored as one plain column qualify (not
//! JSON, geoPoint, password or multi-valued select/file/relation, whose comparisons go
//! through `json_each`), and only bare names (`title:lower` compares `LOWER(title)`). `~`
//! compiles to `LIKE '%…%'`, which no B-tree index serves. When an existing full index
//! (`PRAGMA index_list`, so SQLite's own primary-key index too) already leads with those
//! columns, nothing is suggested.

use crate::apis::extract::CollectionOf;
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult};
use crate::go::{query_get, query_pairs};
use crate::records::access::{now_ms, query_error};
use crate::records::bound;
use pocketbun_http::{Method, Request};
use pocketbun_query::{
    self as query, parse_sort, FieldType, Group, Item, Op, Operand, Value as QValue,
    DEFAULT_PER_PAGE,
};
use pocketbun_storage::Ident;
use serde::Serialize;
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes.add(
        Method::Get,
        "/api/collections/{collection}/explain",
        |ctx, req| Box::pin(explain(ctx, req)),
    );
}

#[derive(Serialize, Debug, PartialEq)]
struct PlanRow {
    id: i64,
    parent: i64,
    detail: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Explained {
    /// The list statement as compiled (placeholders, not values).
    sql: String,
    plan: Vec<PlanRow>,
    count_plan: Vec<PlanRow>,
    /// Some step reads every row of the collection's table.
    full_scan: bool,
    suggested_columns: Vec<String>,
    suggested_index: Option<String>,
    note: String,
}

async fn explain(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let schema = ctx.shared.schema.get();
    let coll = crate::apis::extract::collection(&schema, &req, CollectionOf::Any)?;
    let qcoll = schema
        .query
        .collection(&coll.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(Some("Missing collection context.")))?;
    let pairs = query_pairs(req.query());
    let caller = crate::apis::caller::caller(&ctx, &schema, &req, &pairs)?;
    let filter = query_get(&pairs, "filter");
    let sort = query_get(&pairs, "sort");
    let compiled = ctx
        .queries
        .borrow_mut()
        .list(&schema.query, &coll.name, filter, sort, &caller.info)
        .map_err(|e| query_error(&e))?;
    let mut params = compiled.bind(&caller.info, now_ms());
    let n = params.len();
    params.push(QValue::Integer(DEFAULT_PER_PAGE as i64));
    params.push(QValue::Integer(0));

    let wanted = if coll.is_view() {
        Suggestion::default()
    } else {
        suggest(&qcoll, filter, sort)
    };
    let (sql, plan, count_plan, indexes, taken_names) = ctx
        .reader
        .read(|conn| {
            // the statements the list runs: its own, or the scans chosen over a search by
            // a bool (`recstore::rules::list_sql`)
            let chosen = crate::apis::records::list_sql(
                &ctx, conn, &schema, &coll.name, filter, sort, &caller, &compiled, &params,
            )?;
            let sql = chosen.page.as_deref().unwrap_or(&compiled.select_sql);
            let count = chosen.count.as_deref().unwrap_or(&compiled.count_sql);
            let plan = query_plan(conn, sql, &params)?;
            let count_plan = query_plan(conn, count, &params[..n])?;
            let sql = sql.to_string();
            Ok((
                sql,
                plan,
                count_plan,
                existing_indexes(conn, &coll.name)?,
                index_names(conn)?,
            ))
        })
        .map_err(|e| ApiError::bad_request(None).caused_by(e))?;

    let full_scan = plan
        .iter()
        .chain(&count_plan)
        .any(|r| is_table_scan(&r.detail, &coll.name));
    let columns = wanted.columns();
    let mut out = Explained {
        sql,
        plan,
        count_plan,
        full_scan,
        suggested_columns: columns.iter().map(|(c, _)| c.clone()).collect(),
        suggested_index: None,
        note: String::new(),
    };
    if coll.is_view() {
        out.note = "A view collection has no indexes of its own; index its source tables.".into();
    } else if columns.is_empty() {
        out.note = wanted.why_none();
    } else if let Some(name) = indexes.iter().find(|(_, cols)| wanted.covered_by(cols)) {
        out.note = format!(
            "The existing index {} already leads with these columns.",
            name.0
        );
    } else {
        let sql = index_sql(&coll.name, &columns, &taken_names);
        out.note = "Add this index to serve the filter and sort from it.".into();
        out.suggested_index = Some(sql);
    }
    Ok(json_response(200, &out))
}

fn query_plan(
    conn: &pocketbun_storage::rusqlite::Connection,
    sql: &str,
    params: &[QValue],
) -> pocketbun_storage::Result<Vec<PlanRow>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let k = stmt.parameter_count();
    let rows = stmt
        .query_map(bound(params, k), |r| {
            Ok(PlanRow {
                id: r.get(0)?,
                parent: r.get(1)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Each full (non-partial) index of `table` with its columns in order (expression columns
/// are empty names, so they never match a field).
fn existing_indexes(
    conn: &pocketbun_storage::rusqlite::Connection,
    table: &str,
) -> pocketbun_storage::Result<Vec<(String, Vec<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT il.name, COALESCE(ii.name, '') FROM pragma_index_list(?1) il \
         JOIN pragma_index_info(il.name) ii WHERE il.partial = 0 ORDER BY il.name, ii.seqno",
    )?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let rows = stmt.query_map([table], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (name, col) = row?;
        match out.last_mut() {
            Some((last, cols)) if *last == name => cols.push(col),
            _ => out.push((name, vec![col])),
        }
    }
    Ok(out)
}

/// Every index name of the database (index names are database-wide in SQLite).
fn index_names(
    conn: &pocketbun_storage::rusqlite::Connection,
) -> pocketbun_storage::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'index'")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

/// `SCAN posts` (SQLite 3.36+) or `SCAN TABLE posts` (older), without an index.
fn is_table_scan(detail: &str, table: &str) -> bool {
    let rest = match detail.strip_prefix("SCAN ") {
        Some(r) => r.strip_prefix("TABLE ").unwrap_or(r),
        None => return false,
    };
    let name = rest.split(' ').next().unwrap_or("");
    name.trim_matches('`').eq_ignore_ascii_case(table) && !rest.contains(" USING ")
}

/// `CREATE INDEX` in PocketBase's style, named after the table and columns, with a suffix
/// when that name is taken.
fn index_sql(table: &str, columns: &[(String, bool)], taken: &[String]) -> String {
    let mut base = format!(
        "idx_{table}_{}",
        columns
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join("_")
    );
    // keep names readable; a long table name plus several columns is still unique enough
    // with the suffix below
    if base.len() > 60 {
        let mut cut = 60;
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        base.truncate(cut);
    }
    let mut name = base.clone();
    let mut i = 2;
    while taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
        name = format!("{base}_{i}");
        i += 1;
    }
    let cols = columns
        .iter()
        .map(|(c, desc)| format!("{}{}", Ident(c), if *desc { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ");
    format!("CREATE INDEX {} ON {} ({cols})", Ident(&name), Ident(table))
}

/// What the filter and sort constrain, by kind.
#[derive(Default, Debug, PartialEq)]
struct Suggestion {
    equal: Vec<String>,
    range: Option<String>,
    sort: Vec<(String, bool)>,
    /// The filter has a top-level `||`: no column is constrained on every row.
    or_at_top: bool,
    /// Some comparison is a `~`/`!~` (LIKE with leading `%`).
    like: bool,
}

impl Suggestion {
    /// The index columns: equality columns, then the range column or else the sort columns.
    fn columns(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self.equal.iter().map(|c| (c.clone(), false)).collect();
        if let Some(r) = &self.range {
            out.push((r.clone(), false));
        } else {
            for (c, desc) in &self.sort {
                if !out.iter().any(|(o, _)| o == c) {
                    out.push((c.clone(), *desc));
                }
            }
        }
        out
    }

    /// Whether an index with `cols` already leads with the suggested columns (the equality
    /// columns in any order, then the rest in order).
    fn covered_by(&self, cols: &[String]) -> bool {
        let wanted = self.columns();
        if wanted.is_empty() || cols.len() < wanted.len() {
            return false;
        }
        let e = self.equal.len();
        let lead = &cols[..e];
        self.equal
            .iter()
            .all(|c| lead.iter().any(|l| l.eq_ignore_ascii_case(c)))
            && wanted[e..]
                .iter()
                .zip(&cols[e..])
                .all(|((w, _), c)| w.eq_ignore_ascii_case(c))
    }

    fn why_none(&self) -> String {
        if self.or_at_top {
            "The filter joins its conditions with ||: no single index serves every branch.".into()
        } else if self.like {
            "~ compiles to LIKE '%…%', which an index cannot serve.".into()
        } else {
            "No plain column is compared with a value or sorted on: no index to suggest.".into()
        }
    }
}

/// A bare field name stored as one column that a B-tree index can serve.
fn indexable<'a>(coll: &query::Collection, operand: &'a Operand) -> Option<&'a str> {
    let Operand::Ident(name) = operand else {
        return None;
    };
    let field = coll.field(name)?;
    let one_value = !field.kind.is_multi_valuer() || !field.multiple;
    let plain = one_value
        && !matches!(
            field.kind,
            FieldType::Json | FieldType::GeoPoint | FieldType::Password
        );
    plain.then_some(name.as_str())
}

/// A value side: a literal or a macro that binds one known value (not `@request.*`, whose
/// value may be empty and then compiles to a `COALESCE` no index serves).
fn is_value(operand: &Operand) -> bool {
    match operand {
        Operand::Text(s) => !s.is_empty(),
        Operand::Number(_) => true,
        Operand::Ident(s) => {
            matches!(s.as_str(), "true" | "false")
                || (s.starts_with('@')
                    && !s.starts_with("@request")
                    && !s.starts_with("@collection"))
        }
        Operand::Func { .. } => false,
    }
}

fn suggest(coll: &query::Collection, filter: &str, sort: &str) -> Suggestion {
    let mut s = Suggestion::default();
    if !filter.trim().is_empty() {
        if let Ok(groups) = query::parse(filter) {
            walk(coll, &groups, &mut s);
        }
    }
    if !sort.is_empty() {
        for (name, desc) in parse_sort(sort) {
            match indexable(coll, &Operand::Ident(name.to_string())) {
                Some(n) => s.sort.push((n.to_string(), desc)),
                // a column the index cannot give in order ends what it can serve
                None => break,
            }
        }
    }
    s
}

/// Collects the comparisons of an `&&` chain (nested all-`&&` groups included).
fn walk(coll: &query::Collection, groups: &[Group], s: &mut Suggestion) {
    if groups.iter().skip(1).any(|g| g.join == query::Join::Or) {
        s.or_at_top = true;
        return;
    }
    for g in groups {
        match &g.item {
            Item::Group(inner) => walk(coll, inner, s),
            Item::Expr(e) => {
                let (field, op) = match (indexable(coll, &e.left), indexable(coll, &e.right)) {
                    (Some(f), None) if is_value(&e.right) => (f, e.op),
                    (None, Some(f)) if is_value(&e.left) => (f, flip(e.op)),
                    _ => {
                        if matches!(e.op.base(), Op::Like | Op::NotLike) {
                            s.like = true;
                        }
                        continue;
                    }
                };
                match op {
                    Op::Eq if !s.equal.iter().any(|c| c == field) => {
                        s.equal.push(field.to_string());
                    }
                    Op::Lt | Op::Lte | Op::Gt | Op::Gte if s.range.is_none() => {
                        s.range = Some(field.to_string());
                    }
                    Op::Like | Op::NotLike => s.like = true,
                    _ => {}
                }
            }
        }
    }
    // a column compared with `=` needs no range slot as well
    if let Some(r) = &s.range {
        if s.equal.contains(r) {
            s.range = None;
        }
    }
}

/// `value < field` is `field > value`.
fn flip(op: Op) -> Op {
    match op {
        Op::Lt => Op::Gt,
        Op::Lte => Op::Gte,
        Op::Gt => Op::Lt,
        Op::Gte => Op::Lte,
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use query::{Collection, CollectionType, Field};

    fn posts() -> Collection {
        let mut tags = Field::new("tags", FieldType::Relation);
        tags.multiple = true;
        Collection {
            id: "p".into(),
            name: "posts".into(),
            kind: CollectionType::Base,
            fields: vec![
                Field::new("id", FieldType::Text),
                Field::new("status", FieldType::Select),
                Field::new("owner", FieldType::Relation),
                Field::new("score", FieldType::Number),
                Field::new("title", FieldType::Text),
                Field::new("meta", FieldType::Json),
                Field::new("created", FieldType::Autodate),
                tags,
            ],
            list_rule: None,
            view_rule: None,
            indexes: Vec::new(),
        }
    }

    fn cols(filter: &str, sort: &str) -> Vec<(String, bool)> {
        suggest(&posts(), filter, sort).columns()
    }

    fn names(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|(c, d)| (c.to_string(), *d)).collect()
    }

    #[test]
    fn equality_then_range_or_sort() {
        assert_eq!(
            cols("status = 'open' && score > 3", "-created"),
            names(&[("status", false), ("score", false)])
        );
        assert_eq!(
            cols("status = 'open' && owner = 'x'", "-created"),
            names(&[("status", false), ("owner", false), ("created", true)])
        );
        assert_eq!(cols("3 < score", ""), names(&[("score", false)]));
        assert_eq!(
            cols("(status = 'a' && (owner = 'b'))", ""),
            names(&[("status", false), ("owner", false)])
        );
        assert_eq!(
            cols("", "title,-created"),
            names(&[("title", false), ("created", true)])
        );
        // a sort term an index cannot order by ends the usable prefix
        assert_eq!(
            cols("", "title,@random,created"),
            names(&[("title", false)])
        );
    }

    #[test]
    fn nothing_an_index_serves() {
        let s = suggest(&posts(), "status = 'a' || owner = 'b'", "");
        assert!(s.or_at_top && s.columns().is_empty());
        let s = suggest(&posts(), "title ~ 'x'", "");
        assert!(s.like && s.columns().is_empty());
        // json, multi-valued relations, modifiers, field-to-field and @request values
        for f in [
            "meta = 'x'",
            "tags = 'x'",
            "title:lower = 'x'",
            "title = status",
            "owner = @request.auth.id",
            "title = ''",
        ] {
            assert!(cols(f, "").is_empty(), "{f}");
        }
    }

    #[test]
    fn an_index_leading_with_the_columns_covers() {
        let s = suggest(&posts(), "owner = 'b' && status = 'a' && score >= 1", "");
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(s.covered_by(&v(&["status", "owner", "score", "title"])));
        assert!(!s.covered_by(&v(&["status", "score", "owner"])));
        assert!(!s.covered_by(&v(&["status", "owner"])));
    }

    #[test]
    fn scans_and_names() {
        assert!(is_table_scan("SCAN posts", "posts"));
        assert!(is_table_scan("SCAN TABLE posts", "posts"));
        assert!(!is_table_scan("SCAN posts USING INDEX idx_x", "posts"));
        assert!(!is_table_scan(
            "SEARCH posts USING INDEX idx_x (status=?)",
            "posts"
        ));
        assert!(!is_table_scan("SCAN postsx", "posts"));
        let sql = index_sql(
            "posts",
            &names(&[("status", false), ("created", true)]),
            &["idx_posts_status_created".to_string()],
        );
        assert_eq!(
            sql,
            "CREATE INDEX `idx_posts_status_created_2` ON `posts` (`status`, `created` DESC)"
        );
    }
}

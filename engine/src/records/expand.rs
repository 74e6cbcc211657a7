//! `expand=`: PocketBase's relation expansion (direct relations and `x_via_y`
//! back-relations, up to 6 levels), with the related records fetched in one statement per
//! relation and level, and shown only when the caller may view them.
//!
//! Semantics kept from PocketBase: each normalised path is expanded on its own and merged
//! into what earlier paths expanded; a path that fails anywhere (unknown field, a related
//! collection without a view rule for a non-superuser) leaves its relations unexpanded;
//! records an expanded path reached get an `expand` key even when nothing was found.

use super::access::{now_ms, resolve_flags, Caller, CONTEXT_EXPAND};
use super::db::Db;
use super::{value, Arena, Exp};
use crate::error::ApiError;
use crate::go::query_get;
use crate::schema::SchemaPair;
use pocketbun_query::{RequestInfo, Value as QValue};
use pocketbun_storage::collections::model::find_single_column_unique_index;
use pocketbun_storage::collections::{Collection, FieldKind};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Max relation depth of one expand path.
pub const MAX_NESTED_RELS: usize = 6;
/// Max back-related records per record (PocketBase's arbitrary cap).
const MAX_BACK_RELS: usize = 1000;

/// At most this many distinct paths of one `expand=` are expanded; later ones are ignored.
/// PocketBase has no such cap, but each path may cost up to [`MAX_NESTED_RELS`] statements
/// (`rel.x1,rel.x2,…` fetches `rel` once per entry before failing), so an unbounded list let one
/// request run tens of thousands of statements on the worker; no real client names 100
/// distinct relation paths.
pub const MAX_EXPAND_PATHS: usize = 100;

/// PocketBase's `normalizeExpands`: spaces removed, dots trimmed, paths contained in a
/// longer one dropped, duplicates dropped; then at most [`MAX_EXPAND_PATHS`] are kept.
///
/// Linear in the length of `raw`: duplicates and contained paths are found through hash
/// sets (a search of the whole list per entry stalled a worker 5 s on 50k entries). Only
/// the first [`MAX_NESTED_RELS`] segments of a path are kept, as deeper ones are never
/// expanded; that also bounds the prefixes each path adds to the set.
pub fn normalize(raw: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for entry in raw.split(',') {
        let cleaned = entry.replace(' ', "");
        let path = cleaned.trim_matches('.');
        if path.is_empty() {
            continue;
        }
        // a cut right after an empty segment (`a.b.c.d.e..f`) would leave a trailing dot
        let path = match path.match_indices('.').nth(MAX_NESTED_RELS - 1) {
            Some((cut, _)) => path[..cut].trim_end_matches('.'),
            None => path,
        };
        if !seen.contains(path) {
            seen.insert(path.to_string());
            paths.push(path.to_string());
        }
    }
    // a path that is a dot-prefix of another (`a.b` of `a.b.c`) is expanded by that one
    let contained: HashSet<&str> = paths
        .iter()
        .flat_map(|p| p.match_indices('.').map(move |(i, _)| &p[..i]))
        .collect();
    let keep: Vec<bool> = paths
        .iter()
        .map(|p| !contained.contains(p.as_str()))
        .collect();
    drop(contained);
    paths
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .take(MAX_EXPAND_PATHS)
        .collect()
}

pub struct Expander<'a> {
    pub ctx: &'a Db,
    pub schema: &'a SchemaPair,
    /// The caller's request info with the `expand` context.
    pub info: RequestInfo,
}

impl<'a> Expander<'a> {
    pub fn new(ctx: &'a Db, schema: &'a SchemaPair, info: &RequestInfo) -> Self {
        let mut info = info.clone();
        info.context = CONTEXT_EXPAND.into();
        Expander { ctx, schema, info }
    }

    /// Expands every path of `raw` on `recs` (all of one collection). Failed paths are
    /// skipped, as in PocketBase, and returned with their reason; only internal errors
    /// fail the request.
    pub fn expand_all(
        &self,
        arena: &mut Arena,
        recs: &[usize],
        raw: &str,
    ) -> Result<Vec<(String, &'static str)>, ApiError> {
        let mut failed = Vec::new();
        if recs.is_empty() {
            return Ok(failed);
        }
        for path in normalize(raw) {
            match self.expand(arena, recs, &path, 1) {
                Ok(()) => {}
                Err(Failure::Path(reason)) => failed.push((path, reason)),
                Err(Failure::Api(e)) => return Err(e),
            }
        }
        Ok(failed)
    }

    fn expand(
        &self,
        arena: &mut Arena,
        recs: &[usize],
        path: &str,
        level: usize,
    ) -> Result<(), Failure> {
        if path.is_empty() || level > MAX_NESTED_RELS || recs.is_empty() {
            return Ok(());
        }
        let main = arena.recs[recs[0]].coll.clone();
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };

        // (relation key, target collection, multiple, ids per record)
        let (rel_coll, multiple, ids_of): (Arc<Collection>, bool, Vec<Vec<String>>) =
            if let Some((back_name, back_field)) = back_relation(head) {
                let indirect =
                    self.collection(back_name, "couldn't find back-related collection")?;
                let field = indirect
                    .field(back_field)
                    .filter(|f| f.relation_target() == Some(main.id.as_str()))
                    .ok_or_else(|| Failure::path("couldn't find back-relation field"))?
                    .clone();
                let ids = self.back_relation_ids(arena, recs, &indirect, &field)?;
                let multiple =
                    find_single_column_unique_index(&indirect.indexes, &field.name).is_none();
                (indirect, multiple, ids)
            } else {
                let field = main
                    .field(head)
                    .filter(|f| matches!(f.kind, FieldKind::Relation { .. }))
                    .ok_or_else(|| Failure::path("couldn't find relation field"))?
                    .clone();
                let target = field.relation_target().unwrap_or_default();
                let rel_coll = self.collection(target, "couldn't find related collection")?;
                let ids = recs
                    .iter()
                    .map(|&r| {
                        let rec = &arena.recs[r];
                        rec.value(&field.name)
                            .map(|v| value::relation_ids(&field, v))
                            .unwrap_or_default()
                    })
                    .collect();
                (rel_coll, field.is_multiple(), ids)
            };

        let mut unique: Vec<&str> = Vec::new();
        {
            let mut seen = std::collections::HashSet::new();
            for ids in &ids_of {
                for id in ids {
                    if seen.insert(id.as_str()) {
                        unique.push(id);
                    }
                }
            }
        }
        let rels = self.fetch(arena, &rel_coll, &unique)?;
        if let Some(rest) = rest {
            self.expand(arena, &rels, rest, level + 1)?;
        }
        let by_id: HashMap<String, usize> = rels
            .iter()
            .map(|&r| (arena.recs[r].id().to_string(), r))
            .collect();

        for (k, &model) in recs.iter().enumerate() {
            if arena.recs[model].expand.is_none() {
                arena.recs[model].expand = Some(BTreeMap::new());
            }
            let valid: Vec<usize> = ids_of[k]
                .iter()
                .filter_map(|id| by_id.get(id).copied())
                .collect();
            if valid.is_empty() {
                continue;
            }
            let old = arena.recs[model]
                .expand
                .as_ref()
                .and_then(|e| e.get(head))
                .map(|e| e.items().to_vec())
                .unwrap_or_default();
            for o in old {
                let oid = arena.recs[o].id().to_string();
                for &rel in &valid {
                    if arena.recs[rel].id() == oid {
                        let src = arena.recs[o].expand.clone().unwrap_or_default();
                        merge_expand(arena, rel, src);
                    }
                }
            }
            let exp = if multiple {
                Exp::Many(valid)
            } else {
                Exp::One(valid[0])
            };
            if let Some(e) = arena.recs[model].expand.as_mut() {
                e.insert(head.to_string(), exp);
            }
        }
        Ok(())
    }

    /// Collection `name` of the schema (`missing`: the failure when there is none).
    fn collection(&self, name: &str, missing: &'static str) -> Result<Arc<Collection>, Failure> {
        let found = self.schema.collections.get(name).cloned();
        found.ok_or_else(|| Failure::path(missing))
    }

    /// The ids of the `indirect` records pointing at each record through `field`, in
    /// storage order, at most [`MAX_BACK_RELS`] per record; one statement for all records.
    fn back_relation_ids(
        &self,
        arena: &Arena,
        recs: &[usize],
        indirect: &Collection,
        field: &pocketbun_storage::collections::Field,
    ) -> Result<Vec<Vec<String>>, Failure> {
        let keys: Vec<String> = recs
            .iter()
            .map(|&r| arena.recs[r].id().to_string())
            .collect();
        let param = serde_json::Value::from(keys.clone()).to_string();
        let pairs: Vec<(String, String)> = self
            .ctx
            .reader
            .read(|conn| {
                Ok(crate::recstore::rows::back_relations(
                    conn,
                    &indirect.name,
                    &field.name,
                    field.is_multiple(),
                    &param,
                )?)
            })
            .map_err(|e| Failure::Api(e.into()))?;
        let mut grouped: HashMap<&str, Vec<String>> = HashMap::new();
        for (child, parent) in &pairs {
            let list = grouped.entry(parent.as_str()).or_default();
            if list.len() < MAX_BACK_RELS && !list.contains(child) {
                list.push(child.clone());
            }
        }
        Ok(keys
            .iter()
            .map(|k| grouped.get(k.as_str()).cloned().unwrap_or_default())
            .collect())
    }

    /// PocketBase's expand fetch: the records of `coll` with `ids` that the caller may view
    /// (its view rule applied; a collection without one is superuser-only).
    fn fetch(
        &self,
        arena: &mut Arena,
        coll: &Arc<Collection>,
        ids: &[&str],
    ) -> Result<Vec<usize>, Failure> {
        let superuser = self.info.superuser;
        if !superuser && coll.view_rule.is_none() {
            return Err(Failure::path("only superusers can view the collection"));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids_param = QValue::Text(serde_json::Value::from(ids.to_vec()).to_string());
        let rule = coll
            .view_rule
            .as_deref()
            .filter(|r| !r.is_empty() && !superuser);
        let (sql, mut params) = match rule {
            None => (crate::recstore::rows::in_ids(&coll.name), Vec::new()),
            Some(rule) => {
                let cond = self
                    .ctx
                    .queries
                    .borrow_mut()
                    .condition(&self.schema.query, &coll.name, rule, &self.info, true)
                    // no cause: a failed path is skipped silently, as in PocketBase
                    .map_err(|_| Failure::path("the view rule does not compile"))?;
                let params = cond.bind(&self.info, now_ms());
                (
                    crate::recstore::rules::rows_in_ids(&coll.name, &cond, params.len() + 1),
                    params,
                )
            }
        };
        if rule.is_none() {
            params.clear();
        }
        params.push(ids_param);
        let loaded = self
            .ctx
            .reader
            .read(|conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                Ok(arena.load(coll, &mut stmt, &params)?)
            })
            .map_err(|e| Failure::Api(e.into()))?;
        // a failure here is only logged by PocketBase: the records are still expanded
        let _ = resolve_flags(self.ctx, self.schema, &self.info, arena, &loaded);
        Ok(loaded)
    }
}

enum Failure {
    /// The expand path fails (PocketBase skips it); the reason is for debugging only.
    Path(&'static str),
    /// An internal error that fails the request.
    Api(ApiError),
}

impl Failure {
    fn path(msg: &'static str) -> Self {
        Failure::Path(msg)
    }
}

/// `name_via_field` (or the deprecated `name(field)`) back-relation syntax.
fn back_relation(head: &str) -> Option<(&str, &str)> {
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if let Some(inner) = head.strip_suffix(')') {
        let (a, b) = inner.split_once('(')?;
        return (word(a) && word(b)).then_some((a, b));
    }
    // greedy first group: the last `_via_` with word characters on both sides
    let idx = head.rfind("_via_")?;
    let (a, b) = (&head[..idx], &head[idx + 5..]);
    (word(a) && word(b)).then_some((a, b))
}

/// PocketBase's `Record.MergeExpand` on arena records.
fn merge_expand(arena: &mut Arena, target: usize, src: BTreeMap<String, Exp>) {
    if src.is_empty() {
        return;
    }
    let Some(mut old_map) = arena.recs[target].expand.take() else {
        arena.recs[target].expand = Some(src);
        return;
    };
    for (key, new) in src {
        let Some(old) = old_map.get(&key).cloned() else {
            old_map.insert(key, new);
            continue;
        };
        let was_old_slice = matches!(old, Exp::Many(_));
        let was_new_slice = matches!(new, Exp::Many(_));
        let mut old_slice = old.items().to_vec();
        for &n in new.items() {
            let nid = arena.recs[n].id().to_string();
            match old_slice.iter().find(|&&o| arena.recs[o].id() == nid) {
                Some(&o) => {
                    let sub = arena.recs[n].expand.clone().unwrap_or_default();
                    if o == target {
                        continue;
                    }
                    merge_expand(arena, o, sub);
                }
                None => old_slice.push(n),
            }
        }
        let merged = if was_old_slice || was_new_slice || old_slice.is_empty() {
            Exp::Many(old_slice)
        } else {
            Exp::One(old_slice[0])
        };
        old_map.insert(key, merged);
    }
    arena.recs[target].expand = Some(old_map);
}

/// PocketBase's `EnrichRecords`: visibility flags, then `expand`.
pub fn enrich(
    ctx: &Db,
    schema: &SchemaPair,
    caller: &Caller,
    arena: &mut Arena,
    recs: &[usize],
    query: &[(String, String)],
) -> Result<(), ApiError> {
    if recs.is_empty() {
        return Ok(());
    }
    // PocketBase only logs enrich failures (and then skips the expand)
    if resolve_flags(ctx, schema, &caller.info, arena, recs).is_err() {
        return Ok(());
    }
    let expand = query_get(query, "expand");
    if !expand.is_empty() {
        // failed paths are only logged by PocketBase
        let _failed = Expander::new(ctx, schema, &caller.info).expand_all(arena, recs, expand)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(
            normalize("a.b.c, a.b,   test  , ,test,.x."),
            vec!["a.b.c", "test", "x"]
        );
        // segments past the sixth are never expanded: cut, then deduplicated
        assert_eq!(
            normalize("a.b.c.d.e.f.g,a.b.c.d.e.f.h,a.b.c.d.e.f,x..y"),
            vec!["a.b.c.d.e.f", "x..y"]
        );
        // the order of first appearance; capped
        let many: Vec<String> = (0..500).map(|i| format!("r{i}")).collect();
        let got = normalize(&format!("{},r1.x", many.join(",")));
        assert_eq!(got.len(), MAX_EXPAND_PATHS);
        assert_eq!(got[0], "r0");
        assert_eq!(got[1], "r2");
    }

    #[test]
    fn back_relations() {
        assert_eq!(back_relation("demo1_via_rel"), Some(("demo1", "rel")));
        assert_eq!(back_relation("a_via_b_via_c"), Some(("a_via_b", "c")));
        assert_eq!(back_relation("demo1(rel)"), Some(("demo1", "rel")));
        assert_eq!(back_relation("rel_one"), None);
        assert_eq!(back_relation("x_via_"), None);
    }
}

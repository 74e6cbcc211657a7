//! Who is calling and what they may see: the request info that `@request.*` reads, the
//! auth record's full row, and the visibility flags of loaded records.

use super::db::Db;
use super::{bound, Arena, SqlVal};
use crate::auth::AuthRecord;
use crate::error::ApiError;
use crate::schema::SchemaPair;
use pocketbun_query::{AuthInfo, QueryError, RequestInfo, AUTH_INFO_FIELDS};
use pocketbun_storage::collections::Collection;
use pocketbun_storage::rusqlite;
use serde_json::{Map, Value as Json};

/// `@request.context` of the main request and of expand fetches.
pub const CONTEXT_DEFAULT: &str = "default";
pub const CONTEXT_EXPAND: &str = "expand";

/// `inflector.Snakecase` of a canonical header name (`X-Token` → `x_token`).
fn snake_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.extend(part.chars().map(|c| c.to_ascii_lowercase()));
    }
    out
}

/// The caller: its token's record (if valid) and the request info for rules.
pub struct Caller {
    pub auth: Option<AuthRecord>,
    pub info: RequestInfo,
}

impl Caller {
    pub fn superuser(&self) -> bool {
        self.info.superuser
    }

    /// Builds a caller: `auth` the record its token names, `method` and `headers` as the
    /// request sent them (`@request.method`, `@request.headers.*`), `query` its URL query.
    /// The auth record's row is loaded only when a rule or the query reads
    /// `@request.auth.*` beyond what the token names.
    pub fn new<'h>(
        ctx: &Db,
        schema: &SchemaPair,
        auth: Option<AuthRecord>,
        method: &str,
        headers: impl Iterator<Item = (&'h str, &'h str)>,
        query: &[(String, String)],
    ) -> Result<Caller, ApiError> {
        let superuser = auth.as_ref().is_some_and(AuthRecord::is_superuser);
        let mut info = RequestInfo {
            context: CONTEXT_DEFAULT.into(),
            method: method.to_string(),
            superuser,
            ..Default::default()
        };
        // `@request.query`/`@request.headers` can only be read by a rule or by this
        // request's own filter/sort; most requests need neither map.
        let asked = |needle: &str| query.iter().any(|(_, v)| v.contains(needle));
        if schema.rules_read_query || asked("@request.query") {
            for (k, v) in query {
                info.query.insert(k.clone(), Json::String(v.clone()));
            }
        }
        if schema.rules_read_headers || asked("@request.headers") {
            for (k, v) in headers {
                let key = snake_header(k);
                if !info.headers.contains_key(&key) {
                    info.headers.insert(key, Json::String(v.to_string()));
                }
            }
        }
        if let Some(a) = &auth {
            let row_needed = schema.rules_read_auth_fields
                || query
                    .iter()
                    .any(|(_, v)| crate::schema::reads_auth_fields(v));
            info.auth = Some(if row_needed {
                load_auth_info(ctx, schema, a)?
            } else {
                // what the token names is all any rule or filter of this request reads
                AuthInfo {
                    id: a.id.clone(),
                    collection_id: a.collection_id.clone(),
                    collection_name: a.collection_name.clone(),
                    data: Map::new(),
                }
            });
        }
        Ok(Caller { auth, info })
    }
}

/// The auth record as rules see it: `id`, `collectionId`, `collectionName` (from the token)
/// and, in `data`, the fields rules read from the request info ([`AUTH_INFO_FIELDS`]:
/// `email`, `emailVisibility`, `verified`), as its JSON answer holds them. Any other
/// `@request.auth.<field>` is joined from the auth collection's table in SQL, so only those
/// columns are read: the whole row (a 48 MiB auth record) was copied, written as JSON and
/// parsed on the worker for every request of that caller, ~1 s of CPU in a debug build.
pub fn load_auth_info(
    ctx: &Db,
    schema: &SchemaPair,
    auth: &AuthRecord,
) -> Result<AuthInfo, ApiError> {
    let mut info = AuthInfo {
        id: auth.id.clone(),
        collection_id: auth.collection_id.clone(),
        collection_name: auth.collection_name.clone(),
        data: Map::new(),
    };
    let Some(coll) = schema.collections.get(&auth.collection_id).cloned() else {
        return Ok(info);
    };
    let fields = auth_info_fields(&coll);
    let columns = fields.iter().map(|&i| coll.fields[i].name.as_str());
    let row: Option<Vec<SqlVal>> = ctx.reader.read(|conn| {
        Ok(crate::recstore::rows::columns_by_id(
            conn,
            &coll.name,
            columns,
            &auth.id,
            |row| {
                (0..fields.len())
                    .map(|c| row.get_ref(c + 1).map(SqlVal::from_ref))
                    .collect::<rusqlite::Result<_>>()
            },
        )?)
    })?;
    if let Some(values) = row {
        info.data = auth_info_data(&coll, fields.iter().copied().zip(values.iter()));
    }
    Ok(info)
}

/// The indexes of `coll`'s fields in [`AUTH_INFO_FIELDS`].
fn auth_info_fields(coll: &Collection) -> Vec<usize> {
    (coll.fields.iter().enumerate())
        .filter(|(_, f)| AUTH_INFO_FIELDS.contains(&f.name.as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// [`AuthInfo::data`] from the values of [`AUTH_INFO_FIELDS`] (field index, stored value):
/// each as the record's JSON writes it (hidden ones too), parsed back.
fn auth_info_data<'a>(
    coll: &Collection,
    values: impl Iterator<Item = (usize, &'a SqlVal)>,
) -> Map<String, Json> {
    let mut data = Map::new();
    let mut out = String::new();
    for (i, v) in values {
        out.clear();
        super::value::write_field(&mut out, &coll.fields[i], v.borrow());
        if let Ok(v) = serde_json::from_str::<Json>(&out) {
            data.insert(coll.fields[i].name.clone(), v);
        }
    }
    data
}

/// [`AuthInfo::data`] of an auth record from all its stored values (one per field, in field
/// order), e.g. those of a realtime event.
pub fn auth_info_data_of(coll: &Collection, values: &[SqlVal]) -> Map<String, Json> {
    let fields = auth_info_fields(coll);
    auth_info_data(
        coll,
        fields
            .into_iter()
            .filter_map(|i| values.get(i).map(|v| (i, v))),
    )
}

/// A query error as PocketBase answers it.
pub fn query_error(err: &QueryError) -> ApiError {
    ApiError::new(err.status(), err.api_message())
}

/// PocketBase's `autoResolveRecordsFlags` for records of one collection: superusers see
/// hidden fields and every email; the owner sees its own email; so do the callers the
/// collection's `manageRule` lets manage the record.
pub fn resolve_flags(
    ctx: &Db,
    schema: &SchemaPair,
    info: &RequestInfo,
    arena: &mut Arena,
    recs: &[usize],
) -> Result<(), ApiError> {
    let Some(&first) = recs.first() else {
        return Ok(());
    };
    if info.superuser {
        for &i in recs {
            arena.recs[i].unhide = true;
            arena.recs[i].show_email = true;
        }
    }
    let coll = arena.recs[first].coll.clone();
    if !coll.is_auth() {
        return Ok(());
    }
    if let Some(auth) = &info.auth {
        for &i in recs {
            if arena.recs[i].id() == auth.id {
                arena.recs[i].show_email = true;
            }
        }
    }
    let Some(rule) = coll.auth.manage_rule.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(());
    };
    let cond = ctx
        .queries
        .borrow_mut()
        .condition(&schema.query, &coll.name, rule, info, true)
        .map_err(|e| query_error(&e))?;
    let ids: Vec<Json> = recs
        .iter()
        .map(|&i| Json::String(arena.recs[i].id().to_string()))
        .collect();
    let mut params = cond.bind(info, now_ms());
    let n = params.len();
    params.push(pocketbun_query::Value::Text(Json::Array(ids).to_string()));
    let sql = crate::recstore::rules::ids_in_ids(&coll.name, &cond, n + 1);
    let managed: Vec<String> = ctx.reader.read(|conn| {
        let mut stmt = conn.prepare_cached(&sql)?;
        let k = stmt.parameter_count();
        let rows = stmt.query_map(bound(&params, k), |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    for &i in recs {
        if managed.iter().any(|m| m == arena.recs[i].id()) {
            arena.recs[i].show_email = true;
        }
    }
    Ok(())
}

pub use crate::go::now_ms;

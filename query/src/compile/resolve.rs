//! Field resolution: a filter's field paths become SQL operands ([`RR`]) over the base
//! collection's alias and the LEFT JOINs they need (relations, back-relations,
//! `@collection.*`, `@request.auth.*` fields not in the token).

use std::sync::Arc;

use crate::error::QueryError;
use crate::fold::{FoldCheck, FoldTree, Known};
use crate::parse::{self, Group, Operand};
use crate::request::{
    eval, extract, to_slice, unique_strings, Guard, Macro, ParamSource, RequestInfo, Value,
    ValueClass,
};
use crate::schema::{Collection, Field, FieldType, Schema};

use super::emit::build_groups;
use super::{can_fold, fail, Ctx, MAX_FILTER_EXPRESSIONS, MAX_NESTED_RELS, MODIFIERS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NullFallback {
    Auto,
    Disabled,
    Enforced,
}

#[derive(Debug, Clone)]
struct JoinSql {
    table: String,
    alias: String,
    on: Option<String>,
}

impl JoinSql {
    pub(super) fn sql(&self) -> String {
        match &self.on {
            Some(on) => format!(" LEFT JOIN {} `{}` ON {}", self.table, self.alias, on),
            None => format!(" LEFT JOIN {} `{}`", self.table, self.alias),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct MultiMatch {
    target_alias: String,
    from_table: String,
    from_alias: String,
    pub(super) value: String,
    joins: Vec<JoinSql>,
}

impl MultiMatch {
    pub(super) fn sql(&self) -> String {
        let joins: String = self.joins.iter().map(|j| j.sql()).collect();
        format!(
            "SELECT {} AS `multiMatchValue` FROM `{}` `{}`{} WHERE `{}`.`id` = `{}`.`id`",
            self.value, self.from_table, self.from_alias, joins, self.from_alias, self.target_alias
        )
    }
}

#[derive(Debug, Clone)]
pub(super) enum After {
    Not,
    EmailVisible(String),
    Replace { placeholder: String, sql: String },
}

impl After {
    pub(super) fn apply(&self, expr: String) -> String {
        match self {
            After::Not => format!("NOT ({expr})"),
            After::EmailVisible(alias) => {
                format!("(({expr}) AND (`{alias}`.`emailVisibility` = TRUE))")
            }
            After::Replace { placeholder, sql } => expr.replace(placeholder.as_str(), sql),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct RR {
    pub ident: String,
    pub params: Vec<usize>,
    pub nf: NullFallback,
    pub multi: Option<MultiMatch>,
    pub after: Option<After>,
}

impl RR {
    pub(super) fn ident(s: impl Into<String>) -> RR {
        RR {
            ident: s.into(),
            params: vec![],
            nf: NullFallback::Auto,
            multi: None,
            after: None,
        }
    }
    pub(super) fn param(i: usize) -> RR {
        RR {
            ident: format!("?{i}"),
            params: vec![i],
            nf: NullFallback::Auto,
            multi: None,
            after: None,
        }
    }
}

/// Strips characters not allowed in a db identifier.
fn columnify(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '-' | '@' | '#'))
        .collect()
}

fn col(alias: &str, column: &str) -> String {
    format!("`{alias}`.`{column}`")
}

fn json_each(column: &str) -> String {
    format!(
        "json_each(CASE WHEN iif(json_valid({column}), json_type({column})='array', FALSE) THEN {column} ELSE json_array({column}) END)"
    )
}

fn json_array_length(c: &str) -> String {
    format!(
        "json_array_length(CASE WHEN iif(json_valid({c}), json_type({c})='array', FALSE) THEN {c} ELSE (CASE WHEN {c} = '' OR {c} IS NULL THEN json_array() ELSE json_array({c}) END) END)"
    )
}

fn json_extract(column: &str, path: &str) -> String {
    let path = if !path.is_empty() && !path.starts_with('[') {
        format!(".{path}")
    } else {
        path.to_string()
    };
    format!(
        "(CASE WHEN json_valid({column}) THEN JSON_EXTRACT({column}, '${path}') ELSE JSON_EXTRACT(json_object('pb', {column}), '$.pb{path}') END)"
    )
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `[\w.:]*\w+` after a prefix.
fn tail_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|&c| is_word(c) || c == b'.' || c == b':')
        && is_word(b[b.len() - 1])
}

/// The field-name patterns PocketBase allows in record filters.
fn allowed_field(name: &str) -> bool {
    let b = name.as_bytes();
    if !b.is_empty() && is_word(b[0]) && b.iter().all(|&c| is_word(c) || c == b'.' || c == b':') {
        return true;
    }
    if name == "@request.context" || name == "@request.method" {
        return true;
    }
    for p in [
        "@request.auth.",
        "@request.body.",
        "@request.query.",
        "@request.headers.",
    ] {
        if let Some(rest) = name.strip_prefix(p) {
            return tail_ok(rest);
        }
    }
    if let Some(rest) = name.strip_prefix("@collection.") {
        // \w+(:\w+)?\.tail
        let Some(dot) = rest.find('.') else {
            return false;
        };
        let (coll, tail) = (&rest[..dot], &rest[dot + 1..]);
        let mut parts = coll.splitn(2, ':');
        let n = parts.next().unwrap_or("");
        let alias_ok = match parts.next() {
            None => true,
            Some(a) => !a.is_empty() && a.bytes().all(is_word),
        };
        return !n.is_empty() && n.bytes().all(is_word) && alias_ok && tail_ok(tail);
    }
    false
}

fn split_modifier(combined: &str) -> Result<(&str, &str), QueryError> {
    let parts: Vec<&str> = combined.split(':').collect();
    if parts.len() != 2 {
        return Ok((combined, ""));
    }
    if MODIFIERS.contains(&parts[1]) {
        Ok((parts[0], parts[1]))
    } else {
        Err(QueryError::invalid_filter(format!(
            "unknown modifier in {combined:?}"
        )))
    }
}

/// `@request.auth.*` fields read from the request info ([`crate::AuthInfo`]) rather than
/// joined from the auth collection's table: the three the token names, and
/// [`AUTH_INFO_FIELDS`].
const PLAIN_AUTH_FIELDS: [&str; 6] = [
    "@request.auth.id",
    "@request.auth.collectionId",
    "@request.auth.collectionName",
    "@request.auth.email",
    "@request.auth.emailVisibility",
    "@request.auth.verified",
];

/// The fields of the caller's auth record that rules and filters read from
/// [`crate::AuthInfo::data`]: every other `@request.auth.<field>` is joined from the auth
/// collection's table in SQL, and `id`, `collectionId`, `collectionName` come from the token.
/// So `data` needs no other field (a caller's row is loaded with these columns only).
pub const AUTH_INFO_FIELDS: [&str; 3] = ["email", "emailVisibility", "verified"];

/// Resolves field paths for one collection within one statement.
pub(crate) struct Resolver<'s> {
    pub schema: &'s Schema,
    pub base: Arc<Collection>,
    pub base_alias: String,
    pub req: &'s RequestInfo,
    pub allow_hidden: bool,
    /// Comparisons known per request are folded ([`crate::fold`]); off, the SQL is what
    /// PocketBase generates ([`crate::compile_condition_unfolded`]).
    pub fold: bool,
    /// A bool field of the base table compared with `true`/`false` is written `+col = 1`:
    /// the same rows, but no index can serve the comparison ([`crate::compile_list_unindexed`]).
    pub unindex_bools: bool,
    /// The base is the statement's own table (not a related collection whose list rule is
    /// joined in): only then are its bool comparisons [`crate::CompiledQuery::bool_eqs`].
    own_table: bool,
    joins: Vec<JoinSql>,
    rule_joins: Vec<(Arc<Collection>, String)>,
    suffix: String,
}

/// Per-path resolution state.
struct Runner {
    props: Vec<String>,
    coll: Arc<Collection>,
    alias: String,
    nullify_missing: bool,
    with_multi: bool,
    mm_alias: String,
    mm: MultiMatch,
}

impl<'s> Resolver<'s> {
    pub fn new(
        schema: &'s Schema,
        base: Arc<Collection>,
        req: &'s RequestInfo,
        allow_hidden: bool,
    ) -> Self {
        let base_alias = columnify(&base.name);
        Resolver {
            schema,
            base,
            base_alias,
            req,
            allow_hidden,
            fold: true,
            unindex_bools: false,
            own_table: true,
            joins: vec![],
            rule_joins: vec![],
            suffix: String::new(),
        }
    }

    /// The bool field of the base table `op` names when it resolved to that plain column
    /// (`rr`): no relation hop, no modifier, not a view's column.
    pub(super) fn base_bool(&self, op: &Operand, rr: &RR) -> Option<String> {
        let Operand::Ident(name) = op else {
            return None;
        };
        let field = self.base.field(name)?;
        let plain = field.kind == FieldType::Bool
            && self.own_table
            && !self.base.is_view()
            && rr.params.is_empty()
            && rr.multi.is_none()
            && rr.after.is_none()
            && rr.ident == col(&self.base_alias, &columnify(name));
        plain.then(|| field.name.clone())
    }

    /// A resolver over the same collection and request with nothing registered: the parts
    /// of a filter that folding dropped are resolved into it only to raise their errors.
    pub(super) fn scratch(&self) -> Resolver<'s> {
        Resolver {
            schema: self.schema,
            base: self.base.clone(),
            base_alias: self.base_alias.clone(),
            req: self.req,
            allow_hidden: self.allow_hidden,
            fold: self.fold,
            unindex_bools: self.unindex_bools,
            own_table: self.own_table,
            joins: vec![],
            rule_joins: vec![],
            suffix: self.suffix.clone(),
        }
    }

    /// Whether any operand may be folded for this request: a caller whose auth collection
    /// the schema does not know reads NULL from every `@request.auth.*` in SQL, which the
    /// folding does not model (a token is only ever verified against a known collection).
    fn can_fold(&self) -> bool {
        can_fold(self.schema, self.req)
    }

    /// What `op` is when its value is known per request ([`crate::fold`]); `None` when
    /// only SQLite knows it, or when resolving it is an error (the SQL path raises it).
    fn known(&self, op: &Operand) -> Option<Known> {
        match op {
            Operand::Text(s) => Some(Known::Const {
                value: Value::Text(s.clone()),
                param: true,
            }),
            Operand::Number(s) => Some(Known::Const {
                value: Value::Real(s.parse().unwrap_or(0.0)),
                param: true,
            }),
            Operand::Func { .. } => None,
            Operand::Ident(name) => {
                if Macro::from_name(name).is_some() {
                    return None;
                }
                if name.starts_with("@request.") {
                    return self.known_request(name);
                }
                // `null`/`true`/`false` are keywords only where the name resolves to nothing
                let value = [
                    ("null", Value::Null),
                    ("true", Value::Integer(1)),
                    ("false", Value::Integer(0)),
                ]
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))?
                .1;
                match self.scratch().resolve(&mut Ctx::default(), name) {
                    Ok(rr) if !rr.ident.is_empty() => None,
                    _ => Some(Known::Const {
                        value,
                        param: false,
                    }),
                }
            }
        }
    }

    /// [`Resolver::known`] of a `@request.*` identifier, mirroring [`Resolver::resolve`]'s
    /// static fields.
    fn known_request(&self, name: &str) -> Option<Known> {
        if !allowed_field(name) || name.starts_with("@request.body.") {
            return None;
        }
        let mut path: Vec<String> = name.split('.').skip(1).map(str::to_string).collect();
        let number_field = |prop: &str| {
            self.base
                .field(prop)
                .is_some_and(|f| f.kind == FieldType::Number)
        };
        if name.starts_with("@request.auth.") {
            let number_field = number_field(path.last()?);
            return Some(Known::Auth {
                path,
                number_field,
                plain: PLAIN_AUTH_FIELDS.contains(&name),
            });
        }
        let last = path.last()?.clone();
        let (prop, modifier) = split_modifier(&last).ok()?;
        let number_field = number_field(prop);
        let modifier = modifier.to_string();
        *path.last_mut()? = prop.to_string();
        match modifier.as_str() {
            "isset" => Some(Known::Isset(path)),
            "" | "lower" => Some(Known::Request {
                path,
                number_field,
                lower: modifier == "lower",
            }),
            _ => None,
        }
    }

    /// The fold tree of `groups`: each comparison of two known operands becomes a check.
    pub(super) fn fold_tree(&self, groups: &[Group]) -> FoldTree {
        let fold = self.fold && self.can_fold();
        FoldTree::build(groups, &mut |e| {
            if !fold {
                return None;
            }
            Some(FoldCheck {
                left: self.known(&e.left)?,
                op: e.op,
                right: self.known(&e.right)?,
            })
        })
    }

    fn load(&self, name_or_id: &str) -> Option<Arc<Collection>> {
        if name_or_id == self.base.name || name_or_id == self.base.id {
            return Some(self.base.clone());
        }
        self.schema.collection(name_or_id).cloned()
    }

    fn register_join(
        &mut self,
        table: String,
        alias: String,
        on: Option<String>,
        lookup: Option<&str>,
    ) -> Result<(), QueryError> {
        if !self.allow_hidden {
            if let Some(c) = lookup.and_then(|n| self.load(n)) {
                if c.list_rule.is_none() {
                    return Err(fail(format!(
                        "{:?} fields can be accessed only when allowHiddenFields is enabled or by superusers",
                        c.name
                    )));
                }
                match self.rule_joins.iter_mut().find(|(_, a)| *a == alias) {
                    Some(rj) => rj.0 = c,
                    None => self.rule_joins.push((c, alias.clone())),
                }
            }
        }
        let j = JoinSql { table, alias, on };
        match self.joins.iter_mut().find(|x| x.alias == j.alias) {
            Some(x) => *x = j,
            None => self.joins.push(j),
        }
        Ok(())
    }

    pub(super) fn resolve(&mut self, ctx: &mut Ctx, name: &str) -> Result<RR, QueryError> {
        if !allowed_field(name) {
            return Err(fail(format!("failed to resolve field {name:?}")));
        }
        let props: Vec<String> = name.split('.').map(str::to_string).collect();
        let alias = self.base_alias.clone();
        let mut r = Runner {
            nullify_missing: props[0] == "@request",
            props,
            coll: self.base.clone(),
            with_multi: false,
            mm_alias: format!("__mm_{alias}"),
            mm: MultiMatch {
                target_alias: alias.clone(),
                from_table: columnify(&self.base.name),
                from_alias: format!("__mm_{alias}"),
                value: String::new(),
                joins: vec![],
            },
            alias,
        };

        if r.props[0] == "@collection" {
            return self.collection_field(ctx, &mut r, name);
        }
        if r.props[0] == "@request" {
            if name.starts_with("@request.auth.") {
                return self.auth_field(ctx, &mut r, name);
            }
            let total = r.props.len();
            if name.starts_with("@request.body.") && total > 2 {
                let (fname, modifier) = split_modifier(&r.props[2])?;
                let (fname, modifier) = (fname.to_string(), modifier.to_string());
                let Some(field) = self.base.field(&fname).cloned() else {
                    return self.static_field(ctx, &r.props[1..]);
                };
                if field.kind == FieldType::Relation && total > 3 {
                    return self.body_relation(ctx, &mut r, &field);
                }
                if total == 3 {
                    match modifier.as_str() {
                        "each" => return self.body_each(ctx, &mut r, &field),
                        "length" => {
                            if !field.kind.is_multi_valuer() {
                                return Err(fail("field doesn't support multivalue operations"));
                            }
                            self.req.volatile.mark();
                            let n = to_slice(self.req.body.get(&field.name)).len();
                            ctx.guard(Guard::BodyLen(field.name.clone(), n));
                            return Ok(RR::ident(n.to_string()));
                        }
                        "lower" => {
                            let i =
                                ctx.dynamic(ParamSource::BodyString(field.name.clone()), self.req);
                            let mut rr = RR::param(i);
                            rr.ident = format!("LOWER(?{i})");
                            return Ok(rr);
                        }
                        "changed" => return self.body_changed(ctx, &field),
                        _ => {}
                    }
                }
            }
            let path = r.props[1..].to_vec();
            return self.static_field(ctx, &path);
        }
        self.active_props(ctx, &mut r, name)
    }

    fn static_field(&mut self, ctx: &mut Ctx, path: &[String]) -> Result<RR, QueryError> {
        let mut path = path.to_vec();
        let last = path.last().cloned().unwrap_or_default();
        let (prop, modifier) = split_modifier(&last)?;
        let (prop, modifier) = (prop.to_string(), modifier.to_string());
        *path.last_mut().unwrap() = prop.clone();

        let number_field = self
            .base
            .field(&prop)
            .is_some_and(|f| f.kind == FieldType::Number);
        let src = ParamSource::Request {
            path: path.clone(),
            number_field,
        };
        let present = extract(self.req, &path).is_ok();
        if modifier == "isset" {
            ctx.guard(Guard::Present(path, present));
            return Ok(RR::ident(if present { "TRUE" } else { "FALSE" }));
        }
        if !modifier.is_empty() && modifier != "lower" {
            return Err(fail(format!("invalid modifier sequence {prop}:{modifier}")));
        }
        let v = eval(&src, self.req, 0);
        if v == Value::Null {
            ctx.guard(Guard::Class(
                src,
                if present {
                    ValueClass::Null
                } else {
                    ValueClass::Missing
                },
            ));
            return Ok(RR::ident("NULL"));
        }
        let i = ctx.dynamic(src, self.req);
        let mut rr = RR::param(i);
        if modifier == "lower" {
            rr.ident = format!("LOWER(?{i})");
        }
        Ok(rr)
    }

    fn collection_field(
        &mut self,
        ctx: &mut Ctx,
        r: &mut Runner,
        name: &str,
    ) -> Result<RR, QueryError> {
        if r.props.len() < 3 {
            return Err(fail(format!("invalid @collection field path in {name:?}")));
        }
        let spec = r.props[1].clone();
        let mut parts = spec.splitn(2, ':');
        let cname = parts.next().unwrap_or("");
        let calias = parts.next();
        let coll = self
            .load(cname)
            .ok_or_else(|| fail(format!("failed to load collection {spec:?}")))?;
        r.alias = match calias {
            Some(a) if !a.is_empty() => {
                columnify(&format!("__collection_alias_{a}")) + &self.suffix
            }
            _ => columnify(&format!("__collection_{}", coll.name)) + &self.suffix,
        };
        r.with_multi = true;
        self.register_join(
            format!("`{}`", columnify(&coll.name)),
            r.alias.clone(),
            None,
            Some(&columnify(&coll.name)),
        )?;
        r.mm_alias = format!("__mm_{}", r.alias);
        r.mm.joins.push(JoinSql {
            table: format!("`{}`", columnify(&coll.name)),
            alias: r.mm_alias.clone(),
            on: None,
        });
        r.coll = coll;
        r.props.drain(..2);
        self.active_props(ctx, r, name)
    }

    fn auth_field(&mut self, ctx: &mut Ctx, r: &mut Runner, name: &str) -> Result<RR, QueryError> {
        let auth = self.req.auth.as_ref();
        ctx.guard(Guard::AuthCollection(auth.map(|a| a.collection_id.clone())));
        let Some(auth) = auth else {
            return Ok(RR::ident("NULL"));
        };
        let Some(auth_coll) = self.schema.collection(&auth.collection_id).cloned() else {
            return Ok(RR::ident("NULL"));
        };
        if PLAIN_AUTH_FIELDS.contains(&name) {
            let path = r.props[1..].to_vec();
            return self.static_field(ctx, &path);
        }
        r.alias = format!("__auth_{}{}", columnify(&auth_coll.name), self.suffix);
        let id = ctx.literal(ParamSource::AuthId);
        self.register_join(
            format!("`{}`", columnify(&auth_coll.name)),
            r.alias.clone(),
            Some(format!("{}=?{id}", col(&r.alias, "id"))),
            Some(&columnify(&auth_coll.name)),
        )?;
        r.mm_alias = format!("__mm_{}", r.alias);
        r.mm.joins.push(JoinSql {
            table: format!("`{}`", columnify(&auth_coll.name)),
            alias: r.mm_alias.clone(),
            on: Some(format!("{}=?{id}", col(&r.mm_alias, "id"))),
        });
        r.coll = auth_coll;
        r.props.drain(..2);
        self.active_props(ctx, r, name)
    }

    fn body_changed(&mut self, ctx: &mut Ctx, field: &Field) -> Result<RR, QueryError> {
        let n = &field.name;
        let text = format!("@request.body.{n}:isset = true && @request.body.{n} != {n}");
        let groups = parse::parse(&text)?;
        let mut limit = MAX_FILTER_EXPRESSIONS;
        let sql = build_groups(self, ctx, &groups, &mut limit)?;
        let placeholder = format!("@changed@{n}{}", ctx.next_id());
        Ok(RR {
            ident: placeholder.clone(),
            params: vec![],
            nf: NullFallback::Disabled,
            multi: None,
            after: Some(After::Replace { placeholder, sql }),
        })
    }

    fn body_each(
        &mut self,
        ctx: &mut Ctx,
        r: &mut Runner,
        field: &Field,
    ) -> Result<RR, QueryError> {
        if !field.kind.is_multi_valuer() {
            return Err(fail("field doesn't support multivalue operations"));
        }
        let p = ctx.literal(ParamSource::BodyJsonArray(field.name.clone()));
        let je_alias = format!("__dataEach_je_{}{}", columnify(&field.name), self.suffix);
        self.register_join(format!("json_each(?{p})"), je_alias.clone(), None, None)?;
        let mut rr = RR::ident(format!("`{je_alias}`.`value`"));
        if field.multiple {
            r.with_multi = true;
        }
        if r.with_multi {
            let je2 = format!("__mm_{je_alias}");
            r.mm.joins.push(JoinSql {
                table: format!("json_each(?{p})"),
                alias: je2.clone(),
                on: None,
            });
            r.mm.value = format!("`{je2}`.`value`");
            rr.multi = Some(r.mm.clone());
        }
        Ok(rr)
    }

    fn body_relation(
        &mut self,
        ctx: &mut Ctx,
        r: &mut Runner,
        field: &Field,
    ) -> Result<RR, QueryError> {
        let target = field
            .collection_id
            .as_deref()
            .and_then(|c| self.load(c))
            .ok_or_else(|| fail("failed to load body relation collection"))?;
        self.req.volatile.mark();
        let ids = unique_strings(self.req.body.get(&field.name));
        ctx.guard(Guard::BodyRelCount(field.name.clone(), ids.len()));
        if ids.is_empty() {
            return Ok(RR::ident("NULL"));
        }
        let ps: Vec<usize> = (0..ids.len())
            .map(|i| ctx.literal(ParamSource::BodyRelId(field.name.clone(), i)))
            .collect();
        let in_list = |c: String| -> String {
            if ps.len() == 1 {
                format!("{c}=?{}", ps[0])
            } else {
                let l: Vec<String> = ps.iter().map(|p| format!("?{p}")).collect();
                format!("{c} IN ({})", l.join(", "))
            }
        };
        r.alias = columnify(&format!("__data_{}_{}", target.name, field.name)) + &self.suffix;
        self.register_join(
            format!("`{}`", target.name),
            r.alias.clone(),
            Some(in_list(col(&r.alias, "id"))),
            Some(&target.name),
        )?;
        if field.multiple {
            r.with_multi = true;
        }
        r.mm_alias = format!("__mm_{}", r.alias);
        r.mm.joins.push(JoinSql {
            table: format!("`{}`", target.name),
            alias: r.mm_alias.clone(),
            on: Some(in_list(col(&r.mm_alias, "id"))),
        });
        r.coll = target;
        r.props.drain(..3);
        self.active_props(ctx, r, &field.name)
    }

    fn active_props(
        &mut self,
        ctx: &mut Ctx,
        r: &mut Runner,
        name: &str,
    ) -> Result<RR, QueryError> {
        let total = r.props.len();
        let mut i = 0;
        while i < total {
            let prop = r.props[i].clone();
            let coll = r.coll.clone();
            if i == total - 1 {
                return self.finalize(ctx, r, &coll, &prop);
            }
            let field = coll.field(&prop).cloned();
            if let Some(f) = &field {
                if f.hidden && !self.allow_hidden {
                    return Err(fail(format!("non-filterable field {prop:?}")));
                }
                if matches!(f.kind, FieldType::Json | FieldType::GeoPoint) {
                    let mut path = String::new();
                    for (j, p) in r.props[i + 1..].iter().enumerate() {
                        if p.parse::<i64>().is_ok() {
                            path.push('[');
                            path.push_str(&columnify(p));
                            path.push(']');
                        } else {
                            if j > 0 {
                                path.push('.');
                            }
                            path.push_str(&columnify(p));
                        }
                    }
                    let c = columnify(&prop);
                    let mut rr = RR::ident(json_extract(&col(&r.alias, &c), &path));
                    rr.nf = NullFallback::Disabled;
                    if r.with_multi {
                        r.mm.value = json_extract(&col(&r.mm_alias, &c), &path);
                        rr.multi = Some(r.mm.clone());
                    }
                    return Ok(rr);
                }
            }
            if i >= MAX_NESTED_RELS {
                return Err(fail(format!(
                    "max nested relations reached for field {prop:?}"
                )));
            }
            let Some(field) = field else {
                self.back_relation(ctx, r, &coll, &prop)?;
                if r.props.is_empty() {
                    // nullified missing back-relation
                    return Ok(RR::ident("NULL"));
                }
                i += 1;
                continue;
            };
            if field.kind != FieldType::Relation {
                return Err(fail(format!("field {prop:?} is not a valid relation")));
            }
            let rel = field
                .collection_id
                .as_deref()
                .and_then(|c| self.load(c))
                .ok_or_else(|| fail(format!("failed to load field {prop:?} collection")))?;
            if !field.multiple && i == total - 2 && r.props[i + 1] == "id" {
                return self.finalize(ctx, r, &coll, &field.name);
            }
            let clean = columnify(&field.name);
            let prefixed = col(&r.alias, &clean);
            let new_alias = format!("{}_{}{}", r.alias, clean, self.suffix);
            let rel_table = columnify(&rel.name);
            if !field.multiple {
                self.register_join(
                    format!("`{rel_table}`"),
                    new_alias.clone(),
                    Some(format!("{} = {}", col(&new_alias, "id"), prefixed)),
                    Some(&rel_table),
                )?;
            } else {
                let je = format!("__je_{new_alias}");
                self.register_join(json_each(&prefixed), je.clone(), None, None)?;
                self.register_join(
                    format!("`{rel_table}`"),
                    new_alias.clone(),
                    Some(format!("{} = {}", col(&new_alias, "id"), col(&je, "value"))),
                    Some(&rel_table),
                )?;
            }
            r.alias = new_alias;
            if field.multiple {
                r.with_multi = true;
            }
            let new_alias2 = format!("{}_{}", r.mm_alias, clean);
            let prefixed2 = col(&r.mm_alias, &clean);
            if !field.multiple {
                r.mm.joins.push(JoinSql {
                    table: format!("`{rel_table}`"),
                    alias: new_alias2.clone(),
                    on: Some(format!("{} = {}", col(&new_alias2, "id"), prefixed2)),
                });
            } else {
                let je2 = format!("{}_{}_je", r.mm_alias, clean);
                r.mm.joins.push(JoinSql {
                    table: json_each(&prefixed2),
                    alias: je2.clone(),
                    on: None,
                });
                r.mm.joins.push(JoinSql {
                    table: format!("`{rel_table}`"),
                    alias: new_alias2.clone(),
                    on: Some(format!(
                        "{} = {}",
                        col(&new_alias2, "id"),
                        col(&je2, "value")
                    )),
                });
            }
            r.mm_alias = new_alias2;
            r.coll = rel;
            i += 1;
        }
        Err(fail(format!("failed to resolve field {name:?}")))
    }

    /// Handles a `<collection>_via_<field>` hop; on a nullified miss clears `r.props`.
    fn back_relation(
        &mut self,
        _ctx: &mut Ctx,
        r: &mut Runner,
        coll: &Arc<Collection>,
        prop: &str,
    ) -> Result<(), QueryError> {
        let nullify = |r: &mut Runner, msg: String| -> Result<(), QueryError> {
            if r.nullify_missing {
                r.props.clear();
                Ok(())
            } else {
                Err(fail(msg))
            }
        };
        let Some((back_name, back_field_name)) = split_via(prop) else {
            return nullify(r, format!("failed to resolve field {prop:?}"));
        };
        let Some(back_coll) = self.load(back_name) else {
            return nullify(
                r,
                format!("failed to load back relation field {prop:?} collection"),
            );
        };
        let Some(back_field) = back_coll.field(back_field_name).cloned() else {
            return nullify(
                r,
                format!("missing back relation field {back_field_name:?}"),
            );
        };
        if back_field.kind != FieldType::Relation {
            return nullify(
                r,
                format!("invalid back relation field {back_field_name:?}"),
            );
        }
        if back_field.hidden && !self.allow_hidden {
            return Err(fail(format!(
                "non-filterable back relation field {back_field_name:?}"
            )));
        }
        if back_field.collection_id.as_deref() != Some(coll.id.as_str()) {
            return nullify(
                r,
                "invalid collection reference of a back relation field".into(),
            );
        }
        let clean_prop = columnify(prop);
        let clean_back = columnify(&back_field.name);
        let new_alias = format!("{}_{}{}", r.alias, clean_prop, self.suffix);
        let back_table = columnify(&back_coll.name);
        let multiple = back_field.multiple;
        if !multiple {
            self.register_join(
                format!("`{back_table}`"),
                new_alias.clone(),
                Some(format!(
                    "{} = {}",
                    col(&new_alias, &clean_back),
                    col(&r.alias, "id")
                )),
                Some(&back_table),
            )?;
        } else {
            let je = format!("__je_{new_alias}");
            self.register_join(
                format!("`{back_table}`"),
                new_alias.clone(),
                Some(format!(
                    "{} IN (SELECT `{je}`.`value` FROM {} `{je}`)",
                    col(&r.alias, "id"),
                    json_each(&col(&new_alias, &clean_back))
                )),
                Some(&back_table),
            )?;
        }
        r.alias = new_alias;
        if multiple {
            r.with_multi = true;
        } else if !r.with_multi {
            r.with_multi = !back_coll.has_single_column_unique_index(&back_field.name);
        }
        let new_alias2 = format!("{}_{}{}", r.mm_alias, clean_prop, self.suffix);
        if !multiple {
            r.mm.joins.push(JoinSql {
                table: format!("`{back_table}`"),
                alias: new_alias2.clone(),
                on: Some(format!(
                    "{} = {}",
                    col(&new_alias2, &clean_back),
                    col(&r.mm_alias, "id")
                )),
            });
        } else {
            let je2 = format!("__je_{new_alias2}");
            r.mm.joins.push(JoinSql {
                table: format!("`{back_table}`"),
                alias: new_alias2.clone(),
                on: Some(format!(
                    "{} IN (SELECT `{je2}`.`value` FROM {} `{je2}`)",
                    col(&r.mm_alias, "id"),
                    json_each(&col(&new_alias2, &clean_back))
                )),
            });
        }
        r.mm_alias = new_alias2;
        r.coll = back_coll;
        Ok(())
    }

    fn finalize(
        &mut self,
        _ctx: &mut Ctx,
        r: &mut Runner,
        coll: &Arc<Collection>,
        prop: &str,
    ) -> Result<RR, QueryError> {
        let (name, modifier) = split_modifier(prop)?;
        let Some(field) = coll.field(name).cloned() else {
            if r.nullify_missing {
                return Ok(RR::ident("NULL"));
            }
            return Err(fail(format!("unknown field {name:?}")));
        };
        if field.hidden && !self.allow_hidden {
            return Err(fail(format!("non-filterable field {name:?}")));
        }
        let multi_valuer = field.kind.is_multi_valuer();
        let clean = columnify(&field.name);

        if modifier == "length" && multi_valuer {
            let mut rr = RR::ident(json_array_length(&col(&r.alias, &clean)));
            if r.with_multi {
                r.mm.value = json_array_length(&col(&r.mm_alias, &clean));
                rr.multi = Some(r.mm.clone());
            }
            return Ok(rr);
        }
        if modifier == "each" && multi_valuer {
            let je = format!("__je_{}_{}{}", r.alias, clean, self.suffix);
            self.register_join(json_each(&col(&r.alias, &clean)), je.clone(), None, None)?;
            let mut rr = RR::ident(col(&je, "value"));
            if field.multiple {
                r.with_multi = true;
            }
            if r.with_multi {
                let je2 = format!("__je_{}_{}{}", r.mm_alias, clean, self.suffix);
                r.mm.joins.push(JoinSql {
                    table: json_each(&col(&r.mm_alias, &clean)),
                    alias: je2.clone(),
                    on: None,
                });
                r.mm.value = col(&je2, "value");
                rr.multi = Some(r.mm.clone());
            }
            return Ok(rr);
        }

        let mut rr = RR::ident(col(&r.alias, &clean));
        if r.with_multi {
            r.mm.value = col(&r.mm_alias, &clean);
        }
        if field.name == "email" && !self.allow_hidden && coll.is_auth() {
            rr.after = Some(After::EmailVisible(r.alias.clone()));
        }
        if field.kind == FieldType::Json {
            rr.nf = NullFallback::Disabled;
            rr.ident = json_extract(&col(&r.alias, &clean), "");
            if r.with_multi {
                r.mm.value = json_extract(&col(&r.mm_alias, &clean), "");
            }
        }
        if modifier == "lower" {
            rr.ident = format!("LOWER({})", rr.ident);
            if r.with_multi {
                r.mm.value = format!("LOWER({})", r.mm.value);
            }
        }
        if r.with_multi {
            rr.multi = Some(r.mm.clone());
        }
        Ok(rr)
    }

    /// The joins (SQL text) and the list-rule conditions of joined collections, applied
    /// at the end of a statement as PocketBase does.
    pub fn finish(mut self, ctx: &mut Ctx) -> Result<(String, Vec<String>, bool), QueryError> {
        let mut wheres = Vec::new();
        let mut distinct = !self.joins.is_empty();
        let mut extra_joins: Vec<JoinSql> = Vec::new();
        if !self.allow_hidden {
            let rule_joins = std::mem::take(&mut self.rule_joins);
            for (c, alias) in rule_joins {
                let Some(rule) = c.list_rule.as_deref().filter(|r| !r.is_empty()) else {
                    continue;
                };
                let mut clone = Resolver {
                    schema: self.schema,
                    base: c.clone(),
                    base_alias: alias.clone(),
                    req: self.req,
                    allow_hidden: true,
                    fold: self.fold,
                    // another collection's table: its bools are not the statement's own
                    own_table: false,
                    unindex_bools: false,
                    joins: vec![],
                    rule_joins: vec![],
                    suffix: format!("_r{}", ctx.next_id()),
                };
                let text = format!("id='' || (\n{rule}\n)");
                let groups = parse::parse(&text)?;
                let mut limit = MAX_FILTER_EXPRESSIONS;
                let sql = build_groups(&mut clone, ctx, &groups, &mut limit)?;
                wheres.push(sql);
                if !clone.joins.is_empty() {
                    distinct = true;
                    extra_joins.extend(clone.joins);
                }
            }
        }
        let joins: String = self
            .joins
            .iter()
            .chain(extra_joins.iter())
            .map(|j| j.sql())
            .collect();
        Ok((joins, wheres, distinct))
    }

    /// Resolves a sort field (no parameters allowed) into an ORDER BY term.
    pub fn sort_term(
        &mut self,
        ctx: &mut Ctx,
        name: &str,
        desc: bool,
    ) -> Result<String, QueryError> {
        let dir = if desc { "DESC" } else { "ASC" };
        if name == "@random" {
            return Ok("RANDOM()".into());
        }
        if name == "@rowid" {
            return Ok(format!("`{}`.`_rowid_` {dir}", self.base_alias));
        }
        let before = ctx.params.len();
        let rr = self
            .resolve(ctx, name)
            .map_err(|e| QueryError::invalid_sort(e.detail))?;
        if ctx.params.len() != before
            || !rr.params.is_empty()
            || rr.ident.is_empty()
            || rr.ident.eq_ignore_ascii_case("null")
        {
            return Err(QueryError::invalid_sort(format!(
                "invalid sort field {name:?}"
            )));
        }
        Ok(format!("{} {dir}", rr.ident))
    }
}

fn split_via(prop: &str) -> Option<(&str, &str)> {
    // ^(\w+)_via_(\w+)$ — greedy first group: the last "_via_" splits
    if !prop.bytes().all(is_word) {
        return None;
    }
    let i = prop.rfind("_via_")?;
    let (a, b) = (&prop[..i], &prop[i + 5..]);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some((a, b))
}

#[cfg(test)]
mod auth_info_fields {
    use super::{AUTH_INFO_FIELDS, PLAIN_AUTH_FIELDS};

    /// What the engine loads of a caller's row for `AuthInfo::data` is exactly what the
    /// compiler reads from it.
    #[test]
    fn plain_auth_fields_are_the_token_ones_and_the_auth_info_ones() {
        let mut expected: Vec<String> = ["id", "collectionId", "collectionName"]
            .iter()
            .chain(AUTH_INFO_FIELDS.iter())
            .map(|f| format!("@request.auth.{f}"))
            .collect();
        let mut plain: Vec<String> = PLAIN_AUTH_FIELDS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        plain.sort();
        assert_eq!(plain, expected);
    }
}

//! Expression building: parsed groups become WHERE SQL, each comparison folded to a constant
//! first when the request decides it ([`crate::fold`]).

use crate::error::QueryError;
use crate::fold::{and_value, chains, Plan, Truth};
use crate::parse::{Expr, Group, Item, Op, Operand};
use crate::request::{Guard, Macro, ParamSource};

use super::resolve::*;
use super::{fail, Ctx};

/// A filter part after folding: a constant, or SQL for SQLite to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Built {
    Const(Truth),
    Sql(String),
}

/// Builds the SQL of parsed groups. `limit` counts down the expression budget. A part
/// that folds to a constant is written as its literal (`(TRUE)`, ...).
pub(crate) fn build_groups(
    res: &mut Resolver<'_>,
    ctx: &mut Ctx,
    groups: &[Group],
    limit: &mut usize,
) -> Result<String, QueryError> {
    Ok(match build_folded(res, ctx, groups, limit)? {
        Built::Sql(s) => s,
        Built::Const(t) => format!("({})", t.sql()),
    })
}

/// Builds parsed groups with every comparison known for this request folded
/// ([`crate::fold`]): first the fold tree decides the parts (no side effects), then SQL is
/// built only for the parts that depend on the row. Each folded comparison becomes a
/// guard with its outcome. Dropped parts are still resolved (into a scratch resolver), in
/// order, so a filter that PocketBase refuses is refused here too.
pub(crate) fn build_folded(
    res: &mut Resolver<'_>,
    ctx: &mut Ctx,
    groups: &[Group],
    limit: &mut usize,
) -> Result<Built, QueryError> {
    if groups.is_empty() {
        return Err(fail("empty filter expression"));
    }
    let tree = res.fold_tree(groups);
    let auth = res.req.auth.as_ref().map(|a| a.collection_id.clone());
    let plan = tree.plan(res.req, &mut |check, t| {
        if check.depends_on_request() {
            ctx.guard(Guard::Fold(check.clone(), t));
        }
        if check.reads_auth() {
            ctx.guard(Guard::AuthCollection(auth.clone()));
        }
    });
    emit_group(res, ctx, groups, &plan, limit)
}

/// The SQL of a group whose plan is `plan`.
fn emit_group(
    res: &mut Resolver<'_>,
    ctx: &mut Ctx,
    groups: &[Group],
    plan: &Plan,
    limit: &mut usize,
) -> Result<Built, QueryError> {
    let Plan::Group(items, value) = plan else {
        return Err(fail("invalid filter plan"));
    };
    if let Some(t) = value {
        for g in groups {
            validate_item(res, g, limit)?;
        }
        return Ok(Built::Const(*t));
    }
    let mut out = String::from("(");
    for (n, range) in chains(items).into_iter().enumerate() {
        let chain = match and_value(items[range.clone()].iter().map(|(_, p)| p.value())) {
            Some(t) => {
                for g in &groups[range] {
                    validate_item(res, g, limit)?;
                }
                if t == Truth::False {
                    continue; // `x OR FALSE` is `x`
                }
                t.sql().to_string()
            }
            None => {
                let mut parts: Vec<String> = Vec::new();
                for i in range {
                    match items[i].1.value() {
                        // `x AND TRUE` is `x`
                        Some(Truth::True) => validate_item(res, &groups[i], limit)?,
                        Some(t) => {
                            validate_item(res, &groups[i], limit)?;
                            parts.push(t.sql().to_string());
                        }
                        None => parts.push(emit_item(res, ctx, &groups[i], &items[i].1, limit)?),
                    }
                }
                parts.join(" AND ")
            }
        };
        if n > 0 && out.len() > 1 {
            out.push_str(" OR ");
        }
        out.push_str(&chain);
    }
    out.push(')');
    Ok(Built::Sql(out))
}

/// The SQL of one item that depends on the row.
fn emit_item(
    res: &mut Resolver<'_>,
    ctx: &mut Ctx,
    g: &Group,
    plan: &Plan,
    limit: &mut usize,
) -> Result<String, QueryError> {
    match &g.item {
        Item::Expr(e) => {
            if *limit == 0 {
                return Err(fail("max filter expressions limit reached"));
            }
            *limit -= 1;
            let mut l = resolve_operand(res, ctx, &e.left)
                .map_err(|err| fail(format!("invalid left operand - {}", err.detail)))?;
            let mut r = resolve_operand(res, ctx, &e.right)
                .map_err(|err| fail(format!("invalid right operand - {}", err.detail)))?;
            if let Some((field, value, left)) = bool_eq(res, e, &l, &r) {
                ctx.bool_eqs.push((field, value));
                if res.unindex_bools {
                    // `+col` has the column's value (and collation) but is no column to
                    // SQLite's planner, so no index serves the comparison
                    let column = if left { &mut l } else { &mut r };
                    column.ident.insert(0, '+');
                }
            }
            Ok(build_expr(ctx, &l, e.op, &r))
        }
        Item::Group(inner) => Ok(match emit_group(res, ctx, inner, plan, limit)? {
            Built::Sql(s) => s,
            Built::Const(t) => t.sql().to_string(),
        }),
    }
}

/// `(field, value, column on the left)` when `e` is `<bool field of the base table> =
/// true/false` (either way round), which compiles to `col = 1` / `col = 0`.
fn bool_eq(res: &Resolver<'_>, e: &Expr, l: &RR, r: &RR) -> Option<(String, bool, bool)> {
    if e.op != Op::Eq {
        return None;
    }
    let value = |rr: &RR| match rr.ident.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    if let (Some(field), Some(v)) = (res.base_bool(&e.left, l), value(r)) {
        return Some((field, v, true));
    }
    let (field, v) = (res.base_bool(&e.right, r)?, value(l)?);
    Some((field, v, false))
}

/// Resolves an item that folding dropped into a scratch resolver, only for its errors (and
/// its share of the expression budget).
fn validate_item(res: &Resolver<'_>, g: &Group, limit: &mut usize) -> Result<(), QueryError> {
    match &g.item {
        Item::Expr(e) => {
            if *limit == 0 {
                return Err(fail("max filter expressions limit reached"));
            }
            *limit -= 1;
            let mut scratch = res.scratch();
            let mut ctx = Ctx::default();
            resolve_operand(&mut scratch, &mut ctx, &e.left)
                .map_err(|err| fail(format!("invalid left operand - {}", err.detail)))?;
            resolve_operand(&mut scratch, &mut ctx, &e.right)
                .map_err(|err| fail(format!("invalid right operand - {}", err.detail)))?;
            Ok(())
        }
        Item::Group(inner) => inner.iter().try_for_each(|g| validate_item(res, g, limit)),
    }
}

fn resolve_operand(res: &mut Resolver<'_>, ctx: &mut Ctx, op: &Operand) -> Result<RR, QueryError> {
    let rr = match op {
        Operand::Ident(name) => {
            if let Some(m) = Macro::from_name(name) {
                let i = ctx.literal(ParamSource::Macro(m));
                return Ok(RR::param(i));
            }
            match res.resolve(ctx, name) {
                Ok(rr) if !rr.ident.is_empty() => rr,
                other => {
                    for (k, v) in [("null", "NULL"), ("true", "1"), ("false", "0")] {
                        if k.eq_ignore_ascii_case(name) {
                            return Ok(RR::ident(v));
                        }
                    }
                    return match other {
                        Ok(_) => Err(fail(format!("failed to resolve {name:?}"))),
                        Err(e) => Err(e),
                    };
                }
            }
        }
        Operand::Text(s) => RR::param(ctx.literal(ParamSource::Text(s.clone()))),
        Operand::Number(s) => RR::param(ctx.literal(ParamSource::Real(s.parse().unwrap_or(0.0)))),
        Operand::Func { name, args } => resolve_function(res, ctx, name, args)?,
    };
    if rr.ident.is_empty() {
        return Err(fail("empty identifier"));
    }
    Ok(rr)
}

fn resolve_function(
    res: &mut Resolver<'_>,
    ctx: &mut Ctx,
    name: &str,
    args: &[Operand],
) -> Result<RR, QueryError> {
    match name {
        "geoDistance" => {
            if args.len() != 4 {
                return Err(fail("[geoDistance] expected 4 arguments"));
            }
            let mut r = Vec::with_capacity(4);
            for a in args {
                if !matches!(a, Operand::Ident(_) | Operand::Number(_)) {
                    return Err(fail(
                        "[geoDistance] argument must be an identifier or number",
                    ));
                }
                r.push(resolve_operand(res, ctx, a)?);
            }
            let (lon_a, lat_a, lon_b, lat_b) = (&r[0].ident, &r[1].ident, &r[2].ident, &r[3].ident);
            // The cosine is clamped to [-1, 1] (PocketBase 0.40.3): rounding can put it a hair
            // above 1 for a point and itself (127 of 3,326 real coordinates), and acos() of
            // that is NULL, which silently dropped the row from a `geoDistance(...) < x` filter.
            let mut out = RR::ident(format!(
                "(6371 * acos(min(1.0, max(-1.0, cos(radians({lat_a})) * cos(radians({lat_b})) * cos(radians({lon_b}) - radians({lon_a})) + sin(radians({lat_a})) * sin(radians({lat_b}))))))"
            ));
            out.nf = NullFallback::Disabled;
            out.params = r.iter().flat_map(|x| x.params.clone()).collect();
            Ok(out)
        }
        "strftime" => {
            if args.is_empty() {
                return Err(fail("[strftime] expected at least 1 argument"));
            }
            if args.len() > 10 {
                return Err(fail("[strftime] too many arguments"));
            }
            if !matches!(args[0], Operand::Text(_)) {
                return Err(fail(
                    "[strftime] expects the first argument to be a format string",
                ));
            }
            let fmt = resolve_operand(res, ctx, &args[0])?;
            if args.len() == 1 {
                let mut out = fmt;
                out.nf = NullFallback::Enforced;
                out.ident = format!("strftime({})", out.ident);
                return Ok(out);
            }
            if matches!(args[1], Operand::Func { .. }) {
                return Err(fail("[strftime] invalid time-value argument"));
            }
            let tv = resolve_operand(res, ctx, &args[1])?;
            let mut mods = Vec::new();
            for a in &args[2..] {
                if !matches!(a, Operand::Text(_)) {
                    return Err(fail(
                        "[strftime] invalid modifier argument - can be only string",
                    ));
                }
                mods.push(resolve_operand(res, ctx, a)?);
            }
            let mut idents = vec![fmt.ident.clone(), tv.ident.clone()];
            idents.extend(mods.iter().map(|m| m.ident.clone()));
            let mut params = fmt.params.clone();
            params.extend(tv.params.iter().copied());
            params.extend(mods.iter().flat_map(|m| m.params.clone()));
            let mut out = RR::ident(format!("strftime({})", idents.join(",")));
            out.nf = NullFallback::Enforced;
            out.params = params;
            if let Some(mut mm) = tv.multi.clone() {
                idents[1] = mm.value.clone();
                mm.value = format!("strftime({})", idents.join(","));
                out.multi = Some(mm);
            }
            Ok(out)
        }
        _ => Err(fail(format!("unknown function {name:?}"))),
    }
}

fn has_empty_param(ctx: &Ctx, rr: &RR) -> bool {
    rr.params.iter().any(|&p| ctx.empty[p - 1])
}

fn is_empty_ident(rr: &RR) -> bool {
    matches!(
        rr.ident.to_ascii_lowercase().as_str(),
        "" | "null" | "''" | "\"\"" | "``"
    )
}

fn is_known_non_empty(ctx: &Ctx, rr: &RR) -> bool {
    if rr.nf == NullFallback::Enforced {
        return false;
    }
    if matches!(
        rr.ident.to_ascii_lowercase().as_str(),
        "1" | "0" | "false" | "true"
    ) {
        return true;
    }
    !rr.params.is_empty() && !has_empty_param(ctx, rr) && !is_empty_ident(rr)
}

fn equal_expr(ctx: &Ctx, equal: bool, l: &RR, r: &RR) -> String {
    let (eq, null_eq, concat, null_expr) = if equal {
        ("=", "IS", "OR", "IS NULL")
    } else {
        ("IS NOT", "IS NOT", "AND", "IS NOT NULL")
    };
    if l.nf == NullFallback::Disabled || r.nf == NullFallback::Disabled {
        return format!("{} {null_eq} {}", l.ident, r.ident);
    }
    let l_empty = is_empty_ident(l)
        || (l.nf == NullFallback::Auto && l.params.len() == 1 && has_empty_param(ctx, l));
    let r_empty = is_empty_ident(r)
        || (r.nf == NullFallback::Auto && r.params.len() == 1 && has_empty_param(ctx, r));
    if l_empty && r_empty {
        return format!("'' {eq} ''");
    }
    if is_known_non_empty(ctx, l) || is_known_non_empty(ctx, r) {
        let li = if l_empty { "''" } else { l.ident.as_str() };
        let ri = if r_empty { "''" } else { r.ident.as_str() };
        return format!("{li} {eq} {ri}");
    }
    if l_empty {
        return format!("('' {eq} {} {concat} {} {null_expr})", r.ident, r.ident);
    }
    if r_empty {
        return format!("({} {eq} '' {concat} {} {null_expr})", l.ident, l.ident);
    }
    format!("COALESCE({}, '') {eq} COALESCE({}, '')", l.ident, r.ident)
}

fn build_expr(ctx: &mut Ctx, l: &RR, op: Op, r: &RR) -> String {
    let mut expr = match op.base() {
        Op::Eq => equal_expr(ctx, true, l, r),
        Op::Neq => equal_expr(ctx, false, l, r),
        Op::Like | Op::NotLike => {
            let not = if op.base() == Op::NotLike { "NOT " } else { "" };
            if r.params.is_empty() {
                format!(
                    "{} {not}LIKE ('%' || {} || '%') ESCAPE '\\'",
                    l.ident, r.ident
                )
            } else {
                for &p in &r.params {
                    ctx.params[p - 1].like = true;
                }
                format!("{} {not}LIKE {} ESCAPE '\\'", l.ident, r.ident)
            }
        }
        Op::Lt => format!("{} < {}", l.ident, r.ident),
        Op::Lte => format!("{} <= {}", l.ident, r.ident),
        Op::Gt => format!("{} > {}", l.ident, r.ident),
        _ => format!("{} >= {}", l.ident, r.ident),
    };

    if !op.is_any() {
        match (&l.multi, &r.multi) {
            (Some(lm), Some(rm)) => {
                let n = ctx.next_id();
                let (la, ra) = (format!("__ml{n}"), format!("__mr{n}"));
                let lrr = RR {
                    nf: l.nf,
                    ..RR::ident(format!("`{la}`.`multiMatchValue`"))
                };
                let rrr = RR {
                    nf: r.nf,
                    after: Some(After::Not),
                    ..RR::ident(format!("`{ra}`.`multiMatchValue`"))
                };
                let w = build_expr(ctx, &lrr, op, &rrr);
                let mm = format!(
                    "NOT EXISTS (SELECT 1 FROM ({}) `{la}` LEFT JOIN ({}) `{ra}` WHERE {w})",
                    lm.sql(),
                    rm.sql()
                );
                expr = format!("(({expr}) AND ({mm}))");
            }
            (Some(m), None) | (None, Some(m)) => {
                let inverse = l.multi.is_none();
                let (other, nf) = if inverse { (l, r.nf) } else { (r, l.nf) };
                let alias = format!("__sm{}", ctx.next_id());
                let r1 = RR {
                    nf,
                    after: Some(After::Not),
                    ..RR::ident(format!("`{alias}`.`multiMatchValue`"))
                };
                let r2 = RR {
                    params: other.params.clone(),
                    ..RR::ident(other.ident.clone())
                };
                let w = if inverse {
                    build_expr(ctx, &r2, op, &r1)
                } else {
                    build_expr(ctx, &r1, op, &r2)
                };
                let mm = format!(
                    "NOT EXISTS (SELECT 1 FROM ({}) `{alias}` WHERE {w})",
                    m.sql()
                );
                expr = format!("(({expr}) AND ({mm}))");
            }
            (None, None) => {}
        }
    }
    if let Some(a) = &l.after {
        expr = a.apply(expr);
    }
    if let Some(a) = &r.after {
        expr = a.apply(expr);
    }
    expr
}

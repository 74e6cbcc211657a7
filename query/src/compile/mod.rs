//! Field resolution and SQL generation: turns a parsed filter into a WHERE fragment with
//! numbered parameters (`?N`), the LEFT JOINs it needs, and the request facts (guards)
//! that the SQL shape depends on.
//!
//! Two halves: [`resolve`] maps field paths (`author.name`, `@request.auth.id`,
//! `@collection.x.y`, modifiers) to SQL operands and the joins they need; [`emit`] builds the
//! expression SQL from parsed groups, folding what is known for the request. This file holds
//! the per-statement state both share ([`Ctx`]) and the entry points.

mod emit;
mod resolve;

use emit::build_folded;
pub(crate) use emit::Built;
pub(crate) use resolve::Resolver;
pub use resolve::AUTH_INFO_FIELDS;

use std::sync::Arc;

use crate::error::QueryError;
use crate::fold::FoldTree;
use crate::parse;
use crate::request::{class_of, eval, Guard, Param, ParamSource, RequestInfo, ValueClass};
use crate::schema::{Collection, Schema};

/// PocketBase's limit of comparison expressions per filter.
pub const MAX_FILTER_EXPRESSIONS: usize = 200;
/// PocketBase's limit on a client filter's length (bytes).
pub const MAX_FILTER_LENGTH: usize = 3500;
/// Max relation hops in one field path.
const MAX_NESTED_RELS: usize = 6;

const MODIFIERS: [&str; 5] = ["each", "isset", "length", "lower", "changed"];

/// Shared state of one statement being compiled: its parameters and guards.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    pub params: Vec<Param>,
    /// Whether each parameter's compile-time value is NULL or ''.
    empty: Vec<bool>,
    pub guards: Vec<Guard>,
    /// Each comparison `<bool field of the base table> = true/false` emitted, as (field,
    /// value) ([`crate::CompiledQuery::bool_eqs`]).
    pub bool_eqs: Vec<(String, bool)>,
    counter: usize,
}

impl Ctx {
    fn literal(&mut self, src: ParamSource) -> usize {
        let empty = matches!(&src, ParamSource::Text(s) if s.is_empty());
        self.params.push(Param {
            source: src,
            like: false,
        });
        self.empty.push(empty);
        self.params.len()
    }

    /// A request-derived parameter: its emptiness becomes a guard.
    fn dynamic(&mut self, src: ParamSource, req: &RequestInfo) -> usize {
        let v = eval(&src, req, 0);
        let class = class_of(&v);
        self.guard(Guard::Class(src.clone(), class));
        self.params.push(Param {
            source: src,
            like: false,
        });
        self.empty.push(class != ValueClass::NonEmpty);
        self.params.len()
    }

    fn guard(&mut self, g: Guard) {
        if !self.guards.contains(&g) {
            self.guards.push(g);
        }
    }

    fn next_id(&mut self) -> usize {
        self.counter += 1;
        self.counter
    }
}

fn fail(msg: impl Into<String>) -> QueryError {
    QueryError::invalid_filter(msg)
}

/// Compiles one filter/rule against a resolver (shared with other parts of the statement),
/// folding what is known for the request.
pub(crate) fn compile_filter_into(
    res: &mut Resolver<'_>,
    ctx: &mut Ctx,
    text: &str,
) -> Result<Built, QueryError> {
    let groups = parse::parse(text)?;
    let mut limit = MAX_FILTER_EXPRESSIONS;
    build_folded(res, ctx, &groups, &mut limit)
}

/// The fold tree of `text` for `collection` (`None`: it does not parse). It does not
/// depend on the request; [`can_fold`] tells whether it applies to one.
pub(crate) fn fold_tree_of(schema: &Schema, coll: Arc<Collection>, text: &str) -> Option<FoldTree> {
    let groups = parse::parse(text).ok()?;
    let guest = RequestInfo::default();
    Some(Resolver::new(schema, coll, &guest, true).fold_tree(&groups))
}

/// Whether folding applies to `req` at all (see [`Resolver::can_fold`]).
pub(crate) fn can_fold(schema: &Schema, req: &RequestInfo) -> bool {
    req.auth
        .as_ref()
        .is_none_or(|a| schema.collection(&a.collection_id).is_some())
}

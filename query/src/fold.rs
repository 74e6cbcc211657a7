//! Folding of comparisons whose operands are known per request.
//!
//! A rule such as `@request.auth.id != ""` compares two values that are fixed for the whole
//! request. Compiled naively it becomes `WHERE ?1 IS NOT ''`, which SQLite evaluates for the
//! statement and which keeps a list's `COUNT(*)` from using SQLite's b-tree count (a full
//! scan of the table instead: the rule-only list ran at 6.5x PocketBase where a plain list
//! runs at 30x, issue 18). Here such a comparison is evaluated in Rust, with SQLite's own
//! semantics for the exact SQL PocketBase would have generated (its NULL/'' fallbacks, no
//! type affinity on bound values, `LIKE` with `ESCAPE '\'`, ASCII-only `LOWER`), and the
//! `&&`/`||` tree is simplified with SQL's three-valued logic.
//!
//! Resolution stays apart from SQL building: [`FoldTree`] is built from the parsed filter
//! without touching the statement (no parameters, joins or guards); the compiler then asks
//! it which parts are decided for a request and emits SQL only for the rest. A compiled
//! statement records every decided comparison as a [`Guard::Fold`](crate::Guard) with its
//! outcome, so a cache hit is only ever served to a request with the same outcomes.
//!
//! Operands that are known: quoted strings, numbers, `null`/`true`/`false`,
//! `@request.context`, `@request.method`, `@request.headers.*`, `@request.query.*`
//! (with `:isset` and `:lower`), and `@request.auth.*` for a guest (NULL) or, for a
//! signed-in caller, the fields PocketBase reads without a join (`id`, `collectionId`,
//! `collectionName`, `email`, `emailVisibility`, `verified`). Never folded: record
//! columns, `@collection.*`, other `@request.auth.*` fields (a join on the auth
//! collection), `@request.body.*` (not known before the body is read; kept as SQL after),
//! the datetime macros (they move with the clock) and functions.

use std::sync::Arc;

use crate::parse::{Group, Item, Join, Op};
use crate::request::{extract, json_to_value, like_wrap, RequestInfo, Value};

/// SQL's three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    True,
    False,
    Null,
}

impl Truth {
    fn from_bool(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Null => Truth::Null,
        }
    }

    /// The SQL literal of this value.
    pub fn sql(self) -> &'static str {
        match self {
            Truth::True => "TRUE",
            Truth::False => "FALSE",
            Truth::Null => "NULL",
        }
    }
}

/// An operand whose value is known per request, described independently of any request
/// (a cached statement re-evaluates it for the next request).
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// A literal: quoted text and numbers are bound parameters; `null`, `true`, `false` are
    /// SQL literals (NULL, 1, 0).
    Const { value: Value, param: bool },
    /// `@request.<path>` bound as the compiler binds it (`number_field`: a string that
    /// parses as a number is bound as one), `LOWER()`ed when `lower`.
    Request {
        path: Vec<String>,
        number_field: bool,
        lower: bool,
    },
    /// `@request.<path>:isset`: TRUE or FALSE.
    Isset(Vec<String>),
    /// `@request.auth.<field>`: NULL for a guest; for a signed-in caller the value when
    /// `plain` (read without a join), else not known.
    Auth {
        path: Vec<String>,
        number_field: bool,
        plain: bool,
    },
}

/// What SQL sees of a known operand: its value, whether it is a bound parameter (rather
/// than a literal such as `NULL` or `1`), and whether `LOWER()` wraps it.
#[derive(Debug, Clone, PartialEq)]
struct Atom {
    value: Value,
    param: bool,
    lower: bool,
    /// The SQL keyword `TRUE`/`FALSE` (what `:isset` writes): after `IS NOT` it makes
    /// SQLite's boolean test, not a comparison (`'GET' IS NOT FALSE` is false).
    keyword: bool,
}

impl Known {
    /// Whether this operand reads `@request.auth` (its SQL shape depends on the caller's
    /// auth collection, which the compiler guards).
    pub fn reads_auth(&self) -> bool {
        matches!(self, Known::Auth { .. })
    }

    fn depends_on_request(&self) -> bool {
        !matches!(self, Known::Const { .. })
    }

    /// `None`: not known for this request, or not foldable exactly (left to SQLite).
    fn atom(&self, req: &RequestInfo) -> Option<Atom> {
        // the value `ParamSource::Request` binds (without building one per evaluation)
        let bound = |path: &[String], number_field: bool, lower: bool| {
            match json_to_value(extract(req, path).ok().flatten(), number_field) {
                // the compiler writes a NULL value as the literal NULL (and no LOWER)
                Value::Null => Atom {
                    value: Value::Null,
                    param: false,
                    lower: false,
                    keyword: false,
                },
                v => Atom {
                    value: v,
                    param: true,
                    lower,
                    keyword: false,
                },
            }
        };
        Some(match self {
            Known::Const { value, param } => Atom {
                value: value.clone(),
                param: *param,
                lower: false,
                keyword: false,
            },
            Known::Request {
                path,
                number_field,
                lower,
            } => bound(path, *number_field, *lower),
            Known::Isset(path) => Atom {
                value: Value::Integer(extract(req, path).is_ok() as i64),
                param: false,
                lower: false,
                keyword: true,
            },
            Known::Auth {
                path,
                number_field,
                plain,
            } => match &req.auth {
                None => Atom {
                    value: Value::Null,
                    param: false,
                    lower: false,
                    keyword: false,
                },
                Some(_) if *plain => bound(path, *number_field, false),
                Some(_) => return None,
            },
        })
    }
}

/// One comparison between two known operands.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldCheck {
    pub left: Known,
    pub op: Op,
    pub right: Known,
}

impl FoldCheck {
    /// The comparison's value for `req`; `None` when it is not known for this request or
    /// cannot be folded exactly (then SQLite evaluates it as before).
    pub fn outcome(&self, req: &RequestInfo) -> Option<Truth> {
        let l = self.left.atom(req)?;
        let r = self.right.atom(req)?;
        compare(&l, self.op, &r)
    }

    /// Whether the outcome can differ between requests (a comparison of two literals
    /// cannot, so it needs no guard).
    pub fn depends_on_request(&self) -> bool {
        self.left.depends_on_request() || self.right.depends_on_request()
    }

    pub fn reads_auth(&self) -> bool {
        self.left.reads_auth() || self.right.reads_auth()
    }
}

/// A parsed filter with each comparison either foldable ([`FoldCheck`]) or left to SQL.
/// Built once per (collection, filter); independent of the request.
#[derive(Debug, Clone, PartialEq)]
pub enum FoldTree {
    /// A comparison: `None` when it reads something only SQLite knows (a column, ...).
    Leaf(Option<Arc<FoldCheck>>),
    /// A parenthesised sequence of items, each with the join before it.
    Group(Vec<(Join, FoldTree)>),
}

/// A [`FoldTree`] decided for one request: the value of each part, `None` where it
/// depends on the row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    Leaf(Option<Truth>),
    Group(Vec<(Join, Plan)>, Option<Truth>),
}

impl Plan {
    pub fn value(&self) -> Option<Truth> {
        match self {
            Plan::Leaf(v) | Plan::Group(_, v) => *v,
        }
    }
}

impl FoldTree {
    /// Builds the tree of `groups` with `leaf` telling what each comparison is.
    pub(crate) fn build<F>(groups: &[Group], leaf: &mut F) -> FoldTree
    where
        F: FnMut(&crate::parse::Expr) -> Option<FoldCheck>,
    {
        FoldTree::Group(
            groups
                .iter()
                .map(|g| {
                    let node = match &g.item {
                        Item::Expr(e) => FoldTree::Leaf(leaf(e).map(Arc::new)),
                        Item::Group(inner) => FoldTree::build(inner, leaf),
                    };
                    (g.join, node)
                })
                .collect(),
        )
    }

    /// Decides the tree for `req`. `on_fold` sees every comparison that folded, with its
    /// outcome (the compiler turns them into guards).
    pub(crate) fn plan<F>(&self, req: &RequestInfo, on_fold: &mut F) -> Plan
    where
        F: FnMut(&Arc<FoldCheck>, Truth),
    {
        match self {
            FoldTree::Leaf(check) => Plan::Leaf(check.as_ref().and_then(|c| {
                let t = c.outcome(req)?;
                on_fold(c, t);
                Some(t)
            })),
            FoldTree::Group(items) => {
                let items: Vec<(Join, Plan)> = items
                    .iter()
                    .map(|(j, n)| (*j, n.plan(req, on_fold)))
                    .collect();
                let v = group_value(&items);
                Plan::Group(items, v)
            }
        }
    }

    /// The value of the whole tree for `req` (`None`: it depends on the row).
    pub fn decide(&self, req: &RequestInfo) -> Option<Truth> {
        self.plan(req, &mut |_, _| {}).value()
    }
}

/// Splits a group's items into SQL's precedence: an OR of AND chains (`a && b || c` is
/// `(a AND b) OR c`). Returns the index ranges of the chains.
pub(crate) fn chains<T>(items: &[(Join, T)]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, (j, _)) in items.iter().enumerate() {
        if i > 0 && *j == Join::Or {
            out.push(start..i);
            start = i;
        }
    }
    if !items.is_empty() {
        out.push(start..items.len());
    }
    out
}

/// Kleene AND of known values and unknowns (`None`).
pub(crate) fn and_value(vals: impl Iterator<Item = Option<Truth>>) -> Option<Truth> {
    kleene(vals, Truth::False, Truth::True)
}

/// Kleene OR of known values and unknowns (`None`).
pub(crate) fn or_value(vals: impl Iterator<Item = Option<Truth>>) -> Option<Truth> {
    kleene(vals, Truth::True, Truth::False)
}

/// AND (`absorbing` FALSE, `neutral` TRUE) or OR (the reverse): one absorbing value decides;
/// otherwise an unknown leaves the result unknown, a NULL makes it NULL, else it is `neutral`.
fn kleene(
    vals: impl Iterator<Item = Option<Truth>>,
    absorbing: Truth,
    neutral: Truth,
) -> Option<Truth> {
    let (mut unknown, mut null) = (false, false);
    for v in vals {
        match v {
            Some(t) if t == absorbing => return Some(absorbing),
            Some(Truth::Null) => null = true,
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown {
        None
    } else if null {
        Some(Truth::Null)
    } else {
        Some(neutral)
    }
}

fn group_value(items: &[(Join, Plan)]) -> Option<Truth> {
    or_value(
        chains(items)
            .into_iter()
            .map(|c| and_value(items[c].iter().map(|(_, p)| p.value()))),
    )
}

// ---------------------------------------------------------------------------------------
// SQLite semantics of the generated comparison

/// SQLite's LIKE pattern length limit (`SQLITE_LIMIT_LIKE_PATTERN_LENGTH`, default 50,000
/// bytes): a longer pattern is an SQL error, which is left to SQLite to raise.
const MAX_LIKE_PATTERN: usize = 50_000;

/// The SQL value of an atom (with `LOWER()` applied); `None` when only SQLite's own
/// formatting would tell (`LOWER` of a real number, a non-finite real that SQLite binds
/// as NULL).
fn sql_value(a: &Atom) -> Option<Value> {
    if let Value::Real(f) = a.value {
        if !f.is_finite() {
            return None;
        }
    }
    if !a.lower {
        return Some(a.value.clone());
    }
    lower(a.value.clone())
}

/// SQLite's built-in `lower()` (ASCII only; SQLite is built without ICU).
fn lower(v: Value) -> Option<Value> {
    Some(match v {
        Value::Null => Value::Null,
        Value::Text(s) => Value::Text(s.to_ascii_lowercase()),
        Value::Integer(i) => Value::Text(i.to_string()),
        Value::Real(_) => return None,
    })
}

/// PocketBase's "empty" operand (NULL or ''), which its `=`/`!=` treat alike.
fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Null) || matches!(v, Value::Text(s) if s.is_empty())
}

/// SQLite's ordering of two non-NULL values without type affinity (bound parameters and
/// literals have none): numbers before text, numbers by value, text by bytes.
fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use Value::*;
    let num = |v: &Value| match v {
        Integer(i) => Some(*i as f64),
        Real(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Null, _) | (_, Null) => None,
        (Integer(x), Integer(y)) => Some(x.cmp(y)),
        (Text(x), Text(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Text(_), _) => Some(std::cmp::Ordering::Greater),
        (_, Text(_)) => Some(std::cmp::Ordering::Less),
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

fn compare(l: &Atom, op: Op, r: &Atom) -> Option<Truth> {
    use std::cmp::Ordering::*;
    // the `?`-operators differ only for multi-valued operands, which are never known
    Some(match op.base() {
        Op::Eq => equal(l, r)?,
        Op::Neq if r.keyword && !(is_empty(&l.value) && is_empty(&r.value)) => {
            // `x IS NOT TRUE` / `x IS NOT FALSE` (x never NULL here: '' stands for empty)
            let x = if is_empty(&l.value) {
                Value::Text(String::new())
            } else {
                sql_value(l)?
            };
            let t = truthy(&x)?;
            Truth::from_bool(if r.value == Value::Integer(1) { !t } else { t })
        }
        Op::Neq => equal(l, r)?.not(),
        Op::Like => like(l, r)?,
        Op::NotLike => like(l, r)?.not(),
        base => {
            let (a, b) = (sql_value(l)?, sql_value(r)?);
            match cmp(&a, &b) {
                None => Truth::Null,
                Some(o) => Truth::from_bool(match base {
                    Op::Lt => o == Less,
                    Op::Lte => o != Greater,
                    Op::Gt => o == Greater,
                    _ => o != Less,
                }),
            }
        }
    })
}

/// SQLite's boolean value of a non-NULL value (`IS TRUE`): a number is true when it is not
/// zero; text is converted by its longest numeric prefix, modelled here only for text that
/// has none (`None` otherwise: left to SQLite).
fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(*i != 0),
        Value::Real(f) => Some(*f != 0.0),
        Value::Text(s) => {
            let first = s
                .trim_start_matches([' ', '\t', '\n', '\r', '\x0c'])
                .chars()
                .next();
            match first {
                None => Some(false),
                Some(c) if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') => None,
                Some(_) => Some(false),
            }
        }
    }
}

/// `=` as PocketBase writes it: two empty operands (NULL or '') are equal; otherwise an
/// empty operand is compared as '' (so never NULL).
fn equal(l: &Atom, r: &Atom) -> Option<Truth> {
    let (a, b) = (sql_value(l)?, sql_value(r)?);
    let (le, re) = (is_empty(&l.value), is_empty(&r.value));
    if le && re {
        return Some(Truth::True);
    }
    let empty = Value::Text(String::new());
    let a = if le { &empty } else { &a };
    let b = if re { &empty } else { &b };
    Some(Truth::from_bool(
        cmp(a, b) == Some(std::cmp::Ordering::Equal),
    ))
}

/// SQLite's text form of a value for `LIKE` and `||` (`None` for a real, whose text only
/// SQLite's own formatting gives; `Some(None)` for NULL).
fn text_of(v: &Value) -> Option<Option<String>> {
    Some(match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Text(s) => Some(s.clone()),
        Value::Real(_) => return None,
    })
}

/// `l LIKE <pattern> ESCAPE '\'` as PocketBase writes it: a bound right operand is
/// wrapped as `%value%` (unless it holds a `%` of its own); a literal one is concatenated
/// between `'%'`s.
fn like(l: &Atom, r: &Atom) -> Option<Truth> {
    let pattern = if r.param {
        // the wrapping applies to the bound value, inside any LOWER()
        if let Value::Real(f) = r.value {
            if !f.is_finite() {
                return None;
            }
        }
        let wrapped = like_wrap(r.value.clone());
        let wrapped = if r.lower { lower(wrapped)? } else { wrapped };
        text_of(&wrapped)?
    } else {
        text_of(&sql_value(r)?)?.map(|s| format!("%{s}%"))
    };
    let subject = text_of(&sql_value(l)?)?;
    let (Some(pattern), Some(subject)) = (pattern, subject) else {
        return Some(Truth::Null);
    };
    if pattern.len() > MAX_LIKE_PATTERN {
        return None;
    }
    Some(Truth::from_bool(like_match(&pattern, &subject, '\\')))
}

/// SQLite's case-insensitive (ASCII) `LIKE` with an escape character. Both strings end at
/// a NUL, as the C strings SQLite matches.
pub(crate) fn like_match(pattern: &str, subject: &str, escape: char) -> bool {
    let cut = |s: &str| -> Vec<char> { s.chars().take_while(|&c| c != '\0').collect() };
    let (p, s) = (cut(pattern), cut(subject));
    pattern_compare(&p, &s, escape) == Match::Yes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    /// No match, and no later start of a `%` can match either (ends the outer loops, as
    /// SQLite's `SQLITE_NOWILDCARDMATCH` does, which keeps the search polynomial).
    NoWildcard,
}

fn fold_eq(a: char, b: char) -> bool {
    a == b || a.eq_ignore_ascii_case(&b)
}

fn pattern_compare(p: &[char], s: &[char], esc: char) -> Match {
    let (mut pi, mut si) = (0usize, 0usize);
    while pi < p.len() {
        let c = p[pi];
        pi += 1;
        if c == '%' {
            // runs of % and _ after a %: each _ consumes one character
            let mut c2 = None;
            while pi < p.len() {
                let n = p[pi];
                pi += 1;
                if n == '%' {
                    continue;
                }
                if n == '_' {
                    if si >= s.len() {
                        return Match::NoWildcard;
                    }
                    si += 1;
                    continue;
                }
                c2 = Some(n);
                break;
            }
            let Some(mut c) = c2 else {
                return Match::Yes;
            };
            if c == esc {
                if pi >= p.len() {
                    return Match::NoWildcard;
                }
                c = p[pi];
                pi += 1;
            }
            // try each position of the subject where `c` matches, continuing after it
            while si < s.len() {
                let here = s[si];
                si += 1;
                if !fold_eq(c, here) {
                    continue;
                }
                let m = pattern_compare(&p[pi..], &s[si..], esc);
                if m != Match::No {
                    return m;
                }
            }
            return Match::NoWildcard;
        }
        let mut escaped = false;
        let mut c = c;
        if c == esc {
            if pi >= p.len() {
                return Match::No;
            }
            c = p[pi];
            pi += 1;
            escaped = true;
        }
        let Some(&here) = s.get(si) else {
            return Match::No;
        };
        si += 1;
        if fold_eq(c, here) {
            continue;
        }
        if c == '_' && !escaped {
            continue;
        }
        return Match::No;
    }
    if si == s.len() {
        Match::Yes
    } else {
        Match::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The LIKE matcher against SQLite's own `LIKE ... ESCAPE '\'` on many short strings
    /// over an alphabet of wildcards, escapes, ASCII case pairs and non-ASCII letters.
    #[test]
    fn like_matches_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("SELECT ?1 LIKE ?2 ESCAPE '\\'").unwrap();
        let alphabet: Vec<char> = "aAb%_\\éÉ".chars().collect();
        let mut seed = 42u64;
        let mut word = |max: usize| {
            let mut next = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as usize
            };
            let n = next() % (max + 1);
            (0..n)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect::<String>()
        };
        for _ in 0..20_000 {
            let (s, p) = (word(6), word(6));
            let want: Option<bool> = stmt.query_row([&s, &p], |r| r.get(0)).unwrap();
            assert_eq!(Some(like_match(&p, &s, '\\')), want, "{s:?} LIKE {p:?}");
        }
        // NUL ends both strings, as in C
        assert!(like_match("ab", "ab\0cd", '\\'));
    }

    #[test]
    fn three_valued_joins() {
        use Truth::*;
        assert_eq!(and_value([Some(True), Some(Null)].into_iter()), Some(Null));
        assert_eq!(and_value([None, Some(False)].into_iter()), Some(False));
        assert_eq!(and_value([None, Some(Null)].into_iter()), None);
        assert_eq!(or_value([Some(False), Some(Null)].into_iter()), Some(Null));
        assert_eq!(or_value([None, Some(True)].into_iter()), Some(True));
        assert_eq!(or_value([Some(False), None].into_iter()), None);
    }
}

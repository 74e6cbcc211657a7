//! Lexer (logos) and parser for PocketBase's filter expression language.
//!
//! The grammar is flat: `operand op operand` expressions joined by `&&`/`||`, with
//! parenthesised groups. Precedence is not decided here: the builder emits the joins
//! into SQL unchanged, so SQL's own precedence applies (`AND` binds tighter than `OR`).

use logos::Logos;

use crate::error::QueryError;

/// Maximum nesting of function calls (`f(g(h(x)))`).
const MAX_FUNC_DEPTH: usize = 3;
/// Max nesting of parenthesized groups. PocketBase has none (Go stacks grow), but here each
/// level is a native stack frame in the parser, the compiler and the AST's drop: ~1,700
/// levels fit in the 3,500-byte filter limit and overflowed a 2 MiB worker stack (found by
/// the `filter` fuzz target). No real filter nests this deep.
const MAX_GROUP_DEPTH: usize = 64;

#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    #[regex(r"[ \t\n]+")]
    Ws,
    #[regex(r"//[^\n]*")]
    Comment,
    /// An identifier; the payload tells whether a `(` follows directly (a function call).
    #[regex(r"[A-Za-z@_#][A-Za-z0-9_.:]*", |lex| lex.remainder().starts_with('('))]
    Ident(bool),
    #[regex(r"-[0-9]*(\.[0-9]*)?|[0-9]+(\.[0-9]*)?")]
    Number,
    #[regex(r#""([^"\\]|\\[\s\S])*""#)]
    #[regex(r#"'([^'\\]|\\[\s\S])*'"#)]
    Text,
    #[regex(r"[=?!<>~]+")]
    Sign,
    #[regex(r"[&|]+")]
    Join,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token(",")]
    Comma,
}

/// A comparison operator. The `Any*` variants are the `?`-prefixed "any of" forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Neq,
    Like,
    NotLike,
    Lt,
    Lte,
    Gt,
    Gte,
    AnyEq,
    AnyNeq,
    AnyLike,
    AnyNotLike,
    AnyLt,
    AnyLte,
    AnyGt,
    AnyGte,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" => Op::Eq,
            "!=" => Op::Neq,
            "~" => Op::Like,
            "!~" => Op::NotLike,
            "<" => Op::Lt,
            "<=" => Op::Lte,
            ">" => Op::Gt,
            ">=" => Op::Gte,
            "?=" => Op::AnyEq,
            "?!=" => Op::AnyNeq,
            "?~" => Op::AnyLike,
            "?!~" => Op::AnyNotLike,
            "?<" => Op::AnyLt,
            "?<=" => Op::AnyLte,
            "?>" => Op::AnyGt,
            "?>=" => Op::AnyGte,
            _ => return None,
        })
    }

    /// Whether this is one of the `?` "any of" operators (no match-all subquery).
    pub fn is_any(self) -> bool {
        matches!(
            self,
            Op::AnyEq
                | Op::AnyNeq
                | Op::AnyLike
                | Op::AnyNotLike
                | Op::AnyLt
                | Op::AnyLte
                | Op::AnyGt
                | Op::AnyGte
        )
    }

    /// The operator without its "any" flag.
    pub fn base(self) -> Op {
        match self {
            Op::AnyEq => Op::Eq,
            Op::AnyNeq => Op::Neq,
            Op::AnyLike => Op::Like,
            Op::AnyNotLike => Op::NotLike,
            Op::AnyLt => Op::Lt,
            Op::AnyLte => Op::Lte,
            Op::AnyGt => Op::Gt,
            Op::AnyGte => Op::Gte,
            o => o,
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A field path, macro or keyword (`null`, `true`, `false`).
    Ident(String),
    /// A quoted string, quotes removed and `\<quote>` unescaped.
    Text(String),
    /// A number literal as written.
    Number(String),
    /// A function call with its arguments.
    Func { name: String, args: Vec<Operand> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub left: Operand,
    pub op: Op,
    pub right: Operand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Expr(Expr),
    Group(Vec<Group>),
}

/// An item and the join that connects it to the previous item.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub join: Join,
    pub item: Item,
}

fn err(msg: impl Into<String>) -> QueryError {
    QueryError::invalid_filter(msg)
}

/// Parses a filter expression. An empty (whitespace/comments only) expression is an error,
/// as in PocketBase.
pub fn parse(text: &str) -> Result<Vec<Group>, QueryError> {
    // a NUL byte ends the input (PocketBase's scanner treats it as end of input)
    let text = match text.find('\0') {
        Some(i) => &text[..i],
        None => text,
    };
    parse_inner(text, 0)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Step {
    BeforeSign,
    Sign,
    AfterSign,
    Join,
}

fn parse_inner(text: &str, depth: usize) -> Result<Vec<Group>, QueryError> {
    let mut result: Vec<Group> = Vec::new();
    let mut lex = Tok::lexer(text);
    let mut step = Step::BeforeSign;
    let mut join = Join::And;
    let mut left: Option<Operand> = None;
    let mut op: Option<Op> = None;

    while let Some(tok) = lex.next() {
        let tok = tok.map_err(|_| err(format!("unexpected character {:?}", lex.slice())))?;
        match tok {
            Tok::Ws | Tok::Comment => continue,
            Tok::LParen => {
                let rest = lex.remainder();
                let (inner_len, consumed) = scan_group(rest)?;
                let inner = &rest[..inner_len];
                lex.bump(consumed);
                if depth >= MAX_GROUP_DEPTH {
                    return Err(err("max nested groups limit reached"));
                }
                let group = parse_inner(inner, depth + 1)?;
                if !group.is_empty() {
                    result.push(Group {
                        join,
                        item: Item::Group(group),
                    });
                }
                step = Step::Join;
                continue;
            }
            _ => {}
        }
        match step {
            Step::BeforeSign | Step::AfterSign => {
                let operand = operand(&mut lex, tok, MAX_FUNC_DEPTH)?
                    .ok_or_else(|| err(format!("expected an operand, got {:?}", lex.slice())))?;
                if step == Step::BeforeSign {
                    left = Some(operand);
                    step = Step::Sign;
                } else {
                    result.push(Group {
                        join,
                        item: Item::Expr(Expr {
                            left: left.take().unwrap_or(Operand::Ident(String::new())),
                            op: op.take().unwrap_or(Op::Eq),
                            right: operand,
                        }),
                    });
                    step = Step::Join;
                }
            }
            Step::Sign => {
                if tok != Tok::Sign {
                    return Err(err(format!(
                        "expected a sign operator, got {:?}",
                        lex.slice()
                    )));
                }
                op = Some(
                    Op::parse(lex.slice())
                        .ok_or_else(|| err(format!("invalid sign operator {:?}", lex.slice())))?,
                );
                step = Step::AfterSign;
            }
            Step::Join => {
                if tok != Tok::Join {
                    return Err(err(format!("expected && or ||, got {:?}", lex.slice())));
                }
                join = match lex.slice() {
                    "&&" => Join::And,
                    "||" => Join::Or,
                    s => return Err(err(format!("invalid join operator {s:?}"))),
                };
                step = Step::BeforeSign;
            }
        }
    }

    if step != Step::Join {
        if result.is_empty() && left.is_none() && op.is_none() {
            return Err(err("empty filter expression"));
        }
        return Err(err("invalid or incomplete filter expression"));
    }
    Ok(result)
}

/// Turns the current token into an operand (reading function arguments when it is a call).
/// `Ok(None)` when the token cannot be an operand.
fn operand(
    lex: &mut logos::Lexer<'_, Tok>,
    tok: Tok,
    depth: usize,
) -> Result<Option<Operand>, QueryError> {
    Ok(Some(match tok {
        Tok::Ident(is_func) => {
            let name = lex.slice().to_string();
            if is_func {
                if depth == 0 {
                    return Err(err("max nested function arguments reached"));
                }
                if !valid_identifier(&name) {
                    return Err(err(format!("invalid function name {name:?}")));
                }
                lex.bump(1); // the '('
                let args = function_args(lex, &name, depth)?;
                Operand::Func { name, args }
            } else {
                if !valid_identifier(&name) {
                    return Err(err(format!("invalid identifier {name:?}")));
                }
                Operand::Ident(name)
            }
        }
        Tok::Number => {
            let s = lex.slice();
            if s == "-" || s.ends_with('.') {
                return Err(err(format!("invalid number {s:?}")));
            }
            Operand::Number(s.to_string())
        }
        Tok::Text => Operand::Text(unquote(lex.slice())),
        _ => return Ok(None),
    }))
}

fn function_args(
    lex: &mut logos::Lexer<'_, Tok>,
    name: &str,
    depth: usize,
) -> Result<Vec<Operand>, QueryError> {
    let mut args = Vec::new();
    let mut expect_comma = false;
    loop {
        let Some(tok) = lex.next() else {
            return Err(err(format!("invalid or incomplete function {name:?}")));
        };
        let tok = tok.map_err(|_| err(format!("unsupported argument in function {name:?}")))?;
        match tok {
            Tok::RParen => return Ok(args),
            Tok::Ws | Tok::Comment => continue,
            Tok::Comma => {
                if !expect_comma {
                    return Err(err(format!("unexpected comma in function {name:?}")));
                }
                expect_comma = false;
            }
            _ => {
                if expect_comma {
                    return Err(err(format!(
                        "expected comma after the last argument in function {name:?}"
                    )));
                }
                let arg = operand(lex, tok, depth - 1)?.ok_or_else(|| {
                    err(format!(
                        "unsupported argument character in function {name:?}"
                    ))
                })?;
                args.push(arg);
                expect_comma = true;
            }
        }
    }
}

fn valid_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    let last = b[b.len() - 1];
    last != b'.' && last != b':' && !(b.len() == 1 && matches!(b[0], b'@' | b'_' | b'#'))
}

/// Removes the quotes; a backslash escapes the next character: `\\` and `\<quote>` lose
/// the backslash, any other escaped character keeps it.
fn unquote(raw: &str) -> String {
    let quote = raw.as_bytes()[0] as char;
    let inner = &raw[1..raw.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) if n == '\\' || n == quote => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Scans a group body after its `(`: returns (length of the inner text, bytes consumed
/// including the closing `)`). Quoted strings are skipped so that parentheses inside them
/// do not count; nothing else (comments included) is special.
fn scan_group(rest: &str) -> Result<(usize, usize), QueryError> {
    let b = rest.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((i, i + 1));
                }
            }
            q @ (b'\'' | b'"') => {
                i = text_end(b, i, q).ok_or_else(|| err("invalid quoted text"))?;
            }
            _ => {}
        }
        i += 1;
    }
    Err(err(format!(
        "invalid formatted group - missing {depth} closing bracket(s)"
    )))
}

/// Index of the closing quote of a string starting at `start`: the first quote not
/// escaped by a backslash (a backslash escapes the next character).
fn text_end(b: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut j = start + 1;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == quote {
            return Some(j);
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<Group> {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
    }

    #[test]
    fn parses_simple_and_groups() {
        let g = ok("a = 1 && (b != 'x' || c ~ \"y\")");
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].join, Join::And);
        let Item::Group(inner) = &g[1].item else {
            panic!()
        };
        assert_eq!(inner[1].join, Join::Or);
    }

    #[test]
    fn all_operators() {
        for op in [
            "=", "!=", "~", "!~", "<", "<=", ">", ">=", "?=", "?!=", "?~", "?!~", "?<", "?<=",
            "?>", "?>=",
        ] {
            let g = ok(&format!("a {op} 1"));
            assert_eq!(g.len(), 1, "{op}");
        }
        for bad in ["==", "=!", "<>", "??=", "!", "?"] {
            assert!(parse(&format!("a {bad} 1")).is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_and_escapes() {
        let g = ok(r#"a = 'it\'s' && b = "q\"x" && c = -1.5 && d = 'a\\b'"#);
        let texts: Vec<_> = g
            .iter()
            .map(|g| match &g.item {
                Item::Expr(e) => e.right.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(texts[0], Operand::Text("it's".into()));
        assert_eq!(texts[1], Operand::Text("q\"x".into()));
        assert_eq!(texts[2], Operand::Number("-1.5".into()));
        assert_eq!(texts[3], Operand::Text("a\\b".into()));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "   ",
            "// only a comment",
            "a",
            "a =",
            "a = 1 &&",
            "a = 1 b = 2",
            "a = 1 & b = 2",
            "a = 1 ||| b = 2",
            "a = 'x",
            "(a = 1",
            "a = 1)",
            "a = 1.",
            "a = -",
            "a. = 1",
            "@ = 1",
            "a = 1 / b",
            "a\r= 1",
            "()",
            "a = f(1,,2)",
            "a = f(1 2)",
            "a = f(1",
            "a = f(g(h(i(1))))",
            "a = (1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn quirks() {
        // comments, nested groups, functions with comments inside
        ok("// c\n a = 1 // trailing");
        ok("((a = 1)) || ((b = 2 && c = 3))");
        ok("geoDistance(a, b, 1.5, // c\n 2) < 3");
        ok("a = f(g(h(1)))");
        // a comment containing ')' inside a group closes the group (raw group scan)
        assert!(parse("(a = 1 // x)\n)").is_err());
        // parenthesis inside a quoted string does not close the group
        ok("(a = ')' )");
        // NUL ends the input
        ok("a = 1\0 garbage");
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
        ok(&nest(MAX_GROUP_DEPTH));
        assert!(parse(&nest(MAX_GROUP_DEPTH + 1)).is_err());
        // as deep as the filter length allows: an error, not a stack overflow (this runs
        // on a test thread's 2 MiB stack, like a server worker)
        let e = parse(&nest(1745)).unwrap_err();
        assert!(e.detail.contains("nested groups"), "{e:?}");
    }
}

//! `fields` and `expand` parameter parsing (the engine applies them to the response).

use crate::error::QueryError;

/// The `:excerpt(max, withEllipsis?)` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excerpt {
    pub max: usize,
    pub ellipsis: bool,
}

/// One `fields` entry: a dotted path (`*` allowed as a segment, e.g. `expand.rel.*`) and an
/// optional modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPick {
    pub path: Vec<String>,
    pub excerpt: Option<Excerpt>,
}

/// Splits on `separators` outside parentheses (when `parens`) and quotes, trimming
/// whitespace and dropping empty tokens.
fn tokens(s: &str, separators: &[char], parens: bool) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut prev = '\0';
    let flush = |buf: &mut String, out: &mut Vec<String>| {
        let t = buf.trim_matches(|c: char| c.is_whitespace() && !separators.contains(&c));
        if !t.is_empty() {
            out.push(t.to_string());
        }
        buf.clear();
    };
    for ch in s.chars() {
        if prev != '\\' {
            if parens && ch == '(' && quote.is_none() {
                depth += 1;
            } else if parens && ch == ')' && depth > 0 && quote.is_none() {
                depth -= 1;
            } else if matches!(ch, '\'' | '"' | '`') {
                match quote {
                    Some(q) if q == ch => quote = None,
                    None => quote = Some(ch),
                    _ => {}
                }
            }
        }
        if separators.contains(&ch) && depth == 0 && quote.is_none() {
            flush(&mut buf, &mut out);
            prev = ch;
            continue;
        }
        prev = ch;
        buf.push(ch);
    }
    if depth > 0 || quote.is_some() {
        return Err(QueryError::invalid_param(
            "unbalanced parenthesis or quoted expression",
        ));
    }
    flush(&mut buf, &mut out);
    Ok(out)
}

fn to_bool(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Parses a `fields` query parameter (`id,title:excerpt(100,true),expand.rel.*`).
pub fn parse_fields(raw: &str) -> Result<Vec<FieldPick>, QueryError> {
    let mut out = Vec::new();
    for f in tokens(raw, &[','], true)? {
        let mut parts = f.trim().splitn(2, ':');
        let name = parts.next().unwrap_or("");
        let excerpt = match parts.next() {
            None => None,
            Some(m) => Some(parse_modifier(m)?),
        };
        out.push(FieldPick {
            path: name.split('.').map(str::to_string).collect(),
            excerpt,
        });
    }
    Ok(out)
}

fn parse_modifier(raw: &str) -> Result<Excerpt, QueryError> {
    let parts = tokens(raw, &['(', ')', ',', ' '], false)?;
    let Some((name, args)) = parts.split_first() else {
        return Err(QueryError::invalid_param("invalid or empty modifier"));
    };
    if name != "excerpt" {
        return Err(QueryError::invalid_param(format!(
            "missing or invalid modifier {name:?}"
        )));
    }
    if args.is_empty() || args.len() > 2 {
        return Err(QueryError::invalid_param(
            "expected (max, withEllipsis?) arguments",
        ));
    }
    let max: i64 = args[0].trim().parse().unwrap_or(0);
    if max <= 0 {
        return Err(QueryError::invalid_param("max argument must be > 0"));
    }
    Ok(Excerpt {
        max: max as usize,
        ellipsis: args.get(1).is_some_and(|a| to_bool(a.trim())),
    })
}

/// Parses an `expand` parameter into relation paths (`a,b.c` → `[[a],[b,c]]`), empty
/// entries dropped.
pub fn parse_expand(raw: &str) -> Vec<Vec<String>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.split('.').map(|p| p.trim().to_string()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let f = parse_fields(" id, title:excerpt(10, true) ,expand.rel.*, ,*").unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].path, vec!["id"]);
        assert_eq!(
            f[1].excerpt,
            Some(Excerpt {
                max: 10,
                ellipsis: true
            })
        );
        assert_eq!(f[2].path, vec!["expand", "rel", "*"]);
        assert_eq!(f[3].path, vec!["*"]);
        assert_eq!(
            parse_fields("a:excerpt(5)").unwrap()[0].excerpt,
            Some(Excerpt {
                max: 5,
                ellipsis: false
            })
        );
        for bad in [
            "a:excerpt()",
            "a:excerpt(0)",
            "a:excerpt(1,2,3)",
            "a:nope(1)",
            "a:excerpt(1",
            "a'",
        ] {
            assert!(parse_fields(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expand() {
        assert_eq!(
            parse_expand("a, b.c ,,"),
            vec![
                vec!["a".to_string()],
                vec!["b".to_string(), "c".to_string()]
            ]
        );
    }
}

//! Go's standard-library behaviour that PocketBase's answers depend on, in one place: query
//! strings and urlencoded forms as `net/url` parses them, and floats as `strconv` formats them.
//!
//! Every query string and urlencoded body is read by [`pieces`] and [`unescape`] (the record
//! and settings form bodies, the auth forms, realtime's form, subscription options, list
//! parameters, `fields=`, OAuth2 token answers), so all of them split, decode and refuse
//! alike. What Go does, checked against PocketBase 0.40.6:
//! * `&` separates pairs; an empty piece is skipped; a piece holding `;` is refused;
//! * `+` is a space, `%XY` needs two hex digits (`%zz`, `%+1`, a trailing `%` are refused);
//! * decoded bytes that are no UTF-8 are kept (PocketBase's JSON shows them as U+FFFD);
//! * a refused pair is left out, and the whole query counts as refused: `URL.Query()`
//!   ignores that (the other pairs still count), but a form body, or the URL query of a form
//!   request, fails `ParseForm`, which PocketBase answers with its bind failure (400).

/// Percent- and plus-decoding of one query string component (`None`: an invalid escape,
/// which Go's `url.ParseQuery` drops the pair for). Bytes that are no UTF-8 become U+FFFD,
/// as PocketBase's JSON writer shows them. The tests' window on [`unescape`].
#[cfg(test)]
fn url_decode(s: &str) -> Option<String> {
    unescape(s.as_bytes()).map(lossy)
}

/// Go's `url.PathUnescape` of `s` appended to `out`: `%XX` decoded (`+` kept); an invalid
/// escape leaves `s` as is.
pub fn path_unescape_into(out: &mut String, s: &str) {
    if !s.contains('%') {
        out.push_str(s);
        return;
    }
    match unescape_as(s.as_bytes(), false) {
        Some(bytes) => out.push_str(&lossy(bytes)),
        None => out.push_str(s),
    }
}

/// Go's `url.QueryUnescape` on bytes: `+` is a space, `%XY` the byte it names (`None`: an
/// escape without two hex digits).
fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    unescape_as(s, true)
}

/// [`unescape`], or with `+` kept as is (`plus_is_space` false: Go's `url.PathUnescape`).
fn unescape_as(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                out.push(hex_byte(s.get(i + 1..i + 3)?)?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// Decoded bytes as text; invalid UTF-8 as U+FFFD (no copy when the bytes are valid).
fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The byte a `%XY` escape stands for: both must be hex digits, as in Go's `unhex`
/// (`u8::from_str_radix` alone would also take `+1`, a sign and one digit).
fn hex_byte(xy: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    match xy {
        [x, y] => Some((digit(*x)? * 16 + digit(*y)?) as u8),
        _ => None,
    }
}

/// Go's `url.ParseQuery` refuses a query with this many `&` separators or more (GODEBUG
/// `urlmaxqueryparams`, 10,000 parameters); `Request.URL.Query()` then holds nothing, so
/// PocketBase sees no parameter at all. A form body over the limit is a 400 (`apis::body`).
pub const MAX_QUERY_PARAMS: usize = 10_000;

/// Whether `raw` (a query string or urlencoded body) has more parameters than Go parses.
pub fn too_many_params(raw: &[u8]) -> bool {
    raw.iter().filter(|&&b| b == b'&').count() >= MAX_QUERY_PARAMS
}

/// The raw `key=value` pieces of a query or form as Go splits them, empty ones skipped (no
/// `=`: the value is empty). `None` stands for a piece Go refuses outright: one holding `;`.
fn pieces(raw: &[u8]) -> impl Iterator<Item = Option<(&[u8], &[u8])>> {
    raw.split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            if piece.contains(&b';') {
                return None;
            }
            Some(match piece.iter().position(|&b| b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..]),
                None => (piece, &piece[piece.len()..]),
            })
        })
}

/// One piece decoded (`None`: an invalid escape in its key or value).
fn decode_piece((k, v): (&[u8], &[u8])) -> Option<(String, String)> {
    Some((lossy(unescape(k)?), lossy(unescape(v)?)))
}

/// A query string or urlencoded form as Go's `url.ParseQuery` reads it.
#[derive(Debug, Default)]
pub struct Form {
    /// The well-formed pairs, decoded, in order (a repeated key stands as often as given).
    pub pairs: Vec<(String, String)>,
    /// Whether Go reports an error: a pair holding `;` or an invalid escape, or more than
    /// [`MAX_QUERY_PARAMS`] parameters (then `pairs` is empty: Go parses none).
    pub refused: bool,
}

/// Parses a query string or urlencoded body the way Go's `url.ParseQuery` does.
pub fn parse_form(raw: &[u8]) -> Form {
    let mut form = Form::default();
    if too_many_params(raw) {
        form.refused = true;
        return form;
    }
    for pair in pieces(raw).map(|piece| piece.and_then(decode_piece)) {
        match pair {
            Some(pair) => form.pairs.push(pair),
            None => form.refused = true,
        }
    }
    form
}

impl Form {
    /// The pairs with their first values, as Go's `url.Values.Get` sees them. Linear:
    /// repeated keys are found through a hash set, so even 10,000 distinct keys cost
    /// microseconds (a search of the list per key took seconds).
    pub fn first_values(self) -> Vec<(String, String)> {
        let mut seen = std::collections::HashSet::with_capacity(self.pairs.len());
        let mut pairs = self.pairs;
        pairs.retain(|(k, _)| seen.insert(k.clone()));
        pairs
    }
}

/// The query parameters with their first values, as `URL.Query().Get` sees them (a refused
/// pair is left out; none past [`MAX_QUERY_PARAMS`]).
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    parse_form(raw.as_bytes()).first_values()
}

/// The first value of `key` in a raw query (Go's `URL.Query().Get`), decoding only the
/// keys before it and its own value: `fields=` is looked for on every request, and most
/// have none.
pub fn query_first(raw: &str, key: &str) -> Option<String> {
    if too_many_params(raw.as_bytes()) {
        return None;
    }
    pieces(raw.as_bytes())
        .flatten()
        .filter(|(k, _)| unescape(k).is_some_and(|k| k == key.as_bytes()))
        .find_map(|(_, v)| unescape(v).map(lossy))
}

pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// PocketBase's `inflector.Snakecase`: words split at anything Go's `[\W_]` matches (all
/// but ASCII letters and digits, RE2's `\W` is ASCII-only), an underscore before an
/// upper-case letter that follows a non-upper-case one, all lower-cased.
pub fn snakecase(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let words = s.split(|c: char| !c.is_ascii_alphanumeric());
    for word in words.filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        let mut prev_upper = false;
        for (i, c) in word.bytes().enumerate() {
            if c.is_ascii_uppercase() && i > 0 && !prev_upper {
                out.push('_');
            }
            prev_upper = c.is_ascii_uppercase();
            out.push(c.to_ascii_lowercase() as char);
        }
    }
    out
}

/// Unix time in milliseconds (Go's `time.Now().UnixMilli()`: the datetime macros of rules
/// and filters).
pub fn now_ms() -> i64 {
    pocketbun_storage::time::unix_micros() / 1000
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn format_float(f: f64) -> String {
    // Rust prints floats in their shortest round-trip form without an exponent, as Go does
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::{format_float, parse_form, query_first, query_pairs, snakecase, url_decode};

    #[test]
    fn snakecase_like_pocketbase() {
        for (s, want) in [
            ("acme_test", "acme_test"),
            ("My App", "my_app"),
            ("myApp-Name!", "my_app_name"),
            ("ABCTest", "abctest"),
            ("X-Token", "x_token"),
            ("helloWorld_x", "hello_world_x"),
            // RE2's \W is ASCII-only: other letters separate words
            ("caf\u{e9}Bar", "caf_bar"),
        ] {
            assert_eq!(snakecase(s), want, "{s}");
        }
    }

    #[test]
    fn url_decode_refuses_what_go_refuses() {
        // Go's url.QueryUnescape: "%+1", "%-1", "% 1" are invalid escapes, not bytes 1
        for bad in ["%+1", "%-1", "% 1", "%1", "%", "a%zz", "%1g", "%\u{e9}1"] {
            assert_eq!(url_decode(bad), None, "{bad}");
        }
        assert_eq!(url_decode("a%2Bb+c%2fd").as_deref(), Some("a+b c/d"));
        assert_eq!(url_decode("%C3%A9").as_deref(), Some("\u{e9}"));
        // bytes that are no UTF-8 are kept, shown as U+FFFD (Go keeps the bytes)
        assert_eq!(url_decode("a%ff").as_deref(), Some("a\u{fffd}"));
    }

    #[test]
    fn forms_parse_as_go_parses_them() {
        let form = parse_form(b"a=1&&b&c=x+y%21&a=2");
        assert!(!form.refused);
        let pairs: Vec<(&str, &str)> = form
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "1"), ("b", ""), ("c", "x y!"), ("a", "2")]);
        // a `;` or a bad escape in key or value: that pair is left out, the form refused
        for bad in ["a=1&b=2;c", "a=1&b=%zz", "a=1&%+1=2", "a=1&b=%"] {
            let form = parse_form(bad.as_bytes());
            assert!(form.refused, "{bad}");
            assert_eq!(form.pairs, [("a".to_string(), "1".to_string())], "{bad}");
        }
        let many = "a&".repeat(super::MAX_QUERY_PARAMS);
        let form = parse_form(many.as_bytes());
        assert!(form.refused && form.pairs.is_empty());
    }

    #[test]
    fn query_values_are_the_first_well_formed_ones() {
        let q = "fields=%zz&x=1;y&fields=a%2Cb&fields=c";
        assert_eq!(query_first(q, "fields").as_deref(), Some("a,b"));
        assert_eq!(query_first(q, "x"), None);
        assert_eq!(query_first("%66ields=id", "fields").as_deref(), Some("id"));
        let pairs = query_pairs(q);
        assert_eq!(pairs, [("fields".to_string(), "a,b".to_string())]);
    }

    #[test]
    fn floats_as_go_formats_them() {
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(0.1), "0.1");
    }
}

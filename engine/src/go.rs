//! Go's standard-library behaviour that PocketBase's answers depend on, in one place: query
//! strings as `net/url` parses them, and floats as `strconv` formats them.

/// Percent- and plus-decoding of one query string component (`None`: invalid escape, which
/// Go's `url.ParseQuery` drops the pair for).
pub fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(hex_byte(b.get(i + 1..i + 3)?)?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The byte a `%XY` escape stands for: both must be hex digits, as in Go's `unhex`
/// (`u8::from_str_radix` alone would also take `+1`, a sign and one digit).
pub fn hex_byte(xy: &[u8]) -> Option<u8> {
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

/// The query parameters with their first values, as Go's `url.Values.Get` sees them (none
/// past [`MAX_QUERY_PARAMS`]). Linear: repeated keys are found through a hash set, so even
/// 10,000 distinct keys cost microseconds (a search of the list per key took seconds).
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if raw.is_empty() || too_many_params(raw.as_bytes()) {
        return out;
    }
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for part in raw.split('&') {
        if part.is_empty() || part.contains(';') {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (Some(k), Some(v)) = (url_decode(k), url_decode(v)) else {
            continue;
        };
        if seen.insert(k.clone()) {
            out.push((k, v));
        }
    }
    out
}

pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn format_float(f: f64) -> String {
    // Rust prints floats in their shortest round-trip form without an exponent, as Go does
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::{format_float, url_decode};

    #[test]
    fn url_decode_refuses_what_go_refuses() {
        // Go's url.QueryUnescape: "%+1", "%-1", "% 1" are invalid escapes, not bytes 1
        for bad in ["%+1", "%-1", "% 1", "%1", "%", "a%zz", "%1g", "%\u{e9}1"] {
            assert_eq!(url_decode(bad), None, "{bad}");
        }
        assert_eq!(url_decode("a%2Bb+c%2fd").as_deref(), Some("a+b c/d"));
        assert_eq!(url_decode("%C3%A9").as_deref(), Some("\u{e9}"));
    }

    #[test]
    fn floats_as_go_formats_them() {
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(0.1), "0.1");
    }
}

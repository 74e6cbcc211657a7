//! Method + path routing with `{name}` segment parameters and a trailing `{name...}` wildcard,
//! the pattern syntax PocketBase's router uses.
//!
//! Routing works on the raw (still percent-encoded) path split at `/`, decoding each segment
//! on its own: an encoded slash (`%2F`) inside a record id stays inside that parameter.
//! Among candidates the most specific wins: a literal segment beats a parameter, which beats
//! a wildcard, whatever the order of registration.
//!
//! Lookups walk the path in place (no segment vector) and compare literal children one by
//! one: a node has at most a couple of dozen of them, which is cheaper than hashing every
//! segment.

use crate::request::Method;
use crate::response::Response;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

pub struct Router<T> {
    root: Node<T>,
}

struct Node<T> {
    literals: Vec<(Box<str>, Node<T>)>,
    param: Option<(String, Box<Node<T>>)>,
    wildcard: Option<(String, Vec<(Method, T)>)>,
    routes: Vec<(Method, T)>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literals: Vec::new(),
            param: None,
            wildcard: None,
            routes: Vec::new(),
        }
    }
}

pub enum Match<'r, T> {
    Found {
        value: &'r T,
        params: Vec<(String, String)>,
    },
    /// The path exists, but not for this method.
    MethodNotAllowed,
    NotFound,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            root: Node::default(),
        }
    }
}

impl<T> Router<T> {
    pub fn new() -> Self {
        Router::default()
    }

    /// Registers `value` for `method` on `pattern` (e.g. `/api/collections/{c}/records/{id}`).
    ///
    /// # Panics
    /// On a malformed pattern or a duplicate registration: both are programming errors that
    /// must surface at start-up, not on some later request.
    ///
    /// Returns the stored value, for the caller to finish describing the route.
    pub fn add(&mut self, method: Method, pattern: &str, value: T) -> &mut T {
        assert!(
            pattern.starts_with('/'),
            "route pattern must start with /: {pattern}"
        );
        let segments: Vec<&str> = pattern[1..].split('/').collect();
        let mut node = &mut self.root;
        for (i, seg) in segments.iter().enumerate() {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("...}")) {
                assert!(i == segments.len() - 1, "wildcard must be last: {pattern}");
                let (_, routes) = node
                    .wildcard
                    .get_or_insert_with(|| (name.to_string(), Vec::new()));
                assert!(
                    !routes.iter().any(|(m, _)| *m == method),
                    "duplicate route {} {pattern}",
                    method.as_str()
                );
                routes.push((method, value));
                return &mut routes.last_mut().expect("just pushed").1;
            }
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let (existing, child) = node
                    .param
                    .get_or_insert_with(|| (name.to_string(), Box::default()));
                assert!(
                    existing == name,
                    "parameter {{{name}}} conflicts with {{{existing}}} in {pattern}"
                );
                node = child;
            } else {
                let i = match node.literals.iter().position(|(k, _)| **k == **seg) {
                    Some(i) => i,
                    None => {
                        node.literals.push(((*seg).into(), Node::default()));
                        node.literals.len() - 1
                    }
                };
                node = &mut node.literals[i].1;
            }
        }
        assert!(
            !node.routes.iter().any(|(m, _)| *m == method),
            "duplicate route {} {pattern}",
            method.as_str()
        );
        node.routes.push((method, value));
        &mut node.routes.last_mut().expect("just pushed").1
    }

    /// Finds the route for `method` and the raw (percent-encoded) `path`. HEAD falls back to
    /// GET, as in PocketBase.
    pub fn find(&self, method: &Method, raw_path: &str) -> Match<'_, T> {
        let Some(rest) = raw_path.strip_prefix('/') else {
            return Match::NotFound;
        };
        // room for a records route's two parameters: no regrowth on the way down (~0.2k)
        let mut params = Vec::with_capacity(2);
        let mut path_matched = false;
        match find_in(
            &self.root,
            Some(rest),
            method,
            &mut params,
            &mut path_matched,
        ) {
            Some(value) => Match::Found { value, params },
            None if path_matched => Match::MethodNotAllowed,
            None => Match::NotFound,
        }
    }
}

fn pick<'r, T>(routes: &'r [(Method, T)], method: &Method) -> Option<&'r T> {
    let exact = routes.iter().find(|(m, _)| m == method);
    let fallback = || {
        (*method == Method::Head)
            .then(|| routes.iter().find(|(m, _)| *m == Method::Get))
            .flatten()
    };
    exact.or_else(fallback).map(|(_, v)| v)
}

fn decode(segment: &str) -> Cow<'_, str> {
    decode_if(segment, segment.contains('%'))
}

/// `segment` percent-decoded when `encoded` (it holds a `%`).
fn decode_if(segment: &str, encoded: bool) -> Cow<'_, str> {
    if encoded {
        Cow::Owned(percent_decode_str(segment).decode_utf8_lossy().into_owned())
    } else {
        Cow::Borrowed(segment)
    }
}

/// The segment at the front of `rest`, what follows its `/` (`None`: it was the last), and
/// whether it holds a `%`: one pass over its bytes, where finding the `/` and then the `%`
/// took two searches per segment (segments are short: a byte loop beats memchr's set-up).
fn next_segment(rest: &str) -> (&str, Option<&str>, bool) {
    let mut encoded = false;
    for (i, &b) in rest.as_bytes().iter().enumerate() {
        match b {
            b'/' => return (&rest[..i], Some(&rest[i + 1..]), encoded),
            b'%' => encoded = true,
            _ => {}
        }
    }
    (rest, None, encoded)
}

/// `rest` is what follows the last matched `/` (`None`: no segment left; `Some("")`: one
/// empty segment, as in a trailing slash).
fn find_in<'r, T>(
    node: &'r Node<T>,
    rest: Option<&str>,
    method: &Method,
    params: &mut Vec<(String, String)>,
    path_matched: &mut bool,
) -> Option<&'r T> {
    let Some(rest) = rest else {
        if !node.routes.is_empty() {
            *path_matched = true;
            if let Some(v) = pick(&node.routes, method) {
                return Some(v);
            }
        }
        return None;
    };
    let (first, tail, encoded) = next_segment(rest);
    let decoded = decode_if(first, encoded);
    if let Some((_, child)) = node.literals.iter().find(|(k, _)| **k == *decoded) {
        if let Some(v) = find_in(child, tail, method, params, path_matched) {
            return Some(v);
        }
    }
    if let Some((name, child)) = &node.param {
        if !first.is_empty() {
            params.push((name.clone(), decoded.into_owned()));
            if let Some(v) = find_in(child, tail, method, params, path_matched) {
                return Some(v);
            }
            params.pop();
        }
    }
    if let Some((name, routes)) = &node.wildcard {
        *path_matched = true;
        if let Some(v) = pick(routes, method) {
            params.push((name.clone(), decode(rest).into_owned()));
            return Some(v);
        }
    }
    None
}

/// The redirect Go's `ServeMux` (PocketBase's router) gives a path that is not in clean
/// form: `//`, `/./` or `/../` segments are resolved lexically and the client is sent a
/// 307 to the result, the query kept. `None` when `raw_path` is already clean (the usual case:
/// one scan, no allocation).
///
/// Following PocketBase here rather than answering 404 lets clients with a sloppy base URL
/// (`http://host/` + `/api/...`) work against both servers. It opens no redirect to another
/// host: the cleaned path starts with exactly one `/`, and bytes a URL may not carry (`\`,
/// which browsers read as `/`, among them) are percent-encoded in the Location.
pub fn unclean_path_redirect(method: &Method, raw_path: &str, query: &str) -> Option<Response> {
    if !raw_path.starts_with('/') || matches!(method, Method::Other(m) if m == "CONNECT") {
        return None;
    }
    let cleaned = clean_path(raw_path)?;
    let mut location = String::with_capacity(cleaned.len() + query.len() + 1);
    for &b in cleaned.as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@%".contains(&b) {
            location.push(b as char);
        } else {
            location.push_str(&format!("%{b:02X}"));
        }
    }
    if !query.is_empty() {
        location.push('?');
        location.push_str(query);
    }
    let mut resp = if matches!(method, Method::Get | Method::Head) {
        let body = format!(
            "<a href=\"{}\">Temporary Redirect</a>.\n\n",
            html_escape(&location)
        );
        Response::with_body(307, "text/html; charset=utf-8", body.into_bytes())
    } else {
        Response::new(307)
    };
    resp.headers.push(("Location".into(), location.into()));
    Some(resp)
}

/// `raw_path` with empty, `.` and `..` segments resolved (never above the root), keeping a
/// trailing slash, as Go's `ServeMux` cleans it; `None` when that changes nothing.
fn clean_path(raw_path: &str) -> Option<String> {
    if !may_be_unclean(raw_path.as_bytes()) || is_clean(raw_path.as_bytes()) {
        return None;
    }
    let mut path = path_clean(raw_path);
    if raw_path.ends_with('/') && path != "/" {
        path.push('/');
    }
    (path != raw_path).then_some(path)
}

/// Whether `path` holds a `/` followed by `/` or `.`, which every unclean path has (it may
/// also say so of a few clean ones, which [`is_clean`] then reads exactly): 8 bytes at a
/// time. Every request's path is checked, and [`is_clean`]'s byte loop cost ~600 instructions
/// on a view's 46-byte path; this ~100.
fn may_be_unclean(path: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // the high bit of each byte of `x` that is zero, and maybe of some bytes above one that is
    // (a borrow): never misses, at worst over-reports
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = path.chunks_exact(8);
    // the last byte of the previous word was (maybe) a `/`
    let mut carry = 0u64;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let slash = zeros(word ^ (ONES * u64::from(b'/')));
        let follower = slash | zeros(word ^ (ONES * u64::from(b'.')));
        // little-endian: the byte after byte i is byte i + 1, 8 bits up
        if ((slash << 8) | carry) & follower != 0 {
            return true;
        }
        carry = slash >> 56;
    }
    let mut after_slash = carry != 0;
    for &b in chunks.remainder() {
        if after_slash && (b == b'/' || b == b'.') {
            return true;
        }
        after_slash = b == b'/';
    }
    false
}

/// Whether the rooted `path` has no empty segment but a trailing one, and no `.` or `..`
/// segment: one pass over the bytes after each `/` (every request's path is checked).
fn is_clean(path: &[u8]) -> bool {
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'/' {
            let next = |k: usize| path.get(i + k).copied();
            let ends = |k: usize| matches!(next(k), None | Some(b'/'));
            match next(1) {
                // an empty segment before another one
                Some(b'/') => return false,
                Some(b'.') if ends(2) || (next(2) == Some(b'.') && ends(3)) => return false,
                _ => {}
            }
        }
        i += 1;
    }
    true
}

/// Go's `path.Clean`: the shortest equivalent slash path ("." for an empty one); a rooted
/// path never climbs above `/`. Also what `pb_public` resolves a request path with.
pub fn path_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `html.EscapeString`, for the bodies of Go's redirect answers.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<&'static str> {
        let mut r = Router::new();
        r.add(Method::Get, "/api/health", "health");
        r.add(Method::Get, "/api/collections/{c}/records", "list");
        r.add(Method::Post, "/api/collections/{c}/records", "create");
        r.add(Method::Get, "/api/collections/{c}/records/{id}", "view");
        r.add(
            Method::Get,
            "/api/collections/meta/records/{id}",
            "meta-view",
        );
        r.add(Method::Get, "/{path...}", "static");
        r
    }

    fn found(
        r: &Router<&'static str>,
        m: Method,
        p: &str,
    ) -> (&'static str, Vec<(String, String)>) {
        match r.find(&m, p) {
            Match::Found { value, params } => (value, params),
            Match::MethodNotAllowed => ("405", vec![]),
            Match::NotFound => ("404", vec![]),
        }
    }

    #[test]
    fn specificity_and_params() {
        let r = router();
        assert_eq!(found(&r, Method::Get, "/api/health").0, "health");
        assert_eq!(found(&r, Method::Head, "/api/health").0, "health");
        let (v, p) = found(&r, Method::Get, "/api/collections/posts/records/a%2Fb");
        assert_eq!(v, "view");
        assert_eq!(
            p,
            vec![("c".into(), "posts".into()), ("id".into(), "a/b".into())]
        );
        assert_eq!(
            found(&r, Method::Get, "/api/collections/meta/records/x").0,
            "meta-view"
        );
        assert_eq!(
            found(&r, Method::Post, "/api/collections/x/records").0,
            "create"
        );
        let (v, p) = found(&r, Method::Get, "/api/nope/deeper");
        assert_eq!(v, "static");
        assert_eq!(p, vec![("path".into(), "api/nope/deeper".into())]);
    }

    #[test]
    fn trailing_slash_and_wildcard_rest() {
        let r = router();
        // an empty last segment is not a parameter: the wildcard takes it
        let (v, p) = found(&r, Method::Get, "/api/collections/posts/records/");
        assert_eq!(v, "static");
        assert_eq!(
            p,
            vec![("path".into(), "api/collections/posts/records/".into())]
        );
        let (v, p) = found(&r, Method::Get, "/");
        assert_eq!(v, "static");
        assert_eq!(p, vec![("path".into(), "".into())]);
        let (v, p) = found(&r, Method::Get, "/a%20b/c%2Fd");
        assert_eq!(v, "static");
        assert_eq!(p, vec![("path".into(), "a b/c/d".into())]);
        // a literal matched through its encoded form
        assert_eq!(found(&r, Method::Get, "/api/%68ealth").0, "health");
        assert_eq!(found(&r, Method::Get, "/api/health/").0, "static");
    }

    #[test]
    fn method_mismatch() {
        let r = router();
        assert_eq!(found(&r, Method::Delete, "/api/health").0, "405");
        assert_eq!(
            found(&r, Method::Get, "/api/collections//records").0,
            "static"
        );
    }

    #[test]
    fn cleans_like_go() {
        for (input, want) in [
            ("", "."),
            ("a/b", "a/b"),
            ("a//b/./c/..", "a/b"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../x", "/x"),
            ("//evil.com/", "/evil.com"),
            ("/", "/"),
            ("sub/../a.css", "a.css"),
        ] {
            assert_eq!(path_clean(input), want, "{input}");
        }
    }

    /// The word-wise pre-check finds a `/` + `/` or `.` pair at every offset, across word
    /// boundaries too, and clean paths of any length stay clean.
    #[test]
    fn unclean_pairs_are_found_at_every_offset() {
        for pad in 0..24 {
            let lead = format!("x{}", "a".repeat(pad));
            for tail in ["//", "/.", "/./x", "/../y", "/..", "//x", "/.hidden"] {
                let path = format!("/{lead}{tail}");
                assert!(may_be_unclean(path.as_bytes()), "{path}");
            }
            for clean in ["/b.c/d", "/x/", "/a.b./c", "/id%2F."] {
                let path = format!("/{lead}{clean}");
                assert!(clean_path(&path).is_none(), "{path}");
            }
            let path = format!("/{lead}//z");
            assert_eq!(clean_path(&path), Some(format!("/{lead}/z")), "{path}");
        }
    }

    /// The byte scan agrees with the segment-by-segment reading of a clean path on every
    /// path of up to 7 bytes drawn from `/`, `.` and `a`.
    #[test]
    fn clean_check_matches_segments() {
        fn by_segments(path: &str) -> bool {
            let mut segments = path[1..].split('/').peekable();
            while let Some(seg) = segments.next() {
                let last = segments.peek().is_none();
                if (seg.is_empty() && !last) || seg == "." || seg == ".." {
                    return false;
                }
            }
            true
        }
        let alphabet = [b'/', b'.', b'a'];
        let mut checked = 0;
        for len in 0..7u32 {
            for mut k in 0..3usize.pow(len) {
                let mut path = vec![b'/'];
                for _ in 0..len {
                    path.push(alphabet[k % 3]);
                    k /= 3;
                }
                let path = String::from_utf8(path).unwrap();
                assert_eq!(is_clean(path.as_bytes()), by_segments(&path), "{path}");
                if !by_segments(&path) {
                    assert!(may_be_unclean(path.as_bytes()), "{path}");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 1093);
    }

    #[test]
    fn unclean_paths_redirect_like_go() {
        let loc = |path: &str, query: &str| {
            unclean_path_redirect(&Method::Get, path, query)
                .map(|r| r.get_header("location").unwrap().to_string())
        };
        assert_eq!(loc("/api/health", ""), None);
        assert_eq!(loc("/api/health/", ""), None);
        assert_eq!(loc("/", ""), None);
        assert_eq!(loc("/api/%2e/health", ""), None);
        assert_eq!(loc("/a.b/.c/..d", ""), None);
        assert_eq!(loc("/a/.../b/", ""), None);
        assert_eq!(loc("/.", "").as_deref(), Some("/"));
        assert_eq!(loc("/a/..", "").as_deref(), Some("/"));
        assert_eq!(loc("/a/../", "").as_deref(), Some("/"));
        assert_eq!(loc("/a/./", "").as_deref(), Some("/a/"));
        assert_eq!(loc("/a//", "").as_deref(), Some("/a/"));
        assert_eq!(loc("//api/health", "").as_deref(), Some("/api/health"));
        assert_eq!(
            loc("/api//health", "a=1").as_deref(),
            Some("/api/health?a=1")
        );
        assert_eq!(loc("/api/./health", "").as_deref(), Some("/api/health"));
        assert_eq!(loc("/api/health/.", "").as_deref(), Some("/api/health"));
        assert_eq!(loc("/api//health/", "").as_deref(), Some("/api/health/"));
        assert_eq!(loc("/api/x/..", "").as_deref(), Some("/api"));
        assert_eq!(loc("/../../etc/passwd", "").as_deref(), Some("/etc/passwd"));
        assert_eq!(loc("/..", "").as_deref(), Some("/"));
        // never a redirect to another host
        assert_eq!(loc("///evil.com", "").as_deref(), Some("/evil.com"));
        assert_eq!(loc("/.//\\evil.com", "").as_deref(), Some("/%5Cevil.com"));
        assert_eq!(loc("/./%5Cevil.com", "").as_deref(), Some("/%5Cevil.com"));
        let post = unclean_path_redirect(&Method::Post, "//a", "").unwrap();
        assert!(matches!(post.body, crate::Body::Empty));
        let get = unclean_path_redirect(&Method::Get, "//a", "x&y").unwrap();
        assert!(
            matches!(&get.body, crate::Body::Bytes(b) if b == b"<a href=\"/a?x&amp;y\">Temporary Redirect</a>.\n\n")
        );
    }
}

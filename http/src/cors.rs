//! Cross-origin requests as PocketBase answers them: the allowed origins of `serve --origins`
//! (default `*`), the usual methods, requested headers echoed back in preflight. Kept
//! byte-compatible with what the real server sends, since browsers cache these answers.
//!
//! An allowed origin is matched as PocketBase 0.40 matches it, in this order: `*`; the exact
//! origin; a `scheme://*.domain` entry covering the origin's subdomains; then each entry as a
//! pattern where `*` stands for any run of characters and `?` for one (only for origins of at
//! most 261 bytes that contain `://`). `*` answers `*`, an exact entry answers itself, every
//! other match answers the request's own origin.

use crate::request::{Method, RequestHead};
use crate::response::Response;

const ALLOW_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// Longest origin checked against the patterns: a 253-byte domain plus scheme and port.
const MAX_PATTERN_ORIGIN: usize = 253 + 3 + 5;

/// The allowed origins.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
}

impl Default for Cors {
    /// Any origin, PocketBase's default.
    fn default() -> Self {
        Cors::new(Vec::new())
    }
}

impl Cors {
    /// The `--origins` list; an empty list means `*`.
    pub fn new(origins: Vec<String>) -> Self {
        let origins = if origins.is_empty() {
            vec!["*".to_string()]
        } else {
            origins
        };
        Cors { origins }
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, or `None` when it is not allowed.
    pub fn allow(&self, origin: &str) -> Option<String> {
        for o in &self.origins {
            if o == "*" || o == origin {
                return Some(o.clone());
            }
            if match_subdomain(origin, o) {
                return Some(origin.to_string());
            }
        }
        if origin.len() > MAX_PATTERN_ORIGIN || !origin.contains("://") {
            return None;
        }
        self.origins
            .iter()
            .filter(|o| o.as_str() != "*")
            .any(|o| glob(o.as_bytes(), origin.as_bytes()))
            .then(|| origin.to_string())
    }

    /// The 204 answer to an OPTIONS request (PocketBase answers every OPTIONS itself).
    pub fn preflight(&self, head: &RequestHead) -> Response {
        let mut resp = Response::new(204);
        resp.headers.push(("Vary".into(), "Origin".into()));
        let Some(allowed) = origin(head).and_then(|o| self.allow(o)) else {
            return resp;
        };
        resp.headers
            .push(("Access-Control-Allow-Origin".into(), allowed.into()));
        resp.headers
            .push(("Vary".into(), "Access-Control-Request-Method".into()));
        resp.headers
            .push(("Vary".into(), "Access-Control-Request-Headers".into()));
        resp.headers
            .push(("Access-Control-Allow-Methods".into(), ALLOW_METHODS.into()));
        if let Some(requested) = head
            .headers
            .get("access-control-request-headers")
            .filter(|h| !h.is_empty())
        {
            resp.headers.push((
                "Access-Control-Allow-Headers".into(),
                requested.to_string().into(),
            ));
        }
        resp
    }

    /// Adds the CORS headers of a simple (non-preflight) response to a request from `origin`.
    pub fn decorate(&self, origin: Option<&str>, resp: &mut Response) {
        if let Some(allowed) = origin.filter(|o| !o.is_empty()).and_then(|o| self.allow(o)) {
            resp.headers
                .push(("Access-Control-Allow-Origin".into(), allowed.into()));
        }
        resp.headers.push(("Vary".into(), "Origin".into()));
    }
}

/// The request's `Origin`, when present and not empty.
fn origin(head: &RequestHead) -> Option<&str> {
    head.headers.get("origin").filter(|o| !o.is_empty())
}

/// Whether `head` is answered by a preflight instead of a route. PocketBase answers every
/// OPTIONS request itself, preflight or not.
pub fn is_preflight(head: &RequestHead) -> bool {
    head.method == Method::Options
}

/// The 204 answer to an OPTIONS request, with any origin allowed.
pub fn preflight(head: &RequestHead) -> Response {
    Cors::default().preflight(head)
}

/// Adds the CORS headers (any origin allowed) of a simple response to a request that did or
/// did not carry an `Origin`.
pub fn decorate(has_origin: bool, resp: &mut Response) {
    Cors::default().decorate(has_origin.then_some("x"), resp);
}

/// `scheme://*.example.com` covering `scheme://a.b.example.com`: same scheme, then the
/// dot-separated labels compared from the right until the pattern's `*`.
fn match_subdomain(origin: &str, pattern: &str) -> bool {
    let (Some(oi), Some(pi)) = (origin.find(':'), pattern.find(':')) else {
        return false;
    };
    if origin[..oi] != pattern[..pi] {
        return false;
    }
    let (Some(oi), Some(pi)) = (origin.find("://"), pattern.find("://")) else {
        return false;
    };
    let host = &origin[oi + 3..];
    if host.len() > 253 {
        return false;
    }
    let mut pat = pattern[pi + 3..].rsplit('.');
    for label in host.rsplit('.') {
        match pat.next() {
            None => return false,
            Some("*") => return true,
            Some(p) if p != label => return false,
            Some(_) => {}
        }
    }
    false
}

/// `pattern` matching all of `text`, `*` standing for any run of bytes and `?` for one
/// character (a whole UTF-8 sequence).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    let char_len = |b: u8| match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    };
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'?' {
            p += 1;
            t += char_len(text[t]).min(text.len() - t);
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // let the last `*` take one more character
            let next = st + char_len(text[st]).min(text.len() - st);
            star = Some((sp, next));
            p = sp + 1;
            t = next;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str], origin: &str) -> Option<String> {
        Cors::new(list.iter().map(|s| s.to_string()).collect()).allow(origin)
    }

    #[test]
    fn matches_as_pocketbase_does() {
        assert_eq!(allow(&[], "https://a.com").as_deref(), Some("*"));
        assert_eq!(
            allow(&["https://a.com"], "https://a.com").as_deref(),
            Some("https://a.com")
        );
        assert_eq!(allow(&["https://a.com"], "https://b.com"), None);
        assert_eq!(allow(&["https://a.com"], "http://a.com"), None);
        // subdomain wildcard
        let sub = ["https://*.example.com"];
        assert_eq!(
            allow(&sub, "https://x.example.com").as_deref(),
            Some("https://x.example.com")
        );
        assert_eq!(
            allow(&sub, "https://y.x.example.com").as_deref(),
            Some("https://y.x.example.com")
        );
        assert_eq!(allow(&sub, "http://x.example.com"), None);
        // as a pattern `*` also matches the bare domain's dot-less prefix
        assert_eq!(allow(&sub, "https://example.com"), None);
        assert_eq!(allow(&sub, "https://xexample.com"), None);
        // `*` and `?` anywhere
        assert_eq!(
            allow(&["http://localhost:*"], "http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(
            allow(&["https://app?.test"], "https://app1.test").as_deref(),
            Some("https://app1.test")
        );
        assert_eq!(allow(&["https://app?.test"], "https://app12.test"), None);
        // regex metacharacters are literal
        assert_eq!(allow(&["https://a.b"], "https://axb"), None);
        // no pattern check without a scheme separator
        assert_eq!(allow(&["*localhost"], "localhost"), None);
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(!glob(b"a*b", b"aXXc"));
        assert!(glob("é?".as_bytes(), "éü".as_bytes()));
    }
}

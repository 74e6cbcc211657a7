//! Static files from `--publicDir` (default `pb_public`), as PocketBase's catch-all `GET
//! /{path...}` route serves them: directories redirect to their trailing-slash form and serve
//! their `index.html`, `…/index.html` redirects to its directory, files lose a trailing slash,
//! and with `--indexFallback` (the default) a missing path answers the root `index.html`, for
//! single-page apps with pretty URLs.
//!
//! The file itself goes out as Go's `http.ServeContent` sends it (`Last-Modified`, conditional
//! requests, byte ranges, the content type from the extension as Go's `mime` package knows it,
//! else sniffed from the first bytes), through the streaming body of [`crate::files::serve`].
//! PocketBun adds what PocketBase does not have: an `ETag`, and precompressed `name.br` /
//! `name.gz` siblings sent with `Content-Encoding` to clients that accept them.
//!
//! Nothing outside the directory is ever served: `..` (also percent-encoded) never leaves it,
//! and a symlink whose target lies outside counts as missing. PocketBase, through Go's
//! `os.DirFS`, follows such symlinks; PocketBun deliberately does not.

use crate::error::{ApiError, ApiResult};
use crate::files::serve::{self as content, Plan, Segment, Source};
use pocketbun_http::{Body, Request, Response};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const INDEX: &str = "index.html";

/// The static files directory and its options.
#[derive(Debug, Clone)]
pub struct PublicDir {
    pub root: PathBuf,
    pub index_fallback: bool,
}

/// Why a static path is not served.
fn not_found() -> ApiError {
    ApiError::not_found(Some("File not found."))
}

impl PublicDir {
    /// The answer to a GET or HEAD that no API route took.
    pub fn serve(&self, req: &Request) -> ApiResult {
        // the route's `{path...}` value: the decoded path without its leading slash, cleaned
        let url_path = req.head.path.as_str();
        let name = pocketbun_http::router::path_clean(url_path.trim_start_matches('/'));
        let fallback = |this: &Self| -> ApiResult {
            if this.index_fallback && name != INDEX {
                this.file(req, INDEX)
            } else {
                Err(not_found())
            }
        };
        if name == ".." || name.starts_with("../") {
            return fallback(self);
        }
        let Some(meta) = self.resolve(&name).and_then(|p| std::fs::metadata(p).ok()) else {
            return fallback(self);
        };
        if meta.is_dir() {
            if !url_path.ends_with('/') {
                return Ok(redirect(&format!("{url_path}/")));
            }
        } else if url_path.ends_with('/') {
            let trimmed = url_path.trim_end_matches('/');
            if !trimmed.is_empty() {
                return Ok(redirect(trimmed));
            }
        } else if let Some(stripped) = url_path.strip_suffix(INDEX) {
            return Ok(redirect(stripped));
        }
        match self.file(req, &name) {
            Err(e) if e.status == 404 => fallback(self),
            other => other,
        }
    }

    /// The real path of `name` inside the root, or `None` when it does not exist or resolves
    /// (through symlinks) outside the root.
    fn resolve(&self, name: &str) -> Option<PathBuf> {
        if name.contains('\0') {
            return None;
        }
        let root = std::fs::canonicalize(&self.root).ok()?;
        let path = if name == "." {
            root.clone()
        } else {
            std::fs::canonicalize(root.join(name)).ok()?
        };
        path.starts_with(&root).then_some(path)
    }

    /// Go's `FileFS`: `name`, or its `index.html` when it is a directory.
    fn file(&self, req: &Request, name: &str) -> ApiResult {
        let mut path = self.resolve(name).ok_or_else(not_found)?;
        let mut meta = std::fs::metadata(&path).map_err(|e| not_found().caused_by(e))?;
        if meta.is_dir() {
            path = self
                .resolve(&format!("{name}/{INDEX}"))
                .ok_or_else(not_found)?;
            meta = std::fs::metadata(&path).map_err(|e| not_found().caused_by(e))?;
        }
        // a FIFO or device would block the worker or never end
        if !meta.is_file() {
            return Err(not_found());
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = std::fs::File::open(&path).map_err(|e| not_found().caused_by(e))?;
        // the type is the original's, also when a compressed sibling is sent
        let ctype = match content_type_by_extension(&file_name) {
            Some(t) => t,
            None => sniff_file(&file),
        };
        let mut chosen = Variant {
            file,
            size: meta.len(),
            modified: meta.mtime(),
            modified_nanos: meta.mtime_nsec(),
            encoding: None,
        };
        let (sibling, any_sibling) = precompressed(&path, req.header("accept-encoding"));
        if let Some(v) = sibling {
            chosen = v;
        }
        Ok(respond(req, chosen, &ctype, any_sibling))
    }
}

/// One representation of a static file: itself or a precompressed sibling.
struct Variant {
    file: std::fs::File,
    size: u64,
    modified: i64,
    modified_nanos: i64,
    encoding: Option<&'static str>,
}

impl Variant {
    /// A strong tag from size and modification time, as nginx makes them; each sibling has its
    /// own size and time, so each representation gets its own tag.
    fn etag(&self) -> String {
        let nanos = self.modified as i128 * 1_000_000_000 + self.modified_nanos as i128;
        format!("\"{:x}-{:x}\"", nanos, self.size)
    }
}

/// The best precompressed sibling of `path` the client accepts (`.br` before `.gz`), and
/// whether any sibling exists (then the answer varies by `Accept-Encoding`).
fn precompressed(path: &Path, accept: Option<&str>) -> (Option<Variant>, bool) {
    let mut any = false;
    let mut best = None;
    for (suffix, coding) in [(".br", "br"), (".gz", "gzip")] {
        let mut sibling = path.as_os_str().to_owned();
        sibling.push(suffix);
        let sibling = PathBuf::from(sibling);
        let Ok(meta) = std::fs::metadata(&sibling) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        any = true;
        if best.is_some() || !accept.is_some_and(|a| accepts(a, coding)) {
            continue;
        }
        // the sibling must lie inside the directory as well
        let Some(dir) = path.parent() else { continue };
        let inside = std::fs::canonicalize(&sibling).is_ok_and(|p| p.starts_with(dir));
        if !inside {
            continue;
        }
        if let Ok(file) = std::fs::File::open(&sibling) {
            best = Some(Variant {
                file,
                size: meta.len(),
                modified: meta.mtime(),
                modified_nanos: meta.mtime_nsec(),
                encoding: Some(coding),
            });
        }
    }
    (best, any)
}

/// Whether an `Accept-Encoding` value accepts `coding` (named, or `*`, without `q=0`): for
/// `pb_public` files and the embedded dashboard alike.
pub(crate) fn accepts(header: &str, coding: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
    })
}

/// Go's `http.ServeContent` answer for one file representation.
fn respond(req: &Request, v: Variant, ctype: &str, vary: bool) -> Response {
    let etag = v.etag();
    let mut resp = Response::new(200);
    if vary {
        resp.headers.push(("Vary".into(), "Accept-Encoding".into()));
    }
    let cond = content::Conditional::new(req.method(), req.head.headers.iter());
    let plan = content::plan_with_etag(&cond, v.modified, v.size, Some(&etag));
    match plan {
        Plan::NotModified => {
            // PocketBase (no ETag) keeps Last-Modified on a 304; so does PocketBun
            resp.status = 304;
            resp.set_header("ETag", etag);
            resp.set_header("Last-Modified", content::http_date(v.modified));
            return resp;
        }
        Plan::PreconditionFailed => {
            resp.status = 412;
            resp.set_header("ETag", etag);
            resp.set_header("Last-Modified", content::http_date(v.modified));
            return resp;
        }
        Plan::BadRange(e) => {
            content::bad_range(&mut resp, e, v.size);
            return resp;
        }
        _ => {}
    }
    resp.set_header("ETag", etag);
    resp.set_header("Last-Modified", content::http_date(v.modified));
    resp.set_header("Accept-Ranges", "bytes");
    if let Some(coding) = v.encoding {
        resp.set_header("Content-Encoding", coding);
    }
    resp.set_header("Content-Type", ctype.to_string());
    let (segments, len) = content::plan_segments(&plan, v.size, ctype, &mut resp);
    if !cond.head {
        for seg in &segments {
            if let Segment::File(r) = seg {
                content::read_ahead(&v.file, *r);
            }
        }
    }
    resp.body = Body::SizedStream(content::body(Source::Local(v.file), segments), len);
    resp
}

/// PocketBase's redirect (`Location` only, empty body), with leading slashes and backslashes
/// folded into one slash so the target cannot become another host.
fn redirect(path: &str) -> Response {
    let b = path.as_bytes();
    let safe = if b.len() > 1 && matches!(b[0], b'/' | b'\\') && matches!(b[1], b'/' | b'\\') {
        format!("/{}", path.trim_start_matches(['/', '\\']))
    } else {
        path.to_string()
    };
    let mut resp = Response::new(301);
    resp.set_header("Location", safe);
    resp
}

// ---------------------------------------------------------------------------------------------
// content types

/// Go's built-in extension table (`mime.TypeByExtension` before the system files).
const BUILTIN_TYPES: &[(&str, &str)] = &[
    (".avif", "image/avif"),
    (".css", "text/css; charset=utf-8"),
    (".gif", "image/gif"),
    (".htm", "text/html; charset=utf-8"),
    (".html", "text/html; charset=utf-8"),
    (".jpeg", "image/jpeg"),
    (".jpg", "image/jpeg"),
    (".js", "text/javascript; charset=utf-8"),
    (".json", "application/json"),
    (".mjs", "text/javascript; charset=utf-8"),
    (".pdf", "application/pdf"),
    (".png", "image/png"),
    (".svg", "image/svg+xml"),
    (".wasm", "application/wasm"),
    (".webp", "image/webp"),
    (".xml", "text/xml; charset=utf-8"),
];

/// The system's freedesktop glob database (tried in order; the first found is used), else the
/// `mime.types` files, as Go's `mime` package loads them on Unix.
const GLOB_FILES: &[&str] = &["/usr/local/share/mime/globs2", "/usr/share/mime/globs2"];
const TYPES_FILES: &[&str] = &[
    "/etc/mime.types",
    "/etc/apache2/mime.types",
    "/etc/apache/mime.types",
    "/etc/httpd/conf/mime.types",
];

struct MimeTable {
    exact: HashMap<String, String>,
    lower: HashMap<String, String>,
}

impl MimeTable {
    fn set(&mut self, ext: &str, mime: &str) {
        let mime = if mime.starts_with("text/") && !mime.contains("charset=") {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        self.lower.insert(ext.to_ascii_lowercase(), mime.clone());
        self.exact.insert(ext.to_string(), mime);
    }

    fn load() -> MimeTable {
        let mut t = MimeTable {
            exact: HashMap::new(),
            lower: HashMap::new(),
        };
        for (ext, mime) in BUILTIN_TYPES {
            t.set(ext, mime);
        }
        for file in GLOB_FILES {
            if let Ok(text) = std::fs::read_to_string(file) {
                t.load_globs(&text);
                return t;
            }
        }
        for file in TYPES_FILES {
            if let Ok(text) = std::fs::read_to_string(file) {
                t.load_types(&text);
            }
        }
        t
    }

    /// `weight:type:*.ext[:flags]` lines, heaviest first: the first type of an extension wins,
    /// and the built-in ones are never replaced.
    fn load_globs(&mut self, text: &str) {
        for line in text.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 3 || fields[0].is_empty() || fields[2].len() < 3 {
                continue;
            }
            if fields[0].starts_with('#') || !fields[2].starts_with("*.") {
                continue;
            }
            let ext = &fields[2][1..];
            if ext.contains(['?', '*', '[']) || self.exact.contains_key(ext) {
                continue;
            }
            if valid_media_type(fields[1]) {
                self.set(ext, fields[1]);
            }
        }
    }

    /// `type ext ext…` lines; later files override earlier entries.
    fn load_types(&mut self, text: &str) {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(mime) = words.next() else { continue };
            if mime.starts_with('#') || !valid_media_type(mime) {
                continue;
            }
            for ext in words {
                if ext.starts_with('#') {
                    break;
                }
                self.set(&format!(".{ext}"), mime);
            }
        }
    }
}

/// A `type/subtype` Go's `mime.ParseMediaType` would take (no parameters are used here).
fn valid_media_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&c))
    };
    matches!(s.split_once('/'), Some((a, b)) if token(a) && token(b))
}

/// Go's `mime.TypeByExtension` of the file name's extension.
pub fn content_type_by_extension(name: &str) -> Option<String> {
    static TABLE: OnceLock<MimeTable> = OnceLock::new();
    let ext = name.rfind('.').map(|i| &name[i..])?;
    let table = TABLE.get_or_init(MimeTable::load);
    table
        .exact
        .get(ext)
        .or_else(|| table.lower.get(&ext.to_ascii_lowercase()))
        .cloned()
}

/// The sniffed type of a file's first 512 bytes.
fn sniff_file(file: &std::fs::File) -> String {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 512];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    sniff(&buf[..n]).to_string()
}

/// The common cases of Go's `http.DetectContentType`: byte-order marks, HTML and XML
/// prologues, PDF, the usual image formats, wasm, zip and gzip; then text or binary.
pub fn sniff(data: &[u8]) -> &'static str {
    if data.starts_with(&[0xFE, 0xFF]) {
        return "text/plain; charset=utf-16be";
    }
    if data.starts_with(&[0xFF, 0xFE]) {
        return "text/plain; charset=utf-16le";
    }
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return "text/plain; charset=utf-8";
    }
    let ws = |c: &u8| matches!(c, b'\t' | b'\n' | 0x0C | b'\r' | b' ');
    let start = data.iter().position(|c| !ws(c)).unwrap_or(data.len());
    let text = &data[start..];
    const HTML: &[&str] = &[
        "<!DOCTYPE HTML",
        "<HTML",
        "<HEAD",
        "<SCRIPT",
        "<IFRAME",
        "<H1",
        "<DIV",
        "<FONT",
        "<TABLE",
        "<A",
        "<STYLE",
        "<TITLE",
        "<B",
        "<BODY",
        "<BR",
        "<P",
        "<!--",
    ];
    for sig in HTML {
        let n = sig.len();
        if text.len() > n
            && text[..n].eq_ignore_ascii_case(sig.as_bytes())
            && matches!(text[n], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if text.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let magic: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"%!PS-Adobe-", "application/postscript"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
        (b"\xFF\xD8\xFF", "image/jpeg"),
        (b"BM", "image/bmp"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"\x00asm", "application/wasm"),
        (b"\x1F\x8B\x08", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"wOFF", "font/woff"),
        (b"wOF2", "font/woff2"),
        (b"OggS\x00", "application/ogg"),
    ];
    for (sig, ty) in magic {
        if data.starts_with(sig) {
            return ty;
        }
    }
    if data.len() >= 14 && &data[..4] == b"RIFF" && &data[8..14] == b"WEBPVP" {
        return "image/webp";
    }
    let binary = |c: &u8| matches!(c, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F);
    if data.iter().any(binary) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_usual_cases() {
        assert_eq!(sniff(b"  <html><body>"), "text/html; charset=utf-8");
        assert_eq!(sniff(b"<!-- x -->"), "text/html; charset=utf-8");
        assert_eq!(sniff(b"<pre"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"plain\x00bin"), "application/octet-stream");
        assert_eq!(sniff(b"hello\n"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"\x89PNG\x0D\x0A\x1A\x0A...."), "image/png");
        assert_eq!(sniff(b""), "text/plain; charset=utf-8");
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("GZIP", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("br;q=0.0, gzip", "br"));
        assert!(accepts("*", "br"));
        assert!(!accepts("identity", "gzip"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0, br", "gzip"));
        assert!(!accepts("", "br"));
    }

    #[test]
    fn builtin_types_win() {
        assert_eq!(
            content_type_by_extension("a.css").as_deref(),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(
            content_type_by_extension("A.JSON").as_deref(),
            Some("application/json")
        );
        assert_eq!(content_type_by_extension("noext"), None);
    }
}

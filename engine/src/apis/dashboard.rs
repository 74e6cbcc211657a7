//! The dashboard under `/_/`: PocketBun's own admin UI (source in `ui/`, built into `ui/dist`
//! and embedded by `build.rs`), plus the UI-extensions bundle, which is empty because PocketBun
//! has no Go plugins to contribute extensions.
//!
//! `index.html` is `no-cache` so a new binary's UI is picked up at once; the hashed files under
//! `assets/` never change under one name and are cached for a year. Each text asset is embedded
//! with `.br` and `.gz` siblings made at build time (maximum levels), picked by Accept-Encoding,
//! so serving costs no compression work.

use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult};
use pocketbun_http::{Method, Request, Response};
use std::rc::Rc;

/// The content policy PocketBase sends with everything under `/_/`.
const DASHBOARD_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' http://127.0.0.1:* https://tile.openstreetmap.org data: blob:; connect-src 'self' http://127.0.0.1:* https://nominatim.openstreetmap.org; script-src 'self' http://127.0.0.1:*; frame-ancestors 'none'";

/// PocketBase's cache policy for `/_/` files that are neither `index.html` nor hashed.
const DEFAULT_CACHE: &str = "max-age=1209600, stale-while-revalidate=86400";
const HASHED_CACHE: &str = "public, max-age=31536000, immutable";

/// One embedded file of `ui/dist` and its precompressed forms.
pub struct Asset {
    pub path: &'static str,
    pub raw: &'static [u8],
    pub gz: Option<&'static [u8]>,
    pub br: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/_/extensions.js", |ctx, req| {
        Box::pin(extensions_js(ctx, req))
    });
    routes.add(Method::Get, "/_", |_ctx, _req| {
        Box::pin(async { Ok(Response::new(307).header("Location", "/_/")) })
    });
    routes.add(Method::Get, "/_/", |_ctx, req| Box::pin(asset(req)));
    routes.add(Method::Get, "/_/{path...}", |_ctx, req| {
        Box::pin(asset(req))
    });
}

async fn extensions_js(_ctx: Rc<AppCtx>, _req: Request) -> ApiResult {
    Ok(Response::with_body(200, "text/javascript", Vec::new())
        .header("Cache-Control", DEFAULT_CACHE)
        .header("Content-Security-Policy", DASHBOARD_CSP))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The embedded file for a request path under `/_/` (`/_/` itself is `index.html`).
pub fn find(rel: &str) -> Option<&'static Asset> {
    let rel = if rel.is_empty() { "index.html" } else { rel };
    ASSETS.iter().find(|a| a.path == rel)
}

async fn asset(req: Request) -> ApiResult {
    let rel = req.path().strip_prefix("/_/").unwrap_or("");
    let Some(a) = find(rel) else {
        return Err(ApiError::not_found(Some("File not found.")));
    };
    let ae = req.header("accept-encoding").unwrap_or("");
    let (body, encoding) = match (a.br, a.gz) {
        (Some(br), _) if crate::public::accepts(ae, "br") => (br, Some("br")),
        (_, Some(gz)) if crate::public::accepts(ae, "gzip") => (gz, Some("gzip")),
        _ => (a.raw, None),
    };
    let cache = if a.path == "index.html" {
        "no-cache"
    } else if a.path.starts_with("assets/") {
        HASHED_CACHE
    } else {
        DEFAULT_CACHE
    };
    let mut resp = Response::with_body(200, content_type(a.path), body.to_vec())
        .header("Cache-Control", cache)
        .header("Content-Security-Policy", DASHBOARD_CSP)
        .header("Vary", "Accept-Encoding");
    if let Some(enc) = encoding {
        resp = resp.header("Content-Encoding", enc);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_build_is_embedded() {
        let index = find("").expect("ui/dist/index.html is embedded");
        let html = std::str::from_utf8(index.raw).unwrap();
        // every asset index.html references is embedded too, with its precompressed forms
        let re = regex::Regex::new(r#"(?:src|href)="\./(assets/[^"]+)""#).unwrap();
        let refs: Vec<_> = re.captures_iter(html).map(|c| c[1].to_string()).collect();
        assert!(refs.len() >= 2, "{html}");
        for r in refs {
            let a = find(&r).unwrap_or_else(|| panic!("{r} referenced but not embedded"));
            assert!(a.gz.is_some() && a.br.is_some(), "{r} lacks .gz/.br");
        }
    }
}

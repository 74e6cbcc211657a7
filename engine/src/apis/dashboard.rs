//! The dashboard's routes under `/_/`. PocketBun does not bundle PocketBase's admin UI; what
//! it answers here is the UI-extensions bundle, which is empty because PocketBun has no Go
//! plugins to contribute extensions.

use crate::app::{AppCtx, Routes};
use crate::error::ApiResult;
use pocketbun_http::{Method, Request, Response};
use std::rc::Rc;

/// The content policy PocketBase sends with everything under `/_/`.
const DASHBOARD_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' http://127.0.0.1:* https://tile.openstreetmap.org data: blob:; connect-src 'self' http://127.0.0.1:* https://nominatim.openstreetmap.org; script-src 'self' http://127.0.0.1:*; frame-ancestors 'none'";

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/_/extensions.js", |ctx, req| {
        Box::pin(extensions_js(ctx, req))
    });
}

async fn extensions_js(_ctx: Rc<AppCtx>, _req: Request) -> ApiResult {
    Ok(Response::with_body(200, "text/javascript", Vec::new())
        .header(
            "Cache-Control",
            "max-age=1209600, stale-while-revalidate=86400",
        )
        .header("Content-Security-Policy", DASHBOARD_CSP))
}

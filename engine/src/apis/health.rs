//! `GET|HEAD /api/health`.

use crate::app::{AppCtx, Routes};
use crate::auth::authenticate;
use crate::error::{json_response, ApiResult};
use pocketbun_http::{Method, Request};
use serde::Serialize;
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/health", |ctx, req| {
        Box::pin(health(ctx, req))
    });
}

#[derive(Serialize)]
struct Health {
    message: &'static str,
    code: u16,
    data: serde_json::Map<String, serde_json::Value>,
}

async fn health(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let mut data = serde_json::Map::new();
    let auth = authenticate(&ctx.reader, req.header("authorization"));
    if auth.is_some_and(|a| a.is_superuser()) {
        // no backup or restore runs yet, so a backup can always start
        data.insert("canBackup".into(), true.into());
        data.insert("possibleProxyHeader".into(), "".into());
        data.insert("realIP".into(), req.peer.ip().to_string().into());
    }
    Ok(json_response(
        200,
        &Health {
            message: "API is healthy.",
            code: 200,
            data,
        },
    ))
}

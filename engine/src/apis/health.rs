//! `GET|HEAD /api/health`.

use crate::app::{AppCtx, Routes};
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

async fn health(_ctx: Rc<AppCtx>, _req: Request) -> ApiResult {
    // superusers additionally get canBackup/realIP/possibleProxyHeader once tokens are verified
    Ok(json_response(
        200,
        &Health {
            message: "API is healthy.",
            code: 200,
            data: serde_json::Map::new(),
        },
    ))
}

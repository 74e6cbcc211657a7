//! `GET|HEAD /api/health`.

use crate::auth::authenticate;
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiResult};
use pocketbun_http::{Method, Request, Response};
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

/// What everyone but a superuser gets: the same bytes every time, so they are not rebuilt.
const PUBLIC_HEALTH: &[u8] = b"{\"message\":\"API is healthy.\",\"code\":200,\"data\":{}}";

async fn health(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    // PocketBun only, a primary with `serve --replicate`: its latest Litestream TXID, which
    // its replicas poll to tell when their copy is stale (crate::replicate::ryw)
    let position = ctx.shared.replication.position.last();
    let mut resp = answer(ctx, req)?;
    if let Some(pos) = position {
        resp.headers.push((
            crate::replicate::ryw::TXID_HEADER.into(),
            crate::replicate::position::hex(pos.txid).into(),
        ));
    }
    Ok(resp)
}

fn answer(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let auth = authenticate(&ctx.reader, &ctx.verified, req.header("authorization"));
    if !auth.as_ref().is_some_and(|a| a.is_superuser()) {
        return Ok(Response::with_body(
            200,
            "application/json",
            PUBLIC_HEALTH.to_vec(),
        ));
    }
    let mut data = serde_json::Map::new();
    {
        // no backup or restore runs yet, so a backup can always start
        data.insert("canBackup".into(), true.into());
        data.insert("possibleProxyHeader".into(), "".into());
        data.insert("realIP".into(), req.peer.ip().to_string().into());
    }
    // PocketBun only, with `serve --replicate`: the Litestream supervisor's snapshot
    let rep = &ctx.shared.replication;
    if let Some(replication) = crate::replicate::supervisor::health(rep) {
        data.insert("replication".into(), replication);
    }
    // on a read replica (`serve --replica-of`): the primary and the last applied transaction
    if let Some(replica) = rep.follower.health() {
        data.insert("replica".into(), replica);
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

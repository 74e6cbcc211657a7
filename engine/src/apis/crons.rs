//! `/api/crons`: the scheduled jobs, listed and started on demand, superusers only.

use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult};
use pocketbun_http::{Method, Request, Response};
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/crons", |c, r| Box::pin(list(c, r)));
    routes.add(Method::Post, "/api/crons/{id}", |c, r| Box::pin(run(c, r)));
}

async fn list(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let jobs = (ctx.shared.crons.as_ref())
        .map(|s| s.jobs())
        .unwrap_or_default();
    Ok(json_response(200, &jobs))
}

async fn run(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let id = req.param("id").unwrap_or_default();
    // the job starts on a thread of its own; the answer does not wait for it
    let started = (ctx.shared.crons.as_ref()).is_some_and(|s| s.run_now(id));
    if !started {
        return Err(ApiError::not_found(Some("Missing or invalid cron job")));
    }
    Ok(Response::new(204))
}

//! The realtime API: `GET /api/realtime` (the SSE stream) and `POST /api/realtime` (set the
//! client's subscriptions). The broker behind them is `crate::realtime`.

use crate::apis::body::query_refused;
use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult};
use crate::go::parse_form;
use crate::realtime::client::ClientAuth;
use crate::records::access::load_auth_info;
use pocketbun_http::{Body, Method, Request, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/realtime", |ctx, req| {
        Box::pin(connect(ctx, req))
    });
    routes.add(Method::Post, "/api/realtime", |ctx, req| {
        Box::pin(set_subscriptions(ctx, req))
    });
}

/// Max subscriptions per request, and max length of one.
pub const MAX_SUBSCRIPTIONS: usize = 1000;
pub const MAX_SUBSCRIPTION_LENGTH: usize = 2500;
const MAX_CLIENT_ID_LENGTH: usize = 255;

async fn connect(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let ip = client_ip(&ctx, &req);
    let stream = ctx.realtime.connect(&ctx, ip);
    let mut resp = Response::new(200);
    resp.headers
        .push(("Content-Type".into(), "text/event-stream".into()));
    resp.headers
        .push(("Cache-Control".into(), "no-store".into()));
    resp.headers.push(("X-Accel-Buffering".into(), "no".into()));
    resp.body = Body::Stream(Box::pin(stream));
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct Form {
    #[serde(rename = "clientId", default)]
    client_id: Option<String>,
    #[serde(default)]
    subscriptions: Option<Vec<String>>,
}

fn bad_request() -> ApiError {
    ApiError::bad_request(None)
}

/// PocketBase's body binding: JSON or a urlencoded form.
fn bind(req: &Request) -> Result<Form, ApiError> {
    let ctype = req
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ctype.as_str() {
        "application/json" => match crate::apis::body::json(req).map_err(|e| e.answer(None))? {
            None => Ok(Form::default()),
            Some(v) => serde_json::from_value(v).map_err(|e| bad_request().caused_by(e)),
        },
        "application/x-www-form-urlencoded" => {
            // Go's `ParseForm`: a refused body or URL query fails the binding (bytes that
            // are no UTF-8 do not: they become U+FFFD, an unknown client id)
            let body = parse_form(&req.body);
            if body.refused || query_refused(req.query()) {
                return Err(bad_request());
            }
            let mut form = Form::default();
            for (k, v) in body.pairs {
                match k.as_str() {
                    "clientId" if form.client_id.is_none() => form.client_id = Some(v),
                    "subscriptions" => form.subscriptions.get_or_insert_with(Vec::new).push(v),
                    _ => {}
                }
            }
            Ok(form)
        }
        _ => Err(bad_request()),
    }
}

fn length_error(code: &str, message: &str, min: usize, max: usize) -> Json {
    json!({"code": code, "message": message, "params": {"max": max, "min": min}})
}

fn validate(form: &Form) -> Result<(), ApiError> {
    let mut data = Map::new();
    let id = form.client_id.as_deref().unwrap_or("");
    if id.is_empty() {
        data.insert(
            "clientId".into(),
            json!({"code": "validation_required", "message": "Cannot be blank."}),
        );
    } else if id.chars().count() > MAX_CLIENT_ID_LENGTH {
        data.insert(
            "clientId".into(),
            length_error(
                "validation_length_out_of_range",
                "The length must be between 1 and 255.",
                1,
                MAX_CLIENT_ID_LENGTH,
            ),
        );
    }
    let subs = form.subscriptions.as_deref().unwrap_or(&[]);
    if subs.len() > MAX_SUBSCRIPTIONS {
        data.insert(
            "subscriptions".into(),
            length_error(
                "validation_length_too_long",
                "The length must be no more than 1000.",
                0,
                MAX_SUBSCRIPTIONS,
            ),
        );
    } else {
        let mut each = Map::new();
        for (i, s) in subs.iter().enumerate() {
            if s.chars().count() > MAX_SUBSCRIPTION_LENGTH {
                each.insert(
                    i.to_string(),
                    length_error(
                        "validation_length_too_long",
                        "The length must be no more than 2500.",
                        0,
                        MAX_SUBSCRIPTION_LENGTH,
                    ),
                );
            }
        }
        if !each.is_empty() {
            data.insert("subscriptions".into(), Json::Object(each));
        }
    }
    if data.is_empty() {
        return Ok(());
    }
    let mut err = bad_request();
    err.data = data;
    Err(err)
}

async fn set_subscriptions(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let form = bind(&req)?;
    validate(&form)?;
    let client_id = form.client_id.unwrap_or_default();
    // a client of another node of the cluster (`--nats`): the request goes there
    let link = ctx.shared.cluster.as_deref();
    if let Some(node) = crate::cluster::elsewhere(link, &ctx.shared.realtime, &client_id) {
        let authorization = req.header("authorization").map(str::to_string);
        let subs = form.subscriptions.unwrap_or_default();
        let ip = client_ip(&ctx, &req);
        crate::cluster::subscribe_there(link, node, client_id, ip, authorization, subs).await?;
        return Ok(Response::new(204));
    }
    let auth = match ctx.auth(&req) {
        Some(record) => {
            let schema = ctx.shared.schema.get();
            let info = load_auth_info(&ctx, &schema, &record)?;
            Some(ClientAuth { record, info })
        }
        None => None,
    };
    let ip = client_ip(&ctx, &req);
    ctx.realtime
        .subscribe(
            &ctx.shared.realtime,
            client_id,
            ip,
            auth,
            form.subscriptions.unwrap_or_default(),
        )
        .await?;
    Ok(Response::new(204))
}

/// PocketBase's `RealIP` (the shared resolver, `crate::client_ip`).
fn client_ip(ctx: &AppCtx, req: &Request) -> String {
    crate::apis::extract::client_ip(&ctx.shared.settings.get().trusted_proxy, req)
}

//! `POST /api/collections/{collection}/auth-with-oauth2`: the code exchange with the
//! collection's provider, then sign-in of the linked record (`_externalAuths`), of the
//! logged-in record, of the record with the provider's verified email, or sign-up with
//! `createData`; PocketBase's auth response with the OAuth2 user as `meta` (MFA included).
//! Sign-up is a record create request (rules, validators, files, realtime) as in PocketBase.
//!
//! `GET|POST /api/oauth2-redirect`: the provider's redirect, handed to the waiting realtime
//! client (`@oauth2`).

use crate::apis::auth_flow::{
    self as flow, auth_collection, caller, find_by_email, find_by_id, Body, Loaded, LOAD_FAILED,
    METHOD_OAUTH2,
};
use crate::auth::oauth2::Provider;
use crate::auth::oauth2_exchange::{exchange, AuthUser, ExchangeError};
use crate::auth::{password, token};
use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult, FieldError, FieldErrors};
use crate::records::SqlVal;
use crate::recstore::authrows;
use pocketbun_http::{Method, Request};
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::{random, time};
use serde_json::Value;
use std::rc::Rc;
use std::sync::Arc;

pub fn register(routes: &mut Routes) {
    routes
        .add(
            Method::Post,
            "/api/collections/{collection}/auth-with-oauth2",
            |ctx, req| Box::pin(auth_with_oauth2(ctx, req)),
        )
        .collection_limit(&["authWithOAuth2", "auth"]);
    routes.add(Method::Get, "/api/oauth2-redirect", |ctx, req| {
        Box::pin(oauth2_redirect(ctx, req))
    });
    routes.add(Method::Post, "/api/oauth2-redirect", |ctx, req| {
        Box::pin(oauth2_redirect(ctx, req))
    });
}

/// The realtime subscription an SDK opens to wait for the provider's redirect.
const OAUTH2_TOPIC: &str = "@oauth2";
const REDIRECT_FAILURE: &str = "../_/#/auth/oauth2-redirect-failure";
const REDIRECT_SUCCESS: &str = "../_/#/auth/oauth2-redirect-success";

/// `GET|POST /api/oauth2-redirect`: the provider's redirect (query, or a `form_post` body)
/// is handed to the realtime client whose id is the `state`, as an `@oauth2` message; the
/// browser window is sent to the dashboard's success or failure page.
async fn oauth2_redirect(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let post = *req.method() != Method::Get;
    let to = |target: &'static str| {
        // a form_post must become a GET of the dashboard page
        let mut resp = pocketbun_http::Response::new(if post { 303 } else { 307 });
        resp.headers.push(("Location".into(), target.into()));
        Ok(resp)
    };
    let (state, code, error, apple_user) = if post {
        let Ok(body) = Body::parse(&ctx, &req).await else {
            return to(REDIRECT_FAILURE);
        };
        let field = |k: &str| body.string(k);
        match (field("state"), field("code"), field("error"), field("user")) {
            (Ok(s), Ok(c), Ok(e), Ok(u)) => (s, c, e, u),
            _ => return to(REDIRECT_FAILURE),
        }
    } else {
        let mut q = (String::new(), String::new(), String::new());
        let mut seen = [false; 3];
        for (k, v) in crate::go::query_pairs(req.query()) {
            let i = match k.as_str() {
                "state" => 0,
                "code" => 1,
                "error" => 2,
                _ => continue,
            };
            // the first value of a repeated key counts
            if !std::mem::replace(&mut seen[i], true) {
                *[&mut q.0, &mut q.1, &mut q.2][i] = v;
            }
        }
        (q.0, q.1, q.2, String::new())
    };
    if state.is_empty() {
        return to(REDIRECT_FAILURE);
    }
    if !apple_user.is_empty() && error.is_empty() && !code.is_empty() {
        crate::auth::oauth2::apple_names::store(&ctx.shared.app_store, &code, &apple_user);
    }
    let mut data = String::with_capacity(state.len() + code.len() + error.len() + 40);
    data.push_str("{\"state\":");
    pocketbun_storage::collections::gojson::write_str(&mut data, &state);
    data.push_str(",\"code\":");
    pocketbun_storage::collections::gojson::write_str(&mut data, &code);
    if !error.is_empty() {
        data.push_str(",\"error\":");
        pocketbun_storage::collections::gojson::write_str(&mut data, &error);
    }
    data.push('}');
    let ip = crate::apis::extract::client_ip(&ctx.shared.settings.get().trusted_proxy, &req);
    let link = ctx.shared.cluster.as_deref();
    let sent = match crate::cluster::elsewhere(link, &ctx.shared.realtime, &state) {
        // the SSE client is on another node of the cluster (`--nats`)
        Some(node) => {
            crate::cluster::direct_there(link, node, state, ip, OAUTH2_TOPIC.into(), data).await
        }
        None => {
            ctx.realtime
                .send_to_client(&ctx, state, ip, OAUTH2_TOPIC.into(), data)
                .await
        }
    };
    if !sent || !error.is_empty() || code.is_empty() {
        return to(REDIRECT_FAILURE);
    }
    to(REDIRECT_SUCCESS)
}

async fn auth_with_oauth2(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = auth_collection(&ctx, &req)?;
    if !coll.auth.oauth2.enabled {
        return Err(ApiError::forbidden(Some(
            "The collection is not configured to allow OAuth2 authentication.",
        )));
    }
    let logged = ctx.auth(&req).filter(|a| a.collection_id == coll.id);
    let caller = caller(&ctx, &req, METHOD_OAUTH2)?;
    let body = Body::parse(&ctx, &req).await?;
    let provider_name = body.string("provider")?;
    let code = body.string("code")?;
    let verifier = body.string("codeVerifier")?;
    let mut redirect = body.string("redirectURL")?;
    if redirect.is_empty() {
        redirect = body.string("redirectUrl")?;
    }
    let create_data = match body.0.get("createData") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::bad_request(Some(LOAD_FAILED))),
    };
    let config = coll
        .auth
        .oauth2
        .providers
        .iter()
        .flatten()
        .find(|p| p.name == provider_name);
    let mut errs = FieldErrors::new();
    if provider_name.is_empty() {
        errs.add(
            "provider",
            FieldError::new("validation_required", "Cannot be blank."),
        );
    } else if provider_name.chars().count() > 100 {
        errs.add(
            "provider",
            FieldError::new(
                "validation_length_too_long",
                "The length must be no more than 100.",
            )
            .param("max", 100),
        );
    } else if config.is_none() {
        errs.add(
            "provider",
            FieldError::new(
                "validation_invalid_provider",
                format!("Provider with name {provider_name} is missing or is not enabled."),
            )
            .param("name", provider_name.clone()),
        );
    }
    if code.is_empty() {
        errs.add(
            "code",
            FieldError::new("validation_required", "Cannot be blank."),
        );
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(LOAD_FAILED, &errs));
    }
    let provider = config
        .and_then(Provider::init)
        .ok_or_else(|| ApiError::new(500, "Missing or invalid provider config."))?;

    // the provider's HTTP calls block: they run on the CPU pool
    let exchanged_code = code.clone();
    let mut user = ctx
        .shared
        .cpu
        .run(move || exchange(&provider, &code, &verifier, &redirect))
        .await?
        .map_err(|e| match e {
            ExchangeError::Token(_) => ApiError::bad_request(Some("Failed to fetch OAuth2 token.")),
            ExchangeError::User(_) => ApiError::bad_request(Some("Failed to fetch OAuth2 user.")),
        })?;

    if provider_name == "apple" && user.name.is_empty() {
        if let Some(name) =
            crate::auth::oauth2::apple_names::take(&ctx.shared.app_store, &exchanged_code)
        {
            user.name = name;
        }
    }

    // the record: linked, logged in, or with the same (verified) email
    let link = find_link(&ctx, &coll, &provider_name, &user.id)?;
    let mut record: Option<Loaded> = None;
    if let Some((_, record_id)) = &link {
        record = find_by_id(&ctx, &coll, record_id)?;
        if record.is_none() {
            return Err(ApiError::not_found(None));
        }
    } else if let Some(auth) = &logged {
        record = find_by_id(&ctx, &coll, &auth.id)?;
    } else if !user.email.is_empty() {
        record = find_by_email(&ctx, &coll, &user.email)?;
    }
    let is_new = record.is_none();
    let failed = || ApiError::bad_request(Some("Failed to authenticate."));

    let record_id = match record {
        None => sign_up(&ctx, &req, &coll, &user, create_data).await?,
        Some(loaded) => {
            let id = loaded.id();
            let is_logged = logged.as_ref().is_some_and(|a| a.id == id);
            let mut sets: Vec<(String, SqlVal)> = Vec::new();
            let verified = loaded.verified();
            let mut link_kept = link.is_some();
            if !verified {
                if !is_logged {
                    let plain = random::random_string(30);
                    let hash = ctx
                        .shared
                        .hash_password(plain, password::cost_of(&coll))
                        .await
                        .map_err(|e| failed().caused_by(e))?;
                    sets.push(("password".into(), hash.into()));
                    // a new password invalidates the tokens issued so far
                    sets.push((
                        "tokenKey".into(),
                        crate::auth::cleanup::new_token_key(&coll).into(),
                    ));
                }
                link_kept = false;
            }
            let mut email = loaded.text("email");
            if email.is_empty() && !user.email.is_empty() {
                email = user.email.clone();
                sets.push(("email".into(), email.clone().into()));
            }
            if !verified && (email.is_empty() || email == user.email) {
                sets.push(("verified".into(), SqlVal::from(true)));
            }
            let (cid, rid) = (coll.id.clone(), id.clone());
            if !verified {
                ctx.shared
                    .store
                    .writer()
                    .submit(move |conn| {
                        authrows::delete_external_auths(conn, &cid, &rid)?;
                        Ok(())
                    })
                    .await
                    .map_err(|e| failed().caused_by(e))?;
            }
            if !sets.is_empty() {
                flow::update_record(&ctx, &coll, &id, sets)
                    .await
                    .map_err(|e| failed().caused_by(e))?;
            }
            if link_kept {
                // the link exists: nothing to add
                return finish(&ctx, &req, &caller, &body, &coll, &id, &user, is_new, true).await;
            }
            id
        }
    };
    finish(
        &ctx, &req, &caller, &body, &coll, &record_id, &user, is_new, false,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    ctx: &Rc<AppCtx>,
    req: &Request,
    caller: &crate::records::access::Caller,
    body: &Body,
    coll: &Arc<Collection>,
    record_id: &str,
    user: &AuthUser,
    is_new: bool,
    linked: bool,
) -> ApiResult {
    if !linked {
        let (id, cid, rid, provider, pid) = (
            random::new_record_id(),
            coll.id.clone(),
            record_id.to_string(),
            body.string("provider")?,
            user.id.clone(),
        );
        ctx.shared
            .store
            .writer()
            .submit(move |conn| {
                let now = time::now_datetime();
                authrows::insert_external_auth(conn, &id, &cid, &rid, &provider, &pid, &now)?;
                Ok(())
            })
            .await
            .map_err(|e| ApiError::bad_request(Some("Failed to authenticate.")).caused_by(e))?;
    }
    let loaded = find_by_id(ctx, coll, record_id)?.ok_or_else(ApiError::internal)?;
    let token = flow::auth_token(&loaded)?;
    let mut meta = user.meta();
    meta.insert("isNew".into(), Value::Bool(is_new));
    flow::respond(
        ctx,
        req,
        caller,
        body,
        loaded,
        token,
        METHOD_OAUTH2,
        Some(Value::Object(meta)),
    )
    .await
}

/// The `_externalAuths` row linking the provider's user to a record of `coll`:
/// `(link id, record id)`.
fn find_link(
    ctx: &AppCtx,
    coll: &Collection,
    provider: &str,
    provider_id: &str,
) -> Result<Option<(String, String)>, ApiError> {
    ctx.reader
        .read(|conn| {
            Ok(authrows::find_external_auth(
                conn,
                &coll.id,
                provider,
                provider_id,
            )?)
        })
        .map_err(ApiError::from)
}

/// Creates the record of a first OAuth2 login as PocketBase does: a record create request
/// (same auth, headers and create rule, request context `oauth2`) with `createData`, the
/// provider's email unless one was submitted, and the mapped fields; so `createData` is
/// validated like any create, files are stored and realtime hears of it. Verified when its
/// email is the provider's.
async fn sign_up(
    ctx: &Rc<AppCtx>,
    req: &Request,
    coll: &Arc<Collection>,
    user: &AuthUser,
    mut data: serde_json::Map<String, Value>,
) -> Result<String, ApiError> {
    let failed = || ApiError::bad_request(Some("Failed to authenticate."));
    if coll.name == token::SUPERUSERS {
        // never a superuser through OAuth2
        return Err(failed());
    }
    if data
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        data.insert("email".into(), user.email.clone().into());
    }
    let mapped = &coll.auth.oauth2.mapped_fields;
    if !mapped.id.is_empty() && !data.contains_key(mapped.id.as_str()) {
        data.insert(mapped.id.clone(), user.id.clone().into());
    }
    if !mapped.name.is_empty() && !data.contains_key(mapped.name.as_str()) {
        data.insert(mapped.name.clone(), user.name.clone().into());
    }
    if !mapped.username.is_empty()
        && !data.contains_key(mapped.username.as_str())
        && can_assign_username(ctx, coll, &mapped.username, &user.username)
    {
        data.insert(mapped.username.clone(), user.username.clone().into());
    }
    let mut uploads = Vec::new();
    if !mapped.avatar_url.is_empty()
        && !data.contains_key(mapped.avatar_url.as_str())
        && !user.avatar_url.is_empty()
    {
        let is_file = coll
            .field(&mapped.avatar_url)
            .is_some_and(|f| matches!(f.kind, FieldKind::File { .. }));
        if is_file {
            // a failed download only leaves the avatar out, as in PocketBase
            let url = user.avatar_url.clone();
            if let Ok(Ok((name, bytes))) = ctx.shared.cpu.run(move || download_avatar(&url)).await {
                uploads.push(crate::records::input::Upload {
                    key: mapped.avatar_url.clone(),
                    original_name: name,
                    data: bytes,
                    sniffed: None,
                });
            }
        } else {
            data.insert(mapped.avatar_url.clone(), user.avatar_url.clone().into());
        }
    }

    // a random password unless one was submitted (30 characters: within the default limits
    // of the password field, whose plain-value validators PocketBase skips here)
    if !data.contains_key("password") {
        let plain = random::random_string(30);
        data.insert("passwordConfirm".into(), plain.clone().into());
        data.insert("password".into(), plain.into());
    }

    // the create PocketBase runs internally: the caller's token and headers, no query, in
    // the `oauth2` request context
    let schema = ctx.shared.schema.get();
    let mut caller = crate::records::access::Caller::new(
        ctx,
        &schema,
        ctx.auth(req),
        "POST",
        req.head.headers.iter(),
        &[],
    )?;
    caller.info.context = flow::CONTEXT_OAUTH2.into();
    let input = crate::records::input::WriteInput {
        caller,
        query: Vec::new(),
        id: String::new(),
        body_len: 0,
    };
    let body = crate::records::input::BodyInput::Parsed(crate::records::input::RecordBody {
        data,
        uploads,
    });
    let prepared =
        crate::records::save::prepare_upsert(ctx, input, body, schema, coll.clone(), None, None)
            .await?;
    let crate::records::save::Prepared { write, after } = prepared;
    let done = match crate::records::save::write_job(ctx, write).await {
        Ok(done) => done,
        Err(e) => return Err(after.failed(ctx, e).await),
    };
    let id_index = coll.fields.iter().position(|f| f.name == "id");
    let id = match (id_index, &done.values) {
        (Some(i), Some(values)) => match values.get(i) {
            Some(crate::records::SqlVal::Text(s)) => s.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    // files replaced (none on a create) and the realtime create event; the rendered record
    // is not needed
    let _ = after.finish(ctx, done).await;
    if id.is_empty() {
        return Err(failed());
    }
    let created = find_by_id(ctx, coll, &id)?.ok_or_else(failed)?;
    if created.text("email") == user.email && !created.verified() {
        flow::update_record(
            ctx,
            coll,
            &id,
            vec![("verified".into(), SqlVal::from(true))],
        )
        .await
        .map_err(|e| failed().caused_by(e))?;
    }
    Ok(id)
}

/// Whether the provider's username may fill the mapped username field (PocketBase's check,
/// kept for records made by its older versions): it must pass the text field's limits and
/// pattern, and be free where the field has a unique index.
fn can_assign_username(ctx: &AppCtx, coll: &Arc<Collection>, field: &str, username: &str) -> bool {
    let Some(f) = coll.field(field) else {
        return false;
    };
    if let FieldKind::Text {
        min, max, pattern, ..
    } = &f.kind
    {
        let len = username.chars().count() as i64;
        let max = if *max > 0 { *max } else { 5000 };
        if (*min > 0 && len < *min) || len > max {
            return false;
        }
        if !pattern.is_empty() && !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(username))
        {
            return false;
        }
    }
    match flow::unique_index_nocase(coll, field) {
        None => true,
        Some(nocase) => matches!(
            flow::find_record(ctx, coll, field, username, nocase),
            Ok(None)
        ),
    }
}

/// Downloads the provider's avatar, refusing loopback, private, link-local, multicast and
/// unspecified addresses (the URL comes from the provider: it must not reach the internal
/// network). Returns the file name (the URL's last path segment) and the bytes.
fn download_avatar(url: &str) -> Result<(String, Vec<u8>), String> {
    use std::net::{IpAddr, ToSocketAddrs};
    let parsed: ureq::http::Uri = url
        .parse()
        .map_err(|e: ureq::http::uri::InvalidUri| e.to_string())?;
    let host = parsed.host().ok_or("no host")?.to_string();
    let port = match (parsed.port_u16(), parsed.scheme_str()) {
        (Some(p), _) => p,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        _ => return Err("unsupported scheme".into()),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    let allowed = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|m| m.is_loopback() || m.is_private()))
        }
    };
    if addrs.is_empty() || addrs.iter().any(|a| !allowed(a.ip())) {
        return Err(format!("address of {url} is disallowed"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let bytes = resp
        .body_mut()
        .with_config()
        // PocketBase's default body limit
        .limit(32 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    let name = parsed
        .path()
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("avatar")
        .to_string();
    Ok((name, bytes))
}

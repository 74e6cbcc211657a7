//! Auth record endpoints: `auth-methods`, `auth-with-password`, `auth-refresh`,
//! `impersonate` (the email flows live in `record_auth_email`, OAuth2 in
//! `record_auth_oauth2`).

use crate::apis::auth_flow::{
    self as flow, auth_collection, caller, find_record, unique_index_nocase, Body, Loaded,
    METHOD_PASSWORD, VALIDATE_FAILED,
};
use crate::auth::{password, token, AuthRecord};
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult, FieldErrors};
use crate::settings::rules;
use pocketbun_http::{Method, Request};
use serde::Serialize;
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes
        .add(
            Method::Get,
            "/api/collections/{collection}/auth-methods",
            |ctx, req| Box::pin(auth_methods(ctx, req)),
        )
        .collection_limit(&["listAuthMethods"]);
    routes
        .add(
            Method::Post,
            "/api/collections/{collection}/auth-with-password",
            |ctx, req| Box::pin(auth_with_password(ctx, req)),
        )
        .collection_limit(&["authWithPassword", "auth"]);
    routes
        .add(
            Method::Post,
            "/api/collections/{collection}/auth-refresh",
            |ctx, req| Box::pin(auth_refresh(ctx, req)),
        )
        .collection_limit(&["authRefresh"]);
    routes.add(
        Method::Post,
        "/api/collections/{collection}/impersonate/{id}",
        |ctx, req| Box::pin(impersonate(ctx, req)),
    );
}

// ---------------------------------------------------------------------------------------------
// auth-methods

#[derive(Serialize)]
struct PasswordMethod<'a> {
    #[serde(rename = "identityFields")]
    identity_fields: &'a [String],
    enabled: bool,
}

#[derive(Serialize)]
struct OAuth2Method {
    providers: Vec<crate::auth::oauth2::ProviderInfo>,
    enabled: bool,
}

#[derive(Serialize)]
struct Toggle {
    enabled: bool,
    duration: i64,
}

#[derive(Serialize)]
struct AuthMethods<'a> {
    password: PasswordMethod<'a>,
    oauth2: OAuth2Method,
    mfa: Toggle,
    otp: Toggle,
    #[serde(rename = "authProviders")]
    auth_providers: Vec<crate::auth::oauth2::ProviderInfo>,
    #[serde(rename = "usernamePassword")]
    username_password: bool,
    #[serde(rename = "emailPassword")]
    email_password: bool,
}

async fn auth_methods(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = auth_collection(&ctx, &req)?;
    let a = &coll.auth;
    let fields: &[String] = if a.password_auth.enabled {
        a.password_auth.identity_fields.as_deref().unwrap_or(&[])
    } else {
        &[]
    };
    let providers = if a.oauth2.enabled {
        crate::auth::oauth2::providers_info(&coll)
    } else {
        Vec::new()
    };
    let legacy = if a.oauth2.enabled {
        providers
            .iter()
            .cloned()
            .map(|mut p| {
                p.logo.clear();
                p
            })
            .collect()
    } else {
        Vec::new()
    };
    let has = |f: &str| a.password_auth.enabled && fields.iter().any(|x| x == f);
    let out = AuthMethods {
        password: PasswordMethod {
            identity_fields: fields,
            enabled: a.password_auth.enabled,
        },
        oauth2: OAuth2Method {
            providers,
            enabled: a.oauth2.enabled,
        },
        mfa: Toggle {
            enabled: a.mfa.enabled,
            duration: if a.mfa.enabled { a.mfa.duration } else { 0 },
        },
        otp: Toggle {
            enabled: a.otp.enabled,
            duration: if a.otp.enabled { a.otp.duration } else { 0 },
        },
        auth_providers: legacy,
        username_password: has("username"),
        email_password: has("email"),
    };
    Ok(json_response(200, &out))
}

// ---------------------------------------------------------------------------------------------
// auth-with-password

async fn auth_with_password(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = auth_collection(&ctx, &req)?;
    if !coll.auth.password_auth.enabled {
        return Err(ApiError::forbidden(Some(
            "The collection is not configured to allow password authentication.",
        )));
    }
    let body = Body::parse(&ctx, &req).await?;
    let identity = body.string("identity")?;
    let plain = body.string("password")?;
    let identity_field = body.string("identityField")?;
    let fields: Vec<String> = coll
        .auth
        .password_auth
        .identity_fields
        .clone()
        .unwrap_or_default();

    let mut errs = FieldErrors::new();
    if let Err(e) = rules::required_str(&identity).and_then(|()| rules::length(&identity, 1, 255)) {
        errs.add("identity", e);
    }
    if let Err(e) = rules::required_str(&plain).and_then(|()| rules::length(&plain, 1, 255)) {
        errs.add("password", e);
    }
    let options: Vec<&str> = fields.iter().map(String::as_str).collect();
    if let Err(e) = rules::length(&identity_field, 1, 255)
        .and_then(|()| rules::one_of(&identity_field, &options))
    {
        errs.add("identityField", e);
    }
    errs.checked()?;

    let caller = caller(&ctx, &req, METHOD_PASSWORD)?;
    let mut found: Option<Loaded> = None;
    if !identity_field.is_empty() {
        found = find_by_identity(&ctx, &coll, &fields, &identity_field, &identity)?;
    } else {
        // email first, as PocketBase looks it up
        let mut order: Vec<&String> = fields.iter().collect();
        order.sort_by_key(|f| *f != "email");
        for name in order {
            if name == "email" && !crate::superuser::is_email(&identity) {
                continue;
            }
            found = find_by_identity(&ctx, &coll, &fields, name, &identity)?;
            if found.is_some() {
                break;
            }
        }
    }

    let fail = || ApiError::bad_request(Some("Failed to authenticate."));
    let Some(loaded) = found else {
        // a dummy check against some stored hash keeps the timing of unknown identities
        // close to that of a wrong password
        let dummy = any_password_hash(&ctx, &coll);
        if let Some(hash) = dummy {
            password::check(&ctx.shared.cpu, String::new(), hash).await;
        }
        return Err(fail());
    };
    let hash = loaded.text("password");
    if !password::check(&ctx.shared.cpu, plain.clone(), hash.clone()).await {
        return Err(fail());
    }
    let cost = password::cost_of(&coll);
    if password::needs_rehash(ctx.shared.password_scheme, &hash, cost) {
        rehash(&ctx, &coll, loaded.id(), plain, hash, cost).await;
    }
    let token = flow::auth_token(&loaded)?;
    flow::respond(
        &ctx,
        &req,
        &caller,
        &body,
        loaded,
        token,
        METHOD_PASSWORD,
        None,
    )
    .await
}

/// Replaces a stored hash that is not what `--password-hash` asks for (or a cheaper bcrypt)
/// with a fresh one of the same password. Same password, so the token key stays and issued
/// tokens live on; the update only lands if nobody changed the password meanwhile. A failure
/// costs nothing but the upgrade: the login itself already succeeded.
async fn rehash(
    ctx: &AppCtx,
    coll: &pocketbun_storage::collections::Collection,
    id: String,
    plain: String,
    old: String,
    cost: u32,
) {
    let Ok(new) = ctx.shared.hash_password(plain, cost).await else {
        return;
    };
    let sql = crate::recstore::auth::rehash_password_sql(&coll.name);
    let _ = ctx
        .shared
        .store
        .writer()
        .submit(move |conn| {
            crate::recstore::auth::rehash_password(conn, &sql, new, id, old)?;
            Ok(())
        })
        .await;
}

/// The record whose identity `field` (one of the collection's identity fields with a unique
/// index of its own) holds `value`.
fn find_by_identity(
    ctx: &AppCtx,
    coll: &std::sync::Arc<pocketbun_storage::collections::Collection>,
    fields: &[String],
    field: &str,
    value: &str,
) -> Result<Option<Loaded>, ApiError> {
    if !fields.iter().any(|f| f == field) {
        return Ok(None);
    }
    let Some(nocase) = unique_index_nocase(coll, field) else {
        return Ok(None);
    };
    find_record(ctx, coll, field, value, nocase)
}

fn any_password_hash(
    ctx: &AppCtx,
    coll: &pocketbun_storage::collections::Collection,
) -> Option<String> {
    ctx.reader
        .read(|conn| Ok(crate::recstore::auth::any_password_hash(conn, &coll.name)?))
        .ok()
        .flatten()
}

// ---------------------------------------------------------------------------------------------
// auth-refresh

/// PocketBase's `RequireSameCollectionContextAuth`: the caller's record must belong to the
/// collection of the path.
pub fn require_same_collection_auth(ctx: &AppCtx, req: &Request) -> Result<AuthRecord, ApiError> {
    let Some(auth) = ctx.auth(req) else {
        return Err(ApiError::unauthorized(Some(
            "The request requires valid record authorization token.",
        )));
    };
    let schema = ctx.shared.schema.get();
    let same = schema
        .collections
        .get(req.param("collection").unwrap_or(""))
        .is_some_and(|c| c.id == auth.collection_id);
    if !same {
        return Err(ApiError::forbidden(Some(&format!(
            "The request requires auth record from {} collection.",
            auth.collection_name
        ))));
    }
    Ok(auth)
}

async fn auth_refresh(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let auth = require_same_collection_auth(&ctx, &req)?;
    let coll = auth_collection(&ctx, &req)?;
    let loaded = flow::find_by_id(&ctx, &coll, &auth.id)?
        .ok_or_else(|| ApiError::not_found(Some("Missing auth record context.")))?;
    let current = token::header_token(req.header("authorization")).to_string();
    let refreshable = token::unverified_payload(&current)
        .and_then(|c| c.get("refreshable").cloned())
        .is_some_and(|v| match v {
            serde_json::Value::Bool(b) => b,
            serde_json::Value::String(s) => {
                matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")
            }
            serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            _ => false,
        });
    let token = if refreshable {
        flow::auth_token(&loaded)
            .map_err(|e| ApiError::new(500, "Failed to refresh auth token.").caused_by(e))?
    } else {
        current
    };
    let caller = caller(&ctx, &req, "")?;
    flow::respond(
        &ctx,
        &req,
        &caller,
        &Body::default(),
        loaded,
        token,
        "",
        None,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// impersonate

async fn impersonate(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let coll = auth_collection(&ctx, &req)?;
    let loaded = flow::find_by_id(&ctx, &coll, req.param("id").unwrap_or(""))?
        .ok_or_else(|| ApiError::not_found(None))?;
    let body = Body::parse(&ctx, &req).await?;
    let duration = body.int("duration")?;
    let mut errs = FieldErrors::new();
    if duration < 0 {
        errs.add(
            "duration",
            crate::error::FieldError::new(
                "validation_min_greater_equal_than_required",
                "must be no less than 0",
            )
            .param("threshold", 0),
        );
        return Err(ApiError::validation(VALIDATE_FAILED, &errs));
    }
    let token = flow::record_token(
        &loaded,
        token::TYPE_AUTH,
        &[("refreshable", false.into())],
        duration,
    )
    .map_err(|e| ApiError::new(500, "Failed to generate static auth token").caused_by(e))?;
    let caller = caller(&ctx, &req, "")?;
    flow::respond(&ctx, &req, &caller, &body, loaded, token, "", None).await
}

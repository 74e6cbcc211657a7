//! `POST /api/collections/{collection}/auth-with-oauth2`: the code exchange with the
//! collection's provider, then sign-in of the linked record (`_externalAuths`), of the
//! logged-in record, of the record with the provider's verified email, or sign-up with
//! `createData`; PocketBase's auth response with the OAuth2 user as `meta` (MFA included).
//!
//! Sign-up writes the new record with a narrow insert (system fields, mapped fields and the
//! plain `createData` values of text, email, url, bool and number fields); the collection's
//! create rule and field validators are not run on it yet.

use crate::app::{AppCtx, Routes};
use crate::auth::flow::{
    self, auth_collection, caller, find_by_email, find_by_id, Body, Loaded, LOAD_FAILED,
    METHOD_OAUTH2,
};
use crate::auth::oauth2::Provider;
use crate::auth::oauth2_exchange::{exchange, AuthUser, ExchangeError};
use crate::auth::{password, token};
use crate::error::{ApiError, ApiResult, FieldError, FieldErrors};
use pocketbun_http::{Method, Request};
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::rusqlite::types::Value as SqlValue;
use pocketbun_storage::rusqlite::{params, OptionalExtension};
use pocketbun_storage::{random, time};
use serde_json::Value;
use std::rc::Rc;
use std::sync::Arc;

pub fn register(routes: &mut Routes) {
    routes.add(
        Method::Post,
        "/api/collections/{collection}/auth-with-oauth2",
        |ctx, req| Box::pin(auth_with_oauth2(ctx, req)),
    );
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
    let body = Body::parse(&req)?;
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
    let user = ctx
        .shared
        .cpu
        .run(move || exchange(&provider, &code, &verifier, &redirect))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| match e {
            ExchangeError::Token(_) => ApiError::bad_request(Some("Failed to fetch OAuth2 token.")),
            ExchangeError::User(_) => ApiError::bad_request(Some("Failed to fetch OAuth2 user.")),
        })?;

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
        None => sign_up(&ctx, &coll, &user, create_data)
            .await
            .map_err(|_| failed())?,
        Some(loaded) => {
            let id = loaded.id();
            let is_logged = logged.as_ref().is_some_and(|a| a.id == id);
            let mut sets: Vec<(String, SqlValue)> = Vec::new();
            let verified = loaded.verified();
            let mut link_kept = link.is_some();
            if !verified {
                if !is_logged {
                    let plain = random::random_string(30);
                    let hash = password::hash(&ctx.shared.cpu, plain, password::cost_of(&coll))
                        .await
                        .map_err(|_| failed())?;
                    sets.push(("password".into(), hash.into()));
                }
                link_kept = false;
            }
            let mut email = loaded.text("email");
            if email.is_empty() && !user.email.is_empty() {
                email = user.email.clone();
                sets.push(("email".into(), email.clone().into()));
            }
            if !verified && (email.is_empty() || email == user.email) {
                sets.push(("verified".into(), SqlValue::Integer(1)));
            }
            let (cid, rid) = (coll.id.clone(), id.clone());
            if !verified {
                ctx.shared
                    .store
                    .writer()
                    .submit(move |conn| {
                        conn.execute(
                            "DELETE FROM `_externalAuths` WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
                            params![cid, rid],
                        )?;
                        Ok(())
                    })
                    .await
                    .map_err(|_| failed())?;
            }
            if !sets.is_empty() {
                flow::update_record(&ctx, &coll, &id, sets)
                    .await
                    .map_err(|_| failed())?;
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
                conn.execute(
                    "INSERT INTO `_externalAuths` (`id`, `collectionRef`, `recordRef`, `provider`, \
                     `providerId`, `created`, `updated`) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![id, cid, rid, provider, pid, now],
                )?;
                Ok(())
            })
            .await
            .map_err(|_| ApiError::bad_request(Some("Failed to authenticate.")))?;
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
            Ok(conn
                .prepare_cached(
                    "SELECT `id`, `recordRef` FROM `_externalAuths` WHERE `collectionRef` = ?1 \
                     AND `provider` = ?2 AND `providerId` = ?3 LIMIT 1",
                )?
                .query_row(params![coll.id, provider, provider_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?)
        })
        .map_err(|_| ApiError::internal())
}

/// Creates the record of a first OAuth2 login: `createData`, the provider's email unless one
/// was submitted, the mapped fields, a random password; verified when its email is the
/// provider's.
async fn sign_up(
    ctx: &AppCtx,
    coll: &Arc<Collection>,
    user: &AuthUser,
    mut data: serde_json::Map<String, Value>,
) -> Result<String, String> {
    if coll.name == token::SUPERUSERS {
        return Err("superusers are not allowed to sign-up with OAuth2".into());
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
    for (field, value) in [
        (&mapped.id, &user.id),
        (&mapped.name, &user.name),
        (&mapped.username, &user.username),
        (&mapped.avatar_url, &user.avatar_url),
    ] {
        if !field.is_empty() && !data.contains_key(field.as_str()) && !value.is_empty() {
            data.insert(field.clone(), value.clone().into());
        }
    }
    let email = data
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let plain = random::random_string(30);
    let hash = password::hash(&ctx.shared.cpu, plain, password::cost_of(coll)).await?;
    let id = random::new_record_id();
    let now = time::now_datetime();
    let mut cols: Vec<(String, SqlValue)> = vec![
        ("id".into(), id.clone().into()),
        ("password".into(), hash.into()),
        ("tokenKey".into(), flow::new_token_key(coll).into()),
        ("email".into(), email.clone().into()),
        (
            "emailVisibility".into(),
            SqlValue::Integer(crate::records::write::cast_bool(
                data.get("emailVisibility").unwrap_or(&Value::Null),
            ) as i64),
        ),
        (
            "verified".into(),
            SqlValue::Integer((email == user.email) as i64),
        ),
    ];
    for f in &coll.fields {
        if cols.iter().any(|(n, _)| *n == f.name) {
            continue;
        }
        let value = match (&f.kind, data.get(&f.name)) {
            (FieldKind::Autodate { .. }, _) => Some(now.clone().into()),
            (_, None | Some(Value::Null)) => None,
            (FieldKind::Bool, Some(v)) => {
                Some(SqlValue::Integer(v.as_bool().unwrap_or(false) as i64))
            }
            (FieldKind::Number { .. }, Some(v)) => v.as_f64().map(SqlValue::Real),
            (FieldKind::Text { .. } | FieldKind::Email { .. } | FieldKind::Url { .. }, Some(v)) => {
                Some(crate::records::write::cast_string(v).into())
            }
            _ => None,
        };
        if let Some(v) = value {
            cols.push((f.name.clone(), v));
        }
    }
    let names = cols
        .iter()
        .map(|(n, _)| crate::records::quote(n))
        .collect::<Vec<_>>()
        .join(", ");
    let marks = (1..=cols.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {} ({names}) VALUES ({marks})",
        crate::records::quote(&coll.name)
    );
    let values: Vec<SqlValue> = cols.into_iter().map(|(_, v)| v).collect();
    ctx.shared
        .store
        .writer()
        .submit(move |conn| {
            conn.execute(&sql, pocketbun_storage::rusqlite::params_from_iter(values))?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(id)
}

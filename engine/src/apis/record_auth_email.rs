//! The auth flows that go through the user's mailbox: one-time passwords
//! (`request-otp`/`auth-with-otp`), `request-verification`/`confirm-verification`,
//! `request-password-reset`/`confirm-password-reset` and
//! `request-email-change`/`confirm-email-change`.
//!
//! Like PocketBase, the `request-*` endpoints do not tell whether an email belongs to a
//! record: unknown emails get the same 204 (or a made-up `otpId`).

use crate::apis::auth_flow::{
    self as flow, auth_collection, caller, compose, find_by_email, record_of_token, send_detached,
    Body, Loaded, TokenProblem, METHOD_OTP, VALIDATE_FAILED,
};
use crate::apis::record_auth::require_same_collection_auth;
use crate::auth::{password, token};
use crate::ctx::{AppCtx, Routes};
use crate::error::{ApiError, ApiResult, FieldError, FieldErrors};
use crate::records::SqlVal;
use crate::recstore::authrows;
use crate::settings::mail::Message;
use crate::settings::rules;
use pocketbun_http::{Method, Request, Response};
use pocketbun_storage::collections::{Collection, EmailTemplate, FieldKind};
use pocketbun_storage::{random, time};
use serde_json::{Map, Value};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub fn register(routes: &mut Routes) {
    macro_rules! post {
        ($path:literal, $handler:ident, $tags:expr) => {
            routes
                .add(
                    Method::Post,
                    concat!("/api/collections/{collection}/", $path),
                    |ctx, req| Box::pin($handler(ctx, req)),
                )
                .collection_limit($tags);
        };
    }
    post!("request-otp", request_otp, &["requestOTP"]);
    post!("auth-with-otp", auth_with_otp, &["authWithOTP", "auth"]);
    post!(
        "request-verification",
        request_verification,
        &["requestVerification"]
    );
    post!(
        "confirm-verification",
        confirm_verification,
        &["confirmVerification"]
    );
    post!(
        "request-password-reset",
        request_password_reset,
        &["requestPasswordReset"]
    );
    post!(
        "confirm-password-reset",
        confirm_password_reset,
        &["confirmPasswordReset"]
    );
    post!(
        "request-email-change",
        request_email_change,
        &["requestEmailChange"]
    );
    post!(
        "confirm-email-change",
        confirm_email_change,
        &["confirmEmailChange"]
    );
}

const RESEND_WAIT: Duration = Duration::from_secs(120);
const SUPERUSERS_VERIFIED: &str = "All superusers are verified by default.";
const SUPERUSERS_EMAIL: &str = "All superusers can change their emails directly.";

fn no_content() -> ApiResult {
    Ok(Response::new(204))
}

fn invalid(errs: &FieldErrors) -> ApiError {
    ApiError::validation(VALIDATE_FAILED, errs)
}

/// `email` is required, at most 255 characters and an email address.
fn check_email(errs: &mut FieldErrors, key: &str, email: &str) {
    if let Err(e) = rules::required_str(email)
        .and_then(|()| rules::length(email, 1, 255))
        .and_then(|()| rules::email(email))
    {
        errs.add(key, e);
    }
}

/// The auth collection of the route, refused with a 400 (`message`) when it is
/// `_superusers` (verification and email change are not theirs).
fn users_collection(
    ctx: &AppCtx,
    req: &Request,
    message: &'static str,
) -> Result<Arc<Collection>, ApiError> {
    let coll = auth_collection(ctx, req)?;
    if coll.name == token::SUPERUSERS {
        return Err(ApiError::bad_request(Some(message)));
    }
    Ok(coll)
}

/// The auth collection of the route, refused with a 403 when it does not allow OTPs.
fn otp_collection(ctx: &AppCtx, req: &Request) -> Result<Arc<Collection>, ApiError> {
    let coll = auth_collection(ctx, req)?;
    if !coll.auth.otp.enabled {
        return Err(ApiError::forbidden(Some(
            "The collection is not configured to allow OTP authentication.",
        )));
    }
    Ok(coll)
}

/// The `email` of a `request-*` body, checked by [`check_email`].
async fn requested_email(ctx: &AppCtx, req: &Request) -> Result<String, ApiError> {
    let body = Body::parse(ctx, req).await?;
    let email = body.string("email")?;
    let mut errs = FieldErrors::new();
    check_email(&mut errs, "email", &email);
    errs.checked()?;
    Ok(email)
}

/// A string claim of a token's payload, read without verifying it (empty: none).
fn unverified_claim(raw: &str, key: &str) -> String {
    token::raw_payload(raw)
        .and_then(|c| c.get(key).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// A new `tokenKey`, which ends every session of the record.
fn new_token_key(coll: &Collection) -> (String, SqlVal) {
    (
        "tokenKey".into(),
        crate::auth::cleanup::new_token_key(coll).into(),
    )
}

/// A random password and a new `tokenKey`: what PocketBase sets when a mailbox proves the
/// record while password auth (or MFA) is off, so nobody can sign in with an old password.
async fn random_password(
    ctx: &AppCtx,
    coll: &Collection,
) -> Result<[(String, SqlVal); 2], ApiError> {
    let hash = ctx
        .shared
        .hash_password(random::random_string(30), password::cost_of(coll))
        .await
        .map_err(|e| ApiError::internal().caused_by(e))?;
    Ok([("password".into(), hash.into()), new_token_key(coll)])
}

/// The mail that carries a new `kind` token of `loaded` (with `claims`) to `to`.
fn token_mail(
    ctx: &AppCtx,
    loaded: &Loaded,
    kind: &str,
    claims: &[(&str, Value)],
    template: &EmailTemplate,
    to: &str,
) -> Result<Message, ApiError> {
    let token = flow::record_token(loaded, kind, claims, 0)?;
    Ok(compose(
        ctx,
        loaded,
        template,
        to,
        vec![("{TOKEN}".into(), token)],
    ))
}

fn token_error(p: TokenProblem) -> FieldError {
    match p {
        TokenProblem::Invalid => {
            FieldError::new("validation_invalid_token", "Invalid or expired token.")
        }
        TokenProblem::CollectionMismatch => FieldError::new(
            "validation_token_collection_mismatch",
            "The provided token is for different auth collection.",
        ),
    }
}

/// The record of a token of `kind` that must belong to `coll`.
fn token_record(
    ctx: &AppCtx,
    coll: &Collection,
    raw: &str,
    kind: &str,
) -> Result<(Loaded, Map<String, Value>), TokenProblem> {
    let (loaded, claims) = record_of_token(ctx, raw, kind)?;
    if loaded.coll().id != coll.id {
        return Err(TokenProblem::CollectionMismatch);
    }
    Ok((loaded, claims))
}

// ---------------------------------------------------------------------------------------------
// OTP

async fn request_otp(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = otp_collection(&ctx, &req)?;
    let email = requested_email(&ctx, &req).await?;
    let otp_json = |id: &str| {
        let mut m = Map::new();
        m.insert("otpId".into(), id.into());
        Ok(crate::error::json_response(200, &m))
    };
    let Some(loaded) = find_by_email(&ctx, &coll, &email)? else {
        return otp_json(&random::new_record_id());
    };
    let record_id = loaded.id();

    // more than 9 live OTPs: the newest is handed out again instead of a new one
    let recent: Vec<(String, String)> = ctx
        .reader
        .read(|conn| Ok(authrows::otps_of(conn, &coll.id, &record_id)?))
        .map_err(|e| ApiError::new(500, "Failed to fetch previous record OTPs.").caused_by(e))?;
    let live = recent
        .iter()
        .filter(|(_, created)| !flow::expired(created, coll.auth.otp.duration))
        .count();
    if live > 9 {
        return otp_json(&recent[0].0);
    }

    let length = coll.auth.otp.length.clamp(1, 255) as usize;
    let code = random::random_string_with_alphabet(length, "1234567890");
    let otps_cost = otp_hash_cost(&ctx);
    let hash = ctx
        .shared
        .hash_password(code.clone(), otps_cost)
        .await
        .map_err(|e| ApiError::internal().caused_by(e))?;
    let otp_id = random::new_record_id();
    let (id, cid, rid) = (otp_id.clone(), coll.id.clone(), record_id.clone());
    ctx.shared
        .store
        .writer()
        .submit(move |conn| {
            let now = time::now_datetime();
            authrows::insert_otp(conn, &id, &cid, &rid, &hash, &now)?;
            Ok(())
        })
        .await?;

    let to = loaded.text("email");
    let msg = compose(
        &ctx,
        &loaded,
        &coll.auth.otp.email_template,
        &to,
        vec![("{OTP_ID}".into(), otp_id.clone()), ("{OTP}".into(), code)],
    );
    let store = ctx.shared.store.clone();
    let id = otp_id.clone();
    send_detached(&ctx, msg, move |sent| {
        let _ = store.writer().submit_blocking(move |conn| {
            match sent {
                // remember where the code went (auth-with-otp verifies that address)
                Ok(()) => authrows::set_otp_sent_to(conn, &id, &to)?,
                Err(_) => authrows::delete_otp(conn, &id)?,
            };
            Ok(())
        });
    });
    otp_json(&otp_id)
}

/// The bcrypt cost of the `_otps` password field.
fn otp_hash_cost(ctx: &AppCtx) -> u32 {
    let schema = ctx.shared.schema.get();
    schema
        .collections
        .get("_otps")
        .map(|c| password::cost_of(c))
        .unwrap_or(password::DEFAULT_COST)
}

async fn auth_with_otp(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = otp_collection(&ctx, &req)?;
    let body = Body::parse(&ctx, &req).await?;
    let otp_id = body.string("otpId")?;
    let code = body.string("password")?;
    let mut errs = FieldErrors::new();
    if let Err(e) = rules::required_str(&otp_id).and_then(|()| rules::length(&otp_id, 1, 255)) {
        errs.add("otpId", e);
    }
    if let Err(e) = rules::required_str(&code).and_then(|()| rules::length(&code, 1, 71)) {
        errs.add("password", e);
    }
    errs.checked()?;
    let caller = caller(&ctx, &req, METHOD_OTP)?;
    let bad = || ApiError::bad_request(Some("Invalid or expired OTP"));
    let otp = ctx.reader.read(|conn| Ok(authrows::otp(conn, &otp_id)?))?;
    let Some(authrows::Otp {
        collection_ref: coll_ref,
        record_ref,
        hash,
        sent_to,
        created,
    }) = otp
    else {
        return Err(bad());
    };
    if coll_ref != coll.id || flow::expired(&created, coll.auth.otp.duration) {
        return Err(bad());
    }
    let loaded = flow::find_by_id(&ctx, &coll, &record_ref)?.ok_or_else(bad)?;
    if !ctx.shared.app_store.allow(
        &format!("@pb_otp_{record_ref}"),
        5,
        Duration::from_secs(180),
    ) {
        return Err(ApiError::new(
            429,
            "Too many attempts, please try again later with a new OTP.",
        ));
    }
    if !password::check(&ctx.shared.cpu, code, hash).await {
        return Err(bad());
    }

    // a used code is gone for good
    flow::delete_used(&ctx, authrows::delete_otp, otp_id.clone()).await;

    // a code that reached the record's own address proves it
    let mut loaded = loaded;
    if !loaded.verified() && !sent_to.is_empty() && loaded.text("email") == sent_to {
        let mut sets: Vec<(String, SqlVal)> = vec![("verified".into(), SqlVal::from(true))];
        if !coll.auth.mfa.enabled {
            sets.extend(random_password(&ctx, &coll).await?);
        }
        if flow::update_record(&ctx, &coll, &record_ref, sets)
            .await
            .is_ok()
        {
            if let Some(fresh) = flow::find_by_id(&ctx, &coll, &record_ref)? {
                loaded = fresh;
            }
        }
    }
    let token = flow::auth_token(&loaded)?;
    flow::respond(&ctx, &req, &caller, &body, loaded, token, METHOD_OTP, None).await
}

// ---------------------------------------------------------------------------------------------
// verification

fn resend_key(prefix: &str, loaded: &Loaded) -> String {
    format!("{prefix}{}{}", loaded.coll().id, loaded.id())
}

async fn request_verification(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = users_collection(&ctx, &req, SUPERUSERS_VERIFIED)?;
    let email = requested_email(&ctx, &req).await?;
    let Some(loaded) = find_by_email(&ctx, &coll, &email)? else {
        return no_content();
    };
    let key = resend_key("@limitVerificationEmail_", &loaded);
    if loaded.verified() || ctx.shared.app_store.has(&key) {
        return no_content();
    }
    let msg = token_mail(
        &ctx,
        &loaded,
        token::TYPE_VERIFICATION,
        &[],
        &coll.auth.verification_template,
        &loaded.text("email"),
    )?;
    let core = ctx.shared.core.clone();
    send_detached(&ctx, msg, move |_| core.app_store.set(&key, RESEND_WAIT));
    no_content()
}

async fn confirm_verification(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = users_collection(&ctx, &req, SUPERUSERS_VERIFIED)?;
    let body = Body::parse(&ctx, &req).await?;
    let raw = body.string("token")?;
    let mut errs = FieldErrors::new();
    let mut found = None;
    if raw.is_empty() {
        errs.add("token", rules::blank());
    } else {
        let email = unverified_claim(&raw, "email");
        if email.is_empty() {
            errs.add(
                "token",
                FieldError::new(
                    "validation_invalid_token_claims",
                    "Missing email token claim.",
                ),
            );
        } else {
            match token_record(&ctx, &coll, &raw, token::TYPE_VERIFICATION) {
                Err(p) => errs.add("token", token_error(p)),
                Ok((loaded, _)) if loaded.text("email") != email => errs.add(
                    "token",
                    FieldError::new(
                        "validation_token_email_mismatch",
                        "The record email doesn't match with the requested token claims.",
                    ),
                ),
                Ok((loaded, _)) => found = Some(loaded),
            }
        }
    }
    let Some(loaded) = found.filter(|_| errs.is_empty()) else {
        return Err(invalid(&errs));
    };
    if !loaded.verified() {
        let mut sets: Vec<(String, SqlVal)> = vec![("verified".into(), SqlVal::from(true))];
        if !coll.auth.password_auth.enabled {
            sets.extend(random_password(&ctx, &coll).await?);
        }
        flow::update_record(&ctx, &coll, &loaded.id(), sets)
            .await
            .map_err(|e| {
                ApiError::bad_request(Some("An error occurred while saving the verified state."))
                    .caused_by(e)
            })?;
    }
    ctx.shared
        .app_store
        .remove(&resend_key("@limitVerificationEmail_", &loaded));
    no_content()
}

// ---------------------------------------------------------------------------------------------
// password reset

async fn request_password_reset(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = auth_collection(&ctx, &req)?;
    if !coll.auth.password_auth.enabled {
        return Err(ApiError::bad_request(Some(
            "The collection is not configured to allow password authentication.",
        )));
    }
    let email = requested_email(&ctx, &req).await?;
    let Some(loaded) = find_by_email(&ctx, &coll, &email)? else {
        return no_content();
    };
    let key = resend_key("@limitPasswordResetEmail_", &loaded);
    if ctx.shared.app_store.has(&key) {
        return no_content();
    }
    let msg = token_mail(
        &ctx,
        &loaded,
        token::TYPE_PASSWORD_RESET,
        &[],
        &coll.auth.reset_password_template,
        &loaded.text("email"),
    )?;
    let core = ctx.shared.core.clone();
    send_detached(&ctx, msg, move |sent| {
        if sent.is_ok() {
            core.app_store.set(&key, RESEND_WAIT);
        }
    });
    no_content()
}

/// The password field's `(min, max)` lengths (max 0 = bcrypt's 71).
fn password_limits(coll: &Collection) -> (usize, usize, String) {
    match coll.field("password").map(|f| &f.kind) {
        Some(FieldKind::Password {
            min, max, pattern, ..
        }) => (
            (*min).max(0) as usize,
            if *max > 0 { *max as usize } else { 71 },
            pattern.clone(),
        ),
        _ => (0, 71, String::new()),
    }
}

/// The password field's own rules (PocketBase's record validation on save).
fn password_field_error(coll: &Collection, plain: &str) -> Option<FieldError> {
    let (min, max, pattern) = password_limits(coll);
    let n = plain.chars().count();
    if n < min {
        return Some(FieldError::new(
            "validation_min_text_constraint",
            format!("Must be at least {min} character(s)"),
        ));
    }
    if n > max {
        return Some(FieldError::new(
            "validation_max_text_constraint",
            format!("Must be less than {max} character(s)"),
        ));
    }
    if !pattern.is_empty() && !regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(plain)) {
        return Some(FieldError::new(
            "validation_invalid_format",
            "Invalid value format",
        ));
    }
    None
}

async fn confirm_password_reset(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = auth_collection(&ctx, &req)?;
    let body = Body::parse(&ctx, &req)
        .await
        .map_err(|e| ApiError::bad_request(Some(flow::LOAD_FAILED)).caused_by(e))?;
    let raw = body.string("token")?;
    let plain = body.string("password")?;
    let confirm = body.string("passwordConfirm")?;
    let (min, _, _) = password_limits(&coll);
    let mut errs = FieldErrors::new();
    let mut found = None;
    if raw.is_empty() {
        errs.add("token", rules::blank());
    } else {
        match token_record(&ctx, &coll, &raw, token::TYPE_PASSWORD_RESET) {
            Ok(v) => found = Some(v),
            Err(p) => errs.add("token", token_error(p)),
        }
    }
    if let Err(e) =
        rules::required_str(&plain).and_then(|()| rules::length(&plain, min.max(1), 255))
    {
        errs.add("password", e);
    }
    if confirm.is_empty() {
        errs.add("passwordConfirm", rules::blank());
    } else if confirm != plain {
        errs.add(
            "passwordConfirm",
            FieldError::new("validation_values_mismatch", "Values don't match."),
        );
    }
    let Some((loaded, claims)) = found.filter(|_| errs.is_empty()) else {
        return Err(invalid(&errs));
    };
    if let Some(e) = password_field_error(&coll, &plain) {
        let mut errs = FieldErrors::new();
        errs.add("password", e);
        return Err(ApiError::validation("Failed to set new password.", &errs));
    }
    let hash = ctx
        .shared
        .hash_password(plain, password::cost_of(&coll))
        .await
        .map_err(|e| ApiError::internal().caused_by(e))?;
    let mut sets: Vec<(String, SqlVal)> = vec![
        ("password".into(), hash.into()),
        // a new password ends every session of the old one
        new_token_key(&coll),
    ];
    if !loaded.verified()
        && claims.get("email").and_then(Value::as_str) == Some(loaded.text("email").as_str())
    {
        sets.push(("verified".into(), SqlVal::from(true)));
    }
    flow::update_record(&ctx, &coll, &loaded.id(), sets)
        .await
        .map_err(|e| ApiError::bad_request(Some("Failed to set new password.")).caused_by(e))?;
    ctx.shared
        .app_store
        .remove(&resend_key("@limitPasswordResetEmail_", &loaded));
    no_content()
}

// ---------------------------------------------------------------------------------------------
// email change

async fn request_email_change(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let auth = require_same_collection_auth(&ctx, &req)?;
    let coll = users_collection(&ctx, &req, SUPERUSERS_EMAIL)?;
    let loaded = flow::find_by_id(&ctx, &coll, &auth.id)?
        .ok_or_else(|| ApiError::unauthorized(Some("The request requires valid auth record.")))?;
    let body = Body::parse(&ctx, &req).await?;
    let new_email = body.string("newEmail")?;
    let mut errs = FieldErrors::new();
    check_email(&mut errs, "newEmail", &new_email);
    if errs.is_empty() && new_email == loaded.text("email") {
        errs.add(
            "newEmail",
            FieldError::new("validation_not_in_invalid", "must not be in list"),
        );
    }
    if errs.is_empty() {
        if let Some(other) = find_by_email(&ctx, &coll, &new_email)? {
            if other.id() != loaded.id() {
                errs.add(
                    "newEmail",
                    FieldError::new("validation_invalid_new_email", "Invalid new email address."),
                );
            }
        }
    }
    errs.checked()?;
    let msg = token_mail(
        &ctx,
        &loaded,
        token::TYPE_EMAIL_CHANGE,
        &[("newEmail", new_email.clone().into())],
        &coll.auth.confirm_email_change_template,
        &new_email,
    )?;
    let smtp = ctx.shared.settings.get().smtp.clone();
    crate::settings::mail::send_off_thread(smtp, msg)
        .await
        .map_err(|e| ApiError::bad_request(Some("Failed to request email change.")).caused_by(e))?;
    no_content()
}

/// PocketBase's email change token checks: `(record, new email)` or the `token` error.
fn email_change_target(
    ctx: &AppCtx,
    coll: &Arc<Collection>,
    raw: &str,
) -> Result<(Loaded, String), FieldError> {
    let new_email = unverified_claim(raw, "newEmail");
    if new_email.is_empty() {
        return Err(FieldError::new(
            "validation_invalid_token_payload",
            "Invalid token payload - newEmail must be set.",
        ));
    }
    let (loaded, _) =
        token_record(ctx, coll, raw, token::TYPE_EMAIL_CHANGE).map_err(token_error)?;
    if find_by_email(ctx, coll, &new_email)
        .ok()
        .flatten()
        .is_some()
    {
        return Err(FieldError::new(
            "validation_invalid_token_email",
            "The new email address is invalid.",
        ));
    }
    Ok((loaded, new_email))
}

async fn confirm_email_change(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let coll = users_collection(&ctx, &req, SUPERUSERS_EMAIL)?;
    let body = Body::parse(&ctx, &req).await?;
    let raw = body.string("token")?;
    let plain = body.string("password")?;
    let mut errs = FieldErrors::new();
    let target = if raw.is_empty() {
        errs.add("token", rules::blank());
        None
    } else {
        match email_change_target(&ctx, &coll, &raw) {
            Ok(t) => Some(t),
            Err(e) => {
                errs.add("token", e);
                None
            }
        }
    };
    if let Err(e) = rules::required_str(&plain).and_then(|()| rules::length(&plain, 1, 100)) {
        errs.add("password", e);
    } else {
        let hash = target
            .as_ref()
            .map(|(l, _)| l.text("password"))
            .unwrap_or_default();
        if !password::check(&ctx.shared.cpu, plain, hash).await {
            errs.add(
                "password",
                FieldError::new(
                    "validation_invalid_password",
                    "Missing or invalid auth record password.",
                ),
            );
        }
    }
    let Some((loaded, new_email)) = target.filter(|_| errs.is_empty()) else {
        return Err(invalid(&errs));
    };
    let sets: Vec<(String, SqlVal)> = vec![
        ("email".into(), new_email.into()),
        ("verified".into(), SqlVal::from(true)),
        // a new email ends every session of the old one
        new_token_key(&coll),
    ];
    flow::update_record(&ctx, &coll, &loaded.id(), sets)
        .await
        .map_err(|e| ApiError::bad_request(Some("Failed to confirm email change.")).caused_by(e))?;
    no_content()
}

//! The pieces every auth endpoint shares: the auth collection of the path, the submitted
//! form, loading auth records, issuing their tokens, and PocketBase's auth response (auth
//! rule, MFA, the record JSON with expand, new-login alerts).

use crate::apis::body::OFFLOAD_PARSE_BYTES;
use crate::auth::token;
use crate::ctx::AppCtx;
use crate::error::{json_response, ApiError, ApiResult};
use crate::go::{query_get, query_pairs};
use crate::records::access::{load_auth_info, now_ms, resolve_flags, Caller};
use crate::records::expand::Expander;
use crate::records::{bound, value, Arena, Rec, SqlVal};
use crate::recstore::authrows;
use crate::schema::SchemaPair;
use crate::settings::{mail, templates};
use pocketbun_http::{Request, Response};
use pocketbun_storage::collections::model::find_single_column_unique_index;
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::rusqlite::OptionalExtension;
use pocketbun_storage::{random, time};
use serde_json::{Map, Value};
use std::rc::Rc;
use std::sync::Arc;

pub const LOAD_FAILED: &str = "An error occurred while loading the submitted data.";
pub use crate::error::VALIDATE_FAILED;

/// Auth methods as MFA and the login alerts name them.
pub const METHOD_PASSWORD: &str = "password";
pub const METHOD_OTP: &str = "otp";
pub const METHOD_OAUTH2: &str = "oauth2";
/// `@request.context` of the create request behind an OAuth2 sign-up.
pub const CONTEXT_OAUTH2: &str = "oauth2";

/// The auth collection named by the `{collection}` path parameter (404 otherwise).
pub fn auth_collection(ctx: &AppCtx, req: &Request) -> Result<Arc<Collection>, ApiError> {
    use crate::apis::extract::{collection, CollectionOf};
    collection(&ctx.shared.schema.get(), req, CollectionOf::Auth)
}

// ---------------------------------------------------------------------------------------------
// submitted forms

/// The submitted body as the JSON object Go's form binding decodes into a struct: a JSON
/// body, or the fields (and `@jsonPayload`) of a urlencoded or multipart form.
#[derive(Debug, Default)]
pub struct Body(pub Map<String, Value>);

impl Body {
    /// Parses the body of `req`; one bigger than [`OFFLOAD_PARSE_BYTES`] on the CPU pool, so a
    /// client cannot hold the worker with a 32 MiB form.
    pub async fn parse(ctx: &AppCtx, req: &Request) -> Result<Body, ApiError> {
        if req.body.is_empty() {
            return Ok(Body::default());
        }
        let ct = req
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        let form = ct.starts_with("application/x-www-form-urlencoded")
            || ct.starts_with("multipart/form-data");
        // Go's `ParseForm` reads the URL query with a form body: its refusal fails the binding
        if form && crate::apis::body::query_refused(req.query()) {
            return Err(ApiError::bad_request(Some(LOAD_FAILED)));
        }
        if req.body.len() <= OFFLOAD_PARSE_BYTES {
            return Body::parse_bytes(&ct, &req.body);
        }
        let body = req.body.clone();
        ctx.shared
            .cpu
            .run(move || Body::parse_bytes(&ct, &body))
            .await
            .map_err(|e| ApiError::bad_request(Some(LOAD_FAILED)).caused_by(e))?
    }

    fn parse_bytes(ct: &str, body: &[u8]) -> Result<Body, ApiError> {
        let load = || ApiError::bad_request(Some(LOAD_FAILED));
        if ct.starts_with("application/x-www-form-urlencoded") {
            // a `;`, a bad escape or more than 10,000 fields: Go's form parser refuses the body
            let form = crate::go::parse_form(body);
            if form.refused {
                return Err(load());
            }
            let mut out = Map::new();
            // the first value of a repeated key binds (Go's `url.Values.Get`)
            for (k, v) in form.first_values() {
                if k == "@jsonPayload" {
                    match crate::json_strict::from_slice(v.as_bytes())
                        .map_err(|e| load().caused_by(e))?
                    {
                        Value::Object(m) => out.extend(m),
                        Value::Null => {}
                        _ => return Err(load()),
                    }
                } else {
                    out.insert(k, Value::String(v));
                }
            }
            return Ok(Body(out));
        }
        if ct.starts_with("multipart/form-data") {
            return multipart_fields(ct, body).map(Body).ok_or_else(load);
        }
        if crate::apis::body::is_xml(ct) {
            // XML binds no field of the form (they have no XML names); broken XML fails
            return if crate::apis::body::xml_well_formed(body) {
                Ok(Body::default())
            } else {
                Err(load())
            };
        }
        // JSON is the default (PocketBase decodes unknown types as JSON too)
        match crate::json_strict::first_value(body) {
            Some(Ok(Value::Object(m))) => Ok(Body(m)),
            Some(Ok(Value::Null)) => Ok(Body::default()),
            None => Ok(Body::default()),
            _ => Err(load()),
        }
    }

    /// The value of `key`, matched exactly first, then ignoring ASCII case (Go's JSON).
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).or_else(|| {
            self.0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }

    /// A string field (absent/null: empty; another JSON type: PocketBase's 400).
    pub fn string(&self, key: &str) -> Result<String, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::bad_request(Some(LOAD_FAILED))),
        }
    }

    /// An integer field (a form field's text is parsed).
    pub fn int(&self, key: &str) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| ApiError::bad_request(Some(LOAD_FAILED))),
            Some(Value::String(s)) if !s.is_empty() => s
                .trim()
                .parse()
                .map_err(|e| ApiError::bad_request(Some(LOAD_FAILED)).caused_by(e)),
            Some(Value::String(_)) => Ok(0),
            Some(_) => Err(ApiError::bad_request(Some(LOAD_FAILED))),
        }
    }

    /// A JSON object field (e.g. OAuth2 `createData`).
    pub fn object(&self, key: &str) -> Result<Map<String, Value>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(Value::String(s)) if s.trim_start().starts_with('{') => {
                match crate::json_strict::from_slice(s.as_bytes()) {
                    Ok(Value::Object(m)) => Ok(m),
                    _ => Err(ApiError::bad_request(Some(LOAD_FAILED))),
                }
            }
            Some(_) => Err(ApiError::bad_request(Some(LOAD_FAILED))),
        }
    }
}

/// The plain text fields of a multipart body (files are left out); `@jsonPayload` holds
/// more fields as a JSON object. `None`: a body the parser refuses.
fn multipart_fields(content_type: &str, body: &[u8]) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for part in crate::apis::multipart::parts(content_type, body).ok()? {
        if part.file_name.is_some() {
            continue;
        }
        if part.name == "@jsonPayload" {
            if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&part.data) {
                out.extend(m);
            }
        } else {
            out.insert(part.name.clone(), Value::String(part.text()));
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// auth records

/// One auth record, loaded with every column (hash and token key included).
pub struct Loaded {
    pub arena: Arena,
    pub idx: usize,
}

impl Loaded {
    pub fn rec(&self) -> &Rec {
        &self.arena.recs[self.idx]
    }

    pub fn coll(&self) -> &Arc<Collection> {
        &self.rec().coll
    }

    pub fn id(&self) -> String {
        self.rec().id().to_string()
    }

    /// A field's value as Go's `record.GetString` gives it.
    pub fn text(&self, field: &str) -> String {
        let rec = self.rec();
        let Some(f) = rec.coll.field(field) else {
            return String::new();
        };
        let v = rec.value(field).unwrap_or(&SqlVal::Null);
        match f.kind {
            FieldKind::Bool => value::to_bool(v).to_string(),
            FieldKind::Number { .. } => value::go_float_string(value::to_f64(v)),
            _ => v.as_text().into_owned(),
        }
    }

    pub fn verified(&self) -> bool {
        self.rec().value("verified").is_some_and(value::to_bool)
    }
}

/// The record of `coll` whose `column` equals `value` (`nocase`: compared with NOCASE).
pub fn find_record(
    ctx: &AppCtx,
    coll: &Arc<Collection>,
    column: &str,
    value: &str,
    nocase: bool,
) -> Result<Option<Loaded>, ApiError> {
    let mut arena = Arena::default();
    let found = ctx.reader.read(|conn| {
        let mut stmt = crate::recstore::rows::by_field(conn, &coll.name, column, nocase)?;
        Ok(arena.load(
            coll,
            &mut stmt,
            &[pocketbun_query::Value::Text(value.to_string())],
        )?)
    })?;
    Ok(found.first().map(|&idx| Loaded { arena, idx }))
}

pub fn find_by_id(
    ctx: &AppCtx,
    coll: &Arc<Collection>,
    id: &str,
) -> Result<Option<Loaded>, ApiError> {
    if id.is_empty() {
        return Ok(None);
    }
    find_record(ctx, coll, "id", id, false)
}

/// The unique index over `field` alone, if the collection has one: `Some(nocase)`.
pub fn unique_index_nocase(coll: &Collection, field: &str) -> Option<bool> {
    let raw = find_single_column_unique_index(&coll.indexes, field)?;
    let p = pocketbun_storage::collections::index::ParsedIndex::parse(raw);
    Some(
        p.columns
            .first()
            .is_some_and(|c| c.collate.eq_ignore_ascii_case("nocase")),
    )
}

/// The record whose email is `email` (compared as the collection's email index does).
pub fn find_by_email(
    ctx: &AppCtx,
    coll: &Arc<Collection>,
    email: &str,
) -> Result<Option<Loaded>, ApiError> {
    let nocase = unique_index_nocase(coll, "email").unwrap_or(false);
    find_record(ctx, coll, "email", email, nocase)
}

// ---------------------------------------------------------------------------------------------
// tokens

/// The collection's `(secret, duration)` for a token type.
fn token_config<'a>(coll: &'a Collection, kind: &str) -> (&'a str, i64) {
    let cfg = match kind {
        token::TYPE_VERIFICATION => &coll.auth.verification_token,
        token::TYPE_PASSWORD_RESET => &coll.auth.password_reset_token,
        token::TYPE_EMAIL_CHANGE => &coll.auth.email_change_token,
        token::TYPE_FILE => &coll.auth.file_token,
        _ => &coll.auth.auth_token,
    };
    (&cfg.secret, cfg.duration)
}

/// A token of `kind` for `rec` with PocketBase's claims for that kind; `duration` > 0
/// replaces the collection's lifetime (static auth tokens).
pub fn record_token(
    loaded: &Loaded,
    kind: &str,
    extra: &[(&str, Value)],
    duration: i64,
) -> Result<String, ApiError> {
    let coll = loaded.coll();
    let (secret, default_duration) = token_config(coll, kind);
    let key = format!("{}{}", loaded.text("tokenKey"), secret);
    let mut claims = Map::new();
    claims.insert("type".into(), kind.into());
    claims.insert("id".into(), loaded.id().into());
    claims.insert("collectionId".into(), coll.id.clone().into());
    if matches!(
        kind,
        token::TYPE_VERIFICATION | token::TYPE_PASSWORD_RESET | token::TYPE_EMAIL_CHANGE
    ) {
        claims.insert("email".into(), loaded.text("email").into());
    }
    for (k, v) in extra {
        claims.insert((*k).into(), v.clone());
    }
    let duration = if duration > 0 {
        duration
    } else {
        default_duration
    };
    token::issue(&claims, &key, duration)
        .map_err(|e| ApiError::new(500, "Failed to create auth token.").caused_by(e))
}

/// A new refreshable auth token.
pub fn auth_token(loaded: &Loaded) -> Result<String, ApiError> {
    record_token(loaded, token::TYPE_AUTH, &[("refreshable", true.into())], 0)
}

/// Why a record token was refused (PocketBase's validation codes of the `token` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Unparsable, expired, badly signed, of another type, or of a missing record.
    Invalid,
    /// Valid, but for a record of another collection.
    CollectionMismatch,
}

/// The record a token of `kind` was issued for, with its verified claims.
pub fn record_of_token(
    ctx: &AppCtx,
    raw: &str,
    kind: &str,
) -> Result<(Loaded, Map<String, Value>), TokenProblem> {
    let claims = token::unverified_payload(raw).ok_or(TokenProblem::Invalid)?;
    if claims.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(TokenProblem::Invalid);
    }
    let id = claims.get("id").and_then(Value::as_str).unwrap_or("");
    let coll_id = claims
        .get("collectionId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let schema = ctx.shared.schema.get();
    let coll = schema
        .collections
        .get(coll_id)
        .filter(|c| c.is_auth() && c.id == coll_id)
        .cloned()
        .ok_or(TokenProblem::Invalid)?;
    let loaded = find_by_id(ctx, &coll, id)
        .ok()
        .flatten()
        .ok_or(TokenProblem::Invalid)?;
    let (secret, _) = token_config(&coll, kind);
    let key = format!("{}{}", loaded.text("tokenKey"), secret);
    let verified = token::verify(raw, &key).ok_or(TokenProblem::Invalid)?;
    Ok((loaded, verified))
}

// ---------------------------------------------------------------------------------------------
// the auth response

/// Runs a collection rule against one record for `info` (PocketBase's `CanAccessRecord`).
pub fn can_access(
    ctx: &AppCtx,
    schema: &SchemaPair,
    info: &pocketbun_query::RequestInfo,
    loaded: &Loaded,
    rule: Option<&str>,
) -> Result<bool, ApiError> {
    if info.superuser {
        return Ok(true);
    }
    let Some(rule) = rule else { return Ok(false) };
    if rule.is_empty() {
        return Ok(true);
    }
    rule_matches(ctx, schema, info, loaded, rule)
}

/// Whether the non-empty filter `rule` holds for the record.
fn rule_matches(
    ctx: &AppCtx,
    schema: &SchemaPair,
    info: &pocketbun_query::RequestInfo,
    loaded: &Loaded,
    rule: &str,
) -> Result<bool, ApiError> {
    let coll = loaded.coll();
    let cond = ctx
        .queries
        .borrow_mut()
        .condition(&schema.query, &coll.name, rule, info, true)
        .map_err(|e| crate::records::access::query_error(&e))?;
    let mut params = cond.bind(info, now_ms());
    let sql = crate::recstore::rules::check_by_id(&coll.name, &cond, params.len() + 1);
    params.push(pocketbun_query::Value::Text(loaded.id()));
    ctx.reader
        .read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let k = stmt.parameter_count();
            Ok(stmt
                .query_row(bound(&params, k), |_| Ok(()))
                .optional()?
                .is_some())
        })
        .map_err(ApiError::from)
}

/// The request info of the request being answered, with `context` set for the auth method.
pub fn caller(ctx: &AppCtx, req: &Request, context: &str) -> Result<Caller, ApiError> {
    let schema = ctx.shared.schema.get();
    let query = query_pairs(req.query());
    let mut caller = crate::apis::caller::caller(ctx, &schema, req, &query)?;
    if !context.is_empty() {
        caller.info.context = context.to_string();
    }
    Ok(caller)
}

/// PocketBase's `RecordAuthResponse`: checks the superuser IP allow-list and the collection's
/// auth rule, asks for a second factor when MFA applies, then answers
/// `{"meta"?,"record","token"}` (the record with its email, expanded per `?expand=`) and
/// tracks the login origin (alert mail on a new one).
#[allow(clippy::too_many_arguments)]
pub async fn respond(
    ctx: &Rc<AppCtx>,
    req: &Request,
    caller: &Caller,
    body: &Body,
    mut loaded: Loaded,
    token: String,
    method: &str,
    meta: Option<Value>,
) -> ApiResult {
    let schema = ctx.shared.schema.get();
    let coll = loaded.coll().clone();
    let settings = ctx.shared.settings.get();
    if coll.name == token::SUPERUSERS && !settings.superuser_ips.is_empty() {
        let ip = crate::apis::extract::client_ip(&settings.trusted_proxy, req);
        if !crate::client_ip::ip_in_list(&settings.superuser_ips, &ip) {
            return Err(ApiError::forbidden(None));
        }
    }
    if !can_access(
        ctx,
        &schema,
        &caller.info,
        &loaded,
        coll.auth.auth_rule.as_deref(),
    )? {
        return Err(ApiError::forbidden(Some(
            "The request doesn't satisfy the collection requirements to authenticate.",
        )));
    }

    if let Some(mfa_id) = check_mfa(ctx, req, caller, body, &loaded, method).await? {
        let mut out = Map::new();
        out.insert("mfaId".into(), mfa_id.into());
        return Ok(json_response(401, &out));
    }

    // the record as its owner sees it, expanded with the record itself as the auth
    let auth = crate::auth::AuthRecord {
        id: loaded.id(),
        collection_id: coll.id.clone(),
        collection_name: coll.name.clone(),
    };
    let mut info = caller.info.clone();
    info.auth = Some(load_auth_info(ctx, &schema, &auth)?);
    info.superuser = auth.is_superuser();
    let idx = loaded.idx;
    let _ = resolve_flags(ctx, &schema, &info, &mut loaded.arena, &[idx]);
    {
        let rec = &mut loaded.arena.recs[idx];
        rec.show_email = true;
        if auth.is_superuser() {
            rec.unhide = true;
        }
    }
    let query = query_pairs(req.query());
    let expand = query_get(&query, "expand");
    if !expand.is_empty() {
        // failed expands are only logged by PocketBase
        let _ = Expander::new(ctx, &schema, &info).expand_all(&mut loaded.arena, &[idx], expand);
    }

    if !method.is_empty() && coll.auth.auth_alert.enabled {
        // failures are only logged by PocketBase
        let _ = auth_alert(ctx, req, &loaded).await;
    }

    let mut out = String::with_capacity(512);
    out.push('{');
    if let Some(meta) = meta {
        out.push_str("\"meta\":");
        let bytes = crate::error::to_go_json(&meta)?;
        out.push_str(&String::from_utf8_lossy(&bytes));
        out.push(',');
    }
    out.push_str("\"record\":");
    // a record over 64 KiB is written on the CPU pool (a 48 MiB one held the worker ~1 s)
    let mut out = crate::records::write_records(ctx, loaded.arena, vec![idx], "", out).await?;
    out.push_str(",\"token\":");
    pocketbun_storage::collections::gojson::write_str(&mut out, &token);
    out.push('}');
    Ok(Response::with_body(
        200,
        "application/json",
        out.into_bytes(),
    ))
}

// ---------------------------------------------------------------------------------------------
// MFA

/// PocketBase's MFA step: `Some(mfaId)` when this login must be completed by a second,
/// different method; `None` when the login may go on.
async fn check_mfa(
    ctx: &Rc<AppCtx>,
    req: &Request,
    caller: &Caller,
    body: &Body,
    loaded: &Loaded,
    method: &str,
) -> Result<Option<String>, ApiError> {
    let coll = loaded.coll().clone();
    if !coll.auth.mfa.enabled || method.is_empty() {
        return Ok(None);
    }
    let rule = coll.auth.mfa.rule.as_str();
    if !rule.is_empty() {
        let schema = ctx.shared.schema.get();
        match rule_matches(ctx, &schema, &caller.info, loaded, rule) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(_) => return Err(ApiError::bad_request(Some("Failed to authenticate."))),
        }
    }
    let query = query_pairs(req.query());
    let mut mfa_id = query_get(&query, "mfaId").to_string();
    if mfa_id.is_empty() {
        mfa_id = body.string("mfaId")?;
    }
    let record_id = loaded.id();
    let writer = ctx.shared.store.writer();

    if mfa_id.is_empty() {
        let id = random::new_record_id();
        let (cid, rid, m, new_id) = (
            coll.id.clone(),
            record_id.clone(),
            method.to_string(),
            id.clone(),
        );
        writer
            .submit(move |conn| {
                let now = time::now_datetime();
                authrows::insert_mfa(conn, &new_id, &cid, &rid, &m, &now)?;
                Ok(())
            })
            .await
            .map_err(|e| ApiError::new(500, "Failed to create MFA record").caused_by(e))?;
        return Ok(Some(id));
    }

    let found = ctx.reader.read(|conn| Ok(authrows::mfa(conn, &mfa_id)?))?;
    let delete = |id: String| delete_used(ctx, authrows::delete_mfa, id);
    let Some((coll_ref, record_ref, mfa_method, created)) = found else {
        return Err(ApiError::bad_request(Some(
            "Invalid or expired MFA session.",
        )));
    };
    if expired(&created, coll.auth.mfa.duration) {
        delete(mfa_id).await;
        return Err(ApiError::bad_request(Some(
            "Invalid or expired MFA session.",
        )));
    }
    if record_ref != record_id || coll_ref != coll.id {
        return Err(ApiError::bad_request(Some("Invalid MFA session.")));
    }
    if mfa_method == method {
        return Err(ApiError::bad_request(Some(
            "A different authentication method is required.",
        )));
    }
    delete(mfa_id).await;
    Ok(None)
}

/// Whether a row `created` at that datetime is older than `duration` seconds.
pub fn expired(created: &str, duration: i64) -> bool {
    let cutoff = time::format_unix_millis(now_ms() - duration.saturating_mul(1000));
    created < cutoff.as_str()
}

// ---------------------------------------------------------------------------------------------
// login alerts

/// Most login origins kept per record.
const MAX_AUTH_ORIGINS: usize = 5;

/// PocketBase's new-login tracking: the (IP, user agent) fingerprint of this login is saved in
/// `_authOrigins`; a fingerprint not seen before (and not the first login) mails an alert.
async fn auth_alert(ctx: &Rc<AppCtx>, req: &Request, loaded: &Loaded) -> Result<(), String> {
    use md5::Digest as _;
    let settings = ctx.shared.settings.get();
    let ip = crate::apis::extract::client_ip(&settings.trusted_proxy, req);
    let mut agent = req.header("user-agent").unwrap_or("").to_string();
    if agent.len() > 200 {
        let mut cut = 200;
        while !agent.is_char_boundary(cut) {
            cut -= 1;
        }
        agent.truncate(cut);
        agent.push_str("...");
    }
    let fingerprint = format!("{:x}", md5::Md5::digest(format!("{ip}{agent}").as_bytes()));
    let coll = loaded.coll().clone();
    let record_id = loaded.id();

    let origins: Vec<(String, String)> = ctx
        .reader
        .read(|conn| Ok(authrows::origins_of(conn, &coll.id, &record_id)?))
        .map_err(|e| e.to_string())?;
    let current = origins.iter().find(|(_, f)| *f == fingerprint).cloned();
    let email = loaded.text("email");

    if !origins.is_empty() && current.is_none() && !email.is_empty() {
        let info = format!("{} - {ip} {agent}", time::now_datetime());
        let mut placeholders = vec![("{ALERT_INFO}".to_string(), templates::html_escape(&info))];
        placeholders.extend(record_placeholders(&settings, loaded));
        let t = &coll.auth.auth_alert.email_template;
        let (subject, html) = templates::render(&t.subject, &t.body, &placeholders);
        let msg = mail::Message::from_app(&settings, &email, subject, html);
        mail::send_off_thread(settings.smtp.clone(), msg).await?;
    }

    let (cid, rid) = (coll.id.clone(), record_id);
    let stale: Vec<String> = if current.is_none() && origins.len() >= MAX_AUTH_ORIGINS {
        origins[MAX_AUTH_ORIGINS - 1..]
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    } else {
        Vec::new()
    };
    let existing = current.map(|(id, _)| id);
    ctx.shared
        .store
        .writer()
        .submit(move |conn| {
            let now = time::now_datetime();
            for id in &stale {
                authrows::delete_origin(conn, id)?;
            }
            match existing {
                Some(id) => {
                    authrows::touch_origin(conn, &id, &now)?;
                }
                None => {
                    let id = random::new_record_id();
                    authrows::insert_origin(conn, &id, &cid, &rid, &fingerprint, &now)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}

/// `{APP_NAME}`, `{APP_URL}` and `{RECORD:field}` of every visible field (HTML-escaped
/// except for dates, bools and numbers), as PocketBase fills its auth emails.
pub fn record_placeholders(
    settings: &crate::settings::Settings,
    loaded: &Loaded,
) -> Vec<(String, String)> {
    let mut out = vec![
        ("{APP_NAME}".to_string(), settings.meta.app_name.clone()),
        ("{APP_URL}".to_string(), settings.meta.app_url.clone()),
    ];
    for f in &loaded.coll().fields {
        if f.hidden {
            continue;
        }
        let v = loaded.text(&f.name);
        let v = match f.kind {
            FieldKind::Autodate { .. }
            | FieldKind::Date { .. }
            | FieldKind::Bool
            | FieldKind::Number { .. } => v,
            _ => templates::html_escape(&v),
        };
        out.push((format!("{{RECORD:{}}}", f.name), v));
    }
    out
}

/// Sends one of the collection's auth emails to `to`.
pub async fn send_template(
    ctx: &AppCtx,
    loaded: &Loaded,
    template: &pocketbun_storage::collections::model::EmailTemplate,
    to: &str,
    extra: Vec<(String, String)>,
) -> Result<(), String> {
    let settings = ctx.shared.settings.get();
    let mut placeholders = extra;
    placeholders.extend(record_placeholders(&settings, loaded));
    let (subject, html) = templates::render(&template.subject, &template.body, &placeholders);
    let msg = mail::Message::from_app(&settings, to, subject, html);
    mail::send_off_thread(settings.smtp.clone(), msg).await
}

// ---------------------------------------------------------------------------------------------
// writes, throttles and detached mail

/// Deletes a used (or expired) MFA session or OTP row `id` through the writer; a failure
/// only leaves the row to expire.
pub async fn delete_used(
    ctx: &AppCtx,
    delete: fn(
        &pocketbun_storage::rusqlite::Connection,
        &str,
    ) -> pocketbun_storage::rusqlite::Result<usize>,
    id: String,
) {
    let _ = ctx
        .shared
        .store
        .writer()
        .submit(move |conn| {
            delete(conn, &id)?;
            Ok(())
        })
        .await;
}

/// Updates columns of an auth record (plus its `onUpdate` autodates) through the writer.
pub async fn update_record(
    ctx: &AppCtx,
    coll: &Collection,
    id: &str,
    sets: Vec<(String, SqlVal)>,
) -> Result<(), pocketbun_storage::StorageError> {
    let mut sets = sets;
    let now = time::now_datetime();
    for f in &coll.fields {
        if let FieldKind::Autodate {
            on_update: true, ..
        } = f.kind
        {
            sets.push((f.name.clone(), now.clone().into()));
        }
    }
    let sql =
        crate::recstore::rows::update_by_id_sql(&coll.name, sets.iter().map(|(n, _)| n.as_str()));
    let mut values: Vec<SqlVal> = vec![id.to_string().into()];
    values.extend(sets.into_iter().map(|(_, v)| v));
    // realtime hears of it as of any record update (the collection as the schema has it now)
    let schema = ctx.shared.schema.get();
    let collections = schema.collections.clone();
    let current = collections.get(&coll.id).cloned();
    // the write hooks see the collection as it is now, or as the caller had it
    let hooked = current.clone().unwrap_or_else(|| Arc::new(coll.clone()));
    let hooks = ctx.shared.record_hooks.clone();
    let rid = id.to_string();
    let event = ctx
        .shared
        .store
        .writer()
        .submit(move |conn| {
            use crate::records::event::{Action, RowWrite};
            let row = RowWrite {
                action: Action::Update,
                collection: &hooked,
                id: &rid,
                schema: &collections,
            };
            let memos = hooks.before_write(conn, &row)?;
            let changed = crate::recstore::rows::run_update(conn, &sql, &values)?;
            if changed > 0 {
                hooks.after_write(conn, &row, memos)?;
            }
            Ok(match current {
                Some(c) => crate::records::event::RecordEvent::load(
                    conn,
                    crate::records::event::Action::Update,
                    c,
                    &rid,
                )?,
                None => None,
            })
        })
        .await?;
    if let Some(ev) = event {
        ctx.shared.record_hooks.committed(ev);
    }
    Ok(())
}

/// One of the collection's auth emails to `to`, filled for `loaded` (+ `extra` placeholders).
pub fn compose(
    ctx: &AppCtx,
    loaded: &Loaded,
    template: &pocketbun_storage::collections::EmailTemplate,
    to: &str,
    extra: Vec<(String, String)>,
) -> mail::Message {
    let settings = ctx.shared.settings.get();
    let mut placeholders = extra;
    placeholders.extend(record_placeholders(&settings, loaded));
    let (subject, html) = templates::render(&template.subject, &template.body, &placeholders);
    mail::Message::from_app(&settings, to, subject, html)
}

/// Sends `msg` on a thread of its own without waiting for it (PocketBase's fire-and-forget
/// mails); `done` runs on that thread with the outcome.
pub fn send_detached(
    ctx: &AppCtx,
    msg: mail::Message,
    done: impl FnOnce(Result<(), String>) + Send + 'static,
) {
    let smtp = ctx.shared.settings.get().smtp.clone();
    let spawned = std::thread::Builder::new()
        .name("pocketbun-mail".into())
        .spawn(move || done(mail::send(&smtp, &msg)));
    // like a failed send, a thread that cannot start only loses this mail
    drop(spawned);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_by_created_datetime() {
        let now = time::now_datetime();
        assert!(!expired(&now, 60));
        assert!(expired("2020-01-01 00:00:00.000Z", 60));
    }

    #[test]
    fn multipart_text_fields() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"identity\"\r\n\r\na@b.co\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\nbin\r\n--XX--\r\n";
        let m = multipart_fields("multipart/form-data; boundary=XX", body).unwrap();
        assert_eq!(m.get("identity"), Some(&Value::String("a@b.co".into())));
        assert!(m.get("f").is_none());
        // Go's part limit: 1,000 parts pass, 1,001 do not
        let parts = |n: usize| {
            let mut b = "--XX\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n".repeat(n);
            b.push_str("--XX--\r\n");
            b
        };
        let ct = "multipart/form-data; boundary=XX";
        assert!(multipart_fields(ct, parts(1000).as_bytes()).is_some());
        assert!(multipart_fields(ct, parts(1001).as_bytes()).is_none());
    }
}

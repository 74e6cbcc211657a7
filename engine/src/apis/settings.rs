//! `/api/settings`: read and change the application settings, send a test email, test the S3
//! connection, and generate an Apple client secret. Superusers only.

use crate::apis::body::{body_values, LOAD_FAILED};
use crate::bind_fields;
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, sentenize, ApiError, ApiResult, FieldError, FieldErrors};
use crate::settings::bind::Bind;
use crate::settings::mail::{self, Message};
use crate::settings::rules;
use crate::settings::templates::{self, AuthCollection};
use crate::settings::Settings;
use pocketbun_http::{Method, Request, Response};
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/settings", |ctx, req| {
        Box::pin(list(ctx, req))
    });
    routes.add(Method::Patch, "/api/settings", |ctx, req| {
        Box::pin(update(ctx, req))
    });
    routes.add(Method::Post, "/api/settings/test/s3", |ctx, req| {
        Box::pin(test_s3(ctx, req))
    });
    routes.add(Method::Post, "/api/settings/test/email", |ctx, req| {
        Box::pin(test_email(ctx, req))
    });
    routes.add(
        Method::Post,
        "/api/settings/apple/generate-client-secret",
        |ctx, req| Box::pin(apple_client_secret(ctx, req)),
    );
}

/// Binds the request body onto `target` (a form or the settings).
fn bind_body<T: Bind>(req: &Request, target: &mut T) -> Result<(), ApiError> {
    for v in body_values(req)? {
        target
            .bind(&v)
            .map_err(|e| ApiError::bad_request(Some(LOAD_FAILED)).caused_by(e))?;
    }
    Ok(())
}

fn settings_response(settings: &Settings) -> Response {
    json_response(200, &settings.public())
}

async fn list(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    Ok(settings_response(&ctx.shared.settings.get()))
}

async fn update(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let mut next: Settings = (*ctx.shared.settings.get()).clone();
    for v in body_values(&req)? {
        // a literal `null` body leaves PocketBase without settings to save
        if v.is_null() {
            return Err(ApiError::internal());
        }
        next.bind(&v)
            .map_err(|e| ApiError::bad_request(Some(LOAD_FAILED)).caused_by(e))?;
    }
    let errors = next.validate();
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while saving the new settings.",
            &errors,
        ));
    }
    ctx.shared
        .settings
        .save(&ctx.shared.store, next)
        .await
        .map_err(|e| {
            ApiError::bad_request(Some("An error occurred while saving the new settings."))
                .caused_by(e)
        })?;
    // the other nodes of a cluster (`--nats`) reload theirs
    crate::cluster::schema_changed(ctx.shared.cluster.as_deref());
    Ok(settings_response(&ctx.shared.settings.get()))
}

/// A failure of the action itself (not of the input), reported like PocketBase with the raw
/// error appended to `prefix`.
fn raw_error(prefix: &str, err: &str) -> ApiError {
    ApiError::bad_request(Some(&sentenize(&format!("{prefix} Raw error: \n{err}"))))
}

// ---------------------------------------------------------------------------------------------
// test/s3

#[derive(Default)]
struct TestS3Form {
    filesystem: String,
}
bind_fields!(TestS3Form { "filesystem" => filesystem });

async fn test_s3(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let mut form = TestS3Form::default();
    bind_body(&req, &mut form)?;
    let mut errs = FieldErrors::new();
    if let Err(e) = rules::required_str(&form.filesystem)
        .and_then(|()| rules::one_of(&form.filesystem, &["storage", "backups"]))
    {
        errs.add("filesystem", e);
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(
            "Failed to test the S3 filesystem.",
            &errs,
        ));
    }
    let settings = ctx.shared.settings.get();
    let cfg = if form.filesystem == "backups" {
        &settings.backups.s3
    } else {
        &settings.s3
    };
    if !cfg.enabled {
        return Err(raw_error(
            "Failed to test the S3 filesystem.",
            "S3 storage filesystem is not enabled",
        ));
    }
    let fs = ctx.shared.files.s3_client(cfg).map_err(|e| {
        raw_error(
            "Failed to test the S3 filesystem.",
            &format!("failed to initialize the S3 filesystem: {e}"),
        )
    })?;
    let prefix = format!(
        "pb_settings_test_{}",
        pocketbun_storage::random::random_string_with_alphabet(
            5,
            pocketbun_storage::random::ALNUM_ALPHABET
        )
    );
    let key = format!("{prefix}/test.txt");
    if let Err(e) = fs
        .put(&key, b"test".to_vec(), "text/plain; charset=utf-8", &[])
        .await
    {
        return Err(raw_error(
            "Failed to test the S3 filesystem.",
            &format!("failed to upload a test file: {e}"),
        ));
    }
    if let Some(e) = fs.delete_prefix(&prefix).await.into_iter().next() {
        return Err(raw_error(
            "Failed to test the S3 filesystem.",
            &format!("failed to delete a test file: {e}"),
        ));
    }
    Ok(Response::new(204))
}

// ---------------------------------------------------------------------------------------------
// test/email

#[derive(Default)]
struct TestEmailForm {
    email: String,
    template: String,
    collection: String,
}
bind_fields!(TestEmailForm {
    "email" => email,
    "template" => template,
    "collection" => collection,
});

const TEMPLATES: [&str; 5] = [
    "verification",
    "password-reset",
    "email-change",
    "otp",
    "login-alert",
];

async fn test_email(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let mut form = TestEmailForm::default();
    bind_body(&req, &mut form)?;

    let collection_name = if form.collection.is_empty() {
        crate::auth::token::SUPERUSERS.to_string()
    } else {
        form.collection.clone()
    };
    let collection = ctx
        .reader
        .read(|conn| AuthCollection::find(conn, &collection_name))?;

    let mut errs = FieldErrors::new();
    if let Err(e) = rules::length(&form.collection, 1, 255).and_then(|()| {
        if form.collection.is_empty() || collection.is_some() {
            Ok(())
        } else {
            Err(FieldError::new(
                "validation_invalid_auth_collection",
                "Must be a valid auth collection id or name.",
            ))
        }
    }) {
        errs.add("collection", e);
    }
    if let Err(e) = rules::required_str(&form.email)
        .and_then(|()| rules::length(&form.email, 1, 255))
        .and_then(|()| rules::email(&form.email))
    {
        errs.add("email", e);
    }
    if let Err(e) =
        rules::required_str(&form.template).and_then(|()| rules::one_of(&form.template, &TEMPLATES))
    {
        errs.add("template", e);
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(
            "Failed to send the test email.",
            &errs,
        ));
    }
    let Some(collection) = collection else {
        return Err(raw_error(
            "Failed to send the test email.",
            "sql: no rows in result set",
        ));
    };

    let settings = ctx.shared.settings.get();
    let msg = compose_test_email(&settings, &collection, &form.template, &form.email)
        .map_err(|e| raw_error("Failed to send the test email.", &e))?;
    mail::send_off_thread(settings.smtp.clone(), msg)
        .await
        .map_err(|e| raw_error("Failed to send the test email.", &e))?;
    Ok(Response::new(204))
}

/// The email `template` would produce for a stand-in record of `collection` whose address is
/// `email` (every visible field holds `__pb_test_<name>__`).
fn compose_test_email(
    settings: &Settings,
    collection: &AuthCollection,
    template: &str,
    email: &str,
) -> Result<Message, String> {
    let token_key = pocketbun_storage::random::random_string(50);
    let record_id = "__pb_test_id__";

    let mut placeholders: Vec<(String, String)> = Vec::new();
    let token = |config: &str, extra: &[(&str, &str)], kind: &str| {
        let (secret, duration) = collection.token_config(config);
        let mut claims = BTreeMap::new();
        claims.insert(
            "collectionId".to_string(),
            Value::from(collection.id.clone()),
        );
        claims.insert("email".to_string(), Value::from(email));
        claims.insert("id".to_string(), Value::from(record_id));
        claims.insert("type".to_string(), Value::from(kind));
        for (k, v) in extra {
            claims.insert(k.to_string(), Value::from(*v));
        }
        templates::new_token(claims, &format!("{token_key}{secret}"), duration)
    };
    let path: &[&str] = match template {
        "verification" => {
            let t = token("verificationToken", &[], "verification")?;
            placeholders.push(("{TOKEN}".into(), t));
            &["verificationTemplate"]
        }
        "password-reset" => {
            let t = token("passwordResetToken", &[], "passwordReset")?;
            placeholders.push(("{TOKEN}".into(), t));
            &["resetPasswordTemplate"]
        }
        "email-change" => {
            let t = token("emailChangeToken", &[("newEmail", email)], "emailChange")?;
            placeholders.push(("{TOKEN}".into(), t));
            &["confirmEmailChangeTemplate"]
        }
        "otp" => {
            placeholders.push(("{OTP_ID}".into(), "_PB_TEST_OTP_ID_".into()));
            placeholders.push(("{OTP}".into(), "123456".into()));
            &["otp", "emailTemplate"]
        }
        "login-alert" => {
            let info = format!(
                "{} - TEST_IP TEST_USER_AGENT",
                pocketbun_storage::time::now_datetime()
            );
            placeholders.push(("{ALERT_INFO}".into(), templates::html_escape(&info)));
            &["authAlert", "emailTemplate"]
        }
        other => return Err(format!("unknown template {other}")),
    };
    placeholders.push(("{APP_NAME}".into(), settings.meta.app_name.clone()));
    placeholders.push(("{APP_URL}".into(), settings.meta.app_url.clone()));
    for (name, kind, hidden) in &collection.fields {
        if *hidden {
            continue;
        }
        let value = match kind.as_str() {
            "email" if name == "email" => email.to_string(),
            "bool" => "false".to_string(),
            "number" => "0".to_string(),
            "date" | "autodate" => String::new(),
            _ if name == "id" => record_id.to_string(),
            _ => format!("__pb_test_{name}__"),
        };
        let escaped = match kind.as_str() {
            "autodate" | "date" | "bool" | "number" => value,
            _ => templates::html_escape(&value),
        };
        placeholders.push((format!("{{RECORD:{name}}}"), escaped));
    }
    let (subject, body) = collection.template(path);
    let (subject, html) = templates::render(&subject, &body, &placeholders);
    Ok(Message::from_app(settings, email, subject, html))
}

// ---------------------------------------------------------------------------------------------
// apple/generate-client-secret

#[derive(Default)]
struct AppleSecretForm {
    client_id: String,
    team_id: String,
    key_id: String,
    private_key: String,
    duration: i64,
}
bind_fields!(AppleSecretForm {
    "clientId" => client_id,
    "teamId" => team_id,
    "keyId" => key_id,
    "privateKey" => private_key,
    "duration" => duration,
});

/// Longest allowed client secret lifetime (about 6 months, Apple's limit), in seconds.
const APPLE_MAX_DURATION: i64 = 15_777_000;

async fn apple_client_secret(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let mut form = AppleSecretForm::default();
    bind_body(&req, &mut form)?;

    static PEM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?m)-----BEGIN PRIVATE KEY----[\s\S]+-----END PRIVATE KEY-----")
            .unwrap()
    });
    let mut errs = FieldErrors::new();
    let checks: [(&str, rules::Check); 5] = [
        ("clientId", rules::required_str(&form.client_id)),
        (
            "teamId",
            rules::required_str(&form.team_id).and_then(|()| rules::length(&form.team_id, 10, 10)),
        ),
        (
            "keyId",
            rules::required_str(&form.key_id).and_then(|()| rules::length(&form.key_id, 10, 10)),
        ),
        (
            "privateKey",
            rules::required_str(&form.private_key)
                .and_then(|()| rules::matches(&form.private_key, &PEM)),
        ),
        (
            "duration",
            rules::required_int(form.duration)
                .and_then(|()| rules::min(form.duration, 1))
                .and_then(|()| rules::max(form.duration, APPLE_MAX_DURATION)),
        ),
    ];
    for (key, check) in checks {
        if let Err(e) = check {
            errs.add(key, e);
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation("Invalid client secret data.", &errs));
    }
    let secret =
        apple_secret(&form).map_err(|e| raw_error("Failed to generate client secret.", &e))?;
    let mut body = serde_json::Map::new();
    body.insert("secret".into(), secret.into());
    Ok(json_response(200, &body))
}

/// The ES256 JWT Apple accepts as an OAuth2 client secret.
fn apple_secret(form: &AppleSecretForm) -> Result<String, String> {
    use base64::Engine as _;
    const NOT_EC: &str = "key is not a valid ECDSA private key";
    let pem = form.private_key.trim();
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let start = pem
        .find(begin)
        .ok_or("invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key")?;
    let stop = pem[start..]
        .find(end)
        .ok_or("invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key")?;
    let b64: String = pem[start + begin.len()..start + stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        // no cause: PocketBase's fixed text is the answer, whatever base64 found
        .map_err(|_| "invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key".to_string())?;
    let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);

    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'a str,
        kid: &'a str,
        typ: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: [&'a str; 1],
        exp: i64,
        iat: i64,
    }
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = serde_json::to_vec(&Header {
        alg: "ES256",
        kid: &form.key_id,
        typ: "JWT",
    })
    .map_err(|e| e.to_string())?;
    let claims = serde_json::to_vec(&Claims {
        iss: &form.team_id,
        sub: &form.client_id,
        aud: ["https://appleid.apple.com"],
        exp: now + form.duration,
        iat: now,
    })
    .map_err(|e| e.to_string())?;
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::ES256,
    )
    // no cause: PocketBase's fixed text is the answer, whatever the signer found
    .map_err(|_| NOT_EC.to_string())?;
    Ok(format!("{signing_input}.{signature}"))
}

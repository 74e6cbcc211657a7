//! `/api/backups`: list, create, upload, download (superuser file token), delete and restore
//! the `pb_data` backups.

use crate::backups;
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult, FieldError, FieldErrors};
use pocketbun_http::{Method, Request, Response};
use pocketbun_storage::files::Fs;
use serde::Serialize;
use std::io::Read;
use std::rc::Rc;
use std::sync::OnceLock;

pub fn register(routes: &mut Routes) {
    routes.add(Method::Get, "/api/backups", |c, r| Box::pin(list(c, r)));
    routes.add(Method::Post, "/api/backups", |c, r| Box::pin(create(c, r)));
    // uploads have no body limit, as in PocketBase
    routes.add_with_limit(
        Method::Post,
        "/api/backups/upload",
        Some(usize::MAX),
        |c, r| Box::pin(upload(c, r)),
    );
    routes.add(Method::Get, "/api/backups/{key}", |c, r| {
        Box::pin(download(c, r))
    });
    routes.add(Method::Delete, "/api/backups/{key}", |c, r| {
        Box::pin(delete(c, r))
    });
    routes.add(Method::Post, "/api/backups/{key}/restore", |c, r| {
        Box::pin(restore(c, r))
    });
}

#[derive(Serialize)]
struct BackupInfo {
    modified: String,
    key: String,
    size: u64,
}

async fn list(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let dir = ctx.shared.store.dir().to_path_buf();
    let files = match backups::backups_fs(&ctx.shared) {
        Ok(Fs::Local(_)) => backups::list(&dir).map_err(|e| e.to_string()),
        Ok(Fs::S3(bucket)) => bucket
            .list("")
            .await
            .map(|l| l.into_iter().filter_map(backups::from_entry).collect())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let files = files.map_err(|e| {
        ApiError::bad_request(Some(&format!(
            "Failed to retrieve backup items. Raw error: \n{e}"
        )))
    })?;
    let items: Vec<BackupInfo> = files
        .into_iter()
        .map(|f| BackupInfo {
            modified: pocketbun_storage::time::format_unix_millis(f.modified_ms),
            key: f.key,
            size: f.size,
        })
        .collect();
    Ok(json_response(200, &items))
}

fn name_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^[a-z0-9_-]+\.zip$").expect("valid regex"))
}

async fn create(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    if ctx.shared.backup_slot.active().is_some() {
        return Err(ApiError::bad_request(Some(
            "Try again later - another backup/restore process has already been started",
        )));
    }
    let name = match body_json(&req)? {
        serde_json::Value::Object(o) => match o.get("name") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(load_failed()),
        },
        _ => return Err(load_failed()),
    };
    if !name.is_empty() {
        let mut errors = FieldErrors::new();
        let len = name.chars().count();
        if !(1..=150).contains(&len) {
            errors.add(
                "name",
                FieldError::new(
                    "validation_length_out_of_range",
                    "the length must be between 1 and 150",
                )
                .param("min", 1)
                .param("max", 150),
            );
        } else if !name_regex().is_match(&name) {
            errors.add(
                "name",
                FieldError::new("validation_match_invalid", "must be in a valid format"),
            );
        } else if exists(&ctx, &name).await {
            errors.add(
                "name",
                FieldError::new(
                    "validation_backup_name_exists",
                    "The backup file name is invalid or already exists.",
                ),
            );
        }
        errors.checked()?;
    }
    let shared = ctx.shared.clone();
    let outcome = ctx
        .shared
        .cpu
        .run(move || {
            let name = if name.is_empty() {
                backups::generate_name(&shared.settings.get().meta.app_name, "pb_backup_")
            } else {
                name
            };
            backups::create(&shared, &name)
        })
        .await
        .unwrap_or_else(|_| Err("the backup task was cancelled".into()));
    outcome.map_err(|e| ApiError::bad_request(Some("Failed to create backup.")).caused_by(e))?;
    Ok(Response::new(204))
}

fn load_failed() -> ApiError {
    ApiError::bad_request(Some("An error occurred while loading the submitted data."))
}

/// The JSON body (an empty body is an empty object).
fn body_json(req: &Request) -> Result<serde_json::Value, ApiError> {
    let empty = || serde_json::Value::Object(Default::default());
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(empty());
    }
    let ct = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.is_empty() && !ct.starts_with("application/json") {
        // form bodies carry no name PocketBun understands here: same as an empty body
        return Ok(serde_json::Value::Object(Default::default()));
    }
    Ok(crate::apis::body::json(req)?.unwrap_or_else(empty))
}

async fn upload(ctx: Rc<AppCtx>, mut req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let dir = ctx.shared.store.dir().to_path_buf();
    let mut errors = FieldErrors::new();
    let file = multipart_file(&ctx, &mut req, "file").await;
    match &file {
        None => errors.add(
            "file",
            FieldError::new("validation_required", "cannot be blank"),
        ),
        Some((name, bytes)) => {
            let is_zip = bytes.starts_with(b"PK\x03\x04")
                || bytes.starts_with(b"PK\x05\x06")
                || bytes.starts_with(b"PK\x07\x08");
            if !is_zip {
                errors.add(
                    "file",
                    FieldError::new(
                        "validation_invalid_mime_type",
                        format!("{name:?} mime type must be one of: application/zip."),
                    ),
                );
            } else if !backups::valid_key(name) || exists(&ctx, name).await {
                errors.add(
                    "file",
                    FieldError::new(
                        "validation_backup_name_exists",
                        "Backup file with the specified name already exists.",
                    ),
                );
            }
        }
    }
    errors.checked()?;
    let (name, bytes) = file.unwrap_or_default();
    if let Ok(Fs::S3(bucket)) = backups::backups_fs(&ctx.shared) {
        let meta = [("original-filename", name.as_str())];
        return match bucket.put(&name, bytes, "application/zip", &meta).await {
            Ok(()) => Ok(Response::new(204)),
            Err(_) => Err(ApiError::bad_request(Some("Failed to upload backup."))),
        };
    }
    let stored = ctx
        .shared
        .cpu
        .run(move || backups::store_upload(&dir, &name, &bytes))
        .await;
    match stored {
        Ok(Ok(())) => Ok(Response::new(204)),
        _ => Err(ApiError::bad_request(Some("Failed to upload backup."))),
    }
}

/// The first uploaded file of form field `field` of a `multipart/form-data` body, as
/// (file name without any folder, content). Parsed on the CPU pool: an upload has no body
/// limit, and splitting a backup of gigabytes would hold the worker for seconds.
/// The body is moved out of `req`, not copied.
async fn multipart_file(
    ctx: &AppCtx,
    req: &mut Request,
    field: &'static str,
) -> Option<(String, Vec<u8>)> {
    let ct = req.header("content-type")?.to_string();
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    let body = std::mem::take(&mut req.body);
    let parts = ctx
        .shared
        .cpu
        .run(move || crate::apis::multipart::parts(&ct, &body))
        .await
        .ok()?
        .ok()?;
    parts.into_iter().find_map(|part| {
        let file_name = part.file_name.filter(|_| part.name == field)?;
        let base = file_name
            .rsplit('/')
            .next()
            .unwrap_or(&file_name)
            .to_string();
        Some((base, part.data.to_vec()))
    })
}

/// Whether backup `key` exists where backups live now.
async fn exists(ctx: &AppCtx, key: &str) -> bool {
    match backups::backups_fs(&ctx.shared) {
        Ok(Fs::Local(_)) => backups::find(ctx.shared.store.dir(), key).is_some(),
        Ok(Fs::S3(bucket)) => backups::valid_key(key) && bucket.exists(key).await.unwrap_or(false),
        Err(_) => false,
    }
}

fn insufficient() -> ApiError {
    ApiError::forbidden(Some("Insufficient permissions to access the resource."))
}

async fn download(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let token = crate::apis::search::query_value(req.query(), "token").unwrap_or_default();
    let auth = backups::token::verify_file_token(&ctx.reader, &ctx.verified, &token);
    if !auth.is_some_and(|a| a.is_superuser()) {
        return Err(insufficient());
    }
    let settings = ctx.shared.settings.get();
    if !settings.superuser_ips.is_empty() {
        let ip = crate::apis::extract::client_ip(&settings.trusted_proxy, &req);
        if !crate::client_ip::ip_in_list(&settings.superuser_ips, &ip) {
            return Err(insufficient());
        }
    }
    let key = req.param("key").unwrap_or_default().to_string();
    let (body, size, modified) = match backups::backups_fs(&ctx.shared) {
        Ok(Fs::S3(bucket)) if backups::valid_key(&key) => {
            let attrs = bucket
                .attributes(&key)
                .await
                .map_err(|e| ApiError::not_found(None).caused_by(e))?;
            let chunks = bucket.stream(&key, None);
            let stream = futures_util::stream::unfold(chunks, |mut rx| async move {
                match std::future::poll_fn(|cx| rx.poll_recv(cx)).await {
                    Some(Ok(chunk)) => Some((chunk, rx)),
                    _ => None,
                }
            });
            let modified = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(attrs.modified_ms.max(0) as u64);
            let body: pocketbun_http::BodyStream = Box::pin(stream);
            (body, attrs.size, Some(modified))
        }
        Ok(Fs::Local(_)) => {
            let dir = ctx.shared.store.dir().to_path_buf();
            let Some(path) = backups::find(&dir, &key) else {
                return Err(ApiError::not_found(None));
            };
            let file =
                std::fs::File::open(&path).map_err(|e| ApiError::not_found(None).caused_by(e))?;
            let meta = file
                .metadata()
                .map_err(|e| ApiError::not_found(None).caused_by(e))?;
            let stream = futures_util::stream::unfold(Some(file), |state| async move {
                let mut file = state?;
                let mut chunk = vec![0u8; 256 * 1024];
                match file.read(&mut chunk) {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        chunk.truncate(n);
                        Some((chunk, Some(file)))
                    }
                }
            });
            let body: pocketbun_http::BodyStream = Box::pin(stream);
            (body, meta.len(), meta.modified().ok())
        }
        _ => return Err(ApiError::not_found(None)),
    };
    let mut resp = Response::new(200);
    resp.body = pocketbun_http::Body::SizedStream(body, size);
    let name = key.rsplit('/').next().unwrap_or(&key).to_string();
    resp.set_header("Content-Type", "application/zip");
    resp.set_header(
        "Content-Disposition",
        format!(
            "attachment; filename={}",
            crate::files::serve::quoted_filename(&name)
        ),
    );
    resp.set_header("Accept-Ranges", "bytes");
    resp.set_header(
        "Cache-Control",
        "max-age=2592000, stale-while-revalidate=86400",
    );
    resp.set_header(
        "Content-Security-Policy",
        "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox",
    );
    if let Some(modified) = modified.map(http_date) {
        resp.set_header("Last-Modified", modified);
    }
    Ok(resp)
}

/// An HTTP date (`Thu, 26 Nov 2026 18:13:52 GMT`).
fn http_date(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

async fn delete(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    let key = req.param("key").unwrap_or_default().to_string();
    if !key.is_empty() && ctx.shared.backup_slot.active().as_deref() == Some(key.as_str()) {
        return Err(ApiError::bad_request(Some(
            "The backup is currently being used and cannot be deleted.",
        )));
    }
    let deleted = match backups::backups_fs(&ctx.shared) {
        Ok(Fs::S3(bucket)) if backups::valid_key(&key) => {
            // a bucket deletes missing keys without complaint: look first, as PocketBase does
            match bucket.attributes(&key).await {
                Ok(_) => bucket.delete(&key).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Ok(Fs::S3(_)) => Err("invalid key".to_string()),
        Ok(Fs::Local(_)) => {
            backups::delete(ctx.shared.store.dir(), &key).map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    deleted.map_err(|e| {
        ApiError::bad_request(Some(&format!(
            "Invalid or already deleted backup file. Raw error: \n[key: {key}] {e}"
        )))
    })?;
    Ok(Response::new(204))
}

async fn restore(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    ctx.require_superuser(&req)?;
    if ctx.shared.backup_slot.active().is_some() {
        return Err(ApiError::bad_request(Some(
            "Try again later - another backup/restore process has already been started.",
        )));
    }
    let key = req.param("key").unwrap_or_default().to_string();
    if !exists(&ctx, &key).await {
        return Err(ApiError::bad_request(Some(
            "Missing or invalid backup file.",
        )));
    }
    let shared = ctx.shared.clone();
    let spawned = std::thread::Builder::new()
        .name("pocketbun-restore".into())
        .spawn(move || {
            // let the answer reach the client before the process restarts
            std::thread::sleep(std::time::Duration::from_secs(1));
            if let Err(e) = backups::restore(&shared, &key) {
                let mut data = serde_json::Map::new();
                data.insert("key".into(), key.into());
                data.insert("error".into(), e.clone().into());
                shared.logs.log(
                    &shared.settings.get(),
                    crate::logs::LEVEL_ERROR,
                    "Failed to restore backup",
                    data,
                );
                eprintln!("Error: failed to restore backup: {e}");
            }
        });
    spawned.map_err(|e| ApiError::internal().caused_by(e))?;
    Ok(Response::new(204))
}

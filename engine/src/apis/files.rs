//! `/api/files`: short-lived file tokens for protected files, and record file downloads
//! (thumbs, ranges, conditional requests) as PocketBase serves them.

use crate::apis::auth_flow::{self as flow, Loaded};
use crate::apis::extract::{collection, CollectionOf};
use crate::auth::token;
use crate::ctx::{AppCtx, Routes};
use crate::error::{json_response, ApiError, ApiResult};
use crate::files::{self, serve, thumbs};
use crate::go::{query_get, query_pairs};
use crate::records::access;
use crate::schema::SchemaPair;
use pocketbun_http::{Method, Request};
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::files::{Fs, S3Fs};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// `@request.context` of a protected file's access check.
const CONTEXT_PROTECTED_FILE: &str = "protectedFile";

pub fn register(routes: &mut Routes) {
    routes.add(Method::Post, "/api/files/token", |c, r| {
        Box::pin(file_token(c, r))
    });
    routes
        .add(
            Method::Get,
            "/api/files/{collection}/{recordId}/{filename}",
            |c, r| Box::pin(download(c, r)),
        )
        .collection_limit(&["file"]);
}

async fn file_token(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let unauthorized = || {
        ApiError::unauthorized(Some(
            "The request requires valid record authorization token.",
        ))
    };
    let auth = ctx.auth(&req).ok_or_else(unauthorized)?;
    let schema = ctx.shared.schema.get();
    let coll = schema
        .collections
        .by_id(&auth.collection_id)
        .cloned()
        .ok_or_else(unauthorized)?;
    let loaded = flow::find_by_id(&ctx, &coll, &auth.id)?.ok_or_else(unauthorized)?;
    let token = flow::record_token(&loaded, token::TYPE_FILE, &[], 0)
        .map_err(|e| ApiError::new(500, "Failed to generate file token.").caused_by(e))?;
    let mut body = Map::new();
    body.insert("token".into(), Value::String(token));
    Ok(json_response(200, &body))
}

/// The file field of `rec` that lists `filename`, as `(name, protected, thumbs)`.
fn file_field<'a>(
    loaded: &'a Loaded,
    filename: &str,
) -> Option<&'a pocketbun_storage::collections::Field> {
    let rec = loaded.rec();
    rec.coll.fields.iter().find(|f| {
        matches!(f.kind, FieldKind::File { .. })
            && rec
                .value(&f.name)
                .is_some_and(|v| stored_names(&v.as_text()).iter().any(|n| n == filename))
    })
}

/// The file names of a stored file field value (one name, or a JSON array of names).
fn stored_names(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.starts_with('[') {
        serde_json::from_str::<Vec<Value>>(raw)
            .map(|l| {
                l.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    } else if raw.is_empty() {
        Vec::new()
    } else {
        vec![raw.to_string()]
    }
}

/// Whether the caller may download a protected file of `loaded`: the collection's view rule,
/// evaluated for the auth record of the `?token=` file token (not the `Authorization` header).
fn may_view_protected(
    ctx: &AppCtx,
    schema: &SchemaPair,
    req: &Request,
    query: &[(String, String)],
    loaded: &Loaded,
) -> Result<bool, ApiError> {
    let file_auth = flow::record_of_token(ctx, query_get(query, "token"), token::TYPE_FILE)
        .ok()
        .map(|(rec, _)| rec)
        .filter(|rec| {
            // a superuser file token only counts from an allowed IP
            let settings = ctx.shared.settings.get();
            rec.coll().name != token::SUPERUSERS
                || settings.superuser_ips.is_empty()
                || crate::client_ip::ip_in_list(
                    &settings.superuser_ips,
                    &crate::apis::extract::client_ip(&settings.trusted_proxy, req),
                )
        });
    let mut caller = crate::apis::caller::caller(ctx, schema, req, query)?;
    caller.info.context = CONTEXT_PROTECTED_FILE.into();
    caller.info.superuser = false;
    caller.info.auth = None;
    if let Some(rec) = &file_auth {
        let auth = crate::auth::AuthRecord {
            id: rec.id(),
            collection_id: rec.coll().id.clone(),
            collection_name: rec.coll().name.clone(),
        };
        caller.info.superuser = auth.is_superuser();
        caller.info.auth = Some(access::load_auth_info(ctx, schema, &auth)?);
    }
    let rule = loaded.coll().view_rule.clone();
    flow::can_access(ctx, schema, &caller.info, loaded, rule.as_deref())
}

/// The folder holding the files of a view record's `field`: the one of the record the view
/// row takes `filename` from (following views of views, at most 5 levels).
fn view_file_dir(
    ctx: &AppCtx,
    schema: &SchemaPair,
    view: &Arc<Collection>,
    field: &str,
    filename: &str,
) -> Option<PathBuf> {
    let mut view = view.clone();
    let mut field = field.to_string();
    for _ in 0..5 {
        let (table, column) =
            pocketbun_storage::collections::view::view_column_source(&view.view_query, &field)?;
        let source = schema.collections.by_name(&table)?.clone();
        let original = source
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(&column))?;
        if source.is_view() {
            field = original.name.clone();
            view = source;
            continue;
        }
        let FieldKind::File { max_select, .. } = original.kind else {
            return None;
        };
        let id: Option<String> = ctx
            .reader
            .read(|conn| {
                Ok(crate::recstore::rows::id_by_file(
                    conn,
                    &source.name,
                    &original.name,
                    max_select > 1,
                    filename,
                )?)
            })
            .ok()?;
        return Some(files::record_dir(ctx.shared.store.dir(), &source.id, &id?));
    }
    None
}

async fn download(ctx: Rc<AppCtx>, req: Request) -> ApiResult {
    let not_found = || ApiError::not_found(None);
    let schema = ctx.shared.schema.get();
    // (resolved first by PocketBase's collection rate-limit middleware)
    let coll = collection(&schema, &req, CollectionOf::Files)?;
    let record_id = req.param("recordId").unwrap_or_default();
    let filename = req.param("filename").unwrap_or_default().to_string();
    if !files::safe_segment(record_id) || !files::safe_segment(&filename) {
        return Err(not_found());
    }
    let loaded = flow::find_by_id(&ctx, &coll, record_id)?.ok_or_else(not_found)?;
    let field = file_field(&loaded, &filename).ok_or_else(not_found)?;
    let FieldKind::File {
        protected,
        thumbs: field_thumbs,
        ..
    } = &field.kind
    else {
        return Err(not_found());
    };
    let query = query_pairs(req.query());
    if *protected && !may_view_protected(&ctx, &schema, &req, &query, &loaded)? {
        return Err(not_found());
    }
    let dir = if coll.is_view() {
        view_file_dir(&ctx, &schema, &coll, &field.name, &filename).ok_or_else(not_found)?
    } else {
        files::record_dir(ctx.shared.store.dir(), &coll.id, &loaded.id())
    };
    let thumb = query_get(&query, "thumb");
    let force_attachment = serve::parse_bool(query_get(&query, "download")).unwrap_or(false);
    if let Fs::S3(fs) = ctx
        .shared
        .record_fs()
        .map_err(|e| not_found().caused_by(e))?
    {
        let prefix = ctx.shared.dir_key(&dir).ok_or_else(not_found)?;
        let wanted = S3Download {
            prefix,
            filename: &filename,
            thumb: (!thumb.is_empty() && thumbs::allowed(thumb, field_thumbs.as_deref()))
                .then_some(thumb),
            force_attachment,
        };
        return download_s3(&ctx, &req, fs, wanted).await;
    }
    let original = dir.join(&filename);
    let mut served_path = original.clone();
    let mut served_name = filename.clone();

    if !thumb.is_empty() && thumbs::allowed(thumb, field_thumbs.as_deref()) {
        if std::fs::metadata(&original).is_err() {
            return Err(not_found());
        }
        let ctype = files::content_type(&original).map_err(|e| not_found().caused_by(e))?;
        if thumbs::IMAGE_TYPES.contains(&ctype.as_str()) {
            let name = format!("{thumb}_{filename}");
            let path = dir.join(format!("thumbs_{filename}")).join(&name);
            let ready = path.exists()
                || match thumbs::ensure(
                    &ctx.shared.cpu,
                    &ctx.shared.files.thumbs,
                    original.clone(),
                    path.clone(),
                    thumb.to_string(),
                    ctype,
                )
                .await
                {
                    Ok(()) => true,
                    Err(e) => {
                        let mut data = Map::new();
                        data.insert("error".into(), e.into());
                        data.insert(
                            "original".into(),
                            original.to_string_lossy().into_owned().into(),
                        );
                        data.insert("thumb".into(), path.to_string_lossy().into_owned().into());
                        ctx.shared.logs.log(
                            &ctx.shared.settings.get(),
                            crate::logs::LEVEL_WARN,
                            &format!("Fallback to original - failed to create thumb {name}"),
                            data,
                        );
                        false
                    }
                };
            if ready {
                served_path = path;
                served_name = name;
            }
        }
    }

    let file = std::fs::File::open(&served_path).map_err(|e| not_found().caused_by(e))?;
    let meta = file.metadata().map_err(|e| not_found().caused_by(e))?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let content_type = files::content_type(&served_path).map_err(|e| not_found().caused_by(e))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let key = served_path.to_string_lossy().into_owned();
    let mut resp = serve::respond(
        &crate::apis::extract::conditional(&req),
        serve::Served {
            source: serve::Source::Local(file),
            size: meta.len(),
            modified,
            name: &served_name,
            key: &key,
            content_type: &content_type,
            force_attachment,
        },
    );
    // served files may be embedded in frames
    crate::apis::answer::allow_framing(&mut resp);
    Ok(resp)
}

/// What a download from the S3 bucket asks for.
struct S3Download<'a> {
    /// The record folder's key (`<collectionId>/<recordId>`).
    prefix: String,
    filename: &'a str,
    /// An allowed `?thumb=` size.
    thumb: Option<&'a str>,
    force_attachment: bool,
}

/// A record file (or its thumb, made on first request and kept in the bucket under
/// PocketBase's key) served from the S3 bucket.
async fn download_s3(ctx: &AppCtx, req: &Request, fs: S3Fs, d: S3Download<'_>) -> ApiResult {
    let not_found = || ApiError::not_found(None);
    let original = format!("{}/{}", d.prefix, d.filename);
    let mut attrs = fs
        .attributes(&original)
        .await
        .map_err(|e| not_found().caused_by(e))?;
    let mut served_key = original.clone();
    let mut served_name = d.filename.to_string();
    if let Some(size) = d.thumb {
        if thumbs::IMAGE_TYPES.contains(&attrs.content_type.as_str()) {
            let name = format!("{size}_{}", d.filename);
            let key = format!("{}/thumbs_{}/{name}", d.prefix, d.filename);
            let made = thumbs::ensure_s3(
                &ctx.shared.cpu,
                &ctx.shared.files.thumbs,
                fs.clone(),
                original.clone(),
                key.clone(),
                size.to_string(),
                attrs.content_type.clone(),
            )
            .await;
            let thumb_attrs = match made {
                Ok(()) => fs.attributes(&key).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match thumb_attrs {
                Ok(a) => {
                    attrs = a;
                    served_key = key;
                    served_name = name;
                }
                Err(e) => {
                    let mut data = Map::new();
                    data.insert("error".into(), e.into());
                    data.insert("original".into(), original.clone().into());
                    data.insert("thumb".into(), key.into());
                    ctx.shared.logs.log(
                        &ctx.shared.settings.get(),
                        crate::logs::LEVEL_WARN,
                        &format!("Fallback to original - failed to create thumb {name}"),
                        data,
                    );
                }
            }
        }
    }
    let mut resp = serve::respond(
        &crate::apis::extract::conditional(req),
        serve::Served {
            size: attrs.size,
            modified: attrs.modified_ms / 1000,
            name: &served_name,
            key: &served_key,
            content_type: &attrs.content_type,
            force_attachment: d.force_attachment,
            source: serve::Source::S3(fs, served_key.clone()),
        },
    );
    crate::apis::answer::allow_framing(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_file_names() {
        assert_eq!(stored_names(""), Vec::<String>::new());
        assert_eq!(stored_names("a.png"), vec!["a.png"]);
        assert_eq!(
            stored_names("[\"a.png\",\"b.txt\"]"),
            vec!["a.png", "b.txt"]
        );
        assert_eq!(stored_names("[]"), Vec::<String>::new());
    }
}

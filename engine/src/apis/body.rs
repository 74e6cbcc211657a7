//! Request body binding shared by the APIs, as PocketBase's `BindBody` does it: JSON,
//! urlencoded and multipart forms (with their `@jsonPayload` values), and the uploaded files of
//! multipart bodies.

use crate::ctx::AppCtx;
use crate::error::ApiError;
pub use crate::offload::OFFLOAD_PARSE_BYTES;
use crate::records::input::{RecordBody, Upload};
use pocketbun_http::Request;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub const LOAD_FAILED: &str = "An error occurred while loading the submitted data.";

/// A request body that could not be bound, with why if known. PocketBase answers every such
/// body with a 400 (declared here, once); the message is the endpoint's: [`LOAD_FAILED`]
/// unless it words its own ([`Unbound::answer`]).
#[derive(Debug, Default)]
pub struct Unbound(Option<crate::error::Cause>);

impl Unbound {
    /// The 400 a body that could not be bound gets, with `message` (`None`: PocketBase's
    /// generic one).
    pub fn answer(self, message: Option<&str>) -> ApiError {
        self.behind(ApiError::bad_request(message))
    }

    /// `err` (the endpoint's own answer to a body it cannot bind), with this as its cause.
    pub fn behind(self, err: ApiError) -> ApiError {
        match self.0 {
            Some(cause) => ApiError {
                source: Some(cause),
                ..err
            },
            None => err,
        }
    }
}

/// Any error met while binding (JSON, multipart, a cancelled parse on the CPU pool) is kept
/// as the cause.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for Unbound {
    fn from(err: E) -> Self {
        Unbound(Some(std::sync::Arc::new(err)))
    }
}

impl From<Unbound> for ApiError {
    fn from(unbound: Unbound) -> Self {
        unbound.answer(Some(LOAD_FAILED))
    }
}

/// The JSON body of `req`: one strict JSON value spanning the whole body (a duplicate key,
/// invalid UTF-8 or trailing bytes are refused: `crate::json_strict`), `None` for an empty
/// or whitespace-only body.
pub fn json(req: &Request) -> Result<Option<Value>, Unbound> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(crate::json_strict::from_slice(&req.body)?))
}

/// What the request body asks to bind, in order. Like PocketBase: no body binds nothing, a
/// JSON body binds its first JSON value (trailing bytes are ignored; a duplicate key or
/// invalid UTF-8 is refused, as in 0.40: `crate::json_strict`), a urlencoded form binds
/// its `@jsonPayload` values; other content types are refused.
///
/// Plain (non-`@jsonPayload`) form fields and multipart bodies are not bound here (the
/// settings forms take neither); records use [`record_body`].
pub fn body_values(req: &Request) -> Result<Vec<Value>, ApiError> {
    if !has_body(req) {
        return Ok(Vec::new());
    }
    let ct = req.header("content-type").unwrap_or("");
    if ct.starts_with("application/json") {
        return match crate::json_strict::first_value(&req.body) {
            Some(Ok(v)) => Ok(vec![v]),
            Some(Err(e)) => Err(Unbound::from(e).into()),
            None => Err(Unbound::default().into()),
        };
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        // the URL query is parsed with the body (its refusal fails the binding) but not bound
        if query_refused(req.query()) {
            return Err(Unbound::default().into());
        }
        let mut out = Vec::new();
        for (key, value) in form_pairs(&req.body)? {
            if key == "@jsonPayload" {
                let v = crate::json_strict::from_slice(value.as_bytes()).map_err(Unbound::from)?;
                out.push(v);
            }
        }
        return Ok(out);
    }
    if ct.starts_with("multipart/form-data") {
        if query_refused(req.query()) {
            return Err(Unbound::default().into());
        }
        return Ok(Vec::new());
    }
    if is_xml(ct) {
        // PocketBase decodes XML into the form, whose fields have no XML names: a
        // well-formed document binds nothing, a broken one is a load failure
        return if xml_well_formed(&req.body) {
            Ok(Vec::new())
        } else {
            Err(Unbound::default().into())
        };
    }
    // a content type PocketBase does not bind
    Err(Unbound::default().into())
}

/// `application/xml` or `text/xml`, the XML types PocketBase binds.
pub fn is_xml(content_type: &str) -> bool {
    content_type.starts_with("application/xml") || content_type.starts_with("text/xml")
}

/// Whether `body` starts (after the prolog) with one whole, properly nested XML element, as
/// Go's `xml.Unmarshal` needs (bytes after that element are not read).
pub fn xml_well_formed(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let mut open: Vec<&str> = Vec::new();
    let mut pending: Option<&str> = None;
    for token in xmlparser::Tokenizer::from(text) {
        match token {
            Err(_) => return false,
            Ok(xmlparser::Token::ElementStart { local, .. }) => pending = Some(local.as_str()),
            Ok(xmlparser::Token::ElementEnd { end, .. }) => match end {
                xmlparser::ElementEnd::Open => open.extend(pending.take()),
                xmlparser::ElementEnd::Empty => {
                    pending = None;
                    if open.is_empty() {
                        return true;
                    }
                }
                xmlparser::ElementEnd::Close(_, local) => {
                    if open.pop() != Some(local.as_str()) {
                        return false;
                    }
                    if open.is_empty() {
                        return true;
                    }
                }
            },
            Ok(_) => {}
        }
    }
    false
}

fn has_body(req: &Request) -> bool {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    !req.body.is_empty() || chunked
}

/// The 400 of a record body that could not be read: PocketBase names a body of a type it
/// cannot bind; anything else is its generic 400.
pub fn body_error(req: &Request) -> crate::error::ApiError {
    let ct = req.header("content-type").unwrap_or("");
    let known = [
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "text/xml",
        "application/xml",
    ];
    if has_body(req) && !known.iter().any(|k| ct.starts_with(k)) {
        return crate::error::ApiError::bad_request(Some("Unsupported Content-Type."));
    }
    crate::error::ApiError::bad_request(None)
}

/// The pairs of a form body and of the URL query bound with it, as Go's `Request.ParseForm`
/// reads both: a `;`, a bad escape or too many parameters in either fails the binding
/// (PocketBase's 400, checked against 0.40.6), whatever the other pairs hold.
fn form_and_query_pairs(body: &[u8], query: &str) -> Result<Vec<(String, String)>, Unbound> {
    let mut pairs = form_pairs(body)?;
    pairs.extend(form_pairs(query.as_bytes())?);
    Ok(pairs)
}

/// The pairs of one urlencoded text (`Err`: Go's form parser refuses it).
fn form_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, Unbound> {
    let form = crate::go::parse_form(raw);
    if form.refused {
        return Err(Unbound::default());
    }
    Ok(form.pairs)
}

/// Go's `ParseForm` on a multipart request reads only the URL query (the parts are read
/// next): its refusal fails the binding too.
pub(crate) fn query_refused(query: &str) -> bool {
    !query.is_empty() && crate::go::parse_form(query.as_bytes()).refused
}

/// A form value as PocketBase infers it: `true`/`false`, numbers that print back the same,
/// otherwise the string.
pub fn infer_value(raw: &str) -> Value {
    match raw {
        "" => Value::String(String::new()),
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => {
            let b = raw.as_bytes()[0];
            if (b == b'-' || b.is_ascii_digit())
                && raw
                    .bytes()
                    .all(|c| c == b'-' || c == b'.' || c.is_ascii_digit())
            {
                if let Ok(f) = raw.parse::<f64>() {
                    if f.is_finite() && crate::go::format_float(f) == raw {
                        if let Some(n) = serde_json::Number::from_f64(f) {
                            return Value::Number(n);
                        }
                    }
                }
            }
            Value::String(raw.to_string())
        }
    }
}

/// Binds form pairs onto `data` as PocketBase's `UnmarshalRequestData` does: a key given
/// once is its inferred value, a repeated one an array; `@jsonPayload` values are merged last.
/// Linear in the number of pairs: keys are grouped through a hash index that keeps their
/// first-seen order (a search of the group list per pair took 12 s for 100k keys).
fn bind_form(pairs: Vec<(String, String)>, data: &mut Map<String, Value>) -> Result<(), Unbound> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        match index.get(&k) {
            Some(&i) => grouped[i].1.push(v),
            None => {
                index.insert(k.clone(), grouped.len());
                grouped.push((k, vec![v]));
            }
        }
    }
    let mut payloads = Vec::new();
    for (k, vs) in grouped {
        if k == "@jsonPayload" {
            payloads = vs;
            continue;
        }
        let v = if vs.len() == 1 {
            infer_value(&vs[0])
        } else {
            Value::Array(vs.iter().map(|s| infer_value(s)).collect())
        };
        data.insert(k, v);
    }
    for p in payloads {
        match crate::json_strict::from_slice(p.as_bytes())? {
            Value::Object(m) => data.extend(m),
            Value::Null => {}
            // a JSON payload that is no object: nothing to say but that
            _ => return Err(Unbound::default()),
        }
    }
    Ok(())
}

/// A JSON record body: its first value, an object or `null` (trailing bytes ignored).
pub(crate) fn json_record_data(body: &[u8]) -> Result<Map<String, Value>, Unbound> {
    match crate::json_strict::first_value(body) {
        Some(Ok(Value::Object(m))) => Ok(m),
        Some(Ok(Value::Null)) => Ok(Map::new()),
        Some(Err(e)) => Err(e.into()),
        // empty, or a value that is no object
        _ => Err(Unbound::default()),
    }
}

/// An urlencoded record body bound with the URL query's values.
pub(crate) fn form_record_data(body: &[u8], query: &str) -> Result<Map<String, Value>, Unbound> {
    let mut data = Map::new();
    bind_form(form_and_query_pairs(body, query)?, &mut data)?;
    Ok(data)
}

/// Parses a record request body (`Err`: PocketBase's bind failure). Form bodies also carry
/// the URL query values, as Go's `Request.Form` does. Big bodies of every kind are parsed on
/// the CPU pool ([`OFFLOAD_PARSE_BYTES`]).
pub async fn record_body(ctx: &AppCtx, req: &Request) -> Result<RecordBody, Unbound> {
    let mut out = RecordBody::default();
    if !has_body(req) {
        return Ok(out);
    }
    let ct = req.header("content-type").unwrap_or("");
    let json = ct.starts_with("application/json");
    let form = ct.starts_with("application/x-www-form-urlencoded");
    if (json || form) && req.body.len() > OFFLOAD_PARSE_BYTES {
        let body = req.body.clone();
        let query = req.query().to_string();
        out.data = ctx
            .shared
            .cpu
            .run(move || {
                if json {
                    json_record_data(&body)
                } else {
                    form_record_data(&body, &query)
                }
            })
            .await??;
        return Ok(out);
    }
    if json {
        out.data = json_record_data(&req.body)?;
        return Ok(out);
    }
    if form {
        out.data = form_record_data(&req.body, req.query())?;
        return Ok(out);
    }
    if ct.starts_with("multipart/form-data") {
        if req.body.len() <= OFFLOAD_PARSE_BYTES {
            return multipart_record_body(ct, &req.body, req.query());
        }
        // on the pool (64 MiB in 1,000 parts: the worker's longest turn went from 111 to 27 ms
        // of CPU, debug build)
        let (ct, body, query) = (ct.to_string(), req.body.clone(), req.query().to_string());
        return ctx
            .shared
            .cpu
            .run(move || multipart_record_body(&ct, &body, &query))
            .await?;
    }
    // a content type PocketBase does not bind
    Err(Unbound::default())
}

/// A multipart record body: its files and its fields bound with the URL query's values.
pub(crate) fn multipart_record_body(
    ct: &str,
    body: &[u8],
    query: &str,
) -> Result<RecordBody, Unbound> {
    let mut out = RecordBody::default();
    let mut pairs = Vec::new();
    for part in crate::apis::multipart::parts(ct, body)? {
        match part.file_name {
            Some(original_name) => out.uploads.push(Upload {
                key: part.name,
                original_name,
                data: part.data.to_vec(),
                sniffed: None,
            }),
            // an empty `filename=""` is no file (the parser's rule, Go's): a plain value,
            // which PocketBase 0.40 then refuses as an invalid new file
            None => {
                let text = String::from_utf8_lossy(&part.data).into_owned();
                pairs.push((part.name, text));
            }
        }
    }
    // form bodies also read the URL query, whose refusal then fails the request
    pairs.extend(form_pairs(query.as_bytes())?);
    bind_form(pairs, &mut out.data)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_inferred_like_pocketbase() {
        assert_eq!(infer_value("true"), Value::Bool(true));
        assert_eq!(infer_value("12"), serde_json::json!(12.0));
        assert_eq!(infer_value("-1.5"), serde_json::json!(-1.5));
        assert_eq!(infer_value("01"), Value::String("01".into()));
        assert_eq!(infer_value("1.0"), Value::String("1.0".into()));
        assert_eq!(infer_value("abc"), Value::String("abc".into()));
    }
}

//! PocketBase's error envelope, `{"data":{...},"message":"...","status":N}`, and the one mapping
//! from internal failures to it.

use pocketbun_http::{HttpError, HttpErrorKind, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What caused an [`ApiError`], kept for the log and `Error::source`, never sent.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// An API failure as the client sees it, with the internal failure behind it if any.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub data: Map<String, Value>,
    /// The internal error this answer stands for (a storage failure behind a 500 …); the
    /// client sees only the envelope, `--dev` prints the cause.
    pub source: Option<Cause>,
}

/// The envelope, with its keys in the order PocketBase writes them.
#[derive(Serialize)]
struct Envelope<'a> {
    data: &'a Map<String, Value>,
    message: &'a str,
    status: u16,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            data: Map::new(),
            source: None,
        }
    }

    /// The same answer, keeping `cause` as its source.
    pub fn caused_by(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(Arc::from(cause.into()));
        self
    }

    pub fn not_found(message: Option<&str>) -> Self {
        ApiError::new(
            404,
            message.unwrap_or("The requested resource wasn't found."),
        )
    }

    pub fn bad_request(message: Option<&str>) -> Self {
        ApiError::new(
            400,
            message.unwrap_or("Something went wrong while processing your request."),
        )
    }

    pub fn forbidden(message: Option<&str>) -> Self {
        ApiError::new(
            403,
            message.unwrap_or("You are not allowed to perform this request."),
        )
    }

    pub fn unauthorized(message: Option<&str>) -> Self {
        ApiError::new(401, message.unwrap_or("Missing or invalid authentication."))
    }

    pub fn internal() -> Self {
        ApiError::new(500, "Something went wrong while processing your request.")
    }

    pub fn too_large() -> Self {
        ApiError::new(413, "Request entity too large.")
    }

    /// A 400 whose `data` holds per-field validation errors.
    pub fn validation(message: &str, errors: &FieldErrors) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            data: errors.to_data(),
            source: None,
        }
    }

    pub fn into_response(self) -> Response {
        json_response(
            self.status,
            &Envelope {
                data: &self.data,
                message: &self.message,
                status: self.status,
            },
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A storage failure the handler cannot answer otherwise: PocketBase's generic 500, cause kept.
impl From<pocketbun_storage::StorageError> for ApiError {
    fn from(err: pocketbun_storage::StorageError) -> Self {
        ApiError::internal().caused_by(err)
    }
}

impl From<pocketbun_storage::rusqlite::Error> for ApiError {
    fn from(err: pocketbun_storage::rusqlite::Error) -> Self {
        ApiError::internal().caused_by(err)
    }
}

/// A response that could not be encoded.
impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> Self {
        ApiError::internal().caused_by(err)
    }
}

/// Work handed to the CPU pool that never answered (the pool shut down or the task panicked).
impl From<crate::offload::Canceled> for ApiError {
    fn from(err: crate::offload::Canceled) -> Self {
        ApiError::internal().caused_by(err)
    }
}

impl From<&HttpError> for ApiError {
    fn from(err: &HttpError) -> Self {
        match err.kind {
            HttpErrorKind::BodyTooLarge => ApiError::too_large(),
            HttpErrorKind::HandlerPanic => ApiError::internal(),
            _ => ApiError::new(err.status(), err.to_string()),
        }
    }
}

/// One failed validation rule of a field: `{"code","message","params"?}` in the envelope's data.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: String,
    /// Raw message; it is sentence-cased and given a final period on output, as PocketBase does.
    pub message: String,
    pub params: BTreeMap<String, Value>,
}

impl FieldError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            code: code.into(),
            message: message.into(),
            params: BTreeMap::new(),
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorNode {
    Field(FieldError),
    Nested(FieldErrors),
}

/// Validation errors keyed by field name (or list index), nested like the validated data.
/// Keys come out sorted, as PocketBase's (Go map) serialization has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(pub BTreeMap<String, FieldErrorNode>);

/// PocketBase's message for submitted data that fails its checks.
pub const VALIDATE_FAILED: &str = "An error occurred while validating the submitted data.";

impl FieldErrors {
    /// `Ok` when there is no error, else PocketBase's 400 for submitted data that fails its
    /// checks ([`VALIDATE_FAILED`]).
    pub fn checked(&self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(VALIDATE_FAILED, self))
        }
    }

    pub fn new() -> Self {
        FieldErrors::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&FieldErrorNode> {
        self.0.get(key)
    }

    pub fn add(&mut self, key: impl Into<String>, err: FieldError) {
        self.0.insert(key.into(), FieldErrorNode::Field(err));
    }

    /// Adds `nested` under `key` unless it is empty.
    pub fn nest(&mut self, key: impl Into<String>, nested: FieldErrors) {
        if !nested.is_empty() {
            self.0.insert(key.into(), FieldErrorNode::Nested(nested));
        }
    }

    pub fn to_data(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, node) in &self.0 {
            let value = match node {
                FieldErrorNode::Nested(inner) => Value::Object(inner.to_data()),
                FieldErrorNode::Field(err) => {
                    let mut item = Map::new();
                    item.insert("code".into(), err.code.clone().into());
                    item.insert("message".into(), sentenize(&err.message).into());
                    if !err.params.is_empty() {
                        let params: Map<String, Value> = err
                            .params
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        item.insert("params".into(), Value::Object(params));
                    }
                    Value::Object(item)
                }
            };
            out.insert(key.clone(), value);
        }
        out
    }
}

/// PocketBase's message normalization (trimmed, first letter upper-cased, final
/// punctuation): the schema's error tree and the API's share one.
pub use pocketbun_storage::collections::errors::sentenize;

/// A JSON response as PocketBase 0.40 writes it (Go's `encoding/json/v2`): compact, no
/// HTML escaping, no trailing newline.
pub fn json_response<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
    match to_go_json(value) {
        Ok(body) => Response::with_body(status, "application/json", body),
        Err(_) => ApiError::internal().into_response(),
    }
}

/// Compact JSON as PocketBase 0.40 encodes it: only `"`, `\\` and control characters are
/// escaped; `<`, `>`, `&`, U+2028 and U+2029 are written as they are (0.39's
/// `encoding/json` escaped them).
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::new(&mut out))?;
    Ok(out)
}

pub type ApiResult = Result<Response, ApiError>;

#[cfg(test)]
mod tests {
    use super::ApiError;
    use pocketbun_storage::rusqlite;
    use std::error::Error;

    #[test]
    fn a_storage_failure_answers_500_and_keeps_its_cause_out_of_the_envelope() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let cause = conn.execute("SELECT * FROM missing_table", []).unwrap_err();
        let text = cause.to_string();
        let err = ApiError::from(cause);
        assert_eq!(err.status, 500);
        assert_eq!(
            err.message,
            "Something went wrong while processing your request."
        );
        assert_eq!(err.source().map(|c| c.to_string()), Some(text.clone()));
        let pocketbun_http::Body::Bytes(body) = err.into_response().body else {
            panic!("an envelope is a plain body");
        };
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("\"status\":500"), "{body}");
        assert!(!body.contains("missing_table"), "the cause leaked: {body}");
    }
}

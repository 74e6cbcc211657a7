//! PocketBase's error envelope, `{"data":{...},"message":"...","status":N}`, and the one mapping
//! from internal failures to it.

use pocketbun_http::{HttpError, HttpErrorKind, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// An API failure as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub data: Map<String, Value>,
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
        }
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

impl From<&HttpError> for ApiError {
    fn from(err: &HttpError) -> Self {
        match err.kind {
            HttpErrorKind::BodyTooLarge => ApiError::too_large(),
            HttpErrorKind::HandlerPanic => ApiError::internal(),
            _ => ApiError::new(err.status(), err.to_string()),
        }
    }
}

/// A JSON response as PocketBase writes it: compact, followed by a newline.
pub fn json_response<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            Response::with_body(status, "application/json", body)
        }
        Err(_) => ApiError::internal().into_response(),
    }
}

pub type ApiResult = Result<Response, ApiError>;

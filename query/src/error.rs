//! The crate's single error type.

use std::fmt;

/// What went wrong; decides the HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A filter or rule that does not parse or resolve, or exceeds a limit (400).
    InvalidFilter,
    /// A sort that does not resolve or exceeds a limit (400).
    InvalidSort,
    /// A `fields` or `expand` parameter that is malformed (400).
    InvalidParam,
    /// A non-superuser used `@collection.`/`@request.` in `filter`/`sort`, or a collection
    /// without the needed rule (403).
    Forbidden,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub kind: ErrorKind,
    /// Internal detail (for logs); PocketBase does not show it to clients.
    pub detail: String,
    /// The client-facing message for 403s (400s always use PocketBase's generic text).
    forbidden_message: Option<String>,
}

/// PocketBase's message for a 400 produced from a filter/sort error.
pub const BAD_REQUEST_MESSAGE: &str = "Something went wrong while processing your request.";

impl QueryError {
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidFilter,
            detail: detail.into(),
            forbidden_message: None,
        }
    }

    pub fn invalid_sort(detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidSort,
            detail: detail.into(),
            forbidden_message: None,
        }
    }

    pub fn invalid_param(detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidParam,
            detail: detail.into(),
            forbidden_message: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        let m = message.into();
        Self {
            kind: ErrorKind::Forbidden,
            detail: m.clone(),
            forbidden_message: Some(m),
        }
    }

    /// HTTP status PocketBase answers with.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::Forbidden => 403,
            _ => 400,
        }
    }

    /// The `message` of PocketBase's `{"data":{},"message":...,"status":...}` envelope
    /// (`data` is always `{}` for these errors).
    pub fn api_message(&self) -> &str {
        match &self.forbidden_message {
            Some(m) => m,
            None => BAD_REQUEST_MESSAGE,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for QueryError {}

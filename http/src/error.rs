use std::fmt;

/// What went wrong at the protocol level. Each kind has one status code and one fate for the
/// connection, decided here rather than at every call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// Unparseable request line or headers, bad framing, request smuggling attempts.
    BadRequest,
    /// Host header missing on HTTP/1.1 (Go answers this one with its own message).
    MissingHost,
    HeaderTooLarge,
    UriTooLong,
    BodyTooLarge,
    /// A transfer coding other than chunked.
    NotImplemented,
    VersionNotSupported,
    /// An `Expect` other than `100-continue` (417, empty body, as Go answers it).
    ExpectationFailed,
    /// The handler panicked.
    HandlerPanic,
    /// Too many open connections.
    Overloaded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub kind: HttpErrorKind,
    pub detail: &'static str,
}

impl HttpError {
    pub const fn new(kind: HttpErrorKind, detail: &'static str) -> Self {
        HttpError { kind, detail }
    }

    pub const fn bad(detail: &'static str) -> Self {
        HttpError::new(HttpErrorKind::BadRequest, detail)
    }

    pub fn status(&self) -> u16 {
        match self.kind {
            HttpErrorKind::BadRequest | HttpErrorKind::MissingHost => 400,
            HttpErrorKind::HeaderTooLarge => 431,
            HttpErrorKind::UriTooLong => 414,
            HttpErrorKind::BodyTooLarge => 413,
            HttpErrorKind::NotImplemented => 501,
            HttpErrorKind::VersionNotSupported => 505,
            HttpErrorKind::ExpectationFailed => 417,
            HttpErrorKind::HandlerPanic => 500,
            HttpErrorKind::Overloaded => 503,
        }
    }

    /// Whether the connection can carry another request after this error. Only a handler
    /// panic leaves the framing intact; every other error means we no longer know where the
    /// next request starts.
    pub fn keeps_connection(&self) -> bool {
        self.kind == HttpErrorKind::HandlerPanic
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            crate::write::reason(self.status()),
            self.detail
        )
    }
}

impl std::error::Error for HttpError {}
